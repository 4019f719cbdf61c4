#include <criterion/criterion.h>

#include "base/ratelimit.h"

Test(ratelimit, burst_then_paced)
{
    struct ratelimit *rl = ratelimit_new(10.0, 3); /* one token per 100 ms */
    cr_assert_not_null(rl);
    int64_t t = 5000;
    cr_expect_eq(ratelimit_take(rl, t), 0);
    cr_expect_eq(ratelimit_take(rl, t), 0);
    cr_expect_eq(ratelimit_take(rl, t), 0);
    cr_expect_eq(ratelimit_take(rl, t), 100, "empty bucket: wait one refill");
    cr_expect_eq(ratelimit_take(rl, t + 40), 60);
    cr_expect_eq(ratelimit_take(rl, t + 100), 0);
    cr_expect_eq(ratelimit_take(rl, t + 100), 100);
    ratelimit_free(rl);
}

Test(ratelimit, refill_is_capped_at_burst)
{
    struct ratelimit *rl = ratelimit_new(1.0, 2);
    cr_expect_eq(ratelimit_take(rl, 0), 0);
    cr_expect_eq(ratelimit_take(rl, 0), 0);
    cr_expect_eq(ratelimit_take(rl, 0), 1000);
    /* An hour idle refills only burst tokens. */
    int64_t t = 3600 * 1000;
    cr_expect_eq(ratelimit_take(rl, t), 0);
    cr_expect_eq(ratelimit_take(rl, t), 0);
    cr_expect_gt(ratelimit_take(rl, t), 0);
    ratelimit_free(rl);
}

Test(ratelimit, zero_rate_is_unlimited)
{
    struct ratelimit *rl = ratelimit_new(0, 1);
    for (int i = 0; i < 100000; i++)
        cr_assert_eq(ratelimit_take(rl, 0), 0);
    ratelimit_free(rl);
}

Test(ratelimit, rate_over_a_long_run)
{
    struct ratelimit *rl = ratelimit_new(50.0, 5);
    int taken = 0;
    for (int64_t t = 0; t < 10000; t++) /* a caller asking every ms for 10 s */
        if (ratelimit_take(rl, t) == 0)
            taken++;
    cr_expect(taken >= 500 && taken <= 506, "took %d in 10 s at 50/s, burst 5", taken);
    ratelimit_free(rl);
}

Test(ratelimit, slow_rate_waits_are_rounded_up)
{
    struct ratelimit *rl = ratelimit_new(3.0, 1); /* 333.3 ms per token */
    cr_expect_eq(ratelimit_take(rl, 0), 0);
    cr_expect_eq(ratelimit_take(rl, 0), 334);
    cr_expect_gt(ratelimit_take(rl, 333), 0);
    cr_expect_eq(ratelimit_take(rl, 334), 0);
    ratelimit_free(rl);
}

Test(ratelimit, clock_going_backwards_refills_nothing)
{
    struct ratelimit *rl = ratelimit_new(1.0, 1);
    cr_expect_eq(ratelimit_take(rl, 10000), 0);
    cr_expect_gt(ratelimit_take(rl, 5000), 0);
    cr_expect_gt(ratelimit_take(rl, 10500), 0);
    cr_expect_eq(ratelimit_take(rl, 11000), 0);
    ratelimit_free(rl);
}

Test(ratelimit, free_null_is_a_no_op)
{
    ratelimit_free(NULL);
}
