/* A campaign's hash as JSON (counters.c): the one converter the API and the
 * CLI share. Counters are numbers, everything else stays a string, however
 * numeric it looks; pending never goes below 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "counters.h"
#include <hiredis/hiredis.h>

static void set(json_t *o, const char *k, const char *v)
{
    assert_int_equal(counters_set(o, k, v, strlen(v)), 0);
}

static void ids_stay_strings_and_counters_are_numbers(void **state)
{
    (void)state;
    json_t *o = json_object();
    set(o, "id", "2026-11-27");
    set(o, "type", "broadcast");
    set(o, "state", "running");
    set(o, "total", "10");
    set(o, "sent", "4");
    set(o, "failed", "1");
    set(o, "suppressed", "1");
    set(o, "uncertain", "0");
    set(o, "cancelled", "0");
    set(o, "delivered", "2");
    set(o, "read", "1");
    set(o, "complained", "1");
    set(o, "soft_bounced", "2");
    set(o, "chunks", "1");
    set(o, "chunk_size", "1000");
    set(o, "created_at", "1795000000000");
    set(o, "open_conv", "42"); /* not a counter: a string */
    set(o, "spec", "{\"template\":\"hi\"}");
    assert_int_equal(counters_finish(o), 0);

    assert_true(json_is_string(json_object_get(o, "id")));
    assert_string_equal(json_string_value(json_object_get(o, "id")), "2026-11-27");
    assert_true(json_is_string(json_object_get(o, "open_conv")));
    assert_string_equal(json_string_value(json_object_get(o, "open_conv")), "42");
    assert_true(json_is_integer(json_object_get(o, "total")));
    assert_int_equal(json_integer_value(json_object_get(o, "sent")), 4);
    assert_int_equal(json_integer_value(json_object_get(o, "created_at")), 1795000000000LL);
    assert_int_equal(json_integer_value(json_object_get(o, "pending")), 4);
    assert_int_equal(counters_pending(o), 4);
    assert_true(json_is_object(json_object_get(o, "spec")));
    json_t *rates = json_object_get(o, "rates");
    assert_true(json_is_object(rates));
    assert_true(json_real_value(json_object_get(rates, "delivered")) == 0.5);
    assert_true(json_real_value(json_object_get(rates, "read")) == 0.25);
    assert_true(json_real_value(json_object_get(rates, "replied")) == 0);
    /* email delivery reports: numbers, and the complaint rate */
    assert_int_equal(json_integer_value(json_object_get(o, "soft_bounced")), 2);
    assert_true(json_real_value(json_object_get(rates, "complained")) == 0.25);
    assert_true(json_real_value(json_object_get(rates, "bounced")) == 0);
    json_decref(o);
}

static void pending_is_floored_at_zero(void **state)
{
    (void)state;
    json_t *o = json_object();
    set(o, "total", "3");
    set(o, "sent", "3");
    set(o, "cancelled", "2"); /* over-counted: never a negative pending */
    assert_int_equal(counters_finish(o), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "pending")), 0);
    /* no sent: rates are 0, not a division by zero */
    json_t *e = json_object();
    set(e, "total", "5");
    assert_int_equal(counters_finish(e), 0);
    assert_int_equal(json_integer_value(json_object_get(e, "pending")), 5);
    assert_true(json_real_value(json_object_get(json_object_get(e, "rates"), "read")) == 0);
    json_decref(o);
    json_decref(e);
}

static void malformed_numbers_and_spec_stay_strings(void **state)
{
    (void)state;
    json_t *o = json_object();
    set(o, "total", "12x");
    set(o, "sent", "-");
    set(o, "failed", "");
    set(o, "suppressed", "99999999999999999999999"); /* overflows */
    set(o, "uncertain", "-2");
    set(o, "spec", "not json");
    assert_int_equal(counters_finish(o), 0);
    assert_string_equal(json_string_value(json_object_get(o, "total")), "12x");
    assert_string_equal(json_string_value(json_object_get(o, "sent")), "-");
    assert_string_equal(json_string_value(json_object_get(o, "failed")), "");
    assert_true(json_is_string(json_object_get(o, "suppressed")));
    assert_int_equal(json_integer_value(json_object_get(o, "uncertain")), -2);
    assert_string_equal(json_string_value(json_object_get(o, "spec")), "not json");
    /* values are taken by length, not to the NUL */
    assert_int_equal(counters_set(o, "sent", "75junk", 2), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "sent")), 75);
    /* not UTF-8: left out, not an error */
    assert_int_equal(counters_set(o, "state", "\xff\xfe", 2), 0);
    assert_null(json_object_get(o, "state"));
    assert_int_equal(counters_set(NULL, "x", "1", 1), -1);
    assert_int_equal(counters_finish(NULL), -1);
    json_decref(o);
}

static void the_number_fields(void **state)
{
    (void)state;
    const char *nums[] = {"total",       "sent",       "failed",     "suppressed",
                          "uncertain",   "cancelled",  "duplicates", "delivered",
                          "read",        "replied",    "opted_out",  "failed_after_send",
                          "chunks",      "chunk_size", "created_at", "started_at",
                          "finished_at", "fallback",   "awaiting"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        assert_true(counters_is_number(nums[i]));
    const char *strs[] = {"id", "type", "state", "spec", "open_conv", "paused_from", ""};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        assert_false(counters_is_number(strs[i]));
}

/* the HGETALL answer both the API and the CLI convert (counters_from_reply) */
static void a_hash_reply_becomes_the_shared_object(void **state)
{
    (void)state;
    const char *kv[] = {"id",   "2026-11-27", "state",  "running", "total",     "10",
                        "sent", "4",          "failed", "1",       "delivered", "2"};
    redisReply el[12], *els[12];
    memset(el, 0, sizeof(el));
    for (int i = 0; i < 12; i++) {
        el[i].type = REDIS_REPLY_STRING;
        el[i].str = (char *)kv[i];
        el[i].len = strlen(kv[i]);
        els[i] = &el[i];
    }
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 12, .element = els};
    json_t *o = counters_from_reply(&r);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "id")), "2026-11-27");
    assert_int_equal(json_integer_value(json_object_get(o, "total")), 10);
    assert_int_equal(json_integer_value(json_object_get(o, "pending")), 5);
    assert_non_null(json_object_get(o, "rates"));
    json_decref(o);
    /* an empty hash: an object with pending 0 */
    redisReply e = {.type = REDIS_REPLY_ARRAY, .elements = 0};
    o = counters_from_reply(&e);
    assert_non_null(o);
    assert_int_equal(counters_pending(o), 0);
    json_decref(o);
}

/* per-channel counters are numbers, grouped again under "channels"; a
 * message still watched for its delivery (awaiting) keeps its recipient
 * pending although it is counted sent */
static void per_channel_counters_and_awaiting(void **state)
{
    (void)state;
    json_t *o = json_object();
    set(o, "total", "10");
    set(o, "sent", "10");
    set(o, "awaiting", "3");
    set(o, "fallback", "2");
    set(o, "sent:whatsapp", "10");
    set(o, "failed:whatsapp", "2");
    set(o, "delivered:whatsapp", "7");
    set(o, "sent:sms", "2");
    set(o, "read:sms", "x"); /* not a number: stays a string, not grouped */
    set(o, "sent:", "4");    /* no channel: a string */
    set(o, "resent:sms", "1");
    assert_int_equal(counters_finish(o), 0);
    assert_true(counters_is_number("sent:whatsapp"));
    assert_true(counters_is_number("read:sms"));
    assert_false(counters_is_number("sent:"));
    assert_false(counters_is_number("resent:sms"));
    assert_int_equal(json_integer_value(json_object_get(o, "fallback")), 2);
    assert_true(json_is_string(json_object_get(o, "read:sms")));
    assert_true(json_is_string(json_object_get(o, "sent:")));
    assert_int_equal(json_integer_value(json_object_get(o, "pending")), 3);
    json_t *ch = json_object_get(o, "channels");
    assert_int_equal(json_object_size(ch), 2);
    json_t *wa = json_object_get(ch, "whatsapp"), *sms = json_object_get(ch, "sms");
    assert_int_equal(json_integer_value(json_object_get(wa, "sent")), 10);
    assert_int_equal(json_integer_value(json_object_get(wa, "failed")), 2);
    assert_int_equal(json_integer_value(json_object_get(wa, "delivered")), 7);
    assert_int_equal(json_integer_value(json_object_get(wa, "read")), 0);
    assert_int_equal(json_integer_value(json_object_get(sms, "sent")), 2);
    assert_int_equal(json_integer_value(json_object_get(sms, "read")), 0);
    set(o, "state", "cancelled"); /* moves nobody on: awaiting is not pending */
    assert_int_equal(counters_pending(o), 0);
    set(o, "state", "running");
    set(o, "awaiting", "0");
    assert_int_equal(counters_pending(o), 0);
    json_decref(o);
}

/* failed_reason:REASON counters: numbers, grouped as "failures" */
static void failures_by_reason(void **state)
{
    (void)state;
    json_t *o = json_object();
    set(o, "failed", "3");
    set(o, "failed_reason:rejected", "2");
    set(o, "failed_reason:opted_out", "1");
    set(o, "failed_reason:", "5"); /* no reason: a string, not grouped */
    assert_int_equal(counters_finish(o), 0);
    assert_true(counters_is_number("failed_reason:other"));
    assert_false(counters_is_number("failed_reason:"));
    json_t *f = json_object_get(o, "failures");
    assert_int_equal(json_object_size(f), 2);
    assert_int_equal(json_integer_value(json_object_get(f, "rejected")), 2);
    assert_int_equal(json_integer_value(json_object_get(f, "opted_out")), 1);
    json_decref(o);
    o = json_object();
    assert_int_equal(counters_finish(o), 0);
    assert_true(json_is_object(json_object_get(o, "failures")));
    assert_int_equal(json_object_size(json_object_get(o, "failures")), 0);
    json_decref(o);
}

/* the bounded reason list: a reason's part before ':' when listed, else
 * other; and the Lua prelude names the same reasons */
static void the_reason_list(void **state)
{
    (void)state;
    int other = COUNTERS_REASONS - 1;
    assert_string_equal(counters_reason_name(other), "other");
    assert_null(counters_reason_name(COUNTERS_REASONS));
    assert_null(counters_reason_name(-1));
    assert_string_equal(counters_reason_name(counters_reason_index("opted_out")), "opted_out");
    assert_string_equal(counters_reason_name(counters_reason_index("missing_var:name")),
                        "missing_var");
    assert_int_equal(counters_reason_index("http_5xx"), other);
    assert_int_equal(counters_reason_index(""), other);
    assert_int_equal(counters_reason_index(NULL), other);
    assert_int_equal(counters_reason_index("other"), other);
    assert_int_equal(counters_reason_index("opted_out_x"), other);
    /* daemon/lua/lib/prelude.lua: local FAIL_REASONS = {a = true, ...} */
    FILE *f = fopen(OMNI_SOURCE_DIR "/daemon/lua/lib/prelude.lua", "r");
    assert_non_null(f);
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "local FAIL_REASONS = {", 22) != 0)
            continue;
        found = 1;
        int n = 0;
        for (char *p = line + 22; *p && *p != '}';) {
            size_t k = strcspn(p, " =");
            char name[64];
            assert_true(k > 0 && k < sizeof(name));
            memcpy(name, p, k);
            name[k] = 0;
            assert_int_not_equal(counters_reason_index(name), other);
            n++;
            p = strstr(p, "true");
            assert_non_null(p);
            p += 4;
            p += strspn(p, ", ");
        }
        assert_int_equal(n, COUNTERS_REASONS - 1);
    }
    fclose(f);
    assert_true(found);
}

static void conversions_and_revenue_per_currency(void **state)
{
    (void)state;
    json_t *o = json_object();
    set(o, "sent", "4");
    set(o, "converted", "2");
    set(o, "revenue:EUR", "12500");
    set(o, "revenue:BHD", "1005");
    set(o, "revenue:eur", "1"); /* not a currency code: stays a plain field */
    assert_int_equal(counters_finish(o), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "converted")), 2);
    json_t *rev = json_object_get(o, "revenue");
    assert_string_equal(json_string_value(json_object_get(rev, "EUR")), "12.50");
    assert_string_equal(json_string_value(json_object_get(rev, "BHD")), "1.005");
    assert_int_equal(json_object_size(rev), 2);
    assert_null(json_object_get(o, "revenue:EUR"));
    assert_true(json_real_value(json_object_get(json_object_get(o, "rates"), "converted")) == 0.5);
    json_decref(o);
    /* a campaign without conversions: 0 and {} */
    o = json_object();
    set(o, "sent", "1");
    assert_int_equal(counters_finish(o), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "converted")), 0);
    assert_true(json_is_integer(json_object_get(o, "converted")));
    assert_int_equal(json_object_size(json_object_get(o, "revenue")), 0);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_stay_strings_and_counters_are_numbers),
        cmocka_unit_test(pending_is_floored_at_zero),
        cmocka_unit_test(malformed_numbers_and_spec_stay_strings),
        cmocka_unit_test(the_number_fields),
        cmocka_unit_test(a_hash_reply_becomes_the_shared_object),
        cmocka_unit_test(per_channel_counters_and_awaiting),
        cmocka_unit_test(failures_by_reason),
        cmocka_unit_test(the_reason_list),
        cmocka_unit_test(conversions_and_revenue_per_currency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
