/*
 * cancel_producer: the C API for upstream services that publish
 * "cancel failed" events (payments.cancel.failed.v1) to cancel-retry.
 *
 *   struct cancel_producer *p = cancel_producer_new("broker:9092",
 *                                                   "payments.cancel.failed",
 *                                                   NULL, err, sizeof(err));
 *   struct cancel_failed_event ev = CANCEL_FAILED_EVENT_INIT;
 *   ev.request_id = "req-1"; ev.gateway = "toss"; ev.payment_key = "pk_...";
 *   ev.amount = 15000; ev.currency = "KRW"; ev.reason = "customer cancelled";
 *   if (!cancel_producer_publish(p, &ev, 10000, id, err, sizeof(err))) ...
 *   cancel_producer_free(p);
 *
 * The event is validated against the contract before it is sent (an invalid
 * one is refused with the reason and never reaches Kafka), keyed by requestId,
 * and publish returns only after the broker acknowledged it (idempotent
 * producer, acks=all). Publishing the same requestId twice is safe: the
 * intake deduplicates it.
 */
#ifndef CANCEL_PRODUCER_H
#define CANCEL_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

/* The fields of a CancelFailed event; all strings borrowed. NULL optional
 * fields are left out. */
struct cancel_failed_event {
    const char *request_id;  /* required: the gateway idempotency key */
    const char *gateway;     /* required: a gateway name configured in cancel-retry */
    const char *payment_key; /* required */
    int64_t amount;          /* required, > 0, minor units */
    const char *currency;    /* required, ISO 4217 */
    bool partial;
    const char *reason; /* required, 1-200 chars */
    const char *origin_transaction_id;
    const char *failure_code; /* with failure_message: why the first cancel failed */
    const char *failure_message;
    const char *correlation_id; /* trace id, propagated through the pipeline */
    const char *source;         /* CloudEvents source; default "/payments/upstream" */
};

#define CANCEL_FAILED_EVENT_INIT                                                                   \
    {                                                                                              \
        0                                                                                          \
    }

#define CANCEL_PRODUCER_EVENT_ID_LEN 37

struct cancel_producer;

/* Connect to bootstrap_servers for topic. props: extra librdkafka properties
 * as a NULL-terminated list of key, value, key, value, ... (may be NULL).
 * NULL with err on failure. */
struct cancel_producer *cancel_producer_new(const char *bootstrap_servers, const char *topic,
                                            const char *const *props, char *err, size_t errlen);

/* The same from a cancel-retry config (its kafka: map and topics). */
struct cancel_producer *cancel_producer_new_from_config(const struct config *cfg, char *err,
                                                        size_t errlen);

void cancel_producer_free(struct cancel_producer *p);

/* Build the event JSON (new id, time now) and validate it. On success
 * *json_out is malloc'd (caller frees) and event_id receives the id. */
bool cancel_event_build(const struct cancel_failed_event *ev, char **json_out,
                        char event_id[CANCEL_PRODUCER_EVENT_ID_LEN], char *err, size_t errlen);

/* Check that bytes are a valid CancelFailed event; on success request_id
 * (>= 256 bytes) receives its requestId. */
bool cancel_event_validate(const void *bytes, size_t len, char *request_id, size_t idlen, char *err,
                           size_t errlen);

/* Build, validate and publish ev; wait up to timeout_ms for the broker's
 * acknowledgement. event_id (may be NULL) receives the event's id. */
bool cancel_producer_publish(struct cancel_producer *p, const struct cancel_failed_event *ev,
                             int timeout_ms, char event_id[CANCEL_PRODUCER_EVENT_ID_LEN], char *err,
                             size_t errlen);

/* Publish bytes as they are, keyed by key (may be NULL), and wait for the
 * acknowledgement. No validation: for replays of stored events and for
 * testing how the pipeline treats bad input. */
bool cancel_producer_publish_raw(struct cancel_producer *p, const char *key, const void *bytes,
                                 size_t len, int timeout_ms, char *err, size_t errlen);

#endif
