/* The native HTTP/1.1 client's pure parts: URL splitting and the response
 * parser, fed whole, byte by byte, pipelined and hostile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "h1.h"

static int parse_all(h1_parser *p, const char *d, size_t n, size_t *used, int eof)
{
    h1_parser_reset(p);
    return h1_parse(p, d, n, used, eof);
}

/* Feed one byte more at a time, as a slow peer would, until done. */
static int parse_dribbled(h1_parser *p, const char *d, size_t n, size_t *consumed)
{
    h1_parser_reset(p);
    size_t off = 0;
    for (size_t have = 1; have <= n; have++) {
        size_t used = 0;
        int rc = h1_parse(p, d + off, have - off, &used, 0);
        off += used;
        if (rc != H1_MORE) {
            *consumed = off;
            return rc;
        }
    }
    *consumed = off;
    return H1_MORE;
}

static void urls_split_into_host_port_and_target(void **state)
{
    (void)state;
    h1_url u;
    assert_int_equal(h1_parse_url("http://127.0.0.1:8080/v21.0/123/messages?x=1", &u), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8080);
    assert_string_equal(u.hostport, "127.0.0.1:8080");
    assert_int_equal(u.target_len, strlen("/v21.0/123/messages?x=1"));
    assert_memory_equal(u.target, "/v21.0/123/messages?x=1", u.target_len);

    assert_int_equal(h1_parse_url("http://example.com", &u), 0);
    assert_int_equal(u.port, 80);
    assert_int_equal(u.target_len, 0);
    assert_string_equal(u.hostport, "example.com");

    assert_int_equal(h1_parse_url("HTTP://[::1]:9/a#frag", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.hostport, "[::1]:9");
    assert_int_equal(u.target_len, 2); /* the fragment is not sent */
    assert_int_equal(u.tls, 0);

    assert_int_equal(h1_parse_url("https://graph.facebook.com/v21.0/1/messages", &u), 0);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.host, "graph.facebook.com");
    assert_string_equal(u.hostport, "graph.facebook.com");
    assert_int_equal(h1_parse_url("HTTPS://127.0.0.1:8443/x", &u), 0);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.port, 8443);
}

static void urls_the_client_does_not_take(void **state)
{
    (void)state;
    h1_url u;
    const char *bad[] = {"httpss://example.com/", "ftp://x/",
                         "http://user:pw@host/",  "http:///path",
                         "http://host:/",         "http://host:0/",
                         "http://host:65536/",    "http://host:8a/",
                         "http://[::1/",          "http://[::1]x/",
                         "http://host/a b",       "http://host/a\r\nX-Evil: 1",
                         "http://ho st/",         "http://[fe80::1%25eth0]/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (h1_parse_url(bad[i], &u) == 0)
            fail_msg("took %s", bad[i]);
    }
}

static const char WA_OK[] = "HTTP/1.1 200 OK\r\n"
                            "Server: nginx\r\n"
                            "Content-Type: application/json\r\n"
                            "Content-Length: 26\r\n"
                            "Connection: keep-alive\r\n"
                            "\r\n"
                            "{\"messages\":[{\"id\":\"w1\"}]}";

static void a_length_delimited_answer(void **state)
{
    (void)state;
    h1_parser p = {0};
    size_t used;
    assert_int_equal(parse_all(&p, WA_OK, strlen(WA_OK), &used, 0), H1_DONE);
    assert_int_equal(used, strlen(WA_OK));
    assert_int_equal(p.status, 200);
    assert_string_equal(p.body.data, "{\"messages\":[{\"id\":\"w1\"}]}");
    assert_string_equal(p.content_type, "application/json");
    assert_int_equal(p.close_after, 0);
    /* the same, one byte at a time */
    assert_int_equal(parse_dribbled(&p, WA_OK, strlen(WA_OK), &used), H1_DONE);
    assert_int_equal(used, strlen(WA_OK));
    assert_int_equal(p.body.len, 26);
    oc_buf_free(&p.body);
}

static void pipelined_answers_leave_the_rest_unconsumed(void **state)
{
    (void)state;
    char two[512];
    snprintf(two, sizeof(two), "%s%s", WA_OK,
             "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}");
    h1_parser p = {0};
    size_t used;
    assert_int_equal(parse_all(&p, two, strlen(two), &used, 0), H1_DONE);
    assert_int_equal(used, strlen(WA_OK));
    size_t used2;
    assert_int_equal(parse_all(&p, two + used, strlen(two) - used, &used2, 0), H1_DONE);
    assert_int_equal(used + used2, strlen(two));
    assert_int_equal(p.status, 429);
    assert_string_equal(p.retry_after, "7");
    assert_string_equal(p.body.data, "{}");
    oc_buf_free(&p.body);
}

static void chunked_answers_with_extensions_and_trailers(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 200 OK\r\n"
                    "Transfer-Encoding: gzip, chunked\r\n"
                    "\r\n"
                    "5;ext=1\r\nhello\r\n"
                    "1A\r\n, and a chunk of 26 bytes.\r\n"
                    "0\r\n"
                    "X-Trailer: ignored\r\n"
                    "\r\n"
                    "HTTP/1.1 204 No Content\r\n\r\n";
    h1_parser p = {0};
    size_t used;
    assert_int_equal(parse_all(&p, r, strlen(r), &used, 0), H1_DONE);
    assert_string_equal(p.body.data, "hello, and a chunk of 26 bytes.");
    assert_string_equal(r + used, "HTTP/1.1 204 No Content\r\n\r\n");
    assert_int_equal(parse_dribbled(&p, r, strlen(r), &used), H1_DONE);
    assert_string_equal(p.body.data, "hello, and a chunk of 26 bytes.");
    assert_int_equal(parse_all(&p, r + used, strlen(r + used), &used, 0), H1_DONE);
    assert_int_equal(p.status, 204);
    assert_int_equal(p.body.len, 0);
    oc_buf_free(&p.body);
}

static void interim_answers_are_skipped(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    h1_parser p = {0};
    size_t used;
    assert_int_equal(parse_all(&p, r, strlen(r), &used, 0), H1_DONE);
    assert_int_equal(p.status, 201);
    assert_int_equal(used, strlen(r));
    oc_buf_free(&p.body);
}

static void close_delimited_and_http10_answers(void **state)
{
    (void)state;
    const char *r = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
    h1_parser p = {0};
    size_t used;
    assert_int_equal(parse_all(&p, r, strlen(r), &used, 0), H1_MORE);
    assert_int_equal(p.close_after, 1);
    size_t more;
    assert_int_equal(h1_parse(&p, r + used, 0, &more, 1), H1_DONE);
    assert_string_equal(p.body.data, "until the end");

    const char *c = "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy";
    assert_int_equal(parse_all(&p, c, strlen(c), &used, 0), H1_DONE);
    assert_int_equal(p.close_after, 1);
    assert_int_equal(p.status, 503);

    const char *k = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(parse_all(&p, k, strlen(k), &used, 0), H1_DONE);
    assert_int_equal(p.close_after, 0);
    oc_buf_free(&p.body);
}

static void truncated_answers_are_errors_at_eof(void **state)
{
    (void)state;
    h1_parser p = {0};
    size_t used;
    const char *part = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    assert_int_equal(parse_all(&p, part, strlen(part), &used, 0), H1_MORE);
    assert_int_equal(h1_parse(&p, "", 0, &used, 1), H1_BAD);
    assert_int_equal(parse_all(&p, "HTTP/1.1 2", 10, &used, 1), H1_BAD);
    assert_int_equal(parse_all(&p, "", 0, &used, 1), H1_BAD);
    oc_buf_free(&p.body);
}

static void malformed_and_oversized_answers(void **state)
{
    (void)state;
    const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n",
    };
    h1_parser p = {0};
    size_t used;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_all(&p, bad[i], strlen(bad[i]), &used, 0) != H1_BAD)
            fail_msg("accepted: %s", bad[i]);
    }
    /* a header block that never ends is refused once past 64 KiB */
    static char big[70 * 1024];
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', sizeof(big) - 20);
    assert_int_equal(parse_all(&p, big, sizeof(big), &used, 0), H1_BAD);
    /* a body past 1 MiB is refused and says so */
    static char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n";
    assert_int_equal(parse_all(&p, chunked, strlen(chunked), &used, 0), H1_BAD);
    assert_int_equal(p.too_large, 1);
    oc_buf_free(&p.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(urls_split_into_host_port_and_target),
        cmocka_unit_test(urls_the_client_does_not_take),
        cmocka_unit_test(a_length_delimited_answer),
        cmocka_unit_test(pipelined_answers_leave_the_rest_unconsumed),
        cmocka_unit_test(chunked_answers_with_extensions_and_trailers),
        cmocka_unit_test(interim_answers_are_skipped),
        cmocka_unit_test(close_delimited_and_http10_answers),
        cmocka_unit_test(truncated_answers_are_errors_at_eof),
        cmocka_unit_test(malformed_and_oversized_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
