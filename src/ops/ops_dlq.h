/*
 * ops_dlq: reading the dead-letter topic for operators (cancelctl dlq list,
 * dlq replay, status).
 *
 * The reader never joins or commits in any consumer group: it is a consumer
 * with a throwaway group.id (cancelctl-dlq-<pid>-<time>, never one of the
 * pipeline's groups), auto-commit off, that assign()s every partition at an
 * explicit offset (the beginning, or the first message at/after a time found
 * with offsetsForTimes) and reads up to the end offsets it saw when it
 * started. So listing the DLQ changes nothing anyone else sees.
 *
 * Dead letters are matched against a filter on their headers: dlq.reason,
 * dlq.request.id, dlq.at (--since/--until), and the gateway read from the
 * original event's data.gateway when the value still parses.
 */
#ifndef CR_OPS_DLQ_H
#define CR_OPS_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "config/config.h"

/* One dead letter. Everything owned by the struct (ops_dlq_letter_clear);
 * the const char * members point into headers and are "" when absent. */
struct ops_dlq_letter {
    char *topic; /* the DLQ topic */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* Kafka timestamp, 0 if none */
    char *key;            /* NUL-terminated copy, NULL if none */
    size_t key_len;
    unsigned char *value; /* the original message's bytes, unchanged; NULL if none */
    size_t value_len;
    json_t *headers; /* object name -> value (dlq_headers_from_kafka) */
    const char *reason;
    const char *request_id;
    const char *error;
    const char *original_topic;
    const char *consumer;
    int32_t original_partition; /* -1 unknown */
    int64_t original_offset;    /* -1 unknown */
    int attempts;               /* 0 unknown */
    int64_t at_ms;              /* dlq.at, else the Kafka timestamp; 0 unknown */
    char gateway[40];           /* data.gateway of the original event, "" unknown */
};

/* Which dead letters an operator means. Inline strings ("" = any) so that a
 * filter can be copied and tested as a value. */
struct ops_dlq_filter {
    char request_id[256];
    char reasons[256]; /* one reason or a comma-separated list */
    char gateway[40];
    int64_t since_ms; /* dlq.at >= since; 0 = no bound */
    int64_t until_ms; /* dlq.at < until; 0 = no bound */
    long limit;       /* at most this many matches, in topic order; 0 = all */
};

/* Fill l from one message's parts (all copied, except headers, which is
 * stolen: an object name -> value, may be NULL). Returns false only when out
 * of memory (l is then cleared). */
bool ops_dlq_letter_init(struct ops_dlq_letter *l, const char *topic, int32_t partition,
                         int64_t offset, int64_t timestamp_ms, const void *key, size_t key_len,
                         const void *value, size_t value_len, json_t *headers)
    __attribute__((warn_unused_result));

void ops_dlq_letter_clear(struct ops_dlq_letter *l);

/* The gateway of an original CancelFailed event (data.gateway), copied into
 * buf if the bytes parse as JSON and it looks like a gateway name; else "". */
void ops_dlq_gateway_of(const void *value, size_t len, char *buf, size_t buflen);

/* True if l matches every condition of f (limit is the caller's to apply). */
bool ops_dlq_filter_match(const struct ops_dlq_filter *f, const struct ops_dlq_letter *l);

/* Check f's values; false with err ("--reason: FOO is not a dead-letter
 * reason") on a bad one. */
bool ops_dlq_filter_check(const struct ops_dlq_filter *f, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The filter as a JSON object (only the conditions set), for audit rows and
 * --json output. New reference. */
json_t *ops_dlq_filter_json(const struct ops_dlq_filter *f);

/* A dead letter as JSON for --json output: where, headers, gateway, key and
 * the value as text (sanitized UTF-8, cut to value_max bytes; 0 = none). */
json_t *ops_dlq_letter_json(const struct ops_dlq_letter *l, size_t value_max);

/* Parse a time for --since/--until: RFC 3339, or a duration meaning that
 * long before now ("2h", "30m", "7d"). */
bool ops_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
    __attribute__((warn_unused_result));

/* ---- reading the topic ---- */

/* A consumer handle that belongs to no group anyone uses (throwaway
 * group.id, auto-commit off): for assign()-based reads, watermarks and admin
 * queries. Caller owns it (ops_dlq_reader_free). */
rd_kafka_t *ops_dlq_reader_new(const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void ops_dlq_reader_free(rd_kafka_t *rk);

/* Called for each dead letter read. The visitor may keep the letter by
 * copying the struct and zeroing *l (it then owns it). Return false to stop
 * reading. */
typedef bool (*ops_dlq_visit_fn)(struct ops_dlq_letter *l, void *opaque);

struct ops_dlq_scan_stats {
    int partitions;
    int64_t end_offsets; /* sum of the partitions' high watermarks at start */
    int64_t read;        /* messages read */
};

/* Read cfg's DLQ topic from the beginning, or from since_ms (with a margin:
 * the filter decides exactly) when > 0, up to the end offsets of the start,
 * calling visit for each message. timeout_ms bounds each wait for the broker
 * (metadata, and no progress while reading). stats may be NULL. */
bool ops_dlq_scan(const struct config *cfg, int64_t since_ms, int timeout_ms,
                  ops_dlq_visit_fn visit, void *opaque, struct ops_dlq_scan_stats *stats, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

/* A growable list of letters. */
struct ops_dlq_list {
    struct ops_dlq_letter *v;
    size_t n, cap;
    int64_t scanned; /* messages read */
};

/* Collect the dead letters matching f (up to f->limit) into out (zeroed by
 * the caller; free with ops_dlq_list_free). */
bool ops_dlq_collect(const struct config *cfg, const struct ops_dlq_filter *f, int timeout_ms,
                     struct ops_dlq_list *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void ops_dlq_list_free(struct ops_dlq_list *list);

#endif
