/* Campaigns: a validated job becomes omni:campaign:{id} (spec, state,
 * counters) plus its chunks, exactly once per id; the dispatcher reads a
 * campaign's spec through a small cache of compiled templates. Above the
 * intake (queue.c hands it jobs through the handler main.c registers),
 * below dispatch: it includes neither. */
#ifndef OMNI_CAMPAIGN_H
#define OMNI_CAMPAIGN_H

#include <jansson.h>

#include "job.h"
#include "omni.h"
#include "ratelimit.h"
#include "jsontmpl.h"
#include "template.h"

typedef struct campaign_spec {
    char *id;
    int refs;
    int stopped;       /* dispatch: 1 paused, 2 cancelled: nothing of it goes on the wire */
    unsigned poll_gen; /* dispatch: the state poll that last asked about it */
    int weight;        /* dispatch: sends per turn on a connector (the job's priority) */
    size_t loaded;     /* dispatch: its chunks with recipients loaded in memory */
    camp_queue cq[JOB_MAX_CHANNELS]; /* dispatch: its waiting recipients, per channel */
    int type;                        /* JOB_BROADCAST or JOB_MESSAGE */
    json_t *spec;                    /* owned */
    size_t n_channels;
    const char *channels[JOB_MAX_CHANNELS]; /* borrowed from spec */
    chan *chans[JOB_MAX_CHANNELS];          /* NULL when not configured (any more) */
    tmpl *text, *subject, *html;
    const char *template_name, *template_language;
    tmpl **params;
    size_t n_params;
    jtmpl *components;      /* message.template.components, or NULL */
    const char *media_type; /* message.media.type (borrowed), or NULL */
    tmpl *media_url, *media_caption, *media_filename;
    json_t *defaults; /* borrowed from spec, may be NULL */
    bucket rate;      /* the job's rate_per_s, per instance */
    int has_rate;
    int has_quiet;               /* quiet_hours given */
    int quiet_start, quiet_end;  /* minutes of the day, recipient's local time */
    long long fallback_after_ms; /* fallback_after_s in ms; 0: not watched */
    struct campaign_spec *next;
} campaign_spec;

/* A campaign's state changed by a control job here (paused, running,
 * cancelled): main.c points this at dispatch_campaign_state. */
typedef void (*campaign_state_fn)(omni *o, const char *campaign, const char *state);

typedef struct campaign_counters {
    uint64_t jobs_accepted, jobs_rejected, jobs_duplicate;
} campaign_counters;

int campaign_init(omni *o, campaign_state_fn on_state);
void campaign_free(omni *o); /* the counters and the spec cache */
/* The intake's on_job: validate, dead-letter what does not validate,
 * create the campaign or apply the control job; the entry is acked when
 * that is done (stream_ack), left pending when Redis is away or refuses. */
void campaign_handle_job(omni *o, const char *entry_id, const char *raw, size_t len);
/* Jobs being created or applied (not acked yet). */
int campaign_busy(omni *o);
/* The intake's can_take for jobs: not too many jobs busy. */
int campaign_can_take(omni *o);
const campaign_counters *campaign_counters_of(omni *o);

/* spec is NULL when the campaign does not exist (missing = 1) or Redis is
 * unavailable (missing = 0); otherwise the caller holds a reference. */
typedef void (*campaign_spec_cb)(omni *o, campaign_spec *spec, int missing, void *arg);
void campaign_spec_get(omni *o, const char *id, campaign_spec_cb cb, void *arg);
void campaign_spec_release(omni *o, campaign_spec *s);
/* Put a compiled spec in the cache, which takes its own reference (the
 * loader; tests). */
void campaign_spec_put(omni *o, campaign_spec *s);
/* Build a spec from its JSON (exposed for tests); NULL with err. */
campaign_spec *campaign_spec_compile(omni *o, const char *id, const char *json, size_t len,
                                     char *err, size_t err_len);

/* Control a campaign (pause|resume|cancel) through the control script. */
typedef void (*campaign_control_cb)(omni *o, int ok, const char *state, void *arg);
void campaign_control(omni *o, const char *id, const char *action, campaign_control_cb cb,
                      void *arg);

/* Report a conversion on conversation id (inbound.lua, kind conversion;
 * a job of type conversion or POST /v1/conversations/{id}/conversion): cb
 * gets the script's reply: ["ok", RECORD] (stored now), ["exists", RECORD]
 * (its idempotency id was used before: nothing counted), ["missing"] (no
 * such conversation), NULL (no Redis) or an error reply. RECORD is the
 * stored JSON {conversation_id, id?, value, currency, note?, campaign?,
 * counted, converted, via, at}. via: "api" or "job". Returns 0, or -1 when
 * it could not be sent (cb is not called). */
int campaign_conversion(omni *o, const char *id, const job_conversion *cv, const char *via,
                        store_cb cb, void *arg);

#endif
