/* Log lines, text or JSON, one write() per line so concurrent appends from
 * several processes never interleave. Addresses are masked unless the
 * operator turned log_bodies on. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "omnicast/connector.h"
#include "template.h"

static struct {
    int fd;
    int json;
    int level;
    int show_addresses;
    char *path;
    unsigned long counts[4]; /* lines written, per level */
} L = {2, 0, LOG_INFO, 0, NULL, {0}};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_setup(const char *format, const char *level, const char *file)
{
    L.json = format && strcmp(format, "json") == 0;
    int lv = log_level_parse(level);
    L.level = lv < 0 ? LOG_INFO : lv;
    free(L.path);
    L.path = file ? strdup(file) : NULL;
    return log_reopen();
}

int log_reopen(void)
{
    if (!L.path) {
        L.fd = 2;
        return 0;
    }
    int fd = open(L.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (L.fd > 2)
        close(L.fd);
    L.fd = fd;
    return 0;
}

int log_enabled(int level)
{
    return level <= L.level;
}

unsigned long log_count(int level)
{
    return level >= LOG_ERROR && level <= LOG_DEBUG ? L.counts[level] : 0;
}

void log_set_show_addresses(int on)
{
    L.show_addresses = on;
}

const char *log_mask(const char *addr, char *buf, size_t len)
{
    if (!addr)
        addr = "";
    size_t n = strlen(addr);
    if (L.show_addresses || len == 0) {
        snprintf(buf, len, "%s", addr);
        return buf;
    }
    const char *at = strchr(addr, '@');
    size_t i = 0;
    if (at) {
        /* a**@example.com */
        if (len > 1 && at != addr)
            buf[i++] = addr[0];
        for (int k = 0; k < 2 && i + 1 < len; k++)
            buf[i++] = '*';
        for (const char *p = at; *p && i + 1 < len; p++)
            buf[i++] = *p;
    } else if (n <= 6) {
        for (; i < n && i + 1 < len; i++)
            buf[i] = '*';
    } else {
        /* +1555*****01: the first five characters and the last two */
        for (size_t k = 0; k < n && i + 1 < len; k++)
            buf[i++] = k < 5 || k + 2 >= n ? addr[k] : '*';
    }
    buf[i] = '\0';
    return buf;
}

static void stamp(char *buf, size_t len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char d[32];
    strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", d, (int)(tv.tv_usec / 1000) % 1000);
}

static void emit(oc_buf *b)
{
    oc_buf_append(b, "\n", 1);
    const char *p = b->data;
    size_t left = b->len;
    while (left) {
        ssize_t w = write(L.fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
}

static void line(int level, const char *event, const char *msg, const char *const *kv)
{
    if (level > L.level)
        return;
    if (level >= LOG_ERROR && level <= LOG_DEBUG)
        L.counts[level]++;
    char ts[40];
    stamp(ts, sizeof(ts));
    oc_buf b = {0};
    if (L.json) {
        oc_buf_puts(&b, "{\"ts\":\"");
        oc_buf_puts(&b, ts);
        oc_buf_puts(&b, "\",\"level\":\"");
        oc_buf_puts(&b, level_names[level]);
        oc_buf_puts(&b, "\"");
        if (event) {
            oc_buf_puts(&b, ",\"event\":\"");
            json_escape_append(&b, event, strlen(event));
            oc_buf_puts(&b, "\"");
        }
        if (msg) {
            oc_buf_puts(&b, ",\"msg\":\"");
            json_escape_append(&b, msg, strlen(msg));
            oc_buf_puts(&b, "\"");
        }
        for (const char *const *p = kv; p && p[0] && p[1]; p += 2) {
            oc_buf_puts(&b, ",\"");
            json_escape_append(&b, p[0], strlen(p[0]));
            oc_buf_puts(&b, "\":\"");
            json_escape_append(&b, p[1], strlen(p[1]));
            oc_buf_puts(&b, "\"");
        }
        oc_buf_puts(&b, "}");
    } else {
        oc_buf_puts(&b, ts);
        oc_buf_puts(&b, " ");
        oc_buf_puts(&b, level_names[level]);
        oc_buf_puts(&b, " ");
        if (event)
            oc_buf_puts(&b, event);
        if (msg) {
            /* keep one event per line: a newline inside becomes a space */
            size_t start = b.len;
            oc_buf_puts(&b, msg);
            for (size_t i = start; i < b.len; i++)
                if (b.data[i] == '\n' || b.data[i] == '\r')
                    b.data[i] = ' ';
        }
        for (const char *const *p = kv; p && p[0] && p[1]; p += 2) {
            oc_buf_puts(&b, " ");
            oc_buf_puts(&b, p[0]);
            oc_buf_puts(&b, "=");
            if (strpbrk(p[1], " \"=\n\r") || !p[1][0]) {
                oc_buf_puts(&b, "\"");
                json_escape_append(&b, p[1], strlen(p[1]));
                oc_buf_puts(&b, "\"");
            } else {
                oc_buf_puts(&b, p[1]);
            }
        }
    }
    emit(&b);
    oc_buf_free(&b);
}

void log_msg(int level, const char *fmt, ...)
{
    if (level > L.level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    line(level, NULL, msg, NULL);
}

void log_kv(int level, const char *event, const char *const *kv)
{
    line(level, event, NULL, kv);
}
