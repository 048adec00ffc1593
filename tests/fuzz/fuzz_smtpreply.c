/* libFuzzer: the SMTP reply parser, the EHLO capability reader and the
 * dot-stuffer (smtpproto.c) on hostile bytes. The parser never consumes
 * more than given, its lines lie inside the input, and a stream parses the
 * same whole or split at any point; dot-stuffed bodies unstuff to what went
 * in. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpproto.h"

/* the codes of the whole replies of d[0..n), fed in two pieces */
static int run(const char *d, size_t n, size_t split, int *codes, size_t *consumed)
{
    size_t off = 0, limit = split < n ? split : n;
    int k = 0;
    for (;;) {
        smtp_reply r;
        size_t used = 0;
        int rc = smtp_reply_parse(d + off, limit - off, &used, &r);
        if (rc == SMTP_R_OK) {
            assert(used > 0 && used <= limit - off);
            assert(r.code >= 200 && r.code <= 599);
            assert(r.first >= d + off && r.first + r.first_len <= d + off + used);
            assert(r.last >= d + off && r.last + r.last_len <= d + off + used);
            if (k < 64)
                codes[k] = r.code;
            k++;
            off += used;
            continue;
        }
        if (rc == SMTP_R_BAD || limit == n)
            break;
        limit = n;
    }
    *consumed = off;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    int a[64], b[64];
    size_t ca = 0, cb = 0;
    int na = run(d, size, size, a, &ca);
    int nb = run(d, size, size / 2, b, &cb);
    /* a split before a BAD may only see less of it; whole replies agree */
    int m = na < nb ? na : nb;
    for (int i = 0; i < m && i < 64; i++)
        assert(a[i] == b[i]);
    unsigned long long sz;
    (void)smtp_ehlo_caps(d, size, &sz);

    oc_buf out = {0};
    if (smtp_dot_stuff(&out, d, size) == 0) {
        /* unstuff: a doubled dot at the start or after CRLF loses one */
        assert(out.len >= 3);
        size_t tail =
            (size == 0 || (size >= 2 && d[size - 2] == '\r' && d[size - 1] == '\n')) ? 3 : 5;
        assert(out.len >= tail);
        size_t body = out.len - tail, k = 0;
        for (size_t i = 0; i < body; i++) {
            if (out.data[i] == '.' &&
                (i == 0 || (i >= 2 && out.data[i - 1] == '\n' && out.data[i - 2] == '\r'))) {
                assert(i + 1 < body && out.data[i + 1] == '.');
                i++;
            }
            assert(k < size && out.data[i] == d[k]);
            k++;
        }
        assert(k == size);
    }
    oc_buf_free(&out);
    smtp_url u;
    char *url = malloc(size + 8);
    if (url) {
        memcpy(url, "smtp://", 7);
        memcpy(url + 7, d, size);
        url[size + 7] = '\0';
        if (smtp_parse_url(url, &u) == 0) {
            assert(u.port > 0 && u.port < 65536);
            assert(u.host[0] && !strpbrk(u.ehlo, " \r\n"));
        }
        free(url);
    }
    return 0;
}
