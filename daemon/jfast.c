/* The recipient's JSON, the common shapes parsed straight into a jansson
 * tree (see jfast.h). */
#include "jfast.h"

#include <stdlib.h>

#include "omnicast/utf8.h"

#define DEPTH_MAX 32
#define DIGITS_MAX 18 /* below 2^63 whatever they are: no overflow to judge */

typedef struct jf {
    const char *p, *e;
    int depth;
} jf;

static void ws(jf *f)
{
    while (f->p < f->e && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
        f->p++;
}

/* a string without escapes, at '"': its bytes in place; 0, or -1 (not
 * ours to judge) */
static int str(jf *f, const char **s, size_t *len)
{
    const char *b = ++f->p;
    while (f->p < f->e) {
        unsigned char c = (unsigned char)*f->p;
        if (c == '"') {
            *s = b;
            *len = (size_t)(f->p - b);
            f->p++;
            return oc_utf8_class(b, *len) < 0 ? -1 : 0;
        }
        if (c == '\\' || c < 0x20)
            return -1;
        f->p++;
    }
    return -1;
}

static int word(jf *f, const char *w, size_t n)
{
    if ((size_t)(f->e - f->p) < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (f->p[i] != w[i])
            return 0;
    f->p += n;
    return 1;
}

/* -?[1-9][0-9]{0,17} or 0, followed by something that is not part of a
 * number; anything else is not ours */
static json_t *num(jf *f)
{
    int neg = 0;
    if (f->p < f->e && *f->p == '-') {
        neg = 1;
        f->p++;
    }
    const char *d = f->p;
    long long v = 0;
    while (f->p < f->e && *f->p >= '0' && *f->p <= '9') {
        v = v * 10 + (*f->p - '0');
        f->p++;
        if (f->p - d > DIGITS_MAX)
            return NULL;
    }
    size_t nd = (size_t)(f->p - d);
    if (nd == 0 || (nd > 1 && *d == '0') || (neg && nd == 1 && *d == '0'))
        return NULL;
    if (f->p < f->e && (*f->p == '.' || *f->p == 'e' || *f->p == 'E'))
        return NULL;
    return json_integer(neg ? -v : v);
}

static json_t *value(jf *f);

/* after '{' or '[', or after an element: the closing bracket (0: the end),
 * a ',' before the next element (1), or anything else (-1) */
static int next(jf *f, char close, int first)
{
    ws(f);
    if (f->p < f->e && *f->p == close) {
        f->p++;
        return 0;
    }
    if (first)
        return 1;
    if (f->p < f->e && *f->p == ',') {
        f->p++;
        ws(f);
        return 1;
    }
    return -1;
}

static json_t *object(jf *f)
{
    json_t *o = json_object();
    f->p++; /* { */
    for (int k = next(f, '}', 1); o && k >= 0; k = next(f, '}', 0)) {
        if (k == 0)
            return o;
        const char *key;
        size_t kl;
        if (f->p >= f->e || *f->p != '"' || str(f, &key, &kl) < 0)
            break;
        ws(f);
        if (f->p >= f->e || *f->p != ':')
            break;
        f->p++;
        ws(f);
        json_t *v = value(f);
        if (!v || json_object_setn_new_nocheck(o, key, kl, v) < 0)
            break;
    }
    json_decref(o);
    return NULL;
}

static json_t *array(jf *f)
{
    json_t *a = json_array();
    f->p++; /* [ */
    for (int k = next(f, ']', 1); a && k >= 0; k = next(f, ']', 0)) {
        if (k == 0)
            return a;
        json_t *v = value(f);
        if (!v || json_array_append_new(a, v) < 0)
            break;
    }
    json_decref(a);
    return NULL;
}

static json_t *value(jf *f)
{
    if (f->p >= f->e)
        return NULL;
    json_t *v = NULL;
    switch (*f->p) {
    case '{':
    case '[':
        if (++f->depth > DEPTH_MAX)
            return NULL;
        v = *f->p == '{' ? object(f) : array(f);
        f->depth--;
        return v;
    case '"': {
        const char *s;
        size_t n;
        return str(f, &s, &n) < 0 ? NULL : json_stringn_nocheck(s, n);
    }
    case 't':
        return word(f, "true", 4) ? json_true() : NULL;
    case 'f':
        return word(f, "false", 5) ? json_false() : NULL;
    case 'n':
        return word(f, "null", 4) ? json_null() : NULL;
    default:
        return num(f);
    }
}

json_t *jfast_loadb(const char *s, size_t n)
{
    jf f = {s, s + n, 0};
    ws(&f);
    if (f.p >= f.e || *f.p != '{')
        return NULL;
    json_t *v = value(&f);
    ws(&f);
    if (v && f.p != f.e) {
        json_decref(v);
        return NULL;
    }
    return v;
}
