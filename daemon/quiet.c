/* Quiet hours: zone offsets (cached) and the end of the quiet period. */
#include "quiet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ratelimit.h" /* quiet_wait_minutes */

#define TZ_CACHE 32

typedef struct tz_entry {
    char name[64];
    long offset_s;     /* UTC offset */
    long long until_s; /* recompute after this (DST) */
} tz_entry;

struct quiet_zones {
    tz_entry tz[TZ_CACHE];
    int next;
};

quiet_zones *quiet_zones_new(void)
{
    return calloc(1, sizeof(quiet_zones));
}

void quiet_zones_free(quiet_zones *z)
{
    free(z);
}

long quiet_tz_offset(quiet_zones *z, const char *tz, long long now_s)
{
    if (!tz || !*tz || strlen(tz) >= 64)
        return 0;
    for (int i = 0; i < TZ_CACHE; i++)
        if (z->tz[i].name[0] && !strcmp(z->tz[i].name, tz) && now_s < z->tz[i].until_s)
            return z->tz[i].offset_s;
    /* the one place TZ changes, set and restored around one localtime_r */
    const char *old = getenv("TZ");
    char saved[128] = "";
    if (old)
        snprintf(saved, sizeof(saved), "%s", old);
    setenv("TZ", tz, 1);
    tzset();
    time_t t = (time_t)now_s;
    struct tm tm;
    localtime_r(&t, &tm);
    if (old)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    tz_entry *e = &z->tz[z->next++ % TZ_CACHE];
    snprintf(e->name, sizeof(e->name), "%s", tz);
    e->offset_s = tm.tm_gmtoff;
    e->until_s = now_s + 3600;
    return e->offset_s;
}

long long quiet_until(quiet_zones *z, int start, int end, const char *tz, long long now_ms)
{
    long long now_s = now_ms / 1000;
    long off = quiet_tz_offset(z, tz, now_s);
    long long local = now_s + off;
    int minute = (int)((local % 86400 + 86400) % 86400 / 60);
    int wait = quiet_wait_minutes(minute, start, end);
    if (!wait)
        return 0;
    return now_ms + (long long)wait * 60000 - (local % 60) * 1000;
}
