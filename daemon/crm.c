/* Optional CRM hand-off: every event published on omni:conversations is
 * POSTed to [daemon] crm_webhook_url as its JSON, signed like the generic
 * webhook connector, through the same transport. The stream's consumer group
 * `crm` is the queue: an event is acked when the CRM answered 2xx, and one
 * that failed stays pending and is posted again after crm_retry_ms, however
 * long the CRM is away. The webhook answers never wait for it.
 *
 * Order. Events with the same ordering key (the conversation; for an event
 * without one, its channel and contact) are posted one at a time, in stream
 * order: an event is posted only when every earlier event of its key was
 * accepted. A failed post holds back its key only; other keys keep flowing
 * up to MAX_INFLIGHT posts. The events read and not yet accepted are held in
 * memory (at most crm_max_held of them and HELD_BYTES_MAX bytes; beyond that
 * nothing more is read, the rest waits in the stream).
 *
 * One poster. Order cannot hold when two processes post events of one
 * conversation, so one daemon at a time holds the feed's lease
 * (omni:crm:lease, crmlease.lua, renewed every crm_lease_ms / 4) and is the
 * only one reading the group, always as its one consumer FEED. A daemon that
 * takes the lease first moves every pending entry of the group to FEED
 * (entries left under another consumer name), then reads FEED's pending
 * entries from the start, in id order, before any new one: after a crash or a
 * takeover, the events the last holder had not got accepted come first, in
 * their order. A holder posts only while its lease is surely valid, and no
 * post of it outlives the lease (the post's timeout ends before), so a
 * process that took over never posts beside an old one. */
#include "crm.h"

#include <errno.h>
#include <jansson.h>
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
#define FEED "feed"     /* the group's one consumer: whoever holds the lease */
#define MAX_INFLIGHT 16 /* posts in flight */
#define POST_TIMEOUT_MS 10000
/* a post ends at least this long before the lease could (a tenth of it, at
 * most 500 ms), and none starts with less than a quarter of it (at most 1 s)
 * left; the lease is renewed every quarter */
#define LEASE_MARGIN_MS(l) ((l) / 10 < 500 ? (l) / 10 : 500)
#define MIN_POST_MS(l) ((l) / 4 < 1000 ? (l) / 4 : 1000)
#define READ_MAX 64 /* entries per read */
#define HELD_BYTES_MAX (32u << 20)
#define ORDER_KEY_MAX 256 /* a longer key is cut: only more waiting, never less */
#define BUCKETS 1024

typedef struct okey okey;

typedef struct ev {
    struct ev *next; /* the next event of its key */
    okey *k;         /* NULL once dropped (lease lost) while in flight */
    omni *o;
    int inflight;
    size_t len;
    char id[40];
    char *type;
    char *data;
} ev;

/* the events of one ordering key in memory, oldest first */
struct okey {
    okey *hnext;     /* hash chain */
    okey *lnext;     /* ready or waiting list */
    ev *head, *tail; /* head: the one posted next */
    long long retry_at;
    unsigned hash;
    char name[ORDER_KEY_MAX + 1];
};

enum { PH_IDLE, PH_CLAIM, PH_PENDING, PH_NEW };

typedef struct crm {
    char *url;
    char *secret;
    char key[KEY_MAX];
    char lease_key[KEY_MAX];
    char from[40];   /* last pending id read (PH_PENDING) */
    char cursor[40]; /* XAUTOCLAIM cursor (PH_CLAIM) */
    okey *buckets[BUCKETS];
    okey *ready, *ready_tail; /* keys whose head may be posted now */
    okey *waiting;            /* keys whose head failed: posted again at retry_at */
    ev *fly[MAX_INFLIGHT];    /* every event in flight (freed at exit if still there) */
    int inflight;
    int phase;
    int reading;
    unsigned gen; /* bumped when the memory is dropped: older reads are ignored */
    unsigned read_gen;
    int holder; /* we hold the lease (as far as we know) */
    int lease_busy;
    long long lease_sent;  /* mono ms the last take was sent */
    long long lease_until; /* mono ms the lease surely lasts */
    long long next_lease;
    size_t held, held_bytes;
    uint64_t posted, failed;
} crm;

static crm *C(omni *o)
{
    return o->crm;
}

static long long mono_ms(void)
{
    return omni_mono_us() / 1000;
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
    omni_key(o, c->lease_key, sizeof(c->lease_key), KEY_CRM_LEASE, NULL);
    o->crm = c;
    return 0;
}

static void ev_free(crm *c, ev *e)
{
    c->held--;
    c->held_bytes -= e->len;
    free(e);
}

/* Forget every event held (they stay pending in the group, for the next
 * holder or for us after a takeover). Events in flight are left to their
 * post's answer. */
static void drop_all(crm *c)
{
    for (int b = 0; b < BUCKETS; b++) {
        okey *k = c->buckets[b];
        while (k) {
            okey *kn = k->hnext;
            ev *e = k->head;
            while (e) {
                ev *en = e->next;
                if (e->inflight) {
                    e->k = NULL;
                    e->next = NULL;
                } else {
                    ev_free(c, e);
                }
                e = en;
            }
            free(k);
            k = kn;
        }
        c->buckets[b] = NULL;
    }
    c->ready = c->ready_tail = c->waiting = NULL;
    c->phase = PH_IDLE;
    c->gen++;
}

void crm_free(omni *o)
{
    crm *c = C(o);
    if (!c)
        return;
    drop_all(c);
    for (int i = 0; i < MAX_INFLIGHT; i++)
        if (c->fly[i])
            free(c->fly[i]); /* the transport is freed without calling back */
    free(c->url);
    if (c->secret) {
        OPENSSL_cleanse(c->secret, strlen(c->secret));
        free(c->secret);
    }
    free(c);
    o->crm = NULL;
}

static void lose(omni *o, const char *why)
{
    crm *c = C(o);
    if (c->holder)
        log_info("crm feed: lease %s; not posting", why);
    c->holder = 0;
    drop_all(c);
}

static unsigned hash_str(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void push_ready(crm *c, okey *k)
{
    k->lnext = NULL;
    if (c->ready_tail)
        c->ready_tail->lnext = k;
    else
        c->ready = k;
    c->ready_tail = k;
}

static void key_remove(crm *c, okey *k)
{
    okey **pp = &c->buckets[k->hash % BUCKETS];
    while (*pp && *pp != k)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = k->hnext;
    free(k);
}

/* The ordering key of an event: "conversation:ID", else
 * "contact:CHANNEL:CONTACT", else "entry:STREAM-ID" (nothing to order it
 * with). Bytes outside visible ASCII (and '%') are written %XX, so the key
 * can be a header value. */
static void order_key(const char *data, size_t len, const char *id, char *out, size_t outlen)
{
    char raw[ORDER_KEY_MAX * 2];
    raw[0] = 0;
    json_t *j = data ? json_loadb(data, len, 0, NULL) : NULL;
    const char *cv = j ? json_string_value(json_object_get(j, "conversation_id")) : NULL;
    const char *ch = j ? json_string_value(json_object_get(j, "channel")) : NULL;
    const char *ct = j ? json_string_value(json_object_get(j, "contact")) : NULL;
    if (cv && *cv)
        snprintf(raw, sizeof(raw), "conversation:%s", cv);
    else if (ch && ct)
        snprintf(raw, sizeof(raw), "contact:%s:%s", ch, ct);
    else
        snprintf(raw, sizeof(raw), "entry:%s", id);
    json_decref(j);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p && n + 4 <= outlen; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '%')
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, outlen - n, "%%%02X", *p);
    }
    out[n] = 0;
}

/* Hold an event read from the stream, behind the earlier ones of its key. */
static void hold(crm *c, const char *id, const char *type, const char *data, size_t len)
{
    size_t tl = type ? strlen(type) : 0;
    ev *e = malloc(sizeof(*e) + tl + 1 + len + 1);
    if (!e)
        return; /* stays pending: read again after the next takeover */
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->type = (char *)(e + 1);
    memcpy(e->type, type ? type : "", tl + 1);
    e->data = e->type + tl + 1;
    memcpy(e->data, data, len);
    e->data[len] = 0;
    e->len = len;
    c->held++;
    c->held_bytes += len;

    char name[ORDER_KEY_MAX + 1];
    order_key(data, len, id, name, sizeof(name));
    unsigned h = hash_str(name);
    okey *k = c->buckets[h % BUCKETS];
    while (k && (k->hash != h || strcmp(k->name, name)))
        k = k->hnext;
    if (!k) {
        k = calloc(1, sizeof(*k));
        if (!k) {
            ev_free(c, e);
            return;
        }
        k->hash = h;
        memcpy(k->name, name, strlen(name) + 1);
        k->hnext = c->buckets[h % BUCKETS];
        c->buckets[h % BUCKETS] = k;
    }
    e->k = k;
    if (k->tail) {
        k->tail->next = e;
        k->tail = e;
    } else {
        k->head = k->tail = e;
        push_ready(c, k);
    }
}

static void fly_remove(crm *c, ev *e)
{
    for (int i = 0; i < MAX_INFLIGHT; i++)
        if (c->fly[i] == e) {
            c->fly[i] = NULL;
            break;
        }
    c->inflight--;
}

static void posted(void *arg, const oc_response *r, long long latency_us)
{
    (void)latency_us;
    ev *e = arg;
    omni *o = e->o;
    crm *c = C(o);
    if (!c) /* cannot happen: crm_free comes with the transport's end */
        return;
    fly_remove(c, e);
    e->inflight = 0;
    int ok = r->net_error == OC_NET_OK && r->status >= 200 && r->status < 300;
    if (ok) {
        c->posted++;
        store_cmd(o->st, NULL, NULL, "XACK", c->key, GROUP, e->id, NULL);
    } else {
        c->failed++;
        log_warn("crm webhook: event %s not accepted (%s %ld); will retry", e->id,
                 r->net_error ? r->net_detail : "HTTP", r->status);
    }
    okey *k = e->k;
    if (!k) { /* dropped meanwhile: pending again for whoever holds the lease */
        ev_free(c, e);
    } else if (ok) {
        k->head = e->next;
        if (!k->head)
            k->tail = NULL;
        ev_free(c, e);
        if (k->head)
            push_ready(c, k);
        else
            key_remove(c, k);
    } else {
        /* it stays first: the key's later events wait for it */
        k->retry_at = mono_ms() + o->cfg->crm_retry_ms;
        k->lnext = c->waiting;
        c->waiting = k;
    }
    crm_pump(o);
}

static int send_event(omni *o, ev *e, int timeout_ms)
{
    crm *c = C(o);
    int slot = -1;
    for (int i = 0; i < MAX_INFLIGHT && slot < 0; i++)
        if (!c->fly[i])
            slot = i;
    if (slot < 0)
        return -1;
    oc_request req;
    memset(&req, 0, sizeof(req));
    req.kind = OC_REQ_HTTP;
    req.method = "POST";
    req.url = strdup(c->url);
    oc_buf_append(&req.body, e->data, e->len);
    oc_request_header(&req, "Content-Type", "application/json");
    oc_request_header(&req, "X-Omnicast-Event", e->type);
    oc_request_header(&req, "X-Omnicast-Delivery", e->id);
    oc_request_header(&req, "X-Omnicast-Ordering-Key", e->k->name);
    if (c->secret) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned ml = 0;
        HMAC(EVP_sha256(), c->secret, (int)strlen(c->secret), (const unsigned char *)e->data,
             e->len, mac, &ml);
        char sig[80] = "sha256=";
        for (unsigned i = 0; i < ml; i++)
            sprintf(sig + 7 + 2 * i, "%02x", mac[i]);
        oc_request_header(&req, "X-Omnicast-Signature", sig);
    }
    transport_req_opts to = {.timeout_ms = timeout_ms,
                             .connect_timeout_ms = timeout_ms < 3000 ? timeout_ms : 3000,
                             .http2 = strncmp(c->url, "https:", 6) == 0 ? OC_HTTP2_AUTO : 0,
                             .native = 1};
    e->o = o;
    e->inflight = 1;
    c->fly[slot] = e;
    c->inflight++;
    if (transport_submit(o->tp, &req, &to, posted, e) < 0) {
        fly_remove(c, e);
        e->inflight = 0;
        return -1;
    }
    return 0;
}

/* Post the head of every key that may go, up to the in-flight limit. */
static void post_ready(omni *o, long long now)
{
    crm *c = C(o);
    for (okey **pp = &c->waiting; *pp;) { /* retries that are due */
        okey *k = *pp;
        if (k->retry_at <= now) {
            *pp = k->lnext;
            push_ready(c, k);
        } else {
            pp = &k->lnext;
        }
    }
    int lease = o->cfg->crm_lease_ms;
    long long left = c->lease_until - LEASE_MARGIN_MS(lease) - now;
    if (left < MIN_POST_MS(lease))
        return; /* the lease may end before a post would: wait for its renewal */
    int timeout = left < POST_TIMEOUT_MS ? (int)left : POST_TIMEOUT_MS;
    while (c->ready && c->inflight < MAX_INFLIGHT) {
        okey *k = c->ready;
        c->ready = k->lnext;
        if (!c->ready)
            c->ready_tail = NULL;
        if (send_event(o, k->head, timeout) < 0) {
            /* not even set up: like a failed post */
            c->failed++;
            k->retry_at = now + o->cfg->crm_retry_ms;
            k->lnext = c->waiting;
            c->waiting = k;
        }
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
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !e->element[0]->str)
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
        hold(c, id, field(e->element[1], "event", NULL), data, len);
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
    if (c->read_gen != c->gen || !c->holder)
        return; /* the memory was dropped since: these stay pending */
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOGROUP", 7))
            store_cmd(o->st, NULL, NULL, "XGROUP", "CREATE", c->key, GROUP, "0", "MKSTREAM", NULL);
        return;
    }
    int paging = c->phase == PH_PENDING;
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements == 2)
            n += handle(o, r->element[i]->element[1], paging);
    if (paging && !n)
        c->phase = PH_NEW; /* our pending ones are all in memory: now the new ones */
    if (n || paging)
        crm_pump(o); /* post them; there may be more (else: the next tick looks) */
}

static void claimed(redisReply *r, void *arg)
{
    omni *o = arg;
    crm *c = C(o);
    if (!c)
        return;
    c->reading = 0;
    if (c->read_gen != c->gen || !c->holder || c->phase != PH_CLAIM)
        return;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || !r->element[0]->str) {
        if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOGROUP", 7))
            store_cmd(o->st, NULL, NULL, "XGROUP", "CREATE", c->key, GROUP, "0", "MKSTREAM", NULL);
        return; /* tried again from the tick */
    }
    snprintf(c->cursor, sizeof(c->cursor), "%s", r->element[0]->str);
    if (!strcmp(c->cursor, "0-0")) {
        c->phase = PH_PENDING;
        strcpy(c->from, "0");
    }
    crm_pump(o);
}

static void lease_done(redisReply *r, void *arg)
{
    omni *o = arg;
    crm *c = C(o);
    if (!c)
        return;
    c->lease_busy = 0;
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return; /* no answer: the lease runs out on its own clock */
    if (r->integer > 0) {
        c->lease_until = c->lease_sent + o->cfg->crm_lease_ms;
        if (!c->holder) {
            c->holder = 1;
            log_info("crm feed: this daemon holds the lease and posts the CRM feed");
        }
    } else if (c->holder) {
        lose(o, "held by another daemon");
    }
    crm_pump(o);
}

void crm_on_ready(omni *o)
{
    crm *c = C(o);
    if (!c)
        return;
    /* "0": events published before the group existed are delivered too */
    store_cmd(o->st, NULL, NULL, "XGROUP", "CREATE", c->key, GROUP, "0", "MKSTREAM", NULL);
    /* Redis was away: read everything pending again from the start (after
     * the posts in flight answered), whether the lease is still ours or not */
    drop_all(c);
    c->next_lease = 0;
}

static void dropped(redisReply *r, void *arg)
{
    (void)r;
    omni *o = arg;
    crm *c = C(o);
    if (!c)
        return;
    c->lease_busy = 0;
    omni_kick(o);
}

int crm_drained(omni *o)
{
    crm *c = C(o);
    if (!c || !store_is_ready(o->st))
        return 1;
    return !c->holder && !c->lease_busy && !c->inflight;
}

static void lease_tick(omni *o, long long now)
{
    crm *c = C(o);
    if (c->holder && now >= c->lease_until)
        lose(o, "not renewed in time");
    if (o->draining) {
        /* let another daemon take over at once rather than after a lease:
         * once our posts answered, the lease is given up (crm_drained) */
        if (c->holder && !c->inflight && !c->lease_busy) {
            const char *argv[] = {c->lease_key, "drop", o->owner};
            if (store_eval(o->st, SCRIPT_CRMLEASE, dropped, o, 1, 3, argv, NULL) == 0) {
                c->lease_busy = 1;
                lose(o, "given up (stopping)");
            }
        }
        return;
    }
    if (c->lease_busy || now < c->next_lease)
        return;
    char ms[16];
    snprintf(ms, sizeof(ms), "%d", o->cfg->crm_lease_ms);
    const char *argv[] = {c->lease_key, "take", o->owner, ms};
    if (store_eval(o->st, SCRIPT_CRMLEASE, lease_done, o, 1, 4, argv, NULL) == 0) {
        c->lease_busy = 1;
        c->lease_sent = now;
        c->next_lease = now + o->cfg->crm_lease_ms / 4;
    }
}

void crm_pump(omni *o)
{
    crm *c = C(o);
    if (!c || !store_is_ready(o->st))
        return;
    long long now = mono_ms();
    lease_tick(o, now);
    if (!c->holder || o->draining)
        return;
    if (c->phase == PH_IDLE) {
        if (c->inflight)
            return; /* posts of before a drop still out: never beside them */
        c->phase = PH_CLAIM;
        strcpy(c->cursor, "0-0");
    }
    post_ready(o, now);
    if (c->reading)
        return;
    if (c->phase == PH_CLAIM) {
        /* every pending entry of the group becomes FEED's, whoever read it */
        if (store_cmd(o->st, claimed, o, "XAUTOCLAIM", c->key, GROUP, FEED, "0", c->cursor, "COUNT",
                      "1000", "JUSTID", NULL) == 0) {
            c->reading = 1;
            c->read_gen = c->gen;
        }
        return;
    }
    if (c->held >= (size_t)o->cfg->crm_max_held || c->held_bytes >= HELD_BYTES_MAX)
        return; /* full: the rest waits in the stream */
    size_t room = (size_t)o->cfg->crm_max_held - c->held;
    char count[16];
    snprintf(count, sizeof(count), "%zu", room < READ_MAX ? room : (size_t)READ_MAX);
    const char *argv[] = {"XREADGROUP", "GROUP", GROUP,
                          FEED,         "COUNT", count,
                          "STREAMS",    c->key,  c->phase == PH_PENDING ? c->from : ">"};
    if (store_cmdv(o->st, STORE_CMD, read_done, o, 9, argv, NULL) == 0) {
        c->reading = 1;
        c->read_gen = c->gen;
    }
}

int crm_stats_of(omni *o, crm_stats *s)
{
    crm *c = C(o);
    if (!c)
        return -1;
    s->posted = c->posted;
    s->failed = c->failed;
    s->held = c->held;
    s->holder = c->holder;
    return 0;
}
