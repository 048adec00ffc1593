/* libFuzzer: the native HTTP/2 client (daemon/h2.c) fed a server's bytes.
 * One connection, its TLS replaced by one end of a socketpair (h2.c's own
 * code on netio.c's plain path), a valid empty SETTINGS first so that it
 * takes requests, then the input as the server's frames, then the close.
 * Whatever the bytes, every request completes exactly once (by an answer,
 * a reset, the close, or the timeout for those written again), an answer
 * is only ever reported for a request that was sent, nothing leaks and
 * nothing reads out of bounds (ASan). The first input byte says how many
 * requests (1-8) and which carry a body. */
#include <assert.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../daemon/h2.c"

#define NREQ_MAX 8

static int calls[NREQ_MAX];

static void on_done(void *arg, const oc_response *resp, long long lat)
{
    (void)lat;
    int *n = arg;
    (*n)++;
    if (resp->net_error == OC_NET_OK)
        assert(resp->answered && resp->request_sent && resp->status >= 200 && resp->status <= 999);
    assert(resp->body && (resp->net_error == OC_NET_OK || resp->body_len == 0));
}

static void on_fallback(void *ctx, oc_request *req, const transport_req_opts *opts,
                        transport_done_fn done, void *arg)
{
    (void)ctx;
    (void)req;
    (void)opts;
    (void)done;
    (void)arg;
    assert(!"no fallback on a connection made by hand");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    int nreq = 1 + (data[0] & 7);
    struct event_base *base = event_base_new();
    h2 *h = h2_new(base, 4, 1, 0, NULL, on_fallback, NULL);
    assert(h);
    /* a bare context: h2_submit asks for one, and loading the system's CA
     * store every run would be most of the time */
    h->tls = SSL_CTX_new(TLS_client_method());
    /* the connection, made as conn_event_cb and tls_handshake would */
    int sv[2];
    assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    h1_url u;
    assert(h1_parse_url("https://127.0.0.1:1/v1/messages", &u) == 0);
    origin *o = origin_get(h, &u);
    h2conn *c = calloc(1, sizeof(*c));
    c->io.fd = -1;
    c->o = o;
    c->connect_deadline_us = omni_mono_us() + 60000000LL;
    o->conns = c;
    o->nconns = 1;
    h->total = 1;
    assert(netio_attach(&c->io, base, sv[0], conn_read_ev, conn_write_ev, c) == 0);
    assert(session_start(h, c) == 0);
    /* no second connection: a request written again waits for its timeout */
    h->max_total = 0;
    memset(calls, 0, sizeof(calls));
    for (int i = 0; i < nreq; i++) {
        oc_request q = {0};
        q.kind = OC_REQ_HTTP;
        q.url = strdup("https://127.0.0.1:1/v1/messages");
        q.method = "POST";
        q.headers[q.n_headers++] = strdup("Content-Type: application/json");
        if (data[0] & (8 << (i % 4)))
            oc_buf_append(&q.body, "{\"to\":\"+15550000001\"}", 21);
        transport_req_opts opts = {.timeout_ms = 60000};
        assert(h2_submit(h, &q, &opts, on_done, &calls[i]) == 0);
    }
    /* the server: an empty SETTINGS, then the input, then the end */
    static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    assert(write(sv[1], settings, sizeof(settings)) == (ssize_t)sizeof(settings));
    size_t off = 1;
    char sink[65536];
    for (int turn = 0; turn < 200; turn++) {
        if (off < size) {
            ssize_t k = write(sv[1], data + off, size - off);
            if (k > 0)
                off += (size_t)k;
        } else if (off == size) {
            shutdown(sv[1], SHUT_WR);
            off++;
        }
        while (read(sv[1], sink, sizeof(sink)) > 0)
            ;
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (h->inflight == 0)
            break;
    }
    if (off <= size)
        shutdown(sv[1], SHUT_WR);
    for (int turn = 0; turn < 50 && h->inflight; turn++) {
        while (read(sv[1], sink, sizeof(sink)) > 0)
            ;
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    /* what is still waiting (written again, no connection to go to) or on
     * a stream the input never ended: its deadline now */
    for (origin *oo = h->origins; oo; oo = oo->next) {
        for (h2req *r = oo->pend; r; r = r->next)
            r->deadline_us = 1;
        for (h2conn *cc = oo->conns; cc; cc = cc->next)
            for (h2req *r = cc->streams; r; r = r->snext)
                r->deadline_us = 1;
    }
    sweep_cb(-1, 0, h);
    later_cb(-1, 0, h);
    assert(h->inflight == 0);
    for (int i = 0; i < nreq; i++)
        assert(calls[i] == 1);
    h2_free(h);
    close(sv[1]);
    event_base_free(base);
    return 0;
}
