/* Optional CRM hand-off: every event published on omni:conversations is
 * POSTed to [daemon] crm_webhook_url as its JSON, signed like the generic
 * webhook connector, through the same transport. The stream's consumer group
 * `crm` is the queue: an event is acked when the CRM answered 2xx, and one
 * that failed stays pending and is tried again after a while (XAUTOCLAIM),
 * however long the CRM is away. The webhook answers never wait for it. */
#include "crm.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#define GROUP "crm"
#define MAX_INFLIGHT 16
#define POST_TIMEOUT_MS 10000

typedef struct post {
    omni *o;
    int used;
    char id[40];
} post;

typedef struct crm {
    post slots[MAX_INFLIGHT]; /* posts in flight: no allocation, nothing to leak at exit */
    char *url;
    char *secret;
    char key[KEY_MAX];
    char from[40]; /* "0"/last id while reading our own pending, then ">" */
    int reading;
    int inflight;
    long long next_retry_ms;
    uint64_t posted, failed;
} crm;

static crm *C(omni *o)
{
    return o->crm;
}

int crm_init(omni *o, char *err, size_t err_len)
{
    if (!o->cfg->crm_webhook_url)
        return 0;
    crm *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->url = strdup(o->cfg->crm_webhook_url);
    if (o->cfg->crm_webhook_secret_file) {
        char full[PATH_MAX], why[PATH_MAX + 64];
        int open_to_others;
        if (conf_read_secret(o->cfg->crm_webhook_secret_file, &c->secret, full, sizeof(full),
                             &open_to_others, why, sizeof(why)) < 0) {
            snprintf(err, err_len, "crm_webhook_secret_file: %.200s", why);
            free(c->url);
            free(c);
            return -1;
        }
        if (open_to_others)
            log_warn("crm_webhook_secret_file %s is readable by group or others", full);
    }
    omni_key(o, c->key, sizeof(c->key), KEY_CONVERSATIONS, NULL);
    strcpy(c->from, "0");
    o->crm = c;
    return 0;
}

void crm_free(omni *o)
{
    crm *c = C(o);
    if (!c)
        return;
    free(c->url);
    if (c->secret) {
        OPENSSL_cleanse(c->secret, strlen(c->secret));
        free(c->secret);
    }
    free(c);
    o->crm = NULL;
}

static void posted(void *arg, const oc_response *r, long long latency_us)
{
    (void)latency_us;
    post *p = arg;
    omni *o = p->o;
    crm *c = C(o);
    if (c) {
        c->inflight--;
        if (r->net_error == OC_NET_OK && r->status >= 200 && r->status < 300) {
            c->posted++;
            store_cmd(o->st, NULL, NULL, "XACK", c->key, GROUP, p->id, NULL);
        } else {
            /* stays pending: taken up again after crm_retry_ms */
            c->failed++;
            log_warn("crm webhook: event %s not accepted (%s %ld); will retry", p->id,
                     r->net_error ? r->net_detail : "HTTP", r->status);
        }
    }
    p->used = 0;
    omni_kick(o);
}

static void send_event(omni *o, const char *id, const char *type, const char *data, size_t len)
{
    crm *c = C(o);
    oc_request req;
    memset(&req, 0, sizeof(req));
    req.kind = OC_REQ_HTTP;
    req.method = "POST";
    req.url = strdup(c->url);
    oc_buf_append(&req.body, data, len);
    oc_request_header(&req, "Content-Type", "application/json");
    oc_request_header(&req, "X-Omnicast-Event", type ? type : "");
    oc_request_header(&req, "X-Omnicast-Delivery", id);
    if (c->secret) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned ml = 0;
        HMAC(EVP_sha256(), c->secret, (int)strlen(c->secret), (const unsigned char *)data, len, mac,
             &ml);
        char sig[80] = "sha256=";
        for (unsigned i = 0; i < ml; i++)
            sprintf(sig + 7 + 2 * i, "%02x", mac[i]);
        oc_request_header(&req, "X-Omnicast-Signature", sig);
    }
    post *p = NULL;
    for (int i = 0; i < MAX_INFLIGHT && !p; i++)
        if (!c->slots[i].used)
            p = &c->slots[i];
    if (!p) { /* cannot happen: crm_pump keeps inflight below the slots */
        oc_request_free(&req);
        return;
    }
    p->used = 1;
    p->o = o;
    snprintf(p->id, sizeof(p->id), "%s", id);
    transport_req_opts to = {.timeout_ms = POST_TIMEOUT_MS,
                             .connect_timeout_ms = 3000,
                             .http2 = strncmp(c->url, "https:", 6) == 0,
                             .native = 1};
    c->inflight++;
    if (transport_submit(o->tp, &req, &to, posted, p) < 0) {
        c->inflight--;
        p->used = 0;
    }
}

static const char *field(redisReply *f, const char *name, size_t *len)
{
    for (size_t i = 0; f && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
        if (f->element[i]->str && !strcmp(f->element[i]->str, name) &&
            f->element[i + 1]->type == REDIS_REPLY_STRING) {
            if (len)
                *len = f->element[i + 1]->len;
            return f->element[i + 1]->str;
        }
    return NULL;
}

static size_t handle(omni *o, redisReply *entries, int paging)
{
    crm *c = C(o);
    size_t n = 0;
    for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements;
         i++) {
        redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        const char *id = e->element[0]->str;
        if (paging)
            snprintf(c->from, sizeof(c->from), "%s", id);
        n++;
        size_t len = 0;
        const char *data = field(e->element[1], "data", &len);
        if (!data) { /* deleted or foreign entry: nothing to send */
            store_cmd(o->st, NULL, NULL, "XACK", c->key, GROUP, id, NULL);
            continue;
        }
        send_event(o, id, field(e->element[1], "event", NULL), data, len);
    }
    return n;
}

static void read_done(redisReply *r, void *arg)
{
    omni *o = arg;
    crm *c = C(o);
    if (!c)
        return;
    c->reading = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOGROUP", 7))
            crm_on_ready(o);
        return;
    }
    int paging = strcmp(c->from, ">") != 0;
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements == 2)
            n += handle(o, r->element[i]->element[1], paging);
    if (paging && !n)
        strcpy(c->from, ">");
    if (n)
        crm_pump(o); /* there may be more */
}

void crm_pump(omni *o);

static void retried(redisReply *r, void *arg)
{
    omni *o = arg;
    crm *c = C(o);
    if (!c)
        return;
    c->reading = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2)
        handle(o, r->element[1], 0);
    crm_pump(o); /* new events wait no longer than one sweep */
}

void crm_on_ready(omni *o)
{
    crm *c = C(o);
    if (!c)
        return;
    /* "0": events published before the group existed are delivered too */
    store_cmd(o->st, NULL, NULL, "XGROUP", "CREATE", c->key, GROUP, "0", "MKSTREAM", NULL);
    strcpy(c->from, "0");
    c->reading = 0;
}

void crm_pump(omni *o)
{
    crm *c = C(o);
    if (!c || c->reading || c->inflight >= MAX_INFLIGHT || !store_is_ready(o->st))
        return;
    long long now = omni_now_ms();
    char count[16];
    /* never more than free slots: one read, or one retry sweep when idle */
    snprintf(count, sizeof(count), "%d", MAX_INFLIGHT - c->inflight);
    if (c->inflight == 0 && now >= c->next_retry_ms) {
        /* sweep for events idle past crm_retry_ms a few times per period */
        int every = o->cfg->crm_retry_ms / 4;
        every = every > 5000 ? 5000 : every < 1000 ? 1000 : every;
        c->next_retry_ms = now + every;
        char idle[24];
        snprintf(idle, sizeof(idle), "%d", o->cfg->crm_retry_ms);
        if (store_cmd(o->st, retried, o, "XAUTOCLAIM", c->key, GROUP, o->cfg->consumer, idle, "0-0",
                      "COUNT", count, NULL) == 0)
            c->reading = 1;
        return;
    }
    const char *argv[] = {"XREADGROUP", "GROUP",   GROUP,  o->cfg->consumer, "COUNT",
                          count,        "STREAMS", c->key, c->from};
    if (store_cmdv(o->st, STORE_CMD, read_done, o, 9, argv, NULL) == 0)
        c->reading = 1;
}
