/* A fake stream for the stage unit tests (test_queue, test_campaign,
 * test_dispatch): every command the stream layer would send to Redis is
 * recorded (its words joined by spaces) with its callback, for the test to
 * read and to answer with replies it builds (fr_* below). Header-only. */
#ifndef OMNI_TEST_FAKE_STREAM_H
#define OMNI_TEST_FAKE_STREAM_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni.h"
#include "stream.h"

#define FAKE_CMDS 64
#define FAKE_FN static __attribute__((unused))

typedef struct fake_cmd {
    char text[2048];
    int conn;
    store_cb cb;
    void *arg;
    int answered;
} fake_cmd;

typedef struct fake_stream {
    int ready;
    int refuse; /* send answers -1 (not connected) */
    int n;
    fake_cmd cmds[FAKE_CMDS];
} fake_stream;

FAKE_FN int fake_send(void *ctx, int conn, store_cb cb, void *arg, int argc, const char **argv,
                      const size_t *lens)
{
    fake_stream *f = ctx;
    if (f->refuse || !f->ready || f->n == FAKE_CMDS)
        return -1;
    fake_cmd *c = &f->cmds[f->n++];
    memset(c, 0, sizeof(*c));
    c->conn = conn;
    c->cb = cb;
    c->arg = arg;
    size_t p = 0;
    for (int i = 0; i < argc; i++) {
        size_t l = lens ? lens[i] : strlen(argv[i]);
        if (p + l + 2 >= sizeof(c->text))
            break;
        if (i)
            c->text[p++] = ' ';
        memcpy(c->text + p, argv[i], l);
        p += l;
    }
    c->text[p] = '\0';
    return 0;
}

FAKE_FN int fake_ready(void *ctx)
{
    return ((fake_stream *)ctx)->ready;
}

FAKE_FN void fake_attach(omni *o, fake_stream *f)
{
    memset(f, 0, sizeof(*f));
    f->ready = 1;
    stream_io io = {.send = fake_send, .ready = fake_ready, .ctx = f};
    stream_set_io(o, &io);
}

/* How many recorded commands start with prefix. */
FAKE_FN int fake_count(const fake_stream *f, const char *prefix)
{
    int n = 0;
    for (int i = 0; i < f->n; i++)
        if (strncmp(f->cmds[i].text, prefix, strlen(prefix)) == 0)
            n++;
    return n;
}

/* The last recorded command that starts with prefix, or NULL. */
FAKE_FN fake_cmd *fake_last(fake_stream *f, const char *prefix)
{
    for (int i = f->n - 1; i >= 0; i--)
        if (strncmp(f->cmds[i].text, prefix, strlen(prefix)) == 0)
            return &f->cmds[i];
    return NULL;
}

/* Answer every command not answered yet with NULL (Redis went away), so
 * what their callbacks hold is freed; then forget them all. */
FAKE_FN void fake_reset(fake_stream *f)
{
    for (int i = 0; i < f->n; i++)
        if (!f->cmds[i].answered) {
            f->cmds[i].answered = 1;
            if (f->cmds[i].cb)
                f->cmds[i].cb(NULL, f->cmds[i].arg);
        }
    f->n = 0;
}

/* ---- replies built by hand (freed with fr_free) */

FAKE_FN redisReply *fr_new(int type)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = type;
    return r;
}

FAKE_FN redisReply *fr_str(const char *s)
{
    redisReply *r = fr_new(REDIS_REPLY_STRING);
    r->len = strlen(s);
    r->str = strdup(s);
    return r;
}

FAKE_FN redisReply *fr_err(const char *s)
{
    redisReply *r = fr_str(s);
    r->type = REDIS_REPLY_ERROR;
    return r;
}

FAKE_FN redisReply *fr_int(long long v)
{
    redisReply *r = fr_new(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

/* An array of n replies, NULL-terminated list of elements. */
FAKE_FN redisReply *fr_arr(int n, ...)
{
    redisReply *r = fr_new(REDIS_REPLY_ARRAY);
    r->elements = (size_t)n;
    r->element = calloc((size_t)(n ? n : 1), sizeof(*r->element));
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

/* A stream entry [id, [k, v, k, v...]] from NULL-terminated pairs. */
FAKE_FN redisReply *fr_entry(const char *id, ...)
{
    redisReply *fields = fr_new(REDIS_REPLY_ARRAY);
    fields->element = calloc(16, sizeof(*fields->element));
    va_list ap;
    va_start(ap, id);
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL && fields->elements < 16)
        fields->element[fields->elements++] = fr_str(s);
    va_end(ap);
    return fr_arr(2, fr_str(id), fields);
}

FAKE_FN void fr_free(redisReply *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->elements; i++)
        fr_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

/* Answer a recorded command with r (NULL: Redis went away), then free r. */
FAKE_FN void fake_answer(fake_cmd *c, redisReply *r)
{
    c->answered = 1;
    if (c->cb)
        c->cb(r, c->arg);
    fr_free(r);
}

#endif
