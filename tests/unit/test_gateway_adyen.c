/*
 * Unit test of the Adyen driver (src/gateway/gateway_adyen.c): the refund
 * call it builds, what its answers mean (every row of its table block, from
 * the bodies Adyen documents and hostile ones), the inquiry that replays the
 * refund under the same key, and its keys of at most 64 characters.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

#define PSP "993617894903480A"

/* The refund every 2xx below answers: 2500 EUR of PSP. */
static const struct refund_request REQ = {"req-1", PSP, 2500, "EUR", true, "because",
                                          "key-1", 0,   0,    false, 0};

static const struct gateway_driver *drv(void)
{
    const struct gateway_driver *d = gateway_driver_of(GATEWAY_ADYEN);
    cr_assert_not_null(d);
    return d;
}

/* Build the refund of req into spec (cr_assert on failure). */
static void build(const struct refund_request *req, struct gateway_call_spec *spec)
{
    struct config_gateway cfg = {
        .kind = GATEWAY_ADYEN, .secret_key = "ak_test", .merchant_account = "CancelRetryTest"};
    char err[256];
    CURL *esc = curl_easy_init();
    char *auth = drv()->auth_header(&cfg);
    struct gateway_build_ctx ctx = {"https://checkout-test.adyen.com/v71", auth, esc, &cfg, drv()};

    cr_assert(drv()->build_refund(&ctx, req, spec, err, sizeof(err)), "%s", err);
    free(auth);
    curl_easy_cleanup(esc);
}

static const char *header_of(const struct gateway_call_spec *spec, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < spec->nheaders; i++)
        if (strncmp(spec->headers[i], name, n) == 0 && spec->headers[i][n] == ':')
            return spec->headers[i] + n + 2;
    return NULL;
}

Test(adyen_driver, refund_call_is_the_documented_one)
{
    struct gateway_call_spec spec;
    build(&REQ, &spec);

    cr_expect_str_eq(spec.method, "POST");
    cr_expect_str_eq(spec.url, "https://checkout-test.adyen.com/v71/payments/" PSP "/refunds");
    cr_expect_str_eq(spec.path_prefix, "/payments/");
    cr_expect_str_eq(header_of(&spec, "X-API-Key"), "ak_test");
    cr_expect_str_eq(header_of(&spec, "Idempotency-Key"), "key-1");
    cr_expect_str_eq(header_of(&spec, "Content-Type"), "application/json");
    cr_expect_null(header_of(&spec, "Authorization"));
    json_t *body = json_loads(spec.body, 0, NULL);
    cr_assert_not_null(body);
    json_t *amount = json_object_get(body, "amount");
    cr_expect_eq(json_integer_value(json_object_get(amount, "value")), 2500);
    cr_expect_str_eq(json_string_value(json_object_get(amount, "currency")), "EUR");
    cr_expect_str_eq(json_string_value(json_object_get(body, "merchantAccount")),
                     "CancelRetryTest");
    cr_expect_str_eq(json_string_value(json_object_get(body, "reference")), "req-1");
    json_decref(body);
    gateway_call_spec_clear(&spec);
}

Test(adyen_driver, long_request_id_is_referenced_by_its_marker)
{
    char id[121];
    struct refund_request req = REQ;
    struct gateway_call_spec spec;

    memset(id, 'r', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    req.request_id = id;
    build(&req, &spec);
    json_t *body = json_loads(spec.body, 0, NULL);
    const char *reference = json_string_value(json_object_get(body, "reference"));
    cr_assert_not_null(reference);
    cr_expect_leq(strlen(reference), 80);
    cr_expect_eq(strncmp(reference, "cr:#", 4), 0, "%s", reference);
    json_decref(body);
    gateway_call_spec_clear(&spec);
}

Test(adyen_driver, no_call_without_merchant_account_or_currency)
{
    struct config_gateway cfg = {.kind = GATEWAY_ADYEN, .secret_key = "ak_test"};
    struct refund_request req = REQ;
    struct gateway_call_spec spec;
    char err[256];
    CURL *esc = curl_easy_init();
    struct gateway_build_ctx ctx = {"https://x/v71", "X-API-Key: k", esc, &cfg, drv()};

    cr_expect_not(drv()->build_refund(&ctx, &req, &spec, err, sizeof(err)));
    cfg.merchant_account = "M";
    req.currency = NULL;
    cr_expect_not(drv()->build_refund(&ctx, &req, &spec, err, sizeof(err)));
    curl_easy_cleanup(esc);
}

Test(adyen_driver, keys_are_at_most_64_characters_and_distinct)
{
    char id[200], k1[300], k2[300], other[300];

    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    gateway_key_format(id, 1, drv()->key_min_len, drv()->key_max_len, k1, sizeof(k1));
    gateway_key_format(id, 2, drv()->key_min_len, drv()->key_max_len, k2, sizeof(k2));
    id[0] = 'y';
    gateway_key_format(id, 1, drv()->key_min_len, drv()->key_max_len, other, sizeof(other));
    cr_expect_leq(strlen(k1), 64);
    cr_expect_leq(strlen(k2), 64);
    cr_expect_str_neq(k1, k2);
    cr_expect_str_neq(k1, other);
    gateway_key_format("req-1", 1, drv()->key_min_len, drv()->key_max_len, k1, sizeof(k1));
    cr_expect_str_eq(k1, "req-1");
}

/* Criterion re-executes the binary per test: inline arrays, no pointers. */
struct acase {
    long status;
    char body[240];
    int curl_code;
    char rule[40];
    int verdict;
    bool no_refund;
};

#define RECEIVED(value, cur, psp)                                                                  \
    "{\"merchantAccount\":\"CancelRetryTest\",\"paymentPspReference\":\"" psp                      \
    "\",\"pspReference\":\"883617894906488A\",\"status\":\"received\",\"amount\":{\"currency\":"   \
    "\"" cur "\",\"value\":" #value "}}"
#define ERR(status, code, type, msg)                                                               \
    "{\"status\":" #status ",\"errorCode\":\"" code "\",\"message\":\"" msg                        \
    "\",\"errorType\":\"" type "\"}"

ParameterizedTestParameters(adyen_driver, every_row)
{
    static struct acase cases[] = {
        {201, RECEIVED(2500, "EUR", PSP), CURLE_OK, "adyen.201.received", GATEWAY_PENDING, false},
        /* 2xx that do not show our refund: inquire */
        {201, RECEIVED(2400, "EUR", PSP), CURLE_OK, "adyen.2xx.unverified", GATEWAY_UNVERIFIED,
         false},
        {201, RECEIVED(2500, "USD", PSP), CURLE_OK, "adyen.2xx.unverified", GATEWAY_UNVERIFIED,
         false},
        {201, RECEIVED(2500, "EUR", "OTHERPAYMENT0000"), CURLE_OK, "adyen.2xx.unverified",
         GATEWAY_UNVERIFIED, false},
        {200, "{\"status\":\"authorised\"}", CURLE_OK, "adyen.2xx.unverified", GATEWAY_UNVERIFIED,
         false},
        {201, "[accepted]", CURLE_OK, "adyen.2xx.unverified", GATEWAY_UNVERIFIED, false},
        {201, "", CURLE_OK, "adyen.2xx.unverified", GATEWAY_UNVERIFIED, false},
        {201,
         "{\"pspReference\":\"883617894906488A\",\"status\":\"received\",\"amount\":{\"currency\":"
         "\"EUR\",\"value\":1e300}}",
         CURLE_OK, "adyen.2xx.unverified", GATEWAY_UNVERIFIED, false},
        {401, ERR(401, "000", "security", "HTTP Status Response - Unauthorized"), CURLE_OK,
         "adyen.401.security", GATEWAY_CONFIG_FAULT, true},
        {401, "", CURLE_OK, "adyen.401.security", GATEWAY_CONFIG_FAULT, true},
        {403, ERR(403, "901", "security", "Invalid Merchant Account"), CURLE_OK,
         "adyen.403.security", GATEWAY_CONFIG_FAULT, true},
        {422, ERR(422, "010", "security", "Not allowed"), CURLE_OK, "adyen.security",
         GATEWAY_CONFIG_FAULT, true},
        {500, ERR(500, "905", "configuration", "Payment details are not supported"), CURLE_OK,
         "adyen.configuration", GATEWAY_CONFIG_FAULT, true},
        {422, ERR(422, "704", "validation", "request already processed or in progress"), CURLE_OK,
         "adyen.422.in_progress", GATEWAY_IN_PROGRESS, false},
        {422, "{\"error\":\"request already processed or in progress\"}", CURLE_OK,
         "adyen.422.other", GATEWAY_PERMANENT, false},
        {400, ERR(400, "702", "validation", "Unexpected input"), CURLE_OK, "adyen.400.validation",
         GATEWAY_PERMANENT, true},
        {422, ERR(422, "100", "validation", "Required object 'amount' is not provided."), CURLE_OK,
         "adyen.422.100", GATEWAY_PERMANENT, true},
        {422, ERR(422, "14_030", "validation", "Return URL is missing."), CURLE_OK,
         "adyen.422.14_030", GATEWAY_PERMANENT, true},
        /* amount above what is left: maybe our own earlier refund */
        {422, ERR(422, "137", "validation", "Invalid amount specified"), CURLE_OK,
         "adyen.422.other", GATEWAY_PERMANENT, false},
        {422, ERR(422, "167", "validation", "Original pspReference required"), CURLE_OK,
         "adyen.422.other", GATEWAY_PERMANENT, false},
        {422, "<html>", CURLE_OK, "adyen.422.other", GATEWAY_PERMANENT, false},
        {429, "", CURLE_OK, "adyen.429", GATEWAY_RETRYABLE, true},
        {404, ERR(404, "000", "validation", "not found"), CURLE_OK, "adyen.4xx.other",
         GATEWAY_PERMANENT, false},
        {500, ERR(500, "000", "internal", "internal error"), CURLE_OK, "adyen.5xx.api_error",
         GATEWAY_RETRYABLE, false},
        {503, "<html>bad gateway</html>", CURLE_OK, "adyen.5xx.no_body", GATEWAY_RETRYABLE, false},
        {302, "", CURLE_OK, "adyen.3xx.redirect", GATEWAY_CONFIG_FAULT, true},
        {0, "", CURLE_OPERATION_TIMEDOUT, "adyen.timeout", GATEWAY_RETRYABLE, false},
        {0, "", CURLE_COULDNT_CONNECT, "adyen.connection_error", GATEWAY_RETRYABLE, false},
        {0, "", CURLE_URL_MALFORMAT, "adyen.invalid_url", GATEWAY_CONFIG_FAULT, true},
        {0, "", CURLE_PEER_FAILED_VERIFICATION, "adyen.tls_error", GATEWAY_CONFIG_FAULT, true},
        {999, "", CURLE_OK, "adyen.other", GATEWAY_RETRYABLE, false},
    };
    return cr_make_param_array(struct acase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct acase *c, adyen_driver, every_row)
{
    struct gateway_answer a;

    gateway_classify(GATEWAY_ADYEN, c->status, c->body, c->curl_code, "curl error", NULL, &REQ, &a);
    cr_expect_str_eq(a.rule, c->rule, "%ld %s", c->status, c->body);
    cr_expect_eq(a.verdict, c->verdict, "%ld %s: %s", c->status, c->body,
                 gateway_verdict_name(a.verdict));
    cr_expect_eq(a.no_refund, c->no_refund, "%ld %s", c->status, c->body);
}

Test(adyen_driver, error_code_and_message_are_kept)
{
    struct gateway_answer a;

    gateway_classify(GATEWAY_ADYEN, 422, ERR(422, "137", "validation", "Invalid amount specified"),
                     CURLE_OK, NULL, NULL, &REQ, &a);
    cr_expect_str_eq(a.code, "137");
    cr_expect_str_eq(a.message, "Invalid amount specified");
    gateway_classify(GATEWAY_ADYEN, 403, ERR(403, "901", "security", "Invalid Merchant Account"),
                     CURLE_OK, NULL, NULL, &REQ, &a);
    cr_expect_str_eq(a.code, "security");
    cr_expect_str_eq(a.message, "Invalid Merchant Account (errorCode 901)");
}

Test(adyen_driver, every_status_has_a_row)
{
    long statuses[] = {0,   200, 201, 204, 302, 400, 401, 403,
                       404, 409, 418, 422, 429, 500, 599, 600};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        const struct gateway_rule *r = gateway_table_lookup(GATEWAY_ADYEN, statuses[i], "x");
        cr_expect_not_null(r);
        cr_expect_eq(r->kind, GATEWAY_ADYEN, "status %ld", statuses[i]);
    }
}

/* --- the inquiry: the refund again, under the same key --- */

Test(adyen_driver, inquiry_is_the_same_refund_under_the_same_key)
{
    struct gateway_call_spec refund, inquiry;
    struct config_gateway cfg = {
        .kind = GATEWAY_ADYEN, .secret_key = "ak_test", .merchant_account = "CancelRetryTest"};
    char err[256];
    CURL *esc = curl_easy_init();
    struct gateway_build_ctx ctx = {"https://x/v71", "X-API-Key: ak_test", esc, &cfg, drv()};

    cr_expect(drv()->inquiry_replays_refund);
    cr_expect_eq(drv()->inquiry_calls, 1);
    cr_expect_eq(drv()->completion, GATEWAY_COMPLETION_WEBHOOK);
    cr_assert(drv()->build_refund(&ctx, &REQ, &refund, err, sizeof(err)), "%s", err);
    cr_assert(drv()->build_inquiry(&ctx, &REQ, 0, &inquiry, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(inquiry.method, refund.method);
    cr_expect_str_eq(inquiry.url, refund.url);
    cr_expect_str_eq(inquiry.body, refund.body);
    cr_expect_str_eq(header_of(&inquiry, "Idempotency-Key"), "key-1");
    gateway_call_spec_clear(&refund);
    gateway_call_spec_clear(&inquiry);
    curl_easy_cleanup(esc);
}

static enum refund_finding judge(const char *body, struct gateway_inquiry *out)
{
    const char *bodies[1] = {body};
    memset(out, 0, sizeof(*out));
    drv()->judge(bodies, 1, &REQ, out);
    return out->finding;
}

Test(adyen_driver, replayed_201_is_pending_with_the_refund_reference)
{
    struct gateway_inquiry q;

    cr_expect_eq(judge(RECEIVED(2500, "EUR", PSP), &q), FINDING_PENDING);
    cr_expect_not_null(strstr(q.detail, "883617894906488A"), "%s", q.detail);
    cr_expect_eq(q.payment_amount, -1);
    cr_expect_eq(q.refunded_amount, -1);
    cr_expect_eq(q.cancellable_amount, -1);
}

Test(adyen_driver, replay_of_another_amount_or_payment_is_a_mismatch)
{
    struct gateway_inquiry q;

    cr_expect_eq(judge(RECEIVED(9999, "EUR", PSP), &q), FINDING_MISMATCH);
    cr_expect_eq(judge(RECEIVED(2500, "KRW", PSP), &q), FINDING_MISMATCH);
    cr_expect_eq(judge(RECEIVED(2500, "EUR", "OTHERPAYMENT0000"), &q), FINDING_MISMATCH);
}

Test(adyen_driver, anything_else_proves_nothing)
{
    struct gateway_inquiry q;

    cr_expect_eq(judge("not json", &q), FINDING_UNKNOWN);
    cr_expect_eq(judge("{}", &q), FINDING_UNKNOWN);
    cr_expect_eq(judge("[1,2]", &q), FINDING_UNKNOWN);
    cr_expect_eq(judge("{\"status\":\"refused\",\"pspReference\":\"x\",\"amount\":{\"currency\":"
                       "\"EUR\",\"value\":2500}}",
                       &q),
                 FINDING_UNKNOWN);
    cr_expect_eq(judge("{\"status\":\"received\",\"pspReference\":\"\",\"amount\":{\"currency\":"
                       "\"EUR\",\"value\":2500}}",
                       &q),
                 FINDING_UNKNOWN);
    memset(&q, 0, sizeof(q));
    drv()->judge(NULL, 0, &REQ, &q);
    cr_expect_eq(q.finding, FINDING_UNKNOWN);
}
