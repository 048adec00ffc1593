/* The read loop over Redis streams: jobs (omni:jobs) and campaign chunks
 * (omni:chunks), one consumer group `omnicast`, one blocking XREADGROUP at
 * a time on the blocking connection. On start (and after a reconnect) our
 * own pending entries are read first; entries a dead instance held are
 * taken over with XAUTOCLAIM; entries we still work on are kept ours by
 * touching them (XCLAIM JUSTID) so a live, slow instance is not robbed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "log.h"
#include "omni.h"

#define GROUP "omnicast"
#define MAX_JOBS_BUSY 64

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

void queue_ack(omni *o, const char *stream, const char *id)
{
    store_cmd(o->st, NULL, NULL, "XACK", stream, GROUP, id, NULL);
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
            queue_ack(o, stream, id);
            continue;
        }
        if (is_jobs) {
            size_t len = 0;
            const char *raw = field(fields, "job", &len);
            if (!raw) {
                o->stats.jobs_rejected++;
                omni_dead(o, "jobs", "entry has no field 'job'", NULL, 0,
                          (const char *const[]){"entry", id, NULL});
                queue_ack(o, stream, id);
                continue;
            }
            campaign_handle_job(o, id, raw, len);
        } else {
            const char *c = field(fields, "c", NULL), *s = field(fields, "s", NULL),
                       *en = field(fields, "e", NULL);
            dispatch_chunk(o, id, c ? c : "", s ? atol(s) : -1, en ? atol(en) : -1);
        }
    }
    return entries->elements;
}

static void read_done(redisReply *r, void *arg)
{
    omni *o = arg;
    o->reading = 0;
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
            char *from = jobs ? o->jobs_from : o->chunks_from;
            int paging = strcmp(from, ">") != 0;
            size_t n = handle_entries(o, name, s->element[1], paging ? from : NULL, 40);
            if (jobs)
                got_jobs = n > 0 || !paging;
            else
                got_chunks = n > 0 || !paging;
        }
    }
    /* our pending list is read once, page by page, then only new entries */
    if (!got_jobs && o->read_jobs)
        strcpy(o->jobs_from, ">");
    if (!got_chunks && o->read_chunks)
        strcpy(o->chunks_from, ">");
    omni_kick(o);
}

void queue_maybe_read(omni *o)
{
    int jobs = o->jobs_busy <= MAX_JOBS_BUSY, chunks = dispatch_room(o);
    if (o->reading || o->draining || !store_is_ready(o->st) || (!jobs && !chunks))
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
        argv[n++] = o->jobs_from;
    if (chunks)
        argv[n++] = o->chunks_from;
    o->read_jobs = jobs;
    o->read_chunks = chunks;
    if (store_cmdv(o->st, STORE_BLOCKING, read_done, o, n, argv, NULL) == 0)
        o->reading = 1;
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
    store_cmd(o->st, group_created, o, "XGROUP", "CREATE", o->k_jobs, GROUP, "0", "MKSTREAM", NULL);
    store_cmd(o->st, group_created, o, "XGROUP", "CREATE", o->k_chunks, GROUP, "0", "MKSTREAM",
              NULL);
    strcpy(o->jobs_from, "0");
    strcpy(o->chunks_from, "0");
    o->reading = 0;
    o->next_reclaim_ms = 0;
}

void queue_on_down(omni *o)
{
    o->reading = 0;
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

void queue_reclaim(omni *o)
{
    if (!store_is_ready(o->st) || o->draining)
        return;
    /* keep the chunks we still work on ours: reset their idle time */
    store_args a = {0};
    store_args_adds(&a, "XCLAIM");
    store_args_adds(&a, o->k_chunks);
    store_args_adds(&a, GROUP);
    store_args_adds(&a, o->cfg->consumer);
    store_args_adds(&a, "0");
    int n = dispatch_held_entries(o, &a);
    store_args_adds(&a, "JUSTID");
    store_args_finish(&a);
    if (n)
        store_cmdv(o->st, STORE_CMD, NULL, NULL, a.argc, a.argv, a.lens);
    store_args_free(&a);

    char idle[16];
    snprintf(idle, sizeof(idle), "%d", o->cfg->claim_idle_ms);
    if (dispatch_room(o))
        store_cmd(o->st, reclaimed, o, "XAUTOCLAIM", o->k_chunks, GROUP, o->cfg->consumer, idle,
                  "0-0", "COUNT", "16", NULL);
    store_cmd(o->st, reclaimed, o, "XAUTOCLAIM", o->k_jobs, GROUP, o->cfg->consumer, idle, "0-0",
              "COUNT", "16", NULL);
}
