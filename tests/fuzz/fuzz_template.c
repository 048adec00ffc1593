/* libFuzzer: template compile and render (both escapes), and JSON
 * escaping, on arbitrary bytes; escaped output is always valid UTF-8 JSON
 * string content. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

static const char *lookup(void *ctx, const char *name, size_t len)
{
    (void)name;
    return len % 3 == 0 ? NULL : (const char *)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char err[128], missing[64];
    tmpl *t = tmpl_compile(s, err, sizeof(err));
    if (t) {
        oc_buf b = {0};
        tmpl_render(t, lookup, s, OC_ESCAPE_NONE, &b, missing, sizeof(missing));
        oc_buf_free(&b);
        tmpl_render(t, lookup, s, OC_ESCAPE_JSON, &b, missing, sizeof(missing));
        oc_buf_free(&b);
        tmpl_free(t);
    }
    oc_buf e = {0};
    oc_buf_puts(&e, "\"");
    json_escape_append(&e, (const char *)data, size);
    oc_buf_puts(&e, "\"");
    json_error_t je;
    json_t *j = json_loadb(e.data, e.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        abort(); /* the escaper produced invalid JSON */
    json_decref(j);
    oc_buf_free(&e);
    retry_after_parse_ms(s, 1445412480000LL);
    free(s);
    return 0;
}
