/* /metrics: the counters the daemon keeps, per connector where it matters,
 * in Prometheus text format. Formatting only; the counting happens where
 * the events happen. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>

#include "campaign.h"
#include "conn.h"
#include "crm.h"
#include "dispatch.h"
#include "queue.h"

static void put(oc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fmt's text appended to b, however long (nothing is cut) */
static void put(oc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0 || oc_buf_reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void metrics_render(omni *o, oc_buf *b)
{
    const omni_stats *s = &o->stats;
    const campaign_counters *jc = campaign_counters_of(o);
    const dispatch_counters *dc = dispatch_counters_of(o);
    put(b, "# HELP omnicast_jobs_total Jobs read from the queue, by result.\n"
           "# TYPE omnicast_jobs_total counter\n");
    put(b, "omnicast_jobs_total{result=\"accepted\"} %llu\n",
        (unsigned long long)jc->jobs_accepted);
    put(b, "omnicast_jobs_total{result=\"rejected\"} %llu\n",
        (unsigned long long)(jc->jobs_rejected + queue_jobs_rejected(o)));
    put(b, "omnicast_jobs_total{result=\"duplicate\"} %llu\n",
        (unsigned long long)jc->jobs_duplicate);

    put(b, "# HELP omnicast_messages_total Send outcomes by connector instance.\n"
           "# TYPE omnicast_messages_total counter\n");
    for (size_t i = 0; i < o->n_conns; i++) {
        const conn_inst *c = &o->conns[i];
        const char *n = c->conf->name;
        put(b, "omnicast_messages_total{connector=\"%s\",outcome=\"sent\"} %llu\n", n,
            (unsigned long long)c->n_sent);
        put(b, "omnicast_messages_total{connector=\"%s\",outcome=\"failed\"} %llu\n", n,
            (unsigned long long)c->n_failed);
        put(b, "omnicast_messages_total{connector=\"%s\",outcome=\"retry\"} %llu\n", n,
            (unsigned long long)c->n_retry);
        put(b, "omnicast_messages_total{connector=\"%s\",outcome=\"uncertain\"} %llu\n", n,
            (unsigned long long)c->n_uncertain);
    }
    if (o->tp) {
        unsigned long long nat, nat_tls, curl;
        transport_counts(o->tp, &nat, &nat_tls, &curl);
        put(b,
            "# HELP omnicast_transfers_total Outbound transfers taken, by client: the native "
            "HTTP/1.1 client over plain http or TLS, the native HTTP/2 client (native_h2), "
            "libcurl (proxies, native = off, SMTP with smtp_client = curl), or the native "
            "SMTP client (native_smtp).\n"
            "# TYPE omnicast_transfers_total counter\n"
            "omnicast_transfers_total{client=\"native\"} %llu\n"
            "omnicast_transfers_total{client=\"native_tls\"} %llu\n"
            "omnicast_transfers_total{client=\"curl\"} %llu\n"
            "omnicast_transfers_total{client=\"native_smtp\"} %llu\n"
            "omnicast_transfers_total{client=\"native_h2\"} %llu\n",
            nat, nat_tls, curl, transport_native_smtp(o->tp), transport_native_h2(o->tp));
    }
    put(b, "# HELP omnicast_channel_sent_total Sends the provider accepted, by channel.\n"
           "# TYPE omnicast_channel_sent_total counter\n");
    for (size_t i = 0; i < o->n_chans; i++)
        put(b, "omnicast_channel_sent_total{channel=\"%s\"} %llu\n", o->chans[i].name,
            o->chans[i].n_sent);
    put(b, "# HELP omnicast_failures_total Failures this process recorded (final or moving to "
           "the next channel, and failed statuses after a send), by channel and reason (the "
           "reasons of docs/delivery.md, other for the rest).\n"
           "# TYPE omnicast_failures_total counter\n");
    for (size_t i = 0; i < o->n_chans; i++)
        for (int k = 0; k < COUNTERS_REASONS; k++)
            if (o->chans[i].n_fail[k])
                put(b, "omnicast_failures_total{channel=\"%s\",reason=\"%s\"} %llu\n",
                    o->chans[i].name, counters_reason_name(k), o->chans[i].n_fail[k]);
    put(b, "# HELP omnicast_inflight Transfers in flight.\n# TYPE omnicast_inflight gauge\n");
    for (size_t i = 0; i < o->n_conns; i++)
        put(b, "omnicast_inflight{connector=\"%s\"} %d\n", o->conns[i].conf->name,
            o->conns[i].inflight);
    put(b, "# HELP omnicast_queued Claimed messages waiting for a token or a slot.\n"
           "# TYPE omnicast_queued gauge\n");
    for (size_t i = 0; i < o->n_conns; i++)
        put(b, "omnicast_queued{connector=\"%s\"} %zu\n", o->conns[i].conf->name,
            o->conns[i].queued);
    put(b, "# HELP omnicast_token_bucket_waits_total Times a send waited for a token.\n"
           "# TYPE omnicast_token_bucket_waits_total counter\n");
    for (size_t i = 0; i < o->n_conns; i++)
        put(b, "omnicast_token_bucket_waits_total{connector=\"%s\"} %llu\n", o->conns[i].conf->name,
            (unsigned long long)o->conns[i].n_waits);
    put(b, "# HELP omnicast_throttled_total Times a provider asked a connector to slow down.\n"
           "# TYPE omnicast_throttled_total counter\n");
    for (size_t i = 0; i < o->n_conns; i++)
        put(b, "omnicast_throttled_total{connector=\"%s\"} %llu\n", o->conns[i].conf->name,
            (unsigned long long)o->conns[i].n_throttled);
    put(b, "# HELP omnicast_webhook_errors_total Problems a provider reported in a webhook about "
           "none of our messages (WhatsApp value.errors), per connector instance.\n"
           "# TYPE omnicast_webhook_errors_total counter\n");
    for (size_t i = 0; i < o->n_conns; i++)
        put(b, "omnicast_webhook_errors_total{connector=\"%s\"} %llu\n", o->conns[i].conf->name,
            (unsigned long long)o->conns[i].n_webhook_errors);
    put(b, "# HELP omnicast_connector_halted 1 while the instance is halted (the provider "
           "refused the account; see omnicast connector resume).\n"
           "# TYPE omnicast_connector_halted gauge\n");
    for (size_t i = 0; i < o->n_conns; i++)
        put(b, "omnicast_connector_halted{connector=\"%s\"} %d\n", o->conns[i].conf->name,
            o->conns[i].halted ? 1 : 0);
    put(b, "# HELP omnicast_provider_latency_seconds Time from submit to completion.\n"
           "# TYPE omnicast_provider_latency_seconds histogram\n");
    for (size_t i = 0; i < o->n_conns; i++) {
        const conn_inst *c = &o->conns[i];
        unsigned long long cum = 0;
        for (int k = 0; k < CONN_LAT_BUCKETS; k++) {
            cum += c->lat_buckets[k];
            put(b, "omnicast_provider_latency_seconds_bucket{connector=\"%s\",le=\"%s\"} %llu\n",
                c->conf->name, conn_lat_table[k].label, cum);
        }
        put(b, "omnicast_provider_latency_seconds_sum{connector=\"%s\"} %.6f\n", c->conf->name,
            c->lat_sum_s);
        put(b, "omnicast_provider_latency_seconds_count{connector=\"%s\"} %llu\n", c->conf->name,
            cum);
    }
    put(b, "# TYPE omnicast_held_recipients gauge\nomnicast_held_recipients %zu\n",
        dispatch_held(o));
    put(b, "# TYPE omnicast_chunks_done_total counter\nomnicast_chunks_done_total %llu\n",
        (unsigned long long)dc->chunks_done);
    put(b, "# TYPE omnicast_retries_taken_total counter\nomnicast_retries_taken_total %llu\n",
        (unsigned long long)dc->retries_taken);
    put(b, "# TYPE omnicast_dead_letters_total counter\nomnicast_dead_letters_total %llu\n",
        (unsigned long long)s->dead_letters);
    put(b, "# HELP omnicast_webhook_events_total Events from provider webhooks, by type.\n"
           "# TYPE omnicast_webhook_events_total counter\n");
    put(b, "omnicast_webhook_events_total{type=\"reply\"} %llu\n",
        (unsigned long long)s->webhook_by_type[OC_EV_REPLY]);
    put(b, "omnicast_webhook_events_total{type=\"status\"} %llu\n",
        (unsigned long long)s->webhook_by_type[OC_EV_STATUS]);
    put(b, "omnicast_webhook_events_total{type=\"unsubscribe\"} %llu\n",
        (unsigned long long)s->webhook_by_type[OC_EV_UNSUBSCRIBE]);
    put(b,
        "# HELP omnicast_event_loop_lag_seconds How late the last 200 ms tick ran.\n"
        "# TYPE omnicast_event_loop_lag_seconds gauge\nomnicast_event_loop_lag_seconds %.6f\n",
        s->loop_lag_s);
    put(b,
        "# TYPE omnicast_conversations_opened_total counter\n"
        "omnicast_conversations_opened_total %llu\n",
        (unsigned long long)s->conversations_opened);
    put(b, "# TYPE omnicast_sweep_repairs_total counter\nomnicast_sweep_repairs_total %llu\n",
        (unsigned long long)s->sweep_repairs);
    put(b, "# TYPE omnicast_redis_up gauge\nomnicast_redis_up %d\n", store_is_ready(o->st));
    put(b, "# TYPE omnicast_redis_reconnects_total counter\nomnicast_redis_reconnects_total %lu\n",
        store_reconnects(o->st));
    put(b,
        "# HELP omnicast_redis_wait_short_total Claim batches not sent because fewer than "
        "redis_wait_replicas replicas acknowledged them (WAIT).\n"
        "# TYPE omnicast_redis_wait_short_total counter\nomnicast_redis_wait_short_total %llu\n",
        (unsigned long long)dc->wait_short);
    put(b, "# TYPE omnicast_draining gauge\nomnicast_draining %d\n", o->draining);
    crm_stats cs;
    if (crm_stats_of(o, &cs) == 0) {
        put(b,
            "# HELP omnicast_crm_posted_total CRM feed posts the CRM accepted (2xx).\n"
            "# TYPE omnicast_crm_posted_total counter\nomnicast_crm_posted_total %llu\n",
            (unsigned long long)cs.posted);
        put(b,
            "# HELP omnicast_crm_failed_total CRM feed posts not accepted (posted again).\n"
            "# TYPE omnicast_crm_failed_total counter\nomnicast_crm_failed_total %llu\n",
            (unsigned long long)cs.failed);
        put(b,
            "# HELP omnicast_crm_held CRM events in memory: in flight or waiting behind an "
            "earlier event of their conversation.\n"
            "# TYPE omnicast_crm_held gauge\nomnicast_crm_held %zu\n",
            cs.held);
        put(b,
            "# HELP omnicast_crm_lease 1 when this daemon holds the CRM feed lease (posts the "
            "feed).\n"
            "# TYPE omnicast_crm_lease gauge\nomnicast_crm_lease %d\n",
            cs.holder);
    }
}
