/*
 * Gateway truth (issue 12): every final status is what really happened at
 * the gateway. Each test runs the whole pipeline (pipeline_fixture.h) with
 * the short policy: initial_delay 200ms, doubling, max_delay 2s, 6
 * attempts, gateway timeout 3s; and asserts on the simulator's ledger (what
 * the gateway did), not only on our own records.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "pipeline_fixture.h"
#include "base/clock.h"

/* The policy: 200 ms x2, cap 2 s, n attempts (6 there), 3 s timeout.
 * One YAML document: a test adds keys other than retry and gateways. */
#define POLICY(n)                                                                                  \
    "retry: { initial_delay: 200ms, max_delay: 2s, max_attempts: " #n " }\n"                       \
    "gateways:\n"                                                                                  \
    "  toss: { timeout: 3s }\n"                                                                    \
    "  stripe: { timeout: 3s }\n"
#define SHORT_POLICY POLICY(6)

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

static const char *wait_final(const char *request_id)
{
    return pipeline_require_final(P, request_id, PIPELINE_FINAL_TIMEOUT_MS);
}

static char *query(const char *sql, const char *request_id)
{
    return pipeline_query(P, sql, request_id);
}

/* "verdict/decision" of every ANSWERED fact, in order. */
static char *answers(const char *request_id)
{
    return query("SELECT coalesce(string_agg(verdict || '/' || decision, ', ' ORDER BY attempt),"
                 " '') FROM retry_attempt_log WHERE request_id = $1 AND event = 'ANSWERED'",
                 request_id);
}

/* The Idempotency-Keys the refunds of payment_key were made under (the
 * ledger: what the gateway did), comma-separated in order. */
static char *ledger_keys(const char *payment_key)
{
    json_t *p = pipeline_ledger(P, payment_key);
    cr_assert_not_null(p, "no payment %s in the ledger", payment_key);
    char out[512] = "";
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(p, "refunds"), i, r)
    {
        const char *k = json_string_value(json_object_get(r, "idempotencyKey"));
        const char *st = json_string_value(json_object_get(r, "status"));
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s%s%s", i ? "," : "",
                 k ? k : "-", st && strcmp(st, "succeeded") != 0 ? ":" : "",
                 st && strcmp(st, "succeeded") != 0 ? st : "");
    }
    json_decref(p);
    return strdup(out);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static void expect_one_refund_under(const char *payment_key, const char *key)
{
    char *keys = ledger_keys(payment_key);
    cr_expect_str_eq(keys, key, "refunds of %s at the gateway (logs: %s)", payment_key,
                     pipeline_log_dir(P));
    free(keys);
}

/* ---- key generations ---- */

/* A retryable error that the gateway stores under the key can never succeed
 * under that key: an inquiry proves no refund was made, and the next attempt
 * goes under requestId.2. */
static void stored_error_scenario(const char *gateway, const char *pk, const char *currency,
                                  const char *rid)
{
    char json[256], key2[64];
    pipeline_payment(P, gateway, pk, 8000, currency, 0);
    snprintf(json, sizeof(json),
             "{\"paymentKey\":\"%s\",\"type\":\"provider_error\",\"stored\":true,\"times\":1}", pk);
    pipeline_sim_fault(P, json);
    pipeline_publish(P, rid, gateway, pk, 8000, currency, false);

    cr_assert_str_eq(wait_final(rid), "SUCCEEDED");
    snprintf(key2, sizeof(key2), "%s.2", rid);
    expect_one_refund_under(pk, key2);
    char *keys = query("SELECT string_agg(idempotency_key || ':' || coalesce(inquiry, '-'), ', '"
                       " ORDER BY attempt) FROM retry_attempt_log"
                       " WHERE request_id = $1 AND event = 'ANSWERED'",
                       rid);
    char want[160];
    snprintf(want, sizeof(want), "%s:NOT_REFUNDED, %s:-", rid, key2);
    cr_expect_str_eq(keys, want, "each attempt's key and inquiry");
    free(keys);
    char *gen = query("SELECT key_generation FROM cancel_request WHERE request_id = $1", rid);
    cr_expect_str_eq(gen, "2");
    free(gen);
}

Test(gateway_truth, toss_stored_error_succeeds_under_the_second_key, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_toss_stored", SHORT_POLICY);
    stored_error_scenario("toss", "pk_stored", "KRW", "r-stored");
}

Test(gateway_truth, stripe_stored_500_succeeds_under_the_second_key, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_stripe_stored", SHORT_POLICY);
    stored_error_scenario("stripe", "pi_stored", "USD", "r-stored-s");
}

/* ---- in progress ---- */

/* The first call hangs 10 s past the 3 s client timeout while the gateway
 * applies the refund; the gateway answers "still processing" meanwhile.
 * Those answers spend no attempt, and the request ends SUCCEEDED with one
 * refund. */
Test(gateway_truth, a_ten_second_hang_ends_succeeded, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_hang", POLICY(3));
    pipeline_payment(P, "toss", "pk_slow", 6000, "KRW", 0);
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"pk_slow\",\"type\":\"apply_then_hang\",\"delayMs\":10000}");
    pipeline_publish(P, "r-slow", "toss", "pk_slow", 6000, "KRW", false);

    cr_assert_str_eq(wait_final("r-slow"), "SUCCEEDED");
    expect_one_refund_under("pk_slow", "r-slow");
    char *log = answers("r-slow");
    cr_expect(strstr(log, "IN_PROGRESS/RETRY") != NULL, "no in-progress answer: %s", log);
    free(log);
    /* Budget 3: the timeout and the success count, the 409s do not. */
    char *spent =
        query("SELECT attempts - budget_base FROM cancel_request WHERE request_id = $1", "r-slow");
    cr_expect_str_eq(spent, "2", "attempts that counted against the budget");
    free(spent);
}

/* ---- pending refunds ---- */

static char *first_refund_id(const char *payment_key)
{
    json_t *p = pipeline_ledger(P, payment_key);
    const char *id =
        json_string_value(json_object_get(json_array_get(json_object_get(p, "refunds"), 0), "id"));
    char *out = id != NULL ? strdup(id) : NULL;
    json_decref(p);
    cr_assert_not_null(out, "no refund in the ledger of %s", payment_key);
    return out;
}

static void pending_payment(const char *pk, const char *rid)
{
    char json[256];
    snprintf(json, sizeof(json),
             "{\"gateway\":\"stripe\",\"paymentKey\":\"%s\",\"amount\":4000,\"currency\":\"USD\","
             "\"refundStatus\":\"pending\"}",
             pk);
    pipeline_sim_post(P, "/_sim/payments", json);
    pipeline_publish(P, rid, "stripe", pk, 4000, "USD", false);
    const char *params[] = {rid};
    cr_assert(pipeline_wait_query(P, "SELECT status FROM cancel_request WHERE request_id = $1", 1,
                                  params, "PENDING", 30000),
              "%s never became PENDING (logs: %s)", rid, pipeline_log_dir(P));
}

static void move_refund(const char *pk, const char *status)
{
    char *id = first_refund_id(pk);
    char path[256], json[128];
    snprintf(path, sizeof(path), "/_sim/refunds/%s", id);
    snprintf(json, sizeof(json), "{\"status\":\"%s\"}", status);
    pipeline_sim_post(P, path, json);
    free(id);
}

Test(gateway_truth, stripe_pending_refund_succeeds_once_it_settles, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_pending", SHORT_POLICY);
    pending_payment("pi_pend", "r-pend");
    /* Still pending after a few checks: no attempt spent, not final. */
    const char *params[] = {"r-pend"};
    cr_assert(pipeline_wait_query(P,
                                  "SELECT attempts >= 3 FROM cancel_request WHERE request_id = $1",
                                  1, params, "t", 30000),
              "no inquiry checked the pending refund (logs: %s)", pipeline_log_dir(P));
    cr_expect(pipeline_wait_query(P,
                                  "SELECT status || ' ' || (attempts - budget_base)"
                                  " FROM cancel_request WHERE request_id = $1",
                                  1, params, "PENDING 0", 10000),
              "waiting for a pending refund spends nothing (logs: %s)", pipeline_log_dir(P));
    move_refund("pi_pend", "succeeded");

    cr_assert_str_eq(wait_final("r-pend"), "SUCCEEDED");
    expect_one_refund_under("pi_pend", "r-pend");
    char *found =
        query("SELECT found_by_inquiry FROM cancel_request WHERE request_id = $1", "r-pend");
    cr_expect_str_eq(found, "t");
    free(found);
}

Test(gateway_truth, stripe_failed_refund_is_not_a_success, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_pending_failed", SHORT_POLICY);
    pending_payment("pi_fail", "r-fail");
    move_refund("pi_fail", "failed");

    cr_assert_str_eq(wait_final("r-fail"), "FAILED");
    char *code =
        query("SELECT last_error_code FROM cancel_request WHERE request_id = $1", "r-fail");
    cr_expect_str_eq(code, "REFUND_FAILED");
    free(code);
    cr_expect_eq(pipeline_refunded_amount(P, "pi_fail"), 0, "a failed refund returns no money");
}

/* ---- no false EXHAUSTED ---- */

/* The only attempt's refund was made but its answer was lost: the budget is
 * spent, and an inquiry finds the refund before anything ends EXHAUSTED. */
Test(gateway_truth, a_lost_last_answer_is_settled_by_inquiry, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_last_lost", POLICY(1));
    pipeline_payment(P, "toss", "pk_last", 7000, "KRW", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_last\",\"type\":\"apply_then_drop\"}");
    pipeline_publish(P, "r-last", "toss", "pk_last", 7000, "KRW", false);

    cr_assert_str_eq(wait_final("r-last"), "SUCCEEDED");
    expect_one_refund_under("pk_last", "r-last");
    char *log = query("SELECT verdict || '/' || decision || '/' || inquiry FROM retry_attempt_log"
                      " WHERE request_id = $1 AND event = 'ANSWERED'",
                      "r-last");
    cr_expect_str_eq(log, "RETRYABLE/SUCCEEDED/REFUNDED");
    free(log);
}

/* kill -9 of the retry-consumer during the last attempt of a refund that
 * the gateway applied: the reconciler takes the lease over, a final check
 * (an inquiry, no budget) finds the refund: SUCCEEDED, never EXHAUSTED. */
Test(gateway_truth, kill_during_the_last_attempt_of_an_applied_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_kill_last", POLICY(1) "consumers: { retry: { lease: 4s } }\n");
    pipeline_payment(P, "toss", "pk_kill", 9000, "KRW", 0);
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"pk_kill\",\"type\":\"apply_then_hang\",\"delayMs\":2500}");
    pipeline_publish(P, "r-kill", "toss", "pk_kill", 9000, "KRW", false);
    const char *params[] = {"r-kill"};
    cr_assert(pipeline_wait_query(P, "SELECT status FROM cancel_request WHERE request_id = $1", 1,
                                  params, "IN_FLIGHT", 30000));
    usleep(500 * 1000); /* the call is at the gateway, the refund applied */
    pipeline_kill(P, PIPELINE_RETRY, 0, SIGKILL);
    usleep(3000 * 1000);
    pipeline_start_process(P, PIPELINE_RETRY, 0);

    cr_assert_str_eq(wait_final("r-kill"), "SUCCEEDED");
    expect_one_refund_under("pk_kill", "r-kill");
    char *log = query("SELECT string_agg(event || coalesce('/' || inquiry, ''), ', '"
                      " ORDER BY attempt, id) FROM retry_attempt_log WHERE request_id = $1",
                      "r-kill");
    cr_expect_str_eq(log, "STARTED, ABANDONED, STARTED, ANSWERED/REFUNDED");
    free(log);
}

/* ---- money bounds and documented codes ---- */

/* POST /v1/refunds to the simulator as an upstream service would, with its
 * own parameters under key; returns the HTTP status. */
static long stripe_refund_as_upstream(const char *key, const char *form)
{
    char url[256], idem[128];
    long status = 0;
    snprintf(url, sizeof(url), "%s/v1/refunds", pipeline_sim_url(P));
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, idem);
    h = curl_slist_append(h, "Authorization: Bearer sk_test_stripe_it");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* Upstream's own failed call used our key with other parameters and did
 * refund the whole payment: Stripe refuses the reused key; the inquiry shows
 * the payment refunded, so the request is not FAILED. */
Test(gateway_truth, a_reused_key_is_settled_by_inquiry, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_key_reuse", SHORT_POLICY);
    pipeline_payment(P, "stripe", "pi_reuse", 5000, "USD", 0);
    /* The upstream call: same key, no amount, no metadata. */
    cr_assert_eq(stripe_refund_as_upstream("r-reuse", "payment_intent=pi_reuse"), 200,
                 "the upstream refund");
    pipeline_publish(P, "r-reuse", "stripe", "pi_reuse", 5000, "USD", false);

    cr_assert_str_eq(wait_final("r-reuse"), "ALREADY_REFUNDED");
    cr_expect_eq(pipeline_refunds(P, "pi_reuse"), 1, "no second refund");
    char *log = answers("r-reuse");
    cr_expect_str_eq(log, "PERMANENT/ALREADY_REFUNDED");
    free(log);
}

Test(gateway_truth, toss_403_business_codes_are_not_config_faults, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_toss_403", SHORT_POLICY);
    pipeline_payment(P, "toss", "pk_nc", 3000, "KRW", 0);
    pipeline_payment(P, "toss", "pk_busy", 3000, "KRW", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_nc\",\"type\":\"permanent\",\"status\":403,"
                          "\"code\":\"NOT_CANCELABLE_PAYMENT\",\"times\":0}");
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_busy\",\"type\":\"permanent\",\"status\":403,"
                          "\"code\":\"FORBIDDEN_CONSECUTIVE_REQUEST\",\"times\":2}");
    pipeline_publish(P, "r-nc", "toss", "pk_nc", 3000, "KRW", false);
    pipeline_publish(P, "r-busy", "toss", "pk_busy", 3000, "KRW", false);

    cr_assert_str_eq(wait_final("r-nc"), "FAILED");
    cr_assert_str_eq(wait_final("r-busy"), "SUCCEEDED");
    char *log = answers("r-nc");
    cr_expect_str_eq(log, "PERMANENT/FAILED", "permanent, not a config fault");
    free(log);
    /* Toss does not say whether it keeps this refusal under the key: read
     * as kept, each one is followed by an inquiry (no refund) and the next
     * attempt goes under a new key. */
    log = answers("r-busy");
    cr_expect_str_eq(log, "RETRYABLE/RETRY, RETRYABLE/RETRY, SUCCEEDED/SUCCEEDED");
    free(log);
    expect_one_refund_under("pk_busy", "r-busy.3");
}

/* ---- the breaker and a few bad payments ---- */

#define BREAKER_REQUESTS 80

static void quarter_event(int i, struct cancel_failed_event *ev, char *rid, char *pk, void *arg)
{
    int base = *(const int *)arg;
    snprintf(rid, PIPELINE_ID_MAX, "r-q-%03d", base + i);
    snprintf(pk, PIPELINE_ID_MAX, "pk_q_%03d", base + i);
    ev->request_id = rid;
    ev->payment_key = pk;
    ev->gateway = "toss";
    ev->amount = 1000;
    ev->currency = "KRW";
}

/* A quarter of the payments fail on every attempt (a 503 each time), the
 * rest are healthy, at 10 requests/s for 8 s: the per-gateway breaker
 * (default min_requests 20, failure_ratio 0.5) must not open on a few bad
 * payments retried over and over, so healthy requests finish fast. */
Test(gateway_truth, a_quarter_of_payments_failing_forever_leave_the_rest_fast, .fini = stop,
     .timeout = 240)
{
    P = pipeline_start("truth_quarter_bad", SHORT_POLICY);
    for (int i = 0; i < BREAKER_REQUESTS; i++) {
        char pk[32], json[160];
        snprintf(pk, sizeof(pk), "pk_q_%03d", i);
        pipeline_payment(P, "toss", pk, 1000, "KRW", 0);
        if (i % 4 == 3) {
            snprintf(json, sizeof(json),
                     "{\"paymentKey\":\"%s\",\"type\":\"error_5xx\",\"times\":0}", pk);
            pipeline_sim_fault(P, json);
        }
    }
    for (int base = 0; base < BREAKER_REQUESTS; base += 10) {
        pipeline_publish_many(P, 10, quarter_event, &base);
        usleep(1000 * 1000);
    }
    for (int i = 0; i < BREAKER_REQUESTS; i++) {
        char rid[32];
        snprintf(rid, sizeof(rid), "r-q-%03d", i);
        cr_assert_str_eq(wait_final(rid), i % 4 == 3 ? "EXHAUSTED" : "SUCCEEDED", "%s", rid);
    }
    char *p95 = itest_query_value(pipeline_itest(P),
                                  "SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY"
                                  "  extract(epoch FROM finished_at - created_at))::numeric, 2)"
                                  "  FROM cancel_request WHERE status = 'SUCCEEDED'",
                                  0, NULL);
    cr_assert_not_null(p95);
    cr_log_info("healthy requests, intake to final: p95 %s s", p95);
    cr_expect_leq(atof(p95), 3.0, "healthy requests took p95 %s s (logs: %s)", p95,
                  pipeline_log_dir(P));
    free(p95);
    int opened = pipeline_log_count(P, "retry-consumer-0.log", "circuit open");
    cr_expect_eq(opened, 0, "the breaker postponed %d attempts (logs: %s)", opened,
                 pipeline_log_dir(P));
}

/* ---- the key's lifetime ---- */

/* An event without a CloudEvents time that sat in Kafka for three hours:
 * the upstream service may have used the key then, so its lifetime at the
 * gateway is counted from the Kafka timestamp, not from our intake. */
Test(gateway_truth, key_lifetime_counts_from_the_kafka_timestamp, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_key_lifetime", SHORT_POLICY);
    pipeline_payment(P, "toss", "pk_old", 2000, "KRW", 0);
    const char *ev = "{\"specversion\":\"1.0\",\"id\":\"ev-old\",\"source\":\"/it/truth\","
                     "\"type\":\"payments.cancel.failed.v1\",\"subject\":\"r-old\","
                     "\"datacontenttype\":\"application/json\",\"data\":{\"requestId\":\"r-old\","
                     "\"gateway\":\"toss\",\"paymentKey\":\"pk_old\",\"amount\":2000,"
                     "\"currency\":\"KRW\",\"reason\":\"customer cancelled\"}}";
    int64_t three_hours_ago = wall_ms() - 3 * 3600 * 1000LL;
    pipeline_publish_raw_at(P, "cancel_failed", "r-old", ev, strlen(ev), NULL, three_hours_ago);
    cr_assert_str_eq(wait_final("r-old"), "SUCCEEDED");
    /* Toss keys live 15 days (docs/gateways.md) from the first use we know of. */
    char *age = query("SELECT round(extract(epoch FROM (created_at - key_first_used_at)) / 3600)"
                      "  || ' ' || round(extract(epoch FROM (key_expires_at - key_first_used_at))"
                      "  / 86400) FROM cancel_request WHERE request_id = $1",
                      "r-old");
    cr_expect_str_eq(age, "3 15", "hours between the key's first use and intake, days of life");
    free(age);
}

/* ---- operators ---- */

/* An EXHAUSTED request that someone then refunded by hand in the gateway's
 * dashboard: a requeue asks the gateway first and never refunds again. The
 * key generation and the inquiry are in `cancelctl show`. */
Test(gateway_truth, a_requeue_inquires_before_it_refunds, .fini = stop, .timeout = 180)
{
    P = pipeline_start("truth_requeue", POLICY(2));
    pipeline_payment(P, "stripe", "pi_hand", 2500, "USD", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pi_hand\",\"type\":\"error_5xx\",\"times\":0}");
    pipeline_publish(P, "r-hand", "stripe", "pi_hand", 2500, "USD", false);
    cr_assert_str_eq(wait_final("r-hand"), "EXHAUSTED");
    cr_expect_eq(pipeline_refunds(P, "pi_hand"), 0);

    pipeline_sim_call(P, "DELETE", "/_sim/faults", NULL, NULL);
    pipeline_sim_post(P, "/_sim/payments/pi_hand/refunds", "{\"amount\":2500}");
    struct itest_result r;
    pipeline_cancelctl(P, &r, (const char *const[]){"requeue", "r-hand", NULL});
    cr_assert_eq(r.exit_code, 0, "requeue: %s%s", r.out, r.err);
    itest_result_free(&r);

    cr_assert_str_eq(wait_final("r-hand"), "ALREADY_REFUNDED");
    cr_expect_eq(pipeline_refunds(P, "pi_hand"), 1, "only the refund made by hand");
    char *last =
        query("SELECT verdict || '/' || inquiry FROM retry_attempt_log"
              " WHERE request_id = $1 AND event = 'ANSWERED' ORDER BY attempt DESC LIMIT 1",
              "r-hand");
    cr_expect_str_eq(last, "INQUIRY/ALREADY_REFUNDED", "the requeued attempt only inquired");
    free(last);

    pipeline_cancelctl(P, &r, (const char *const[]){"show", "r-hand", NULL});
    cr_expect_eq(r.exit_code, 0);
    cr_expect_not_null(strstr(r.out, "key generation"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "proven by an inquiry"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "inquiry found ALREADY_REFUNDED"), "%s", r.out);
    itest_result_free(&r);
}
