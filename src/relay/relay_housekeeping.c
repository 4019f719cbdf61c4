/*
 * relay_housekeeping: what the active outbox-relay does besides publishing,
 * on a thread and a database connection of its own: the reconciler every
 * relay.reconcile_interval, the purge of published rows past relay.retention,
 * and the scheduled reconciliation passes against the gateways
 * (reconcile_run.h).
 *
 * Why a thread: each of these can take seconds at volume (a reconciler pass
 * over many expired leases, a purge of a day of published rows, a slow
 * gateway), and run between two batches on the publishing connection they
 * stalled publishing for that long. Here they only share the machine.
 *
 * They run only while the relay holds the lease, as before: the publishing
 * thread shares the lease's epoch and the monotonic time it is valid until
 * (relay_housekeeping_lead) after every take, renewal and loss, and this
 * thread checks it before every step (each reconciler pass, each purge
 * chunk, each turn of a reconciliation pass). A relay that froze wakes up
 * with its lease run out in both threads at once.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/signals.h"
#include "core/reconciler.h"
#include "core/reconciler.h"
#include "reconcile/reconcile_run.h"
#include "reconcile/reconcile_run.h"
#include "relay/relay_internal.h"
#include "relay/relay_internal.h"
#include "store/db.h"
#include "store/db.h"
#include "store/outbox.h"
#include "store/outbox.h"
#include "store/reconcile_store.h"

#define RELAY_PURGE_INTERVAL_MS (10 * 60 * 1000)
#define RELAY_PURGE_CHUNK       1000
/* A turn of a reconciliation pass: how long it waits on the inquiries. */
#define RELAY_PASS_TURN_MS 50
/* Wait before trying again a pass that could not start. */
#define RELAY_PASS_RETRY_MS (60 * 1000)
/* Longest sleep while idle or on standby: how soon a stop is noticed at the
 * latest (a stop or a new lease also wake it at once). */
#define RELAY_HK_IDLE_MS 1000

struct relay_housekeeping {
    const struct config *cfg;
    const char *worker;      /* borrowed */
    struct metrics *metrics; /* borrowed, may be NULL */
    struct db *db;           /* this thread's own connection */
    pthread_t thread;

    /* Shared with the publishing thread, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int64_t epoch;          /* of the lease held, 0 on standby */
    int64_t valid_until_ms; /* monotonic: the lease cannot have ended before */
    bool stop;

    /* This thread's alone. */
    int64_t seen_epoch; /* the lease the schedules below belong to */
    int64_t next_reconcile_ms;
    int64_t next_purge_ms;
    struct reconcile_pass *pass; /* in progress, or NULL */
    int64_t next_pass_ms;        /* -1: ask the database */
};

/* The lease as last shared, and whether a stop was asked. */
static bool hk_leading(struct relay_housekeeping *hk, int64_t *epoch_out, bool *stop_out)
{
    pthread_mutex_lock(&hk->lock);
    int64_t epoch = hk->epoch;
    bool valid = epoch > 0 && mono_ms() < hk->valid_until_ms;
    bool stop = hk->stop;
    pthread_mutex_unlock(&hk->lock);
    if (epoch_out != NULL)
        *epoch_out = epoch;
    if (stop_out != NULL)
        *stop_out = stop;
    return valid && !stop && !signals_stop_requested();
}

/* Sleep up to ms, or until the publishing thread shares a new lease or asks
 * for a stop. */
static void hk_sleep(struct relay_housekeeping *hk, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&hk->lock);
    if (!hk->stop)
        pthread_cond_timedwait(&hk->wake, &hk->lock, &until);
    pthread_mutex_unlock(&hk->lock);
}

/* Close the scheduled pass; error says why it stopped early (NULL: done). */
static void end_pass(struct relay_housekeeping *hk, const char *error)
{
    char err[512];
    const struct reconcile_counts *c = reconcile_pass_counts(hk->pass);

    if (db_is_connected(hk->db) && !reconcile_pass_end(hk->pass, hk->db, error, err, sizeof(err)))
        log_warn("%s", err);
    if (error != NULL)
        log_warn("reconciliation pass %lld stopped early: %s",
                 (long long)reconcile_pass_run_id(hk->pass), error);
    else
        log_emit(c->new_mismatches > 0 ? LOG_WARN : LOG_INFO, NULL,
                 "reconciliation pass %lld: checked %d, %d agree, %d settling, %d could not be "
                 "checked, %d mismatch(es), %d new",
                 (long long)reconcile_pass_run_id(hk->pass), c->checked, c->agree, c->settling,
                 c->unchecked, c->mismatches, c->new_mismatches);
    metrics_add(hk->metrics, "cancel_retry_gateway_reconcile_passes_total", NULL, 1);
    metrics_add(hk->metrics, "cancel_retry_gateway_reconcile_checked_total", "result=\"agree\"",
                c->agree);
    metrics_add(hk->metrics, "cancel_retry_gateway_reconcile_checked_total", "result=\"settling\"",
                c->settling);
    metrics_add(hk->metrics, "cancel_retry_gateway_reconcile_checked_total",
                "result=\"could_not_check\"", c->unchecked);
    metrics_add(hk->metrics, "cancel_retry_gateway_reconcile_checked_total", "result=\"mismatch\"",
                c->mismatches);
    reconcile_pass_free(hk->pass);
    hk->pass = NULL;
}

/* The scheduled reconciliation, one turn: start a pass when one is due,
 * record the answers that came, start the inquiries the rate allows, drive
 * the HTTP calls for a short while. */
static void reconcile_turn(struct relay_housekeeping *hk)
{
    char err[512];
    const struct config_reconcile *rc = &hk->cfg->reconcile;
    int64_t now = mono_ms();

    if (!rc->enabled)
        return;
    if (hk->pass == NULL) {
        if (hk->next_pass_ms < 0) {
            /* The rhythm lives in the database, so that a restart or a
             * fail-over neither skips a pass nor runs one twice. */
            int64_t due_in = 0;
            if (!reconcile_store_scheduled_due_in(hk->db, rc->interval_ms, &due_in, err,
                                                  sizeof(err))) {
                log_warn("%s", err);
                hk->next_pass_ms = now + RELAY_PASS_RETRY_MS;
                return;
            }
            hk->next_pass_ms = now + due_in;
        }
        if (now < hk->next_pass_ms)
            return;
        struct reconcile_options opt = {
            .trigger = RECONCILE_TRIGGER_SCHEDULED,
            .run_by = hk->worker,
            .consumer = "outbox-relay",
            .window_ms = rc->window_ms,
            .rate_per_second = rc->rate_per_second,
        };
        hk->pass = reconcile_pass_new(hk->cfg, &opt, err, sizeof(err));
        if (hk->pass != NULL && !reconcile_pass_begin(hk->pass, hk->db, err, sizeof(err))) {
            reconcile_pass_free(hk->pass);
            hk->pass = NULL;
        }
        if (hk->pass == NULL) {
            log_warn("could not start a reconciliation pass: %s", err);
            hk->next_pass_ms = now + (rc->interval_ms < RELAY_PASS_RETRY_MS ? rc->interval_ms
                                                                            : RELAY_PASS_RETRY_MS);
            return;
        }
        hk->next_pass_ms = now + rc->interval_ms;
        log_debug("reconciliation pass %lld started", (long long)reconcile_pass_run_id(hk->pass));
    }
    int step = reconcile_pass_step(hk->pass, hk->db, RELAY_PASS_TURN_MS, err, sizeof(err));
    if (step <= 0)
        end_pass(hk, step < 0 ? err : NULL);
}

static void run_reconciler(struct relay_housekeeping *hk)
{
    char err[512];
    struct reconciler_stats st = {0};

    if (!reconciler_run_once(hk->db, hk->cfg, hk->worker, &st, err, sizeof(err)))
        log_warn("reconciler pass stopped: %s", err);
    metrics_add(hk->metrics, "cancel_retry_reconciled_total", "kind=\"lease_recovered\"",
                st.leases_recovered);
    metrics_add(hk->metrics, "cancel_retry_reconciled_total", "kind=\"lease_exhausted\"",
                st.leases_exhausted);
    metrics_add(hk->metrics, "cancel_retry_reconciled_total", "kind=\"trigger_rewritten\"",
                st.triggers_rewritten);
    if (st.leases_recovered + st.leases_exhausted + st.triggers_rewritten > 0)
        log_info("reconciler: %d leases re-scheduled, %d exhausted, %d triggers rewritten",
                 st.leases_recovered, st.leases_exhausted, st.triggers_rewritten);
}

/* The gauges only the active relay can tell, refreshed with the
 * reconciler (every reconcile_interval); a standby shows 0 (see
 * set_backlog(hk, 0, 0, 0) in hk_main), so max() over relays is the
 * active one's. */
static void set_backlog(struct relay_housekeeping *hk, int64_t due, int64_t age_ms, int64_t open)
{
    metrics_set(hk->metrics, "cancel_retry_outbox_due_rows", NULL, due);
    metrics_set(hk->metrics, "cancel_retry_outbox_oldest_due_seconds", NULL, age_ms / 1000);
    metrics_set(hk->metrics, "cancel_retry_reconcile_open_mismatches", NULL, open);
}

static void read_backlog(struct relay_housekeeping *hk)
{
    char err[512];
    int64_t due = 0, age_ms = 0, open = 0;

    if (!outbox_backlog(hk->db, &due, &age_ms, err, sizeof(err)) ||
        !reconcile_store_open_count(hk->db, &open, err, sizeof(err))) {
        log_warn("%s", err);
        return;
    }
    set_backlog(hk, due, age_ms, open);
}

/* Delete published rows past retention in chunks (short transactions), as
 * long as this relay leads. */
static void purge(struct relay_housekeeping *hk)
{
    char err[512];
    int deleted = 0, total = 0;

    do {
        if (!outbox_purge_published(hk->db, hk->cfg->relay.retention_ms, RELAY_PURGE_CHUNK,
                                    &deleted, err, sizeof(err))) {
            log_warn("%s", err);
            break;
        }
        total += deleted;
    } while (deleted == RELAY_PURGE_CHUNK && hk_leading(hk, NULL, NULL));
    if (total > 0)
        log_info("deleted %d published outbox rows past retention", total);
}

/* One turn while leading: whatever is due. Returns how long to sleep. */
static int64_t turn(struct relay_housekeeping *hk, int64_t epoch)
{
    char err[512];
    int64_t now = mono_ms();

    if (epoch != hk->seen_epoch) {
        /* A new lease: the reconciler runs at once, the pass rhythm is
         * asked of the database; the purge keeps its own. */
        hk->seen_epoch = epoch;
        hk->next_reconcile_ms = now;
        hk->next_pass_ms = -1;
    }
    if (!db_is_connected(hk->db) && !db_ensure_connected(hk->db, err, sizeof(err)))
        return 0; /* a stop was requested */
    if (now >= hk->next_reconcile_ms) {
        run_reconciler(hk);
        read_backlog(hk);
        hk->next_reconcile_ms = mono_ms() + hk->cfg->relay.reconcile_interval_ms;
    }
    if (mono_ms() >= hk->next_purge_ms && hk_leading(hk, NULL, NULL)) {
        purge(hk);
        hk->next_purge_ms = mono_ms() + RELAY_PURGE_INTERVAL_MS;
    }
    if (hk_leading(hk, NULL, NULL))
        reconcile_turn(hk);
    if (hk->pass != NULL)
        return 0; /* the pass's own step waited */
    now = mono_ms();
    int64_t next =
        hk->next_reconcile_ms < hk->next_purge_ms ? hk->next_reconcile_ms : hk->next_purge_ms;
    if (hk->cfg->reconcile.enabled && hk->next_pass_ms >= 0 && hk->next_pass_ms < next)
        next = hk->next_pass_ms;
    int64_t wait = next - now;
    return wait < 0 ? 0 : (wait > RELAY_HK_IDLE_MS ? RELAY_HK_IDLE_MS : wait);
}

static void *hk_main(void *arg)
{
    struct relay_housekeeping *hk = arg;

    for (;;) {
        int64_t epoch = 0;
        bool stop = false;
        bool leading = hk_leading(hk, &epoch, &stop);
        if (stop || signals_stop_requested())
            break;
        if (!leading) {
            if (hk->pass != NULL) {
                /* Its run row stays open: the next active relay starts a
                 * pass of its own when one is due. */
                reconcile_pass_free(hk->pass);
                hk->pass = NULL;
            }
            set_backlog(hk, 0, 0, 0);
            hk_sleep(hk, RELAY_HK_IDLE_MS);
            continue;
        }
        int64_t wait = turn(hk, epoch);
        if (wait > 0)
            hk_sleep(hk, wait);
    }
    if (hk->pass != NULL)
        end_pass(hk, "the relay stopped");
    return NULL;
}

struct relay_housekeeping *relay_housekeeping_start(const struct config *cfg, const char *worker,
                                                    struct metrics *metrics, char *err,
                                                    size_t errlen)
{
    struct relay_housekeeping *hk = calloc(1, sizeof(*hk));
    if (hk == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    hk->cfg = cfg;
    hk->worker = worker;
    hk->metrics = metrics;
    hk->next_pass_ms = -1;
    hk->db = db_new(&cfg->database, "outbox-relay housekeeping");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool sync_ok = pthread_mutex_init(&hk->lock, NULL) == 0;
    if (sync_ok && pthread_cond_init(&hk->wake, &ca) != 0) {
        pthread_mutex_destroy(&hk->lock);
        sync_ok = false;
    }
    pthread_condattr_destroy(&ca);
    if (hk->db == NULL || !sync_ok) {
        snprintf(err, errlen, "could not set up the relay's housekeeping");
        db_free(hk->db);
        free(hk);
        return NULL;
    }
    /* Signals are the publishing thread's: its waits end on them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&hk->thread, NULL, hk_main, hk);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "could not start the relay's housekeeping thread: %s", strerror(rc));
        pthread_cond_destroy(&hk->wake);
        pthread_mutex_destroy(&hk->lock);
        db_free(hk->db);
        free(hk);
        return NULL;
    }
    return hk;
}

void relay_housekeeping_lead(struct relay_housekeeping *hk, const struct relay_lease *lease)
{
    if (hk == NULL)
        return;
    pthread_mutex_lock(&hk->lock);
    bool changed = hk->epoch != lease->epoch;
    hk->epoch = lease->epoch;
    hk->valid_until_ms = lease->valid_until_ms;
    if (changed)
        pthread_cond_signal(&hk->wake);
    pthread_mutex_unlock(&hk->lock);
}

void relay_housekeeping_stop(struct relay_housekeeping *hk)
{
    if (hk == NULL)
        return;
    pthread_mutex_lock(&hk->lock);
    hk->stop = true;
    pthread_cond_signal(&hk->wake);
    pthread_mutex_unlock(&hk->lock);
    pthread_join(hk->thread, NULL);
    pthread_cond_destroy(&hk->wake);
    pthread_mutex_destroy(&hk->lock);
    db_free(hk->db);
    free(hk);
}
