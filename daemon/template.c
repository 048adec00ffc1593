/* {{var}} templates compiled once into segments (literal text, variable with
 * an optional inline default) so rendering per recipient is one loop with
 * no parsing; plus the escaping and Retry-After parsing connectors share. */
#include "template.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct seg {
    int var;       /* 0: literal, 1: variable */
    const char *s; /* literal text or variable name (into t->src) */
    size_t len;
    const char *def; /* inline default, or NULL */
    size_t def_len;
    int raw; /* {{{name}}} or {{name|raw}}: trusted markup, never HTML-escaped */
} seg;

struct tmpl {
    char *src;
    seg *segs;
    size_t n;
};

static int name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

static int add_seg(tmpl *t, size_t *cap, seg s)
{
    if (t->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        seg *ns = realloc(t->segs, nc * sizeof(*ns));
        if (!ns)
            return -1;
        t->segs = ns;
        *cap = nc;
    }
    t->segs[t->n++] = s;
    return 0;
}

tmpl *tmpl_compile(const char *src, char *err, size_t err_len)
{
    tmpl *t = calloc(1, sizeof(*t));
    if (!t || !(t->src = strdup(src ? src : ""))) {
        free(t);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    size_t cap = 0;
    const char *p = t->src, *lit = p;
    while (*p) {
        if (p[0] != '{' || p[1] != '{') {
            p++;
            continue;
        }
        if (p > lit && add_seg(t, &cap, (seg){0, lit, (size_t)(p - lit), NULL, 0, 0}) < 0)
            goto oom;
        const char *open = p;
        int triple = p[2] == '{';
        const char *close = strstr(p + 2 + triple, triple ? "}}}" : "}}");
        if (!close) {
            snprintf(err, err_len, "unclosed %s at offset %zu", triple ? "{{{" : "{{",
                     (size_t)(open - t->src));
            goto fail;
        }
        const char *a = p + 2 + triple, *e = close;
        const char *bar = memchr(a, '|', (size_t)(e - a));
        const char *ne = bar ? bar : e;
        while (a < ne && isspace((unsigned char)*a))
            a++;
        while (ne > a && isspace((unsigned char)ne[-1]))
            ne--;
        if (ne == a) {
            snprintf(err, err_len, "empty variable name at offset %zu", (size_t)(open - t->src));
            goto fail;
        }
        for (const char *q = a; q < ne; q++)
            if (!name_char(*q)) {
                snprintf(err, err_len, "bad character in variable name at offset %zu",
                         (size_t)(q - t->src));
                goto fail;
            }
        seg s = {1, a, (size_t)(ne - a), NULL, 0, triple};
        if (bar && triple) {
            snprintf(err, err_len, "{{{%.*s}}} takes no default at offset %zu", (int)s.len, s.s,
                     (size_t)(open - t->src));
            goto fail;
        }
        if (bar && e - bar - 1 == 3 && !memcmp(bar + 1, "raw", 3)) {
            s.raw = 1;
        } else if (bar) {
            s.def = bar + 1;
            s.def_len = (size_t)(e - bar - 1);
        }
        if (add_seg(t, &cap, s) < 0)
            goto oom;
        p = close + 2 + triple;
        lit = p;
    }
    if (p > lit && add_seg(t, &cap, (seg){0, lit, (size_t)(p - lit), NULL, 0, 0}) < 0)
        goto oom;
    return t;
oom:
    snprintf(err, err_len, "out of memory");
fail:
    tmpl_free(t);
    return NULL;
}

void tmpl_free(tmpl *t)
{
    if (!t)
        return;
    free(t->segs);
    free(t->src);
    free(t);
}

const char *tmpl_var_name(const tmpl *t, size_t n, size_t *len)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->segs[i].var && n-- == 0) {
            *len = t->segs[i].len;
            return t->segs[i].s;
        }
    return NULL;
}

int tmpl_render(const tmpl *t, tmpl_lookup_fn lookup, void *ctx, int escape, oc_buf *out,
                char *missing, size_t missing_len)
{
    for (size_t i = 0; i < t->n; i++) {
        const seg *s = &t->segs[i];
        if (!s->var) {
            if (oc_buf_append(out, s->s, s->len) < 0)
                return -2;
            continue;
        }
        const char *v = lookup(ctx, s->s, s->len);
        size_t vl;
        int esc = escape;
        if (v) {
            vl = strlen(v);
        } else if (s->def) {
            /* the template's own text: as trusted as the literal around it */
            v = s->def;
            vl = s->def_len;
            if (esc == OC_ESCAPE_HTML)
                esc = OC_ESCAPE_NONE;
        } else {
            snprintf(missing, missing_len, "%.*s", (int)s->len, s->s);
            return -1;
        }
        if (esc == OC_ESCAPE_HTML && s->raw)
            esc = OC_ESCAPE_NONE;
        int rc = esc == OC_ESCAPE_JSON   ? json_escape_append(out, v, vl)
                 : esc == OC_ESCAPE_HTML ? html_escape_append(out, v, vl)
                                         : oc_buf_append(out, v, vl);
        if (rc < 0)
            return -2;
    }
    if (oc_buf_reserve(out, 0) < 0)
        return -2;
    out->data[out->len] = '\0';
    return 0;
}

int tmpl_render_once(const char *src, tmpl_lookup_fn lookup, void *ctx, int escape, oc_buf *out,
                     char *missing, size_t missing_len)
{
    char err[128];
    tmpl *t = tmpl_compile(src, err, sizeof(err));
    if (!t) {
        snprintf(missing, missing_len, "%s", err);
        return -2;
    }
    int rc = tmpl_render(t, lookup, ctx, escape, out, missing, missing_len);
    tmpl_free(t);
    return rc;
}

int html_escape_append(oc_buf *out, const char *s, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        if (oc_buf_append(out, s + from, i - from) < 0 || oc_buf_puts(out, rep) < 0)
            return -1;
        from = i + 1;
    }
    return oc_buf_append(out, s + from, len - from);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2;
        min = 0x80;
        c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        min = 0x800;
        c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

int json_escape_append(oc_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    if (oc_buf_reserve(out, len + 2) < 0)
        return -1;
    while (i < len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            i++;
            continue;
        }
        if (run && oc_buf_append(out, p + i - run, run) < 0)
            return -1;
        run = 0;
        char esc[8];
        const char *e = esc;
        size_t el = 2;
        unsigned cp;
        size_t ul;
        switch (c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        default:
            if (c < 0x20) {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
                break;
            }
            ul = utf8_len(p + i, len - i, &cp);
            if (ul == 0) {
                e = "\xef\xbf\xbd"; /* U+FFFD for an invalid byte */
                el = 3;
                ul = 1;
            } else if (cp == 0x2028 || cp == 0x2029) {
                e = cp == 0x2028 ? "\\u2028" : "\\u2029";
                el = 6;
            } else {
                e = (const char *)p + i;
                el = ul;
            }
            if (oc_buf_append(out, e, el) < 0)
                return -1;
            i += ul;
            continue;
        }
        if (oc_buf_append(out, e, el) < 0)
            return -1;
        i++;
    }
    if (run && oc_buf_append(out, p + i - run, run) < 0)
        return -1;
    return 0;
}

/* ---- Retry-After */

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static int month_of(const char *s)
{
    static const char *const m[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncmp(s, m[i], 3) == 0)
            return i + 1;
    return 0;
}

long retry_after_parse_ms(const char *v, long long now_ms)
{
    const long cap = RETRY_AFTER_MAX_MS;
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        /* delta-seconds: 1*DIGIT of any length; read digit by digit and
         * saturate at the cap instead of overflowing */
        long long s = 0;
        const char *p = v;
        for (; isdigit((unsigned char)*p); p++)
            if (s <= cap / 1000)
                s = s * 10 + (*p - '0');
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p)
            return -1;
        return s > cap / 1000 ? cap : (long)(s * 1000);
    }
    int d = 0, y = 0, hh = 0, mm = 0, ss = 0;
    char mon[4] = {0}, wk[16] = {0};
    int mo = 0;
    /* %2d would take a sign ("-1"): every numeric field is checked below */
    if (sscanf(v, "%3s, %2d %3s %4d %2d:%2d:%2d GMT", wk, &d, mon, &y, &hh, &mm, &ss) == 7) {
        mo = month_of(mon); /* IMF-fixdate */
    } else if (sscanf(v, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT", wk, &d, mon, &y, &hh, &mm,
                      &ss) == 7) {
        mo = month_of(mon); /* RFC 850, two-digit year */
        if (y < 0)
            return -1;
        y += y < 70 ? 2000 : 1900;
    } else if (sscanf(v, "%3s %3s %2d %2d:%2d:%2d %4d", wk, mon, &d, &hh, &mm, &ss, &y) == 7) {
        mo = month_of(mon); /* asctime */
    } else {
        return -1;
    }
    if (!mo || d < 1 || d > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 ||
        y < 1970 || y > 9999)
        return -1;
    /* years up to 9999 keep this well inside long long */
    long long t =
        (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + hh * 3600 + mm * 60 + ss) * 1000;
    if (now_ms >= t)
        return 0;
    if (now_ms <= t - cap) /* also a now_ms so negative that t - now_ms would overflow */
        return cap;
    return (long)(t - now_ms);
}
