/* A JSON value whose strings are {{var}} templates (template.h), compiled
 * once per campaign and rendered per recipient to JSON text: used for the
 * WhatsApp template components a job gives in the Cloud API's own shape.
 * Object keys, numbers, booleans and null are copied as they are; every
 * string is rendered and JSON-escaped. Pure: no I/O. */
#ifndef OMNI_JSONTMPL_H
#define OMNI_JSONTMPL_H

#include <jansson.h>
#include <stddef.h>

#include "template.h"

typedef struct jtmpl jtmpl;

/* Compile v (any JSON value; kept, with a reference of its own). NULL on a
 * template syntax error, with err naming the place ("[1].parameters[0].text:
 * unclosed {{") — or on no memory. */
jtmpl *jtmpl_compile(json_t *v, char *err, size_t err_len);
void jtmpl_free(jtmpl *t);

/* Append the value as compact JSON text to out, each string rendered. A
 * variable absent without a default: -1 with its name in missing. */
int jtmpl_render(const jtmpl *t, tmpl_lookup_fn lookup, void *ctx, oc_buf *out, char *missing,
                 size_t missing_len);

#endif
