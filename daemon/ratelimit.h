/* Rate and retry arithmetic, pure: a token bucket per connector (and per
 * campaign), a throttle window after a provider says "slow down", and
 * exponential backoff with full jitter for retries. */
#ifndef OMNI_RATELIMIT_H
#define OMNI_RATELIMIT_H

#include <stdint.h>

typedef struct bucket {
    double rate;  /* tokens per second; 0 = unlimited */
    double burst; /* capacity */
    double tokens;
    long long last_us;
    long long throttled_until_us; /* provider asked us to pause until then */
} bucket;

/* Every rate is brought into [BUCKET_RATE_MIN, BUCKET_RATE_MAX] tokens per
 * second (NaN and values not above 0: unlimited), bursts to at most
 * BUCKET_RATE_MAX, and waits and throttle windows to BUCKET_WAIT_MAX_US, so
 * no input (tiny, huge, NaN, inf) overflows the integer arithmetic. */
#define BUCKET_RATE_MIN 0.01 /* one token every 100 s, as JOB_RATE_MIN */
#define BUCKET_RATE_MAX 1e7
#define BUCKET_WAIT_MAX_US (86400LL * 1000000LL) /* one day */

void bucket_init(bucket *b, double rate, double burst, long long now_us);
/* Change rate/burst (config reload) keeping the current fill. */
void bucket_set(bucket *b, double rate, double burst);
/* Take one token if available: returns 0; otherwise returns the number of
 * microseconds until one will be (> 0). */
long long bucket_take(bucket *b, long long now_us);
/* Stop handing out tokens for delay_us (Retry-After, throttling codes);
 * afterwards the bucket restarts empty so the rate ramps back up. */
void bucket_throttle(bucket *b, long long now_us, long long delay_us);

/* Backoff before attempt n+1 after n failed attempts (n >= 1): a uniform
 * random delay in [0, min(cap, base * 2^(n-1))] ("full jitter"), but at least
 * hint_ms when the provider gave one. rnd is a uniform value in [0, 1). */
long long backoff_ms(int attempts, long long base_ms, long long cap_ms, long long hint_ms,
                     double rnd);

/* Quiet hours: with the local minute of the day `now_min` (0..1439) and a
 * window [start, end) (which may wrap past midnight), return 0 when
 * sending is allowed, else the minutes until the window ends. */
int quiet_wait_minutes(int now_min, int start, int end);

#endif
