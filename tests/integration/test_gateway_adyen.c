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
 * The result of a received refund comes by REFUND notification: the tests
 * run a webhook-receiver that the simulator's sender posts to (signed with
 * the gateway's key), and end in the status the notification decides; where
 * none comes, the request waits PENDING, its checks replaying the refund,
 * until its deadline, past which it is left to a person.
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

/* The Adyen gateway's webhook HMAC key (the receiver's and the simulator's). */
#define HMAC_KEY "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"

/* POLICY(n), with more retry keys (", deadline: 3s"), and a
 * webhook-receiver that takes the Adyen gateway's notifications. */
#define WEBHOOK_POLICY(n, retry_more)                                                              \
    "retry: { initial_delay: 200ms, max_delay: 1s, max_attempts: " #n retry_more " }\n"            \
    "webhooks:\n"                                                                                  \
    "  listen: 127.0.0.1:0\n"                                                                      \
    "gateways:\n"                                                                                  \
    "  adyen:\n"                                                                                   \
    "    timeout: 2s\n"                                                                            \
    "    webhook_hmac_keys: [" HMAC_KEY "]\n"

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

/* Every call of rid went under its first key: nothing ever proved that no
 * refund was made. */
static void expect_first_key_only(const char *rid)
{
    char *keys = query("SELECT string_agg(DISTINCT coalesce(idempotency_key, '-'), ',') FROM "
                       "retry_attempt_log WHERE request_id = $1 AND idempotency_key IS NOT NULL",
                       rid);
    cr_expect_str_eq(keys, rid, "%s: a key other than the first was used", rid);
    free(keys);
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
    expect_first_key_only(rid);
}

/* The pipeline with yaml (WEBHOOK_POLICY) and a webhook-receiver, and the
 * simulator sending its notifications there, signed with the gateway's
 * key. */
static void start_webhooks(const char *name, const char *yaml)
{
    char url[256], json[512];
    P = pipeline_start(name, yaml);
    pipeline_start_webhook_receiver(P, 0, NULL, url, sizeof(url));
    snprintf(json, sizeof(json), "{\"url\":\"%s\",\"hmacKey\":\"" HMAC_KEY "\"}", url);
    cr_assert_eq(pipeline_sim_call(P, "PUT", "/_sim/adyen/webhooks/endpoint", json, NULL), 200);
}

static long long count_of(const char *sql, const char *rid)
{
    const char *params[] = {rid};
    return itest_query_int(pipeline_itest(P), sql, 1, params);
}

/* The simulator's deliveries about psp (new reference). */
static json_t *deliveries(const char *psp)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/adyen/webhooks?pspReference=%s", psp);
    char *body = pipeline_sim_get(P, path);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    json_t *list = json_incref(json_object_get(j, "deliveries"));
    json_decref(j);
    cr_assert(json_is_array(list), "no delivery list");
    return list;
}

/* Wait until the deliveries about psp satisfy: at least accepted of them
 * accepted and at least refused attempts answered with a non-2xx. */
static bool deliveries_reach(const char *psp, size_t accepted, size_t refused)
{
    for (int waited = 0; waited < PIPELINE_FINAL_TIMEOUT_MS; waited += 100) {
        size_t acc = 0, ref = 0, i, k;
        json_t *d, *a, *list = deliveries(psp);
        json_array_foreach(list, i, d)
        {
            acc += json_is_true(json_object_get(d, "accepted"));
            json_array_foreach(json_object_get(d, "attempts"), k, a)
            {
                json_int_t st = json_integer_value(json_object_get(a, "status"));
                ref += st != 0 && (st < 200 || st > 299);
            }
        }
        json_decref(list);
        if (acc >= accepted && ref >= refused)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

/* Deliver delivery i about psp again (the simulator's "resend"). */
static void redeliver(const char *psp, size_t i)
{
    char json[64];
    json_t *list = deliveries(psp);
    json_t *d = json_array_get(list, i);
    cr_assert_not_null(d, "no delivery %zu about %s", i, psp);
    snprintf(json, sizeof(json), "{\"id\":%lld}",
             (long long)json_integer_value(json_object_get(d, "id")));
    json_decref(list);
    pipeline_sim_post(P, "/_sim/adyen/webhooks/redeliver", json);
}

static const char sql_notifications[] =
    "SELECT count(*) FROM gateway_notification WHERE request_id = $1";

Test(gateway_adyen, success_is_decided_by_the_notification, .fini = stop, .timeout = 180)
{
    start_webhooks("adyen_ok", WEBHOOK_POLICY(3, ""));
    publish("r-wh", "PSP_WH_000000001", 10000, 0, 10000);

    cr_assert_str_eq(pipeline_require_final(P, "r-wh", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
    expect_refunds("PSP_WH_000000001", "r-wh/r-wh/10000");
    cr_expect_eq(count_of(sql_notifications, "r-wh"), 1);
}

Test(gateway_adyen, partial_refund_is_one_refund_of_its_amount, .fini = stop, .timeout = 180)
{
    start_webhooks("adyen_partial", WEBHOOK_POLICY(3, ""));
    publish("r-part", "PSP_PART_0000001", 10000, 0, 3000);

    cr_assert_str_eq(pipeline_require_final(P, "r-part", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
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
    start_webhooks("adyen_transient", WEBHOOK_POLICY(6, ""));
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_TRAN_0000001\",\"type\":\"error_5xx\"}");
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_TRAN_0000001\",\"type\":\"rate_limited\"}");
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_TRAN_0000001\",\"type\":\"in_progress\"}");
    publish("r-tr", "PSP_TRAN_0000001", 9000, 0, 9000);

    cr_assert_str_eq(pipeline_require_final(P, "r-tr", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
    expect_refunds("PSP_TRAN_0000001", "r-tr/r-tr/9000");
    expect_first_key_only("r-tr");
}

/* The refund is made and its answer lost: the next attempt, under the same
 * key, gets the first 201 back. */
Test(gateway_adyen, lost_answer_is_found_under_the_same_key, .fini = stop, .timeout = 180)
{
    start_webhooks("adyen_lost", WEBHOOK_POLICY(3, ""));
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_LOST_0000001\",\"type\":\"apply_then_drop\"}");
    publish("r-lost", "PSP_LOST_0000001", 7000, 0, 7000);

    cr_assert_str_eq(pipeline_require_final(P, "r-lost", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
    expect_refunds("PSP_LOST_0000001", "r-lost/r-lost/7000");
    expect_first_key_only("r-lost");
}

/* The refund applies, its answer never comes in time (2.5 s, 2 s timeout);
 * a retry while the first still holds the key gets 422 "in progress". */
Test(gateway_adyen, hang_past_the_timeout_ends_with_one_refund, .fini = stop, .timeout = 180)
{
    start_webhooks("adyen_hang", WEBHOOK_POLICY(3, ""));
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"PSP_HANG_0000001\",\"type\":\"apply_then_hang\",\"delayMs\":2500}");
    publish("r-hang", "PSP_HANG_0000001", 6000, 0, 6000);

    cr_assert_str_eq(pipeline_require_final(P, "r-hang", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
    expect_refunds("PSP_HANG_0000001", "r-hang/r-hang/6000");
    expect_first_key_only("r-hang");
}

/* kill -9 of the retry-consumer while the refund is at the gateway (and
 * applied): the reconciler takes the lease over, and the next attempt, under
 * the same key, finds the refund. */
Test(gateway_adyen, kill_during_the_refund_ends_with_one_refund, .fini = stop, .timeout = 180)
{
    start_webhooks("adyen_kill", WEBHOOK_POLICY(3, "") "consumers: { retry: { lease: 4s } }\n");
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"PSP_KILL_0000001\",\"type\":\"apply_then_hang\",\"delayMs\":1800}");
    publish("r-kill", "PSP_KILL_0000001", 9000, 0, 9000);
    for (int i = 0; i < 400 && pipeline_refunds(P, "PSP_KILL_0000001") == 0; i++)
        usleep(25 * 1000);
    cr_assert_eq(pipeline_refunds(P, "PSP_KILL_0000001"), 1, "the refund never reached Adyen");
    pipeline_kill(P, PIPELINE_RETRY, 0, SIGKILL);
    usleep(2000 * 1000);
    pipeline_start_process(P, PIPELINE_RETRY, 0);

    cr_assert_str_eq(pipeline_require_final(P, "r-kill", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
    expect_refunds("PSP_KILL_0000001", "r-kill/r-kill/9000");
    expect_first_key_only("r-kill");
}

/* ---- what the notifications decide ---- */

/* The refund is refused when it settles: REFUND success "false". */
Test(gateway_adyen, refused_notification_fails_the_request, .fini = stop, .timeout = 180)
{
    start_webhooks("adyen_wh_refused", WEBHOOK_POLICY(3, ""));
    pipeline_sim_post(P, "/_sim/payments",
                      "{\"gateway\":\"adyen\",\"paymentKey\":\"PSP_WH_REFUSED01\",\"amount\":"
                      "6000,\"currency\":\"EUR\",\"refundStatus\":\"failed\"}");
    pipeline_publish(P, "r-ref", "adyen", "PSP_WH_REFUSED01", 6000, "EUR", false);

    cr_assert_str_eq(pipeline_require_final(P, "r-ref", PIPELINE_FINAL_TIMEOUT_MS), "FAILED");
    /* One refund was made, and refused: no money moved. */
    expect_refunds("PSP_WH_REFUSED01", "r-ref/r-ref/6000");
    cr_expect_eq(pipeline_refunded_amount(P, "PSP_WH_REFUSED01"), 0);
}

/* The same notification delivered twice (again after its 2xx): stored once,
 * one outcome, one refund. */
Test(gateway_adyen, duplicated_notification_is_stored_once, .fini = stop, .timeout = 180)
{
    start_webhooks("adyen_wh_duplicate", WEBHOOK_POLICY(3, ""));
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_WH_DUP000001\",\"type\":\"duplicate\"}");
    publish("r-dup", "PSP_WH_DUP000001", 8000, 0, 8000);

    cr_assert_str_eq(pipeline_require_final(P, "r-dup", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
    cr_assert(deliveries_reach("PSP_WH_DUP000001", 2, 0), "the copy was not delivered");
    cr_expect_eq(count_of(sql_notifications, "r-dup"), 1);
    cr_expect_eq(count_of("SELECT count(*) FROM outbox WHERE request_id = $1 AND event_type = "
                          "'payments.cancel.outcome.v1'",
                          "r-dup"),
                 1);
    expect_refunds("PSP_WH_DUP000001", "r-dup/r-dup/8000");
}

/* A notification signed with another key is refused (no 2xx) and decides
 * nothing, however often it comes; the genuine one, resent, does. */
Test(gateway_adyen, forged_notification_decides_nothing, .fini = stop, .timeout = 180)
{
    start_webhooks("adyen_wh_forged", WEBHOOK_POLICY(3, ""));
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_WH_FORGED001\",\"type\":\"forged\"}");
    publish("r-forged", "PSP_WH_FORGED001", 5000, 0, 5000);

    cr_assert(deliveries_reach("PSP_WH_FORGED001", 0, 3), "the forged item was not refused");
    cr_expect_eq(count_of(sql_notifications, "r-forged"), 0);
    char *st = query("SELECT status FROM cancel_request WHERE request_id = $1", "r-forged");
    cr_expect(strcmp(st, "PENDING") == 0 || strcmp(st, "IN_FLIGHT") == 0,
              "a forged notification decided %s", st);
    free(st);

    redeliver("PSP_WH_FORGED001", 0);
    cr_assert_str_eq(pipeline_require_final(P, "r-forged", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
    expect_refunds("PSP_WH_FORGED001", "r-forged/r-forged/5000");
}

/* No notification comes: the request waits PENDING, its checks replaying
 * the refund under the same key (Adyen has no inquiry), which finds the
 * refund received and never makes a second; the notification, resent,
 * ends it. */
Test(gateway_adyen, missing_notification_is_chased_by_same_key_replays, .fini = stop,
     .timeout = 180)
{
    start_webhooks("adyen_wh_missing", WEBHOOK_POLICY(3, ""));
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_WH_MISSING01\",\"type\":\"drop\"}");
    publish("r-miss", "PSP_WH_MISSING01", 4000, 0, 4000);

    expect_pending_after_replays("r-miss", 3);
    cr_expect_eq(count_of(sql_notifications, "r-miss"), 0);
    expect_refunds("PSP_WH_MISSING01", "r-miss/r-miss/4000");

    redeliver("PSP_WH_MISSING01", 0);
    cr_assert_str_eq(pipeline_require_final(P, "r-miss", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
    expect_refunds("PSP_WH_MISSING01", "r-miss/r-miss/4000");
}

/* No notification by the deadline: past it the refund is not replayed (its
 * key may expire at Adyen, and a replay would then be a second refund), and
 * the request ends REFUND_STATE_UNKNOWN for a person; the notification
 * that comes after that is a dead letter, not a new outcome. */
Test(gateway_adyen, missing_notification_past_the_deadline_is_left_to_a_person, .fini = stop,
     .timeout = 180)
{
    start_webhooks("adyen_wh_deadline", WEBHOOK_POLICY(3, ", deadline: 3s"));
    pipeline_sim_fault(P, "{\"paymentKey\":\"PSP_WH_DEADLINE1\",\"type\":\"drop\"}");
    publish("r-dl", "PSP_WH_DEADLINE1", 4000, 0, 4000);

    cr_assert_str_eq(pipeline_require_final(P, "r-dl", PIPELINE_FINAL_TIMEOUT_MS), "EXHAUSTED");
    char *code = query("SELECT last_error_code FROM cancel_request WHERE request_id = $1", "r-dl");
    cr_expect_str_eq(code, "REFUND_STATE_UNKNOWN");
    free(code);
    expect_refunds("PSP_WH_DEADLINE1", "r-dl/r-dl/4000");
    expect_first_key_only("r-dl");

    redeliver("PSP_WH_DEADLINE1", 0);
    const char *params[] = {"r-dl"};
    cr_assert(pipeline_wait_query(P,
                                  "SELECT count(*) FROM outbox WHERE event_type = 'dead-letter' "
                                  "AND request_id = $1 AND headers @> jsonb_build_array("
                                  "jsonb_build_array('dlq.reason', 'REFUND_AFTER_FINAL'))",
                                  1, params, "1", PIPELINE_FINAL_TIMEOUT_MS),
              "no dead letter for a REFUND after the request ended");
    char *st = query("SELECT status FROM cancel_request WHERE request_id = $1", "r-dl");
    cr_expect_str_eq(st, "EXHAUSTED");
    free(st);
    expect_refunds("PSP_WH_DEADLINE1", "r-dl/r-dl/4000");
}

/* REFUND_FAILED after the success: the request stays SUCCEEDED (it was,
 * when it ended) and a dead letter tells a human that the money did not
 * reach the shopper. */
Test(gateway_adyen, refund_failed_after_success_is_a_dead_letter, .fini = stop, .timeout = 180)
{
    start_webhooks("adyen_wh_failed_after", WEBHOOK_POLICY(3, ""));
    publish("r-fa", "PSP_WH_FAILAFTER", 3000, 0, 3000);
    cr_assert_str_eq(pipeline_require_final(P, "r-fa", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");

    json_t *l = pipeline_ledger(P, "PSP_WH_FAILAFTER");
    const char *refund =
        json_string_value(json_object_get(json_array_get(json_object_get(l, "refunds"), 0), "id"));
    cr_assert_not_null(refund);
    char path[128];
    snprintf(path, sizeof(path), "/_sim/adyen/refunds/%s/events", refund);
    json_decref(l);
    pipeline_sim_post(P, path, "{\"eventCode\":\"REFUND_FAILED\",\"reason\":\"scheme\"}");

    const char *params[] = {"r-fa"};
    cr_assert(pipeline_wait_query(P,
                                  "SELECT count(*) FROM outbox WHERE event_type = 'dead-letter' "
                                  "AND request_id = $1 AND headers @> jsonb_build_array("
                                  "jsonb_build_array('dlq.reason', 'REFUND_FAILED_AFTER_SUCCESS'))",
                                  1, params, "1", PIPELINE_FINAL_TIMEOUT_MS),
              "no dead letter for REFUND_FAILED after SUCCEEDED");
    char *st = query("SELECT status FROM cancel_request WHERE request_id = $1", "r-fa");
    cr_expect_str_eq(st, "SUCCEEDED");
    free(st);
    expect_refunds("PSP_WH_FAILAFTER", "r-fa/r-fa/3000");
}
