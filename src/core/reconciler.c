/*
 * reconciler: see reconciler.h.
 */
#include "core/reconciler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/rng.h"
#include "core/attempt.h"
#include "core/retry_steps.h"
#include "store/request_events.h"
#include "store/request_store.h"

/* Requests handled per pass and kind: bounds one pass's duration. */
#define RECONCILE_BATCH 200

int64_t reconciler_grace_ms(const struct config *cfg)
{
    int64_t grace = 4 * cfg->relay.reconcile_interval_ms;
    return grace < 60000 ? 60000 : grace;
}

/* Decide and record the follow-up of an abandoned attempt (row is SCHEDULED
 * at now after the takeover). */
static bool follow_up_abandoned(struct db *db, const struct config *cfg,
                                const struct request_row *row, const char *worker,
                                struct reconciler_stats *stats, char *err, size_t errlen)
{
    struct attempt_facts f;
    retry_steps_facts(cfg, row, NULL, rng_u64(), &f);
    struct attempt_decision d;
    bool done = false;

    attempt_decide(&f, &d);
    if (!d.final) {
        struct cancel_request_fields req;
        request_events_fields(row, &req);
        if (!request_store_postpone(db, row->request_id, row->attempts + 1, d.next_attempt_ms,
                                    &done, err, errlen) ||
            !request_events_retry(db, cfg, &req, row->correlation_id, row->attempts + 1,
                                  d.next_attempt_ms, err, errlen))
            return false;
        stats->leases_recovered++;
        return true;
    }
    if (d.inquire_now) {
        /* The vanished worker's call may have refunded: no EXHAUSTED without
         * asking the gateway. A final check (an inquiry, no budget) decides. */
        if (!request_store_final_check(db, row->request_id, row->attempts, f.now_ms, d.status,
                                       &done, err, errlen))
            return false;
        if (done) {
            struct cancel_request_fields req;
            request_events_fields(row, &req);
            if (!request_events_retry(db, cfg, &req, row->correlation_id, row->attempts + 1,
                                      f.now_ms, err, errlen))
                return false;
        }
        stats->leases_recovered++;
        return true;
    }
    static const char why[] = "the worker vanished mid-attempt and no attempt is left";
    struct cancel_last_error last = {"WORKER_VANISHED", why, 0};
    if (!request_store_finalize_scheduled(db, row->request_id, row->attempts + 1, d.status,
                                          last.code, why, &done, err, errlen) ||
        !request_events_final(db, cfg, row, d.status, row->attempts, &last, d.dlq_reason, why,
                              worker, err, errlen))
        return false;
    stats->leases_exhausted++;
    return true;
}

static bool recover_expired_leases(struct db *db, const struct config *cfg, const char *worker,
                                   struct reconciler_stats *stats, char *err, size_t errlen)
{
    for (int i = 0; i < RECONCILE_BATCH; i++) {
        struct request_row row;
        bool found = false;

        if (!db_begin(db, err, errlen))
            return false;
        if (!request_store_take_expired_lease(db, &row, &found, err, errlen)) {
            db_rollback(db);
            return false;
        }
        if (!found) {
            db_rollback(db);
            return true;
        }
        bool ok = follow_up_abandoned(db, cfg, &row, worker, stats, err, errlen) &&
                  db_commit(db, err, errlen);
        if (!ok)
            db_rollback(db);
        else {
            struct log_ctx ctx = LOG_CTX_INIT;
            ctx.request_id = row.request_id;
            ctx.correlation_id = row.correlation_id;
            log_emit(LOG_WARN, &ctx, "attempt %d abandoned: lease of %s expired", row.attempts,
                     row.lease_owner != NULL ? row.lease_owner : "a vanished worker");
        }
        request_row_clear(&row);
        if (!ok)
            return false;
    }
    return true;
}

static bool rewrite_lost_triggers(struct db *db, const struct config *cfg,
                                  struct reconciler_stats *stats, char *err, size_t errlen)
{
    char **ids = NULL;
    size_t n = 0;
    bool ok = true;

    /* Behind a backlog the grace stretches to its drain time, at most ten
     * graces (10 min with the defaults): a trigger truly lost while the
     * consumers are busy with others waits that long, never forever. */
    int64_t grace = reconciler_grace_ms(cfg);
    if (!request_store_due_without_trigger(db, grace, 10 * grace, RECONCILE_BATCH, &ids, &n, err,
                                           errlen))
        return false;
    for (size_t i = 0; i < n && ok; i++) {
        struct request_row row;
        bool found = false;

        if (!db_begin(db, err, errlen)) {
            ok = false;
            break;
        }
        ok = request_store_get(db, ids[i], true, &row, &found, err, errlen);
        if (ok && found && strcmp(row.status, REQUEST_SCHEDULED) == 0) {
            struct cancel_request_fields req;
            int64_t now = wall_ms();
            request_events_fields(&row, &req);
            ok = request_events_retry(db, cfg, &req, row.correlation_id, row.attempts + 1,
                                      row.next_attempt_at_ms > now ? row.next_attempt_at_ms : now,
                                      err, errlen);
            if (ok) {
                struct log_ctx ctx = LOG_CTX_INIT;
                ctx.request_id = row.request_id;
                log_emit(LOG_WARN, &ctx,
                         "request was due with no pending trigger; attempt %d "
                         "re-scheduled",
                         row.attempts + 1);
                stats->triggers_rewritten++;
            }
        }
        if (found)
            request_row_clear(&row);
        if (ok)
            ok = db_commit(db, err, errlen);
        if (!ok)
            db_rollback(db);
    }
    request_store_free_ids(ids, n);
    return ok;
}

bool reconciler_run_once(struct db *db, const struct config *cfg, const char *worker,
                         struct reconciler_stats *stats, char *err, size_t errlen)
{
    return recover_expired_leases(db, cfg, worker, stats, err, errlen) &&
           rewrite_lost_triggers(db, cfg, stats, err, errlen);
}
