/* The Redis keyspace: one row per kind, its name before and after the
 * argument. See keys.h. */
#include "keys.h"

#include <string.h>

static const struct {
    const char *head, *tail; /* tail NULL: the kind takes no argument */
    const char *shape;
} rows[KEY_KINDS] = {
    [KEY_JOBS] = {"jobs", NULL, "jobs"},
    [KEY_CHUNKS] = {"chunks", NULL, "chunks"},
    [KEY_DEAD] = {"dead", NULL, "dead"},
    [KEY_RETRY] = {"retry", NULL, "retry"},
    [KEY_SCHEDULED] = {"scheduled", NULL, "scheduled"},
    [KEY_ACTIVE] = {"active", NULL, "active"},
    [KEY_CONVERSATIONS] = {"conversations", NULL, "conversations"},
    [KEY_CONV_OPEN] = {"conv:open", NULL, "conv:open"},
    [KEY_CONV_ALL] = {"conv:all", NULL, "conv:all"},
    [KEY_CAMPAIGN] = {"campaign:", "", "campaign:{id}"},
    [KEY_RCPT] = {"campaign:", ":rcpt", "campaign:{id}:rcpt"},
    [KEY_MSG] = {"msg:", "", "msg:{id}"},
    [KEY_SUPPRESS] = {"suppress:", "", "suppress:{channel}"},
    [KEY_CONV] = {"conv:", "", "conv:{id}"},
    [KEY_CONV_LOG] = {"conv:", ":log", "conv:{id}:log"},
    [KEY_CONV_CAMPAIGN] = {"conv:campaign:", "", "conv:campaign:{id}"},
    [KEY_EVENTS] = {"events", NULL, "events"},
    [KEY_CONNECTOR] = {"connector:", "", "connector:{name}"},
    [KEY_REPLAY] = {"replay:", "", "replay:{connector}:{token}"},
    [KEY_WATCH] = {"watch", NULL, "watch"},
    [KEY_ALIAS] = {"alias:", "", "alias:{channel}:{id}"},
    [KEY_CRM_LEASE] = {"crm:lease", NULL, "crm:lease"},
    [KEY_CAMPAIGNS] = {"campaigns", NULL, "campaigns"},
    [KEY_CAMPAIGNS_INDEXED] = {"campaigns:indexed", NULL, "campaigns:indexed"},
    [KEY_SUPPRESS_CONTACTS] = {"suppress_contacts", NULL, "suppress_contacts"},
    [KEY_CONV_CONVERSIONS] = {"conv:", ":conversions", "conv:{id}:conversions"},
    [KEY_CONTACT_IDS] = {"contact_ids:", "", "contact_ids:{channel}"},
};

static int put(char *out, size_t len, size_t *at, const char *s)
{
    size_t n = strlen(s);
    if (n >= len - *at)
        return -1;
    memcpy(out + *at, s, n);
    *at += n;
    return 0;
}

int key_build(char *out, size_t len, const char *prefix, key_kind kind, const char *arg)
{
    if (!out || !len)
        return -1;
    out[0] = '\0';
    if ((unsigned)kind >= KEY_KINDS)
        return -1;
    size_t at = 0;
    if (put(out, len, &at, prefix ? prefix : "") < 0 || put(out, len, &at, rows[kind].head) < 0 ||
        (rows[kind].tail &&
         (put(out, len, &at, arg ? arg : "") < 0 || put(out, len, &at, rows[kind].tail) < 0))) {
        out[0] = '\0';
        return -1;
    }
    out[at] = '\0';
    return 0;
}

const char *key_shape(key_kind kind)
{
    return (unsigned)kind < KEY_KINDS ? rows[kind].shape : NULL;
}
