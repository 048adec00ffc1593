/* The configuration file: INI (libinih), a [daemon] section, one
 * [connector.NAME] section per connector instance and a [channels] section
 * mapping channel names to instances. Keys are declared in tables (the
 * daemon's here, each connector's in its oc_connector), so parsing,
 * --check-config and docs/configuration.md come from one place. Unknown
 * keys and sections are errors, reported with their line. */
#ifndef OMNI_CONFIG_H
#define OMNI_CONFIG_H

#include <stddef.h>
#include "omnicast/connector.h"

typedef struct conf_kv {
    char *key;
    char *value; /* for KEY_file secrets: the file's contents, trailing newline cut */
    int line;
} conf_kv;

typedef struct conf_connector {
    char *name;   /* instance name: the part after "connector." */
    char *type;   /* the `type` key */
    char *plugin; /* the `plugin` key, or NULL */
    int line;     /* line of the section header */
    /* common keys, parsed */
    double rate_per_s; /* 0 = unlimited */
    int burst;
    int max_inflight;
    int timeout_ms;
    int connect_timeout_ms;
    int http2;            /* https URLs: 0 HTTP/1.1, 1 HTTP/2 asked, OC_HTTP2_AUTO */
    int native;           /* http_client = native: plain http:// through h1.c */
    int pipeline;         /* native client: requests in flight per connection */
    int retry_ambiguous;  /* retry a request that may have reached the provider */
    int halt_probe_s;     /* halted: seconds before one probe send */
    int session_window_s; /* customer service window (whatsapp: 86400); 0 = none */
    conf_kv *kv;          /* every key of the section as given (secrets resolved) */
    size_t n_kv;
    const oc_connector *impl; /* resolved by config_resolve(), not owned */
} conf_connector;

typedef struct conf_channel {
    char *name;      /* "whatsapp", "sms", "email", ... */
    char *connector; /* instance name */
    int line;
} conf_channel;

typedef struct omni_config {
    char *path;
    /* [daemon] */
    char *redis;               /* redis://[USER@]HOST:PORT/DB or unix:/path[?db=N] */
    char *redis_username;      /* ACL user, or NULL */
    char *redis_password;      /* inline, or read from redis_password_file; NULL: no AUTH */
    char *redis_password_file; /* as given */
    char *redis_sentinels;     /* HOST:PORT,... or NULL: redis's address is the primary */
    char *redis_sentinel_master;
    char *redis_sentinel_username;
    char *redis_sentinel_password; /* inline, or read from its file */
    char *redis_sentinel_password_file;
    int redis_wait_replicas; /* WAIT after a claim batch; 0: none */
    int redis_wait_timeout_ms;
    char *redis_tls_ca_file;     /* rediss://: CA certificates (PEM); NULL: the system's */
    char *redis_tls_cert_file;   /* rediss://: client certificate (PEM), or NULL */
    char *redis_tls_key_file;    /* rediss://: its key (PEM; relative: $CREDENTIALS_DIRECTORY) */
    char *redis_tls_server_name; /* rediss://: name verified and sent as SNI; NULL: the host */
    char *prefix;                /* "omni:" */
    char *consumer;              /* default: hostname-pid */
    char *log_format;            /* text|json */
    char *log_level;
    char *log_file; /* NULL: stderr */
    int log_bodies;
    int chunk_size;
    int max_inline_recipients;
    int max_job_bytes;
    int read_count;
    int block_ms;
    int claim_idle_ms;
    int reclaim_interval_ms;
    int lease_ms;
    int max_attempts;
    int retry_base_ms;
    int retry_cap_ms;
    int redis_timeout_ms;
    int max_total_connections;
    int max_host_connections;
    char *tls_ca_file;
    int drain_timeout_ms;
    char **http_listen; /* repeatable ADDR:PORT */
    size_t n_http_listen;
    char *api_tokens_file;
    int http_max_body;
    int http_max_headers;
    int http_max_connections;
    int http_timeout_ms;
    int http_header_timeout_ms;
    int attribution_window_s;
    char *opt_out_keywords; /* space-separated, matched on the whole message */
    char *opt_in_keywords;
    int optout_contact; /* optout_scope = contact (1) or channel (0, the default) */
    char *crm_webhook_url;
    char *crm_webhook_secret_file;
    int crm_retry_ms;
    int crm_lease_ms;
    int crm_max_held;
    int keepalive_idle_ms; /* outbound idle keep-alive connections closed after */
    int smtp_native;       /* smtp_client = native (1) or curl (0) */
    int sweep_interval_ms; /* 0: no consistency sweep */
    int sweep_idle_ms;     /* a running campaign without progress this long is swept */
    int chunks_ahead;      /* chunks of one campaign in the stream at once (0: all) */
    /* consumers with nothing pending idle this long are removed (0: never) */
    int consumer_idle_remove_ms;
    char *plugin_dir;

    conf_connector *connectors;
    size_t n_connectors;
    conf_channel *channels;
    size_t n_channels;
    /* the line each [daemon] key was given on (0: not given), indexed like
     * config_daemon_keys; NULL for a config_init() one */
    int *daemon_lines;
} omni_config;

/* A list of "path:line: message" errors collected while loading. */
typedef struct conf_errors {
    char **msgs;
    size_t n;
} conf_errors;

void conf_errors_add(conf_errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conf_errors_free(conf_errors *e);

/* Parse a file / a string into cfg (defaults filled first). Returns 0, or
 * -1 with every problem in errs. Connector keys are checked later by
 * config_resolve() once the connector implementations are known. */
int config_load_file(const char *path, omni_config *cfg, conf_errors *errs);
int config_load_string(const char *text, omni_config *cfg, conf_errors *errs);

/* Look up each connector's implementation with find (built-ins or a
 * plugin), check its keys against the implementation's table (unknown,
 * missing required, bad integers), and check every channel names a defined
 * instance. Returns 0 or -1 with errs. */
typedef const oc_connector *(*conf_find_fn)(void *ctx, const conf_connector *c, char *err,
                                            size_t err_len);
int config_resolve(omni_config *cfg, conf_find_fn find, void *ctx, conf_errors *errs);

void config_free(omni_config *cfg);

/* The line [daemon] key was given on in cfg's file, 0 when it was not. */
int config_daemon_line(const omni_config *cfg, const char *key);

/* What --check-config adds to a loaded and resolved configuration, so that
 * what it calls OK starts: each connector instance's own init() (then
 * free()) on its section exactly as the daemon starts it, handed host;
 * the files the daemon reads at start (crm_webhook_secret_file,
 * api_tokens_file and its token lines, tls_ca_file holding a PEM
 * certificate (its readability is main.c's load_config's), log_file
 * writable). Each problem goes to errs with its
 * line. Nothing is written: a file an instance's init() created for the
 * check (the outbox's) is removed again when it is still empty. host
 * NULL: the files only (a file that did not load). Returns 0, or -1 when a
 * problem is not a warning. */
int config_check(const omni_config *cfg, const oc_host *host, conf_errors *errs);

/* A URL value against a key's flags: OC_KEY_URL alone wants scheme://...
 * without spaces or control characters; OC_KEY_URL_HTTPS https (http only
 * to 127.0.0.0/8, localhost or [::1]), OC_KEY_URL_HTTP http or https,
 * OC_KEY_URL_SMTP smtp or smtps, each with a host and an optional port in
 * 1..65535. Returns 0, or -1 with the reason in err. */
int conf_check_url(const char *v, unsigned flags, char *err, size_t err_len);

/* Read a secret file (a relative path is looked up in
 * $CREDENTIALS_DIRECTORY), trailing newline cut, 64 KiB at most. The
 * resolved path goes to full, whether group/others may read it to
 * *readable_by_others. Returns 0 with *out (caller frees), or -1 with err
 * (which names the file, never its content). */
int conf_read_secret(const char *path, char **out, char *full, size_t full_len,
                     int *readable_by_others, char *err, size_t err_len);

const conf_connector *config_connector(const omni_config *cfg, const char *name);
const conf_channel *config_channel(const omni_config *cfg, const char *name);
/* value of key in a connector section (first occurrence), or NULL */
const char *conf_connector_get(const conf_connector *c, const char *key);
const char *conf_connector_get_nth(const conf_connector *c, const char *key, size_t n);

/* ---- the directive tables
 *
 * One row per key, nginx style: the key's name, the setter that parses a
 * value into the struct at offset, the range (integers, numbers; for
 * strings min is the shortest length), the default (a string the setter
 * parses, NULL: none), one line of help (docs, --check-config), the
 * oc_config_key flags, and for the choice setters the accepted words
 * ("text|json"). Defaults live only here: the parser starts every struct
 * by running each row's setter on its default. */
typedef struct conf_directive conf_directive;

/* Parse value into obj (an omni_config for [daemon] rows, a
 * conf_connector for connector rows). Returns 0, or -1 with the reason in
 * err (no key name, no line: the caller adds "path:line: [section] key: "). */
typedef int (*conf_setter)(const conf_directive *d, void *obj, const char *value, char *err,
                           size_t err_len);

struct conf_directive {
    const char *name;
    conf_setter set;
    size_t offset;
    long min, max;
    const char *default_value; /* NULL: no default */
    const char *help;          /* one line, used by docs */
    unsigned flags;            /* OC_KEY_INT, OC_KEY_REPEATABLE, OC_KEY_REQUIRED, CONF_EARLY */
    const char *arg;           /* choice setters: the accepted words, "a|b|c" */
};

/* a connector row set while the file is read (type, plugin: needed to find
 * the implementation), not again by config_resolve() */
#define CONF_EARLY (1u << 8)

/* The generic setters. int: a decimal integer in min..max into an int;
 * double: a finite number in min..max into a double (NaN refused); bool:
 * true/false, yes/no, on/off, 1/0 into an int; str: a copy (at least min
 * characters) into a char *; choice: one of arg's words, copied into a
 * char *; choice_int: one of arg's words, its index into an int; redis: a
 * redis:// or unix:/ URL into a char *; listen: ADDR:PORT appended to
 * omni_config's http_listen. */
int conf_set_int(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len);
int conf_set_double(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len);
int conf_set_bool(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len);
int conf_set_str(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len);
int conf_set_choice(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len);
/* http2 = auto (the default): HTTP/2 offered by ALPN where the native
 * client carries an https request, HTTP/1.1 through libcurl (a proxy,
 * http_client = curl); the same value in transport_req_opts.http2 */
#define OC_HTTP2_AUTO 2
int conf_set_http2(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len);
int conf_set_choice_int(const conf_directive *d, void *obj, const char *v, char *err,
                        size_t err_len);
int conf_set_redis(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len);
int conf_set_listen(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len);
/* url: conf_check_url() with the row's flags, then a copy into a char * */
int conf_set_url(const conf_directive *d, void *obj, const char *v, char *err, size_t err_len);

/* The [daemon] table and the table of the keys every connector takes
 * (docs, --check-config, the test that checks docs/configuration.md).
 * Terminated by a row whose name is NULL. */
extern const conf_directive config_daemon_keys[];
extern const conf_directive config_common_connector_keys[];

/* The row of table named name, or NULL. */
const conf_directive *config_directive(const conf_directive *table, const char *name);

/* A [daemon] with every default (the CLI without --config uses it);
 * config_free() releases it. */
void config_init(omni_config *cfg);
/* Every common connector key of c at its default (the parser does this for
 * each [connector.NAME] section; a connector's numbers are always in range
 * after config_resolve(): max_inflight >= 1, timeout_ms >= 1, ...). */
void config_connector_defaults(conf_connector *c);

#endif
