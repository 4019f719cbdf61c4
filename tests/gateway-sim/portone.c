/*
 * portone: PortOne V2 cancel and inquiry. See portone.h and
 * docs/gateway-sim.md.
 */
#include "portone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

/* PortOne: the key is "16자 이상 256자 이하의 ASCII 문자열". */
#define PORTONE_KEY_MIN 16
#define PORTONE_KEY_MAX 256

/* What the cancel handler needs beyond the request. */
struct portone_cancel {
    const char *payment_id;
    json_t *body; /* borrowed; NULL when the body is not JSON */
};

static void answer_error(struct sim_response *resp, int status, const char *type,
                         const char *message)
{
    sim_respond_error(resp, SIM_GATEWAY_PORTONE, status, NULL, type, message);
}

/* ---- the pipeline's own answers, in PortOne's words ---- */

/* PortOne documents no 429 and no 5xx but 502 PG_PROVIDER (research §1.5):
 * the other types are the simulator's choice. */
struct portone_fault_word {
    int status;
    const char *type;
    const char *message;
};

static const struct portone_fault_word fault_words[] = {
    [FAULT_ERROR_5XX] = {503, "SERVICE_UNAVAILABLE", "the gateway is temporarily unavailable"},
    [FAULT_PROVIDER_ERROR] = {502, "PG_PROVIDER", "PG사에서 오류를 전달했습니다"},
    [FAULT_RATE_LIMITED] = {429, "TOO_MANY_REQUESTS", "too many requests: retry later"},
    [FAULT_HANG] = {504, "GATEWAY_TIMEOUT", "the gateway timed out"},
    [FAULT_APPLY_THEN_HANG] = {504, "GATEWAY_TIMEOUT", "the gateway timed out"},
    [FAULT_APPLY_THEN_DROP] = {0, NULL, NULL},
    [FAULT_PERMANENT] = {400, "INVALID_REQUEST", "the request cannot be processed"},
    [FAULT_BAD_CREDENTIALS] = {401, "UNAUTHORIZED", "인증 정보가 올바르지 않습니다"},
    [FAULT_IN_PROGRESS] = {409, "IDEMPOTENCY_OUTSTANDING_REQUEST",
                           "a request with this idempotency key is still being processed"},
    [FAULT_RAW] = {0, NULL, NULL},
};

/* The simulated PG's code when a provider_error fault names none. */
#define PORTONE_DEFAULT_PG_CODE "SIM_PG_ERROR"

/* The pipeline's own answers in PortOne's words (pipeline_error_fn): fault
 * f, the 401 with f NULL; a key in flight comes as an in_progress fault
 * ([P-idem]: 409 IDEMPOTENCY_OUTSTANDING_REQUEST). */
static void answer_pipeline_error(struct sim *sim, const struct fault *f, void *arg,
                                  struct sim_response *resp)
{
    (void)sim;
    (void)arg;
    if (f == NULL) {
        answer_error(resp, 401, "UNAUTHORIZED", "인증 정보가 올바르지 않습니다");
        return;
    }
    const struct portone_fault_word *w = &fault_words[f->type];
    int status = f->status ? f->status : w->status;
    const char *message = f->message ? f->message : w->message;

    if (f->type == FAULT_BAD_CREDENTIALS)
        status = 401;
    if (f->type != FAULT_PROVIDER_ERROR) {
        answer_error(resp, status, f->code ? f->code : w->type, message);
        return;
    }
    /* PG_PROVIDER requires pgCode and pgMessage: the PG's own words. The
     * fault's code is the PG's code; the type stays PG_PROVIDER. */
    sim_respond_json(resp, status,
                     json_pack("{s:s, s:s, s:s, s:s}", "type", "PG_PROVIDER", "message", message,
                               "pgCode", f->code ? f->code : PORTONE_DEFAULT_PG_CODE, "pgMessage",
                               message));
}

/* ---- objects ---- */

const char *portone_cancellation_status(enum ledger_status status)
{
    switch (status) {
    case LEDGER_STATUS_SUCCEEDED:
        return "SUCCEEDED";
    case LEDGER_STATUS_PENDING:
    case LEDGER_STATUS_REQUIRES_ACTION:
        return "REQUESTED";
    case LEDGER_STATUS_FAILED:
    case LEDGER_STATUS_CANCELED:
        break;
    }
    return "FAILED";
}

/* The value of metadata name of r as an integer, or dflt. */
static int64_t meta_int(const struct ledger_refund *r, const char *name, int64_t dflt)
{
    for (size_t i = 0; i < r->nmetadata; i++)
        if (strcmp(r->metadata[i].name, name) == 0)
            return strtoll(r->metadata[i].value, NULL, 10);
    return dflt;
}

/* When a SUCCEEDED cancellation was done: settled later, or answered so. */
static int64_t cancelled_ms(const struct ledger_refund *r)
{
    return r->status_ms ? r->status_ms : r->at_ms;
}

json_t *portone_cancellation_object(const struct ledger_refund *r)
{
    char at[40], pg_id[96];
    const char *status = portone_cancellation_status(r->status);
    int64_t tax_free = meta_int(r, "taxFreeAmount", 0);
    /* "값을 입력하지 않으면 자동 계산됩니다": 1/11 of the taxable part. */
    int64_t vat = meta_int(r, "vatAmount", (r->amount - tax_free + 5) / 11);

    sim_format_time(r->at_ms, at, sizeof(at));
    snprintf(pg_id, sizeof(pg_id), "pgc-%s", r->id);
    json_t *obj = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "status", status, "id",
                            r->id, "pgCancellationId", pg_id, "totalAmount", (json_int_t)r->amount,
                            "taxFreeAmount", (json_int_t)tax_free, "vatAmount", (json_int_t)vat,
                            "reason", r->reason ? r->reason : "", "requestedAt", at);
    if (obj != NULL && strcmp(status, "SUCCEEDED") == 0) {
        sim_format_time(cancelled_ms(r), at, sizeof(at));
        json_object_set_new(obj, "cancelledAt", json_string(at));
    }
    return obj;
}

/* The PortOne Payment object of p (new reference). amount.cancelled counts
 * what is cancelled (the preset part and SUCCEEDED cancellations); a
 * REQUESTED cancellation is not cancelled yet but holds its amount out of
 * the cancellable balance. */
static json_t *payment_object(const struct ledger_payment *p)
{
    char at[40];
    int64_t requested = 0, cancelled_tax_free = 0, last_cancel_ms = 0;
    json_t *cancellations = json_array();

    for (size_t i = 0; i < p->nrefunds; i++) {
        const struct ledger_refund *r = &p->refunds[i];
        json_array_append_new(cancellations, portone_cancellation_object(r));
        if (r->status == LEDGER_STATUS_SUCCEEDED) {
            cancelled_tax_free += meta_int(r, "taxFreeAmount", 0);
            if (cancelled_ms(r) > last_cancel_ms)
                last_cancel_ms = cancelled_ms(r);
        } else if (ledger_status_counts(r->status)) {
            requested += r->amount;
        }
    }
    int64_t cancelled = p->refunded - requested;
    const char *status = "PAID";
    if (p->unpaid_status != NULL)
        status = p->unpaid_status;
    else if (cancelled >= p->amount)
        status = "CANCELLED";
    else if (cancelled > 0)
        status = "PARTIAL_CANCELLED";
    json_t *amount = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)p->amount, "taxFree", (json_int_t)0,
        "discount", (json_int_t)0, "paid", (json_int_t)(p->unpaid_status ? 0 : p->amount),
        "cancelled", (json_int_t)cancelled, "cancelledTaxFree", (json_int_t)cancelled_tax_free);
    json_t *obj = json_pack("{s:s, s:s, s:s, s:o, s:s, s:o}", "status", status, "id",
                            p->payment_key, "orderName", p->order_id, "amount", amount, "currency",
                            p->currency, "cancellations", cancellations);
    if (obj != NULL && strcmp(status, "CANCELLED") == 0 && last_cancel_ms > 0) {
        sim_format_time(last_cancel_ms, at, sizeof(at));
        json_object_set_new(obj, "cancelledAt", json_string(at));
    }
    return obj;
}

/* ---- requests ---- */

/* True if authorization is "PortOne <secret>" ("Authorization: PortOne
 * MY_API_SECRET"); a Bearer access token is not simulated. */
static bool authorized(const struct sim *sim, const char *authorization)
{
    size_t slen = strlen(sim->portone_secret);

    return authorization != NULL && strncmp(authorization, "PortOne ", 8) == 0 &&
           strncmp(authorization + 8, sim->portone_secret, slen) == 0 &&
           authorization[8 + slen] == '\0';
}

/* True if key is an RFC 8941 sf-string ("..." with \" and \\ the only
 * escapes, printable ASCII inside) of PORTONE_KEY_MIN..MAX characters. */
static bool key_valid(const char *key)
{
    size_t n = 0;
    const char *p = key;

    if (*p++ != '"')
        return false;
    for (; *p != '"'; p++, n++) {
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\')
                return false;
        } else if (*p < 0x20 || *p > 0x7e) {
            return false; /* also the end of the string: no closing quote */
        }
    }
    return p[1] == '\0' && n >= PORTONE_KEY_MIN && n <= PORTONE_KEY_MAX;
}

/* The key's format is checked ahead of the idempotency layer: a key that
 * does not follow it cannot name a request, so nothing is stored under it
 * (the documents do not say what PortOne answers: the simulator's choice). */
static bool validate_cancel(struct sim *sim, const struct sim_request *req, void *arg,
                            struct sim_response *resp)
{
    (void)sim;
    (void)arg;
    if (req->idempotency_key != NULL && !key_valid(req->idempotency_key)) {
        answer_error(resp, 400, "INVALID_REQUEST",
                     "Idempotency-Key must be a quoted string (RFC 8941) of 16 to 256 ASCII "
                     "characters");
        return false;
    }
    return true;
}

/* Read the optional integer member name of body into *out (>= min);
 * *given says whether it was there. False if it is there but not such an
 * integer. */
static bool opt_amount(const json_t *body, const char *name, int64_t min, int64_t *out, bool *given)
{
    const json_t *v = json_object_get(body, name);

    *given = v != NULL && !json_is_null(v);
    if (!*given)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* The members of CancelPaymentBody other than the amounts: their types. */
static bool other_members_valid(const json_t *body, char *msg, size_t msglen)
{
    const json_t *v;

    if ((v = json_object_get(body, "storeId")) != NULL && !json_is_string(v)) {
        snprintf(msg, msglen, "storeId must be a string");
        return false;
    }
    v = json_object_get(body, "requester");
    if (v != NULL && (!json_is_string(v) || (strcmp(json_string_value(v), "CUSTOMER") != 0 &&
                                             strcmp(json_string_value(v), "ADMIN") != 0))) {
        snprintf(msg, msglen, "requester must be CUSTOMER or ADMIN");
        return false;
    }
    v = json_object_get(body, "skipWebhook");
    if (v != NULL && !json_is_boolean(v)) {
        snprintf(msg, msglen, "skipWebhook must be a boolean");
        return false;
    }
    return true;
}

/* Store n (given) as metadata name in m[*k]; buf holds its text. */
static void put_meta(struct ledger_meta *m, size_t *k, const char *name, bool given, int64_t n,
                     char *buf, size_t buflen)
{
    if (!given)
        return;
    snprintf(buf, buflen, "%lld", (long long)n);
    m[*k].name = (char *)name;
    m[*k].value = buf;
    (*k)++;
}

/* The answer to a refused ledger_refund(); after is the payment as it was. */
static void refusal(enum ledger_refund_result res, const struct ledger_payment *after,
                    struct sim_response *resp)
{
    int64_t requested = 0;

    switch (res) {
    case LEDGER_REFUND_OK:
        break;
    case LEDGER_REFUND_NOT_FOUND:
        answer_error(resp, 404, "PAYMENT_NOT_FOUND", "결제 건이 존재하지 않습니다");
        return;
    case LEDGER_REFUND_BALANCE_DIFFERS:
        answer_error(resp, 409, "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN",
                     "취소 가능 잔액 검증에 실패했습니다");
        return;
    case LEDGER_REFUND_NOTHING_LEFT:
        /* Nothing left because everything is cancelled, or because
         * REQUESTED cancellations hold the rest. */
        for (size_t i = 0; after != NULL && i < after->nrefunds; i++)
            if (after->refunds[i].status != LEDGER_STATUS_SUCCEEDED &&
                ledger_status_counts(after->refunds[i].status))
                requested += after->refunds[i].amount;
        if (requested == 0) {
            answer_error(resp, 409, "PAYMENT_ALREADY_CANCELLED", "결제가 이미 취소되었습니다");
            return;
        }
        break;
    case LEDGER_REFUND_TOO_LARGE:
        break;
    case LEDGER_REFUND_NO_MEMORY:
        answer_error(resp, 500, "INTERNAL_SERVER_ERROR", "out of memory");
        return;
    }
    answer_error(resp, 409, "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT",
                 "결제 취소 금액이 취소 가능 금액을 초과했습니다");
}

static void process_cancel(struct sim *sim, const struct sim_request *req, void *arg,
                           struct sim_response *resp)
{
    const struct portone_cancel *c = arg;
    char msg[128], tax_free_text[24], vat_text[24];
    int64_t amount = -1, guard = 0, tax_free = 0, vat = 0;
    bool has_amount, has_guard, has_tax_free, has_vat;
    struct ledger_payment *after = NULL;

    if (!json_is_object(c->body)) {
        answer_error(resp, 400, "INVALID_REQUEST", "the request body must be a JSON object");
        return;
    }
    const char *reason = json_string_value(json_object_get(c->body, "reason"));
    if (reason == NULL || reason[0] == '\0') {
        answer_error(resp, 400, "INVALID_REQUEST", "reason is required");
        return;
    }
    if (!opt_amount(c->body, "amount", 1, &amount, &has_amount) ||
        !opt_amount(c->body, "currentCancellableAmount", 0, &guard, &has_guard) ||
        !opt_amount(c->body, "taxFreeAmount", 0, &tax_free, &has_tax_free) ||
        !opt_amount(c->body, "vatAmount", 0, &vat, &has_vat)) {
        answer_error(resp, 400, "INVALID_REQUEST",
                     "amount must be a positive integer; currentCancellableAmount, "
                     "taxFreeAmount and vatAmount non-negative integers");
        return;
    }
    if (!other_members_valid(c->body, msg, sizeof(msg))) {
        answer_error(resp, 400, "INVALID_REQUEST", msg);
        return;
    }
    struct ledger_payment *p = ledger_payment_get(sim->ledger, SIM_GATEWAY_PORTONE, c->payment_id);
    bool found = p != NULL, unpaid = found && p->unpaid_status != NULL;
    ledger_payment_free(p);
    if (!found) {
        answer_error(resp, 404, "PAYMENT_NOT_FOUND", "결제 건이 존재하지 않습니다");
        return;
    }
    if (unpaid) {
        answer_error(resp, 409, "PAYMENT_NOT_PAID", "결제가 완료되지 않았습니다");
        return;
    }
    if (has_amount && tax_free + vat > amount) {
        answer_error(resp, 409, "SUM_OF_PARTS_EXCEEDS_CANCEL_AMOUNT",
                     "면세 금액 등 하위 항목들의 합이 전체 취소 금액을 초과했습니다");
        return;
    }
    struct ledger_meta meta[2];
    size_t nmeta = 0;
    put_meta(meta, &nmeta, "taxFreeAmount", has_tax_free, tax_free, tax_free_text,
             sizeof(tax_free_text));
    put_meta(meta, &nmeta, "vatAmount", has_vat, vat, vat_text, sizeof(vat_text));
    struct ledger_refund_spec spec = {
        .amount = amount,
        .reason = reason,
        .idempotency_key = req->idempotency_key,
        .metadata = meta,
        .nmetadata = nmeta,
        .has_expected_balance = has_guard,
        .expected_balance = guard,
    };
    enum ledger_refund_result res =
        ledger_refund(sim->ledger, SIM_GATEWAY_PORTONE, c->payment_id, &spec, &after);
    if (res != LEDGER_REFUND_OK)
        refusal(res, after, resp);
    else if (after == NULL || after->nrefunds == 0)
        answer_error(resp, 500, "INTERNAL_SERVER_ERROR", "out of memory");
    else
        sim_respond_json(
            resp, 200,
            json_pack("{s:o}", "cancellation",
                      portone_cancellation_object(&after->refunds[after->nrefunds - 1])));
    ledger_payment_free(after);
}

static void process_inquiry(struct sim *sim, const struct sim_request *req, void *arg,
                            struct sim_response *resp)
{
    const char *payment_id = arg;
    struct ledger_payment *p = ledger_payment_get(sim->ledger, SIM_GATEWAY_PORTONE, payment_id);

    (void)req;
    if (p == NULL) {
        answer_error(resp, 404, "PAYMENT_NOT_FOUND", "결제 건이 존재하지 않습니다");
        return;
    }
    sim_respond_json(resp, 200, payment_object(p));
    ledger_payment_free(p);
}

void portone_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    char *payment_id = NULL;
    json_t *body = NULL;

    enum sim_payment_route route =
        sim_payment_route(req, PORTONE_PREFIX, SIM_GATEWAY_PORTONE, &payment_id, resp);
    if (route == SIM_ROUTE_ANSWERED)
        return;
    struct pipeline_call call = {
        .gateway = SIM_GATEWAY_PORTONE,
        .payment_key = payment_id,
        .authorized = authorized(sim, req->authorization),
        .answer_error = answer_pipeline_error,
    };
    if (route == SIM_ROUTE_INQUIRY) {
        /* "GET: 무시": an inquiry has no idempotency (fingerprint NULL). */
        call.op = FAULT_OP_INQUIRY;
        call.process = process_inquiry;
        call.arg = payment_id;
        pipeline_run(sim, req, &call, resp);
        goto out;
    }
    body = json_loadb(req->body, req->body_len, 0, NULL);
    struct portone_cancel cancel = {.payment_id = payment_id, .body = body};
    /* What names a repeat is not documented, nor the answer to a key reused
     * with another body: the key alone names it (no scope, no fingerprint),
     * so a reused key gets the first answer whatever the body or payment —
     * the reading hardest on a client that reuses keys. */
    call.op = FAULT_OP_REFUND;
    call.fingerprint = "";
    call.validate = validate_cancel;
    call.process = process_cancel;
    call.arg = &cancel;
    call.key_ttl_ms = atomic_load(&sim->portone_key_ttl_ms);
    call.store_only_success = !atomic_load(&sim->portone_store_errors);
    pipeline_run(sim, req, &call, resp);
    /* PortOne documents no replay marker: only the call log shows one. */
    resp->replayed = false;
out:
    json_decref(body);
    free(payment_id);
}
