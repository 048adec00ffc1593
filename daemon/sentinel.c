/* Redis Sentinel discovery and the +switch-master subscription (see
 * sentinel.h). One query connection at a time, asking the sentinels in
 * turn; one subscription connection. Every callback first checks that its
 * context is still the current one: hiredis calls pending callbacks with
 * NULL while a context is freed, possibly after a newer one replaced it. */
#include "sentinel.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define WATCH_BACKOFF_MIN_MS 250
#define WATCH_BACKOFF_MAX_MS 5000

struct sentinel {
    struct event_base *base;
    redis_target at[REDIS_MAX_SENTINELS];
    char name[REDIS_MAX_SENTINELS][300];
    int n;
    char *master;
    char *user;
    char *password;
    int timeout_ms;
    /* discovery */
    sentinel_found_cb cb;
    void *arg;
    int last_good; /* the sentinel asked first */
    int tried;     /* sentinels asked in this round */
    int asking;    /* index of the one being asked */
    redisAsyncContext *q_ac;
    struct event *q_timer; /* the answer's deadline; also starts a round */
    int q_starting;        /* q_timer is the round's start, not a deadline */
    char q_err[512];
    /* +switch-master */
    sentinel_switch_cb wcb;
    void *warg;
    redisAsyncContext *w_ac;
    int w_idx;
    int w_backoff_ms;
    struct event *w_retry;
};

static void q_next(sentinel *sn);
static void w_connect(sentinel *sn);

/* a host as a sentinel announces it: a name or an address, nothing else */
static int host_ok(const char *h, size_t len)
{
    if (len == 0 || len >= 256)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_' || ch == ':'))
            return 0;
    }
    return 1;
}

static int port_of(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

static redisAsyncContext *open_ctx(sentinel *sn, int i, redisConnectCallback *on_conn,
                                   redisDisconnectCallback *on_disc)
{
    redisAsyncContext *ac = redisAsyncConnect(sn->at[i].host, sn->at[i].port);
    if (!ac)
        return NULL;
    if (ac->err) {
        log_warn("redis: sentinel %s: %s", sn->name[i], ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = sn;
    redisLibeventAttach(ac, sn->base);
    redisAsyncSetConnectCallback(ac, on_conn);
    redisAsyncSetDisconnectCallback(ac, on_disc);
    return ac;
}

static void send_auth(sentinel *sn, redisAsyncContext *ac, redisCallbackFn *fn)
{
    if (!sn->password)
        return;
    const char *argv[] = {"AUTH", sn->user ? sn->user : sn->password, sn->password};
    redisAsyncCommandArgv(ac, fn, sn, sn->user ? 3 : 2, argv, NULL);
}

/* ---- discovery */

static void q_close(sentinel *sn)
{
    redisAsyncContext *ac = sn->q_ac;
    sn->q_ac = NULL;
    if (sn->q_timer)
        evtimer_del(sn->q_timer);
    if (ac)
        redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
}

static void q_fail(sentinel *sn, const char *fmt, const char *what)
{
    char one[300];
    snprintf(one, sizeof(one), fmt, what ? what : "?");
    log_warn("redis: sentinel %s: %s", sn->name[sn->asking], one);
    size_t l = strlen(sn->q_err);
    snprintf(sn->q_err + l, sizeof(sn->q_err) - l, "%s%s: %s", l ? "; " : "", sn->name[sn->asking],
             one);
    q_close(sn);
    q_next(sn);
}

static void q_done(sentinel *sn, const char *host, int port)
{
    sentinel_found_cb cb = sn->cb;
    void *arg = sn->arg;
    sn->cb = NULL;
    if (cb)
        cb(arg, host, port, host ? NULL : sn->q_err);
}

static void q_on_connect(const redisAsyncContext *ac, int status)
{
    sentinel *sn = ac->data;
    if (ac != sn->q_ac || status == REDIS_OK)
        return;
    sn->q_ac = NULL; /* hiredis frees it after this callback */
    q_fail(sn, "cannot connect: %s", ac->errstr);
}

static void q_on_disconnect(const redisAsyncContext *ac, int status)
{
    sentinel *sn = ac->data;
    (void)status;
    if (ac != sn->q_ac)
        return;
    sn->q_ac = NULL;
    q_fail(sn, "connection closed: %s", ac->errstr[0] ? ac->errstr : "by the sentinel");
}

static void q_auth(redisAsyncContext *ac, void *r, void *priv)
{
    sentinel *sn = priv;
    redisReply *rep = r;
    if (ac != sn->q_ac || !rep || rep->type != REDIS_REPLY_ERROR)
        return;
    char why[256];
    snprintf(why, sizeof(why), "%.200s", rep->str);
    q_fail(sn, "authentication refused: %s", why);
}

static void q_reply(redisAsyncContext *ac, void *r, void *priv)
{
    sentinel *sn = priv;
    redisReply *rep = r;
    if (ac != sn->q_ac || !rep)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        char why[256];
        snprintf(why, sizeof(why), "%.200s", rep->str);
        q_fail(sn, "%s", why);
        return;
    }
    if (rep->type == REDIS_REPLY_NIL) {
        q_fail(sn, "does not know master %s", sn->master);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING ||
        !host_ok(rep->element[0]->str, rep->element[0]->len)) {
        q_fail(sn, "%s", "an answer that is not HOST PORT");
        return;
    }
    int port = port_of(rep->element[1]->str, rep->element[1]->len);
    if (port < 0) {
        q_fail(sn, "%s", "an answer with a bad port");
        return;
    }
    char host[256];
    memcpy(host, rep->element[0]->str, rep->element[0]->len);
    host[rep->element[0]->len] = '\0';
    sn->last_good = sn->asking;
    log_info("redis: sentinel %s names %s:%d as the primary of %s", sn->name[sn->asking], host,
             port, sn->master);
    q_close(sn);
    q_done(sn, host, port);
}

static void q_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sentinel *sn = arg;
    if (sn->q_starting) {
        sn->q_starting = 0;
        q_next(sn);
        return;
    }
    q_fail(sn, "%s", "no answer in time");
}

static void q_next(sentinel *sn)
{
    while (sn->tried < sn->n) {
        sn->asking = (sn->last_good + sn->tried) % sn->n;
        sn->tried++;
        redisAsyncContext *ac = open_ctx(sn, sn->asking, q_on_connect, q_on_disconnect);
        if (!ac) {
            size_t l = strlen(sn->q_err);
            snprintf(sn->q_err + l, sizeof(sn->q_err) - l, "%s%s: cannot connect", l ? "; " : "",
                     sn->name[sn->asking]);
            continue;
        }
        sn->q_ac = ac;
        send_auth(sn, ac, q_auth);
        const char *argv[] = {"SENTINEL", "get-master-addr-by-name", sn->master};
        redisAsyncCommandArgv(ac, q_reply, sn, 3, argv, NULL);
        struct timeval tv = {sn->timeout_ms / 1000, (sn->timeout_ms % 1000) * 1000};
        evtimer_add(sn->q_timer, &tv);
        return;
    }
    q_done(sn, NULL, 0);
}

void sentinel_discover(sentinel *sn, sentinel_found_cb cb, void *arg)
{
    q_close(sn);
    sn->cb = cb;
    sn->arg = arg;
    sn->tried = 0;
    sn->q_err[0] = '\0';
    sn->q_starting = 1;
    struct timeval tv = {0, 0};
    evtimer_add(sn->q_timer, &tv);
}

/* ---- +switch-master */

static void w_close_and_retry(sentinel *sn)
{
    redisAsyncContext *ac = sn->w_ac;
    sn->w_ac = NULL;
    if (ac)
        redisAsyncFree(ac);
    sn->w_idx = (sn->w_idx + 1) % sn->n;
    struct timeval tv = {sn->w_backoff_ms / 1000, (sn->w_backoff_ms % 1000) * 1000};
    evtimer_add(sn->w_retry, &tv);
    sn->w_backoff_ms *= 2;
    if (sn->w_backoff_ms > WATCH_BACKOFF_MAX_MS)
        sn->w_backoff_ms = WATCH_BACKOFF_MAX_MS;
}

static void w_on_connect(const redisAsyncContext *ac, int status)
{
    sentinel *sn = ac->data;
    if (ac != sn->w_ac || status == REDIS_OK)
        return;
    log_warn("redis: sentinel %s: cannot subscribe: %s", sn->name[sn->w_idx], ac->errstr);
    sn->w_ac = NULL; /* freed by hiredis */
    w_close_and_retry(sn);
}

static void w_on_disconnect(const redisAsyncContext *ac, int status)
{
    sentinel *sn = ac->data;
    (void)status;
    if (ac != sn->w_ac)
        return;
    log_warn("redis: sentinel %s: subscription lost: %s", sn->name[sn->w_idx],
             ac->errstr[0] ? ac->errstr : "closed");
    sn->w_ac = NULL;
    w_close_and_retry(sn);
}

static void w_auth(redisAsyncContext *ac, void *r, void *priv)
{
    sentinel *sn = priv;
    redisReply *rep = r;
    if (ac != sn->w_ac || !rep || rep->type != REDIS_REPLY_ERROR)
        return;
    log_error("redis: sentinel %s: authentication refused: %.200s", sn->name[sn->w_idx], rep->str);
    w_close_and_retry(sn);
}

/* "+switch-master NAME OLDHOST OLDPORT NEWHOST NEWPORT" */
static void w_message(sentinel *sn, const char *s, size_t len)
{
    const char *f[5];
    size_t fl[5];
    size_t k = 0, i = 0;
    while (k < 5) {
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            break;
        f[k] = s + i;
        while (i < len && s[i] != ' ')
            i++;
        fl[k] = (size_t)(s + i - f[k]);
        k++;
    }
    if (k < 5 || fl[0] != strlen(sn->master) || memcmp(f[0], sn->master, fl[0]) != 0)
        return;
    int port = port_of(f[4], fl[4]);
    if (port < 0 || !host_ok(f[3], fl[3]))
        return;
    char host[256];
    memcpy(host, f[3], fl[3]);
    host[fl[3]] = '\0';
    log_warn("redis: sentinel %s: +switch-master: %s is now the primary of %s", sn->name[sn->w_idx],
             host, sn->master);
    if (sn->wcb)
        sn->wcb(sn->warg, host, port);
}

static void w_reply(redisAsyncContext *ac, void *r, void *priv)
{
    sentinel *sn = priv;
    redisReply *rep = r;
    if (ac != sn->w_ac || !rep)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        log_error("redis: sentinel %s: SUBSCRIBE refused: %.200s", sn->name[sn->w_idx], rep->str);
        w_close_and_retry(sn);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (!strcmp(rep->element[0]->str, "subscribe")) {
        log_info("redis: sentinel %s: following +switch-master", sn->name[sn->w_idx]);
        sn->w_backoff_ms = WATCH_BACKOFF_MIN_MS;
    } else if (!strcmp(rep->element[0]->str, "message") &&
               rep->element[2]->type == REDIS_REPLY_STRING) {
        w_message(sn, rep->element[2]->str, rep->element[2]->len);
    }
}

static void w_connect(sentinel *sn)
{
    if (sn->w_ac)
        return;
    redisAsyncContext *ac = open_ctx(sn, sn->w_idx, w_on_connect, w_on_disconnect);
    if (!ac) {
        w_close_and_retry(sn);
        return;
    }
    sn->w_ac = ac;
    send_auth(sn, ac, w_auth);
    const char *argv[] = {"SUBSCRIBE", "+switch-master"};
    redisAsyncCommandArgv(ac, w_reply, sn, 2, argv, NULL);
}

static void w_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    w_connect(arg);
}

void sentinel_watch(sentinel *sn, sentinel_switch_cb cb, void *arg)
{
    sn->wcb = cb;
    sn->warg = arg;
    w_connect(sn);
}

/* ---- life */

sentinel *sentinel_new(struct event_base *base, const char *list, const char *master,
                       const char *user, const char *password, int timeout_ms, char *err,
                       size_t err_len)
{
    sentinel *sn = calloc(1, sizeof(*sn));
    if (!sn) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    char why[256];
    sn->n = redis_sentinels_parse(list, sn->at, REDIS_MAX_SENTINELS, why, sizeof(why));
    if (sn->n <= 0 || !master || !master[0]) {
        snprintf(err, err_len, "redis_sentinels: %s",
                 sn->n <= 0 ? why : "redis_sentinel_master is needed");
        free(sn);
        return NULL;
    }
    for (int i = 0; i < sn->n; i++)
        redis_target_name(&sn->at[i], sn->name[i], sizeof(sn->name[i]));
    sn->base = base;
    sn->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    sn->w_backoff_ms = WATCH_BACKOFF_MIN_MS;
    sn->master = strdup(master);
    sn->user = user ? strdup(user) : NULL;
    sn->password = password ? strdup(password) : NULL;
    sn->q_timer = evtimer_new(base, q_timer_cb, sn);
    sn->w_retry = evtimer_new(base, w_retry_cb, sn);
    if (!sn->master || (user && !sn->user) || (password && !sn->password) || !sn->q_timer ||
        !sn->w_retry) {
        snprintf(err, err_len, "out of memory");
        sentinel_free(sn);
        return NULL;
    }
    return sn;
}

void sentinel_free(sentinel *sn)
{
    if (!sn)
        return;
    sn->cb = NULL;
    sn->wcb = NULL;
    q_close(sn);
    redisAsyncContext *ac = sn->w_ac;
    sn->w_ac = NULL;
    if (ac)
        redisAsyncFree(ac);
    if (sn->q_timer)
        event_free(sn->q_timer);
    if (sn->w_retry)
        event_free(sn->w_retry);
    free(sn->master);
    free(sn->user);
    if (sn->password) {
        OPENSSL_cleanse(sn->password, strlen(sn->password));
        free(sn->password);
    }
    free(sn);
}

const char *sentinel_master(const sentinel *sn)
{
    return sn->master;
}
