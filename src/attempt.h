/*
 * attempt: the retry decision. Given what the gateway answered to attempt n
 * of a request and the request's budget, decide what happens next: schedule
 * attempt n+1 (and when), or end the request in a final status (and whether it
 * is dead-lettered). Pure: no I/O, time and randomness passed in, so every
 * branch is unit-tested.
 *
 * This is the one place that maps a gateway verdict to a request status.
 */
#ifndef CR_ATTEMPT_H
#define CR_ATTEMPT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "gateway.h"

/* Request statuses (cancel_request.status). */
#define REQUEST_SCHEDULED "SCHEDULED"
#define REQUEST_IN_FLIGHT "IN_FLIGHT"

struct attempt_facts {
    enum gateway_verdict verdict;
    int64_t retry_after_ms; /* from the answer, -1 if none */
    int attempt;            /* the attempt just made, 1-based, over the request's life */
    int budget_base;        /* attempts made before the current budget (a replay re-arms) */
    int max_attempts;       /* the request's budget */
    int64_t now_ms;
    int64_t deadline_ms;    /* the request's deadline_at */
    int64_t key_expires_ms; /* the idempotency key's end of life at the gateway, 0 unknown */
    int64_t lease_ms;       /* how long an attempt may take */
    const struct retry_policy *policy;
    uint64_t random; /* for jitter */
};

struct attempt_decision {
    const char *status;      /* new request status: SCHEDULED or a final one */
    const char *decision;    /* attempt log decision: RETRY or the final status */
    int64_t next_attempt_ms; /* when status is SCHEDULED */
    bool final;
    const char *dlq_reason; /* dead-letter reason for FAILED/EXHAUSTED, else NULL */
    const char *why;        /* one line for logs and the attempt log detail */
};

/* Decide what follows attempt f->attempt. Static strings in *d. */
void attempt_decide(const struct attempt_facts *f, struct attempt_decision *d);

/* The latest time a new attempt may start: before the deadline, and early
 * enough that the key outlives the whole attempt (lease). */
int64_t attempt_last_start_ms(int64_t deadline_ms, int64_t key_expires_ms, int64_t lease_ms);

#endif
