/* SMS segments of a UTF-8 text, as carriers bill them (3GPP TS 23.038 and
 * 23.040): the GSM 7-bit default alphabet when every character is in it
 * (160 septets in one message, 153 per part of a longer one; a character
 * of the extension table, e.g. `{` or `€`, takes two septets and is never
 * split across parts), else UCS-2 (70 UTF-16 code units in one message,
 * 67 per part; a character outside the BMP, an emoji, is a surrogate pair
 * of two units, never split). With smart (Twilio's SmartEncoded), common
 * Unicode look-alikes count as the GSM characters Twilio sends instead.
 * Header-only, not part of the plugin ABI. */
#ifndef OMNI_CONNECTOR_SMS_SEGMENTS_H
#define OMNI_CONNECTOR_SMS_SEGMENTS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sms_count {
    size_t chars;   /* characters (code points; an invalid byte counts as one) */
    size_t septets; /* GSM-7 length, meaningful when gsm */
    size_t units;   /* UCS-2 (UTF-16) code units */
    int gsm;        /* 1: every character is in the GSM-7 alphabet */
    int segments;   /* 0 for an empty text */
} sms_count;

/* 1 or 2 septets for a code point of the GSM-7 alphabet, 0 when it is not */
static inline int sms_gsm_septets(uint32_t c)
{
    static const char ascii_ext[] = "^{}\\[~]|";
    static const uint16_t basic[] = {0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7,
                                     0x00D8, 0x00F8, 0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B,
                                     0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E, 0x00C6, 0x00E6,
                                     0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6, 0x00D1, 0x00DC,
                                     0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0};
    if (c == '\n' || c == '\r')
        return 1;
    if (c == '\f' || c == 0x20AC)
        return 2;
    if (c >= 0x20 && c < 0x7F) {
        if (c == '`')
            return 0;
        return c && strchr(ascii_ext, (int)c) ? 2 : 1;
    }
    for (size_t i = 0; i < sizeof(basic) / sizeof(basic[0]); i++)
        if (basic[i] == c)
            return 1;
    return 0;
}

/* SmartEncoded's replacement of a look-alike: its length in GSM septets
 * (all replacements are basic characters), 0 when c has none */
static inline int sms_smart_septets(uint32_t c)
{
    switch (c) {
    case 0x2018: /* ‘ ’ ‚ ‛ ′ ʼ → ' */
    case 0x2019:
    case 0x201A:
    case 0x201B:
    case 0x2032:
    case 0x02BC:
    case 0x201C: /* “ ” „ ‟ ″ « » → " */
    case 0x201D:
    case 0x201E:
    case 0x201F:
    case 0x2033:
    case 0x00AB:
    case 0x00BB:
    case 0x2010: /* hyphens and dashes, minus → - */
    case 0x2011:
    case 0x2012:
    case 0x2013:
    case 0x2014:
    case 0x2015:
    case 0x2212:
    case 0x00A0: /* no-break and typographic spaces → space */
    case 0x2002:
    case 0x2003:
    case 0x2004:
    case 0x2005:
    case 0x2006:
    case 0x2007:
    case 0x2008:
    case 0x2009:
    case 0x200A:
    case 0x202F:
        return 1;
    case 0x2026: /* … → ... */
        return 3;
    }
    return 0;
}

/* The next code point of s (at most end), advancing *p; an invalid or
 * truncated sequence yields U+FFFD and one byte */
static inline uint32_t sms_next(const unsigned char **p, const unsigned char *end)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || (size_t)(end - s) < n) {
        *p = s + 1;
        return 0xFFFD;
    }
    if (n > 1) {
        c &= 0x3Fu >> (n - 1);
        for (size_t i = 1; i < n; i++) {
            if ((s[i] & 0xC0) != 0x80) {
                *p = s + 1;
                return 0xFFFD;
            }
            c = (c << 6) | (s[i] & 0x3F);
        }
    }
    *p = s + n;
    return c;
}

/* Parts for costs packed greedily into parts of cap, a cost never split */
typedef struct sms_pack {
    size_t total, cur;
    int parts;
} sms_pack;

static inline void sms_pack_add(sms_pack *k, size_t cost, size_t cap)
{
    k->total += cost;
    if (!k->parts || k->cur + cost > cap) {
        k->parts++;
        k->cur = cost;
    } else {
        k->cur += cost;
    }
}

static inline sms_count sms_segments(const char *text, size_t len, int smart)
{
    sms_count r = {0, 0, 0, 1, 0};
    sms_pack g = {0, 0, 0}, u = {0, 0, 0};
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        uint32_t c = sms_next(&p, end);
        r.chars++;
        sms_pack_add(&u, c > 0xFFFF ? 2 : 1, 67);
        if (r.gsm) {
            int s = sms_gsm_septets(c);
            if (s) {
                sms_pack_add(&g, (size_t)s, 153);
            } else if (smart && (s = sms_smart_septets(c))) {
                for (int i = 0; i < s; i++) /* basic characters: 1 septet each */
                    sms_pack_add(&g, 1, 153);
            } else {
                r.gsm = 0;
            }
        }
    }
    r.septets = g.total;
    r.units = u.total;
    if (!r.chars)
        r.segments = 0;
    else if (r.gsm)
        r.segments = g.total <= 160 ? 1 : g.parts;
    else
        r.segments = u.total <= 70 ? 1 : u.parts;
    return r;
}

#endif
