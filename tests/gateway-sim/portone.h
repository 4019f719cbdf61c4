/*
 * portone: the PortOne V2 endpoints of the simulator
 * (docs/design/issue9-gateways-research.md §1, §6.1).
 *
 *   POST /payments/{paymentId}/cancel   cancel (all, or amount), with the
 *                                       balance guard currentCancellableAmount
 *   GET  /payments/{paymentId}          inquiry: the Payment object
 *
 * "Authorization: PortOne <secret>", JSON bodies, errors {"type","message"}
 * (PG_PROVIDER also "pgCode","pgMessage"). The Idempotency-Key is an RFC 8941
 * quoted string of 16 to 256 characters, kept for a limited time.
 *
 * Admin calls under /_sim/portone/ (portone_admin.c): settle an asynchronous
 * (REQUESTED) cancellation, read or change the idempotency settings.
 */
#ifndef GATEWAY_SIM_PORTONE_H
#define GATEWAY_SIM_PORTONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ledger.h"
#include "sim.h"

#define PORTONE_PREFIX "/payments/"

/* Answer a request whose path starts with PORTONE_PREFIX. */
void portone_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp);

/* PortOne's cancellation status of a ledger status: SUCCEEDED, REQUESTED
 * (pending, requires_action) or FAILED (failed, canceled). */
const char *portone_cancellation_status(enum ledger_status status);

/* The PortOne PaymentCancellation object of refund r (new reference). */
json_t *portone_cancellation_object(const struct ledger_refund *r);

/* Answer an admin call under /_sim/portone/; what is the rest of the path. */
void portone_admin_handle(struct sim *sim, const struct sim_request *req, const char *what,
                          struct sim_response *resp);

/* Read the PortOne members of an admin POST /_sim/payments body:
 * "asyncCancel" (true: cancels answer REQUESTED, *refund_status pending) and
 * "paymentStatus" (a status that is not paid: *unpaid, borrowed from obj, or
 * NULL). False with a message in err on bad values. */
bool portone_payment_options(const json_t *obj, enum ledger_status *refund_status,
                             const char **unpaid, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Set PortOne's secret (NULL: keep the default), key lifetime in seconds
 * (> 0) and whether error answers are stored under a key, as the command
 * line says (what portone_settings_reset() goes back to). False when out of
 * memory. */
bool portone_configure(struct sim *sim, const char *secret, int64_t key_ttl_s, bool store_errors)
    __attribute__((warn_unused_result));

/* Put the key lifetime and error storing back to what portone_configure()
 * set (POST /_sim/reset). */
void portone_settings_reset(struct sim *sim);

#endif
