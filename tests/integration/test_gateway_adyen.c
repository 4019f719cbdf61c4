/*
 * Adyen through the whole pipeline (pipeline_fixture.h): the driver's
 * idempotency key against gateway-sim's Adyen (docs/gateways.md, "Adyen").
 * A refund is answered only "received": the request waits PENDING, and
 * each later check replays the refund under the same key (Adyen has no
 * inquiry), which must never make a second refund. Every test ends
 * asserting what the simulator's ledger shows (what the gateway did):
 * exactly one refund under the request's first key, or none where none is
 * due.
 *
 * The result of a received refund comes by REFUND notification; until the
 * pipeline reads notifications (the webhook receiver's part), these tests
 * stop at PENDING, after the first replays have found the refund.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "pipeline_fixture.h"

/* Short delays, n attempts, a 2 s gateway timeout. */
#define POLICY(n)                                                                                  \
    "retry: { initial_delay: 200ms, max_delay: 1s, max_attempts: " #n " }\n"                       \
    "gateways:\n"                                                                                  \
    "  adyen: { timeout: 2s }\n"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

static char *query(const char *sql, const char *request_id)
{
    const char *params[] = {request_id};
    char *v = itest_query_value(pipeline_itest(P), sql, 1, params);
    return v != NULL ? v : strdup("(null)");
}

/* An Adyen payment (EUR) and a request to refund amount of it. */
static void publish(const char *rid, const char *psp, long long payment, long long refunded,
                    long long amount)
{
    pipeline_payment(P, "adyen", psp, payment, "EUR", refunded);
    pipeline_publish(P, rid, "adyen", psp, amount, "EUR", amount != payment);
}

/* The refunds the simulator made on psp, in order, comma-separated, each
 * as "<Idempotency-Key>/<reference>/<amount>". */
static char *refunds(const char *psp)
{
    json_t *p = pipeline_ledger(P, psp);
    cr_assert_not_null(p, "no payment %s in the ledger", psp);
    char out[512] = "";
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(p, "refunds"), i, r)
    {
        const char *key = json_string_value(json_object_get(r, "idempotencyKey"));
        const char *ref =
            json_string_value(json_object_get(json_object_get(r, "metadata"), "reference"));
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s/%s/%lld", i ? "," : "",
                 key ? key : "-", ref ? ref : "-",
                 (long long)json_integer_value(json_object_get(r, "amount")));
    }
    json_decref(p);
    return strdup(out);
}

static void expect_refunds(const char *psp, const char *want)
{
    char *got = refunds(psp);
    cr_expect_str_eq(got, want, "the refunds of %s at the gateway (logs: %s)", psp,
                     pipeline_log_dir(P));
    free(got);
}

/* Wait until n checks of rid replayed the refund and found it received,
 * then expect the request still PENDING (not final: its result comes by
 * notification) and every call under its first key. */
static void expect_pending_after_replays(const char *rid, int n)
{
    char want[16], sql[512];
    const char *params[] = {rid};
    snprintf(want, sizeof(want), "%d", n);
    snprintf(sql, sizeof(sql),
             "SELECT least(count(*), %d) FROM retry_attempt_log WHERE request_id = $1 AND "
             "inquiry = 'PENDING'",
             n);
    cr_assert(pipeline_wait_query(P, sql, 1, params, want, PIPELINE_FINAL_TIMEOUT_MS),
              "%s: no %d replays found the refund received (logs: %s)", rid, n,
              pipeline_log_dir(P));
    char *st = query("SELECT CASE WHEN status IN ('PENDING', 'IN_FLIGHT') THEN 'waiting' ELSE "
                     "status END FROM cancel_request WHERE request_id = $1",
                     rid);
    cr_expect_str_eq(st, "waiting", "%s: not waiting for its notification", rid);
    free(st);
    char *keys = query("SELECT string_agg(DISTINCT coalesce(idempotency_key, '-'), ',') FROM "
                       "retry_attempt_log WHERE request_id = $1 AND idempotency_key IS NOT NULL",
                       rid);
    cr_expect_str_eq(keys, rid, "%s: a key other than the first was used", rid);
    free(keys);
}

Test(gateway_adyen, success_is_one_refund_that_replays_find, .fini = stop, .timeout = 180)
{
    P = pipeline_start("adyen_ok", POLICY(3));
    publish("r-ok", "PSP_OK_000000001", 10000, 0, 10000);

    expect_pending_after_replays("r-ok", 2);
    expect_refunds("PSP_OK_000000001", "r-ok/r-ok/10000");
    cr_expect_eq(pipeline_refunded_amount(P, "PSP_OK_000000001"), 10000);
}

Test(gateway_adyen, partial_refund_is_one_refund_of_its_amount, .fini = stop, .timeout = 180)
{
    P = pipeline_start("adyen_partial", POLICY(3));
    publish("r-part", "PSP_PART_0000001", 10000, 0, 3000);

    expect_pending_after_replays("r-part", 2);
    expect_refunds("PSP_PART_0000001", "r-part/r-part/3000");
    cr_expect_eq(pipeline_refunded_amount(P, "PSP_PART_0000001"), 3000);
}

/* Nothing left to refund: 422 137, whose meaning Adyen's pages do not give
 * (it might be our own earlier refund). The replay gets the stored 422
 * again, which proves nothing: no refund is ever sent under a new key, and
 * past the deadline the request is left to a human. */
Test(gateway_adyen, already_refunded_payment_is_left_to_a_human, .fini = stop, .timeout = 180)
{
    P = pipeline_start("adyen_already", "retry: { initial_delay: 200ms, max_delay: 1s, "
                                        "max_attempts: 3, deadline: 6s }\n");
    publish("r-done", "PSP_DONE_0000001", 5000, 5000, 5000);

    cr_assert_str_eq(pipeline_require_final(P, "r-done", PIPELINE_FINAL_TIMEOUT_MS), "FAILED");
    char *code =
        query("SELECT last_error_code FROM cancel_request WHERE request_id = $1", "r-done");
    cr_expect_str_eq(code, "REFUND_STATE_UNKNOWN");
    free(code);
    expect_refunds("PSP_DONE_0000001", "");
}

Test(gateway_adyen, permanent_refusal_fails_with_nothing_refunded, .fini = stop, .timeout = 180)
{
    P = pipeline_start("adyen_permanent", POLICY(3));
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_PERM_0000001\",\"type\":\"permanent\","
                          "\"code\":\"100\",\"times\":0}");
    publish("r-perm", "PSP_PERM_0000001", 8000, 0, 8000);

    cr_assert_str_eq(pipeline_require_final(P, "r-perm", PIPELINE_FINAL_TIMEOUT_MS), "FAILED");
    char *code =
        query("SELECT last_error_code FROM cancel_request WHERE request_id = $1", "r-perm");
    cr_expect_str_eq(code, "100");
    free(code);
    expect_refunds("PSP_PERM_0000001", "");
}

Test(gateway_adyen, transient_errors_end_with_one_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("adyen_transient", POLICY(6));
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_TRAN_0000001\",\"type\":\"error_5xx\"}");
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_TRAN_0000001\",\"type\":\"rate_limited\"}");
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_TRAN_0000001\",\"type\":\"in_progress\"}");
    publish("r-tr", "PSP_TRAN_0000001", 9000, 0, 9000);

    expect_pending_after_replays("r-tr", 1);
    expect_refunds("PSP_TRAN_0000001", "r-tr/r-tr/9000");
}

/* The refund is made and its answer lost: the next attempt, under the same
 * key, gets the first 201 back. */
Test(gateway_adyen, lost_answer_is_found_under_the_same_key, .fini = stop, .timeout = 180)
{
    P = pipeline_start("adyen_lost", POLICY(3));
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_LOST_0000001\",\"type\":\"apply_then_drop\"}");
    publish("r-lost", "PSP_LOST_0000001", 7000, 0, 7000);

    expect_pending_after_replays("r-lost", 1);
    expect_refunds("PSP_LOST_0000001", "r-lost/r-lost/7000");
}

/* The refund applies, its answer never comes in time (2.5 s, 2 s timeout);
 * a retry while the first still holds the key gets 422 "in progress". */
Test(gateway_adyen, hang_past_the_timeout_ends_with_one_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("adyen_hang", POLICY(3));
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"PSP_HANG_0000001\",\"type\":\"apply_then_hang\",\"delayMs\":2500}");
    publish("r-hang", "PSP_HANG_0000001", 6000, 0, 6000);

    expect_pending_after_replays("r-hang", 1);
    expect_refunds("PSP_HANG_0000001", "r-hang/r-hang/6000");
}

/* kill -9 of the retry-consumer while the refund is at the gateway (and
 * applied): the reconciler takes the lease over, and the next attempt, under
 * the same key, finds the refund. */
Test(gateway_adyen, kill_during_the_refund_ends_with_one_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("adyen_kill", POLICY(3) "consumers: { retry: { lease: 4s } }\n");
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"PSP_KILL_0000001\",\"type\":\"apply_then_hang\",\"delayMs\":1800}");
    publish("r-kill", "PSP_KILL_0000001", 9000, 0, 9000);
    for (int i = 0; i < 400 && pipeline_refunds(P, "PSP_KILL_0000001") == 0; i++)
        usleep(25 * 1000);
    cr_assert_eq(pipeline_refunds(P, "PSP_KILL_0000001"), 1, "the refund never reached Adyen");
    pipeline_kill(P, PIPELINE_RETRY, 0, SIGKILL);
    usleep(2000 * 1000);
    pipeline_start_process(P, PIPELINE_RETRY, 0);

    expect_pending_after_replays("r-kill", 1);
    expect_refunds("PSP_KILL_0000001", "r-kill/r-kill/9000");
}
