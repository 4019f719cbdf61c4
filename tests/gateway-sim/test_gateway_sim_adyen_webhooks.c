/*
 * Integration test of gateway-sim's Adyen notifications: refunds settle
 * (automatically or by the admin call) and every outcome goes out as a
 * signed REFUND (or REFUND_FAILED, REFUNDED_REVERSED) notification, retried
 * until a 2xx in time, in order; and the webhook faults (duplicate, forged,
 * drop, delay). Each test receives them on a listener of its own
 * (webhook_listener.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "adyen_test_client.h"
#include "webhook_listener.h"

TestSuite(adyen_webhooks, .fini = adyen_test_stop, .timeout = 60);

/* ---- settlement and the REFUND notification ---- */

Test(adyen_webhooks, settlement_sends_a_signed_refund_notification)
{
    char psp[32], ctype[64];
    start("50");
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "order-9", 2500, psp, sizeof(psp));

    cr_assert_eq(listener_wait(1, WAIT_MS), 1, "no notification came");
    expect_item(0, "REFUND", "true", psp);
    json_t *body;
    json_t *item = item_of_post(0, &body);
    cr_expect_str_eq(json_str(item, "merchantReference"), "order-9");
    cr_expect_str_eq(json_str(item, "merchantAccountCode"), MERCHANT);
    cr_expect_eq(json_int(json_object_get(item, "amount"), "value"), 2500);
    cr_expect_str_eq(json_str(json_object_get(item, "amount"), "currency"), "EUR");
    cr_expect(json_is_string(json_object_get(item, "eventDate")));
    cr_expect(json_is_string(json_object_get(item, "reason")));
    json_decref(body);
    cr_expect_str_eq(listener_header(0, "Content-Type", ctype, sizeof(ctype)), "application/json");

    char st[32];
    cr_expect_str_eq(refund_status(PAYMENT, 0, st, sizeof(st)), "succeeded");
    expect_ledger(PAYMENT, 1, 2500);
    /* The delivery is listed as accepted, with its one attempt. */
    json_t *list = once_accepted(psp);
    json_t *d = json_array_get(list, 0);
    cr_expect(json_is_true(json_object_get(d, "accepted")));
    cr_expect_str_eq(json_str(d, "state"), "accepted");
    json_t *attempts = json_object_get(d, "attempts");
    cr_expect_eq(json_array_size(attempts), 1);
    cr_expect_eq(json_int(json_array_get(attempts, 0), "status"), 202);
    json_decref(list);
}

Test(adyen_webhooks, refused_refund_restores_the_balance_and_says_success_false)
{
    char psp[32], st[32];
    start("50");
    add_adyen_payment(PAYMENT, 10000, "failed");
    refund_ok(PAYMENT, "k", 4000, psp, sizeof(psp));

    cr_assert_eq(listener_wait(1, WAIT_MS), 1, "no notification came");
    expect_item(0, "REFUND", "false", psp);
    json_t *body;
    json_t *item = item_of_post(0, &body);
    cr_expect_str_neq(json_str(item, "reason"), "");
    json_decref(body);
    cr_expect_str_eq(refund_status(PAYMENT, 0, st, sizeof(st)), "failed");
    /* Every accepted refund stays in the ledger; the refused one gave its
     * amount back. */
    expect_ledger(PAYMENT, 1, 0);
}

Test(adyen_webhooks, admin_settles_a_received_refund_once)
{
    char psp[32], st[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "k", 4000, psp, sizeof(psp));

    cr_assert_eq(refund_admin(psp, "settle",
                              "{\"success\":false,\"reason\":\"Insufficient "
                              "balance on payment\"}"),
                 200);
    cr_expect_eq(refund_admin(psp, "settle", "{\"success\":true}"), 409);
    cr_expect_eq(refund_admin("NOSUCHREFUND0000", "settle", NULL), 404);
    cr_assert_eq(listener_wait(1, WAIT_MS), 1);
    json_t *body;
    json_t *item = item_of_post(0, &body);
    cr_expect_str_eq(json_str(item, "success"), "false");
    cr_expect_str_eq(json_str(item, "reason"), "Insufficient balance on payment");
    json_decref(body);
    cr_expect_str_eq(refund_status(PAYMENT, 0, st, sizeof(st)), "failed");
    expect_ledger(PAYMENT, 1, 0);
}

Test(adyen_webhooks, refund_failed_and_refunded_reversed_come_after_success)
{
    char a[32], b[32], st[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "a", 1000, a, sizeof(a));
    refund_ok(PAYMENT, "b", 2000, b, sizeof(b));

    /* Only a succeeded refund can fail later. */
    cr_expect_eq(refund_admin(a, "events", "{\"eventCode\":\"REFUND_FAILED\"}"), 409);
    cr_assert_eq(refund_admin(a, "settle", NULL), 200);
    cr_assert_eq(refund_admin(b, "settle", NULL), 200);
    cr_expect_eq(refund_admin(a, "events", "{\"eventCode\":\"CAPTURE\"}"), 400);
    cr_assert_eq(refund_admin(a, "events",
                              "{\"eventCode\":\"REFUND_FAILED\",\"reason\":\"scheme "
                              "rejected\"}"),
                 200);
    cr_assert_eq(refund_admin(b, "events", "{\"eventCode\":\"REFUNDED_REVERSED\"}"), 200);

    cr_assert_eq(listener_wait(4, WAIT_MS), 4);
    static const char *const want[][3] = {
        {"REFUND", "true", "a"},
        {"REFUND", "true", "b"},
        {"REFUND_FAILED", "true", "a"},
        {"REFUNDED_REVERSED", "true", "b"},
    };
    for (size_t i = 0; i < 4; i++)
        expect_item(i, want[i][0], want[i][1], want[i][2][0] == 'a' ? a : b);
    cr_expect_str_eq(refund_status(PAYMENT, 0, st, sizeof(st)), "failed");
    cr_expect_str_eq(refund_status(PAYMENT, 1, st, sizeof(st)), "canceled");
    expect_ledger(PAYMENT, 2, 0);
}

/* ---- delivery: acceptance, retries, order ---- */

Test(adyen_webhooks, failed_deliveries_are_retried_in_order_until_a_2xx)
{
    char a[32], b[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    listener_fail_next(3, 500);
    settle_two(a, b);
    cr_assert_eq(listener_wait(5, WAIT_MS), 5);
    /* a three times refused, then accepted; only then b. */
    for (size_t i = 0; i < 5; i++) {
        char psp[32];
        cr_expect_str_eq(post_psp(i, psp, sizeof(psp)), i < 4 ? a : b, "post %zu", i);
        cr_expect_eq(listener_status(i), i < 3 ? 500 : 202, "post %zu", i);
    }
    json_t *list = deliveries(a);
    cr_expect_eq(json_array_size(json_object_get(json_array_get(list, 0), "attempts")), 4);
    json_decref(list);
}

Test(adyen_webhooks, an_answer_after_the_timeout_is_not_acceptance)
{
    char psp[32];
    const char *const extra[] = {"--adyen-webhook-timeout-ms", "300", NULL};
    start_with(SETTLE_MANUAL, extra);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "k", 1000, psp, sizeof(psp));
    listener_delay_next(1, 1000);

    cr_assert_eq(refund_admin(psp, "settle", NULL), 200);
    cr_assert_eq(listener_wait(2, WAIT_MS), 2, "the late 2xx was taken as acceptance");
    json_t *list = once_accepted(psp);
    json_t *attempts = json_object_get(json_array_get(list, 0), "attempts");
    cr_assert_eq(json_array_size(attempts), 2);
    cr_expect(json_is_null(json_object_get(json_array_get(attempts, 0), "status")));
    cr_expect_eq(json_int(json_array_get(attempts, 1), "status"), 202);
    json_decref(list);
}

Test(adyen_webhooks, basic_auth_goes_with_every_delivery)
{
    char psp[32], auth[128];
    const char *const extra[] = {"--adyen-webhook-basic-auth", "user:pass", NULL};
    start_with("10", extra);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "k", 1000, psp, sizeof(psp));
    cr_assert_eq(listener_wait(1, WAIT_MS), 1);
    cr_expect_str_eq(listener_header(0, "Authorization", auth, sizeof(auth)), "Basic dXNlcjpwYXNz");
}

Test(adyen_webhooks, redeliver_sends_the_items_again)
{
    char psp[32], first[4096], again[4096];
    start("10");
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "k", 1000, psp, sizeof(psp));
    cr_assert_eq(listener_wait(1, WAIT_MS), 1);

    json_t *list = deliveries(psp);
    long id = json_int(json_array_get(list, 0), "id");
    json_decref(list);
    char body[64];
    snprintf(body, sizeof(body), "{\"id\":%ld}", id);
    admin("POST", "/_sim/adyen/webhooks/redeliver", body, 201);
    admin("POST", "/_sim/adyen/webhooks/redeliver", "{\"id\":999}", 404);
    cr_assert_eq(listener_wait(2, WAIT_MS), 2);
    cr_expect_str_eq(listener_raw(1, again, sizeof(again)), listener_raw(0, first, sizeof(first)));
    list = deliveries(psp);
    cr_expect_eq(json_int(json_array_get(list, 1), "copyOf"), id);
    json_decref(list);
    expect_ledger(PAYMENT, 1, 1000);
}

/* ---- webhook faults ---- */

Test(adyen_webhooks, duplicate_delivers_the_item_again_after_its_2xx)
{
    char psp[32], first[4096], again[4096];
    start("10");
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"duplicate\",\"paymentKey\":\"" PAYMENT "\"}");
    refund_ok(PAYMENT, "k", 1000, psp, sizeof(psp));

    cr_assert_eq(listener_wait(2, WAIT_MS), 2);
    cr_expect_eq(listener_status(0), 202, "the copy must come after a 2xx");
    cr_expect_str_eq(listener_raw(1, again, sizeof(again)), listener_raw(0, first, sizeof(first)));
    expect_ledger(PAYMENT, 1, 1000);
}

Test(adyen_webhooks, forged_carries_a_signature_of_another_key)
{
    char a[32], b[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"forged\",\"operation\":\"webhook\"}");
    settle_two(a, b);

    cr_assert_eq(listener_wait(2, WAIT_MS), 2);
    json_t *body;
    json_t *item = item_of_post(0, &body);
    cr_expect(
        json_is_string(json_object_get(json_object_get(item, "additionalData"), "hmacSignature")));
    cr_expect_not(signed_right(item), "the forged item is signed with the right key");
    json_decref(body);
    item = item_of_post(1, &body);
    cr_expect(signed_right(item), "only one notification was to be forged");
    json_decref(body);
}

Test(adyen_webhooks, drop_never_sends_the_notification)
{
    char a[32], b[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_adyen_payment("ANOTHERPAYMENT00", 10000, "succeeded");
    add_fault("{\"type\":\"drop\",\"paymentKey\":\"" PAYMENT "\"}");
    refund_ok(PAYMENT, "a", 1000, a, sizeof(a));
    refund_ok("ANOTHERPAYMENT00", "b", 1000, b, sizeof(b));
    cr_assert_eq(refund_admin(a, "settle", NULL), 200);
    cr_assert_eq(refund_admin(b, "settle", NULL), 200);

    /* b was queued after a, and deliveries go in order: once b is in, a
     * would have been too. */
    cr_assert_eq(listener_wait(1, WAIT_MS), 1);
    char psp[32];
    cr_expect_str_eq(post_psp(0, psp, sizeof(psp)), b);
    json_t *list = deliveries(a);
    json_t *d = json_array_get(list, 0);
    cr_expect_str_eq(json_str(d, "state"), "dropped");
    cr_expect_str_eq(json_str(d, "fault"), "drop");
    cr_expect_eq(json_array_size(json_object_get(d, "attempts")), 0);
    json_decref(list);
    /* The refund itself happened: only its notification is missing. */
    char st[32];
    cr_expect_str_eq(refund_status(PAYMENT, 0, st, sizeof(st)), "succeeded");
    cr_expect_eq(listener_count(), 1);
}

Test(adyen_webhooks, delay_lets_a_later_notification_overtake)
{
    char a[32], b[32], psp[32];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    add_fault("{\"type\":\"delay\",\"delayMs\":500}");
    settle_two(a, b);

    cr_assert_eq(listener_wait(2, WAIT_MS), 2);
    cr_expect_str_eq(post_psp(0, psp, sizeof(psp)), b);
    cr_expect_str_eq(post_psp(1, psp, sizeof(psp)), a);
}

Test(adyen_webhooks, webhook_faults_need_operation_webhook)
{
    start(SETTLE_MANUAL);
    struct reply r =
        http("POST", "/_sim/faults", NULL, "{\"type\":\"drop\",\"operation\":\"refund\"}", 0);
    cr_expect_eq(r.status, 400, "%s", r.body);
    reply_free(&r);
    r = http("POST", "/_sim/faults", NULL, "{\"type\":\"drop\",\"gateway\":\"stripe\"}", 0);
    cr_expect_eq(r.status, 400, "%s", r.body);
    reply_free(&r);
    r = http("POST", "/_sim/faults", NULL, "{\"type\":\"error_5xx\",\"operation\":\"webhook\"}", 0);
    cr_expect_eq(r.status, 400, "%s", r.body);
    reply_free(&r);
}

/* A receiver started after the simulator: the endpoint set at run time;
 * what waited for it goes then, signed with the key given. */
Test(adyen_webhooks, endpoint_set_at_run_time_gets_what_waited)
{
    char psp[32], body[512];
    const char *const args[] = {"--adyen-settle-ms", SETTLE_MANUAL, NULL};
    listener_start();
    sim_start_args(args);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "k", 1000, psp, sizeof(psp));
    cr_assert_eq(refund_admin(psp, "settle", NULL), 200);
    json_t *list = deliveries(psp);
    cr_expect_str_eq(json_str(json_array_get(list, 0), "state"), "unsent");
    json_decref(list);

    admin("PUT", "/_sim/adyen/webhooks/endpoint", "{\"url\":\"ftp://x\"}", 400);
    admin("PUT", "/_sim/adyen/webhooks/endpoint", "{\"hmacKey\":\"abc\"}", 400);
    snprintf(body, sizeof(body), "{\"url\":\"%s\",\"hmacKey\":\"%s\"}", listener_url(), HMAC_KEY);
    admin("PUT", "/_sim/adyen/webhooks/endpoint", body, 200);
    cr_assert_eq(listener_wait(1, WAIT_MS), 1);
    expect_item(0, "REFUND", "true", psp);
}

/* A resend of a delivery still being retried takes its place: the old one
 * is retried no more, nothing waits behind it. */
Test(adyen_webhooks, redeliver_replaces_a_delivery_still_retried)
{
    char psp[32], body[64];
    start(SETTLE_MANUAL);
    add_adyen_payment(PAYMENT, 10000, "succeeded");
    refund_ok(PAYMENT, "k", 1000, psp, sizeof(psp));
    listener_fail_next(1000, 500);
    cr_assert_eq(refund_admin(psp, "settle", NULL), 200);
    cr_assert_geq(listener_wait(2, WAIT_MS), 2);

    json_t *list = deliveries(psp);
    long id = json_int(json_array_get(list, 0), "id");
    json_decref(list);
    snprintf(body, sizeof(body), "{\"id\":%ld}", id);
    admin("POST", "/_sim/adyen/webhooks/redeliver", body, 201);
    listener_fail_next(0, 0);

    list = deliveries(psp);
    for (int i = 0;
         i < WAIT_MS / 10 && !json_is_true(json_object_get(json_array_get(list, 1), "accepted"));
         i++) {
        json_decref(list);
        sleep_ms(10);
        list = deliveries(psp);
    }
    json_t *old = json_array_get(list, 0), *copy = json_array_get(list, 1);
    cr_expect_str_eq(json_str(old, "state"), "replaced");
    cr_expect_str_eq(json_str(copy, "state"), "accepted");
    cr_expect_eq(json_int(copy, "copyOf"), id);
    /* Every post was an attempt of one of the two. */
    cr_expect_eq(listener_count(), json_array_size(json_object_get(old, "attempts")) +
                                       json_array_size(json_object_get(copy, "attempts")));
    json_decref(list);
}
