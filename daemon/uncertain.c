/* The uncertain recipients of a campaign: a message record turned into the
 * item the CLI and the API list (see uncertain.h). */
#include "uncertain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A number as a record may hold it: an integer, a float cjson wrote for a
 * big one, or a string ("slot" is one). */
static int num_of(const json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > -9.2e18 && d < 9.2e18))
            return -1;
        *out = (long long)d;
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = x;
    return 0;
}

static json_t *num_or_null(const json_t *v)
{
    long long x;
    return num_of(v, &x) == 0 ? json_integer(x) : json_null();
}

static json_t *str_or_null(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len); /* NULL for bytes that are not UTF-8 */
    return j ? j : json_null();
}

json_t *uncertain_item(const char *field, size_t flen, const char *val, size_t vlen)
{
    if (flen >= 4 && memcmp(field, "dup:", 4) == 0)
        return NULL;
    /* most records are not uncertain: skip those without parsing them (a
     * state "uncertain" holds these bytes; no encoder escapes letters) */
    if (!memmem(val, vlen, "\"uncertain\"", 11))
        return NULL;
    json_error_t je;
    json_t *r = json_loadb(val, vlen, 0, &je);
    const char *st = json_string_value(json_object_get(r, "state"));
    if (!st || strcmp(st, "uncertain") != 0) {
        json_decref(r);
        return NULL;
    }
    const char *colon = memchr(field, ':', flen);
    const char *to = colon ? colon + 1 : field;
    json_t *o = json_object();
    json_object_set_new(o, "to", str_or_null(to, flen - (size_t)(to - field)));
    json_t *ch = json_object_get(r, "channel");
    if (json_is_string(ch))
        json_object_set_new(o, "channel", json_incref(ch));
    else
        json_object_set_new(o, "channel",
                            colon ? str_or_null(field, (size_t)(colon - field)) : json_null());
    json_object_set_new(o, "index", num_or_null(json_object_get(r, "slot")));
    json_object_set_new(o, "attempts", num_or_null(json_object_get(r, "attempts")));
    /* records written before reasons existed: declared by another claim */
    const char *reason = json_string_value(json_object_get(r, "reason"));
    json_object_set_new(o, "reason", json_string(reason && *reason ? reason : "owner_lost"));
    json_object_set_new(o, "wire_at", num_or_null(json_object_get(r, "wire_at")));
    json_object_set_new(o, "claimed_at", num_or_null(json_object_get(r, "claimed_at")));
    json_object_set_new(o, "at", num_or_null(json_object_get(r, "at")));
    json_decref(r);
    return o;
}

const char *uncertain_when(const json_t *item, long long *ms)
{
    static const char *const keys[] = {"wire_at", "claimed_at", "at"};
    static const char *const names[] = {"wire", "claimed", "declared"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(item, keys[i]);
        if (json_is_integer(v)) {
            *ms = (long long)json_integer_value(v);
            return names[i];
        }
    }
    return NULL;
}

void uncertain_fmt_time(long long ms, char *buf, size_t len)
{
    long long sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) { /* before 1970: floor, so the fraction stays positive */
        frac += 1000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    char day[32];
    if (!gmtime_r(&t, &tm) || !strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(buf, len, "%lld", ms);
        return;
    }
    snprintf(buf, len, "%s.%03lldZ", day, frac);
}

#define ROW_FMT "%-8s %-10s %-8s %-18s %-35s %s"

void uncertain_fmt_header(char *buf, size_t len)
{
    snprintf(buf, len, ROW_FMT, "INDEX", "CHANNEL", "ATTEMPTS", "REASON", "REQUEST TIME (UTC)",
             "ADDRESS");
}

static void num_text(const json_t *v, char *buf, size_t len)
{
    if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, len, "-");
}

static const char *str_text(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "-";
}

void uncertain_fmt_row(const json_t *item, char *buf, size_t len)
{
    char idx[24], att[24], when[64] = "-";
    num_text(json_object_get(item, "index"), idx, sizeof(idx));
    num_text(json_object_get(item, "attempts"), att, sizeof(att));
    long long ms;
    const char *src = uncertain_when(item, &ms);
    if (src) {
        char t[40];
        uncertain_fmt_time(ms, t, sizeof(t));
        snprintf(when, sizeof(when), "%s (%s)", t, src);
    }
    snprintf(buf, len, ROW_FMT, idx, str_text(json_object_get(item, "channel")), att,
             str_text(json_object_get(item, "reason")), when,
             str_text(json_object_get(item, "to")));
}

int uncertain_query(const char *cursor, const char *count, char *cur, size_t cur_len, int *n,
                    const char **why)
{
    if (!cursor)
        cursor = "0";
    size_t cl = strlen(cursor);
    errno = 0;
    unsigned long long c = cl ? strtoull(cursor, NULL, 10) : 0;
    if (cl == 0 || cl > 20 || strspn(cursor, "0123456789") != cl || errno == ERANGE) {
        *why = "cursor must be the next_cursor of an earlier answer";
        return -1;
    }
    *n = UNCERTAIN_COUNT_DEFAULT;
    if (count) {
        size_t nl = strlen(count);
        int v = nl && nl <= 4 && strspn(count, "0123456789") == nl ? atoi(count) : 0;
        if (v < 1 || v > UNCERTAIN_COUNT_MAX) {
            *why = "count must be a number from 1 to 1000";
            return -1;
        }
        *n = v;
    }
    snprintf(cur, cur_len, "%llu", c);
    return 0;
}
