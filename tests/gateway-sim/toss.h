/*
 * toss: the Toss Payments endpoints of the simulator.
 *
 *   POST /v1/payments/{paymentKey}/cancel   cancel (all, or cancelAmount)
 *   GET  /v1/payments/{paymentKey}          inquiry: the payment object
 *
 * Basic auth with base64(secret + ":"), JSON bodies, errors {"code","message"}.
 */
#ifndef GATEWAY_SIM_TOSS_H
#define GATEWAY_SIM_TOSS_H

#include "sim.h"

/* Answer a request whose path starts with /v1/payments/. */
void toss_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp);

#endif
