/*
 * Integration test of gateway-sim, PortOne V2 as PortOne documents it
 * (docs/design/issue9-gateways-research.md §1, §6.1): the cancel and its
 * answers, the Payment inquiry, the Idempotency-Key (format, replay, the 409
 * while in flight, expiry, whether errors are stored), the balance guard,
 * and asynchronous (REQUESTED) cancels settled by the admin API; the faults
 * are in test_gateway_sim_portone_faults.c. Each test spawns its own
 * simulator (sim_test_client.h).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "sim_test_portone.h"

TestSuite(gateway_sim_portone, .init = sim_start, .fini = sim_stop, .timeout = 30);

/* Expect the PortOne idempotency settings (GET /_sim/portone/config). */
static void expect_config(long key_ttl_s, bool store_errors)
{
    struct reply r = http("GET", "/_sim/portone/config", NULL, NULL, 0);
    json_t *j = reply_json(&r);
    cr_expect_eq(json_int(j, "keyTtlSeconds"), key_ttl_s);
    cr_expect_eq(json_is_true(json_object_get(j, "storeErrors")), store_errors);
    json_decref(j);
    reply_free(&r);
}

Test(gateway_sim_portone, full_cancel_answers_a_succeeded_cancellation)
{
    add_portone("pay_full", 10000, "");
    struct reply r =
        portone_cancel("pay_full", PORTONE_KEY_A, "{\"reason\":\"booking cancelled\"}");
    json_t *c = portone_cancellation(&r);
    cr_expect_str_eq(json_str(c, "status"), "SUCCEEDED");
    cr_expect_eq(json_int(c, "totalAmount"), 10000);
    cr_expect_str_eq(json_str(c, "reason"), "booking cancelled");
    cr_expect_gt(strlen(json_str(c, "id")), 0);
    cr_expect_gt(strlen(json_str(c, "requestedAt")), 0);
    cr_expect_gt(strlen(json_str(c, "cancelledAt")), 0);
    json_decref(c);
    expect_ledger("pay_full", 1, 10000);

    json_t *p = portone_payment("pay_full");
    cr_expect_str_eq(json_str(p, "status"), "CANCELLED");
    cr_expect_str_eq(json_str(p, "id"), "pay_full");
    cr_expect_str_eq(json_str(p, "currency"), "KRW");
    cr_expect_eq(portone_amount(p, "total"), 10000);
    cr_expect_eq(portone_amount(p, "paid"), 10000);
    cr_expect_eq(portone_amount(p, "cancelled"), 10000);
    json_decref(p);
}

Test(gateway_sim_portone, partial_cancels_show_in_the_payment_with_their_reasons)
{
    add_portone("pay_part", 10000, "");
    struct reply r = portone_cancel("pay_part", PORTONE_KEY_A,
                                    "{\"reason\":\"[cr:req-1] first\",\"amount\":3000}");
    char first_id[64];
    portone_cancellation_id(&r, "SUCCEEDED", first_id, sizeof(first_id));

    json_t *p = portone_payment("pay_part");
    cr_expect_str_eq(json_str(p, "status"), "PARTIAL_CANCELLED");
    cr_expect_eq(portone_amount(p, "cancelled"), 3000);
    json_t *cs = json_object_get(p, "cancellations");
    cr_assert_eq(json_array_size(cs), 1);
    json_t *c0 = json_array_get(cs, 0);
    cr_expect_str_eq(json_str(c0, "id"), first_id);
    cr_expect_str_eq(json_str(c0, "status"), "SUCCEEDED");
    cr_expect_eq(json_int(c0, "totalAmount"), 3000);
    cr_expect_str_eq(json_str(c0, "reason"), "[cr:req-1] first");
    cr_expect_gt(strlen(json_str(c0, "requestedAt")), 0);
    cr_expect_gt(strlen(json_str(c0, "cancelledAt")), 0);
    json_decref(p);

    r = portone_cancel("pay_part", PORTONE_KEY_B, "{\"reason\":\"second\",\"amount\":7000}");
    json_decref(portone_cancellation(&r));
    p = portone_payment("pay_part");
    cr_expect_str_eq(json_str(p, "status"), "CANCELLED");
    cr_expect_eq(portone_amount(p, "cancelled"), 10000);
    cr_expect_eq(json_array_size(json_object_get(p, "cancellations")), 2);
    json_decref(p);
    expect_ledger("pay_part", 2, 10000);
}

Test(gateway_sim_portone, wrong_or_missing_credentials_get_401_and_nothing_happens)
{
    add_portone("pay_auth", 5000, "");
    static const char *const bad[] = {
        NULL,
        "Authorization: PortOne wrong_secret",
        "Authorization: Bearer portone_secret_local",
        "Authorization: portone_secret_local",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct reply r =
            portone_cancel_as(bad[i], "pay_auth", PORTONE_KEY_A, "{\"reason\":\"r\"}", 0);
        expect_portone_error(&r, 401, "UNAUTHORIZED");
        r = portone_inquire_as(bad[i], "pay_auth");
        expect_portone_error(&r, 401, "UNAUTHORIZED");
    }
    expect_ledger("pay_auth", 0, 0);
    /* Nothing was stored under the key: with the right secret it cancels. */
    struct reply r = portone_cancel("pay_auth", PORTONE_KEY_A, "{\"reason\":\"r\"}");
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_auth", 1, 5000);
}

Test(gateway_sim_portone, ledger_state_errors)
{
    add_portone("pay_state", 5000, "");
    struct reply r = portone_cancel_amount("pay_none", PORTONE_KEY_A, 100);
    expect_portone_error(&r, 404, "PAYMENT_NOT_FOUND");
    r = portone_inquire_as(PORTONE_AUTH, "pay_none");
    expect_portone_error(&r, 404, "PAYMENT_NOT_FOUND");

    /* A Toss payment is no PortOne payment. */
    add_payment("toss", "tpay_other", 5000, 0);
    r = portone_cancel_amount("tpay_other", NULL, 100);
    expect_portone_error(&r, 404, "PAYMENT_NOT_FOUND");

    r = portone_cancel_amount("pay_state", NULL, 6000);
    expect_portone_error(&r, 409, "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT");
    r = portone_cancel_amount("pay_state", NULL, 5000);
    json_decref(portone_cancellation(&r));
    r = portone_cancel_amount("pay_state", NULL, 1);
    expect_portone_error(&r, 409, "PAYMENT_ALREADY_CANCELLED");
    r = portone_cancel("pay_state", NULL, "{\"reason\":\"r\"}");
    expect_portone_error(&r, 409, "PAYMENT_ALREADY_CANCELLED");
    expect_ledger("pay_state", 1, 5000);

    /* A payment with refunded preset: cancelled, but with no cancellation. */
    admin("POST", "/_sim/payments",
          "{\"gateway\":\"portone\",\"paymentKey\":\"pay_preset\",\"amount\":5000,"
          "\"refunded\":5000}",
          201);
    r = portone_cancel_amount("pay_preset", NULL, 100);
    expect_portone_error(&r, 409, "PAYMENT_ALREADY_CANCELLED");
}

Test(gateway_sim_portone, payment_not_paid_is_refused_and_shows_its_status)
{
    add_portone("pay_ready", 5000, ",\"paymentStatus\":\"READY\"");
    struct reply r = portone_cancel_amount("pay_ready", PORTONE_KEY_A, 100);
    expect_portone_error(&r, 409, "PAYMENT_NOT_PAID");
    expect_ledger("pay_ready", 0, 0);
    json_t *p = portone_payment("pay_ready");
    cr_expect_str_eq(json_str(p, "status"), "READY");
    cr_expect_eq(portone_amount(p, "paid"), 0);
    json_decref(p);

    admin("POST", "/_sim/payments",
          "{\"gateway\":\"portone\",\"paymentKey\":\"pay_x\",\"amount\":5,"
          "\"paymentStatus\":\"PAID\"}",
          400);
    admin("POST", "/_sim/payments",
          "{\"gateway\":\"portone\",\"paymentKey\":\"pay_x\",\"amount\":5,\"asyncCancel\":1}", 400);
    admin("POST", "/_sim/payments",
          "{\"gateway\":\"portone\",\"paymentKey\":\"pay_x\",\"amount\":5,"
          "\"refundStatus\":\"failed\"}",
          400);
}

Test(gateway_sim_portone, invalid_bodies_get_400_invalid_request)
{
    add_portone("pay_body", 5000, "");
    static const char *const bodies[] = {
        "not json",
        "[1,2]",
        "{}",
        "{\"reason\":\"\"}",
        "{\"reason\":7}",
        "{\"reason\":\"r\",\"amount\":0}",
        "{\"reason\":\"r\",\"amount\":\"100\"}",
        "{\"reason\":\"r\",\"currentCancellableAmount\":-1}",
        "{\"reason\":\"r\",\"taxFreeAmount\":1.5}",
        "{\"reason\":\"r\",\"requester\":\"ROBOT\"}",
        "{\"reason\":\"r\",\"storeId\":5}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct reply r = portone_cancel("pay_body", NULL, bodies[i]);
        expect_portone_error(&r, 400, "INVALID_REQUEST");
    }
    struct reply r =
        portone_cancel("pay_body", NULL, "{\"reason\":\"r\",\"amount\":100,\"taxFreeAmount\":101}");
    expect_portone_error(&r, 409, "SUM_OF_PARTS_EXCEEDS_CANCEL_AMOUNT");
    expect_ledger("pay_body", 0, 0);

    /* The documented optional members are accepted, unknown ones ignored. */
    r = portone_cancel("pay_body", NULL,
                       "{\"reason\":\"r\",\"amount\":1100,\"taxFreeAmount\":100,\"vatAmount\":90,"
                       "\"storeId\":\"store-1\",\"requester\":\"ADMIN\",\"skipWebhook\":false,"
                       "\"futureField\":1}");
    json_t *c = portone_cancellation(&r);
    cr_expect_eq(json_int(c, "taxFreeAmount"), 100);
    cr_expect_eq(json_int(c, "vatAmount"), 90);
    json_decref(c);
}

Test(gateway_sim_portone, balance_guard_refuses_a_stale_balance_and_applies_nothing)
{
    add_portone("pay_guard", 10000, "");
    struct reply r =
        portone_cancel("pay_guard", PORTONE_KEY_A,
                       "{\"reason\":\"r\",\"amount\":3000,\"currentCancellableAmount\":9999}");
    expect_portone_error(&r, 409, "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN");
    expect_ledger("pay_guard", 0, 0);

    r = portone_cancel("pay_guard", PORTONE_KEY_B,
                       "{\"reason\":\"r\",\"amount\":3000,\"currentCancellableAmount\":10000}");
    json_decref(portone_cancellation(&r));
    /* The balance before the next cancel is total - cancelled = 7000. */
    json_t *p = portone_payment("pay_guard");
    long balance = portone_amount(p, "total") - portone_amount(p, "cancelled");
    json_decref(p);
    cr_expect_eq(balance, 7000);
    r = portone_cancel("pay_guard", NULL,
                       "{\"reason\":\"r\",\"amount\":1000,\"currentCancellableAmount\":10000}");
    expect_portone_error(&r, 409, "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN");
    r = portone_cancel("pay_guard", NULL,
                       "{\"reason\":\"r\",\"amount\":1000,\"currentCancellableAmount\":7000}");
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_guard", 2, 4000);
}

/* A cancel on a thread of its own; status is its answer's. */
struct bg_cancel {
    const char *id;
    const char *key;
    const char *body;
    long status;
};

static void *bg_cancel(void *arg)
{
    struct bg_cancel *b = arg;
    struct reply r = portone_cancel(b->id, b->key, b->body);
    b->status = r.status;
    reply_free(&r);
    return NULL;
}

/* Cancels with the same guard value at once: the guard is checked with the
 * balance in one step, so only one of them can be applied. */

Test(gateway_sim_portone, concurrent_cancels_with_one_guard_value_apply_once)
{
    add_portone("pay_race", 5000, "");
    struct bg_cancel g[8];
    pthread_t t[8];
    char keys[8][32];
    for (int i = 0; i < 8; i++) {
        snprintf(keys[i], sizeof(keys[i]), "\"race-key-%08d\"", i);
        g[i] = (struct bg_cancel){
            .id = "pay_race",
            .key = keys[i],
            .body = "{\"reason\":\"r\",\"amount\":1000,\"currentCancellableAmount\":5000}",
        };
        cr_assert_eq(pthread_create(&t[i], NULL, bg_cancel, &g[i]), 0);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ok += g[i].status == 200;
        refused += g[i].status == 409;
    }
    cr_expect_eq(ok, 1);
    cr_expect_eq(refused, 7);
    expect_ledger("pay_race", 1, 1000);
}

Test(gateway_sim_portone, same_key_replays_the_first_answer_whatever_the_body)
{
    add_portone("pay_idem", 10000, "");
    add_portone("pay_idem2", 10000, "");
    struct reply first = portone_cancel_amount("pay_idem", PORTONE_KEY_A, 1000);
    cr_assert_eq(first.status, 200);
    struct reply again = portone_cancel_amount("pay_idem", PORTONE_KEY_A, 1000);
    cr_expect_eq(again.status, 200);
    cr_expect_str_eq(again.body, first.body);
    char buf[64];
    cr_expect(strstr(header(&again, "Idempotent-Replayed", buf, sizeof(buf)), "true") == NULL,
              "PortOne documents no replay header");
    reply_free(&again);

    /* Another amount, another guard, another payment: the first answer. */
    again = portone_cancel("pay_idem", PORTONE_KEY_A,
                           "{\"reason\":\"other\",\"amount\":2500,\"currentCancellableAmount\":1}");
    cr_expect_eq(again.status, 200);
    cr_expect_str_eq(again.body, first.body);
    reply_free(&again);
    again = portone_cancel_amount("pay_idem2", PORTONE_KEY_A, 4000);
    cr_expect_eq(again.status, 200);
    cr_expect_str_eq(again.body, first.body);
    reply_free(&again);
    reply_free(&first);

    expect_ledger("pay_idem", 1, 1000);
    expect_ledger("pay_idem2", 0, 0);
    cr_expect_str_eq(call_replays("pay_idem", buf, sizeof(buf)), "false,true,true");

    /* Without a key every call is a new cancel. */
    struct reply r = portone_cancel_amount("pay_idem", NULL, 1000);
    json_decref(portone_cancellation(&r));
    r = portone_cancel_amount("pay_idem", NULL, 1000);
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_idem", 3, 3000);
}

Test(gateway_sim_portone, key_must_be_a_quoted_string_of_16_to_256_characters)
{
    char k16[32], k256[300], k257[300], body_key[300] = {0};
    memset(body_key, 'k', 257);
    snprintf(k16, sizeof(k16), "\"%.16s\"", body_key);
    snprintf(k256, sizeof(k256), "\"%.256s\"", body_key);
    snprintf(k257, sizeof(k257), "\"%.257s\"", body_key);
    add_portone("pay_keys", 10000, "");

    const char *const bad[] = {
        "req-portone-0001",              /* not quoted */
        "\"req-portone-001\"",           /* 15 characters */
        k257,                            /* 257 characters */
        "\"req-portone-0001",            /* no closing quote */
        "\"req-portone-0001\"x",         /* something after it */
        "\"req-portone\\n-0001\"",       /* an escape RFC 8941 has not */
        "\"req-portone-0001-\xc3\xa9\"", /* not ASCII */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct reply r = portone_cancel_amount("pay_keys", bad[i], 1000);
        expect_portone_error(&r, 400, "INVALID_REQUEST");
        /* Nothing stored: the same call again is refused again, not replayed. */
        r = portone_cancel_amount("pay_keys", bad[i], 1000);
        expect_portone_error(&r, 400, "INVALID_REQUEST");
    }
    expect_ledger("pay_keys", 0, 0);
    char buf[128];
    cr_expect_str_eq(call_replays("pay_keys", buf, sizeof(buf)),
                     "false,false,false,false,false,false,false,false,false,false,false,false,"
                     "false,false");

    const char *const good[] = {k16, k256, "\"with \\\"escaped\\\" quote\"",
                                "\"back\\\\slash-key-0001\""};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct reply r = portone_cancel_amount("pay_keys", good[i], 1000);
        json_decref(portone_cancellation(&r));
    }
    expect_ledger("pay_keys", 4, 4000);
}

Test(gateway_sim_portone, key_in_flight_gets_409_idempotency_outstanding_request)
{
    add_portone("pay_flight", 10000, "");
    add_fault("{\"gateway\":\"portone\",\"type\":\"apply_then_hang\",\"delayMs\":1500}");
    struct bg_cancel bg = {
        .id = "pay_flight", .key = PORTONE_KEY_A, .body = "{\"reason\":\"r\",\"amount\":1000}"};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, bg_cancel, &bg), 0);
    /* Wait until the simulator has the hung call (it logs it at once). */
    for (int i = 0; i < 100 && calls_for("pay_flight") == 0; i++)
        sleep_ms(20);
    struct reply r = portone_cancel_amount("pay_flight", PORTONE_KEY_A, 1000);
    expect_portone_error(&r, 409, "IDEMPOTENCY_OUTSTANDING_REQUEST");
    pthread_join(t, NULL);
    cr_expect_eq(bg.status, 504);
    /* Delivered (late): the same key now replays the success. */
    r = portone_cancel_amount("pay_flight", PORTONE_KEY_A, 1000);
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_flight", 1, 1000);
}

Test(gateway_sim_portone, key_expires_after_its_ttl_and_is_then_a_new_request)
{
    admin("PUT", "/_sim/portone/config", "{\"keyTtlSeconds\":1}", 200);
    add_portone("pay_ttl", 10000, "");
    struct reply r = portone_cancel_amount("pay_ttl", PORTONE_KEY_A, 1000);
    json_decref(portone_cancellation(&r));
    r = portone_cancel_amount("pay_ttl", PORTONE_KEY_A, 1000);
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_ttl", 1, 1000);

    sleep_ms(1100);
    r = portone_cancel_amount("pay_ttl", PORTONE_KEY_A, 1000);
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_ttl", 2, 2000);
    char buf[64];
    cr_expect_str_eq(call_replays("pay_ttl", buf, sizeof(buf)), "false,true,false");
}

Test(gateway_sim_portone, config_defaults_and_bad_values)
{
    expect_config(10800, true);
    admin("PUT", "/_sim/portone/config", "{\"keyTtlSeconds\":0}", 400);
    admin("PUT", "/_sim/portone/config", "{\"storeErrors\":\"no\"}", 400);
    admin("POST", "/_sim/portone/config", "{}", 405);
    expect_config(10800, true);
    admin("PUT", "/_sim/portone/config", "{\"keyTtlSeconds\":60,\"storeErrors\":false}", 200);
    expect_config(60, false);
    /* A reset goes back to the command line's settings. */
    admin("POST", "/_sim/reset", "{}", 200);
    expect_config(10800, true);
}

/* A cancel of payment id (balance 10000) with PORTONE_KEY_A and a wrong guard, which
 * is refused, then PORTONE_KEY_A again with the right guard: its answer. */
static struct reply guard_refused_then_retried(const char *id)
{
    struct reply r = portone_cancel(
        id, PORTONE_KEY_A, "{\"reason\":\"r\",\"amount\":1000,\"currentCancellableAmount\":1}");
    expect_portone_error(&r, 409, "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN");
    return portone_cancel(id, PORTONE_KEY_A,
                          "{\"reason\":\"r\",\"amount\":1000,\"currentCancellableAmount\":10000}");
}

Test(gateway_sim_portone, error_answers_are_stored_under_the_key_by_default)
{
    add_portone("pay_err", 10000, "");
    struct reply r = guard_refused_then_retried("pay_err");
    expect_portone_error(&r, 409, "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN");
    r = portone_cancel("pay_err", PORTONE_KEY_B, "{\"amount\":1000}");
    expect_portone_error(&r, 400, "INVALID_REQUEST");
    r = portone_cancel("pay_err", PORTONE_KEY_B, "{\"reason\":\"r\",\"amount\":1000}");
    expect_portone_error(&r, 400, "INVALID_REQUEST");
    expect_ledger("pay_err", 0, 0);
    char buf[64];
    cr_expect_str_eq(call_replays("pay_err", buf, sizeof(buf)), "false,true,false,true");
}

Test(gateway_sim_portone, with_store_errors_off_an_error_leaves_the_key_free)
{
    admin("PUT", "/_sim/portone/config", "{\"storeErrors\":false}", 200);
    add_portone("pay_noerr", 10000, "");
    struct reply r = guard_refused_then_retried("pay_noerr");
    json_decref(portone_cancellation(&r));
    /* A success is still stored. */
    r = portone_cancel_amount("pay_noerr", PORTONE_KEY_A, 1000);
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_noerr", 1, 1000);

    /* A stored fault is the test asking for a stored error: it is stored. */
    add_fault("{\"gateway\":\"portone\",\"type\":\"provider_error\",\"stored\":true}");
    r = portone_cancel_amount("pay_noerr", PORTONE_KEY_B, 1000);
    expect_portone_error(&r, 502, "PG_PROVIDER");
    r = portone_cancel_amount("pay_noerr", PORTONE_KEY_B, 1000);
    expect_portone_error(&r, 502, "PG_PROVIDER");
    expect_ledger("pay_noerr", 1, 1000);
}

/* Expect the Payment id to have status, amount.cancelled and a first
 * cancellation with first_status (with a cancelledAt only when SUCCEEDED). */
static void expect_payment(const char *id, const char *status, long cancelled,
                           const char *first_status)
{
    json_t *p = portone_payment(id);
    cr_expect_str_eq(json_str(p, "status"), status);
    cr_expect_eq(portone_amount(p, "cancelled"), cancelled);
    json_t *c0 = json_array_get(json_object_get(p, "cancellations"), 0);
    cr_expect_str_eq(json_str(c0, "status"), first_status);
    cr_expect_eq(json_object_get(c0, "cancelledAt") != NULL,
                 strcmp(first_status, "SUCCEEDED") == 0);
    json_decref(p);
}

Test(gateway_sim_portone, async_cancel_is_requested_then_settled_succeeded)
{
    add_portone("pay_async", 10000, ",\"asyncCancel\":true");
    struct reply r = portone_cancel_amount("pay_async", PORTONE_KEY_A, 4000);
    json_t *c = portone_cancellation(&r);
    cr_expect_null(json_object_get(c, "cancelledAt"));
    json_decref(c);
    /* Its id, from the replay of the key: the same cancellation. */
    char id[64];
    r = portone_cancel_amount("pay_async", PORTONE_KEY_A, 4000);
    portone_cancellation_id(&r, "REQUESTED", id, sizeof(id));
    expect_payment("pay_async", "PAID", 0, "REQUESTED");
    /* The requested amount is held: only 6000 can still be cancelled, and a
     * guard computed as total - cancelled (10000) is refused. */
    r = portone_cancel_amount("pay_async", NULL, 6001);
    expect_portone_error(&r, 409, "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT");
    r = portone_cancel("pay_async", NULL,
                       "{\"reason\":\"r\",\"amount\":100,\"currentCancellableAmount\":10000}");
    expect_portone_error(&r, 409, "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN");
    expect_ledger("pay_async", 1, 4000);

    cr_expect_eq(portone_settle(id, "SUCCEEDED"), 200);
    expect_payment("pay_async", "PARTIAL_CANCELLED", 4000, "SUCCEEDED");
    expect_ledger("pay_async", 1, 4000);

    /* Settled once only; the key's stored answer stays the REQUESTED one. */
    cr_expect_eq(portone_settle(id, "FAILED"), 409);
    r = portone_cancel_amount("pay_async", PORTONE_KEY_A, 4000);
    c = portone_cancellation(&r);
    cr_expect_str_eq(json_str(c, "status"), "REQUESTED");
    json_decref(c);
}

Test(gateway_sim_portone, async_cancel_settled_failed_gives_the_balance_back)
{
    add_portone("pay_async_f", 10000, ",\"asyncCancel\":true");
    struct reply r = portone_cancel_amount("pay_async_f", PORTONE_KEY_A, 10000);
    char id[64];
    portone_cancellation_id(&r, "REQUESTED", id, sizeof(id));
    r = portone_cancel_amount("pay_async_f", NULL, 1);
    expect_portone_error(&r, 409, "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT");

    cr_expect_eq(portone_settle(id, "FAILED"), 200);
    expect_payment("pay_async_f", "PAID", 0, "FAILED");
    expect_ledger("pay_async_f", 1, 0);

    r = portone_cancel("pay_async_f", PORTONE_KEY_B,
                       "{\"reason\":\"r\",\"amount\":10000,\"currentCancellableAmount\":10000}");
    char second_id[64];
    portone_cancellation_id(&r, "REQUESTED", second_id, sizeof(second_id));

    cr_expect_eq(portone_settle(second_id, "MAYBE"), 400);
    cr_expect_eq(portone_settle("no-such-cancellation", "SUCCEEDED"), 404);
}

Test(gateway_sim_portone, planted_cancellations_show_in_the_inquiry)
{
    add_portone("pay_plant", 10000, "");
    admin("POST", "/_sim/payments/pay_plant/refunds",
          "{\"amount\":2500,\"reason\":\"by hand in the console\"}", 201);
    admin("POST", "/_sim/payments/pay_plant/refunds", "{\"amount\":1000,\"status\":\"pending\"}",
          201);
    json_t *p = portone_payment("pay_plant");
    cr_expect_str_eq(json_str(p, "status"), "PARTIAL_CANCELLED");
    cr_expect_eq(portone_amount(p, "cancelled"), 2500);
    json_t *cs = json_object_get(p, "cancellations");
    cr_assert_eq(json_array_size(cs), 2);
    cr_expect_str_eq(json_str(json_array_get(cs, 0), "reason"), "by hand in the console");
    cr_expect_str_eq(json_str(json_array_get(cs, 1), "status"), "REQUESTED");
    json_decref(p);
    /* The guard's balance counts both: 10000 - 2500 - 1000. */
    struct reply r = portone_cancel(
        "pay_plant", NULL, "{\"reason\":\"r\",\"amount\":100,\"currentCancellableAmount\":6500}");
    json_decref(portone_cancellation(&r));
}

/* Options on the command line, with no admin call. */
TestSuite(gateway_sim_portone_options, .fini = sim_stop, .timeout = 30);

Test(gateway_sim_portone_options, command_line_sets_secret_ttl_and_store_errors)
{
    static const char *const args[] = {"--portone-secret",
                                       "another_secret",
                                       "--portone-key-ttl",
                                       "1",
                                       "--portone-store-errors",
                                       "off",
                                       NULL};
    sim_start_args(args);
    expect_config(1, false);

    add_portone("pay_opt", 10000, "");
    struct reply r = portone_cancel_amount("pay_opt", PORTONE_KEY_A, 1000);
    expect_portone_error(&r, 401, "UNAUTHORIZED");
    r = portone_cancel_as("Authorization: PortOne another_secret", "pay_opt", PORTONE_KEY_A,
                          "{\"reason\":\"r\",\"amount\":1000}", 0);
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_opt", 1, 1000);
}
