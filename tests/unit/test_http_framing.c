/* http_framing_check (http_framing.c): RFC 9112 §6.3 cases. A request is
 * framed one way only, or refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <string.h>

#include "http_framing.h"

/* headers given as "Name", "value", ..., NULL */
static int check(const char *first, ...)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    va_list ap;
    va_start(ap, first);
    for (const char *k = first; k; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        /* evhttp_add_header refuses CR/LF; the values here have none */
        assert_int_equal(evhttp_add_header(&q, k, v), 0);
    }
    va_end(ap);
    const char *why = NULL;
    int rc = http_framing_check(&q, &why);
    if (rc < 0)
        assert_non_null(why);
    else
        assert_null(why);
    evhttp_clear_headers(&q);
    return rc;
}

static void plain(void **state)
{
    (void)state;
    assert_int_equal(check("Host", "x", NULL), 0);
    assert_int_equal(check("Content-Length", "2", NULL), 0);
    assert_int_equal(check("Content-Length", "0", NULL), 0);
    assert_int_equal(check("content-length", "123456789012345678", NULL), 0);
    assert_int_equal(check("Transfer-Encoding", "chunked", NULL), 0);
    assert_int_equal(check("transfer-encoding", "Chunked", NULL), 0);
    assert_int_equal(check("Transfer-Encoding", " chunked ", NULL), 0);
    /* the same length twice is one framing (RFC 9112 §6.3 item 5 allows it) */
    assert_int_equal(check("Content-Length", "2", "Content-Length", "2", NULL), 0);
    assert_int_equal(check("Content-Length", "2", "Content-Length", "002", NULL), 0);
    assert_int_equal(http_framing_check(NULL, NULL), 0);
}

static void content_length(void **state)
{
    (void)state;
    assert_int_equal(check("Content-Length", "2", "Content-Length", "3", NULL), -1);
    assert_int_equal(check("Content-Length", "3", "Host", "x", "content-length", "2", NULL), -1);
    assert_int_equal(check("Content-Length", "+2", NULL), -1);
    assert_int_equal(check("Content-Length", "-1", NULL), -1);
    assert_int_equal(check("Content-Length", " 2 2", NULL), -1);
    assert_int_equal(check("Content-Length", "2 2", NULL), -1);
    assert_int_equal(check("Content-Length", "2, 2", NULL), -1);
    assert_int_equal(check("Content-Length", "2,3", NULL), -1);
    assert_int_equal(check("Content-Length", "0x10", NULL), -1);
    assert_int_equal(check("Content-Length", "1e3", NULL), -1);
    assert_int_equal(check("Content-Length", "", NULL), -1);
    assert_int_equal(check("Content-Length", "abc", NULL), -1);
    assert_int_equal(check("Content-Length", "99999999999999999999", NULL), -1);
    assert_int_equal(check("Content-Length", "9223372036854775808", NULL), -1);
}

static void transfer_encoding(void **state)
{
    (void)state;
    assert_int_equal(check("Transfer-Encoding", "identity, chunked", NULL), -1);
    assert_int_equal(check("Transfer-Encoding", "chunked, identity", NULL), -1);
    assert_int_equal(check("Transfer-Encoding", "gzip", NULL), -1);
    assert_int_equal(check("Transfer-Encoding", "gzip, chunked", NULL), -1);
    assert_int_equal(check("Transfer-Encoding", "identity", NULL), -1);
    assert_int_equal(check("Transfer-Encoding", "chunked,", NULL), -1);
    assert_int_equal(check("Transfer-Encoding", "", NULL), -1);
    assert_int_equal(check("Transfer-Encoding", "xchunked", NULL), -1);
    assert_int_equal(check("Transfer-Encoding", "chunkedx", NULL), -1);
    assert_int_equal(check("Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked", NULL),
                     -1);
}

static void both(void **state)
{
    (void)state;
    assert_int_equal(check("Transfer-Encoding", "chunked", "Content-Length", "2", NULL), -1);
    assert_int_equal(check("Content-Length", "0", "Transfer-Encoding", "chunked", NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain),
        cmocka_unit_test(content_length),
        cmocka_unit_test(transfer_encoding),
        cmocka_unit_test(both),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
