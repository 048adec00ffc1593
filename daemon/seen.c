/* Per-campaign recipient state maps (see seen.h): a list in most recently
 * used order (few campaigns run at once; a chunk keeps its campaign's
 * pointer, so the list is walked once per chunk, not per recipient). */
#include "seen.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_MAX 100000000L /* a campaign never has more recipients than this */

struct seen_campaign {
    seen_campaign *prev, *next;
    struct seen *owner;
    char *id;
    int refs;
    uint8_t *bits[SEEN_MAX_CHANNELS]; /* four recipients a byte */
    size_t cap[SEEN_MAX_CHANNELS];    /* bytes */
};

struct seen {
    seen_campaign *head, *tail;
    size_t n, max;
    size_t bytes;
};

seen *seen_new(size_t max_campaigns)
{
    seen *s = calloc(1, sizeof(*s));
    if (s)
        s->max = max_campaigns ? max_campaigns : 1;
    return s;
}

static void unlink_c(seen *s, seen_campaign *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->tail = c->prev;
    c->prev = c->next = NULL;
}

static void push_front(seen *s, seen_campaign *c)
{
    c->next = s->head;
    if (s->head)
        s->head->prev = c;
    else
        s->tail = c;
    s->head = c;
}

static void free_c(seen *s, seen_campaign *c)
{
    for (int i = 0; i < SEEN_MAX_CHANNELS; i++) {
        s->bytes -= c->cap[i];
        free(c->bits[i]);
    }
    free(c->id);
    free(c);
    s->n--;
}

void seen_free(seen *s)
{
    if (!s)
        return;
    while (s->head) {
        seen_campaign *c = s->head;
        unlink_c(s, c);
        free_c(s, c);
    }
    free(s);
}

seen_campaign *seen_get(seen *s, const char *campaign)
{
    seen_campaign *c;
    for (c = s->head; c; c = c->next)
        if (strcmp(c->id, campaign) == 0)
            break;
    if (!c) {
        /* make room: the least recently used campaign nobody holds */
        seen_campaign *v = s->tail;
        while (v && s->n >= s->max) {
            seen_campaign *prev = v->prev;
            if (v->refs == 0) {
                unlink_c(s, v);
                free_c(s, v);
            }
            v = prev;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        c->id = strdup(campaign);
        if (!c->id) {
            free(c);
            return NULL;
        }
        c->owner = s;
        s->n++;
    } else {
        unlink_c(s, c);
    }
    push_front(s, c);
    c->refs++;
    return c;
}

void seen_put(seen *s, seen_campaign *c)
{
    (void)s;
    if (c && c->refs > 0)
        c->refs--;
}

int seen_state(const seen_campaign *c, int channel, long index)
{
    if (!c || channel < 0 || channel >= SEEN_MAX_CHANNELS || index < 0)
        return SEEN_NONE;
    size_t byte = (size_t)index / 4;
    if (byte >= c->cap[channel])
        return SEEN_NONE;
    return (c->bits[channel][byte] >> ((index % 4) * 2)) & 3;
}

/* a channel's map grows by doubling: one that reaches a million
 * recipients took ~10 reallocations */
int seen_set(seen_campaign *c, int channel, long index, int state)
{
    if (!c || channel < 0 || channel >= SEEN_MAX_CHANNELS || index < 0 || index > INDEX_MAX)
        return -1;
    size_t byte = (size_t)index / 4;
    if (byte >= c->cap[channel]) {
        if (state == SEEN_NONE)
            return 0;
        size_t cap = c->cap[channel] ? c->cap[channel] : 256;
        while (cap <= byte)
            cap *= 2;
        uint8_t *b = realloc(c->bits[channel], cap);
        if (!b)
            return -1;
        memset(b + c->cap[channel], 0, cap - c->cap[channel]);
        c->owner->bytes += cap - c->cap[channel];
        c->bits[channel] = b;
        c->cap[channel] = cap;
    }
    int shift = (int)(index % 4) * 2;
    uint8_t *p = &c->bits[channel][byte];
    *p = (uint8_t)((*p & ~(3 << shift)) | ((state & 3) << shift));
    return 0;
}

size_t seen_campaigns(const seen *s)
{
    return s->n;
}

size_t seen_bytes(const seen *s)
{
    return s->bytes;
}
