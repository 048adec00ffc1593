/* The configuration file: defaults, every kind of error with its line,
 * connector keys checked against the connector's own table, _file secrets,
 * and the docs listing every key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "registry.h"

static const oc_connector *find(void *ctx, const conf_connector *c, char *err, size_t len)
{
    (void)ctx;
    const oc_connector *impl = c->type ? registry_builtin(c->type) : NULL;
    if (!impl)
        snprintf(err, len, "unknown connector type '%s'", c->type ? c->type : "");
    return impl;
}

static int has(const conf_errors *e, const char *text)
{
    for (size_t i = 0; i < e->n; i++)
        if (strstr(e->msgs[i], text))
            return 1;
    return 0;
}

static void defaults_apply_when_keys_are_absent(void **state)
{
    (void)state;
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string("[daemon]\n", &c, &e), 0);
    assert_string_equal(c.redis, "redis://127.0.0.1:6379/0");
    assert_string_equal(c.prefix, "omni:");
    assert_int_equal(c.chunk_size, 500);
    assert_int_equal(c.max_inline_recipients, 10000);
    assert_int_equal(c.lease_ms, 30000);
    assert_non_null(c.consumer);
    assert_non_null(strchr(c.consumer, '-'));
    config_free(&c);
    conf_errors_free(&e);
}

static void a_full_config_loads_and_resolves(void **state)
{
    (void)state;
    const char *text = "[daemon]\n"
                       "redis = redis://10.0.0.5:6380/2\n"
                       "prefix = acme:\n"
                       "consumer = node-1\n"
                       "log_format = json\n"
                       "http_listen = 127.0.0.1:8080\n"
                       "http_listen = [::1]:8080\n"
                       "chunk_size = 250\n"
                       "\n"
                       "[connector.wa]\n"
                       "type = whatsapp\n"
                       "phone_number_id = 1234567890\n"
                       "access_token = tok\n"
                       "rate_per_s = 80\n"
                       "max_inflight = 32\n"
                       "\n"
                       "[connector.out]\n"
                       "type = outbox\n"
                       "path = /tmp/x.jsonl\n"
                       "\n"
                       "[channels]\n"
                       "whatsapp = wa\n"
                       "email = out\n";
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), 0);
    assert_int_equal(e.n, 0);
    assert_string_equal(c.prefix, "acme:");
    assert_int_equal(c.n_http_listen, 2);
    assert_int_equal(c.chunk_size, 250);
    const conf_connector *wa = config_connector(&c, "wa");
    assert_non_null(wa);
    assert_true(wa->rate_per_s == 80);
    assert_int_equal(wa->max_inflight, 32);
    assert_string_equal(conf_connector_get(wa, "api_version"), "v21.0"); /* the default */
    assert_string_equal(config_channel(&c, "email")->connector, "out");
    config_free(&c);
    conf_errors_free(&e);
}

static void every_error_is_reported_with_its_line(void **state)
{
    (void)state;
    const char *text = "[daemon]\n"                 /* 1 */
                       "chunk_size = many\n"        /* 2 */
                       "colour = blue\n"            /* 3 */
                       "redis = http://x\n"         /* 4 */
                       "[nonsense]\n"               /* 5 */
                       "[daemon]\n"                 /* 6 */
                       "log_level = loud\n"         /* 7 */
                       "this line has no equals\n"; /* 8 */
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), -1);
    assert_true(has(&e, "<string>:2: [daemon] chunk_size: not an integer in 1..10000"));
    assert_true(has(&e, "<string>:3: unknown key 'colour' in [daemon]"));
    assert_true(has(&e, "<string>:4: [daemon] redis: must be redis://[USER@]HOST[:PORT][/DB]"));
    assert_true(has(&e, "<string>:5: unknown section [nonsense]"));
    assert_true(has(&e, "<string>:7: [daemon] log_level: must be error, warn, info or debug"));
    assert_true(has(&e, "<string>:8: syntax error"));
    config_free(&c);
    conf_errors_free(&e);
}

static void connector_keys_are_checked_against_the_connector(void **state)
{
    (void)state;
    const char *text = "[connector.wa]\n"      /* 1 */
                       "type = whatsapp\n"     /* 2 */
                       "phone_number_id = 1\n" /* 3 */
                       "acess_token = typo\n"  /* 4 */
                       "max_inflight = lots\n" /* 5 */
                       "[connector.x]\n"       /* 6 */
                       "type = carrier-pigeon\n"
                       "[channels]\n"
                       "whatsapp = wa\n"
                       "sms = nobody\n"; /* 10 */
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), -1);
    assert_true(has(&e, "<string>:4: unknown key 'acess_token' in [connector.wa]"));
    assert_true(has(&e, "<string>:1: [connector.wa] missing required key 'access_token'"));
    assert_true(has(&e, "<string>:5: [connector.wa] max_inflight: not an integer in 1..100000"));
    assert_true(has(&e, "<string>:6: [connector.x] unknown connector type 'carrier-pigeon'"));
    assert_true(has(&e, "<string>:10: unknown connector instance 'nobody' for channel 'sms'"));
    config_free(&c);
    conf_errors_free(&e);
}

static void common_connector_keys_out_of_range_are_errors(void **state)
{
    (void)state;
    const char *text = "[connector.out]\n"              /* 1 */
                       "type = outbox\n"                /* 2 */
                       "path = /tmp/x.jsonl\n"          /* 3 */
                       "max_inflight = 0\n"             /* 4 */
                       "timeout_ms = 0\n"               /* 5 */
                       "burst = 20000000\n"             /* 6 */
                       "connect_timeout_ms = 3600001\n" /* 7 */
                       "rate_per_s = 2000000\n"         /* 8 */
                       "[connector.o2]\n"               /* 9 */
                       "type = outbox\n"                /* 10 */
                       "path = /tmp/y.jsonl\n"          /* 11 */
                       "burst = -1\n"                   /* 12 */
                       "rate_per_s = nan\n"             /* 13 */
                       "timeout_ms = 10s\n"             /* 14 */
                       "[connector.o3]\n"               /* 15 */
                       "type = outbox\n"                /* 16 */
                       "path = /tmp/z.jsonl\n"          /* 17 */
                       "max_inflight = 100000\n"        /* 18 */
                       "timeout_ms = 1\n"               /* 19 */
                       "burst = 1000000\n"              /* 20 */
                       "rate_per_s = 0.5\n"             /* 21 */
                       "[channels]\n"
                       "sms = out\n";
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), -1);
    assert_true(has(&e, "<string>:4: [connector.out] max_inflight: not an integer in 1..100000"));
    assert_true(has(&e, "<string>:5: [connector.out] timeout_ms: not an integer in 1..3600000"));
    assert_true(has(&e, "<string>:6: [connector.out] burst: not an integer in 0..1000000"));
    assert_true(
        has(&e, "<string>:7: [connector.out] connect_timeout_ms: not an integer in 1..3600000"));
    assert_true(has(&e, "<string>:8: [connector.out] rate_per_s: not a number in 0..1000000"));
    assert_true(has(&e, "<string>:12: [connector.o2] burst: not an integer in 0..1000000"));
    assert_true(has(&e, "<string>:13: [connector.o2] rate_per_s: not a number in 0..1000000"));
    assert_true(has(&e, "<string>:14: [connector.o2] timeout_ms: not an integer in 1..3600000"));
    assert_int_equal(e.n, 8); /* one error a bad line, none for the good ones */
    /* the limits themselves are accepted */
    const conf_connector *o3 = &c.connectors[2];
    assert_int_equal(o3->max_inflight, 100000);
    assert_int_equal(o3->timeout_ms, 1);
    assert_int_equal(o3->burst, 1000000);
    assert_true(o3->rate_per_s == 0.5);
    config_free(&c);
    conf_errors_free(&e);
}

static void every_row_has_a_setter_and_a_default_its_setter_takes(void **state)
{
    (void)state;
    const conf_directive *tables[] = {config_daemon_keys, config_common_connector_keys};
    for (size_t t = 0; t < 2; t++)
        for (const conf_directive *d = tables[t]; d->name; d++) {
            assert_non_null(d->set);
            assert_non_null(d->help);
            assert_ptr_equal(config_directive(tables[t], d->name), d); /* names unique */
            if (!d->default_value)
                continue;
            omni_config c;
            conf_connector cc;
            memset(&c, 0, sizeof(c));
            memset(&cc, 0, sizeof(cc));
            char err[256] = "";
            int rc =
                d->set(d, t == 0 ? (void *)&c : (void *)&cc, d->default_value, err, sizeof(err));
            if (rc)
                fprintf(stderr, "%s = %s: %s\n", d->name, d->default_value, err);
            assert_int_equal(rc, 0);
            if (d->set == conf_set_str || d->set == conf_set_choice || d->set == conf_set_redis)
                free(*(char **)((char *)(t == 0 ? (void *)&c : (void *)&cc) + d->offset));
        }
}

static void config_init_and_connector_defaults_come_from_the_table(void **state)
{
    (void)state;
    omni_config c;
    config_init(&c);
    assert_string_equal(c.redis, "redis://127.0.0.1:6379/0");
    assert_string_equal(c.prefix, "omni:");
    assert_string_equal(c.log_format, "text");
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.max_job_bytes, 1048576);
    assert_int_equal(c.max_inline_recipients, 10000);
    assert_int_equal(c.lease_ms, 30000);
    assert_int_equal(c.consumer_idle_remove_ms, 600000);
    assert_int_equal(c.log_bodies, 0);
    assert_null(c.plugin_dir);
    assert_int_equal(c.n_http_listen, 0);
    config_free(&c);

    /* a section without common keys: every one at its default, resolved */
    const char *text = "[connector.out]\ntype = outbox\npath = /tmp/x.jsonl\n"
                       "[connector.c]\ntype = outbox\npath = /tmp/y.jsonl\n"
                       "http_client = curl\nhttp2 = off\nretry_ambiguous = yes\npipeline = 64\n"
                       "[connector.d]\ntype = outbox\npath = /tmp/z.jsonl\nhttp2 = yes\n"
                       "[connector.e]\ntype = outbox\npath = /tmp/w.jsonl\nhttp2 = auto\n"
                       "[channels]\nsms = out\n";
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), 0);
    const conf_connector *o = config_connector(&c, "out");
    assert_int_equal(o->max_inflight, 64);
    assert_int_equal(o->timeout_ms, 10000);
    assert_int_equal(o->connect_timeout_ms, 3000);
    assert_int_equal(o->burst, 0);
    assert_true(o->rate_per_s == 0);
    assert_int_equal(o->http2, OC_HTTP2_AUTO); /* h2 offered where the native client carries it */
    assert_int_equal(o->native, 1);
    assert_int_equal(o->pipeline, 1);
    assert_int_equal(o->retry_ambiguous, 0);
    assert_string_equal(conf_connector_get(o, "max_inflight"), "64");
    assert_string_equal(conf_connector_get(o, "http_client"), "native");
    assert_string_equal(conf_connector_get(o, "http2"), "auto");
    const conf_connector *k = config_connector(&c, "c");
    assert_int_equal(k->native, 0);
    assert_int_equal(k->http2, 0);
    assert_int_equal(k->retry_ambiguous, 1);
    assert_int_equal(k->pipeline, 64);
    assert_int_equal(config_connector(&c, "d")->http2, 1);
    assert_int_equal(config_connector(&c, "e")->http2, OC_HTTP2_AUTO);
    config_free(&c);
    conf_errors_free(&e);
}

static void every_bad_value_is_reported_not_just_the_first(void **state)
{
    (void)state;
    const char *text = "[daemon]\n"                     /* 1 */
                       "chunk_size = 0\n"               /* 2 */
                       "read_count = 10001\n"           /* 3 */
                       "log_bodies = maybe\n"           /* 4 */
                       "log_format = xml\n"             /* 5 */
                       "prefix =\n"                     /* 6 */
                       "http_listen = 127.0.0.1\n"      /* 7 */
                       "lease_ms = -5\n"                /* 8 */
                       "block_ms = 99999999999999999\n" /* 9 */
                       "[connector.out]\n"              /* 10 */
                       "type = outbox\n"                /* 11 */
                       "path = /tmp/x.jsonl\n"          /* 12 */
                       "http_client = carrier\n"        /* 13 */
                       "http2 = perhaps\n"              /* 14 */
                       "pipeline = 65\n"                /* 15 */
                       "retry_ambiguous = 2\n"          /* 16 */
                       "rate_per_s = inf\n"             /* 17 */
                       "max_inflight = 100001\n"        /* 18 */
                       "[channels]\n"
                       "sms = out\n";
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), -1);
    assert_true(has(&e, "<string>:2: [daemon] chunk_size: not an integer in 1..10000"));
    assert_true(has(&e, "<string>:3: [daemon] read_count: not an integer in 1..10000"));
    assert_true(has(&e, "<string>:4: [daemon] log_bodies: not a boolean (true/false)"));
    assert_true(has(&e, "<string>:5: [daemon] log_format: must be text or json"));
    assert_true(has(&e, "<string>:6: [daemon] prefix: must not be empty"));
    assert_true(has(&e, "<string>:7: [daemon] http_listen: must be ADDR:PORT"));
    assert_true(has(&e, "<string>:8: [daemon] lease_ms: not an integer in 100..86400000"));
    assert_true(has(&e, "<string>:9: [daemon] block_ms: not an integer in 10..60000"));
    assert_int_equal(e.n, 8);
    /* a refused value leaves the default */
    assert_int_equal(c.chunk_size, 500);
    assert_string_equal(c.prefix, "omni:");
    assert_int_equal(config_resolve(&c, find, NULL, &e), -1);
    assert_true(has(&e, "<string>:13: [connector.out] http_client: must be curl or native"));
    assert_true(has(&e, "<string>:14: [connector.out] http2: must be auto, true or false"));
    assert_true(has(&e, "<string>:15: [connector.out] pipeline: not an integer in 1..64"));
    assert_true(has(&e, "<string>:16: [connector.out] retry_ambiguous: not a boolean"));
    assert_true(has(&e, "<string>:17: [connector.out] rate_per_s: not a number in 0..1000000"));
    assert_true(has(&e, "<string>:18: [connector.out] max_inflight: not an integer in 1..100000"));
    assert_int_equal(e.n, 14);
    assert_int_equal(c.connectors[0].max_inflight, 64);
    config_free(&c);
    conf_errors_free(&e);
}

static const oc_connector *find_plugin(void *ctx, const conf_connector *c, char *err, size_t len)
{
    return c->plugin ? registry_load_plugin(c->plugin, err, len) : find(ctx, c, err, len);
}

static void a_relative_plugin_path_is_found_in_plugin_dir(void **state)
{
    (void)state;
    /* [daemon] after the connector: plugin_dir applies all the same */
    const char *text = "[connector.ex]\n"
                       "plugin = oc_example.so\n"
                       "url = http://127.0.0.1:1/x\n"
                       "token = t\n"
                       "[connector.abs]\n"
                       "plugin = " OMNI_BINARY_DIR "/plugins/oc_example.so\n"
                       "url = http://127.0.0.1:1/x\n"
                       "token = t\n"
                       "[channels]\n"
                       "sms = ex\n"
                       "[daemon]\n"
                       "plugin_dir = " OMNI_BINARY_DIR "/plugins/\n";
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_string_equal(c.connectors[0].plugin, OMNI_BINARY_DIR "/plugins/oc_example.so");
    assert_string_equal(conf_connector_get(&c.connectors[0], "plugin"),
                        OMNI_BINARY_DIR "/plugins/oc_example.so");
    assert_string_equal(c.connectors[1].plugin, OMNI_BINARY_DIR "/plugins/oc_example.so");
    assert_int_equal(config_resolve(&c, find_plugin, NULL, &e), 0);
    assert_int_equal(e.n, 0);
    assert_string_equal(c.connectors[0].impl->type, "example");
    config_free(&c);
    conf_errors_free(&e);

    /* without plugin_dir the path is left as written (and not found here) */
    const char *bare = "[connector.ex]\n"
                       "plugin = oc_example.so\n"
                       "url = http://127.0.0.1:1/x\n"
                       "token = t\n"
                       "[channels]\n"
                       "sms = ex\n";
    assert_int_equal(config_load_string(bare, &c, &e), 0);
    assert_string_equal(c.connectors[0].plugin, "oc_example.so");
    assert_int_equal(config_resolve(&c, find_plugin, NULL, &e), -1);
    assert_true(has(&e, "<string>:1: [connector.ex] cannot load plugin"));
    config_free(&c);
    conf_errors_free(&e);
}

static void secrets_come_from_files_relative_to_the_credentials_directory(void **state)
{
    (void)state;
    char dir[] = "/tmp/omni-cred.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/wa_token", dir);
    FILE *f = fopen(path, "w");
    fputs("s3cr3t\n", f);
    fclose(f);
    chmod(path, 0600);
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    const char *text = "[connector.wa]\ntype = whatsapp\nphone_number_id = 1\n"
                       "access_token_file = wa_token\n[channels]\nwhatsapp = wa\n";
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), 0);
    assert_string_equal(conf_connector_get(config_connector(&c, "wa"), "access_token"), "s3cr3t");
    config_free(&c);
    conf_errors_free(&e);

    /* readable by others: a warning, not an error, and never the secret */
    chmod(path, 0644);
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), 0);
    assert_true(has(&e, "warning: [connector.wa] access_token_file"));
    assert_false(has(&e, "s3cr3t"));
    config_free(&c);
    conf_errors_free(&e);

    /* missing: an error naming the file */
    unlink(path);
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), -1);
    assert_true(has(&e, "access_token_file: cannot read"));
    config_free(&c);
    conf_errors_free(&e);
    rmdir(dir);
    unsetenv("CREDENTIALS_DIRECTORY");
}

/* conf_check_url: the scheme each kind of key takes, the host part */
static void urls_are_checked_by_scheme_per_key(void **state)
{
    (void)state;
    const unsigned HTTPS = OC_KEY_URL | OC_KEY_URL_HTTPS, WEB = OC_KEY_URL | OC_KEY_URL_HTTP,
                   SMTP = OC_KEY_URL | OC_KEY_URL_SMTP, ANY = OC_KEY_URL;
    static const struct {
        const char *url;
        unsigned flags;
        int ok;
    } cases[] = {
        {"https://graph.facebook.com", HTTPS, 1},
        {"https://api.twilio.com:443/", HTTPS, 1},
        {"HTTPS://api.twilio.com", HTTPS, 1},
        {"http://127.0.0.1:8080", HTTPS, 1},
        {"http://127.1.2.3/x", HTTPS, 1},
        {"http://localhost:9/", HTTPS, 1},
        {"http://[::1]:9/", HTTPS, 1},
        {"http://api.twilio.com", HTTPS, 0},
        {"http://127.0.0.1.evil.com/", HTTPS, 0},
        {"http://127.0.0.1@evil.com/", HTTPS, 0},
        {"http://localhost.evil.com/", HTTPS, 0},
        {"htp://api.twilio.com", HTTPS, 0},
        {"graph.facebook.com", HTTPS, 0},
        {"https://", HTTPS, 0},
        {"https:///path", HTTPS, 0},
        {"https://host:0/", HTTPS, 0},
        {"https://host:65536/", HTTPS, 0},
        {"https://host:8a/", HTTPS, 0},
        {"https://host:/", HTTPS, 0},
        {"https://ho st/", HTTPS, 0},
        {"https://host/a\tb", HTTPS, 0},
        {"https://[fe80::1%25eth0]/", HTTPS, 0},
        {"https://[2001:db8::1]:8443/v1", HTTPS, 1},
        {"http://crm.example.com/hook", WEB, 1},
        {"https://user:pw@crm.example.com/hook?a=b", WEB, 1},
        {"crm.example.com/hook", WEB, 0},
        {"crm.example.com/hook?next=http://x", WEB, 0},
        {"ftp://crm.example.com/", WEB, 0},
        {"https://u.example/u?t={{token}}", WEB, 1},
        {"smtp://mail.example.com:587", SMTP, 1},
        {"smtps://mail.example.com:465", SMTP, 1},
        {"https://mail.example.com", SMTP, 0},
        {"smtp://", SMTP, 0},
        {"file:///var/spool/x", ANY, 1},
        {"anything+1.2-x://", ANY, 1},
        {"1x://a", ANY, 0},
        {"no-scheme", ANY, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[160] = "";
        int rc = conf_check_url(cases[i].url, cases[i].flags, err, sizeof(err));
        if ((rc == 0) != cases[i].ok)
            fail_msg("%s (flags %#x): rc %d, %s", cases[i].url, cases[i].flags, rc, err);
        if (rc < 0)
            assert_true(err[0] != '\0');
    }
    /* through the tables: a connector's key and crm_webhook_url, with their lines */
    const char *text =
        "[daemon]\n"
        "crm_webhook_url = crm.example.com/hook\n"
        "[connector.sms]\ntype = twilio\n"
        "api_base = htp://api.twilio.com\n"
        "account_sid = AC1\nauth_token = t\nfrom = +15550001\n"
        "[connector.mail]\ntype = smtp\nurl = https://mail.example.com\nfrom = a@b.c\n"
        "[channels]\nsms = sms\n";
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), -1);
    assert_int_equal(config_resolve(&c, find, NULL, &e), -1);
    assert_true(has(&e, "<string>:2: [daemon] crm_webhook_url: not a URL"));
    assert_true(has(&e, "<string>:5: [connector.sms] api_base: scheme htp:// refused"));
    assert_true(has(&e, "<string>:11: [connector.mail] url: scheme https:// refused"));
    config_free(&c);
    conf_errors_free(&e);
}

/* config_check: each connector's init() with its section, refused with the
 * section's line; the files the daemon reads at start */
static void the_check_runs_each_connectors_init_and_reads_the_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/omni-check.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char text[2048];
    snprintf(text, sizeof(text),
             "[daemon]\n"
             "crm_webhook_secret_file = %s/crm_secret\n"
             "api_tokens_file = %s/tokens\n"
             "tls_ca_file = %s/ca.pem\n"
             "log_file = %s/nodir/omni.log\n"
             "[connector.both]\ntype = twilio\naccount_sid = AC1\nauth_token = t\n"
             "from = +15550001\nmessaging_service_sid = MG1\n"
             "[connector.neither]\ntype = twilio\naccount_sid = AC1\nauth_token = t\n"
             "[connector.mail]\ntype = smtp\nurl = smtp://127.0.0.1:25\nfrom = a@b.c\n"
             "tls = off\n"
             "[connector.out]\ntype = outbox\npath = %s/out.jsonl\n"
             "[channels]\nsms = both\n",
             dir, dir, dir, dir, dir);
    char ca[300];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    FILE *f = fopen(ca, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    omni_config c;
    conf_errors e = {0};
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), 0);
    assert_int_equal(config_check(&c, &registry_host, &e), -1);
    assert_true(has(&e, "<string>:2: [daemon] crm_webhook_secret_file: cannot read"));
    assert_true(has(&e, "<string>:3: [daemon] api_tokens_file: cannot read"));
    assert_true(has(&e, "<string>:4: [daemon] tls_ca_file: "));
    assert_true(has(&e, "holds no PEM certificate"));
    assert_true(has(&e, "<string>:5: [daemon] log_file: cannot open"));
    assert_true(has(&e, "<string>:6: [connector.both] give exactly one of from and "
                        "messaging_service_sid"));
    assert_true(has(&e, "<string>:12: [connector.neither] give exactly one"));
    assert_true(has(&e, "<string>:16: [connector.mail] tls must be starttls or none"));
    assert_false(has(&e, "[connector.out]"));
    config_free(&c);
    conf_errors_free(&e);
    /* the outbox's file, created by its init() for the check, is gone */
    char out[300];
    snprintf(out, sizeof(out), "%s/out.jsonl", dir);
    assert_int_equal(access(out, F_OK), -1);

    /* fixed: only the section's own problems were errors */
    char path[300];
    snprintf(path, sizeof(path), "%s/crm_secret", dir);
    f = fopen(path, "w");
    fputs("k\n", f);
    fclose(f);
    chmod(path, 0600);
    snprintf(path, sizeof(path), "%s/tokens", dir);
    f = fopen(path, "w");
    fputs("# comment\ntok1\n", f);
    fclose(f);
    f = fopen(ca, "w");
    fputs("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/nodir", dir);
    mkdir(path, 0700);
    snprintf(text, sizeof(text),
             "[daemon]\n"
             "crm_webhook_secret_file = %s/crm_secret\n"
             "api_tokens_file = %s/tokens\n"
             "tls_ca_file = %s/ca.pem\n"
             "log_file = %s/nodir/omni.log\n"
             "[connector.sms]\ntype = twilio\naccount_sid = AC1\nauth_token = t\n"
             "messaging_service_sid = MG1\n"
             "[channels]\nsms = sms\n",
             dir, dir, dir, dir);
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), 0);
    assert_int_equal(config_check(&c, &registry_host, &e), 0);
    snprintf(path, sizeof(path), "%s/nodir/omni.log", dir);
    assert_int_equal(access(path, F_OK), -1); /* the log file is not created */
    config_free(&c);
    conf_errors_free(&e);

    /* a token line too long */
    snprintf(path, sizeof(path), "%s/tokens", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 600; i++)
        fputc('a', f);
    fputc('\n', f);
    fclose(f);
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), 0);
    assert_int_equal(config_check(&c, &registry_host, &e), -1);
    assert_true(has(&e, "tokens:1: token longer than 511 bytes"));
    config_free(&c);
    conf_errors_free(&e);

    /* a scope that does not exist, on line 2 (nothing of the line shown) */
    f = fopen(path, "w");
    fputs("# tokens\ngood-token read,sned\nother send\n", f);
    fclose(f);
    assert_int_equal(config_load_string(text, &c, &e), 0);
    assert_int_equal(config_resolve(&c, find, NULL, &e), 0);
    assert_int_equal(config_check(&c, &registry_host, &e), -1);
    assert_true(has(&e, "tokens:2: unknown scope"));
    assert_false(has(&e, "good-token"));
    assert_false(has(&e, "sned"));
    config_free(&c);
    conf_errors_free(&e);

    const char *names[] = {"crm_secret", "tokens", "ca.pem", "nodir"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        i < 3 ? unlink(path) : rmdir(path);
    }
    rmdir(dir);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* One row of a key table in docs/configuration.md: "| `key` | default | meaning |". */
typedef struct doc_row {
    char key[64];
    char def[256]; /* the default cell, trimmed */
    int line;
} doc_row;

/* The rows of the first table after the heading that starts with head, up
 * to the next heading. Returns how many (at most max). */
static size_t doc_table(const char *doc, const char *head, doc_row *rows, size_t max)
{
    size_t n = 0;
    int line = 1, in = 0;
    for (const char *p = doc; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0 && p[0] == '#') {
            const char *h = p;
            while (*h == '#')
                h++;
            while (*h == ' ')
                h++;
            if (in)
                break;
            in = !strncmp(h, head, strlen(head));
        } else if (in && len > 3 && !strncmp(p, "| `", 3) && n < max) {
            const char *k = p + 3, *ke = memchr(k, '`', len - 3);
            const char *c2 = ke ? memchr(ke, '|', len - (size_t)(ke - p)) : NULL;
            const char *c3 = c2 ? memchr(c2 + 1, '|', len - (size_t)(c2 + 1 - p)) : NULL;
            if (ke && c3 && (size_t)(ke - k) < sizeof(rows[n].key)) {
                snprintf(rows[n].key, sizeof(rows[n].key), "%.*s", (int)(ke - k), k);
                const char *d = c2 + 1, *de = c3;
                while (d < de && *d == ' ')
                    d++;
                while (de > d && de[-1] == ' ')
                    de--;
                snprintf(rows[n].def, sizeof(rows[n].def), "%.*s", (int)(de - d), d);
                rows[n].line = line;
                n++;
            }
        }
        line++;
        p = nl ? nl + 1 : p + len;
    }
    return n;
}

/* Both ways: every key a table of docs/configuration.md lists has a row
 * with a setter (a reader) in the code's table, with the same default; and
 * every row of the code's table is listed, once, in its section. */
static int quiet; /* the self-check below expects failures: not printed */
#define complain(...) (quiet ? 0 : fprintf(stderr, __VA_ARGS__))

static int check_doc_table(const char *doc, const char *head, const conf_directive *table)
{
    doc_row rows[128];
    size_t n = doc_table(doc, head, rows, 128);
    int bad = 0;
    if (n == 0) {
        complain("docs/configuration.md: no key table under '%s'\n", head);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        const conf_directive *d = config_directive(table, rows[i].key);
        if (!d || !d->set) {
            fprintf(stderr,
                    "docs/configuration.md:%d: `%s` is documented under %s but nothing "
                    "reads it\n",
                    rows[i].line, rows[i].key, head);
            bad++;
            continue;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(rows[k].key, rows[i].key)) {
                complain("docs/configuration.md:%d: `%s` listed twice\n", rows[i].line,
                         rows[i].key);
                bad++;
            }
        char want[300];
        if (d->default_value) {
            snprintf(want, sizeof(want), "`%s`", d->default_value);
            if (strcmp(rows[i].def, want)) {
                complain("docs/configuration.md:%d: `%s` default %s, the code's is %s\n",
                         rows[i].line, rows[i].key, rows[i].def, want);
                bad++;
            }
        } else if (rows[i].def[0] == '`') {
            fprintf(stderr,
                    "docs/configuration.md:%d: `%s` has no default in the code, the doc "
                    "gives %s\n",
                    rows[i].line, rows[i].key, rows[i].def);
            bad++;
        }
    }
    for (const conf_directive *d = table; d->name; d++) {
        size_t i = 0;
        while (i < n && strcmp(rows[i].key, d->name))
            i++;
        if (i == n) {
            complain("docs/configuration.md lacks `%s` under %s\n", d->name, head);
            bad++;
        }
    }
    return bad;
}

static void every_documented_key_has_a_reader_and_every_row_is_documented(void **state)
{
    (void)state;
    char *doc = slurp(OMNI_SOURCE_DIR "/docs/configuration.md");
    assert_non_null(doc);
    int bad = check_doc_table(doc, "[daemon]", config_daemon_keys);
    bad += check_doc_table(doc, "[connector.NAME]", config_common_connector_keys);
    /* the check itself can fail: a made-up key, a wrong default, a missing row */
    const char *fake = "## [daemon]\n\n| key | default | meaning |\n|---|---|---|\n"
                       "| `redis` | `redis://127.0.0.1:6379/0` | x |\n"
                       "| `no_such_key` | `1` | x |\n| `chunk_size` | `499` | x |\n";
    int rows = 0;
    for (const conf_directive *d = config_daemon_keys; d->name; d++)
        rows++;
    /* no_such_key, chunk_size's default, and every row but the two listed */
    quiet = 1;
    assert_int_equal(check_doc_table(fake, "[daemon]", config_daemon_keys), 2 + rows - 2);
    quiet = 0;
    assert_int_equal(bad, 0);
}

static void every_key_of_a_builtin_connector_is_in_the_docs(void **state)
{
    (void)state;
    char want[128];
    int missing = 0;
    char *cdoc = slurp(OMNI_SOURCE_DIR "/docs/connectors.md");
    assert_non_null(cdoc);
    for (const oc_connector *const *c = registry_builtins(); *c; c++)
        for (const oc_config_key *k = (*c)->keys; k && k->name; k++) {
            snprintf(want, sizeof(want), "`%s`", k->name);
            if (!strstr(cdoc, want)) {
                fprintf(stderr, "docs/connectors.md lacks %s (%s)\n", want, (*c)->type);
                missing++;
            }
        }
    assert_int_equal(missing, 0);
}

/* systemd/omnicast.conf.example shows [daemon] keys commented out
 * ("#key = value"): each is a key of the table, and where the table has a
 * default the example shows that default. */
static void the_example_file_shows_the_tables_defaults(void **state)
{
    (void)state;
    char *ex = slurp(OMNI_SOURCE_DIR "/systemd/omnicast.conf.example");
    assert_non_null(ex);
    int bad = 0, seen = 0, in_daemon = 0, line = 0;
    for (char *p = ex; *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        line++;
        if (p[0] == '[')
            in_daemon = !strcmp(p, "[daemon]");
        char key[64], value[256];
        if (in_daemon && sscanf(p, "#%63[a-z_] = %255[^\n]", key, value) == 2) {
            const conf_directive *d = config_directive(config_daemon_keys, key);
            seen++;
            if (!d) {
                fprintf(stderr, "omnicast.conf.example:%d: %s is no [daemon] key\n", line, key);
                bad++;
            } else if (d->default_value && strcmp(d->default_value, value)) {
                fprintf(stderr, "omnicast.conf.example:%d: %s = %s, the default is %s\n", line, key,
                        value, d->default_value);
                bad++;
            }
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    assert_true(seen > 20);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_apply_when_keys_are_absent),
        cmocka_unit_test(a_full_config_loads_and_resolves),
        cmocka_unit_test(every_error_is_reported_with_its_line),
        cmocka_unit_test(connector_keys_are_checked_against_the_connector),
        cmocka_unit_test(common_connector_keys_out_of_range_are_errors),
        cmocka_unit_test(every_row_has_a_setter_and_a_default_its_setter_takes),
        cmocka_unit_test(config_init_and_connector_defaults_come_from_the_table),
        cmocka_unit_test(every_bad_value_is_reported_not_just_the_first),
        cmocka_unit_test(a_relative_plugin_path_is_found_in_plugin_dir),
        cmocka_unit_test(secrets_come_from_files_relative_to_the_credentials_directory),
        cmocka_unit_test(every_documented_key_has_a_reader_and_every_row_is_documented),
        cmocka_unit_test(every_key_of_a_builtin_connector_is_in_the_docs),
        cmocka_unit_test(the_example_file_shows_the_tables_defaults),
        cmocka_unit_test(urls_are_checked_by_scheme_per_key),
        cmocka_unit_test(the_check_runs_each_connectors_init_and_reads_the_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
