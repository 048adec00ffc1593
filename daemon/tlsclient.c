/* TLS client pieces shared by the native clients (see tlsclient.h). */
#include "tlsclient.h"
#include "log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* the session cache's callback: the newest resumable session goes to the
 * origin's slot (the SSL's app data) */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    SSL_SESSION **slot = SSL_get_app_data(ssl);
    if (!slot || !SSL_SESSION_is_resumable(sess))
        return 0;
    if (*slot)
        SSL_SESSION_free(*slot);
    *slot = sess;
    return 1; /* the reference is the slot's */
}

SSL_CTX *tlsc_ctx_new(const char *ca_file, const unsigned char *alpn, unsigned alpn_len, int resume)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int ok = ctx != NULL;
    if (ok) {
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        /* read what the socket holds in one call, records and all */
        SSL_CTX_set_read_ahead(ctx, 1);
        ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) == 1
                     : SSL_CTX_set_default_verify_paths(ctx) == 1;
        if (alpn)
            ok = ok && SSL_CTX_set_alpn_protos(ctx, alpn, alpn_len) == 0;
        if (resume) {
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                                    SSL_SESS_CACHE_NO_INTERNAL_STORE);
            SSL_CTX_sess_set_new_cb(ctx, new_session);
        }
    }
    ERR_clear_error();
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int tlsc_set_peer(SSL *ssl, const char *host, SSL_SESSION **session)
{
    struct in6_addr a6;
    struct in_addr a4;
    int ok;
    if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(ssl, host) == 1 && SSL_set_tlsext_host_name(ssl, host) == 1;
    }
    if (ok && session) {
        SSL_set_app_data(ssl, session);
        if (*session)
            ok = SSL_set_session(ssl, *session) == 1;
    }
    if (!ok)
        ERR_clear_error();
    return ok ? 0 : -1;
}

const char *tlsc_why(SSL *ssl)
{
    long v = SSL_get_verify_result(ssl);
    switch (v) {
    case X509_V_OK:
        return "TLS handshake failed";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "TLS: the certificate does not match the host name";
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "TLS: the certificate has expired";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return "TLS: the certificate is not signed by a trusted CA";
    default:
        return "TLS: the certificate could not be verified";
    }
}

const char *tlsc_failed(SSL *ssl, const char *what, const char *host, int port)
{
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        log_warn("%s %s:%d: TLS handshake failed: certificate verify failed: %s", what, host, port,
                 X509_verify_cert_error_string(v));
    } else {
        unsigned long e = ERR_peek_last_error();
        const char *r = e ? ERR_reason_error_string(e) : NULL;
        log_warn("%s %s:%d: TLS handshake failed: %s", what, host, port,
                 r ? r : "the connection ended");
    }
    ERR_clear_error();
    return tlsc_why(ssl);
}
