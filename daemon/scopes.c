/* Scoped API tokens (scopes.h): the line parser and the path patterns. */
#include "scopes.h"

#include <string.h>

static const char *const names[] = {"send", "read", "control", "agent", "admin"};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

const char *scopes_name(unsigned scope)
{
    for (size_t i = 0; i < N_NAMES; i++)
        if (scope == 1u << i)
            return names[i];
    return NULL;
}

unsigned scopes_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < N_NAMES; i++)
        if (strlen(names[i]) == len && !memcmp(names[i], name, len))
            return 1u << i;
    return 0;
}

static int space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int scopes_parse_line(const char *line, size_t len, const char **tok, size_t *tok_len,
                      unsigned *mask, const char **why)
{
    if (memchr(line, '\0', len)) {
        *why = "a NUL byte in the line";
        return -1;
    }
    const char *s = line, *e = line + len;
    while (s < e && space(*s))
        s++;
    while (e > s && space(e[-1]))
        e--;
    if (s == e || *s == '#')
        return 0;
    const char *t = s;
    while (t < e && !space(*t))
        t++;
    if ((size_t)(t - s) > SCOPE_TOKEN_MAX) {
        *why = "token longer than 511 bytes";
        return -1;
    }
    *tok = s;
    *tok_len = (size_t)(t - s);
    *mask = SCOPE_ALL;
    if (t == e)
        return 1; /* no scopes: full access, as before scopes existed */
    unsigned m = 0;
    const char *p = t;
    while (p < e) {
        while (p < e && space(*p))
            p++;
        const char *q = p;
        while (q < e && *q != ',' && !space(*q))
            q++;
        const char *next = q;
        while (next < e && space(*next))
            next++;
        if (q == p || (next < e && *next != ',')) {
            *why = q == p ? "an empty scope in the list (scopes: send, read, control, agent, admin)"
                          : "scopes are one list separated by commas (send,read,...)";
            return -1;
        }
        unsigned b = scopes_bit(p, (size_t)(q - p));
        if (!b) {
            *why = "unknown scope (scopes: send, read, control, agent, admin)";
            return -1;
        }
        m |= b;
        if (next < e) { /* a comma: a scope must follow */
            p = next + 1;
            while (p < e && space(*p))
                p++;
            if (p == e) {
                *why = "an empty scope in the list (scopes: send, read, control, agent, admin)";
                return -1;
            }
        } else {
            p = e;
        }
    }
    *mask = m;
    return 1;
}

int scopes_path_match(const char *pattern, const char *path)
{
    const char *p = pattern, *s = path;
    while (*p) {
        if (*p == '*') {
            const char *seg = s;
            while (*s && *s != '/')
                s++;
            if (s == seg)
                return 0;
            p++;
        } else if (*p++ != *s++) {
            return 0;
        }
    }
    return *s == '\0';
}
