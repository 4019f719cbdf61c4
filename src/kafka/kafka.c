/*
 * kafka: librdkafka handles from config, log routing, error classes. See
 * kafka.h.
 */
#include "kafka/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/log.h"
#include "kafka/kafka_stats.h"

/* What every handle made here carries as librdkafka's opaque: the caller's
 * own opaque and callbacks, which the trampolines below hand it, and the
 * metrics its statistics go to. Freed with the handle (kafka_*_close,
 * kafka_destroy). */
struct kafka_watch {
    struct metrics *metrics;
    void *opaque;
    kafka_rebalance_cb rebalance_cb;
    kafka_dr_msg_cb dr_msg_cb;
};

static void watch_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    struct kafka_watch *w = opaque;
    w->rebalance_cb(rk, err, partitions, w->opaque);
}

static void watch_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct kafka_watch *w = opaque;
    w->dr_msg_cb(rk, msg, w->opaque);
}

/* From the handle's poll, every statistics.interval.ms. Returns 0: librdkafka
 * frees json. */
static int watch_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct kafka_watch *w = opaque;
    struct kafka_stats s;
    (void)rk;
    if (kafka_stats_parse(json, len, &s))
        kafka_stats_report(&s, w->metrics);
    return 0;
}

/* librdkafka calls this from its own threads; log_syslog_level writes each
 * line with one write(2), so that is safe. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    log_syslog_level(level, fac, rk ? rd_kafka_name(rk) : NULL, buf);
}

static bool conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                     size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "cannot set Kafka property %s: %s", key, why);
        return false;
    }
    return true;
}

rd_kafka_conf_t *kafka_conf_new(const struct config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];

    if (conf == NULL) {
        snprintf(err, errlen, "could not create a Kafka configuration: out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (!conf_set(conf, "log.connection.close", "false", err, errlen))
        goto fail;
    for (size_t i = 0; i < cfg->kafka.nprops; i++) {
        const struct config_kv *kv = &cfg->kafka.props[i];
        if (rd_kafka_conf_set(conf, kv->key, kv->value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "%s:%d: kafka.%s: %s", cfg->path ? cfg->path : "config", kv->line,
                     kv->key, why);
            goto fail;
        }
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Set a property the program depends on, after the kafka: map, so the map
 * cannot undo it; say so if the map tried. */
static bool force(const struct config *cfg, rd_kafka_conf_t *conf, const char *key,
                  const char *value, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->kafka.nprops; i++) {
        const struct config_kv *kv = &cfg->kafka.props[i];
        if (strcmp(kv->key, key) == 0 && strcmp(kv->value, value) != 0)
            log_warn("%s:%d: kafka.%s: ignored, cancel-retry requires %s=%s",
                     cfg->path ? cfg->path : "config", kv->line, key, key, value);
    }
    return conf_set(conf, key, value, err, errlen);
}

/* A key the map may set; ours is only the default. */
static bool set_default(const struct config *cfg, rd_kafka_conf_t *conf, const char *key,
                        const char *value, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->kafka.nprops; i++) {
        if (strcmp(cfg->kafka.props[i].key, key) == 0)
            return true;
    }
    return conf_set(conf, key, value, err, errlen);
}

static const char *rebalance_protocol(rd_kafka_t *rk)
{
    const char *p = rd_kafka_rebalance_protocol(rk);
    return p ? p : "NONE";
}

void kafka_default_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    (void)opaque;
    bool cooperative = strcmp(rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        log_info("assigned %d partition%s", partitions->cnt, partitions->cnt == 1 ? "" : "s");
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, partitions);
        else
            rerr = rd_kafka_assign(rk, partitions);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        log_info("revoked %d partition%s", partitions->cnt, partitions->cnt == 1 ? "" : "s");
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, partitions);
        else
            rerr = rd_kafka_assign(rk, NULL);
        break;
    default:
        log_error("rebalance failed: %s", rd_kafka_err2str(err));
        rerr = rd_kafka_assign(rk, NULL);
        break;
    }
    if (error != NULL) {
        log_error("could not apply the rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_error("could not apply the rebalance: %s", rd_kafka_err2str(rerr));
    }
}

/* Wrap conf's callbacks in a new watch set as its opaque; NULL when out of
 * memory. Statistics are asked for only when there are metrics to tell. */
static struct kafka_watch *watch(const struct config *cfg, rd_kafka_conf_t *conf,
                                 struct metrics *metrics, void *opaque, char *err, size_t errlen)
{
    struct kafka_watch *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "could not create the Kafka handle: out of memory");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    w->metrics = metrics;
    w->opaque = opaque;
    if (metrics != NULL) {
        if (!set_default(cfg, conf, "statistics.interval.ms", KAFKA_STATS_INTERVAL_MS, err,
                         errlen)) {
            free(w);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
        rd_kafka_conf_set_stats_cb(conf, watch_stats);
    }
    rd_kafka_conf_set_opaque(conf, w);
    return w;
}

/* rd_kafka_new() of conf, which carries w as its opaque; on failure conf
 * and w are freed (rd_kafka_new() takes conf only on success). */
static rd_kafka_t *new_handle(rd_kafka_type_t type, rd_kafka_conf_t *conf, struct kafka_watch *w,
                              char *err, size_t errlen)
{
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        free(w);
        snprintf(err, errlen, "could not create the Kafka %s: %s",
                 type == RD_KAFKA_CONSUMER ? "consumer" : "producer", why);
    }
    return rk;
}

void kafka_destroy(rd_kafka_t *rk)
{
    if (rk == NULL)
        return;
    struct kafka_watch *w = rd_kafka_opaque(rk);
    rd_kafka_destroy(rk);
    free(w);
}

rd_kafka_t *kafka_consumer_new(const struct config *cfg, const char *group_id,
                               kafka_rebalance_cb rebalance_cb, void *opaque,
                               struct metrics *metrics, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, err, errlen);

    if (conf == NULL)
        return NULL;
    if (!force(cfg, conf, "group.id", group_id, err, errlen) ||
        !force(cfg, conf, "enable.auto.commit", "false", err, errlen) ||
        !force(cfg, conf, "enable.auto.offset.store", "false", err, errlen) ||
        !set_default(cfg, conf, "auto.offset.reset", "earliest", err, errlen) ||
        /* librdkafka prefetches up to 64 MiB (100,000 messages) per
         * consumer: a backlog of 20,000 retry events took a retry-consumer
         * to 64-73 MiB. A few MiB still hold thousands of our events (about
         * 1 KiB each), plenty between two fetches. */
        !set_default(cfg, conf, "queued.max.messages.kbytes", "4096", err, errlen) ||
        !set_default(cfg, conf, "queued.min.messages", "10000", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* watch() frees conf when it fails. */
    struct kafka_watch *w = watch(cfg, conf, metrics, opaque, err, errlen);
    if (w == NULL)
        return NULL;
    w->rebalance_cb = rebalance_cb ? rebalance_cb : kafka_default_rebalance_cb;
    metrics_describe(metrics, "cancel_retry_consumer_lag", "gauge",
                     "messages not yet consumed and committed by this consumer, by topic");
    rd_kafka_conf_set_rebalance_cb(conf, watch_rebalance);
    rd_kafka_t *rk = new_handle(RD_KAFKA_CONSUMER, conf, w, err, errlen);
    if (rk == NULL)
        return NULL;
    /* One queue for messages and events: rd_kafka_consumer_poll() serves
     * both, so the rebalance callback runs from the caller's loop. */
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

rd_kafka_t *kafka_producer_new(const struct config *cfg, kafka_dr_msg_cb dr_msg_cb, void *opaque,
                               struct metrics *metrics, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, err, errlen);

    if (conf == NULL)
        return NULL;
    if (!force(cfg, conf, "enable.idempotence", "true", err, errlen) ||
        !force(cfg, conf, "acks", "all", err, errlen) ||
        !set_default(cfg, conf, "linger.ms", "5", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* watch() frees conf when it fails. */
    struct kafka_watch *w = watch(cfg, conf, metrics, opaque, err, errlen);
    if (w == NULL)
        return NULL;
    w->dr_msg_cb = dr_msg_cb;
    if (dr_msg_cb != NULL)
        rd_kafka_conf_set_dr_msg_cb(conf, watch_delivery);
    return new_handle(RD_KAFKA_PRODUCER, conf, w, err, errlen);
}

void kafka_consumer_close(rd_kafka_t *rk)
{
    if (rk == NULL)
        return;
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("could not leave the consumer group cleanly: %s", rd_kafka_err2str(err));
    kafka_destroy(rk);
}

int kafka_producer_close(rd_kafka_t *rk, int timeout_ms)
{
    if (rk == NULL)
        return 0;
    rd_kafka_flush(rk, timeout_ms);
    int left = rd_kafka_outq_len(rk);
    if (left > 0)
        log_warn("%d Kafka message%s still undelivered after %d ms", left, left == 1 ? "" : "s",
                 timeout_ms);
    kafka_destroy(rk);
    return left;
}

enum kafka_error_class kafka_classify(rd_kafka_resp_err_t err)
{
    switch (err) {
    /* The handle is done for: librdkafka raised a fatal error (e.g. the
     * idempotent producer lost its sequence after a broker restart), or the
     * cluster refuses who we are; no retry of the same call can help. */
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        return KAFKA_ERR_FATAL;
    /* This message will never be accepted as it is. */
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
        return KAFKA_ERR_PERMANENT;
    default:
        /* Broker down, timed out, queue full, leader moving, ...: librdkafka
         * or a later try will get through. Unknown codes land here too, on
         * purpose: retrying an event costs a delay, dropping it costs a
         * refund. */
        return KAFKA_ERR_TRANSIENT;
    }
}

const char *kafka_error_class_name(enum kafka_error_class c)
{
    switch (c) {
    case KAFKA_ERR_TRANSIENT:
        return "transient";
    case KAFKA_ERR_PERMANENT:
        return "permanent";
    case KAFKA_ERR_FATAL:
        break;
    }
    return "fatal";
}

rd_kafka_resp_err_t kafka_fatal_error_text(rd_kafka_t *rk, char *buf, size_t buflen)
{
    char why[512];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk, why, sizeof(why));

    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (buflen > 0)
            buf[0] = '\0';
        return err;
    }
    snprintf(buf, buflen, "%s: %s", rd_kafka_err2name(err), why);
    return err;
}

int kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *err,
                          size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = -1;

    if (rkt == NULL) {
        snprintf(err, errlen, "could not read topic %s: %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "could not reach the Kafka broker to read %s: %s", topic,
                 rd_kafka_err2str(e));
    } else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "cannot read topic %s: %s (run \"cancelctl topics\")", topic,
                 md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not found");
    } else {
        n = md->topics[0].partition_cnt;
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}
