/* The intake: the read loop over omni:jobs and omni:chunks (one consumer
 * group, one blocking XREADGROUP at a time), own-pending recovery, taking
 * over a dead instance's entries, giving up entries that never finish.
 * It knows no stage: main.c registers what is done with a job and with a
 * chunk, and each stage answers whether it can take more. */
#ifndef OMNI_QUEUE_H
#define OMNI_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct omni;
typedef struct queue queue; /* queue.c's state, in the context */

typedef struct queue_handlers {
    /* A job entry's "job" field. The handler acks the entry (stream_ack)
     * when it is finished with it, or leaves it pending to be read again. */
    void (*on_job)(struct omni *o, const char *entry_id, const char *raw, size_t len);
    /* A chunk entry: campaign, first and end index ("" and -1 when a field
     * is missing: the handler dead-letters and acks what is malformed). */
    void (*on_chunk)(struct omni *o, const char *entry_id, const char *campaign, long start,
                     long end);
    /* Append the ids of the chunk entries still worked on (kept ours by
     * XCLAIM JUSTID); returns how many. */
    int (*held_entries)(struct omni *o, store_args *a);
    /* May another job / chunk be read now? Asked before every read. */
    int (*can_take_jobs)(struct omni *o);
    int (*can_take_chunks)(struct omni *o);
} queue_handlers;

int queue_init(struct omni *o, const queue_handlers *h);
void queue_free(struct omni *o);
/* Redis is (back) up: create the groups, read our own pending entries
 * first. */
void queue_on_ready(struct omni *o);
void queue_on_down(struct omni *o);
/* Start a read when none is outstanding and some stage can take more
 * (from the kick). */
void queue_maybe_read(struct omni *o);
/* From the tick: every reclaim_interval_ms keep our chunks ours, look at
 * stalled entries, remove idle consumers. Returns 1 when a round ran. */
int queue_tick(struct omni *o, long long now_ms);
void queue_reclaim(struct omni *o);
/* A blocking read is outstanding. */
int queue_reading(struct omni *o);

/* Entries the intake dead-lettered itself: a job entry without its "job"
 * field, entries given up (counted as rejected jobs). */
uint64_t queue_jobs_rejected(struct omni *o);

#endif
