/*
 * service: the start-up every long-running process shares: parse
 * `--config FILE` (default $CANCEL_RETRY_CONFIG, then
 * config/cancel-retry.yaml), `--help`, `--version`, load and validate the
 * config (a bad one stops start-up with file, line and key), start logging,
 * install the signal handlers.
 */
#ifndef CR_SERVICE_H
#define CR_SERVICE_H

#include "config/config.h"
#include "service/metrics.h"

struct service_info {
    const char *name;  /* e.g. "intake-consumer": log "service" and usage */
    const char *about; /* one paragraph for --help */
};

/* Returns the loaded config (caller frees with config_free) or NULL with
 * *exit_code set: 0 after --help/--version, 2 on a usage error, 1 when the
 * config cannot be loaded (the reason already printed to stderr). */
struct config *service_start(const struct service_info *info, int argc, char **argv,
                             int *exit_code);

/* The process's metrics, served on cfg->metrics.listen when set. A port that
 * cannot be used is logged and the process goes on without the endpoint:
 * metrics are never a reason to stop refunding. Its readiness checks
 * "database" and "kafka" start failing; the process's db (db_set_metrics)
 * and Kafka handle (kafka_*_new with these metrics) set them from then on.
 * NULL only when out of memory; free with metrics_free(). */
struct metrics *service_metrics(const struct config *cfg, const char *service);

/* The same for a process with a database and no Kafka (the
 * webhook-receiver): its readiness has the "database" check only. */
struct metrics *service_metrics_db_only(const struct config *cfg, const char *service);

/* A stable identity for leases and logs: "<service>@<hostname>:<pid>".
 * Writes into buf and returns it. */
const char *service_worker_id(const char *service, char *buf, size_t len);

#endif
