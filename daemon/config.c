/* The configuration file, parsed with libinih through a line-counting
 * reader (Debian's libinih reports no line numbers itself), checked against
 * key tables: the daemon's here, each connector's in its descriptor.
 * Every problem is collected with its line; nothing unknown is ignored. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX 65536

enum { T_STR, T_INT, T_BOOL, T_LIST, T_REDIS, T_ENUM_FMT, T_ENUM_LEVEL, T_LISTEN };

/* The [daemon] keys: config_daemon_keys names and documents them (docs and
 * --check-config use it); dspec, index for index, says where each goes. */
const oc_config_key config_daemon_keys[] = {
    {"redis", 0, "redis://127.0.0.1:6379/0",
     "Redis URL: redis://HOST[:PORT][/DB] or unix:/path[?db=N]"},
    {"prefix", 0, "omni:", "prefix of every Redis key"},
    {"consumer", 0, NULL,
     "consumer name in the stream groups; default hostname-pid; unique per live instance"},
    {"log_format", 0, "text", "text or json"},
    {"log_level", 0, "info", "error, warn, info or debug"},
    {"log_file", 0, NULL, "append log lines to this file instead of stderr (reopened on SIGHUP)"},
    {"log_bodies", 0, "false", "log recipient addresses unmasked"},
    {"chunk_size", OC_KEY_INT, "500", "recipients per chunk of a campaign"},
    {"max_inline_recipients", OC_KEY_INT, "10000", "cap on recipients inline in a job"},
    {"max_job_bytes", OC_KEY_INT, "1048576", "cap on the size of one job"},
    {"read_count", OC_KEY_INT, "16", "stream entries per XREADGROUP"},
    {"block_ms", OC_KEY_INT, "1000", "XREADGROUP BLOCK time"},
    {"claim_idle_ms", OC_KEY_INT, "60000",
     "pending entries idle this long are taken over (XAUTOCLAIM)"},
    {"reclaim_interval_ms", OC_KEY_INT, "10000",
     "how often to look for stalled entries and touch our own"},
    {"lease_ms", OC_KEY_INT, "30000",
     "how long a claim is held before another instance may declare it uncertain"},
    {"max_attempts", OC_KEY_INT, "5",
     "tries per recipient and channel before failed/retries_exhausted"},
    {"retry_base_ms", OC_KEY_INT, "1000", "first retry backoff ceiling"},
    {"retry_cap_ms", OC_KEY_INT, "300000", "largest retry backoff"},
    {"redis_timeout_ms", OC_KEY_INT, "5000",
     "a Redis that does not answer within this is reconnected"},
    {"max_total_connections", OC_KEY_INT, "256", "outbound connections in all"},
    {"max_host_connections", OC_KEY_INT, "64", "outbound connections per host"},
    {"tls_ca_file", 0, NULL,
     "PEM file of CA certificates that verify providers' TLS (default: the system's)"},
    {"drain_timeout_ms", OC_KEY_INT, "30000",
     "on SIGTERM, exit after this even with work in flight"},
    {"http_listen", OC_KEY_REPEATABLE, NULL,
     "ADDR:PORT for the HTTP API and webhooks (repeatable)"},
    {"api_tokens_file", 0, NULL, "file of API bearer tokens, one per line"},
    {"http_max_body", OC_KEY_INT, "1048576", "largest request body"},
    {"http_max_headers", OC_KEY_INT, "16384", "largest request header block"},
    {"http_max_connections", OC_KEY_INT, "1024",
     "simultaneous HTTP connections; requests beyond get 503 and the connection is closed"},
    {"http_timeout_ms", OC_KEY_INT, "10000", "read/write timeout of an HTTP connection"},
    {"http_header_timeout_ms", OC_KEY_INT, "10000", "a request head must arrive whole within this"},
    {"attribution_window_s", OC_KEY_INT, "604800",
     "a reply is attributed to the last campaign within this"},
    {"plugin_dir", 0, NULL, "directory relative plugin paths are resolved in"},
    {"opt_out_keywords", 0, "STOP STOPALL UNSUBSCRIBE CANCEL END QUIT",
     "replies that opt a contact out (whole message, any case; space-separated)"},
    {"opt_in_keywords", 0, "START UNSTOP YES", "replies that opt a contact back in"},
    {"crm_webhook_url", 0, NULL,
     "POST every conversation event here (JSON, signed); acked on 2xx, retried otherwise"},
    {"crm_webhook_secret_file", 0, NULL,
     "file with the HMAC-SHA256 key for X-Omnicast-Signature on CRM posts"},
    {"crm_retry_ms", OC_KEY_INT, "30000",
     "an event the CRM did not accept is posted again after this"},
    {"keepalive_idle_ms", OC_KEY_INT, "30000",
     "outbound keep-alive connections idle this long are closed (before a provider does it)"},
    {"sweep_interval_ms", OC_KEY_INT, "30000",
     "how often to look for stalled running campaigns to repair (0 = never)"},
    {"chunks_ahead", OC_KEY_INT, "8",
     "chunks of one campaign in the stream at once, the next added as one finishes, so other "
     "campaigns' chunks are read between them (0 = all at creation)"},
    {"sweep_idle_ms", OC_KEY_INT, "120000",
     "a running campaign without progress this long is checked for recipients nothing will "
     "finish"},
    {"consumer_idle_remove_ms", OC_KEY_INT, "600000",
     "consumers of the stream groups with nothing pending and idle this long (dead instances) "
     "are removed (0 = never)"},
    {NULL, 0, NULL, NULL}};

typedef struct daemon_spec {
    int type;
    size_t off;
    long min, max;
} daemon_spec;

#define OFF(f) offsetof(omni_config, f)
static const daemon_spec dspec[] = {
    {T_REDIS, OFF(redis), 0, 0},                     /* redis */
    {T_STR, OFF(prefix), 0, 0},                      /* prefix */
    {T_STR, OFF(consumer), 0, 0},                    /* consumer */
    {T_ENUM_FMT, OFF(log_format), 0, 0},             /* log_format */
    {T_ENUM_LEVEL, OFF(log_level), 0, 0},            /* log_level */
    {T_STR, OFF(log_file), 0, 0},                    /* log_file */
    {T_BOOL, OFF(log_bodies), 0, 1},                 /* log_bodies */
    {T_INT, OFF(chunk_size), 1, 10000},              /* chunk_size */
    {T_INT, OFF(max_inline_recipients), 1, 1000000}, /* max_inline_recipients */
    {T_INT, OFF(max_job_bytes), 1024, 268435456},    /* max_job_bytes */
    {T_INT, OFF(read_count), 1, 10000},              /* read_count */
    {T_INT, OFF(block_ms), 10, 60000},               /* block_ms */
    {T_INT, OFF(claim_idle_ms), 100, 86400000},      /* claim_idle_ms */
    {T_INT, OFF(reclaim_interval_ms), 100, 3600000}, /* reclaim_interval_ms */
    {T_INT, OFF(lease_ms), 100, 86400000},           /* lease_ms */
    {T_INT, OFF(max_attempts), 1, 100},              /* max_attempts */
    {T_INT, OFF(retry_base_ms), 1, 86400000},        /* retry_base_ms */
    {T_INT, OFF(retry_cap_ms), 1, 86400000},         /* retry_cap_ms */
    {T_INT, OFF(redis_timeout_ms), 100, 600000},     /* redis_timeout_ms */
    {T_INT, OFF(max_total_connections), 1, 100000},  /* max_total_connections */
    {T_INT, OFF(max_host_connections), 1, 100000},   /* max_host_connections */
    {T_STR, OFF(tls_ca_file), 0, 0},                 /* tls_ca_file */
    {T_INT, OFF(drain_timeout_ms), 0, 3600000},      /* drain_timeout_ms */
    {T_LISTEN, OFF(http_listen), 0, 0},              /* http_listen */
    {T_STR, OFF(api_tokens_file), 0, 0},             /* api_tokens_file */
    {T_INT, OFF(http_max_body), 1024, 268435456},    /* http_max_body */
    {T_INT, OFF(http_max_headers), 1024, 1048576},   /* http_max_headers */
    {T_INT, OFF(http_max_connections), 1, 1000000},  /* http_max_connections */
    {T_INT, OFF(http_timeout_ms), 100, 600000},      /* http_timeout_ms */
    /* http_header_timeout_ms */
    {T_INT, OFF(http_header_timeout_ms), 100, 600000},
    {T_INT, OFF(attribution_window_s), 0, 31536000}, /* attribution_window_s */
    {T_STR, OFF(plugin_dir), 0, 0},                  /* plugin_dir */
    {T_STR, OFF(opt_out_keywords), 0, 0},            /* opt_out_keywords */
    {T_STR, OFF(opt_in_keywords), 0, 0},             /* opt_in_keywords */
    {T_STR, OFF(crm_webhook_url), 0, 0},             /* crm_webhook_url */
    {T_STR, OFF(crm_webhook_secret_file), 0, 0},     /* crm_webhook_secret_file */
    {T_INT, OFF(crm_retry_ms), 100, 86400000},       /* crm_retry_ms */
    {T_INT, OFF(keepalive_idle_ms), 100, 3600000},   /* keepalive_idle_ms */
    {T_INT, OFF(sweep_interval_ms), 0, 86400000},    /* sweep_interval_ms */
    {T_INT, OFF(chunks_ahead), 0, 1000000},          /* chunks_ahead */
    {T_INT, OFF(sweep_idle_ms), 1000, 86400000},     /* sweep_idle_ms */
    /* consumer_idle_remove_ms */
    {T_INT, OFF(consumer_idle_remove_ms), 0, 604800000},
};
#define N_DKEYS (sizeof(dspec) / sizeof(dspec[0]))
_Static_assert(N_DKEYS == sizeof(config_daemon_keys) / sizeof(config_daemon_keys[0]) - 1,
               "config_daemon_keys and dspec must list the same keys");

const oc_config_key config_common_connector_keys[] = {
    {"type", OC_KEY_REQUIRED, NULL,
     "connector type: whatsapp, twilio, smtp, webhook, outbox, or a plugin's"},
    {"plugin", 0, NULL, "path of a .so connector plugin (a relative one is in plugin_dir if set)"},
    {"rate_per_s", 0, "0",
     "messages per second through this instance (0 = unlimited, at most 1000000)"},
    {"burst", OC_KEY_INT, "0", "token bucket size (0 = the rate, at least 1; at most 1000000)"},
    {"max_inflight", OC_KEY_INT, "64", "transfers in flight at once (1..100000)"},
    {"timeout_ms", OC_KEY_INT, "10000", "total time of one transfer (1..3600000)"},
    {"connect_timeout_ms", OC_KEY_INT, "3000", "connection set-up time (1..3600000)"},
    {"http2", 0, "true", "negotiate HTTP/2 and multiplex on https URLs (true/false)"},
    {"http_client", 0, "native",
     "plain http:// URLs: native (omnicast's HTTP/1.1 client) or curl; https is always libcurl"},
    {"pipeline", OC_KEY_INT, "1",
     "native client: requests written ahead on one keep-alive connection (1 = no pipelining, "
     "at most 64); only for peers that answer pipelined requests in order"},
    {"retry_ambiguous", 0, "false",
     "true: a request that may have reached the provider without an answer is retried "
     "(at-least-once, for a provider that deduplicates); false: it ends uncertain"},
    {NULL, 0, NULL, NULL}};

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

static void set_daemon(parse_ctx *p, size_t i, const char *v)
{
    omni_config *c = p->cfg;
    const daemon_spec *k = &dspec[i];
    const char *name = config_daemon_keys[i].name;
    char *base = (char *)c + k->off;
    long n;
    switch (k->type) {
    case T_INT:
        if (parse_int(v, k->min, k->max, &n) < 0)
            conf_errors_add(p->errs, "%s:%d: [daemon] %s: not an integer in %ld..%ld", p->path,
                            p->line, name, k->min, k->max);
        else
            *(int *)base = (int)n;
        break;
    case T_BOOL: {
        int b = parse_bool(v);
        if (b < 0)
            conf_errors_add(p->errs, "%s:%d: [daemon] %s: not a boolean (true/false)", p->path,
                            p->line, name);
        else
            *(int *)base = b;
        break;
    }
    case T_ENUM_FMT:
        if (strcmp(v, "text") && strcmp(v, "json"))
            conf_errors_add(p->errs, "%s:%d: [daemon] log_format: must be text or json", p->path,
                            p->line);
        else
            dup_set((char **)base, v);
        break;
    case T_ENUM_LEVEL:
        if (strcmp(v, "error") && strcmp(v, "warn") && strcmp(v, "info") && strcmp(v, "debug"))
            conf_errors_add(p->errs,
                            "%s:%d: [daemon] log_level: must be error, warn, info or debug",
                            p->path, p->line);
        else
            dup_set((char **)base, v);
        break;
    case T_REDIS: {
        int ok = 0;
        if (!strncmp(v, "unix:/", 6))
            ok = 1;
        else if (!strncmp(v, "redis://", 8) && v[8] && v[8] != ':' && v[8] != '/')
            ok = 1;
        if (!ok)
            conf_errors_add(p->errs,
                            "%s:%d: [daemon] redis: must be redis://HOST[:PORT][/DB] or unix:/path",
                            p->path, p->line);
        else
            dup_set((char **)base, v);
        break;
    }
    case T_LISTEN:
        if (!valid_listen(v)) {
            conf_errors_add(p->errs, "%s:%d: [daemon] http_listen: must be ADDR:PORT", p->path,
                            p->line);
        } else {
            char **l = realloc(c->http_listen, (c->n_http_listen + 1) * sizeof(*l));
            if (l) {
                c->http_listen = l;
                l[c->n_http_listen++] = strdup(v);
            }
        }
        break;
    default:
        if (!*v && k->off == OFF(prefix))
            conf_errors_add(p->errs, "%s:%d: [daemon] prefix: must not be empty", p->path, p->line);
        else
            dup_set((char **)base, v);
    }
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
                p->cur->max_inflight = 64;
                p->cur->timeout_ms = 10000;
                p->cur->connect_timeout_ms = 3000;
                p->cur->http2 = 1;
                p->cur->native = 1;
                p->cur->pipeline = 1;
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
                if (p->seen[i]++ && dspec[i].type != T_LISTEN)
                    conf_errors_add(p->errs, "%s:%d: [daemon] %s given twice", p->path, p->line,
                                    name);
                set_daemon(p, i, value);
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
        if (!strcmp(name, "type"))
            dup_set(&cc->type, value);
        else if (!strcmp(name, "plugin"))
            dup_set(&cc->plugin, value);
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
    for (size_t i = 0; i < N_DKEYS; i++) {
        const daemon_spec *k = &dspec[i];
        const char *d = config_daemon_keys[i].default_value;
        if (!d)
            continue;
        char *base = (char *)c + k->off;
        if (k->type == T_INT)
            *(int *)base = atoi(d);
        else if (k->type == T_BOOL)
            *(int *)base = parse_bool(d);
        else if (k->type != T_LISTEN)
            *(char **)base = strdup(d);
    }
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
    memset(cfg, 0, sizeof(*cfg));
    defaults(cfg);
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
    memset(cfg, 0, sizeof(*cfg));
    defaults(cfg);
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

/* the common connector keys that are integers, with their ranges */
typedef struct conn_int {
    const char *name;
    long min, max;
    size_t off;
} conn_int;

static const conn_int conn_ints[] = {
    {"burst", 0, 1000000, offsetof(conf_connector, burst)},
    {"max_inflight", 1, 100000, offsetof(conf_connector, max_inflight)},
    {"timeout_ms", 1, 3600000, offsetof(conf_connector, timeout_ms)},
    {"connect_timeout_ms", 1, 3600000, offsetof(conf_connector, connect_timeout_ms)},
};

static const conn_int *find_conn_int(const char *name)
{
    for (size_t i = 0; i < sizeof(conn_ints) / sizeof(conn_ints[0]); i++)
        if (!strcmp(conn_ints[i].name, name))
            return &conn_ints[i];
    return NULL;
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
        /* each key known; _file secrets read; repeatables; integers */
        for (size_t k = 0; k < c->n_kv; k++) {
            conf_kv *kv = &c->kv[k];
            const oc_config_key *ck = find_key(config_common_connector_keys, kv->key);
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
            const oc_config_key *d = ck ? ck : ik;
            if ((d->flags & OC_KEY_SECRET) && !inline_line) {
                inline_line = kv->line;
                snprintf(inline_who, sizeof(inline_who), "%s", who);
                snprintf(inline_key, sizeof(inline_key), "%s", kv->key);
            }
            if (!(d->flags & OC_KEY_REPEATABLE))
                for (size_t j = 0; j < k; j++)
                    if (!strcmp(c->kv[j].key, kv->key)) {
                        conf_errors_add(errs, "%s:%d: [%s] %s given twice", cfg->path, kv->line,
                                        who, kv->key);
                        break;
                    }
            long n;
            /* the common integer keys are checked with their ranges below */
            if (!ck && (d->flags & OC_KEY_INT) && parse_int(kv->value, 0, LONG_MAX, &n) < 0)
                conf_errors_add(errs, "%s:%d: [%s] %s: not a non-negative integer", cfg->path,
                                kv->line, who, kv->key);
            if ((d->flags & OC_KEY_URL) && !strstr(kv->value, "://"))
                conf_errors_add(errs, "%s:%d: [%s] %s: not a URL (scheme://...)", cfg->path,
                                kv->line, who, kv->key);
            if (ck) {
                char *end;
                const conn_int *ci = find_conn_int(kv->key);
                if (ci) {
                    if (parse_int(kv->value, ci->min, ci->max, &n) == 0)
                        *(int *)((char *)c + ci->off) = (int)n;
                    else
                        conf_errors_add(errs, "%s:%d: [%s] %s: not an integer in %ld..%ld",
                                        cfg->path, kv->line, who, kv->key, ci->min, ci->max);
                } else if (!strcmp(kv->key, "rate_per_s")) {
                    double r = strtod(kv->value, &end);
                    if (*end || end == kv->value || !(r >= 0 && r <= 1000000))
                        conf_errors_add(errs, "%s:%d: [%s] rate_per_s: not a number in 0..1000000",
                                        cfg->path, kv->line, who);
                    else
                        c->rate_per_s = r;
                } else if (!strcmp(kv->key, "http2")) {
                    int b = parse_bool(kv->value);
                    if (b < 0)
                        conf_errors_add(errs, "%s:%d: [%s] http2: not a boolean (true/false)",
                                        cfg->path, kv->line, who);
                    else
                        c->http2 = b;
                } else if (!strcmp(kv->key, "http_client")) {
                    if (!strcmp(kv->value, "native") || !strcmp(kv->value, "curl"))
                        c->native = !strcmp(kv->value, "native");
                    else
                        conf_errors_add(errs, "%s:%d: [%s] http_client: native or curl", cfg->path,
                                        kv->line, who);
                } else if (!strcmp(kv->key, "retry_ambiguous")) {
                    int b = parse_bool(kv->value);
                    if (b < 0)
                        conf_errors_add(errs,
                                        "%s:%d: [%s] retry_ambiguous: not a boolean (true/false)",
                                        cfg->path, kv->line, who);
                    else
                        c->retry_ambiguous = b;
                } else if (!strcmp(kv->key, "pipeline")) {
                    if (parse_int(kv->value, 1, 64, &n) == 0)
                        c->pipeline = (int)n;
                    else
                        conf_errors_add(errs, "%s:%d: [%s] pipeline: an integer from 1 to 64",
                                        cfg->path, kv->line, who);
                }
            }
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
    for (size_t i = 0; i < N_DKEYS; i++) {
        const daemon_spec *k = &dspec[i];
        char *base = (char *)c + k->off;
        if (k->type != T_INT && k->type != T_BOOL && k->type != T_LISTEN)
            free(*(char **)base);
    }
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
    memset(c, 0, sizeof(*c));
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
    const oc_config_key *k = find_key(config_common_connector_keys, key);
    if (!k && c->impl)
        k = find_key(c->impl->keys, key);
    return k ? k->default_value : NULL;
}
