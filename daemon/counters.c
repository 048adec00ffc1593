/* A campaign's hash as JSON: see counters.h. */
#include "counters.h"

#include "job.h" /* job_format_milli */

#include <hiredis/hiredis.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* the fields stored as numbers; everything else is a string */
static const char *const number_fields[] = {"total",
                                            "sent",
                                            "failed",
                                            "suppressed",
                                            "uncertain",
                                            "cancelled",
                                            "duplicates",
                                            "delivered",
                                            "read",
                                            "replied",
                                            "opted_out",
                                            "bounced",
                                            "complained",
                                            "soft_bounced",
                                            "chunks",
                                            "chunk_size",
                                            "failed_after_send",
                                            "fallback",
                                            "awaiting",
                                            "uncertain_resolved",
                                            "segments",
                                            "ahead",
                                            "next_chunk",
                                            "created_at",
                                            "started_at",
                                            "finished_at",
                                            "paused_at",
                                            "cancelled_at",
                                            NULL};

/* the failure reasons, "other" last (counters.h) */
static const char *const reasons[COUNTERS_REASONS] = {"rejected",
                                                      "invalid_recipient",
                                                      "invalid_address",
                                                      "invalid_mailbox",
                                                      "unreachable_number",
                                                      "not_registered",
                                                      "undeliverable",
                                                      "not_delivered_marketing",
                                                      "invalid_parameter",
                                                      "opted_out",
                                                      "outside_window",
                                                      "policy",
                                                      "auth",
                                                      "template_error",
                                                      "unsupported_type",
                                                      "no_content",
                                                      "too_long",
                                                      "bad_media",
                                                      "header_injection",
                                                      "feedback_id",
                                                      "missing_var",
                                                      "bad_template",
                                                      "bad_body_template",
                                                      "retries_exhausted",
                                                      "delivery_failed",
                                                      "bad_outcome",
                                                      "out_of_memory",
                                                      "internal",
                                                      "other"};

const char *counters_reason_name(int i)
{
    return i >= 0 && i < COUNTERS_REASONS ? reasons[i] : NULL;
}

int counters_reason_index(const char *reason)
{
    size_t n = reason ? strcspn(reason, ":") : 0;
    for (int i = 0; n && i < COUNTERS_REASONS - 1; i++)
        if (strlen(reasons[i]) == n && !strncmp(reason, reasons[i], n))
            return i;
    return COUNTERS_REASONS - 1;
}

#define REASON_PREFIX "failed_reason:"
/* conversions (inbound.lua, kind conversion): conversations converted;
 * their revenue is "revenue:CUR" (see revenue_currency) */
static const char *const conversion_fields[] = {"converted", NULL};

/* the counters whose sum says how many recipients are settled */
static const char *const done_fields[] = {"sent",      "failed",    "suppressed",
                                          "uncertain", "cancelled", NULL};

/* per-channel counters: "sent:whatsapp", "delivered:sms", ... */
static const char *const channel_fields[] = {"sent", "failed", "delivered", "read", NULL};

/* bounced and complained: the rates mailbox providers judge a bulk sender by */
static const char *const rate_fields[] = {"delivered", "read",       "replied", "opted_out",
                                          "bounced",   "complained", NULL};

/* the counter name of a per-channel field ("delivered" for
 * "delivered:sms", its channel at *channel), or NULL */
static const char *channel_field(const char *field, const char **channel)
{
    for (int i = 0; channel_fields[i]; i++) {
        size_t n = strlen(channel_fields[i]);
        if (strncmp(field, channel_fields[i], n) == 0 && field[n] == ':' && field[n + 1]) {
            *channel = field + n + 1;
            return channel_fields[i];
        }
    }
    return NULL;
}

int counters_is_number(const char *field)
{
    for (int i = 0; number_fields[i]; i++)
        if (strcmp(field, number_fields[i]) == 0)
            return 1;
    for (int i = 0; conversion_fields[i]; i++)
        if (strcmp(field, conversion_fields[i]) == 0)
            return 1;
    const char *ch;
    return channel_field(field, &ch) != NULL ||
           (!strncmp(field, REASON_PREFIX, strlen(REASON_PREFIX)) && field[strlen(REASON_PREFIX)]);
}

/* a whole decimal number, optionally negative, nothing around it */
static int parse_int(const char *s, size_t len, long long *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    const char *p = buf[0] == '-' ? buf + 1 : buf;
    if (!*p)
        return -1;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno)
        return -1;
    *out = v;
    return 0;
}

static long long get(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

long long counters_pending(const json_t *o)
{
    long long done = 0;
    for (int i = 0; done_fields[i]; i++)
        done += get(o, done_fields[i]);
    /* a message watched for its delivery (fallback_after_s) is counted sent
     * but its recipient may still move on: pending until it settles (not in
     * a cancelled campaign, which moves nobody on) */
    const char *state = json_string_value(json_object_get(o, "state"));
    long long p = get(o, "total") - done;
    if (!state || strcmp(state, "cancelled") != 0)
        p += get(o, "awaiting");
    return p > 0 ? p : 0;
}

/* "revenue:EUR" (thousandths of the unit, conversions): the currency */
static const char *revenue_currency(const char *field)
{
    if (strncmp(field, "revenue:", 8) != 0)
        return NULL;
    const char *c = field + 8;
    for (int i = 0; i < 3; i++)
        if (c[i] < 'A' || c[i] > 'Z')
            return NULL;
    return c[3] ? NULL : c;
}

int counters_set(json_t *o, const char *field, const char *value, size_t len)
{
    if (!o || !field || !value)
        return -1;
    long long num;
    const char *cur = revenue_currency(field);
    if (cur && parse_int(value, len, &num) == 0) {
        /* revenue per currency, exact: {"revenue": {"EUR": "12.50"}} */
        json_t *rev = json_object_get(o, "revenue");
        if (!rev && json_object_set_new(o, "revenue", rev = json_object()) < 0)
            return -1;
        char buf[40];
        job_format_milli(num, buf, sizeof(buf));
        return json_object_set_new(rev, cur, json_string(buf));
    }
    json_t *j = NULL;
    if (counters_is_number(field) && parse_int(value, len, &num) == 0)
        j = json_integer(num);
    else if (strcmp(field, "spec") == 0)
        j = json_loadb(value, len, 0, NULL);
    if (!j)
        j = json_stringn(value, len);
    if (!j) /* not UTF-8: JSON cannot carry it, the field is left out */
        return 0;
    return json_object_set_new(o, field, j);
}

int counters_finish(json_t *o)
{
    if (!o)
        return -1;
    /* conversions: 0 and {} until the first one (and in campaigns made
     * before they were counted) */
    for (int i = 0; conversion_fields[i]; i++)
        if (!json_object_get(o, conversion_fields[i]) &&
            json_object_set_new(o, conversion_fields[i], json_integer(0)) < 0)
            return -1;
    if (!json_is_object(json_object_get(o, "revenue")) &&
        json_object_set_new(o, "revenue", json_object()) < 0)
        return -1;
    long long sent = get(o, "sent");
    json_t *rates = json_object();
    if (!rates || json_object_set_new(o, "rates", rates) < 0)
        return -1;
    for (int i = 0; rate_fields[i]; i++)
        if (json_object_set_new(
                rates, rate_fields[i],
                json_real(sent ? (double)get(o, rate_fields[i]) / (double)sent : 0)) < 0)
            return -1;
    /* the per-channel counters again, grouped: "channels": {"whatsapp":
     * {"sent": 3, "failed": 1, "delivered": 2, "read": 0}, ...} */
    json_t *chans = json_object();
    if (!chans)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        const char *ch, *name = channel_field(k, &ch);
        if (!name || !json_is_integer(v))
            continue;
        json_t *c = json_object_get(chans, ch);
        if (!c) {
            c = json_object();
            for (int i = 0; c && channel_fields[i]; i++)
                json_object_set_new(c, channel_fields[i], json_integer(0));
            if (!c || json_object_set_new(chans, ch, c) < 0) {
                json_decref(chans);
                return -1;
            }
        }
        json_object_set_new(c, name, json_integer(json_integer_value(v)));
    }
    /* converted conversations per message sent */
    if (json_object_set_new(rates, "converted",
                            json_real(sent ? (double)get(o, "converted") / (double)sent : 0)) < 0)
        return -1;
    if (json_object_set_new(o, "channels", chans) < 0)
        return -1;
    /* failures by reason: "failures": {"rejected": 2, "opted_out": 1} */
    json_t *fails = json_object();
    if (!fails)
        return -1;
    size_t pl = strlen(REASON_PREFIX);
    json_object_foreach(o, k, v)
    {
        if (!strncmp(k, REASON_PREFIX, pl) && k[pl] && json_is_integer(v))
            json_object_set_new(fails, k + pl, json_integer(json_integer_value(v)));
    }
    if (json_object_set_new(o, "failures", fails) < 0)
        return -1;
    return json_object_set_new(o, "pending", json_integer(counters_pending(o)));
}

json_t *counters_from_reply(const redisReply *r)
{
    json_t *o = json_object();
    int bad = !o;
    for (size_t i = 0; !bad && r && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->str && v->str)
            bad = counters_set(o, k->str, v->str, v->len) < 0;
    }
    if (bad || counters_finish(o) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
