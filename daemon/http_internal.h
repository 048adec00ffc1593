/* Shared by the HTTP server's parts: http.c (server and limits: listen,
 * connection cap, deadlines, framing, auth, replies, the route table),
 * webhooks.c (/webhooks/{instance}) and api.c (/v1). Not a public API. */
#ifndef OMNI_HTTP_INTERNAL_H
#define OMNI_HTTP_INTERNAL_H

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <jansson.h>
#include <stddef.h>

#include "http.h"
#include "job.h"

#define TOKENS_MAX 64
#define EVENTS_PER_REQUEST 1000
#define LIST_MAX 500
#define LISTEN_MAX 16

/* Where a connection is in its current request (input sniffed by conn_input
 * in http.c, see conn_track). */
enum { PH_IDLE, PH_HEAD, PH_BODY, PH_BUSY };

typedef struct areq areq;

/* One accepted connection. evhttp (libevent 2.1) has no connection cap and
 * no accept hook but the bufferevent factory, so connections are counted
 * there; an event made active there runs right after evhttp has built the
 * connection (same loop pass, before any read) and attaches: it takes the
 * evhttp_connection from the bufferevent's callback argument and sets the
 * close callback that ends the count, and closes a connection over
 * http_max_connections at once (a 503 written first). A connection whose
 * attach did not happen is matched on its first request (track_of), or
 * forgotten after twice http_timeout_ms.
 *
 * evhttp's timeout is per read, so a client sending a byte now and then is
 * never cut off by it. The input buffer is watched (conn_input): the first
 * byte of a request starts http_header_timeout_ms for the whole head, the
 * end of the head (an empty line) starts http_timeout_ms for the whole body,
 * the request reaching on_request stops the clock, its reply done
 * (req_done) starts the next request (already buffered pipelined bytes
 * included). A deadline that passes closes the connection. */
typedef struct conn_track {
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* set on attach, else on the first request */
    long long accepted_ms;
    int over; /* accepted beyond http_max_connections: refuse its requests */
    int attached;
    int phase;           /* PH_* */
    int eoh;             /* end-of-head scan: 1 after LF, 2 after LF CR */
    struct event *timer; /* attach, then the head/body deadline */
    areq *waiting;       /* an async request answering on this connection */
    struct http_server *h;
    struct conn_track *prev, *next;
    struct conn_track *hnext; /* in its bucket of by_bev */
} conn_track;

struct http_server {
    omni *o;
    unsigned req_scopes; /* the scopes of the /v1 request being routed */
    struct evhttp *http;
    char *tokens[TOKENS_MAX];
    unsigned token_scopes[TOKENS_MAX]; /* SCOPE_* mask of each token (scopes.h) */
    int n_tokens;
    int connections;
    conn_track *conns;
    /* the same connections by bufferevent: a request finds its own without
     * a scan of all of them (a scan per request cost 2 µs at 512) */
    conn_track **by_bev;
    size_t n_buckets; /* a power of two, or 0 */
    /* descriptor pressure */
    struct evconnlistener *listeners[LISTEN_MAX];
    size_t n_listeners;
    struct event *resume; /* ends a listener pause */
    int backoff_ms;
    struct event *report; /* flushes the pressure counts */
    long long last_report_ms;
    unsigned long n_fd_fail, n_accept_fail, n_evicted, n_paused, n_over, n_cut_head, n_cut_body;
};

/* ---- async requests survive a client that hangs up */

struct areq {
    http_server *h;
    struct evhttp_request *req; /* NULL once the client is gone */
    conn_track *conn;
    char id[JOB_ID_MAX + 8];
    json_t *acc; /* an answer being assembled */
    int waiting; /* replies still expected */
    int missing;
    /* called (when set) once the client hung up, req already NULL: a
     * streamed answer waiting for its output to drain ends there */
    void (*gone)(areq *a, struct evhttp_request *req);
    void *gone_arg;
};

/* ---- replies (http.c) */
void http_reply(struct evhttp_request *req, int code, const char *type, const char *body,
                size_t len);
void http_reply_json(struct evhttp_request *req, int code, json_t *j); /* takes j */
void http_reply_error(struct evhttp_request *req, int code, const char *err, const char *msg);

/* An async answer: areq_take gives the request back if the client is still
 * there (NULL if it hung up), areq_free ends it. */
areq *http_areq_new(http_server *h, struct evhttp_request *req);
struct evhttp_request *http_areq_take(areq *a);
void http_areq_free(areq *a);
/* The request body, NUL-terminated (malloc'd). */
char *http_body_of(struct evhttp_request *req, size_t *len);

/* ---- scopes (http.c's scope table) */

/* The SCOPE_* a /v1 request of method (EVHTTP_REQ_*) on path needs: the
 * row of the scope table that matches method and path; else a row that
 * matches the path alone (the route answers 405 then); else SCOPE_ADMIN. */
unsigned http_scope_required(int method, const char *path);

/* The scope table, row by row, for tests and the OpenAPI drift check: 0
 * past the last row, else 1 with the row's methods, path pattern and scope. */
int http_scope_row(size_t i, int *methods, const char **pattern, unsigned *scope);

/* ---- routes: path is the request's, u its parsed URI */
typedef void http_route_fn(http_server *h, struct evhttp_request *req, const char *path,
                           const struct evhttp_uri *u);
http_route_fn http_route_webhooks;                                   /* webhooks.c */
http_route_fn api_broadcasts, api_messages, api_campaign;            /* api.c */
http_route_fn api_conversations, api_conversation;                   /* api.c */
http_route_fn api_connector, api_campaigns;                          /* api.c */
http_route_fn api_connectors, api_token, api_dead, api_suppressions; /* admin.c */
http_route_fn ui_route;                                              /* ui.c */

#endif
