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
 * Per message: decide (alert.c), record it in alert_sent, post it, mark it,
 * and only then let its offset be committed. Every webhook (the default and
 * each route) has its own queue, back-off and post in flight, so a webhook
 * that is down delays its own alerts and nobody else's:
 * - 429: that webhook posts again after Retry-After; 5xx, timeouts and
 *   connection errors: after a back-off (1 s doubling to 10 s). Its later
 *   alerts wait behind the first; the other webhooks go on posting.
 * - Offsets are committed per partition up to the oldest alert not yet
 *   posted (offset_tracker), so a crash re-reads every alert still waiting
 *   and repeats at most the one in flight per webhook; rows already SENT
 *   make the re-read a no-op.
 * - A webhook holds at most ENGINE_QUEUE_MAX (100) alerts in memory; past
 *   that its new alerts go into its next digest, like a flood's, so a long
 *   outage of one webhook costs bounded memory and stops nothing else.
 * - A permanent refusal (4xx other than 408/429: invalid_payload,
 *   channel_not_found, invalid_token, ...) is a configuration fault: the row
 *   becomes FAILED_PERMANENT with Slack's answer in last_error, an error is
 *   logged, and the webhook moves on to its next alert.
 * - Past the digest threshold, alerts are recorded as DIGESTED and their
 *   offsets committed at once; the row in the db is what keeps them. When
 *   the window ends, one digest per webhook lists them; after a restart,
 *   digest rows not yet posted are posted first.
 * - Database down: reading pauses; what could not be recorded or marked
 *   waits in memory, uncommitted, until the database answers.
 *
 * The webhook URLs are secrets: logs and errors name a webhook "default" or
 * "route[N]", never by its URL.
 */
#ifndef CR_ALERT_ENGINE_H
#define CR_ALERT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "service/metrics.h"
#include "store/db.h"

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

/* The rebalance callback to give kafka_consumer_new, with the engine as
 * opaque: a revoked partition's waiting alerts are left to its new owner. */
void alert_engine_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts, void *opaque);

/* Subscribe rk (a kafka_consumer_new handle made with
 * alert_engine_on_rebalance, still owned by the caller) to the outcome and
 * dead-letter topics and run until signals_stop_requested(). Returns 0 on a
 * clean stop, 1 on a fatal consumer error. */
int alert_engine_run(struct alert_engine *e, rd_kafka_t *rk);

#endif
