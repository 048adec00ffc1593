/* Connector instances ([connector.NAME]) and channels: start, reload and
 * stop of the instances, the address kind of a channel (shared with the
 * CLI), halt and resume (OC_HALT), the provider latency histogram (one
 * table: bounds and buckets),
 * and the per-instance queue of campaigns with claimed recipients waiting
 * (dispatch.c fills it and serves it, paced by the instance's token bucket
 * and in-flight window). Includes no stage. */
#ifndef OMNI_CONN_H
#define OMNI_CONN_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "config.h"
#include "counters.h"
#include "omnicast/connector.h"
#include "ratelimit.h"

struct omni;

typedef struct rcpt rcpt; /* dispatch.c's recipient */
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
    /* its campaign's, set when the spec is compiled (campaign.c) */
    int weight;         /* sends per turn (the job's priority) */
    bucket *rate;       /* the job's own rate_per_s, or NULL */
    const int *stopped; /* paused or cancelled: nothing more goes on the wire */
    TAILQ_ENTRY(camp_queue) link;
} camp_queue;
TAILQ_HEAD(camp_list, camp_queue);

struct conn_inst;
/* The pump's turn has come for cq's first recipient (a token and a slot
 * are there): dispatch.c sends it (1), or, its campaign stopped, lets it go
 * unsent (0: the token is given back). */
typedef int (*conn_take_fn)(struct conn_inst *ci, camp_queue *cq, long long now_us);

/* The provider latency histogram: upper bounds in seconds (the last is
 * +Inf) and their Prometheus labels, one table. */
#define CONN_LAT_BUCKETS 12
typedef struct conn_lat_bucket {
    double le;
    const char *label;
} conn_lat_bucket;
extern const conn_lat_bucket conn_lat_table[CONN_LAT_BUCKETS];

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
    conn_take_fn take;       /* dispatch.c's, see conn_pump */
    struct omni *o;
    /* counters */
    uint64_t n_sent, n_failed, n_retry, n_throttled, n_waits, n_uncertain;
    uint64_t n_webhook_errors;              /* OC_EV_ERROR events from its webhook */
    uint64_t lat_buckets[CONN_LAT_BUCKETS]; /* conn_lat_table */
    double lat_sum_s;
    /* halted (OC_HALT): nothing goes on the wire until an operator resumes
     * it or a probe send after halt_probe_s succeeds */
    int halted;
    int probing;             /* the probe send is on the wire */
    long long halted_at_ms;  /* unix ms the halt began */
    long long probe_at_us;   /* monotonic: the probe may go */
    char halt_reason[48];    /* the connector's reason */
    char **held;             /* retry members given back while halted */
    size_t n_held, cap_held; /* ... made due again on resume */
    int polling;             /* a look at connector:{name} is outstanding */
    uint64_t n_halts;
} conn_inst;

typedef struct chan {
    const char *name;
    conn_inst *ci;
    int addr_kind; /* the connector's, or for generic connectors the channel name's */
    /* failures recorded on this channel by this process, by reason
     * (counters.h's list): omnicast_failures_total */
    unsigned long long n_fail[COUNTERS_REASONS];
    unsigned long long n_sent; /* sends the provider accepted: omnicast_channel_sent_total */
} chan;

/* The address kind of a channel: addr_channel_kind (address.h), which the
 * CLI shares. */

/* Start every configured instance and map the channels (o->conns,
 * o->chans); -1 with the reason logged. */
int conn_start_all(struct omni *o);
void conn_stop_all(struct omni *o);
/* SIGHUP: the new configuration n is applied in place when it keeps the
 * same instances and channels and every connector takes it; else NULL is
 * returned and the running one stays: the reason why. */
const char *conn_reload(struct omni *o, omni_config *n);
/* Rates and windows from the instance's section (start and reload). */
void conn_apply_rates(struct omni *o, conn_inst *ci);
/* A transfer ended after latency_us: the histogram and the sum. */
void conn_observe_latency(conn_inst *ci, long long latency_us);
/* The campaigns' queues on an instance: a queue that gets its first
 * recipient joins the active list (a full turn of credit), one that
 * empties leaves it (dispatch.c keeps the recipients and the counts). */
void conn_activate(conn_inst *ci, camp_queue *cq);
void conn_deactivate(conn_inst *ci, camp_queue *cq);
/* The pacing pump: while recipients wait and the in-flight window has
 * room, take a token from the instance's bucket, pick whose turn it is
 * (a campaign paced by its own rate yields its turn; each campaign sends
 * `weight` in a row) and hand its first recipient to ci->take; when the
 * bucket is empty, a timer kicks the loop when it refills. Nothing starts
 * while draining. */
void conn_pump(conn_inst *ci);
/* Halt (OC_HALT from a send): the first one logs an error, emits a
 * connector.halted event (omni:events) and stops the pump; while halted,
 * another one (the probe's) waits halt_probe_s again. */
void conn_halt(conn_inst *ci, const char *reason, const char *detail);
/* Resume a halted instance (by: "operator" or "probe"): the event, and the
 * recipients given back while halted are due again now. */
void conn_resume(conn_inst *ci, const char *by);
/* Halted, and the probe may go now (nothing of it on the wire yet). */
int conn_probe_due(const conn_inst *ci, long long now_us);
/* Keep a retry member given back while halted, to make it due on resume. */
void conn_hold_member(conn_inst *ci, const char *member);
/* Every tick: halted instances look for a resume request (connector:{name}
 * field resume, unix ms, newer than the halt), which the CLI and the API
 * write, so every daemon sharing the Redis resumes. */
void conn_halt_poll(struct omni *o);
/* How many instances are halted (/readyz). */
size_t conn_halted(struct omni *o);
/* The instance named name, or NULL. */
conn_inst *conn_find(struct omni *o, const char *name);
/* Transfers in flight, every instance. */
size_t conn_inflight(struct omni *o);

#endif
