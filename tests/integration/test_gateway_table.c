/*
 * Every row of the behaviour table (src/gateway/gateway_table.c, documented in
 * docs/gateways.md) exercised end to end: for each row, gateway-sim is made
 * to give that answer to a real gateway client (gateway.h over a real
 * http_client), and the classified answer must name the row (its rule) and
 * carry the row's verdict. Rows the simulator cannot produce are listed
 * below with the reason; a last test checks that the rows produced and the
 * rows listed are all the rows, so a new row without a test fails here.
 *
 * Each case spawns its own simulator on an ephemeral port
 * (gateway_sim_fixture.h): no database, no Kafka. Toss, KakaoPay and PortOne
 * payments are in KRW, Stripe ones in USD, Adyen ones in EUR, and every
 * refund asks for its payment's currency.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gateway.h"
#include "gateway_sim_fixture.h"
#include "base/http.h"

#define T GATEWAY_TOSS
#define S GATEWAY_STRIPE
#define K GATEWAY_KAKAOPAY
#define P GATEWAY_PORTONE
#define A GATEWAY_ADYEN

#define PORTONE_SECRET "portone_secret_local" /* gateway-sim's default */
/* What the worker sends PortOne: a key of at least 16 characters. */
#define PORTONE_KEY "cancel-retry-request-req-row"

#define PAYMENT_AMOUNT 10000

/* How a case asks, beyond one plain refund. */
enum how {
    HOW_PLAIN = 0,
    HOW_REUSED_KEY,    /* a refund of 1000 first, then ours of 2000 under the same key */
    HOW_LONG_KEY,      /* an Idempotency-Key of 301 characters */
    HOW_LONG_REASON,   /* a reason of 501 characters (Stripe: metadata value too long) */
    HOW_BAD_SECRET,    /* the client has a wrong secret key */
    HOW_BAD_URL,       /* the client's base URL has a scheme libcurl cannot use */
    HOW_SHORT_TIMEOUT, /* a 300 ms client timeout (with a hang fault) */
    HOW_STALE_GUARD    /* PortOne: a balance guard the payment no longer has */
};

struct row_case {
    const char *rule; /* the row id it must produce */
    enum gateway_kind kind;
    enum how how;
    long refunded;             /* of the payment of PAYMENT_AMOUNT; -1 = no payment */
    long request;              /* the refund's amount; 0 = all of it (a full refund) */
    const char *refund_status; /* Stripe: the payment's refundStatus; NULL = succeeded */
    const char *fault;         /* a fault (JSON) for the refund, NULL = none */
    int raw_status;            /* a raw fault with this status and raw_body; 0 = none */
    const char *raw_body;
    const char *reason; /* NULL = "customer asked"; HOW_LONG_REASON overrides */
};

/* A documented error code, from a `permanent` fault with its status. */
#define CODE(k, id, st, code)                                                                      \
    {                                                                                              \
        id, k, HOW_PLAIN, 0, 3000, NULL,                                                           \
            "{\"type\":\"permanent\",\"status\":" #st ",\"code\":\"" code "\"}", 0, NULL, NULL     \
    }
#define TOSS_CODE(st, code) CODE(T, "toss." #st "." code, st, code)
/* The simulator's own answer, or one fault. */
#define FAULT(k, id, json)                                                                         \
    {                                                                                              \
        id, k, HOW_PLAIN, 0, 3000, NULL, json, 0, NULL, NULL                                       \
    }
/* A raw fault: status and body verbatim. */
#define RAW(k, id, st, body)                                                                       \
    {                                                                                              \
        id, k, HOW_PLAIN, 0, 3000, NULL, NULL, st, body, NULL                                      \
    }

#define HTML_502 "<html><body><h1>502 Bad Gateway</h1></body></html>"
/* A Toss payment whose cancel of 3000 is not DONE (no other cancelStatus is
 * documented; anything but DONE is pending). */
#define TOSS_CANCEL_NOT_DONE                                                                       \
    "{\"paymentKey\":\"pk_row\",\"orderId\":\"order-pk_row\",\"status\":\"PARTIAL_CANCELED\","     \
    "\"totalAmount\":10000,\"balanceAmount\":7000,\"currency\":\"KRW\",\"cancels\":[{"             \
    "\"cancelAmount\":3000,\"cancelReason\":\"customer asked\",\"transactionKey\":\"tx1\","        \
    "\"canceledAt\":\"2026-11-20T09:15:02.123Z\",\"cancelStatus\":\"IN_PROGRESS\"}]}"

/* A virtual-account payment: the cancel is done, the money follows later. */
#define TOSS_VA_REFUND(status)                                                                     \
    "{\"paymentKey\":\"pk_row\",\"orderId\":\"order-pk_row\",\"status\":\"PARTIAL_CANCELED\","     \
    "\"totalAmount\":10000,\"balanceAmount\":7000,\"currency\":\"KRW\","                           \
    "\"virtualAccount\":{\"refundStatus\":\"" status "\"},\"cancels\":[{"                          \
    "\"cancelAmount\":3000,\"cancelReason\":\"customer asked\",\"transactionKey\":\"tx1\","        \
    "\"canceledAt\":\"2026-11-20T09:15:02.123Z\",\"cancelStatus\":\"DONE\"}]}"

static const struct row_case cases[] = {
    /* --- Toss: answers the simulator gives on its own --- */
    {"toss.200.payment", T, HOW_PLAIN, 0, 3000, NULL, NULL, 0, NULL, NULL},
    /* Toss compares no bodies: the same key with another amount gets the
     * first answer, which shows no cancel of ours. */
    {"toss.200.unverified", T, HOW_REUSED_KEY, 0, 2000, NULL, NULL, 0, NULL, NULL},
    /* Fully cancelled before; the confirming inquiry finds the balance 0. */
    {"toss.400.ALREADY_CANCELED_PAYMENT", T, HOW_PLAIN, PAYMENT_AMOUNT, 0, NULL, NULL, 0, NULL,
     NULL},
    {"toss.400.INVALID_REQUEST", T, HOW_PLAIN, 0, 3000, NULL, NULL, 0, NULL, ""},
    {"toss.400.INVALID_IDEMPOTENCY_KEY", T, HOW_LONG_KEY, 0, 3000, NULL, NULL, 0, NULL, NULL},
    {"toss.401.UNAUTHORIZED_KEY", T, HOW_BAD_SECRET, 0, 3000, NULL, NULL, 0, NULL, NULL},
    {"toss.403.NOT_CANCELABLE_AMOUNT", T, HOW_PLAIN, 0, 20000, NULL, NULL, 0, NULL, NULL},
    {"toss.404.NOT_FOUND_PAYMENT", T, HOW_PLAIN, -1, 3000, NULL, NULL, 0, NULL, NULL},
    FAULT(T, "toss.409.IDEMPOTENT_REQUEST_PROCESSING", "{\"type\":\"in_progress\"}"),
    FAULT(T, "toss.400.PROVIDER_ERROR", "{\"type\":\"provider_error\"}"),
    FAULT(T, "toss.429.too_many_requests", "{\"type\":\"rate_limited\"}"),
    FAULT(T, "toss.5xx.gateway_error", "{\"type\":\"error_5xx\"}"),
    {"toss.timeout", T, HOW_SHORT_TIMEOUT, 0, 3000, NULL, "{\"type\":\"hang\",\"delayMs\":3000}", 0,
     NULL, NULL},
    /* The refund is made and the connection closed without an answer. */
    FAULT(T, "toss.connection_error", "{\"type\":\"apply_then_drop\"}"),
    /* The client's own refusal of its URL: nothing reaches the simulator. */
    {"toss.invalid_url", T, HOW_BAD_URL, 0, 3000, NULL, NULL, 0, NULL, NULL},

    /* --- Toss: documented codes the ledger does not produce --- */
    {"toss.400.ALREADY_REFUND_PAYMENT", T, HOW_PLAIN, PAYMENT_AMOUNT, 0, NULL,
     "{\"type\":\"permanent\",\"code\":\"ALREADY_REFUND_PAYMENT\"}", 0, NULL, NULL},
    TOSS_CODE(400, "NOT_MATCHES_REFUNDABLE_AMOUNT"),
    TOSS_CODE(400, "ALREADY_REFUNDING_PAYMENT"),
    TOSS_CODE(400, "INVALID_API_KEY"),
    TOSS_CODE(400, "INVALID_REFUND_AMOUNT"),
    TOSS_CODE(400, "REFUND_REJECTED"),
    TOSS_CODE(400, "EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT"),
    TOSS_CODE(400, "INVALID_REFUND_ACCOUNT_INFO"),
    TOSS_CODE(400, "INVALID_REFUND_ACCOUNT_NUMBER"),
    TOSS_CODE(400, "INVALID_BANK"),
    TOSS_CODE(400, "FORBIDDEN_BANK_REFUND_REQUEST"),
    TOSS_CODE(403, "FORBIDDEN_CONSECUTIVE_REQUEST"),
    TOSS_CODE(403, "NOT_AVAILABLE_BANK"),
    TOSS_CODE(403, "EXCEED_MAX_REFUND_AMOUNT"),
    TOSS_CODE(403, "EXCEED_CANCEL_LIMIT"),
    TOSS_CODE(403, "NOT_ALLOWED_REFUND_BANK"),
    TOSS_CODE(403, "NOT_SUPPORTED_REFUND"),
    TOSS_CODE(403, "INCORRECT_BASIC_AUTH_FORMAT"),
    TOSS_CODE(403, "NOT_CANCELABLE_PAYMENT"),
    TOSS_CODE(403, "EXCEED_MAX_REFUND_DUE"),
    TOSS_CODE(403, "NOT_ALLOWED_PARTIAL_REFUND"),
    TOSS_CODE(403, "NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT"),
    TOSS_CODE(403, "NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER"),
    TOSS_CODE(403, "FORBIDDEN_REQUEST"),
    /* Undocumented answers: the table's safe readings. No gateway documents
     * a 422 INVALID_IDEMPOTENCY_KEY_REUSE (gateway-sim used to send it). */
    TOSS_CODE(422, "INVALID_IDEMPOTENCY_KEY_REUSE"),
    CODE(T, "toss.403.other", 403, "SOME_NEW_403_CODE"),
    CODE(T, "toss.4xx.other", 400, "SOME_NEW_400_CODE"),
    RAW(T, "toss.200.cancel_pending", 200, TOSS_CANCEL_NOT_DONE),
    RAW(T, "toss.200.refund_pending", 200, TOSS_VA_REFUND("PENDING")),
    RAW(T, "toss.200.refund_failed", 200, TOSS_VA_REFUND("FAILED")),
    RAW(T, "toss.3xx.redirect", 302, NULL),
    RAW(T, "toss.5xx.no_body", 502, HTML_502),
    RAW(T, "toss.other", 799, "{}"),

    /* --- Stripe: answers the simulator gives on its own --- */
    {"stripe.200.refund.succeeded", S, HOW_PLAIN, 0, 3000, NULL, NULL, 0, NULL, NULL},
    {"stripe.200.refund.pending", S, HOW_PLAIN, 0, 3000, "pending", NULL, 0, NULL, NULL},
    {"stripe.200.refund.requires_action", S, HOW_PLAIN, 0, 3000, "requires_action", NULL, 0, NULL,
     NULL},
    {"stripe.200.refund.failed", S, HOW_PLAIN, 0, 3000, "failed", NULL, 0, NULL, NULL},
    {"stripe.200.refund.canceled", S, HOW_PLAIN, 0, 3000, "canceled", NULL, 0, NULL, NULL},
    {"stripe.400.charge_already_refunded", S, HOW_PLAIN, PAYMENT_AMOUNT, 0, NULL, NULL, 0, NULL,
     NULL},
    /* Stripe compares parameters: the same key with another amount. */
    {"stripe.400.idempotency_error", S, HOW_REUSED_KEY, 0, 2000, NULL, NULL, 0, NULL, NULL},
    {"stripe.400.amount_too_large", S, HOW_PLAIN, 0, 20000, NULL, NULL, 0, NULL, NULL},
    /* metadata[cancel_reason] longer than Stripe's 500 characters: a 400
     * without a code. */
    {"stripe.400.invalid_request_error", S, HOW_LONG_REASON, 0, 3000, NULL, NULL, 0, NULL, NULL},
    {"stripe.401.authentication", S, HOW_BAD_SECRET, 0, 3000, NULL, NULL, 0, NULL, NULL},
    {"stripe.404.resource_missing", S, HOW_PLAIN, -1, 3000, NULL, NULL, 0, NULL, NULL},
    FAULT(S, "stripe.409.idempotency_key_in_use", "{\"type\":\"in_progress\"}"),
    FAULT(S, "stripe.429.rate_limit", "{\"type\":\"rate_limited\"}"),
    FAULT(S, "stripe.429.lock_timeout", "{\"type\":\"rate_limited\",\"code\":\"lock_timeout\"}"),
    FAULT(S, "stripe.5xx.api_error", "{\"type\":\"provider_error\"}"),
    {"stripe.timeout", S, HOW_SHORT_TIMEOUT, 0, 3000, NULL, "{\"type\":\"hang\",\"delayMs\":3000}",
     0, NULL, NULL},
    FAULT(S, "stripe.connection_error", "{\"type\":\"apply_then_drop\"}"),
    {"stripe.invalid_url", S, HOW_BAD_URL, 0, 3000, NULL, NULL, 0, NULL, NULL},

    /* --- Stripe: documented statuses from a fault --- */
    CODE(S, "stripe.402.request_failed", 402, "card_declined"),
    FAULT(S, "stripe.403.permission", "{\"type\":\"permanent\",\"status\":403}"),
    FAULT(S, "stripe.424.external_dependency_failed", "{\"type\":\"permanent\",\"status\":424}"),
    /* Undocumented answers: the table's safe readings. */
    CODE(S, "stripe.409.lock_timeout", 409, "lock_timeout"),
    FAULT(S, "stripe.409.conflict", "{\"type\":\"permanent\",\"status\":409}"),
    FAULT(S, "stripe.4xx.other", "{\"type\":\"permanent\",\"status\":410}"),
    RAW(S, "stripe.409.idempotency_error", 409,
        "{\"error\":{\"type\":\"idempotency_error\",\"message\":\"conflict\"}}"),
    RAW(S, "stripe.200.unverified", 200, "{\"object\":\"balance\",\"available\":[]}"),
    RAW(S, "stripe.3xx.redirect", 301, NULL),
    RAW(S, "stripe.5xx.no_body", 502, HTML_502),
    RAW(S, "stripe.other", 799, "{}"),

    /* --- KakaoPay: answers the simulator gives on its own --- */
    {"kakaopay.200.cancel", K, HOW_PLAIN, 0, 3000, NULL, NULL, 0, NULL, NULL},
    {"kakaopay.401.unauthorized", K, HOW_BAD_SECRET, 0, 3000, NULL, NULL, 0, NULL, NULL},
    /* More than the balance: the simulator's -797 (KakaoPay's code for it
     * was not found). */
    {"kakaopay.4xx.other", K, HOW_PLAIN, 0, 20000, NULL, NULL, 0, NULL, NULL},
    FAULT(K, "kakaopay.429.too_many_requests", "{\"type\":\"rate_limited\"}"),
    FAULT(K, "kakaopay.4xx.internal_error", "{\"type\":\"provider_error\"}"),
    /* KakaoPay's own sample: -780 with USER_LOCKED extras. */
    FAULT(K, "kakaopay.4xx.user_locked", "{\"type\":\"in_progress\"}"),
    FAULT(K, "kakaopay.5xx.gateway_error", "{\"type\":\"error_5xx\"}"),
    {"kakaopay.timeout", K, HOW_SHORT_TIMEOUT, 0, 3000, NULL,
     "{\"type\":\"hang\",\"delayMs\":3000}", 0, NULL, NULL},
    FAULT(K, "kakaopay.connection_error", "{\"type\":\"apply_then_drop\"}"),
    {"kakaopay.invalid_url", K, HOW_BAD_URL, 0, 3000, NULL, NULL, 0, NULL, NULL},

    /* --- KakaoPay: Kakao's common codes, from a fault --- */
    CODE(K, "kakaopay.4xx.invalid_key", 400, "-401"),
    CODE(K, "kakaopay.4xx.maintenance", 400, "-7"),
    CODE(K, "kakaopay.4xx.quota_exceeded", 400, "-10"),
    CODE(K, "kakaopay.4xx.internal_timeout", 400, "-603"),
    /* Undocumented answers: the table's safe readings. */
    RAW(K, "kakaopay.200.unverified", 200, "{\"tid\":\"pk_row\",\"status\":\"SUCCESS_PAYMENT\"}"),
    RAW(K, "kakaopay.3xx.redirect", 302, NULL),
    RAW(K, "kakaopay.other", 799, "{}"),

    /* --- PortOne: answers the simulator gives on its own --- */
    {"portone.200.cancellation.SUCCEEDED", P, HOW_PLAIN, 0, 3000, NULL, NULL, 0, NULL, NULL},
    /* An asynchronous payment ("asyncCancel" = refundStatus pending). */
    {"portone.200.cancellation.REQUESTED", P, HOW_PLAIN, 0, 3000, "pending", NULL, 0, NULL, NULL},
    /* The key alone names a repeat: another amount under it gets the first
     * answer, which is not our cancellation. */
    {"portone.200.unverified", P, HOW_REUSED_KEY, 0, 2000, NULL, NULL, 0, NULL, NULL},
    /* A key past PortOne's 256 characters: 400, nothing stored. */
    {"portone.400.INVALID_REQUEST", P, HOW_LONG_KEY, 0, 3000, NULL, NULL, 0, NULL, NULL},
    {"portone.401.UNAUTHORIZED", P, HOW_BAD_SECRET, 0, 3000, NULL, NULL, 0, NULL, NULL},
    {"portone.404.PAYMENT_NOT_FOUND", P, HOW_PLAIN, -1, 3000, NULL, NULL, 0, NULL, NULL},
    {"portone.409.PAYMENT_ALREADY_CANCELLED", P, HOW_PLAIN, PAYMENT_AMOUNT, 0, NULL, NULL, 0, NULL,
     NULL},
    {"portone.409.CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN", P, HOW_STALE_GUARD, 0, 3000, NULL, NULL,
     0, NULL, NULL},
    {"portone.409.CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT", P, HOW_PLAIN, 0, 20000, NULL, NULL, 0,
     NULL, NULL},
    FAULT(P, "portone.409.IDEMPOTENCY_OUTSTANDING_REQUEST", "{\"type\":\"in_progress\"}"),
    FAULT(P, "portone.429.too_many_requests", "{\"type\":\"rate_limited\"}"),
    FAULT(P, "portone.502.PG_PROVIDER", "{\"type\":\"provider_error\"}"),
    FAULT(P, "portone.5xx.gateway_error", "{\"type\":\"error_5xx\"}"),
    {"portone.timeout", P, HOW_SHORT_TIMEOUT, 0, 3000, NULL, "{\"type\":\"hang\",\"delayMs\":3000}",
     0, NULL, NULL},
    FAULT(P, "portone.connection_error", "{\"type\":\"apply_then_drop\"}"),
    {"portone.invalid_url", P, HOW_BAD_URL, 0, 3000, NULL, NULL, 0, NULL, NULL},

    /* --- PortOne: documented types from a fault --- */
    CODE(P, "portone.400.NEGATIVE_PROMOTION_ADJUSTED_CANCEL_AMOUNT", 400,
         "NEGATIVE_PROMOTION_ADJUSTED_CANCEL_AMOUNT"),
    CODE(P, "portone.400.PROMOTION_DISCOUNT_RETAIN_OPTION_SHOULD_NOT_BE_CHANGED", 400,
         "PROMOTION_DISCOUNT_RETAIN_OPTION_SHOULD_NOT_BE_CHANGED"),
    CODE(P, "portone.403.FORBIDDEN", 403, "FORBIDDEN"),
    CODE(P, "portone.409.PAYMENT_NOT_PAID", 409, "PAYMENT_NOT_PAID"),
    CODE(P, "portone.409.SUM_OF_PARTS_EXCEEDS_CANCEL_AMOUNT", 409,
         "SUM_OF_PARTS_EXCEEDS_CANCEL_AMOUNT"),
    CODE(P, "portone.409.CANCEL_TAX_FREE_AMOUNT_EXCEEDS_CANCELLABLE_TAX_FREE_AMOUNT", 409,
         "CANCEL_TAX_FREE_AMOUNT_EXCEEDS_CANCELLABLE_TAX_FREE_AMOUNT"),
    CODE(P, "portone.409.CANCEL_TAX_AMOUNT_EXCEEDS_CANCELLABLE_TAX_AMOUNT", 409,
         "CANCEL_TAX_AMOUNT_EXCEEDS_CANCELLABLE_TAX_AMOUNT"),
    CODE(P, "portone.409.MAX_CANCEL_COUNT_REACHED", 409, "MAX_CANCEL_COUNT_REACHED"),
    /* Undocumented answers: the table's safe readings. */
    CODE(P, "portone.409.other", 409, "SOME_NEW_409_TYPE"),
    CODE(P, "portone.4xx.other", 418, "SOME_NEW_TYPE"),
    RAW(P, "portone.200.cancellation.FAILED", 200,
        "{\"cancellation\":{\"status\":\"FAILED\",\"id\":\"c1\",\"totalAmount\":3000,"
        "\"reason\":\"customer asked [cr:req-row]\",\"requestedAt\":\"2026-12-02T00:00:00Z\"}}"),
    RAW(P, "portone.3xx.redirect", 302, NULL),
    RAW(P, "portone.5xx.no_body", 502, HTML_502),
    RAW(P, "portone.other", 799, "{}"),

    /* --- Adyen: answers the simulator gives on its own --- */
    {"adyen.201.received", A, HOW_PLAIN, 0, 3000, NULL, NULL, 0, NULL, NULL},
    {"adyen.401.security", A, HOW_BAD_SECRET, 0, 3000, NULL, NULL, 0, NULL, NULL},
    /* A key over Adyen's 64 characters: 400 702, a validation error. */
    {"adyen.400.validation", A, HOW_LONG_KEY, 0, 3000, NULL, NULL, 0, NULL, NULL},
    /* More than is left: 422 137, whose meaning is not documented. */
    {"adyen.422.other", A, HOW_PLAIN, 0, 20000, NULL, NULL, 0, NULL, NULL},
    FAULT(A, "adyen.422.in_progress", "{\"type\":\"in_progress\"}"),
    FAULT(A, "adyen.429", "{\"type\":\"rate_limited\"}"),
    FAULT(A, "adyen.5xx.api_error", "{\"type\":\"error_5xx\"}"),
    {"adyen.timeout", A, HOW_SHORT_TIMEOUT, 0, 3000, NULL, "{\"type\":\"hang\",\"delayMs\":3000}",
     0, NULL, NULL},
    FAULT(A, "adyen.connection_error", "{\"type\":\"apply_then_drop\"}"),
    {"adyen.invalid_url", A, HOW_BAD_URL, 0, 3000, NULL, NULL, 0, NULL, NULL},

    /* --- Adyen: documented codes from a fault (errorType follows the code) --- */
    CODE(A, "adyen.403.security", 403, "901"),
    CODE(A, "adyen.security", 422, "010"),
    CODE(A, "adyen.configuration", 500, "905"),
    CODE(A, "adyen.422.100", 422, "100"),
    CODE(A, "adyen.422.14_030", 422, "14_030"),
    /* Undocumented answers: the table's safe readings. */
    CODE(A, "adyen.4xx.other", 410, "000"),
    RAW(A, "adyen.2xx.unverified", 200, "{\"status\":\"authorised\"}"),
    RAW(A, "adyen.3xx.redirect", 302, NULL),
    RAW(A, "adyen.5xx.no_body", 502, HTML_502),
    RAW(A, "adyen.other", 799, "{}"),
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* The rows the simulator cannot produce, and why. */
static const struct {
    const char *rule;
    const char *why;
} not_producible[] = {
    /* gateway-sim speaks plain HTTP only. An https URL pointing at it fails
     * the handshake with CURLE_SSL_CONNECT_ERROR, which the classifier reads
     * as a connection error; a certificate failure needs a TLS server. */
    {"toss.tls_error", "needs a TLS server with a bad certificate: gateway-sim has no TLS"},
    {"stripe.tls_error", "needs a TLS server with a bad certificate: gateway-sim has no TLS"},
    {"kakaopay.tls_error", "needs a TLS server with a bad certificate: gateway-sim has no TLS"},
    {"portone.tls_error", "needs a TLS server with a bad certificate: gateway-sim has no TLS"},
    {"adyen.tls_error", "needs a TLS server with a bad certificate: gateway-sim has no TLS"},
};

#define NLISTED (sizeof(not_producible) / sizeof(not_producible[0]))

static const struct gateway_rule *find_row(const char *id)
{
    size_t n;
    const struct gateway_rule *rows = gateway_table_rows(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].id, id) == 0)
            return &rows[i];
    return NULL;
}

static const char *currency_of(enum gateway_kind kind)
{
    return kind == A ? "EUR" : (kind == S ? "USD" : "KRW");
}

/* Make the simulator hold what case c needs: the payment and the fault. */
static void arrange(const struct gwsim *sim, const struct row_case *c, const char *pk)
{
    char json[512];
    const char *gateway = config_gateway_kind_name(c->kind);

    if (c->refunded >= 0) {
        snprintf(json, sizeof(json),
                 "{\"gateway\":\"%s\",\"paymentKey\":\"%s\",\"amount\":%d,\"currency\":\"%s\","
                 "\"refunded\":%ld%s%s%s}",
                 gateway, pk, PAYMENT_AMOUNT, currency_of(c->kind), c->refunded,
                 c->refund_status ? ",\"refundStatus\":\"" : "",
                 c->refund_status ? c->refund_status : "", c->refund_status ? "\"" : "");
        gwsim_admin_ok(sim, "POST", "/_sim/payments", json);
    }
    if (c->fault != NULL) {
        /* For this gateway's refunds only (the default operation): the
         * inquiry confirming a Toss ALREADY_* answer is left alone. */
        json_t *f = json_loads(c->fault, 0, NULL);
        cr_assert_not_null(f, "%s: bad fault JSON %s", c->rule, c->fault);
        json_object_set_new(f, "gateway", json_string(gateway));
        char *s = json_dumps(f, JSON_COMPACT);
        gwsim_fault(sim, s);
        free(s);
        json_decref(f);
    }
    if (c->raw_status != 0) {
        json_t *f = json_pack("{s:s, s:s, s:i}", "type", "raw", "gateway", gateway, "status",
                              c->raw_status);
        if (c->raw_body != NULL)
            json_object_set_new(f, "body", json_string(c->raw_body));
        char *s = json_dumps(f, JSON_COMPACT);
        gwsim_fault(sim, s);
        free(s);
        json_decref(f);
    }
}

ParameterizedTestParameters(gateway_table, row_is_produced)
{
    static size_t idx[NCASES];
    for (size_t i = 0; i < NCASES; i++)
        idx[i] = i;
    return cr_make_param_array(size_t, idx, NCASES);
}

/* The simulator gives case *i's answer; the client classifies it by the
 * case's row, with the row's verdict. */
ParameterizedTest(size_t *i, gateway_table, row_is_produced, .timeout = 30)
{
    const struct row_case *c = &cases[*i];
    const struct gateway_rule *row = find_row(c->rule);
    cr_assert_not_null(row, "%s is not a row of src/gateway/gateway_table.c", c->rule);
    cr_assert_eq(row->kind, c->kind, "%s: wrong gateway", c->rule);

    char err[256], key[302], reason[502];
    const char *pk = c->kind == S ? "pi_row" : "pk_row";
    static const char *const secrets[] = {[T] = GWSIM_TOSS_SECRET,
                                          [S] = GWSIM_STRIPE_SECRET,
                                          [K] = GWSIM_KAKAOPAY_SECRET,
                                          [P] = PORTONE_SECRET,
                                          [A] = GWSIM_ADYEN_KEY};
    struct gwsim sim;
    gwsim_start(&sim);
    arrange(&sim, c, pk);

    struct http_client *http = http_client_new(err, sizeof(err));
    cr_assert_not_null(http, "%s", err);
    struct config_gateway cfg = gwsim_gateway_cfg(
        &sim, c->kind, c->how == HOW_BAD_SECRET ? "sk_wrong_secret" : secrets[c->kind]);
    if (c->how == HOW_BAD_URL)
        cfg.base_url = (char *)"htp://127.0.0.1:1";
    if (c->how == HOW_SHORT_TIMEOUT)
        cfg.timeout_ms = 300;
    struct gateway_client *gc = gateway_client_new(&cfg, http, err, sizeof(err));
    cr_assert_not_null(gc, "%s", err);

    struct refund_request req = {
        .request_id = "req-row",
        .payment_key = pk,
        .amount = c->request ? c->request : PAYMENT_AMOUNT,
        .currency = currency_of(c->kind),
        .partial = c->request != 0,
        .reason = c->reason ? c->reason : "customer asked",
    };
    if (c->kind == P) {
        req.idempotency_key = PORTONE_KEY;
        req.has_guard = c->how == HOW_STALE_GUARD;
        req.guard_amount = PAYMENT_AMOUNT - 1;
    }
    if (c->how == HOW_LONG_KEY) {
        memset(key, 'k', 301);
        key[301] = '\0';
        req.idempotency_key = key;
    }
    if (c->how == HOW_LONG_REASON) {
        memset(reason, 'r', 501);
        reason[501] = '\0';
        req.reason = reason;
    }
    if (c->how == HOW_REUSED_KEY) {
        struct refund_request first = req;
        first.amount = 1000;
        struct gateway_answer a = gwsim_refund(http, gc, &first);
        cr_assert_eq(a.verdict, GATEWAY_SUCCEEDED, "%s: the first refund: %s %s", c->rule,
                     gateway_verdict_name(a.verdict), a.message);
    }

    struct gateway_answer a = gwsim_refund(http, gc, &req);
    cr_expect_str_eq(a.rule != NULL ? a.rule : "(none)", row->id,
                     "%s: classified by %s (http %ld, code \"%s\": %s)", c->rule,
                     a.rule != NULL ? a.rule : "(none)", a.http_status, a.code, a.message);
    cr_expect_eq(a.verdict, row->verdict, "%s: verdict %s, the row says %s (code \"%s\": %s)",
                 c->rule, gateway_verdict_name(a.verdict), gateway_verdict_name(row->verdict),
                 a.code, a.message);

    http_client_free(http);
    gateway_client_free(gc);
    gwsim_stop(&sim);
}

static bool produced(const char *id)
{
    for (size_t i = 0; i < NCASES; i++)
        if (strcmp(cases[i].rule, id) == 0)
            return true;
    return false;
}

static bool listed(const char *id)
{
    for (size_t i = 0; i < NLISTED; i++)
        if (strcmp(not_producible[i].rule, id) == 0)
            return true;
    return false;
}

/* Produced and listed rows are all the rows, each exactly once, and name
 * only rows that exist. */
Test(gateway_table, every_row_is_produced_or_listed)
{
    size_t n;
    const struct gateway_rule *rows = gateway_table_rows(&n);
    for (size_t i = 0; i < n; i++) {
        bool p = produced(rows[i].id), l = listed(rows[i].id);
        cr_expect(p || l, "row %s is neither produced by a case nor listed as not producible",
                  rows[i].id);
        cr_expect(!(p && l), "row %s is both produced and listed", rows[i].id);
    }
    for (size_t i = 0; i < NCASES; i++) {
        cr_expect_not_null(find_row(cases[i].rule), "case %s names no row", cases[i].rule);
        for (size_t j = 0; j < i; j++)
            cr_expect(strcmp(cases[i].rule, cases[j].rule) != 0, "row %s has two cases",
                      cases[i].rule);
    }
    for (size_t i = 0; i < NLISTED; i++) {
        cr_expect_not_null(find_row(not_producible[i].rule), "listed %s names no row",
                           not_producible[i].rule);
        cr_expect_neq(not_producible[i].why[0], '\0', "%s: no reason", not_producible[i].rule);
    }
    cr_log_info("%zu rows: %zu produced by gateway-sim or the client, %zu listed", n, NCASES,
                NLISTED);
}
