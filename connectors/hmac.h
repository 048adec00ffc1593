/* HMAC for the built-in connectors (webhook signatures in and out). The
 * context is keyed once per configuration and re-initialized per message:
 * OpenSSL 3's one-shot HMAC() fetches the algorithm and keys it on every
 * call, which cost more than hashing a webhook body. Not part of the plugin
 * ABI: header-only, so each connector still builds on its own. */
#ifndef OMNI_CONNECTOR_HMAC_H
#define OMNI_CONNECTOR_HMAC_H

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

/* A context keyed with key for digest ("SHA256", "SHA1"); NULL on failure. */
static inline EVP_MAC_CTX *oc_hmac_new(const char *digest, const char *key)
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    EVP_MAC_free(m); /* the context keeps its own reference */
    OSSL_PARAM ps[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
                       OSSL_PARAM_construct_end()};
    if (c && !EVP_MAC_init(c, (const unsigned char *)key, strlen(key), ps)) {
        EVP_MAC_CTX_free(c);
        c = NULL;
    }
    return c;
}

/* The MAC of data into out (EVP_MAX_MD_SIZE bytes); its length, 0 on
 * failure. A NULL key re-initializes with the key set in oc_hmac_new. */
static inline size_t oc_hmac(EVP_MAC_CTX *c, const void *data, size_t len, unsigned char *out)
{
    size_t ml = 0;
    if (!c || !EVP_MAC_init(c, NULL, 0, NULL) ||
        !EVP_MAC_update(c, (const unsigned char *)data, len) ||
        !EVP_MAC_final(c, out, &ml, EVP_MAX_MD_SIZE))
        return 0;
    return ml;
}

/* n bytes as 2n lowercase hex digits and a NUL */
static inline void oc_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

#endif
