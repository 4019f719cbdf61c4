/*
 * gateway_stripe: the Stripe refunds API.
 *
 * POST {base}/v1/refunds with Bearer auth, Idempotency-Key and a form body
 * payment_intent=...&amount=...&metadata[requestId]=... (the amount always,
 * so that no more than the request's amount can move; the requestId so that
 * an inquiry finds our refund among the payment's). Errors are
 * {"error": {"type", "code", "message"}}.
 *
 * The cancel reason goes as metadata[cancel_reason]: Stripe's own `reason`
 * field only takes duplicate / fraudulent / requested_by_customer, and a
 * free-text reason there would make every refund fail with a 400.
 */
#include "base/bounds.h"
#include "base/i64.h"
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

char *gateway_stripe_auth_header(const char *secret)
{
    return gateway_secret_header("Authorization: Bearer ", secret);
}

/* Append "&name=escaped(value)" (no "&" when buf is empty) to the growing
 * buffer *buf of *len bytes. */
static bool form_add(CURL *esc, char **buf, size_t *len, const char *name, const char *value)
{
    char *ev = curl_easy_escape(esc, value, 0);
    char *en = curl_easy_escape(esc, name, 0);
    bool ok = false;
    if (ev == NULL || en == NULL)
        goto out;
    size_t add = (*len > 0 ? 1 : 0) + strlen(en) + 1 + strlen(ev);
    char *nb = realloc(*buf, *len + add + 1);
    if (nb == NULL)
        goto out;
    snprintf(nb + *len, add + 1, "%s%s=%s", *len > 0 ? "&" : "", en, ev);
    *buf = nb;
    *len += add;
    ok = true;
out:
    curl_free(ev);
    curl_free(en);
    return ok;
}

bool gateway_stripe_build_refund(const struct gateway_build_ctx *ctx,
                                 const struct refund_request *req, struct gateway_call_spec *spec,
                                 char *err, size_t errlen)
{
    memset(spec, 0, sizeof(*spec));
    spec->method = "POST";
    size_t n = strlen(ctx->base_url) + strlen("/v1/refunds") + 1;
    spec->url = malloc(n);
    if (spec->url == NULL)
        goto oom;
    snprintf(spec->url, n, "%s/v1/refunds", ctx->base_url);
    spec->path_prefix = "/v1/refunds";

    char amount[32];
    I64(amount, req->amount);
    if (!form_add(ctx->esc, &spec->body, &spec->body_len, "payment_intent", req->payment_key))
        goto oom;
    if (!form_add(ctx->esc, &spec->body, &spec->body_len, "amount", amount) ||
        !form_add(ctx->esc, &spec->body, &spec->body_len, "metadata[requestId]", req->request_id))
        goto oom;
    if (req->reason != NULL && req->reason[0] != '\0' &&
        !form_add(ctx->esc, &spec->body, &spec->body_len, "metadata[cancel_reason]", req->reason))
        goto oom;

    if (!gateway_call_spec_refund_headers(spec, ctx, "application/x-www-form-urlencoded", req))
        goto oom;
    return true;
oom:
    snprintf(err, errlen, "could not build stripe refund request: out of memory");
    gateway_call_spec_clear(spec);
    return false;
}

void gateway_stripe_parse_error(const char *body, char *code, size_t codelen, char *message,
                                size_t msglen)
{
    /* Some errors (a bad key, an idempotency mismatch) carry only a type. */
    gateway_error_fields(body, "error", "type", code, codelen, message, msglen);
}

/* A GET of {base}{path}{encoded id}{suffix} with the Authorization header;
 * path (a static string) is also the prefix the URL is checked against. */
static bool build_get(const struct gateway_build_ctx *ctx, const char *path, const char *id,
                      const char *suffix, struct gateway_call_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof(*spec));
    spec->method = "GET";
    spec->path_prefix = path;
    /* Encoded as a path segment even in a query: the same rules keep it one
     * value ("&", "=", "#" encoded). */
    char *esc = gateway_path_segment(id, err, errlen);
    if (esc == NULL)
        return false;
    size_t n = strlen(ctx->base_url) + strlen(path) + strlen(esc) + strlen(suffix) + 1;
    spec->url = malloc(n);
    if (spec->url != NULL)
        snprintf(spec->url, n, "%s%s%s%s", ctx->base_url, path, esc, suffix);
    free(esc);
    return gateway_call_spec_finish_get(spec, ctx, "stripe inquiry request", err, errlen);
}

bool gateway_stripe_build_payment_intent(const struct gateway_build_ctx *ctx,
                                         const char *payment_intent, struct gateway_call_spec *spec,
                                         char *err, size_t errlen)
{
    return build_get(ctx, "/v1/payment_intents/", payment_intent, "", spec, err, errlen);
}

bool gateway_stripe_build_refund_list(const struct gateway_build_ctx *ctx,
                                      const char *payment_intent, struct gateway_call_spec *spec,
                                      char *err, size_t errlen)
{
    return build_get(ctx, "/v1/refunds?payment_intent=", payment_intent, "&limit=100", spec, err,
                     errlen);
}

/* Is refund (a Stripe refund object) ours: metadata.requestId is our id. */
static bool refund_is_ours(const json_t *refund, const char *request_id)
{
    const char *rid =
        json_string_value(json_object_get(json_object_get(refund, "metadata"), "requestId"));
    return rid != NULL && strcmp(rid, request_id) == 0;
}

const char *gateway_stripe_refund_shape(const char *body, const struct refund_request *req,
                                        char *why, size_t whylen)
{
    static const char *const shapes[] = {"refund.succeeded", "refund.pending",
                                         "refund.requires_action", "refund.failed",
                                         "refund.canceled"};
    const char *shape = "";
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;
    const char *object = json_string_value(json_object_get(root, "object"));
    const char *status = json_string_value(json_object_get(root, "status"));
    const char *currency = json_string_value(json_object_get(root, "currency"));
    int64_t amount = json_number_i64(json_object_get(root, "amount"));

    if (object == NULL || strcmp(object, "refund") != 0 || status == NULL) {
        snprintf(why, whylen, "the 2xx answer is not a Stripe refund object");
    } else if (amount != req->amount) {
        snprintf(why, whylen, "the refund is for %lld, the request for %lld", (long long)amount,
                 (long long)req->amount);
    } else if (req->currency != NULL && (currency == NULL || strcasecmp(currency, req->currency))) {
        snprintf(why, whylen, "the refund is in %s, the request in %s",
                 currency != NULL ? currency : "?", req->currency);
    } else {
        for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
            if (strcmp(shapes[i] + strlen("refund."), status) == 0)
                shape = shapes[i];
        if (shape[0] == '\0')
            snprintf(why, whylen, "unknown refund status \"%.40s\"", status);
        else
            snprintf(why, whylen, "refund status %s", status);
    }
    json_decref(root);
    return shape;
}

void gateway_stripe_judge(const char *payment_intent_body, const char *refunds_body,
                          const struct refund_request *req, struct gateway_inquiry *out)
{
    json_t *pi = payment_intent_body ? json_loads(payment_intent_body, 0, NULL) : NULL;
    json_t *list = refunds_body ? json_loads(refunds_body, 0, NULL) : NULL;
    json_t *data = json_object_get(list, "data");
    const char *currency = json_string_value(json_object_get(pi, "currency"));
    bool settled = false, pending = false, failed = false, has_more;
    int64_t ours = -1, refunded = 0;
    size_t i;
    json_t *r;

    out->payment_amount = json_number_i64(json_object_get(pi, "amount"));
    snprintf(out->currency, sizeof(out->currency), "%s", currency != NULL ? currency : "");
    if (out->payment_amount < 0 || currency == NULL || !json_is_array(data)) {
        out->finding = FINDING_UNKNOWN;
        snprintf(out->detail, sizeof(out->detail),
                 "the inquiry answers are not a PaymentIntent and a refund list");
        goto out;
    }
    if (req->currency != NULL && strcasecmp(currency, req->currency) != 0) {
        out->finding = FINDING_MISMATCH;
        snprintf(out->detail, sizeof(out->detail), "the payment is in %s, the request in %s",
                 currency, req->currency);
        goto out;
    }
    has_more = json_is_true(json_object_get(list, "has_more"));
    json_array_foreach(data, i, r)
    {
        const char *st = json_string_value(json_object_get(r, "status"));
        int64_t amount = json_number_i64(json_object_get(r, "amount"));
        bool gone = st != NULL && (strcmp(st, "failed") == 0 || strcmp(st, "canceled") == 0);
        if (!gone && amount > 0)
            refunded = bounds_add_sat(refunded, amount); /* never wraps negative */
        if (!refund_is_ours(r, req->request_id))
            continue;
        ours = amount;
        if (st != NULL && strcmp(st, "succeeded") == 0)
            settled = true;
        else if (gone)
            failed = true;
        else
            pending = true; /* pending, requires_action, or a status we do not know */
    }
    out->refunded_amount = has_more ? -1 : refunded;
    bool sum_unknown = has_more || refunded < 0;
    if (settled || pending) {
        if (ours != req->amount) {
            out->finding = FINDING_MISMATCH;
            snprintf(out->detail, sizeof(out->detail), "our refund is for %lld, the request %lld",
                     (long long)ours, (long long)req->amount);
        } else {
            out->finding = settled ? FINDING_REFUNDED : FINDING_PENDING;
            snprintf(out->detail, sizeof(out->detail), "our refund of %lld is %s", (long long)ours,
                     settled ? "succeeded" : "not settled yet");
        }
    } else if (sum_unknown) {
        /* A hundred refunds on one payment and ours not among the newest,
         * or amounts that add up past int64: nothing can be concluded, so
         * nothing new may be sent. */
        out->finding = FINDING_UNKNOWN;
        snprintf(out->detail, sizeof(out->detail), "%s",
                 has_more ? "more refunds than one inquiry reads"
                          : "the refunds' amounts add up past any payment");
    } else if (failed) {
        out->finding = FINDING_REFUND_FAILED;
        snprintf(out->detail, sizeof(out->detail), "our refund failed or was canceled");
    } else if (!req->partial && refunded >= out->payment_amount) {
        out->finding = FINDING_ALREADY_REFUNDED;
        snprintf(out->detail, sizeof(out->detail), "the payment is fully refunded, not by us");
    } else {
        out->finding = FINDING_NOT_REFUNDED;
        snprintf(out->detail, sizeof(out->detail), "no refund of ours; %lld of %lld refunded",
                 (long long)refunded, (long long)out->payment_amount);
    }
out:
    json_decref(pi);
    json_decref(list);
}

/* --- the driver --- */

static char *stripe_auth(const struct config_gateway *cfg)
{
    return gateway_stripe_auth_header(cfg->secret_key);
}

/* Two calls: the PaymentIntent (amount, currency), then its refunds. */
static bool stripe_build_inquiry(const struct gateway_build_ctx *ctx,
                                 const struct refund_request *req, size_t step,
                                 struct gateway_call_spec *spec, char *err, size_t errlen)
{
    if (step == 0)
        return gateway_stripe_build_payment_intent(ctx, req->payment_key, spec, err, errlen);
    return gateway_stripe_build_refund_list(ctx, req->payment_key, spec, err, errlen);
}

static void stripe_judge(const char *const *bodies, size_t n, const struct refund_request *req,
                         struct gateway_inquiry *out)
{
    if (n < 2) {
        out->finding = FINDING_UNKNOWN;
        snprintf(out->detail, sizeof(out->detail), "the inquiry did not read the refund list");
        return;
    }
    gateway_stripe_judge(bodies[0], bodies[1], req, out);
}

const struct gateway_driver gateway_stripe_driver = {
    .kind = GATEWAY_STRIPE,
    .safety = GATEWAY_SAFETY_IDEMPOTENCY_KEY,
    .completion = GATEWAY_COMPLETION_ANSWER,
    .key_min_len = 1,
    .key_max_len = 255, /* "up to 255 characters" */
    .inquiry_rule = "stripe.inquiry",
    .missing_payment_code = "resource_missing",
    .confirm_already_refunded = false,
    .auth_header = stripe_auth,
    .build_refund = gateway_stripe_build_refund,
    .refund_shape = gateway_stripe_refund_shape,
    .parse_error = gateway_stripe_parse_error,
    .inquiry_calls = 2,
    .build_inquiry = stripe_build_inquiry,
    .judge = stripe_judge,
};
