/*
 * gateway_sim_fixture: a private gateway-sim process for the self-contained
 * integration tests of the gateway clients (test_gateway_clients.c,
 * test_gateway_table.c), which need no database and no Kafka.
 *
 * gwsim_start() spawns the simulator on an ephemeral port (--listen
 * 127.0.0.1:0 --port-file) and waits until it is healthy; gwsim_stop() stops
 * it. The binary is $GATEWAY_SIM, else ../gateway-sim/gateway-sim next to
 * the test's own directory in the build tree. The admin helpers fail the
 * current Criterion test when the simulator does not answer as required.
 */
#ifndef CR_TEST_GATEWAY_SIM_FIXTURE_H
#define CR_TEST_GATEWAY_SIM_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/http.h"
#include "config/config.h"
#include "gateway/gateway.h"

#define GWSIM_TOSS_SECRET   "test_sk_toss_local"
#define GWSIM_STRIPE_SECRET "sk_test_stripe_local"
/* KakaoPay: the simulator's default secret and merchant code (cid). */
#define GWSIM_KAKAOPAY_SECRET "kakaopay_secret_local"
#define GWSIM_KAKAOPAY_CID    "TC0ONETIME"

struct gwsim {
    pid_t pid;
    char base_url[64]; /* http://127.0.0.1:<port> */
    char port_file[64];
};

void gwsim_start(struct gwsim *s);
void gwsim_stop(struct gwsim *s);

/* A blocking call to the simulator: the body (caller frees) and, when
 * status is not NULL, the HTTP status (0 when there was no answer). */
char *gwsim_admin(const struct gwsim *s, const char *method, const char *path, const char *json,
                  long *status);

/* The same, failing the test unless the status is 2xx. */
void gwsim_admin_ok(const struct gwsim *s, const char *method, const char *path, const char *json);

/* A payment to refund: Toss and KakaoPay payments in KRW, Stripe ones in USD. */
void gwsim_payment(const struct gwsim *s, const char *gateway, const char *key, long amount,
                   long refunded);

/* POST /_sim/faults with json. */
void gwsim_fault(const struct gwsim *s, const char *json);

/* The ledger entry of one payment: refunded total and number of refunds. */
void gwsim_ledger(const struct gwsim *s, const char *key, long *refunded, size_t *nrefunds);

/* Expect the "replayed" flags of the calls the simulator logged for key, in
 * order, to be want ("false,true,..."). Toss answers carry no replay marker
 * (it documents none), so the call log is where a Toss replay shows. */
void gwsim_expect_replays(const struct gwsim *s, const char *key, const char *want);

/* A gateway config pointing at the simulator (2 s connect, 5 s timeout;
 * KakaoPay with the simulator's cid). The strings are borrowed from s and
 * secret. */
struct config_gateway gwsim_gateway_cfg(const struct gwsim *s, enum gateway_kind kind,
                                        const char *secret);

/* A refund in flight and its answer, once done. */
struct gwsim_refund {
    bool done;
    struct gateway_answer answer;
};

/* Start a refund through gc; its answer lands in *r (zeroed first; fails
 * the test if it comes twice). */
void gwsim_refund_start(struct gateway_client *gc, const struct refund_request *req,
                        struct gwsim_refund *r);

/* Drive http until every one of refunds is done; fails the test after
 * 30 s. */
void gwsim_refunds_wait(struct http_client *http, struct gwsim_refund *refunds, size_t n);

/* One refund through gc, synchronously: start + wait. */
struct gateway_answer gwsim_refund(struct http_client *http, struct gateway_client *gc,
                                   const struct refund_request *req);

#endif
