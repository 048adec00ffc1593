/* Address kinds and normalization per channel, so two spellings of one
 * number or mailbox are one recipient for the duplicate guard and the
 * suppression lists. Pure logic. */
#ifndef OMNI_ADDRESS_H
#define OMNI_ADDRESS_H

#include <stddef.h>

enum { ADDR_ANY = 0, ADDR_PHONE = 1, ADDR_EMAIL = 2 };

#define ADDR_MAX 256

/* Normalize in into out (ADDR_MAX bytes). Phone: E.164 "+" and 8..15 digits,
 * spaces, dashes, dots and parentheses dropped, a leading "00" read as "+".
 * Email: trimmed, domain lower-cased, one '@', no control characters or
 * spaces. Any: trimmed, printable, no control characters. Returns 0, or -1
 * with a reason ("not an E.164 number", ...) in why. */
int addr_normalize(int kind, const char *in, char *out, size_t out_len, const char **why);

/* A WhatsApp business-scoped user id (BSUID), as WhatsApp gives it: two
 * upper-case letters (a country code), '.', an optional "ENT." (a parent
 * BSUID), then 1..128 letters and digits, e.g. "US.13491208655302741918".
 * Copied unchanged into out: 0, or -1 when in is not one. The id of a
 * WhatsApp user known without a phone number (inbound only: conv.c). */
int addr_bsuid(const char *in, char *out, size_t out_len);

/* Address kind a connector type expects: whatsapp/twilio -> PHONE,
 * smtp -> EMAIL, anything else -> ANY. */
int addr_kind_for_type(const char *connector_type);

/* Address kind a channel name implies when its connector is generic
 * (outbox, webhook, plugins): sms/whatsapp/phone -> PHONE, email/mail ->
 * EMAIL, anything else -> ANY. */
int addr_kind_for_channel(const char *channel);

/* The address kind (ADDR_*) a channel takes: its connector type's, or for
 * a generic connector (ADDR_ANY) the channel name's. The daemon and the
 * CLI decide it here. */
int addr_channel_kind(const char *connector_type, const char *channel);

#endif
