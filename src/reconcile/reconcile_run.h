/*
 * reconcile_run: one reconciliation pass against the gateways. It reads the
 * requests that finished in a window (reconcile_store.h), asks each one's
 * gateway what it did about it (gateway_inquire_refund_start(): an inquiry,
 * never a refund), compares (reconcile.h) and records what it found:
 *
 * - a mismatch gets a reconcile_mismatch row and, the first time only, a
 *   RECONCILE_MISMATCH dead letter (the request's original CancelFailed, so
 *   the alert-consumer posts it to Slack once), in one transaction with the
 *   request row locked and its status re-checked;
 * - with fix, our record is corrected in that same transaction (fenced by the
 *   status the comparison saw), announced by an Outcome event and audited in
 *   operator_action; AMOUNT_DIFFERS is never corrected automatically;
 * - open mismatches of a request that agrees again, or that was resolved by
 *   hand, are closed.
 *
 * Inquiries are rate-limited per gateway and run concurrently through one
 * http_client. The pass is a step function, so that it can run to the end
 * in cancelctl (reconcile_pass_step with a wait) or a few inquiries per turn
 * on the outbox-relay's housekeeping thread (a short wait per turn), whose
 * publishing thread never waits for it.
 * No transaction is ever open across an inquiry.
 */
#ifndef CR_RECONCILE_RUN_H
#define CR_RECONCILE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "reconcile/reconcile.h"
#include "store/db.h"
#include "store/reconcile_store.h"

struct reconcile_options {
    const char *trigger;    /* RECONCILE_TRIGGER_CLI or _SCHEDULED */
    const char *run_by;     /* the operator, or the relay's worker id (audit) */
    const char *consumer;   /* dlq.consumer of the mismatch dead letters */
    int64_t window_ms;      /* requests finished this long ago or less, > 0 */
    const char *gateway;    /* only this gateway's requests; NULL = all */
    const char *request_id; /* only this request (whenever it finished); NULL = all */
    double rate_per_second; /* inquiries a second per gateway, > 0 */
    bool fix;               /* correct our records (an operator's decision) */
    const char *note;       /* appended to the audit note of each fix; may be NULL */
    bool keep_items;        /* keep what was not AGREE for reconcile_pass_items() */
};

/* What became of a mismatch under --fix. */
enum reconcile_fix_result {
    RECONCILE_FIX_NOT_ASKED = 0, /* no --fix */
    RECONCILE_FIX_DONE,          /* our record corrected */
    RECONCILE_FIX_NONE,          /* this kind is never corrected automatically */
};

/* One request the pass did not find in agreement (kept with keep_items). */
struct reconcile_item {
    char request_id[256];
    char gateway[40];
    char our_status[24];
    int64_t amount;
    char currency[8];
    enum refund_finding finding;
    int64_t their_payment_amount;  /* -1 unknown */
    int64_t their_refunded_amount; /* -1 unknown */
    char their_currency[8];
    char inquiry_detail[256]; /* how the inquiry reached its finding */
    struct reconcile_result result;
    char detail[512]; /* mismatch: reconcile_describe(); else why it is not compared */
    bool changed;     /* the request changed while it was checked: nothing recorded */
    bool new_mismatch;
    enum reconcile_fix_result fix;
    char fixed_status[24]; /* RECONCILE_FIX_DONE: the status it has now */
};

struct reconcile_pass;

/* A pass for cfg (borrowed; outlives the pass) with opt (copied). One
 * gateway client per configured gateway. NULL with err on failure. */
struct reconcile_pass *reconcile_pass_new(const struct config *cfg,
                                          const struct reconcile_options *opt, char *err,
                                          size_t errlen) __attribute__((warn_unused_result));

/* Abort whatever is in flight and free. NULL is a no-op. The run row of a
 * pass freed before reconcile_pass_end() stays open (finished_at NULL). */
void reconcile_pass_free(struct reconcile_pass *p);

/* Record the run and close the mismatches of requests resolved by hand. */
bool reconcile_pass_begin(struct reconcile_pass *p, struct db *db, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Move the pass on: record what the inquiries answered (short
 * transactions), read more requests, start as many inquiries as the rate
 * limits allow, and drive the HTTP calls for up to wait_ms (0: do not wait).
 * Returns 1 while there is more to do, 0 when the pass is complete, -1 on a
 * database error (err set; what was recorded stays recorded). */
int reconcile_pass_step(struct reconcile_pass *p, struct db *db, int wait_ms, char *err,
                        size_t errlen);

/* Close the run row with the counts; error (may be NULL) says why the pass
 * stopped early. */
bool reconcile_pass_end(struct reconcile_pass *p, struct db *db, const char *error, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

const struct reconcile_counts *reconcile_pass_counts(const struct reconcile_pass *p);
int64_t reconcile_pass_run_id(const struct reconcile_pass *p);
int64_t reconcile_pass_window_start_ms(const struct reconcile_pass *p);

/* The items kept so far (keep_items), in the order they were recorded. */
const struct reconcile_item *reconcile_pass_items(const struct reconcile_pass *p, size_t *n);

#endif
