/* Address normalization: spellings of one recipient become one string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "address.h"

static const char *norm(int kind, const char *in)
{
    static char out[ADDR_MAX];
    const char *why;
    return addr_normalize(kind, in, out, sizeof(out), &why) == 0 ? out : why;
}

static void spellings_of_one_number_are_one_address(void **state)
{
    (void)state;
    const char *forms[] = {"+15550000001", " +1 555 000 0001 ", "+1-555-000-0001",
                           "+1 (555) 000.0001", "0015550000001"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        assert_string_equal(norm(ADDR_PHONE, forms[i]), "+15550000001");
}

static void non_e164_numbers_are_refused(void **state)
{
    (void)state;
    assert_string_equal(norm(ADDR_PHONE, "5550000001"), "not an E.164 number");
    assert_string_equal(norm(ADDR_PHONE, "+1234567"), "not an E.164 number");
    assert_string_equal(norm(ADDR_PHONE, "+1234567890123456"), "not an E.164 number");
    assert_string_equal(norm(ADDR_PHONE, "+05550000001"), "not an E.164 number");
    assert_string_equal(norm(ADDR_PHONE, "+1555abc0001"), "not an E.164 number");
    assert_string_equal(norm(ADDR_PHONE, "   "), "empty address");
}

static void email_domains_are_lower_cased_local_parts_kept(void **state)
{
    (void)state;
    assert_string_equal(norm(ADDR_EMAIL, " Ana.Lima@Example.COM "), "Ana.Lima@example.com");
}

static void bad_emails_and_header_tricks_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {"ana",
                         "@example.com",
                         "ana@",
                         "ana@@example.com",
                         "ana@example",
                         "ana@exa mple.com",
                         "ana@example.com\r\nBcc: x@y.z",
                         "a<b>@example.com",
                         "ana@.example.com",
                         "ana@example..com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_string_equal(norm(ADDR_EMAIL, bad[i]), "not an email address");
}

static void generic_addresses_refuse_control_characters(void **state)
{
    (void)state;
    assert_string_equal(norm(ADDR_ANY, " user-42 "), "user-42");
    assert_string_equal(norm(ADDR_ANY, "a\nb"), "control character in address");
}

static void kinds_follow_connector_types_and_channel_names(void **state)
{
    (void)state;
    assert_int_equal(addr_kind_for_type("whatsapp"), ADDR_PHONE);
    assert_int_equal(addr_kind_for_type("twilio"), ADDR_PHONE);
    assert_int_equal(addr_kind_for_type("smtp"), ADDR_EMAIL);
    assert_int_equal(addr_kind_for_type("outbox"), ADDR_ANY);
    assert_int_equal(addr_kind_for_channel("sms"), ADDR_PHONE);
    assert_int_equal(addr_kind_for_channel("email"), ADDR_EMAIL);
    assert_int_equal(addr_kind_for_channel("crm"), ADDR_ANY);
}

/* WhatsApp business-scoped user ids, as Meta documents them: a country
 * code, '.', up to 128 letters and digits; a parent BSUID has "ENT." */
static void bsuids_are_kept_as_given(void **state)
{
    (void)state;
    char out[ADDR_MAX];
    assert_int_equal(addr_bsuid("US.13491208655302741918", out, sizeof(out)), 0);
    assert_string_equal(out, "US.13491208655302741918");
    assert_int_equal(addr_bsuid("US.ENT.11815799212886844830", out, sizeof(out)), 0);
    assert_string_equal(out, "US.ENT.11815799212886844830");
    assert_int_equal(addr_bsuid("BR.1502576394655843", out, sizeof(out)), 0);
    char big[140];
    memcpy(big, "US.", 3);
    memset(big + 3, 'a', 128);
    big[131] = '\0';
    assert_int_equal(addr_bsuid(big, out, sizeof(out)), 0);
    big[131] = 'a';
    big[132] = '\0';
    assert_int_equal(addr_bsuid(big, out, sizeof(out)), -1); /* 129 */
    const char *bad[] = {"us.123",       "U.123",   "US123",   "US.",     "US.12 3", "US.12\n",
                         "+15550000001", "US.ENT.", "US.12.3", " US.123", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(addr_bsuid(bad[i], out, sizeof(out)), -1);
    assert_int_equal(addr_bsuid(NULL, out, sizeof(out)), -1);
    assert_int_equal(addr_bsuid("US.123", out, 6), -1); /* no room */
    /* a phone channel's normalization still refuses one (campaigns) */
    assert_string_equal(norm(ADDR_PHONE, "US.13491208655302741918"), "not an E.164 number");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spellings_of_one_number_are_one_address),
        cmocka_unit_test(non_e164_numbers_are_refused),
        cmocka_unit_test(email_domains_are_lower_cased_local_parts_kept),
        cmocka_unit_test(bad_emails_and_header_tricks_are_refused),
        cmocka_unit_test(generic_addresses_refuse_control_characters),
        cmocka_unit_test(kinds_follow_connector_types_and_channel_names),
        cmocka_unit_test(bsuids_are_kept_as_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
