/* The operations part of /v1 (the dashboard's operations page, and any
 * operator's script): this daemon's connector instances, the dead-letter
 * stream with replay, the suppression sets, and what the caller's token
 * may do. Everything but GET /v1/connectors and GET /v1/token is one or two
 * Redis commands on the command connection; lists are paged, never whole. */
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
#include "http_internal.h"
#include "scopes.h"

#define DEAD_PAGE_MAX 200
#define SUPPRESS_PAGE_MAX 1000
#define ADDRESS_BODY_MAX 4096

/* ---- GET /v1/connectors: this daemon's instances as it runs them */
void api_connectors(http_server *h, struct evhttp_request *req, const char *path,
                    const struct evhttp_uri *u)
{
    (void)path;
    (void)u;
    omni *o = h->o;
    json_t *list = json_array();
    for (size_t i = 0; i < o->n_conns; i++) {
        const conn_inst *c = &o->conns[i];
        uint64_t n = 0;
        for (int k = 0; k < CONN_LAT_BUCKETS; k++)
            n += c->lat_buckets[k];
        json_t *channels = json_array();
        for (size_t k = 0; k < o->n_chans; k++)
            if (o->chans[k].ci == c)
                json_array_append_new(channels, json_string(o->chans[k].name));
        json_t *e = json_pack(
            "{s:s,s:s,s:o,s:f,s:i,s:i,s:I,s:b,s:{s:I,s:I,s:I,s:I,s:I},s:o}", "name", c->conf->name,
            "type", c->conf->type, "channels", channels, "rate_per_s", c->conf->rate_per_s,
            "max_inflight", c->max_inflight, "inflight", c->inflight, "queued",
            (json_int_t)c->queued, "halted", c->halted, "counts", "sent", (json_int_t)c->n_sent,
            "failed", (json_int_t)c->n_failed, "retry", (json_int_t)c->n_retry, "uncertain",
            (json_int_t)c->n_uncertain, "throttled", (json_int_t)c->n_throttled, "latency_ms_avg",
            n ? json_real(c->lat_sum_s * 1000.0 / (double)n) : json_null());
        if (c->halted) {
            json_object_set_new(e, "halt_reason", json_string(c->halt_reason));
            json_object_set_new(e, "halted_at", json_integer(c->halted_at_ms));
        }
        json_array_append_new(list, e);
    }
    http_reply_json(req, 200, json_pack("{s:o}", "connectors", list));
}

/* ---- GET /v1/token: what the caller's token may do */
void api_token(http_server *h, struct evhttp_request *req, const char *path,
               const struct evhttp_uri *u)
{
    (void)path;
    (void)u;
    json_t *list = json_array();
    for (unsigned bit = 1; bit & SCOPE_ALL; bit <<= 1)
        if (h->req_scopes & bit)
            json_array_append_new(list, json_string(scopes_name(bit)));
    http_reply_json(req, 200, json_pack("{s:o}", "scopes", list));
}

/* ---- helpers */

static int parse_count(const char *s, int dflt, int max)
{
    if (!s)
        return dflt;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < 1 || v > max)
        return -1;
    return (int)v;
}

/* a stream entry id: MS-SEQ, both decimal */
static int entry_id_ok(const char *s, size_t n)
{
    size_t i = 0, a = 0, b = 0;
    while (i < n && isdigit((unsigned char)s[i]) && a < 20)
        i++, a++;
    if (!a || i >= n || s[i] != '-')
        return 0;
    i++;
    while (i < n && isdigit((unsigned char)s[i]) && b < 20)
        i++, b++;
    return b && i == n;
}

/* a stream entry [id, [field, value, ...]] as {field: value, ..., "id": id}
 * (a dead letter's own fields include "entry", the job's entry in
 * omni:jobs, so its stream id is "id") */
static json_t *entry_json(const redisReply *e)
{
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    json_t *o = json_object();
    const redisReply *f = e->element[1];
    for (size_t i = 0; f && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
        if (f->element[i]->str && f->element[i + 1]->str)
            json_object_set_new(
                o, f->element[i]->str,
                json_stringn_nocheck(f->element[i + 1]->str, f->element[i + 1]->len));
    json_object_set_new(o, "id", json_string(e->element[0]->str));
    return o;
}

static areq *need_redis(http_server *h, struct evhttp_request *req)
{
    if (!store_is_ready(h->o->st)) {
        http_reply_error(req, 503, "redis_unavailable", NULL);
        return NULL;
    }
    return http_areq_new(h, req);
}

/* ---- GET /v1/dead?count=N&before=ENTRY: the newest dead letters first;
 * before (exclusive) is the previous page's next */

static void dead_listed(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            http_reply_error(req, 503, "redis_unavailable", NULL);
        } else {
            /* one more than asked was read: it says whether a next page exists */
            size_t want = (size_t)a->waiting;
            json_t *list = json_array();
            const char *next = NULL;
            for (size_t i = 0; i < r->elements && i < want; i++) {
                json_t *o = entry_json(r->element[i]);
                if (o)
                    json_array_append_new(list, o);
            }
            /* next: the last one given, when there are more (before=next
             * reads on from the one after it) */
            if (r->elements > want && want > 0)
                next = json_string_value(json_object_get(json_array_get(list, want - 1), "id"));
            http_reply_json(req, 200,
                            json_pack("{s:o,s:o}", "dead", list, "next",
                                      next ? json_string(next) : json_null()));
        }
    }
    http_areq_free(a);
}

static void dead_list(http_server *h, struct evhttp_request *req, const struct evhttp_uri *u)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *qs = evhttp_uri_get_query(u);
    if (qs && evhttp_parse_query_str(qs, &q) < 0)
        return http_reply_error(req, 400, "bad_query", NULL);
    int count = parse_count(evhttp_find_header(&q, "count"), 50, DEAD_PAGE_MAX);
    const char *before = evhttp_find_header(&q, "before");
    char from[48] = "+";
    if (count < 0) {
        evhttp_clear_headers(&q);
        return http_reply_error(req, 400, "bad_query",
                                "count: must be a whole number from 1 to 200");
    }
    if (before) {
        if (!entry_id_ok(before, strlen(before))) {
            evhttp_clear_headers(&q);
            return http_reply_error(req, 400, "bad_query", "before: must be an entry id (MS-SEQ)");
        }
        snprintf(from, sizeof(from), "(%s", before); /* exclusive: after the last one seen */
    }
    evhttp_clear_headers(&q);
    areq *a = need_redis(h, req);
    if (!a)
        return;
    a->waiting = count;
    char n[16];
    snprintf(n, sizeof(n), "%d", count + 1);
    if (store_cmd(h->o->st, dead_listed, a, "XREVRANGE", h->o->k_dead, from, "-", "COUNT", n,
                  NULL) < 0)
        dead_listed(NULL, a);
}

/* ---- POST /v1/dead/{entry}/replay: its job back onto omni:jobs as it was;
 * the dead letter stays (as `omnicast dead replay`) */

static void replayed(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!r || r->type != REDIS_REPLY_STRING)
            http_reply_error(req, 503, "redis_unavailable", "the job could not be queued");
        else
            http_reply_json(req, 202, json_pack("{s:s,s:s}", "id", a->id, "replayed_as", r->str));
    }
    http_areq_free(a);
}

static void replay_got(redisReply *r, void *arg)
{
    areq *a = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        struct evhttp_request *req = http_areq_take(a);
        if (req)
            http_reply_error(req, 503, "redis_unavailable", NULL);
        http_areq_free(a);
        return;
    }
    json_t *o = r->elements == 1 ? entry_json(r->element[0]) : NULL;
    const char *job = json_string_value(json_object_get(o, "job"));
    if (!o || !job || !a->req) {
        struct evhttp_request *req = http_areq_take(a);
        if (req && !o)
            http_reply_error(req, 404, "not_found", "no such dead letter");
        else if (req)
            http_reply_error(req, 409, "no_job", "this dead letter holds no job to replay");
        json_decref(o);
        http_areq_free(a);
        return;
    }
    omni *ob = a->h->o;
    const char *argv[] = {"XADD", ob->k_jobs, "*", "job", job};
    size_t lens[] = {4, strlen(ob->k_jobs), 1, 3, json_string_length(json_object_get(o, "job"))};
    if (store_cmdv(ob->st, STORE_CMD, replayed, a, 5, argv, lens) < 0)
        replayed(NULL, a);
    json_decref(o);
}

void api_dead(http_server *h, struct evhttp_request *req, const char *path,
              const struct evhttp_uri *u)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!strcmp(path, "/v1/dead")) {
        if (m != EVHTTP_REQ_GET)
            return http_reply_error(req, 405, "method_not_allowed", NULL);
        return dead_list(h, req, u);
    }
    const char *rest = path + 9; /* after "/v1/dead/" */
    const char *slash = strchr(rest, '/');
    if (!slash || strcmp(slash, "/replay") || !entry_id_ok(rest, (size_t)(slash - rest)))
        return http_reply_error(req, 404, "not_found", "no such route");
    if (m != EVHTTP_REQ_POST)
        return http_reply_error(req, 405, "method_not_allowed", NULL);
    areq *a = need_redis(h, req);
    if (!a)
        return;
    snprintf(a->id, sizeof(a->id), "%.*s", (int)(slash - rest), rest);
    if (store_cmd(h->o->st, replay_got, a, "XRANGE", h->o->k_dead, a->id, a->id, NULL) < 0)
        replay_got(NULL, a);
}

/* ---- /v1/suppressions/{channel}: GET a page (SSCAN), POST .../add and
 * .../remove {"address": "..."} (normalized as sends are, so it matches) */

static void suppress_page(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            http_reply_error(req, 503, "redis_unavailable", NULL);
        } else {
            json_t *list = json_array();
            const redisReply *m = r->element[1];
            for (size_t i = 0; m->type == REDIS_REPLY_ARRAY && i < m->elements; i++)
                if (m->element[i]->str)
                    json_array_append_new(
                        list, json_stringn_nocheck(m->element[i]->str, m->element[i]->len));
            const char *cur = r->element[0]->str ? r->element[0]->str : "0";
            http_reply_json(req, 200,
                            json_pack("{s:s,s:o,s:o}", "channel", a->id, "addresses", list,
                                      "next_cursor",
                                      strcmp(cur, "0") ? json_string(cur) : json_null()));
        }
    }
    http_areq_free(a);
}

static void suppress_changed(redisReply *r, void *arg)
{
    areq *a = arg;
    struct evhttp_request *req = http_areq_take(a);
    if (req) {
        if (!r || r->type != REDIS_REPLY_INTEGER)
            http_reply_error(req, 503, "redis_unavailable", NULL);
        else
            http_reply_json(req, 200,
                            json_pack("{s:s,s:O,s:b,s:b}", "channel", a->id, "address",
                                      json_object_get(a->acc, "address"), "suppressed",
                                      json_is_true(json_object_get(a->acc, "add")), "changed",
                                      r->integer == 1));
    }
    http_areq_free(a);
}

void api_suppressions(http_server *h, struct evhttp_request *req, const char *path,
                      const struct evhttp_uri *u)
{
    omni *o = h->o;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const char *rest = path + 17; /* after "/v1/suppressions/" */
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    char name[64];
    if (!n || n >= sizeof(name))
        return http_reply_error(req, 404, "not_found", "no such channel");
    memcpy(name, rest, n);
    name[n] = '\0';
    chan *ch = omni_channel(o, name);
    if (!ch)
        return http_reply_error(req, 404, "not_found", "no such channel in [channels]");
    char key[KEY_MAX];
    if (omni_key(o, key, sizeof(key), KEY_SUPPRESS, name) < 0)
        return http_reply_error(req, 500, "internal", NULL);
    if (!slash) {
        if (m != EVHTTP_REQ_GET)
            return http_reply_error(req, 405, "method_not_allowed", NULL);
        struct evkeyvalq q;
        TAILQ_INIT(&q);
        const char *qs = evhttp_uri_get_query(u);
        if (qs && evhttp_parse_query_str(qs, &q) < 0)
            return http_reply_error(req, 400, "bad_query", NULL);
        int count = parse_count(evhttp_find_header(&q, "count"), 100, SUPPRESS_PAGE_MAX);
        const char *cur = evhttp_find_header(&q, "cursor");
        char cursor[24] = "0";
        int bad = count < 0;
        if (cur) {
            size_t cl = strlen(cur);
            bad |= !cl || cl >= sizeof(cursor) || strspn(cur, "0123456789") != cl;
            if (!bad)
                memcpy(cursor, cur, cl + 1);
        }
        evhttp_clear_headers(&q);
        if (bad)
            return http_reply_error(req, 400, "bad_query",
                                    "count: 1 to 1000; cursor: the next_cursor of a page");
        areq *a = need_redis(h, req);
        if (!a)
            return;
        snprintf(a->id, sizeof(a->id), "%s", name);
        char c[16];
        snprintf(c, sizeof(c), "%d", count);
        if (store_cmd(o->st, suppress_page, a, "SSCAN", key, cursor, "COUNT", c, NULL) < 0)
            suppress_page(NULL, a);
        return;
    }
    int add = !strcmp(slash, "/add");
    if (!add && strcmp(slash, "/remove"))
        return http_reply_error(req, 404, "not_found", "no such route");
    if (m != EVHTTP_REQ_POST)
        return http_reply_error(req, 405, "method_not_allowed", NULL);
    size_t len;
    char *body = http_body_of(req, &len);
    json_error_t jerr;
    json_t *j =
        len <= ADDRESS_BODY_MAX ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    free(body);
    const char *in = json_string_value(json_object_get(j, "address"));
    char addr[ADDR_MAX];
    const char *why = "missing";
    if (!in || addr_normalize(ch->addr_kind, in, addr, sizeof(addr), &why) < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "address: %s (a body {\"address\": \"...\"} of at most %d bytes)",
                 in ? why : "missing", ADDRESS_BODY_MAX);
        json_decref(j);
        return http_reply_error(req, 400, "invalid_request", msg);
    }
    json_decref(j);
    areq *a = need_redis(h, req);
    if (!a)
        return;
    snprintf(a->id, sizeof(a->id), "%s", name);
    a->acc = json_pack("{s:s,s:b}", "address", addr, "add", add);
    if (store_cmd(o->st, suppress_changed, a, add ? "SADD" : "SREM", key, addr, NULL) < 0)
        suppress_changed(NULL, a);
}
