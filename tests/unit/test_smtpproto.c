/* The native SMTP client's pure parts (smtpproto.c): replies (multi-line,
 * split anywhere, hostile), EHLO capabilities, dot-stuffing as libcurl
 * does it, and the URLs the client takes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "smtpproto.h"

static void single_and_multi_line_replies(void **state)
{
    (void)state;
    smtp_reply r;
    size_t used = 0;
    const char *one = "250 2.0.0 Ok: queued as 12\r\n354 go\r\n";
    assert_int_equal(smtp_reply_parse(one, strlen(one), &used, &r), SMTP_R_OK);
    assert_int_equal(r.code, 250);
    assert_int_equal(used, 28);
    assert_int_equal(r.nlines, 1);
    assert_true(r.last_len == 26 && memcmp(r.last, "250 2.0.0 Ok: queued as 12", 26) == 0);
    const char *multi = "250-mx.example greets you\r\n250-PIPELINING\r\n250 SIZE 100\r\n";
    assert_int_equal(smtp_reply_parse(multi, strlen(multi), &used, &r), SMTP_R_OK);
    assert_int_equal(used, strlen(multi));
    assert_int_equal(r.nlines, 3);
    assert_true(r.first_len == 25 && memcmp(r.first, "250-mx.example greets you", 25) == 0);
    assert_true(r.last_len == 12 && memcmp(r.last, "250 SIZE 100", 12) == 0);
    /* a bare LF ends a line too; a code alone is a reply */
    assert_int_equal(smtp_reply_parse("221\n", 4, &used, &r), SMTP_R_OK);
    assert_int_equal(r.code, 221);
    assert_int_equal(used, 4);
    /* every prefix of a reply is incomplete, never wrong */
    for (size_t n = 0; n < strlen(multi); n++)
        assert_int_equal(smtp_reply_parse(multi, n, &used, &r), SMTP_R_MORE);
}

static void hostile_replies(void **state)
{
    (void)state;
    smtp_reply r;
    size_t used;
    const char *bad[] = {"hello\r\n",  "25\r\n",     "250x\r\n",
                         "650 no\r\n", "199 no\r\n", "250-a\r\n550 b\r\n",
                         "\r\n",       "2a0 x\r\n",  "250-a\r\n25\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(smtp_reply_parse(bad[i], strlen(bad[i]), &used, &r), SMTP_R_BAD);
    static char big[SMTP_LINE_MAX + 10];
    memset(big, 'a', sizeof(big));
    memcpy(big, "250 ", 4);
    assert_int_equal(smtp_reply_parse(big, sizeof(big), &used, &r), SMTP_R_BAD);
    /* endless continuation lines are refused past SMTP_REPLY_MAX */
    static char many[SMTP_REPLY_MAX + 64];
    size_t n = 0;
    while (n + 8 < sizeof(many)) {
        memcpy(many + n, "250-xx\r\n", 8);
        n += 8;
    }
    assert_int_equal(smtp_reply_parse(many, n, &used, &r), SMTP_R_BAD);
}

static void ehlo_capabilities(void **state)
{
    (void)state;
    unsigned long long size = 0;
    const char *e = "250-mx.example Hello PIPELINING\r\n250-pipelining\r\n250-SIZE 35882577\r\n"
                    "250-STARTTLS\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250 SMTPUTF8\r\n";
    unsigned c = smtp_ehlo_caps(e, strlen(e), &size);
    assert_true(c & SMTP_CAP_PIPELINING);
    assert_true(c & SMTP_CAP_STARTTLS);
    assert_true(c & SMTP_CAP_SIZE);
    assert_true(c & SMTP_CAP_SMTPUTF8);
    assert_true(c & SMTP_CAP_AUTH);
    assert_true(c & SMTP_AUTH_PLAIN);
    assert_true(c & SMTP_AUTH_LOGIN);
    assert_false(c & SMTP_AUTH_CRAM_MD5);
    assert_int_equal(size, 35882577);
    /* the greeting line names no capability; AUTH= is the old form */
    const char *g = "250-PIPELINING STARTTLS\r\n250 AUTH=CRAM-MD5\r\n";
    c = smtp_ehlo_caps(g, strlen(g), &size);
    assert_false(c & SMTP_CAP_PIPELINING);
    assert_false(c & SMTP_CAP_STARTTLS);
    assert_true(c & SMTP_AUTH_CRAM_MD5);
    const char *none = "250 mx.example\r\n";
    assert_int_equal(smtp_ehlo_caps(none, strlen(none), &size), 0);
    /* a keyword must be whole */
    const char *part = "250-x\r\n250-PIPELININGX\r\n250 STARTTLSY\r\n";
    assert_int_equal(smtp_ehlo_caps(part, strlen(part), &size), 0);
}

static void stuffed(const char *in, size_t n, const char *want)
{
    oc_buf b = {0};
    assert_int_equal(smtp_dot_stuff(&b, in, n), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    oc_buf_free(&b);
}

static void dot_stuffing_as_libcurl(void **state)
{
    (void)state;
    /* what libcurl 7.88 sent for the same bodies (captured) */
    stuffed(".a", 2, "..a\r\n.\r\n");
    stuffed("a\r\n", 3, "a\r\n.\r\n");
    stuffed("a\r\n.\r\n", 6, "a\r\n..\r\n.\r\n");
    stuffed("", 0, ".\r\n");
    stuffed("a\r\n..b\r\n", 8, "a\r\n...b\r\n.\r\n");
}

static void dot_stuffing_doubles_line_start_dots(void **state)
{
    (void)state;
    /* libcurl 7.88, captured: a dot after a bare LF stays single; no CRLF at
     * the end: one is added before the dot */
    const char *body = "Subject: x\r\n\r\n.dot first\r\nline\r\n.\r\nbare\nLF\n.x\nend-no-crlf";
    oc_buf b = {0};
    assert_int_equal(smtp_dot_stuff(&b, body, strlen(body)), 0);
    const char *want =
        "Subject: x\r\n\r\n..dot first\r\nline\r\n..\r\nbare\nLF\n.x\nend-no-crlf\r\n.\r\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    oc_buf_free(&b);
}

static void urls(void **state)
{
    (void)state;
    smtp_url u;
    assert_int_equal(smtp_parse_url("smtp://127.0.0.1:2525", &u), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 2525);
    assert_int_equal(u.tls, 0);
    assert_string_equal(u.ehlo, "");
    assert_int_equal(smtp_parse_url("smtps://mail.example.com/client.example", &u), 0);
    assert_int_equal(u.port, 465);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.ehlo, "client.example");
    assert_int_equal(smtp_parse_url("smtp://[::1]:25/a%2Eb", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.ehlo, "a.b");
    assert_int_equal(smtp_parse_url("smtp://host", &u), 0);
    assert_int_equal(u.port, 25);
    const char *refused[] = {
        "http://h",       "smtp://",      "smtp://u:p@h",         "smtp://h:0",
        "smtp://h:70000", "smtp://h:",    "smtp://h/x%0d%0aRSET", "smtp://h/a b",
        "smtp://h?x",     "smtp://h:25x", "smtp://[::1"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(smtp_parse_url(refused[i], &u), -1);
}

static int cls(const char *s)
{
    return smtp_utf8_class(s, strlen(s));
}

static void utf8_classes(void **state)
{
    (void)state;
    assert_int_equal(cls(""), SMTP_ASCII);
    assert_int_equal(cls("<ana@example.com>"), SMTP_ASCII);
    assert_int_equal(cls("<jos\xc3\xa9@example.com>"), SMTP_UTF8);                  /* é */
    assert_int_equal(cls("<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b.cn>"), SMTP_UTF8); /* CJK */
    assert_int_equal(cls("\xf0\x9f\x98\x80@example.com"), SMTP_UTF8);               /* U+1F600 */
    assert_int_equal(cls("\xf4\x8f\xbf\xbf"), SMTP_UTF8);                           /* U+10FFFF */
    assert_int_equal(cls("\xed\x9f\xbf"), SMTP_UTF8);                               /* U+D7FF */
    /* ill-formed */
    assert_int_equal(cls("jos\xe9@example.com"), SMTP_NOT_UTF8); /* Latin-1 */
    assert_int_equal(cls("\xc0\xaf"), SMTP_NOT_UTF8);            /* overlong "/" */
    assert_int_equal(cls("\xc1\x81"), SMTP_NOT_UTF8);
    assert_int_equal(cls("\xe0\x80\xaf"), SMTP_NOT_UTF8);     /* overlong, 3 bytes */
    assert_int_equal(cls("\xf0\x80\x80\xaf"), SMTP_NOT_UTF8); /* overlong, 4 bytes */
    assert_int_equal(cls("\xed\xa0\x80"), SMTP_NOT_UTF8);     /* U+D800, a surrogate */
    assert_int_equal(cls("\xf4\x90\x80\x80"), SMTP_NOT_UTF8); /* U+110000 */
    assert_int_equal(cls("\xf5\x80\x80\x80"), SMTP_NOT_UTF8);
    assert_int_equal(cls("\xff"), SMTP_NOT_UTF8);
    assert_int_equal(cls("a\x80z"), SMTP_NOT_UTF8); /* a stray continuation */
    assert_int_equal(cls("\xc3"), SMTP_NOT_UTF8);   /* cut short */
    assert_int_equal(cls("\xe2\x82"), SMTP_NOT_UTF8);
    assert_int_equal(cls("\xe2\x28\xa1"), SMTP_NOT_UTF8);     /* a bad second byte */
    assert_int_equal(cls("\xf0\x9f\x98\x41"), SMTP_NOT_UTF8); /* a bad fourth byte */
    /* the length is the caller's: bytes past it are not looked at */
    assert_int_equal(smtp_utf8_class("ab\xc3\xa9", 2), SMTP_ASCII);
    assert_int_equal(smtp_utf8_class("ab\xc3\xa9", 3), SMTP_NOT_UTF8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_and_multi_line_replies),
        cmocka_unit_test(hostile_replies),
        cmocka_unit_test(ehlo_capabilities),
        cmocka_unit_test(dot_stuffing_as_libcurl),
        cmocka_unit_test(dot_stuffing_doubles_line_start_dots),
        cmocka_unit_test(urls),
        cmocka_unit_test(utf8_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
