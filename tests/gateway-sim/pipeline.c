/*
 * pipeline: the common steps of a simulated gateway call. See pipeline.h.
 */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "base/log.h"

/* The gateways' words for "a request with this key is still being processed"
 * (Stripe's is its documented message). */
#define TOSS_IN_FLIGHT_MESSAGE "a request with this idempotency key is still being processed"
#define STRIPE_IN_FLIGHT_MESSAGE                                                                   \
    "There is currently another in-progress request using this Idempotent Key (that probably "     \
    "means you submitted twice, and the other request is still going through). Please retry "      \
    "your request."

/* How each fault type answers, per gateway. status is the default when the
 * fault gives none (toss_status for Toss when not 0); toss_code and
 * stripe_code likewise for "code", message (stripe_message for Stripe when
 * not NULL) for "message". */
struct fault_answer {
    int status;
    int toss_status;
    const char *toss_code;
    const char *stripe_type;
    const char *stripe_code;
    const char *message;
    const char *stripe_message;
};

static const struct fault_answer fault_answers[] = {
    [FAULT_ERROR_5XX] = {503, 0, "SERVICE_UNAVAILABLE", "api_error", NULL,
                         "the gateway is temporarily unavailable", NULL},
    /* Toss documents PROVIDER_ERROR as a 400 ("일시적인 오류가 발생했습니다"). */
    [FAULT_PROVIDER_ERROR] = {500, 400, "PROVIDER_ERROR", "api_error", NULL,
                              "the card company could not process the request", NULL},
    /* Stripe's 429 has carried no code since API version 2015-09-08; a
     * "code" given to the fault (lock_timeout) is sent. */
    [FAULT_RATE_LIMITED] = {429, 0, "TOO_MANY_REQUESTS", "invalid_request_error", NULL,
                            "too many requests: retry later",
                            "Too many requests hit the API too quickly. We recommend an "
                            "exponential backoff of your requests."},
    [FAULT_HANG] = {504, 0, "GATEWAY_TIMEOUT", "api_error", NULL, "the gateway timed out", NULL},
    [FAULT_APPLY_THEN_HANG] = {504, 0, "GATEWAY_TIMEOUT", "api_error", NULL,
                               "the gateway timed out", NULL},
    [FAULT_APPLY_THEN_DROP] = {0, 0, NULL, NULL, NULL, NULL, NULL},
    [FAULT_PERMANENT] = {400, 0, "INVALID_REQUEST", "invalid_request_error", NULL,
                         "the request cannot be processed", NULL},
    [FAULT_BAD_CREDENTIALS] = {401, 0, "UNAUTHORIZED_KEY", "invalid_request_error", NULL,
                               "invalid API key provided", NULL},
    [FAULT_IN_PROGRESS] = {409, 0, "IDEMPOTENT_REQUEST_PROCESSING", "idempotency_error",
                           "idempotency_key_in_use", TOSS_IN_FLIGHT_MESSAGE,
                           STRIPE_IN_FLIGHT_MESSAGE},
    [FAULT_RAW] = {200, 0, NULL, NULL, NULL, NULL, NULL},
};

/* Faults that act before the idempotency layer, like a load balancer or an
 * authentication front end: nothing is applied or stored. The others act
 * inside it: a stored fault answers in place of the handler (its answer is
 * stored under the key), a delivery fault after the handler. */
static bool acts_before(const struct fault *f)
{
    return f->type != FAULT_APPLY_THEN_HANG && f->type != FAULT_APPLY_THEN_DROP && !f->stored;
}

/* Fill resp with the answer of fault f. */
static void fault_response(enum sim_gateway gateway, const struct fault *f,
                           struct sim_response *resp)
{
    const struct fault_answer *a = &fault_answers[f->type];
    int status = gateway == SIM_GATEWAY_TOSS && a->toss_status ? a->toss_status : a->status;
    const char *code =
        f->code ? f->code : (gateway == SIM_GATEWAY_TOSS ? a->toss_code : a->stripe_code);
    const char *message = a->message;

    if (gateway == SIM_GATEWAY_STRIPE && a->stripe_message != NULL)
        message = a->stripe_message;
    if (f->message != NULL)
        message = f->message;

    if (f->status != 0)
        status = f->status;
    if (f->type == FAULT_RAW) {
        /* Verbatim: no gateway format, no Content-Type beyond the usual. */
        sim_response_clear(resp);
        resp->status = status;
        resp->body = f->body != NULL && f->body[0] != '\0' ? strdup(f->body) : NULL;
        return;
    }
    if (f->type == FAULT_BAD_CREDENTIALS)
        status = 401;
    sim_respond_error(resp, gateway, status, a->stripe_type, code, message);
}

/* Fill resp with the answer of fault f, in the call's gateway's words. */
static void answer_fault(struct sim *sim, const struct pipeline_call *call, const struct fault *f,
                         struct sim_response *resp)
{
    if (call->answer_error != NULL && f->type != FAULT_RAW)
        call->answer_error(sim, f, call->arg, resp);
    else
        fault_response(call->gateway, f, resp);
    if (f->type == FAULT_RATE_LIMITED) {
        resp->retry_after = f->retry_after;
        if (f->retry_after_header != NULL)
            snprintf(resp->retry_after_text, sizeof(resp->retry_after_text), "%s",
                     f->retry_after_header);
    }
}

static void unauthorized(enum sim_gateway gateway, struct sim_response *resp)
{
    if (gateway == SIM_GATEWAY_TOSS)
        sim_respond_error(resp, gateway, 401, NULL, "UNAUTHORIZED_KEY",
                          "unauthorized secret key or client key");
    else
        /* Stripe puts no code on authentication errors. */
        sim_respond_error(resp, gateway, 401, "invalid_request_error", NULL,
                          "Invalid API Key provided");
}

static void in_flight(struct sim *sim, const struct pipeline_call *call, struct sim_response *resp)
{
    enum sim_gateway gateway = call->gateway;

    if (call->answer_error != NULL) {
        /* The gateway's own words, as an in_progress fault has them. */
        struct fault f = {.type = FAULT_IN_PROGRESS};
        call->answer_error(sim, &f, call->arg, resp);
    } else if (gateway == SIM_GATEWAY_TOSS)
        sim_respond_error(resp, gateway, 409, NULL, "IDEMPOTENT_REQUEST_PROCESSING",
                          TOSS_IN_FLIGHT_MESSAGE);
    else
        sim_respond_error(resp, gateway, 409, "idempotency_error", "idempotency_key_in_use",
                          STRIPE_IN_FLIGHT_MESSAGE);
}

/* Stripe's answer to a key reused with other parameters. Toss documents
 * none: its calls compare no parameters (an empty fingerprint), so they never
 * get here. */
static void mismatch(enum sim_gateway gateway, struct sim_response *resp)
{
    sim_respond_error(resp, gateway, 400, "idempotency_error", NULL,
                      "Keys for idempotent requests can only be used with the same "
                      "parameters they were first used with.");
}

/* Append the call to the ledger's call log and log one line about it. */
static void record(struct sim *sim, const struct sim_request *req, const struct pipeline_call *call,
                   const char *key, int status, const char *fault, bool replayed)
{
    struct ledger_call c = {
        .method = req->method,
        .path = req->path,
        .gateway = call->gateway,
        .payment_key = call->payment_key,
        .idempotency_key = key,
        .status = status,
        .fault = fault,
        .replayed = replayed,
    };
    ledger_call_record(sim->ledger, &c);

    struct log_ctx ctx = LOG_CTX_INIT;
    json_t *fields = json_pack("{s:s, s:s, s:s}", "gateway", sim_gateway_name(call->gateway),
                               "method", req->method, "path", req->path);
    if (fields != NULL) {
        json_object_set_new(fields, "status", status ? json_integer(status) : json_null());
        if (fault != NULL)
            json_object_set_new(fields, "fault", json_string(fault));
        if (replayed)
            json_object_set_new(fields, "replayed", json_true());
    }
    ctx.request_id = key; /* the Idempotency-Key is the requestId of cancel-retry */
    ctx.fields = fields;
    log_emit(fault ? LOG_WARN : LOG_INFO, &ctx, "gateway call answered");
    json_decref(fields);
}

/* The first stored fault for a call that reached the handler, unless the
 * call already has a fault (one fault per call). */
static bool match_stored(struct sim *sim, const struct pipeline_call *call, bool have_fault,
                         struct fault *f)
{
    if (have_fault)
        return false;
    return faults_match(sim->faults, call->gateway, call->op, call->payment_key, true, f);
}

void pipeline_run(struct sim *sim, const struct sim_request *req, const struct pipeline_call *call,
                  struct sim_response *resp)
{
    struct fault f;
    const char *fault_name = NULL;
    bool owns_key = false;
    bool stored = false; /* a stored fault answered in place of the handler */
    const char *key = NULL;
    char *scoped = NULL; /* the key as stored: "<scope>\n<key>" when the call has a scope */

    if (call->fingerprint != NULL && req->idempotency_key != NULL && req->idempotency_key[0])
        key = req->idempotency_key;
    if (key != NULL && call->scope != NULL) {
        size_t n = strlen(call->scope) + strlen(key) + 2;
        scoped = malloc(n);
        if (scoped == NULL) {
            /* As for a key that cannot be stored: "in flight", the client
             * retries, which is safe. */
            in_flight(sim, call, resp);
            record(sim, req, call, req->idempotency_key, resp->status, NULL, false);
            return;
        }
        snprintf(scoped, n, "%s\n%s", call->scope, key);
        key = scoped;
    }

    int64_t latency = faults_pick_latency(sim->faults);
    if (latency > 0)
        sim_sleep_ms(sim, latency);

    bool have_fault =
        faults_match(sim->faults, call->gateway, call->op, call->payment_key, false, &f);
    if (have_fault)
        fault_name = fault_type_name(f.type);

    if (have_fault && acts_before(&f)) {
        answer_fault(sim, call, &f, resp);
        record(sim, req, call, req->idempotency_key, resp->status, fault_name, false);
        if (f.type == FAULT_HANG)
            sim_sleep_ms(sim, f.delay_ms);
        goto out;
    }
    if (!call->authorized) {
        /* A delivery fault matched by a call with bad credentials is spent
         * without effect: the call never reached the point it acts on. */
        if (call->answer_error != NULL)
            call->answer_error(sim, NULL, call->arg, resp);
        else
            unauthorized(call->gateway, resp);
        record(sim, req, call, req->idempotency_key, resp->status, NULL, false);
        goto out;
    }
    if (call->validate != NULL && !call->validate(sim, req, call->arg, resp)) {
        /* Stripe: "if incoming parameters fail validation ... we don't save
         * the idempotent result". A delivery fault is spent without effect. */
        record(sim, req, call, req->idempotency_key, resp->status, NULL, false);
        goto out;
    }

    if (key != NULL) {
        int status;
        char *body;
        if (call->key_ttl_ms > 0)
            ledger_idem_expire(sim->ledger, call->gateway, key, call->key_ttl_ms);
        switch (
            ledger_idem_begin(sim->ledger, call->gateway, key, call->fingerprint, &status, &body)) {
        case LEDGER_IDEM_REPLAY:
            resp->status = status;
            resp->body = body;
            resp->replayed = true;
            break;
        case LEDGER_IDEM_IN_FLIGHT:
            in_flight(sim, call, resp);
            break;
        case LEDGER_IDEM_MISMATCH:
            mismatch(call->gateway, resp);
            break;
        case LEDGER_IDEM_NEW:
            owns_key = true;
            if (match_stored(sim, call, have_fault, &f)) {
                have_fault = stored = true;
                fault_name = fault_type_name(f.type);
                answer_fault(sim, call, &f, resp);
            } else {
                call->process(sim, req, call->arg, resp);
            }
            /* Not stored: released below, so that a retry is processed afresh. */
            if (stored || !call->store_only_success || (resp->status >= 200 && resp->status < 300))
                ledger_idem_store(sim->ledger, call->gateway, key, resp->status, resp->body);
            break;
        }
    } else if (match_stored(sim, call, have_fault, &f)) {
        /* No key to store it under: an ordinary failed call. */
        have_fault = stored = true;
        fault_name = fault_type_name(f.type);
        answer_fault(sim, call, &f, resp);
    } else {
        call->process(sim, req, call->arg, resp);
    }

    if (have_fault && f.type == FAULT_APPLY_THEN_HANG) {
        /* The work is done and stored, but the answer never makes it: the
         * client waits and then sees a gateway timeout. The key stays in
         * flight meanwhile, as on a gateway still finishing the request. */
        record(sim, req, call, req->idempotency_key, 504, fault_name, resp->replayed);
        sim_sleep_ms(sim, f.delay_ms);
        sim_response_clear(resp);
        answer_fault(sim, call, &f, resp);
    } else if (have_fault && f.type == FAULT_APPLY_THEN_DROP) {
        record(sim, req, call, req->idempotency_key, 0, fault_name, resp->replayed);
        resp->drop = true;
    } else {
        record(sim, req, call, req->idempotency_key, resp->status, stored ? fault_name : NULL,
               resp->replayed);
    }
out:
    if (owns_key)
        ledger_idem_release(sim->ledger, call->gateway, key);
    if (have_fault)
        fault_clear(&f);
    free(scoped);
}
