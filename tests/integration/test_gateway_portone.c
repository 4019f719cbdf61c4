/*
 * PortOne V2 through the whole pipeline (pipeline_fixture.h): each test
 * publishes a cancel request for a payment in gateway-sim's PortOne ledger
 * and asserts the final status AND exactly one cancellation of ours in the
 * ledger (what the gateway did). PortOne's safety is the Idempotency-Key, the
 * balance guard and an inquiry before every send (docs/gateways.md
 * "PortOne V2"): these tests make the gateway lose answers, hang, forget the
 * key, answer REQUESTED, and change the balance under a request.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "pipeline_fixture.h"

/* Short delays, PortOne's timeout 2 s (its documented 65 s would make every
 * hang a minute). */
#define POLICY(n)                                                                                  \
    "retry: { initial_delay: 200ms, max_delay: 1s, max_attempts: " #n " }\n"                       \
    "gateways:\n"                                                                                  \
    "  portone: { timeout: 2s }\n"

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

/* Expect the SQL expression expr over request rid's cancel_request row to be
 * want. */
static void expect_request(const char *expr, const char *rid, const char *want)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT %s FROM cancel_request WHERE request_id = $1", expr);
    char *v = query(sql, rid);
    cr_expect_str_eq(v, want, "%s of %s (logs: %s)", expr, rid, pipeline_log_dir(P));
    free(v);
}

/* A PortOne payment of amount KRW; extra: more members of the admin call
 * (",\"asyncCancel\":true") or "". */
static void payment(const char *id, long amount, long refunded, const char *extra)
{
    char json[256];
    snprintf(json, sizeof(json),
             "{\"gateway\":\"portone\",\"paymentKey\":\"%s\",\"amount\":%ld,\"refunded\":%ld%s}",
             id, amount, refunded, extra);
    pipeline_sim_post(P, "/_sim/payments", json);
}

static void publish(const char *rid, const char *id, long amount, bool partial)
{
    pipeline_publish(P, rid, "portone", id, amount, "KRW", partial);
}

static void expect_final(const char *rid, const char *status)
{
    cr_assert_str_eq(pipeline_require_final(P, rid, PIPELINE_FINAL_TIMEOUT_MS), status,
                     "final status of %s (logs: %s)", rid, pipeline_log_dir(P));
}

/* The cancellations of payment id made by request rid (its marker ends their
 * reason) with status st ("succeeded", "pending", "failed"), and in all. */
static size_t ours(const char *id, const char *rid, const char *st, size_t *all)
{
    char marker[96];
    size_t n = 0, i;
    json_t *r;
    json_t *p = pipeline_ledger(P, id);
    cr_assert_not_null(p, "no payment %s in the ledger", id);
    snprintf(marker, sizeof(marker), "[cr:%s]", rid);
    *all = json_array_size(json_object_get(p, "refunds"));
    json_array_foreach(json_object_get(p, "refunds"), i, r)
    {
        const char *reason = json_string_value(json_object_get(r, "reason"));
        const char *status = json_string_value(json_object_get(r, "status"));
        size_t rl = reason ? strlen(reason) : 0, ml = strlen(marker);
        if (rl >= ml && strcmp(reason + rl - ml, marker) == 0 && status != NULL &&
            strcmp(status, st) == 0)
            n++;
    }
    json_decref(p);
    return n;
}

/* Exactly one succeeded cancellation of ours, others of someone else's
 * beside it, and refunded in all on the payment. */
static void expect_one_refund(const char *id, const char *rid, long refunded, size_t others)
{
    size_t all;
    cr_expect_eq(ours(id, rid, "succeeded", &all), 1, "cancellations of %s by %s (logs: %s)", id,
                 rid, pipeline_log_dir(P));
    cr_expect_eq(all, 1 + others, "cancellations of %s in all", id);
    cr_expect_eq(pipeline_refunded_amount(P, id), refunded, "amount cancelled on %s", id);
}

/* Faults of the payment id: each a JSON object without its paymentKey,
 * NULL-terminated. */
static void faults(const char *id, const char *const *list)
{
    char json[512];
    for (size_t i = 0; list[i] != NULL; i++) {
        snprintf(json, sizeof(json), "{\"paymentKey\":\"%s\",%s", id, list[i] + 1);
        pipeline_sim_fault(P, json);
    }
}

/* Request rid cancels amount of the payment id: it ends SUCCEEDED with
 * exactly one cancellation of ours, whatever the gateway did before. */
static void expect_one_refund_for(const char *rid, const char *id, long amount, bool partial)
{
    publish(rid, id, amount, partial);
    expect_final(rid, "SUCCEEDED");
    expect_one_refund(id, rid, amount, 0);
}

Test(gateway_portone, success_sends_the_guard_and_the_marker, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_success", POLICY(4));
    payment("pay_ok", 15000, 0, "");
    expect_one_refund_for("r-po-ok", "pay_ok", 15000, false);
    /* Inquiry first, then the cancel with the quoted, padded key. */
    char *calls = pipeline_sim_get(P, "/_sim/calls?paymentKey=pay_ok");
    cr_expect_not_null(strstr(calls, "\"method\":\"GET\""), "no inquiry before the cancel: %s",
                       calls);
    cr_expect_not_null(strstr(calls, "\"idempotencyKey\":\"\\\"cancel-retry-request-r-po-ok\\\"\""),
                       "key: %s", calls);
    free(calls);
    /* The attempt log records the key as sent, by PortOne's rules. */
    char *keys = query("SELECT string_agg(idempotency_key, ',') FROM retry_attempt_log"
                       " WHERE request_id = $1 AND idempotency_key IS NOT NULL",
                       "r-po-ok");
    cr_expect_str_eq(keys, "cancel-retry-request-r-po-ok");
    free(keys);
}

Test(gateway_portone, partial_refund_cancels_only_its_amount, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_partial", POLICY(4));
    payment("pay_part", 10000, 0, "");
    expect_one_refund_for("r-po-part", "pay_part", 3000, true);
}

Test(gateway_portone, already_cancelled_payment_sends_nothing, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_already", POLICY(4));
    payment("pay_done", 5000, 5000, "");
    publish("r-po-done", "pay_done", 5000, false);
    expect_final("r-po-done", "ALREADY_REFUNDED");
    cr_expect_eq(pipeline_refunds(P, "pay_done"), 0);
}

Test(gateway_portone, a_payment_not_paid_fails_without_a_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_not_paid", POLICY(4));
    payment("pay_ready", 5000, 0, ",\"paymentStatus\":\"READY\"");
    publish("r-po-ready", "pay_ready", 5000, false);
    expect_final("r-po-ready", "FAILED");
    expect_request("last_error_code", "r-po-ready", "PAYMENT_NOT_PAID");
    cr_expect_eq(pipeline_refunds(P, "pay_ready"), 0);
}

Test(gateway_portone, transient_errors_then_one_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_transient", POLICY(6));
    payment("pay_tr", 8000, 0, "");
    faults("pay_tr",
           (const char *const[]){"{\"type\":\"error_5xx\"}", "{\"type\":\"rate_limited\"}",
                                 "{\"type\":\"provider_error\"}", NULL});
    expect_one_refund_for("r-po-tr", "pay_tr", 8000, false);
}

Test(gateway_portone, a_lost_answer_is_found_by_the_inquiry, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_drop", POLICY(4));
    payment("pay_drop", 7000, 0, "");
    faults("pay_drop", (const char *const[]){"{\"type\":\"apply_then_drop\"}", NULL});
    expect_one_refund_for("r-po-drop", "pay_drop", 7000, false);
}

Test(gateway_portone, a_hang_past_the_timeout_then_one_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_hang", POLICY(4));
    payment("pay_hang", 6000, 0, "");
    faults("pay_hang",
           (const char *const[]){"{\"type\":\"hang\",\"delayMs\":3000}",
                                 "{\"type\":\"apply_then_hang\",\"delayMs\":3000}", NULL});
    expect_one_refund_for("r-po-hang", "pay_hang", 6000, false);
}

/* The gateway forgets the key (1 s here, 3 hours at PortOne) while the
 * request is still open: the inquiry before the next send finds the
 * cancellation the lost answer made. */
Test(gateway_portone, key_expiry_mid_request_still_one_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_key_ttl", POLICY(4));
    cr_assert_eq(pipeline_sim_call(P, "PUT", "/_sim/portone/config", "{\"keyTtlSeconds\":1}", NULL),
                 200);
    payment("pay_ttl", 9000, 0, "");
    faults("pay_ttl",
           (const char *const[]){"{\"type\":\"apply_then_hang\",\"delayMs\":2500}", NULL});
    expect_one_refund_for("r-po-ttl", "pay_ttl", 9000, false);
    expect_request("found_by_inquiry", "r-po-ttl", "t");
}

/* kill -9 of the retry-consumer while the gateway holds the call (the
 * cancel applied): the restarted consumer's inquiry finds it. */
Test(gateway_portone, kill_mid_call_still_one_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_kill", POLICY(4) "consumers: { retry: { lease: 4s } }\n");
    payment("pay_kill", 9000, 0, "");
    faults("pay_kill",
           (const char *const[]){"{\"type\":\"apply_then_hang\",\"delayMs\":2500}", NULL});
    publish("r-po-kill", "pay_kill", 9000, false);
    const char *params[] = {"r-po-kill"};
    cr_assert(pipeline_wait_query(P, "SELECT status FROM cancel_request WHERE request_id = $1", 1,
                                  params, "IN_FLIGHT", 30000));
    /* The cancel is at the gateway once its call is logged (apply first). */
    for (int i = 0; i < 200 && pipeline_refunds(P, "pay_kill") == 0; i++)
        usleep(25 * 1000);
    pipeline_kill(P, PIPELINE_RETRY, 0, SIGKILL);
    pipeline_start_process(P, PIPELINE_RETRY, 0);
    expect_final("r-po-kill", "SUCCEEDED");
    expect_one_refund("pay_kill", "r-po-kill", 9000, 0);
}

/* POST /_sim/portone/cancellations/{id}/settle for the one cancellation of
 * id, once the pipeline made it (REQUESTED). */
static void settle_when_requested(const char *id, const char *status)
{
    char *ledger_id = NULL;
    for (int i = 0; i < 600 && ledger_id == NULL; i++) {
        json_t *p = pipeline_ledger(P, id);
        const char *rid = json_string_value(
            json_object_get(json_array_get(json_object_get(p, "refunds"), 0), "id"));
        if (rid != NULL)
            ledger_id = strdup(rid);
        json_decref(p);
        if (ledger_id == NULL)
            usleep(50 * 1000);
    }
    cr_assert_not_null(ledger_id, "no cancellation of %s (logs: %s)", id, pipeline_log_dir(P));
    char path[256], json[64];
    snprintf(path, sizeof(path), "/_sim/portone/cancellations/%s/settle", ledger_id);
    snprintf(json, sizeof(json), "{\"status\":\"%s\"}", status);
    /* Let the request see REQUESTED a few times: it must not send again. */
    usleep(1500 * 1000);
    pipeline_sim_post(P, path, json);
    free(ledger_id);
}

/* An asynchronous payment id of 12000 in a pipeline called name; rid
 * cancels all of it, and the gateway settles the REQUESTED cancellation as
 * status says. */
static void requested_then(const char *name, const char *id, const char *rid, const char *status)
{
    P = pipeline_start(name, POLICY(4));
    payment(id, 12000, 0, ",\"asyncCancel\":true");
    publish(rid, id, 12000, false);
    settle_when_requested(id, status);
}

Test(gateway_portone, requested_then_settled_succeeded, .fini = stop, .timeout = 180)
{
    requested_then("portone_requested_ok", "pay_req", "r-po-req", "SUCCEEDED");
    expect_final("r-po-req", "SUCCEEDED");
    expect_one_refund("pay_req", "r-po-req", 12000, 0);
    expect_request("attempts - budget_base", "r-po-req", "1");
}

Test(gateway_portone, requested_then_settled_failed_is_not_a_success, .fini = stop, .timeout = 180)
{
    requested_then("portone_requested_failed", "pay_reqf", "r-po-reqf", "FAILED");
    expect_final("r-po-reqf", "FAILED");
    expect_request("last_error_code", "r-po-reqf", "REFUND_FAILED");
    size_t all;
    cr_expect_eq(ours("pay_reqf", "r-po-reqf", "failed", &all), 1);
    cr_expect_eq(all, 1, "no second cancel after the FAILED one");
    cr_expect_eq(pipeline_refunded_amount(P, "pay_reqf"), 0, "a failed cancel returns no money");
}

/* Another cancel of the payment lands between our inquiry and our cancel:
 * the guard refuses ours (nothing applied), the next inquiry reads the new
 * balance and the cancel goes out under a new key: one cancellation of ours
 * beside the other one. Every call takes 1 s (latency), so the other cancel
 * is planted while ours is on its way. */
Test(gateway_portone, guard_refusal_after_another_cancel, .fini = stop, .timeout = 180)
{
    P = pipeline_start("portone_guard", "retry: { initial_delay: 200ms, max_delay: 1s, "
                                        "max_attempts: 4 }\n"
                                        "gateways:\n  portone: { timeout: 4s }\n");
    payment("pay_guard", 10000, 0, "");
    pipeline_sim_call(P, "PUT", "/_sim/latency", "{\"minMs\":1000,\"maxMs\":1000}", NULL);
    publish("r-po-guard", "pay_guard", 4000, true);
    /* Our inquiry is answered (logged) 1 s after it arrived; our cancel is
     * then at the gateway for another second. */
    char *calls = NULL;
    for (int i = 0; i < 400; i++) {
        free(calls);
        calls = pipeline_sim_get(P, "/_sim/calls?paymentKey=pay_guard");
        if (strstr(calls, "\"method\":\"GET\"") != NULL)
            break;
        usleep(10 * 1000);
    }
    cr_assert_not_null(strstr(calls, "\"method\":\"GET\""), "no inquiry: %s", calls);
    free(calls);
    pipeline_sim_post(P, "/_sim/payments/pay_guard/refunds",
                      "{\"amount\":1000,\"reason\":\"by hand in the console\"}");
    expect_final("r-po-guard", "SUCCEEDED");
    pipeline_sim_call(P, "PUT", "/_sim/latency", "{\"minMs\":0,\"maxMs\":0}", NULL);
    expect_one_refund("pay_guard", "r-po-guard", 4000 + 1000, 1);
    char *log = query("SELECT string_agg(verdict, ',' ORDER BY attempt) FROM retry_attempt_log"
                      " WHERE request_id = $1 AND event = 'ANSWERED'",
                      "r-po-guard");
    cr_expect_eq(strncmp(log, "RETRYABLE,", 10), 0, "the guard refused the first cancel: %s", log);
    free(log);
}
