/* The Redis keyspace in one place: every key name the daemon and the CLI
 * build (the Lua scripts build theirs from the prefix the caller passes;
 * docs/redis.md is the table of what each holds). A key is the configured
 * prefix ([daemon] prefix, default "omni:") followed by the shape of its
 * kind, with the one argument a kind takes (a campaign id, a channel, a
 * conversation id). Pure: no Redis, no allocation. */
#ifndef OMNI_KEYS_H
#define OMNI_KEYS_H

#include <stddef.h>

#define KEY_MAX 512 /* room for any key: a prefix and an id of the lengths allowed */

typedef enum key_kind {
    KEY_JOBS,          /* jobs                   stream of incoming jobs */
    KEY_CHUNKS,        /* chunks                 stream of campaign chunks */
    KEY_DEAD,          /* dead                   dead-letter stream */
    KEY_RETRY,         /* retry                  zset of due retries */
    KEY_SCHEDULED,     /* scheduled              zset of starts and parked chunks */
    KEY_ACTIVE,        /* active                 zset of running campaigns */
    KEY_CONVERSATIONS, /* conversations          stream of conversation events */
    KEY_CONV_OPEN,     /* conv:open              zset of open conversations */
    KEY_CONV_ALL,      /* conv:all               zset of every conversation */
    KEY_CAMPAIGN,      /* campaign:{id}          hash */
    KEY_RCPT,          /* campaign:{id}:rcpt     list of recipients */
    KEY_MSG,           /* msg:{id}               hash of message records */
    KEY_SUPPRESS,      /* suppress:{channel}     set of opted-out addresses */
    KEY_CONV,          /* conv:{id}              hash of a conversation */
    KEY_CONV_LOG,      /* conv:{id}:log          stream of a conversation's messages */
    KEY_CONV_CAMPAIGN, /* conv:campaign:{id}     zset of a campaign's conversations */
    KEY_EVENTS,        /* events                 stream of operational events (halt, resume) */
    KEY_CONNECTOR,     /* connector:{name}       hash: a connector instance's control (resume) */
    KEY_REPLAY,        /* replay:{connector}:{token}  string: a signed post's one-time token
                          (the argument is "CONNECTOR:TOKEN") */
    KEY_WATCH,         /* watch                  zset: sent, awaiting delivery (fallback_after_s) */
    KEY_ALIAS,         /* alias:{channel}:{id}   string: the address campaigns use for a
                                                    provider's other id of the recipient */
    KEY_CRM_LEASE,     /* crm:lease              string: the daemon that posts the CRM feed */
    KEY_CAMPAIGNS,     /* campaigns              zset: every campaign by created_at (the list) */
    KEY_CAMPAIGNS_INDEXED, /* campaigns:indexed      string: campaigns older than the index added */
    KEY_SUPPRESS_CONTACTS, /* suppress_contacts   set of opted-out contact_ids (optout_scope) */
    KEY_CONV_CONVERSIONS,  /* conv:{id}:conversions  hash: a conversation's conversions by id */
    KEY_CONTACT_IDS,       /* contact_ids:{channel}  hash: address -> the recipient's contact_id */
    KEY_KINDS
} key_kind;

/* Write prefix + the kind's shape (arg put in its place; ignored by kinds
 * without one, and NULL counts as "") into out. Returns 0, or -1 when the
 * key does not fit in len bytes or the kind is unknown (out is then ""). */
int key_build(char *out, size_t len, const char *prefix, key_kind kind, const char *arg);

/* The shape of a kind as docs/redis.md spells it ("campaign:{id}"), NULL
 * for an unknown kind: for tests and help texts. */
const char *key_shape(key_kind kind);

#endif
