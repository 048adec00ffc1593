/* Job validation: every job from outside is parsed and checked field by
 * field into a normalized spec, or rejected with a reason naming the
 * field ("recipients[17].to: not an E.164 number"). */
#include "job.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "template.h"

#define METADATA_MAX 16384
#define LIST_KEY_MAX 256

static int fail(char *reason, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *reason, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, len, fmt, ap);
    va_end(ap);
    return -1;
}

int job_valid_id(const char *s, size_t n)
{
    if (n == 0 || n > JOB_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._:-", s[i]))
            return 0;
    return 1;
}

int job_valid_contact_id(const char *s, size_t n)
{
    if (!s || n == 0 || n > JOB_CONTACT_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._:@+-", s[i]))
            return 0;
    return 1;
}

void job_format_milli(long long milli, char *buf, size_t len)
{
    int neg = milli < 0;
    unsigned long long m = neg ? 0ULL - (unsigned long long)milli : (unsigned long long)milli;
    unsigned frac = (unsigned)(m % 1000);
    if (frac % 10 == 0)
        snprintf(buf, len, "%s%llu.%02u", neg ? "-" : "", m / 1000, frac / 10);
    else
        snprintf(buf, len, "%s%llu.%03u", neg ? "-" : "", m / 1000, frac);
}

int job_conversion_check(const json_t *o, int is_job, job_conversion *out, char *reason, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(o))
        return fail(reason, len, "not a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (strcmp(k, "value") && strcmp(k, "currency") && strcmp(k, "id") && strcmp(k, "note") &&
            (!is_job || (strcmp(k, "type") && strcmp(k, "conversation_id"))))
            return fail(reason, len, "unknown key: %s", k);
    }
    if (is_job) {
        json_t *c = json_object_get(o, "conversation_id");
        const char *cs = json_string_value(c);
        if (!c)
            return fail(reason, len, "conversation_id: missing");
        if (!cs || !job_valid_id(cs, strlen(cs)) || strchr(cs, ':'))
            return fail(reason, len,
                        "conversation_id: must be a conversation id (A-Z a-z 0-9 . _ -, at "
                        "most %d)",
                        JOB_ID_MAX);
        out->conversation_id = cs;
    }
    json_t *id = json_object_get(o, "id");
    if (id) {
        const char *is = json_string_value(id);
        if (!is || !job_valid_id(is, strlen(is)) || strchr(is, ':'))
            return fail(reason, len,
                        "id: must be an idempotency key of 1 to %d characters (A-Z a-z 0-9 . _ -)",
                        JOB_ID_MAX);
        out->key = is;
    } else if (is_job) {
        return fail(reason, len, "id: missing");
    }
    json_t *val = json_object_get(o, "value");
    if (!val)
        return fail(reason, len, "value: missing");
    double d = json_is_number(val) ? json_number_value(val) : -1;
    if (!json_is_number(val) || !(d >= 0) || d > CONVERSION_VALUE_MAX)
        return fail(reason, len, "value: must be a number from 0 to 1000000000000");
    double m = d * 1000.0;
    double r = nearbyint(m);
    if (fabs(m - r) > 1e-6 * (r > 1 ? r : 1))
        return fail(reason, len,
                    "value: at most three decimals (it is counted exactly, in thousandths)");
    out->milli = (long long)r;
    job_format_milli(out->milli, out->value, sizeof(out->value));
    json_t *cur = json_object_get(o, "currency");
    const char *cs = json_string_value(cur);
    if (!cur)
        return fail(reason, len, "currency: missing");
    if (!cs || strlen(cs) != 3 || !isupper((unsigned char)cs[0]) ||
        !isupper((unsigned char)cs[1]) || !isupper((unsigned char)cs[2]) ||
        (unsigned char)cs[0] > 'Z' || (unsigned char)cs[1] > 'Z' || (unsigned char)cs[2] > 'Z')
        return fail(reason, len, "currency: must be an ISO 4217 code such as \"EUR\"");
    memcpy(out->currency, cs, 4);
    json_t *note = json_object_get(o, "note");
    if (note) {
        if (!json_is_string(note))
            return fail(reason, len, "note: must be a string");
        if (json_string_length(note) > CONVERSION_NOTE_MAX)
            return fail(reason, len, "note: %zu bytes (max %d)", json_string_length(note),
                        CONVERSION_NOTE_MAX);
        if (memchr(json_string_value(note), 0, json_string_length(note)))
            return fail(reason, len, "note: must not contain NUL");
        out->note = json_string_value(note);
    }
    return 0;
}

static int kind_of(const job_rules *r, const char *channel)
{
    if (!r || !r->channel_kind)
        return ADDR_ANY;
    return r->channel_kind(r->ctx, channel);
}

/* Exactly n ASCII digits at s (no sign, no space): their value, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int y, int mo)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return mo == 2 && leap ? 29 : dm[mo - 1];
}

int job_parse_hhmm(const char *s)
{
    if (!s || strlen(s) != 5 || s[2] != ':')
        return -1;
    int h = digits(s, 2), m = digits(s + 3, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59)
        return -1;
    return h * 60 + m;
}

long long job_parse_time_ms(const char *s)
{
    /* YYYY-MM-DDTHH:MM:SS, every field exactly its digits: sscanf's %d
     * would take signs and spaces ("2026-11-27T-1:00:00Z") */
    if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 ||
        sec > 60 || d > days_in_month(y, mo))
        return -1;
    const char *p = s + 19;
    long ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
            n++;
            p++;
        }
        if (!n)
            return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    long off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2);
        int om = oh >= 0 && p[3] == ':' ? digits(p + 4, 2) : -1;
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        off = (oh * 60 + om) * 60 * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    /* years up to 9999: seconds and milliseconds stay far inside long long */
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    long long ms_total = ((long long)t - off) * 1000 + ms;
    return ms_total >= 0 ? ms_total : -1;
}

static int check_tmpl(json_t *v, const char *where, char *reason, size_t len)
{
    if (!json_is_string(v))
        return fail(reason, len, "%s: must be a string", where);
    char err[128];
    tmpl *t = tmpl_compile(json_string_value(v), err, sizeof(err));
    if (!t)
        return fail(reason, len, "%s: %s", where, err);
    tmpl_free(t);
    return 0;
}

/* ---- WhatsApp template components, in the Cloud API's own shape:
 * [{"type":"header"|"body"|"button", "sub_type", "index", "parameters":
 * [{"type": ..., "<type>": ..., "parameter_name"}]}]. Every string in them
 * is a {{var}} template rendered per recipient. */

static int in_set(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}

/* every string inside v compiles as a template */
static int check_strings(json_t *v, const char *where, int depth, char *reason, size_t len)
{
    if (depth > 8)
        return fail(reason, len, "%s: nested too deeply", where);
    char w[256];
    if (json_is_string(v))
        return check_tmpl(v, where, reason, len);
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            snprintf(w, sizeof(w), "%s[%zu]", where, i);
            if (check_strings(x, w, depth + 1, reason, len) < 0)
                return -1;
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            snprintf(w, sizeof(w), "%s.%s", where, k);
            if (check_strings(x, w, depth + 1, reason, len) < 0)
                return -1;
        }
    }
    return 0;
}

/* a non-empty string (a template) of at most max bytes */
static int need_str(json_t *o, const char *key, size_t max, const char *where, char *reason,
                    size_t len)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > max)
        return fail(reason, len, "%s.%s: must be a non-empty string of at most %zu bytes", where,
                    key, max);
    return 0;
}

/* the members an object may have besides the ones listed are refused */
static int only_keys(json_t *o, const char *const *keys, const char *where, char *reason,
                     size_t len)
{
    const char *k;
    json_t *x;
    json_object_foreach(o, k, x)
    {
        if (!in_set(k, keys))
            return fail(reason, len, "%s: unknown key: %.64s", where, k);
    }
    return 0;
}

static int check_param(json_t *p, const char *where, char *reason, size_t len)
{
    static const char *const types[] = {"text",     "currency", "date_time",   "image",  "video",
                                        "document", "payload",  "coupon_code", "action", NULL};
    if (!json_is_object(p))
        return fail(reason, len, "%s: must be an object", where);
    const char *t = json_string_value(json_object_get(p, "type"));
    if (!t || !in_set(t, types))
        return fail(reason, len,
                    "%s.type: must be text, currency, date_time, image, video, document, "
                    "payload, coupon_code or action",
                    where);
    const char *keys[] = {"type", t, "parameter_name", NULL};
    if (only_keys(p, keys, where, reason, len) < 0)
        return -1;
    json_t *pn = json_object_get(p, "parameter_name");
    if (pn) {
        const char *n = json_string_value(pn);
        size_t nl = n ? strlen(n) : 0;
        if (!nl || nl > 64 || strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_") != nl)
            return fail(reason, len, "%s.parameter_name: must be 1-64 of [a-z0-9_]", where);
    }
    json_t *v = json_object_get(p, t);
    char w[200];
    snprintf(w, sizeof(w), "%s.%s", where, t);
    if (!strcmp(t, "text") || !strcmp(t, "payload") || !strcmp(t, "coupon_code")) {
        size_t max = !strcmp(t, "coupon_code") ? 15 : !strcmp(t, "payload") ? 128 : 1024;
        if (need_str(p, t, max, where, reason, len) < 0)
            return -1;
    } else if (!strcmp(t, "currency")) {
        static const char *const ck[] = {"fallback_value", "code", "amount_1000", NULL};
        if (!json_is_object(v))
            return fail(reason, len, "%s: must be an object", w);
        if (only_keys(v, ck, w, reason, len) < 0 ||
            need_str(v, "fallback_value", 256, w, reason, len) < 0)
            return -1;
        const char *code = json_string_value(json_object_get(v, "code"));
        if (!code || strlen(code) != 3 || strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
            return fail(reason, len, "%s.code: must be an ISO 4217 code such as \"USD\"", w);
        json_t *a = json_object_get(v, "amount_1000");
        if (!json_is_integer(a) || json_integer_value(a) < 0 ||
            json_integer_value(a) > 1000000000000LL)
            return fail(reason, len, "%s.amount_1000: must be an integer (the amount times 1000)",
                        w);
    } else if (!strcmp(t, "date_time")) {
        static const char *const dk[] = {"fallback_value", NULL};
        if (!json_is_object(v))
            return fail(reason, len, "%s: must be an object", w);
        if (only_keys(v, dk, w, reason, len) < 0 ||
            need_str(v, "fallback_value", 256, w, reason, len) < 0)
            return -1;
    } else if (!strcmp(t, "action")) {
        if (!json_is_object(v))
            return fail(reason, len, "%s: must be an object", w);
    } else { /* image, video, document: a link (or an uploaded media id) */
        static const char *const mk[] = {"link", "id", "filename", "caption", NULL};
        if (!json_is_object(v))
            return fail(reason, len, "%s: must be an object", w);
        if (only_keys(v, mk, w, reason, len) < 0)
            return -1;
        int has_link = json_object_get(v, "link") != NULL,
            has_id = json_object_get(v, "id") != NULL;
        if (has_link == has_id)
            return fail(reason, len, "%s: needs link or id (one of them)", w);
        if (need_str(v, has_link ? "link" : "id", 2048, w, reason, len) < 0)
            return -1;
        if (json_object_get(v, "filename") && strcmp(t, "document"))
            return fail(reason, len, "%s.filename: only for a document", w);
    }
    return check_strings(p, where, 0, reason, len);
}

static int check_components(json_t *cs, int *has_body, char *reason, size_t len)
{
    static const char *const ckeys[] = {"type", "sub_type", "index", "parameters", NULL};
    static const char *const subs[] = {"quick_reply", "url", "copy_code",  "flow",
                                       "catalog",     "mpm", "voice_call", NULL};
    if (!json_is_array(cs) || json_array_size(cs) == 0 || json_array_size(cs) > 10)
        return fail(reason, len,
                    "message.template.components: must be an array of 1 to 10 "
                    "components");
    int seen_header = 0, seen_body = 0, seen_button[10] = {0};
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c)
    {
        char where[96];
        snprintf(where, sizeof(where), "message.template.components[%zu]", i);
        if (!json_is_object(c))
            return fail(reason, len, "%s: must be an object", where);
        if (only_keys(c, ckeys, where, reason, len) < 0)
            return -1;
        const char *t = json_string_value(json_object_get(c, "type"));
        if (!t || (strcmp(t, "header") && strcmp(t, "body") && strcmp(t, "button")))
            return fail(reason, len, "%s.type: must be header, body or button", where);
        json_t *sub = json_object_get(c, "sub_type"), *idx = json_object_get(c, "index");
        if (!strcmp(t, "button")) {
            if (!json_is_string(sub) || !in_set(json_string_value(sub), subs))
                return fail(reason, len,
                            "%s.sub_type: must be quick_reply, url, copy_code, flow, catalog, mpm "
                            "or voice_call",
                            where);
            long n = -1;
            if (json_is_integer(idx))
                n = (long)json_integer_value(idx);
            else if (json_is_string(idx) && json_string_length(idx) == 1 &&
                     json_string_value(idx)[0] >= '0' && json_string_value(idx)[0] <= '9')
                n = json_string_value(idx)[0] - '0';
            if (n < 0 || n > 9)
                return fail(reason, len, "%s.index: must be 0 to 9 (the button's position)", where);
            if (seen_button[n]++)
                return fail(reason, len, "%s: button %ld given twice", where, n);
        } else {
            if (sub || idx)
                return fail(reason, len, "%s: sub_type and index are for buttons only", where);
            if (!strcmp(t, "header") && seen_header++)
                return fail(reason, len, "%s: one header only", where);
            if (!strcmp(t, "body") && seen_body++)
                return fail(reason, len, "%s: one body only", where);
        }
        json_t *ps = json_object_get(c, "parameters");
        size_t max = !strcmp(t, "header") || !strcmp(t, "button") ? 1 : 100;
        if (!json_is_array(ps) || json_array_size(ps) == 0 || json_array_size(ps) > max)
            return fail(reason, len, "%s.parameters: must be an array of 1 to %zu parameters",
                        where, max);
        size_t k;
        json_t *p;
        json_array_foreach(ps, k, p)
        {
            char w[160];
            snprintf(w, sizeof(w), "%s.parameters[%zu]", where, k);
            if (check_param(p, w, reason, len) < 0)
                return -1;
        }
    }
    *has_body = seen_body;
    return 0;
}

/* message.media: one image, video, document or audio by URL */
static int check_media(json_t *v, char *reason, size_t len)
{
    static const char *const keys[] = {"type", "url", "caption", "filename", NULL};
    static const char *const types[] = {"image", "video", "document", "audio", NULL};
    if (!json_is_object(v))
        return fail(reason, len, "message.media: must be an object");
    if (only_keys(v, keys, "message.media", reason, len) < 0)
        return -1;
    const char *t = json_string_value(json_object_get(v, "type"));
    if (!t || !in_set(t, types))
        return fail(reason, len, "message.media.type: must be image, video, document or audio");
    if (need_str(v, "url", 2048, "message.media", reason, len) < 0)
        return -1;
    const char *u = json_string_value(json_object_get(v, "url"));
    if (strncmp(u, "https://", 8) && strncmp(u, "http://", 7) && strncmp(u, "{{", 2))
        return fail(reason, len, "message.media.url: must be an http(s) URL");
    if (json_object_get(v, "caption") &&
        (need_str(v, "caption", 1024, "message.media", reason, len) < 0 || !strcmp(t, "audio")))
        return fail(reason, len,
                    "message.media.caption: a string of at most 1024 bytes, not "
                    "for audio");
    if (json_object_get(v, "filename") &&
        (need_str(v, "filename", 240, "message.media", reason, len) < 0 || strcmp(t, "document")))
        return fail(reason, len, "message.media.filename: a string, for a document only");
    return check_strings(v, "message.media", 0, reason, len);
}

static int check_message(json_t *m, char *reason, size_t len)
{
    if (!json_is_object(m))
        return fail(reason, len, "message: %s", m ? "must be an object" : "missing");
    const char *k;
    json_t *v;
    int content = 0;
    json_object_foreach(m, k, v)
    {
        char where[64];
        snprintf(where, sizeof(where), "message.%s", k);
        if (!strcmp(k, "text") || !strcmp(k, "html")) {
            if (check_tmpl(v, where, reason, len) < 0)
                return -1;
            content = 1;
        } else if (!strcmp(k, "subject")) {
            if (check_tmpl(v, where, reason, len) < 0)
                return -1;
        } else if (!strcmp(k, "template")) {
            if (!json_is_object(v))
                return fail(reason, len, "message.template: must be an object");
            const char *tk;
            json_t *tv;
            json_object_foreach(v, tk, tv)
            {
                if (!strcmp(tk, "name") || !strcmp(tk, "language")) {
                    if (!json_is_string(tv) || !json_string_length(tv) ||
                        json_string_length(tv) > 512)
                        return fail(reason, len, "message.template.%s: must be a non-empty string",
                                    tk);
                } else if (!strcmp(tk, "params")) {
                    if (!json_is_array(tv) || json_array_size(tv) > 16)
                        return fail(
                            reason, len,
                            "message.template.params: must be an array of at most 16 strings");
                    size_t i;
                    json_t *p;
                    json_array_foreach(tv, i, p)
                    {
                        char w[64];
                        snprintf(w, sizeof(w), "message.template.params[%zu]", i);
                        if (check_tmpl(p, w, reason, len) < 0)
                            return -1;
                    }
                } else if (!strcmp(tk, "components")) {
                    int body = 0;
                    if (check_components(tv, &body, reason, len) < 0)
                        return -1;
                    if (body && json_object_get(v, "params"))
                        return fail(reason, len,
                                    "message.template: params and a body component both give "
                                    "the body's parameters: give one");
                } else {
                    return fail(reason, len, "message.template: unknown key: %s", tk);
                }
            }
            if (!json_object_get(v, "name"))
                return fail(reason, len, "message.template.name: missing");
            if (!json_object_get(v, "language"))
                json_object_set_new(v, "language", json_string("en_US"));
            content = 1;
        } else if (!strcmp(k, "media")) {
            if (check_media(v, reason, len) < 0)
                return -1;
            content = 1;
        } else {
            return fail(reason, len, "message: unknown key: %s", k);
        }
    }
    if (!content)
        return fail(reason, len, "message: needs text, html, template or media");
    return 0;
}

/* Check (and normalize, when norm is set) one recipient. */
static int recipient(json_t *r, const job_rules *rules, const char *const *chs, size_t nch,
                     const char *where, json_t **norm, char *reason, size_t len)
{
    if (!json_is_object(r))
        return fail(reason, len, "%s: must be an object", where);
    const char *k;
    json_t *v;
    json_object_foreach(r, k, v)
    {
        if (strcmp(k, "to") && strcmp(k, "vars") && strcmp(k, "contact_id"))
            return fail(reason, len, "%s: unknown key: %s", where, k);
    }
    /* the contact the addresses belong to (optout_scope = contact) */
    json_t *cid = json_object_get(r, "contact_id");
    if (cid && (!json_is_string(cid) ||
                !job_valid_contact_id(json_string_value(cid), json_string_length(cid))))
        return fail(reason, len,
                    "%s.contact_id: must be a string of 1 to %d characters (A-Z a-z 0-9 . _ : @ "
                    "+ -)",
                    where, JOB_CONTACT_ID_MAX);
    json_t *to = json_object_get(r, "to");
    if (!to)
        return fail(reason, len, "%s.to: missing", where);
    if (!json_is_string(to) && !json_is_object(to))
        return fail(reason, len, "%s.to: must be a string or an object of channel addresses",
                    where);
    json_t *vars = json_object_get(r, "vars");
    json_t *nvars = NULL;
    if (vars) {
        if (!json_is_object(vars))
            return fail(reason, len, "%s.vars: must be an object", where);
        if (norm)
            nvars = json_object();
        json_object_foreach(vars, k, v)
        {
            char buf[64];
            json_t *s = NULL;
            if (json_is_string(v))
                s = json_incref(v);
            else if (json_is_integer(v)) {
                snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                s = json_string(buf);
            } else if (json_is_real(v)) {
                snprintf(buf, sizeof(buf), "%.15g", json_real_value(v));
                s = json_string(buf);
            } else if (json_is_boolean(v)) {
                s = json_string(json_is_true(v) ? "true" : "false");
            } else {
                json_decref(nvars);
                return fail(reason, len, "%s.vars.%s: must be a string, number or boolean", where,
                            k);
            }
            if (nvars)
                json_object_set_new(nvars, k, s);
            else
                json_decref(s);
        }
    }
    json_t *nto = norm ? json_object() : NULL;
    for (size_t i = 0; i < nch; i++) {
        char addr[ADDR_MAX], why[JOB_REASON_MAX];
        int kind = kind_of(rules, chs[i]);
        if (job_recipient_address(r, chs[i], kind < 0 ? ADDR_ANY : kind, addr, sizeof(addr), why,
                                  sizeof(why)) < 0) {
            json_decref(nto);
            json_decref(nvars);
            return fail(reason, len, "%s.%s", where, why);
        }
        if (nto)
            json_object_set_new(nto, chs[i], json_string(addr));
    }
    if (norm) {
        *norm = json_object();
        json_object_set_new(*norm, "to", nto);
        if (nvars)
            json_object_set_new(*norm, "vars", nvars);
        if (cid)
            json_object_set(*norm, "contact_id", cid);
    }
    return 0;
}

int job_recipient_address(const json_t *r, const char *channel, int kind, char *addr,
                          size_t addr_len, char *reason, size_t reason_len)
{
    json_t *to = json_object_get(r, "to");
    const char *s = NULL;
    const char *path = "to";
    char p[80];
    if (json_is_string(to)) {
        s = json_string_value(to);
    } else if (json_is_object(to)) {
        json_t *v = json_object_get(to, channel);
        snprintf(p, sizeof(p), "to.%s", channel);
        path = p;
        if (!v)
            return fail(reason, reason_len, "%s: missing address for channel %s", "to", channel);
        if (!json_is_string(v))
            return fail(reason, reason_len, "%s: must be a string", path);
        s = json_string_value(v);
    } else {
        return fail(reason, reason_len, "to: missing");
    }
    const char *why = NULL;
    if (addr_normalize(kind, s, addr, addr_len, &why) < 0)
        return fail(reason, reason_len, "%s: %s", path, why);
    return 0;
}

int job_window_choice(int has_free_form, int has_template, long long window_ms,
                      long long last_inbound_ms, long long now_ms)
{
    if (!has_free_form)
        return JOB_SEND_TEMPLATE;
    if (window_ms <= 0 || (last_inbound_ms > 0 && now_ms - last_inbound_ms < window_ms))
        return JOB_SEND_FREE_FORM;
    return has_template ? JOB_SEND_TEMPLATE : JOB_OUTSIDE_WINDOW;
}

int job_recipient_check(const json_t *r, const job_rules *rules, const char *const *channels,
                        size_t n_channels, char *reason, size_t reason_len)
{
    return recipient((json_t *)r, rules, channels, n_channels, "recipient", NULL, reason,
                     reason_len);
}

static const char *const top_keys[] = {
    "type",       "id",         "channel",         "channels",
    "message",    "recipients", "recipients_list", "send_at",
    "rate_per_s", "metadata",   "defaults",        "quiet_hours",
    "to",         "vars",       "priority",        "fallback_after_s",
    NULL};

/* the keys only a conversion job takes */
static const char *const conversion_keys[] = {"conversation_id", "value", "currency", "note", NULL};

static int known_top(const char *k)
{
    if (!strcmp(k, "conversation_id")) /* a conversation message's (message jobs) */
        return 1;
    for (const char *const *p = top_keys; *p; p++)
        if (!strcmp(*p, k))
            return 1;
    for (const char *const *p = conversion_keys; *p; p++)
        if (!strcmp(*p, k))
            return 1;
    return 0;
}

static int parse(json_t *root, const job_rules *rules, job *out, char *reason, size_t len)
{
    if (!json_is_object(root))
        return fail(reason, len, "not a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (!known_top(k))
            return fail(reason, len, "unknown key: %s", k);
    }
    json_t *type = json_object_get(root, "type");
    if (!type)
        return fail(reason, len, "type: missing");
    const char *ts = json_string_value(type);
    if (!ts)
        return fail(reason, len, "type: must be a string");
    if (!strcmp(ts, "broadcast"))
        out->type = JOB_BROADCAST;
    else if (!strcmp(ts, "message"))
        out->type = JOB_MESSAGE;
    else if (!strcmp(ts, "pause"))
        out->type = JOB_PAUSE;
    else if (!strcmp(ts, "resume"))
        out->type = JOB_RESUME;
    else if (!strcmp(ts, "cancel"))
        out->type = JOB_CANCEL;
    else if (!strcmp(ts, "conversion"))
        out->type = JOB_CONVERSION;
    else
        return fail(reason, len,
                    "type: must be broadcast, message, pause, resume, cancel or conversion, not "
                    "%.40s",
                    ts);
    if (out->type == JOB_CONVERSION) {
        if (job_conversion_check(root, 1, &out->conversion, reason, len) < 0)
            return -1;
        out->id = out->conversion.key;
        return 0;
    }
    /* a message job takes conversation_id (a conversation message), checked below */
    for (const char *const *p = conversion_keys; *p; p++) {
        if (!json_object_get(root, *p))
            continue;
        if (!strcmp(*p, "conversation_id") && out->type == JOB_MESSAGE)
            continue;
        if (!strcmp(*p, "conversation_id") && out->type < JOB_PAUSE)
            return fail(reason, len, "conversation_id: only a message job takes it");
        return fail(reason, len, "%s: not allowed in a %s job", *p, ts);
    }
    json_t *id = json_object_get(root, "id");
    if (!id)
        return fail(reason, len, "id: missing");
    if (!json_is_string(id))
        return fail(reason, len, "id: must be a string");
    if (!job_valid_id(json_string_value(id), strlen(json_string_value(id))))
        return fail(reason, len,
                    "id: contains forbidden characters or is longer than %d "
                    "(allowed: A-Z a-z 0-9 . _ -)",
                    JOB_ID_MAX);
    /* A campaign's keys are named after its id (omni:campaign:{id},
     * omni:campaign:{id}:rcpt): with ':' in ids, campaign "a:rcpt" and
     * campaign "a" would share one. Control jobs may still name such an id
     * (created before this rule): they are answered unknown_campaign. */
    if (out->type < JOB_PAUSE && strchr(json_string_value(id), ':'))
        return fail(reason, len,
                    "id: ':' is not allowed (it would collide with another campaign's keys)");
    out->id = json_string_value(id);
    if (out->type >= JOB_PAUSE) {
        json_object_foreach(root, k, v)
        {
            if (strcmp(k, "type") && strcmp(k, "id"))
                return fail(reason, len, "%s: not allowed in a %s job", k, ts);
        }
        return 0;
    }

    /* channels */
    json_t *ch = json_object_get(root, "channel"), *chs = json_object_get(root, "channels");
    if (ch && chs)
        return fail(reason, len, "channel: give channel or channels, not both");
    if (!ch && !chs)
        return fail(reason, len, "channels: missing (give channel or channels)");
    if (ch) {
        if (!json_is_string(ch))
            return fail(reason, len, "channel: must be a string");
        chs = json_array();
        json_array_append(chs, ch);
        json_object_set_new(root, "channels", chs);
        json_object_del(root, "channel");
    }
    if (!json_is_array(chs) || json_array_size(chs) == 0)
        return fail(reason, len, "channels: must be a non-empty array");
    if (json_array_size(chs) > JOB_MAX_CHANNELS)
        return fail(reason, len, "channels: at most %d channels", JOB_MAX_CHANNELS);
    size_t i;
    json_array_foreach(chs, i, v)
    {
        if (!json_is_string(v))
            return fail(reason, len, "channels[%zu]: must be a string", i);
        const char *c = json_string_value(v);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(out->channels[j], c))
                return fail(reason, len, "channels[%zu]: %s given twice", i, c);
        if (kind_of(rules, c) < 0)
            return fail(reason, len, "unknown channel: %.64s", c);
        out->channels[i] = c;
    }
    out->n_channels = json_array_size(chs);

    if (check_message(json_object_get(root, "message"), reason, len) < 0)
        return -1;
    if (json_object_get(json_object_get(root, "message"), "media"))
        for (size_t c = 0; c < out->n_channels; c++)
            if (kind_of(rules, out->channels[c]) == ADDR_EMAIL)
                return fail(reason, len, "message.media: channel %s is email, which takes no media",
                            out->channels[c]);

    if (out->type == JOB_BROADCAST &&
        !json_object_get(json_object_get(root, "message"), "template") && rules &&
        rules->channel_window_s)
        for (size_t c = 0; c < out->n_channels; c++) {
            long long w = rules->channel_window_s(rules->ctx, out->channels[c]);
            if (w <= 0)
                continue;
            char span[32];
            if (w == 3600)
                snprintf(span, sizeof(span), "hour");
            else if (w % 3600 == 0)
                snprintf(span, sizeof(span), "%lld hours", w / 3600);
            else
                snprintf(span, sizeof(span), "%lld seconds", w);
            return fail(reason, len,
                        "message.template: missing: a broadcast on channel %.64s needs an "
                        "approved template (free-form text only reaches contacts who wrote in "
                        "the last %s: the customer service window)",
                        out->channels[c], span);
        }

    json_t *defs = json_object_get(root, "defaults");
    if (defs) {
        if (!json_is_object(defs))
            return fail(reason, len, "defaults: must be an object");
        json_object_foreach(defs, k, v)
        {
            if (!json_is_string(v))
                return fail(reason, len, "defaults.%s: must be a string", k);
        }
    }
    json_t *md = json_object_get(root, "metadata");
    if (md) {
        if (!json_is_object(md))
            return fail(reason, len, "metadata: must be an object");
        char *s = json_dumps(md, JSON_COMPACT);
        size_t n = s ? strlen(s) : 0;
        free(s);
        if (n > METADATA_MAX)
            return fail(reason, len, "metadata: %zu bytes (max %d)", n, METADATA_MAX);
    }
    json_t *sa = json_object_get(root, "send_at");
    if (sa) {
        if (!json_is_string(sa) || (out->send_at_ms = job_parse_time_ms(json_string_value(sa))) < 0)
            return fail(reason, len, "send_at: not an ISO 8601 time (e.g. 2026-11-27T09:00:00Z)");
    }
    json_t *rate = json_object_get(root, "rate_per_s");
    if (rate) {
        if (!json_is_number(rate) || isnan(json_number_value(rate)) ||
            json_number_value(rate) < JOB_RATE_MIN || json_number_value(rate) > 1e6)
            return fail(reason, len,
                        "rate_per_s: must be a number from 0.01 (one message every 100 s) to "
                        "1000000");
        out->rate_per_s = json_number_value(rate);
    }
    json_t *prio = json_object_get(root, "priority");
    if (prio &&
        (!json_is_integer(prio) || json_integer_value(prio) < 1 || json_integer_value(prio) > 100))
        return fail(reason, len,
                    "priority: must be an integer from 1 to 100 (sends per turn on a shared "
                    "connector; default 1)");
    json_t *fa = json_object_get(root, "fallback_after_s");
    if (fa) {
        if (!json_is_integer(fa) || json_integer_value(fa) < 1 ||
            json_integer_value(fa) > FALLBACK_AFTER_MAX_S)
            return fail(reason, len,
                        "fallback_after_s: must be an integer from 1 to %d (seconds without a "
                        "delivered or read status before the next channel is tried)",
                        FALLBACK_AFTER_MAX_S);
        if (out->n_channels < 2)
            return fail(reason, len,
                        "fallback_after_s: needs at least two channels (a next channel to move "
                        "to)");
    }
    json_t *qh = json_object_get(root, "quiet_hours");
    if (qh) {
        if (!json_is_object(qh) || json_object_size(qh) != 2 || !json_object_get(qh, "start") ||
            !json_object_get(qh, "end"))
            return fail(reason, len,
                        "quiet_hours: must be {\"start\":\"HH:MM\",\"end\":\"HH:MM\"}");
        static const char *const ends[] = {"start", "end"};
        for (int k = 0; k < 2; k++)
            if (job_parse_hhmm(json_string_value(json_object_get(qh, ends[k]))) < 0)
                return fail(reason, len,
                            "quiet_hours.%s: must be a time \"HH:MM\" from 00:00 to 23:59 "
                            "(two digits each)",
                            ends[k]);
    }

    /* a conversation message: a message job sent into a conversation
     * (POST /v1/conversations/{id}/messages, omnicast conversation send) */
    json_t *cv = json_object_get(root, "conversation_id");
    if (cv) {
        if (out->type != JOB_MESSAGE)
            return fail(reason, len, "conversation_id: only a message job takes it");
        const char *cs = json_string_value(cv);
        if (!cs || !job_valid_id(cs, strlen(cs)) || strchr(cs, ':'))
            return fail(reason, len,
                        "conversation_id: must be a conversation id (A-Z a-z 0-9 . _ -, at most "
                        "%d)",
                        JOB_ID_MAX);
    }

    /* recipients */
    json_t *to = json_object_get(root, "to"), *vars = json_object_get(root, "vars");
    json_t *rs = json_object_get(root, "recipients");
    json_t *rl = json_object_get(root, "recipients_list");
    if ((to || vars) && out->type != JOB_MESSAGE)
        return fail(reason, len, "%s: only a message job takes to/vars (use recipients)",
                    to ? "to" : "vars");
    if (to) {
        if (rs || rl)
            return fail(reason, len, "to: give to or recipients, not both");
        rs = json_array();
        json_t *one = json_object();
        json_object_set(one, "to", to);
        if (vars)
            json_object_set(one, "vars", vars);
        json_array_append_new(rs, one);
        json_object_set_new(root, "recipients", rs);
        json_object_del(root, "to");
        json_object_del(root, "vars");
    } else if (vars) {
        return fail(reason, len, "to: missing");
    }
    if (rs && rl)
        return fail(reason, len, "recipients: give recipients or recipients_list, not both");
    if (!rs && !rl)
        return fail(reason, len, "recipients: missing (give recipients or recipients_list)");
    if (rl) {
        if (out->type == JOB_MESSAGE)
            return fail(reason, len, "recipients_list: a message job has one recipient");
        const char *s = json_string_value(rl);
        if (!s || !*s || strlen(s) > LIST_KEY_MAX)
            return fail(reason, len, "recipients_list: must be a Redis key (1-%d characters)",
                        LIST_KEY_MAX);
        for (const char *p = s; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f)
                return fail(reason, len,
                            "recipients_list: must not contain spaces or control "
                            "characters");
        out->recipients_list = s;
        return 0;
    }
    if (!json_is_array(rs) || json_array_size(rs) == 0)
        return fail(reason, len, "recipients: must be a non-empty array");
    size_t max = rules && rules->max_inline_recipients ? rules->max_inline_recipients : 10000;
    if (json_array_size(rs) > max)
        return fail(reason, len,
                    "recipients: %zu inline recipients exceed the cap of %zu; use recipients_list",
                    json_array_size(rs), max);
    if (out->type == JOB_MESSAGE && json_array_size(rs) != 1)
        return fail(reason, len, "recipients: a message job has exactly one recipient");
    json_t *nrs = json_array();
    json_array_foreach(rs, i, v)
    {
        char where[48];
        snprintf(where, sizeof(where), "recipients[%zu]", i);
        json_t *n = NULL;
        if (recipient(v, rules, out->channels, out->n_channels, where, &n, reason, len) < 0) {
            json_decref(nrs);
            return -1;
        }
        json_array_append_new(nrs, n);
    }
    json_object_set_new(root, "recipients", nrs);
    out->n_inline = json_array_size(nrs);
    return 0;
}

int job_parse(const char *raw, size_t len, const job_rules *rules, job *out, char *reason,
              size_t reason_len)
{
    memset(out, 0, sizeof(*out));
    size_t max = rules && rules->max_bytes ? rules->max_bytes : 1 << 20;
    if (len > max)
        return fail(reason, reason_len, "job too large: %zu bytes (max %zu)", len, max);
    json_error_t je;
    json_t *root = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return fail(reason, reason_len, "not JSON: %s at line %d column %d", je.text, je.line,
                    je.column);
    if (parse(root, rules, out, reason, reason_len) < 0) {
        json_decref(root);
        memset(out, 0, sizeof(*out));
        return -1;
    }
    out->spec = root;
    /* re-point borrowed strings: normalization may have replaced arrays */
    json_t *chs = json_object_get(root, "channels");
    for (size_t i = 0; i < out->n_channels; i++)
        out->channels[i] = json_string_value(json_array_get(chs, i));
    out->recipients_list = json_string_value(json_object_get(root, "recipients_list"));
    return 0;
}

void job_free(job *j)
{
    json_decref(j->spec);
    memset(j, 0, sizeof(*j));
}
