/*
 * kafka_stats: see kafka_stats.h.
 */
#include "kafka/kafka_stats.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

/* A consumer's lag on one topic: the sum of consumer_lag over its
 * partitions, leaving out those with none (-1: not assigned here, nothing
 * committed yet) and librdkafka's internal partition -1. */
static int64_t topic_lag(json_t *partitions)
{
    const char *id;
    json_t *p;
    int64_t sum = 0;

    json_object_foreach(partitions, id, p)
    {
        json_t *lag = json_object_get(p, "consumer_lag");
        if (strcmp(id, "-1") != 0 && json_is_integer(lag) && json_integer_value(lag) >= 0)
            sum += json_integer_value(lag);
    }
    return sum;
}

bool kafka_stats_parse(const char *json, size_t len, struct kafka_stats *out)
{
    const char *key;
    json_t *v;

    memset(out, 0, sizeof(*out));
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *brokers = json_object_get(root, "brokers");
    if (!json_is_object(root) || !json_is_object(brokers)) {
        json_decref(root);
        return false;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    out->consumer = type != NULL && strcmp(type, "consumer") == 0;
    json_object_foreach(brokers, key, v)
    {
        const char *source = json_string_value(json_object_get(v, "source"));
        const char *state = json_string_value(json_object_get(v, "state"));
        if (state == NULL || (source != NULL && strcmp(source, "internal") == 0))
            continue;
        out->brokers++;
        if (strcmp(state, "UP") == 0)
            out->brokers_up++;
        else
            snprintf(out->state, sizeof(out->state), "%s", state);
    }
    json_object_foreach(json_object_get(root, "topics"), key, v)
    {
        if (!out->consumer || out->ntopics == KAFKA_STATS_MAX_TOPICS)
            break;
        struct kafka_stats_topic *t = &out->topics[out->ntopics++];
        snprintf(t->name, sizeof(t->name), "%s", key);
        t->lag = topic_lag(json_object_get(v, "partitions"));
    }
    json_decref(root);
    return true;
}

void kafka_stats_report(const struct kafka_stats *s, struct metrics *m)
{
    char reason[128], labels[300];

    if (s->brokers_up > 0) {
        metrics_check_set(m, "kafka", true, NULL);
    } else {
        snprintf(reason, sizeof(reason), "no broker connection is up (%d known%s%s)", s->brokers,
                 s->state[0] != '\0' ? ", one in state " : "", s->state);
        metrics_check_set(m, "kafka", false, reason);
    }
    for (size_t i = 0; i < s->ntopics; i++) {
        snprintf(labels, sizeof(labels), "topic=\"%s\"", s->topics[i].name);
        metrics_set(m, "cancel_retry_consumer_lag", labels, s->topics[i].lag);
    }
}
