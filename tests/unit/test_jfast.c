/* jfast_loadb: the same tree as json_loadb for what it takes, NULL (the
 * caller asks jansson) for everything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jfast.h"

/* s taken by the fast path, and equal to jansson's tree */
static void same(const char *s)
{
    json_t *a = jfast_loadb(s, strlen(s));
    json_error_t je;
    json_t *b = json_loadb(s, strlen(s), 0, &je);
    if (!a || !b || !json_equal(a, b))
        fail_msg("not the same tree for %s (fast %p, jansson %p: %s)", s, (void *)a, (void *)b,
                 b ? "" : je.text);
    /* the order of keys too, as a dump shows it */
    char *da = json_dumps(a, JSON_PRESERVE_ORDER), *db = json_dumps(b, JSON_PRESERVE_ORDER);
    assert_string_equal(da, db);
    free(da);
    free(db);
    json_decref(a);
    json_decref(b);
}

/* s left to jansson */
static void left(const char *s, size_t n)
{
    json_t *a = jfast_loadb(s, n);
    if (a)
        fail_msg("the fast path took %.*s", (int)n, s);
}
#define LEFT(s) left(s, sizeof(s) - 1)

/* {"a":[[...[1]...]]} with n arrays, in buf (room for n up to 90) */
static const char *nested(char *buf, int n)
{
    strcpy(buf, "{\"a\":");
    for (int i = 0; i < n; i++)
        strcat(buf, "[");
    strcat(buf, "1");
    for (int i = 0; i < n; i++)
        strcat(buf, "]");
    return strcat(buf, "}");
}

static void recipients_parse_as_jansson_parses_them(void **state)
{
    (void)state;
    same("{\"to\":\"+15550000001\",\"vars\":{\"name\":\"User1\"}}");
    same("  {\n\t\"to\" : \"+15550000001\" ,\r\n \"vars\":{ }}  \n");
    same("{}");
    same("{\"to\":{\"sms\":\"+15550000001\",\"email\":\"a@example.com\"},\"contact_id\":\"c-9\"}");
    same("{\"to\":\"x\",\"vars\":{\"name\":\"Jos\xc3\xa9\",\"city\":\"\xe6\x9d\xb1\xe4\xba\xac\","
         "\"emoji\":\"\xf0\x9f\x98\x80\",\"del\":\"\x7f\"}}");
    same("{\"n\":0,\"m\":-17,\"k\":123456789012345678,\"l\":-999999999999999999}");
    same("{\"t\":true,\"f\":false,\"z\":null,\"a\":[1,\"two\",[],{},[null]],\"e\":[]}");
    /* a key twice: the last value, at the first one's place (jansson's rule) */
    same("{\"a\":1,\"b\":2,\"a\":3}");
    /* 32 deep: the object and 31 arrays */
    char deep[200];
    same(nested(deep, 31));
}

static void everything_else_is_left_to_jansson(void **state)
{
    (void)state;
    /* valid JSON the fast path does not take */
    LEFT("{\"a\":\"line\\nbreak\"}");
    LEFT("{\"a\":\"\\u00e9\"}");
    LEFT("{\"a\\\"b\":1}");
    LEFT("{\"a\":1.5}");
    LEFT("{\"a\":1e3}");
    LEFT("{\"a\":-0}");
    LEFT("{\"a\":1234567890123456789}");
    LEFT("[1,2]");
    LEFT("\"text\"");
    char deep[200];
    const char *d33 = nested(deep, 32); /* 33 deep */
    left(d33, strlen(d33));
    /* and what is not JSON at all (jansson then says why) */
    LEFT("");
    LEFT("   ");
    LEFT("{");
    LEFT("{\"a\"}");
    LEFT("{\"a\":}");
    LEFT("{\"a\":1,}");
    LEFT("{,}");
    LEFT("{\"a\":01}");
    LEFT("{\"a\":+1}");
    LEFT("{\"a\":-}");
    LEFT("{\"a\":tru}");
    LEFT("{\"a\":truex}");
    LEFT("{\"a\":nul}");
    LEFT("{\"a\":[1 2]}");
    LEFT("{\"a\":\"unterminated}");
    LEFT("{\"a\":\"tab\there\"}");
    LEFT("{\"a\":\"\xc3\x28\"}");     /* a cut sequence */
    LEFT("{\"a\":\"\xed\xa0\x80\"}"); /* a surrogate */
    LEFT("{\"a\":\"\xc0\xaf\"}");     /* overlong */
    LEFT("{\"\xff\":1}");
    LEFT("{} {}");
    LEFT("{}x");
    left("{}\0", 3);
    left("{\"a\":\"b\0c\"}", 11);
    LEFT("{'a':1}");
}

/* random documents from JSON's own alphabet: whatever the fast path
 * takes, jansson takes too, as the same tree */
static void random_documents_agree(void **state)
{
    (void)state;
    static const char *const bits[] = {
        "{",       "}",  "[",    "]",   ":",  ",",   " ", "\"a\"", "\"b\"", "\"\xc3\xa9\"",
        "\"\\n\"", "1",  "-",    "0",   "12", "1.5", "e", "true",  "false", "null",
        "\"",      "\\", "\x01", "\xff"};
    unsigned seed = 12345;
    char doc[256];
    int taken = 0;
    for (int i = 0; i < 200000; i++) {
        size_t n = 0;
        doc[n++] = '{';
        int parts = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 14;
        for (int k = 0; k < parts; k++) {
            const char *b = bits[((seed = seed * 1103515245u + 12345u) >> 16) %
                                 (sizeof(bits) / sizeof(bits[0]))];
            size_t bl = strlen(b);
            if (n + bl + 2 >= sizeof(doc))
                break;
            memcpy(doc + n, b, bl);
            n += bl;
        }
        if ((seed >> 20) & 1)
            doc[n++] = '}';
        json_t *a = jfast_loadb(doc, n);
        if (!a)
            continue;
        taken++;
        json_t *b = json_loadb(doc, n, 0, NULL);
        if (!b || !json_equal(a, b))
            fail_msg("fast and jansson differ on %.*s", (int)n, doc);
        json_decref(a);
        json_decref(b);
    }
    assert_true(taken > 1000); /* the generator does reach the fast path */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recipients_parse_as_jansson_parses_them),
        cmocka_unit_test(everything_else_is_left_to_jansson),
        cmocka_unit_test(random_documents_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
