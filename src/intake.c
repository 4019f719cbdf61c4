/*
 * intake: see intake.h.
 */
#include "intake.h"

#include <stdio.h>
#include <string.h>

#include "bounds.h"
#include "dlq.h"
#include "log.h"
#include "request_events.h"
#include "request_store.h"
#include "timeutil.h"

#define INTAKE_CONSUMER "intake-consumer"

const char *intake_status_name(enum intake_status s)
{
    switch (s) {
    case INTAKE_ACCEPTED:
        return "accepted";
    case INTAKE_DUPLICATE:
        return "duplicate";
    case INTAKE_DEAD_LETTERED:
        return "dead-lettered";
    case INTAKE_RETRY:
        return "retry";
    }
    return "unknown";
}

void intake_check_message(const struct config *cfg, const void *value, size_t len,
                          struct intake_check *check)
{
    memset(check, 0, sizeof(*check));
    /* Before parsing: every accepted event is copied into the request row,
     * the outbox and a dead letter, and the dead letter must still fit in a
     * Kafka message next to its headers. */
    if (len > INTAKE_MAX_EVENT_BYTES) {
        check->dlq_reason = DLQ_REASON_SCHEMA_VIOLATION;
        snprintf(check->error, sizeof(check->error),
                 "the event is %zu bytes; a CancelFailed event may have at most %d", len,
                 INTAKE_MAX_EVENT_BYTES);
        return;
    }
    enum event_verdict v =
        cloudevent_parse(value, len, &check->ev, check->error, sizeof(check->error));
    if (v != EVENT_OK) {
        check->dlq_reason = event_verdict_name(v);
        return;
    }
    v = cancel_failed_parse(&check->ev, &check->cf, check->error, sizeof(check->error));
    if (v != EVENT_OK) {
        check->dlq_reason = event_verdict_name(v);
        return;
    }
    check->gateway = config_gateway_find(cfg, check->cf.gateway);
    if (check->gateway == NULL) {
        check->dlq_reason = DLQ_REASON_UNKNOWN_GATEWAY;
        snprintf(check->error, sizeof(check->error),
                 "gateway \"%s\" is not configured (gateways: in the config)", check->cf.gateway);
    }
}

/* The Kafka key, when there is one, must be the requestId (contracts.md):
 * the partition of a request decides which consumer sees its duplicates, and
 * a replayed dead letter is keyed by the requestId. */
static bool key_is_request_id(const struct kafka_record *rec, const char *request_id, char *err,
                              size_t errlen)
{
    if (rec->key == NULL || rec->key_len == 0)
        return true;
    if (rec->key_len == strlen(request_id) && memcmp(rec->key, request_id, rec->key_len) == 0)
        return true;
    char shown[128];
    dlq_sanitize_text(rec->key, rec->key_len, shown, sizeof(shown));
    snprintf(err, errlen, "the Kafka key \"%s\" is not data.requestId \"%s\"", shown, request_id);
    return false;
}

void intake_check_record(const struct config *cfg, const struct kafka_record *rec, int64_t now_ms,
                         struct intake_check *check)
{
    intake_check_message(cfg, rec->value, rec->len, check);
    if (check->cf.request_id == NULL)
        return; /* not a CancelFailed at all: its reason stands */
    /* The metadata around a valid event, checked where it enters: each
     * instant becomes a timestamptz and may become the key's first use. The
     * event's time is checked here, not in cloudevent_parse, because the
     * range depends on our clock. A Kafka timestamp of -1 means "none". What
     * fails here is permanent, so it wins over UNKNOWN_GATEWAY (a replay after
     * the config is fixed would fail again). */
    char why[sizeof(check->error)];
    bool ok = true;
    if (check->ev.time != NULL)
        ok = bounds_check_time("attribute \"time\"", check->ev.time_ms, now_ms, why, sizeof(why));
    if (ok && rec->timestamp_ms != -1)
        ok = bounds_check_time("the Kafka timestamp", rec->timestamp_ms, now_ms, why, sizeof(why));
    if (ok)
        ok = key_is_request_id(rec, check->cf.request_id, why, sizeof(why));
    if (!ok) {
        check->dlq_reason = DLQ_REASON_SCHEMA_VIOLATION;
        check->gateway = NULL;
        snprintf(check->error, sizeof(check->error), "%s", why);
    }
}

void intake_check_clear(struct intake_check *check)
{
    cancel_failed_clear(&check->cf);
    cloudevent_clear(&check->ev);
}

/* Name the money fields in which an existing request differs from cf. */
static void describe_conflict(const struct request_row *row, const struct cancel_failed *cf,
                              char *buf, size_t len)
{
    size_t o = 0;
    int n;

    n = snprintf(buf, len, "requestId %s already exists with different", cf->request_id);
    o = n > 0 ? (size_t)n : 0;
#define DIFF(cond, name)                                                                           \
    if ((cond) && o < len) {                                                                       \
        n = snprintf(buf + o, len - o, " %s", name);                                               \
        o += n > 0 ? (size_t)n : 0;                                                                \
    }
    DIFF(strcmp(row->gateway, cf->gateway) != 0, "gateway");
    DIFF(strcmp(row->payment_key, cf->payment_key) != 0, "paymentKey");
    DIFF(row->amount != cf->amount, "amount");
    DIFF(strcmp(row->currency, cf->currency) != 0, "currency");
    DIFF(row->partial != cf->partial, "partial");
#undef DIFF
    if (o < len)
        snprintf(buf + o, len - o, "; never refunded under this key");
}

static bool same_money(const struct request_row *row, const struct cancel_failed *cf)
{
    return strcmp(row->gateway, cf->gateway) == 0 &&
           strcmp(row->payment_key, cf->payment_key) == 0 && row->amount == cf->amount &&
           strcmp(row->currency, cf->currency) == 0 && row->partial == cf->partial;
}

/* Dead-letter rec with reason and error. The dead letter is keyed by the
 * message's own key when the outbox can store it (dlq_key_storable: a key
 * the database refuses would fail the dead letter itself), else by
 * request_id (or the one found in the bytes); with plain, by request_id
 * only: the fallback after the database refused the first try. */
static bool dead_letter(struct db *db, const struct config *cfg, const struct kafka_record *rec,
                        const char *reason, const char *error, const char *request_id, bool plain,
                        char *err, size_t errlen)
{
    char guessed[256], keybuf[256];
    const char *key = NULL;

    if (request_id == NULL)
        request_id = dlq_guess_request_id(rec->value, rec->len, guessed, sizeof(guessed));
    if (!plain && dlq_key_storable(rec->key, rec->key_len)) {
        memcpy(keybuf, rec->key, rec->key_len);
        keybuf[rec->key_len] = '\0';
        key = keybuf;
    }
    if (key == NULL)
        key = request_id;
    struct dlq_meta meta = {
        .reason = reason,
        .error = error,
        .origin = {rec->topic, rec->partition, rec->offset, rec->timestamp_ms},
        .consumer = INTAKE_CONSUMER,
        .request_id = request_id,
        .attempts = 0,
        .at_ms = timeutil_now_ms(),
    };
    return request_events_dead_letter(db, cfg, rec->value, rec->len, key, &meta, err, errlen);
}

/* The transaction body; returns the status, or INTAKE_RETRY with err set on a
 * db error (the caller rolls back). */
static enum intake_status process_in_tx(struct db *db, const struct config *cfg,
                                        const struct kafka_record *rec,
                                        const struct intake_check *check, char *err, size_t errlen)
{
    if (check->dlq_reason != NULL) {
        if (!dead_letter(db, cfg, rec, check->dlq_reason, check->error, NULL, false, err, errlen))
            return INTAKE_RETRY;
        return INTAKE_DEAD_LETTERED;
    }

    const struct cancel_failed *cf = &check->cf;
    const struct retry_policy *policy = &check->gateway->retry;
    int64_t now = timeutil_now_ms();
    /* Attempt 1 is due at once: initial_delay is the wait before attempt 2
     * (retry_policy.h). */
    int64_t first_attempt = now;
    struct request_source src = {
        .event_id = check->ev.id,
        .bytes = rec->value,
        .len = rec->len,
        .topic = rec->topic,
        .partition = rec->partition,
        .offset = rec->offset,
        .timestamp_ms = rec->timestamp_ms > 0 ? rec->timestamp_ms : 0,
        .event_time_ms = check->ev.time_ms,
        .correlation_id = check->ev.correlationid,
    };
    bool inserted = false;
    if (!request_store_insert(db, cf, &src, policy->max_attempts, first_attempt,
                              now + policy->deadline_ms, check->gateway->idempotency_key_ttl_ms,
                              &inserted, err, errlen))
        return INTAKE_RETRY;

    if (inserted) {
        struct cancel_request_fields req;
        cancel_failed_fields(cf, &req);
        if (!request_events_retry(db, cfg, &req, check->ev.correlationid, 1, first_attempt, err,
                                  errlen))
            return INTAKE_RETRY;
        return INTAKE_ACCEPTED;
    }

    /* The requestId exists: a redelivery or an upstream duplicate is fine;
     * different money under the same idempotency key is never refunded. */
    struct request_row row;
    bool found = false;
    if (!request_store_get(db, cf->request_id, false, &row, &found, err, errlen))
        return INTAKE_RETRY;
    if (!found) {
        snprintf(err, errlen, "request %s vanished during intake", cf->request_id);
        return INTAKE_RETRY;
    }
    enum intake_status status = INTAKE_DUPLICATE;
    if (!same_money(&row, cf)) {
        char why[512];
        describe_conflict(&row, cf, why, sizeof(why));
        status = dead_letter(db, cfg, rec, DLQ_REASON_IDEMPOTENCY_CONFLICT, why, cf->request_id,
                             false, err, errlen)
                     ? INTAKE_DEAD_LETTERED
                     : INTAKE_RETRY;
    }
    request_row_clear(&row);
    return status;
}

/* The database refused something this message carries (db.h,
 * db_failure_blames_message): the same statements would fail the same way
 * forever, so the message is dead-lettered, with the database's message and
 * SQLSTATE in dlq.error, in a transaction of its own. Keyed by the requestId
 * only, so that a Kafka key the database refused cannot fail it again. The
 * reason stays the message's own when it was being dead-lettered already. */
static enum intake_status dead_letter_refused(struct db *db, const struct config *cfg,
                                              const struct kafka_record *rec,
                                              const struct intake_check *check, char *why,
                                              size_t whylen, char *err, size_t errlen)
{
    snprintf(why, whylen, "the database refused the message: %s", err);
    const char *reason =
        check->dlq_reason != NULL ? check->dlq_reason : DLQ_REASON_SCHEMA_VIOLATION;
    if (db_begin(db, err, errlen) &&
        dead_letter(db, cfg, rec, reason, why, check->cf.request_id, true, err, errlen) &&
        db_commit(db, err, errlen))
        return INTAKE_DEAD_LETTERED;
    db_rollback(db);
    return INTAKE_RETRY;
}

enum intake_status intake_process(struct db *db, const struct config *cfg,
                                  const struct kafka_record *rec, char *err, size_t errlen)
{
    struct intake_check check;
    enum intake_status status;
    char refused[700] = "";

    intake_check_record(cfg, rec, timeutil_now_ms(), &check);
    if (!db_begin(db, err, errlen)) {
        intake_check_clear(&check);
        return INTAKE_RETRY;
    }
    status = process_in_tx(db, cfg, rec, &check, err, errlen);
    if (status == INTAKE_RETRY) {
        bool blames_message = db_failure_blames_message(db);
        db_rollback(db);
        /* Only an outage, a server fault or a bug of ours is worth waiting
         * for; one message the database cannot take must not stop the
         * partition (and, through the pause, every partition). */
        if (blames_message)
            status =
                dead_letter_refused(db, cfg, rec, &check, refused, sizeof(refused), err, errlen);
    } else if (!db_commit(db, err, errlen)) {
        db_rollback(db);
        status = INTAKE_RETRY;
    }

    struct log_ctx ctx = LOG_CTX_INIT;
    ctx.topic = rec->topic;
    ctx.partition = rec->partition;
    ctx.offset = rec->offset;
    ctx.request_id = check.cf.request_id;
    ctx.correlation_id = check.ev.correlationid;
    switch (status) {
    case INTAKE_ACCEPTED:
        log_emit(LOG_INFO, &ctx, "accepted cancel request; attempt 1 scheduled");
        break;
    case INTAKE_DUPLICATE:
        log_emit(LOG_INFO, &ctx, "duplicate cancel request ignored");
        break;
    case INTAKE_DEAD_LETTERED:
        log_emit(LOG_WARN, &ctx, "dead-lettered message: %s",
                 refused[0] != '\0'         ? refused
                 : check.dlq_reason != NULL ? check.error
                                            : "idempotency conflict");
        break;
    case INTAKE_RETRY:
        log_emit(LOG_WARN, &ctx, "could not process message, will retry: %s", err);
        break;
    }
    intake_check_clear(&check);
    return status;
}
