/*
 * gateway_adyen: the Adyen Checkout refund (API v71).
 *
 * POST {base}/payments/{paymentPspReference}/refunds (base_url ends in
 * /v71) with X-API-Key, Idempotency-Key (at most 64 characters) and JSON
 * {"amount": {"value", "currency"}, "merchantAccount", "reference"}; the
 * amount always, our requestId as the reference (gateway_marker() when it is
 * longer than Adyen's 80 characters), so a REFUND notification names our
 * request. Errors are ServiceError {"status", "errorCode", "message",
 * "errorType"}.
 *
 * The 201 says only "received" (docs/gateways.md, "Adyen"): the outcome
 * comes by REFUND webhook. Adyen's Checkout has no GET of a payment or a
 * refund, so the "inquiry" is the same refund sent again under the
 * request's current key: within the key's lifetime Adyen answers the first
 * 201 (our refund's pspReference) or, if the first never arrived, makes the
 * refund once.
 */
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

/* Adyen: reference, "Maximum length: 80 characters". */
#define ADYEN_REFERENCE_MAX 80

/* Adyen was observed answering a repeat of a key still in progress with a
 * 422 of this message (research §3.4; its code is not documented). */
#define ADYEN_IN_PROGRESS_MESSAGE "already processed or in progress"

static char *adyen_auth(const struct config_gateway *cfg)
{
    return gateway_secret_header("X-API-Key: ", cfg->secret_key);
}

static bool adyen_build_refund(const struct gateway_build_ctx *ctx,
                               const struct refund_request *req, struct gateway_call_spec *spec,
                               char *err, size_t errlen)
{
    const char *merchant = ctx->cfg != NULL ? ctx->cfg->merchant_account : NULL;
    char marker[80];
    json_t *body = NULL;
    bool ok = false;

    memset(spec, 0, sizeof(*spec));
    spec->method = "POST";
    if (merchant == NULL || merchant[0] == '\0' || req->currency == NULL ||
        req->currency[0] == '\0') {
        snprintf(err, errlen,
                 "cannot build the adyen refund: merchant_account and the currency are required");
        return false;
    }
    char *seg = gateway_path_segment(req->payment_key, err, errlen);
    if (seg == NULL)
        return false;
    size_t n = strlen(ctx->base_url) + strlen("/payments/") + strlen(seg) + strlen("/refunds") + 1;
    spec->url = malloc(n);
    if (spec->url != NULL)
        snprintf(spec->url, n, "%s/payments/%s/refunds", ctx->base_url, seg);
    spec->path_prefix = "/payments/";
    free(seg);
    if (spec->url == NULL)
        goto oom;

    const char *reference = req->request_id;
    if (strlen(reference) > ADYEN_REFERENCE_MAX)
        reference = gateway_marker(req->request_id, marker, sizeof(marker));
    /* The amount always: never more than the request's can move. */
    body =
        json_pack("{s:{s:I, s:s}, s:s, s:s}", "amount", "value", (json_int_t)req->amount,
                  "currency", req->currency, "merchantAccount", merchant, "reference", reference);
    if (body == NULL || !gateway_call_spec_json_refund(spec, ctx, body, req))
        goto oom;
    ok = true;
    goto out;
oom:
    snprintf(err, errlen, "could not build adyen refund request: out of memory");
    gateway_call_spec_clear(spec);
out:
    json_decref(body);
    return ok;
}

/* Does root, a 2xx body, show a PaymentRefundResponse for req: status
 * "received", our payment, our amount and currency, a pspReference? On
 * false why says what differs; mismatch tells an answer about another
 * amount, currency or payment apart from one that is not the object. */
static bool is_our_refund(const json_t *root, const struct refund_request *req, bool *mismatch,
                          char *why, size_t whylen)
{
    const json_t *amount = json_object_get(root, "amount");
    const char *status = json_string_value(json_object_get(root, "status"));
    const char *psp = json_string_value(json_object_get(root, "pspReference"));
    const char *payment = json_string_value(json_object_get(root, "paymentPspReference"));
    const char *currency = json_string_value(json_object_get(amount, "currency"));
    int64_t value = json_number_i64(json_object_get(amount, "value"));

    *mismatch = false;
    if (!json_is_object(root) || status == NULL || psp == NULL || psp[0] == '\0' ||
        currency == NULL || value < 0) {
        snprintf(why, whylen, "the answer is not a PaymentRefundResponse");
        return false;
    }
    if (strcmp(status, "received") != 0) {
        snprintf(why, whylen, "the refund's status is \"%.40s\", not \"received\"", status);
        return false;
    }
    *mismatch = true;
    if (payment != NULL && strcmp(payment, req->payment_key) != 0) {
        snprintf(why, whylen, "the refund is of payment %.60s, not ours", payment);
        return false;
    }
    if (value != req->amount || req->currency == NULL || strcasecmp(currency, req->currency) != 0) {
        snprintf(why, whylen, "the refund is for %lld %.8s, the request %lld %.8s",
                 (long long)value, currency, (long long)req->amount,
                 req->currency ? req->currency : "");
        return false;
    }
    *mismatch = false;
    return true;
}

static const char *adyen_refund_shape(const char *body, const struct refund_request *req, char *why,
                                      size_t whylen)
{
    bool mismatch;
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;
    bool ours = root != NULL && is_our_refund(root, req, &mismatch, why, whylen);

    if (root == NULL)
        snprintf(why, whylen, "the answer is not JSON");
    json_decref(root);
    return ours ? "refund.received" : "";
}

/* ServiceError: the table reads errorCode, but what an answer means for
 * Adyen also depends on errorType and, for a key in progress, the message:
 * "security" and "configuration" errors, and the in-progress message, get
 * those words as their code (the errorCode goes into the message). */
static void adyen_parse_error(const char *body, char *code, size_t codelen, char *message,
                              size_t msglen)
{
    char error_code[64];

    gateway_error_fields(body, NULL, "errorCode", error_code, sizeof(error_code), message, msglen);
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(root, "errorType"));
    const char *pseudo = NULL;
    if (strstr(message, ADYEN_IN_PROGRESS_MESSAGE) != NULL)
        pseudo = "in_progress";
    else if (type != NULL && (strcmp(type, "security") == 0 || strcmp(type, "configuration") == 0))
        pseudo = type;
    if (pseudo != NULL) {
        size_t used = strlen(message);
        if (error_code[0] != '\0' && used < msglen)
            snprintf(message + used, msglen - used, " (errorCode %s)", error_code);
        snprintf(code, codelen, "%s", pseudo);
    } else {
        snprintf(code, codelen, "%s", error_code);
    }
    json_decref(root);
}

/* The inquiry: the refund itself, under the same key (see the top). */
static bool adyen_build_inquiry(const struct gateway_build_ctx *ctx,
                                const struct refund_request *req, size_t step,
                                struct gateway_call_spec *spec, char *err, size_t errlen)
{
    (void)step; /* one call */
    return adyen_build_refund(ctx, req, spec, err, errlen);
}

/* A replay's 201 proves that our refund was received: PENDING until its
 * notification (or REFUND_FAILED...) tells. Nothing in it tells the
 * payment's amount or what was refunded. */
static void adyen_judge(const char *const *bodies, size_t n, const struct refund_request *req,
                        struct gateway_inquiry *out)
{
    bool mismatch = false;
    char why[200];
    json_t *root = n >= 1 && bodies[0] != NULL ? json_loads(bodies[0], 0, NULL) : NULL;

    out->payment_amount = -1;
    out->refunded_amount = -1;
    out->cancellable_amount = -1;
    if (root == NULL) {
        out->finding = FINDING_UNKNOWN;
        snprintf(out->detail, sizeof(out->detail), "the replayed refund's answer is not JSON");
        return;
    }
    const char *currency =
        json_string_value(json_object_get(json_object_get(root, "amount"), "currency"));
    snprintf(out->currency, sizeof(out->currency), "%s", currency != NULL ? currency : "");
    if (is_our_refund(root, req, &mismatch, why, sizeof(why))) {
        out->finding = FINDING_PENDING;
        snprintf(out->detail, sizeof(out->detail),
                 "our refund %.40s was received; its result comes by notification",
                 json_string_value(json_object_get(root, "pspReference")));
    } else {
        out->finding = mismatch ? FINDING_MISMATCH : FINDING_UNKNOWN;
        snprintf(out->detail, sizeof(out->detail), "the replayed refund: %s", why);
    }
    json_decref(root);
}

const struct gateway_driver gateway_adyen_driver = {
    .kind = GATEWAY_ADYEN,
    .safety = GATEWAY_SAFETY_IDEMPOTENCY_KEY,
    .completion = GATEWAY_COMPLETION_WEBHOOK,
    /* "a maximum of 64 characters"; longer requestIds are hashed. */
    .key_min_len = 1,
    .key_max_len = 64,
    .key_quoted = false,
    .inquiry_rule = "adyen.inquiry",
    /* An unknown payment is a 422 whose code is not documented. */
    .missing_payment_code = NULL,
    .confirm_already_refunded = false,
    .inquiry_replays_refund = true,
    .auth_header = adyen_auth,
    .build_refund = adyen_build_refund,
    .refund_shape = adyen_refund_shape,
    .parse_error = adyen_parse_error,
    .inquiry_calls = 1,
    .build_inquiry = adyen_build_inquiry,
    .judge = adyen_judge,
};
