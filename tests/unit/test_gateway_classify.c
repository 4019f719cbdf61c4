#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/http.h"
#include "gateway/gateway.h"
#include "gateway/gateway_internal.h"

/* Criterion re-executes the binary per test: inline arrays, no pointers. */
struct ccase {
    int kind;
    long status;
    char body[200];
    int curl_code;
    int verdict;
    char code[64];
    bool answered;
    bool breaker_failure;
};

/* The refund every 2xx below answers: 10000 KRW. */
static const struct refund_request REQ = {"req-1", "p", 10000, "KRW", false, "because",
                                          NULL,    0,   0,     false, 0};

#define TOSS   GATEWAY_TOSS
#define STRIPE GATEWAY_STRIPE
#define OK     CURLE_OK

ParameterizedTestParameters(classify, table)
{
    static struct ccase cases[] = {
        /* Toss */
        {TOSS, 200,
         "{\"paymentKey\":\"p\",\"status\":\"CANCELED\",\"balanceAmount\":0,\"currency\":\"KRW\","
         "\"cancels\":[{\"cancelAmount\":10000,\"cancelStatus\":\"DONE\"}]}",
         OK, GATEWAY_SUCCEEDED, "", true, false},
        /* a 2xx that does not show our cancel is not a success */
        {TOSS, 200, "{\"paymentKey\":\"p\",\"status\":\"CANCELED\",\"balanceAmount\":0}", OK,
         GATEWAY_UNVERIFIED, "UNVERIFIED_SUCCESS", true, false},
        {TOSS, 200,
         "{\"paymentKey\":\"p\",\"balanceAmount\":0,\"currency\":\"USD\","
         "\"cancels\":[{\"cancelAmount\":10000}]}",
         OK, GATEWAY_UNVERIFIED, "UNVERIFIED_SUCCESS", true, false},
        {TOSS, 200,
         "{\"paymentKey\":\"p\",\"balanceAmount\":0,\"currency\":\"KRW\","
         "\"cancels\":[{\"cancelAmount\":10000,\"cancelStatus\":\"IN_PROGRESS\"}]}",
         OK, GATEWAY_PENDING, "payment.cancel_pending", true, false},
        {TOSS, 201, "", OK, GATEWAY_UNVERIFIED, "UNVERIFIED_SUCCESS", true, false},
        {TOSS, 403, "{\"code\":\"NOT_CANCELABLE_PAYMENT\",\"message\":\"m\"}", OK,
         GATEWAY_PERMANENT, "NOT_CANCELABLE_PAYMENT", true, false},
        {TOSS, 403, "{\"code\":\"FORBIDDEN_CONSECUTIVE_REQUEST\",\"message\":\"m\"}", OK,
         GATEWAY_RETRYABLE, "FORBIDDEN_CONSECUTIVE_REQUEST", true, false},
        {TOSS, 400, "{\"code\":\"ALREADY_CANCELED_PAYMENT\",\"message\":\"m\"}", OK,
         GATEWAY_ALREADY_REFUNDED, "ALREADY_CANCELED_PAYMENT", true, false},
        {TOSS, 400, "{\"code\":\"NOT_CANCELABLE_AMOUNT\",\"message\":\"m\"}", OK, GATEWAY_PERMANENT,
         "NOT_CANCELABLE_AMOUNT", true, false},
        {TOSS, 404, "{\"code\":\"NOT_FOUND_PAYMENT\",\"message\":\"m\"}", OK, GATEWAY_PERMANENT,
         "NOT_FOUND_PAYMENT", true, false},
        {TOSS, 422, "{\"code\":\"INVALID_IDEMPOTENCY_KEY_REUSE\",\"message\":\"m\"}", OK,
         GATEWAY_PERMANENT, "INVALID_IDEMPOTENCY_KEY_REUSE", true, false},
        {TOSS, 401, "{\"code\":\"UNAUTHORIZED_KEY\",\"message\":\"m\"}", OK, GATEWAY_CONFIG_FAULT,
         "UNAUTHORIZED_KEY", true, false},
        {TOSS, 403, "{\"code\":\"FORBIDDEN_REQUEST\",\"message\":\"m\"}", OK, GATEWAY_CONFIG_FAULT,
         "FORBIDDEN_REQUEST", true, false},
        {TOSS, 500, "{\"code\":\"PROVIDER_ERROR\",\"message\":\"m\"}", OK, GATEWAY_RETRYABLE,
         "PROVIDER_ERROR", true, true},
        {TOSS, 400, "{\"code\":\"PROVIDER_ERROR\",\"message\":\"m\"}", OK, GATEWAY_RETRYABLE,
         "PROVIDER_ERROR", true, false},
        {TOSS, 409, "{\"code\":\"IDEMPOTENT_REQUEST_PROCESSING\",\"message\":\"m\"}", OK,
         GATEWAY_IN_PROGRESS, "IDEMPOTENT_REQUEST_PROCESSING", true, false},
        {TOSS, 429, "{\"code\":\"TOO_MANY_REQUESTS\",\"message\":\"m\"}", OK, GATEWAY_RETRYABLE,
         "TOO_MANY_REQUESTS", true, true},
        {TOSS, 503, "", OK, GATEWAY_RETRYABLE, "", true, true},
        {TOSS, 502, "<html>bad gateway</html>", OK, GATEWAY_RETRYABLE, "", true, true},
        {TOSS, 400, "not json", OK, GATEWAY_PERMANENT, "", true, false},
        {TOSS, 301, "", OK, GATEWAY_CONFIG_FAULT, "", true, false},
        {TOSS, 0, "", CURLE_OPERATION_TIMEDOUT, GATEWAY_RETRYABLE, "TIMEOUT", false, true},
        {TOSS, 0, "", CURLE_COULDNT_CONNECT, GATEWAY_RETRYABLE, "CONNECTION_ERROR", false, true},
        {TOSS, 0, "", CURLE_GOT_NOTHING, GATEWAY_RETRYABLE, "CONNECTION_ERROR", false, true},
        {TOSS, 0, "", CURLE_RECV_ERROR, GATEWAY_RETRYABLE, "CONNECTION_ERROR", false, true},
        {TOSS, 0, "", CURLE_COULDNT_RESOLVE_HOST, GATEWAY_RETRYABLE, "CONNECTION_ERROR", false,
         true},
        {TOSS, 0, "", CURLE_URL_MALFORMAT, GATEWAY_CONFIG_FAULT, "INVALID_URL", false, false},
        {TOSS, 0, "", CURLE_PEER_FAILED_VERIFICATION, GATEWAY_CONFIG_FAULT, "TLS_ERROR", false,
         false},
        /* Stripe */
        {STRIPE, 200,
         "{\"id\":\"re_1\",\"object\":\"refund\",\"status\":\"succeeded\",\"amount\":10000,"
         "\"currency\":\"krw\"}",
         OK, GATEWAY_SUCCEEDED, "", true, false},
        {STRIPE, 200,
         "{\"id\":\"re_1\",\"object\":\"refund\",\"status\":\"pending\",\"amount\":10000,"
         "\"currency\":\"krw\"}",
         OK, GATEWAY_PENDING, "refund.pending", true, false},
        {STRIPE, 200,
         "{\"id\":\"re_1\",\"object\":\"refund\",\"status\":\"requires_action\","
         "\"amount\":10000,\"currency\":\"krw\"}",
         OK, GATEWAY_PENDING, "refund.requires_action", true, false},
        {STRIPE, 200,
         "{\"id\":\"re_1\",\"object\":\"refund\",\"status\":\"failed\",\"amount\":10000,"
         "\"currency\":\"krw\"}",
         OK, GATEWAY_PERMANENT, "refund.failed", true, false},
        {STRIPE, 200,
         "{\"id\":\"re_1\",\"object\":\"refund\",\"status\":\"succeeded\",\"amount\":9999,"
         "\"currency\":\"krw\"}",
         OK, GATEWAY_UNVERIFIED, "UNVERIFIED_SUCCESS", true, false},
        {STRIPE, 200, "{\"ok\":true}", OK, GATEWAY_UNVERIFIED, "UNVERIFIED_SUCCESS", true, false},
        {STRIPE, 400,
         "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"charge_already_refunded\","
         "\"message\":\"m\"}}",
         OK, GATEWAY_ALREADY_REFUNDED, "charge_already_refunded", true, false},
        {STRIPE, 400,
         "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"amount_too_large\","
         "\"message\":\"m\"}}",
         OK, GATEWAY_PERMANENT, "amount_too_large", true, false},
        {STRIPE, 404,
         "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"resource_missing\","
         "\"message\":\"m\"}}",
         OK, GATEWAY_PERMANENT, "resource_missing", true, false},
        {STRIPE, 401, "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"bad key\"}}",
         OK, GATEWAY_CONFIG_FAULT, "invalid_request_error", true, false},
        {STRIPE, 409,
         "{\"error\":{\"type\":\"idempotency_error\",\"code\":\"idempotency_key_in_use\","
         "\"message\":\"m\"}}",
         OK, GATEWAY_IN_PROGRESS, "idempotency_key_in_use", true, false},
        {STRIPE, 400, "{\"error\":{\"type\":\"idempotency_error\",\"message\":\"reused\"}}", OK,
         GATEWAY_PERMANENT, "idempotency_error", true, false},
        {STRIPE, 409,
         "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"resource_already_exists\","
         "\"message\":\"m\"}}",
         OK, GATEWAY_RETRYABLE, "resource_already_exists", true, false},
        {STRIPE, 429,
         "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"rate_limit\",\"message\":"
         "\"m\"}}",
         OK, GATEWAY_RETRYABLE, "rate_limit", true, true},
        {STRIPE, 500, "{\"error\":{\"type\":\"api_error\",\"message\":\"m\"}}", OK,
         GATEWAY_RETRYABLE, "api_error", true, true},
        {STRIPE, 0, "", CURLE_OPERATION_TIMEDOUT, GATEWAY_RETRYABLE, "TIMEOUT", false, true},
        {STRIPE, 0, "", CURLE_SEND_ERROR, GATEWAY_RETRYABLE, "CONNECTION_ERROR", false, true},
        /* http.c refused libcurl's re-send on a fresh connection (http.h):
         * sent, unanswered, same key next time, like a timeout. */
        {TOSS, 0, "", CURLE_ABORTED_BY_CALLBACK, GATEWAY_RETRYABLE, "CONNECTION_ERROR", false,
         true},
        {STRIPE, 0, "", CURLE_ABORTED_BY_CALLBACK, GATEWAY_RETRYABLE, "CONNECTION_ERROR", false,
         true},
    };
    return cr_make_param_array(struct ccase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct ccase *c, classify, table)
{
    struct gateway_answer a;
    gateway_classify((enum gateway_kind)c->kind, c->status, c->body, c->curl_code, NULL, NULL, &REQ,
                     &a);
    const char *what = c->kind == STRIPE ? "stripe" : "toss";
    cr_expect_eq((int)a.verdict, c->verdict, "%s %ld %s curl %d: %s, want %s", what, c->status,
                 c->body, c->curl_code, gateway_verdict_name(a.verdict),
                 gateway_verdict_name((enum gateway_verdict)c->verdict));
    cr_expect_str_eq(a.code, c->code, "%s %ld %s", what, c->status, c->body);
    cr_expect_eq(a.answered, c->answered);
    cr_expect_eq(a.http_status, c->status);
    cr_expect_eq(a.retry_after_ms, -1);
    cr_expect_eq(gateway_answer_counts_as_failure(&a), c->breaker_failure,
                 "%s %ld curl %d: breaker failure", what, c->status, c->curl_code);
    if (c->verdict != GATEWAY_SUCCEEDED)
        cr_expect_neq(a.message[0], '\0', "%s %ld: no message", what, c->status);
}

Test(classify, messages_come_from_the_body_or_libcurl)
{
    struct gateway_answer a;
    gateway_classify(GATEWAY_TOSS, 404, "{\"code\":\"NOT_FOUND_PAYMENT\",\"message\":\"no such\"}",
                     CURLE_OK, NULL, NULL, &REQ, &a);
    cr_expect_str_eq(a.message, "no such");
    gateway_classify(GATEWAY_STRIPE, 500, "", CURLE_OK, NULL, NULL, &REQ, &a);
    cr_expect_str_eq(a.message, "http status 500");
    gateway_classify(GATEWAY_TOSS, 0, NULL, CURLE_OPERATION_TIMEDOUT,
                     "Operation timed out after 10001 milliseconds", NULL, &REQ, &a);
    cr_expect_str_eq(a.message, "Operation timed out after 10001 milliseconds");
    gateway_classify(GATEWAY_TOSS, 0, NULL, CURLE_COULDNT_CONNECT, NULL, NULL, &REQ, &a);
    cr_expect_str_eq(a.message, curl_easy_strerror(CURLE_COULDNT_CONNECT));
}

Test(classify, non_retryable_codes_stop_retries_only)
{
    char *codes[] = {"PROVIDER_ERROR", "TIMEOUT", "api_error", "ALREADY_CANCELED_PAYMENT",
                     "UNAUTHORIZED_KEY"};
    struct retry_policy p = {0};
    p.non_retryable_codes = codes;
    p.n_non_retryable_codes = sizeof(codes) / sizeof(codes[0]);
    struct gateway_answer a;

    gateway_classify(GATEWAY_TOSS, 500, "{\"code\":\"PROVIDER_ERROR\",\"message\":\"m\"}", CURLE_OK,
                     NULL, &p, &REQ, &a);
    cr_expect_eq(a.verdict, GATEWAY_PERMANENT);
    gateway_classify(GATEWAY_TOSS, 0, NULL, CURLE_OPERATION_TIMEDOUT, NULL, &p, &REQ, &a);
    cr_expect_eq(a.verdict, GATEWAY_PERMANENT);
    gateway_classify(GATEWAY_STRIPE, 500, "{\"error\":{\"type\":\"api_error\"}}", CURLE_OK, NULL,
                     &p, &REQ, &a);
    cr_expect_eq(a.verdict, GATEWAY_PERMANENT);
    /* Codes not listed keep their default. */
    gateway_classify(GATEWAY_TOSS, 503, "", CURLE_OK, NULL, &p, &REQ, &a);
    cr_expect_eq(a.verdict, GATEWAY_RETRYABLE);
    gateway_classify(GATEWAY_TOSS, 409,
                     "{\"code\":\"IDEMPOTENT_REQUEST_PROCESSING\",\"message\":\"m\"}", CURLE_OK,
                     NULL, &p, &REQ, &a);
    cr_expect_eq(a.verdict, GATEWAY_IN_PROGRESS);
    /* Listing a code never hides an already-refunded or a config fault. */
    gateway_classify(GATEWAY_TOSS, 400, "{\"code\":\"ALREADY_CANCELED_PAYMENT\",\"message\":\"m\"}",
                     CURLE_OK, NULL, &p, &REQ, &a);
    cr_expect_eq(a.verdict, GATEWAY_ALREADY_REFUNDED);
    gateway_classify(GATEWAY_TOSS, 401, "{\"code\":\"UNAUTHORIZED_KEY\",\"message\":\"m\"}",
                     CURLE_OK, NULL, &p, &REQ, &a);
    cr_expect_eq(a.verdict, GATEWAY_CONFIG_FAULT);
}

Test(classify, verdict_names)
{
    cr_expect_str_eq(gateway_verdict_name(GATEWAY_SUCCEEDED), "SUCCEEDED");
    cr_expect_str_eq(gateway_verdict_name(GATEWAY_ALREADY_REFUNDED), "ALREADY_REFUNDED");
    cr_expect_str_eq(gateway_verdict_name(GATEWAY_RETRYABLE), "RETRYABLE");
    cr_expect_str_eq(gateway_verdict_name(GATEWAY_PERMANENT), "PERMANENT");
    cr_expect_str_eq(gateway_verdict_name(GATEWAY_CONFIG_FAULT), "CONFIG_FAULT");
    cr_expect_str_eq(gateway_verdict_name(GATEWAY_PENDING), "PENDING");
    cr_expect_str_eq(gateway_verdict_name(GATEWAY_IN_PROGRESS), "IN_PROGRESS");
    cr_expect_str_eq(gateway_verdict_name(GATEWAY_UNVERIFIED), "UNVERIFIED");
}

/* --- Toss ALREADY_CANCELED_PAYMENT confirmation by inquiry --- */

struct rcase {
    long inq_status;
    int inq_curl;
    char inq_body[240];
    bool partial;
    long long amount;
    int verdict;
    char code[64];
};

#define PAYMENT(balance, cancels)                                                                  \
    "{\"paymentKey\":\"pk\",\"status\":\"PARTIAL_CANCELED\",\"totalAmount\":10000,"                \
    "\"balanceAmount\":" #balance ",\"currency\":\"KRW\",\"cancels\":[" cancels "]}"

ParameterizedTestParameters(toss_already_refunded, resolve)
{
    static struct rcase cases[] = {
        /* full cancel: confirmed only by a zero balance */
        {200, OK, PAYMENT(0, "{\"cancelAmount\":10000}"), false, 10000, GATEWAY_ALREADY_REFUNDED,
         "ALREADY_CANCELED_PAYMENT"},
        {200, OK, PAYMENT(4000, "{\"cancelAmount\":6000}"), false, 10000, GATEWAY_PERMANENT,
         "ALREADY_REFUNDED_UNCONFIRMED"},
        /* partial: the cancels' total covers this request's amount */
        {200, OK, PAYMENT(7000, "{\"cancelAmount\":2000},{\"cancelAmount\":1000}"), true, 3000,
         GATEWAY_ALREADY_REFUNDED, "ALREADY_CANCELED_PAYMENT"},
        {200, OK, PAYMENT(9000, "{\"cancelAmount\":1000}"), true, 3000, GATEWAY_PERMANENT,
         "ALREADY_REFUNDED_UNCONFIRMED"},
        {200, OK, PAYMENT(10000, ""), true, 3000, GATEWAY_PERMANENT,
         "ALREADY_REFUNDED_UNCONFIRMED"},
        /* the inquiry itself failed */
        {0, CURLE_OPERATION_TIMEDOUT, "", false, 10000, GATEWAY_RETRYABLE, "INQUIRY_FAILED"},
        {0, CURLE_COULDNT_CONNECT, "", true, 100, GATEWAY_RETRYABLE, "INQUIRY_FAILED"},
        {503, OK, "", false, 10000, GATEWAY_RETRYABLE, "INQUIRY_FAILED"},
        {401, OK, "{\"code\":\"UNAUTHORIZED_KEY\",\"message\":\"m\"}", false, 10000,
         GATEWAY_CONFIG_FAULT, "UNAUTHORIZED_KEY"},
        {404, OK, "{\"code\":\"NOT_FOUND_PAYMENT\",\"message\":\"m\"}", false, 10000,
         GATEWAY_PERMANENT, "ALREADY_REFUNDED_UNCONFIRMED"},
        {200, OK, "{\"unexpected\":true}", false, 10000, GATEWAY_PERMANENT,
         "ALREADY_REFUNDED_UNCONFIRMED"},
    };
    return cr_make_param_array(struct rcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct rcase *c, toss_already_refunded, resolve)
{
    struct gateway_answer a;
    gateway_classify(GATEWAY_TOSS, 400,
                     "{\"code\":\"ALREADY_CANCELED_PAYMENT\",\"message\":\"already\"}", CURLE_OK,
                     NULL, NULL, &REQ, &a);
    cr_assert_eq(a.verdict, GATEWAY_ALREADY_REFUNDED);

    /* What gateway.c does with the inquiry's HTTP response. */
    struct gateway_payment p;
    memset(&p, 0, sizeof(p));
    gateway_classify(GATEWAY_TOSS, c->inq_status, c->inq_body, c->inq_curl, NULL, NULL, NULL,
                     &p.answer);
    if (p.answer.verdict == GATEWAY_SUCCEEDED && !gateway_toss_parse_payment(c->inq_body, &p)) {
        p.answer.verdict = GATEWAY_PERMANENT;
        strcpy(p.answer.code, "INVALID_RESPONSE");
    }
    gateway_toss_resolve_already_refunded(&p, c->partial, c->amount, &a);
    cr_expect_eq((int)a.verdict, c->verdict, "inquiry %ld %s, %s %lld: %s", c->inq_status,
                 c->inq_body, c->partial ? "partial" : "full", c->amount,
                 gateway_verdict_name(a.verdict));
    cr_expect_str_eq(a.code, c->code);
    cr_expect_neq(a.message[0], '\0');
}

Test(toss_already_refunded, parses_the_payment_object)
{
    struct gateway_payment p;
    memset(&p, 0, sizeof(p));
    cr_assert(gateway_toss_parse_payment(
        PAYMENT(7000, "{\"cancelAmount\":2000},{\"cancelAmount\":1000}"), &p));
    cr_expect_eq(p.balance_amount, 7000);
    cr_expect_eq(p.total_amount, 10000);
    cr_expect_eq(p.canceled_amount, 3000);
    cr_expect_str_eq(p.status, "PARTIAL_CANCELED");
    cr_expect_str_eq(p.currency, "KRW");
    cr_expect_not(gateway_toss_parse_payment("nope", &p));
    cr_expect_not(gateway_toss_parse_payment(NULL, &p));
}

/* --- the wire formats --- */

Test(wire, toss_cancel_request)
{
    CURL *esc = curl_easy_init();
    char *auth = gateway_toss_auth_header("test_sk_toss_local");
    cr_assert_not_null(auth);
    cr_expect_str_eq(auth, "Authorization: Basic dGVzdF9za190b3NzX2xvY2FsOg==");
    struct gateway_build_ctx ctx = {"http://127.0.0.1:1", auth, esc, NULL, NULL};
    struct refund_request req = {"req-1", "pay/ key?", 3000, "KRW", true, "customer \"asked\"",
                                 NULL,    0,           0,    false, 0};
    struct gateway_call_spec spec;
    char err[128];

    cr_assert(gateway_toss_build_refund(&ctx, &req, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.method, "POST");
    cr_expect_str_eq(spec.url, "http://127.0.0.1:1/v1/payments/pay%2F%20key%3F/cancel");
    cr_expect_str_eq(spec.body,
                     "{\"cancelReason\":\"customer \\\"asked\\\"\",\"cancelAmount\":3000}");
    cr_expect_eq(spec.body_len, strlen(spec.body));
    cr_expect_eq(spec.nheaders, 3);
    cr_expect_str_eq(spec.headers[0], "Content-Type: application/json");
    cr_expect_str_eq(spec.headers[1], "Idempotency-Key: req-1");
    cr_expect_str_eq(spec.headers[2], auth);
    gateway_call_spec_clear(&spec);

    /* A full cancel names its amount too: never more than the request's
     * amount may move, whatever the balance is. A later key generation
     * goes in the header. */
    req.partial = false;
    req.idempotency_key = "req-1.2";
    cr_assert(gateway_toss_build_refund(&ctx, &req, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.body,
                     "{\"cancelReason\":\"customer \\\"asked\\\"\",\"cancelAmount\":3000}");
    cr_expect_str_eq(spec.headers[1], "Idempotency-Key: req-1.2");
    gateway_call_spec_clear(&spec);

    cr_assert(gateway_toss_build_inquiry(&ctx, "pk_1", &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.method, "GET");
    cr_expect_str_eq(spec.url, "http://127.0.0.1:1/v1/payments/pk_1");
    cr_expect_null(spec.body);
    gateway_call_spec_clear(&spec);
    free(auth);
    curl_easy_cleanup(esc);
}

Test(wire, stripe_refund_request)
{
    CURL *esc = curl_easy_init();
    char *auth = gateway_stripe_auth_header("sk_test_stripe_local");
    cr_expect_str_eq(auth, "Authorization: Bearer sk_test_stripe_local");
    struct gateway_build_ctx ctx = {"https://api.example", auth, esc, NULL, NULL};
    struct refund_request req = {"req-2", "pi_123&x=1", 1500, "USD", true, "a b", NULL, 0,
                                 0,       false,        0};
    struct gateway_call_spec spec;
    char err[128];

    cr_assert(gateway_stripe_build_refund(&ctx, &req, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.url, "https://api.example/v1/refunds");
    cr_expect_str_eq(spec.body, "payment_intent=pi_123%26x%3D1&amount=1500"
                                "&metadata%5BrequestId%5D=req-2"
                                "&metadata%5Bcancel_reason%5D=a%20b");
    cr_expect_str_eq(spec.headers[0], "Content-Type: application/x-www-form-urlencoded");
    cr_expect_str_eq(spec.headers[1], "Idempotency-Key: req-2");
    gateway_call_spec_clear(&spec);

    req.partial = false;
    req.reason = "";
    cr_assert(gateway_stripe_build_refund(&ctx, &req, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.body,
                     "payment_intent=pi_123%26x%3D1&amount=1500"
                     "&metadata%5BrequestId%5D=req-2",
                     "a full refund names its amount and our request too");
    gateway_call_spec_clear(&spec);
    free(auth);
    curl_easy_cleanup(esc);
}

/* --- http helpers --- */

Test(http, retry_after_seconds_and_dates)
{
    int64_t ms = -1;
    cr_expect(http_parse_retry_after("2", 0, &ms, NULL));
    cr_expect_eq(ms, 2000);
    cr_expect(http_parse_retry_after("0", 0, &ms, NULL));
    cr_expect_eq(ms, 0);
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
    cr_expect(http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 30, &ms, NULL));
    cr_expect_eq(ms, 30000);
    cr_expect(http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 30, &ms, NULL));
    cr_expect_eq(ms, 0, "a date in the past means now");
    cr_expect_not(http_parse_retry_after("", 0, &ms, NULL));
    cr_expect_not(http_parse_retry_after("soon", 0, &ms, NULL));
    cr_expect_not(http_parse_retry_after("-5", 0, &ms, NULL));
}

static void *wake_later(void *arg)
{
    usleep(100 * 1000);
    http_client_wakeup(arg);
    return NULL;
}

Test(http, wakeup_from_another_thread_ends_the_wait)
{
    char err[128];
    struct http_client *c = http_client_new(err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, wake_later, c), 0);
    int64_t t0 = mono_ms();
    cr_expect_eq(http_client_run(c, 5000, err, sizeof(err)), 0, "%s", err);
    int64_t took = mono_ms() - t0;
    pthread_join(th, NULL);
    cr_expect(took >= 50 && took < 2000, "woke after %lld ms, want ~100", (long long)took);
    cr_expect_eq(http_client_in_flight(c), 0);
    http_client_free(c);
    http_client_free(NULL);
}

static void count_done(const struct http_response *resp, void *arg)
{
    int *n = arg;
    cr_expect_eq(resp->status, 0);
    cr_expect_neq(resp->curl_code, CURLE_OK);
    cr_expect_neq(resp->curl_error[0], '\0');
    cr_expect_eq(resp->retry_after_ms, -1);
    (*n)++;
}

Test(http, unreachable_and_aborted_transfers_call_back_once)
{
    char err[128];
    struct http_client *c = http_client_new(err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    struct http_request req = HTTP_REQUEST_INIT;
    req.url = "http://127.0.0.1:1/nothing-listens-here";
    req.connect_timeout_ms = 1000;
    req.timeout_ms = 2000;
    int done = 0;
    cr_assert(http_client_submit(c, &req, count_done, &done, err, sizeof(err)), "%s", err);
    cr_expect_eq(http_client_in_flight(c), 1);
    for (int i = 0; i < 50 && done == 0; i++)
        cr_assert_geq(http_client_run(c, 100, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(done, 1);
    cr_expect_eq(http_client_in_flight(c), 0);

    /* Still queued when the client is freed: called back, aborted. */
    cr_assert(http_client_submit(c, &req, count_done, &done, err, sizeof(err)), "%s", err);
    http_client_free(c);
    cr_expect_eq(done, 2);
}

Test(http, bad_requests_are_refused_at_submit)
{
    char err[128] = "";
    struct http_client *c = http_client_new(err, sizeof(err));
    struct http_request req = HTTP_REQUEST_INIT;
    int done = 0;
    cr_expect_not(http_client_submit(c, &req, count_done, &done, err, sizeof(err)));
    cr_expect_neq(err[0], '\0');
    cr_expect_eq(http_client_in_flight(c), 0);
    http_client_free(c);
    cr_expect_eq(done, 0);
}

Test(wire, refund_start_refuses_what_would_break_the_request)
{
    char err[128];
    struct http_client *http = http_client_new(err, sizeof(err));
    cr_assert_not_null(http, "%s", err);
    struct config_gateway cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "toss";
    cfg.kind = GATEWAY_TOSS;
    cfg.base_url = "http://127.0.0.1:1/";
    cfg.secret_key = "test_sk_toss_local";
    cfg.tls_verify = true;
    struct gateway_client *gc = gateway_client_new(&cfg, http, err, sizeof(err));
    cr_assert_not_null(gc, "%s", err);
    cr_expect_str_eq(gateway_client_name(gc), "toss");

    struct refund_request req = {
        "req\r\nX-Evil: 1", "pk", 100, "KRW", false, "r", NULL, 0, 0, false, 0};
    cr_expect_not(gateway_refund_start(gc, &req, NULL, NULL, err, sizeof(err)));
    cr_expect_null(strstr(err, "test_sk"), "%s", err);
    req.request_id = "";
    cr_expect_not(gateway_refund_start(gc, &req, NULL, NULL, err, sizeof(err)));
    req.request_id = "req-1";
    req.partial = true;
    req.amount = 0;
    cr_expect_not(gateway_refund_start(gc, &req, NULL, NULL, err, sizeof(err)));
    cr_expect_eq(http_client_in_flight(http), 0);

    cfg.secret_key = "";
    cr_expect_null(gateway_client_new(&cfg, http, err, sizeof(err)));
    cr_expect_neq(err[0], '\0');
    gateway_client_free(gc);
    gateway_client_free(NULL);
    http_client_free(http);
}

/* --- the behaviour table and its document --- */

Test(table, every_row_is_documented_in_docs_gateways_md)
{
    FILE *f = fopen("docs/gateways.md", "r");
    cr_assert_not_null(f, "docs/gateways.md (tests run from the project root)");
    static char doc[256 * 1024];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    size_t nrows;
    const struct gateway_rule *rows = gateway_table_rows(&nrows);
    cr_assert_gt(nrows, 40);
    for (size_t i = 0; i < nrows; i++) {
        char quoted[128];
        snprintf(quoted, sizeof(quoted), "`%s`", rows[i].id);
        cr_expect_not_null(strstr(doc, quoted), "row %s is not in docs/gateways.md", rows[i].id);
        for (size_t j = 0; j < i; j++)
            cr_expect(strcmp(rows[i].id, rows[j].id) != 0, "row id %s twice", rows[i].id);
    }
}

Test(table, every_kind_answers_every_status)
{
    long statuses[] = {0,   200, 204, 302, 400, 401, 403, 404,
                       409, 418, 422, 429, 500, 502, 599, 600};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        cr_expect_not_null(gateway_table_lookup(GATEWAY_TOSS, statuses[i], "WHATEVER"));
        cr_expect_not_null(gateway_table_lookup(GATEWAY_STRIPE, statuses[i], ""));
    }
}

Test(table, nothing_unproven_is_a_success)
{
    size_t n;
    const struct gateway_rule *rows = gateway_table_rows(&n);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].verdict != GATEWAY_SUCCEEDED)
            continue;
        cr_expect(rows[i].status_lo >= 200 && rows[i].status_hi <= 299 && rows[i].code != NULL,
                  "%s: only a 2xx with a proven body shape may be a success", rows[i].id);
    }
}

/* --- inquiries: what the gateway's payment says about our refund --- */

#define TPAY(balance, cancels)                                                                     \
    "{\"paymentKey\":\"pk\",\"status\":\"PARTIAL_CANCELED\",\"totalAmount\":10000,"                \
    "\"balanceAmount\":" #balance ",\"currency\":\"KRW\",\"cancels\":[" cancels "]}"

static enum refund_finding toss_judge(const char *body, int64_t amount, int done, int open)
{
    struct gateway_payment p;
    struct refund_request req = {"r", "pk", amount, "KRW", true, "x", NULL, done, open, false, 0};
    char detail[256];
    memset(&p, 0, sizeof(p));
    cr_assert(gateway_toss_parse_payment(body, &p));
    return gateway_toss_judge(&p, &req, detail, sizeof(detail));
}

Test(inquiry, toss_counts_a_cancel_as_ours_only_beyond_the_other_requests)
{
    const char *one = TPAY(7000, "{\"cancelAmount\":3000,\"cancelStatus\":\"DONE\"}");
    cr_expect_eq(toss_judge(one, 3000, 0, 0), FINDING_REFUNDED);
    /* Another request of the same payment and amount already succeeded:
     * that cancel is its own, ours is not there. */
    cr_expect_eq(toss_judge(one, 3000, 1, 0), FINDING_NOT_REFUNDED);
    /* Another one may still have made it: nothing can be concluded. */
    cr_expect_eq(toss_judge(one, 3000, 0, 1), FINDING_UNKNOWN);
    cr_expect_eq(
        toss_judge(TPAY(4000, "{\"cancelAmount\":3000},{\"cancelAmount\":3000}"), 3000, 1, 0),
        FINDING_REFUNDED);
    cr_expect_eq(toss_judge(TPAY(10000, ""), 3000, 0, 0), FINDING_NOT_REFUNDED);
    cr_expect_eq(toss_judge(TPAY(7000, "{\"cancelAmount\":3000,\"cancelStatus\":\"IN_PROGRESS\"}"),
                            3000, 0, 0),
                 FINDING_PENDING);
    cr_expect_eq(toss_judge(TPAY(0, "{\"cancelAmount\":10000}"), 3000, 0, 0),
                 FINDING_ALREADY_REFUNDED);
}

Test(inquiry, toss_refuses_a_payment_in_another_currency)
{
    struct gateway_payment p;
    struct refund_request req = {"r", "pk", 3000, "USD", true, "x", NULL, 0, 0, false, 0};
    char detail[256];
    memset(&p, 0, sizeof(p));
    cr_assert(gateway_toss_parse_payment(TPAY(10000, ""), &p));
    cr_expect_eq(gateway_toss_judge(&p, &req, detail, sizeof(detail)), FINDING_MISMATCH);
}

#define SPI "{\"id\":\"pi_1\",\"object\":\"payment_intent\",\"amount\":5000,\"currency\":\"usd\"}"
#define SREF(amount, status, rid)                                                                  \
    "{\"object\":\"refund\",\"amount\":" #amount ",\"status\":\"" status "\","                     \
    "\"metadata\":{\"requestId\":\"" rid "\"}}"
#define SLIST(more, ...) "{\"object\":\"list\",\"has_more\":" #more ",\"data\":[" __VA_ARGS__ "]}"

static enum refund_finding stripe_judge(const char *pi, const char *list, int64_t amount,
                                        bool partial)
{
    struct gateway_inquiry q;
    struct refund_request req = {"req-9", "pi_1", amount, "USD", partial, "x",
                                 NULL,    0,      0,      false, 0};
    memset(&q, 0, sizeof(q));
    gateway_stripe_judge(pi, list, &req, &q);
    cr_expect_neq(q.detail[0], '\0');
    return q.finding;
}

Test(inquiry, stripe_finds_our_refund_by_its_metadata)
{
    cr_expect_eq(stripe_judge(SPI, SLIST(false, SREF(2000, "succeeded", "req-9")), 2000, true),
                 FINDING_REFUNDED);
    cr_expect_eq(stripe_judge(SPI, SLIST(false, SREF(2000, "pending", "req-9")), 2000, true),
                 FINDING_PENDING);
    cr_expect_eq(stripe_judge(SPI, SLIST(false, SREF(2000, "failed", "req-9")), 2000, true),
                 FINDING_REFUND_FAILED);
    /* a failed first generation and a succeeded second one: refunded */
    cr_expect_eq(
        stripe_judge(
            SPI, SLIST(false, SREF(2000, "succeeded", "req-9") "," SREF(2000, "failed", "req-9")),
            2000, true),
        FINDING_REFUNDED);
    /* someone else's refund of the same amount is not ours */
    cr_expect_eq(stripe_judge(SPI, SLIST(false, SREF(2000, "succeeded", "other")), 2000, true),
                 FINDING_NOT_REFUNDED);
    cr_expect_eq(stripe_judge(SPI, SLIST(false), 2000, true), FINDING_NOT_REFUNDED);
    /* our refund for another amount: never a success */
    cr_expect_eq(stripe_judge(SPI, SLIST(false, SREF(1999, "succeeded", "req-9")), 2000, true),
                 FINDING_MISMATCH);
    /* the whole payment refunded by others, for a full request */
    cr_expect_eq(stripe_judge(SPI, SLIST(false, SREF(5000, "succeeded", "x")), 5000, false),
                 FINDING_ALREADY_REFUNDED);
    /* more refunds than one page: cannot prove ours absent */
    cr_expect_eq(stripe_judge(SPI, SLIST(true, SREF(10, "succeeded", "x")), 2000, true),
                 FINDING_UNKNOWN);
    cr_expect_eq(stripe_judge("{}", SLIST(false), 2000, true), FINDING_UNKNOWN);
    cr_expect_eq(stripe_judge("{\"amount\":5000,\"currency\":\"eur\"}", SLIST(false), 2000, true),
                 FINDING_MISMATCH);
}

Test(inquiry, hostile_numbers_never_reach_a_cast)
{
    struct gateway_payment p;
    memset(&p, 0, sizeof(p));
    cr_assert(gateway_toss_parse_payment(
        "{\"balanceAmount\":1e300,\"totalAmount\":-1e300,\"cancels\":[{\"cancelAmount\":1e300}]}",
        &p));
    cr_expect_eq(p.balance_amount, -1);
    cr_expect_eq(p.canceled_amount, 0);
    /* Integers jansson reads exactly, summed: saturated, never wrapped. */
    cr_assert(gateway_toss_parse_payment(
        "{\"balanceAmount\":0,\"cancels\":[{\"cancelAmount\":9223372036854775807},"
        "{\"cancelAmount\":9223372036854775807}]}",
        &p));
    cr_expect_eq(p.canceled_amount, INT64_MAX);
    struct gateway_inquiry q;
    struct refund_request req = {"r", "pi", 2000, "USD", false, "x", NULL, 0, 0, false, 0};
    memset(&q, 0, sizeof(q));
    gateway_stripe_judge("{\"amount\":5000,\"currency\":\"usd\"}",
                         "{\"has_more\":false,\"data\":[{\"amount\":9223372036854775807,"
                         "\"status\":\"succeeded\"},{\"amount\":9223372036854775807,"
                         "\"status\":\"succeeded\"}]}",
                         &req, &q);
    cr_expect_eq(q.refunded_amount, INT64_MAX);
    cr_expect_eq(q.finding, FINDING_ALREADY_REFUNDED);
}

Test(inquiry, toss_virtual_account_refunds_settle_later)
{
    const char *pending = "{\"paymentKey\":\"pk\",\"balanceAmount\":7000,\"totalAmount\":10000,"
                          "\"currency\":\"KRW\",\"virtualAccount\":{\"refundStatus\":\"PENDING\"},"
                          "\"cancels\":[{\"cancelAmount\":3000,\"cancelStatus\":\"DONE\"}]}";
    const char *failed = "{\"paymentKey\":\"pk\",\"balanceAmount\":7000,\"totalAmount\":10000,"
                         "\"currency\":\"KRW\",\"virtualAccount\":{\"refundStatus\":\"FAILED\"},"
                         "\"cancels\":[{\"cancelAmount\":3000,\"cancelStatus\":\"DONE\"}]}";
    cr_expect_eq(toss_judge(pending, 3000, 0, 0), FINDING_PENDING);
    cr_expect_eq(toss_judge(failed, 3000, 0, 0), FINDING_REFUND_FAILED);
    struct refund_request req = {"r", "pk", 3000, "KRW", true, "x", NULL, 0, 0, false, 0};
    struct gateway_answer a;
    gateway_classify(GATEWAY_TOSS, 200, pending, CURLE_OK, NULL, NULL, &req, &a);
    cr_expect_eq(a.verdict, GATEWAY_PENDING);
    cr_expect_str_eq(a.rule, "toss.200.refund_pending");
    gateway_classify(GATEWAY_TOSS, 200, failed, CURLE_OK, NULL, NULL, &req, &a);
    cr_expect_eq(a.verdict, GATEWAY_PERMANENT);
    cr_expect_str_eq(a.rule, "toss.200.refund_failed");
    cr_expect_not(a.no_refund, "an inquiry confirms what the refund did");
}
