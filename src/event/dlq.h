/*
 * dlq: the headers of a dead letter (docs/contracts.md "Dead letters",
 * schemas/events/dead-letter.headers.schema.json).
 *
 * A dead letter's value is the original message's bytes, unchanged, so that
 * a replay re-publishes it as it was; everything the pipeline has to say
 * about it travels in dlq.* headers, all strings. The headers are built as a
 * JSON array of [name, value] pairs, the form the outbox's headers column
 * stores (order kept, names may repeat), and turned into librdkafka headers
 * by the relay.
 */
#ifndef CR_DLQ_H
#define CR_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* dlq.reason values. PARSE_ERROR and SCHEMA_VIOLATION are also
 * event_verdict_name() of cloudevent.h. */
#define DLQ_REASON_PARSE_ERROR          "PARSE_ERROR"
#define DLQ_REASON_SCHEMA_VIOLATION     "SCHEMA_VIOLATION"
#define DLQ_REASON_UNKNOWN_GATEWAY      "UNKNOWN_GATEWAY"
#define DLQ_REASON_IDEMPOTENCY_CONFLICT "IDEMPOTENCY_CONFLICT"
#define DLQ_REASON_FAILED               "FAILED"
#define DLQ_REASON_EXHAUSTED            "EXHAUSTED"
#define DLQ_REASON_CONFIG_FAULT         "CONFIG_FAULT"
/* Reconciliation found that the gateway's record and our final status
 * disagree (reconcile.h); the value is the request's original CancelFailed,
 * as for FAILED and EXHAUSTED. */
#define DLQ_REASON_RECONCILE_MISMATCH "RECONCILE_MISMATCH"
/* The gateway's webhook (webhook-receiver) said, about a request we record
 * as SUCCEEDED, that the refund failed at the card scheme (Adyen
 * REFUND_FAILED) or that the refunded money came back (REFUNDED_REVERSED):
 * the shopper has not been refunded. The value is the request's original
 * CancelFailed. */
#define DLQ_REASON_REFUND_FAILED_AFTER_SUCCESS "REFUND_FAILED_AFTER_SUCCESS"
#define DLQ_REASON_REFUND_REVERSED             "REFUND_REVERSED"
/* The gateway's webhook reports a refund of a request that ended without
 * one proven (EXHAUSTED, FAILED): the shopper has the money back although
 * our record says not. The value is the request's original CancelFailed. */
#define DLQ_REASON_REFUND_AFTER_FINAL "REFUND_AFTER_FINAL"
/* A verified refund notification that matches no request: the value is the
 * notification item (JSON), no request id. */
#define DLQ_REASON_WEBHOOK_UNMATCHED "WEBHOOK_UNMATCHED"

#define DLQ_HEADER_REASON             "dlq.reason"
#define DLQ_HEADER_ERROR              "dlq.error"
#define DLQ_HEADER_ORIGINAL_TOPIC     "dlq.original.topic"
#define DLQ_HEADER_ORIGINAL_PARTITION "dlq.original.partition"
#define DLQ_HEADER_ORIGINAL_OFFSET    "dlq.original.offset"
#define DLQ_HEADER_ORIGINAL_TIMESTAMP "dlq.original.timestamp"
#define DLQ_HEADER_CONSUMER           "dlq.consumer"
#define DLQ_HEADER_REQUEST_ID         "dlq.request.id"
#define DLQ_HEADER_ATTEMPTS           "dlq.attempts"
#define DLQ_HEADER_AT                 "dlq.at"

/* dlq.error is cut to at most this many bytes (on a character boundary):
 * a header is for a human and a Slack line, not for a stack dump. */
#define DLQ_ERROR_MAX 500

/* Where the dead-lettered message came from. topic is borrowed. */
struct dlq_origin {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* Kafka message timestamp; < 0 when unknown (then omitted) */
};

/* Everything a dead letter's headers say. Strings borrowed. */
struct dlq_meta {
    const char *reason; /* one of DLQ_REASON_* */
    const char *error;  /* detail; secrets masked (redact.h), sanitized, cut to DLQ_ERROR_MAX */
    struct dlq_origin origin;
    const char *consumer;   /* the process that dead-letters it, e.g. "intake-consumer" */
    const char *request_id; /* NULL when unknown; omitted unless a valid requestId */
    int attempts;           /* attempts made; the header is written only when > 0 */
    int64_t at_ms;          /* when it was dead-lettered */
};

/* True if reason is one of DLQ_REASON_*. */
bool dlq_reason_valid(const char *reason);

/* True for the reasons a replay cannot act on, only a human
 * (REFUND_FAILED_AFTER_SUCCESS, REFUND_REVERSED, REFUND_AFTER_FINAL,
 * WEBHOOK_UNMATCHED). */
bool dlq_reason_needs_human(const char *reason);

/* Build the dlq.* headers of m as a new JSON array of [name, value] string
 * pairs, in the order of docs/contracts.md "Dead letters". Returns NULL with
 * err set when reason is unknown or consumer or origin.topic is empty. A
 * request_id that is not a valid requestId is left out rather than copied: it
 * came from a message already known to be broken, and headers end up in logs
 * and alerts. */
json_t *dlq_headers_build(const struct dlq_meta *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Turn a [name, value] pair array (any headers, not only dlq.*; a value may
 * be null) into librdkafka headers, order kept. Returns a new
 * rd_kafka_headers_t the caller owns (rd_kafka_headers_destroy, or hand it to
 * rd_kafka_producev with RD_KAFKA_V_HEADERS, which takes it on success), or
 * NULL with err set if pairs is malformed. */
rd_kafka_headers_t *dlq_headers_to_kafka(const json_t *pairs, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Read librdkafka headers (hdrs may be NULL) back into a new JSON object
 * name -> value: the last value wins for a repeated name, a NULL value is
 * JSON null, and bytes that are not printable UTF-8 are replaced by '?' so
 * the result is always valid JSON. Returns NULL only when out of memory. */
json_t *dlq_headers_from_kafka(const rd_kafka_headers_t *hdrs);

/* Copy at most srclen bytes of src into dst (dstsize bytes, always
 * NUL-terminated when dstsize > 0) as valid UTF-8: invalid sequences and NUL
 * become '?', other control characters a space, and a copy that does not fit
 * is cut on a character boundary and ends in "...". Returns strlen(dst). */
size_t dlq_sanitize_text(const char *src, size_t srclen, char *dst, size_t dstsize);

/* Can key (len bytes, a Kafka message key) be a dead letter's key? The
 * outbox stores keys as text: invalid UTF-8 or a NUL would make the
 * database refuse the dead letter itself, and a control character would
 * travel into logs. Also false for a NULL, empty or longer than 255 bytes
 * key; then the caller keys the dead letter by the requestId. */
bool dlq_key_storable(const void *key, size_t len);

/* Best effort to find the requestId of a message that failed to parse or
 * validate: data.requestId, else subject, of JSON that still parses, if it
 * is a valid requestId. Copies it into buf and returns buf, or returns NULL
 * (then the caller may fall back to the Kafka key). */
const char *dlq_guess_request_id(const char *json_bytes, size_t len, char *buf, size_t buflen);

#endif
