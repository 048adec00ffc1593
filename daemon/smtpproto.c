/* SMTP's pure pieces (see smtpproto.h). */
#include "smtpproto.h"
#include "omnicast/utf8.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

int smtp_reply_parse(const char *buf, size_t len, size_t *used, smtp_reply *r)
{
    size_t off = 0;
    int code = 0, n = 0;
    memset(r, 0, sizeof(*r));
    for (;;) {
        if (off >= len)
            return off > SMTP_REPLY_MAX ? SMTP_R_BAD : SMTP_R_MORE;
        const char *line = buf + off;
        size_t left = len - off;
        const char *nl = memchr(line, '\n', left > SMTP_LINE_MAX + 1 ? SMTP_LINE_MAX + 1 : left);
        if (!nl)
            return left > SMTP_LINE_MAX ? SMTP_R_BAD : SMTP_R_MORE;
        size_t ll = (size_t)(nl - line); /* without the LF */
        size_t tl = ll;                  /* without the CR too */
        if (tl && line[tl - 1] == '\r')
            tl--;
        if (tl < 3 || !digit(line[0]) || !digit(line[1]) || !digit(line[2]) || line[0] < '2' ||
            line[0] > '5')
            return SMTP_R_BAD;
        int c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (n && c != code)
            return SMTP_R_BAD;
        code = c;
        char sep = tl > 3 ? line[3] : ' ';
        if (sep != ' ' && sep != '-')
            return SMTP_R_BAD;
        if (n == 0) {
            r->first = line;
            r->first_len = tl;
        }
        r->last = line;
        r->last_len = tl;
        n++;
        off += ll + 1;
        if (off > SMTP_REPLY_MAX)
            return SMTP_R_BAD;
        if (sep == ' ') {
            r->code = code;
            r->nlines = n;
            *used = off;
            return SMTP_R_OK;
        }
    }
}

/* does word (of wlen) equal the keyword kw, ignoring case */
static int is_kw(const char *w, size_t wlen, const char *kw)
{
    return strlen(kw) == wlen && strncasecmp(w, kw, wlen) == 0;
}

unsigned smtp_ehlo_caps(const char *reply, size_t len, unsigned long long *size_max)
{
    unsigned caps = 0;
    *size_max = 0;
    size_t off = 0;
    int first = 1;
    while (off < len) {
        const char *line = reply + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - line) : len - off;
        off += ll + (nl ? 1 : 0);
        size_t tl = ll;
        if (tl && line[tl - 1] == '\r')
            tl--;
        int was_first = first;
        first = 0;
        if (was_first || tl <= 4)
            continue; /* the first line greets: "250-host.example Hello" */
        const char *p = line + 4, *e = line + tl;
        /* the keyword, then its parameters separated by spaces */
        const char *k = p;
        while (p < e && *p != ' ' && *p != '=')
            p++;
        size_t kl = (size_t)(p - k);
        if (is_kw(k, kl, "PIPELINING")) {
            caps |= SMTP_CAP_PIPELINING;
        } else if (is_kw(k, kl, "STARTTLS")) {
            caps |= SMTP_CAP_STARTTLS;
        } else if (is_kw(k, kl, "SMTPUTF8")) {
            caps |= SMTP_CAP_SMTPUTF8;
        } else if (is_kw(k, kl, "SIZE")) {
            caps |= SMTP_CAP_SIZE;
            while (p < e && *p == ' ')
                p++;
            unsigned long long v = 0;
            while (p < e && digit(*p) && v < 1000000000000ULL)
                v = v * 10 + (unsigned)(*p++ - '0');
            *size_max = v;
        } else if (is_kw(k, kl, "AUTH")) {
            caps |= SMTP_CAP_AUTH;
            while (p < e) {
                while (p < e && (*p == ' ' || *p == '='))
                    p++;
                const char *m = p;
                while (p < e && *p != ' ')
                    p++;
                size_t ml = (size_t)(p - m);
                if (is_kw(m, ml, "PLAIN"))
                    caps |= SMTP_AUTH_PLAIN;
                else if (is_kw(m, ml, "LOGIN"))
                    caps |= SMTP_AUTH_LOGIN;
                else if (is_kw(m, ml, "CRAM-MD5"))
                    caps |= SMTP_AUTH_CRAM_MD5;
            }
        }
    }
    return caps;
}

int smtp_dot_stuff(oc_buf *out, const char *body, size_t len)
{
    /* worst case every byte a dot: reserve once for the usual case */
    if (oc_buf_reserve(out, len + len / 64 + 8) < 0)
        return -1;
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        if (body[i] != '.')
            continue;
        if (i == 0 || (i >= 2 && body[i - 1] == '\n' && body[i - 2] == '\r')) {
            /* copy through this dot, then one more */
            if (oc_buf_append(out, body + from, i + 1 - from) < 0 || oc_buf_append(out, ".", 1) < 0)
                return -1;
            from = i + 1;
        }
    }
    if (oc_buf_append(out, body + from, len - from) < 0)
        return -1;
    int crlf = len == 0 || (len >= 2 && body[len - 2] == '\r' && body[len - 1] == '\n');
    return oc_buf_puts(out, crlf ? ".\r\n" : "\r\n.\r\n");
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int smtp_parse_url(const char *url, smtp_url *u)
{
    memset(u, 0, sizeof(*u));
    const char *p;
    if (strncasecmp(url, "smtp://", 7) == 0) {
        p = url + 7;
        u->port = 25;
    } else if (strncasecmp(url, "smtps://", 8) == 0) {
        p = url + 8;
        u->port = 465;
        u->tls = 1;
    } else {
        return -1;
    }
    const char *end = p + strcspn(p, "/?#");
    if (*end == '?' || *end == '#' || memchr(p, '@', (size_t)(end - p)))
        return -1;
    const char *hs = p, *he;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return -1;
        hs = p + 1;
        he = rb;
        p = rb + 1;
    } else {
        he = memchr(p, ':', (size_t)(end - p));
        if (!he)
            he = end;
        p = he;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(u->host))
        return -1;
    for (const char *q = hs; q < he; q++)
        if ((unsigned char)*q <= ' ' || *q == '%' || *q == '\\')
            return -1;
    memcpy(u->host, hs, hl);
    if (p < end) {
        if (*p != ':' || p + 1 == end)
            return -1;
        long v = 0;
        for (p++; p < end; p++) {
            if (!digit(*p) || (v = v * 10 + (*p - '0')) > 65535)
                return -1;
        }
        if (v == 0)
            return -1;
        u->port = (int)v;
    }
    if (*end == '/') {
        const char *s = end + 1;
        size_t k = 0;
        for (; *s; s++) {
            int c = (unsigned char)*s;
            if (c == '?' || c == '#')
                return -1;
            if (c == '%') {
                int a = hexval(s[1]), b = a >= 0 ? hexval(s[2]) : -1;
                if (b < 0)
                    return -1;
                c = a * 16 + b;
                s += 2;
            }
            if (c <= ' ' || c == 0x7f || k + 1 >= sizeof(u->ehlo))
                return -1;
            u->ehlo[k++] = (char)c;
        }
        u->ehlo[k] = '\0';
    }
    return 0;
}

int smtp_utf8_class(const char *s, size_t n)
{
    return oc_utf8_class(s, n); /* SMTP_* are its values */
}
