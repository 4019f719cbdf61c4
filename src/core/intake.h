/*
 * intake: accept a batch of CancelFailed messages. Validates each envelope
 * and its data against the contract, then in one transaction records each
 * new request with its first RetryScheduled in the outbox, ignores
 * duplicates, and dead-letters each message that is unparseable, invalid,
 * for an unknown gateway, an idempotency conflict, or refused by the
 * database (db_error_blames_message), with its original bytes. The caller
 * commits the Kafka offsets only after the transaction committed.
 */
#ifndef CR_INTAKE_H
#define CR_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "event/cancel_event.h"
#include "event/cloudevent.h"
#include "store/db.h"

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

/* Process recs[0..n) (n >= 1) in one transaction on db: the new requests
 * with their attempt 1 (due at once), duplicates ignored, and what is
 * invalid, conflicting or refused by the database dead-lettered, each
 * message's outcome exactly as if they were processed one by one in order.
 * A message the database refuses is dead-lettered alone; the others are
 * still recorded. Returns true when the transaction committed, with each
 * message's status in statuses[i]; false with err (and every status
 * INTAKE_RETRY) when nothing was: the messages must be processed again (do
 * not commit their offsets). */
bool intake_process_batch(struct db *db, const struct config *cfg, const struct kafka_record *recs,
                          size_t n, enum intake_status *statuses, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
