/* The WhatsApp connector without a network: request bytes, every mapped
 * Graph API outcome, and the webhook (handshake, signature, payloads). */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mock_host.h"

extern const oc_connector oc_connector_whatsapp;
#define C (&oc_connector_whatsapp)

static const char *const conf[] = {
    "api_base",  "http://127.0.0.1:9/", "phone_number_id", "1234567890",   "access_token",
    "testtoken", "app_secret",          "appsecret",       "verify_token", "vt-123",
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

static void text_request_is_built_exactly(void **state)
{
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .channel = "whatsapp",
                    .to = "+15550000001",
                    .text = "Hi \"Ana\"\n30% off \xc3\xa9"};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_string_equal(r.url, "http://127.0.0.1:9/v21.0/1234567890/messages");
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.headers[0], "Authorization: Bearer testtoken");
    assert_string_equal(r.headers[1], "Content-Type: application/json");
    assert_string_equal(r.body.data,
                        "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                        "\"to\":\"15550000001\",\"type\":\"text\",\"text\":{\"preview_url\":false,"
                        "\"body\":\"Hi \\\"Ana\\\"\\n30% off \xc3\xa9\"}}");
    oc_request_free(&r);
}

static void template_request_carries_rendered_parameters(void **state)
{
    const char *params[] = {"Ana", "30%"};
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .to = "+15550000001",
                    .template_name = "promo",
                    .template_language = "pt_BR",
                    .template_params = params,
                    .n_template_params = 2};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_string_equal(r.body.data,
                        "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                        "\"to\":\"15550000001\",\"type\":\"template\",\"template\":{\"name\":"
                        "\"promo\",\"language\":{\"code\":\"pt_BR\"},\"components\":[{\"type\":"
                        "\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"Ana\"},{\"type\":"
                        "\"text\",\"text\":\"30%\"}]}]}}");
    oc_request_free(&r);
}

/* components in the Cloud API's shape, as the host renders them, follow
 * the short form's body; a media message carries its link, caption and
 * filename (the send-message examples of Meta's documentation) */
static void components_and_media_go_into_the_documented_shapes(void **state)
{
    const char *params[] = {"Ana"};
    const char *comps = "[{\"type\":\"header\",\"parameters\":[{\"type\":\"image\",\"image\":{"
                        "\"link\":\"https://cdn.example.com/a.png\"}}]},{\"type\":\"button\","
                        "\"sub_type\":\"quick_reply\",\"index\":\"0\",\"parameters\":[{\"type\":"
                        "\"payload\",\"payload\":\"STOP\"}]}]";
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .to = "+15550000001",
                    .template_name = "spring",
                    .template_language = "en_US",
                    .template_params = params,
                    .n_template_params = 1,
                    .template_components = comps};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_string_equal(
        r.body.data,
        "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
        "\"15550000001\",\"type\":\"template\",\"template\":{\"name\":\"spring\",\"language\":{"
        "\"code\":\"en_US\"},\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":"
        "\"text\",\"text\":\"Ana\"}]},{\"type\":\"header\",\"parameters\":[{\"type\":\"image\","
        "\"image\":{\"link\":\"https://cdn.example.com/a.png\"}}]},{\"type\":\"button\","
        "\"sub_type\":\"quick_reply\",\"index\":\"0\",\"parameters\":[{\"type\":\"payload\","
        "\"payload\":\"STOP\"}]}]}}");
    oc_request_free(&r);
    /* components alone */
    m.n_template_params = 0;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_non_null(strstr(r.body.data, "},\"components\":[{\"type\":\"header\""));
    oc_request_free(&r);
    /* something else than an array is refused, never sent */
    m.template_components = "{\"type\":\"body\"}";
    assert_int_equal(C->build(*state, &m, &r, &o), -1);
    assert_string_equal(o.reason, "template_error");
    oc_request_free(&r);

    oc_message d = {.campaign = "c",
                    .message_id = "c.2",
                    .to = "+15550000001",
                    .text = "Your invoice",
                    .media_type = "document",
                    .media_url = "https://x.example/i.pdf",
                    .media_filename = "invoice.pdf"};
    assert_int_equal(C->build(*state, &d, &r, &o), 0);
    assert_string_equal(r.body.data,
                        "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                        "\"to\":\"15550000001\",\"type\":\"document\",\"document\":{\"link\":"
                        "\"https://x.example/i.pdf\",\"caption\":\"Your invoice\",\"filename\":"
                        "\"invoice.pdf\"}}");
    oc_request_free(&r);
    d.media_type = "audio";
    assert_int_equal(C->build(*state, &d, &r, &o), 0);
    assert_string_equal(r.body.data,
                        "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                        "\"to\":\"15550000001\",\"type\":\"audio\",\"audio\":{\"link\":"
                        "\"https://x.example/i.pdf\"}}");
    oc_request_free(&r);
    d.media_type = "image";
    d.media_caption = "A \"quote\"";
    assert_int_equal(C->build(*state, &d, &r, &o), 0);
    assert_non_null(strstr(r.body.data, "\"image\":{\"link\":\"https://x.example/i.pdf\","
                                        "\"caption\":\"A \\\"quote\\\"\"}}"));
    oc_request_free(&r);
}

/* the 4096 limit counts characters: 4096 two-byte characters pass */
static void text_length_is_counted_in_characters(void **state)
{
    static char s[2 * 4097 + 1];
    for (int i = 0; i < 4096; i++)
        memcpy(s + 2 * i, "\xc3\xa9", 2);
    s[2 * 4096] = '\0';
    oc_message m = {.campaign = "c", .message_id = "c.1", .to = "+15550000001", .text = s};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    oc_request_free(&r);
    memcpy(s + 2 * 4096, "\xc3\xa9", 3);
    assert_int_equal(C->build(*state, &m, &r, &o), -1);
    assert_string_equal(o.reason, "too_long");
    oc_request_free(&r);
}

static void empty_and_oversized_messages_fail_before_sending(void **state)
{
    oc_message m = {.campaign = "c", .message_id = "c.1", .to = "+15550000001"};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), -1);
    assert_string_equal(o.reason, "no_content");
    oc_request_free(&r);
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    m.text = big;
    assert_int_equal(C->build(*state, &m, &r, &o), -1);
    assert_string_equal(o.reason, "too_long");
    oc_request_free(&r);
}

static oc_outcome classify(void *inst, long status, const char *body, const char *retry_after)
{
    oc_response r = mock_response(status, body);
    r.retry_after = retry_after;
    oc_outcome o;
    C->classify(inst, &r, &o);
    return o;
}

static void success_yields_the_wamid(void **state)
{
    oc_outcome o = classify(*state, 200,
                            "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"1\","
                            "\"wa_id\":\"1\"}],\"messages\":[{\"id\":\"wamid.ABC\"}]}",
                            NULL);
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.provider_id, "wamid.ABC");
}

/* the send answer of Meta's documentation: contacts[0].input as sent,
 * contacts[0].wa_id WhatsApp's id for the user, which for Mexican and
 * Brazilian numbers is another number (ABI 1.4 recipient_id, in the form of
 * an inbound event's from); the same digits, however written, are no alias */
static void a_wa_id_other_than_the_number_sent_to_is_the_recipient_id(void **state)
{
    oc_outcome o = classify(*state, 200,
                            "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":"
                            "\"+5215512345678\",\"wa_id\":\"525512345678\"}],\"messages\":[{"
                            "\"id\":\"wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjQ1\"}]}",
                            NULL);
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.provider_id, "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjQ1");
    assert_string_equal(o.recipient_id, "+525512345678");
    /* the full parse (an answer the fast path does not read: message_status) */
    o = classify(*state, 200,
                 "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"+55 11 "
                 "98765-4321\",\"wa_id\":\"551187654321\"}],\"messages\":[{\"id\":"
                 "\"wamid.BR1\",\"message_status\":\"accepted\"}]}",
                 NULL);
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.provider_id, "wamid.BR1");
    assert_string_equal(o.recipient_id, "+551187654321");
    o = classify(*state, 200,
                 "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"+1 (555) "
                 "000-0001\",\"wa_id\":\"15550000001\"}],\"messages\":[{\"id\":\"wamid.A\"}]}",
                 NULL);
    assert_string_equal(o.provider_id, "wamid.A");
    assert_string_equal(o.recipient_id, "");
    o = classify(*state, 200,
                 "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"15550000001\","
                 "\"wa_id\":\"15550000001\"}],\"messages\":[{\"id\":\"wamid.B\","
                 "\"message_status\":\"accepted\"}]}",
                 NULL);
    assert_string_equal(o.recipient_id, "");
    /* no contacts, or a wa_id that is not a number: nothing to map */
    o = classify(*state, 200, "{\"messages\":[{\"id\":\"wamid.C\"}]}", NULL);
    assert_string_equal(o.provider_id, "wamid.C");
    assert_string_equal(o.recipient_id, "");
    o = classify(*state, 200,
                 "{\"contacts\":[{\"input\":\"15550000001\",\"wa_id\":\"x1\"}],\"messages\":[{"
                 "\"id\":\"wamid.D\"}]}",
                 NULL);
    assert_string_equal(o.recipient_id, "");
    /* a prefix of the other is another number */
    o = classify(*state, 200,
                 "{\"contacts\":[{\"input\":\"5215512345678\",\"wa_id\":\"52155123456\"}],"
                 "\"messages\":[{\"id\":\"wamid.E\"}]}",
                 NULL);
    assert_string_equal(o.recipient_id, "+52155123456");
    /* a failure carries none */
    o = classify(*state, 400,
                 "{\"error\":{\"code\":131026,\"message\":\"x\"},\"contacts\":[{\"input\":"
                 "\"1\",\"wa_id\":\"2\"}]}",
                 NULL);
    assert_int_equal(o.kind, OC_FAILED);
    assert_string_equal(o.recipient_id, "");
}

static void graph_error_codes_map_to_outcomes(void **state)
{
    static const struct {
        int code, status, kind;
        const char *reason;
    } rows[] = {
        {130429, 429, OC_RETRY, "throttled"},
        {80007, 400, OC_RETRY, "throttled"},
        {4, 400, OC_RETRY, "throttled"},
        {131056, 400, OC_RETRY, "pair_rate_limit"},
        {131000, 500, OC_RETRY, "provider_unavailable"},
        {131016, 503, OC_RETRY, "provider_unavailable"},
        {2, 503, OC_RETRY, "provider_unavailable"},
        {131047, 400, OC_FAILED, "outside_window"},
        {131026, 400, OC_FAILED, "undeliverable"},
        {133010, 400, OC_FAILED, "not_registered"},
        {131051, 400, OC_FAILED, "unsupported_type"},
        {132000, 400, OC_FAILED, "template_error"},
        {132001, 404, OC_FAILED, "template_error"},
        {132005, 400, OC_FAILED, "template_error"},
        {132012, 400, OC_FAILED, "template_error"},
        {131048, 400, OC_RETRY, "spam_rate_limit"},
        {131057, 400, OC_RETRY, "maintenance"},
        {131050, 400, OC_FAILED, "opted_out"},
        {368, 403, OC_HALT, "policy_block"},
        {131049, 400, OC_FAILED, "not_delivered_marketing"},
        {100, 400, OC_FAILED, "invalid_parameter"},
        {190, 401, OC_HALT, "auth_expired"},
        {10, 403, OC_HALT, "permission"},
        {200, 403, OC_HALT, "permission"},
        {131031, 403, OC_HALT, "account_locked"},
        {131042, 400, OC_HALT, "payment"},
        {132015, 400, OC_HALT, "template_paused"},
        {132016, 400, OC_HALT, "template_disabled"},
        {190, 500, OC_HALT, "auth_expired"}, /* account-level whatever the status */
        {0, 401, OC_FAILED, "auth"},
        {999999, 400, OC_FAILED, "rejected"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"error\":{\"message\":\"m\",\"type\":\"OAuthException\",\"code\":%d,"
                 "\"fbtrace_id\":\"x\"}}",
                 rows[i].code);
        oc_outcome o = classify(*state, rows[i].status, body, NULL);
        if ((int)o.kind != rows[i].kind || strcmp(o.reason, rows[i].reason)) {
            fprintf(stderr, "code %d: got %d %s\n", rows[i].code, o.kind, o.reason);
            fail();
        }
    }
    oc_outcome o =
        classify(*state, 400, "{\"error\":{\"code\":131056,\"message\":\"pair\"}}", NULL);
    assert_int_equal(o.retry_after_ms, 6000);
    assert_string_equal(o.detail, "code 131056: pair");
}

/* who waits: 131056 only the recipient, 130429/80007/131048 the connector,
 * 131057 a plain retry; 131050 is final (opted_out: suppressed, no fallback) */
static void throttling_and_opt_out_codes_say_who_waits(void **state)
{
    static const struct {
        int code, status, throttle;
        long min_after;
    } rows[] = {
        {131056, 400, OC_THROTTLE_RECIPIENT, 6000},
        {130429, 429, 1, -1},
        {80007, 400, 1, -1},
        {131048, 400, 1, -1},
        {131057, 400, 0, -1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char body[200];
        snprintf(body, sizeof(body),
                 "{\"error\":{\"message\":\"m\",\"type\":\"OAuthException\",\"code\":%d,"
                 "\"error_data\":{\"messaging_product\":\"whatsapp\",\"details\":\"d\"},"
                 "\"fbtrace_id\":\"x\"}}",
                 rows[i].code);
        oc_outcome o = classify(*state, rows[i].status, body, NULL);
        assert_int_equal(o.kind, OC_RETRY);
        assert_int_equal(o.throttle, rows[i].throttle);
        if (rows[i].min_after > 0)
            assert_true(o.retry_after_ms >= rows[i].min_after);
    }
    /* a longer Retry-After on a pair-rate answer is kept */
    oc_outcome o = classify(*state, 429, "{\"error\":{\"code\":131056,\"message\":\"p\"}}", "9");
    assert_int_equal(o.throttle, OC_THROTTLE_RECIPIENT);
    assert_int_equal(o.retry_after_ms, 9000);
    o = classify(*state, 400,
                 "{\"error\":{\"message\":\"(#131050) Unable to deliver the message. This "
                 "recipient has chosen to stop receiving marketing messages on WhatsApp from your "
                 "business\",\"type\":\"OAuthException\",\"code\":131050,\"fbtrace_id\":\"A\"}}",
                 NULL);
    assert_int_equal(o.kind, OC_FAILED);
    assert_string_equal(o.reason, "opted_out");
    assert_int_equal(o.throttle, 0);
}

static void retry_after_is_honoured_in_both_forms(void **state)
{
    oc_outcome o = classify(*state, 429, "", "7");
    assert_int_equal(o.kind, OC_RETRY);
    assert_int_equal(o.throttle, 1);
    assert_int_equal(o.retry_after_ms, 7000);
    o = classify(*state, 503, "", "Wed, 21 Oct 2015 07:28:30 GMT");
    assert_int_equal(o.kind, OC_RETRY);
    assert_int_equal(o.retry_after_ms, 30000);
}

static void garbage_and_empty_bodies_never_crash(void **state)
{
    oc_outcome o = classify(*state, 200, "<html>", NULL);
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.reason, "unreadable_answer");
    assert_string_equal(o.provider_id, "");
    o = classify(*state, 200, "", NULL);
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.reason, "unreadable_answer");
    o = classify(*state, 502, "", NULL);
    assert_int_equal(o.kind, OC_RETRY);
    o = classify(*state, 400, "{\"error\":\"nope\"}", NULL);
    assert_int_equal(o.kind, OC_FAILED);
    assert_string_equal(o.reason, "rejected");
    o = classify(*state, 200, "{\"messages\":[{\"id\":7}]}", NULL);
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.reason, "unreadable_answer");
}

static oc_inbound_result inbound(void *inst, const char *method, const char *query,
                                 const char *body, const char *sig, mock_events *ev)
{
    const char *hk[] = {"X-Hub-Signature-256", sig, NULL};
    mock_headers h = {sig ? hk : NULL};
    oc_http_request req = {.method = method,
                           .path = "/webhooks/wa",
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

static void verification_handshake_echoes_the_challenge(void **state)
{
    mock_events ev = {0};
    oc_inbound_result r = inbound(
        *state, "GET", "hub.mode=subscribe&hub.verify_token=vt-123&hub.challenge=1158201444", "",
        NULL, &ev);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "1158201444");
    oc_buf_free(&r.body);
    r = inbound(*state, "GET", "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", "",
                NULL, &ev);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.error, "verify_token_mismatch");
    assert_int_equal(ev.n, 0);
}

static const char payload[] =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA\",\"changes\":[{"
    "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
    "\"display_phone_number\":\"15551230000\",\"phone_number_id\":\"1234567890\"},"
    "\"contacts\":[{\"profile\":{\"name\":\"Ana\"},\"wa_id\":\"15550000001\"}],"
    "\"messages\":[{\"from\":\"15550000001\",\"id\":\"wamid.IN1\",\"timestamp\":\"1700000000\","
    "\"type\":\"text\",\"text\":{\"body\":\"Is it still on?\"},\"context\":{\"from\":"
    "\"15551230000\",\"id\":\"wamid.OUT1\"}},"
    "{\"from\":\"15550000001\",\"id\":\"wamid.IN2\",\"timestamp\":\"1700000001\",\"type\":"
    "\"button\",\"button\":{\"text\":\"Yes please\",\"payload\":\"yes\"}},"
    "{\"from\":\"15550000001\",\"id\":\"wamid.IN3\",\"timestamp\":\"1700000002\",\"type\":"
    "\"image\",\"image\":{\"id\":\"MEDIA9\",\"mime_type\":\"image/jpeg\"}}],"
    "\"statuses\":[{\"id\":\"wamid.OUT1\",\"status\":\"delivered\",\"timestamp\":\"1700000003\","
    "\"recipient_id\":\"15550000002\"},{\"id\":\"wamid.OUT2\",\"status\":\"failed\","
    "\"timestamp\":\"1700000004\",\"recipient_id\":\"15550000003\",\"errors\":[{\"code\":131026,"
    "\"title\":\"Message undeliverable\"}]}]}}]},{\"id\":\"WABA\",\"changes\":[{\"field\":"
    "\"messages\",\"value\":{\"statuses\":[{\"id\":\"wamid.OUT3\",\"status\":\"read\","
    "\"timestamp\":\"1700000005\",\"recipient_id\":\"15550000004\"}]}}]}]}";

static void signed_payload_yields_replies_and_statuses(void **state)
{
    char sig[80] = "sha256=";
    hmac_hex(EVP_sha256(), "appsecret", payload, strlen(payload), sig + 7);
    mock_events ev = {0};
    oc_inbound_result r = inbound(*state, "POST", "", payload, sig, &ev);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 6);
    assert_int_equal(ev.ev[0].type, OC_EV_REPLY);
    assert_string_equal(ev.ev[0].from, "+15550000001");
    assert_string_equal(ev.ev[0].to, "+15551230000");
    assert_string_equal(ev.ev[0].text, "Is it still on?");
    assert_string_equal(ev.ev[0].in_reply_to, "wamid.OUT1");
    assert_string_equal(ev.ev[0].name, "Ana");
    assert_true(ev.ev[0].timestamp == 1700000000);
    assert_string_equal(ev.ev[1].text, "Yes please");
    assert_string_equal(ev.ev[1].kind, "button");
    assert_string_equal(ev.ev[2].text, "[image:MEDIA9]");
    assert_int_equal(ev.ev[3].type, OC_EV_STATUS);
    assert_string_equal(ev.ev[3].provider_id, "wamid.OUT1");
    assert_string_equal(ev.ev[3].state, "delivered");
    assert_string_equal(ev.ev[4].state, "failed");
    assert_string_equal(ev.ev[4].error, "131026: Message undeliverable");
    assert_string_equal(ev.ev[5].state, "read");
    oc_buf_free(&r.body);
    mock_events_free(&ev);
}

static void bad_or_missing_signature_is_refused_with_no_events(void **state)
{
    mock_events ev = {0};
    oc_inbound_result r =
        inbound(*state, "POST", "", payload,
                "sha256=0000000000000000000000000000000000000000000000000000000000000000", &ev);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.error, "bad_signature");
    r = inbound(*state, "POST", "", payload, NULL, &ev);
    assert_int_equal(r.status, 401);
    assert_int_equal(ev.n, 0);
}

/* the keyed HMAC context is re-initialized per request: a bad signature in
 * between leaves the next good one valid; hex digits in either case */
static void signatures_are_checked_request_after_request(void **state)
{
    char sig[80] = "sha256=";
    hmac_hex(EVP_sha256(), "appsecret", payload, strlen(payload), sig + 7);
    char upper[80];
    for (size_t i = 0; i <= strlen(sig); i++)
        upper[i] = i < 7 ? sig[i] : (char)toupper((unsigned char)sig[i]);
    char flipped[80];
    memcpy(flipped, sig, sizeof(flipped));
    flipped[40] = flipped[40] == '0' ? '1' : '0';
    const char *seq[] = {sig, flipped, sig, upper, "sha256=zz", sig};
    const int want[] = {200, 401, 200, 200, 401, 200};
    for (int k = 0; k < 6; k++) {
        mock_events ev = {0};
        oc_inbound_result r = inbound(*state, "POST", "", payload, seq[k], &ev);
        assert_int_equal(r.status, want[k]);
        assert_int_equal(ev.n, want[k] == 200 ? 6 : 0);
        oc_buf_free(&r.body);
        mock_events_free(&ev);
    }
}

static void unparseable_signed_body_is_a_400(void **state)
{
    const char *body = "{\"entry\": nope";
    char sig[80] = "sha256=";
    hmac_hex(EVP_sha256(), "appsecret", body, strlen(body), sig + 7);
    mock_events ev = {0};
    oc_inbound_result r = inbound(*state, "POST", "", body, sig, &ev);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.error, "bad_payload");
    assert_int_equal(ev.n, 0);
}

static const char *sign(const char *body, char sig[80])
{
    strcpy(sig, "sha256=");
    hmac_hex(EVP_sha256(), "appsecret", body, strlen(body), sig + 7);
    return sig;
}

#define VALUE_HEAD                                                                                 \
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA\",\"changes\":[{"         \
    "\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"        \
    "\"15551230000\",\"phone_number_id\":\"1234567890\"},"

/* the documented inbound shapes whose detail used to be lost: quick-reply
 * payloads, interactive reply ids, a flow's answer, reactions, system
 * notices */
static void inbound_detail_is_kept(void **state)
{
    static const char body[] = VALUE_HEAD
        "\"contacts\":[{\"profile\":{\"name\":\"Ana\"},\"wa_id\":\"15550000001\"}],"
        "\"messages\":["
        "{\"context\":{\"from\":\"15551230000\",\"id\":\"wamid.OUT1\"},\"from\":\"15550000001\","
        "\"id\":\"wamid.B1\",\"timestamp\":\"1700000000\",\"type\":\"button\",\"button\":{"
        "\"payload\":\"MORE_INFO\",\"text\":\"Tell me more\"}},"
        "{\"context\":{\"from\":\"15551230000\",\"id\":\"wamid.OUT2\"},\"from\":\"15550000001\","
        "\"id\":\"wamid.I1\",\"timestamp\":\"1700000001\",\"type\":\"interactive\","
        "\"interactive\":{\"type\":\"button_reply\",\"button_reply\":{\"id\":\"btn-yes\","
        "\"title\":\"Yes\"}}},"
        "{\"from\":\"15550000001\",\"id\":\"wamid.I2\",\"timestamp\":\"1700000002\",\"type\":"
        "\"interactive\",\"interactive\":{\"type\":\"list_reply\",\"list_reply\":{\"id\":"
        "\"row-2\",\"title\":\"Size M\",\"description\":\"medium\"}}},"
        "{\"context\":{\"from\":\"15551230000\",\"id\":\"wamid.OUT3\"},\"from\":\"15550000001\","
        "\"id\":\"wamid.F1\",\"timestamp\":\"1700000003\",\"type\":\"interactive\","
        "\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{\"response_json\":"
        "\"{\\\"flow_token\\\":\\\"t1\\\",\\\"size\\\":\\\"M\\\"}\",\"body\":\"Sent\",\"name\":"
        "\"flow\"}}},"
        "{\"from\":\"15550000001\",\"id\":\"wamid.R1\",\"timestamp\":\"1700000004\",\"type\":"
        "\"reaction\",\"reaction\":{\"message_id\":\"wamid.OUT4\",\"emoji\":\"\\uD83D\\uDE00\"}}"
        "]}}]},{\"id\":\"WABA\",\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\","
        "\"metadata\":{\"display_phone_number\":\"15551230000\",\"phone_number_id\":"
        "\"1234567890\"},\"messages\":[{\"from\":\"15550000001\",\"id\":\"wamid.S1\","
        "\"system\":{\"body\":\"User Ana changed from 15550000001 to 15550000009\",\"wa_id\":"
        "\"15550000009\",\"type\":\"user_changed_number\"},\"timestamp\":\"1700000005\","
        "\"type\":\"system\"}]},\"field\":\"messages\"}]}]}";
    char sig[80];
    mock_events ev = {0};
    oc_inbound_result r = inbound(*state, "POST", "", body, sign(body, sig), &ev);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 6);
    assert_string_equal(ev.ev[0].kind, "button");
    assert_string_equal(ev.ev[0].text, "Tell me more");
    assert_string_equal(ev.ev[0].payload, "MORE_INFO");
    assert_string_equal(ev.ev[0].in_reply_to, "wamid.OUT1");
    assert_string_equal(ev.ev[1].kind, "interactive");
    assert_string_equal(ev.ev[1].text, "Yes");
    assert_string_equal(ev.ev[1].payload, "btn-yes");
    assert_string_equal(ev.ev[2].text, "Size M");
    assert_string_equal(ev.ev[2].payload, "row-2");
    assert_string_equal(ev.ev[3].text, "Sent");
    assert_string_equal(ev.ev[3].payload, "{\"flow_token\":\"t1\",\"size\":\"M\"}");
    assert_string_equal(ev.ev[4].kind, "reaction");
    assert_string_equal(ev.ev[4].in_reply_to, "wamid.OUT4");
    assert_string_equal(ev.ev[4].text, "[reaction:\xf0\x9f\x98\x80]");
    assert_int_equal(ev.ev[5].type, OC_EV_REPLY);
    assert_string_equal(ev.ev[5].kind, "system");
    assert_string_equal(ev.ev[5].payload, "user_changed_number");
    assert_string_equal(ev.ev[5].text, "User Ana changed from 15550000001 to 15550000009");
    for (int i = 0; i < 5; i++)
        assert_int_equal(ev.ev[i].type, OC_EV_REPLY);
    oc_buf_free(&r.body);
    mock_events_free(&ev);
}

/* the user_preferences field (stop/resume marketing), a failed status with
 * 131050, and value.errors (logged, and an OC_EV_ERROR for the host's count) */
static void preferences_and_opt_out_statuses(void **state)
{
    static const char body[] = VALUE_HEAD
        "\"contacts\":[{\"profile\":{\"name\":\"Ana\"},\"wa_id\":\"15550000001\"}],"
        "\"user_preferences\":[{\"wa_id\":\"15550000001\",\"detail\":\"User requested to stop "
        "marketing messages\",\"category\":\"marketing_messages\",\"value\":\"stop\","
        "\"timestamp\":1731705721},{\"wa_id\":\"15550000002\",\"detail\":\"User requested to "
        "resume marketing messages\",\"category\":\"marketing_messages\",\"value\":\"resume\","
        "\"timestamp\":1731705722},{\"wa_id\":\"15550000003\",\"category\":\"other\",\"value\":"
        "\"stop\"}]},\"field\":\"user_preferences\"},{\"value\":{\"messaging_product\":"
        "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15551230000\",\"phone_number_id\":"
        "\"1234567890\"},\"statuses\":[{\"id\":\"wamid.OUT9\",\"status\":\"failed\","
        "\"timestamp\":\"1700000009\",\"recipient_id\":\"15550000004\",\"errors\":[{\"code\":"
        "131050,\"title\":\"Unable to deliver the message. This recipient has chosen to stop "
        "receiving marketing messages on WhatsApp from your business\"}]}],\"errors\":[{\"code\":"
        "131051,\"title\":\"Message type unknown\",\"message\":\"Message type unknown\","
        "\"error_data\":{\"details\":\"Message type is currently not supported\"}}]},\"field\":"
        "\"messages\"}]}]}";
    char sig[80];
    mock_events ev = {0};
    oc_inbound_result r = inbound(*state, "POST", "", body, sign(body, sig), &ev);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 4);
    assert_int_equal(ev.ev[0].type, OC_EV_OPTOUT);
    assert_string_equal(ev.ev[0].from, "+15550000001");
    assert_string_equal(ev.ev[0].kind, "user_preferences");
    assert_true(ev.ev[0].timestamp == 1731705721);
    assert_int_equal(ev.ev[1].type, OC_EV_OPTIN);
    assert_string_equal(ev.ev[1].from, "+15550000002");
    assert_int_equal(ev.ev[2].type, OC_EV_STATUS);
    assert_string_equal(ev.ev[2].state, "failed");
    assert_true(!strncmp(ev.ev[2].error, "131050: ", 8));
    assert_int_equal(ev.ev[3].type, OC_EV_ERROR);
    assert_string_equal(ev.ev[3].error, "131051 Message type unknown");
    assert_string_equal(ev.ev[3].kind, "value.errors");
    assert_string_equal(ev.ev[3].to, "+15551230000");
    oc_buf_free(&r.body);
    mock_events_free(&ev);
}

static const char *const conf_optout[] = {"api_base",
                                          "http://127.0.0.1:9/",
                                          "phone_number_id",
                                          "1234567890",
                                          "access_token",
                                          "testtoken",
                                          "app_secret",
                                          "appsecret",
                                          "optout_payloads",
                                          " STOP_PROMO , unsubscribe-btn",
                                          "preview_url",
                                          "true",
                                          NULL};

/* optout_payloads: the template's "Stop promotions" quick reply is kept as
 * a reply and opts the contact out; preview_url reaches text messages */
static void optout_payloads_and_preview_url(void **state)
{
    (void)state;
    char err[256];
    void *inst = mock_init(C, conf_optout, err, sizeof(err));
    assert_non_null(inst);
    static const char body[] = VALUE_HEAD
        "\"contacts\":[{\"profile\":{\"name\":\"Ana\"},\"wa_id\":\"15550000001\"}],"
        "\"messages\":[{\"context\":{\"from\":\"15551230000\",\"id\":\"wamid.OUT1\"},\"from\":"
        "\"15550000001\",\"id\":\"wamid.B1\",\"timestamp\":\"1700000000\",\"type\":\"button\","
        "\"button\":{\"payload\":\"stop_promo\",\"text\":\"Stop promotions\"}},"
        "{\"from\":\"15550000001\",\"id\":\"wamid.B2\",\"timestamp\":\"1700000001\",\"type\":"
        "\"button\",\"button\":{\"payload\":\"MORE\",\"text\":\"More\"}},"
        "{\"from\":\"15550000001\",\"id\":\"wamid.T1\",\"timestamp\":\"1700000002\",\"type\":"
        "\"text\",\"text\":{\"body\":\"STOP_PROMO\"}}]},\"field\":\"messages\"}]}]}";
    char sig[80];
    mock_events ev = {0};
    oc_inbound_result r = inbound(inst, "POST", "", body, sign(body, sig), &ev);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 4);
    assert_int_equal(ev.ev[0].type, OC_EV_REPLY);
    assert_string_equal(ev.ev[0].text, "Stop promotions");
    assert_int_equal(ev.ev[1].type, OC_EV_OPTOUT);
    assert_string_equal(ev.ev[1].from, "+15550000001");
    assert_string_equal(ev.ev[1].in_reply_to, "wamid.OUT1");
    assert_string_equal(ev.ev[1].kind, "payload");
    assert_int_equal(ev.ev[2].type, OC_EV_REPLY); /* another payload: a reply only */
    assert_int_equal(ev.ev[3].type, OC_EV_REPLY); /* typed text is not a payload */
    oc_buf_free(&r.body);
    mock_events_free(&ev);
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .to = "+15550000001",
                    .text = "see https://example.com"};
    oc_request q = {0};
    oc_outcome o;
    assert_int_equal(C->build(inst, &m, &q, &o), 0);
    assert_non_null(strstr(q.body.data, "\"preview_url\":true,"));
    oc_request_free(&q);
    C->free(inst);
    const char *const bad[] = {
        "phone_number_id", "1", "access_token", "t", "preview_url", "yes", NULL};
    assert_null(mock_init(C, bad, err, sizeof(err)));
    assert_string_equal(err, "preview_url must be true or false");
}

/* Business-scoped user ids (Meta, "Business-scoped user IDs"): every
 * messages webhook carries contacts[].user_id; a user with a username may
 * come without a phone number (no contacts[].wa_id, no messages[].from, the
 * message's from_user_id instead): the BSUID, as given, is the contact */
static void a_user_known_only_by_a_bsuid_is_the_contact(void **state)
{
    static const char body[] = VALUE_HEAD
        "\"contacts\":[{\"profile\":{\"name\":\"Bo\",\"username\":\"@bo\"},\"user_id\":"
        "\"US.13491208655302741918\"}],"
        "\"messages\":[{\"from_user_id\":\"US.13491208655302741918\",\"id\":\"wamid.U1\","
        "\"timestamp\":\"1739321024\",\"type\":\"text\",\"text\":{\"body\":\"hello\"}}]"
        "},\"field\":\"messages\"}]}]}";
    char sig[80];
    mock_events ev = {0};
    oc_inbound_result r = inbound(*state, "POST", "", body, sign(body, sig), &ev);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].type, OC_EV_REPLY);
    assert_string_equal(ev.ev[0].from, "US.13491208655302741918");
    assert_string_equal(ev.ev[0].text, "hello");
    assert_string_equal(ev.ev[0].name, "Bo");
    assert_null(ev.ev[0].state);
    oc_buf_free(&r.body);
    mock_events_free(&ev);

    /* no from_user_id on the message: the one contact's user_id */
    static const char body2[] = VALUE_HEAD
        "\"contacts\":[{\"profile\":{\"name\":\"Cy\"},\"user_id\":\"BR.1502576394655843\"}],"
        "\"messages\":[{\"id\":\"wamid.U2\",\"timestamp\":\"1739321025\",\"type\":\"text\","
        "\"text\":{\"body\":\"oi\"}}]},\"field\":\"messages\"}]}]}";
    r = inbound(*state, "POST", "", body2, sign(body2, sig), &ev);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.ev[0].from, "BR.1502576394655843");
    assert_string_equal(ev.ev[0].name, "Cy");
    oc_buf_free(&r.body);
    mock_events_free(&ev);

    /* a phone number and a BSUID: the phone number is the contact, as
     * before; the BSUID is its other address (state: the host's alias) */
    static const char body3[] = VALUE_HEAD
        "\"contacts\":[{\"profile\":{\"name\":\"Di\"},\"wa_id\":\"16505551234\",\"user_id\":"
        "\"US.13491208655302741918\"}],"
        "\"messages\":[{\"from\":\"16505551234\",\"from_user_id\":\"US.13491208655302741918\","
        "\"id\":\"wamid.U3\",\"timestamp\":\"1739321026\",\"type\":\"text\",\"text\":{"
        "\"body\":\"hi\"}}]},\"field\":\"messages\"}]}]}";
    r = inbound(*state, "POST", "", body3, sign(body3, sig), &ev);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.ev[0].from, "+16505551234");
    assert_string_equal(ev.ev[0].name, "Di");
    assert_string_equal(ev.ev[0].state, "US.13491208655302741918");
    oc_buf_free(&r.body);
    mock_events_free(&ev);

    /* neither: nothing to attribute it to, no event */
    static const char body4[] = VALUE_HEAD
        "\"messages\":[{\"id\":\"wamid.U4\",\"timestamp\":\"1739321027\",\"type\":\"text\","
        "\"text\":{\"body\":\"?\"}}]},\"field\":\"messages\"}]}]}";
    r = inbound(*state, "POST", "", body4, sign(body4, sig), &ev);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 0);
    oc_buf_free(&r.body);
}

/* the system messages webhook reference: user_changed_number, no contacts
 * array, system.wa_id the new number: a REPLY of kind "system" whose state
 * is the new address (connector.h) */
static void a_changed_number_notice_gives_the_new_number(void **state)
{
    static const char body[] = VALUE_HEAD
        "\"messages\":[{\"from\":\"16505551234\",\"id\":"
        "\"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=\",\"timestamp\":"
        "\"1739321024\",\"type\":\"system\",\"system\":{\"body\":\"User Sheena Nelson changed "
        "from 16505551234 to 12195555358\",\"wa_id\":\"12195555358\",\"type\":"
        "\"user_changed_number\"}}]},\"field\":\"messages\"}]}]}";
    char sig[80];
    mock_events ev = {0};
    oc_inbound_result r = inbound(*state, "POST", "", body, sign(body, sig), &ev);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].type, OC_EV_REPLY);
    assert_string_equal(ev.ev[0].kind, "system");
    assert_string_equal(ev.ev[0].from, "+16505551234");
    assert_string_equal(ev.ev[0].payload, "user_changed_number");
    assert_string_equal(ev.ev[0].state, "+12195555358");
    assert_string_equal(ev.ev[0].text,
                        "User Sheena Nelson changed from 16505551234 to 12195555358");
    oc_buf_free(&r.body);
    mock_events_free(&ev);
}

static void bad_configuration_is_refused_at_init(void **state)
{
    (void)state;
    char err[256];
    const char *const no_token[] = {"phone_number_id", "123", NULL};
    assert_null(mock_init(C, no_token, err, sizeof(err)));
    const char *const bad_id[] = {"phone_number_id", "12a", "access_token", "t", NULL};
    assert_null(mock_init(C, bad_id, err, sizeof(err)));
    assert_string_equal(err, "phone_number_id must be digits");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(text_request_is_built_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(template_request_carries_rendered_parameters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(components_and_media_go_into_the_documented_shapes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(text_length_is_counted_in_characters, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_and_oversized_messages_fail_before_sending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(success_yields_the_wamid, setup, teardown),
        cmocka_unit_test_setup_teardown(a_wa_id_other_than_the_number_sent_to_is_the_recipient_id,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_user_known_only_by_a_bsuid_is_the_contact, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_changed_number_notice_gives_the_new_number, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(graph_error_codes_map_to_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(throttling_and_opt_out_codes_say_who_waits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(retry_after_is_honoured_in_both_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(inbound_detail_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(preferences_and_opt_out_statuses, setup, teardown),
        cmocka_unit_test(optout_payloads_and_preview_url),
        cmocka_unit_test_setup_teardown(garbage_and_empty_bodies_never_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(verification_handshake_echoes_the_challenge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(signed_payload_yields_replies_and_statuses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(signatures_are_checked_request_after_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_or_missing_signature_is_refused_with_no_events, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unparseable_signed_body_is_a_400, setup, teardown),
        cmocka_unit_test(bad_configuration_is_refused_at_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
