/*
 * retry_steps: see retry_steps.h.
 */
#include "retry_steps.h"

#include <stdio.h>
#include <string.h>

#include "attempt.h"
#include "log.h"
#include "request_events.h"
#include "timeutil.h"

/* A RetryScheduled may arrive a little before next_attempt_at when clocks of
 * the relay's and the db's hosts differ. */
#define CLAIM_SKEW_MS 2000

/* Why did the claim not match? Decide from the row (locked). */
static bool explain_miss(struct db *db, const struct config *cfg, const char *request_id,
                         int attempt, enum claim_result *result, char *why, size_t whylen,
                         char *err, size_t errlen)
{
    struct request_row row;
    bool found = false;
    int64_t now = timeutil_now_ms();

    *result = CLAIM_SKIPPED;
    if (!request_store_get(db, request_id, true, &row, &found, err, errlen))
        return false;
    if (!found) {
        snprintf(why, whylen, "no such request");
        return true;
    }
    bool ok = true;
    if (strcmp(row.status, REQUEST_SCHEDULED) != 0) {
        snprintf(why, whylen, "request is %s", row.status);
    } else if (row.attempts + 1 != attempt) {
        snprintf(why, whylen, "stale event: attempt %d, the request waits for attempt %d", attempt,
                 row.attempts + 1);
    } else if (row.next_attempt_at_ms > now + CLAIM_SKEW_MS) {
        snprintf(why, whylen, "early event: attempt %d is due later (postponed)", attempt);
    } else {
        /* Due, next attempt, but the claim refused it: the deadline passed or
         * the idempotency key would not outlive the attempt. Calling the
         * gateway now could refund twice; end it for a human to look at. */
        const char *code = now >= row.deadline_at_ms ? "DEADLINE_PASSED" : "KEY_EXPIRING";
        const char *message = now >= row.deadline_at_ms
                                  ? "the retry deadline passed before the attempt could start"
                                  : "the gateway idempotency key would expire during the attempt";
        struct cancel_last_error last = {code, message, 0};
        bool done = false;
        ok = request_store_finalize_scheduled(db, request_id, attempt, CANCEL_STATUS_EXHAUSTED,
                                              code, message, &done, err, errlen);
        if (ok && done) {
            ok = request_events_final(db, cfg, &row, CANCEL_STATUS_EXHAUSTED, row.attempts, &last,
                                      DLQ_REASON_EXHAUSTED, message, RETRY_CONSUMER_NAME, err,
                                      errlen);
            *result = CLAIM_FINISHED;
            snprintf(why, whylen, "%s", message);
        }
    }
    request_row_clear(&row);
    return ok;
}

bool retry_steps_claim(struct db *db, const struct config *cfg, const char *worker,
                       const char *request_id, int attempt, struct request_row *row,
                       enum claim_result *result, char *why, size_t whylen, char *err,
                       size_t errlen)
{
    bool claimed = false;

    why[0] = '\0';
    if (!db_begin(db, err, errlen))
        return false;
    if (!request_store_claim(db, request_id, attempt, worker, cfg->consumers.retry.lease_ms,
                             CLAIM_SKEW_MS, row, &claimed, err, errlen))
        goto fail;
    if (claimed) {
        *result = CLAIM_TAKEN;
    } else if (!explain_miss(db, cfg, request_id, attempt, result, why, whylen, err, errlen)) {
        goto fail;
    }
    if (!db_commit(db, err, errlen)) {
        if (claimed)
            request_row_clear(row);
        goto fail;
    }
    return true;
fail:
    db_rollback(db);
    return false;
}

bool retry_steps_postpone(struct db *db, const struct config *cfg, const struct retry_scheduled *rs,
                          const char *correlation_id, int64_t retry_at_ms, bool *moved, char *err,
                          size_t errlen)
{
    struct cancel_request_fields req = {rs->request_id, rs->gateway, rs->payment_key,
                                        rs->currency,   rs->amount,  rs->partial};

    if (!db_begin(db, err, errlen))
        return false;
    if (!request_store_postpone(db, rs->request_id, rs->attempt, retry_at_ms, moved, err, errlen) ||
        (*moved && !request_events_retry(db, cfg, &req, correlation_id, rs->attempt, retry_at_ms,
                                         err, errlen)) ||
        !db_commit(db, err, errlen)) {
        db_rollback(db);
        return false;
    }
    return true;
}

bool retry_steps_record(struct db *db, const struct config *cfg, const char *worker,
                        const struct request_row *row, const struct gateway_answer *answer,
                        uint64_t random, const char **status_out, char *err, size_t errlen)
{
    struct attempt_facts f = {
        .verdict = answer->verdict,
        .retry_after_ms = answer->retry_after_ms,
        .attempt = row->attempts,
        .budget_base = row->budget_base,
        .max_attempts = row->max_attempts,
        .now_ms = timeutil_now_ms(),
        .deadline_ms = row->deadline_at_ms,
        .key_expires_ms = row->key_expires_at_ms,
        .lease_ms = cfg->consumers.retry.lease_ms,
        .policy = config_retry_policy_for(cfg, row->gateway),
        .random = random,
    };
    struct attempt_decision d;
    attempt_decide(&f, &d);

    bool success =
        answer->verdict == GATEWAY_SUCCEEDED || answer->verdict == GATEWAY_ALREADY_REFUNDED;
    struct attempt_answer a = {
        .verdict = gateway_verdict_name(answer->verdict),
        .http_status = (int)answer->http_status,
        .error_code = success || answer->code[0] == '\0' ? NULL : answer->code,
        .error_message = success || answer->message[0] == '\0' ? NULL : answer->message,
        .latency_ms = answer->latency_ms,
        .replayed = answer->replayed,
    };
    bool applied = false;

    if (!db_begin(db, err, errlen))
        return false;
    if (!request_store_finish(db, row->request_id, row->attempts, worker, row->gateway, &a,
                              d.decision, d.status, d.next_attempt_ms, &applied, err, errlen)) {
        if (db_last_error_class(db) == DB_ERR_DUPLICATE) {
            /* The ANSWERED fact of this attempt exists: an earlier try of this
             * very step committed but its acknowledgement was lost. Done. */
            db_rollback(db);
            if (status_out != NULL)
                *status_out = NULL;
            return true;
        }
        goto fail;
    }
    if (applied && d.final) {
        struct cancel_last_error last = {a.error_code, a.error_message, a.http_status};
        if (!request_events_final(db, cfg, row, d.status, row->attempts,
                                  a.error_code != NULL ? &last : NULL, d.dlq_reason,
                                  a.error_message != NULL ? a.error_message : d.why,
                                  RETRY_CONSUMER_NAME, err, errlen))
            goto fail;
    } else if (applied) {
        struct cancel_request_fields req;
        request_events_fields(row, &req);
        if (!request_events_retry(db, cfg, &req, row->correlation_id, row->attempts + 1,
                                  d.next_attempt_ms, err, errlen))
            goto fail;
    }
    if (!db_commit(db, err, errlen))
        goto fail;

    struct log_ctx ctx = LOG_CTX_INIT;
    ctx.request_id = row->request_id;
    ctx.correlation_id = row->correlation_id;
    if (!applied)
        log_emit(LOG_WARN, &ctx,
                 "attempt %d answered %s after its lease was taken over; answer recorded, "
                 "decision not applied",
                 row->attempts, a.verdict);
    else
        log_emit(d.final && !success ? LOG_WARN : LOG_INFO, &ctx,
                 "attempt %d: gateway %s answered %s (http %d%s%s) -> %s", row->attempts,
                 row->gateway, a.verdict, a.http_status, a.error_code ? ", " : "",
                 a.error_code ? a.error_code : "", d.decision);
    if (status_out != NULL)
        *status_out = applied ? d.status : NULL;
    return true;
fail:
    db_rollback(db);
    return false;
}

bool retry_steps_dead_letter(struct db *db, const struct config *cfg, const void *bytes, size_t len,
                             const char *key, const struct dlq_meta *meta, char *err, size_t errlen)
{
    if (!db_begin(db, err, errlen))
        return false;
    if (!request_events_dead_letter(db, cfg, bytes, len, key, meta, err, errlen) ||
        !db_commit(db, err, errlen)) {
        db_rollback(db);
        return false;
    }
    return true;
}
