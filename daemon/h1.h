/* The native HTTP/1.1 client: http:// and https:// requests over
 * keep-alive connections, optionally pipelined, TLS through OpenSSL on the
 * same non-blocking sockets. It serves the transport's HTTP/1.1 requests
 * (and those of origins h2.c found without h2); libcurl keeps proxies and
 * anything this client does not take. Nothing here blocks. */
#ifndef OMNI_H1_H
#define OMNI_H1_H

#include <event2/event.h>
#include "h1parse.h"
#include "omnicast/connector.h"
#include "transport.h"

typedef struct h1 h1;

/* idle_ms: idle keep-alive connections are closed after (0: 30000);
 * ca_file: the CA bundle verifying https peers (NULL: the system's store) */
h1 *h1_new(struct event_base *base, int max_total_connections, int max_host_connections,
           int idle_ms, const char *ca_file);
/* 0: taken (the callback runs later, from the event loop, never from inside
 * this call); 1: not for this client (an URL it does not take: req left
 * untouched); -1: refused (a header or target that would break the request
 * line; req freed, no callback). */
int h1_submit(h1 *h, oc_request *req, const transport_req_opts *opts, transport_done_fn done,
              void *arg);
size_t h1_inflight(const h1 *h);
/* Cancel everything in flight without callbacks, close every connection. */
void h1_free(h1 *h);

#endif
