/*
 * sim_test_client: fixture and HTTP helpers for the integration tests of
 * gateway-sim. sim_start() spawns the simulator ($GATEWAY_SIM) on an
 * ephemeral port and sim_stop() stops it (checking that it exits cleanly and
 * promptly); use them as a Criterion suite's .init and .fini. The helpers
 * fail the current test (cr_assert) when the simulator cannot be reached or
 * answers what a helper requires otherwise.
 */
#ifndef GATEWAY_SIM_TEST_CLIENT_H
#define GATEWAY_SIM_TEST_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define TOSS_AUTH    "Authorization: Basic dGVzdF9za190b3NzX2xvY2FsOg==" /* test_sk_toss_local: */
#define STRIPE_AUTH  "Authorization: Bearer sk_test_stripe_local"
#define PORTONE_AUTH "Authorization: PortOne portone_secret_local"

/* One HTTP answer: body owned (free with reply_free()), headers raw. */
struct reply {
    CURLcode rc;
    long status;
    char *body;
    size_t len;
    char headers[4096];
    size_t hlen;
};

void sleep_ms(long ms);
void sim_start(void);
/* sim_start() with extra command-line arguments (NULL-terminated). */
void sim_start_args(const char *const *extra);
void sim_stop(void);

/* The value of header name in r (case-insensitive name), or "" if absent;
 * copied into buf. */
const char *header(const struct reply *r, const char *name, char *buf, size_t buflen);

/* Send method path with the given extra headers (NULL-terminated list, may
 * be NULL) and body (may be NULL). timeout_ms 0 = 10 s. */
struct reply http(const char *method, const char *path, const char *const *headers,
                  const char *body, long timeout_ms);
void reply_free(struct reply *r);

/* Parse r's body as JSON (new reference); fails the test if it is not. */
json_t *reply_json(const struct reply *r);

/* Admin call that must answer want_status. */
void admin(const char *method, const char *path, const char *body, long want_status);
void add_payment(const char *gateway, const char *key, long amount, long refunded);
void add_fault(const char *json);

/* Toss cancel of payment key with Idempotency-Key idem (NULL = none);
 * amount < 0 = full cancel. */
struct reply toss_cancel_as(const char *auth, const char *key, const char *idem, long amount,
                            long timeout_ms);
struct reply toss_cancel(const char *key, const char *idem, long amount);

/* Stripe refund of payment_intent pi; amount < 0 = full refund. */
struct reply stripe_refund_as(const char *auth, const char *pi, const char *idem, long amount,
                              long timeout_ms);
struct reply stripe_refund(const char *pi, const char *idem, long amount);

/* The ledger entry of key (new reference). */
json_t *ledger_of(const char *key);

long json_int(const json_t *obj, const char *name);
const char *json_str(const json_t *obj, const char *name);

/* Expect the ledger of key to have nrefunds refunds and refunded in total. */
void expect_ledger(const char *key, size_t nrefunds, long refunded);

/* Expect r to be a Toss error status/code, or a Stripe error status/type/code
 * (code NULL = must have none). Both free r. */
void expect_toss_error(struct reply *r, long status, const char *code);
/* Expect r to be an error of status whose top-level member name is value
 * (Toss "code", PortOne "type") beside a string "message"; frees r. */
void expect_error_member(struct reply *r, long status, const char *name, const char *value);
void expect_stripe_error(struct reply *r, long status, const char *type, const char *code);

/* Number of calls the simulator logged for key. */
size_t calls_for(const char *key);

/* The "replayed" flags of the calls logged for key, in order, as
 * "false,true,..." in buf. The simulator's call log records a replay for
 * both gateways, also where the answer carries no Idempotent-Replayed
 * header (Toss). */
const char *call_replays(const char *key, char *buf, size_t buflen);

#endif
