/* The consistency sweep (see sweep.h and daemon/lua/sweep.lua). A round:
 * one ZRANGEBYSCORE of the active index for up to SWEEP_BATCH campaigns
 * idle longer than sweep_idle_ms, oldest first, then sweep.lua on each, on
 * the command connection. One call reads a bounded number of records; a
 * campaign with more ("more ...") is called again at once, so Redis serves
 * everyone else between two calls. The next round starts only when every
 * campaign of this one is finished with (or the connection was lost). */
#include "sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SWEEP_BATCH "16"
#define SWEEP_MAX_CALLS 100000 /* per campaign and round: 10^9 records */
#define GROUP "omnicast"       /* the consumer group on omni:chunks (queue.c) */

typedef struct sweep_call {
    omni *o;
    int calls;
    char id[];
} sweep_call;

static void swept(redisReply *r, void *arg);

/* sweep.lua on c's campaign; 0, or -1 (c was not sent and is not freed) */
static int send_call(sweep_call *c)
{
    omni *o = c->o;
    char ck[KEY_MAX], mk[KEY_MAX], ak[KEY_MAX], now[24], grace[24];
    if (omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, c->id) < 0 ||
        omni_key(o, mk, sizeof(mk), KEY_MSG, c->id) < 0 ||
        omni_key(o, ak, sizeof(ak), KEY_ACTIVE, NULL) < 0)
        return -1;
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    /* a lease ends lease_ms after its claim: one more lease of slack for
     * clocks that disagree between instances */
    snprintf(grace, sizeof(grace), "%d", o->cfg->lease_ms);
    const char *argv[] = {ck,  mk,    o->k_retry, o->k_sched, o->k_chunks, ak, o->cfg->prefix,
                          now, c->id, GROUP,      grace};
    if (store_eval(o->st, SCRIPT_SWEEP, swept, c, 6, 11, argv, NULL) < 0)
        return -1;
    c->calls++;
    return 0;
}

static void swept(redisReply *r, void *arg)
{
    sweep_call *c = arg;
    omni *o = c->o;
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) {
        long requeued = 0, uncertain = 0, retries = 0;
        if (strncmp(r->str, "more ", 5) == 0) {
            /* the scan goes on where it stopped */
            if (!o->draining && c->calls < SWEEP_MAX_CALLS && send_call(c) == 0)
                return;
        } else if (sscanf(r->str, "swept requeued=%ld uncertain=%ld retries=%ld", &requeued,
                          &uncertain, &retries) == 3) {
            long n = requeued + uncertain + retries;
            int done = strstr(r->str, " done") != NULL;
            o->stats.sweep_repairs += (uint64_t)(n > 0 ? n : 0);
            if (n > 0 || done)
                log_info("sweep: campaign %s: %ld recipients chunked again (never claimed), "
                         "%ld declared uncertain (owner lost), %ld queued to retry%s (%d call%s)",
                         c->id, requeued, uncertain, retries, done ? "; campaign done" : "",
                         c->calls, c->calls == 1 ? "" : "s");
            else
                log_debug("sweep: campaign %s: nothing to repair (%d calls)", c->id, c->calls);
        } else {
            log_debug("sweep: campaign %s: %s", c->id, r->str);
        }
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        log_warn("sweep: campaign %s: %s", c->id, r->str);
    }
    free(c);
    if (o->sweeping > 0)
        o->sweeping--;
}

static void listed(redisReply *r, void *arg)
{
    omni *o = arg;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("sweep: ZRANGEBYSCORE: %s", r->str);
    if (r && r->type == REDIS_REPLY_ARRAY && !o->draining) {
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_STRING || e->len == 0 || memchr(e->str, '\0', e->len))
                continue;
            sweep_call *c = malloc(sizeof(*c) + e->len + 1);
            if (!c)
                break;
            c->o = o;
            c->calls = 0;
            memcpy(c->id, e->str, e->len + 1);
            if (send_call(c) < 0) {
                free(c);
                continue;
            }
            o->sweeping++;
        }
    }
    if (o->sweeping > 0)
        o->sweeping--; /* the listing itself */
}

/* ---- the campaign index's one-time backfill: campaigns created before
 * create.lua wrote omni:campaigns are added to it (ZADD NX, created_at),
 * one SCAN step of campaign:* (COUNT 1000) at a time, each campaign read
 * with one HMGET; once the scan is through, campaigns:indexed is set and
 * the list reads the index alone (until then it scans, api.c). Message
 * jobs are left out as create.lua leaves them out. */

static void index_step(omni *o);

static void index_finish(omni *o)
{
    char mk[KEY_MAX];
    if (omni_key(o, mk, sizeof(mk), KEY_CAMPAIGNS_INDEXED, NULL) == 0 &&
        store_cmd(o->st, NULL, NULL, "SET", mk, "1", NULL) == 0) {
        o->indexed = 1;
        log_info("campaign index: campaigns created before it were added");
    }
    o->indexing = 0;
}

static void index_item(redisReply *r, void *arg)
{
    omni *o = arg;
    o->index_pending--;
    /* created_at, type, id */
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[2]->type == REDIS_REPLY_STRING &&
        !(r->element[1]->type == REDIS_REPLY_STRING && !strcmp(r->element[1]->str, "message"))) {
        char ik[KEY_MAX];
        if (omni_key(o, ik, sizeof(ik), KEY_CAMPAIGNS, NULL) == 0)
            store_cmd(o->st, NULL, NULL, "ZADD", ik, "NX", r->element[0]->str, r->element[2]->str,
                      NULL);
    }
    if (!r)
        o->indexing = 0; /* the connection went: again from the start later */
    else if (o->index_pending == 0 && o->indexing)
        o->index_last ? index_finish(o) : index_step(o);
}

static void index_scanned(redisReply *r, void *arg)
{
    omni *o = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        o->indexing = 0;
        return;
    }
    snprintf(o->index_cursor, sizeof(o->index_cursor), "%s", r->element[0]->str);
    o->index_last = !strcmp(o->index_cursor, "0");
    char pre[KEY_MAX];
    omni_key(o, pre, sizeof(pre), KEY_CAMPAIGN, "");
    size_t plen = strlen(pre);
    redisReply *keys = r->element[1];
    o->index_pending = 1; /* held while the step's HMGETs go */
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len <= plen || strchr(k->str + plen, ':'))
            continue; /* campaign:ID:rcpt and such */
        o->index_pending++;
        if (store_cmd(o->st, index_item, o, "HMGET", k->str, "created_at", "type", "id", NULL) < 0)
            o->index_pending--;
    }
    o->index_pending--;
    if (o->index_pending == 0 && o->indexing)
        o->index_last ? index_finish(o) : index_step(o);
}

static void index_step(omni *o)
{
    if (o->draining) {
        o->indexing = 0;
        return;
    }
    char pat[KEY_MAX];
    omni_key(o, pat, sizeof(pat), KEY_CAMPAIGN, "*");
    if (store_cmd(o->st, index_scanned, o, "SCAN", o->index_cursor, "MATCH", pat, "COUNT", "1000",
                  NULL) < 0)
        o->indexing = 0;
}

static void index_marked(redisReply *r, void *arg)
{
    omni *o = arg;
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        o->indexing = 0;
        return;
    }
    if (r->integer == 1) {
        o->indexed = 1;
        o->indexing = 0;
        return;
    }
    snprintf(o->index_cursor, sizeof(o->index_cursor), "0");
    o->index_last = 0;
    index_step(o);
}

static void index_tick(omni *o)
{
    if (o->indexed || o->indexing || o->draining || !store_is_ready(o->st))
        return;
    char mk[KEY_MAX];
    if (omni_key(o, mk, sizeof(mk), KEY_CAMPAIGNS_INDEXED, NULL) < 0)
        return;
    o->indexing = 1;
    if (store_cmd(o->st, index_marked, o, "EXISTS", mk, NULL) < 0)
        o->indexing = 0;
}

void sweep_tick(omni *o)
{
    const omni_config *cfg = o->cfg;
    index_tick(o);
    if (cfg->sweep_interval_ms <= 0 || o->draining || o->sweeping || !store_is_ready(o->st))
        return;
    long long now = omni_now_ms();
    if (!o->next_sweep_ms) {
        /* the first round one interval after start: our own pending chunks
         * are read again first */
        o->next_sweep_ms = now + cfg->sweep_interval_ms;
        return;
    }
    if (now < o->next_sweep_ms)
        return;
    o->next_sweep_ms = now + cfg->sweep_interval_ms;
    char ak[KEY_MAX], max[24];
    if (omni_key(o, ak, sizeof(ak), KEY_ACTIVE, NULL) < 0)
        return;
    snprintf(max, sizeof(max), "%lld", now - cfg->sweep_idle_ms);
    if (store_cmd(o->st, listed, o, "ZRANGEBYSCORE", ak, "-inf", max, "LIMIT", "0", SWEEP_BATCH,
                  NULL) == 0)
        o->sweeping = 1;
}

/* ---- deliveries not confirmed in time (fallback_after_s) */

#define WATCH_BATCH 200
#define WATCH_EVERY_MS 1000

static int watch_call(omni *o);

static void watched(redisReply *r, void *arg)
{
    omni *o = arg;
    o->watching = 0;
    if (r && r->type == REDIS_REPLY_ERROR) {
        log_warn("watch: %s", r->str);
        return;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER)
        return;
    long long taken = r->element[0]->integer, moved = r->element[1]->integer;
    if (moved > 0)
        log_info("watch: %lld recipient%s moved to the next channel (no delivery within "
                 "fallback_after_s)",
                 moved, moved == 1 ? "" : "s");
    /* a full batch: more may be due, the next call at once */
    if (taken >= WATCH_BATCH && !o->draining)
        watch_call(o);
}

static int watch_call(omni *o)
{
    char wk[KEY_MAX], now[24], max[24];
    if (omni_key(o, wk, sizeof(wk), KEY_WATCH, NULL) < 0)
        return -1;
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    snprintf(max, sizeof(max), "%d", WATCH_BATCH);
    const char *argv[] = {wk, o->cfg->prefix, now, max};
    if (store_eval(o->st, SCRIPT_WATCH, watched, o, 1, 4, argv, NULL) < 0)
        return -1;
    o->watching = 1;
    return 0;
}

void watch_tick(omni *o)
{
    if (o->draining || o->watching || !store_is_ready(o->st))
        return;
    long long now = omni_now_ms();
    if (now < o->next_watch_ms)
        return;
    o->next_watch_ms = now + WATCH_EVERY_MS;
    watch_call(o);
}
