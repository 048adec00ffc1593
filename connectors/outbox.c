/* The outbox connector: writes each message as one JSON line to a file
 * instead of sending it. For dry runs, the demo and tests. One write() per
 * line, O_APPEND, so lines from several processes never interleave. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "omnicast/connector.h"

typedef struct outbox {
    int fd;
    int accept_replies;
    const oc_host *host;
    oc_buf line;
} outbox;

static const oc_config_key outbox_keys[] = {
    {"path", OC_KEY_REQUIRED, NULL, "file each message is appended to as one JSON line"},
    {"accept_replies", 0, "false",
     "take simulated replies at /webhooks/NAME (unsigned: demos and tests only)"},
    {NULL, 0, NULL, NULL},
};

static int outbox_init(const oc_config *cfg, const oc_host *host, void **inst, char *err,
                       size_t err_len)
{
    const char *path = cfg->get(cfg->ctx, "path");
    if (!path || !*path) {
        snprintf(err, err_len, "path is required");
        return -1;
    }
    outbox *o = calloc(1, sizeof(*o));
    if (!o) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    o->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (o->fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        free(o);
        return -1;
    }
    o->host = host;
    const char *ar = cfg->get(cfg->ctx, "accept_replies");
    o->accept_replies = ar && (!strcmp(ar, "true") || !strcmp(ar, "yes") || !strcmp(ar, "1"));
    *inst = o;
    return 0;
}

static void outbox_free(void *inst)
{
    outbox *o = inst;
    if (!o)
        return;
    close(o->fd);
    oc_buf_free(&o->line);
    free(o);
}

static void field(outbox *o, const char *name, const char *value)
{
    if (!value)
        return;
    oc_buf_puts(&o->line, ",\"");
    oc_buf_puts(&o->line, name);
    oc_buf_puts(&o->line, "\":\"");
    o->host->json_escape(&o->line, value, strlen(value));
    oc_buf_puts(&o->line, "\"");
}

static int outbox_build(void *inst, const oc_message *m, oc_request *req, oc_outcome *out)
{
    (void)req;
    outbox *o = inst;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char at[64], d[32];
    strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(at, sizeof(at), "%s.%03dZ", d, (int)(tv.tv_usec / 1000) % 1000);

    oc_buf_reset(&o->line);
    oc_buf_puts(&o->line, "{\"campaign\":\"");
    o->host->json_escape(&o->line, m->campaign, strlen(m->campaign));
    oc_buf_puts(&o->line, "\"");
    field(o, "message_id", m->message_id);
    field(o, "channel", m->channel);
    field(o, "to", m->to);
    field(o, "text", m->text);
    field(o, "subject", m->subject);
    field(o, "html", m->html);
    if (m->template_name) {
        oc_buf_puts(&o->line, ",\"template\":{\"name\":\"");
        o->host->json_escape(&o->line, m->template_name, strlen(m->template_name));
        oc_buf_puts(&o->line, "\",\"language\":\"");
        const char *lang = m->template_language ? m->template_language : "";
        o->host->json_escape(&o->line, lang, strlen(lang));
        oc_buf_puts(&o->line, "\",\"params\":[");
        for (size_t i = 0; i < m->n_template_params; i++) {
            oc_buf_puts(&o->line, i ? ",\"" : "\"");
            o->host->json_escape(&o->line, m->template_params[i], strlen(m->template_params[i]));
            oc_buf_puts(&o->line, "\"");
        }
        oc_buf_puts(&o->line, "]}");
    }
    field(o, "at", at);
    oc_buf_puts(&o->line, "}\n");
    if (!o->line.data) {
        oc_outcome_set(out, OC_RETRY, "io_error", "out of memory");
        return 1;
    }
    ssize_t w = write(o->fd, o->line.data, o->line.len);
    if (w != (ssize_t)o->line.len) {
        oc_outcome_set(out, OC_RETRY, "io_error", w < 0 ? strerror(errno) : "short write");
        return 1;
    }
    oc_outcome_set(out, OC_SENT, NULL, NULL);
    snprintf(out->provider_id, sizeof(out->provider_id), "outbox-%s", m->message_id);
    return 1;
}

static void outbox_classify(void *inst, const oc_response *resp, oc_outcome *out)
{
    (void)inst;
    (void)resp;
    /* the outbox finishes every message in build(); a transfer never ends here */
    oc_outcome_set(out, OC_FAILED, "internal", "outbox has no transfers");
}

/* Simulated replies for demos and tests: POST {"from","text","id",
 * "in_reply_to"} as JSON. Off unless accept_replies is set, since nothing
 * signs them. */
static void outbox_inbound(void *inst, const oc_http_request *req, oc_inbound_result *res,
                           oc_emit_fn emit, void *ctx)
{
    outbox *o = inst;
    res->content_type = "application/json";
    if (!o->accept_replies) {
        res->status = 403;
        snprintf(res->error, sizeof(res->error), "replies_disabled");
        return;
    }
    if (strcmp(req->method, "POST")) {
        res->status = 405;
        snprintf(res->error, sizeof(res->error), "method_not_allowed");
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, 0, &je);
    const char *from = json_string_value(json_object_get(j, "from"));
    const char *text = json_string_value(json_object_get(j, "text"));
    if (!from || !text) {
        json_decref(j);
        res->status = 400;
        snprintf(res->error, sizeof(res->error), "bad_payload");
        return;
    }
    oc_event ev = {.type = OC_EV_REPLY,
                   .from = from,
                   .text = text,
                   .kind = "text",
                   .provider_id = json_string_value(json_object_get(j, "id")),
                   .in_reply_to = json_string_value(json_object_get(j, "in_reply_to"))};
    emit(ctx, &ev);
    json_decref(j);
    res->status = 200;
    oc_buf_puts(&res->body, "{}");
}

OC_CONNECTOR(outbox) = {
    OC_CONNECTOR_INIT,
    .type = "outbox",
    .description = "append each message as a JSON line to a file (dry runs, tests)",
    .keys = outbox_keys,
    .init = outbox_init,
    .free = outbox_free,
    .build = outbox_build,
    .classify = outbox_classify,
    .inbound = outbox_inbound,
};
