/*
 * stripe_inquiry: the Stripe GET endpoints of the simulator, read-only views
 * of the ledger. See stripe.h and docs/gateway-sim.md.
 *
 *   GET /v1/refunds?payment_intent=&limit=&starting_after=&ending_before=
 *   GET /v1/refunds/{id}
 *   GET /v1/payment_intents/{id}
 *
 * They go through the pipeline like every gateway call (latency, faults with
 * operation "inquiry" or "any", credentials) but have no idempotency.
 */
#include "stripe.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "pipeline.h"

#define LIST_LIMIT_DEFAULT 10
#define LIST_LIMIT_MAX     100

enum inquiry_kind {
    INQUIRY_LIST_REFUNDS,
    INQUIRY_REFUND,
    INQUIRY_PAYMENT_INTENT,
};

/* One inquiry as parsed before the pipeline runs. Strings are borrowed from
 * the request. */
struct inquiry {
    enum inquiry_kind kind;
    const char *id; /* the refund or payment_intent of the path */
    /* list parameters */
    const char *payment_intent; /* NULL: every Stripe refund */
    long limit;
    const char *starting_after;
    const char *ending_before;
};

/* One refund of a list, as indices into a payment array. */
struct listed {
    size_t payment;
    size_t refund;
    uint64_t seq;
};

static void answer_error(struct sim_response *resp, int status, const char *code,
                         const char *message)
{
    sim_respond_error(resp, SIM_GATEWAY_STRIPE, status, "invalid_request_error", code, message);
}

static void no_memory(struct sim_response *resp)
{
    sim_respond_error(resp, SIM_GATEWAY_STRIPE, 500, "api_error", NULL, "out of memory");
}

static void no_such(struct sim_response *resp, const char *what, const char *id)
{
    char msg[300];
    snprintf(msg, sizeof(msg), "No such %s: '%.200s'", what, id);
    answer_error(resp, 404, "resource_missing", msg);
}

/* Parse limit: decimal digits, 1..LIST_LIMIT_MAX. */
static bool parse_limit(const char *s, long *out)
{
    long v = 0;

    if (s[0] == '\0' || strlen(s) > 6)
        return false;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > LIST_LIMIT_MAX)
        return false;
    *out = v;
    return true;
}

/* The query parameters must be ones this endpoint takes: Stripe refuses
 * others ("Received unknown parameter"), and so does the simulator rather
 * than ignore one a client may rely on. */
static bool validate(struct sim *sim, const struct sim_request *req, void *arg,
                     struct sim_response *resp)
{
    const struct inquiry *q = arg;
    static const char *const list_params[] = {"payment_intent", "limit", "starting_after",
                                              "ending_before"};
    char msg[300];

    (void)sim;
    for (size_t i = 0; i < req->nquery; i++) {
        bool known = false;
        size_t nknown =
            q->kind == INQUIRY_LIST_REFUNDS ? sizeof(list_params) / sizeof(*list_params) : 0;
        for (size_t k = 0; k < nknown; k++)
            known = known || strcmp(req->query[i].name, list_params[k]) == 0;
        if (!known) {
            snprintf(msg, sizeof(msg), "Received unknown parameter: %.200s", req->query[i].name);
            answer_error(resp, 400, "parameter_unknown", msg);
            return false;
        }
    }
    if (q->kind != INQUIRY_LIST_REFUNDS)
        return true;
    const char *limit = sim_request_query(req, "limit");
    long v;
    if (limit != NULL && !parse_limit(limit, &v)) {
        snprintf(msg, sizeof(msg), "Invalid integer: %.64s; limit must be between 1 and %d", limit,
                 LIST_LIMIT_MAX);
        answer_error(resp, 400, "parameter_invalid_integer", msg);
        return false;
    }
    if (q->starting_after != NULL && q->ending_before != NULL) {
        answer_error(resp, 400, "parameters_exclusive",
                     "You may only specify one of these parameters: ending_before, "
                     "starting_after.");
        return false;
    }
    return true;
}

/* Newest first: the refund created last comes first. */
static int cmp_newest_first(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* The position of refund id in list, or -1. */
static long position(const struct listed *list, size_t n, const struct ledger_payment *payments,
                     const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(payments[list[i].payment].refunds[list[i].refund].id, id) == 0)
            return (long)i;
    return -1;
}

/* GET /v1/refunds: {"object":"list","url":"/v1/refunds","has_more","data"}. */
static void list_refunds(struct sim *sim, const struct inquiry *q, struct sim_response *resp)
{
    struct ledger_payment *payments = NULL;
    size_t npayments = 0, n = 0, total = 0;
    struct listed *list = NULL;

    if (q->payment_intent != NULL) {
        payments = ledger_payment_get(sim->ledger, SIM_GATEWAY_STRIPE, q->payment_intent);
        if (payments == NULL) {
            /* Stripe raises an error for a filter naming a missing object. */
            no_such(resp, "payment_intent", q->payment_intent);
            return;
        }
        npayments = 1;
    } else if (!ledger_payments_list(sim->ledger, SIM_GATEWAY_STRIPE, &payments, &npayments)) {
        no_memory(resp);
        return;
    }
    for (size_t i = 0; i < npayments; i++)
        total += payments[i].nrefunds;
    if (total > 0 && (list = calloc(total, sizeof(*list))) == NULL) {
        no_memory(resp);
        goto out;
    }
    for (size_t i = 0; i < npayments; i++)
        for (size_t j = 0; j < payments[i].nrefunds; j++)
            list[n++] = (struct listed){i, j, payments[i].refunds[j].seq};
    if (n > 1) /* qsort(NULL, 0) is undefined behaviour (UBSan says so) */
        qsort(list, n, sizeof(*list), cmp_newest_first);

    /* The page: [from, to) of the newest-first list. */
    size_t from = 0, to;
    bool has_more;
    const char *cursor = q->starting_after ? q->starting_after : q->ending_before;
    long at = cursor ? position(list, n, payments, cursor) : -1;
    if (cursor != NULL && at < 0) {
        no_such(resp, "refund", cursor);
        goto out;
    }
    if (q->ending_before != NULL) {
        to = (size_t)at;
        from = to > (size_t)q->limit ? to - (size_t)q->limit : 0;
        has_more = from > 0;
    } else {
        from = q->starting_after != NULL ? (size_t)at + 1 : 0;
        to = n - from > (size_t)q->limit ? from + (size_t)q->limit : n;
        has_more = to < n;
    }
    json_t *data = json_array();
    for (size_t i = from; i < to; i++) {
        const struct ledger_payment *p = &payments[list[i].payment];
        json_array_append_new(data, stripe_refund_object(p, &p->refunds[list[i].refund]));
    }
    sim_respond_json(resp, 200,
                     json_pack("{s:s, s:s, s:b, s:o}", "object", "list", "url", "/v1/refunds",
                               "has_more", has_more, "data", data));
out:
    free(list);
    if (q->payment_intent != NULL)
        ledger_payment_free(payments);
    else
        ledger_payments_free(payments, npayments);
}

static void get_refund(struct sim *sim, const struct inquiry *q, struct sim_response *resp)
{
    size_t index;
    struct ledger_payment *p = ledger_refund_find(sim->ledger, q->id, &index);

    if (p == NULL || p->gateway != SIM_GATEWAY_STRIPE)
        no_such(resp, "refund", q->id);
    else
        sim_respond_json(resp, 200, stripe_refund_object(p, &p->refunds[index]));
    ledger_payment_free(p);
}

static void get_payment_intent(struct sim *sim, const struct inquiry *q, struct sim_response *resp)
{
    char currency[16], charge[300];
    struct ledger_payment *p = ledger_payment_get(sim->ledger, SIM_GATEWAY_STRIPE, q->id);

    if (p == NULL) {
        no_such(resp, "payment_intent", q->id);
        return;
    }
    stripe_lower_currency(p->currency, currency, sizeof(currency));
    stripe_charge_id(p->payment_key, charge, sizeof(charge));
    /* Every simulated payment was captured in full. */
    sim_respond_json(resp, 200,
                     json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "id", p->payment_key,
                               "object", "payment_intent", "amount", (json_int_t)p->amount,
                               "amount_received", (json_int_t)p->amount, "currency", currency,
                               "status", "succeeded", "latest_charge", charge));
    ledger_payment_free(p);
}

static void process(struct sim *sim, const struct sim_request *req, void *arg,
                    struct sim_response *resp)
{
    const struct inquiry *q = arg;

    (void)req;
    switch (q->kind) {
    case INQUIRY_LIST_REFUNDS:
        list_refunds(sim, q, resp);
        break;
    case INQUIRY_REFUND:
        get_refund(sim, q, resp);
        break;
    case INQUIRY_PAYMENT_INTENT:
        get_payment_intent(sim, q, resp);
        break;
    }
}

void stripe_inquiry_handle(struct sim *sim, const struct sim_request *req,
                           struct sim_response *resp)
{
    struct inquiry q = {.limit = LIST_LIMIT_DEFAULT};
    char *payment_key = NULL;
    char msg[300];

    if (strcmp(req->path, "/v1/refunds") == 0) {
        q.kind = INQUIRY_LIST_REFUNDS;
        q.payment_intent = sim_request_query(req, "payment_intent");
        q.starting_after = sim_request_query(req, "starting_after");
        q.ending_before = sim_request_query(req, "ending_before");
        const char *limit = sim_request_query(req, "limit");
        if (limit != NULL && !parse_limit(limit, &q.limit))
            q.limit = LIST_LIMIT_DEFAULT; /* refused by validate() */
    } else if (strncmp(req->path, "/v1/refunds/", 12) == 0) {
        q.kind = INQUIRY_REFUND;
        q.id = req->path + 12;
    } else {
        q.kind = INQUIRY_PAYMENT_INTENT;
        q.id = req->path + strlen("/v1/payment_intents/");
    }
    if (q.id != NULL && (q.id[0] == '\0' || strchr(q.id, '/') != NULL)) {
        snprintf(msg, sizeof(msg), "Unrecognized request URL (GET: %.200s)", req->path);
        answer_error(resp, 404, NULL, msg);
        return;
    }

    /* The payment the call is about, for fault matching and the call log. */
    const char *key = q.kind == INQUIRY_LIST_REFUNDS ? q.payment_intent : q.id;
    if (q.kind == INQUIRY_REFUND) {
        size_t index;
        struct ledger_payment *p = ledger_refund_find(sim->ledger, q.id, &index);
        if (p != NULL && (payment_key = strdup(p->payment_key)) != NULL)
            key = payment_key;
        else
            key = NULL;
        ledger_payment_free(p);
    }
    struct pipeline_call call = {
        .gateway = SIM_GATEWAY_STRIPE,
        .op = FAULT_OP_INQUIRY,
        .payment_key = key,
        .authorized = stripe_authorized(sim, req->authorization),
        .validate = validate,
        .process = process,
        .arg = &q,
    };
    pipeline_run(sim, req, &call, resp);
    free(payment_key);
}
