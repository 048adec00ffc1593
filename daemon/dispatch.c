/* The send path and its recipient state machine: a chunk of a campaign's
 * recipients is loaded, claimed in one round trip (duplicate guard +
 * suppression, claim.lua), queued on its connector instance (whose pump,
 * conn.c, paces it by the token bucket and in-flight window and hands it
 * back through take_turn), rendered (render.c), built by the connector,
 * sent through the transport, classified, and its outcomes recorded in
 * batches (outcome.lua). A chunk is acked (stream.h) only once every
 * recipient in it has a recorded outcome or a retry entry. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"

#include "address.h"
#include "campaign.h"
#include "conn.h"
#include "digits.h"
#include "jfast.h"
#include "log.h"
#include "omni.h"
#include "quiet.h"
#include "render.h"
#include "seen.h"
#include "stream.h"
#include "template.h"
#include "verdict.h"

#define OUTCOME_BATCH 512
#define OUTCOME_CALLS 2 /* outcome calls in flight: Redis never waits for the daemon */
#define PMID_TTL_S "2592000"
#define PARK_MS 1000
#define MSGID_MAX (JOB_ID_MAX + 32)

enum {
    R_LOAD,
    R_CLAIM,
    R_CLAIMING,
    R_QUEUED,
    R_INFLIGHT,
    R_RECORD,
    R_RECORDING,
    R_RELEASE,   /* claimed and not sent: to give back (drain, pause, cancel) */
    R_RELEASING, /* ... in a release call */
    R_DONE
};

#define SEEN_CAMPAIGNS 256 /* campaigns whose per-recipient memory is kept */

#define SPARE_RS 4   /* recipient arrays kept for reuse */
#define SPARE_MIN 64 /* ... when they hold at least this many */

typedef struct chunk chunk;

struct rcpt {
    chunk *ck;
    json_t *r; /* the recipient object (owned) */
    long index;
    int ch; /* index into the campaign's channels */
    int state;
    int attempts;
    int from_retry;
    int relase;    /* its claim is being renewed: it waited past its lease */
    char rel_mode; /* R_RELEASE: 'P' put back, 'C' cancel, 'D' retry due now, 'H' put back
                      due at the halt's probe time (its connector halted), 'L' a retry
                      not claimed, due at the probe time */
    long long lease_until_us; /* monotonic: no transfer starts after this */
    long long wire_ms;        /* unix ms its request was handed to the transport */
    long long inbound_ms;     /* the contact's last inbound message (unix ms, 0 never), from
                                 a 'W' claim: a message job on a channel with a window */
    char addr[ADDR_MAX];
    /* the outcome waiting to be recorded */
    int out_kind; /* OC_SENT / OC_FAILED / OC_RETRY */
    int out_final;
    long long out_due;
    char *out_pid; /* pid_buf, or malloc'd when longer */
    char *out_rid; /* OC_SENT: the provider's other id for the address (an alias), or NULL */
    char pid_buf[96];
    char out_reason[64];
    int segs; /* SMS segments of the message sent (build's count, or the answer's), 0 unknown */
    long long t_submit_us;
    unsigned batch;      /* R_RECORDING: the outcome call it is part of */
    TAILQ_ENTRY(rcpt) q; /* connector queue, or the outcome list */
};

struct chunk {
    omni *o;
    char entry[40]; /* stream entry id; "" for a retry taken from omni:retry */
    char *cid;
    seen_campaign *mem;      /* what this process did with the campaign's recipients */
    long long claim_sent_us; /* when the outstanding claim call was made (monotonic) */
    campaign_spec *spec;
    long start, end;
    rcpt *rs;
    size_t n;
    size_t rs_cap; /* recipients rs has room for */
    size_t unresolved;
    int loading;      /* spec or recipients being fetched */
    size_t to_claim;  /* recipients in R_CLAIM */
    size_t scan;      /* no recipient before this index is in R_CLAIM */
    int claiming;     /* a claim call is outstanding */
    int hold;         /* someone else's live claim: leave the entry pending */
    int park;         /* campaign paused: park the chunk and ack */
    int drained;      /* draining: what it held unsent was let go */
    int hand_back;    /* draining: its entry is to be acked and added again (release.lua) */
    int handing;      /* ... in a release call */
    int handed;       /* ... done: not acked again */
    int waiting;      /* read, recipients not loaded: its campaign has enough loaded */
    int claim_errors; /* claim calls Redis answered with an error */
    int counted;      /* counted in its campaign's loaded chunks */
    TAILQ_ENTRY(chunk) link;
    TAILQ_ENTRY(chunk) wlink; /* on the waiting list */
};

TAILQ_HEAD(chunk_list, chunk);

typedef struct dispatch {
    struct chunk_list chunks;
    quiet_zones *zones;         /* quiet.c: zone offsets */
    struct rcpt_queue outcomes; /* R_RECORD, waiting for a flush */
    size_t n_outcomes;
    size_t n_recording;            /* of them, in an outcome call */
    int flushing;                  /* outcome calls in flight */
    unsigned batch_next;           /* the number of the next outcome call */
    unsigned batch_oldest;         /* the oldest call still in flight */
    size_t batch_n[OUTCOME_CALLS]; /* outcomes in each call in flight, by number % OUTCOME_CALLS */
    renderer *rd;                  /* render.c: the buffers messages are rendered into */
    int taking;                    /* a take.lua call is outstanding */
    long long pause_until_us;      /* Redis answered with errors: wait before writing again */
    store_args claim_args, out_args; /* reused: no large allocation per call */
    /* recipient arrays of finished chunks, for the next ones: a chunk's
     * array is ~200 KiB, and freeing one that size makes malloc
     * consolidate its free lists and give pages back to the kernel */
    rcpt *spare[SPARE_RS];
    size_t spare_cap[SPARE_RS];
    int n_spare;
    seen *seen;
    struct chunk_list waiting; /* read, waiting for their campaign's turn to load */
    size_t n_waiting, waiting_rcpts;
    struct rcpt_queue releases; /* R_RELEASE / R_RELEASING, in order */
    size_t n_release;
    int releasing; /* a release call is outstanding */
    store_args rel_args;
    unsigned poll_gen;
    /* since the drain began: sends that finished, claims given back */
    unsigned long long drain_finished, drain_released;
    size_t held;     /* recipients held in memory (back-pressure) */
    size_t max_held; /* ... at most, before another chunk is read */
    dispatch_counters counters;
} dispatch;

static dispatch *D(omni *o)
{
    return o->dispatch;
}

/* Redis refused a script (out of memory, read-only replica...): back off
 * half a second instead of retrying at loop speed. */
static void back_off(omni *o)
{
    D(o)->pause_until_us = omni_mono_us() + 500000;
}

static int paused(omni *o)
{
    return omni_mono_us() < D(o)->pause_until_us;
}

static void chunk_maybe_finish(chunk *c);
static void claim_chunk(chunk *c);
static int admit(rcpt *r);
static void retry_member_renew(const rcpt *r);
static void retry_member_drop(const rcpt *r);
static void let_go(rcpt *r, char mode);
static camp_queue *cq_of(const rcpt *r);
static void cq_push(rcpt *r);
static int take_turn(conn_inst *ci, camp_queue *cq, long long now);
static void chunk_load(chunk *c);
static void claim_give_up(chunk *c, const char *error);
static conn_inst *ci_of(const rcpt *r);
static size_t loaded_cap(const chunk *c);
static size_t spec_window(campaign_spec *sp, int ch, omni *o);

int dispatch_init(omni *o)
{
    dispatch *d = calloc(1, sizeof(*d));
    if (!d)
        return -1;
    TAILQ_INIT(&d->chunks);
    TAILQ_INIT(&d->outcomes);
    TAILQ_INIT(&d->releases);
    TAILQ_INIT(&d->waiting);
    d->seen = seen_new(SEEN_CAMPAIGNS);
    d->zones = quiet_zones_new();
    d->rd = renderer_new();
    if (!d->seen || !d->zones || !d->rd) {
        seen_free(d->seen);
        quiet_zones_free(d->zones);
        renderer_free(d->rd);
        free(d);
        return -1;
    }
    /* memory for four chunks, or eight windows of every connector */
    size_t window = 0;
    for (size_t i = 0; i < o->n_conns; i++)
        window += (size_t)o->conns[i].max_inflight;
    d->max_held = (size_t)o->cfg->chunk_size * 4;
    if (d->max_held < window * 8)
        d->max_held = window * 8;
    for (size_t i = 0; i < o->n_conns; i++)
        o->conns[i].take = take_turn;
    o->dispatch = d;
    return 0;
}

size_t dispatch_held(omni *o)
{
    return o->dispatch ? D(o)->held : 0;
}

const dispatch_counters *dispatch_counters_of(omni *o)
{
    static const dispatch_counters none;
    return o->dispatch ? &D(o)->counters : &none;
}

static void drop_pid(rcpt *r)
{
    if (r->out_pid != r->pid_buf)
        free(r->out_pid);
    r->out_pid = NULL;
    free(r->out_rid);
    r->out_rid = NULL;
}

/* The provider answered under another id for the recipient (WhatsApp's
 * wa_id for a Mexican or Brazilian number): kept with the outcome, and
 * recorded as an alias of the address (outcome.lua 'A') so replies, STOPs
 * and preferences from that id count for the address campaigns use. */
static void note_alias(rcpt *r, const conn_inst *ci, const oc_outcome *out)
{
    char id[sizeof(out->recipient_id)], norm[ADDR_MAX];
    memcpy(id, out->recipient_id, sizeof(id));
    id[sizeof(id) - 1] = '\0'; /* a plugin's bytes */
    int kind = r->ck->spec->chans[r->ch]->addr_kind;
    if (!id[0] || ci->impl->abi_minor < 4 ||
        addr_normalize(kind, id, norm, sizeof(norm), NULL) < 0 || !strcmp(norm, r->addr))
        return;
    r->out_rid = strdup(norm);
}

static void chunk_free(chunk *c)
{
    for (size_t i = 0; i < c->n; i++) {
        json_decref(c->rs[i].r);
        drop_pid(&c->rs[i]);
    }
    dispatch *d = D(c->o);
    if (c->rs_cap >= SPARE_MIN && d->n_spare < SPARE_RS) {
        d->spare[d->n_spare] = c->rs;
        d->spare_cap[d->n_spare++] = c->rs_cap;
    } else {
        free(c->rs);
    }
    if (c->waiting) {
        TAILQ_REMOVE(&d->waiting, c, wlink);
        d->n_waiting--;
        d->waiting_rcpts -= c->n;
    }
    if (c->counted)
        c->spec->loaded--;
    if (c->spec)
        campaign_spec_release(c->o, c->spec);
    seen_put(d->seen, c->mem);
    free(c->cid);
    free(c);
}

void dispatch_free(omni *o)
{
    dispatch *d = D(o);
    if (!d)
        return;
    chunk *c;
    while ((c = TAILQ_FIRST(&d->chunks))) {
        TAILQ_REMOVE(&d->chunks, c, link);
        chunk_free(c);
    }
    for (int k = 0; k < d->n_spare; k++)
        free(d->spare[k]);
    store_args_free(&d->claim_args);
    store_args_free(&d->out_args);
    store_args_free(&d->rel_args);
    seen_free(d->seen);
    quiet_zones_free(d->zones);
    renderer_free(d->rd);
    free(d);
    o->dispatch = NULL;
}

int dispatch_holds_entry(omni *o, const char *entry_id)
{
    chunk *c;
    TAILQ_FOREACH(c, &D(o)->chunks, link)
    if (strcmp(c->entry, entry_id) == 0)
        return 1;
    return 0;
}

int dispatch_held_entries(omni *o, store_args *a)
{
    int n = 0;
    chunk *c;
    TAILQ_FOREACH(c, &D(o)->chunks, link)
    if (c->entry[0]) {
        store_args_adds(a, c->entry);
        n++;
    }
    return n;
}

static void resolve(rcpt *r)
{
    if (r->state == R_DONE)
        return;
    r->state = R_DONE;
    r->ck->unresolved--;
}

static int is_last_channel(const rcpt *r)
{
    return (size_t)r->ch + 1 >= r->ck->spec->n_channels;
}

/* The customer service window of r's channel in ms (its connector
 * instance's session_window_s), 0 for none. */
static long long window_ms(const rcpt *r)
{
    const chan *c = r->ck->spec->chans[r->ch];
    return c && c->ci && c->ci->conf ? (long long)c->ci->conf->session_window_s * 1000 : 0;
}

/* Free-form content (text, media): what the window decides about. */
static int has_free_form(const campaign_spec *sp)
{
    return sp->text || sp->media_url;
}

/* Does r's send depend on the contact's last inbound time? Only a message
 * job with free-form content, on a channel with a window: its claim asks
 * for it ('W'); broadcasts and other channels pay nothing. */
static int needs_window(const rcpt *r)
{
    const campaign_spec *sp = r->ck->spec;
    return sp->type == JOB_MESSAGE && has_free_form(sp) && window_ms(r) > 0;
}

/* Our id of one send: campaign.index[.channel]. ':' (allowed in campaign
 * ids) becomes '~' so the id is a valid Message-ID and reply-address token
 * as it is. */
static void message_id(const rcpt *r, char *buf, size_t len)
{
    /* "{campaign}.{index}" and ".{channel}" past the first channel, ':'
     * written '~', cut at len as snprintf would (it was 2% of the daemon) */
    char tail[48], *t = tail + sizeof(tail);
    if (r->ch != 0) {
        t = digits_before(t, (unsigned long long)r->ch);
        *--t = '.';
    }
    t = digits_before(t, r->index < 0 ? 0ULL - (unsigned long long)r->index
                                      : (unsigned long long)r->index);
    if (r->index < 0)
        *--t = '-';
    *--t = '.';
    size_t n = 0;
    for (const char *p = r->ck->cid; *p && n + 1 < len; p++)
        buf[n++] = *p == ':' ? '~' : *p;
    for (; t < tail + sizeof(tail) && n + 1 < len; t++)
        buf[n++] = *t;
    if (len)
        buf[n] = 0;
}

/* Queue an outcome for the next batched write. */
static void record(rcpt *r, int kind, int final, const char *pid, const char *reason, long long due)
{
    omni *o = r->ck->o;
    dispatch *d = D(o);
    r->out_kind = kind;
    r->out_final = final;
    r->out_due = due;
    drop_pid(r);
    size_t pl = pid ? strlen(pid) : 0;
    r->out_pid = pl < sizeof(r->pid_buf) ? r->pid_buf : malloc(pl + 1);
    if (r->out_pid) {
        if (pl)
            memcpy(r->out_pid, pid, pl);
        r->out_pid[pl] = '\0';
    }
    size_t rl = reason ? strnlen(reason, sizeof(r->out_reason) - 1) : 0;
    memcpy(r->out_reason, reason ? reason : "", rl);
    r->out_reason[rl] = 0;
    r->state = R_RECORD;
    TAILQ_INSERT_TAIL(&d->outcomes, r, q);
    d->n_outcomes++;
    omni_kick(o);
}

/* When the campaign has quiet hours and it is inside them where the
 * recipient lives (var tz, an IANA zone; UTC without one): the time they
 * end, in unix ms; else 0. */
static long long quiet_until_for(rcpt *r)
{
    campaign_spec *sp = r->ck->spec;
    if (!sp->has_quiet)
        return 0;
    const char *tz = json_string_value(json_object_get(json_object_get(r->r, "vars"), "tz"));
    return quiet_until(D(r->ck->o)->zones, sp->quiet_start, sp->quiet_end, tz, omni_now_ms());
}

/* Point a recipient at its current channel: resolve its address there, or
 * record why it has none and move on. Returns 0 when it needs a claim. */
static int aim(rcpt *r)
{
    campaign_spec *sp = r->ck->spec;
    while ((size_t)r->ch < sp->n_channels) {
        chan *c = sp->chans[r->ch];
        char reason[JOB_REASON_MAX];
        int kind = c ? c->addr_kind : ADDR_ANY;
        if (!c) {
            snprintf(r->addr, sizeof(r->addr), "#%ld", r->index);
            record(r, OC_FAILED, is_last_channel(r), NULL, "unknown_channel", 0);
            return -1;
        }
        if (job_recipient_address(r->r, sp->channels[r->ch], kind, r->addr, sizeof(r->addr), reason,
                                  sizeof(reason)) == 0) {
            long long due = quiet_until_for(r);
            if (due > 0) {
                record(r, OUT_DEFER, 0, NULL, "quiet_hours", due);
                return -1;
            }
            r->state = R_CLAIM;
            r->ck->to_claim++;
            if ((size_t)(r - r->ck->rs) < r->ck->scan)
                r->ck->scan = (size_t)(r - r->ck->rs);
            return 0;
        }
        /* no usable address on this channel: a permanent failure there */
        snprintf(r->addr, sizeof(r->addr), "#%ld", r->index);
        record(r, OC_FAILED, is_last_channel(r), NULL, "invalid_address", 0);
        return -1;
    }
    resolve(r);
    return -1;
}

/* ---- loading a chunk */

/* A recipient as the campaign keeps it: the common shapes through the fast
 * path, anything else through jansson (jfast.h) */
static json_t *load_recipient(const char *s, size_t n)
{
    json_error_t je;
    json_t *j = jfast_loadb(s, n);
    return j ? j : json_loadb(s, n, 0, &je);
}

static void chunk_loaded(redisReply *rep, void *arg)
{
    chunk *c = arg;
    omni *o = c->o;
    c->loading = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        /* Redis unavailable: give the chunk up; it stays pending and is read
         * again from our pending list once Redis is back */
        dispatch *d = D(o);
        TAILQ_REMOVE(&d->chunks, c, link);
        D(o)->held -= c->n;
        chunk_free(c);
        omni_kick(o);
        return;
    }
    size_t n = rep->elements;
    for (size_t i = 0; i < c->n; i++) {
        rcpt *r = &c->rs[i];
        if (i >= n) {
            /* the list is shorter than the chunk says: nothing to send */
            snprintf(r->addr, sizeof(r->addr), "#%ld", r->index);
            record(r, OC_FAILED, 1, NULL, "recipient_missing", 0);
            continue;
        }
        redisReply *e = rep->element[i];
        r->r = e->type == REDIS_REPLY_STRING ? load_recipient(e->str, e->len) : NULL;
        char reason[JOB_REASON_MAX];
        if (!r->r || job_recipient_check(r->r, NULL, c->spec->channels, c->spec->n_channels, reason,
                                         sizeof(reason)) < 0) {
            snprintf(r->addr, sizeof(r->addr), "#%ld", r->index);
            record(r, OC_FAILED, 1, NULL, "invalid_recipient", 0);
            continue;
        }
        aim(r);
    }
    claim_chunk(c);
    chunk_maybe_finish(c);
}

static void chunk_got_spec(omni *o, campaign_spec *spec, int missing, void *arg)
{
    chunk *c = arg;
    if (!spec) {
        dispatch *d = D(o);
        if (missing) {
            log_error("chunk %s: campaign %s does not exist; dropped", c->entry, c->cid);
            omni_dead(o, "chunks", "campaign does not exist", NULL, 0,
                      (const char *const[]){"campaign", c->cid, "entry", c->entry, NULL});
            if (c->entry[0])
                stream_ack(o, o->k_chunks, c->entry);
        }
        TAILQ_REMOVE(&d->chunks, c, link);
        D(o)->held -= c->n;
        chunk_free(c);
        omni_kick(o);
        return;
    }
    c->spec = spec;
    if (c->entry[0] && spec->loaded >= loaded_cap(c)) {
        /* its campaign has enough loaded: read past it (other campaigns'
         * chunks behind it are loaded meanwhile), load it when one ends */
        dispatch *d = D(o);
        c->waiting = 1;
        TAILQ_INSERT_TAIL(&d->waiting, c, wlink);
        d->n_waiting++;
        d->waiting_rcpts += c->n;
        return;
    }
    chunk_load(c);
}

static void chunk_load(chunk *c)
{
    omni *o = c->o;
    if (c->entry[0]) {
        c->counted = 1;
        c->spec->loaded++;
    }
    char rk[KEY_MAX], s[24], e[24];
    omni_key(o, rk, sizeof(rk), KEY_RCPT, c->cid);
    snprintf(s, sizeof(s), "%ld", c->start);
    snprintf(e, sizeof(e), "%ld", c->end - 1);
    if (store_cmd(o->st, chunk_loaded, c, "LRANGE", rk, s, e, NULL) < 0)
        chunk_loaded(NULL, c);
}

/* Chunks a campaign keeps loaded: enough to fill its claim window twice
 * over on its first channel, one at least. Its other chunks read meanwhile
 * wait, unloaded, so one campaign (a slow one, a huge one) never fills the
 * memory every campaign shares. */
static size_t loaded_cap(const chunk *c)
{
    campaign_spec *sp = c->spec;
    size_t w = sp->chans[0] ? spec_window(sp, 0, c->o) : 1;
    size_t per = c->n ? c->n : 1;
    return (2 * w + per - 1) / per + 1;
}

/* Load waiting chunks whose campaign has room now, in the order read. */
static void wake_waiting(omni *o)
{
    dispatch *d = D(o);
    chunk *c, *next;
    for (c = TAILQ_FIRST(&d->waiting); c; c = next) {
        next = TAILQ_NEXT(c, wlink);
        if (c->spec->loaded >= loaded_cap(c) || !store_is_ready(o->st))
            continue;
        TAILQ_REMOVE(&d->waiting, c, wlink);
        c->waiting = 0;
        d->n_waiting--;
        d->waiting_rcpts -= c->n;
        chunk_load(c);
    }
}

#define WAITING_MAX 256 /* chunks read and not loaded, at most */

int dispatch_can_take(omni *o)
{
    dispatch *d = D(o);
    return D(o)->held - d->waiting_rcpts < D(o)->max_held && d->n_waiting < WAITING_MAX;
}

static chunk *chunk_new(omni *o, const char *entry_id, const char *campaign, long start, long end)
{
    chunk *c = calloc(1, sizeof(*c));
    c->o = o;
    snprintf(c->entry, sizeof(c->entry), "%s", entry_id ? entry_id : "");
    c->cid = strdup(campaign);
    c->mem = seen_get(D(o)->seen, campaign);
    c->start = start;
    c->end = end;
    c->n = (size_t)(end - start);
    dispatch *d = D(o);
    for (int k = 0; k < d->n_spare && !c->rs; k++)
        if (d->spare_cap[k] >= c->n && d->spare_cap[k] <= 2 * c->n) {
            c->rs = d->spare[k];
            c->rs_cap = d->spare_cap[k];
            d->n_spare--;
            d->spare[k] = d->spare[d->n_spare];
            d->spare_cap[k] = d->spare_cap[d->n_spare];
            memset(c->rs, 0, c->n * sizeof(*c->rs));
        }
    if (!c->rs) {
        c->rs = calloc(c->n, sizeof(*c->rs));
        c->rs_cap = c->n;
    }
    c->unresolved = c->n;
    for (size_t i = 0; i < c->n; i++) {
        c->rs[i].ck = c;
        c->rs[i].index = start + (long)i;
        c->rs[i].state = R_LOAD;
    }
    c->loading = 1;
    TAILQ_INSERT_TAIL(&D(o)->chunks, c, link);
    D(o)->held += c->n;
    return c;
}

void dispatch_chunk(omni *o, const char *entry_id, const char *campaign, long start, long end)
{
    if (dispatch_holds_entry(o, entry_id))
        return;
    if (start < 0 || end <= start || end - start > 100000 || !campaign[0]) {
        omni_dead(o, "chunks", "malformed chunk entry", NULL, 0,
                  (const char *const[]){"entry", entry_id, "campaign", campaign, NULL});
        stream_ack(o, o->k_chunks, entry_id);
        return;
    }
    chunk *c = chunk_new(o, entry_id, campaign, start, end);
    campaign_spec_get(o, campaign, chunk_got_spec, c);
}

/* ---- claiming */

static void claim_apply(chunk *c, redisReply *rep);

/* The claim's answer, held while WAIT asks the replicas for it */
typedef struct claim_wait {
    chunk *c;
    size_t len;
    char str[];
} claim_wait;

/* WAIT's answer: as many replicas as redis_wait_replicas have the claim
 * batch, so a failover cannot lose it and let another owner send the same
 * recipients; fewer (or no answer) and the batch is not sent: its
 * recipients go back to be claimed again (the claim answers own, or go on
 * a new primary that never saw it) once Redis answers again. */
static void claim_waited(redisReply *rep, void *arg)
{
    claim_wait *w = arg;
    chunk *c = w->c;
    omni *o = c->o;
    int want = o->cfg->redis_wait_replicas;
    dispatch_counters *dc = &D(o)->counters;
    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer >= want) {
        if (dc->wait_degraded)
            log_info("redis: WAIT is acknowledged by %lld replica(s) again", rep->integer);
        dc->wait_degraded = 0;
        redisReply copy = {.type = REDIS_REPLY_STRING, .str = w->str, .len = w->len};
        claim_apply(c, &copy);
        free(w); /* after: copy points into it */
        return;
    }
    free(w);
    if (rep) {
        dc->wait_short++;
        if (!dc->wait_degraded || rep->type == REDIS_REPLY_ERROR) {
            char what[240];
            if (rep->type == REDIS_REPLY_INTEGER)
                snprintf(what, sizeof(what), "%lld", rep->integer);
            else
                snprintf(what, sizeof(what), "%.200s",
                         rep->type == REDIS_REPLY_ERROR ? rep->str : "something else");
            log_warn("campaign %s: claim batch not sent: WAIT %d %d answered %s (retrying; "
                     "logged again when it recovers)",
                     c->cid, want, o->cfg->redis_wait_timeout_ms, what);
        }
        dc->wait_degraded = 1;
        back_off(o);
    }
    claim_apply(c, NULL);
}

static void claimed(redisReply *rep, void *arg)
{
    chunk *c = arg;
    omni *o = c->o;
    int want = o->cfg->redis_wait_replicas;
    if (want > 0 && rep && rep->type == REDIS_REPLY_STRING) {
        /* the claim stays outstanding (c->claiming) until WAIT answers */
        claim_wait *w = malloc(sizeof(*w) + rep->len + 1);
        if (w) {
            w->c = c;
            w->len = rep->len;
            memcpy(w->str, rep->str, rep->len);
            w->str[rep->len] = '\0';
            char n[16], ms[16];
            snprintf(n, sizeof(n), "%d", want);
            snprintf(ms, sizeof(ms), "%d", o->cfg->redis_wait_timeout_ms);
            const char *argv[] = {"WAIT", n, ms};
            if (store_cmdv(o->st, STORE_CLAIMS, claim_waited, w, 3, argv, NULL) == 0)
                return;
            free(w);
        }
        rep = NULL; /* not confirmed: not sent */
    }
    claim_apply(c, rep);
}

static void claim_apply(chunk *c, redisReply *rep)
{
    omni *o = c->o;
    c->claiming = 0;
    if (!rep || rep->type != REDIS_REPLY_STRING) {
        if (rep && rep->type == REDIS_REPLY_ERROR) {
            log_error("campaign %s: claim failed: %s", c->cid, rep->str);
            back_off(o);
            if (++c->claim_errors >= STREAM_MAX_DELIVERIES) {
                claim_give_up(c, rep->str);
                return;
            }
        }
        /* not claimed: put them back, claim again when Redis answers */
        for (size_t i = 0; i < c->n; i++)
            if (c->rs[i].state == R_CLAIMING) {
                c->rs[i].state = R_CLAIM;
                c->to_claim++;
                if (i < c->scan)
                    c->scan = i;
                c->spec->chans[c->rs[i].ch]->ci->claiming--;
                cq_of(&c->rs[i])->claiming--;
            }
        omni_kick(o);
        return;
    }
    for (size_t i = 0; i < c->n; i++)
        if (c->rs[i].state == R_CLAIMING) {
            c->spec->chans[c->rs[i].ch]->ci->claiming--;
            cq_of(&c->rs[i])->claiming--;
        }
    /* "state code code ...": one code per recipient claimed, in order */
    const char *p = rep->str, *end = rep->str + rep->len;
    const char *sp = memchr(p, ' ', rep->len);
    size_t slen = (size_t)((sp ? sp : end) - p);
#define IS(s, len, lit) ((len) == sizeof(lit) - 1 && memcmp(s, lit, len) == 0)
    int paused = IS(p, slen, "paused") || IS(p, slen, "scheduled");
    int missing = IS(p, slen, "missing");
    /* the state the claim saw, atomically with it: a cached spec may still
     * say stopped from before a resume */
    if (IS(p, slen, "running"))
        c->spec->stopped = 0;
    else if (IS(p, slen, "cancelled"))
        c->spec->stopped = 2;
    p += slen;
    long long lease_until = c->claim_sent_us + (long long)o->cfg->lease_ms * 1000;
    for (size_t i = 0; i < c->n; i++) {
        rcpt *r = &c->rs[i];
        if (r->state != R_CLAIMING)
            continue;
        if (paused || missing) {
            if (paused)
                c->park = 1;
            if (r->relase) {
                /* claimed and never sent: the claim ends with the lease */
                r->relase = 0;
                seen_set(c->mem, r->ch, r->index, SEEN_NONE);
            }
            resolve(r);
            continue;
        }
        while (p < end && *p == ' ')
            p++;
        const char *code = p;
        while (p < end && *p != ' ')
            p++;
        size_t clen = (size_t)(p - code);
        if (!clen) {
            code = "wait";
            clen = 4;
        }
        int go = clen >= 2 && memcmp(code, "go", 2) == 0;
        int own = clen >= 3 && memcmp(code, "own", 3) == 0;
        int resend = clen >= 2 && memcmp(code, "rs", 2) == 0;
        if (go || own || resend) {
            const char *num = memchr(code, ':', clen);
            r->attempts = num ? atoi(num + 1) : 1;
            /* a 'W' run: go:N:T, T the contact's last inbound message */
            const char *t = num ? memchr(num + 1, ':', clen - (size_t)(num + 1 - code)) : NULL;
            r->inbound_ms = t ? strtoll(t + 1, NULL, 10) : 0;
            r->lease_until_us = lease_until;
            if (r->relase) {
                /* its own claim renewed: the same copy goes on */
                r->relase = 0;
                if (r->from_retry)
                    retry_member_renew(r);
            } else if (resend) {
                /* the operator chose a second message: memory does not veto */
                seen_set(c->mem, r->ch, r->index, SEEN_ACTIVE);
            } else if (admit(r) < 0) {
                continue; /* another copy, or already done by this process */
            }
            if (o->draining || c->spec->stopped) {
                /* stopping: claimed, and given back at once */
                let_go(r, c->spec->stopped == 2 ? 'C' : 'P');
                continue;
            }
            r->state = R_QUEUED;
            cq_push(r);
            continue;
        }
        if (r->relase) {
            /* a claim we could not renew (declared uncertain, cancelled...):
             * this copy was never sent and stops here */
            r->relase = 0;
            seen_set(c->mem, r->ch, r->index, SEEN_NONE);
        }
        if (r->from_retry && !IS(code, clen, "wait"))
            retry_member_drop(r); /* its retry entry has nothing left to bring back */
        if (IS(code, clen, "next")) {
            r->ch++;
            if ((size_t)r->ch < c->spec->n_channels && aim(r) == 0)
                continue;
            resolve(r);
        } else if (IS(code, clen, "wait")) {
            c->hold = 1;
            resolve(r);
        } else {
            /* sup, done, dup, unc, cancelled: terminal, already counted */
            resolve(r);
        }
    }
#undef IS
    if (missing)
        log_error("campaign %s: gone while its chunk %s was in flight", c->cid, c->entry);
    omni_kick(o);
    chunk_maybe_finish(c);
}

/* A claim answered go or own for a recipient that is not being renewed:
 * what this process already did with it decides. 0: send it (it is marked
 * active); -1: handled here (resolved, or its known outcome recorded). */
static int admit(rcpt *r)
{
    chunk *c = r->ck;
    switch (seen_state(c->mem, r->ch, r->index)) {
    case SEEN_ACTIVE:
        /* another copy in this process (a retry and a redelivered chunk,
         * a retry taken again after its lease) holds it: that one records */
        log_debug("campaign %s: recipient %ld held by another copy here", c->cid, r->index);
        resolve(r);
        return -1;
    case SEEN_SENT:
        /* Redis forgot what this process sent: record it again */
        log_warn("campaign %s: recipient %ld was sent by this process already; recording it",
                 c->cid, r->index);
        record(r, OC_SENT, 1, "", "", 0);
        return -1;
    case SEEN_UNCERTAIN:
        log_warn("campaign %s: recipient %ld was on the wire here already; recording it uncertain",
                 c->cid, r->index);
        record(r, OUT_UNCERTAIN, 1, NULL, "ambiguous", 0);
        return -1;
    default:
        if (seen_set(c->mem, r->ch, r->index, SEEN_ACTIVE) < 0)
            log_warn("campaign %s: out of memory tracking recipient %ld", c->cid, r->index);
        return 0;
    }
}

static void retry_member(const rcpt *r, char *m, size_t len)
{
    snprintf(m, len, "%s|%ld|%d", r->ck->cid, r->index, r->ch);
}

/* A retry being sent keeps its entry in omni:retry leased as long as its
 * claim: the entry only brings the recipient back if this process dies. */
static void retry_member_renew(const rcpt *r)
{
    omni *o = r->ck->o;
    char m[MSGID_MAX + 16], due[24];
    retry_member(r, m, sizeof(m));
    snprintf(due, sizeof(due), "%lld", omni_now_ms() + o->cfg->lease_ms);
    store_cmd(o->st, NULL, NULL, "ZADD", o->k_retry, "XX", due, m, NULL);
}

static void retry_member_drop(const rcpt *r)
{
    omni *o = r->ck->o;
    char m[MSGID_MAX + 16];
    retry_member(r, m, sizeof(m));
    store_cmd(o->st, NULL, NULL, "ZREM", o->k_retry, m, NULL);
}

/* ---- the campaigns' queues on a connector
 *
 * A connector serves the campaigns waiting on it in turn, `weight` (the
 * job's priority, 1 by default) sends each, so a big campaign never holds
 * up a small one. What a campaign may claim ahead on a connector is its own
 * window: the connector's, or less when the campaign's rate cannot use that
 * many within a quarter of a lease; a campaign paced by its own rate
 * yields its turn instead of stopping the connector. All campaigns
 * together hold at most CONN_HELD_WINDOWS connector windows claimed. */
#define CONN_HELD_WINDOWS 4

static camp_queue *cq_of(const rcpt *r)
{
    return &r->ck->spec->cq[r->ch];
}

static conn_inst *ci_of(const rcpt *r)
{
    return r->ck->spec->chans[r->ch]->ci;
}

static size_t spec_window(campaign_spec *sp, int ch, omni *o)
{
    conn_inst *ci = sp->chans[ch]->ci;
    size_t w = ci->claim_window;
    if (sp->has_rate) {
        double x = sp->rate.rate * o->cfg->lease_ms / 4000.0;
        if (x < 1)
            x = 1;
        if ((size_t)x < w)
            w = (size_t)x;
    }
    return w ? w : 1;
}

static size_t cq_window(const rcpt *r)
{
    return spec_window(r->ck->spec, r->ch, r->ck->o);
}

/* May r's campaign claim more for r's connector? worth: only if a claim
 * now would be worth its round trip (a quarter of the window free, or
 * what the chunk still needs). */
static int claim_room(const rcpt *r, int worth)
{
    conn_inst *ci = ci_of(r);
    camp_queue *cq = cq_of(r);
    if (ci->halted) /* nothing, or the one probe when its time has come */
        return conn_probe_due(ci, omni_mono_us()) && !ci->queued && !ci->claiming && !ci->inflight;
    size_t win = cq_window(r), busy = cq->n + cq->claiming;
    if (busy >= win || ci->queued + ci->claiming >= ci->claim_window * CONN_HELD_WINDOWS)
        return 0;
    if (worth) {
        size_t want = win / 4 < r->ck->to_claim ? win / 4 : r->ck->to_claim;
        if (win - busy < want)
            return 0;
    }
    return 1;
}

static void cq_push(rcpt *r)
{
    conn_inst *ci = ci_of(r);
    camp_queue *cq = cq_of(r);
    TAILQ_INSERT_TAIL(&cq->q, r, q);
    cq->n++;
    ci->queued++;
    conn_activate(ci, cq);
}

static void cq_remove(rcpt *r)
{
    conn_inst *ci = ci_of(r);
    camp_queue *cq = cq_of(r);
    TAILQ_REMOVE(&cq->q, r, q);
    cq->n--;
    ci->queued--;
    if (!cq->n)
        conn_deactivate(ci, cq);
}

/* A chunk whose claims Redis keeps refusing with an error (a key of the
 * wrong type, a script that fails): dead-lettered with the error and
 * acked, never retried in a loop. Its recipients are left to the sweep. */
static void claim_give_up(chunk *c, const char *error)
{
    omni *o = c->o;
    char why[320];
    snprintf(why, sizeof(why), "claim failed %d times: %s", c->claim_errors, error);
    omni_dead(o, "chunks", why, NULL, 0,
              (const char *const[]){"campaign", c->cid, "entry", c->entry, NULL});
    for (size_t i = 0; i < c->n; i++) {
        rcpt *r = &c->rs[i];
        if (r->state == R_CLAIMING) {
            ci_of(r)->claiming--;
            cq_of(r)->claiming--;
            resolve(r);
        } else if (r->state == R_CLAIM) {
            c->to_claim--;
            resolve(r);
        }
    }
    omni_kick(o);
    chunk_maybe_finish(c);
}

static void claim_chunk(chunk *c)
{
    omni *o = c->o;
    if (c->claiming || c->loading || !store_is_ready(o->st) || paused(o))
        return;
    /* a claim is worth its round trip: wait until a quarter of the window
     * is free (or what the chunk still needs, if less) */
    for (size_t i = c->scan; i < c->n; i++) {
        rcpt *r = &c->rs[i];
        if (r->state != R_CLAIM)
            continue;
        c->scan = i;
        if (!claim_room(r, 1))
            return;
        break;
    }
    store_args *a = &D(o)->claim_args;
    store_args_reset(a);
    char ck[KEY_MAX], mk[KEY_MAX];
    omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, c->cid);
    omni_key(o, mk, sizeof(mk), KEY_MSG, c->cid);
    store_args_adds(a, ck);
    store_args_adds(a, mk);
    store_args_adds(a, o->cfg->prefix);
    store_args_addll(a, omni_now_ms());
    store_args_addll(a, o->cfg->lease_ms);
    store_args_adds(a, o->owner);
    store_args_adds(a, o->cfg->consumer);
    /* recipients go in runs that share a channel and flags: channel, flags,
     * count, then address and slot per recipient */
    size_t n = 0, left = c->to_claim, i = c->scan, first_left = c->n;
    int run_ch = -1, run_count = 0;
    long long run_n = 0;
    char run_flags[6] = {0};
    for (; i < c->n && left; i++) {
        rcpt *r = &c->rs[i];
        if (r->state != R_CLAIM)
            continue;
        left--;
        /* claim only what the connector can start soon: a claim that waits
         * in memory is one that ends 'uncertain' if this process dies */
        conn_inst *ci = c->spec->chans[r->ch]->ci;
        if (!claim_room(r, 0)) {
            if (first_left == c->n)
                first_left = i;
            continue;
        }
        ci->claiming++;
        cq_of(r)->claiming++;
        char flags[6] = {0}, *f = flags;
        if (is_last_channel(r))
            *f++ = 'F';
        if (r->from_retry)
            *f++ = 'R';
        if (r->relase)
            *f++ = 'X';
        if (needs_window(r))
            *f++ = 'W';
        /* optout_scope = contact: a recipient with a contact_id is checked
         * against the contact's opt-out too ('K': its contact_id follows its
         * slot); the default scope, and recipients without one, pay nothing */
        const char *contact_id =
            o->cfg->optout_contact ? json_string_value(json_object_get(r->r, "contact_id")) : NULL;
        if (contact_id)
            *f++ = 'K';
        if (r->ch != run_ch || strcmp(flags, run_flags) != 0) {
            if (run_ch >= 0)
                store_args_setll(a, run_count, run_n);
            run_ch = r->ch;
            memcpy(run_flags, flags, sizeof(run_flags));
            store_args_adds(a, c->spec->channels[r->ch]);
            store_args_adds(a, flags);
            run_count = a->argc;
            store_args_addll(a, 0);
            run_n = 0;
        }
        store_args_adds(a, r->addr);
        store_args_addll(a, r->index);
        if (contact_id)
            store_args_adds(a, contact_id);
        run_n++;
        r->state = R_CLAIMING;
        c->to_claim--;
        n++;
    }
    c->scan = first_left < c->n ? first_left : i;
    if (n) {
        store_args_setll(a, run_count, run_n);
        store_args_finish(a);
        c->claiming = 1;
        c->claim_sent_us = omni_mono_us();
        if (store_eval(o->st, SCRIPT_CLAIM, claimed, c, 2, a->argc, a->argv, a->lens) < 0)
            claimed(NULL, c);
    }
}

/* ---- rendering and sending */

static void classify_done(void *arg, const oc_response *resp, long long latency_us);

static void finish_send(rcpt *r, conn_inst *ci, const oc_outcome *out);

static void send_one(conn_inst *ci, rcpt *r)
{
    omni *o = ci->o;
    dispatch *d = D(o);
    campaign_spec *sp = r->ck->spec;
    char missing[64], mid[MSGID_MAX];
    oc_outcome out;
    r->segs = 0;
    message_id(r, mid, sizeof(mid));
    render_vars v = {.vars = json_object_get(r->r, "vars"),
                     .defaults = sp->defaults,
                     .to = r->addr,
                     .channel = sp->channels[r->ch],
                     .campaign = r->ck->cid,
                     .message_id = mid};
    oc_message m = {
        .campaign = r->ck->cid,
        .message_id = mid,
        .channel = sp->channels[r->ch],
        .to = r->addr,
        .template_name = sp->template_name,
        .template_language = sp->template_language,
    };
    /* a message job on a channel with a customer service window: its
     * free-form content inside the window, else its template, else nothing */
    int how = sp->type == JOB_MESSAGE
                  ? job_window_choice(has_free_form(sp), !!sp->template_name, window_ms(r),
                                      r->inbound_ms, omni_now_ms())
                  : 0;
    if (how == JOB_OUTSIDE_WINDOW) {
        oc_outcome_set(&out, OC_FAILED, "outside_window",
                       "no inbound message from the contact within the window, and no template");
        finish_send(r, ci, &out);
        return;
    }
    /* inside the window the template is not rendered: a variable only it
     * names does not fail the text (a copy of the spec without it, valid
     * through build, which reads the rendered message synchronously) */
    const campaign_spec *rsp = sp;
    campaign_spec text_only;
    if (how == JOB_SEND_FREE_FORM && sp->template_name && window_ms(r) > 0) {
        text_only = *sp;
        text_only.n_params = 0;
        text_only.components = NULL;
        rsp = &text_only;
    }
    if (render_message(d->rd, rsp, &v, &m, missing, sizeof(missing)) != 0) {
        char reason[96];
        snprintf(reason, sizeof(reason), "missing_var:%s", missing);
        oc_outcome_set(&out, OC_FAILED, reason, NULL);
        finish_send(r, ci, &out);
        return;
    }
    if (how == JOB_SEND_FREE_FORM && window_ms(r) > 0) {
        m.template_name = NULL; /* inside the window: the text (or media) */
        m.template_params = NULL;
        m.n_template_params = 0;
        m.template_components = NULL;
    } else if (how == JOB_SEND_TEMPLATE && sp->template_name) {
        m.text = NULL; /* outside it: the template alone */
        m.media_type = m.media_url = m.media_caption = m.media_filename = NULL;
    }
    oc_request req;
    memset(&req, 0, sizeof(req));
    oc_outcome_set(&out, OC_FAILED, "internal", NULL);
    int rc = ci->impl->build(ci->inst, &m, &req, &out);
    if (rc != 0) {
        oc_request_free(&req);
        finish_send(r, ci, &out);
        return;
    }
    /* ABI 1.4: a connector may count the message's segments when it builds
     * it; kept for the sent outcome (classify's own count wins) */
    if (ci->impl->abi_minor >= 4 && out.segments > 0)
        r->segs = out.segments;
    transport_req_opts to = {
        .timeout_ms = ci->conf->timeout_ms,
        .connect_timeout_ms = ci->conf->connect_timeout_ms,
        .http2 = req.url && strncmp(req.url, "https:", 6) == 0 ? ci->conf->http2 : 0,
        .native = ci->conf->native,
        .pipeline = ci->conf->pipeline,
    };
    r->state = R_INFLIGHT;
    r->t_submit_us = omni_mono_us();
    r->wire_ms = omni_now_ms();
    ci->inflight++;
    if (ci->halted)
        ci->probing = 1; /* the one send of a halted connector: its probe */
    if (transport_submit(o->tp, &req, &to, classify_done, r) < 0) {
        ci->inflight--;
        oc_outcome_set(&out, OC_RETRY, "transport", "could not start the transfer");
        finish_send(r, ci, &out);
    }
}

static void classify_done(void *arg, const oc_response *resp, long long latency_us)
{
    rcpt *r = arg;
    chan *ch = r->ck->spec->chans[r->ch];
    conn_inst *ci = ch->ci;
    ci->inflight--;
    conn_observe_latency(ci, latency_us);
    if (ci->o->draining)
        D(ci->o)->drain_finished++;
    oc_outcome out;
    verdict(ci->impl, ci->inst, ci->conf->retry_ambiguous, resp, &out);
    finish_send(r, ci, &out);
    omni_kick(ci->o);
}

static int falls_back(const char *reason)
{
    return strcmp(reason, "opted_out") != 0 && strncmp(reason, "missing_var:", 12) != 0;
}

/* ---- halt (OC_HALT): the connector can send nothing until someone acts.
 * The recipient's claim is given back (release.lua 'H': retry, the attempt
 * given back, due at the probe time, or at once on resume), and so is
 * every claim waiting on the instance; nothing is counted failed, nothing
 * falls back. conn.c stops the pump and keeps the state. */

static void hold_back(rcpt *r, conn_inst *ci)
{
    char m[MSGID_MAX + 16];
    retry_member(r, m, sizeof(m));
    conn_hold_member(ci, m);
    let_go(r, 'H');
}

/* Every claim waiting on a halted instance is given back, except (when
 * the probe's time has come) the one the probe will send. */
static void halt_release(conn_inst *ci)
{
    camp_queue *cq;
    size_t keep = conn_probe_due(ci, omni_mono_us()) ? 1 : 0;
    while (ci->queued > keep && (cq = TAILQ_FIRST(&ci->active))) {
        rcpt *r = TAILQ_LAST(&cq->q, rcpt_queue);
        if (!r)
            break;
        hold_back(r, ci);
    }
}

/* Every tick while an instance is halted and its probe is not due: the
 * retries taken for it and not claimed (they would wait in memory and be
 * taken again when their lease ends) are due again at the probe time. */
static void halt_park_retries(omni *o)
{
    int any = 0;
    for (size_t i = 0; i < o->n_conns && !any; i++)
        any = o->conns[i].halted && !conn_probe_due(&o->conns[i], omni_mono_us());
    if (!any || o->draining)
        return;
    chunk *c;
    TAILQ_FOREACH(c, &D(o)->chunks, link)
    {
        rcpt *r = &c->rs[0];
        if (c->entry[0] || !c->spec || c->n != 1 || r->state != R_CLAIM || r->relase ||
            (size_t)r->ch >= c->spec->n_channels || !c->spec->chans[r->ch])
            continue;
        conn_inst *ci = ci_of(r);
        if (!ci->halted || conn_probe_due(ci, omni_mono_us()))
            continue;
        char m[MSGID_MAX + 16];
        retry_member(r, m, sizeof(m));
        conn_hold_member(ci, m);
        let_go(r, 'L');
    }
}

/* The halt begins: claims waiting to be renewed on it go back too. */
static void halt_begin(conn_inst *ci)
{
    chunk *c;
    TAILQ_FOREACH(c, &D(ci->o)->chunks, link)
    for (size_t i = 0; c->spec && i < c->n; i++) {
        rcpt *r = &c->rs[i];
        if (r->state == R_CLAIM && r->relase && ci_of(r) == ci)
            hold_back(r, ci);
    }
    halt_release(ci);
}

static void finish_send(rcpt *r, conn_inst *ci, const oc_outcome *out)
{
    omni *o = ci->o;
    const omni_config *cfg = o->cfg;
    char mid[MSGID_MAX];
    if (ci->probing && (int)out->kind != OC_HALT) {
        /* the probe answered: the account sends again (a message refused
         * for its own reason says so too); a transport error says nothing */
        if (out->kind == OC_SENT || out->kind == OC_FAILED)
            conn_resume(ci, "probe");
        else
            conn_halt(ci, out->reason, out->detail);
    }
    switch ((int)out->kind) {
    case OC_HALT: {
        int was = ci->halted;
        conn_halt(ci, out->reason, out->detail);
        r->state = R_INFLIGHT; /* out of its queue already: only given back */
        hold_back(r, ci);
        if (!was)
            halt_begin(ci);
        else
            halt_release(ci);
        break;
    }
    case OC_SENT:
        ci->n_sent++;
        omni_count_sent(o, r->ck->spec->channels[r->ch]);
        if (ci->impl->abi_minor >= 4 && out->segments > 0)
            r->segs = out->segments;
        if (out->provider_id[0]) {
            record(r, OC_SENT, 1, out->provider_id, out->reason, 0);
        } else {
            /* no provider id (SMTP, an answer we could not read): our
             * message id is the handle */
            message_id(r, mid, sizeof(mid));
            record(r, OC_SENT, 1, mid, out->reason, 0);
        }
        note_alias(r, ci, out);
        break;
    case OUT_UNCERTAIN:
        ci->n_uncertain++;
        log_warn("campaign %s: recipient %ld on %s: %s (%s): uncertain, not resent", r->ck->cid,
                 r->index, r->ck->spec->channels[r->ch], out->reason, out->detail);
        record(r, OUT_UNCERTAIN, 1, NULL, out->reason, r->wire_ms);
        break;
    case OC_RETRY: {
        ci->n_retry++;
        /* the whole connector slows down, unless the hint concerns this
         * recipient only (OC_THROTTLE_RECIPIENT: its retry waits, below) */
        if (out->throttle > 0 || (out->throttle == 0 && out->retry_after_ms > 0)) {
            long long d = out->retry_after_ms > 0 ? out->retry_after_ms : 1000;
            if (d > RETRY_AFTER_MAX_MS) /* a connector's own hint: clamp before * 1000 */
                d = RETRY_AFTER_MAX_MS;
            bucket_throttle(&ci->rate, omni_mono_us(), d * 1000);
            ci->n_throttled++;
        }
        if (r->attempts >= cfg->max_attempts) {
            char reason[96];
            snprintf(reason, sizeof(reason), "retries_exhausted");
            char att[16];
            snprintf(att, sizeof(att), "%d", r->attempts);
            char last[320];
            snprintf(last, sizeof(last), "%s %s", out->reason, out->detail);
            omni_dead(o, "dispatch", "retries_exhausted", NULL, 0,
                      (const char *const[]){"campaign", r->ck->cid, "channel",
                                            r->ck->spec->channels[r->ch], "to", r->addr, "attempts",
                                            att, "last_error", last, NULL});
            ci->n_failed++;
            omni_count_failure(o, r->ck->spec->channels[r->ch], reason);
            record(r, OC_FAILED, is_last_channel(r), NULL, reason, 0);
            break;
        }
        double rnd = (double)random() / ((double)RAND_MAX + 1.0);
        long long delay = backoff_ms(r->attempts, cfg->retry_base_ms, cfg->retry_cap_ms,
                                     out->retry_after_ms, rnd);
        record(r, OC_RETRY, 0, NULL, out->reason, omni_now_ms() + delay);
        break;
    }
    default:
        ci->n_failed++;
        omni_count_failure(o, r->ck->spec->channels[r->ch], out->reason);
        record(r, OC_FAILED, is_last_channel(r) || !falls_back(out->reason), NULL, out->reason, 0);
        break;
    }
    if (!log_enabled(LOG_DEBUG))
        return;
    char masked[ADDR_MAX];
    log_debug("send campaign=%s to=%s channel=%s outcome=%s reason=%s", r->ck->cid,
              log_mask(r->addr, masked, sizeof(masked)), r->ck->spec->channels[r->ch],
              out->kind == OC_SENT              ? "sent"
              : out->kind == OC_RETRY           ? "retry"
              : (int)out->kind == OUT_UNCERTAIN ? "uncertain"
                                                : "failed",
              out->reason);
}

/* The pump's turn for cq's first recipient (conn.c): sent, or given
 * back when its campaign stopped (0), or its claim renewed first when it
 * waited past its lease. */
static int take_turn(conn_inst *ci, camp_queue *cq, long long now)
{
    rcpt *r = TAILQ_FIRST(&cq->q);
    campaign_spec *sp = r->ck->spec;
    if (sp->stopped) {
        let_go(r, sp->stopped == 2 ? 'C' : 'P');
        return 0;
    }
    cq_remove(r);
    long long margin = (long long)ci->o->cfg->lease_ms * 100; /* a tenth of the lease */
    if (margin > 1000000)
        margin = 1000000;
    if (r->lease_until_us && now + margin >= r->lease_until_us) {
        /* it waited past its lease (a throttled connector): no transfer
         * starts on a claim another process may already have declared
         * uncertain; renew it first */
        chunk *c = r->ck;
        r->relase = 1;
        r->state = R_CLAIM;
        c->to_claim++;
        size_t at = (size_t)(r - c->rs);
        if (at < c->scan)
            c->scan = at;
        omni_kick(ci->o);
        return 1;
    }
    send_one(ci, r);
    return 1;
}

/* ---- recording outcomes */

static void recorded(redisReply *rep, void *arg)
{
    omni *o = arg;
    dispatch *d = D(o);
    /* replies come in the order of the calls (one connection) */
    unsigned batch = d->batch_oldest++;
    d->flushing--;
    size_t k = 0, left = d->batch_n[batch % OUTCOME_CALLS];
    rcpt *r, *next;
    /* the call's outcomes are in list order; stop after its last */
    for (r = TAILQ_FIRST(&d->outcomes); r && left; r = next) {
        next = TAILQ_NEXT(r, q);
        if (r->state != R_RECORDING || r->batch != batch)
            continue;
        left--;
        d->n_recording--;
        if (!rep || rep->type != REDIS_REPLY_STRING) {
            r->state = R_RECORD; /* write again once Redis answers */
            continue;
        }
        TAILQ_REMOVE(&d->outcomes, r, q);
        d->n_outcomes--;
        k++;
        chunk *c = r->ck;
        seen_set(c->mem, r->ch, r->index,
                 r->out_kind == OC_SENT         ? SEEN_SENT
                 : r->out_kind == OUT_UNCERTAIN ? SEEN_UNCERTAIN
                                                : SEEN_NONE);
        if (r->out_kind == OUT_DEFER) {
            resolve(r);
        } else if (r->out_kind == OC_FAILED && !r->out_final) {
            /* fall back to the next channel */
            r->ch++;
            if (aim(r) == 0)
                claim_chunk(c);
        } else {
            resolve(r);
        }
        chunk_maybe_finish(c);
    }
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        log_error("recording outcomes failed: %s", rep->str);
        back_off(o);
    }
    omni_kick(o);
}

static void flush_outcomes(omni *o)
{
    dispatch *d = D(o);
    size_t waiting = d->n_outcomes - d->n_recording;
    if (d->flushing >= OUTCOME_CALLS || !waiting || !store_is_ready(o->st) || paused(o))
        return;
    if (d->flushing && waiting < OUTCOME_BATCH / 2)
        return; /* a second call only when it is worth one */
    store_args *a = &d->out_args;
    store_args_reset(a);
    store_args_adds(a, o->cfg->prefix);
    store_args_addll(a, omni_now_ms());
    store_args_adds(a, PMID_TTL_S);
    size_t n = 0;
    rcpt *r;
    unsigned batch = d->batch_next++;
    /* first attempts sent go in runs that share a campaign and a channel:
     * 'S', campaign, channel, owner, count, then address, slot and
     * provider id per message; every other outcome goes whole. 'K' and a
     * connector instance name go before the records it sent, when it
     * changes (outcome.lua keeps it in the provider-id index); 'G' and
     * a segment count before the sent records it applies to, when it
     * changes (a run shares one: outcome.lua sums it on the campaign) */
    const chunk *run_c = NULL;
    const conn_inst *run_ci = NULL, *last_ci = NULL;
    int run_ch = -1, run_count = 0, last_segs = 0;
    long long run_n = 0;
    TAILQ_FOREACH(r, &d->outcomes, q)
    {
        if (n == OUTCOME_BATCH)
            break;
        if (r->state != R_RECORD)
            continue;
        chunk *c = r->ck;
        r->state = R_RECORDING;
        r->batch = batch;
        n++;
        /* the instance that sent it (a sent message's channel has one) */
        const conn_inst *ci =
            r->out_kind == OC_SENT && c->spec && c->spec->chans[r->ch] ? ci_of(r) : NULL;
        /* sent on a channel with a next one, in a campaign with
         * fallback_after_s: watched until a delivered/read status comes
         * (outcome.lua adds it to omni:watch), so not in a run */
        int watch = r->out_kind == OC_SENT && c->spec && c->spec->fallback_after_ms > 0 &&
                    !is_last_channel(r);
        if (r->out_rid && r->out_kind == OC_SENT && c->spec) {
            /* the provider's other id for the address: 'A', channel, id,
             * address, between runs (a run's records follow its count) */
            if (run_c)
                store_args_setll(a, run_count, run_n);
            run_c = NULL;
            store_args_adds(a, "A");
            store_args_adds(a, c->spec->channels[r->ch]);
            store_args_adds(a, r->out_rid);
            store_args_adds(a, r->addr);
        }
        if (r->out_kind == OC_SENT && !r->from_retry && r->attempts == 1 && !r->out_reason[0] &&
            c->spec && !watch) {
            if (!run_c || ci != run_ci || r->segs != last_segs || strcmp(run_c->cid, c->cid) != 0 ||
                strcmp(run_c->spec->channels[run_ch], c->spec->channels[r->ch]) != 0) {
                if (run_c)
                    store_args_setll(a, run_count, run_n);
                run_c = c;
                run_ch = r->ch;
                run_ci = ci;
                if (ci != last_ci) {
                    store_args_adds(a, "K");
                    store_args_adds(a, ci ? ci->conf->name : "");
                    last_ci = ci;
                }
                if (r->segs != last_segs) {
                    store_args_adds(a, "G");
                    store_args_addll(a, r->segs);
                    last_segs = r->segs;
                }
                store_args_adds(a, "S");
                store_args_adds(a, c->cid);
                store_args_adds(a, c->spec->channels[r->ch]);
                store_args_adds(a, o->owner);
                run_count = a->argc;
                store_args_addll(a, 0);
                run_n = 0;
            }
            store_args_adds(a, r->addr);
            store_args_addll(a, r->index);
            store_args_adds(a, r->out_pid ? r->out_pid : "");
            run_n++;
            continue;
        }
        if (run_c)
            store_args_setll(a, run_count, run_n);
        run_c = NULL;
        if (r->out_kind == OC_SENT && ci != last_ci) {
            store_args_adds(a, "K");
            store_args_adds(a, ci ? ci->conf->name : "");
            last_ci = ci;
        }
        if (r->out_kind == OC_SENT && r->segs != last_segs) {
            store_args_adds(a, "G");
            store_args_addll(a, r->segs);
            last_segs = r->segs;
        }
        store_args_adds(a, r->out_kind == OC_SENT         ? "sent"
                           : r->out_kind == OC_RETRY      ? "retry"
                           : r->out_kind == OUT_DEFER     ? "defer"
                           : r->out_kind == OUT_UNCERTAIN ? "unc"
                                                          : "failed");
        store_args_adds(a, c->cid);
        store_args_adds(a, c->spec ? c->spec->channels[r->ch] : "");
        store_args_adds(a, r->addr);
        store_args_addll(a, r->index);
        store_args_adds(a, r->out_final ? "1" : "0");
        store_args_adds(a, r->out_pid ? r->out_pid : "");
        store_args_adds(a, r->out_reason);
        /* a watched message: the unix ms by which its delivery must show */
        store_args_addll(a, watch ? omni_now_ms() + c->spec->fallback_after_ms : r->out_due);
        if (r->out_kind == OC_RETRY || r->out_kind == OUT_DEFER || r->from_retry || watch) {
            char m[MSGID_MAX + 16];
            snprintf(m, sizeof(m), "%s|%ld|%d", c->cid, r->index, r->ch);
            store_args_adds(a, m);
        } else {
            store_args_adds(a, "");
        }
    }
    if (run_c)
        store_args_setll(a, run_count, run_n);
    store_args_finish(a);
    d->flushing++;
    d->n_recording += n;
    d->batch_n[batch % OUTCOME_CALLS] = n;
    if (store_eval(o->st, SCRIPT_OUTCOME, recorded, o, 0, a->argc, a->argv, a->lens) < 0)
        recorded(NULL, o);
}

/* ---- finishing a chunk */

static void chunk_maybe_finish(chunk *c)
{
    if (c->unresolved || c->loading || c->claiming || c->hand_back)
        return;
    omni *o = c->o;
    dispatch *d = D(o);
    if (c->entry[0] && !c->hold && !c->handed) {
        if (c->park) {
            char m[MSGID_MAX + 48], due[24];
            snprintf(m, sizeof(m), "chunk:%s:%ld:%ld", c->cid, c->start, c->end);
            snprintf(due, sizeof(due), "%lld", omni_now_ms() + PARK_MS);
            store_cmd(o->st, NULL, NULL, "ZADD", o->k_sched, due, m, NULL);
            stream_ack(o, o->k_chunks, c->entry);
        } else {
            /* acked, and the campaign's next chunk added behind the others */
            char ck[KEY_MAX];
            omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, c->cid);
            const char *argv[] = {o->k_chunks, ck, STREAM_GROUP, c->entry, c->cid};
            if (store_eval(o->st, SCRIPT_NEXT, NULL, NULL, 2, 5, argv, NULL) < 0)
                stream_ack(o, o->k_chunks, c->entry);
        }
        D(o)->counters.chunks_done++;
    }
    TAILQ_REMOVE(&d->chunks, c, link);
    D(o)->held -= c->n;
    chunk_free(c);
    omni_kick(o);
}

/* ---- letting go: drain, pause, cancel
 *
 * What a process claimed and did not send is given back in one release.lua
 * call: put back as a retry due now (drain, pause), or cancelled (cancel).
 * On drain, chunks whose recipients were not all claimed are handed back
 * (acked and added again) so a restart or another instance reads them at
 * once instead of after claim_idle_ms. Transfers already on the wire
 * finish; only those still on the wire when drain_timeout_ms ends are left
 * to end uncertain. */

static void let_go(rcpt *r, char mode)
{
    chunk *c = r->ck;
    dispatch *d = D(c->o);
    if (r->state == R_QUEUED) {
        cq_remove(r);
    } else if (r->state == R_CLAIM) {
        c->to_claim--;
    }
    if (mode != 'D' && mode != 'L') /* a retry never claimed: nothing of it here */
        seen_set(c->mem, r->ch, r->index, SEEN_NONE);
    r->relase = 0;
    r->rel_mode = mode;
    r->state = R_RELEASE;
    TAILQ_INSERT_TAIL(&d->releases, r, q);
    d->n_release++;
    omni_kick(c->o);
}

/* Draining: every chunk not waiting for Redis gives back what it holds
 * unsent, once. */
static void drain_pass(omni *o)
{
    chunk *c, *next;
    for (c = TAILQ_FIRST(&D(o)->chunks); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->waiting) {
            /* read, never loaded: handed back whole */
            dispatch *d = D(o);
            TAILQ_REMOVE(&d->waiting, c, wlink);
            c->waiting = 0;
            d->n_waiting--;
            d->waiting_rcpts -= c->n;
            c->loading = 0;
        }
        if (c->drained || c->loading || c->claiming || !c->spec)
            continue;
        c->drained = 1;
        int unclaimed = 0;
        for (size_t i = 0; i < c->n; i++) {
            rcpt *r = &c->rs[i];
            if (r->state == R_QUEUED || (r->state == R_CLAIM && r->relase)) {
                let_go(r, c->spec->stopped == 2 ? 'C' : 'P');
            } else if (r->state == R_CLAIM || r->state == R_LOAD) {
                if (c->entry[0]) {
                    unclaimed = 1;
                    if (r->state == R_CLAIM)
                        c->to_claim--;
                    r->state = R_CLAIM; /* resolved below */
                    resolve(r);
                } else {
                    let_go(r, 'D'); /* a retry not claimed yet: due again now */
                }
            }
        }
        if (unclaimed)
            c->hand_back = 1;
        else
            chunk_maybe_finish(c);
    }
}

static void released(redisReply *rep, void *arg)
{
    omni *o = arg;
    dispatch *d = D(o);
    d->releasing = 0;
    int ok = rep && rep->type == REDIS_REPLY_STRING;
    if (!ok && rep && rep->type == REDIS_REPLY_ERROR) {
        log_error("releasing claims failed: %s", rep->str);
        back_off(o);
    }
    /* chunks handed back first: finishing a recipient may free its chunk */
    chunk *c;
    TAILQ_FOREACH(c, &d->chunks, link)
    if (c->handing) {
        c->handing = 0;
        if (ok) {
            c->hand_back = 0;
            c->handed = 1;
        }
    }
    rcpt *r, *next;
    for (r = TAILQ_FIRST(&d->releases); r; r = next) {
        next = TAILQ_NEXT(r, q);
        if (r->state != R_RELEASING)
            continue;
        if (!ok) {
            r->state = R_RELEASE; /* again once Redis answers */
            continue;
        }
        TAILQ_REMOVE(&d->releases, r, q);
        d->n_release--;
        if (o->draining && r->rel_mode == 'P')
            d->drain_released++;
        resolve(r);
    }
    /* every chunk that may be finished now (hand-backs and recipients) */
    chunk *cn;
    for (c = TAILQ_FIRST(&d->chunks); c; c = cn) {
        cn = TAILQ_NEXT(c, link);
        chunk_maybe_finish(c);
    }
    omni_kick(o);
}

static void flush_releases(omni *o)
{
    dispatch *d = D(o);
    if (d->releasing || !store_is_ready(o->st) || paused(o))
        return;
    store_args *a = &d->rel_args;
    store_args_reset(a);
    store_args_adds(a, o->cfg->prefix);
    store_args_addll(a, omni_now_ms());
    store_args_adds(a, o->owner);
    store_args_adds(a, STREAM_GROUP); /* the chunks' consumer group */
    store_args_adds(a, o->k_chunks);
    size_t n = 0;
    rcpt *r;
    TAILQ_FOREACH(r, &d->releases, q)
    {
        if (r->state != R_RELEASE)
            continue;
        char m[MSGID_MAX + 16];
        retry_member(r, m, sizeof(m));
        if (r->rel_mode == 'D') {
            store_args_adds(a, "D");
        } else if (r->rel_mode == 'L') {
            store_args_adds(a, "L");
            store_args_adds(a, m);
            store_args_addll(a, omni_now_ms() + (long long)ci_of(r)->conf->halt_probe_s * 1000);
            r->state = R_RELEASING;
            n++;
            continue;
        } else if (r->rel_mode == 'H') {
            conn_inst *ci = ci_of(r);
            store_args_adds(a, "H");
            store_args_adds(a, r->ck->cid);
            store_args_adds(a, r->ck->spec->channels[r->ch]);
            store_args_adds(a, r->addr);
            store_args_addll(a, r->index);
            store_args_addll(a, omni_now_ms() + (long long)ci->conf->halt_probe_s * 1000);
        } else {
            store_args_add(a, &r->rel_mode, 1);
            store_args_adds(a, r->ck->cid);
            store_args_adds(a, r->ck->spec->channels[r->ch]);
            store_args_adds(a, r->addr);
            store_args_addll(a, r->index);
        }
        store_args_adds(a, m);
        r->state = R_RELEASING;
        n++;
    }
    chunk *c;
    TAILQ_FOREACH(c, &d->chunks, link)
    if (c->hand_back && !c->handing) {
        char s[24], e[24];
        snprintf(s, sizeof(s), "%ld", c->start);
        snprintf(e, sizeof(e), "%ld", c->end);
        store_args_adds(a, "K");
        store_args_adds(a, c->entry);
        store_args_adds(a, c->cid);
        store_args_adds(a, s);
        store_args_adds(a, e);
        c->handing = 1;
        n++;
    }
    if (!n)
        return;
    store_args_finish(a);
    d->releasing = 1;
    if (store_eval(o->st, SCRIPT_RELEASE, released, o, 0, a->argc, a->argv, a->lens) < 0)
        released(NULL, o);
}

void dispatch_campaign_state(omni *o, const char *campaign, const char *state)
{
    int stop = !strcmp(state, "paused") ? 1 : !strcmp(state, "cancelled") ? 2 : 0;
    int acted = 0;
    chunk *c;
    TAILQ_FOREACH(c, &D(o)->chunks, link)
    {
        if (!c->spec || strcmp(c->cid, campaign) != 0)
            continue;
        if (c->spec->stopped != stop && !acted++)
            log_info("campaign %s: %s here: %s", campaign, state,
                     stop ? "nothing more of it goes on the wire" : "sending again");
        c->spec->stopped = stop;
        if (!stop)
            continue;
        for (size_t i = 0; i < c->n; i++) {
            rcpt *r = &c->rs[i];
            if (r->state == R_QUEUED || (r->state == R_CLAIM && r->relase))
                let_go(r, stop == 2 ? 'C' : 'P');
        }
    }
    omni_kick(o);
}

/* Every tick: the state of each campaign this process holds work of, so a
 * pause or cancel processed by another instance stops it here too. */
typedef struct poll_req {
    omni *o;
    char id[];
} poll_req;

static void polled(redisReply *rep, void *arg)
{
    poll_req *p = arg;
    if (rep && rep->type == REDIS_REPLY_STRING)
        dispatch_campaign_state(p->o, p->id, rep->str);
    free(p);
}

static void poll_states(omni *o)
{
    dispatch *d = D(o);
    if (!store_is_ready(o->st))
        return;
    d->poll_gen++;
    chunk *c;
    TAILQ_FOREACH(c, &d->chunks, link)
    {
        if (!c->spec || c->spec->poll_gen == d->poll_gen || c->unresolved == 0)
            continue;
        c->spec->poll_gen = d->poll_gen;
        size_t n = strlen(c->cid);
        poll_req *p = malloc(sizeof(*p) + n + 1);
        if (!p)
            return;
        p->o = o;
        memcpy(p->id, c->cid, n + 1);
        char ck[KEY_MAX];
        omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, c->cid);
        if (store_cmd(o->st, polled, p, "HGET", ck, "state", NULL) < 0)
            free(p);
    }
}

void dispatch_drain_summary(omni *o, char *buf, size_t len)
{
    dispatch *d = D(o);
    size_t unsent = d->n_release;
    snprintf(buf, len,
             "%llu sends finished, %llu claims released unsent, %zu left on the wire (uncertain)%s",
             d->drain_finished, d->drain_released, conn_inflight(o),
             unsent ? ", some claims not released (Redis unavailable): they end uncertain" : "");
}

/* ---- retries taken from omni:retry */

static void retry_got_spec(omni *o, campaign_spec *spec, int missing, void *arg);

static void retry_loaded(redisReply *rep, void *arg)
{
    chunk *c = arg;
    rcpt *r = &c->rs[0];
    c->loading = 0;
    if (!rep || rep->type != REDIS_REPLY_STRING || !(r->r = load_recipient(rep->str, rep->len))) {
        /* gone or unreadable: the lease on the retry entry brings it back */
        resolve(r);
        chunk_maybe_finish(c);
        return;
    }
    if (aim(r) == 0)
        claim_chunk(c);
    chunk_maybe_finish(c);
}

static void retry_got_spec(omni *o, campaign_spec *spec, int missing, void *arg)
{
    chunk *c = arg;
    (void)missing;
    if (!spec) {
        c->loading = 0;
        resolve(&c->rs[0]);
        chunk_maybe_finish(c);
        return;
    }
    c->spec = spec;
    if ((size_t)c->rs[0].ch >= spec->n_channels)
        c->rs[0].ch = 0;
    char rk[KEY_MAX], idx[24];
    omni_key(o, rk, sizeof(rk), KEY_RCPT, c->cid);
    snprintf(idx, sizeof(idx), "%ld", c->start);
    if (store_cmd(o->st, retry_loaded, c, "LINDEX", rk, idx, NULL) < 0)
        retry_loaded(NULL, c);
}

static void taken(redisReply *rep, void *arg)
{
    omni *o = arg;
    dispatch *d = D(o);
    d->taking = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < rep->elements; i++) {
        const char *m = rep->element[i]->str;
        if (!m)
            continue;
        /* member: campaign|index|channel */
        const char *p2 = strrchr(m, '|');
        if (!p2 || p2 == m)
            continue;
        const char *p1 = p2 - 1;
        while (p1 > m && *p1 != '|')
            p1--;
        if (p1 == m)
            continue;
        char cid[JOB_ID_MAX + 1];
        size_t cl = (size_t)(p1 - m);
        if (cl > JOB_ID_MAX)
            continue;
        memcpy(cid, m, cl);
        cid[cl] = '\0';
        long index = atol(p1 + 1);
        int ch = atoi(p2 + 1);
        D(o)->counters.retries_taken++;
        chunk *c = chunk_new(o, NULL, cid, index, index + 1);
        c->rs[0].from_retry = 1;
        c->rs[0].ch = ch;
        campaign_spec_get(o, cid, retry_got_spec, c);
    }
}

static void take_due(omni *o)
{
    dispatch *d = D(o);
    if (d->taking || o->draining || !store_is_ready(o->st) || D(o)->held >= D(o)->max_held)
        return;
    char now[24], lease[24], max[24];
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    snprintf(lease, sizeof(lease), "%d", o->cfg->lease_ms);
    snprintf(max, sizeof(max), "%d", 100);
    const char *argv[] = {o->k_retry, o->k_sched, o->k_chunks, o->cfg->prefix, now, lease, max};
    d->taking = 1;
    if (store_eval(o->st, SCRIPT_TAKE, taken, o, 3, 7, argv, NULL) < 0)
        d->taking = 0;
}

void dispatch_tick(omni *o)
{
    take_due(o);
    poll_states(o);
    conn_halt_poll(o);
    halt_park_retries(o);
}

void dispatch_on_kick(omni *o)
{
    dispatch *d = D(o);
    chunk *c;
    if (o->draining)
        drain_pass(o);
    else if (d->n_waiting)
        wake_waiting(o);
    TAILQ_FOREACH(c, &d->chunks, link)
    if (c->to_claim && !c->claiming && !c->loading)
        claim_chunk(c);
    for (size_t i = 0; i < o->n_conns; i++) {
        if (o->conns[i].halted && o->conns[i].queued && !o->draining)
            halt_release(&o->conns[i]); /* claimed meanwhile: given back */
        conn_pump(&o->conns[i]);
    }
    flush_outcomes(o);
    flush_releases(o);
}

void dispatch_on_down(omni *o)
{
    (void)o; /* every operation retries when Redis is ready again */
}
