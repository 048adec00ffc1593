/* libFuzzer: the HTTP/1.1 response parser and URL splitter never crash,
 * never read past what they were given, never consume more than given, and
 * parse the same stream the same way whole or split at any point. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1parse.h"

/* Parse a stream of answers; returns how many were complete. */
static int run(const char *d, size_t n, size_t split, long *statuses, size_t *body_total)
{
    h1_parser p = {0};
    h1_parser_reset(&p);
    size_t off = 0, limit = split < n ? split : n;
    int done = 0;
    *body_total = 0;
    for (;;) {
        size_t used = 0;
        int eof = limit == n;
        int rc = h1_parse(&p, d + off, limit - off, &used, eof);
        assert(used <= limit - off);
        off += used;
        if (rc == H1_DONE) {
            if (done < 64)
                statuses[done] = p.status;
            done++;
            *body_total += p.body.len;
            h1_parser_reset(&p);
            if (off == n)
                break;
            continue;
        }
        if (rc == H1_BAD)
            break;
        if (limit == n)
            break;
        limit = n; /* the rest arrives */
    }
    oc_buf_free(&p.body);
    return done;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks a split point; the rest is the stream */
    if (size < 1)
        return 0;
    char *d = malloc(size); /* exactly sized: ASan catches any over-read */
    memcpy(d, data + 1, size - 1);
    size_t n = size - 1;
    size_t split = n ? (size_t)data[0] * n / 256 : 0;
    long s1[64], s2[64];
    size_t b1, b2;
    int k1 = run(d, n, n, s1, &b1);
    int k2 = run(d, n, split, s2, &b2);
    assert(k1 == k2 && b1 == b2);
    for (int i = 0; i < k1 && i < 64; i++)
        assert(s1[i] == s2[i] && s1[i] >= 200 && s1[i] <= 999);

    char *url = malloc(n + 1);
    memcpy(url, d, n);
    url[n] = '\0';
    h1_url u;
    if (h1_parse_url(url, &u) == 0) {
        assert(u.port > 0 && u.port < 65536 && u.host[0]);
        assert(u.target >= url && u.target + u.target_len <= url + n);
        for (size_t i = 0; i < u.target_len; i++)
            assert((unsigned char)u.target[i] > ' ');
    }
    free(url);
    free(d);
    return 0;
}
