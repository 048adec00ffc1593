/* One Redis connection owned by omnicast on the libevent base: a
 * bufferevent (plain TCP, or OpenSSL for rediss://) carrying commands
 * formatted by rconn_format (redisFormatCommandArgv's bytes) and replies parsed by
 * hiredis's redisReader, with a FIFO of reply callbacks. It keeps the
 * semantics store.c relies on from redisAsyncContext: reply callbacks get
 * NULL when the connection goes away, the object frees itself after a
 * failed connect or a disconnect, and rconn_free from inside any of its
 * callbacks is safe (the free happens when the callback returns). Used
 * where hiredis 0.14 cannot go (TLS). */
#ifndef OMNI_RCONN_H
#define OMNI_RCONN_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

typedef struct rconn rconn;

/* reply is NULL when the connection failed or was freed before an answer
 * came; it is freed after the callback returns */
typedef void (*rconn_reply_fn)(rconn *c, redisReply *reply, void *priv);
/* ok 0: the connect (or the TLS handshake) failed, rconn_errstr says why,
 * and c is freed after this returns */
typedef void (*rconn_connect_fn)(rconn *c, int ok, void *data);
/* the connection closed (clean 1: by the server, else an error) after a
 * successful connect; pending callbacks have had NULL; c is freed after
 * this returns. Not called by rconn_free. */
typedef void (*rconn_disconnect_fn)(rconn *c, int clean, void *data);

/* Starts connecting (and handshaking, with ctx: the server's certificate
 * verified against server_name, else host, which is also sent as SNI when
 * it is a name). Callbacks run from the loop, never from inside this. NULL
 * only for no memory or a name that cannot be set up (why in err). */
rconn *rconn_connect(struct event_base *base, const char *host, int port, SSL_CTX *ctx,
                     const char *server_name, rconn_connect_fn on_connect,
                     rconn_disconnect_fn on_disconnect, void *data, char *err, size_t err_len);
/* 0, or -1 (not connected, closing, or no memory: cb is not called) */
/* The RESP of a command, as redisFormatCommandArgv makes it (lens NULL:
 * strlen of each), in one malloc'd buffer (*out, free it): its length, or
 * -1 (out of memory). hiredis formats each argument's length with
 * printf-style formatting, a tenth of what the daemon spent per message. */
long rconn_format(char **out, int argc, const char **argv, const size_t *lens);

int rconn_command_argv(rconn *c, rconn_reply_fn cb, void *priv, int argc, const char **argv,
                       const size_t *lens);
void rconn_set_disconnect(rconn *c, rconn_disconnect_fn fn);
/* pending callbacks get NULL (now, or when the running callback returns) */
void rconn_free(rconn *c);
const char *rconn_errstr(const rconn *c);
redisReader *rconn_reader(rconn *c);

#endif
