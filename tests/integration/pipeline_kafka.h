/*
 * pipeline_kafka: the topics of a pipeline (pipeline_fixture.h): publishing
 * events as an upstream service would, or raw bytes as a broken one would,
 * reading a topic back, and waiting for a consumer group to catch up.
 * A topic is named by its role: "cancel_failed", "retry", "outcome", "dlq".
 */
#ifndef CR_TEST_PIPELINE_KAFKA_H
#define CR_TEST_PIPELINE_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cancel_producer.h"

struct pipeline;

/* Publish a CancelFailed event with cancelctl publish (reason "customer
 * cancelled"); fails the test unless cancelctl exits 0. */
void pipeline_publish(struct pipeline *p, const char *request_id, const char *gateway,
                      const char *payment_key, long long amount, const char *currency,
                      bool partial);

/* Publish bytes (a NUL-terminated string, sent without the NUL) as they are to
 * the topic of topic_role ("cancel_failed", "retry", "outcome" or "dlq"),
 * key may be NULL; waits for the broker's acknowledgement. */
void pipeline_publish_raw(struct pipeline *p, const char *topic_role, const char *key,
                          const char *bytes);

/* The same with a length and optional headers (a JSON object name -> string
 * value, may be NULL). */
void pipeline_publish_raw_len(struct pipeline *p, const char *topic_role, const char *key,
                              const void *bytes, size_t len, const json_t *headers);

/* The same with the message's CreateTime (epoch ms; 0 = now). */
void pipeline_publish_raw_at(struct pipeline *p, const char *topic_role, const char *key,
                             const void *bytes, size_t len, const json_t *headers,
                             int64_t timestamp_ms);

/* Fill request i's CancelFailed event: rid and pk are PIPELINE_ID_MAX-byte
 * buffers the callback may write and point ev at; arg is the caller's. */
#define PIPELINE_ID_MAX 64
typedef void (*pipeline_event_fn)(int i, struct cancel_failed_event *ev, char *rid, char *pk,
                                  void *arg);

/* Publish the CancelFailed events of requests 0..n-1 through one idempotent
 * producer, as a busy upstream service would (cancelctl publish per event
 * would start a process each). Events are built and validated by the
 * producer API (cancel_event_build); asserts every one was acknowledged. */
void pipeline_publish_many(struct pipeline *p, int n, pipeline_event_fn fill, void *arg);

/* One message read back from a topic. */
struct pipeline_msg {
    char *key;       /* NULL when the message had none */
    char *value;     /* the bytes, plus a NUL after them; NULL for a null value */
    size_t len;      /* of value, without the NUL */
    json_t *headers; /* name -> value (dlq_headers_from_kafka); an empty object if none */
    int32_t partition;
    int64_t offset;
};

/* Read the topic of topic_role ("cancel_failed", "retry", "outcome", "dlq")
 * from the beginning of every partition (assigned, no group, no commits)
 * until `expect` messages arrived or timeout_ms passed; expect 0 reads until
 * the end of every partition. Returns the count and *out (caller frees with
 * pipeline_msgs_free), in the order they arrived (per partition by offset). */
size_t pipeline_read_topic(struct pipeline *p, const char *topic_role, size_t expect,
                           int timeout_ms, struct pipeline_msg **out);

void pipeline_msgs_free(struct pipeline_msg *m, size_t n);

/* Wait until the consumer group of consumer_role ("intake" or "retry") has
 * committed, on every partition of the topic of topic_role, an offset at the
 * partition's end as it was when called: everything published before the
 * call has been processed. Returns false after timeout_ms. */
bool pipeline_wait_consumed(struct pipeline *p, const char *topic_role, const char *consumer_role,
                            int timeout_ms);

#endif
