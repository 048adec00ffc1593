/* A campaign's recipient records as export lines: GET
 * /v1/campaigns/{id}/recipients and omnicast export read the message hash
 * (msg:{id}) with HSCAN and turn each field/value into one line here.
 * Pure: no Redis, no event loop; the caller owns the buffer.
 *
 * A line carries: address, channel, state, provider_id, reason (the
 * record's error, else its reason), attempts, at (unix ms), delivery (the
 * last delivery status: delivered, read or failed), delivery_at,
 * delivery_error. NDJSON: one JSON object a line (absent values null).
 * CSV (RFC 4180): a header line, then one line per record, fields quoted
 * when they hold a comma, a double quote, CR or LF (quotes doubled), lines
 * ended by CRLF. */
#ifndef OMNI_EXPORT_H
#define OMNI_EXPORT_H

#include <stddef.h>

enum { EXPORT_NDJSON, EXPORT_CSV };

/* a growable byte buffer (malloc) */
typedef struct export_buf {
    char *data;
    size_t len, cap;
} export_buf;

void export_buf_free(export_buf *b);

/* 1 if s names a record state the filter takes (claimed, sent, failed,
 * retry, uncertain, cancelled, suppressed), else 0 */
int export_state_valid(const char *s);

/* the CSV header line, CRLF-ended */
const char *export_csv_header(void);

/* One CSV field of n bytes appended, quoted when it needs to be. 0, -1 on
 * no memory. */
int export_csv_field(export_buf *b, const char *s, size_t n);

/* The line of one hash field (CHANNEL:ADDRESS) and its value (the record's
 * JSON) appended to b. state, when not NULL or "", keeps only records in
 * that state. Returns 1 (a line appended), 0 (not a recipient record -- a
 * dup:SLOT marker, a value that is not a record -- or filtered out), -1 on
 * no memory. */
int export_line(export_buf *b, int format, const char *state, const char *field, size_t flen,
                const char *value, size_t vlen);

#endif
