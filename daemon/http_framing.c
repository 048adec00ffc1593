/* RFC 9112 §6.3 framing decision for a request's header list. evhttp picks
 * the first Content-Length and parses it with strtoll (which takes "+2"),
 * and does not insist that chunked is the only coding; a proxy in front may
 * pick another reading. Anything two parties could frame differently is
 * refused here, before the request is acted on. */
#include "http_framing.h"

#include <event2/keyvalq_struct.h>
#include <string.h>
#include <strings.h>

#define CL_DIGITS_MAX 18 /* below 2^63 whatever the digits */

/* A Content-Length value: 1*DIGIT, nothing else. */
static int cl_plain(const char *v)
{
    size_t n = 0;
    for (; v[n]; n++)
        if (v[n] < '0' || v[n] > '9')
            return 0;
    return n > 0 && n <= CL_DIGITS_MAX;
}

/* "chunked" alone, with optional whitespace around it. */
static int te_chunked_only(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (strncasecmp(v, "chunked", 7))
        return 0;
    v += 7;
    while (*v == ' ' || *v == '\t')
        v++;
    return *v == '\0';
}

static const char *cl_value_equal(const char *a, const char *b)
{
    /* leading zeros make equal numbers with different spellings */
    while (*a == '0' && a[1])
        a++;
    while (*b == '0' && b[1])
        b++;
    return strcmp(a, b) ? NULL : a;
}

int http_framing_check(const struct evkeyvalq *headers, const char **why)
{
    const char *cl = NULL, *dummy;
    int n_te = 0, n_cl = 0;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!headers)
        return 0;
    for (const struct evkeyval *kv = headers->tqh_first; kv; kv = kv->next.tqe_next) {
        if (!kv->key || !kv->value)
            continue;
        if (!strcasecmp(kv->key, "Transfer-Encoding")) {
            if (++n_te > 1) {
                *why = "more than one Transfer-Encoding header";
                return -1;
            }
            if (!te_chunked_only(kv->value)) {
                *why = "Transfer-Encoding other than chunked alone";
                return -1;
            }
        } else if (!strcasecmp(kv->key, "Content-Length")) {
            if (!cl_plain(kv->value)) {
                *why = "malformed Content-Length";
                return -1;
            }
            if (n_cl++ && !cl_value_equal(cl, kv->value)) {
                *why = "conflicting Content-Length headers";
                return -1;
            }
            cl = kv->value;
        }
    }
    if (n_te && n_cl) {
        *why = "both Transfer-Encoding and Content-Length";
        return -1;
    }
    return 0;
}
