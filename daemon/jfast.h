/* A fast path in front of json_loadb for the small JSON objects a campaign
 * keeps per recipient ({"to": ..., "vars": {...}}), read for every message
 * sent: jansson's lexer takes ~11,000 instructions for such an object,
 * most of them reading it a character at a time through a stream.
 *
 * jfast_loadb builds the same jansson tree json_loadb(s, n, 0) would, for
 * the inputs it takes: an object at the top, strings without escapes
 * (UTF-8 checked as jansson checks it), integers of up to 18 digits, true,
 * false, null, arrays and objects up to 32 deep. Anything else (an escape,
 * a fraction or exponent, a longer or odd number, deeper nesting, a syntax
 * error, bytes after the value) returns NULL without a judgement: the
 * caller asks json_loadb, whose answer stands. So a document means the same
 * either way; fuzz_jfast checks that on every input it tries. */
#ifndef OMNI_JFAST_H
#define OMNI_JFAST_H

#include <jansson.h>
#include <stddef.h>

json_t *jfast_loadb(const char *s, size_t n);

#endif
