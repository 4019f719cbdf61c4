/*
 * reconciler: the pass that makes the pipeline converge without a human.
 * Run by the active outbox-relay every relay.reconcile_interval.
 *
 * 1. An IN_FLIGHT request whose lease expired lost its worker mid-attempt:
 *    the attempt is recorded ABANDONED and counts as spent (the gateway may
 *    have refunded), and the request is scheduled again with the same
 *    idempotency key, or EXHAUSTED when its budget or deadline is gone.
 * 2. A SCHEDULED request that has been due for a while with no RetryScheduled
 *    pending or recently published in the outbox lost its trigger (an event
 *    dropped, a topic truncated): a new RetryScheduled is written.
 * Each request is handled in its own short transaction.
 */
#ifndef CR_RECONCILER_H
#define CR_RECONCILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/db.h"

struct reconciler_stats {
    int leases_recovered; /* expired leases re-scheduled */
    int leases_exhausted; /* expired leases that ended the request */
    int triggers_rewritten;
};

/* How long a due request may wait for its trigger before the reconciler
 * writes a new one: generous, so consumer lag is not mistaken for a loss. */
int64_t reconciler_grace_ms(const struct config *cfg);

/* One pass. Returns false (err set) on a db error; what was done before the
 * error is committed and counted in *stats. */
bool reconciler_run_once(struct db *db, const struct config *cfg, const char *worker,
                         struct reconciler_stats *stats, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
