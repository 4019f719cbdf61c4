/*
 * reconcile_store: the SQL of reconciliation against the gateway
 * (reconcile_run, reconcile_mismatch, and the fenced correction of a
 * request's status). Like request_store, each function runs on a connection
 * the caller owns, inside the caller's transaction where there is one; none
 * commits.
 *
 * Times are epoch milliseconds.
 */
#ifndef CR_RECONCILE_STORE_H
#define CR_RECONCILE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/db.h"

/* reconcile_run.trigger values. */
#define RECONCILE_TRIGGER_CLI       "cli"
#define RECONCILE_TRIGGER_SCHEDULED "scheduled"

/* operator_action.action of a --fix. */
#define RECONCILE_ACTION "RECONCILE"

/* A request a pass checks: what the inquiry needs and what it is compared
 * with. */
struct reconcile_candidate {
    char request_id[256];
    char gateway[40];
    char payment_key[256];
    int64_t amount;
    char currency[8];
    bool partial;
    char status[24];
};

/* What one pass saw, written to its reconcile_run row. */
struct reconcile_counts {
    int checked;        /* inquiries answered and compared */
    int agree;          /* both sides agree */
    int settling;       /* the gateway's refund is pending */
    int unchecked;      /* no usable answer, or the request changed meanwhile */
    int mismatches;     /* mismatches found, new or still open */
    int new_mismatches; /* recorded (and alerted) for the first time by this pass */
    int fixed;          /* corrected by --fix */
};

/* Insert a reconcile_run row for a pass starting now over the requests that
 * finished within window_ms before now (gateway, request_id: NULL = any).
 * Returns its id and the window's start as the database computed it. */
bool reconcile_store_run_begin(struct db *db, const char *trigger, const char *run_by,
                               int64_t window_ms, const char *gateway, const char *request_id,
                               bool fix, int64_t *run_id, int64_t *window_start_ms, char *err,
                               size_t errlen) __attribute__((warn_unused_result));

/* Close run run_id with its counts; error (may be NULL) says why it stopped
 * early. */
bool reconcile_store_run_finish(struct db *db, int64_t run_id, const struct reconcile_counts *c,
                                const char *error, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Milliseconds until the next scheduled pass is due: interval_ms after the
 * start of the last scheduled one, 0 when due or when there never was one. */
bool reconcile_store_scheduled_due_in(struct db *db, int64_t interval_ms, int64_t *due_in_ms,
                                      char *err, size_t errlen) __attribute__((warn_unused_result));

/* Mismatches still open (neither fixed, agreed again nor resolved). */
bool reconcile_store_open_count(struct db *db, int64_t *open, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Up to limit requests in a final status that reconciliation checks, finished
 * at or after window_start_ms (not applied when request_id is given), of
 * gateway (NULL = any) or exactly request_id (NULL = any), with a requestId
 * greater than after (keyset paging, "" for the first page), in requestId
 * order. *out is malloc'd (free()), *n its length. */
bool reconcile_store_candidates(struct db *db, int64_t window_start_ms, const char *gateway,
                                const char *request_id, const char *after, int limit,
                                struct reconcile_candidate **out, size_t *n, char *err,
                                size_t errlen) __attribute__((warn_unused_result));

/* A mismatch to record. Strings borrowed. */
struct reconcile_mismatch_rec {
    const char *request_id;
    const char *gateway;
    const char *kind; /* reconcile_kind_name() */
    const char *our_status;
    const char *their_finding; /* gateway_finding_name() */
    int64_t amount;
    const char *currency;
    int64_t their_payment_amount;  /* -1 unknown */
    int64_t their_refunded_amount; /* -1 unknown */
    const char *their_currency;    /* "" or NULL unknown */
    const char *detail;
    int64_t run_id;
};

/* Record m: a new open row (*inserted true), or, when the same request
 * already has an open mismatch of that kind, its last_seen_at and detail
 * moved on (*inserted false). *id is the open row's id. */
bool reconcile_store_open_mismatch(struct db *db, const struct reconcile_mismatch_rec *m,
                                   bool *inserted, int64_t *id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Close the open mismatch id: fixed now by `by`, with note. */
bool reconcile_store_close_mismatch(struct db *db, int64_t id, const char *by, const char *note,
                                    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Close the open mismatches of request_id while its status is still
 * our_status (a pass found both sides agree again). *closed: how many. */
bool reconcile_store_close_agreed(struct db *db, const char *request_id, const char *our_status,
                                  const char *by, const char *note, int *closed, char *err,
                                  size_t errlen) __attribute__((warn_unused_result));

/* Close the open mismatches of requests that were resolved by hand since
 * (MANUALLY_RESOLVED): the person who resolved them decided. */
bool reconcile_store_close_resolved(struct db *db, int *closed, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* --fix: move request_id from status seen (the fence: nothing changes if it
 * moved meanwhile, *applied false) to new_status, finished now. error_code
 * (NULL: keep the last error) and error_message become its last error;
 * key_holds_error as given; found_by_inquiry for a success the gateway's
 * record proved. */
bool reconcile_store_fix_request(struct db *db, const char *request_id, const char *seen,
                                 const char *new_status, const char *error_code,
                                 const char *error_message, bool key_holds_error,
                                 bool found_by_inquiry, bool *applied, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Append the operator_action audit row of a --fix. */
bool reconcile_store_action(struct db *db, const char *request_id, const char *operator_name,
                            const char *note, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
