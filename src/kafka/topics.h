/*
 * topics: make sure the configured topics exist with the configured
 * partition counts (rd_kafka_CreateTopics), or just report on them.
 *
 * Topics are created explicitly, never by broker auto-creation: the retry
 * topic's partition count bounds how many retry-consumer processes can share
 * the work, so it must be what the config says. A topic with more partitions
 * than configured is accepted with a warning (partitions can be added, never
 * removed); fewer is an error, since the pipeline would silently scale less
 * than planned.
 */
#ifndef CR_TOPICS_H
#define CR_TOPICS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* Longest a topics_* call waits for the broker, unless told otherwise. */
#define TOPICS_DEFAULT_TIMEOUT_MS 15000

enum topic_state {
    TOPIC_MISSING = 0, /* not on the broker */
    TOPIC_CREATED,     /* created by this call */
    TOPIC_OK,          /* existed with the configured partition count */
    TOPIC_MORE,        /* existed with more partitions than configured (warning) */
    TOPIC_FEWER,       /* existed with fewer partitions than configured (error) */
};

struct topic_report {
    char role[16];         /* config key under topics: ("cancel_failed", "retry", ...) */
    char name[256];        /* Kafka topic names are at most 249 bytes */
    int partitions;        /* configured */
    int replication;       /* configured */
    int actual_partitions; /* on the broker, -1 if missing */
    enum topic_state state;
    char detail[384]; /* why, for MISSING (with --check), MORE and FEWER */
};

struct topics_report {
    struct topic_report topics[4];
    size_t n;
    int n_created, n_missing, n_more, n_fewer;
    bool answered; /* the broker's metadata was read: the states mean something */
};

/* Describe the configured topics on the broker of cfg without changing
 * anything. Returns false (err: "could not reach the Kafka broker at HOST:
 * reason") only if the broker could not be asked; missing topics and
 * partition mismatches are in *out. timeout_ms <= 0 means
 * TOPICS_DEFAULT_TIMEOUT_MS. */
bool topics_describe(const struct config *cfg, int timeout_ms, struct topics_report *out, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/* Create the configured topics that are missing (an already existing one is
 * fine), wait until the broker's metadata shows them, and report as
 * topics_describe does. Returns false when the broker cannot be reached, a
 * topic could not be created (err names it and the broker's reason), or a
 * topic has fewer partitions than configured (err says how many each side
 * has and how to fix it). *out is filled in every case it could be. */
bool topics_ensure(const struct config *cfg, int timeout_ms, struct topics_report *out, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

const char *topic_state_name(enum topic_state s);

#endif
