/* JSON values with {{var}} strings: the WhatsApp template components of a
 * job, in the shape Meta's Cloud API documents, rendered per recipient. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "jsontmpl.h"

static const char *lookup(void *ctx, const char *name, size_t len)
{
    const char *const *kv = ctx;
    for (size_t i = 0; kv[i]; i += 2)
        if (strlen(kv[i]) == len && !memcmp(kv[i], name, len))
            return kv[i + 1];
    return NULL;
}

/* the components of a marketing template with an image header, body text,
 * currency and date_time parameters and two quick-reply buttons (the
 * Cloud API's send-template example) */
static const char *components =
    "[{\"type\":\"header\",\"parameters\":[{\"type\":\"image\",\"image\":{\"link\":"
    "\"https://cdn.example.com/{{sku}}.png\"}}]},"
    "{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"{{first_name}}\"},"
    "{\"type\":\"currency\",\"currency\":{\"fallback_value\":\"${{price}}\",\"code\":\"USD\","
    "\"amount_1000\":1000}},"
    "{\"type\":\"date_time\",\"date_time\":{\"fallback_value\":\"December 1, 2026\"}}]},"
    "{\"type\":\"button\",\"sub_type\":\"quick_reply\",\"index\":\"0\",\"parameters\":["
    "{\"type\":\"payload\",\"payload\":\"more-{{sku}}\"}]},"
    "{\"type\":\"button\",\"sub_type\":\"quick_reply\",\"index\":1,\"parameters\":["
    "{\"type\":\"payload\",\"payload\":\"STOP\"}]}]";

static void every_string_is_rendered_and_the_rest_kept(void **state)
{
    (void)state;
    json_t *v = json_loads(components, 0, NULL);
    assert_non_null(v);
    char err[128];
    jtmpl *t = jtmpl_compile(v, err, sizeof(err));
    assert_non_null(t);
    const char *vars[] = {"sku", "A-1", "first_name", "Zoë \"Z\"\n", "price", "9.99", NULL};
    oc_buf out = {0};
    char missing[64];
    assert_int_equal(jtmpl_render(t, lookup, vars, &out, missing, sizeof(missing)), 0);
    json_error_t je;
    json_t *r = json_loadb(out.data, out.len, 0, &je);
    assert_non_null(r); /* valid JSON, whatever the variables held */
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(json_array_get(r, 0), "parameters"), 0),
                            "image"),
            "link")),
        "https://cdn.example.com/A-1.png");
    json_t *body = json_object_get(json_array_get(r, 1), "parameters");
    assert_string_equal(json_string_value(json_object_get(json_array_get(body, 0), "text")),
                        "Zoë \"Z\"\n");
    json_t *cur = json_object_get(json_array_get(body, 1), "currency");
    assert_string_equal(json_string_value(json_object_get(cur, "fallback_value")), "$9.99");
    assert_true(json_is_integer(json_object_get(cur, "amount_1000")));
    assert_int_equal(json_integer_value(json_object_get(cur, "amount_1000")), 1000);
    json_t *b2 = json_array_get(r, 3);
    assert_true(json_is_integer(json_object_get(b2, "index")));
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_array_get(r, 2), "parameters"), 0), "payload")),
        "more-A-1");
    /* the structure is the job's: same as the source with the strings swapped */
    assert_int_equal(json_array_size(r), 4);
    json_decref(r);
    /* rendered again for another recipient, into a fresh buffer */
    const char *vars2[] = {"sku", "B", "first_name", "Ann", "price", "1", NULL};
    oc_buf_reset(&out);
    assert_int_equal(jtmpl_render(t, lookup, vars2, &out, missing, sizeof(missing)), 0);
    assert_non_null(strstr(out.data, "\"text\":\"Ann\""));
    assert_non_null(strstr(out.data, "more-B"));
    oc_buf_free(&out);
    jtmpl_free(t);
    json_decref(v); /* the compiled value holds its own reference */
}

static void a_missing_variable_is_named(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"a\":[\"x\",\"{{who}}\"],\"b\":\"{{n|none}}\"}", 0, NULL);
    char err[128], missing[64];
    jtmpl *t = jtmpl_compile(v, err, sizeof(err));
    json_decref(v);
    assert_non_null(t);
    const char *none[] = {NULL};
    oc_buf out = {0};
    assert_int_equal(jtmpl_render(t, lookup, (void *)none, &out, missing, sizeof(missing)), -1);
    assert_string_equal(missing, "who");
    const char *who[] = {"who", "me", NULL};
    oc_buf_reset(&out);
    assert_int_equal(jtmpl_render(t, lookup, (void *)who, &out, missing, sizeof(missing)), 0);
    assert_string_equal(out.data, "{\"a\":[\"x\",\"me\"],\"b\":\"none\"}");
    oc_buf_free(&out);
    jtmpl_free(t);
}

static void a_bad_template_names_its_place(void **state)
{
    (void)state;
    json_t *v = json_loads(
        "[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"hi {{name\"}]}]", 0,
        NULL);
    char err[128];
    assert_null(jtmpl_compile(v, err, sizeof(err)));
    assert_non_null(strstr(err, "[0].parameters[0].text: "));
    json_decref(v);
    /* nesting is bounded */
    char deep[128] = "";
    for (int i = 0; i < 20; i++)
        strcat(deep, "[");
    strcat(deep, "\"x\"");
    for (int i = 0; i < 20; i++)
        strcat(deep, "]");
    v = json_loads(deep, 0, NULL);
    assert_non_null(v);
    assert_null(jtmpl_compile(v, err, sizeof(err)));
    assert_non_null(strstr(err, "nested too deeply"));
    json_decref(v);
}

static void scalars_and_escaped_keys_are_copied(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"k\\\"q\":[1,2.5,true,false,null,-3]}", 0, NULL);
    char err[64], missing[64];
    jtmpl *t = jtmpl_compile(v, err, sizeof(err));
    json_decref(v);
    oc_buf out = {0};
    assert_int_equal(
        jtmpl_render(t, lookup, (void *)(const char *[]){NULL}, &out, missing, sizeof(missing)), 0);
    assert_string_equal(out.data, "{\"k\\\"q\":[1,2.5,true,false,null,-3]}");
    oc_buf_free(&out);
    jtmpl_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_string_is_rendered_and_the_rest_kept),
        cmocka_unit_test(a_missing_variable_is_named),
        cmocka_unit_test(a_bad_template_names_its_place),
        cmocka_unit_test(scalars_and_escaped_keys_are_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
