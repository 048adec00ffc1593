/* Inbound events to Redis, one inbound.lua call each, from a bounded
 * in-memory queue pipelined on the command connection. Each event reports
 * once to the webhook that brought it: stored (the script's reply, or a dead
 * letter for an event the script cannot process) or not (Redis refused the
 * write or went away); a webhook answers 2xx only when all of its events are
 * stored, 503 otherwise, and the provider retries. Nothing is retried here:
 * the provider's retry is the retry. */
#include "conv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "keys.h"
#include "log.h"
#include "stream.h" /* omni_dead_then */

/* A replay claim (conv_gate) shared by the claim itself and the events of
 * the same request, which wait for it in the queue. */
enum { GATE_PENDING = 0, GATE_CLAIMED = 1, GATE_REFUSED = 2, GATE_FAILED = 3 };

typedef struct gate {
    int state;
    int refs;
    int lost;     /* an event of the request was not stored */
    int released; /* the claim was given back (DEL) */
    char *key;
} gate;

#define QEV_ARGS 18

typedef struct qev {
    char *argv[QEV_ARGS];
    size_t lens[QEV_ARGS];
    int argc;
    conv_written_fn done;
    void *done_arg;
    int sent; /* in flight */
    omni *o;
    int is_gate; /* the claim of g, not an event */
    long ttl_s;  /* is_gate: the claim's expiry */
    gate *g;     /* an event: the claim it waits for; NULL: none */
    struct qev *next;
} qev;

#define PIPELINE 256 /* events in flight at once, in order on one connection */

typedef struct conv_state {
    qev *head, *tail;
    size_t n;
    int inflight;
    qev *last_gate;  /* the newest claim queued and not answered */
    char **releases; /* claims to give back once Redis is reachable again */
    size_t n_releases;
} conv_state;

#define RELEASES_MAX 1024

static conv_state *S(omni *o)
{
    return o->conv;
}

static int in_list(const char *t, size_t n, const char *list)
{
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t k = strcspn(p, " ,");
        if (k && k == n && !strncasecmp(p, t, n))
            return 1;
        p += k;
    }
    return 0;
}

int conv_keyword(const char *text, const char *opt_out, const char *opt_in)
{
    if (!text)
        return KW_NONE;
    while (isspace((unsigned char)*text))
        text++;
    size_t n = strlen(text);
    while (n && (isspace((unsigned char)text[n - 1]) || text[n - 1] == '.' || text[n - 1] == '!'))
        n--;
    if (!n)
        return KW_NONE;
    if (in_list(text, n, opt_out))
        return KW_OPTOUT;
    if (in_list(text, n, opt_in))
        return KW_OPTIN;
    return KW_NONE;
}

int conv_init(omni *o)
{
    o->conv = calloc(1, sizeof(conv_state));
    return o->conv ? 0 : -1;
}

static void gate_unref(gate *g)
{
    if (g && --g->refs == 0) {
        free(g->key);
        free(g);
    }
}

static void qev_free(qev *e)
{
    for (int i = 0; i < e->argc; i++)
        free(e->argv[i]);
    gate_unref(e->g);
    free(e);
}

void conv_free(omni *o)
{
    conv_state *s = S(o);
    if (!s)
        return;
    while (s->head) {
        qev *e = s->head;
        s->head = e->next;
        qev_free(e); /* at exit: no one is waiting any more */
    }
    for (size_t i = 0; i < s->n_releases; i++)
        free(s->releases[i]);
    free(s->releases);
    free(s);
    o->conv = NULL;
}

size_t conv_pending(omni *o)
{
    return S(o) ? S(o)->n : 0;
}

int conv_has_room(omni *o, size_t n)
{
    return S(o)->n + n <= CONV_QUEUE_MAX;
}

static void add(qev *e, const char *s)
{
    if (e->argc < QEV_ARGS) {
        e->argv[e->argc] = strdup(s ? s : "");
        e->lens[e->argc] = strlen(e->argv[e->argc]);
        e->argc++;
    }
}

static void enqueue(omni *o, qev *e)
{
    conv_state *s = S(o);
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    e->o = o;
    s->n++;
    /* an event of the request whose claim was just queued waits for it */
    if (!e->is_gate && s->last_gate && s->last_gate->done_arg == e->done_arg &&
        s->last_gate->g->state == GATE_PENDING) {
        e->g = s->last_gate->g;
        e->g->refs++;
    }
    omni_kick(o);
}

/* The channel a connector instance serves (the first mapped to it). */
static const char *channel_of(omni *o, conn_inst *ci, int *kind)
{
    for (size_t i = 0; i < o->n_chans; i++)
        if (o->chans[i].ci == ci) {
            *kind = o->chans[i].addr_kind;
            return o->chans[i].name;
        }
    *kind = ci->addr_kind;
    return ci->conf->name;
}

/* The contact's address on the channel: normalized as campaigns' are; on
 * WhatsApp also a business-scoped user id (a user known without a phone
 * number), kept as WhatsApp gives it. 0, or -1 when unusable. */
static int contact_addr(const conn_inst *ci, int kind, const char *in, char *out, size_t len)
{
    const char *why;
    if (!in)
        return -1;
    if (addr_normalize(kind, in, out, len, &why) == 0)
        return 0;
    return ci->impl->type && !strcmp(ci->impl->type, "whatsapp") ? addr_bsuid(in, out, len) : -1;
}

/* Give a claim back: its request's events were not all stored, and the
 * provider's retry (the same token) must be taken, not refused. With the
 * connection down the DEL waits for the next flush (at most RELEASES_MAX
 * of them; past that the key just expires). */
static void gate_release(omni *o, gate *g)
{
    if (g->released)
        return;
    g->released = 1;
    conv_state *s = S(o);
    const char *argv[] = {"DEL", g->key};
    if (!s->n_releases && store_is_ready(o->st) &&
        store_cmdv(o->st, STORE_CMD, NULL, NULL, 2, argv, NULL) == 0)
        return;
    /* the connection is down (a NOSCRIPT teardown, Redis gone): sent by
     * the next flush, ahead of any new claim on the same connection */
    char **r = s->n_releases < RELEASES_MAX ? realloc(s->releases, (s->n_releases + 1) * sizeof(*r))
                                            : NULL;
    char *k = r ? strdup(g->key) : NULL;
    if (r)
        s->releases = r;
    if (!k) {
        log_warn("inbound: a replay claim could not be given back: a retry of the same "
                 "delivery is refused until it expires");
        return;
    }
    s->releases[s->n_releases++] = k;
}

static void flush_releases(omni *o)
{
    conv_state *s = S(o);
    size_t i = 0;
    for (; i < s->n_releases; i++) {
        const char *argv[] = {"DEL", s->releases[i]};
        if (store_cmdv(o->st, STORE_CMD, NULL, NULL, 2, argv, NULL) < 0)
            break;
        free(s->releases[i]);
    }
    memmove(s->releases, s->releases + i, (s->n_releases - i) * sizeof(*s->releases));
    s->n_releases -= i;
}

static void drop(qev *e, int stored)
{
    if (e->o && S(e->o) && S(e->o)->last_gate == e)
        S(e->o)->last_gate = NULL;
    if (!stored && !e->is_gate && e->g) {
        e->g->lost = 1;
        if (e->g->state == GATE_CLAIMED)
            gate_release(e->o, e->g);
    }
    if (e->done)
        e->done(e->done_arg, stored);
    qev_free(e);
}

/* A failed status whose error says the account, not the message, is
 * refused (Twilio's 30034 arrives in status callbacks, not in the send
 * answer): the instance halts as for an OC_HALT outcome. reason is a
 * plugin's bytes: a stable code of [a-z0-9_] only, else nothing happens. */
static void halt_from_status(omni *o, conn_inst *ci, const char *reason, const char *error)
{
    size_t n = strlen(reason);
    if (!n || n >= 48 || strspn(reason, "abcdefghijklmnopqrstuvwxyz0123456789_") != n || ci->halted)
        return;
    char detail[96];
    snprintf(detail, sizeof(detail), "status callback error %.40s", error ? error : "");
    conn_halt(ci, reason, detail);
    omni_kick(o);
}

void conv_push(omni *o, conn_inst *ci, const oc_event *ev, conv_written_fn done, void *arg)
{
    qev *e = calloc(1, sizeof(*e));
    e->done = done;
    e->done_arg = arg;
    char now[24];
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    add(e, o->cfg->prefix);
    add(e, now);
    if (ev->type >= OC_EV_REPLY && ev->type <= OC_EV_UNSUBSCRIBE)
        o->stats.webhook_by_type[ev->type]++;
    if (ev->type == OC_EV_ERROR) {
        /* ABI 1.4: a problem about the webhook's subject, counted only (the
         * connector logs it with its own words) */
        ci->n_webhook_errors++;
        drop(e, 1);
        return;
    }
    if (ev->type == OC_EV_STATUS) {
        if (!ev->provider_id || !ev->state) {
            drop(e, 1);
            return;
        }
        /* ABI 1.3: what the error means to the connector, "KIND:REASON" */
        const char *meaning = ci->impl->abi_minor >= 3 ? ev->payload : NULL;
        if (meaning && !strncmp(meaning, "halt:", 5) && !strcmp(ev->state, "failed"))
            halt_from_status(o, ci, meaning + 5, ev->error);
        add(e, "status");
        add(e, ci->conf->name);
        add(e, ev->provider_id);
        add(e, ev->state);
        add(e, ev->error);
        add(e, meaning);
    } else if (ev->type == OC_EV_REPLY) {
        int kind;
        const char *channel = channel_of(o, ci, &kind);
        char from[ADDR_MAX], other[ADDR_MAX] = "";
        if (contact_addr(ci, kind, ev->from, from, sizeof(from)) < 0) {
            log_warn("webhook %s: reply from an unusable address dropped", ci->conf->name);
            drop(e, 1);
            return;
        }
        int kw = conv_keyword(ev->text, o->cfg->opt_out_keywords, o->cfg->opt_in_keywords);
        char window[24];
        snprintf(window, sizeof(window), "%lld", (long long)o->cfg->attribution_window_s * 1000);
        add(e, "reply");
        add(e, ci->conf->name);
        add(e, channel);
        add(e, from);
        add(e, ev->to);
        add(e, ev->text);
        add(e, ev->provider_id);
        add(e, ev->in_reply_to);
        add(e, kw == KW_OPTOUT ? "optout" : kw == KW_OPTIN ? "optin" : "reply");
        add(e, window);
        add(e, ev->name);
        add(e, ev->kind ? ev->kind : "text");
        /* ABI 1.3: a plugin built against an older header has no payload */
        add(e, ci->impl->abi_minor >= 3 ? ev->payload : NULL);
        /* ABI 1.4: another address of the contact (state): an alias of from */
        if (ci->impl->abi_minor >= 4 && ev->state &&
            contact_addr(ci, kind, ev->state, other, sizeof(other)) < 0)
            other[0] = '\0';
        add(e, other);
    } else if (ev->type == OC_EV_OPTOUT || ev->type == OC_EV_OPTIN) {
        /* a contact's stop/resume that is not a message (ABI 1.3) */
        int kind;
        const char *channel = channel_of(o, ci, &kind);
        char from[ADDR_MAX];
        if (contact_addr(ci, kind, ev->from, from, sizeof(from)) < 0) {
            log_warn("webhook %s: opt-out/opt-in for an unusable address dropped", ci->conf->name);
            drop(e, 1);
            return;
        }
        char window[24];
        snprintf(window, sizeof(window), "%lld", (long long)o->cfg->attribution_window_s * 1000);
        add(e, "pref");
        add(e, ci->conf->name);
        add(e, channel);
        add(e, from);
        add(e, ev->type == OC_EV_OPTOUT ? "optout" : "optin");
        add(e, ev->in_reply_to);
        add(e, ev->kind);
        add(e, window);
    } else if (ev->type == OC_EV_UNSUBSCRIBE) {
        add(e, "unsub");
        add(e, ci->conf->name);
        add(e, ev->provider_id);
    } else if (ev->type == OC_EV_BOUNCE || ev->type == OC_EV_COMPLAINT) {
        /* ABI 1.4: a delivery report about one of our messages; the script
         * suppresses the message's own recipient (hard bounce, complaint) */
        if (ci->impl->abi_minor < 4 || !ev->provider_id || !*ev->provider_id) {
            drop(e, 1);
            return;
        }
        add(e, ev->type == OC_EV_BOUNCE ? "bounce" : "complaint");
        add(e, ci->conf->name);
        add(e, ev->provider_id);
        add(e, ev->state ? ev->state : ev->type == OC_EV_BOUNCE ? "hard" : "complaint");
        add(e, ev->error);
        add(e, ev->kind);
        add(e, ev->from);
    } else {
        drop(e, 1);
        return;
    }
    enqueue(o, e);
}

void conv_gate(omni *o, conn_inst *ci, const char *key, long ttl_s, conv_written_fn done, void *arg)
{
    qev *e = calloc(1, sizeof(*e));
    gate *g = calloc(1, sizeof(*g));
    size_t n = strlen(o->cfg->prefix) + strlen(ci->conf->name) + strlen(key) + 10;
    char *k = malloc(n), *name = malloc(n);
    if (name)
        snprintf(name, n, "%s:%s", ci->conf->name, key);
    if (!e || !g || !k || !name || key_build(k, n, o->cfg->prefix, KEY_REPLAY, name) < 0) {
        free(e);
        free(g);
        free(k);
        free(name);
        if (done)
            done(arg, 0);
        return;
    }
    free(name);
    g->key = k;
    g->refs = 1;
    e->g = g;
    e->is_gate = 1;
    e->ttl_s = ttl_s > 0 ? ttl_s : 1;
    e->done = done;
    e->done_arg = arg;
    enqueue(o, e);
    S(o)->last_gate = e;
}

static void unlink_ev(conv_state *s, qev *e)
{
    qev **pp = &s->head, *prev = NULL;
    while (*pp && *pp != e) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = e->next;
    if (s->tail == e)
        s->tail = prev;
    s->n--;
}

/* An error that says Redis will not write now, whatever the event: the
 * provider retries later. Inside a script the code may follow the script's
 * own error text (older servers: "... -OOM command not allowed ..."). */
static int refused_now(const char *err)
{
    static const char *const codes[] = {
        "OOM",        "READONLY", "NOSCRIPT",    "LOADING", "BUSY",   "MASTERDOWN", "MISCONF",
        "NOREPLICAS", "TRYAGAIN", "CLUSTERDOWN", "NOPERM",  "NOAUTH", "UNBLOCKED"};
    if (!err)
        return 1;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t n = strlen(codes[i]);
        if (!strncmp(err, codes[i], n) && (err[n] == ' ' || !err[n]))
            return 1;
        for (const char *p = strstr(err, codes[i]); p; p = strstr(p + 1, codes[i]))
            if (p > err && p[-1] == '-' && (p[n] == ' ' || !p[n]))
                return 1;
    }
    return 0;
}

/* The dead letter of an event the script could not process: the event
 * counts as stored once the dead letter is. */
static void dead_written(redisReply *r, void *arg)
{
    qev *e = arg;
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (ok)
        e->o->stats.dead_letters++;
    else
        log_error("inbound event neither stored nor dead-lettered (%s): the webhook answers 503",
                  r && r->str ? r->str : "Redis unavailable");
    drop(e, ok);
}

static void dead_letter(omni *o, qev *e, const char *reason)
{
    oc_buf raw = {0};
    for (int i = 2; i < e->argc; i++) {
        oc_buf_puts(&raw, i > 2 ? "\t" : "");
        oc_buf_append(&raw, e->argv[i], e->lens[i]);
    }
    omni_dead_then(o, "inbound", reason, raw.data ? raw.data : "", raw.len, NULL, dead_written, e);
    oc_buf_free(&raw);
}

/* Events are pipelined on the one command connection, so Redis applies
 * them in order; a reply belongs to its own event (arg). */
static void written(redisReply *r, void *arg)
{
    qev *e = arg;
    omni *o = e->o;
    conv_state *s = S(o);
    s->inflight--;
    e->sent = 0;
    unlink_ev(s, e);
    if (!r) {
        /* Redis away, or the scripts flushed (NOSCRIPT): maybe written, maybe
         * not; the provider retries and inbound.lua drops a duplicate */
        log_error("inbound event not stored (Redis unavailable): the webhook answers 503");
        drop(e, 0);
    } else if (r->type == REDIS_REPLY_ERROR && refused_now(r->str)) {
        log_error("inbound event not stored (%s): the webhook answers 503", r->str);
        drop(e, 0);
    } else if (r->type == REDIS_REPLY_ERROR) {
        /* the script cannot process this event: kept in the dead-letter
         * stream, not lost, and the provider need not send it again */
        log_error("inbound event refused by the script (%s): dead-lettered", r->str);
        dead_letter(o, e, r->str);
    } else {
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && r->element[2]->str &&
            !strcmp(r->element[2]->str, "1") && !strcmp(e->argv[2], "reply"))
            o->stats.conversations_opened++;
        /* a failed status counted: its channel and reason (inbound.lua) */
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 4 && !strcmp(e->argv[2], "status") &&
            r->element[2]->str && r->element[3]->str &&
            !strncmp(r->element[3]->str, "failed_reason:", 14))
            omni_count_failure(o, r->element[2]->str, r->element[3]->str + 14);
        drop(e, 1);
    }
    omni_kick(o);
}

/* The claim's answer: OK (first time: the waiting events go), nil (claimed
 * before: a replay, the events are dropped unstored), or none (Redis
 * refused or went away: the events are dropped, the webhook answers 503). */
static void gated(redisReply *r, void *arg)
{
    qev *e = arg;
    omni *o = e->o;
    conv_state *s = S(o);
    gate *g = e->g;
    g->refs++; /* held while its events are dropped */
    s->inflight--;
    e->sent = 0;
    unlink_ev(s, e);
    int result;
    if (r && r->type == REDIS_REPLY_STATUS && r->str && !strcmp(r->str, "OK")) {
        g->state = GATE_CLAIMED;
        result = 1;
        if (g->lost) /* its events were given up meanwhile (deadline) */
            gate_release(o, g);
    } else if (r && r->type == REDIS_REPLY_NIL) {
        g->state = GATE_REFUSED;
        result = CONV_REPLAYED;
        log_warn("inbound: a signed request's token was used before: refused as a replay");
    } else {
        g->state = GATE_FAILED;
        result = 0;
        log_error("inbound: replay claim not made (%s): the webhook answers 503",
                  r && r->str ? r->str : "Redis unavailable");
    }
    /* the claim reports first: the webhook answers from the first report */
    drop(e, result);
    if (result != 1) {
        qev *x = s->head;
        while (x) {
            qev *next = x->next;
            if (!x->sent && x->g == g) {
                unlink_ev(s, x);
                drop(x, result);
            }
            x = next;
        }
    }
    gate_unref(g);
    omni_kick(o);
}

void conv_cancel(omni *o, void *arg)
{
    conv_state *s = S(o);
    if (!s)
        return;
    qev *e = s->head;
    while (e) {
        qev *next = e->next;
        if (!e->sent && e->done_arg == arg) {
            unlink_ev(s, e);
            drop(e, 0);
        }
        e = next;
    }
}

void conv_flush(omni *o)
{
    conv_state *s = S(o);
    if (!s || !store_is_ready(o->st))
        return;
    if (s->n_releases) {
        flush_releases(o);
        if (s->n_releases)
            return; /* in order: no new claim before the old ones are given back */
    }
    for (qev *e = s->head; e && s->inflight < PIPELINE; e = e->next) {
        if (e->sent)
            continue;
        if (e->is_gate) {
            char ttl[24];
            snprintf(ttl, sizeof(ttl), "%ld", e->ttl_s);
            const char *argv[] = {"SET", e->g->key, "1", "NX", "EX", ttl};
            if (store_cmdv(o->st, STORE_CMD, gated, e, 6, argv, NULL) < 0)
                return;
            e->sent = 1;
            s->inflight++;
            continue;
        }
        if (e->g && e->g->state != GATE_CLAIMED)
            continue; /* waits for its request's claim */
        if (store_eval(o->st, SCRIPT_INBOUND, written, e, 0, e->argc, (const char **)e->argv,
                       e->lens) < 0)
            return;
        e->sent = 1;
        s->inflight++;
    }
}

typedef struct pending {
    omni *o;
    conv_done_fn done;
    void *arg;
} pending;

static void opened(redisReply *r, void *arg)
{
    pending *p = arg;
    const char *id = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[0]->str &&
        !strcmp(r->element[0]->str, "ok"))
        id = r->element[1]->str;
    if (id && r->elements >= 3 && r->element[2]->str && !strcmp(r->element[2]->str, "1"))
        p->o->stats.conversations_opened++;
    p->done(p->o, id, p->arg);
    free(p);
}

void conv_proactive(omni *o, const char *channel, const char *contact, const char *campaign,
                    const char *text, conv_done_fn done, void *arg)
{
    pending *p = calloc(1, sizeof(*p));
    p->o = o;
    p->done = done;
    p->arg = arg;
    char now[24];
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    const char *argv[] = {o->cfg->prefix, now,      "proactive",     channel,
                          contact,        campaign, text ? text : ""};
    if (store_eval(o->st, SCRIPT_INBOUND, opened, p, 0, 7, argv, NULL) < 0)
        opened(NULL, p);
}

void conv_close(omni *o, const char *id, conv_done_fn done, void *arg)
{
    pending *p = calloc(1, sizeof(*p));
    p->o = o;
    p->done = done;
    p->arg = arg;
    char now[24];
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    const char *argv[] = {o->cfg->prefix, now, "close", id};
    if (store_eval(o->st, SCRIPT_INBOUND, opened, p, 0, 4, argv, NULL) < 0)
        opened(NULL, p);
}

typedef struct agent_req {
    omni *o;
    conv_result_fn done;
    void *arg;
} agent_req;

static void agent_written(redisReply *r, void *arg)
{
    agent_req *p = arg;
    const char *res = NULL, *detail = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        res = r->element[0]->str;
        if (r->elements >= 2 && r->element[1]->type == REDIS_REPLY_STRING)
            detail = r->element[1]->str;
    }
    p->done(p->o, res, detail, p->arg);
    free(p);
}

void conv_agent(omni *o, const char *conv_id, const char *msg_id, const char *text, const char *job,
                conv_result_fn done, void *arg)
{
    agent_req *p = calloc(1, sizeof(*p));
    if (!p) {
        done(o, NULL, NULL, arg);
        return;
    }
    p->o = o;
    p->done = done;
    p->arg = arg;
    char now[24];
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    const char *argv[] = {o->cfg->prefix, now, "agent", conv_id, msg_id, text ? text : "", job};
    if (store_eval(o->st, SCRIPT_INBOUND, agent_written, p, 0, 7, argv, NULL) < 0)
        agent_written(NULL, p);
}
