/*
 * stripe: the Stripe endpoints of the simulator.
 *
 *   POST /v1/refunds                 form body payment_intent=pi_...[&amount=N]
 *                                    [&reason=R][&metadata[NAME]=VALUE...]
 *   GET  /v1/refunds                 ?payment_intent=&limit=&starting_after=
 *                                    &ending_before= (stripe_inquiry.c)
 *   GET  /v1/refunds/{id}            (stripe_inquiry.c)
 *   GET  /v1/payment_intents/{id}    (stripe_inquiry.c)
 *
 * Bearer auth with the secret key, errors {"error":{"type","code","message"}}.
 */
#ifndef GATEWAY_SIM_STRIPE_H
#define GATEWAY_SIM_STRIPE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "sim.h"

struct ledger_payment;
struct ledger_refund;

/* Answer a request whose path is /v1/refunds, or below it or
 * /v1/payment_intents/. */
void stripe_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp);

/* Answer a GET of those paths (stripe_inquiry.c). */
void stripe_inquiry_handle(struct sim *sim, const struct sim_request *req,
                           struct sim_response *resp);

/* True if authorization is "Bearer <the Stripe secret>". */
bool stripe_authorized(const struct sim *sim, const char *authorization);

/* One decoded name=value pair of an application/x-www-form-urlencoded body. */
struct stripe_param {
    char *name;
    char *value;
};

/* Decode body (len bytes) into a new array of pairs in *params (count in
 * *nparams), percent-escapes and '+' decoded. Returns false on a malformed
 * escape or when out of memory, with nothing allocated. Free the array with
 * stripe_params_free(). */
bool stripe_form_decode(const char *body, size_t len, struct stripe_param **params, size_t *nparams)
    __attribute__((warn_unused_result));
void stripe_params_free(struct stripe_param *params, size_t nparams);

/* The Stripe refund object of refund r of payment p (new reference):
 * {"id","object":"refund","amount","currency" (lower case),"payment_intent",
 *  "charge","status","failure_reason","metadata":{...},"created","reason"}. */
json_t *stripe_refund_object(const struct ledger_payment *p, const struct ledger_refund *r);

/* currency in lower case, as Stripe spells it, into buf. */
void stripe_lower_currency(const char *currency, char *buf, size_t buflen);

/* The id of the (simulated) charge of payment_intent "pi_X": "ch_X". */
void stripe_charge_id(const char *payment_intent, char *buf, size_t buflen);

#endif
