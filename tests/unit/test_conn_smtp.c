/* The SMTP connector without a network: the RFC 5322 message parsed back,
 * header injection refused, reply codes, inbound replies and one-click
 * unsubscribes. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>

#include "mock_host.h"

extern const oc_connector oc_connector_smtp;
#define C (&oc_connector_smtp)

static const char *const conf[] = {"url",
                                   "smtp://127.0.0.1:2525",
                                   "tls",
                                   "none",
                                   "from",
                                   "Acme News <news@Acme.example>",
                                   "reply_to",
                                   "reply+{{token}}@acme.example",
                                   "unsubscribe_url",
                                   "https://acme.example/u?t={{token}}",
                                   "unsubscribe_mailto",
                                   "unsub@acme.example",
                                   "inbound_unsigned",
                                   "true",
                                   NULL};

static int setup(void **state)
{
    char err[256];
    *state = mock_init(C, conf, err, sizeof(err));
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    C->free(*state);
    return 0;
}

static const char *hdr(const char *msg, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = msg; p && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
        if (!strncmp(p, "\r\n", 2))
            break; /* end of headers */
        if (!strncmp(p, name, n) && p[n] == ':') {
            const char *e = strstr(p, "\r\n");
            while (e && e[2] == ' ') /* folded */
                e = strstr(e + 2, "\r\n");
            snprintf(out, len, "%.*s", (int)(e - p - n - 2), p + n + 2);
            return out;
        }
    }
    return NULL;
}

static void message_has_every_header_and_crlf_lines(void **state)
{
    oc_message m = {.campaign = "bf",
                    .message_id = "bf.7",
                    .to = "ana@example.com",
                    .subject = "Black Friday",
                    .text = "Hi Ana,\n30% off.",
                    .html = "<p>Hi</p>"};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_int_equal(r.kind, OC_REQ_SMTP);
    assert_string_equal(r.url, "smtp://127.0.0.1:2525");
    assert_int_equal(r.smtp_tls, 0);
    assert_string_equal(r.mail_from, "<news@Acme.example>");
    assert_string_equal(r.mail_rcpt, "<ana@example.com>");
    char v[512];
    const char *msg = r.body.data;
    assert_non_null(hdr(msg, "Date", v, sizeof(v)));
    assert_string_equal(hdr(msg, "Message-ID", v, sizeof(v)), "<bf.7@Acme.example>");
    assert_string_equal(hdr(msg, "From", v, sizeof(v)), "Acme News <news@Acme.example>");
    assert_string_equal(hdr(msg, "To", v, sizeof(v)), "ana@example.com");
    assert_string_equal(hdr(msg, "Subject", v, sizeof(v)), "Black Friday");
    assert_string_equal(hdr(msg, "Reply-To", v, sizeof(v)), "reply+bf.7@acme.example");
    assert_string_equal(
        hdr(msg, "List-Unsubscribe", v, sizeof(v)),
        "<https://acme.example/u?t=bf.7>, <mailto:unsub@acme.example?subject=unsubscribe>");
    assert_string_equal(hdr(msg, "List-Unsubscribe-Post", v, sizeof(v)),
                        "List-Unsubscribe=One-Click");
    assert_string_equal(hdr(msg, "MIME-Version", v, sizeof(v)), "1.0");
    assert_non_null(strstr(msg, "multipart/alternative; boundary="));
    assert_non_null(strstr(msg, "Content-Type: text/plain; charset=UTF-8"));
    assert_non_null(strstr(msg, "Content-Type: text/html; charset=UTF-8"));
    assert_non_null(strstr(msg, "Hi Ana,\r\n30% off."));
    for (const char *p = msg; (p = strchr(p, '\n')); p++)
        assert_true(p > msg && p[-1] == '\r'); /* every LF is part of CRLF */
    oc_request_free(&r);
}

static void non_ascii_subjects_become_encoded_words(void **state)
{
    const char *subject = "Promoção de Black Friday — até 30% de desconto em tudo, só hoje!";
    oc_message m = {.campaign = "bf",
                    .message_id = "bf.1",
                    .to = "ana@example.com",
                    .subject = subject,
                    .text = "x"};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    char v[1024];
    assert_non_null(hdr(r.body.data, "Subject", v, sizeof(v)));
    /* decode every encoded word and compare */
    char decoded[512] = "";
    for (char *w = strstr(v, "=?UTF-8?B?"); w; w = strstr(w, "=?UTF-8?B?")) {
        char *e = strstr(w, "?=");
        assert_non_null(e);
        assert_true(e + 2 - w <= 75);
        unsigned char out[128];
        *e = '\0';
        int n = EVP_DecodeBlock(out, (unsigned char *)w + 10, (int)strlen(w + 10));
        while (n > 0 && strlen(w + 10) >= 2 && w[10 + strlen(w + 10) - 1] == '=' && out[n - 1] == 0)
            n--, w[10 + strlen(w + 10) - 1] = 'x';
        strncat(decoded, (char *)out, (size_t)n);
        w = e + 2;
    }
    assert_string_equal(decoded, subject);
    oc_request_free(&r);
}

/* found by fuzz_smtp: a subject of continuation bytes once looped forever */
static void a_subject_of_invalid_utf8_still_encodes(void **state)
{
    char subject[200];
    memset(subject, 0x80, sizeof(subject) - 1);
    subject[sizeof(subject) - 1] = '\0';
    oc_message m = {.campaign = "bf",
                    .message_id = "bf.1",
                    .to = "ana@example.com",
                    .subject = subject,
                    .text = "x"};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_non_null(strstr(r.body.data, "Subject: =?UTF-8?B?"));
    oc_request_free(&r);
}

static void quoted_printable_keeps_lines_short_and_decodes_back(void **state)
{
    char text[3000];
    memset(text, 0, sizeof(text));
    for (int i = 0; i < 250; i++)
        strcat(text, "é=ü ");
    oc_message m = {.campaign = "bf", .message_id = "bf.1", .to = "ana@example.com", .text = text};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    const char *body = strstr(r.body.data, "\r\n\r\n") + 4;
    /* no line of 998 octets or more; QP lines at most 76 */
    size_t run = 0;
    for (const char *p = body; *p; p++) {
        if (*p == '\r' && p[1] == '\n') {
            assert_true(run <= 76);
            run = 0;
            p++;
        } else {
            run++;
        }
    }
    /* decode */
    char dec[3000];
    size_t k = 0;
    for (const char *p = body; *p && k + 1 < sizeof(dec);) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=') {
            unsigned v;
            sscanf(p + 1, "%2X", &v);
            dec[k++] = (char)v;
            p += 3;
        } else if (p[0] == '\r' && p[1] == '\n') {
            p += 2; /* trailing CRLF of the part */
        } else {
            dec[k++] = *p++;
        }
    }
    dec[k] = '\0';
    assert_string_equal(dec, text);
    oc_request_free(&r);
}

static void recipients_must_be_utf8(void **state)
{
    oc_request r = {0};
    oc_outcome o;
    oc_message m = {.campaign = "u8",
                    .message_id = "u8.1",
                    .to = "jos\xc3\xa9@example.com",
                    .subject = "Hi",
                    .text = "x"};
    /* UTF-8 goes to the transport (SMTPUTF8 is the native client's call) */
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_string_equal(r.mail_rcpt, "<jos\xc3\xa9@example.com>");
    oc_request_free(&r);
    const char *bad[] = {"jos\xe9@example.com",       "a\xc0\xaf@example.com",
                         "a\xed\xa0\x80@example.com", "a\xf4\x90\x80\x80@example.com",
                         "a\xc3@example.com",         "\x80@example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&r, 0, sizeof(r));
        m.to = bad[i];
        assert_int_equal(C->build(*state, &m, &r, &o), -1);
        assert_string_equal(o.reason, "invalid_address");
        assert_int_equal(o.kind, OC_FAILED);
        oc_request_free(&r);
    }
}

static void header_injection_is_refused(void **state)
{
    oc_request r = {0};
    oc_outcome o;
    oc_message m = {.campaign = "bf",
                    .message_id = "bf.1",
                    .to = "ana@example.com",
                    .subject = "Hi\r\nBcc: everyone@example.com",
                    .text = "x"};
    assert_int_equal(C->build(*state, &m, &r, &o), -1);
    assert_string_equal(o.reason, "header_injection");
    oc_request_free(&r);
    m.subject = "fine";
    m.to = "ana@example.com\nBcc: x@y.z";
    assert_int_equal(C->build(*state, &m, &r, &o), -1);
    oc_request_free(&r);
    /* an address past RFC 5321's 254 octets would make a 998+ octet To: line */
    char longto[300];
    memset(longto, 'a', sizeof(longto) - 1);
    longto[sizeof(longto) - 1] = '\0';
    memcpy(longto + 280, "@example.com", 12);
    m.to = longto;
    assert_int_equal(C->build(*state, &m, &r, &o), -1);
    assert_string_equal(o.reason, "invalid_address");
    oc_request_free(&r);
}

static void reply_codes_map_to_outcomes(void **state)
{
    static const struct {
        long code;
        int kind;
        const char *reason;
    } rows[] = {{250, OC_SENT, ""},
                {421, OC_RETRY, "smtp_4xx"},
                {451, OC_RETRY, "smtp_4xx"},
                {550, OC_FAILED, "invalid_recipient"},
                {551, OC_FAILED, "invalid_recipient"},
                {553, OC_FAILED, "invalid_recipient"},
                {552, OC_FAILED, "rejected"},
                {554, OC_FAILED, "rejected"},
                {535, OC_HALT, "auth"},
                {530, OC_HALT, "auth"}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        oc_response resp = mock_response(rows[i].code, "");
        oc_outcome o;
        C->classify(*state, &resp, &o);
        assert_int_equal(o.kind, rows[i].kind);
        assert_string_equal(o.reason, rows[i].reason);
    }
}

/* Enhanced status codes (RFC 3463) in the reply line, as Gmail's SMTP error
 * reference words them: 4.7.x slows the whole connector, RFC 7372's sender
 * authentication failures (5.7.20-5.7.27) and 5.7.8 halt it, 5.1.x about
 * the recipient's mailbox invalid_mailbox, about our sender (5.1.7) rejected;
 * the server's words are the detail */
static void enhanced_status_codes_decide(void **state)
{
    static const struct {
        long code;
        const char *line;
        int kind, throttle;
        const char *reason;
    } rows[] = {
        {421,
         "421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating "
         "from your IP address.",
         OC_RETRY, 1, "throttled"},
        {450, "450 4.2.1 The user you are trying to contact is receiving mail too quickly.",
         OC_RETRY, 0, "smtp_4xx"},
        {550,
         "550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail "
         "requires all senders to authenticate with either SPF or DKIM.",
         OC_HALT, 0, "sender_authentication"},
        {550, "550 5.7.23 The message was rejected because of Sender Policy Framework violation.",
         OC_HALT, 0, "sender_authentication"},
        {535, "535 5.7.8 Username and Password not accepted.", OC_HALT, 0, "auth"},
        {550, "550 5.1.1 The email account that you tried to reach does not exist.", OC_FAILED, 0,
         "invalid_mailbox"},
        {554, "554 5.1.10 Recipient address has null MX", OC_FAILED, 0, "invalid_mailbox"},
        {553, "553 5.1.7 The sender address is invalid.", OC_FAILED, 0, "rejected"},
        {550, "550 5.7.1 Message rejected due to content restrictions", OC_FAILED, 0,
         "invalid_recipient"},
        {554, "554 5.7.1 Message rejected due to content restrictions", OC_FAILED, 0, "rejected"},
        {550, "550 Requested action not taken: mailbox unavailable", OC_FAILED, 0,
         "invalid_recipient"},
        {550, "550 5.1 malformed", OC_FAILED, 0, "invalid_recipient"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        oc_response resp = mock_response(rows[i].code, rows[i].line);
        oc_outcome o;
        C->classify(*state, &resp, &o);
        assert_int_equal(o.kind, rows[i].kind);
        assert_int_equal(o.throttle, rows[i].throttle);
        assert_string_equal(o.reason, rows[i].reason);
        assert_true(!strncmp(o.detail, rows[i].line, sizeof(o.detail) - 1));
    }
}

static oc_inbound_result request(void *inst, const char *method, const char *query,
                                 const char *ctype, const char *body, mock_events *ev)
{
    const char *const kv[] = {"Content-Type", ctype, NULL};
    mock_headers h = {ctype ? kv : NULL};
    oc_http_request req = {.method = method,
                           .path = "/webhooks/mail",
                           .query = query,
                           .body = body,
                           .body_len = strlen(body),
                           .header = mock_header,
                           .header_ctx = &h};
    oc_inbound_result res;
    memset(&res, 0, sizeof(res));
    C->inbound(inst, &req, &res, mock_emit, ev);
    return res;
}

static oc_inbound_result post(void *inst, const char *query, const char *body, mock_events *ev)
{
    mock_headers h = {NULL};
    oc_http_request req = {.method = "POST",
                           .path = "/webhooks/mail",
                           .query = query,
                           .body = body,
                           .body_len = strlen(body),
                           .header = mock_header,
                           .header_ctx = &h};
    oc_inbound_result res;
    memset(&res, 0, sizeof(res));
    C->inbound(inst, &req, &res, mock_emit, ev);
    return res;
}

static void inbound_reply_is_threaded_by_in_reply_to_or_token(void **state)
{
    mock_events ev = {0};
    oc_inbound_result r = post(*state, "",
                               "{\"from\":\"Ana <Ana@Example.COM>\",\"to\":\"news@acme.example\","
                               "\"text\":\"yes!\",\"message_id\":\"<abc@mail.example>\","
                               "\"in_reply_to\":\"<bf.7@Acme.example>\"}",
                               &ev);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    r = post(*state, "",
             "{\"from\":\"bob@example.com\",\"to\":\"reply+bf.8@acme.example\",\"text\":\"hi\"}",
             &ev);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 2);
    assert_string_equal(ev.ev[0].from, "Ana@example.com");
    assert_string_equal(ev.ev[0].in_reply_to, "bf.7@Acme.example");
    assert_string_equal(ev.ev[0].provider_id, "abc@mail.example");
    assert_string_equal(ev.ev[1].in_reply_to, "token:bf.8");
    mock_events_free(&ev);
}

static void one_click_unsubscribe_is_an_unsubscribe_event(void **state)
{
    mock_events ev = {0};
    oc_inbound_result r = post(*state, "t=bf.7", "List-Unsubscribe=One-Click", &ev);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].type, OC_EV_UNSUBSCRIBE);
    assert_string_equal(ev.ev[0].provider_id, "token:bf.7");
    mock_events_free(&ev);
    r = post(*state, "", "List-Unsubscribe=One-Click", &ev);
    assert_int_equal(r.status, 400);
    r = post(*state, "", "{not json", &ev);
    assert_int_equal(r.status, 400);
    assert_int_equal(ev.n, 0);
}

/* ---- the signed inbound-parse post: HMAC-SHA256(key, timestamp + token) */

static const char *const signed_conf[] = {"url",
                                          "smtp://127.0.0.1:2525",
                                          "tls",
                                          "none",
                                          "from",
                                          "news@acme.example",
                                          "inbound_signing_key",
                                          "key-3ax6xnjp29jd6fds4gc373sgvjxteol0",
                                          "inbound_max_age_s",
                                          "300",
                                          NULL};

static int setup_signed(void **state)
{
    char err[256];
    *state = mock_init(C, signed_conf, err, sizeof(err));
    return *state ? 0 : -1;
}

static void sign(const char *ts, const char *token, char hex[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    char d[256];
    snprintf(d, sizeof(d), "%s%s", ts, token);
    HMAC(EVP_sha256(), signed_conf[7], (int)strlen(signed_conf[7]), (unsigned char *)d, strlen(d),
         mac, &ml);
    for (unsigned i = 0; i < ml; i++)
        sprintf(hex + 2 * i, "%02x", mac[i]);
}

/* a signed post (sig NULL: signed right) from `from` with text */
static oc_inbound_result signed_post(void *inst, long long ts, const char *token, const char *sig,
                                     const char *from, const char *text, mock_events *ev)
{
    char t[32], hex[65], body[1024];
    snprintf(t, sizeof(t), "%lld", ts);
    sign(t, token, hex);
    snprintf(body, sizeof(body),
             "{\"timestamp\":\"%s\",\"token\":\"%s\",\"signature\":\"%s\",\"from\":\"%s\","
             "\"to\":\"news@acme.example\",\"text\":\"%s\"}",
             t, token, sig ? sig : hex, from, text);
    return post(inst, "", body, ev);
}

/* A Mailgun route's form post (urlencoded, and multipart as Mailgun sends
 * it with attachments), signed as Mailgun signs (HMAC-SHA256 of timestamp
 * and token). */
static void mailgun_route_forms_are_taken(void **state)
{
    mock_events ev = {0};
    long long now = (long long)time(NULL);
    char t[32], hex[65], body[2048];
    snprintf(t, sizeof(t), "%lld", now);
    const char *tok = "2b90a03befc0b98ae2b641b0080850cada918a2d2f670e0141";
    sign(t, tok, hex);
    snprintf(body, sizeof(body),
             "timestamp=%s&token=%s&signature=%s&recipient=reply%%2Bbf.8%%40acme.example&"
             "sender=bob%%40example.com&from=Bob+Lee+%%3Cbob%%40example.com%%3E&subject=Re%%3A+Hi&"
             "body-plain=Yes+please%%0A%%3E+quoted&stripped-text=Yes+please&"
             "Message-Id=%%3Cm1%%40mail.example.com%%3E&In-Reply-To=%%3Cbf.7%%40acme.example%%3E",
             t, tok, hex);
    oc_inbound_result r =
        request(*state, "POST", "", "application/x-www-form-urlencoded", body, &ev);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.replay_key, tok);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.ev[0].from, "bob@example.com");
    assert_string_equal(ev.ev[0].text, "Yes please");
    assert_string_equal(ev.ev[0].provider_id, "m1@mail.example.com");
    assert_string_equal(ev.ev[0].in_reply_to, "bf.7@acme.example");
    /* multipart, an attachment skipped, the In-Reply-To only in message-headers */
    snprintf(body, sizeof(body),
             "--B0\r\nContent-Disposition: form-data; name=\"timestamp\"\r\n\r\n%s\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n%sX\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"signature\"\r\n\r\n%s\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nCy <cy@example.com>\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"recipient\"\r\n\r\n"
             "news@acme.example\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"body-plain\"\r\n\r\nOl\xc3\xa1\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"message-headers\"\r\n\r\n"
             "[[\"In-Reply-To\", \"<bf.9@acme.example>\"], [\"Message-Id\", \"<m2@x>\"]]\r\n"
             "--B0\r\nContent-Disposition: form-data; name=\"attachment-1\"; filename=\"a.txt\"\r\n"
             "Content-Type: text/plain\r\n\r\nfrom=eve@example.com\r\n--B0--\r\n",
             t, tok, "0000000000000000000000000000000000000000000000000000000000000000");
    r = request(*state, "POST", "", "multipart/form-data; boundary=B0", body, &ev);
    assert_int_equal(r.status, 401); /* the signature is wrong: nothing taken */
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 1);
    char tok2[64], hex2[65];
    snprintf(tok2, sizeof(tok2), "%sX", tok);
    sign(t, tok2, hex2);
    char *sigat = strstr(body, "0000000000000000");
    memcpy(sigat, hex2, 64);
    r = request(*state, "POST", "", "multipart/form-data; boundary=B0", body, &ev);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 2);
    assert_string_equal(ev.ev[1].from, "cy@example.com");
    assert_string_equal(ev.ev[1].text, "Ol\xc3\xa1");
    assert_string_equal(ev.ev[1].in_reply_to, "bf.9@acme.example");
    mock_events_free(&ev);
}

/* Postmark's PascalCase JSON (their documented example's fields), with the
 * HTTP basic auth Postmark sends for https://USER:PASSWORD@host/... */
static void postmark_inbound_with_basic_auth(void **state)
{
    (void)state;
    char err[256];
    const char *const kv[] = {"url",
                              "smtp://127.0.0.1:2525",
                              "from",
                              "news@acme.example",
                              "inbound_basic_auth",
                              "pm:s3cret-pass",
                              NULL};
    void *inst = mock_init(C, kv, err, sizeof(err));
    assert_non_null(inst);
    static const char body[] =
        "{\"FromName\":\"Postmarkapp Support\",\"MessageStream\":\"inbound\","
        "\"From\":\"support@postmarkapp.com\",\"FromFull\":{\"Email\":"
        "\"support@postmarkapp.com\",\"Name\":\"Postmarkapp Support\",\"MailboxHash\":\"\"},"
        "\"To\":\"\\\"Firstname Lastname\\\" <yourhash+SampleHash@inbound.postmarkapp.com>\","
        "\"ToFull\":[{\"Email\":\"yourhash+SampleHash@inbound.postmarkapp.com\",\"Name\":"
        "\"Firstname Lastname\",\"MailboxHash\":\"SampleHash\"}],\"OriginalRecipient\":"
        "\"yourhash+SampleHash@inbound.postmarkapp.com\",\"Subject\":\"Test subject\","
        "\"MessageID\":\"73e6d360-66eb-11e1-8e72-a8904824019b\",\"ReplyTo\":"
        "\"replyto@example.com\",\"MailboxHash\":\"SampleHash\",\"Date\":"
        "\"Fri, 1 Aug 2014 16:45:32 -04:00\",\"TextBody\":\"This is a test text body.\","
        "\"HtmlBody\":\"<html><body><p>This is a test html body.</p></body></html>\","
        "\"StrippedTextReply\":\"This is the reply text\",\"Tag\":\"TestTag\",\"Headers\":"
        "[{\"Name\":\"X-Spam-Status\",\"Value\":\"No\"},{\"Name\":\"In-Reply-To\","
        "\"Value\":\"<bf.7@acme.example>\"},{\"Name\":\"Message-ID\",\"Value\":"
        "\"<CAE@mail.gmail.com>\"}],\"Attachments\":[]}";
    mock_events ev = {0};
    const char *good[] = {"Content-Type", "application/json", "Authorization",
                          "Basic cG06czNjcmV0LXBhc3M=", NULL}; /* pm:s3cret-pass */
    const char *bad[] = {"Content-Type", "application/json", "Authorization",
                         "Basic cG06d3Jvbmc=", NULL}; /* pm:wrong */
    const char *none[] = {"Content-Type", "application/json", NULL};
    const char *const *hs[] = {bad, none, good};
    int want[] = {401, 401, 200};
    for (int i = 0; i < 3; i++) {
        mock_headers h = {hs[i]};
        oc_http_request req = {.method = "POST",
                               .path = "/webhooks/mail",
                               .query = "",
                               .body = body,
                               .body_len = strlen(body),
                               .header = mock_header,
                               .header_ctx = &h};
        oc_inbound_result res;
        memset(&res, 0, sizeof(res));
        C->inbound(inst, &req, &res, mock_emit, &ev);
        assert_int_equal(res.status, want[i]);
        oc_buf_free(&res.body);
    }
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.ev[0].from, "support@postmarkapp.com");
    assert_string_equal(ev.ev[0].text, "This is the reply text");
    assert_string_equal(ev.ev[0].provider_id, "CAE@mail.gmail.com");
    assert_string_equal(ev.ev[0].in_reply_to, "bf.7@acme.example");
    mock_events_free(&ev);
    C->free(inst);
}

static void signed_inbound_is_taken_and_reports_its_token(void **state)
{
    mock_events ev = {0};
    long long now = (long long)time(NULL);
    const char *tok = "c2f3e1b0a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9";
    oc_inbound_result r = signed_post(*state, now, tok, NULL, "ana@example.com", "yes", &ev);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.replay_key, tok);
    /* remembered as long as the timestamp is fresh: max age + 1 s */
    assert_in_range(r.replay_ttl_s, 300, 302);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.ev[0].from, "ana@example.com");
    /* the same token again: the connector cannot know, the host refuses
     * it by the replay key; the key is the same whatever the body says */
    r = signed_post(*state, now, tok, NULL, "eve@example.com", "STOP", &ev);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.replay_key, tok);
    oc_buf_free(&r.body);
    /* a timestamp 100 s ahead (clock skew) is fresh: remembered longer */
    r = signed_post(*state, now + 100, "tok-ahead", NULL, "ana@example.com", "hi", &ev);
    assert_int_equal(r.status, 200);
    assert_in_range(r.replay_ttl_s, 400, 402);
    oc_buf_free(&r.body);
    /* as a JSON number too */
    char t[32], hex[65], body[512];
    snprintf(t, sizeof(t), "%lld", now);
    sign(t, "tok-int", hex);
    snprintf(
        body, sizeof(body),
        "{\"timestamp\":%s,\"token\":\"tok-int\",\"signature\":\"%s\",\"from\":\"a@b.example\","
        "\"text\":\"x\"}",
        t, hex);
    r = post(*state, "", body, &ev);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.replay_key, "tok-int");
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 4);
    mock_events_free(&ev);
}

static void stale_or_future_signatures_are_refused(void **state)
{
    mock_events ev = {0};
    long long now = (long long)time(NULL);
    /* 301 s old, 400 s old, 301 s ahead, a day old: all signed right */
    long long bad[] = {now - 301, now - 400, now + 301, now - 86400, 0, 1};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        oc_inbound_result r =
            signed_post(*state, bad[i], "tok-old", NULL, "a@b.example", "STOP", &ev);
        assert_int_equal(r.status, 401);
        assert_string_equal(r.error, "stale_signature");
        assert_string_equal(r.replay_key, "");
        oc_buf_free(&r.body);
    }
    /* timestamps that are not 1-12 plain digits, signed over what was sent */
    const char *odd[] = {"+1764460800",  "-1",  " 1764460800",
                         "1764460800.5", "0x1", "99999999999999999999",
                         "1e9",          ""};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        char hex[65], body[512];
        sign(odd[i], "tok-odd", hex);
        snprintf(body, sizeof(body),
                 "{\"timestamp\":\"%s\",\"token\":\"tok-odd\",\"signature\":\"%s\","
                 "\"from\":\"a@b.example\",\"text\":\"STOP\"}",
                 odd[i], hex);
        oc_inbound_result r = post(*state, "", body, &ev);
        assert_int_equal(r.status, 401);
        assert_string_equal(r.error, "stale_signature");
        oc_buf_free(&r.body);
    }
    assert_int_equal(ev.n, 0);
}

static void bad_signatures_are_refused(void **state)
{
    mock_events ev = {0};
    long long now = (long long)time(NULL);
    char t[32], hex[65];
    snprintf(t, sizeof(t), "%lld", now);
    sign(t, "tok-a", hex);
    /* a signature of another token, a flipped digit, upper case, short */
    oc_inbound_result r = signed_post(*state, now, "tok-b", hex, "a@b.example", "STOP", &ev);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.error, "bad_signature");
    hex[10] = hex[10] == '0' ? '1' : '0';
    r = signed_post(*state, now, "tok-a", hex, "a@b.example", "STOP", &ev);
    assert_string_equal(r.error, "bad_signature");
    sign(t, "tok-a", hex);
    for (char *p = hex; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    r = signed_post(*state, now, "tok-a", strpbrk(hex, "ABCDEF") ? hex : "X", "a@b.example", "STOP",
                    &ev);
    assert_string_equal(r.error, "bad_signature");
    sign(t, "tok-a", hex);
    hex[63] = '\0';
    r = signed_post(*state, now, "tok-a", hex, "a@b.example", "STOP", &ev);
    assert_string_equal(r.error, "bad_signature");
    /* no signature at all */
    r = post(*state, "", "{\"from\":\"a@b.example\",\"text\":\"STOP\"}", &ev);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.error, "bad_signature");
    /* a token that cannot be a key: signed right, refused */
    r = signed_post(*state, now, "tok with space", NULL, "a@b.example", "STOP", &ev);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.error, "bad_token");
    assert_int_equal(ev.n, 0);
}

static void max_age_is_validated_at_load(void **state)
{
    (void)state;
    const char *vals[] = {"0", "-5", "abc", "604801", "99999999999999999999", "30s"};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        const char *kv[] = {"url",         "smtp://127.0.0.1:25", "from",
                            "a@b.example", "inbound_max_age_s",   vals[i],
                            NULL};
        char err[256];
        assert_null(mock_init(C, kv, err, sizeof(err)));
        assert_non_null(strstr(err, "inbound_max_age_s"));
    }
    const char *kv[] = {
        "url", "smtp://127.0.0.1:25", "from", "a@b.example", "inbound_max_age_s", "604800", NULL};
    char err[256];
    void *inst = mock_init(C, kv, err, sizeof(err));
    assert_non_null(inst);
    C->free(inst);
}

/* ---- unguessable tokens (token_secret) and unsigned posts */

static const char *const tagged_conf[] = {"url",
                                          "smtp://127.0.0.1:2525",
                                          "tls",
                                          "none",
                                          "from",
                                          "news@acme.example",
                                          "reply_to",
                                          "reply+{{token}}@acme.example",
                                          "unsubscribe_url",
                                          "https://acme.example/webhooks/mail?t={{token}}",
                                          "token_secret",
                                          "0123456789abcdef-token-secret",
                                          NULL};

/* the token of List-Unsubscribe and Reply-To is the message id and a
 * 32-hex-digit tag; the one-click inbound takes it only with that tag */
static void tagged_tokens_are_verified(void **state)
{
    (void)state;
    char err[256];
    void *inst = mock_init(C, tagged_conf, err, sizeof(err));
    assert_non_null(inst);
    oc_message m = {.campaign = "bf",
                    .message_id = "bf.7",
                    .to = "ana@example.com",
                    .subject = "s",
                    .text = "t"};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(inst, &m, &r, &o), 0);
    char lu[512], rt[512], mid[256];
    assert_non_null(hdr(r.body.data, "List-Unsubscribe", lu, sizeof(lu)));
    assert_non_null(hdr(r.body.data, "Reply-To", rt, sizeof(rt)));
    assert_non_null(hdr(r.body.data, "Message-ID", mid, sizeof(mid)));
    assert_string_equal(mid, "<bf.7@acme.example>"); /* threading keeps the bare id */
    const char *t = strstr(lu, "?t=");
    assert_non_null(t);
    t += 3;
    char tok[128];
    snprintf(tok, sizeof(tok), "%.*s", (int)strcspn(t, ">"), t);
    assert_int_equal(strlen(tok), strlen("bf.7.") + 32);
    assert_true(!strncmp(tok, "bf.7.", 5));
    for (size_t i = 5; i < strlen(tok); i++)
        assert_true(isxdigit((unsigned char)tok[i]) && !isupper((unsigned char)tok[i]));
    char want[256];
    snprintf(want, sizeof(want), "reply+%s@acme.example", tok);
    assert_string_equal(rt, want);
    oc_request_free(&r);

    /* the right tag: an unsubscribe of the bare id */
    mock_events ev = {0};
    char q[160];
    snprintf(q, sizeof(q), "t=%s", tok);
    oc_inbound_result res = post(inst, q, "List-Unsubscribe=One-Click", &ev);
    assert_int_equal(res.status, 200);
    oc_buf_free(&res.body);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.ev[0].provider_id, "token:bf.7");
    mock_events_free(&ev);
    /* a guessed id, a flipped tag digit, a tag of another id: 403, nothing */
    char flipped[160];
    snprintf(flipped, sizeof(flipped), "t=%s", tok);
    size_t last = strlen(flipped) - 1;
    flipped[last] = flipped[last] == '0' ? '1' : '0';
    char other[160];
    snprintf(other, sizeof(other), "t=bf.8.%s", tok + 5);
    const char *bad[] = {"t=bf.7", flipped, other, "t=bf.7.",
                         "t=.0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        res = post(inst, bad[i], "List-Unsubscribe=One-Click", &ev);
        assert_int_equal(res.status, 403);
        assert_string_equal(res.error, "bad_token");
        oc_buf_free(&res.body);
    }
    assert_int_equal(ev.n, 0);
    C->free(inst);

    /* reply+TOKEN: attributed with the right tag, kept unattributed without */
    const char *const kv[] = {"url",
                              "smtp://127.0.0.1:2525",
                              "from",
                              "news@acme.example",
                              "token_secret",
                              tagged_conf[11],
                              "inbound_unsigned",
                              "true",
                              NULL};
    inst = mock_init(C, kv, err, sizeof(err));
    assert_non_null(inst);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"from\":\"bob@example.com\",\"to\":\"reply+%s@acme.example\",\"text\":\"hi\"}",
             tok);
    res = post(inst, "", body, &ev);
    assert_int_equal(res.status, 200);
    oc_buf_free(&res.body);
    res = post(inst, "",
               "{\"from\":\"bob@example.com\",\"to\":\"reply+bf.7@acme.example\",\"text\":\"hi\"}",
               &ev);
    assert_int_equal(res.status, 200);
    oc_buf_free(&res.body);
    assert_int_equal(ev.n, 2);
    assert_string_equal(ev.ev[0].in_reply_to, "token:bf.7");
    assert_null(ev.ev[1].in_reply_to);
    mock_events_free(&ev);
    C->free(inst);
}

static const char *campaign_var(const oc_message *m, const char *name, size_t len)
{
    return len == 8 && !memcmp(name, "campaign", 8) ? m->campaign : NULL;
}

/* RFC 2047 display names (a quoted one loses its quotes, an ASCII one is
 * kept as written) and the Feedback-ID template */
static void display_names_encode_and_feedback_id_renders(void **state)
{
    (void)state;
    char err[256], v[256];
    const struct {
        const char *from, *want;
    } rows[] = {
        {"Café Acme <news@acme.example>", "=?UTF-8?B?Q2Fmw6kgQWNtZQ==?= <news@acme.example>"},
        {"\"Café Acme\" <news@acme.example>", "=?UTF-8?B?Q2Fmw6kgQWNtZQ==?= <news@acme.example>"},
        {"Acme News <news@acme.example>", "Acme News <news@acme.example>"},
        {"news@acme.example", "news@acme.example"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *const kv[] = {"url",         "smtp://127.0.0.1:2525",
                                  "tls",         "none",
                                  "from",        rows[i].from,
                                  "feedback_id", "{{campaign}}:{{channel|email}}:acme",
                                  NULL};
        void *inst = mock_init(C, kv, err, sizeof(err));
        assert_non_null(inst);
        oc_message m = {.campaign = "bf",
                        .message_id = "bf.7",
                        .to = "ana@example.com",
                        .subject = "Hi",
                        .text = "Hi",
                        .var = campaign_var};
        oc_request r = {0};
        oc_outcome o;
        assert_int_equal(C->build(inst, &m, &r, &o), 0);
        assert_non_null(hdr(r.body.data, "From", v, sizeof(v)));
        assert_string_equal(v, rows[i].want);
        assert_non_null(hdr(r.body.data, "Feedback-ID", v, sizeof(v)));
        assert_string_equal(v, "bf:email:acme");
        assert_string_equal(r.mail_from, "<news@acme.example>");
        oc_request_free(&r);
        C->free(inst);
    }
}

/* RFC 8058 § 8: the urlencoded body of § 8.1, the multipart body of § 8.3
 * as its errata declare the boundary (-FormBoundaryjWmhtjORrn, delimiter
 * "--" plus it) and as the RFC printed it (the bare boundary as delimiter);
 * a GET is a page with a button and unsubscribes nobody; the page's form
 * posts back and gets a page; unsubscribe_secret is token_secret's other name */
static void one_click_forms_and_the_confirmation_page(void **state)
{
    (void)state;
    char err[256];
    const char *const kv[] = {"url",
                              "smtp://127.0.0.1:2525",
                              "from",
                              "news@acme.example",
                              "unsubscribe_secret",
                              "0123456789abcdef0123",
                              NULL};
    void *inst = mock_init(C, kv, err, sizeof(err));
    assert_non_null(inst);
    char tag[2 * EVP_MAX_MD_SIZE + 1]; /* hmac_hex writes the whole MAC */
    hmac_hex(EVP_sha256(), "0123456789abcdef0123", "omnicast-token:bf.7", 19, tag);
    tag[32] = '\0';
    char q[96];
    snprintf(q, sizeof(q), "t=bf.7.%.32s", tag);
    static const char mp_errata[] =
        "---FormBoundaryjWmhtjORrn\r\nContent-Disposition: form-data; "
        "name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n---FormBoundaryjWmhtjORrn--\r\n";
    const struct {
        const char *ctype, *body;
    } yes[] = {
        {"application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"},
        {"application/x-www-form-urlencoded", "List-Unsubscribe=One-Click\r\n"},
        {"multipart/form-data; boundary=-FormBoundaryjWmhtjORrn", mp_errata},
        {"multipart/form-data; boundary=---FormBoundaryjWmhtjORrn", mp_errata},
        {"multipart/form-data; boundary=\"xyz\"",
         "--xyz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\n1\r\n--xyz\r\n"
         "content-disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--xyz--"},
    };
    mock_events ev = {0};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        oc_inbound_result r = request(inst, "POST", q, yes[i].ctype, yes[i].body, &ev);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/json");
        oc_buf_free(&r.body);
        assert_int_equal(ev.n, i + 1);
        assert_string_equal(ev.ev[i].provider_id, "token:bf.7");
    }
    /* not a one-click: another value, another field, no part of that name */
    const struct {
        const char *ctype, *body;
    } no[] = {
        {"application/x-www-form-urlencoded", "List-Unsubscribe=Two-Clicks"},
        {"multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; "
                                              "name=\"List-Unsubscribe\"\r\n\r\nYes\r\n--xyz--"},
        {"multipart/form-data; boundary=xyz",
         "--xyz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nOne-Click\r\n--xyz--"},
        {"multipart/form-data", "List-Unsubscribe=One-Click"},
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        oc_inbound_result r = request(inst, "POST", q, no[i].ctype, no[i].body, &ev);
        assert_int_not_equal(r.status, 200);
        oc_buf_free(&r.body);
    }
    size_t n = ev.n;
    /* GET: a page with a button that posts the form; nothing unsubscribed */
    oc_inbound_result r = request(inst, "GET", q, NULL, "", &ev);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/html; charset=utf-8");
    assert_non_null(strstr(r.body.data, "<form method=\"post\" action=\"?t=bf.7."));
    assert_non_null(strstr(r.body.data, "name=\"List-Unsubscribe\" value=\"One-Click\""));
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, n);
    r = request(inst, "GET", "t=bf.8.0123456789abcdef0123456789abcdef", NULL, "", &ev);
    assert_int_equal(r.status, 403);
    assert_null(strstr(r.body.data, "<form"));
    oc_buf_free(&r.body);
    r = request(inst, "GET", "", NULL, "", &ev);
    assert_int_equal(r.status, 400);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, n);
    /* the page's button: a page back, and the unsubscribe */
    r = request(inst, "POST", q, "application/x-www-form-urlencoded",
                "List-Unsubscribe=One-Click&via=page", &ev);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/html; charset=utf-8");
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, n + 1);
    mock_events_free(&ev);
    C->free(inst);
    const char *const both[] = {"url",
                                "smtp://127.0.0.1:2525",
                                "from",
                                "a@b.example",
                                "token_secret",
                                "0123456789abcdef0123",
                                "unsubscribe_secret",
                                "0123456789abcdef0123",
                                NULL};
    assert_null(mock_init(C, both, err, sizeof(err)));
    assert_non_null(strstr(err, "not both"));
}

/* without inbound_signing_key an inbound-parse post is refused unless
 * inbound_unsigned = true; one-click unsubscribes are not JSON posts */
static void unsigned_posts_are_refused_without_inbound_unsigned(void **state)
{
    (void)state;
    char err[256];
    const char *const kv[] = {"url", "smtp://127.0.0.1:2525", "from", "news@acme.example", NULL};
    void *inst = mock_init(C, kv, err, sizeof(err));
    assert_non_null(inst);
    mock_events ev = {0};
    oc_inbound_result res = post(
        inst, "", "{\"from\":\"bob@example.com\",\"to\":\"x@acme.example\",\"text\":\"hi\"}", &ev);
    assert_int_equal(res.status, 403);
    assert_string_equal(res.error, "unsigned_inbound_refused");
    assert_int_equal(ev.n, 0);
    res = post(inst, "t=bf.7", "List-Unsubscribe=One-Click", &ev);
    assert_int_equal(res.status, 200);
    oc_buf_free(&res.body);
    assert_int_equal(ev.n, 1);
    mock_events_free(&ev);
    C->free(inst);
    const char *const bad1[] = {
        "url", "smtp://127.0.0.1:25", "from", "a@b.example", "inbound_unsigned", "yes", NULL};
    assert_null(mock_init(C, bad1, err, sizeof(err)));
    assert_string_equal(err, "inbound_unsigned must be true or false");
    const char *const bad2[] = {
        "url", "smtp://127.0.0.1:25", "from", "a@b.example", "token_secret", "short", NULL};
    assert_null(mock_init(C, bad2, err, sizeof(err)));
    assert_non_null(strstr(err, "token_secret"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(message_has_every_header_and_crlf_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(non_ascii_subjects_become_encoded_words, setup, teardown),
        cmocka_unit_test_setup_teardown(quoted_printable_keeps_lines_short_and_decodes_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_subject_of_invalid_utf8_still_encodes, setup, teardown),
        cmocka_unit_test_setup_teardown(header_injection_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(recipients_must_be_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(reply_codes_map_to_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(enhanced_status_codes_decide, setup, teardown),
        cmocka_unit_test_setup_teardown(inbound_reply_is_threaded_by_in_reply_to_or_token, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(signed_inbound_is_taken_and_reports_its_token, setup_signed,
                                        teardown),
        cmocka_unit_test_setup_teardown(stale_or_future_signatures_are_refused, setup_signed,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_signatures_are_refused, setup_signed, teardown),
        cmocka_unit_test(max_age_is_validated_at_load),
        cmocka_unit_test(tagged_tokens_are_verified),
        cmocka_unit_test(unsigned_posts_are_refused_without_inbound_unsigned),
        cmocka_unit_test(one_click_forms_and_the_confirmation_page),
        cmocka_unit_test(display_names_encode_and_feedback_id_renders),
        cmocka_unit_test(postmark_inbound_with_basic_auth),
        cmocka_unit_test_setup_teardown(mailgun_route_forms_are_taken, setup_signed, teardown),
        cmocka_unit_test_setup_teardown(one_click_unsubscribe_is_an_unsubscribe_event, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
