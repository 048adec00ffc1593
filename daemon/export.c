/* Recipient records as export lines: see export.h. */
#include "export.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const states[] = {"claimed",   "sent",      "failed",     "retry",
                                     "uncertain", "cancelled", "suppressed", NULL};

void export_buf_free(export_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int put(export_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int export_state_valid(const char *s)
{
    for (int i = 0; s && states[i]; i++)
        if (!strcmp(s, states[i]))
            return 1;
    return 0;
}

const char *export_csv_header(void)
{
    return "address,channel,state,provider_id,reason,attempts,at,delivery,delivery_at,"
           "delivery_error\r\n";
}

/* a cell a spreadsheet would run as a formula: one starting with '=',
 * '@', a tab or a CR, or with '+' / '-' not followed by a plain number
 * (a phone number "+15550000001" stays as it is) */
static int formula_like(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] == '=' || s[0] == '@' || s[0] == '\t' || s[0] == '\r')
        return 1;
    if (s[0] != '+' && s[0] != '-')
        return 0;
    if (n == 1)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] == '.' && i > 1)))
            return 1;
    return 0;
}

int export_csv_field(export_buf *b, const char *s, size_t n)
{
    int guard = formula_like(s, n);
    if (!guard && strcspn(s, ",\"\r\n") >= n && memchr(s, '\0', n) == NULL)
        return put(b, s, n);
    if (put(b, "\"", 1) < 0 || (guard && put(b, "'", 1) < 0))
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((s[i] == '"' && put(b, "\"\"", 2) < 0) || (s[i] != '"' && put(b, s + i, 1) < 0))
            return -1;
    return put(b, "\"", 1);
}

/* a value as CSV text: a string as is, a number in decimal, else empty */
static int csv_value(export_buf *b, json_t *v)
{
    char num[32];
    if (json_is_string(v))
        return export_csv_field(b, json_string_value(v), json_string_length(v));
    if (json_is_integer(v)) {
        int n = snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        return put(b, num, (size_t)n);
    }
    if (json_is_real(v)) {
        int n = snprintf(num, sizeof(num), "%.0f", json_real_value(v));
        return put(b, num, (size_t)n);
    }
    return 0;
}

/* a number stored as a real by cjson (1.7e12) comes back whole */
static json_t *whole(json_t *v)
{
    if (json_is_real(v) && json_real_value(v) >= -9e15 && json_real_value(v) <= 9e15)
        return json_integer((json_int_t)json_real_value(v));
    return v ? json_incref(v) : json_null();
}

int export_line(export_buf *b, int format, const char *state, const char *field, size_t flen,
                const char *value, size_t vlen)
{
    const char *colon = memchr(field, ':', flen);
    if (!colon || colon == field || !vlen || value[0] != '{')
        return 0;
    json_t *r = json_loadb(value, vlen, 0, NULL);
    const char *st = json_string_value(json_object_get(r, "state"));
    if (!json_is_object(r) || !st || (state && *state && strcmp(st, state))) {
        json_decref(r);
        return 0;
    }
    json_t *reason = json_object_get(r, "error");
    if (!reason)
        reason = json_object_get(r, "reason");
    json_t *vals[10] = {
        json_stringn(colon + 1, flen - (size_t)(colon + 1 - field)),
        json_stringn(field, (size_t)(colon - field)),
        json_string(st),
        whole(json_object_get(r, "provider_id")),
        whole(reason),
        whole(json_object_get(r, "attempts")),
        whole(json_object_get(r, "at")),
        whole(json_object_get(r, "dlv")),
        whole(json_object_get(r, "dlv_at")),
        whole(json_object_get(r, "dlv_error")),
    };
    static const char *const names[10] = {"address",     "channel",       "state", "provider_id",
                                          "reason",      "attempts",      "at",    "delivery",
                                          "delivery_at", "delivery_error"};
    int rc = 1;
    if (format == EXPORT_CSV) {
        for (int i = 0; i < 10 && rc == 1; i++)
            if ((i && put(b, ",", 1) < 0) || csv_value(b, vals[i]) < 0)
                rc = -1;
        if (rc == 1 && put(b, "\r\n", 2) < 0)
            rc = -1;
    } else {
        json_t *o = json_object();
        for (int i = 0; o && i < 10; i++)
            json_object_set(o, names[i], vals[i] ? vals[i] : json_null());
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (!s || put(b, s, strlen(s)) < 0 || put(b, "\n", 1) < 0)
            rc = -1;
        free(s);
        json_decref(o);
    }
    for (int i = 0; i < 10; i++)
        json_decref(vals[i]);
    json_decref(r);
    return rc;
}
