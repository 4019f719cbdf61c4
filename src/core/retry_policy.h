/*
 * retry_policy: when the next attempt of a failed request runs, or that it
 * never will. Pure functions over struct retry_policy (config.h): the caller
 * passes the clock and the randomness, so tests get exact answers.
 */
#ifndef CR_RETRY_POLICY_H
#define CR_RETRY_POLICY_H

#include <stdint.h>

#include "config/config.h"

enum retry_decision { RETRY_SCHEDULE = 0, RETRY_EXHAUSTED = 1 };

/* The longest Retry-After honoured: one day (HTTP_RETRY_AFTER_MAX_MS, where
 * the HTTP client caps what a gateway sends). Longer is a broken gateway. */
#define RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

/* The delay before the attempt after attempt `attempt` (1-based: the attempt
 * that just failed): min(max_delay, initial_delay * coefficient^(attempt-1)),
 * with full jitter a uniform pick in [0, that] drawn from random_u64, and
 * never below retry_after_ms (the gateway's Retry-After, -1 when absent),
 * even when that is above max_delay, up to RETRY_AFTER_MAX_MS. */
int64_t retry_policy_delay_ms(const struct retry_policy *policy, int attempt,
                              int64_t retry_after_ms, uint64_t random_u64);

/* Decide after a retryable failure. attempts_used is how many attempts of the
 * budget were spent (attempts refused by an open breaker do not count);
 * deadline_ms is the absolute time (same clock as now_ms) after which no
 * attempt may start: acceptance time + policy->deadline_ms. Returns
 * RETRY_SCHEDULE and stores now_ms + delay_ms in *next_at_ms, or
 * RETRY_EXHAUSTED when no attempt is left or the next one would start after
 * the deadline (*next_at_ms untouched). */
enum retry_decision retry_policy_decide(const struct retry_policy *policy, int attempts_used,
                                        int64_t now_ms, int64_t deadline_ms, int64_t delay_ms,
                                        int64_t *next_at_ms);

/* "schedule" or "exhausted". */
const char *retry_decision_name(enum retry_decision d);

#endif
