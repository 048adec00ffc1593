/* dispatch.c against a fake stream and a store that is never connected:
 * malformed chunks are dead-lettered and acked, a chunk Redis cannot load
 * now is let go unacked, chunks of a campaign with enough loaded wait (held,
 * kept ours, counted against can_take), and state changes reach the
 * campaign's chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "address.h"
#include "campaign.h"
#include "dispatch.h"
#include "fake_stream.h"
#include "quiet.h"
#include "render.h"

typedef struct fx {
    omni o;
    omni_config cfg;
    fake_stream f;
    conn_inst ci;
    chan chans[1];
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof(*x));
    x->cfg.prefix = "omni:";
    x->cfg.consumer = "c1";
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
    assert_non_null(x->o.st);
    x->ci.o = &x->o;
    x->ci.addr_kind = ADDR_PHONE;
    x->ci.max_inflight = 4;
    x->ci.claim_window = 8;
    TAILQ_INIT(&x->ci.active);
    x->o.conns = &x->ci;
    x->o.n_conns = 1;
    x->chans[0] = (chan){.name = "sms", .ci = &x->ci, .addr_kind = ADDR_PHONE};
    x->o.chans = x->chans;
    x->o.n_chans = 1;
    assert_int_equal(stream_init(&x->o), 0);
    fake_attach(&x->o, &x->f);
    assert_int_equal(campaign_init(&x->o, dispatch_campaign_state), 0);
    assert_int_equal(dispatch_init(&x->o), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    fake_reset(&x->f);
    dispatch_free(&x->o);
    campaign_free(&x->o);
    stream_free(&x->o);
    store_free(x->o.st);
    event_base_free(x->o.base);
    free(x);
    return 0;
}

/* A campaign in the spec cache that already has loaded chunks to spare:
 * its next chunks wait, unloaded. */
static campaign_spec *busy_campaign(fx *x, const char *id)
{
    const char *json = "{\"type\":\"broadcast\",\"channels\":[\"sms\"],"
                       "\"message\":{\"text\":\"hi\"}}";
    char err[128];
    campaign_spec *s = campaign_spec_compile(&x->o, id, json, strlen(json), err, sizeof(err));
    assert_non_null(s);
    campaign_spec_put(&x->o, s);
    campaign_spec_release(&x->o, s); /* the cache holds it */
    s->loaded = 1000;
    return s;
}

static void a_malformed_chunk_is_dead_lettered_and_acked(void **state)
{
    fx *x = *state;
    dispatch_chunk(&x->o, "1-0", "bf", 10, 5); /* end before start */
    fake_cmd *dead = fake_last(&x->f, "XADD omni:dead");
    assert_non_null(dead);
    assert_non_null(strstr(dead->text, "source chunks reason malformed chunk entry entry 1-0"));
    fake_cmd *ack = fake_last(&x->f, "XACK");
    assert_non_null(ack);
    assert_string_equal(ack->text, "XACK omni:chunks omnicast 1-0");
    assert_true(ack > dead);
    dispatch_chunk(&x->o, "2-0", "", 0, 5); /* no campaign */
    assert_string_equal(fake_last(&x->f, "XACK")->text, "XACK omni:chunks omnicast 2-0");
    assert_int_equal(dispatch_held(&x->o), 0);
    assert_int_equal(x->o.stats.dead_letters, 2);
}

static void a_chunk_redis_cannot_load_now_stays_pending(void **state)
{
    fx *x = *state;
    dispatch_chunk(&x->o, "3-0", "bf", 0, 100);
    /* its spec could not be read: let go, not acked, read again later */
    assert_int_equal(fake_count(&x->f, "XACK"), 0);
    assert_int_equal(fake_count(&x->f, "XADD"), 0);
    assert_int_equal(dispatch_held(&x->o), 0);
    assert_false(dispatch_holds_entry(&x->o, "3-0"));
    assert_true(dispatch_can_take(&x->o));
}

static void a_waiting_chunk_is_held_and_kept_ours(void **state)
{
    fx *x = *state;
    campaign_spec *s = busy_campaign(x, "bf");
    dispatch_chunk(&x->o, "4-0", "bf", 0, 100);
    assert_int_equal(dispatch_held(&x->o), 100);
    assert_true(dispatch_holds_entry(&x->o, "4-0"));
    /* the same entry delivered again is not taken twice */
    dispatch_chunk(&x->o, "4-0", "bf", 0, 100);
    assert_int_equal(dispatch_held(&x->o), 100);
    /* the intake keeps it ours */
    store_args a = {0};
    assert_int_equal(dispatch_held_entries(&x->o, &a), 1);
    store_args_finish(&a);
    assert_int_equal(a.argc, 1);
    assert_string_equal(a.argv[0], "4-0");
    store_args_free(&a);
    assert_int_equal(fake_count(&x->f, "XACK"), 0);
    /* a pause here or seen by the poll stops it; resume starts it again */
    dispatch_campaign_state(&x->o, "bf", "paused");
    assert_int_equal(s->stopped, 1);
    dispatch_campaign_state(&x->o, "bf", "cancelled");
    assert_int_equal(s->stopped, 2);
    dispatch_campaign_state(&x->o, "bf", "running");
    assert_int_equal(s->stopped, 0);
    /* another campaign's state does not touch it */
    dispatch_campaign_state(&x->o, "other", "paused");
    assert_int_equal(s->stopped, 0);
}

static void too_many_waiting_chunks_stop_the_reads(void **state)
{
    fx *x = *state;
    busy_campaign(x, "bf");
    char id[40];
    int n = 0;
    for (; n < 1000 && dispatch_can_take(&x->o); n++) {
        snprintf(id, sizeof(id), "%d-0", 10 + n);
        dispatch_chunk(&x->o, id, "bf", n, n + 1);
    }
    /* waiting chunks cost no recipients' memory, but their number is capped */
    assert_int_equal(n, 256);
    assert_false(dispatch_can_take(&x->o));
    assert_int_equal(dispatch_held(&x->o), 256);
    char sum[256];
    dispatch_drain_summary(&x->o, sum, sizeof(sum));
    assert_string_equal(
        sum, "0 sends finished, 0 claims released unsent, 0 left on the wire (uncertain)");
}

/* render.c: vars, the campaign's defaults, the built-in names, numbers,
 * and a variable nobody gives */
static void a_message_renders_from_vars_defaults_and_built_ins(void **state)
{
    fx *x = *state;
    const char *json = "{\"channels\":[\"sms\"],\"defaults\":{\"name\":\"you\"},"
                       "\"message\":{\"text\":\"hi {{name}}, {{n}} {{to}} {{campaign}} "
                       "{{message_id}}\",\"subject\":\"re: {{text}}\"}}";
    char err[128];
    campaign_spec *sp = campaign_spec_compile(&x->o, "bf", json, strlen(json), err, sizeof(err));
    assert_non_null(sp);
    renderer *rd = renderer_new();
    json_t *vars = json_pack("{s:i}", "n", 42);
    render_vars v = {.vars = vars,
                     .defaults = sp->defaults,
                     .to = "+15550000001",
                     .channel = "sms",
                     .campaign = "bf",
                     .message_id = "bf.7"};
    oc_message m = {0};
    char missing[64] = "";
    assert_int_equal(render_message(rd, sp, &v, &m, missing, sizeof(missing)), 0);
    assert_string_equal(m.text, "hi you, 42 +15550000001 bf bf.7");
    assert_string_equal(m.subject, "re: hi you, 42 +15550000001 bf bf.7");
    assert_null(m.html);
    assert_string_equal(m.var(&m, "channel", 7), "sms");
    /* the recipient's own value wins over the default */
    json_object_set_new(vars, "name", json_string("Ada"));
    assert_int_equal(render_message(rd, sp, &v, &m, missing, sizeof(missing)), 0);
    assert_string_equal(m.text, "hi Ada, 42 +15550000001 bf bf.7");
    campaign_spec_release(&x->o, sp);

    const char *miss = "{\"channels\":[\"sms\"],\"message\":{\"text\":\"hi {{nobody}}\"}}";
    sp = campaign_spec_compile(&x->o, "m", miss, strlen(miss), err, sizeof(err));
    assert_non_null(sp);
    v.defaults = sp->defaults; /* the first spec's were freed with it */
    assert_int_equal(render_message(rd, sp, &v, &m, missing, sizeof(missing)), -1);
    assert_string_equal(missing, "nobody");
    campaign_spec_release(&x->o, sp);
    json_decref(vars);
    renderer_free(rd);
}

/* quiet.c: UTC without a zone; a fixed-offset zone; outside quiet hours */
static void quiet_hours_end_in_the_recipients_time(void **state)
{
    (void)state;
    const char *tz0 = getenv("TZ");
    char before[128] = "";
    snprintf(before, sizeof(before), "%s", tz0 ? tz0 : "(unset)");
    quiet_zones *z = quiet_zones_new();
    /* 2026-11-30 23:30:00 UTC */
    long long now = 1796081400000LL;
    /* quiet 22:00-07:00 UTC: it ends at 07:00 the next morning */
    assert_int_equal(quiet_until(z, 22 * 60, 7 * 60, NULL, now), now + 7 * 3600000LL + 1800000LL);
    /* 09:00-17:00 UTC is not quiet at 23:30 */
    assert_int_equal(quiet_until(z, 9 * 60, 17 * 60, NULL, now), 0);
    /* in UTC+2 ("Etc/GMT-2") it is 01:30: quiet until 07:00 local */
    assert_int_equal(quiet_tz_offset(z, "Etc/GMT-2", now / 1000), 7200);
    assert_int_equal(quiet_until(z, 22 * 60, 7 * 60, "Etc/GMT-2", now),
                     now + 5 * 3600000LL + 1800000LL);
    /* TZ is left as it was */
    const char *tz1 = getenv("TZ");
    assert_string_equal(tz1 ? tz1 : "(unset)", before);
    quiet_zones_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_malformed_chunk_is_dead_lettered_and_acked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_chunk_redis_cannot_load_now_stays_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_waiting_chunk_is_held_and_kept_ours, setup, teardown),
        cmocka_unit_test_setup_teardown(too_many_waiting_chunks_stop_the_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(a_message_renders_from_vars_defaults_and_built_ins, setup,
                                        teardown),
        cmocka_unit_test(quiet_hours_end_in_the_recipients_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
