/*
 * gateway_kakaopay: the KakaoPay online single-payment cancel and order
 * inquiry (open-api.kakaopay.com; docs/gateways.md, "KakaoPay").
 *
 * POST {base}/online/v1/payment/cancel with `Authorization: SECRET_KEY
 * <secret>` and JSON {"cid", "tid", "cancel_amount",
 * "cancel_tax_free_amount", "cancel_available_amount", "payload"}; the
 * inquiry is POST {base}/online/v1/payment/order {"cid", "tid"}.
 *
 * KakaoPay has no idempotency key: two cancels are two refunds. The safety
 * is inquire-first (gateway_driver.h): every attempt starts with the order
 * inquiry, and a cancel goes out only when it proves that none of ours
 * applied. Our mark (gateway_marker()) travels in the cancel's payload,
 * which the inquiry's payment_action_details give back: that is how a
 * cancel is known to be ours. Errors come as {"error_code", "error_message",
 * "extras"} (the new API) or {"code", "msg", "extras"} (the legacy one);
 * both are read.
 */
#include "base/bounds.h"
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define CANCEL_PATH "/online/v1/payment/cancel"
#define ORDER_PATH  "/online/v1/payment/order"

/* KakaoPay is a Korean won service: its amounts carry no currency. */
#define KAKAOPAY_CURRENCY "KRW"

static char *kakaopay_auth(const struct config_gateway *cfg)
{
    return gateway_secret_header("Authorization: SECRET_KEY ", cfg->secret_key);
}

/* A POST of obj to {base}{path} with the JSON headers (no key: KakaoPay
 * takes none) into spec; false with err when out of memory or without a
 * cid (spec cleared). Steals obj. */
static bool post_spec(const struct gateway_build_ctx *ctx, const struct refund_request *req,
                      const char *path, json_t *obj, struct gateway_call_spec *spec, char *err,
                      size_t errlen)
{
    /* Whatever the caller's ctx says: never an Idempotency-Key here. */
    struct gateway_build_ctx kctx = *ctx;
    kctx.driver = &gateway_kakaopay_driver;

    memset(spec, 0, sizeof(*spec));
    spec->method = "POST";
    spec->path_prefix = path;
    size_t n = strlen(ctx->base_url) + strlen(path) + 1;
    spec->url = malloc(n);
    if (spec->url != NULL)
        snprintf(spec->url, n, "%s%s", ctx->base_url, path);
    spec->body = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (spec->url == NULL || spec->body == NULL ||
        !gateway_call_spec_refund_headers(spec, &kctx, "application/json", req)) {
        snprintf(err, errlen, "could not build the kakaopay request: out of memory");
        gateway_call_spec_clear(spec);
        return false;
    }
    spec->body_len = strlen(spec->body);
    return true;
}

/* The merchant code, or NULL with err (config validation requires one). */
static const char *cid_of(const struct gateway_build_ctx *ctx, char *err, size_t errlen)
{
    const char *cid = ctx->cfg != NULL ? ctx->cfg->cid : NULL;
    if (cid == NULL || cid[0] == '\0')
        snprintf(err, errlen, "cannot build a kakaopay request: no cid configured");
    return cid != NULL && cid[0] != '\0' ? cid : NULL;
}

static bool kakaopay_build_refund(const struct gateway_build_ctx *ctx,
                                  const struct refund_request *req, struct gateway_call_spec *spec,
                                  char *err, size_t errlen)
{
    char mark[96];
    const char *cid = cid_of(ctx, err, errlen);

    memset(spec, 0, sizeof(*spec));
    if (cid == NULL)
        return false;
    /* The amount always (never more than the request's may move); no
     * tax-free part; our mark in the payload, for the inquiry. */
    json_t *obj =
        json_pack("{s:s, s:s, s:I, s:I}", "cid", cid, "tid", req->payment_key, "cancel_amount",
                  (json_int_t)req->amount, "cancel_tax_free_amount", (json_int_t)0);
    /* "취소 가능 금액(결제 취소 요청 금액 포함)": the balance the inquiry
     * just read. Whether KakaoPay refuses a cancel when it differs is not
     * documented; it costs nothing, and inquire-first does not lean on it. */
    if (obj != NULL && req->has_guard &&
        json_object_set_new(obj, "cancel_available_amount", json_integer(req->guard_amount)))
        goto oom;
    if (obj != NULL &&
        json_object_set_new(obj, "payload",
                            json_string(gateway_marker(req->request_id, mark, sizeof(mark)))))
        goto oom;
    if (obj == NULL)
        goto oom;
    return post_spec(ctx, req, CANCEL_PATH, obj, spec, err, errlen);
oom:
    json_decref(obj);
    snprintf(err, errlen, "could not build the kakaopay cancel request: out of memory");
    return false;
}

static bool kakaopay_build_inquiry(const struct gateway_build_ctx *ctx,
                                   const struct refund_request *req, size_t step,
                                   struct gateway_call_spec *spec, char *err, size_t errlen)
{
    const char *cid = cid_of(ctx, err, errlen);

    (void)step; /* one call: the order */
    memset(spec, 0, sizeof(*spec));
    if (cid == NULL)
        return false;
    json_t *obj = json_pack("{s:s, s:s}", "cid", cid, "tid", req->payment_key);
    return post_spec(ctx, req, ORDER_PATH, obj, spec, err, errlen);
}

/* member.total of obj, or -1 when it is not a whole number. */
static int64_t total_of(const json_t *obj, const char *member)
{
    return json_number_i64(json_object_get(json_object_get(obj, member), "total"));
}

static const char *kakaopay_refund_shape(const char *body, const struct refund_request *req,
                                         char *why, size_t whylen)
{
    char mark[96];
    const char *shape = "";
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;

    const char *tid = json_string_value(json_object_get(root, "tid"));
    const char *status = json_string_value(json_object_get(root, "status"));
    const json_t *payload = json_object_get(root, "payload");
    int64_t approved = total_of(root, "approved_cancel_amount");
    gateway_marker(req->request_id, mark, sizeof(mark));
    if (!json_is_object(root) || tid == NULL || status == NULL)
        snprintf(why, whylen, "the 2xx answer is not a KakaoPay cancel answer");
    else if (strcmp(tid, req->payment_key) != 0)
        snprintf(why, whylen, "the answer is about another payment");
    else if (req->currency != NULL && strcmp(req->currency, KAKAOPAY_CURRENCY) != 0)
        snprintf(why, whylen, "KakaoPay cancels won, the request is in %s", req->currency);
    else if (strcmp(status, "PART_CANCEL_PAYMENT") != 0 && strcmp(status, "CANCEL_PAYMENT") != 0)
        snprintf(why, whylen, "the payment's status is %.40s after the cancel", status);
    else if (approved != req->amount)
        snprintf(why, whylen, "the answer cancels %lld, the request %lld", (long long)approved,
                 (long long)req->amount);
    else if (payload != NULL && !json_is_null(payload) &&
             (!json_is_string(payload) || strcmp(json_string_value(payload), mark) != 0))
        /* Echoed, but not our mark: not our cancel's answer. */
        snprintf(why, whylen, "the answer's payload is not our mark");
    else
        shape = "cancel";
    json_decref(root);
    return shape;
}

/* The code of an error member: a number ("-780") or a string, as text. */
static void code_text(const json_t *v, char *code, size_t codelen)
{
    if (json_is_integer(v))
        snprintf(code, codelen, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v))
        snprintf(code, codelen, "%s", json_string_value(v));
}

static void kakaopay_parse_error(const char *body, char *code, size_t codelen, char *message,
                                 size_t msglen)
{
    code[0] = '\0';
    message[0] = '\0';
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    /* The new API's names first, then the legacy ones. */
    const json_t *c = json_object_get(root, "error_code");
    const char *m = json_string_value(json_object_get(root, "error_message"));
    if (c == NULL)
        c = json_object_get(root, "code");
    if (m == NULL)
        m = json_string_value(json_object_get(root, "msg"));
    code_text(c, code, codelen);
    snprintf(message, msglen, "%s", m != NULL ? m : "");
    /* The payment method's own answer ("USER_LOCKED": a transaction is in
     * progress) decides more than KakaoPay's code: "-780/USER_LOCKED". */
    const json_t *extras = json_object_get(root, "extras");
    const char *mcode = json_string_value(json_object_get(extras, "method_result_code"));
    const char *mmsg = json_string_value(json_object_get(extras, "method_result_message"));
    if (code[0] != '\0' && mcode != NULL && mcode[0] != '\0') {
        size_t used = strlen(code);
        snprintf(code + used, codelen - used, "/%s", mcode);
    }
    if (mmsg != NULL && mmsg[0] != '\0') {
        size_t used = strlen(message);
        snprintf(message + used, msglen - used, "%s%s", used ? ": " : "", mmsg);
    }
    json_decref(root);
}

/* What payment_action_details says about our request. */
struct kp_actions {
    int ours;            /* CANCEL actions carrying our mark */
    int ours_other;      /* ... of them with another amount than ours */
    int unmarked_same;   /* CANCEL actions of our amount without any payload */
    int64_t sum;         /* of every CANCEL action's amount (saturating) */
    bool bad;            /* an entry is not what KakaoPay documents */
    const char *our_aid; /* borrowed from the JSON */
};

static void read_actions(const json_t *actions, const struct refund_request *req, const char *mark,
                         struct kp_actions *a)
{
    size_t i;
    const json_t *e;

    memset(a, 0, sizeof(*a));
    json_array_foreach(actions, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "payment_action_type"));
        int64_t amount = json_number_i64(json_object_get(e, "amount"));
        const json_t *payload = json_object_get(e, "payload");
        if (type == NULL || amount < 0) {
            a->bad = true;
            continue;
        }
        if (strcmp(type, "CANCEL") != 0)
            continue;
        a->sum = bounds_add_sat(a->sum, amount);
        const char *p = json_string_value(payload);
        if (p != NULL && strcmp(p, mark) == 0) {
            a->ours++;
            if (amount != req->amount)
                a->ours_other++;
            a->our_aid = json_string_value(json_object_get(e, "aid"));
        } else if ((p == NULL || p[0] == '\0') && amount == req->amount) {
            a->unmarked_same++;
        }
    }
}

/* Decide the finding from an order whose amounts were read. */
static enum refund_finding judge_order(const json_t *root, const struct refund_request *req,
                                       const struct gateway_inquiry *q, char *detail,
                                       size_t detaillen)
{
    char mark[96];
    struct kp_actions a;
    const char *status = json_string_value(json_object_get(root, "status"));

    read_actions(json_object_get(root, "payment_action_details"), req,
                 gateway_marker(req->request_id, mark, sizeof(mark)), &a);
    if (a.ours > 0) {
        if (a.ours_other > 0) {
            snprintf(detail, detaillen, "a cancel with our mark is not of %lld",
                     (long long)req->amount);
            return FINDING_MISMATCH;
        }
        /* More than one is a refund made twice: still ours, said loudly. */
        snprintf(detail, detaillen, "%s%d cancel%s of %lld with our mark (aid %.24s)",
                 a.ours > 1 ? "REFUNDED TWICE: " : "", a.ours, a.ours > 1 ? "s" : "",
                 (long long)req->amount, a.our_aid != NULL ? a.our_aid : "?");
        return FINDING_REFUNDED;
    }
    if (req->currency != NULL && strcmp(req->currency, KAKAOPAY_CURRENCY) != 0) {
        snprintf(detail, detaillen, "KakaoPay cancels won, the request is in %s", req->currency);
        return FINDING_MISMATCH;
    }
    if (q->cancellable_amount == 0 || (status != NULL && strcmp(status, "CANCEL_PAYMENT") == 0)) {
        snprintf(detail, detaillen, "the payment is fully cancelled (%lld), not with our mark",
                 (long long)q->refunded_amount);
        return FINDING_ALREADY_REFUNDED;
    }
    if (req->amount > q->payment_amount) {
        snprintf(detail, detaillen, "the request is for %lld, the payment for %lld",
                 (long long)req->amount, (long long)q->payment_amount);
        return FINDING_MISMATCH;
    }
    if (a.bad || a.sum != q->refunded_amount) {
        /* A cancel the list does not show could be ours. */
        snprintf(detail, detaillen, "the listed cancels add up to %lld, canceled_amount is %lld",
                 (long long)a.sum, (long long)q->refunded_amount);
        return FINDING_UNKNOWN;
    }
    if (a.unmarked_same > req->same_amount_done + req->same_amount_open) {
        /* A cancel of our amount without a payload: ours, if KakaoPay ever
         * drops the payload (the new API's echo is not confirmed), or one
         * made by hand. Nothing tells them apart: no new cancel. */
        snprintf(detail, detaillen,
                 "a cancel of %lld without a payload: it may be ours, nothing tells",
                 (long long)req->amount);
        return FINDING_UNKNOWN;
    }
    snprintf(detail, detaillen, "no cancel with our mark; %lld of %lld cancelled",
             (long long)q->refunded_amount, (long long)q->payment_amount);
    return FINDING_NOT_REFUNDED;
}

static void kakaopay_judge(const char *const *bodies, size_t n, const struct refund_request *req,
                           struct gateway_inquiry *out)
{
    json_t *root = n >= 1 && bodies[0] != NULL ? json_loads(bodies[0], 0, NULL) : NULL;
    const char *tid = json_string_value(json_object_get(root, "tid"));

    out->finding = FINDING_UNKNOWN;
    out->payment_amount = total_of(root, "amount");
    out->refunded_amount = total_of(root, "canceled_amount");
    out->cancellable_amount = total_of(root, "cancel_available_amount");
    if (tid == NULL || strcmp(tid, req->payment_key) != 0 || out->payment_amount < 0 ||
        out->refunded_amount < 0 || out->cancellable_amount < 0 ||
        !json_is_array(json_object_get(root, "payment_action_details"))) {
        snprintf(out->detail, sizeof(out->detail),
                 "the inquiry answer is not this payment's order (tid, amounts, "
                 "payment_action_details)");
        out->cancellable_amount = -1; /* never a guard from an unread answer */
    } else {
        snprintf(out->currency, sizeof(out->currency), KAKAOPAY_CURRENCY);
        out->finding = judge_order(root, req, out, out->detail, sizeof(out->detail));
    }
    json_decref(root);
}

const struct gateway_driver gateway_kakaopay_driver = {
    .kind = GATEWAY_KAKAOPAY,
    .safety = GATEWAY_SAFETY_INQUIRE_FIRST,
    .completion = GATEWAY_COMPLETION_ANSWER,
    .inquiry_rule = "kakaopay.inquiry",
    /* How KakaoPay answers an unknown tid is not documented: an inquiry
     * error never proves "no such payment". */
    .missing_payment_code = NULL,
    .confirm_already_refunded = false,
    .auth_header = kakaopay_auth,
    .build_refund = kakaopay_build_refund,
    .refund_shape = kakaopay_refund_shape,
    .parse_error = kakaopay_parse_error,
    .inquiry_calls = 1,
    .build_inquiry = kakaopay_build_inquiry,
    .judge = kakaopay_judge,
};
