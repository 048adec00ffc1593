/* Outbound transfers: HTTP/1.1 (http://, and https:// without HTTP/2)
 * through the native client (h1.c) and https:// with HTTP/2 through the
 * native HTTP/2 client (h2.c) when the caller asks for it, everything
 * else (proxies, SMTP behind smtp_client = curl; SMTP goes to
 * the native SMTP client, smtpc.c, otherwise)
 * through one libcurl multi handle driven by the daemon's libevent base
 * through the multi socket interface. Easy handles are pooled and reused,
 * connections kept alive per host. Nothing here blocks. */
#ifndef OMNI_TRANSPORT_H
#define OMNI_TRANSPORT_H

#include <event2/event.h>
#include "omnicast/connector.h"

typedef struct transport transport;

typedef struct transport_opts {
    int max_total_connections; /* 0 = libcurl default */
    int max_host_connections;
    const char *ca_file;   /* CA bundle verifying TLS peers; NULL = the system's */
    int keepalive_idle_ms; /* idle keep-alive connections are closed after; 0 = 30000 */
    int smtp_curl;         /* 1: SMTP through libcurl (smtp_client = curl); 0: the native client */
} transport_opts;

typedef struct transport_req_opts {
    int timeout_ms;         /* total, 0 = none */
    int connect_timeout_ms; /* 0 = libcurl default */
    int http2;              /* https: 1 HTTP/2 asked (h2.c, or libcurl's); 2 (http2 = auto)
                             * HTTP/2 offered where h2.c carries it, HTTP/1.1 through
                             * libcurl; 0 HTTP/1.1 */
    int native;             /* 1: HTTP goes native (h1.c; https:// with http2: h2.c) */
    int pipeline;           /* native client: requests in flight per connection (1: none) */
} transport_req_opts;

/* Called once per submitted request, from the event loop, never from inside
 * a libcurl callback: it may submit further requests. resp and its strings
 * are valid only during the call. latency_us: submit to completion. */
typedef void (*transport_done_fn)(void *arg, const oc_response *resp, long long latency_us);

transport *transport_new(struct event_base *base, const transport_opts *opts);
/* Takes ownership of req's contents (it is freed when the transfer ends);
 * returns 0, or -1 if the transfer could not even be set up (req freed, no
 * callback). */
int transport_submit(transport *t, oc_request *req, const transport_req_opts *opts,
                     transport_done_fn done, void *arg);
size_t transport_inflight(const transport *t);
/* Transfers taken since the start: by the native client over plain http,
 * by it over TLS, and by libcurl. */
void transport_counts(const transport *t, unsigned long long *native,
                      unsigned long long *native_tls, unsigned long long *curl);
/* Requests written as HTTP/2 streams by the native HTTP/2 client (h2.c). */
unsigned long long transport_native_h2(const transport *t);
/* Messages taken by the native SMTP client (smtpc.c) since the start. */
unsigned long long transport_native_smtp(const transport *t);
/* Cancel everything in flight without calling callbacks, free all. */
void transport_free(transport *t);

#endif
