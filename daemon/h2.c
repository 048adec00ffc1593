/* The native HTTP/2 client (see h2.h). Per origin (host, port): a FIFO of
 * requests waiting for a stream and up to max_host_connections TLS
 * connections, each an nghttp2 client session carrying up to the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS streams (the rest wait in the FIFO).
 * A connection takes requests once the server's first SETTINGS arrived.
 *
 * Whether a request may be written again is decided per stream:
 * - its END_STREAM not yet on the wire (netio counts a byte sent only once
 *   its whole TLS record is) when the connection dies, the stream is
 *   refused (RST_STREAM REFUSED_STREAM, RFC 9113 8.7) or a GOAWAY names a
 *   last stream below it: the server has not processed it, it is written
 *   again on another connection, once; a second time it fails with
 *   request_sent = 0 (the daemon retries later);
 * - once written, a close, a reset or the timeout fails it with
 *   request_sent = 1: the daemon records it `uncertain`, it is never
 *   written again; an answer head that had come is reported with it.
 * Every completion runs from a zero-delay event, never inside nghttp2's
 * callbacks nor inside h2_submit. Timeouts are checked every 50 ms; a
 * stream past its deadline is reset (CANCEL), its connection goes on. */
#include "h2.h"
#include "clock.h"
#include "h1parse.h"
#include "digits.h"
#include "netio.h"
#include "tlsclient.h"

#include <ctype.h>
#include <event2/dns.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#define SWEEP_MS 50
#define BODY_MAX (1u << 20)            /* as h1.c: a longer answer is "response too large" */
#define HEAD_MAX (64 * 1024)           /* answer header list (SETTINGS_MAX_HEADER_LIST_SIZE) */
#define READ_MAX (2 * 1024 * 1024)     /* read per event before handing to nghttp2 */
#define WBUF_HIGH (256 * 1024)         /* frames made ahead of the socket */
#define STREAMS_MAX 256                /* per connection, whatever the server allows */
#define STREAM_WINDOW (1 << 20)        /* our per-stream receive window */
#define CONN_WINDOW (16 * 1024 * 1024) /* our connection receive window */
#define TRIES_MAX 2                    /* a request is written on a stream at most twice */
#define NV_MAX (OC_MAX_HEADERS + 8)

typedef struct h2req h2req;
typedef struct h2conn h2conn;
typedef struct origin origin;

struct h2req {
    h2req *next;          /* in the origin's FIFO, or the list awaiting completion */
    h2req *sprev, *snext; /* on its connection, while it has a stream */
    h2req *mnext;         /* on the connection's list of streams ended in this chunk */
    oc_request req;
    transport_req_opts opts;
    transport_done_fn done;
    void *arg;
    long long start_us, deadline_us;
    size_t target_off, target_len;
    origin *o;
    h2conn *c; /* its connection, while it has a stream */
    int32_t sid;
    size_t body_off;
    long long wend; /* where its END_STREAM frame ends in the connection's output; -1: not yet */
    int tries;
    int in_later;  /* on the completion list */
    int timed_out; /* completed by the timeout; its stream is being reset */
    int fallback;  /* goes back to the transport untouched */
    /* the answer */
    int head_done, got_end, too_large;
    long status, hstatus;
    oc_buf body;
    char retry_after[128];
    char content_type[128];
    /* the completion */
    int net_error;
    const char *detail;
    int sent, answered;
};

struct h2conn {
    h2conn *prev, *next;
    origin *o;
    netio io; /* dialing (netio_dial), then the TLS connection */
    nghttp2_session *s;
    long long wqueued; /* bytes of frames put in io.wbuf since the start */
    h2req *streams;    /* requests with a stream on this connection */
    int nstreams;
    h2req *marked;      /* streams whose END_STREAM is in the chunk being added */
    h2conn *flush_next; /* on the list of connections with frames to send */
    int flushing;
    int ready;  /* TLS done, h2 chosen, the server's SETTINGS received */
    int goaway; /* received: no new streams; streams above last_sid were not processed */
    int32_t last_sid;
    int dying; /* being torn down: nghttp2's callbacks do nothing */
    long long connect_deadline_us, idle_since_us;
};

struct origin {
    origin *next;
    h2 *h;
    h1_url u;
    h2conn *conns;
    int nconns;
    h2req *pend, **pend_tail;
    SSL_SESSION *session;
    int no_h2; /* its server did not choose h2: requests go back to the transport */
};

struct h2 {
    struct event_base *base;
    struct evdns_base *dns;
    origin *origins;
    int max_total, max_host, total;
    long long idle_us;
    size_t inflight;
    unsigned long long requests;
    struct event *sweep;
    struct event *later_ev;
    h2req *later, **later_tail;
    struct event *flush_ev;
    h2conn *flush;
    char *ca_file;
    SSL_CTX *tls;
    int tls_failed;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    h2_fallback_fn fallback;
    void *fallback_ctx;
};

static void req_free(h2req *r)
{
    oc_request_free(&r->req);
    oc_buf_free(&r->body);
    free(r);
}

static void later(h2 *h, h2req *r)
{
    r->in_later = 1;
    r->next = NULL;
    *h->later_tail = r;
    h->later_tail = &r->next;
    event_active(h->later_ev, EV_TIMEOUT, 0);
}

static void fail_later(h2 *h, h2req *r, int net_error, const char *detail, int sent)
{
    r->net_error = net_error;
    r->detail = detail;
    r->sent = sent;
    r->answered = r->head_done;
    later(h, r);
}

static void origin_pump(h2 *h, origin *o);

static void push_front(origin *o, h2req *r)
{
    r->next = o->pend;
    o->pend = r;
    if (o->pend_tail == &o->pend)
        o->pend_tail = &r->next;
}

/* Not processed by the server: on another stream once more, else failed
 * as never sent (the daemon retries). */
static void retry_safe(h2 *h, h2req *r, const char *detail)
{
    r->body_off = 0;
    r->wend = -1;
    r->sid = 0;
    r->head_done = r->got_end = r->too_large = 0;
    r->status = r->hstatus = 0;
    oc_buf_reset(&r->body);
    r->retry_after[0] = r->content_type[0] = '\0';
    if (r->tries >= TRIES_MAX || r->timed_out) {
        if (!r->timed_out)
            fail_later(h, r, OC_NET_RESET, detail, 0);
        return;
    }
    push_front(r->o, r);
    event_active(h->later_ev, EV_TIMEOUT, 0); /* pumped from there */
}

static void stream_unlink(h2conn *c, h2req *r)
{
    if (r->sprev)
        r->sprev->snext = r->snext;
    else
        c->streams = r->snext;
    if (r->snext)
        r->snext->sprev = r->sprev;
    r->sprev = r->snext = NULL;
    if (--c->nstreams == 0)
        c->idle_since_us = omni_mono_us();
}

static int written(const h2conn *c, const h2req *r)
{
    return r->wend >= 0 && c->io.wsent >= r->wend;
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h2 *h = arg;
    h2req *list = h->later;
    h->later = NULL;
    h->later_tail = &h->later;
    while (list) {
        h2req *r = list;
        list = r->next;
        r->in_later = 0;
        h->inflight--;
        if (r->fallback) {
            h->fallback(h->fallback_ctx, &r->req, &r->opts, r->done, r->arg);
            req_free(r);
            continue;
        }
        oc_response resp = {0};
        resp.net_error = r->net_error;
        resp.net_detail = r->detail ? r->detail : "";
        resp.request_sent = r->sent;
        resp.answered = r->answered;
        resp.status = r->answered ? r->status : 0;
        if (oc_buf_reserve(&r->body, 0) == 0)
            r->body.data[r->body.len] = '\0';
        resp.body = r->net_error == OC_NET_OK && r->body.data ? r->body.data : "";
        resp.body_len = r->net_error == OC_NET_OK ? r->body.len : 0;
        resp.retry_after = r->retry_after[0] ? r->retry_after : NULL;
        resp.content_type = r->content_type[0] ? r->content_type : NULL;
        resp.now_ms = omni_now_ms();
        transport_done_fn done = r->done;
        r->done = NULL;
        if (done)
            done(r->arg, &resp, omni_mono_us() - r->start_us);
        if (!r->c) /* a timed-out one still on its stream is freed when the stream closes */
            req_free(r);
    }
    for (origin *o = h->origins; o; o = o->next)
        if (o->pend)
            origin_pump(h, o);
}

/* ---- nghttp2's callbacks: they record, never complete nor free */

static h2req *stream_req(nghttp2_session *s, h2conn *c, int32_t sid)
{
    h2req *r = nghttp2_session_get_stream_user_data(s, sid);
    return r && r->c == c ? r : NULL;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    h2conn *c = ud;
    if (c->dying || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS))
        return 0;
    h2req *r = stream_req(s, c, f->hd.stream_id);
    if (r && r->wend < 0) {
        /* nghttp2_session_mem_send calls this for the frame whose last
         * bytes it is returning: they end where that chunk ends */
        r->mnext = c->marked;
        c->marked = r;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    h2conn *c = ud;
    if (c->dying)
        return 0;
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && !c->ready) {
            c->ready = 1;
            c->idle_since_us = omni_mono_us();
        }
        break;
    case NGHTTP2_GOAWAY:
        if (!c->goaway || f->goaway.last_stream_id < c->last_sid)
            c->last_sid = f->goaway.last_stream_id;
        c->goaway = 1;
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: {
        h2req *r = stream_req(s, c, f->hd.stream_id);
        if (!r)
            break;
        if (f->hd.type == NGHTTP2_HEADERS && r->hstatus >= 200 && !r->head_done) {
            r->status = r->hstatus;
            r->head_done = 1;
        }
        r->hstatus = 0;
        if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && r->head_done)
            r->got_end = 1;
        break;
    }
    default:
        break;
    }
    return 0;
}

static void copy_value(char *out, size_t cap, const uint8_t *v, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = v[i] < 0x20 ? ' ' : (char)v[i];
    out[n] = '\0';
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    h2conn *c = ud;
    if (c->dying || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2req *r = stream_req(s, c, f->hd.stream_id);
    if (!r || r->head_done)
        return 0; /* trailers: nothing the daemon reads */
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        long v = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            v = v * 10 + (isdigit(value[i]) ? value[i] - '0' : 0);
        r->hstatus = valuelen == 3 ? v : 0;
    } else if (namelen == 11 && memcmp(name, "retry-after", 11) == 0) {
        copy_value(r->retry_after, sizeof(r->retry_after), value, valuelen);
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        copy_value(r->content_type, sizeof(r->content_type), value, valuelen);
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                   void *ud)
{
    (void)flags;
    h2conn *c = ud;
    if (c->dying)
        return 0;
    h2req *r = stream_req(s, c, sid);
    if (!r || r->too_large || r->timed_out)
        return 0;
    if (r->body.len + len > BODY_MAX || oc_buf_append(&r->body, data, len) < 0) {
        r->too_large = 1;
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t sid, uint32_t ec, void *ud)
{
    h2conn *c = ud;
    if (c->dying)
        return 0;
    h2req *r = stream_req(s, c, sid);
    if (!r)
        return 0;
    h2 *h = c->o->h;
    nghttp2_session_set_stream_user_data(s, sid, NULL);
    stream_unlink(c, r);
    for (h2req **pp = &c->marked; *pp; pp = &(*pp)->mnext)
        if (*pp == r) {
            *pp = r->mnext;
            break;
        }
    int was_written = written(c, r);
    if (r->timed_out) { /* already completed */
        r->c = NULL;
        if (!r->in_later)
            req_free(r);
        return 0;
    }
    if (r->too_large) {
        r->c = NULL;
        fail_later(h, r, OC_NET_OTHER, "response too large", 1);
    } else if (r->got_end) {
        /* the whole answer (a reset after it, say NO_ERROR from a server
         * that answered before reading the body, changes nothing) */
        r->c = NULL;
        r->net_error = OC_NET_OK;
        r->detail = "";
        r->sent = r->answered = 1;
        later(h, r);
    } else if ((c->goaway && sid > c->last_sid) || ec == NGHTTP2_REFUSED_STREAM) {
        /* not processed (RFC 9113 6.8, 8.7) */
        r->c = NULL;
        retry_safe(h, r, "stream refused by the server");
    } else {
        r->c = NULL;
        fail_later(h, r, OC_NET_RESET,
                   ec == NGHTTP2_NO_ERROR ? "stream closed without an answer"
                                          : "stream reset by the server",
                   was_written);
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)src;
    h2conn *c = ud;
    h2req *r = stream_req(s, c, sid);
    if (!r || r->timed_out)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    size_t left = r->req.body.len - r->body_off;
    if (len > left)
        len = left;
    if (len)
        memcpy(buf, r->req.body.data + r->body_off, len);
    r->body_off += len;
    if (r->body_off == r->req.body.len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)len;
}

/* ---- connections */

static void conn_unlink(origin *o, h2conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        o->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Close c. Its streams: the ones the server cannot have processed (the
 * request not all on the wire, or above a GOAWAY's last stream) are
 * written again elsewhere; the rest fail with request_sent = 1. */
static void conn_close(h2 *h, h2conn *c, int net_error, const char *detail)
{
    origin *o = c->o;
    int never_ready = !c->ready;
    c->dying = 1;
    conn_unlink(o, c);
    o->nconns--;
    h->total--;
    if (c->flushing)
        for (h2conn **pp = &h->flush; *pp; pp = &(*pp)->flush_next)
            if (*pp == c) {
                *pp = c->flush_next;
                break;
            }
    while (c->streams) {
        h2req *r = c->streams;
        int was_written = written(c, r);
        int beyond = c->goaway && r->sid > c->last_sid;
        stream_unlink(c, r);
        r->c = NULL;
        if (r->timed_out) {
            if (!r->in_later)
                req_free(r);
        } else if (r->got_end) {
            r->net_error = OC_NET_OK;
            r->detail = "";
            r->sent = r->answered = 1;
            later(h, r);
        } else if (beyond || !was_written) {
            retry_safe(h, r, detail && *detail ? detail : "connection closed");
        } else {
            fail_later(h, r, net_error == OC_NET_OK ? OC_NET_RESET : net_error,
                       detail && *detail ? detail : "connection closed", 1);
        }
    }
    if (c->s)
        nghttp2_session_del(c->s);
    netio_close(&c->io, c->ready);
    free(c);
    if (o->pend && o->nconns == 0 && (net_error == OC_NET_CONNECT || never_ready)) {
        /* the origin cannot be reached, or closes before its SETTINGS:
         * fail what waits (never sent: the daemon retries with its
         * backoff) rather than dial again at once */
        while (o->pend) {
            h2req *r = o->pend;
            o->pend = r->next;
            fail_later(h, r, net_error == OC_NET_OK ? OC_NET_CONNECT : net_error,
                       detail && *detail ? detail : "connection closed before HTTP/2 began", 0);
        }
        o->pend_tail = &o->pend;
    }
    if (o->pend)
        event_active(h->later_ev, EV_TIMEOUT, 0); /* pumped from there */
}

static int conn_flush(h2conn *c);

/* An idle connection we end (keepalive_idle_ms): GOAWAY with NO_ERROR
 * first, as RFC 9113 6.8 asks of an endpoint that closes a connection,
 * in one non-blocking write (at idle the socket takes it; if not, it is
 * dropped), then close_notify and the close. No stream is open, so
 * nothing waits on the outcome. */
static void conn_retire(h2 *h, h2conn *c)
{
    if (nghttp2_session_terminate_session(c->s, NGHTTP2_NO_ERROR) == 0)
        (void)conn_flush(c);
    conn_close(h, c, OC_NET_OK, "");
}

/* Frames nghttp2 has to send, into the output buffer and onto the socket:
 * 0, or -1 when the connection is broken (the caller closes it). */
static int conn_flush(h2conn *c)
{
    for (;;) {
        while (c->io.wbuf.len - c->io.woff < WBUF_HIGH) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(c->s, &p);
            if (n < 0)
                return -1;
            if (n == 0)
                break;
            if (oc_buf_append(&c->io.wbuf, p, (size_t)n) < 0)
                return -1;
            c->wqueued += n;
            while (c->marked) {
                h2req *r = c->marked;
                c->marked = r->mnext;
                r->wend = c->wqueued;
            }
        }
        size_t before = c->io.wbuf.len - c->io.woff;
        if (before == 0)
            return 0;
        if (netio_send(&c->io, 0) < 0)
            return -1;
        if (c->io.wbuf.len - c->io.woff > 0 || !nghttp2_session_want_write(c->s))
            return 0; /* the write event goes on */
    }
}

static void schedule_flush(h2 *h, h2conn *c)
{
    if (c->flushing)
        return;
    c->flushing = 1;
    c->flush_next = h->flush;
    h->flush = c;
    event_active(h->flush_ev, EV_TIMEOUT, 0);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h2 *h = arg;
    h2conn *c;
    while ((c = h->flush)) {
        h->flush = c->flush_next;
        c->flushing = 0;
        if (c->s && conn_flush(c) < 0)
            conn_close(h, c, OC_NET_RESET, "connection reset");
    }
}

static void tls_handshake(h2 *h, h2conn *c);

static void after_io(h2 *h, h2conn *c)
{
    if (conn_flush(c) < 0) {
        conn_close(h, c, OC_NET_RESET, "connection reset");
        return;
    }
    if (!nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s)) {
        conn_close(h, c, OC_NET_RESET, "connection closed by the server");
        return;
    }
    if (c->ready && c->o->pend)
        origin_pump(h, c->o);
}

static void conn_read_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h2conn *c = arg;
    h2 *h = c->o->h;
    if (c->io.handshaking) {
        tls_handshake(h, c);
        return;
    }
    int rc = netio_read(&c->io, READ_MAX);
    if (c->io.rlen) {
        ssize_t k = nghttp2_session_mem_recv(c->s, (const uint8_t *)c->io.rbuf, c->io.rlen);
        c->io.rlen = 0;
        if (k < 0) {
            /* a protocol error: nghttp2 queued a GOAWAY; try to send it */
            conn_flush(c);
            conn_close(h, c, OC_NET_PROTOCOL, "HTTP/2 protocol error");
            return;
        }
    }
    switch (rc) {
    case NETIO_AGAIN:
    case NETIO_OK:
        break;
    case NETIO_FULL:
        event_active(c->io.rev, EV_READ, 0);
        break;
    case NETIO_NOMEM:
        conn_close(h, c, OC_NET_OTHER, "out of memory");
        return;
    case NETIO_EOF:
    case NETIO_CUT:
        conn_close(h, c, OC_NET_RESET, "connection closed by the server");
        return;
    default:
        conn_close(h, c, OC_NET_RESET, "connection reset");
        return;
    }
    after_io(h, c);
}

static void conn_write_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h2conn *c = arg;
    h2 *h = c->o->h;
    if (c->io.handshaking)
        tls_handshake(h, c);
    else if (c->s && conn_flush(c) < 0)
        conn_close(h, c, OC_NET_RESET, "connection reset");
}

/* ---- TLS, as h1.c does it (tlsclient.c), with ALPN h2 */

static SSL_CTX *tls_ctx(h2 *h)
{
    if (h->tls || h->tls_failed)
        return h->tls;
    /* http/1.1 offered too: a server whose ALPN has no protocol in common
     * with the client's list may end the handshake with a fatal
     * no_application_protocol alert (RFC 7301 3.2; nginx without http2
     * does), where choosing http/1.1 lets the origin go to h1.c */
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    h->tls = tlsc_ctx_new(h->ca_file, alpn, sizeof(alpn) - 1, 1);
    h->tls_failed = h->tls == NULL;
    return h->tls;
}

static int session_start(h2 *h, h2conn *c)
{
    if (nghttp2_session_client_new2(&c->s, h->cbs, c, h->opt) != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HEAD_MAX},
    };
    if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
        return -1;
    return 0;
}

static void tls_handshake(h2 *h, h2conn *c)
{
    int rc = netio_handshake(&c->io);
    if (rc == 0)
        return;
    if (rc < 0) {
        /* nothing of a request written: what waits is failed as never
         * sent when no connection of the origin got through (conn_close) */
        conn_close(h, c, OC_NET_CONNECT,
                   tlsc_failed(c->io.ssl, "https (h2)", c->o->u.host, c->o->u.port));
        return;
    }
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(c->io.ssl, &p, &n);
    if (n != 2 || memcmp(p, "h2", 2) != 0) {
        /* no h2 here: what waits goes back to the transport (HTTP/1.1) */
        origin *o = c->o;
        o->no_h2 = 1;
        while (o->pend) {
            h2req *r = o->pend;
            o->pend = r->next;
            r->fallback = 1;
            later(h, r);
        }
        o->pend_tail = &o->pend;
        conn_close(h, c, OC_NET_OK, "");
        return;
    }
    if (session_start(h, c) < 0) {
        conn_close(h, c, OC_NET_OTHER, "out of memory");
        return;
    }
    after_io(h, c); /* the preface and our SETTINGS */
}

static void tls_start(h2 *h, h2conn *c)
{
    const char *why = netio_tls_start(&c->io, tls_ctx(h), c->o->u.host, &c->o->session);
    if (why) {
        conn_close(h, c, OC_NET_CONNECT, why);
        return;
    }
    tls_handshake(h, c);
}

/* netio_dial's end: connected (why NULL), or not */
static void conn_dialed(void *arg, int net_error, const char *why)
{
    h2conn *c = arg;
    h2 *h = c->o->h;
    if (net_error != OC_NET_OK)
        conn_close(h, c, net_error, why);
    else
        tls_start(h, c);
}

static h2conn *conn_open(h2 *h, origin *o, int connect_timeout_ms)
{
    h2conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->io.fd = -1;
    c->o = o;
    c->connect_deadline_us =
        omni_mono_us() + (long long)(connect_timeout_ms > 0 ? connect_timeout_ms : 300000) * 1000;
    c->next = o->conns;
    if (o->conns)
        o->conns->prev = c;
    o->conns = c;
    o->nconns++;
    h->total++;
    /* failed at once: the sweep closes it */
    if (netio_dial(&c->io, h->base, h->dns, o->u.host, o->u.port, conn_read_ev, conn_write_ev,
                   conn_dialed, c) < 0)
        c->connect_deadline_us = 0;
    return c;
}

/* ---- requests onto streams */

/* HTTP/2 field names are lower case; connection-specific fields are not
 * sent (RFC 9113 8.2.2), nor Host (:authority says it). */
static int skip_header(const char *name, size_t n)
{
    static const char *const drop[] = {"connection",
                                       "keep-alive",
                                       "proxy-connection",
                                       "transfer-encoding",
                                       "upgrade",
                                       "host",
                                       "te",
                                       "content-length",
                                       "expect"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strlen(drop[i]) == n && strncasecmp(drop[i], name, n) == 0)
            return 1;
    return 0;
}

#define NV(nm, nl, v, vl)                                                                          \
    ((nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE})

static int32_t stream_open(h2conn *c, h2req *r)
{
    oc_request *q = &r->req;
    nghttp2_nv nv[NV_MAX];
    char lower[OC_MAX_HEADERS][64];
    size_t nn = 0;
    const char *method = q->method ? q->method : "POST";
    const char *target = q->url + r->target_off;
    char root[] = "/";
    nv[nn++] = NV(":method", 7, method, strlen(method));
    nv[nn++] = NV(":scheme", 7, "https", 5);
    nv[nn++] = NV(":authority", 10, c->o->u.hostport, strlen(c->o->u.hostport));
    if (r->target_len && target[0] == '/')
        nv[nn++] = NV(":path", 5, target, r->target_len);
    else
        nv[nn++] = NV(":path", 5, root, 1);
    nv[nn++] = NV("accept", 6, "*/*", 3);
    for (int i = 0; i < q->n_headers && i < OC_MAX_HEADERS; i++) {
        const char *hd = q->headers[i];
        const char *colon = strchr(hd, ':');
        if (!colon)
            continue;
        size_t n = (size_t)(colon - hd);
        if (n == 0 || n >= sizeof(lower[0]) || skip_header(hd, n))
            continue;
        for (size_t k = 0; k < n; k++)
            lower[i][k] = (char)tolower((unsigned char)hd[k]);
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        nv[nn++] = NV(lower[i], n, v, strlen(v));
    }
    char auth[1024];
    if (q->userpwd) {
        size_t n = strlen(q->userpwd);
        if (4 * ((n + 2) / 3) + 7 < sizeof(auth)) {
            memcpy(auth, "Basic ", 6);
            int k = EVP_EncodeBlock((unsigned char *)auth + 6, (const unsigned char *)q->userpwd,
                                    (int)n);
            nv[nn++] = NV("authorization", 13, auth, 6 + (size_t)k);
        }
    }
    char clen[24];
    int get = strcmp(method, "GET") == 0;
    if (!get || q->body.len) {
        /* (snprintf was 1% of the daemon) */
        const char *d = digits_before(clen + sizeof(clen), q->body.len);
        nv[nn++] = NV("content-length", 14, d, (size_t)(clen + sizeof(clen) - d));
    }
    nghttp2_data_provider dp = {.source = {.ptr = NULL}, .read_callback = read_body};
    return nghttp2_submit_request(c->s, NULL, nv, nn, q->body.len ? &dp : NULL, r);
}

static int stream_limit(h2conn *c)
{
    uint32_t m = nghttp2_session_get_remote_settings(c->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return m < STREAMS_MAX ? (int)m : STREAMS_MAX;
}

/* Waiting requests onto streams: the first connection with room (streams
 * fill one connection before the next is opened), a new connection while
 * the limits allow and none is still opening. */
static void origin_pump(h2 *h, origin *o)
{
    while (o->pend) {
        h2req *r = o->pend;
        h2conn *best = NULL;
        int opening = 0;
        for (h2conn *c = o->conns; c; c = c->next) {
            if (!c->ready) {
                opening += c->connect_deadline_us != 0;
                continue;
            }
            if (c->goaway || c->nstreams >= stream_limit(c))
                continue;
            best = c;
            break;
        }
        if (!best) {
            if (!opening && o->nconns < h->max_host && h->total < h->max_total)
                conn_open(h, o, r->opts.connect_timeout_ms);
            return;
        }
        o->pend = r->next;
        if (!o->pend)
            o->pend_tail = &o->pend;
        r->next = NULL;
        r->c = best;
        r->wend = -1;
        r->body_off = 0;
        int32_t sid = stream_open(best, r);
        if (sid < 0) {
            r->c = NULL;
            fail_later(h, r, OC_NET_OTHER, "could not write the request", 0);
            continue;
        }
        r->sid = sid;
        if (r->tries++ == 0)
            h->requests++;
        r->sprev = NULL;
        r->snext = best->streams;
        if (best->streams)
            best->streams->sprev = r;
        best->streams = r;
        best->nstreams++;
        schedule_flush(h, best);
    }
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    h2 *h = arg;
    long long now = omni_mono_us();
    for (origin *o = h->origins; o; o = o->next) {
        h2req **pp = &o->pend;
        while (*pp) {
            h2req *r = *pp;
            if (r->deadline_us && r->deadline_us <= now) {
                *pp = r->next;
                fail_later(h, r, OC_NET_TIMEOUT, "timed out waiting for a connection", 0);
            } else {
                pp = &r->next;
            }
        }
        o->pend_tail = pp;
        h2conn *c = o->conns;
        while (c) {
            h2conn *next = c->next;
            if (!c->connect_deadline_us) {
                conn_close(h, c, OC_NET_CONNECT, "could not connect to server");
            } else if (!c->ready && c->connect_deadline_us <= now) {
                conn_close(h, c, OC_NET_TIMEOUT, "connection timed out");
            } else if (c->ready) {
                int reset = 0;
                for (h2req *r = c->streams; r; r = r->snext) {
                    if (r->timed_out || !r->deadline_us || r->deadline_us > now)
                        continue;
                    /* the stream is cancelled; the connection goes on.
                     * Written: the server may have it (uncertain). */
                    r->timed_out = 1;
                    nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, r->sid, NGHTTP2_CANCEL);
                    r->sent = written(c, r);
                    r->net_error = OC_NET_TIMEOUT;
                    r->detail = "operation timed out";
                    r->answered = r->head_done;
                    later(h, r);
                    reset = 1;
                }
                if (reset)
                    schedule_flush(h, c);
                if (!c->streams && c->idle_since_us && now - c->idle_since_us > h->idle_us)
                    conn_retire(h, c);
            }
            c = next;
        }
    }
    if (h->inflight || h->total) {
        struct timeval tv = {0, SWEEP_MS * 1000};
        if (!h->inflight)
            tv = (struct timeval){1, 0};
        evtimer_add(h->sweep, &tv);
    }
}

h2 *h2_new(struct event_base *base, int max_total, int max_host, int idle_ms, const char *ca_file,
           h2_fallback_fn fallback, void *fallback_ctx)
{
    h2 *h = calloc(1, sizeof(*h));
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
    h->fallback = fallback;
    h->fallback_ctx = fallback_ctx;
    h->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!h->dns)
        h->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    h->sweep = evtimer_new(base, sweep_cb, h);
    h->later_ev = event_new(base, -1, 0, later_cb, h);
    h->flush_ev = event_new(base, -1, 0, flush_cb, h);
    int ok = h->dns && h->sweep && h->later_ev && h->flush_ev &&
             nghttp2_session_callbacks_new(&h->cbs) == 0 && nghttp2_option_new(&h->opt) == 0;
    if (!ok) {
        h2_free(h);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(h->cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(h->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_header_callback(h->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(h->cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(h->cbs, on_close);
    nghttp2_option_set_max_send_header_block_length(h->opt, HEAD_MAX);
    evdns_base_load_hosts(h->dns, NULL);
    return h;
}

static origin *origin_get(h2 *h, const h1_url *u)
{
    for (origin *o = h->origins; o; o = o->next)
        if (o->u.port == u->port && strcmp(o->u.host, u->host) == 0 &&
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

/* a header line whose name fits the lower-casing buffer of stream_open:
 * a longer name is refused, never dropped from the request */
static int header_ok(const char *hd)
{
    const char *colon = strchr(hd, ':');
    return clean(hd) && (!colon || colon - hd < 64);
}

int h2_submit(h2 *h, oc_request *req, const transport_req_opts *opts, transport_done_fn done,
              void *arg)
{
    h1_url u;
    if (req->kind != OC_REQ_HTTP || !req->url || h1_parse_url(req->url, &u) < 0 || !u.tls ||
        !h->fallback)
        return 1;
    if (!tls_ctx(h))
        return 1; /* no TLS context: libcurl says why */
    for (origin *o = h->origins; o; o = o->next)
        if (o->no_h2 && o->u.port == u.port && strcmp(o->u.host, u.host) == 0 &&
            strcmp(o->u.hostport, u.hostport) == 0)
            return 1;
    int ok = clean(req->method ? req->method : "") && (!req->userpwd || clean(req->userpwd));
    for (int i = 0; ok && i < req->n_headers; i++)
        ok = header_ok(req->headers[i]);
    origin *o = ok ? origin_get(h, &u) : NULL;
    h2req *r = o ? calloc(1, sizeof(*r)) : NULL;
    if (!r) {
        oc_request_free(req);
        return -1;
    }
    r->req = *req;
    memset(req, 0, sizeof(*req));
    r->o = o;
    if (opts)
        r->opts = *opts;
    r->target_off = (size_t)(u.target - r->req.url);
    r->target_len = u.target_len;
    r->done = done;
    r->arg = arg;
    r->wend = -1;
    r->start_us = omni_mono_us();
    r->deadline_us =
        r->opts.timeout_ms > 0 ? r->start_us + (long long)r->opts.timeout_ms * 1000 : 0;
    *o->pend_tail = r;
    o->pend_tail = &r->next;
    h->inflight++;
    if (h->inflight == 1 || !evtimer_pending(h->sweep, NULL)) {
        struct timeval tv = {0, SWEEP_MS * 1000};
        evtimer_add(h->sweep, &tv);
    }
    origin_pump(h, o);
    return 0;
}

size_t h2_inflight(const h2 *h)
{
    return h->inflight;
}

unsigned long long h2_requests(const h2 *h)
{
    return h->requests;
}

void h2_free(h2 *h)
{
    if (!h)
        return;
    while (h->origins) {
        origin *o = h->origins;
        h->origins = o->next;
        while (o->conns) {
            h2conn *c = o->conns;
            o->conns = c->next;
            c->dying = 1;
            while (c->streams) {
                h2req *r = c->streams;
                c->streams = r->snext;
                r->c = NULL;
                if (!r->in_later)
                    req_free(r);
            }
            if (c->s)
                nghttp2_session_del(c->s);
            netio_close(&c->io, 0);
            free(c);
        }
        while (o->pend) {
            h2req *r = o->pend;
            o->pend = r->next;
            req_free(r);
        }
        if (o->session)
            SSL_SESSION_free(o->session);
        free(o);
    }
    while (h->later) {
        h2req *r = h->later;
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
    if (h->cbs)
        nghttp2_session_callbacks_del(h->cbs);
    if (h->opt)
        nghttp2_option_del(h->opt);
    SSL_CTX_free(h->tls);
    free(h->ca_file);
    free(h);
}
