/* The streams layer: group creation, acks, dead letters, and the errors
 * kept for pending entries. Below every stage: it includes none. */
#include "stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "omni.h"

#define ERR_SLOTS 64

/* The errors scripts answered for entries still pending (a job's create
 * failing with WRONGTYPE, say), kept for the dead letter written when the
 * entry is given up (STREAM_MAX_DELIVERIES): a small ring. */
typedef struct entry_err {
    int used, is_jobs, fails;
    char id[40];
    char err[200];
} entry_err;

struct stream {
    stream_io io;
    entry_err errs[ERR_SLOTS];
    unsigned err_next;
};

static int store_send(void *ctx, int conn, store_cb cb, void *arg, int argc, const char **argv,
                      const size_t *lens)
{
    omni *o = ctx;
    return o->st ? store_cmdv(o->st, conn, cb, arg, argc, argv, lens) : -1;
}

static int store_ready(void *ctx)
{
    omni *o = ctx;
    return o->st && store_is_ready(o->st);
}

int stream_init(omni *o)
{
    o->stream = calloc(1, sizeof(*o->stream));
    if (!o->stream)
        return -1;
    stream_set_io(o, NULL);
    return 0;
}

void stream_free(omni *o)
{
    free(o->stream);
    o->stream = NULL;
}

void stream_set_io(omni *o, const stream_io *io)
{
    stream *s = o->stream;
    if (io) {
        s->io = *io;
    } else {
        s->io = (stream_io){.send = store_send, .ready = store_ready, .ctx = o};
    }
}

int stream_ready(omni *o)
{
    return o->stream->io.ready(o->stream->io.ctx);
}

int stream_send(omni *o, int conn, store_cb cb, void *arg, int argc, const char **argv,
                const size_t *lens)
{
    return o->stream->io.send(o->stream->io.ctx, conn, cb, arg, argc, argv, lens);
}

int stream_cmd(omni *o, store_cb cb, void *arg, ...)
{
    const char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, arg);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 32)
        argv[argc++] = a;
    va_end(ap);
    return stream_send(o, STORE_CMD, cb, arg, argc, argv, NULL);
}

void stream_create_group(omni *o, const char *stream, store_cb done, void *arg)
{
    stream_cmd(o, done, arg, "XGROUP", "CREATE", stream, STREAM_GROUP, "0", "MKSTREAM", NULL);
}

static entry_err *err_find(stream *s, int is_jobs, const char *id)
{
    for (int i = 0; i < ERR_SLOTS; i++)
        if (s->errs[i].used && s->errs[i].is_jobs == is_jobs && strcmp(s->errs[i].id, id) == 0)
            return &s->errs[i];
    return NULL;
}

void stream_ack(omni *o, const char *stream, const char *id)
{
    entry_err *e = err_find(o->stream, strcmp(stream, o->k_jobs) == 0, id);
    if (e)
        e->used = 0;
    stream_cmd(o, NULL, NULL, "XACK", stream, STREAM_GROUP, id, NULL);
}

int stream_entry_failed(omni *o, const char *stream, const char *entry, const char *error)
{
    struct stream *s = o->stream;
    int is_jobs = strcmp(stream, o->k_jobs) == 0;
    entry_err *e = err_find(s, is_jobs, entry);
    if (!e) {
        e = &s->errs[s->err_next++ % ERR_SLOTS];
        memset(e, 0, sizeof(*e));
        e->used = 1;
        e->is_jobs = is_jobs;
        snprintf(e->id, sizeof(e->id), "%s", entry);
    }
    e->fails++;
    snprintf(e->err, sizeof(e->err), "%s", error ? error : "");
    return e->fails;
}

const char *stream_entry_error(omni *o, const char *stream, const char *entry)
{
    entry_err *e = err_find(o->stream, strcmp(stream, o->k_jobs) == 0, entry);
    return e ? e->err : NULL;
}

void omni_dead(omni *o, const char *source, const char *reason, const char *raw, size_t raw_len,
               const char *const *kv)
{
    if (omni_dead_then(o, source, reason, raw, raw_len, kv, NULL, NULL) == 0)
        o->stats.dead_letters++;
    else
        log_error("dead letter could not be written (Redis unavailable): %s", reason);
}

int omni_dead_then(omni *o, const char *source, const char *reason, const char *raw, size_t raw_len,
                   const char *const *kv, store_cb done, void *arg)
{
    store_args a = {0};
    store_args_adds(&a, "XADD");
    store_args_adds(&a, o->k_dead);
    store_args_adds(&a, "MAXLEN");
    store_args_adds(&a, "~");
    store_args_adds(&a, "1000000");
    store_args_adds(&a, "*");
    store_args_adds(&a, "source");
    store_args_adds(&a, source);
    store_args_adds(&a, "reason");
    store_args_adds(&a, reason);
    if (raw) {
        store_args_adds(&a, "job");
        store_args_add(&a, raw, raw_len);
    }
    for (const char *const *p = kv; p && p[0] && p[1]; p += 2) {
        store_args_adds(&a, p[0]);
        store_args_adds(&a, p[1]);
    }
    store_args_adds(&a, "at");
    store_args_addll(&a, omni_now_ms());
    store_args_finish(&a);
    int rc = stream_send(o, STORE_CMD, done, arg, a.argc, a.argv, a.lens);
    store_args_free(&a);
    if (rc < 0 && done)
        done(NULL, arg);
    return rc < 0 ? -1 : 0;
}
