/* The HTTP/1.1 response parser and the URL check of the native client (see
 * h1parse.h): pure, no I/O, fuzzed by tests/fuzz/fuzz_h1.c. */
#include "h1parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEAD_MAX (64 * 1024)
#define BODY_MAX (1u << 20)
#define KEEP_MAX (64 * 1024) /* a body buffer grown past this is freed on reset */

/* ---- the response parser */

void h1_parser_reset(h1_parser *p)
{
    oc_buf body = p->body;
    memset(p, 0, sizeof(*p));
    if (body.cap > KEEP_MAX)
        oc_buf_free(&body); /* one big answer does not pin its buffer */
    p->body = body;
    oc_buf_reset(&p->body);
    p->left = -1;
}

static void copy_value(const char *v, const char *e, char *out, size_t cap)
{
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t n = (size_t)(e - v);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

/* does the comma-separated list [v, e) hold token tok (case-insensitive)? */
static int has_token(const char *v, const char *e, const char *tok, int last_only)
{
    size_t tl = strlen(tok);
    int found = 0;
    while (v < e) {
        while (v < e && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *s = v;
        while (v < e && *v != ',')
            v++;
        const char *t = v;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        int is = (size_t)(t - s) == tl && strncasecmp(s, tok, tl) == 0;
        if (last_only)
            found = is;
        else if (is)
            return 1;
    }
    return found;
}

static int name_is(const char *n, size_t nl, const char *want)
{
    return strlen(want) == nl && strncasecmp(n, want, nl) == 0;
}

/* The status line and headers, [d, d + len) ending in CRLF CRLF. */
static int parse_head(h1_parser *p, const char *d, size_t len)
{
    const char *end = d + len - 2; /* the last CRLF ends the header block */
    const char *eol = memchr(d, '\r', (size_t)(end - d) + 1);
    if (!eol || eol - d < 12 || memcmp(d, "HTTP/1.", 7) != 0 || (d[7] != '0' && d[7] != '1') ||
        d[8] != ' ')
        return -1;
    int http10 = d[7] == '0';
    for (int i = 9; i < 12; i++)
        if (d[i] < '0' || d[i] > '9')
            return -1;
    if (eol - d > 12 && d[12] != ' ')
        return -1;
    p->status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
    if (p->status < 100)
        return -1;
    int keep_alive = 0, te = 0;
    long long cl = -1;
    const char *l = eol + 2;
    while (l < end) {
        const char *le = memchr(l, '\r', (size_t)(end - l) + 1);
        if (!le || le[1] != '\n')
            return -1;
        if (*l == ' ' || *l == '\t')
            return -1; /* obsolete line folding */
        const char *colon = memchr(l, ':', (size_t)(le - l));
        if (!colon || colon == l)
            return -1;
        size_t nl = (size_t)(colon - l);
        const char *v = colon + 1;
        if (name_is(l, nl, "Content-Length")) {
            const char *s = v, *e = le;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (s == e || e - s > 12)
                return -1;
            long long n = 0;
            for (; s < e; s++) {
                if (*s < '0' || *s > '9')
                    return -1;
                n = n * 10 + (*s - '0');
            }
            if (cl >= 0 && cl != n)
                return -1; /* two different lengths: ambiguous framing */
            cl = n;
        } else if (name_is(l, nl, "Transfer-Encoding")) {
            te = 1;
            p->chunked = has_token(v, le, "chunked", 1);
        } else if (name_is(l, nl, "Connection")) {
            if (has_token(v, le, "close", 0))
                p->close_after = 1;
            if (has_token(v, le, "keep-alive", 0))
                keep_alive = 1;
        } else if (name_is(l, nl, "Retry-After")) {
            copy_value(v, le, p->retry_after, sizeof(p->retry_after));
        } else if (name_is(l, nl, "Content-Type")) {
            copy_value(v, le, p->content_type, sizeof(p->content_type));
        }
        l = le + 2;
    }
    if (http10 && !keep_alive)
        p->close_after = 1;
    p->no_body = p->status < 200 || p->status == 204 || p->status == 304;
    if (te) {
        p->left = -1;
        if (!p->chunked)
            p->close_after = 1; /* delimited by the close */
        else if (cl >= 0)
            p->close_after = 1; /* both given: chunked wins, and trust nothing after */
    } else {
        p->left = cl;
    }
    return 0;
}

static int take(h1_parser *p, const char *d, size_t n)
{
    if (p->body.len + n > BODY_MAX) {
        p->too_large = 1;
        return -1;
    }
    return oc_buf_append(&p->body, d, n);
}

int h1_parse(h1_parser *p, const char *d, size_t n, size_t *used, int eof)
{
    size_t off = 0;
    for (;;) {
        const char *s = d + off;
        size_t avail = n - off;
        switch (p->st) {
        case H1_S_HEAD: {
            const char *e = avail >= 4 ? memmem(s, avail, "\r\n\r\n", 4) : NULL;
            if (!e) {
                if (avail > HEAD_MAX)
                    return H1_BAD;
                goto more;
            }
            size_t hl = (size_t)(e - s) + 4;
            if (hl > HEAD_MAX || parse_head(p, s, hl) < 0)
                return H1_BAD;
            off += hl;
            if (p->status < 200) {
                if (p->status == 101)
                    return H1_BAD;  /* we never ask to switch protocols */
                h1_parser_reset(p); /* interim answer (100 Continue): the real one follows */
                continue;
            }
            if (p->no_body)
                goto done;
            if (p->chunked) {
                p->st = H1_S_CHUNK_SIZE;
            } else if (p->left >= 0) {
                if (p->left > (long long)BODY_MAX) {
                    p->too_large = 1;
                    return H1_BAD;
                }
                if (oc_buf_reserve(&p->body, (size_t)p->left) < 0)
                    return H1_BAD;
                p->st = H1_S_BODY;
                if (p->left == 0)
                    goto done;
            } else {
                p->st = H1_S_UNTIL_EOF;
                p->close_after = 1;
            }
            continue;
        }
        case H1_S_BODY:
        case H1_S_CHUNK_DATA: {
            size_t k = avail < (unsigned long long)p->left ? avail : (size_t)p->left;
            if (take(p, s, k) < 0)
                return H1_BAD;
            off += k;
            p->left -= (long long)k;
            if (p->left > 0)
                goto more;
            if (p->st == H1_S_BODY)
                goto done;
            p->st = H1_S_CHUNK_END;
            continue;
        }
        case H1_S_CHUNK_END:
            if (avail < 2)
                goto more;
            if (s[0] != '\r' || s[1] != '\n')
                return H1_BAD;
            off += 2;
            p->st = H1_S_CHUNK_SIZE;
            continue;
        case H1_S_CHUNK_SIZE:
        case H1_S_TRAILER: {
            const char *e = avail >= 2 ? memmem(s, avail, "\r\n", 2) : NULL;
            if (!e) {
                if (avail > 4096)
                    return H1_BAD;
                goto more;
            }
            off += (size_t)(e - s) + 2;
            if (p->st == H1_S_TRAILER) {
                if (e == s)
                    goto done; /* the empty line ends the trailer */
                continue;      /* trailer fields are ignored */
            }
            unsigned long long size = 0;
            const char *q = s;
            for (; q < e; q++) {
                int v;
                if (*q >= '0' && *q <= '9')
                    v = *q - '0';
                else if ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'f')
                    v = (*q | 0x20) - 'a' + 10;
                else
                    break;
                size = size * 16 + (unsigned)v;
                if (size > BODY_MAX) {
                    p->too_large = 1;
                    return H1_BAD;
                }
            }
            if (q == s || (q < e && *q != ';' && *q != ' ' && *q != '\t'))
                return H1_BAD;
            if (size == 0) {
                p->st = H1_S_TRAILER;
            } else {
                p->left = (long long)size;
                p->st = H1_S_CHUNK_DATA;
            }
            continue;
        }
        case H1_S_UNTIL_EOF:
            if (take(p, s, avail) < 0)
                return H1_BAD;
            off = n;
            if (eof)
                goto done;
            goto more;
        }
    }
more:
    *used = off;
    return eof ? H1_BAD : H1_MORE; /* a close before the end is a truncated answer */
done:
    *used = off;
    return H1_DONE;
}

int h1_parse_url(const char *url, h1_url *u)
{
    int tls = strncasecmp(url, "https://", 8) == 0;
    if (!tls && strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *a = url + (tls ? 8 : 7);
    size_t alen = strcspn(a, "/?#");
    const char *t = a + alen;
    if (alen == 0 || memchr(a, '@', alen))
        return -1;
    const char *hs = a, *he, *port = NULL;
    if (*a == '[') {
        he = memchr(a, ']', alen);
        if (!he)
            return -1;
        hs = a + 1;
        if (he + 1 < t) {
            if (he[1] != ':')
                return -1;
            port = he + 2;
        }
    } else {
        he = memchr(a, ':', alen);
        if (he)
            port = he + 1;
        else
            he = t;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(u->host))
        return -1;
    memcpy(u->host, hs, hl);
    u->host[hl] = '\0';
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)u->host[i];
        if (c <= ' ' || c == '%' || c >= 0x7f)
            return -1; /* zone ids, spaces, controls: not ours */
    }
    u->tls = tls;
    u->port = tls ? 443 : 80;
    if (port) {
        if (port == t)
            return -1;
        long p = 0;
        for (const char *q = port; q < t; q++) {
            if (*q < '0' || *q > '9')
                return -1;
            p = p * 10 + (*q - '0');
            if (p > 65535)
                return -1;
        }
        if (p == 0)
            return -1;
        u->port = (int)p;
    }
    snprintf(u->hostport, sizeof(u->hostport), "%.*s", (int)alen, a);
    size_t tl = strcspn(t, "#");
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f)
            return -1; /* would break the request line */
    /* "http://h" or "http://h?q": the caller writes the missing "/" */
    u->target = t;
    u->target_len = tl;
    return 0;
}
