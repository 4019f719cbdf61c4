/*
 * consumer: the consume loop of the intake, which hands its handler a batch
 * of messages at a time, and the pause/rewind used by every consumer when
 * the database goes away.
 *
 * Offsets are committed only after the handler made the effects of the
 * whole batch durable. When the handler cannot (db down), the consumer
 * pauses its partitions, waits for the dependency with back-off, then
 * rewinds every partition to its committed offset and resumes: nothing is
 * skipped, and what is read twice is absorbed by the handlers' idempotency.
 */
#ifndef CR_CONSUMER_H
#define CR_CONSUMER_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "core/intake.h"

/* A borrowed view of msg. */
void consumer_record(const rd_kafka_message_t *msg, struct kafka_record *rec);

enum consumer_verdict {
    CONSUMER_DONE,  /* effects of every message durable: commit the offsets */
    CONSUMER_RETRY, /* nothing durable: pause, wait until ready, read them again */
};

/* A batch ends at batch_size messages or after the message that brings its
 * values to this many bytes, whichever comes first: the handler holds a
 * copy of each message's value (the request rows), and a few hostile ones
 * near Kafka's 1 MB limit must not multiply its memory. */
#define CONSUMER_BATCH_MAX_BYTES (4 * 1024 * 1024)

struct consumer_handler {
    /* Process recs[0..n) (n >= 1), in the order they were read. One
     * verdict for the batch: either every message's effects are durable or
     * none are. */
    enum consumer_verdict (*handle)(void *arg, const struct kafka_record *recs, size_t n);
    /* After CONSUMER_RETRY: how long to wait at least before reading the
     * message again (e.g. a Retry-After the handler was given); NULL or a
     * value <= 0 means the consumer's own back-off. */
    int64_t (*retry_wait_ms)(void *arg);
    /* Called with back-off while paused until it returns true (e.g. the db
     * reconnected). */
    bool (*ready)(void *arg);
    /* Called about every idle_ms when no message arrived (may be NULL). */
    void (*idle)(void *arg);
    void *arg;
    int64_t idle_ms;
    /* Up to batch_size messages per handle() (<= 1: one at a time): the
     * first one waits for up to 250 ms, the others only while batch_window_ms
     * lasts from the first, then only as long as they are already queued. A
     * lone message waits at most the window. */
    int batch_size;
    int64_t batch_window_ms;
};

/* Subscribe rk to topics (a NULL-terminated list) and run until
 * signals_stop_requested(). Returns 0 on a clean stop, 1 on a fatal consumer
 * error. Does not close rk. */
int consumer_run(rd_kafka_t *rk, const char *const *topics, const struct consumer_handler *h);

/* Pause every assigned partition. */
void consumer_pause(rd_kafka_t *rk);

/* Resume every assigned partition where it stands (no rewind): the other
 * half of consumer_pause() for a pause that dropped nothing it must read. */
void consumer_resume(rd_kafka_t *rk);

/* Seek every assigned partition to its committed offset (the beginning when
 * none) and resume. False (logged) if the broker could not say; the caller
 * tries again later. */
bool consumer_rewind_and_resume(rd_kafka_t *rk);

/* Subscribe to topics (NULL-terminated); false with err on failure. */
bool consumer_subscribe(rd_kafka_t *rk, const char *const *topics, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
