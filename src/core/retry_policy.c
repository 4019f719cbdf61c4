/*
 * retry_policy: exponential backoff with full jitter. See retry_policy.h.
 */
#include "core/retry_policy.h"

#include <math.h>

#include "base/bounds.h"

int64_t retry_policy_delay_ms(const struct retry_policy *policy, int attempt,
                              int64_t retry_after_ms, uint64_t random_u64)
{
    if (attempt < 1)
        attempt = 1;

    /* Multiply step by step and stop at the cap, so a large attempt number
     * never overflows into inf or a negative int64. */
    double cap = (double)policy->max_delay_ms;
    double d = (double)policy->initial_delay_ms;
    if (d > cap)
        d = cap;
    for (int i = 1; i < attempt && d < cap; i++) {
        d *= policy->backoff_coefficient;
        if (d > cap)
            d = cap;
    }
    int64_t delay = d < 0 ? 0 : llround(d);

    if (policy->jitter == JITTER_FULL && delay > 0) {
        /* Full jitter (uniform in [0, d]), after the AWS Architecture Blog's
         * "Exponential Backoff And Jitter" analysis: when a gateway outage
         * fails many requests at once, un-jittered or "equal jitter" backoff
         * keeps them bunched and they hit the recovering gateway together;
         * full jitter spreads them over the whole interval and needed the
         * fewest calls to get all work done. The bias of % is negligible
         * for delays far below 2^64. */
        delay = (int64_t)(random_u64 % ((uint64_t)delay + 1));
    }

    /* Retry-After is the gateway telling us when it will accept us again:
     * a floor, above max_delay too, but never beyond RETRY_AFTER_MAX_MS (the
     * HTTP client caps what it reads already; this holds for any caller). */
    if (retry_after_ms > RETRY_AFTER_MAX_MS)
        retry_after_ms = RETRY_AFTER_MAX_MS;
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    return delay;
}

enum retry_decision retry_policy_decide(const struct retry_policy *policy, int attempts_used,
                                        int64_t now_ms, int64_t deadline_ms, int64_t delay_ms,
                                        int64_t *next_at_ms)
{
    if (attempts_used >= policy->max_attempts)
        return RETRY_EXHAUSTED;
    /* Saturating: a delay no clock can reach is past any deadline, never a
     * wrapped-around negative instant. */
    int64_t next = bounds_after(now_ms, delay_ms);
    if (next > deadline_ms)
        return RETRY_EXHAUSTED;
    *next_at_ms = next;
    return RETRY_SCHEDULE;
}

const char *retry_decision_name(enum retry_decision d)
{
    return d == RETRY_SCHEDULE ? "schedule" : "exhausted";
}
