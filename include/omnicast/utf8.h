/* UTF-8 as RFC 3629 defines it, for the daemon and the connectors alike. */
#ifndef OMNICAST_UTF8_H
#define OMNICAST_UTF8_H

#include <stddef.h>

/* What n bytes are: 0 all ASCII, 1 well-formed UTF-8 with non-ASCII in it,
 * -1 ill-formed (an overlong form, a surrogate, a code point past
 * U+10FFFF, a sequence cut short, a stray continuation byte, C0/C1/F5-FF). */
static inline int oc_utf8_class(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = 0;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        rc = 1;
        size_t len;
        unsigned lo = 0x80, hi = 0xbf; /* the second byte's range (RFC 3629 4) */
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* beyond U+10FFFF */
        } else {
            return -1;
        }
        if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
            return -1;
        for (size_t k = 2; k < len; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xbf)
                return -1;
        i += len;
    }
    return rc;
}

#endif
