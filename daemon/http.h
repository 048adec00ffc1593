/* The HTTP server (evhttp on the daemon's event base): the API under /v1
 * (bearer tokens), provider webhooks under /webhooks/{instance} (provider
 * signatures), /healthz, /readyz and /metrics. */
#ifndef OMNI_HTTP_H
#define OMNI_HTTP_H

#include <stddef.h>

#include "omni.h"

typedef struct http_server http_server;

/* Bind every [daemon] http_listen address; NULL with err on failure. */
http_server *http_start(omni *o, char *err, size_t err_len);
void http_stop(http_server *h); /* NULL is fine */

#endif
