/* Token bucket, throttle window and retry backoff, with time driven by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <math.h>

#include "ratelimit.h"

static void bucket_starts_full_and_spends_its_burst(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 10, 5, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(bucket_take(&b, 0), 0);
    assert_true(bucket_take(&b, 0) > 0);
}

static void bucket_refills_at_its_rate(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 10, 1, 0);
    assert_int_equal(bucket_take(&b, 0), 0);
    long long wait = bucket_take(&b, 0);
    assert_in_range(wait, 99000, 100001); /* one token per 100 ms */
    assert_true(bucket_take(&b, 50000) > 0);
    assert_int_equal(bucket_take(&b, 100001), 0);
}

static void bucket_never_exceeds_its_burst_after_idling(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 100, 3, 0);
    for (int i = 0; i < 3; i++)
        bucket_take(&b, 0);
    int got = 0;
    while (bucket_take(&b, 60000000) == 0 && got < 100)
        got++;
    assert_int_equal(got, 3);
}

static void bucket_rate_over_a_second_matches_the_rate(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 50, 1, 0);
    int sent = 0;
    for (long long t = 0; t < 1000000; t += 1000)
        while (bucket_take(&b, t) == 0)
            sent++;
    assert_in_range(sent, 49, 51);
}

static void unlimited_bucket_never_waits(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 0, 0, 0);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(bucket_take(&b, 0), 0);
}

static void throttle_blocks_until_the_delay_ends_then_ramps_up(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 10, 10, 0);
    bucket_throttle(&b, 0, 2000000);
    assert_int_equal(bucket_take(&b, 1000000), 1000000);
    /* right after the window the bucket is empty: one token per 100 ms */
    assert_true(bucket_take(&b, 2000000) > 0);
    assert_int_equal(bucket_take(&b, 2100001), 0);
    assert_true(bucket_take(&b, 2100001) > 0);
}

static void throttle_applies_to_unlimited_buckets_too(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 0, 0, 0);
    bucket_throttle(&b, 0, 500000);
    assert_int_equal(bucket_take(&b, 100000), 400000);
    assert_int_equal(bucket_take(&b, 500000), 0);
}

static void backoff_grows_exponentially_up_to_the_cap(void **state)
{
    (void)state;
    /* rnd just under 1 gives the ceiling of each attempt's window */
    assert_int_equal(backoff_ms(1, 1000, 300000, -1, 0.999999), 1000);
    assert_int_equal(backoff_ms(2, 1000, 300000, -1, 0.999999), 2000);
    assert_int_equal(backoff_ms(4, 1000, 300000, -1, 0.999999), 8000);
    assert_int_equal(backoff_ms(30, 1000, 300000, -1, 0.999999), 300000);
}

static void backoff_is_full_jitter(void **state)
{
    (void)state;
    assert_int_equal(backoff_ms(3, 1000, 300000, -1, 0.0), 0);
    assert_int_equal(backoff_ms(3, 1000, 300000, -1, 0.5), 2000);
}

static void backoff_honours_the_provider_hint(void **state)
{
    (void)state;
    assert_int_equal(backoff_ms(1, 1000, 300000, 7000, 0.0), 7000);
    /* but never beyond the cap */
    assert_int_equal(backoff_ms(1, 1000, 5000, 7000, 0.0), 5000);
}

static void quiet_hours_defer_until_the_window_ends(void **state)
{
    (void)state;
    /* 21:00-08:00 wraps midnight */
    assert_int_equal(quiet_wait_minutes(20 * 60 + 59, 21 * 60, 8 * 60), 0);
    assert_int_equal(quiet_wait_minutes(21 * 60, 21 * 60, 8 * 60), 11 * 60);
    assert_int_equal(quiet_wait_minutes(23 * 60 + 30, 21 * 60, 8 * 60), 8 * 60 + 30);
    assert_int_equal(quiet_wait_minutes(7 * 60 + 59, 21 * 60, 8 * 60), 1);
    assert_int_equal(quiet_wait_minutes(8 * 60, 21 * 60, 8 * 60), 0);
    /* 12:00-14:00 does not */
    assert_int_equal(quiet_wait_minutes(13 * 60, 12 * 60, 14 * 60), 60);
    assert_int_equal(quiet_wait_minutes(14 * 60, 12 * 60, 14 * 60), 0);
    assert_int_equal(quiet_wait_minutes(11 * 60, 12 * 60, 12 * 60), 0);
}

/* Issue 16: rates come from outside (a connector's rate_per_s, a job's
 * rate_per_s) and must not reach a double to integer conversion out of
 * range. A rate of 1e-300 used to ask for a wait of 1e306 us. */
static void a_tiny_rate_is_clamped_to_the_slowest_rate(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 1e-300, 0, 0);
    assert_true(b.rate == BUCKET_RATE_MIN);
    assert_int_equal(bucket_take(&b, 0), 0);
    long long wait = bucket_take(&b, 0);
    assert_in_range(wait, 99000000, 100000001); /* one token per 100 s */
    bucket_init(&b, 5e-324, 1, 0);              /* the smallest subnormal */
    bucket_take(&b, 0);
    assert_in_range(bucket_take(&b, 0), 1, BUCKET_WAIT_MAX_US);
    bucket_set(&b, 1e-300, 1);
    assert_in_range(bucket_take(&b, 1), 1, BUCKET_WAIT_MAX_US);
}

static void a_huge_or_infinite_rate_is_clamped(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 1e300, 1e300, 0);
    assert_true(b.rate == BUCKET_RATE_MAX && b.burst == BUCKET_RATE_MAX);
    assert_int_equal(bucket_take(&b, 0), 0);
    bucket_init(&b, INFINITY, INFINITY, 0);
    assert_true(b.rate == BUCKET_RATE_MAX && b.burst == BUCKET_RATE_MAX);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(bucket_take(&b, 0), 0);
    /* an empty bucket at the top rate waits the least */
    bucket_init(&b, INFINITY, 1, 0);
    assert_int_equal(bucket_take(&b, 0), 0);
    assert_in_range(bucket_take(&b, 0), 1, 2);
    /* a long idle refills without overflowing */
    assert_int_equal(bucket_take(&b, LLONG_MAX / 2), 0);
}

static void nan_and_negative_rates_mean_unlimited(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, NAN, NAN, 0);
    assert_true(b.rate == 0 && b.burst == 1);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(bucket_take(&b, 0), 0);
    bucket_init(&b, -INFINITY, -5, 0);
    assert_true(b.rate == 0);
    assert_int_equal(bucket_take(&b, 0), 0);
    /* a reload with garbage keeps the bucket sane */
    bucket_init(&b, 10, 10, 0);
    bucket_set(&b, NAN, NAN);
    assert_true(b.rate == 0 && b.tokens <= b.burst);
    assert_int_equal(bucket_take(&b, 0), 0);
}

static void throttle_windows_are_clamped(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 10, 10, 0);
    bucket_throttle(&b, 1000, LLONG_MAX);
    assert_int_equal(bucket_take(&b, 1000), BUCKET_WAIT_MAX_US);
    bucket_init(&b, 10, 10, 0);
    bucket_throttle(&b, 1000, -5);
    assert_true(bucket_take(&b, 1000) >= 0);
}

static void backoff_survives_extreme_inputs(void **state)
{
    (void)state;
    assert_int_equal(backoff_ms(1000, 1000, LLONG_MAX, -1, 0.999999) >= 0, 1);
    assert_int_equal(backoff_ms(3, 1000, 300000, -1, NAN), 0);
    assert_int_equal(backoff_ms(3, 1000, 300000, -1, INFINITY), 4000);
    assert_int_equal(backoff_ms(3, -1000, -5, -1, 0.5), 0);
    assert_int_equal(backoff_ms(3, 1000, 300000, LLONG_MAX, 0.5), 300000);
    assert_int_equal(backoff_ms(INT_MAX, LLONG_MAX, LLONG_MAX, -1, 0.999999) > 0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bucket_starts_full_and_spends_its_burst),
        cmocka_unit_test(bucket_refills_at_its_rate),
        cmocka_unit_test(bucket_never_exceeds_its_burst_after_idling),
        cmocka_unit_test(bucket_rate_over_a_second_matches_the_rate),
        cmocka_unit_test(unlimited_bucket_never_waits),
        cmocka_unit_test(throttle_blocks_until_the_delay_ends_then_ramps_up),
        cmocka_unit_test(throttle_applies_to_unlimited_buckets_too),
        cmocka_unit_test(backoff_grows_exponentially_up_to_the_cap),
        cmocka_unit_test(backoff_is_full_jitter),
        cmocka_unit_test(backoff_honours_the_provider_hint),
        cmocka_unit_test(quiet_hours_defer_until_the_window_ends),
        cmocka_unit_test(a_tiny_rate_is_clamped_to_the_slowest_rate),
        cmocka_unit_test(a_huge_or_infinite_rate_is_clamped),
        cmocka_unit_test(nan_and_negative_rates_mean_unlimited),
        cmocka_unit_test(throttle_windows_are_clamped),
        cmocka_unit_test(backoff_survives_extreme_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
