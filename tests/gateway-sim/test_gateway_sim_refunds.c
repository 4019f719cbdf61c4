/*
 * Integration test of gateway-sim, Stripe refunds as Stripe documents them:
 * refund statuses (and the admin call that moves them), metadata, the
 * inquiry endpoints, and refunds planted in or removed from the ledger by
 * the admin API. Each test spawns its own simulator (sim_test_client.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sim_test_client.h"

TestSuite(gateway_sim_refunds, .init = sim_start, .fini = sim_stop, .timeout = 30);

/* POST /v1/refunds with a raw form body and Idempotency-Key idem (NULL =
 * none). */
static struct reply stripe_post(const char *body, const char *idem)
{
    char idem_hdr[300];
    const char *headers[3] = {STRIPE_AUTH, NULL, NULL};
    if (idem != NULL) {
        snprintf(idem_hdr, sizeof(idem_hdr), "Idempotency-Key: %s", idem);
        headers[1] = idem_hdr;
    }
    return http("POST", "/v1/refunds", headers, body, 0);
}

/* A Stripe GET (inquiry) of path. */
static struct reply stripe_get(const char *path)
{
    static const char *const headers[] = {STRIPE_AUTH, NULL};
    return http("GET", path, headers, NULL, 0);
}

/* Add a Stripe payment whose new refunds start as refund_status. */
static void add_stripe_payment(const char *key, long amount, const char *refund_status)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"gateway\":\"stripe\",\"paymentKey\":\"%s\",\"amount\":%ld,\"currency\":\"USD\","
             "\"refundStatus\":\"%s\"}",
             key, amount, refund_status);
    admin("POST", "/_sim/payments", body, 201);
}

/* The refund object of a 200 answer (new reference); frees r. */
static json_t *refund_of(struct reply *r)
{
    cr_assert_eq(r->rc, CURLE_OK, "%s", curl_easy_strerror(r->rc));
    cr_assert_eq(r->status, 200, "status %ld: %s", r->status, r->body);
    json_t *j = reply_json(r);
    reply_free(r);
    cr_assert_str_eq(json_str(j, "object"), "refund");
    return j;
}

/* POST /_sim/refunds/{id} with body; answers the status. */
static long move_refund(const char *id, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/refunds/%s", id);
    struct reply r = http("POST", path, NULL, body, 0);
    long status = r.status;
    reply_free(&r);
    return status;
}

/* The ledger entry of refund i of payment key (new reference). */
static json_t *ledger_refund(const char *key, size_t i)
{
    json_t *l = ledger_of(key);
    json_t *r = json_incref(json_array_get(json_object_get(l, "refunds"), i));
    json_decref(l);
    cr_assert(r != NULL, "%s has no refund %zu", key, i);
    return r;
}

Test(gateway_sim_refunds, refund_object_has_the_documented_members)
{
    add_payment("stripe", "pi_obj", 5000, 0);
    struct reply r = stripe_refund("pi_obj", "req-obj", 1200);
    json_t *j = refund_of(&r);
    cr_expect_eq(strncmp(json_str(j, "id"), "re_", 3), 0);
    cr_expect_eq(json_int(j, "amount"), 1200);
    cr_expect_str_eq(json_str(j, "currency"), "krw");
    cr_expect_str_eq(json_str(j, "payment_intent"), "pi_obj");
    cr_expect_str_eq(json_str(j, "status"), "succeeded");
    cr_expect(json_is_null(json_object_get(j, "failure_reason")));
    cr_expect(json_is_object(json_object_get(j, "metadata")));
    cr_expect_eq(json_object_size(json_object_get(j, "metadata")), 0);
    cr_expect_gt(json_int(j, "created"), 1600000000);
    cr_expect(json_is_null(json_object_get(j, "reason")));
    json_decref(j);
}

/* A payment set up with refundStatus pending: its refund is created pending,
 * counts against the balance, and the admin call later makes it succeed. */
Test(gateway_sim_refunds, pending_refund_counts_and_is_moved_to_succeeded)
{
    add_stripe_payment("pi_pending", 5000, "pending");
    struct reply r = stripe_refund("pi_pending", "req-pending", 4000);
    json_t *j = refund_of(&r);
    cr_expect_str_eq(json_str(j, "status"), "pending");
    char id[64];
    snprintf(id, sizeof(id), "%s", json_str(j, "id"));
    json_decref(j);
    expect_ledger("pi_pending", 1, 4000);

    r = stripe_refund("pi_pending", "req-pending-2", 2000);
    expect_stripe_error(&r, 400, "invalid_request_error", "amount_too_large");

    cr_expect_eq(move_refund(id, "{\"status\":\"succeeded\"}"), 200);
    json_t *lr = ledger_refund("pi_pending", 0);
    cr_expect_str_eq(json_str(lr, "status"), "succeeded");
    json_decref(lr);
    expect_ledger("pi_pending", 1, 4000);

    /* The stored answer of the key is the creation's: still pending. */
    r = stripe_refund("pi_pending", "req-pending", 4000);
    j = refund_of(&r);
    cr_expect_str_eq(json_str(j, "status"), "pending");
    json_decref(j);
}

/* A failed (or canceled) refund gives its amount back to the balance. */
Test(gateway_sim_refunds, failed_refund_gives_the_balance_back)
{
    add_payment("stripe", "pi_failed", 5000, 0);
    struct reply r = stripe_refund("pi_failed", "req-failed-1", -1);
    json_t *j = refund_of(&r);
    char id[64];
    snprintf(id, sizeof(id), "%s", json_str(j, "id"));
    json_decref(j);
    r = stripe_refund("pi_failed", "req-failed-2", -1);
    expect_stripe_error(&r, 400, "invalid_request_error", "charge_already_refunded");

    cr_expect_eq(
        move_refund(id, "{\"status\":\"failed\",\"failureReason\":\"lost_or_stolen_card\"}"), 200);
    expect_ledger("pi_failed", 1, 0);
    json_t *lr = ledger_refund("pi_failed", 0);
    cr_expect_str_eq(json_str(lr, "status"), "failed");
    cr_expect_str_eq(json_str(lr, "failureReason"), "lost_or_stolen_card");
    json_decref(lr);

    r = stripe_refund("pi_failed", "req-failed-3", -1);
    j = refund_of(&r);
    cr_expect_eq(json_int(j, "amount"), 5000);
    char id2[64];
    snprintf(id2, sizeof(id2), "%s", json_str(j, "id"));
    json_decref(j);
    expect_ledger("pi_failed", 2, 5000);

    /* The balance is used again: the failed refund cannot come back. */
    cr_expect_eq(move_refund(id, "{\"status\":\"succeeded\"}"), 400);
    cr_expect_eq(move_refund(id2, "{\"status\":\"canceled\"}"), 200);
    expect_ledger("pi_failed", 2, 0);
    lr = ledger_refund("pi_failed", 1);
    cr_expect(json_is_null(json_object_get(lr, "failureReason")));
    json_decref(lr);
}

Test(gateway_sim_refunds, failed_at_creation_carries_no_failure_reason_until_set)
{
    add_stripe_payment("pi_fail_now", 5000, "failed");
    struct reply r = stripe_refund("pi_fail_now", "req-fail-now", 1000);
    json_t *j = refund_of(&r);
    cr_expect_str_eq(json_str(j, "status"), "failed");
    cr_expect(json_is_null(json_object_get(j, "failure_reason")));
    json_decref(j);
    expect_ledger("pi_fail_now", 1, 0);
}

Test(gateway_sim_refunds, admin_status_call_refuses_bad_input)
{
    add_payment("toss", "tpay_st", 10000, 0);
    add_payment("stripe", "pi_st", 5000, 0);
    struct reply r = toss_cancel("tpay_st", "req-st-t", 1000);
    reply_free(&r);
    r = stripe_refund("pi_st", "req-st-s", 1000);
    json_t *j = refund_of(&r);
    char id[64];
    snprintf(id, sizeof(id), "%s", json_str(j, "id"));
    json_decref(j);
    json_t *tr = ledger_refund("tpay_st", 0);
    cr_expect_str_eq(json_str(tr, "status"), "succeeded");
    cr_expect_eq(move_refund(json_str(tr, "id"), "{\"status\":\"failed\"}"), 400);
    json_decref(tr);

    cr_expect_eq(move_refund("re_nope", "{\"status\":\"failed\"}"), 404);
    cr_expect_eq(move_refund(id, "{\"status\":\"refunded\"}"), 400);
    cr_expect_eq(move_refund(id, "{\"status\":\"succeeded\",\"failureReason\":\"declined\"}"), 400);
    cr_expect_eq(move_refund(id, "{\"status\":\"requires_action\"}"), 200);
    admin("POST", "/_sim/payments",
          "{\"gateway\":\"toss\",\"paymentKey\":\"tpay_x\",\"amount\":1,\"refundStatus\":"
          "\"pending\"}",
          400);
    admin("POST", "/_sim/payments",
          "{\"gateway\":\"stripe\",\"paymentKey\":\"pi_x\",\"amount\":1,\"refundStatus\":\"done\"}",
          400);
}

/* metadata[NAME]=VALUE parameters are stored and echoed in every refund
 * object and in the ledger. */
Test(gateway_sim_refunds, metadata_is_stored_and_echoed)
{
    char buf[64];
    add_payment("stripe", "pi_meta", 5000, 0);
    const char *body = "payment_intent=pi_meta&amount=700&metadata%5BrequestId%5D=req-meta"
                       "&metadata[cancel_reason]=booking+cancelled";
    struct reply first = stripe_post(body, "req-meta");
    cr_assert_eq(first.status, 200, "%s", first.body);
    json_t *j = reply_json(&first);
    json_t *m = json_object_get(j, "metadata");
    cr_expect_eq(json_object_size(m), 2);
    cr_expect_str_eq(json_str(m, "requestId"), "req-meta");
    cr_expect_str_eq(json_str(m, "cancel_reason"), "booking cancelled");
    json_decref(j);

    struct reply again = stripe_post(body, "req-meta");
    cr_expect_str_eq(header(&again, "Idempotent-Replayed", buf, sizeof(buf)), "true");
    cr_expect_str_eq(again.body, first.body);
    reply_free(&again);
    reply_free(&first);

    json_t *lr = ledger_refund("pi_meta", 0);
    m = json_object_get(lr, "metadata");
    cr_expect_str_eq(json_str(m, "requestId"), "req-meta");
    cr_expect_str_eq(json_str(m, "cancel_reason"), "booking cancelled");
    json_decref(lr);
}

/* Stripe's metadata limits are validation errors: answered, not stored. */
Test(gateway_sim_refunds, metadata_beyond_the_limits_is_refused)
{
    char body[1024];
    add_payment("stripe", "pi_meta_bad", 5000, 0);
    snprintf(body, sizeof(body), "payment_intent=pi_meta_bad&metadata[cancel_reason]=%0501d", 0);
    struct reply r = stripe_post(body, "req-meta-bad");
    expect_stripe_error(&r, 400, "invalid_request_error", NULL);
    r = stripe_post("payment_intent=pi_meta_bad&metadata[a_name_much_longer_than_forty_characters_"
                    "for_sure]=1",
                    "req-meta-bad");
    expect_stripe_error(&r, 400, "invalid_request_error", NULL);
    r = stripe_post("payment_intent=pi_meta_bad&metadata=x", "req-meta-bad");
    expect_stripe_error(&r, 400, "invalid_request_error", NULL);
    expect_ledger("pi_meta_bad", 0, 0);
    /* Nothing was stored under the key. */
    r = stripe_post("payment_intent=pi_meta_bad&metadata[cancel_reason]=ok", "req-meta-bad");
    json_t *j = refund_of(&r);
    cr_expect_str_eq(json_str(json_object_get(j, "metadata"), "cancel_reason"), "ok");
    json_decref(j);
}

/* The id of the refund object of a 200 answer into id; frees r. */
static void refund_id_of(struct reply *r, char *id, size_t idlen)
{
    json_t *j = refund_of(r);
    snprintf(id, idlen, "%s", json_str(j, "id"));
    json_decref(j);
}

/* GET path, which must answer a list (new reference). */
static json_t *list_of(const char *path)
{
    struct reply r = stripe_get(path);
    cr_assert_eq(r.status, 200, "GET %s -> %ld: %s", path, r.status, r.body);
    json_t *j = reply_json(&r);
    reply_free(&r);
    cr_assert_str_eq(json_str(j, "object"), "list");
    cr_assert_str_eq(json_str(j, "url"), "/v1/refunds");
    cr_assert(json_is_array(json_object_get(j, "data")));
    return j;
}

static const char *item_id(const json_t *list, size_t i)
{
    return json_str(json_array_get(json_object_get(list, "data"), i), "id");
}

/* A pending refund is listed and retrieved as pending until the admin call
 * makes it succeed; the inquiries then show the new status. */
Test(gateway_sim_refunds, pending_refund_is_listed_and_retrieved_then_succeeds)
{
    char id1[64], id2[64], path[128];
    add_stripe_payment("pi_inq", 5000, "pending");
    struct reply r = stripe_refund("pi_inq", "req-inq-1", 1000);
    refund_id_of(&r, id1, sizeof(id1));
    r = stripe_refund("pi_inq", "req-inq-2", 2000);
    refund_id_of(&r, id2, sizeof(id2));

    json_t *l = list_of("/v1/refunds?payment_intent=pi_inq");
    cr_expect_eq(json_is_true(json_object_get(l, "has_more")), false);
    cr_assert_eq(json_array_size(json_object_get(l, "data")), 2);
    cr_expect_str_eq(item_id(l, 0), id2, "newest first");
    cr_expect_str_eq(item_id(l, 1), id1);
    json_t *first = json_array_get(json_object_get(l, "data"), 1);
    cr_expect_str_eq(json_str(first, "status"), "pending");
    cr_expect_eq(json_int(first, "amount"), 1000);
    cr_expect_str_eq(json_str(first, "currency"), "usd");
    json_decref(l);

    snprintf(path, sizeof(path), "/v1/refunds/%s", id1);
    r = stripe_get(path);
    json_t *j = refund_of(&r);
    cr_expect_str_eq(json_str(j, "status"), "pending");
    cr_expect_str_eq(json_str(j, "payment_intent"), "pi_inq");
    json_decref(j);

    cr_expect_eq(move_refund(id1, "{\"status\":\"succeeded\"}"), 200);
    r = stripe_get(path);
    j = refund_of(&r);
    cr_expect_str_eq(json_str(j, "status"), "succeeded");
    json_decref(j);
    l = list_of("/v1/refunds?payment_intent=pi_inq");
    cr_expect_str_eq(json_str(json_array_get(json_object_get(l, "data"), 1), "status"),
                     "succeeded");
    cr_expect_str_eq(json_str(json_array_get(json_object_get(l, "data"), 0), "status"), "pending");
    json_decref(l);

    /* A failed refund shows its failure_reason. */
    cr_expect_eq(move_refund(id2, "{\"status\":\"failed\",\"failureReason\":\"expired_or_canceled_"
                                  "card\"}"),
                 200);
    snprintf(path, sizeof(path), "/v1/refunds/%s", id2);
    r = stripe_get(path);
    j = refund_of(&r);
    cr_expect_str_eq(json_str(j, "status"), "failed");
    cr_expect_str_eq(json_str(j, "failure_reason"), "expired_or_canceled_card");
    json_decref(j);
}

Test(gateway_sim_refunds, list_pages_with_limit_and_cursors)
{
    char ids[3][64], path[256];
    add_payment("stripe", "pi_page", 9000, 0);
    add_payment("stripe", "pi_other", 9000, 0);
    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof(key), "req-page-%d", i);
        struct reply r = stripe_refund("pi_page", key, 1000);
        refund_id_of(&r, ids[i], sizeof(ids[i]));
    }
    struct reply r = stripe_refund("pi_other", "req-page-other", 500);
    reply_free(&r);

    json_t *l = list_of("/v1/refunds?payment_intent=pi_page&limit=2");
    cr_assert_eq(json_array_size(json_object_get(l, "data")), 2);
    cr_expect(json_is_true(json_object_get(l, "has_more")));
    cr_expect_str_eq(item_id(l, 0), ids[2]);
    cr_expect_str_eq(item_id(l, 1), ids[1]);
    json_decref(l);

    snprintf(path, sizeof(path), "/v1/refunds?payment_intent=pi_page&limit=2&starting_after=%s",
             ids[1]);
    l = list_of(path);
    cr_assert_eq(json_array_size(json_object_get(l, "data")), 1);
    cr_expect_str_eq(item_id(l, 0), ids[0]);
    cr_expect(json_is_false(json_object_get(l, "has_more")));
    json_decref(l);

    snprintf(path, sizeof(path), "/v1/refunds?payment_intent=pi_page&limit=1&ending_before=%s",
             ids[0]);
    l = list_of(path);
    cr_assert_eq(json_array_size(json_object_get(l, "data")), 1);
    cr_expect_str_eq(item_id(l, 0), ids[1]);
    cr_expect(json_is_true(json_object_get(l, "has_more")));
    json_decref(l);

    /* Without payment_intent: every Stripe refund, newest first. */
    l = list_of("/v1/refunds");
    cr_expect_eq(json_array_size(json_object_get(l, "data")), 4);
    cr_expect_str_eq(json_str(json_array_get(json_object_get(l, "data"), 0), "payment_intent"),
                     "pi_other");
    json_decref(l);

    r = stripe_get("/v1/refunds?payment_intent=pi_page&limit=0");
    expect_stripe_error(&r, 400, "invalid_request_error", "parameter_invalid_integer");
    r = stripe_get("/v1/refunds?limit=101");
    expect_stripe_error(&r, 400, "invalid_request_error", "parameter_invalid_integer");
    r = stripe_get("/v1/refunds?charge=ch_page");
    expect_stripe_error(&r, 400, "invalid_request_error", "parameter_unknown");
    snprintf(path, sizeof(path), "/v1/refunds?starting_after=%s&ending_before=%s", ids[0], ids[1]);
    r = stripe_get(path);
    expect_stripe_error(&r, 400, "invalid_request_error", "parameters_exclusive");
    r = stripe_get("/v1/refunds?starting_after=re_nope");
    expect_stripe_error(&r, 404, "invalid_request_error", "resource_missing");
}

Test(gateway_sim_refunds, list_of_unknown_payment_intent_is_404_and_of_no_refunds_empty)
{
    add_payment("stripe", "pi_none", 5000, 0);
    add_payment("toss", "tpay_list", 5000, 0);
    json_t *l = list_of("/v1/refunds?payment_intent=pi_none");
    cr_expect_eq(json_array_size(json_object_get(l, "data")), 0);
    cr_expect(json_is_false(json_object_get(l, "has_more")));
    json_decref(l);
    struct reply r = stripe_get("/v1/refunds?payment_intent=pi_unknown");
    expect_stripe_error(&r, 404, "invalid_request_error", "resource_missing");
    r = stripe_get("/v1/refunds?payment_intent=tpay_list");
    expect_stripe_error(&r, 404, "invalid_request_error", "resource_missing");
    r = stripe_get("/v1/refunds/re_sim_unknown");
    expect_stripe_error(&r, 404, "invalid_request_error", "resource_missing");
}

Test(gateway_sim_refunds, metadata_is_listed)
{
    add_payment("stripe", "pi_meta_list", 5000, 0);
    struct reply r =
        stripe_post("payment_intent=pi_meta_list&amount=100&metadata[requestId]=req-ml", "req-ml");
    reply_free(&r);
    json_t *l = list_of("/v1/refunds?payment_intent=pi_meta_list");
    json_t *m = json_object_get(json_array_get(json_object_get(l, "data"), 0), "metadata");
    cr_expect_str_eq(json_str(m, "requestId"), "req-ml");
    json_decref(l);
}

Test(gateway_sim_refunds, payment_intent_inquiry)
{
    add_stripe_payment("pi_get", 4200, "succeeded");
    add_payment("toss", "tpay_get", 4200, 0);
    struct reply r = stripe_get("/v1/payment_intents/pi_get");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = reply_json(&r);
    reply_free(&r);
    cr_expect_str_eq(json_str(j, "id"), "pi_get");
    cr_expect_str_eq(json_str(j, "object"), "payment_intent");
    cr_expect_eq(json_int(j, "amount"), 4200);
    cr_expect_eq(json_int(j, "amount_received"), 4200);
    cr_expect_str_eq(json_str(j, "currency"), "usd");
    cr_expect_str_eq(json_str(j, "status"), "succeeded");
    cr_expect_str_eq(json_str(j, "latest_charge"), "ch_get");
    json_decref(j);
    r = stripe_get("/v1/payment_intents/pi_missing");
    expect_stripe_error(&r, 404, "invalid_request_error", "resource_missing");
    r = stripe_get("/v1/payment_intents/tpay_get");
    expect_stripe_error(&r, 404, "invalid_request_error", "resource_missing");
    static const char *const bad_auth[] = {"Authorization: Bearer sk_test_wrong", NULL};
    r = http("GET", "/v1/payment_intents/pi_get", bad_auth, NULL, 0);
    expect_stripe_error(&r, 401, "invalid_request_error", NULL);
}

/* Faults reach the inquiries only with operation "inquiry" or "any". */
Test(gateway_sim_refunds, inquiry_faults)
{
    add_payment("stripe", "pi_inq_f", 5000, 0);
    add_fault("{\"type\":\"error_5xx\",\"gateway\":\"stripe\",\"operation\":\"inquiry\"}");
    struct reply r = stripe_refund("pi_inq_f", "req-inq-f", 100);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
    r = stripe_get("/v1/refunds?payment_intent=pi_inq_f");
    expect_stripe_error(&r, 503, "api_error", NULL);
    json_t *l = list_of("/v1/refunds?payment_intent=pi_inq_f");
    cr_expect_eq(json_array_size(json_object_get(l, "data")), 1);
    json_decref(l);
    add_fault("{\"type\":\"rate_limited\",\"operation\":\"any\",\"paymentKey\":\"pi_inq_f\"}");
    r = stripe_get("/v1/payment_intents/pi_inq_f");
    expect_stripe_error(&r, 429, "invalid_request_error", NULL);
}

/* POST /_sim/payments/{key}/refunds with body; answers the reply. */
static struct reply plant(const char *key, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/payments/%s/refunds", key);
    return http("POST", path, NULL, body, 0);
}

/* A refund made outside cancel-retry shows in the ledger and in the
 * gateway's own answers, and uses up the balance. */
Test(gateway_sim_refunds, planted_stripe_refund_is_seen_by_the_gateway)
{
    add_payment("stripe", "pi_plant", 5000, 0);
    struct reply r = plant("pi_plant", "{\"amount\":2000,\"metadata\":{\"requestId\":\"req-x\"},"
                                       "\"reason\":\"requested_by_customer\","
                                       "\"idempotencyKey\":\"dashboard-1\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    json_t *j = reply_json(&r);
    reply_free(&r);
    cr_expect_str_eq(json_str(j, "paymentKey"), "pi_plant");
    cr_expect_str_eq(json_str(j, "status"), "succeeded");
    cr_expect_str_eq(json_str(j, "idempotencyKey"), "dashboard-1");
    cr_expect_eq(json_int(j, "amount"), 2000);
    cr_expect_str_eq(json_str(json_object_get(j, "metadata"), "requestId"), "req-x");
    char id[64];
    snprintf(id, sizeof(id), "%s", json_str(j, "id"));
    json_decref(j);
    expect_ledger("pi_plant", 1, 2000);

    json_t *l = list_of("/v1/refunds?payment_intent=pi_plant");
    cr_assert_eq(json_array_size(json_object_get(l, "data")), 1);
    json_t *item = json_array_get(json_object_get(l, "data"), 0);
    cr_expect_str_eq(json_str(item, "id"), id);
    cr_expect_str_eq(json_str(item, "reason"), "requested_by_customer");
    cr_expect_str_eq(json_str(json_object_get(item, "metadata"), "requestId"), "req-x");
    json_decref(l);

    r = stripe_refund("pi_plant", "req-plant", 3001);
    expect_stripe_error(&r, 400, "invalid_request_error", "amount_too_large");
    r = plant("pi_plant", "{\"amount\":3001}");
    cr_expect_eq(r.status, 400, "%s", r.body);
    reply_free(&r);
    /* A pending plant counts, a failed one does not. */
    r = plant("pi_plant", "{\"amount\":1000,\"status\":\"pending\"}");
    cr_expect_eq(r.status, 201, "%s", r.body);
    reply_free(&r);
    r = plant("pi_plant", "{\"amount\":2000,\"status\":\"failed\"}");
    cr_expect_eq(r.status, 201, "%s", r.body);
    reply_free(&r);
    expect_ledger("pi_plant", 3, 3000);
}

Test(gateway_sim_refunds, planted_toss_cancel_is_seen_by_the_inquiry)
{
    static const char *const auth[] = {TOSS_AUTH, NULL};
    add_payment("toss", "tpay_plant", 10000, 0);
    struct reply r = plant("tpay_plant", "{\"amount\":3000,\"reason\":\"refunded by hand\"}");
    cr_expect_eq(r.status, 201, "%s", r.body);
    reply_free(&r);
    r = http("GET", "/v1/payments/tpay_plant", auth, NULL, 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = reply_json(&r);
    reply_free(&r);
    cr_expect_str_eq(json_str(j, "status"), "PARTIAL_CANCELED");
    cr_expect_eq(json_int(j, "balanceAmount"), 7000);
    json_t *c = json_array_get(json_object_get(j, "cancels"), 0);
    cr_expect_str_eq(json_str(c, "cancelReason"), "refunded by hand");
    cr_expect_str_eq(json_str(c, "cancelStatus"), "DONE");
    json_decref(j);

    r = plant("tpay_plant", "{\"amount\":100,\"status\":\"pending\"}");
    cr_expect_eq(r.status, 400, "%s", r.body);
    reply_free(&r);
    r = plant("tpay_plant", "{\"amount\":100,\"metadata\":{\"a\":\"b\"}}");
    cr_expect_eq(r.status, 400, "%s", r.body);
    reply_free(&r);
    r = plant("tpay_nope", "{\"amount\":100}");
    cr_expect_eq(r.status, 404, "%s", r.body);
    reply_free(&r);
    r = plant("tpay_plant", "{\"amount\":0}");
    cr_expect_eq(r.status, 400, "%s", r.body);
    reply_free(&r);
    expect_ledger("tpay_plant", 1, 3000);
}

/* Deleting a refund plants "we think it was refunded, the gateway says no":
 * the gateway forgets it and the balance comes back, while the answer stored
 * under its key is still replayed. */
Test(gateway_sim_refunds, deleted_refund_is_forgotten_by_the_gateway)
{
    char id[64], path[128], buf[64];
    add_payment("stripe", "pi_del", 5000, 0);
    struct reply r = stripe_refund("pi_del", "req-del", 2000);
    refund_id_of(&r, id, sizeof(id));
    snprintf(path, sizeof(path), "/_sim/refunds/%s", id);
    r = http("DELETE", path, NULL, NULL, 0);
    cr_expect_eq(r.status, 204);
    cr_expect_eq(r.len, 0);
    reply_free(&r);
    expect_ledger("pi_del", 0, 0);

    snprintf(path, sizeof(path), "/v1/refunds/%s", id);
    r = stripe_get(path);
    expect_stripe_error(&r, 404, "invalid_request_error", "resource_missing");
    json_t *l = list_of("/v1/refunds?payment_intent=pi_del");
    cr_expect_eq(json_array_size(json_object_get(l, "data")), 0);
    json_decref(l);

    r = stripe_refund("pi_del", "req-del", 2000);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "true");
    reply_free(&r);
    expect_ledger("pi_del", 0, 0);

    snprintf(path, sizeof(path), "/_sim/refunds/%s", id);
    r = http("DELETE", path, NULL, NULL, 0);
    cr_expect_eq(r.status, 404);
    reply_free(&r);

    /* A deleted Toss cancel goes too. */
    add_payment("toss", "tpay_del", 10000, 0);
    r = toss_cancel("tpay_del", "req-del-t", -1);
    reply_free(&r);
    json_t *t = ledger_refund("tpay_del", 0);
    snprintf(path, sizeof(path), "/_sim/refunds/%s", json_str(t, "id"));
    json_decref(t);
    admin("DELETE", path, NULL, 204);
    expect_ledger("tpay_del", 0, 0);
    r = toss_cancel("tpay_del", "req-del-t2", -1);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
}
