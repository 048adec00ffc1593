/* Twilio Programmable Messaging connector (SMS): form-encoded Messages API
 * requests out (with the message's SMS segment count), Twilio error codes
 * classified, and the webhook in (inbound SMS, Advanced Opt-Out and status
 * callbacks) checked with X-Twilio-Signature as Twilio's SDKs check it. */
#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hmac.h"
#include "sms_segments.h"
#include "omnicast/connector.h"

#define BODY_MAX 1600
#define PARAMS_MAX 256
#define VALIDITY_MAX 36000 /* Twilio's ValidityPeriod: 1..36000 seconds */

typedef struct tw {
    const oc_host *host;
    char *url;
    char *userpwd;
    char *auth_token;
    EVP_MAC_CTX *mac; /* HMAC-SHA1 keyed with auth_token once */
    char *from, *service, *status_callback, *public_url;
    char validity[8]; /* ValidityPeriod to send, "" for none */
    int smart;        /* SmartEncoded: -1 not sent, 0 false, 1 true */
} tw;

static const oc_config_key tw_keys[] = {
    {"api_base", OC_KEY_URL | OC_KEY_URL_HTTPS, "https://api.twilio.com", "Twilio API base URL"},
    {"account_sid", OC_KEY_REQUIRED, NULL, "account SID (AC...)"},
    {"auth_token", OC_KEY_REQUIRED | OC_KEY_SECRET, NULL,
     "auth token: API auth and webhook signatures"},
    {"from", 0, NULL, "sender number (E.164); or messaging_service_sid"},
    {"messaging_service_sid", 0, NULL, "Messaging Service SID (MG...); or from"},
    {"status_callback", OC_KEY_URL | OC_KEY_URL_HTTP, NULL, "URL Twilio posts delivery status to"},
    {"public_url", OC_KEY_URL | OC_KEY_URL_HTTP, NULL,
     "the public URL Twilio calls for this instance's webhook (signatures)"},
    {"validity_period", OC_KEY_INT, NULL,
     "seconds a message may wait in Twilio's queue (ValidityPeriod, 1..36000)"},
    {"smart_encoded", 0, NULL,
     "true/false: SmartEncoded (Unicode look-alikes sent as GSM-7); unset: the account's"},
    {NULL, 0, NULL, NULL},
};

static char *sdup(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static void tw_free(void *inst)
{
    tw *t = inst;
    if (!t)
        return;
    free(t->url);
    if (t->userpwd)
        OPENSSL_cleanse(t->userpwd, strlen(t->userpwd));
    if (t->auth_token)
        OPENSSL_cleanse(t->auth_token, strlen(t->auth_token));
    free(t->userpwd);
    free(t->auth_token);
    EVP_MAC_CTX_free(t->mac);
    free(t->from);
    free(t->service);
    free(t->status_callback);
    free(t->public_url);
    free(t);
}

static int tw_init(const oc_config *cfg, const oc_host *host, void **inst, char *err,
                   size_t err_len)
{
    const char *base = cfg->get(cfg->ctx, "api_base");
    const char *sid = cfg->get(cfg->ctx, "account_sid");
    const char *tok = cfg->get(cfg->ctx, "auth_token");
    const char *from = cfg->get(cfg->ctx, "from");
    const char *svc = cfg->get(cfg->ctx, "messaging_service_sid");
    if (!sid || !tok || !*sid || !*tok) {
        snprintf(err, err_len, "account_sid and auth_token are required");
        return -1;
    }
    if ((from && *from) == (svc && *svc)) {
        snprintf(err, err_len, "give exactly one of from and messaging_service_sid");
        return -1;
    }
    for (const char *p = sid; *p; p++)
        if (!isalnum((unsigned char)*p)) {
            snprintf(err, err_len, "account_sid must be letters and digits");
            return -1;
        }
    tw *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->host = host;
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    size_t n = bl + strlen(sid) + 64;
    t->url = malloc(n);
    snprintf(t->url, n, "%.*s/2010-04-01/Accounts/%s/Messages.json", (int)bl, base, sid);
    n = strlen(sid) + strlen(tok) + 2;
    t->userpwd = malloc(n);
    snprintf(t->userpwd, n, "%s:%s", sid, tok);
    t->auth_token = strdup(tok);
    if (!(t->mac = oc_hmac_new("SHA1", tok))) {
        snprintf(err, err_len, "HMAC-SHA1 is not available");
        tw_free(t);
        return -1;
    }
    t->from = sdup(from);
    t->service = sdup(svc);
    t->status_callback = sdup(cfg->get(cfg->ctx, "status_callback"));
    t->public_url = sdup(cfg->get(cfg->ctx, "public_url"));
    const char *vp = cfg->get(cfg->ctx, "validity_period");
    if (vp && *vp) {
        char *end;
        long v = strtol(vp, &end, 10);
        if (*end || v < 1 || v > VALIDITY_MAX) {
            snprintf(err, err_len, "validity_period must be 1..%d seconds", VALIDITY_MAX);
            tw_free(t);
            return -1;
        }
        snprintf(t->validity, sizeof(t->validity), "%ld", v);
    }
    const char *se = cfg->get(cfg->ctx, "smart_encoded");
    t->smart = -1;
    if (se && *se) {
        if (!strcmp(se, "true"))
            t->smart = 1;
        else if (!strcmp(se, "false"))
            t->smart = 0;
        else {
            snprintf(err, err_len, "smart_encoded must be true or false");
            tw_free(t);
            return -1;
        }
    }
    *inst = t;
    return 0;
}

/* application/x-www-form-urlencoded: everything but unreserved is %XX */
static void form_add(oc_buf *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    if (b->len)
        oc_buf_append(b, "&", 1);
    oc_buf_puts(b, name);
    oc_buf_append(b, "=", 1);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            oc_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            oc_buf_append(b, e, 3);
        }
    }
}

static int tw_build(void *inst, const oc_message *m, oc_request *req, oc_outcome *out)
{
    tw *t = inst;
    /* MMS: one MediaUrl; the Body is then the caption, or the text */
    const char *media = OC_MESSAGE_HAS(t->host, media_url) && m->media_type ? m->media_url : NULL;
    const char *text = m->text;
    if (media && m->media_caption)
        text = m->media_caption;
    if ((!text || !*text) && !media) {
        oc_outcome_set(out, OC_FAILED, "no_content", "SMS needs text");
        return -1;
    }
    sms_count sc = sms_segments(text ? text : "", text ? strlen(text) : 0, t->smart == 1);
    if (sc.chars > BODY_MAX) {
        oc_outcome_set(out, OC_FAILED, "too_long", "SMS text longer than 1600 characters");
        return -1;
    }
    form_add(&req->body, "To", m->to);
    if (t->service)
        form_add(&req->body, "MessagingServiceSid", t->service);
    else
        form_add(&req->body, "From", t->from);
    if (text && *text)
        form_add(&req->body, "Body", text);
    if (media)
        form_add(&req->body, "MediaUrl", media);
    if (t->status_callback)
        form_add(&req->body, "StatusCallback", t->status_callback);
    if (t->validity[0])
        form_add(&req->body, "ValidityPeriod", t->validity);
    if (t->smart >= 0)
        form_add(&req->body, "SmartEncoded", t->smart ? "true" : "false");
    /* the bill of an SMS: the host keeps it for the sent outcome (an MMS
     * is billed as one message, not in segments: unknown here) */
    out->segments = media ? 0 : sc.segments;
    req->kind = OC_REQ_HTTP;
    req->method = "POST";
    req->url = strdup(t->url);
    req->userpwd = strdup(t->userpwd);
    oc_request_header(req, "Content-Type", "application/x-www-form-urlencoded");
    return 0;
}

/* What a Twilio error code means, for an API answer and for a status
 * callback's ErrorCode alike. kind: OC_FAILED, OC_RETRY (with throttle: the
 * whole connector slows down) or OC_HALT; NULL reason for a code not here. */
typedef struct tw_code {
    long code;
    int kind, throttle;
    const char *reason;
} tw_code;

static const tw_code tw_codes[] = {
    {20429, OC_RETRY, 1, "throttled"},           /* too many requests */
    {21611, OC_RETRY, 1, "queue_full"},          /* the sender's queue is full */
    {30001, OC_RETRY, 1, "queue_full"},          /* queue overflow */
    {21211, OC_FAILED, 0, "invalid_recipient"},  /* invalid To */
    {21614, OC_FAILED, 0, "invalid_recipient"},  /* not a mobile number */
    {21217, OC_FAILED, 0, "invalid_recipient"},  /* phone number does not appear valid */
    {21612, OC_FAILED, 0, "invalid_recipient"},  /* To not reachable by SMS from this From */
    {30003, OC_FAILED, 0, "invalid_recipient"},  /* unreachable destination handset */
    {30005, OC_FAILED, 0, "unreachable_number"}, /* unknown destination handset: suppressed */
    {30006, OC_FAILED, 0, "unreachable_number"}, /* landline or unreachable carrier: suppressed */
    {21610, OC_FAILED, 0, "opted_out"},          /* the recipient replied STOP */
    {21408, OC_FAILED, 0, "policy"},             /* region not enabled */
    {30007, OC_FAILED, 0, "policy"},             /* carrier filtered */
    {20404, OC_FAILED, 0, "auth"},               /* resource not found (account) */
    {20003, OC_HALT, 0, "auth"},                 /* authentication: every send fails */
    {30034, OC_HALT, 0, "unregistered_sender"},  /* unregistered US A2P 10DLC sender */
};

static const tw_code *tw_code_of(long code)
{
    for (size_t i = 0; i < sizeof(tw_codes) / sizeof(tw_codes[0]); i++)
        if (tw_codes[i].code == code)
            return &tw_codes[i];
    return NULL;
}

static void tw_classify(void *inst, const oc_response *resp, oc_outcome *out)
{
    tw *t = inst;
    oc_outcome_set(out, OC_FAILED, "rejected", NULL);
    out->retry_after_ms = t->host->retry_after_ms(resp->retry_after, resp->now_ms);
    json_error_t je;
    json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, &je);
    if (resp->status >= 200 && resp->status < 300) {
        const char *sid = json_string_value(json_object_get(j, "sid"));
        if (sid && *sid) {
            long ra = out->retry_after_ms;
            oc_outcome_set(out, OC_SENT, NULL, NULL);
            out->retry_after_ms = ra;
            snprintf(out->provider_id, sizeof(out->provider_id), "%s", sid);
            /* Twilio's own count (a string in the Message resource) is the
             * bill; without it the host keeps the count build computed */
            json_t *ns = json_object_get(j, "num_segments");
            long segs = json_is_integer(ns)  ? (long)json_integer_value(ns)
                        : json_is_string(ns) ? strtol(json_string_value(ns), NULL, 10)
                                             : 0;
            if (segs > 0 && segs <= 1000)
                out->segments = (int)segs;
        } else {
            /* accepted, though we cannot read its sid: never a failure */
            char d[64];
            snprintf(d, sizeof(d), "HTTP %ld without a sid", resp->status);
            oc_outcome_set(out, OC_SENT, "unreadable_answer", d);
        }
        json_decref(j);
        return;
    }
    long code = json_is_integer(json_object_get(j, "code"))
                    ? (long)json_integer_value(json_object_get(j, "code"))
                    : 0;
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (code)
        snprintf(out->detail, sizeof(out->detail), "code %ld: %s", code, msg ? msg : "");
    else
        snprintf(out->detail, sizeof(out->detail), "HTTP %ld", resp->status);
    const tw_code *c = code ? tw_code_of(code) : NULL;
    if (c) {
        /* the code decides, whatever the HTTP status (a halt code halts) */
        out->kind = (oc_outcome_kind)c->kind;
        out->throttle = c->throttle;
        snprintf(out->reason, sizeof(out->reason), "%s", c->reason);
    } else if (resp->status == 429) {
        out->kind = OC_RETRY;
        out->throttle = 1;
        snprintf(out->reason, sizeof(out->reason), "throttled");
    } else if (resp->status >= 500 || resp->status == 408) {
        out->kind = OC_RETRY;
        snprintf(out->reason, sizeof(out->reason), "http_5xx");
    }
    json_decref(j);
}

/* ---- inbound */

typedef struct param {
    char *name, *value;
} param;

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static char *decode(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            o[k++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n) {
                free(o);
                return NULL;
            }
            int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
            if (a < 0 || b < 0) {
                free(o);
                return NULL;
            }
            o[k++] = (char)(a * 16 + b);
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    return o;
}

/* Decode a form body into params; -1 on malformed input or too many. */
static int form_parse(const char *body, size_t len, param *ps, size_t *n)
{
    *n = 0;
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if (e > p) {
            if (*n == PARAMS_MAX)
                return -1;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            const char *ne = eq ? eq : e;
            ps[*n].name = decode(p, (size_t)(ne - p));
            ps[*n].value = eq ? decode(eq + 1, (size_t)(e - eq - 1)) : strdup("");
            if (!ps[*n].name || !ps[*n].value) {
                free(ps[*n].name);
                free(ps[*n].value);
                return -1;
            }
            (*n)++;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

/* Twilio's SDKs sort the parameters by name, then by value (a name may
 * repeat); bytewise, which is code point order for UTF-8 */
static int by_name_value(const void *a, const void *b)
{
    const param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static const char *get(const param *ps, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ps[i].name, name))
            return ps[i].value;
    return NULL;
}

/* The value of name in a raw query string (decoded), malloc'd; NULL when absent */
static char *query_get(const char *q, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t l = amp ? (size_t)(amp - p) : strlen(p);
        if (l > nl && !strncmp(p, name, nl) && p[nl] == '=')
            return decode(p + nl + 1, l - nl - 1);
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* The URLs Twilio may have signed for url: as given, and with the
 * scheme's default port (https 443, http 80) removed when it is there or
 * added when no port is (Twilio's SDKs accept both). Returns how many. */
static int url_variants(const char *url, oc_buf v[2])
{
    memset(v, 0, 2 * sizeof(*v));
    oc_buf_puts(&v[0], url);
    const char *port = NULL;
    if (!strncasecmp(url, "https://", 8))
        port = "443";
    else if (!strncasecmp(url, "http://", 7))
        port = "80";
    if (!port)
        return 1;
    const char *host = strstr(url, "://") + 3;
    size_t al = strcspn(host, "/?#");
    const char *colon = NULL;
    for (const char *p = host; p < host + al; p++)
        if (*p == ':')
            colon = p;
        else if (*p == ']' || *p == '@')
            colon = NULL; /* an IPv6 literal's or user info's colons are no port */
    if (colon) {
        size_t pl = (size_t)(host + al - colon - 1);
        if (pl != strlen(port) || strncmp(colon + 1, port, pl))
            return 1; /* another port: Twilio called it with that port */
        oc_buf_append(&v[1], url, (size_t)(colon - url));
        oc_buf_puts(&v[1], host + al);
    } else {
        oc_buf_append(&v[1], url, (size_t)(host + al - url));
        oc_buf_puts(&v[1], ":");
        oc_buf_puts(&v[1], port);
        oc_buf_puts(&v[1], host + al);
    }
    return 2;
}

/* base64 HMAC-SHA1 of url followed by the sorted parameters, compared in
 * constant time with sig */
static int signed_as(tw *t, const char *url, const param *sorted, size_t n, const char *sig)
{
    oc_buf data = {0};
    oc_buf_puts(&data, url);
    for (size_t i = 0; i < n; i++) {
        oc_buf_puts(&data, sorted[i].name);
        oc_buf_puts(&data, sorted[i].value);
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t ml = oc_hmac(t->mac, data.data ? data.data : "", data.len, mac);
    oc_buf_free(&data);
    if (ml != 20)
        return 0;
    unsigned char b64[64];
    int bl = EVP_EncodeBlock(b64, mac, (int)ml);
    return bl > 0 && strlen(sig) == (size_t)bl && CRYPTO_memcmp(b64, sig, (size_t)bl) == 0;
}

/* X-Twilio-Signature as Twilio's SDKs validate it: the public URL (with
 * the request's query), then, for a form body, every parameter name and
 * value sorted by name then value; for any other body (JSON) the query
 * carries bodySHA256, the hex SHA-256 of the body, and no parameters are
 * appended. Tried with and without the default port. */
static int signature_ok(tw *t, const oc_http_request *req, const param *ps, size_t n, int json)
{
    const char *sig = req->header(req->header_ctx, "X-Twilio-Signature");
    if (!sig || !t->public_url)
        return 0;
    if (json) {
        char *want = query_get(req->query, "bodySHA256");
        unsigned char h[32];
        char hex[65];
        unsigned hl = 0;
        int ok = want && strlen(want) == 64 &&
                 EVP_Digest(req->body, req->body_len, h, &hl, EVP_sha256(), NULL) && hl == 32;
        if (ok) {
            oc_hex(h, 32, hex);
            for (char *p = want; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            ok = CRYPTO_memcmp(hex, want, 64) == 0;
        }
        free(want);
        if (!ok)
            return 0;
        n = 0;
    }
    oc_buf url = {0};
    oc_buf_puts(&url, t->public_url);
    if (req->query && *req->query) {
        oc_buf_puts(&url, strchr(t->public_url, '?') ? "&" : "?");
        oc_buf_puts(&url, req->query);
    }
    param *sorted = malloc(sizeof(*sorted) * (n ? n : 1));
    if (n)
        memcpy(sorted, ps, sizeof(*sorted) * n);
    qsort(sorted, n, sizeof(*sorted), by_name_value);
    oc_buf v[2];
    int nv = url_variants(url.data, v), ok = 0;
    for (int i = 0; i < nv; i++)
        ok |= signed_as(t, v[i].data, sorted, n, sig);
    for (int i = 0; i < 2; i++)
        oc_buf_free(&v[i]);
    oc_buf_free(&url);
    free(sorted);
    return ok;
}

/* A JSON body's top-level strings and integers as parameters (a webhook
 * Twilio sends as JSON carries the same names as its form posts) */
static int json_params(const char *body, size_t len, param *ps, size_t *n)
{
    *n = 0;
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        char num[32];
        const char *s = json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            s = num;
        }
        if (!s)
            continue;
        if (*n == PARAMS_MAX) {
            json_decref(j);
            return -1;
        }
        ps[*n].name = strdup(k);
        ps[*n].value = strdup(s);
        (*n)++;
    }
    json_decref(j);
    return 0;
}

/* a status callback's ErrorCode: digits only (1..9 of them), else none */
static const char *error_code(const char *s)
{
    size_t l = s ? strlen(s) : 0;
    if (!l || l > 9 || strspn(s, "0123456789") != l)
        return NULL;
    return s;
}

static const char *status_state(const char *s)
{
    if (!strcmp(s, "sent"))
        return "sent";
    if (!strcmp(s, "delivered"))
        return "delivered";
    if (!strcmp(s, "read"))
        return "read";
    if (!strcmp(s, "undelivered") || !strcmp(s, "failed"))
        return "failed";
    return NULL; /* queued, accepted, sending, scheduled, canceled: nothing to record */
}

/* Advanced Opt-Out's OptOutType: Twilio matched the message against the
 * sender's opt-out, opt-in or help keywords (in any language it was set
 * up with). 0 when absent or unknown: a plain message. */
enum { OPT_NONE, OPT_STOP, OPT_START, OPT_HELP };

static int opt_out_type(const char *v)
{
    if (!v)
        return OPT_NONE;
    return !strcasecmp(v, "STOP")    ? OPT_STOP
           : !strcasecmp(v, "START") ? OPT_START
           : !strcasecmp(v, "HELP")  ? OPT_HELP
                                     : OPT_NONE;
}

static void emit_message(const param *ps, size_t n, oc_emit_fn emit, void *ctx)
{
    const char *sid = get(ps, n, "MessageSid");
    const char *from = get(ps, n, "From"), *to = get(ps, n, "To");
    int opt = opt_out_type(get(ps, n, "OptOutType"));
    if (opt == OPT_HELP)
        return; /* Twilio answered it with the help text: not a reply */
    if (opt == OPT_STOP || opt == OPT_START) {
        oc_event ev = {.type = opt == OPT_STOP ? OC_EV_OPTOUT : OC_EV_OPTIN,
                       .from = from,
                       .to = to,
                       .text = get(ps, n, "Body"),
                       .kind = "advanced_opt_out",
                       .provider_id = sid};
        emit(ctx, &ev);
        return;
    }
    oc_buf text = {0};
    oc_buf_puts(&text, get(ps, n, "Body"));
    int media = atoi(get(ps, n, "NumMedia") ? get(ps, n, "NumMedia") : "0");
    for (int i = 0; i < media && i < 10; i++) {
        char k[16];
        snprintf(k, sizeof(k), "MediaUrl%d", i);
        const char *u = get(ps, n, k);
        if (u) {
            oc_buf_puts(&text, text.len ? " [media:" : "[media:");
            oc_buf_puts(&text, u);
            oc_buf_puts(&text, "]");
        }
    }
    oc_event ev = {.type = OC_EV_REPLY,
                   .from = from,
                   .to = to,
                   .text = text.data ? text.data : "",
                   .kind = media > 0 ? "mms" : "text",
                   .provider_id = sid};
    emit(ctx, &ev);
    oc_buf_free(&text);
}

static void tw_inbound(void *inst, const oc_http_request *req, oc_inbound_result *res,
                       oc_emit_fn emit, void *ctx)
{
    tw *t = inst;
    if (strcmp(req->method, "POST")) {
        oc_inbound_fail(res, 405, "method_not_allowed");
        return;
    }
    param ps[PARAMS_MAX];
    size_t n = 0;
    /* a JSON body is signed through bodySHA256 in the query */
    char *bh = query_get(req->query, "bodySHA256");
    int json = bh != NULL;
    free(bh);
    int parsed = json ? json_params(req->body, req->body_len, ps, &n)
                      : form_parse(req->body, req->body_len, ps, &n);
    if (parsed < 0) {
        for (size_t i = 0; i < n; i++) {
            free(ps[i].name);
            free(ps[i].value);
        }
        oc_inbound_fail(res, 400, "bad_payload");
        return;
    }
    if (!signature_ok(t, req, ps, n, json)) {
        oc_inbound_fail(res, 403, "bad_signature");
    } else {
        const char *sid = get(ps, n, "MessageSid");
        const char *status = get(ps, n, "MessageStatus");
        if (status) {
            const char *st = status_state(status);
            if (st && sid) {
                /* ErrorCode as a number, and what it means (the send's
                 * mapping) in payload, "KIND:REASON": e.g.
                 * "failed:unreachable_number", "halt:unregistered_sender" */
                const char *ec = error_code(get(ps, n, "ErrorCode"));
                const tw_code *c = ec ? tw_code_of(atol(ec)) : NULL;
                char meaning[64] = "";
                if (c)
                    snprintf(meaning, sizeof(meaning), "%s:%s",
                             c->kind == OC_HALT    ? "halt"
                             : c->kind == OC_RETRY ? "retry"
                                                   : "failed",
                             c->reason);
                oc_event ev = {.type = OC_EV_STATUS,
                               .from = get(ps, n, "To"),
                               .to = get(ps, n, "From"),
                               .provider_id = sid,
                               .state = st,
                               .error = ec,
                               .payload = c ? meaning : NULL};
                emit(ctx, &ev);
            }
        } else if (get(ps, n, "From") && get(ps, n, "Body")) {
            emit_message(ps, n, emit, ctx);
        }
        res->status = 200;
        res->content_type = "text/xml";
        oc_buf_puts(&res->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>");
    }
    for (size_t i = 0; i < n; i++) {
        free(ps[i].name);
        free(ps[i].value);
    }
}

OC_CONNECTOR(twilio) = {
    OC_CONNECTOR_INIT,
    .type = "twilio",
    .description = "Twilio Programmable Messaging (SMS): Messages API; inbound SMS and status",
    .keys = tw_keys,
    .init = tw_init,
    .free = tw_free,
    .build = tw_build,
    .classify = tw_classify,
    .inbound = tw_inbound,
};
