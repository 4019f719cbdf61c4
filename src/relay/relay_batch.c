/*
 * relay_batch: one batch of the active outbox-relay: produce the due rows,
 * wait for their delivery reports while keeping the lease, decide each row
 * (relay_verdict_of), park the ones the broker can never accept, and mark
 * the rest with the lease's fencing token. See relay.h and relay_internal.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/signals.h"
#include "event/dlq.h"
#include "kafka/kafka.h"
#include "relay/relay_internal.h"
#include "store/outbox.h"

/* Longest wait for librdkafka to hand back the reports of messages a batch
 * gave up on (purged): they come at the next poll, this is a safety net. */
#define RELAY_DRAIN_MS 5000
/* Rows sent again by themselves per batch to find which one a broker
 * refused: each costs a round trip, and more of them point to a
 * configuration fault (see docs/operations.md "Parked outbox rows") rather
 * than to poison rows. The rest are retried with the next batch. */
#define RELAY_ALONE_MAX 20
/* A topic-existence check is one metadata request. */
#define RELAY_METADATA_TIMEOUT_MS 5000
/* Topics checked per batch, remembered for the rest of it. */
#define RELAY_TOPIC_CACHE 8
/* Longest run of batches read after the previous one's last id (r->after_id)
 * before one is read from the first due row again. */
#define RELAY_AFTER_MAX_MS 1000

enum relay_verdict relay_verdict_of(rd_kafka_resp_err_t err, bool alone)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return RELAY_PUBLISHED;
    /* librdkafka says so after a metadata response without the topic (and,
     * for a new topic, after topic.metadata.propagation.max.ms), a broker
     * while a topic is being created: worth one explicit look before a row
     * is put aside for it. */
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        return RELAY_CHECK_TOPIC;
    default:
        break;
    }
    if (kafka_classify(err) == KAFKA_ERR_PERMANENT)
        return alone ? RELAY_PARK : RELAY_SEND_ALONE;
    return RELAY_RETRY;
}

const char *relay_verdict_name(enum relay_verdict v)
{
    switch (v) {
    case RELAY_PUBLISHED:
        return "published";
    case RELAY_RETRY:
        return "retry";
    case RELAY_SEND_ALONE:
        return "send alone";
    case RELAY_CHECK_TOPIC:
        return "check topic";
    case RELAY_PARK:
        break;
    }
    return "park";
}

void relay_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct delivery *d = msg->_private;
    (void)rk;
    (void)opaque;
    /* A report for a slot not waiting for one would be a bug; keep it from
     * marking the wrong row. */
    if (d == NULL || d->state != DELIVERY_IN_FLIGHT)
        return;
    d->state = DELIVERY_DONE;
    d->err = msg->err;
}

/* What the batch decided, to write once it has looked at every row. */
struct batch_outcome {
    int64_t *ok_ids; /* n slots */
    size_t n_ok, n_failed, n_parked;
    bool lost; /* the lease was lost while writing */
    struct {
        const char *topic;
        int exists; /* 1, 0, -1 could not tell */
    } topics[RELAY_TOPIC_CACHE];
    size_t n_topics;
};

enum produce_result { PRODUCE_QUEUED, PRODUCE_DONE, PRODUCE_GAVE_UP };

/* Hand one row to librdkafka with slot d. PRODUCE_DONE: refused at once
 * (d->err, d->at_produce) or not buildable (d->unbuildable);
 * PRODUCE_GAVE_UP: the producer's queue stayed full until a stop or the
 * lease's end (d left idle: the row stays unpublished). */
static enum produce_result produce_one(struct relay *r, const struct outbox_row *row,
                                       struct delivery *d)
{
    char err[512];

    d->id = row->id;
    d->state = DELIVERY_IDLE;
    d->err = RD_KAFKA_RESP_ERR_NO_ERROR;
    d->at_produce = false;
    d->unbuildable = false;
    rd_kafka_headers_t *hdrs =
        row->headers != NULL ? dlq_headers_to_kafka(row->headers, err, sizeof(err)) : NULL;
    if (hdrs == NULL) {
        d->state = DELIVERY_DONE;
        d->unbuildable = true;
        return PRODUCE_DONE;
    }
    size_t key_len = row->key != NULL ? strlen(row->key) : 0;
    /* In flight before producev: its report may be served by any poll from
     * here on. */
    d->state = DELIVERY_IN_FLIGHT;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            r->producer, RD_KAFKA_V_TOPIC(row->topic), RD_KAFKA_V_KEY(row->key, key_len),
            RD_KAFKA_V_VALUE(row->value, row->value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return PRODUCE_QUEUED; /* hdrs now belong to the message */
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !signals_stop_requested() && relay_keep_lead(r)) {
            rd_kafka_poll(r->producer, 100);
            continue;
        }
        rd_kafka_headers_destroy(hdrs);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            d->state = DELIVERY_IDLE;
            return PRODUCE_GAVE_UP;
        }
        d->state = DELIVERY_DONE;
        d->err = e;
        d->at_produce = true;
        return PRODUCE_DONE;
    }
}

/* Produce rows 0..n-1 while this relay may publish: a frozen relay that
 * wakes, or one that could not renew, stops here before another message
 * leaves (the lease is checked on the monotonic clock before each one). */
static void produce_rows(struct relay *r, const struct outbox_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        r->dl[i].state = DELIVERY_IDLE;
        r->dl[i].id = rows[i].id;
    }
    for (size_t i = 0; i < n; i++) {
        if (signals_stop_requested() || !relay_lease_valid(&r->lease, mono_ms()))
            return;
        if (produce_one(r, &rows[i], &r->dl[i]) == PRODUCE_GAVE_UP)
            return;
    }
}

void relay_drop_ahead(struct relay *r)
{
    outbox_rows_free(r->ahead, r->n_ahead);
    r->ahead = NULL;
    r->n_ahead = 0;
}

/* The next batch is read from the first due row: rows below the last one
 * sent were left unpublished. */
static void restart_from_first(struct relay *r)
{
    r->after_id = 0;
    r->ahead_wanted = 0;
    r->from_first = true;
    relay_drop_ahead(r);
}

/* Take the result of the statement in flight (waiting for it if need be)
 * and act on it. */
static void take_query(struct relay *r)
{
    char err[512];
    bool held = true;
    enum relay_query q = r->query;

    r->query = RELAY_QUERY_NONE;
    if (q == RELAY_QUERY_FETCH) {
        if (!outbox_fetch_due_take(r->db, &r->ahead, &r->n_ahead, err, sizeof(err)))
            log_warn("%s", err);
        return;
    }
    if (q != RELAY_QUERY_MARK)
        return;
    if (!outbox_mark_published_take(r->db, &held, err, sizeof(err))) {
        /* Published but not marked: they go out again, from the first due
         * row; consumers absorb the duplicates. */
        log_warn("%s", err);
        restart_from_first(r);
        return;
    }
    if (!held) {
        restart_from_first(r);
        relay_step_down(r, "another relay took the lease; the rows it delivered stay unmarked");
        return;
    }
    log_debug("published %zu outbox rows", r->query_marked);
    metrics_add(r->metrics, "cancel_retry_outbox_published_total", NULL, (int64_t)r->query_marked);
}

void relay_db_idle(struct relay *r)
{
    if (r->query != RELAY_QUERY_NONE)
        take_query(r);
}

/* While messages travel: take the statement in flight once its result is
 * in, then send the read ahead of the next batch if one is wanted. Never
 * blocks. */
static void drive_query(struct relay *r)
{
    char err[512];

    if (r->query != RELAY_QUERY_NONE) {
        if (!db_result_ready(r->db))
            return;
        take_query(r);
    }
    if (r->ahead_wanted <= 0 || r->ahead != NULL || r->lease.epoch <= 0)
        return;
    if (outbox_fetch_due_send(r->db, r->ahead_wanted, r->cfg->relay.batch_size, err, sizeof(err))) {
        r->query = RELAY_QUERY_FETCH;
        r->ahead_after = r->ahead_wanted;
    } else {
        log_warn("%s", err);
    }
    r->ahead_wanted = 0;
}

static size_t count_in_flight(const struct delivery *dl, size_t n)
{
    size_t pending = 0;
    for (size_t i = 0; i < n; i++)
        pending += dl[i].state == DELIVERY_IN_FLIGHT;
    return pending;
}

/* Wait for every report of slots 0..n-1, keeping the lease. False when
 * waiting stopped first: the lease was lost, or a stop was requested and
 * flush_timeout passed. Success is decided by the report, not by producev;
 * librdkafka bounds the wait by message.timeout.ms. */
static bool wait_deliveries(struct relay *r, size_t n)
{
    int64_t stop_deadline = -1;
    while (count_in_flight(r->dl, n) > 0) {
        if (!relay_keep_lead(r))
            return false;
        if (signals_stop_requested()) {
            if (stop_deadline < 0)
                stop_deadline = mono_ms() + r->cfg->relay.flush_timeout_ms;
            else if (mono_ms() > stop_deadline)
                return false;
        }
        drive_query(r);
        /* A report ends the poll at once; a statement in flight is looked
         * at every millisecond. */
        rd_kafka_poll(r->producer, r->query != RELAY_QUERY_NONE ? 1 : 100);
    }
    return true;
}

/* The batch gives up on its messages still in flight: take them out of the
 * producer (their reports come back at once as purged) and wait for those
 * reports, so that none is left to arrive later. Their rows stay unpublished
 * and go out again (the broker may have them already: consumers dedup). */
static void drain_batch(struct relay *r, size_t n)
{
    size_t pending = count_in_flight(r->dl, n);
    if (pending == 0)
        return;
    log_warn("giving up on %zu pending deliveries; their rows stay unpublished", pending);
    rd_kafka_purge(r->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    int64_t until = mono_ms() + RELAY_DRAIN_MS;
    while (count_in_flight(r->dl, n) > 0 && mono_ms() < until)
        rd_kafka_poll(r->producer, 50);
    if (count_in_flight(r->dl, n) > 0) {
        /* Should not happen; if it does, a report must not reach a slot the
         * next batch uses: the producer goes, with what it still holds. */
        log_error("delivery reports still missing after purging; recreating the producer");
        relay_close_producer(r, 0);
        for (size_t i = 0; i < n; i++) {
            if (r->dl[i].state == DELIVERY_IN_FLIGHT)
                r->dl[i].state = DELIVERY_IDLE;
        }
    }
}

/* Whether topic exists, asked of the cluster now: 1 yes, 0 no, -1 no answer.
 * The answer also refreshes librdkafka's own view of the topic. Remembered
 * for the rest of the batch. */
static int topic_exists(struct relay *r, struct batch_outcome *o, const char *topic)
{
    for (size_t i = 0; i < o->n_topics; i++) {
        if (strcmp(o->topics[i].topic, topic) == 0)
            return o->topics[i].exists;
    }
    int exists = -1;
    const struct rd_kafka_metadata *md = NULL;
    /* No producer (drain_batch closed it): nobody to ask; retried later. */
    rd_kafka_topic_t *rkt =
        r->producer != NULL ? rd_kafka_topic_new(r->producer, topic, NULL) : NULL;
    if (r->producer == NULL) {
        exists = -1;
    } else if (rkt == NULL) {
        exists = 0; /* not even a valid topic name */
    } else if (rd_kafka_metadata(r->producer, 0, rkt, &md, RELAY_METADATA_TIMEOUT_MS) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR &&
               md->topic_cnt == 1) {
        rd_kafka_resp_err_t te = md->topics[0].err;
        if (te == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0)
            exists = 1;
        else if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                 te == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION)
            exists = 0;
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    if (o->n_topics < RELAY_TOPIC_CACHE) {
        o->topics[o->n_topics].topic = topic;
        o->topics[o->n_topics].exists = exists;
        o->n_topics++;
    }
    return exists;
}

/* Put row aside for good: an error in the log (with what to do), a count in
 * the metrics, parked_at in the database. There is no dead letter for it:
 * a row that cannot be published cannot announce itself through Kafka
 * either; operators learn of it from this log line, the metric and
 * cancelctl status. */
static void park(struct relay *r, struct batch_outcome *o, const struct outbox_row *row,
                 const char *code, const char *detail)
{
    char reason[600], err[512], labels[80];
    bool held = true;

    const struct outbox_fence fence = relay_fence(r);

    snprintf(reason, sizeof(reason), "%s: %s", code, detail);
    if (!outbox_park(r->db, &fence, row->id, reason, &held, err, sizeof(err))) {
        log_warn("%s", err);
        return;
    }
    if (!held) {
        o->lost = true;
        return;
    }
    o->n_parked++;
    snprintf(labels, sizeof(labels), "reason=\"%s\"", code);
    metrics_add(r->metrics, "cancel_retry_outbox_parked_total", labels, 1);
    struct log_ctx ctx = LOG_CTX_INIT;
    json_t *fields = json_pack("{s:I, s:s}", "outboxId", (json_int_t)row->id, "reason", code);
    /* Our events are keyed by their requestId, dead letters by the original
     * message's key: named as what it is. */
    if (row->key != NULL)
        json_object_set_new(fields, "key", json_string(row->key));
    ctx.fields = fields;
    ctx.topic = row->topic;
    log_emit(LOG_ERROR, &ctx,
             "outbox row %" PRId64 " parked, it can never be published as it is: %s;"
             " the relay moves on. Fix the cause, then: cancelctl outbox requeue --id %" PRId64,
             row->id, reason, row->id);
    json_decref(fields);
}

/* Record a transient failure; the row is retried with a later batch. */
static void retry_later(struct relay *r, struct batch_outcome *o, const struct outbox_row *row,
                        rd_kafka_resp_err_t e)
{
    char err[512];
    bool held = true;
    const struct outbox_fence fence = relay_fence(r);

    o->n_failed++;
    log_warn("could not publish outbox row %" PRId64 " to %s: %s", row->id, row->topic,
             rd_kafka_err2str(e));
    if (!outbox_mark_failed(r->db, &fence, row->id, rd_kafka_err2str(e), &held, err, sizeof(err)))
        log_warn("%s", err);
    else if (!held)
        o->lost = true;
}

/* Act on the verdict for row (slot d); RELAY_SEND_ALONE is the caller's. */
static void settle(struct relay *r, struct batch_outcome *o, const struct outbox_row *row,
                   const struct delivery *d, enum relay_verdict v)
{
    char detail[400];

    switch (v) {
    case RELAY_PUBLISHED:
        o->ok_ids[o->n_ok++] = row->id;
        return;
    case RELAY_PARK:
        park(r, o, row, rd_kafka_err2name(d->err), rd_kafka_err2str(d->err));
        return;
    case RELAY_CHECK_TOPIC: {
        int exists = topic_exists(r, o, row->topic);
        if (exists != 0) {
            retry_later(r, o, row, d->err);
            return;
        }
        snprintf(detail, sizeof(detail),
                 "topic \"%.200s\" does not exist on the cluster (%s; confirmed by a metadata "
                 "request)",
                 row->topic, rd_kafka_err2name(d->err));
        park(r, o, row, "UNKNOWN_TOPIC", detail);
        return;
    }
    case RELAY_SEND_ALONE:
    case RELAY_RETRY:
        break;
    }
    retry_later(r, o, row, d->err);
}

/* The headers of a row that could not be built, in words. */
static void park_unbuildable(struct relay *r, struct batch_outcome *o, const struct outbox_row *row)
{
    char why[512];

    if (row->headers == NULL) {
        snprintf(why, sizeof(why), "headers are not readable JSON: %s", row->headers_error);
    } else {
        rd_kafka_headers_t *h = dlq_headers_to_kafka(row->headers, why, sizeof(why));
        if (h != NULL) {
            rd_kafka_headers_destroy(h); /* cannot happen: it failed a moment ago */
            snprintf(why, sizeof(why), "headers could not be built");
        }
    }
    park(r, o, row, "BAD_HEADERS", why);
}

/* Send row i again by itself, nothing else of ours in flight, and settle it
 * on that answer. False when the relay stopped waiting (stop, lost lease). */
static bool send_alone(struct relay *r, struct batch_outcome *o, const struct outbox_row *rows,
                       size_t n, size_t i)
{
    struct delivery *d = &r->dl[i];

    if (r->producer == NULL || produce_one(r, &rows[i], d) == PRODUCE_GAVE_UP)
        return false;
    if (!wait_deliveries(r, n)) {
        drain_batch(r, n);
        return false;
    }
    if (d->unbuildable)
        park_unbuildable(r, o, &rows[i]);
    else
        settle(r, o, &rows[i], d, relay_verdict_of(d->err, true));
    return true;
}

static bool purged(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR__PURGE_QUEUE || e == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
}

/* Decide every reported row of the batch. Rows refused together with others
 * are sent again one by one afterwards, when nothing else is in flight. */
static void settle_batch(struct relay *r, struct batch_outcome *o, const struct outbox_row *rows,
                         size_t n)
{
    size_t alone = 0;

    for (size_t i = 0; i < n && !o->lost; i++) {
        const struct delivery *d = &r->dl[i];
        if (d->state != DELIVERY_DONE || purged(d->err))
            continue; /* not sent, or given up on: unpublished, not a failure of the row */
        if (d->unbuildable) {
            park_unbuildable(r, o, &rows[i]);
            continue;
        }
        enum relay_verdict v = relay_verdict_of(d->err, d->at_produce);
        if (v == RELAY_SEND_ALONE)
            alone++;
        else
            settle(r, o, &rows[i], d, v);
    }
    size_t sent_alone = 0;
    for (size_t i = 0; i < n && alone > 0 && !o->lost; i++) {
        const struct delivery *d = &r->dl[i];
        if (d->state != DELIVERY_DONE || d->unbuildable || purged(d->err) ||
            relay_verdict_of(d->err, d->at_produce) != RELAY_SEND_ALONE)
            continue;
        alone--;
        if (sent_alone >= RELAY_ALONE_MAX || signals_stop_requested() ||
            !relay_lease_valid(&r->lease, mono_ms())) {
            retry_later(r, o, &rows[i], d->err);
            continue;
        }
        log_info("outbox row %" PRId64 " was refused with others (%s); sending it by itself",
                 rows[i].id, rd_kafka_err2name(d->err));
        sent_alone++;
        if (!send_alone(r, o, rows, n, i))
            break;
    }
}

/* Whether every row of the batch was delivered, nothing to settle one by
 * one. */
static bool all_delivered(const struct relay *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct delivery *d = &r->dl[i];
        if (d->state != DELIVERY_DONE || d->unbuildable || d->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            return false;
    }
    return true;
}

int relay_publish_batch(struct relay *r)
{
    char err[512];
    struct outbox_row *rows = NULL;
    size_t n = 0;
    struct batch_outcome o;

    memset(&o, 0, sizeof(o));
    if (r->after_id > 0 && mono_ms() - r->after_since_ms >= RELAY_AFTER_MAX_MS)
        r->after_id = 0;
    r->from_first = false;
    int64_t after = r->after_id;
    /* Set again below only by a full batch that ended without a failure. */
    r->after_id = 0;
    if (r->query == RELAY_QUERY_FETCH)
        take_query(r);
    if (after > 0 && r->ahead != NULL && r->ahead_after == after) {
        /* Read while the previous batch travelled. */
        rows = r->ahead;
        n = r->n_ahead;
        r->ahead = NULL;
        r->n_ahead = 0;
    } else {
        relay_drop_ahead(r);
        relay_db_idle(r);
        if (r->lease.epoch <= 0)
            return 0; /* the previous batch's mark found the lease taken */
        if (!outbox_fetch_due_after(r->db, after, r->cfg->relay.batch_size, &rows, &n, err,
                                    sizeof(err))) {
            log_warn("%s", err);
            return -1;
        }
    }
    if (n == 0)
        return 0;
    o.ok_ids = calloc(n, sizeof(*o.ok_ids));
    if (o.ok_ids == NULL) {
        outbox_rows_free(rows, n);
        log_error("out of memory");
        return -1;
    }
    produce_rows(r, rows, n);
    /* A full batch: the next one is probably due as well; read it while
     * this one travels (drive_query). */
    if (n == (size_t)r->cfg->relay.batch_size)
        r->ahead_wanted = rows[n - 1].id;
    /* Stopped waiting or not, nothing of the batch stays in the producer. */
    if (!wait_deliveries(r, n))
        drain_batch(r, n);
    r->ahead_wanted = 0;
    int result = (int)n;
    if (!relay_lease_valid(&r->lease, mono_ms())) {
        /* Whatever was delivered stays unmarked: the next active relay
         * publishes it again, and consumers absorb the duplicates. */
        size_t delivered = 0;
        for (size_t i = 0; i < n; i++)
            delivered += r->dl[i].state == DELIVERY_DONE && !r->dl[i].at_produce &&
                         r->dl[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
        if (r->lease.epoch > 0)
            relay_step_down(r, "its lease ran out during a batch");
        log_warn("this relay is no longer the active one: of a batch of %zu rows, %zu were"
                 " delivered and stay unmarked, the rest were not sent; the active relay"
                 " publishes them",
                 n, delivered);
        goto out;
    }
    /* Parking and failures are written one by one, on a free connection;
     * the read ahead goes: the rows that failed come first again. */
    if (!all_delivered(r, n)) {
        relay_drop_ahead(r);
        relay_db_idle(r);
        if (r->lease.epoch <= 0)
            goto out;
    }
    settle_batch(r, &o, rows, n);
    if (o.lost) {
        relay_step_down(r, "another relay took the lease; the rows it delivered stay unmarked");
        goto out;
    }
    /* The mark goes out now and its result is taken while the next batch
     * travels: nothing here is marked before its delivery report, and
     * the mark is fenced like every write of the relay. */
    relay_db_idle(r);
    if (r->lease.epoch <= 0)
        goto out;
    const struct outbox_fence fence = relay_fence(r);
    if (o.n_ok > 0) {
        if (outbox_mark_published_send(r->db, &fence, o.ok_ids, o.n_ok, err, sizeof(err))) {
            r->query = RELAY_QUERY_MARK;
            r->query_marked = o.n_ok;
        } else {
            /* Published but not marked: they go out again after the db
             * returns; consumers absorb the duplicates. */
            log_warn("%s", err);
            result = -1;
        }
    }
    if (result == (int)r->cfg->relay.batch_size && o.n_ok + o.n_parked == n && !r->from_first) {
        /* Every row ended: the next batch goes on after this one. */
        if (after == 0)
            r->after_since_ms = mono_ms();
        r->after_id = rows[n - 1].id;
    }
    metrics_add(r->metrics, "cancel_retry_outbox_publish_failures_total", NULL,
                (int64_t)o.n_failed);
    if (o.n_failed > 0) {
        r->failure_backoff_ms =
            r->failure_backoff_ms == 0
                ? 500
                : (r->failure_backoff_ms * 2 > 30000 ? 30000 : r->failure_backoff_ms * 2);
        log_warn("%zu of %zu rows not published; retrying in %" PRId64 " ms", o.n_failed, n,
                 r->failure_backoff_ms);
        relay_pause_ms(r, r->failure_backoff_ms);
    } else {
        r->failure_backoff_ms = 0;
    }
out:
    r->from_first = false;
    free(o.ok_ids);
    outbox_rows_free(rows, n);
    return result;
}
