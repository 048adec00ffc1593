/* Redis connections for the daemon: hiredis async on libevent, three
 * connections (commands, blocking reads, claims), reconnect with capped backoff,
 * a deadline watchdog for a Redis that stops answering, Lua scripts loaded
 * on every connect and called by their SHA1. */
#include "store.h"

#include <errno.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rconn.h"
#include "redistls.h"
#include "scripts.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static const char *const script_names[SCRIPT_COUNT] = {"create",  "claim",   "outcome", "take",
                                                       "control", "inbound", "sweep",   "release",
                                                       "next",    "watch",   "resend",  "crmlease"};

/* A connection is either hiredis's own (redis://, unix:) or an rconn
 * (rediss://: TLS on a bufferevent, hiredis only parsing); the link_*
 * functions below are the only places that tell them apart. */
typedef struct store_conn {
    store *st;
    redisAsyncContext *ac; /* plain: hiredis async */
    rconn *rc;             /* TLS */
    int which;
    int connected;
    int authed;            /* AUTH answered OK (or no AUTH configured) */
    long pending;          /* commands sent, not yet answered */
    long long progress_ms; /* last reply, or when pending went 0 -> 1 */
} store_conn;

struct store {
    struct event_base *base;
    redis_target t;
    char name[300];        /* t as host:port, for log lines */
    char *user;            /* AUTH user (ACL), or NULL for the default user */
    char *password;        /* AUTH password, or NULL: no AUTH */
    SSL_CTX *tls;          /* rediss://: built by store_set_tls */
    char *tls_server_name; /* name verified and sent as SNI, or NULL: the host */
    int timeout_ms;
    int block_ms;
    int claims_slack_ms; /* WAIT's own timeout on the claims connection */
    sentinel *sn;        /* NULL: t is the primary */
    int primary_known;   /* with sn: t holds what a sentinel named */
    int discovering;     /* with sn: the sentinels are being asked */
    int role_ok;         /* with sn: ROLE answered master on this connect */
    store_events ev;
    store_conn conn[STORE_NCONN];
    struct event *retry_ev;
    struct event *watch_ev;
    int backoff_ms;
    int ready;
    int scripts_pending;
    int started;
    unsigned long reconnects;
    const char *script_src[SCRIPT_COUNT];
    char sha[SCRIPT_COUNT][41];
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

store *store_new(struct event_base *base, const char *url, int timeout_ms, int block_ms,
                 const store_events *ev, char *err, size_t err_len)
{
    store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    char why[256];
    if (redis_url_parse(url, &s->t, why, sizeof(why)) < 0) {
        snprintf(err, err_len, "bad redis URL: %s", why);
        free(s);
        return NULL;
    }
    redis_target_name(&s->t, s->name, sizeof(s->name));
    for (int i = 0; i < SCRIPT_COUNT; i++) {
        for (const script_src *src = scripts_src; src->name; src++)
            if (strcmp(src->name, script_names[i]) == 0)
                s->script_src[i] = src->src;
        if (!s->script_src[i]) {
            snprintf(err, err_len, "embedded script %s.lua missing", script_names[i]);
            free(s);
            return NULL;
        }
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)s->script_src[i], strlen(s->script_src[i]), md);
        for (int j = 0; j < SHA_DIGEST_LENGTH; j++)
            sprintf(s->sha[i] + 2 * j, "%02x", md[j]);
    }
    s->base = base;
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    s->block_ms = block_ms;
    s->ev = *ev;
    s->backoff_ms = BACKOFF_MIN_MS;
    for (int i = 0; i < STORE_NCONN; i++) {
        s->conn[i].st = s;
        s->conn[i].which = i;
    }
    return s;
}

static void connect_all(store *s);
static void teardown(store *s, const char *why);
static void check_ready(store *s);
static void schedule_reconnect(store *s);
static int send_argv(store_conn *c, store_cb cb, void *arg, int argc, const char **argv,
                     const size_t *lens);

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_all(arg);
}

static void schedule_reconnect(store *s)
{
    if (!s->retry_ev)
        s->retry_ev = evtimer_new(s->base, retry_cb, s);
    if (evtimer_pending(s->retry_ev, NULL))
        return;
    struct timeval tv = {s->backoff_ms / 1000, (s->backoff_ms % 1000) * 1000};
    evtimer_add(s->retry_ev, &tv);
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

/* Every reply passes through here so the watchdog sees progress. */
typedef struct pending_cb {
    store_conn *c;
    store_cb cb;
    void *arg;
} pending_cb;

/* ---- Sentinel: target selection, the ROLE check, answers that mean the
 * address is no longer the primary */

static void connect_conns(store *s);

/* With sentinels: READONLY (a replica now), MASTERDOWN (a replica that
 * lost its primary) or LOADING (not serving yet) mean asking again. */
static int not_primary(store *s, const redisReply *r)
{
    if (!s->sn)
        return 0;
    static const char *const words[] = {"READONLY", "MASTERDOWN", "LOADING"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t n = strlen(words[i]);
        if (r->len >= n && strncmp(r->str, words[i], n) == 0) {
            log_warn("redis %s: answered %.120s; asking the sentinels for the primary", s->name,
                     r->str);
            return 1;
        }
    }
    return 0;
}

static void primary_found(void *arg, const char *host, int port, const char *err)
{
    store *s = arg;
    s->discovering = 0;
    if (!host) {
        log_error("redis: no sentinel named a primary for %s (%.400s); retrying in %d ms",
                  sentinel_master(s->sn), err ? err : "?", s->backoff_ms);
        schedule_reconnect(s);
        return;
    }
    snprintf(s->t.host, sizeof(s->t.host), "%s", host);
    s->t.port = port;
    s->t.path[0] = '\0';
    redis_target_name(&s->t, s->name, sizeof(s->name));
    s->primary_known = 1;
    connect_conns(s);
}

/* A sentinel announced a failover: drop the connections to the old
 * primary at once (what they had outstanding gets "try again later") and
 * ask again. */
static void primary_switched(void *arg, const char *host, int port)
{
    store *s = arg;
    if (s->primary_known && s->ready && !strcmp(s->t.host, host) && s->t.port == port)
        return;
    teardown(s, "+switch-master");
}

/* with sentinels, ROLE must answer master before the store is ready */
static void role_done(redisReply *r, void *arg)
{
    store *s = arg;
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0) {
        log_warn("redis %s: ROLE not allowed for this user (%.120s); trusting the sentinels",
                 s->name, r->str);
        s->role_ok = 1;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
               r->element[0]->type == REDIS_REPLY_STRING && !strcmp(r->element[0]->str, "master")) {
        s->role_ok = 1;
    } else {
        log_warn("redis %s: ROLE answers %.40s, not master; asking the sentinels again", s->name,
                 r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                         r->element[0]->type == REDIS_REPLY_STRING
                     ? r->element[0]->str
                     : (r->type == REDIS_REPLY_ERROR ? r->str : "?"));
        teardown(s, "not the primary");
        return;
    }
    check_ready(s);
}

void store_set_sentinel(store *s, sentinel *sn)
{
    s->sn = sn;
    snprintf(s->name, sizeof(s->name), "(primary of %s, not known yet)", sentinel_master(sn));
}

void store_set_claims_slack(store *s, int ms)
{
    s->claims_slack_ms = ms > 0 ? ms : 0;
}

static void on_reply(void *r, void *priv)
{
    pending_cb *p = priv;
    store_conn *c = p->c;
    if (c->pending > 0)
        c->pending--;
    c->progress_ms = now_ms();
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR && not_primary(c->st, reply)) {
        /* a replica now (failover), or a primary that cannot serve: the
         * caller gets "try again later" and the sentinels are asked again */
        store_cb cb = p->cb;
        void *arg = p->arg;
        free(p);
        teardown(c->st, "not the primary");
        if (cb)
            cb(NULL, arg);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* someone flushed the scripts: reload them by reconnecting */
        log_warn("redis: scripts missing (NOSCRIPT); reloading");
        store_cb cb = p->cb;
        void *arg = p->arg;
        free(p);
        teardown(c->st, "NOSCRIPT");
        if (cb)
            cb(NULL, arg);
        return;
    }
    store_cb cb = p->cb;
    void *arg = p->arg;
    free(p);
    if (cb)
        cb(reply, arg);
}

static void reply_trampoline(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    on_reply(r, priv);
}

static void rc_reply(rconn *rc, redisReply *r, void *priv)
{
    (void)rc;
    on_reply(r, priv);
}

/* ---- the link: hiredis async or rconn */

static int link_open(store_conn *c)
{
    return c->ac || c->rc;
}

static int link_send(store_conn *c, pending_cb *p, int argc, const char **argv, const size_t *lens)
{
    if (c->rc)
        return rconn_command_argv(c->rc, rc_reply, p, argc, argv, lens);
    char *cmd = NULL;
    long len = rconn_format(&cmd, argc, argv, lens);
    int rc =
        len >= 0 && len <= INT_MAX &&
                redisAsyncFormattedCommand(c->ac, reply_trampoline, p, cmd, (size_t)len) == REDIS_OK
            ? 0
            : -1;
    free(cmd);
    return rc;
}

/* close without the disconnect callback; pending callbacks get NULL */
static void link_close(store_conn *c)
{
    redisAsyncContext *ac = c->ac;
    rconn *rc = c->rc;
    c->ac = NULL;
    c->rc = NULL;
    if (ac) {
        ac->data = c;
        redisAsyncSetDisconnectCallback(ac, NULL);
        redisAsyncFree(ac);
    }
    if (rc) {
        rconn_set_disconnect(rc, NULL);
        rconn_free(rc);
    }
}

static int send_argv(store_conn *c, store_cb cb, void *arg, int argc, const char **argv,
                     const size_t *lens)
{
    if (!link_open(c) || !c->connected)
        return -1;
    pending_cb *p = malloc(sizeof(*p));
    if (!p)
        return -1;
    p->c = c;
    p->cb = cb;
    p->arg = arg;
    if (link_send(c, p, argc, argv, lens) < 0) {
        free(p);
        return -1;
    }
    if (c->pending++ == 0)
        c->progress_ms = now_ms();
    return 0;
}

static void check_ready(store *s)
{
    if (s->ready || s->scripts_pending)
        return;
    for (int i = 0; i < STORE_NCONN; i++)
        if (!s->conn[i].connected || !s->conn[i].authed)
            return;
    if (s->sn && !s->role_ok)
        return;
    s->ready = 1;
    s->backoff_ms = BACKOFF_MIN_MS;
    log_info("redis %s: connected and ready", s->name);
    if (s->ev.ready)
        s->ev.ready(s->ev.arg);
}

static void script_loaded(redisReply *r, void *arg)
{
    store *s = arg;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            log_error("redis: SCRIPT LOAD failed: %s", r->str);
        return; /* teardown (if any) restarts the sequence */
    }
    if (s->scripts_pending > 0 && --s->scripts_pending == 0)
        check_ready(s);
}

static void proceed(store_conn *c);

/* Redis's answer to AUTH: refused (WRONGPASS, a user that is off, a server
 * without a password) is an operator's error, named with the address and
 * the server's words and retried with the reconnect backoff; the store is
 * not ready meanwhile (/readyz answers 503). The password is never
 * logged. */
static void auth_done(redisReply *r, void *arg)
{
    store_conn *c = arg;
    store *s = c->st;
    if (!r)
        return; /* torn down meanwhile: the reconnect starts over */
    if (r->type == REDIS_REPLY_ERROR) {
        log_error("redis %s: authentication%s%s refused: %.200s (retrying in %d ms)", s->name,
                  s->user ? " as " : "", s->user ? s->user : "", r->str, s->backoff_ms);
        teardown(s, "authentication refused");
        return;
    }
    c->authed = 1;
    proceed(c);
}

static void link_up(store_conn *c)
{
    store *s = c->st;
    c->connected = 1;
    c->pending = 0;
    if (s->password) {
        /* AUTH first: nothing else is sent on a connection Redis has not
         * let in (the rest would only pile up NOAUTH errors) */
        const char *argv[] = {"AUTH", s->user ? s->user : s->password, s->password};
        send_argv(c, auth_done, c, s->user ? 3 : 2, argv, NULL);
        return;
    }
    c->authed = 1;
    proceed(c);
}

/* the connection is let in: select the database, load the scripts */
static void proceed(store_conn *c)
{
    store *s = c->st;
    if (s->t.db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", s->t.db);
        const char *argv[] = {"SELECT", db};
        send_argv(c, NULL, NULL, 2, argv, NULL);
    }
    if (c->which == STORE_CMD && s->sn) {
        s->role_ok = 0;
        const char *argv[] = {"ROLE"};
        send_argv(c, role_done, s, 1, argv, NULL);
    }
    if (c->which == STORE_CMD) {
        s->scripts_pending = SCRIPT_COUNT;
        for (int i = 0; i < SCRIPT_COUNT; i++) {
            const char *argv[] = {"SCRIPT", "LOAD", s->script_src[i]};
            send_argv(c, script_loaded, s, 3, argv, NULL);
        }
    }
    check_ready(s);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    store_conn *c = ac->data;
    if (status != REDIS_OK) {
        log_warn("redis: connect failed: %s", ac->errstr);
        c->ac = NULL; /* hiredis frees it after this callback */
        teardown(c->st, "connect failed");
        return;
    }
    link_up(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    store_conn *c = ac->data;
    store *s = c->st;
    (void)status;
    c->ac = NULL; /* freed by hiredis after this returns */
    c->connected = 0;
    c->authed = 0;
    c->pending = 0;
    teardown(s, status == REDIS_OK ? "closed" : ac->errstr);
}

/* rconn's: the same, with the address and the TLS reason in the log (a
 * refused certificate, a server that wants a client certificate) */
static void rc_connect(rconn *rc, int ok, void *data)
{
    store_conn *c = data;
    if (!ok) {
        log_warn("redis %s: connect failed: %s", c->st->name, rconn_errstr(rc));
        c->rc = NULL; /* rconn frees itself after this callback */
        teardown(c->st, "connect failed");
        return;
    }
    link_up(c);
}

static void rc_disconnect(rconn *rc, int clean, void *data)
{
    store_conn *c = data;
    store *s = c->st;
    (void)clean;
    if (!s->ready) /* never got as far as ready: say why, once per attempt */
        log_warn("redis %s: connection closed before ready: %s", s->name, rconn_errstr(rc));
    c->rc = NULL;
    c->connected = 0;
    c->authed = 0;
    c->pending = 0;
    teardown(s, rconn_errstr(rc));
}

/* Tear every connection down (one lost means we rebuild them all, so the
 * blocking reader and the command path never disagree) and reconnect. */
static void teardown(store *s, const char *why)
{
    int was_ready = s->ready;
    s->ready = 0;
    s->scripts_pending = 0;
    s->role_ok = 0;
    if (s->sn)
        s->primary_known = 0; /* every disconnect asks the sentinels again */
    for (int i = 0; i < STORE_NCONN; i++) {
        store_conn *c = &s->conn[i];
        c->connected = 0;
        c->authed = 0;
        c->pending = 0;
        link_close(c); /* pending callbacks get NULL */
    }
    if (was_ready) {
        s->reconnects++;
        log_warn("redis: connection lost (%s); reconnecting", why ? why : "?");
        if (s->ev.down)
            s->ev.down(s->ev.arg);
    }
    schedule_reconnect(s);
}

static int connect_one(store *s, store_conn *c)
{
    if (s->t.tls) {
        char err[256];
        if (!s->tls) {
            log_error("redis %s: rediss:// without a TLS context", s->name);
            return -1;
        }
        c->rc = rconn_connect(s->base, s->t.host, s->t.port, s->tls, s->tls_server_name, rc_connect,
                              rc_disconnect, c, err, sizeof(err));
        if (!c->rc) {
            log_warn("redis %s: connect: %s", s->name, err);
            return -1;
        }
        rconn_reader(c->rc)->maxbuf = 0; /* as below */
        c->connected = 0;
        c->authed = 0;
        c->pending = 0;
        c->progress_ms = now_ms();
        return 0;
    }
    redisAsyncContext *ac =
        s->t.path[0] ? redisAsyncConnectUnix(s->t.path) : redisAsyncConnect(s->t.host, s->t.port);
    if (!ac)
        return -1;
    if (ac->err) {
        log_warn("redis: connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    /* keep the reply buffer between replies: by default hiredis frees it
     * whenever it empties past 16 KiB, so every large reply (a chunk's
     * recipients, a claim's codes) allocated it again */
    ac->c.reader->maxbuf = 0;
    ac->data = c;
    c->ac = ac;
    c->connected = 0;
    c->authed = 0;
    c->pending = 0;
    c->progress_ms = now_ms();
    redisLibeventAttach(ac, s->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return 0;
}

/* the address to connect to: the URL's, or what the sentinels name */
static void connect_all(store *s)
{
    if (s->sn && !s->primary_known) {
        if (!s->discovering) {
            s->discovering = 1;
            sentinel_discover(s->sn, primary_found, s);
        }
        return;
    }
    connect_conns(s);
}

static void connect_conns(store *s)
{
    for (int i = 0; i < STORE_NCONN; i++) {
        if (link_open(&s->conn[i]))
            continue;
        if (connect_one(s, &s->conn[i]) < 0) {
            teardown(s, "connect");
            return;
        }
    }
}

/* Deadline watchdog: a connection with unanswered commands that made no
 * progress for timeout_ms (plus the BLOCK time on the reader) is dead. */
static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store *s = arg;
    long long now = now_ms();
    for (int i = 0; i < STORE_NCONN; i++) {
        store_conn *c = &s->conn[i];
        long limit = s->timeout_ms + (i == STORE_BLOCKING ? s->block_ms : 0) +
                     (i == STORE_CLAIMS ? s->claims_slack_ms : 0);
        if (link_open(c) && !c->connected && now - c->progress_ms > s->timeout_ms) {
            teardown(s, "connect timeout");
            return;
        }
        if (c->connected && c->pending > 0 && now - c->progress_ms > limit) {
            teardown(s, "no answer within redis_timeout_ms");
            return;
        }
    }
}

void store_start(store *s)
{
    if (s->started)
        return;
    s->started = 1;
    s->watch_ev = event_new(s->base, -1, EV_PERSIST, watch_cb, s);
    struct timeval tv = {0, 250000};
    event_add(s->watch_ev, &tv);
    if (s->sn)
        sentinel_watch(s->sn, primary_switched, s);
    connect_all(s);
}

void store_free(store *s)
{
    if (!s)
        return;
    s->ready = 0; /* callbacks run by the frees below must not send more */
    s->ev.ready = s->ev.down = NULL;
    for (int i = 0; i < STORE_NCONN; i++) {
        s->conn[i].connected = 0;
        link_close(&s->conn[i]);
    }
    if (s->retry_ev)
        event_free(s->retry_ev);
    if (s->watch_ev)
        event_free(s->watch_ev);
    sentinel_free(s->sn);
    free(s->user);
    if (s->password) {
        OPENSSL_cleanse(s->password, strlen(s->password));
        free(s->password);
    }
    SSL_CTX_free(s->tls);
    free(s->tls_server_name);
    free(s);
}

int store_set_tls(store *s, const redis_tls_opts *o, char *err, size_t err_len)
{
    if (!s->t.tls)
        return 0;
    SSL_CTX *ctx = redis_tls_ctx_new(o, err, err_len);
    if (!ctx)
        return -1;
    char *name = NULL;
    if (o->server_name && !(name = strdup(o->server_name))) {
        SSL_CTX_free(ctx);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    SSL_CTX_free(s->tls);
    free(s->tls_server_name);
    s->tls = ctx;
    s->tls_server_name = name;
    return 0;
}

int store_set_auth(store *s, const char *user, const char *password)
{
    free(s->user);
    if (s->password)
        OPENSSL_cleanse(s->password, strlen(s->password));
    free(s->password);
    s->user = s->password = NULL;
    /* the URL's user, unless the configuration names one */
    if (!user && s->t.user[0])
        user = s->t.user;
    if (user && !(s->user = strdup(user)))
        return -1;
    if (password && !(s->password = strdup(password)))
        return -1;
    return 0;
}

const char *store_name(const store *s)
{
    return s->name;
}

int store_is_ready(const store *s)
{
    return s->ready;
}

unsigned long store_reconnects(const store *s)
{
    return s->reconnects;
}

int store_cmdv(store *s, int conn, store_cb cb, void *arg, int argc, const char **argv,
               const size_t *lens)
{
    if (!s->ready)
        return -1;
    return send_argv(&s->conn[conn], cb, arg, argc, argv, lens);
}

int store_cmd(store *s, store_cb cb, void *arg, ...)
{
    const char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, arg);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 32)
        argv[argc++] = a;
    va_end(ap);
    return store_cmdv(s, STORE_CMD, cb, arg, argc, argv, NULL);
}

int store_eval(store *s, int script, store_cb cb, void *arg, int numkeys, int argc,
               const char **argv, const size_t *lens)
{
    if (!s->ready)
        return -1;
    const char *stackv[64];
    size_t stackl[64];
    const char **v = stackv;
    size_t *l = stackl;
    if (argc + 3 > 64) {
        v = malloc(sizeof(*v) * (size_t)(argc + 3));
        l = malloc(sizeof(*l) * (size_t)(argc + 3));
        if (!v || !l) {
            free(v == stackv ? NULL : v);
            free(l == stackl ? NULL : l);
            return -1;
        }
    }
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", numkeys);
    v[0] = "EVALSHA";
    l[0] = 7;
    v[1] = s->sha[script];
    l[1] = 40;
    v[2] = nk;
    l[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        v[i + 3] = argv[i];
        l[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    /* claims on their own connection; every other script in order on the
     * command connection (nothing relies on order across those two: a claim
     * is only ever sent after the outcome it follows was answered) */
    int rc = send_argv(&s->conn[script == SCRIPT_CLAIM ? STORE_CLAIMS : STORE_CMD], cb, arg,
                       argc + 3, v, l);
    if (v != stackv) {
        free(v);
        free(l);
    }
    return rc;
}

/* ---- argv builder */

void store_args_add(store_args *a, const char *s, size_t len)
{
    if (a->argc == a->cap) {
        int cap = a->cap ? a->cap * 2 : 32;
        a->lens = realloc(a->lens, sizeof(*a->lens) * (size_t)cap);
        a->offs = realloc(a->offs, sizeof(*a->offs) * (size_t)cap);
        a->argv = realloc(a->argv, sizeof(*a->argv) * (size_t)cap);
        if (!a->lens || !a->offs || !a->argv)
            abort();
        a->cap = cap;
    }
    if (a->alen + len + 1 > a->acap) {
        size_t cap = a->acap ? a->acap : 1024;
        while (cap < a->alen + len + 1)
            cap *= 2;
        a->arena = realloc(a->arena, cap);
        if (!a->arena)
            abort();
        a->acap = cap;
    }
    if (len)
        memcpy(a->arena + a->alen, s, len);
    a->arena[a->alen + len] = '\0';
    a->offs[a->argc] = a->alen;
    a->lens[a->argc] = len;
    a->alen += len + 1;
    a->argc++;
}

void store_args_adds(store_args *a, const char *s)
{
    store_args_add(a, s, strlen(s));
}

void store_args_addll(store_args *a, long long v)
{
    /* by hand: this runs several times per message */
    char b[24], *p = b + sizeof(b);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    store_args_add(a, p, (size_t)(b + sizeof(b) - p));
}

void store_args_setll(store_args *a, int i, long long v)
{
    /* the number goes to the end of the arena; argument i points there */
    int argc = a->argc;
    store_args_addll(a, v);
    a->argc = argc;
    a->offs[i] = a->offs[argc];
    a->lens[i] = a->lens[argc];
}
void store_args_finish(store_args *a)
{
    for (int i = 0; i < a->argc; i++)
        a->argv[i] = a->arena + a->offs[i];
}

void store_args_reset(store_args *a)
{
    a->argc = 0;
    a->alen = 0;
}

void store_args_free(store_args *a)
{
    free(a->argv);
    free(a->lens);
    free(a->offs);
    free(a->arena);
    memset(a, 0, sizeof(*a));
}
