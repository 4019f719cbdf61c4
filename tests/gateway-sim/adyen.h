/*
 * adyen: the Adyen Checkout refund of the simulator (API v71), and what
 * happens to an Adyen refund after its answer.
 *
 *   POST /v71/payments/{paymentPspReference}/refunds
 *        X-API-Key auth (401 errorCode "000" otherwise), JSON body
 *        PaymentRefundRequest {amount{value,currency}, merchantAccount,
 *        reference, merchantRefundReason}; 201 PaymentRefundResponse with
 *        status "received"; errors as ServiceError {status, errorCode,
 *        message, errorType}.
 *
 * Adyen refunds are asynchronous (docs/design/issue9-gateways-research.md
 * §3.3, §3.6): the 201 says only "received". The refund settles later, to
 * succeeded or refused (what the payment's refundStatus says), after
 * --adyen-settle-ms or by an admin call, and the outcome goes out as a
 * REFUND notification (adyen_webhook.h). Checkout has no inquiry API, and
 * neither has the simulator. The admin endpoints are in adyen_admin.c.
 */
#ifndef GATEWAY_SIM_ADYEN_H
#define GATEWAY_SIM_ADYEN_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adyen_webhook.h"
#include "sim.h"

#define ADYEN_PREFIX "/v71/payments/"

/* Adyen: keys are "valid for a minimum period of 31 days after first
 * submission". */
#define ADYEN_DEFAULT_KEY_TTL_S (31LL * 24 * 3600)
#define ADYEN_DEFAULT_SETTLE_MS 200

struct adyen_options {
    const char *api_key;          /* borrowed; NULL = SIM_DEFAULT_ADYEN_API_KEY */
    const char *merchant_account; /* borrowed; NULL = SIM_DEFAULT_ADYEN_MERCHANT */
    int64_t key_ttl_ms;           /* how long a stored answer is replayed */
    int64_t settle_ms;            /* received -> settled after this; < 0: only by admin call */
    struct adyen_webhook_options webhook;
};

/* The command-line options, for main.c's getopt_long table and usage. */
enum {
    ADYEN_OPT_API_KEY = 0x100,
    ADYEN_OPT_MERCHANT,
    ADYEN_OPT_KEY_TTL,
    ADYEN_OPT_SETTLE_MS,
    ADYEN_OPT_WEBHOOK_URL,
    ADYEN_OPT_HMAC_KEY,
    ADYEN_OPT_WEBHOOK_BASIC_AUTH,
    ADYEN_OPT_WEBHOOK_TIME_SCALE,
    ADYEN_OPT_WEBHOOK_TIMEOUT_MS,
    ADYEN_OPT_END,
};

#define ADYEN_LONGOPTS                                                                             \
    {"adyen-api-key", required_argument, NULL, ADYEN_OPT_API_KEY},                                 \
        {"adyen-merchant-account", required_argument, NULL, ADYEN_OPT_MERCHANT},                   \
        {"adyen-key-ttl", required_argument, NULL, ADYEN_OPT_KEY_TTL},                             \
        {"adyen-settle-ms", required_argument, NULL, ADYEN_OPT_SETTLE_MS},                         \
        {"adyen-webhook-url", required_argument, NULL, ADYEN_OPT_WEBHOOK_URL},                     \
        {"adyen-hmac-key", required_argument, NULL, ADYEN_OPT_HMAC_KEY},                           \
        {"adyen-webhook-basic-auth", required_argument, NULL, ADYEN_OPT_WEBHOOK_BASIC_AUTH},       \
        {"adyen-webhook-time-scale", required_argument, NULL, ADYEN_OPT_WEBHOOK_TIME_SCALE},       \
    {                                                                                              \
        "adyen-webhook-timeout-ms", required_argument, NULL, ADYEN_OPT_WEBHOOK_TIMEOUT_MS          \
    }

#define ADYEN_USAGE                                                                                \
    "Adyen: [--adyen-api-key K] [--adyen-merchant-account M] [--adyen-key-ttl SECONDS]\n"          \
    "       [--adyen-settle-ms MS (-1: only by admin call)] [--adyen-webhook-url URL]\n"           \
    "       [--adyen-hmac-key HEX64] [--adyen-webhook-basic-auth USER:PASSWORD]\n"                 \
    "       [--adyen-webhook-time-scale N] [--adyen-webhook-timeout-ms MS]\n"

/* The defaults: the well-known test key and merchant account, keys kept 31
 * days, settlement after 200 ms, no webhook endpoint. */
void adyen_options_init(struct adyen_options *o);

/* Take the value of option opt (one of ADYEN_OPT_*; arg is borrowed and must
 * outlive o). False with the reason in err for a bad value. */
bool adyen_option(struct adyen_options *o, int opt, const char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The Adyen part of sim, started (its settlement and webhook threads run
 * until adyen_free()). NULL with the reason in err. sim must outlive it;
 * sim_free() frees it as sim->adyen. */
struct adyen *adyen_new(struct sim *sim, const struct adyen_options *o, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void adyen_free(struct adyen *adyen);

/* Forget pending settlements and every notification (the admin reset).
 * adyen_reset(NULL) is a no-op. */
void adyen_reset(struct adyen *adyen);

/* Answer a request whose path starts with ADYEN_PREFIX. */
void adyen_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp);

enum adyen_settle_result {
    ADYEN_SETTLE_OK = 0,
    ADYEN_SETTLE_NOT_FOUND,   /* no Adyen refund with that pspReference */
    ADYEN_SETTLE_WRONG_STATE, /* settle: not received any more; events: not succeeded */
    ADYEN_SETTLE_NO_MEMORY,
};

/* Settle refund psp (still received): succeeded, or refused with reason
 * (NULL: a default), which gives its amount back to the payment; then send
 * the REFUND notification. *delivery (may be NULL) gets its delivery id. */
enum adyen_settle_result adyen_settle(struct adyen *adyen, const char *psp, bool success,
                                      const char *reason, int *delivery);

/* A later event for the succeeded refund psp: event_code "REFUND_FAILED"
 * (the scheme rejected it: the ledger marks it failed) or
 * "REFUNDED_REVERSED" (the money came back: canceled). Both give the amount
 * back to the payment and send that notification. */
enum adyen_settle_result adyen_refund_event(struct adyen *adyen, const char *psp,
                                            const char *event_code, const char *reason,
                                            int *delivery);

/* The notification sender (for adyen_admin.c). */
struct adyen_webhooks *adyen_webhooks_of(struct adyen *adyen);

/* The /_sim/adyen/ admin API; what is the path after that prefix
 * (adyen_admin.c). */
void adyen_admin_handle(struct sim *sim, const struct sim_request *req, const char *what,
                        struct sim_response *resp);

#endif
