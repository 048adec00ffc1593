/* The pure half of the native HTTP/1.1 client (h1.c): the URL check and an
 * incremental response parser over a byte stream. No I/O, no event loop;
 * unit-tested (test_h1) and fuzzed (fuzz_h1). */
#ifndef OMNI_H1PARSE_H
#define OMNI_H1PARSE_H

#include <stddef.h>
#include "omnicast/connector.h" /* oc_buf */

typedef struct h1_url {
    char host[256];     /* without brackets for an IPv6 literal */
    char hostport[264]; /* the Host header: host[:port] as in the URL */
    int port;
    int tls;            /* https:// */
    const char *target; /* points into the URL: path and query ("/" if none) */
    size_t target_len;
} h1_url;

/* 0 if url is an http:// or https:// URL this client takes (no userinfo,
 * a sane target), -1 otherwise. */
int h1_parse_url(const char *url, h1_url *u);

/* An incremental HTTP/1.1 response parser over a byte stream. */
typedef struct h1_parser {
    int st;
    long status;
    long long left; /* bytes left in the body or the current chunk */
    int chunked, close_after, no_body, too_large;
    oc_buf body;
    char retry_after[128];
    char content_type[128];
} h1_parser;

enum { H1_MORE = 0, H1_DONE = 1, H1_BAD = -1 };

/* the parser's states (h1_parser.st) */
enum {
    H1_S_HEAD,
    H1_S_BODY,
    H1_S_CHUNK_SIZE,
    H1_S_CHUNK_DATA,
    H1_S_CHUNK_END,
    H1_S_TRAILER,
    H1_S_UNTIL_EOF
};

/* Feed bytes: *used tells how many were consumed. H1_DONE when a whole
 * response is in the parser (bytes after it are left unconsumed),
 * H1_MORE when more is needed, H1_BAD on a malformed or oversized reply.
 * eof: the peer closed; a body delimited by the close ends there. */
int h1_parse(h1_parser *p, const char *data, size_t len, size_t *used, int eof);
void h1_parser_reset(h1_parser *p); /* for the next response; keeps the body buffer */

#endif
