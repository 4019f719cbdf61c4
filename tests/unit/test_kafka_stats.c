/*
 * kafka_stats: librdkafka's statistics JSON (the shape of STATISTICS.md,
 * trimmed to what is read) into broker state and consumer lag.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "kafka/kafka_stats.h"

static const char consumer_up[] =
    "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"brokers\":{"
    " \"GroupCoordinator\":{\"name\":\"GroupCoordinator\",\"nodeid\":1,\"source\":\"logical\","
    "  \"state\":\"UP\"},"
    " \"127.0.0.1:9092/bootstrap\":{\"nodeid\":-1,\"source\":\"configured\",\"state\":\"INIT\"},"
    " \"127.0.0.1:9092/1\":{\"nodeid\":1,\"source\":\"learned\",\"state\":\"UP\"},"
    " \":0/internal\":{\"nodeid\":-1,\"source\":\"internal\",\"state\":\"UP\"}},"
    "\"topics\":{"
    " \"p.payments.cancel.retry\":{\"topic\":\"p.payments.cancel.retry\",\"partitions\":{"
    "  \"0\":{\"partition\":0,\"consumer_lag\":5},"
    "  \"1\":{\"partition\":1,\"consumer_lag\":-1},"
    "  \"2\":{\"partition\":2,\"consumer_lag\":7},"
    "  \"-1\":{\"partition\":-1,\"consumer_lag\":100}}}}}";

Test(kafka_stats, a_consumer_with_brokers_up_and_its_lag_per_topic)
{
    struct kafka_stats s;
    cr_assert(kafka_stats_parse(consumer_up, strlen(consumer_up), &s));
    cr_expect(s.consumer);
    cr_expect_eq(s.brokers, 3, "the internal broker is not one");
    cr_expect_eq(s.brokers_up, 2);
    cr_assert_eq(s.ntopics, 1);
    cr_expect_str_eq(s.topics[0].name, "p.payments.cancel.retry");
    /* Partitions with no known lag and the internal partition -1 left out. */
    cr_expect_eq(s.topics[0].lag, 12);

    struct metrics *m = metrics_new("retry-consumer");
    char body[256];
    metrics_check_set(m, "kafka", false, "no broker connection yet");
    kafka_stats_report(&s, m);
    cr_expect(metrics_readiness(m, body, sizeof(body)), "%s", body);
    char *text = metrics_render(m);
    cr_expect_not_null(strstr(text, "cancel_retry_consumer_lag{service=\"retry-consumer\","
                                    "topic=\"p.payments.cancel.retry\"} 12\n"),
                       "%s", text);
    free(text);
    metrics_free(m);
}

Test(kafka_stats, no_broker_up_fails_the_check_with_a_state)
{
    static const char down[] =
        "{\"type\":\"producer\",\"brokers\":{"
        " \"127.0.0.1:9092/1\":{\"source\":\"learned\",\"state\":\"CONNECT\"},"
        " \":0/internal\":{\"source\":\"internal\",\"state\":\"UP\"}},"
        "\"topics\":{\"t\":{\"partitions\":{\"0\":{\"consumer_lag\":-1}}}}}";
    struct kafka_stats s;
    cr_assert(kafka_stats_parse(down, strlen(down), &s));
    cr_expect_not(s.consumer);
    cr_expect_eq(s.brokers_up, 0);
    cr_expect_eq(s.ntopics, 0, "a producer has no lag");

    struct metrics *m = metrics_new("outbox-relay");
    char body[256];
    kafka_stats_report(&s, m);
    cr_expect_not(metrics_readiness(m, body, sizeof(body)));
    cr_expect_str_eq(body, "not ready\nkafka: no broker connection is up (1 known, one in state "
                           "CONNECT)\n");
    metrics_free(m);
}

Test(kafka_stats, not_statistics_is_refused)
{
    struct kafka_stats s;
    cr_expect_not(kafka_stats_parse("[]", 2, &s));
    cr_expect_not(kafka_stats_parse("{\"type\":\"consumer\"}", 20, &s));
    cr_expect_not(kafka_stats_parse("{", 1, &s));
}
