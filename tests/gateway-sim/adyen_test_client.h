/*
 * adyen_test_client: the fixture and helpers of the Adyen tests of
 * gateway-sim (test_gateway_sim_adyen.c: the refund call;
 * test_gateway_sim_adyen_webhooks.c: settlement and notifications). A test
 * starts a webhook listener (webhook_listener.h) and a simulator sending to
 * it with start() or start_with(); adyen_test_stop() is the suites' .fini.
 * The helpers fail the current test when the simulator does not do its part.
 */
#ifndef GATEWAY_SIM_ADYEN_TEST_CLIENT_H
#define GATEWAY_SIM_ADYEN_TEST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "sim_test_client.h"

#define API_KEY       "X-API-Key: adyen_api_key_local"
#define MERCHANT      "CancelRetryTest"
#define HMAC_KEY      "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
#define PAYMENT       "993617894903480A"
#define WAIT_MS       10000 /* how long a test waits for what must come */
#define SETTLE_MANUAL "-1"  /* --adyen-settle-ms: only by admin call */

/* Stop the simulator, then the listener. */
void adyen_test_stop(void);

/* Start the listener, then the simulator sending to it, with refunds
 * settling after settle_ms ("-1": only by admin call) and extra arguments
 * (NULL-terminated, may be NULL). */
void start_with(const char *settle_ms, const char *const *extra);

/* start_with(settle_ms, NULL). */
void start(const char *settle_ms);

/* An Adyen payment of amount (EUR); its refunds settle to refund_status. */
void add_adyen_payment(const char *psp, long amount, const char *refund_status);

/* POST the refund of payment psp with body, key idem (NULL = none) and the
 * auth header auth (NULL = none). */
struct reply refund_raw(const char *auth, const char *psp, const char *idem, const char *body,
                        long timeout_ms);

/* A well-formed refund of value EUR with reference ref. */
struct reply refund(const char *psp, const char *idem, long value, const char *ref);

/* The 201 answer of r (new reference); frees r. */
json_t *received(struct reply *r);

/* Refund value of psp with key idem and return the refund's pspReference
 * into buf. */
const char *refund_ok(const char *psp, const char *idem, long value, char *buf, size_t buflen);

/* Expect a ServiceError status/errorCode/errorType; frees r. */
void expect_adyen_error(struct reply *r, long status, const char *code, const char *type);

/* The status of refund i in the ledger of psp. */
const char *refund_status(const char *psp, size_t i, char *buf, size_t buflen);

/* POST /_sim/adyen/refunds/{psp}/{action} with body; answers the status. */
long refund_admin(const char *psp, const char *action, const char *body);

/* The deliveries listed for psp (NULL: all), new reference. */
json_t *deliveries(const char *psp);

/* The NotificationRequestItem of webhook post i (borrowed from *body, a new
 * reference the caller releases). Checks the envelope. */
json_t *item_of_post(size_t i, json_t **body);

/* True if item carries the signature the test key gives it. */
bool signed_right(const json_t *item);

/* pspReference of webhook post i into buf (the envelope checked). */
const char *post_psp(size_t i, char *buf, size_t buflen);

/* Refund 1000 of PAYMENT twice (keys "a" and "b", pspReferences into a and
 * b, 32 bytes each) and settle a, then b: two notifications, in that order
 * unless a fault says otherwise. */
void settle_two(char *a, char *b);

/* The deliveries about psp once the first is accepted (new reference). */
json_t *once_accepted(const char *psp);

/* Expect webhook post i to carry one item of event_code, success, about
 * refund psp of PAYMENT, signed with the test key. */
void expect_item(size_t i, const char *event_code, const char *success, const char *psp);

#endif
