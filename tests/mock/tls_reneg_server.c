/* A small HTTP/1.1-over-TLS server for test_tls_reneg (127.0.0.1 only):
 * what Python's ssl cannot do, a server that asks for renegotiation (a TLS
 * 1.2 HelloRequest, SSL_renegotiate) or updates its keys (a TLS 1.3
 * KeyUpdate, SSL_key_update) around its answer. What it does is chosen by
 * the request's path (its last segment):
 *
 *   .../plain       answer 200 (Content-Length, keep-alive)
 *   .../reneg-before  HelloRequest, then the answer (`Connection: close`),
 *                   without waiting for the client's reply to it; then
 *                   read until the client closes (to note its alert)
 *   .../reneg-mid   the same with the HelloRequest inside the answer
 *   .../reneg-wait  HelloRequest, then wait for the renegotiation (the
 *                   client's ClientHello) before answering: a client that
 *                   refuses (a no_renegotiation alert) gets no answer, the
 *                   handshake fails and the connection ends
 *   .../keyupdate   KeyUpdate (update_requested: the client must update
 *                   its keys too), half the answer, another KeyUpdate, the
 *                   rest
 *   .../keyupdate-stall  KeyUpdates (update_requested) without reading,
 *                   until the client takes no more for a second (its
 *                   answers fill its socket: --rcvbuf 4096 --mss 536 keep
 *                   both sides' buffers small), 4 s more without reading,
 *                   then read until the client is quiet for 2 s, log
 *                   "stall keyupdates=N client_keyupdates=K" (K: the
 *                   client's read by then) and answer
 *
 * Usage: tls_reneg_server --cert PEM --key PEM --tls 1.2|1.3 --port-file F
 * --log F [--rcvbuf BYTES] [--sndbuf BYTES] [--mss BYTES]. Each request appends "req PATH" to the
 * log as it is read, each connection "conn requests=N client_keyupdates=K alert=DESC" as it ends
 * (K: KeyUpdate messages received from the client; alert: the last alert
 * received, "none"). One process per connection (fork); every socket has a
 * 30 s timeout. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <unistd.h>

static const char *logpath;
static int client_keyupdates;
static char last_alert[64] = "none";

static void logmsg(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    FILE *f = fopen(logpath, "a");
    if (!f)
        return;
    fputs(line, f); /* one write per line (a small buffer): lines do not mix */
    fclose(f);
}

/* count the client's KeyUpdate messages and note the alerts it sends */
static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    (void)arg;
    const unsigned char *b = buf;
    if (write_p)
        return;
    if (content_type == SSL3_RT_HANDSHAKE && len >= 1 && b[0] == SSL3_MT_KEY_UPDATE)
        client_keyupdates++;
    if (content_type == SSL3_RT_ALERT && len >= 2)
        snprintf(last_alert, sizeof(last_alert), "%s", SSL_alert_desc_string_long(b[1]));
}

/* read one request (head and Content-Length body) into path; 0 at the end */
static int read_request(SSL *s, char *buf, size_t cap, size_t *have, char *path, size_t pcap)
{
    for (;;) {
        buf[*have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            size_t head = (size_t)(end - buf) + 4, body = 0;
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl && cl < end)
                body = strtoul(cl + 17, NULL, 10);
            if (head + body > cap - 1)
                return 0;
            if (*have >= head + body) {
                const char *sp = strchr(buf, ' ');
                size_t n = sp ? strcspn(sp + 1, " ") : 0;
                if (n >= pcap)
                    n = pcap - 1;
                memcpy(path, sp ? sp + 1 : "", n);
                path[n] = '\0';
                memmove(buf, buf + head + body, *have - head - body);
                *have -= head + body;
                return 1;
            }
        }
        if (*have >= cap - 1)
            return 0;
        int n = SSL_read(s, buf + *have, (int)(cap - 1 - *have));
        if (n <= 0)
            return 0;
        *have += (size_t)n;
    }
}

static int write_all(SSL *s, const char *p, size_t n)
{
    while (n) {
        int k = SSL_write(s, p, (int)n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int hello_request(SSL *s)
{
    /* TLS 1.2: SSL_renegotiate marks it, SSL_do_handshake sends the
     * HelloRequest and returns (a server does not wait for the answer) */
    if (SSL_renegotiate(s) != 1)
        return -1;
    return SSL_do_handshake(s) == 1 ? 0 : -1;
}

static int key_update(SSL *s)
{
    if (SSL_key_update(s, SSL_KEY_UPDATE_REQUESTED) != 1)
        return -1;
    return SSL_do_handshake(s) == 1 ? 0 : -1;
}

#define STALL_MAX 200000

/* KeyUpdates the client must answer while nothing of its answers is read,
 * until the client has taken none for a second (its socket is full of its
 * answers and it reads no more; OpenSSL answers one KeyUpdate as it reads
 * the next, so it is one behind); then 3 s more without reading; then read
 * until the client is quiet for 2 s. A client that arms its write event for OpenSSL's
 * own write sends every answer as soon as the socket takes it, and does
 * not read (it cannot: OpenSSL would only ask for the write again); one
 * that keeps polling a readable socket spins meanwhile. */
static int keyupdate_stall(SSL *s, int fd)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int sent = 0, rc = 0;
    while (sent < STALL_MAX) {
        /* a KeyUpdate only while the socket has room: one left half
         * written would stop this side reading too (OpenSSL finishes a
         * write before it reads), and neither side would read again */
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 1000) <= 0)
            break; /* the client has taken nothing for a second */
        if (SSL_key_update(s, SSL_KEY_UPDATE_REQUESTED) != 1) {
            rc = -1;
            break;
        }
        int k;
        while ((k = SSL_do_handshake(s)) != 1 && SSL_get_error(s, k) == SSL_ERROR_WANT_WRITE &&
               poll(&p, 1, 10000) == 1)
            ; /* the socket said it had room, but not enough: finish this one */
        if (k != 1) {
            rc = -1;
            break;
        }
        sent++;
    }
    logmsg("flood keyupdates=%d\n", sent);
    sleep(4);
    /* now take what the client sends as fast as it comes: a 4 KiB window
     * reopened a little at a time waits on the client's zero-window probes,
     * seconds apart once they back off */
    int big = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    for (; rc == 0;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (!SSL_has_pending(s) && poll(&p, 1, 2000) <= 0)
            break; /* quiet for 2 s */
        char b[4096];
        int k = SSL_read(s, b, sizeof(b));
        int e = k > 0 ? SSL_ERROR_SSL : SSL_get_error(s, k);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            rc = -1; /* no request was due: the client has one in flight */
    }
    fcntl(fd, F_SETFL, fl);
    logmsg("stall keyupdates=%d client_keyupdates=%d\n", sent, client_keyupdates);
    return rc;
}

static void serve(SSL_CTX *ctx, int fd)
{
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    SSL *s = SSL_new(ctx);
    if (!s || SSL_set_fd(s, fd) != 1 || SSL_accept(s) != 1) {
        logmsg("conn handshake failed\n");
        return;
    }
    static char buf[1 << 20];
    size_t have = 0;
    int n = 0;
    char path[256];
    static const char body[] = "{\"ok\":true,\"padding\":\"0123456789abcdef0123456789abcdef\"}";
    char answer[512], closing[512];
    int alen = snprintf(answer, sizeof(answer),
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n%s",
                        sizeof(body) - 1, body);
    int clen = snprintf(closing, sizeof(closing),
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                        sizeof(body) - 1, body);
    int half = alen / 2, chalf = clen / 2;
    while (read_request(s, buf, sizeof(buf), &have, path, sizeof(path))) {
        n++;
        logmsg("req %s\n", path);
        const char *mode = strrchr(path, '/');
        mode = mode ? mode + 1 : path;
        int rc = 0;
        if (strcmp(mode, "reneg-before") == 0 || strcmp(mode, "reneg-mid") == 0) {
            /* the answer says close: the client's refusal (an alert) ends
             * the connection for an OpenSSL server when it reads it, and
             * a request written meanwhile would be lost */
            int mid = mode[6] == 'm';
            if (mid ? write_all(s, closing, (size_t)chalf) == 0 && hello_request(s) == 0
                    : hello_request(s) == 0)
                write_all(s, closing + (mid ? chalf : 0), (size_t)(mid ? clen - chalf : clen));
            char b;
            SSL_read(s, &b, 1); /* until the client closes: its alert is noted */
            rc = 1;
        } else if (strcmp(mode, "reneg-wait") == 0) {
            /* read until the renegotiation's handshake has run: a client
             * that refuses makes this fail */
            rc = hello_request(s) < 0;
            if (!rc) {
                char b;
                int k = SSL_peek(s, &b, 1); /* processes the client's reply */
                rc = k <= 0 || SSL_renegotiate_pending(s);
            }
            if (!rc)
                rc = write_all(s, answer, (size_t)alen) < 0;
        } else if (strcmp(mode, "keyupdate-stall") == 0) {
            rc = keyupdate_stall(s, fd) < 0 || write_all(s, answer, (size_t)alen) < 0;
        } else if (strcmp(mode, "keyupdate") == 0) {
            rc = key_update(s) < 0 || write_all(s, answer, (size_t)half) < 0 || key_update(s) < 0 ||
                 write_all(s, answer + half, (size_t)(alen - half)) < 0;
        } else {
            rc = write_all(s, answer, (size_t)alen) < 0;
        }
        if (rc)
            break;
    }
    /* the client's last messages (its KeyUpdate, an alert) are in by now */
    logmsg("conn requests=%d client_keyupdates=%d alert=%s\n", n, client_keyupdates, last_alert);
    ERR_clear_error();
    if (SSL_get_shutdown(s) == 0)
        SSL_shutdown(s);
    SSL_free(s);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *portfile = NULL, *tls = "1.2";
    int rcvbuf = 0, sndbuf = 0, mss = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--cert"))
            cert = argv[i + 1];
        else if (!strcmp(argv[i], "--key"))
            key = argv[i + 1];
        else if (!strcmp(argv[i], "--tls"))
            tls = argv[i + 1];
        else if (!strcmp(argv[i], "--port-file"))
            portfile = argv[i + 1];
        else if (!strcmp(argv[i], "--log"))
            logpath = argv[i + 1];
        else if (!strcmp(argv[i], "--rcvbuf"))
            rcvbuf = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--sndbuf"))
            sndbuf = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mss"))
            mss = atoi(argv[i + 1]);
    }
    if (!cert || !key || !portfile || !logpath) {
        fprintf(stderr, "usage: %s --cert PEM --key PEM --tls 1.2|1.3 --port-file F --log F\n",
                argv[0]);
        return 2;
    }
    signal(SIGCHLD, SIG_IGN); /* children reaped by the kernel */
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int v = strcmp(tls, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "tls_reneg_server: the certificate or key would not load\n");
        return 1;
    }
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    /* the server may renegotiate: OpenSSL allows it to ask by default (the
     * client refusing is what is tested) */
    SSL_CTX_set_msg_callback(ctx, on_msg);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (rcvbuf > 0) /* before listen: accepted sockets inherit it, window and all */
        setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (sndbuf > 0)
        setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    /* a small MSS announced to the client keeps its send buffer small too
     * (Linux sizes it from the MSS when the connection is set up) */
    if (mss > 0)
        setsockopt(lfd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
        perror("tls_reneg_server: listen");
        return 1;
    }
    FILE *pf = fopen(portfile, "w");
    if (!pf)
        return 1;
    fprintf(pf, "%d", ntohs(sa.sin_port));
    fclose(pf);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            serve(ctx, fd);
            close(fd);
            _exit(0);
        }
        close(fd);
    }
}
