/* A mock provider for tests and benchmarks: one evhttp server that answers
 * like the WhatsApp Cloud API, Twilio's Messages API and a generic webhook
 * receiver, records every request as a JSON line, and fails on purpose
 * when a fail plan says so. Binds 127.0.0.1 only.
 *
 *   mock_provider --port N --record FILE [--port-file F] [--fail-plan SPEC]
 *                 [--latency-ms N]
 *
 * SPEC: comma-separated rules, first match wins, each rule colon-separated:
 *   status=500:first=2         the first 2 send requests get HTTP 500
 *   status=429:retry_after=1:first=3
 *   status=503:every=10        every 10th send request
 *   wa_code=131026:to=15550000009     a WhatsApp error code for one recipient
 *   twilio_code=21610:to=+15550000007 a Twilio error code for one recipient
 *   segments=0:to=+15550000008  Twilio's num_segments for that recipient
 *                               (else counted from Body as Twilio counts it)
 *   hang:to=...  close:to=...  garbage:first=1  delay=2000:first=1
 *   connclose:every=50          a normal answer with Connection: close
 *   wa_id=525512345678:to=5215512345678  a normal WhatsApp answer whose
 *                               contacts[0].wa_id is that number, not the one
 *                               sent to (input): Mexico's and Brazil's forms
 *
 * Each recorded line carries "status": the HTTP status the mock decided to
 * answer (also when the answer goes out later, after a delay), 0 for a
 * request it never answers (hang, close).
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <arpa/inet.h>
#include <sys/queue.h>
#include <jansson.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "../../connectors/sms_segments.h"

#define MAX_RULES 32

typedef struct rule {
    int status;      /* HTTP status to answer, 0 = from the code */
    int wa_code;     /* WhatsApp error code */
    int twilio_code; /* Twilio error code */
    int retry_after; /* seconds, -1 none */
    int first;       /* applies to the first N matching requests, 0 = all */
    int every;       /* every Nth request */
    int delay_ms;
    int hang, close_, garbage;
    int connclose; /* answer normally, with Connection: close */
    int segments;  /* Twilio num_segments to answer, -1 = counted from Body */
    char to[64];
    char wa_id[64]; /* answer normally, with this contacts[0].wa_id */
    int hits;
} rule;

static struct {
    struct event_base *base;
    FILE *rec;
    rule rules[MAX_RULES];
    int n_rules;
    int latency_ms;
    unsigned long seq, sends, wamid;
    int answered; /* status of the answer decided for the request at hand */
} M;

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int parse_plan(const char *spec)
{
    M.n_rules = 0;
    char *s = strdup(spec), *save = NULL;
    for (char *r = strtok_r(s, ",", &save); r && M.n_rules < MAX_RULES;
         r = strtok_r(NULL, ",", &save)) {
        rule *x = &M.rules[M.n_rules];
        memset(x, 0, sizeof(*x));
        x->retry_after = -1;
        x->segments = -1;
        char *save2 = NULL;
        for (char *kv = strtok_r(r, ":", &save2); kv; kv = strtok_r(NULL, ":", &save2)) {
            char *eq = strchr(kv, '=');
            const char *v = eq ? eq + 1 : "";
            if (eq)
                *eq = '\0';
            if (!strcmp(kv, "status"))
                x->status = atoi(v);
            else if (!strcmp(kv, "wa_code"))
                x->wa_code = atoi(v);
            else if (!strcmp(kv, "twilio_code"))
                x->twilio_code = atoi(v);
            else if (!strcmp(kv, "retry_after"))
                x->retry_after = atoi(v);
            else if (!strcmp(kv, "segments"))
                x->segments = atoi(v);
            else if (!strcmp(kv, "first"))
                x->first = atoi(v);
            else if (!strcmp(kv, "every"))
                x->every = atoi(v);
            else if (!strcmp(kv, "delay"))
                x->delay_ms = atoi(v);
            else if (!strcmp(kv, "to"))
                snprintf(x->to, sizeof(x->to), "%s", v[0] == '+' ? v + 1 : v);
            else if (!strcmp(kv, "wa_id"))
                snprintf(x->wa_id, sizeof(x->wa_id), "%s", v);
            else if (!strcmp(kv, "hang"))
                x->hang = 1;
            else if (!strcmp(kv, "close"))
                x->close_ = 1;
            else if (!strcmp(kv, "connclose"))
                x->connclose = 1;
            else if (!strcmp(kv, "garbage"))
                x->garbage = 1;
            else {
                fprintf(stderr, "mock_provider: unknown fail-plan word '%s'\n", kv);
                free(s);
                return -1;
            }
        }
        M.n_rules++;
    }
    free(s);
    return 0;
}

static rule *match(const char *to)
{
    const char *t = to && to[0] == '+' ? to + 1 : to;
    for (int i = 0; i < M.n_rules; i++) {
        rule *r = &M.rules[i];
        if (r->to[0] && (!t || strcmp(r->to, t)))
            continue;
        if (r->every && M.sends % (unsigned long)r->every != 0)
            continue;
        if (r->first && r->hits >= r->first)
            continue;
        r->hits++;
        return r;
    }
    return NULL;
}

/* The record of one request, written once the request was decided (see
 * on_request) so that it carries the status answered. */
static json_t *record(struct evhttp_request *req, const char *path, const char *query,
                      const char *body, size_t len)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)++M.seq));
    const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET" : "POST";
    json_object_set_new(o, "method", json_string(method));
    json_object_set_new(o, "path", json_string(path));
    json_object_set_new(o, "query", json_string(query ? query : ""));
    json_t *h = json_object();
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
    {
        char name[128];
        size_t i = 0;
        for (; kv->key[i] && i + 1 < sizeof(name); i++)
            name[i] = (char)(kv->key[i] >= 'A' && kv->key[i] <= 'Z' ? kv->key[i] + 32 : kv->key[i]);
        name[i] = '\0';
        json_object_set_new(h, name, json_string(kv->value));
    }
    json_object_set_new(o, "headers", h);
    json_object_set_new(o, "body", json_stringn_nocheck(body, len));
    json_object_set_new(o, "ts_ms", json_integer(now_ms()));
    char *peer = NULL;
    ev_uint16_t peer_port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &peer_port);
    json_object_set_new(o, "peer_port", json_integer(peer_port));
    return o;
}

static void record_write(json_t *o)
{
    json_object_set_new(o, "status", json_integer(M.answered));
    char *line = json_dumps(o, JSON_COMPACT);
    fprintf(M.rec, "%s\n", line);
    fflush(M.rec);
    free(line);
    json_decref(o);
}

typedef struct pending {
    struct evhttp_request *req;
    int status;
    char *body;
    char retry_after[16];
    struct event *ev;
} pending;

static void send_now(pending *p)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, p->body, strlen(p->body));
    struct evkeyvalq *oh = evhttp_request_get_output_headers(p->req);
    evhttp_add_header(oh, "Content-Type", p->body[0] == '{' ? "application/json" : "text/plain");
    if (p->retry_after[0])
        evhttp_add_header(oh, "Retry-After", p->retry_after);
    evhttp_send_reply(p->req, p->status, NULL, b);
    evbuffer_free(b);
    free(p->body);
    if (p->ev)
        event_free(p->ev);
    free(p);
}

static void delayed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_now(arg);
}

static void answer(struct evhttp_request *req, int status, char *body, int retry_after,
                   int delay_ms)
{
    pending *p = calloc(1, sizeof(*p));
    M.answered = status;
    p->req = req;
    p->status = status;
    p->body = body;
    if (retry_after >= 0)
        snprintf(p->retry_after, sizeof(p->retry_after), "%d", retry_after);
    delay_ms += M.latency_ms;
    if (delay_ms <= 0) {
        send_now(p);
        return;
    }
    p->ev = evtimer_new(M.base, delayed, p);
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(p->ev, &tv);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static char *wa_error(int code, const char *msg)
{
    return fmt("{\"error\":{\"message\":\"%s\",\"type\":\"OAuthException\",\"code\":%d,"
               "\"error_data\":{\"messaging_product\":\"whatsapp\",\"details\":\"%s\"},"
               "\"fbtrace_id\":\"AbCdEf123\"}}",
               msg, code, msg);
}

static char *twilio_error(int code, int status, const char *msg)
{
    return fmt("{\"code\":%d,\"message\":\"%s\",\"more_info\":"
               "\"https://www.twilio.com/docs/errors/%d\",\"status\":%d}",
               code, msg, code, status);
}

/* Apply a fail rule; returns 1 when the request was answered (or dropped). */
static int apply_rule(struct evhttp_request *req, rule *r, int wa)
{
    if (!r)
        return 0;
    if (r->hang)
        return 1; /* accepted, never answered (the client times out) */
    if (r->connclose) {
        /* a normal answer that ends the connection (RFC 9112 9.6): requests
         * pipelined behind it are not processed */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        return 0;
    }
    if (r->close_) {
        evhttp_connection_free(evhttp_request_get_connection(req));
        return 1;
    }
    if (r->garbage) {
        answer(req, 200, strdup("<html>oops"), -1, r->delay_ms);
        return 1;
    }
    if (r->wa_code && wa) {
        int st = r->status                                                               ? r->status
                 : (r->wa_code == 130429 || r->wa_code == 131056 || r->wa_code == 80007) ? 429
                 : r->wa_code == 190                                                     ? 401
                                                                                         : 400;
        answer(req, st, wa_error(r->wa_code, "mock failure"), r->retry_after, r->delay_ms);
        return 1;
    }
    if (r->twilio_code && !wa) {
        int st = r->status ? r->status : r->twilio_code == 20429 ? 429 : 400;
        answer(req, st, twilio_error(r->twilio_code, st, "mock failure"), r->retry_after,
               r->delay_ms);
        return 1;
    }
    if (r->status) {
        char *body = wa ? wa_error(r->status == 429 ? 130429 : 131000, "mock status")
                        : twilio_error(r->status == 429 ? 20429 : 30001, r->status, "mock status");
        answer(req, r->status, body, r->retry_after, r->delay_ms);
        return 1;
    }
    if (r->delay_ms)
        return 0; /* delay only: answer normally, later */
    return 0;
}

static void handle_whatsapp(struct evhttp_request *req, const char *body, size_t len)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7) || !auth[7]) {
        answer(req, 401, wa_error(190, "Invalid OAuth access token"), -1, 0);
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    const char *to = json_string_value(json_object_get(j, "to"));
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *mp = json_string_value(json_object_get(j, "messaging_product"));
    int ok = j && to && type && mp && !strcmp(mp, "whatsapp");
    if (ok && !strcmp(type, "text"))
        ok = json_is_string(json_object_get(json_object_get(j, "text"), "body"));
    else if (ok && !strcmp(type, "template"))
        ok = json_is_string(json_object_get(json_object_get(j, "template"), "name"));
    if (!ok) {
        answer(req, 400, wa_error(100, "Invalid parameter"), -1, 0);
        json_decref(j);
        return;
    }
    M.sends++;
    rule *r = match(to);
    if (apply_rule(req, r, 1)) {
        json_decref(j);
        return;
    }
    char *resp = fmt("{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"%s\","
                     "\"wa_id\":\"%s\"}],\"messages\":[{\"id\":\"wamid.MOCK%08lu.%s\"}]}",
                     to, r && r->wa_id[0] ? r->wa_id : to, ++M.wamid, to);
    answer(req, 200, resp, -1, r ? r->delay_ms : 0);
    json_decref(j);
}

static const char *form_get(const char *body, const char *name, char *out, size_t len)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    char *copy = strdup(body);
    const char *v = NULL;
    if (evhttp_parse_query_str(copy, &q) == 0) {
        v = evhttp_find_header(&q, name);
        if (v)
            snprintf(out, len, "%s", v);
    }
    evhttp_clear_headers(&q);
    free(copy);
    return v ? out : NULL;
}

static void handle_twilio(struct evhttp_request *req, const char *sid, const char *body)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth || strncmp(auth, "Basic ", 6)) {
        answer(req, 401, twilio_error(20003, 401, "Authenticate"), -1, 0);
        return;
    }
    char to[64], from[64], text[8192];
    if (!form_get(body, "To", to, sizeof(to))) {
        answer(req, 400, twilio_error(21604, 400, "A 'To' phone number is required."), -1, 0);
        return;
    }
    if (!form_get(body, "From", from, sizeof(from)) &&
        !form_get(body, "MessagingServiceSid", from, sizeof(from))) {
        answer(req, 400, twilio_error(21603, 400, "A 'From' phone number is required."), -1, 0);
        return;
    }
    if (!form_get(body, "Body", text, sizeof(text)))
        text[0] = '\0';
    M.sends++;
    rule *r = match(to);
    if (apply_rule(req, r, 0))
        return;
    /* num_segments: a string in Twilio's Message resource */
    char segs[16];
    snprintf(segs, sizeof(segs), "%d",
             r && r->segments >= 0 ? r->segments : sms_segments(text, strlen(text), 0).segments);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:n, s:s, s:s, s:s, s:s}", "sid", "",
                          "status", "queued", "to", to, "from", from, "body", text, "error_code",
                          "error_message", "account_sid", sid, "num_segments", segs, "direction",
                          "outbound-api", "api_version", "2010-04-01");
    char smsid[40];
    snprintf(smsid, sizeof(smsid), "SM%032lx", ++M.wamid);
    json_object_set_new(o, "sid", json_string(smsid));
    char *resp = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    answer(req, 201, resp, -1, r ? r->delay_ms : 0);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(u);
    const char *query = evhttp_uri_get_query(u);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    if (!path)
        path = "/";
    if (!strcmp(path, "/_stats")) {
        answer(req, 200, fmt("{\"requests\":%lu,\"sends\":%lu}", M.seq, M.sends), -1, 0);
        free(body);
        return;
    }
    if (!strcmp(path, "/_plan") && evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        int rc = parse_plan(body);
        answer(req, rc ? 400 : 200, strdup(rc ? "{\"ok\":false}" : "{\"ok\":true}"), -1, 0);
        free(body);
        return;
    }
    json_t *rec_line = record(req, path, query, body, len);
    M.answered = 0;
    size_t pl = strlen(path);
    char sid[64];
    if (pl > 9 && !strcmp(path + pl - 9, "/messages") && path[1] == 'v') {
        handle_whatsapp(req, body, len);
    } else if (sscanf(path, "/2010-04-01/Accounts/%63[^/]/Messages.json", sid) == 1) {
        handle_twilio(req, sid, body);
    } else if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        M.sends++;
        rule *r = match(NULL);
        if (!apply_rule(req, r, 0))
            answer(req, 200, fmt("{\"id\":\"hook-%lu\"}", ++M.wamid), -1, r ? r->delay_ms : 0);
    } else {
        answer(req, 404, strdup("{\"error\":\"not found\"}"), -1, 0);
    }
    record_write(rec_line);
    free(body);
}

static void on_term(evutil_socket_t s, short w, void *arg)
{
    (void)s;
    (void)w;
    (void)arg;
    event_base_loopbreak(M.base);
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *rec = NULL, *port_file = NULL, *plan = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--record"))
            rec = argv[i + 1];
        else if (!strcmp(argv[i], "--port-file"))
            port_file = argv[i + 1];
        else if (!strcmp(argv[i], "--fail-plan"))
            plan = argv[i + 1];
        else if (!strcmp(argv[i], "--latency-ms"))
            M.latency_ms = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: mock_provider --port N --record FILE [--port-file F] "
                            "[--fail-plan SPEC] [--latency-ms N]\n");
            return 2;
        }
    }
    if (!rec || (plan && parse_plan(plan) < 0))
        return 2;
    signal(SIGPIPE, SIG_IGN);
    M.rec = fopen(rec, "a");
    M.base = event_base_new();
    struct evhttp *http = evhttp_new(M.base);
    evhttp_set_gencb(http, on_request, NULL);
    evhttp_set_max_body_size(http, 1 << 22);
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
    if (!M.rec || !bs) {
        fprintf(stderr, "mock_provider: cannot listen on 127.0.0.1:%d or open %s\n", port, rec);
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%d\n", port);
            fclose(f);
            rename(tmp, port_file);
        }
    }
    struct event *term = evsignal_new(M.base, SIGTERM, on_term, NULL);
    struct event *intr = evsignal_new(M.base, SIGINT, on_term, NULL);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_base_dispatch(M.base);
    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(M.base);
    fclose(M.rec);
    return 0;
}
