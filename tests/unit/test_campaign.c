/* campaign.c against a fake stream and a store that is never connected:
 * jobs that do not validate are dead-lettered and acked, jobs Redis cannot
 * take now stay pending (not acked), and a stored spec compiles into what
 * dispatch needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "address.h"
#include "campaign.h"
#include "fake_stream.h"

typedef struct fx {
    omni o;
    omni_config cfg;
    fake_stream f;
    conn_inst ci;
    chan chans[1];
} fx;

static const char *states_seen[4];
static int n_states;

static void on_state(omni *o, const char *campaign, const char *state)
{
    (void)o;
    (void)campaign;
    if (n_states < 4)
        states_seen[n_states++] = state;
}

static int setup(void **state)
{
    fx *x = calloc(1, sizeof(*x));
    x->cfg.prefix = "omni:";
    x->cfg.consumer = "c1";
    x->cfg.max_job_bytes = 65536;
    x->cfg.max_inline_recipients = 1000;
    x->cfg.chunk_size = 500;
    x->cfg.lease_ms = 60000;
    x->o.cfg = &x->cfg;
    x->o.base = event_base_new();
    omni_key(&x->o, x->o.k_jobs, KEY_MAX, KEY_JOBS, NULL);
    omni_key(&x->o, x->o.k_chunks, KEY_MAX, KEY_CHUNKS, NULL);
    omni_key(&x->o, x->o.k_dead, KEY_MAX, KEY_DEAD, NULL);
    char err[128];
    store_events ev = {0};
    x->o.st = store_new(x->o.base, "redis://127.0.0.1:1", 1000, 100, &ev, err, sizeof(err));
    assert_non_null(x->o.st); /* never started: every command fails at once */
    x->ci.o = &x->o;
    x->ci.addr_kind = ADDR_PHONE;
    x->chans[0] = (chan){.name = "sms", .ci = &x->ci, .addr_kind = ADDR_PHONE};
    x->o.chans = x->chans;
    x->o.n_chans = 1;
    assert_int_equal(stream_init(&x->o), 0);
    fake_attach(&x->o, &x->f);
    n_states = 0;
    assert_int_equal(campaign_init(&x->o, on_state), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    fake_reset(&x->f);
    campaign_free(&x->o);
    stream_free(&x->o);
    store_free(x->o.st);
    event_base_free(x->o.base);
    free(x);
    return 0;
}

#define JOB(id, ch)                                                                                \
    "{\"type\":\"broadcast\",\"id\":\"" id "\",\"channel\":\"" ch                                  \
    "\",\"message\":{\"text\":\"hi {{name}}\"},\"recipients\":[{\"to\":\"+15550000001\"}]}"

static void handle(fx *x, const char *entry, const char *raw)
{
    campaign_handle_job(&x->o, entry, raw, strlen(raw));
}

static void a_job_that_does_not_validate_is_dead_lettered_then_acked(void **state)
{
    fx *x = *state;
    handle(x, "1-0", "{not json");
    fake_cmd *dead = fake_last(&x->f, "XADD omni:dead MAXLEN ~ 1000000 * source jobs reason ");
    assert_non_null(dead);
    assert_non_null(strstr(dead->text, " job {not json entry 1-0 at "));
    fake_cmd *ack = fake_last(&x->f, "XACK");
    assert_non_null(ack);
    assert_string_equal(ack->text, "XACK omni:jobs omnicast 1-0");
    assert_true(ack > dead);
    assert_int_equal(campaign_counters_of(&x->o)->jobs_rejected, 1);
    assert_int_equal(campaign_counters_of(&x->o)->jobs_accepted, 0);
    assert_int_equal(campaign_busy(&x->o), 0);
    assert_true(campaign_can_take(&x->o));
}

static void a_job_for_a_channel_not_configured_is_refused(void **state)
{
    fx *x = *state;
    handle(x, "2-0", JOB("bf", "fax"));
    fake_cmd *dead = fake_last(&x->f, "XADD omni:dead");
    assert_non_null(dead);
    assert_non_null(strstr(dead->text, "fax"));
    assert_string_equal(fake_last(&x->f, "XACK")->text, "XACK omni:jobs omnicast 2-0");
    assert_int_equal(campaign_counters_of(&x->o)->jobs_rejected, 1);
}

static void a_valid_job_stays_pending_while_redis_is_away(void **state)
{
    fx *x = *state;
    handle(x, "3-0", JOB("bf", "sms"));
    /* create.lua could not be called: not acked (read again later), not
     * dead, nothing counted, nothing left busy */
    assert_int_equal(fake_count(&x->f, "XACK"), 0);
    assert_int_equal(fake_count(&x->f, "XADD"), 0);
    assert_int_equal(campaign_busy(&x->o), 0);
    assert_int_equal(campaign_counters_of(&x->o)->jobs_rejected, 0);
    assert_int_equal(campaign_counters_of(&x->o)->jobs_accepted, 0);
    /* a control job the same */
    handle(x, "4-0", "{\"type\":\"pause\",\"id\":\"bf\"}");
    assert_int_equal(fake_count(&x->f, "XACK"), 0);
    assert_int_equal(campaign_busy(&x->o), 0);
    assert_int_equal(n_states, 0); /* no state change reported */
}

static void a_stored_spec_compiles(void **state)
{
    fx *x = *state;
    const char *json = "{\"type\":\"broadcast\",\"id\":\"bf\",\"channels\":[\"sms\",\"email\"],"
                       "\"message\":{\"text\":\"hi {{name}}\",\"subject\":\"s\"},\"priority\":5,"
                       "\"rate_per_s\":10,\"quiet_hours\":{\"start\":\"22:00\",\"end\":\"07:30\"},"
                       "\"defaults\":{\"name\":\"you\"}}";
    char err[128] = "";
    campaign_spec *s = campaign_spec_compile(&x->o, "bf", json, strlen(json), err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(s->id, "bf");
    assert_int_equal(s->type, JOB_BROADCAST);
    assert_int_equal(s->n_channels, 2);
    assert_ptr_equal(s->chans[0], &x->chans[0]);
    assert_null(s->chans[1]); /* email: not configured here */
    assert_int_equal(s->weight, 5);
    assert_true(s->has_rate);
    assert_true(s->has_quiet);
    assert_int_equal(s->quiet_start, 22 * 60);
    assert_int_equal(s->quiet_end, 7 * 60 + 30);
    assert_non_null(s->text);
    assert_non_null(s->subject);
    assert_null(s->html);
    assert_non_null(s->defaults);
    campaign_spec_release(&x->o, s);

    /* the default weight; no rate, no quiet hours */
    const char *plain =
        "{\"type\":\"message\",\"channels\":[\"sms\"],\"message\":{\"text\":\"x\"}}";
    s = campaign_spec_compile(&x->o, "m", plain, strlen(plain), err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(s->type, JOB_MESSAGE);
    assert_int_equal(s->weight, 1);
    assert_false(s->has_rate);
    assert_false(s->has_quiet);
    campaign_spec_release(&x->o, s);
}

static void a_bad_stored_spec_says_why(void **state)
{
    fx *x = *state;
    char err[128] = "";
    const char *bad_tmpl = "{\"channels\":[\"sms\"],\"message\":{\"text\":\"hi {{name\"}}";
    assert_null(campaign_spec_compile(&x->o, "a", bad_tmpl, strlen(bad_tmpl), err, sizeof(err)));
    assert_non_null(strstr(err, "message.text"));
    const char *none = "{\"message\":{\"text\":\"x\"}}";
    assert_null(campaign_spec_compile(&x->o, "a", none, strlen(none), err, sizeof(err)));
    assert_string_equal(err, "stored spec has no channels");
    assert_null(campaign_spec_compile(&x->o, "a", "[", 1, err, sizeof(err)));
    assert_non_null(strstr(err, "stored spec is not JSON"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_job_that_does_not_validate_is_dead_lettered_then_acked,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_job_for_a_channel_not_configured_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_valid_job_stays_pending_while_redis_is_away, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_stored_spec_compiles, setup, teardown),
        cmocka_unit_test_setup_teardown(a_bad_stored_spec_says_why, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
