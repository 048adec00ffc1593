/* omnicastd: parse the command line and the config, build the context,
 * start the connectors, Redis, the transport (and the HTTP server), and run
 * the one event loop until a signal says drain and stop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef OMNI_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "campaign.h"
#include "conn.h"
#include "conv.h"
#include "crm.h"
#include "dispatch.h"
#include "http.h"
#include "log.h"
#include "omni.h"
#include "queue.h"
#include "registry.h"
#include "stream.h"
#include "sweep.h"

static void notify(const char *state)
{
#ifdef OMNI_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

static void finish_if_drained(omni *o)
{
    if (!o->draining || o->stopping)
        return;
    /* inbound events are written first while Redis is there to take them */
    int events = conv_pending(o) > 0 && store_is_ready(o->st);
    if (dispatch_held(o) == 0 && campaign_busy(o) == 0 && conn_inflight(o) == 0 && !events &&
        crm_drained(o)) {
        char sum[256];
        dispatch_drain_summary(o, sum, sizeof(sum));
        log_info("drained: %s; exiting", sum);
        o->stopping = 1;
        event_base_loopbreak(o->base);
    }
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    omni *o = arg;
    dispatch_on_kick(o);
    conv_flush(o);
    queue_maybe_read(o);
    finish_if_drained(o);
}

static void status_line(omni *o)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "STATUS=%s; redis %s; in flight %zu; held %zu; jobs %llu",
             o->draining ? "draining" : "running", store_is_ready(o->st) ? "up" : "down",
             conn_inflight(o), dispatch_held(o),
             (unsigned long long)campaign_counters_of(o)->jobs_accepted);
    notify(buf);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    omni *o = arg;
    long long now = omni_now_ms(), mono = omni_mono_us();
    /* a loop blocked by anything shows up as a late tick */
    if (o->last_tick_us) {
        long long late = mono - o->last_tick_us - 200000;
        o->stats.loop_lag_s = late > 0 ? (double)late / 1e6 : 0;
    }
    o->last_tick_us = mono;
    dispatch_tick(o);
    crm_pump(o);
    sweep_tick(o);
    watch_tick(o);
    if (queue_tick(o, now))
        status_line(o);
    notify("WATCHDOG=1");
    omni_kick(o);
}

static void on_store_ready(void *arg)
{
    omni *o = arg;
    queue_on_ready(o);
    crm_on_ready(o);
    if (!o->ready_notified) {
        o->ready_notified = 1;
        notify("READY=1");
    }
    omni_kick(o);
}

static void on_store_down(void *arg)
{
    omni *o = arg;
    queue_on_down(o);
    dispatch_on_down(o);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    omni *o = arg;
    char sum[256];
    dispatch_drain_summary(o, sum, sizeof(sum));
    log_warn("drain_timeout_ms passed with work in flight; exiting: %s", sum);
    o->stopping = 1;
    event_base_loopbreak(o->base);
}

static int load_config(const char *path, omni_config *cfg);

/* SIGHUP: read the configuration again. Connector credentials, rates and
 * limits change in place (transfers in flight finish undisturbed: requests
 * own copies of what they need); a file with errors, or one that adds,
 * removes or retypes connectors or channels, is refused and the running
 * configuration stays. */
static void reload(omni *o)
{
    notify("RELOADING=1");
    omni_config n;
    memset(&n, 0, sizeof(n));
    const char *why = NULL;
    if (load_config(o->cfg->path, &n) < 0)
        why = "the new configuration has errors (see above)";
    else
        why = conn_reload(o, &n);
    if (why) {
        log_error("reload refused, the running configuration stays: %s", why);
        config_free(&n);
        notify("READY=1");
        return;
    }
    log_setup(n.log_format, n.log_level, n.log_file);
    log_set_show_addresses(n.log_bodies);
    config_free(&n); /* now holds the old connector sections */
    log_info("reload: configuration applied to %zu connectors", o->n_conns);
    notify("READY=1");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    omni *o = arg;
    if (sig == SIGHUP) {
        log_info("SIGHUP: reopening the log and reloading the configuration");
        log_reopen();
        reload(o);
        return;
    }
    if (o->draining) {
        log_warn("second signal: stopping now");
        o->stopping = 1;
        event_base_loopbreak(o->base);
        return;
    }
    log_info("signal %d: draining (no new work; finishing what is in flight)", (int)sig);
    notify("STOPPING=1");
    o->draining = 1;
    o->drain_ev = evtimer_new(o->base, drain_timeout_cb, o);
    struct timeval tv = {o->cfg->drain_timeout_ms / 1000, (o->cfg->drain_timeout_ms % 1000) * 1000};
    evtimer_add(o->drain_ev, &tv);
    omni_kick(o);
}

/* ---- connector instances */

static const oc_connector *find_impl(void *ctx, const conf_connector *c, char *err, size_t err_len)
{
    (void)ctx;
    if (c->plugin)
        return registry_load_plugin(c->plugin, err, err_len);
    const oc_connector *impl = c->type ? registry_builtin(c->type) : NULL;
    if (!impl && c->type)
        snprintf(err, err_len, "unknown connector type '%s'", c->type);
    else if (!impl)
        snprintf(err, err_len, "no type");
    return impl;
}

static int load_config(const char *path, omni_config *cfg)
{
    conf_errors errs = {0};
    int rc = config_load_file(path, cfg, &errs);
    /* resolve even a file with errors, so every problem is reported at once */
    if (config_resolve(cfg, find_impl, NULL, &errs) < 0)
        rc = -1;
    if (cfg->tls_ca_file && access(cfg->tls_ca_file, R_OK) < 0) {
        conf_errors_add(&errs, "%s: tls_ca_file %s: %s", path, cfg->tls_ca_file, strerror(errno));
        rc = -1;
    }
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    conf_errors_free(&errs);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: omnicastd --config FILE [--check-config]\n"
               "       omnicastd --version\n"
               "Runs in the foreground; see docs/operations.md.\n");
}

int main(int argc, char **argv)
{
    const char *config_path = "/etc/omnicast/omnicast.conf";
    int check = 0;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"check-config", no_argument, 0, 'C'},
                                         {"version", no_argument, 0, 'V'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:CVh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_path = optarg;
            break;
        case 'C':
            check = 1;
            break;
        case 'V':
            printf("omnicastd %s\n", OMNI_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    /* before any secret is read: no core dump holds them, and other users
     * (and /proc/PID/mem readers without CAP_SYS_PTRACE) cannot attach */
    int undumpable = 0;
#ifdef __linux__
    undumpable = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
#endif
    omni_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (load_config(config_path, &cfg) < 0) {
        if (check) {
            /* the files too, in the same run (connectors are not started
             * from a section that did not load) */
            conf_errors errs = {0};
            config_check(&cfg, NULL, &errs);
            for (size_t i = 0; i < errs.n; i++)
                fprintf(stderr, "%s\n", errs.msgs[i]);
            conf_errors_free(&errs);
        }
        fprintf(stderr, "%s: configuration has errors\n", config_path);
        config_free(&cfg);
        return 1;
    }
    if (check) {
        /* what the daemon does at start short of Redis, the network and
         * the listening sockets: each connector's own init(), the files */
        conf_errors errs = {0};
        int bad = config_check(&cfg, &registry_host, &errs) < 0;
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        conf_errors_free(&errs);
        if (bad) {
            fprintf(stderr, "%s: configuration has errors\n", config_path);
            config_free(&cfg);
            return 1;
        }
        /* a connector's init() warns about what works but should not be
         * left so (a guessable token without token_secret, ...): counted */
        unsigned long warned = log_count(LOG_WARN);
        if (warned)
            printf("%s: OK (%zu connectors, %zu channels; %lu warning%s above)\n", config_path,
                   cfg.n_connectors, cfg.n_channels, warned, warned == 1 ? "" : "s");
        else
            printf("%s: OK (%zu connectors, %zu channels)\n", config_path, cfg.n_connectors,
                   cfg.n_channels);
        config_free(&cfg);
        return 0;
    }
    if (log_setup(cfg.log_format, cfg.log_level, cfg.log_file) < 0) {
        fprintf(stderr, "cannot open log %s\n", cfg.log_file ? cfg.log_file : "stderr");
        config_free(&cfg);
        return 1;
    }
    log_set_show_addresses(cfg.log_bodies);
    if (undumpable)
        log_debug("core dumps disabled (PR_SET_DUMPABLE 0)");
    else
        log_warn("core dumps not disabled: secrets may end up in a core file");
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)(omni_mono_us() ^ getpid()));

    omni o;
    memset(&o, 0, sizeof(o));
    o.cfg = &cfg;
    /* epoll with a change list: an event deleted and added again within one
     * loop turn (hiredis re-arms its read event after each reply, evhttp
     * enables and disables per request) costs no epoll_ctl at all. Safe
     * here: the daemon never dup()s a descriptor it watches. */
    struct event_config *ecfg = event_config_new();
    if (ecfg)
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    o.base = ecfg ? event_base_new_with_config(ecfg) : NULL;
    if (ecfg)
        event_config_free(ecfg);
    if (!o.base)
        o.base = event_base_new();
    omni_key(&o, o.k_jobs, KEY_MAX, KEY_JOBS, NULL);
    omni_key(&o, o.k_chunks, KEY_MAX, KEY_CHUNKS, NULL);
    omni_key(&o, o.k_dead, KEY_MAX, KEY_DEAD, NULL);
    omni_key(&o, o.k_retry, KEY_MAX, KEY_RETRY, NULL);
    omni_key(&o, o.k_sched, KEY_MAX, KEY_SCHEDULED, NULL);
    snprintf(o.owner, sizeof(o.owner), "%s/%x.%llx", cfg.consumer, (unsigned)getpid(),
             (unsigned long long)omni_now_ms());

    int rc = 1;
    http_server *http = NULL;
    if (conn_start_all(&o) < 0)
        goto out;

    transport_opts topts = {.max_total_connections = cfg.max_total_connections,
                            .max_host_connections = cfg.max_host_connections,
                            .ca_file = cfg.tls_ca_file,
                            .keepalive_idle_ms = cfg.keepalive_idle_ms,
                            .smtp_curl = !cfg.smtp_native};
    o.tp = transport_new(o.base, &topts);
    char err[256];
    store_events sev = {.ready = on_store_ready, .down = on_store_down, .arg = &o};
    o.st = store_new(o.base, cfg.redis, cfg.redis_timeout_ms, cfg.block_ms, &sev, err, sizeof(err));
    if (o.st && store_set_auth(o.st, cfg.redis_username, cfg.redis_password) < 0) {
        snprintf(err, sizeof(err), "out of memory");
        store_free(o.st);
        o.st = NULL;
    }
    if (o.st && cfg.redis_sentinels) {
        /* the primary's address comes from the sentinels */
        sentinel *sn = sentinel_new(o.base, cfg.redis_sentinels, cfg.redis_sentinel_master,
                                    cfg.redis_sentinel_username, cfg.redis_sentinel_password,
                                    cfg.redis_timeout_ms < 2000 ? cfg.redis_timeout_ms : 2000, err,
                                    sizeof(err));
        if (!sn) {
            store_free(o.st);
            o.st = NULL;
        } else {
            store_set_sentinel(o.st, sn);
        }
    }
    if (o.st && cfg.redis_wait_replicas > 0)
        store_set_claims_slack(o.st, cfg.redis_wait_timeout_ms);
    const redis_tls_opts rtls = {.ca_file = cfg.redis_tls_ca_file,
                                 .cert_file = cfg.redis_tls_cert_file,
                                 .key_file = cfg.redis_tls_key_file,
                                 .server_name = cfg.redis_tls_server_name};
    if (o.st && store_set_tls(o.st, &rtls, err, sizeof(err)) < 0) {
        store_free(o.st);
        o.st = NULL;
    }
    /* the stages, wired: the intake hands jobs to campaign.c and chunks to
     * dispatch.c, and asks each whether it can take more */
    const queue_handlers qh = {.on_job = campaign_handle_job,
                               .on_chunk = dispatch_chunk,
                               .held_entries = dispatch_held_entries,
                               .can_take_jobs = campaign_can_take,
                               .can_take_chunks = dispatch_can_take};
    if (!o.tp || !o.st || stream_init(&o) < 0 || queue_init(&o, &qh) < 0 ||
        campaign_init(&o, dispatch_campaign_state) < 0 || dispatch_init(&o) < 0 ||
        conv_init(&o) < 0) {
        log_error("startup failed: %s", o.st ? "transport" : err);
        goto out;
    }
    if (crm_init(&o, err, sizeof(err)) < 0) {
        log_error("crm: %s", err);
        goto out;
    }
    if (cfg.n_http_listen) {
        http = http_start(&o, err, sizeof(err));
        if (!http) {
            log_error("http: %s", err);
            goto out;
        }
    }
    o.kick_ev = event_new(o.base, -1, 0, kick_cb, &o);
    o.tick_ev = event_new(o.base, -1, EV_PERSIST, tick_cb, &o);
    struct timeval tick = {0, 200000};
    event_add(o.tick_ev, &tick);
    struct event *sigs[4];
    int signos[4] = {SIGTERM, SIGINT, SIGHUP, 0};
    for (int i = 0; signos[i]; i++) {
        sigs[i] = evsignal_new(o.base, signos[i], on_signal, &o);
        event_add(sigs[i], NULL);
    }
    log_info("omnicastd %s starting: consumer %s, redis %s, prefix %s", OMNI_VERSION, cfg.consumer,
             cfg.redis, cfg.prefix);
    store_start(o.st);
    event_base_dispatch(o.base);
    rc = 0;
    for (int i = 0; signos[i]; i++)
        event_free(sigs[i]);
    log_info("omnicastd stopped");

out:
    /* Redis first: its pending callbacks run (with no reply) while every
     * module they touch is still there */
    if (o.st)
        store_free(o.st);
    o.st = NULL;
    http_stop(http);
    dispatch_free(&o);
    conv_free(&o);
    crm_free(&o);
    campaign_free(&o);
    queue_free(&o);
    stream_free(&o);
    if (o.tp)
        transport_free(o.tp);
    conn_stop_all(&o);
    if (o.kick_ev)
        event_free(o.kick_ev);
    if (o.tick_ev)
        event_free(o.tick_ev);
    if (o.drain_ev)
        event_free(o.drain_ev);
    event_base_free(o.base);
    config_free(&cfg);
    return rc;
}
