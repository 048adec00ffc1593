/* TLS to Redis: the client context, per-connection name checks and the
 * CLI's blocking client (see redistls.h). */
#include "redistls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void ossl_reason(char *out, size_t len, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(out, len, "%s%s%s: %s", what, file ? " " : "", file ? file : "", buf);
}

SSL_CTX *redis_tls_ctx_new(const redis_tls_opts *o, char *err, size_t err_len)
{
    ERR_clear_error();
    if (!o->cert_file != !o->key_file) {
        snprintf(err, err_len, "redis_tls_cert_file and redis_tls_key_file go together");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ossl_reason(err, err_len, "TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
            ossl_reason(err, err_len, "redis_tls_ca_file", o->ca_file);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ossl_reason(err, err_len, "the system's CA certificates", NULL);
        goto fail;
    }
    if (o->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
            ossl_reason(err, err_len, "redis_tls_cert_file", o->cert_file);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
            ossl_reason(err, err_len, "redis_tls_key_file", o->key_file);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ossl_reason(err, err_len, "redis_tls_key_file does not match redis_tls_cert_file",
                        NULL);
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int redis_tls_prepare(SSL *ssl, const char *host, const char *server_name, char *err,
                      size_t err_len)
{
    const char *name = server_name && *server_name ? server_name : host;
    unsigned char ip[16];
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1) {
            snprintf(err, err_len, "cannot verify against the address %s", name);
            return -1;
        }
        return 0;
    }
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1 || SSL_set_tlsext_host_name(ssl, name) != 1) {
        snprintf(err, err_len, "cannot verify against the name %.200s", name);
        return -1;
    }
    return 0;
}

void redis_tls_describe(const SSL *ssl, const char *fallback, char *out, size_t len)
{
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (v != X509_V_OK) {
        snprintf(out, len, "certificate verify failed: %s", X509_verify_cert_error_string(v));
    } else if (e) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(out, len, "TLS: %s", buf);
    } else if (errno && errno != EINTR) { /* the callers clear errno first */
        snprintf(out, len, "%s",
                 errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
    } else {
        snprintf(out, len, "%s", fallback ? fallback : "TLS error");
    }
}

/* ---- the CLI's blocking client */

struct redis_sync {
    int fd;
    SSL *ssl;
    redisReader *reader;
    char errstr[300];
};

static int connect_timeout(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS)
            goto fail;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, timeout_ms);
        if (n == 0)
            errno = ETIMEDOUT;
        if (n <= 0)
            goto fail;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            errno = soerr;
            goto fail;
        }
    }
    fcntl(fd, F_SETFL, fl);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
fail : {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

redis_sync *redis_sync_connect(const char *host, int port, SSL_CTX *ctx, const char *server_name,
                               int timeout_ms, char *err, size_t err_len)
{
    redis_sync *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    c->fd = -1;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g) {
        snprintf(err, err_len, "%s", gai_strerror(g));
        goto fail;
    }
    for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next)
        c->fd = connect_timeout(ai, timeout_ms);
    freeaddrinfo(res);
    if (c->fd < 0) {
        snprintf(err, err_len, "%s", strerror(errno));
        goto fail;
    }
    ERR_clear_error();
    c->ssl = SSL_new(ctx);
    c->reader = redisReaderCreate();
    if (!c->ssl || !c->reader) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (redis_tls_prepare(c->ssl, host, server_name, err, err_len) < 0)
        goto fail;
    SSL_set_fd(c->ssl, c->fd);
    errno = 0;
    if (SSL_connect(c->ssl) != 1) {
        redis_tls_describe(c->ssl, "TLS handshake failed (closed or timed out)", err, err_len);
        goto fail;
    }
    /* with TLS 1.3 the server judges a client certificate after the client
     * is done: one PING (any answer, NOAUTH too) brings its refusal here */
    const char *ping[] = {"PING"};
    redisReply *r = redis_sync_argv(c, 1, ping, NULL);
    if (!r) {
        snprintf(err, err_len, "%s", c->errstr);
        goto fail;
    }
    freeReplyObject(r);
    return c;
fail:
    redis_sync_free(c);
    return NULL;
}

static redisReply *roundtrip(redis_sync *c, char *cmd, int len)
{
    if (len < 0) {
        snprintf(c->errstr, sizeof(c->errstr), "bad command or out of memory");
        return NULL;
    }
    if (c->errstr[0]) { /* the connection failed earlier: as hiredis, stay failed */
        redisFreeCommand(cmd);
        return NULL;
    }
    int off = 0;
    while (off < len) {
        errno = 0;
        int n = SSL_write(c->ssl, cmd + off, len - off);
        if (n <= 0) {
            redisFreeCommand(cmd);
            /* the server's alert, if it sent one before closing */
            char b[256];
            ERR_clear_error();
            errno = 0;
            if (SSL_read(c->ssl, b, sizeof(b)) > 0)
                ERR_clear_error();
            redis_tls_describe(c->ssl, "write failed (closed or timed out)", c->errstr,
                               sizeof(c->errstr));
            return NULL;
        }
        off += n;
    }
    redisFreeCommand(cmd);
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            snprintf(c->errstr, sizeof(c->errstr), "protocol error: %s", c->reader->errstr);
            return NULL;
        }
        if (reply)
            return reply;
        char buf[16384];
        errno = 0;
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n <= 0) {
            redis_tls_describe(c->ssl, "connection closed or timed out", c->errstr,
                               sizeof(c->errstr));
            return NULL;
        }
        redisReaderFeed(c->reader, buf, (size_t)n);
    }
}

redisReply *redis_sync_vcommand(redis_sync *c, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    return roundtrip(c, cmd, len);
}

redisReply *redis_sync_argv(redis_sync *c, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    return roundtrip(c, cmd, len);
}

const char *redis_sync_err(const redis_sync *c)
{
    return c->errstr;
}

void redis_sync_free(redis_sync *c)
{
    if (!c)
        return;
    if (c->ssl) {
        if (SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    if (c->reader)
        redisReaderFree(c->reader);
    free(c);
}
