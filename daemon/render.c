/* Rendering: templates to text for one recipient, reusing buffers. */
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct renderer {
    oc_buf text, subject, html;
    oc_buf params[RENDER_MAX_PARAMS];
    const char *param_ptrs[RENDER_MAX_PARAMS];
    oc_buf comps, murl, mcap, mfile; /* template components (JSON text), media */
    const campaign_spec *sp;
    char num[4][64]; /* numbers formatted for a template, rotating */
    int num_slot;
    render_vars cur;
};

renderer *renderer_new(void)
{
    return calloc(1, sizeof(renderer));
}

void renderer_free(renderer *rd)
{
    if (!rd)
        return;
    oc_buf_free(&rd->text);
    oc_buf_free(&rd->subject);
    oc_buf_free(&rd->html);
    for (size_t i = 0; i < RENDER_MAX_PARAMS; i++)
        oc_buf_free(&rd->params[i]);
    oc_buf_free(&rd->comps);
    oc_buf_free(&rd->murl);
    oc_buf_free(&rd->mcap);
    oc_buf_free(&rd->mfile);
    free(rd);
}

static const char *var_lookup(void *ctx, const char *name, size_t len)
{
    renderer *rd = ctx;
    const render_vars *cur = &rd->cur;
    json_t *v = json_object_getn(cur->vars, name, len);
    if (!v && cur->defaults)
        v = json_object_getn(cur->defaults, name, len);
    if (v) {
        if (json_is_string(v))
            return json_string_value(v);
        char *b = rd->num[rd->num_slot++ & 3];
        if (json_is_integer(v))
            snprintf(b, 64, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
            snprintf(b, 64, "%.17g", json_real_value(v));
        else if (json_is_boolean(v))
            snprintf(b, 64, "%s", json_is_true(v) ? "true" : "false");
        else
            return NULL;
        return b;
    }
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    if (IS("to"))
        return cur->to;
    if (IS("channel"))
        return cur->channel;
    if (IS("campaign"))
        return cur->campaign;
    if (IS("message_id")) {
        char *b = rd->num[rd->num_slot++ & 3];
        snprintf(b, 64, "%s", cur->message_id);
        return b;
    }
    if (IS("text"))
        return rd->text.len ? rd->text.data : NULL;
    if (IS("subject"))
        return rd->subject.len ? rd->subject.data : NULL;
    /* the media attachment, for connectors that template their own body */
    const campaign_spec *sp = rd->sp;
    if (IS("media_type"))
        return sp && sp->media_url ? sp->media_type : NULL;
    if (IS("media_url"))
        return sp && sp->media_url ? rd->murl.data : NULL;
    if (IS("media_caption"))
        return sp && sp->media_caption ? rd->mcap.data : NULL;
    if (IS("media_filename"))
        return sp && sp->media_filename ? rd->mfile.data : NULL;
#undef IS
    return NULL;
}

static const char *msg_var(const oc_message *m, const char *name, size_t len)
{
    return var_lookup(m->var_ctx, name, len);
}

static int render_esc(renderer *rd, tmpl *t, oc_buf *b, int escape, char *missing, size_t mlen)
{
    oc_buf_reset(b);
    if (!t)
        return 0;
    if (oc_buf_reserve(b, 0) < 0)
        return -1;
    b->data[0] = '\0';
    return tmpl_render(t, var_lookup, rd, escape, b, missing, mlen);
}

static int render_into(renderer *rd, tmpl *t, oc_buf *b, char *missing, size_t mlen)
{
    return render_esc(rd, t, b, OC_ESCAPE_NONE, missing, mlen);
}

int render_message(renderer *rd, const campaign_spec *sp, const render_vars *v, oc_message *m,
                   char *missing, size_t mlen)
{
    rd->cur = *v;
    rd->sp = sp;
    size_t np = sp->n_params < RENDER_MAX_PARAMS ? sp->n_params : RENDER_MAX_PARAMS;
    int rc = render_into(rd, sp->text, &rd->text, missing, mlen);
    if (rc == 0)
        rc = render_into(rd, sp->subject, &rd->subject, missing, mlen);
    if (rc == 0)
        rc =
            render_esc(rd, sp->html, &rd->html, OC_ESCAPE_HTML, missing, mlen); /* values escaped */
    for (size_t i = 0; rc == 0 && i < np; i++) {
        rc = render_into(rd, sp->params[i], &rd->params[i], missing, mlen);
        rd->param_ptrs[i] = rd->params[i].data ? rd->params[i].data : "";
    }
    if (rc == 0)
        rc = render_into(rd, sp->media_url, &rd->murl, missing, mlen);
    if (rc == 0)
        rc = render_into(rd, sp->media_caption, &rd->mcap, missing, mlen);
    if (rc == 0)
        rc = render_into(rd, sp->media_filename, &rd->mfile, missing, mlen);
    if (rc == 0 && sp->components) {
        oc_buf_reset(&rd->comps);
        rc = jtmpl_render(sp->components, var_lookup, rd, &rd->comps, missing, mlen);
    }
    if (rc != 0)
        return -1;
    m->text = sp->text ? rd->text.data : NULL;
    m->subject = sp->subject ? rd->subject.data : NULL;
    m->html = sp->html ? rd->html.data : NULL;
    m->template_params = rd->param_ptrs;
    m->n_template_params = np;
    m->var = msg_var;
    m->var_ctx = rd;
    m->template_components = sp->components ? rd->comps.data : NULL;
    m->media_type = sp->media_url ? sp->media_type : NULL;
    m->media_url = sp->media_url ? rd->murl.data : NULL;
    m->media_caption = sp->media_caption ? rd->mcap.data : NULL;
    m->media_filename = sp->media_filename ? rd->mfile.data : NULL;
    return 0;
}
