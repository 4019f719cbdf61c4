/*
 * Integration test of gateway-sim: each test spawns the simulator on an
 * ephemeral port (--listen 127.0.0.1:0 --port-file) and talks HTTP to it with
 * libcurl, as the gateway clients of cancel-retry do. The binary comes from
 * $GATEWAY_SIM (set by meson). Set GATEWAY_SIM_TEST_VERBOSE=1 to see the
 * simulator's logs. Fixture and helpers: sim_test_client.h.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "sim_test_client.h"

TestSuite(gateway_sim, .init = sim_start, .fini = sim_stop, .timeout = 30);

/* ---- tests ---- */

Test(gateway_sim, toss_full_cancel_succeeds_and_is_in_the_ledger)
{
    char buf[64];
    add_payment("toss", "tpay_full", 10000, 0);
    struct reply r = toss_cancel("tpay_full", "req-full-1", -1);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "");
    json_t *j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "status"), "CANCELED");
    cr_expect_str_eq(json_str(j, "paymentKey"), "tpay_full");
    cr_expect_eq(json_int(j, "totalAmount"), 10000);
    cr_expect_eq(json_int(j, "balanceAmount"), 0);
    json_t *cancels = json_object_get(j, "cancels");
    cr_assert_eq(json_array_size(cancels), 1);
    cr_expect_eq(json_int(json_array_get(cancels, 0), "cancelAmount"), 10000);
    cr_expect_str_eq(json_str(json_array_get(cancels, 0), "cancelReason"), "booking cancelled");
    cr_expect_str_eq(json_str(json_array_get(cancels, 0), "cancelStatus"), "DONE");
    cr_expect_eq(strlen(json_str(json_array_get(cancels, 0), "transactionKey")), 32);
    cr_expect_neq(json_object_get(json_array_get(cancels, 0), "canceledAt"), NULL);
    json_decref(j);
    reply_free(&r);

    json_t *l = ledger_of("tpay_full");
    cr_expect_eq(json_int(l, "refunded"), 10000);
    json_t *refund = json_array_get(json_object_get(l, "refunds"), 0);
    cr_assert(refund != NULL);
    cr_expect_str_eq(json_str(refund, "idempotencyKey"), "req-full-1");
    cr_expect_eq(json_int(refund, "amount"), 10000);
    json_decref(l);
}

Test(gateway_sim, stripe_partial_refund_succeeds_and_is_in_the_ledger)
{
    add_payment("stripe", "pi_partial", 5000, 0);
    struct reply r = stripe_refund("pi_partial", "req-partial-1", 2000);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "object"), "refund");
    cr_expect_str_eq(json_str(j, "status"), "succeeded");
    cr_expect_str_eq(json_str(j, "payment_intent"), "pi_partial");
    cr_expect_eq(json_int(j, "amount"), 2000);
    cr_expect_eq(strncmp(json_str(j, "id"), "re_", 3), 0);
    json_decref(j);
    reply_free(&r);
    expect_ledger("pi_partial", 1, 2000);
}

Test(gateway_sim, replay_with_the_same_key_returns_the_same_body_and_refunds_once)
{
    char buf[64];
    add_payment("toss", "tpay_replay", 10000, 0);
    struct reply first = toss_cancel("tpay_replay", "req-replay", 3000);
    cr_assert_eq(first.status, 200, "%s", first.body);
    struct reply again = toss_cancel("tpay_replay", "req-replay", 3000);
    cr_assert_eq(again.status, 200, "%s", again.body);
    cr_expect_str_eq(again.body, first.body);
    /* Toss documents no replay marker; the simulator's call log knows. */
    cr_expect_str_eq(header(&again, "Idempotent-Replayed", buf, sizeof(buf)), "");
    cr_expect_str_eq(call_replays("tpay_replay", buf, sizeof(buf)), "false,true");
    reply_free(&first);
    reply_free(&again);
    expect_ledger("tpay_replay", 1, 3000);

    add_payment("stripe", "pi_replay", 5000, 0);
    first = stripe_refund("pi_replay", "req-replay-s", 1000);
    again = stripe_refund("pi_replay", "req-replay-s", 1000);
    cr_assert_eq(again.status, 200, "%s", again.body);
    cr_expect_str_eq(again.body, first.body);
    cr_expect_str_eq(header(&again, "Idempotent-Replayed", buf, sizeof(buf)), "true");
    reply_free(&first);
    reply_free(&again);
    expect_ledger("pi_replay", 1, 1000);
}

/* Toss names a repeat by key, API key, URL and method, not by body: the
 * same key with another amount gets the first answer, and nothing more is
 * cancelled. The same key on another payment (another URL) is another
 * request. */
Test(gateway_sim, toss_same_key_with_another_body_gets_the_first_answer)
{
    char buf[64];
    add_payment("toss", "tpay_mm", 10000, 0);
    add_payment("toss", "tpay_mm2", 10000, 0);
    struct reply first = toss_cancel("tpay_mm", "req-mm", 3000);
    cr_assert_eq(first.status, 200, "%s", first.body);
    struct reply again = toss_cancel("tpay_mm", "req-mm", 4000);
    cr_expect_eq(again.status, 200, "%s", again.body);
    cr_expect_str_eq(again.body, first.body);
    cr_expect_str_eq(header(&again, "Idempotent-Replayed", buf, sizeof(buf)), "");
    reply_free(&again);
    reply_free(&first);
    cr_expect_str_eq(call_replays("tpay_mm", buf, sizeof(buf)), "false,true");
    expect_ledger("tpay_mm", 1, 3000);

    struct reply other = toss_cancel("tpay_mm2", "req-mm", 4000);
    cr_expect_eq(other.status, 200, "%s", other.body);
    json_t *j = reply_json(&other);
    cr_expect_str_eq(json_str(j, "paymentKey"), "tpay_mm2");
    json_decref(j);
    reply_free(&other);
    expect_ledger("tpay_mm2", 1, 4000);
    expect_ledger("tpay_mm", 1, 3000);
}

/* Stripe compares the parameters and refuses a key reused with others. */
Test(gateway_sim, stripe_same_key_with_a_different_amount_is_a_mismatch)
{
    add_payment("stripe", "pi_mm", 5000, 0);
    struct reply r = stripe_refund("pi_mm", "req-mm-s", 1000);
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    r = stripe_refund("pi_mm", "req-mm-s", 1001);
    expect_stripe_error(&r, 400, "idempotency_error", NULL);
    expect_ledger("pi_mm", 1, 1000);
}

struct bg_call {
    bool stripe;
    struct reply reply;
};

static void *bg_refund(void *arg)
{
    struct bg_call *c = arg;
    if (c->stripe)
        c->reply = stripe_refund_as(STRIPE_AUTH, "pi_busy", "req-busy", 1000, 5000);
    else
        c->reply = toss_cancel_as(TOSS_AUTH, "tpay_busy", "req-busy", 1000, 5000);
    return NULL;
}

/* A request arriving while the first one with its key is still in flight
 * (applied, answer not yet delivered) gets the 409; once the first is done,
 * the key replays the success. */
static void in_flight_conflict(bool stripe)
{
    char buf[64];
    const char *key = stripe ? "pi_busy" : "tpay_busy";
    struct bg_call bg = {.stripe = stripe};
    pthread_t t;

    add_payment(stripe ? "stripe" : "toss", key, 10000, 0);
    add_fault("{\"type\":\"apply_then_hang\",\"delayMs\":1500}");
    cr_assert_eq(pthread_create(&t, NULL, bg_refund, &bg), 0);
    for (int i = 0; i < 100 && calls_for(key) == 0; i++)
        sleep_ms(10);
    cr_assert_eq(calls_for(key), 1, "the first call did not arrive");

    struct reply r =
        stripe ? stripe_refund(key, "req-busy", 1000) : toss_cancel(key, "req-busy", 1000);
    if (stripe)
        expect_stripe_error(&r, 409, "idempotency_error", "idempotency_key_in_use");
    else
        expect_toss_error(&r, 409, "IDEMPOTENT_REQUEST_PROCESSING");

    pthread_join(t, NULL);
    cr_expect_eq(bg.reply.rc, CURLE_OK);
    cr_expect_eq(bg.reply.status, 504, "the hung call answered %ld", bg.reply.status);
    reply_free(&bg.reply);

    r = stripe ? stripe_refund(key, "req-busy", 1000) : toss_cancel(key, "req-busy", 1000);
    cr_expect_eq(r.status, 200, "%s", r.body);
    /* Only Stripe marks a replay in the answer. */
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), stripe ? "true" : "");
    reply_free(&r);
    cr_expect_str_eq(call_replays(key, buf, sizeof(buf)), "false,false,true");
    expect_ledger(key, 1, 1000);
}

Test(gateway_sim, toss_key_in_flight_gets_409)
{
    in_flight_conflict(false);
}

Test(gateway_sim, stripe_key_in_flight_gets_409)
{
    in_flight_conflict(true);
}

Test(gateway_sim, error_5xx_twice_then_success_with_the_same_key)
{
    add_payment("toss", "tpay_5xx", 10000, 0);
    add_fault("{\"type\":\"error_5xx\",\"times\":2,\"paymentKey\":\"tpay_5xx\"}");
    struct reply r = toss_cancel("tpay_5xx", "req-5xx", -1);
    cr_expect_eq(r.status, 503, "%s", r.body);
    reply_free(&r);
    r = toss_cancel("tpay_5xx", "req-5xx", -1);
    cr_expect_eq(r.status, 503, "%s", r.body);
    reply_free(&r);
    expect_ledger("tpay_5xx", 0, 0);
    /* 5xx happened before the idempotency layer: nothing was stored, so the
     * same key now does the refund. */
    r = toss_cancel("tpay_5xx", "req-5xx", -1);
    cr_expect_eq(r.status, 200, "%s", r.body);
    char buf[64];
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "");
    reply_free(&r);
    expect_ledger("tpay_5xx", 1, 10000);
}

Test(gateway_sim, rate_limited_carries_retry_after)
{
    char buf[64];
    add_payment("toss", "tpay_429", 10000, 0);
    add_payment("stripe", "pi_429", 10000, 0);
    add_fault("{\"type\":\"rate_limited\",\"retryAfter\":2,\"times\":2}");
    struct reply r = toss_cancel("tpay_429", "req-429", -1);
    cr_expect_str_eq(header(&r, "Retry-After", buf, sizeof(buf)), "2");
    expect_toss_error(&r, 429, "TOO_MANY_REQUESTS");
    /* No code on Stripe's 429 since API version 2015-09-08. */
    r = stripe_refund("pi_429", "req-429-s", -1);
    cr_expect_str_eq(header(&r, "Retry-After", buf, sizeof(buf)), "2");
    expect_stripe_error(&r, 429, "invalid_request_error", NULL);
    /* Stripe's object lock timeout is a 429 with code lock_timeout. */
    add_fault("{\"type\":\"rate_limited\",\"gateway\":\"stripe\",\"code\":\"lock_timeout\"}");
    r = stripe_refund("pi_429", "req-429-s", -1);
    expect_stripe_error(&r, 429, "invalid_request_error", "lock_timeout");
    expect_ledger("tpay_429", 0, 0);
    expect_ledger("pi_429", 0, 0);
}

/* What no gateway should send but one did (the hardening issue): a
 * Retry-After too big for any clock, sent verbatim for a client to survive. */
Test(gateway_sim, rate_limited_sends_any_retry_after_text)
{
    char buf[64];
    add_payment("toss", "tpay_429x", 10000, 0);
    add_fault("{\"type\":\"rate_limited\",\"retryAfterHeader\":\"9223372036854775\"}");
    struct reply r = toss_cancel("tpay_429x", "req-429x", -1);
    cr_expect_str_eq(header(&r, "Retry-After", buf, sizeof(buf)), "9223372036854775");
    expect_toss_error(&r, 429, "TOO_MANY_REQUESTS");
    expect_ledger("tpay_429x", 0, 0);
}

Test(gateway_sim, hang_outlasts_a_one_second_client_timeout)
{
    add_payment("toss", "tpay_hang", 10000, 0);
    add_fault("{\"type\":\"hang\",\"delayMs\":2000}");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct reply r = toss_cancel_as(TOSS_AUTH, "tpay_hang", "req-hang", -1, 1000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_expect_eq(r.rc, CURLE_OPERATION_TIMEDOUT, "got %s", curl_easy_strerror(r.rc));
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_expect(ms >= 900 && ms < 1900, "timed out after %ld ms", ms);
    reply_free(&r);
    /* Other connections are served while one hangs. */
    r = http("GET", "/_sim/health", NULL, NULL, 500);
    cr_expect_eq(r.status, 200);
    reply_free(&r);
    expect_ledger("tpay_hang", 0, 0);
}

Test(gateway_sim, apply_then_drop_refunds_once_and_replays_the_success)
{
    char buf[64];
    add_payment("stripe", "pi_drop", 5000, 0);
    add_fault("{\"type\":\"apply_then_drop\",\"paymentKey\":\"pi_drop\"}");
    struct reply r = stripe_refund("pi_drop", "req-drop", 1500);
    cr_expect_neq(r.rc, CURLE_OK, "the client got an answer: %ld %s", r.status, r.body);
    cr_expect(r.rc == CURLE_GOT_NOTHING || r.rc == CURLE_RECV_ERROR, "got %s",
              curl_easy_strerror(r.rc));
    reply_free(&r);
    expect_ledger("pi_drop", 1, 1500);

    r = stripe_refund("pi_drop", "req-drop", 1500);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "true");
    json_t *j = reply_json(&r);
    cr_expect_eq(json_int(j, "amount"), 1500);
    json_decref(j);
    reply_free(&r);
    expect_ledger("pi_drop", 1, 1500);
}

Test(gateway_sim, provider_permanent_and_credential_faults)
{
    add_payment("toss", "tpay_f", 10000, 0);
    add_payment("stripe", "pi_f", 10000, 0);
    add_fault("{\"type\":\"provider_error\",\"gateway\":\"toss\"}");
    struct reply r = toss_cancel("tpay_f", "req-f1", -1);
    expect_toss_error(&r, 400, "PROVIDER_ERROR"); /* documented as a 400 */
    add_fault("{\"type\":\"provider_error\",\"gateway\":\"stripe\"}");
    r = stripe_refund("pi_f", "req-f2", -1);
    expect_stripe_error(&r, 500, "api_error", NULL);
    add_fault("{\"type\":\"permanent\",\"code\":\"INVALID_CARD_COMPANY\",\"status\":403}");
    r = toss_cancel("tpay_f", "req-f3", -1);
    expect_toss_error(&r, 403, "INVALID_CARD_COMPANY");
    add_fault("{\"type\":\"bad_credentials\"}");
    r = stripe_refund("pi_f", "req-f4", -1);
    expect_stripe_error(&r, 401, "invalid_request_error", NULL);
    expect_ledger("tpay_f", 0, 0);
    expect_ledger("pi_f", 0, 0);
}

Test(gateway_sim, bad_credentials_get_401)
{
    add_payment("toss", "tpay_auth", 10000, 0);
    add_payment("stripe", "pi_auth", 10000, 0);
    struct reply r = toss_cancel_as("Authorization: Basic d3Jvbmc6", "tpay_auth", "req-a", -1, 0);
    expect_toss_error(&r, 401, "UNAUTHORIZED_KEY");
    r = toss_cancel_as("X-No-Auth: 1", "tpay_auth", "req-a", -1, 0);
    expect_toss_error(&r, 401, "UNAUTHORIZED_KEY");
    r = stripe_refund_as("Authorization: Bearer sk_test_wrong", "pi_auth", "req-b", -1, 0);
    expect_stripe_error(&r, 401, "invalid_request_error", NULL);
    expect_ledger("tpay_auth", 0, 0);
    expect_ledger("pi_auth", 0, 0);
    /* Nothing was stored for the key: the right credentials now succeed. */
    r = toss_cancel("tpay_auth", "req-a", -1);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
}

Test(gateway_sim, refund_beyond_the_balance_is_refused)
{
    add_payment("toss", "tpay_big", 10000, 6000);
    struct reply r = toss_cancel("tpay_big", "req-big", 4001);
    expect_toss_error(&r, 403, "NOT_CANCELABLE_AMOUNT");
    add_payment("stripe", "pi_big", 5000, 0);
    r = stripe_refund("pi_big", "req-big-s", 5001);
    expect_stripe_error(&r, 400, "invalid_request_error", "amount_too_large");
    expect_ledger("tpay_big", 0, 6000);
    expect_ledger("pi_big", 0, 0);
    r = toss_cancel("tpay_unknown", "req-unknown", -1);
    expect_toss_error(&r, 404, "NOT_FOUND_PAYMENT");
    r = stripe_refund("pi_unknown", "req-unknown-s", -1);
    expect_stripe_error(&r, 404, "invalid_request_error", "resource_missing");
}

Test(gateway_sim, already_refunded_payment_is_reported_as_such)
{
    add_payment("toss", "tpay_done", 10000, 10000);
    struct reply r = toss_cancel("tpay_done", "req-done", -1);
    expect_toss_error(&r, 400, "ALREADY_CANCELED_PAYMENT");
    add_payment("stripe", "pi_done", 5000, 5000);
    r = stripe_refund("pi_done", "req-done-s", -1);
    expect_stripe_error(&r, 400, "invalid_request_error", "charge_already_refunded");
    /* Also after a full refund through the API. */
    add_payment("stripe", "pi_twice", 5000, 0);
    r = stripe_refund("pi_twice", "req-twice-1", -1);
    cr_expect_eq(r.status, 200);
    reply_free(&r);
    r = stripe_refund("pi_twice", "req-twice-2", -1);
    expect_stripe_error(&r, 400, "invalid_request_error", "charge_already_refunded");
}

Test(gateway_sim, inquiry_returns_balance_and_cancels)
{
    static const char *const auth[] = {TOSS_AUTH, NULL};
    add_payment("toss", "tpay_inq", 10000, 0);
    struct reply r = toss_cancel("tpay_inq", "req-inq-1", 2500);
    reply_free(&r);
    r = toss_cancel("tpay_inq", "req-inq-2", 500);
    reply_free(&r);
    r = http("GET", "/v1/payments/tpay_inq", auth, NULL, 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "status"), "PARTIAL_CANCELED");
    cr_expect_eq(json_int(j, "balanceAmount"), 7000);
    json_t *cancels = json_object_get(j, "cancels");
    cr_assert_eq(json_array_size(cancels), 2);
    cr_expect_eq(json_int(json_array_get(cancels, 0), "cancelAmount"), 2500);
    cr_expect_eq(json_int(json_array_get(cancels, 1), "cancelAmount"), 500);
    cr_expect_str_eq(json_str(json_array_get(cancels, 1), "cancelStatus"), "DONE");
    json_decref(j);
    reply_free(&r);
    r = http("GET", "/v1/payments/tpay_nope", auth, NULL, 0);
    expect_toss_error(&r, 404, "NOT_FOUND_PAYMENT");
}

Test(gateway_sim, reset_clears_payments_faults_and_calls)
{
    add_payment("toss", "tpay_reset", 10000, 0);
    add_fault("{\"type\":\"error_5xx\",\"times\":0}");
    struct reply r = toss_cancel("tpay_reset", "req-reset", -1);
    cr_expect_eq(r.status, 503);
    reply_free(&r);
    admin("POST", "/_sim/reset", NULL, 200);
    r = http("GET", "/_sim/ledger", NULL, NULL, 0);
    json_t *j = reply_json(&r);
    cr_expect_eq(json_int(j, "calls"), 0);
    cr_expect_eq(json_array_size(json_object_get(j, "payments")), 0);
    json_decref(j);
    reply_free(&r);
    r = http("GET", "/_sim/ledger/tpay_reset", NULL, NULL, 0);
    cr_expect_eq(r.status, 404);
    reply_free(&r);
    /* The forever-fault is gone and the key is forgotten. */
    add_payment("toss", "tpay_reset", 10000, 0);
    r = toss_cancel("tpay_reset", "req-reset", -1);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
}

Test(gateway_sim, oversized_body_gets_413)
{
    static const char *const hdr[] = {STRIPE_AUTH, NULL};
    size_t n = 70 * 1024;
    char *body = malloc(n + 1);
    cr_assert(body != NULL);
    memset(body, 'a', n);
    memcpy(body, "payment_intent=", 15);
    body[n] = '\0';
    struct reply r = http("POST", "/v1/refunds", hdr, body, 0);
    cr_expect_eq(r.status, 413, "status %ld", r.status);
    reply_free(&r);
    free(body);
}

/* A stored 5xx is the answer of the first request under its key: a retry
 * with the same key gets it again (nothing refunded), a new key is processed
 * afresh. */
Test(gateway_sim, stored_5xx_is_replayed_under_its_key_and_absent_under_a_new_one)
{
    char buf[64];
    add_payment("stripe", "pi_stored", 5000, 0);
    add_fault("{\"type\":\"error_5xx\",\"stored\":true,\"paymentKey\":\"pi_stored\"}");
    struct reply first = stripe_refund("pi_stored", "req-stored-1", 1000);
    cr_assert_eq(first.status, 503, "%s", first.body);
    cr_expect_str_eq(header(&first, "Idempotent-Replayed", buf, sizeof(buf)), "");
    struct reply again = stripe_refund("pi_stored", "req-stored-1", 1000);
    cr_expect_eq(again.status, 503, "%s", again.body);
    cr_expect_str_eq(again.body, first.body);
    cr_expect_str_eq(header(&again, "Idempotent-Replayed", buf, sizeof(buf)), "true");
    reply_free(&again);
    expect_ledger("pi_stored", 0, 0);

    struct reply fresh = stripe_refund("pi_stored", "req-stored-2", 1000);
    cr_expect_eq(fresh.status, 200, "%s", fresh.body);
    cr_expect_str_eq(header(&fresh, "Idempotent-Replayed", buf, sizeof(buf)), "");
    reply_free(&fresh);
    expect_ledger("pi_stored", 1, 1000);

    /* The first key keeps its error. */
    again = stripe_refund("pi_stored", "req-stored-1", 1000);
    cr_expect_eq(again.status, 503);
    cr_expect_str_eq(again.body, first.body);
    reply_free(&again);
    reply_free(&first);
    expect_ledger("pi_stored", 1, 1000);
}

Test(gateway_sim, stored_provider_error_and_permanent_replay_on_toss)
{
    char buf[64];
    add_payment("toss", "tpay_stored", 10000, 0);
    add_fault("{\"type\":\"provider_error\",\"stored\":true}");
    add_fault("{\"type\":\"permanent\",\"stored\":true,\"status\":403,"
              "\"code\":\"FORBIDDEN_CONSECUTIVE_REQUEST\"}");
    struct reply r = toss_cancel("tpay_stored", "req-tst-1", 2000);
    expect_toss_error(&r, 400, "PROVIDER_ERROR");
    r = toss_cancel("tpay_stored", "req-tst-1", 2000);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "");
    expect_toss_error(&r, 400, "PROVIDER_ERROR");
    r = toss_cancel("tpay_stored", "req-tst-2", 2000);
    expect_toss_error(&r, 403, "FORBIDDEN_CONSECUTIVE_REQUEST");
    r = toss_cancel("tpay_stored", "req-tst-2", 2000);
    expect_toss_error(&r, 403, "FORBIDDEN_CONSECUTIVE_REQUEST");
    /* A different body under a key holding an error gets that error too. */
    r = toss_cancel("tpay_stored", "req-tst-1", 3000);
    expect_toss_error(&r, 400, "PROVIDER_ERROR");
    cr_expect_str_eq(call_replays("tpay_stored", buf, sizeof(buf)), "false,true,false,true,true");
    expect_ledger("tpay_stored", 0, 0);
    r = toss_cancel("tpay_stored", "req-tst-3", 2000);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
    expect_ledger("tpay_stored", 1, 2000);
}

Test(gateway_sim, stored_is_refused_for_other_fault_types)
{
    admin("POST", "/_sim/faults", "{\"type\":\"rate_limited\",\"stored\":true}", 400);
    admin("POST", "/_sim/faults", "{\"type\":\"apply_then_drop\",\"stored\":true}", 400);
    admin("POST", "/_sim/faults", "{\"type\":\"error_5xx\",\"stored\":\"yes\"}", 400);
    admin("POST", "/_sim/faults", "{\"type\":\"error_5xx\",\"stored\":false}", 201);
}

/* in_progress answers the gateway's 409 and stores nothing: the same key is
 * processed afresh afterwards. */
Test(gateway_sim, in_progress_answers_409_and_stores_nothing)
{
    char buf[64];
    add_payment("toss", "tpay_ip", 10000, 0);
    add_payment("stripe", "pi_ip", 10000, 0);
    add_fault("{\"type\":\"in_progress\",\"times\":2}");
    struct reply r = toss_cancel("tpay_ip", "req-ip", 1000);
    expect_toss_error(&r, 409, "IDEMPOTENT_REQUEST_PROCESSING");
    r = stripe_refund("pi_ip", "req-ip-s", 1000);
    expect_stripe_error(&r, 409, "idempotency_error", "idempotency_key_in_use");
    expect_ledger("tpay_ip", 0, 0);
    expect_ledger("pi_ip", 0, 0);

    r = toss_cancel("tpay_ip", "req-ip", 1000);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "");
    reply_free(&r);
    r = stripe_refund("pi_ip", "req-ip-s", 1000);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "");
    reply_free(&r);
    expect_ledger("tpay_ip", 1, 1000);
    expect_ledger("pi_ip", 1, 1000);
}

/* Toss answers some refusals with 403 and a business code; a permanent fault
 * says so. */
Test(gateway_sim, toss_403_business_codes)
{
    static const char *const codes[] = {"NOT_CANCELABLE_PAYMENT", "FORBIDDEN_CONSECUTIVE_REQUEST",
                                        "NOT_CANCELABLE_AMOUNT"};
    char fault[256], key[64];
    add_payment("toss", "tpay_403", 10000, 0);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        snprintf(fault, sizeof(fault),
                 "{\"type\":\"permanent\",\"status\":403,\"code\":\"%s\",\"gateway\":\"toss\"}",
                 codes[i]);
        add_fault(fault);
        snprintf(key, sizeof(key), "req-403-%zu", i);
        struct reply r = toss_cancel("tpay_403", key, 1000);
        expect_toss_error(&r, 403, codes[i]);
    }
    expect_ledger("tpay_403", 0, 0);
}

/* Stripe saves nothing under the key when the parameters fail validation:
 * the same key then works with corrected parameters. */
Test(gateway_sim, stripe_validation_errors_are_not_stored_under_the_key)
{
    static const char *const hdr[] = {STRIPE_AUTH, "Idempotency-Key: req-invalid", NULL};
    char buf[64];
    add_payment("stripe", "pi_invalid", 5000, 0);
    struct reply r = http("POST", "/v1/refunds", hdr, "payment_intent=pi_invalid&amount=12x", 0);
    expect_stripe_error(&r, 400, "invalid_request_error", "parameter_invalid_integer");
    r = http("POST", "/v1/refunds", hdr, "payment_intent=pi_invalid&amount=12x", 0);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "");
    expect_stripe_error(&r, 400, "invalid_request_error", "parameter_invalid_integer");
    r = http("POST", "/v1/refunds", hdr, "amount=100", 0);
    expect_stripe_error(&r, 400, "invalid_request_error", "parameter_missing");
    r = http("POST", "/v1/refunds", hdr, "payment_intent=pi_invalid&amount=100", 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
    expect_ledger("pi_invalid", 1, 100);
}

/* Toss: "멱등키는 최대 300자": a longer key gets 400 INVALID_IDEMPOTENCY_KEY
 * and nothing is cancelled or stored. */
Test(gateway_sim, toss_key_longer_than_300_characters_is_refused)
{
    char key[302];
    add_payment("toss", "tpay_longkey", 10000, 0);
    memset(key, 'k', 301);
    key[301] = '\0';
    struct reply r = toss_cancel("tpay_longkey", key, 1000);
    expect_toss_error(&r, 400, "INVALID_IDEMPOTENCY_KEY");
    expect_ledger("tpay_longkey", 0, 0);
    key[300] = '\0'; /* 300 is allowed */
    r = toss_cancel("tpay_longkey", key, 1000);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
    expect_ledger("tpay_longkey", 1, 1000);
}

/* A raw fault answers its status and body verbatim, in no gateway's format. */
Test(gateway_sim, raw_fault_answers_status_and_body_verbatim)
{
    char buf[64];
    add_payment("toss", "tpay_raw", 10000, 0);
    add_payment("stripe", "pi_raw", 10000, 0);
    add_fault("{\"type\":\"raw\",\"status\":502,\"body\":\"<html>bad gateway</html>\"}");
    struct reply r = toss_cancel("tpay_raw", "req-raw", 1000);
    cr_expect_eq(r.status, 502);
    cr_expect_str_eq(r.body, "<html>bad gateway</html>");
    reply_free(&r);
    add_fault("{\"type\":\"raw\",\"body\":\"{\\\"object\\\":\\\"balance\\\"}\"}");
    r = stripe_refund("pi_raw", "req-raw-s", 1000);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{\"object\":\"balance\"}");
    reply_free(&r);
    add_fault("{\"type\":\"raw\",\"status\":302}");
    r = toss_cancel("tpay_raw", "req-raw-2", 1000);
    cr_expect_eq(r.status, 302);
    cr_expect_eq(r.len, 0);
    reply_free(&r);
    add_fault("{\"type\":\"raw\",\"status\":799,\"body\":\"?\"}");
    r = toss_cancel("tpay_raw", "req-raw-3", 1000);
    cr_expect_eq(r.status, 799);
    reply_free(&r);
    /* Before the idempotency layer, like the other faults: nothing stored. */
    r = toss_cancel("tpay_raw", "req-raw", 1000);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
    cr_expect_str_eq(call_replays("tpay_raw", buf, sizeof(buf)), "false,false,false,false");
    expect_ledger("tpay_raw", 1, 1000);
    expect_ledger("pi_raw", 0, 0);

    admin("POST", "/_sim/faults", "{\"type\":\"raw\",\"status\":199}", 400);
    admin("POST", "/_sim/faults", "{\"type\":\"raw\",\"status\":1000}", 400);
    admin("POST", "/_sim/faults", "{\"type\":\"error_5xx\",\"status\":799}", 400);
    admin("POST", "/_sim/faults", "{\"type\":\"permanent\",\"body\":\"x\"}", 400);
    admin("POST", "/_sim/faults", "{\"type\":\"raw\",\"body\":7}", 400);
}
