/*
 * alert_engine: consume, record, post per webhook, commit. See alert_engine.h.
 *
 * State: every consumed message is taken into the offset tracker. One that
 * needs a post becomes an item: it waits in the queue of its webhook (the
 * head is the one being posted), or, while the database is away, in the
 * stalled list (not yet recorded, or posted but not yet marked). An item is
 * finished when its row says SENT, FAILED_PERMANENT, DIGESTED or was already
 * done; only then is its offset done, and a partition's offset is committed
 * up to its oldest unfinished message.
 */
#include "alert/alert_engine.h"
#include "alert/alert_engine_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert/alert.h"
#include "alert/alert_digest.h"
#include "alert/slack.h"
#include "base/clock.h"
#include "base/http.h"
#include "base/log.h"
#include "base/ratelimit.h"
#include "base/signals.h"
#include "event/dlq.h"
#include "kafka/consumer.h"
#include "kafka/kafka.h"
#include "kafka/offset_tracker.h"
#include "store/alert_store.h"

void alert_engine_set_metrics(struct alert_engine *e, struct metrics *m)
{
    e->metrics = m;
    metrics_describe(m, "cancel_retry_slack_posts_total", "counter",
                     "Slack messages accepted (single alerts and digests)");
    metrics_describe(m, "cancel_retry_slack_permanent_failures_total", "counter",
                     "alerts Slack refused for good (configuration faults; see cancelctl status)");
    metrics_describe(m, "cancel_retry_alerts_digested_total", "counter",
                     "alerts folded into a digest instead of a message of their own");
    metrics_describe(m, "cancel_retry_slack_failed_posts_total", "counter",
                     "Slack posts that failed for now and are tried again, by kind");
    metrics_describe(m, "cancel_retry_dlq_messages_total", "counter",
                     "dead letters read from the DLQ topic (read again after a rebalance: again)");
    metrics_describe(m, "cancel_retry_alerts_waiting", "gauge",
                     "alerts recorded and waiting for their webhook, by webhook");
    db_set_metrics(e->db, m);
}

void alert_item_free(struct alert_item *it)
{
    if (it == NULL)
        return;
    alert_clear(it->a);
    free(it->a);
    free(it);
}

static void free_list(struct alert_item *it)
{
    while (it != NULL) {
        struct alert_item *next = it->next;
        alert_item_free(it);
        it = next;
    }
}

struct alert_engine *alert_engine_new(const struct config *cfg, struct db *db, char *err,
                                      size_t errlen)
{
    const struct config_slack *s = &cfg->alerts.slack;

    if (!s->enabled || s->webhook_url == NULL) {
        snprintf(err, errlen, "cannot start alerts: alerts.slack.enabled is false");
        return NULL;
    }
    struct alert_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(err, errlen, "could not start alerts: out of memory");
        return NULL;
    }
    e->cfg = cfg;
    e->slack = s;
    e->db = db;
    e->db_backoff_ms = ALERT_ENGINE_BACKOFF_MIN_MS;
    e->nhooks = 1 + s->nroutes;
    e->hooks = calloc(e->nhooks, sizeof(*e->hooks));
    e->tracker = offset_tracker_new();
    if (e->hooks == NULL || e->tracker == NULL ||
        !alert_window_init(&e->window, s->digest_threshold, s->digest_window_ms))
        goto oom;
    for (size_t i = 0; i < e->nhooks; i++) {
        struct alert_webhook *h = &e->hooks[i];
        h->url = i == 0 ? s->webhook_url : s->routes[i - 1].webhook_url;
        if (i == 0)
            snprintf(h->label, sizeof(h->label), "default");
        else
            snprintf(h->label, sizeof(h->label), "route[%zu]", i - 1);
        /* Slack's limit is per webhook: two routes to one URL share the
         * first one's bucket (see bucket()); each still gets its own. */
        h->rl = ratelimit_new(s->rate_per_second, s->burst);
        if (h->rl == NULL)
            goto oom;
    }
    e->http = http_client_new(err, errlen);
    if (e->http == NULL) {
        alert_engine_free(e);
        return NULL;
    }
    return e;
oom:
    alert_engine_free(e);
    snprintf(err, errlen, "could not start alerts: out of memory");
    return NULL;
}

void alert_engine_free(struct alert_engine *e)
{
    if (e == NULL)
        return;
    /* First: aborting a transfer in flight writes into its webhook's answer. */
    http_client_free(e->http);
    for (size_t i = 0; e->hooks != NULL && i < e->nhooks; i++) {
        ratelimit_free(e->hooks[i].rl);
        free_list(e->hooks[i].head);
        alert_digest_free(e->hooks[i].digest);
    }
    free(e->hooks);
    free_list(e->stalled);
    offset_tracker_free(e->tracker);
    alert_window_free(&e->window);
    free(e);
}

struct alert_webhook *alert_engine_hook_for(struct alert_engine *e, const char *gateway,
                                            const char *reason)
{
    return &e->hooks[alert_route(e->slack, gateway, reason) + 1];
}

void alert_engine_fill_ctx(struct log_ctx *lc, const struct alert *a)
{
    lc->request_id = a->view.request_id;
    lc->correlation_id = a->view.correlation_id;
    lc->topic = a->view.topic;
    lc->partition = a->view.partition;
    lc->offset = a->view.offset;
}

/* ---- offsets ---- */

static void commit_offset(struct alert_engine *e, const char *topic, int32_t partition,
                          int64_t offset)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
    /* Async while running: a lost commit means a redelivery, which the
     * alert_sent row turns into a no-op. Sync while draining, so that what
     * finished is committed before the consumer leaves the group. */
    rd_kafka_resp_err_t err = rd_kafka_commit(e->rk, list, e->draining ? 0 : 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("could not commit offset %lld of %s/%d: %s", (long long)offset, topic,
                 (int)partition, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
}

/* The message at topic/partition/offset needs nothing more. */
static void offset_done(struct alert_engine *e, const char *topic, int32_t partition,
                        int64_t offset)
{
    int64_t commit = offset_tracker_done(e->tracker, topic, partition, offset);
    if (commit >= 0)
        commit_offset(e, topic, partition, commit);
}

void alert_item_finish(struct alert_engine *e, struct alert_item *it)
{
    offset_done(e, it->a->view.topic, it->a->view.partition, it->a->view.offset);
    alert_item_free(it);
}

/* ---- the database ---- */

/* Park it until the database answers again; reading stops meanwhile (see
 * set_paused), so the list stays short. */
void alert_item_stall(struct alert_engine *e, struct alert_item *it, enum alert_item_state state)
{
    it->state = state;
    it->next = NULL;
    if (e->stalled_tail != NULL)
        e->stalled_tail->next = it;
    else
        e->stalled = it;
    e->stalled_tail = it;
    if (!e->db_down) {
        e->db_down = true;
        e->db_retry_ms = mono_ms() + e->db_backoff_ms;
    }
}

static bool in_memory(const struct alert_engine *e, const char *key)
{
    for (size_t i = 0; i < e->nhooks; i++)
        for (const struct alert_item *it = e->hooks[i].head; it != NULL; it = it->next)
            if (strcmp(it->a->dedup_key, key) == 0)
                return true;
    for (const struct alert_item *it = e->stalled; it != NULL; it = it->next)
        if (strcmp(it->a->dedup_key, key) == 0)
            return true;
    return false;
}

static void enqueue(struct alert_webhook *h, struct alert_item *it)
{
    it->state = ALERT_ITEM_QUEUED;
    it->next = NULL;
    if (h->tail != NULL)
        h->tail->next = it;
    else
        h->head = it;
    h->tail = it;
    h->queued++;
}

/* Record it and put it where it belongs: its webhook's queue, a digest, or
 * nowhere (already handled). False if the db failed: it is untouched. */
static bool record(struct alert_engine *e, struct alert_item *it)
{
    struct alert *a = it->a;
    struct alert_webhook *h = alert_engine_hook_for(e, a->view.gateway, a->view.reason);
    struct log_ctx lc = LOG_CTX_INIT;
    char err[1024];
    int64_t now = wall_ms();
    bool full = h->queued >= ALERT_ENGINE_QUEUE_MAX;
    bool digest = full || alert_window_full(&e->window, now);
    enum alert_row row;

    alert_engine_fill_ctx(&lc, a);
    if (!alert_store_record(e->db, a, digest, &row, err, sizeof(err))) {
        /* db.h's rule, as in every consumer: an outage or a server fault
         * waits and reads the message again; the database refusing this
         * message's data would refuse it for ever, so the alert is skipped,
         * loudly (a dead letter of it would come back here). Its request and
         * dead letter are still in the database and the DLQ. */
        if (db_failure_blames_message(e->db)) {
            log_emit(LOG_ERROR, &lc, "%s; the database refuses this alert's data, alert skipped",
                     err);
            alert_item_finish(e, it);
            return true;
        }
        log_emit(LOG_WARN, &lc, "%s", err);
        return false;
    }
    if (row == ALERT_ROW_NEW)
        alert_window_add(&e->window, now);
    if (row == ALERT_ROW_DONE) {
        log_emit(LOG_DEBUG, &lc, "alert %s was already handled", a->dedup_key);
        alert_item_finish(e, it);
    } else if (row == ALERT_ROW_NEW && digest) {
        e->n_digested++;
        metrics_add(e->metrics, "cancel_retry_alerts_digested_total", NULL, 1);
        if (e->digest_due_ms == 0)
            e->digest_due_ms = now + e->slack->digest_window_ms;
        if (full)
            log_emit(LOG_WARN, &lc,
                     "alert %s goes into the next digest: webhook %s already has %zu alerts "
                     "waiting",
                     a->dedup_key, h->label, h->queued);
        else
            log_emit(LOG_INFO, &lc, "alert %s goes into the next digest", a->dedup_key);
        alert_item_finish(e, it);
    } else if (in_memory(e, a->dedup_key)) {
        /* The same event read twice (a relay repeat) while the first is
         * still waiting: that one posts it. */
        log_emit(LOG_DEBUG, &lc, "alert %s is already waiting", a->dedup_key);
        alert_item_finish(e, it);
    } else {
        enqueue(h, it);
    }
    return true;
}

/* Write Slack's final answer for it into its row. False if the db failed. */
bool alert_item_mark(struct alert_engine *e, struct alert_item *it)
{
    char err[1024];
    bool ok = it->sent
                  ? alert_store_sent(e->db, it->a->dedup_key, err, sizeof(err))
                  : alert_store_failed(e->db, it->a->dedup_key, true, it->why, err, sizeof(err));
    if (!ok) {
        struct log_ctx lc = LOG_CTX_INIT;
        alert_engine_fill_ctx(&lc, it->a);
        log_emit(LOG_WARN, &lc, "%s", err);
        return false;
    }
    alert_item_finish(e, it);
    return true;
}

/* While the db is away: try again with back-off, then work off the stalled
 * items in order. */
static void retry_stalled(struct alert_engine *e)
{
    char err[512] = "";

    if (!e->db_down || mono_ms() < e->db_retry_ms)
        return;
    bool ok = db_is_connected(e->db);
    if (!ok && db_connect_once(e->db, err, sizeof(err))) {
        /* A new session: the digest lock, if it was held, went with the old
         * one; the next flush takes it again. */
        e->digest_locked = false;
        ok = true;
    }
    while (ok && e->stalled != NULL) {
        struct alert_item *it = e->stalled;
        e->stalled = it->next;
        if (e->stalled == NULL)
            e->stalled_tail = NULL;
        ok = it->state == ALERT_ITEM_RECORD ? record(e, it) : alert_item_mark(e, it);
        if (!ok) {
            it->next = e->stalled;
            e->stalled = it;
            if (e->stalled_tail == NULL)
                e->stalled_tail = it;
        }
    }
    if (!ok) {
        e->db_backoff_ms = e->db_backoff_ms * 2 > ALERT_ENGINE_BACKOFF_MAX_MS
                               ? ALERT_ENGINE_BACKOFF_MAX_MS
                               : e->db_backoff_ms * 2;
        e->db_retry_ms = mono_ms() + e->db_backoff_ms;
        /* A failed statement logged its own reason. */
        log_warn("database unavailable, alerts paused%s%s: trying again in %" PRId64 "ms",
                 err[0] != '\0' ? ": " : "", err, e->db_backoff_ms);
        return;
    }
    log_info("database available again; alerts resume");
    e->db_down = false;
    e->db_backoff_ms = ALERT_ENGINE_BACKOFF_MIN_MS;
}

/* ---- the loop ---- */

static void seed_window(struct alert_engine *e)
{
    int64_t *times = NULL;
    size_t n = 0;
    char err[512];

    if (!alert_store_recent(e->db, e->slack->digest_window_ms, &times, &n, err, sizeof(err))) {
        log_warn("%s; the digest window starts empty", err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        alert_window_add(&e->window, times[i]);
    free(times);
}

/* Take one consumed message: track its offset, decide, record, queue. */
static void take(struct alert_engine *e, const rd_kafka_message_t *m)
{
    struct kafka_record rec;
    char why[256];
    json_t *headers = NULL;
    rd_kafka_headers_t *hdrs = NULL;
    struct alert_item *it = NULL;

    consumer_record(m, &rec);
    if (strcmp(rec.topic, e->cfg->topics.dlq.name) == 0)
        metrics_add(e->metrics, "cancel_retry_dlq_messages_total", NULL, 1);
    if (!offset_tracker_add(e->tracker, rec.topic, rec.partition, rec.offset) ||
        (it = calloc(1, sizeof(*it))) == NULL || (it->a = calloc(1, sizeof(*it->a))) == NULL) {
        /* Not tracked, or tracked and never done: either way nothing past it
         * is committed. Stop, and let a restart read it again. */
        free(it);
        log_error("out of memory taking an alert; stopping");
        signals_request_stop();
        return;
    }
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        headers = dlq_headers_from_kafka(hdrs);
    enum alert_verdict v = alert_from_record(e->cfg, &rec, headers, it->a, why, sizeof(why));
    json_decref(headers);
    if (v == ALERT_SKIP) {
        struct log_ctx lc = LOG_CTX_INIT;
        lc.topic = rec.topic;
        lc.partition = rec.partition;
        lc.offset = rec.offset;
        log_emit(LOG_DEBUG, &lc, "no alert: %s", why);
        alert_item_free(it);
        offset_done(e, rec.topic, rec.partition, rec.offset);
        return;
    }
    if (e->db_down || !record(e, it))
        alert_item_stall(e, it, ALERT_ITEM_RECORD);
}

static void set_paused(struct alert_engine *e, bool paused)
{
    if (paused == e->paused)
        return;
    if (paused)
        consumer_pause(e->rk);
    else
        consumer_resume(e->rk);
    e->paused = paused;
}

/* Poll one message. One that arrives while paused is taken all the same: it
 * was already the application's, and dropping it would let later offsets be
 * committed past it. */
static void poll_kafka(struct alert_engine *e, int timeout_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(e->rk, timeout_ms);
    if (m == NULL)
        return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        take(e, m);
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        char fatal[256];
        bool is_fatal =
            m->err == RD_KAFKA_RESP_ERR__FATAL ||
            kafka_fatal_error_text(e->rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR;
        log_emit(is_fatal ? LOG_ERROR : LOG_WARN, NULL, "consumer error: %s",
                 rd_kafka_message_errstr(m));
        if (is_fatal) {
            e->fatal = true;
            signals_request_stop();
        }
    }
    rd_kafka_message_destroy(m);
}

static bool of_partition(const struct alert_item *it, const char *topic, int32_t partition)
{
    return it->a->view.partition == partition && strcmp(it->a->view.topic, topic) == 0;
}

/* A revoked partition's waiting alerts belong to its new owner, which reads
 * them again and finds their rows PENDING: drop them here so that they are
 * posted once. One being posted finishes; if that fails it is dropped too. */
static void drop_partition(struct alert_engine *e, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < e->nhooks; i++) {
        struct alert_webhook *h = &e->hooks[i];
        struct alert_item **link = &h->head;
        h->tail = NULL;
        while (*link != NULL) {
            struct alert_item *it = *link;
            bool posting = it == h->head && h->posting == ALERT_POSTING_ALERT;
            if (of_partition(it, topic, partition) && posting) {
                it->abandoned = true;
            } else if (of_partition(it, topic, partition)) {
                *link = it->next;
                h->queued--;
                alert_item_free(it);
                continue;
            }
            h->tail = it;
            link = &it->next;
        }
    }
    /* Stalled marks stay: the row should still say what Slack answered. */
    struct alert_item **link = &e->stalled;
    e->stalled_tail = NULL;
    while (*link != NULL) {
        struct alert_item *it = *link;
        if (it->state == ALERT_ITEM_RECORD && of_partition(it, topic, partition)) {
            *link = it->next;
            alert_item_free(it);
            continue;
        }
        e->stalled_tail = it;
        link = &it->next;
    }
}

void alert_engine_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct alert_engine *e = opaque;

    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            offset_tracker_forget(e->tracker, parts->elems[i].topic, parts->elems[i].partition);
            drop_partition(e, parts->elems[i].topic, parts->elems[i].partition);
        }
    }
    kafka_default_rebalance_cb(rk, err, parts, opaque);
    e->paused = false; /* a new assignment starts unpaused */
}

static void update_gauges(struct alert_engine *e)
{
    char labels[64];

    for (size_t i = 0; e->metrics != NULL && i < e->nhooks; i++) {
        snprintf(labels, sizeof(labels), "webhook=\"%s\"", e->hooks[i].label);
        metrics_set(e->metrics, "cancel_retry_alerts_waiting", labels, (int64_t)e->hooks[i].queued);
    }
}

/* Stop: read nothing more, let the posts in flight finish (at most the
 * Slack timeout) and record their answers. What still waits is neither
 * marked nor committed: the next owner of its partition posts it. */
static void drain(struct alert_engine *e)
{
    char err[512];
    int64_t until = mono_ms() + e->slack->timeout_ms + ALERT_ENGINE_BACKOFF_MIN_MS;

    e->draining = true;
    set_paused(e, true);
    while (http_client_in_flight(e->http) > 0 && mono_ms() < until) {
        if (http_client_run(e->http, 100, err, sizeof(err)) < 0)
            log_warn("http client: %s", err);
        alert_post_finish(e);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(e->rk, 0);
        if (m != NULL)
            rd_kafka_message_destroy(m); /* not tracked: read again later */
    }
    e->db_retry_ms = 0;
    retry_stalled(e); /* last chance to mark what was posted */
    for (size_t i = 0; i < e->nhooks; i++) {
        alert_digest_free(e->hooks[i].digest);
        e->hooks[i].digest = NULL;
    }
    alert_post_release_digest_lock(e);
}

int alert_engine_run(struct alert_engine *e, rd_kafka_t *rk)
{
    char err[512];
    const char *topics[] = {e->cfg->topics.outcome.name, e->cfg->topics.dlq.name, NULL};

    e->rk = rk;
    if (!consumer_subscribe(rk, topics, err, sizeof(err))) {
        log_error("%s", err);
        return 1;
    }
    seed_window(e);
    /* Digest rows a previous run recorded but did not post go first. */
    e->digest_due_ms = wall_ms();
    while (!signals_stop_requested()) {
        set_paused(e, e->db_down);
        bool busy = http_client_in_flight(e->http) > 0;
        /* Idle, a database that went away is noticed only by the next
         * alert: look once a second (no round trip); retry_stalled then
         * reconnects on its back-off and /readyz follows. */
        if (!busy && !e->db_down && mono_ms() - e->db_checked_ms >= 1000) {
            e->db_checked_ms = mono_ms();
            if (!db_check(e->db)) {
                e->db_down = true;
                e->db_retry_ms = e->db_checked_ms + e->db_backoff_ms;
            }
        }
        poll_kafka(e, busy ? 0 : 50);
        retry_stalled(e);
        if (e->digest_due_ms != 0 && wall_ms() >= e->digest_due_ms)
            alert_post_flush_digests(e);
        alert_post_start(e);
        if (http_client_run(e->http, http_client_in_flight(e->http) > 0 ? 20 : 0, err,
                            sizeof(err)) < 0)
            log_warn("http client: %s", err);
        alert_post_finish(e);
        update_gauges(e);
    }
    drain(e);
    log_info("alerts: %" PRIu64 " posts, %" PRIu64 " alerts digested, %" PRIu64
             " refused for good by slack",
             e->n_posted, e->n_digested, e->n_permanent);
    return e->fatal ? 1 : 0;
}
