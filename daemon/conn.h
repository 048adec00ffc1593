/* Connector instances ([connector.NAME]) and channels: start, reload and
 * stop of the instances, the address kind of a channel (shared with the
 * CLI), the provider latency histogram (one table: bounds and buckets),
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
    uint64_t lat_buckets[CONN_LAT_BUCKETS]; /* conn_lat_table */
    double lat_sum_s;
} conn_inst;

typedef struct chan {
    const char *name;
    conn_inst *ci;
    int addr_kind; /* the connector's, or for generic connectors the channel name's */
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
/* The instance named name, or NULL. */
conn_inst *conn_find(struct omni *o, const char *name);
/* Transfers in flight, every instance. */
size_t conn_inflight(struct omni *o);

#endif
