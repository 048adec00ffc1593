/* The Redis URL forms the daemon and the CLI take (see redisurl.h). */
#include "redisurl.h"

#include <stdlib.h>
#include <string.h>

int redis_url_parse(const char *url, char *host, size_t host_len, int *port, char *path,
                    size_t path_len, int *db)
{
    *port = 6379;
    *db = 0;
    host[0] = path[0] = '\0';
    if (strncmp(url, "unix:", 5) == 0) {
        const char *p = url + 5;
        const char *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || n >= path_len)
            return -1;
        memcpy(path, p, n);
        path[n] = '\0';
        if (q) {
            if (strncmp(q, "?db=", 4) != 0)
                return -1;
            char *end;
            long v = strtol(q + 4, &end, 10);
            if (*end || v < 0 || v > 1000)
                return -1;
            *db = (int)v;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *p = url + 8;
    const char *end = p + strcspn(p, ":/");
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= host_len)
        return -1;
    memcpy(host, p, n);
    host[n] = '\0';
    p = end;
    if (*p == ':') {
        char *e;
        long v = strtol(p + 1, &e, 10);
        if (e == p + 1 || v <= 0 || v > 65535)
            return -1;
        *port = (int)v;
        p = e;
    }
    if (*p == '/') {
        if (p[1]) {
            char *e;
            long v = strtol(p + 1, &e, 10);
            if (*e || e == p + 1 || v < 0 || v > 1000)
                return -1;
            *db = (int)v;
        }
    } else if (*p) {
        return -1;
    }
    return 0;
}
