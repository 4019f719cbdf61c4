#include <criterion/criterion.h>

#include "breaker.h"

/* window 10 s, at least 4 calls, 50 % failures, open 5 s, 2 probes. */
static struct config_breaker cfg(void)
{
    struct config_breaker c = {0};
    c.enabled = true;
    c.failure_ratio = 0.5;
    c.min_requests = 4;
    c.window_ms = 10000;
    c.open_ms = 5000;
    c.half_open_probes = 2;
    return c;
}

/* Let one call through at now and record its result. */
static void call(struct breaker *br, int64_t now, bool success)
{
    int64_t retry_at = -1;
    cr_assert(breaker_allow(br, now, &retry_at), "call at %lld refused", (long long)now);
    breaker_record(br, now, success);
}

static struct breaker *tripped_at(int64_t t)
{
    struct config_breaker c = cfg();
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    call(br, t, false);
    call(br, t, false);
    call(br, t, true);
    call(br, t, false);
    cr_assert_eq(breaker_state(br, t), BREAKER_OPEN);
    return br;
}

Test(breaker, stays_closed_below_min_requests)
{
    struct config_breaker c = cfg();
    struct breaker *br = breaker_new(&c);
    int64_t t = 1000;
    call(br, t, false);
    call(br, t, false);
    call(br, t, false);
    cr_expect_eq(breaker_state(br, t), BREAKER_CLOSED, "3 failures < min_requests 4");
    breaker_free(br);
}

Test(breaker, stays_closed_below_failure_ratio)
{
    struct config_breaker c = cfg();
    struct breaker *br = breaker_new(&c);
    int64_t t = 1000;
    for (int i = 0; i < 20; i++)
        call(br, t + i, i % 4 != 0); /* 5 failures of 20 = 25 % */
    cr_expect_eq(breaker_state(br, t + 20), BREAKER_CLOSED);
    breaker_free(br);
}

Test(breaker, opens_at_ratio_and_refuses_until_open_ms)
{
    struct breaker *br = tripped_at(1000);
    int64_t retry_at = -1;
    cr_expect_not(breaker_allow(br, 1000, &retry_at));
    cr_expect_eq(retry_at, 6000);
    cr_expect_not(breaker_allow(br, 5999, &retry_at));
    cr_expect_eq(retry_at, 6000);
    cr_expect_eq(breaker_state(br, 5999), BREAKER_OPEN);
    cr_expect_eq(breaker_state(br, 6000), BREAKER_HALF_OPEN);
    breaker_free(br);
}

Test(breaker, half_open_limits_concurrent_probes)
{
    struct breaker *br = tripped_at(1000);
    int64_t retry_at = -1;
    cr_expect(breaker_allow(br, 6000, &retry_at));
    cr_expect(breaker_allow(br, 6001, &retry_at));
    cr_expect_not(breaker_allow(br, 6002, &retry_at), "third concurrent probe must wait");
    cr_expect_gt(retry_at, 6002);
    cr_expect_leq(retry_at, 6002 + 1000,
                  "come back when the probes have decided, not a whole open period later");
    /* One probe answers: a slot frees up. */
    breaker_record(br, 6100, true);
    cr_expect_eq(breaker_state(br, 6100), BREAKER_HALF_OPEN);
    cr_expect(breaker_allow(br, 6101, &retry_at));
    breaker_free(br);
}

Test(breaker, probe_successes_close_it)
{
    struct breaker *br = tripped_at(1000);
    cr_assert(breaker_allow(br, 6000, NULL));
    cr_assert(breaker_allow(br, 6000, NULL));
    breaker_record(br, 6050, true);
    cr_expect_eq(breaker_state(br, 6050), BREAKER_HALF_OPEN);
    breaker_record(br, 6060, true);
    cr_expect_eq(breaker_state(br, 6060), BREAKER_CLOSED);
    /* Closed with a clean window: the failures that opened it are gone, a
     * single new failure does not re-open it. */
    call(br, 6100, false);
    cr_expect_eq(breaker_state(br, 6100), BREAKER_CLOSED);
    breaker_free(br);
}

Test(breaker, one_probe_failure_reopens_it)
{
    struct breaker *br = tripped_at(1000);
    cr_assert(breaker_allow(br, 6000, NULL));
    cr_assert(breaker_allow(br, 6000, NULL));
    breaker_record(br, 6010, true);
    breaker_record(br, 6020, false);
    cr_expect_eq(breaker_state(br, 6020), BREAKER_OPEN);
    int64_t retry_at = -1;
    cr_expect_not(breaker_allow(br, 6030, &retry_at));
    cr_expect_eq(retry_at, 11020, "a new open period from the failed probe");
    cr_expect_eq(breaker_state(br, 11020), BREAKER_HALF_OPEN);
    breaker_free(br);
}

/* Three probes judged by the 50 % ratio: one unlucky failure among them does
 * not re-open a gateway that mostly works again; two do. */
static struct breaker *tripped_with_three_probes(void)
{
    struct config_breaker c = cfg();
    c.half_open_probes = 3;
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    for (int i = 0; i < 4; i++)
        call(br, 1000, false);
    cr_assert_eq(breaker_state(br, 1000), BREAKER_OPEN);
    for (int i = 0; i < 3; i++)
        cr_assert(breaker_allow(br, 6000, NULL));
    return br;
}

Test(breaker, one_failure_of_three_probes_still_closes_it)
{
    struct breaker *br = tripped_with_three_probes();
    breaker_record(br, 6010, false);
    cr_expect_eq(breaker_state(br, 6010), BREAKER_HALF_OPEN);
    breaker_record(br, 6020, true);
    cr_expect_eq(breaker_state(br, 6020), BREAKER_HALF_OPEN);
    breaker_record(br, 6030, true);
    cr_expect_eq(breaker_state(br, 6030), BREAKER_CLOSED);
    breaker_free(br);
}

Test(breaker, two_failures_of_three_probes_reopen_it)
{
    struct breaker *br = tripped_with_three_probes();
    breaker_record(br, 6010, true);
    breaker_record(br, 6020, false);
    cr_expect_eq(breaker_state(br, 6020), BREAKER_HALF_OPEN);
    breaker_record(br, 6030, false);
    cr_expect_eq(breaker_state(br, 6030), BREAKER_OPEN);
    breaker_free(br);
}

Test(breaker, old_failures_slide_out_of_the_window)
{
    struct config_breaker c = cfg();
    struct breaker *br = breaker_new(&c);
    call(br, 1000, false);
    call(br, 1000, false);
    call(br, 1000, false);
    /* 20 s later the window (10 s) has forgotten them. */
    call(br, 21000, false);
    cr_expect_eq(breaker_state(br, 21000), BREAKER_CLOSED);
    call(br, 21000, true);
    call(br, 21000, true);
    call(br, 21000, true);
    cr_expect_eq(breaker_state(br, 21000), BREAKER_CLOSED, "1 failure of 4");
    /* Within the window they add up. */
    call(br, 25000, false);
    call(br, 25000, true);
    call(br, 29000, false);
    cr_expect_eq(breaker_state(br, 29000), BREAKER_CLOSED, "3 failures of 7");
    call(br, 30000, false);
    cr_expect_eq(breaker_state(br, 30000), BREAKER_OPEN, "4 failures of 8 within 10 s");
    breaker_free(br);
}

Test(breaker, late_answers_while_open_are_ignored)
{
    struct breaker *br = tripped_at(1000);
    breaker_record(br, 2000, true);
    breaker_record(br, 2000, true);
    cr_expect_eq(breaker_state(br, 2000), BREAKER_OPEN);
    breaker_free(br);
}

Test(breaker, disabled_always_allows)
{
    struct config_breaker c = cfg();
    c.enabled = false;
    struct breaker *br = breaker_new(&c);
    for (int i = 0; i < 100; i++)
        call(br, 1000 + i, false);
    cr_expect_eq(breaker_state(br, 2000), BREAKER_CLOSED);
    cr_expect(breaker_allow(br, 2000, NULL));
    breaker_free(br);
}

Test(breaker, names)
{
    cr_expect_str_eq(breaker_state_name(BREAKER_CLOSED), "closed");
    cr_expect_str_eq(breaker_state_name(BREAKER_OPEN), "open");
    cr_expect_str_eq(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
    breaker_free(NULL);
}
