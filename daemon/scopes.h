/* Scoped API tokens: the scope names, one api_tokens_file line parsed into
 * a token and its scope mask, and the path patterns of http.c's scope
 * table. Pure, no I/O (http.c loads the file, config.c checks it for
 * --check-config). */
#ifndef OMNI_SCOPES_H
#define OMNI_SCOPES_H

#include <stddef.h>

enum {
    SCOPE_SEND = 1u << 0,    /* jobs in: broadcasts, messages */
    SCOPE_READ = 1u << 1,    /* campaigns, conversations, exports */
    SCOPE_CONTROL = 1u << 2, /* pause, resume, cancel (resend) */
    SCOPE_AGENT = 1u << 3,   /* conversation messages, close, conversions */
    SCOPE_ADMIN = 1u << 4,   /* connectors, suppressions, any /v1 route without a scope row */
    SCOPE_ALL = (1u << 5) - 1
};

#define SCOPE_TOKEN_MAX 511 /* longest token; a longer one is an error, never cut */

/* The name of a single scope bit ("send", ...), NULL for anything else. */
const char *scopes_name(unsigned scope);

/* The bit of a scope name of len bytes, 0 when it names none. */
unsigned scopes_bit(const char *name, size_t len);

/* One line of api_tokens_file, len bytes (its newline included or not):
 * "TOKEN" or "TOKEN scope[,scope...]" (the scopes after whitespace, commas
 * between, spaces around a comma allowed), leading and trailing spaces cut;
 * blank lines and lines starting with # hold nothing. Returns 1 with *tok,
 * *tok_len (inside line) and *mask (SCOPE_ALL for a token without scopes),
 * 0 for a line with nothing, -1 with *why (a static string that holds no
 * part of the line: the line may be a secret) for a NUL byte, a token
 * longer than SCOPE_TOKEN_MAX, an empty or unknown scope. */
int scopes_parse_line(const char *line, size_t len, const char **tok, size_t *tok_len,
                      unsigned *mask, const char **why);

/* 1 when path matches pattern whole: "*" in the pattern stands for exactly
 * one non-empty segment (no '/'), everything else matches itself. */
int scopes_path_match(const char *pattern, const char *path);

#endif
