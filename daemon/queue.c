/* The read loop over Redis streams: jobs (omni:jobs) and campaign chunks
 * (omni:chunks), one consumer group `omnicast`, one blocking XREADGROUP at
 * a time on the blocking connection. On start (and after a reconnect) our
 * own pending entries are read first; entries a dead instance held are
 * taken over with XAUTOCLAIM; entries we still work on are kept ours by
 * touching them (XCLAIM JUSTID) so a live, slow instance is not robbed. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h" /* JOB_ID_MAX */
#include "log.h"
#include "omni.h"
#include "scripts.h"
#include "stream.h"

#define GROUP STREAM_GROUP

struct queue {
    queue_handlers h;
    int reading;                /* a blocking XREADGROUP is outstanding */
    int read_jobs, read_chunks; /* which streams the outstanding read asked for */
    char jobs_from[40];         /* "0"/last id while reading our own pending jobs, then ">" */
    char chunks_from[40];       /* the same for chunks */
    long long next_reclaim_ms;
    uint64_t jobs_rejected;
};

static queue *Q(omni *o)
{
    return o->queue;
}

int queue_init(omni *o, const queue_handlers *h)
{
    queue *q = calloc(1, sizeof(*q));
    if (!q)
        return -1;
    q->h = *h;
    strcpy(q->jobs_from, "0");
    strcpy(q->chunks_from, "0");
    o->queue = q;
    return 0;
}

void queue_free(omni *o)
{
    free(o->queue);
    o->queue = NULL;
}

int queue_reading(omni *o)
{
    return Q(o)->reading;
}

uint64_t queue_jobs_rejected(omni *o)
{
    return o->queue ? Q(o)->jobs_rejected : 0;
}

static const char *field(redisReply *fields, const char *name, size_t *len)
{
    if (!fields || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0 &&
            v->type == REDIS_REPLY_STRING) {
            if (len)
                *len = v->len;
            return v->str;
        }
    }
    return NULL;
}

/* Handle the entries of one stream (from XREADGROUP or XAUTOCLAIM). */
static size_t handle_entries(omni *o, const char *stream, redisReply *entries, char *last,
                             size_t last_len)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return 0;
    int is_jobs = strcmp(stream, o->k_jobs) == 0;
    for (size_t i = 0; i < entries->elements; i++) {
        redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const char *id = e->element[0]->str;
        if (last)
            snprintf(last, last_len, "%s", id);
        redisReply *fields = e->element[1];
        if (fields->type != REDIS_REPLY_ARRAY) {
            /* deleted while pending: nothing left to do */
            stream_ack(o, stream, id);
            continue;
        }
        if (is_jobs) {
            size_t len = 0;
            const char *raw = field(fields, "job", &len);
            if (!raw) {
                Q(o)->jobs_rejected++;
                omni_dead(o, "jobs", "entry has no field 'job'", NULL, 0,
                          (const char *const[]){"entry", id, NULL});
                stream_ack(o, stream, id);
                continue;
            }
            Q(o)->h.on_job(o, id, raw, len);
        } else {
            const char *c = field(fields, "c", NULL), *s = field(fields, "s", NULL),
                       *en = field(fields, "e", NULL);
            Q(o)->h.on_chunk(o, id, c ? c : "", s ? atol(s) : -1, en ? atol(en) : -1);
        }
    }
    return entries->elements;
}

static void read_done(redisReply *r, void *arg)
{
    omni *o = arg;
    queue *q = Q(o);
    q->reading = 0;
    if (!r) {
        omni_kick(o);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        log_error("XREADGROUP: %s", r->str);
        if (strncmp(r->str, "NOGROUP", 7) == 0)
            queue_on_ready(o); /* stream or group deleted under us: recreate */
        return;
    }
    int got_jobs = 0, got_chunks = 0;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *s = r->element[i];
            if (s->type != REDIS_REPLY_ARRAY || s->elements != 2)
                continue;
            const char *name = s->element[0]->str;
            int jobs = strcmp(name, o->k_jobs) == 0;
            char *from = jobs ? q->jobs_from : q->chunks_from;
            int paging = strcmp(from, ">") != 0;
            size_t n = handle_entries(o, name, s->element[1], paging ? from : NULL, 40);
            if (jobs)
                got_jobs = n > 0 || !paging;
            else
                got_chunks = n > 0 || !paging;
        }
    }
    /* our pending list is read once, page by page, then only new entries */
    if (!got_jobs && q->read_jobs)
        strcpy(q->jobs_from, ">");
    if (!got_chunks && q->read_chunks)
        strcpy(q->chunks_from, ">");
    omni_kick(o);
}

void queue_maybe_read(omni *o)
{
    queue *q = Q(o);
    if (q->reading || o->draining || !stream_ready(o))
        return;
    int jobs = q->h.can_take_jobs(o), chunks = q->h.can_take_chunks(o);
    if (!jobs && !chunks)
        return;
    char count[16], block[16];
    snprintf(count, sizeof(count), "%d", o->cfg->read_count);
    snprintf(block, sizeof(block), "%d", o->cfg->block_ms);
    /* jobs are read whatever the chunks do: a busy connector never stops
     * intake */
    const char *argv[13] = {"XREADGROUP", "GROUP", GROUP, o->cfg->consumer, "COUNT",
                            count,        "BLOCK", block, "STREAMS"};
    int n = 9;
    if (jobs)
        argv[n++] = o->k_jobs;
    if (chunks)
        argv[n++] = o->k_chunks;
    if (jobs)
        argv[n++] = q->jobs_from;
    if (chunks)
        argv[n++] = q->chunks_from;
    q->read_jobs = jobs;
    q->read_chunks = chunks;
    if (stream_send(o, STORE_BLOCKING, read_done, o, n, argv, NULL) == 0)
        q->reading = 1;
}

static void group_created(redisReply *r, void *arg)
{
    omni *o = arg;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        log_error("XGROUP CREATE: %s", r->str);
    omni_kick(o);
}

void queue_on_ready(omni *o)
{
    /* "0": entries added before the group existed are work too */
    queue *q = Q(o);
    stream_create_group(o, o->k_jobs, group_created, o);
    stream_create_group(o, o->k_chunks, group_created, o);
    strcpy(q->jobs_from, "0");
    strcpy(q->chunks_from, "0");
    q->reading = 0;
    q->next_reclaim_ms = 0;
}

void queue_on_down(omni *o)
{
    Q(o)->reading = 0;
}

static void reclaimed(redisReply *r, void *arg)
{
    omni *o = arg;
    /* XAUTOCLAIM answers [next-cursor, entries, deleted-ids] */
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return;
    redisReply *entries = r->element[1];
    if (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0)
        return;
    /* which stream? the entries carry fields: chunks have "c", jobs "job" */
    redisReply *first = entries->element[0];
    const char *stream = o->k_chunks;
    if (first->type == REDIS_REPLY_ARRAY && first->elements == 2 &&
        field(first->element[1], "job", NULL))
        stream = o->k_jobs;
    size_t n = handle_entries(o, stream, entries, NULL, 0);
    if (n)
        log_info("reclaimed %zu entries of %s from a stalled consumer", n, stream);
}

/* ---- entries given up: delivered STREAM_MAX_DELIVERIES times, never acked
 * (a script error each time, a crash each time): dead-lettered, acked */

#define PENDING_PEEK 16 /* stalled entries looked at per stream and round */

typedef struct give_up {
    omni *o;
    int jobs;
    char id[40];
    char campaign[JOB_ID_MAX + 1];
    char s[24], e[24];
    long long deliveries;
    /* the XCLAIM's request: the entries and their delivery counts */
    int n;
    char ids[PENDING_PEEK][40];
    long long counts[PENDING_PEEK];
} give_up;

static void give_up_write(give_up *g, const char *error, const char *raw, size_t raw_len)
{
    omni *o = g->o;
    char reason[320];
    if (error && *error)
        snprintf(reason, sizeof(reason), "gave up after %lld deliveries: %s", g->deliveries, error);
    else
        snprintf(reason, sizeof(reason),
                 "gave up after %lld deliveries: not finished (no error seen by the instance "
                 "that gave up: a crash, or see the other instances' logs)",
                 g->deliveries);
    log_error("%s %s: %s", g->jobs ? "job" : "chunk", g->id, reason);
    if (g->jobs) {
        Q(o)->jobs_rejected++;
        omni_dead(o, "jobs", reason, raw, raw_len, (const char *const[]){"entry", g->id, NULL});
    } else {
        omni_dead(o, "chunks", reason, NULL, 0,
                  (const char *const[]){"campaign", g->campaign, "entry", g->id, "s", g->s, "e",
                                        g->e, NULL});
    }
    stream_ack(o, g->jobs ? o->k_jobs : o->k_chunks, g->id);
}

/* a chunk given up with no error seen here: what its campaign's spec reads
 * as says what is wrong, when something is (WRONGTYPE, missing) */
static void chunk_probed(redisReply *r, void *arg)
{
    give_up *g = arg;
    if (r) {
        const char *err = NULL;
        if (r->type == REDIS_REPLY_ERROR)
            err = r->str;
        else if (r->type == REDIS_REPLY_NIL)
            err = "campaign does not exist";
        give_up_write(g, err, NULL, 0);
    }
    free(g);
}

static void claimed_to_give_up(redisReply *r, void *arg)
{
    give_up *base = arg;
    omni *o = base->o;
    /* XCLAIM answers the entries it could take: [[id, [field, value...]]...];
     * one another instance took meanwhile is not among them */
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        give_up *g = calloc(1, sizeof(*g));
        if (!g)
            continue;
        *g = *base;
        snprintf(g->id, sizeof(g->id), "%s", e->element[0]->str);
        for (int k = 0; k < base->n; k++)
            if (strcmp(base->ids[k], g->id) == 0)
                g->deliveries = base->counts[k];
        const char *known = stream_entry_error(o, base->jobs ? o->k_jobs : o->k_chunks, g->id);
        if (base->jobs) {
            size_t len = 0;
            const char *raw = field(e->element[1], "job", &len);
            give_up_write(g, known, raw, len);
            free(g);
            continue;
        }
        const char *c = field(e->element[1], "c", NULL), *s = field(e->element[1], "s", NULL),
                   *en = field(e->element[1], "e", NULL);
        snprintf(g->campaign, sizeof(g->campaign), "%s", c ? c : "");
        snprintf(g->s, sizeof(g->s), "%s", s ? s : "");
        snprintf(g->e, sizeof(g->e), "%s", en ? en : "");
        char ck[KEY_MAX];
        if (known || !c || !*c || omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, c) < 0 ||
            stream_cmd(o, chunk_probed, g, "HGET", ck, "spec", NULL) < 0) {
            give_up_write(g, known, NULL, 0);
            free(g);
        }
    }
    free(base);
}

typedef struct pending_req {
    omni *o;
    int jobs;
} pending_req;

/* XPENDING ... IDLE answered: entries stalled for claim_idle_ms; those
 * delivered STREAM_MAX_DELIVERIES times are claimed to be given up, the
 * others taken over (XAUTOCLAIM) to be tried again. XCLAIM goes first on
 * the connection, so the XAUTOCLAIM does not hand the same entries out. */
static void pending_seen(redisReply *r, void *arg)
{
    pending_req *q = arg;
    omni *o = q->o;
    int jobs = q->jobs;
    free(q);
    if (!r || o->draining || !stream_ready(o))
        return;
    const char *stream = jobs ? o->k_jobs : o->k_chunks;
    char idle[16];
    snprintf(idle, sizeof(idle), "%d", o->cfg->claim_idle_ms);
    if (r->type == REDIS_REPLY_ARRAY) {
        store_args a = {0};
        store_args_adds(&a, "XCLAIM");
        store_args_adds(&a, stream);
        store_args_adds(&a, GROUP);
        store_args_adds(&a, o->cfg->consumer);
        store_args_adds(&a, idle);
        give_up *g = calloc(1, sizeof(*g));
        for (size_t i = 0; g && i < r->elements && g->n < PENDING_PEEK; i++) {
            redisReply *p = r->element[i];
            /* [id, consumer, idle ms, deliveries] */
            if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 ||
                p->element[0]->type != REDIS_REPLY_STRING ||
                p->element[3]->type != REDIS_REPLY_INTEGER ||
                p->element[3]->integer < STREAM_MAX_DELIVERIES)
                continue;
            store_args_adds(&a, p->element[0]->str);
            snprintf(g->ids[g->n], sizeof(g->ids[g->n]), "%s", p->element[0]->str);
            g->counts[g->n++] = p->element[3]->integer;
        }
        store_args_finish(&a);
        if (g && g->n) {
            g->o = o;
            g->jobs = jobs;
            if (stream_send(o, STORE_CMD, claimed_to_give_up, g, a.argc, a.argv, a.lens) < 0)
                free(g);
        } else {
            free(g);
        }
        store_args_free(&a);
    }
    if (jobs || Q(o)->h.can_take_chunks(o))
        stream_cmd(o, reclaimed, o, "XAUTOCLAIM", stream, GROUP, o->cfg->consumer, idle, "0-0",
                   "COUNT", "16", NULL);
}

static void look_at_stalled(omni *o, int jobs)
{
    pending_req *q = calloc(1, sizeof(*q));
    if (!q)
        return;
    q->o = o;
    q->jobs = jobs;
    char idle[16];
    snprintf(idle, sizeof(idle), "%d", o->cfg->claim_idle_ms);
    char count[8];
    snprintf(count, sizeof(count), "%d", PENDING_PEEK);
    if (stream_cmd(o, pending_seen, q, "XPENDING", jobs ? o->k_jobs : o->k_chunks, GROUP, "IDLE",
                   idle, "-", "+", count, NULL) < 0)
        free(q);
}

/* ---- consumers of dead instances: nothing pending, idle for
 * consumer_idle_remove_ms, removed from both groups (consumers.lua) */

static const char *consumers_src;

static void consumers_removed(redisReply *r, void *arg)
{
    const char *stream = arg;
    if (r && r->type == REDIS_REPLY_ERROR) {
        log_warn("removing idle consumers of %s: %s", stream, r->str);
        return;
    }
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            log_info("removed consumer %s from %s (nothing pending, idle)", r->element[i]->str,
                     stream);
}

static void remove_idle_consumers(omni *o)
{
    if (o->cfg->consumer_idle_remove_ms <= 0)
        return;
    if (!consumers_src)
        for (const script_src *src = scripts_src; src->name; src++)
            if (strcmp(src->name, "consumers") == 0)
                consumers_src = src->src;
    if (!consumers_src)
        return;
    char idle[16];
    snprintf(idle, sizeof(idle), "%d", o->cfg->consumer_idle_remove_ms);
    const char *streams[] = {o->k_jobs, o->k_chunks};
    for (int i = 0; i < 2; i++)
        stream_cmd(o, consumers_removed, (void *)streams[i], "EVAL", consumers_src, "1", streams[i],
                   GROUP, o->cfg->consumer, idle, NULL);
}

void queue_reclaim(omni *o)
{
    if (!stream_ready(o) || o->draining)
        return;
    /* keep the chunks we still work on ours: reset their idle time */
    store_args a = {0};
    store_args_adds(&a, "XCLAIM");
    store_args_adds(&a, o->k_chunks);
    store_args_adds(&a, GROUP);
    store_args_adds(&a, o->cfg->consumer);
    store_args_adds(&a, "0");
    int n = Q(o)->h.held_entries(o, &a);
    store_args_adds(&a, "JUSTID");
    store_args_finish(&a);
    if (n)
        stream_send(o, STORE_CMD, NULL, NULL, a.argc, a.argv, a.lens);
    store_args_free(&a);

    /* stalled entries: given up after STREAM_MAX_DELIVERIES, else taken over */
    look_at_stalled(o, 0);
    look_at_stalled(o, 1);
    remove_idle_consumers(o);
}

int queue_tick(omni *o, long long now_ms)
{
    queue *q = Q(o);
    if (now_ms < q->next_reclaim_ms)
        return 0;
    queue_reclaim(o);
    q->next_reclaim_ms = now_ms + o->cfg->reclaim_interval_ms;
    return 1;
}
