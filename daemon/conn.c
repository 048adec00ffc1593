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
        for (size_t k = 0; k < ci->n_held; k++)
            free(ci->held[k]);
        free(ci->held);
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

/* ---- halt and resume */

/* An operational event on omni:events (capped): type, the instance, and
 * field pairs. */
static void event_emit(conn_inst *ci, const char *type, const char *k1, const char *v1,
                       const char *k2, const char *v2)
{
    omni *o = ci->o;
    char key[KEY_MAX], at[24];
    if (omni_key(o, key, sizeof(key), KEY_EVENTS, NULL) < 0)
        return;
    snprintf(at, sizeof(at), "%lld", omni_now_ms());
    const char *argv[] = {
        "XADD",         key,  "MAXLEN", "~",        "10000",  "*", "type", type, "connector",
        ci->conf->name, "at", at,       "instance", o->owner, k1,  v1,     k2,   v2};
    int argc = k2 ? 18 : k1 ? 16 : 14;
    if (store_cmdv(o->st, STORE_CMD, NULL, NULL, argc, argv, NULL) < 0)
        log_warn("connector %s: the %s event could not be written (Redis unavailable)",
                 ci->conf->name, type);
}

static void arm_probe(conn_inst *ci)
{
    ci->probing = 0;
    ci->probe_at_us = omni_mono_us() + (long long)ci->conf->halt_probe_s * 1000000;
    if (!ci->timer)
        ci->timer = evtimer_new(ci->o->base, pump_timer, ci);
    struct timeval tv = {ci->conf->halt_probe_s, 0};
    if (ci->timer)
        evtimer_add(ci->timer, &tv);
}

void conn_halt(conn_inst *ci, const char *reason, const char *detail)
{
    if (ci->halted) {
        if (ci->probing) {
            log_warn("connector %s: the probe was refused (%s): halted %d s more", ci->conf->name,
                     reason, ci->conf->halt_probe_s);
            arm_probe(ci);
        }
        return;
    }
    ci->halted = 1;
    ci->n_halts++;
    ci->halted_at_ms = omni_now_ms();
    snprintf(ci->halt_reason, sizeof(ci->halt_reason), "%s", reason ? reason : "");
    arm_probe(ci);
    log_error("connector %s: halted: %s (%s): nothing is sent through it until `omnicast "
              "connector resume %s`, POST /v1/connectors/%s/resume, or a probe in %d s succeeds",
              ci->conf->name, ci->halt_reason, detail ? detail : "", ci->conf->name, ci->conf->name,
              ci->conf->halt_probe_s);
    event_emit(ci, "connector.halted", "reason", ci->halt_reason, "detail", detail ? detail : "");
}

void conn_resume(conn_inst *ci, const char *by)
{
    if (!ci->halted)
        return;
    omni *o = ci->o;
    ci->halted = 0;
    ci->probing = 0;
    log_info("connector %s: resumed (%s) after %lld s halted (%s)", ci->conf->name, by,
             (omni_now_ms() - ci->halted_at_ms) / 1000, ci->halt_reason);
    event_emit(ci, "connector.resumed", "by", by, "reason", ci->halt_reason);
    /* what was given back while halted is due now, not at the probe time */
    char now[24];
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    for (size_t k = 0; k < ci->n_held; k++) {
        store_cmd(o->st, NULL, NULL, "ZADD", o->k_retry, "XX", now, ci->held[k], NULL);
        free(ci->held[k]);
    }
    ci->n_held = 0;
    omni_kick(o);
}

int conn_probe_due(const conn_inst *ci, long long now_us)
{
    return ci->halted && !ci->probing && now_us >= ci->probe_at_us;
}

#define HELD_MAX 100000 /* beyond this, the rest come back at the probe time */

void conn_hold_member(conn_inst *ci, const char *member)
{
    if (ci->n_held >= HELD_MAX)
        return;
    if (ci->n_held == ci->cap_held) {
        size_t cap = ci->cap_held ? ci->cap_held * 2 : 64;
        char **p = realloc(ci->held, cap * sizeof(*p));
        if (!p)
            return;
        ci->held = p;
        ci->cap_held = cap;
    }
    char *m = strdup(member);
    if (m)
        ci->held[ci->n_held++] = m;
}

static void resume_polled(redisReply *rep, void *arg)
{
    conn_inst *ci = arg;
    ci->polling = 0;
    if (!rep || rep->type != REDIS_REPLY_STRING || !ci->halted)
        return;
    long long at = strtoll(rep->str, NULL, 10);
    if (at >= ci->halted_at_ms)
        conn_resume(ci, "operator");
}

void conn_halt_poll(omni *o)
{
    for (size_t i = 0; i < o->n_conns; i++) {
        conn_inst *ci = &o->conns[i];
        char key[KEY_MAX];
        if (!ci->halted || ci->polling || !store_is_ready(o->st) ||
            omni_key(o, key, sizeof(key), KEY_CONNECTOR, ci->conf->name) < 0)
            continue;
        ci->polling = 1;
        if (store_cmd(o->st, resume_polled, ci, "HGET", key, "resume", NULL) < 0)
            ci->polling = 0;
    }
}

size_t conn_halted(omni *o)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n_conns; i++)
        n += o->conns[i].halted != 0;
    return n;
}

/* Halted: one probe send once halt_probe_s has passed, nothing else. */
static void pump_halted(conn_inst *ci)
{
    long long now = omni_mono_us();
    if (!conn_probe_due(ci, now) || ci->inflight || !ci->queued || TAILQ_EMPTY(&ci->active))
        return;
    camp_queue *cq = TAILQ_FIRST(&ci->active);
    ci->take(ci, cq, now); /* dispatch marks the send it starts as the probe */
}

void conn_pump(conn_inst *ci)
{
    if (ci->o->draining || !ci->take)
        return; /* nothing new goes on the wire; dispatch gives it back */
    if (ci->halted) {
        pump_halted(ci);
        return;
    }
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
