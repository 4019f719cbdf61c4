/*
 * pipeline: the steps every simulated gateway call goes through, in the
 * order the API contract fixes:
 *
 *   latency -> injected fault (5xx, 429, hang, permanent, 401, in_progress:
 *              nothing stored)
 *           -> credentials (401) -> parameter validation (Stripe: nothing stored)
 *           -> idempotency (replay, 409, Stripe's mismatch)
 *           -> the handler's own work, or a "stored" fault's answer in its
 *              place -> store the response for the key
 *           -> delivery fault (apply_then_hang, apply_then_drop) -> call log
 *
 * The gateways differ only in how they parse a request, check credentials
 * and word their answers, and in how long a key is kept and which answers
 * are stored under it; those parts come in as a struct pipeline_call.
 */
#ifndef GATEWAY_SIM_PIPELINE_H
#define GATEWAY_SIM_PIPELINE_H

#include <stdbool.h>

#include "faults.h"
#include "sim.h"

/* The handler's own work: fill resp (status and body). Runs at most once per
 * call, only after credentials and idempotency passed. arg is
 * pipeline_call.arg. */
typedef void (*pipeline_process_fn)(struct sim *sim, const struct sim_request *req, void *arg,
                                    struct sim_response *resp);

/* Parameter validation ahead of the idempotency layer: return true to go on,
 * or false with resp filled to refuse the call, with nothing stored under its
 * key. Runs only after credentials passed. */
typedef bool (*pipeline_validate_fn)(struct sim *sim, const struct sim_request *req, void *arg,
                                     struct sim_response *resp);

/* A gateway's own wording of the answers the pipeline gives itself (Toss's
 * and Stripe's are built into pipeline.c). Each fills resp. */
struct pipeline_words {
    /* An injected fault other than raw (status f->status when not 0). */
    void (*fault)(const struct fault *f, struct sim_response *resp);
    void (*unauthorized)(struct sim_response *resp);
    /* Another request with the same key is still being processed. */
    void (*in_flight)(struct sim_response *resp);
};

struct pipeline_call {
    enum sim_gateway gateway;
    enum fault_op op;
    const char *payment_key;       /* for fault matching and the call log; may be NULL */
    const char *fingerprint;       /* the parameters a repeated Idempotency-Key must match,
                                      else the mismatch error; "" = none compared (Toss);
                                      NULL = no idempotency for this call (inquiries) */
    const char *scope;             /* what names a repeat besides the key (Toss: method
                                      and URL: the same key elsewhere is another request);
                                      NULL = the key alone (Stripe) */
    bool authorized;               /* the credentials were right */
    pipeline_validate_fn validate; /* NULL: none (errors of process are stored) */
    pipeline_process_fn process;
    void *arg;
    const struct pipeline_words *words; /* NULL: Toss's or Stripe's, by gateway */
    int64_t key_ttl_ms;                 /* > 0: a key is forgotten this long after its
                                           first use (PortOne); 0: kept until reset */
    bool store_only_success;            /* only a 2xx answer of process is stored under
                                           the key (a stored fault's always is) */
};

/* Run call for req and fill resp (which starts as SIM_RESPONSE_INIT). May
 * sleep (latency, hang faults). */
void pipeline_run(struct sim *sim, const struct sim_request *req, const struct pipeline_call *call,
                  struct sim_response *resp);

#endif
