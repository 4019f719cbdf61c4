/*
 * retry-consumer: runs refund attempts. Reads RetryScheduled events, claims
 * the request, calls the gateway with the requestId as idempotency key,
 * records the answer and what follows. Run as many as the retry topic has
 * partitions, in one consumer group. The engine is src/core/retry_worker.c; the
 * steps are src/core/retry_steps.c; the decision is src/core/attempt.c.
 */
#include "base/log.h"
#include "config/config.h"
#include "core/retry_worker.h"
#include "service/service.h"

int main(int argc, char **argv)
{
    static const struct service_info info = {
        "retry-consumer",
        "Consumes RetryScheduled events and calls the payment gateway's refund API,\n"
        "once per attempt, with the requestId as idempotency key.",
    };
    char worker[256], err[1024] = "";
    int rc;
    struct config *cfg = service_start(&info, argc, argv, &rc);
    if (cfg == NULL)
        return rc;

    struct retry_worker *w = retry_worker_new(
        cfg, service_worker_id(info.name, worker, sizeof(worker)), err, sizeof(err));
    if (w == NULL) {
        log_error("cannot start: %s", err);
        config_free(cfg);
        return 1;
    }
    struct metrics *metrics = service_metrics(cfg, info.name);
    retry_worker_set_metrics(w, metrics);
    rc = retry_worker_run(w);
    retry_worker_free(w);
    metrics_free(metrics);
    config_free(cfg);
    return rc;
}
