/* The key builder against the names docs/redis.md documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "keys.h"

static void every_kind_builds_its_documented_name(void **state)
{
    (void)state;
    struct {
        key_kind k;
        const char *arg, *want;
    } cases[] = {
        {KEY_JOBS, NULL, "omni:jobs"},
        {KEY_CHUNKS, "ignored", "omni:chunks"},
        {KEY_DEAD, NULL, "omni:dead"},
        {KEY_RETRY, NULL, "omni:retry"},
        {KEY_SCHEDULED, NULL, "omni:scheduled"},
        {KEY_ACTIVE, NULL, "omni:active"},
        {KEY_CONVERSATIONS, NULL, "omni:conversations"},
        {KEY_CONV_OPEN, NULL, "omni:conv:open"},
        {KEY_CONV_ALL, NULL, "omni:conv:all"},
        {KEY_CAMPAIGN, "2026-11-27", "omni:campaign:2026-11-27"},
        {KEY_RCPT, "c1", "omni:campaign:c1:rcpt"},
        {KEY_MSG, "c1", "omni:msg:c1"},
        {KEY_SUPPRESS, "whatsapp", "omni:suppress:whatsapp"},
        {KEY_CONV, "v9", "omni:conv:v9"},
        {KEY_CONV_LOG, "v9", "omni:conv:v9:log"},
        {KEY_CONV_CAMPAIGN, "c1", "omni:conv:campaign:c1"},
        {KEY_EVENTS, NULL, "omni:events"},
        {KEY_CONNECTOR, "wa_main", "omni:connector:wa_main"},
        {KEY_REPLAY, "mail:AbC.123", "omni:replay:mail:AbC.123"},
        {KEY_WATCH, NULL, "omni:watch"},
        {KEY_ALIAS, "whatsapp:+525512345678", "omni:alias:whatsapp:+525512345678"},
        {KEY_CRM_LEASE, NULL, "omni:crm:lease"},
        {KEY_CAMPAIGNS, NULL, "omni:campaigns"},
        {KEY_CAMPAIGNS_INDEXED, NULL, "omni:campaigns:indexed"},
        {KEY_SUPPRESS_CONTACTS, NULL, "omni:suppress_contacts"},
        {KEY_CONV_CONVERSIONS, "cv7", "omni:conv:cv7:conversions"},
        {KEY_CONTACT_IDS, "sms", "omni:contact_ids:sms"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    assert_int_equal(n, KEY_KINDS); /* a new kind gets a case here */
    for (size_t i = 0; i < n; i++) {
        char k[128];
        assert_int_equal(key_build(k, sizeof(k), "omni:", cases[i].k, cases[i].arg), 0);
        assert_string_equal(k, cases[i].want);
        /* the shape names the same key with its placeholder */
        const char *shape = key_shape(cases[i].k);
        assert_non_null(shape);
        assert_int_equal(strncmp(shape, cases[i].want + 5, strcspn(shape, "{")), 0);
    }
}

static void the_prefix_is_the_configured_one(void **state)
{
    (void)state;
    char k[64];
    assert_int_equal(key_build(k, sizeof(k), "acme:oc:", KEY_CAMPAIGN, "x"), 0);
    assert_string_equal(k, "acme:oc:campaign:x");
    assert_int_equal(key_build(k, sizeof(k), "", KEY_RETRY, NULL), 0);
    assert_string_equal(k, "retry");
    assert_int_equal(key_build(k, sizeof(k), NULL, KEY_MSG, NULL), 0);
    assert_string_equal(k, "msg:");
}

static void a_key_that_does_not_fit_is_refused_whole(void **state)
{
    (void)state;
    char k[22];
    /* "omni:campaign:" 14 + "abcdef" 6 + ":rcpt" 5 = 25 > 21 */
    memset(k, 'z', sizeof(k));
    assert_int_equal(key_build(k, sizeof(k), "omni:", KEY_RCPT, "abcdef"), -1);
    assert_string_equal(k, "");
    /* exactly len - 1 characters fit */
    assert_int_equal(key_build(k, sizeof(k), "omni:", KEY_CAMPAIGN, "1234567"), 0);
    assert_string_equal(k, "omni:campaign:1234567");
    assert_int_equal(key_build(k, sizeof(k), "omni:", KEY_CAMPAIGN, "12345678"), -1);
    assert_int_equal(key_build(k, 0, "omni:", KEY_JOBS, NULL), -1);
    assert_int_equal(key_build(k, sizeof(k), "omni:", KEY_KINDS, NULL), -1);
    assert_int_equal(key_build(k, sizeof(k), "omni:", (key_kind)-1, NULL), -1);
    assert_null(key_shape(KEY_KINDS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_kind_builds_its_documented_name),
        cmocka_unit_test(the_prefix_is_the_configured_one),
        cmocka_unit_test(a_key_that_does_not_fit_is_refused_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
