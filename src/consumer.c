/*
 * consumer: see consumer.h.
 */
#include "consumer.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "log.h"
#include "signals.h"

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

static int64_t now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
        int64_t until = now_mono_ms() + backoff;
        while (!signals_stop_requested() && now_mono_ms() < until) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
            if (m != NULL)
                rd_kafka_message_destroy(m);
        }
        if ((h->ready == NULL || h->ready(h->arg)) && consumer_rewind_and_resume(rk))
            return;
        backoff = backoff * 2 > CONSUMER_BACKOFF_MAX_MS ? CONSUMER_BACKOFF_MAX_MS : backoff * 2;
    }
}

int consumer_run(rd_kafka_t *rk, const char *const *topics, const struct consumer_handler *h)
{
    char err[512];
    int64_t last_idle = now_mono_ms();
    int64_t backoff = CONSUMER_BACKOFF_MIN_MS;

    if (!consumer_subscribe(rk, topics, err, sizeof(err))) {
        log_error("%s", err);
        return 1;
    }
    while (!signals_stop_requested()) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 250);
        if (h->idle != NULL && now_mono_ms() - last_idle >= h->idle_ms) {
            h->idle(h->arg);
            last_idle = now_mono_ms();
        }
        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                rd_kafka_message_destroy(m);
                continue;
            }
            char fatal[256];
            bool is_fatal =
                m->err == RD_KAFKA_RESP_ERR__FATAL ||
                kafka_fatal_error_text(rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR;
            log_emit(is_fatal ? LOG_ERROR : LOG_WARN, NULL, "consumer error: %s",
                     rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (is_fatal)
                return 1;
            continue;
        }
        struct kafka_record rec;
        consumer_record(m, &rec);
        if (h->handle(h->arg, &rec) == CONSUMER_DONE) {
            /* Async: a lost commit only means a redelivery, which the
             * handlers absorb; a sync commit per message would cap throughput
             * at the broker's round trip. */
            rd_kafka_commit_message(rk, m, 1);
            backoff = CONSUMER_BACKOFF_MIN_MS;
        } else {
            rd_kafka_message_destroy(m);
            int64_t wanted = h->retry_wait_ms != NULL ? h->retry_wait_ms(h->arg) : 0;
            wait_until_ready(rk, h, wanted > backoff ? wanted : backoff);
            /* Consecutive failures back off further, across rewinds. */
            backoff = backoff * 2 > CONSUMER_BACKOFF_MAX_MS ? CONSUMER_BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        rd_kafka_message_destroy(m);
    }
    return 0;
}
