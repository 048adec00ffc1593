/* The Redis URL forms: what --check-config accepts is what the daemon and
 * the CLI connect to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "redisurl.h"

static void the_documented_forms_parse(void **state)
{
    (void)state;
    redis_target t;
    char err[256], name[300];
    assert_int_equal(redis_url_parse("redis://127.0.0.1:6379/0", &t, err, sizeof(err)), 0);
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 6379);
    assert_int_equal(t.db, 0);
    assert_string_equal(t.user, "");
    assert_int_equal(redis_url_parse("redis://omnicast@redis.internal/3", &t, err, sizeof(err)), 0);
    assert_string_equal(t.user, "omnicast");
    assert_string_equal(t.host, "redis.internal");
    assert_int_equal(t.port, 6379);
    assert_int_equal(t.db, 3);
    assert_int_equal(redis_url_parse("redis://[::1]:6380", &t, err, sizeof(err)), 0);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 6380);
    redis_target_name(&t, name, sizeof(name));
    assert_string_equal(name, "[::1]:6380");
    assert_int_equal(redis_url_parse("redis://app@[fe80::1]:7000/", &t, err, sizeof(err)), 0);
    assert_string_equal(t.user, "app");
    assert_string_equal(t.host, "fe80::1");
    assert_int_equal(redis_url_parse("unix:/run/redis/redis.sock?db=2", &t, err, sizeof(err)), 0);
    assert_string_equal(t.path, "/run/redis/redis.sock");
    assert_int_equal(t.db, 2);
    redis_target_name(&t, name, sizeof(name));
    assert_string_equal(name, "unix:/run/redis/redis.sock");
    assert_int_equal(redis_url_parse("redis://h:1", &t, err, sizeof(err)), 0);
    redis_target_name(&t, name, sizeof(name));
    assert_string_equal(name, "h:1");
    assert_int_equal(t.tls, 0);
    /* TLS: the same form after rediss:// */
    assert_int_equal(redis_url_parse("rediss://app@redis.example.com:6380/2", &t, err, sizeof(err)),
                     0);
    assert_int_equal(t.tls, 1);
    assert_string_equal(t.user, "app");
    assert_string_equal(t.host, "redis.example.com");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.db, 2);
    assert_int_equal(redis_url_parse("rediss://[::1]", &t, err, sizeof(err)), 0);
    assert_int_equal(t.tls, 1);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 6379);
}

static void what_cannot_work_is_refused_with_a_reason(void **state)
{
    (void)state;
    redis_target t;
    char err[256];
    struct {
        const char *url, *why;
    } bad[] = {
        {"redis://u:hunter2@h", "a password in the URL is refused"},
        {"redis://:hunter2@h", "a password in the URL is refused"},
        {"rediss://u:hunter2@h:6380", "a password in the URL is refused"},
        {"redis:/h", "must be redis://[USER@]HOST[:PORT][/DB]"},
        {"http://h", "must be redis://[USER@]HOST[:PORT][/DB]"},
        {"redis://", "no host"},
        {"redis://h:0", "the port must be 1..65535"},
        {"redis://h:65536", "the port must be 1..65535"},
        {"redis://h:+1", "the port must be 1..65535"},
        {"redis://h:80x", "the port must be 1..65535"},
        {"redis://h/1001", "the database after '/' must be 0..1000"},
        {"redis://h/-1", "the database after '/' must be 0..1000"},
        {"redis://[::1", "closing ']'"},
        {"redis://[zz]:1", "not an IPv6 address"},
        {"redis://h h", "characters no host name has"},
        {"redis://@h", "the user before '@' is empty"},
        {"unix:", "absolute socket path"},
        {"unix:relative.sock", "absolute socket path"},
        {"unix:/s?db=x", "?db=N"},
        {"unix:/s?pass=1", "?db=N"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (redis_url_parse(bad[i].url, &t, err, sizeof(err)) != -1 || !strstr(err, bad[i].why)) {
            print_error("%s: got '%s', want '%s'\n", bad[i].url, err, bad[i].why);
            fail();
        }
        /* the reason never repeats the URL (it may hold a secret) */
        assert_null(strstr(err, "hunter2"));
    }
}

/* redis_sentinels: HOST:PORT lists, the default sentinel port, refusals */
static void sentinel_lists(void **state)
{
    (void)state;
    redis_target t[REDIS_MAX_SENTINELS];
    char err[256];
    assert_int_equal(
        redis_sentinels_parse("127.0.0.1:26379, s2.internal,[::1]:5000", t, 16, err, sizeof(err)),
        3);
    assert_string_equal(t[0].host, "127.0.0.1");
    assert_int_equal(t[0].port, 26379);
    assert_string_equal(t[1].host, "s2.internal");
    assert_int_equal(t[1].port, 26379);
    assert_string_equal(t[2].host, "::1");
    assert_int_equal(t[2].port, 5000);
    assert_int_equal(redis_sentinels_parse("[::1]", t, 16, err, sizeof(err)), 1);
    assert_int_equal(t[0].port, 26379);
    const char *bad[] = {"",      " ",     "a:1,,b:2", "a:1,", "a:0", "a:70000",
                         "u@a:1", "a:1/2", "a:1 b:2",  "a b",  NULL};
    for (int i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_int_equal(redis_sentinels_parse(bad[i], t, 16, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(redis_sentinels_parse("a:1,b:2,c:3", t, 2, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_documented_forms_parse),
        cmocka_unit_test(what_cannot_work_is_refused_with_a_reason),
        cmocka_unit_test(sentinel_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
