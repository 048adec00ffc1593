/* The job contract with other services: parse and validate one job (the
 * JSON in field `job` of an omni:jobs entry, or an API request body) into a
 * normalized spec, or a reason a person can act on. Pure logic. */
#ifndef OMNI_JOB_H
#define OMNI_JOB_H

#include <jansson.h>
#include <stddef.h>

#define JOB_ID_MAX 128 /* [A-Za-z0-9._-]{1,128}; ':' only in ids of old campaigns */
#define JOB_MAX_CHANNELS 8
#define JOB_RATE_MIN 0.01 /* rate_per_s below this is refused */
#define JOB_REASON_MAX 256
#define FALLBACK_AFTER_MAX_S 604800 /* fallback_after_s: at most 7 days */

enum { JOB_BROADCAST = 1, JOB_MESSAGE = 2, JOB_PAUSE = 3, JOB_RESUME = 4, JOB_CANCEL = 5 };
/* a conversion reported back on a conversation (not a campaign job) */
enum { JOB_CONVERSION = 6 };

#define JOB_CONTACT_ID_MAX 128    /* a recipient's contact_id: [A-Za-z0-9._:@+-]{1,128} */
#define CONVERSION_VALUE_MAX 1e12 /* a conversion's value: 0 to 10^12 currency units */
#define CONVERSION_NOTE_MAX 1024  /* bytes of a conversion's note */

/* A conversion (POST /v1/conversations/{id}/conversion, or a job of type
 * conversion): its value exactly, in thousandths of the currency unit. */
typedef struct job_conversion {
    const char *conversation_id; /* borrowed; NULL from the API (the path names it) */
    const char *key;             /* borrowed: the idempotency id, or NULL */
    const char *note;            /* borrowed, or NULL */
    long long milli;             /* value * 1000, exact */
    char currency[4];            /* ISO 4217: three upper-case letters */
    char value[32];              /* the value as decimal text, at least two decimals: "12.50" */
} job_conversion;

typedef struct job_rules {
    size_t max_bytes;             /* raw job size cap (default 1 MiB) */
    size_t max_inline_recipients; /* default 10,000 */
    /* Address kind (ADDR_*) a channel expects, or -1 if the channel is not
     * configured. NULL: every channel is known and ADDR_ANY. */
    int (*channel_kind)(void *ctx, const char *channel);
    /* The customer service window of a channel's connector in seconds (its
     * session_window_s: whatsapp 86400), 0 for none. A broadcast on a
     * channel with a window needs a template. NULL: no channel has one. */
    long long (*channel_window_s)(void *ctx, const char *channel);
    void *ctx;
} job_rules;

typedef struct job {
    json_t *spec;   /* owned: the normalized job (see below) */
    int type;       /* JOB_* */
    const char *id; /* borrowed from spec: campaign id (or target id of control jobs) */
    const char *channels[JOB_MAX_CHANNELS]; /* borrowed from spec, fallback order */
    size_t n_channels;
    size_t n_inline;             /* number of inline recipients */
    const char *recipients_list; /* borrowed, or NULL */
    long long send_at_ms;        /* 0 = now */
    double rate_per_s;           /* 0 = no per-campaign cap */
    job_conversion conversion;   /* JOB_CONVERSION: its fields (borrowed from spec) */
} job;

/* Parse and validate. On success returns 0 and fills out (job_free it).
 * The normalized spec always has "channels" (an array, "channel" folded in),
 * "type", "id", "message", and either "recipients" (inline, each with a
 * normalized "to" object per channel: {"to": {"sms": "+1555..."}, "vars":
 * {...}}) or "recipients_list". On failure returns -1 and writes a precise
 * reason into reason, e.g. "recipients[17].to: not an E.164 number". */
int job_parse(const char *raw, size_t len, const job_rules *rules, job *out, char *reason,
              size_t reason_len);
void job_free(job *j);

/* One recipient (an element of recipients / a recipients_list entry, raw
 * JSON or already a json_t) resolved for a channel: the normalized address
 * into addr (ADDR_MAX bytes). "to" may be a string (used for every channel)
 * or an object keyed by channel. Returns 0; -1 with reason if this
 * recipient has no valid address for the channel. */
int job_recipient_address(const json_t *recipient, const char *channel, int kind, char *addr,
                          size_t addr_len, char *reason, size_t reason_len);

/* What a message sends on a channel with a customer service window
 * (window_ms > 0) to a contact whose last inbound message arrived at
 * last_inbound_ms (0: never): JOB_SEND_FREE_FORM (its text or media: the
 * contact is inside the window, or the channel has no window),
 * JOB_SEND_TEMPLATE (its template: it has one, and the contact is outside
 * the window or the message has nothing else), or JOB_OUTSIDE_WINDOW (only
 * free-form content, the contact outside the window: nothing is sent). */
enum { JOB_OUTSIDE_WINDOW = -1, JOB_SEND_FREE_FORM = 1, JOB_SEND_TEMPLATE = 2 };
int job_window_choice(int has_free_form, int has_template, long long window_ms,
                      long long last_inbound_ms, long long now_ms);

/* Validate a recipient object (list entries are validated when read). */
int job_recipient_check(const json_t *recipient, const job_rules *rules,
                        const char *const *channels, size_t n_channels, char *reason,
                        size_t reason_len);

/* Is s (n bytes) a well-formed id, [A-Za-z0-9._:-]{1,JOB_ID_MAX}? (':' is
 * accepted here, for looking up campaigns created before new broadcast and
 * message jobs were refused one with ':'; job_parse refuses it there.) */
int job_valid_id(const char *s, size_t n);

/* Is s (n bytes) a well-formed contact_id, [A-Za-z0-9._:@+-]{1,JOB_CONTACT_ID_MAX}? */
int job_valid_contact_id(const char *s, size_t n);

/* Check a conversion: the body of POST /v1/conversations/{id}/conversion
 * (is_job 0: keys value, currency, id?, note?) or a conversion job (is_job
 * 1: also type, conversation_id; id required). value: a number from 0 to
 * CONVERSION_VALUE_MAX with at most three decimals; currency: three
 * upper-case letters. Fills out (strings borrowed from o). Returns 0, or -1
 * with a reason naming the field. */
int job_conversion_check(const json_t *o, int is_job, job_conversion *out, char *reason,
                         size_t reason_len);

/* Thousandths of a currency unit as decimal text with two or three
 * decimals: 12500 -> "12.50", 12345 -> "12.345", 0 -> "0.00". */
void job_format_milli(long long milli, char *buf, size_t len);

/* Parse an ISO 8601 UTC/offset timestamp ("2026-11-27T09:00:00Z",
 * "2026-11-27T10:00:00+01:00", optional ".fff") to unix ms; -1 if invalid:
 * every field has exactly its digits (no signs or spaces), is in range
 * (the day within its month), and the year is 1970 to 9999. */
long long job_parse_time_ms(const char *s);

/* Parse a quiet-hours time, exactly "HH:MM" (two digits each, 00:00 to
 * 23:59), to the minute of the day; -1 if invalid. */
int job_parse_hhmm(const char *s);

#endif
