/* JSON values with {{var}} strings (see jsontmpl.h). The strings are
 * compiled in the order a depth-first walk meets them (object members in
 * jansson's iteration order, which is stable for an unchanged object), and
 * rendering walks the value again in the same order. */
#include "jsontmpl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 16

struct jtmpl {
    json_t *v;
    tmpl **strs;
    size_t n, cap;
};

static int add(jtmpl *t, tmpl *s)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        tmpl **p = realloc(t->strs, cap * sizeof(*p));
        if (!p)
            return -1;
        t->strs = p;
        t->cap = cap;
    }
    t->strs[t->n++] = s;
    return 0;
}

/* where: the path so far, for the error */
static int compile(jtmpl *t, json_t *v, char *where, size_t wlen, int depth, char *err,
                   size_t err_len)
{
    if (depth > DEPTH_MAX) {
        snprintf(err, err_len, "%s: nested too deeply", where[0] ? where : "value");
        return -1;
    }
    size_t at = strlen(where);
    if (json_is_string(v)) {
        char e[128];
        tmpl *s = tmpl_compile(json_string_value(v), e, sizeof(e));
        if (!s) {
            snprintf(err, err_len, "%s: %s", where[0] ? where : "value", e);
            return -1;
        }
        if (add(t, s) < 0) {
            tmpl_free(s);
            snprintf(err, err_len, "out of memory");
            return -1;
        }
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            snprintf(where + at, wlen - at, "[%zu]", i);
            if (compile(t, x, where, wlen, depth + 1, err, err_len) < 0)
                return -1;
        }
        where[at] = '\0';
        return 0;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            snprintf(where + at, wlen - at, "%s%s", at ? "." : "", k);
            if (compile(t, x, where, wlen, depth + 1, err, err_len) < 0)
                return -1;
        }
        where[at] = '\0';
    }
    return 0;
}

jtmpl *jtmpl_compile(json_t *v, char *err, size_t err_len)
{
    jtmpl *t = calloc(1, sizeof(*t));
    if (!t || !v) {
        free(t);
        snprintf(err, err_len, v ? "out of memory" : "no value");
        return NULL;
    }
    t->v = json_incref(v);
    char where[256] = "";
    if (compile(t, v, where, sizeof(where), 0, err, err_len) < 0) {
        jtmpl_free(t);
        return NULL;
    }
    return t;
}

void jtmpl_free(jtmpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        tmpl_free(t->strs[i]);
    free(t->strs);
    json_decref(t->v);
    free(t);
}

typedef struct walk {
    const jtmpl *t;
    size_t next;
    tmpl_lookup_fn lookup;
    void *ctx;
    oc_buf *out;
    char *missing;
    size_t missing_len;
} walk;

static int emit(walk *w, json_t *v)
{
    oc_buf *out = w->out;
    switch (json_typeof(v)) {
    case JSON_STRING: {
        if (w->next >= w->t->n)
            return -1; /* the value changed since it was compiled */
        if (oc_buf_puts(out, "\"") < 0 ||
            tmpl_render(w->t->strs[w->next++], w->lookup, w->ctx, OC_ESCAPE_JSON, out, w->missing,
                        w->missing_len) < 0)
            return -1;
        return oc_buf_puts(out, "\"");
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        if (oc_buf_puts(out, "[") < 0)
            return -1;
        json_array_foreach(v, i, x)
        {
            if ((i && oc_buf_puts(out, ",") < 0) || emit(w, x) < 0)
                return -1;
        }
        return oc_buf_puts(out, "]");
    }
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        if (oc_buf_puts(out, "{") < 0)
            return -1;
        json_object_foreach(v, k, x)
        {
            if ((!first && oc_buf_puts(out, ",") < 0) || oc_buf_puts(out, "\"") < 0 ||
                json_escape_append(out, k, strlen(k)) < 0 || oc_buf_puts(out, "\":") < 0 ||
                emit(w, x) < 0)
                return -1;
            first = 0;
        }
        return oc_buf_puts(out, "}");
    }
    default: {
        /* numbers, true, false, null: jansson's own text */
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        int rc = s ? oc_buf_puts(out, s) : -1;
        free(s);
        return rc;
    }
    }
}

int jtmpl_render(const jtmpl *t, tmpl_lookup_fn lookup, void *ctx, oc_buf *out, char *missing,
                 size_t missing_len)
{
    if (missing_len)
        missing[0] = '\0';
    walk w = {t, 0, lookup, ctx, out, missing, missing_len};
    return emit(&w, t->v);
}
