/* The example plugin that docs/connectors.md walks through: a complete,
 * small connector for a made-up JSON messaging API. Build it as a .so
 * against include/omnicast/connector.h and load it with
 *   [connector.demo]
 *   plugin = /usr/lib/omnicast/plugins/oc_example.so
 *   url = https://api.example.com/send
 *   token_file = demo_token
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnicast/connector.h"

typedef struct example {
    const oc_host *host; /* the daemon's services: log, escaping, rendering */
    char *url;
    char *auth; /* "Bearer TOKEN" */
} example;

/* Declared as a table: the daemon checks the config against it and
 * documents it; secret keys may be given as KEY_file. */
static const oc_config_key example_keys[] = {
    {"url", OC_KEY_REQUIRED | OC_KEY_URL, NULL, "where messages are POSTed"},
    {"token", OC_KEY_REQUIRED | OC_KEY_SECRET, NULL, "bearer token"},
    {NULL, 0, NULL, NULL},
};

static int example_init(const oc_config *cfg, const oc_host *host, void **inst, char *err,
                        size_t err_len)
{
    const char *url = cfg->get(cfg->ctx, "url"), *token = cfg->get(cfg->ctx, "token");
    if (!url || !token) {
        snprintf(err, err_len, "url and token are required");
        return -1;
    }
    example *e = calloc(1, sizeof(*e));
    if (!e)
        return -1;
    e->host = host;
    e->url = strdup(url);
    size_t n = strlen(token) + 8;
    e->auth = malloc(n);
    snprintf(e->auth, n, "Bearer %s", token);
    *inst = e;
    return 0;
}

static void example_free(void *inst)
{
    example *e = inst;
    if (!e)
        return;
    free(e->url);
    free(e->auth);
    free(e);
}

/* Message in, request out: no I/O here, the daemon sends it. */
static int example_build(void *inst, const oc_message *m, oc_request *req, oc_outcome *out)
{
    example *e = inst;
    if (!m->text) {
        oc_outcome_set(out, OC_FAILED, "no_content", "text is required");
        return -1;
    }
    oc_buf_puts(&req->body, "{\"to\":\"");
    e->host->json_escape(&req->body, m->to, strlen(m->to));
    oc_buf_puts(&req->body, "\",\"text\":\"");
    e->host->json_escape(&req->body, m->text, strlen(m->text));
    oc_buf_puts(&req->body, "\"}");
    req->kind = OC_REQ_HTTP;
    req->method = "POST";
    req->url = strdup(e->url);
    oc_request_header(req, "Authorization", e->auth);
    oc_request_header(req, "Content-Type", "application/json");
    return 0;
}

/* Response in, exactly one outcome out. */
static void example_classify(void *inst, const oc_response *r, oc_outcome *out)
{
    example *e = inst;
    /* only answers reach classify(): the daemon decides transport errors */
    if (r->status >= 200 && r->status < 300) {
        oc_outcome_set(out, OC_SENT, NULL, NULL);
        /* {"id":"..."}: a real plugin would parse JSON; this keeps to libc */
        const char *p = strstr(r->body, "\"id\":\"");
        if (p) {
            p += 6;
            size_t n = strcspn(p, "\"");
            if (n >= sizeof(out->provider_id))
                n = sizeof(out->provider_id) - 1;
            memcpy(out->provider_id, p, n);
            out->provider_id[n] = '\0';
        }
    } else if (r->status == 429 || r->status >= 500) {
        oc_outcome_set(out, OC_RETRY, r->status == 429 ? "throttled" : "http_5xx", NULL);
        out->retry_after_ms = e->host->retry_after_ms(r->retry_after, r->now_ms);
        out->throttle = r->status == 429;
    } else {
        char d[32];
        snprintf(d, sizeof(d), "HTTP %ld", r->status);
        oc_outcome_set(out, OC_FAILED, "rejected", d);
    }
}

OC_CONNECTOR(example) = {
    OC_CONNECTOR_INIT,
    .type = "example",
    .description = "example plugin: POST {to,text} JSON with a bearer token",
    .keys = example_keys,
    .init = example_init,
    .free = example_free,
    .build = example_build,
    .classify = example_classify,
    .inbound = NULL,
};
