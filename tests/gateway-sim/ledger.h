/*
 * ledger: the simulator's books. Payments and their refunds (with status and
 * metadata), the idempotency store (first response per key, replayed later)
 * and the log of gateway calls received. Everything sits behind one mutex, so
 * a refund and the balance check that allows it are one atomic step and
 * concurrent connections can never refund more than a payment's balance.
 */
#ifndef GATEWAY_SIM_LEDGER_H
#define GATEWAY_SIM_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim.h"

/* The status of a refund, in Stripe's words (Toss cancels are always
 * succeeded: cancelStatus DONE). pending, requires_action and succeeded
 * refunds count against the payment's balance; failed and canceled ones gave
 * their amount back. */
enum ledger_status {
    LEDGER_STATUS_SUCCEEDED = 0,
    LEDGER_STATUS_PENDING,
    LEDGER_STATUS_REQUIRES_ACTION,
    LEDGER_STATUS_FAILED,
    LEDGER_STATUS_CANCELED,
};

/* One metadata pair of a refund (Stripe metadata[NAME]=VALUE). */
struct ledger_meta {
    char *name;
    char *value;
};

struct ledger_refund {
    char *id;              /* Toss transactionKey (32 hex) / Stripe "re_..." */
    char *idempotency_key; /* NULL when the call carried none */
    char *reason;          /* Toss cancelReason, Stripe reason; may be NULL */
    char *failure_reason;  /* Stripe failure_reason; NULL unless failed */
    struct ledger_meta *metadata;
    size_t nmetadata;
    enum ledger_status status;
    uint64_t seq; /* creation order across the ledger */
    int64_t amount;
    int64_t at_ms;
    int64_t status_ms; /* when ledger_refund_set_status() last moved it; 0 = never */
};

/* A payment as the handlers see it: always a copy taken under the lock. */
struct ledger_payment {
    enum sim_gateway gateway;
    enum ledger_status refund_status; /* what new refunds start as */
    char *payment_key;
    char *order_id;
    char *currency;
    char *unpaid_status; /* PortOne: the payment's status when it is not paid
                            (READY, FAILED, ...); NULL = paid */
    int64_t amount;
    int64_t refunded;              /* preset by the admin call, plus the refunds that count */
    int64_t created_ms;            /* when the admin call added it (KakaoPay approved_at) */
    struct ledger_refund *refunds; /* in creation order */
    size_t nrefunds;
    size_t cap;
};

/* A new refund. Strings and metadata are copied. */
struct ledger_refund_spec {
    int64_t amount;              /* < 0: the whole remaining balance */
    const char *reason;          /* may be NULL */
    const char *idempotency_key; /* may be NULL */
    const struct ledger_meta *metadata;
    size_t nmetadata;
    bool has_status; /* false: the payment's refund_status */
    enum ledger_status status;
    /* A gateway's balance guard (KakaoPay cancel_available_amount, PortOne
     * currentCancellableAmount): refund only if the balance before this
     * refund is expected_balance. */
    bool has_expected_balance;
    int64_t expected_balance;
};

enum ledger_refund_result {
    LEDGER_REFUND_OK = 0,
    LEDGER_REFUND_NOT_FOUND,    /* unknown key, or a payment of the other gateway */
    LEDGER_REFUND_NOTHING_LEFT, /* balance is 0 */
    LEDGER_REFUND_TOO_LARGE,    /* amount > balance */
    LEDGER_REFUND_NO_MEMORY,    /* nothing refunded */
    /* the balance is not spec->expected_balance (nothing refunded) */
    LEDGER_REFUND_BALANCE_DIFFERS,
};

/* "succeeded", "pending", ...; ledger_status_parse() is the reverse (false
 * if unknown). */
const char *ledger_status_name(enum ledger_status status);
bool ledger_status_parse(const char *s, enum ledger_status *out);

/* True for the statuses that count against the balance. */
bool ledger_status_counts(enum ledger_status status);

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

/* Grow *arr (of elements of size elsize, n in use, room for *cap) so that
 * one more fits; false when out of memory (*arr unchanged). Also for the
 * other modules' arrays. */
bool ledger_grow(void **arr, size_t *cap, size_t n, size_t elsize);

struct ledger *ledger_new(void);
void ledger_free(struct ledger *ledger);

/* Forget payments, refunds, idempotency keys and calls. */
void ledger_reset(struct ledger *ledger);

/* Create or replace the payment payment_key (replacing drops its refunds).
 * order_id may be NULL (then "order-<paymentKey>"). refunded must be within
 * [0, amount]; refund_status is what new refunds start as (Toss: succeeded
 * only). Returns false with a reason in err on bad values or when out of
 * memory. */
bool ledger_put_payment(struct ledger *ledger, enum sim_gateway gateway, const char *payment_key,
                        const char *order_id, int64_t amount, const char *currency,
                        int64_t refunded, enum ledger_status refund_status, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* Set (or with NULL clear) the unpaid status of payment payment_key. False
 * if there is no such payment, or when out of memory. */
bool ledger_set_unpaid_status(struct ledger *ledger, const char *payment_key, const char *status)
    __attribute__((warn_unused_result));

/* A copy of the payment of gateway with payment_key, or NULL if there is none
 * (or out of memory). The caller frees it with ledger_payment_free(). */
struct ledger_payment *ledger_payment_get(struct ledger *ledger, enum sim_gateway gateway,
                                          const char *payment_key);

/* The same for a payment of either gateway. */
struct ledger_payment *ledger_payment_lookup(struct ledger *ledger, const char *payment_key);
void ledger_payment_free(struct ledger_payment *payment);

/* Copies of every payment of gateway in *payments (count in *n; NULL when
 * there is none). False when out of memory. Free with ledger_payments_free(). */
bool ledger_payments_list(struct ledger *ledger, enum sim_gateway gateway,
                          struct ledger_payment **payments, size_t *n)
    __attribute__((warn_unused_result));
void ledger_payments_free(struct ledger_payment *payments, size_t n);

/* Refund spec->amount of the payment, atomically with the balance check (a
 * refund is checked against the balance whatever its status) and the
 * balance guard (after "nothing left", before "too large"). On
 * LEDGER_REFUND_OK the new refund is the last entry of *after. *after (may
 * be NULL when out of memory or not found) is a copy of the payment after
 * the call, owned by the caller. */
enum ledger_refund_result ledger_refund(struct ledger *ledger, enum sim_gateway gateway,
                                        const char *payment_key,
                                        const struct ledger_refund_spec *spec,
                                        struct ledger_payment **after);

/* A copy of the payment that holds the refund refund_id (its index in
 * *index), or NULL if no payment does. Free with ledger_payment_free(). */
struct ledger_payment *ledger_refund_find(struct ledger *ledger, const char *refund_id,
                                          size_t *index);

/* Move refund refund_id to status (failure_reason: only kept for failed; may
 * be NULL). Moving a failed or canceled refund back to a status that counts
 * needs the balance for it (LEDGER_REFUND_TOO_LARGE otherwise). On
 * LEDGER_REFUND_OK *after (owned by the caller, may be NULL when out of
 * memory) is a copy of the payment and *index the refund's index in it. */
enum ledger_refund_result ledger_refund_set_status(struct ledger *ledger, const char *refund_id,
                                                   enum ledger_status status,
                                                   const char *failure_reason,
                                                   struct ledger_payment **after, size_t *index);

/* Forget refund refund_id: its amount goes back to the balance if it
 * counted. A response stored under its idempotency key stays. False if there
 * is no such refund. */
bool ledger_refund_delete(struct ledger *ledger, const char *refund_id);

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

/* Forget key of gateway when its answer is stored and the key was first used
 * at least ttl_ms ago (PortOne keeps a key for a limited time), so that the
 * next ledger_idem_begin() with it is NEW. A key in flight is kept. */
void ledger_idem_expire(struct ledger *ledger, enum sim_gateway gateway, const char *key,
                        int64_t ttl_ms);

/* Append a call to the call log. */
void ledger_call_record(struct ledger *ledger, const struct ledger_call *call);

/* {"calls": N, "payments": [...]} (new reference, NULL when out of memory). */
json_t *ledger_json(struct ledger *ledger);

/* One payment in the ledger format, or NULL if unknown. New reference. */
json_t *ledger_payment_json(struct ledger *ledger, const char *payment_key);

/* Refund r of payment p in the ledger format, with the payment's key as
 * "paymentKey" (answers of the admin refund calls). New reference. */
json_t *ledger_refund_json(const struct ledger_payment *p, const struct ledger_refund *r);

/* {"calls": [...]} for payment_key, or every call when it is NULL. */
json_t *ledger_calls_json(struct ledger *ledger, const char *payment_key);

#endif
