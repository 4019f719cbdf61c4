/*
 * pipeline_sim: the gateway simulator of a pipeline (pipeline_fixture.h),
 * driven through its /_sim API: payments to refund, faults, the ledger of
 * refunds it made.
 */
#ifndef CR_TEST_PIPELINE_SIM_H
#define CR_TEST_PIPELINE_SIM_H

#include <jansson.h>

struct pipeline;

/* The simulator's base URL, e.g. "http://127.0.0.1:40123". */
const char *pipeline_sim_url(struct pipeline *p);

/* POST json (may be NULL: empty body) to the simulator's path (e.g.
 * "/_sim/faults"); fails the test unless the answer is 2xx. */
void pipeline_sim_post(struct pipeline *p, const char *path, const char *json);

/* POST json to /_sim/faults: the simulator misbehaves as it says (see
 * tests/gateway-sim/faults.h). */
void pipeline_sim_fault(struct pipeline *p, const char *json);

/* Any method (GET, POST, PUT, DELETE) with an optional JSON body; returns the
 * HTTP status and, if body is not NULL, the answer (malloc'd, caller frees).
 * Fails the test only if the simulator cannot be reached. */
long pipeline_sim_call(struct pipeline *p, const char *method, const char *path, const char *json,
                       char **body);

/* GET path; fails the test unless 2xx. Returns the body (malloc'd, caller
 * frees). */
char *pipeline_sim_get(struct pipeline *p, const char *path);

/* Create (or replace) a payment in the simulator's ledger. */
void pipeline_payment(struct pipeline *p, const char *gateway, const char *payment_key,
                      long long amount, const char *currency, long long refunded);

/* The simulator's ledger entry of payment_key: {paymentKey, amount,
 * refunded, refunds: [{id, amount, status, idempotencyKey}, ...], ...} (new
 * reference), or NULL when it has none. */
json_t *pipeline_ledger(struct pipeline *p, const char *payment_key);

/* Refunds recorded by the simulator for payment_key (0 for an unknown
 * payment), and the amount refunded in total. */
long long pipeline_refunds(struct pipeline *p, const char *payment_key);
long long pipeline_refunded_amount(struct pipeline *p, const char *payment_key);

#endif
