/*
 * retry_steps: the database steps of one retry attempt, each one short
 * transaction, so that no transaction is ever open while the gateway is
 * called:
 *   1. claim    SCHEDULED -> IN_FLIGHT (lease, attempt n fenced), STARTED fact
 *   2. (the gateway call, outside any transaction: retry_worker.c)
 *   3. record   ANSWERED fact, new status, outbox: Outcome | next
 *               RetryScheduled | Outcome + dead letter
 * plus the ways an attempt does not happen: postponed (breaker open),
 * skipped (stale, duplicate, early or final), finished without a call
 * (deadline or key lifetime gone), dead-lettered (poison event).
 *
 * Every function returns false only when its transaction failed (err set,
 * rolled back, nothing changed). db_failure_blames_message() (db.h) then
 * says whose fault it was: the database's (the caller retries the step when
 * the database is back) or the event's data (the caller dead-letters the
 * event: retrying would fail the same way for ever).
 */
#ifndef CR_RETRY_STEPS_H
#define CR_RETRY_STEPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/attempt.h"
#include "event/cancel_event.h"
#include "event/dlq.h"
#include "gateway/gateway.h"
#include "store/db.h"
#include "store/request_store.h"

#define RETRY_CONSUMER_NAME "retry-consumer"

enum claim_result {
    CLAIM_TAKEN,    /* row filled, lease held: call the gateway */
    CLAIM_SKIPPED,  /* nothing to do for this event (why says which case) */
    CLAIM_FINISHED, /* the request ended without a call (deadline, key lifetime) */
};

/* Claim attempt `attempt` of request_id for worker. On CLAIM_TAKEN *row is
 * filled (caller clears it). why receives a short reason for the other
 * results. */
bool retry_steps_claim(struct db *db, const struct config *cfg, const char *worker,
                       const char *request_id, int attempt, struct request_row *row,
                       enum claim_result *result, char *why, size_t whylen, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/* The breaker of the request's gateway is open: move attempt `attempt` to
 * retry_at_ms without spending it, with a new RetryScheduled. *moved false
 * when the request was not waiting for that attempt any more. */
/* retry_steps_claim() without its transaction: the caller's, which may hold
 * the claims of several events (group commit). On false the transaction is
 * unusable and *row holds nothing. */
bool retry_steps_claim_in_tx(struct db *db, const struct config *cfg, const char *worker,
                             const char *request_id, int attempt, struct request_row *row,
                             enum claim_result *result, char *why, size_t whylen, char *err,
                             size_t errlen) __attribute__((warn_unused_result));

bool retry_steps_postpone(struct db *db, const struct config *cfg, const struct retry_scheduled *rs,
                          const char *correlation_id, int64_t retry_at_ms, bool *moved, char *err,
                          size_t errlen) __attribute__((warn_unused_result));

/* What one claimed attempt learnt from the gateway. */
struct attempt_result {
    bool called; /* a refund call was made (answer is its answer) */
    struct gateway_answer answer;
    int key_generation; /* the generation the call used */
    char key[300];      /* the Idempotency-Key the call sent, by the gateway's rules; "" none */
    bool inquired;      /* inquiry decides: the one after the answer, or the
                         * one that ran instead of a call */
    struct gateway_inquiry inquiry;
    enum refund_finding before; /* an inquiry before the call, for the log; or NONE */
};

/* The one builder of attempt_decide()'s facts for the attempt claimed in
 * row: the request's state and budget (row), the gateway's policy (cfg), the
 * wall clock now, and what the attempt learnt (r). r NULL: nothing was
 * learnt, the worker that made the attempt vanished (the reconciler): a
 * retryable answer with no Retry-After. */
void retry_steps_facts(const struct config *cfg, const struct request_row *row,
                       const struct attempt_result *r, uint64_t random, struct attempt_facts *f);

/* The decision for result r of the attempt claimed in row (attempt.h, with
 * the request's budget and the gateway's policy; reads the clock). */
void retry_steps_decide(const struct config *cfg, const struct request_row *row,
                        const struct attempt_result *r, uint64_t random,
                        struct attempt_decision *d);

/* May a claimed attempt of row still send a refund now (deadline, key)? */
bool retry_steps_may_call(const struct config *cfg, const struct request_row *row);

/* The same rule without the final check's: may anything that reaches the
 * gateway as a refund (a call, or an inquiry that replays it under the same
 * key) still go out now? */
bool retry_steps_may_send(const struct config *cfg, const struct request_row *row);

/* Record what the attempt claimed in row learnt and apply the retry decision
 * (attempt.h). *status_out (may be NULL) receives the new request status
 * (static string). */
bool retry_steps_record(struct db *db, const struct config *cfg, const char *worker,
                        const struct request_row *row, const struct attempt_result *r,
                        uint64_t random, const char **status_out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Dead-letter an event of the retry topic that cannot be read. */
/* What retry_steps_record_in_tx() did, for retry_steps_record_log() once the
 * transaction committed. */
struct retry_recorded {
    bool applied;         /* the decision was applied (the lease was still ours) */
    bool answered_before; /* on false: the ANSWERED fact already exists */
    struct attempt_decision decision;
};

/* retry_steps_record() without its transaction, and without its log line
 * (retry_steps_record_log(), after the commit). */
bool retry_steps_record_in_tx(struct db *db, const struct config *cfg, const char *worker,
                              const struct request_row *row, const struct attempt_result *r,
                              uint64_t random, struct retry_recorded *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void retry_steps_record_log(const struct request_row *row, const struct attempt_result *r,
                            const struct retry_recorded *rec);

bool retry_steps_dead_letter(struct db *db, const struct config *cfg, const void *bytes, size_t len,
                             const char *key, const struct dlq_meta *meta, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Group commit. One commit per event capped a worker at the database's
 * round trips; the claims (or the records) of every event ready at one turn
 * of the worker's loop go into one transaction instead. Items are sorted by
 * requestId first (see the .c). On true all committed (record: and each was
 * logged); on false the whole batch was rolled back, no item holds a row,
 * and the caller runs the items one by one (retry_steps_claim(),
 * retry_steps_record()), whose failure db.h's rule classifies alone: one
 * event the database refuses must not fail the others. Nothing is sent to a
 * gateway before its claim committed, as with one event. */
struct claim_item {
    const char *request_id;
    int attempt;
    struct request_row *row; /* filled when result is CLAIM_TAKEN */
    enum claim_result result;
    char why[256];
    void *owner; /* the caller's */
};

bool retry_steps_claim_batch(struct db *db, const struct config *cfg, const char *worker,
                             struct claim_item *items, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

struct record_item {
    const struct request_row *row;
    const struct attempt_result *result;
    uint64_t random;
    struct retry_recorded rec;
    void *owner; /* the caller's */
};

bool retry_steps_record_batch(struct db *db, const struct config *cfg, const char *worker,
                              struct record_item *items, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
