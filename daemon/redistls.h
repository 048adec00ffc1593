/* TLS to Redis (rediss://) with OpenSSL, shared by the daemon (rconn.c, on
 * the event loop) and the CLI (the blocking client below): one SSL_CTX per
 * process built from the redis_tls_* settings, and per connection the
 * name that is verified and sent as SNI. hiredis stays the RESP parser
 * (its redisReader works on any bytes): Debian 12's hiredis 0.14 has no
 * TLS of its own. */
#ifndef OMNI_REDISTLS_H
#define OMNI_REDISTLS_H

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stddef.h>

typedef struct redis_tls_opts {
    const char *ca_file;     /* PEM CA certificates; NULL: the system's */
    const char *cert_file;   /* client certificate (chain) PEM, or NULL */
    const char *key_file;    /* its private key PEM, or NULL */
    const char *server_name; /* verified and sent as SNI instead of the host */
} redis_tls_opts;

/* A client context that verifies the server's certificate (TLS 1.2 or
 * newer). NULL with a reason in err (file names, OpenSSL's words; never a
 * key's content). */
SSL_CTX *redis_tls_ctx_new(const redis_tls_opts *o, char *err, size_t err_len);

/* Set up one connection: the name checked against the certificate is
 * server_name, else host; an IP address is matched against the
 * certificate's IP entries and not sent as SNI (RFC 6066), a host name is
 * both. -1 with a reason. */
int redis_tls_prepare(SSL *ssl, const char *host, const char *server_name, char *err,
                      size_t err_len);

/* Why a handshake or a read failed, in words: the verification result
 * when the certificate was refused ("certificate verify failed: ..."),
 * else OpenSSL's queued error (consumed), else fallback. */
void redis_tls_describe(const SSL *ssl, const char *fallback, char *out, size_t len);

/* A blocking Redis connection over TLS for the CLI (no event loop):
 * connect and handshake within timeout_ms, then commands as hiredis's
 * redisCommand does (NULL and redis_sync_err on a failed connection). */
typedef struct redis_sync redis_sync;
redis_sync *redis_sync_connect(const char *host, int port, SSL_CTX *ctx, const char *server_name,
                               int timeout_ms, char *err, size_t err_len);
redisReply *redis_sync_vcommand(redis_sync *c, const char *fmt, va_list ap);
redisReply *redis_sync_argv(redis_sync *c, int argc, const char **argv, const size_t *lens);
const char *redis_sync_err(const redis_sync *c);
void redis_sync_free(redis_sync *c);

#endif
