/* Optional CRM hand-off: conversation events POSTed to crm_webhook_url,
 * acked on 2xx, retried while the CRM is away (consumer group `crm` on
 * omni:conversations), in order per conversation, by the one daemon that
 * holds the feed's lease. */
#ifndef OMNI_CRM_H
#define OMNI_CRM_H

#include "omni.h"

int crm_init(omni *o, char *err, size_t err_len); /* no-op without crm_webhook_url */
void crm_free(omni *o);
void crm_on_ready(omni *o);
void crm_pump(omni *o); /* from the tick: read and post what is due */
/* Draining: 1 once no post is in flight and the feed's lease was given up
 * (at once when Redis is away: then it runs out on its own) */
int crm_drained(omni *o);

typedef struct crm_stats {
    uint64_t posted; /* posts the CRM accepted (2xx) */
    uint64_t failed; /* posts it did not (to be posted again) */
    size_t held;     /* events in memory: in flight or waiting behind an earlier one */
    int holder;      /* 1: this daemon holds the feed's lease */
} crm_stats;
/* -1 without crm_webhook_url */
int crm_stats_of(omni *o, crm_stats *s);

#endif
