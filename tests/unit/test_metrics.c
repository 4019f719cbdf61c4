#include <criterion/criterion.h>
#include <string.h>

#include "service/metrics.h"

Test(metrics, counters_and_gauges_render_in_prometheus_text)
{
    struct metrics *m = metrics_new("retry-consumer");
    cr_assert_not_null(m);
    metrics_describe(m, "attempts_total", "counter", "attempts by verdict");
    metrics_add(m, "attempts_total", "verdict=\"RETRYABLE\"", 2);
    metrics_add(m, "in_flight", NULL, 0);
    metrics_add(m, "attempts_total", "verdict=\"SUCCEEDED\"", 1);
    metrics_add(m, "attempts_total", "verdict=\"RETRYABLE\"", 3);
    metrics_set(m, "in_flight", NULL, 7);
    char *text = metrics_render(m);
    cr_assert_not_null(text);
    cr_expect_not_null(strstr(text, "# HELP attempts_total attempts by verdict\n"
                                    "# TYPE attempts_total counter\n"
                                    "attempts_total{service=\"retry-consumer\","
                                    "verdict=\"RETRYABLE\"} 5\n"
                                    "attempts_total{service=\"retry-consumer\","
                                    "verdict=\"SUCCEEDED\"} 1\n"),
                       "%s", text);
    cr_expect_not_null(strstr(text, "in_flight{service=\"retry-consumer\"} 7\n"), "%s", text);
    free(text);
    metrics_free(m);
}

Test(metrics, label_values_are_masked)
{
    struct metrics *m = metrics_new("retry-consumer");
    cr_assert_not_null(m);
    /* A code a gateway made up, quoting a key. */
    metrics_add(m, "attempts_total", "code=\"sk_live_LEAKME1\"", 1);
    char *text = metrics_render(m);
    cr_assert_not_null(text);
    cr_expect_not_null(strstr(text, "attempts_total{service=\"retry-consumer\",code=\"***\"} 1\n"),
                       "%s", text);
    cr_expect_null(strstr(text, "LEAKME"), "%s", text);
    free(text);
    metrics_free(m);
}

Test(metrics, null_registry_is_a_no_op)
{
    metrics_add(NULL, "x", NULL, 1);
    metrics_set(NULL, "x", NULL, 1);
    metrics_describe(NULL, "x", "counter", "x");
    cr_expect_eq(metrics_port(NULL), 0);
    metrics_free(NULL);
}

Test(metrics, serves_on_a_free_port_and_refuses_a_bad_address)
{
    char err[256];
    struct metrics *m = metrics_new("t");
    cr_expect_not(metrics_serve(m, "not-an-address", err, sizeof(err)));
    cr_expect_not(metrics_serve(m, "999.1.1.1:80", err, sizeof(err)));
    cr_assert(metrics_serve(m, "127.0.0.1:0", err, sizeof(err)), "%s", err);
    cr_expect_gt(metrics_port(m), 0);
    metrics_free(m);
}

Test(metrics, ready_only_when_every_check_passes)
{
    char body[512];
    struct metrics *m = metrics_new("intake-consumer");
    cr_assert_not_null(m);

    /* No check yet: nothing to wait for. */
    cr_expect(metrics_readiness(m, body, sizeof(body)));
    cr_expect_str_eq(body, "ready\n");

    metrics_check_set(m, "database", false, "not connected yet");
    metrics_check_set(m, "kafka", false, "no broker\nconnection yet");
    cr_expect_not(metrics_readiness(m, body, sizeof(body)));
    /* One line per failing check: a newline in a reason does not split it. */
    cr_expect_str_eq(body, "not ready\ndatabase: not connected yet\n"
                           "kafka: no broker connection yet\n");

    metrics_check_set(m, "database", true, "ignored when passing");
    cr_expect_not(metrics_readiness(m, body, sizeof(body)));
    cr_expect_str_eq(body, "not ready\nkafka: no broker connection yet\n");

    metrics_check_set(m, "kafka", true, NULL);
    cr_expect(metrics_readiness(m, body, sizeof(body)));
    cr_expect_str_eq(body, "ready\n");

    /* Each check is a gauge too. */
    metrics_check_set(m, "database", false, "lost the connection to the database");
    char *text = metrics_render(m);
    cr_assert_not_null(text);
    cr_expect_not_null(
        strstr(text, "cancel_retry_ready{service=\"intake-consumer\",check=\"database\"} 0\n"),
        "%s", text);
    cr_expect_not_null(
        strstr(text, "cancel_retry_ready{service=\"intake-consumer\",check=\"kafka\"} 1\n"), "%s",
        text);
    free(text);
    metrics_free(m);
}

Test(metrics, readiness_of_no_registry_and_a_small_buffer)
{
    char body[8];
    cr_expect(metrics_readiness(NULL, body, sizeof(body)));
    metrics_check_set(NULL, "database", false, "x");

    struct metrics *m = metrics_new("t");
    metrics_check_set(m, "database", false, "a reason longer than the buffer");
    cr_expect_not(metrics_readiness(m, body, sizeof(body)));
    cr_expect_eq(strlen(body), sizeof(body) - 1);
    metrics_free(m);
}

Test(metrics, a_metric_described_twice_has_one_help_line)
{
    struct metrics *m = metrics_new("outbox-relay");
    metrics_describe(m, "lag", "gauge", "first");
    metrics_describe(m, "lag", "gauge", "second");
    metrics_set(m, "lag", NULL, 1);
    char *text = metrics_render(m);
    cr_assert_not_null(text);
    cr_expect_str_eq(text, "# HELP lag first\n# TYPE lag gauge\nlag{service=\"outbox-relay\"} 1\n");
    free(text);
    metrics_free(m);
}

Test(metrics, a_described_metric_is_served_before_its_first_count)
{
    struct metrics *m = metrics_new("retry-consumer");
    metrics_describe(m, "attempts_total", "counter", "attempts");
    metrics_describe(m, "in_flight", "gauge", "in flight");
    metrics_set(m, "in_flight", NULL, 2);
    char *text = metrics_render(m);
    cr_assert_not_null(text);
    cr_expect_str_eq(text, "# HELP in_flight in flight\n# TYPE in_flight gauge\n"
                           "in_flight{service=\"retry-consumer\"} 2\n"
                           "# HELP attempts_total attempts\n# TYPE attempts_total counter\n");
    free(text);
    metrics_free(m);
}
