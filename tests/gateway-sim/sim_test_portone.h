/*
 * sim_test_portone: helpers for the PortOne tests of gateway-sim
 * (test_gateway_sim_portone.c, test_gateway_sim_portone_faults.c), on top of
 * sim_test_client.h. Like those, they fail the current test when the
 * simulator answers what a helper requires otherwise.
 */
#ifndef GATEWAY_SIM_TEST_PORTONE_H
#define GATEWAY_SIM_TEST_PORTONE_H

#include <jansson.h>
#include <stddef.h>

#include "sim_test_client.h"

/* Keys in PortOne's format: an RFC 8941 quoted string, 16+ characters. */
#define PORTONE_KEY_A "\"req-portone-0001\""
#define PORTONE_KEY_B "\"req-portone-0002\""

/* POST /payments/{id}/cancel with body, Idempotency-Key idem (the header's
 * value as sent, NULL = none) and Authorization auth (NULL = none).
 * timeout_ms 0 = 10 s. portone_cancel() sends the right secret. */
struct reply portone_cancel_as(const char *auth, const char *id, const char *idem, const char *body,
                               long timeout_ms);
struct reply portone_cancel(const char *id, const char *idem, const char *body);

/* A cancel of amount with reason "r" and no guard. */
struct reply portone_cancel_amount(const char *id, const char *idem, long amount);

/* GET /payments/{id} with Authorization auth (NULL = none). */
struct reply portone_inquire_as(const char *auth, const char *id);

/* The Payment object of id (new reference); the inquiry must answer 200. */
json_t *portone_payment(const char *id);

/* amount.NAME of Payment p. */
long portone_amount(const json_t *p, const char *name);

/* A PortOne payment; extra is more JSON members (",\"asyncCancel\":true") or "". */
void add_portone(const char *id, long amount, const char *extra);

/* The cancellation of a 200 answer (new reference); frees r. */
json_t *portone_cancellation(struct reply *r);

/* The id of the cancellation of a 200 answer, whose status must be want,
 * into id; frees r. */
void portone_cancellation_id(struct reply *r, const char *want, char *id, size_t idlen);

/* Expect r to be the PortOne error status/type; frees r. */
void expect_portone_error(struct reply *r, long status, const char *type);

/* POST /_sim/portone/cancellations/{id}/settle {"status": status}: the
 * answer's status. */
long portone_settle(const char *id, const char *status);

#endif
