/*
 * alert-consumer: reads payments.cancel.outcome and payments.cancel.dlq and
 * tells people on Slack about every request that needs a human: once per
 * event, paced to Slack's limits, summed up in a digest during a flood, and
 * never lost to a Slack outage. The loop and its I/O live in
 * src/alert/alert_engine.c, the decisions in src/alert/alert.c, the messages in
 * src/alert/slack.c; this file is arguments, connections and start-up.
 */
#include <stdio.h>
#include <stdlib.h>

#include "alert/alert_engine.h"
#include "base/log.h"
#include "base/signals.h"
#include "config/config.h"
#include "kafka/kafka.h"
#include "service/service.h"
#include "store/db.h"

int main(int argc, char **argv)
{
    static const struct service_info info = {
        "alert-consumer",
        "Consumes Outcome events and dead letters and posts alerts to the Slack\n"
        "incoming webhook of alerts.slack (URL from the environment, never logged).",
    };
    char err[1024];
    int rc;
    struct config *cfg = service_start(&info, argc, argv, &rc);
    if (cfg == NULL)
        return rc;

    struct db *db = db_new(&cfg->database, info.name);
    struct alert_engine *engine = NULL;
    struct metrics *metrics = service_metrics(cfg, info.name);
    rd_kafka_t *rk = NULL;
    rc = 1;
    if (db == NULL) {
        log_error("out of memory");
        goto out;
    }
    engine = alert_engine_new(cfg, db, err, sizeof(err));
    if (engine == NULL) {
        log_error("%s", err);
        goto out;
    }
    alert_engine_set_metrics(engine, metrics);
    if (!db_ensure_connected(db, err, sizeof(err))) {
        if (signals_stop_requested())
            rc = 0;
        else
            log_error("%s", err);
        goto out;
    }
    rk = kafka_consumer_new(cfg, cfg->consumers.alert.group_id, alert_engine_on_rebalance, engine,
                            metrics, err, sizeof(err));
    if (rk == NULL) {
        log_error("%s", err);
        goto out;
    }
    log_info("alert-consumer started: topics %s and %s, group %s, %zu route(s)",
             cfg->topics.outcome.name, cfg->topics.dlq.name, cfg->consumers.alert.group_id,
             cfg->alerts.slack.nroutes);
    rc = alert_engine_run(engine, rk);
    log_info("alert-consumer stopping");
out:
    if (rk != NULL)
        kafka_consumer_close(rk);
    alert_engine_free(engine);
    metrics_free(metrics);
    db_free(db);
    config_free(cfg);
    return rc;
}
