/*
 * gateway_toss: the Toss Payments cancel and inquiry APIs.
 *
 * POST {base}/v1/payments/{paymentKey}/cancel with Basic auth (secret key and
 * an empty password), Idempotency-Key, JSON {"cancelReason", "cancelAmount"}
 * (the amount always, also for a full cancel: gateway_toss_build_refund);
 * errors are {"code", "message"}.
 */
#include "base/base64.h"
#include "base/bounds.h"
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

char *gateway_toss_auth_header(const char *secret)
{
    size_t slen = strlen(secret);
    char *userpass = malloc(slen + 2);
    char *line = NULL;
    char *b64 = NULL;
    if (userpass == NULL)
        goto out;
    memcpy(userpass, secret, slen);
    userpass[slen] = ':';
    userpass[slen + 1] = '\0';
    b64 = malloc(BASE64_ENCODED_SIZE(slen + 1));
    if (b64 != NULL)
        base64_encode((const unsigned char *)userpass, slen + 1, b64);
    if (b64 == NULL)
        goto out;
    size_t n = strlen("Authorization: Basic ") + strlen(b64) + 1;
    line = malloc(n);
    if (line != NULL)
        snprintf(line, n, "Authorization: Basic %s", b64);
out:
    /* Wipe the copies of the secret before freeing them. */
    if (userpass != NULL)
        memset(userpass, 0, slen + 1);
    free(userpass);
    if (b64 != NULL)
        memset(b64, 0, strlen(b64));
    free(b64);
    return line;
}

/* {base}/v1/payments/{encoded key}{suffix} into spec (and its path
 * prefix), or false with err: a key that cannot be one segment or no memory. */
static bool payment_url(const struct gateway_build_ctx *ctx, const char *payment_key,
                        const char *suffix, struct gateway_call_spec *spec, char *err,
                        size_t errlen)
{
    char *seg = gateway_path_segment(payment_key, err, errlen);
    if (seg == NULL)
        return false;
    size_t n = strlen(ctx->base_url) + strlen("/v1/payments/") + strlen(seg) + strlen(suffix) + 1;
    spec->url = malloc(n);
    if (spec->url != NULL)
        snprintf(spec->url, n, "%s/v1/payments/%s%s", ctx->base_url, seg, suffix);
    else
        snprintf(err, errlen, "could not build the toss request: out of memory");
    spec->path_prefix = "/v1/payments/";
    free(seg);
    return spec->url != NULL;
}

bool gateway_toss_build_refund(const struct gateway_build_ctx *ctx,
                               const struct refund_request *req, struct gateway_call_spec *spec,
                               char *err, size_t errlen)
{
    json_t *body = NULL;
    bool ok = false;

    memset(spec, 0, sizeof(*spec));
    spec->method = "POST";
    if (!payment_url(ctx, req->payment_key, "/cancel", spec, err, errlen)) {
        gateway_call_spec_clear(spec);
        return false;
    }

    body = json_object();
    if (body == NULL ||
        json_object_set_new(body, "cancelReason", json_string(req->reason ? req->reason : "")))
        goto oom;
    /* The amount goes even for a full cancel: without it Toss cancels
     * whatever remains, which may be more than this request asked for. */
    if (json_object_set_new(body, "cancelAmount", json_integer(req->amount)) ||
        !gateway_call_spec_json_refund(spec, ctx, body, req))
        goto oom;
    ok = true;
    goto out;
oom:
    snprintf(err, errlen, "could not build toss cancel request: out of memory");
    gateway_call_spec_clear(spec);
out:
    json_decref(body);
    return ok;
}

bool gateway_toss_build_inquiry(const struct gateway_build_ctx *ctx, const char *payment_key,
                                struct gateway_call_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof(*spec));
    spec->method = "GET";
    if (!payment_url(ctx, payment_key, "", spec, err, errlen)) {
        gateway_call_spec_clear(spec);
        return false;
    }
    return gateway_call_spec_finish_get(spec, ctx, "toss inquiry request", err, errlen);
}

void gateway_toss_parse_error(const char *body, char *code, size_t codelen, char *message,
                              size_t msglen)
{
    gateway_error_fields(body, NULL, NULL, code, codelen, message, msglen);
}

bool gateway_toss_parse_payment(const char *body, struct gateway_payment *out)
{
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;
    if (root == NULL)
        return false;
    bool ok = false;
    json_t *balance = json_object_get(root, "balanceAmount");
    json_t *cancels = json_object_get(root, "cancels");
    if (!json_is_integer(balance) && !json_is_real(balance))
        goto out;
    out->balance_amount = json_number_i64(balance);
    out->total_amount = json_number_i64(json_object_get(root, "totalAmount"));
    const char *st = json_string_value(json_object_get(root, "status"));
    /* Virtual-account payments: the cancel is done at once, the money goes
     * back to the customer's account later (docs/gateways.md). */
    const char *rs =
        json_string_value(json_object_get(json_object_get(root, "virtualAccount"), "refundStatus"));
    snprintf(out->refund_status, sizeof(out->refund_status), "%s", rs != NULL ? rs : "");
    const char *cur = json_string_value(json_object_get(root, "currency"));
    snprintf(out->status, sizeof(out->status), "%s", st != NULL ? st : "");
    snprintf(out->currency, sizeof(out->currency), "%s", cur != NULL ? cur : "");
    out->canceled_amount = 0;
    out->ncancels = 0;
    out->cancels_truncated = false;
    if (json_is_array(cancels)) {
        size_t i;
        json_t *c;
        json_array_foreach(cancels, i, c)
        {
            int64_t amount = json_number_i64(json_object_get(c, "cancelAmount"));
            const char *cst = json_string_value(json_object_get(c, "cancelStatus"));
            /* Saturating: two cancels of 2^62 must not wrap to a negative
             * total that "proves" nothing was refunded. */
            if (amount > 0)
                out->canceled_amount = bounds_add_sat(out->canceled_amount, amount);
            if (out->ncancels == sizeof(out->cancels) / sizeof(out->cancels[0])) {
                out->cancels_truncated = true;
                continue;
            }
            out->cancels[out->ncancels].amount = amount;
            out->cancels[out->ncancels].done = cst == NULL || strcmp(cst, "DONE") == 0;
            out->ncancels++;
        }
    }
    ok = true;
out:
    json_decref(root);
    return ok;
}

void gateway_toss_resolve_already_refunded(const struct gateway_payment *inquiry, bool partial,
                                           int64_t amount, struct gateway_answer *answer)
{
    const struct gateway_answer *ia = &inquiry->answer;

    if (ia->verdict == GATEWAY_SUCCEEDED) {
        bool confirmed =
            partial ? inquiry->canceled_amount >= amount : inquiry->balance_amount == 0;
        if (confirmed) {
            answer->verdict = GATEWAY_ALREADY_REFUNDED;
            return;
        }
        answer->verdict = GATEWAY_PERMANENT;
        snprintf(answer->code, sizeof(answer->code), "ALREADY_REFUNDED_UNCONFIRMED");
        snprintf(answer->message, sizeof(answer->message),
                 "gateway says already canceled, but the payment shows balance %lld and "
                 "%lld canceled (this request: %s %lld)",
                 (long long)inquiry->balance_amount, (long long)inquiry->canceled_amount,
                 partial ? "partial" : "full", (long long)amount);
        return;
    }
    if (ia->verdict == GATEWAY_CONFIG_FAULT) {
        answer->verdict = GATEWAY_CONFIG_FAULT;
        answer->http_status = ia->http_status;
        snprintf(answer->code, sizeof(answer->code), "%s", ia->code);
        snprintf(answer->message, sizeof(answer->message), "payment inquiry: %.200s", ia->message);
        return;
    }
    if (ia->verdict == GATEWAY_RETRYABLE) {
        answer->verdict = GATEWAY_RETRYABLE;
        snprintf(answer->code, sizeof(answer->code), "INQUIRY_FAILED");
        snprintf(answer->message, sizeof(answer->message),
                 "could not confirm already-canceled payment: inquiry: %.180s", ia->message);
        return;
    }
    answer->verdict = GATEWAY_PERMANENT;
    snprintf(answer->code, sizeof(answer->code), "ALREADY_REFUNDED_UNCONFIRMED");
    snprintf(answer->message, sizeof(answer->message),
             "cannot confirm already-canceled payment: inquiry: %.60s%s%.120s", ia->code,
             ia->code[0] != '\0' ? " " : "", ia->message);
}

/* Is there a cancel of ours in p? Toss names no request or key on a cancel
 * (docs/gateways.md "Cancel API and what proves a refund"), so a cancel of exactly
 * our amount counts as ours only beyond those that other requests of this
 * payment with the same amount account for: req->same_amount_done ended
 * SUCCEEDED, req->same_amount_open may still have made one. 1: ours is done,
 * 2: ours is not done yet, 0: none is ours, -1: cannot tell. */
static int our_cancel(const struct gateway_payment *p, const struct refund_request *req)
{
    int done = 0, other = 0;
    for (size_t i = 0; i < p->ncancels; i++) {
        if (p->cancels[i].amount != req->amount)
            continue;
        if (p->cancels[i].done)
            done++;
        else
            other++;
    }
    int known = req->same_amount_done, open = req->same_amount_open;
    if (done > known + open)
        return 1;
    if (done + other > known + open)
        return 2;
    if (done + other <= known)
        return 0;
    return -1;
}

/* virtualAccount.refundStatus: NONE, PENDING, FAILED, PARTIAL_FAILED,
 * COMPLETED (docs/gateways.md); absent for other payment methods. */
static bool refund_pending(const struct gateway_payment *p)
{
    return strcmp(p->refund_status, "PENDING") == 0;
}

static bool refund_failed(const struct gateway_payment *p)
{
    return strcmp(p->refund_status, "FAILED") == 0 ||
           strcmp(p->refund_status, "PARTIAL_FAILED") == 0;
}

const char *gateway_toss_refund_shape(const char *body, const struct refund_request *req, char *why,
                                      size_t whylen)
{
    struct gateway_payment p;
    memset(&p, 0, sizeof(p));
    if (!gateway_toss_parse_payment(body, &p)) {
        snprintf(why, whylen, "the 2xx answer is not a Toss payment object");
        return "";
    }
    if (req->currency != NULL && p.currency[0] != '\0' && strcmp(p.currency, req->currency) != 0) {
        snprintf(why, whylen, "the payment is in %s, the request in %s", p.currency, req->currency);
        return "";
    }
    switch (our_cancel(&p, req)) {
    case 1:
        if (refund_pending(&p)) {
            snprintf(why, whylen, "the virtual-account refund is %s", p.refund_status);
            return "payment.refund_pending";
        }
        if (refund_failed(&p)) {
            snprintf(why, whylen, "the virtual-account refund is %s", p.refund_status);
            return "payment.refund_failed";
        }
        return "payment";
    case 2:
        snprintf(why, whylen, "the cancel of %lld is not done yet", (long long)req->amount);
        return "payment.cancel_pending";
    default:
        snprintf(why, whylen, "the payment object shows no cancel of %lld", (long long)req->amount);
        return "";
    }
}

enum refund_finding gateway_toss_judge(const struct gateway_payment *p,
                                       const struct refund_request *req, char *detail,
                                       size_t detaillen)
{
    if (req->currency != NULL && p->currency[0] != '\0' &&
        strcmp(p->currency, req->currency) != 0) {
        snprintf(detail, detaillen, "the payment is in %s, the request in %s", p->currency,
                 req->currency);
        return FINDING_MISMATCH;
    }
    switch (our_cancel(p, req)) {
    case 1:
        if (refund_failed(p)) {
            snprintf(detail, detaillen, "the cancel of %lld is done, its refund %s",
                     (long long)req->amount, p->refund_status);
            return FINDING_REFUND_FAILED;
        }
        if (refund_pending(p)) {
            snprintf(detail, detaillen, "the cancel of %lld is done, its refund PENDING",
                     (long long)req->amount);
            return FINDING_PENDING;
        }
        snprintf(detail, detaillen, "the payment shows a cancel of %lld", (long long)req->amount);
        return FINDING_REFUNDED;
    case 2:
        snprintf(detail, detaillen, "the payment shows a cancel of %lld not done yet",
                 (long long)req->amount);
        return FINDING_PENDING;
    case -1:
        snprintf(detail, detaillen,
                 "a cancel of %lld exists, but another request of this payment with the same "
                 "amount may have made it",
                 (long long)req->amount);
        return FINDING_UNKNOWN;
    default:
        break;
    }
    if (p->cancels_truncated) {
        snprintf(detail, detaillen, "the payment has more cancels than one inquiry reads");
        return FINDING_UNKNOWN;
    }
    if (p->balance_amount == 0) {
        snprintf(detail, detaillen, "the payment is fully canceled (%lld), not by a cancel of %lld",
                 (long long)p->canceled_amount, (long long)req->amount);
        return FINDING_ALREADY_REFUNDED;
    }
    snprintf(detail, detaillen, "no cancel of %lld; balance %lld of %lld", (long long)req->amount,
             (long long)p->balance_amount, (long long)p->total_amount);
    return FINDING_NOT_REFUNDED;
}

/* --- the driver --- */

static char *toss_auth(const struct config_gateway *cfg)
{
    return gateway_toss_auth_header(cfg->secret_key);
}

static bool toss_build_inquiry(const struct gateway_build_ctx *ctx,
                               const struct refund_request *req, size_t step,
                               struct gateway_call_spec *spec, char *err, size_t errlen)
{
    (void)step; /* one call: GET the payment */
    return gateway_toss_build_inquiry(ctx, req->payment_key, spec, err, errlen);
}

static void toss_judge(const char *const *bodies, size_t n, const struct refund_request *req,
                       struct gateway_inquiry *out)
{
    struct gateway_payment p;
    memset(&p, 0, sizeof(p));
    if (n < 1 || !gateway_toss_parse_payment(bodies[0], &p)) {
        out->finding = FINDING_UNKNOWN;
        snprintf(out->detail, sizeof(out->detail), "the inquiry answer is not a payment object");
        return;
    }
    out->finding = gateway_toss_judge(&p, req, out->detail, sizeof(out->detail));
    out->payment_amount = p.total_amount;
    out->refunded_amount = p.canceled_amount;
    out->cancellable_amount = p.balance_amount;
    snprintf(out->currency, sizeof(out->currency), "%s", p.currency);
}

const struct gateway_driver gateway_toss_driver = {
    .kind = GATEWAY_TOSS,
    .safety = GATEWAY_SAFETY_IDEMPOTENCY_KEY,
    .completion = GATEWAY_COMPLETION_ANSWER,
    /* Toss takes up to 300 characters; 255 keeps the keys every earlier
     * release sent (a request's key never changes within a generation). */
    .key_min_len = 1,
    .key_max_len = 255,
    .inquiry_rule = "toss.inquiry",
    .missing_payment_code = "NOT_FOUND_PAYMENT",
    .confirm_already_refunded = true,
    .auth_header = toss_auth,
    .build_refund = gateway_toss_build_refund,
    .refund_shape = gateway_toss_refund_shape,
    .parse_error = gateway_toss_parse_error,
    .inquiry_calls = 1,
    .build_inquiry = toss_build_inquiry,
    .judge = toss_judge,
};
