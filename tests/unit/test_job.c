/* The job contract: a table of bad jobs with the exact reason each gets,
 * and good jobs with the normalized spec they become. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "job.h"

static int kinds(void *ctx, const char *channel)
{
    (void)ctx;
    if (!strcmp(channel, "sms") || !strcmp(channel, "whatsapp") || !strcmp(channel, "mms"))
        return ADDR_PHONE;
    if (!strcmp(channel, "email"))
        return ADDR_EMAIL;
    if (!strcmp(channel, "hook"))
        return ADDR_ANY;
    return -1;
}

/* the customer service windows of the channels' connectors: whatsapp's
 * own 24 h; "hook" 1 h here (a plugin's or an operator's session_window_s) */
static long long windows(void *ctx, const char *channel)
{
    (void)ctx;
    return !strcmp(channel, "whatsapp") ? 86400 : !strcmp(channel, "hook") ? 3600 : 0;
}

static const job_rules rules = {.max_bytes = 4096,
                                .max_inline_recipients = 3,
                                .channel_kind = kinds,
                                .channel_window_s = windows,
                                .ctx = NULL};

#define OK_MSG "\"message\":{\"text\":\"hi\"}"
#define R1 "\"recipients\":[{\"to\":\"+15550000001\"}]"

static const struct {
    const char *job;
    const char *reason;
} bad[] = {
    {"", "not JSON: '[' or '{' expected near end of file at line 1 column 0"},
    {"not json", "not JSON: '[' or '{' expected near 'not' at line 1 column 3"},
    {"[1,2]", "not a JSON object"},
    {"{\"type\":\"broadcast\",\"type\":\"message\"}",
     "not JSON: duplicate object key near '\"type\"' at line 1 column 26"},
    {"{}", "type: missing"},
    {"{\"type\":5}", "type: must be a string"},
    {"{\"type\":\"spam\",\"id\":\"a\"}",
     "type: must be broadcast, message, pause, resume, cancel or conversion, not spam"},
    {"{\"type\":\"broadcast\"}", "id: missing"},
    {"{\"type\":\"broadcast\",\"id\":7}", "id: must be a string"},
    {"{\"type\":\"broadcast\",\"id\":\"a b\"}",
     "id: contains forbidden characters or is longer than 128 (allowed: A-Z a-z 0-9 . _ -)"},
    {"{\"type\":\"broadcast\",\"id\":\"\"}",
     "id: contains forbidden characters or is longer than 128 (allowed: A-Z a-z 0-9 . _ -)"},
    /* ':' would let "victim:rcpt" and "victim" share keys */
    {"{\"type\":\"broadcast\",\"id\":\"victim:rcpt\"," OK_MSG ",\"channel\":\"sms\"," R1 "}",
     "id: ':' is not allowed (it would collide with another campaign's keys)"},
    {"{\"type\":\"message\",\"id\":\"a:\",\"channel\":\"sms\"," OK_MSG ",\"to\":\"+15550000001\"}",
     "id: ':' is not allowed (it would collide with another campaign's keys)"},
    {"{\"type\":\"broadcast\",\"id\":\":\"}",
     "id: ':' is not allowed (it would collide with another campaign's keys)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"colour\":\"red\"}", "unknown key: colour"},
    {"{\"type\":\"broadcast\",\"id\":\"a\"," OK_MSG "," R1 "}",
     "channels: missing (give channel or channels)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"channels\":[\"sms\"]}",
     "channel: give channel or channels, not both"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":1}", "channel: must be a string"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[]}",
     "channels: must be a non-empty array"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"sms\",\"sms\"]}",
     "channels[1]: sms given twice"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"fax\"}", "unknown channel: fax"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"sms\",3]}",
     "channels[1]: must be a string"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," R1 "}", "message: missing"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":\"hi\"}",
     "message: must be an object"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":{}}",
     "message: needs text, html, template or media"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":{\"txt\":\"x\"}}",
     "message: unknown key: txt"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":{\"text\":\"Hi "
     "{{name\"}}",
     "message.text: unclosed {{ at offset 3"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":{\"text\":\"{{}}\"}}",
     "message.text: empty variable name at offset 0"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":{\"text\":\"{{a b}}\"}}",
     "message.text: bad character in variable name at offset 3"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":{\"text\":3}}",
     "message.text: must be a string"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":{\"template\":{}}}",
     "message.template.name: missing"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"params\":\"x\"}}}",
     "message.template.params: must be an array of at most 16 strings"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"lang\":\"x\"}}}",
     "message.template: unknown key: lang"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[]}}," R1 "}",
     "message.template.components: must be an array of 1 to 10 components"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"footer\",\"parameters\":[]}]}}," R1 "}",
     "message.template.components[0].type: must be header, body or button"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\"}]}]}}"
     "," R1 "}",
     "message.template.components[0].parameters[0].text: must be a non-empty string of at most "
     "1024 bytes"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\","
     "\"text\":\"{{x\"}]}]}}," R1 "}",
     "message.template.components[0].parameters[0].text: unclosed {{ at offset 0"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"money\"}]}]}}"
     "," R1 "}",
     "message.template.components[0].parameters[0].type: must be text, currency, date_time, image, "
     "video, document, payload, coupon_code or action"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"currency\","
     "\"currency\":{\"fallback_value\":\"$1\",\"code\":\"usd\",\"amount_1000\":1000}}]}]}}," R1 "}",
     "message.template.components[0].parameters[0].currency.code: must be an ISO 4217 code such as "
     "\"USD\""},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"currency\","
     "\"currency\":{\"fallback_value\":\"$1\",\"code\":\"USD\",\"amount_1000\":1.5}}]}]}}," R1 "}",
     "message.template.components[0].parameters[0].currency.amount_1000: must be an integer (the "
     "amount times 1000)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":\"image\","
     "\"image\":{}}]}]}}," R1 "}",
     "message.template.components[0].parameters[0].image: needs link or id (one of them)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":\"image\","
     "\"image\":{\"link\":\"https://x/a.png\",\"filename\":\"a\"}}]}]}}," R1 "}",
     "message.template.components[0].parameters[0].image.filename: only for a document"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":\"text\","
     "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]}}," R1 "}",
     "message.template.components[0].parameters: must be an array of 1 to 1 parameters"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"button\",\"index\":0,\"parameters\":[{\"type\":"
     "\"payload\",\"payload\":\"p\"}]}]}}," R1 "}",
     "message.template.components[0].sub_type: must be quick_reply, url, copy_code, flow, catalog, "
     "mpm or voice_call"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"button\",\"sub_type\":\"quick_reply\",\"index\":"
     "\"10\",\"parameters\":[{\"type\":\"payload\",\"payload\":\"p\"}]}]}}," R1 "}",
     "message.template.components[0].index: must be 0 to 9 (the button's position)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"button\",\"sub_type\":\"quick_reply\",\"index\":0,"
     "\"parameters\":[{\"type\":\"payload\",\"payload\":\"p\"}]},{\"type\":\"button\",\"sub_type\":"
     "\"quick_reply\",\"index\":\"0\",\"parameters\":[{\"type\":\"payload\",\"payload\":\"q\"}]}]}}"
     "," R1 "}",
     "message.template.components[1]: button 0 given twice"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"body\",\"index\":0,\"parameters\":[{\"type\":"
     "\"text\",\"text\":\"a\"}]}]}}," R1 "}",
     "message.template.components[0]: sub_type and index are for buttons only"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\","
     "\"text\":\"a\",\"parameter_name\":\"First Name\"}]}]}}," R1 "}",
     "message.template.components[0].parameters[0].parameter_name: must be 1-64 of [a-z0-9_]"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\","
     "\"text\":\"a\",\"image\":{}}]}]}}," R1 "}",
     "message.template.components[0].parameters[0]: unknown key: image"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"coupon_code\","
     "\"coupon_code\":\"0123456789ABCDEF\"}]}]}}," R1 "}",
     "message.template.components[0].parameters[0].coupon_code: must be a non-empty string of at "
     "most 15 bytes"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"template\":{"
     "\"name\":\"t\",\"params\":[\"x\"],\"components\":[{\"type\":\"body\",\"parameters\":[{"
     "\"type\":\"text\",\"text\":\"a\"}]}]}}," R1 "}",
     "message.template: params and a body component both give the body's parameters: give one"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"media\":{"
     "\"type\":\"gif\",\"url\":\"https://x/a\"}}," R1 "}",
     "message.media.type: must be image, video, document or audio"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"media\":{"
     "\"type\":\"image\"}}," R1 "}",
     "message.media.url: must be a non-empty string of at most 2048 bytes"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"media\":{"
     "\"type\":\"image\",\"url\":\"ftp://x/a\"}}," R1 "}",
     "message.media.url: must be an http(s) URL"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"media\":{"
     "\"type\":\"audio\",\"url\":\"https://x/a.ogg\",\"caption\":\"c\"}}," R1 "}",
     "message.media.caption: a string of at most 1024 bytes, not for audio"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"media\":{"
     "\"type\":\"image\",\"url\":\"https://x/a.png\",\"filename\":\"a.png\"}}," R1 "}",
     "message.media.filename: a string, for a document only"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"media\":{"
     "\"type\":\"image\",\"url\":\"https://x/a.png\",\"alt\":\"a\"}}," R1 "}",
     "message.media: unknown key: alt"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"sms\",\"email\"],\"message\":{\"media\":"
     "{\"type\":\"image\",\"url\":\"https://x/a.png\"}}," R1 "}",
     "message.media: channel email is email, which takes no media"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "}",
     "recipients: missing (give recipients or recipients_list)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"recipients_list\":\"k\"}",
     "recipients: give recipients or recipients_list, not both"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG ",\"recipients\":[]}",
     "recipients: must be a non-empty array"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients\":[{\"to\":\"+15550000001\"},{\"to\":\"+15550000002\"},{\"to\":"
     "\"+15550000003\"},{\"to\":\"+15550000004\"}]}",
     "recipients: 4 inline recipients exceed the cap of 3; use recipients_list"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG ",\"recipients\":[3]}",
     "recipients[0]: must be an object"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG ",\"recipients\":[{}]}",
     "recipients[0].to: missing"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients\":[{\"to\":\"+15550000001\"},{\"to\":\"12\"}]}",
     "recipients[1].to: not an E.164 number"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"email\"," OK_MSG
     ",\"recipients\":[{\"to\":\"ana@\"}]}",
     "recipients[0].to: not an email address"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"sms\",\"email\"]," OK_MSG
     ",\"recipients\":[{\"to\":{\"sms\":\"+15550000001\"}}]}",
     "recipients[0].to: missing address for channel email"},
    /* WhatsApp's 24-hour customer service window: a broadcast needs a template */
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\"," OK_MSG "," R1 "}",
     "message.template: missing: a broadcast on channel whatsapp needs an approved template "
     "(free-form text only reaches contacts who wrote in the last 24 hours: the customer "
     "service window)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"sms\",\"whatsapp\"]," OK_MSG "," R1 "}",
     "message.template: missing: a broadcast on channel whatsapp needs an approved template "
     "(free-form text only reaches contacts who wrote in the last 24 hours: the customer "
     "service window)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{\"media\":"
     "{\"type\":\"image\",\"url\":\"https://x/a.png\"}}," R1 "}",
     "message.template: missing: a broadcast on channel whatsapp needs an approved template "
     "(free-form text only reaches contacts who wrote in the last 24 hours: the customer "
     "service window)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"hook\"," OK_MSG
     ",\"recipients\":[{\"to\":\"x\"}]}",
     "message.template: missing: a broadcast on channel hook needs an approved template "
     "(free-form text only reaches contacts who wrote in the last hour: the customer "
     "service window)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients\":[{\"to\":\"+15550000001\",\"vars\":{\"n\":[1]}}]}",
     "recipients[0].vars.n: must be a string, number or boolean"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients\":[{\"to\":\"+15550000001\",\"name\":\"x\"}]}",
     "recipients[0]: unknown key: name"},
    /* conversation_id: a message job's, a conversation id */
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"conversation_id\":\"cv1\"}",
     "conversation_id: only a message job takes it"},
    {"{\"type\":\"message\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"to\":\"+15550000001\",\"conversation_id\":7}",
     "conversation_id: must be a conversation id (A-Z a-z 0-9 . _ -, at most 128)"},
    {"{\"type\":\"message\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"to\":\"+15550000001\",\"conversation_id\":\"cv:1\"}",
     "conversation_id: must be a conversation id (A-Z a-z 0-9 . _ -, at most 128)"},
    {"{\"type\":\"message\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"to\":\"+15550000001\",\"conversation_id\":\"\"}",
     "conversation_id: must be a conversation id (A-Z a-z 0-9 . _ -, at most 128)"},
    {"{\"type\":\"pause\",\"id\":\"a\",\"conversation_id\":\"cv1\"}",
     "conversation_id: not allowed in a pause job"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"send_at\":\"tomorrow\"}",
     "send_at: not an ISO 8601 time (e.g. 2026-11-27T09:00:00Z)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1 ",\"rate_per_s\":0}",
     "rate_per_s: must be a number from 0.01 (one message every 100 s) to 1000000"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"rate_per_s\":0.001}",
     "rate_per_s: must be a number from 0.01 (one message every 100 s) to 1000000"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1 ",\"priority\":0}",
     "priority: must be an integer from 1 to 100 (sends per turn on a shared connector; default "
     "1)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"priority\":\"high\"}",
     "priority: must be an integer from 1 to 100 (sends per turn on a shared connector; default "
     "1)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"sms\",\"mms\"]," OK_MSG "," R1
     ",\"fallback_after_s\":0}",
     "fallback_after_s: must be an integer from 1 to 604800 (seconds without a delivered or read "
     "status before the next channel is tried)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"sms\",\"mms\"]," OK_MSG "," R1
     ",\"fallback_after_s\":604801}",
     "fallback_after_s: must be an integer from 1 to 604800 (seconds without a delivered or read "
     "status before the next channel is tried)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"sms\",\"mms\"]," OK_MSG "," R1
     ",\"fallback_after_s\":\"60\"}",
     "fallback_after_s: must be an integer from 1 to 604800 (seconds without a delivered or read "
     "status before the next channel is tried)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"sms\",\"mms\"]," OK_MSG "," R1
     ",\"fallback_after_s\":1.5}",
     "fallback_after_s: must be an integer from 1 to 604800 (seconds without a delivered or read "
     "status before the next channel is tried)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"fallback_after_s\":60}",
     "fallback_after_s: needs at least two channels (a next channel to move to)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1 ",\"metadata\":[]}",
     "metadata: must be an object"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"defaults\":{\"name\":1}}",
     "defaults.name: must be a string"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"25:00\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"-1:00\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"21:00\",\"end\":\"-1:00\"}}",
     "quiet_hours.end: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"+1:00\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\" 1:00\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"1:00\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"21:00\",\"end\":\"8:00\"}}",
     "quiet_hours.end: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"21:60\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"24:00\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"21:00\",\"end\":\"08:00:00\"}}",
     "quiet_hours.end: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"2100\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"21.00\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"21:0a\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"\",\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":2100,\"end\":\"08:00\"}}",
     "quiet_hours.start: must be a time \"HH:MM\" from 00:00 to 23:59 (two digits each)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"21:00\"}}",
     "quiet_hours: must be {\"start\":\"HH:MM\",\"end\":\"HH:MM\"}"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"21:00\",\"finish\":\"08:00\"}}",
     "quiet_hours: must be {\"start\":\"HH:MM\",\"end\":\"HH:MM\"}"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":{\"start\":\"21:00\",\"end\":\"08:00\",\"tz\":\"UTC\"}}",
     "quiet_hours: must be {\"start\":\"HH:MM\",\"end\":\"HH:MM\"}"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"quiet_hours\":\"21:00-08:00\"}",
     "quiet_hours: must be {\"start\":\"HH:MM\",\"end\":\"HH:MM\"}"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"send_at\":\"2026-11-27T-1:00:00Z\"}",
     "send_at: not an ISO 8601 time (e.g. 2026-11-27T09:00:00Z)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"send_at\":\"2026-02-30T09:00:00Z\"}",
     "send_at: not an ISO 8601 time (e.g. 2026-11-27T09:00:00Z)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"send_at\":\"99999-11-27T09:00:00Z\"}",
     "send_at: not an ISO 8601 time (e.g. 2026-11-27T09:00:00Z)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"send_at\":\"2026-11-27T09:00:00+-1:00\"}",
     "send_at: not an ISO 8601 time (e.g. 2026-11-27T09:00:00Z)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients_list\":\"a b\"}",
     "recipients_list: must not contain spaces or control characters"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG ",\"to\":\"+15550000001\"}",
     "to: only a message job takes to/vars (use recipients)"},
    {"{\"type\":\"message\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients\":[{\"to\":\"+15550000001\"},{\"to\":\"+15550000002\"}]}",
     "recipients: a message job has exactly one recipient"},
    {"{\"type\":\"message\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG ",\"recipients_list\":\"k\"}",
     "recipients_list: a message job has one recipient"},
    {"{\"type\":\"pause\",\"id\":\"a\",\"channel\":\"sms\"}",
     "channel: not allowed in a pause job"},
    /* contact_id (optout_scope = contact) */
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients\":[{\"to\":\"+15550000001\",\"contact_id\":7}]}",
     "recipients[0].contact_id: must be a string of 1 to 128 characters (A-Z a-z 0-9 . _ : @ + -)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients\":[{\"to\":\"+15550000001\",\"contact_id\":\"\"}]}",
     "recipients[0].contact_id: must be a string of 1 to 128 characters (A-Z a-z 0-9 . _ : @ + -)"},
    {"{\"type\":\"message\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients\":[{\"to\":\"+15550000001\",\"contact_id\":\"crm 42\"}]}",
     "recipients[0].contact_id: must be a string of 1 to 128 characters (A-Z a-z 0-9 . _ : @ + -)"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG
     ",\"recipients\":[{\"to\":\"+15550000001\",\"contact\":\"c1\"}]}",
     "recipients[0]: unknown key: contact"},
    /* conversion jobs */
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"value\":1,\"currency\":\"EUR\"}",
     "conversation_id: missing"},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv:1\",\"value\":1,"
     "\"currency\":\"EUR\"}",
     "conversation_id: must be a conversation id (A-Z a-z 0-9 . _ -, at most 128)"},
    {"{\"type\":\"conversion\",\"conversation_id\":\"cv1\",\"value\":1,\"currency\":\"EUR\"}",
     "id: missing"},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"currency\":\"EUR\"}",
     "value: missing"},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"value\":-0.5,"
     "\"currency\":\"EUR\"}",
     "value: must be a number from 0 to 1000000000000"},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"value\":\"12\","
     "\"currency\":\"EUR\"}",
     "value: must be a number from 0 to 1000000000000"},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"value\":1e13,"
     "\"currency\":\"EUR\"}",
     "value: must be a number from 0 to 1000000000000"},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"value\":0.0001,"
     "\"currency\":\"EUR\"}",
     "value: at most three decimals (it is counted exactly, in thousandths)"},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"value\":1,"
     "\"currency\":\"eur\"}",
     "currency: must be an ISO 4217 code such as \"EUR\""},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"value\":1,"
     "\"currency\":\"EURO\"}",
     "currency: must be an ISO 4217 code such as \"EUR\""},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"value\":1}",
     "currency: missing"},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"value\":1,"
     "\"currency\":\"EUR\",\"note\":5}",
     "note: must be a string"},
    {"{\"type\":\"conversion\",\"id\":\"k1\",\"conversation_id\":\"cv1\",\"value\":1,"
     "\"currency\":\"EUR\",\"channel\":\"sms\"}",
     "unknown key: channel"},
    {"{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1
     ",\"currency\":\"EUR\"}",
     "currency: not allowed in a broadcast job"},
};

static void every_bad_job_gets_its_reason(void **state)
{
    (void)state;
    int wrong = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        job j;
        char reason[JOB_REASON_MAX];
        int rc = job_parse(bad[i].job, strlen(bad[i].job), &rules, &j, reason, sizeof(reason));
        if (rc != -1 || strcmp(reason, bad[i].reason) != 0) {
            fprintf(stderr, "row %zu: %s\n  want: %s\n  got:  %s (rc %d)\n", i, bad[i].job,
                    bad[i].reason, rc == 0 ? "(accepted)" : reason, rc);
            if (rc == 0)
                job_free(&j);
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
    assert_true(sizeof(bad) / sizeof(bad[0]) >= 30);
}

static void oversized_job_is_rejected_before_parsing(void **state)
{
    (void)state;
    char big[5000];
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(big, sizeof(big), &rules, &j, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "job too large: 5000 bytes (max 4096)");
}

static void channel_is_folded_into_channels_and_addresses_normalized(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"broadcast\",\"id\":\"bf-2026\",\"channel\":\"sms\","
                    "\"message\":{\"text\":\"Hi {{name}}\"},\"recipients\":[{\"to\":\"+1 555 "
                    "000-0001\",\"vars\":{\"name\":\"Ana\",\"n\":3,\"vip\":true}}]}";
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason)), 0);
    assert_int_equal(j.type, JOB_BROADCAST);
    assert_string_equal(j.id, "bf-2026");
    assert_int_equal(j.n_channels, 1);
    assert_string_equal(j.channels[0], "sms");
    assert_null(json_object_get(j.spec, "channel"));
    json_t *r = json_array_get(json_object_get(j.spec, "recipients"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "to"), "sms")),
                        "+15550000001");
    json_t *vars = json_object_get(r, "vars");
    assert_string_equal(json_string_value(json_object_get(vars, "n")), "3");
    assert_string_equal(json_string_value(json_object_get(vars, "vip")), "true");
    job_free(&j);
}

static void fallback_after_s_is_kept_in_the_spec(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"broadcast\",\"id\":\"f\",\"channels\":[\"sms\",\"mms\"]," OK_MSG
                    "," R1 ",\"fallback_after_s\":604800}";
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason)), 0);
    assert_int_equal(json_integer_value(json_object_get(j.spec, "fallback_after_s")), 604800);
    job_free(&j);
}

/* the send-template example of Meta's Cloud API documentation (image
 * header, body text, currency and date_time, two quick-reply buttons) with
 * {{vars}} in its strings, and a media message */
static void template_components_and_media_are_taken_as_given(void **state)
{
    (void)state;
    const char *s =
        "{\"type\":\"broadcast\",\"id\":\"t1\",\"channel\":\"whatsapp\",\"message\":{"
        "\"template\":{\"name\":\"spring_sale\",\"language\":\"en_US\",\"components\":["
        "{\"type\":\"header\",\"parameters\":[{\"type\":\"image\",\"image\":{\"link\":"
        "\"https://cdn.example.com/{{sku}}.png\"}}]},"
        "{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"{{name}}\","
        "\"parameter_name\":\"first_name\"},{\"type\":\"currency\",\"currency\":{"
        "\"fallback_value\":\"$100.99\",\"code\":\"USD\",\"amount_1000\":100990}},"
        "{\"type\":\"date_time\",\"date_time\":{\"fallback_value\":\"February 25, 1977\"}}]},"
        "{\"type\":\"button\",\"sub_type\":\"quick_reply\",\"index\":\"0\",\"parameters\":"
        "[{\"type\":\"payload\",\"payload\":\"more-{{sku}}\"}]},"
        "{\"type\":\"button\",\"sub_type\":\"url\",\"index\":1,\"parameters\":"
        "[{\"type\":\"text\",\"text\":\"{{sku}}\"}]},"
        "{\"type\":\"button\",\"sub_type\":\"copy_code\",\"index\":2,\"parameters\":"
        "[{\"type\":\"coupon_code\",\"coupon_code\":\"SPRING25\"}]}]}},"
        "\"recipients\":[{\"to\":\"+15550000001\",\"vars\":{\"name\":\"Ana\",\"sku\":"
        "\"A1\"}}]}";
    job j;
    char reason[JOB_REASON_MAX];
    int rc = job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason));
    if (rc)
        print_error("%s\n", reason);
    assert_int_equal(rc, 0);
    json_t *c = json_object_get(json_object_get(json_object_get(j.spec, "message"), "template"),
                                "components");
    assert_int_equal(json_array_size(c), 5);
    job_free(&j);
    s = "{\"type\":\"message\",\"id\":\"m1\",\"channel\":\"whatsapp\",\"to\":\"+15550000001\","
        "\"message\":{\"media\":{\"type\":\"document\",\"url\":\"https://x/{{n}}.pdf\","
        "\"filename\":\"invoice-{{n}}.pdf\",\"caption\":\"Your invoice\"}}}";
    rc = job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason));
    if (rc)
        print_error("%s\n", reason);
    assert_int_equal(rc, 0);
    job_free(&j);
}

static void per_channel_addresses_are_normalized_per_channel(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"broadcast\",\"id\":\"x\",\"channels\":[\"whatsapp\",\"email\"],"
                    "\"message\":{\"text\":\"t\",\"template\":{\"name\":\"n\"}},"
                    "\"recipients\":[{\"to\":{\"whatsapp\":"
                    "\"0015550000001\",\"email\":\"Ana@Example.COM\"}}]}";
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason)), 0);
    json_t *to = json_object_get(json_array_get(json_object_get(j.spec, "recipients"), 0), "to");
    assert_string_equal(json_string_value(json_object_get(to, "whatsapp")), "+15550000001");
    assert_string_equal(json_string_value(json_object_get(to, "email")), "Ana@example.com");
    job_free(&j);
}

static void message_shorthand_becomes_one_recipient(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"message\",\"id\":\"m1\",\"channel\":\"whatsapp\","
                    "\"message\":{\"text\":\"Hello {{name}}\"},\"to\":\"+15550000001\","
                    "\"vars\":{\"name\":\"Ana\"}}";
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason)), 0);
    assert_int_equal(j.type, JOB_MESSAGE);
    assert_int_equal(j.n_inline, 1);
    assert_null(json_object_get(j.spec, "to"));
    json_t *r = json_array_get(json_object_get(j.spec, "recipients"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "vars"), "name")),
                        "Ana");
    job_free(&j);
}

/* A conversation message is a message job with conversation_id, kept in
 * the spec as given (outcome.lua and inbound.lua find the conversation by
 * the job id; the field says what the job is). */
static void conversation_message_keeps_its_conversation_id(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"message\",\"id\":\"cv12-1\",\"channel\":\"whatsapp\","
                    "\"message\":{\"text\":\"On its way\",\"template\":{\"name\":\"f\"}},"
                    "\"to\":\"+15550000001\",\"conversation_id\":\"cv12\"}";
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason)), 0);
    assert_int_equal(j.type, JOB_MESSAGE);
    assert_int_equal(j.n_inline, 1);
    assert_string_equal(json_string_value(json_object_get(j.spec, "conversation_id")), "cv12");
    job_free(&j);
}

/* The window is decided at intake for broadcasts (a template on every
 * channel that has one) and at send time for message jobs (text and
 * template both allowed; text only is taken and decided per contact). */
static void window_channels_take_templates_and_message_jobs(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{"
        "\"template\":{\"name\":\"promo\"}}," R1 "}",
        /* text for sms, the template for whatsapp */
        "{\"type\":\"broadcast\",\"id\":\"a\",\"channels\":[\"whatsapp\",\"sms\"],\"message\":{"
        "\"text\":\"hi\",\"template\":{\"name\":\"promo\"}}," R1 "}",
        "{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"sms\"," OK_MSG "," R1 "}",
        "{\"type\":\"message\",\"id\":\"a\",\"channel\":\"whatsapp\"," OK_MSG
        ",\"to\":\"+15550000001\"}",
        ("{\"type\":\"message\",\"id\":\"a\",\"channel\":\"whatsapp\",\"message\":{"
         "\"text\":\"hi\",\"template\":{\"name\":\"promo\"}},\"to\":\"+15550000001\"}"),
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        job j;
        char reason[JOB_REASON_MAX];
        int rc = job_parse(good[i], strlen(good[i]), &rules, &j, reason, sizeof(reason));
        if (rc)
            print_error("%s\n  %s\n", good[i], reason);
        assert_int_equal(rc, 0);
        job_free(&j);
    }
    /* rules that know no window (the CLI without --config): not checked */
    job_rules none = rules;
    none.channel_window_s = NULL;
    job j;
    char reason[JOB_REASON_MAX];
    const char *s =
        "{\"type\":\"broadcast\",\"id\":\"a\",\"channel\":\"whatsapp\"," OK_MSG "," R1 "}";
    assert_int_equal(job_parse(s, strlen(s), &none, &j, reason, sizeof(reason)), 0);
    job_free(&j);
}

/* What a message job sends on a channel with a window, per contact */
static void window_choice_by_the_contacts_last_inbound_message(void **state)
{
    (void)state;
    const long long now = 1764500000000LL, day = 86400000LL, h = 3600000LL;
    /* text and template: the text inside the window, the template outside */
    assert_int_equal(job_window_choice(1, 1, day, now - h, now), JOB_SEND_FREE_FORM);
    assert_int_equal(job_window_choice(1, 1, day, now - day + 1, now), JOB_SEND_FREE_FORM);
    assert_int_equal(job_window_choice(1, 1, day, now - day, now), JOB_SEND_TEMPLATE);
    assert_int_equal(job_window_choice(1, 1, day, now - 25 * h, now), JOB_SEND_TEMPLATE);
    assert_int_equal(job_window_choice(1, 1, day, 0, now), JOB_SEND_TEMPLATE);
    /* text only: outside the window (or never heard from) nothing is sent */
    assert_int_equal(job_window_choice(1, 0, day, now - h, now), JOB_SEND_FREE_FORM);
    assert_int_equal(job_window_choice(1, 0, day, now - 25 * h, now), JOB_OUTSIDE_WINDOW);
    assert_int_equal(job_window_choice(1, 0, day, 0, now), JOB_OUTSIDE_WINDOW);
    /* a clock a little behind the inbound time: inside */
    assert_int_equal(job_window_choice(1, 0, day, now + 500, now), JOB_SEND_FREE_FORM);
    /* template only: always the template */
    assert_int_equal(job_window_choice(0, 1, day, 0, now), JOB_SEND_TEMPLATE);
    assert_int_equal(job_window_choice(0, 1, day, now - h, now), JOB_SEND_TEMPLATE);
    /* no window on the channel: the free-form content, whoever the contact */
    assert_int_equal(job_window_choice(1, 0, 0, 0, now), JOB_SEND_FREE_FORM);
    assert_int_equal(job_window_choice(1, 1, 0, 0, now), JOB_SEND_FREE_FORM);
}

static void control_jobs_need_only_type_and_id(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"cancel\",\"id\":\"bf-2026\"}";
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason)), 0);
    assert_int_equal(j.type, JOB_CANCEL);
    assert_string_equal(j.id, "bf-2026");
    job_free(&j);
    /* an id with ':' (a campaign created before the rule) is named, not
     * refused: the control script answers unknown_campaign */
    const char *c = "{\"type\":\"pause\",\"id\":\"old:one\"}";
    assert_int_equal(job_parse(c, strlen(c), &rules, &j, reason, sizeof(reason)), 0);
    assert_int_equal(j.type, JOB_PAUSE);
    assert_string_equal(j.id, "old:one");
    job_free(&j);
    assert_true(job_valid_id("old:one", 7));
    assert_false(job_valid_id("a b", 3));
}

static void recipients_list_and_schedule_and_rate_are_read(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"broadcast\",\"id\":\"big\",\"channel\":\"sms\",\"message\":{"
                    "\"template\":{\"name\":\"promo\",\"params\":[\"{{name}}\"]}},"
                    "\"recipients_list\":\"crm:segment:vip\",\"send_at\":\"2026-11-27T10:00:00+01:"
                    "00\",\"rate_per_s\":50}";
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason)), 0);
    assert_string_equal(j.recipients_list, "crm:segment:vip");
    assert_true(j.send_at_ms == 1795770000000LL);
    assert_true(j.rate_per_s == 50);
    json_t *t = json_object_get(json_object_get(j.spec, "message"), "template");
    assert_string_equal(json_string_value(json_object_get(t, "language")), "en_US");
    job_free(&j);
}

static void iso_times_parse_with_fractions_and_offsets(void **state)
{
    (void)state;
    assert_true(job_parse_time_ms("1970-01-01T00:00:01Z") == 1000);
    assert_true(job_parse_time_ms("1970-01-01T00:00:01.25Z") == 1250);
    assert_true(job_parse_time_ms("1970-01-01T01:00:00+01:00") == 0);
    assert_true(job_parse_time_ms("2026-11-27") == -1);
    assert_true(job_parse_time_ms("2026-13-27T00:00:00Z") == -1);
    assert_true(job_parse_time_ms("2026-11-27T00:00:00") == -1);
    assert_true(job_parse_time_ms("2024-02-29T00:00:00Z") == 1709164800000LL);
    assert_true(job_parse_time_ms("9999-12-31T23:59:59.999Z") == 253402300799999LL);
    assert_true(job_parse_time_ms("1970-01-01T00:00:00+00:01") == -1); /* before the epoch */
    /* issue 16: fields out of range, signs, spaces and huge numbers are refused, not
     * normalized by timegm or overflowed */
    const char *bad[] = {"2026-11-27T-1:00:00Z",       "2026-11-27T00:-1:00Z",
                         "2026-11-27T00:00:-1Z",       "2026--1-27T00:00:00Z",
                         "2026-11--1T00:00:00Z",       "-999-11-27T00:00:00Z",
                         "+2026-11-27T00:00:00Z",      " 2026-11-27T00:00:00Z",
                         "2026- 1-27T00:00:00Z",       "2026-11-27T24:00:00Z",
                         "2026-11-27T23:60:00Z",       "2026-11-27T23:59:61Z",
                         "2026-02-29T00:00:00Z",       "2026-04-31T00:00:00Z",
                         "2026-11-00T00:00:00Z",       "2026-00-27T00:00:00Z",
                         "1969-12-31T23:59:59Z",       "99999-11-27T00:00:00Z",
                         "2026-11-27T00:00:00+-1:00",  "2026-11-27T00:00:00+24:00",
                         "2026-11-27T00:00:00+01:60",  "2026-11-27T00:00:00+0100",
                         "2026-11-27T00:00:00+01:00x", "2026-11-27T00:00:00.Z",
                         "2026-11-27T00:00:00+1",      "2026-11-27T00:00:00Zjunk",
                         "2026-11-27t00:00:00Z",       ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        if (job_parse_time_ms(bad[i]) != -1)
            fail_msg("send_at \"%s\" gave %lld", bad[i], job_parse_time_ms(bad[i]));
    /* any number of fraction digits: the first three count */
    assert_true(job_parse_time_ms("2026-11-27T00:00:00.99999999999999999999999999999Z") ==
                1795737600999LL);
    assert_true(job_parse_time_ms(NULL) == -1);
}

static void quiet_hours_times_are_strict_hh_mm(void **state)
{
    (void)state;
    assert_int_equal(job_parse_hhmm("00:00"), 0);
    assert_int_equal(job_parse_hhmm("23:59"), 1439);
    assert_int_equal(job_parse_hhmm("08:30"), 510);
    const char *bad[] = {"-1:00", "24:00", "23:60", "8:00", "08:0",  "08:000", " 8:00",
                         "+8:00", "08-00", "0800",  "",     "ab:cd", "08:5x",  "08:00\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        if (job_parse_hhmm(bad[i]) != -1)
            fail_msg("quiet hours \"%s\" gave %d", bad[i], job_parse_hhmm(bad[i]));
    assert_int_equal(job_parse_hhmm(NULL), -1);
}

static void list_entries_are_checked_with_the_same_rules(void **state)
{
    (void)state;
    const char *const chs[] = {"sms"};
    char reason[JOB_REASON_MAX];
    json_error_t je;
    json_t *good = json_loads("{\"to\":\"+15550000001\",\"vars\":{\"n\":2}}", 0, &je);
    json_t *badr = json_loads("{\"to\":\"nope\"}", 0, &je);
    assert_int_equal(job_recipient_check(good, &rules, chs, 1, reason, sizeof(reason)), 0);
    assert_int_equal(job_recipient_check(badr, &rules, chs, 1, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "recipient.to: not an E.164 number");
    json_decref(good);
    json_decref(badr);
}

static void contact_id_is_kept_in_the_normalized_recipient(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"broadcast\",\"id\":\"c\",\"channels\":[\"sms\",\"email\"],"
                    "\"message\":{\"text\":\"hi\"},\"recipients\":[{\"to\":{\"sms\":"
                    "\"+15550000001\",\"email\":\"a@x.org\"},\"contact_id\":\"crm:42@acme+1\"},"
                    "{\"to\":{\"sms\":\"+15550000002\",\"email\":\"b@x.org\"}}]}";
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason)), 0);
    json_t *rs = json_object_get(j.spec, "recipients");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rs, 0), "contact_id")),
                        "crm:42@acme+1");
    assert_null(json_object_get(json_array_get(rs, 1), "contact_id"));
    job_free(&j);
    /* a list entry too, and the length limit */
    const char *const chs[] = {"sms"};
    json_error_t je;
    json_t *good = json_loads("{\"to\":\"+15550000001\",\"contact_id\":\"c-1\"}", 0, &je);
    assert_int_equal(job_recipient_check(good, &rules, chs, 1, reason, sizeof(reason)), 0);
    json_decref(good);
    char id[200];
    memset(id, 'a', sizeof(id));
    assert_true(job_valid_contact_id(id, 128));
    assert_false(job_valid_contact_id(id, 129));
    assert_false(job_valid_contact_id("a/b", 3));
    assert_false(job_valid_contact_id("", 0));
}

static void conversions_are_counted_exactly(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"conversion\",\"id\":\"order-9\",\"conversation_id\":\"cv12\","
                    "\"value\":19.99,\"currency\":\"EUR\",\"note\":\"first order\"}";
    job j;
    char reason[JOB_REASON_MAX];
    assert_int_equal(job_parse(s, strlen(s), &rules, &j, reason, sizeof(reason)), 0);
    assert_int_equal(j.type, JOB_CONVERSION);
    assert_string_equal(j.id, "order-9");
    assert_string_equal(j.conversion.conversation_id, "cv12");
    assert_string_equal(j.conversion.key, "order-9");
    assert_string_equal(j.conversion.note, "first order");
    assert_int_equal(j.conversion.milli, 19990);
    assert_string_equal(j.conversion.currency, "EUR");
    assert_string_equal(j.conversion.value, "19.99");
    job_free(&j);
    /* the API's body: no type or conversation_id, id optional */
    struct {
        const char *body;
        long long milli;
        const char *text;
    } ok[] = {
        {"{\"value\":0,\"currency\":\"USD\"}", 0, "0.00"},
        {"{\"value\":12.5,\"currency\":\"EUR\"}", 12500, "12.50"},
        {"{\"value\":0.1,\"currency\":\"EUR\"}", 100, "0.10"},
        {"{\"value\":1.005,\"currency\":\"BHD\"}", 1005, "1.005"},
        {"{\"value\":1000000000000,\"currency\":\"JPY\",\"id\":\"x\"}", 1000000000000000LL,
         "1000000000000.00"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        json_error_t je;
        json_t *o = json_loads(ok[i].body, 0, &je);
        job_conversion cv;
        assert_int_equal(job_conversion_check(o, 0, &cv, reason, sizeof(reason)), 0);
        assert_int_equal(cv.milli, ok[i].milli);
        assert_string_equal(cv.value, ok[i].text);
        json_decref(o);
    }
    json_error_t je;
    json_t *o = json_loads("{\"value\":1,\"currency\":\"EUR\",\"type\":\"conversion\"}", 0, &je);
    job_conversion cv;
    assert_int_equal(job_conversion_check(o, 0, &cv, reason, sizeof(reason)), -1);
    assert_string_equal(reason, "unknown key: type");
    json_decref(o);
    char buf[32];
    job_format_milli(12345, buf, sizeof(buf));
    assert_string_equal(buf, "12.345");
    job_format_milli(7, buf, sizeof(buf));
    assert_string_equal(buf, "0.007");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_bad_job_gets_its_reason),
        cmocka_unit_test(oversized_job_is_rejected_before_parsing),
        cmocka_unit_test(channel_is_folded_into_channels_and_addresses_normalized),
        cmocka_unit_test(fallback_after_s_is_kept_in_the_spec),
        cmocka_unit_test(template_components_and_media_are_taken_as_given),
        cmocka_unit_test(per_channel_addresses_are_normalized_per_channel),
        cmocka_unit_test(message_shorthand_becomes_one_recipient),
        cmocka_unit_test(conversation_message_keeps_its_conversation_id),
        cmocka_unit_test(window_channels_take_templates_and_message_jobs),
        cmocka_unit_test(window_choice_by_the_contacts_last_inbound_message),
        cmocka_unit_test(control_jobs_need_only_type_and_id),
        cmocka_unit_test(recipients_list_and_schedule_and_rate_are_read),
        cmocka_unit_test(iso_times_parse_with_fractions_and_offsets),
        cmocka_unit_test(quiet_hours_times_are_strict_hh_mm),
        cmocka_unit_test(list_entries_are_checked_with_the_same_rules),
        cmocka_unit_test(contact_id_is_kept_in_the_normalized_recipient),
        cmocka_unit_test(conversions_are_counted_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
