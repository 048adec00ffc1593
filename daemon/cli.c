/* omnicast: the command-line client. Validates jobs locally with the
 * daemon's own validator before queueing them, and reads campaign state
 * straight from Redis. Blocking hiredis is fine here: no event loop. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "config.h"
#include "job.h"
#include "scripts.h"
#include "store.h"

/* exit codes: 0 ok, 1 operation failed (not found, refused), 2 usage,
 * 3 invalid input, 4 Redis unavailable */
enum { EX_FAIL = 1, EX_USAGE_ = 2, EX_INVALID = 3, EX_REDIS = 4 };

typedef struct cli {
    const char *redis_url;
    const char *prefix;
    int json;
    omni_config cfg;
    int have_cfg;
    redisContext *rc;
} cli;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: omnicast [--config FILE] [--redis URL] [--prefix P] [--json] COMMAND ...\n"
            "\n"
            "commands:\n"
            "  enqueue FILE|-               validate a job and queue it (XADD omni:jobs)\n"
            "  status ID                    a campaign's state and counters\n"
            "  campaign pause|resume|cancel ID\n"
            "                               control a campaign on every instance\n"
            "  campaign resend-uncertain ID send again the recipients left uncertain by a crash\n"
            "  dead list [N]                the newest N dead letters (default 20)\n"
            "\n"
            "exit codes: 0 ok, 1 failed, 2 usage, 3 invalid job, 4 Redis unavailable\n");
}

static int connect_redis(cli *c)
{
    char host[256], path[256];
    int port, db;
    if (store_parse_url(c->redis_url, host, sizeof(host), &port, path, sizeof(path), &db) < 0) {
        fprintf(stderr, "omnicast: bad redis URL: %s\n", c->redis_url);
        return EX_USAGE_;
    }
    struct timeval tv = {5, 0};
    c->rc = path[0] ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);
    if (!c->rc || c->rc->err) {
        fprintf(stderr, "omnicast: cannot connect to Redis at %s: %s\n", c->redis_url,
                c->rc ? c->rc->errstr : "out of memory");
        return EX_REDIS;
    }
    redisSetTimeout(c->rc, tv);
    if (db) {
        redisReply *r = redisCommand(c->rc, "SELECT %d", db);
        freeReplyObject(r);
    }
    return 0;
}

static int channel_kind(void *ctx, const char *name)
{
    cli *c = ctx;
    if (!c->have_cfg)
        return ADDR_ANY;
    const conf_channel *ch = config_channel(&c->cfg, name);
    if (!ch)
        return -1;
    const conf_connector *cc = config_connector(&c->cfg, ch->connector);
    return cc ? addr_kind_for_type(cc->type) : -1;
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
    if (argc != 1) {
        usage(stderr);
        return EX_USAGE_;
    }
    size_t len = 0;
    char *raw = read_all(argv[0], &len);
    if (!raw) {
        fprintf(stderr, "omnicast: cannot read %s: %s\n", argv[0], strerror(errno));
        return EX_FAIL;
    }
    job_rules rules = {
        .max_bytes = c->have_cfg ? (size_t)c->cfg.max_job_bytes : 1 << 20,
        .max_inline_recipients = c->have_cfg ? (size_t)c->cfg.max_inline_recipients : 10000,
        .channel_kind = channel_kind,
        .ctx = c,
    };
    job j;
    char reason[JOB_REASON_MAX];
    if (job_parse(raw, len, &rules, &j, reason, sizeof(reason)) < 0) {
        if (c->json)
            printf("{\"ok\":false,\"error\":\"%s\"}\n", reason);
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
    char key[512];
    snprintf(key, sizeof(key), "%sjobs", c->prefix);
    const char *av[] = {"XADD", key, "*", "job", raw};
    size_t al[] = {4, strlen(key), 1, 3, len};
    redisReply *r = redisCommandArgv(c->rc, 5, av, al);
    if (!r || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "omnicast: XADD failed: %s\n", r ? r->str : c->rc->errstr);
        rc = r ? EX_FAIL : EX_REDIS;
    } else if (c->json) {
        printf("{\"ok\":true,\"id\":\"%s\",\"entry\":\"%s\"}\n", j.id, r->str);
    } else {
        printf("queued job %s as entry %s\n", j.id, r->str);
    }
    freeReplyObject(r);
    job_free(&j);
    free(raw);
    return rc;
}

static const char *const counter_names[] = {"total",    "sent",       "failed", "suppressed",
                                            "uncertain", "cancelled", "delivered", "read",
                                            "replied",  "opted_out",  NULL};

static int cmd_status(cli *c, int argc, char **argv)
{
    if (argc != 1) {
        usage(stderr);
        return EX_USAGE_;
    }
    int rc = connect_redis(c);
    if (rc)
        return rc;
    char key[512];
    snprintf(key, sizeof(key), "%scampaign:%s", c->prefix, argv[0]);
    redisReply *r = redisCommand(c->rc, "HGETALL %s", key);
    if (!r) {
        fprintf(stderr, "omnicast: %s\n", c->rc->errstr);
        return EX_REDIS;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        fprintf(stderr, "omnicast: no campaign %s\n", argv[0]);
        freeReplyObject(r);
        return EX_FAIL;
    }
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (strcmp(k, "spec") == 0)
            continue;
        char *end;
        long long n = strtoll(v, &end, 10);
        json_object_set_new(o, k, *v && !*end ? json_integer(n) : json_string(v));
    }
    freeReplyObject(r);
    long long total = json_integer_value(json_object_get(o, "total"));
    long long done = 0;
    for (int i = 1; i <= 5; i++)
        done += json_integer_value(json_object_get(o, counter_names[i]));
    json_object_set_new(o, "pending", json_integer(total - done));
    if (c->json) {
        char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", s);
        free(s);
    } else {
        printf("campaign %s: %s\n", argv[0], json_string_value(json_object_get(o, "state")));
        for (int i = 0; counter_names[i]; i++)
            printf("  %-10s %lld\n", counter_names[i],
                   (long long)json_integer_value(json_object_get(o, counter_names[i])));
        printf("  %-10s %lld\n", "pending", total - done);
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
    snprintf(ck, sizeof(ck), "%scampaign:%s", c->prefix, id);
    snprintf(mk, sizeof(mk), "%smsg:%s", c->prefix, id);
    snprintf(rz, sizeof(rz), "%sretry", c->prefix);
    snprintf(now, sizeof(now), "%lld", now_ms());
    const char *av[] = {"EVAL", script("resend"), "3", ck, mk, rz, now, id};
    redisReply *r = redisCommandArgv(c->rc, 8, av, NULL);
    if (!r) {
        fprintf(stderr, "omnicast: %s\n", c->rc->errstr);
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

static int cmd_campaign(cli *c, int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[0], "pause") && strcmp(argv[0], "resume") &&
                      strcmp(argv[0], "cancel") && strcmp(argv[0], "resend-uncertain"))) {
        usage(stderr);
        return EX_USAGE_;
    }
    int rc = connect_redis(c);
    if (rc)
        return rc;
    if (!strcmp(argv[0], "resend-uncertain"))
        return resend_uncertain(c, argv[1]);
    char ck[512], sk[512], now[32];
    snprintf(ck, sizeof(ck), "%scampaign:%s", c->prefix, argv[1]);
    snprintf(sk, sizeof(sk), "%sscheduled", c->prefix);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(now, sizeof(now), "%lld", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    const char *av[] = {"EVAL", script("control"), "2", ck, sk, argv[0], now, argv[1]};
    redisReply *r = redisCommandArgv(c->rc, 8, av, NULL);
    if (!r) {
        fprintf(stderr, "omnicast: %s\n", c->rc->errstr);
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

static int cmd_dead(cli *c, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "list") != 0) {
        usage(stderr);
        return EX_USAGE_;
    }
    int n = argc > 1 ? atoi(argv[1]) : 20;
    if (n <= 0)
        n = 20;
    int rc = connect_redis(c);
    if (rc)
        return rc;
    char key[512];
    snprintf(key, sizeof(key), "%sdead", c->prefix);
    redisReply *r = redisCommand(c->rc, "XREVRANGE %s + - COUNT %d", key, n);
    if (!r)
        return EX_REDIS;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        json_t *o = json_object();
        json_object_set_new(o, "entry", json_string(e->element[0]->str));
        redisReply *f = e->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            json_object_set_new(o, f->element[k]->str,
                                json_stringn_nocheck(f->element[k + 1]->str,
                                                     f->element[k + 1]->len));
        if (c->json) {
            char *s = json_dumps(o, JSON_COMPACT);
            printf("%s\n", s);
            free(s);
        } else {
            printf("%s  %-8s %s\n", e->element[0]->str,
                   json_string_value(json_object_get(o, "source")),
                   json_string_value(json_object_get(o, "reason")));
        }
        json_decref(o);
    }
    freeReplyObject(r);
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
    }
    c.redis_url = redis ? redis : c.have_cfg ? c.cfg.redis : "redis://127.0.0.1:6379/0";
    c.prefix = prefix ? prefix : c.have_cfg ? c.cfg.prefix : "omni:";
    const char *cmd = argv[i];
    int rest = argc - i - 1;
    char **rv = argv + i + 1;
    int rc;
    if (strcmp(cmd, "enqueue") == 0)
        rc = cmd_enqueue(&c, rest, rv);
    else if (strcmp(cmd, "status") == 0)
        rc = cmd_status(&c, rest, rv);
    else if (strcmp(cmd, "campaign") == 0)
        rc = cmd_campaign(&c, rest, rv);
    else if (strcmp(cmd, "dead") == 0)
        rc = cmd_dead(&c, rest, rv);
    else {
        fprintf(stderr, "omnicast: unknown command '%s'\n", cmd);
        usage(stderr);
        rc = EX_USAGE_;
    }
    if (c.rc)
        redisFree(c.rc);
    if (c.have_cfg)
        config_free(&c.cfg);
    return rc;
}
