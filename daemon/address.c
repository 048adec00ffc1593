/* Per-channel address normalization: E.164 for phone channels, a
 * lower-cased domain for email, trimmed text otherwise. Two spellings of one
 * recipient must become one string, or the duplicate guard cannot see them. */
#include "address.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static void trim(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

static int phone(const char *s, size_t n, char *out, size_t out_len, const char **why)
{
    char digits[32];
    size_t d = 0;
    int plus = 0;
    size_t i = 0;
    if (n && s[0] == '+') {
        plus = 1;
        i = 1;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isdigit(c)) {
            if (d + 1 >= sizeof(digits)) {
                *why = "not an E.164 number";
                return -1;
            }
            digits[d++] = (char)c;
        } else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
            continue;
        } else {
            *why = "not an E.164 number";
            return -1;
        }
    }
    digits[d] = '\0';
    const char *p = digits;
    if (!plus && d > 2 && p[0] == '0' && p[1] == '0') {
        p += 2; /* international prefix 00 */
        d -= 2;
        plus = 1;
    }
    if (!plus || d < 8 || d > 15 || p[0] == '0') {
        *why = "not an E.164 number";
        return -1;
    }
    if (d + 2 > out_len) {
        *why = "address too long";
        return -1;
    }
    out[0] = '+';
    memcpy(out + 1, p, d + 1);
    return 0;
}

static int email(const char *s, size_t n, char *out, size_t out_len, const char **why)
{
    const char *at = memchr(s, '@', n);
    *why = "not an email address";
    if (!at || memchr(at + 1, '@', n - (size_t)(at - s) - 1))
        return -1;
    size_t local = (size_t)(at - s), dom = n - local - 1;
    if (local == 0 || local > 64 || dom == 0 || dom > 253)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' ||
            c == '\\' || c == '(' || c == ')' || c == '[' || c == ']')
            return -1;
    }
    int dot = 0;
    size_t label = 0;
    for (size_t i = 0; i < dom; i++) {
        char c = at[1 + i];
        if (c == '.') {
            if (label == 0)
                return -1;
            dot = 1;
            label = 0;
        } else if (isalnum((unsigned char)c) || c == '-') {
            if (++label > 63)
                return -1;
        } else {
            return -1;
        }
    }
    if (!dot || label == 0)
        return -1;
    if (n + 1 > out_len) {
        *why = "address too long";
        return -1;
    }
    memcpy(out, s, local + 1);
    for (size_t i = 0; i < dom; i++)
        out[local + 1 + i] = (char)tolower((unsigned char)at[1 + i]);
    out[n] = '\0';
    return 0;
}

int addr_normalize(int kind, const char *in, char *out, size_t out_len, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    if (!in) {
        *why = "empty address";
        return -1;
    }
    const char *s = in;
    size_t n = strlen(in);
    trim(&s, &n);
    if (n == 0) {
        *why = "empty address";
        return -1;
    }
    if (n >= ADDR_MAX || n >= out_len) {
        *why = "address too long";
        return -1;
    }
    if (kind == ADDR_PHONE)
        return phone(s, n, out, out_len, why);
    if (kind == ADDR_EMAIL)
        return email(s, n, out, out_len, why);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f) {
            *why = "control character in address";
            return -1;
        }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int addr_bsuid(const char *in, char *out, size_t out_len)
{
    if (!in || !isupper((unsigned char)in[0]) || !isupper((unsigned char)in[1]) || in[2] != '.')
        return -1;
    const char *p = in + 3;
    if (!strncmp(p, "ENT.", 4))
        p += 4; /* a parent BSUID: US.ENT.11815799212886844830 */
    size_t n = 0;
    while (isalnum((unsigned char)p[n]))
        n++;
    if (n == 0 || n > 128 || p[n])
        return -1;
    size_t len = (size_t)(p - in) + n;
    if (len + 1 > out_len)
        return -1;
    memcpy(out, in, len + 1);
    return 0;
}

int addr_kind_for_type(const char *t)
{
    if (!t)
        return ADDR_ANY;
    if (strcmp(t, "whatsapp") == 0 || strcmp(t, "twilio") == 0)
        return ADDR_PHONE;
    if (strcmp(t, "smtp") == 0)
        return ADDR_EMAIL;
    return ADDR_ANY;
}

int addr_kind_for_channel(const char *c)
{
    if (!c)
        return ADDR_ANY;
    if (!strcmp(c, "sms") || !strcmp(c, "whatsapp") || !strcmp(c, "phone") || !strcmp(c, "mms"))
        return ADDR_PHONE;
    if (!strcmp(c, "email") || !strcmp(c, "mail"))
        return ADDR_EMAIL;
    return ADDR_ANY;
}

int addr_channel_kind(const char *connector_type, const char *channel)
{
    int kind = connector_type ? addr_kind_for_type(connector_type) : ADDR_ANY;
    return kind == ADDR_ANY ? addr_kind_for_channel(channel) : kind;
}
