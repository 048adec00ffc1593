/* The Twilio connector without a network: form body, error codes, and the
 * webhook signature over the public URL and sorted parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "mock_host.h"
#include "../../connectors/sms_segments.h"

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
        {21611, 400, OC_RETRY, "queue_full"},
        {30001, 400, OC_RETRY, "queue_full"},
        {21211, 400, OC_FAILED, "invalid_recipient"},
        {21614, 400, OC_FAILED, "invalid_recipient"},
        {21217, 400, OC_FAILED, "invalid_recipient"},
        {21612, 400, OC_FAILED, "invalid_recipient"},
        {30003, 400, OC_FAILED, "invalid_recipient"},
        {30005, 400, OC_FAILED, "unreachable_number"},
        {30006, 400, OC_FAILED, "unreachable_number"},
        {21610, 400, OC_FAILED, "opted_out"},
        {21408, 400, OC_FAILED, "policy"},
        {30007, 400, OC_FAILED, "policy"},
        {20404, 404, OC_FAILED, "auth"},
        {20003, 401, OC_HALT, "auth"},
        {20003, 500, OC_HALT, "auth"}, /* a halt code halts whatever the status */
        {30034, 400, OC_HALT, "unregistered_sender"},
        {12345, 500, OC_RETRY, "http_5xx"},
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
        /* the queue-full and throttling codes slow the whole connector */
        assert_int_equal(o.throttle, rows[i].kind == OC_RETRY && rows[i].code != 12345);
    }
    oc_outcome o = classify(*state, 201, "{\"sid\":\"SM0123\",\"status\":\"queued\"}");
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.provider_id, "SM0123");
    assert_int_equal(o.segments, 0); /* not in the answer: the host keeps build's count */
    /* the Message resource's num_segments (a string) is Twilio's own count */
    o = classify(*state, 201, "{\"sid\":\"SM0124\",\"num_segments\":\"3\"}");
    assert_int_equal(o.kind, OC_SENT);
    assert_int_equal(o.segments, 3);
    o = classify(*state, 201, "{\"sid\":\"SM0125\",\"num_segments\":\"x\"}");
    assert_int_equal(o.segments, 0);
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

/* ---- segments (sms_segments.h): GSM-7 160/153, UCS-2 70/67 */

static int segs(const char *s, int smart)
{
    return sms_segments(s, strlen(s), smart).segments;
}

static char *rep(const char *unit, int n)
{
    size_t l = strlen(unit);
    char *s = malloc(l * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(s + l * (size_t)i, unit, l);
    s[l * (size_t)n] = '\0';
    return s;
}

static void segments_gsm7_and_ucs2(void **state)
{
    (void)state;
    struct {
        const char *unit;
        int n, smart, want;
    } rows[] = {
        {"a", 0, 0, 0},
        {"a", 1, 0, 1},
        {"a", 160, 0, 1},
        {"a", 161, 0, 2}, /* 153 + 8 */
        {"a", 306, 0, 2}, /* 2 x 153 */
        {"a", 307, 0, 3},
        {"\xc3\xa9", 160, 0, 1},    /* é is GSM-7 */
        {"\xce\x94", 160, 0, 1},    /* Δ is GSM-7 */
        {"{", 80, 0, 1},            /* extension: 2 septets each, 160 */
        {"{", 81, 0, 2},            /* 162 septets */
        {"\xe2\x82\xac", 80, 0, 1}, /* € is an extension character */
        {"\xe2\x82\xac", 81, 0, 2},
        {"`", 1, 0, 1},         /* not GSM-7: UCS-2 */
        {"\xd0\x96", 70, 0, 1}, /* Ж: UCS-2, 70 units */
        {"\xd0\x96", 71, 0, 2},
        {"\xd0\x96", 134, 0, 2}, /* 2 x 67 */
        {"\xd0\x96", 135, 0, 3},
        {"\xd0\x96", 900, 0, 14},       /* 900 Cyrillic characters: 900 / 67 */
        {"\xf0\x9f\x98\x80", 35, 0, 1}, /* 😀: a surrogate pair, 2 units: 70 */
        {"\xf0\x9f\x98\x80", 36, 0, 2}, /* 72 units: 2 parts */
        {"\xf0\x9f\x98\x80", 34, 0, 1},
        {"\xe2\x80\x99", 160, 0, 3}, /* ’ is UCS-2: 160 units = 67+67+26 */
        {"\xe2\x80\x99", 160, 1, 1}, /* SmartEncoded sends ' (GSM-7) */
        {"\xe2\x80\xa6", 53, 1, 1},  /* … becomes ... : 159 septets */
        {"\xe2\x80\xa6", 54, 1, 2},  /* 162 */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *s = rep(rows[i].unit, rows[i].n);
        if (segs(s, rows[i].smart) != rows[i].want)
            fail_msg("row %zu: %d segments, want %d", i, segs(s, rows[i].smart), rows[i].want);
        free(s);
    }
    /* an extension character is never split across parts: 152 septets,
     * then '{' (2) does not fit the first part's 153; 153+2+... */
    char *s = rep("a", 152);
    char buf[400];
    snprintf(buf, sizeof(buf), "%s{%s", s, "aaaaaaaaaa");
    sms_count c = sms_segments(buf, strlen(buf), 0);
    assert_int_equal(c.septets, 164);
    assert_int_equal(c.segments, 2);
    free(s);
    /* 67 units then an emoji: the pair goes whole to the next part */
    s = rep("\xd0\x96", 66);
    snprintf(buf, sizeof(buf), "%s\xf0\x9f\x98\x80%s", s, "\xd0\x96\xd0\x96\xd0\x96");
    c = sms_segments(buf, strlen(buf), 0);
    assert_int_equal(c.units, 71);
    assert_int_equal(c.chars, 70);
    assert_int_equal(c.segments, 2);
    free(s);
    /* invalid UTF-8 is a character outside GSM-7, counted once per byte */
    c = sms_segments("a\xff", 2, 0);
    assert_int_equal(c.chars, 2);
    assert_false(c.gsm);
}

/* build returns the segment count with the request; validity_period and
 * smart_encoded become ValidityPeriod and SmartEncoded */
static void build_counts_segments_and_sends_validity(void **state)
{
    (void)state;
    char err[256];
    const char *const kv[] = {
        "account_sid",     "AC1", "auth_token",    "t",    "from", "+15551230000",
        "validity_period", "600", "smart_encoded", "true", NULL};
    void *inst = mock_init(C, kv, err, sizeof(err));
    assert_non_null(inst);
    char *text = rep("\xd0\x96", 900);
    oc_message m = {.campaign = "c", .message_id = "c.1", .to = "+15550000001", .text = text};
    oc_request r = {0};
    oc_outcome o;
    oc_outcome_set(&o, OC_FAILED, "internal", NULL);
    assert_int_equal(C->build(inst, &m, &r, &o), 0); /* 900 characters: not too long */
    assert_int_equal(o.segments, 14);
    assert_non_null(strstr(r.body.data, "&ValidityPeriod=600&SmartEncoded=true"));
    oc_request_free(&r);
    free(text);
    m.text = "Caf\xc3\xa9 \xe2\x80\x9c"
             "deals\xe2\x80\x9d"; /* smart quotes: GSM-7 when smart */
    assert_int_equal(C->build(inst, &m, &r, &o), 0);
    assert_int_equal(o.segments, 1);
    oc_request_free(&r);
    C->free(inst);
    static const char *const bad[] = {"0", "36001", "10s", "-5"};
    for (size_t i = 0; i < 4; i++) {
        const char *const b[] = {"account_sid",     "AC1",  "auth_token", "t", "from", "+1555",
                                 "validity_period", bad[i], NULL};
        assert_null(mock_init(C, b, err, sizeof(err)));
        assert_string_equal(err, "validity_period must be 1..36000 seconds");
    }
    const char *const se[] = {"account_sid", "AC1",           "auth_token", "t", "from",
                              "+1555",       "smart_encoded", "yes",        NULL};
    assert_null(mock_init(C, se, err, sizeof(err)));
    assert_string_equal(err, "smart_encoded must be true or false");
    /* without the keys neither parameter is sent */
    const char *const plain[] = {"account_sid", "AC1", "auth_token", "t", "from", "+1555", NULL};
    inst = mock_init(C, plain, err, sizeof(err));
    m.text = "hi";
    assert_int_equal(C->build(inst, &m, &r, &o), 0);
    assert_null(strstr(r.body.data, "ValidityPeriod"));
    assert_null(strstr(r.body.data, "SmartEncoded"));
    assert_int_equal(o.segments, 1);
    oc_request_free(&r);
    C->free(inst);
}

/* ---- signatures: the vectors of Twilio's own SDK tests (twilio-python's
 * tests/unit/test_request_validator.py: auth token 12345, the URL
 * https://mycompany.com/myapp.php?foo=1&bar=2) */

static void *sdk_inst(const char *public_url)
{
    char err[256];
    static const char *kv[] = {"account_sid", "AC1",        "auth_token", "12345", "from",
                               "+1555",       "public_url", NULL,         NULL};
    kv[7] = public_url;
    return mock_init(C, kv, err, sizeof(err));
}

static int sdk_post(const char *public_url, const char *query, const char *body, const char *sig,
                    mock_events *ev)
{
    void *inst = sdk_inst(public_url);
    assert_non_null(inst);
    const char *hk[] = {"X-Twilio-Signature", sig, NULL};
    mock_headers h = {hk};
    oc_http_request req = {.method = "POST",
                           .path = "/myapp.php",
                           .query = query,
                           .body = body,
                           .body_len = strlen(body),
                           .header = mock_header,
                           .header_ctx = &h};
    oc_inbound_result res;
    memset(&res, 0, sizeof(res));
    C->inbound(inst, &req, &res, mock_emit, ev);
    oc_buf_free(&res.body);
    C->free(inst);
    return res.status;
}

#define SDK_PARAMS                                                                                 \
    "CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&"                 \
    "Caller=%2B14158675309"

static void signatures_match_twilios_sdk_vectors(void **state)
{
    (void)state;
    mock_events ev = {0};
    const char *https = "https://mycompany.com/myapp.php", *q = "foo=1&bar=2";
    /* test_compute_signature / test_validation */
    assert_int_equal(sdk_post(https, q, SDK_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", &ev), 200);
    /* test_validation_adds_port_on_https: Twilio signed the URL with :443 */
    assert_int_equal(sdk_post(https, q, SDK_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=", &ev), 200);
    /* public_url with the default port: the portless signature too */
    assert_int_equal(sdk_post("https://mycompany.com:443/myapp.php", q, SDK_PARAMS,
                              "RSOYDt4T1cUTdK1PDd93/VVr8B8=", &ev),
                     200);
    assert_int_equal(sdk_post("https://mycompany.com:443/myapp.php", q, SDK_PARAMS,
                              "kvajT1Ptam85bY51eRf/AJRuM3w=", &ev),
                     200);
    /* test_validation_adds_port_on_http: :80 */
    assert_int_equal(sdk_post("http://mycompany.com/myapp.php", q, SDK_PARAMS,
                              "0ZXoZLH/DfblKGATFgpif+LLRf4=", &ev),
                     200);
    /* another port is the URL Twilio called: that signature only
     * (test_validation_removes_port_on_http's expected value) */
    assert_int_equal(sdk_post("http://mycompany.com:1234/myapp.php", q, SDK_PARAMS,
                              "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", &ev),
                     200);
    assert_int_equal(sdk_post("http://mycompany.com:1234/myapp.php", q, SDK_PARAMS,
                              "0ZXoZLH/DfblKGATFgpif+LLRf4=", &ev),
                     403);
    /* test_compute_signature_duplicate_*: sorted by name, then value */
    assert_int_equal(sdk_post(https, q, "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234",
                              "IK+Dwps556ElfBT0I3Rgjkr1wJU=", &ev),
                     200);
    /* the same parameters in another order sign the same */
    assert_int_equal(sdk_post(https, q, "Digits=1234&Sid=CA123&Digits=5678&SidAccount=AC123",
                              "IK+Dwps556ElfBT0I3Rgjkr1wJU=", &ev),
                     200);
    /* test_validation_of_body_succeeds: a JSON body through bodySHA256 */
    const char *json = "{\"property\": \"value\", \"boolean\": true}";
    const char *qb =
        "foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    assert_int_equal(sdk_post(https, qb, json, "a9nBmqA0ju/hNViExpshrM61xv4=", &ev), 200);
    /* a body that does not hash to bodySHA256 is refused, signature or not */
    assert_int_equal(sdk_post(https, qb, "{\"property\": \"value\", \"boolean\": false}",
                              "a9nBmqA0ju/hNViExpshrM61xv4=", &ev),
                     403);
    /* wrong signatures, a changed value, a wrong URL */
    assert_int_equal(sdk_post(https, q, SDK_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B9=", &ev), 403);
    assert_int_equal(sdk_post(https, q, SDK_PARAMS "x", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", &ev), 403);
    assert_int_equal(sdk_post("https://mycompany.com/other.php", q, SDK_PARAMS,
                              "RSOYDt4T1cUTdK1PDd93/VVr8B8=", &ev),
                     403);
    assert_int_equal(ev.n, 0); /* none of these is a message or a status */
    mock_events_free(&ev);
}

static void opt_out_type_is_honoured(void **state)
{
    static const struct {
        const char *type;
        int n, ev;
    } rows[] = {{"STOP", 1, OC_EV_OPTOUT},
                {"START", 1, OC_EV_OPTIN},
                {"HELP", 0, 0},
                {"OTHER", 1, OC_EV_REPLY}};
    for (size_t i = 0; i < 4; i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "To=%%2B15551230000&From=%%2B15550000001&Body=ARRET&MessageSid=SM7&"
                 "OptOutType=%s",
                 rows[i].type);
        char sorted_ot[16];
        snprintf(sorted_ot, sizeof(sorted_ot), "%s", rows[i].type);
        const char *sorted[] = {"Body",       "ARRET",        "From",       "+15550000001",
                                "MessageSid", "SM7",          "OptOutType", sorted_ot,
                                "To",         "+15551230000", NULL};
        char sig[64];
        twilio_sig("https://omni.example.com/webhooks/sms", sorted, sig);
        mock_events ev = {0};
        oc_inbound_result r = post(*state, body, sig, &ev);
        assert_int_equal(r.status, 200);
        assert_int_equal(ev.n, rows[i].n);
        if (rows[i].n) {
            assert_int_equal(ev.ev[0].type, rows[i].ev);
            assert_string_equal(ev.ev[0].from, "+15550000001");
            assert_string_equal(ev.ev[0].text, "ARRET");
        }
        oc_buf_free(&r.body);
        mock_events_free(&ev);
    }
}

static void status_error_code_is_a_number_with_its_meaning(void **state)
{
    static const struct {
        const char *code, *error, *payload;
    } rows[] = {{"30005", "30005", "failed:unreachable_number"},
                {"30003", "30003", "failed:invalid_recipient"},
                {"30034", "30034", "halt:unregistered_sender"},
                {"30008", "30008", NULL},
                {"30005x", NULL, NULL}};
    for (size_t i = 0; i < 5; i++) {
        char body[256];
        snprintf(body, sizeof(body), "MessageSid=SM1&MessageStatus=failed&ErrorCode=%s",
                 rows[i].code);
        const char *sorted[] = {"ErrorCode",     rows[i].code, "MessageSid", "SM1",
                                "MessageStatus", "failed",     NULL};
        char sig[64];
        twilio_sig("https://omni.example.com/webhooks/sms", sorted, sig);
        mock_events ev = {0};
        oc_inbound_result r = post(*state, body, sig, &ev);
        assert_int_equal(r.status, 200);
        assert_int_equal(ev.n, 1);
        if (rows[i].error)
            assert_string_equal(ev.ev[0].error, rows[i].error);
        else
            assert_null(ev.ev[0].error);
        if (rows[i].payload)
            assert_string_equal(ev.ev[0].payload, rows[i].payload);
        else
            assert_null(ev.ev[0].payload);
        oc_buf_free(&r.body);
        mock_events_free(&ev);
    }
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
        cmocka_unit_test(segments_gsm7_and_ucs2),
        cmocka_unit_test(build_counts_segments_and_sends_validity),
        cmocka_unit_test(signatures_match_twilios_sdk_vectors),
        cmocka_unit_test_setup_teardown(opt_out_type_is_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(status_error_code_is_a_number_with_its_meaning, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
