/*
 * kakaopay: the KakaoPay endpoints of the simulator, after the online
 * single-payment API of open-api.kakaopay.com:
 *
 *   POST /online/v1/payment/cancel   cancel cancel_amount of payment tid
 *   POST /online/v1/payment/order    order inquiry: the payment with its
 *                                    payment_action_details
 *
 * Authorization: SECRET_KEY <secret>, JSON bodies carrying cid and tid, the
 * cid checked against the simulator's. KakaoPay documents no idempotency:
 * every accepted cancel is a new cancel (a new aid), as long as the balance
 * allows it. Whether cancel_available_amount is enforced is not documented,
 * so it is a setting; so is the error format (error_code/error_message of
 * the new API, or the legacy code/msg). docs/gateway-sim.md has the details
 * and the simulator's choices.
 */
#ifndef GATEWAY_SIM_KAKAOPAY_H
#define GATEWAY_SIM_KAKAOPAY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "sim.h"

#define KAKAOPAY_PREFIX "/online/v1/payment/"

/* Defaults when none are given on the command line. TC0ONETIME is the test
 * cid KakaoPay documents for single payments. */
#define SIM_DEFAULT_KAKAOPAY_SECRET "kakaopay_secret_local"
#define SIM_DEFAULT_KAKAOPAY_CID    "TC0ONETIME"

struct kakaopay_settings;

/* The defaults: secret and cid above, guard ignored, the new error format.
 * NULL when out of memory. kakaopay_settings_free(NULL) is a no-op. */
struct kakaopay_settings *kakaopay_settings_new(void);
void kakaopay_settings_free(struct kakaopay_settings *settings);

/* Set the start-up settings (NULL keeps a default): the secret, the cid,
 * the guard ("enforced" or "ignored") and the error format ("new" or
 * "legacy"). Before the server starts only. False with the reason in err on
 * a bad value or when out of memory. */
bool kakaopay_configure(struct kakaopay_settings *settings, const char *secret, const char *cid,
                        const char *guard, const char *error_format, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Back to the start-up guard and error format (POST /_sim/reset). */
void kakaopay_settings_reset(struct kakaopay_settings *settings);

/* {"cid","guard","errorFormat"} (new reference; the secret is never shown). */
json_t *kakaopay_settings_json(const struct kakaopay_settings *settings);

/* Change the guard and/or the error format from {"guard","errorFormat"}
 * (PUT /_sim/kakaopay); false with err on bad input, nothing changed. */
bool kakaopay_settings_update_json(struct kakaopay_settings *settings, const json_t *obj, char *err,
                                   size_t errlen) __attribute__((warn_unused_result));

/* Answer a request whose path starts with KAKAOPAY_PREFIX. */
void kakaopay_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp);

#endif
