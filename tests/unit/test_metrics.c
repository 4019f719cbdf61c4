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
