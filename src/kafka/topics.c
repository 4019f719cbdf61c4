/*
 * topics: CreateTopics and metadata checks. See topics.h.
 */
#include "kafka/topics.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "base/clock.h"
#include "base/log.h"
#include "kafka/kafka.h"

const char *topic_state_name(enum topic_state s)
{
    switch (s) {
    case TOPIC_MISSING:
        return "missing";
    case TOPIC_CREATED:
        return "created";
    case TOPIC_OK:
        return "ok";
    case TOPIC_MORE:
        return "more partitions";
    case TOPIC_FEWER:
        break;
    }
    return "fewer partitions";
}

/* The broker list as configured, for messages. */
static const char *bootstrap_of(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->kafka.nprops; i++) {
        if (strcmp(cfg->kafka.props[i].key, "bootstrap.servers") == 0 ||
            strcmp(cfg->kafka.props[i].key, "metadata.broker.list") == 0)
            return cfg->kafka.props[i].value;
    }
    return "(no bootstrap.servers configured)";
}

static void add_topic(struct topics_report *r, const char *role, const struct config_topic *t)
{
    struct topic_report *tr = &r->topics[r->n++];
    memset(tr, 0, sizeof(*tr));
    snprintf(tr->role, sizeof(tr->role), "%s", role);
    snprintf(tr->name, sizeof(tr->name), "%s", t->name ? t->name : "");
    tr->partitions = t->partitions;
    tr->replication = t->replication_factor;
    tr->actual_partitions = -1;
    tr->state = TOPIC_MISSING;
}

static void init_report(const struct config *cfg, struct topics_report *r)
{
    memset(r, 0, sizeof(*r));
    add_topic(r, "cancel_failed", &cfg->topics.cancel_failed);
    add_topic(r, "retry", &cfg->topics.retry);
    add_topic(r, "outcome", &cfg->topics.outcome);
    add_topic(r, "dlq", &cfg->topics.dlq);
}

/* A short-lived handle for admin requests and metadata. A plain producer:
 * it never produces, and without idempotence it sends no InitProducerId. */
static rd_kafka_t *admin_handle(const struct config *cfg, char *err, size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, err, errlen);
    if (conf == NULL)
        return NULL;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "could not create a Kafka admin client: %s", why);
    }
    return rk;
}

/* Fill actual partition counts and states from one metadata request for
 * all topics (asking for named topics could make a broker with
 * auto.create.topics.enable create them with its own defaults). TOPIC_CREATED
 * stays as it is once the count matches. */
static bool read_metadata(rd_kafka_t *rk, const struct config *cfg, int timeout_ms,
                          struct topics_report *r, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "could not reach the Kafka broker at %s: %s", bootstrap_of(cfg),
                 rd_kafka_err2str(e));
        return false;
    }
    r->answered = true;
    for (size_t i = 0; i < r->n; i++) {
        struct topic_report *tr = &r->topics[i];
        tr->actual_partitions = -1;
        for (int t = 0; t < md->topic_cnt; t++) {
            if (strcmp(md->topics[t].topic, tr->name) == 0 &&
                md->topics[t].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                tr->actual_partitions = md->topics[t].partition_cnt;
                break;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    return true;
}

/* Decide each topic's state from the counts; fill the counters. */
static void judge(struct topics_report *r)
{
    r->n_missing = r->n_more = r->n_fewer = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct topic_report *tr = &r->topics[i];
        tr->detail[0] = '\0';
        if (tr->actual_partitions < 0) {
            tr->state = TOPIC_MISSING;
            snprintf(tr->detail, sizeof(tr->detail), "topic %s does not exist", tr->name);
            r->n_missing++;
        } else if (tr->actual_partitions < tr->partitions) {
            tr->state = TOPIC_FEWER;
            snprintf(tr->detail, sizeof(tr->detail),
                     "topic %s has %d partition%s on the broker but the config says %d: add "
                     "partitions (kafka-topics.sh --alter --topic %s --partitions %d) or lower "
                     "topics.%s.partitions",
                     tr->name, tr->actual_partitions, tr->actual_partitions == 1 ? "" : "s",
                     tr->partitions, tr->name, tr->partitions, tr->role);
            r->n_fewer++;
        } else if (tr->actual_partitions > tr->partitions) {
            tr->state = TOPIC_MORE;
            snprintf(tr->detail, sizeof(tr->detail),
                     "topic %s has %d partitions on the broker, more than the %d of "
                     "topics.%s.partitions",
                     tr->name, tr->actual_partitions, tr->partitions, tr->role);
            r->n_more++;
        } else if (tr->state != TOPIC_CREATED) {
            tr->state = TOPIC_OK;
        }
    }
}

static bool describe_with(rd_kafka_t *rk, const struct config *cfg, int timeout_ms,
                          struct topics_report *out, char *err, size_t errlen)
{
    if (!read_metadata(rk, cfg, timeout_ms, out, err, errlen))
        return false;
    judge(out);
    return true;
}

bool topics_describe(const struct config *cfg, int timeout_ms, struct topics_report *out, char *err,
                     size_t errlen)
{
    init_report(cfg, out);
    if (timeout_ms <= 0)
        timeout_ms = TOPICS_DEFAULT_TIMEOUT_MS;
    rd_kafka_t *rk = admin_handle(cfg, err, errlen);
    if (rk == NULL)
        return false;
    bool ok = describe_with(rk, cfg, timeout_ms, out, err, errlen);
    rd_kafka_destroy(rk);
    return ok;
}

/* Send one CreateTopics request for the missing topics and wait for its
 * result. TOPIC_ALREADY_EXISTS (someone else was faster) is success. */
static bool create_missing(rd_kafka_t *rk, int timeout_ms, struct topics_report *r, char *err,
                           size_t errlen)
{
    rd_kafka_NewTopic_t *nt[4] = {NULL};
    const char *names[4] = {NULL};
    size_t n = 0;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    char why[512];
    bool ok = false;

    for (size_t i = 0; i < r->n; i++) {
        if (r->topics[i].state != TOPIC_MISSING)
            continue;
        bool dup = false; /* two roles may share a topic name */
        for (size_t j = 0; j < n; j++)
            dup = dup || strcmp(names[j], r->topics[i].name) == 0;
        if (dup)
            continue;
        nt[n] = rd_kafka_NewTopic_new(r->topics[i].name, r->topics[i].partitions,
                                      r->topics[i].replication, why, sizeof(why));
        if (nt[n] == NULL) {
            snprintf(err, errlen, "cannot create topic %s: %s", r->topics[i].name, why);
            goto out;
        }
        names[n++] = r->topics[i].name;
    }
    if (n == 0)
        return true;
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (opts == NULL ||
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, why, sizeof(why)) ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, why, sizeof(why))) {
        snprintf(err, errlen, "could not create topics: %s", opts ? why : "out of memory");
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, n, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (ev == NULL) {
        snprintf(err, errlen, "could not create topics: no answer from the broker within %d ms",
                 timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "could not create topics: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        const char *name = rd_kafka_topic_result_name(res[i]);
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            const char *s = rd_kafka_topic_result_error_string(res[i]);
            snprintf(err, errlen, "could not create topic %s: %s", name,
                     s ? s : rd_kafka_err2str(e));
            goto out;
        }
        for (size_t j = 0; j < r->n; j++) {
            if (strcmp(r->topics[j].name, name) == 0 && e == RD_KAFKA_RESP_ERR_NO_ERROR) {
                r->topics[j].state = TOPIC_CREATED;
                log_info("created topic %s with %d partition%s", name, r->topics[j].partitions,
                         r->topics[j].partitions == 1 ? "" : "s");
            }
        }
    }
    ok = true;
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    for (size_t i = 0; i < n; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    return ok;
}

bool topics_ensure(const struct config *cfg, int timeout_ms, struct topics_report *out, char *err,
                   size_t errlen)
{
    bool ok = false;

    init_report(cfg, out);
    if (timeout_ms <= 0)
        timeout_ms = TOPICS_DEFAULT_TIMEOUT_MS;
    int64_t deadline = mono_ms() + timeout_ms;
    rd_kafka_t *rk = admin_handle(cfg, err, errlen);
    if (rk == NULL)
        return false;
    if (!describe_with(rk, cfg, timeout_ms, out, err, errlen))
        goto out;
    if (out->n_missing > 0) {
        if (!create_missing(rk, timeout_ms, out, err, errlen))
            goto out;
        /* The controller has the topics; the broker's metadata follows a
         * moment later. Wait for it so that the report (and whoever starts
         * producing next) sees them. */
        for (;;) {
            int left = (int)(deadline - mono_ms());
            if (!describe_with(rk, cfg, left > 1000 ? left : 1000, out, err, errlen))
                goto out;
            if (out->n_missing == 0 || mono_ms() >= deadline)
                break;
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    for (size_t i = 0; i < out->n; i++) {
        if (out->topics[i].state == TOPIC_CREATED)
            out->n_created++;
        if (out->topics[i].state == TOPIC_MORE)
            log_warn("%s", out->topics[i].detail);
    }
    for (size_t i = 0; i < out->n; i++) {
        const struct topic_report *tr = &out->topics[i];
        if (tr->state == TOPIC_FEWER) {
            snprintf(err, errlen, "%s", tr->detail);
            goto out;
        }
        if (tr->state == TOPIC_MISSING) {
            snprintf(err, errlen,
                     "could not create topic %s: it was still not in the broker's metadata "
                     "after %d ms",
                     tr->name, timeout_ms);
            goto out;
        }
    }
    ok = true;
out:
    rd_kafka_destroy(rk);
    return ok;
}
