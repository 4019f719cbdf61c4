/*
 * webhook-receiver: takes the gateways' webhooks (Adyen's REFUND
 * notifications), verifies each item's HMAC, stores the items in one
 * transaction, wakes the requests they are about, and only then answers
 * 202. All of it lives in src/webhook/ (webhook_receiver.c: HTTP,
 * webhook_delivery.c: verify and store); this file is arguments, the
 * database connection and the loop.
 */
#include "base/log.h"
#include "base/signals.h"
#include "config/config.h"
#include "service/service.h"
#include "store/db.h"
#include "webhook/webhook_receiver.h"

/* How long one turn of the loop waits for a request: the longest a stop
 * request or a database check waits. */
#define LOOP_WAIT_MS 500

int main(int argc, char **argv)
{
    static const struct service_info info = {
        "webhook-receiver",
        "Receives the payment gateways' webhooks (Adyen REFUND notifications) on\n"
        "webhooks.listen at webhooks.path: verifies every item's HMAC signature\n"
        "(gateways.*.webhook_hmac_keys), stores the items in PostgreSQL, makes the\n"
        "requests they are about due at once, and answers 202 only after the commit.",
    };
    char err[1024];
    int rc;
    struct config *cfg = service_start(&info, argc, argv, &rc);
    if (cfg == NULL)
        return rc;

    struct metrics *metrics = service_metrics_db_only(cfg, info.name);
    struct db *db = db_new(&cfg->database, info.name);
    struct webhook_receiver *r = NULL;
    rc = 1;
    if (db == NULL) {
        log_error("out of memory");
        goto out;
    }
    db_set_metrics(db, metrics);
    r = webhook_receiver_new(cfg, db, metrics, err, sizeof(err));
    if (r == NULL) {
        log_error("cannot start: %s", err);
        goto out;
    }
    if (!webhook_receiver_listen(r, err, sizeof(err))) {
        log_error("cannot start: %s", err);
        goto out;
    }
    /* Listening before the database answers: a delivery meanwhile gets a
     * 503 and comes again, which beats a refused connection. */
    (void)db_tend(db);
    rc = 0;
    while (!signals_stop_requested()) {
        if (!webhook_receiver_run_once(r, LOOP_WAIT_MS)) {
            log_error("the HTTP server failed; stopping");
            rc = 1;
            break;
        }
        /* Between deliveries: notice a lost connection for /readyz and
         * reconnect with back-off, so the next delivery finds it ready. */
        (void)db_tend(db);
    }
    log_info("webhook-receiver stopping");
out:
    webhook_receiver_free(r);
    db_free(db);
    metrics_free(metrics);
    config_free(cfg);
    return rc;
}
