/* The HTTP server on the daemon's event base (evhttp): the API under /v1
 * (bearer tokens, compared in constant time), provider webhooks under
 * /webhooks/{instance} (the connector checks the provider's signature),
 * /healthz, /readyz and /metrics. Every error is a JSON body with a stable
 * code. Nothing here waits on Redis synchronously. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "address.h"
#include "campaign.h"
#include "conv.h"
#include "counters.h"
#include "http_framing.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "uncertain.h"

#define TOKENS_MAX 64
#define EVENTS_PER_REQUEST 1000
#define LIST_MAX 500
#define LISTEN_MAX 16
#define EVICT_BATCH 16    /* idle connections closed per accept failure for descriptors */
#define BACKOFF_MIN_MS 50 /* listener pause when nothing could be freed */
#define BACKOFF_MAX_MS 1000
#define REPORT_INTERVAL_MS 10000 /* at most one pressure line in the log per interval */

/* Where a connection is in its current request (input sniffed by conn_input,
 * see conn_track). */
enum { PH_IDLE, PH_HEAD, PH_BODY, PH_BUSY };

typedef struct areq areq;

/* One accepted connection. evhttp (libevent 2.1) has no connection cap and
 * no accept hook but the bufferevent factory, so connections are counted
 * there; an event made active there runs right after evhttp has built the
 * connection (same loop pass, before any read) and attaches: it takes the
 * evhttp_connection from the bufferevent's callback argument and sets the
 * close callback that ends the count, and closes a connection over
 * http_max_connections at once (a 503 written first). A connection whose
 * attach did not happen is matched on its first request (track_of), or
 * forgotten after twice http_timeout_ms.
 *
 * evhttp's timeout is per read, so a client sending a byte now and then is
 * never cut off by it. The input buffer is watched (conn_input): the first
 * byte of a request starts http_header_timeout_ms for the whole head, the
 * end of the head (an empty line) starts http_timeout_ms for the whole body,
 * the request reaching on_request stops the clock, its reply done
 * (req_done) starts the next request (already buffered pipelined bytes
 * included). A deadline that passes closes the connection. */
typedef struct conn_track {
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* set on attach, else on the first request */
    long long accepted_ms;
    int over; /* accepted beyond http_max_connections: refuse its requests */
    int attached;
    int phase;           /* PH_* */
    int eoh;             /* end-of-head scan: 1 after LF, 2 after LF CR */
    struct event *timer; /* attach, then the head/body deadline */
    areq *waiting;       /* an async request answering on this connection */
    struct http_server *h;
    struct conn_track *prev, *next;
    struct conn_track *hnext; /* in its bucket of by_bev */
} conn_track;

struct http_server {
    omni *o;
    struct evhttp *http;
    char *tokens[TOKENS_MAX];
    int n_tokens;
    int connections;
    conn_track *conns;
    /* the same connections by bufferevent: a request finds its own without
     * a scan of all of them (a scan per request cost 2 µs at 512) */
    conn_track **by_bev;
    size_t n_buckets; /* a power of two, or 0 */
    /* descriptor pressure */
    struct evconnlistener *listeners[LISTEN_MAX];
    size_t n_listeners;
    struct event *resume; /* ends a listener pause */
    int backoff_ms;
    struct event *report; /* flushes the pressure counts */
    long long last_report_ms;
    unsigned long n_fd_fail, n_accept_fail, n_evicted, n_paused, n_over, n_cut_head, n_cut_body;
};

static size_t bucket_of(const http_server *h, const void *bev)
{
    uint64_t x = (uint64_t)(uintptr_t)bev;
    x ^= x >> 29;
    x *= 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 32) & (h->n_buckets - 1);
}

static void bucket_add(http_server *h, conn_track *t)
{
    size_t b = bucket_of(h, t->bev);
    t->hnext = h->by_bev[b];
    h->by_bev[b] = t;
}

/* Room for one more connection in by_bev: the table doubles as needed. */
static int buckets_grow(http_server *h)
{
    if ((size_t)h->connections < h->n_buckets)
        return 0;
    size_t n = h->n_buckets ? h->n_buckets * 2 : 64;
    conn_track **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    free(h->by_bev);
    h->by_bev = b;
    h->n_buckets = n;
    for (conn_track *t = h->conns; t; t = t->next)
        bucket_add(h, t);
    return 0;
}

static void track_unlink(http_server *h, conn_track *t)
{
    for (conn_track **p = &h->by_bev[bucket_of(h, t->bev)]; *p; p = &(*p)->hnext)
        if (*p == t) {
            *p = t->hnext;
            break;
        }
    if (t->prev)
        t->prev->next = t->next;
    else
        h->conns = t->next;
    if (t->next)
        t->next->prev = t->prev;
    h->connections--;
    if (t->timer)
        event_free(t->timer);
    free(t);
}

/* Forget connections that never sent a request and are long closed. */
static void track_sweep(http_server *h)
{
    long long old = omni_now_ms() - 2LL * h->o->cfg->http_timeout_ms - 1000;
    for (conn_track *t = h->conns, *n; t; t = n) {
        n = t->next;
        if (!t->evcon && t->accepted_ms < old)
            track_unlink(h, t);
    }
}

static void conn_timer(evutil_socket_t fd, short what, void *arg);
static void conn_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg);

static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
    http_server *h = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    track_sweep(h);
    /* memory of a freed connection can come back: the old entry is stale */
    if (h->n_buckets)
        for (conn_track *t = h->by_bev[bucket_of(h, bev)], *n; t; t = n) {
            n = t->hnext;
            if (t->bev == bev && !t->evcon)
                track_unlink(h, t);
        }
    conn_track *t = buckets_grow(h) == 0 ? calloc(1, sizeof(*t)) : NULL;
    if (!t)
        return bev;
    t->bev = bev;
    t->h = h;
    t->accepted_ms = omni_now_ms();
    t->over = h->connections >= h->o->cfg->http_max_connections;
    t->timer = evtimer_new(base, conn_timer, t);
    if (t->timer)
        event_active(t->timer, EV_TIMEOUT, 1); /* attach, once evhttp has the connection */
    evbuffer_add_cb(bufferevent_get_input(bev), conn_input, t);
    h->backoff_ms = 0; /* an accept worked */
    t->next = h->conns;
    if (h->conns)
        h->conns->prev = t;
    h->conns = t;
    h->connections++;
    bucket_add(h, t);
    return bev;
}

static void conn_closed(struct evhttp_connection *c, void *arg);

/* The tracked connection of a request (matched on its first request). */
static conn_track *track_of(http_server *h, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon)
        return NULL;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    if (!h->n_buckets)
        return NULL;
    for (conn_track *t = h->by_bev[bucket_of(h, bev)]; t; t = t->hnext) {
        if (t->evcon == evcon)
            return t;
        if (!t->evcon && t->bev == bev) {
            t->evcon = evcon;
            evhttp_connection_set_closecb(evcon, conn_closed, t);
            return t;
        }
    }
    return NULL;
}

/* ---- replies */

static void reply(struct evhttp_request *req, int code, const char *type, const char *body,
                  size_t len)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

static void reply_json(struct evhttp_request *req, int code, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    reply(req, code, "application/json", s, strlen(s));
    free(s);
    json_decref(j);
}

static void reply_error(struct evhttp_request *req, int code, const char *err, const char *msg)
{
    reply_json(req, code,
               json_pack("{s:{s:s,s:s}}", "error", "code", err, "message", msg ? msg : err));
}

/* ---- async requests survive a client that hangs up */

struct areq {
    http_server *h;
    struct evhttp_request *req; /* NULL once the client is gone */
    conn_track *conn;
    char id[JOB_ID_MAX + 8];
    json_t *acc; /* an answer being assembled */
    int waiting; /* replies still expected */
    int missing;
};

static void conn_closed(struct evhttp_connection *c, void *arg)
{
    (void)c;
    conn_track *t = arg;
    if (t->waiting) { /* the client hung up while its answer was on the way */
        t->waiting->req = NULL;
        t->waiting->conn = NULL;
    }
    track_unlink(t->h, t);
}

/* ---- limits: deadlines, the connection cap, descriptor pressure */

/* One log line per REPORT_INTERVAL_MS at most, with counts: an attack that
 * makes a million accepts fail writes a line every 10 s, not a million. */
static void report_now(http_server *h)
{
    h->last_report_ms = omni_now_ms();
    if (h->n_fd_fail || h->n_accept_fail)
        log_warn("http: %lu accepts failed for lack of descriptors and %lu for other reasons; "
                 "%lu idle connections closed to make room, listener paused %lu times",
                 h->n_fd_fail, h->n_accept_fail, h->n_evicted, h->n_paused);
    if (h->n_over)
        log_warn("http: %lu connections over http_max_connections closed at accept", h->n_over);
    if (h->n_cut_head || h->n_cut_body)
        log_warn("http: %lu connections cut off by http_header_timeout_ms (request head), %lu by "
                 "http_timeout_ms (request body)",
                 h->n_cut_head, h->n_cut_body);
    h->n_fd_fail = h->n_accept_fail = h->n_evicted = h->n_paused = 0;
    h->n_over = h->n_cut_head = h->n_cut_body = 0;
}

static void report_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    report_now(arg);
}

/* Called after a counter moved: logs now if the last line is old enough,
 * else makes sure a flush is due when the interval ends. */
static void pressure_note(http_server *h)
{
    long long since = omni_now_ms() - h->last_report_ms;
    if (since >= REPORT_INTERVAL_MS) {
        report_now(h);
        return;
    }
    if (h->report && !evtimer_pending(h->report, NULL)) {
        long long ms = REPORT_INTERVAL_MS - since;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        evtimer_add(h->report, &tv);
    }
}

static void conn_deadline(conn_track *t, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (t->timer)
        evtimer_add(t->timer, &tv);
}

static void head_seen(conn_track *t)
{
    t->phase = PH_BODY;
    conn_deadline(t, t->h->o->cfg->http_timeout_ms);
}

/* Look for the empty line that ends a request head in the input from byte
 * offset from on (the same test evhttp makes: LF, optional CR, LF). */
static void scan_head(conn_track *t, struct evbuffer *in, size_t from)
{
    struct evbuffer_ptr p;
    if (evbuffer_ptr_set(in, &p, from, EVBUFFER_PTR_SET) < 0)
        return;
    char buf[1024];
    ev_ssize_t got;
    while (t->phase == PH_HEAD && (got = evbuffer_copyout_from(in, &p, buf, sizeof(buf))) > 0) {
        for (ev_ssize_t i = 0; i < got; i++) {
            if (buf[i] == '\n') {
                if (t->eoh) {
                    head_seen(t);
                    return;
                }
                t->eoh = 1;
            } else {
                t->eoh = buf[i] == '\r' && t->eoh == 1 ? 2 : 0;
            }
        }
        if (evbuffer_ptr_set(in, &p, (size_t)got, EVBUFFER_PTR_ADD) < 0)
            break;
    }
}

static void request_start(conn_track *t, struct evbuffer *in, size_t from)
{
    t->phase = PH_HEAD;
    t->eoh = 0;
    conn_deadline(t, t->h->o->cfg->http_header_timeout_ms);
    scan_head(t, in, from);
}

/* Bytes arrived on a connection (evhttp has not seen them yet). */
static void conn_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    conn_track *t = arg;
    if (!info->n_added)
        return;
    size_t len = evbuffer_get_length(in);
    size_t from = len >= info->n_added ? len - info->n_added : 0;
    if (t->phase == PH_IDLE)
        request_start(t, in, from);
    else if (t->phase == PH_HEAD)
        scan_head(t, in, from);
    /* PH_BODY, PH_BUSY: bytes of the body, or of a pipelined request that
     * req_done looks at */
}

/* The reply of a request has been written: the next request starts with
 * the bytes already buffered, if any. */
static void req_done(struct evhttp_request *req, void *arg)
{
    (void)req;
    conn_track *t = arg;
    t->phase = PH_IDLE;
    if (t->timer)
        evtimer_del(t->timer);
    struct evbuffer *in = bufferevent_get_input(t->bev);
    if (evbuffer_get_length(in))
        request_start(t, in, 0);
}

/* Close a connection over the cap at accept: a 503 goes out first (what
 * the client sent is read and dropped, so that the close is a FIN, not a
 * reset that could lose the answer). */
static void refuse_over(conn_track *t)
{
    static const char ans[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: 91\r\n\r\n"
        "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"connection limit reached, "
        "retry "
        "later\"}}";
    evutil_socket_t fd = bufferevent_getfd(t->bev);
    if (fd >= 0) {
        char sink[4096];
        for (int i = 0; i < 4 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
            ;
        ssize_t w = send(fd, ans, sizeof(ans) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
        shutdown(fd, SHUT_WR);
    }
    t->h->n_over++;
    pressure_note(t->h);
    evhttp_connection_free(t->evcon); /* its close callback untracks t */
}

static void attach(conn_track *t)
{
    t->attached = 1;
    void *cbarg = NULL;
    bufferevent_getcb(t->bev, NULL, NULL, NULL, &cbarg);
    if (!cbarg || t->evcon)
        return;
    t->evcon = cbarg; /* evhttp's own argument to its bufferevent callbacks */
    evhttp_connection_set_closecb(t->evcon, conn_closed, t);
    if (t->over)
        refuse_over(t);
}

static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_track *t = arg;
    if (!t->attached) {
        attach(t);
        return;
    }
    if (!t->evcon || (t->phase != PH_HEAD && t->phase != PH_BODY))
        return;
    if (t->phase == PH_HEAD)
        t->h->n_cut_head++;
    else
        t->h->n_cut_body++;
    pressure_note(t->h);
    evhttp_connection_free(t->evcon); /* its close callback untracks t */
}

/* Close up to n connections that wait for a request (none in progress,
 * none with an answer on the way), oldest first. */
static int evict_idle(http_server *h, int n)
{
    conn_track *t = h->conns;
    while (t && t->next)
        t = t->next;
    int done = 0;
    while (t && done < n) {
        conn_track *prev = t->prev;
        if (t->evcon && !t->waiting && (t->phase == PH_IDLE || t->phase == PH_HEAD)) {
            evhttp_connection_free(t->evcon);
            done++;
        }
        t = prev;
    }
    return done;
}

static void listeners_enable(http_server *h, int on)
{
    for (size_t i = 0; i < h->n_listeners; i++)
        if (on)
            evconnlistener_enable(h->listeners[i]);
        else
            evconnlistener_disable(h->listeners[i]);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    listeners_enable(arg, 1);
}

/* accept() failed. Out of descriptors, idle connections (the usual cause:
 * many clients that hold a connection and send nothing) are closed oldest
 * first, which frees descriptors for the waiting clients, /healthz among
 * them; when there is nothing to close, or for another error, the
 * listeners pause (50 ms, doubling to 1 s) instead of retrying in a loop. */
static http_server *servers[4]; /* the error callback gets evhttp's own argument */

static void accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    http_server *h = NULL;
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
        if (servers[i] && servers[i]->http == arg)
            h = servers[i];
    if (!h) {
        evconnlistener_disable(l); /* cannot happen; never a busy loop */
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    int freed = 0;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        h->n_fd_fail++;
        freed = evict_idle(h, EVICT_BATCH);
        h->n_evicted += (unsigned long)freed;
    } else {
        h->n_accept_fail++;
    }
    if (!freed && h->resume) {
        h->backoff_ms = h->backoff_ms ? h->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (h->backoff_ms > BACKOFF_MAX_MS)
            h->backoff_ms = BACKOFF_MAX_MS;
        listeners_enable(h, 0);
        struct timeval tv = {h->backoff_ms / 1000, (h->backoff_ms % 1000) * 1000};
        evtimer_add(h->resume, &tv);
        h->n_paused++;
    }
    pressure_note(h);
}

/* The soft descriptor limit goes up to the hard one: idle HTTP clients
 * should not be what runs the daemon out of descriptors. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY || want > 1048576)
        want = 1048576; /* the kernel's default nr_open */
    if (rl.rlim_cur < want) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            log_info("http: open file limit raised from %llu to %llu", (unsigned long long)was,
                     (unsigned long long)want);
        else
            log_warn("http: open file limit stays at %llu", (unsigned long long)was);
    } else {
        log_info("http: open file limit %llu", (unsigned long long)rl.rlim_cur);
    }
}

static areq *areq_new(http_server *h, struct evhttp_request *req)
{
    areq *a = calloc(1, sizeof(*a));
    a->h = h;
    a->req = req;
    a->conn = track_of(h, req);
    if (a->conn)
        a->conn->waiting = a;
    return a;
}

/* Detach from the connection; returns the request if it is still there. */
static struct evhttp_request *areq_take(areq *a)
{
    if (a->conn)
        a->conn->waiting = NULL;
    a->conn = NULL;
    struct evhttp_request *r = a->req;
    a->req = NULL;
    return r;
}

static void areq_free(areq *a)
{
    json_decref(a->acc);
    free(a);
}

/* ---- helpers */

static char *body_of(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    char *b = malloc(*len + 1);
    evbuffer_copyout(in, b, *len);
    b[*len] = '\0';
    return b;
}

static int authorized(http_server *h, struct evhttp_request *req)
{
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7))
        return 0;
    const char *t = a + 7;
    size_t tl = strlen(t);
    int ok = 0;
    for (int i = 0; i < h->n_tokens; i++) {
        size_t l = strlen(h->tokens[i]);
        /* compare every token, in constant time per token */
        if (l == tl && CRYPTO_memcmp(h->tokens[i], t, l) == 0)
            ok = 1;
    }
    return ok;
}

/* One token a line, read whole (getline): a line longer than TOKEN_MAX or
 * with a NUL byte in it is refused with its line number, never cut into
 * pieces that would each be accepted. */
#define TOKEN_MAX 511
static int load_tokens(http_server *h, const char *path, char *err, size_t err_len)
{
    if (!path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "cannot read api_tokens_file %s", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rc = 0;
    while ((got = getline(&line, &cap, f)) >= 0 && h->n_tokens < TOKENS_MAX) {
        lineno++;
        if (memchr(line, '\0', (size_t)got)) {
            snprintf(err, err_len, "api_tokens_file %s:%d: a NUL byte in the line", path, lineno);
            rc = -1;
            break;
        }
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        size_t n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1]))
            s[--n] = '\0';
        if (!n || *s == '#')
            continue;
        if (n > TOKEN_MAX) {
            snprintf(err, err_len, "api_tokens_file %s:%d: token longer than %d bytes", path,
                     lineno, TOKEN_MAX);
            rc = -1;
            break;
        }
        h->tokens[h->n_tokens++] = strdup(s);
    }
    if (line) {
        OPENSSL_cleanse(line, cap);
        free(line);
    }
    fclose(f);
    if (!rc && !h->n_tokens)
        log_warn("http: %s holds no tokens: every API call will be refused", path);
    return rc;
}

static int channel_kind(void *ctx, const char *name)
{
    chan *c = omni_channel(ctx, name);
    return c ? c->addr_kind : -1;
}

/* ---- webhooks */

/* The events of one webhook request, copied: most carry one or a few, so
 * the arrays start small and grow (up to EVENTS_PER_REQUEST). */
typedef struct collected {
    oc_event *ev;
    char *(*strs)[9];
    size_t n, cap;
    int overflow; /* more than EVENTS_PER_REQUEST events */
    int oom;
} collected;

static char *cdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void collect(void *ctx, const oc_event *e)
{
    collected *c = ctx;
    if (c->n == EVENTS_PER_REQUEST) {
        c->overflow = 1;
        return;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 4 : 4;
        if (cap > EVENTS_PER_REQUEST)
            cap = EVENTS_PER_REQUEST;
        oc_event *ev = realloc(c->ev, cap * sizeof(*ev));
        if (ev)
            c->ev = ev;
        char *(*strs)[9] = ev ? realloc(c->strs, cap * sizeof(*strs)) : NULL;
        if (!strs) {
            c->oom = 1;
            return;
        }
        c->strs = strs;
        c->cap = cap;
    }
    oc_event *d = &c->ev[c->n];
    char **s = c->strs[c->n];
    *d = *e;
    d->from = s[0] = cdup(e->from);
    d->to = s[1] = cdup(e->to);
    d->text = s[2] = cdup(e->text);
    d->kind = s[3] = cdup(e->kind);
    d->provider_id = s[4] = cdup(e->provider_id);
    d->in_reply_to = s[5] = cdup(e->in_reply_to);
    d->state = s[6] = cdup(e->state);
    d->error = s[7] = cdup(e->error);
    d->name = s[8] = cdup(e->name);
    c->n++;
}

static const char *hdr(void *ctx, const char *name)
{
    return evhttp_find_header(ctx, name);
}

/* A webhook waiting for its events to be in Redis before it answers: the
 * connector's 2xx once every event is stored (or dead-lettered), 503
 * not_stored as soon as one is not, or when redis_timeout_ms passes first. */
typedef struct hook_wait {
    omni *o;
    areq *a;
    size_t pending;
    int answered;
    int status;
    const char *content_type;
    oc_buf body;
    struct event *deadline;
} hook_wait;

static void hook_answer(hook_wait *w, int stored)
{
    if (w->answered)
        return;
    w->answered = 1;
    struct evhttp_request *req = areq_take(w->a);
    if (!req)
        return; /* the provider hung up: it retries anyway */
    if (stored)
        reply(req, w->status, w->content_type, w->body.data ? w->body.data : "", w->body.len);
    else
        reply_error(req, 503, "not_stored", "the events could not be stored now; retry later");
}

static void hook_written(void *arg, int stored)
{
    hook_wait *w = arg;
    if (!stored)
        hook_answer(w, 0);
    if (--w->pending)
        return;
    hook_answer(w, 1);
    if (w->deadline)
        event_free(w->deadline);
    areq_free(w->a);
    oc_buf_free(&w->body);
    free(w);
}

static void hook_late(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hook_wait *w = arg;
    log_error("webhook: events not stored within redis_timeout_ms: answered 503");
    hook_answer(w, 0);
    w->pending++; /* held while the unsent events are given up */
    conv_cancel(w->o, w);
    hook_written(w, 0);
}

static void webhook(http_server *h, struct evhttp_request *req, const char *name, const char *query)
{
    omni *o = h->o;
    conn_inst *ci = NULL;
    for (size_t i = 0; i < o->n_conns; i++)
        if (!strcmp(o->conns[i].conf->name, name))
            ci = &o->conns[i];
    if (!ci || !ci->impl->inbound) {
        reply_error(req, 404, "unknown_connector", "no connector instance takes webhooks here");
        return;
    }
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    size_t len;
    char *body = body_of(req, &len);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *host = evhttp_find_header(in, "Host");
    char url[2048];
    snprintf(url, sizeof(url), "http://%s%s", host ? host : "localhost",
             evhttp_request_get_uri(req));
    char path[256];
    snprintf(path, sizeof(path), "/webhooks/%s", name);
    oc_http_request r = {.method = m == EVHTTP_REQ_GET ? "GET" : "POST",
                         .path = path,
                         .query = query ? query : "",
                         .url = url,
                         .body = body,
                         .body_len = len,
                         .header = hdr,
                         .header_ctx = in};
    oc_inbound_result res;
    memset(&res, 0, sizeof(res));
    collected cc = {0}, *c = &cc;
    ci->impl->inbound(ci->inst, &r, &res, collect, c);
    if (res.status >= 200 && res.status < 300 && (c->overflow || c->oom)) {
        /* never a 2xx for a request whose events were not all kept */
        log_error("webhook %s: %s", name,
                  c->overflow ? "more than 1000 events in one request" : "out of memory");
        reply_error(req, c->overflow ? 413 : 503, c->overflow ? "too_many_events" : "busy",
                    c->overflow ? "at most 1000 events per request" : "retry later");
    } else if (res.status >= 200 && res.status < 300 && c->n &&
               (!conv_has_room(o, c->n) || !store_is_ready(o->st))) {
        /* the provider retries later; nothing is lost */
        reply_error(req, 503, store_is_ready(o->st) ? "busy" : "not_stored",
                    "cannot store the events now, retry later");
    } else if (res.status >= 200 && res.status < 300) {
        /* answer once every event is in Redis: a 2xx is a promise */
        hook_wait *w = calloc(1, sizeof(*w));
        w->o = o;
        w->a = areq_new(h, req);
        w->status = res.status;
        w->content_type = res.content_type ? res.content_type : "text/plain";
        oc_buf_append(&w->body, res.body.data ? res.body.data : "", res.body.len);
        w->pending = c->n + 1;
        if (c->n) {
            int ms = o->cfg->redis_timeout_ms > 0 ? o->cfg->redis_timeout_ms : 5000;
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            w->deadline = evtimer_new(o->base, hook_late, w);
            if (w->deadline)
                evtimer_add(w->deadline, &tv);
        }
        for (size_t i = 0; i < c->n; i++)
            conv_push(o, ci, &c->ev[i], hook_written, w);
        hook_written(w, 1); /* the extra count taken above */
    } else {
        if (!res.status)
            res.status = 500;
        log_info("webhook %s: %d %s", name, res.status, res.error);
        reply_error(req, res.status, res.error[0] ? res.error : "rejected", NULL);
    }
    for (size_t i = 0; i < c->n; i++)
        for (int k = 0; k < 9; k++)
            free(c->strs[i][k]);
    free(c->ev);
    free(c->strs);
    oc_buf_free(&res.body);
    free(body);
}

/* ---- /v1/broadcasts and /v1/messages */

static void queued(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = areq_take(a);
    if (req) {
        if (!r || r->type != REDIS_REPLY_STRING)
            reply_error(req, 503, "redis_unavailable", "the job could not be queued");
        else
            reply_json(
                req, 202,
                json_pack("{s:s,s:s,s:s}", "id", a->id, "status", "queued", "entry", r->str));
    }
    areq_free(a);
}

static void proactive_opened(omni *o, const char *conv_id, void *arg)
{
    (void)o;
    areq *a = arg;
    if (conv_id)
        json_object_set_new(a->acc, "conversation_id", json_string(conv_id));
    if (--a->waiting == 0) {
        struct evhttp_request *req = areq_take(a);
        if (req) {
            if (!conv_id)
                reply_error(req, 503, "redis_unavailable", "the message could not be queued");
            else
                reply_json(req, 202, json_incref(a->acc));
        }
        areq_free(a);
    }
}

static void message_queued(redisReply *r, void *arg)
{
    areq *a = arg;
    if (r && r->type == REDIS_REPLY_STRING)
        json_object_set_new(a->acc, "entry", json_string(r->str));
    proactive_opened(a->h->o, r && r->type == REDIS_REPLY_STRING ? "" : NULL, a);
}

static void submit(http_server *h, struct evhttp_request *req, int want)
{
    omni *o = h->o;
    size_t len;
    char *body = body_of(req, &len);
    job_rules rules = {.max_bytes = (size_t)o->cfg->max_job_bytes,
                       .max_inline_recipients = (size_t)o->cfg->max_inline_recipients,
                       .channel_kind = channel_kind,
                       .ctx = o};
    job j;
    char reason[JOB_REASON_MAX];
    if (job_parse(body, len, &rules, &j, reason, sizeof(reason)) < 0) {
        reply_error(req, 400, "invalid_job", reason);
        free(body);
        return;
    }
    if (j.type != want) {
        reply_error(req, 400, "invalid_job",
                    want == JOB_BROADCAST ? "type: must be broadcast on /v1/broadcasts"
                                          : "type: must be message on /v1/messages");
        job_free(&j);
        free(body);
        return;
    }
    areq *a = areq_new(h, req);
    snprintf(a->id, sizeof(a->id), "%s", j.id);
    const char *argv[] = {"XADD", o->k_jobs, "*", "job", body};
    size_t lens[] = {4, strlen(o->k_jobs), 1, 3, len};
    if (want == JOB_BROADCAST) {
        if (store_cmdv(o->st, STORE_CMD, queued, a, 5, argv, lens) < 0)
            queued(NULL, a);
    } else {
        /* the proactive conversation opens now; the send follows */
        json_t *r0 = json_array_get(json_object_get(j.spec, "recipients"), 0);
        const char *contact =
            json_string_value(json_object_get(json_object_get(r0, "to"), j.channels[0]));
        json_t *msg = json_object_get(j.spec, "message");
        const char *text = json_string_value(json_object_get(msg, "text"));
        if (!text)
            text = json_string_value(json_object_get(json_object_get(msg, "template"), "name"));
        a->acc = json_pack("{s:s,s:s}", "id", j.id, "status", "queued");
        a->waiting = 2;
        if (store_cmdv(o->st, STORE_CMD, message_queued, a, 5, argv, lens) < 0) {
            a->waiting = 1;
            proactive_opened(o, NULL, a);
        } else {
            conv_proactive(o, j.channels[0], contact ? contact : "", j.id, text, proactive_opened,
                           a);
        }
    }
    job_free(&j);
    free(body);
}

/* ---- /v1/campaigns */

static int numeric(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) && *s != '-')
            return 0;
    return 1;
}

static json_t *hash_to_json(redisReply *r)
{
    json_t *o = json_object();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!k || !v)
            continue;
        json_object_set_new(o, k, numeric(v) ? json_integer(atoll(v)) : json_string(v));
    }
    return o;
}

static void campaign_got(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = areq_take(a);
    if (req) {
        if (!r)
            reply_error(req, 503, "redis_unavailable", NULL);
        else if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
            reply_error(req, 404, "not_found", "no such campaign");
        else {
            /* the same object omnicast --json status prints (counters.h) */
            json_t *c = json_object();
            int bad = !c;
            for (size_t i = 0; !bad && i + 1 < r->elements; i += 2) {
                redisReply *k = r->element[i], *v = r->element[i + 1];
                if (k->str && v->str)
                    bad = counters_set(c, k->str, v->str, v->len) < 0;
            }
            if (bad || counters_finish(c) < 0) {
                json_decref(c);
                reply_error(req, 500, "internal", NULL);
            } else {
                reply_json(req, 200, c);
            }
        }
    }
    areq_free(a);
}

static void controlled(omni *o, int ok, const char *state, void *arg)
{
    (void)o;
    areq *a = arg;
    struct evhttp_request *req = areq_take(a);
    if (req) {
        if (!state)
            reply_error(req, 503, "redis_unavailable", NULL);
        else if (ok)
            reply_json(req, 200, json_pack("{s:s,s:s}", "id", a->id, "state", state));
        else if (!strcmp(state, "unknown_campaign"))
            reply_error(req, 404, "unknown_campaign", "no such campaign");
        else if (!strcmp(state, "campaign_finished"))
            reply_error(req, 409, "campaign_finished",
                        "the campaign is finished (done, or cancelled with every recipient "
                        "counted)");
        else
            reply_error(req, 409, "invalid_state", state);
    }
    areq_free(a);
}

/* GET /v1/campaigns/{id}/uncertain: a page of the campaign's uncertain
 * recipients. The message hash can hold a million records, so it is read
 * with HSCAN, count fields a step, never whole: steps go on until count
 * uncertain ones were found, the scan ended, or UNCERTAIN_STEPS_MAX steps
 * were taken; the answer's next_cursor resumes it. */
typedef struct unc_scan {
    areq *a;
    char key[KEY_MAX];
    char cursor[24];
    char count[8];
    int want;
    int steps;
    json_t *found;
} unc_scan;

static void unc_end(unc_scan *s, int code, const char *err, const char *msg)
{
    struct evhttp_request *req = areq_take(s->a);
    if (req && err)
        reply_error(req, code, err, msg);
    else if (req)
        reply_json(req, 200,
                   json_pack("{s:s,s:O,s:o}", "campaign", s->a->id, "uncertain", s->found,
                             "next_cursor",
                             strcmp(s->cursor, "0") ? json_string(s->cursor) : json_null()));
    areq_free(s->a);
    json_decref(s->found);
    free(s);
}

static void unc_page(redisReply *r, void *arg);

static void unc_step(unc_scan *s)
{
    omni *o = s->a->h->o;
    if (store_cmd(o->st, unc_page, s, "HSCAN", s->key, s->cursor, "COUNT", s->count, NULL) < 0)
        unc_end(s, 503, "redis_unavailable", NULL);
}

static void unc_page(redisReply *r, void *arg)
{
    unc_scan *s = arg;
    if (!r)
        return unc_end(s, 503, "redis_unavailable", NULL);
    if (r->type == REDIS_REPLY_ERROR)
        return unc_end(s, strstr(r->str, "cursor") ? 400 : 503,
                       strstr(r->str, "cursor") ? "bad_query" : "redis_unavailable", r->str);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
        return unc_end(s, 503, "redis_unavailable", "unexpected HSCAN reply");
    snprintf(s->cursor, sizeof(s->cursor), "%s", r->element[0]->str);
    redisReply *kv = r->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        redisReply *f = kv->element[i], *v = kv->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        json_t *item = uncertain_item(f->str, f->len, v->str, v->len);
        if (item)
            json_array_append_new(s->found, item);
    }
    s->steps++;
    /* a client that hung up ends the walk too: nothing more to read for it */
    if (!s->a->req || !strcmp(s->cursor, "0") || json_array_size(s->found) >= (size_t)s->want ||
        s->steps >= UNCERTAIN_STEPS_MAX)
        return unc_end(s, 0, NULL, NULL);
    unc_step(s);
}

static void unc_exists(redisReply *r, void *arg)
{
    unc_scan *s = arg;
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return unc_end(s, 503, "redis_unavailable", NULL);
    if (r->integer == 0)
        return unc_end(s, 404, "not_found", "no such campaign");
    if (!s->a->req)
        return unc_end(s, 0, NULL, NULL);
    unc_step(s);
}

static void campaign_uncertain(http_server *h, struct evhttp_request *req, areq *a,
                               const struct evhttp_uri *u)
{
    omni *o = h->o;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *qs = evhttp_uri_get_query(u);
    if (qs && evhttp_parse_query_str(qs, &q) < 0) {
        areq_take(a);
        areq_free(a);
        return reply_error(req, 400, "bad_query", NULL);
    }
    unc_scan *s = calloc(1, sizeof(*s));
    const char *why = "out of memory";
    int bad = !s ? 503
              : uncertain_query(evhttp_find_header(&q, "cursor"), evhttp_find_header(&q, "count"),
                                s->cursor, sizeof(s->cursor), &s->want, &why) < 0
                  ? 400
                  : 0;
    evhttp_clear_headers(&q);
    if (bad) {
        areq_take(a);
        areq_free(a);
        free(s);
        return reply_error(req, bad, bad == 400 ? "bad_query" : "busy", why);
    }
    s->a = a;
    s->found = json_array();
    snprintf(s->count, sizeof(s->count), "%d", s->want);
    omni_key(o, s->key, sizeof(s->key), "msg:%s", a->id);
    char ck[KEY_MAX];
    omni_key(o, ck, sizeof(ck), "campaign:%s", a->id);
    if (store_cmd(o->st, unc_exists, s, "EXISTS", ck, NULL) < 0)
        unc_end(s, 503, "redis_unavailable", NULL);
}

/* ---- /v1/conversations */

/* GET /v1/conversations/{id}: the hash and the log, answered together */
static void conv_one_done(areq *a)
{
    if (--a->waiting > 0)
        return;
    struct evhttp_request *req = areq_take(a);
    if (req) {
        if (a->missing || !a->acc)
            reply_error(req, 404, "not_found", "no such conversation");
        else
            reply_json(req, 200, json_incref(a->acc));
    }
    areq_free(a);
}

static void conv_hash_got(redisReply *r, void *arg)
{
    areq *a = arg;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0)
        a->acc = hash_to_json(r);
    else
        a->missing = 1;
    conv_one_done(a);
}

static void conv_log_got(redisReply *r, void *arg)
{
    areq *a = arg;
    json_t *msgs = json_array();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        json_t *m = hash_to_json(e->element[1]);
        json_object_set_new(m, "entry", json_string(e->element[0]->str));
        json_array_append_new(msgs, m);
    }
    if (a->acc)
        json_object_set_new(a->acc, "messages", msgs);
    else
        json_decref(msgs);
    conv_one_done(a);
}

static void conv_list_item(redisReply *r, void *arg)
{
    areq *a = arg;
    json_t *c = hash_to_json(r);
    if (json_object_size(c))
        json_array_append_new(json_object_get(a->acc, "conversations"), c);
    else
        json_decref(c);
    if (--a->waiting == 0) {
        struct evhttp_request *req = areq_take(a);
        if (req)
            reply_json(req, 200, json_incref(a->acc));
        areq_free(a);
    }
}

static void conv_list_ids(redisReply *r, void *arg)
{
    areq *a = arg;
    omni *o = a->h->o;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        struct evhttp_request *req = areq_take(a);
        if (req)
            reply_error(req, 503, "redis_unavailable", NULL);
        areq_free(a);
        return;
    }
    a->acc = json_pack("{s:[]}", "conversations");
    a->waiting = 1;
    for (size_t i = 0; i < r->elements; i++) {
        char key[KEY_MAX];
        omni_key(o, key, sizeof(key), "conv:%s", r->element[i]->str);
        if (store_cmd(o->st, conv_list_item, a, "HGETALL", key, NULL) == 0)
            a->waiting++;
    }
    conv_list_item(NULL, a); /* the extra count taken above */
}

static void conv_closed(omni *o, const char *res, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = areq_take(a);
    if (req) {
        if (!res && !store_is_ready(o->st))
            reply_error(req, 503, "redis_unavailable", NULL);
        else if (!res)
            reply_error(req, 404, "not_found", "no such conversation");
        else
            reply_json(req, 200, json_pack("{s:s,s:s}", "id", a->id, "state", "closed"));
    }
    areq_free(a);
}

static void api(http_server *h, struct evhttp_request *req, const char *path,
                const struct evhttp_uri *u)
{
    omni *o = h->o;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!authorized(h, req)) {
        reply_error(req, 401, "unauthorized", "Authorization: Bearer TOKEN required");
        return;
    }
    const char *rest;
    if (!strcmp(path, "/v1/broadcasts")) {
        if (m != EVHTTP_REQ_POST)
            return reply_error(req, 405, "method_not_allowed", NULL);
        return submit(h, req, JOB_BROADCAST);
    }
    if (!strcmp(path, "/v1/messages")) {
        if (m != EVHTTP_REQ_POST)
            return reply_error(req, 405, "method_not_allowed", NULL);
        return submit(h, req, JOB_MESSAGE);
    }
    if (!strncmp(path, "/v1/campaigns/", 14)) {
        rest = path + 14;
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (!job_valid_id(rest, n))
            return reply_error(req, 404, "not_found", "bad campaign id");
        areq *a = areq_new(h, req);
        snprintf(a->id, sizeof(a->id), "%.*s", (int)n, rest);
        if (!slash && m == EVHTTP_REQ_GET) {
            char key[KEY_MAX];
            omni_key(o, key, sizeof(key), "campaign:%s", a->id);
            if (store_cmd(o->st, campaign_got, a, "HGETALL", key, NULL) < 0)
                campaign_got(NULL, a);
            return;
        }
        if (slash && !strcmp(slash, "/uncertain")) {
            if (m == EVHTTP_REQ_GET)
                return campaign_uncertain(h, req, a, u);
            areq_take(a);
            areq_free(a);
            return reply_error(req, 405, "method_not_allowed", NULL);
        }
        if (slash && m == EVHTTP_REQ_POST &&
            (!strcmp(slash, "/pause") || !strcmp(slash, "/resume") || !strcmp(slash, "/cancel"))) {
            campaign_control(o, a->id, slash + 1, controlled, a);
            return;
        }
        areq_take(a);
        areq_free(a);
        return reply_error(req, m == EVHTTP_REQ_GET || m == EVHTTP_REQ_POST ? 404 : 405,
                           "not_found", "no such route");
    }
    if (!strcmp(path, "/v1/conversations") && m == EVHTTP_REQ_GET) {
        struct evkeyvalq q;
        TAILQ_INIT(&q);
        const char *qs = evhttp_uri_get_query(u);
        if (qs && evhttp_parse_query_str(qs, &q) < 0)
            return reply_error(req, 400, "bad_query", NULL);
        const char *state = evhttp_find_header(&q, "state");
        const char *camp = evhttp_find_header(&q, "campaign");
        const char *lim = evhttp_find_header(&q, "limit");
        int limit = lim ? atoi(lim) : 100;
        if (limit <= 0 || limit > LIST_MAX)
            limit = LIST_MAX;
        char key[KEY_MAX], stop[16];
        snprintf(stop, sizeof(stop), "%d", limit - 1);
        if (camp && !job_valid_id(camp, strlen(camp))) {
            evhttp_clear_headers(&q);
            return reply_error(req, 400, "bad_query", "bad campaign id");
        }
        if (state && strcmp(state, "open") && strcmp(state, "all")) {
            evhttp_clear_headers(&q);
            return reply_error(req, 400, "bad_query", "state must be open or all");
        }
        if (camp)
            omni_key(o, key, sizeof(key), "conv:campaign:%s", camp);
        else if (state && !strcmp(state, "open"))
            omni_key(o, key, sizeof(key), "conv:open");
        else
            omni_key(o, key, sizeof(key), "conv:all");
        evhttp_clear_headers(&q);
        areq *a = areq_new(h, req);
        if (store_cmd(o->st, conv_list_ids, a, "ZREVRANGE", key, "0", stop, NULL) < 0)
            conv_list_ids(NULL, a);
        return;
    }
    if (!strncmp(path, "/v1/conversations/", 18)) {
        rest = path + 18;
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (!job_valid_id(rest, n))
            return reply_error(req, 404, "not_found", "bad conversation id");
        areq *a = areq_new(h, req);
        snprintf(a->id, sizeof(a->id), "%.*s", (int)n, rest);
        if (!slash && m == EVHTTP_REQ_GET) {
            char key[KEY_MAX], log[KEY_MAX];
            omni_key(o, key, sizeof(key), "conv:%s", a->id);
            omni_key(o, log, sizeof(log), "conv:%s:log", a->id);
            if (!store_is_ready(o->st)) {
                areq_take(a);
                areq_free(a);
                return reply_error(req, 503, "redis_unavailable", NULL);
            }
            /* both go on one connection, so both callbacks will run */
            a->waiting = 2;
            store_cmd(o->st, conv_hash_got, a, "HGETALL", key, NULL);
            store_cmd(o->st, conv_log_got, a, "XRANGE", log, "-", "+", "COUNT", "1000", NULL);
            return;
        }
        if (slash && !strcmp(slash, "/close") && m == EVHTTP_REQ_POST) {
            if (!store_is_ready(o->st)) { /* as campaign control: not a 404 */
                areq_take(a);
                areq_free(a);
                return reply_error(req, 503, "redis_unavailable", NULL);
            }
            conv_close(o, a->id, conv_closed, a);
            return;
        }
        areq_take(a);
        areq_free(a);
    }
    reply_error(req, 404, "not_found", "no such route");
}

static void on_request(struct evhttp_request *req, void *arg)
{
    http_server *h = arg;
    omni *o = h->o;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    conn_track *t = track_of(h, req);
    const char *why = NULL;
    if (t) {
        /* the request is here whole: no deadline until its reply is out */
        t->phase = PH_BUSY;
        if (t->timer)
            evtimer_del(t->timer);
        evhttp_request_set_on_complete_cb(req, req_done, t);
    }
    if (http_framing_check(evhttp_request_get_input_headers(req), &why) < 0) {
        /* framed one way by evhttp, maybe another by a proxy in front: the
         * request is refused and the connection closed, so that nothing the
         * two could disagree on is read as a next request */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        reply_error(req, 400, "bad_framing", why);
    } else if (t && t->over) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        reply_error(req, 503, "too_many_connections", "connection limit reached, retry later");
    } else if (!path || strstr(path, "..") || strstr(path, "//") || strchr(path, '%')) {
        reply_error(req, 400, "bad_request", "bad request path");
    } else if (!strcmp(path, "/healthz")) {
        reply(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
    } else if (!strcmp(path, "/readyz")) {
        if (!store_is_ready(o->st))
            reply_json(req, 503, json_pack("{s:s,s:s}", "status", "not_ready", "failed", "redis"));
        else if (o->draining)
            reply_json(req, 503,
                       json_pack("{s:s,s:s}", "status", "not_ready", "failed", "draining"));
        else
            reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
    } else if (!strcmp(path, "/metrics") && method == EVHTTP_REQ_GET) {
        oc_buf m = {0};
        metrics_render(o, &m);
        reply(req, 200, "text/plain; version=0.0.4", m.data ? m.data : "", m.len);
        oc_buf_free(&m);
    } else if (!strncmp(path, "/webhooks/", 10)) {
        const char *name = path + 10;
        if (!job_valid_id(name, strlen(name)))
            reply_error(req, 404, "unknown_connector", NULL);
        else if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_POST)
            reply_error(req, 405, "method_not_allowed", NULL);
        else
            webhook(h, req, name, evhttp_uri_get_query(u));
    } else if (!strncmp(path, "/v1/", 4)) {
        api(h, req, path, u);
    } else {
        reply_error(req, 404, "not_found", "no such route");
    }
}

http_server *http_start(omni *o, char *err, size_t err_len)
{
    http_server *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    h->o = o;
    raise_nofile();
    h->resume = evtimer_new(o->base, resume_cb, h);
    h->report = evtimer_new(o->base, report_cb, h);
    h->last_report_ms = omni_now_ms() - REPORT_INTERVAL_MS;
    if (load_tokens(h, o->cfg->api_tokens_file, err, err_len) < 0) {
        http_stop(h);
        return NULL;
    }
    h->http = evhttp_new(o->base);
    const omni_config *c = o->cfg;
    evhttp_set_max_body_size(h->http, (ev_ssize_t)c->http_max_body);
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)c->http_max_headers);
    struct timeval tv = {c->http_timeout_ms / 1000, (c->http_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(h->http, &tv);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(h->http, on_request, h);
    evhttp_set_bevcb(h->http, new_conn, h);
    for (size_t i = 0; i < c->n_http_listen; i++) {
        char addr[256];
        snprintf(addr, sizeof(addr), "%s", c->http_listen[i]);
        char *colon = strrchr(addr, ':');
        *colon = '\0';
        int port = atoi(colon + 1);
        char *host = addr;
        if (host[0] == '[') {
            host++;
            host[strlen(host) - 1] = '\0';
        }
        struct evhttp_bound_socket *b =
            evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
        if (!b) {
            snprintf(err, err_len, "cannot listen on %s", c->http_listen[i]);
            http_stop(h);
            return NULL;
        }
        struct evconnlistener *l = evhttp_bound_socket_get_listener(b);
        if (i == 0)
            for (size_t k = 0; k < sizeof(servers) / sizeof(servers[0]); k++)
                if (!servers[k]) {
                    servers[k] = h;
                    break;
                }
        if (l && h->n_listeners < LISTEN_MAX) {
            evconnlistener_set_error_cb(l, accept_error);
            h->listeners[h->n_listeners++] = l;
        }
        log_info("http: listening on %s", c->http_listen[i]);
    }
    return h;
}

void http_stop(http_server *h)
{
    if (!h)
        return;
    for (size_t k = 0; k < sizeof(servers) / sizeof(servers[0]); k++)
        if (servers[k] == h)
            servers[k] = NULL;
    if (h->http)
        evhttp_free(h->http); /* closes connections: their close callbacks untrack them */
    while (h->conns) {
        conn_track *t = h->conns;
        h->conns = t->next;
        if (t->timer)
            event_free(t->timer);
        free(t);
    }
    if (h->resume)
        event_free(h->resume);
    if (h->report) {
        if (evtimer_pending(h->report, NULL))
            report_now(h);
        event_free(h->report);
    }
    free(h->by_bev);
    for (int i = 0; i < h->n_tokens; i++) {
        OPENSSL_cleanse(h->tokens[i], strlen(h->tokens[i]));
        free(h->tokens[i]);
    }
    free(h);
}
