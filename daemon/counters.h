/* A campaign's hash (omni:campaign:ID) as JSON: the one converter the API
 * (GET /v1/campaigns/{id}) and the CLI (omnicast --json status) share, so
 * both print the same object. Pure: no Redis, no event loop.
 *
 * Fields named in the table of counters.c (the counters, chunks and the
 * *_at times) become JSON integers when their value is a whole decimal
 * number; every other field stays a string, whatever it looks like (an id
 * "2026-11-27" or "42" is a string). "spec" becomes the JSON it holds
 * (a string if it does not parse). The per-channel counters
 * ("sent:CHANNEL", "failed:CHANNEL", "delivered:CHANNEL", "read:CHANNEL")
 * are numbers too. Added: "pending" = total minus
 * sent+failed+suppressed+uncertain+cancelled, plus awaiting (messages still
 * watched for their delivery, fallback_after_s; not in a cancelled
 * campaign), never below 0; "rates"
 * {delivered, read, replied, opted_out}, each divided by sent (0 if none);
 * "channels" {CHANNEL: {sent, failed, delivered, read}} from the
 * per-channel counters (missing ones 0); "failures" {REASON: n} from the
 * failed_reason:REASON counters (numbers too), {} when none. */
#ifndef OMNI_COUNTERS_H
#define OMNI_COUNTERS_H

#include <jansson.h>
#include <stddef.h>

/* 1 if the field is stored as a number, 0 if as a string */
int counters_is_number(const char *field);

/* Field by field, as HGETALL answers: counters_set() each field/value
 * (value of len bytes; a value that is not UTF-8 is left out), then
 * counters_finish() adds "pending" and "rates". Both return 0, or -1 on a
 * NULL object or no memory. */
int counters_set(json_t *o, const char *field, const char *value, size_t len);
int counters_finish(json_t *o);

/* The whole object from an HGETALL answer (an array of field, value
 * strings; the hiredis reply type only, no connection), as both the API
 * and the CLI print it. NULL on no memory. */
struct redisReply;
json_t *counters_from_reply(const struct redisReply *r);

/* total - (sent+failed+suppressed+uncertain+cancelled) + awaiting (not
 * for a cancelled campaign), at least 0, from an object counters_to_json
 * made */
long long counters_pending(const json_t *o);

/* Failure reasons: the documented list (docs/delivery.md, "Failure
 * reasons"), in a fixed order, "other" last; the Lua prelude has the same
 * list (test_counters compares them). A failure is counted in the campaign
 * hash as failed_reason:REASON and in /metrics under one of these. */
#define COUNTERS_REASONS 29
/* the name of reason i (0 .. COUNTERS_REASONS-1), NULL outside */
const char *counters_reason_name(int i);
/* the index of a failure's reason: its part before a ':' (missing_var:x is
 * missing_var) when listed, else the index of "other" */
int counters_reason_index(const char *reason);

#endif
