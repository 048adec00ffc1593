/* The HTTP server on the daemon's event base: health, readiness and
 * Prometheus metrics. Every error is a JSON body with a stable code. */
#include "http.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

struct http_server {
    omni *o;
    struct evhttp *http;
};

static void reply_json(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

static void reply_error(struct evhttp_request *req, int code, const char *err, const char *msg)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", err, msg);
    reply_json(req, code, body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    http_server *h = arg;
    omni *o = h->o;
    const char *uri = evhttp_request_get_uri(req);
    struct evhttp_uri *u = evhttp_uri_parse(uri);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    if (!path) {
        reply_error(req, 400, "bad_request", "unparseable request URI");
    } else if (!strcmp(path, "/healthz")) {
        reply_json(req, 200, "{\"status\":\"ok\"}");
    } else if (!strcmp(path, "/readyz")) {
        if (!store_is_ready(o->st))
            reply_json(req, 503, "{\"status\":\"not_ready\",\"failed\":\"redis\"}");
        else if (o->draining)
            reply_json(req, 503, "{\"status\":\"not_ready\",\"failed\":\"draining\"}");
        else
            reply_json(req, 200, "{\"status\":\"ready\"}");
    } else if (!strcmp(path, "/metrics") && method == EVHTTP_REQ_GET) {
        oc_buf m = {0};
        metrics_render(o, &m);
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, m.data ? m.data : "", m.len);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4");
        evhttp_send_reply(req, 200, NULL, b);
        evbuffer_free(b);
        oc_buf_free(&m);
    } else {
        reply_error(req, 404, "not_found", "no such route");
    }
    if (u)
        evhttp_uri_free(u);
}

http_server *http_start(omni *o, char *err, size_t err_len)
{
    http_server *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    h->o = o;
    h->http = evhttp_new(o->base);
    const omni_config *c = o->cfg;
    evhttp_set_max_body_size(h->http, (ev_ssize_t)c->http_max_body);
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)c->http_max_headers);
    struct timeval tv = {c->http_timeout_ms / 1000, (c->http_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(h->http, &tv);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(h->http, on_request, h);
    for (size_t i = 0; i < c->n_http_listen; i++) {
        char addr[256];
        snprintf(addr, sizeof(addr), "%s", c->http_listen[i]);
        char *colon = strrchr(addr, ':');
        *colon = '\0';
        int port = atoi(colon + 1);
        char *host = addr;
        if (host[0] == '[') {
            host++;
            host[strlen(host) - 1] = '\0';
        }
        if (!evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port)) {
            snprintf(err, err_len, "cannot listen on %s", c->http_listen[i]);
            http_stop(h);
            return NULL;
        }
        log_info("http: listening on %s", c->http_listen[i]);
    }
    return h;
}

void http_stop(http_server *h)
{
    if (!h)
        return;
    if (h->http)
        evhttp_free(h->http);
    free(h);
}
