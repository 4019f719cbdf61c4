/*
 * KakaoPay through the whole pipeline (pipeline_fixture.h): the driver's
 * inquire-first safety (docs/gateways.md, "KakaoPay") against gateway-sim,
 * which, like KakaoPay, has no idempotency: a cancel sent twice is two
 * refunds. Every test ends asserting what the simulator's ledger shows
 * (what the gateway did), not only our own records: exactly one cancel, or
 * none where none is due.
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
    "retry: { initial_delay: 200ms, max_delay: 2s, max_attempts: " #n " }\n"                       \
    "gateways:\n"                                                                                  \
    "  kakaopay: { timeout: 2s }\n"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

static char *query(const char *sql, const char *request_id)
{
    return pipeline_query(P, sql, request_id);
}

/* A KakaoPay payment (KRW) and a request to cancel amount of it. */
static void publish(const char *rid, const char *tid, long long payment, long long refunded,
                    long long amount)
{
    pipeline_payment(P, "kakaopay", tid, payment, "KRW", refunded);
    pipeline_publish(P, rid, "kakaopay", tid, amount, "KRW", amount != payment);
}

static const char *wait_final(const char *rid)
{
    return pipeline_require_final(P, rid, PIPELINE_FINAL_TIMEOUT_MS);
}

/* The payloads of the cancels the simulator made on tid, in order,
 * comma-separated: one "cr:<requestId>" per cancel. */
static char *cancels(const char *tid)
{
    json_t *p = pipeline_ledger(P, tid);
    cr_assert_not_null(p, "no payment %s in the ledger", tid);
    char out[512] = "";
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(p, "refunds"), i, r)
    {
        const char *payload = json_string_value(json_object_get(r, "reason"));
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? "," : "",
                 payload ? payload : "-");
    }
    json_decref(p);
    return strdup(out);
}

static void expect_cancels(const char *tid, const char *want)
{
    char *got = cancels(tid);
    cr_expect_str_eq(got, want, "the cancels of %s at the gateway (logs: %s)", tid,
                     pipeline_log_dir(P));
    free(got);
}

/* The paths of the simulator's calls for tid ("order,cancel,..."). */
static char *calls(const char *tid)
{
    char path[256], out[1024] = "";
    snprintf(path, sizeof(path), "/_sim/calls?paymentKey=%s", tid);
    char *body = pipeline_sim_get(P, path);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "calls"), i, c)
    {
        const char *p = json_string_value(json_object_get(c, "path"));
        const char *fault = json_string_value(json_object_get(c, "fault"));
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s%s%s", i ? "," : "",
                 p != NULL && strstr(p, "/cancel") ? "cancel" : "order", fault ? ":" : "",
                 fault ? fault : "");
    }
    json_decref(j);
    return strdup(out);
}

Test(gateway_kakaopay, success_inquires_then_cancels_once, .fini = stop, .timeout = 180)
{
    P = pipeline_start("kakaopay_ok", POLICY(3));
    publish("r-ok", "T_ok", 10000, 0, 10000);

    cr_assert_str_eq(wait_final("r-ok"), "SUCCEEDED");
    expect_cancels("T_ok", "cr:r-ok");
    char *c = calls("T_ok");
    cr_expect_str_eq(c, "order,cancel", "inquire first, then one cancel");
    free(c);
    /* The audit shows what went out: no key, KakaoPay takes none. */
    char *keys = query("SELECT coalesce(string_agg(idempotency_key, ','), 'none')"
                       " FROM retry_attempt_log WHERE request_id = $1",
                       "r-ok");
    cr_expect_str_eq(keys, "none");
    free(keys);
}

Test(gateway_kakaopay, partial_cancels_of_two_requests_are_each_their_own, .fini = stop,
     .timeout = 180)
{
    P = pipeline_start("kakaopay_partial", POLICY(3));
    publish("r-p1", "T_part", 10000, 0, 3000);
    cr_assert_str_eq(wait_final("r-p1"), "SUCCEEDED");
    /* A second request of the same amount: the first one's cancel carries
     * the first one's mark, so it is not this one's. */
    pipeline_publish(P, "r-p2", "kakaopay", "T_part", 3000, "KRW", true);
    cr_assert_str_eq(wait_final("r-p2"), "SUCCEEDED");

    expect_cancels("T_part", "cr:r-p1,cr:r-p2");
    cr_expect_eq(pipeline_refunded_amount(P, "T_part"), 6000);
}

Test(gateway_kakaopay, already_cancelled_payment_sends_no_cancel, .fini = stop, .timeout = 180)
{
    P = pipeline_start("kakaopay_already", POLICY(3));
    publish("r-done", "T_done", 5000, 5000, 5000);

    cr_assert_str_eq(wait_final("r-done"), "ALREADY_REFUNDED");
    expect_cancels("T_done", "");
    char *c = calls("T_done");
    cr_expect_str_eq(c, "order", "the inquiry alone decides");
    free(c);
}

Test(gateway_kakaopay, permanent_refusal_fails_with_nothing_cancelled, .fini = stop, .timeout = 180)
{
    P = pipeline_start("kakaopay_permanent", POLICY(3));
    pipeline_sim_fault(P, "{\"paymentKey\":\"T_perm\",\"type\":\"permanent\",\"code\":\"-780\","
                          "\"times\":0}");
    publish("r-perm", "T_perm", 8000, 0, 8000);

    cr_assert_str_eq(wait_final("r-perm"), "FAILED");
    char *code =
        query("SELECT last_error_code FROM cancel_request WHERE request_id = $1", "r-perm");
    cr_expect_str_eq(code, "-780");
    free(code);
    expect_cancels("T_perm", "");
}

Test(gateway_kakaopay, transient_errors_end_with_one_cancel, .fini = stop, .timeout = 180)
{
    P = pipeline_start("kakaopay_transient", POLICY(6));
    pipeline_sim_fault(P, "{\"paymentKey\":\"T_tr\",\"type\":\"error_5xx\"}");
    pipeline_sim_fault(P, "{\"paymentKey\":\"T_tr\",\"type\":\"rate_limited\"}");
    pipeline_sim_fault(P, "{\"paymentKey\":\"T_tr\",\"type\":\"in_progress\"}");
    publish("r-tr", "T_tr", 9000, 0, 9000);

    cr_assert_str_eq(wait_final("r-tr"), "SUCCEEDED");
    expect_cancels("T_tr", "cr:r-tr");
    char *c = calls("T_tr");
    cr_expect_str_eq(c,
                     "order,cancel:error_5xx,order,cancel:rate_limited,order,cancel:in_progress,"
                     "order,cancel",
                     "every attempt inquires before it cancels");
    free(c);
}

/* The cancel is made and its answer lost; the next attempt's inquiry finds
 * it. Run with the simulator's cancel_available_amount guard as given. */
static void lost_answer(const char *name, const char *guard)
{
    char settings[64];
    P = pipeline_start(name, POLICY(3));
    snprintf(settings, sizeof(settings), "{\"guard\":\"%s\"}", guard);
    cr_assert_eq(pipeline_sim_call(P, "PUT", "/_sim/kakaopay", settings, NULL), 200);
    pipeline_sim_fault(P, "{\"paymentKey\":\"T_lost\",\"type\":\"apply_then_drop\"}");
    publish("r-lost", "T_lost", 7000, 0, 7000);

    cr_assert_str_eq(wait_final("r-lost"), "SUCCEEDED");
    expect_cancels("T_lost", "cr:r-lost");
    char *found =
        query("SELECT found_by_inquiry FROM cancel_request WHERE request_id = $1", "r-lost");
    cr_expect_str_eq(found, "t");
    free(found);
}

Test(gateway_kakaopay, lost_answer_guard_ignored, .fini = stop, .timeout = 180)
{
    lost_answer("kakaopay_lost_ignored", "ignored");
}

/* Enforced, the guard the driver sends must be the balance KakaoPay means
 * (this cancel included): a wrong one would be refused and fail the test. */
Test(gateway_kakaopay, lost_answer_guard_enforced, .fini = stop, .timeout = 180)
{
    lost_answer("kakaopay_lost_enforced", "enforced");
}

/* The partial cancel of a second request under the enforced guard: its
 * guard is the balance after the first request's cancel. */
Test(gateway_kakaopay, guard_enforced_follows_the_balance, .fini = stop, .timeout = 180)
{
    P = pipeline_start("kakaopay_guard_balance", POLICY(3));
    cr_assert_eq(pipeline_sim_call(P, "PUT", "/_sim/kakaopay", "{\"guard\":\"enforced\"}", NULL),
                 200);
    publish("r-g1", "T_guard", 10000, 0, 4000);
    cr_assert_str_eq(wait_final("r-g1"), "SUCCEEDED");
    pipeline_publish(P, "r-g2", "kakaopay", "T_guard", 4000, "KRW", true);
    cr_assert_str_eq(wait_final("r-g2"), "SUCCEEDED");
    expect_cancels("T_guard", "cr:r-g1,cr:r-g2");
}

/* The cancel applies, its answer never comes (2.5 s hang, 2 s timeout). */
Test(gateway_kakaopay, hang_past_the_timeout_ends_with_one_cancel, .fini = stop, .timeout = 180)
{
    P = pipeline_start("kakaopay_hang", POLICY(3));
    pipeline_sim_fault(P,
                       "{\"paymentKey\":\"T_hang\",\"type\":\"apply_then_hang\",\"delayMs\":2500}");
    publish("r-hang", "T_hang", 6000, 0, 6000);

    cr_assert_str_eq(wait_final("r-hang"), "SUCCEEDED");
    expect_cancels("T_hang", "cr:r-hang");
}

/* A lost cancel answer, then inquiries that hang past the timeout: nothing
 * is known, so nothing is sent; once an inquiry is answered it finds the
 * cancel. Never a second cancel. */
Test(gateway_kakaopay, unanswered_inquiries_after_a_lost_answer_never_cancel_again, .fini = stop,
     .timeout = 180)
{
    P = pipeline_start("kakaopay_inquiry_hang", POLICY(3));
    pipeline_sim_fault(P, "{\"paymentKey\":\"T_ih\",\"type\":\"apply_then_drop\"}");
    publish("r-ih", "T_ih", 5000, 0, 5000);
    /* The cancel is made (its answer dropped); before the next attempt's
     * inquiry (at least the gateway timeout later), the inquiries start
     * hanging. */
    for (int i = 0; i < 400 && pipeline_refunds(P, "T_ih") == 0; i++)
        usleep(25 * 1000);
    cr_assert_eq(pipeline_refunds(P, "T_ih"), 1, "the cancel was never made");
    pipeline_sim_fault(P, "{\"paymentKey\":\"T_ih\",\"operation\":\"inquiry\",\"type\":\"hang\","
                          "\"delayMs\":3000,\"times\":2}");

    cr_assert_str_eq(wait_final("r-ih"), "SUCCEEDED");
    expect_cancels("T_ih", "cr:r-ih");
    char *c = calls("T_ih");
    cr_expect_str_eq(c, "order,cancel:apply_then_drop,order:hang,order:hang,order",
                     "no cancel while the inquiries went unanswered");
    free(c);
}

/* kill -9 of the retry-consumer while the cancel is at the gateway (and
 * applied): the reconciler takes the lease over, the next attempt inquires
 * and finds the cancel. */
Test(gateway_kakaopay, kill_during_the_cancel_ends_with_one_cancel, .fini = stop, .timeout = 180)
{
    P = pipeline_start("kakaopay_kill", POLICY(3) "consumers: { retry: { lease: 4s } }\n");
    pipeline_sim_fault(P,
                       "{\"paymentKey\":\"T_kill\",\"type\":\"apply_then_hang\",\"delayMs\":1800}");
    publish("r-kill", "T_kill", 9000, 0, 9000);
    for (int i = 0; i < 400 && pipeline_refunds(P, "T_kill") == 0; i++)
        usleep(25 * 1000);
    cr_assert_eq(pipeline_refunds(P, "T_kill"), 1, "the cancel never reached the gateway");
    pipeline_kill(P, PIPELINE_RETRY, 0, SIGKILL);
    usleep(2000 * 1000);
    pipeline_start_process(P, PIPELINE_RETRY, 0);

    cr_assert_str_eq(wait_final("r-kill"), "SUCCEEDED");
    expect_cancels("T_kill", "cr:r-kill");
    char *found =
        query("SELECT found_by_inquiry FROM cancel_request WHERE request_id = $1", "r-kill");
    cr_expect_str_eq(found, "t");
    free(found);
}
