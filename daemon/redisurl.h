/* The `redis` setting: redis://[USER@]HOST[:PORT][/DB], the same with
 * rediss:// for TLS (HOST a name, an
 * IPv4 address or an IPv6 literal in brackets) or unix:/PATH[?db=N]. Pure,
 * shared by the daemon's store, the CLI and the configuration check, so
 * what --check-config accepts is what both connect to. */
#ifndef OMNI_REDISURL_H
#define OMNI_REDISURL_H

#include <stddef.h>

typedef struct redis_target {
    char host[256]; /* without brackets for an IPv6 literal; "" for unix: */
    char path[256]; /* unix socket path, or "" */
    char user[128]; /* ACL user from the URL, or "" */
    int port;       /* 6379 when not given */
    int db;         /* 0 when not given */
    int tls;        /* rediss:// */
} redis_target;

/* 0 with t filled in; -1 with a reason in err (never the URL's text, which
 * may hold a secret). A password in the URL (USER:PASS@) is refused with a
 * reason that says what to do instead. */
int redis_url_parse(const char *url, redis_target *t, char *err, size_t err_len);

/* "host:port", "[v6]:port" or "unix:/path", for log lines and errors */
void redis_target_name(const redis_target *t, char *out, size_t len);

/* redis_sentinels: HOST:PORT[,HOST:PORT...] (spaces around the commas
 * allowed, [IPv6]:PORT, port 26379 when not given); at most max. Returns
 * how many, or -1 with a reason in err. */
#define REDIS_MAX_SENTINELS 16
int redis_sentinels_parse(const char *list, redis_target *t, int max, char *err, size_t err_len);

#endif
