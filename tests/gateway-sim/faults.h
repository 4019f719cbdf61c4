/*
 * faults: the failures a test or the demo asks the simulator to inject, and
 * the random latency added to every gateway call.
 *
 * Faults are matched in insertion order against each gateway call; a match
 * consumes one of the fault's `times` (0 = forever). Guarded by their own
 * mutex: matching and consuming is one atomic step, so two concurrent calls
 * never both take the last use of a fault.
 */
#ifndef GATEWAY_SIM_FAULTS_H
#define GATEWAY_SIM_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim.h"

enum fault_type {
    FAULT_ERROR_5XX = 0,   /* status (default 503), before idempotency unless stored */
    FAULT_PROVIDER_ERROR,  /* Toss 500 PROVIDER_ERROR / Stripe 500 api_error */
    FAULT_RATE_LIMITED,    /* 429 with Retry-After */
    FAULT_HANG,            /* sleep delay_ms, then 504, nothing applied */
    FAULT_APPLY_THEN_HANG, /* apply + store, sleep delay_ms, then 504 */
    FAULT_APPLY_THEN_DROP, /* apply + store, close without an answer */
    FAULT_PERMANENT,       /* status (default 400) with code */
    FAULT_BAD_CREDENTIALS, /* 401 as for a wrong key */
    FAULT_IN_PROGRESS,     /* the 409 "request with this key still being processed" */
    FAULT_RAW,             /* status (default 200) with body, verbatim: what no gateway
                              documents (a proxy's page, a redirect, a 2xx that is not
                              the expected object) */
};

/* Which gateway calls a fault applies to. */
enum fault_op {
    FAULT_OP_REFUND = 0, /* Toss cancel, Stripe refund (the default) */
    FAULT_OP_INQUIRY,    /* GETs: Toss payment, Stripe refunds and payment_intents */
    FAULT_OP_ANY,
};

/* A fault as matched: a copy owned by the caller, released by fault_clear(). */
struct fault {
    int id;
    enum fault_type type;
    enum fault_op op;
    char *payment_key; /* NULL = any payment */
    int gateway;       /* enum sim_gateway, or -1 = any */
    int times;         /* 0 = forever */
    int used;
    bool stored;              /* error_5xx, provider_error, permanent, raw: answered inside
                                 the idempotency layer and stored under the key */
    int status;               /* 0 = the type's default */
    int retry_after;          /* seconds, rate_limited */
    char *retry_after_header; /* rate_limited: the header's value verbatim; NULL = retry_after */
    int64_t delay_ms;
    char *code;    /* NULL = the type's default */
    char *message; /* NULL = the type's default */
    char *body;    /* raw: the answer's body; NULL = empty */
    char *extras;  /* KakaoPay: the error's "extras" object as JSON text; NULL = none */
};

struct faults *faults_new(void);
void faults_free(struct faults *faults);

/* Remove every fault; with latency true also reset the latency to none. */
void faults_clear(struct faults *faults, bool latency);

/* Add a fault from the admin JSON object (see docs/gateway-sim.md). On success
 * stores its id in *id; on bad input returns false with the reason in err. */
bool faults_add_json(struct faults *faults, const json_t *obj, int *id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Find the first fault that applies to a call of op on gateway for
 * payment_key (may be NULL), consume one use and copy it into *out. Returns
 * false when none applies (out untouched). stored selects which faults are
 * looked at: those without "stored" (matched when a call arrives) or those
 * with it (matched only by a call that reaches the handler: a new
 * idempotency key or none, so that a replay never uses one up). */
bool faults_match(struct faults *faults, enum sim_gateway gateway, enum fault_op op,
                  const char *payment_key, bool stored, struct fault *out);

void fault_clear(struct fault *f);

/* The type's name as used in the admin API ("error_5xx", ...). */
const char *fault_type_name(enum fault_type type);

/* {"faults":[...], "latency":{"minMs","maxMs"}} (new reference). */
json_t *faults_json(struct faults *faults);

/* Set the latency range from {"minMs":N,"maxMs":M}; false with err on bad
 * input (negative, min > max, above 10 minutes). */
bool faults_set_latency_json(struct faults *faults, const json_t *obj, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A delay drawn uniformly from the latency range, in milliseconds. */
int64_t faults_pick_latency(struct faults *faults);

#endif
