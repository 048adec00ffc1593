/* The native HTTP/1.1 client (see h1.h). Per origin (host, port): a FIFO of
 * requests waiting for a connection and up to max_host_connections
 * keep-alive connections, each with a FIFO of requests written and awaiting
 * their answers (more than one only when the connector allows pipelining).
 *
 * What a transfer library would otherwise decide, decided here:
 * - a request is never written twice on its own: a connection that closes
 *   without an answer fails its requests, each telling whether a byte of
 *   it had left (request_sent) and whether an answer head came (answered);
 *   the daemon decides (a POST the server may have processed is not resent,
 *   RFC 9110 9.2.2). Browsers and libcurl resend a request written on a
 *   reused connection that closed at once (the keep-alive race); here an
 *   idle connection is looked at (a peek for the peer's close) before it is
 *   reused, and idle connections are closed after keepalive_idle_ms, before
 *   a server's own idle timeout, so that race is rare;
 * - a connection that answers `Connection: close` takes no more requests;
 *   requests already written behind that answer were not processed (RFC
 *   9112 9.6) and are written again elsewhere.
 * Error completions run from a zero-delay event, so no callback ever runs
 * inside h1_submit. Timeouts are checked every 50 ms. */
#include "h1.h"
#include "clock.h"
#include "netio.h"
#include "tlsclient.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_MS 50
#define PEEK_IDLE_US 10000 /* an idle connection older than this is peeked at before reuse */
#define DEPTH_MAX 64
#define KEEP_MAX (64 * 1024)           /* buffers grown past this are freed once used */
#define TLS_READ_MAX (2 * 1024 * 1024) /* read per event before parsing (TLS) */

/* ---- the client */

typedef struct h1req h1req;
typedef struct h1conn h1conn;
typedef struct origin origin;

struct h1req {
    h1req *next;
    oc_request req;
    transport_done_fn done;
    void *arg;
    long long start_us, deadline_us; /* deadline 0: none */
    int connect_timeout_ms;
    int depth;        /* requests this one may share a connection with, itself included */
    long long wstart; /* where its bytes start in its connection's output stream */
    size_t target_off, target_len; /* path and query within req.url */
    int net_error;                 /* for a deferred failure: */
    const char *detail;
    int sent;     /* a byte of it had left */
    int answered; /* its answer head had arrived (status) */
    long status;
};

struct h1conn {
    h1conn *prev, *next;
    origin *o;
    netio io;           /* dialing (netio_dial), then the socket, plain or TLS, and its buffers */
    long long wqueued;  /* bytes of requests put in io.wbuf since the start */
    h1conn *flush_next; /* on the list of connections with bytes to send */
    int flushing;
    int connected; /* TCP connected and, for https, the TLS handshake done */
    int closing;   /* its last answer said close: it takes no more requests */
    long long connect_deadline_us, idle_since_us;
    h1req *out, **out_tail; /* written, awaiting answers, in order */
    int nout;
    int answered;
    h1_parser p;
};

struct origin {
    origin *next;
    h1 *h;
    h1_url u;                   /* host, port, Host header (target unused) */
    h1conn *conns, *conns_tail; /* idle connections first, busy ones after */
    int nconns;
    h1req *pend, **pend_tail;
    SSL_SESSION *session; /* https: the newest session, resumed by the next connection */
};

struct h1 {
    struct event_base *base;
    struct evdns_base *dns;
    origin *origins;
    int max_total, max_host, total;
    long long idle_us; /* idle connections are closed after */
    size_t inflight;
    struct event *sweep;
    struct event *later_ev;
    h1req *later, **later_tail; /* failures awaiting their callbacks */
    struct event *flush_ev;
    h1conn *flush; /* connections with requests to send this loop turn */
    oc_buf scratch;
    char *ca_file; /* https: the CA bundle; NULL: the system's store */
    SSL_CTX *tls;  /* made at the first https request */
    int tls_failed;
};

static void req_free(h1req *r)
{
    oc_request_free(&r->req);
    free(r);
}

static void complete(h1 *h, h1req *r, const oc_response *resp)
{
    h->inflight--;
    long long lat = omni_mono_us() - r->start_us;
    if (r->done)
        r->done(r->arg, resp, lat);
    req_free(r);
}

static void fail_later(h1 *h, h1req *r, int net_error, const char *detail)
{
    r->net_error = net_error;
    r->detail = detail;
    r->next = NULL;
    *h->later_tail = r;
    h->later_tail = &r->next;
    event_active(h->later_ev, EV_TIMEOUT, 0);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h1 *h = arg;
    h1req *list = h->later;
    h->later = NULL;
    h->later_tail = &h->later;
    while (list) {
        h1req *r = list;
        list = r->next;
        oc_response resp = {0};
        resp.net_error = r->net_error;
        resp.net_detail = r->detail;
        resp.request_sent = r->sent;
        resp.answered = r->answered;
        resp.status = r->status;
        resp.body = "";
        resp.now_ms = omni_now_ms();
        complete(h, r, &resp);
    }
}

static void origin_pump(h1 *h, origin *o);

static void push_front(origin *o, h1req *r)
{
    r->next = o->pend;
    o->pend = r;
    if (o->pend_tail == &o->pend)
        o->pend_tail = &r->next;
}

static void conn_unlink(origin *o, h1conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        o->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        o->conns_tail = c->prev;
    c->prev = c->next = NULL;
}

static void conn_push(origin *o, h1conn *c, int front)
{
    if (front) {
        c->next = o->conns;
        if (o->conns)
            o->conns->prev = c;
        else
            o->conns_tail = c;
        o->conns = c;
    } else {
        c->prev = o->conns_tail;
        if (o->conns_tail)
            o->conns_tail->next = c;
        else
            o->conns = c;
        o->conns_tail = c;
    }
}

static void conn_free(h1conn *c)
{
    netio_close(&c->io, c->connected); /* close_notify on a connection in good order */
    oc_buf_free(&c->p.body);
    free(c);
}

/* Close c. Its requests: those behind a `Connection: close` answer are
 * written again elsewhere (requeue); the rest fail with net_error, each
 * with whether a byte of it had left and, for the first, whether its
 * answer head had come. */
static void conn_close(h1 *h, h1conn *c, int net_error, const char *detail, int requeue)
{
    origin *o = c->o;
    conn_unlink(o, c);
    o->nconns--;
    h->total--;
    if (c->flushing)
        for (h1conn **pp = &h->flush; *pp; pp = &(*pp)->flush_next)
            if (*pp == c) {
                *pp = c->flush_next;
                break;
            }
    h1req *list = c->out;
    long long wsent = c->io.wsent;
    int head = c->p.st != H1_S_HEAD && c->p.status >= 200;
    long status = c->p.status;
    conn_free(c);
    /* requeue in order: collect, then push to the front in reverse */
    h1req *again[DEPTH_MAX];
    int nagain = 0;
    while (list) {
        h1req *r = list;
        list = r->next;
        if (requeue && nagain < DEPTH_MAX) {
            again[nagain++] = r;
        } else {
            r->sent = wsent > r->wstart;
            r->answered = head;
            r->status = head ? status : 0;
            head = 0; /* only the first was being answered */
            fail_later(h, r, net_error, detail);
        }
    }
    while (nagain > 0)
        push_front(o, again[--nagain]);
    if (o->pend && o->nconns == 0 && net_error == OC_NET_CONNECT) {
        /* the origin cannot be reached: fail what waits for it rather than
         * dial again for each */
        while (o->pend) {
            h1req *r = o->pend;
            o->pend = r->next;
            fail_later(h, r, net_error, detail);
        }
        o->pend_tail = &o->pend;
    }
    origin_pump(h, o);
}

static void finish_head(h1 *h, h1conn *c)
{
    h1req *r = c->out;
    c->out = r->next;
    if (!c->out)
        c->out_tail = &c->out;
    c->nout--;
    c->answered++;
    if (c->nout == 0) {
        c->idle_since_us = omni_mono_us();
        conn_unlink(c->o, c);
        conn_push(c->o, c, 1);
    }
    h1_parser *p = &c->p;
    if (oc_buf_reserve(&p->body, 0) == 0)
        p->body.data[p->body.len] = '\0';
    oc_response resp = {0};
    resp.net_error = OC_NET_OK;
    resp.net_detail = "";
    resp.request_sent = 1;
    resp.answered = 1;
    resp.status = p->status;
    resp.body = p->body.data ? p->body.data : "";
    resp.body_len = p->body.len;
    resp.retry_after = p->retry_after[0] ? p->retry_after : NULL;
    resp.content_type = p->content_type[0] ? p->content_type : NULL;
    resp.now_ms = omni_now_ms();
    complete(h, r, &resp);
}

/* Parse every whole answer received; the callbacks run as each is complete
 * (they may submit more: those go on this or other connections). eof: 1
 * the peer closed (for TLS: with close_notify), 2 a TLS peer closed without
 * close_notify: an answer delimited by the close may be cut short, so it
 * is not taken as whole (RFC 8446 6.1); otherwise as 1. */
static void conn_parse(h1 *h, h1conn *c, int eof)
{
    size_t off = 0;
    for (;;) {
        size_t n = c->io.rlen - off;
        if (!c->out) {
            if (n)
                conn_close(h, c, OC_NET_PROTOCOL, "bytes no request asked for", 0);
            else if (eof)
                conn_close(h, c, OC_NET_OK, "", 0); /* the peer closed an idle connection */
            else
                break;
            return;
        }
        if (n == 0 && !eof)
            break;
        size_t used = 0;
        int rc = h1_parse(&c->p, c->io.rbuf ? c->io.rbuf + off : "", n, &used, eof == 1);
        off += used;
        if (rc == H1_MORE && eof == 2) {
            if (c->p.st == H1_S_UNTIL_EOF) {
                conn_close(h, c, OC_NET_RESET, "TLS connection closed without close_notify", 0);
                return;
            }
            used = 0;
            rc = h1_parse(&c->p, c->io.rbuf ? c->io.rbuf + off : "", c->io.rlen - off, &used, 1);
            off += used;
        }
        if (rc == H1_MORE)
            break;
        if (rc == H1_BAD) {
            if (c->p.too_large) {
                conn_close(h, c, OC_NET_OTHER, "response too large", 0);
            } else if (eof) {
                conn_close(h, c, OC_NET_RESET,
                           c->p.st == H1_S_HEAD && n == 0 ? "empty reply from server"
                                                          : "connection closed mid-answer",
                           0);
            } else {
                conn_close(h, c, OC_NET_PROTOCOL, "malformed HTTP answer", 0);
            }
            return;
        }
        int close_after = c->p.close_after;
        c->closing = close_after; /* before the callback, which may submit more */
        finish_head(h, c);
        h1_parser_reset(&c->p);
        if (close_after) {
            /* nothing written behind this answer was processed */
            conn_close(h, c, OC_NET_RESET, "connection closed", 1);
            return;
        }
        if (c->o->pend)
            origin_pump(h, c->o); /* room on this connection now */
    }
    if (off) {
        memmove(c->io.rbuf, c->io.rbuf + off, c->io.rlen - off);
        c->io.rlen -= off;
    }
    if (c->io.rlen == 0 && c->io.rcap > KEEP_MAX) {
        free(c->io.rbuf);
        c->io.rbuf = NULL;
        c->io.rcap = 0;
    }
}

static void conn_broken(h1 *h, h1conn *c, const char *detail)
{
    conn_close(h, c, OC_NET_RESET, detail, 0);
}

static void tls_handshake(h1 *h, h1conn *c);

/* Read and parse once. https: up to TLS_READ_MAX a turn (the rest the next
 * turn). The peer's close_notify is the end of the stream; a close without
 * it (or a fatal alert, or any TLS error) ends an answer delimited by the
 * close as broken (it may be cut short: RFC 8446 6.1), anything else as a
 * plain close would, after the whole answers decrypted before it. */
static void conn_read_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h1conn *c = arg;
    h1 *h = c->o->h;
    if (c->io.ssl && c->io.handshaking) {
        tls_handshake(h, c);
        return;
    }
    switch (netio_read(&c->io, c->io.ssl ? TLS_READ_MAX : SIZE_MAX)) {
    case NETIO_AGAIN:
        return;
    case NETIO_NOMEM:
        conn_close(h, c, OC_NET_OTHER, "out of memory", 0);
        return;
    case NETIO_RESET:
        conn_broken(h, c, "connection reset");
        return;
    case NETIO_BROKEN:
        conn_close(h, c, OC_NET_RESET, "connection reset", 0);
        return;
    case NETIO_FULL:
        event_active(c->io.rev, EV_READ, 0); /* the rest next turn */
        conn_parse(h, c, 0);
        return;
    case NETIO_EOF:
        conn_parse(h, c, 1);
        return;
    case NETIO_CUT:
        conn_parse(h, c, 2); /* conn_parse decides */
        return;
    default:
        conn_parse(h, c, 0);
    }
}

/* Send what is buffered: 0, or -1 when the connection is broken. */
static int conn_send(h1conn *c)
{
    return netio_send(&c->io, 0);
}

static void conn_write_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h1conn *c = arg;
    if (c->io.ssl && c->io.handshaking)
        tls_handshake(c->o->h, c);
    else if (conn_send(c) < 0)
        conn_broken(c->o->h, c, "connection reset");
}

/* Requests written in one loop turn leave in one send per connection. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h1 *h = arg;
    h1conn *c;
    while ((c = h->flush)) {
        h->flush = c->flush_next;
        c->flushing = 0;
        if (c->connected && conn_send(c) < 0)
            conn_broken(h, c, "connection reset");
    }
}

/* ---- TLS (https): OpenSSL on the connected non-blocking socket. The
 * peer is verified as libcurl verifies it: the chain against tls_ca_file or
 * the system's store, the name against the certificate's subjectAltName
 * (partial wildcards refused; an IP literal against its IP entries), SNI
 * for names; TLS 1.2 at least; renegotiation refused; ALPN http/1.1. The
 * newest session of an origin is resumed by its next connection. */

static SSL_CTX *tls_ctx(h1 *h)
{
    if (h->tls || h->tls_failed)
        return h->tls;
    static const unsigned char alpn[] = "\x08http/1.1";
    h->tls = tlsc_ctx_new(h->ca_file, alpn, sizeof(alpn) - 1, 1);
    h->tls_failed = h->tls == NULL;
    return h->tls;
}

static void tls_handshake(h1 *h, h1conn *c)
{
    int rc = netio_handshake(&c->io);
    if (rc == 0)
        return;
    if (rc < 0) {
        /* nothing of a request left: safe to try again; an origin that
         * fails every handshake fails what waits for it (conn_close) */
        conn_close(h, c, OC_NET_CONNECT,
                   tlsc_failed(c->io.ssl, "https", c->o->u.host, c->o->u.port), 0);
        return;
    }
    c->connected = 1;
    if (conn_send(c) < 0)
        conn_broken(h, c, "connection reset");
}

static void tls_start(h1 *h, h1conn *c)
{
    const char *why = netio_tls_start(&c->io, tls_ctx(h), c->o->u.host, &c->o->session);
    if (why) {
        conn_close(h, c, OC_NET_CONNECT, why, 0);
        return;
    }
    tls_handshake(h, c);
}

/* netio_dial's end: connected (why NULL), or not */
static void conn_dialed(void *arg, int net_error, const char *why)
{
    h1conn *c = arg;
    h1 *h = c->o->h;
    if (net_error != OC_NET_OK) {
        conn_close(h, c, net_error, why, 0);
        return;
    }
    if (c->o->u.tls) {
        tls_start(h, c);
        return;
    }
    c->connected = 1;
    if (conn_send(c) < 0)
        conn_broken(h, c, "connection reset");
}

static h1conn *conn_open(h1 *h, origin *o, int connect_timeout_ms)
{
    h1conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->io.fd = -1;
    c->o = o;
    c->out_tail = &c->out;
    h1_parser_reset(&c->p);
    c->connect_deadline_us =
        omni_mono_us() + (long long)(connect_timeout_ms > 0 ? connect_timeout_ms : 300000) * 1000;
    conn_push(o, c, 1);
    o->nconns++;
    h->total++;
    /* a connection that failed at once is closed by the sweep, which fails
     * its requests from the event loop */
    if (netio_dial(&c->io, h->base, h->dns, o->u.host, o->u.port, conn_read_ev, conn_write_ev,
                   conn_dialed, c) < 0)
        c->connect_deadline_us = 0;
    return c;
}

static int write_req(h1 *h, h1conn *c, h1req *r)
{
    oc_request *q = &r->req;
    oc_buf *b = &h->scratch;
    oc_buf_reset(b);
    const char *target = q->url + r->target_off;
    const char *method = q->method ? q->method : "POST";
    int get = strcmp(method, "GET") == 0;
    oc_buf_puts(b, method);
    oc_buf_append(b, " ", 1);
    if (r->target_len == 0 || target[0] != '/')
        oc_buf_append(b, "/", 1);
    oc_buf_append(b, target, r->target_len);
    oc_buf_puts(b, " HTTP/1.1\r\nHost: ");
    oc_buf_puts(b, c->o->u.hostport);
    oc_buf_puts(b, "\r\nAccept: */*\r\n");
    for (int i = 0; i < q->n_headers; i++) {
        oc_buf_puts(b, q->headers[i]);
        oc_buf_append(b, "\r\n", 2);
    }
    if (q->userpwd) {
        size_t n = strlen(q->userpwd);
        char enc[4 * ((n + 2) / 3) + 1];
        EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)q->userpwd, (int)n);
        oc_buf_puts(b, "Authorization: Basic ");
        oc_buf_puts(b, enc);
        oc_buf_append(b, "\r\n", 2);
    }
    if (!get || q->body.len) {
        char num[24], *p = num + sizeof(num);
        size_t v = q->body.len;
        do {
            *--p = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        oc_buf_puts(b, "Content-Length: ");
        oc_buf_append(b, p, (size_t)(num + sizeof(num) - p));
        oc_buf_append(b, "\r\n", 2);
    }
    oc_buf_append(b, "\r\n", 2);
    if (q->body.len)
        oc_buf_append(b, q->body.data, q->body.len);
    int ok = b->data && oc_buf_append(&c->io.wbuf, b->data, b->len) == 0;
    r->wstart = c->wqueued;
    if (ok)
        c->wqueued += (long long)b->len;
    if (b->cap > KEEP_MAX)
        oc_buf_free(b);
    if (!ok)
        return -1;
    if (!c->flushing) {
        c->flushing = 1;
        c->flush_next = h->flush;
        h->flush = c;
        event_active(h->flush_ev, EV_TIMEOUT, 0);
    }
    r->next = NULL;
    *c->out_tail = r;
    c->out_tail = &r->next;
    if (c->nout++ == 0) {
        conn_unlink(c->o, c);
        conn_push(c->o, c, 0);
    }
    return 0;
}

/* Hand waiting requests to connections: an idle one first, else a new one
 * while the limits allow, else the least busy with room in its pipeline. */
static void origin_pump(h1 *h, origin *o)
{
    while (o->pend) {
        h1req *r = o->pend;
        h1conn *best = NULL;
        /* idle connections are at the front: no scan past the first busy
         * one unless pipelining looks for the least busy */
        for (h1conn *c = o->conns; c && (c->nout == 0 || r->depth > 1); c = c->next) {
            if (!c->connect_deadline_us || c->closing || c->nout >= r->depth)
                continue;
            if (!best || c->nout < best->nout)
                best = c;
            if (c->nout == 0)
                break;
        }
        if ((!best || best->nout > 0) && o->nconns < h->max_host && h->total < h->max_total) {
            h1conn *c = conn_open(h, o, r->connect_timeout_ms);
            if (c && c->connect_deadline_us)
                best = c;
        }
        if (!best)
            return;
        if (best->connected && best->nout == 0 && best->answered > 0 &&
            omni_mono_us() - best->idle_since_us >= PEEK_IDLE_US) {
            /* an idle connection the peer may have closed meanwhile: a
             * request written on it would be lost without an answer */
            char b;
            if (best->io.ssl) {
                /* bytes on an idle TLS connection may be the server's
                 * session tickets (taken here) or its close_notify */
                ERR_clear_error();
                int k = SSL_read(best->io.ssl, &b, 1);
                int e = k > 0 ? SSL_ERROR_NONE : SSL_get_error(best->io.ssl, k);
                ERR_clear_error();
                if (k > 0) {
                    best->io.tls_dead = 1;
                    conn_close(h, best, OC_NET_PROTOCOL, "bytes no request asked for", 0);
                    continue;
                }
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    best->io.tls_dead = 1;
                    conn_close(h, best, OC_NET_OK, "", 0);
                    continue;
                }
            }
            ssize_t k = best->io.ssl ? -1 : recv(best->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (best->io.ssl)
                errno = EAGAIN;
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                conn_close(h, best, OC_NET_OK, "", 0);
                continue;
            }
            if (k > 0) {
                conn_close(h, best, OC_NET_PROTOCOL, "bytes no request asked for", 0);
                continue;
            }
        }
        o->pend = r->next;
        if (!o->pend)
            o->pend_tail = &o->pend;
        if (write_req(h, best, r) < 0)
            fail_later(h, r, OC_NET_OTHER, "could not write the request");
    }
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h1 *h = arg;
    long long now = omni_mono_us();
    for (origin *o = h->origins; o; o = o->next) {
        h1req **pp = &o->pend;
        while (*pp) {
            h1req *r = *pp;
            if (r->deadline_us && r->deadline_us <= now) {
                *pp = r->next;
                fail_later(h, r, OC_NET_TIMEOUT, "timed out waiting for a connection");
            } else {
                pp = &r->next;
            }
        }
        o->pend_tail = &o->pend;
        while (*o->pend_tail)
            o->pend_tail = &(*o->pend_tail)->next;
        h1conn *c = o->conns;
        while (c) {
            h1conn *next = c->next;
            int expired = 0;
            for (h1req *r = c->out; r; r = r->next)
                if (r->deadline_us && r->deadline_us <= now)
                    expired = 1;
            if (!c->connect_deadline_us)
                conn_close(h, c, OC_NET_CONNECT, "could not connect to server", 0);
            else if (!c->connected && c->connect_deadline_us <= now)
                conn_close(h, c, OC_NET_TIMEOUT, "connection timed out", 0);
            else if (expired)
                conn_close(h, c, OC_NET_TIMEOUT, "operation timed out", 0);
            else if (!c->out && c->idle_since_us && now - c->idle_since_us > h->idle_us)
                conn_close(h, c, OC_NET_OK, "", 0);
            c = next;
        }
    }
    if (h->inflight || h->total) {
        /* only idle connections left: look at them once a second */
        struct timeval tv = {0, SWEEP_MS * 1000};
        if (!h->inflight)
            tv = (struct timeval){1, 0};
        evtimer_add(h->sweep, &tv);
    }
}

h1 *h1_new(struct event_base *base, int max_total, int max_host, int idle_ms, const char *ca_file)
{
    h1 *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (ca_file && !(h->ca_file = strdup(ca_file))) {
        free(h);
        return NULL;
    }
    h->base = base;
    h->max_total = max_total > 0 ? max_total : 256;
    h->max_host = max_host > 0 ? max_host : 64;
    h->idle_us = (long long)(idle_ms > 0 ? idle_ms : 30000) * 1000;
    h->later_tail = &h->later;
    h->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!h->dns) /* no resolv.conf: numeric hosts and /etc/hosts still work */
        h->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    h->sweep = evtimer_new(base, sweep_cb, h);
    h->later_ev = event_new(base, -1, 0, later_cb, h);
    h->flush_ev = event_new(base, -1, 0, flush_cb, h);
    if (!h->dns || !h->sweep || !h->later_ev || !h->flush_ev) {
        h1_free(h);
        return NULL;
    }
    evdns_base_load_hosts(h->dns, NULL);
    return h;
}

static origin *origin_get(h1 *h, const h1_url *u)
{
    for (origin *o = h->origins; o; o = o->next)
        if (o->u.port == u->port && o->u.tls == u->tls && strcmp(o->u.host, u->host) == 0 &&
            strcmp(o->u.hostport, u->hostport) == 0)
            return o;
    origin *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->h = h;
    o->u = *u;
    o->u.target = NULL;
    o->pend_tail = &o->pend;
    o->next = h->origins;
    h->origins = o;
    return o;
}

static int clean(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

int h1_submit(h1 *h, oc_request *req, const transport_req_opts *opts, transport_done_fn done,
              void *arg)
{
    h1_url u;
    if (req->kind != OC_REQ_HTTP || !req->url || h1_parse_url(req->url, &u) < 0)
        return 1;
    if (u.tls && !tls_ctx(h))
        return 1; /* no TLS context (the CA bundle would not load): libcurl says why */
    int ok = clean(req->method ? req->method : "") && (!req->userpwd || clean(req->userpwd));
    for (int i = 0; ok && i < req->n_headers; i++)
        ok = clean(req->headers[i]);
    origin *o = ok ? origin_get(h, &u) : NULL;
    h1req *r = o ? calloc(1, sizeof(*r)) : NULL;
    if (!r) {
        oc_request_free(req);
        return -1;
    }
    r->req = *req;
    memset(req, 0, sizeof(*req)); /* ours now */
    r->target_off = (size_t)(u.target - r->req.url);
    r->target_len = u.target_len;
    r->done = done;
    r->arg = arg;
    r->start_us = omni_mono_us();
    int timeout_ms = opts ? opts->timeout_ms : 0;
    r->deadline_us = timeout_ms > 0 ? r->start_us + (long long)timeout_ms * 1000 : 0;
    r->connect_timeout_ms = opts ? opts->connect_timeout_ms : 0;
    r->depth =
        opts && opts->pipeline > 1 ? (opts->pipeline < DEPTH_MAX ? opts->pipeline : DEPTH_MAX) : 1;
    *o->pend_tail = r;
    o->pend_tail = &r->next;
    h->inflight++;
    if (h->inflight == 1 || !evtimer_pending(h->sweep, NULL)) {
        /* (re)arm at the busy pace: it may be waiting a second for idle ones */
        struct timeval tv = {0, SWEEP_MS * 1000};
        evtimer_add(h->sweep, &tv);
    }
    origin_pump(h, o);
    return 0;
}

size_t h1_inflight(const h1 *h)
{
    return h->inflight;
}

void h1_free(h1 *h)
{
    if (!h)
        return;
    while (h->origins) {
        origin *o = h->origins;
        h->origins = o->next;
        while (o->conns) {
            h1conn *c = o->conns;
            o->conns = c->next;
            while (c->out) {
                h1req *r = c->out;
                c->out = r->next;
                req_free(r);
            }
            conn_free(c);
        }
        while (o->pend) {
            h1req *r = o->pend;
            o->pend = r->next;
            req_free(r);
        }
        if (o->session)
            SSL_SESSION_free(o->session);
        free(o);
    }
    while (h->later) {
        h1req *r = h->later;
        h->later = r->next;
        req_free(r);
    }
    if (h->sweep)
        event_free(h->sweep);
    if (h->later_ev)
        event_free(h->later_ev);
    if (h->flush_ev)
        event_free(h->flush_ev);
    if (h->dns)
        evdns_base_free(h->dns, 0);
    oc_buf_free(&h->scratch);
    SSL_CTX_free(h->tls);
    free(h->ca_file);
    free(h);
}
