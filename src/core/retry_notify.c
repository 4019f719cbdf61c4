/*
 * retry_notify: see retry_notify.h.
 */
#include "core/retry_notify.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "core/attempt.h"
#include "core/retry_steps.h"
#include "store/request_events.h"
#include "store/request_store.h"
#include "store/webhook_store.h"

/* What a gateway's stored notifications prove about a refund. */
static enum refund_finding finding_of_notifications(enum webhook_refund_result r)
{
    switch (r) {
    case WEBHOOK_REFUNDED:
        return FINDING_REFUNDED;
    case WEBHOOK_REFUSED:      /* refused: no money moved; a person decides on a new one */
    case WEBHOOK_FAILED_AFTER: /* the scheme rejected it after Adyen accepted it */
    case WEBHOOK_REVERSED:     /* the money came back to the merchant */
        return FINDING_REFUND_FAILED;
    case WEBHOOK_NONE:
        break;
    }
    return FINDING_NONE;
}

void retry_notify_inquire(struct db *db, const struct config *cfg, struct job *j)
{
    enum webhook_refund_result r = WEBHOOK_NONE;
    char detail[256], err[512];

    if (gateway_client_completes_by_webhook(j->gw->client)) {
        if (!webhook_store_refund_result(db, j->row.gateway, j->row.request_id, &r, detail,
                                         sizeof(detail), err, sizeof(err))) {
            snprintf(detail, sizeof(detail), "could not read the stored notifications: %.200s",
                     err);
            retry_job_found(j, FINDING_UNKNOWN, detail);
            return;
        }
        if (r != WEBHOOK_NONE) {
            retry_job_found(j, finding_of_notifications(r), detail);
            return;
        }
    }
    if (gateway_client_inquiry_replays_refund(j->gw->client) &&
        !retry_steps_may_send(cfg, &j->row)) {
        retry_job_found(j, FINDING_UNKNOWN,
                        "no notification, and past the deadline the refund is not replayed: its "
                        "key may expire at the gateway, and a replay would then be a second "
                        "refund");
        return;
    }
    retry_job_inquire(j);
}

void retry_notify_wake(struct db *db, const struct config *cfg, struct job *j)
{
    enum webhook_refund_result r = WEBHOOK_NONE;
    struct request_row row;
    bool found = false, moved = false;
    char detail[256], err[512];

    if (!webhook_store_refund_result(db, j->row.gateway, j->row.request_id, &r, detail,
                                     sizeof(detail), err, sizeof(err)) ||
        r == WEBHOOK_NONE) {
        /* No notification, or none readable now: the PENDING check that is
         * due reads them anyway. */
        return;
    }
    memset(&row, 0, sizeof(row));
    if (!db_begin(db, err, sizeof(err)))
        return;
    if (request_store_get(db, j->row.request_id, true, &row, &found, err, sizeof(err)) && found &&
        strcmp(row.status, REQUEST_PENDING) == 0 &&
        request_events_due_now(db, cfg, &row, wall_ms(), &moved, err, sizeof(err)) &&
        db_commit(db, err, sizeof(err))) {
        if (moved)
            retry_job_log(j, LOG_INFO, "a notification came during the attempt: checked now",
                          detail);
    } else {
        db_rollback(db);
    }
    request_row_clear(&row);
}
