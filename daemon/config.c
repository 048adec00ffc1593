/* The configuration file, parsed with libinih through a line-counting
 * reader (Debian's libinih reports no line numbers itself), checked against
 * directive tables: the daemon's and the common connector keys here, each
 * connector's own keys in its descriptor. Every problem is collected with
 * its line; nothing unknown is ignored. */
#include "config.h"
#include "redistls.h"
#include "redisurl.h"
#include "scopes.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX 65536

/* ---- the tables: {name, setter, offset, min, max, default, help, flags, arg} */

#define DOFF(f) offsetof(omni_config, f)
#define COFF(f) offsetof(conf_connector, f)
#define D_INT(n, f, lo, hi, def, help)                                                             \
    {                                                                                              \
        n, conf_set_int, DOFF(f), lo, hi, def, help, OC_KEY_INT, NULL                              \
    }
#define D_STR(n, f, def, help)                                                                     \
    {                                                                                              \
        n, conf_set_str, DOFF(f), 0, 0, def, help, 0, NULL                                         \
    }

const conf_directive config_daemon_keys[] = {
    {"redis", conf_set_redis, DOFF(redis), 0, 0, "redis://127.0.0.1:6379/0",
     "Redis URL: redis://[USER@]HOST[:PORT][/DB] ([IPv6] in brackets) or unix:/path[?db=N]", 0,
     NULL},
    D_STR("redis_username", redis_username, NULL,
          "Redis ACL user to AUTH as (default: the URL's USER@, else the default user)"),
    {"redis_password", conf_set_str, DOFF(redis_password), 0, 0, NULL,
     "Redis password (AUTH on every connection); prefer redis_password_file", OC_KEY_SECRET, NULL},
    D_STR("redis_password_file", redis_password_file, NULL,
          "file holding the Redis password (relative: in $CREDENTIALS_DIRECTORY)"),
    D_STR("redis_sentinels", redis_sentinels, NULL,
          "HOST:PORT,... of Redis Sentinels to ask for the primary (instead of redis's address)"),
    D_STR("redis_sentinel_master", redis_sentinel_master, NULL,
          "the master name the sentinels monitor (needed with redis_sentinels)"),
    D_STR("redis_sentinel_username", redis_sentinel_username, NULL,
          "ACL user to AUTH as on the sentinels"),
    {"redis_sentinel_password", conf_set_str, DOFF(redis_sentinel_password), 0, 0, NULL,
     "password for the sentinels; prefer redis_sentinel_password_file", OC_KEY_SECRET, NULL},
    D_STR("redis_sentinel_password_file", redis_sentinel_password_file, NULL,
          "file holding the sentinels' password (relative: in $CREDENTIALS_DIRECTORY)"),
    D_INT("redis_wait_replicas", redis_wait_replicas, 0, 100, "0",
          "replicas that must acknowledge a claim batch (WAIT) before it is sent (0 = no WAIT)"),
    D_INT("redis_wait_timeout_ms", redis_wait_timeout_ms, 1, 600000, "1000",
          "how long WAIT waits for redis_wait_replicas acknowledgements"),
    D_STR("redis_tls_ca_file", redis_tls_ca_file, NULL,
          "rediss://: PEM file of CA certificates that verify Redis (default: the system's)"),
    D_STR("redis_tls_cert_file", redis_tls_cert_file, NULL,
          "rediss://: client certificate (PEM chain) for a Redis that asks for one"),
    D_STR("redis_tls_key_file", redis_tls_key_file, NULL,
          "rediss://: the client certificate's private key (PEM; relative: in "
          "$CREDENTIALS_DIRECTORY)"),
    D_STR("redis_tls_server_name", redis_tls_server_name, NULL,
          "rediss://: the name verified in Redis's certificate and sent as SNI (default: the "
          "URL's host)"),
    {"prefix", conf_set_str, DOFF(prefix), 1, 0, "omni:", "prefix of every Redis key", 0, NULL},
    D_STR("consumer", consumer, NULL,
          "consumer name in the stream groups; default hostname-pid; unique per live instance"),
    {"log_format", conf_set_choice, DOFF(log_format), 0, 0, "text", "text or json", 0, "text|json"},
    {"log_level", conf_set_choice, DOFF(log_level), 0, 0, "info", "error, warn, info or debug", 0,
     "error|warn|info|debug"},
    D_STR("log_file", log_file, NULL,
          "append log lines to this file instead of stderr (reopened on SIGHUP)"),
    {"log_bodies", conf_set_bool, DOFF(log_bodies), 0, 1, "false",
     "log recipient addresses unmasked", 0, NULL},
    D_INT("chunk_size", chunk_size, 1, 10000, "500", "recipients per chunk of a campaign"),
    D_INT("max_inline_recipients", max_inline_recipients, 1, 1000000, "10000",
          "cap on recipients inline in a job"),
    D_INT("max_job_bytes", max_job_bytes, 1024, 268435456, "1048576", "cap on the size of one job"),
    D_INT("read_count", read_count, 1, 10000, "16", "stream entries per XREADGROUP"),
    D_INT("block_ms", block_ms, 10, 60000, "1000", "XREADGROUP BLOCK time"),
    D_INT("claim_idle_ms", claim_idle_ms, 100, 86400000, "60000",
          "pending entries idle this long are taken over (XAUTOCLAIM)"),
    D_INT("reclaim_interval_ms", reclaim_interval_ms, 100, 3600000, "10000",
          "how often to look for stalled entries and touch our own"),
    D_INT("lease_ms", lease_ms, 100, 86400000, "30000",
          "how long a claim is held before another instance may declare it uncertain"),
    D_INT("max_attempts", max_attempts, 1, 100, "5",
          "tries per recipient and channel before failed/retries_exhausted"),
    D_INT("retry_base_ms", retry_base_ms, 1, 86400000, "1000", "first retry backoff ceiling"),
    D_INT("retry_cap_ms", retry_cap_ms, 1, 86400000, "300000", "largest retry backoff"),
    D_INT("redis_timeout_ms", redis_timeout_ms, 100, 600000, "5000",
          "a Redis that does not answer within this is reconnected"),
    D_INT("max_total_connections", max_total_connections, 1, 100000, "256",
          "outbound connections in all"),
    D_INT("max_host_connections", max_host_connections, 1, 100000, "64",
          "outbound connections per host"),
    D_STR("tls_ca_file", tls_ca_file, NULL,
          "PEM file of CA certificates that verify providers' TLS (default: the system's)"),
    D_INT("drain_timeout_ms", drain_timeout_ms, 0, 3600000, "30000",
          "on SIGTERM, exit after this even with work in flight"),
    {"http_listen", conf_set_listen, DOFF(http_listen), 0, 0, NULL,
     "ADDR:PORT for the HTTP API and webhooks (repeatable)", OC_KEY_REPEATABLE, NULL},
    D_STR("api_tokens_file", api_tokens_file, NULL, "file of API bearer tokens, one per line"),
    D_INT("http_max_body", http_max_body, 1024, 268435456, "1048576", "largest request body"),
    D_INT("http_max_headers", http_max_headers, 1024, 1048576, "16384",
          "largest request header block"),
    D_INT("http_max_connections", http_max_connections, 1, 1000000, "1024",
          "simultaneous HTTP connections; requests beyond get 503 and the connection is closed"),
    D_INT("http_timeout_ms", http_timeout_ms, 100, 600000, "10000",
          "read/write timeout of an HTTP connection"),
    D_INT("http_header_timeout_ms", http_header_timeout_ms, 100, 600000, "10000",
          "a request head must arrive whole within this"),
    D_INT("attribution_window_s", attribution_window_s, 0, 31536000, "604800",
          "a reply is attributed to the last campaign within this"),
    D_STR("plugin_dir", plugin_dir, NULL, "directory relative plugin paths are resolved in"),
    D_STR("opt_out_keywords", opt_out_keywords,
          "STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT",
          "replies that opt a contact out (whole message, any case; space-separated)"),
    D_STR("opt_in_keywords", opt_in_keywords, "START UNSTOP YES",
          "replies that opt a contact back in"),
    {"optout_scope", conf_set_choice_int, DOFF(optout_contact), 0, 0, "channel",
     "channel: an opt-out suppresses the address on its channel; contact: on every channel "
     "of the recipient's contact_id",
     0, "channel|contact"},
    {"crm_webhook_url", conf_set_url, DOFF(crm_webhook_url), 0, 0, NULL,
     "POST every conversation event here (JSON, signed); acked on 2xx, retried otherwise",
     OC_KEY_URL | OC_KEY_URL_HTTP, NULL},
    D_STR("crm_webhook_secret_file", crm_webhook_secret_file, NULL,
          "file with the HMAC-SHA256 key for X-Omnicast-Signature on CRM posts"),
    D_INT("crm_retry_ms", crm_retry_ms, 100, 86400000, "30000",
          "an event the CRM did not accept is posted again after this"),
    D_INT("crm_lease_ms", crm_lease_ms, 1000, 3600000, "15000",
          "the CRM feed lease: one daemon posts; another takes over this long after it stopped "
          "renewing"),
    D_INT("crm_max_held", crm_max_held, 16, 1000000, "1000",
          "CRM events held in memory (waiting behind an earlier event of their conversation, or in "
          "flight)"),
    D_INT("keepalive_idle_ms", keepalive_idle_ms, 100, 3600000, "30000",
          "outbound keep-alive connections idle this long are closed (before a provider does it)"),
    {"smtp_client", conf_set_choice_int, DOFF(smtp_native), 0, 0, "native",
     "email: native (omnicast's SMTP client: connections reused, PIPELINING) or curl", 0,
     "curl|native"},
    D_INT("sweep_interval_ms", sweep_interval_ms, 0, 86400000, "30000",
          "how often to look for stalled running campaigns to repair (0 = never)"),
    D_INT("chunks_ahead", chunks_ahead, 0, 1000000, "8",
          "chunks of one campaign in the stream at once, the next added as one finishes, so "
          "other campaigns' chunks are read between them (0 = all at creation)"),
    D_INT("sweep_idle_ms", sweep_idle_ms, 1000, 86400000, "120000",
          "a running campaign without progress this long is checked for recipients nothing "
          "will finish"),
    D_INT("consumer_idle_remove_ms", consumer_idle_remove_ms, 0, 604800000, "600000",
          "consumers of the stream groups with nothing pending and idle this long (dead "
          "instances) are removed (0 = never)"),
    {NULL, NULL, 0, 0, 0, NULL, NULL, 0, NULL}};
#define N_DKEYS (sizeof(config_daemon_keys) / sizeof(config_daemon_keys[0]) - 1)

#define C_INT(n, f, lo, hi, def, help)                                                             \
    {                                                                                              \
        n, conf_set_int, COFF(f), lo, hi, def, help, OC_KEY_INT, NULL                              \
    }

const conf_directive config_common_connector_keys[] = {
    {"type", conf_set_str, COFF(type), 0, 0, NULL,
     "connector type: whatsapp, twilio, smtp, webhook, outbox, or a plugin's",
     OC_KEY_REQUIRED | CONF_EARLY, NULL},
    {"plugin", conf_set_str, COFF(plugin), 0, 0, NULL,
     "path of a .so connector plugin (a relative one is in plugin_dir if set)", CONF_EARLY, NULL},
    {"rate_per_s", conf_set_double, COFF(rate_per_s), 0, 1000000, "0",
     "messages per second through this instance (0 = unlimited, at most 1000000)", 0, NULL},
    C_INT("burst", burst, 0, 1000000, "0",
          "token bucket size (0 = the rate, at least 1; at most 1000000)"),
    C_INT("max_inflight", max_inflight, 1, 100000, "64", "transfers in flight at once (1..100000)"),
    C_INT("timeout_ms", timeout_ms, 1, 3600000, "10000", "total time of one transfer (1..3600000)"),
    C_INT("connect_timeout_ms", connect_timeout_ms, 1, 3600000, "3000",
          "connection set-up time (1..3600000)"),
    {"http2", conf_set_http2, COFF(http2), 0, 0, "auto",
     "https URLs: auto offers HTTP/2 by ALPN where the native client carries the request and "
     "multiplexes if the server chooses it (HTTP/1.1 otherwise, and through libcurl); true asks "
     "for HTTP/2 on either client; false keeps HTTP/1.1 keep-alive",
     0, NULL},
    {"http_client", conf_set_choice_int, COFF(native), 0, 0, "native",
     "HTTP/1.1 requests (http://, and https:// with http2 = false): native or curl", 0,
     "curl|native"},
    C_INT("pipeline", pipeline, 1, 64, "1",
          "native client: requests written ahead on one keep-alive connection (1 = no "
          "pipelining, at most 64); only for peers that answer pipelined requests in order"),
    {"retry_ambiguous", conf_set_bool, COFF(retry_ambiguous), 0, 1, "false",
     "true: a request that may have reached the provider without an answer is retried "
     "(at-least-once, for a provider that deduplicates); false: it ends uncertain",
     0, NULL},
    C_INT("halt_probe_s", halt_probe_s, 1, 86400, "300",
          "a halted instance (the provider refused the account) sends one probe after this "
          "many seconds (1..86400)"),
    C_INT("session_window_s", session_window_s, 0, 31536000, "0",
          "the provider's customer service window in seconds: a broadcast on this instance's "
          "channels needs a template, and a message job's free-form text goes only to a "
          "contact whose last inbound message is younger (0 = no window; whatsapp: 86400)"),
    {NULL, NULL, 0, 0, 0, NULL, NULL, 0, NULL}};

const conf_directive *config_directive(const conf_directive *t, const char *name)
{
    for (; t && t->name; t++)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

/* ---- errors */

void conf_errors_add(conf_errors *e, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char **n = realloc(e->msgs, (e->n + 1) * sizeof(*n));
    if (!n)
        return;
    e->msgs = n;
    e->msgs[e->n++] = strdup(buf);
}

void conf_errors_free(conf_errors *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    e->msgs = NULL;
    e->n = 0;
}

static size_t fatal_count(const conf_errors *e, size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < e->n; i++)
        if (strncmp(e->msgs[i], "warning: ", 9) != 0 && !strstr(e->msgs[i], ": warning: "))
            n++;
    return n;
}

/* ---- parsing */

typedef struct parse_ctx {
    omni_config *cfg;
    conf_errors *errs;
    const char *path;
    int line;
    int long_line;
    FILE *f;
    const char *str; /* when parsing a string */
    unsigned char seen[N_DKEYS];
    int line_of[N_DKEYS]; /* where each [daemon] key was last given */
    conf_connector *cur;
    int section;      /* 0 none, 1 daemon, 2 connector, 3 channels, -1 unknown */
    int section_line; /* line of the last [section] header */
    char cur_section[128];
} parse_ctx;

static char *reader(char *str, int num, void *stream)
{
    parse_ctx *p = stream;
    char *r;
    if (p->str) {
        if (!*p->str)
            return NULL;
        const char *nl = strchr(p->str, '\n');
        size_t n = nl ? (size_t)(nl - p->str + 1) : strlen(p->str);
        if (n >= (size_t)num) {
            p->long_line = 1;
            n = (size_t)num - 1;
        }
        memcpy(str, p->str, n);
        str[n] = '\0';
        p->str += n;
        r = str;
    } else {
        r = fgets(str, num, p->f);
        if (!r)
            return NULL;
        size_t n = strlen(str);
        if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(p->f))
            p->long_line = 1;
    }
    if (p->long_line) {
        conf_errors_add(p->errs, "%s:%d: line longer than %d characters", p->path, p->line + 1,
                        num - 2);
        /* skip the rest of the physical line */
        if (p->str) {
            const char *nl = strchr(p->str, '\n');
            p->str = nl ? nl + 1 : p->str + strlen(p->str);
        } else {
            int c;
            while ((c = fgetc(p->f)) != EOF && c != '\n')
                ;
        }
        p->long_line = 0;
        str[0] = '#';
        str[1] = '\0';
    }
    p->line++;
    /* section headers are checked here: libinih reports a section only
     * when a key follows, so an empty unknown section would slip by */
    const char *q = r;
    while (*q == ' ' || *q == '\t')
        q++;
    if (*q == '[') {
        const char *e = strchr(q, ']');
        p->section_line = p->line;
        if (e) {
            size_t n = (size_t)(e - q - 1);
            if (!(n == 6 && !strncmp(q + 1, "daemon", 6)) &&
                !(n == 8 && !strncmp(q + 1, "channels", 8)) && strncmp(q + 1, "connector.", 10))
                conf_errors_add(p->errs, "%s:%d: unknown section [%.*s]", p->path, p->line, (int)n,
                                q + 1);
        }
    }
    return r;
}

static char *dup_set(char **slot, const char *v)
{
    free(*slot);
    *slot = strdup(v);
    return *slot;
}

static int parse_int(const char *v, long min, long max, long *out)
{
    if (!*v || !isdigit((unsigned char)*v))
        return -1;
    errno = 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

static int parse_bool(const char *v)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
        return 1;
    if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0"))
        return 0;
    return -1;
}

static int valid_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return 0;
    long port;
    if (parse_int(colon + 1, 1, 65535, &port) < 0)
        return 0;
    if (v[0] == '[')
        return colon[-1] == ']' && colon - v > 2;
    for (const char *p = v; p < colon; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
            return 0;
    return 1;
}

/* ---- URLs */

/* a conf_directive's flags hold oc_config_key flags and CONF_EARLY */
_Static_assert(((OC_KEY_REQUIRED | OC_KEY_SECRET | OC_KEY_REPEATABLE | OC_KEY_INT | OC_KEY_URL |
                 OC_KEY_URL_HTTPS | OC_KEY_URL_HTTP | OC_KEY_URL_SMTP) &
                CONF_EARLY) == 0,
               "CONF_EARLY overlaps an oc_config_key flag");

/* 127.0.0.0/8 written as a dotted quad, localhost, [::1] */
static int loopback_host(const char *h, size_t n)
{
    if ((n == 9 && !strncasecmp(h, "localhost", 9)) || (n == 5 && !memcmp(h, "[::1]", 5)))
        return 1;
    if (n < 7 || memcmp(h, "127.", 4))
        return 0;
    int dots = 0, digits = 0;
    for (size_t i = 3; i < n; i++) {
        if (h[i] == '.') {
            if (i > 3 && !digits)
                return 0;
            dots++;
            digits = 0;
        } else if (isdigit((unsigned char)h[i]) && ++digits <= 3) {
            continue;
        } else {
            return 0;
        }
    }
    return dots == 3 && digits > 0;
}

static int scheme_is(const char *v, size_t n, const char *want)
{
    return strlen(want) == n && !strncasecmp(v, want, n);
}

int conf_check_url(const char *v, unsigned flags, char *err, size_t err_len)
{
    const char *want = (flags & OC_KEY_URL_HTTPS)  ? "https://HOST[:PORT]/..."
                       : (flags & OC_KEY_URL_HTTP) ? "http:// or https://HOST[:PORT]/..."
                       : (flags & OC_KEY_URL_SMTP) ? "smtp:// or smtps://HOST[:PORT]"
                                                   : "scheme://...";
    const char *sep = strstr(v, "://");
    size_t sl = sep ? (size_t)(sep - v) : 0;
    int ok = sl > 0 && isalpha((unsigned char)v[0]);
    for (size_t i = 1; ok && i < sl; i++)
        ok = isalnum((unsigned char)v[i]) || v[i] == '+' || v[i] == '-' || v[i] == '.';
    if (!ok) {
        snprintf(err, err_len, "not a URL (want %s)", want);
        return -1;
    }
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            snprintf(err, err_len, "a space or a control character in the URL");
            return -1;
        }
    if (!(flags & (OC_KEY_URL_HTTPS | OC_KEY_URL_HTTP | OC_KEY_URL_SMTP)))
        return 0; /* a plugin's URL: any scheme */
    /* the authority: [USERINFO@]HOST[:PORT], HOST a name, an IPv4 or [IPv6] */
    const char *a = sep + 3;
    size_t alen = strcspn(a, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (a[i] == '@')
            at = a + i;
    const char *h = at ? at + 1 : a, *end = a + alen, *he;
    if (*h == '[') {
        he = memchr(h, ']', (size_t)(end - h));
        ok = he && he > h + 1;
        for (const char *q = h + 1; ok && q < he; q++)
            ok = isxdigit((unsigned char)*q) || *q == ':' || *q == '.';
        if (he)
            he++;
    } else {
        he = memchr(h, ':', (size_t)(end - h));
        if (!he)
            he = end;
        ok = he > h;
        for (const char *q = h; ok && q < he; q++)
            ok = isalnum((unsigned char)*q) || *q == '.' || *q == '-' || *q == '_';
    }
    if (!ok) {
        snprintf(err, err_len, "no valid host in the URL (want %s)", want);
        return -1;
    }
    if (he < end) {
        long port = 0;
        const char *q = he + 1;
        ok = *he == ':' && q < end;
        for (; ok && q < end; q++)
            ok = isdigit((unsigned char)*q) && (port = port * 10 + (*q - '0')) <= 65535;
        if (!ok || port == 0) {
            snprintf(err, err_len, "bad port in the URL (want %s)", want);
            return -1;
        }
    }
    int https = scheme_is(v, sl, "https"), http = scheme_is(v, sl, "http");
    if ((flags & OC_KEY_URL_HTTPS) && (https || (http && loopback_host(h, (size_t)(he - h)))))
        return 0;
    if ((flags & OC_KEY_URL_HTTP) && (https || http))
        return 0;
    if ((flags & OC_KEY_URL_SMTP) && (scheme_is(v, sl, "smtp") || scheme_is(v, sl, "smtps")))
        return 0;
    if ((flags & OC_KEY_URL_HTTPS) && http)
        snprintf(err, err_len,
                 "must be https:// (plain http:// only to a loopback host: 127.0.0.1, localhost, "
                 "[::1])");
    else
        snprintf(err, err_len, "scheme %.*s:// refused (want %s)", (int)(sl > 20 ? 20 : sl), v,
                 want);
    return -1;
}

/* ---- the generic setters */

#define SLOT(T, obj, d) ((T *)((char *)(obj) + (d)->offset))

int conf_set_int(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len)
{
    long n;
    if (parse_int(v, d->min, d->max, &n) < 0) {
        snprintf(err, err_len, "not an integer in %ld..%ld", d->min, d->max);
        return -1;
    }
    *SLOT(int, obj, d) = (int)n;
    return 0;
}

int conf_set_double(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len)
{
    char *end;
    double r = strtod(v, &end);
    /* !(in range) refuses NaN too */
    if (*end || end == v || !isfinite(r) || !(r >= (double)d->min && r <= (double)d->max)) {
        snprintf(err, err_len, "not a number in %ld..%ld", d->min, d->max);
        return -1;
    }
    *SLOT(double, obj, d) = r;
    return 0;
}

int conf_set_bool(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len)
{
    int b = parse_bool(v);
    if (b < 0) {
        snprintf(err, err_len, "not a boolean (true/false)");
        return -1;
    }
    *SLOT(int, obj, d) = b;
    return 0;
}

int conf_set_str(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len)
{
    if (d->min > 0 && strlen(v) < (size_t)d->min) {
        snprintf(err, err_len, "must not be empty");
        return -1;
    }
    if (!dup_set(SLOT(char *, obj, d), v)) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

/* the index of v among arg's words "a|b|c", or -1; else "must be a, b or c" in err */
static int choice(const conf_directive *d, const char *v, char *err, size_t err_len)
{
    size_t vl = strlen(v);
    int i = 0;
    for (const char *w = d->arg; w && *w; i++) {
        const char *bar = strchr(w, '|');
        size_t wl = bar ? (size_t)(bar - w) : strlen(w);
        if (wl == vl && !strncmp(w, v, wl))
            return i;
        w = bar ? bar + 1 : w + wl;
    }
    size_t o = (size_t)snprintf(err, err_len, "must be ");
    const char *w = d->arg ? d->arg : "";
    for (int k = 0; *w && o < err_len; k++) {
        const char *bar = strchr(w, '|');
        size_t wl = bar ? (size_t)(bar - w) : strlen(w);
        const char *sep = k == 0 ? "" : bar ? ", " : " or ";
        o += (size_t)snprintf(err + o, err_len - o, "%s%.*s", sep, (int)wl, w);
        w = bar ? bar + 1 : w + wl;
    }
    return -1;
}

int conf_set_choice(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len)
{
    if (choice(d, v, err, err_len) < 0)
        return -1;
    return conf_set_str(d, obj, v, err, err_len);
}

int conf_set_http2(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len)
{
    int b = strcmp(v, "auto") == 0 ? OC_HTTP2_AUTO : parse_bool(v);
    if (b < 0) {
        snprintf(err, err_len, "must be auto, true or false");
        return -1;
    }
    *SLOT(int, obj, d) = b;
    return 0;
}

int conf_set_choice_int(const conf_directive *d, void *obj, const char *v, char *err,
                        size_t err_len)
{
    int i = choice(d, v, err, err_len);
    if (i < 0)
        return -1;
    *SLOT(int, obj, d) = i;
    return 0;
}

int conf_set_redis(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len)
{
    /* the parser the daemon and the CLI connect with: what passes here
     * connects there */
    redis_target t;
    if (redis_url_parse(v, &t, err, err_len) < 0)
        return -1;
    return conf_set_str(d, obj, v, err, err_len);
}

int conf_set_url(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len)
{
    if (conf_check_url(v, d->flags, err, err_len) < 0)
        return -1;
    return conf_set_str(d, obj, v, err, err_len);
}

int conf_set_listen(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len)
{
    (void)d;
    omni_config *c = obj;
    if (!valid_listen(v)) {
        snprintf(err, err_len, "must be ADDR:PORT");
        return -1;
    }
    char *copy = strdup(v);
    char **l = copy ? realloc(c->http_listen, (c->n_http_listen + 1) * sizeof(*l)) : NULL;
    if (!l) {
        free(copy);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    c->http_listen = l;
    l[c->n_http_listen++] = copy;
    return 0;
}

/* the setters whose slot is a char * the config owns */
static int owns_string(const conf_directive *d)
{
    return d->set == conf_set_str || d->set == conf_set_choice || d->set == conf_set_redis ||
           d->set == conf_set_url;
}

/* run d's setter on v; a refusal becomes "path:line: [who] key: reason" */
static void apply(const conf_directive *d, void *obj, const char *v, conf_errors *errs,
                  const char *path, int line, const char *who)
{
    char err[256] = "";
    if (d->set(d, obj, v, err, sizeof(err)) < 0)
        conf_errors_add(errs, "%s:%d: [%s] %s: %s", path, line, who, d->name, err);
}

/* every row with a default, its setter run on it */
static void apply_defaults(const conf_directive *t, void *obj)
{
    char err[256];
    for (const conf_directive *d = t; d->name; d++)
        if (d->default_value)
            d->set(d, obj, d->default_value, err, sizeof(err));
}

void config_connector_defaults(conf_connector *c)
{
    apply_defaults(config_common_connector_keys, c);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *p = user;
    omni_config *c = p->cfg;
    if (strcmp(section, p->cur_section) != 0 || (!name && !value)) {
        snprintf(p->cur_section, sizeof(p->cur_section), "%s", section);
        p->cur = NULL;
        if (!strcmp(section, "daemon")) {
            p->section = 1;
        } else if (!strcmp(section, "channels")) {
            p->section = 3;
        } else if (!strncmp(section, "connector.", 10)) {
            p->section = 2;
            const char *n = section + 10;
            if (!valid_name(n)) {
                conf_errors_add(p->errs, "%s:%d: bad connector name [%s] (A-Z a-z 0-9 _ -)",
                                p->path, p->section_line, section);
                p->section = -1;
            } else if (config_connector(c, n)) {
                conf_errors_add(p->errs, "%s:%d: connector [%s] defined twice", p->path,
                                p->section_line, section);
                p->section = -1;
            } else {
                conf_connector *nc = realloc(c->connectors, (c->n_connectors + 1) * sizeof(*nc));
                if (!nc)
                    return 0;
                c->connectors = nc;
                p->cur = &c->connectors[c->n_connectors++];
                memset(p->cur, 0, sizeof(*p->cur));
                p->cur->name = strdup(n);
                p->cur->line = p->section_line;
                config_connector_defaults(p->cur);
            }
        } else {
            p->section = -1; /* reported by the reader at its header line */
        }
        if (!name && !value)
            return 1;
    }
    if (!name)
        return 1;
    switch (p->section) {
    case 1:
        for (size_t i = 0; i < N_DKEYS; i++)
            if (!strcmp(config_daemon_keys[i].name, name)) {
                const conf_directive *d = &config_daemon_keys[i];
                p->line_of[i] = p->line;
                if (p->seen[i]++ && !(d->flags & OC_KEY_REPEATABLE))
                    conf_errors_add(p->errs, "%s:%d: [daemon] %s given twice", p->path, p->line,
                                    name);
                apply(d, c, value, p->errs, p->path, p->line, "daemon");
                return 1;
            }
        conf_errors_add(p->errs, "%s:%d: unknown key '%s' in [daemon]", p->path, p->line, name);
        return 1;
    case 2: {
        conf_connector *cc = p->cur;
        if (!cc)
            return 1;
        conf_kv *kv = realloc(cc->kv, (cc->n_kv + 1) * sizeof(*kv));
        if (!kv)
            return 0;
        cc->kv = kv;
        kv[cc->n_kv].key = strdup(name);
        kv[cc->n_kv].value = strdup(value);
        kv[cc->n_kv].line = p->line;
        cc->n_kv++;
        /* type and plugin now: they find the implementation */
        const conf_directive *d = config_directive(config_common_connector_keys, name);
        if (d && (d->flags & CONF_EARLY)) {
            char err[256];
            d->set(d, cc, value, err, sizeof(err));
        }
        return 1;
    }
    case 3: {
        if (!valid_name(name)) {
            conf_errors_add(p->errs, "%s:%d: bad channel name '%s'", p->path, p->line, name);
            return 1;
        }
        if (config_channel(c, name)) {
            conf_errors_add(p->errs, "%s:%d: channel '%s' mapped twice", p->path, p->line, name);
            return 1;
        }
        conf_channel *ch = realloc(c->channels, (c->n_channels + 1) * sizeof(*ch));
        if (!ch)
            return 0;
        c->channels = ch;
        ch[c->n_channels].name = strdup(name);
        ch[c->n_channels].connector = strdup(value);
        ch[c->n_channels].line = p->line;
        c->n_channels++;
        return 1;
    }
    default:
        return 1;
    }
}

static void defaults(omni_config *c)
{
    apply_defaults(config_daemon_keys, c);
}

void config_init(omni_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    defaults(cfg);
}

static int daemon_line(const parse_ctx *p, const char *key)
{
    for (size_t i = 0; i < N_DKEYS; i++)
        if (!strcmp(config_daemon_keys[i].name, key))
            return p->line_of[i];
    return 0;
}

/* a Redis password (the primary's or the sentinels'): inline or from its
 * file, not both; an inline one in a file others can read is warned about
 * (by line, never by value) */
static void redis_secret_of(parse_ctx *p, const char *ikey, const char *fkey, char **pw,
                            const char *file)
{
    int fl = daemon_line(p, fkey), il = daemon_line(p, ikey);
    if (*pw && file) {
        conf_errors_add(p->errs, "%s:%d: [daemon] %s and %s: give one", p->path, fl, ikey, fkey);
        return;
    }
    struct stat st;
    if (*pw && !p->str && stat(p->path, &st) == 0 && (st.st_mode & S_IROTH))
        conf_errors_add(p->errs,
                        "%s:%d: warning: [daemon] %s is a secret given inline in a "
                        "file readable by others (use %s = PATH, or chmod o-r "
                        "%s)",
                        p->path, il, ikey, fkey, p->path);
    if (file) {
        char full[PATH_MAX], err[PATH_MAX + 128];
        int open_to_others = 0;
        char *secret = NULL;
        if (conf_read_secret(file, &secret, full, sizeof(full), &open_to_others, err, sizeof(err)) <
            0) {
            conf_errors_add(p->errs, "%s:%d: [daemon] %s: %s", p->path, fl, fkey, err);
            return;
        }
        if (open_to_others)
            conf_errors_add(p->errs,
                            "%s:%d: warning: [daemon] %s: %s is readable by "
                            "group or others",
                            p->path, fl, fkey, full);
        if (!secret[0]) {
            conf_errors_add(p->errs, "%s:%d: [daemon] %s: %s is empty", p->path, fl, fkey, full);
            free(secret);
            return;
        }
        *pw = secret;
    }
}

static void redis_secret(parse_ctx *p)
{
    omni_config *c = p->cfg;
    redis_secret_of(p, "redis_password", "redis_password_file", &c->redis_password,
                    c->redis_password_file);
    redis_secret_of(p, "redis_sentinel_password", "redis_sentinel_password_file",
                    &c->redis_sentinel_password, c->redis_sentinel_password_file);
}

/* redis_sentinels and redis_sentinel_master come together; every sentinel
 * address parses */
static void redis_sentinel_check(parse_ctx *p)
{
    omni_config *c = p->cfg;
    if (!c->redis_sentinels != !c->redis_sentinel_master) {
        conf_errors_add(
            p->errs,
            "%s:%d: [daemon] redis_sentinels and redis_sentinel_master go "
            "together: give both or neither",
            p->path,
            daemon_line(p, c->redis_sentinels ? "redis_sentinels" : "redis_sentinel_master"));
        return;
    }
    if (!c->redis_sentinels)
        return;
    redis_target t[REDIS_MAX_SENTINELS];
    char why[256];
    if (redis_sentinels_parse(c->redis_sentinels, t, REDIS_MAX_SENTINELS, why, sizeof(why)) < 0)
        conf_errors_add(p->errs, "%s:%d: [daemon] redis_sentinels: %s", p->path,
                        daemon_line(p, "redis_sentinels"), why);
}

/* rediss:// settings: only with rediss://; a relative key file is in
 * $CREDENTIALS_DIRECTORY (as the other secrets); and the context is built
 * here once, so that files that do not load (a missing CA, a key that is
 * not the certificate's) stop --check-config rather than the connect */
static void redis_tls(parse_ctx *p)
{
    omni_config *c = p->cfg;
    redis_target t;
    char err[512];
    if (!c->redis || redis_url_parse(c->redis, &t, err, sizeof(err)) < 0)
        return;
    const char *given = c->redis_tls_ca_file       ? "redis_tls_ca_file"
                        : c->redis_tls_cert_file   ? "redis_tls_cert_file"
                        : c->redis_tls_key_file    ? "redis_tls_key_file"
                        : c->redis_tls_server_name ? "redis_tls_server_name"
                                                   : NULL;
    if (!t.tls) {
        if (given)
            conf_errors_add(p->errs, "%s:%d: [daemon] %s is for a rediss:// (TLS) redis URL",
                            p->path, daemon_line(p, given), given);
        return;
    }
    const char *cred = getenv("CREDENTIALS_DIRECTORY");
    if (c->redis_tls_key_file && c->redis_tls_key_file[0] != '/' && cred && *cred) {
        char full[PATH_MAX];
        snprintf(full, sizeof(full), "%s/%s", cred, c->redis_tls_key_file);
        dup_set(&c->redis_tls_key_file, full);
    }
    redis_tls_opts o = {.ca_file = c->redis_tls_ca_file,
                        .cert_file = c->redis_tls_cert_file,
                        .key_file = c->redis_tls_key_file,
                        .server_name = c->redis_tls_server_name};
    SSL_CTX *ctx = redis_tls_ctx_new(&o, err, sizeof(err));
    if (!ctx)
        conf_errors_add(p->errs, "%s: [daemon] %s", p->path, err);
    SSL_CTX_free(ctx);
}

static int finish(parse_ctx *p, int rc)
{
    omni_config *c = p->cfg;
    if (rc > 0)
        conf_errors_add(p->errs, "%s:%d: syntax error (want [section] or key = value)", p->path,
                        rc);
    if (!c->consumer) {
        char host[256] = "host";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        char buf[300];
        snprintf(buf, sizeof(buf), "%s-%d", host, (int)getpid());
        c->consumer = strdup(buf);
    }
    if (c->retry_cap_ms < c->retry_base_ms)
        conf_errors_add(p->errs, "%s: [daemon] retry_cap_ms is smaller than retry_base_ms",
                        p->path);
    redis_secret(p);
    redis_sentinel_check(p);
    free(c->daemon_lines);
    c->daemon_lines = malloc(sizeof(p->line_of));
    if (c->daemon_lines)
        memcpy(c->daemon_lines, p->line_of, sizeof(p->line_of));
    redis_tls(p);
    /* a relative `plugin =` is a file in plugin_dir (the section order does
     * not matter: this runs after the whole file) */
    for (size_t i = 0; c->plugin_dir && c->plugin_dir[0] && i < c->n_connectors; i++) {
        conf_connector *cc = &c->connectors[i];
        if (!cc->plugin || cc->plugin[0] == '/')
            continue;
        size_t dl = strlen(c->plugin_dir);
        char *full = malloc(dl + strlen(cc->plugin) + 2);
        if (!full) {
            conf_errors_add(p->errs, "%s: out of memory", p->path);
            break;
        }
        sprintf(full, "%s%s%s", c->plugin_dir, c->plugin_dir[dl - 1] == '/' ? "" : "/", cc->plugin);
        for (size_t k = 0; k < cc->n_kv; k++)
            if (!strcmp(cc->kv[k].key, "plugin"))
                dup_set(&cc->kv[k].value, full);
        free(cc->plugin);
        cc->plugin = full;
    }
    for (size_t i = 0; i < c->n_connectors; i++)
        if (!c->connectors[i].type && !c->connectors[i].plugin)
            conf_errors_add(p->errs, "%s:%d: [connector.%s] missing required key 'type'", p->path,
                            c->connectors[i].line, c->connectors[i].name);
    return fatal_count(p->errs, 0) ? -1 : 0;
}

int config_load_file(const char *path, omni_config *cfg, conf_errors *errs)
{
    config_init(cfg);
    cfg->path = strdup(path);
    parse_ctx p = {.cfg = cfg, .errs = errs, .path = path};
    p.f = fopen(path, "r");
    if (!p.f) {
        conf_errors_add(errs, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(reader, &p, handler, &p);
    fclose(p.f);
    return finish(&p, rc);
}

int config_load_string(const char *text, omni_config *cfg, conf_errors *errs)
{
    config_init(cfg);
    cfg->path = strdup("<string>");
    parse_ctx p = {.cfg = cfg, .errs = errs, .path = "<string>", .str = text};
    int rc = ini_parse_stream(reader, &p, handler, &p);
    return finish(&p, rc);
}

/* ---- resolving connectors */

static const oc_config_key *find_key(const oc_config_key *t, const char *name)
{
    for (; t && t->name; t++)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

int conf_read_secret(const char *path, char **out, char *full, size_t full_len,
                     int *readable_by_others, char *err, size_t err_len)
{
    const char *cred = getenv("CREDENTIALS_DIRECTORY");
    if (path[0] != '/' && cred && *cred)
        snprintf(full, full_len, "%s/%s", cred, path);
    else
        snprintf(full, full_len, "%s", path);
    *out = NULL;
    FILE *f = fopen(full, "r");
    if (!f) {
        snprintf(err, err_len, "cannot read %s: %s", full, strerror(errno));
        return -1;
    }
    struct stat st;
    *readable_by_others = fstat(fileno(f), &st) == 0 && (st.st_mode & 077);
    char *buf = malloc(SECRET_MAX + 1);
    size_t n = buf ? fread(buf, 1, SECRET_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n > SECRET_MAX) {
        snprintf(err, err_len, "%s is larger than %d bytes", full, SECRET_MAX);
        free(buf);
        return -1;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static char *read_secret(const char *path, const char *who, const char *key, conf_errors *errs,
                         const char *cfgpath, int line)
{
    char full[PATH_MAX], err[PATH_MAX + 128];
    char *secret;
    int open_to_others = 0;
    if (conf_read_secret(path, &secret, full, sizeof(full), &open_to_others, err, sizeof(err)) <
        0) {
        conf_errors_add(errs, "%s:%d: [%s] %s_file: %s", cfgpath, line, who, key, err);
        return NULL;
    }
    if (open_to_others)
        conf_errors_add(errs, "%s:%d: warning: [%s] %s_file: %s is readable by group or others",
                        cfgpath, line, who, key, full);
    return secret;
}

/* Secrets others can read: the API tokens file open to group or others, and
 * a config file readable by others while it holds a secret inline (named by
 * its key and line, never its value). Warnings, not errors. */
static void warn_exposed_secrets(const omni_config *cfg, const char *inline_who,
                                 const char *inline_key, int inline_line, conf_errors *errs)
{
    struct stat st;
    if (cfg->api_tokens_file && stat(cfg->api_tokens_file, &st) == 0 && (st.st_mode & 077))
        conf_errors_add(errs,
                        "%s: warning: api_tokens_file %s is readable by group or others "
                        "(chmod 0600 it)",
                        cfg->path, cfg->api_tokens_file);
    if (inline_line && stat(cfg->path, &st) == 0 && (st.st_mode & S_IROTH))
        conf_errors_add(errs,
                        "%s:%d: warning: [%s] %s is a secret given inline in a file readable by "
                        "others (use %s_file = PATH, or chmod o-r %s)",
                        cfg->path, inline_line, inline_who, inline_key, inline_key, cfg->path);
}

int config_resolve(omni_config *cfg, conf_find_fn find, void *ctx, conf_errors *errs)
{
    size_t before = errs->n;
    char inline_who[96] = "", inline_key[128] = "";
    int inline_line = 0;
    for (size_t i = 0; i < cfg->n_connectors; i++) {
        conf_connector *c = &cfg->connectors[i];
        char who[96];
        snprintf(who, sizeof(who), "connector.%s", c->name);
        char err[256] = "";
        c->impl = find ? find(ctx, c, err, sizeof(err)) : NULL;
        if (!c->impl) {
            conf_errors_add(errs, "%s:%d: [%s] %s", cfg->path, c->line, who,
                            err[0] ? err : "no implementation");
            continue;
        }
        const oc_config_key *keys = c->impl->keys;
        /* a connector type may name a common key in its own table to give it
         * another default (whatsapp: rate_per_s 80); a value in the section
         * still wins, through the common row's setter below */
        for (const oc_config_key *k = keys; k && k->name; k++) {
            const conf_directive *cd = config_directive(config_common_connector_keys, k->name);
            if (cd && k->default_value && !(cd->flags & CONF_EARLY) &&
                !conf_connector_get_nth(c, k->name, 0))
                apply(cd, c, k->default_value, errs, cfg->path, c->line, who);
        }
        /* each key known; _file secrets read; repeatables; integers */
        for (size_t k = 0; k < c->n_kv; k++) {
            conf_kv *kv = &c->kv[k];
            const conf_directive *ck = config_directive(config_common_connector_keys, kv->key);
            const oc_config_key *ik = ck ? NULL : find_key(keys, kv->key);
            size_t kl = strlen(kv->key);
            if (!ck && !ik && kl > 5 && !strcmp(kv->key + kl - 5, "_file")) {
                char base[128];
                snprintf(base, sizeof(base), "%.*s", (int)(kl - 5), kv->key);
                const oc_config_key *sk = find_key(keys, base);
                if (sk && (sk->flags & OC_KEY_SECRET)) {
                    char *secret = read_secret(kv->value, who, base, errs, cfg->path, kv->line);
                    if (secret) {
                        free(kv->key);
                        free(kv->value);
                        kv->key = strdup(base);
                        kv->value = secret;
                    }
                    continue;
                }
            }
            if (!ck && !ik) {
                conf_errors_add(errs, "%s:%d: unknown key '%s' in [%s]", cfg->path, kv->line,
                                kv->key, who);
                continue;
            }
            unsigned flags = ck ? ck->flags : ik->flags;
            if ((flags & OC_KEY_SECRET) && !inline_line) {
                inline_line = kv->line;
                snprintf(inline_who, sizeof(inline_who), "%s", who);
                snprintf(inline_key, sizeof(inline_key), "%s", kv->key);
            }
            if (!(flags & OC_KEY_REPEATABLE))
                for (size_t j = 0; j < k; j++)
                    if (!strcmp(c->kv[j].key, kv->key)) {
                        conf_errors_add(errs, "%s:%d: [%s] %s given twice", cfg->path, kv->line,
                                        who, kv->key);
                        break;
                    }
            if (ck) {
                /* a common key: its row's setter, with the row's range */
                if (!(ck->flags & CONF_EARLY))
                    apply(ck, c, kv->value, errs, cfg->path, kv->line, who);
                continue;
            }
            long n;
            if ((ik->flags & OC_KEY_INT) && parse_int(kv->value, 0, LONG_MAX, &n) < 0)
                conf_errors_add(errs, "%s:%d: [%s] %s: not a non-negative integer", cfg->path,
                                kv->line, who, kv->key);
            char why[160];
            if ((ik->flags & OC_KEY_URL) && conf_check_url(kv->value, ik->flags, why, sizeof(why)))
                conf_errors_add(errs, "%s:%d: [%s] %s: %s", cfg->path, kv->line, who, kv->key, why);
        }
        for (const oc_config_key *k = keys; k && k->name; k++)
            if ((k->flags & OC_KEY_REQUIRED) && !conf_connector_get(c, k->name))
                conf_errors_add(errs, "%s:%d: [%s] missing required key '%s'", cfg->path, c->line,
                                who, k->name);
    }
    if (cfg->n_channels == 0)
        conf_errors_add(errs, "%s: no [channels] mapping: at least one channel is needed",
                        cfg->path);
    for (size_t i = 0; i < cfg->n_channels; i++)
        if (!config_connector(cfg, cfg->channels[i].connector))
            conf_errors_add(errs, "%s:%d: unknown connector instance '%s' for channel '%s'",
                            cfg->path, cfg->channels[i].line, cfg->channels[i].connector,
                            cfg->channels[i].name);
    warn_exposed_secrets(cfg, inline_who, inline_key, inline_line, errs);
    return fatal_count(errs, before) ? -1 : 0;
}

void config_free(omni_config *c)
{
    if (c->redis_password)
        memset(c->redis_password, 0, strlen(c->redis_password)); /* a secret */
    if (c->redis_sentinel_password)
        memset(c->redis_sentinel_password, 0, strlen(c->redis_sentinel_password));
    for (const conf_directive *d = config_daemon_keys; d->name; d++)
        if (owns_string(d))
            free(*(char **)((char *)c + d->offset));
    for (size_t i = 0; i < c->n_http_listen; i++)
        free(c->http_listen[i]);
    free(c->http_listen);
    for (size_t i = 0; i < c->n_connectors; i++) {
        conf_connector *cc = &c->connectors[i];
        for (size_t k = 0; k < cc->n_kv; k++) {
            free(cc->kv[k].key);
            if (cc->kv[k].value)
                memset(cc->kv[k].value, 0, strlen(cc->kv[k].value)); /* secrets */
            free(cc->kv[k].value);
        }
        free(cc->kv);
        free(cc->name);
        free(cc->type);
        free(cc->plugin);
    }
    free(c->connectors);
    for (size_t i = 0; i < c->n_channels; i++) {
        free(c->channels[i].name);
        free(c->channels[i].connector);
    }
    free(c->channels);
    free(c->path);
    free(c->daemon_lines);
    memset(c, 0, sizeof(*c));
}

int config_daemon_line(const omni_config *cfg, const char *key)
{
    for (size_t i = 0; cfg->daemon_lines && i < N_DKEYS; i++)
        if (!strcmp(config_daemon_keys[i].name, key))
            return cfg->daemon_lines[i];
    return 0;
}

/* ---- --check-config: what the daemon does at start, without starting */

static const char *view_get(void *ctx, const char *key)
{
    return conf_connector_get(ctx, key);
}

static const char *view_get_nth(void *ctx, const char *key, size_t n)
{
    return conf_connector_get_nth(ctx, key, n);
}

/* the instance's init() and free(), with the section as conn.c hands it */
static void check_connector(const omni_config *cfg, conf_connector *c, const oc_host *host,
                            conf_errors *errs)
{
    /* the outbox opens (creates) its file in init(): one the check
     * created is removed again, so a check run as another user (root)
     * leaves no file the daemon's user cannot open */
    const char *created = NULL;
    struct stat st;
    if (!strcmp(c->impl->type, "outbox")) {
        const char *path = conf_connector_get(c, "path");
        if (path && *path && stat(path, &st) < 0 && errno == ENOENT)
            created = path;
    }
    oc_config view = {.ctx = c, .name = c->name, .get = view_get, .get_nth = view_get_nth};
    char err[256] = "";
    void *inst = NULL;
    if (c->impl->init(&view, host, &inst, err, sizeof(err)) < 0)
        conf_errors_add(errs, "%s:%d: [connector.%s] %s", cfg->path, c->line, c->name,
                        err[0] ? err : "the connector refused its configuration");
    else if (c->impl->free && inst)
        c->impl->free(inst);
    if (created && stat(created, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
        unlink(created);
}

/* api_tokens_file as http.c loads it at start (scopes_parse_line): readable,
 * no NUL byte, no token longer than 511 bytes, no empty or unknown scope */
static void check_tokens_file(const omni_config *cfg, int line, conf_errors *errs)
{
    FILE *f = fopen(cfg->api_tokens_file, "r");
    if (!f) {
        conf_errors_add(errs, "%s:%d: [daemon] api_tokens_file: cannot read %s: %s", cfg->path,
                        line, cfg->api_tokens_file, strerror(errno));
        return;
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t got;
    for (int n = 1; (got = getline(&buf, &cap, f)) >= 0; n++) {
        const char *tok, *why = NULL;
        size_t tl;
        unsigned mask;
        if (scopes_parse_line(buf, (size_t)got, &tok, &tl, &mask, &why) < 0) {
            conf_errors_add(errs, "%s:%d: [daemon] api_tokens_file: %s:%d: %s", cfg->path, line,
                            cfg->api_tokens_file, n, why);
            break;
        }
    }
    if (buf) {
        memset(buf, 0, cap); /* tokens */
        free(buf);
    }
    fclose(f);
}

/* tls_ca_file holding at least one PEM certificate (one the daemon cannot
 * read is refused when it loads the file: main.c's load_config) */
static void check_ca_file(const omni_config *cfg, int line, conf_errors *errs)
{
    FILE *f = fopen(cfg->tls_ca_file, "r");
    if (!f)
        return;
    char buf[256];
    int found = 0;
    while (!found && fgets(buf, sizeof(buf), f))
        found = !strncmp(buf, "-----BEGIN CERTIFICATE-----", 27);
    fclose(f);
    if (!found)
        conf_errors_add(errs, "%s:%d: [daemon] tls_ca_file: %s holds no PEM certificate", cfg->path,
                        line, cfg->tls_ca_file);
}

/* log_file: the daemon opens it O_APPEND|O_CREAT at start; checked
 * without creating it (an existing file opened for appending, else its
 * directory writable) */
static void check_log_file(const omni_config *cfg, int line, conf_errors *errs)
{
    int fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return;
    }
    int why = errno;
    if (why == ENOENT) {
        char *dir = strdup(cfg->log_file);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        const char *d = !slash ? "." : slash == dir ? "/" : (*slash = '\0', dir);
        int ok = dir && access(d, W_OK | X_OK) == 0;
        why = errno;
        free(dir);
        if (ok)
            return;
    }
    conf_errors_add(errs, "%s:%d: [daemon] log_file: cannot open %s for appending: %s", cfg->path,
                    line, cfg->log_file, strerror(why));
}

int config_check(const omni_config *cfg, const oc_host *host, conf_errors *errs)
{
    size_t before = errs->n;
    if (cfg->crm_webhook_secret_file) {
        char full[PATH_MAX], err[PATH_MAX + 128];
        char *secret = NULL;
        int open_to_others = 0;
        int line = config_daemon_line(cfg, "crm_webhook_secret_file");
        if (conf_read_secret(cfg->crm_webhook_secret_file, &secret, full, sizeof(full),
                             &open_to_others, err, sizeof(err)) < 0) {
            conf_errors_add(errs, "%s:%d: [daemon] crm_webhook_secret_file: %s", cfg->path, line,
                            err);
        } else {
            if (open_to_others)
                conf_errors_add(errs,
                                "%s:%d: warning: [daemon] crm_webhook_secret_file: %s is "
                                "readable by group or others",
                                cfg->path, line, full);
            memset(secret, 0, strlen(secret));
            free(secret);
        }
    }
    if (cfg->api_tokens_file)
        check_tokens_file(cfg, config_daemon_line(cfg, "api_tokens_file"), errs);
    if (cfg->tls_ca_file)
        check_ca_file(cfg, config_daemon_line(cfg, "tls_ca_file"), errs);
    if (cfg->log_file)
        check_log_file(cfg, config_daemon_line(cfg, "log_file"), errs);
    for (size_t i = 0; host && i < cfg->n_connectors; i++)
        if (cfg->connectors[i].impl)
            check_connector(cfg, &cfg->connectors[i], host, errs);
    return fatal_count(errs, before) ? -1 : 0;
}

const conf_connector *config_connector(const omni_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_connectors; i++)
        if (!strcmp(cfg->connectors[i].name, name))
            return &cfg->connectors[i];
    return NULL;
}

const conf_channel *config_channel(const omni_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_channels; i++)
        if (!strcmp(cfg->channels[i].name, name))
            return &cfg->channels[i];
    return NULL;
}

const char *conf_connector_get_nth(const conf_connector *c, const char *key, size_t n)
{
    for (size_t i = 0; i < c->n_kv; i++)
        if (!strcmp(c->kv[i].key, key) && n-- == 0)
            return c->kv[i].value;
    return NULL;
}

const char *conf_connector_get(const conf_connector *c, const char *key)
{
    const char *v = conf_connector_get_nth(c, key, 0);
    if (v)
        return v;
    /* the connector type's own default first: it may override a common one */
    const oc_config_key *k = c->impl ? find_key(c->impl->keys, key) : NULL;
    if (k && k->default_value)
        return k->default_value;
    const conf_directive *d = config_directive(config_common_connector_keys, key);
    if (d)
        return d->default_value;
    return k ? k->default_value : NULL;
}
