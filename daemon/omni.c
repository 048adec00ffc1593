/* The context's small services every module uses: clocks, key names,
 * channel lookup, and the kick that runs deferred work on the next turn of
 * the loop (dead letters are stream.c's). */
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

int omni_key(const omni *o, char *buf, size_t len, key_kind kind, const char *arg)
{
    return key_build(buf, len, o->cfg->prefix, kind, arg);
}

chan *omni_channel(omni *o, const char *name)
{
    for (size_t i = 0; i < o->n_chans; i++)
        if (strcmp(o->chans[i].name, name) == 0)
            return &o->chans[i];
    return NULL;
}

void omni_count_failure(omni *o, const char *channel, const char *reason)
{
    chan *c = channel ? omni_channel(o, channel) : NULL;
    if (c)
        c->n_fail[counters_reason_index(reason)]++;
}

void omni_count_sent(omni *o, const char *channel)
{
    chan *c = channel ? omni_channel(o, channel) : NULL;
    if (c)
        c->n_sent++;
}

void omni_kick(omni *o)
{
    if (o->kick_ev && !event_pending(o->kick_ev, EV_TIMEOUT, NULL))
        event_active(o->kick_ev, EV_TIMEOUT, 0);
}
