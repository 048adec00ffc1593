/* The generic webhook connector: body template with JSON escaping, extra
 * headers, HMAC signature, id path, outcomes, and signed inbound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mock_host.h"

extern const oc_connector oc_connector_webhook;
#define C (&oc_connector_webhook)

static const char *const conf[] = {
    "url",
    "http://127.0.0.1:9/hook",
    "body",
    "{\"phone\":\"{{to}}\",\"msg\":\"{{text}}\",\"tier\":\"{{tier}}\"}",
    "header",
    "X-Api-Key: k1",
    "header",
    "X-Tenant: acme",
    "signing_secret",
    "whsec",
    "id_path",
    "data.ids.0",
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

static void body_is_rendered_escaped_headed_and_signed(void **state)
{
    const char *vars[] = {"tier", "gold \"vip\"", NULL};
    mock_vars mv = {vars};
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .to = "+15550000001",
                    .text = "line1\nline2",
                    .var = mock_var,
                    .var_ctx = &mv};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), 0);
    assert_string_equal(r.body.data, "{\"phone\":\"+15550000001\",\"msg\":\"line1\\nline2\","
                                     "\"tier\":\"gold \\\"vip\\\"\"}");
    assert_string_equal(r.headers[0], "Content-Type: application/json");
    assert_string_equal(r.headers[1], "X-Api-Key: k1");
    assert_string_equal(r.headers[2], "X-Tenant: acme");
    char want[100] = "X-Omnicast-Signature: sha256=";
    hmac_hex(EVP_sha256(), "whsec", r.body.data, r.body.len, want + strlen(want));
    assert_string_equal(r.headers[3], want);
    oc_request_free(&r);
}

static void a_missing_variable_fails_the_message(void **state)
{
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .to = "+1",
                    .text = "t",
                    .var = mock_var,
                    .var_ctx = NULL};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(*state, &m, &r, &o), -1);
    assert_string_equal(o.reason, "missing_var:tier");
    oc_request_free(&r);
}

static void outcomes_and_the_id_path(void **state)
{
    oc_response resp = mock_response(200, "{\"data\":{\"ids\":[\"abc-1\"]}}");
    oc_outcome o;
    C->classify(*state, &resp, &o);
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.provider_id, "abc-1");
    resp = mock_response(202, "accepted");
    C->classify(*state, &resp, &o);
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.provider_id, "");
    resp = mock_response(429, "");
    resp.retry_after = "3";
    C->classify(*state, &resp, &o);
    assert_int_equal(o.kind, OC_RETRY);
    assert_int_equal(o.retry_after_ms, 3000);
    resp = mock_response(500, "");
    C->classify(*state, &resp, &o);
    assert_int_equal(o.kind, OC_RETRY);
    resp = mock_response(404, "");
    C->classify(*state, &resp, &o);
    assert_int_equal(o.kind, OC_FAILED);
    assert_string_equal(o.detail, "HTTP 404");
}

static void headers_with_line_breaks_are_refused_at_init(void **state)
{
    (void)state;
    char err[256];
    const char *const bad[] = {"url", "http://x/", "header", "X-A: b\r\nX-Evil: 1", NULL};
    assert_null(mock_init(C, bad, err, sizeof(err)));
    const char *const nocolon[] = {"url", "http://x/", "header", "nonsense", NULL};
    assert_null(mock_init(C, nocolon, err, sizeof(err)));
}

static void inbound_needs_the_signature(void **state)
{
    const char *body =
        "{\"from\":\"+15550000001\",\"text\":\"hello\",\"id\":\"in-1\",\"in_reply_to\":\"abc-1\"}";
    char sig[100] = "sha256=";
    hmac_hex(EVP_sha256(), "whsec", body, strlen(body), sig + 7);
    const char *hk[] = {"X-Omnicast-Signature", sig, NULL};
    mock_headers h = {hk};
    oc_http_request req = {.method = "POST",
                           .path = "/webhooks/hook",
                           .query = "",
                           .body = body,
                           .body_len = strlen(body),
                           .header = mock_header,
                           .header_ctx = &h};
    oc_inbound_result res;
    memset(&res, 0, sizeof(res));
    mock_events ev = {0};
    C->inbound(*state, &req, &res, mock_emit, &ev);
    assert_int_equal(res.status, 200);
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.ev[0].in_reply_to, "abc-1");
    oc_buf_free(&res.body);
    mock_events_free(&ev);
    hk[1] = "sha256=00";
    memset(&res, 0, sizeof(res));
    C->inbound(*state, &req, &res, mock_emit, &ev);
    assert_int_equal(res.status, 401);
    assert_int_equal(ev.n, 0);
}

/* Issue 16: without signing_secret nothing can be verified, so inbound posts
 * are refused (403 unsigned_inbound_refused, nothing emitted) unless
 * inbound_unsigned = true; a value that is not a boolean is refused at init. */
static void unsigned_inbound_is_refused_unless_allowed(void **state)
{
    (void)state;
    const char *body = "{\"status\":{\"id\":\"abc-1\",\"state\":\"delivered\"}}";
    const char *hk[] = {NULL};
    mock_headers h = {hk};
    oc_http_request req = {.method = "POST",
                           .path = "/webhooks/hook",
                           .query = "",
                           .body = body,
                           .body_len = strlen(body),
                           .header = mock_header,
                           .header_ctx = &h};
    char err[256];
    const char *const plain[] = {"url", "http://127.0.0.1:9/hook", NULL};
    const char *const off[] = {"url", "http://127.0.0.1:9/hook", "inbound_unsigned", "false", NULL};
    const char *const on[] = {"url", "http://127.0.0.1:9/hook", "inbound_unsigned", "true", NULL};
    const char *const *refusing[] = {plain, off};
    for (size_t i = 0; i < 2; i++) {
        void *inst = mock_init(C, refusing[i], err, sizeof(err));
        assert_non_null(inst);
        oc_inbound_result res;
        memset(&res, 0, sizeof(res));
        mock_events ev = {0};
        C->inbound(inst, &req, &res, mock_emit, &ev);
        assert_int_equal(res.status, 403);
        assert_string_equal(res.error, "unsigned_inbound_refused");
        assert_int_equal(ev.n, 0);
        oc_buf_free(&res.body);
        C->free(inst);
    }
    void *inst = mock_init(C, on, err, sizeof(err));
    assert_non_null(inst);
    oc_inbound_result res;
    memset(&res, 0, sizeof(res));
    mock_events ev = {0};
    C->inbound(inst, &req, &res, mock_emit, &ev);
    assert_int_equal(res.status, 200);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.ev[0].type, OC_EV_STATUS);
    assert_string_equal(ev.ev[0].provider_id, "abc-1");
    oc_buf_free(&res.body);
    mock_events_free(&ev);
    C->free(inst);
    /* a signing_secret still wins: an unsigned post to it is 401 */
    const char *const both[] = {
        "url", "http://127.0.0.1:9/hook", "signing_secret", "s", "inbound_unsigned", "true", NULL};
    inst = mock_init(C, both, err, sizeof(err));
    assert_non_null(inst);
    memset(&res, 0, sizeof(res));
    C->inbound(inst, &req, &res, mock_emit, &ev);
    assert_int_equal(res.status, 401);
    assert_string_equal(res.error, "bad_signature");
    assert_int_equal(ev.n, 0);
    oc_buf_free(&res.body);
    C->free(inst);
    const char *const bad[] = {"url", "http://127.0.0.1:9/hook", "inbound_unsigned", "maybe", NULL};
    assert_null(mock_init(C, bad, err, sizeof(err)));
    assert_non_null(strstr(err, "inbound_unsigned"));
}

/* Issue 16: a {{var}} outside a JSON string made invalid JSON. It is refused
 * at init with a reason; {{var|json}} is the typed form. */
static void body_variables_outside_strings_are_refused_at_init(void **state)
{
    (void)state;
    static const struct {
        const char *body, *err;
    } bad[] = {
        {"{\"n\":{{count}}}", "body: {{count}} at offset 5 is outside a JSON string: write "
                              "\"{{count}}\" for a string, or {{count|json}} for a JSON value"},
        {"{\"n\":{{ count | 0 }}}", "body: {{count}} at offset 5 is outside a JSON string: write "
                                    "\"{{count}}\" for a string, or {{count|json}} for a JSON "
                                    "value"},
        {"{\"t\":\"{{text|json}}\"}", "body: {{text|json}} at offset 6 is inside a JSON string: "
                                      "write \"{{text}}\" for a string, or {{text|json}} without "
                                      "the quotes"},
        /* an escaped quote does not end the string */
        {"{\"t\":\"a\\\"{{text}}\",\"n\":{{n}}}", "body: {{n}} at offset 23 is outside a JSON "
                                                  "string: write \"{{n}}\" for a string, or "
                                                  "{{n|json}} for a JSON value"},
        {"{\"t\":\"{{text}}\"", NULL},
        {"{\"t\":\"{{text}}\",}", NULL},
        {"{\"n\":{{n|json}}{{m|json}}}", NULL},
        {"{\"t\":\"{{text\"}", "body: unclosed {{ at offset 6"},
        {"{\"n\":{{|json}}}", "body: bad variable name at offset 5"},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char err[256];
        const char *const kv[] = {"url", "http://x/", "body", bad[i].body, NULL};
        void *inst = mock_init(C, kv, err, sizeof(err));
        if (inst) {
            C->free(inst);
            fail_msg("row %zu: %s accepted", i, bad[i].body);
        }
        if (bad[i].err ? strcmp(err, bad[i].err) != 0
                       : strncmp(err, "body: not a JSON template", 25))
            fail_msg("row %zu: %s\n want: %s\n got:  %s", i, bad[i].body,
                     bad[i].err ? bad[i].err : "body: not a JSON template...", err);
    }
}

static void typed_variables_are_inserted_as_json_values(void **state)
{
    (void)state;
    char err[256];
    const char *const kv[] = {"url", "http://x/", "body",
                              "{\"n\":{{n|json}},\"f\":{{ f | json }},\"z\":{{z|json}},"
                              "\"x\":{{x|json}},\"s\":{{s|json}},\"p\":{{p|json}},"
                              "\"e\":{{e|json}},\"o\":{{o|json}},\"nl\":{{nl|json}},"
                              "\"a\":[{{n|json}},\"{{s}}\"],\"t\":\"{ \\\"{{s}} {{e|-}}\"}",
                              NULL};
    void *inst = mock_init(C, kv, err, sizeof(err));
    assert_non_null(inst);
    const char *vars[] = {"n",  "42",          "f", "true",         "z", "007", "x", "-1.5e3",
                          "s",  "Ana \"x\"\n", "p", "+15550000001", "e", "",    "o", "1.",
                          "nl", "null",        NULL};
    mock_vars mv = {vars};
    oc_message m = {.campaign = "c",
                    .message_id = "c.1",
                    .to = "+1",
                    .text = "t",
                    .var = mock_var,
                    .var_ctx = &mv};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(inst, &m, &r, &o), 0);
    assert_string_equal(
        r.body.data, "{\"n\":42,\"f\":true,\"z\":\"007\",\"x\":-1.5e3,\"s\":\"Ana \\\"x\\\"\\n\","
                     "\"p\":\"+15550000001\",\"e\":\"\",\"o\":\"1.\",\"nl\":null,"
                     "\"a\":[42,\"Ana \\\"x\\\"\\n\"],\"t\":\"{ \\\"Ana \\\"x\\\"\\n \"}");
    oc_request_free(&r);
    /* a typed variable that is missing fails the message like any other */
    const char *none[] = {NULL};
    mv.kv = none;
    memset(&r, 0, sizeof(r));
    assert_int_equal(C->build(inst, &m, &r, &o), -1);
    assert_string_equal(o.reason, "missing_var:n");
    oc_request_free(&r);
    C->free(inst);
}

/* A host whose render does not escape: the connector still never sends a
 * body that is not JSON. */
static int raw_render(const char *tmpl, const oc_message *msg, int escape, oc_buf *out,
                      char *missing, size_t missing_len)
{
    (void)escape;
    return registry_host.render(tmpl, msg, OC_ESCAPE_NONE, out, missing, missing_len);
}

static void a_rendered_body_that_is_not_json_fails_the_message(void **state)
{
    (void)state;
    oc_host host = registry_host;
    host.render = raw_render;
    const char *const kv[] = {"url", "http://x/", "body", "{\"t\":\"{{text}}\"}", NULL};
    static mock_cfg mc;
    mc.impl = C;
    mc.kv = kv;
    oc_config cfg = {.ctx = &mc, .name = "test", .get = mock_get, .get_nth = mock_get_nth};
    void *inst = NULL;
    char err[256] = "";
    assert_int_equal(C->init(&cfg, &host, &inst, err, sizeof(err)), 0);
    oc_message m = {
        .campaign = "c", .message_id = "c.1", .to = "+1", .text = "say \"hi\"", .var = mock_var};
    oc_request r = {0};
    oc_outcome o;
    assert_int_equal(C->build(inst, &m, &r, &o), -1);
    assert_int_equal(o.kind, OC_FAILED);
    assert_string_equal(o.reason, "bad_body_template");
    assert_non_null(strstr(o.detail, "rendered body is not JSON"));
    oc_request_free(&r);
    C->free(inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(body_is_rendered_escaped_headed_and_signed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_missing_variable_fails_the_message, setup, teardown),
        cmocka_unit_test_setup_teardown(outcomes_and_the_id_path, setup, teardown),
        cmocka_unit_test(headers_with_line_breaks_are_refused_at_init),
        cmocka_unit_test_setup_teardown(inbound_needs_the_signature, setup, teardown),
        cmocka_unit_test(unsigned_inbound_is_refused_unless_allowed),
        cmocka_unit_test(body_variables_outside_strings_are_refused_at_init),
        cmocka_unit_test(typed_variables_are_inserted_as_json_values),
        cmocka_unit_test(a_rendered_body_that_is_not_json_fails_the_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
