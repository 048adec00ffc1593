/* The uncertain list: records of omni:msg:{id} turned into items, the time
 * to check against the provider, the CLI's rows and the API's page query. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "uncertain.h"

static json_t *item(const char *field, const char *val)
{
    return uncertain_item(field, strlen(field), val, strlen(val));
}

static char *dump(json_t *j)
{
    static char buf[1024];
    char *s = json_dumps(j, JSON_COMPACT);
    snprintf(buf, sizeof(buf), "%s", s ? s : "(null)");
    free(s);
    json_decref(j);
    return buf;
}

static void an_ambiguous_record_becomes_an_item(void **state)
{
    (void)state;
    assert_string_equal(
        dump(item("whatsapp:+15550000001",
                  "{\"state\":\"uncertain\",\"channel\":\"whatsapp\",\"slot\":\"12\","
                  "\"attempts\":1,\"at\":1732000000500,\"reason\":\"ambiguous_timeout\","
                  "\"wire_at\":1732000000123,\"owner\":\"i1\"}")),
        "{\"to\":\"+15550000001\",\"channel\":\"whatsapp\",\"index\":12,\"attempts\":1,"
        "\"reason\":\"ambiguous_timeout\",\"wire_at\":1732000000123,\"claimed_at\":null,"
        "\"at\":1732000000500}");
}

static void old_records_are_owner_lost_and_use_at(void **state)
{
    (void)state;
    /* cjson may write a big number as a float; slot a number */
    assert_string_equal(
        dump(item("email:ana@example.com:x", "{\"state\":\"uncertain\",\"slot\":3,"
                                             "\"attempts\":2,\"at\":1.732000000e+12}")),
        "{\"to\":\"ana@example.com:x\",\"channel\":\"email\",\"index\":3,\"attempts\":2,"
        "\"reason\":\"owner_lost\",\"wire_at\":null,\"claimed_at\":null,\"at\":1732000000000}");
    json_t *i = item("sms:+15550000002", "{\"state\":\"uncertain\",\"channel\":\"sms\","
                                         "\"slot\":\"7\",\"reason\":\"\",\"claimed_at\":5}");
    assert_string_equal(json_string_value(json_object_get(i, "reason")), "owner_lost");
    assert_true(json_is_null(json_object_get(i, "attempts")));
    assert_true(json_is_null(json_object_get(i, "at")));
    json_decref(i);
}

static void other_states_dups_and_garbage_are_not_items(void **state)
{
    (void)state;
    assert_null(item("sms:+1", "{\"state\":\"sent\",\"channel\":\"sms\",\"slot\":\"1\"}"));
    assert_null(item("sms:+1", "{\"state\":\"retry\"}"));
    assert_null(item("dup:4", "sms:+15550000001"));
    assert_null(item("dup:5", "{\"state\":\"uncertain\"}"));
    assert_null(item("sms:+1", "not json"));
    assert_null(item("sms:+1", "[\"uncertain\"]"));
    assert_null(item("sms:+1", "{\"state\":1}"));
    assert_null(item("sms:+1", "{\"state\":\"retry\",\"error\":\"resend_uncertain\"}"));
    assert_null(item("sms:+1", "{\"state\":\"sent\",\"was\":\"uncertain\"}"));
    json_t *spaced = item("sms:+1", "{ \"state\" : \"uncertain\" }");
    assert_string_equal(json_string_value(json_object_get(spaced, "to")), "+1");
    json_decref(spaced);
}

static void the_time_is_wire_else_claimed_else_declared(void **state)
{
    (void)state;
    long long ms = 0;
    json_t *i = json_pack("{s:I,s:I,s:I}", "wire_at", (json_int_t)3, "claimed_at", (json_int_t)2,
                          "at", (json_int_t)1);
    assert_string_equal(uncertain_when(i, &ms), "wire");
    assert_int_equal(ms, 3);
    json_object_set_new(i, "wire_at", json_null());
    assert_string_equal(uncertain_when(i, &ms), "claimed");
    assert_int_equal(ms, 2);
    json_object_del(i, "claimed_at");
    assert_string_equal(uncertain_when(i, &ms), "declared");
    assert_int_equal(ms, 1);
    json_object_del(i, "at");
    assert_null(uncertain_when(i, &ms));
    json_decref(i);
}

static void times_are_utc_with_milliseconds(void **state)
{
    (void)state;
    char t[40];
    uncertain_fmt_time(1732000000123LL, t, sizeof(t));
    assert_string_equal(t, "2024-11-19T07:06:40.123Z");
    uncertain_fmt_time(0, t, sizeof(t));
    assert_string_equal(t, "1970-01-01T00:00:00.000Z");
    uncertain_fmt_time(-1, t, sizeof(t));
    assert_string_equal(t, "1969-12-31T23:59:59.999Z");
}

static void rows_line_up_under_the_header(void **state)
{
    (void)state;
    char h[256], r[256];
    uncertain_fmt_header(h, sizeof(h));
    json_t *i = item("whatsapp:+15550000001",
                     "{\"state\":\"uncertain\",\"channel\":\"whatsapp\",\"slot\":\"12\","
                     "\"attempts\":1,\"at\":1732000000500,\"reason\":\"ambiguous_timeout\","
                     "\"wire_at\":1732000000123}");
    uncertain_fmt_row(i, r, sizeof(r));
    json_decref(i);
    assert_string_equal(r, "12       whatsapp   1        ambiguous_timeout  "
                           "2024-11-19T07:06:40.123Z (wire)     +15550000001");
    assert_int_equal(strstr(h, "ADDRESS") - h, strstr(r, "+1555") - r);
    assert_int_equal(strstr(h, "REASON") - h, strstr(r, "ambiguous") - r);
    /* the longest time source still lines up */
    i = item("sms:+15550000002", "{\"state\":\"uncertain\",\"slot\":\"7\",\"at\":0}");
    uncertain_fmt_row(i, r, sizeof(r));
    json_decref(i);
    assert_string_equal(r, "7        sms        -        owner_lost         "
                           "1970-01-01T00:00:00.000Z (declared) +15550000002");
    assert_int_equal(strstr(h, "ADDRESS") - h, strstr(r, "+1555") - r);
}

static void page_queries_are_checked(void **state)
{
    (void)state;
    char cur[24];
    int n = 0;
    const char *why = NULL;
    assert_int_equal(uncertain_query(NULL, NULL, cur, sizeof(cur), &n, &why), 0);
    assert_string_equal(cur, "0");
    assert_int_equal(n, 100);
    assert_int_equal(uncertain_query("0042", "1000", cur, sizeof(cur), &n, &why), 0);
    assert_string_equal(cur, "42");
    assert_int_equal(n, 1000);
    assert_int_equal(uncertain_query("18446744073709551615", "1", cur, sizeof(cur), &n, &why), 0);
    assert_string_equal(cur, "18446744073709551615");
    const char *bad_cursors[] = {
        "", "-1", "abc", "1x", "18446744073709551616", "123456789012345678901", " 1", "+1"};
    for (size_t i = 0; i < sizeof(bad_cursors) / sizeof(bad_cursors[0]); i++) {
        why = NULL;
        assert_int_equal(uncertain_query(bad_cursors[i], NULL, cur, sizeof(cur), &n, &why), -1);
        assert_non_null(strstr(why, "cursor"));
    }
    const char *bad_counts[] = {"", "0", "1001", "-5", "10x", "99999", "1e3", " 5"};
    for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]); i++) {
        why = NULL;
        assert_int_equal(uncertain_query("0", bad_counts[i], cur, sizeof(cur), &n, &why), -1);
        assert_non_null(strstr(why, "count"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_ambiguous_record_becomes_an_item),
        cmocka_unit_test(old_records_are_owner_lost_and_use_at),
        cmocka_unit_test(other_states_dups_and_garbage_are_not_items),
        cmocka_unit_test(the_time_is_wire_else_claimed_else_declared),
        cmocka_unit_test(times_are_utc_with_milliseconds),
        cmocka_unit_test(rows_line_up_under_the_header),
        cmocka_unit_test(page_queries_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
