/*
 * reconcile: the comparison at the heart of reconciliation against the
 * gateway. For a request that ended (SUCCEEDED, ALREADY_REFUNDED, FAILED,
 * EXHAUSTED), our final status is held against what an inquiry found at the
 * gateway (gateway.h, enum refund_finding), and the answer says whether they
 * agree, how they disagree, and what correcting our record would mean.
 *
 * This is the third way the pipeline converges on the truth, after the
 * inquiry made during an attempt and the Kafka retries: it catches what
 * changed at the gateway after we finished (a refund made or undone in the
 * gateway's console, a Stripe refund that failed days later) and what we
 * recorded wrongly.
 *
 * Pure: no I/O. The pass that reads requests, makes the inquiries and records
 * mismatches is reconcile_run.h. (Not to be confused with reconciler.h,
 * which repairs expired leases and lost triggers inside the pipeline.)
 */
#ifndef CR_RECONCILE_H
#define CR_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/gateway.h"

/* The error code a --fix writes into a request it turns FAILED. */
#define RECONCILE_NOT_REFUNDED_CODE "RECONCILE_NOT_REFUNDED"

enum reconcile_verdict {
    RECONCILE_AGREE,     /* both sides tell the same story */
    RECONCILE_SETTLING,  /* the gateway's refund is still pending: nothing to compare yet */
    RECONCILE_UNCHECKED, /* no usable answer from the gateway: could not check */
    RECONCILE_MISMATCH,  /* they disagree; kind says how */
};

enum reconcile_kind {
    RECONCILE_KIND_NONE = 0,
    RECONCILE_OURS_REFUNDED_THEIRS_NOT,    /* we say refunded, the gateway shows no refund */
    RECONCILE_OURS_FAILED_THEIRS_REFUNDED, /* we gave up, the gateway shows the money back */
    RECONCILE_AMOUNT_DIFFERS,              /* a refund or payment that is not our money */
};

struct reconcile_result {
    enum reconcile_verdict verdict;
    enum reconcile_kind kind; /* RECONCILE_KIND_NONE unless a mismatch */
    /* What `cancelctl reconcile --fix` makes of our record: the new status,
     * NULL when the mismatch is not corrected automatically (or there is
     * none). */
    const char *fix_status;
    const char *fix_error_code; /* last_error_code the fix writes, or NULL */
    /* The fixed request's key holds a stored success that the gateway no
     * longer backs: a later replay must inquire before it reuses the key,
     * and opens a new key generation only after a negative inquiry. */
    bool fix_key_holds_error;
    const char *why; /* one line: why this verdict, or why no fix (static) */
};

/* True for the statuses a pass checks: the final ones a request reaches on
 * its own (not MANUALLY_RESOLVED: a person already decided). */
bool reconcile_status_checked(const char *status);

/* Compare our_status (a CANCEL_STATUS_*) with an inquiry's finding. A status
 * that reconcile_status_checked() refuses is UNCHECKED. */
void reconcile_compare(const char *our_status, enum refund_finding finding,
                       struct reconcile_result *out);

/* "OURS_REFUNDED_THEIRS_NOT", ... ("NONE" for RECONCILE_KIND_NONE). */
const char *reconcile_kind_name(enum reconcile_kind kind);

/* "AGREE", "SETTLING", "UNCHECKED", "MISMATCH". */
const char *reconcile_verdict_name(enum reconcile_verdict verdict);

/* The one line recorded with a mismatch and sent as its dead letter's
 * dlq.error: "OURS_REFUNDED_THEIRS_NOT: we recorded SUCCEEDED, the gateway
 * reports NOT_REFUNDED (inquiry_detail)". inquiry_detail may be NULL or "".
 * Never holds a secret: the parts are a status, a finding and an inquiry's
 * detail, which gateway.h keeps free of secrets. */
void reconcile_describe(const char *our_status, enum refund_finding finding,
                        enum reconcile_kind kind, const char *inquiry_detail, char *buf,
                        size_t len);

#endif
