/* A Redis connection on a bufferevent with hiredis's reader (rconn.h). */
#include "rconn.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "digits.h"
#include "redistls.h"

typedef struct rconn_cb {
    rconn_reply_fn fn;
    void *priv;
    struct rconn_cb *next;
} rconn_cb;

struct rconn {
    struct bufferevent *bev;
    SSL *ssl; /* owned by bev */
    redisReader *reader;
    rconn_cb *head, *tail;
    rconn_connect_fn on_connect;
    rconn_disconnect_fn on_disconnect;
    void *data;
    int connected;
    int answered;       /* a reply has arrived on this connection */
    int in_cb;          /* inside one of our callbacks: a free waits */
    int free_requested; /* rconn_free called from inside a callback */
    int freeing;        /* going away: no more commands, no second free */
    char errstr[256];
};

static void destroy(rconn *c, int notify)
{
    c->freeing = 1;
    if (c->bev) {
        bufferevent_free(c->bev); /* closes the socket, frees the SSL */
        c->bev = NULL;
    }
    c->in_cb++;
    while (c->head) {
        rconn_cb *cb = c->head;
        c->head = cb->next;
        if (cb->fn)
            cb->fn(c, NULL, cb->priv);
        free(cb);
    }
    c->tail = NULL;
    if (notify == 1 && c->on_connect)
        c->on_connect(c, 0, c->data);
    else if (notify == 2 && c->on_disconnect)
        c->on_disconnect(c, c->errstr[0] == '\0', c->data);
    redisReaderFree(c->reader);
    free(c);
}

/* after a callback: the free it asked for */
static int leave_cb(rconn *c)
{
    if (--c->in_cb == 0 && c->free_requested && !c->freeing) {
        destroy(c, 0);
        return 1;
    }
    return 0;
}

static void describe(rconn *c, short what)
{
    /* libevent queues OpenSSL's errors and, for a socket error or a close
     * without close_notify, SSL_get_error's code (library 0): keep the
     * first real one */
    unsigned long e = 0, x;
    int syscall = 0;
    while (c->ssl && (x = bufferevent_get_openssl_error(c->bev)) != 0) {
        if (ERR_GET_LIB(x) == 0)
            syscall = 1;
        else if (!e)
            e = x;
    }
    int serr = EVUTIL_SOCKET_ERROR();
    /* a write can fail on the server's close before the read that would
     * have met its alert (TLS 1.3 checks a client certificate after the
     * handshake): read what the socket still holds for the reason */
    for (int i = 0; c->ssl && c->connected && !e && i < 4; i++) {
        char scratch[512];
        ERR_clear_error();
        if (SSL_read(c->ssl, scratch, sizeof(scratch)) > 0)
            continue;
        while ((x = ERR_get_error()) != 0)
            if (ERR_GET_LIB(x) != 0 && ERR_GET_REASON(x) != SSL_R_UNEXPECTED_EOF_WHILE_READING &&
                !e)
                e = x;
        break;
    }
    long v = c->ssl && !c->connected ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    int dnserr = bufferevent_socket_get_dns_error(c->bev);
    if (dnserr) {
        snprintf(c->errstr, sizeof(c->errstr), "cannot resolve the host: %s",
                 evutil_gai_strerror(dnserr));
    } else if (v != X509_V_OK) {
        snprintf(c->errstr, sizeof(c->errstr), "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    } else if (e) {
        char buf[200];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(c->errstr, sizeof(c->errstr), "TLS: %s", buf);
    } else if (c->ssl && c->connected && !c->answered && !SSL_get_certificate(c->ssl)) {
        /* the alert lost to a reset: a server that wants a client
         * certificate is the usual reason */
        snprintf(c->errstr, sizeof(c->errstr),
                 "closed by the server right after the TLS handshake (if it requires a client "
                 "certificate, set redis_tls_cert_file)");
    } else if ((what & BEV_EVENT_ERROR) && serr && !syscall) {
        snprintf(c->errstr, sizeof(c->errstr), "%s", evutil_socket_error_to_string(serr));
    } else if (syscall || (what & BEV_EVENT_EOF)) {
        snprintf(c->errstr, sizeof(c->errstr), "%s",
                 c->connected ? "closed by the server"
                              : "closed by the server during connect (TLS to a plain port?)");
    } else {
        snprintf(c->errstr, sizeof(c->errstr), "connection error");
    }
}

static void fail(rconn *c, short what)
{
    if (c->freeing)
        return;
    describe(c, what);
    /* a server that closes cleanly between replies: errstr stays for the
     * log, the disconnect is reported as an error all the same */
    destroy(c, c->connected ? 2 : 1);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    rconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v[8];
    for (;;) {
        int n = evbuffer_peek(in, -1, NULL, v, 8);
        if (n <= 0)
            break;
        size_t fed = 0;
        for (int i = 0; i < n && i < 8; i++) {
            if (redisReaderFeed(c->reader, v[i].iov_base, v[i].iov_len) != REDIS_OK) {
                snprintf(c->errstr, sizeof(c->errstr), "out of memory");
                fail(c, 0);
                return;
            }
            fed += v[i].iov_len;
        }
        evbuffer_drain(in, fed);
    }
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            snprintf(c->errstr, sizeof(c->errstr), "protocol error: %.200s", c->reader->errstr);
            destroy(c, 2);
            return;
        }
        if (!reply)
            return;
        c->answered = 1;
        rconn_cb *cb = c->head;
        if (!cb) { /* an answer nobody asked for: not a Redis we can talk to */
            freeReplyObject(reply);
            snprintf(c->errstr, sizeof(c->errstr), "unexpected reply");
            destroy(c, 2);
            return;
        }
        c->head = cb->next;
        if (!c->head)
            c->tail = NULL;
        c->in_cb++;
        if (cb->fn)
            cb->fn(c, reply, cb->priv);
        free(cb);
        freeReplyObject(reply);
        if (leave_cb(c))
            return;
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    rconn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->in_cb++;
        if (c->on_connect)
            c->on_connect(c, 1, c->data);
        leave_cb(c);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT))
        fail(c, what);
}

rconn *rconn_connect(struct event_base *base, const char *host, int port, SSL_CTX *ctx,
                     const char *server_name, rconn_connect_fn on_connect,
                     rconn_disconnect_fn on_disconnect, void *data, char *err, size_t err_len)
{
    rconn *c = calloc(1, sizeof(*c));
    if (!c || !(c->reader = redisReaderCreate())) {
        free(c);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    c->on_connect = on_connect;
    c->on_disconnect = on_disconnect;
    c->data = data;
    int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    if (ctx) {
        c->ssl = SSL_new(ctx);
        if (!c->ssl) {
            snprintf(err, err_len, "out of memory");
            goto fail;
        }
        if (redis_tls_prepare(c->ssl, host, server_name, err, err_len) < 0) {
            SSL_free(c->ssl);
            goto fail;
        }
        c->bev = bufferevent_openssl_socket_new(base, -1, c->ssl, BUFFEREVENT_SSL_CONNECTING, opts);
        if (!c->bev)
            SSL_free(c->ssl);
    } else {
        c->bev = bufferevent_socket_new(base, -1, opts);
    }
    if (!c->bev) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* a failure here is reported through event_cb, from the loop */
    bufferevent_socket_connect_hostname(c->bev, NULL, AF_UNSPEC, host, port);
    return c;
fail:
    if (c->bev)
        bufferevent_free(c->bev);
    redisReaderFree(c->reader);
    free(c);
    return NULL;
}

/* "<c><n>\r\n" at p: the end */
static char *resp_len(char *p, char c, size_t n)
{
    char d[24];
    const char *s = digits_before(d + sizeof(d), n);
    *p++ = c;
    while (s < d + sizeof(d))
        *p++ = *s++;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

long rconn_format(char **out, int argc, const char **argv, const size_t *lens)
{
    size_t total = 1 + 20 + 2;
    for (int i = 0; i < argc; i++)
        total += 1 + 20 + 2 + (lens ? lens[i] : strlen(argv[i])) + 2;
    char *b = malloc(total);
    *out = b;
    if (!b)
        return -1;
    char *p = resp_len(b, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        p = resp_len(p, '$', n);
        memcpy(p, argv[i], n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }
    return (long)(p - b);
}

int rconn_command_argv(rconn *c, rconn_reply_fn fn, void *priv, int argc, const char **argv,
                       const size_t *lens)
{
    if (!c || !c->connected || c->freeing || c->free_requested)
        return -1;
    rconn_cb *cb = malloc(sizeof(*cb));
    if (!cb)
        return -1;
    char *cmd = NULL;
    long len = rconn_format(&cmd, argc, argv, lens);
    if (len < 0 || bufferevent_write(c->bev, cmd, (size_t)len) < 0) {
        free(cmd);
        free(cb);
        return -1;
    }
    free(cmd);
    cb->fn = fn;
    cb->priv = priv;
    cb->next = NULL;
    if (c->tail)
        c->tail->next = cb;
    else
        c->head = cb;
    c->tail = cb;
    return 0;
}

void rconn_set_disconnect(rconn *c, rconn_disconnect_fn fn)
{
    c->on_disconnect = fn;
}

void rconn_free(rconn *c)
{
    if (!c || c->freeing)
        return;
    if (c->in_cb) {
        c->free_requested = 1;
        return;
    }
    destroy(c, 0);
}

const char *rconn_errstr(const rconn *c)
{
    return c->errstr;
}

redisReader *rconn_reader(rconn *c)
{
    return c->reader;
}
