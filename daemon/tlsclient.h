/* TLS client pieces shared by the native clients (h1.c for https, smtpc.c
 * for STARTTLS and smtps): the context (peer verified as libcurl verifies
 * it: the chain against tls_ca_file or the system's store, TLS 1.2 at
 * least, renegotiation and compression off, partial writes), the per
 * connection host name / IP check and SNI, and why a handshake failed. */
#ifndef OMNI_TLSCLIENT_H
#define OMNI_TLSCLIENT_H

#include <openssl/ssl.h>

/* alpn: wire-format protocol list (NULL: none); resume: keep each
 * origin's newest session (see tlsc_set_peer). NULL when the context or the
 * CA bundle could not be made. */
SSL_CTX *tlsc_ctx_new(const char *ca_file, const unsigned char *alpn, unsigned alpn_len,
                      int resume);
/* Verify the peer against host (an IP literal against the certificate's IP
 * entries, a name against its DNS names, partial wildcards refused; SNI for
 * names). session: the origin's slot (NULL: none): the session in it is
 * resumed, and a context made with resume puts the newest session the
 * server gives there (the slot's old one freed; the slot must outlive ssl,
 * and its owner frees what is left in it). 0, or -1. */
int tlsc_set_peer(SSL *ssl, const char *host, SSL_SESSION **session);
/* Why a handshake failed, in words that outlive the connection. */
const char *tlsc_why(SSL *ssl);
/* A failed handshake, logged once as a warning with its reason
 * ("certificate verify failed: <OpenSSL's words>", or OpenSSL's error) for
 * what (a client's name) to host:port; OpenSSL's error queue cleared.
 * Returns tlsc_why(ssl). */
const char *tlsc_failed(SSL *ssl, const char *what, const char *host, int port);

#endif
