/*
 * Integration test of gateway-sim's Adyen refund call as Adyen's Checkout
 * API v71 documents it: 201 "received", ServiceError answers, the
 * Idempotency-Key (64 characters, replay, in progress, expiry), and the
 * faults of the call. Settlement and notifications:
 * test_gateway_sim_adyen_webhooks.c. Each test spawns its own simulator.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "adyen_test_client.h"
#include "webhook_listener.h"

/* 81 characters: one more than a reference may have. */
#define REF81 "123456789012345678901234567890123456789012345678901234567890123456789012345678901"

TestSuite(adyen, .fini = adyen_test_stop, .timeout = 60);

/* ---- the refund call ---- */

Test(adyen, refund_is_received_with_the_documented_members)
{
    char echoed[128];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");

    struct reply r = refund(PAYMENT, "key-1", 2500, "order-7-refund");
    header(&r, "Idempotency-Key", echoed, sizeof(echoed));
    json_t *j = received(&r);
    cr_expect_str_eq(echoed, "key-1");
    cr_expect_eq(strlen(json_str(j, "pspReference")), 16);
    cr_expect_str_eq(json_str(j, "paymentPspReference"), PAYMENT);
    cr_expect_str_eq(json_str(j, "merchantAccount"), MERCHANT);
    cr_expect_str_eq(json_str(j, "reference"), "order-7-refund");
    cr_expect_str_eq(json_str(j, "merchantRefundReason"), "CUSTOMER REQUEST");
    json_t *amount = json_object_get(j, "amount");
    cr_expect_eq(json_int(amount, "value"), 2500);
    cr_expect_str_eq(json_str(amount, "currency"), "EUR");
    json_decref(j);
    /* Received counts against the balance until it settles. */
    expect_ledger(PAYMENT, 1, 2500);
    char st[32];
    cr_expect_str_eq(refund_status(PAYMENT, 0, st, sizeof(st)), "pending");
}

Test(adyen, wrong_or_missing_api_key_is_401_000)
{
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    const char *body = "{\"amount\":{\"value\":100,\"currency\":\"EUR\"},\"merchantAccount\":"
                       "\"" MERCHANT "\"}";

    struct reply r = refund_raw("X-API-Key: wrong", PAYMENT, "k1", body, 0);
    expect_adyen_error(&r, 401, "000", "security");
    r = refund_raw(NULL, PAYMENT, "k2", body, 0);
    expect_adyen_error(&r, 401, "000", "security");
    /* The Authorization header is not what this simulator checks. */
    r = refund_raw("Authorization: Bearer adyen_api_key_local", PAYMENT, "k3", body, 0);
    expect_adyen_error(&r, 401, "000", "security");
    expect_ledger(PAYMENT, 0, 0);
}

Test(adyen, other_merchant_account_is_403_901)
{
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    struct reply r = refund_raw(
        API_KEY, PAYMENT, "k1",
        "{\"amount\":{\"value\":100,\"currency\":\"EUR\"},\"merchantAccount\":\"Other\"}", 0);
    expect_adyen_error(&r, 403, "901", "security");
    expect_ledger(PAYMENT, 0, 0);
}

struct bad_body {
    const char *body;
    long status;
    const char *code;
};

Test(adyen, invalid_requests_are_refused_and_nothing_is_stored)
{
    static const struct bad_body cases[] = {
        {"not json", 400, "702"},
        {"{\"merchantAccount\":\"" MERCHANT "\"}", 422, "100"},
        {"{\"amount\":{\"value\":100,\"currency\":\"EUR\"}}", 422, "100"},
        {"{\"amount\":{\"value\":0,\"currency\":\"EUR\"},\"merchantAccount\":\"" MERCHANT "\"}",
         422, "137"},
        {"{\"amount\":{\"value\":100},\"merchantAccount\":\"" MERCHANT "\"}", 422, "137"},
        {"{\"amount\":{\"value\":100,\"currency\":\"EUR\"},\"merchantAccount\":\"" MERCHANT
         "\",\"reference\":\"" REF81 "\"}",
         400, "702"},
        {"{\"amount\":{\"value\":100,\"currency\":\"EUR\"},\"merchantAccount\":\"" MERCHANT
         "\",\"merchantRefundReason\":\"BORED\"}",
         400, "702"},
    };
    char key[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(key, sizeof(key), "bad-%zu", i);
        struct reply r = refund_raw(API_KEY, PAYMENT, key, cases[i].body, 0);
        expect_adyen_error(&r, cases[i].status, cases[i].code, "validation");
        /* Nothing stored under the key: the corrected request goes through. */
        r = refund(PAYMENT, key, 100, "fixed");
        json_decref(received(&r));
    }
    expect_ledger(PAYMENT, sizeof(cases) / sizeof(cases[0]),
                  100 * (long)(sizeof(cases) / sizeof(cases[0])));
}

Test(adyen, key_longer_than_64_characters_is_refused_and_not_stored)
{
    char key65[66], key64[65], psp[32];
    memset(key65, 'k', 65);
    key65[65] = '\0';
    memset(key64, 'k', 64);
    key64[64] = '\0';
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");

    struct reply r = refund(PAYMENT, key65, 100, "r");
    expect_adyen_error(&r, 400, "702", "validation");
    expect_ledger(PAYMENT, 0, 0);
    refund_ok(PAYMENT, key64, 100, psp, sizeof(psp));
    expect_ledger(PAYMENT, 1, 100);
}

Test(adyen, amount_above_what_is_left_is_422_137_and_stored)
{
    char psp[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 1000, "succeeded");
    refund_ok(PAYMENT, "first", 600, psp, sizeof(psp));

    struct reply r = refund(PAYMENT, "second", 500, "r2");
    expect_adyen_error(&r, 422, "137", "validation");
    /* Stored: the same key answers the same, even once the balance allows. */
    cr_assert_eq(refund_admin(psp, "settle", "{\"success\":false}"), 200);
    r = refund(PAYMENT, "second", 500, "r2");
    expect_adyen_error(&r, 422, "137", "validation");
    expect_ledger(PAYMENT, 1, 0);
}

Test(adyen, unknown_payment_is_422_167)
{
    start(SETTLE_MANUAL);
    struct reply r = refund("NOSUCHPAYMENT000", "k", 100, "r");
    expect_adyen_error(&r, 422, "167", "validation");
}

Test(adyen, other_currency_than_the_payment_is_422_137)
{
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 1000, "succeeded");
    struct reply r = refund_raw(
        API_KEY, PAYMENT, "k",
        "{\"amount\":{\"value\":100,\"currency\":\"USD\"},\"merchantAccount\":\"" MERCHANT "\"}",
        0);
    expect_adyen_error(&r, 422, "137", "validation");
    expect_ledger(PAYMENT, 0, 0);
}

Test(adyen, no_inquiry_endpoint)
{
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 1000, "succeeded");
    static const char *const headers[] = {API_KEY, NULL};
    struct reply r = http("GET", "/v71/payments/" PAYMENT, headers, NULL, 0);
    cr_expect_eq(r.status, 404);
    reply_free(&r);
    r = http("GET", "/v71/payments/" PAYMENT "/refunds", headers, NULL, 0);
    cr_expect_eq(r.status, 405);
    reply_free(&r);
}

/* ---- idempotency ---- */

Test(adyen, same_key_replays_the_first_answer_and_echoes_the_key)
{
    char first[32], again[32], echoed[64], replays[64];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "same", 1000, first, sizeof(first));

    /* Another body under the key: the first answer all the same. */
    struct reply r = refund(PAYMENT, "same", 3000, "other");
    header(&r, "Idempotency-Key", echoed, sizeof(echoed));
    json_t *j = received(&r);
    snprintf(again, sizeof(again), "%s", json_str(j, "pspReference"));
    cr_expect_eq(json_int(json_object_get(j, "amount"), "value"), 1000);
    json_decref(j);
    cr_expect_str_eq(again, first);
    cr_expect_str_eq(echoed, "same");
    expect_ledger(PAYMENT, 1, 1000);
    cr_expect_str_eq(call_replays(PAYMENT, replays, sizeof(replays)), "false,true");
}

/* A refund sent from another thread, so that a second can arrive while the
 * first is still held by an apply_then_hang fault. */
static void *slow_refund(void *arg)
{
    (void)arg;
    struct reply r = refund(PAYMENT, "busy", 100, "r");
    reply_free(&r);
    return NULL;
}

Test(adyen, same_key_in_progress_is_422_already_processed_or_in_progress)
{
    pthread_t t;
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"apply_then_hang\",\"gateway\":\"adyen\",\"delayMs\":3000}");

    cr_assert_eq(pthread_create(&t, NULL, slow_refund, NULL), 0);
    /* Until the first call is logged, the second might be the first. */
    for (int i = 0; i < 500 && calls_for(PAYMENT) == 0; i++)
        sleep_ms(10);
    struct reply r = refund(PAYMENT, "busy", 100, "r");
    cr_assert_eq(r.status, 422, "%s", r.body);
    json_t *j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "message"), "request already processed or in progress");
    json_decref(j);
    expect_adyen_error(&r, 422, "704", "validation");
    pthread_join(t, NULL);
    expect_ledger(PAYMENT, 1, 100);
}

Test(adyen, key_names_a_new_request_once_its_ttl_is_over)
{
    char first[32], second[32];
    const char *const extra[] = {"--adyen-key-ttl", "1", NULL};
    start_with(SETTLE_MANUAL, extra);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "short-lived", 100, first, sizeof(first));
    sleep_ms(1100);
    refund_ok(PAYMENT, "short-lived", 100, second, sizeof(second));
    cr_expect_str_neq(first, second);
    expect_ledger(PAYMENT, 2, 200);
}

/* ---- faults of the refund call ---- */

Test(adyen, error_5xx_applies_nothing_and_the_key_is_free)
{
    char psp[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"error_5xx\",\"gateway\":\"adyen\"}");
    struct reply r = refund(PAYMENT, "k", 1000, "r");
    expect_adyen_error(&r, 503, "000", "internal");
    expect_ledger(PAYMENT, 0, 0);
    refund_ok(PAYMENT, "k", 1000, psp, sizeof(psp));
    expect_ledger(PAYMENT, 1, 1000);
}

Test(adyen, stored_error_is_replayed_under_its_key)
{
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"error_5xx\",\"status\":500,\"code\":\"905\",\"stored\":true}");
    struct reply r = refund(PAYMENT, "k", 1000, "r");
    expect_adyen_error(&r, 500, "905", "configuration");
    r = refund(PAYMENT, "k", 1000, "r");
    expect_adyen_error(&r, 500, "905", "configuration");
    expect_ledger(PAYMENT, 0, 0);
}

Test(adyen, rate_limited_permanent_bad_credentials_in_progress_raw)
{
    char ra[16];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"rate_limited\",\"retryAfter\":3}");
    add_fault("{\"type\":\"permanent\",\"code\":\"167\",\"message\":\"Original pspReference "
              "required\"}");
    add_fault("{\"type\":\"bad_credentials\"}");
    add_fault("{\"type\":\"in_progress\"}");
    add_fault("{\"type\":\"raw\",\"status\":502,\"body\":\"<html>bad gateway</html>\"}");

    struct reply r = refund(PAYMENT, "k", 1000, "r");
    cr_expect_str_eq(header(&r, "Retry-After", ra, sizeof(ra)), "3");
    expect_adyen_error(&r, 429, "000", "internal");
    r = refund(PAYMENT, "k", 1000, "r");
    expect_adyen_error(&r, 422, "167", "validation");
    r = refund(PAYMENT, "k", 1000, "r");
    expect_adyen_error(&r, 401, "000", "security");
    r = refund(PAYMENT, "k", 1000, "r");
    cr_assert_eq(r.status, 422);
    json_t *j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "message"), "request already processed or in progress");
    json_decref(j);
    expect_adyen_error(&r, 422, "704", "validation");
    r = refund(PAYMENT, "k", 1000, "r");
    cr_expect_eq(r.status, 502);
    cr_expect_str_eq(r.body, "<html>bad gateway</html>");
    reply_free(&r);
    expect_ledger(PAYMENT, 0, 0);
}

Test(adyen, hang_answers_nothing_in_time_and_applies_nothing)
{
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"hang\",\"delayMs\":2000}");
    struct reply r = refund_raw(API_KEY, PAYMENT, "k",
                                "{\"amount\":{\"value\":100,\"currency\":\"EUR\"},"
                                "\"merchantAccount\":\"" MERCHANT "\"}",
                                300);
    cr_expect_eq(r.rc, CURLE_OPERATION_TIMEDOUT);
    reply_free(&r);
    expect_ledger(PAYMENT, 0, 0);
}

Test(adyen, apply_then_drop_applies_and_the_same_key_finds_it)
{
    char psp[32], again[32];
    start("10");
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"apply_then_drop\"}");
    struct reply r = refund(PAYMENT, "k", 1000, "r");
    cr_expect_neq(r.rc, CURLE_OK, "an answer came: %ld", r.status);
    reply_free(&r);
    expect_ledger(PAYMENT, 1, 1000);

    /* The same key (no inquiry API exists) returns the refund's
     * pspReference, the one the notification carries. */
    refund_ok(PAYMENT, "k", 1000, again, sizeof(again));
    cr_assert_eq(listener_wait(1, WAIT_MS), 1);
    cr_expect_str_eq(post_psp(0, psp, sizeof(psp)), again);
    expect_ledger(PAYMENT, 1, 1000);
}

Test(adyen, apply_then_hang_applies_and_answers_504)
{
    char psp[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"apply_then_hang\",\"delayMs\":300}");
    struct reply r = refund(PAYMENT, "k", 1000, "r");
    expect_adyen_error(&r, 504, "000", "internal");
    expect_ledger(PAYMENT, 1, 1000);
    refund_ok(PAYMENT, "k", 1000, psp, sizeof(psp));
    expect_ledger(PAYMENT, 1, 1000);
}
