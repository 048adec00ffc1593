/* rconn.c against a small RESP server on 127.0.0.1 (the same loop): the
 * callback FIFO, NULL for what is pending when the connection goes away,
 * rconn_free from inside a callback, a refused connect; and redistls.c's
 * pure parts (the context's file checks, the name verified and sent as
 * SNI). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rconn.h"
#include "redistls.h"

/* ---- the server: ECHO x answers +x, HOLD answers nothing, CLOSE closes */

typedef struct server {
    struct evconnlistener *l;
    struct bufferevent *peer;
    redisReader *rd;
    int port;
    int commands;
} server;

static void srv_event(struct bufferevent *bev, short what, void *arg);

static void srv_drained(struct bufferevent *bev, void *arg)
{
    server *s = arg;
    bufferevent_free(bev);
    s->peer = NULL;
}

static void srv_read(struct bufferevent *bev, void *arg)
{
    server *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    char *buf = malloc(n);
    evbuffer_remove(in, buf, n);
    redisReaderFeed(s->rd, buf, n);
    free(buf);
    void *r;
    while (redisReaderGetReply(s->rd, &r) == REDIS_OK && r) {
        redisReply *q = r;
        s->commands++;
        if (q->type == REDIS_REPLY_ARRAY && q->elements == 2 && !strcmp(q->element[0]->str, "ECHO"))
            evbuffer_add_printf(bufferevent_get_output(bev), "+%s\r\n", q->element[1]->str);
        else if (q->type == REDIS_REPLY_ARRAY && !strcmp(q->element[0]->str, "CLOSE")) {
            /* once what was answered before is out */
            freeReplyObject(r);
            bufferevent_disable(bev, EV_READ);
            bufferevent_setcb(bev, NULL, srv_drained, srv_event, s);
            if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
                srv_drained(bev, s);
            return;
        }
        freeReplyObject(r);
    }
}

static void srv_event(struct bufferevent *bev, short what, void *arg)
{
    server *s = arg;
    (void)what;
    bufferevent_free(bev);
    s->peer = NULL;
}

static void srv_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                       void *arg)
{
    (void)sa;
    (void)len;
    server *s = arg;
    s->peer = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(s->peer, srv_read, NULL, srv_event, s);
    bufferevent_enable(s->peer, EV_READ | EV_WRITE);
}

static void server_start(server *s, struct event_base *base)
{
    memset(s, 0, sizeof(*s));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    s->l = evconnlistener_new_bind(base, srv_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                   -1, (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(s->l);
    struct sockaddr_in got;
    socklen_t gl = sizeof(got);
    getsockname(evconnlistener_get_fd(s->l), (struct sockaddr *)&got, &gl);
    s->port = ntohs(got.sin_port);
    s->rd = redisReaderCreate();
}

static void server_stop(server *s)
{
    if (s->peer)
        bufferevent_free(s->peer);
    evconnlistener_free(s->l);
    redisReaderFree(s->rd);
}

/* ---- the client side */

typedef struct run {
    struct event_base *base;
    rconn *c;
    int connected, connect_failed, disconnected;
    char got[16][32]; /* each reply's text, "NULL" for NULL */
    int n;
    int free_at; /* rconn_free from inside the callback of reply number free_at */
} run;

static void on_reply(rconn *c, redisReply *r, void *priv)
{
    run *x = priv;
    snprintf(x->got[x->n], sizeof(x->got[0]), "%s", r ? r->str : "NULL");
    if (++x->n == x->free_at) {
        rconn_free(c);
        rconn_free(c); /* twice: still one free */
        x->c = NULL;
    }
    if (x->n >= 3 || (r == NULL && x->n >= 1))
        event_base_loopbreak(x->base);
}

static void on_connect(rconn *c, int ok, void *data)
{
    run *x = data;
    (void)c;
    if (ok)
        x->connected = 1;
    else {
        x->connect_failed = 1;
        assert_true(strlen(rconn_errstr(c)) > 0);
        x->c = NULL;
    }
    event_base_loopbreak(x->base);
}

static void on_disconnect(rconn *c, int clean, void *data)
{
    run *x = data;
    (void)clean;
    assert_true(strlen(rconn_errstr(c)) > 0);
    x->disconnected = 1;
    x->c = NULL;
    event_base_loopbreak(x->base);
}

static void loop_for(run *x, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(x->base, &tv);
    event_base_dispatch(x->base);
}

static void send_echo(run *x, const char *what)
{
    const char *argv[] = {"ECHO", what};
    assert_int_equal(rconn_command_argv(x->c, on_reply, x, 2, argv, NULL), 0);
}

static void connect_to(run *x, server *s)
{
    char err[256];
    x->c = rconn_connect(x->base, "127.0.0.1", s->port, NULL, NULL, on_connect, on_disconnect, x,
                         err, sizeof(err));
    assert_non_null(x->c);
    /* nothing before the connect */
    const char *argv[] = {"ECHO", "early"};
    assert_int_equal(rconn_command_argv(x->c, on_reply, x, 2, argv, NULL), -1);
    for (int i = 0; i < 50 && !x->connected; i++)
        loop_for(x, 100);
    assert_true(x->connected);
}

static void replies_come_in_order(void **state)
{
    (void)state;
    run x = {.base = event_base_new()};
    server s;
    server_start(&s, x.base);
    connect_to(&x, &s);
    send_echo(&x, "a");
    send_echo(&x, "b");
    send_echo(&x, "c");
    for (int i = 0; i < 50 && x.n < 3; i++)
        loop_for(&x, 100);
    assert_int_equal(x.n, 3);
    assert_string_equal(x.got[0], "a");
    assert_string_equal(x.got[1], "b");
    assert_string_equal(x.got[2], "c");
    rconn_free(x.c);
    assert_int_equal(x.disconnected, 0); /* rconn_free does not call it */
    server_stop(&s);
    event_base_free(x.base);
}

static void free_from_inside_a_callback(void **state)
{
    (void)state;
    run x = {.base = event_base_new(), .free_at = 1};
    server s;
    server_start(&s, x.base);
    connect_to(&x, &s);
    send_echo(&x, "a");
    send_echo(&x, "b");
    send_echo(&x, "c");
    for (int i = 0; i < 50 && x.n < 3; i++)
        loop_for(&x, 100);
    /* the replies after the free never reach their callbacks: NULL */
    assert_int_equal(x.n, 3);
    assert_string_equal(x.got[0], "a");
    assert_string_equal(x.got[1], "NULL");
    assert_string_equal(x.got[2], "NULL");
    assert_null(x.c);
    assert_int_equal(x.disconnected, 0);
    server_stop(&s);
    event_base_free(x.base);
}

static void a_closed_connection_fails_what_is_pending(void **state)
{
    (void)state;
    run x = {.base = event_base_new()};
    server s;
    server_start(&s, x.base);
    connect_to(&x, &s);
    send_echo(&x, "a");
    const char *hold[] = {"HOLD"}, *close_[] = {"CLOSE"};
    assert_int_equal(rconn_command_argv(x.c, on_reply, &x, 1, hold, NULL), 0);
    assert_int_equal(rconn_command_argv(x.c, on_reply, &x, 1, close_, NULL), 0);
    for (int i = 0; i < 50 && !x.disconnected; i++)
        loop_for(&x, 100);
    assert_true(x.disconnected);
    assert_int_equal(x.n, 3);
    assert_string_equal(x.got[0], "a");
    assert_string_equal(x.got[1], "NULL");
    assert_string_equal(x.got[2], "NULL");
    server_stop(&s);
    event_base_free(x.base);
}

static void a_refused_connect_is_reported_from_the_loop(void **state)
{
    (void)state;
    run x = {.base = event_base_new()};
    server s;
    server_start(&s, x.base);
    int port = s.port;
    server_stop(&s); /* nobody listens there now */
    char err[256];
    x.c = rconn_connect(x.base, "127.0.0.1", port, NULL, NULL, on_connect, on_disconnect, &x, err,
                        sizeof(err));
    assert_non_null(x.c);
    assert_int_equal(x.connect_failed, 0); /* not from inside rconn_connect */
    for (int i = 0; i < 50 && !x.connect_failed; i++)
        loop_for(&x, 100);
    assert_true(x.connect_failed);
    assert_null(x.c);
    event_base_free(x.base);
}

/* ---- redistls.c */

static void tls_context_checks_its_files(void **state)
{
    (void)state;
    char err[512];
    redis_tls_opts o = {.cert_file = "/nonexistent/c.pem"};
    assert_null(redis_tls_ctx_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "go together"));
    o = (redis_tls_opts){.ca_file = "/nonexistent/ca.pem"};
    assert_null(redis_tls_ctx_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "redis_tls_ca_file /nonexistent/ca.pem"));
    o = (redis_tls_opts){.cert_file = "/nonexistent/c.pem", .key_file = "/nonexistent/k.pem"};
    assert_null(redis_tls_ctx_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "redis_tls_cert_file /nonexistent/c.pem"));
    o = (redis_tls_opts){0};
    SSL_CTX *ctx = redis_tls_ctx_new(&o, err, sizeof(err)); /* the system's CAs */
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
    SSL_CTX_free(ctx);
}

static void the_name_is_verified_and_sent_as_sni(void **state)
{
    (void)state;
    char err[256];
    redis_tls_opts o = {0};
    SSL_CTX *ctx = redis_tls_ctx_new(&o, err, sizeof(err));
    assert_non_null(ctx);
    struct {
        const char *host, *server_name, *sni, *verified_host;
    } cases[] = {
        {"redis.example.com", NULL, "redis.example.com", "redis.example.com"},
        {"10.0.0.5", "redis.internal", "redis.internal", "redis.internal"},
        {"10.0.0.5", NULL, NULL, NULL}, /* an address: checked as an IP, no SNI */
        {"::1", NULL, NULL, NULL},
        {"redis.example.com", "", "redis.example.com", "redis.example.com"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SSL *ssl = SSL_new(ctx);
        assert_int_equal(
            redis_tls_prepare(ssl, cases[i].host, cases[i].server_name, err, sizeof(err)), 0);
        const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        const char *vh = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0);
        if (cases[i].sni)
            assert_string_equal(sni, cases[i].sni);
        else
            assert_null(sni);
        if (cases[i].verified_host)
            assert_string_equal(vh, cases[i].verified_host);
        else
            assert_null(vh);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
}

/* rconn_format makes the bytes hiredis's redisFormatCommandArgv makes */
static void commands_are_formatted_as_hiredis_formats_them(void **state)
{
    (void)state;
    static char big[100000];
    memset(big, 'x', sizeof(big));
    const char *argv[] = {"EVALSHA", "", "0", "+15550000001", "a\r\nb\0c", big, "9999999999"};
    const size_t lens[] = {7, 0, 1, 12, 7, sizeof(big), 10};
    for (int argc = 0; argc <= 7; argc++) {
        char *mine = NULL, *theirs = NULL;
        long n = rconn_format(&mine, argc, argv, lens);
        int k = redisFormatCommandArgv(&theirs, argc, argv, lens);
        assert_true(n >= 0 && k >= 0);
        assert_int_equal(n, k);
        assert_memory_equal(mine, theirs, (size_t)n);
        free(mine);
        redisFreeCommand(theirs);
    }
    /* lens NULL: strlen of each */
    const char *words[] = {"SET", "omni:pmid:wamid.X", "{\"c\":\"bench\"}"};
    char *mine = NULL, *theirs = NULL;
    long n = rconn_format(&mine, 3, words, NULL);
    int k = redisFormatCommandArgv(&theirs, 3, words, NULL);
    assert_int_equal(n, k);
    assert_memory_equal(mine, theirs, (size_t)n);
    free(mine);
    redisFreeCommand(theirs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commands_are_formatted_as_hiredis_formats_them),
        cmocka_unit_test(replies_come_in_order),
        cmocka_unit_test(free_from_inside_a_callback),
        cmocka_unit_test(a_closed_connection_fails_what_is_pending),
        cmocka_unit_test(a_refused_connect_is_reported_from_the_loop),
        cmocka_unit_test(tls_context_checks_its_files),
        cmocka_unit_test(the_name_is_verified_and_sent_as_sni),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
