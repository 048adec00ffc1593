/* The intake (queue.c) against a fake stream: what it reads, what it hands
 * to the handlers main.c registers, what it acks and dead-letters itself,
 * back-pressure through can_take, and entries given up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_stream.h"
#include "queue.h"

typedef struct fx {
    omni o;
    omni_config cfg;
    fake_stream f;
} fx;

/* what the handlers saw */
static struct {
    int jobs, chunks;
    char job_entry[40], raw[256];
    char chunk_entry[40], campaign[64];
    long start, end;
    int take_jobs, take_chunks, held;
} H;

static void on_job(omni *o, const char *entry, const char *raw, size_t len)
{
    (void)o;
    H.jobs++;
    snprintf(H.job_entry, sizeof(H.job_entry), "%s", entry);
    snprintf(H.raw, sizeof(H.raw), "%.*s", (int)len, raw);
}

static void on_chunk(omni *o, const char *entry, const char *campaign, long start, long end)
{
    (void)o;
    H.chunks++;
    snprintf(H.chunk_entry, sizeof(H.chunk_entry), "%s", entry);
    snprintf(H.campaign, sizeof(H.campaign), "%s", campaign);
    H.start = start;
    H.end = end;
}

static int held_entries(omni *o, store_args *a)
{
    (void)o;
    if (!H.held)
        return 0;
    store_args_adds(a, "1-1");
    store_args_adds(a, "2-2");
    return 2;
}

static int can_take_jobs(omni *o)
{
    (void)o;
    return H.take_jobs;
}

static int can_take_chunks(omni *o)
{
    (void)o;
    return H.take_chunks;
}

static int setup(void **state)
{
    fx *x = calloc(1, sizeof(*x));
    x->cfg.prefix = "omni:";
    x->cfg.consumer = "c1";
    x->cfg.read_count = 10;
    x->cfg.block_ms = 100;
    x->cfg.claim_idle_ms = 30000;
    x->cfg.reclaim_interval_ms = 1000;
    x->o.cfg = &x->cfg;
    omni_key(&x->o, x->o.k_jobs, KEY_MAX, KEY_JOBS, NULL);
    omni_key(&x->o, x->o.k_chunks, KEY_MAX, KEY_CHUNKS, NULL);
    omni_key(&x->o, x->o.k_dead, KEY_MAX, KEY_DEAD, NULL);
    assert_int_equal(stream_init(&x->o), 0);
    fake_attach(&x->o, &x->f);
    memset(&H, 0, sizeof(H));
    H.take_jobs = H.take_chunks = 1;
    queue_handlers h = {.on_job = on_job,
                        .on_chunk = on_chunk,
                        .held_entries = held_entries,
                        .can_take_jobs = can_take_jobs,
                        .can_take_chunks = can_take_chunks};
    assert_int_equal(queue_init(&x->o, &h), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    fake_reset(&x->f);
    queue_free(&x->o);
    stream_free(&x->o);
    free(x);
    return 0;
}

#define READ_BOTH(from_j, from_c)                                                                  \
    "XREADGROUP GROUP omnicast c1 COUNT 10 BLOCK 100 STREAMS omni:jobs omni:chunks " from_j        \
    " " from_c

static void ready_creates_the_groups_and_reads_own_pending_first(void **state)
{
    fx *x = *state;
    queue_on_ready(&x->o);
    assert_int_equal(fake_count(&x->f, "XGROUP CREATE omni:jobs omnicast 0 MKSTREAM"), 1);
    assert_int_equal(fake_count(&x->f, "XGROUP CREATE omni:chunks omnicast 0 MKSTREAM"), 1);
    queue_maybe_read(&x->o);
    fake_cmd *c = fake_last(&x->f, "XREADGROUP");
    assert_non_null(c);
    assert_string_equal(c->text, READ_BOTH("0", "0"));
    assert_int_equal(c->conn, STORE_BLOCKING);
    assert_true(queue_reading(&x->o));
    /* one blocking read at a time */
    queue_maybe_read(&x->o);
    assert_int_equal(fake_count(&x->f, "XREADGROUP"), 1);
}

static void a_job_goes_to_on_job_and_a_chunk_to_on_chunk(void **state)
{
    fx *x = *state;
    queue_on_ready(&x->o);
    queue_maybe_read(&x->o);
    fake_cmd *c = fake_last(&x->f, "XREADGROUP");
    fake_answer(
        c, fr_arr(2,
                  fr_arr(2, fr_str("omni:jobs"),
                         fr_arr(1, fr_entry("1-0", "job", "{\"id\":\"a\"}", NULL))),
                  fr_arr(2, fr_str("omni:chunks"),
                         fr_arr(1, fr_entry("2-0", "c", "bf", "s", "500", "e", "1000", NULL)))));
    assert_int_equal(H.jobs, 1);
    assert_string_equal(H.job_entry, "1-0");
    assert_string_equal(H.raw, "{\"id\":\"a\"}");
    assert_int_equal(H.chunks, 1);
    assert_string_equal(H.chunk_entry, "2-0");
    assert_string_equal(H.campaign, "bf");
    assert_int_equal(H.start, 500);
    assert_int_equal(H.end, 1000);
    /* the handlers ack, not the intake */
    assert_int_equal(fake_count(&x->f, "XACK"), 0);
    assert_false(queue_reading(&x->o));

    /* own pending is paged from the last id seen ... */
    fake_reset(&x->f);
    queue_maybe_read(&x->o);
    assert_string_equal(fake_last(&x->f, "XREADGROUP")->text, READ_BOTH("1-0", "2-0"));
    /* ... until a page comes back empty: then only new entries */
    fake_answer(fake_last(&x->f, "XREADGROUP"),
                fr_arr(2, fr_arr(2, fr_str("omni:jobs"), fr_arr(0)),
                       fr_arr(2, fr_str("omni:chunks"), fr_arr(0))));
    fake_reset(&x->f);
    queue_maybe_read(&x->o);
    assert_string_equal(fake_last(&x->f, "XREADGROUP")->text, READ_BOTH(">", ">"));
    assert_int_equal(H.jobs, 1);
    assert_int_equal(H.chunks, 1);
}

static void a_job_entry_without_its_field_is_dead_lettered_and_acked(void **state)
{
    fx *x = *state;
    queue_on_ready(&x->o);
    queue_maybe_read(&x->o);
    fake_answer(
        fake_last(&x->f, "XREADGROUP"),
        fr_arr(1, fr_arr(2, fr_str("omni:jobs"), fr_arr(1, fr_entry("3-0", "other", "x", NULL)))));
    assert_int_equal(H.jobs, 0);
    fake_cmd *dead = fake_last(&x->f, "XADD omni:dead");
    assert_non_null(dead);
    assert_non_null(strstr(dead->text, "source jobs reason entry has no field 'job' entry 3-0"));
    fake_cmd *ack = fake_last(&x->f, "XACK");
    assert_non_null(ack);
    assert_string_equal(ack->text, "XACK omni:jobs omnicast 3-0");
    assert_true(ack > dead); /* dead-lettered first, then acked */
    assert_int_equal(queue_jobs_rejected(&x->o), 1);
    assert_int_equal(x->o.stats.dead_letters, 1);
}

static void an_entry_deleted_while_pending_is_acked(void **state)
{
    fx *x = *state;
    queue_on_ready(&x->o);
    queue_maybe_read(&x->o);
    redisReply *gone = fr_arr(2, fr_str("4-0"), fr_new(REDIS_REPLY_NIL));
    fake_answer(fake_last(&x->f, "XREADGROUP"),
                fr_arr(1, fr_arr(2, fr_str("omni:chunks"), fr_arr(1, gone))));
    assert_int_equal(H.chunks, 0);
    assert_string_equal(fake_last(&x->f, "XACK")->text, "XACK omni:chunks omnicast 4-0");
}

static void each_stage_answers_whether_it_can_take_more(void **state)
{
    fx *x = *state;
    queue_on_ready(&x->o);
    /* dispatch is full: jobs are still read (a busy connector never stops
     * intake) */
    H.take_chunks = 0;
    queue_maybe_read(&x->o);
    assert_string_equal(fake_last(&x->f, "XREADGROUP")->text,
                        "XREADGROUP GROUP omnicast c1 COUNT 10 BLOCK 100 STREAMS omni:jobs 0");
    fake_answer(fake_last(&x->f, "XREADGROUP"), fr_new(REDIS_REPLY_NIL));
    /* nobody can take anything: no read at all */
    H.take_jobs = 0;
    fake_reset(&x->f);
    queue_maybe_read(&x->o);
    assert_int_equal(fake_count(&x->f, "XREADGROUP"), 0);
    assert_false(queue_reading(&x->o));
    /* dispatch has room again: the chunks we hold pending are offered
     * again first (from "0"), then new ones */
    H.take_chunks = 1;
    queue_maybe_read(&x->o);
    assert_string_equal(fake_last(&x->f, "XREADGROUP")->text,
                        "XREADGROUP GROUP omnicast c1 COUNT 10 BLOCK 100 STREAMS omni:chunks 0");
    fake_answer(
        fake_last(&x->f, "XREADGROUP"),
        fr_arr(1, fr_arr(2, fr_str("omni:chunks"),
                         fr_arr(1, fr_entry("7-0", "c", "bf", "s", "0", "e", "10", NULL)))));
    assert_int_equal(H.chunks, 1);
    assert_string_equal(H.chunk_entry, "7-0");
    /* draining: nothing is read */
    x->o.draining = 1;
    fake_reset(&x->f);
    queue_maybe_read(&x->o);
    assert_int_equal(fake_count(&x->f, "XREADGROUP"), 0);
}

static void redis_away_or_group_gone(void **state)
{
    fx *x = *state;
    queue_on_ready(&x->o);
    queue_maybe_read(&x->o);
    fake_answer(fake_last(&x->f, "XREADGROUP"), NULL); /* connection lost */
    assert_false(queue_reading(&x->o));
    assert_int_equal(H.jobs + H.chunks, 0);
    /* the stream or group deleted under us: created again */
    fake_reset(&x->f);
    queue_maybe_read(&x->o);
    fake_answer(fake_last(&x->f, "XREADGROUP"), fr_err("NOGROUP No such key"));
    assert_int_equal(fake_count(&x->f, "XGROUP CREATE"), 2);
    /* not connected: no read starts */
    x->f.ready = 0;
    fake_reset(&x->f);
    queue_maybe_read(&x->o);
    assert_int_equal(x->f.n, 0);
}

static void held_chunks_are_kept_ours(void **state)
{
    fx *x = *state;
    queue_on_ready(&x->o);
    H.held = 1;
    assert_int_equal(queue_tick(&x->o, 1000000), 1);
    assert_int_equal(fake_count(&x->f, "XCLAIM omni:chunks omnicast c1 0 1-1 2-2 JUSTID"), 1);
    assert_int_equal(fake_count(&x->f, "XPENDING omni:jobs omnicast IDLE 30000 - + 16"), 1);
    assert_int_equal(fake_count(&x->f, "XPENDING omni:chunks omnicast IDLE 30000 - + 16"), 1);
    /* not again before reclaim_interval_ms */
    fake_reset(&x->f);
    assert_int_equal(queue_tick(&x->o, 1000500), 0);
    assert_int_equal(x->f.n, 0);
    assert_int_equal(queue_tick(&x->o, 1001000), 1);
    /* nothing held: no XCLAIM JUSTID */
    H.held = 0;
    fake_reset(&x->f);
    queue_reclaim(&x->o);
    assert_int_equal(fake_count(&x->f, "XCLAIM"), 0);
}

static void an_entry_delivered_too_often_is_given_up_with_its_error(void **state)
{
    fx *x = *state;
    queue_on_ready(&x->o);
    /* a job whose create Redis refused here */
    assert_int_equal(stream_entry_failed(&x->o, x->o.k_jobs, "5-0", "WRONGTYPE bad key"), 1);
    assert_int_equal(stream_entry_failed(&x->o, x->o.k_jobs, "5-0", "WRONGTYPE bad key"), 2);
    queue_reclaim(&x->o);
    fake_cmd *p = fake_last(&x->f, "XPENDING omni:jobs");
    assert_non_null(p);
    fake_answer(p, fr_arr(2,
                          fr_arr(4, fr_str("5-0"), fr_str("c1"), fr_int(40000),
                                 fr_int(STREAM_MAX_DELIVERIES)),
                          fr_arr(4, fr_str("6-0"), fr_str("c9"), fr_int(40000), fr_int(2))));
    /* only the one delivered STREAM_MAX_DELIVERIES times is claimed to be
     * given up; the rest is taken over to be tried again */
    fake_cmd *claim = fake_last(&x->f, "XCLAIM omni:jobs");
    assert_non_null(claim);
    assert_string_equal(claim->text, "XCLAIM omni:jobs omnicast c1 30000 5-0");
    assert_int_equal(fake_count(&x->f, "XAUTOCLAIM omni:jobs omnicast c1 30000 0-0 COUNT 16"), 1);
    fake_answer(claim, fr_arr(1, fr_entry("5-0", "job", "{\"id\":\"z\"}", NULL)));
    fake_cmd *dead = fake_last(&x->f, "XADD omni:dead");
    assert_non_null(dead);
    assert_non_null(strstr(dead->text, "reason gave up after 6 deliveries: WRONGTYPE bad key"));
    assert_non_null(strstr(dead->text, "job {\"id\":\"z\"} entry 5-0"));
    assert_string_equal(fake_last(&x->f, "XACK")->text, "XACK omni:jobs omnicast 5-0");
    assert_int_equal(queue_jobs_rejected(&x->o), 1);
    /* acked: its error is forgotten */
    assert_null(stream_entry_error(&x->o, x->o.k_jobs, "5-0"));
}

static void entries_taken_over_go_to_the_handlers(void **state)
{
    fx *x = *state;
    queue_on_ready(&x->o);
    queue_reclaim(&x->o);
    fake_answer(fake_last(&x->f, "XPENDING omni:chunks"), fr_arr(0));
    fake_cmd *ac = fake_last(&x->f, "XAUTOCLAIM omni:chunks");
    assert_non_null(ac);
    fake_answer(ac, fr_arr(3, fr_str("0-0"),
                           fr_arr(1, fr_entry("8-0", "c", "cm", "s", "10", "e", "20", NULL)),
                           fr_arr(0)));
    assert_int_equal(H.chunks, 1);
    assert_string_equal(H.chunk_entry, "8-0");
    assert_string_equal(H.campaign, "cm");
    /* dispatch full: chunks of a stalled consumer are left to others */
    H.take_chunks = 0;
    fake_reset(&x->f);
    queue_reclaim(&x->o);
    fake_answer(fake_last(&x->f, "XPENDING omni:chunks"), fr_arr(0));
    assert_int_equal(fake_count(&x->f, "XAUTOCLAIM omni:chunks"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ready_creates_the_groups_and_reads_own_pending_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_job_goes_to_on_job_and_a_chunk_to_on_chunk, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_job_entry_without_its_field_is_dead_lettered_and_acked,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(an_entry_deleted_while_pending_is_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(each_stage_answers_whether_it_can_take_more, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(redis_away_or_group_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(held_chunks_are_kept_ours, setup, teardown),
        cmocka_unit_test_setup_teardown(an_entry_delivered_too_often_is_given_up_with_its_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(entries_taken_over_go_to_the_handlers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
