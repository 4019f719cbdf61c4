/*
 * relay: see relay.h.
 */
#include "relay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "dlq.h"
#include "kafka.h"
#include "log.h"
#include "outbox.h"
#include "reconcile_run.h"
#include "reconciler.h"
#include "signals.h"

#define RELAY_CHANNEL           "cancel_retry_outbox"
#define RELAY_STANDBY_RETRY_MS  1000
#define RELAY_PURGE_INTERVAL_MS (10 * 60 * 1000)
#define RELAY_PURGE_CHUNK       1000
/* Longest sleep while a reconciliation pass has inquiries in flight: they
 * move on only when the loop turns (a NOTIFY still wakes it at once). */
#define RELAY_PASS_TURN_MS 50
/* Wait before trying again a pass that could not start. */
#define RELAY_PASS_RETRY_MS (60 * 1000)

static const char sql_try_lock[] =
    "SELECT pg_try_advisory_lock(hashtext('cancel-retry:outbox-relay'))";

/* Longest wait for librdkafka to hand back the reports of messages a batch
 * gave up on (purged): they come at the next poll, this is a safety net. */
#define RELAY_DRAIN_MS 5000

/* Delivery state of one row of the batch in flight. The slots live in the
 * relay (r->dl), not in the batch: librdkafka keeps a pointer to its slot in
 * every message it holds and writes the report there whenever it is served,
 * which can be after the batch stopped waiting (a stop, a fatal error) and
 * as late as the final flush in relay_free(). A batch also never ends with
 * a message of its own still in the producer (drain_batch), so a late
 * report cannot land in a slot the next batch reuses. */
enum delivery_state {
    DELIVERY_IDLE = 0,  /* not handed to librdkafka */
    DELIVERY_IN_FLIGHT, /* librdkafka holds it; the report will come */
    DELIVERY_DONE,      /* the report (or producev's refusal) is in err */
};

struct delivery {
    int64_t id;
    enum delivery_state state;
    rd_kafka_resp_err_t err;
};

struct relay {
    const struct config *cfg;
    const char *worker;
    struct db *db;
    rd_kafka_t *producer;
    bool leader;
    int64_t next_reconcile_ms;
    int64_t next_purge_ms;
    int64_t failure_backoff_ms;
    struct metrics *metrics;
    /* batch_size delivery slots; owned, freed after the producer. */
    struct delivery *dl;
    /* The scheduled reconciliation against the gateways (reconcile_run.h):
     * the pass in progress, and when the next one starts (monotonic ms; -1:
     * ask the database, after taking the lead). */
    struct reconcile_pass *pass;
    int64_t next_pass_ms;
};

void relay_set_metrics(struct relay *r, struct metrics *m)
{
    r->metrics = m;
    metrics_describe(m, "cancel_retry_outbox_published_total", "counter",
                     "outbox rows published (delivery report succeeded)");
    metrics_describe(m, "cancel_retry_outbox_publish_failures_total", "counter",
                     "outbox rows whose publish failed (they are retried)");
    metrics_describe(m, "cancel_retry_relay_active", "gauge",
                     "1 while this relay holds the lock and publishes, 0 on standby");
    metrics_describe(m, "cancel_retry_reconciled_total", "counter",
                     "requests the reconciler re-scheduled or ended, by kind");
    metrics_describe(m, "cancel_retry_producer_recreated_total", "counter",
                     "Kafka producers recreated after a fatal error");
    metrics_describe(m, "cancel_retry_gateway_reconcile_passes_total", "counter",
                     "scheduled reconciliation passes against the gateways, finished");
    metrics_describe(m, "cancel_retry_gateway_reconcile_checked_total", "counter",
                     "requests compared with the gateway's record, by result");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct delivery *d = msg->_private;
    (void)rk;
    (void)opaque;
    /* A report for a slot not waiting for one would be a bug; keep it from
     * marking the wrong row. */
    if (d == NULL || d->state != DELIVERY_IN_FLIGHT)
        return;
    d->state = DELIVERY_DONE;
    d->err = msg->err;
}

struct relay *relay_new(const struct config *cfg, const char *worker)
{
    struct relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = cfg;
    r->worker = worker;
    r->db = db_new(&cfg->database, "outbox-relay");
    r->dl = calloc((size_t)cfg->relay.batch_size, sizeof(*r->dl));
    if (r->db == NULL || r->dl == NULL) {
        db_free(r->db);
        free(r->dl);
        free(r);
        return NULL;
    }
    return r;
}

void relay_free(struct relay *r)
{
    if (r == NULL)
        return;
    reconcile_pass_free(r->pass);
    /* The producer first: its final flush may still serve reports, which
     * write into r->dl. */
    if (r->producer != NULL)
        kafka_producer_close(r->producer, (int)r->cfg->relay.flush_timeout_ms);
    free(r->dl);
    db_free(r->db);
    free(r);
}

static bool ensure_producer(struct relay *r)
{
    char err[512], fatal[512];

    if (r->producer != NULL &&
        kafka_fatal_error_text(r->producer, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Unusable for good; messages still queued in it are lost to it, not
         * to us: their rows are unpublished and go out again. */
        log_error("the Kafka producer hit a fatal error, recreating it: %s", fatal);
        kafka_producer_close(r->producer, 0);
        r->producer = NULL;
        metrics_add(r->metrics, "cancel_retry_producer_recreated_total", NULL, 1);
    }
    if (r->producer != NULL)
        return true;
    r->producer = kafka_producer_new(r->cfg, on_delivery, r, err, sizeof(err));
    if (r->producer == NULL) {
        log_error("%s", err);
        return false;
    }
    return true;
}

/* Sleep in short steps, serving the producer, until ms passed or a stop. */
static void pause_ms(struct relay *r, int64_t ms)
{
    int64_t until = mono_ms() + ms;
    while (!signals_stop_requested() && mono_ms() < until) {
        if (r->producer != NULL)
            rd_kafka_poll(r->producer, 100);
        else {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* Become the active relay if no other is. */
static bool try_lead(struct relay *r)
{
    char err[512];
    PGresult *res = NULL;

    if (!db_exec(r->db, sql_try_lock, 0, NULL, PGRES_TUPLES_OK, &res, err, sizeof(err))) {
        log_warn("could not try the relay lock: %s", err);
        return false;
    }
    bool got = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (got)
        log_info("this relay is now active (%s)", r->worker);
    return got;
}

/* Produce every row; returns how many were handed to librdkafka. */
static size_t produce_rows(struct relay *r, struct outbox_row *rows, size_t n, struct delivery *dl)
{
    char err[512];
    size_t queued = 0;

    for (size_t i = 0; i < n; i++) {
        dl[i].id = rows[i].id;
        dl[i].state = DELIVERY_IDLE;
        dl[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_headers_t *hdrs = dlq_headers_to_kafka(rows[i].headers, err, sizeof(err));
        if (hdrs == NULL) {
            dl[i].state = DELIVERY_DONE;
            dl[i].err = RD_KAFKA_RESP_ERR__INVALID_ARG;
            log_error("outbox row %" PRId64 " has bad headers: %s", rows[i].id, err);
            continue;
        }
        size_t key_len = rows[i].key != NULL ? strlen(rows[i].key) : 0;
        /* In flight before producev: its report may be served by any poll
         * from here on. */
        dl[i].state = DELIVERY_IN_FLIGHT;
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                r->producer, RD_KAFKA_V_TOPIC(rows[i].topic), RD_KAFKA_V_KEY(rows[i].key, key_len),
                RD_KAFKA_V_VALUE(rows[i].value, rows[i].value_len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                RD_KAFKA_V_OPAQUE(&dl[i]), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
                queued++; /* hdrs now belong to the message */
                break;
            }
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !signals_stop_requested()) {
                rd_kafka_poll(r->producer, 100);
                continue;
            }
            rd_kafka_headers_destroy(hdrs);
            dl[i].state = DELIVERY_DONE;
            dl[i].err = e;
            break;
        }
    }
    return queued;
}

static size_t count_in_flight(const struct delivery *dl, size_t n)
{
    size_t pending = 0;
    for (size_t i = 0; i < n; i++)
        pending += dl[i].state == DELIVERY_IN_FLIGHT;
    return pending;
}

/* The batch gives up on its messages still in flight: take them out of the
 * producer (their reports come back at once as purged) and wait for those
 * reports, so that none is left to arrive later. Their rows stay unpublished
 * and go out again (the broker may have them already: consumers dedup). */
static void drain_batch(struct relay *r, size_t n)
{
    size_t pending = count_in_flight(r->dl, n);
    if (pending == 0)
        return;
    log_warn("giving up on %zu pending deliveries; their rows stay unpublished", pending);
    rd_kafka_purge(r->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    int64_t until = mono_ms() + RELAY_DRAIN_MS;
    while (count_in_flight(r->dl, n) > 0 && mono_ms() < until)
        rd_kafka_poll(r->producer, 50);
    if (count_in_flight(r->dl, n) > 0) {
        /* Should not happen; if it does, a report must not reach a slot the
         * next batch uses: the producer goes, with what it still holds. */
        log_error("delivery reports still missing after purging; recreating the producer");
        kafka_producer_close(r->producer, 0);
        r->producer = NULL;
        for (size_t i = 0; i < n; i++)
            if (r->dl[i].state == DELIVERY_IN_FLIGHT)
                r->dl[i].state = DELIVERY_IDLE;
    }
}

/* Publish one batch. Returns the number of rows read (0: nothing due), or -1
 * on a db error. */
static int publish_batch(struct relay *r)
{
    char err[512];
    struct outbox_row *rows = NULL;
    size_t n = 0;

    if (!outbox_fetch_due(r->db, r->cfg->relay.batch_size, &rows, &n, err, sizeof(err))) {
        log_warn("%s", err);
        return -1;
    }
    if (n == 0)
        return 0;
    struct delivery *dl = r->dl; /* n <= batch_size slots */
    int64_t *ok_ids = calloc(n, sizeof(*ok_ids));
    size_t n_ok = 0, n_failed = 0;
    if (ok_ids == NULL) {
        outbox_rows_free(rows, n);
        log_error("out of memory");
        return -1;
    }
    produce_rows(r, rows, n, dl);

    /* Wait for every delivery report: success is decided by the report, not
     * by producev. Bounded by message.timeout.ms inside librdkafka; a stop
     * request waits flush_timeout more, then leaves the rest unpublished. */
    int64_t stop_deadline = -1;
    while (count_in_flight(dl, n) > 0) {
        if (signals_stop_requested()) {
            if (stop_deadline < 0)
                stop_deadline = mono_ms() + r->cfg->relay.flush_timeout_ms;
            else if (mono_ms() > stop_deadline)
                break;
        }
        rd_kafka_poll(r->producer, 100);
    }
    drain_batch(r, n);
    for (size_t i = 0; i < n; i++) {
        if (dl[i].state != DELIVERY_DONE || dl[i].err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
            dl[i].err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            continue; /* given up on: unpublished, not a failure of the row */
        if (dl[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ok_ids[n_ok++] = dl[i].id;
        } else {
            n_failed++;
            log_warn("could not publish outbox row %" PRId64 " to %s: %s", dl[i].id, rows[i].topic,
                     rd_kafka_err2str(dl[i].err));
            if (!outbox_mark_failed(r->db, dl[i].id, rd_kafka_err2str(dl[i].err), err, sizeof(err)))
                log_warn("%s", err);
        }
    }
    int result = (int)n;
    if (!outbox_mark_published(r->db, ok_ids, n_ok, err, sizeof(err))) {
        /* Published but not marked: they go out again after the db returns;
         * consumers absorb the duplicates. */
        log_warn("%s", err);
        result = -1;
    }
    if (n_ok > 0)
        log_debug("published %zu outbox rows", n_ok);
    metrics_add(r->metrics, "cancel_retry_outbox_published_total", NULL, (int64_t)n_ok);
    metrics_add(r->metrics, "cancel_retry_outbox_publish_failures_total", NULL, (int64_t)n_failed);
    if (n_failed > 0) {
        r->failure_backoff_ms =
            r->failure_backoff_ms == 0
                ? 500
                : (r->failure_backoff_ms * 2 > 30000 ? 30000 : r->failure_backoff_ms * 2);
        log_warn("%zu of %zu rows not published; retrying in %" PRId64 " ms", n_failed, n,
                 r->failure_backoff_ms);
        pause_ms(r, r->failure_backoff_ms);
    } else {
        r->failure_backoff_ms = 0;
    }
    free(ok_ids);
    outbox_rows_free(rows, n);
    return result;
}

/* Close the scheduled pass; error says why it stopped early (NULL: done). */
static void end_pass(struct relay *r, const char *error)
{
    char err[512];
    const struct reconcile_counts *c = reconcile_pass_counts(r->pass);

    if (db_is_connected(r->db) && !reconcile_pass_end(r->pass, r->db, error, err, sizeof(err)))
        log_warn("%s", err);
    if (error != NULL)
        log_warn("reconciliation pass %lld stopped early: %s",
                 (long long)reconcile_pass_run_id(r->pass), error);
    else
        log_emit(c->new_mismatches > 0 ? LOG_WARN : LOG_INFO, NULL,
                 "reconciliation pass %lld: checked %d, %d agree, %d settling, %d could not be "
                 "checked, %d mismatch(es), %d new",
                 (long long)reconcile_pass_run_id(r->pass), c->checked, c->agree, c->settling,
                 c->unchecked, c->mismatches, c->new_mismatches);
    metrics_add(r->metrics, "cancel_retry_gateway_reconcile_passes_total", NULL, 1);
    metrics_add(r->metrics, "cancel_retry_gateway_reconcile_checked_total", "result=\"agree\"",
                c->agree);
    metrics_add(r->metrics, "cancel_retry_gateway_reconcile_checked_total", "result=\"settling\"",
                c->settling);
    metrics_add(r->metrics, "cancel_retry_gateway_reconcile_checked_total",
                "result=\"could_not_check\"", c->unchecked);
    metrics_add(r->metrics, "cancel_retry_gateway_reconcile_checked_total", "result=\"mismatch\"",
                c->mismatches);
    reconcile_pass_free(r->pass);
    r->pass = NULL;
}

/* The scheduled reconciliation, a little per turn of the loop: record the
 * answers that came, start the inquiries the rate allows, drive the HTTP
 * calls without waiting. Publishing never waits for a gateway. */
static void reconcile_turn(struct relay *r)
{
    char err[512];
    const struct config_reconcile *rc = &r->cfg->reconcile;
    int64_t now = mono_ms();

    if (!rc->enabled)
        return;
    if (r->pass == NULL) {
        if (r->next_pass_ms < 0) {
            /* The rhythm lives in the database, so that a restart or a
             * fail-over neither skips a pass nor runs one twice. */
            int64_t due_in = 0;
            if (!reconcile_store_scheduled_due_in(r->db, rc->interval_ms, &due_in, err,
                                                  sizeof(err))) {
                log_warn("%s", err);
                r->next_pass_ms = now + RELAY_PASS_RETRY_MS;
                return;
            }
            r->next_pass_ms = now + due_in;
        }
        if (now < r->next_pass_ms)
            return;
        struct reconcile_options opt = {
            .trigger = RECONCILE_TRIGGER_SCHEDULED,
            .run_by = r->worker,
            .consumer = "outbox-relay",
            .window_ms = rc->window_ms,
            .rate_per_second = rc->rate_per_second,
        };
        r->pass = reconcile_pass_new(r->cfg, &opt, err, sizeof(err));
        if (r->pass != NULL && !reconcile_pass_begin(r->pass, r->db, err, sizeof(err))) {
            reconcile_pass_free(r->pass);
            r->pass = NULL;
        }
        if (r->pass == NULL) {
            log_warn("could not start a reconciliation pass: %s", err);
            r->next_pass_ms = now + (rc->interval_ms < RELAY_PASS_RETRY_MS ? rc->interval_ms
                                                                           : RELAY_PASS_RETRY_MS);
            return;
        }
        r->next_pass_ms = now + rc->interval_ms;
        log_debug("reconciliation pass %lld started", (long long)reconcile_pass_run_id(r->pass));
    }
    int step = reconcile_pass_step(r->pass, r->db, 0, err, sizeof(err));
    if (step <= 0)
        end_pass(r, step < 0 ? err : NULL);
}

static void housekeeping(struct relay *r)
{
    char err[512];
    int64_t now = mono_ms();

    if (now >= r->next_reconcile_ms) {
        struct reconciler_stats st = {0};
        if (!reconciler_run_once(r->db, r->cfg, r->worker, &st, err, sizeof(err)))
            log_warn("reconciler pass stopped: %s", err);
        metrics_add(r->metrics, "cancel_retry_reconciled_total", "kind=\"lease_recovered\"",
                    st.leases_recovered);
        metrics_add(r->metrics, "cancel_retry_reconciled_total", "kind=\"lease_exhausted\"",
                    st.leases_exhausted);
        metrics_add(r->metrics, "cancel_retry_reconciled_total", "kind=\"trigger_rewritten\"",
                    st.triggers_rewritten);
        if (st.leases_recovered + st.leases_exhausted + st.triggers_rewritten > 0)
            log_info("reconciler: %d leases re-scheduled, %d exhausted, %d triggers rewritten",
                     st.leases_recovered, st.leases_exhausted, st.triggers_rewritten);
        r->next_reconcile_ms = now + r->cfg->relay.reconcile_interval_ms;
    }
    if (now >= r->next_purge_ms) {
        int deleted = 0, total = 0;
        do {
            if (!outbox_purge_published(r->db, r->cfg->relay.retention_ms, RELAY_PURGE_CHUNK,
                                        &deleted, err, sizeof(err))) {
                log_warn("%s", err);
                break;
            }
            total += deleted;
        } while (deleted == RELAY_PURGE_CHUNK && !signals_stop_requested());
        if (total > 0)
            log_info("deleted %d published outbox rows past retention", total);
        r->next_purge_ms = now + RELAY_PURGE_INTERVAL_MS;
    }
    reconcile_turn(r);
}

/* Sleep until a NOTIFY, the next row's due time or poll_interval, whichever
 * comes first. */
static void wait_for_work(struct relay *r)
{
    char err[512];
    int64_t due_in = -1;
    bool notified = false;

    if (!outbox_next_due_in_ms(r->db, &due_in, err, sizeof(err))) {
        log_warn("%s", err);
        return;
    }
    if (due_in == 0)
        return;
    int64_t wait = r->cfg->relay.poll_interval_ms;
    if (due_in > 0 && due_in < wait)
        wait = due_in;
    int64_t until_reconcile = r->next_reconcile_ms - mono_ms();
    if (until_reconcile < wait)
        wait = until_reconcile > 0 ? until_reconcile : 0;
    if (r->pass == NULL && r->cfg->reconcile.enabled && r->next_pass_ms >= 0) {
        int64_t until_pass = r->next_pass_ms - mono_ms();
        if (until_pass < wait)
            wait = until_pass > 0 ? until_pass : 0;
    }
    /* While a reconciliation pass runs, the wait is cut into short slices
     * that move its inquiries on; the outbox is still looked at only on a
     * NOTIFY or when its wait is over, as without a pass. */
    int64_t until = mono_ms() + wait;
    for (;;) {
        int64_t slice = until - mono_ms();
        if (slice < 0)
            slice = 0;
        if (r->pass != NULL && slice > RELAY_PASS_TURN_MS)
            slice = RELAY_PASS_TURN_MS;
        /* Serve delivery reports and the producer's internals while waiting. */
        if (r->producer != NULL)
            rd_kafka_poll(r->producer, 0);
        if (!db_wait_notify(r->db, slice, &notified, err, sizeof(err))) {
            log_warn("%s", err);
            return;
        }
        if (notified || r->pass == NULL || mono_ms() >= until || signals_stop_requested())
            return;
        reconcile_turn(r);
    }
}

int relay_run(struct relay *r)
{
    char err[512];

    if (!db_listen(r->db, RELAY_CHANNEL, err, sizeof(err))) {
        log_error("%s", err);
        return 1;
    }
    while (!signals_stop_requested()) {
        if (!db_is_connected(r->db)) {
            if (r->leader)
                log_warn("lost the database connection; this relay is no longer active");
            r->leader = false;
            if (r->pass != NULL) {
                /* Its run row stays open: the next active relay starts a
                 * pass of its own when one is due. */
                reconcile_pass_free(r->pass);
                r->pass = NULL;
            }
            if (!db_ensure_connected(r->db, err, sizeof(err)))
                break; /* stop requested while waiting */
        }
        metrics_set(r->metrics, "cancel_retry_relay_active", NULL, r->leader ? 1 : 0);
        if (!r->leader) {
            r->leader = try_lead(r);
            if (!r->leader) {
                pause_ms(r, RELAY_STANDBY_RETRY_MS);
                continue;
            }
            r->next_reconcile_ms = mono_ms();
            r->next_pass_ms = -1;
        }
        if (!ensure_producer(r)) {
            pause_ms(r, 1000);
            continue;
        }
        int n = publish_batch(r);
        if (n < 0) {
            pause_ms(r, 200);
            continue;
        }
        housekeeping(r);
        if (n < r->cfg->relay.batch_size)
            wait_for_work(r);
    }
    if (r->pass != NULL)
        end_pass(r, "the relay stopped");
    log_info("outbox-relay stopping");
    return 0;
}
