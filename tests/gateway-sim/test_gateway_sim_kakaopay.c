/*
 * Integration test of gateway-sim, KakaoPay: the cancel and the order
 * inquiry as KakaoPay documents them, no idempotency (a repeated cancel
 * cancels again), the switchable cancel_available_amount guard, both error
 * formats, the faults, and KakaoPay payments and cancels planted through the
 * admin API. Each test spawns its own simulator (sim_test_client.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sim_test_client.h"

#define KAKAOPAY_AUTH "Authorization: SECRET_KEY kakaopay_secret_local"
#define CID           "TC0ONETIME"

TestSuite(gateway_sim_kakaopay, .init = sim_start, .fini = sim_stop, .timeout = 30);

/* POST /online/v1/payment/<endpoint> with auth (NULL = none) and body. */
static struct reply kp_post_as(const char *auth, const char *endpoint, const char *body,
                               long timeout_ms)
{
    char path[128];
    const char *headers[3] = {"Content-Type: application/json", auth, NULL};
    snprintf(path, sizeof(path), "/online/v1/payment/%s", endpoint);
    return http("POST", path, headers, body, timeout_ms);
}

static struct reply kp_post(const char *endpoint, const char *body)
{
    return kp_post_as(KAKAOPAY_AUTH, endpoint, body, 0);
}

/* The cancel body for tid: cancel_amount, tax-free 0, payload (NULL =
 * none), cancel_available_amount (< 0 = none). */
static void cancel_body(char *buf, size_t len, const char *tid, long amount, const char *payload,
                        long available)
{
    int n = snprintf(buf, len,
                     "{\"cid\":\"" CID "\",\"tid\":\"%s\",\"cancel_amount\":%ld,"
                     "\"cancel_tax_free_amount\":0",
                     tid, amount);
    if (payload != NULL)
        n += snprintf(buf + n, len - (size_t)n, ",\"payload\":\"%s\"", payload);
    if (available >= 0)
        n += snprintf(buf + n, len - (size_t)n, ",\"cancel_available_amount\":%ld", available);
    snprintf(buf + n, len - (size_t)n, "}");
}

static struct reply kp_cancel_timeout(const char *tid, long amount, const char *payload,
                                      long available, long timeout_ms)
{
    char body[1024];
    cancel_body(body, sizeof(body), tid, amount, payload, available);
    return kp_post_as(KAKAOPAY_AUTH, "cancel", body, timeout_ms);
}

static struct reply kp_cancel(const char *tid, long amount, const char *payload, long available)
{
    return kp_cancel_timeout(tid, amount, payload, available, 0);
}

static struct reply kp_order(const char *tid)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"cid\":\"" CID "\",\"tid\":\"%s\"}", tid);
    return kp_post("order", body);
}

/* The JSON of a 200 answer (new reference); frees r. */
static json_t *ok_json(struct reply *r)
{
    cr_assert_eq(r->rc, CURLE_OK, "%s", curl_easy_strerror(r->rc));
    cr_assert_eq(r->status, 200, "status %ld: %s", r->status, r->body);
    json_t *j = reply_json(r);
    reply_free(r);
    return j;
}

/* Expect r to be a KakaoPay error in the new format: status, error_code;
 * frees r. */
static void expect_kp_error(struct reply *r, long status, long code)
{
    cr_assert_eq(r->rc, CURLE_OK, "%s", curl_easy_strerror(r->rc));
    cr_expect_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    json_t *j = reply_json(r);
    cr_expect_eq(json_int(j, "error_code"), code, "%s", r->body);
    cr_expect(json_is_string(json_object_get(j, "error_message")), "%s", r->body);
    cr_expect_null(json_object_get(j, "code"), "%s", r->body);
    json_decref(j);
    reply_free(r);
}

/* member of the amount object name of obj. */
static long amount_of(const json_t *obj, const char *name, const char *member)
{
    const json_t *a = json_object_get(obj, name);
    cr_assert(json_is_object(a), "no %s object", name);
    return json_int(a, member);
}

static void add_kakaopay(const char *tid, long amount)
{
    add_payment("kakaopay", tid, amount, 0);
}

/* True if s looks like a KakaoPay time: "2023-07-15T21:18:22". */
static bool kakaopay_time(const char *s)
{
    return s != NULL && strlen(s) == 19 && s[4] == '-' && s[10] == 'T' && s[13] == ':';
}

Test(gateway_sim_kakaopay, cancel_answers_the_documented_members)
{
    add_kakaopay("T100000000000000001", 10000);

    struct reply r = kp_cancel("T100000000000000001", 3000, "cr:req-1.1", -1);
    json_t *j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "tid"), "T100000000000000001");
    cr_expect_str_eq(json_str(j, "cid"), CID);
    cr_expect_str_eq(json_str(j, "status"), "PART_CANCEL_PAYMENT");
    const char *aid = json_str(j, "aid");
    cr_expect_eq(strlen(aid), 20, "aid %s: 20 characters", aid);
    cr_expect_eq(aid[0], 'A');
    cr_expect_eq(amount_of(j, "amount", "total"), 10000);
    cr_expect_eq(amount_of(j, "amount", "tax_free"), 0);
    cr_expect_eq(amount_of(j, "amount", "vat"), 909);
    cr_expect_eq(amount_of(j, "approved_cancel_amount", "total"), 3000);
    cr_expect_eq(amount_of(j, "approved_cancel_amount", "vat"), 273); /* 3000/11, rounded */
    cr_expect_eq(amount_of(j, "canceled_amount", "total"), 3000);
    cr_expect_eq(amount_of(j, "cancel_available_amount", "total"), 7000);
    cr_expect_eq(amount_of(j, "cancel_available_amount", "vat"), 909 - 273);
    cr_expect_str_eq(json_str(j, "payload"), "cr:req-1.1");
    cr_expect_str_eq(json_str(j, "partner_order_id"), "order-T100000000000000001");
    cr_expect(kakaopay_time(json_str(j, "created_at")));
    cr_expect(kakaopay_time(json_str(j, "approved_at")));
    cr_expect(kakaopay_time(json_str(j, "canceled_at")));
    json_decref(j);

    /* The ledger counts the cancel, with its aid and payload. */
    json_t *l = ledger_of("T100000000000000001");
    json_t *refund = json_array_get(json_object_get(l, "refunds"), 0);
    cr_expect_str_eq(json_str(l, "gateway"), "kakaopay");
    cr_expect_eq(json_int(refund, "amount"), 3000);
    cr_expect_str_eq(json_str(refund, "reason"), "cr:req-1.1");
    json_decref(l);
    expect_ledger("T100000000000000001", 1, 3000);
}

Test(gateway_sim_kakaopay, a_repeated_cancel_cancels_again)
{
    add_kakaopay("T2", 10000);

    /* No idempotency: the same call twice is two cancels, with two aids,
     * whatever Idempotency-Key the client sends. */
    char body[512];
    cancel_body(body, sizeof(body), "T2", 4000, "cr:req-2.1", -1);
    const char *headers[] = {KAKAOPAY_AUTH, "Idempotency-Key: req-2", NULL};
    struct reply r1 = http("POST", "/online/v1/payment/cancel", headers, body, 0);
    struct reply r2 = http("POST", "/online/v1/payment/cancel", headers, body, 0);
    json_t *a = ok_json(&r1), *b = ok_json(&r2);
    cr_expect_str_neq(json_str(a, "aid"), json_str(b, "aid"));
    cr_expect_eq(amount_of(b, "canceled_amount", "total"), 8000);
    cr_expect_eq(amount_of(b, "cancel_available_amount", "total"), 2000);
    json_decref(a);
    json_decref(b);
    expect_ledger("T2", 2, 8000);

    /* A third would exceed the balance: refused, nothing applied. */
    struct reply r3 = http("POST", "/online/v1/payment/cancel", headers, body, 0);
    expect_kp_error(&r3, 400, -797);
    expect_ledger("T2", 2, 8000);
}

Test(gateway_sim_kakaopay, cancelling_the_whole_balance_and_then_again)
{
    add_kakaopay("T3", 5000);

    struct reply r = kp_cancel("T3", 2000, NULL, -1);
    json_t *j = ok_json(&r);
    cr_expect(json_is_null(json_object_get(j, "payload")), "no payload sent: null");
    json_decref(j);
    r = kp_cancel("T3", 3000, NULL, -1);
    j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "status"), "CANCEL_PAYMENT");
    cr_expect_eq(amount_of(j, "cancel_available_amount", "total"), 0);
    json_decref(j);

    r = kp_cancel("T3", 1, NULL, -1);
    expect_kp_error(&r, 400, -708);
    expect_ledger("T3", 2, 5000);
}

Test(gateway_sim_kakaopay, order_inquiry_lists_the_payment_and_every_cancel)
{
    add_kakaopay("T4", 10000);

    struct reply r = kp_order("T4");
    json_t *j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "status"), "SUCCESS_PAYMENT");
    cr_expect(json_is_null(json_object_get(j, "canceled_at")));
    cr_expect_eq(amount_of(j, "cancel_available_amount", "total"), 10000);
    json_t *actions = json_object_get(j, "payment_action_details");
    cr_assert_eq(json_array_size(actions), 1);
    cr_expect_str_eq(json_str(json_array_get(actions, 0), "payment_action_type"), "PAYMENT");
    cr_expect_eq(json_int(json_array_get(actions, 0), "amount"), 10000);
    json_decref(j);

    r = kp_cancel("T4", 1000, "cr:req-4.1", -1);
    json_t *c1 = ok_json(&r);
    r = kp_cancel("T4", 2500, "cr:req-5.1", -1);
    json_t *c2 = ok_json(&r);

    r = kp_order("T4");
    j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "tid"), "T4");
    cr_expect_str_eq(json_str(j, "cid"), CID);
    cr_expect_str_eq(json_str(j, "status"), "PART_CANCEL_PAYMENT");
    cr_expect_eq(amount_of(j, "amount", "total"), 10000);
    cr_expect_eq(amount_of(j, "canceled_amount", "total"), 3500);
    cr_expect_eq(amount_of(j, "cancel_available_amount", "total"), 6500);
    cr_expect(kakaopay_time(json_str(j, "canceled_at")));
    actions = json_object_get(j, "payment_action_details");
    cr_assert_eq(json_array_size(actions), 3);
    const json_t *pay = json_array_get(actions, 0), *a1 = json_array_get(actions, 1),
                 *a2 = json_array_get(actions, 2);
    cr_expect_str_eq(json_str(pay, "payment_action_type"), "PAYMENT");
    cr_expect_str_neq(json_str(pay, "aid"), json_str(c1, "aid"));
    cr_expect_str_eq(json_str(a1, "payment_action_type"), "CANCEL");
    cr_expect_str_eq(json_str(a1, "aid"), json_str(c1, "aid"));
    cr_expect_eq(json_int(a1, "amount"), 1000);
    cr_expect_str_eq(json_str(a1, "payload"), "cr:req-4.1");
    cr_expect(kakaopay_time(json_str(a1, "approved_at")));
    cr_expect_str_eq(json_str(a2, "aid"), json_str(c2, "aid"));
    cr_expect_eq(json_int(a2, "amount"), 2500);
    cr_expect_str_eq(json_str(a2, "payload"), "cr:req-5.1");
    json_decref(j);
    json_decref(c1);
    json_decref(c2);

    /* The inquiry cancels nothing. */
    expect_ledger("T4", 2, 3500);
}

Test(gateway_sim_kakaopay, wrong_or_missing_secret_gets_401_and_applies_nothing)
{
    char body[512];
    add_kakaopay("T5", 10000);
    cancel_body(body, sizeof(body), "T5", 1000, NULL, -1);

    const char *auths[] = {NULL, "Authorization: SECRET_KEY wrong",
                           "Authorization: Bearer kakaopay_secret_local",
                           "Authorization: KakaoAK kakaopay_secret_local"};
    for (size_t i = 0; i < sizeof(auths) / sizeof(auths[0]); i++) {
        struct reply r = kp_post_as(auths[i], "cancel", body, 0);
        expect_kp_error(&r, 401, -401);
        r = kp_post_as(auths[i], "order", "{\"cid\":\"" CID "\",\"tid\":\"T5\"}", 0);
        expect_kp_error(&r, 401, -401);
    }
    expect_ledger("T5", 0, 0);
}

Test(gateway_sim_kakaopay, bad_parameters_are_refused_with_nothing_applied)
{
    add_kakaopay("T6", 10000);
    static const char *const bodies[] = {
        "not json",
        "[1]",
        "{\"tid\":\"T6\",\"cancel_amount\":1,\"cancel_tax_free_amount\":0}",
        "{\"cid\":\"TCOTHER001\",\"tid\":\"T6\",\"cancel_amount\":1,\"cancel_tax_free_amount\":0}",
        "{\"cid\":\"" CID "\",\"cancel_amount\":1,\"cancel_tax_free_amount\":0}",
        "{\"cid\":\"" CID "\",\"tid\":\"T6\",\"cancel_tax_free_amount\":0}",
        "{\"cid\":\"" CID "\",\"tid\":\"T6\",\"cancel_amount\":0,\"cancel_tax_free_amount\":0}",
        "{\"cid\":\"" CID "\",\"tid\":\"T6\",\"cancel_amount\":-5,\"cancel_tax_free_amount\":0}",
        "{\"cid\":\"" CID
        "\",\"tid\":\"T6\",\"cancel_amount\":\"12a\",\"cancel_tax_free_amount\":0}",
        "{\"cid\":\"" CID "\",\"tid\":\"T6\",\"cancel_amount\":1.5,\"cancel_tax_free_amount\":0}",
        "{\"cid\":\"" CID "\",\"tid\":\"T6\",\"cancel_amount\":100}",
        "{\"cid\":\"" CID "\",\"tid\":\"T6\",\"cancel_amount\":100,\"cancel_tax_free_amount\":10}",
        "{\"cid\":\"" CID "\",\"tid\":\"T6\",\"cancel_amount\":100,\"cancel_tax_free_amount\":0,"
        "\"cancel_vat_amount\":101}",
        "{\"cid\":\"" CID "\",\"tid\":\"T6\",\"cancel_amount\":100,\"cancel_tax_free_amount\":0,"
        "\"cancel_available_amount\":-1}",
        "{\"cid\":\"" CID "\",\"tid\":\"T6\",\"cancel_amount\":100,\"cancel_tax_free_amount\":0,"
        "\"payload\":7}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct reply r = kp_post("cancel", bodies[i]);
        cr_expect_eq(r.status, 400, "%s -> %ld", bodies[i], r.status);
        expect_kp_error(&r, 400, -2);
    }
    struct reply r = kp_post("order", "{\"cid\":\"TCOTHER001\",\"tid\":\"T6\"}");
    expect_kp_error(&r, 400, -2);
    r = kp_post("order", "{\"cid\":\"" CID "\"}");
    expect_kp_error(&r, 400, -2);
    expect_ledger("T6", 0, 0);
}

Test(gateway_sim_kakaopay, numbers_may_be_sent_as_strings_and_vat_as_given)
{
    add_kakaopay("T7", 10000);
    struct reply r =
        kp_post("cancel", "{\"cid\":\"" CID "\",\"tid\":\"T7\",\"cancel_amount\":\"2200\","
                          "\"cancel_tax_free_amount\":\"0\",\"cancel_vat_amount\":\"200\"}");
    json_t *j = ok_json(&r);
    cr_expect_eq(amount_of(j, "approved_cancel_amount", "total"), 2200);
    cr_expect_eq(amount_of(j, "approved_cancel_amount", "vat"), 200);
    cr_expect_eq(amount_of(j, "canceled_amount", "vat"), 200);
    json_decref(j);
    expect_ledger("T7", 1, 2200);
}

/* n copies of the 3-byte character "가" in buf. */
static void korean(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 3 * i, "가", 3);
    buf[3 * n] = '\0';
}

Test(gateway_sim_kakaopay, payload_is_at_most_200_characters)
{
    char payload[3 * 201 + 1];
    add_kakaopay("T8", 10000);

    korean(payload, 201);
    struct reply r = kp_cancel("T8", 100, payload, -1);
    expect_kp_error(&r, 400, -2);
    expect_ledger("T8", 0, 0);

    /* 200 characters of 3 bytes each: 600 bytes, within the limit. */
    korean(payload, 200);
    r = kp_cancel("T8", 100, payload, -1);
    json_t *j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "payload"), payload);
    json_decref(j);
    expect_ledger("T8", 1, 100);
}

Test(gateway_sim_kakaopay, unknown_tid_is_refused)
{
    add_payment("toss", "tpay_k", 10000, 0);

    struct reply r = kp_cancel("T_nope", 100, NULL, -1);
    expect_kp_error(&r, 400, -721);
    r = kp_order("T_nope");
    expect_kp_error(&r, 400, -721);
    /* A Toss payment is not a KakaoPay tid. */
    r = kp_cancel("tpay_k", 100, NULL, -1);
    expect_kp_error(&r, 400, -721);
    expect_ledger("tpay_k", 0, 0);
}

Test(gateway_sim_kakaopay, guard_ignored_by_default_applies_a_mismatched_cancel)
{
    add_kakaopay("T9", 10000);

    /* cancel_available_amount 99999 is wrong, and KakaoPay documents no
     * refusal for it: the unsafe reading, the default. */
    struct reply r = kp_cancel("T9", 1000, NULL, 99999);
    json_t *j = ok_json(&r);
    json_decref(j);
    expect_ledger("T9", 1, 1000);
}

/* PUT /_sim/kakaopay with body, which must answer 200. */
static void kakaopay_settings(const char *body)
{
    admin("PUT", "/_sim/kakaopay", body, 200);
}

Test(gateway_sim_kakaopay, guard_enforced_refuses_a_mismatch_and_applies_nothing)
{
    add_kakaopay("T10", 10000);
    kakaopay_settings("{\"guard\":\"enforced\"}");

    /* The balance before this cancel, this cancel's amount included. */
    struct reply r = kp_cancel("T10", 1000, NULL, 9000);
    expect_kp_error(&r, 400, -798);
    expect_ledger("T10", 0, 0);

    r = kp_cancel("T10", 1000, NULL, 10000);
    json_decref(ok_json(&r));
    expect_ledger("T10", 1, 1000);

    /* The same call again: the balance moved, so the guard refuses it. This
     * is what would save a client that resends the same guard. */
    r = kp_cancel("T10", 1000, NULL, 10000);
    expect_kp_error(&r, 400, -798);
    expect_ledger("T10", 1, 1000);

    /* The field is optional: without it there is nothing to check. */
    r = kp_cancel("T10", 1000, NULL, -1);
    json_decref(ok_json(&r));
    expect_ledger("T10", 2, 2000);
}

Test(gateway_sim_kakaopay, reset_restores_the_start_up_settings)
{
    add_kakaopay("T11", 10000);
    kakaopay_settings("{\"guard\":\"enforced\",\"errorFormat\":\"legacy\"}");
    struct reply r = http("GET", "/_sim/kakaopay", NULL, NULL, 0);
    json_t *j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "guard"), "enforced");
    cr_expect_str_eq(json_str(j, "errorFormat"), "legacy");
    cr_expect_str_eq(json_str(j, "cid"), CID);
    cr_expect_null(json_object_get(j, "secret"));
    json_decref(j);

    admin("PUT", "/_sim/kakaopay", "{\"guard\":\"sometimes\"}", 400);
    admin("PUT", "/_sim/kakaopay", "{\"errorFormat\":\"xml\"}", 400);
    admin("POST", "/_sim/reset", "{}", 200);
    r = http("GET", "/_sim/kakaopay", NULL, NULL, 0);
    j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "guard"), "ignored");
    cr_expect_str_eq(json_str(j, "errorFormat"), "new");
    json_decref(j);
}

Test(gateway_sim_kakaopay, legacy_error_format_has_code_and_msg)
{
    add_kakaopay("T12", 1000);
    kakaopay_settings("{\"errorFormat\":\"legacy\"}");

    struct reply r = kp_cancel("T12", 5000, NULL, -1);
    cr_expect_eq(r.status, 400);
    json_t *j = reply_json(&r);
    cr_expect_eq(json_int(j, "code"), -797, "%s", r.body);
    cr_expect(json_is_string(json_object_get(j, "msg")), "%s", r.body);
    cr_expect_null(json_object_get(j, "error_code"), "%s", r.body);
    json_decref(j);
    reply_free(&r);

    /* Faults speak the same format. */
    add_fault("{\"gateway\":\"kakaopay\",\"type\":\"permanent\",\"code\":\"-780\","
              "\"extras\":{\"method_result_code\":\"USER_LOCKED\"}}");
    r = kp_cancel("T12", 100, NULL, -1);
    j = reply_json(&r);
    cr_expect_eq(json_int(j, "code"), -780, "%s", r.body);
    cr_expect_str_eq(json_str(json_object_get(j, "extras"), "method_result_code"), "USER_LOCKED");
    json_decref(j);
    reply_free(&r);
    expect_ledger("T12", 0, 0);
}

Test(gateway_sim_kakaopay, error_5xx_and_rate_limited_apply_nothing)
{
    char retry[32];
    add_kakaopay("T13", 10000);
    add_fault("{\"paymentKey\":\"T13\",\"type\":\"error_5xx\"}");
    add_fault("{\"paymentKey\":\"T13\",\"type\":\"rate_limited\",\"retryAfter\":3}");

    struct reply r = kp_cancel("T13", 1000, NULL, -1);
    expect_kp_error(&r, 503, -9798);
    r = kp_cancel("T13", 1000, NULL, -1);
    cr_expect_str_eq(header(&r, "Retry-After", retry, sizeof(retry)), "3");
    expect_kp_error(&r, 429, -10);
    expect_ledger("T13", 0, 0);

    r = kp_cancel("T13", 1000, NULL, -1);
    json_decref(ok_json(&r));
    expect_ledger("T13", 1, 1000);
}

Test(gateway_sim_kakaopay, hang_outlasts_the_client_and_applies_nothing)
{
    add_kakaopay("T14", 10000);
    add_fault("{\"gateway\":\"kakaopay\",\"type\":\"hang\",\"delayMs\":3000}");

    struct reply r = kp_cancel_timeout("T14", 1000, NULL, -1, 1000);
    cr_expect_eq(r.rc, CURLE_OPERATION_TIMEDOUT, "%s", curl_easy_strerror(r.rc));
    reply_free(&r);
    expect_ledger("T14", 0, 0);
}

Test(gateway_sim_kakaopay, apply_then_hang_applies_the_cancel_and_loses_the_answer)
{
    add_kakaopay("T15", 10000);
    add_fault("{\"gateway\":\"kakaopay\",\"type\":\"apply_then_hang\",\"delayMs\":3000}");

    struct reply r = kp_cancel_timeout("T15", 1000, "cr:req-15.1", -1, 1000);
    cr_expect_eq(r.rc, CURLE_OPERATION_TIMEDOUT, "%s", curl_easy_strerror(r.rc));
    reply_free(&r);
    expect_ledger("T15", 1, 1000);
}

Test(gateway_sim_kakaopay, apply_then_drop_applies_and_only_the_inquiry_tells)
{
    add_kakaopay("T16", 10000);
    add_fault("{\"gateway\":\"kakaopay\",\"type\":\"apply_then_drop\"}");

    struct reply r = kp_cancel("T16", 1000, "cr:req-16.1", -1);
    cr_expect_neq(r.rc, CURLE_OK, "the answer must be lost");
    reply_free(&r);
    expect_ledger("T16", 1, 1000);

    /* The inquiry shows the cancel, with the payload the client sent. */
    r = kp_order("T16");
    json_t *j = ok_json(&r);
    const json_t *a = json_array_get(json_object_get(j, "payment_action_details"), 1);
    cr_expect_str_eq(json_str(a, "payment_action_type"), "CANCEL");
    cr_expect_str_eq(json_str(a, "payload"), "cr:req-16.1");
    json_decref(j);

    /* A client that resent blindly would cancel twice: the ledger says so. */
    r = kp_cancel("T16", 1000, "cr:req-16.1", -1);
    json_decref(ok_json(&r));
    expect_ledger("T16", 2, 2000);
}

Test(gateway_sim_kakaopay, permanent_in_progress_and_bad_credentials_faults)
{
    add_kakaopay("T17", 10000);
    add_fault(
        "{\"paymentKey\":\"T17\",\"type\":\"permanent\",\"code\":\"-780\","
        "\"extras\":{\"method_result_code\":\"CARD_ERROR\",\"method_result_message\":\"x\"}}");
    add_fault("{\"paymentKey\":\"T17\",\"type\":\"in_progress\"}");
    add_fault("{\"paymentKey\":\"T17\",\"type\":\"bad_credentials\"}");
    add_fault("{\"paymentKey\":\"T17\",\"type\":\"permanent\"}");

    struct reply r = kp_cancel("T17", 1000, NULL, -1);
    cr_expect_eq(r.status, 400);
    json_t *j = reply_json(&r);
    cr_expect_eq(json_int(j, "error_code"), -780);
    cr_expect_str_eq(json_str(json_object_get(j, "extras"), "method_result_code"), "CARD_ERROR");
    json_decref(j);
    reply_free(&r);

    /* KakaoPay's own "a transaction is in progress" sample. */
    r = kp_cancel("T17", 1000, NULL, -1);
    cr_expect_eq(r.status, 400);
    j = reply_json(&r);
    cr_expect_eq(json_int(j, "error_code"), -780);
    cr_expect_str_eq(json_str(json_object_get(j, "extras"), "method_result_code"), "USER_LOCKED");
    json_decref(j);
    reply_free(&r);

    r = kp_cancel("T17", 1000, NULL, -1);
    expect_kp_error(&r, 401, -401);

    /* Without extras: none in the answer. */
    r = kp_cancel("T17", 1000, NULL, -1);
    j = reply_json(&r);
    cr_expect_null(json_object_get(j, "extras"), "%s", r.body);
    json_decref(j);
    expect_kp_error(&r, 400, -780);
    expect_ledger("T17", 0, 0);
}

Test(gateway_sim_kakaopay, raw_fault_answers_verbatim)
{
    add_kakaopay("T18", 10000);
    add_fault("{\"gateway\":\"kakaopay\",\"type\":\"raw\",\"status\":502,"
              "\"body\":\"<html>Bad Gateway</html>\"}");

    struct reply r = kp_cancel("T18", 1000, NULL, -1);
    cr_expect_eq(r.status, 502);
    cr_expect_str_eq(r.body, "<html>Bad Gateway</html>");
    reply_free(&r);
    expect_ledger("T18", 0, 0);
}

Test(gateway_sim_kakaopay, inquiry_faults_apply_to_the_order_inquiry_only)
{
    add_kakaopay("T19", 10000);
    add_fault("{\"gateway\":\"kakaopay\",\"operation\":\"inquiry\",\"type\":\"error_5xx\"}");
    add_fault("{\"gateway\":\"kakaopay\",\"operation\":\"inquiry\",\"type\":\"raw\","
              "\"status\":200,\"body\":\"{}\"}");
    add_fault("{\"gateway\":\"kakaopay\",\"operation\":\"inquiry\",\"type\":\"hang\","
              "\"delayMs\":3000}");

    /* The cancel passes the inquiry faults by. */
    struct reply r = kp_cancel("T19", 1000, NULL, -1);
    json_decref(ok_json(&r));

    r = kp_order("T19");
    expect_kp_error(&r, 503, -9798);
    r = kp_order("T19");
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{}");
    reply_free(&r);
    char body[128];
    snprintf(body, sizeof(body), "{\"cid\":\"" CID "\",\"tid\":\"T19\"}");
    r = kp_post_as(KAKAOPAY_AUTH, "order", body, 1000);
    cr_expect_eq(r.rc, CURLE_OPERATION_TIMEDOUT, "%s", curl_easy_strerror(r.rc));
    reply_free(&r);

    r = kp_order("T19");
    json_t *j = ok_json(&r);
    cr_expect_eq(amount_of(j, "canceled_amount", "total"), 1000);
    json_decref(j);
    expect_ledger("T19", 1, 1000);
}

Test(gateway_sim_kakaopay, planted_cancels_show_in_the_inquiry)
{
    add_kakaopay("T20", 10000);
    admin("POST", "/_sim/payments/T20/refunds", "{\"amount\":1500,\"reason\":\"by hand\"}", 201);
    admin("POST", "/_sim/payments/T20/refunds", "{\"amount\":10,\"status\":\"pending\"}", 400);
    admin("POST", "/_sim/payments/T20/refunds", "{\"amount\":10,\"metadata\":{\"a\":\"b\"}}", 400);
    admin("POST", "/_sim/payments",
          "{\"gateway\":\"kakaopay\",\"paymentKey\":\"T21\",\"amount\":10,"
          "\"refundStatus\":\"pending\"}",
          400);

    struct reply r = kp_order("T20");
    json_t *j = ok_json(&r);
    const json_t *a = json_array_get(json_object_get(j, "payment_action_details"), 1);
    cr_expect_str_eq(json_str(a, "payment_action_type"), "CANCEL");
    cr_expect_eq(json_int(a, "amount"), 1500);
    cr_expect_str_eq(json_str(a, "payload"), "by hand");
    cr_expect_eq(strlen(json_str(a, "aid")), 20);
    cr_expect_eq(amount_of(j, "canceled_amount", "total"), 1500);
    char path[128];
    snprintf(path, sizeof(path), "/_sim/refunds/%s", json_str(a, "aid"));
    json_decref(j);

    /* Forgotten again: the inquiry no longer shows it. */
    admin("DELETE", path, NULL, 204);
    r = kp_order("T20");
    j = ok_json(&r);
    cr_expect_eq(json_array_size(json_object_get(j, "payment_action_details")), 1);
    cr_expect_str_eq(json_str(j, "status"), "SUCCESS_PAYMENT");
    json_decref(j);
}

Test(gateway_sim_kakaopay, preset_refunded_counts_without_a_cancel_action)
{
    add_payment("kakaopay", "T22", 10000, 4000);

    struct reply r = kp_order("T22");
    json_t *j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "status"), "PART_CANCEL_PAYMENT");
    cr_expect_eq(amount_of(j, "canceled_amount", "total"), 4000);
    cr_expect_eq(amount_of(j, "cancel_available_amount", "total"), 6000);
    cr_expect_eq(json_array_size(json_object_get(j, "payment_action_details")), 1);
    json_decref(j);
}

Test(gateway_sim_kakaopay, calls_are_logged_and_other_methods_refused)
{
    add_kakaopay("T23", 10000);
    struct reply r = kp_cancel("T23", 100, NULL, -1);
    reply_free(&r);
    r = kp_order("T23");
    reply_free(&r);
    cr_expect_eq(calls_for("T23"), 2);

    r = http("GET", "/online/v1/payment/order", NULL, NULL, 0);
    cr_expect_eq(r.status, 405);
    reply_free(&r);
    r = kp_post("approve", "{}");
    cr_expect_eq(r.status, 404);
    reply_free(&r);
}

/* A simulator started with every KakaoPay option. */
static void sim_start_configured(void)
{
    static const char *const args[] = {"--kakaopay-secret",
                                       "other_secret",
                                       "--kakaopay-cid",
                                       "CIDTEST001",
                                       "--kakaopay-guard",
                                       "enforced",
                                       "--kakaopay-error-format",
                                       "legacy",
                                       NULL};
    sim_start_args(args);
}

TestSuite(gateway_sim_kakaopay_options, .init = sim_start_configured, .fini = sim_stop,
          .timeout = 30);

Test(gateway_sim_kakaopay_options, command_line_sets_secret_cid_guard_and_format)
{
    static const char *const auth = "Authorization: SECRET_KEY other_secret";
    add_kakaopay("T30", 10000);

    /* The default secret and cid no longer pass. */
    struct reply r = kp_cancel("T30", 1000, NULL, 10000);
    cr_expect_eq(r.status, 401);
    reply_free(&r);
    r = kp_post_as(auth, "cancel",
                   "{\"cid\":\"" CID "\",\"tid\":\"T30\",\"cancel_amount\":1000,"
                   "\"cancel_tax_free_amount\":0}",
                   0);
    cr_expect_eq(r.status, 400);
    json_t *j = reply_json(&r);
    cr_expect_eq(json_int(j, "code"), -2, "legacy format: %s", r.body);
    json_decref(j);
    reply_free(&r);

    /* Guard enforced: a wrong cancel_available_amount is refused. */
    r = kp_post_as(auth, "cancel",
                   "{\"cid\":\"CIDTEST001\",\"tid\":\"T30\",\"cancel_amount\":1000,"
                   "\"cancel_tax_free_amount\":0,\"cancel_available_amount\":9000}",
                   0);
    j = reply_json(&r);
    cr_expect_eq(json_int(j, "code"), -798, "%s", r.body);
    json_decref(j);
    reply_free(&r);

    r = kp_post_as(auth, "cancel",
                   "{\"cid\":\"CIDTEST001\",\"tid\":\"T30\",\"cancel_amount\":1000,"
                   "\"cancel_tax_free_amount\":0,\"cancel_available_amount\":10000}",
                   0);
    j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "cid"), "CIDTEST001");
    json_decref(j);
    expect_ledger("T30", 1, 1000);

    /* And they are what a reset goes back to. */
    admin("POST", "/_sim/reset", "{}", 200);
    r = http("GET", "/_sim/kakaopay", NULL, NULL, 0);
    j = ok_json(&r);
    cr_expect_str_eq(json_str(j, "guard"), "enforced");
    cr_expect_str_eq(json_str(j, "errorFormat"), "legacy");
    cr_expect_str_eq(json_str(j, "cid"), "CIDTEST001");
    json_decref(j);
}
