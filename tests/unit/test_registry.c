/* Built-in connectors and .so plugins go through one ABI check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "registry.h"

static void builtins_are_registered_by_type(void **state)
{
    (void)state;
    const char *types[] = {"outbox", "whatsapp", "twilio", "smtp", "webhook"};
    for (size_t i = 0; i < 5; i++) {
        const oc_connector *c = registry_builtin(types[i]);
        assert_non_null(c);
        assert_string_equal(c->type, types[i]);
        char err[128];
        assert_int_equal(registry_check_abi(c, err, sizeof(err)), 0);
    }
    assert_null(registry_builtin("fax"));
}

static void the_example_plugin_loads_and_passes_the_abi_check(void **state)
{
    (void)state;
    char err[256];
    const oc_connector *c =
        registry_load_plugin(OMNI_BINARY_DIR "/plugins/oc_example.so", err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->type, "example");
    assert_int_equal(c->abi_major, OC_ABI_MAJOR);
    /* a built-in compiled as a plugin is the same connector */
    c = registry_load_plugin(OMNI_BINARY_DIR "/plugins/oc_whatsapp.so", err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->type, "whatsapp");
}

static void a_file_that_is_not_a_plugin_is_refused_clearly(void **state)
{
    (void)state;
    char err[256];
    assert_null(registry_load_plugin("/nonexistent/x.so", err, sizeof(err)));
    assert_non_null(strstr(err, "cannot load plugin"));
    assert_null(registry_load_plugin("libc.so.6", err, sizeof(err)));
    assert_non_null(strstr(err, "is not an omnicast plugin"));
}

static void a_descriptor_from_another_abi_is_refused(void **state)
{
    (void)state;
    oc_connector c = *registry_builtin("outbox");
    c.abi_major = OC_ABI_MAJOR + 1;
    c.abi_minor = 0;
    char err[256];
    assert_int_equal(registry_check_abi(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "connector ABI 2.0, this daemon supports 1.x"));
    c = *registry_builtin("outbox");
    c.struct_size = 8;
    assert_int_equal(registry_check_abi(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "connector descriptor too small (8 bytes)"));
    /* it must reach the end of inbound, not only its start */
    size_t end = offsetof(oc_connector, inbound) + sizeof(c.inbound);
    c.struct_size = (uint32_t)offsetof(oc_connector, inbound);
    assert_int_equal(registry_check_abi(&c, err, sizeof(err)), -1);
    c.struct_size = (uint32_t)(end - 1);
    assert_int_equal(registry_check_abi(&c, err, sizeof(err)), -1);
    c.struct_size = (uint32_t)end;
    assert_int_equal(registry_check_abi(&c, err, sizeof(err)), 0);
    c.struct_size = (uint32_t)sizeof(oc_connector);
    assert_int_equal(registry_check_abi(&c, err, sizeof(err)), 0);
    c = *registry_builtin("outbox");
    c.build = NULL;
    assert_int_equal(registry_check_abi(&c, err, sizeof(err)), -1);
}

/* A connector built against a newer header asks before it calls a service
 * an older daemon lacks. */
static void oc_host_has_tells_an_older_host_from_a_newer(void **state)
{
    (void)state;
    assert_true(OC_HOST_HAS(&registry_host, log));
    assert_true(OC_HOST_HAS(&registry_host, retry_after_ms));
    oc_host older = registry_host;
    older.struct_size = (uint32_t)offsetof(oc_host, retry_after_ms);
    assert_true(OC_HOST_HAS(&older, render));
    assert_false(OC_HOST_HAS(&older, retry_after_ms));
    older.struct_size = (uint32_t)(offsetof(oc_host, retry_after_ms) + sizeof(void *) - 1);
    assert_false(OC_HOST_HAS(&older, retry_after_ms));
    oc_host gap = registry_host;
    gap.render = NULL;
    assert_false(OC_HOST_HAS(&gap, render));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oc_host_has_tells_an_older_host_from_a_newer),
        cmocka_unit_test(builtins_are_registered_by_type),
        cmocka_unit_test(the_example_plugin_loads_and_passes_the_abi_check),
        cmocka_unit_test(a_file_that_is_not_a_plugin_is_refused_clearly),
        cmocka_unit_test(a_descriptor_from_another_abi_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
