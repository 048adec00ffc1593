/* Decimal digits without printf, for strings built once per message (the
 * message id, an HTTP/2 content-length, a Redis command's lengths). */
#ifndef OMNI_DIGITS_H
#define OMNI_DIGITS_H

/* n in decimal, written backwards so that it ends just before end (room
 * for 20 digits): its first digit */
static inline char *digits_before(char *end, unsigned long long n)
{
    do {
        *--end = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    return end;
}

#endif
