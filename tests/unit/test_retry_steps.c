/*
 * retry_steps_facts(): the one builder of attempt_decide()'s facts, for an
 * attempt the retry-consumer made and for one whose worker vanished (the
 * reconciler).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/retry_steps.h"

#define HOUR_MS (3600LL * 1000)

static struct config cfg;
static struct request_row row;

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.retry.max_attempts = 5;
    cfg.consumers.retry.lease_ms = 120000;
    memset(&row, 0, sizeof(row));
    row.gateway = "toss";
    row.attempts = 3;
    row.budget_base = 1;
    row.max_attempts = 4;
    row.deadline_at_ms = 10 * HOUR_MS;
    row.key_expires_at_ms = 20 * HOUR_MS;
    row.key_generation = 2;
    row.last_error_code = "PROVIDER_ERROR";
}

TestSuite(retry_steps, .init = setup);

Test(retry_steps, a_vanished_worker_is_a_retryable_answer_under_the_rows_budget)
{
    struct attempt_facts f;
    retry_steps_facts(&cfg, &row, NULL, 7, &f);
    cr_expect_eq(f.verdict, GATEWAY_RETRYABLE);
    cr_expect_eq(f.retry_after_ms, -1);
    cr_expect_not(f.no_call);
    cr_expect_not(f.stored);
    cr_expect_not(f.repeated);
    cr_expect_eq(f.finding, FINDING_NONE);
    cr_expect_eq(f.attempt, 3);
    cr_expect_eq(f.budget_base, 1);
    cr_expect_eq(f.max_attempts, 4, "the request's own budget, not the config's");
    cr_expect_eq(f.deadline_ms, 10 * HOUR_MS);
    cr_expect_eq(f.key_expires_ms, 20 * HOUR_MS);
    cr_expect_eq(f.lease_ms, 120000);
    cr_expect_eq(f.policy, &cfg.retry);
    cr_expect_eq(f.random, 7);
    cr_expect_gt(f.now_ms, 0);
}

Test(retry_steps, the_same_error_twice_is_a_repeat_and_a_new_key_has_no_lifetime_yet)
{
    struct attempt_result r;
    memset(&r, 0, sizeof(r));
    r.called = true;
    r.answer.answered = true;
    r.answer.verdict = GATEWAY_RETRYABLE;
    r.answer.retry_after_ms = 5000;
    snprintf(r.answer.code, sizeof(r.answer.code), "PROVIDER_ERROR");
    r.key_generation = 3;

    struct attempt_facts f;
    retry_steps_facts(&cfg, &row, &r, 0, &f);
    cr_expect(f.repeated);
    cr_expect_eq(f.retry_after_ms, 5000);
    cr_expect_eq(f.key_expires_ms, 0, "generation 3 was first used by this attempt");

    r.key_generation = 2;
    snprintf(r.answer.code, sizeof(r.answer.code), "OTHER");
    retry_steps_facts(&cfg, &row, &r, 0, &f);
    cr_expect_not(f.repeated);
    cr_expect_eq(f.key_expires_ms, 20 * HOUR_MS);
}

/* Inquire-first (KakaoPay): after a call we gave up on, the next attempt's
 * inquiry waits at least the gateway's timeout, the time the gateway may
 * still be carrying the call out; with a key (Toss) the same key is safe
 * at once. */
Test(retry_steps, an_unanswered_call_to_an_inquire_first_gateway_waits_its_timeout)
{
    struct config_gateway gws[2];
    memset(gws, 0, sizeof(gws));
    gws[0].name = "toss";
    gws[0].kind = GATEWAY_TOSS;
    gws[0].timeout_ms = 10000;
    gws[0].retry = cfg.retry;
    gws[1].name = "kp";
    gws[1].kind = GATEWAY_KAKAOPAY;
    gws[1].timeout_ms = 10000;
    gws[1].retry = cfg.retry;
    cfg.gateways = gws;
    cfg.ngateways = 2;

    struct attempt_result r;
    memset(&r, 0, sizeof(r));
    r.called = true;
    r.answer.answered = false;
    r.answer.verdict = GATEWAY_RETRYABLE;
    r.answer.retry_after_ms = -1;
    r.key_generation = row.key_generation;

    struct attempt_facts f;
    row.gateway = "kp";
    retry_steps_facts(&cfg, &row, &r, 0, &f);
    cr_expect_eq(f.retry_after_ms, 10000);

    r.answer.answered = true; /* an answer: nothing is still running */
    retry_steps_facts(&cfg, &row, &r, 0, &f);
    cr_expect_eq(f.retry_after_ms, -1);

    r.answer.answered = false;
    row.gateway = "toss";
    retry_steps_facts(&cfg, &row, &r, 0, &f);
    cr_expect_eq(f.retry_after_ms, -1);
    cfg.gateways = NULL;
    cfg.ngateways = 0;
}
