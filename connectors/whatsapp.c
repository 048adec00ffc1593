/* WhatsApp Cloud API connector: text and approved template messages out,
 * Graph API error codes classified into sent / retry / failed, and the
 * webhook in (verification handshake, X-Hub-Signature-256, messages and
 * statuses). No I/O here: requests out, outcomes and events back. */
#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hmac.h"
#include "omnicast/connector.h"

#define TEXT_MAX 4096    /* characters, the Cloud API's limit for text bodies */
#define CAPTION_MAX 1024 /* characters, for a media caption */
#define EVENTS_MAX 1000
#define OPTOUT_PAYLOADS_MAX 16

typedef struct wa {
    const oc_host *host;
    char *url;
    char *auth; /* "Bearer ..." */
    char *app_secret;
    EVP_MAC_CTX *mac; /* HMAC-SHA256 keyed with app_secret once, re-initialized per request */
    char *verify_token;
    int preview_url; /* preview_url: text messages ask for a link preview */
    /* optout_payloads: quick-reply payloads (and interactive reply ids) that mean stop */
    char *optout[OPTOUT_PAYLOADS_MAX];
    size_t n_optout;
    unsigned long long n_value_errors; /* value.errors seen in webhooks, for the log */
    oc_buf body;
} wa;

static const oc_config_key wa_keys[] = {
    {"api_base", OC_KEY_URL | OC_KEY_URL_HTTPS, "https://graph.facebook.com", "Graph API base URL"},
    {"api_version", 0, "v21.0", "Graph API version"},
    {"phone_number_id", OC_KEY_REQUIRED, NULL, "the business phone number's id"},
    {"access_token", OC_KEY_REQUIRED | OC_KEY_SECRET, NULL, "system user access token"},
    {"app_secret", OC_KEY_SECRET, NULL, "app secret: verifies X-Hub-Signature-256 on webhooks"},
    {"verify_token", OC_KEY_SECRET, NULL, "token for the webhook verification handshake"},
    /* a common key with this type's own default (config.c applies it) */
    {"rate_per_s", 0, "80", "messages per second: a new number's Cloud API throughput"},
    {"session_window_s", 0, "86400",
     "the customer service window: free-form messages reach only contacts who wrote within "
     "the last 24 hours"},
    {"preview_url", 0, "false", "true: text messages ask WhatsApp for a link preview"},
    {"optout_payloads", 0, NULL,
     "comma-separated quick-reply payloads or interactive reply ids that mean stop"},
    {NULL, 0, NULL, NULL},
};

static char *dupf(const char *a, const char *b, const char *c, const char *d, const char *e)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + strlen(d) + strlen(e) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s%s%s", a, b, c, d, e);
    return s;
}

static void wa_free(void *inst);

static int wa_init(const oc_config *cfg, const oc_host *host, void **inst, char *err,
                   size_t err_len)
{
    const char *base = cfg->get(cfg->ctx, "api_base");
    const char *ver = cfg->get(cfg->ctx, "api_version");
    const char *pnid = cfg->get(cfg->ctx, "phone_number_id");
    const char *tok = cfg->get(cfg->ctx, "access_token");
    if (!pnid || !tok || !*pnid || !*tok) {
        snprintf(err, err_len, "phone_number_id and access_token are required");
        return -1;
    }
    for (const char *p = pnid; *p; p++)
        if (!isdigit((unsigned char)*p)) {
            snprintf(err, err_len, "phone_number_id must be digits");
            return -1;
        }
    for (const char *p = tok; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == 0x7f) {
            snprintf(err, err_len, "access_token contains spaces or control characters");
            return -1;
        }
    wa *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    w->host = host;
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    char b[1024];
    snprintf(b, sizeof(b), "%.*s", (int)bl, base);
    w->url = dupf(b, "/", ver, "/", pnid);
    char *u = dupf(w->url, "/messages", "", "", "");
    free(w->url);
    w->url = u;
    w->auth = dupf("Bearer ", tok, "", "", "");
    const char *s = cfg->get(cfg->ctx, "app_secret");
    w->app_secret = s ? strdup(s) : NULL;
    if (w->app_secret && !(w->mac = oc_hmac_new("SHA256", w->app_secret))) {
        snprintf(err, err_len, "HMAC-SHA256 is not available");
        wa_free(w);
        return -1;
    }
    s = cfg->get(cfg->ctx, "verify_token");
    w->verify_token = s ? strdup(s) : NULL;
    s = cfg->get(cfg->ctx, "preview_url");
    if (s && !strcmp(s, "true")) {
        w->preview_url = 1;
    } else if (s && strcmp(s, "false")) {
        snprintf(err, err_len, "preview_url must be true or false");
        wa_free(w);
        return -1;
    }
    s = cfg->get(cfg->ctx, "optout_payloads");
    for (const char *p = s; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t && p[t - 1] == ' ')
            t--;
        if (t) {
            if (w->n_optout == OPTOUT_PAYLOADS_MAX || t > 256) {
                snprintf(err, err_len, "optout_payloads: at most %d payloads of 256 bytes",
                         OPTOUT_PAYLOADS_MAX);
                wa_free(w);
                return -1;
            }
            w->optout[w->n_optout] = strndup(p, t);
            if (!w->optout[w->n_optout]) {
                wa_free(w);
                return -1;
            }
            w->n_optout++;
        }
        p += n;
    }
    *inst = w;
    return 0;
}

static void wa_free(void *inst)
{
    wa *w = inst;
    if (!w)
        return;
    free(w->url);
    if (w->auth)
        OPENSSL_cleanse(w->auth, strlen(w->auth));
    free(w->auth);
    if (w->app_secret)
        OPENSSL_cleanse(w->app_secret, strlen(w->app_secret));
    free(w->app_secret);
    EVP_MAC_CTX_free(w->mac);
    free(w->verify_token);
    for (size_t i = 0; i < w->n_optout; i++)
        free(w->optout[i]);
    oc_buf_free(&w->body);
    free(w);
}

/* characters, not bytes: the Cloud API's limits count characters */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void str(wa *w, oc_buf *b, const char *s)
{
    oc_buf_puts(b, "\"");
    w->host->json_escape(b, s, strlen(s));
    oc_buf_puts(b, "\"");
}

static int wa_build(void *inst, const oc_message *m, oc_request *req, oc_outcome *out)
{
    wa *w = inst;
    const char *to = m->to[0] == '+' ? m->to + 1 : m->to;
    oc_buf *b = &req->body;
    /* one allocation for the usual body instead of a few doublings */
    oc_buf_reserve(b, 160 + (m->text ? strlen(m->text) * 2 : 256));
    oc_buf_puts(b, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":");
    str(w, b, to);
    if (m->template_name) {
        oc_buf_puts(b, ",\"type\":\"template\",\"template\":{\"name\":");
        str(w, b, m->template_name);
        oc_buf_puts(b, ",\"language\":{\"code\":");
        str(w, b, m->template_language ? m->template_language : "en_US");
        oc_buf_puts(b, "}");
        /* the job's components, rendered by the host as a JSON array */
        const char *comps =
            OC_MESSAGE_HAS(w->host, template_components) ? m->template_components : NULL;
        if (comps && comps[0] != '[') {
            oc_outcome_set(out, OC_FAILED, "template_error", "components are not a JSON array");
            return -1;
        }
        int more = comps && comps[1] != ']';
        if (m->n_template_params) {
            /* the short form: positional body text, before the components */
            oc_buf_puts(b, ",\"components\":[{\"type\":\"body\",\"parameters\":[");
            for (size_t i = 0; i < m->n_template_params; i++) {
                oc_buf_puts(b,
                            i ? ",{\"type\":\"text\",\"text\":" : "{\"type\":\"text\",\"text\":");
                str(w, b, m->template_params[i]);
                oc_buf_puts(b, "}");
            }
            oc_buf_puts(b, "]}");
            if (more) {
                oc_buf_puts(b, ",");
                oc_buf_puts(b, comps + 1);
            } else {
                oc_buf_puts(b, "]");
            }
        } else if (comps) {
            oc_buf_puts(b, ",\"components\":");
            oc_buf_puts(b, comps);
        }
        oc_buf_puts(b, "}}");
    } else if (OC_MESSAGE_HAS(w->host, media_filename) && m->media_type && m->media_url) {
        /* a media message: {"type":"image","image":{"link":...,"caption":...}}; the text, if
         * any, is the caption when none is given (audio has none) */
        const char *t = m->media_type;
        if (strcmp(t, "image") && strcmp(t, "video") && strcmp(t, "document") &&
            strcmp(t, "audio")) {
            oc_outcome_set(out, OC_FAILED, "bad_media",
                           "media type not image, video, document or audio");
            return -1;
        }
        const char *cap = m->media_caption ? m->media_caption : m->text;
        oc_buf_puts(b, ",\"type\":");
        str(w, b, t);
        oc_buf_puts(b, ",\"");
        oc_buf_puts(b, t);
        oc_buf_puts(b, "\":{\"link\":");
        str(w, b, m->media_url);
        if (cap && cap[0] && strcmp(t, "audio")) {
            if (utf8_chars(cap) > CAPTION_MAX) {
                oc_outcome_set(out, OC_FAILED, "too_long", "caption longer than 1024 characters");
                return -1;
            }
            oc_buf_puts(b, ",\"caption\":");
            str(w, b, cap);
        }
        if (m->media_filename && !strcmp(t, "document")) {
            oc_buf_puts(b, ",\"filename\":");
            str(w, b, m->media_filename);
        }
        oc_buf_puts(b, "}}");
    } else if (m->text && m->text[0]) {
        if (utf8_chars(m->text) > TEXT_MAX) {
            oc_outcome_set(out, OC_FAILED, "too_long", "text longer than 4096 characters");
            return -1;
        }
        oc_buf_puts(b, w->preview_url
                           ? ",\"type\":\"text\",\"text\":{\"preview_url\":true,\"body\":"
                           : ",\"type\":\"text\",\"text\":{\"preview_url\":false,\"body\":");
        str(w, b, m->text);
        oc_buf_puts(b, "}}");
    } else {
        oc_outcome_set(out, OC_FAILED, "no_content", "neither text nor template");
        return -1;
    }
    if (!b->data)
        return -1;
    req->kind = OC_REQ_HTTP;
    req->method = "POST";
    req->url = strdup(w->url);
    oc_request_header(req, "Authorization", w->auth);
    oc_request_header(req, "Content-Type", "application/json");
    return 0;
}

/* The Graph API's codes, decided per PROTOCOLS.md. */
static void classify_code(long code, oc_outcome *o)
{
    switch (code) {
    case 4:
    case 80007:
    case 130429:
        o->kind = OC_RETRY;
        snprintf(o->reason, sizeof(o->reason), "throttled");
        o->throttle = 1;
        return;
    case 131048: /* spam rate limit: the number sends too much, slow down */
        o->kind = OC_RETRY;
        snprintf(o->reason, sizeof(o->reason), "spam_rate_limit");
        o->throttle = 1;
        return;
    case 131056:
        /* pair rate limit (one message per ~6 s to one user): this
         * recipient waits, the connector keeps its pace */
        o->kind = OC_RETRY;
        snprintf(o->reason, sizeof(o->reason), "pair_rate_limit");
        o->throttle = OC_THROTTLE_RECIPIENT;
        if (o->retry_after_ms < 6000)
            o->retry_after_ms = 6000;
        return;
    case 131057: /* business account in maintenance mode */
        o->kind = OC_RETRY;
        snprintf(o->reason, sizeof(o->reason), "maintenance");
        return;
    case 2:
    case 131000:
    case 131016:
        o->kind = OC_RETRY;
        snprintf(o->reason, sizeof(o->reason), "provider_unavailable");
        return;
    }
    const char *r = "rejected";
    switch (code) {
    case 131047:
        r = "outside_window";
        break;
    case 131026:
        r = "undeliverable";
        break;
    case 133010:
        r = "not_registered";
        break;
    case 131051:
        r = "unsupported_type";
        break;
    case 132000:
    case 132001:
    case 132005:
    case 132012:
        r = "template_error";
        break;
    case 368:
        r = "policy";
        break;
    case 131050:
        /* the user stopped marketing messages: final, the address is
         * suppressed on the channel and nothing falls back (outcome.lua,
         * dispatch.c's falls_back) */
        r = "opted_out";
        break;
    case 131049:
        r = "not_delivered_marketing";
        break;
    case 100:
        r = "invalid_parameter";
        break;
    case 190:
    case 0:
        r = "auth";
        break;
    }
    o->kind = OC_FAILED;
    snprintf(o->reason, sizeof(o->reason), "%s", r);
}

/* Account-level codes: nothing can be sent until someone acts, so the
 * instance halts (OC_HALT, ABI 1.3) instead of failing every recipient. A
 * paused or disabled template (132015, 132016) halts the whole instance
 * too: the daemon keeps no per-template state, and a resume (or the probe)
 * finds out whether the template is back. Returns 1 when code halts. */
static int wa_halt_code(long code, oc_outcome *o)
{
    static const struct {
        long code;
        const char *reason;
    } halts[] = {
        {190, "auth_expired"},         /* access token expired or invalid */
        {10, "permission"},            /* the app lacks the permission */
        {200, "permission"},           /* ... or the number/WABA asset */
        {131031, "account_locked"},    /* business account locked */
        {131042, "payment"},           /* eligibility: payment issue */
        {368, "policy_block"},         /* temporarily blocked for policy violations */
        {132015, "template_paused"},   /* template paused for low quality */
        {132016, "template_disabled"}, /* template disabled */
    };
    for (size_t i = 0; i < sizeof(halts) / sizeof(halts[0]); i++)
        if (halts[i].code == code) {
            o->kind = OC_HALT;
            o->throttle = 0;
            snprintf(o->reason, sizeof(o->reason), "%s", halts[i].reason);
            return 1;
        }
    return 0;
}

/* ABI 1.4: the send answer's contacts[0].wa_id when it is another number
 * than the one sent to (contacts[0].input): WhatsApp answers Mexican and
 * Brazilian numbers under their own form of the number. Given in the form
 * this connector's inbound events name the contact ("+" and the digits),
 * so the host's alias matches what a reply or a STOP comes from. */
static void note_wa_id(const char *input, size_t in_len, const char *wa_id, size_t id_len,
                       oc_outcome *out)
{
    if (!input || !wa_id || !id_len || id_len + 2 > sizeof(out->recipient_id))
        return;
    for (size_t i = 0; i < id_len; i++)
        if (!isdigit((unsigned char)wa_id[i]))
            return; /* not a phone number's wa_id: nothing to map */
    size_t k = 0;
    for (size_t i = 0; i < in_len; i++) {
        if (!isdigit((unsigned char)input[i]))
            continue;
        if (k >= id_len || input[i] != wa_id[k])
            goto differs;
        k++;
    }
    if (k == id_len)
        return; /* the same digits: the ordinary case */
differs:
    out->recipient_id[0] = '+';
    memcpy(out->recipient_id + 1, wa_id, id_len);
    out->recipient_id[id_len + 1] = '\0';
}

/* the value of "name":"..." in s, without a JSON tree; NULL when absent or
 * escaped (the full parse reads those) */
static const char *plain_value(const char *s, const char *key, size_t *len)
{
    const char *p = strstr(s, key);
    if (!p)
        return NULL;
    p += strlen(key);
    size_t n = strcspn(p, "\"\\");
    if (p[n] != '"')
        return NULL;
    *len = n;
    return p;
}

static void wa_classify(void *inst, const oc_response *resp, oc_outcome *out)
{
    wa *w = inst;
    oc_outcome_set(out, OC_FAILED, "rejected", NULL);
    out->retry_after_ms = w->host->retry_after_ms(resp->retry_after, resp->now_ms);
    if (resp->status >= 200 && resp->status < 300 && resp->body) {
        /* the hot path: the Cloud API's success answer, read without a
         * JSON tree; anything unusual takes the full parse below */
        const char *p = strstr(resp->body, "\"messages\":[{\"id\":\"");
        if (p) {
            p += 19; /* strlen("\"messages\":[{\"id\":\"") */
            size_t n = strcspn(p, "\"\\");
            if (n && n < sizeof(out->provider_id) && p[n] == '"') {
                long ra = out->retry_after_ms;
                oc_outcome_set(out, OC_SENT, NULL, NULL);
                out->retry_after_ms = ra;
                memcpy(out->provider_id, p, n);
                out->provider_id[n] = '\0';
                /* contacts[0]: the answer's usual first bytes read in place,
                 * any other shape searched for */
                static const char head[] =
                    "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"";
                static const char mid[] = "\",\"wa_id\":\"";
                size_t il = 0, wl = 0;
                const char *in = NULL, *wid = NULL;
                if (!strncmp(resp->body, head, sizeof(head) - 1)) {
                    in = resp->body + sizeof(head) - 1;
                    il = strcspn(in, "\"\\");
                    if (!strncmp(in + il, mid, sizeof(mid) - 1)) {
                        wid = in + il + sizeof(mid) - 1;
                        wl = strcspn(wid, "\"\\");
                        if (wid[wl] != '"')
                            wid = NULL;
                    }
                } else {
                    in = plain_value(resp->body, "\"input\":\"", &il);
                    wid = plain_value(resp->body, "\"wa_id\":\"", &wl);
                }
                note_wa_id(in, il, wid, wl, out);
                return;
            }
        }
    }
    json_error_t je;
    json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, &je);
    if (resp->status >= 200 && resp->status < 300) {
        const char *id = json_string_value(
            json_object_get(json_array_get(json_object_get(j, "messages"), 0), "id"));
        if (id && *id) {
            long ra = out->retry_after_ms;
            oc_outcome_set(out, OC_SENT, NULL, NULL);
            out->retry_after_ms = ra;
            snprintf(out->provider_id, sizeof(out->provider_id), "%s", id);
            json_t *c0 = json_array_get(json_object_get(j, "contacts"), 0);
            const char *in = json_string_value(json_object_get(c0, "input"));
            const char *wid = json_string_value(json_object_get(c0, "wa_id"));
            note_wa_id(in, in ? strlen(in) : 0, wid, wid ? strlen(wid) : 0, out);
        } else {
            /* accepted, though we cannot read its id: never a failure (a
             * fallback channel would send the message a second time) */
            char d[64];
            snprintf(d, sizeof(d), "HTTP %ld without a message id", resp->status);
            oc_outcome_set(out, OC_SENT, "unreadable_answer", d);
        }
        json_decref(j);
        return;
    }
    json_t *e = json_object_get(j, "error");
    json_t *code = json_object_get(e, "code");
    if (json_is_integer(code)) {
        long c = (long)json_integer_value(code);
        classify_code(c, out);
        const char *msg = json_string_value(json_object_get(e, "message"));
        snprintf(out->detail, sizeof(out->detail), "code %ld: %s", c, msg ? msg : "");
        if (resp->status >= 500 && out->kind == OC_FAILED && c != 190 && c != 0) {
            out->kind = OC_RETRY;
            snprintf(out->reason, sizeof(out->reason), "http_5xx");
        }
        if (resp->status == 429 && out->kind != OC_RETRY) {
            out->kind = OC_RETRY;
            out->throttle = 1;
            snprintf(out->reason, sizeof(out->reason), "throttled");
        }
        wa_halt_code(c, out); /* account-level: halt, whatever the status */
    } else if (resp->status == 429) {
        out->kind = OC_RETRY;
        out->throttle = 1;
        snprintf(out->reason, sizeof(out->reason), "throttled");
        snprintf(out->detail, sizeof(out->detail), "HTTP 429");
    } else if (resp->status >= 500 || resp->status == 408) {
        out->kind = OC_RETRY;
        snprintf(out->reason, sizeof(out->reason), "http_5xx");
        snprintf(out->detail, sizeof(out->detail), "HTTP %ld", resp->status);
    } else {
        snprintf(out->detail, sizeof(out->detail), "HTTP %ld", resp->status);
    }
    json_decref(j);
}

/* ---- inbound */

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The value of name in a query string, URL-decoded into out; NULL if absent
 * or malformed. */
static const char *query_get(const char *q, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        const char *end = amp ? amp : q + strlen(q);
        if ((size_t)(end - q) > nl && !strncmp(q, name, nl) && q[nl] == '=') {
            size_t o = 0;
            for (const char *p = q + nl + 1; p < end; p++) {
                int c = (unsigned char)*p;
                if (c == '+')
                    c = ' ';
                else if (c == '%') {
                    if (end - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0)
                        return NULL;
                    c = hexval(p[1]) * 16 + hexval(p[2]);
                    p += 2;
                }
                if (o + 1 >= len)
                    return NULL;
                out[o++] = (char)c;
            }
            out[o] = '\0';
            return out;
        }
        q = amp ? amp + 1 : NULL;
    }
    return NULL;
}

static int const_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return 0;
    return CRYPTO_memcmp(a, b, la) == 0;
}

static int signature_ok(wa *w, const oc_http_request *req)
{
    const char *sig = req->header(req->header_ctx, "X-Hub-Signature-256");
    if (!sig || strncmp(sig, "sha256=", 7) || strlen(sig) != 7 + 64)
        return 0;
    unsigned char given[32], mac[EVP_MAX_MD_SIZE];
    for (int i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)sig[7 + 2 * i]), lo = hexval((unsigned char)sig[8 + 2 * i]);
        if (hi < 0 || lo < 0)
            return 0;
        given[i] = (unsigned char)(hi << 4 | lo);
    }
    return oc_hmac(w->mac, req->body, req->body_len, mac) == 32 &&
           CRYPTO_memcmp(mac, given, 32) == 0;
}

static const char *plus(const char *digits, char *buf, size_t len)
{
    if (!digits)
        return NULL;
    snprintf(buf, len, "+%s", digits[0] == '+' ? digits + 1 : digits);
    return buf;
}

static int is_optout_payload(const wa *w, const char *p)
{
    if (!p)
        return 0;
    for (size_t i = 0; i < w->n_optout; i++)
        if (!strcasecmp(w->optout[i], p))
            return 1;
    return 0;
}

static void emit_message(wa *w, json_t *m, json_t *value, const char *business, oc_emit_fn emit,
                         void *ctx)
{
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *from = json_string_value(json_object_get(m, "from"));
    /* a user with a username may come without a phone number (from): then
     * the business-scoped user id (BSUID, e.g. "US.13491208655302741918")
     * is the contact, as sent: messages[].from_user_id, else the one
     * contact's user_id */
    const char *bsuid = json_string_value(json_object_get(m, "from_user_id"));
    json_t *contacts = json_object_get(value, "contacts");
    if (!bsuid && json_array_size(contacts) == 1)
        bsuid = json_string_value(json_object_get(json_array_get(contacts, 0), "user_id"));
    if (!type || (!from && !bsuid))
        return;
    char text[4200], fromb[64], newb[64];
    const char *new_id = NULL;
    const char *t = NULL, *payload = NULL;
    const char *irt = json_string_value(json_object_get(json_object_get(m, "context"), "id"));
    if (!strcmp(type, "text")) {
        t = json_string_value(json_object_get(json_object_get(m, "text"), "body"));
    } else if (!strcmp(type, "button")) {
        /* a template's quick-reply button: its label and its payload */
        json_t *bt = json_object_get(m, "button");
        t = json_string_value(json_object_get(bt, "text"));
        payload = json_string_value(json_object_get(bt, "payload"));
    } else if (!strcmp(type, "interactive")) {
        json_t *i = json_object_get(m, "interactive");
        json_t *r = json_object_get(i, "button_reply");
        if (!r)
            r = json_object_get(i, "list_reply");
        if (r) {
            t = json_string_value(json_object_get(r, "title"));
            payload = json_string_value(json_object_get(r, "id"));
        } else if ((r = json_object_get(i, "nfm_reply"))) {
            /* a flow's answer: its body as the text, the flow's JSON as payload */
            t = json_string_value(json_object_get(r, "body"));
            payload = json_string_value(json_object_get(r, "response_json"));
        }
    } else if (!strcmp(type, "image") || !strcmp(type, "audio") || !strcmp(type, "video") ||
               !strcmp(type, "document") || !strcmp(type, "sticker")) {
        json_t *media = json_object_get(m, type);
        const char *id = json_string_value(json_object_get(media, "id"));
        const char *cap = json_string_value(json_object_get(media, "caption"));
        snprintf(text, sizeof(text), "[%s:%s]%s%s", type, id ? id : "", cap ? " " : "",
                 cap ? cap : "");
        t = text;
    } else if (!strcmp(type, "location")) {
        json_t *l = json_object_get(m, "location");
        snprintf(text, sizeof(text), "[location:%g,%g]",
                 json_number_value(json_object_get(l, "latitude")),
                 json_number_value(json_object_get(l, "longitude")));
        t = text;
    } else if (!strcmp(type, "reaction")) {
        /* attributed to the message reacted to, which has no context */
        json_t *r = json_object_get(m, "reaction");
        const char *e = json_string_value(json_object_get(r, "emoji"));
        const char *mid = json_string_value(json_object_get(r, "message_id"));
        if (mid)
            irt = mid;
        snprintf(text, sizeof(text), "[reaction:%s]", e ? e : "");
        t = text;
    } else if (!strcmp(type, "system")) {
        /* a notice from WhatsApp, not the user's reply: the host stores it
         * as such (kind "system"); its type says what changed */
        json_t *sy = json_object_get(m, "system");
        t = json_string_value(json_object_get(sy, "body"));
        payload = json_string_value(json_object_get(sy, "type"));
        if (payload && !strcmp(payload, "user_changed_number")) {
            /* system.wa_id: the contact's new number, for the host's alias */
            new_id = plus(json_string_value(json_object_get(sy, "wa_id")), newb, sizeof(newb));
            w->host->log(OC_LOG_INFO, "whatsapp: a contact changed number (%s)",
                         new_id ? "new wa_id given" : "no new wa_id");
        }
    } else {
        snprintf(text, sizeof(text), "[%.64s]", type);
        t = text;
    }
    const char *name = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(contacts, i, c)
    {
        const char *wa_id = json_string_value(json_object_get(c, "wa_id"));
        const char *uid = json_string_value(json_object_get(c, "user_id"));
        if ((from && wa_id && !strcmp(wa_id, from)) || (!from && uid && !strcmp(uid, bsuid)))
            name = json_string_value(json_object_get(json_object_get(c, "profile"), "name"));
    }
    const char *ts = json_string_value(json_object_get(m, "timestamp"));
    oc_event ev = {
        .type = OC_EV_REPLY,
        .from = from ? plus(from, fromb, sizeof(fromb)) : bsuid,
        .to = business,
        .text = t ? t : "",
        .kind = type,
        .provider_id = json_string_value(json_object_get(m, "id")),
        .in_reply_to = irt,
        .name = name,
        .timestamp = ts ? atoll(ts) : 0,
        .payload = payload,
        /* another address of the contact (connector.h): a changed number's
         * new one, or the BSUID of a message that also has the number */
        .state = new_id          ? new_id
                 : from && bsuid ? bsuid
                                 : NULL,
    };
    emit(ctx, &ev);
    if ((!strcmp(type, "button") || !strcmp(type, "interactive")) &&
        is_optout_payload(w, payload)) {
        /* a "Stop promotions" quick reply: the reply is kept, and the
         * contact opts out */
        oc_event o = {
            .type = OC_EV_OPTOUT,
            .from = ev.from,
            .to = business,
            .text = payload,
            .kind = "payload",
            .in_reply_to = irt,
            .timestamp = ev.timestamp,
        };
        emit(ctx, &o);
    }
}

/* the user_preferences field: a user stopped or resumed marketing messages */
static int emit_preference(json_t *p, const char *business, oc_emit_fn emit, void *ctx)
{
    const char *wa_id = json_string_value(json_object_get(p, "wa_id"));
    const char *cat = json_string_value(json_object_get(p, "category"));
    const char *val = json_string_value(json_object_get(p, "value"));
    if (!wa_id || !val || (cat && strcmp(cat, "marketing_messages")))
        return 0;
    int type = !strcmp(val, "stop") ? OC_EV_OPTOUT : !strcmp(val, "resume") ? OC_EV_OPTIN : 0;
    if (!type)
        return 0;
    char fromb[64];
    long long ts = json_integer_value(json_object_get(p, "timestamp"));
    if (!ts && json_is_string(json_object_get(p, "timestamp")))
        ts = atoll(json_string_value(json_object_get(p, "timestamp")));
    oc_event ev = {
        .type = (oc_event_type)type,
        .from = plus(wa_id, fromb, sizeof(fromb)),
        .to = business,
        .text = json_string_value(json_object_get(p, "detail")),
        .kind = "user_preferences",
        .timestamp = ts,
    };
    emit(ctx, &ev);
    return 1;
}

/* value.errors: problems WhatsApp reports about the webhook's subject
 * (e.g. an unsupported message); logged, counted in the log line, and
 * handed to the host (ABI 1.4 OC_EV_ERROR) for its per-instance counter */
static void log_value_errors(wa *w, json_t *value, const char *business, oc_emit_fn emit, void *ctx)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(value, "errors"), i, e)
    {
        w->n_value_errors++;
        const char *title = json_string_value(json_object_get(e, "title"));
        char safe[128];
        size_t o = 0;
        for (const char *p = title ? title : ""; *p && o + 1 < sizeof(safe); p++)
            safe[o++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p;
        safe[o] = '\0';
        long long code = (long long)json_integer_value(json_object_get(e, "code"));
        w->host->log(OC_LOG_WARN, "whatsapp webhook: error %lld: %s (%llu reported so far)", code,
                     safe, w->n_value_errors);
        char what[192];
        snprintf(what, sizeof(what), "%lld %s", code, safe);
        oc_event ev = {.type = OC_EV_ERROR, .to = business, .error = what, .kind = "value.errors"};
        emit(ctx, &ev);
    }
}

static void emit_status(json_t *s, const char *business, oc_emit_fn emit, void *ctx)
{
    const char *id = json_string_value(json_object_get(s, "id"));
    const char *st = json_string_value(json_object_get(s, "status"));
    if (!id || !st)
        return;
    char err[256] = "", rb[64];
    json_t *e = json_array_get(json_object_get(s, "errors"), 0);
    if (e) {
        const char *title = json_string_value(json_object_get(e, "title"));
        snprintf(err, sizeof(err), "%lld: %s",
                 (long long)json_integer_value(json_object_get(e, "code")), title ? title : "");
    }
    const char *ts = json_string_value(json_object_get(s, "timestamp"));
    oc_event ev = {
        .type = OC_EV_STATUS,
        .from = plus(json_string_value(json_object_get(s, "recipient_id")), rb, sizeof(rb)),
        .to = business,
        .provider_id = id,
        .state = st,
        .error = err[0] ? err : NULL,
        .timestamp = ts ? atoll(ts) : 0,
    };
    emit(ctx, &ev);
}

static void wa_inbound(void *inst, const oc_http_request *req, oc_inbound_result *res,
                       oc_emit_fn emit, void *ctx)
{
    wa *w = inst;
    if (!strcmp(req->method, "GET")) {
        char mode[32], token[512], challenge[300];
        if (!query_get(req->query, "hub.mode", mode, sizeof(mode)) || strcmp(mode, "subscribe") ||
            !query_get(req->query, "hub.verify_token", token, sizeof(token)) || !w->verify_token ||
            !const_eq(token, w->verify_token)) {
            oc_inbound_fail(res, 403, "verify_token_mismatch");
            return;
        }
        if (!query_get(req->query, "hub.challenge", challenge, sizeof(challenge)) ||
            strlen(challenge) > 256) {
            oc_inbound_fail(res, 400, "bad_challenge");
            return;
        }
        for (const char *p = challenge; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                oc_inbound_fail(res, 400, "bad_challenge");
                return;
            }
        res->status = 200;
        res->content_type = "text/plain";
        oc_buf_puts(&res->body, challenge);
        return;
    }
    if (strcmp(req->method, "POST")) {
        oc_inbound_fail(res, 405, "method_not_allowed");
        return;
    }
    if (!w->app_secret) {
        oc_inbound_fail(res, 403, "no_app_secret");
        return;
    }
    if (!signature_ok(w, req)) {
        oc_inbound_fail(res, 401, "bad_signature");
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, 0, &je);
    json_t *entries = json_object_get(j, "entry");
    if (!json_is_object(j) || !json_is_array(entries)) {
        json_decref(j);
        oc_inbound_fail(res, 400, "bad_payload");
        return;
    }
    int n = 0;
    size_t i, k, x;
    json_t *e, *ch, *item;
    json_array_foreach(entries, i, e)
    {
        json_array_foreach(json_object_get(e, "changes"), k, ch)
        {
            json_t *value = json_object_get(ch, "value");
            json_t *md = json_object_get(value, "metadata");
            const char *disp = json_string_value(json_object_get(md, "display_phone_number"));
            char business[64] = "";
            if (disp) {
                size_t o = 0;
                business[o++] = '+';
                for (const char *p = disp; *p && o + 1 < sizeof(business); p++)
                    if (isdigit((unsigned char)*p))
                        business[o++] = *p;
                business[o] = '\0';
            } else {
                const char *pn = json_string_value(json_object_get(md, "phone_number_id"));
                snprintf(business, sizeof(business), "%s", pn ? pn : "");
            }
            json_array_foreach(json_object_get(value, "messages"), x, item)
            {
                if (n++ < EVENTS_MAX)
                    emit_message(w, item, value, business, emit, ctx);
            }
            json_array_foreach(json_object_get(value, "statuses"), x, item)
            {
                if (n++ < EVENTS_MAX)
                    emit_status(item, business, emit, ctx);
            }
            json_array_foreach(json_object_get(value, "user_preferences"), x, item)
            {
                if (n++ < EVENTS_MAX)
                    emit_preference(item, business, emit, ctx);
            }
            if (n <= EVENTS_MAX)
                log_value_errors(w, value, business, emit, ctx);
        }
    }
    json_decref(j);
    if (n > EVENTS_MAX) {
        /* refused whole: the daemon stores none of what was emitted */
        oc_inbound_fail(res, 413, "too_many_events");
        return;
    }
    res->status = 200;
    res->content_type = "application/json";
    oc_buf_puts(&res->body, "{}");
}

OC_CONNECTOR(whatsapp) = {
    OC_CONNECTOR_INIT,
    .type = "whatsapp",
    .description = "WhatsApp Cloud API: text and approved templates; webhooks",
    .keys = wa_keys,
    .init = wa_init,
    .free = wa_free,
    .build = wa_build,
    .classify = wa_classify,
    .inbound = wa_inbound,
};
