/*
 * ledger: the simulator's books. Payments and their refunds, the idempotency
 * store (first response per key, replayed later) and the log of gateway calls
 * received. Everything sits behind one mutex, so a refund and the balance
 * check that allows it are one atomic step and concurrent connections can
 * never refund more than a payment's balance.
 */
#ifndef GATEWAY_SIM_LEDGER_H
#define GATEWAY_SIM_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim.h"

struct ledger_refund {
    char *id;              /* Toss transactionKey (32 hex) / Stripe "re_..." */
    char *idempotency_key; /* NULL when the call carried none */
    char *reason;          /* NULL for Stripe */
    int64_t amount;
    int64_t at_ms;
};

/* A payment as the handlers see it: always a copy taken under the lock. */
struct ledger_payment {
    enum sim_gateway gateway;
    char *payment_key;
    char *order_id;
    char *currency;
    int64_t amount;
    int64_t refunded; /* sum of refunds plus what the admin call preset */
    struct ledger_refund *refunds;
    size_t nrefunds;
    size_t cap;
};

enum ledger_refund_result {
    LEDGER_REFUND_OK = 0,
    LEDGER_REFUND_NOT_FOUND,    /* unknown key, or a payment of the other gateway */
    LEDGER_REFUND_NOTHING_LEFT, /* balance is 0 */
    LEDGER_REFUND_TOO_LARGE,    /* amount > balance */
    LEDGER_REFUND_NO_MEMORY,    /* nothing refunded */
};

enum ledger_idem_state {
    LEDGER_IDEM_NEW = 0,   /* no entry: one was created, in flight, for the caller */
    LEDGER_IDEM_IN_FLIGHT, /* another request with this key is being processed */
    LEDGER_IDEM_MISMATCH,  /* the key was used with other parameters */
    LEDGER_IDEM_REPLAY,    /* a stored response is returned */
};

/* One gateway call for the /_sim/calls log; strings are borrowed by
 * ledger_call_record(), which copies them. status 0 = nothing answered. */
struct ledger_call {
    const char *method;
    const char *path;
    enum sim_gateway gateway;
    const char *payment_key;
    const char *idempotency_key;
    int status;
    const char *fault; /* fault type name or NULL */
    bool replayed;
};

struct ledger *ledger_new(void);
void ledger_free(struct ledger *ledger);

/* Forget payments, refunds, idempotency keys and calls. */
void ledger_reset(struct ledger *ledger);

/* Create or replace the payment payment_key (replacing drops its refunds).
 * order_id may be NULL (then "order-<paymentKey>"). refunded must be within
 * [0, amount]. Returns false with a reason in err on bad values or when out
 * of memory. */
bool ledger_put_payment(struct ledger *ledger, enum sim_gateway gateway, const char *payment_key,
                        const char *order_id, int64_t amount, const char *currency,
                        int64_t refunded, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A copy of the payment of gateway with payment_key, or NULL if there is none
 * (or out of memory). The caller frees it with ledger_payment_free(). */
struct ledger_payment *ledger_payment_get(struct ledger *ledger, enum sim_gateway gateway,
                                          const char *payment_key);
void ledger_payment_free(struct ledger_payment *payment);

/* Refund amount (amount < 0: the whole remaining balance) of the payment,
 * atomically with the balance check. On LEDGER_REFUND_OK the new refund is
 * the last entry of *after. *after (may be NULL when out of memory or not
 * found) is a copy of the payment after the call, owned by the caller. */
enum ledger_refund_result ledger_refund(struct ledger *ledger, enum sim_gateway gateway,
                                        const char *payment_key, int64_t amount, const char *reason,
                                        const char *idempotency_key, struct ledger_payment **after);

/* Look up idempotency key of gateway. On LEDGER_IDEM_REPLAY *status and
 * *body (owned by the caller, may be NULL) hold the stored response; on
 * LEDGER_IDEM_NEW the caller now owns the in-flight entry and must end it
 * with ledger_idem_release(). fingerprint identifies the parameters. */
enum ledger_idem_state ledger_idem_begin(struct ledger *ledger, enum sim_gateway gateway,
                                         const char *key, const char *fingerprint, int *status,
                                         char **body);

/* Store the response of the in-flight key (body copied; may be NULL). The key
 * stays in flight until ledger_idem_release(), so a request arriving while
 * the response is still being "delivered" (apply_then_hang) gets the 409. */
void ledger_idem_store(struct ledger *ledger, enum sim_gateway gateway, const char *key, int status,
                       const char *body);

/* End the in-flight state of key. A key without a stored response is
 * forgotten, so that a retry is processed afresh. */
void ledger_idem_release(struct ledger *ledger, enum sim_gateway gateway, const char *key);

/* Append a call to the call log. */
void ledger_call_record(struct ledger *ledger, const struct ledger_call *call);

/* {"calls": N, "payments": [...]} (new reference, NULL when out of memory). */
json_t *ledger_json(struct ledger *ledger);

/* One payment in the ledger format, or NULL if unknown. New reference. */
json_t *ledger_payment_json(struct ledger *ledger, const char *payment_key);

/* {"calls": [...]} for payment_key, or every call when it is NULL. */
json_t *ledger_calls_json(struct ledger *ledger, const char *payment_key);

#endif
