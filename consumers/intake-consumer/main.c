/*
 * intake-consumer: reads CancelFailed events from payments.cancel.failed,
 * records each new request with its first retry in the outbox, and
 * dead-letters what breaks the contract. The decisions live in src/intake.c;
 * this file is arguments, connections and the loop.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "consumer.h"
#include "db.h"
#include "intake.h"
#include "kafka.h"
#include "log.h"
#include "service.h"
#include "signals.h"

struct intake_ctx {
    const struct config *cfg;
    struct db *db;
    struct metrics *metrics;
};

static enum consumer_verdict handle(void *arg, const struct kafka_record *rec)
{
    struct intake_ctx *ctx = arg;
    char err[1024];

    if (!db_is_connected(ctx->db))
        return CONSUMER_RETRY;
    enum intake_status s = intake_process(ctx->db, ctx->cfg, rec, err, sizeof(err));
    char labels[64];
    snprintf(labels, sizeof(labels), "result=\"%s\"", intake_status_name(s));
    metrics_add(ctx->metrics, "cancel_retry_intake_messages_total", labels, 1);
    return s == INTAKE_RETRY ? CONSUMER_RETRY : CONSUMER_DONE;
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

    struct intake_ctx ctx = {cfg, db_new(&cfg->database, info.name),
                             service_metrics(cfg, info.name)};
    metrics_describe(ctx.metrics, "cancel_retry_intake_messages_total", "counter",
                     "CancelFailed messages by result (accepted, duplicate, dead-lettered, "
                     "retry: not processed yet, db unavailable)");
    rd_kafka_t *rk = NULL;
    rc = 1;
    if (ctx.db == NULL) {
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
    rk = kafka_consumer_new(cfg, cfg->consumers.intake.group_id, NULL, NULL, err, sizeof(err));
    if (rk == NULL) {
        log_error("%s", err);
        goto out;
    }
    log_info("intake-consumer started: topic %s, group %s", cfg->topics.cancel_failed.name,
             cfg->consumers.intake.group_id);
    struct consumer_handler h = {handle, NULL, db_ready, NULL, &ctx, 0};
    const char *topics[] = {cfg->topics.cancel_failed.name, NULL};
    rc = consumer_run(rk, topics, &h);
    log_info("intake-consumer stopping");
out:
    if (rk != NULL)
        kafka_consumer_close(rk);
    db_free(ctx.db);
    metrics_free(ctx.metrics);
    config_free(cfg);
    return rc;
}
