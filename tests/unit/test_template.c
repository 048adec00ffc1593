/* Templates, JSON escaping and Retry-After parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <string.h>

#include "template.h"

static const char *lookup(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    if (len == 4 && !memcmp(name, "name", 4))
        return "Ana";
    if (len == 5 && !memcmp(name, "quote", 5))
        return "say \"hi\"\n\tnow\\";
    if (len == 4 && !memcmp(name, "evil", 4))
        return "<script>alert('x')</script> & \"co\"";
    if (len == 4 && !memcmp(name, "logo", 4))
        return "<img src=\"https://cdn.example.com/l.png\" alt=\"Acme\">";
    return NULL;
}

static char *render(const char *src, int escape, int *rc, char *missing)
{
    static oc_buf b;
    oc_buf_free(&b);
    *rc = tmpl_render_once(src, lookup, NULL, escape, &b, missing, 64);
    return b.data ? b.data : (char *)"";
}

static void variables_are_substituted(void **state)
{
    (void)state;
    int rc;
    char m[64];
    assert_string_equal(render("Hi {{name}}, 30% off", OC_ESCAPE_NONE, &rc, m), "Hi Ana, 30% off");
    assert_int_equal(rc, 0);
    assert_string_equal(render("{{ name }}!", OC_ESCAPE_NONE, &rc, m), "Ana!");
    assert_string_equal(render("no vars", OC_ESCAPE_NONE, &rc, m), "no vars");
    assert_string_equal(render("a { b } {c} }}", OC_ESCAPE_NONE, &rc, m), "a { b } {c} }}");
}

static void inline_defaults_fill_missing_variables(void **state)
{
    (void)state;
    int rc;
    char m[64];
    assert_string_equal(render("Hi {{first|there}}", OC_ESCAPE_NONE, &rc, m), "Hi there");
    assert_string_equal(render("Hi {{first|}}!", OC_ESCAPE_NONE, &rc, m), "Hi !");
    assert_string_equal(render("Hi {{name|there}}", OC_ESCAPE_NONE, &rc, m), "Hi Ana");
}

/* issue 19 point 2: html values are escaped unless marked trusted with
 * {{{name}}} or {{name|raw}}; the template's own text (literals, inline
 * defaults) is not touched; the other modes ignore the mark */
static void html_escaping_and_trusted_markup(void **state)
{
    (void)state;
    int rc;
    char m[64];
    assert_string_equal(render("<p>Hi {{evil}}</p>", OC_ESCAPE_HTML, &rc, m),
                        "<p>Hi &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                        "&quot;co&quot;</p>");
    assert_int_equal(rc, 0);
    assert_string_equal(render("<b>{{{logo}}}</b>", OC_ESCAPE_HTML, &rc, m),
                        "<b><img src=\"https://cdn.example.com/l.png\" alt=\"Acme\"></b>");
    assert_string_equal(render("{{ logo |raw}}", OC_ESCAPE_HTML, &rc, m),
                        "<img src=\"https://cdn.example.com/l.png\" alt=\"Acme\">");
    assert_string_equal(render("{{first|<i>friend</i>}}", OC_ESCAPE_HTML, &rc, m), "<i>friend</i>");
    assert_string_equal(render("{{{evil}}}", OC_ESCAPE_NONE, &rc, m),
                        "<script>alert('x')</script> & \"co\"");
    assert_string_equal(render("{{{quote}}}", OC_ESCAPE_JSON, &rc, m),
                        "say \\\"hi\\\"\\n\\tnow\\\\");
    render("{{{missing}}}", OC_ESCAPE_HTML, &rc, m);
    assert_int_equal(rc, -1);
    assert_string_equal(m, "missing");
    render("{{{name|x}}}", OC_ESCAPE_HTML, &rc, m);
    assert_int_equal(rc, -2);
    render("{{{name}}", OC_ESCAPE_HTML, &rc, m);
    assert_int_equal(rc, -2);
    assert_non_null(strstr(m, "unclosed {{{"));
}

static void a_missing_variable_is_named(void **state)
{
    (void)state;
    int rc;
    char m[64];
    render("Hi {{name}} from {{city}}", OC_ESCAPE_NONE, &rc, m);
    assert_int_equal(rc, -1);
    assert_string_equal(m, "city");
}

static void syntax_errors_name_the_offset(void **state)
{
    (void)state;
    char err[128];
    assert_null(tmpl_compile("abc {{name", err, sizeof(err)));
    assert_string_equal(err, "unclosed {{ at offset 4");
    assert_null(tmpl_compile("{{ }}", err, sizeof(err)));
    assert_string_equal(err, "empty variable name at offset 0");
    assert_null(tmpl_compile("{{a$b}}", err, sizeof(err)));
    assert_string_equal(err, "bad character in variable name at offset 3");
}

static void json_escaping_covers_quotes_controls_and_separators(void **state)
{
    (void)state;
    int rc;
    char m[64];
    assert_string_equal(render("{\"t\":\"{{quote}}\"}", OC_ESCAPE_JSON, &rc, m),
                        "{\"t\":\"say \\\"hi\\\"\\n\\tnow\\\\\"}");
    oc_buf b = {0};
    json_escape_append(&b, "\x01\x1f\xe2\x80\xa8", 5);
    assert_string_equal(b.data, "\\u0001\\u001f\\u2028");
    oc_buf_free(&b);
}

static void invalid_utf8_becomes_replacement_characters(void **state)
{
    (void)state;
    oc_buf b = {0};
    /* a lone continuation byte, an overlong '/', a surrogate, valid é */
    json_escape_append(&b, "\x80|\xc0\xaf|\xed\xa0\x80|\xc3\xa9", 11);
    assert_string_equal(b.data, "\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd"
                                "\xef\xbf\xbd|\xc3\xa9");
    oc_buf_free(&b);
}

static void retry_after_reads_seconds_and_http_dates(void **state)
{
    (void)state;
    long long now = 1445412480000LL; /* Wed, 21 Oct 2015 07:28:00 GMT */
    assert_int_equal(retry_after_parse_ms("120", now), 120000);
    assert_int_equal(retry_after_parse_ms(" 7 ", now), 7000);
    assert_int_equal(retry_after_parse_ms("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
    assert_int_equal(retry_after_parse_ms("Wednesday, 21-Oct-15 07:29:00 GMT", now), 60000);
    assert_int_equal(retry_after_parse_ms("Wed Oct 21 07:28:10 2015", now), 10000);
    assert_int_equal(retry_after_parse_ms("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
    assert_int_equal(retry_after_parse_ms("soon", now), -1);
    assert_int_equal(retry_after_parse_ms("-5", now), -1);
    assert_int_equal(retry_after_parse_ms(NULL, now), -1);
    assert_int_equal(retry_after_parse_ms("99999999", now), 86400000);
}

/* Issue 16: a provider's Retry-After is outside input; none of it may
 * overflow (the sanitizer build aborts on signed overflow). */
static void retry_after_clamps_and_refuses_out_of_range_values(void **state)
{
    (void)state;
    long long now = 1445412480000LL; /* Wed, 21 Oct 2015 07:28:00 GMT */
    /* delta-seconds too big for any integer type: a day */
    assert_int_equal(retry_after_parse_ms("99999999999999999999", now), RETRY_AFTER_MAX_MS);
    assert_int_equal(retry_after_parse_ms("9223372036854775807", now), RETRY_AFTER_MAX_MS);
    assert_int_equal(retry_after_parse_ms("9223372036854776", now), RETRY_AFTER_MAX_MS);
    assert_int_equal(retry_after_parse_ms("000000000000000000000000000000005", now), 5000);
    assert_int_equal(retry_after_parse_ms("86400", now), 86400000);
    assert_int_equal(retry_after_parse_ms("86401", now), 86400000);
    assert_int_equal(retry_after_parse_ms("0", now), 0);
    /* a date far in the future: a day; far in the past: now */
    assert_int_equal(retry_after_parse_ms("Fri, 31 Dec 9999 23:59:59 GMT", now),
                     RETRY_AFTER_MAX_MS);
    assert_int_equal(retry_after_parse_ms("Fri, 31 Dec 9999 23:59:59 GMT", LLONG_MIN),
                     RETRY_AFTER_MAX_MS);
    assert_int_equal(retry_after_parse_ms("Thu, 01 Jan 1970 00:00:00 GMT", LLONG_MAX), 0);
    assert_int_equal(retry_after_parse_ms("Thu, 01 Jan 1970 00:00:00 GMT", now), 0);
    /* negative, signed, fractional and garbage: absent */
    const char *bad[] = {"-1",
                         "-99999999999999999999",
                         "+5",
                         "1.5",
                         "5s",
                         "1e9",
                         "0x10",
                         "",
                         "   ",
                         "Wed, 21 Oct 2015 -1:28:30 GMT",
                         "Wed, 21 Oct 2015 07:-1:30 GMT",
                         "Wed, 21 Oct 2015 07:28:-1 GMT",
                         "Wed, -1 Oct 2015 07:28:30 GMT",
                         "Wed, 32 Oct 2015 07:28:30 GMT",
                         "Wed, 21 Oct -999 07:28:30 GMT",
                         "Wed, 21 Oct 1969 07:28:30 GMT",
                         "Wed, 21 Foo 2015 07:28:30 GMT",
                         "Wednesday, 21-Oct--1 07:29:00 GMT",
                         "Wed Oct 21 24:28:10 2015",
                         "Wed Oct 21 07:60:10 2015"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        long r = retry_after_parse_ms(bad[i], now);
        if (r != -1)
            fail_msg("Retry-After \"%s\" gave %ld, not -1", bad[i], r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(variables_are_substituted),
        cmocka_unit_test(inline_defaults_fill_missing_variables),
        cmocka_unit_test(a_missing_variable_is_named),
        cmocka_unit_test(html_escaping_and_trusted_markup),
        cmocka_unit_test(syntax_errors_name_the_offset),
        cmocka_unit_test(json_escaping_covers_quotes_controls_and_separators),
        cmocka_unit_test(invalid_utf8_becomes_replacement_characters),
        cmocka_unit_test(retry_after_reads_seconds_and_http_dates),
        cmocka_unit_test(retry_after_clamps_and_refuses_out_of_range_values),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    int r;
    char m[64];
    render("", 0, &r, m); /* frees the static buffer */
    return rc;
}
