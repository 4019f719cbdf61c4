/*
 * relay: the loop of the outbox-relay and its leadership. A batch is
 * relay_batch.c, the lease relay_lease.c, the reconciler, purge and
 * reconciliation passes relay_housekeeping.c. See relay.h.
 */
#include "relay/relay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/signals.h"
#include "kafka/kafka.h"
#include "relay/relay_internal.h"
#include "store/db.h"
#include "store/outbox.h"

#define RELAY_CHANNEL          "cancel_retry_outbox"
#define RELAY_STANDBY_RETRY_MS 1000

void relay_set_metrics(struct relay *r, struct metrics *m)
{
    r->metrics = m;
    metrics_describe(m, "cancel_retry_outbox_published_total", "counter",
                     "outbox rows published (delivery report succeeded)");
    metrics_describe(m, "cancel_retry_outbox_publish_failures_total", "counter",
                     "outbox rows whose publish failed for now (they are retried)");
    metrics_describe(m, "cancel_retry_outbox_parked_total", "counter",
                     "outbox rows parked because the broker can never accept them, by reason");
    metrics_describe(m, "cancel_retry_relay_active", "gauge",
                     "1 while this relay holds the lease and publishes, 0 on standby");
    metrics_describe(m, "cancel_retry_relay_lease_epoch", "gauge",
                     "the fencing token of the lease this relay holds, 0 on standby");
    metrics_describe(m, "cancel_retry_relay_lease_lost_total", "counter",
                     "times this relay stopped being the active one without shutting down");
    metrics_describe(m, "cancel_retry_reconciled_total", "counter",
                     "requests the reconciler re-scheduled or ended, by kind");
    metrics_describe(m, "cancel_retry_producer_recreated_total", "counter",
                     "Kafka producers recreated after a fatal error");
    metrics_describe(m, "cancel_retry_gateway_reconcile_passes_total", "counter",
                     "scheduled reconciliation passes against the gateways, finished");
    metrics_describe(m, "cancel_retry_gateway_reconcile_checked_total", "counter",
                     "requests compared with the gateway's record, by result");
    metrics_describe(m, "cancel_retry_outbox_due_rows", "gauge",
                     "outbox rows due and not yet published (active relay; 0 on standby)");
    metrics_describe(m, "cancel_retry_outbox_oldest_due_seconds", "gauge",
                     "how long the oldest due unpublished outbox row has waited (active relay)");
    metrics_describe(m, "cancel_retry_reconcile_open_mismatches", "gauge",
                     "reconciliation mismatches still open (active relay; 0 on standby)");
    db_set_metrics(r->db, m);
}

struct relay *relay_new(const struct config *cfg, const char *worker)
{
    struct relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = cfg;
    r->worker = worker;
    relay_lease_init(&r->lease, worker, cfg->relay.leader_lease_ms);
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
    /* The producer first: its final flush may still serve reports, which
     * write into r->dl. */
    relay_close_producer(r, (int)r->cfg->relay.flush_timeout_ms);
    free(r->dl);
    relay_drop_ahead(r);
    db_free(r->db);
    free(r);
}

void relay_close_producer(struct relay *r, int flush_ms)
{
    for (size_t i = 0; i < sizeof(r->topics) / sizeof(r->topics[0]); i++) {
        if (r->topics[i] != NULL)
            rd_kafka_topic_destroy(r->topics[i]);
        r->topics[i] = NULL;
    }
    if (r->producer != NULL)
        kafka_producer_close(r->producer, flush_ms);
    r->producer = NULL;
}

/* A new producer knows no topic: the first message to each waited for its
 * metadata, and librdkafka rate-limits those requests, so the first Outcome
 * after a start waited about a second behind the first retry event (seen
 * as "answered -> outcome published" of a lone request in the benchmark).
 * Asking for the metadata of every topic up front, and keeping the topics
 * open, spends that wait once, before anything is due. A topic that cannot
 * be asked about now is simply asked about on its first message. */
static void open_topics(struct relay *r)
{
    const char *names[] = {r->cfg->topics.retry.name, r->cfg->topics.outcome.name,
                           r->cfg->topics.dlq.name, r->cfg->topics.cancel_failed.name};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        r->topics[i] = rd_kafka_topic_new(r->producer, names[i], NULL);
        if (r->topics[i] == NULL)
            continue;
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(r->producer, 0, r->topics[i], &md, 2000) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            md != NULL)
            rd_kafka_metadata_destroy(md);
    }
}

static bool ensure_producer(struct relay *r)
{
    char err[512], fatal[512];

    if (r->producer != NULL &&
        kafka_fatal_error_text(r->producer, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Unusable for good; messages still queued in it are lost to it, not
         * to us: their rows are unpublished and go out again. */
        log_error("the Kafka producer hit a fatal error, recreating it: %s", fatal);
        relay_close_producer(r, 0);
        metrics_add(r->metrics, "cancel_retry_producer_recreated_total", NULL, 1);
    }
    if (r->producer != NULL)
        return true;
    r->producer = kafka_producer_new(r->cfg, relay_on_delivery, r, r->metrics, err, sizeof(err));
    if (r->producer == NULL) {
        log_error("%s", err);
        return false;
    }
    open_topics(r);
    return true;
}

struct outbox_fence relay_fence(const struct relay *r)
{
    struct outbox_fence f = {RELAY_LEASE_NAME, r->lease.holder, r->lease.epoch};
    return f;
}

static void set_active_metrics(struct relay *r)
{
    relay_housekeeping_lead(r->hk, &r->lease);
    metrics_set(r->metrics, "cancel_retry_relay_active", NULL, r->lease.epoch > 0 ? 1 : 0);
    metrics_set(r->metrics, "cancel_retry_relay_lease_epoch", NULL, r->lease.epoch);
}

/* Stop being the active relay, the lease (epoch) being lost or given up. */
static void stand_by(struct relay *r, int64_t epoch, const char *why)
{
    log_warn("this relay is no longer active (lease epoch %" PRId64 "): %s; standing by", epoch,
             why);
    relay_lease_drop(&r->lease);
    metrics_add(r->metrics, "cancel_retry_relay_lease_lost_total", NULL, 1);
    set_active_metrics(r);
}

void relay_step_down(struct relay *r, const char *why)
{
    if (r->lease.epoch > 0)
        stand_by(r, r->lease.epoch, why);
}

bool relay_keep_lead(struct relay *r)
{
    char err[512];
    int64_t epoch = r->lease.epoch;

    if (epoch <= 0)
        return false;
    if (relay_lease_renew_due(&r->lease, mono_ms())) {
        /* The renewal needs the connection; what is in flight on it may
         * also tell that the lease is gone. */
        relay_db_idle(r);
        if (r->lease.epoch <= 0)
            return false;
        switch (relay_lease_renew(&r->lease, r->db, err, sizeof(err))) {
        case RELAY_LEASE_HELD:
            relay_housekeeping_lead(r->hk, &r->lease);
            break;
        case RELAY_LEASE_OTHER:
            stand_by(r, epoch, err);
            return false;
        case RELAY_LEASE_DB_ERROR:
            log_warn("%s; publishing stops when the lease runs out", err);
            break;
        }
    }
    if (!relay_lease_valid(&r->lease, mono_ms())) {
        stand_by(r, epoch, "its lease ran out before a renewal got through");
        return false;
    }
    return true;
}

void relay_pause_ms(struct relay *r, int64_t ms)
{
    bool leading = r->lease.epoch > 0;
    int64_t until = mono_ms() + ms;
    while (!signals_stop_requested() && mono_ms() < until) {
        if (leading && !relay_keep_lead(r))
            return;
        if (r->producer != NULL) {
            rd_kafka_poll(r->producer, 100);
        } else {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* Become the active relay if no other is: take the lease when it is free,
 * lapsed, or its holder's database session is gone. */
static bool try_lead(struct relay *r)
{
    char err[512];
    struct relay_lease_takeover why;

    switch (relay_lease_acquire(&r->lease, r->db, &why, err, sizeof(err))) {
    case RELAY_LEASE_HELD:
        break;
    case RELAY_LEASE_OTHER:
        return false;
    case RELAY_LEASE_DB_ERROR:
        log_warn("%s", err);
        return false;
    }
    if (why.previous[0] == '\0')
        log_info("this relay is now active (%s), lease epoch %" PRId64, r->worker, r->lease.epoch);
    else
        log_info("this relay is now active (%s), lease epoch %" PRId64 ", taken over from %s: %s",
                 r->worker, r->lease.epoch, why.previous,
                 why.released       ? "it released the lease"
                 : why.session_gone ? "its database session is gone"
                                    : "its lease ran out");
    set_active_metrics(r);
    return true;
}

/* Sleep until a NOTIFY, the next row's due time, poll_interval or the
 * lease's renewal, whichever comes first. */
static void wait_for_work(struct relay *r, int fetched)
{
    char err[512];
    int64_t due_in = -1;
    bool notified = false;

    relay_db_idle(r);
    if (r->lease.epoch <= 0)
        return;
    if (!outbox_next_due_in_ms(r->db, &due_in, err, sizeof(err))) {
        log_warn("%s", err);
        return;
    }
    /* Due rows that the last read did not return (not yet visible to it,
     * due within the millisecond the query rounds away) come within a
     * millisecond: wait that long, or for a NOTIFY. Going round at once
     * made the relay spin: 525,687 reads and next-due queries for 10,000
     * requests in a benchmark. */
    if (due_in == 0 && fetched > 0)
        return;
    if (due_in == 0)
        due_in = 1;
    int64_t wait = r->cfg->relay.poll_interval_ms;
    if (due_in > 0 && due_in < wait)
        wait = due_in;
    /* The lease is renewed by the loop, so the wait ends when that is due. */
    int64_t until_renew = r->lease.renew_at_ms - mono_ms();
    if (until_renew < wait)
        wait = until_renew > 0 ? until_renew : 0;
    /* Serve delivery reports and the producer's internals before sleeping. */
    if (r->producer != NULL)
        rd_kafka_poll(r->producer, 0);
    if (!db_wait_notify(r->db, wait, &notified, err, sizeof(err)))
        log_warn("%s", err);
}

int relay_run(struct relay *r)
{
    char err[512];

    if (!db_listen(r->db, RELAY_CHANNEL, err, sizeof(err))) {
        log_error("%s", err);
        return 1;
    }
    r->hk = relay_housekeeping_start(r->cfg, r->worker, r->metrics, err, sizeof(err));
    if (r->hk == NULL) {
        log_error("%s", err);
        return 1;
    }
    while (!signals_stop_requested()) {
        /* A mark in flight is taken while the next batch travels; only
         * the statements below need the connection to themselves. */
        if (r->lease.epoch <= 0 || !db_is_connected(r->db))
            relay_db_idle(r);
        if (!db_is_connected(r->db)) {
            /* The session the lease was taken on is gone: a standby may
             * take it over at once, so this relay stops publishing now and
             * competes for the lease again once reconnected. */
            relay_step_down(r, "lost the database connection");
            if (!db_ensure_connected(r->db, err, sizeof(err)))
                break; /* stop requested while waiting */
        }
        set_active_metrics(r);
        /* A standby makes its producer too: its readiness then says that
         * it could take over (broker reachable), and a takeover does not
         * wait for the first metadata. */
        if (r->producer == NULL)
            (void)ensure_producer(r);
        if (r->lease.epoch <= 0) {
            if (!try_lead(r)) {
                relay_pause_ms(r, RELAY_STANDBY_RETRY_MS);
                continue;
            }
            r->after_id = 0;
        }
        if (!relay_keep_lead(r))
            continue;
        if (!ensure_producer(r)) {
            relay_pause_ms(r, 1000);
            continue;
        }
        int n = relay_publish_batch(r);
        if (!relay_keep_lead(r))
            continue;
        if (n < 0) {
            relay_pause_ms(r, 200);
            continue;
        }
        if (n < r->cfg->relay.batch_size && relay_keep_lead(r))
            wait_for_work(r, n);
    }
    relay_db_idle(r);
    relay_drop_ahead(r);
    /* Housekeeping first: it ends a reconciliation pass in progress while
     * the lease is still ours. */
    relay_housekeeping_stop(r->hk);
    r->hk = NULL;
    /* Every batch drained its deliveries, so nothing of ours is left in the
     * producer: the next relay may start at once rather than when the lease
     * lapses. */
    relay_lease_release(&r->lease, r->db);
    set_active_metrics(r);
    log_info("outbox-relay stopping");
    return 0;
}
