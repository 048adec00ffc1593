/* The native HTTP/2 client: https:// requests of connectors with
 * http2 = auto (the default) or true, multiplexed as streams over TLS connections that
 * negotiated "h2" by ALPN, on the daemon's event base. libnghttp2 does the
 * framing, HPACK and flow control in memory; the bytes go through netio.c
 * (nothing blocks, no callback of nghttp2 does I/O). An origin whose
 * server does not choose h2 is handed back (the fallback: the transport
 * gives it to the HTTP/1.1 client). Nothing here blocks. */
#ifndef OMNI_H2_H
#define OMNI_H2_H

#include <event2/event.h>
#include "omnicast/connector.h"
#include "transport.h"

typedef struct h2 h2;

/* A request this client gives back, untouched (nothing of it was written):
 * its origin did not negotiate h2. The callee takes req's contents. Called
 * from the event loop, never from inside h2_submit. */
typedef void (*h2_fallback_fn)(void *ctx, oc_request *req, const transport_req_opts *opts,
                               transport_done_fn done, void *arg);

/* idle_ms: idle connections are closed after (0: 30000); ca_file: the CA
 * bundle verifying peers (NULL: the system's store). */
h2 *h2_new(struct event_base *base, int max_total_connections, int max_host_connections,
           int idle_ms, const char *ca_file, h2_fallback_fn fallback, void *fallback_ctx);
/* As h1_submit: 0 taken (the callback, or the fallback, runs later from
 * the event loop); 1 not for this client (not https, or an origin known not
 * to speak h2: req untouched); -1 refused (a header that cannot be sent;
 * req freed, no callback). */
int h2_submit(h2 *h, oc_request *req, const transport_req_opts *opts, transport_done_fn done,
              void *arg);
size_t h2_inflight(const h2 *h);
/* Requests written as HTTP/2 streams since the start (each counted once). */
unsigned long long h2_requests(const h2 *h);
/* Cancel everything in flight without callbacks, close every connection. */
void h2_free(h2 *h);

#endif
