/* {{var}} templates: compiled once per campaign, rendered per recipient.
 * Syntax: {{name}} or {{name|default text}}; names are [A-Za-z0-9_.-]+;
 * "{{" with no closing "}}" is an error at compile time. {{{name}}} or
 * {{name|raw}} mark a value as trusted markup: rendered with OC_ESCAPE_HTML
 * it goes in as is (every other value is HTML-escaped; an inline default is
 * the template's own text and is not). Pure logic. */
#ifndef OMNI_TEMPLATE_H
#define OMNI_TEMPLATE_H

#include <stddef.h>
#include "omnicast/connector.h"

typedef struct tmpl tmpl;

/* Looks a variable up; NULL when absent. */
typedef const char *(*tmpl_lookup_fn)(void *ctx, const char *name, size_t len);

tmpl *tmpl_compile(const char *src, char *err, size_t err_len);
void tmpl_free(tmpl *t);
/* Names of the variables a template uses (for validation), n-th or NULL. */
const char *tmpl_var_name(const tmpl *t, size_t n, size_t *len);

/* Append the rendering to out. escape: OC_ESCAPE_NONE, OC_ESCAPE_JSON or
 * OC_ESCAPE_HTML.
 * A variable that is absent and has no inline default: returns -1 and puts
 * its name in missing. */
int tmpl_render(const tmpl *t, tmpl_lookup_fn lookup, void *ctx, int escape, oc_buf *out,
                char *missing, size_t missing_len);

/* Compile and render in one go (for connectors' body templates). Returns -2
 * on a template syntax error (message in missing). */
int tmpl_render_once(const char *src, tmpl_lookup_fn lookup, void *ctx, int escape, oc_buf *out,
                     char *missing, size_t missing_len);

/* JSON string escaping of len bytes (inside the quotes). Invalid UTF-8 bytes
 * become U+FFFD so the output is always valid JSON. */
int json_escape_append(oc_buf *out, const char *s, size_t len);
/* HTML text and attribute escaping: & < > " ' as entities. */
int html_escape_append(oc_buf *out, const char *s, size_t len);

/* Retry-After: delta-seconds or IMF-fixdate/RFC 850/asctime HTTP-date.
 * Returns milliseconds from now_ms in [0, RETRY_AFTER_MAX_MS] (a longer
 * delay, however many digits, is clamped to it; a date in the past is 0),
 * or -1 if absent/unparseable (negative numbers, signs, out-of-range date
 * fields, garbage). */
#define RETRY_AFTER_MAX_MS 86400000L /* one day */
long retry_after_parse_ms(const char *value, long long now_ms);

#endif
