/* The Redis URL forms the daemon and the CLI take (see redisurl.h). */
#include "redisurl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t len, const char *why)
{
    snprintf(err, len, "%s", why);
    return -1;
}

/* a decimal number lo..hi of exactly the digits in [s, e) */
static int number(const char *s, const char *e, long lo, long hi, int *out)
{
    if (s == e || e - s > 6)
        return -1;
    long v = 0;
    for (const char *p = s; p < e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int redis_url_parse(const char *url, redis_target *t, char *err, size_t err_len)
{
    memset(t, 0, sizeof(*t));
    t->port = 6379;
    if (!url)
        return bad(err, err_len, "no URL");
    if (!strncmp(url, "unix:", 5)) {
        const char *p = url + 5;
        const char *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || p[0] != '/' || n >= sizeof(t->path))
            return bad(err, err_len, "unix: needs an absolute socket path");
        memcpy(t->path, p, n);
        if (q && (strncmp(q, "?db=", 4) || number(q + 4, q + strlen(q), 0, 1000, &t->db) < 0))
            return bad(err, err_len, "unix: takes ?db=N (0..1000) only");
        return 0;
    }
    const char *p;
    if (!strncmp(url, "rediss://", 9)) {
        t->tls = 1;
        p = url + 9;
    } else if (!strncmp(url, "redis://", 8)) {
        p = url + 8;
    } else {
        return bad(err, err_len,
                   "must be redis://[USER@]HOST[:PORT][/DB], rediss://... (TLS) or "
                   "unix:/PATH[?db=N]");
    }
    const char *slash = p + strcspn(p, "/");
    const char *at = memchr(p, '@', (size_t)(slash - p));
    if (at) {
        if (memchr(p, ':', (size_t)(at - p)))
            return bad(err, err_len,
                       "a password in the URL is refused: give it in redis_password_file "
                       "(or redis_password) and keep the user in the URL or redis_username");
        size_t n = (size_t)(at - p);
        if (n == 0 || n >= sizeof(t->user))
            return bad(err, err_len, "the user before '@' is empty or too long");
        memcpy(t->user, p, n);
        p = at + 1;
    }
    const char *hend;
    if (*p == '[') {
        const char *rb = strchr(p, ']');
        if (!rb || rb == p + 1 || rb > slash)
            return bad(err, err_len, "an IPv6 address needs its closing ']'");
        size_t n = (size_t)(rb - p - 1);
        if (n >= sizeof(t->host) || strspn(p + 1, "0123456789abcdefABCDEF:.") < n)
            return bad(err, err_len, "not an IPv6 address between [ and ]");
        memcpy(t->host, p + 1, n);
        hend = rb + 1;
    } else {
        hend = p + strcspn(p, ":/");
        size_t n = (size_t)(hend - p);
        if (n == 0 || n >= sizeof(t->host))
            return bad(err, err_len, "no host (or a host name too long)");
        memcpy(t->host, p, n);
        if (strspn(t->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") <
            n)
            return bad(err, err_len, "the host has characters no host name has");
    }
    p = hend;
    if (*p == ':') {
        const char *e = p + 1 + strcspn(p + 1, "/");
        if (number(p + 1, e, 1, 65535, &t->port) < 0)
            return bad(err, err_len, "the port must be 1..65535");
        p = e;
    }
    if (*p == '/' && p[1] && number(p + 1, p + strlen(p), 0, 1000, &t->db) < 0)
        return bad(err, err_len, "the database after '/' must be 0..1000");
    if (*p && *p != '/')
        return bad(err, err_len, "unexpected text after the host");
    return 0;
}

void redis_target_name(const redis_target *t, char *out, size_t len)
{
    if (t->path[0])
        snprintf(out, len, "unix:%s", t->path);
    else if (strchr(t->host, ':'))
        snprintf(out, len, "[%s]:%d", t->host, t->port);
    else
        snprintf(out, len, "%s:%d", t->host, t->port);
}

int redis_sentinels_parse(const char *list, redis_target *t, int max, char *err, size_t err_len)
{
    int n = 0;
    const char *p = list ? list : "";
    for (;;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ", \t");
        if (len == 0)
            return bad(err, err_len, "an empty entry: want HOST:PORT,HOST:PORT,...");
        if (n == max)
            return bad(err, err_len, "too many sentinels (at most 16)");
        char url[300];
        if (len > 256)
            return bad(err, err_len, "a sentinel address is too long");
        snprintf(url, sizeof(url), "redis://%.*s", (int)len, p);
        char why[200];
        if (redis_url_parse(url, &t[n], why, sizeof(why)) < 0 || t[n].user[0] ||
            strchr(url + 8, '/')) {
            snprintf(err, err_len, "sentinel %d is not HOST:PORT", n + 1);
            return -1;
        }
        /* no port given: the sentinels' usual one */
        if (p[0] == '[' ? !strstr(url, "]:") : !strchr(url + 8, ':'))
            t[n].port = 26379;
        n++;
        p += len;
        p += strspn(p, " \t");
        if (!*p)
            return n;
        if (*p != ',')
            return bad(err, err_len, "sentinels are separated by commas");
        p++;
    }
}
