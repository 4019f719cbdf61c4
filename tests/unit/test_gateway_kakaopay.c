/*
 * The KakaoPay driver's pure parts (src/gateway/gateway_kakaopay.c): the
 * classification of its answers by the behaviour table, the cancel and
 * inquiry it builds, its reading of both error formats, and the judgement
 * of an order inquiry, hostile bodies included. docs/gateways.md,
 * "KakaoPay", is what these check against.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

#define KP      GATEWAY_KAKAOPAY
#define OK      CURLE_OK
#define MARK    "cr:req-1"
#define DRV     gateway_kakaopay_driver
#define SUCCESS GATEWAY_SUCCEEDED

/* The refund every case asks for: 3000 KRW of tid T1. */
static const struct refund_request REQ = {"req-1", "T1", 3000, "KRW", true, "because",
                                          NULL,    0,    0,    false, 0};

/* A cancel answer for T1 with status, approved total and payload (JSON). */
#define CANCEL(status, approved, payload)                                                          \
    "{\"aid\":\"A1\",\"tid\":\"T1\",\"cid\":\"TC0ONETIME\",\"status\":\"" status "\","             \
    "\"approved_cancel_amount\":{\"total\":" #approved "},\"payload\":" payload "}"

/* Criterion re-executes the binary per test: inline arrays, no pointers. */
struct kcase {
    long status;
    char body[300];
    int curl_code;
    int verdict;
    char code[64];
    char rule[48];
};

ParameterizedTestParameters(kakaopay, classify)
{
    static struct kcase cases[] = {
        {200, CANCEL("PART_CANCEL_PAYMENT", 3000, "\"" MARK "\""), OK, SUCCESS, "",
         "kakaopay.200.cancel"},
        {200, CANCEL("CANCEL_PAYMENT", 3000, "null"), OK, SUCCESS, "", "kakaopay.200.cancel"},
        /* Another amount, another request's mark, a status that is no
         * cancel, another payment: not our cancel. */
        {200, CANCEL("PART_CANCEL_PAYMENT", 2999, "\"" MARK "\""), OK, GATEWAY_UNVERIFIED,
         "UNVERIFIED_SUCCESS", "kakaopay.200.unverified"},
        {200, CANCEL("PART_CANCEL_PAYMENT", 3000, "\"cr:req-2\""), OK, GATEWAY_UNVERIFIED,
         "UNVERIFIED_SUCCESS", "kakaopay.200.unverified"},
        {200, CANCEL("SUCCESS_PAYMENT", 3000, "\"" MARK "\""), OK, GATEWAY_UNVERIFIED,
         "UNVERIFIED_SUCCESS", "kakaopay.200.unverified"},
        {200,
         "{\"tid\":\"T2\",\"status\":\"CANCEL_PAYMENT\",\"approved_cancel_amount\":{\"total\":"
         "3000}}",
         OK, GATEWAY_UNVERIFIED, "UNVERIFIED_SUCCESS", "kakaopay.200.unverified"},
        {200, "<html>ok</html>", OK, GATEWAY_UNVERIFIED, "UNVERIFIED_SUCCESS",
         "kakaopay.200.unverified"},
        {200, CANCEL("CANCEL_PAYMENT", 3000.5, "null"), OK, GATEWAY_UNVERIFIED,
         "UNVERIFIED_SUCCESS", "kakaopay.200.unverified"},
        /* Errors: the new format, the legacy one, numbers as text. */
        {401, "{\"error_code\":-401,\"error_message\":\"invalid key\"}", OK, GATEWAY_CONFIG_FAULT,
         "-401", "kakaopay.401.unauthorized"},
        {400, "{\"code\":-401,\"msg\":\"invalid key\"}", OK, GATEWAY_CONFIG_FAULT, "-401",
         "kakaopay.4xx.invalid_key"},
        {400, "{\"error_code\":-1,\"error_message\":\"internal\"}", OK, GATEWAY_RETRYABLE, "-1",
         "kakaopay.4xx.internal_error"},
        {400, "{\"code\":-7,\"msg\":\"maintenance\"}", OK, GATEWAY_RETRYABLE, "-7",
         "kakaopay.4xx.maintenance"},
        {400, "{\"error_code\":\"-10\",\"error_message\":\"quota\"}", OK, GATEWAY_RETRYABLE, "-10",
         "kakaopay.4xx.quota_exceeded"},
        {400, "{\"error_code\":-603,\"error_message\":\"timeout\"}", OK, GATEWAY_RETRYABLE, "-603",
         "kakaopay.4xx.internal_timeout"},
        {400,
         "{\"error_code\":-780,\"error_message\":\"approval failure!\",\"extras\":{"
         "\"method_result_code\":\"USER_LOCKED\",\"method_result_message\":\"진행중인 거래\"}}",
         OK, GATEWAY_RETRYABLE, "-780/USER_LOCKED", "kakaopay.4xx.user_locked"},
        {400,
         "{\"code\":-780,\"msg\":\"approval failure!\",\"extras\":{\"method_result_code\":"
         "\"USER_LOCKED\"}}",
         OK, GATEWAY_RETRYABLE, "-780/USER_LOCKED", "kakaopay.4xx.user_locked"},
        {400, "{\"error_code\":-780,\"error_message\":\"approval failure!\"}", OK,
         GATEWAY_PERMANENT, "-780", "kakaopay.4xx.other"},
        {400, "{\"error_code\":-797,\"error_message\":\"too much\"}", OK, GATEWAY_PERMANENT, "-797",
         "kakaopay.4xx.other"},
        {404, "not json", OK, GATEWAY_PERMANENT, "", "kakaopay.4xx.other"},
        {429, "{\"error_code\":-10,\"error_message\":\"quota\"}", OK, GATEWAY_RETRYABLE, "-10",
         "kakaopay.429.too_many_requests"},
        {503, "{\"error_code\":-9798,\"error_message\":\"maintenance\"}", OK, GATEWAY_RETRYABLE,
         "-9798", "kakaopay.5xx.gateway_error"},
        {502, "<html>bad gateway</html>", OK, GATEWAY_RETRYABLE, "", "kakaopay.5xx.gateway_error"},
        {302, "", OK, GATEWAY_CONFIG_FAULT, "", "kakaopay.3xx.redirect"},
        {0, "", CURLE_OPERATION_TIMEDOUT, GATEWAY_RETRYABLE, "TIMEOUT", "kakaopay.timeout"},
        {0, "", CURLE_GOT_NOTHING, GATEWAY_RETRYABLE, "CONNECTION_ERROR",
         "kakaopay.connection_error"},
        {0, "", CURLE_URL_MALFORMAT, GATEWAY_CONFIG_FAULT, "INVALID_URL", "kakaopay.invalid_url"},
        {0, "", CURLE_PEER_FAILED_VERIFICATION, GATEWAY_CONFIG_FAULT, "TLS_ERROR",
         "kakaopay.tls_error"},
        {799, "{}", OK, GATEWAY_RETRYABLE, "", "kakaopay.other"},
    };
    return cr_make_param_array(struct kcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct kcase *c, kakaopay, classify)
{
    struct gateway_answer a;
    gateway_classify(KP, c->status, c->body, c->curl_code, NULL, NULL, &REQ, &a);
    cr_expect_str_eq(a.rule, c->rule, "%ld %s: rule", c->status, c->body);
    cr_expect_eq((int)a.verdict, c->verdict, "%ld %s: %s", c->status, c->body,
                 gateway_verdict_name(a.verdict));
    cr_expect_str_eq(a.code, c->code, "%ld %s", c->status, c->body);
    cr_expect_not(a.stored, "%ld: KakaoPay stores nothing under a key", c->status);
}

Test(kakaopay, error_messages_and_operator_codes)
{
    char *codes[] = {"-780/USER_LOCKED"};
    const struct retry_policy policy = {.non_retryable_codes = codes, .n_non_retryable_codes = 1};
    struct gateway_answer a;

    gateway_classify(KP, 400,
                     "{\"error_code\":-780,\"error_message\":\"approval failure!\",\"extras\":{"
                     "\"method_result_code\":\"USER_LOCKED\",\"method_result_message\":\"busy\"}}",
                     OK, NULL, &policy, &REQ, &a);
    cr_expect_eq(a.verdict, GATEWAY_PERMANENT, "the operator's list stops the retries");
    cr_expect_str_eq(a.message, "approval failure!: busy");

    gateway_classify(KP, 400, "{\"code\":-2,\"msg\":\"bad cid\"}", OK, NULL, NULL, &REQ, &a);
    cr_expect_str_eq(a.code, "-2");
    cr_expect_str_eq(a.message, "bad cid");
}

Test(kakaopay, every_status_has_a_row)
{
    long statuses[] = {0, 200, 204, 302, 400, 401, 403, 404, 409, 422, 429, 500, 503, 600};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        const struct gateway_rule *r = gateway_table_lookup(KP, statuses[i], "WHATEVER");
        cr_expect_not_null(r);
        cr_expect_eq(r->kind, KP);
        cr_expect_eq(r->stored, GATEWAY_STORED_NO, "%s", r->id);
    }
}

/* --- the wire --- */

static struct config_gateway kp_cfg(const char *cid)
{
    struct config_gateway cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.kind = KP;
    cfg.secret_key = (char *)"kakaopay_secret_local";
    cfg.cid = (char *)cid;
    return cfg;
}

Test(kakaopay, cancel_request)
{
    struct config_gateway cfg = kp_cfg("TC0ONETIME");
    char *auth = DRV.auth_header(&cfg);
    cr_assert_not_null(auth);
    cr_expect_str_eq(auth, "Authorization: SECRET_KEY kakaopay_secret_local");
    /* Even a ctx without a driver sends no Idempotency-Key to KakaoPay. */
    struct gateway_build_ctx ctx = {"http://127.0.0.1:1", auth, NULL, &cfg, NULL};
    struct refund_request req = REQ;
    struct gateway_call_spec spec;
    char err[128];

    cr_assert(DRV.build_refund(&ctx, &req, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.method, "POST");
    cr_expect_str_eq(spec.url, "http://127.0.0.1:1/online/v1/payment/cancel");
    cr_expect_str_eq(spec.path_prefix, "/online/v1/payment/cancel");
    cr_expect_str_eq(spec.body, "{\"cid\":\"TC0ONETIME\",\"tid\":\"T1\",\"cancel_amount\":3000,"
                                "\"cancel_tax_free_amount\":0,\"payload\":\"cr:req-1\"}");
    cr_expect_eq(spec.body_len, strlen(spec.body));
    cr_expect_eq(spec.nheaders, 2);
    cr_expect_str_eq(spec.headers[0], "Content-Type: application/json");
    cr_expect_str_eq(spec.headers[1], auth);
    gateway_call_spec_clear(&spec);

    /* The balance the inquiry read goes as cancel_available_amount. */
    req.has_guard = true;
    req.guard_amount = 7000;
    cr_assert(DRV.build_refund(&ctx, &req, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.body, "{\"cid\":\"TC0ONETIME\",\"tid\":\"T1\",\"cancel_amount\":3000,"
                                "\"cancel_tax_free_amount\":0,\"cancel_available_amount\":7000,"
                                "\"payload\":\"cr:req-1\"}");
    gateway_call_spec_clear(&spec);

    cr_assert(DRV.build_inquiry(&ctx, &req, 0, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.method, "POST");
    cr_expect_str_eq(spec.url, "http://127.0.0.1:1/online/v1/payment/order");
    cr_expect_str_eq(spec.body, "{\"cid\":\"TC0ONETIME\",\"tid\":\"T1\"}");
    cr_expect_eq(spec.nheaders, 2);
    gateway_call_spec_clear(&spec);

    /* Without a cid nothing can be built (the config requires one). */
    struct config_gateway nocid = kp_cfg(NULL);
    ctx.cfg = &nocid;
    cr_expect_not(DRV.build_refund(&ctx, &req, &spec, err, sizeof(err)));
    cr_expect(strstr(err, "cid") != NULL, "%s", err);
    cr_expect_not(DRV.build_inquiry(&ctx, &req, 0, &spec, err, sizeof(err)));
    free(auth);
}

Test(kakaopay, driver_is_inquire_first_without_a_key)
{
    cr_expect_eq(gateway_driver_of(KP), &DRV);
    cr_expect_eq(DRV.safety, (unsigned)GATEWAY_SAFETY_INQUIRE_FIRST);
    cr_expect_eq(DRV.inquiry_calls, 1);
    cr_expect_null(DRV.missing_payment_code);
}

/* --- the order inquiry --- */

/* An order of 10000 for T1 with canceled total, available total, status and
 * the CANCEL actions (JSON objects, comma-separated). */
#define ORDER(status, canceled, available, cancels)                                                \
    "{\"tid\":\"T1\",\"cid\":\"TC0ONETIME\",\"status\":\"" status "\","                            \
    "\"amount\":{\"total\":10000},\"canceled_amount\":{\"total\":" #canceled "},"                  \
    "\"cancel_available_amount\":{\"total\":" #available "},\"payment_action_details\":["          \
    "{\"aid\":\"A0\",\"amount\":10000,\"payment_action_type\":\"PAYMENT\",\"payload\":"            \
    "null}" cancels "]}"
#define ACT(amount, payload)                                                                       \
    ",{\"aid\":\"A" #amount "\",\"amount\":" #amount ",\"payment_action_type\":\"CANCEL\","        \
    "\"payload\":" payload "}"

static struct gateway_inquiry judge(const char *body, const struct refund_request *req)
{
    struct gateway_inquiry q;
    const char *bodies[] = {body};
    memset(&q, 0, sizeof(q));
    DRV.judge(bodies, 1, req, &q);
    cr_expect_neq(q.detail[0], '\0', "no detail for %s", body);
    return q;
}

static enum refund_finding finding(const char *body)
{
    return judge(body, &REQ).finding;
}

Test(kakaopay, inquiry_finds_our_cancel_by_its_mark)
{
    struct gateway_inquiry q = judge(
        ORDER("PART_CANCEL_PAYMENT", 4000, 6000, ACT(1000, "\"x\"") ACT(3000, "\"" MARK "\"")),
        &REQ);
    cr_expect_eq(q.finding, FINDING_REFUNDED, "%s", q.detail);
    cr_expect_eq(q.payment_amount, 10000);
    cr_expect_eq(q.refunded_amount, 4000);
    cr_expect_str_eq(q.currency, "KRW");

    /* Twice: still ours, and said. */
    q = judge(ORDER("PART_CANCEL_PAYMENT", 6000, 4000,
                    ACT(3000, "\"" MARK "\"") ACT(3000, "\"" MARK "\"")),
              &REQ);
    cr_expect_eq(q.finding, FINDING_REFUNDED);
    cr_expect(strstr(q.detail, "TWICE") != NULL, "%s", q.detail);

    /* Our mark on another amount is not our refund as asked. */
    cr_expect_eq(finding(ORDER("PART_CANCEL_PAYMENT", 2000, 8000, ACT(2000, "\"" MARK "\""))),
                 FINDING_MISMATCH);
}

Test(kakaopay, inquiry_proves_no_cancel_of_ours_and_reads_the_balance)
{
    /* Another request's cancel of the same amount: marked, not ours. */
    struct gateway_inquiry q =
        judge(ORDER("PART_CANCEL_PAYMENT", 3000, 7000, ACT(3000, "\"cr:req-2\"")), &REQ);
    cr_expect_eq(q.finding, FINDING_NOT_REFUNDED, "%s", q.detail);
    cr_expect_eq(q.cancellable_amount, 7000, "the guard of the next cancel");

    q = judge(ORDER("SUCCESS_PAYMENT", 0, 10000, ""), &REQ);
    cr_expect_eq(q.finding, FINDING_NOT_REFUNDED);
    cr_expect_eq(q.cancellable_amount, 10000);
}

Test(kakaopay, inquiry_fully_cancelled_by_others_is_already_refunded)
{
    cr_expect_eq(finding(ORDER("CANCEL_PAYMENT", 10000, 0, ACT(10000, "\"cr:other\""))),
                 FINDING_ALREADY_REFUNDED);
}

Test(kakaopay, inquiry_mismatches)
{
    struct refund_request usd = REQ;
    usd.currency = "USD";
    cr_expect_eq(judge(ORDER("SUCCESS_PAYMENT", 0, 10000, ""), &usd).finding, FINDING_MISMATCH);
    struct refund_request big = REQ;
    big.amount = 20000;
    cr_expect_eq(judge(ORDER("SUCCESS_PAYMENT", 0, 10000, ""), &big).finding, FINDING_MISMATCH);
}

Test(kakaopay, inquiry_that_cannot_prove_none_of_ours_is_unknown)
{
    /* A cancel of our amount without a payload: ours if the payload was
     * dropped, or one made by hand. */
    cr_expect_eq(finding(ORDER("PART_CANCEL_PAYMENT", 3000, 7000, ACT(3000, "null"))),
                 FINDING_UNKNOWN);
    cr_expect_eq(finding(ORDER("PART_CANCEL_PAYMENT", 3000, 7000, ACT(3000, "\"\""))),
                 FINDING_UNKNOWN);
    /* ... unless another request of the payment with that amount made it. */
    struct refund_request other = REQ;
    other.same_amount_done = 1;
    cr_expect_eq(judge(ORDER("PART_CANCEL_PAYMENT", 3000, 7000, ACT(3000, "null")), &other).finding,
                 FINDING_NOT_REFUNDED);
    /* An unmarked cancel of another amount cannot be ours. */
    cr_expect_eq(finding(ORDER("PART_CANCEL_PAYMENT", 1000, 9000, ACT(1000, "null"))),
                 FINDING_NOT_REFUNDED);
    /* canceled_amount counts a cancel the list does not show. */
    cr_expect_eq(finding(ORDER("PART_CANCEL_PAYMENT", 3000, 7000, "")), FINDING_UNKNOWN);
}

Test(kakaopay, hostile_inquiry_bodies_are_unknown)
{
    static const char *const bodies[] = {
        "",
        "null",
        "[]",
        "{\"tid\":\"T1\"}",
        /* another payment's order */
        "{\"tid\":\"T2\",\"status\":\"SUCCESS_PAYMENT\",\"amount\":{\"total\":10000},"
        "\"canceled_amount\":{\"total\":0},\"cancel_available_amount\":{\"total\":10000},"
        "\"payment_action_details\":[]}",
        /* amounts that are no whole numbers */
        ORDER("SUCCESS_PAYMENT", 0, 1e300, ""),
        ORDER("SUCCESS_PAYMENT", -5, 10000, ""),
        ORDER("SUCCESS_PAYMENT", "0", 10000, ""),
        /* an action list that is not one, and entries that are no actions */
        "{\"tid\":\"T1\",\"status\":\"SUCCESS_PAYMENT\",\"amount\":{\"total\":10000},"
        "\"canceled_amount\":{\"total\":0},\"cancel_available_amount\":{\"total\":10000},"
        "\"payment_action_details\":{}}",
        ORDER("SUCCESS_PAYMENT", 0, 10000, ",7,{\"payment_action_type\":\"CANCEL\"}"),
        /* cancels that add up past any payment */
        ORDER("PART_CANCEL_PAYMENT", 5, 9000,
              ACT(9223372036854775807, "\"x\"") ACT(9223372036854775807, "\"y\"")),
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct gateway_inquiry q = judge(bodies[i], &REQ);
        cr_expect_eq(q.finding, FINDING_UNKNOWN, "%s: %s", bodies[i],
                     gateway_finding_name(q.finding));
    }
    struct gateway_inquiry q;
    memset(&q, 0, sizeof(q));
    DRV.judge(NULL, 0, &REQ, &q);
    cr_expect_eq(q.finding, FINDING_UNKNOWN);
}

Test(kakaopay, hostile_error_bodies_leave_codes_terminated)
{
    static const char *const bodies[] = {
        "{\"error_code\":1e999}",
        "{\"error_code\":{\"a\":1},\"error_message\":7}",
        "{\"code\":\"-780\",\"extras\":\"x\"}",
        "{\"code\":-780,\"extras\":{\"method_result_code\":"
        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}",
        "[1,2]",
        NULL,
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char code[64], message[256];
        memset(code, 'x', sizeof(code));
        memset(message, 'x', sizeof(message));
        DRV.parse_error(bodies[i], code, sizeof(code), message, sizeof(message));
        cr_expect(memchr(code, '\0', sizeof(code)) != NULL, "%s", bodies[i]);
        cr_expect(memchr(message, '\0', sizeof(message)) != NULL, "%s", bodies[i]);
    }
}
