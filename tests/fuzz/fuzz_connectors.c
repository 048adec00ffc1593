/* libFuzzer: every built-in connector's classify() on arbitrary response
 * bodies, status codes and Retry-After values, and its inbound() on
 * arbitrary bodies, queries and signatures (including the Twilio form
 * decoder). Each must answer with exactly one outcome / a status. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static const char *const confs[][16] = {
    {"phone_number_id", "1", "access_token", "t", "app_secret", "s", "verify_token", "v", NULL},
    {"account_sid", "AC1", "auth_token", "t", "from", "+15550000000", "public_url",
     "https://x/webhooks/sms", NULL},
    {"url", "smtp://127.0.0.1:25", "from", "a@b.example", "inbound_signing_key", "k", NULL},
    {"url", "http://127.0.0.1/", "signing_secret", "s", NULL},
    {"path", "/dev/null", "accept_replies", "true", NULL},
};
static const char *const types[] = {"whatsapp", "twilio", "smtp", "webhook", "outbox"};

typedef struct cfg {
    const oc_connector *impl;
    const char *const *kv;
} cfg;

static const char *get_nth(void *ctx, const char *key, size_t n)
{
    cfg *c = ctx;
    for (const char *const *p = c->kv; p[0]; p += 2)
        if (!strcmp(p[0], key) && n-- == 0)
            return p[1];
    return NULL;
}

static const char *get(void *ctx, const char *key)
{
    const char *v = get_nth(ctx, key, 0);
    if (v)
        return v;
    cfg *c = ctx;
    for (const oc_config_key *k = c->impl->keys; k->name; k++)
        if (!strcmp(k->name, key))
            return k->default_value;
    return NULL;
}

static const char *hdr(void *ctx, const char *name)
{
    (void)name;
    return ctx;
}

static void emit(void *ctx, const oc_event *ev)
{
    size_t *n = ctx;
    (*n)++;
    if (ev->from)
        (void)strlen(ev->from);
    if (ev->text)
        (void)strlen(ev->text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void *inst[5];
    static cfg cfgs[5];
    if (!inst[0])
        for (int i = 0; i < 5; i++) {
            cfgs[i].impl = registry_builtin(types[i]);
            cfgs[i].kv = confs[i];
            oc_config c = {.ctx = &cfgs[i], .name = "f", .get = get, .get_nth = get_nth};
            char err[256];
            if (cfgs[i].impl->init(&c, &registry_host, &inst[i], err, sizeof(err)) < 0)
                abort();
        }
    if (size < 4)
        return 0;
    int which = data[0] % 5;
    long status = (long)data[1] * 3 % 600;
    /* split the rest: header value | query | body */
    char *rest = malloc(size);
    memcpy(rest, data + 2, size - 2);
    rest[size - 2] = '\0';
    size_t len = size - 2;
    char *q = memchr(rest, '\n', len);
    char *b = q ? memchr(q + 1, '\n', len - (size_t)(q + 1 - rest)) : NULL;
    const char *header = rest, *query = "", *body = rest;
    if (q && b) {
        *q = *b = '\0';
        query = q + 1;
        body = b + 1;
    }
    size_t blen = strlen(body);
    const oc_connector *c = cfgs[which].impl;
    oc_response r = {.net_error = data[1] % 7 == 0 ? OC_NET_RESET : OC_NET_OK,
                     .net_detail = "x",
                     .status = status,
                     .body = body,
                     .body_len = blen,
                     .retry_after = data[1] & 1 ? header : NULL,
                     .now_ms = 1445412480000LL};
    oc_outcome o;
    c->classify(inst[which], &r, &o);
    /* OC_HALT (ABI 1.3): WhatsApp's and Twilio's account-level codes */
    if (o.kind != OC_SENT && o.kind != OC_RETRY && o.kind != OC_FAILED && o.kind != OC_HALT)
        abort();
    if (c->inbound) {
        oc_http_request req = {.method = data[1] & 2 ? "GET" : "POST",
                               .path = "/webhooks/f",
                               .query = query,
                               .url = "http://x/webhooks/f",
                               .body = body,
                               .body_len = blen,
                               .header = hdr,
                               .header_ctx = (void *)header};
        oc_inbound_result res;
        memset(&res, 0, sizeof(res));
        size_t n = 0;
        c->inbound(inst[which], &req, &res, emit, &n);
        if (res.status < 100 || res.status > 599)
            abort();
        oc_buf_free(&res.body);
    }
    free(rest);
    return 0;
}
