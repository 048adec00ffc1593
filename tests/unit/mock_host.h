/* A stand-in for the daemon around one connector (collectd's plugin_mock
 * idea): a config from a key/value list, the real host services, a message
 * with variables, and an event collector for inbound hooks. */
#ifndef OMNI_MOCK_HOST_H
#define OMNI_MOCK_HOST_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "omnicast/connector.h"
#include "registry.h"

typedef struct mock_cfg {
    const oc_connector *impl;
    const char *const *kv; /* NULL-terminated pairs */
} mock_cfg;

static inline const char *mock_get_nth(void *ctx, const char *key, size_t n)
{
    mock_cfg *m = ctx;
    for (const char *const *p = m->kv; p[0]; p += 2)
        if (!strcmp(p[0], key) && n-- == 0)
            return p[1];
    return NULL;
}

static inline const char *mock_get(void *ctx, const char *key)
{
    const char *v = mock_get_nth(ctx, key, 0);
    if (v)
        return v;
    mock_cfg *m = ctx;
    for (const oc_config_key *k = m->impl->keys; k && k->name; k++)
        if (!strcmp(k->name, key))
            return k->default_value;
    return NULL;
}

/* init impl with kv; returns the instance or NULL with err printed */
static inline void *mock_init(const oc_connector *impl, const char *const *kv, char *err,
                              size_t len)
{
    static mock_cfg m;
    m.impl = impl;
    m.kv = kv;
    oc_config cfg = {.ctx = &m, .name = "test", .get = mock_get, .get_nth = mock_get_nth};
    void *inst = NULL;
    err[0] = '\0';
    if (impl->init(&cfg, &registry_host, &inst, err, len) < 0)
        return NULL;
    return inst;
}

typedef struct mock_vars {
    const char *const *kv;
} mock_vars;

static inline const char *mock_var(const oc_message *m, const char *name, size_t len)
{
    const mock_vars *v = m->var_ctx;
    for (const char *const *p = v ? v->kv : NULL; p && p[0]; p += 2)
        if (strlen(p[0]) == len && !memcmp(p[0], name, len))
            return p[1];
    if (len == 2 && !memcmp(name, "to", 2))
        return m->to;
    if (len == 4 && !memcmp(name, "text", 4))
        return m->text;
    if (len == 8 && !memcmp(name, "campaign", 8))
        return m->campaign;
    if (len == 10 && !memcmp(name, "message_id", 10))
        return m->message_id;
    return NULL;
}

static inline oc_response mock_response(long status, const char *body)
{
    oc_response r = {0};
    r.status = status;
    r.body = body;
    r.body_len = strlen(body);
    r.now_ms = 1445412480000LL;
    return r;
}

/* ---- inbound */

typedef struct mock_events {
    oc_event ev[32];
    char *strs[32][10];
    int n;
} mock_events;

static inline char *mdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static inline void mock_emit(void *ctx, const oc_event *e)
{
    mock_events *m = ctx;
    if (m->n == 32)
        return;
    oc_event *c = &m->ev[m->n];
    char **s = m->strs[m->n];
    *c = *e;
    c->from = s[0] = mdup(e->from);
    c->to = s[1] = mdup(e->to);
    c->text = s[2] = mdup(e->text);
    c->kind = s[3] = mdup(e->kind);
    c->provider_id = s[4] = mdup(e->provider_id);
    c->in_reply_to = s[5] = mdup(e->in_reply_to);
    c->state = s[6] = mdup(e->state);
    c->error = s[7] = mdup(e->error);
    c->name = s[8] = mdup(e->name);
    c->payload = s[9] = mdup(e->payload);
    m->n++;
}

static inline void mock_events_free(mock_events *m)
{
    for (int i = 0; i < m->n; i++)
        for (int k = 0; k < 10; k++)
            free(m->strs[i][k]);
    memset(m, 0, sizeof(*m));
}

typedef struct mock_headers {
    const char *const *kv;
} mock_headers;

static inline const char *mock_header(void *ctx, const char *name)
{
    const mock_headers *h = ctx;
    for (const char *const *p = h->kv; p && p[0]; p += 2)
        if (!strcasecmp(p[0], name))
            return p[1];
    return NULL;
}

static inline void hmac_hex(const EVP_MD *md, const char *key, const char *data, size_t len,
                            char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    HMAC(md, key, (int)strlen(key), (const unsigned char *)data, len, mac, &ml);
    for (unsigned i = 0; i < ml; i++)
        sprintf(out + 2 * i, "%02x", mac[i]);
}

#endif
