/*
 * alert_engine: the alert-consumer's loop and its I/O: one Kafka consumer
 * subscribed to both the outcome and the dead-letter topic, the alert_sent
 * table, and HTTP posts to the Slack webhooks.
 *
 * One consumer with two subscriptions rather than two consumers: Slack's
 * limit is per webhook and the digest threshold is about how many alerts
 * people get, whatever topic they came from, so the token buckets and the
 * digest window must be shared; one loop shares them without locks.
 *
 * Per message, one at a time: decide (alert.c), record it in alert_sent,
 * post it, mark it, and only then commit the offset. So a crash repeats at
 * worst the one alert whose post had started, and never drops one:
 * - 429: the post is retried after Retry-After; 5xx, timeouts and connection
 *   errors: after a back-off (1 s doubling to 10 s). Meanwhile the partitions
 *   are paused, nothing is committed, and the same message is read again.
 * - A permanent refusal (4xx other than 408/429: invalid_payload,
 *   channel_not_found, invalid_token, ...) is a configuration fault: the row
 *   becomes FAILED_PERMANENT with Slack's answer in last_error, an error is
 *   logged, and the consumer moves on (retrying would block every later
 *   alert behind a webhook that will never accept it).
 * - Past the digest threshold, alerts are recorded as DIGESTED and their
 *   offsets committed at once; the row in the db is what keeps them. When
 *   the window ends, one digest per webhook lists them; after a restart,
 *   digest rows not yet posted are posted first.
 *
 * The webhook URLs are secrets: logs and errors name a webhook "default" or
 * "route[N]", never by its URL.
 */
#ifndef CR_ALERT_ENGINE_H
#define CR_ALERT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "db.h"
#include "metrics.h"

struct alert_engine;

/* An engine for cfg's alerts.slack (cfg and db are borrowed and must
 * outlive it). Returns NULL with err when alerts are disabled or the HTTP
 * client cannot start. */
struct alert_engine *alert_engine_new(const struct config *cfg, struct db *db, char *err,
                                      size_t errlen) __attribute__((warn_unused_result));

/* alert_engine_free(NULL) is a no-op. */
void alert_engine_free(struct alert_engine *e);

/* Count into m (borrowed; may be NULL). */
void alert_engine_set_metrics(struct alert_engine *e, struct metrics *m);

/* Subscribe rk (a kafka_consumer_new handle, still owned by the caller) to
 * the outcome and dead-letter topics and run until signals_stop_requested().
 * Returns 0 on a clean stop, 1 on a fatal consumer error. */
int alert_engine_run(struct alert_engine *e, rd_kafka_t *rk);

#endif
