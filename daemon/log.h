/* Logging: one line per event, text or JSON, to stderr or a file.
 * Recipient addresses are masked unless log_bodies is set; secrets never
 * reach this module (callers pass names, not values). */
#ifndef OMNI_LOG_H
#define OMNI_LOG_H

#include <stddef.h>

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* format "text" or "json"; level "error"|"warn"|"info"|"debug"; file NULL = stderr */
int log_setup(const char *format, const char *level, const char *file);
int log_reopen(void);
int log_level_parse(const char *s);
/* Would a line at this level be written? (skip building costly ones) */
int log_enabled(int level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with structured key=value fields appended: kv is a NULL-terminated
 * list of key, value pairs. */
void log_kv(int level, const char *event, const char *const *kv);
void log_set_show_addresses(int on);
/* Lines written so far at this level (--check-config reports warnings). */
unsigned long log_count(int level);
/* "+15550000001" -> "+1555*****01"; "ana@example.com" -> "a**@example.com" */
const char *log_mask(const char *addr, char *buf, size_t len);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
