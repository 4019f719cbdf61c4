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

/* For the gateways' own admin calls (portone_admin.c): the request body as
 * a JSON object (new reference), or NULL with a 400 answered; an admin error
 * {"error": message} with status. */
json_t *admin_body_object(const struct sim_request *req, struct sim_response *resp);
void admin_error(struct sim_response *resp, int status, const char *message);

#endif
