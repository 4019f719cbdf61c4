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

/* A gateway's own wording of the errors the pipeline answers for it: the
 * answer of fault f (never a raw one: those are verbatim), or with f NULL the
 * 401 for wrong credentials; a request whose key is still being processed
 * gets the answer of an in_progress fault. NULL in pipeline_call: the Toss or
 * Stripe wording built in. Retry-After is added by the pipeline. */
typedef void (*pipeline_error_fn)(struct sim *sim, const struct fault *f, void *arg,
                                  struct sim_response *resp);

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
    pipeline_error_fn answer_error; /* NULL: the Toss/Stripe wording (KakaoPay, PortOne
                                       have their own) */
    void *arg;
    int64_t key_ttl_ms;      /* > 0: a key is forgotten this long after its first use
                                (PortOne); 0: kept until reset */
    bool store_only_success; /* only a 2xx answer of process is stored under the key
                                (a stored fault's always is) */
};

/* Run call for req and fill resp (which starts as SIM_RESPONSE_INIT). May
 * sleep (latency, hang faults). */
void pipeline_run(struct sim *sim, const struct sim_request *req, const struct pipeline_call *call,
                  struct sim_response *resp);

#endif
