/*
 * kafka_stats: what a process's Kafka handle says about itself in
 * librdkafka's statistics (statistics.interval.ms, librdkafka's
 * STATISTICS.md): whether a broker connection is up, for the readiness
 * check "kafka", and a consumer's lag per topic, for
 * cancel_retry_consumer_lag{topic}.
 *
 * librdkafka emits the statistics from the handle's own poll (the process's
 * loop), so nothing here waits on the network and the HTTP thread that
 * answers /readyz only reads what the last statistics said.
 */
#ifndef CR_KAFKA_STATS_H
#define CR_KAFKA_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/metrics.h"

/* Topics counted per handle; ours subscribe to two at most. */
#define KAFKA_STATS_MAX_TOPICS 8

/* How often librdkafka emits them (statistics.interval.ms, unless the
 * kafka: map sets it): how soon /readyz notices a broker going or coming. */
#define KAFKA_STATS_INTERVAL_MS "5000"

struct kafka_stats_topic {
    char name[250]; /* Kafka's limit is 249 characters */
    int64_t lag;    /* messages behind, summed over the partitions whose lag is known */
};

struct kafka_stats {
    bool consumer;  /* "type": "consumer" */
    int brokers;    /* brokers known, internal ones aside */
    int brokers_up; /* of which in state UP */
    char state[64]; /* a broker's state when none is UP, e.g. "CONNECT" */
    struct kafka_stats_topic topics[KAFKA_STATS_MAX_TOPICS];
    size_t ntopics;
};

/* Parse one statistics document (json[0..len), not NUL-terminated).
 * False when it is not the JSON librdkafka documents. */
bool kafka_stats_parse(const char *json, size_t len, struct kafka_stats *out);

/* Tell m: the check "kafka" passes while a broker is UP, and a consumer's
 * lag per topic goes into cancel_retry_consumer_lag{topic}. */
void kafka_stats_report(const struct kafka_stats *s, struct metrics *m);

#endif
