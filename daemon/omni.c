/* The context's small services every module uses: clocks, key names,
 * channel lookup, the dead-letter stream, and the kick that runs deferred
 * work on the next turn of the loop. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "omni.h"

long long omni_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long omni_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int omni_key(const omni *o, char *buf, size_t len, const char *fmt, ...)
{
    size_t p = strlen(o->cfg->prefix);
    if (p >= len)
        return -1;
    memcpy(buf, o->cfg->prefix, p);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + p, len - p, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len - p ? -1 : 0;
}

chan *omni_channel(omni *o, const char *name)
{
    for (size_t i = 0; i < o->n_chans; i++)
        if (strcmp(o->chans[i].name, name) == 0)
            return &o->chans[i];
    return NULL;
}

void omni_dead(omni *o, const char *source, const char *reason, const char *raw, size_t raw_len,
               const char *const *kv)
{
    if (omni_dead_then(o, source, reason, raw, raw_len, kv, NULL, NULL) == 0)
        o->stats.dead_letters++;
    else
        log_error("dead letter could not be written (Redis unavailable): %s", reason);
}

int omni_dead_then(omni *o, const char *source, const char *reason, const char *raw, size_t raw_len,
                   const char *const *kv, store_cb done, void *arg)
{
    store_args a = {0};
    store_args_adds(&a, "XADD");
    store_args_adds(&a, o->k_dead);
    store_args_adds(&a, "MAXLEN");
    store_args_adds(&a, "~");
    store_args_adds(&a, "1000000");
    store_args_adds(&a, "*");
    store_args_adds(&a, "source");
    store_args_adds(&a, source);
    store_args_adds(&a, "reason");
    store_args_adds(&a, reason);
    if (raw) {
        store_args_adds(&a, "job");
        store_args_add(&a, raw, raw_len);
    }
    for (const char *const *p = kv; p && p[0] && p[1]; p += 2) {
        store_args_adds(&a, p[0]);
        store_args_adds(&a, p[1]);
    }
    store_args_adds(&a, "at");
    store_args_addll(&a, omni_now_ms());
    store_args_finish(&a);
    int rc = store_cmdv(o->st, STORE_CMD, done, arg, a.argc, a.argv, a.lens);
    store_args_free(&a);
    if (rc < 0 && done)
        done(NULL, arg);
    return rc < 0 ? -1 : 0;
}

void omni_kick(omni *o)
{
    if (o->kick_ev && !event_pending(o->kick_ev, EV_TIMEOUT, NULL))
        event_active(o->kick_ev, EV_TIMEOUT, 0);
}
