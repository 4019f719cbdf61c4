/*
 * outbox-relay: moves committed outbox rows onto their Kafka topics and runs
 * the reconciler. All of it lives in src/relay/relay.c and src/core/reconciler.c; this
 * file is arguments and lifetime.
 */
#include "base/log.h"
#include "config/config.h"
#include "relay/relay.h"
#include "service/service.h"

int main(int argc, char **argv)
{
    static const struct service_info info = {
        "outbox-relay",
        "Publishes committed outbox rows to Kafka in order when they are due, and\n"
        "re-schedules requests whose worker vanished. Run two or more: one is active\n"
        "(a lease in PostgreSQL, relay.leader_lease), the others stand by and take over.",
    };
    char worker[256];
    int rc;
    struct config *cfg = service_start(&info, argc, argv, &rc);
    if (cfg == NULL)
        return rc;

    struct relay *r = relay_new(cfg, service_worker_id(info.name, worker, sizeof(worker)));
    if (r == NULL) {
        log_error("out of memory");
        config_free(cfg);
        return 1;
    }
    struct metrics *metrics = service_metrics(cfg, info.name);
    relay_set_metrics(r, metrics);
    log_info("outbox-relay started as %s", worker);
    rc = relay_run(r);
    relay_free(r);
    metrics_free(metrics);
    config_free(cfg);
    return rc;
}
