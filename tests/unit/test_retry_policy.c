#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "core/retry_policy.h"

static struct retry_policy policy(enum jitter_mode jitter)
{
    struct retry_policy p = {0};
    p.max_attempts = 5;
    p.initial_delay_ms = 30000;
    p.backoff_coefficient = 2.0;
    p.max_delay_ms = 1800000;
    p.jitter = jitter;
    p.deadline_ms = 12LL * 3600 * 1000;
    return p;
}

struct dcase {
    int attempt;
    int64_t retry_after_ms;
    int64_t want_ms;
};

ParameterizedTestParameters(retry_policy, exact_delays_without_jitter)
{
    static struct dcase cases[] = {
        {1, -1, 30000},        {2, -1, 60000},    {3, -1, 120000},     {4, -1, 240000},
        {5, -1, 480000},       {6, -1, 960000},   {7, -1, 1800000},    /* capped */
        {8, -1, 1800000},      {60, -1, 1800000}, {5000, -1, 1800000}, /* no overflow */
        {0, -1, 30000},                                                /* attempt < 1 = 1 */
        {1, 45000, 45000},                                             /* Retry-After floor */
        {3, 1000, 120000},                                             /* floor below: no effect */
        {7, 3600000, 3600000}, /* Retry-After above max_delay still wins */
    };
    return cr_make_param_array(struct dcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct dcase *c, retry_policy, exact_delays_without_jitter)
{
    struct retry_policy p = policy(JITTER_NONE);
    int64_t d = retry_policy_delay_ms(&p, c->attempt, c->retry_after_ms, 123456789);
    cr_expect_eq(d, c->want_ms, "attempt %d retry-after %lld: %lld, want %lld", c->attempt,
                 (long long)c->retry_after_ms, (long long)d, (long long)c->want_ms);
}

Test(retry_policy, fractional_coefficient)
{
    struct retry_policy p = policy(JITTER_NONE);
    p.initial_delay_ms = 1000;
    p.backoff_coefficient = 1.5;
    cr_expect_eq(retry_policy_delay_ms(&p, 1, -1, 0), 1000);
    cr_expect_eq(retry_policy_delay_ms(&p, 2, -1, 0), 1500);
    cr_expect_eq(retry_policy_delay_ms(&p, 3, -1, 0), 2250);
    cr_expect_eq(retry_policy_delay_ms(&p, 4, -1, 0), 3375);
}

/* xorshift64*: a deterministic stream of "random" values for the bounds test. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

Test(retry_policy, full_jitter_stays_within_zero_and_the_capped_delay)
{
    struct retry_policy p = policy(JITTER_FULL);
    uint64_t seed = 88172645463325252ULL;
    for (int attempt = 1; attempt <= 9; attempt++) {
        struct retry_policy plain = policy(JITTER_NONE);
        int64_t cap = retry_policy_delay_ms(&plain, attempt, -1, 0);
        int64_t lo = INT64_MAX, hi = -1;
        double sum = 0;
        const int n = 20000;
        for (int i = 0; i < n; i++) {
            int64_t d = retry_policy_delay_ms(&p, attempt, -1, next_random(&seed));
            cr_assert(d >= 0 && d <= cap, "attempt %d: %lld outside [0, %lld]", attempt,
                      (long long)d, (long long)cap);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            sum += (double)d;
        }
        /* Uniform over [0, cap]: the extremes are approached and the mean is
         * near the middle (loose bounds: this is a sanity check, not a
         * statistics test). */
        cr_expect_lt(lo, cap / 100, "attempt %d: min %lld", attempt, (long long)lo);
        cr_expect_gt(hi, cap - cap / 100, "attempt %d: max %lld", attempt, (long long)hi);
        double mean = sum / n;
        cr_expect(mean > cap * 0.45 && mean < cap * 0.55, "attempt %d: mean %.0f of %lld", attempt,
                  mean, (long long)cap);
    }
}

Test(retry_policy, full_jitter_keeps_the_retry_after_floor)
{
    struct retry_policy p = policy(JITTER_FULL);
    uint64_t seed = 42;
    for (int i = 0; i < 5000; i++) {
        int64_t d = retry_policy_delay_ms(&p, 2, 50000, next_random(&seed));
        cr_assert(d >= 50000 && d <= 60000, "%lld", (long long)d);
    }
    /* Above the cap too. */
    cr_expect_eq(retry_policy_delay_ms(&p, 9, 7200000, UINT64_MAX), 7200000);
}

Test(retry_policy, full_jitter_extremes_of_the_random_value)
{
    struct retry_policy p = policy(JITTER_FULL);
    cr_expect_eq(retry_policy_delay_ms(&p, 1, -1, 0), 0);
    cr_expect_eq(retry_policy_delay_ms(&p, 1, -1, 30000), 30000);
    cr_expect_eq(retry_policy_delay_ms(&p, 1, -1, 30001), 0);
}

Test(retry_policy, schedules_while_budget_and_deadline_allow)
{
    struct retry_policy p = policy(JITTER_NONE);
    int64_t next = -1;
    cr_expect_eq(retry_policy_decide(&p, 1, 1000, 100000, 30000, &next), RETRY_SCHEDULE);
    cr_expect_eq(next, 31000);
    cr_expect_eq(retry_policy_decide(&p, 4, 1000, 100000, 30000, &next), RETRY_SCHEDULE);
    /* Exactly at the deadline is still allowed. */
    cr_expect_eq(retry_policy_decide(&p, 1, 1000, 31000, 30000, &next), RETRY_SCHEDULE);
    cr_expect_eq(next, 31000);
}

Test(retry_policy, exhausted_when_attempts_are_used_up)
{
    struct retry_policy p = policy(JITTER_NONE);
    int64_t next = -7;
    cr_expect_eq(retry_policy_decide(&p, 5, 1000, 1000000, 10, &next), RETRY_EXHAUSTED);
    cr_expect_eq(retry_policy_decide(&p, 6, 1000, 1000000, 10, &next), RETRY_EXHAUSTED);
    cr_expect_eq(next, -7, "next_at must stay untouched");
    p.max_attempts = 1;
    cr_expect_eq(retry_policy_decide(&p, 1, 0, 1000000, 0, &next), RETRY_EXHAUSTED);
}

Test(retry_policy, exhausted_when_next_attempt_would_pass_the_deadline)
{
    struct retry_policy p = policy(JITTER_NONE);
    int64_t next = -7;
    cr_expect_eq(retry_policy_decide(&p, 1, 1000, 31000 - 1, 30000, &next), RETRY_EXHAUSTED);
    cr_expect_eq(retry_policy_decide(&p, 1, 200000, 100000, 0, &next), RETRY_EXHAUSTED);
    cr_expect_eq(next, -7);
    cr_expect_str_eq(retry_decision_name(RETRY_EXHAUSTED), "exhausted");
    cr_expect_str_eq(retry_decision_name(RETRY_SCHEDULE), "schedule");
}

/* The gateway answer: Retry-After 9223372036854775 (seconds) became
 * now + 9223372036854775000 ms, wrapped negative, and the database refused
 * the next attempt's time. A Retry-After is honoured up to one day. */
Test(retry_policy, retry_after_is_capped_at_one_day)
{
    struct retry_policy p = policy(JITTER_NONE);
    cr_expect_eq(retry_policy_delay_ms(&p, 1, 9223372036854775000LL, 0), RETRY_AFTER_MAX_MS);
    cr_expect_eq(retry_policy_delay_ms(&p, 1, INT64_MAX, 0), RETRY_AFTER_MAX_MS);
    cr_expect_eq(retry_policy_delay_ms(&p, 1, RETRY_AFTER_MAX_MS, 0), RETRY_AFTER_MAX_MS);
    cr_expect_eq(retry_policy_delay_ms(&p, 1, 7200000, 0), 7200000, "2 h: above max_delay, kept");
    p.jitter = JITTER_FULL;
    cr_expect_eq(retry_policy_delay_ms(&p, 1, INT64_MAX, UINT64_MAX), RETRY_AFTER_MAX_MS);
}

Test(retry_policy, a_delay_no_clock_reaches_is_past_every_deadline)
{
    struct retry_policy p = policy(JITTER_NONE);
    int64_t now = 1796083200000LL, next = 42;
    cr_expect_eq(retry_policy_decide(&p, 1, now, now + p.deadline_ms, INT64_MAX, &next),
                 RETRY_EXHAUSTED);
    cr_expect_eq(retry_policy_decide(&p, 1, now, INT64_MAX, INT64_MAX, &next), RETRY_SCHEDULE);
    cr_expect_eq(next, INT64_MAX, "saturated, never wrapped negative");
    cr_expect_eq(retry_policy_decide(&p, 1, now, now + 10, -5, &next), RETRY_SCHEDULE);
    cr_expect_eq(next, now, "a negative delay is now");
}
