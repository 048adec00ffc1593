/* The API under /v1 (bearer token checked by http.c before a route here
 * runs): jobs in (/v1/broadcasts, /v1/messages), campaigns and their
 * uncertain recipients, conversations. Every answer that needs Redis is
 * async (areq), and survives a client that hangs up. */
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "address.h"
#include "campaign.h"
#include "conv.h"
#include "counters.h"
#include "export.h"
#include "http_internal.h"
#include "log.h"
#include "uncertain.h"

static int channel_kind(void *ctx, const char *name)
{
    chan *c = omni_channel(ctx, name);
    return c ? c->addr_kind : -1;
}

/* the customer service window its connector instance declares
 * (session_window_s), 0 for none */
static long long channel_window_s(void *ctx, const char *name)
{
    chan *c = omni_channel(ctx, name);
    return c && c->ci && c->ci->conf ? c->ci->conf->session_window_s : 0;
}

/* ---- /v1/broadcasts and /v1/messages */

static void queued(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!r || r->type != REDIS_REPLY_STRING)
            http_reply_error(req, 503, "redis_unavailable", "the job could not be queued");
        else
            http_reply_json(
                req, 202,
                json_pack("{s:s,s:s,s:s}", "id", a->id, "status", "queued", "entry", r->str));
    }
    http_areq_free(a);
}

static void proactive_opened(omni *o, const char *conv_id, void *arg)
{
    (void)o;
    areq *a = arg;
    if (conv_id)
        json_object_set_new(a->acc, "conversation_id", json_string(conv_id));
    if (--a->waiting == 0) {
        struct evhttp_request *req = http_areq_take(a);
        if (req) {
            if (!conv_id)
                http_reply_error(req, 503, "redis_unavailable", "the message could not be queued");
            else
                http_reply_json(req, 202, json_incref(a->acc));
        }
        http_areq_free(a);
    }
}

static void message_queued(redisReply *r, void *arg)
{
    areq *a = arg;
    if (r && r->type == REDIS_REPLY_STRING)
        json_object_set_new(a->acc, "entry", json_string(r->str));
    proactive_opened(a->h->o, r && r->type == REDIS_REPLY_STRING ? "" : NULL, a);
}

static void dup_check(http_server *h, struct evhttp_request *req, job *j, char *body, size_t len,
                      int want);
static void submit_queue(areq *a, job *jp, char *body, size_t len, int want);

static void submit(http_server *h, struct evhttp_request *req, int want)
{
    omni *o = h->o;
    size_t len;
    char *body = http_body_of(req, &len);
    job_rules rules = {.max_bytes = (size_t)o->cfg->max_job_bytes,
                       .max_inline_recipients = (size_t)o->cfg->max_inline_recipients,
                       .channel_kind = channel_kind,
                       .channel_window_s = channel_window_s,
                       .ctx = o};
    job j;
    char reason[JOB_REASON_MAX];
    if (job_parse(body, len, &rules, &j, reason, sizeof(reason)) < 0) {
        http_reply_error(req, 400, "invalid_job", reason);
        free(body);
        return;
    }
    if (j.type != want) {
        http_reply_error(req, 400, "invalid_job",
                         want == JOB_BROADCAST ? "type: must be broadcast on /v1/broadcasts"
                                               : "type: must be message on /v1/messages");
        job_free(&j);
        free(body);
        return;
    }
    dup_check(h, req, &j, body, len, want);
}

/* the job queued: XADD to jobs (a message also opens its conversation) */
static void submit_queue(areq *a, job *jp, char *body, size_t len, int want)
{
    omni *o = a->h->o;
    job j = *jp;
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

/* A job id whose campaign exists is not queued again: 200
 * {"id","status":"exists","state"} (one HGET of its state first). A job
 * whose campaign is not created yet (still in the jobs stream) is queued:
 * create.lua ignores the second one. */
typedef struct dup_ctx {
    areq *a;
    job j;
    char *body;
    size_t len;
    int want;
} dup_ctx;

static void dup_checked(redisReply *r, void *arg)
{
    dup_ctx *d = arg;
    areq *a = d->a;
    if (!a->req) { /* the client hung up: nothing is queued for it */
        http_areq_free(a);
        job_free(&d->j);
    } else if (!r || r->type == REDIS_REPLY_ERROR) {
        http_reply_error(http_areq_take(a), 503, "redis_unavailable",
                         "the job could not be queued");
        http_areq_free(a);
        job_free(&d->j);
    } else if (r->type == REDIS_REPLY_STRING) {
        http_reply_json(http_areq_take(a), 200,
                        json_pack("{s:s,s:s,s:s#}", "id", a->id, "status", "exists", "state",
                                  r->str, (int)r->len));
        http_areq_free(a);
        job_free(&d->j);
    } else {
        submit_queue(a, &d->j, d->body, d->len, d->want);
        d->body = NULL;
    }
    free(d->body);
    free(d);
}

static void dup_check(http_server *h, struct evhttp_request *req, job *j, char *body, size_t len,
                      int want)
{
    omni *o = h->o;
    dup_ctx *d = calloc(1, sizeof(*d));
    if (!d) {
        job_free(j);
        free(body);
        return http_reply_error(req, 503, "busy", "out of memory");
    }
    d->a = http_areq_new(h, req);
    snprintf(d->a->id, sizeof(d->a->id), "%s", j->id);
    d->j = *j;
    d->body = body;
    d->len = len;
    d->want = want;
    char key[KEY_MAX];
    omni_key(o, key, sizeof(key), KEY_CAMPAIGN, d->a->id);
    if (store_cmd(o->st, dup_checked, d, "HGET", key, "state", NULL) < 0)
        dup_checked(NULL, d);
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

/* The fields of a conversation and of its log entries that are numbers:
 * times in ms (at, *_at), counts, the rendered flag, revenue in
 * thousandths. Every other field stays a string whatever it holds: a reply
 * "1", a campaign or message id "2024", a contact's name of digits. */
static int numeric_field(const char *k)
{
    size_t n = strlen(k);
    if (!strcmp(k, "at") || (n > 3 && !strcmp(k + n - 3, "_at")))
        return 1;
    return !strcmp(k, "conversions") || !strcmp(k, "rendered") || !strcmp(k, "segments") ||
           !strncmp(k, "revenue:", 8);
}

static json_t *hash_to_json(redisReply *r)
{
    json_t *o = json_object();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!k || !v)
            continue;
        json_object_set_new(
            o, k, numeric_field(k) && numeric(v) ? json_integer(atoll(v)) : json_string(v));
    }
    return o;
}

static void campaign_got(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!r)
            http_reply_error(req, 503, "redis_unavailable", NULL);
        else if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
            http_reply_error(req, 404, "not_found", "no such campaign");
        else {
            /* the same object omnicast --json status prints (counters.h) */
            json_t *c = counters_from_reply(r);
            if (!c)
                http_reply_error(req, 500, "internal", NULL);
            else
                http_reply_json(req, 200, c);
        }
    }
    http_areq_free(a);
}

static void controlled(omni *o, int ok, const char *state, void *arg)
{
    (void)o;
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!state)
            http_reply_error(req, 503, "redis_unavailable", NULL);
        else if (ok)
            http_reply_json(req, 200, json_pack("{s:s,s:s}", "id", a->id, "state", state));
        else if (!strcmp(state, "unknown_campaign"))
            http_reply_error(req, 404, "unknown_campaign", "no such campaign");
        else if (!strcmp(state, "campaign_finished"))
            http_reply_error(req, 409, "campaign_finished",
                             "the campaign is finished (done, or cancelled with every recipient "
                             "counted)");
        else
            http_reply_error(req, 409, "invalid_state", state);
    }
    http_areq_free(a);
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
    struct evhttp_request *req = http_areq_take(s->a);
    if (req && err)
        http_reply_error(req, code, err, msg);
    else if (req)
        http_reply_json(req, 200,
                        json_pack("{s:s,s:O,s:o}", "campaign", s->a->id, "uncertain", s->found,
                                  "next_cursor",
                                  strcmp(s->cursor, "0") ? json_string(s->cursor) : json_null()));
    http_areq_free(s->a);
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
        http_areq_take(a);
        http_areq_free(a);
        return http_reply_error(req, 400, "bad_query", NULL);
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
        http_areq_take(a);
        http_areq_free(a);
        free(s);
        return http_reply_error(req, bad, bad == 400 ? "bad_query" : "busy", why);
    }
    s->a = a;
    s->found = json_array();
    snprintf(s->count, sizeof(s->count), "%d", s->want);
    omni_key(o, s->key, sizeof(s->key), KEY_MSG, a->id);
    char ck[KEY_MAX];
    omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, a->id);
    if (store_cmd(o->st, unc_exists, s, "EXISTS", ck, NULL) < 0)
        unc_end(s, 503, "redis_unavailable", NULL);
}

/* GET /v1/campaigns/{id}/recipients?state=S&format=ndjson|csv: every
 * recipient record of the campaign's message hash, streamed (chunked) one
 * line each (export.h). The hash is read with HSCAN, EXPORT_SCAN_COUNT
 * fields a step; the next step is asked only while the connection's output
 * holds less than EXPORT_HIGH_WATER bytes, else once it drained (evhttp's
 * write callback): a slow client slows the scan instead of growing memory.
 * A client that hangs up ends it. Redis failing mid-stream closes the
 * connection (the chunked answer then has no end: the client sees it cut). */
#define EXPORT_SCAN_COUNT "500"
#define EXPORT_HIGH_WATER (256 * 1024)

typedef struct rexport {
    areq *a;
    char key[KEY_MAX];
    char cursor[24];
    char state[16];
    int format;
    int inflight; /* an HSCAN (or the EXISTS) is on its way */
    int draining; /* waiting for the output to drain */
} rexport;

static void ex_free(rexport *x)
{
    http_areq_take(x->a);
    http_areq_free(x->a);
    free(x);
}

/* the client hung up (http.c): a request evhttp gave back to us (no
 * connection left) is ours to free; the walk ends now or at its reply */
static void ex_gone(areq *a, struct evhttp_request *req)
{
    rexport *x = a->gone_arg;
    a->gone = NULL;
    if (req && !evhttp_request_get_connection(req))
        evhttp_send_reply_end(req); /* frees a request without a connection */
    if (!x->inflight)
        ex_free(x);
}

/* Redis failed after the answer started: cut the connection */
static void ex_abort(rexport *x)
{
    x->a->gone = NULL;
    struct evhttp_request *req = http_areq_take(x->a);
    struct evhttp_connection *evcon = req ? evhttp_request_get_connection(req) : NULL;
    log_warn("export of %s cut: Redis failed during the scan", x->a->id);
    ex_free(x);
    if (evcon)
        evhttp_connection_free(evcon);
}

static void ex_page(redisReply *r, void *arg);

static void ex_step(rexport *x)
{
    omni *o = x->a->h->o;
    x->inflight = 1;
    if (store_cmd(o->st, ex_page, x, "HSCAN", x->key, x->cursor, "COUNT", EXPORT_SCAN_COUNT, NULL) <
        0) {
        x->inflight = 0;
        ex_abort(x);
    }
}

static void ex_drained(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    rexport *x = arg;
    if (x->draining && x->a->req) {
        x->draining = 0;
        ex_step(x);
    }
}

static size_t ex_output(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static void ex_page(redisReply *r, void *arg)
{
    rexport *x = arg;
    x->inflight = 0;
    struct evhttp_request *req = x->a->req;
    if (!req)
        return ex_free(x);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
        return ex_abort(x);
    snprintf(x->cursor, sizeof(x->cursor), "%s", r->element[0]->str);
    redisReply *kv = r->element[1];
    export_buf b = {0};
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        redisReply *f = kv->element[i], *v = kv->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (export_line(&b, x->format, x->state, f->str, f->len, v->str, v->len) < 0) {
            export_buf_free(&b);
            return ex_abort(x);
        }
    }
    if (b.len) {
        struct evbuffer *eb = evbuffer_new();
        if (!eb || evbuffer_add(eb, b.data, b.len) < 0) {
            evbuffer_free(eb);
            export_buf_free(&b);
            return ex_abort(x);
        }
        evhttp_send_reply_chunk_with_cb(req, eb, ex_drained, x);
        evbuffer_free(eb);
    }
    export_buf_free(&b);
    if (!strcmp(x->cursor, "0")) {
        x->a->gone = NULL;
        evhttp_send_reply_end(http_areq_take(x->a));
        return ex_free(x);
    }
    if (ex_output(req) < EXPORT_HIGH_WATER)
        return ex_step(x);
    x->draining = 1; /* ex_drained asks for the next step */
}

static void ex_exists(redisReply *r, void *arg)
{
    rexport *x = arg;
    x->inflight = 0;
    struct evhttp_request *req = x->a->req;
    if (!req)
        return ex_free(x);
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer == 0) {
        x->a->gone = NULL;
        req = http_areq_take(x->a);
        if (!r || r->type != REDIS_REPLY_INTEGER)
            http_reply_error(req, 503, "redis_unavailable", NULL);
        else
            http_reply_error(req, 404, "not_found", "no such campaign");
        return ex_free(x);
    }
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type",
                      x->format == EXPORT_CSV ? "text/csv; charset=utf-8" : "application/x-ndjson");
    evhttp_send_reply_start(req, 200, "OK");
    if (x->format == EXPORT_CSV) {
        struct evbuffer *eb = evbuffer_new();
        if (eb) {
            evbuffer_add(eb, export_csv_header(), strlen(export_csv_header()));
            evhttp_send_reply_chunk(req, eb);
            evbuffer_free(eb);
        }
    }
    ex_step(x);
}

static void campaign_recipients(http_server *h, struct evhttp_request *req, areq *a,
                                const struct evhttp_uri *u)
{
    omni *o = h->o;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *qs = evhttp_uri_get_query(u);
    const char *why = NULL;
    rexport *x = calloc(1, sizeof(*x));
    if (qs && evhttp_parse_query_str(qs, &q) < 0)
        why = "the query does not parse";
    const char *st = evhttp_find_header(&q, "state");
    const char *fmt = evhttp_find_header(&q, "format");
    if (!why && st && !export_state_valid(st))
        why = "state: must be claimed, sent, failed, retry, uncertain, cancelled or suppressed";
    if (!why && fmt && strcmp(fmt, "ndjson") && strcmp(fmt, "csv"))
        why = "format: must be ndjson or csv";
    if (x && !why) {
        snprintf(x->state, sizeof(x->state), "%s", st ? st : "");
        x->format = fmt && !strcmp(fmt, "csv") ? EXPORT_CSV : EXPORT_NDJSON;
    }
    evhttp_clear_headers(&q);
    int code = why ? 400 : !x ? 503 : !a->conn ? 503 : !store_is_ready(o->st) ? 503 : 0;
    if (code) {
        http_areq_take(a);
        http_areq_free(a);
        free(x);
        return http_reply_error(req, code,
                                why                     ? "bad_query"
                                : store_is_ready(o->st) ? "busy"
                                                        : "redis_unavailable",
                                why);
    }
    x->a = a;
    a->gone = ex_gone;
    a->gone_arg = x;
    snprintf(x->cursor, sizeof(x->cursor), "0");
    omni_key(o, x->key, sizeof(x->key), KEY_MSG, a->id);
    char ck[KEY_MAX];
    omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, a->id);
    x->inflight = 1;
    if (store_cmd(o->st, ex_exists, x, "EXISTS", ck, NULL) < 0)
        ex_exists(NULL, x);
}

/* GET /v1/campaigns?state=S&limit=N&cursor=C: the campaigns newest first
 * (created_at, then id, both descending). The source is the one omnicast
 * campaigns reads, a SCAN of campaign:*; each campaign found is read with
 * one HMGET of the fields below (never its spec or recipients). A request
 * takes at most LIST_SCAN_STEPS SCAN steps and reads at most
 * LIST_CAMPAIGNS_MAX campaigns; past either, the answer says
 * "truncated": true. The cursor is "created_at:id" of the last campaign of
 * a page: the next page starts after it. */
#define LIST_SCAN_STEPS 64
#define LIST_CAMPAIGNS_MAX 20000
#define LIST_DEFAULT 50
#define LIST_LIMIT_MAX 500

static const char *const list_fields[] = {"id",          "type",      "state",       "total",
                                          "sent",        "failed",    "suppressed",  "uncertain",
                                          "cancelled",   "delivered", "read",        "replied",
                                          "opted_out",   "awaiting",  "created_at",  "started_at",
                                          "finished_at", "paused_at", "cancelled_at"};
#define LIST_NFIELDS (sizeof(list_fields) / sizeof(list_fields[0]))

static const char *const list_states[] = {"scheduled", "running",   "paused",
                                          "done",      "cancelled", NULL};

typedef struct campaigns_page {
    areq *a;
    char key_pat[KEY_MAX];
    size_t plen;     /* length of prefix + "campaign:" */
    char cursor[24]; /* the SCAN cursor */
    int steps, waiting, scan_done, failed, truncated, read;
    int limit;
    char state[16];
    int have_after;
    long long after_at;
    char after_id[JOB_ID_MAX + 1];
    json_t *items;
    /* the index (omni:campaigns), once campaigns:indexed says it holds
     * every campaign: read newest first from the cursor on, LIST_INDEX_STEP
     * entries a step, until limit + 1 campaigns match */
    int use_index;
    long long offset; /* entries of the index read so far from max */
    char idx_key[KEY_MAX];
    char max[24];
    char last_read[JOB_ID_MAX + 32]; /* CREATED_AT:ID of the last entry read */
} campaigns_page;

static long long item_at(json_t *c)
{
    return json_integer_value(json_object_get(c, "created_at"));
}

static int item_newer(const void *x, const void *y)
{
    json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    long long ta = item_at(a), tb = item_at(b);
    if (ta != tb)
        return ta > tb ? -1 : 1;
    const char *ia = json_string_value(json_object_get(a, "id"));
    const char *ib = json_string_value(json_object_get(b, "id"));
    return -strcmp(ia ? ia : "", ib ? ib : "");
}

static void list_end(campaigns_page *l)
{
    struct evhttp_request *req = http_areq_take(l->a);
    if (req && l->failed) {
        http_reply_error(req, 503, "redis_unavailable", NULL);
    } else if (req) {
        size_t n = json_array_size(l->items);
        json_t **v = n ? calloc(n, sizeof(*v)) : NULL;
        json_t *page = json_array();
        if ((n && !v) || !page) {
            free(v);
            json_decref(page);
            http_reply_error(req, 500, "internal", NULL);
        } else {
            for (size_t i = 0; i < n; i++)
                v[i] = json_array_get(l->items, i);
            if (n)
                qsort(v, n, sizeof(*v), item_newer);
            size_t i = 0;
            json_t *last = NULL;
            int more = 0;
            for (; i < n; i++) {
                json_t *c = v[i];
                const char *id = json_string_value(json_object_get(c, "id"));
                const char *st = json_string_value(json_object_get(c, "state"));
                if (l->have_after) {
                    long long at = item_at(c);
                    if (at > l->after_at || (at == l->after_at && strcmp(id, l->after_id) >= 0))
                        continue;
                }
                if (l->state[0] && (!st || strcmp(st, l->state)))
                    continue;
                if ((int)json_array_size(page) == l->limit) {
                    more = 1;
                    break;
                }
                json_array_append(page, c);
                last = c;
            }
            json_t *next = json_null();
            if (more && last) {
                char cur[JOB_ID_MAX + 32];
                snprintf(cur, sizeof(cur), "%lld:%s", item_at(last),
                         json_string_value(json_object_get(last, "id")));
                next = json_string(cur);
            } else if (l->use_index && l->truncated && l->last_read[0]) {
                /* the index was read up to there: the next page goes on */
                next = json_string(l->last_read);
            }
            free(v);
            http_reply_json(req, 200,
                            json_pack("{s:o,s:o,s:b}", "campaigns", page, "next", next, "truncated",
                                      l->truncated));
        }
    }
    http_areq_free(l->a);
    json_decref(l->items);
    free(l);
}

static void idx_next(campaigns_page *l);

static void list_maybe_end(campaigns_page *l)
{
    if (l->waiting == 0 && !l->scan_done && l->use_index)
        return idx_next(l);
    if (l->waiting == 0 && l->scan_done)
        list_end(l);
}

/* a Redis step failed: the walk ends, and list_end answers */
static void list_fail(campaigns_page *l)
{
    l->failed = 1;
    l->scan_done = 1;
    list_maybe_end(l);
}

static void list_item(redisReply *r, void *arg)
{
    campaigns_page *l = arg;
    l->waiting--;
    if (!r)
        l->failed = 1;
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == LIST_NFIELDS &&
             r->element[0]->type == REDIS_REPLY_STRING &&
             r->element[2]->type == REDIS_REPLY_STRING) {
        json_t *c = json_object();
        for (size_t i = 0; c && i < LIST_NFIELDS; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                counters_set(c, list_fields[i], r->element[i]->str, r->element[i]->len);
        const char *ty = json_string_value(json_object_get(c, "type"));
        if (ty && !strcmp(ty, "message")) {
            /* a message job (proactive or a conversation's) is not a campaign */
            json_decref(c);
        } else if (c && json_is_string(json_object_get(c, "id"))) {
            json_object_set_new(c, "pending", json_integer(counters_pending(c)));
            json_array_append_new(l->items, c);
        } else {
            json_decref(c);
        }
    }
    list_maybe_end(l);
}

static void list_scanned(redisReply *r, void *arg);

static void list_step(campaigns_page *l)
{
    omni *o = l->a->h->o;
    l->waiting++;
    if (store_cmd(o->st, list_scanned, l, "SCAN", l->cursor, "MATCH", l->key_pat, "COUNT", "1000",
                  NULL) < 0) {
        l->waiting--;
        list_fail(l);
    }
}

static void list_scanned(redisReply *r, void *arg)
{
    campaigns_page *l = arg;
    omni *o = l->a->h->o;
    l->waiting--;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        return list_fail(l);
    }
    snprintf(l->cursor, sizeof(l->cursor), "%s", r->element[0]->str);
    l->steps++;
    redisReply *keys = r->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len <= l->plen)
            continue;
        const char *c = strrchr(k->str + l->plen, ':');
        if (c && c > k->str + l->plen)
            continue; /* campaign:ID:rcpt and such, as omnicast campaigns skips */
        if (l->read >= LIST_CAMPAIGNS_MAX) {
            l->truncated = 1;
            break;
        }
        const char *argv[2 + LIST_NFIELDS];
        size_t lens[2 + LIST_NFIELDS];
        argv[0] = "HMGET";
        lens[0] = 5;
        argv[1] = k->str;
        lens[1] = k->len;
        for (size_t f = 0; f < LIST_NFIELDS; f++) {
            argv[2 + f] = list_fields[f];
            lens[2 + f] = strlen(list_fields[f]);
        }
        l->waiting++;
        if (store_cmdv(o->st, STORE_CMD, list_item, l, (int)(2 + LIST_NFIELDS), argv, lens) < 0) {
            l->waiting--;
            l->failed = 1;
            break;
        }
        l->read++;
    }
    if (!l->failed && !l->truncated && l->a->req && strcmp(l->cursor, "0") != 0) {
        if (l->steps < LIST_SCAN_STEPS)
            return list_step(l);
        l->truncated = 1;
    }
    l->scan_done = 1;
    list_maybe_end(l);
}

/* ---- the index path: ZREVRANGEBYSCORE campaigns MAX -inf WITHSCORES
 * LIMIT OFFSET LIST_INDEX_STEP, MAX the cursor's created_at (+inf without
 * one), entries tied with the cursor at or after its id skipped (the
 * index orders ties by id too, descending); each campaign read with the
 * same HMGET as the scan's. A step's reads all answered, list_maybe_end
 * calls idx_next: the page is full (limit + 1 matching: next is known),
 * the index is through, or LIST_SCAN_STEPS steps were taken (truncated). */
#define LIST_INDEX_STEP 200

static void idx_read(redisReply *r, void *arg);

static void idx_ask(campaigns_page *l)
{
    omni *o = l->a->h->o;
    char off[24];
    snprintf(off, sizeof(off), "%lld", l->offset);
    l->waiting++;
    l->steps++;
    if (store_cmd(o->st, idx_read, l, "ZREVRANGEBYSCORE", l->idx_key, l->max, "-inf", "WITHSCORES",
                  "LIMIT", off, "200", NULL) < 0) {
        l->waiting--;
        list_fail(l);
    }
}

static void idx_read(redisReply *r, void *arg)
{
    campaigns_page *l = arg;
    omni *o = l->a->h->o;
    l->waiting--;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        return list_fail(l);
    }
    size_t n = r->elements / 2;
    l->offset += (long long)n;
    if (n < LIST_INDEX_STEP)
        l->scan_done = 1; /* the index is through: the page ends with these */
    for (size_t i = 0; i < n && !l->failed; i++) {
        redisReply *m = r->element[2 * i], *s = r->element[2 * i + 1];
        if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING)
            continue;
        long long at = strtoll(s->str, NULL, 10);
        snprintf(l->last_read, sizeof(l->last_read), "%lld:%s", at, m->str);
        if (l->have_after && at == l->after_at && strcmp(m->str, l->after_id) >= 0)
            continue;
        if (l->read >= LIST_CAMPAIGNS_MAX) {
            l->truncated = 1;
            l->scan_done = 1;
            break;
        }
        char ck[KEY_MAX];
        omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, m->str);
        const char *argv[2 + LIST_NFIELDS];
        size_t lens[2 + LIST_NFIELDS];
        argv[0] = "HMGET";
        lens[0] = 5;
        argv[1] = ck;
        lens[1] = strlen(ck);
        for (size_t f = 0; f < LIST_NFIELDS; f++) {
            argv[2 + f] = list_fields[f];
            lens[2 + f] = strlen(list_fields[f]);
        }
        l->waiting++;
        if (store_cmdv(o->st, STORE_CMD, list_item, l, (int)(2 + LIST_NFIELDS), argv, lens) < 0) {
            l->waiting--;
            l->failed = 1;
            l->scan_done = 1;
            break;
        }
        l->read++;
    }
    list_maybe_end(l);
}

/* a step's reads answered: another step, or the end */
static void idx_next(campaigns_page *l)
{
    int matching = 0;
    size_t i;
    json_t *c;
    json_array_foreach(l->items, i, c)
    {
        const char *st = json_string_value(json_object_get(c, "state"));
        if (!l->state[0] || (st && !strcmp(st, l->state)))
            matching++;
    }
    if (matching > l->limit || !l->a->req) {
        l->scan_done = 1;
        return list_end(l);
    }
    if (l->steps >= LIST_SCAN_STEPS) {
        l->truncated = 1;
        l->scan_done = 1;
        return list_end(l);
    }
    idx_ask(l);
}

/* campaigns:indexed: the index holds every campaign (sweep.c's backfill
 * is through), so the list reads it; else the scan */
static void idx_marked(redisReply *r, void *arg)
{
    campaigns_page *l = arg;
    l->waiting--;
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        return list_fail(l);
    }
    if (r->integer != 1)
        return list_step(l);
    l->use_index = 1;
    if (l->have_after)
        snprintf(l->max, sizeof(l->max), "%lld", l->after_at);
    else
        snprintf(l->max, sizeof(l->max), "+inf");
    idx_ask(l);
}

/* the query of GET /v1/campaigns into l; NULL, or why it is refused */
static const char *list_query(campaigns_page *l, const char *qs)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (qs && evhttp_parse_query_str(qs, &q) < 0)
        return "the query does not parse";
    const char *why = NULL;
    const char *st = evhttp_find_header(&q, "state");
    const char *lim = evhttp_find_header(&q, "limit");
    const char *cur = evhttp_find_header(&q, "cursor");
    l->limit = LIST_DEFAULT;
    if (st) {
        int ok = 0;
        for (int i = 0; list_states[i] && !ok; i++)
            ok = !strcmp(st, list_states[i]);
        if (!ok)
            why = "state: must be scheduled, running, paused, done or cancelled";
        else
            snprintf(l->state, sizeof(l->state), "%s", st);
    }
    if (!why && lim) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (!*lim || *end || !isdigit((unsigned char)lim[0]) || v < 1 || v > LIST_LIMIT_MAX)
            why = "limit: must be a whole number from 1 to 500";
        else
            l->limit = (int)v;
    }
    if (!why && cur) {
        const char *colon = strchr(cur, ':');
        size_t nd = colon ? (size_t)(colon - cur) : 0;
        int ok = colon && nd > 0 && nd < 19;
        for (size_t i = 0; ok && i < nd; i++)
            ok = isdigit((unsigned char)cur[i]);
        ok = ok && job_valid_id(colon + 1, strlen(colon + 1));
        if (!ok)
            why = "cursor: not one this API gave (the next of a page)";
        else {
            l->have_after = 1;
            l->after_at = strtoll(cur, NULL, 10);
            snprintf(l->after_id, sizeof(l->after_id), "%s", colon + 1);
        }
    }
    evhttp_clear_headers(&q);
    return why;
}

void api_campaigns(http_server *h, struct evhttp_request *req, const char *path,
                   const struct evhttp_uri *u)
{
    (void)path;
    omni *o = h->o;
    campaigns_page *l = calloc(1, sizeof(*l));
    if (!l)
        return http_reply_error(req, 503, "busy", "out of memory");
    const char *why = list_query(l, evhttp_uri_get_query(u));
    if (why) {
        free(l);
        return http_reply_error(req, 400, "bad_query", why);
    }
    if (!store_is_ready(o->st)) {
        free(l);
        return http_reply_error(req, 503, "redis_unavailable", NULL);
    }
    omni_key(o, l->key_pat, sizeof(l->key_pat), KEY_CAMPAIGN, "*");
    l->plen = strlen(l->key_pat) - 1;
    snprintf(l->cursor, sizeof(l->cursor), "0");
    l->items = json_array();
    l->a = http_areq_new(h, req);
    char mk[KEY_MAX];
    omni_key(o, mk, sizeof(mk), KEY_CAMPAIGNS_INDEXED, NULL);
    omni_key(o, l->idx_key, sizeof(l->idx_key), KEY_CAMPAIGNS, NULL);
    l->waiting++;
    if (store_cmd(o->st, idx_marked, l, "EXISTS", mk, NULL) < 0) {
        l->waiting--;
        list_fail(l);
    }
}

/* ---- /v1/conversations */

/* GET /v1/conversations/{id}: the hash and the log, answered together */
static void conv_one_done(areq *a)
{
    if (--a->waiting > 0)
        return;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (a->missing || !a->acc)
            http_reply_error(req, 404, "not_found", "no such conversation");
        else
            http_reply_json(req, 200, json_incref(a->acc));
    }
    http_areq_free(a);
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

/* A status entry of the log (dir "status", ref: a message job's id) is
 * folded into the out message it refers to: status, status_at, and
 * provider_id / reason when it carries them; every one is kept in order in
 * the message's "statuses". A status entry whose message is not in the
 * answer stays as it is. */
/* the ref of a log entry as a string (an id of digits reads as a number) */
static const char *ref_of(json_t *m, char *buf, size_t len)
{
    json_t *r = json_object_get(m, "ref");
    if (json_is_integer(r)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(r));
        return buf;
    }
    return json_string_value(r);
}

static int fold_status(json_t *by_ref, json_t *m)
{
    char buf[32];
    const char *dir = json_string_value(json_object_get(m, "dir"));
    const char *ref = ref_of(m, buf, sizeof(buf));
    if (!dir || strcmp(dir, "status") || !ref)
        return 0;
    json_t *msg = json_object_get(by_ref, ref);
    if (!msg)
        return 0;
    json_t *st = json_object_get(m, "status");
    json_t *at = json_object_get(m, "at");
    json_object_set(msg, "status", st);
    json_object_set(msg, "status_at", at);
    json_t *pid = json_object_get(m, "provider_id"), *why = json_object_get(m, "reason");
    if (pid)
        json_object_set(msg, "provider_id", pid);
    if (why)
        json_object_set(msg, "reason", why);
    json_t *list = json_object_get(msg, "statuses");
    if (!list) {
        list = json_array();
        json_object_set_new(msg, "statuses", list);
    }
    json_t *one = json_pack("{s:O?,s:O?}", "status", st, "at", at);
    if (pid)
        json_object_set(one, "provider_id", pid);
    if (why)
        json_object_set(one, "reason", why);
    json_array_append_new(list, one);
    return 1;
}

static void conv_log_got(redisReply *r, void *arg)
{
    areq *a = arg;
    json_t *msgs = json_array();
    json_t *by_ref = json_object(); /* message id -> its out message (borrowed) */
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        json_t *m = hash_to_json(e->element[1]);
        if (fold_status(by_ref, m)) {
            json_decref(m);
            continue;
        }
        json_object_set_new(m, "entry", json_string(e->element[0]->str));
        char buf[32];
        const char *ref = ref_of(m, buf, sizeof(buf));
        const char *dir = json_string_value(json_object_get(m, "dir"));
        if (ref && dir && !strcmp(dir, "out"))
            json_object_set(by_ref, ref, m);
        json_array_append_new(msgs, m);
    }
    json_decref(by_ref);
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
        struct evhttp_request *req = http_areq_take(a);
        if (req)
            http_reply_json(req, 200, json_incref(a->acc));
        http_areq_free(a);
    }
}

static void conv_list_ids(redisReply *r, void *arg)
{
    areq *a = arg;
    omni *o = a->h->o;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        struct evhttp_request *req = http_areq_take(a);
        if (req)
            http_reply_error(req, 503, "redis_unavailable", NULL);
        http_areq_free(a);
        return;
    }
    a->acc = json_pack("{s:[]}", "conversations");
    a->waiting = 1;
    for (size_t i = 0; i < r->elements; i++) {
        char key[KEY_MAX];
        omni_key(o, key, sizeof(key), KEY_CONV, r->element[i]->str);
        if (store_cmd(o->st, conv_list_item, a, "HGETALL", key, NULL) == 0)
            a->waiting++;
    }
    conv_list_item(NULL, a); /* the extra count taken above */
}

static void conv_closed(omni *o, const char *res, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!res && !store_is_ready(o->st))
            http_reply_error(req, 503, "redis_unavailable", NULL);
        else if (!res)
            http_reply_error(req, 404, "not_found", "no such conversation");
        else
            http_reply_json(req, 200, json_pack("{s:s,s:s}", "id", a->id, "state", "closed"));
    }
    http_areq_free(a);
}

/* ---- POST /v1/conversations/{id}/messages: an agent's message into an
 * open conversation. The body is {"text", "template", "media", "id"} (the
 * id: the caller's idempotency key; one is made when absent); the channel
 * and the contact come from the conversation. It becomes a message job
 * with conversation_id, validated like any job, then one inbound.lua call
 * checks the conversation is still open, logs the message queued and adds
 * the job to the jobs stream. */

static void agent_queued(omni *o, const char *res, const char *detail, void *arg)
{
    (void)detail;
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    const char *mid = json_string_value(json_object_get(a->acc, "mid"));
    if (req) {
        if (!res)
            http_reply_error(req, 503, "redis_unavailable", "the message could not be queued");
        else if (!strcmp(res, "ok") || !strcmp(res, "exists"))
            http_reply_json(req, !strcmp(res, "ok") ? 202 : 200,
                            json_pack("{s:s,s:s,s:s}", "id", mid, "conversation_id", a->id,
                                      "status", !strcmp(res, "ok") ? "queued" : "exists"));
        else if (!strcmp(res, "missing"))
            http_reply_error(req, 404, "not_found", "no such conversation");
        else if (!strcmp(res, "closed"))
            http_reply_error(req, 409, "conversation_closed", "the conversation is closed");
        else if (!strcmp(res, "taken"))
            http_reply_error(req, 409, "id_taken",
                             "the id is another conversation's message or a campaign's");
        else
            http_reply_error(req, 503, "redis_unavailable", res);
    }
    (void)o;
    http_areq_free(a);
}

static void agent_conv_got(redisReply *r, void *arg)
{
    areq *a = arg;
    omni *o = a->h->o;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return agent_queued(o, NULL, NULL, a);
    if (r->element[0]->type != REDIS_REPLY_STRING)
        return agent_queued(o, "missing", NULL, a);
    if (strcmp(r->element[0]->str, "open") != 0)
        return agent_queued(o, "closed", NULL, a);
    if (!a->req) /* the client hung up: nothing queued for it */
        return agent_queued(o, "gone", NULL, a);
    const char *ch = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "";
    const char *to = r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "";
    const char *mid = json_string_value(json_object_get(a->acc, "mid"));
    json_t *msg = json_object_get(a->acc, "message");
    json_t *jj = json_pack("{s:s,s:s,s:s,s:s,s:O,s:s}", "type", "message", "id", mid, "channel", ch,
                           "to", to, "message", msg, "conversation_id", a->id);
    char *raw = jj ? json_dumps(jj, JSON_COMPACT) : NULL;
    json_decref(jj);
    if (!raw)
        return agent_queued(o, NULL, NULL, a);
    job_rules rules = {.max_bytes = (size_t)o->cfg->max_job_bytes,
                       .max_inline_recipients = 1,
                       .channel_kind = channel_kind,
                       .channel_window_s = channel_window_s,
                       .ctx = o};
    job j;
    char reason[JOB_REASON_MAX];
    if (job_parse(raw, strlen(raw), &rules, &j, reason, sizeof(reason)) < 0) {
        struct evhttp_request *req = http_areq_take(a);
        if (req)
            http_reply_error(req, 400, "invalid_job", reason);
        http_areq_free(a);
        free(raw);
        return;
    }
    job_free(&j);
    /* what the log shows: the text, else the media's caption, else the
     * template's name */
    const char *text = json_string_value(json_object_get(msg, "text"));
    if (!text)
        text = json_string_value(json_object_get(json_object_get(msg, "media"), "caption"));
    if (!text)
        text = json_string_value(json_object_get(json_object_get(msg, "template"), "name"));
    conv_agent(o, a->id, mid, text, raw, agent_queued, a);
    free(raw);
}

/* the body of a conversation message into a->acc ({"mid", "message"}), or
 * the reason it is refused */
static const char *agent_body(areq *a, const char *body, size_t len, char *why, size_t why_len)
{
    json_error_t je;
    json_t *b = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!b) {
        snprintf(why, why_len, "not JSON: %s at line %d column %d", je.text, je.line, je.column);
        return why;
    }
    const char *k;
    json_t *v;
    json_t *msg = json_object();
    const char *err = NULL;
    if (!json_is_object(b))
        err = "the body must be a JSON object";
    json_object_foreach(b, k, v)
    {
        if (err)
            break;
        if (!strcmp(k, "text") || !strcmp(k, "template") || !strcmp(k, "media"))
            json_object_set(msg, k, v);
        else if (strcmp(k, "id")) {
            snprintf(why, why_len, "unknown key: %.64s (give text, template, media, id)", k);
            err = why;
        }
    }
    json_t *id = json_object_get(b, "id");
    if (!err && id &&
        (!json_is_string(id) || !job_valid_id(json_string_value(id), json_string_length(id)) ||
         strchr(json_string_value(id), ':')))
        err = "id: must be a string of A-Z a-z 0-9 . _ - (1 to 128 characters)";
    if (!err && !json_object_size(msg))
        err = "message: needs text, template or media";
    if (!err) {
        char mid[JOB_ID_MAX + 1];
        if (id) {
            snprintf(mid, sizeof(mid), "%s", json_string_value(id));
        } else {
            /* conversation ids are unique: the conversation, the time and a
             * count make the message's */
            static unsigned seq;
            snprintf(mid, sizeof(mid), "%.64s-m%lld-%u-%u", a->id, omni_now_ms(),
                     (unsigned)getpid() & 0xffff, ++seq);
        }
        a->acc = json_pack("{s:s,s:O}", "mid", mid, "message", msg);
    }
    json_decref(msg);
    json_decref(b);
    return err;
}

static void conv_message_post(http_server *h, struct evhttp_request *req, areq *a)
{
    omni *o = h->o;
    size_t len;
    char *body = http_body_of(req, &len);
    char why[JOB_REASON_MAX];
    const char *err = NULL;
    if (len > (size_t)o->cfg->max_job_bytes)
        err = "the body is too large";
    else
        err = agent_body(a, body ? body : "", body ? len : 0, why, sizeof(why));
    free(body);
    if (err) {
        http_areq_take(a);
        http_areq_free(a);
        return http_reply_error(req, 400, "invalid_job", err);
    }
    if (!store_is_ready(o->st)) {
        http_areq_take(a);
        http_areq_free(a);
        return http_reply_error(req, 503, "redis_unavailable", NULL);
    }
    char key[KEY_MAX];
    omni_key(o, key, sizeof(key), KEY_CONV, a->id);
    if (store_cmd(o->st, agent_conv_got, a, "HMGET", key, "state", "channel", "contact", NULL) < 0)
        agent_conv_got(NULL, a);
}

/* POST /v1/conversations/{id}/conversion: the script's record is the answer,
 * with status counted (on the conversation's campaign), stored (the
 * conversation has no campaign: nothing counted) or exists (the same id was
 * reported before: nothing counted again, the first record answered) */
static void conversion_done(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    const char *what = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->str
                           ? r->element[0]->str
                           : NULL;
    if (req) {
        json_t *rec = NULL;
        if (what && r->elements >= 2 && r->element[1]->str)
            rec = json_loadb(r->element[1]->str, r->element[1]->len, 0, NULL);
        if (!what)
            http_reply_error(req, 503, "redis_unavailable", "the conversion could not be stored");
        else if (!strcmp(what, "missing"))
            http_reply_error(req, 404, "not_found", "no such conversation");
        else if (!json_is_object(rec))
            http_reply_error(req, 503, "redis_unavailable", "unexpected reply");
        else {
            const char *st = !strcmp(what, "exists")                         ? "exists"
                             : json_is_true(json_object_get(rec, "counted")) ? "counted"
                                                                             : "stored";
            json_object_set_new(rec, "status", json_string(st));
            if (!json_object_get(rec, "campaign"))
                json_object_set_new(rec, "campaign", json_null());
            http_reply_json(req, 200, json_incref(rec));
        }
        json_decref(rec);
    }
    http_areq_free(a);
}

static void conversion_post(http_server *h, struct evhttp_request *req, areq *a)
{
    omni *o = h->o;
    size_t len;
    char *body = http_body_of(req, &len);
    json_error_t je;
    json_t *root = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    int had_body = body != NULL;
    free(body);
    job_conversion cv;
    char reason[JOB_REASON_MAX];
    int bad = !root;
    if (!root)
        snprintf(reason, sizeof(reason), "not JSON: %s", had_body ? je.text : "empty body");
    else
        bad = job_conversion_check(root, 0, &cv, reason, sizeof(reason)) < 0;
    if (bad || !store_is_ready(o->st)) {
        http_areq_take(a);
        http_areq_free(a);
        json_decref(root);
        if (bad)
            return http_reply_error(req, 400, "invalid_conversion", reason);
        return http_reply_error(req, 503, "redis_unavailable", NULL);
    }
    if (campaign_conversion(o, a->id, &cv, "api", conversion_done, a) < 0)
        conversion_done(NULL, a);
    json_decref(root);
}

/* ---- the /v1 routes (http.c's table; the token is checked before) */

void api_broadcasts(http_server *h, struct evhttp_request *req, const char *path,
                    const struct evhttp_uri *u)
{
    (void)path;
    (void)u;
    submit(h, req, JOB_BROADCAST);
}

void api_messages(http_server *h, struct evhttp_request *req, const char *path,
                  const struct evhttp_uri *u)
{
    (void)path;
    (void)u;
    submit(h, req, JOB_MESSAGE);
}

/* /v1/campaigns/{id}, /v1/campaigns/{id}/uncertain, .../pause|resume|cancel */
/* POST /v1/campaigns/{id}/resend-uncertain: the operator's choice, as
 * `omnicast campaign resend-uncertain ID` (resend.lua): every uncertain
 * recipient goes back through the retry set. */
static void resent(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!r)
            http_reply_error(req, 503, "redis_unavailable", NULL);
        else if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "no such campaign"))
            http_reply_error(req, 404, "unknown_campaign", "no such campaign");
        else if (r->type != REDIS_REPLY_INTEGER)
            http_reply_error(req, 500, "internal", NULL);
        else
            http_reply_json(req, 200,
                            json_pack("{s:s,s:I}", "id", a->id, "queued", (json_int_t)r->integer));
    }
    http_areq_free(a);
}

static void campaign_resend(omni *o, struct evhttp_request *req, areq *a)
{
    char ck[KEY_MAX], mk[KEY_MAX], rz[KEY_MAX], now[24];
    if (!store_is_ready(o->st)) {
        http_areq_take(a);
        http_areq_free(a);
        return http_reply_error(req, 503, "redis_unavailable", NULL);
    }
    omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, a->id);
    omni_key(o, mk, sizeof(mk), KEY_MSG, a->id);
    omni_key(o, rz, sizeof(rz), KEY_RETRY, NULL);
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    const char *argv[] = {ck, mk, rz, now, a->id};
    if (store_eval(o->st, SCRIPT_RESEND, resent, a, 3, 5, argv, NULL) < 0)
        resent(NULL, a);
}

void api_campaign(http_server *h, struct evhttp_request *req, const char *path,
                  const struct evhttp_uri *u)
{
    omni *o = h->o;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const char *rest = path + 14;
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!job_valid_id(rest, n))
        return http_reply_error(req, 404, "not_found", "bad campaign id");
    areq *a = http_areq_new(h, req);
    snprintf(a->id, sizeof(a->id), "%.*s", (int)n, rest);
    if (!slash && m == EVHTTP_REQ_GET) {
        char key[KEY_MAX];
        omni_key(o, key, sizeof(key), KEY_CAMPAIGN, a->id);
        if (store_cmd(o->st, campaign_got, a, "HGETALL", key, NULL) < 0)
            campaign_got(NULL, a);
        return;
    }
    if (slash && !strcmp(slash, "/recipients")) {
        if (m == EVHTTP_REQ_GET)
            return campaign_recipients(h, req, a, u);
        http_areq_take(a);
        http_areq_free(a);
        return http_reply_error(req, 405, "method_not_allowed", NULL);
    }
    if (slash && !strcmp(slash, "/uncertain")) {
        if (m == EVHTTP_REQ_GET)
            return campaign_uncertain(h, req, a, u);
        http_areq_take(a);
        http_areq_free(a);
        return http_reply_error(req, 405, "method_not_allowed", NULL);
    }
    if (slash && m == EVHTTP_REQ_POST && !strcmp(slash, "/resend-uncertain"))
        return campaign_resend(o, req, a);
    if (slash && m == EVHTTP_REQ_POST &&
        (!strcmp(slash, "/pause") || !strcmp(slash, "/resume") || !strcmp(slash, "/cancel"))) {
        campaign_control(o, a->id, slash + 1, controlled, a);
        return;
    }
    http_areq_take(a);
    http_areq_free(a);
    http_reply_error(req, m == EVHTTP_REQ_GET || m == EVHTTP_REQ_POST ? 404 : 405, "not_found",
                     "no such route");
}

/* GET /v1/conversations?state=open|all&campaign=ID&limit=N */
void api_conversations(http_server *h, struct evhttp_request *req, const char *path,
                       const struct evhttp_uri *u)
{
    (void)path;
    omni *o = h->o;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *qs = evhttp_uri_get_query(u);
    if (qs && evhttp_parse_query_str(qs, &q) < 0)
        return http_reply_error(req, 400, "bad_query", NULL);
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
        return http_reply_error(req, 400, "bad_query", "bad campaign id");
    }
    if (state && strcmp(state, "open") && strcmp(state, "all")) {
        evhttp_clear_headers(&q);
        return http_reply_error(req, 400, "bad_query", "state must be open or all");
    }
    if (camp)
        omni_key(o, key, sizeof(key), KEY_CONV_CAMPAIGN, camp);
    else if (state && !strcmp(state, "open"))
        omni_key(o, key, sizeof(key), KEY_CONV_OPEN, NULL);
    else
        omni_key(o, key, sizeof(key), KEY_CONV_ALL, NULL);
    evhttp_clear_headers(&q);
    areq *a = http_areq_new(h, req);
    if (store_cmd(o->st, conv_list_ids, a, "ZREVRANGE", key, "0", stop, NULL) < 0)
        conv_list_ids(NULL, a);
}

/* GET /v1/conversations/{id}, POST /v1/conversations/{id}/close,
 * POST /v1/conversations/{id}/conversion */
void api_conversation(http_server *h, struct evhttp_request *req, const char *path,
                      const struct evhttp_uri *u)
{
    (void)u;
    omni *o = h->o;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const char *rest = path + 18;
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!job_valid_id(rest, n))
        return http_reply_error(req, 404, "not_found", "bad conversation id");
    areq *a = http_areq_new(h, req);
    snprintf(a->id, sizeof(a->id), "%.*s", (int)n, rest);
    if (!slash && m == EVHTTP_REQ_GET) {
        char key[KEY_MAX], log[KEY_MAX];
        omni_key(o, key, sizeof(key), KEY_CONV, a->id);
        omni_key(o, log, sizeof(log), KEY_CONV_LOG, a->id);
        if (!store_is_ready(o->st)) {
            http_areq_take(a);
            http_areq_free(a);
            return http_reply_error(req, 503, "redis_unavailable", NULL);
        }
        /* both go on one connection, so both callbacks will run */
        a->waiting = 2;
        store_cmd(o->st, conv_hash_got, a, "HGETALL", key, NULL);
        store_cmd(o->st, conv_log_got, a, "XRANGE", log, "-", "+", "COUNT", "1000", NULL);
        return;
    }
    if (slash && !strcmp(slash, "/messages") && m == EVHTTP_REQ_POST)
        return conv_message_post(h, req, a);
    if (slash && !strcmp(slash, "/close") && m == EVHTTP_REQ_POST) {
        if (!store_is_ready(o->st)) { /* as campaign control: not a 404 */
            http_areq_take(a);
            http_areq_free(a);
            return http_reply_error(req, 503, "redis_unavailable", NULL);
        }
        conv_close(o, a->id, conv_closed, a);
        return;
    }
    if (slash && !strcmp(slash, "/conversion") && m == EVHTTP_REQ_POST && !strchr(a->id, ':')) {
        conversion_post(h, req, a);
        return;
    }
    http_areq_take(a);
    http_areq_free(a);
    http_reply_error(req, 404, "not_found", "no such route");
}

/* ---- POST /v1/connectors/{name}/resume: a halted connector instance sends
 * again. The request is written to connector:{name} (field resume, unix
 * ms), which every daemon's halted instance of that name reads each tick;
 * this daemon's resumes at once. */

static void resume_written(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!r || r->type == REDIS_REPLY_ERROR) {
            http_reply_error(req, 503, "redis_unavailable", "the resume could not be written");
        } else {
            conn_inst *ci = conn_find(a->h->o, a->id);
            int was = ci && ci->halted;
            if (ci)
                conn_resume(ci, "operator");
            http_reply_json(req, 202,
                            json_pack("{s:s,s:s,s:b}", "connector", a->id, "status",
                                      "resume_requested", "was_halted", was));
        }
    }
    http_areq_free(a);
}

void api_connector(http_server *h, struct evhttp_request *req, const char *path,
                   const struct evhttp_uri *u)
{
    (void)u;
    omni *o = h->o;
    const char *rest = path + 15; /* strlen("/v1/connectors/") */
    const char *slash = strchr(rest, '/');
    if (!slash || strcmp(slash, "/resume") != 0)
        return http_reply_error(req, 404, "not_found", "no such route");
    size_t n = (size_t)(slash - rest);
    conn_inst *ci = NULL;
    for (size_t i = 0; i < o->n_conns && !ci; i++)
        if (strlen(o->conns[i].conf->name) == n && !strncmp(o->conns[i].conf->name, rest, n))
            ci = &o->conns[i];
    if (!ci)
        return http_reply_error(req, 404, "not_found", "no such connector instance");
    if (!store_is_ready(o->st))
        return http_reply_error(req, 503, "redis_unavailable", NULL);
    char key[KEY_MAX], now[24];
    if (omni_key(o, key, sizeof(key), KEY_CONNECTOR, ci->conf->name) < 0)
        return http_reply_error(req, 500, "internal", NULL);
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    areq *a = http_areq_new(h, req);
    snprintf(a->id, sizeof(a->id), "%s", ci->conf->name);
    if (store_cmd(o->st, resume_written, a, "HSET", key, "resume", now, NULL) < 0)
        resume_written(NULL, a);
}
