/* GET/HEAD /ui/...: the dashboard's embedded files. Every answer carries a
 * strict Content-Security-Policy (scripts, styles and API calls from this
 * origin only, no inline script, no framing) and is never cached without a
 * check: the ETag (a hash of the file taken at build time) makes the check
 * a 304. The page itself holds no data and no secret; it calls /v1 with
 * the token the user gives it. */
#include "ui.h"

#include <string.h>

#include "http_internal.h"

#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const ui_asset *ui_find(const char *name)
{
    for (const ui_asset *a = ui_assets; a->name; a++)
        if (!strcmp(a->name, name))
            return a;
    return NULL;
}

static void common_headers(struct evkeyvalq *out)
{
    evhttp_add_header(out, "Content-Security-Policy", UI_CSP);
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(out, "Referrer-Policy", "no-referrer");
    evhttp_add_header(out, "X-Frame-Options", "DENY");
    evhttp_add_header(out, "Cache-Control", "no-cache");
}

/* Does an If-None-Match list hold etag (or "*")? */
static int etag_matches(const char *list, const char *etag)
{
    size_t n = strlen(etag);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!strncmp(p, "W/", 2))
            p += 2;
        size_t k = strcspn(p, " ,");
        if ((k == 1 && *p == '*') || (k == n && !strncmp(p, etag, n)))
            return 1;
        p += k;
    }
    return 0;
}

void ui_route(http_server *h, struct evhttp_request *req, const char *path,
              const struct evhttp_uri *u)
{
    (void)h;
    (void)u;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (!strcmp(path, "/ui")) {
        evhttp_add_header(out, "Location", "/ui/");
        return http_reply(req, 301, "text/plain; charset=utf-8", "/ui/\n", 5);
    }
    const char *name = path + 4; /* after "/ui/" */
    const ui_asset *a = ui_find(*name ? name : "index.html");
    if (!a || !strcmp(name, "index.html")) /* one address for the page */
        return http_reply_error(req, 404, "not_found", "no such file in the dashboard");
    common_headers(out);
    evhttp_add_header(out, "ETag", a->etag);
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    if (inm && etag_matches(inm, a->etag)) {
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        return;
    }
    http_reply(req, 200, a->type, (const char *)a->data, a->len);
}
