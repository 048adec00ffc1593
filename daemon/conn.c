/* Connector instances: start, reload, stop, the channels that map to them,
 * the address-kind rule, and the latency histogram. */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "log.h"
#include "omni.h"
#include "registry.h"

const conn_lat_bucket conn_lat_table[CONN_LAT_BUCKETS] = {
    {0.005, "0.005"}, {0.01, "0.01"}, {0.025, "0.025"}, {0.05, "0.05"},
    {0.1, "0.1"},     {0.25, "0.25"}, {0.5, "0.5"},     {1, "1"},
    {2.5, "2.5"},     {5, "5"},       {10, "10"},       {1e300, "+Inf"}};

static const char *cfg_get(void *ctx, const char *key)
{
    return conf_connector_get(ctx, key);
}

static const char *cfg_get_nth(void *ctx, const char *key, size_t n)
{
    return conf_connector_get_nth(ctx, key, n);
}

void conn_apply_rates(omni *o, conn_inst *ci)
{
    const conf_connector *c = ci->conf;
    ci->max_inflight = c->max_inflight > 0 ? c->max_inflight : 64;
    bucket_set(&ci->rate, c->rate_per_s, c->burst);
    /* claims run ahead of sends by at most two windows, and by no more
     * than a quarter of a lease at the configured rate */
    ci->claim_window = (size_t)ci->max_inflight * 2;
    if (c->rate_per_s > 0) {
        double w = c->rate_per_s * o->cfg->lease_ms / 4000.0;
        if (w < 1)
            w = 1;
        if ((size_t)w < ci->claim_window)
            ci->claim_window = (size_t)w;
    }
}

int conn_start_all(omni *o)
{
    omni_config *cfg = o->cfg;
    o->conns = calloc(cfg->n_connectors ? cfg->n_connectors : 1, sizeof(*o->conns));
    if (!o->conns)
        return -1;
    for (size_t i = 0; i < cfg->n_connectors; i++) {
        conf_connector *c = &cfg->connectors[i];
        conn_inst *ci = &o->conns[i];
        ci->o = o;
        ci->conf = c;
        ci->impl = c->impl;
        ci->addr_kind = addr_kind_for_type(c->impl->type);
        bucket_init(&ci->rate, c->rate_per_s, c->burst, omni_mono_us());
        conn_apply_rates(o, ci);
        TAILQ_INIT(&ci->active);
        oc_config view = {.ctx = c, .name = c->name, .get = cfg_get, .get_nth = cfg_get_nth};
        char err[256] = "";
        if (c->impl->init(&view, &registry_host, &ci->inst, err, sizeof(err)) < 0) {
            log_error("connector %s (%s): %s", c->name, c->impl->type, err);
            return -1;
        }
        o->n_conns = i + 1;
        log_info("connector %s: type %s, rate %g/s, max_inflight %d", c->name, c->impl->type,
                 c->rate_per_s, ci->max_inflight);
    }
    o->chans = calloc(cfg->n_channels ? cfg->n_channels : 1, sizeof(*o->chans));
    if (!o->chans)
        return -1;
    for (size_t i = 0; i < cfg->n_channels; i++) {
        o->chans[i].name = cfg->channels[i].name;
        o->chans[i].ci = conn_find(o, cfg->channels[i].connector);
        if (!o->chans[i].ci) {
            log_error("channel %s: no connector instance %s", cfg->channels[i].name,
                      cfg->channels[i].connector);
            return -1;
        }
        o->chans[i].addr_kind = addr_channel_kind(o->chans[i].ci->impl->type, o->chans[i].name);
        o->n_chans = i + 1;
    }
    return 0;
}

void conn_stop_all(omni *o)
{
    for (size_t i = 0; i < o->n_conns; i++) {
        conn_inst *ci = &o->conns[i];
        if (ci->timer)
            event_free(ci->timer);
        if (ci->impl->free && ci->inst)
            ci->impl->free(ci->inst);
    }
    free(o->conns);
    free(o->chans);
    o->conns = NULL;
    o->chans = NULL;
    o->n_conns = o->n_chans = 0;
}

const char *conn_reload(omni *o, omni_config *n)
{
    const char *why = NULL;
    if (n->n_connectors != o->cfg->n_connectors || n->n_channels != o->cfg->n_channels) {
        why = "connectors or channels were added or removed: restart to apply";
    } else {
        for (size_t i = 0; i < n->n_connectors && !why; i++)
            if (strcmp(n->connectors[i].name, o->cfg->connectors[i].name) ||
                n->connectors[i].impl != o->cfg->connectors[i].impl)
                why = "a connector was renamed or changed type: restart to apply";
        for (size_t i = 0; i < n->n_channels && !why; i++)
            if (strcmp(n->channels[i].name, o->cfg->channels[i].name) ||
                strcmp(n->channels[i].connector, o->cfg->channels[i].connector))
                why = "the channel mapping changed: restart to apply";
    }
    if (why)
        return why;
    void *fresh[o->n_conns ? o->n_conns : 1];
    memset(fresh, 0, sizeof(fresh));
    for (size_t i = 0; !why && i < o->n_conns; i++) {
        conf_connector *c = &n->connectors[i];
        oc_config view = {.ctx = c, .name = c->name, .get = cfg_get, .get_nth = cfg_get_nth};
        char err[256] = "";
        if (c->impl->init(&view, &registry_host, &fresh[i], err, sizeof(err)) < 0) {
            log_error("reload: connector %s: %s", c->name, err);
            why = "a connector refused its new configuration";
        }
    }
    if (why) {
        for (size_t i = 0; i < o->n_conns; i++)
            if (fresh[i])
                o->conns[i].impl->free(fresh[i]);
        return why;
    }
    for (size_t i = 0; i < o->n_conns; i++) {
        conn_inst *ci = &o->conns[i];
        /* swap the sections: ci->conf keeps pointing at the live config;
         * n now holds the old sections, for the caller to free */
        conf_connector tmp = o->cfg->connectors[i];
        o->cfg->connectors[i] = n->connectors[i];
        n->connectors[i] = tmp;
        ci->impl->free(ci->inst);
        ci->inst = fresh[i];
        conn_apply_rates(o, ci);
    }
    return NULL;
}

void conn_observe_latency(conn_inst *ci, long long latency_us)
{
    double s = (double)latency_us / 1e6;
    ci->lat_sum_s += s;
    for (int i = 0; i < CONN_LAT_BUCKETS; i++)
        if (s <= conn_lat_table[i].le) {
            ci->lat_buckets[i]++;
            break;
        }
}

conn_inst *conn_find(omni *o, const char *name)
{
    for (size_t i = 0; i < o->n_conns; i++)
        if (strcmp(o->conns[i].conf->name, name) == 0)
            return &o->conns[i];
    return NULL;
}

size_t conn_inflight(omni *o)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n_conns; i++)
        n += (size_t)o->conns[i].inflight;
    return n;
}

void conn_activate(conn_inst *ci, camp_queue *cq)
{
    if (cq->on_list)
        return;
    cq->on_list = 1;
    cq->credit = cq->weight;
    TAILQ_INSERT_TAIL(&ci->active, cq, link);
    ci->n_active++;
}

void conn_deactivate(conn_inst *ci, camp_queue *cq)
{
    if (!cq->on_list)
        return;
    TAILQ_REMOVE(&ci->active, cq, link);
    cq->on_list = 0;
    ci->n_active--;
}

/* the next campaign's turn */
static void rotate(conn_inst *ci, camp_queue *cq)
{
    TAILQ_REMOVE(&ci->active, cq, link);
    TAILQ_INSERT_TAIL(&ci->active, cq, link);
    cq->credit = cq->weight;
}

static void pump_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_inst *ci = arg;
    omni_kick(ci->o);
}

void conn_pump(conn_inst *ci)
{
    if (ci->o->draining || !ci->take)
        return; /* nothing new goes on the wire; dispatch gives it back */
    while (ci->queued && ci->inflight < ci->max_inflight && !TAILQ_EMPTY(&ci->active)) {
        long long now = omni_mono_us();
        long long wait = bucket_take(&ci->rate, now);
        camp_queue *cq = NULL;
        if (wait == 0) {
            /* whose turn: a campaign paced by its own rate yields it */
            long long cwait = 0;
            for (size_t turns = ci->n_active; turns > 0 && !cq; turns--) {
                camp_queue *h = TAILQ_FIRST(&ci->active);
                long long w = h->rate && !*h->stopped ? bucket_take(h->rate, now) : 0;
                if (w == 0) {
                    cq = h;
                } else {
                    if (!cwait || w < cwait)
                        cwait = w;
                    rotate(ci, h);
                }
            }
            if (!cq) {
                if (ci->rate.rate > 0)
                    ci->rate.tokens += 1.0; /* give the connector's token back */
                wait = cwait;
            }
        }
        if (wait > 0) {
            ci->n_waits++;
            if (!ci->timer)
                ci->timer = evtimer_new(ci->o->base, pump_timer, ci);
            struct timeval tv = {wait / 1000000, wait % 1000000};
            evtimer_add(ci->timer, &tv);
            return;
        }
        if (!ci->take(ci, cq, now)) {
            if (ci->rate.rate > 0)
                ci->rate.tokens += 1.0; /* not sent: the token goes back */
            continue;
        }
        if (cq->on_list && --cq->credit <= 0)
            rotate(ci, cq);
    }
}
