/* omnicast connector ABI: the one header a connector (built in or a .so
 * plugin) compiles against. A connector does no network I/O: it turns a
 * rendered message into a request, a finished transfer into one outcome, and
 * an inbound webhook request into normalized events. Nothing of the daemon's
 * internals leaks in here; the daemon's services reach a connector through
 * the oc_host table handed to init(). */
#ifndef OMNICAST_CONNECTOR_H
#define OMNICAST_CONNECTOR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A plugin built against a different major is refused; a newer minor only
 * appends fields at the end of the structs below (struct_size tells).
 * 1.1: oc_response.request_sent/answered (the daemon classifies transport
 * errors). 1.2: oc_inbound_result.replay_key/replay_ttl_s (a signed inbound
 * request the host accepts once); oc_message's template components and
 * media; oc_host.message_size. The host allocates oc_message and
 * oc_inbound_result: a connector built against 1.2 uses their 1.2 members
 * only when OC_HOST_HAS(host, message_size) says the host is 1.2 or newer
 * (OC_MESSAGE_HAS for oc_message's).
 * 1.3: events OC_EV_OPTOUT/OC_EV_OPTIN and oc_event.payload (the host
 * reads payload only from a connector whose abi_minor is 3 or more);
 * oc_outcome.throttle OC_THROTTLE_RECIPIENT; the outcome kind OC_HALT
 * (appended: a connector built against an older header never returns it;
 * one built against 1.3 may return it to any 1.3 host, and the host treats
 * it from a plugin older than 1.3 as OC_FAILED).
 * 1.4: oc_outcome.recipient_id and oc_outcome.segments (appended; the host
 * clears them before classify, so a connector built against an older
 * header leaves them empty and zero); the event OC_EV_ERROR, a problem the
 * provider reports in a webhook that concerns none of our messages (error:
 * its code and title; kind: where it was reported), counted per instance
 * (omnicast_webhook_errors_total) and stored nowhere; an older host drops
 * it, so a connector logs such a problem itself too. */
#define OC_ABI_MAJOR 1
#define OC_ABI_MINOR 4

/* The symbol a .so plugin exports: `const oc_connector oc_connector_entry`. */
#define OC_ENTRY_SYMBOL "oc_connector_entry"

/* ---- growable byte buffer (owned by whoever holds it; free with oc_buf_free) */

typedef struct oc_buf {
    char *data; /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
} oc_buf;

static inline int oc_buf_reserve(oc_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = (char *)realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static inline int oc_buf_append(oc_buf *b, const void *p, size_t n)
{
    if (oc_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static inline int oc_buf_puts(oc_buf *b, const char *s)
{
    return oc_buf_append(b, s, strlen(s));
}

static inline void oc_buf_reset(oc_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static inline void oc_buf_free(oc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- configuration keys, declared as a table (nginx-style) */

enum {
    OC_KEY_REQUIRED = 1u << 0,
    OC_KEY_SECRET = 1u << 1,     /* may be given as NAME_file; never logged */
    OC_KEY_REPEATABLE = 1u << 2, /* may appear several times (e.g. header) */
    OC_KEY_INT = 1u << 3,        /* must parse as a non-negative integer */
    OC_KEY_URL = 1u << 4,        /* must look like scheme://... */
    /* With OC_KEY_URL, the schemes the key takes (the host checks the
     * scheme and the host part at load and in --check-config). Flag bits
     * only: oc_config_key keeps its layout, a host that predates them sees
     * OC_KEY_URL alone and checks scheme://, a plugin that sets none of
     * them gets that check from any host. */
    OC_KEY_URL_HTTPS = 1u << 5, /* a provider API: https (http:// only to a loopback host) */
    OC_KEY_URL_HTTP = 1u << 6,  /* a web URL: http or https */
    OC_KEY_URL_SMTP = 1u << 7,  /* smtp or smtps */
};

typedef struct oc_config_key {
    const char *name;
    unsigned flags;
    const char *default_value; /* NULL: no default */
    const char *help;          /* one line, used by docs and --help */
} oc_config_key;

/* Read-only view of one [connector.NAME] section, secrets already resolved
 * (NAME_file read, $CREDENTIALS_DIRECTORY honoured). */
typedef struct oc_config {
    void *ctx;
    const char *name; /* the instance name, e.g. "wa_main" */
    /* the value of key, the default if unset, NULL if neither */
    const char *(*get)(void *ctx, const char *key);
    /* the n-th value of a repeatable key, NULL past the end */
    const char *(*get_nth)(void *ctx, const char *key, size_t n);
} oc_config;

/* ---- services the daemon offers a connector */

enum { OC_LOG_ERROR = 0, OC_LOG_WARN = 1, OC_LOG_INFO = 2, OC_LOG_DEBUG = 3 };

/* OC_ESCAPE_HTML: ABI 1.4 (an older host inserts the value as is) */
enum { OC_ESCAPE_NONE = 0, OC_ESCAPE_JSON = 1, OC_ESCAPE_HTML = 2 };

typedef struct oc_message oc_message;

typedef struct oc_host {
    uint32_t struct_size;
    void (*log)(int level, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
    /* Append s (len bytes) to out as the inside of a JSON string. */
    int (*json_escape)(oc_buf *out, const char *s, size_t len);
    /* Render a {{var}} template against a message's variables (recipient
     * vars plus to, channel, campaign, text, subject). Returns 0, or -1 with
     * the missing variable's name in missing. */
    int (*render)(const char *tmpl, const oc_message *msg, int escape, oc_buf *out, char *missing,
                  size_t missing_len);
    /* Parse a Retry-After value (delta seconds or HTTP-date) into ms from
     * now_ms; -1 when absent or unparseable. */
    long (*retry_after_ms)(const char *value, long long now_ms);
    /* ABI 1.2: sizeof(oc_message) in the host, see OC_MESSAGE_HAS */
    uint32_t message_size;
} oc_host;

/* Whether the daemon that loaded this connector offers a host service: a
 * newer minor only appends members to oc_host, so a connector built against
 * this header tests a member newer than the oldest daemon it supports before
 * calling it: `if (OC_HOST_HAS(host, retry_after_ms)) ...`. */
#define OC_HOST_HAS(host, member)                                                                  \
    ((host)->struct_size >= offsetof(oc_host, member) + sizeof((host)->member) &&                  \
     (host)->member != 0)

/* Whether the oc_message a host hands over has a member newer than ABI 1.0
 * (the host allocates it, so a connector built against a newer header asks
 * before it reads one): `if (OC_MESSAGE_HAS(host, media_url) && m->media_url)`. */
#define OC_MESSAGE_HAS(host, member)                                                               \
    (OC_HOST_HAS(host, message_size) &&                                                            \
     (host)->message_size >= offsetof(oc_message, member) + sizeof(((oc_message *)0)->member))

/* ---- outbound: a rendered message in, a request out */

typedef struct oc_message {
    const char *campaign;               /* campaign id */
    const char *message_id;             /* omnicast's unique id of this send */
    const char *channel;                /* channel name, e.g. "whatsapp" */
    const char *to;                     /* normalized address for this channel */
    const char *text;                   /* rendered text body, may be NULL */
    const char *subject;                /* rendered, email; may be NULL */
    const char *html;                   /* rendered, email; may be NULL */
    const char *template_name;          /* WhatsApp approved template, or NULL */
    const char *template_language;      /* e.g. "en_US" */
    const char *const *template_params; /* rendered body parameters */
    size_t n_template_params;
    /* Look up a variable by name (recipient vars first); NULL if absent. */
    const char *(*var)(const oc_message *msg, const char *name, size_t name_len);
    void *var_ctx;
    /* ABI 1.2 (read them only when OC_MESSAGE_HAS says the host has them):
     * the job's WhatsApp template components in the Cloud API's own shape,
     * every string rendered for this recipient, as compact JSON text (an
     * array), or NULL; and one media attachment by URL (rendered), or
     * media_type NULL. */
    const char *template_components;
    const char *media_type; /* "image", "video", "document" or "audio" */
    const char *media_url;
    const char *media_caption;  /* or NULL */
    const char *media_filename; /* a document's, or NULL */
} oc_message;

enum { OC_REQ_HTTP = 0, OC_REQ_SMTP = 1 };

#define OC_MAX_HEADERS 16

/* Filled by build(); every pointer is owned by the request and released by
 * oc_request_free() (the daemon calls it). */
typedef struct oc_request {
    int kind;           /* OC_REQ_HTTP or OC_REQ_SMTP */
    const char *method; /* static string: "POST", "GET" */
    char *url;
    char *headers[OC_MAX_HEADERS]; /* "Name: value" */
    int n_headers;
    oc_buf body;     /* HTTP body, or the whole RFC 5322 message for SMTP */
    char *userpwd;   /* "user:password" for basic auth / SMTP AUTH, or NULL */
    char *mail_from; /* SMTP envelope sender, "<a@b>" */
    char *mail_rcpt; /* SMTP envelope recipient, "<c@d>" */
    int smtp_tls;    /* 0 none, 1 STARTTLS required, 2 implicit */
} oc_request;

static inline int oc_request_header(oc_request *r, const char *name, const char *value)
{
    if (r->n_headers >= OC_MAX_HEADERS)
        return -1;
    size_t n = strlen(name), v = strlen(value);
    char *h = (char *)malloc(n + v + 3);
    if (!h)
        return -1;
    memcpy(h, name, n);
    h[n] = ':';
    h[n + 1] = ' ';
    memcpy(h + n + 2, value, v + 1);
    r->headers[r->n_headers++] = h;
    return 0;
}

static inline void oc_request_free(oc_request *r)
{
    free(r->url);
    for (int i = 0; i < r->n_headers; i++)
        free(r->headers[i]);
    oc_buf_free(&r->body);
    free(r->userpwd);
    free(r->mail_from);
    free(r->mail_rcpt);
    memset(r, 0, sizeof(*r));
}

/* ---- the outcome of one send: exactly one of four
 *
 * OC_HALT (ABI 1.3): the connector can send nothing until someone acts (an
 * expired token, an account locked, unpaid or blocked, missing
 * permissions). The message is not counted failed and never falls back to
 * another channel: the host gives its claim back (it is sent later,
 * once), stops sending through this instance, and resumes it when an
 * operator says so or when a probe send after halt_probe_s succeeds.
 * reason and detail say why, as for OC_FAILED. */

typedef enum { OC_SENT = 0, OC_RETRY = 1, OC_FAILED = 2, OC_HALT = 3 } oc_outcome_kind;

typedef struct oc_outcome {
    oc_outcome_kind kind;
    char provider_id[128]; /* OC_SENT: the provider's message id, may be "" */
    char reason[48];       /* OC_FAILED/OC_RETRY/OC_HALT: stable code, e.g. "invalid_recipient" */
    char detail[256];      /* provider's own text, for people; never a secret */
    long retry_after_ms;   /* OC_RETRY: provider's hint, -1 when none */
    int throttle;          /* OC_RETRY: 1 if the whole connector should slow down */
    /* ABI 1.4 */
    char recipient_id[160]; /* OC_SENT: the provider's own id for the recipient when it
                               differs from the address sent to (WhatsApp's wa_id), else "";
                               in the form the connector's inbound events give as `from`
                               (WhatsApp: "+" and the wa_id's digits), so the host can map
                               it to the address sent to (an alias) */
    int segments;           /* OC_SENT: billable parts of the message (SMS segments), 0 = unknown;
                               build() may set it (the count of the message it built): the host
                               keeps that for the sent outcome when classify leaves it 0 */
} oc_outcome;

/* ABI 1.3: oc_outcome.throttle for an OC_RETRY whose retry_after_ms concerns
 * this recipient only (a per-recipient rate limit): the recipient waits, the
 * connector keeps its pace. 0 with retry_after_ms > 0 still slows the whole
 * connector (the behaviour before 1.3); a 1.2 host treats -1 as 1. */
#define OC_THROTTLE_RECIPIENT (-1)

/* Transport-level errors, already mapped from the transfer library. Since
 * ABI 1.1 the daemon decides what a transport error means (retry when not a
 * byte of the request left, `uncertain` when the request may have reached
 * the provider): classify() is only called for an answer (HTTP: a whole
 * status line and headers; SMTP: the final reply, or the code that refused
 * the message), always with net_error OC_NET_OK. */
enum {
    OC_NET_OK = 0,
    OC_NET_TIMEOUT = 1,  /* connect or total timeout */
    OC_NET_CONNECT = 2,  /* refused, unreachable, DNS */
    OC_NET_RESET = 3,    /* closed or reset mid-transfer, truncated reply */
    OC_NET_PROTOCOL = 4, /* e.g. SMTP command refused; see status */
    OC_NET_OTHER = 5,
};

typedef struct oc_response {
    int net_error;          /* OC_NET_* */
    const char *net_detail; /* short text from the transfer library */
    long status;            /* HTTP status or last SMTP reply code, 0 if none */
    const char *body;       /* response body (NUL-terminated), may be "" */
    size_t body_len;
    const char *retry_after; /* Retry-After header value, or NULL */
    const char *content_type;
    long long now_ms; /* wall clock when the transfer ended (for HTTP-date) */
    /* ABI 1.1: what the transport saw, for the daemon's own decision */
    int request_sent; /* some or all of the request left this process (TLS: handed to it) */
    int answered;     /* a whole answer head (status and headers; SMTP: a refusal) arrived */
} oc_response;

/* ---- inbound: an HTTP request to /webhooks/{instance} */

typedef struct oc_http_request {
    const char *method; /* "GET", "POST" */
    const char *path;   /* decoded path, e.g. "/webhooks/wa_main" */
    const char *query;  /* raw query string without '?', or "" */
    const char *url;    /* the full URL as the provider called it (public_url aware) */
    const char *body;   /* raw body bytes as received (NUL-terminated) */
    size_t body_len;
    const char *(*header)(void *ctx, const char *name); /* case-insensitive */
    void *header_ctx;
} oc_http_request;

/* ABI 1.3: OC_EV_OPTOUT and OC_EV_OPTIN, a contact's own stop/resume that is
 * not a message (a provider's preference notice, a quick-reply payload that
 * means stop): from is the contact, in_reply_to our message it answers when
 * known, kind says where it came from ("user_preferences", "payload"). A host
 * older than 1.3 ignores them. */
typedef enum {
    OC_EV_REPLY = 1,
    OC_EV_STATUS = 2,
    OC_EV_UNSUBSCRIBE = 3,
    OC_EV_OPTOUT = 4,
    OC_EV_OPTIN = 5,
    OC_EV_ERROR = 6,
    /* ABI 1.4: a delivery report for one of our messages: a bounce (state
     * "hard" or "soft", error the status code and diagnostic) or a
     * complaint (state the feedback type, e.g. "abuse"); from the address
     * concerned when the report names it, provider_id our message as for
     * OC_EV_STATUS (or "token:MSGID"), kind the report's source ("dsn",
     * "arf", "ses", "mailgun", ...). An older host drops them. */
    OC_EV_BOUNCE = 7,
    OC_EV_COMPLAINT = 8
} oc_event_type;

typedef struct oc_event {
    oc_event_type type;
    const char *from;        /* REPLY/UNSUBSCRIBE: contact address; STATUS: recipient */
    const char *to;          /* our address (business number, mailbox) */
    const char *text;        /* REPLY: text, or "[image:ID]"-style placeholder */
    const char *kind;        /* REPLY: "text", "button", "image", ... */
    const char *provider_id; /* REPLY: inbound message id; STATUS: our message id */
    const char *in_reply_to; /* REPLY: the provider id of our message quoted */
    const char *state;       /* STATUS: sent|delivered|read|failed; REPLY: another address
                                the contact is known by, in the form of `from`, or NULL:
                                a system notice's new address for the contact (WhatsApp's
                                user_changed_number), or an id given beside `from`
                                (WhatsApp's business-scoped user id); hosts 1.4 and newer
                                map it to `from` (an alias) */
    const char *error;       /* STATUS failed: code and title */
    const char *name;        /* REPLY: contact's profile name, may be NULL */
    long long timestamp;     /* unix seconds from the provider, 0 if none */
    /* ABI 1.3 (the host reads it only from a connector with abi_minor >= 3):
     * REPLY: the machine-readable part of the reply, may be NULL: a quick-reply
     * button's payload, an interactive reply's id, a flow's response_json, a
     * system notice's type (e.g. "user_changed_number");
     * STATUS failed: what the error means to the connector, "KIND:REASON" with
     * KIND failed, retry or halt (e.g. "failed:unreachable_number"); the host
     * halts the instance on "halt:REASON" (a provider that reports an
     * account-level refusal only after accepting the message) */
    const char *payload;
} oc_event;

typedef struct oc_inbound_result {
    int status;               /* HTTP status to answer */
    oc_buf body;              /* body to answer (e.g. the hub.challenge) */
    const char *content_type; /* static string */
    char error[128];          /* stable error code when status >= 400 */
    /* ABI 1.2: for a provider whose signature does not cover the body (it
     * signs a timestamp and a one-time token), the token: the host claims
     * it once per connector instance (Redis SET NX, expiring after
     * replay_ttl_s seconds) before it stores any event of the request, and
     * answers 409 `replayed` without storing anything when it was claimed
     * before, 503 when it cannot tell. "" (the zeroed default): no claim.
     * Printable ASCII without spaces only; replay_ttl_s >= 1 when set. */
    char replay_key[160];
    long replay_ttl_s;
} oc_inbound_result;

/* emit() copies what it needs: the event's strings may be freed on return. */
typedef void (*oc_emit_fn)(void *ctx, const oc_event *ev);

/* ---- the connector descriptor */

typedef struct oc_connector {
    uint16_t abi_major;   /* OC_ABI_MAJOR */
    uint16_t abi_minor;   /* OC_ABI_MINOR */
    uint32_t struct_size; /* sizeof(oc_connector) when built */
    const char *type;     /* "whatsapp", "twilio", ... */
    const char *description;
    const oc_config_key *keys; /* terminated by {NULL}; common keys are the daemon's */

    /* One configured instance. Return 0 and set *inst, or -1 with err. */
    int (*init)(const oc_config *cfg, const oc_host *host, void **inst, char *err, size_t err_len);
    void (*free)(void *inst);

    /* Build the request for msg. Return 0 when req is ready to send; return
     * 1 when the connector finished the message itself (out filled: the
     * outbox does this); return -1 for a message that can never be sent
     * (out filled with OC_FAILED and a reason). */
    int (*build)(void *inst, const oc_message *msg, oc_request *req, oc_outcome *out);

    /* Classify a finished transfer into exactly one outcome. */
    void (*classify)(void *inst, const oc_response *resp, oc_outcome *out);

    /* Inbound webhook; NULL if the connector takes none. Fills res, calls
     * emit for each normalized event. Verifies signatures before parsing. */
    void (*inbound)(void *inst, const oc_http_request *req, oc_inbound_result *res, oc_emit_fn emit,
                    void *emit_ctx);
} oc_connector;

/* Define a connector's descriptor: `OC_CONNECTOR(whatsapp) = { OC_CONNECTOR_INIT, ... };`
 * Built in, it is `oc_connector_whatsapp`; compiled with -DOC_PLUGIN it is the
 * plugin entry symbol, so one source serves both (one registration path). */
#ifdef OC_PLUGIN
#define OC_CONNECTOR(id)                                                                           \
    __attribute__((visibility("default"))) const oc_connector oc_connector_entry
#else
#define OC_CONNECTOR(id) const oc_connector oc_connector_##id
#endif

#define OC_CONNECTOR_INIT                                                                          \
    .abi_major = OC_ABI_MAJOR, .abi_minor = OC_ABI_MINOR, .struct_size = sizeof(oc_connector)

/* Helpers every connector needs; defined inline so plugins need no symbols. */

static inline void oc_outcome_set(oc_outcome *o, oc_outcome_kind kind, const char *reason,
                                  const char *detail)
{
    o->kind = kind;
    o->retry_after_ms = -1;
    o->throttle = 0;
    o->provider_id[0] = '\0';
    o->recipient_id[0] = '\0';
    o->segments = 0;
    o->reason[0] = '\0';
    o->detail[0] = '\0';
    if (reason) {
        strncpy(o->reason, reason, sizeof(o->reason) - 1);
        o->reason[sizeof(o->reason) - 1] = '\0';
    }
    if (detail) {
        size_t n = strlen(detail);
        if (n >= sizeof(o->detail))
            n = sizeof(o->detail) - 1;
        memcpy(o->detail, detail, n);
        o->detail[n] = '\0';
    }
}

/* Answer an inbound request with an error: status and a stable code. */
static inline void oc_inbound_fail(oc_inbound_result *res, int status, const char *code)
{
    res->status = status;
    res->content_type = "application/json";
    strncpy(res->error, code, sizeof(res->error) - 1);
    res->error[sizeof(res->error) - 1] = '\0';
}

#ifdef __cplusplus
}
#endif
#endif
