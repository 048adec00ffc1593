/* omnicast: the command-line client. Validates jobs locally with the
 * daemon's own validator before queueing them, and reads campaign state
 * straight from Redis. Blocking hiredis is fine here: no event loop. */
#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "config.h"
#include "counters.h"
#include "export.h"
#include "job.h"
#include "keys.h"
#include "scripts.h"
#include "redistls.h"
#include "redisurl.h"
#include "registry.h"
#include "uncertain.h"

/* exit codes: 0 ok, 1 operation failed (not found, refused), 2 usage,
 * 3 invalid input, 4 Redis unavailable */
enum { EX_FAIL = 1, EX_USAGE_ = 2, EX_INVALID = 3, EX_REDIS = 4 };

typedef struct cli {
    const char *redis_url;
    const char *prefix;
    int json;
    omni_config cfg;
    int have_cfg;
    redisContext *rc; /* redis://, unix: */
    SSL_CTX *tls;     /* rediss:// */
    redis_sync *rs;
} cli;

/* one connection, hiredis's own (plain) or redistls.c's (TLS): the
 * commands below do not tell them apart */
static redisReply *cli_cmd(cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    void *r = c->rs ? redis_sync_vcommand(c->rs, fmt, ap) : redisvCommand(c->rc, fmt, ap);
    va_end(ap);
    return r;
}

static redisReply *cli_argv(cli *c, int argc, const char **argv, const size_t *lens)
{
    return c->rs ? redis_sync_argv(c->rs, argc, argv, lens)
                 : redisCommandArgv(c->rc, argc, argv, lens);
}

static const char *cli_err(const cli *c)
{
    return c->rs ? redis_sync_err(c->rs) : c->rc->errstr;
}

static void print_json(json_t *o);
static long long now_ms(void);

static void usage(FILE *f);

/* [daemon] redis_sentinels from --config (and no --redis): ask them in
 * turn, once, for the primary's address; t keeps the URL's database and
 * user. 0, or an exit status after a message. */
static int sentinel_primary(cli *c, redis_target *t)
{
    redis_target at[REDIS_MAX_SENTINELS];
    char why[256], name[300], errs[1024] = "";
    int n =
        redis_sentinels_parse(c->cfg.redis_sentinels, at, REDIS_MAX_SENTINELS, why, sizeof(why));
    if (n <= 0 || !c->cfg.redis_sentinel_master) {
        fprintf(stderr, "omnicast: redis_sentinels: %s\n",
                n <= 0 ? why : "redis_sentinel_master is needed");
        return EX_USAGE_;
    }
    const char *user = c->cfg.redis_sentinel_username, *pass = c->cfg.redis_sentinel_password;
    for (int i = 0; i < n; i++) {
        redis_target_name(&at[i], name, sizeof(name));
        struct timeval tv = {2, 0};
        redisContext *rc = redisConnectWithTimeout(at[i].host, at[i].port, tv);
        redisReply *r = NULL;
        const char *err = NULL;
        if (!rc || rc->err) {
            err = rc ? rc->errstr : "out of memory";
        } else {
            redisSetTimeout(rc, tv);
            if (pass && *pass) {
                r = user ? redisCommand(rc, "AUTH %s %s", user, pass)
                         : redisCommand(rc, "AUTH %s", pass);
                if (!r || r->type == REDIS_REPLY_ERROR)
                    err = r ? "authentication refused" : rc->errstr;
                freeReplyObject(r);
                r = NULL;
            }
            if (!err) {
                r = redisCommand(rc, "SENTINEL get-master-addr-by-name %s",
                                 c->cfg.redis_sentinel_master);
                if (!r)
                    err = rc->errstr;
                else if (r->type == REDIS_REPLY_ERROR)
                    err = r->str;
                else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                         r->element[0]->type != REDIS_REPLY_STRING ||
                         r->element[1]->type != REDIS_REPLY_STRING ||
                         r->element[0]->len >= sizeof(t->host) || atoi(r->element[1]->str) < 1 ||
                         atoi(r->element[1]->str) > 65535)
                    err = "does not know that master";
            }
        }
        if (!err) {
            snprintf(t->host, sizeof(t->host), "%s", r->element[0]->str);
            t->port = atoi(r->element[1]->str);
            t->path[0] = '\0';
            freeReplyObject(r);
            redisFree(rc);
            return 0;
        }
        size_t l = strlen(errs);
        snprintf(errs + l, sizeof(errs) - l, "%s%s: %.200s", l ? "; " : "", name, err);
        freeReplyObject(r);
        if (rc)
            redisFree(rc);
    }
    fprintf(stderr, "omnicast: no sentinel named the primary of %s (%s)\n",
            c->cfg.redis_sentinel_master, errs);
    return EX_REDIS;
}

static int connect_redis(cli *c)
{
    redis_target t;
    char why[256], name[300];
    if (redis_url_parse(c->redis_url, &t, why, sizeof(why)) < 0) {
        fprintf(stderr, "omnicast: bad redis URL: %s\n", why);
        return EX_USAGE_;
    }
    if (c->cfg.redis_sentinels && c->redis_url == c->cfg.redis) {
        int rc = sentinel_primary(c, &t);
        if (rc)
            return rc;
    }
    redis_target_name(&t, name, sizeof(name));
    struct timeval tv = {5, 0};
    if (t.tls) {
        /* rediss://: the [daemon] redis_tls_* settings from --config */
        const redis_tls_opts o = {.ca_file = c->cfg.redis_tls_ca_file,
                                  .cert_file = c->cfg.redis_tls_cert_file,
                                  .key_file = c->cfg.redis_tls_key_file,
                                  .server_name = c->cfg.redis_tls_server_name};
        char err[512];
        signal(SIGPIPE, SIG_IGN); /* a server that closes: an error, not a signal */
        if (!(c->tls = redis_tls_ctx_new(&o, err, sizeof(err)))) {
            fprintf(stderr, "omnicast: Redis TLS settings: %s\n", err);
            return EX_USAGE_;
        }
        if (!(c->rs = redis_sync_connect(t.host, t.port, c->tls, o.server_name, 5000, err,
                                         sizeof(err)))) {
            fprintf(stderr, "omnicast: cannot connect to Redis at %s: %s\n", name, err);
            return EX_REDIS;
        }
    } else {
        c->rc = t.path[0] ? redisConnectUnixWithTimeout(t.path, tv)
                          : redisConnectWithTimeout(t.host, t.port, tv);
        if (!c->rc || c->rc->err) {
            fprintf(stderr, "omnicast: cannot connect to Redis at %s: %s\n", name,
                    c->rc ? c->rc->errstr : "out of memory");
            return EX_REDIS;
        }
        redisSetTimeout(c->rc, tv);
    }
    /* the same credentials as the daemon: [daemon] redis_username and
     * redis_password(_file) from --config, else OMNICAST_REDIS_PASSWORD */
    const char *user = c->cfg.redis_username ? c->cfg.redis_username : t.user[0] ? t.user : NULL;
    const char *pass =
        c->cfg.redis_password ? c->cfg.redis_password : getenv("OMNICAST_REDIS_PASSWORD");
    if (pass && *pass) {
        redisReply *r = user ? cli_cmd(c, "AUTH %s %s", user, pass) : cli_cmd(c, "AUTH %s", pass);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "omnicast: Redis at %s refused the authentication%s%s: %.200s\n", name,
                    user ? " as " : "", user ? user : "", r ? r->str : cli_err(c));
            freeReplyObject(r);
            return EX_REDIS;
        }
        freeReplyObject(r);
    }
    if (t.db) {
        redisReply *r = cli_cmd(c, "SELECT %d", t.db);
        freeReplyObject(r);
    }
    return 0;
}

static int channel_kind(void *ctx, const char *name)
{
    cli *c = ctx;
    if (!c->have_cfg)
        return addr_kind_for_channel(name);
    const conf_channel *ch = config_channel(&c->cfg, name);
    if (!ch)
        return -1;
    const conf_connector *cc = config_connector(&c->cfg, ch->connector);
    if (!cc)
        return -1;
    /* as the daemon decides it (conn.c) */
    return addr_channel_kind(cc->type, name);
}

/* The customer service window of a channel's connector, as the daemon
 * reads it: the section's session_window_s, else the built-in type's own
 * default (whatsapp: 86400), else 0. Without --config nothing is known:
 * the daemon decides at intake. */
static long long channel_window_s(void *ctx, const char *name)
{
    cli *c = ctx;
    if (!c->have_cfg)
        return 0;
    const conf_channel *ch = config_channel(&c->cfg, name);
    const conf_connector *cc = ch ? config_connector(&c->cfg, ch->connector) : NULL;
    if (!cc)
        return 0;
    const char *v = conf_connector_get_nth(cc, "session_window_s", 0); /* in the section */
    const oc_connector *impl = cc->plugin || !cc->type ? NULL : registry_builtin(cc->type);
    for (const oc_config_key *k = impl ? impl->keys : NULL; !v && k && k->name; k++)
        if (!strcmp(k->name, "session_window_s"))
            v = k->default_value;
    return v ? strtoll(v, NULL, 10) : 0;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            if (cap >= 64u << 20)
                break;
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
            } else
                buf = nb;
        }
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
}

static int cmd_enqueue(cli *c, int argc, char **argv)
{
    (void)argc;
    size_t len = 0;
    char *raw = read_all(argv[0], &len);
    if (!raw) {
        fprintf(stderr, "omnicast: cannot read %s: %s\n", argv[0], strerror(errno));
        return EX_FAIL;
    }
    job_rules rules = {
        .max_bytes = (size_t)c->cfg.max_job_bytes, /* without --config: the defaults */
        .max_inline_recipients = (size_t)c->cfg.max_inline_recipients,
        .channel_kind = channel_kind,
        .channel_window_s = channel_window_s,
        .ctx = c,
    };
    job j;
    char reason[JOB_REASON_MAX];
    if (job_parse(raw, len, &rules, &j, reason, sizeof(reason)) < 0) {
        if (c->json) {
            json_t *o = json_pack("{s:b,s:s}", "ok", 0, "error", reason);
            print_json(o);
            json_decref(o);
        }
        fprintf(stderr, "omnicast: invalid job: %s\n", reason);
        free(raw);
        return EX_INVALID;
    }
    int rc = connect_redis(c);
    if (rc) {
        job_free(&j);
        free(raw);
        return rc;
    }
    /* a campaign with this id exists: not queued again (as the API's 200
     * "exists"); exit 0, the output says so */
    char ck[512];
    key_build(ck, sizeof(ck), c->prefix, KEY_CAMPAIGN, j.id);
    redisReply *ex = cli_cmd(c, "HGET %s state", ck);
    if (!ex) {
        fprintf(stderr, "omnicast: %s\n", cli_err(c));
        job_free(&j);
        free(raw);
        return EX_REDIS;
    }
    if (ex->type == REDIS_REPLY_STRING) {
        if (c->json) {
            json_t *o = json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "id", j.id, "status", "exists",
                                  "state", ex->str);
            print_json(o);
            json_decref(o);
        } else {
            printf("job %s exists (campaign state %s): not queued again\n", j.id, ex->str);
        }
        freeReplyObject(ex);
        job_free(&j);
        free(raw);
        return 0;
    }
    freeReplyObject(ex);
    char key[512];
    key_build(key, sizeof(key), c->prefix, KEY_JOBS, NULL);
    const char *av[] = {"XADD", key, "*", "job", raw};
    size_t al[] = {4, strlen(key), 1, 3, len};
    redisReply *r = cli_argv(c, 5, av, al);
    if (!r || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "omnicast: XADD failed: %s\n", r ? r->str : cli_err(c));
        rc = r ? EX_FAIL : EX_REDIS;
    } else if (c->json) {
        printf("{\"ok\":true,\"id\":\"%s\",\"status\":\"queued\",\"entry\":\"%s\"}\n", j.id,
               r->str);
    } else {
        printf("queued job %s as entry %s\n", j.id, r->str);
    }
    freeReplyObject(r);
    job_free(&j);
    free(raw);
    return rc;
}

static const char *const counter_names[] = {"total",     "sent",      "failed",    "suppressed",
                                            "uncertain", "cancelled", "delivered", "read",
                                            "replied",   "opted_out", "fallback",  NULL};

static int by_name(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int cmd_status(cli *c, int argc, char **argv)
{
    (void)argc;
    int rc = connect_redis(c);
    if (rc)
        return rc;
    char key[512];
    key_build(key, sizeof(key), c->prefix, KEY_CAMPAIGN, argv[0]);
    redisReply *r = cli_cmd(c, "HGETALL %s", key);
    if (!r) {
        fprintf(stderr, "omnicast: %s\n", cli_err(c));
        return EX_REDIS;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        fprintf(stderr, "omnicast: no campaign %s\n", argv[0]);
        freeReplyObject(r);
        return EX_FAIL;
    }
    /* the same object GET /v1/campaigns/{id} answers (counters.h) */
    json_t *o = counters_from_reply(r);
    freeReplyObject(r);
    if (!o) {
        fprintf(stderr, "omnicast: out of memory\n");
        return EX_FAIL;
    }
    if (c->json) {
        print_json(o);
    } else {
        printf("campaign %s: %s\n", argv[0], json_string_value(json_object_get(o, "state")));
        for (int i = 0; counter_names[i]; i++)
            printf("  %-10s %lld\n", counter_names[i],
                   (long long)json_integer_value(json_object_get(o, counter_names[i])));
        printf("  %-10s %lld\n", "pending", counters_pending(o));
        /* conversions: converted conversations, revenue per currency */
        printf("  %-10s %lld\n", "converted",
               (long long)json_integer_value(json_object_get(o, "converted")));
        const char *cur;
        json_t *amount;
        json_object_foreach(json_object_get(o, "revenue"), cur, amount)
        {
            printf("  %-10s %s %s\n", "revenue", json_string_value(amount), cur);
        }
        /* per channel: sent, failed, delivered, read */
        const char *ch;
        json_t *cv;
        json_object_foreach(json_object_get(o, "channels"), ch, cv)
        {
            printf("  %-10s sent %lld, failed %lld, delivered %lld, read %lld\n", ch,
                   (long long)json_integer_value(json_object_get(cv, "sent")),
                   (long long)json_integer_value(json_object_get(cv, "failed")),
                   (long long)json_integer_value(json_object_get(cv, "delivered")),
                   (long long)json_integer_value(json_object_get(cv, "read")));
        }
        /* failures by reason (failed_reason:REASON), by name */
        json_t *fl = json_object_get(o, "failures");
        size_t nf = json_object_size(fl);
        const char **names = nf ? calloc(nf, sizeof(*names)) : NULL;
        if (names) {
            const char *why;
            json_t *n;
            size_t k = 0;
            json_object_foreach(fl, why, n) names[k++] = why;
            qsort(names, nf, sizeof(*names), by_name);
            printf("  failures\n");
            for (k = 0; k < nf; k++)
                printf("    %-20s %lld\n", names[k],
                       (long long)json_integer_value(json_object_get(fl, names[k])));
            free(names);
        }
    }
    json_decref(o);
    return 0;
}

static const char *script(const char *name)
{
    for (const script_src *s = scripts_src; s->name; s++)
        if (strcmp(s->name, name) == 0)
            return s->src;
    return NULL;
}

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int resend_uncertain(cli *c, const char *id)
{
    char ck[512], mk[512], rz[512], now[32];
    key_build(ck, sizeof(ck), c->prefix, KEY_CAMPAIGN, id);
    key_build(mk, sizeof(mk), c->prefix, KEY_MSG, id);
    key_build(rz, sizeof(rz), c->prefix, KEY_RETRY, NULL);
    snprintf(now, sizeof(now), "%lld", now_ms());
    const char *av[] = {"EVAL", script("resend"), "3", ck, mk, rz, now, id};
    redisReply *r = cli_argv(c, 8, av, NULL);
    if (!r) {
        fprintf(stderr, "omnicast: %s\n", cli_err(c));
        return EX_REDIS;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_INTEGER) {
        if (c->json)
            printf("{\"ok\":true,\"queued\":%lld}\n", r->integer);
        else
            printf("campaign %s: %lld uncertain recipients queued to be sent again\n", id,
                   r->integer);
    } else {
        fprintf(stderr, "omnicast: %s\n", r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        rc = EX_FAIL;
    }
    freeReplyObject(r);
    return rc;
}

/* campaign uncertain ID: every uncertain recipient, in the hash's order,
 * read with HSCAN (a campaign can hold a million records) and printed as it
 * comes: a table, or one JSON object a line with --json. */
static int list_uncertain(cli *c, const char *id)
{
    char ck[512], mk[512];
    key_build(ck, sizeof(ck), c->prefix, KEY_CAMPAIGN, id);
    key_build(mk, sizeof(mk), c->prefix, KEY_MSG, id);
    redisReply *r = cli_cmd(c, "HMGET %s state uncertain", ck);
    if (!r) {
        fprintf(stderr, "omnicast: %s\n", cli_err(c));
        return EX_REDIS;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "omnicast: no campaign %s\n", id);
        freeReplyObject(r);
        return EX_FAIL;
    }
    long long counter = r->element[1]->type == REDIS_REPLY_STRING ? atoll(r->element[1]->str) : 0;
    freeReplyObject(r);
    char line[1024], cursor[32] = "0";
    long long n = 0;
    if (!c->json) {
        uncertain_fmt_header(line, sizeof(line));
        printf("%s\n", line);
    }
    do {
        r = cli_cmd(c, "HSCAN %s %s COUNT 1000", mk, cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "omnicast: HSCAN %s: %s\n", mk,
                    !r                             ? cli_err(c)
                    : r->type == REDIS_REPLY_ERROR ? r->str
                                                   : "bad reply");
            int rc = r ? EX_FAIL : EX_REDIS;
            freeReplyObject(r);
            return rc;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *kv = r->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            redisReply *f = kv->element[i], *v = kv->element[i + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            json_t *item = uncertain_item(f->str, f->len, v->str, v->len);
            if (!item)
                continue;
            n++;
            if (c->json) {
                char *s = json_dumps(item, JSON_COMPACT);
                printf("%s\n", s);
                free(s);
            } else {
                uncertain_fmt_row(item, line, sizeof(line));
                printf("%s\n", line);
            }
            json_decref(item);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (!c->json)
        printf("campaign %s: %lld uncertain recipient%s (counter: %lld)\n", id, n,
               n == 1 ? "" : "s", counter);
    return 0;
}

static int cmd_campaign(cli *c, int argc, char **argv)
{
    (void)argc;
    if (strcmp(argv[0], "pause") && strcmp(argv[0], "resume") && strcmp(argv[0], "cancel") &&
        strcmp(argv[0], "resend-uncertain") && strcmp(argv[0], "uncertain")) {
        usage(stderr);
        return EX_USAGE_;
    }
    int rc = connect_redis(c);
    if (rc)
        return rc;
    if (!strcmp(argv[0], "resend-uncertain"))
        return resend_uncertain(c, argv[1]);
    if (!strcmp(argv[0], "uncertain"))
        return list_uncertain(c, argv[1]);
    char ck[512], sk[512], now[32], lease[16];
    key_build(ck, sizeof(ck), c->prefix, KEY_CAMPAIGN, argv[1]);
    key_build(sk, sizeof(sk), c->prefix, KEY_SCHEDULED, NULL);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(now, sizeof(now), "%lld", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    snprintf(lease, sizeof(lease), "%d", c->cfg.lease_ms);
    /* the other keys are named from the prefix by the script; the address
     * kind of each configured channel as the daemon resolves it (a cancel
     * finds the records of recipients waiting in the retry set with it) */
    const char *av[9 + 2 * 64] = {"EVAL", script("control"), "2", ck, sk};
    int ac = 5;
    av[ac++] = argv[0]; /* action */
    av[ac++] = now;
    av[ac++] = argv[1]; /* id */
    av[ac++] = lease;
    for (size_t i = 0; c->have_cfg && i < c->cfg.n_channels && ac + 2 <= 9 + 2 * 64; i++) {
        const char *name = c->cfg.channels[i].name;
        int k = channel_kind(c, name);
        av[ac++] = name;
        av[ac++] = k == ADDR_PHONE ? "phone" : k == ADDR_EMAIL ? "email" : "any";
    }
    redisReply *r = cli_argv(c, ac, av, NULL);
    if (!r) {
        fprintf(stderr, "omnicast: %s\n", cli_err(c));
        return EX_REDIS;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        int ok = strcmp(r->element[0]->str, "ok") == 0;
        if (c->json)
            printf("{\"ok\":%s,\"%s\":\"%s\"}\n", ok ? "true" : "false", ok ? "state" : "error",
                   r->element[1]->str);
        else if (ok)
            printf("campaign %s: %s\n", argv[1], r->element[1]->str);
        else
            fprintf(stderr, "omnicast: %s\n", r->element[1]->str);
        rc = ok ? 0 : EX_FAIL;
    } else {
        fprintf(stderr, "omnicast: %s\n", r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        rc = EX_FAIL;
    }
    freeReplyObject(r);
    return rc;
}

/* connector resume NAME: a halted connector instance sends again, on every
 * daemon: the request goes to connector:{name} (field resume, unix ms),
 * which halted instances read each tick. */
static int cmd_connector(cli *c, int argc, char **argv)
{
    (void)argc;
    if (strcmp(argv[0], "resume")) {
        usage(stderr);
        return EX_USAGE_;
    }
    const char *name = argv[1];
    if (c->have_cfg && !config_connector(&c->cfg, name)) {
        fprintf(stderr, "omnicast: no connector instance [connector.%s] in the configuration\n",
                name);
        return EX_FAIL;
    }
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
            fprintf(stderr, "omnicast: bad connector name (A-Z a-z 0-9 _ -)\n");
            return EX_USAGE_;
        }
    int rc = connect_redis(c);
    if (rc)
        return rc;
    char key[512], now[32];
    if (key_build(key, sizeof(key), c->prefix, KEY_CONNECTOR, name) < 0) {
        fprintf(stderr, "omnicast: connector name too long\n");
        return EX_USAGE_;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(now, sizeof(now), "%lld", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    const char *av[] = {"HSET", key, "resume", now};
    redisReply *r = redisCommandArgv(c->rc, 4, av, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "omnicast: %s\n", r ? r->str : c->rc->errstr);
        freeReplyObject(r);
        return r ? EX_FAIL : EX_REDIS;
    }
    freeReplyObject(r);
    if (c->json)
        printf("{\"ok\":true,\"connector\":\"%s\",\"resume\":%s}\n", name, now);
    else
        printf("connector %s: resume requested (halted instances resume within a second)\n", name);
    return 0;
}

static json_t *entry_json(redisReply *e)
{
    json_t *o = json_object();
    redisReply *f = e->element[1];
    for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
        json_object_set_new(o, f->element[k]->str,
                            json_stringn_nocheck(f->element[k + 1]->str, f->element[k + 1]->len));
    /* "id" is the dead letter's own id; "entry" (a field) the source's */
    json_object_set_new(o, "id", json_string(e->element[0]->str));
    return o;
}

/* Print s to stdout with every control character escaped (\n \r \t, \\,
 * \xNN for the other C0 bytes and DEL, \u0080..\u009f for the UTF-8 C1
 * controls), so that content from a job cannot drive the operator's
 * terminal. Returns the number of characters written. */
static int put_safe(const char *s)
{
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : "-"); *p; p++) {
        if (*p == '\\')
            n += printf("\\\\");
        else if (*p == '\n')
            n += printf("\\n");
        else if (*p == '\r')
            n += printf("\\r");
        else if (*p == '\t')
            n += printf("\\t");
        else if (*p < 0x20 || *p == 0x7f)
            n += printf("\\x%02x", *p);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            n += printf("\\u%04x", *++p);
        else
            n += putchar(*p) == EOF ? 0 : 1;
    }
    return n;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", s);
    free(s);
}

static int cmd_dead(cli *c, int argc, char **argv)
{
    if ((strcmp(argv[0], "list") && strcmp(argv[0], "show") && strcmp(argv[0], "replay")) ||
        (strcmp(argv[0], "list") && argc != 2)) {
        usage(stderr);
        return EX_USAGE_;
    }
    int rc = connect_redis(c);
    if (rc)
        return rc;
    char key[512], jobs[512];
    key_build(key, sizeof(key), c->prefix, KEY_DEAD, NULL);
    key_build(jobs, sizeof(jobs), c->prefix, KEY_JOBS, NULL);
    redisReply *r;
    if (!strcmp(argv[0], "list")) {
        int n = argc > 1 ? atoi(argv[1]) : 20;
        r = cli_cmd(c, "XREVRANGE %s + - COUNT %d", key, n > 0 ? n : 20);
    } else {
        r = cli_cmd(c, "XRANGE %s %s %s", key, argv[1], argv[1]);
    }
    if (!r)
        return EX_REDIS;
    if (r->type != REDIS_REPLY_ARRAY || (strcmp(argv[0], "list") && r->elements != 1)) {
        fprintf(stderr, "omnicast: no dead letter %s\n", argc > 1 ? argv[1] : "");
        freeReplyObject(r);
        return EX_FAIL;
    }
    for (size_t i = 0; i < r->elements; i++) {
        json_t *o = entry_json(r->element[i]);
        if (!strcmp(argv[0], "replay")) {
            /* a job goes back onto the queue as it was; the dead letter stays */
            const char *job = json_string_value(json_object_get(o, "job"));
            if (!job) {
                fprintf(stderr, "omnicast: dead letter %s holds no job to replay\n", argv[1]);
                rc = EX_FAIL;
            } else {
                redisReply *x = cli_cmd(c, "XADD %s * job %s", jobs, job);
                if (x && x->type == REDIS_REPLY_STRING)
                    printf("replayed %s as %s\n", argv[1], x->str);
                else
                    rc = EX_FAIL;
                freeReplyObject(x);
            }
        } else if (c->json || !strcmp(argv[0], "show")) {
            /* ASCII only: no raw C1 control (U+0080..U+009F) reaches the terminal */
            char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
            if (s)
                printf("%s\n", s);
            else
                fprintf(stderr, "omnicast: dead letter %s is not valid UTF-8\n",
                        r->element[i]->element[0]->str);
            free(s);
        } else {
            /* source and reason can quote the job: escaped */
            printf("%s  ", r->element[i]->element[0]->str);
            int w = put_safe(json_string_value(json_object_get(o, "source")));
            printf("%*s ", w < 8 ? 8 - w : 0, "");
            put_safe(json_string_value(json_object_get(o, "reason")));
            putchar('\n');
        }
        json_decref(o);
    }
    freeReplyObject(r);
    return rc;
}

/* optout_scope = contact: an address linked to a contact (its contact_id in
 * omni:contact_ids:{channel}, written by claim.lua) suppresses, or frees,
 * the contact on every channel too, as an opt-out or opt-in would */
static int suppress_contact(cli *c, const char *op, const char *channel, const char *addr)
{
    char key[512];
    key_build(key, sizeof(key), c->prefix, KEY_CONTACT_IDS, channel);
    redisReply *r = cli_cmd(c, "HGET %s %s", key, addr);
    if (!r)
        return EX_REDIS;
    if (r->type == REDIS_REPLY_STRING) {
        key_build(key, sizeof(key), c->prefix, KEY_SUPPRESS_CONTACTS, NULL);
        redisReply *s =
            cli_cmd(c, "%s %s %b", !strcmp(op, "add") ? "SADD" : "SREM", key, r->str, r->len);
        if (!s) {
            freeReplyObject(r);
            return EX_REDIS;
        }
        printf("%s contact %s %s %s\n", op, r->str, !strcmp(op, "add") ? "to" : "from", key);
        freeReplyObject(s);
    }
    freeReplyObject(r);
    return 0;
}

static int cmd_suppress(cli *c, int argc, char **argv)
{
    if ((strcmp(argv[0], "add") && strcmp(argv[0], "remove") && strcmp(argv[0], "list")) ||
        (strcmp(argv[0], "list") && argc != 3)) {
        usage(stderr);
        return EX_USAGE_;
    }
    int rc = connect_redis(c);
    if (rc)
        return rc;
    char key[512];
    key_build(key, sizeof(key), c->prefix, KEY_SUPPRESS, argv[1]);
    if (!strcmp(argv[0], "list")) {
        redisReply *r = cli_cmd(c, "SMEMBERS %s", key);
        if (!r)
            return EX_REDIS;
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
            printf("%s\n", r->element[i]->str);
        freeReplyObject(r);
        return 0;
    }
    /* the same normalization as sends, so the entry matches */
    int kind = addr_kind_for_channel(argv[1]);
    if (c->have_cfg) {
        int k = channel_kind(c, argv[1]);
        if (k >= 0)
            kind = k;
    }
    char addr[ADDR_MAX];
    const char *why;
    if (addr_normalize(kind, argv[2], addr, sizeof(addr), &why) < 0) {
        fprintf(stderr, "omnicast: %s: %s\n", argv[2], why);
        return EX_INVALID;
    }
    redisReply *r = cli_cmd(c, "%s %s %s", !strcmp(argv[0], "add") ? "SADD" : "SREM", key, addr);
    if (!r)
        return EX_REDIS;
    printf("%s %s %s %s\n", argv[0], addr, !strcmp(argv[0], "add") ? "to" : "from", key);
    freeReplyObject(r);
    return suppress_contact(c, argv[0], argv[1], addr);
}

/* one campaign's line (or JSON object) from HMGET state total sent failed */
static void print_campaign(cli *c, const char *id, redisReply *h)
{
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements < 4 || !h->element[0]->str)
        return;
    /* a message job (proactive or a conversation's) is not a campaign */
    if (h->elements > 4 && h->element[4]->str && !strcmp(h->element[4]->str, "message"))
        return;
    /* a counter never written is absent: 0 (as status prints it) */
    long long n[3];
    for (int j = 0; j < 3; j++)
        n[j] = h->element[j + 1]->str ? strtoll(h->element[j + 1]->str, NULL, 10) : 0;
    if (c->json) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_stringn_nocheck(id, strlen(id)));
        json_object_set_new(o, "state",
                            json_stringn_nocheck(h->element[0]->str, h->element[0]->len));
        json_object_set_new(o, "total", json_integer(n[0]));
        json_object_set_new(o, "sent", json_integer(n[1]));
        json_object_set_new(o, "failed", json_integer(n[2]));
        print_json(o);
        json_decref(o);
    } else {
        printf("%-32s %-10s total %-8lld sent %-8lld failed %lld\n", id, h->element[0]->str, n[0],
               n[1], n[2]);
    }
}

/* campaigns from the index (omni:campaigns), newest first, 1000 a step;
 * 0, or an exit status */
static int campaigns_from_index(cli *c)
{
    char ik[512];
    key_build(ik, sizeof(ik), c->prefix, KEY_CAMPAIGNS, NULL);
    for (long long at = 0;; at += 1000) {
        redisReply *r = cli_cmd(c, "ZREVRANGE %s %lld %lld", ik, at, at + 999);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return EX_REDIS;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const char *id = r->element[i]->str;
            if (!id)
                continue;
            char ck[512];
            key_build(ck, sizeof(ck), c->prefix, KEY_CAMPAIGN, id);
            redisReply *h = cli_cmd(c, "HMGET %s state total sent failed", ck);
            print_campaign(c, id, h);
            freeReplyObject(h);
        }
        size_t got = r->elements;
        freeReplyObject(r);
        if (got < 1000)
            return 0;
    }
}

static int cmd_campaigns(cli *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int rc = connect_redis(c);
    if (rc)
        return rc;
    /* the index once it holds every campaign (the daemon's backfill set
     * campaigns:indexed), else a SCAN of campaign:* */
    char mk[512];
    key_build(mk, sizeof(mk), c->prefix, KEY_CAMPAIGNS_INDEXED, NULL);
    redisReply *m = cli_cmd(c, "EXISTS %s", mk);
    if (!m || m->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(m);
        return EX_REDIS;
    }
    int indexed = m->integer == 1;
    freeReplyObject(m);
    if (indexed)
        return campaigns_from_index(c);
    char pat[512];
    key_build(pat, sizeof(pat), c->prefix, KEY_CAMPAIGN, "*");
    const char *cursor = "0";
    char cur[64] = "0";
    size_t plen = strlen(c->prefix) + 9;
    do {
        redisReply *r = cli_cmd(c, "SCAN %s MATCH %s COUNT 1000", cursor, pat);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            return EX_REDIS;
        }
        snprintf(cur, sizeof(cur), "%s", r->element[0]->str);
        cursor = cur;
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            if (strchr(k + plen, ':') && strrchr(k, ':') > k + plen)
                continue; /* the :rcpt lists and such */
            redisReply *h = cli_cmd(c, "HMGET %s state total sent failed type", k);
            print_campaign(c, k + plen, h);
            freeReplyObject(h);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* export ID [--csv] [--state S]: every recipient record of the campaign's
 * message hash on stdout, as GET /v1/campaigns/{id}/recipients streams it
 * (export.h): HSCAN, 1000 fields a step, each step's lines written before
 * the next is read, so memory stays one step whatever the campaign's size. */
static int cmd_export(cli *c, int argc, char **argv)
{
    const char *id = NULL, *state = NULL;
    int format = EXPORT_NDJSON;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--csv"))
            format = EXPORT_CSV;
        else if (!strcmp(argv[i], "--state") && i + 1 < argc)
            state = argv[++i];
        else if (!id && argv[i][0] != '-')
            id = argv[i];
        else
            id = NULL, i = argc; /* an unknown option: usage */
    }
    if (!id || (state && !export_state_valid(state))) {
        if (state && !export_state_valid(state))
            fprintf(stderr, "omnicast: --state: must be claimed, sent, failed, retry, uncertain, "
                            "cancelled or suppressed\n");
        usage(stderr);
        return EX_USAGE_;
    }
    int rc = connect_redis(c);
    if (rc)
        return rc;
    char ck[512], mk[512];
    key_build(ck, sizeof(ck), c->prefix, KEY_CAMPAIGN, id);
    key_build(mk, sizeof(mk), c->prefix, KEY_MSG, id);
    redisReply *r = cli_cmd(c, "EXISTS %s", ck);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        fprintf(stderr, "omnicast: %s\n", r && r->str ? r->str : cli_err(c));
        freeReplyObject(r);
        return EX_REDIS;
    }
    int exists = r->integer == 1;
    freeReplyObject(r);
    if (!exists) {
        fprintf(stderr, "omnicast: no campaign %s\n", id);
        return EX_FAIL;
    }
    signal(SIGPIPE, SIG_IGN); /* a reader that stops (| head) ends the export */
    if (format == EXPORT_CSV && fputs(export_csv_header(), stdout) < 0)
        return EX_FAIL;
    char cursor[32] = "0";
    do {
        r = cli_cmd(c, "HSCAN %s %s COUNT 1000", mk, cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "omnicast: HSCAN failed: %s\n", r && r->str ? r->str : cli_err(c));
            freeReplyObject(r);
            return EX_REDIS;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *kv = r->element[1];
        export_buf b = {0};
        for (size_t i = 0; i + 1 < kv->elements && rc == 0; i += 2) {
            redisReply *f = kv->element[i], *v = kv->element[i + 1];
            if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
                export_line(&b, format, state, f->str, f->len, v->str, v->len) < 0)
                rc = EX_FAIL;
        }
        freeReplyObject(r);
        if (b.len && fwrite(b.data, 1, b.len, stdout) != b.len)
            rc = EX_FAIL;
        export_buf_free(&b);
        if (!rc && fflush(stdout) != 0)
            rc = EX_FAIL;
    } while (!rc && strcmp(cursor, "0") != 0);
    if (rc)
        fprintf(stderr, "omnicast: export of %s stopped: %s\n", id,
                errno ? strerror(errno) : "out of memory");
    return rc;
}

static int cmd_conversations(cli *c, int argc, char **argv)
{
    const char *campaign = NULL;
    int open_only = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--open"))
            open_only = 1;
        else if (!strcmp(argv[i], "--campaign") && i + 1 < argc)
            campaign = argv[++i];
        else {
            usage(stderr);
            return EX_USAGE_;
        }
    }
    int rc = connect_redis(c);
    if (rc)
        return rc;
    char key[512];
    if (campaign)
        key_build(key, sizeof(key), c->prefix, KEY_CONV_CAMPAIGN, campaign);
    else
        key_build(key, sizeof(key), c->prefix, open_only ? KEY_CONV_OPEN : KEY_CONV_ALL, NULL);
    redisReply *ids = cli_cmd(c, "ZREVRANGE %s 0 499", key);
    if (!ids)
        return EX_REDIS;
    for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
        char ck[KEY_MAX];
        key_build(ck, sizeof(ck), c->prefix, KEY_CONV, ids->element[i]->str);
        redisReply *h = cli_cmd(c, "HGETALL %s", ck);
        json_t *o = json_object();
        for (size_t k = 0; h && h->type == REDIS_REPLY_ARRAY && k + 1 < h->elements; k += 2)
            json_object_set_new(o, h->element[k]->str, json_string(h->element[k + 1]->str));
        freeReplyObject(h);
        const char *st = json_string_value(json_object_get(o, "state"));
        if (!open_only || (st && !strcmp(st, "open"))) {
            if (c->json)
                print_json(o);
            else
                printf("%-8s %-6s %-9s %-24s %-8s %s\n", ids->element[i]->str, st ? st : "",
                       json_string_value(json_object_get(o, "channel")),
                       json_string_value(json_object_get(o, "contact")),
                       json_string_value(json_object_get(o, "origin")),
                       json_string_value(json_object_get(o, "campaign"))
                           ? json_string_value(json_object_get(o, "campaign"))
                           : "-");
        }
        json_decref(o);
    }
    freeReplyObject(ids);
    return 0;
}

/* conversation send ID TEXT: an agent's message into an open conversation,
 * the same message job POST /v1/conversations/{id}/messages makes (channel
 * and contact from the conversation, conversation_id), logged queued and
 * added to the jobs stream by the same inbound.lua call. */
static int cmd_conversation(cli *c, int argc, char **argv)
{
    (void)argc;
    if (strcmp(argv[0], "send") != 0) {
        usage(stderr);
        return EX_USAGE_;
    }
    const char *cid = argv[1], *text = argv[2];
    if (!job_valid_id(cid, strlen(cid)) || strchr(cid, ':')) {
        fprintf(stderr, "omnicast: no such conversation\n");
        return EX_FAIL;
    }
    int rc = connect_redis(c);
    if (rc)
        return rc;
    char ck[KEY_MAX];
    key_build(ck, sizeof(ck), c->prefix, KEY_CONV, cid);
    const char *hv[] = {"HMGET", ck, "state", "channel", "contact"};
    redisReply *h = cli_argv(c, 5, hv, NULL);
    if (!h)
        return EX_REDIS;
    if (h->type != REDIS_REPLY_ARRAY || h->elements != 3 || !h->element[0]->str) {
        fprintf(stderr, "omnicast: no such conversation %s\n", cid);
        freeReplyObject(h);
        return EX_FAIL;
    }
    if (strcmp(h->element[0]->str, "open") != 0) {
        fprintf(stderr, "omnicast: conversation %s is closed\n", cid);
        freeReplyObject(h);
        return EX_FAIL;
    }
    char mid[JOB_ID_MAX + 1];
    snprintf(mid, sizeof(mid), "%.64s-m%lld-%u", cid, now_ms(), (unsigned)getpid() & 0xffff);
    json_t *jj = json_pack("{s:s,s:s,s:s?,s:s?,s:{s:s},s:s}", "type", "message", "id", mid,
                           "channel", h->element[1]->str, "to", h->element[2]->str, "message",
                           "text", text, "conversation_id", cid);
    freeReplyObject(h);
    char *raw = jj ? json_dumps(jj, JSON_COMPACT) : NULL;
    json_decref(jj);
    if (!raw) {
        fprintf(stderr, "omnicast: the text is not valid UTF-8\n");
        return EX_INVALID;
    }
    job_rules rules = {
        .max_bytes = (size_t)c->cfg.max_job_bytes,
        .max_inline_recipients = 1,
        .channel_kind = channel_kind,
        .channel_window_s = channel_window_s,
        .ctx = c,
    };
    job j;
    char reason[JOB_REASON_MAX];
    if (job_parse(raw, strlen(raw), &rules, &j, reason, sizeof(reason)) < 0) {
        fprintf(stderr, "omnicast: invalid message: %s\n", reason);
        free(raw);
        return EX_INVALID;
    }
    job_free(&j);
    char now[32];
    snprintf(now, sizeof(now), "%lld", now_ms());
    const char *av[] = {"EVAL", script("inbound"), "0", c->prefix, now, "agent", cid, mid, text,
                        raw};
    redisReply *r = cli_argv(c, 10, av, NULL);
    free(raw);
    if (!r) {
        fprintf(stderr, "omnicast: %s\n", cli_err(c));
        return EX_REDIS;
    }
    const char *res = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->str
                          ? r->element[0]->str
                          : NULL;
    rc = 0;
    if (res && !strcmp(res, "ok")) {
        if (c->json)
            printf("{\"id\":\"%s\",\"conversation_id\":\"%s\",\"status\":\"queued\"}\n", mid, cid);
        else
            printf("queued message %s in conversation %s\n", mid, cid);
    } else {
        fprintf(stderr, "omnicast: %s\n",
                !res                      ? (r->type == REDIS_REPLY_ERROR ? r->str : "bad reply")
                : !strcmp(res, "closed")  ? "the conversation is closed"
                : !strcmp(res, "missing") ? "no such conversation"
                                          : res);
        rc = EX_FAIL;
    }
    freeReplyObject(r);
    return rc;
}

/* watch: a live progress line on a terminal, plain lines otherwise; ends
 * when the campaign does. */
static int cmd_watch(cli *c, int argc, char **argv)
{
    (void)argc;
    int rc = connect_redis(c);
    if (rc)
        return rc;
    int tty = isatty(1);
    char key[512];
    key_build(key, sizeof(key), c->prefix, KEY_CAMPAIGN, argv[0]);
    long long last_done = -1, t0 = now_ms(), d0 = -1;
    for (;;) {
        redisReply *r = cli_cmd(c,
                                "HMGET %s state total sent failed suppressed "
                                "uncertain cancelled",
                                key);
        if (!r)
            return EX_REDIS;
        if (r->type != REDIS_REPLY_ARRAY || !r->element[0]->str) {
            freeReplyObject(r);
            /* just enqueued? the daemon creates it within moments */
            if (now_ms() - t0 < 10000) {
                struct timespec ts = {0, 200000000};
                nanosleep(&ts, NULL);
                continue;
            }
            fprintf(stderr, "omnicast: no campaign %s\n", argv[0]);
            return EX_FAIL;
        }
        char state[32];
        snprintf(state, sizeof(state), "%s", r->element[0]->str);
        long long v[6];
        for (int i = 0; i < 6; i++)
            v[i] = r->element[i + 1]->str ? atoll(r->element[i + 1]->str) : 0;
        freeReplyObject(r);
        long long total = v[0], done = v[1] + v[2] + v[3] + v[4] + v[5];
        if (d0 < 0)
            d0 = done;
        double el = (double)(now_ms() - t0) / 1000.0;
        double rate = el > 0.5 ? (double)(done - d0) / el : 0;
        long long eta = rate > 0 ? (long long)((double)(total - done) / rate) : -1;
        int fin = strcmp(state, "running") && strcmp(state, "scheduled") && strcmp(state, "paused");
        if (c->json) {
            if (done != last_done || fin)
                printf("{\"state\":\"%s\",\"total\":%lld,\"done\":%lld,\"sent\":%lld,"
                       "\"failed\":%lld,\"rate\":%.1f}\n",
                       state, total, done, v[1], v[2], rate);
        } else if (tty) {
            int w = 30, fill = total ? (int)(w * done / total) : 0;
            char bar[64];
            for (int i = 0; i < w; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[w] = '\0';
            printf("\r[%s] %lld/%lld sent %lld failed %lld %.0f/s ETA %s%llds %-9s", bar, done,
                   total, v[1], v[2], rate, eta < 0 ? "?" : "", eta < 0 ? 0 : eta, state);
        } else if (done != last_done || fin) {
            printf("%s %lld/%lld sent %lld failed %lld rate %.0f/s\n", state, done, total, v[1],
                   v[2], rate);
        }
        fflush(stdout);
        last_done = done;
        if (fin) {
            if (tty && !c->json)
                printf("\n");
            return 0;
        }
        struct timespec ts = {0, 500000000};
        nanosleep(&ts, NULL);
    }
}

/* ---- the commands: one row each, the dispatcher and the usage text come
 * from here. The argument counts are checked before the handler runs (a
 * count outside min..max prints the usage, exit 2); a handler checks its
 * subcommands itself. */

static int cmd_help(cli *c, int argc, char **argv);

typedef struct cli_usage {
    const char *synopsis; /* after "omnicast " */
    const char *help;     /* NULL: the synopsis says it */
} cli_usage;

typedef struct cli_command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
    int min_args, max_args; /* max -1: no limit */
    cli_usage usage[4];     /* the lines in the usage text, up to a NULL synopsis */
} cli_command;

static const cli_command commands[] = {
    {"enqueue",
     cmd_enqueue,
     1,
     1,
     {{"enqueue FILE|-", "validate a job and queue it (XADD omni:jobs)"}}},
    {"status", cmd_status, 1, 1, {{"status ID", "a campaign's state and counters"}}},
    {"campaign",
     cmd_campaign,
     2,
     2,
     {{"campaign pause|resume|cancel ID", "control a campaign on every instance"},
      {"campaign uncertain ID", "the uncertain recipients: reason, time on the wire"},
      {"campaign resend-uncertain ID", "send again the recipients left uncertain by a crash"}}},
    {"connector",
     cmd_connector,
     2,
     2,
     {{"connector resume NAME", "a halted connector instance sends again (every instance)"}}},
    {"watch", cmd_watch, 1, 1, {{"watch ID", "live progress until the campaign ends"}}},
    {"campaigns", cmd_campaigns, 0, 0, {{"campaigns", "every campaign with its state and counts"}}},
    {"export",
     cmd_export,
     1,
     4,
     {{"export ID [--csv] [--state S]", "every recipient's record, NDJSON (or CSV) on stdout"}}},
    {"conversations", cmd_conversations, 0, -1, {{"conversations [--open] [--campaign ID]", NULL}}},
    {"conversation",
     cmd_conversation,
     3,
     3,
     {{"conversation send ID TEXT", "an agent's message into an open conversation"}}},
    {"suppress",
     cmd_suppress,
     2,
     -1,
     {{"suppress add|remove CHANNEL ADDRESS | suppress list CHANNEL", NULL}}},
    {"dead", cmd_dead, 1, -1, {{"dead list [N] | dead show ENTRY | dead replay ENTRY", NULL}}},
    {"help", cmd_help, 0, 1, {{"help [COMMAND]", "this text, or one command's usage"}}},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* one usage line: the help in a column, or under a synopsis too long for it */
static void usage_line(FILE *f, const cli_usage *u)
{
    if (!u->help)
        fprintf(f, "  %s\n", u->synopsis);
    else if (strlen(u->synopsis) <= 28)
        fprintf(f, "  %-28s %s\n", u->synopsis, u->help);
    else
        fprintf(f, "  %s\n%31s%s\n", u->synopsis, "", u->help);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: omnicast [--config FILE] [--redis URL] [--prefix P] [--json] COMMAND ...\n"
               "       (--json may also follow the command's arguments)\n"
               "\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        for (const cli_usage *u = commands[i].usage; u < commands[i].usage + 4 && u->synopsis; u++)
            usage_line(f, u);
    fprintf(f, "\n"
               "exit codes: 0 ok, 1 failed, 2 usage, 3 invalid job, 4 Redis unavailable\n");
}

/* help: the usage text on stdout; help COMMAND: that command's lines */
static int cmd_help(cli *c, int argc, char **argv)
{
    (void)c;
    if (argc == 0) {
        usage(stdout);
        return 0;
    }
    const cli_command *cmd = find_command(argv[0]);
    if (!cmd) {
        fprintf(stderr, "omnicast: unknown command '%s'\n", argv[0]);
        usage(stderr);
        return EX_USAGE_;
    }
    printf("usage: omnicast [OPTIONS] ...\n");
    for (const cli_usage *u = cmd->usage; u < cmd->usage + 4 && u->synopsis; u++)
        usage_line(stdout, u);
    return 0;
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof(c));
    const char *config = NULL, *redis = NULL, *prefix = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            c.json = 1;
        else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (i + 1 < argc && strcmp(a, "--config") == 0)
            config = argv[++i];
        else if (i + 1 < argc && strcmp(a, "--redis") == 0)
            redis = argv[++i];
        else if (i + 1 < argc && strcmp(a, "--prefix") == 0)
            prefix = argv[++i];
        else {
            usage(stderr);
            return EX_USAGE_;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EX_USAGE_;
    }
    if (config) {
        conf_errors errs = {0};
        if (config_load_file(config, &c.cfg, &errs) < 0) {
            for (size_t k = 0; k < errs.n; k++)
                fprintf(stderr, "%s\n", errs.msgs[k]);
            conf_errors_free(&errs);
            config_free(&c.cfg);
            return EX_USAGE_;
        }
        conf_errors_free(&errs);
        c.have_cfg = 1;
    } else {
        config_init(&c.cfg); /* the [daemon] defaults: redis, prefix, job limits, lease */
    }
    c.redis_url = redis ? redis : c.cfg.redis;
    c.prefix = prefix ? prefix : c.cfg.prefix;
    const char *cmd = argv[i];
    /* --json after the command's arguments too (omnicast status ID --json) */
    int rest = 0;
    char **rv = argv + i + 1;
    for (int k = i + 1; k < argc; k++) {
        if (strcmp(argv[k], "--json") == 0)
            c.json = 1;
        else
            rv[rest++] = argv[k];
    }
    int rc;
    const cli_command *command = find_command(cmd);
    if (!command) {
        fprintf(stderr, "omnicast: unknown command '%s'\n", cmd);
        usage(stderr);
        rc = EX_USAGE_;
    } else if (rest < command->min_args || (command->max_args >= 0 && rest > command->max_args)) {
        usage(stderr);
        rc = EX_USAGE_;
    } else {
        rc = command->run(&c, rest, rv);
    }
    if (c.rc)
        redisFree(c.rc);
    redis_sync_free(c.rs);
    SSL_CTX_free(c.tls);
    config_free(&c.cfg);
    return rc;
}
