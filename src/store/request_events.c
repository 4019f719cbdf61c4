/*
 * request_events: see request_events.h.
 */
#include "store/request_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/redact.h"
#include "store/outbox.h"

#define DLQ_EVENT_TYPE "dead-letter"

void request_events_fields(const struct request_row *row, struct cancel_request_fields *req)
{
    req->request_id = row->request_id;
    req->gateway = row->gateway;
    req->payment_key = row->payment_key;
    req->currency = row->currency;
    req->amount = row->amount;
    req->partial = row->partial;
}

bool request_events_retry_build(const struct config *cfg, const struct cancel_request_fields *req,
                                const char *correlation_id, int attempt, int64_t due_ms,
                                struct outbox_event *ev, char *err, size_t errlen)
{
    json_t *data = retry_scheduled_data(req, attempt, due_ms, err, errlen);
    if (data == NULL)
        return false;
    bool ok = outbox_event_build(ev, cfg->topics.retry.name, CANCEL_EVENT_TYPE_RETRY_SCHEDULED,
                                 req->request_id, correlation_id, data, due_ms, err, errlen);
    json_decref(data);
    return ok;
}

bool request_events_retry(struct db *db, const struct config *cfg,
                          const struct cancel_request_fields *req, const char *correlation_id,
                          int attempt, int64_t due_ms, char *err, size_t errlen)
{
    struct outbox_event ev;
    if (!request_events_retry_build(cfg, req, correlation_id, attempt, due_ms, &ev, err, errlen))
        return false;
    bool ok = outbox_insert(db, &ev.msg, err, errlen);
    outbox_event_clear(&ev);
    return ok;
}

bool request_events_dead_letter(struct db *db, const struct config *cfg, const void *bytes,
                                size_t len, const char *key, const struct dlq_meta *meta, char *err,
                                size_t errlen)
{
    json_t *headers = dlq_headers_build(meta, err, errlen);
    if (headers == NULL)
        return false;
    struct outbox_msg msg = {
        .topic = cfg->topics.dlq.name,
        .key = key,
        .value = bytes,
        .value_len = len,
        .headers = headers,
        .event_type = DLQ_EVENT_TYPE,
        .event_id = NULL,
        .request_id = meta->request_id,
        .available_at_ms = 0,
    };
    bool ok = outbox_insert(db, &msg, err, errlen);
    json_decref(headers);
    return ok;
}

bool request_events_final(struct db *db, const struct config *cfg, const struct request_row *row,
                          const char *status, int attempts, const struct cancel_last_error *last,
                          const char *dlq_reason, const char *dlq_error, const char *consumer,
                          char *err, size_t errlen)
{
    struct cancel_request_fields req;
    int64_t now = wall_ms();

    request_events_fields(row, &req);
    /* lastError is what a gateway said, on its way to every consumer of the
     * outcome topic and to Slack: mask the config's secrets in it. */
    struct cancel_last_error safe;
    char *message = NULL;
    if (last != NULL) {
        safe = *last;
        message = last->message != NULL ? redact_process_text(last->message) : NULL;
        if (last->message != NULL)
            safe.message = message != NULL ? message : REDACT_MASK;
        last = &safe;
    }
    json_t *data = outcome_data(&req, status, attempts, last, now, err, errlen);
    free(message);
    if (data == NULL)
        return false;
    bool ok = outbox_insert_event(db, cfg->topics.outcome.name, CANCEL_EVENT_TYPE_OUTCOME,
                                  row->request_id, row->correlation_id, data, 0, err, errlen);
    json_decref(data);
    if (!ok || dlq_reason == NULL)
        return ok;
    return request_events_request_dead_letter(db, cfg, row, dlq_reason, dlq_error, consumer,
                                              attempts, err, errlen);
}

bool request_events_request_dead_letter(struct db *db, const struct config *cfg,
                                        const struct request_row *row, const char *reason,
                                        const char *error, const char *consumer, int attempts,
                                        char *err, size_t errlen)
{
    /* The original CancelFailed, so that a replay can re-publish it as it
     * was (docs/contracts.md "Dead letters"). */
    struct dlq_meta meta = {
        .reason = reason,
        .error = error,
        .origin =
            {
                .topic =
                    row->source_topic != NULL ? row->source_topic : cfg->topics.cancel_failed.name,
                .partition = row->source_partition,
                .offset = row->source_offset,
                .timestamp_ms = row->source_timestamp_ms > 0 ? row->source_timestamp_ms : -1,
            },
        .consumer = consumer,
        .request_id = row->request_id,
        .attempts = attempts,
        .at_ms = wall_ms(),
    };
    return request_events_dead_letter(db, cfg, row->source_event, row->source_event_len,
                                      row->request_id, &meta, err, errlen);
}

bool request_events_due_now(struct db *db, const struct config *cfg, const struct request_row *row,
                            int64_t now_ms, bool *moved, char *err, size_t errlen)
{
    struct cancel_request_fields req;
    request_events_fields(row, &req);
    *moved = false;
    return request_store_postpone(db, row->request_id, row->attempts + 1, now_ms, moved, err,
                                  errlen) &&
           (!*moved || request_events_retry(db, cfg, &req, row->correlation_id, row->attempts + 1,
                                            now_ms, err, errlen));
}
