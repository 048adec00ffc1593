/* Job intake into campaigns: validate, dead-letter what does not validate,
 * create the campaign once per id (create.lua), apply control jobs; and the
 * cache of compiled campaign specs the dispatcher renders from. */
#include "campaign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "log.h"
#include "stream.h"

#define SPEC_CACHE_MAX 64
#define MAX_JOBS_BUSY 64

typedef struct spec_cache {
    campaign_spec *head;
    size_t n;
} spec_cache;

struct campaign_state {
    spec_cache cache;
    int busy; /* jobs being validated/created */
    campaign_counters counters;
    campaign_state_fn on_state;
};

static spec_cache *cache_of(omni *o)
{
    return &o->campaigns->cache;
}

int campaign_init(omni *o, campaign_state_fn on_state)
{
    o->campaigns = calloc(1, sizeof(*o->campaigns));
    if (!o->campaigns)
        return -1;
    o->campaigns->on_state = on_state;
    return 0;
}

int campaign_busy(omni *o)
{
    return o->campaigns->busy;
}

int campaign_can_take(omni *o)
{
    return o->campaigns->busy <= MAX_JOBS_BUSY;
}

const campaign_counters *campaign_counters_of(omni *o)
{
    static const campaign_counters none;
    return o->campaigns ? &o->campaigns->counters : &none;
}

static void spec_free(campaign_spec *s)
{
    if (!s)
        return;
    tmpl_free(s->text);
    tmpl_free(s->subject);
    tmpl_free(s->html);
    for (size_t i = 0; i < s->n_params; i++)
        tmpl_free(s->params[i]);
    free(s->params);
    jtmpl_free(s->components);
    tmpl_free(s->media_url);
    tmpl_free(s->media_caption);
    tmpl_free(s->media_filename);
    json_decref(s->spec);
    free(s->id);
    free(s);
}

static tmpl *compile_opt(json_t *obj, const char *key, char *err, size_t err_len, int *bad)
{
    const char *src = json_string_value(json_object_get(obj, key));
    if (!src)
        return NULL;
    char e[128];
    tmpl *t = tmpl_compile(src, e, sizeof(e));
    if (!t) {
        snprintf(err, err_len, "message.%s: %s", key, e);
        *bad = 1;
    }
    return t;
}

campaign_spec *campaign_spec_compile(omni *o, const char *id, const char *json, size_t len,
                                     char *err, size_t err_len)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root || !json_is_object(root)) {
        snprintf(err, err_len, "stored spec is not JSON: %s", je.text);
        json_decref(root);
        return NULL;
    }
    campaign_spec *s = calloc(1, sizeof(*s));
    if (!s) {
        json_decref(root);
        return NULL;
    }
    s->spec = root;
    s->id = strdup(id);
    s->refs = 1;
    const char *type = json_string_value(json_object_get(root, "type"));
    s->type = type && strcmp(type, "message") == 0 ? JOB_MESSAGE : JOB_BROADCAST;
    json_t *chs = json_object_get(root, "channels");
    size_t i;
    json_t *v;
    json_array_foreach(chs, i, v)
    {
        if (s->n_channels < JOB_MAX_CHANNELS && json_is_string(v)) {
            s->channels[s->n_channels] = json_string_value(v);
            s->chans[s->n_channels] = o ? omni_channel(o, json_string_value(v)) : NULL;
            s->n_channels++;
        }
    }
    json_t *msg = json_object_get(root, "message");
    int bad = 0;
    s->text = compile_opt(msg, "text", err, err_len, &bad);
    s->subject = compile_opt(msg, "subject", err, err_len, &bad);
    s->html = compile_opt(msg, "html", err, err_len, &bad);
    json_t *tpl = json_object_get(msg, "template");
    if (json_is_object(tpl)) {
        s->template_name = json_string_value(json_object_get(tpl, "name"));
        s->template_language = json_string_value(json_object_get(tpl, "language"));
        if (!s->template_language)
            s->template_language = "en_US";
        json_t *params = json_object_get(tpl, "params");
        size_t n = json_array_size(params);
        if (n) {
            s->params = calloc(n, sizeof(*s->params));
            json_array_foreach(params, i, v)
            {
                char e[128];
                s->params[i] =
                    tmpl_compile(json_string_value(v) ? json_string_value(v) : "", e, sizeof(e));
                if (!s->params[i]) {
                    snprintf(err, err_len, "message.template.params[%zu]: %s", i, e);
                    bad = 1;
                }
                s->n_params = i + 1;
            }
        }
        json_t *comps = json_object_get(tpl, "components");
        if (comps) {
            char e[200];
            s->components = jtmpl_compile(comps, e, sizeof(e));
            if (!s->components) {
                snprintf(err, err_len, "message.template.components%s", e);
                bad = 1;
            }
        }
    }
    json_t *media = json_object_get(msg, "media");
    if (json_is_object(media)) {
        s->media_type = json_string_value(json_object_get(media, "type"));
        s->media_url = compile_opt(media, "url", err, err_len, &bad);
        s->media_caption = compile_opt(media, "caption", err, err_len, &bad);
        s->media_filename = compile_opt(media, "filename", err, err_len, &bad);
        if (!s->media_type || !s->media_url) {
            snprintf(err, err_len, "message.media: type and url missing");
            bad = 1;
        }
    }
    s->defaults = json_object_get(root, "defaults");
    /* the job's priority: sends per turn on a shared connector */
    json_int_t prio = json_integer_value(json_object_get(root, "priority"));
    s->weight = prio >= 1 && prio <= 100 ? (int)prio : 1;
    for (size_t k = 0; k < JOB_MAX_CHANNELS; k++)
        TAILQ_INIT(&s->cq[k].q);
    double rate = json_number_value(json_object_get(root, "rate_per_s"));
    if (rate > 0) {
        bucket_init(&s->rate, rate, rate < 1 ? 1 : rate, omni_mono_us());
        s->has_rate = 1;
    }
    /* validated by job_parse; a campaign stored before HH:MM was checked
     * strictly (e.g. "-1:00") has no quiet hours rather than never sending */
    json_t *qh = json_object_get(root, "quiet_hours");
    int qs = job_parse_hhmm(json_string_value(json_object_get(qh, "start")));
    int qe = job_parse_hhmm(json_string_value(json_object_get(qh, "end")));
    if (json_is_object(qh) && qs >= 0 && qe >= 0) {
        s->has_quiet = 1;
        s->quiet_start = qs;
        s->quiet_end = qe;
    }
    json_int_t fa = json_integer_value(json_object_get(root, "fallback_after_s"));
    if (fa > 0 && fa <= FALLBACK_AFTER_MAX_S && s->n_channels > 1)
        s->fallback_after_ms = (long long)fa * 1000;
    /* what the connector's pump reads of the campaign (conn.c) */
    for (size_t k = 0; k < JOB_MAX_CHANNELS; k++) {
        s->cq[k].weight = s->weight;
        s->cq[k].rate = s->has_rate ? &s->rate : NULL;
        s->cq[k].stopped = &s->stopped;
    }
    if (bad || s->n_channels == 0) {
        if (!bad)
            snprintf(err, err_len, "stored spec has no channels");
        spec_free(s);
        return NULL;
    }
    return s;
}

void campaign_spec_release(omni *o, campaign_spec *s)
{
    (void)o;
    if (s && --s->refs == 0)
        spec_free(s);
}

static void cache_insert(omni *o, campaign_spec *s)
{
    spec_cache *c = cache_of(o);
    s->refs++; /* the cache's own reference */
    s->next = c->head;
    c->head = s;
    c->n++;
    /* evict the oldest entries beyond the cap (list is newest first) */
    if (c->n > SPEC_CACHE_MAX) {
        campaign_spec **pp = &c->head;
        size_t k = 0;
        while (*pp && k < SPEC_CACHE_MAX) {
            pp = &(*pp)->next;
            k++;
        }
        while (*pp) {
            campaign_spec *victim = *pp;
            *pp = victim->next;
            c->n--;
            campaign_spec_release(o, victim);
        }
    }
}

void campaign_spec_put(omni *o, campaign_spec *s)
{
    cache_insert(o, s);
}

static campaign_spec *cache_find(omni *o, const char *id)
{
    for (campaign_spec *s = cache_of(o)->head; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

void campaign_free(omni *o)
{
    if (!o->campaigns)
        return;
    spec_cache *c = cache_of(o);
    while (c->head) {
        campaign_spec *s = c->head;
        c->head = s->next;
        campaign_spec_release(o, s);
    }
    free(o->campaigns);
    o->campaigns = NULL;
}

typedef struct spec_req {
    omni *o;
    char *id;
    campaign_spec_cb cb;
    void *arg;
} spec_req;

static void spec_loaded(redisReply *r, void *arg)
{
    spec_req *q = arg;
    omni *o = q->o;
    campaign_spec *s = NULL;
    int missing = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        s = cache_find(o, q->id); /* loaded meanwhile by another request */
        if (s) {
            s->refs++;
        } else {
            char err[256];
            s = campaign_spec_compile(o, q->id, r->str, r->len, err, sizeof(err));
            if (s)
                cache_insert(o, s);
            else {
                log_error("campaign %s: %s", q->id, err);
                missing = 1;
            }
        }
    } else if (r && r->type == REDIS_REPLY_NIL) {
        missing = 1;
    }
    q->cb(o, s, missing, q->arg);
    free(q->id);
    free(q);
}

void campaign_spec_get(omni *o, const char *id, campaign_spec_cb cb, void *arg)
{
    campaign_spec *s = cache_find(o, id);
    if (s) {
        s->refs++;
        cb(o, s, 0, arg);
        return;
    }
    spec_req *q = calloc(1, sizeof(*q));
    q->o = o;
    q->id = strdup(id);
    q->cb = cb;
    q->arg = arg;
    char key[KEY_MAX];
    omni_key(o, key, sizeof(key), KEY_CAMPAIGN, id);
    if (store_cmd(o->st, spec_loaded, q, "HGET", key, "spec", NULL) < 0) {
        free(q->id);
        free(q);
        cb(o, NULL, 0, arg);
    }
}

/* ---- intake */

typedef struct intake {
    omni *o;
    char entry[40];
    char id[JOB_ID_MAX + 1];
    char *raw;
    size_t raw_len;
} intake;

static void intake_free(intake *in)
{
    free(in->raw);
    free(in);
}

static int channel_kind(void *ctx, const char *name)
{
    chan *c = omni_channel(ctx, name);
    return c ? c->addr_kind : -1;
}

/* the customer service window its connector instance declares
 * (session_window_s), 0 for none */
static long long channel_window_s(void *ctx, const char *name)
{
    chan *c = omni_channel(ctx, name);
    return c && c->ci && c->ci->conf ? c->ci->conf->session_window_s : 0;
}

static void created(redisReply *r, void *arg)
{
    intake *in = arg;
    omni *o = in->o;
    o->campaigns->busy--;
    if (!r) {
        /* Redis went away: leave the entry pending, it is read again */
        intake_free(in);
        omni_kick(o);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* Redis refused (out of memory, a key of the wrong type, ...): leave
         * the job pending; it is taken up again after claim_idle_ms, and
         * given up (dead-lettered with this error) after
         * STREAM_MAX_DELIVERIES deliveries (queue.c) */
        int n = stream_entry_failed(o, o->k_jobs, in->entry, r->str);
        log_error("campaign %s: create failed (%d time%s here; given up after %d deliveries), "
                  "will retry: %s",
                  in->id, n, n == 1 ? "" : "s", STREAM_MAX_DELIVERIES, r->str);
        intake_free(in);
        return;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
        const char *what = r->element[0]->str ? r->element[0]->str : "";
        if (strcmp(what, "exists") == 0) {
            o->campaigns->counters.jobs_duplicate++;
            log_info("campaign %s: job id seen before, not started again", in->id);
        } else if (strcmp(what, "empty") == 0) {
            o->campaigns->counters.jobs_rejected++;
            omni_dead(o, "jobs", "recipients_list: key is missing, empty or not a list", in->raw,
                      in->raw_len, (const char *const[]){"entry", in->entry, NULL});
        } else {
            o->campaigns->counters.jobs_accepted++;
            long long total = r->elements > 1 ? r->element[1]->integer : 0;
            log_info("campaign %s: %s, %lld recipients", in->id, what, total);
        }
    }
    stream_ack(o, o->k_jobs, in->entry);
    intake_free(in);
    omni_kick(o);
}

static void controlled(omni *o, int ok, const char *state, void *arg)
{
    intake *in = arg;
    o->campaigns->busy--;
    if (state) {
        if (ok) {
            o->campaigns->counters.jobs_accepted++;
            log_info("campaign %s: now %s", in->id, state);
        } else {
            o->campaigns->counters.jobs_rejected++;
            omni_dead(o, "jobs", state, in->raw, in->raw_len,
                      (const char *const[]){"entry", in->entry, NULL});
        }
        stream_ack(o, o->k_jobs, in->entry);
    }
    intake_free(in);
    omni_kick(o);
}

int campaign_conversion(omni *o, const char *id, const job_conversion *cv, const char *via,
                        store_cb cb, void *arg)
{
    char now[24], milli[24];
    snprintf(now, sizeof(now), "%lld", omni_now_ms());
    snprintf(milli, sizeof(milli), "%lld", cv->milli);
    const char *argv[] = {o->cfg->prefix,
                          now,
                          "conversion",
                          id,
                          milli,
                          cv->value,
                          cv->currency,
                          cv->key ? cv->key : "",
                          cv->note ? cv->note : "",
                          via};
    return store_eval(o->st, SCRIPT_INBOUND, cb, arg, 0, 10, argv, NULL);
}

/* a conversion job answered: acknowledged once stored (or found stored
 * before); an unknown conversation is dead-lettered; no Redis or a refusal
 * leaves it pending, read again */
static void converted(redisReply *r, void *arg)
{
    intake *in = arg;
    omni *o = in->o;
    o->campaigns->busy--;
    const char *what = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->str
                           ? r->element[0]->str
                           : NULL;
    if (!r) {
        intake_free(in);
        omni_kick(o);
        return;
    }
    if (!what) {
        int n = stream_entry_failed(o, o->k_jobs, in->entry,
                                    r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        log_error("conversion %s: not stored (%d time%s here), will retry: %s", in->id, n,
                  n == 1 ? "" : "s", r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        intake_free(in);
        return;
    }
    if (!strcmp(what, "missing")) {
        o->campaigns->counters.jobs_rejected++;
        omni_dead(o, "jobs", "unknown_conversation", in->raw, in->raw_len,
                  (const char *const[]){"entry", in->entry, NULL});
    } else if (!strcmp(what, "exists")) {
        o->campaigns->counters.jobs_duplicate++;
        log_info("conversion %s: id seen before, not counted again", in->id);
    } else {
        o->campaigns->counters.jobs_accepted++;
        log_info("conversion %s: stored", in->id);
    }
    stream_ack(o, o->k_jobs, in->entry);
    intake_free(in);
    omni_kick(o);
}

void campaign_handle_job(omni *o, const char *entry_id, const char *raw, size_t len)
{
    const omni_config *cfg = o->cfg;
    job_rules rules = {
        .max_bytes = (size_t)cfg->max_job_bytes,
        .max_inline_recipients = (size_t)cfg->max_inline_recipients,
        .channel_kind = channel_kind,
        .channel_window_s = channel_window_s,
        .ctx = o,
    };
    job j;
    char reason[JOB_REASON_MAX];
    if (job_parse(raw, len, &rules, &j, reason, sizeof(reason)) < 0) {
        o->campaigns->counters.jobs_rejected++;
        log_warn("job %s rejected: %s", entry_id, reason);
        omni_dead(o, "jobs", reason, raw, len, (const char *const[]){"entry", entry_id, NULL});
        stream_ack(o, o->k_jobs, entry_id);
        return;
    }
    intake *in = calloc(1, sizeof(*in));
    in->o = o;
    snprintf(in->entry, sizeof(in->entry), "%s", entry_id);
    snprintf(in->id, sizeof(in->id), "%s", j.id);
    in->raw = malloc(len + 1);
    memcpy(in->raw, raw, len);
    in->raw[len] = '\0';
    in->raw_len = len;
    o->campaigns->busy++;

    if (j.type == JOB_CONVERSION) {
        if (campaign_conversion(o, j.conversion.conversation_id, &j.conversion, "job", converted,
                                in) < 0) {
            o->campaigns->busy--;
            intake_free(in); /* not acked: read again once Redis is back */
        }
        job_free(&j);
        return;
    }
    if (j.type == JOB_PAUSE || j.type == JOB_RESUME || j.type == JOB_CANCEL) {
        const char *action = j.type == JOB_PAUSE    ? "pause"
                             : j.type == JOB_RESUME ? "resume"
                                                    : "cancel";
        campaign_control(o, j.id, action, controlled, in);
        job_free(&j);
        return;
    }

    /* The stored spec is the normalized job without its inline recipients:
     * those go into the campaign's own list. */
    json_t *spec = json_deep_copy(j.spec);
    json_t *rcpts = json_incref(json_object_get(spec, "recipients"));
    json_object_del(spec, "recipients");
    char *spec_s = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);

    char ck[KEY_MAX], rk[KEY_MAX], src[KEY_MAX];
    omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, j.id);
    omni_key(o, rk, sizeof(rk), KEY_RCPT, j.id);
    snprintf(src, sizeof(src), "%s", j.recipients_list ? j.recipients_list : "");
    store_args a = {0};
    store_args_adds(&a, ck);
    store_args_adds(&a, rk);
    store_args_adds(&a, o->k_chunks);
    store_args_adds(&a, src);
    store_args_adds(&a, o->k_sched);
    store_args_adds(&a, spec_s);
    store_args_addll(&a, omni_now_ms());
    char size[48]; /* chunk_size:chunks_ahead (create.lua) */
    snprintf(size, sizeof(size), "%d:%d", cfg->chunk_size, cfg->chunks_ahead);
    store_args_adds(&a, size);
    store_args_addll(&a, j.send_at_ms);
    store_args_adds(&a, j.id);
    store_args_adds(&a, j.type == JOB_MESSAGE ? "message" : "broadcast");
    size_t i;
    json_t *r;
    json_array_foreach(rcpts, i, r)
    {
        char *s = json_dumps(r, JSON_COMPACT);
        store_args_adds(&a, s);
        free(s);
    }
    store_args_finish(&a);
    if (store_eval(o->st, SCRIPT_CREATE, created, in, 5, a.argc, a.argv, a.lens) < 0) {
        o->campaigns->busy--;
        intake_free(in); /* not acked: read again once Redis is back */
    }
    store_args_free(&a);
    json_decref(rcpts);
    free(spec_s);
    job_free(&j);
}

/* ---- control */

typedef struct control_req {
    omni *o;
    campaign_control_cb cb;
    void *arg;
    char id[JOB_ID_MAX + 1];
} control_req;

static void control_done(redisReply *r, void *arg)
{
    control_req *q = arg;
    if (!r) {
        q->cb(q->o, 0, NULL, q->arg);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        int ok = strcmp(r->element[0]->str, "ok") == 0;
        /* this instance stops the campaign's sends at once; the others see
         * the state within their next poll (dispatch.c) */
        if (ok && q->o->campaigns && q->o->campaigns->on_state)
            q->o->campaigns->on_state(q->o, q->id, r->element[1]->str);
        q->cb(q->o, ok, r->element[1]->str, q->arg);
    } else {
        q->cb(q->o, 0, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply", q->arg);
    }
    free(q);
}

void campaign_control(omni *o, const char *id, const char *action, campaign_control_cb cb,
                      void *arg)
{
    control_req *q = calloc(1, sizeof(*q));
    q->o = o;
    q->cb = cb;
    q->arg = arg;
    snprintf(q->id, sizeof(q->id), "%s", id);
    char ck[KEY_MAX], ak[KEY_MAX], mk[KEY_MAX], rk[KEY_MAX];
    omni_key(o, ck, sizeof(ck), KEY_CAMPAIGN, id);
    omni_key(o, ak, sizeof(ak), KEY_ACTIVE, NULL);
    omni_key(o, mk, sizeof(mk), KEY_MSG, id);
    omni_key(o, rk, sizeof(rk), KEY_RCPT, id);
    store_args a = {0};
    const char *keys[] = {ck, o->k_sched, ak, o->k_chunks, o->k_retry, mk, rk};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        store_args_adds(&a, keys[i]);
    store_args_adds(&a, action);
    store_args_addll(&a, omni_now_ms());
    store_args_adds(&a, id);
    store_args_addll(&a, o->cfg->lease_ms);
    /* the address kind of every channel, so that a cancel finds the
     * records of recipients waiting in the retry set */
    for (size_t i = 0; i < o->n_chans; i++) {
        int k = o->chans[i].addr_kind;
        store_args_adds(&a, o->chans[i].name);
        store_args_adds(&a, k == ADDR_PHONE ? "phone" : k == ADDR_EMAIL ? "email" : "any");
    }
    store_args_finish(&a);
    int rc = store_eval(o->st, SCRIPT_CONTROL, control_done, q, 7, a.argc, a.argv, a.lens);
    store_args_free(&a);
    if (rc < 0) {
        free(q);
        cb(o, 0, NULL, arg);
    }
}
