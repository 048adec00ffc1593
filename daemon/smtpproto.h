/* SMTP's pure pieces for the native client (smtpc.c): the reply parser
 * (RFC 5321 4.2, multi-line replies), the EHLO capabilities, the message
 * body as DATA sends it (dot-stuffed, ended by CRLF.CRLF), the URL. No I/O. */
#ifndef OMNI_SMTPPROTO_H
#define OMNI_SMTPPROTO_H

#include <stddef.h>
#include "omnicast/connector.h"

#define SMTP_LINE_MAX 2048   /* a reply line longer than this is refused */
#define SMTP_REPLY_MAX 65536 /* a reply (all its lines) longer than this is refused */

enum { SMTP_R_MORE = 0, SMTP_R_OK = 1, SMTP_R_BAD = -1 };

typedef struct smtp_reply {
    int code;          /* 200..599 */
    const char *first; /* the first line, without its line end (points into the input) */
    size_t first_len;
    const char *last; /* the last line, without its line end */
    size_t last_len;
    int nlines;
} smtp_reply;

/* One whole reply at the start of buf[0..len): lines "ddd-text" then one
 * "ddd text" (or "ddd"), each ended by CRLF (a bare LF is taken). SMTP_R_OK
 * with *used the bytes it took, SMTP_R_MORE when it is not complete yet,
 * SMTP_R_BAD when it is not a reply (no code, codes that differ between
 * lines, a code outside 2xx-5xx, a line or reply too long). */
int smtp_reply_parse(const char *buf, size_t len, size_t *used, smtp_reply *r);

enum {
    SMTP_CAP_PIPELINING = 1 << 0,
    SMTP_CAP_STARTTLS = 1 << 1,
    SMTP_CAP_SIZE = 1 << 2,
    SMTP_CAP_SMTPUTF8 = 1 << 3,
    SMTP_CAP_AUTH = 1 << 4, /* an AUTH line was there (any mechanism) */
    SMTP_AUTH_PLAIN = 1 << 8,
    SMTP_AUTH_LOGIN = 1 << 9,
    SMTP_AUTH_CRAM_MD5 = 1 << 10,
};

/* The capabilities of a 250 EHLO reply (the whole reply's bytes, as
 * smtp_reply_parse took them): SMTP_CAP_* and SMTP_AUTH_* bits; *size_max
 * the SIZE limit (0: none given). Keywords are case-insensitive; AUTH=
 * (the old form) counts as AUTH. */
unsigned smtp_ehlo_caps(const char *reply, size_t len, unsigned long long *size_max);

/* Append body to out as DATA sends it, as libcurl does: a '.' that starts
 * the body or follows a CRLF is doubled; the end is CRLF.CRLF (".CRLF"
 * alone when the body is empty or already ends with CRLF). A bare LF is
 * left as it is. 0, or -1 out of memory. */
int smtp_dot_stuff(oc_buf *out, const char *body, size_t len);

/* smtp[s]://host[:port][/ehlo-name]: host (brackets of an IPv6 literal
 * removed), port (default 25 / 465), tls 1 for smtps, the EHLO name
 * (percent-decoded; empty: none given). -1 for anything else (user info,
 * a query, a control character or space in the name, a name or host too
 * long): the caller leaves such an URL to libcurl. */
typedef struct smtp_url {
    char host[256];
    char ehlo[256];
    int port;
    int tls;
} smtp_url;
int smtp_parse_url(const char *url, smtp_url *u);

/* What SMTPUTF8 (RFC 6531) says of n bytes: SMTP_ASCII (nothing to
 * announce), SMTP_UTF8 (well-formed UTF-8 with non-ASCII in it: the server
 * must offer SMTPUTF8) or SMTP_NOT_UTF8 (ill-formed: overlong forms,
 * surrogates, beyond U+10FFFF, a sequence cut short, a stray continuation
 * byte; never to be sent). */
enum { SMTP_ASCII = 0, SMTP_UTF8 = 1, SMTP_NOT_UTF8 = -1 };
int smtp_utf8_class(const char *s, size_t n);

#endif
