/* libFuzzer: the SMTP message builder with hostile subjects, addresses and
 * bodies (CR/LF, NUL-truncated, invalid UTF-8, huge lines): a built message
 * never has a header injected, a bare LF, or a line of 998+ octets. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static const char *get(void *ctx, const char *key)
{
    (void)ctx;
    if (!strcmp(key, "url"))
        return "smtp://127.0.0.1:25";
    if (!strcmp(key, "from"))
        return "News <news@example.com>";
    if (!strcmp(key, "tls"))
        return "none";
    if (!strcmp(key, "unsubscribe_url"))
        return "https://example.com/u?t={{token}}";
    return NULL;
}

static const char *get_nth(void *ctx, const char *key, size_t n)
{
    return n ? NULL : get(ctx, key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void *inst;
    const oc_connector *c = registry_builtin("smtp");
    if (!inst) {
        oc_config cfg = {.get = get, .get_nth = get_nth};
        char err[128];
        if (c->init(&cfg, &registry_host, &inst, err, sizeof(err)) < 0)
            abort();
    }
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    /* subject | to | text */
    char *p1 = strchr(s, '|'), *p2 = p1 ? strchr(p1 + 1, '|') : NULL;
    const char *subject = s, *to = "a@example.com", *text = s;
    if (p1 && p2) {
        *p1 = *p2 = '\0';
        to = p1 + 1;
        text = p2 + 1;
    }
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .channel = "email",
                    .to = to,
                    .subject = subject,
                    .text = text,
                    .html = size & 1 ? text : NULL};
    oc_request r;
    memset(&r, 0, sizeof(r));
    oc_outcome o;
    if (c->build(inst, &m, &r, &o) == 0) {
        const char *msg = r.body.data;
        const char *end = strstr(msg, "\r\n\r\n");
        if (!end)
            abort();
        for (const char *q = msg; q < end; q++)
            if (*q == '\n' && (q == msg || q[-1] != '\r'))
                abort(); /* a bare LF in the headers: injection */
        size_t run = 0;
        for (size_t i = 0; i < r.body.len; i++) {
            if (msg[i] == '\n') {
                if (i == 0 || msg[i - 1] != '\r')
                    abort();
                run = 0;
            } else if (++run >= 998) {
                abort();
            }
        }
    }
    oc_request_free(&r);
    free(s);
    return 0;
}
