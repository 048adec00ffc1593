/* Dispatch: chunks to claims to sends to outcomes. A chunk of a campaign's
 * recipients is loaded, claimed (claim.lua), rendered, handed to its
 * connector instance's queue, sent, classified, and its outcomes recorded
 * in batches (outcome.lua); the chunk's entry is acked (stream.h) once
 * every recipient has an outcome. Above campaign.c (the spec cache) and the
 * intake (queue.c hands it chunks through the handler main.c registers). */
#ifndef OMNI_DISPATCH_H
#define OMNI_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "omni.h"

typedef struct dispatch_counters {
    uint64_t chunks_done, retries_taken;
    uint64_t wait_short; /* claim batches fewer than redis_wait_replicas acknowledged */
    int wait_degraded;   /* the last WAIT came back short (cleared by one that did not) */
} dispatch_counters;

int dispatch_init(omni *o);
void dispatch_free(omni *o);
/* The intake's on_chunk. */
void dispatch_chunk(omni *o, const char *entry_id, const char *campaign, long start, long end);
void dispatch_on_kick(omni *o);
void dispatch_tick(omni *o);
void dispatch_on_down(omni *o);
/* The intake's can_take for chunks: may another chunk be read? (memory of
 * loaded recipients, chunks waiting for their campaign's turn to load) */
int dispatch_can_take(omni *o);
/* Recipients held in memory (back-pressure, /metrics, drain). */
size_t dispatch_held(omni *o);
int dispatch_holds_entry(omni *o, const char *entry_id);
/* A campaign's state changed (a control job here, or seen by the poll):
 * paused → its claimed, unsent recipients are released; cancelled → they
 * end cancelled; no further request of it goes on the wire. */
void dispatch_campaign_state(omni *o, const char *campaign, const char *state);
/* Since the drain began: "N sends finished, M claims released unsent, K
 * left on the wire (uncertain)". */
void dispatch_drain_summary(omni *o, char *buf, size_t len);
/* The intake's held_entries: append the stream ids of the chunks held in
 * memory; returns how many. */
int dispatch_held_entries(omni *o, store_args *a);
const dispatch_counters *dispatch_counters_of(omni *o);

#endif
