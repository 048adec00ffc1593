/* Redis Sentinel for the daemon's store: which address is the primary
 * (SENTINEL get-master-addr-by-name, asked of the sentinels in turn), and a
 * subscription to +switch-master on one of them so a failover is followed
 * at once. hiredis async on the daemon's event base; nothing blocks. */
#ifndef OMNI_SENTINEL_H
#define OMNI_SENTINEL_H

#include "redisurl.h"
#include <event2/event.h>
#include <stddef.h>

typedef struct sentinel sentinel;

/* The primary's address as a sentinel gave it: host is NULL when no
 * sentinel answered with one (each was asked once; err says why). */
typedef void (*sentinel_found_cb)(void *arg, const char *host, int port, const char *err);
/* A sentinel announced a new primary for our master (+switch-master). */
typedef void (*sentinel_switch_cb)(void *arg, const char *host, int port);

/* list: redis_sentinels (HOST:PORT,...); master: the monitored name; user
 * and password: AUTH on the sentinels (password NULL: none; both copied).
 * NULL with a reason in err. */
sentinel *sentinel_new(struct event_base *base, const char *list, const char *master,
                       const char *user, const char *password, int timeout_ms, char *err,
                       size_t err_len);
void sentinel_free(sentinel *sn);
/* Ask the sentinels in turn (starting with the one that answered last)
 * until one names the primary; cb runs once, never from inside this call.
 * A discovery already under way is replaced (its cb is not called). */
void sentinel_discover(sentinel *sn, sentinel_found_cb cb, void *arg);
/* Keep a subscription to +switch-master on one sentinel (the next one
 * when it drops, with backoff); cb for every switch of our master. */
void sentinel_watch(sentinel *sn, sentinel_switch_cb cb, void *arg);
const char *sentinel_master(const sentinel *sn);

#endif
