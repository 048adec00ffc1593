/* Inbound events into Redis (inbound.lua): delivery statuses, replies
 * becoming attributed conversations, opt-outs, one-click unsubscribes,
 * proactive conversations. Events are queued in memory (bounded) and
 * pipelined to Redis; the webhook that brought them waits for the script's
 * reply and answers 2xx only once they are stored (or dead-lettered), 503
 * otherwise so the provider retries. */
#ifndef OMNI_CONV_H
#define OMNI_CONV_H

#include "omni.h"

#define CONV_QUEUE_MAX 10000

enum { KW_NONE = 0, KW_OPTOUT = 1, KW_OPTIN = 2 };

/* Is the whole message (trimmed, any case, trailing . or ! ignored) one of
 * the space-separated opt-out keywords (KW_OPTOUT) or opt-in keywords
 * (KW_OPTIN)? The lists come from [daemon] opt_out_keywords and
 * opt_in_keywords. */
int conv_keyword(const char *text, const char *opt_out, const char *opt_in);

int conv_init(omni *o);
void conv_free(omni *o);
/* Room for n more events? (a webhook answers 503 otherwise) */
int conv_has_room(omni *o, size_t n);
/* Queue one normalized event from connector instance ci (copied); done
 * (may be NULL) is called exactly once: stored = 1 once the script wrote it
 * (or, for an event the script cannot process, once its dead letter is
 * written), or at once if the event carries nothing to store; stored = 0 when
 * Redis refused it (OOM, READONLY, NOSCRIPT, ...) or the connection was
 * lost, and the event is dropped: the provider is answered 503 and retries
 * (inbound.lua is idempotent). Webhooks answer the provider from it, so a
 * 2xx means the event is in Redis. */
typedef void (*conv_written_fn)(void *arg, int stored);
void conv_push(omni *o, conn_inst *ci, const oc_event *ev, conv_written_fn done, void *arg);
/* stored value of a request refused as a replay (conv_gate) */
#define CONV_REPLAYED 2
/* Claim a signed request's one-time token (oc_inbound_result.replay_key)
 * before its events: {prefix}replay:{connector}:{key}, SET NX with an
 * expiry of ttl_s. Call it before the conv_push calls of the same arg: they
 * wait in the queue for the claim. done is called once for the claim:
 * stored = 1 (first use: the events go on), CONV_REPLAYED (claimed before:
 * the events are dropped with CONV_REPLAYED, nothing stored), 0 (Redis
 * refused or went away: the events are dropped with 0). A claim whose
 * request then loses an event is given back (DEL), so the provider's retry
 * of the same delivery is taken. Counts as one queued entry. */
void conv_gate(omni *o, conn_inst *ci, const char *key, long ttl_s, conv_written_fn done,
               void *arg);
/* Give up on the events of arg not yet sent to Redis (a webhook past its
 * deadline): each one's done is called with stored = 0. Events already sent
 * still report when their reply comes. */
void conv_cancel(omni *o, void *arg);
/* Events queued, not yet written. */
size_t conv_pending(omni *o);
/* Send queued events (called from the kick). */
void conv_flush(omni *o);

/* Open (or continue) the proactive conversation of a message campaign. */
typedef void (*conv_done_fn)(omni *o, const char *conv_id, void *arg);
void conv_proactive(omni *o, const char *channel, const char *contact, const char *campaign,
                    const char *text, conv_done_fn done, void *arg);
void conv_close(omni *o, const char *id, conv_done_fn done, void *arg);
/* A conversation message (an agent's): in one script call, conversation
 * conv_id is checked (it exists and is open), the message msg_id is logged
 * queued in it (text: what the log shows) and job (a message job's JSON
 * with conversation_id) is added to the jobs stream. done gets the
 * result: "ok" (detail: the jobs stream entry), "exists" (this message id
 * is already queued in this conversation), "taken" (the id is another
 * conversation's message or a campaign's), "missing", "closed", or NULL
 * when Redis did not answer. */
typedef void (*conv_result_fn)(omni *o, const char *result, const char *detail, void *arg);
void conv_agent(omni *o, const char *conv_id, const char *msg_id, const char *text, const char *job,
                conv_result_fn done, void *arg);

#endif
