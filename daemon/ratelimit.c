/* Token bucket, throttle window and retry backoff: the arithmetic only, so
 * the unit tests can drive time by hand. */
#include "ratelimit.h"

#include <limits.h>

/* Rates and bursts come from outside (the connector's rate_per_s, a job's
 * rate_per_s): any double is brought into a range where the arithmetic
 * below cannot overflow or convert an out-of-range value to an integer.
 * NaN and anything not above 0 mean unlimited, as for the callers that test
 * "rate > 0". */
static double clamp_rate(double rate)
{
    if (!(rate > 0)) /* NaN too */
        return 0;
    if (rate < BUCKET_RATE_MIN)
        return BUCKET_RATE_MIN;
    if (rate > BUCKET_RATE_MAX)
        return BUCKET_RATE_MAX;
    return rate;
}

static double clamp_burst(double burst, double rate)
{
    if (!(burst >= 1)) /* NaN too */
        return rate > 1 ? rate : 1;
    return burst > BUCKET_RATE_MAX ? BUCKET_RATE_MAX : burst;
}

/* A double number of microseconds as a wait in [1, BUCKET_WAIT_MAX_US]. */
static long long wait_us(double us)
{
    if (!(us >= 1)) /* NaN too */
        return 1;
    if (us >= (double)BUCKET_WAIT_MAX_US)
        return BUCKET_WAIT_MAX_US;
    return (long long)us;
}

void bucket_init(bucket *b, double rate, double burst, long long now_us)
{
    b->rate = clamp_rate(rate);
    b->burst = clamp_burst(burst, b->rate);
    b->tokens = b->burst;
    b->last_us = now_us;
    b->throttled_until_us = 0;
}

void bucket_set(bucket *b, double rate, double burst)
{
    b->rate = clamp_rate(rate);
    b->burst = clamp_burst(burst, b->rate);
    if (!(b->tokens <= b->burst))
        b->tokens = b->burst;
}

long long bucket_take(bucket *b, long long now_us)
{
    if (now_us < b->throttled_until_us)
        return b->throttled_until_us - now_us;
    if (b->rate <= 0)
        return 0;
    if (now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) * b->rate / 1e6;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_us = now_us;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    return wait_us((1.0 - b->tokens) * 1e6 / b->rate + 1);
}

void bucket_throttle(bucket *b, long long now_us, long long delay_us)
{
    if (delay_us < 0)
        delay_us = 0;
    if (delay_us > BUCKET_WAIT_MAX_US)
        delay_us = BUCKET_WAIT_MAX_US;
    long long until = now_us + delay_us;
    if (until > b->throttled_until_us)
        b->throttled_until_us = until;
    b->tokens = 0;
    b->last_us = b->throttled_until_us;
}

long long backoff_ms(int attempts, long long base_ms, long long cap_ms, long long hint_ms,
                     double rnd)
{
    if (attempts < 1)
        attempts = 1;
    if (base_ms < 0)
        base_ms = 0;
    if (cap_ms < 0)
        cap_ms = 0;
    long long ceiling = base_ms;
    for (int i = 1; i < attempts && ceiling < cap_ms && ceiling <= LLONG_MAX / 2; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    if (!(rnd >= 0)) /* NaN too */
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    double span = rnd * ((double)ceiling + 1.0);
    long long d = span >= (double)ceiling ? ceiling : (long long)span;
    if (hint_ms > d)
        d = hint_ms > cap_ms ? cap_ms : hint_ms;
    return d;
}

int quiet_wait_minutes(int now_min, int start, int end)
{
    if (start == end)
        return 0;
    int inside =
        start < end ? (now_min >= start && now_min < end) : (now_min >= start || now_min < end);
    if (!inside)
        return 0;
    int wait = end - now_min;
    return wait > 0 ? wait : wait + 1440;
}
