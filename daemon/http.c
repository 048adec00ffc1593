/* The HTTP server on the daemon's event base (evhttp): the API under /v1
 * (bearer tokens, compared in constant time), provider webhooks under
 * /webhooks/{instance} (the connector checks the provider's signature),
 * /healthz, /readyz and /metrics. Every error is a JSON body with a stable
 * code. Nothing here waits on Redis synchronously. */
#include "http_internal.h"

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
#include "dispatch.h"
#include "http_framing.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "scopes.h"
#include "uncertain.h"

#define EVICT_BATCH 16    /* idle connections closed per accept failure for descriptors */
#define BACKOFF_MIN_MS 50 /* listener pause when nothing could be freed */
#define BACKOFF_MAX_MS 1000
#define REPORT_INTERVAL_MS 10000 /* at most one pressure line in the log per interval */

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

void http_reply(struct evhttp_request *req, int code, const char *type, const char *body,
                size_t len)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

void http_reply_json(struct evhttp_request *req, int code, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    http_reply(req, code, "application/json", s, strlen(s));
    free(s);
    json_decref(j);
}

void http_reply_error(struct evhttp_request *req, int code, const char *err, const char *msg)
{
    http_reply_json(req, code,
                    json_pack("{s:{s:s,s:s}}", "error", "code", err, "message", msg ? msg : err));
}

static void conn_closed(struct evhttp_connection *c, void *arg)
{
    (void)c;
    conn_track *t = arg;
    if (t->waiting) { /* the client hung up while its answer was on the way */
        areq *a = t->waiting;
        struct evhttp_request *req = a->req;
        a->req = NULL;
        a->conn = NULL;
        t->waiting = NULL;
        if (a->gone)
            a->gone(a, req);
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

areq *http_areq_new(http_server *h, struct evhttp_request *req)
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
struct evhttp_request *http_areq_take(areq *a)
{
    if (a->conn)
        a->conn->waiting = NULL;
    a->conn = NULL;
    struct evhttp_request *r = a->req;
    a->req = NULL;
    return r;
}

void http_areq_free(areq *a)
{
    json_decref(a->acc);
    free(a);
}

/* ---- helpers */

char *http_body_of(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    char *b = malloc(*len + 1);
    evbuffer_copyout(in, b, *len);
    b[*len] = '\0';
    return b;
}

/* The token of the request's Authorization header: 1 with its scope mask
 * in *scopes, else 0. Every token is compared (in constant time per
 * token), whichever matches, so the time taken does not tell which. */
static int authorized(http_server *h, struct evhttp_request *req, unsigned *scopes)
{
    *scopes = 0;
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7))
        return 0;
    const char *t = a + 7;
    size_t tl = strlen(t);
    int ok = 0;
    unsigned mask = 0;
    for (int i = 0; i < h->n_tokens; i++) {
        size_t l = strlen(h->tokens[i]);
        int eq = l == tl && CRYPTO_memcmp(h->tokens[i], t, l) == 0;
        ok |= eq;
        mask |= h->token_scopes[i] & (0u - (unsigned)eq);
    }
    *scopes = mask;
    return ok;
}

/* One token a line, read whole (getline), "TOKEN" or "TOKEN scope,...":
 * a line with a NUL byte, a token longer than SCOPE_TOKEN_MAX, an empty or
 * unknown scope is refused with its line number (the message holds no
 * part of the line), never cut into pieces that would each be accepted. */
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
    int lineno = 0, rc = 0, scoped = 0;
    while ((got = getline(&line, &cap, f)) >= 0 && h->n_tokens < TOKENS_MAX) {
        lineno++;
        const char *tok = NULL, *why = NULL;
        size_t tl = 0;
        unsigned mask = 0;
        int r = scopes_parse_line(line, (size_t)got, &tok, &tl, &mask, &why);
        if (r < 0) {
            snprintf(err, err_len, "api_tokens_file %s:%d: %s", path, lineno, why);
            rc = -1;
            break;
        }
        if (r == 0)
            continue;
        h->tokens[h->n_tokens] = strndup(tok, tl);
        h->token_scopes[h->n_tokens++] = mask;
        scoped += mask != SCOPE_ALL;
    }
    if (line) {
        OPENSSL_cleanse(line, cap);
        free(line);
    }
    fclose(f);
    if (!rc && !h->n_tokens)
        log_warn("http: %s holds no tokens: every API call will be refused", path);
    else if (!rc)
        log_info("http: %d API tokens, %d of them scoped", h->n_tokens, scoped);
    return rc;
}

/* ---- open routes */

static void route_healthz(http_server *h, struct evhttp_request *req, const char *path,
                          const struct evhttp_uri *u)
{
    (void)h;
    (void)path;
    (void)u;
    http_reply(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static void route_readyz(http_server *h, struct evhttp_request *req, const char *path,
                         const struct evhttp_uri *u)
{
    (void)path;
    (void)u;
    omni *o = h->o;
    if (!store_is_ready(o->st))
        http_reply_json(req, 503, json_pack("{s:s,s:s}", "status", "not_ready", "failed", "redis"));
    else if (o->draining)
        http_reply_json(req, 503,
                        json_pack("{s:s,s:s}", "status", "not_ready", "failed", "draining"));
    else if (conn_halted(o) || dispatch_counters_of(o)->wait_degraded) {
        /* degraded, still ready: the instance takes jobs and webhooks and
         * its other connectors send; a 503 would take every instance out
         * of rotation at once (they halt alike, and share the replicas),
         * webhooks with them. "halted" names the halted connectors;
         * "degraded": "redis_wait" says the last claim batch's WAIT came
         * back short (sends wait until the replicas acknowledge again) */
        json_t *body = json_pack("{s:s}", "status", "degraded");
        if (conn_halted(o)) {
            json_t *names = json_array();
            for (size_t i = 0; i < o->n_conns; i++)
                if (o->conns[i].halted)
                    json_array_append_new(names, json_string(o->conns[i].conf->name));
            json_object_set_new(body, "halted", names);
        }
        if (dispatch_counters_of(o)->wait_degraded)
            json_object_set_new(body, "degraded", json_string("redis_wait"));
        http_reply_json(req, 200, body);
    } else
        http_reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
}

static void route_metrics(http_server *h, struct evhttp_request *req, const char *path,
                          const struct evhttp_uri *u)
{
    (void)path;
    (void)u;
    oc_buf m = {0};
    metrics_render(h->o, &m);
    http_reply(req, 200, "text/plain; version=0.0.4", m.data ? m.data : "", m.len);
    oc_buf_free(&m);
}

/* ---- the route table: the first entry whose path matches (whole, or as a
 * prefix) and whose methods include the request's runs; a matching path
 * with another method answers wrong_method (405), or, when that is 0, the
 * search goes on (and ends in 404). Every path under /v1/ needs a token
 * (401 before any route, known or not). */

#define M_GET EVHTTP_REQ_GET
#define M_POST EVHTTP_REQ_POST
#define M_HEAD EVHTTP_REQ_HEAD
#define M_ANY (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD)

static const struct route {
    const char *path;
    int prefix;
    int methods;
    int wrong_method;
    http_route_fn *fn;
} routes[] = {
    {"/healthz", 0, M_ANY, 0, route_healthz},
    {"/readyz", 0, M_ANY, 0, route_readyz},
    {"/metrics", 0, M_GET, 0, route_metrics},
    {"/webhooks/", 1, M_ANY, 0, http_route_webhooks},
    {"/ui", 0, M_GET | M_HEAD, 405, ui_route},
    {"/ui/", 1, M_GET | M_HEAD, 405, ui_route},
    {"/v1/broadcasts", 0, M_POST, 405, api_broadcasts},
    {"/v1/messages", 0, M_POST, 405, api_messages},
    {"/v1/campaigns", 0, M_GET, 405, api_campaigns},
    {"/v1/campaigns/", 1, M_ANY, 0, api_campaign},
    {"/v1/conversations", 0, M_GET, 0, api_conversations},
    {"/v1/conversations/", 1, M_ANY, 0, api_conversation},
    {"/v1/connectors", 0, M_GET, 405, api_connectors},
    {"/v1/token", 0, M_GET, 405, api_token},
    {"/v1/dead", 0, M_ANY, 0, api_dead},
    {"/v1/dead/", 1, M_ANY, 0, api_dead},
    {"/v1/suppressions/", 1, M_ANY, 0, api_suppressions},
    {"/v1/connectors/", 1, M_POST, 405, api_connector},
};

/* ---- the scope table: the one place that says which scope (scopes.h) a
 * /v1 request needs. A token without scopes has them all; a scoped token
 * missing the one a request needs gets 403 insufficient_scope, after the
 * 401 check and before any route runs. A row's path is whole, with "*"
 * for one segment (an id, a name). A /v1 request that matches no row
 * needs admin: a new route is closed to scoped tokens until it has its
 * row here (and its operation in docs/openapi.yaml, which
 * tests/integration/test_openapi.sh checks against this table). */

#define M_READ (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)

static const struct scope_rule {
    int methods;
    const char *path;
    unsigned scope;
} scope_rules[] = {
    {M_POST, "/v1/broadcasts", SCOPE_SEND},
    {M_POST, "/v1/messages", SCOPE_SEND},
    {M_READ, "/v1/campaigns", SCOPE_READ},
    {M_READ, "/v1/campaigns/*", SCOPE_READ},
    {M_READ, "/v1/campaigns/*/uncertain", SCOPE_READ},
    {M_POST, "/v1/campaigns/*/pause", SCOPE_CONTROL},
    {M_POST, "/v1/campaigns/*/resume", SCOPE_CONTROL},
    {M_POST, "/v1/campaigns/*/cancel", SCOPE_CONTROL},
    {M_READ, "/v1/conversations", SCOPE_READ},
    {M_READ, "/v1/conversations/*", SCOPE_READ},
    {M_POST, "/v1/conversations/*/close", SCOPE_AGENT},
    {M_POST, "/v1/connectors/*/resume", SCOPE_ADMIN},
    {M_READ, "/v1/campaigns/*/recipients", SCOPE_READ},
    {M_POST, "/v1/campaigns/*/resend-uncertain", SCOPE_CONTROL},
    {M_POST, "/v1/conversations/*/messages", SCOPE_AGENT},
    {M_POST, "/v1/conversations/*/conversion", SCOPE_AGENT},
    {M_READ, "/v1/connectors", SCOPE_READ},
    {M_READ, "/v1/token", SCOPE_ALL}, /* any token may ask what it may do */
    {M_READ, "/v1/dead", SCOPE_ADMIN},
    {M_POST, "/v1/dead/*/replay", SCOPE_ADMIN},
    {M_READ, "/v1/suppressions/*", SCOPE_ADMIN},
    {M_POST, "/v1/suppressions/*/add", SCOPE_ADMIN},
    {M_POST, "/v1/suppressions/*/remove", SCOPE_ADMIN},
};
#define N_SCOPE_RULES (sizeof(scope_rules) / sizeof(scope_rules[0]))

unsigned http_scope_required(int method, const char *path)
{
    unsigned by_path = 0;
    for (size_t i = 0; i < N_SCOPE_RULES; i++) {
        if (!scopes_path_match(scope_rules[i].path, path))
            continue;
        if (scope_rules[i].methods & method)
            return scope_rules[i].scope;
        if (!by_path)
            by_path = scope_rules[i].scope;
    }
    return by_path ? by_path : SCOPE_ADMIN;
}

int http_scope_row(size_t i, int *methods, const char **pattern, unsigned *scope)
{
    if (i >= N_SCOPE_RULES)
        return 0;
    *methods = scope_rules[i].methods;
    *pattern = scope_rules[i].path;
    *scope = scope_rules[i].scope;
    return 1;
}

static void route(http_server *h, struct evhttp_request *req, const char *path,
                  const struct evhttp_uri *u)
{
    int method = (int)evhttp_request_get_command(req);
    if (!strncmp(path, "/v1/", 4)) {
        unsigned have = 0;
        if (!authorized(h, req, &have))
            return http_reply_error(req, 401, "unauthorized",
                                    "Authorization: Bearer TOKEN required");
        unsigned need = http_scope_required(method, path);
        if (!(have & need)) {
            char msg[80];
            snprintf(msg, sizeof(msg), "this route needs scope %s, which the token does not have",
                     scopes_name(need));
            return http_reply_error(req, 403, "insufficient_scope", msg);
        }
        h->req_scopes = have; /* GET /v1/token tells them */
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        if (r->prefix ? strncmp(path, r->path, strlen(r->path)) : strcmp(path, r->path))
            continue;
        if (r->methods & method)
            return r->fn(h, req, path, u);
        if (r->wrong_method)
            return http_reply_error(req, r->wrong_method, "method_not_allowed", NULL);
    }
    http_reply_error(req, 404, "not_found", "no such route");
}

static void on_request(struct evhttp_request *req, void *arg)
{
    http_server *h = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
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
        http_reply_error(req, 400, "bad_framing", why);
    } else if (t && t->over) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        http_reply_error(req, 503, "too_many_connections", "connection limit reached, retry later");
    } else if (!path || strstr(path, "..") || strstr(path, "//") || strchr(path, '%')) {
        http_reply_error(req, 400, "bad_request", "bad request path");
    } else {
        route(h, req, path, u);
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
        h->token_scopes[i] = 0;
        free(h->tokens[i]);
    }
    free(h);
}
