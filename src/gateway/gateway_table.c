/*
 * gateway_table: see gateway_table.h. Rows are tried in order, so specific
 * codes come before the catch-all rows of their status range.
 */
#include "gateway/gateway_table.h"

#include <string.h>

#define T   GATEWAY_TOSS
#define S   GATEWAY_STRIPE
#define K   GATEWAY_KAKAOPAY
#define P   GATEWAY_PORTONE
#define A   GATEWAY_ADYEN
#define YES GATEWAY_STORED_YES
#define NO  GATEWAY_STORED_NO
#define UNK GATEWAY_STORED_UNKNOWN

/* clang-format off */
static const struct gateway_rule rows[] = {
    /* id                                          kind status    code                                    verdict                    stored no_refund wide */

    /* --- Toss Payments --- */
    {"toss.200.payment",                             T, 200, 299, "payment",                          GATEWAY_SUCCEEDED,        YES, false, false},
    {"toss.200.cancel_pending",                      T, 200, 299, "payment.cancel_pending",           GATEWAY_PENDING,          YES, false, false},
    {"toss.200.refund_pending",                      T, 200, 299, "payment.refund_pending",           GATEWAY_PENDING,          YES, false, false},
    {"toss.200.refund_failed",                       T, 200, 299, "payment.refund_failed",            GATEWAY_PERMANENT,        YES, false, false},
    {"toss.200.unverified",                          T, 200, 299, NULL,                               GATEWAY_UNVERIFIED,       YES, false, false},
    {"toss.400.ALREADY_CANCELED_PAYMENT",            T, 400, 400, "ALREADY_CANCELED_PAYMENT",         GATEWAY_ALREADY_REFUNDED, YES, false, false},
    {"toss.400.ALREADY_REFUND_PAYMENT",              T, 400, 400, "ALREADY_REFUND_PAYMENT",           GATEWAY_ALREADY_REFUNDED, YES, false, false},
    {"toss.400.PROVIDER_ERROR",                      T, 400, 499, "PROVIDER_ERROR",                   GATEWAY_RETRYABLE,        UNK, false, false},
    {"toss.400.INVALID_REQUEST",                     T, 400, 400, "INVALID_REQUEST",                  GATEWAY_PERMANENT,        NO,  true,  false},
    {"toss.400.NOT_MATCHES_REFUNDABLE_AMOUNT",       T, 400, 400, "NOT_MATCHES_REFUNDABLE_AMOUNT",    GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.400.ALREADY_REFUNDING_PAYMENT",           T, 400, 400, "ALREADY_REFUNDING_PAYMENT",        GATEWAY_RETRYABLE,        UNK, false, false},
    {"toss.400.INVALID_IDEMPOTENCY_KEY",             T, 400, 400, "INVALID_IDEMPOTENCY_KEY",          GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"toss.400.INVALID_API_KEY",                     T, 400, 400, "INVALID_API_KEY",                  GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"toss.400.INVALID_REFUND_AMOUNT",               T, 400, 400, "INVALID_REFUND_AMOUNT",            GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.400.REFUND_REJECTED",                     T, 400, 400, "REFUND_REJECTED",                  GATEWAY_PERMANENT,        UNK, false, false},
    {"toss.400.EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT", T, 400, 400, "EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT", GATEWAY_PERMANENT,   UNK, true,  false},
    {"toss.400.INVALID_REFUND_ACCOUNT_INFO",         T, 400, 400, "INVALID_REFUND_ACCOUNT_INFO",      GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.400.INVALID_REFUND_ACCOUNT_NUMBER",       T, 400, 400, "INVALID_REFUND_ACCOUNT_NUMBER",    GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.400.INVALID_BANK",                        T, 400, 400, "INVALID_BANK",                     GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.400.FORBIDDEN_BANK_REFUND_REQUEST",       T, 400, 400, "FORBIDDEN_BANK_REFUND_REQUEST",    GATEWAY_PERMANENT,        UNK, false, false},
    {"toss.401.UNAUTHORIZED_KEY",                    T, 401, 401, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"toss.403.FORBIDDEN_CONSECUTIVE_REQUEST",       T, 403, 403, "FORBIDDEN_CONSECUTIVE_REQUEST",    GATEWAY_RETRYABLE,        UNK, false, false},
    /* More than the balance: possibly because our own earlier cancel took
     * it. Not proof of "no refund": an inquiry decides. */
    {"toss.403.NOT_CANCELABLE_AMOUNT",               T, 403, 403, "NOT_CANCELABLE_AMOUNT",            GATEWAY_PERMANENT,        UNK, false, false},
    {"toss.403.NOT_AVAILABLE_BANK",                  T, 403, 403, "NOT_AVAILABLE_BANK",               GATEWAY_RETRYABLE,        UNK, false, false},
    {"toss.403.EXCEED_MAX_REFUND_AMOUNT",            T, 403, 403, "EXCEED_MAX_REFUND_AMOUNT",         GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.403.EXCEED_CANCEL_LIMIT",                 T, 403, 403, "EXCEED_CANCEL_LIMIT",              GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.403.NOT_ALLOWED_REFUND_BANK",             T, 403, 403, "NOT_ALLOWED_REFUND_BANK",          GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.403.NOT_SUPPORTED_REFUND",                T, 403, 403, "NOT_SUPPORTED_REFUND",             GATEWAY_CONFIG_FAULT,     UNK, true,  false},
    {"toss.403.INCORRECT_BASIC_AUTH_FORMAT",         T, 403, 403, "INCORRECT_BASIC_AUTH_FORMAT",      GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"toss.403.NOT_CANCELABLE_PAYMENT",              T, 403, 403, "NOT_CANCELABLE_PAYMENT",           GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.403.EXCEED_MAX_REFUND_DUE",               T, 403, 403, "EXCEED_MAX_REFUND_DUE",            GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.403.NOT_ALLOWED_PARTIAL_REFUND",          T, 403, 403, "NOT_ALLOWED_PARTIAL_REFUND",       GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.403.NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT", T, 403, 403, "NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT", GATEWAY_PERMANENT, UNK, true, false},
    {"toss.403.NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER", T, 403, 403, "NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER", GATEWAY_PERMANENT, UNK, true, false},
    {"toss.403.FORBIDDEN_REQUEST",                   T, 403, 403, "FORBIDDEN_REQUEST",                GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"toss.403.other",                               T, 403, 403, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"toss.404.NOT_FOUND_PAYMENT",                   T, 404, 404, "NOT_FOUND_PAYMENT",                GATEWAY_PERMANENT,        UNK, true,  false},
    {"toss.409.IDEMPOTENT_REQUEST_PROCESSING",       T, 409, 409, "IDEMPOTENT_REQUEST_PROCESSING",    GATEWAY_IN_PROGRESS,      NO,  false, false},
    {"toss.422.INVALID_IDEMPOTENCY_KEY_REUSE",       T, 422, 422, "INVALID_IDEMPOTENCY_KEY_REUSE",    GATEWAY_PERMANENT,        NO,  false, false},
    {"toss.429.too_many_requests",                   T, 429, 429, NULL,                               GATEWAY_RETRYABLE,        NO,  true,  true},
    {"toss.4xx.other",                               T, 400, 499, NULL,                               GATEWAY_PERMANENT,        UNK, false, false},
    {"toss.5xx.gateway_error",                       T, 500, 599, "*",                                GATEWAY_RETRYABLE,        UNK, false, true},
    {"toss.5xx.no_body",                             T, 500, 599, NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"toss.3xx.redirect",                            T, 300, 399, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"toss.timeout",                                 T, 0,   0,   GATEWAY_CODE_TIMEOUT,               GATEWAY_RETRYABLE,        NO,  false, true},
    {"toss.invalid_url",                             T, 0,   0,   GATEWAY_CODE_INVALID_URL,           GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"toss.tls_error",                               T, 0,   0,   GATEWAY_CODE_TLS_ERROR,             GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"toss.connection_error",                        T, 0,   0,   NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"toss.other",                                   T, 0,   999, NULL,                               GATEWAY_RETRYABLE,        NO,  false, false},

    /* --- Stripe --- */
    {"stripe.200.refund.succeeded",                  S, 200, 299, "refund.succeeded",                 GATEWAY_SUCCEEDED,        YES, false, false},
    {"stripe.200.refund.pending",                    S, 200, 299, "refund.pending",                   GATEWAY_PENDING,          YES, false, false},
    {"stripe.200.refund.requires_action",            S, 200, 299, "refund.requires_action",           GATEWAY_PENDING,          YES, false, false},
    {"stripe.200.refund.failed",                     S, 200, 299, "refund.failed",                    GATEWAY_PERMANENT,        YES, true,  false},
    {"stripe.200.refund.canceled",                   S, 200, 299, "refund.canceled",                  GATEWAY_PERMANENT,        YES, true,  false},
    {"stripe.200.unverified",                        S, 200, 299, NULL,                               GATEWAY_UNVERIFIED,       YES, false, false},
    {"stripe.400.charge_already_refunded",           S, 400, 400, "charge_already_refunded",          GATEWAY_ALREADY_REFUNDED, YES, false, false},
    {"stripe.400.idempotency_error",                 S, 400, 400, "idempotency_error",                GATEWAY_PERMANENT,        NO,  false, false},
    /* More than is left: possibly because our own earlier refund took it. */
    {"stripe.400.amount_too_large",                  S, 400, 400, "amount_too_large",                 GATEWAY_PERMANENT,        UNK, false, false},
    {"stripe.400.invalid_request_error",             S, 400, 400, NULL,                               GATEWAY_PERMANENT,        UNK, false, false},
    {"stripe.401.authentication",                    S, 401, 401, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"stripe.402.request_failed",                    S, 402, 402, NULL,                               GATEWAY_PERMANENT,        YES, true,  false},
    {"stripe.403.permission",                        S, 403, 403, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"stripe.404.resource_missing",                  S, 404, 404, NULL,                               GATEWAY_PERMANENT,        UNK, true,  false},
    {"stripe.409.idempotency_key_in_use",            S, 409, 409, "idempotency_key_in_use",           GATEWAY_IN_PROGRESS,      NO,  false, false},
    {"stripe.409.idempotency_error",                 S, 409, 409, "idempotency_error",                GATEWAY_IN_PROGRESS,      NO,  false, false},
    {"stripe.409.lock_timeout",                      S, 409, 409, "lock_timeout",                     GATEWAY_RETRYABLE,        NO,  true,  false},
    {"stripe.409.conflict",                          S, 409, 409, NULL,                               GATEWAY_RETRYABLE,        NO,  false, false},
    {"stripe.424.external_dependency_failed",        S, 424, 424, NULL,                               GATEWAY_RETRYABLE,        UNK, false, true},
    {"stripe.429.lock_timeout",                      S, 429, 429, "lock_timeout",                     GATEWAY_RETRYABLE,        NO,  true,  false},
    {"stripe.429.rate_limit",                        S, 429, 429, NULL,                               GATEWAY_RETRYABLE,        NO,  true,  true},
    {"stripe.4xx.other",                             S, 400, 499, NULL,                               GATEWAY_PERMANENT,        UNK, false, false},
    {"stripe.5xx.api_error",                         S, 500, 599, "*",                                GATEWAY_RETRYABLE,        YES, false, true},
    {"stripe.5xx.no_body",                           S, 500, 599, NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"stripe.3xx.redirect",                          S, 300, 399, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"stripe.timeout",                               S, 0,   0,   GATEWAY_CODE_TIMEOUT,               GATEWAY_RETRYABLE,        NO,  false, true},
    {"stripe.invalid_url",                           S, 0,   0,   GATEWAY_CODE_INVALID_URL,           GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"stripe.tls_error",                             S, 0,   0,   GATEWAY_CODE_TLS_ERROR,             GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"stripe.connection_error",                      S, 0,   0,   NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"stripe.other",                                 S, 0,   999, NULL,                               GATEWAY_RETRYABLE,        NO,  false, false},

    /* --- KakaoPay: no key, so nothing is ever stored under one; every
     * attempt starts with the order inquiry (inquire-first), whatever the
     * row. Codes are text ("-780"); a payment method's own code follows a
     * slash ("-780/USER_LOCKED"). --- */
    {"kakaopay.200.cancel",                          K, 200, 299, "cancel",                           GATEWAY_SUCCEEDED,        NO,  false, false},
    {"kakaopay.200.unverified",                      K, 200, 299, NULL,                               GATEWAY_UNVERIFIED,       NO,  false, false},
    {"kakaopay.401.unauthorized",                    K, 401, 401, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    /* Before the code rows: a 429 is the front end's, whatever code it carries. */
    {"kakaopay.429.too_many_requests",               K, 429, 429, NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"kakaopay.4xx.invalid_key",                     K, 400, 499, "-401",                             GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"kakaopay.4xx.internal_error",                  K, 400, 499, "-1",                               GATEWAY_RETRYABLE,        NO,  false, false},
    {"kakaopay.4xx.maintenance",                     K, 400, 499, "-7",                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"kakaopay.4xx.quota_exceeded",                  K, 400, 499, "-10",                              GATEWAY_RETRYABLE,        NO,  false, true},
    {"kakaopay.4xx.internal_timeout",                K, 400, 499, "-603",                             GATEWAY_RETRYABLE,        NO,  false, false},
    {"kakaopay.4xx.user_locked",                     K, 400, 499, "-780/USER_LOCKED",                 GATEWAY_RETRYABLE,        NO,  false, false},
    {"kakaopay.4xx.other",                           K, 400, 499, NULL,                               GATEWAY_PERMANENT,        NO,  false, false},
    {"kakaopay.5xx.gateway_error",                   K, 500, 599, NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"kakaopay.3xx.redirect",                        K, 300, 399, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"kakaopay.timeout",                             K, 0,   0,   GATEWAY_CODE_TIMEOUT,               GATEWAY_RETRYABLE,        NO,  false, true},
    {"kakaopay.invalid_url",                         K, 0,   0,   GATEWAY_CODE_INVALID_URL,           GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"kakaopay.tls_error",                           K, 0,   0,   GATEWAY_CODE_TLS_ERROR,             GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"kakaopay.connection_error",                    K, 0,   0,   NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"kakaopay.other",                               K, 0,   999, NULL,                               GATEWAY_RETRYABLE,        NO,  false, false},
    /* --- PortOne V2 (every attempt starts with an inquiry, so "-> inquire"
     * of docs/gateways.md is the next attempt's first step) --- */
    {"portone.200.cancellation.SUCCEEDED",           P, 200, 299, "cancellation.SUCCEEDED",           GATEWAY_SUCCEEDED,        YES, false, false},
    {"portone.200.cancellation.REQUESTED",           P, 200, 299, "cancellation.REQUESTED",           GATEWAY_PENDING,          YES, false, false},
    {"portone.200.cancellation.FAILED",              P, 200, 299, "cancellation.FAILED",              GATEWAY_PERMANENT,        YES, true,  false},
    {"portone.200.unverified",                       P, 200, 299, NULL,                               GATEWAY_UNVERIFIED,       YES, false, false},
    {"portone.400.INVALID_REQUEST",                  P, 400, 400, "INVALID_REQUEST",                  GATEWAY_PERMANENT,        UNK, true,  false},
    {"portone.400.NEGATIVE_PROMOTION_ADJUSTED_CANCEL_AMOUNT", P, 400, 400, "NEGATIVE_PROMOTION_ADJUSTED_CANCEL_AMOUNT", GATEWAY_PERMANENT, UNK, true, false},
    {"portone.400.PROMOTION_DISCOUNT_RETAIN_OPTION_SHOULD_NOT_BE_CHANGED", P, 400, 400, "PROMOTION_DISCOUNT_RETAIN_OPTION_SHOULD_NOT_BE_CHANGED", GATEWAY_PERMANENT, UNK, true, false},
    {"portone.401.UNAUTHORIZED",                     P, 401, 401, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"portone.403.FORBIDDEN",                        P, 403, 403, NULL,                               GATEWAY_CONFIG_FAULT,     UNK, true,  false},
    {"portone.404.PAYMENT_NOT_FOUND",                P, 404, 404, "PAYMENT_NOT_FOUND",                GATEWAY_PERMANENT,        UNK, true,  false},
    {"portone.409.PAYMENT_NOT_PAID",                 P, 409, 409, "PAYMENT_NOT_PAID",                 GATEWAY_PERMANENT,        UNK, true,  false},
    {"portone.409.PAYMENT_ALREADY_CANCELLED",        P, 409, 409, "PAYMENT_ALREADY_CANCELLED",        GATEWAY_ALREADY_REFUNDED, UNK, false, false},
    /* The balance changed under us (another cancel of the payment): the
     * next attempt's inquiry reads the new balance, or finds ours. */
    {"portone.409.CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN", P, 409, 409, "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN", GATEWAY_RETRYABLE, UNK, true, false},
    /* More than the balance: possibly because our own earlier cancel took it. */
    {"portone.409.CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT", P, 409, 409, "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT", GATEWAY_PERMANENT, UNK, false, false},
    {"portone.409.SUM_OF_PARTS_EXCEEDS_CANCEL_AMOUNT", P, 409, 409, "SUM_OF_PARTS_EXCEEDS_CANCEL_AMOUNT", GATEWAY_PERMANENT,     UNK, true,  false},
    {"portone.409.CANCEL_TAX_FREE_AMOUNT_EXCEEDS_CANCELLABLE_TAX_FREE_AMOUNT", P, 409, 409, "CANCEL_TAX_FREE_AMOUNT_EXCEEDS_CANCELLABLE_TAX_FREE_AMOUNT", GATEWAY_PERMANENT, UNK, false, false},
    {"portone.409.CANCEL_TAX_AMOUNT_EXCEEDS_CANCELLABLE_TAX_AMOUNT", P, 409, 409, "CANCEL_TAX_AMOUNT_EXCEEDS_CANCELLABLE_TAX_AMOUNT", GATEWAY_PERMANENT, UNK, false, false},
    {"portone.409.MAX_CANCEL_COUNT_REACHED",         P, 409, 409, "MAX_CANCEL_COUNT_REACHED",         GATEWAY_PERMANENT,        UNK, false, false},
    {"portone.409.IDEMPOTENCY_OUTSTANDING_REQUEST",  P, 409, 409, "IDEMPOTENCY_OUTSTANDING_REQUEST",  GATEWAY_IN_PROGRESS,      NO,  false, false},
    {"portone.409.other",                            P, 409, 409, NULL,                               GATEWAY_PERMANENT,        UNK, false, false},
    {"portone.429.too_many_requests",                P, 429, 429, NULL,                               GATEWAY_RETRYABLE,        NO,  true,  true},
    /* One PG's trouble: not a reason to stop calling PortOne for every PG. */
    {"portone.502.PG_PROVIDER",                      P, 502, 502, "PG_PROVIDER",                      GATEWAY_RETRYABLE,        UNK, false, false},
    {"portone.4xx.other",                            P, 400, 499, NULL,                               GATEWAY_PERMANENT,        UNK, false, false},
    {"portone.5xx.gateway_error",                    P, 500, 599, "*",                                GATEWAY_RETRYABLE,        UNK, false, true},
    {"portone.5xx.no_body",                          P, 500, 599, NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"portone.3xx.redirect",                         P, 300, 399, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"portone.timeout",                              P, 0,   0,   GATEWAY_CODE_TIMEOUT,               GATEWAY_RETRYABLE,        NO,  false, true},
    {"portone.invalid_url",                          P, 0,   0,   GATEWAY_CODE_INVALID_URL,           GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"portone.tls_error",                            P, 0,   0,   GATEWAY_CODE_TLS_ERROR,             GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"portone.connection_error",                     P, 0,   0,   NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"portone.other",                                P, 0,   999, NULL,                               GATEWAY_RETRYABLE,        NO,  false, false},

    /* --- Adyen (Checkout v71): the 201 says "received"; the result comes by
     * REFUND notification. Codes "security", "configuration" and
     * "in_progress" are gateway_adyen.c's reading of errorType and of the
     * in-progress message. --- */
    {"adyen.201.received",                           A, 200, 299, "refund.received",                  GATEWAY_PENDING,          YES, false, false},
    {"adyen.2xx.unverified",                         A, 200, 299, NULL,                               GATEWAY_UNVERIFIED,       YES, false, false},
    {"adyen.401.security",                           A, 401, 401, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"adyen.403.security",                           A, 403, 403, NULL,                               GATEWAY_CONFIG_FAULT,     UNK, true,  false},
    {"adyen.security",                               A, 400, 599, "security",                         GATEWAY_CONFIG_FAULT,     UNK, true,  false},
    {"adyen.configuration",                          A, 400, 599, "configuration",                    GATEWAY_CONFIG_FAULT,     UNK, true,  false},
    {"adyen.422.in_progress",                        A, 422, 422, "in_progress",                      GATEWAY_IN_PROGRESS,      NO,  false, false},
    {"adyen.400.validation",                         A, 400, 400, NULL,                               GATEWAY_PERMANENT,        UNK, true,  false},
    {"adyen.422.100",                                A, 422, 422, "100",                              GATEWAY_PERMANENT,        UNK, true,  false},
    {"adyen.422.14_030",                             A, 422, 422, "14_030",                           GATEWAY_PERMANENT,        UNK, true,  false},
    /* 137 (amount), 167 (original reference) and every other 422: their
     * meaning is not in the pages read; an amount above what is left may be
     * our own earlier refund. */
    {"adyen.422.other",                              A, 422, 422, NULL,                               GATEWAY_PERMANENT,        UNK, false, false},
    {"adyen.429",                                    A, 429, 429, NULL,                               GATEWAY_RETRYABLE,        NO,  true,  true},
    {"adyen.4xx.other",                              A, 400, 499, NULL,                               GATEWAY_PERMANENT,        UNK, false, false},
    {"adyen.5xx.api_error",                          A, 500, 599, "*",                                GATEWAY_RETRYABLE,        UNK, false, true},
    {"adyen.5xx.no_body",                            A, 500, 599, NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"adyen.3xx.redirect",                           A, 300, 399, NULL,                               GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"adyen.timeout",                                A, 0,   0,   GATEWAY_CODE_TIMEOUT,               GATEWAY_RETRYABLE,        NO,  false, true},
    {"adyen.invalid_url",                            A, 0,   0,   GATEWAY_CODE_INVALID_URL,           GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"adyen.tls_error",                              A, 0,   0,   GATEWAY_CODE_TLS_ERROR,             GATEWAY_CONFIG_FAULT,     NO,  true,  false},
    {"adyen.connection_error",                       A, 0,   0,   NULL,                               GATEWAY_RETRYABLE,        NO,  false, true},
    {"adyen.other",                                  A, 0,   999, NULL,                               GATEWAY_RETRYABLE,        NO,  false, false},
};
/* clang-format on */

static bool code_matches(const char *rule_code, const char *code)
{
    if (rule_code == NULL)
        return true;
    if (strcmp(rule_code, "*") == 0) /* any code of the gateway's own (a body it wrote) */
        return code[0] != '\0';
    return strcmp(rule_code, code) == 0;
}

const struct gateway_rule *gateway_table_lookup(enum gateway_kind kind, long status,
                                                const char *code)
{
    const struct gateway_rule *last = NULL;
    if (code == NULL)
        code = "";
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct gateway_rule *r = &rows[i];
        if (r->kind != kind)
            continue;
        last = r;
        if (status >= r->status_lo && status <= r->status_hi && code_matches(r->code, code))
            return r;
    }
    return last; /* each kind's last row matches every status */
}

const struct gateway_rule *gateway_table_rows(size_t *n)
{
    *n = sizeof(rows) / sizeof(rows[0]);
    return rows;
}

const char *gateway_verdict_name(enum gateway_verdict v)
{
    switch (v) {
    case GATEWAY_SUCCEEDED:
        return "SUCCEEDED";
    case GATEWAY_ALREADY_REFUNDED:
        return "ALREADY_REFUNDED";
    case GATEWAY_RETRYABLE:
        return "RETRYABLE";
    case GATEWAY_PERMANENT:
        return "PERMANENT";
    case GATEWAY_CONFIG_FAULT:
        return "CONFIG_FAULT";
    case GATEWAY_PENDING:
        return "PENDING";
    case GATEWAY_IN_PROGRESS:
        return "IN_PROGRESS";
    case GATEWAY_UNVERIFIED:
        return "UNVERIFIED";
    }
    return "UNKNOWN";
}
