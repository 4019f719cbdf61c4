#include <criterion/criterion.h>
#include <string.h>

#include "attempt.h"

#define MIN_MS  (60LL * 1000)
#define HOUR_MS (60 * MIN_MS)

static struct retry_policy policy = {
    .max_attempts = 3,
    .initial_delay_ms = 1000,
    .backoff_coefficient = 2.0,
    .max_delay_ms = 10000,
    .jitter = JITTER_NONE,
    .deadline_ms = HOUR_MS,
};

static struct attempt_facts facts(enum gateway_verdict v, int attempt)
{
    struct attempt_facts f = {
        .verdict = v,
        .retry_after_ms = -1,
        .attempt = attempt,
        .budget_base = 0,
        .max_attempts = 3,
        .now_ms = 1000000,
        .deadline_ms = 1000000 + HOUR_MS,
        .key_expires_ms = 1000000 + 24 * HOUR_MS,
        .lease_ms = 2 * MIN_MS,
        .policy = &policy,
        .random = 42,
    };
    return f;
}

Test(attempt, success_ends_the_request_without_dead_letter)
{
    struct attempt_facts f = facts(GATEWAY_SUCCEEDED, 1);
    struct attempt_decision d;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "SUCCEEDED");
    cr_expect(d.final);
    cr_expect_null(d.dlq_reason);
}

Test(attempt, already_refunded_counts_as_success)
{
    struct attempt_facts f = facts(GATEWAY_ALREADY_REFUNDED, 2);
    struct attempt_decision d;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "ALREADY_REFUNDED");
    cr_expect(d.final);
    cr_expect_null(d.dlq_reason);
}

Test(attempt, permanent_answer_fails_and_dead_letters)
{
    struct attempt_facts f = facts(GATEWAY_PERMANENT, 1);
    struct attempt_decision d;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "FAILED");
    cr_expect_str_eq(d.dlq_reason, "FAILED");
}

Test(attempt, config_fault_fails_under_its_own_reason)
{
    struct attempt_facts f = facts(GATEWAY_CONFIG_FAULT, 1);
    struct attempt_decision d;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "FAILED");
    cr_expect_str_eq(d.dlq_reason, "CONFIG_FAULT");
}

Test(attempt, retryable_schedules_the_next_attempt_with_backoff)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 1);
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "SCHEDULED");
    cr_expect_str_eq(d.decision, "RETRY");
    cr_expect_not(d.final);
    cr_expect_eq(d.next_attempt_ms, f.now_ms + 1000);

    f = facts(GATEWAY_RETRYABLE, 2);
    attempt_decide(&f, &d);
    cr_expect_eq(d.next_attempt_ms, f.now_ms + 2000);
}

Test(attempt, retry_after_is_a_floor)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 1);
    f.retry_after_ms = 30000;
    attempt_decide(&f, &d);
    cr_expect_eq(d.next_attempt_ms, f.now_ms + 30000);
}

Test(attempt, last_attempt_of_the_budget_exhausts)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 3);
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "EXHAUSTED");
    cr_expect_str_eq(d.dlq_reason, "EXHAUSTED");
}

Test(attempt, replay_budget_counts_from_its_base)
{
    /* attempt 5 after a replay at attempt 4: 1 of 3 used, so retry. */
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 5);
    f.budget_base = 4;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "SCHEDULED");
}

Test(attempt, deadline_stops_retries_early)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 1);
    f.deadline_ms = f.now_ms + 500; /* next attempt would be at +1000 */
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "EXHAUSTED");
}

Test(attempt, key_expiry_stops_retries_a_lease_before)
{
    /* The key dies in 90 s and an attempt may take 2 min: a retry in 1 s
     * could still be running when the gateway forgets the key. */
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 1);
    f.key_expires_ms = f.now_ms + 90 * 1000;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "EXHAUSTED");
    cr_expect_eq(attempt_last_start_ms(f.deadline_ms, f.key_expires_ms, f.lease_ms),
                 f.now_ms + 90 * 1000 - 2 * MIN_MS);
}
