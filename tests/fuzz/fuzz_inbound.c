/* libFuzzer: every inbound webhook path of the built-in connectors, with
 * their secrets configured so the signature code runs (issue 16 point 8).
 *
 * Input: byte 0 picks the connector (whatsapp, twilio, smtp, webhook), byte
 * 1 the request's shape, byte 2 the smtp timestamp's offset from now; the
 * rest is split at the first two '\n' into a header value, the query and
 * the body (all three the body when there are fewer).
 *   byte 1 bit 0: GET (else POST)      bit 1: sign right (the harness signs
 *   what it sends, so the parsers behind the check are reached)
 *   bit 2: no signature header at all  bit 3: smtp: the body is a JSON
 *   object the harness completes with timestamp/token/signature
 *   bit 4: the header value goes to every header name asked for
 *   bit 5: twilio: a JSON body signed through bodySHA256 in the query
 * Checked: a status in 100..599, an error code on >= 400, a replay key only
 * on a 2xx with a TTL >= 1 and printable, and every emitted event's strings
 * readable. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "registry.h"

#define N 4
static const char *const confs[N][16] = {
    {"phone_number_id", "1", "access_token", "t", "app_secret", "appsecret", "verify_token",
     "verifytoken", NULL},
    {"account_sid", "AC1", "auth_token", "authtoken", "from", "+15550000000", "public_url",
     "https://x.example/webhooks/sms", NULL},
    {"url", "smtp://127.0.0.1:25", "from", "a@b.example", "inbound_signing_key", "inboundkey",
     "unsubscribe_url", "https://x.example/webhooks/mail?t={{token}}", "return_path",
     "bounces+{{token}}@b.example", NULL},
    {"url", "http://127.0.0.1/", "signing_secret", "hooksecret", NULL},
};
static const char *const types[N] = {"whatsapp", "twilio", "smtp", "webhook"};
static const char *const sig_headers[N] = {"X-Hub-Signature-256", "X-Twilio-Signature", NULL,
                                           "X-Omnicast-Signature"};

typedef struct cfg {
    const oc_connector *impl;
    const char *const *kv;
} cfg;

static const char *get_nth(void *ctx, const char *key, size_t n)
{
    cfg *c = ctx;
    for (const char *const *p = c->kv; p[0]; p += 2)
        if (!strcmp(p[0], key) && n-- == 0)
            return p[1];
    return NULL;
}

static const char *get(void *ctx, const char *key)
{
    const char *v = get_nth(ctx, key, 0);
    if (v)
        return v;
    cfg *c = ctx;
    for (const oc_config_key *k = c->impl->keys; k->name; k++)
        if (!strcmp(k->name, key))
            return k->default_value;
    return NULL;
}

typedef struct hdrs {
    const char *sig_name; /* the connector's signature header */
    const char *sig;      /* its value, or NULL */
    const char *other;    /* any other header's value, or NULL */
} hdrs;

static const char *hdr(void *ctx, const char *name)
{
    hdrs *h = ctx;
    if (h->sig_name && !strcasecmp(name, h->sig_name))
        return h->sig;
    return h->other;
}

static void emit(void *ctx, const oc_event *ev)
{
    size_t *n = ctx;
    (*n)++;
    const char *s[] = {ev->from,        ev->to,    ev->text,  ev->kind, ev->provider_id,
                       ev->in_reply_to, ev->state, ev->error, ev->name, ev->payload};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        if (s[i])
            (void)strlen(s[i]);
    if (ev->type < OC_EV_REPLY || ev->type > OC_EV_COMPLAINT)
        abort();
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Twilio's form decoding, as the provider's side would sign it: NULL when
 * malformed (the connector answers 400 before the signature then) */
static char *form_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            o[k++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n || hexv(s[i + 1]) < 0 || hexv(s[i + 2]) < 0) {
                free(o);
                return NULL;
            }
            o[k++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    return o;
}

typedef struct kv {
    char *k, *v;
} kv;

/* base64 HMAC-SHA1(auth_token, public_url[?query] + sorted name+value);
 * json: the query carries bodySHA256 and no parameters are signed */
static void twilio_sign(const char *query, const char *body, size_t len, int json, char *out)
{
    kv ps[64];
    size_t n = 0;
    const char *p = body, *end = body + len;
    while (p < end && n < 64) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
        if (e > p) {
            const char *eq = memchr(p, '=', (size_t)(e - p)), *ne = eq ? eq : e;
            ps[n].k = form_decode(p, (size_t)(ne - p));
            ps[n].v = eq ? form_decode(eq + 1, (size_t)(e - eq - 1)) : strdup("");
            if (!ps[n].k || !ps[n].v) {
                free(ps[n].k);
                free(ps[n].v);
                break;
            }
            n++;
        }
        p = amp ? amp + 1 : end;
    }
    if (json) {
        for (size_t i = 0; i < n; i++) {
            free(ps[i].k);
            free(ps[i].v);
        }
        n = 0;
    }
    /* sorted by name, then value (Twilio's SDKs: a name may repeat) */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i;
             k > 0 && (strcmp(ps[k - 1].k, ps[k].k) > 0 ||
                       (!strcmp(ps[k - 1].k, ps[k].k) && strcmp(ps[k - 1].v, ps[k].v) > 0));
             k--) {
            kv t = ps[k];
            ps[k] = ps[k - 1];
            ps[k - 1] = t;
        }
    oc_buf d = {0};
    oc_buf_puts(&d, confs[1][7]);
    if (*query) {
        oc_buf_puts(&d, "?");
        oc_buf_puts(&d, query);
    }
    for (size_t i = 0; i < n; i++) {
        oc_buf_puts(&d, ps[i].k);
        oc_buf_puts(&d, ps[i].v);
        free(ps[i].k);
        free(ps[i].v);
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    HMAC(EVP_sha1(), confs[1][3], (int)strlen(confs[1][3]), (unsigned char *)(d.data ? d.data : ""),
         d.len, mac, &ml);
    oc_buf_free(&d);
    EVP_EncodeBlock((unsigned char *)out, mac, (int)ml);
}

/* the smtp body as an inbound-parse service would sign it: the fuzzed JSON
 * object with timestamp (now + offset), token (its own, or one) and the
 * right signature; NULL when the body is not a JSON object */
static char *smtp_signed(const char *body, size_t len, unsigned char off)
{
    static const long long offsets[] = {0,   1,    -1,      -299,        299,           -300,
                                        300, -301, 301,     -86400,      86400 * 365LL, -2,
                                        60,  -60,  1 << 30, -(1LL << 40)};
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    char ts[32];
    long long t = (long long)time(NULL) + offsets[off % 16];
    snprintf(ts, sizeof(ts), "%lld", t < 0 ? 0 : t);
    if (off & 0x80 && json_is_string(json_object_get(j, "timestamp")))
        snprintf(ts, sizeof(ts), "%.31s", json_string_value(json_object_get(j, "timestamp")));
    else
        json_object_set_new(j, "timestamp", json_string(ts));
    const char *tk = json_string_value(json_object_get(j, "token"));
    if (!tk) {
        json_object_set_new(j, "token",
                            json_string("e0b5477167110d68991efc6b9f89f0a11066af27834600e123"));
        tk = json_string_value(json_object_get(j, "token"));
    }
    oc_buf d = {0};
    oc_buf_puts(&d, ts);
    oc_buf_puts(&d, tk);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    HMAC(EVP_sha256(), confs[2][5], (int)strlen(confs[2][5]), (unsigned char *)d.data, d.len, mac,
         &ml);
    oc_buf_free(&d);
    char h[65];
    hex(mac, ml, h);
    json_object_set_new(j, "signature", json_string(h));
    char *out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void *inst[N];
    static cfg cfgs[N];
    if (!inst[0])
        for (int i = 0; i < N; i++) {
            cfgs[i].impl = registry_builtin(types[i]);
            cfgs[i].kv = confs[i];
            oc_config c = {.ctx = &cfgs[i], .name = "f", .get = get, .get_nth = get_nth};
            char err[256];
            if (!cfgs[i].impl || !cfgs[i].impl->inbound ||
                cfgs[i].impl->init(&c, &registry_host, &inst[i], err, sizeof(err)) < 0)
                abort();
        }
    if (size < 3)
        return 0;
    int which = data[0] % N;
    unsigned flags = data[1];
    unsigned char off = data[2];
    char *rest = malloc(size - 3 + 1);
    memcpy(rest, data + 3, size - 3);
    rest[size - 3] = '\0';
    size_t len = size - 3;
    char *q = memchr(rest, '\n', len);
    char *b = q ? memchr(q + 1, '\n', len - (size_t)(q + 1 - rest)) : NULL;
    const char *header = rest, *query = "", *body = rest;
    size_t blen = len;
    if (q && b) {
        *q = *b = '\0';
        query = q + 1;
        body = b + 1;
        blen = len - (size_t)(body - rest); /* binary: NULs kept in the body */
    }
    char *owned = NULL;
    if (which == 2 && (flags & 8)) {
        owned = smtp_signed(body, blen, off);
        if (owned) {
            body = owned;
            blen = strlen(owned);
        }
    }
    /* twilio, byte 1 bit 5: a JSON body, signed through bodySHA256 in the query */
    char *jq = NULL;
    if (which == 1 && (flags & 32)) {
        unsigned char hsh[32];
        char hx[65];
        SHA256((const unsigned char *)body, blen, hsh);
        hex(hsh, 32, hx);
        size_t ql = strlen(query) + 80;
        jq = malloc(ql);
        snprintf(jq, ql, "%s%sbodySHA256=%s", query, *query ? "&" : "", hx);
        query = jq;
    }
    char sig[128] = "";
    hdrs h = {.sig_name = sig_headers[which], .sig = header, .other = flags & 16 ? header : NULL};
    if (flags & 2) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned ml = 0;
        if (which == 0 || which == 3) {
            HMAC(EVP_sha256(), confs[which][which == 0 ? 5 : 3],
                 (int)strlen(confs[which][which == 0 ? 5 : 3]), (const unsigned char *)body, blen,
                 mac, &ml);
            strcpy(sig, "sha256=");
            hex(mac, ml, sig + 7);
        } else if (which == 1) {
            twilio_sign(query, body, blen, jq != NULL, sig);
        }
        h.sig = sig;
    }
    if (flags & 4)
        h.sig = NULL;
    const oc_connector *c = cfgs[which].impl;
    oc_http_request req = {.method = flags & 1 ? "GET" : "POST",
                           .path = "/webhooks/f",
                           .query = query,
                           .url = "https://x.example/webhooks/f",
                           .body = body,
                           .body_len = blen,
                           .header = hdr,
                           .header_ctx = &h};
    oc_inbound_result res;
    memset(&res, 0, sizeof(res));
    size_t n = 0;
    c->inbound(inst[which], &req, &res, emit, &n);
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_INBOUND_VERBOSE") != NULL;
    if (verbose) /* a seed's path: FUZZ_INBOUND_VERBOSE=1 fuzz_inbound FILE... */
        fprintf(stderr, "%s %s: %d %s, %zu events%s%s\n", types[which], req.method, res.status,
                res.error, n, res.replay_key[0] ? ", replay key " : "", res.replay_key);
    if (res.status < 100 || res.status > 599)
        abort();
    if (res.status >= 400 && !res.error[0])
        abort();
    if (res.status >= 400 && n)
        abort(); /* a refused request emits nothing */
    if (res.replay_key[0]) {
        if (res.status < 200 || res.status > 299 || res.replay_ttl_s < 1)
            abort();
        size_t kl = strnlen(res.replay_key, sizeof(res.replay_key));
        if (kl == sizeof(res.replay_key))
            abort();
        for (size_t i = 0; i < kl; i++)
            if ((unsigned char)res.replay_key[i] <= 0x20 ||
                (unsigned char)res.replay_key[i] >= 0x7f)
                abort();
    }
    oc_buf_free(&res.body);
    free(owned);
    free(jq);
    free(rest);
    return 0;
}
