/*
 * toss: Toss Payments cancel and inquiry. See toss.h.
 */
#include "base/base64.h"
#include "toss.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "pipeline.h"

#define TOSS_PREFIX "/v1/payments/"

/* What the cancel handler needs beyond the request. */
struct toss_cancel {
    const char *payment_key;
    json_t *body; /* borrowed; NULL when the body is not JSON */
};

/* True if authorization is "Basic base64(secret + ":")". */
static bool authorized(const char *secret, const char *authorization)
{
    size_t slen = strlen(secret);
    bool ok = false;

    if (authorization == NULL || strncmp(authorization, "Basic ", 6) != 0)
        return false;
    unsigned char *raw = malloc(slen + 1);
    char *expected = malloc(BASE64_ENCODED_SIZE(slen + 1));
    if (raw != NULL && expected != NULL) {
        memcpy(raw, secret, slen);
        raw[slen] = ':';
        base64_encode(raw, slen + 1, expected);
        const char *given = authorization + 6;
        while (*given == ' ')
            given++;
        ok = strcmp(given, expected) == 0;
    }
    free(raw);
    free(expected);
    return ok;
}

static void answer_error(struct sim_response *resp, int status, const char *code,
                         const char *message)
{
    sim_respond_error(resp, SIM_GATEWAY_TOSS, status, NULL, code, message);
}

/* The Toss payment object of p. New reference. */
static json_t *payment_object(const struct ledger_payment *p)
{
    char at[40];
    const char *status;
    json_t *cancels = json_array();

    if (p->refunded == 0)
        status = "DONE";
    else if (p->refunded >= p->amount)
        status = "CANCELED";
    else
        status = "PARTIAL_CANCELED";
    for (size_t i = 0; i < p->nrefunds; i++) {
        const struct ledger_refund *r = &p->refunds[i];
        sim_format_time(r->at_ms, at, sizeof(at));
        /* A simulated cancel is done when answered: cancelStatus DONE. */
        json_array_append_new(cancels, json_pack("{s:I, s:s, s:s, s:s, s:s}", "cancelAmount",
                                                 (json_int_t)r->amount, "cancelReason",
                                                 r->reason ? r->reason : "", "transactionKey",
                                                 r->id, "canceledAt", at, "cancelStatus", "DONE"));
    }
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:o}", "paymentKey", p->payment_key, "orderId",
                     p->order_id, "status", status, "totalAmount", (json_int_t)p->amount,
                     "balanceAmount", (json_int_t)(p->amount - p->refunded), "currency",
                     p->currency, "cancels", cancels);
}

static void process_cancel(struct sim *sim, const struct sim_request *req, void *arg,
                           struct sim_response *resp)
{
    const struct toss_cancel *c = arg;
    int64_t amount = -1;
    struct ledger_payment *after = NULL;

    if (!json_is_object(c->body)) {
        answer_error(resp, 400, "INVALID_REQUEST", "the request body must be a JSON object");
        return;
    }
    const char *reason = json_string_value(json_object_get(c->body, "cancelReason"));
    if (reason == NULL || reason[0] == '\0') {
        answer_error(resp, 400, "INVALID_REQUEST", "cancelReason is required");
        return;
    }
    const json_t *jamount = json_object_get(c->body, "cancelAmount");
    if (jamount != NULL && !json_is_null(jamount)) {
        if (!json_is_integer(jamount) || json_integer_value(jamount) <= 0) {
            answer_error(resp, 400, "INVALID_REQUEST", "cancelAmount must be a positive integer");
            return;
        }
        amount = json_integer_value(jamount);
    }
    struct ledger_refund_spec spec = {
        .amount = amount,
        .reason = reason,
        .idempotency_key = req->idempotency_key,
    };
    switch (ledger_refund(sim->ledger, SIM_GATEWAY_TOSS, c->payment_key, &spec, &after)) {
    case LEDGER_REFUND_OK:
        if (after != NULL)
            sim_respond_json(resp, 200, payment_object(after));
        else
            answer_error(resp, 500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "out of memory");
        break;
    case LEDGER_REFUND_NOT_FOUND:
        answer_error(resp, 404, "NOT_FOUND_PAYMENT", "payment not found");
        break;
    case LEDGER_REFUND_NOTHING_LEFT:
        answer_error(resp, 400, "ALREADY_CANCELED_PAYMENT", "the payment was already canceled");
        break;
    case LEDGER_REFUND_TOO_LARGE:
        /* Toss documents it as a 403: "취소 할 수 없는 금액 입니다." */
        answer_error(resp, 403, "NOT_CANCELABLE_AMOUNT",
                     "the cancel amount is larger than the cancelable balance");
        break;
    case LEDGER_REFUND_NO_MEMORY:
    case LEDGER_REFUND_BALANCE_DIFFERS: /* Toss has no balance guard: never asked */
        answer_error(resp, 500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "out of memory");
        break;
    }
    ledger_payment_free(after);
}

static void process_inquiry(struct sim *sim, const struct sim_request *req, void *arg,
                            struct sim_response *resp)
{
    const char *payment_key = arg;
    struct ledger_payment *p = ledger_payment_get(sim->ledger, SIM_GATEWAY_TOSS, payment_key);

    (void)req;
    if (p == NULL) {
        answer_error(resp, 404, "NOT_FOUND_PAYMENT", "payment not found");
        return;
    }
    sim_respond_json(resp, 200, payment_object(p));
    ledger_payment_free(p);
}

/* Toss: "멱등키는 최대 300자" (at most 300 characters); a longer key gets
 * 400 INVALID_IDEMPOTENCY_KEY, and nothing is stored under it. */
#define TOSS_MAX_IDEMPOTENCY_KEY 300

static bool validate_cancel(struct sim *sim, const struct sim_request *req, void *arg,
                            struct sim_response *resp)
{
    (void)sim;
    (void)arg;
    if (req->idempotency_key != NULL && strlen(req->idempotency_key) > TOSS_MAX_IDEMPOTENCY_KEY) {
        answer_error(resp, 400, "INVALID_IDEMPOTENCY_KEY",
                     "the idempotency key must be at most 300 characters");
        return false;
    }
    return true;
}

void toss_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    char *payment_key = NULL;
    json_t *body = NULL;
    char *scope = NULL;

    enum sim_payment_route route =
        sim_payment_route(req, TOSS_PREFIX, SIM_GATEWAY_TOSS, &payment_key, resp);
    if (route == SIM_ROUTE_ANSWERED)
        return;
    struct pipeline_call call = {
        .gateway = SIM_GATEWAY_TOSS,
        .payment_key = payment_key,
        .authorized = authorized(sim->toss_secret, req->authorization),
    };
    if (route == SIM_ROUTE_INQUIRY) {
        call.op = FAULT_OP_INQUIRY;
        call.process = process_inquiry;
        call.arg = payment_key;
        pipeline_run(sim, req, &call, resp);
        goto out;
    }
    body = json_loadb(req->body, req->body_len, 0, NULL);
    /* Toss names a repeat by key, API key, URL and method
     * ("멱등키와 API 키, API 주소, HTTP 메서드 조합"): the body is not compared,
     * so the same key with another body gets the first answer. One API key
     * gets past the credentials, so the key is scoped by method and URL. */
    size_t scope_len = strlen(req->method) + strlen(req->path) + 2;
    scope = malloc(scope_len);
    if (scope == NULL) {
        answer_error(resp, 500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "out of memory");
        goto out;
    }
    snprintf(scope, scope_len, "%s %s", req->method, req->path);
    struct toss_cancel cancel = {.payment_key = payment_key, .body = body};
    call.op = FAULT_OP_REFUND;
    call.fingerprint = "";
    call.scope = scope;
    call.validate = validate_cancel;
    call.process = process_cancel;
    call.arg = &cancel;
    pipeline_run(sim, req, &call, resp);
    /* Toss documents no replay marker: the call log records the replay, the
     * answer does not carry Idempotent-Replayed. */
    resp->replayed = false;
out:
    free(scope);
    json_decref(body);
    free(payment_key);
}
