/*
 * kafka.c against the real broker: an idempotent producer's message with
 * headers is delivered, consumed in a group, committed explicitly; nothing
 * is committed behind the caller's back.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "harness.h"
#include "base/clock.h"
#include "kafka/kafka.h"
#include "kafka/topics.h"

static struct itest t;
static struct config *cfg;

static void setup(void)
{
    char err[1024];
    struct topics_report report;
    itest_setup(&t, "kafka");
    cfg = config_load(t.config_path, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_assert(topics_ensure(cfg, 0, &report, err, sizeof(err)), "%s", err);
}

static void teardown(void)
{
    config_free(cfg);
    cfg = NULL;
    itest_teardown(&t);
}

TestSuite(kafka, .init = setup, .fini = teardown, .timeout = 120);

struct delivery {
    int reports;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct delivery *d = opaque;
    d->reports++;
    d->err = msg->err;
    d->partition = msg->partition;
    d->offset = msg->offset;
}

static const char value[] = "{\"specversion\":\"1.0\",\"id\":\"evt-1\"}";

/* Produce one message with two headers to topic and wait for its delivery
 * report. */
static struct delivery produce_one(const char *topic, const char *key)
{
    char err[512];
    struct delivery d = {0, RD_KAFKA_RESP_ERR_NO_ERROR, -1, -1};
    rd_kafka_t *p = kafka_producer_new(cfg, on_delivery, &d, NULL, err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "content-type", -1, "application/cloudevents+json", -1);
    rd_kafka_header_add(h, "dlq.reason", -1, "PARSE_ERROR", -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_headers_destroy(h); /* owned by the message only on success */
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "producev: %s", rd_kafka_err2str(e));
    int64_t deadline = mono_ms() + 30000;
    while (d.reports == 0 && mono_ms() < deadline)
        rd_kafka_poll(p, 100);
    cr_assert_eq(d.reports, 1, "no delivery report within 30 s");
    cr_assert_eq(d.err, RD_KAFKA_RESP_ERR_NO_ERROR, "delivery failed: %s", rd_kafka_err2str(d.err));
    cr_expect_eq(kafka_producer_close(p, 5000), 0);
    return d;
}

static rd_kafka_t *consumer_for(const char *group, const char *topic)
{
    char err[512];
    rd_kafka_t *c = kafka_consumer_new(cfg, group, NULL, NULL, NULL, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "subscribe: %s", rd_kafka_err2str(e));
    return c;
}

/* The next real message within timeout_ms, or NULL. */
static rd_kafka_message_t *next_message(rd_kafka_t *c, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return m;
        rd_kafka_message_destroy(m); /* an event such as a transient broker error */
    }
    return NULL;
}

/* Poll until the group gave this consumer its partitions. */
static void wait_assigned(rd_kafka_t *c, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        rd_kafka_topic_partition_list_t *a = NULL;
        cr_assert_eq(rd_kafka_assignment(c, &a), RD_KAFKA_RESP_ERR_NO_ERROR);
        int n = a->cnt;
        rd_kafka_topic_partition_list_destroy(a);
        if (n > 0)
            return;
        cr_assert_lt(mono_ms(), deadline, "no partitions assigned within %d ms", timeout_ms);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        cr_assert_null(m, "a message arrived: %.*s", m ? (int)m->len : 0,
                       m ? (const char *)m->payload : "");
    }
}

static void expect_header(const rd_kafka_message_t *m, const char *name, const char *want)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t len = 0;
    cr_assert_eq(rd_kafka_message_headers(m, &h), RD_KAFKA_RESP_ERR_NO_ERROR, "no headers");
    cr_assert_eq(rd_kafka_header_get_last(h, name, &v, &len), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "no header %s", name);
    cr_expect(len == strlen(want) && memcmp(v, want, len) == 0, "header %s = %.*s, want %s", name,
              (int)len, (const char *)v, want);
}

Test(kafka, produced_message_is_consumed_and_committed_once)
{
    const char *topic = cfg->topics.cancel_failed.name;
    char group[160];
    snprintf(group, sizeof(group), "%sgroup", t.prefix);

    struct delivery d = produce_one(topic, "req-42");
    cr_expect_geq(d.offset, 0);

    rd_kafka_t *c = consumer_for(group, topic);
    rd_kafka_message_t *m = next_message(c, 30000);
    cr_assert_not_null(m, "nothing consumed within 30 s");
    cr_expect_eq(m->partition, d.partition);
    cr_expect_eq(m->offset, d.offset);
    cr_expect(m->key_len == 6 && memcmp(m->key, "req-42", 6) == 0, "key %.*s", (int)m->key_len,
              (const char *)m->key);
    cr_expect(m->len == strlen(value) && memcmp(m->payload, value, m->len) == 0, "value %.*s",
              (int)m->len, (const char *)m->payload);
    expect_header(m, "content-type", "application/cloudevents+json");
    expect_header(m, "dlq.reason", "PARSE_ERROR");

    /* The caller's explicit, synchronous commit (after its db work). */
    int32_t partition = m->partition;
    int64_t offset = m->offset;
    cr_assert_eq(rd_kafka_commit_message(c, m, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_message_destroy(m);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition);
    cr_assert_eq(rd_kafka_committed(c, parts, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_expect_eq(parts->elems[0].offset, offset + 1, "committed %lld, want %lld",
                 (long long)parts->elems[0].offset, (long long)(offset + 1));
    rd_kafka_topic_partition_list_destroy(parts);
    kafka_consumer_close(c);

    /* A new member of the same group starts after the commit: nothing new. */
    c = consumer_for(group, topic);
    wait_assigned(c, 30000);
    m = next_message(c, 3000);
    cr_expect_null(m, "the committed message came again: offset %lld",
                   m ? (long long)m->offset : -1LL);
    if (m != NULL)
        rd_kafka_message_destroy(m);
    kafka_consumer_close(c);
}

Test(kafka, nothing_is_committed_without_the_caller)
{
    const char *topic = cfg->topics.dlq.name;
    char group[160];
    snprintf(group, sizeof(group), "%sgroup-nocommit", t.prefix);

    struct delivery d = produce_one(topic, "req-7");

    rd_kafka_t *c = consumer_for(group, topic);
    rd_kafka_message_t *m = next_message(c, 30000);
    cr_assert_not_null(m, "nothing consumed within 30 s");
    cr_expect_eq(m->offset, d.offset);
    rd_kafka_message_destroy(m);
    /* Several seconds of polling would be plenty for auto-commit (default
     * interval 5 s) to have happened if it were on. */
    m = next_message(c, 6000);
    cr_expect_null(m);
    if (m != NULL)
        rd_kafka_message_destroy(m);
    kafka_consumer_close(c);

    /* The crash-and-restart case: the message comes again. */
    c = consumer_for(group, topic);
    m = next_message(c, 30000);
    cr_assert_not_null(m, "the uncommitted message was not redelivered");
    cr_expect_eq(m->offset, d.offset);
    rd_kafka_message_destroy(m);
    kafka_consumer_close(c);
}
