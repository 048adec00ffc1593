/* The Twilio connector without a network: form body, error codes, and the
 * webhook signature over the public URL and sorted parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "mock_host.h"

extern const oc_connector oc_connector_twilio;
#define C (&oc_connector_twilio)

static const char *const conf[] = {"api_base",
                                   "http://127.0.0.1:9",
                                   "account_sid",
                                   "AC123",
                                   "auth_token",
                                   "tok3n",
                                   "from",
                                   "+15551230000",
                                   "status_callback",
                                   "https://omni.example.com/webhooks/sms",
                                   "public_url",
                                   "https://omni.example.com/webhooks/sms",
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

static void form_request_is_built_exactly(void **state)
{
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .to = "+15550000001",
                    .text = "Hi Ana & co: 30% off = yes \xc3\xa9"};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_string_equal(r.url, "http://127.0.0.1:9/2010-04-01/Accounts/AC123/Messages.json");
    assert_string_equal(r.userpwd, "AC123:tok3n");
    assert_string_equal(r.headers[0], "Content-Type: application/x-www-form-urlencoded");
    assert_string_equal(r.body.data,
                        "To=%2B15550000001&From=%2B15551230000&Body=Hi%20Ana%20%26%20co%3A%2030%"
                        "25%20off%20%3D%20yes%20%C3%A9&StatusCallback=https%3A%2F%2Fomni.example."
                        "com%2Fwebhooks%2Fsms");
    oc_request_free(&r);
}

/* MMS: MediaUrl beside the Body (Twilio's Messages resource), or alone;
 * 1600 is counted in characters */
static void media_becomes_media_url_and_length_counts_characters(void **state)
{
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .to = "+15550000001",
                    .text = "See this",
                    .media_type = "image",
                    .media_url = "https://x.example/a.png?s=1&t=2"};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_string_equal(r.body.data,
                        "To=%2B15550000001&From=%2B15551230000&Body=See%20this&MediaUrl=https%3A%"
                        "2F%2Fx.example%2Fa.png%3Fs%3D1%26t%3D2&StatusCallback=https%3A%2F%2Fomni."
                        "example.com%2Fwebhooks%2Fsms");
    oc_request_free(&r);
    m.text = NULL;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_null(strstr(r.body.data, "Body="));
    assert_non_null(strstr(r.body.data, "MediaUrl="));
    oc_request_free(&r);
    static char s[2 * 1601 + 1];
    for (int i = 0; i < 1600; i++)
        memcpy(s + 2 * i, "\xc3\xa9", 2);
    s[3200] = '\0';
    oc_message t = {.campaign = "c", .message_id = "c.1", .to = "+15550000001", .text = s};
    assert_int_equal(C->build(*state, &t, &r, &o), 0);
    oc_request_free(&r);
    memcpy(s + 3200, "\xc3\xa9", 3);
    assert_int_equal(C->build(*state, &t, &r, &o), -1);
    assert_string_equal(o.reason, "too_long");
    oc_request_free(&r);
}

static void from_or_service_sid_exactly_one(void **state)
{
    (void)state;
    char err[256];
    const char *const both[] = {"account_sid",           "AC1", "auth_token", "t", "from", "+1555",
                                "messaging_service_sid", "MG1", NULL};
    assert_null(mock_init(C, both, err, sizeof(err)));
    const char *const none[] = {"account_sid", "AC1", "auth_token", "t", NULL};
    assert_null(mock_init(C, none, err, sizeof(err)));
    assert_string_equal(err, "give exactly one of from and messaging_service_sid");
}

static oc_outcome classify(void *inst, long status, const char *body)
{
    oc_response r = mock_response(status, body);
    oc_outcome o;
    C->classify(inst, &r, &o);
    return o;
}

static void error_codes_map_to_outcomes(void **state)
{
    static const struct {
        int code, status, kind;
        const char *reason;
    } rows[] = {
        {20429, 429, OC_RETRY, "throttled"},
        {21211, 400, OC_FAILED, "invalid_recipient"},
        {21614, 400, OC_FAILED, "invalid_recipient"},
        {21610, 400, OC_FAILED, "opted_out"},
        {21408, 400, OC_FAILED, "policy"},
        {20003, 401, OC_FAILED, "auth"},
        {30001, 500, OC_RETRY, "http_5xx"},
        {12345, 400, OC_FAILED, "rejected"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"code\":%d,\"message\":\"m\",\"more_info\":\"x\",\"status\":%d}", rows[i].code,
                 rows[i].status);
        oc_outcome o = classify(*state, rows[i].status, body);
        assert_int_equal(o.kind, rows[i].kind);
        assert_string_equal(o.reason, rows[i].reason);
    }
    oc_outcome o = classify(*state, 201, "{\"sid\":\"SM0123\",\"status\":\"queued\"}");
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.provider_id, "SM0123");
    o = classify(*state, 503, "not json");
    assert_int_equal(o.kind, OC_RETRY);
    o = classify(*state, 201, "");
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.reason, "unreadable_answer");
}

/* Twilio's scheme, computed independently: URL + sorted name/value pairs */
static void twilio_sig(const char *url, const char *const *sorted_kv, char *out)
{
    char data[2048];
    snprintf(data, sizeof(data), "%s", url);
    for (const char *const *p = sorted_kv; *p; p++)
        strncat(data, *p, sizeof(data) - strlen(data) - 1);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    HMAC(EVP_sha1(), "tok3n", 5, (unsigned char *)data, strlen(data), mac, &ml);
    EVP_EncodeBlock((unsigned char *)out, mac, (int)ml);
}

static oc_inbound_result post(void *inst, const char *body, const char *sig, mock_events *ev)
{
    const char *hk[] = {"X-Twilio-Signature", sig, NULL};
    mock_headers h = {hk};
    oc_http_request req = {.method = "POST",
                           .path = "/webhooks/sms",
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

static void inbound_sms_with_a_valid_signature_is_a_reply(void **state)
{
    const char *body = "To=%2B15551230000&From=%2B15550000001&Body=STOP+now&MessageSid=SM9&"
                       "AccountSid=AC123&NumMedia=0";
    const char *sorted[] = {"AccountSid",   "AC123",        "Body", "STOP now", "From",
                            "+15550000001", "MessageSid",   "SM9",  "NumMedia", "0",
                            "To",           "+15551230000", NULL};
    char sig[64];
    twilio_sig("https://omni.example.com/webhooks/sms", sorted, sig);
    mock_events ev = {0};
    oc_inbound_result r = post(*state, body, sig, &ev);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/xml");
    assert_string_equal(r.body.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>");
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].type, OC_EV_REPLY);
    assert_string_equal(ev.ev[0].from, "+15550000001");
    assert_string_equal(ev.ev[0].text, "STOP now");
    assert_string_equal(ev.ev[0].provider_id, "SM9");
    oc_buf_free(&r.body);
    mock_events_free(&ev);
}

static void status_callback_is_a_status_event(void **state)
{
    const char *body = "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003&To=%2B15550000001"
                       "&From=%2B15551230000";
    const char *sorted[] = {
        "ErrorCode",     "30003",       "From", "+15551230000", "MessageSid", "SM1",
        "MessageStatus", "undelivered", "To",   "+15550000001", NULL};
    char sig[64];
    twilio_sig("https://omni.example.com/webhooks/sms", sorted, sig);
    mock_events ev = {0};
    oc_inbound_result r = post(*state, body, sig, &ev);
    assert_int_equal(r.status, 200);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].type, OC_EV_STATUS);
    assert_string_equal(ev.ev[0].state, "failed");
    assert_string_equal(ev.ev[0].error, "30003");
    oc_buf_free(&r.body);
    mock_events_free(&ev);
}

static void bad_signature_and_bad_encoding_store_nothing(void **state)
{
    mock_events ev = {0};
    oc_inbound_result r = post(*state, "From=%2B1555&Body=hi", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", &ev);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.error, "bad_signature");
    r = post(*state, "From=%ZZ&Body=hi", "x", &ev);
    assert_int_equal(r.status, 400);
    assert_int_equal(ev.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(form_request_is_built_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(media_becomes_media_url_and_length_counts_characters, setup,
                                        teardown),
        cmocka_unit_test(from_or_service_sid_exactly_one),
        cmocka_unit_test_setup_teardown(error_codes_map_to_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(inbound_sms_with_a_valid_signature_is_a_reply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(status_callback_is_a_status_event, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_signature_and_bad_encoding_store_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
