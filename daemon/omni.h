/* The daemon's single context, passed explicitly to every module: the event
 * base, the configuration, Redis, the transport, the connector instances
 * and channels, and the counters /metrics reports. Outside it, process-wide
 * state is: the logger's settings (log.c), queue.c's small ring of script
 * errors for pending entries, the plugins' dlopen handles (registry.c, kept
 * open for the process's life), and the TZ environment variable that
 * dispatch.c's quiet hours set and restore around localtime_r. */
#ifndef OMNI_OMNI_H
#define OMNI_OMNI_H

#include <event2/event.h>
#include <stdint.h>
#include <sys/queue.h>

#include "clock.h" /* omni_now_ms, omni_mono_us */
#include "config.h"
#include "omnicast/connector.h"
#include "ratelimit.h"
#include "store.h"
#include "transport.h"

#define KEY_MAX 512

typedef struct rcpt rcpt;
TAILQ_HEAD(rcpt_queue, rcpt);

/* One campaign's claimed recipients waiting on one connector instance: the
 * connector serves its campaigns' queues in turn (weighted by the job's
 * priority), so one campaign never holds up another (see dispatch.c). */
typedef struct camp_queue {
    struct rcpt_queue q;
    size_t n;        /* in q */
    size_t claiming; /* in a claim call */
    int credit;      /* sends left in its turn */
    int on_list;     /* on its connector's active list */
    TAILQ_ENTRY(camp_queue) link;
} camp_queue;
TAILQ_HEAD(camp_list, camp_queue);

/* One configured connector instance ([connector.NAME]). */
typedef struct conn_inst {
    const conf_connector *conf;
    const oc_connector *impl;
    void *inst; /* the connector's own state, freed with impl->free */
    int addr_kind;
    bucket rate;
    int inflight;
    int max_inflight;
    struct camp_list active; /* campaigns with claimed recipients waiting, in turn */
    size_t queued;           /* claimed recipients waiting, all campaigns */
    size_t n_active;         /* campaigns on the active list */
    size_t claiming;         /* recipients in a claim call for this connector */
    size_t claim_window;     /* queued + claiming stays under this (see dispatch.c) */
    struct event *timer;     /* wakes the queue when the bucket refills */
    struct omni *o;
    /* counters */
    uint64_t n_sent, n_failed, n_retry, n_throttled, n_waits, n_uncertain;
    uint64_t lat_buckets[12]; /* provider latency histogram, see metrics */
    double lat_sum_s;
} conn_inst;

typedef struct chan {
    const char *name;
    conn_inst *ci;
    int addr_kind; /* the connector's, or for generic connectors the channel name's */
} chan;

typedef struct omni_stats {
    uint64_t jobs_accepted, jobs_rejected, jobs_duplicate;
    uint64_t chunks_done, retries_taken, dead_letters;
    uint64_t conversations_opened;
    uint64_t sweep_repairs;      /* recipients the consistency sweep put back or declared */
    uint64_t webhook_by_type[4]; /* indexed by oc_event_type: reply, status, unsubscribe */
    double loop_lag_s;           /* how late the last 200 ms tick fired */
} omni_stats;

typedef struct omni {
    struct event_base *base;
    omni_config *cfg;
    store *st;
    transport *tp;
    conn_inst *conns;
    size_t n_conns;
    chan *chans;
    size_t n_chans;
    omni_stats stats;
    char owner[160]; /* "consumer/incarnation": who holds a claim */

    int draining;               /* SIGTERM: take no new work */
    int stopping;               /* loop exit requested */
    int reading;                /* a blocking XREADGROUP is outstanding */
    char jobs_from[40];         /* "0"/last id while reading our own pending jobs, then ">" */
    char chunks_from[40];       /* the same for chunks */
    size_t held;                /* recipients held in memory (back-pressure) */
    int read_jobs, read_chunks; /* queue.c: which streams the outstanding read asked for */
    size_t max_held;
    int jobs_busy; /* jobs being validated/created */

    struct event *kick_ev; /* zero-delay: flush outcomes, claims, queues */
    struct event *tick_ev; /* periodic: retries, schedule, reclaim */
    long long next_reclaim_ms;
    long long last_tick_us;
    int ready_notified;     /* READY=1 sent to systemd */
    struct event *drain_ev; /* drain_timeout_ms after SIGTERM */

    long long next_sweep_ms; /* sweep.c: the next round */
    int sweeping;            /* sweep.c: calls of the current round unanswered */

    void *dispatch;  /* dispatch.c's state */
    void *campaigns; /* campaign.c's spec cache */
    void *conv;      /* conv.c's inbound event queue */
    void *crm;       /* crm.c's forwarder, NULL without crm_webhook_url */

    char k_jobs[KEY_MAX], k_chunks[KEY_MAX], k_dead[KEY_MAX], k_retry[KEY_MAX], k_sched[KEY_MAX];
} omni;

void omni_kick(omni *o); /* run the deferred work soon */
int omni_key(const omni *o, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
chan *omni_channel(omni *o, const char *name);
/* Write an entry to the dead-letter stream: source, reason, the raw input
 * (binary-safe, may be NULL) and extra NULL-terminated key/value pairs. */
void omni_dead(omni *o, const char *source, const char *reason, const char *raw, size_t raw_len,
               const char *const *kv);
/* The same, with done called with the XADD's reply (NULL: Redis away, or
 * the command could not be sent) for a caller that must know the dead
 * letter is stored. Returns 0, or -1 (not sent: done was called). */
int omni_dead_then(omni *o, const char *source, const char *reason, const char *raw, size_t raw_len,
                   const char *const *kv, store_cb done, void *arg);

/* queue.c: the read loop over omni:jobs and omni:chunks */
void queue_on_ready(omni *o);
void queue_on_down(omni *o);
void queue_maybe_read(omni *o);
void queue_reclaim(omni *o);
void queue_ack(omni *o, const char *stream, const char *id);
/* An entry that is delivered this many times (the first delivery and 5
 * retries, each after claim_idle_ms) without being acked is given up:
 * dead-lettered with the last error seen, and acked. */
#define QUEUE_MAX_DELIVERIES 6
/* A script answered an error for an entry left pending to be tried again
 * (a job's create, a chunk's claim): the error is kept (in memory, for a
 * few dozen entries) for the dead letter if the entry is given up.
 * Returns how many times it failed in this process. */
int queue_entry_failed(omni *o, const char *stream, const char *entry, const char *error);

/* campaign.c: job intake into campaigns, the spec cache, control */
void campaign_handle_job(omni *o, const char *entry_id, const char *raw, size_t len);
void campaign_cache_free(omni *o);

/* dispatch.c: chunks to claims to sends to outcomes */
int dispatch_init(omni *o);
void dispatch_free(omni *o);
void dispatch_chunk(omni *o, const char *entry_id, const char *campaign, long start, long end);
void dispatch_on_kick(omni *o);
void dispatch_tick(omni *o);
void dispatch_on_down(omni *o);
/* May another chunk be read? (memory of loaded recipients, chunks waiting
 * for their campaign's turn to load) */
int dispatch_room(omni *o);
int dispatch_holds_entry(omni *o, const char *entry_id);
/* A campaign's state changed (a control job here, or seen by the poll):
 * paused → its claimed, unsent recipients are released; cancelled → they
 * end cancelled; no further request of it goes on the wire. */
void dispatch_campaign_state(omni *o, const char *campaign, const char *state);
/* Since the drain began: "N sends finished, M claims released unsent, K
 * left on the wire (uncertain)". */
void dispatch_drain_summary(omni *o, char *buf, size_t len);
/* Append the stream ids of the chunks held in memory; returns how many. */
int dispatch_held_entries(omni *o, store_args *a);
size_t dispatch_inflight(omni *o);

#endif
