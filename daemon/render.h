/* Rendering one recipient's message from its campaign's compiled
 * templates: the text, subject, html and template parameters into buffers
 * reused from one send to the next (no allocation per recipient once they
 * have grown), and the variable lookup connectors call while they build
 * the request. Between campaign.c (the compiled spec) and dispatch.c (its
 * only caller). */
#ifndef OMNI_RENDER_H
#define OMNI_RENDER_H

#include <jansson.h>

#include "campaign.h"
#include "omnicast/connector.h"

#define RENDER_MAX_PARAMS 16

/* What a template may name besides the recipient's vars and the
 * campaign's defaults: {{to}}, {{channel}}, {{campaign}}, {{message_id}},
 * and {{text}} / {{subject}} once rendered. */
typedef struct render_vars {
    const json_t *vars;     /* the recipient's "vars", or NULL */
    const json_t *defaults; /* the campaign's "defaults", or NULL */
    const char *to, *channel, *campaign, *message_id;
} render_vars;

typedef struct renderer renderer;

renderer *renderer_new(void);
void renderer_free(renderer *rd);
/* Render sp's templates for one recipient and fill m's text, subject, html,
 * template_params and var lookup (valid until the next call; v must stay
 * valid as long as m is used). 0, or -1 with the missing variable's name in
 * missing. */
int render_message(renderer *rd, const campaign_spec *sp, const render_vars *v, oc_message *m,
                   char *missing, size_t mlen);

#endif
