/*
 * ledger_int: the ledger's internals, shared by ledger.c (payments, refunds)
 * and ledger_idem.c (idempotency store, call log). Not for other modules:
 * they use ledger.h.
 */
#ifndef GATEWAY_SIM_LEDGER_INT_H
#define GATEWAY_SIM_LEDGER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "ledger_index.h"

/* One idempotency key: in flight until released, then a stored response. */
struct idem_entry {
    enum sim_gateway gateway;
    char *key;
    char *fingerprint;
    bool in_flight;
    bool stored;
    int64_t first_ms; /* mono_ms() of the key's first use: ledger_idem_expire() */
    int status;
    char *body;
};

struct call_entry {
    uint64_t seq;
    int64_t at_ms;
    char *method;
    char *path;
    enum sim_gateway gateway;
    char *payment_key;
    char *idempotency_key;
    int status;
    char *fault;
    bool replayed;
};

struct ledger {
    pthread_mutex_t lock;
    struct ledger_payment *payments; /* owned, array */
    size_t npayments, cap_payments;
    struct ledger_index payments_by_key;
    struct idem_entry *idem; /* owned, array */
    size_t nidem, cap_idem;
    struct ledger_index idem_by_key; /* by gateway and key */
    struct call_entry *calls;        /* owned, array */
    size_t ncalls, cap_calls;
    uint64_t seq;      /* ids of refunds */
    uint64_t call_seq; /* numbers of calls */
};

/* strdup(s), or NULL when s is NULL. */
char *ledger_dup_or_null(const char *s);

/* A JSON string of s, or null when s is NULL. New reference. */
json_t *ledger_str_or_null(const char *s);

/* Forget every idempotency key and call (the arrays stay allocated). Lock
 * held. */
void ledger_idem_reset_locked(struct ledger *l);

#endif
