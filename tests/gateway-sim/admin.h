/*
 * admin: the simulator's own API under /_sim/ (JSON in and out): payments to
 * refund, faults and latency to inject, the ledger and the call log to check,
 * reset and health. Documented in docs/gateway-sim.md.
 */
#ifndef GATEWAY_SIM_ADMIN_H
#define GATEWAY_SIM_ADMIN_H

#include "sim.h"

/* Answer a request whose path starts with /_sim/. */
void admin_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp);

#endif
