/*
 * intake-consumer: reads CancelFailed events from payments.cancel.failed,
 * records each new request with its first retry in the outbox, and
 * dead-letters what breaks the contract. The decisions live in src/core/intake.c;
 * this file is arguments, connections and the loop.
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/signals.h"
#include "config/config.h"
#include "core/intake.h"
#include "kafka/consumer.h"
#include "kafka/kafka.h"
#include "service/service.h"
#include "store/db.h"

struct intake_ctx {
    const struct config *cfg;
    struct db *db;
    struct metrics *metrics;
    enum intake_status *statuses; /* consumers.intake.batch_size of them */
};

static enum consumer_verdict handle(void *arg, const struct kafka_record *recs, size_t n)
{
    struct intake_ctx *ctx = arg;
    char err[1024];
    size_t count[INTAKE_RETRY + 1] = {0};

    bool done = db_is_connected(ctx->db) &&
                intake_process_batch(ctx->db, ctx->cfg, recs, n, ctx->statuses, err, sizeof(err));
    for (size_t i = 0; i < n; i++)
        count[done ? ctx->statuses[i] : INTAKE_RETRY]++;
    for (int s = 0; s <= INTAKE_RETRY; s++) {
        if (count[s] == 0)
            continue;
        char labels[64];
        snprintf(labels, sizeof(labels), "result=\"%s\"", intake_status_name(s));
        metrics_add(ctx->metrics, "cancel_retry_intake_messages_total", labels, (int64_t)count[s]);
    }
    return done ? CONSUMER_DONE : CONSUMER_RETRY;
}

/* No message for a while: notice a database that went away (and get it
 * back), so that /readyz tells before the next message does. */
static void idle(void *arg)
{
    struct intake_ctx *ctx = arg;
    (void)db_tend(ctx->db);
}

static bool db_ready(void *arg)
{
    struct intake_ctx *ctx = arg;
    char err[512];

    if (db_is_connected(ctx->db) || db_connect_once(ctx->db, err, sizeof(err)))
        return true;
    log_warn("database unavailable, intake paused: %s", err);
    return false;
}

int main(int argc, char **argv)
{
    static const struct service_info info = {
        "intake-consumer",
        "Consumes CancelFailed events, validates and deduplicates them, records each\n"
        "new cancel request and schedules its first refund attempt.",
    };
    char err[1024];
    int rc;
    struct config *cfg = service_start(&info, argc, argv, &rc);
    if (cfg == NULL)
        return rc;

    struct intake_ctx ctx = {
        cfg, db_new(&cfg->database, info.name), service_metrics(cfg, info.name),
        calloc((size_t)cfg->consumers.intake.batch_size, sizeof(*ctx.statuses))};
    if (ctx.db != NULL)
        db_set_metrics(ctx.db, ctx.metrics);
    metrics_describe(ctx.metrics, "cancel_retry_intake_messages_total", "counter",
                     "CancelFailed messages by result (accepted, duplicate, dead-lettered, "
                     "retry: not processed yet, db unavailable)");
    rd_kafka_t *rk = NULL;
    rc = 1;
    if (ctx.db == NULL || ctx.statuses == NULL) {
        log_error("out of memory");
        goto out;
    }
    if (!db_ensure_connected(ctx.db, err, sizeof(err))) {
        if (signals_stop_requested())
            rc = 0;
        else
            log_error("%s", err);
        goto out;
    }
    rk = kafka_consumer_new(cfg, cfg->consumers.intake.group_id, NULL, NULL, ctx.metrics, err,
                            sizeof(err));
    if (rk == NULL) {
        log_error("%s", err);
        goto out;
    }
    log_info("intake-consumer started: topic %s, group %s, batches of up to %d messages",
             cfg->topics.cancel_failed.name, cfg->consumers.intake.group_id,
             cfg->consumers.intake.batch_size);
    struct consumer_handler h = {
        .handle = handle,
        .ready = db_ready,
        .idle = idle,
        .arg = &ctx,
        .idle_ms = 1000,
        .batch_size = cfg->consumers.intake.batch_size,
        .batch_window_ms = cfg->consumers.intake.batch_window_ms,
    };
    const char *topics[] = {cfg->topics.cancel_failed.name, NULL};
    rc = consumer_run(rk, topics, &h);
    log_info("intake-consumer stopping");
out:
    if (rk != NULL)
        kafka_consumer_close(rk);
    db_free(ctx.db);
    free(ctx.statuses);
    metrics_free(ctx.metrics);
    config_free(cfg);
    return rc;
}
