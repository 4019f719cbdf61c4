/*
 * intake: see intake.h.
 */
#include "core/intake.h"

#include <stdio.h>
#include <string.h>

#include "base/bounds.h"
#include "base/clock.h"
#include "base/log.h"
#include "event/dlq.h"
#include "store/outbox.h"
#include "store/pgutil.h"
#include "store/request_events.h"
#include "store/request_store.h"

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

/* The Kafka key, when there is one, must be the requestId (docs/contracts.md
 * "Input rules"): the partition of a request decides which consumer sees its
 * duplicates, and a replayed dead letter is keyed by the requestId. */
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
        .at_ms = wall_ms(),
    };
    return request_events_dead_letter(db, cfg, rec->value, rec->len, key, &meta, err, errlen);
}

/* One message of a batch and what became of it. */
struct intake_item {
    const struct kafka_record *rec;
    struct intake_check check;
    enum intake_status status;
    /* dlq.error when it is not check.error: an idempotency conflict, or what
     * the database refused */
    char why[700];
};

/* Room for record_batch() over up to cap messages, allocated before the
 * transaction begins: running out of memory inside it would look like the
 * messages' fault (db_failure_blames_message). */
struct intake_scratch {
    struct request_source *srcs;
    struct request_new *reqs;
    size_t *item_of;
    struct outbox_event *events;
    struct outbox_msg *msgs;
    const char **ids;
    struct request_row *rows;
    bool *found;
};

static void scratch_free(struct intake_scratch *s)
{
    free(s->srcs);
    free(s->reqs);
    free(s->item_of);
    free(s->events);
    free(s->msgs);
    free(s->ids);
    free(s->rows);
    free(s->found);
}

static bool scratch_alloc(struct intake_scratch *s, size_t cap)
{
    s->srcs = calloc(cap, sizeof(*s->srcs));
    s->reqs = calloc(cap, sizeof(*s->reqs));
    s->item_of = calloc(cap, sizeof(*s->item_of));
    s->events = calloc(cap, sizeof(*s->events));
    s->msgs = calloc(cap, sizeof(*s->msgs));
    s->ids = calloc(cap, sizeof(*s->ids));
    s->rows = calloc(cap, sizeof(*s->rows));
    s->found = calloc(cap, sizeof(*s->found));
    return s->srcs != NULL && s->reqs != NULL && s->item_of != NULL && s->events != NULL &&
           s->msgs != NULL && s->ids != NULL && s->rows != NULL && s->found != NULL;
}

/* The request a valid message makes. Attempt 1 is due at once:
 * initial_delay is the wait before attempt 2 (retry_policy.h). */
static void new_request(const struct intake_item *it, int64_t now, struct request_source *src,
                        struct request_new *req)
{
    const struct kafka_record *rec = it->rec;
    const struct intake_check *check = &it->check;
    const struct retry_policy *policy = &check->gateway->retry;

    *src = (struct request_source){
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
    *req = (struct request_new){
        .cf = &check->cf,
        .src = src,
        .max_attempts = policy->max_attempts,
        .first_attempt_ms = now,
        .deadline_ms = now + policy->deadline_ms,
        .key_ttl_ms = config_gateway_key_binding_ms(check->gateway),
    };
}

/* Record items[0..n) in the open transaction, in a fixed number of
 * statements: one insert of the new requests, one of their RetryScheduled
 * events, one read of the requests that existed already; then a dead letter
 * per invalid or conflicting message, in message order. A message whose
 * requestId existed (before the batch, or earlier in it) is compared with
 * the row as it stands, exactly as if the messages were recorded one by one.
 * Sets each item's status. False with err on a db failure, or on a message
 * whose event cannot be built: db_failure_blames_message() says whose fault
 * it was. */
static bool record_batch(struct db *db, const struct config *cfg, struct intake_item *items,
                         size_t n, struct intake_scratch *s, char *err, size_t errlen)
{
    int64_t now = wall_ms();
    size_t nvalid = 0, nnew = 0, nold = 0, nrows = 0;
    bool ok = false;

    for (size_t i = 0; i < n; i++) {
        if (items[i].check.dlq_reason != NULL)
            continue;
        new_request(&items[i], now, &s->srcs[nvalid], &s->reqs[nvalid]);
        s->item_of[nvalid++] = i;
    }
    if (!request_store_insert_many(db, s->reqs, nvalid, err, errlen))
        return false;
    for (size_t j = 0; j < nvalid; j++) {
        struct intake_item *it = &items[s->item_of[j]];
        if (!s->reqs[j].inserted) {
            /* nold <= j: item_of is compacted in place to the old ones. */
            s->ids[nold] = it->check.cf.request_id;
            s->item_of[nold++] = s->item_of[j];
            continue;
        }
        struct cancel_request_fields fields;
        cancel_failed_fields(&it->check.cf, &fields);
        if (!request_events_retry_build(cfg, &fields, it->check.ev.correlationid, 1, now,
                                        &s->events[nnew], err, errlen))
            goto out;
        s->msgs[nnew] = s->events[nnew].msg;
        nnew++;
        it->status = INTAKE_ACCEPTED;
    }
    if (!outbox_insert_many(db, s->msgs, nnew, err, errlen))
        goto out;

    /* A redelivery or an upstream duplicate is fine; different money under
     * the same idempotency key is never refunded. */
    if (!request_store_get_many(db, s->ids, nold, s->rows, s->found, err, errlen))
        goto out;
    nrows = nold;
    for (size_t k = 0; k < nold; k++) {
        struct intake_item *it = &items[s->item_of[k]];
        if (!s->found[k]) {
            snprintf(err, errlen, "request %s vanished during intake", it->check.cf.request_id);
            goto out;
        }
        it->status = INTAKE_DUPLICATE;
        if (!same_money(&s->rows[k], &it->check.cf)) {
            describe_conflict(&s->rows[k], &it->check.cf, it->why, sizeof(it->why));
            it->status = INTAKE_DEAD_LETTERED;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct intake_item *it = &items[i];
        const struct intake_check *check = &it->check;
        if (check->dlq_reason != NULL) {
            if (!dead_letter(db, cfg, it->rec, check->dlq_reason, check->error, NULL, false, err,
                             errlen))
                goto out;
            it->status = INTAKE_DEAD_LETTERED;
        } else if (it->status == INTAKE_DEAD_LETTERED) {
            if (!dead_letter(db, cfg, it->rec, DLQ_REASON_IDEMPOTENCY_CONFLICT, it->why,
                             check->cf.request_id, false, err, errlen))
                goto out;
        }
    }
    ok = true;
out:
    for (size_t k = 0; k < nnew; k++)
        outbox_event_clear(&s->events[k]);
    for (size_t k = 0; k < nrows; k++)
        if (s->found[k])
            request_row_clear(&s->rows[k]);
    return ok;
}

/* The database refused something this message carries (db.h,
 * db_failure_blames_message): the same statements would fail the same way
 * forever, so the message is dead-lettered, with the database's message and
 * SQLSTATE (err) in dlq.error. Keyed by the requestId only, so that a Kafka
 * key the database refused cannot fail it again. The reason stays the
 * message's own when it was being dead-lettered already. */
static bool dead_letter_refused(struct db *db, const struct config *cfg, struct intake_item *it,
                                char *err, size_t errlen)
{
    const struct intake_check *check = &it->check;
    snprintf(it->why, sizeof(it->why), "the database refused the message: %s", err);
    it->status = INTAKE_DEAD_LETTERED;
    const char *reason =
        check->dlq_reason != NULL ? check->dlq_reason : DLQ_REASON_SCHEMA_VIOLATION;
    return dead_letter(db, cfg, it->rec, reason, it->why, check->cf.request_id, true, err, errlen);
}

static const char sql_savepoint[] = "SAVEPOINT intake_message";
static const char sql_rollback_to[] = "ROLLBACK TO SAVEPOINT intake_message";
static const char sql_release[] = "RELEASE SAVEPOINT intake_message";

/* After a message failed the batch: record items one at a time, each under
 * a savepoint, so that exactly the messages the database refuses are
 * dead-lettered and the others recorded, in the same transaction. False
 * when a failure is not a message's fault (the caller rolls back). */
static bool record_one_by_one(struct db *db, const struct config *cfg, struct intake_item *items,
                              size_t n, struct intake_scratch *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!pgutil_command(db, sql_savepoint, 0, NULL, "could not set a savepoint", err, errlen))
            return false;
        if (!record_batch(db, cfg, &items[i], 1, s, err, errlen)) {
            /* Only an outage, a server fault or a bug of ours is worth
             * waiting for; one message the database cannot take must not
             * stop the partition (and, through the pause, every one). */
            if (!db_failure_blames_message(db) ||
                !pgutil_command(db, sql_rollback_to, 0, NULL, "could not roll back a message", err,
                                errlen) ||
                !dead_letter_refused(db, cfg, &items[i], err, errlen))
                return false;
        }
        if (!pgutil_command(db, sql_release, 0, NULL, "could not release a savepoint", err, errlen))
            return false;
    }
    return true;
}

static void log_item(const struct intake_item *it)
{
    struct log_ctx ctx = LOG_CTX_INIT;
    ctx.topic = it->rec->topic;
    ctx.partition = it->rec->partition;
    ctx.offset = it->rec->offset;
    ctx.request_id = it->check.cf.request_id;
    ctx.correlation_id = it->check.ev.correlationid;
    switch (it->status) {
    case INTAKE_ACCEPTED:
        log_emit(LOG_INFO, &ctx, "accepted cancel request; attempt 1 scheduled");
        break;
    case INTAKE_DUPLICATE:
        log_emit(LOG_INFO, &ctx, "duplicate cancel request ignored");
        break;
    case INTAKE_DEAD_LETTERED:
        log_emit(LOG_WARN, &ctx, "dead-lettered message: %s",
                 it->why[0] != '\0' ? it->why : it->check.error);
        break;
    case INTAKE_RETRY:
        break;
    }
}

bool intake_process_batch(struct db *db, const struct config *cfg, const struct kafka_record *recs,
                          size_t n, enum intake_status *statuses, char *err, size_t errlen)
{
    struct intake_scratch scratch = {0};
    struct intake_item *items = calloc(n, sizeof(*items));
    bool ok = false;

    for (size_t i = 0; i < n; i++)
        statuses[i] = INTAKE_RETRY;
    if (items == NULL || !scratch_alloc(&scratch, n)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    int64_t now = wall_ms();
    for (size_t i = 0; i < n; i++) {
        items[i].rec = &recs[i];
        intake_check_record(cfg, &recs[i], now, &items[i].check);
    }
    ok = db_begin(db, err, errlen) && record_batch(db, cfg, items, n, &scratch, err, errlen);
    if (!ok && db_failure_blames_message(db)) {
        /* Rare: a message the database refuses. Start over and find it. */
        db_rollback(db);
        struct log_ctx ctx = LOG_CTX_INIT;
        ctx.topic = recs[0].topic;
        ctx.partition = recs[0].partition;
        ctx.offset = recs[0].offset;
        log_emit(LOG_WARN, &ctx,
                 "a message of a batch of %zu failed it (%s); recording them one at a time", n,
                 err);
        for (size_t i = 0; i < n; i++) {
            items[i].status = INTAKE_RETRY;
            items[i].why[0] = '\0';
        }
        ok = db_begin(db, err, errlen) &&
             record_one_by_one(db, cfg, items, n, &scratch, err, errlen);
    }
    ok = ok && db_commit(db, err, errlen);
    if (!ok) {
        db_rollback(db);
        struct log_ctx ctx = LOG_CTX_INIT;
        ctx.topic = recs[0].topic;
        ctx.partition = recs[0].partition;
        ctx.offset = recs[0].offset;
        log_emit(LOG_WARN, &ctx, "could not process %zu message%s, will retry: %s", n,
                 n == 1 ? "" : "s", err);
    }
    for (size_t i = 0; i < n; i++) {
        if (ok) {
            statuses[i] = items[i].status;
            log_item(&items[i]);
        }
        intake_check_clear(&items[i].check);
    }
out:
    scratch_free(&scratch);
    free(items);
    return ok;
}
