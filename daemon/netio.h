/* The byte stream under the native clients (h1.c: HTTP/1.1, smtpc.c:
 * SMTP): one connected non-blocking socket, plain or TLS through OpenSSL,
 * with an output buffer written as the socket takes it and an input buffer
 * the client parses. The clients keep what they send and read; this keeps
 * the rule both depend on: a byte counts as sent (wsent) only once it is on
 * the socket, and over TLS only once its whole record is (partial-write
 * mode: a record cut short cannot be decrypted, so the peer cannot have
 * acted on it). Nothing here blocks. */
#ifndef OMNI_NETIO_H
#define OMNI_NETIO_H

#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include "omnicast/connector.h"

typedef struct netio {
    evutil_socket_t fd;         /* -1 until connected */
    struct event *rev;          /* read: persistent, armed for the connection's life but
                                   while OpenSSL's own write waits for the socket */
    struct event *wev;          /* write: armed while the socket is full */
    event_callback_fn on_write; /* the owner's write callback, and its argument */
    void *arg;
    oc_buf wbuf; /* bytes not yet on the wire, from woff */
    size_t woff;
    long long wsent; /* bytes on the wire since the start */
    char *rbuf;      /* bytes received, not yet parsed */
    size_t rlen, rcap;
    /* TLS over fd, or NULL */
    SSL *ssl;
    int handshaking;
    int write_wants_read; /* SSL_write asked for a read (a key update) */
    int read_wants_write; /* SSL_read asked for a write (OpenSSL's own: a KeyUpdate
                             answered, an alert) the socket would not take */
    int tls_dead;         /* a fatal TLS error or the peer's close: no close_notify from us */
    size_t tls_wlen;      /* SSL_write to repeat with this length (0: none) */
    char *tin;            /* TLS bytes received, not yet taken by OpenSSL, from tin_off */
    size_t tin_len, tin_off;
    int tin_eof; /* the peer closed its side: BIO_eof, as OpenSSL's socket BIO says it */
    /* while dialing (netio_dial): the bufferevent that resolves and
     * connects, and what to do once it has */
    struct bufferevent *dial;
    struct event_base *base;
    event_callback_fn dial_read;
    void (*dialed)(void *arg, int net_error, const char *why);
    int dial_opening, dial_failed;
} netio;

/* Dial host:port, a numeric address at once, a name resolved through dns
 * (evdns: nothing blocks), then take the socket over as netio_attach does
 * (on_read, on_write, arg). dialed(arg, net_error, why) runs once the dial
 * ends: OC_NET_OK (why NULL), connected and attached (TLS not begun);
 * else OC_NET_CONNECT ("could not resolve host", "could not connect to
 * server") or OC_NET_OTHER ("out of memory"), and the caller closes the
 * connection (netio_close). Returns 0 (dialing, or
 * already connected: dialed may have run inside the call), or -1: it
 * failed inside the call, dialed did not run, and the caller closes it
 * outside this call. netio_close ends a dial still in progress. */
int netio_dial(netio *n, struct event_base *base, struct evdns_base *dns, const char *host,
               int port, event_callback_fn on_read, event_callback_fn on_write,
               void (*dialed)(void *arg, int net_error, const char *why), void *arg);

/* fd connected: TCP_NODELAY and keep-alive on it, its read event armed and
 * its write event made (on_write runs when the socket takes more, after
 * netio has done its own part: see netio_read). 0, or -1 (out of memory). */
int netio_attach(netio *n, struct event_base *base, evutil_socket_t fd, event_callback_fn on_read,
                 event_callback_fn on_write, void *arg);

/* TLS on the connected socket, towards host (verified as tlsclient.h
 * says; session: the origin's slot, see tlsc_set_peer), the handshake not
 * begun (handshaking). NULL, or why not (the connection is to be closed). */
const char *netio_tls_start(netio *n, SSL_CTX *ctx, const char *host, SSL_SESSION **session);

/* One step of the handshake, from either event: 1 done, 0 waiting for the
 * socket, -1 failed (tlsc_failed says why; nothing of the owner's was
 * sent). A step that must write to a full socket takes the read event off
 * until the socket takes more, as netio_read does. */
int netio_handshake(netio *n);

/* Send what is buffered, as far as the socket takes it (the write event is
 * armed for the rest): 0, or -1 when the connection is broken. A buffer
 * sent whole is emptied (wiped first when wipe: credentials were in it). */
int netio_send(netio *n, int wipe);

enum {
    NETIO_OK = 0, /* read what there was (maybe nothing, over TLS) */
    NETIO_AGAIN,  /* plain: nothing to read */
    NETIO_FULL,   /* rlen reached the caller's limit: nothing read */
    NETIO_EOF,    /* the peer closed: plain, or TLS with close_notify */
    NETIO_CUT,    /* TLS: closed without close_notify, a fatal alert, any TLS error */
    NETIO_RESET,  /* plain: the socket failed */
    NETIO_BROKEN, /* TLS: a write waiting for this read failed */
    NETIO_NOMEM,
};

/* Read from a readable socket into rbuf while rlen < max: plain, one recv;
 * TLS, until OpenSSL holds no more decrypted bytes (the read event is
 * level-triggered, so what the socket still holds wakes us again) and then
 * the write a key update held back. A write of OpenSSL's own inside
 * SSL_read (the answer to a KeyUpdate, an alert) that meets a full socket
 * takes the read event off (SSL_read would only ask for the write again:
 * a level-triggered read would spin) and arms the write event; when the
 * socket takes more, the read event goes back on and runs once, and
 * SSL_read sends it, whether or not the owner has anything to write. What
 * was read before an end (EOF, CUT) is in rbuf: parse it first. */
int netio_read(netio *n, size_t max);

/* Events, TLS, socket and buffers released (fd -1 after); a polite
 * close_notify first when shutdown and TLS is in good order. */
void netio_close(netio *n, int shutdown);

#endif
