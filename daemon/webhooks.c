/* Provider webhooks: /webhooks/{instance}. The connector instance checks
 * the provider's signature and turns the request into events; the answer
 * (the connector's 2xx) waits until every event is stored in Redis, or is
 * 503 when one cannot be. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "http_internal.h"
#include "log.h"

/* ---- webhooks */

/* The events of one webhook request, copied: most carry one or a few, so
 * the arrays start small and grow (up to EVENTS_PER_REQUEST). */
#define EV_STRS 10 /* the string members of oc_event */

typedef struct collected {
    oc_event *ev;
    char *(*strs)[EV_STRS];
    size_t n, cap;
    int abi3;     /* the connector's oc_event has payload (ABI 1.3) */
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
        char *(*strs)[EV_STRS] = ev ? realloc(c->strs, cap * sizeof(*strs)) : NULL;
        if (!strs) {
            c->oom = 1;
            return;
        }
        c->strs = strs;
        c->cap = cap;
    }
    oc_event *d = &c->ev[c->n];
    char **s = c->strs[c->n];
    /* a connector built against an older header hands a shorter oc_event */
    if (c->abi3) {
        *d = *e;
    } else {
        memset(d, 0, sizeof(*d));
        memcpy(d, e, offsetof(oc_event, payload));
    }
    d->from = s[0] = cdup(e->from);
    d->to = s[1] = cdup(e->to);
    d->text = s[2] = cdup(e->text);
    d->kind = s[3] = cdup(e->kind);
    d->provider_id = s[4] = cdup(e->provider_id);
    d->in_reply_to = s[5] = cdup(e->in_reply_to);
    d->state = s[6] = cdup(e->state);
    d->error = s[7] = cdup(e->error);
    d->name = s[8] = cdup(e->name);
    d->payload = s[9] = c->abi3 ? cdup(e->payload) : NULL;
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
    struct evhttp_request *req = http_areq_take(w->a);
    if (!req)
        return; /* the provider hung up: it retries anyway */
    if (stored == CONV_REPLAYED)
        http_reply_error(req, 409, "replayed", "this signed request was accepted before");
    else if (stored)
        http_reply(req, w->status, w->content_type, w->body.data ? w->body.data : "", w->body.len);
    else
        http_reply_error(req, 503, "not_stored", "the events could not be stored now; retry later");
}

static void hook_written(void *arg, int stored)
{
    hook_wait *w = arg;
    if (stored != 1)
        hook_answer(w, stored);
    if (--w->pending)
        return;
    hook_answer(w, 1);
    if (w->deadline)
        event_free(w->deadline);
    http_areq_free(w->a);
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
        http_reply_error(req, 404, "unknown_connector",
                         "no connector instance takes webhooks here");
        return;
    }
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    size_t len;
    char *body = http_body_of(req, &len);
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
    cc.abi3 = ci->impl->abi_minor >= 3;
    ci->impl->inbound(ci->inst, &r, &res, collect, c);
    res.replay_key[sizeof(res.replay_key) - 1] = '\0'; /* a plugin's bytes */
    hook_wait *w = NULL;
    if (res.status >= 200 && res.status < 300 && (c->overflow || c->oom)) {
        /* never a 2xx for a request whose events were not all kept */
        log_error("webhook %s: %s", name,
                  c->overflow ? "more than 1000 events in one request" : "out of memory");
        http_reply_error(req, c->overflow ? 413 : 503, c->overflow ? "too_many_events" : "busy",
                         c->overflow ? "at most 1000 events per request" : "retry later");
    } else if (res.status >= 200 && res.status < 300 && (c->n || res.replay_key[0]) &&
               (!conv_has_room(o, c->n + (res.replay_key[0] != '\0')) || !store_is_ready(o->st))) {
        /* the provider retries later; nothing is lost */
        http_reply_error(req, 503, store_is_ready(o->st) ? "busy" : "not_stored",
                         "cannot store the events now, retry later");
    } else if (res.status >= 200 && res.status < 300 && !(w = calloc(1, sizeof(*w)))) {
        http_reply_error(req, 503, "busy", "retry later");
    } else if (res.status >= 200 && res.status < 300) {
        /* answer once every event is in Redis: a 2xx is a promise */
        w->o = o;
        w->a = http_areq_new(h, req);
        w->status = res.status;
        w->content_type = res.content_type ? res.content_type : "text/plain";
        oc_buf_append(&w->body, res.body.data ? res.body.data : "", res.body.len);
        int gate = res.replay_key[0] != '\0';
        w->pending = c->n + 1 + gate;
        if (c->n || gate) {
            int ms = o->cfg->redis_timeout_ms > 0 ? o->cfg->redis_timeout_ms : 5000;
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            w->deadline = evtimer_new(o->base, hook_late, w);
            if (w->deadline)
                evtimer_add(w->deadline, &tv);
        }
        if (gate) /* before the events: they wait for the claim */
            conv_gate(o, ci, res.replay_key, res.replay_ttl_s, hook_written, w);
        for (size_t i = 0; i < c->n; i++)
            conv_push(o, ci, &c->ev[i], hook_written, w);
        hook_written(w, 1); /* the extra count taken above */
    } else {
        if (!res.status)
            res.status = 500;
        log_info("webhook %s: %d %s", name, res.status, res.error);
        http_reply_error(req, res.status, res.error[0] ? res.error : "rejected", NULL);
    }
    for (size_t i = 0; i < c->n; i++)
        for (int k = 0; k < EV_STRS; k++)
            free(c->strs[i][k]);
    free(c->ev);
    free(c->strs);
    oc_buf_free(&res.body);
    free(body);
}

/* /webhooks/{instance}: GET (a provider's verification) or POST */
void http_route_webhooks(http_server *h, struct evhttp_request *req, const char *path,
                         const struct evhttp_uri *u)
{
    const char *name = path + 10;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    if (!job_valid_id(name, strlen(name)))
        http_reply_error(req, 404, "unknown_connector", NULL);
    else if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_POST)
        http_reply_error(req, 405, "method_not_allowed", NULL);
    else
        webhook(h, req, name, evhttp_uri_get_query(u));
}
