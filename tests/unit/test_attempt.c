#include <criterion/criterion.h>
#include <string.h>

#include "core/attempt.h"

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

/* --- gateway truth: proofs, key generations, in-progress, final checks --- */

Test(attempt, a_stored_error_asks_for_an_inquiry_before_anything)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 1);
    f.stored = true;
    attempt_decide(&f, &d);
    cr_expect(d.inquire_now, "the key holds the error: only an inquiry can open a new key");
}

Test(attempt, a_negative_inquiry_after_a_stored_error_opens_a_new_key)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 1);
    f.stored = true;
    f.finding = FINDING_NOT_REFUNDED;
    attempt_decide(&f, &d);
    cr_expect_not(d.inquire_now);
    cr_expect_str_eq(d.status, "SCHEDULED");
    cr_expect(d.new_key);
    cr_expect(d.spend);
}

Test(attempt, an_inquiry_without_answer_never_opens_a_new_key)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 1);
    f.stored = true;
    f.finding = FINDING_UNKNOWN;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "SCHEDULED");
    cr_expect_not(d.new_key);
    cr_expect(d.key_holds_error);
    cr_expect(d.inquire_first, "the next attempt asks again before it calls");
}

Test(attempt, the_same_error_twice_counts_as_stored)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 2);
    f.repeated = true;
    attempt_decide(&f, &d);
    cr_expect(d.inquire_now);
}

Test(attempt, a_timeout_retries_under_the_same_key_without_inquiry)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 1);
    attempt_decide(&f, &d);
    cr_expect_not(d.inquire_now);
    cr_expect_not(d.new_key);
    cr_expect_str_eq(d.status, "SCHEDULED");
}

Test(attempt, an_inquiry_that_finds_the_refund_wins_over_any_answer)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 3);
    f.finding = FINDING_REFUNDED;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "SUCCEEDED");
    cr_expect(d.found_by_inquiry);
    cr_expect_null(d.dlq_reason);
}

Test(attempt, the_last_indeterminate_answer_is_settled_by_inquiry)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 3); /* budget 3: the last one */
    attempt_decide(&f, &d);
    cr_expect(d.inquire_now, "no EXHAUSTED before asking the gateway");

    f.finding = FINDING_NOT_REFUNDED;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "EXHAUSTED");
    cr_expect_not(d.inquire_now);

    f.finding = FINDING_ALREADY_REFUNDED;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "ALREADY_REFUNDED");
}

Test(attempt, an_unanswered_final_inquiry_becomes_a_final_check_without_budget)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 3);
    f.finding = FINDING_UNKNOWN;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "SCHEDULED");
    cr_expect_str_eq(d.final_check, "EXHAUSTED");
    cr_expect(d.inquire_first);
    cr_expect_not(d.spend);

    /* Past the deadline there is no more check: EXHAUSTED, state unknown. */
    f.deadline_ms = f.now_ms + 10;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "EXHAUSTED");
    cr_expect_str_eq(d.code, "REFUND_STATE_UNKNOWN");
}

Test(attempt, a_final_check_that_proves_no_refund_ends_the_request)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_RETRYABLE, 4);
    f.no_call = true;
    f.final_check = "EXHAUSTED";
    f.budget_base = 1;
    f.finding = FINDING_NOT_REFUNDED;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "EXHAUSTED");
    cr_expect_str_eq(d.dlq_reason, "EXHAUSTED");
}

Test(attempt, in_progress_postpones_without_spending_budget)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_IN_PROGRESS, 3); /* even on the last attempt */
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "SCHEDULED");
    cr_expect_not(d.spend);
    cr_expect_not(d.new_key);
    cr_expect_not(d.inquire_now);
}

Test(attempt, pending_waits_for_confirmation_without_spending_budget)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_PENDING, 3);
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "PENDING");
    cr_expect_not(d.final);
    cr_expect_not(d.spend);
    cr_expect(d.inquire_first);
    cr_expect_gt(d.next_attempt_ms, f.now_ms);

    /* The confirming inquiry: succeeded, still pending, failed. */
    f.no_call = true;
    f.finding = FINDING_REFUNDED;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "SUCCEEDED");
    f.finding = FINDING_PENDING;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "PENDING");
    f.finding = FINDING_REFUND_FAILED;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "FAILED");
}

Test(attempt, an_uncertain_refusal_is_failed_only_after_a_negative_inquiry)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_PERMANENT, 1); /* e.g. a reused key */
    attempt_decide(&f, &d);
    cr_expect(d.inquire_now);
    f.finding = FINDING_REFUNDED;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "SUCCEEDED");
    f.finding = FINDING_NOT_REFUNDED;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "FAILED");

    /* A refusal that proves nothing moved needs no inquiry. */
    f = facts(GATEWAY_PERMANENT, 1);
    f.no_refund = true;
    attempt_decide(&f, &d);
    cr_expect_not(d.inquire_now);
    cr_expect_str_eq(d.status, "FAILED");
}

Test(attempt, an_unverified_success_is_never_a_success)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_UNVERIFIED, 1);
    attempt_decide(&f, &d);
    cr_expect(d.inquire_now);
    cr_expect_str_neq(d.status, "SUCCEEDED");
}

Test(attempt, a_mismatching_payment_fails_without_a_refund)
{
    struct attempt_decision d;
    struct attempt_facts f = facts(GATEWAY_UNVERIFIED, 1);
    f.finding = FINDING_MISMATCH;
    attempt_decide(&f, &d);
    cr_expect_str_eq(d.status, "FAILED");
    cr_expect_str_eq(d.code, "AMOUNT_OR_CURRENCY_MISMATCH");
}

Test(attempt, after_an_inquiry_first_a_call_opens_a_new_key_only_when_proven)
{
    cr_expect_eq(attempt_after_inquiry(FINDING_NOT_REFUNDED, true, NULL, true),
                 ATTEMPT_CALL_NEW_KEY);
    cr_expect_eq(attempt_after_inquiry(FINDING_NOT_REFUNDED, false, NULL, true), ATTEMPT_CALL);
    cr_expect_eq(attempt_after_inquiry(FINDING_UNKNOWN, true, NULL, true), ATTEMPT_NO_CALL);
    cr_expect_eq(attempt_after_inquiry(FINDING_REFUNDED, true, NULL, true), ATTEMPT_NO_CALL);
    cr_expect_eq(attempt_after_inquiry(FINDING_NOT_REFUNDED, true, "EXHAUSTED", true),
                 ATTEMPT_NO_CALL, "a final check never calls");
    cr_expect_eq(attempt_after_inquiry(FINDING_NOT_REFUNDED, false, NULL, false), ATTEMPT_NO_CALL,
                 "past the deadline nothing is sent");
}

/* Toss's and Stripe's rules (1 to 255 characters): the keys every release
 * sent (src/gateway/gateway_driver.c). */
static const char *attempt_key(const char *request_id, int gen, char *buf, size_t buflen)
{
    return gateway_key_format(request_id, gen, 1, 255, buf, buflen);
}

Test(attempt, key_generations_are_derived_from_the_request_id)
{
    char buf[300];
    cr_expect_str_eq(attempt_key("req-1", 1, buf, sizeof(buf)), "req-1");
    cr_expect_str_eq(attempt_key("req-1", 2, buf, sizeof(buf)), "req-1.2");
    cr_expect_str_eq(attempt_key("req-1", 13, buf, sizeof(buf)), "req-1.13");
    char longid[256];
    memset(longid, 'a', 255);
    longid[255] = '\0';
    attempt_key(longid, 2, buf, sizeof(buf));
    cr_expect_leq(strlen(buf), 255, "gateways take keys of at most 255 characters");
    char other[300];
    longid[254] = 'b';
    attempt_key(longid, 2, other, sizeof(other));
    cr_expect_str_neq(buf, other, "long ids keep distinct keys");
}
