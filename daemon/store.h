/* Redis through hiredis async on the daemon's libevent base: three
 * connections, one for commands, one for blocking stream reads (a blocking
 * XREADGROUP would hold every reply queued behind it), one for claims.
 * Reconnects with capped backoff, detects a Redis that stopped answering by deadline (hiredis
 * 0.14 has no command timeouts), and (re)loads the Lua scripts. */
#ifndef OMNI_STORE_H
#define OMNI_STORE_H

#include "redistls.h"
#include "redisurl.h"
#include "sentinel.h"
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct store store;

/* Connections: commands; blocking stream reads; claims (short scripts the
 * sends wait for: on their own connection they never queue behind a long
 * outcome batch). */
enum { STORE_CMD = 0, STORE_BLOCKING = 1, STORE_CLAIMS = 2, STORE_NCONN = 3 };

/* Script ids; store.c maps each to its daemon/lua file by name. */
enum {
    SCRIPT_CREATE = 0,
    SCRIPT_CLAIM,
    SCRIPT_OUTCOME,
    SCRIPT_TAKE,
    SCRIPT_CONTROL,
    SCRIPT_INBOUND,
    SCRIPT_SWEEP,
    SCRIPT_RELEASE,
    SCRIPT_NEXT,
    SCRIPT_WATCH,
    SCRIPT_RESEND,
    SCRIPT_CRMLEASE,
    SCRIPT_COUNT
};

/* reply is NULL when the connection failed or was torn down before an
 * answer came: the caller treats that as "try again later". */
typedef void (*store_cb)(redisReply *reply, void *arg);

typedef struct store_events {
    void (*ready)(void *arg); /* every connection up, scripts loaded */
    void (*down)(void *arg);  /* lost; pending callbacks got NULL */
    void *arg;
} store_events;

/* url: redis://HOST[:PORT][/DB], rediss://... (TLS: call store_set_tls) or
 * unix:/path[?db=N] */
store *store_new(struct event_base *base, const char *url, int timeout_ms, int block_ms,
                 const store_events *ev, char *err, size_t err_len);
void store_free(store *s);
/* AUTH on every connection before anything else (Redis 6 ACL: user and
 * password; user NULL: the URL's user, else the default user). password
 * NULL: no AUTH. Copies both; call before store_start. -1: no memory. */
int store_set_auth(store *s, const char *user, const char *password);
/* Take the primary's address from these sentinels (the store owns sn from
 * here): asked at start and after every disconnect, a connection is ready
 * only when ROLE answers master, +switch-master and a READONLY, MASTERDOWN
 * or LOADING answer make it ask again. The URL keeps giving the database
 * and the user. Call before store_start. */
void store_set_sentinel(store *s, sentinel *sn);
/* The claims connection may wait this much longer than redis_timeout_ms
 * for an answer (WAIT blocks up to redis_wait_timeout_ms). */
void store_set_claims_slack(store *s, int ms);
/* rediss://: the TLS settings (CA, client certificate, the name verified
 * and sent as SNI) for every connection; call before store_start. A
 * redis:// or unix: store ignores them. -1 with the reason in err (a file
 * that does not load). Plain connections stay on hiredis's own async
 * socket code; TLS ones go through rconn.c (a bufferevent with OpenSSL,
 * hiredis only parsing replies). */
int store_set_tls(store *s, const redis_tls_opts *o, char *err, size_t err_len);
/* "host:port" or "unix:/path", for log lines (never a secret) */
const char *store_name(const store *s);
void store_start(store *s);
int store_is_ready(const store *s);
unsigned long store_reconnects(const store *s);

/* Binary-safe command; returns 0, or -1 (not connected: cb is not called). */
int store_cmdv(store *s, int conn, store_cb cb, void *arg, int argc, const char **argv,
               const size_t *lens);
/* NULL-terminated list of C strings. */
int store_cmd(store *s, store_cb cb, void *arg, ...);
/* EVALSHA of an embedded script; argv holds numkeys keys then the args. */
int store_eval(store *s, int script, store_cb cb, void *arg, int numkeys, int argc,
               const char **argv, const size_t *lens);

/* A growable argv for building big commands without per-arg allocations:
 * strings are appended into one arena and referenced by offset. */
typedef struct store_args {
    int argc;
    int cap;
    const char **argv; /* valid after store_args_finish */
    size_t *lens;
    size_t *offs;
    char *arena;
    size_t alen, acap;
} store_args;

void store_args_add(store_args *a, const char *s, size_t len);
void store_args_adds(store_args *a, const char *s);
void store_args_addll(store_args *a, long long v);
/* replace argument i (added earlier) by the number v: counts known only
 * after what they count was added */
void store_args_setll(store_args *a, int i, long long v);
void store_args_finish(store_args *a);
void store_args_reset(store_args *a);
void store_args_free(store_args *a);

#endif
