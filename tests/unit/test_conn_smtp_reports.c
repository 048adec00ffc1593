/* Bounces and complaints in the SMTP connector (issue 19 point 3): the VERP
 * envelope sender, RFC 3464 delivery status notifications and RFC 5965 ARF
 * reports posted as raw messages (the RFCs' own examples, addressed to our
 * VERP address or returning one of our Message-IDs), Mailgun's event
 * webhooks (the documented event-data shape) and Amazon SES notifications
 * through SNS, whose signature is checked with a key pair made here. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <time.h>
#include <unistd.h>

#include "mock_host.h"

extern const oc_connector oc_connector_smtp;
#define C (&oc_connector_smtp)

#define SECRET "0123456789abcdef-token-secret"
#define SIGNING_KEY "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"

static char cert_path[256];

static const char *conf[] = {"url",
                             "smtp://127.0.0.1:2525",
                             "tls",
                             "none",
                             "from",
                             "Acme News <news@acme.example>",
                             "return_path",
                             "bounces+{{token}}@acme.example",
                             "token_secret",
                             SECRET,
                             "inbound_signing_key",
                             SIGNING_KEY,
                             NULL,
                             NULL,
                             NULL};

static void *make(void)
{
    char err[256];
    void *inst = mock_init(C, conf, err, sizeof(err));
    if (!inst)
        fprintf(stderr, "init: %s\n", err);
    return inst;
}

static oc_inbound_result request(void *inst, const char *ctype, const char *body, mock_events *ev)
{
    const char *const kv[] = {"Content-Type", ctype, NULL};
    mock_headers h = {ctype ? kv : NULL};
    oc_http_request req = {.method = "POST",
                           .path = "/webhooks/mail",
                           .query = "",
                           .body = body,
                           .body_len = strlen(body),
                           .header = mock_header,
                           .header_ctx = &h};
    oc_inbound_result res;
    memset(&res, 0, sizeof(res));
    C->inbound(inst, &req, &res, mock_emit, ev);
    return res;
}

/* the tagged token of a message id, as the connector puts it in headers */
static void token_of(const char *id, char *out, size_t len)
{
    char d[128], hex[65];
    snprintf(d, sizeof(d), "omnicast-token:%s", id);
    hmac_hex(EVP_sha256(), SECRET, d, strlen(d), hex);
    snprintf(out, len, "%s.%.32s", id, hex);
}

static void mg_sign(const char *ts, const char *token, char hex[65])
{
    char d[256];
    snprintf(d, sizeof(d), "%s%s", ts, token);
    hmac_hex(EVP_sha256(), SIGNING_KEY, d, strlen(d), hex);
}

/* a signed post of our JSON {"raw": ...}, with the envelope recipient */
static oc_inbound_result post_raw(void *inst, const char *raw, const char *to, const char *tok,
                                  mock_events *ev)
{
    char ts[32], hex[65];
    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    mg_sign(ts, tok, hex);
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s}", "timestamp", ts, "token", tok, "signature", hex, "raw", raw);
    if (to)
        json_object_set_new(j, "to", json_string(to));
    char *body = json_dumps(j, 0);
    json_decref(j);
    oc_inbound_result r = request(inst, "application/json", body, ev);
    free(body);
    return r;
}

/* s with the first `from` replaced by `to`, a new string */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    assert_non_null(at);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *o = malloc(n);
    snprintf(o, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return o;
}

/* ---- the envelope */

static void return_path_is_the_envelope_sender(void **state)
{
    (void)state;
    void *inst = make();
    assert_non_null(inst);
    oc_message m = {.campaign = "bf", .message_id = "bf.7", .to = "ana@example.com", .text = "t"};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(inst, &m, &r, &o), 0);
    char tok[80], want[160];
    token_of("bf.7", tok, sizeof(tok));
    snprintf(want, sizeof(want), "<bounces+%s@acme.example>", tok);
    assert_string_equal(r.mail_from, want);
    assert_string_equal(r.mail_rcpt, "<ana@example.com>");
    assert_non_null(strstr(r.body.data, "\r\nFrom: Acme News <news@acme.example>\r\n"));
    oc_request_free(&r);
    C->free(inst);
    /* without return_path: the From address, as before */
    const char *const plain[] = {"url", "smtp://127.0.0.1:2525", "from", "news@acme.example", NULL};
    char err[256];
    inst = mock_init(C, plain, err, sizeof(err));
    assert_non_null(inst);
    memset(&r, 0, sizeof(r));
    assert_int_equal(C->build(inst, &m, &r, &o), 0);
    assert_string_equal(r.mail_from, "<news@acme.example>");
    oc_request_free(&r);
    C->free(inst);
    /* a return_path that is no address is refused at load */
    const char *const bad[] = {"url",         "smtp://127.0.0.1:2525", "from", "news@acme.example",
                               "return_path", "bounces <x>",           NULL};
    assert_null(mock_init(C, bad, err, sizeof(err)));
    assert_non_null(strstr(err, "return_path"));
}

/* ---- RFC 3464 */

/* RFC 3464 § 10.1 (simple DSN), its To: our VERP address */
static const char *dsn_simple(const char *to)
{
    static char b[4096];
    snprintf(b, sizeof(b),
             "Date: Thu, 7 Jul 1994 17:16:05 -0400\r\n"
             "From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>\r\n"
             "Message-Id: <199407072116.RAA14128@CS.UTK.EDU>\r\n"
             "Subject: Returned mail: Cannot send message for 5 days\r\n"
             "To: <%s>\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=delivery-status;\r\n"
             "    boundary=\"RAA14128.773615765/CS.UTK.EDU\"\r\n"
             "\r\n"
             "--RAA14128.773615765/CS.UTK.EDU\r\n"
             "\r\n"
             "The original message was received at Sat, 2 Jul 1994 17:10:28 -0400\r\n"
             "from root@localhost\r\n"
             "\r\n"
             "   ----- The following addresses had delivery problems -----\r\n"
             "<louisl@larry.slip.umd.edu>  (unrecoverable error)\r\n"
             "\r\n"
             "   ----- Transcript of session follows -----\r\n"
             "<louisl@larry.slip.umd.edu>... Deferred: Connection timed out\r\n"
             "         with larry.slip.umd.edu.\r\n"
             "Message could not be delivered for 5 days\r\n"
             "Message will be deleted from queue\r\n"
             "\r\n"
             "--RAA14128.773615765/CS.UTK.EDU\r\n"
             "content-type: message/delivery-status\r\n"
             "\r\n"
             "Reporting-MTA: dns; cs.utk.edu\r\n"
             "\r\n"
             "Original-Recipient: rfc822;louisl@larry.slip.umd.edu\r\n"
             "Final-Recipient: rfc822;louisl@larry.slip.umd.edu\r\n"
             "Action: failed\r\n"
             "Status: 4.0.0\r\n"
             "Diagnostic-Code: smtp; 426 connection timed out\r\n"
             "Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400\r\n"
             "\r\n"
             "--RAA14128.773615765/CS.UTK.EDU\r\n"
             "content-type: message/rfc822\r\n"
             "\r\n"
             "[original message goes here]\r\n"
             "\r\n"
             "--RAA14128.773615765/CS.UTK.EDU--\r\n",
             to);
    return b;
}

/* RFC 3464 § 10.2 (multi-recipient DSN), LF line ends as a parse service
 * may hand them over; the returned message's headers carry our Message-ID */
static const char dsn_multi[] = "Date: Fri, 8 Jul 1994 09:21:47 -0400\n"
                                "From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>\n"
                                "Subject: Returned mail: User unknown\n"
                                "To: <owner-ups-mib@CS.UTK.EDU>\n"
                                "MIME-Version: 1.0\n"
                                "Content-Type: multipart/report; report-type=delivery-status;\n"
                                "    boundary=\"JAA13167.773673707/CS.UTK.EDU\"\n"
                                "\n"
                                "--JAA13167.773673707/CS.UTK.EDU\n"
                                "content-type: text/plain; charset=us-ascii\n"
                                "\n"
                                "   ----- The following addresses had delivery problems -----\n"
                                "<arathib@vnet.ibm.com>  (unrecoverable error)\n"
                                "<wsnell@sdcc13.ucsd.edu>  (unrecoverable error)\n"
                                "\n"
                                "--JAA13167.773673707/CS.UTK.EDU\n"
                                "content-type: message/delivery-status\n"
                                "\n"
                                "Reporting-MTA: dns; cs.utk.edu\n"
                                "\n"
                                "Original-Recipient: rfc822;arathib@vnet.ibm.com\n"
                                "Final-Recipient: rfc822;arathib@vnet.ibm.com\n"
                                "Action: failed\n"
                                "Status: 5.0.0 (permanent failure)\n"
                                "Diagnostic-Code: smtp;  550 'arathib@vnet.IBM.COM' is not a\n"
                                "    registered gateway user\n"
                                "Remote-MTA: dns; vnet.ibm.com\n"
                                "\n"
                                "Original-Recipient: rfc822;johnh@hpnjld.njd.hp.com\n"
                                "Final-Recipient: rfc822;johnh@hpnjld.njd.hp.com\n"
                                "Action: delayed\n"
                                "Status: 4.0.0 (hpnjld.njd.jp.com: host name lookup failure)\n"
                                "\n"
                                "Original-Recipient: rfc822;wsnell@sdcc13.ucsd.edu\n"
                                "Final-Recipient: rfc822;wsnell@sdcc13.ucsd.edu\n"
                                "Action: failed\n"
                                "Status: 5.0.0\n"
                                "Diagnostic-Code: smtp; 550 user unknown\n"
                                "Remote-MTA: dns; sdcc13.ucsd.edu\n"
                                "\n"
                                "--JAA13167.773673707/CS.UTK.EDU\n"
                                "content-type: message/rfc822\n"
                                "\n"
                                "From: news@acme.example\n"
                                "Message-ID: <bf.9@acme.example>\n"
                                "Subject: ups-mib\n"
                                "\n"
                                "[original message goes here]\n"
                                "\n"
                                "--JAA13167.773673707/CS.UTK.EDU--\n";

static void dsns_become_bounces(void **state)
{
    (void)state;
    void *inst = make();
    mock_events ev = {0};
    char tok[80], verp[160];
    token_of("bf.7", tok, sizeof(tok));
    snprintf(verp, sizeof(verp), "bounces+%s@acme.example", tok);
    /* § 10.1: failed with 4.0.0 is a soft bounce, attributed by the token in To */
    oc_inbound_result r = post_raw(inst, dsn_simple(verp), NULL, "t-dsn-1", &ev);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.replay_key, "t-dsn-1");
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].type, OC_EV_BOUNCE);
    assert_string_equal(ev.ev[0].provider_id, "token:bf.7");
    assert_string_equal(ev.ev[0].from, "louisl@larry.slip.umd.edu");
    assert_string_equal(ev.ev[0].state, "soft");
    assert_string_equal(ev.ev[0].error, "4.0.0 smtp; 426 connection timed out");
    assert_string_equal(ev.ev[0].kind, "dsn");
    mock_events_free(&ev);
    /* § 10.2: two failed 5.0.0 (hard, the folded diagnostic unfolded), one
     * delayed (soft); no token anywhere: our returned Message-ID */
    r = post_raw(inst, dsn_multi, "owner-ups-mib@cs.utk.edu", "t-dsn-2", &ev);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 3);
    const char *who[] = {"arathib@vnet.ibm.com", "johnh@hpnjld.njd.hp.com",
                         "wsnell@sdcc13.ucsd.edu"};
    const char *st[] = {"hard", "soft", "hard"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ev.ev[i].type, OC_EV_BOUNCE);
        assert_string_equal(ev.ev[i].provider_id, "bf.9@acme.example");
        assert_string_equal(ev.ev[i].from, who[i]);
        assert_string_equal(ev.ev[i].state, st[i]);
    }
    assert_string_equal(ev.ev[0].error, "5.0.0 (permanent failure) smtp; 550 "
                                        "'arathib@vnet.IBM.COM' is not a registered gateway user");
    assert_null(ev.ev[1].error == NULL ? NULL : strstr(ev.ev[1].error, "smtp"));
    mock_events_free(&ev);
    /* the envelope recipient carries the token as well (Mailgun's recipient) */
    r = post_raw(inst, dsn_simple("someone@cs.utk.edu"), verp, "t-dsn-3", &ev);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.ev[0].provider_id, "token:bf.7");
    mock_events_free(&ev);
    C->free(inst);
}

static void forged_or_foreign_reports_attribute_nothing(void **state)
{
    (void)state;
    void *inst = make();
    mock_events ev = {0};
    char tok[80], verp[160];
    token_of("bf.7", tok, sizeof(tok));
    /* a tag of another message, a bare id, a flipped digit: taken, nothing emitted */
    char other[160];
    snprintf(other, sizeof(other), "bounces+bf.8.%s@acme.example", tok + 5);
    snprintf(verp, sizeof(verp), "bounces+%s@acme.example", tok);
    verp[strlen(verp) - strlen("@acme.example") - 1] ^= 1;
    const char *bad[] = {other, "bounces+bf.7@acme.example", verp};
    for (int i = 0; i < 3; i++) {
        char t[16];
        snprintf(t, sizeof(t), "t-forged-%d", i);
        oc_inbound_result r = post_raw(inst, dsn_simple(bad[i]), NULL, t, &ev);
        assert_int_equal(r.status, 200);
        oc_buf_free(&r.body);
    }
    /* a forged token wins over a Message-ID that would match */
    char *mixed = replace(dsn_multi, "owner-ups-mib@CS.UTK.EDU", "Bounces+bf.9@ACME.example");
    oc_inbound_result r = post_raw(inst, mixed, NULL, "t-forged-x", &ev);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    free(mixed);
    assert_int_equal(ev.n, 0);
    /* an address with a '+' that is not made from return_path is no token:
     * the Message-ID attributes (three recipient groups) */
    r = post_raw(inst, dsn_multi, "fbl+gmail@acme.example", "t-plus", &ev);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 3);
    assert_string_equal(ev.ev[0].provider_id, "bf.9@acme.example");
    mock_events_free(&ev);
    /* a returned Message-ID of another domain is not ours */
    char *foreign = strdup(dsn_multi);
    memcpy(strstr(foreign, "<bf.9@acme.example>"), "<bf.9@acme.exampla>", 19);
    r = post_raw(inst, foreign, NULL, "t-foreign", &ev);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    free(foreign);
    assert_int_equal(ev.n, 0);
    /* an unsigned raw post is refused before anything is read */
    r = request(inst, "application/json", "{\"raw\":\"x\"}", &ev);
    assert_int_equal(r.status, 401);
    oc_buf_free(&r.body);
    C->free(inst);
}

/* ---- RFC 5965 */

/* RFC 5965 Appendix B.2, its Original-Mail-From our VERP envelope sender */
static const char *arf(const char *mail_from)
{
    static char b[4096];
    snprintf(b, sizeof(b),
             "From: <abusedesk@example.com>\r\n"
             "Date: Thu, 8 Mar 2005 17:40:36 EDT\r\n"
             "Subject: FW: Earn money\r\n"
             "To: <abuse@example.net>\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=feedback-report;\r\n"
             "     boundary=\"part1_13d.2e68ed54_boundary\"\r\n"
             "\r\n"
             "--part1_13d.2e68ed54_boundary\r\n"
             "Content-Type: text/plain; charset=\"US-ASCII\"\r\n"
             "Content-Transfer-Encoding: 7bit\r\n"
             "\r\n"
             "This is an email abuse report for an email message received from IP\r\n"
             "192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information\r\n"
             "about this format please see http://www.mipassoc.org/arf/.\r\n"
             "\r\n"
             "--part1_13d.2e68ed54_boundary\r\n"
             "Content-Type: message/feedback-report\r\n"
             "\r\n"
             "Feedback-Type: abuse\r\n"
             "User-Agent: SomeGenerator/1.0\r\n"
             "Version: 1\r\n"
             "Original-Mail-From: <%s>\r\n"
             "Original-Rcpt-To: <user@example.com>\r\n"
             "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\n"
             "Reporting-MTA: dns; mail.example.com\r\n"
             "Source-IP: 192.0.2.1\r\n"
             "Authentication-Results: mail.example.com;\r\n"
             "               spf=fail smtp.mail=somespammer@example.com\r\n"
             "Reported-Domain: example.net\r\n"
             "Reported-Uri: http://example.net/earn_money.html\r\n"
             "Reported-Uri: mailto:user@example.com\r\n"
             "Removal-Recipient: user@example.com\r\n"
             "\r\n"
             "--part1_13d.2e68ed54_boundary\r\n"
             "Content-Type: message/rfc822\r\n"
             "Content-Disposition: inline\r\n"
             "\r\n"
             "From: <somespammer@example.net>\r\n"
             "Received: from mailserver.example.net (mailserver.example.net\r\n"
             "     [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;\r\n"
             "     Thu, 08 Mar 2005 14:00:00 -0400\r\n"
             "To: <Undisclosed Recipients>\r\n"
             "Subject: Earn money\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-type: text/plain\r\n"
             "Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net\r\n"
             "Date: Thu, 02 Sep 2004 12:31:03 -0500\r\n"
             "\r\n"
             "Spam Spam Spam\r\n"
             "Spam Spam Spam\r\n"
             "Spam Spam Spam\r\n"
             "Spam Spam Spam\r\n"
             "--part1_13d.2e68ed54_boundary--\r\n",
             mail_from);
    return b;
}

static void arf_reports_become_complaints(void **state)
{
    (void)state;
    void *inst = make();
    mock_events ev = {0};
    char tok[80], verp[160];
    token_of("bf.3", tok, sizeof(tok));
    snprintf(verp, sizeof(verp), "bounces+%s@acme.example", tok);
    /* as Mailgun's raw-MIME route field body-mime (urlencoded form) */
    char ts[32], hex[65];
    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    mg_sign(ts, "t-arf-1", hex);
    const char *raw = arf(verp);
    oc_buf form = {0};
    oc_buf_puts(&form, "timestamp=");
    oc_buf_puts(&form, ts);
    oc_buf_puts(&form, "&token=t-arf-1&signature=");
    oc_buf_puts(&form, hex);
    oc_buf_puts(&form, "&recipient=fbl%40acme.example&body-mime=");
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
        char e[4];
        if (isalnum(*p))
            oc_buf_append(&form, p, 1);
        else {
            snprintf(e, sizeof(e), "%%%02X", *p);
            oc_buf_puts(&form, e);
        }
    }
    oc_inbound_result r = request(inst, "application/x-www-form-urlencoded", form.data, &ev);
    oc_buf_free(&form);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].type, OC_EV_COMPLAINT);
    assert_string_equal(ev.ev[0].provider_id, "token:bf.3");
    assert_string_equal(ev.ev[0].from, "user@example.com");
    assert_string_equal(ev.ev[0].state, "abuse");
    assert_string_equal(ev.ev[0].kind, "arf");
    mock_events_free(&ev);
    /* the RFC's own Original-Mail-From (a spammer, no token, no Message-ID of
     * ours): nothing */
    r = post_raw(inst, arf("somespammer@example.net"), NULL, "t-arf-2", &ev);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 0);
    C->free(inst);

    /* Postmark's RawEmail with basic auth */
    const char *const pm[] = {"url",
                              "smtp://127.0.0.1:2525",
                              "from",
                              "news@acme.example",
                              "return_path",
                              "bounces+{{token}}@acme.example",
                              "token_secret",
                              SECRET,
                              "inbound_basic_auth",
                              "pm:secret-pass",
                              NULL};
    char err[256];
    inst = mock_init(C, pm, err, sizeof(err));
    assert_non_null(inst);
    json_t *j = json_pack("{s:s,s:s,s:s}", "From", "abusedesk@example.com", "OriginalRecipient",
                          "fbl@acme.example", "RawEmail", arf(verp));
    char *body = json_dumps(j, 0);
    json_decref(j);
    const char *const kv[] = {"Content-Type", "application/json", "Authorization",
                              "Basic cG06c2VjcmV0LXBhc3M=", NULL};
    mock_headers h = {kv};
    oc_http_request req = {.method = "POST",
                           .path = "/webhooks/mail",
                           .query = "",
                           .body = body,
                           .body_len = strlen(body),
                           .header = mock_header,
                           .header_ctx = &h};
    memset(&r, 0, sizeof(r));
    C->inbound(inst, &req, &r, mock_emit, &ev);
    free(body);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.ev[0].provider_id, "token:bf.3");
    mock_events_free(&ev);
    C->free(inst);
}

/* ---- Mailgun's event webhooks */

static char *mailgun_event(const char *ts, const char *token, const char *sig, const char *event,
                           const char *severity, const char *mid)
{
    json_t *ed = json_pack(
        "{s:s,s:s,s:f,s:s,s:{s:{s:s,s:s,s:s,s:s}},s:s,s:s,s:{s:i,s:s,s:s,s:i}}", "event", event,
        "id", "G9Bn5sl1TC6nu79C8C0bwg", "timestamp", 1521233195.375624, "log-level", "error",
        "message", "headers", "to", "Alice <alice@example.com>", "message-id", mid, "from",
        "Bob <bob@acme.example>", "subject", "Test permanent_fail webhook", "recipient",
        "alice@example.com", "recipient-domain", "example.com", "delivery-status", "attempt-no", 1,
        "message", "", "description", "Not delivering to previously bounced address", "code", 605);
    if (severity)
        json_object_set_new(ed, "severity", json_string(severity));
    json_t *j = json_pack("{s:{s:s,s:s,s:s},s:o}", "signature", "timestamp", ts, "token", token,
                          "signature", sig, "event-data", ed);
    char *s = json_dumps(j, 0);
    json_decref(j);
    return s;
}

static void mailgun_events_are_verified_and_mapped(void **state)
{
    (void)state;
    void *inst = make();
    mock_events ev = {0};
    char ts[32], hex[65];
    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    struct {
        const char *token, *event, *severity, *mid;
        int type;
        const char *state;
    } cases[] = {
        {"mg-1", "failed", "permanent", "bf.7@acme.example", OC_EV_BOUNCE, "hard"},
        {"mg-2", "failed", "temporary", "<bf.8@acme.example>", OC_EV_BOUNCE, "soft"},
        {"mg-3", "complained", NULL, "bf.9@acme.example", OC_EV_COMPLAINT, "abuse"},
        {"mg-4", "delivered", NULL, "bf.9@acme.example", 0, NULL},
        {"mg-5", "failed", "permanent", "20130503182626.18666.16540@sandbox.mailgun.org", 0, NULL},
    };
    int want = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mg_sign(ts, cases[i].token, hex);
        char *b =
            mailgun_event(ts, cases[i].token, hex, cases[i].event, cases[i].severity, cases[i].mid);
        oc_inbound_result r = request(inst, "application/json", b, &ev);
        free(b);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.replay_key, cases[i].token);
        oc_buf_free(&r.body);
        if (!cases[i].type)
            continue;
        assert_int_equal(ev.n, want + 1);
        assert_int_equal(ev.ev[want].type, cases[i].type);
        assert_string_equal(ev.ev[want].state, cases[i].state);
        assert_string_equal(ev.ev[want].from, "alice@example.com");
        assert_string_equal(ev.ev[want].kind, "mailgun");
        want++;
    }
    assert_int_equal(ev.n, 3);
    assert_string_equal(ev.ev[0].provider_id, "bf.7@acme.example");
    assert_string_equal(ev.ev[1].provider_id, "bf.8@acme.example");
    assert_string_equal(ev.ev[0].error, "605 Not delivering to previously bounced address");
    /* a wrong signature: 401, nothing */
    char *b = mailgun_event(ts, "mg-6",
                            "00000000000000000000000000000000000000000000000000000000"
                            "00000000",
                            "failed", "permanent", "bf.7@acme.example");
    oc_inbound_result r = request(inst, "application/json", b, &ev);
    free(b);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.replay_key, "");
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 3);
    mock_events_free(&ev);
    C->free(inst);
}

/* ---- Amazon SES through SNS */

static EVP_PKEY *sns_key;

/* a key pair and a self-signed certificate in PEM, standing in for the one
 * at SigningCertURL */
static int make_cert(void)
{
    sns_key = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    if (!sns_key || !x)
        return -1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, sns_key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"sns.amazonaws.com",
                               -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, sns_key, EVP_sha256());
    snprintf(cert_path, sizeof(cert_path), "/tmp/omni-sns-cert-%d.pem", (int)getpid());
    FILE *f = fopen(cert_path, "w");
    int ok = f && PEM_write_X509(f, x);
    if (f)
        fclose(f);
    X509_free(x);
    return ok ? 0 : -1;
}

static void sns_sign(json_t *j, const char *ver)
{
    static const char *const note[] = {"Message",  "MessageId", "Subject", "Timestamp",
                                       "TopicArn", "Type",      NULL};
    static const char *const sub[] = {"Message", "MessageId", "SubscribeURL", "Timestamp",
                                      "Token",   "TopicArn",  "Type",         NULL};
    const char *type = json_string_value(json_object_get(j, "Type"));
    oc_buf d = {0};
    for (const char *const *k = strcmp(type, "Notification") ? sub : note; *k; k++) {
        const char *v = json_string_value(json_object_get(j, *k));
        if (!v)
            continue;
        oc_buf_puts(&d, *k);
        oc_buf_puts(&d, "\n");
        oc_buf_puts(&d, v);
        oc_buf_puts(&d, "\n");
    }
    unsigned char sig[512], b64[800];
    size_t sl = sizeof(sig);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_DigestSignInit(mc, NULL, !strcmp(ver, "1") ? EVP_sha1() : EVP_sha256(), NULL, sns_key);
    EVP_DigestSign(mc, sig, &sl, (unsigned char *)d.data, d.len);
    EVP_MD_CTX_free(mc);
    oc_buf_free(&d);
    EVP_EncodeBlock(b64, sig, (int)sl);
    json_object_set_new(j, "SignatureVersion", json_string(ver));
    json_object_set_new(j, "Signature", json_string((char *)b64));
}

/* SES's bounce notification with a DSN (the documented example), its
 * headers carrying our Message-ID */
static const char ses_bounce[] =
    "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\","
    "\"reportingMTA\":\"dns; email.example.com\",\"bouncedRecipients\":[{\"emailAddress\":"
    "\"jane@example.com\",\"status\":\"5.1.1\",\"action\":\"failed\",\"diagnosticCode\":"
    "\"smtp; 550 5.1.1 <jane@example.com>... User\"}],\"bounceSubType\":\"General\","
    "\"timestamp\":\"2016-01-27T14:59:38.237Z\",\"feedbackId\":"
    "\"00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000\",\"remoteMtaIp\":"
    "\"127.0.2.0\"},\"mail\":{\"timestamp\":\"2016-01-27T14:59:38.237Z\",\"source\":"
    "\"john@example.com\",\"sourceArn\":\"arn:aws:ses:us-east-1:888888888888:identity/"
    "example.com\",\"sourceIp\":\"127.0.3.0\",\"sendingAccountId\":\"123456789012\","
    "\"messageId\":\"00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000\","
    "\"destination\":[\"jane@example.com\",\"mary@example.com\",\"richard@example.com\"],"
    "\"headersTruncated\":false,\"headers\":[{\"name\":\"From\",\"value\":"
    "\"\\\"John Doe\\\" <john@example.com>\"},{\"name\":\"To\",\"value\":"
    "\"\\\"Jane Doe\\\" <jane@example.com>\"},{\"name\":\"Message-ID\",\"value\":"
    "\"<bf.11@acme.example>\"},{\"name\":\"Subject\",\"value\":\"Hello\"}],"
    "\"commonHeaders\":{\"from\":[\"John Doe <john@example.com>\"],\"date\":"
    "\"Wed, 27 Jan 2016 14:05:45 +0000\",\"to\":[\"Jane Doe <jane@example.com>\"],"
    "\"messageId\":\"custom-message-ID\",\"subject\":\"Hello\"}}}";

/* SES's complaint notification with a feedback report (documented example) */
static const char ses_complaint[] =
    "{\"notificationType\":\"Complaint\",\"complaint\":{\"userAgent\":\"AnyCompany Feedback Loop "
    "(V0.01)\",\"complainedRecipients\":[{\"emailAddress\":\"richard@example.com\"}],"
    "\"complaintFeedbackType\":\"abuse\",\"arrivalDate\":\"2016-01-27T14:59:38.237Z\","
    "\"timestamp\":\"2016-01-27T14:59:38.237Z\",\"feedbackId\":"
    "\"000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000\"},\"mail\":{\"timestamp\":"
    "\"2016-01-27T14:59:38.237Z\",\"messageId\":"
    "\"000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000\",\"source\":"
    "\"john@example.com\",\"destination\":[\"jane@example.com\",\"richard@example.com\"],"
    "\"headersTruncated\":false,\"commonHeaders\":{\"from\":[\"John Doe <john@example.com>\"],"
    "\"messageId\":\"<bf.12@acme.example>\",\"subject\":\"Hello\"}}}";

static char *sns_envelope(const char *type, const char *message, const char *ver,
                          const char *cert_url)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "Type", type, "MessageId",
                          "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "TopicArn",
                          "arn:aws:sns:us-west-2:123456789012:MyTopic", "Message", message,
                          "Timestamp", "2012-05-02T00:54:06.655Z", "SigningCertURL", cert_url);
    if (strcmp(type, "Notification")) {
        json_object_set_new(j, "Token", json_string("2336412f37fb687f5d51e6e241d09c805a5a57b30d"));
        json_object_set_new(
            j, "SubscribeURL",
            json_string("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&"
                        "TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37"));
    }
    sns_sign(j, ver);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

#define CERT_URL                                                                                   \
    "https://sns.us-west-2.amazonaws.com/"                                                         \
    "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"

static void ses_notifications_are_verified_and_mapped(void **state)
{
    (void)state;
    assert_int_equal(make_cert(), 0);
    conf[12] = "ses_sns_cert_file";
    conf[13] = cert_path;
    void *inst = make();
    conf[12] = NULL;
    assert_non_null(inst);
    mock_events ev = {0};
    char *b = sns_envelope("Notification", ses_bounce, "1", CERT_URL);
    oc_inbound_result r = request(inst, "text/plain; charset=UTF-8", b, &ev);
    free(b);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].type, OC_EV_BOUNCE);
    assert_string_equal(ev.ev[0].provider_id, "bf.11@acme.example");
    assert_string_equal(ev.ev[0].from, "jane@example.com");
    assert_string_equal(ev.ev[0].state, "hard");
    assert_string_equal(ev.ev[0].error, "5.1.1 smtp; 550 5.1.1 <jane@example.com>... User");
    assert_string_equal(ev.ev[0].kind, "ses");
    b = sns_envelope("Notification", ses_complaint, "2", CERT_URL);
    r = request(inst, "text/plain; charset=UTF-8", b, &ev);
    free(b);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 2);
    assert_int_equal(ev.ev[1].type, OC_EV_COMPLAINT);
    assert_string_equal(ev.ev[1].provider_id, "bf.12@acme.example");
    assert_string_equal(ev.ev[1].from, "richard@example.com");
    assert_string_equal(ev.ev[1].state, "abuse");
    /* a transient bounce is soft */
    char *soft = strdup(ses_bounce);
    memcpy(strstr(soft, "\"Permanent\""), "\"Transient\"", 11);
    b = sns_envelope("Notification", soft, "2", CERT_URL);
    free(soft);
    r = request(inst, NULL, b, &ev);
    free(b);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 3);
    assert_string_equal(ev.ev[2].state, "soft");
    /* altered after signing, signed with another key, a certificate URL not
     * SNS's, an unknown signature version: 401, nothing */
    b = sns_envelope("Notification", ses_bounce, "1", CERT_URL);
    char *at = strstr(b, "Permanent");
    memcpy(at, "Transient", 9);
    r = request(inst, NULL, b, &ev);
    free(b);
    assert_int_equal(r.status, 401);
    oc_buf_free(&r.body);
    const char *urls[] = {"https://sns.us-west-2.amazonaws.com.evil.example/x.pem",
                          "http://sns.us-west-2.amazonaws.com/x.pem",
                          "https://sns.a.b.amazonaws.com/x.pem", "https://s3.amazonaws.com/x.pem"};
    for (size_t i = 0; i < 4; i++) {
        b = sns_envelope("Notification", ses_bounce, "1", urls[i]);
        r = request(inst, NULL, b, &ev);
        free(b);
        assert_int_equal(r.status, 401);
        oc_buf_free(&r.body);
    }
    b = sns_envelope("Notification", ses_bounce, "1", CERT_URL);
    at = strstr(b, "\"SignatureVersion\":\"1\"");
    assert_non_null(at);
    at[20] = '3';
    r = request(inst, NULL, b, &ev);
    free(b);
    assert_int_equal(r.status, 401);
    oc_buf_free(&r.body);
    EVP_PKEY *real = sns_key;
    sns_key = EVP_RSA_gen(2048);
    b = sns_envelope("Notification", ses_bounce, "2", CERT_URL);
    EVP_PKEY_free(sns_key);
    sns_key = real;
    r = request(inst, NULL, b, &ev);
    free(b);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.error, "bad_signature");
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 3);
    /* a subscription confirmation: verified, answered, never followed */
    b = sns_envelope("SubscriptionConfirmation", "You have chosen to subscribe to the topic", "1",
                     CERT_URL);
    r = request(inst, NULL, b, &ev);
    free(b);
    assert_int_equal(r.status, 200);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 3);
    mock_events_free(&ev);
    C->free(inst);
    /* without ses_sns_cert_file: refused */
    inst = make();
    b = sns_envelope("Notification", ses_bounce, "1", CERT_URL);
    r = request(inst, NULL, b, &ev);
    free(b);
    assert_int_equal(r.status, 403);
    oc_buf_free(&r.body);
    assert_int_equal(ev.n, 0);
    C->free(inst);
    /* a file that is no certificate: refused at load */
    conf[12] = "ses_sns_cert_file";
    conf[13] = "/dev/null";
    char err[256];
    assert_null(mock_init(C, conf, err, sizeof(err)));
    conf[12] = NULL;
    unlink(cert_path);
    EVP_PKEY_free(sns_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(return_path_is_the_envelope_sender),
        cmocka_unit_test(dsns_become_bounces),
        cmocka_unit_test(forged_or_foreign_reports_attribute_nothing),
        cmocka_unit_test(arf_reports_become_complaints),
        cmocka_unit_test(mailgun_events_are_verified_and_mapped),
        cmocka_unit_test(ses_notifications_are_verified_and_mapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
