/*
 * request_events: the events that announce a request's state changes,
 * written to the outbox inside the caller's transaction (so an event exists
 * if and only if the state change committed):
 * - RetryScheduled on the retry topic, available when the attempt is due;
 * - Outcome on the outcome topic when the request ends;
 * - a dead letter on the DLQ topic for FAILED and EXHAUSTED requests (the
 *   original CancelFailed bytes) and for poison messages (their own bytes).
 */
#ifndef CR_REQUEST_EVENTS_H
#define CR_REQUEST_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "event/cancel_event.h"
#include "event/dlq.h"
#include "store/db.h"
#include "store/outbox.h"
#include "store/request_store.h"

/* Fill req with borrowed pointers into row. */
void request_events_fields(const struct request_row *row, struct cancel_request_fields *req);

/* Build the RetryScheduled for `attempt`, published at due_ms, as an outbox
 * row (for outbox_insert_many; clear with outbox_event_clear). req and
 * correlation_id are borrowed by ev->msg. */
bool request_events_retry_build(const struct config *cfg, const struct cancel_request_fields *req,
                                const char *correlation_id, int attempt, int64_t due_ms,
                                struct outbox_event *ev, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Outbox a RetryScheduled for `attempt`, published at due_ms. */
bool request_events_retry(struct db *db, const struct config *cfg,
                          const struct cancel_request_fields *req, const char *correlation_id,
                          int attempt, int64_t due_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Make the attempt that row (locked by the caller's transaction) awaits due
 * now: its next_attempt_at moves to now_ms and a RetryScheduled for it is
 * outboxed; the claim accepts that trigger, and the older one for the same
 * attempt finds the attempt taken and is skipped as stale
 * (request_store_claim). *moved false when the row was not waiting for it
 * (then nothing is written). */
bool request_events_due_now(struct db *db, const struct config *cfg, const struct request_row *row,
                            int64_t now_ms, bool *moved, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Outbox the Outcome of a request that ended in status after attempts; for
 * dlq_reason != NULL also its dead letter (the original CancelFailed bytes of
 * row) with dlq_error as detail, from consumer. last may be NULL. */
bool request_events_final(struct db *db, const struct config *cfg, const struct request_row *row,
                          const char *status, int attempts, const struct cancel_last_error *last,
                          const char *dlq_reason, const char *dlq_error, const char *consumer,
                          char *err, size_t errlen) __attribute__((warn_unused_result));

/* Outbox a dead letter of row's request: its original CancelFailed bytes,
 * keyed by its requestId, so that a replay can re-arm it (docs/contracts.md
 * "Dead letters"), with reason, error (detail, never a secret), consumer
 * (dlq.consumer) and attempts. Used for FAILED and EXHAUSTED requests and for
 * reconciliation mismatches. */
bool request_events_request_dead_letter(struct db *db, const struct config *cfg,
                                        const struct request_row *row, const char *reason,
                                        const char *error, const char *consumer, int attempts,
                                        char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Outbox a dead letter carrying bytes unchanged, keyed by key (may be NULL),
 * with the headers meta describes. */
bool request_events_dead_letter(struct db *db, const struct config *cfg, const void *bytes,
                                size_t len, const char *key, const struct dlq_meta *meta, char *err,
                                size_t errlen) __attribute__((warn_unused_result));

#endif
