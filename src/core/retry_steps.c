/*
 * retry_steps: see retry_steps.h.
 */
#include "core/retry_steps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "core/attempt.h"
#include "store/request_events.h"

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
    int64_t now = wall_ms();

    *result = CLAIM_SKIPPED;
    if (!request_store_get(db, request_id, true, &row, &found, err, errlen))
        return false;
    if (!found) {
        snprintf(why, whylen, "no such request");
        return true;
    }
    bool ok = true;
    if (strcmp(row.status, REQUEST_SCHEDULED) != 0 && strcmp(row.status, REQUEST_PENDING) != 0) {
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

bool retry_steps_claim_in_tx(struct db *db, const struct config *cfg, const char *worker,
                             const char *request_id, int attempt, struct request_row *row,
                             enum claim_result *result, char *why, size_t whylen, char *err,
                             size_t errlen)
{
    bool claimed = false;

    why[0] = '\0';
    if (!request_store_claim(db, request_id, attempt, worker, cfg->consumers.retry.lease_ms,
                             CLAIM_SKEW_MS, row, &claimed, err, errlen))
        return false;
    if (!claimed)
        return explain_miss(db, cfg, request_id, attempt, result, why, whylen, err, errlen);
    *result = CLAIM_TAKEN;
    return true;
}

bool retry_steps_claim(struct db *db, const struct config *cfg, const char *worker,
                       const char *request_id, int attempt, struct request_row *row,
                       enum claim_result *result, char *why, size_t whylen, char *err,
                       size_t errlen)
{
    if (!db_begin(db, err, errlen))
        return false;
    if (!retry_steps_claim_in_tx(db, cfg, worker, request_id, attempt, row, result, why, whylen,
                                 err, errlen)) {
        db_rollback(db);
        return false;
    }
    if (!db_commit(db, err, errlen)) {
        if (*result == CLAIM_TAKEN)
            request_row_clear(row);
        db_rollback(db);
        return false;
    }
    return true;
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

void retry_steps_facts(const struct config *cfg, const struct request_row *row,
                       const struct attempt_result *r, uint64_t random, struct attempt_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->verdict = GATEWAY_RETRYABLE;
    f->retry_after_ms = -1;
    f->finding = FINDING_NONE;
    f->final_check = row->final_check;
    f->attempt = row->attempts;
    f->budget_base = row->budget_base;
    f->max_attempts = row->max_attempts;
    f->now_ms = wall_ms();
    f->deadline_ms = row->deadline_at_ms;
    f->key_expires_ms = row->key_expires_at_ms;
    f->lease_ms = cfg->consumers.retry.lease_ms;
    f->policy = config_retry_policy_for(cfg, row->gateway);
    f->random = random;
    if (r == NULL)
        return;

    const struct gateway_answer *a = &r->answer;
    f->no_call = !r->called;
    f->verdict = a->verdict;
    f->stored = a->stored;
    f->no_refund = a->no_refund;
    /* The same error code twice in a row: the key gives back what it holds,
     * whatever the documents say about storing it. */
    f->repeated = r->called && a->answered && a->code[0] != '\0' && row->last_error_code != NULL &&
                  strcmp(row->last_error_code, a->code) == 0;
    f->retry_after_ms = r->called ? a->retry_after_ms : -1;
    /* Inquire-first (gateway_driver.h): only the inquiry stands between a
     * call we gave up on and a second cancel, and a gateway may still be
     * carrying that call out. Give it at least the time we gave it before
     * the inquiry looks. */
    const struct config_gateway *gw = config_gateway_find(cfg, row->gateway);
    if (r->called && !a->answered && gw != NULL && gateway_kind_inquires_first(gw->kind) &&
        f->retry_after_ms < gw->timeout_ms)
        f->retry_after_ms = gw->timeout_ms;
    f->finding = r->inquired ? r->inquiry.finding : FINDING_NONE;
    /* A new key generation has no lifetime at the gateway yet. */
    if (r->key_generation > row->key_generation)
        f->key_expires_ms = 0;
}

void retry_steps_decide(const struct config *cfg, const struct request_row *row,
                        const struct attempt_result *r, uint64_t random, struct attempt_decision *d)
{
    struct attempt_facts f;
    retry_steps_facts(cfg, row, r, random, &f);
    attempt_decide(&f, d);
}

bool retry_steps_may_send(const struct config *cfg, const struct request_row *row)
{
    /* The claim's rule again, after the inquiry that ran first: the call
     * must be able to finish (half a lease, which is longer than any gateway
     * timeout) before the deadline and before the key dies. */
    int64_t now = wall_ms();
    int64_t half = cfg->consumers.retry.lease_ms / 2;
    return now + half < row->deadline_at_ms &&
           (row->key_expires_at_ms == 0 || now + half < row->key_expires_at_ms);
}

bool retry_steps_may_call(const struct config *cfg, const struct request_row *row)
{
    return row->final_check == NULL && retry_steps_may_send(cfg, row);
}

static int64_t key_ttl_of(const struct config *cfg, const char *gateway)
{
    for (size_t i = 0; i < cfg->ngateways; i++)
        if (strcmp(cfg->gateways[i].name, gateway) == 0)
            return config_gateway_key_binding_ms(&cfg->gateways[i]);
    return 0;
}

/* Text a gateway wrote, as the database takes it: valid UTF-8 (a message
 * cut at a fixed size may end inside a character, which PostgreSQL refuses
 * with SQLSTATE 22021 for ever), no control characters. */
static const char *storable(const char *text, char *buf, size_t buflen)
{
    dlq_sanitize_text(text, strlen(text), buf, buflen);
    return buf;
}

/* An HTTP status the contract can carry (an Outcome's lastError.httpStatus
 * is 100-599); a gateway answering 999 is recorded in the attempt log as it
 * was, and leaves the Outcome without one. */
static int contract_http_status(long status)
{
    return status >= 100 && status <= 599 ? (int)status : 0;
}

/* The attempt log's view of an attempt: what was asked and answered, in
 * storable text (bufs holds the copies). */
struct answer_bufs {
    char code[sizeof(((struct gateway_answer *)0)->code)],
        msg[sizeof(((struct gateway_answer *)0)->message)],
        inq[sizeof(((struct gateway_inquiry *)0)->detail)];
};

static void answer_of(const struct request_row *row, const struct attempt_result *r,
                      const struct attempt_decision *d, struct answer_bufs *b,
                      struct attempt_answer *a)
{
    const struct gateway_answer *ans = &r->answer;
    bool success = d->final && (strcmp(d->status, CANCEL_STATUS_SUCCEEDED) == 0 ||
                                strcmp(d->status, CANCEL_STATUS_ALREADY_REFUNDED) == 0);
    const char *code = d->code != NULL ? d->code : ans->code;
    const char *message = ans->message;
    if (!r->called && r->inquired) {
        code = d->code != NULL ? d->code : r->inquiry.answer.code;
        message = r->inquiry.detail;
    }
    code = storable(code, b->code, sizeof(b->code));
    message = storable(message, b->msg, sizeof(b->msg));
    *a = (struct attempt_answer){
        .verdict = r->called ? gateway_verdict_name(ans->verdict) : "INQUIRY",
        .http_status = r->called ? (int)ans->http_status : 0,
        .error_code = success || code[0] == '\0' ? NULL : code,
        .error_message = success || message[0] == '\0' ? NULL : message,
        .latency_ms =
            (r->called ? ans->latency_ms : 0) + (r->inquired ? r->inquiry.answer.latency_ms : 0),
        .replayed = r->called && ans->replayed,
        /* The key as sent (gateway_client_key(): the gateway's own rules), or
         * none for a gateway without keys: the audit shows what went out. */
        .idempotency_key = r->called && r->key[0] != '\0' ? r->key : NULL,
        .inquiry = r->inquired                 ? gateway_finding_name(r->inquiry.finding)
                   : r->before != FINDING_NONE ? gateway_finding_name(r->before)
                                               : NULL,
        .inquiry_detail = r->inquired ? storable(r->inquiry.detail, b->inq, sizeof(b->inq)) : NULL,
    };
}

bool retry_steps_record_in_tx(struct db *db, const struct config *cfg, const char *worker,
                              const struct request_row *row, const struct attempt_result *r,
                              uint64_t random, struct retry_recorded *out, char *err, size_t errlen)
{
    struct attempt_decision *d = &out->decision;
    const struct gateway_answer *ans = &r->answer;
    struct answer_bufs bufs;
    struct attempt_answer a;
    char detail[512];

    out->applied = false;
    out->answered_before = false;
    retry_steps_decide(cfg, row, r, random, d);
    answer_of(row, r, d, &bufs, &a);
    snprintf(detail, sizeof(detail), "%s%s%s", d->why, r->called && ans->rule ? "; rule " : "",
             r->called && ans->rule ? ans->rule : "");
    struct attempt_next next = {
        .status = d->status,
        .decision = d->decision,
        .detail = detail,
        .next_attempt_ms = d->next_attempt_ms,
        .spend = d->spend,
        .key_generation = r->key_generation + (d->new_key ? 1 : 0),
        .key_ttl_ms = key_ttl_of(cfg, row->gateway),
        .key_holds_error = d->key_holds_error,
        .inquire_first = d->inquire_first,
        .final_check = d->final_check,
        .found_by_inquiry = d->found_by_inquiry,
    };

    if (!request_store_finish(db, row, worker, &a, &next, &out->applied, err, errlen)) {
        out->answered_before = db_last_error_class(db) == DB_ERR_DUPLICATE;
        return false;
    }
    if (out->applied && d->final) {
        struct cancel_last_error last = {a.error_code, a.error_message,
                                         contract_http_status(a.http_status)};
        return request_events_final(db, cfg, row, d->status, row->attempts,
                                    a.error_code != NULL ? &last : NULL, d->dlq_reason,
                                    a.error_message != NULL ? a.error_message : d->why,
                                    RETRY_CONSUMER_NAME, err, errlen);
    }
    if (out->applied) {
        struct cancel_request_fields req;
        request_events_fields(row, &req);
        return request_events_retry(db, cfg, &req, row->correlation_id, row->attempts + 1,
                                    d->next_attempt_ms, err, errlen);
    }
    return true;
}

void retry_steps_record_log(const struct request_row *row, const struct attempt_result *r,
                            const struct retry_recorded *rec)
{
    const struct attempt_decision *d = &rec->decision;
    struct answer_bufs bufs;
    struct attempt_answer a;
    struct log_ctx ctx = LOG_CTX_INIT;

    answer_of(row, r, d, &bufs, &a);
    ctx.request_id = row->request_id;
    ctx.correlation_id = row->correlation_id;
    if (!rec->applied) {
        log_emit(LOG_WARN, &ctx,
                 "attempt %d answered %s after its lease was taken over; answer recorded, "
                 "decision not applied",
                 row->attempts, a.verdict);
        return;
    }
    bool success = d->final && (strcmp(d->status, CANCEL_STATUS_SUCCEEDED) == 0 ||
                                strcmp(d->status, CANCEL_STATUS_ALREADY_REFUNDED) == 0);
    log_emit(d->final && !success ? LOG_WARN : LOG_INFO, &ctx,
             "attempt %d: gateway %s answered %s (http %d%s%s)%s%s -> %s: %s", row->attempts,
             row->gateway, a.verdict, a.http_status, a.error_code ? ", " : "",
             a.error_code ? a.error_code : "", a.inquiry ? ", inquiry found " : "",
             a.inquiry ? a.inquiry : "", d->decision, d->why);
}

bool retry_steps_record(struct db *db, const struct config *cfg, const char *worker,
                        const struct request_row *row, const struct attempt_result *r,
                        uint64_t random, const char **status_out, char *err, size_t errlen)
{
    struct retry_recorded rec;

    if (status_out != NULL)
        *status_out = NULL;
    if (!db_begin(db, err, errlen))
        return false;
    if (!retry_steps_record_in_tx(db, cfg, worker, row, r, random, &rec, err, errlen)) {
        db_rollback(db);
        /* The ANSWERED fact of this attempt exists: an earlier try of this
         * very step committed but its acknowledgement was lost. Done. */
        return rec.answered_before;
    }
    if (!db_commit(db, err, errlen)) {
        db_rollback(db);
        return false;
    }
    retry_steps_record_log(row, r, &rec);
    if (status_out != NULL)
        *status_out = rec.applied ? rec.decision.status : NULL;
    return true;
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

/* Two workers' batches lock their rows in the same order, so they can wait
 * on each other but never in a cycle. */
static int by_claim_request(const void *a, const void *b)
{
    return strcmp(((const struct claim_item *)a)->request_id,
                  ((const struct claim_item *)b)->request_id);
}

static int by_record_request(const void *a, const void *b)
{
    return strcmp(((const struct record_item *)a)->row->request_id,
                  ((const struct record_item *)b)->row->request_id);
}

bool retry_steps_claim_batch(struct db *db, const struct config *cfg, const char *worker,
                             struct claim_item *items, size_t n, char *err, size_t errlen)
{
    size_t done = 0;

    qsort(items, n, sizeof(*items), by_claim_request);
    if (!db_begin(db, err, errlen))
        return false;
    for (; done < n; done++) {
        struct claim_item *it = &items[done];
        if (!retry_steps_claim_in_tx(db, cfg, worker, it->request_id, it->attempt, it->row,
                                     &it->result, it->why, sizeof(it->why), err, errlen))
            break;
    }
    if (done == n && db_commit(db, err, errlen))
        return true;
    db_rollback(db);
    for (size_t i = 0; i < done; i++) {
        if (items[i].result == CLAIM_TAKEN)
            request_row_clear(items[i].row);
    }
    return false;
}

bool retry_steps_record_batch(struct db *db, const struct config *cfg, const char *worker,
                              struct record_item *items, size_t n, char *err, size_t errlen)
{
    size_t done = 0;

    qsort(items, n, sizeof(*items), by_record_request);
    if (!db_begin(db, err, errlen))
        return false;
    for (; done < n; done++) {
        struct record_item *it = &items[done];
        if (!retry_steps_record_in_tx(db, cfg, worker, it->row, it->result, it->random, &it->rec,
                                      err, errlen))
            break;
    }
    if (done < n || !db_commit(db, err, errlen)) {
        db_rollback(db);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        retry_steps_record_log(items[i].row, items[i].result, &items[i].rec);
    return true;
}
