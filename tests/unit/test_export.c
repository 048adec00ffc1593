/* Export lines (export.c): one recipient record a line, NDJSON or CSV
 * (RFC 4180 quoting), the state filter, what is not a record skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "export.h"
#include <jansson.h>

static void csv(const char *in, const char *want)
{
    export_buf b = {0};
    assert_int_equal(export_csv_field(&b, in, strlen(in)), 0);
    assert_string_equal(b.data ? b.data : "", want);
    export_buf_free(&b);
}

static void csv_quoting(void **state)
{
    (void)state;
    csv("plain", "plain");
    csv("+15550000001", "+15550000001");
    csv("", "");
    csv("a,b", "\"a,b\"");
    csv("say \"hi\"", "\"say \"\"hi\"\"\"");
    csv("\"", "\"\"\"\"");
    csv("two\nlines", "\"two\nlines\"");
    /* spreadsheet formulas are quoted and led by an apostrophe; numbers
     * and phone numbers are not touched */
    csv("=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\"");
    csv("@SUM(A1)", "\"'@SUM(A1)\"");
    csv("+SUM(1;2)", "\"'+SUM(1;2)\"");
    csv("-2+3", "\"'-2+3\"");
    csv("\tx", "\"'\tx\"");
    csv("-42", "-42");
    csv("-1.5", "-1.5");
    csv("+", "+");
    csv("a=b", "a=b");
    csv("cr\rhere", "\"cr\rhere\"");
    csv("crlf\r\n", "\"crlf\r\n\"");
    csv("ünïcode, ok", "\"ünïcode, ok\"");
}

static int line(export_buf *b, int fmt, const char *st, const char *f, const char *v)
{
    return export_line(b, fmt, st, f, strlen(f), v, strlen(v));
}

static void records_as_lines(void **state)
{
    (void)state;
    const char *sent = "{\"state\":\"sent\",\"channel\":\"whatsapp\",\"slot\":\"3\",\"attempts\":1,"
                       "\"at\":1764500000000,\"provider_id\":\"wamid.A,\\\"B\\\"\","
                       "\"dlv\":\"failed\",\"dlv_at\":1764500001000,\"dlv_error\":131026}";
    const char *failed =
        "{\"state\":\"failed\",\"channel\":\"sms\",\"slot\":\"4\",\"attempts\":2,\"at\":1.7645e12,"
        "\"error\":\"opted_out\"}";
    export_buf b = {0};
    assert_int_equal(line(&b, EXPORT_CSV, NULL, "whatsapp:+15550000001", sent), 1);
    assert_string_equal(b.data, "+15550000001,whatsapp,sent,\"wamid.A,\"\"B\"\"\",,1,"
                                "1764500000000,failed,1764500001000,131026\r\n");
    export_buf_free(&b);
    assert_int_equal(line(&b, EXPORT_CSV, "", "sms:+15550000002", failed), 1);
    assert_string_equal(b.data, "+15550000002,sms,failed,,opted_out,2,1764500000000,,,\r\n");
    export_buf_free(&b);
    assert_int_equal(line(&b, EXPORT_NDJSON, "failed", "sms:+15550000002", failed), 1);
    assert_int_equal(b.data[b.len - 1], '\n');
    json_t *j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "address")), "+15550000002");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "opted_out");
    assert_int_equal(json_integer_value(json_object_get(j, "at")), 1764500000000LL);
    assert_true(json_is_null(json_object_get(j, "provider_id")));
    assert_true(json_is_null(json_object_get(j, "delivery")));
    assert_int_equal(json_object_size(j), 10);
    json_decref(j);
    export_buf_free(&b);
    /* filtered out, not records */
    assert_int_equal(line(&b, EXPORT_NDJSON, "sent", "sms:+15550000002", failed), 0);
    assert_int_equal(line(&b, EXPORT_NDJSON, NULL, "dup:7", "sms:+15550000002"), 0);
    assert_int_equal(line(&b, EXPORT_NDJSON, NULL, "sms:+1555", "not json"), 0);
    assert_int_equal(line(&b, EXPORT_NDJSON, NULL, "sms:+1555", "{\"no\":\"state\"}"), 0);
    assert_int_equal(line(&b, EXPORT_NDJSON, NULL, "nocolon", failed), 0);
    assert_int_equal(b.len, 0);
    assert_true(export_state_valid("suppressed"));
    assert_false(export_state_valid("delivered"));
    assert_false(export_state_valid(NULL));
    assert_int_equal(strncmp(export_csv_header(), "address,channel,state,", 22), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv_quoting),
        cmocka_unit_test(records_as_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
