/* Twilio Programmable Messaging connector (SMS): form-encoded Messages API
 * requests out, Twilio error codes classified, and the webhook in (inbound
 * SMS and status callbacks) checked with X-Twilio-Signature. */
#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"
#include "omnicast/connector.h"

#define BODY_MAX 1600
#define PARAMS_MAX 256

typedef struct tw {
    const oc_host *host;
    char *url;
    char *userpwd;
    char *auth_token;
    EVP_MAC_CTX *mac; /* HMAC-SHA1 keyed with auth_token once */
    char *from, *service, *status_callback, *public_url;
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
    size_t chars = 0;
    for (const char *p = text ? text : ""; *p; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    if (chars > BODY_MAX) {
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
    req->kind = OC_REQ_HTTP;
    req->method = "POST";
    req->url = strdup(t->url);
    req->userpwd = strdup(t->userpwd);
    oc_request_header(req, "Content-Type", "application/x-www-form-urlencoded");
    return 0;
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
    const char *r = NULL;
    switch (code) {
    case 21211:
    case 21614:
    case 21217:
        r = "invalid_recipient";
        break;
    case 21610:
        r = "opted_out";
        break;
    case 21408:
    case 21612:
    case 30007:
        r = "policy";
        break;
    case 20003:
    case 20404:
        r = "auth";
        break;
    }
    if (code == 20429 || resp->status == 429) {
        out->kind = OC_RETRY;
        out->throttle = 1;
        snprintf(out->reason, sizeof(out->reason), "throttled");
    } else if (r) {
        snprintf(out->reason, sizeof(out->reason), "%s", r);
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

static int by_name(const void *a, const void *b)
{
    return strcmp(((const param *)a)->name, ((const param *)b)->name);
}

static const char *get(const param *ps, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ps[i].name, name))
            return ps[i].value;
    return NULL;
}

static int signature_ok(tw *t, const oc_http_request *req, param *ps, size_t n)
{
    const char *sig = req->header(req->header_ctx, "X-Twilio-Signature");
    if (!sig || !t->public_url)
        return 0;
    oc_buf data = {0};
    oc_buf_puts(&data, t->public_url);
    if (req->query && *req->query) {
        oc_buf_puts(&data, "?");
        oc_buf_puts(&data, req->query);
    }
    param *sorted = malloc(sizeof(*sorted) * (n ? n : 1));
    memcpy(sorted, ps, sizeof(*sorted) * n);
    /* stable order for equal names: insertion sort keeps their order */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && by_name(&sorted[k - 1], &sorted[k]) > 0; k--) {
            param tmp = sorted[k];
            sorted[k] = sorted[k - 1];
            sorted[k - 1] = tmp;
        }
    for (size_t i = 0; i < n; i++) {
        oc_buf_puts(&data, sorted[i].name);
        oc_buf_puts(&data, sorted[i].value);
    }
    free(sorted);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t ml = oc_hmac(t->mac, data.data ? data.data : "", data.len, mac);
    oc_buf_free(&data);
    if (ml != 20)
        return 0;
    unsigned char b64[64];
    int bl = EVP_EncodeBlock(b64, mac, (int)ml);
    return bl > 0 && strlen(sig) == (size_t)bl && CRYPTO_memcmp(b64, sig, (size_t)bl) == 0;
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
    if (form_parse(req->body, req->body_len, ps, &n) < 0) {
        for (size_t i = 0; i < n; i++) {
            free(ps[i].name);
            free(ps[i].value);
        }
        oc_inbound_fail(res, 400, "bad_payload");
        return;
    }
    if (!signature_ok(t, req, ps, n)) {
        oc_inbound_fail(res, 403, "bad_signature");
    } else {
        const char *sid = get(ps, n, "MessageSid");
        const char *status = get(ps, n, "MessageStatus");
        if (status) {
            const char *st = status_state(status);
            if (st && sid) {
                oc_event ev = {.type = OC_EV_STATUS,
                               .from = get(ps, n, "To"),
                               .to = get(ps, n, "From"),
                               .provider_id = sid,
                               .state = st,
                               .error = get(ps, n, "ErrorCode")};
                emit(ctx, &ev);
            }
        } else if (get(ps, n, "From") && get(ps, n, "Body")) {
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
                           .from = get(ps, n, "From"),
                           .to = get(ps, n, "To"),
                           .text = text.data ? text.data : "",
                           .kind = media > 0 ? "mms" : "text",
                           .provider_id = sid};
            emit(ctx, &ev);
            oc_buf_free(&text);
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
