/*
 * attempt: the retry decision. Given what the gateway answered to attempt n
 * of a request, what an inquiry found, and the request's budget, decide what
 * happens next: schedule attempt n+1 (when, under which key generation, with
 * an inquiry first or not), wait for a pending refund, or end the request in
 * a final status (and whether it is dead-lettered). Pure: no I/O, time and
 * randomness passed in, so every branch is unit-tested.
 *
 * This is the one place that maps a gateway verdict to a request status.
 * The rules (docs/gateways.md, "What cancel-retry does with each answer"):
 * - SUCCEEDED only on proof: the answer's body, or an inquiry;
 * - an answer the gateway stores under the key (or that repeats) cannot
 *   change under that key: inquire; a new key generation only after the
 *   inquiry proves that no refund of ours exists;
 * - a 409 "still processing" and a pending refund spend no budget;
 * - before EXHAUSTED or FAILED after an indeterminate answer, an inquiry
 *   decides (d->inquire_now asks the caller for it).
 */
#ifndef CR_ATTEMPT_H
#define CR_ATTEMPT_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "gateway/gateway.h"

/* Request statuses (cancel_request.status) that are not final. */
#define REQUEST_SCHEDULED "SCHEDULED"
#define REQUEST_IN_FLIGHT "IN_FLIGHT"
#define REQUEST_PENDING   "PENDING"

struct attempt_facts {
    /* The refund call of this attempt (when no_call is false). */
    enum gateway_verdict verdict;
    bool stored;            /* the gateway keeps the answer under the key (or may) */
    bool no_refund;         /* the answer proves nothing was refunded */
    bool repeated;          /* the same error as the previous attempt: the key holds it */
    int64_t retry_after_ms; /* from the answer, -1 if none */
    bool no_call;           /* the attempt made no refund call (its inquiry decided) */
    /* What an inquiry found: after the call's answer, or, with no_call, the
     * inquiry that ran instead of the call. FINDING_NONE when none ran. */
    enum refund_finding finding;
    /* The request's state. */
    const char *final_check; /* set: the budget is spent, only an inquiry is left; the
                              * status to end in when it proves no refund */
    int attempt;             /* the attempt just made, 1-based, over the request's life */
    int budget_base;         /* attempts that do not count against the budget */
    int max_attempts;        /* the request's budget */
    int64_t now_ms;
    int64_t deadline_ms;    /* the request's deadline_at */
    int64_t key_expires_ms; /* the idempotency key's end of life at the gateway, 0 unknown */
    int64_t lease_ms;       /* how long an attempt may take */
    const struct retry_policy *policy;
    uint64_t random; /* for jitter */
};

struct attempt_decision {
    const char *status;      /* new request status: SCHEDULED, PENDING or a final one */
    const char *decision;    /* attempt log decision: RETRY, PENDING or the final status */
    int64_t next_attempt_ms; /* when status is SCHEDULED or PENDING */
    bool final;
    const char *dlq_reason;  /* dead-letter reason for FAILED/EXHAUSTED, else NULL */
    const char *why;         /* one line for logs and the attempt log detail */
    const char *code;        /* an error code of ours for the outcome, or NULL */
    bool spend;              /* the attempt counts against the budget */
    bool new_key;            /* the next refund goes under a new key generation */
    bool key_holds_error;    /* the current key holds a stored non-success answer */
    bool inquire_first;      /* the next attempt starts with an inquiry */
    const char *final_check; /* carried to the next attempt (see attempt_facts) */
    bool found_by_inquiry;   /* a final success proven by an inquiry, not by an answer */
    bool inquire_now;        /* ask the gateway before this decision stands: call
                              * attempt_decide() again with the inquiry's finding */
};

/* Decide what follows attempt f->attempt. Static strings in *d. */
void attempt_decide(const struct attempt_facts *f, struct attempt_decision *d);

/* What a claimed attempt does after its first inquiry (made when the row asks
 * for one: a pending refund, a key that holds an error, a final check). */
enum attempt_start {
    ATTEMPT_CALL,         /* send the refund under the current key */
    ATTEMPT_CALL_NEW_KEY, /* the inquiry proved no refund: send under a new generation */
    ATTEMPT_NO_CALL,      /* the finding decides without a call (attempt_decide, no_call) */
};
enum attempt_start attempt_after_inquiry(enum refund_finding finding, bool key_holds_error,
                                         const char *final_check, bool may_call);

/* The latest time a new attempt may start: before the deadline, and early
 * enough that the key outlives the whole attempt (lease). */
int64_t attempt_last_start_ms(int64_t deadline_ms, int64_t key_expires_ms, int64_t lease_ms);

#endif
