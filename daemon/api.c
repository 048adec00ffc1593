/* The API under /v1 (bearer token checked by http.c before a route here
 * runs): jobs in (/v1/broadcasts, /v1/messages), campaigns and their
 * uncertain recipients, conversations. Every answer that needs Redis is
 * async (areq), and survives a client that hangs up. */
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "address.h"
#include "campaign.h"
#include "conv.h"
#include "counters.h"
#include "http_internal.h"
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
    areq *a = http_areq_new(h, req);
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

static void list_maybe_end(campaigns_page *l)
{
    if (l->waiting == 0 && l->scan_done)
        list_end(l);
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
        if (c && json_is_string(json_object_get(c, "id"))) {
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
        l->failed = 1;
        l->scan_done = 1;
        list_maybe_end(l);
    }
}

static void list_scanned(redisReply *r, void *arg)
{
    campaigns_page *l = arg;
    omni *o = l->a->h->o;
    l->waiting--;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        l->failed = 1;
        l->scan_done = 1;
        return list_maybe_end(l);
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
    list_step(l);
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
    if (slash && !strcmp(slash, "/uncertain")) {
        if (m == EVHTTP_REQ_GET)
            return campaign_uncertain(h, req, a, u);
        http_areq_take(a);
        http_areq_free(a);
        return http_reply_error(req, 405, "method_not_allowed", NULL);
    }
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
