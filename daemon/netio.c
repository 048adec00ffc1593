/* The native clients' byte stream (see netio.h). */
#include "netio.h"
#include "tlsclient.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KEEP_MAX (64 * 1024) /* output buffers grown past this are freed once sent */
#define ROOM_MIN 8192        /* free input space a read asks for */
#define ROOM_FIRST 16384
#define TIN_CAP (32 * 1024) /* TLS bytes read from the socket at once */

/* OpenSSL's own write (inside SSL_read or the handshake) meets a full
 * socket: until it takes more, OpenSSL would only ask for the write again,
 * and the level-triggered read event would spin. */
static void wait_write(netio *n)
{
    n->read_wants_write = 1;
    event_del(n->rev);
    event_add(n->wev, NULL);
}

/* The socket takes more: the read event goes back on, and OpenSSL's own
 * write that SSL_read could not finish goes first (SSL_read again, from the
 * read event: the owner parses what it reads); then the owner's callback
 * (a handshake step, or its own output). */
static void write_ev(evutil_socket_t fd, short what, void *arg)
{
    netio *n = arg;
    if (n->read_wants_write) {
        n->read_wants_write = 0;
        event_add(n->rev, NULL);
        if (!n->handshaking)
            event_active(n->rev, EV_READ, 0);
    }
    n->on_write(fd, what, n->arg); /* last: it may free n */
}

int netio_attach(netio *n, struct event_base *base, evutil_socket_t fd, event_callback_fn on_read,
                 event_callback_fn on_write, void *arg)
{
    n->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    n->on_write = on_write;
    n->arg = arg;
    n->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, arg);
    n->wev = event_new(base, fd, EV_WRITE, write_ev, n);
    return n->rev && n->wev && event_add(n->rev, NULL) == 0 ? 0 : -1;
}

static void dial_event(struct bufferevent *bev, short what, void *arg)
{
    netio *n = arg;
    if (!(what & BEV_EVENT_CONNECTED)) {
        if (n->dial_opening) {
            n->dial_failed = 1; /* netio_dial returns -1 */
            return;
        }
        int dns = bufferevent_socket_get_dns_error(bev);
        bufferevent_free(bev);
        n->dial = NULL;
        n->dialed(n->arg, OC_NET_CONNECT,
                  dns ? "could not resolve host" : "could not connect to server");
        return;
    }
    /* take the socket over from the bufferevent */
    evutil_socket_t fd = bufferevent_getfd(bev);
    bufferevent_setfd(bev, -1);
    bufferevent_free(bev);
    n->dial = NULL;
    if (netio_attach(n, n->base, fd, n->dial_read, n->on_write, n->arg) < 0) {
        n->dialed(n->arg, OC_NET_OTHER, "out of memory");
        return;
    }
    n->dialed(n->arg, OC_NET_OK, NULL);
}

int netio_dial(netio *n, struct event_base *base, struct evdns_base *dns, const char *host,
               int port, event_callback_fn on_read, event_callback_fn on_write,
               void (*dialed)(void *arg, int net_error, const char *why), void *arg)
{
    n->fd = -1;
    n->base = base;
    n->dial_read = on_read;
    n->on_write = on_write;
    n->dialed = dialed;
    n->arg = arg;
    n->dial = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!n->dial)
        return -1;
    bufferevent_setcb(n->dial, NULL, NULL, dial_event, n);
    n->dial_opening = 1;
    n->dial_failed = 0;
    if (bufferevent_socket_connect_hostname(n->dial, dns, AF_UNSPEC, host, port) < 0)
        n->dial_failed = 1;
    n->dial_opening = 0;
    return n->dial_failed ? -1 : 0;
}

/* ---- TLS's read side: OpenSSL takes the records from n->tin, which one
 * recv of up to TIN_CAP bytes fills once OpenSSL has taken all of it.
 * OpenSSL's own read-ahead moved what followed a record to the front of
 * its buffer each time it took one (ssl3_read_n): with a burst of small
 * HTTP/2 answers queued, ~6 KB moved per record, 8% of the daemon's
 * instructions on that path (callgrind). Here each byte is copied once.
 * Writes go through OpenSSL's socket BIO, as before. */

static int tin_read(BIO *b, char *out, int len)
{
    netio *n = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (n->tin_off == n->tin_len) {
        if (!n->tin && !(n->tin = malloc(TIN_CAP))) {
            errno = ENOMEM;
            return -1;
        }
        ssize_t k = recv(n->fd, n->tin, TIN_CAP, 0);
        if (k == 0) {
            n->tin_eof = 1;
            return 0;
        }
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                BIO_set_retry_read(b);
            return -1;
        }
        n->tin_off = 0;
        n->tin_len = (size_t)k;
    }
    size_t k = n->tin_len - n->tin_off;
    if (k > (size_t)len)
        k = (size_t)len;
    memcpy(out, n->tin + n->tin_off, k);
    n->tin_off += k;
    return (int)k;
}

static long tin_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    const netio *n = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return n && n->tin_eof;
    case BIO_CTRL_PENDING:
        return n ? (long)(n->tin_len - n->tin_off) : 0;
    default:
        return 0;
    }
}

static int tin_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* the read BIO of n's TLS connection, or NULL (out of memory) */
static BIO *tin_bio(netio *n)
{
    static BIO_METHOD *m; /* made once, kept for the process's life */
    if (!m) {
        BIO_METHOD *k = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "netio tls in");
        if (!k || !BIO_meth_set_read(k, tin_read) || !BIO_meth_set_ctrl(k, tin_ctrl) ||
            !BIO_meth_set_create(k, tin_create)) {
            BIO_meth_free(k);
            return NULL;
        }
        m = k;
    }
    BIO *b = BIO_new(m);
    if (b)
        BIO_set_data(b, n);
    return b;
}

/* bytes received that OpenSSL has not taken yet: the socket will not say */
static int tin_pending(const netio *n)
{
    return n->tin_off < n->tin_len || SSL_has_pending(n->ssl);
}

const char *netio_tls_start(netio *n, SSL_CTX *ctx, const char *host, SSL_SESSION **session)
{
    n->ssl = ctx ? SSL_new(ctx) : NULL;
    BIO *rb = n->ssl ? tin_bio(n) : NULL;
    BIO *wb = rb ? BIO_new_socket(n->fd, BIO_NOCLOSE) : NULL;
    if (!wb) {
        BIO_free(rb);
        n->tls_dead = 1;
        ERR_clear_error();
        return ctx ? "TLS: out of memory" : "TLS: the CA bundle could not be loaded";
    }
    SSL_set_bio(n->ssl, rb, wb); /* the SSL owns both now */
    SSL_set_read_ahead(n->ssl, 0);
    if (tlsc_set_peer(n->ssl, host, session) < 0) {
        n->tls_dead = 1;
        return "TLS: bad host name";
    }
    SSL_set_connect_state(n->ssl);
    n->handshaking = 1;
    return NULL;
}

int netio_handshake(netio *n)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(n->ssl);
    if (rc == 1) {
        n->handshaking = 0;
        return 1;
    }
    int e = SSL_get_error(n->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return 0; /* the read event is on */
    if (e == SSL_ERROR_WANT_WRITE) {
        wait_write(n);
        return 0;
    }
    n->tls_dead = 1; /* the error queue is left for tlsc_failed */
    return -1;
}

/* TLS: what is buffered through SSL_write. A write OpenSSL could not
 * finish is repeated with the same length. */
static int tls_send(netio *n)
{
    while (n->woff < n->wbuf.len) {
        size_t left = n->wbuf.len - n->woff;
        size_t len = n->tls_wlen ? n->tls_wlen : (left > INT_MAX ? INT_MAX : left);
        ERR_clear_error();
        int k = SSL_write(n->ssl, n->wbuf.data + n->woff, (int)len);
        if (k > 0) {
            n->tls_wlen = 0;
            n->woff += (size_t)k;
            n->wsent += k;
            continue;
        }
        int e = SSL_get_error(n->ssl, k);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            n->tls_wlen = len;
            if (e == SSL_ERROR_WANT_WRITE)
                event_add(n->wev, NULL);
            else
                n->write_wants_read = 1; /* the read event goes on */
            return 0;
        }
        ERR_clear_error();
        n->tls_dead = 1;
        return -1;
    }
    return 0;
}

int netio_send(netio *n, int wipe)
{
    if (n->ssl) {
        if (n->handshaking)
            return 0; /* once the handshake is done */
        if (tls_send(n) < 0)
            return -1;
        if (n->woff < n->wbuf.len)
            return 0; /* OpenSSL waits for the socket: never past it in clear */
    }
    while (n->woff < n->wbuf.len) {
        ssize_t k =
            send(n->fd, n->wbuf.data + n->woff, n->wbuf.len - n->woff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            n->woff += (size_t)k;
            n->wsent += k;
        } else if (k < 0 && errno == EINTR) {
            continue;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(n->wev, NULL);
            return 0;
        } else {
            return -1;
        }
    }
    if (wipe && n->wbuf.data)
        OPENSSL_cleanse(n->wbuf.data, n->wbuf.len);
    if (n->wbuf.cap > KEEP_MAX)
        oc_buf_free(&n->wbuf); /* one big message does not pin its buffer */
    oc_buf_reset(&n->wbuf);
    n->woff = 0;
    return 0;
}

static int grow(netio *n)
{
    if (n->rcap - n->rlen >= ROOM_MIN)
        return 0;
    size_t cap = n->rcap ? n->rcap * 2 : ROOM_FIRST;
    char *b = realloc(n->rbuf, cap);
    if (!b)
        return -1;
    n->rbuf = b;
    n->rcap = cap;
    return 0;
}

static int tls_read(netio *n, size_t max)
{
    int rc = NETIO_OK;
    for (;;) {
        if (n->rlen >= max) {
            rc = NETIO_FULL;
            break;
        }
        if (grow(n) < 0)
            return NETIO_NOMEM;
        size_t room = n->rcap - n->rlen;
        ERR_clear_error();
        int k = SSL_read(n->ssl, n->rbuf + n->rlen, room > INT_MAX ? INT_MAX : (int)room);
        if (k > 0) {
            n->rlen += (size_t)k;
            if (tin_pending(n))
                continue; /* records received already: the socket will not say */
            break;
        }
        int e = SSL_get_error(n->ssl, k);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) {
            /* OpenSSL's own write (a KeyUpdate's answer, an alert) meets a
             * full socket: until it takes more, SSL_read would only say
             * this again, so the read event waits for the write event */
            wait_write(n);
            break;
        }
        n->tls_dead = 1;
        ERR_clear_error();
        /* close_notify is the end; a close without it, a fatal alert or
         * any other TLS error ends the stream too, not cleanly (RFC 8446
         * 6.1): what was decrypted before it is the caller's to parse */
        return e == SSL_ERROR_ZERO_RETURN ? NETIO_EOF : NETIO_CUT;
    }
    if (n->write_wants_read) {
        n->write_wants_read = 0;
        if (netio_send(n, 0) < 0) {
            n->tls_dead = 1;
            return NETIO_BROKEN;
        }
    }
    return rc;
}

int netio_read(netio *n, size_t max)
{
    if (n->ssl)
        return tls_read(n, max);
    if (n->rlen >= max)
        return NETIO_FULL;
    if (grow(n) < 0)
        return NETIO_NOMEM;
    ssize_t k = recv(n->fd, n->rbuf + n->rlen, n->rcap - n->rlen, 0);
    if (k > 0) {
        n->rlen += (size_t)k;
        return NETIO_OK;
    }
    if (k == 0)
        return NETIO_EOF;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? NETIO_AGAIN : NETIO_RESET;
}

void netio_close(netio *n, int shutdown)
{
    if (n->dial)
        bufferevent_free(n->dial); /* closes the socket it made */
    n->dial = NULL;
    if (n->rev)
        event_free(n->rev);
    if (n->wev)
        event_free(n->wev);
    n->rev = n->wev = NULL;
    if (n->ssl) {
        /* one non-blocking attempt; SIGPIPE is ignored by the daemon */
        if (shutdown && !n->handshaking && !n->tls_dead)
            SSL_shutdown(n->ssl);
        SSL_free(n->ssl);
        n->ssl = NULL;
    }
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
    oc_buf_free(&n->wbuf);
    free(n->rbuf);
    free(n->tin);
    n->tin = NULL;
    n->tin_len = n->tin_off = 0;
    n->rbuf = NULL;
    n->rlen = n->rcap = 0;
}
