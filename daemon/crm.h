/* Optional CRM hand-off: conversation events POSTed to crm_webhook_url,
 * acked on 2xx, retried while the CRM is away (consumer group `crm` on
 * omni:conversations). */
#ifndef OMNI_CRM_H
#define OMNI_CRM_H

#include "omni.h"

int crm_init(omni *o, char *err, size_t err_len); /* no-op without crm_webhook_url */
void crm_free(omni *o);
void crm_on_ready(omni *o);
void crm_pump(omni *o); /* from the tick: read and post what is due */

#endif
