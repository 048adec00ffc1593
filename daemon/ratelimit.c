/* Token bucket, throttle window and retry backoff: the arithmetic only, so
 * the unit tests can drive time by hand. */
#include "ratelimit.h"

void bucket_init(bucket *b, double rate, double burst, long long now_us)
{
    b->rate = rate;
    b->burst = burst >= 1 ? burst : (rate > 1 ? rate : 1);
    b->tokens = b->burst;
    b->last_us = now_us;
    b->throttled_until_us = 0;
}

void bucket_set(bucket *b, double rate, double burst)
{
    b->rate = rate;
    b->burst = burst >= 1 ? burst : (rate > 1 ? rate : 1);
    if (b->tokens > b->burst)
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
    long long wait = (long long)((1.0 - b->tokens) * 1e6 / b->rate) + 1;
    return wait > 0 ? wait : 1;
}

void bucket_throttle(bucket *b, long long now_us, long long delay_us)
{
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
    long long ceiling = base_ms;
    for (int i = 1; i < attempts && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    if (rnd < 0)
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    long long d = (long long)(rnd * (double)(ceiling + 1));
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
