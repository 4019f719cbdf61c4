/*
 * kafka: librdkafka handles built from the config, with our logging and the
 * project's rules applied in one place.
 *
 * - The kafka: map of the config passes straight to rd_kafka_conf_set(); a bad
 *   key or value fails with "FILE:LINE: kafka.KEY: <librdkafka's reason>".
 * - librdkafka's own log lines go to our JSON log (component "librdkafka").
 * - Consumers never store or commit offsets by themselves: the caller commits
 *   (rd_kafka_commit / rd_kafka_commit_message) after the db transaction that
 *   made the message's effects durable. Auto-commit and auto offset store are
 *   forced off whatever the kafka: map says.
 * - Producers are idempotent with acks=all; success is the delivery report.
 * - Every Kafka error is one of three classes, decided by kafka_classify().
 */
#ifndef CR_KAFKA_H
#define CR_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "config/config.h"
#include "service/metrics.h"

enum kafka_error_class {
    KAFKA_ERR_TRANSIENT = 0, /* broker down, timeout, queue full: retry later, same message */
    KAFKA_ERR_PERMANENT,     /* this message can never succeed (too large, unknown topic) */
    KAFKA_ERR_FATAL,         /* the handle is unusable (fatal idempotence error, auth):
                                recreate it or stop */
};

/* Rebalance callback type, as rd_kafka_conf_set_rebalance_cb() takes it. */
typedef void (*kafka_rebalance_cb)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t *partitions, void *opaque);

/* Delivery report callback type, as rd_kafka_conf_set_dr_msg_cb() takes it. */
typedef void (*kafka_dr_msg_cb)(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);

/* A new rd_kafka_conf_t with our log callback, log.connection.close=false
 * (idle brokers closing connections is not news) and then every entry of
 * cfg->kafka in file order. Returns NULL with err set on a bad entry. The
 * caller owns the result (rd_kafka_conf_destroy, or hand it to rd_kafka_new). */
rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A high-level consumer in group group_id (copied), subscribed to nothing
 * yet: the caller calls rd_kafka_subscribe(). Forced settings:
 * enable.auto.commit=false, enable.auto.offset.store=false,
 * auto.offset.reset=earliest (a new group must not skip cancels that were
 * published before it first started); the default (eager) assignor is kept.
 * rebalance_cb NULL installs kafka_default_rebalance_cb. opaque is what the
 * callbacks receive (librdkafka's own opaque is ours: rd_kafka_opaque() is
 * not the caller's). With metrics (may be NULL), the handle's statistics
 * (kafka_stats.h) set its readiness check "kafka" and the consumer lag.
 * rd_kafka_poll_set_consumer() is already done. The caller owns the
 * handle: kafka_consumer_close() it. */
rd_kafka_t *kafka_consumer_new(const struct config *cfg, const char *group_id,
                               kafka_rebalance_cb rebalance_cb, void *opaque,
                               struct metrics *metrics, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* An idempotent producer (enable.idempotence=true, acks=all, linger.ms=5)
 * reporting deliveries to dr_msg_cb (may be NULL) with opaque; metrics as
 * for kafka_consumer_new. The caller owns the handle:
 * kafka_producer_close() it. */
rd_kafka_t *kafka_producer_new(const struct config *cfg, kafka_dr_msg_cb dr_msg_cb, void *opaque,
                               struct metrics *metrics, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* rd_kafka_destroy() a handle of kafka_*_new and free what it carries; for
 * one whose consumer group or queue needs no closing first. NULL is a
 * no-op. */
void kafka_destroy(rd_kafka_t *rk);

/* The rebalance callback used when none is given: assigns what the group
 * hands out and drops it on revoke (incrementally under the cooperative
 * protocol, in case someone configured it), logging each change. */
void kafka_default_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *partitions, void *opaque);

/* Leave the group cleanly (rd_kafka_consumer_close) and destroy rk. NULL is
 * a no-op. */
void kafka_consumer_close(rd_kafka_t *rk);

/* Flush for up to timeout_ms, then destroy rk. Returns how many messages
 * were still undelivered (0 = all delivered). NULL is a no-op returning 0. */
int kafka_producer_close(rd_kafka_t *rk, int timeout_ms);

/* The class of err (see enum kafka_error_class). */
enum kafka_error_class kafka_classify(rd_kafka_resp_err_t err);

const char *kafka_error_class_name(enum kafka_error_class c);

/* If rk raised a fatal error, write "<error name>: <reason>" to buf and
 * return the underlying error code; otherwise write "" and return
 * RD_KAFKA_RESP_ERR_NO_ERROR. */
rd_kafka_resp_err_t kafka_fatal_error_text(rd_kafka_t *rk, char *buf, size_t buflen);

/* Partition count of topic from the broker's metadata (waiting up to
 * timeout_ms), or -1 with err (broker unreachable, topic missing). */
int kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
                          size_t errlen);

#endif
