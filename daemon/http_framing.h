/* Message framing of an HTTP/1.1 request (RFC 9112 §6.3), decided from its
 * header list alone: pure, no I/O, fuzzed (tests/fuzz/fuzz_http.c). */
#ifndef OMNI_HTTP_FRAMING_H
#define OMNI_HTTP_FRAMING_H

struct evkeyvalq;

/* 0 when the framing is unambiguous: no Transfer-Encoding and every
 * Content-Length a plain decimal (1*DIGIT, at most 18 digits) of one same
 * value; or Transfer-Encoding exactly "chunked" (one coding, any case) and
 * no Content-Length. -1 otherwise (two different lengths, a sign, spaces
 * inside, a list, any other coding, or both headers), with *why naming the
 * fault (a static string). */
int http_framing_check(const struct evkeyvalq *headers, const char **why);

#endif
