/* The native HTTP/1.1 client: plain http:// requests over keep-alive
 * connections on libevent bufferevents, optionally pipelined. It serves the
 * transport's plain-HTTP requests; libcurl keeps https, HTTP/2, SMTP and
 * anything this client does not take. Nothing here blocks. */
#ifndef OMNI_H1_H
#define OMNI_H1_H

#include <event2/event.h>
#include "omnicast/connector.h"
#include "transport.h"

typedef struct h1 h1;

/* idle_ms: idle keep-alive connections are closed after (0: 30000) */
h1 *h1_new(struct event_base *base, int max_total_connections, int max_host_connections,
           int idle_ms);
/* 0: taken (the callback runs later, from the event loop, never from inside
 * this call); 1: not for this client (an URL it does not take: req left
 * untouched); -1: refused (a header or target that would break the request
 * line; req freed, no callback). */
int h1_submit(h1 *h, oc_request *req, const transport_req_opts *opts, transport_done_fn done,
              void *arg);
size_t h1_inflight(const h1 *h);
/* Cancel everything in flight without callbacks, close every connection. */
void h1_free(h1 *h);

/* ---- exposed for the unit tests */

typedef struct h1_url {
    char host[256];     /* without brackets for an IPv6 literal */
    char hostport[264]; /* the Host header: host[:port] as in the URL */
    int port;
    const char *target; /* points into the URL: path and query ("/" if none) */
    size_t target_len;
} h1_url;

/* 0 if url is an http:// URL this client takes (no userinfo, a sane
 * target), -1 otherwise. */
int h1_parse_url(const char *url, h1_url *u);

/* An incremental HTTP/1.1 response parser over a byte stream. */
typedef struct h1_parser {
    int st;
    long status;
    long long left; /* bytes left in the body or the current chunk */
    int chunked, close_after, no_body, too_large;
    oc_buf body;
    char retry_after[128];
    char content_type[128];
} h1_parser;

enum { H1_MORE = 0, H1_DONE = 1, H1_BAD = -1 };

/* Feed bytes: *used tells how many were consumed. H1_DONE when a whole
 * response is in the parser (bytes after it are left unconsumed),
 * H1_MORE when more is needed, H1_BAD on a malformed or oversized reply.
 * eof: the peer closed; a body delimited by the close ends there. */
int h1_parse(h1_parser *p, const char *data, size_t len, size_t *used, int eof);
void h1_parser_reset(h1_parser *p); /* for the next response; keeps the body buffer */

#endif
