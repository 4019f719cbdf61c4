/*
 * retry_worker: see retry_worker.h.
 */
#include "core/retry_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/http.h"
#include "base/log.h"
#include "base/ratelimit.h"
#include "base/rng.h"
#include "base/signals.h"
#include "core/breaker.h"
#include "core/retry_job.h"
#include "core/retry_notify.h"
#include "core/retry_steps.h"
#include "event/cloudevent.h"
#include "gateway/gateway.h"
#include "kafka/consumer.h"
#include "kafka/kafka.h"
#include "kafka/offset_tracker.h"
#include "store/db.h"

/* Extra time granted on shutdown beyond the longest gateway timeout. */
#define DRAIN_GRACE_MS  5000
#define DB_RETRY_MIN_MS 200
#define DB_RETRY_MAX_MS 10000

struct retry_worker {
    const struct config *cfg;
    const char *worker;
    struct db *db;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* the consumer's, which wakes the http wait */
    struct http_client *http;
    struct offset_tracker *tracker;
    struct gw *gws;
    size_t ngws;
    struct job *jobs;
    size_t njobs;
    struct claim_item *claims; /* this turn's group commits, cap entries each */
    struct record_item *records;
    size_t cap;
    bool paused;
    bool db_down;
    int64_t db_retry_at;
    int64_t db_backoff;
    int64_t db_checked_at; /* last idle db_check */
    struct metrics *metrics;
};

/* Take a polled message into a new job, tracked and listed. */
static bool job_from_message(struct retry_worker *w, const rd_kafka_message_t *m)
{
    struct kafka_record rec;

    consumer_record(m, &rec);
    struct job *j = retry_job_new(&rec, w->gws, w->ngws);
    if (j == NULL)
        return false;
    if (!offset_tracker_add(w->tracker, rec.topic, rec.partition, rec.offset)) {
        retry_job_free(j);
        return false;
    }
    j->next = w->jobs;
    w->jobs = j;
    w->njobs++;
    return true;
}

/* Revoked partitions are forgotten: events of theirs still in flight finish
 * their db work, but their offsets belong to the new owner now. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct retry_worker *w = opaque;

    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++)
            offset_tracker_forget(w->tracker, parts->elems[i].topic, parts->elems[i].partition);
        w->paused = false;
    }
    kafka_default_rebalance_cb(rk, err, parts, opaque);
}

struct retry_worker *retry_worker_new(const struct config *cfg, const char *worker, char *err,
                                      size_t errlen)
{
    struct retry_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->worker = worker;
    w->db_backoff = DB_RETRY_MIN_MS;
    w->db = db_new(&cfg->database, RETRY_CONSUMER_NAME);
    w->tracker = offset_tracker_new();
    w->http = http_client_new(err, errlen);
    w->gws = calloc(cfg->ngateways, sizeof(*w->gws));
    if (w->db == NULL || w->tracker == NULL || w->http == NULL || w->gws == NULL) {
        if (err[0] == '\0')
            snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->ngateways; i++) {
        struct gw *g = &w->gws[w->ngws];
        g->cfg = &cfg->gateways[i];
        g->client = gateway_client_new(g->cfg, w->http, err, errlen);
        g->breaker = breaker_new(&g->cfg->breaker);
        g->ratelimit = ratelimit_new(g->cfg->rate_limit.per_second, g->cfg->rate_limit.burst);
        w->ngws++;
        if (g->client == NULL || g->breaker == NULL || g->ratelimit == NULL)
            goto fail;
    }
    return w;
fail:
    retry_worker_free(w);
    return NULL;
}

void retry_worker_free(struct retry_worker *w)
{
    if (w == NULL)
        return;
    if (w->queue != NULL) {
        rd_kafka_queue_cb_event_enable(w->queue, NULL, NULL);
        rd_kafka_queue_destroy(w->queue);
    }
    if (w->rk != NULL)
        kafka_consumer_close(w->rk);
    /* The http client first: it finishes (aborts) transfers that still point
     * at gateway clients and jobs. */
    http_client_free(w->http);
    for (size_t i = 0; i < w->ngws; i++) {
        gateway_client_free(w->gws[i].client);
        breaker_free(w->gws[i].breaker);
        ratelimit_free(w->gws[i].ratelimit);
    }
    free(w->gws);
    while (w->jobs != NULL) {
        struct job *j = w->jobs;
        w->jobs = j->next;
        retry_job_free(j);
    }
    offset_tracker_free(w->tracker);
    db_free(w->db);
    free(w->claims);
    free(w->records);
    free(w);
}

void retry_worker_set_metrics(struct retry_worker *w, struct metrics *m)
{
    w->metrics = m;
    metrics_describe(m, "cancel_retry_attempts_total", "counter",
                     "gateway refund attempts by gateway and verdict");
    metrics_describe(m, "cancel_retry_requests_finished_total", "counter",
                     "requests that reached a final status here, by gateway and status");
    metrics_describe(m, "cancel_retry_breaker_open", "gauge",
                     "1 while the gateway's circuit breaker is open or half-open");
    metrics_describe(m, "cancel_retry_postponed_total", "counter",
                     "attempts postponed because the gateway's circuit breaker was open");
    metrics_describe(m, "cancel_retry_skipped_events_total", "counter",
                     "retry events that started no attempt (stale, duplicate, final)");
    metrics_describe(m, "cancel_retry_dead_letters_total", "counter",
                     "unreadable retry events dead-lettered");
    metrics_describe(m, "cancel_retry_in_flight", "gauge", "events being worked on");
    metrics_describe(m, "cancel_retry_db_available", "gauge",
                     "1 while the database answers, 0 while work is paused");
    db_set_metrics(w->db, m);
}

static void count_gateway(struct retry_worker *w, const char *name, const struct gw *g,
                          const char *extra)
{
    char labels[160];
    snprintf(labels, sizeof(labels), "gateway=\"%s\"%s%s", g != NULL ? g->cfg->name : "",
             extra != NULL ? "," : "", extra != NULL ? extra : "");
    metrics_add(w->metrics, name, labels, 1);
}

static void db_failed(struct retry_worker *w, const char *what, const char *err)
{
    if (!w->db_down)
        log_warn("%s: %s; pausing until the database is back", what, err);
    w->db_down = true;
    w->db_retry_at = wall_ms() + w->db_backoff;
    w->db_backoff = w->db_backoff * 2 > DB_RETRY_MAX_MS ? DB_RETRY_MAX_MS : w->db_backoff * 2;
}

/* Try to get the db back when it failed; true when usable. */
static bool db_usable(struct retry_worker *w)
{
    char err[512];

    if (!w->db_down)
        return true;
    if (wall_ms() < w->db_retry_at)
        return false;
    if (!db_is_connected(w->db) && !db_connect_once(w->db, err, sizeof(err))) {
        db_failed(w, "database still unavailable", err);
        return false;
    }
    log_info("database available again; resuming");
    w->db_down = false;
    w->db_backoff = DB_RETRY_MIN_MS;
    return true;
}

/* Dead-letter the event of j (its own bytes) with reason and error; keyed
 * by its Kafka key when the outbox can store it, else by its requestId
 * (always with plain: the fallback after the database refused the first
 * try). */
static bool dead_letter_job(struct retry_worker *w, struct job *j, const char *reason,
                            const char *error, bool plain, char *err, size_t errlen)
{
    const char *key = j->rs.request_id;
    if (!plain && j->key != NULL && dlq_key_storable(j->key, strlen(j->key)))
        key = j->key;
    struct dlq_meta meta = {
        .reason = reason,
        .error = error,
        .origin = {j->topic, j->partition, j->offset, j->timestamp_ms},
        .consumer = RETRY_CONSUMER_NAME,
        .request_id = j->rs.request_id,
        .attempts = 0,
        .at_ms = wall_ms(),
    };
    return retry_steps_dead_letter(w->db, w->cfg, j->value, j->len, key, &meta, err, errlen);
}

/* A step of j failed in the database (err says how). db.h's one rule
 * decides: an outage, a server fault or a bug of ours pauses the worker and
 * the step runs again later; a failure about this event's data would fail
 * the same way for ever, so the event is dead-lettered (with reason, NULL for
 * SCHEMA_VIOLATION; the database's message and SQLSTATE in dlq.error, with
 * consequence saying what becomes of the request) and the job ends. */
static void step_failed(struct retry_worker *w, struct job *j, const char *reason, const char *what,
                        const char *err, const char *consequence)
{
    char error[1200], why[1024];

    if (!db_failure_blames_message(w->db)) {
        db_failed(w, what, err);
        return;
    }
    if (j->breaker_permit) {
        breaker_release(j->gw->breaker, wall_ms());
        j->breaker_permit = false;
    }
    snprintf(error, sizeof(error), "%s: %s%s%s", what, err, consequence != NULL ? "; " : "",
             consequence != NULL ? consequence : "");
    if (!dead_letter_job(w, j, reason != NULL ? reason : DLQ_REASON_SCHEMA_VIOLATION, error, true,
                         why, sizeof(why))) {
        if (!db_failure_blames_message(w->db)) {
            db_failed(w, "could not dead-letter an event the database refused", why);
            return;
        }
        /* Not even its dead letter can be stored. The request row, not
         * this event, is the source of truth: leave the event, say why. */
        retry_job_log(j, LOG_ERROR,
                      "dropped a retry event the database refuses, and its dead letter", why);
        j->state = JOB_DONE;
        return;
    }
    retry_job_log(j, LOG_WARN, "dead-lettered a retry event the database refused", error);
    metrics_add(w->metrics, "cancel_retry_dead_letters_total", NULL, 1);
    j->state = JOB_DONE;
}

/* JOB_START, before the claim: poison, breaker, token. True when the job
 * may be claimed now. */
static bool step_prepare(struct retry_worker *w, struct job *j)
{
    char err[1024];
    int64_t now = wall_ms();

    if (j->poison_reason != NULL) {
        if (!dead_letter_job(w, j, j->poison_reason, j->poison_error, false, err, sizeof(err))) {
            step_failed(w, j, j->poison_reason, j->poison_error, err, NULL);
            return false;
        }
        retry_job_log(j, LOG_WARN, "dead-lettered an unreadable retry event", j->poison_error);
        metrics_add(w->metrics, "cancel_retry_dead_letters_total", NULL, 1);
        j->state = JOB_DONE;
        return false;
    }
    if (!j->breaker_permit) {
        int64_t retry_at = 0;
        if (!breaker_allow(j->gw->breaker, now, &retry_at)) {
            /* Spread the postponed backlog over a fifth of the wait (at most
             * 5s), so it does not come back as one herd at the same instant. */
            int64_t spread = (retry_at - now) / 5;
            spread = spread > 5000 ? 5000 : spread;
            if (spread > 0)
                retry_at += (int64_t)(rng_u64() % (uint64_t)spread);
            bool moved = false;
            if (!retry_steps_postpone(w->db, w->cfg, &j->rs, j->ev.correlationid, retry_at, &moved,
                                      err, sizeof(err))) {
                step_failed(w, j, NULL, "could not postpone a request", err, NULL);
                return false;
            }
            retry_job_log(j, LOG_INFO, "circuit open: attempt postponed, budget not spent", NULL);
            count_gateway(w, "cancel_retry_postponed_total", j->gw, NULL);
            j->state = JOB_DONE;
            return false;
        }
        j->breaker_permit = true;
    }
    if (now < j->not_before_ms)
        return false;
    int64_t wait = ratelimit_take(j->gw->ratelimit, now);
    if (wait > 0) {
        j->not_before_ms = now + wait;
        return false;
    }
    return true;
}

/* JOB_START, after the claim committed: call, inquire, or end. */
static void step_claimed(struct retry_worker *w, struct job *j, enum claim_result result,
                         const char *why)
{
    if (result != CLAIM_TAKEN) {
        breaker_release(j->gw->breaker, wall_ms());
        j->breaker_permit = false;
        retry_job_log(j, result == CLAIM_FINISHED ? LOG_WARN : LOG_INFO, "no attempt", why);
        count_gateway(w, "cancel_retry_skipped_events_total", j->gw, NULL);
        j->state = JOB_DONE;
        return;
    }
    j->have_row = true;
    memset(&j->result, 0, sizeof(j->result));
    j->result.key_generation = j->row.key_generation;
    /* A pending refund, a key that holds an error, a final check, an
     * earlier inquiry without answer, or a gateway whose safety mechanism
     * is an inquiry before every send (gateway_driver.h): what the gateway
     * did comes first. */
    if (j->row.inquire_first || j->row.key_holds_error || j->row.final_check != NULL ||
        gateway_client_inquires_first(j->gw->client))
        retry_notify_inquire(w->db, w->cfg, j);
    else
        retry_job_call(j, j->row.key_generation);
}

/* Claim one job in a transaction of its own. */
static void claim_one(struct retry_worker *w, struct job *j)
{
    char err[1024], why[256];
    enum claim_result result;

    if (!retry_steps_claim(w->db, w->cfg, w->worker, j->rs.request_id, j->rs.attempt, &j->row,
                           &result, why, sizeof(why), err, sizeof(err))) {
        step_failed(w, j, NULL, "could not claim a request", err,
                    "nothing was sent; the reconciler re-triggers the request if it is due");
        return;
    }
    step_claimed(w, j, result, why);
}

/* JOB_ASKED: the inquiry made before any call decides whether one is made. */
static void step_asked(struct retry_worker *w, struct job *j)
{
    enum refund_finding finding = j->result.inquiry.finding;
    switch (attempt_after_inquiry(finding, j->row.key_holds_error, j->row.final_check,
                                  retry_steps_may_call(w->cfg, &j->row))) {
    case ATTEMPT_NO_CALL:
        if (j->breaker_permit) {
            breaker_release(j->gw->breaker, wall_ms());
            j->breaker_permit = false;
        }
        j->state = JOB_ANSWERED;
        return;
    case ATTEMPT_CALL_NEW_KEY:
        retry_job_log(j, LOG_INFO, "no refund at the gateway: a new key generation",
                      j->result.inquiry.detail);
        /* fall through */
    case ATTEMPT_CALL:
        break;
    }
    j->result.before = finding;
    j->result.inquired = false;
    retry_job_call(j, j->row.key_generation + (j->row.key_holds_error ? 1 : 0));
}

/* JOB_CALLED: breaker bookkeeping once; an inquiry when the answer alone
 * cannot decide. */
static void step_called(struct retry_worker *w, struct job *j)
{
    struct attempt_decision d;

    if (j->breaker_permit) {
        breaker_record(j->gw->breaker, wall_ms(),
                       !gateway_answer_counts_as_failure(&j->result.answer),
                       breaker_request_hash(j->row.request_id));
        j->breaker_permit = false;
    }
    retry_steps_decide(w->cfg, &j->row, &j->result, 0, &d);
    if (d.inquire_now)
        retry_notify_inquire(w->db, w->cfg, j);
    else
        j->state = JOB_ANSWERED;
}

/* status: the request's new status when the decision was applied, else
 * NULL; a final one (attempt.h: not SCHEDULED nor PENDING) is counted. */
static void step_recorded(struct retry_worker *w, struct job *j, const char *status)
{
    if (status != NULL && strcmp(status, REQUEST_PENDING) == 0 &&
        gateway_client_completes_by_webhook(j->gw->client))
        retry_notify_wake(w->db, w->cfg, j);
    char labels[64];
    snprintf(labels, sizeof(labels), "verdict=\"%s\"",
             j->result.called ? gateway_verdict_name(j->result.answer.verdict) : "INQUIRY");
    count_gateway(w, "cancel_retry_attempts_total", j->gw, labels);
    if (status != NULL && strcmp(status, "SCHEDULED") != 0 && strcmp(status, "PENDING") != 0) {
        snprintf(labels, sizeof(labels), "status=\"%s\"", status);
        count_gateway(w, "cancel_retry_requests_finished_total", j->gw, labels);
    }
    j->state = JOB_DONE;
}

/* JOB_ANSWERED: record in a transaction of its own, until the db takes it. */
static void record_one(struct retry_worker *w, struct job *j)
{
    char err[1024];
    const char *status = NULL;

    if (!retry_steps_record(w->db, w->cfg, w->worker, &j->row, &j->result, rng_u64(), &status, err,
                            sizeof(err))) {
        /* The safe thing for money when the answer itself cannot be
         * recorded: no final status is invented (SUCCEEDED or EXHAUSTED
         * could both be wrong, and a wrong EXHAUSTED invites a refund by
         * hand on top of ours). The request stays IN_FLIGHT under its lease;
         * when the lease expires the reconciler records the attempt
         * ABANDONED and schedules the next one under the same idempotency
         * key, so the gateway replays what it did instead of refunding
         * again, and a last attempt gets an inquiry (final check). The
         * dead letter tells the operator. */
        char consequence[256];
        snprintf(consequence, sizeof(consequence),
                 "attempt %d of request %s stays IN_FLIGHT until its lease expires, then the "
                 "reconciler schedules it again under the same idempotency key",
                 j->row.attempts, j->row.request_id);
        step_failed(w, j, NULL, "could not record an attempt's answer", err, consequence);
        return;
    }
    step_recorded(w, j, status);
}

/* Commit the positions gathered in one turn: one request to the broker per
 * turn, not one per event. */
static void commit_offsets(struct retry_worker *w, rd_kafka_topic_partition_list_t *list, bool sync)
{
    if (list->cnt == 0)
        return;
    /* Async while running: a lost commit means a redelivery, which the claim
     * fence turns into a no-op. Sync while draining, so that what finished
     * is committed before the consumer leaves the group. */
    rd_kafka_resp_err_t e = rd_kafka_commit(w->rk, list, sync ? 0 : 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("could not commit the offsets of %d partition%s: %s", list->cnt,
                 list->cnt == 1 ? "" : "s", rd_kafka_err2str(e));
}

static void drop_job(struct retry_worker *w, struct job **link)
{
    struct job *j = *link;
    *link = j->next;
    w->njobs--;
    retry_job_free(j);
}

/* Room for one entry per job in this turn's batches; false when there is
 * none (the jobs past cap wait for a later turn). */
static bool batch_room(struct retry_worker *w)
{
    if (w->njobs <= w->cap)
        return true;
    size_t cap = w->njobs * 2;
    struct claim_item *claims = realloc(w->claims, cap * sizeof(*claims));
    if (claims != NULL)
        w->claims = claims;
    struct record_item *records = realloc(w->records, cap * sizeof(*records));
    if (records != NULL)
        w->records = records;
    if (claims == NULL || records == NULL)
        return false;
    w->cap = cap;
    return true;
}

static void claim_jobs(struct retry_worker *w, size_t n)
{
    char err[1024];

    if (n == 1) {
        claim_one(w, w->claims[0].owner);
        return;
    }
    if (retry_steps_claim_batch(w->db, w->cfg, w->worker, w->claims, n, err, sizeof(err))) {
        for (size_t i = 0; i < n; i++)
            step_claimed(w, w->claims[i].owner, w->claims[i].result, w->claims[i].why);
        return;
    }
    /* One by one: an outage pauses at the first, a refused event is
     * dead-lettered alone. */
    for (size_t i = 0; i < n && !w->db_down; i++)
        claim_one(w, w->claims[i].owner);
}

static void record_jobs(struct retry_worker *w, size_t n)
{
    char err[1024];

    if (n == 1) {
        record_one(w, w->records[0].owner);
        return;
    }
    if (retry_steps_record_batch(w->db, w->cfg, w->worker, w->records, n, err, sizeof(err))) {
        for (size_t i = 0; i < n; i++) {
            const struct retry_recorded *rec = &w->records[i].rec;
            step_recorded(w, w->records[i].owner, rec->applied ? rec->decision.status : NULL);
        }
        return;
    }
    for (size_t i = 0; i < n && !w->db_down; i++)
        record_one(w, w->records[i].owner);
}

/* Advance every job that can move; free finished ones. Claims and records
 * ready at this turn are committed together (retry_steps.h, group commit).
 * While draining, events not yet claimed are left alone: no new attempt
 * starts during a shutdown, and their offsets stay uncommitted, so they are
 * read again later. */
static void step_jobs(struct retry_worker *w, bool draining)
{
    size_t nclaims = 0, nrecords = 0;
    bool room = batch_room(w);
    size_t cap = room ? w->njobs : w->cap;

    for (struct job *j = w->jobs; j != NULL; j = j->next) {
        if (j->state == JOB_START && !draining && nclaims < cap && db_usable(w) &&
            step_prepare(w, j)) {
            w->claims[nclaims++] = (struct claim_item){.request_id = j->rs.request_id,
                                                       .attempt = j->rs.attempt,
                                                       .row = &j->row,
                                                       .owner = j};
        }
        if (j->state == JOB_ASKED)
            step_asked(w, j);
        if (j->state == JOB_CALLED)
            step_called(w, j);
        if (j->state == JOB_ANSWERED && nrecords < cap)
            w->records[nrecords++] = (struct record_item){
                .row = &j->row, .result = &j->result, .random = rng_u64(), .owner = j};
    }
    if (nclaims > 0 && db_usable(w))
        claim_jobs(w, nclaims);
    if (nrecords > 0 && db_usable(w))
        record_jobs(w, nrecords);

    rd_kafka_topic_partition_list_t *commits = rd_kafka_topic_partition_list_new(4);
    struct job **link = &w->jobs;
    while (*link != NULL) {
        struct job *j = *link;
        if (j->state == JOB_START && draining) {
            if (j->breaker_permit)
                breaker_release(j->gw->breaker, wall_ms());
            drop_job(w, link);
            continue;
        }
        if (j->state == JOB_DONE) {
            int64_t commit = offset_tracker_done(w->tracker, j->topic, j->partition, j->offset);
            if (commit >= 0) {
                rd_kafka_topic_partition_t *tp =
                    rd_kafka_topic_partition_list_find(commits, j->topic, j->partition);
                if (tp == NULL)
                    tp = rd_kafka_topic_partition_list_add(commits, j->topic, j->partition);
                if (commit > tp->offset)
                    tp->offset = commit;
            }
            drop_job(w, link);
            continue;
        }
        link = &j->next;
    }
    commit_offsets(w, commits, draining);
    rd_kafka_topic_partition_list_destroy(commits);
}

static void set_paused(struct retry_worker *w, bool paused)
{
    if (paused == w->paused)
        return;
    if (paused)
        consumer_pause(w->rk);
    else
        consumer_resume(w->rk);
    w->paused = paused;
}

/* Take one polled message; false when there was none. A message is always
 * taken, even when the worker is full: after a pause librdkafka delivers
 * none, so one that still arrives was already the application's, and
 * dropping it would let later offsets be committed past it. */
static bool poll_one(struct retry_worker *w, int timeout_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(w->rk, timeout_ms);
    if (m == NULL)
        return false;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            bool fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;
            log_emit(fatal ? LOG_ERROR : LOG_WARN, NULL, "consumer error: %s",
                     rd_kafka_message_errstr(m));
            if (fatal)
                signals_request_stop();
        }
    } else if (!job_from_message(w, m)) {
        /* Not tracked, so no later offset of its partition can be committed
         * past it... except by the tracker of other messages: stop, and let
         * a restart read it again. */
        log_error("out of memory taking a retry event; stopping");
        signals_request_stop();
    }
    rd_kafka_message_destroy(m);
    return true;
}

/* Take what the consumer has ready, up to max_in_flight jobs, so that one
 * turn of the loop (and one group commit) serves a whole burst instead of
 * one event per turn. */
static void poll_kafka(struct retry_worker *w, int timeout_ms)
{
    size_t max = (size_t)w->cfg->consumers.retry.max_in_flight;

    if (!poll_one(w, timeout_ms))
        return;
    while (w->njobs < max && !signals_stop_requested() && poll_one(w, 0))
        ;
}

static void set_breaker_gauges(struct retry_worker *w)
{
    char labels[96];
    int64_t now = wall_ms();

    for (size_t i = 0; w->metrics != NULL && i < w->ngws; i++) {
        snprintf(labels, sizeof(labels), "gateway=\"%s\"", w->gws[i].cfg->name);
        metrics_set(w->metrics, "cancel_retry_breaker_open", labels,
                    breaker_state(w->gws[i].breaker, now) != BREAKER_CLOSED);
    }
}

/* From a librdkafka thread, when the consumer queue was empty: only wake the
 * loop (curl_multi_wakeup is thread-safe); librdkafka forbids more here. */
static void on_event_queued(rd_kafka_t *rk, void *opaque)
{
    struct retry_worker *w = opaque;
    (void)rk;
    http_client_wakeup(w->http);
}

static int64_t drain_budget_ms(const struct config *cfg)
{
    int64_t longest = 0;
    for (size_t i = 0; i < cfg->ngateways; i++) {
        if (cfg->gateways[i].timeout_ms > longest)
            longest = cfg->gateways[i].timeout_ms;
    }
    return longest + DRAIN_GRACE_MS;
}

int retry_worker_run(struct retry_worker *w)
{
    char err[1024];
    const struct config *cfg = w->cfg;
    int64_t drain_until = -1;

    if (!db_ensure_connected(w->db, err, sizeof(err)))
        return signals_stop_requested() ? 0 : 1;
    w->rk = kafka_consumer_new(cfg, cfg->consumers.retry.group_id, on_rebalance, w, w->metrics, err,
                               sizeof(err));
    if (w->rk == NULL) {
        log_error("%s", err);
        return 1;
    }
    /* The loop waits in curl for answers (http_client_run); an event that
     * arrives meanwhile ends the wait at once instead of at its timeout. */
    w->queue = rd_kafka_queue_get_consumer(w->rk);
    if (w->queue != NULL)
        rd_kafka_queue_cb_event_enable(w->queue, on_event_queued, w);
    const char *topics[] = {cfg->topics.retry.name, NULL};
    if (!consumer_subscribe(w->rk, topics, err, sizeof(err))) {
        log_error("%s", err);
        return 1;
    }
    log_info("retry-consumer started as %s: topic %s, group %s, up to %d attempts in flight",
             w->worker, cfg->topics.retry.name, cfg->consumers.retry.group_id,
             cfg->consumers.retry.max_in_flight);

    for (;;) {
        if (signals_stop_requested() && drain_until < 0) {
            drain_until = wall_ms() + drain_budget_ms(cfg);
            set_paused(w, true);
            log_info("stopping: finishing %zu events in flight", w->njobs);
        }
        if (drain_until >= 0 && (w->njobs == 0 || wall_ms() > drain_until))
            break;

        /* Full, the loop stops polling instead of pausing: a pause drops
         * what librdkafka prefetched, and its refetch waits out the fetch
         * backoff (1 s in librdkafka 2.0, once the queue passed
         * queued.max.messages.kbytes): a worker paused and resumed 32
         * events at a time served 32 a second (docs/benchmarks.md). A
         * database outage still pauses: it can last longer than the poll
         * interval librdkafka allows. */
        bool full = w->njobs >= (size_t)cfg->consumers.retry.max_in_flight;
        if (drain_until < 0)
            set_paused(w, w->db_down);
        bool busy = w->njobs > 0;
        /* Idle, nothing would notice a database that went away until the
         * next event, nor try to get it back (reading is paused): look
         * once a second (no round trip), so that /readyz tells at once. */
        if (!busy && w->db_down) {
            (void)db_usable(w);
        } else if (!busy && mono_ms() - w->db_checked_at >= 1000) {
            w->db_checked_at = mono_ms();
            if (!db_check(w->db))
                db_failed(w, "lost the database connection", "closed while idle");
        }
        if (!full)
            poll_kafka(w, busy ? 0 : 100);
        if (http_client_in_flight(w->http) > 0 &&
            http_client_run(w->http, busy ? 10 : 0, err, sizeof(err)) < 0)
            log_warn("http engine: %s", err);
        step_jobs(w, drain_until >= 0);
        metrics_set(w->metrics, "cancel_retry_in_flight", NULL, (int64_t)w->njobs);
        set_breaker_gauges(w);
        metrics_set(w->metrics, "cancel_retry_db_available", NULL, w->db_down ? 0 : 1);
        if (busy && http_client_in_flight(w->http) == 0) {
            /* Jobs wait for a token or the db: do not spin. */
            struct timespec ts = {0, 5 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }

    if (w->njobs > 0)
        log_warn("stopped with %zu events unfinished: their leases expire and the reconciler "
                 "re-schedules them",
                 w->njobs);
    log_info("retry-consumer stopped");
    return 0;
}
