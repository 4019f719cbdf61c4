/*
 * intake: accept one CancelFailed message. Validates the envelope and the
 * data against the contract, then in one transaction either records the new
 * request with its first RetryScheduled in the outbox, ignores a duplicate,
 * or dead-letters the message (unparseable, invalid, unknown gateway,
 * idempotency conflict, or refused by the database: db_error_blames_message)
 * with its original bytes. The caller commits the Kafka offset only after
 * this returns anything but INTAKE_RETRY.
 */
#ifndef CR_INTAKE_H
#define CR_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "cancel_event.h"
#include "cloudevent.h"
#include "config.h"
#include "db.h"

/* One consumed Kafka message, borrowed. */
struct kafka_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1 if none */
    const void *key;
    size_t key_len;
    const void *value;
    size_t len;
    const rd_kafka_message_t *msg; /* the message itself (headers), NULL if none */
};

/* The pure part: what the contract says about a message. */
struct intake_check {
    const char *dlq_reason;               /* NULL when valid */
    char error[512];                      /* why, when invalid */
    struct cloudevent ev;                 /* filled when the envelope parsed */
    struct cancel_failed cf;              /* filled when valid */
    const struct config_gateway *gateway; /* when valid */
};

/* The largest CancelFailed event accepted, in bytes. Real ones are well
 * under 2 KiB; the bound keeps a hostile one from being copied into the
 * request row, the outbox and a dead letter that must still fit in a Kafka
 * message next to its headers. */
#define INTAKE_MAX_EVENT_BYTES 65536

/* Check value against the contract and the configured gateways. Always fills
 * *check; release it with intake_check_clear(). */
void intake_check_message(const struct config *cfg, const void *value, size_t len,
                          struct intake_check *check);

/* intake_check_message() of rec's value, then what surrounds a valid event:
 * the event's time and the Kafka timestamp (-1: none) must be plausible
 * instants at now_ms (bounds.h), and a Kafka key, when there is one, must be
 * the requestId. Each failure is a SCHEMA_VIOLATION naming the rule. */
void intake_check_record(const struct config *cfg, const struct kafka_record *rec, int64_t now_ms,
                         struct intake_check *check);
void intake_check_clear(struct intake_check *check);

enum intake_status {
    INTAKE_ACCEPTED,      /* new request recorded, attempt 1 scheduled */
    INTAKE_DUPLICATE,     /* same requestId and same money fields: nothing to do */
    INTAKE_DEAD_LETTERED, /* invalid or conflicting: dead letter in the outbox */
    INTAKE_RETRY,         /* db unavailable, a server fault or a bug: nothing committed, retry
                           * later (never for an error about the message itself) */
};

const char *intake_status_name(enum intake_status s);

/* Process rec in its own transaction on db. On INTAKE_RETRY err says why; the
 * message must be processed again (do not commit its offset). */
enum intake_status intake_process(struct db *db, const struct config *cfg,
                                  const struct kafka_record *rec, char *err, size_t errlen);

#endif
