/*
 * Integration test of gateway-sim, PortOne V2: the injected faults in
 * PortOne's words (docs/gateway-sim.md "PortOne V2"), on the cancel and on
 * the inquiry, and the paths and methods PortOne has not. Each test spawns
 * its own simulator (sim_test_client.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sim_test_portone.h"

TestSuite(gateway_sim_portone_faults, .init = sim_start, .fini = sim_stop, .timeout = 30);

/* One fault, one cancel: the status and type PortOne's client sees. */
struct fault_case {
    const char *fault;
    long status;
    const char *type; /* NULL: not a PortOne error body (raw) */
    long refunds;     /* in the ledger afterwards */
};

static const struct fault_case fault_cases[] = {
    {"{\"type\":\"error_5xx\"}", 503, "SERVICE_UNAVAILABLE", 0},
    {"{\"type\":\"error_5xx\",\"status\":500}", 500, "SERVICE_UNAVAILABLE", 0},
    {"{\"type\":\"provider_error\"}", 502, "PG_PROVIDER", 0},
    {"{\"type\":\"rate_limited\"}", 429, "TOO_MANY_REQUESTS", 0},
    {"{\"type\":\"hang\",\"delayMs\":100}", 504, "GATEWAY_TIMEOUT", 0},
    {"{\"type\":\"apply_then_hang\",\"delayMs\":100}", 504, "GATEWAY_TIMEOUT", 1},
    {"{\"type\":\"permanent\"}", 400, "INVALID_REQUEST", 0},
    {"{\"type\":\"permanent\",\"status\":403,\"code\":\"FORBIDDEN\"}", 403, "FORBIDDEN", 0},
    {"{\"type\":\"permanent\",\"status\":409,\"code\":\"MAX_CANCEL_COUNT_REACHED\"}", 409,
     "MAX_CANCEL_COUNT_REACHED", 0},
    {"{\"type\":\"bad_credentials\"}", 401, "UNAUTHORIZED", 0},
    {"{\"type\":\"in_progress\"}", 409, "IDEMPOTENCY_OUTSTANDING_REQUEST", 0},
    {"{\"type\":\"raw\",\"status\":502,\"body\":\"<html>Bad Gateway</html>\"}", 502, NULL, 0},
};

Test(gateway_sim_portone_faults, faults_answer_in_portone_words)
{
    for (size_t i = 0; i < sizeof(fault_cases) / sizeof(fault_cases[0]); i++) {
        const struct fault_case *fc = &fault_cases[i];
        admin("POST", "/_sim/reset", "{}", 200);
        add_portone("pay_fault", 10000, "");
        add_fault(fc->fault);
        struct reply r = portone_cancel_amount("pay_fault", PORTONE_KEY_A, 1000);
        cr_assert_eq(r.rc, CURLE_OK, "%s: %s", fc->fault, curl_easy_strerror(r.rc));
        cr_expect_eq(r.status, fc->status, "%s: status %ld", fc->fault, r.status);
        if (fc->type != NULL) {
            json_t *j = reply_json(&r);
            cr_expect_str_eq(json_str(j, "type"), fc->type, "%s", fc->fault);
            json_decref(j);
        } else {
            cr_expect_str_eq(r.body, "<html>Bad Gateway</html>");
        }
        reply_free(&r);
        json_t *l = ledger_of("pay_fault");
        cr_expect_eq(json_array_size(json_object_get(l, "refunds")), (size_t)fc->refunds, "%s",
                     fc->fault);
        json_decref(l);
    }
}

Test(gateway_sim_portone_faults, provider_error_carries_pg_code_and_message)
{
    add_portone("pay_pg", 10000, "");
    add_fault("{\"type\":\"provider_error\"}");
    struct reply r = portone_cancel_amount("pay_pg", PORTONE_KEY_A, 1000);
    cr_assert_eq(r.status, 502);
    json_t *j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "type"), "PG_PROVIDER");
    cr_expect_gt(strlen(json_str(j, "pgCode")), 0);
    cr_expect_gt(strlen(json_str(j, "pgMessage")), 0);
    json_decref(j);
    reply_free(&r);

    add_fault("{\"type\":\"provider_error\",\"code\":\"F113\",\"message\":\"card declined\"}");
    r = portone_cancel_amount("pay_pg", PORTONE_KEY_A, 1000);
    cr_assert_eq(r.status, 502);
    j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "type"), "PG_PROVIDER");
    cr_expect_str_eq(json_str(j, "pgCode"), "F113");
    cr_expect_str_eq(json_str(j, "pgMessage"), "card declined");
    cr_expect_str_eq(json_str(j, "message"), "card declined");
    json_decref(j);
    reply_free(&r);
    /* Before the idempotency layer: nothing stored, the key now cancels. */
    r = portone_cancel_amount("pay_pg", PORTONE_KEY_A, 1000);
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_pg", 1, 1000);
}

Test(gateway_sim_portone_faults, rate_limited_carries_retry_after)
{
    add_portone("pay_429", 10000, "");
    add_fault("{\"type\":\"rate_limited\",\"retryAfter\":7}");
    struct reply r = portone_cancel_amount("pay_429", PORTONE_KEY_A, 1000);
    char buf[32];
    cr_expect_str_eq(header(&r, "Retry-After", buf, sizeof(buf)), "7");
    expect_portone_error(&r, 429, "TOO_MANY_REQUESTS");
}

Test(gateway_sim_portone_faults, apply_then_drop_cancels_once_and_the_key_replays_the_success)
{
    add_portone("pay_drop", 10000, "");
    add_fault("{\"type\":\"apply_then_drop\"}");
    struct reply r = portone_cancel_amount("pay_drop", PORTONE_KEY_A, 1000);
    cr_expect_neq(r.rc, CURLE_OK, "the answer should be lost");
    reply_free(&r);
    expect_ledger("pay_drop", 1, 1000);
    r = portone_cancel_amount("pay_drop", PORTONE_KEY_A, 1000);
    json_t *c = portone_cancellation(&r);
    cr_expect_str_eq(json_str(c, "status"), "SUCCEEDED");
    json_decref(c);
    expect_ledger("pay_drop", 1, 1000);
    char buf[64];
    cr_expect_str_eq(call_replays("pay_drop", buf, sizeof(buf)), "false,true");
}

Test(gateway_sim_portone_faults, hang_outlasts_the_client_and_applies_nothing)
{
    add_portone("pay_hang", 10000, "");
    add_fault("{\"type\":\"hang\",\"delayMs\":3000}");
    struct reply r =
        portone_cancel_as(PORTONE_AUTH, "pay_hang", PORTONE_KEY_A, "{\"reason\":\"r\"}", 500);
    cr_expect_eq(r.rc, CURLE_OPERATION_TIMEDOUT, "%s", curl_easy_strerror(r.rc));
    reply_free(&r);
    expect_ledger("pay_hang", 0, 0);
}

Test(gateway_sim_portone_faults, stored_faults_are_replayed_under_their_key)
{
    add_portone("pay_stored", 10000, "");
    add_fault("{\"type\":\"error_5xx\",\"stored\":true}");
    struct reply r = portone_cancel_amount("pay_stored", PORTONE_KEY_A, 1000);
    expect_portone_error(&r, 503, "SERVICE_UNAVAILABLE");
    r = portone_cancel_amount("pay_stored", PORTONE_KEY_A, 1000);
    expect_portone_error(&r, 503, "SERVICE_UNAVAILABLE");
    r = portone_cancel_amount("pay_stored", PORTONE_KEY_B, 1000);
    json_decref(portone_cancellation(&r));
    expect_ledger("pay_stored", 1, 1000);
}

Test(gateway_sim_portone_faults, inquiry_faults_apply_only_with_operation_inquiry)
{
    add_portone("pay_inq", 10000, "");
    add_fault("{\"type\":\"error_5xx\"}"); /* operation refund: not for the GET */
    json_decref(portone_payment("pay_inq"));
    admin("DELETE", "/_sim/faults", NULL, 200);

    add_fault("{\"type\":\"error_5xx\",\"operation\":\"inquiry\",\"paymentKey\":\"pay_inq\"}");
    add_fault("{\"type\":\"raw\",\"operation\":\"inquiry\",\"body\":\"{}\"}");
    add_fault("{\"type\":\"hang\",\"operation\":\"any\",\"delayMs\":100}");
    struct reply r = portone_inquire_as(PORTONE_AUTH, "pay_inq");
    expect_portone_error(&r, 503, "SERVICE_UNAVAILABLE");
    r = portone_inquire_as(PORTONE_AUTH, "pay_inq");
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{}");
    reply_free(&r);
    r = portone_inquire_as(PORTONE_AUTH, "pay_inq");
    expect_portone_error(&r, 504, "GATEWAY_TIMEOUT");
    json_decref(portone_payment("pay_inq"));
    expect_ledger("pay_inq", 0, 0);
}

Test(gateway_sim_portone_faults, unknown_paths_and_methods)
{
    struct reply r = http("GET", "/payments/", NULL, NULL, 0);
    cr_expect_eq(r.status, 404);
    reply_free(&r);
    r = http("GET", "/payments/p/refund", NULL, NULL, 0);
    cr_expect_eq(r.status, 404);
    reply_free(&r);
    static const char *const auth[] = {PORTONE_AUTH, NULL};
    r = http("DELETE", "/payments/p", auth, NULL, 0);
    cr_expect_eq(r.status, 405);
    reply_free(&r);
    r = http("GET", "/payments/p/cancel", auth, NULL, 0);
    cr_expect_eq(r.status, 405);
    reply_free(&r);
}
