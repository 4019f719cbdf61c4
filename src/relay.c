/*
 * relay: the loop of the outbox-relay, its leadership and housekeeping. A
 * batch is relay_batch.c, the lease relay_lease.c. See relay.h.
 */
#include "relay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "kafka.h"
#include "log.h"
#include "outbox.h"
#include "reconcile_run.h"
#include "reconciler.h"
#include "relay_internal.h"
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
}

int64_t relay_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    r->producer = kafka_producer_new(r->cfg, relay_on_delivery, r, err, sizeof(err));
    if (r->producer == NULL) {
        log_error("%s", err);
        return false;
    }
    return true;
}

struct outbox_fence relay_fence(const struct relay *r)
{
    struct outbox_fence f = {RELAY_LEASE_NAME, r->lease.holder, r->lease.epoch};
    return f;
}

static void set_active_metrics(struct relay *r)
{
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
    if (r->pass != NULL) {
        /* Its run row stays open: the next active relay starts a pass of
         * its own when one is due. */
        reconcile_pass_free(r->pass);
        r->pass = NULL;
    }
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
    if (relay_lease_renew_due(&r->lease, relay_mono_ms())) {
        switch (relay_lease_renew(&r->lease, r->db, err, sizeof(err))) {
        case RELAY_LEASE_HELD:
            break;
        case RELAY_LEASE_OTHER:
            stand_by(r, epoch, err);
            return false;
        case RELAY_LEASE_DB_ERROR:
            log_warn("%s; publishing stops when the lease runs out", err);
            break;
        }
    }
    if (!relay_lease_valid(&r->lease, relay_mono_ms())) {
        stand_by(r, epoch, "its lease ran out before a renewal got through");
        return false;
    }
    return true;
}

void relay_pause_ms(struct relay *r, int64_t ms)
{
    bool leading = r->lease.epoch > 0;
    int64_t until = relay_mono_ms() + ms;
    while (!signals_stop_requested() && relay_mono_ms() < until) {
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
    int64_t now = relay_mono_ms();

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
    int64_t now = relay_mono_ms();

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
    /* Each step below runs only while this relay still leads: a relay that
     * froze in the middle of housekeeping wakes up and stops here. */
    if (now >= r->next_purge_ms && relay_keep_lead(r)) {
        int deleted = 0, total = 0;
        do {
            if (!outbox_purge_published(r->db, r->cfg->relay.retention_ms, RELAY_PURGE_CHUNK,
                                        &deleted, err, sizeof(err))) {
                log_warn("%s", err);
                break;
            }
            total += deleted;
        } while (deleted == RELAY_PURGE_CHUNK && !signals_stop_requested() && relay_keep_lead(r));
        if (total > 0)
            log_info("deleted %d published outbox rows past retention", total);
        r->next_purge_ms = now + RELAY_PURGE_INTERVAL_MS;
    }
    if (relay_keep_lead(r))
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
    int64_t until_reconcile = r->next_reconcile_ms - relay_mono_ms();
    if (until_reconcile < wait)
        wait = until_reconcile > 0 ? until_reconcile : 0;
    if (r->pass == NULL && r->cfg->reconcile.enabled && r->next_pass_ms >= 0) {
        int64_t until_pass = r->next_pass_ms - relay_mono_ms();
        if (until_pass < wait)
            wait = until_pass > 0 ? until_pass : 0;
    }
    /* The lease is renewed by the loop, so the wait ends when that is due. */
    int64_t until_renew = r->lease.renew_at_ms - relay_mono_ms();
    if (until_renew < wait)
        wait = until_renew > 0 ? until_renew : 0;
    /* While a reconciliation pass runs, the wait is cut into short slices
     * that move its inquiries on; the outbox is still looked at only on a
     * NOTIFY or when its wait is over, as without a pass. */
    int64_t until = relay_mono_ms() + wait;
    for (;;) {
        int64_t slice = until - relay_mono_ms();
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
        if (notified || r->pass == NULL || relay_mono_ms() >= until || signals_stop_requested())
            return;
        if (!relay_keep_lead(r))
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
            /* The session the lease was taken on is gone: a standby may
             * take it over at once, so this relay stops publishing now and
             * competes for the lease again once reconnected. */
            relay_step_down(r, "lost the database connection");
            if (!db_ensure_connected(r->db, err, sizeof(err)))
                break; /* stop requested while waiting */
        }
        set_active_metrics(r);
        if (r->lease.epoch <= 0) {
            if (!try_lead(r)) {
                relay_pause_ms(r, RELAY_STANDBY_RETRY_MS);
                continue;
            }
            r->next_reconcile_ms = relay_mono_ms();
            r->next_pass_ms = -1;
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
        housekeeping(r);
        if (n < r->cfg->relay.batch_size && relay_keep_lead(r))
            wait_for_work(r);
    }
    if (r->pass != NULL)
        end_pass(r, "the relay stopped");
    /* Every batch drained its deliveries, so nothing of ours is left in the
     * producer: the next relay may start at once rather than when the lease
     * lapses. */
    relay_lease_release(&r->lease, r->db);
    set_active_metrics(r);
    log_info("outbox-relay stopping");
    return 0;
}
