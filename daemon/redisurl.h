/* The `redis` setting: redis://HOST[:PORT][/DB] or unix:PATH[?db=N]. Pure,
 * shared by the daemon's store and the CLI. */
#ifndef OMNI_REDISURL_H
#define OMNI_REDISURL_H

#include <stddef.h>

/* 0 with host (or path for unix:), port (6379 if not given) and db (0 if
 * not given) filled in; -1 on anything else. */
int redis_url_parse(const char *url, char *host, size_t host_len, int *port, char *path,
                    size_t path_len, int *db);

#endif
