/* The uncertain recipients of a campaign, as the CLI (`omnicast campaign
 * uncertain ID`) and the API (`GET /v1/campaigns/{id}/uncertain`) list them:
 * one record of omni:msg:{id} turned into the item both print, the query
 * parameters of a page, and the time formats. Pure functions: no Redis. */
#ifndef OMNI_UNCERTAIN_H
#define OMNI_UNCERTAIN_H

#include <jansson.h>
#include <stddef.h>

#define UNCERTAIN_COUNT_DEFAULT 100
#define UNCERTAIN_COUNT_MAX 1000
/* HSCAN steps one API request takes at most (each of `count` fields) */
#define UNCERTAIN_STEPS_MAX 10

/* The item for field CHANNEL:ADDRESS holding JSON record val:
 * {"to","channel","index","attempts","reason","wire_at","claimed_at","at"}
 * (wire_at, claimed_at, at: unix ms or null; a record without a reason,
 * written before reasons existed, is "owner_lost"). NULL when the field is
 * not a record ("dup:" fields), the value is not JSON, or the state is not
 * "uncertain". */
json_t *uncertain_item(const char *field, size_t flen, const char *val, size_t vlen);

/* The time to look for in the provider's logs: wire_at, else claimed_at,
 * else at. Returns where it came from ("wire", "claimed", "declared"), or
 * NULL when the item holds none of them. */
const char *uncertain_when(const json_t *item, long long *ms);

/* unix ms as 2026-03-01T12:00:00.123Z (UTC) */
void uncertain_fmt_time(long long ms, char *buf, size_t len);

/* The CLI's table: its header line and one row per item (no newline);
 * the address comes last, as long as it is. */
void uncertain_fmt_header(char *buf, size_t len);
void uncertain_fmt_row(const json_t *item, char *buf, size_t len);

/* A page's query parameters, each NULL when absent: cursor (decimal, as
 * Redis HSCAN gives it; default "0") and count (1..UNCERTAIN_COUNT_MAX,
 * default UNCERTAIN_COUNT_DEFAULT). Returns 0, or -1 with *why. */
int uncertain_query(const char *cursor, const char *count, char *cur, size_t cur_len, int *n,
                    const char **why);

#endif
