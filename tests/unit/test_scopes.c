/* Scoped API tokens: the api_tokens_file line parser (scopes.c) and the
 * route -> scope table of http.c (http_scope_required). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/http.h>
#include <string.h>

#include "http_internal.h"
#include "scopes.h"

/* parse s; returns the parser's result, the token in tok (NUL-ended) */
static int parse(const char *s, char *tok, unsigned *mask, const char **why)
{
    const char *t = NULL;
    size_t tl = 0;
    *why = NULL;
    *mask = 0;
    int r = scopes_parse_line(s, strlen(s), &t, &tl, mask, why);
    tok[0] = '\0';
    if (r == 1) {
        assert_true(tl < 600);
        memcpy(tok, t, tl);
        tok[tl] = '\0';
    }
    if (r < 0)
        assert_non_null(*why);
    return r;
}

static void plain_lines(void **state)
{
    (void)state;
    char tok[600];
    unsigned m;
    const char *why;
    assert_int_equal(parse("t0ken\n", tok, &m, &why), 1);
    assert_string_equal(tok, "t0ken");
    assert_int_equal(m, SCOPE_ALL); /* no scopes: full access, as before */
    assert_int_equal(parse("   t0ken   \r\n", tok, &m, &why), 1);
    assert_string_equal(tok, "t0ken");
    assert_int_equal(m, SCOPE_ALL);
    assert_int_equal(parse("\n", tok, &m, &why), 0);
    assert_int_equal(parse("   \t \n", tok, &m, &why), 0);
    assert_int_equal(parse("# a comment send\n", tok, &m, &why), 0);
    assert_int_equal(parse("  #t0ken read\n", tok, &m, &why), 0);
    assert_int_equal(parse("", tok, &m, &why), 0);
}

static void scoped_lines(void **state)
{
    (void)state;
    char tok[600];
    unsigned m;
    const char *why;
    assert_int_equal(parse("abc send\n", tok, &m, &why), 1);
    assert_string_equal(tok, "abc");
    assert_int_equal(m, SCOPE_SEND);
    assert_int_equal(parse("abc\tread,control\n", tok, &m, &why), 1);
    assert_string_equal(tok, "abc");
    assert_int_equal(m, SCOPE_READ | SCOPE_CONTROL);
    assert_int_equal(parse("abc   agent , admin ,read", tok, &m, &why), 1);
    assert_int_equal(m, SCOPE_AGENT | SCOPE_ADMIN | SCOPE_READ);
    assert_int_equal(parse("abc send,read,control,agent,admin", tok, &m, &why), 1);
    assert_int_equal(m, SCOPE_ALL);
    assert_int_equal(parse("abc send,send", tok, &m, &why), 1);
    assert_int_equal(m, SCOPE_SEND);
}

static void bad_lines(void **state)
{
    (void)state;
    char tok[600];
    unsigned m;
    const char *why;
    assert_int_equal(parse("abc sendx", tok, &m, &why), -1);
    assert_non_null(strstr(why, "unknown scope"));
    assert_null(strstr(why, "sendx"));                      /* nothing of the line in the message */
    assert_int_equal(parse("abc Send", tok, &m, &why), -1); /* names are lower case */
    assert_int_equal(parse("abc send,", tok, &m, &why), -1);
    assert_non_null(strstr(why, "empty scope"));
    assert_int_equal(parse("abc ,send", tok, &m, &why), -1);
    assert_int_equal(parse("abc send,,read", tok, &m, &why), -1);
    assert_int_equal(parse("abc send read", tok, &m, &why), -1);
    assert_non_null(strstr(why, "commas"));
    /* a token with a space inside was one token before scopes: now its
     * second part is an unknown scope, an error at start, never a shorter
     * token accepted in silence */
    assert_int_equal(parse("secret part\n", tok, &m, &why), -1);
    assert_null(strstr(why, "part"));
    char nul[] = "abc\0def\n";
    const char *t;
    size_t tl;
    assert_int_equal(scopes_parse_line(nul, sizeof(nul) - 1, &t, &tl, &m, &why), -1);
    assert_non_null(strstr(why, "NUL"));
    char big[600];
    memset(big, 'a', 512);
    big[512] = '\0';
    assert_int_equal(parse(big, tok, &m, &why), -1);
    assert_non_null(strstr(why, "longer than 511"));
    big[511] = '\0';
    assert_int_equal(parse(big, tok, &m, &why), 1);
    assert_int_equal(strlen(tok), 511);
    strcpy(big + 511, " read");
    assert_int_equal(parse(big, tok, &m, &why), 1); /* the limit is the token's */
    assert_int_equal(m, SCOPE_READ);
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(scopes_name(SCOPE_SEND), "send");
    assert_string_equal(scopes_name(SCOPE_ADMIN), "admin");
    assert_null(scopes_name(SCOPE_SEND | SCOPE_READ));
    assert_null(scopes_name(0));
    assert_int_equal(scopes_bit("control", 7), SCOPE_CONTROL);
    assert_int_equal(scopes_bit("contro", 6), 0);
}

static void patterns(void **state)
{
    (void)state;
    assert_true(scopes_path_match("/v1/campaigns", "/v1/campaigns"));
    assert_false(scopes_path_match("/v1/campaigns", "/v1/campaigns/"));
    assert_false(scopes_path_match("/v1/campaigns", "/v1/campaign"));
    assert_true(scopes_path_match("/v1/campaigns/*", "/v1/campaigns/c1"));
    assert_false(scopes_path_match("/v1/campaigns/*", "/v1/campaigns/"));
    assert_false(scopes_path_match("/v1/campaigns/*", "/v1/campaigns/c1/pause"));
    assert_true(scopes_path_match("/v1/campaigns/*/pause", "/v1/campaigns/c1/pause"));
    assert_false(scopes_path_match("/v1/campaigns/*/pause", "/v1/campaigns//pause"));
    assert_false(scopes_path_match("/v1/campaigns/*/pause", "/v1/campaigns/c1/pauses"));
    assert_false(scopes_path_match("/v1/campaigns/*/pause", "/v1/campaigns/c1/paus"));
}

#define G EVHTTP_REQ_GET
#define P EVHTTP_REQ_POST
#define H EVHTTP_REQ_HEAD

static void table(void **state)
{
    (void)state;
    static const struct {
        int m;
        const char *path;
        unsigned want;
    } cases[] = {
        {P, "/v1/broadcasts", SCOPE_SEND},
        {P, "/v1/messages", SCOPE_SEND},
        {G, "/v1/campaigns", SCOPE_READ},
        {H, "/v1/campaigns", SCOPE_READ},
        {G, "/v1/campaigns/c-1", SCOPE_READ},
        {G, "/v1/campaigns/c-1/uncertain", SCOPE_READ},
        {P, "/v1/campaigns/c-1/pause", SCOPE_CONTROL},
        {P, "/v1/campaigns/c-1/resume", SCOPE_CONTROL},
        {P, "/v1/campaigns/c-1/cancel", SCOPE_CONTROL},
        {G, "/v1/conversations", SCOPE_READ},
        {G, "/v1/conversations/cv1", SCOPE_READ},
        {P, "/v1/conversations/cv1/close", SCOPE_AGENT},
        {P, "/v1/connectors/wa/resume", SCOPE_ADMIN},
        {G, "/v1/campaigns/c-1/recipients", SCOPE_READ},
        {P, "/v1/campaigns/c-1/resend-uncertain", SCOPE_CONTROL},
        {P, "/v1/conversations/cv1/messages", SCOPE_AGENT},
        {P, "/v1/conversations/cv1/conversion", SCOPE_AGENT},
        {G, "/v1/connectors", SCOPE_READ},
        {G, "/v1/token", SCOPE_ALL},
        {G, "/v1/dead", SCOPE_ADMIN},
        {P, "/v1/dead/1-0/replay", SCOPE_ADMIN},
        {G, "/v1/suppressions/sms", SCOPE_ADMIN},
        {P, "/v1/suppressions/sms/add", SCOPE_ADMIN},
        {P, "/v1/suppressions/sms/remove", SCOPE_ADMIN},
        /* a known path with another method: that row's scope (then 405) */
        {G, "/v1/broadcasts", SCOPE_SEND},
        {G, "/v1/campaigns/c-1/pause", SCOPE_CONTROL},
        /* no row: admin, whatever the method (fail safe) */
        {G, "/v1/unknown", SCOPE_ADMIN},
        {P, "/v1/campaigns/c-1/frobnicate", SCOPE_ADMIN},
        {G, "/v1/campaigns/c-1/uncertain/x", SCOPE_ADMIN},
        {P, "/v1/suppressions", SCOPE_ADMIN},
        {G, "/v1/", SCOPE_ADMIN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned got = http_scope_required(cases[i].m, cases[i].path);
        if (got != cases[i].want)
            fail_msg("%s: scope %u, want %u", cases[i].path, got, cases[i].want);
    }
}

/* every row names one scope (or SCOPE_ALL: any token, GET /v1/token), a
 * /v1 path, GET/HEAD or POST; no two rows share a method and a path */
static void rows(void **state)
{
    (void)state;
    int m, m2;
    const char *p, *p2;
    unsigned s, s2;
    size_t n = 0;
    for (size_t i = 0; http_scope_row(i, &m, &p, &s); i++, n++) {
        if (s == SCOPE_ALL)
            assert_string_equal(p, "/v1/token");
        else
            assert_non_null(scopes_name(s));
        assert_int_equal(strncmp(p, "/v1/", 4), 0);
        assert_true(m == P || m == (G | H));
        for (size_t k = 0; k < i; k++) {
            assert_true(http_scope_row(k, &m2, &p2, &s2));
            if (!strcmp(p, p2) && (m & m2))
                fail_msg("two rows for %s", p);
        }
    }
    assert_true(n >= 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_lines), cmocka_unit_test(scoped_lines), cmocka_unit_test(bad_lines),
        cmocka_unit_test(names),       cmocka_unit_test(patterns),     cmocka_unit_test(table),
        cmocka_unit_test(rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
