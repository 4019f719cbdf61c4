/*
 * topic-dump: print every message a topic holds right now, one JSON object
 * per line, then exit. A development tool for deploy/local/demo (which reads
 * the outcome and dead-letter topics back to show them and to check them);
 * never installed.
 *
 * It joins no consumer group and commits nothing: it assigns every partition
 * from its low watermark and stops at the high watermark it saw at start, so
 * it never disturbs the pipeline's own groups and always terminates.
 *
 * Output (stdout), per message:
 *   {"topic":..,"partition":..,"offset":..,"timestamp":ms|null,"key":..|null,
 *    "headers":{"name":"value",..},"value":"..."}
 * Bytes of the value or key that are not valid UTF-8 are replaced by '?'
 * (the demo's messages are JSON or deliberately malformed ASCII).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "base/clock.h"
#include "base/duration.h"
#include "base/log.h"
#include "config/config.h"
#include "kafka/kafka.h"

#define TOPIC_DUMP_MAX_PARTITIONS 256

struct topic_dump_part {
    int32_t id;
    int64_t low;
    int64_t high; /* exclusive end, fixed at start */
    bool done;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: topic-dump [--config FILE] --topic ROLE|NAME [--timeout DURATION]\n"
            "\n"
            "Print every message the topic holds now, one JSON object per line, and exit.\n"
            "ROLE is cancel_failed, retry, outcome or dlq (the config's topic names);\n"
            "anything else is taken as a topic name. Joins no group, commits nothing.\n"
            "\n"
            "  --config FILE       default $CANCEL_RETRY_CONFIG, else config/cancel-retry.yaml\n"
            "  --timeout DURATION  give up after this long (default 20s)\n"
            "\n"
            "Exit codes: 0 done, 1 could not read the topic, 2 usage error.\n");
}

static const char *topic_for_role(const struct config *cfg, const char *role)
{
    if (strcmp(role, "cancel_failed") == 0)
        return cfg->topics.cancel_failed.name;
    if (strcmp(role, "retry") == 0)
        return cfg->topics.retry.name;
    if (strcmp(role, "outcome") == 0)
        return cfg->topics.outcome.name;
    if (strcmp(role, "dlq") == 0)
        return cfg->topics.dlq.name;
    return role;
}

/* A JSON string of the bytes, invalid UTF-8 replaced by '?'. New reference;
 * NULL only when out of memory. */
static json_t *json_bytes(const void *data, size_t len)
{
    json_t *s = json_stringn((const char *)data, len);
    if (s != NULL || len == 0)
        return s != NULL ? s : json_string("");
    char *copy = malloc(len);
    if (copy == NULL)
        return NULL;
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        copy[i] = (p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n' || p[i] == '\t' ? (char)p[i] : '?';
    s = json_stringn(copy, len);
    free(copy);
    return s;
}

static bool print_message(const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    rd_kafka_headers_t *hdrs = NULL;
    json_t *o = json_object(), *headers = json_object();
    bool ok = false;

    if (o == NULL || headers == NULL)
        goto out;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            json_t *v = val != NULL ? json_bytes(val, size) : json_null();
            if (v == NULL || json_object_set_new(headers, name, v) != 0)
                goto out;
        }
    }
    json_object_set_new(o, "topic", json_string(rd_kafka_topic_name(m->rkt)));
    json_object_set_new(o, "partition", json_integer(m->partition));
    json_object_set_new(o, "offset", json_integer(m->offset));
    json_object_set_new(o, "timestamp", ts >= 0 ? json_integer(ts) : json_null());
    json_object_set_new(o, "key", m->key != NULL ? json_bytes(m->key, m->key_len) : json_null());
    json_object_set(o, "headers", headers);
    json_object_set_new(o, "value",
                        m->payload != NULL ? json_bytes(m->payload, m->len) : json_null());
    if (json_dumpf(o, stdout, JSON_COMPACT) != 0 || fputc('\n', stdout) == EOF)
        goto out;
    ok = true;
out:
    json_decref(headers);
    json_decref(o);
    return ok;
}

/* Fill parts with the topic's partitions and their watermarks. Returns the
 * count, or -1 with err set. */
static int describe(rd_kafka_t *rk, const char *topic, struct topic_dump_part *parts,
                    int timeout_ms, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e;
    int n = -1;

    if (rkt == NULL) {
        snprintf(err, errlen, "could not create a handle for topic %s", topic);
        return -1;
    }
    e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "could not read the metadata of topic %s: %s", topic,
                 rd_kafka_err2str(e));
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "cannot read topic %s: %s", topic,
                 md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not in metadata");
        goto out;
    }
    if (md->topics[0].partition_cnt > TOPIC_DUMP_MAX_PARTITIONS) {
        snprintf(err, errlen, "cannot read topic %s: more than %d partitions", topic,
                 TOPIC_DUMP_MAX_PARTITIONS);
        goto out;
    }
    n = 0;
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        struct topic_dump_part *p = &parts[n];
        p->id = md->topics[0].partitions[i].id;
        e = rd_kafka_query_watermark_offsets(rk, topic, p->id, &p->low, &p->high, timeout_ms);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "could not read the offsets of %s [%d]: %s", topic, (int)p->id,
                     rd_kafka_err2str(e));
            n = -1;
            goto out;
        }
        p->done = p->high <= p->low;
        n++;
    }
out:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

static bool all_done(const struct topic_dump_part *parts, int n)
{
    for (int i = 0; i < n; i++) {
        if (!parts[i].done)
            return false;
    }
    return true;
}

/* Read topic from its start to the high watermarks seen now. */
static bool dump(const struct config *cfg, const char *topic, int64_t timeout_ms, char *err,
                 size_t errlen)
{
    struct topic_dump_part parts[TOPIC_DUMP_MAX_PARTITIONS];
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, err, errlen);
    rd_kafka_topic_partition_list_t *assignment = NULL;
    rd_kafka_t *rk = NULL;
    int64_t deadline = wall_ms() + timeout_ms;
    bool ok = false;
    int n;

    if (conf == NULL)
        return false;
    /* A group id is required by the consumer API even for assign(); nothing
     * is ever committed under it. */
    if (rd_kafka_conf_set(conf, "group.id", "cancel-retry-topic-dump", err, errlen) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, errlen) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_poll_set_consumer(rk);
    n = describe(rk, topic, parts, (int)timeout_ms, err, errlen);
    if (n < 0)
        goto out;
    assignment = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    for (int i = 0; i < n; i++) {
        if (!parts[i].done)
            rd_kafka_topic_partition_list_add(assignment, topic, parts[i].id)->offset =
                parts[i].low;
    }
    if (assignment->cnt == 0) {
        ok = true;
        goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, assignment);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "could not assign the partitions of %s: %s", topic,
                 rd_kafka_err2str(e));
        goto out;
    }
    while (!all_done(parts, n)) {
        if (wall_ms() > deadline) {
            snprintf(err, errlen, "could not read all of %s within %lld ms", topic,
                     (long long)timeout_ms);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        struct topic_dump_part *p = NULL;
        for (int i = 0; i < n; i++) {
            if (parts[i].id == m->partition)
                p = &parts[i];
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p != NULL)
                p->done = true;
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_warn("reading %s: %s", topic, rd_kafka_message_errstr(m));
        } else if (p != NULL && m->offset < p->high) {
            if (!print_message(m)) {
                snprintf(err, errlen, "could not write to stdout");
                rd_kafka_message_destroy(m);
                goto out;
            }
            if (m->offset + 1 >= p->high)
                p->done = true;
        }
        rd_kafka_message_destroy(m);
    }
    ok = true;
out:
    if (assignment != NULL)
        rd_kafka_topic_partition_list_destroy(assignment);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ok && fflush(stdout) == 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"timeout", required_argument, NULL, 'T'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *config_path = getenv("CANCEL_RETRY_CONFIG"), *role = NULL;
    int64_t timeout_ms = 20000;
    char err[1024] = "";
    struct config *cfg = NULL;
    int c, rc = 1;

    if (config_path == NULL || config_path[0] == '\0')
        config_path = "config/cancel-retry.yaml";
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 't':
            role = optarg;
            break;
        case 'T':
            if (!duration_parse(optarg, &timeout_ms, err, sizeof(err)) || timeout_ms <= 0) {
                fprintf(stderr, "topic-dump: --timeout: %s\n", err[0] ? err : "must be > 0");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (role == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    log_init("topic-dump", LOG_WARN);
    cfg = config_load(config_path, err, sizeof(err));
    if (cfg == NULL) {
        fprintf(stderr, "topic-dump: %s\n", err);
        return 1;
    }
    if (dump(cfg, topic_for_role(cfg, role), timeout_ms, err, sizeof(err)))
        rc = 0;
    else
        fprintf(stderr, "topic-dump: %s\n", err);
    config_free(cfg);
    return rc;
}
