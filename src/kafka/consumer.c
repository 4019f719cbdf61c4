/*
 * consumer: see consumer.h.
 */
#include "kafka/consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/signals.h"
#include "kafka/kafka.h"

#define CONSUMER_BACKOFF_MIN_MS 200
#define CONSUMER_BACKOFF_MAX_MS 10000

void consumer_record(const rd_kafka_message_t *msg, struct kafka_record *rec)
{
    rd_kafka_timestamp_type_t tstype;

    rec->topic = rd_kafka_topic_name(msg->rkt);
    rec->partition = msg->partition;
    rec->offset = msg->offset;
    rec->timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
    rec->key = msg->key;
    rec->key_len = msg->key_len;
    rec->value = msg->payload != NULL ? msg->payload : "";
    rec->len = msg->len;
    rec->msg = msg;
}

bool consumer_subscribe(rd_kafka_t *rk, const char *const *topics, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; topics[i] != NULL; i++)
        rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "could not subscribe to %s%s: %s", topics[0],
                 topics[0] != NULL && topics[1] != NULL ? " and others" : "", rd_kafka_err2str(e));
        return false;
    }
    return true;
}

void consumer_pause(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return;
    if (parts->cnt > 0)
        rd_kafka_pause_partitions(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

void consumer_resume(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return;
    if (parts->cnt > 0)
        rd_kafka_resume_partitions(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

bool consumer_rewind_and_resume(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    bool ok = false;

    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return false;
    if (parts->cnt == 0) {
        ok = true;
        goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("could not read committed offsets to rewind: %s", rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].offset < 0)
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_error_t *error = rd_kafka_seek_partitions(rk, parts, 10000);
    if (error != NULL) {
        log_warn("could not rewind partitions: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        goto out;
    }
    rd_kafka_resume_partitions(rk, parts);
    ok = true;
out:
    rd_kafka_topic_partition_list_destroy(parts);
    return ok;
}

/* Paused: keep serving the consumer (rebalances, heartbeats) while waiting for
 * h->ready, then rewind. Messages polled meanwhile were prefetched before the
 * pause; they are dropped here and read again after the rewind. */
static void wait_until_ready(rd_kafka_t *rk, const struct consumer_handler *h, int64_t backoff)
{
    consumer_pause(rk);
    while (!signals_stop_requested()) {
        /* Always wait first: an error that is not an outage (a statement
         * timeout, a bug) must not turn into a hot loop. */
        int64_t until = mono_ms() + backoff;
        while (!signals_stop_requested() && mono_ms() < until) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
            if (m != NULL)
                rd_kafka_message_destroy(m);
        }
        if ((h->ready == NULL || h->ready(h->arg)) && consumer_rewind_and_resume(rk))
            return;
        backoff = backoff * 2 > CONSUMER_BACKOFF_MAX_MS ? CONSUMER_BACKOFF_MAX_MS : backoff * 2;
    }
}

/* Poll one batch into msgs (see struct consumer_handler). Returns how many
 * messages it holds (0: none arrived, or only events such as a partition's
 * end), or -1 after a fatal consumer error (nothing held). */
static int poll_batch(rd_kafka_t *rk, rd_kafka_message_t **msgs, int max, int64_t window_ms)
{
    int n = 0;
    size_t bytes = 0;
    int64_t deadline = 0;

    while (n < max && bytes < CONSUMER_BATCH_MAX_BYTES) {
        int timeout = 250;
        if (n > 0) {
            int64_t left = deadline - mono_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, timeout);
        if (m == NULL)
            break;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (n == 0)
                deadline = mono_ms() + window_ms;
            msgs[n++] = m;
            bytes += m->len;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            if (n == 0)
                break;
            continue;
        }
        char fatal[256];
        bool is_fatal =
            m->err == RD_KAFKA_RESP_ERR__FATAL ||
            kafka_fatal_error_text(rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR;
        log_emit(is_fatal ? LOG_ERROR : LOG_WARN, NULL, "consumer error: %s",
                 rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        if (is_fatal) {
            /* Nothing of the batch was processed: it is read again by
             * whoever takes the partitions over. */
            for (int i = 0; i < n; i++)
                rd_kafka_message_destroy(msgs[i]);
            return -1;
        }
        if (n == 0)
            break;
    }
    return n;
}

/* Commit, per partition, the offset after the last message of the batch. */
static void commit_batch(rd_kafka_t *rk, rd_kafka_message_t *const *msgs, int n)
{
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(4);
    for (int i = 0; i < n; i++) {
        const char *topic = rd_kafka_topic_name(msgs[i]->rkt);
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(offsets, topic, msgs[i]->partition);
        if (p == NULL)
            p = rd_kafka_topic_partition_list_add(offsets, topic, msgs[i]->partition);
        if (p->offset < msgs[i]->offset + 1)
            p->offset = msgs[i]->offset + 1;
    }
    /* Async: a lost commit only means a redelivery, which the handlers
     * absorb; a sync commit per batch would add the broker's round trip to
     * every batch. */
    rd_kafka_commit(rk, offsets, 1);
    rd_kafka_topic_partition_list_destroy(offsets);
}

int consumer_run(rd_kafka_t *rk, const char *const *topics, const struct consumer_handler *h)
{
    char err[512];
    int64_t last_idle = mono_ms();
    int64_t backoff = CONSUMER_BACKOFF_MIN_MS;
    int max = h->batch_size > 1 ? h->batch_size : 1;
    int rc = 1;

    rd_kafka_message_t **msgs = calloc((size_t)max, sizeof(*msgs));
    struct kafka_record *recs = calloc((size_t)max, sizeof(*recs));
    if (msgs == NULL || recs == NULL) {
        log_error("out of memory");
        goto out;
    }
    if (!consumer_subscribe(rk, topics, err, sizeof(err))) {
        log_error("%s", err);
        goto out;
    }
    while (!signals_stop_requested()) {
        int n = poll_batch(rk, msgs, max, h->batch_window_ms);
        if (h->idle != NULL && mono_ms() - last_idle >= h->idle_ms) {
            h->idle(h->arg);
            last_idle = mono_ms();
        }
        if (n < 0)
            goto out;
        if (n == 0)
            continue;
        for (int i = 0; i < n; i++)
            consumer_record(msgs[i], &recs[i]);
        enum consumer_verdict v = h->handle(h->arg, recs, (size_t)n);
        if (v == CONSUMER_DONE)
            commit_batch(rk, msgs, n);
        for (int i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        if (v == CONSUMER_DONE) {
            backoff = CONSUMER_BACKOFF_MIN_MS;
            continue;
        }
        int64_t wanted = h->retry_wait_ms != NULL ? h->retry_wait_ms(h->arg) : 0;
        wait_until_ready(rk, h, wanted > backoff ? wanted : backoff);
        /* Consecutive failures back off further, across rewinds. */
        backoff = backoff * 2 > CONSUMER_BACKOFF_MAX_MS ? CONSUMER_BACKOFF_MAX_MS : backoff * 2;
    }
    rc = 0;
out:
    free(msgs);
    free(recs);
    return rc;
}
