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
    assert_true(has(&e, "<string>:4: [daemon] redis: must be redis://HOST[:PORT][/DB]"));
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

static void every_key_in_the_code_is_in_the_docs(void **state)
{
    (void)state;
    char *doc = slurp(OMNI_SOURCE_DIR "/docs/configuration.md");
    assert_non_null(doc);
    char want[128];
    int missing = 0;
    for (const oc_config_key *k = config_daemon_keys; k->name; k++) {
        snprintf(want, sizeof(want), "`%s`", k->name);
        if (!strstr(doc, want)) {
            fprintf(stderr, "docs/configuration.md lacks %s\n", want);
            missing++;
        }
    }
    for (const oc_config_key *k = config_common_connector_keys; k->name; k++) {
        snprintf(want, sizeof(want), "`%s`", k->name);
        if (!strstr(doc, want)) {
            fprintf(stderr, "docs/configuration.md lacks %s\n", want);
            missing++;
        }
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_apply_when_keys_are_absent),
        cmocka_unit_test(a_full_config_loads_and_resolves),
        cmocka_unit_test(every_error_is_reported_with_its_line),
        cmocka_unit_test(connector_keys_are_checked_against_the_connector),
        cmocka_unit_test(common_connector_keys_out_of_range_are_errors),
        cmocka_unit_test(a_relative_plugin_path_is_found_in_plugin_dir),
        cmocka_unit_test(secrets_come_from_files_relative_to_the_credentials_directory),
        cmocka_unit_test(every_key_in_the_code_is_in_the_docs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
