/* What this process did with each recipient it touched, per campaign and
 * channel: two bits per recipient index (none, active, sent, uncertain).
 * The guard in Redis (claim.lua) decides between processes; this memory
 * decides inside one: a second in-memory copy of a recipient (a retry and a
 * redelivered chunk, a retry taken again after its lease) is never sent
 * while the first is active, and a recipient this process sent is never
 * sent again even when Redis forgot the record (a restart from an older
 * snapshot, a failover to a replica that had not got the write).
 *
 * Memory: total/4 bytes per campaign and channel touched (250 KB for a
 * million recipients), for the most recently used max_campaigns campaigns;
 * a campaign not in use by a chunk may be forgotten to make room. */
#ifndef OMNI_SEEN_H
#define OMNI_SEEN_H

#include <stddef.h>

enum { SEEN_NONE = 0, SEEN_ACTIVE = 1, SEEN_SENT = 2, SEEN_UNCERTAIN = 3 };

#define SEEN_MAX_CHANNELS 8

typedef struct seen seen;
typedef struct seen_campaign seen_campaign;

seen *seen_new(size_t max_campaigns);
void seen_free(seen *s);

/* The campaign's map, created when absent; the caller holds a reference
 * until seen_put. NULL when out of memory. */
seen_campaign *seen_get(seen *s, const char *campaign);
void seen_put(seen *s, seen_campaign *c);

int seen_state(const seen_campaign *c, int channel, long index);
/* 0, or -1 (out of memory, or channel/index out of range). */
int seen_set(seen_campaign *c, int channel, long index, int state);

size_t seen_campaigns(const seen *s);
size_t seen_bytes(const seen *s);

#endif
