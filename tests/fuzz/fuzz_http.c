/* libFuzzer: the HTTP server's request handling. The first byte picks:
 *  - even: the input is a header block ("Name: value" lines) for
 *    http_framing_check, whose verdict is checked against a second,
 *    independent reading of RFC 9112 §6.3;
 *  - odd: the rest is a raw byte stream written to an in-process evhttp
 *    (the daemon's server library) over a loopback connection; the handler
 *    does what on_request does with a request before its route (framing
 *    check, URI and query parsing, the id check of the route's path
 *    segment, the uncertain-page query) and answers. Every request must end
 *    in an answer or a close, never a crash, a leak or a hang. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_framing.h"
#include "job.h"
#include "uncertain.h"

/* checked in every build type (assert would vanish under NDEBUG) */
#define CHECK(x) ((x) ? (void)0 : abort())

/* ---- mode 1: the framing verdict against a plain second reading */

static int all_digits(const char *v)
{
    if (!*v || strlen(v) > 18)
        return 0;
    for (; *v; v++)
        if (*v < '0' || *v > '9')
            return 0;
    return 1;
}

static int reference(const struct evkeyvalq *q)
{
    int te = 0, cl = 0;
    long long len = -1;
    for (const struct evkeyval *kv = q->tqh_first; kv; kv = kv->next.tqe_next) {
        if (!strcasecmp(kv->key, "Transfer-Encoding")) {
            char t[16];
            const char *v = kv->value;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = strlen(v);
            while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            if (te++ || n != 7)
                return -1;
            memcpy(t, v, 7);
            t[7] = '\0';
            if (strcasecmp(t, "chunked"))
                return -1;
        } else if (!strcasecmp(kv->key, "Content-Length")) {
            if (!all_digits(kv->value))
                return -1;
            long long l = strtoll(kv->value, NULL, 10);
            if (cl++ && l != len)
                return -1;
            len = l;
        }
    }
    return te && cl ? -1 : 0;
}

static void headers_mode(const char *d, size_t n)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    char *s = malloc(n + 1);
    memcpy(s, d, n);
    s[n] = '\0';
    for (char *line = s, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        evhttp_add_header(&q, line, v); /* refuses CR in a value: fine */
    }
    const char *why = NULL;
    int rc = http_framing_check(&q, &why);
    CHECK(rc == reference(&q));
    CHECK((rc < 0) == (why != NULL));
    evhttp_clear_headers(&q);
    free(s);
}

/* ---- mode 2: a raw stream through evhttp */

static struct event_base *base;
static struct evhttp *http;
static int port;

static void handler(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *why = NULL;
    struct evbuffer *b = evbuffer_new();
    int code = 200;
    if (http_framing_check(evhttp_request_get_input_headers(req), &why) < 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        code = 400;
    } else {
        const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
        const char *path = u ? evhttp_uri_get_path(u) : NULL;
        if (!path || strstr(path, "..") || strstr(path, "//") || strchr(path, '%')) {
            code = 400;
        } else {
            const char *slash = strchr(path + (*path == '/'), '/');
            const char *seg = slash ? slash + 1 : path;
            const char *end = strchr(seg, '/');
            size_t sn = end ? (size_t)(end - seg) : strlen(seg);
            if (!job_valid_id(seg, sn))
                code = 404;
            struct evkeyvalq q;
            TAILQ_INIT(&q);
            const char *qs = evhttp_uri_get_query(u);
            if (qs && evhttp_parse_query_str(qs, &q) == 0) {
                char cur[24];
                int want = 0;
                const char *err = NULL;
                if (uncertain_query(evhttp_find_header(&q, "cursor"),
                                    evhttp_find_header(&q, "count"), cur, sizeof(cur), &want,
                                    &err) == 0)
                    CHECK(want > 0 && memchr(cur, '\0', sizeof(cur)));
            }
            evhttp_clear_headers(&q);
        }
    }
    evbuffer_add(b, "{}", 2);
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

static void setup(void)
{
    base = event_base_new();
    http = evhttp_new(base);
    evhttp_set_max_body_size(http, 4096);
    evhttp_set_max_headers_size(http, 4096);
    evhttp_set_timeout(http, 1);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(http, handler, NULL);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    CHECK(bs != NULL);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
    port = ntohs(sa.sin_port);
}

static void stream_mode(const char *d, size_t n)
{
    if (!base)
        setup();
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(c);
        return;
    }
    if (n > 16384)
        n = 16384;
    size_t off = 0;
    char sink[4096];
    int closed = 0;
    /* write, let the server run, read its answers, until it closes or a
     * bounded number of rounds passed */
    for (int round = 0; round < 2000 && !closed; round++) {
        if (off < n) {
            ssize_t w = send(c, d + off, n - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            if (off == n)
                shutdown(c, SHUT_WR);
        } else if (n == 0 && round == 0) {
            shutdown(c, SHUT_WR);
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t r;
        while ((r = recv(c, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
            ;
        if (r == 0)
            closed = 1;
        else if (r < 0 && round > 50)
            usleep(100);
    }
    close(c);
    /* let the server see the close and free the connection */
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        stream_mode((const char *)data + 1, size - 1);
    else
        headers_mode((const char *)data + 1, size - 1);
    return 0;
}
