/* The per-process memory of recipients (seen.c): two bits per recipient,
 * per campaign and channel, growing with the highest index touched, and
 * the least recently used campaign nobody holds forgotten first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "seen.h"

static void states_are_kept_per_channel_and_index(void **state)
{
    (void)state;
    seen *s = seen_new(4);
    seen_campaign *c = seen_get(s, "bf-2026");
    assert_non_null(c);
    assert_int_equal(seen_state(c, 0, 0), SEEN_NONE);
    assert_int_equal(seen_state(c, 0, 999999), SEEN_NONE); /* never grown: none */
    assert_int_equal(seen_set(c, 0, 5, SEEN_ACTIVE), 0);
    assert_int_equal(seen_set(c, 1, 5, SEEN_SENT), 0);
    assert_int_equal(seen_set(c, 0, 6, SEEN_UNCERTAIN), 0);
    assert_int_equal(seen_set(c, 0, 4, SEEN_SENT), 0);
    assert_int_equal(seen_state(c, 0, 5), SEEN_ACTIVE);
    assert_int_equal(seen_state(c, 1, 5), SEEN_SENT);
    assert_int_equal(seen_state(c, 0, 6), SEEN_UNCERTAIN);
    assert_int_equal(seen_state(c, 0, 4), SEEN_SENT);
    assert_int_equal(seen_state(c, 0, 7), SEEN_NONE); /* neighbours in the same byte */
    assert_int_equal(seen_state(c, 2, 5), SEEN_NONE);
    /* a transition back to none clears only that recipient */
    assert_int_equal(seen_set(c, 0, 5, SEEN_NONE), 0);
    assert_int_equal(seen_state(c, 0, 5), SEEN_NONE);
    assert_int_equal(seen_state(c, 0, 4), SEEN_SENT);
    assert_int_equal(seen_state(c, 0, 6), SEEN_UNCERTAIN);
    /* far indexes grow the map; the old bits survive the move */
    assert_int_equal(seen_set(c, 0, 1000003, SEEN_SENT), 0);
    assert_int_equal(seen_state(c, 0, 1000003), SEEN_SENT);
    assert_int_equal(seen_state(c, 0, 1000002), SEEN_NONE);
    assert_int_equal(seen_state(c, 0, 4), SEEN_SENT);
    assert_true(seen_bytes(s) >= 1000003 / 4);
    assert_true(seen_bytes(s) <= 2 * (1000003 / 4) + 2 * 256);
    /* out of range is refused, and reads as none */
    assert_int_equal(seen_set(c, SEEN_MAX_CHANNELS, 1, SEEN_SENT), -1);
    assert_int_equal(seen_set(c, -1, 1, SEEN_SENT), -1);
    assert_int_equal(seen_set(c, 0, -1, SEEN_SENT), -1);
    assert_int_equal(seen_state(c, SEEN_MAX_CHANNELS, 1), SEEN_NONE);
    seen_put(s, c);
    seen_free(s);
}

static void the_same_campaign_is_one_map(void **state)
{
    (void)state;
    seen *s = seen_new(4);
    seen_campaign *a = seen_get(s, "x");
    seen_campaign *b = seen_get(s, "x");
    assert_ptr_equal(a, b);
    seen_set(a, 0, 3, SEEN_SENT);
    assert_int_equal(seen_state(b, 0, 3), SEEN_SENT);
    assert_int_equal(seen_campaigns(s), 1);
    seen_put(s, a);
    seen_put(s, b);
    seen_free(s);
}

static void only_unheld_campaigns_are_forgotten(void **state)
{
    (void)state;
    seen *s = seen_new(2);
    seen_campaign *held = seen_get(s, "held");
    seen_set(held, 0, 1, SEEN_SENT);
    seen_campaign *old = seen_get(s, "old");
    seen_set(old, 0, 1, SEEN_SENT);
    seen_put(s, old);
    /* a third campaign: "old" (not held) makes room, "held" stays */
    seen_campaign *n = seen_get(s, "new");
    assert_non_null(n);
    assert_int_equal(seen_campaigns(s), 2);
    assert_int_equal(seen_state(held, 0, 1), SEEN_SENT);
    seen_campaign *again = seen_get(s, "old");
    assert_int_equal(seen_state(again, 0, 1), SEEN_NONE); /* forgotten */
    /* everything held: the table goes over its size rather than forget */
    assert_int_equal(seen_campaigns(s), 3);
    seen_put(s, again);
    seen_put(s, n);
    seen_put(s, held);
    seen_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(states_are_kept_per_channel_and_index),
        cmocka_unit_test(the_same_campaign_is_one_map),
        cmocka_unit_test(only_unheld_campaigns_are_forgotten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
