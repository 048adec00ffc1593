/* The daemon's single context, passed explicitly to every module: the event
 * base, the configuration, Redis, the transport, the connector instances
 * and channels (conn.h), each module's own state behind a typed pointer,
 * and the counters more than one module writes. Outside it, process-wide
 * state is: the logger's settings (log.c), the plugins' dlopen handles
 * (registry.c, kept open for the process's life), and the TZ environment
 * variable that quiet.c alone sets and restores around localtime_r. */
#ifndef OMNI_OMNI_H
#define OMNI_OMNI_H

#include <event2/event.h>
#include <stdint.h>
#include <sys/queue.h>

#include "clock.h" /* omni_now_ms, omni_mono_us */
#include "config.h"
#include "conn.h" /* conn_inst, chan */
#include "keys.h"
#include "omnicast/connector.h"
#include "store.h"
#include "transport.h"

/* Counters more than one module writes; each stage keeps its own in its
 * own state (campaign.h, dispatch.h, queue.h, conn.h). */
typedef struct omni_stats {
    uint64_t dead_letters;         /* stream.c and conv.c */
    uint64_t conversations_opened; /* conv.c */
    uint64_t sweep_repairs;        /* recipients the consistency sweep put back or declared */
    uint64_t webhook_by_type[4];   /* indexed by oc_event_type: reply, status, unsubscribe */
    double loop_lag_s;             /* how late the last 200 ms tick fired */
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

    int draining; /* SIGTERM: take no new work */
    int stopping; /* loop exit requested */

    struct event *kick_ev; /* zero-delay: flush outcomes, claims, queues */
    struct event *tick_ev; /* periodic: retries, schedule, reclaim */
    long long last_tick_us;
    int ready_notified;     /* READY=1 sent to systemd */
    struct event *drain_ev; /* drain_timeout_ms after SIGTERM */

    long long next_sweep_ms; /* sweep.c: the next round */
    int sweeping;            /* sweep.c: calls of the current round unanswered */
    long long next_watch_ms; /* sweep.c: the next look at omni:watch */
    int watching;            /* sweep.c: a watch.lua call unanswered */
    /* sweep.c: the one-time backfill of the campaign index (campaigns
     * created before it existed): 1 while a step is on its way, done once
     * campaigns:indexed is set */
    int indexing, indexed;
    int index_pending; /* HMGETs of the current step unanswered */
    int index_last;    /* the SCAN said 0: the last step */
    char index_cursor[24];

    /* each module's own state, opaque outside it */
    struct stream *stream;            /* stream.c: acks, dead letters, entry errors */
    struct queue *queue;              /* queue.c: the intake's read loop */
    struct campaign_state *campaigns; /* campaign.c: intake counters, the spec cache */
    struct dispatch *dispatch;        /* dispatch.c: chunks, claims, outcomes */
    struct conv_state *conv;          /* conv.c's inbound event queue */
    struct crm *crm;                  /* crm.c's forwarder, NULL without crm_webhook_url */

    char k_jobs[KEY_MAX], k_chunks[KEY_MAX], k_dead[KEY_MAX], k_retry[KEY_MAX], k_sched[KEY_MAX];
} omni;

void omni_kick(omni *o); /* run the deferred work soon */
/* The configured prefix + a key of the keyspace (keys.h); 0, or -1 when it
 * does not fit in len bytes. */
int omni_key(const omni *o, char *buf, size_t len, key_kind kind, const char *arg);
chan *omni_channel(omni *o, const char *name);
/* one failure on a channel for /metrics (omnicast_failures_total): reason
 * bounded to counters.h's list; an unknown channel counts nothing */
void omni_count_failure(omni *o, const char *channel, const char *reason);
/* one send accepted on a channel (omnicast_channel_sent_total) */
void omni_count_sent(omni *o, const char *channel);
#endif
