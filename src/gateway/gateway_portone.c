/*
 * gateway_portone: the PortOne V2 cancel and payment inquiry APIs
 * (docs/gateways.md "PortOne V2").
 *
 * POST {base}/payments/{paymentId}/cancel with "Authorization: PortOne
 * <secret>", the Idempotency-Key as an RFC 8941 quoted string of 16 to 256
 * characters, and JSON {"reason", "amount", "currentCancellableAmount",
 * "storeId"}: the amount always (absent, PortOne cancels the whole balance);
 * the balance guard when the inquiry before the send read one; our marker
 * at the end of the reason, which every cancellation of the payment echoes,
 * so that an inquiry knows our cancellation from any other. Errors are
 * {"type", "message"}, PG_PROVIDER also "pgCode" and "pgMessage".
 *
 * Inquiry: GET {base}/payments/{paymentId}, the Payment with its amounts and
 * cancellations[].
 */
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define PORTONE_PATH "/payments/"

static char *portone_auth(const struct config_gateway *cfg)
{
    return gateway_secret_header("Authorization: PortOne ", cfg->secret_key);
}

/* {base}/payments/{escaped id}{suffix}[?storeId=...] into spec, or false
 * with err: an id that cannot be one segment, or no memory. */
static bool payment_url(const struct gateway_build_ctx *ctx, const char *payment_id,
                        const char *suffix, bool store_query, struct gateway_call_spec *spec,
                        char *err, size_t errlen)
{
    const char *store = ctx->cfg != NULL ? ctx->cfg->store_id : NULL;
    char *seg = gateway_path_segment(payment_id, err, errlen);
    char *store_esc = NULL;

    if (seg == NULL)
        return false;
    if (store_query && store != NULL && store[0] != '\0')
        store_esc = curl_easy_escape(ctx->esc, store, 0);
    size_t n = strlen(ctx->base_url) + strlen(PORTONE_PATH) + strlen(seg) + strlen(suffix) +
               (store_esc ? strlen("?storeId=") + strlen(store_esc) : 0) + 1;
    spec->url = malloc(n);
    if (spec->url != NULL)
        snprintf(spec->url, n, "%s" PORTONE_PATH "%s%s%s%s", ctx->base_url, seg, suffix,
                 store_esc ? "?storeId=" : "", store_esc ? store_esc : "");
    else
        snprintf(err, errlen, "could not build the portone request: out of memory");
    spec->path_prefix = PORTONE_PATH;
    free(seg);
    curl_free(store_esc);
    return spec->url != NULL;
}

/* The reason as sent: the request's reason and our marker, last, in
 * brackets ("booking cancelled [cr:req-1]"), into buf. */
static const char *marked_reason(const struct refund_request *req, char *buf, size_t buflen)
{
    char marker[96];
    const char *reason = req->reason != NULL ? req->reason : "";

    gateway_marker(req->request_id, marker, sizeof(marker));
    snprintf(buf, buflen, "%s%s[%s]", reason, reason[0] != '\0' ? " " : "", marker);
    return buf;
}

static bool portone_build_refund(const struct gateway_build_ctx *ctx,
                                 const struct refund_request *req, struct gateway_call_spec *spec,
                                 char *err, size_t errlen)
{
    char reason[1024];
    json_t *body = NULL;
    bool ok = false;
    const char *store = ctx->cfg != NULL ? ctx->cfg->store_id : NULL;

    memset(spec, 0, sizeof(*spec));
    spec->method = "POST";
    if (!payment_url(ctx, req->payment_key, "/cancel", false, spec, err, errlen)) {
        gateway_call_spec_clear(spec);
        return false;
    }
    body = json_object();
    if (body == NULL ||
        json_object_set_new(body, "reason",
                            json_string(marked_reason(req, reason, sizeof(reason)))) ||
        /* The amount always: without it PortOne cancels the whole balance. */
        json_object_set_new(body, "amount", json_integer(req->amount)))
        goto oom;
    if (req->has_guard &&
        json_object_set_new(body, "currentCancellableAmount", json_integer(req->guard_amount)))
        goto oom;
    if (store != NULL && store[0] != '\0' &&
        json_object_set_new(body, "storeId", json_string(store)))
        goto oom;
    if (!gateway_call_spec_json_refund(spec, ctx, body, req))
        goto oom;
    ok = true;
    goto out;
oom:
    snprintf(err, errlen, "could not build portone cancel request: out of memory");
    gateway_call_spec_clear(spec);
out:
    json_decref(body);
    return ok;
}

static bool portone_build_inquiry(const struct gateway_build_ctx *ctx,
                                  const struct refund_request *req, size_t step,
                                  struct gateway_call_spec *spec, char *err, size_t errlen)
{
    (void)step; /* one call: GET the payment */
    memset(spec, 0, sizeof(*spec));
    spec->method = "GET";
    if (!payment_url(ctx, req->payment_key, "", true, spec, err, errlen)) {
        gateway_call_spec_clear(spec);
        return false;
    }
    return gateway_call_spec_finish_get(spec, ctx, "portone inquiry request", err, errlen);
}

/* {"type", "message"}; PG_PROVIDER's PG words go into the message. */
static void portone_parse_error(const char *body, char *code, size_t codelen, char *message,
                                size_t msglen)
{
    gateway_error_fields(body, NULL, "type", code, codelen, message, msglen);
    if (strcmp(code, "PG_PROVIDER") != 0)
        return;
    json_t *root = json_loads(body, 0, NULL);
    const char *pg_code = json_string_value(json_object_get(root, "pgCode"));
    const char *pg_message = json_string_value(json_object_get(root, "pgMessage"));
    if (pg_code != NULL || pg_message != NULL) {
        char base[256];
        snprintf(base, sizeof(base), "%s", message);
        snprintf(message, msglen, "%.120s (PG %.40s: %.80s)", base, pg_code ? pg_code : "?",
                 pg_message ? pg_message : "");
    }
    json_decref(root);
}

/* Is cancellation c ours: its reason ends in our marker? The end only: a
 * reason of another request that quoted our marker is not ours. */
static bool is_ours(const json_t *c, const char *marker)
{
    const char *reason = json_string_value(json_object_get(c, "reason"));
    size_t rlen = reason ? strlen(reason) : 0, mlen = strlen(marker);

    return reason != NULL && rlen >= mlen + 2 && reason[rlen - mlen - 2] == '[' &&
           strncmp(reason + rlen - mlen - 1, marker, mlen) == 0 && reason[rlen - 1] == ']';
}

static const char *portone_refund_shape(const char *body, const struct refund_request *req,
                                        char *why, size_t whylen)
{
    static const char *const shapes[] = {"cancellation.SUCCEEDED", "cancellation.REQUESTED",
                                         "cancellation.FAILED"};
    char marker[96];
    const char *shape = "";
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;
    json_t *c = json_object_get(root, "cancellation");
    const char *status = json_string_value(json_object_get(c, "status"));
    int64_t amount = json_number_i64(json_object_get(c, "totalAmount"));

    gateway_marker(req->request_id, marker, sizeof(marker));
    if (!json_is_object(c) || status == NULL) {
        snprintf(why, whylen, "the 2xx answer is not a PortOne cancellation");
    } else if (amount != req->amount) {
        snprintf(why, whylen, "the cancellation is for %lld, the request for %lld",
                 (long long)amount, (long long)req->amount);
    } else if (!is_ours(c, marker)) {
        snprintf(why, whylen, "the cancellation's reason does not end in [%s]", marker);
    } else {
        for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
            if (strcmp(shapes[i] + strlen("cancellation."), status) == 0)
                shape = shapes[i];
        if (shape[0] == '\0')
            snprintf(why, whylen, "unknown cancellation status \"%.40s\"", status);
        else
            snprintf(why, whylen, "cancellation status %s", status);
    }
    json_decref(root);
    return shape;
}

/* What the cancellations of ours in list say, and the amount of the last. */
struct ours {
    bool succeeded, requested, failed;
    int64_t amount;
};

static void find_ours(const json_t *list, const char *marker, struct ours *o)
{
    size_t i;
    json_t *c;

    memset(o, 0, sizeof(*o));
    o->amount = -1;
    json_array_foreach(list, i, c)
    {
        if (!is_ours(c, marker))
            continue;
        const char *st = json_string_value(json_object_get(c, "status"));
        o->amount = json_number_i64(json_object_get(c, "totalAmount"));
        if (st != NULL && strcmp(st, "SUCCEEDED") == 0)
            o->succeeded = true;
        else if (st != NULL && strcmp(st, "FAILED") == 0)
            o->failed = true;
        else
            o->requested = true; /* REQUESTED, or a status we do not know: not settled */
    }
}

/* The finding from our cancellations, or FINDING_NONE when there is none. */
static enum refund_finding judge_ours(const struct ours *o, const struct refund_request *req,
                                      char *detail, size_t detaillen)
{
    if (!o->succeeded && !o->requested && !o->failed)
        return FINDING_NONE;
    if ((o->succeeded || o->requested) && o->amount != req->amount) {
        snprintf(detail, detaillen, "our cancellation is for %lld, the request %lld",
                 (long long)o->amount, (long long)req->amount);
        return FINDING_MISMATCH;
    }
    if (o->succeeded) {
        snprintf(detail, detaillen, "our cancellation of %lld SUCCEEDED", (long long)o->amount);
        return FINDING_REFUNDED;
    }
    if (o->requested) {
        snprintf(detail, detaillen, "our cancellation of %lld is REQUESTED", (long long)o->amount);
        return FINDING_PENDING;
    }
    snprintf(detail, detaillen, "our cancellation FAILED: no money moved");
    return FINDING_REFUND_FAILED;
}

static void portone_judge(const char *const *bodies, size_t n, const struct refund_request *req,
                          struct gateway_inquiry *out)
{
    char marker[96];
    struct ours o;
    json_t *root = n >= 1 && bodies[0] != NULL ? json_loads(bodies[0], 0, NULL) : NULL;
    json_t *amount = json_object_get(root, "amount");
    json_t *list = json_object_get(root, "cancellations");
    const char *status = json_string_value(json_object_get(root, "status"));
    const char *currency = json_string_value(json_object_get(root, "currency"));
    int64_t total = json_number_i64(json_object_get(amount, "total"));
    int64_t cancelled = json_number_i64(json_object_get(amount, "cancelled"));

    snprintf(out->currency, sizeof(out->currency), "%s", currency != NULL ? currency : "");
    /* cancellations[] is required on PARTIAL_CANCELLED and CANCELLED, and
     * may be absent on a payment with none. */
    bool list_ok = json_is_array(list) ||
                   (list == NULL && status != NULL && strcmp(status, "PARTIAL_CANCELLED") != 0 &&
                    strcmp(status, "CANCELLED") != 0);
    if (status == NULL || currency == NULL || total < 0 || cancelled < 0 || cancelled > total ||
        !list_ok) {
        out->finding = FINDING_UNKNOWN;
        snprintf(out->detail, sizeof(out->detail), "the inquiry answer is not a PortOne Payment");
        goto out;
    }
    out->payment_amount = total;
    out->refunded_amount = cancelled;
    if (req->currency != NULL && strcmp(currency, req->currency) != 0) {
        out->finding = FINDING_MISMATCH;
        snprintf(out->detail, sizeof(out->detail), "the payment is in %s, the request in %s",
                 currency, req->currency);
        goto out;
    }
    gateway_marker(req->request_id, marker, sizeof(marker));
    find_ours(list, marker, &o);
    out->finding = judge_ours(&o, req, out->detail, sizeof(out->detail));
    if (out->finding != FINDING_NONE)
        goto out;
    if (strcmp(status, "CANCELLED") == 0) {
        out->finding = FINDING_ALREADY_REFUNDED;
        snprintf(out->detail, sizeof(out->detail),
                 "the payment is CANCELLED (%lld), not by a cancellation of ours",
                 (long long)cancelled);
        goto out;
    }
    /* The guard's value: PortOne's Payment has no "cancellable balance"
     * field; total - cancelled is the reading docs/gateways.md gives. */
    out->cancellable_amount = total - cancelled;
    out->finding = FINDING_NOT_REFUNDED;
    snprintf(out->detail, sizeof(out->detail), "no cancellation of ours; %lld of %lld cancelled",
             (long long)cancelled, (long long)total);
out:
    json_decref(root);
}

const struct gateway_driver gateway_portone_driver = {
    .kind = GATEWAY_PORTONE,
    .safety = GATEWAY_SAFETY_IDEMPOTENCY_KEY | GATEWAY_SAFETY_BALANCE_GUARD |
              GATEWAY_SAFETY_INQUIRE_FIRST,
    .completion = GATEWAY_COMPLETION_ANSWER,
    /* "16자 이상 256자 이하의 ASCII 문자열", sent as an RFC 8941 string. */
    .key_min_len = 16,
    .key_max_len = 256,
    .key_quoted = true,
    .inquiry_rule = "portone.inquiry",
    .missing_payment_code = "PAYMENT_NOT_FOUND",
    .confirm_already_refunded = false,
    .inquiry_replays_refund = false,
    .auth_header = portone_auth,
    .build_refund = portone_build_refund,
    .refund_shape = portone_refund_shape,
    .parse_error = portone_parse_error,
    .inquiry_calls = 1,
    .build_inquiry = portone_build_inquiry,
    .judge = portone_judge,
};
