/* Email over SMTP: builds an RFC 5322 message (UTF-8, RFC 2047 subjects,
 * quoted-printable multipart/alternative, one-click List-Unsubscribe) and
 * the envelope for libcurl's SMTP, with a VERP envelope sender under
 * return_path; classifies reply codes. Inbound: replies from an
 * inbound-parse service, RFC 8058 one-click unsubscribes, and bounces and
 * complaints (RFC 3464 / RFC 5965 reports as raw messages, Amazon SES
 * through SNS, Mailgun's event webhooks). A CR or LF from a job never
 * reaches a header. */
#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "omnicast/connector.h"
#include "omnicast/utf8.h"

typedef struct smtp {
    const oc_host *host;
    char *url;
    int tls; /* 0 none, 1 starttls, 2 implicit */
    char *userpwd;
    char *from_header; /* as configured: "Name <a@b>" or "a@b" */
    char *from_addr;   /* a@b */
    char *domain;      /* b, for Message-IDs */
    char *reply_to, *unsub_url, *unsub_mailto, *inbound_key;
    char *token_secret;   /* token_secret: tags unsubscribe and reply tokens */
    char *feedback_id;    /* feedback_id: Feedback-ID header template */
    char *basic_auth;     /* inbound_basic_auth: "user:password" of unsigned services */
    int inbound_unsigned; /* inbound_unsigned = true: JSON posts without a signing key */
    long long max_age_s;  /* inbound_max_age_s */
    char *return_path;    /* return_path: VERP envelope sender template ({{token}}) */
    EVP_PKEY *sns_key;    /* ses_sns_cert_file: the key of Amazon SNS's signing certificate */
} smtp;

#define TAG_BYTES 16 /* the token's tag: 128 bits of HMAC-SHA256, in hex */
#define TOKEN_SECRET_MIN 16

#define MAX_AGE_LIMIT_S 604800 /* a week: inbound_max_age_s above is refused */

static const oc_config_key smtp_keys[] = {
    {"url", OC_KEY_REQUIRED | OC_KEY_URL | OC_KEY_URL_SMTP, NULL,
     "smtp://host:587 (STARTTLS) or smtps://host:465"},
    {"tls", 0, "starttls", "starttls (required) or none (a local relay only)"},
    {"username", 0, NULL, "SMTP AUTH user"},
    {"password", OC_KEY_SECRET, NULL, "SMTP AUTH password"},
    {"from", OC_KEY_REQUIRED, NULL, "sender: \"Name <addr@domain>\" or addr@domain"},
    {"reply_to", 0, NULL, "Reply-To; {{token}} becomes a per-message reply token"},
    {"unsubscribe_url", OC_KEY_URL | OC_KEY_URL_HTTP, NULL,
     "https one-click unsubscribe URL template ({{token}})"},
    {"unsubscribe_mailto", 0, NULL, "mailto address for List-Unsubscribe"},
    {"inbound_signing_key", OC_KEY_SECRET, NULL, "HMAC key of the inbound-parse service"},
    {"inbound_basic_auth", OC_KEY_SECRET, NULL,
     "USER:PASSWORD a service that signs nothing (Postmark) sends as HTTP basic auth"},
    {"inbound_max_age_s", OC_KEY_INT, "300",
     "signed inbound posts older (or further ahead) than this are refused; 1-604800"},
    {"inbound_unsigned", 0, "false",
     "true: take inbound-parse posts without inbound_signing_key (tests, trusted networks)"},
    {"token_secret", OC_KEY_SECRET, NULL,
     "HMAC key (16+ bytes) tagging unsubscribe and reply+ tokens so they cannot be guessed"},
    {"unsubscribe_secret", OC_KEY_SECRET, NULL, "another name for token_secret"},
    {"feedback_id", 0, NULL,
     "Feedback-ID header template, e.g. {{campaign}}:{{channel}}:acme (Gmail's feedback loop)"},
    {"return_path", 0, NULL,
     "VERP envelope sender (MAIL FROM), e.g. bounces+{{token}}@acme.example; From stays"},
    {"ses_sns_cert_file", 0, NULL,
     "PEM of Amazon SNS's signing certificate (SigningCertURL): SES notifications are verified"},
    {NULL, 0, NULL, NULL},
};

static int has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

static void smtp_free(void *inst)
{
    smtp *s = inst;
    if (!s)
        return;
    free(s->url);
    if (s->userpwd)
        OPENSSL_cleanse(s->userpwd, strlen(s->userpwd));
    free(s->userpwd);
    free(s->from_header);
    free(s->from_addr);
    free(s->feedback_id);
    free(s->domain);
    free(s->reply_to);
    free(s->unsub_url);
    free(s->unsub_mailto);
    if (s->inbound_key)
        OPENSSL_cleanse(s->inbound_key, strlen(s->inbound_key));
    free(s->inbound_key);
    if (s->basic_auth)
        OPENSSL_cleanse(s->basic_auth, strlen(s->basic_auth));
    free(s->basic_auth);
    if (s->token_secret)
        OPENSSL_cleanse(s->token_secret, strlen(s->token_secret));
    free(s->token_secret);
    free(s->return_path);
    EVP_PKEY_free(s->sns_key);
    free(s);
}

static char *opt(const oc_config *cfg, const char *k)
{
    const char *v = cfg->get(cfg->ctx, k);
    return v && *v ? strdup(v) : NULL;
}

static int printable_ascii(const char *s);
static void encoded_words(oc_buf *b, const char *s);

/* The From header as sent: a display name that is not plain ASCII becomes
 * RFC 2047 encoded words ("Café Acme <news@acme.example>" ->
 * "=?UTF-8?B?Q2Fmw6kgQWNtZQ==?= <news@acme.example>"); a quoted one loses
 * its quotes first. NULL when nothing needs encoding. */
static char *encoded_from(const char *from, const char *addr)
{
    const char *lt = strchr(from, '<');
    if (!lt || printable_ascii(from))
        return NULL;
    const char *a = from, *e = lt;
    while (a < e && isspace((unsigned char)*a))
        a++;
    while (e > a && isspace((unsigned char)e[-1]))
        e--;
    if (e - a >= 2 && *a == '"' && e[-1] == '"') {
        a++;
        e--;
    }
    char *name = strndup(a, (size_t)(e - a));
    oc_buf b = {0};
    if (name && *name) {
        encoded_words(&b, name);
        oc_buf_puts(&b, " ");
    }
    oc_buf_puts(&b, "<");
    oc_buf_puts(&b, addr);
    oc_buf_puts(&b, ">");
    free(name);
    return b.data;
}

static int smtp_init(const oc_config *cfg, const oc_host *host, void **inst, char *err,
                     size_t err_len)
{
    const char *url = cfg->get(cfg->ctx, "url");
    const char *from = cfg->get(cfg->ctx, "from");
    const char *tls = cfg->get(cfg->ctx, "tls");
    if (!url || (strncmp(url, "smtp://", 7) && strncmp(url, "smtps://", 8))) {
        snprintf(err, err_len, "url must be smtp://host:port or smtps://host:port");
        return -1;
    }
    if (!from || has_crlf(from)) {
        snprintf(err, err_len, "from is required (one line)");
        return -1;
    }
    if (strcmp(tls, "starttls") && strcmp(tls, "none")) {
        snprintf(err, err_len, "tls must be starttls or none");
        return -1;
    }
    smtp *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->host = host;
    s->url = strdup(url);
    s->tls = !strncmp(url, "smtps://", 8) ? 2 : !strcmp(tls, "starttls") ? 1 : 0;
    const char *user = cfg->get(cfg->ctx, "username");
    const char *pass = cfg->get(cfg->ctx, "password");
    if (user && *user) {
        size_t n = strlen(user) + (pass ? strlen(pass) : 0) + 2;
        s->userpwd = malloc(n);
        snprintf(s->userpwd, n, "%s:%s", user, pass ? pass : "");
    }
    s->from_header = strdup(from);
    const char *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    s->from_addr = lt && gt ? strndup(lt + 1, (size_t)(gt - lt - 1)) : strdup(from);
    const char *at = strchr(s->from_addr, '@');
    if (!at || !at[1]) {
        snprintf(err, err_len, "from must contain an address with a domain");
        smtp_free(s);
        return -1;
    }
    s->domain = strdup(at + 1);
    char *enc = encoded_from(from, s->from_addr);
    if (enc) {
        free(s->from_header);
        s->from_header = enc;
    }
    s->feedback_id = opt(cfg, "feedback_id");
    if (has_crlf(s->feedback_id)) {
        snprintf(err, err_len, "feedback_id must be one line");
        smtp_free(s);
        return -1;
    }
    const char *age = cfg->get(cfg->ctx, "inbound_max_age_s");
    s->max_age_s = 300;
    if (age && *age) {
        long long v = 0;
        const char *p = age;
        for (; *p >= '0' && *p <= '9' && v <= MAX_AGE_LIMIT_S; p++)
            v = v * 10 + (*p - '0');
        if (*p || v < 1 || v > MAX_AGE_LIMIT_S) {
            snprintf(err, err_len, "inbound_max_age_s must be 1-%d (seconds)", MAX_AGE_LIMIT_S);
            smtp_free(s);
            return -1;
        }
        s->max_age_s = v;
    }
    s->reply_to = opt(cfg, "reply_to");
    s->unsub_url = opt(cfg, "unsubscribe_url");
    s->unsub_mailto = opt(cfg, "unsubscribe_mailto");
    s->inbound_key = opt(cfg, "inbound_signing_key");
    s->basic_auth = opt(cfg, "inbound_basic_auth");
    if (s->basic_auth && (!strchr(s->basic_auth, ':') || strlen(s->basic_auth) > 300)) {
        snprintf(err, err_len, "inbound_basic_auth must be USER:PASSWORD (at most 300 bytes)");
        smtp_free(s);
        return -1;
    }
    s->token_secret = opt(cfg, "token_secret");
    char *alias = opt(cfg, "unsubscribe_secret");
    if (alias && s->token_secret) {
        OPENSSL_cleanse(alias, strlen(alias));
        free(alias);
        snprintf(err, err_len, "give token_secret or unsubscribe_secret (the same key), not both");
        smtp_free(s);
        return -1;
    }
    if (alias)
        s->token_secret = alias;
    if (has_crlf(s->reply_to) || has_crlf(s->unsub_url) || has_crlf(s->unsub_mailto)) {
        snprintf(err, err_len, "header values must be one line");
        smtp_free(s);
        return -1;
    }
    const char *iu = cfg->get(cfg->ctx, "inbound_unsigned");
    if (iu && !strcmp(iu, "true")) {
        s->inbound_unsigned = 1;
    } else if (iu && strcmp(iu, "false")) {
        snprintf(err, err_len, "inbound_unsigned must be true or false");
        smtp_free(s);
        return -1;
    }
    s->return_path = opt(cfg, "return_path");
    if (s->return_path) {
        const char *ra = strrchr(s->return_path, '@');
        if (has_crlf(s->return_path) || !ra || !ra[1] || strpbrk(s->return_path, "<> \t\"") ||
            strlen(s->return_path) > 200) {
            snprintf(err, err_len, "return_path must be an address (local{{token}}@domain)");
            smtp_free(s);
            return -1;
        }
    }
    const char *cert = cfg->get(cfg->ctx, "ses_sns_cert_file");
    if (cert && *cert) {
        FILE *f = fopen(cert, "r");
        X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        s->sns_key = x ? X509_get_pubkey(x) : NULL;
        X509_free(x);
        if (!s->sns_key) {
            snprintf(err, err_len, "ses_sns_cert_file: no PEM certificate could be read");
            smtp_free(s);
            return -1;
        }
    }
    if (s->token_secret && strlen(s->token_secret) < TOKEN_SECRET_MIN) {
        snprintf(err, err_len, "token_secret must be at least %d bytes", TOKEN_SECRET_MIN);
        smtp_free(s);
        return -1;
    }
    int tokens = (s->unsub_url && strstr(s->unsub_url, "{{token}}")) ||
                 (s->reply_to && strstr(s->reply_to, "{{token}}")) ||
                 (s->return_path && strstr(s->return_path, "{{token}}"));
    if (tokens && !s->token_secret)
        host->log(OC_LOG_WARN,
                  "smtp connector %s: no token_secret: unsubscribe and reply tokens are bare "
                  "message ids, which can be guessed (set token_secret or token_secret_file)",
                  cfg->name ? cfg->name : "");
    if (!s->inbound_key && !s->inbound_unsigned && !s->basic_auth)
        host->log(OC_LOG_INFO,
                  "smtp connector %s: no inbound_signing_key: inbound-parse posts are refused "
                  "(403 unsigned_inbound_refused) unless inbound_unsigned = true",
                  cfg->name ? cfg->name : "");
    *inst = s;
    return 0;
}

static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* RFC 2047 B-encoded words of at most 75 characters, folded, never
 * splitting a UTF-8 sequence. */
static void encoded_words(oc_buf *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    int first = 1;
    while (i < n) {
        /* 75 - len("=?UTF-8?B?") - len("?=") = 63 base64 chars = 45 bytes max;
         * stay at 42 bytes (multiple of 3) for whole characters */
        size_t full = n - i < 42 ? n - i : 42, take = full;
        while (take < n - i && take > 0 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
            take--;
        if (take == 0) /* not UTF-8 at all: cut anywhere, but always advance */
            take = full;
        unsigned char enc[64];
        EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)take);
        if (!first)
            oc_buf_puts(b, "\r\n ");
        oc_buf_puts(b, "=?UTF-8?B?");
        oc_buf_puts(b, (const char *)enc);
        oc_buf_puts(b, "?=");
        first = 0;
        i += take;
    }
}

/* Quoted-printable (RFC 2045): CRLF line breaks kept as hard breaks, soft
 * breaks before 76 characters, '=' and non-ASCII and trailing space encoded. */
static void qp(oc_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\r' && p[1] == '\n') {
            p++;
            oc_buf_puts(b, "\r\n");
            col = 0;
            continue;
        }
        if (*p == '\n') {
            oc_buf_puts(b, "\r\n");
            col = 0;
            continue;
        }
        char e[3];
        size_t el;
        int at_eol = p[1] == '\0' || p[1] == '\n' || p[1] == '\r';
        if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !at_eol)) {
            e[0] = (char)*p;
            el = 1;
        } else {
            e[0] = '=';
            e[1] = hex[*p >> 4];
            e[2] = hex[*p & 15];
            el = 3;
        }
        if (col + el > 75) {
            oc_buf_puts(b, "=\r\n");
            col = 0;
        }
        oc_buf_append(b, e, el);
        col += el;
    }
}

static void header(oc_buf *b, const char *name, const char *value)
{
    oc_buf_puts(b, name);
    oc_buf_puts(b, ": ");
    oc_buf_puts(b, value);
    oc_buf_puts(b, "\r\n");
}

static void part(oc_buf *b, const char *type, const char *body)
{
    oc_buf_puts(b, "Content-Type: ");
    oc_buf_puts(b, type);
    oc_buf_puts(b, "; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    qp(b, body);
    oc_buf_puts(b, "\r\n");
}

/* A token safe for Message-IDs and reply addresses: [A-Za-z0-9._~-]
 * (the daemon's message ids already are) */
static void safe_token(const char *in, char *out, size_t len)
{
    size_t k = 0;
    for (; *in && k + 1 < len; in++)
        out[k++] = isalnum((unsigned char)*in) || strchr("._~-", *in) ? *in : '-';
    out[k] = '\0';
}

/* The tag of a message id: HMAC-SHA256(token_secret, "omnicast-token:" id),
 * its first TAG_BYTES in lowercase hex. 0, or -1 when HMAC fails. */
static int token_tag(const smtp *s, const char *id, size_t n, char hex[2 * TAG_BYTES + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    oc_buf d = {0};
    oc_buf_puts(&d, "omnicast-token:");
    oc_buf_append(&d, id, n);
    int ok = d.data &&
             HMAC(EVP_sha256(), s->token_secret, (int)strlen(s->token_secret),
                  (unsigned char *)d.data, d.len, mac, &ml) &&
             ml >= TAG_BYTES;
    oc_buf_free(&d);
    if (!ok)
        return -1;
    for (unsigned i = 0; i < TAG_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return 0;
}

/* The token put in List-Unsubscribe URLs and reply addresses: the message id,
 * and with token_secret ".TAG" after it (the id's own dots stay: the tag is
 * the fixed-length tail). */
static int public_token(const smtp *s, const char *token, char *out, size_t len)
{
    char tag[2 * TAG_BYTES + 1];
    if (!s->token_secret) {
        snprintf(out, len, "%s", token);
        return 0;
    }
    if (token_tag(s, token, strlen(token), tag) < 0)
        return -1;
    snprintf(out, len, "%s.%s", token, tag);
    return 0;
}

/* A token from outside (one-click query, reply+ address) back to the message
 * id it names: with token_secret only when its tag is right (constant-time
 * compare). 1 good (bare id in out), 0 refused. */
static int token_verify(const smtp *s, const char *tok, char *out, size_t len)
{
    size_t n = strlen(tok);
    if (!s->token_secret) {
        if (n == 0 || n >= len)
            return 0;
        memcpy(out, tok, n + 1);
        return 1;
    }
    if (n < 2 * TAG_BYTES + 2 || tok[n - 2 * TAG_BYTES - 1] != '.')
        return 0;
    size_t idn = n - 2 * TAG_BYTES - 1;
    char tag[2 * TAG_BYTES + 1];
    if (idn >= len || token_tag(s, tok, idn, tag) < 0 ||
        CRYPTO_memcmp(tag, tok + idn + 1, 2 * TAG_BYTES))
        return 0;
    memcpy(out, tok, idn);
    out[idn] = '\0';
    return 1;
}

static int render_token(smtp *s, const char *tmpl, const char *token, oc_buf *out)
{
    /* {{token}} only: the rest of the template is taken literally */
    const char *p = strstr(tmpl, "{{token}}");
    if (!p)
        return oc_buf_puts(out, tmpl);
    (void)s;
    oc_buf_append(out, tmpl, (size_t)(p - tmpl));
    oc_buf_puts(out, token);
    return oc_buf_puts(out, p + 9);
}

static int smtp_build(void *inst, const oc_message *m, oc_request *req, oc_outcome *out)
{
    smtp *s = inst;
    if ((!m->text || !*m->text) && (!m->html || !*m->html)) {
        oc_outcome_set(out, OC_FAILED, "no_content", "email needs text or html");
        return -1;
    }
    if (has_crlf(m->subject) || has_crlf(m->to)) {
        oc_outcome_set(out, OC_FAILED, "header_injection", "CR or LF in a header value");
        return -1;
    }
    if (strlen(m->to) > 254) {
        /* RFC 5321's path limit; the daemon's normalization never passes
         * one, but a plugin host or a hand-built message might */
        oc_outcome_set(out, OC_FAILED, "invalid_address", "recipient address too long");
        return -1;
    }
    if (oc_utf8_class(m->to, strlen(m->to)) < 0) { /* SMTPUTF8 carries UTF-8 only */
        oc_outcome_set(out, OC_FAILED, "invalid_address", "recipient address is not UTF-8");
        return -1;
    }
    char token[200], ptoken[240];
    safe_token(m->message_id, token, sizeof(token));
    if (public_token(s, token, ptoken, sizeof(ptoken)) < 0) {
        oc_outcome_set(out, OC_FAILED, "internal", "HMAC-SHA256 is not available");
        return -1;
    }
    oc_buf *b = &req->body;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    header(b, "Date", date);
    char mid[300];
    snprintf(mid, sizeof(mid), "<%s@%s>", token, s->domain);
    header(b, "Message-ID", mid);
    header(b, "From", s->from_header);
    header(b, "To", m->to);
    if (m->subject && *m->subject) {
        oc_buf_puts(b, "Subject: ");
        if (printable_ascii(m->subject) && strlen(m->subject) <= 900)
            oc_buf_puts(b, m->subject);
        else
            encoded_words(b, m->subject);
        oc_buf_puts(b, "\r\n");
    }
    if (s->feedback_id) {
        /* Gmail's feedback loop groups complaints by these fields */
        oc_buf fb = {0};
        char missing[64];
        if (s->host->render(s->feedback_id, m, OC_ESCAPE_NONE, &fb, missing, sizeof(missing)) < 0 ||
            has_crlf(fb.data)) {
            oc_buf_free(&fb);
            oc_outcome_set(out, OC_FAILED, "feedback_id", "feedback_id did not render");
            return -1;
        }
        if (fb.data && *fb.data)
            header(b, "Feedback-ID", fb.data);
        oc_buf_free(&fb);
    }
    if (s->reply_to) {
        oc_buf rt = {0};
        render_token(s, s->reply_to, ptoken, &rt);
        header(b, "Reply-To", rt.data);
        oc_buf_free(&rt);
    }
    if (s->unsub_url || s->unsub_mailto) {
        oc_buf lu = {0};
        if (s->unsub_url) {
            oc_buf_puts(&lu, "<");
            render_token(s, s->unsub_url, ptoken, &lu);
            oc_buf_puts(&lu, ">");
        }
        if (s->unsub_mailto) {
            oc_buf_puts(&lu, lu.len ? ", <mailto:" : "<mailto:");
            oc_buf_puts(&lu, s->unsub_mailto);
            oc_buf_puts(&lu, "?subject=unsubscribe>");
        }
        header(b, "List-Unsubscribe", lu.data);
        oc_buf_free(&lu);
        if (s->unsub_url)
            header(b, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
    }
    header(b, "MIME-Version", "1.0");
    int both = m->text && *m->text && m->html && *m->html;
    if (both) {
        unsigned char rnd[12];
        RAND_bytes(rnd, sizeof(rnd));
        char boundary[64] = "=_omnicast_";
        for (int i = 0; i < 12; i++)
            sprintf(boundary + 11 + 2 * i, "%02x", rnd[i]);
        /* "=_" cannot occur in quoted-printable output, so the boundary
         * never appears inside a part */
        oc_buf_puts(b, "Content-Type: multipart/alternative; boundary=\"");
        oc_buf_puts(b, boundary);
        oc_buf_puts(b, "\"\r\n\r\n");
        oc_buf_puts(b, "--");
        oc_buf_puts(b, boundary);
        oc_buf_puts(b, "\r\n");
        part(b, "text/plain", m->text);
        oc_buf_puts(b, "--");
        oc_buf_puts(b, boundary);
        oc_buf_puts(b, "\r\n");
        part(b, "text/html", m->html);
        oc_buf_puts(b, "--");
        oc_buf_puts(b, boundary);
        oc_buf_puts(b, "--\r\n");
    } else {
        part(b, m->text && *m->text ? "text/plain" : "text/html",
             m->text && *m->text ? m->text : m->html);
    }
    req->kind = OC_REQ_SMTP;
    req->url = strdup(s->url);
    req->smtp_tls = s->tls;
    if (s->userpwd)
        req->userpwd = strdup(s->userpwd);
    /* the envelope sender: bounces go there (VERP: the token names the
     * message), the From header stays */
    oc_buf env = {0};
    oc_buf_puts(&env, "<");
    if (s->return_path)
        render_token(s, s->return_path, ptoken, &env);
    else
        oc_buf_puts(&env, s->from_addr);
    oc_buf_puts(&env, ">");
    req->mail_from = env.data;
    size_t tl = strlen(m->to) + 3;
    req->mail_rcpt = malloc(tl);
    snprintf(req->mail_rcpt, tl, "<%s>", m->to);
    return 0;
}

/* The enhanced status code of an SMTP reply line (RFC 3463: "550 5.1.1
 * ..."): class, subject and detail, or 0 when the line carries none. */
static int enhanced_code(const char *line, int *cls, int *subj, int *det)
{
    if (!line || strlen(line) < 4 || !isdigit((unsigned char)line[0]) ||
        (line[3] != ' ' && line[3] != '-'))
        return 0;
    const char *p = line + 4;
    while (*p == ' ')
        p++;
    int v[3];
    for (int i = 0; i < 3; i++) {
        int n = 0, d = 0;
        while (isdigit((unsigned char)*p) && d < 4) {
            n = n * 10 + (*p++ - '0');
            d++;
        }
        if (!d || d > (i ? 3 : 1) || (i < 2 && *p++ != '.'))
            return 0;
        v[i] = n;
    }
    if ((*p && *p != ' ') || (v[0] != 2 && v[0] != 4 && v[0] != 5) || line[0] - '0' != v[0])
        return 0;
    *cls = v[0];
    *subj = v[1];
    *det = v[2];
    return 1;
}

static void smtp_classify(void *inst, const oc_response *resp, oc_outcome *out)
{
    (void)inst;
    long c = resp->status;
    oc_outcome_set(out, OC_FAILED, "rejected", NULL);
    if (resp->body && *resp->body)
        snprintf(out->detail, sizeof(out->detail), "%s", resp->body); /* the server's words */
    else
        snprintf(out->detail, sizeof(out->detail), "SMTP %ld", c);
    if (c >= 200 && c < 300) {
        /* the provider id is the Message-ID the daemon derives from our
         * message id; there is nothing to read back here */
        oc_outcome_set(out, OC_SENT, NULL, NULL);
        return;
    }
    int cls = 0, subj = 0, det = 0;
    int enh = enhanced_code(resp->body, &cls, &subj, &det);
    if (c >= 400 && c < 500) {
        out->kind = OC_RETRY;
        snprintf(out->reason, sizeof(out->reason), "smtp_4xx");
        if (enh && subj == 7) {
            /* 4.7.x: the receiver limits us (Gmail's 421 4.7.28 rate limit,
             * 450 4.7.x policy greylisting): the whole connector slows */
            out->throttle = 1;
            snprintf(out->reason, sizeof(out->reason), "throttled");
        }
        return;
    }
    if (c >= 500) {
        const char *r = c == 550 || c == 551 || c == 553 ? "invalid_recipient" : "rejected";
        int halt = c == 530 || c == 535, sender = 0; /* 530, 535: the login is refused */
        if (enh && subj == 1 && (det == 1 || det == 2 || det == 3 || det == 6 || det == 10)) {
            /* no such mailbox or domain, bad syntax, moved, null MX: the
             * address can never take mail, so it is suppressed (outcome.lua) */
            r = "invalid_mailbox";
        } else if (enh && subj == 1) {
            r = "rejected"; /* 5.1.7, 5.1.8: our own sender address */
        } else if (enh && subj == 7 && det >= 20 && det <= 27) {
            r = "sender_authentication"; /* RFC 7372: DKIM, SPF, reverse DNS, DMARC */
            halt = sender = 1;
        } else if (enh && subj == 7 && det == 8) {
            halt = 1; /* 535 5.7.8: authentication credentials invalid */
        }
        if (halt && !sender)
            r = "auth";
        snprintf(out->reason, sizeof(out->reason), "%s", r);
        /* every message of this sender or this login is refused the same
         * way: halt instead of failing the campaign one by one */
        if (halt)
            out->kind = OC_HALT;
        return;
    }
    /* the daemon hands over only answers: a reply code outside 2xx-5xx is
     * not one a server may end a transaction with */
    snprintf(out->reason, sizeof(out->reason), "bad_reply");
}

/* "Ana <Ana@Example.COM>" -> "Ana@example.com" */
static void bare_address(const char *in, char *out, size_t len)
{
    const char *lt = strrchr(in, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    size_t n = lt && gt ? (size_t)(gt - lt - 1) : strlen(in);
    const char *s = lt && gt ? lt + 1 : in;
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    char *at = strchr(out, '@');
    for (char *p = at; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

static void strip_angles(const char *in, char *out, size_t len)
{
    const char *lt = strchr(in, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt)
        snprintf(out, len, "%.*s", (int)(gt - lt - 1), lt + 1);
    else
        snprintf(out, len, "%s", in);
}

/* A unix timestamp as the provider sent it: 1-12 decimal digits, nothing
 * else (no sign, no space, no overflow); -1 otherwise. */
static long long parse_timestamp(const char *ts)
{
    long long v = 0;
    size_t n = 0;
    for (; ts[n]; n++) {
        if (ts[n] < '0' || ts[n] > '9' || n >= 12)
            return -1;
        v = v * 10 + (ts[n] - '0');
    }
    return n ? v : -1;
}

static long long now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec;
}

/* The inbound-parse signature: HMAC-SHA256(key, timestamp + token) in
 * lowercase hex, as Mailgun signs. It covers neither the sender nor the
 * text, so a valid one is also checked for age (inbound_max_age_s either
 * way) and its token handed to the host (res->replay_key), which accepts a
 * token once: a captured signature cannot carry another post. NULL when
 * good, else the error code. */
static const char *check_signature(smtp *s, json_t *j, oc_inbound_result *res)
{
    json_t *jts = json_object_get(j, "timestamp");
    const char *tk = json_string_value(json_object_get(j, "token"));
    const char *sig = json_string_value(json_object_get(j, "signature"));
    char tsbuf[24];
    const char *ts = json_string_value(jts);
    if (!ts && json_is_integer(jts) && json_integer_value(jts) >= 0) {
        snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)json_integer_value(jts));
        ts = tsbuf;
    }
    if (!ts || !tk || !sig || strlen(sig) != 64)
        return "bad_signature";
    oc_buf d = {0};
    oc_buf_puts(&d, ts);
    oc_buf_puts(&d, tk);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    int ok = d.data &&
             HMAC(EVP_sha256(), s->inbound_key, (int)strlen(s->inbound_key),
                  (unsigned char *)d.data, d.len, mac, &ml) &&
             ml == 32;
    oc_buf_free(&d);
    if (!ok)
        return "bad_signature";
    char hex[65];
    for (unsigned i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", mac[i]);
    if (CRYPTO_memcmp(hex, sig, 64))
        return "bad_signature";
    long long t = parse_timestamp(ts), now = now_s();
    if (t < 0 || t < now - s->max_age_s || t > now + s->max_age_s)
        return "stale_signature";
    /* the token becomes part of a Redis key: printable, no spaces, bounded
     * (Mailgun's are 50 characters) */
    size_t n = strlen(tk);
    if (n == 0 || n >= sizeof(res->replay_key))
        return "bad_token";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)tk[i] <= 0x20 || (unsigned char)tk[i] >= 0x7f)
            return "bad_token";
    memcpy(res->replay_key, tk, n + 1);
    /* remembered until the timestamp itself goes stale, plus a second */
    res->replay_ttl_s = (long)(t + s->max_age_s - now + 1);
    if (res->replay_ttl_s < 1)
        res->replay_ttl_s = 1;
    return NULL;
}

/* The ?t= token of an unsubscribe request, made safe; 0 when absent. */
static int query_token(const oc_http_request *req, char *tok, size_t len)
{
    const char *q = req->query ? strstr(req->query, "t=") : NULL;
    while (q && q != req->query && q[-1] != '&')
        q = strstr(q + 2, "t=");
    if (!q)
        return 0;
    size_t n = strcspn(q + 2, "&");
    if (n == 0 || n >= len)
        return 0;
    safe_token(q + 2, tok, n + 1);
    return 1;
}

/* A little page for a person who opened the unsubscribe link: a GET never
 * unsubscribes (mail scanners and link previews follow links), the button
 * posts the one-click form to the same URL. The token is [A-Za-z0-9._~-]
 * (safe_token), so it needs no escaping in the attribute. */
static void page(oc_inbound_result *res, int status, const char *title, const char *text,
                 const char *tok)
{
    res->status = status;
    res->content_type = "text/html; charset=utf-8";
    /* a refusal still carries its stable code (the host logs and counts it) */
    if (status == 400)
        snprintf(res->error, sizeof(res->error), "missing_token");
    else if (status == 403)
        snprintf(res->error, sizeof(res->error), "bad_token");
    oc_buf *b = &res->body;
    oc_buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                   "<meta name=\"robots\" content=\"noindex\"><title>");
    oc_buf_puts(b, title);
    oc_buf_puts(b, "</title></head>\n<body style=\"font-family:sans-serif;max-width:32em;"
                   "margin:3em auto;padding:0 1em\"><h1>");
    oc_buf_puts(b, title);
    oc_buf_puts(b, "</h1>\n<p>");
    oc_buf_puts(b, text);
    oc_buf_puts(b, "</p>\n");
    if (tok) {
        oc_buf_puts(b, "<form method=\"post\" action=\"?t=");
        oc_buf_puts(b, tok);
        oc_buf_puts(b, "\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                       "<input type=\"hidden\" name=\"via\" value=\"page\">"
                       "<button type=\"submit\">Unsubscribe</button></form>\n");
    }
    oc_buf_puts(b, "</body></html>\n");
}

/* Case-insensitive search for needle in the n bytes at hay. */
static const char *find_ci(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (!strncasecmp(hay + i, needle, k))
            return hay + i;
    return NULL;
}

static const char *find_mem(const char *hay, size_t n, const char *needle, size_t k)
{
    for (size_t i = 0; k && k <= n && i <= n - k; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, k))
            return hay + i;
    return NULL;
}

/* %XX and '+' decoded, n bytes of s, as a new string. */
static char *url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
                   isxdigit((unsigned char)s[i + 2])) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            *o++ = (char)strtol(h, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

#define FORM_FIELDS_MAX 512

/* A form POST as a JSON object of strings, the first value of each name:
 * application/x-www-form-urlencoded (also when no Content-Type is given), or
 * multipart/form-data (RFC 7578: the delimiter is "--" and the boundary; the
 * bare boundary, as RFC 8058's § 8.3 example prints it, is taken too).
 * Parts with a filename (attachments) are skipped. NULL when the body is
 * neither. */
static json_t *form_fields(const oc_http_request *req)
{
    const char *ct = req->header ? req->header(req->header_ctx, "Content-Type") : NULL;
    const char *body = req->body;
    size_t n = req->body_len, count = 0;
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (!ct || !strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        while (n && strchr("\r\n \t", body[n - 1]))
            n--;
        for (size_t at = 0; at < n && count < FORM_FIELDS_MAX; count++) {
            const char *amp = memchr(body + at, '&', n - at);
            size_t len = amp ? (size_t)(amp - body - at) : n - at;
            const char *eq = memchr(body + at, '=', len);
            char *k = url_decode(body + at, eq ? (size_t)(eq - body - at) : len);
            char *v = eq ? url_decode(eq + 1, (size_t)(body + at + len - eq - 1)) : strdup("");
            if (k && v && *k && !json_object_get(o, k))
                json_object_set_new(o, k, json_string(v)); /* NULL (not UTF-8): not set */
            free(k);
            free(v);
            at += len + 1;
        }
        return o;
    }
    if (strncasecmp(ct, "multipart/form-data", 19)) {
        json_decref(o);
        return NULL;
    }
    const char *bp = find_ci(ct, strlen(ct), "boundary=");
    char bound[80];
    size_t bl = 0;
    if (bp) {
        bp += 9;
        int quoted = *bp == '"';
        for (bp += quoted; *bp && bl + 1 < sizeof(bound); bp++) {
            if (quoted ? *bp == '"' : (*bp == ';' || *bp == ' ' || *bp == '\t'))
                break;
            bound[bl++] = *bp;
        }
    }
    bound[bl] = '\0';
    if (!bl || bl > 70) {
        json_decref(o);
        return NULL;
    }
    char delim[84];
    snprintf(delim, sizeof(delim), "--%s", bound);
    const char *d = find_mem(body, n, delim, strlen(delim)) ? delim : bound;
    size_t dl = strlen(d);
    const char *end = body + n;
    for (const char *p = find_mem(body, n, d, dl); p && count < FORM_FIELDS_MAX; count++) {
        const char *part = p + dl;
        if (end - part >= 2 && !memcmp(part, "--", 2))
            break; /* the closing delimiter */
        const char *next = find_mem(part, (size_t)(end - part), d, dl);
        const char *stop = next ? next : end;
        const char *he = find_mem(part, (size_t)(stop - part), "\r\n\r\n", 4);
        if (he) {
            const char *v = he + 4, *ve = stop;
            /* the CRLF before the next delimiter belongs to it */
            if (ve - v >= 2 && ve[-2] == '\r' && ve[-1] == '\n')
                ve -= 2;
            size_t hl = (size_t)(he - part);
            const char *cd = find_ci(part, hl, "content-disposition:");
            const char *nm = cd ? find_ci(cd, (size_t)(he - cd), "name=\"") : NULL;
            if (nm && (nm == cd || nm[-1] == ' ' || nm[-1] == ';') &&
                !find_ci(cd, (size_t)(he - cd), "filename=")) {
                nm += 6;
                const char *q = memchr(nm, '"', (size_t)(he - nm));
                if (q) {
                    char *k = strndup(nm, (size_t)(q - nm));
                    char *val = strndup(v, (size_t)(ve - v));
                    if (k && val && *k && !json_object_get(o, k))
                        json_object_set_new(o, k, json_string(val));
                    free(k);
                    free(val);
                }
            }
        }
        p = next;
    }
    return o;
}

/* Whether a POST body says List-Unsubscribe=One-Click (RFC 8058 § 3.2), as
 * a urlencoded or multipart form; *via is set when the form came from our
 * page (a person, not a mail client). */
static int one_click(const oc_http_request *req, int *via)
{
    json_t *f = form_fields(req);
    const char *v = json_string_value(json_object_get(f, "List-Unsubscribe"));
    int yes = v && !strcmp(v, "One-Click");
    const char *w = json_string_value(json_object_get(f, "via"));
    *via = w && !strcmp(w, "page");
    json_decref(f);
    return yes;
}

/* The value of a header in Postmark's "Headers": [{"Name","Value"}] or
 * Mailgun's "message-headers" (a JSON string of [name, value] pairs). */
static const char *list_header(json_t *list, const char *name)
{
    size_t i;
    json_t *h;
    json_array_foreach(list, i, h)
    {
        const char *k = json_is_array(h) ? json_string_value(json_array_get(h, 0))
                                         : json_string_value(json_object_get(h, "Name"));
        if (k && !strcasecmp(k, name))
            return json_is_array(h) ? json_string_value(json_array_get(h, 1))
                                    : json_string_value(json_object_get(h, "Value"));
    }
    return NULL;
}

static void put_str(json_t *o, const char *k, const char *v)
{
    if (v && !json_object_get(o, k))
        json_object_set_new(o, k, json_string(v));
}

/* The inbound-parse services' own formats, in our field names (from, to,
 * text, stripped_text, message_id, in_reply_to; timestamp, token and
 * signature stay): Mailgun routes (form fields "sender", "recipient",
 * "body-plain", "stripped-text", "Message-Id", "In-Reply-To",
 * "message-headers") and Postmark's inbound JSON (PascalCase "FromFull",
 * "OriginalRecipient", "TextBody", "StrippedTextReply", "Headers").
 * Our own JSON passes unchanged. Returns the format's name. */
static const char *normalize_inbound(json_t *j)
{
    if (json_object_get(j, "FromFull") || json_object_get(j, "TextBody") ||
        json_object_get(j, "StrippedTextReply")) {
        json_t *hs = json_object_get(j, "Headers");
        put_str(j, "from",
                json_string_value(json_object_get(json_object_get(j, "FromFull"), "Email")));
        put_str(j, "from", json_string_value(json_object_get(j, "From")));
        put_str(j, "to", json_string_value(json_object_get(j, "OriginalRecipient")));
        put_str(j, "to",
                json_string_value(
                    json_object_get(json_array_get(json_object_get(j, "ToFull"), 0), "Email")));
        put_str(j, "to", json_string_value(json_object_get(j, "To")));
        const char *sr = json_string_value(json_object_get(j, "StrippedTextReply"));
        if (sr && *sr)
            put_str(j, "stripped_text", sr);
        put_str(j, "text", json_string_value(json_object_get(j, "TextBody")));
        put_str(j, "message_id", list_header(hs, "Message-ID"));
        put_str(j, "message_id", json_string_value(json_object_get(j, "MessageID")));
        put_str(j, "in_reply_to", list_header(hs, "In-Reply-To"));
        put_str(j, "subject", json_string_value(json_object_get(j, "Subject")));
        return "postmark";
    }
    if (json_object_get(j, "body-plain") || json_object_get(j, "stripped-text") ||
        json_object_get(j, "recipient")) {
        json_error_t je;
        const char *mh = json_string_value(json_object_get(j, "message-headers"));
        json_t *hs = mh ? json_loads(mh, 0, &je) : NULL;
        put_str(j, "from", json_string_value(json_object_get(j, "From")));
        put_str(j, "from", json_string_value(json_object_get(j, "sender")));
        put_str(j, "to", json_string_value(json_object_get(j, "recipient")));
        put_str(j, "to", json_string_value(json_object_get(j, "To")));
        const char *st = json_string_value(json_object_get(j, "stripped-text"));
        if (st && *st)
            put_str(j, "stripped_text", st);
        put_str(j, "text", json_string_value(json_object_get(j, "body-plain")));
        put_str(j, "message_id", json_string_value(json_object_get(j, "Message-Id")));
        put_str(j, "message_id", list_header(hs, "Message-Id"));
        put_str(j, "in_reply_to", json_string_value(json_object_get(j, "In-Reply-To")));
        put_str(j, "in_reply_to", list_header(hs, "In-Reply-To"));
        json_decref(hs);
        return "mailgun";
    }
    return "json";
}

/* inbound_basic_auth: the Authorization header of a service that signs
 * nothing and calls https://USER:PASSWORD@host/... (Postmark) */
static int basic_auth_ok(const smtp *s, const oc_http_request *req)
{
    const char *h = req->header ? req->header(req->header_ctx, "Authorization") : NULL;
    if (!s->basic_auth || !h || strncasecmp(h, "Basic ", 6))
        return 0;
    size_t n = strlen(s->basic_auth);
    unsigned char want[512];
    if (4 * ((n + 2) / 3) + 1 > sizeof(want))
        return 0;
    int wl = EVP_EncodeBlock(want, (const unsigned char *)s->basic_auth, (int)n);
    const char *got = h + 6;
    while (*got == ' ')
        got++;
    size_t gl = strlen(got);
    while (gl && got[gl - 1] == ' ')
        gl--;
    return (size_t)wl == gl && !CRYPTO_memcmp(want, got, gl);
}

/* ---- bounces and complaints: RFC 3464 DSNs and RFC 5965 ARF reports as raw
 * messages, Amazon SES through SNS, Mailgun's event webhooks */

#define REPORT_EVENTS_MAX 64 /* events one report may emit */

/* One line of [p, end): its end without CR/LF in *le, the next line returned. */
static const char *next_line(const char *p, const char *end, const char **le)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    *le = e > p && e[-1] == '\r' ? e - 1 : e;
    return nl ? nl + 1 : end;
}

/* The end of the header block (or field group) at p: the blank line or end;
 * *after is where the text after the blank line starts. */
static const char *block_end(const char *p, const char *end, const char **after)
{
    while (p < end) {
        const char *le, *n = next_line(p, end, &le);
        if (le == p) {
            *after = n;
            return p;
        }
        p = n;
    }
    *after = end;
    return end;
}

/* Field `name` of the header block [p, end): unfolded, runs of white space
 * as one space, trimmed, at most len - 1 bytes. 1 when present. */
static int field(const char *p, const char *end, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    while (p < end) {
        const char *le, *n = next_line(p, end, &le);
        if ((size_t)(le - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
            size_t k = 0;
            int sp = 1; /* drops leading space */
            const char *v = p + nl + 1;
            for (;;) {
                for (; v < le; v++) {
                    int w = *v == ' ' || *v == '\t';
                    if (w && sp)
                        continue;
                    sp = w;
                    if (k + 1 < len)
                        out[k++] = w ? ' ' : *v;
                }
                if (n < end && (*n == ' ' || *n == '\t')) { /* folded */
                    v = n;
                    n = next_line(n, end, &le);
                    if (!sp && k + 1 < len) {
                        out[k++] = ' ';
                        sp = 1;
                    }
                    continue;
                }
                break;
            }
            while (k && out[k - 1] == ' ')
                k--;
            out[k] = '\0';
            return 1;
        }
        p = n;
    }
    return 0;
}

/* A MIME parameter (boundary, report-type) of a Content-Type value. */
static int mime_param(const char *ct, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name), k = 0;
    for (const char *p = strchr(ct, ';'); p; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncasecmp(q, name, nl) || q[nl] != '=')
            continue;
        q += nl + 1;
        int quoted = *q == '"';
        for (q += quoted; *q && k + 1 < len; q++) {
            if (quoted ? *q == '"' : (*q == ';' || *q == ' ' || *q == '\t'))
                break;
            out[k++] = *q;
        }
        out[k] = '\0';
        return k > 0;
    }
    return 0;
}

/* The address of "rfc822;a@b", "<a@b>" or "Name <a@b>", lowercased domain. */
static void report_address(const char *v, char *out, size_t len)
{
    const char *semi = strchr(v, ';');
    if (semi && !strchr(v, '<'))
        v = semi + 1;
    bare_address(v, out, len);
}

/* A VERP token in an address made from return_path: what stands where the
 * template has {{token}} (bounces+TOKEN@acme.example), the rest matching
 * the template (case-insensitive). 1 found (in tok); 0 for any other
 * address (an FBL mailbox with its own '+' tag is not a forged token). */
static int verp_token(const smtp *s, const char *addr, char *tok, size_t len)
{
    const char *t = s->return_path ? strstr(s->return_path, "{{token}}") : NULL;
    if (!t)
        return 0;
    char a[256];
    bare_address(addr, a, sizeof(a));
    size_t pre = (size_t)(t - s->return_path), suf = strlen(t + 9), n = strlen(a);
    if (n <= pre + suf || strncasecmp(a, s->return_path, pre) || strcasecmp(a + n - suf, t + 9) ||
        n - pre - suf >= len)
        return 0;
    safe_token(a + pre, tok, n - pre - suf + 1);
    return 1;
}

/* Our message named by a returned Message-ID "<MSGID@our.domain>": the id as
 * a provider id "MSGID@domain" (the host's lookup takes the part before
 * '@'), 0 when the id is not one of ours. */
static int our_message_id(const smtp *s, const char *v, char *pid, size_t len)
{
    char m[300], tok[240];
    strip_angles(v, m, sizeof(m));
    const char *at = strrchr(m, '@');
    if (!at || at == m || strcasecmp(at + 1, s->domain) || (size_t)(at - m) >= sizeof(tok))
        return 0;
    safe_token(m, tok, (size_t)(at - m) + 1);
    if (strncmp(tok, m, (size_t)(at - m)))
        return 0; /* characters our ids never have */
    snprintf(pid, len, "%s@%s", tok, s->domain);
    return 1;
}

typedef struct report {
    char pid[300]; /* attribution: "token:MSGID" or "MSGID@domain", "" none */
    int forged;    /* a VERP token was there and its tag is wrong */
} report;

/* Attribution through a VERP token in addr (only one whose tag verifies). */
static void attribute_token(const smtp *s, report *r, const char *addr)
{
    char tok[240], bare[240];
    if (!addr || r->forged || !strncmp(r->pid, "token:", 6) ||
        !verp_token(s, addr, tok, sizeof(tok)))
        return;
    if (token_verify(s, tok, bare, sizeof(bare)))
        snprintf(r->pid, sizeof(r->pid), "token:%s", bare);
    else
        r->forged = 1;
}

static void emit_report(oc_emit_fn emit, void *ctx, const report *r, oc_event_type type,
                        const char *addr, const char *state, const char *error, const char *kind,
                        int *n)
{
    if (!r->pid[0] || r->forged || *n >= REPORT_EVENTS_MAX)
        return;
    oc_event ev = {.type = type,
                   .from = addr && *addr ? addr : NULL,
                   .provider_id = r->pid,
                   .state = state,
                   .error = error && *error ? error : NULL,
                   .kind = kind};
    emit(ctx, &ev);
    (*n)++;
}

/* One DSN recipient group: hard = Action failed with a 5.x.x Status, soft =
 * 4.x.x or delayed; delivered, relayed and expanded say nothing. */
static void dsn_recipient(oc_emit_fn emit, void *ctx, const report *r, const char *p, const char *e,
                          int *n)
{
    char action[64] = "", status[64] = "", diag[200] = "", fr[300] = "", addr[256] = "";
    field(p, e, "Action", action, sizeof(action));
    field(p, e, "Status", status, sizeof(status));
    field(p, e, "Diagnostic-Code", diag, sizeof(diag));
    if (!field(p, e, "Final-Recipient", fr, sizeof(fr)))
        field(p, e, "Original-Recipient", fr, sizeof(fr));
    if (fr[0])
        report_address(fr, addr, sizeof(addr));
    const char *state;
    if (!strcasecmp(action, "failed"))
        state = status[0] == '4' ? "soft" : "hard";
    else if (!strcasecmp(action, "delayed"))
        state = "soft";
    else
        return;
    char err[280];
    snprintf(err, sizeof(err), "%s%s%s", status, status[0] && diag[0] ? " " : "", diag);
    emit_report(emit, ctx, r, OC_EV_BOUNCE, addr, state, err, "dsn", n);
}

/* A raw message that may be a report (multipart/report; report-type
 * delivery-status or feedback-report): its events emitted, attributed
 * through the VERP token of envelope_to, the report's To or the ARF
 * Original-Mail-From, else the returned Message-ID. The number emitted, or
 * -1 when the message is no report. */
static int parse_report(const smtp *s, const char *raw, size_t n, const char *envelope_to,
                        oc_emit_fn emit, void *ctx)
{
    const char *end = raw + n, *body;
    const char *he = block_end(raw, end, &body);
    char ct[400], rtype[64], bound[80], v[300];
    if (!field(raw, he, "Content-Type", ct, sizeof(ct)) ||
        strncasecmp(ct, "multipart/report", 16) ||
        !mime_param(ct, "report-type", rtype, sizeof(rtype)) ||
        !mime_param(ct, "boundary", bound, sizeof(bound)) || strlen(bound) > 70)
        return -1;
    int arf = !strcasecmp(rtype, "feedback-report");
    if (!arf && strcasecmp(rtype, "delivery-status"))
        return -1;
    report r = {0};
    attribute_token(s, &r, envelope_to);
    if (field(raw, he, "To", v, sizeof(v)))
        attribute_token(s, &r, v);
    char delim[84];
    snprintf(delim, sizeof(delim), "--%s", bound);
    size_t dl = strlen(delim);
    /* the parts: the report's fields and the returned message */
    const char *status_p = NULL, *status_e = NULL;
    for (const char *p = find_mem(body, (size_t)(end - body), delim, dl); p;) {
        const char *le, *part = next_line(p, end, &le);
        if (le - p >= (long)dl + 2 && !memcmp(p + dl, "--", 2))
            break;
        const char *next = find_mem(part, (size_t)(end - part), delim, dl);
        while (next && next > part && next[-1] != '\n')
            next = find_mem(next + 1, (size_t)(end - next - 1), delim, dl);
        const char *stop = next ? next : end, *pb;
        const char *phe = block_end(part, stop, &pb);
        char pct[200] = "text/plain";
        field(part, phe, "Content-Type", pct, sizeof(pct));
        if (!strncasecmp(pct, "message/delivery-status", 23) ||
            !strncasecmp(pct, "message/feedback-report", 23)) {
            status_p = pb;
            status_e = stop;
        } else if (!strncasecmp(pct, "message/rfc822", 14) ||
                   !strncasecmp(pct, "text/rfc822-headers", 19)) {
            const char *ob, *ohe = block_end(pb, stop, &ob);
            if (!r.pid[0] && !r.forged && field(pb, ohe, "Message-ID", v, sizeof(v)))
                our_message_id(s, v, r.pid, sizeof(r.pid));
            /* the bounce of a bounce never reaches us; a returned message
             * with a VERP Return-Path names the token too */
        }
        p = next;
    }
    if (!status_p)
        return -1;
    int emitted = 0;
    if (arf) {
        const char *after, *fe = block_end(status_p, status_e, &after);
        char ft[64] = "", omf[300] = "";
        field(status_p, fe, "Feedback-Type", ft, sizeof(ft));
        for (char *c = ft; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (field(status_p, fe, "Original-Mail-From", omf, sizeof(omf))) {
            char keep[300];
            snprintf(keep, sizeof(keep), "%s", r.pid);
            int was_token = !strncmp(r.pid, "token:", 6);
            if (!was_token)
                r.pid[0] = '\0';
            attribute_token(s, &r, omf);
            if (!r.pid[0])
                snprintf(r.pid, sizeof(r.pid), "%s", keep);
        }
        /* every Original-Rcpt-To, or one complaint without an address */
        int any = 0;
        for (const char *p = status_p; p < fe;) {
            const char *le, *nx = next_line(p, fe, &le);
            if (!strncasecmp(p, "Original-Rcpt-To:", 17)) {
                char a[300], addr[256];
                field(p, nx, "Original-Rcpt-To", a, sizeof(a));
                report_address(a, addr, sizeof(addr));
                emit_report(emit, ctx, &r, OC_EV_COMPLAINT, addr, ft[0] ? ft : "complaint", NULL,
                            "arf", &emitted);
                any = 1;
            }
            p = nx;
        }
        if (!any)
            emit_report(emit, ctx, &r, OC_EV_COMPLAINT, NULL, ft[0] ? ft : "complaint", NULL, "arf",
                        &emitted);
    } else {
        /* the per-message group, then one group per recipient */
        const char *after;
        block_end(status_p, status_e, &after);
        for (const char *p = after; p < status_e;) {
            const char *nx, *ge = block_end(p, status_e, &nx);
            if (ge > p)
                dsn_recipient(emit, ctx, &r, p, ge, &emitted);
            p = nx > p ? nx : status_e;
        }
    }
    if (r.forged)
        s->host->log(OC_LOG_WARN, "smtp: a report with a VERP token whose tag is wrong: ignored");
    else if (!r.pid[0])
        s->host->log(OC_LOG_INFO, "smtp: a report for none of our messages: ignored");
    return emitted;
}

/* Mailgun's event webhook: {"signature": {timestamp, token, signature},
 * "event-data": {event, severity, recipient, message.headers.message-id,
 * delivery-status}}; failed (permanent: hard, temporary: soft) and
 * complained become events, the others are answered and dropped. */
static void mailgun_event(smtp *s, json_t *j, oc_inbound_result *res, oc_emit_fn emit, void *ctx)
{
    if (!s->inbound_key) {
        oc_inbound_fail(res, 403, "unsigned_inbound_refused");
        return;
    }
    const char *code = check_signature(s, json_object_get(j, "signature"), res);
    if (code) {
        res->replay_key[0] = '\0';
        res->replay_ttl_s = 0;
        oc_inbound_fail(res, 401, code);
        return;
    }
    json_t *ed = json_object_get(j, "event-data");
    const char *event = json_string_value(json_object_get(ed, "event"));
    const char *sev = json_string_value(json_object_get(ed, "severity"));
    const char *rcpt = json_string_value(json_object_get(ed, "recipient"));
    const char *mid = json_string_value(
        json_object_get(json_object_get(json_object_get(ed, "message"), "headers"), "message-id"));
    report r = {0};
    char addr[256] = "";
    if (rcpt)
        bare_address(rcpt, addr, sizeof(addr));
    if (mid)
        our_message_id(s, mid, r.pid, sizeof(r.pid));
    int n = 0;
    if (event && !strcmp(event, "failed")) {
        json_t *ds = json_object_get(ed, "delivery-status");
        char err[280];
        const char *dm = json_string_value(json_object_get(ds, "message"));
        const char *dd = json_string_value(json_object_get(ds, "description"));
        json_t *dc = json_object_get(ds, "code");
        snprintf(err, sizeof(err), "%lld %s", (long long)json_integer_value(dc),
                 dm && *dm ? dm
                 : dd      ? dd
                           : "");
        emit_report(emit, ctx, &r, OC_EV_BOUNCE, addr,
                    sev && !strcmp(sev, "permanent") ? "hard" : "soft",
                    json_is_integer(dc) ? err : NULL, "mailgun", &n);
    } else if (event && !strcmp(event, "complained")) {
        emit_report(emit, ctx, &r, OC_EV_COMPLAINT, addr, "abuse", NULL, "mailgun", &n);
    }
    res->status = 200;
    res->content_type = "application/json";
    oc_buf_puts(&res->body, "{}");
}

/* SNS's signing certificate lives at https://sns.REGION.amazonaws.com/... */
static int sns_cert_url_ok(const char *u)
{
    if (!u || strncmp(u, "https://sns.", 12))
        return 0;
    const char *h = u + 12, *slash = strchr(h, '/');
    if (!slash)
        return 0;
    size_t n = (size_t)(slash - h);
    static const char suffix[] = ".amazonaws.com";
    if (n <= sizeof(suffix) - 1 ||
        strncmp(slash - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1))
        return 0;
    for (const char *p = h; p < slash - (sizeof(suffix) - 1); p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return 0; /* the region: one label, no dots */
    return 1;
}

/* SNS's string to sign: "Name\nvalue\n" for each field of the message type
 * in byte order (Subject only when present). */
static int sns_canonical(json_t *j, const char *type, oc_buf *out)
{
    static const char *const note[] = {"Message",  "MessageId", "Subject", "Timestamp",
                                       "TopicArn", "Type",      NULL};
    static const char *const sub[] = {"Message", "MessageId", "SubscribeURL", "Timestamp",
                                      "Token",   "TopicArn",  "Type",         NULL};
    const char *const *names = !strcmp(type, "Notification") ? note : sub;
    for (; *names; names++) {
        const char *v = json_string_value(json_object_get(j, *names));
        if (!v) {
            if (!strcmp(*names, "Subject"))
                continue;
            return -1;
        }
        oc_buf_puts(out, *names);
        oc_buf_puts(out, "\n");
        oc_buf_puts(out, v);
        oc_buf_puts(out, "\n");
    }
    return 0;
}

static int sns_verify(const smtp *s, json_t *j, const char *type)
{
    const char *ver = json_string_value(json_object_get(j, "SignatureVersion"));
    const char *sig = json_string_value(json_object_get(j, "Signature"));
    if (!s->sns_key || !ver || !sig || (strcmp(ver, "1") && strcmp(ver, "2")) ||
        !sns_cert_url_ok(json_string_value(json_object_get(j, "SigningCertURL"))))
        return 0;
    size_t sl = strlen(sig);
    if (sl == 0 || sl > 2048 || sl % 4)
        return 0;
    unsigned char raw[1600];
    int rl = EVP_DecodeBlock(raw, (const unsigned char *)sig, (int)sl);
    if (rl < 0)
        return 0;
    for (size_t i = sl; i > 0 && sig[i - 1] == '='; i--)
        rl--;
    oc_buf d = {0};
    int ok = 0;
    if (sns_canonical(j, type, &d) == 0 && d.data) {
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        ok = mc &&
             EVP_DigestVerifyInit(mc, NULL, !strcmp(ver, "1") ? EVP_sha1() : EVP_sha256(), NULL,
                                  s->sns_key) == 1 &&
             EVP_DigestVerify(mc, raw, (size_t)rl, (const unsigned char *)d.data, d.len) == 1;
        EVP_MD_CTX_free(mc);
    }
    oc_buf_free(&d);
    return ok;
}

/* Our Message-ID in SES's mail object: mail.headers [{name, value}] or
 * mail.commonHeaders.messageId. */
static void ses_attribution(const smtp *s, json_t *mail, report *r)
{
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(mail, "headers"), i, h)
    {
        const char *k = json_string_value(json_object_get(h, "name"));
        const char *v = json_string_value(json_object_get(h, "value"));
        if (k && v && !strcasecmp(k, "Message-ID") && our_message_id(s, v, r->pid, sizeof(r->pid)))
            return;
    }
    const char *v =
        json_string_value(json_object_get(json_object_get(mail, "commonHeaders"), "messageId"));
    if (v)
        our_message_id(s, v, r->pid, sizeof(r->pid));
}

/* Amazon SES's bounce and complaint notifications through Amazon SNS: the
 * SNS envelope verified against ses_sns_cert_file, its Message SES's JSON. */
static void ses_notification(smtp *s, json_t *j, oc_inbound_result *res, oc_emit_fn emit, void *ctx)
{
    const char *type = json_string_value(json_object_get(j, "Type"));
    if (!s->sns_key) {
        oc_inbound_fail(res, 403, "no_ses_sns_cert");
        return;
    }
    if (!type || (strcmp(type, "Notification") && strcmp(type, "SubscriptionConfirmation") &&
                  strcmp(type, "UnsubscribeConfirmation"))) {
        oc_inbound_fail(res, 400, "bad_payload");
        return;
    }
    if (!sns_verify(s, j, type)) {
        oc_inbound_fail(res, 401, "bad_signature");
        return;
    }
    res->status = 200;
    res->content_type = "application/json";
    oc_buf_puts(&res->body, "{}");
    if (strcmp(type, "Notification")) {
        /* never followed from here: the operator confirms by visiting it */
        const char *u = json_string_value(json_object_get(j, "SubscribeURL"));
        const char *arn = json_string_value(json_object_get(j, "TopicArn"));
        s->host->log(OC_LOG_WARN, "smtp: Amazon SNS %s for %.200s: confirm by opening %.500s", type,
                     arn && printable_ascii(arn) ? arn : "?",
                     u && printable_ascii(u) ? u : "(no SubscribeURL)");
        return;
    }
    json_error_t je;
    const char *msg = json_string_value(json_object_get(j, "Message"));
    json_t *m = msg ? json_loads(msg, 0, &je) : NULL;
    const char *nt = json_string_value(json_object_get(m, "notificationType"));
    if (!nt)
        nt = json_string_value(json_object_get(m, "eventType"));
    report r = {0};
    ses_attribution(s, json_object_get(m, "mail"), &r);
    int n = 0;
    size_t i;
    json_t *x;
    if (nt && !strcmp(nt, "Bounce")) {
        json_t *b = json_object_get(m, "bounce");
        const char *bt = json_string_value(json_object_get(b, "bounceType"));
        const char *state = bt && !strcmp(bt, "Permanent") ? "hard" : "soft";
        json_array_foreach(json_object_get(b, "bouncedRecipients"), i, x)
        {
            const char *a = json_string_value(json_object_get(x, "emailAddress"));
            const char *st = json_string_value(json_object_get(x, "status"));
            const char *dc = json_string_value(json_object_get(x, "diagnosticCode"));
            char addr[256] = "", err[280];
            if (a)
                bare_address(a, addr, sizeof(addr));
            snprintf(err, sizeof(err), "%s%s%s", st ? st : "", st && dc ? " " : "", dc ? dc : "");
            emit_report(emit, ctx, &r, OC_EV_BOUNCE, addr, state, err, "ses", &n);
        }
    } else if (nt && !strcmp(nt, "Complaint")) {
        json_t *c = json_object_get(m, "complaint");
        const char *ft = json_string_value(json_object_get(c, "complaintFeedbackType"));
        json_array_foreach(json_object_get(c, "complainedRecipients"), i, x)
        {
            const char *a = json_string_value(json_object_get(x, "emailAddress"));
            char addr[256] = "";
            if (a)
                bare_address(a, addr, sizeof(addr));
            emit_report(emit, ctx, &r, OC_EV_COMPLAINT, addr, ft ? ft : "complaint", NULL, "ses",
                        &n);
        }
    }
    json_decref(m);
}

/* The raw message of a report post: our {"raw"}, Mailgun's body-mime,
 * Postmark's RawEmail. */
static const char *raw_message(json_t *j)
{
    const char *keys[] = {"raw", "body-mime", "RawEmail"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = json_string_value(json_object_get(j, keys[i]));
        if (v && *v)
            return v;
    }
    return NULL;
}

static void smtp_inbound(void *inst, const oc_http_request *req, oc_inbound_result *res,
                         oc_emit_fn emit, void *ctx)
{
    smtp *s = inst;
    char tok[240], bare[240], pid[260];
    if (!strcmp(req->method, "GET")) {
        /* a person opened the link: a page with a button, never an unsubscribe */
        if (!query_token(req, tok, sizeof(tok))) {
            page(res, 400, "Unsubscribe", "This link is incomplete.", NULL);
            return;
        }
        if (!token_verify(s, tok, bare, sizeof(bare))) {
            page(res, 403, "Unsubscribe", "This link is not valid.", NULL);
            return;
        }
        page(res, 200, "Unsubscribe",
             "Press the button to stop receiving these emails at this address.", tok);
        return;
    }
    if (strcmp(req->method, "POST")) {
        oc_inbound_fail(res, 405, "method_not_allowed");
        return;
    }
    /* RFC 8058 one-click: POST List-Unsubscribe=One-Click to ...?t=TOKEN */
    int via_page = 0;
    if (one_click(req, &via_page)) {
        if (!query_token(req, tok, sizeof(tok))) {
            oc_inbound_fail(res, 400, "missing_token");
            return;
        }
        if (!token_verify(s, tok, bare, sizeof(bare))) {
            /* an unguessable token: a wrong or missing tag unsubscribes nobody */
            if (via_page)
                page(res, 403, "Unsubscribe", "This link is not valid.", NULL);
            else
                oc_inbound_fail(res, 403, "bad_token");
            return;
        }
        snprintf(pid, sizeof(pid), "token:%s", bare);
        oc_event ev = {.type = OC_EV_UNSUBSCRIBE, .provider_id = pid};
        emit(ctx, &ev);
        if (via_page) {
            page(res, 200, "Unsubscribed", "You will not receive these emails any more.", NULL);
            return;
        }
        res->status = 200;
        res->content_type = "application/json";
        oc_buf_puts(&res->body, "{}");
        return;
    }
    const char *ct0 = req->header ? req->header(req->header_ctx, "Content-Type") : NULL;
    if (!ct0 || (strncasecmp(ct0, "application/x-www-form-urlencoded", 33) &&
                 strncasecmp(ct0, "multipart/form-data", 19))) {
        /* ESP event webhooks carry their own signatures */
        json_error_t je0;
        json_t *ej = json_loadb(req->body, req->body_len, 0, &je0);
        if (json_is_object(ej) && json_is_string(json_object_get(ej, "TopicArn")) &&
            json_is_string(json_object_get(ej, "Type"))) {
            ses_notification(s, ej, res, emit, ctx);
            json_decref(ej);
            return;
        }
        if (json_is_object(ej) && json_is_object(json_object_get(ej, "signature")) &&
            json_is_object(json_object_get(ej, "event-data"))) {
            mailgun_event(s, ej, res, emit, ctx);
            json_decref(ej);
            return;
        }
        json_decref(ej);
    }
    int basic = basic_auth_ok(s, req);
    if (s->basic_auth && !basic && !s->inbound_key) {
        oc_inbound_fail(res, 401, "bad_credentials");
        return;
    }
    if (!s->inbound_key && !s->inbound_unsigned && !basic) {
        /* nothing to check a post against: refused, as the webhook connector does */
        oc_inbound_fail(res, 403, "unsigned_inbound_refused");
        return;
    }
    json_error_t je;
    const char *ct = req->header ? req->header(req->header_ctx, "Content-Type") : NULL;
    json_t *j = ct && (!strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
                       !strncasecmp(ct, "multipart/form-data", 19))
                    ? form_fields(req)
                    : json_loadb(req->body, req->body_len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        oc_inbound_fail(res, 400, "bad_payload");
        return;
    }
    normalize_inbound(j);
    if (s->inbound_key && !basic) {
        const char *code = check_signature(s, j, res);
        if (code) {
            json_decref(j);
            oc_inbound_fail(res, 401, code);
            return;
        }
    }
    const char *raw = raw_message(j);
    if (raw && parse_report(s, raw, strlen(raw), json_string_value(json_object_get(j, "to")), emit,
                            ctx) >= 0) {
        /* a DSN or an ARF report: taken (attributed or not; not sent again) */
        json_decref(j);
        res->status = 200;
        res->content_type = "application/json";
        oc_buf_puts(&res->body, "{}");
        return;
    }
    const char *from = json_string_value(json_object_get(j, "from"));
    const char *to = json_string_value(json_object_get(j, "to"));
    const char *text = json_string_value(json_object_get(j, "stripped_text"));
    if (!text)
        text = json_string_value(json_object_get(j, "text"));
    if (!from || !text) {
        json_decref(j);
        res->replay_key[0] = '\0'; /* an error answer claims nothing */
        res->replay_ttl_s = 0;
        oc_inbound_fail(res, 400, "bad_payload");
        return;
    }
    char f[256], t[256] = "", mid[300] = "", irt[300] = "";
    bare_address(from, f, sizeof(f));
    if (to)
        bare_address(to, t, sizeof(t));
    const char *m = json_string_value(json_object_get(j, "message_id"));
    if (m)
        strip_angles(m, mid, sizeof(mid));
    const char *r = json_string_value(json_object_get(j, "in_reply_to"));
    if (r) {
        strip_angles(r, irt, sizeof(irt));
    } else if (!strncmp(t, "reply+", 6) && strchr(t, '@')) {
        /* a reply+TOKEN address: attributed only through a token whose tag
         * is right (with token_secret); otherwise the reply is kept unattributed */
        char tok[240], bare[240];
        size_t n = (size_t)(strchr(t, '@') - t - 6);
        if (n && n < sizeof(tok)) {
            safe_token(t + 6, tok, n + 1);
            if (token_verify(s, tok, bare, sizeof(bare)))
                snprintf(irt, sizeof(irt), "token:%s", bare);
        }
    }
    oc_event ev = {.type = OC_EV_REPLY,
                   .from = f,
                   .to = t,
                   .text = text,
                   .kind = "email",
                   .provider_id = mid[0] ? mid : NULL,
                   .in_reply_to = irt[0] ? irt : NULL};
    emit(ctx, &ev);
    json_decref(j);
    res->status = 200;
    res->content_type = "application/json";
    oc_buf_puts(&res->body, "{}");
}

OC_CONNECTOR(smtp) = {
    OC_CONNECTOR_INIT,
    .type = "smtp",
    .description = "email over SMTP (STARTTLS or SMTPS) with one-click unsubscribe",
    .keys = smtp_keys,
    .init = smtp_init,
    .free = smtp_free,
    .build = smtp_build,
    .classify = smtp_classify,
    .inbound = smtp_inbound,
};
