/* The native HTTP/2 client's per-stream rules (daemon/h2.c), one at a
 * time against a scripted server: one connection whose TLS is replaced by
 * one end of a socketpair (h2.c's own code on netio.c's plain path), the
 * server's frames written by hand, the client's frames read back. What is
 * judged is what each request's callback reports (request_sent says
 * whether the daemon may send it again) and what the client wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../daemon/h2.c"

#define NREQ 4

typedef struct result {
    int calls;
    int net_error, sent, answered;
    long status;
    char body[64];
} result;

typedef struct fixture {
    struct event_base *base;
    h2 *h;
    h2conn *c;
    int peer;
    result res[NREQ];
    /* the client's frames, as read by the server: type and stream id */
    int ftype[256], fsid[256], fflags[256], nframes;
    unsigned char in[65536];
    size_t inlen, inoff;
    int preface_seen;
} fixture;

static void on_done(void *arg, const oc_response *resp, long long lat)
{
    (void)lat;
    result *r = arg;
    r->calls++;
    r->net_error = resp->net_error;
    r->sent = resp->request_sent;
    r->answered = resp->answered;
    r->status = resp->status;
    snprintf(r->body, sizeof(r->body), "%s", resp->body);
}

static void on_fallback(void *ctx, oc_request *req, const transport_req_opts *opts,
                        transport_done_fn done, void *arg)
{
    (void)ctx;
    (void)req;
    (void)opts;
    (void)done;
    (void)arg;
    fail_msg("no fallback on a connection made by hand");
}

static void submit(fixture *f, int i, size_t body_len, int timeout_ms)
{
    oc_request q = {0};
    q.kind = OC_REQ_HTTP;
    q.url = strdup("https://127.0.0.1:1/v21.0/1/messages");
    q.method = "POST";
    q.headers[q.n_headers++] = strdup("Content-Type: application/json");
    for (size_t k = 0; k < body_len; k++)
        oc_buf_append(&q.body, "x", 1);
    transport_req_opts opts = {.timeout_ms = timeout_ms};
    assert_int_equal(h2_submit(f->h, &q, &opts, on_done, &f->res[i]), 0);
}

/* Let the loop run a few turns; read what the client wrote. */
static void spin(fixture *f)
{
    for (int turn = 0; turn < 20; turn++) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        ssize_t k;
        while (f->inlen < sizeof(f->in) &&
               (k = read(f->peer, f->in + f->inlen, sizeof(f->in) - f->inlen)) > 0)
            f->inlen += (size_t)k;
    }
    if (!f->preface_seen && f->inlen >= 24) {
        assert_memory_equal(f->in, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
        f->inoff = 24;
        f->preface_seen = 1;
    }
    while (f->preface_seen && f->inlen - f->inoff >= 9 && f->nframes < 256) {
        const unsigned char *p = f->in + f->inoff;
        size_t len = ((size_t)p[0] << 16) | ((size_t)p[1] << 8) | p[2];
        if (f->inlen - f->inoff < 9 + len)
            break;
        f->ftype[f->nframes] = p[3];
        f->fflags[f->nframes] = p[4];
        f->fsid[f->nframes] = (int)(((uint32_t)(p[5] & 0x7f) << 24) | ((uint32_t)p[6] << 16) |
                                    ((uint32_t)p[7] << 8) | p[8]);
        f->nframes++;
        f->inoff += 9 + len;
    }
}

static int count_frames(fixture *f, int type, int sid)
{
    int n = 0;
    for (int i = 0; i < f->nframes; i++)
        n += f->ftype[i] == type && (sid < 0 || f->fsid[i] == sid);
    return n;
}

static void frame(fixture *f, int type, int flags, int sid, const void *payload, size_t len)
{
    unsigned char hd[9] = {
        (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len,
        (unsigned char)type,        (unsigned char)flags,      (unsigned char)(sid >> 24),
        (unsigned char)(sid >> 16), (unsigned char)(sid >> 8), (unsigned char)sid};
    assert_int_equal(write(f->peer, hd, 9), 9);
    if (len)
        assert_int_equal(write(f->peer, payload, len), (ssize_t)len);
}

static void settings(fixture *f, int id, uint32_t value)
{
    unsigned char p[6] = {0,
                          (unsigned char)id,
                          (unsigned char)(value >> 24),
                          (unsigned char)(value >> 16),
                          (unsigned char)(value >> 8),
                          (unsigned char)value};
    frame(f, 4, 0, 0, p, id ? 6 : 0);
}

/* HEADERS :status 200 (HPACK static index 8), then DATA ending the stream */
static void answer(fixture *f, int sid)
{
    static const unsigned char status200 = 0x88;
    frame(f, 1, 4, sid, &status200, 1);
    frame(f, 0, 1, sid, "{\"ok\":1}", 8);
}

static void rst(fixture *f, int sid, uint32_t code)
{
    unsigned char p[4] = {(unsigned char)(code >> 24), (unsigned char)(code >> 16),
                          (unsigned char)(code >> 8), (unsigned char)code};
    frame(f, 3, 0, sid, p, 4);
}

static void goaway(fixture *f, int last)
{
    unsigned char p[8] = {0, 0, 0, (unsigned char)last, 0, 0, 0, 0};
    frame(f, 7, 0, 0, p, 8);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->h = h2_new(f->base, 4, 1, 0, NULL, on_fallback, NULL);
    assert_non_null(f->h);
    f->h->tls = SSL_CTX_new(TLS_client_method()); /* h2_submit asks for one */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    f->peer = sv[1];
    h1_url u;
    assert_int_equal(h1_parse_url("https://127.0.0.1:1/v21.0/1/messages", &u), 0);
    origin *o = origin_get(f->h, &u);
    h2conn *c = calloc(1, sizeof(*c));
    c->io.fd = -1;
    c->o = o;
    c->connect_deadline_us = omni_mono_us() + 60000000LL;
    o->conns = c;
    o->nconns = 1;
    f->h->total = 1;
    f->h->max_total = 0; /* no second connection: what waits for one stays queued */
    assert_int_equal(netio_attach(&c->io, f->base, sv[0], conn_read_ev, conn_write_ev, c), 0);
    assert_int_equal(session_start(f->h, c), 0);
    f->c = c;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    h2_free(f->h);
    close(f->peer);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* what still waits: its deadline now, the sweep and the completions run */
static void expire_all(fixture *f)
{
    for (origin *o = f->h->origins; o; o = o->next) {
        for (h2req *r = o->pend; r; r = r->next)
            r->deadline_us = 1;
        for (h2conn *c = o->conns; c; c = c->next)
            for (h2req *r = c->streams; r; r = r->snext)
                r->deadline_us = 1;
    }
    sweep_cb(-1, 0, f->h);
    spin(f);
}

static void an_answer_completes_once(void **state)
{
    fixture *f = *state;
    submit(f, 0, 20, 0);
    spin(f);
    assert_int_equal(count_frames(f, 1, -1), 0); /* nothing before the server's SETTINGS */
    settings(f, 0, 0);
    spin(f);
    assert_int_equal(count_frames(f, 1, 1), 1);
    assert_int_equal(count_frames(f, 0, 1), 1);
    answer(f, 1);
    spin(f);
    assert_int_equal(f->res[0].calls, 1);
    assert_int_equal(f->res[0].net_error, OC_NET_OK);
    assert_int_equal(f->res[0].status, 200);
    assert_string_equal(f->res[0].body, "{\"ok\":1}");
    assert_int_equal(h2_requests(f->h), 1);
}

static void a_refused_stream_is_written_again_once(void **state)
{
    fixture *f = *state;
    submit(f, 0, 20, 0);
    settings(f, 0, 0);
    spin(f);
    rst(f, 1, NGHTTP2_REFUSED_STREAM);
    spin(f);
    assert_int_equal(f->res[0].calls, 0);
    assert_int_equal(count_frames(f, 1, 3), 1); /* the same request on stream 3 */
    rst(f, 3, NGHTTP2_REFUSED_STREAM);
    spin(f);
    /* written twice, refused twice: failed as never processed */
    assert_int_equal(count_frames(f, 1, 5), 0);
    assert_int_equal(f->res[0].calls, 1);
    assert_int_equal(f->res[0].net_error, OC_NET_RESET);
    assert_int_equal(f->res[0].sent, 0);
}

static void a_reset_after_the_request_is_uncertain(void **state)
{
    fixture *f = *state;
    submit(f, 0, 20, 0);
    settings(f, 0, 0);
    spin(f);
    rst(f, 1, NGHTTP2_INTERNAL_ERROR);
    spin(f);
    assert_int_equal(f->res[0].calls, 1);
    assert_int_equal(f->res[0].net_error, OC_NET_RESET);
    assert_int_equal(f->res[0].sent, 1);
    assert_int_equal(f->res[0].answered, 0);
    assert_int_equal(count_frames(f, 1, 3), 0); /* never written again */
}

static void goaway_retries_above_its_last_stream(void **state)
{
    fixture *f = *state;
    submit(f, 0, 20, 0);
    submit(f, 1, 20, 0);
    settings(f, 0, 0);
    spin(f);
    assert_int_equal(count_frames(f, 1, 3), 1);
    goaway(f, 1);
    spin(f);
    answer(f, 1); /* at or below last_stream_id: finishes normally */
    spin(f);
    assert_int_equal(f->res[0].calls, 1);
    assert_int_equal(f->res[0].net_error, OC_NET_OK);
    /* stream 3 was not processed: waiting for another connection, not
     * failed, not written on this one again */
    assert_int_equal(f->res[1].calls, 0);
    assert_int_equal(count_frames(f, 1, 5), 0);
    assert_non_null(f->h->origins->pend);
    expire_all(f);
    assert_int_equal(f->res[1].calls, 1);
    assert_int_equal(f->res[1].net_error, OC_NET_TIMEOUT);
    assert_int_equal(f->res[1].sent, 0);
}

static void a_close_after_the_request_is_uncertain(void **state)
{
    fixture *f = *state;
    submit(f, 0, 20, 0);
    settings(f, 0, 0);
    spin(f);
    shutdown(f->peer, SHUT_RDWR);
    spin(f);
    assert_int_equal(f->res[0].calls, 1);
    assert_int_equal(f->res[0].net_error, OC_NET_RESET);
    assert_int_equal(f->res[0].sent, 1);
}

static void a_close_before_end_stream_is_safe(void **state)
{
    fixture *f = *state;
    /* a window of 0: HEADERS leave, the body cannot */
    settings(f, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0);
    submit(f, 0, 100, 0);
    spin(f);
    assert_int_equal(count_frames(f, 1, 1), 1);
    assert_int_equal(count_frames(f, 0, 1), 0);
    shutdown(f->peer, SHUT_RDWR);
    spin(f);
    assert_int_equal(f->res[0].calls, 0); /* queued again, not failed */
    expire_all(f);
    assert_int_equal(f->res[0].calls, 1);
    assert_int_equal(f->res[0].sent, 0);
}

static void a_timeout_resets_the_stream_only(void **state)
{
    fixture *f = *state;
    submit(f, 0, 20, 60000);
    submit(f, 1, 20, 60000);
    settings(f, 0, 0);
    spin(f);
    f->c->streams->deadline_us = 1; /* the newest stream: 3 */
    sweep_cb(-1, 0, f->h);
    spin(f);
    assert_int_equal(f->res[1].calls, 1);
    assert_int_equal(f->res[1].net_error, OC_NET_TIMEOUT);
    assert_int_equal(f->res[1].sent, 1);
    assert_int_equal(count_frames(f, 3, 3), 1); /* RST_STREAM on stream 3 */
    answer(f, 3);                               /* late: dropped */
    answer(f, 1);
    spin(f);
    assert_int_equal(f->res[1].calls, 1);
    assert_int_equal(f->res[0].calls, 1);
    assert_int_equal(f->res[0].net_error, OC_NET_OK);
}

static void the_stream_limit_holds(void **state)
{
    fixture *f = *state;
    settings(f, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1);
    for (int i = 0; i < 3; i++)
        submit(f, i, 10, 0);
    spin(f);
    assert_int_equal(count_frames(f, 1, -1), 1);
    answer(f, 1);
    spin(f);
    assert_int_equal(count_frames(f, 1, -1), 2);
    answer(f, 3);
    spin(f);
    answer(f, 5);
    spin(f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->res[i].calls, 1);
        assert_int_equal(f->res[i].net_error, OC_NET_OK);
    }
}

/* a header name too long to send is refused, never dropped */
static void a_long_header_name_is_refused(void **state)
{
    fixture *f = *state;
    oc_request q = {0};
    q.kind = OC_REQ_HTTP;
    q.url = strdup("https://127.0.0.1:1/v21.0/1/messages");
    q.method = "POST";
    char name[80];
    memset(name, 'x', 70);
    strcpy(name + 70, ": 1");
    q.headers[q.n_headers++] = strdup(name);
    transport_req_opts opts = {0};
    assert_int_equal(h2_submit(f->h, &q, &opts, on_done, &f->res[0]), -1);
    spin(f);
    assert_int_equal(f->res[0].calls, 0);
    assert_int_equal(count_frames(f, 1, -1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(an_answer_completes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_refused_stream_is_written_again_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_reset_after_the_request_is_uncertain, setup, teardown),
        cmocka_unit_test_setup_teardown(goaway_retries_above_its_last_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(a_close_after_the_request_is_uncertain, setup, teardown),
        cmocka_unit_test_setup_teardown(a_close_before_end_stream_is_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(a_timeout_resets_the_stream_only, setup, teardown),
        cmocka_unit_test_setup_teardown(the_stream_limit_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(a_long_header_name_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
