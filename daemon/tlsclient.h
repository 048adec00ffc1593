/* TLS client pieces shared by the native clients (h1.c for https, smtpc.c
 * for STARTTLS and smtps): the context (peer verified as libcurl verifies
 * it: the chain against tls_ca_file or the system's store, TLS 1.2 at
 * least, renegotiation and compression off, partial writes), the per
 * connection host name / IP check and SNI, and why a handshake failed. */
#ifndef OMNI_TLSCLIENT_H
#define OMNI_TLSCLIENT_H

#include <openssl/ssl.h>

/* alpn: wire-format protocol list (NULL: none); new_session: the session
 * callback of the client session cache (NULL: no resumption). NULL when
 * the context or the CA bundle could not be made. */
SSL_CTX *tlsc_ctx_new(const char *ca_file, const unsigned char *alpn, unsigned alpn_len,
                      int (*new_session)(SSL *, SSL_SESSION *));
/* Verify the peer against host (an IP literal against the certificate's IP
 * entries, a name against its DNS names, partial wildcards refused; SNI for
 * names) and resume session (may be NULL). 0, or -1. */
int tlsc_set_peer(SSL *ssl, const char *host, SSL_SESSION *session);
/* Why a handshake failed, in words that outlive the connection. */
const char *tlsc_why(SSL *ssl);

#endif
