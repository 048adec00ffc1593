/* The streams layer, below every stage: the consumer group's creation, the
 * ack of an entry (XACK), the dead-letter stream, and the errors scripts
 * answered for entries still pending. Every Redis command of the intake
 * (queue.c) and of this layer goes through stream_send, the one seam a unit
 * test replaces with a fake (stream_set_io). Includes no stage. */
#ifndef OMNI_STREAM_H
#define OMNI_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct omni;
typedef struct stream stream; /* stream.c's state, in the context */

/* The consumer group every instance reads omni:jobs and omni:chunks in
 * (release.lua and next.lua are told its name). */
#define STREAM_GROUP "omnicast"

/* An entry that is delivered this many times (the first delivery and 5
 * retries, each after claim_idle_ms) without being acked is given up:
 * dead-lettered with the last error seen, and acked (queue.c). */
#define STREAM_MAX_DELIVERIES 6

/* Where the stream layer's commands go: the store, unless a test says
 * otherwise. send: like store_cmdv (0, or -1 and cb not called). */
typedef struct stream_io {
    int (*send)(void *ctx, int conn, store_cb cb, void *arg, int argc, const char **argv,
                const size_t *lens);
    int (*ready)(void *ctx);
    void *ctx;
} stream_io;

int stream_init(struct omni *o);
void stream_free(struct omni *o);
/* Replace the store by io (tests); NULL goes back to the store. */
void stream_set_io(struct omni *o, const stream_io *io);

int stream_ready(struct omni *o);
int stream_send(struct omni *o, int conn, store_cb cb, void *arg, int argc, const char **argv,
                const size_t *lens);
/* NULL-terminated C strings, on the command connection. */
int stream_cmd(struct omni *o, store_cb cb, void *arg, ...) __attribute__((sentinel));

/* XGROUP CREATE stream STREAM_GROUP 0 MKSTREAM ("0": entries added before
 * the group existed are work too); done gets the reply (BUSYGROUP: there). */
void stream_create_group(struct omni *o, const char *stream, store_cb done, void *arg);
/* The entry is finished with: XACK, and its remembered error forgotten. */
void stream_ack(struct omni *o, const char *stream, const char *id);

/* A script answered an error for an entry left pending to be tried again
 * (a job's create, a chunk's claim): the error is kept (in memory, for a
 * few dozen entries) for the dead letter if the entry is given up.
 * Returns how many times it failed in this process. */
int stream_entry_failed(struct omni *o, const char *stream, const char *entry, const char *error);
/* The error kept for an entry, or NULL. */
const char *stream_entry_error(struct omni *o, const char *stream, const char *entry);

/* Write an entry to the dead-letter stream: source, reason, the raw input
 * (binary-safe, may be NULL) and extra NULL-terminated key/value pairs. */
void omni_dead(struct omni *o, const char *source, const char *reason, const char *raw,
               size_t raw_len, const char *const *kv);
/* The same, with done called with the XADD's reply (NULL: Redis away, or
 * the command could not be sent) for a caller that must know the dead
 * letter is stored. Returns 0, or -1 (not sent: done was called). */
int omni_dead_then(struct omni *o, const char *source, const char *reason, const char *raw,
                   size_t raw_len, const char *const *kv, store_cb done, void *arg);

#endif
