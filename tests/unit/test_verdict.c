/* The host's decision on a finished transfer (verdict.c): answers go to
 * the connector; transport errors are decided by whether a byte of the
 * request had left and whether an answer head had come. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "verdict.h"

static int classified; /* calls of the fake connector's classify */
static long seen_status;
static int seen_net;

static void fake_classify(void *inst, const oc_response *r, oc_outcome *out)
{
    (void)inst;
    classified++;
    seen_status = r->status;
    seen_net = r->net_error;
    if (r->status >= 200 && r->status < 300) {
        oc_outcome_set(out, OC_SENT, NULL, NULL);
        strcpy(out->provider_id, "wamid.1");
    } else if (r->status == 401) {
        oc_outcome_set(out, OC_HALT, "auth_expired", NULL);
    } else if (r->status == 418) {
        oc_outcome_set(out, OC_FAILED, "x", NULL);
        out->kind = (oc_outcome_kind)7; /* not a kind at all */
    } else if (r->status == 503 || r->status == 429) {
        oc_outcome_set(out, OC_RETRY, "http_5xx", NULL);
    } else {
        oc_outcome_set(out, OC_FAILED, "rejected", NULL);
    }
}

static const oc_connector fake = {.type = "fake", .classify = fake_classify};
static const oc_connector fake13 = {
    .abi_major = 1, .abi_minor = 3, .type = "fake13", .classify = fake_classify};

static oc_outcome judge(int net, int sent, int answered, long status, int retry_ambiguous)
{
    oc_response r = {0};
    r.net_error = net;
    r.net_detail = net ? "Timeout was reached" : "";
    r.request_sent = sent;
    r.answered = answered;
    r.status = status;
    r.body = "";
    oc_outcome o;
    classified = 0;
    verdict(&fake, NULL, retry_ambiguous, &r, &o);
    return o;
}

static void answers_go_to_the_connector(void **state)
{
    (void)state;
    oc_outcome o = judge(OC_NET_OK, 1, 1, 200, 0);
    assert_int_equal(o.kind, OC_SENT);
    assert_int_equal(classified, 1);
    o = judge(OC_NET_OK, 1, 1, 503, 0);
    assert_int_equal(o.kind, OC_RETRY);
    /* a refusal that ended the transfer (SMTP 550 at RCPT) is an answer,
     * handed over as one */
    o = judge(OC_NET_PROTOCOL, 0, 1, 550, 0);
    assert_int_equal(o.kind, OC_FAILED);
    assert_int_equal(classified, 1);
    assert_int_equal(seen_net, OC_NET_OK);
    assert_int_equal(seen_status, 550);
    /* a 503 whose body was cut short still says 503 */
    o = judge(OC_NET_RESET, 1, 1, 503, 0);
    assert_int_equal(o.kind, OC_RETRY);
    assert_int_equal(classified, 1);
}

/* OC_HALT (ABI 1.3) passes through from a 1.3 connector; from an older
 * one, or any kind the host does not know, it is a failure. */
static void halt_passes_from_a_1_3_connector(void **state)
{
    (void)state;
    oc_response r = {0};
    r.status = 401;
    r.body = "";
    r.request_sent = r.answered = 1;
    oc_outcome o;
    verdict(&fake13, NULL, 0, &r, &o);
    assert_int_equal(o.kind, OC_HALT);
    assert_string_equal(o.reason, "auth_expired");
    verdict(&fake, NULL, 0, &r, &o);
    assert_int_equal(o.kind, OC_FAILED);
    assert_string_equal(o.reason, "bad_outcome");
    r.status = 418;
    verdict(&fake13, NULL, 0, &r, &o);
    assert_int_equal(o.kind, OC_FAILED);
    assert_string_equal(o.reason, "bad_outcome");
}

static void nothing_written_is_retried(void **state)
{
    (void)state;
    int nets[] = {OC_NET_CONNECT, OC_NET_TIMEOUT, OC_NET_RESET, OC_NET_OTHER};
    for (int i = 0; i < 4; i++) {
        oc_outcome o = judge(nets[i], 0, 0, 0, 0);
        assert_int_equal(o.kind, OC_RETRY);
        assert_string_equal(o.reason, "network");
        assert_int_equal(classified, 0);
    }
}

static void written_without_an_answer_is_uncertain(void **state)
{
    (void)state;
    oc_outcome o = judge(OC_NET_TIMEOUT, 1, 0, 0, 0);
    assert_int_equal((int)o.kind, OUT_UNCERTAIN);
    assert_string_equal(o.reason, "ambiguous_timeout");
    assert_int_equal(classified, 0);
    int nets[] = {OC_NET_RESET, OC_NET_PROTOCOL, OC_NET_OTHER};
    for (int i = 0; i < 3; i++) {
        o = judge(nets[i], 1, 0, 0, 0);
        assert_int_equal((int)o.kind, OUT_UNCERTAIN);
        assert_string_equal(o.reason, "ambiguous_reset");
        assert_int_equal(classified, 0);
    }
    /* a status seen without a whole head is not an answer either */
    o = judge(OC_NET_RESET, 1, 0, 200, 0);
    assert_int_equal((int)o.kind, OUT_UNCERTAIN);
}

static void retry_ambiguous_chooses_at_least_once(void **state)
{
    (void)state;
    oc_outcome o = judge(OC_NET_TIMEOUT, 1, 0, 0, 1);
    assert_int_equal(o.kind, OC_RETRY);
    assert_string_equal(o.reason, "ambiguous_timeout");
    o = judge(OC_NET_RESET, 1, 0, 0, 1);
    assert_int_equal(o.kind, OC_RETRY);
    assert_string_equal(o.reason, "ambiguous_reset");
}

static void a_2xx_whose_body_was_lost_is_sent(void **state)
{
    (void)state;
    oc_outcome o = judge(OC_NET_RESET, 1, 1, 200, 0);
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.reason, "unreadable_answer");
    assert_string_equal(o.provider_id, "");
    assert_int_equal(classified, 0);
    o = judge(OC_NET_OTHER, 1, 1, 201, 0); /* too large to read */
    assert_int_equal(o.kind, OC_SENT);
    assert_string_equal(o.reason, "unreadable_answer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answers_go_to_the_connector),
        cmocka_unit_test(halt_passes_from_a_1_3_connector),
        cmocka_unit_test(nothing_written_is_retried),
        cmocka_unit_test(written_without_an_answer_is_uncertain),
        cmocka_unit_test(retry_ambiguous_chooses_at_least_once),
        cmocka_unit_test(a_2xx_whose_body_was_lost_is_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
