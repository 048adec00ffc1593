/* libFuzzer: the native HTTP/1.1 client's TLS path (h1.c: tls_handshake,
 * tls_read, tls_send, conn_parse's eof = 2), driven for real: h1_submit on
 * an event_base, against an in-process TLS server on a 127.0.0.1 listener.
 * The server runs OpenSSL over memory BIOs, so the input decides exactly
 * what goes on the wire:
 *
 *   byte 0   flags: bit 0 TLS 1.2 (else 1.3); bit 1 the server ends with
 *            close_notify (else a bare TCP close); bits 2-3 requests - 1;
 *            bit 4 pipelined (4 deep, else one at a time); bit 5 a TLS 1.3
 *            KeyUpdate (update_requested) before one answer, with TLS 1.2
 *            a HelloRequest (renegotiation, which the client refuses: the
 *            server then fails with a fatal alert); bit 6 one
 *            session ticket (else none); bit 7 a whole answer's records are
 *            made before any is sent (many records in one write), else
 *            records and writes interleave
 *   byte 1   the server closes after this many answer bytes (255: after
 *            all of them; else byte * length / 255)
 *   byte 2   before which answer the KeyUpdate or HelloRequest goes
 *   bytes 3-6  record sizes, cycled (0: 16384)
 *   bytes 7-10 TCP write sizes, cycled (0: everything pending)
 *   the rest   the answer bytes: one or more HTTP answers, or garbage
 *
 * The server sends answer j only once it has read request j (so a client
 * that sends one request at a time is never handed bytes no request asked
 * for), then closes. Checked: no crash, leak or UB (sanitizers); every
 * request completes exactly once; what completes as an answer has the
 * status and body a plain parse of the same bytes (h1parse, the stream
 * then the close) gives, and what that parse does not take as a whole
 * answer fails; in particular a close without close_notify never makes a
 * close-delimited answer whole. One EC P-256 key and self-signed
 * certificate per process, made in code; the client trusts it through a
 * memfd (no file on disk). Every wait is bounded in time: a hang aborts. */
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "h1.h"
#include "h1parse.h"

/* checked in every build type (assert would vanish under NDEBUG) */
#define CHECK(x)                                                                                   \
    ((x) ? (void)0                                                                                 \
         : (fprintf(stderr, "fuzz_tls_h1: check failed: %s (line %d)\n", #x, __LINE__), abort()))

#define NREQ_MAX 4
#define WAIT_NS 5000000000LL /* any wait longer than this is a hang */

/* ---- per process: the event base, the listener, the server's TLS context */

static struct event_base *base;
static SSL_CTX *sctx;
static int lfd = -1, port;
static char ca_path[64];

static void make_cert(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    CHECK(key && x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    CHECK(san && X509_add_ext(x, san, -1) == 1);
    X509_EXTENSION_free(san);
    CHECK(X509_sign(x, key, EVP_sha256()) > 0);

    sctx = SSL_CTX_new(TLS_server_method());
    CHECK(sctx && SSL_CTX_use_certificate(sctx, x) == 1 && SSL_CTX_use_PrivateKey(sctx, key) == 1);
    SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
    /* the client trusts exactly this certificate: a CA bundle in memory */
    int mfd = memfd_create("fuzz_tls_h1_ca", 0);
    CHECK(mfd >= 0);
    BIO *b = BIO_new_fd(mfd, BIO_NOCLOSE);
    CHECK(b && PEM_write_bio_X509(b, x) == 1);
    BIO_free(b);
    snprintf(ca_path, sizeof(ca_path), "/proc/self/fd/%d", mfd);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* ---- the server: one TLS connection over memory BIOs */

typedef struct srv {
    int fd;
    SSL *ssl;
    BIO *rb, *wb;
    unsigned char *out; /* ciphertext not yet sent */
    size_t outlen, outoff, outcap;
    const uint8_t *wsizes; /* TCP write sizes, cycled */
    int wi;
    int reqs, match; /* request heads read (GET, no body: ends at CRLFCRLF) */
    int eof;         /* the client closed, or sent what ends the connection */
    int dead;        /* a send failed: nothing more goes out */
    int hs_done;     /* the first handshake is done */
    int fatal;       /* the server's TLS failed (it sent a fatal alert) */
    int extra;       /* connections after the first (closed at once) */
} srv;

static srv S;

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    int c;
    while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if (S.fd < 0 && S.ssl) {
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            S.fd = c;
        } else {
            S.extra++;
            close(c); /* a second connection (a request written again): refused */
        }
    }
}

static void srv_in(void)
{
    if (S.fd < 0)
        return;
    unsigned char buf[16384];
    for (;;) {
        ssize_t n = recv(S.fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            BIO_write(S.rb, buf, (int)n);
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            S.eof = 1;
        break;
    }
    if (!S.hs_done) {
        ERR_clear_error();
        int rc = SSL_do_handshake(S.ssl);
        int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(S.ssl, rc);
        CHECK(e == SSL_ERROR_NONE || e == SSL_ERROR_WANT_READ); /* the setup works */
        if (rc != 1)
            return;
        S.hs_done = 1;
    }
    if (S.fatal)
        return;
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(S.ssl, buf, sizeof(buf));
        if (n <= 0) {
            int e = SSL_get_error(S.ssl, n);
            if (e != SSL_ERROR_WANT_READ)
                S.eof = 1; /* the client's close_notify or an alert */
            if (e == SSL_ERROR_SSL)
                S.fatal = 1; /* e.g. the client refused to renegotiate */
            ERR_clear_error();
            break;
        }
        for (int i = 0; i < n; i++) {
            static const char end[] = "\r\n\r\n";
            S.match = buf[i] == end[S.match] ? S.match + 1 : buf[i] == '\r';
            if (S.match == 4) {
                S.reqs++;
                S.match = 0;
            }
        }
    }
}

/* what OpenSSL wrote, to the pending ciphertext */
static void srv_collect(void)
{
    size_t n = BIO_ctrl_pending(S.wb);
    if (!n)
        return;
    if (S.outlen + n > S.outcap) {
        S.outcap = (S.outlen + n) * 2;
        S.out = realloc(S.out, S.outcap);
        CHECK(S.out != NULL);
    }
    int k = BIO_read(S.wb, S.out + S.outlen, (int)n);
    CHECK(k == (int)n);
    S.outlen += n;
}

/* one TCP write of the schedule's size */
static void srv_send(void)
{
    if (S.fd < 0 || S.outoff == S.outlen || S.dead)
        return;
    size_t left = S.outlen - S.outoff;
    size_t w = S.wsizes[S.wi++ % 4];
    if (w == 0 || w > left)
        w = left;
    ssize_t n = send(S.fd, S.out + S.outoff, w, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0)
        S.outoff += (size_t)n;
    else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        S.dead = 1; /* the client has gone */
    if (S.outoff == S.outlen)
        S.outoff = S.outlen = 0;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* one turn: the server reads and sends one write, the client's loop runs */
static void step(void)
{
    srv_in();
    srv_collect();
    srv_send();
    event_base_loop(base, EVLOOP_NONBLOCK);
}

static void drain(void)
{
    long long until = now_ns() + WAIT_NS;
    srv_collect();
    while (S.outlen && !S.dead && S.fd >= 0) {
        step();
        CHECK(now_ns() < until);
    }
}

/* ---- the client's side */

typedef struct result {
    int calls;
    int net_error;
    long status;
    char *body;
    size_t body_len;
} result;

static result R[NREQ_MAX];
static int ndone;

static void done_cb(void *arg, const oc_response *resp, long long latency_us)
{
    (void)latency_us;
    result *r = arg;
    CHECK(r->calls == 0); /* exactly once */
    r->calls++;
    ndone++;
    r->net_error = resp->net_error;
    r->status = resp->status;
    r->body_len = resp->body_len;
    r->body = malloc(resp->body_len + 1);
    CHECK(r->body != NULL);
    memcpy(r->body, resp->body, resp->body_len);
}

/* ---- the reference: a plain parse of the bytes the server sent, then the
 * close (with close_notify: a clean end; without: a close-delimited body
 * is not whole, anything else ends as at a clean close) */

typedef struct ref {
    int ok;
    long status;
    size_t len; /* the body's length (a copy in body) */
    char *body;
} ref;

static int reference(const char *s, size_t n, int clean, int nreq, ref *out)
{
    size_t off = 0;
    int k = 0;
    h1_parser p = {0};
    for (; k < nreq; k++) {
        h1_parser_reset(&p);
        size_t used = 0;
        int rc = h1_parse(&p, s + off, n - off, &used, 0);
        off += used;
        if (rc == H1_MORE) {
            if (!clean && p.st == H1_S_UNTIL_EOF)
                break;
            used = 0;
            rc = h1_parse(&p, s + off, n - off, &used, 1);
            off += used;
        }
        if (rc != H1_DONE)
            break;
        out[k].ok = 1;
        out[k].status = p.status;
        out[k].len = p.body.len;
        out[k].body = malloc(p.body.len + 1);
        CHECK(out[k].body != NULL);
        memcpy(out[k].body, p.body.data ? p.body.data : "", p.body.len);
        if (p.close_after) {
            k++;
            break;
        }
    }
    oc_buf_free(&p.body);
    return k;
}

/* where each whole answer ends in s (answers complete without a close) */
static int boundaries(const char *s, size_t n, size_t *ends, int max)
{
    size_t off = 0;
    int k = 0;
    h1_parser p = {0};
    while (k < max) {
        h1_parser_reset(&p);
        size_t used = 0;
        int rc = h1_parse(&p, s + off, n - off, &used, 0);
        if (rc != H1_DONE)
            break;
        off += used;
        ends[k++] = off;
        if (p.close_after)
            break;
    }
    oc_buf_free(&p.body);
    return k;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN); /* as the daemon: a write to a closed peer fails */
    make_cert();
    base = event_base_new();
    CHECK(base != NULL);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 16) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
    port = ntohs(sa.sin_port);
    struct event *ev = event_new(base, lfd, EV_READ | EV_PERSIST, accept_cb, NULL);
    CHECK(ev && event_add(ev, NULL) == 0); /* lives as long as the process */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 11 || size > 65536)
        return 0;
    int tls12 = data[0] & 1, notify = (data[0] >> 1) & 1, nreq = ((data[0] >> 2) & 3) + 1;
    int depth = data[0] & 16 ? NREQ_MAX : 1, keyupdate = data[0] & 32;
    int tickets = (data[0] >> 6) & 1, batch = (data[0] >> 7) & 1;
    const uint8_t *rsizes = data + 3;
    const char *ans = (const char *)data + 11;
    size_t alen = size - 11;
    size_t cut = data[1] == 255 ? alen : (size_t)data[1] * alen / 255;

    /* the answers the server may send: as many whole ones as requests, or
     * all there is when fewer (the last request then gets the rest) */
    size_t ends[NREQ_MAX];
    int k = boundaries(ans, alen, ends, nreq);
    size_t total = k == nreq ? ends[k - 1] : alen;
    int nseg = k == nreq ? k : k + 1;
    int ku_at = keyupdate ? data[2] % nseg : -1;
    if (cut > total)
        cut = total;

    memset(&S, 0, sizeof(S));
    S.fd = -1;
    S.wsizes = data + 7;
    S.ssl = SSL_new(sctx);
    S.rb = BIO_new(BIO_s_mem());
    S.wb = BIO_new(BIO_s_mem());
    CHECK(S.ssl && S.rb && S.wb);
    SSL_set_bio(S.ssl, S.rb, S.wb);
    SSL_set_min_proto_version(S.ssl, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_set_max_proto_version(S.ssl, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_set_num_tickets(S.ssl, (size_t)tickets);
    SSL_set_accept_state(S.ssl);
    memset(R, 0, sizeof(R));
    ndone = 0;

    h1 *h = h1_new(base, 1, 1, 0, ca_path);
    CHECK(h != NULL);
    transport_req_opts opts = {.timeout_ms = 20000, .native = 1, .pipeline = depth};
    for (int i = 0; i < nreq; i++) {
        oc_request q = {.kind = OC_REQ_HTTP, .method = "GET"};
        char url[64];
        snprintf(url, sizeof(url), "https://127.0.0.1:%d/%d", port, i);
        q.url = strdup(url);
        CHECK(q.url && h1_submit(h, &q, &opts, done_cb, &R[i]) == 0);
    }

    /* the handshake */
    long long until = now_ns() + WAIT_NS;
    while (S.fd < 0 || !S.hs_done || S.outlen) {
        step();
        CHECK(now_ns() < until);
        if (S.eof)
            break;
    }
    CHECK(S.hs_done); /* the client trusts the certificate */

    /* the answers, each once its request is in */
    size_t sent = 0;
    for (int j = 0; j < nseg && sent < cut && !S.dead && !S.fatal; j++) {
        until = now_ns() + WAIT_NS;
        while (S.reqs <= j && !S.eof && ndone < nreq) {
            step();
            CHECK(now_ns() < until);
        }
        if (S.reqs <= j)
            break; /* the client is done with this connection */
        if (j == ku_at && !tls12) {
            CHECK(SSL_key_update(S.ssl, SSL_KEY_UPDATE_REQUESTED) == 1);
            SSL_do_handshake(S.ssl);
            srv_collect();
        } else if (j == ku_at) {
            /* a HelloRequest: the client refuses (a no_renegotiation
             * alert); when the server reads that, it fails with a fatal
             * alert behind whatever it had sent */
            CHECK(SSL_renegotiate(S.ssl) == 1);
            ERR_clear_error();
            SSL_do_handshake(S.ssl);
            ERR_clear_error();
            srv_collect();
        }
        size_t end = j < k ? ends[j] : total;
        if (end > cut)
            end = cut;
        int ri = 0;
        while (sent < end) {
            size_t r = rsizes[ri++ % 4];
            if (r == 0)
                r = 16384;
            if (r > end - sent)
                r = end - sent;
            ERR_clear_error();
            if (S.fatal)
                break;
            CHECK(SSL_write(S.ssl, ans + sent, (int)r) == (int)r);
            sent += r;
            srv_collect();
            if (!batch)
                step();
        }
        drain();
    }

    /* the close */
    int clean = 0; /* close_notify went out */
    if (notify && !S.dead && !S.fatal) {
        clean = 1;
        SSL_shutdown(S.ssl);
        drain();
    }
    if (S.fd >= 0)
        shutdown(S.fd, SHUT_WR);
    until = now_ns() + WAIT_NS;
    while (ndone < nreq) {
        srv_in();
        event_base_loop(base, EVLOOP_ONCE); /* the client's sweep runs every 50 ms */
        CHECK(now_ns() < until);
    }

    /* the verdict */
    ref want[NREQ_MAX];
    memset(want, 0, sizeof(want));
    reference(ans, sent, clean, nreq, want);
    for (int i = 0; i < nreq; i++) {
        CHECK(R[i].calls == 1);
        if (want[i].ok) {
            CHECK(R[i].net_error == OC_NET_OK);
            CHECK(R[i].status == want[i].status);
            CHECK(R[i].body_len == want[i].len &&
                  memcmp(R[i].body, want[i].body, want[i].len) == 0);
        } else {
            CHECK(R[i].net_error != OC_NET_OK);
        }
        free(R[i].body);
        free(want[i].body);
    }
    CHECK(h1_inflight(h) == 0);
    h1_free(h);
    for (int i = 0; i < 8; i++)
        event_base_loop(base, EVLOOP_NONBLOCK); /* late connections: accepted and closed */
    if (S.fd >= 0)
        close(S.fd);
    SSL_free(S.ssl);
    free(S.out);
    return 0;
}
