/* Generic webhook connector: POSTs a JSON body rendered from a template in
 * the config (values JSON-escaped), optionally signed with HMAC-SHA256, so
 * any HTTP provider is reachable by configuration. Inbound: a small JSON
 * format for replies and statuses, verified with the same signature.
 *
 * The body template is checked at init: a {{var}} goes inside a JSON string
 * ("{{name}}", the value escaped), or outside one as {{name|json}}, the
 * value as a JSON value (a number, true, false or null as it is, anything
 * else a JSON string). With every variable empty (or 0) the template must be
 * JSON. Every rendered body is checked again before it is sent. */
#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"
#include "omnicast/connector.h"

#define SIG_HEADER "X-Omnicast-Signature"

/* The body template cut at each {{name|json}}: a piece of template
 * rendered with JSON escaping, or a typed variable ("{{name}}" rendered
 * raw, then inserted as a JSON value). */
typedef struct body_part {
    char *tmpl;
    int typed;
} body_part;

typedef struct hook {
    const oc_host *host;
    char *url;
    char *body;
    body_part *parts;
    size_t n_parts;
    char *secret;
    EVP_MAC_CTX *mac; /* keyed with secret once */
    char *id_path;
    int inbound_unsigned; /* inbound_unsigned = true: accept posts with no secret */
    char *headers[OC_MAX_HEADERS - 2];
    int n_headers;
} hook;

static const oc_config_key hook_keys[] = {
    {"url", OC_KEY_REQUIRED | OC_KEY_URL | OC_KEY_URL_HTTP, NULL, "URL each message is POSTed to"},
    {"body", 0,
     "{\"to\":\"{{to}}\",\"text\":\"{{text}}\",\"campaign\":\"{{campaign}}\",\"message_id\":\"{{"
     "message_id}}\"}",
     "JSON body template: {{var}} inside a JSON string (JSON-escaped), or {{var|json}} outside "
     "one (a JSON value)"},
    {"header", OC_KEY_REPEATABLE, NULL, "extra request header, \"Name: value\" (repeatable)"},
    {"signing_secret", OC_KEY_SECRET, NULL, "HMAC-SHA256 key: signs requests and verifies inbound"},
    {"id_path", 0, "id", "dot path of the provider id in the JSON answer, e.g. data.id"},
    {"inbound_unsigned", 0, "false",
     "accept inbound posts without signing_secret (unsigned: tests only); else they get 403"},
    {NULL, 0, NULL, NULL},
};

static void hook_free(void *inst)
{
    hook *h = inst;
    if (!h)
        return;
    free(h->url);
    free(h->body);
    for (size_t i = 0; i < h->n_parts; i++)
        free(h->parts[i].tmpl);
    free(h->parts);
    if (h->secret)
        OPENSSL_cleanse(h->secret, strlen(h->secret));
    free(h->secret);
    EVP_MAC_CTX_free(h->mac);
    free(h->id_path);
    for (int i = 0; i < h->n_headers; i++)
        free(h->headers[i]);
    free(h);
}

static int add_part(hook *h, const char *s, size_t len, int typed)
{
    if (len == 0)
        return 0;
    body_part *p = realloc(h->parts, (h->n_parts + 1) * sizeof(*p));
    if (!p)
        return -1;
    h->parts = p;
    if (!(p[h->n_parts].tmpl = strndup(s, len)))
        return -1;
    p[h->n_parts++].typed = typed;
    return 0;
}

/* Cut the body template into parts, refusing a {{var}} outside a JSON
 * string unless it is {{var|json}}, {{var|json}} inside one, and a template
 * that is not JSON with its variables left empty. 0, or -1 with err. */
static int split_body(hook *h, const char *src, char *err, size_t err_len)
{
    oc_buf skel = {0}; /* src with "{{v}}" in strings dropped, {{v|json}} as 0 */
    int in_str = 0, esc = 0, rc = -1;
    size_t start = 0, i = 0;
    while (src[i]) {
        if (src[i] == '{' && src[i + 1] == '{') {
            const char *close = strstr(src + i + 2, "}}");
            if (!close) {
                snprintf(err, err_len, "body: unclosed {{ at offset %zu", i);
                goto out;
            }
            const char *a = src + i + 2, *bar = memchr(a, '|', (size_t)(close - a));
            const char *ne = bar ? bar : close;
            while (a < ne && isspace((unsigned char)*a))
                a++;
            while (ne > a && isspace((unsigned char)ne[-1]))
                ne--;
            int typed = 0;
            if (bar) {
                const char *f = bar + 1, *fe = close;
                while (f < fe && isspace((unsigned char)*f))
                    f++;
                while (fe > f && isspace((unsigned char)fe[-1]))
                    fe--;
                typed = fe - f == 4 && !memcmp(f, "json", 4);
            }
            int nl = (int)(ne - a);
            if (in_str && typed) {
                snprintf(err, err_len,
                         "body: {{%.*s|json}} at offset %zu is inside a JSON string: write "
                         "\"{{%.*s}}\" for a string, or {{%.*s|json}} without the quotes",
                         nl, a, i, nl, a, nl, a);
                goto out;
            }
            if (!in_str && !typed) {
                snprintf(err, err_len,
                         "body: {{%.*s}} at offset %zu is outside a JSON string: write "
                         "\"{{%.*s}}\" for a string, or {{%.*s|json}} for a JSON value",
                         nl, a, i, nl, a, nl, a);
                goto out;
            }
            size_t after = (size_t)(close + 2 - src);
            if (typed) {
                char var[300];
                if (nl == 0 || nl > 256) {
                    snprintf(err, err_len, "body: bad variable name at offset %zu", i);
                    goto out;
                }
                snprintf(var, sizeof(var), "{{%.*s}}", nl, a);
                if (add_part(h, src + start, i - start, 0) < 0 ||
                    add_part(h, var, strlen(var), 1) < 0 || oc_buf_puts(&skel, "0") < 0) {
                    snprintf(err, err_len, "out of memory");
                    goto out;
                }
                start = after;
            }
            i = after;
            continue;
        }
        char c = src[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        }
        if (oc_buf_append(&skel, &c, 1) < 0) {
            snprintf(err, err_len, "out of memory");
            goto out;
        }
        i++;
    }
    if (add_part(h, src + start, i - start, 0) < 0) {
        snprintf(err, err_len, "out of memory");
        goto out;
    }
    json_error_t je;
    json_t *j = json_loadb(skel.data ? skel.data : "", skel.len, JSON_DECODE_ANY, &je);
    if (!j) {
        snprintf(err, err_len,
                 "body: not a JSON template (%s at offset %d of the template "
                 "with its variables left out)",
                 je.text, je.position);
        goto out;
    }
    json_decref(j);
    rc = 0;
out:
    oc_buf_free(&skel);
    return rc;
}

static int hook_init(const oc_config *cfg, const oc_host *host, void **inst, char *err,
                     size_t err_len)
{
    const char *url = cfg->get(cfg->ctx, "url");
    if (!url || !*url) {
        snprintf(err, err_len, "url is required");
        return -1;
    }
    hook *h = calloc(1, sizeof(*h));
    if (!h)
        return -1;
    h->host = host;
    h->url = strdup(url);
    h->body = strdup(cfg->get(cfg->ctx, "body"));
    if (!h->url || !h->body || split_body(h, h->body, err, err_len) < 0) {
        if (!h->url || !h->body)
            snprintf(err, err_len, "out of memory");
        hook_free(h);
        return -1;
    }
    const char *s = cfg->get(cfg->ctx, "signing_secret");
    h->secret = s && *s ? strdup(s) : NULL;
    if (h->secret && !(h->mac = oc_hmac_new("SHA256", h->secret))) {
        snprintf(err, err_len, "HMAC-SHA256 is not available");
        hook_free(h);
        return -1;
    }
    const char *iu = cfg->get(cfg->ctx, "inbound_unsigned");
    if (iu && (!strcmp(iu, "true") || !strcmp(iu, "yes") || !strcmp(iu, "1")))
        h->inbound_unsigned = 1;
    else if (iu && *iu && strcmp(iu, "false") && strcmp(iu, "no") && strcmp(iu, "0")) {
        snprintf(err, err_len, "inbound_unsigned: want true or false, not \"%.40s\"", iu);
        hook_free(h);
        return -1;
    }
    h->id_path = strdup(cfg->get(cfg->ctx, "id_path"));
    const char *hv;
    for (size_t i = 0; (hv = cfg->get_nth(cfg->ctx, "header", i)); i++) {
        const char *colon = strchr(hv, ':');
        if (!colon || colon == hv || strpbrk(hv, "\r\n") || h->n_headers == OC_MAX_HEADERS - 2) {
            snprintf(err, err_len,
                     "header %zu: want \"Name: value\" without line breaks (at most %d)", i + 1,
                     OC_MAX_HEADERS - 2);
            hook_free(h);
            return -1;
        }
        h->headers[h->n_headers++] = strdup(hv);
    }
    *inst = h;
    return 0;
}

/* "sha256=<hex>" into out; 0, or -1 if the MAC could not be made */
static int sign(hook *h, const char *data, size_t len, char *out /* 72 */)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t ml = oc_hmac(h->mac, data, len, mac);
    if (ml != 32)
        return -1;
    strcpy(out, "sha256=");
    oc_hex(mac, ml, out + 7);
    return 0;
}

/* A value a {{var|json}} inserts as it is: a JSON number, true, false or
 * null (RFC 8259 grammar, whole value). */
static int json_scalar(const char *s, size_t n)
{
    if ((n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "null", 4))) ||
        (n == 5 && !memcmp(s, "false", 5)))
        return 1;
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == d)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == d)
            return 0;
    }
    return i == n;
}

/* Render the body parts into out: 0, -1 (a variable missing, named in
 * missing), -2 (a template error) or -3 (out of memory). */
static int render_body(hook *h, const oc_message *m, oc_buf *out, char *missing, size_t mlen)
{
    oc_buf v = {0};
    for (size_t i = 0; i < h->n_parts; i++) {
        const body_part *p = &h->parts[i];
        if (!p->typed) {
            int rc = h->host->render(p->tmpl, m, OC_ESCAPE_JSON, out, missing, mlen);
            if (rc != 0) {
                oc_buf_free(&v);
                return rc;
            }
            continue;
        }
        oc_buf_reset(&v);
        int rc = h->host->render(p->tmpl, m, OC_ESCAPE_NONE, &v, missing, mlen);
        if (rc != 0) {
            oc_buf_free(&v);
            return rc;
        }
        const char *s = v.data ? v.data : "";
        if (json_scalar(s, v.len)
                ? oc_buf_append(out, s, v.len) < 0
                : (oc_buf_puts(out, "\"") < 0 || h->host->json_escape(out, s, v.len) < 0 ||
                   oc_buf_puts(out, "\"") < 0)) {
            oc_buf_free(&v);
            return -3;
        }
    }
    oc_buf_free(&v);
    return 0;
}

static int hook_build(void *inst, const oc_message *m, oc_request *req, oc_outcome *out)
{
    hook *h = inst;
    char missing[64] = "";
    int rc = render_body(h, m, &req->body, missing, sizeof(missing));
    if (rc != 0) {
        char reason[96];
        if (rc == -1)
            snprintf(reason, sizeof(reason), "missing_var:%s", missing);
        else
            snprintf(reason, sizeof(reason), rc == -2 ? "bad_template" : "out_of_memory");
        oc_outcome_set(out, OC_FAILED, reason, NULL);
        return -1;
    }
    /* never send a body that is not JSON, whatever the values were */
    json_error_t je;
    json_t *j =
        json_loadb(req->body.data ? req->body.data : "", req->body.len, JSON_DECODE_ANY, &je);
    if (!j) {
        char detail[200];
        snprintf(detail, sizeof(detail), "rendered body is not JSON: %s at offset %d", je.text,
                 je.position);
        oc_outcome_set(out, OC_FAILED, "bad_body_template", detail);
        return -1;
    }
    json_decref(j);
    req->kind = OC_REQ_HTTP;
    req->method = "POST";
    req->url = strdup(h->url);
    oc_request_header(req, "Content-Type", "application/json");
    for (int i = 0; i < h->n_headers; i++) {
        if (req->n_headers >= OC_MAX_HEADERS)
            break;
        req->headers[req->n_headers++] = strdup(h->headers[i]);
    }
    if (h->secret) {
        char sig[80];
        if (sign(h, req->body.data ? req->body.data : "", req->body.len, sig) < 0) {
            oc_outcome_set(out, OC_RETRY, "signing_failed", NULL);
            return -1;
        }
        oc_request_header(req, SIG_HEADER, sig);
    }
    return 0;
}

/* Follow a dot path ("data.id", "messages.0.id") into a JSON value. */
static const char *at_path(json_t *j, const char *path, char *buf, size_t len)
{
    char p[256];
    snprintf(p, sizeof(p), "%s", path);
    char *save = NULL;
    for (char *k = strtok_r(p, ".", &save); k && j; k = strtok_r(NULL, ".", &save)) {
        if (json_is_array(j) && isdigit((unsigned char)k[0]))
            j = json_array_get(j, (size_t)atoi(k));
        else
            j = json_object_get(j, k);
    }
    if (json_is_string(j))
        return json_string_value(j);
    if (json_is_integer(j)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return buf;
    }
    return NULL;
}

static void hook_classify(void *inst, const oc_response *resp, oc_outcome *out)
{
    hook *h = inst;
    oc_outcome_set(out, OC_FAILED, "rejected", NULL);
    out->retry_after_ms = h->host->retry_after_ms(resp->retry_after, resp->now_ms);
    if (resp->status >= 200 && resp->status < 300) {
        long ra = out->retry_after_ms;
        oc_outcome_set(out, OC_SENT, NULL, NULL);
        out->retry_after_ms = ra;
        json_error_t je;
        json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, &je);
        char num[32];
        const char *id = j ? at_path(j, h->id_path, num, sizeof(num)) : NULL;
        if (id)
            snprintf(out->provider_id, sizeof(out->provider_id), "%s", id);
        json_decref(j);
        return;
    }
    snprintf(out->detail, sizeof(out->detail), "HTTP %ld", resp->status);
    if (resp->status == 429) {
        out->kind = OC_RETRY;
        out->throttle = 1;
        snprintf(out->reason, sizeof(out->reason), "throttled");
    } else if (resp->status >= 500 || resp->status == 408) {
        out->kind = OC_RETRY;
        snprintf(out->reason, sizeof(out->reason), "http_5xx");
    }
}

/* Inbound: {"from","to","text","id","in_reply_to"} is a reply;
 * {"status":{"id","state","error"}} is a status. Signed like outbound;
 * without signing_secret refused (403) unless inbound_unsigned = true. */
static void hook_inbound(void *inst, const oc_http_request *req, oc_inbound_result *res,
                         oc_emit_fn emit, void *ctx)
{
    hook *h = inst;
    if (strcmp(req->method, "POST")) {
        oc_inbound_fail(res, 405, "method_not_allowed");
        return;
    }
    if (h->secret) {
        const char *sig = req->header(req->header_ctx, SIG_HEADER);
        char want[80];
        if (sign(h, req->body, req->body_len, want) < 0 || !sig || strlen(sig) != strlen(want) ||
            CRYPTO_memcmp(sig, want, strlen(want))) {
            oc_inbound_fail(res, 401, "bad_signature");
            return;
        }
    } else if (!h->inbound_unsigned) {
        /* nothing to verify with: refused unless the config says otherwise */
        oc_inbound_fail(res, 403, "unsigned_inbound_refused");
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, 0, &je);
    json_t *st = json_object_get(j, "status");
    if (json_is_object(st)) {
        const char *id = json_string_value(json_object_get(st, "id"));
        const char *state = json_string_value(json_object_get(st, "state"));
        if (!id || !state) {
            json_decref(j);
            oc_inbound_fail(res, 400, "bad_payload");
            return;
        }
        oc_event ev = {.type = OC_EV_STATUS,
                       .provider_id = id,
                       .state = state,
                       .error = json_string_value(json_object_get(st, "error"))};
        emit(ctx, &ev);
    } else {
        const char *from = json_string_value(json_object_get(j, "from"));
        const char *text = json_string_value(json_object_get(j, "text"));
        if (!from || !text) {
            json_decref(j);
            oc_inbound_fail(res, 400, "bad_payload");
            return;
        }
        oc_event ev = {.type = OC_EV_REPLY,
                       .from = from,
                       .to = json_string_value(json_object_get(j, "to")),
                       .text = text,
                       .kind = "text",
                       .provider_id = json_string_value(json_object_get(j, "id")),
                       .in_reply_to = json_string_value(json_object_get(j, "in_reply_to"))};
        emit(ctx, &ev);
    }
    json_decref(j);
    res->status = 200;
    res->content_type = "application/json";
    oc_buf_puts(&res->body, "{}");
}

OC_CONNECTOR(webhook) = {
    OC_CONNECTOR_INIT,
    .type = "webhook",
    .description = "generic HTTP POST of a JSON body template, optionally HMAC-signed",
    .keys = hook_keys,
    .init = hook_init,
    .free = hook_free,
    .build = hook_build,
    .classify = hook_classify,
    .inbound = hook_inbound,
};
