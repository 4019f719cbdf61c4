/*
 * request_store: the SQL of a cancel request's life in cancel_request and
 * retry_attempt_log. Each function runs statements on a connection the caller
 * owns, inside the caller's transaction; none commits. Every transition is a
 * conditional UPDATE (status, attempt number, lease owner) so that a stale
 * worker or a duplicated event changes nothing: the WHERE clause is the fence.
 *
 * Times are epoch milliseconds.
 */
#ifndef CR_REQUEST_STORE_H
#define CR_REQUEST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/db.h"

#include "event/cancel_event.h"

/* A cancel_request row as the pipeline needs it. Strings owned; free with
 * request_row_clear(). */
struct request_row {
    char *request_id;
    char *gateway;
    char *payment_key;
    int64_t amount;
    char *currency;
    bool partial;
    char *reason;
    char *correlation_id;
    char *status;
    int attempts;
    int budget_base;
    int max_attempts;
    int64_t next_attempt_at_ms; /* 0 when NULL */
    int64_t deadline_at_ms;
    int64_t key_expires_at_ms; /* 0 when NULL */
    int64_t created_at_ms;
    char *lease_owner;
    char *last_error_code;
    char *last_error_message;
    int last_http_status;        /* 0 when NULL */
    unsigned char *source_event; /* the original CancelFailed bytes */
    size_t source_event_len;
    char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    int64_t source_timestamp_ms;
    int key_generation;   /* 1: the key is the requestId; n: "requestId.n" */
    bool key_holds_error; /* the key holds a stored error: inquire before reusing it */
    bool inquire_first;   /* the next attempt starts with an inquiry */
    char *final_check;    /* NULL, or EXHAUSTED/FAILED: only an inquiry is left */
    int same_amount_done; /* request_store_same_amount() */
    int same_amount_open;
};

void request_row_clear(struct request_row *row);

/* Where a CancelFailed came from, kept for the dead letter of a final failure. */
struct request_source {
    const char *event_id;
    const void *bytes;
    size_t len;
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;  /* Kafka message timestamp, 0 if none */
    int64_t event_time_ms; /* the CloudEvents time, 0 if none */
    const char *correlation_id;
};

/* A new request for request_store_insert_many() (borrowed), and whether it
 * was inserted. */
struct request_new {
    const struct cancel_failed *cf;
    const struct request_source *src;
    int max_attempts;
    int64_t first_attempt_ms; /* attempt 1 is due then (status SCHEDULED) */
    int64_t deadline_ms;
    int64_t key_ttl_ms; /* the gateway's idempotency-key lifetime */
    bool inserted;      /* out: false when the requestId existed: nothing changed */
};

/* Insert the new requests reqs[0..n) in one statement (a batch of one is
 * fine). The idempotency key's lifetime is counted from the earliest of the
 * event's time, the Kafka timestamp and now, since the upstream service may
 * already have used the key. A requestId that exists already, or that an
 * earlier entry of reqs has, is not inserted (inserted false), exactly as if
 * they were inserted one by one in order.
 * Rows are inserted in requestId order, so that two batches that share
 * requestIds wait for each other instead of deadlocking. All or nothing: a
 * row the database refuses fails the whole statement. */
bool request_store_insert_many(struct db *db, struct request_new *reqs, size_t n, char *err,
                               size_t errlen) __attribute__((warn_unused_result));

/* Read one request; *found false if there is none. lock: SELECT ... FOR UPDATE. */
bool request_store_get(struct db *db, const char *request_id, bool lock, struct request_row *row,
                       bool *found, char *err, size_t errlen) __attribute__((warn_unused_result));

/* request_store_get() without lock of ids[0..n) in one statement: rows[i]
 * is ids[i]'s request when found[i] (clear each with request_row_clear()).
 * ids may repeat. */
bool request_store_get_many(struct db *db, const char *const *ids, size_t n,
                            struct request_row *rows, bool *found, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Claim attempt number `attempt`: SCHEDULED -> IN_FLIGHT with a lease for
 * worker, only if attempt is the next one, the request is due (with
 * skew_ms tolerance), its deadline has not passed and its idempotency key
 * outlives the lease. Appends the STARTED fact and fills same_amount_done
 * and _open (request_store_same_amount()). *claimed false = the event is
 * stale, early, a duplicate, or the request is final: do nothing. */
bool request_store_claim(struct db *db, const char *request_id, int attempt, const char *worker,
                         int64_t lease_ms, int64_t skew_ms, struct request_row *row, bool *claimed,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

/* What the gateway said about one attempt, as recorded in the attempt log. */
struct attempt_answer {
    const char *verdict; /* gateway_verdict_name(), or INQUIRY when no refund call was made */
    int http_status;     /* 0 = no answer */
    const char *error_code;
    const char *error_message;
    int64_t latency_ms;
    bool replayed;
    const char *idempotency_key; /* the key the refund call carried, NULL without a call */
    const char *inquiry;         /* gateway_finding_name() of the deciding inquiry, or NULL */
    const char *inquiry_detail;
};

/* The request's state after an attempt (attempt.h decides it). */
struct attempt_next {
    const char *status;   /* SCHEDULED, PENDING or a final status */
    const char *decision; /* attempt log decision */
    const char *detail;   /* attempt log detail */
    int64_t next_attempt_ms;
    bool spend; /* false: budget_base moves up, the attempt is not counted */
    int key_generation;
    int64_t key_ttl_ms; /* the gateway's key lifetime, for a new generation */
    bool key_holds_error;
    bool inquire_first;
    const char *final_check;
    bool found_by_inquiry;
};

/* Close the attempt row->attempts held by worker: append the ANSWERED fact
 * and apply next. *applied false = the lease was lost (the reconciler took it
 * over); the fact is still appended, marked as not applied, and the state is
 * left to whoever holds the request now. */
bool request_store_finish(struct db *db, const struct request_row *row, const char *worker,
                          const struct attempt_answer *answer, const struct attempt_next *next,
                          bool *applied, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The reconciler, after it took over the lease of the request's last
 * attempt (status SCHEDULED, attempts made = attempts): schedule an
 * inquiry-only final check at next_attempt_ms that ends in final_status when
 * it proves no refund. Spends no budget. *moved false when the request is not
 * in that state any more. */
bool request_store_final_check(struct db *db, const char *request_id, int attempts,
                               int64_t next_attempt_ms, const char *final_status, bool *moved,
                               char *err, size_t errlen) __attribute__((warn_unused_result));

/* Move a SCHEDULED request whose next attempt is `attempt` to a later time
 * without spending an attempt (breaker open, rate limit). *moved false when
 * the request is not in that state any more. */
bool request_store_postpone(struct db *db, const char *request_id, int attempt,
                            int64_t next_attempt_ms, bool *moved, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Finish a SCHEDULED request without a gateway call (deadline passed, key
 * about to expire, operator resolve): new_status is final. */
bool request_store_finalize_scheduled(struct db *db, const char *request_id, int attempt,
                                      const char *new_status, const char *error_code,
                                      const char *error_message, bool *done, char *err,
                                      size_t errlen) __attribute__((warn_unused_result));

/* Reconciler: take over one IN_FLIGHT request whose lease expired, locking it
 * (SKIP LOCKED). Appends the ABANDONED fact for its current attempt and
 * clears the lease, leaving status SCHEDULED at now; the caller then decides
 * (retry or exhausted) like after a retryable answer. row->lease_owner is the
 * owner whose lease expired (NULL if unknown). *found false when there is
 * none. */
bool request_store_take_expired_lease(struct db *db, struct request_row *row, bool *found,
                                      char *err, size_t errlen) __attribute__((warn_unused_result));

/* Reconciler: request_ids (up to limit) that have been SCHEDULED and due for
 * more than the grace with no RetryScheduled row pending or recently published
 * in the outbox. The grace is grace_ms, stretched while attempts are being
 * started to twice the time the due backlog takes at their pace, up to
 * grace_cap_ms. Malloc'd array of malloc'd strings. */
bool request_store_due_without_trigger(struct db *db, int64_t grace_ms, int64_t grace_cap_ms,
                                       int limit, char ***ids_out, size_t *n_out, char *err,
                                       size_t errlen) __attribute__((warn_unused_result));

void request_store_free_ids(char **ids, size_t n);

/* Fill row->same_amount_done / _open: other requests of the same payment and
 * amount that ended SUCCEEDED / may still make a cancel (see struct
 * refund_request). */
bool request_store_same_amount(struct db *db, struct request_row *row, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
