/*
 * pipeline_kafka: the pipeline's topics. See pipeline_kafka.h.
 */
#include "pipeline_kafka.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "base/clock.h"
#include "event/dlq.h"
#include "pipeline_internal.h"

const char *pipeline_topic_of(struct pipeline *p, const char *role)
{
    if (strcmp(role, "cancel_failed") == 0)
        return p->cfg->topics.cancel_failed.name;
    if (strcmp(role, "retry") == 0)
        return p->cfg->topics.retry.name;
    if (strcmp(role, "outcome") == 0)
        return p->cfg->topics.outcome.name;
    if (strcmp(role, "dlq") == 0)
        return p->cfg->topics.dlq.name;
    cr_assert_fail("unknown topic role \"%s\" (cancel_failed, retry, outcome, dlq)", role);
    return NULL;
}

static rd_kafka_conf_t *kafka_conf(struct pipeline *p)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(
        rd_kafka_conf_set(conf, "bootstrap.servers", p->t.bootstrap, errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK, "%s", errstr);
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    return conf;
}

void pipeline_publish_raw_len(struct pipeline *p, const char *topic_role, const char *key,
                              const void *bytes, size_t len, const json_t *headers)
{
    pipeline_publish_raw_at(p, topic_role, key, bytes, len, headers, 0);
}

void pipeline_publish_raw_at(struct pipeline *p, const char *topic_role, const char *key,
                             const void *bytes, size_t len, const json_t *headers,
                             int64_t timestamp_ms)
{
    char errstr[256];
    const char *topic = pipeline_topic_of(p, topic_role);
    rd_kafka_conf_t *conf = kafka_conf(p);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "producer: %s", errstr);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)headers, name, v)
    {
        const char *s = json_string_value(v);
        rd_kafka_header_add(hdrs, name, -1, s, s ? -1 : 0);
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)bytes, len),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_headers_destroy(hdrs);
    rd_kafka_resp_err_t fe = e == RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_flush(rk, 15000) : e;
    int left = rd_kafka_outq_len(rk);
    rd_kafka_destroy(rk);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce to %s: %s", topic, rd_kafka_err2str(e));
    cr_assert(fe == RD_KAFKA_RESP_ERR_NO_ERROR && left == 0,
              "produce to %s: not acknowledged within 15 s (%s)", topic, rd_kafka_err2str(fe));
}

void pipeline_publish_raw(struct pipeline *p, const char *topic_role, const char *key,
                          const char *bytes)
{
    pipeline_publish_raw_len(p, topic_role, key, bytes, strlen(bytes), NULL);
}

void pipeline_publish(struct pipeline *p, const char *request_id, const char *gateway,
                      const char *payment_key, long long amount, const char *currency, bool partial)
{
    char amount_s[32];
    snprintf(amount_s, sizeof(amount_s), "%lld", amount);
    const char *args[] = {"publish",
                          "--request-id",
                          request_id,
                          "--gateway",
                          gateway,
                          "--payment-key",
                          payment_key,
                          "--amount",
                          amount_s,
                          "--currency",
                          currency,
                          "--reason",
                          "customer cancelled",
                          partial ? "--partial" : NULL,
                          NULL};
    pipeline_cancelctl_ok(p, args);
}

size_t pipeline_read_topic(struct pipeline *p, const char *topic_role, size_t expect,
                           int timeout_ms, struct pipeline_msg **out)
{
    char errstr[256];
    const char *topic = pipeline_topic_of(p, topic_role);
    rd_kafka_conf_t *conf = kafka_conf(p);
    char group[160];
    snprintf(group, sizeof(group), "%sreader-%d-%lld", p->t.prefix, (int)getpid(),
             (long long)mono_ms());
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "consumer: %s", errstr);

    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "metadata of %s: %s", topic, rd_kafka_err2str(e));
    int nparts = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
    rd_kafka_metadata_destroy(md);
    cr_assert(nparts > 0, "topic %s has no partitions", topic);

    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "assign %s: %s", topic, rd_kafka_err2str(e));

    struct pipeline_msg *m = NULL;
    size_t n = 0, cap = 0;
    /* expect 0: done when every partition is at its end at once. */
    bool *at_end = calloc((size_t)nparts, sizeof(*at_end));
    cr_assert_not_null(at_end);
    int ends = 0;
    int64_t deadline = mono_ms() + timeout_ms;
    while (mono_ms() < deadline && (expect == 0 ? ends < nparts : n < expect)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (msg == NULL)
            continue;
        bool known = msg->partition >= 0 && msg->partition < nparts;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (known && !at_end[msg->partition]) {
                at_end[msg->partition] = true;
                ends++;
            }
        } else if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (known && at_end[msg->partition]) {
                at_end[msg->partition] = false;
                ends--;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                m = realloc(m, cap * sizeof(*m));
                cr_assert_not_null(m);
            }
            struct pipeline_msg *x = &m[n++];
            memset(x, 0, sizeof(*x));
            if (msg->key != NULL) {
                x->key = strndup(msg->key, msg->key_len);
            }
            if (msg->payload != NULL) {
                x->value = malloc(msg->len + 1);
                cr_assert_not_null(x->value);
                memcpy(x->value, msg->payload, msg->len);
                x->value[msg->len] = '\0';
                x->len = msg->len;
            }
            rd_kafka_headers_t *hdrs = NULL;
            if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
                hdrs = NULL;
            x->headers = dlq_headers_from_kafka(hdrs);
            cr_assert_not_null(x->headers);
            x->partition = msg->partition;
            x->offset = msg->offset;
        }
        rd_kafka_message_destroy(msg);
    }
    free(at_end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *out = m;
    return n;
}

void pipeline_msgs_free(struct pipeline_msg *m, size_t n)
{
    for (size_t i = 0; m != NULL && i < n; i++) {
        free(m[i].key);
        free(m[i].value);
        json_decref(m[i].headers);
    }
    free(m);
}

bool pipeline_wait_consumed(struct pipeline *p, const char *topic_role, const char *consumer_role,
                            int timeout_ms)
{
    char errstr[256];
    const char *topic = pipeline_topic_of(p, topic_role);
    const char *group = NULL;
    if (strcmp(consumer_role, "intake") == 0)
        group = p->cfg->consumers.intake.group_id;
    else if (strcmp(consumer_role, "retry") == 0)
        group = p->cfg->consumers.retry.group_id;
    else
        cr_assert_fail("unknown consumer role \"%s\" (intake, retry)", consumer_role);
    int nparts = 0;
    if (strcmp(topic_role, "cancel_failed") == 0)
        nparts = p->cfg->topics.cancel_failed.partitions;
    else if (strcmp(topic_role, "retry") == 0)
        nparts = p->cfg->topics.retry.partitions;
    else if (strcmp(topic_role, "outcome") == 0)
        nparts = p->cfg->topics.outcome.partitions;
    else
        nparts = p->cfg->topics.dlq.partitions;

    /* A consumer of that group that never subscribes: it may read the
     * group's committed offsets without joining (and disturbing) it. */
    rd_kafka_conf_t *conf = kafka_conf(p);
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "consumer: %s", errstr);

    int64_t *high = calloc((size_t)nparts, sizeof(*high));
    cr_assert_not_null(high);
    for (int i = 0; i < nparts; i++) {
        int64_t low = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, i, &low, &high[i], 10000);
        cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "watermarks of %s/%d: %s", topic, i,
                     rd_kafka_err2str(e));
    }
    bool done = false;
    int64_t deadline = mono_ms() + timeout_ms;
    while (!done) {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
        for (int i = 0; i < nparts; i++)
            rd_kafka_topic_partition_list_add(parts, topic, i);
        rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, 10000);
        done = e == RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; done && i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int64_t want = high[tp->partition];
            /* An empty partition needs no commit. */
            if (want > 0 && (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR || tp->offset < want))
                done = false;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        if (done || mono_ms() >= deadline)
            break;
        itest_sleep_ms(200);
    }
    free(high);
    rd_kafka_destroy(rk);
    return done;
}

static void on_bulk_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    int *failed = opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        (*failed)++;
}

void pipeline_publish_many(struct pipeline *p, int n, pipeline_event_fn fill, void *arg)
{
    struct itest *t = pipeline_itest(p);
    char errstr[512], topic[256];
    int failed = 0;
    snprintf(topic, sizeof(topic), "%spayments.cancel.failed", t->prefix);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", t->bootstrap, errstr, sizeof(errstr)),
                 RD_KAFKA_CONF_OK, "%s", errstr);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
    rd_kafka_conf_set_dr_msg_cb(conf, on_bulk_delivery);
    rd_kafka_conf_set_opaque(conf, &failed);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "producer: %s", errstr);

    for (int i = 0; i < n; i++) {
        char rid[PIPELINE_ID_MAX] = "", pk[PIPELINE_ID_MAX] = "", *json = NULL;
        struct cancel_failed_event ev = CANCEL_FAILED_EVENT_INIT;
        ev.reason = "customer cancelled";
        fill(i, &ev, rid, pk, arg);
        cr_assert(cancel_event_build(&ev, &json, NULL, errstr, sizeof(errstr)), "event %d: %s", i,
                  errstr);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY(ev.request_id, strlen(ev.request_id)),
                                      RD_KAFKA_V_VALUE(json, strlen(json)), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 50);
        free(json);
        cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 60000);
    int left = rd_kafka_outq_len(rk);
    rd_kafka_destroy(rk);
    cr_assert(left == 0 && failed == 0, "%d events not acknowledged, %d failed", left, failed);
}
