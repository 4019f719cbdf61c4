/*
 * The PortOne V2 driver's pure parts (src/gateway/gateway_portone.c): the
 * cancel and inquiry it builds, how it reads a 2xx, an error and an
 * inquiry's Payment (docs/gateways.md "PortOne V2"), including bodies a
 * hostile or broken server might send.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

static const struct gateway_driver *drv(void)
{
    const struct gateway_driver *d = gateway_driver_of(GATEWAY_PORTONE);
    cr_assert_not_null(d);
    return d;
}

/* The request every answer below is judged against: 10000 KRW by r-1. */
static struct refund_request request(void)
{
    struct refund_request req = {0};
    req.request_id = "r-1";
    req.payment_key = "pay_1";
    req.amount = 10000;
    req.currency = "KRW";
    req.reason = "booking cancelled";
    return req;
}

/* ---- the wire ---- */

Test(portone_wire, cancel_carries_amount_guard_marker_and_a_quoted_key)
{
    CURL *esc = curl_easy_init();
    struct config_gateway cfg = {0};
    cfg.secret_key = "portone_secret_local";
    char *auth = drv()->auth_header(&cfg);
    cr_expect_str_eq(auth, "Authorization: PortOne portone_secret_local");
    struct gateway_build_ctx ctx = {"http://127.0.0.1:1", auth, esc, &cfg, drv()};
    struct refund_request req = request();
    req.payment_key = "pay/ 1?";
    req.idempotency_key = "cancel-retry-request-r-1";
    struct gateway_call_spec spec;
    char err[128];

    cr_assert(drv()->build_refund(&ctx, &req, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.method, "POST");
    cr_expect_str_eq(spec.url, "http://127.0.0.1:1/payments/pay%2F%201%3F/cancel");
    cr_expect_str_eq(spec.path_prefix, "/payments/");
    cr_expect_str_eq(spec.body, "{\"reason\":\"booking cancelled [cr:r-1]\",\"amount\":10000}",
                     "no guard without an inquiry's balance");
    cr_expect_str_eq(spec.headers[0], "Content-Type: application/json");
    cr_expect_str_eq(spec.headers[1], "Idempotency-Key: \"cancel-retry-request-r-1\"");
    cr_expect_str_eq(spec.headers[2], auth);
    gateway_call_spec_clear(&spec);

    /* The guard from the inquiry, the store when configured, and a request
     * without a reason still marked. */
    req.has_guard = true;
    req.guard_amount = 0;
    req.reason = NULL;
    cfg.store_id = "store-1 x";
    cr_assert(drv()->build_refund(&ctx, &req, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.body, "{\"reason\":\"[cr:r-1]\",\"amount\":10000,"
                                "\"currentCancellableAmount\":0,\"storeId\":\"store-1 x\"}");
    gateway_call_spec_clear(&spec);

    cr_assert(drv()->build_inquiry(&ctx, &req, 0, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.method, "GET");
    cr_expect_str_eq(spec.url, "http://127.0.0.1:1/payments/pay%2F%201%3F?storeId=store-1%20x");
    cr_expect_null(spec.body);
    cr_expect_eq(spec.nheaders, 1);
    gateway_call_spec_clear(&spec);

    /* A payment id that cannot be one path segment is refused. */
    req.payment_key = "..";
    cr_expect_not(drv()->build_refund(&ctx, &req, &spec, err, sizeof(err)));
    free(auth);
    curl_easy_cleanup(esc);
}

Test(portone_wire, keys_are_16_to_256_characters)
{
    char buf[320];
    const struct gateway_driver *d = drv();
    cr_expect(d->key_quoted);
    cr_expect_str_eq(gateway_key_format("r-1", 1, d->key_min_len, d->key_max_len, buf, sizeof(buf)),
                     "cancel-retry-request-r-1");
    cr_expect_str_eq(gateway_key_format("r-1", 2, d->key_min_len, d->key_max_len, buf, sizeof(buf)),
                     "cancel-retry-request-r-1.2");
    cr_expect_str_eq(gateway_key_format("request-0123456789", 1, d->key_min_len, d->key_max_len,
                                        buf, sizeof(buf)),
                     "request-0123456789");
    char id[300];
    memset(id, 'a', 299);
    id[299] = '\0';
    gateway_key_format(id, 3, d->key_min_len, d->key_max_len, buf, sizeof(buf));
    cr_expect_leq(strlen(buf), 256);
    cr_expect_geq(strlen(buf), 16);
}

/* ---- answers ---- */

#define CANCELLATION(status, amount, reason)                                                       \
    "{\"cancellation\":{\"status\":\"" status "\",\"id\":\"c1\",\"totalAmount\":" #amount          \
    ",\"reason\":\"" reason "\",\"requestedAt\":\"2026-12-02T00:00:00Z\"}}"

static struct gateway_answer classify(long status, const char *body)
{
    struct gateway_answer a;
    struct refund_request req = request();
    gateway_classify(GATEWAY_PORTONE, status, body, 0, NULL, NULL, &req, &a);
    return a;
}

static void expect_row(long status, const char *body, const char *rule, enum gateway_verdict v)
{
    struct gateway_answer a = classify(status, body);
    cr_expect_str_eq(a.rule, rule, "%ld %s", status, body ? body : "(none)");
    cr_expect_eq(a.verdict, v, "%ld %s: %s", status, body ? body : "(none)",
                 gateway_verdict_name(a.verdict));
}

Test(portone_answers, a_2xx_is_a_success_only_with_our_cancellation)
{
    expect_row(200, CANCELLATION("SUCCEEDED", 10000, "booking cancelled [cr:r-1]"),
               "portone.200.cancellation.SUCCEEDED", GATEWAY_SUCCEEDED);
    expect_row(200, CANCELLATION("REQUESTED", 10000, "booking cancelled [cr:r-1]"),
               "portone.200.cancellation.REQUESTED", GATEWAY_PENDING);
    expect_row(200, CANCELLATION("FAILED", 10000, "[cr:r-1]"), "portone.200.cancellation.FAILED",
               GATEWAY_PERMANENT);
    /* Another amount, another request's marker, our marker not at the end,
     * a request whose id starts like ours, an unknown status, not JSON. */
    const char *unverified[] = {
        CANCELLATION("SUCCEEDED", 9999, "booking cancelled [cr:r-1]"),
        CANCELLATION("SUCCEEDED", 10000, "booking cancelled [cr:r-2]"),
        CANCELLATION("SUCCEEDED", 10000, "quoting [cr:r-1] here [cr:r-9]"),
        CANCELLATION("SUCCEEDED", 10000, "[cr:r-10]"),
        CANCELLATION("SUCCEEDED", 10000, "cr:r-1"),
        CANCELLATION("DONE", 10000, "[cr:r-1]"),
        "{\"cancellation\":{\"status\":\"SUCCEEDED\",\"totalAmount\":1e400,\"reason\":\"[cr:r-1]\"}"
        "}",
        "{\"cancellation\":[]}",
        "<html>ok</html>",
        "",
        NULL,
    };
    for (size_t i = 0; i < sizeof(unverified) / sizeof(unverified[0]); i++)
        expect_row(200, unverified[i], "portone.200.unverified", GATEWAY_UNVERIFIED);
}

Test(portone_answers, errors_by_type_and_status)
{
    expect_row(400, "{\"type\":\"INVALID_REQUEST\",\"message\":\"m\"}",
               "portone.400.INVALID_REQUEST", GATEWAY_PERMANENT);
    expect_row(401, "{\"type\":\"UNAUTHORIZED\",\"message\":\"m\"}", "portone.401.UNAUTHORIZED",
               GATEWAY_CONFIG_FAULT);
    expect_row(404, "{\"type\":\"PAYMENT_NOT_FOUND\",\"message\":\"m\"}",
               "portone.404.PAYMENT_NOT_FOUND", GATEWAY_PERMANENT);
    expect_row(409, "{\"type\":\"PAYMENT_ALREADY_CANCELLED\",\"message\":\"m\"}",
               "portone.409.PAYMENT_ALREADY_CANCELLED", GATEWAY_ALREADY_REFUNDED);
    expect_row(409, "{\"type\":\"CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN\",\"message\":\"m\"}",
               "portone.409.CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN", GATEWAY_RETRYABLE);
    expect_row(409, "{\"type\":\"IDEMPOTENCY_OUTSTANDING_REQUEST\",\"message\":\"m\"}",
               "portone.409.IDEMPOTENCY_OUTSTANDING_REQUEST", GATEWAY_IN_PROGRESS);
    expect_row(409, "{\"type\":\"SOMETHING_NEW\"}", "portone.409.other", GATEWAY_PERMANENT);
    expect_row(429, "{\"type\":\"TOO_MANY_REQUESTS\"}", "portone.429.too_many_requests",
               GATEWAY_RETRYABLE);
    expect_row(502, "{\"type\":\"PG_PROVIDER\",\"message\":\"m\",\"pgCode\":\"F1\"}",
               "portone.502.PG_PROVIDER", GATEWAY_RETRYABLE);
    expect_row(502, "<html>Bad Gateway</html>", "portone.5xx.no_body", GATEWAY_RETRYABLE);
    expect_row(503, "{\"type\":\"SERVICE_UNAVAILABLE\"}", "portone.5xx.gateway_error",
               GATEWAY_RETRYABLE);

    /* The guard's refusal proves nothing was cancelled by this call; the PG's
     * error does not, and is not the whole gateway's. */
    struct gateway_answer a =
        classify(409, "{\"type\":\"CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN\",\"message\":\"m\"}");
    cr_expect(a.no_refund);
    cr_expect(a.stored);
    a = classify(502, "{\"type\":\"PG_PROVIDER\",\"message\":\"m\"}");
    cr_expect_not(a.no_refund);
    cr_expect_not(a.gateway_wide);
}

Test(portone_answers, pg_provider_words_go_into_the_message)
{
    char code[64], message[256];
    drv()->parse_error("{\"type\":\"PG_PROVIDER\",\"message\":\"PG error\",\"pgCode\":\"F113\","
                       "\"pgMessage\":\"card declined\"}",
                       code, sizeof(code), message, sizeof(message));
    cr_expect_str_eq(code, "PG_PROVIDER");
    cr_expect_str_eq(message, "PG error (PG F113: card declined)");
    drv()->parse_error("{\"type\":\"FORBIDDEN\",\"message\":\"no\"}", code, sizeof(code), message,
                       sizeof(message));
    cr_expect_str_eq(code, "FORBIDDEN");
    cr_expect_str_eq(message, "no");
    const char *hostile[] = {"", "[", "{\"type\":7}", "{\"type\":\"PG_PROVIDER\",\"pgCode\":[]}",
                             NULL};
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
        drv()->parse_error(hostile[i], code, sizeof(code), message, sizeof(message));
}

/* ---- the inquiry's judge ---- */

#define PAYMENT(status, total, cancelled, currency, cancellations)                                 \
    "{\"status\":\"" status "\",\"id\":\"pay_1\",\"amount\":{\"total\":" #total                    \
    ",\"paid\":" #total ",\"cancelled\":" #cancelled "},\"currency\":\"" currency                  \
    "\",\"cancellations\":[" cancellations "]}"
#define C(status, amount, reason)                                                                  \
    "{\"status\":\"" status "\",\"id\":\"c\",\"totalAmount\":" #amount ",\"reason\":\"" reason "\"}"

static struct gateway_inquiry judge(const char *body)
{
    struct gateway_inquiry q;
    struct refund_request req = request();
    memset(&q, 0, sizeof(q));
    q.payment_amount = q.refunded_amount = q.cancellable_amount = -1;
    const char *bodies[] = {body};
    drv()->judge(bodies, 1, &req, &q);
    return q;
}

static void expect_finding(const char *body, enum refund_finding f)
{
    struct gateway_inquiry q = judge(body);
    cr_expect_eq(q.finding, f, "%s: %s (%s)", body ? body : "(none)",
                 gateway_finding_name(q.finding), q.detail);
}

Test(portone_inquiry, our_cancellation_by_its_marker)
{
    expect_finding(PAYMENT("CANCELLED", 10000, 10000, "KRW", C("SUCCEEDED", 10000, "x [cr:r-1]")),
                   FINDING_REFUNDED);
    expect_finding(PAYMENT("PAID", 10000, 0, "KRW", C("REQUESTED", 10000, "x [cr:r-1]")),
                   FINDING_PENDING);
    expect_finding(PAYMENT("PAID", 10000, 0, "KRW", C("FAILED", 10000, "x [cr:r-1]")),
                   FINDING_REFUND_FAILED);
    /* A failed generation and a later one that succeeded: refunded. */
    expect_finding(PAYMENT("PARTIAL_CANCELLED", 20000, 10000, "KRW",
                           C("FAILED", 10000, "[cr:r-1]") "," C("SUCCEEDED", 10000, "[cr:r-1]")),
                   FINDING_REFUNDED);
    /* An unknown status of ours is not settled: wait, never resend. */
    expect_finding(PAYMENT("PAID", 10000, 0, "KRW", C("SOMETHING", 10000, "[cr:r-1]")),
                   FINDING_PENDING);
    /* Ours, but of another amount. */
    expect_finding(
        PAYMENT("PARTIAL_CANCELLED", 20000, 5000, "KRW", C("SUCCEEDED", 5000, "[cr:r-1]")),
        FINDING_MISMATCH);
}

Test(portone_inquiry, no_cancellation_of_ours)
{
    struct gateway_inquiry q =
        judge(PAYMENT("PARTIAL_CANCELLED", 30000, 5000, "KRW", C("SUCCEEDED", 5000, "[cr:r-2]")));
    cr_expect_eq(q.finding, FINDING_NOT_REFUNDED, "%s", q.detail);
    cr_expect_eq(q.cancellable_amount, 25000, "the guard: total - cancelled");
    cr_expect_eq(q.payment_amount, 30000);
    cr_expect_eq(q.refunded_amount, 5000);
    cr_expect_str_eq(q.currency, "KRW");

    /* cancellations[] may be absent on a paid payment with none. */
    q = judge("{\"status\":\"PAID\",\"amount\":{\"total\":10000,\"cancelled\":0},"
              "\"currency\":\"KRW\"}");
    cr_expect_eq(q.finding, FINDING_NOT_REFUNDED, "%s", q.detail);
    cr_expect_eq(q.cancellable_amount, 10000);

    expect_finding(PAYMENT("CANCELLED", 10000, 10000, "KRW", C("SUCCEEDED", 10000, "[cr:r-2]")),
                   FINDING_ALREADY_REFUNDED);
    expect_finding(PAYMENT("PAID", 10000, 0, "USD", ""), FINDING_MISMATCH);
    /* Someone else's reason that quotes our marker is not ours. */
    expect_finding(PAYMENT("PARTIAL_CANCELLED", 30000, 10000, "KRW",
                           C("SUCCEEDED", 10000, "see [cr:r-1] [cr:r-2]")),
                   FINDING_NOT_REFUNDED);
}

Test(portone_inquiry, hostile_or_broken_payments_prove_nothing)
{
    const char *bodies[] = {
        NULL,
        "",
        "not json",
        "[]",
        "{\"status\":\"PAID\"}",
        "{\"status\":\"PAID\",\"amount\":{\"total\":10000,\"cancelled\":0}}",
        "{\"status\":\"PAID\",\"amount\":{\"total\":\"10000\",\"cancelled\":0},\"currency\":"
        "\"KRW\"}",
        "{\"status\":\"PAID\",\"amount\":{\"total\":1e300,\"cancelled\":0},\"currency\":\"KRW\"}",
        "{\"status\":\"PAID\",\"amount\":{\"total\":-5,\"cancelled\":0},\"currency\":\"KRW\"}",
        "{\"status\":\"PAID\",\"amount\":{\"total\":100,\"cancelled\":200},\"currency\":\"KRW\"}",
        /* cancellations required on a cancelled payment: without them, who
         * made the cancel is unknown. */
        "{\"status\":\"CANCELLED\",\"amount\":{\"total\":100,\"cancelled\":100},\"currency\":"
        "\"KRW\"}",
        "{\"status\":\"PARTIAL_CANCELLED\",\"amount\":{\"total\":100,\"cancelled\":10},"
        "\"currency\":\"KRW\",\"cancellations\":{}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct gateway_inquiry q = judge(bodies[i]);
        cr_expect_eq(q.finding, FINDING_UNKNOWN, "%s: %s", bodies[i] ? bodies[i] : "(none)",
                     gateway_finding_name(q.finding));
        cr_expect_eq(q.cancellable_amount, -1, "no guard value from %s",
                     bodies[i] ? bodies[i] : "(none)");
    }
}
