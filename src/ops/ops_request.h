/*
 * ops_request: what an operator may do to one request, and the transactions
 * that do it (cancelctl requeue, resolve, and the re-arm half of dlq replay).
 *
 * The decisions are pure functions (ops_rearm_decide, ops_resolve_check,
 * ops_next_step_words) so that they are unit-tested without a database; the
 * ops_* functions that take a struct db run them on the row they locked and
 * write the state change, its event (through the outbox) and the audit row in
 * one transaction, so a crash can never leave half of an operator's action.
 *
 * The safety rule behind every re-arm: the gateway remembers a request's
 * idempotency key (its requestId) only for a limited time. A retry after the
 * key expired is a NEW refund at the gateway, so a re-arm is refused when the
 * key's lifetime has passed, or would pass before a new attempt (a whole
 * lease long) can finish.
 *
 * Times are epoch milliseconds.
 */
#ifndef CR_OPS_REQUEST_H
#define CR_OPS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/db.h"
#include "store/request_store.h"

/* A re-arm needs at least this long between now and the last safe start of
 * an attempt: the relay and a retry-consumer need a moment to pick it up, and
 * a re-arm that can only end in "the key is expiring" helps nobody. */
#define OPS_REARM_MIN_WINDOW_MS (60LL * 1000)

/* Longest operator name kept in audit rows. */
#define OPS_OPERATOR_MAX 128

/* operator_action.action values. */
#define OPS_ACTION_REQUEUE "REQUEUE"
#define OPS_ACTION_RESOLVE "RESOLVE"
#define OPS_ACTION_REPLAY  "REPLAY"

enum ops_rearm_mode {
    OPS_REARM_REPLAY,  /* dlq replay: only a request in a final failed state */
    OPS_REARM_REQUEUE, /* requeue: also a SCHEDULED one (run it now, fresh budget) */
};

/* What the re-arm decision looks at. Strings borrowed. */
struct ops_rearm_input {
    enum ops_rearm_mode mode;
    const char *request_id;
    const char *status;
    int attempts;
    const char *lease_owner; /* may be NULL */
    int64_t now_ms;
    int64_t key_expires_ms;  /* the key's end of life at the gateway; 0 = unknown */
    int64_t lease_ms;        /* how long one attempt may take */
    int policy_max_attempts; /* the gateway's current retry policy */
    int64_t policy_deadline_ms;
};

struct ops_rearm_plan {
    bool ok;
    int budget_base;         /* = attempts: earlier attempts no longer count */
    int max_attempts;        /* from the current policy */
    int attempt;             /* the attempt the new RetryScheduled triggers */
    int64_t next_attempt_ms; /* now */
    int64_t deadline_ms;     /* now + policy deadline, capped by the key */
    bool deadline_capped;    /* the key's lifetime cut the deadline short */
    char why[512];           /* what will happen (ok) or why it is refused */
};

/* Decide whether and how to re-arm a request. Pure. */
void ops_rearm_decide(const struct ops_rearm_input *in, struct ops_rearm_plan *out);

/* Whether a request in status (lease_owner may be NULL) may be resolved by
 * hand. On false, why says why. Pure. */
bool ops_resolve_check(const char *request_id, const char *status, const char *lease_owner,
                       char *why, size_t whylen);

/* One or two sentences on what will happen next to row, for `cancelctl show`.
 * Pure. */
void ops_next_step_words(const struct request_row *row, int64_t now_ms, int64_t lease_ms, char *buf,
                         size_t len);

/* The operator recorded in audit rows: flag (--operator), else env_operator
 * ($CANCELCTL_OPERATOR), else "user@host" from env_user ($USER) and host,
 * else "unknown". Any may be NULL or "". Control characters become spaces;
 * cut to OPS_OPERATOR_MAX bytes. */
void ops_operator_identity(const char *flag, const char *env_operator, const char *env_user,
                           const char *host, char *buf, size_t len);

/* ops_operator_identity with $CANCELCTL_OPERATOR, $USER and this host's
 * name. */
void ops_operator_current(const char *flag, char *buf, size_t len);

/* Format a span of milliseconds for humans: "3d 4h", "2h 5m", "4m 10s", "12s",
 * "850ms"; negative spans are written as positive. */
void ops_format_span(int64_t ms, char *buf, size_t len);

/* ---- transactions ---- */

enum ops_result {
    OPS_APPLIED,   /* done (or, in a dry run, would be done) */
    OPS_REFUSED,   /* not allowed; message says why */
    OPS_NOT_FOUND, /* no such request */
};

const char *ops_result_name(enum ops_result r);

struct ops_report {
    enum ops_result result;
    char status_before[24];
    char status_after[24];
    struct ops_rearm_plan plan; /* requeue */
    char message[640];          /* what was (would be) done, or why not */
};

/* In the caller's transaction, on row (read FOR UPDATE): move the request to
 * SCHEDULED with plan's budget and deadline, outbox RetryScheduled(plan
 * attempt) due now, and append an operator_action row (action, operator,
 * note). *applied false (nothing written) when the row changed since it was
 * read (the status/attempts fence). */
bool ops_rearm_apply(struct db *db, const struct config *cfg, const struct request_row *row,
                     const struct ops_rearm_plan *plan, const char *action,
                     const char *operator_name, const char *note, bool *applied, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/* The plan for re-arming row now under cfg (policy of its gateway, lease). */
void ops_rearm_plan_for(const struct config *cfg, const struct request_row *row,
                        enum ops_rearm_mode mode, int64_t now_ms, struct ops_rearm_plan *out);

/* cancelctl requeue: one transaction (none with dry_run, which only reads).
 * Returns false only on a database error (err set, nothing changed). */
bool ops_requeue(struct db *db, const struct config *cfg, const char *request_id,
                 const char *operator_name, const char *note, bool dry_run, struct ops_report *out,
                 char *err, size_t errlen) __attribute__((warn_unused_result));

/* cancelctl resolve: mark the request MANUALLY_RESOLVED, outbox its Outcome
 * (no dead letter), audit with note. Same contract as ops_requeue. */
bool ops_resolve(struct db *db, const struct config *cfg, const char *request_id,
                 const char *operator_name, const char *note, bool dry_run, struct ops_report *out,
                 char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
