/*
 * The outbox-relay stopped (SIGTERM) while deliveries are still pending: the
 * broker is librdkafka's mock cluster with a round-trip time longer than the
 * relay's flush_timeout, so the batch gives up waiting, and the reports come
 * in afterwards, while the relay shuts down. Those late reports must land in
 * memory the relay still owns. The use-after-free this guards against only
 * shows in the sanitizer build (meson setup build-rasan
 * -Db_sanitize=address,undefined -Db_lundef=false -Dintegration_tests=true):
 * there AddressSanitizer aborts the relay and prints its report to the log,
 * which the test reads.
 *
 * The database is the real local stack's (a fresh one per test); only the
 * broker is the mock.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "child_process.h"
#include "harness.h"
#include "log_file.h"

#include "base/clock.h"

#define ROWS 40
/* Longer than flush_timeout, shorter than flush_timeout twice: the reports
 * arrive after the batch stopped waiting and before the relay's final flush
 * gives up. */
#define BROKER_RTT_MS 4500
#define FLUSH_TIMEOUT "3s"

static struct itest T;
static char stack_bootstrap[256];
static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock_cluster;
static struct child relay;

static void stop(void)
{
    if (relay.pid > 0) {
        kill(relay.pid, SIGKILL);
        child_reap(&relay, CHILD_STOP_WAIT_MS);
    }
    /* Topics are deleted on the broker the harness knows, not the mock. */
    if (stack_bootstrap[0] != '\0')
        snprintf(T.bootstrap, sizeof(T.bootstrap), "%s", stack_bootstrap);
    itest_teardown(&T);
    memset(&T, 0, sizeof(T));
    if (mock_cluster != NULL)
        rd_kafka_mock_cluster_destroy(mock_cluster);
    mock_cluster = NULL;
    if (mock_rk != NULL)
        rd_kafka_destroy(mock_rk);
    mock_rk = NULL;
}

/* The harness's default config with the relay's flush_timeout shortened
 * and no scheduled reconciliation (nothing to reconcile, no gateway). */
static void write_config(void)
{
    static const char from[] = "  flush_timeout: 5s\n";
    const char *at = strstr(itest_default_config, from);
    cr_assert_not_null(at, "the harness's default config has no relay flush_timeout");
    char *tpl = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&tpl, &len);
    cr_assert_not_null(out);
    fprintf(out, "%.*s  flush_timeout: " FLUSH_TIMEOUT "\n%s", (int)(at - itest_default_config),
            itest_default_config, at + strlen(from));
    fputs("reconcile:\n  enabled: false\n", out);
    fclose(out);
    itest_write_config(&T, tpl);
    free(tpl);
}

Test(relay_shutdown, sigterm_with_deliveries_pending, .fini = stop, .timeout = 120)
{
    char errstr[512], log_path[600], topic[200];

    itest_setup(&T, "relay_shutdown");
    snprintf(stack_bootstrap, sizeof(stack_bootstrap), "%s", T.bootstrap);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(mock_rk, "%s", errstr);
    mock_cluster = rd_kafka_mock_cluster_new(mock_rk, 1);
    cr_assert_not_null(mock_cluster, "could not create a mock cluster");
    snprintf(topic, sizeof(topic), "%srelay.slow", T.prefix);
    cr_assert_eq(rd_kafka_mock_topic_create(mock_cluster, topic, 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    snprintf(T.bootstrap, sizeof(T.bootstrap), "%s",
             rd_kafka_mock_cluster_bootstraps(mock_cluster));
    write_config();

    const char *migrate[] = {itest_cancelctl(), "--config", T.config_path, "migrate", NULL};
    struct itest_result r;
    itest_run(&r, 60000, migrate, NULL);
    cr_assert_eq(r.exit_code, 0, "cancelctl migrate: %s", r.err);
    itest_result_free(&r);

    /* Kept after the test, for the sanitizer's report. */
    snprintf(log_path, sizeof(log_path), "%s/meson-logs/relay_shutdown-outbox-relay.log",
             itest_require_env("CR_BUILD_ROOT"));
    unlink(log_path);
    const char *argv[] = {itest_require_env("CR_OUTBOX_RELAY"), "--config", T.config_path, NULL};
    relay.pid = child_spawn(argv, log_path);
    cr_assert(log_file_wait(log_path, "this relay is now active", 1, 20000),
              "the relay did not become active (log: %s)", log_path);
    /* One row first, while the broker is quick: the producer gets its
     * producer id and the topic's metadata, so that the slow answers later
     * are the produce requests' own. */
    const char *params[] = {topic};
    char err[512];
    cr_assert(itest_exec(&T,
                         "INSERT INTO outbox (topic, msg_key, value)"
                         " VALUES ($1, 'warm-up', convert_to('warm-up', 'UTF8'))",
                         1, params, err, sizeof(err)),
              "%s", err);
    cr_assert(itest_wait_query(&T, "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL", 0,
                               NULL, "1", 20000),
              "the warm-up row was not published (log: %s)", log_path);
    cr_assert_eq(rd_kafka_mock_broker_set_rtt(mock_cluster, -1, BROKER_RTT_MS),
                 RD_KAFKA_RESP_ERR_NO_ERROR);

    cr_assert(itest_exec(&T,
                         "INSERT INTO outbox (topic, msg_key, value)"
                         " SELECT $1, 'k' || g, convert_to('row ' || g, 'UTF8')"
                         " FROM generate_series(1, 40) g",
                         1, params, err, sizeof(err)),
              "%s", err);
    /* The relay woke on the NOTIFY and produced; the broker answers in
     * BROKER_RTT_MS. Stop it now, with every delivery pending. */
    itest_sleep_ms(800);
    int64_t stopped_at = mono_ms();
    cr_assert_eq(kill(relay.pid, SIGTERM), 0);
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(relay.pid, &status, WNOHANG)) == 0 && mono_ms() - stopped_at < 30000)
        itest_sleep_ms(50);
    cr_assert_eq(done, relay.pid, "the relay did not stop within 30 s of SIGTERM (log: %s)",
                 log_path);
    relay.pid = 0;
    int64_t took = mono_ms() - stopped_at;
    long long published = itest_query_int(&T,
                                          "SELECT count(*) FROM outbox WHERE published_at IS NOT"
                                          " NULL AND msg_key <> 'warm-up'",
                                          0, NULL);
    fprintf(stderr, "relay_shutdown: stopped %lld ms after SIGTERM, %lld of %d rows marked\n",
            (long long)took, published, ROWS);

    cr_expect_eq(log_file_count(log_path, "AddressSanitizer"), 0,
                 "AddressSanitizer found an error in the relay (log: %s)", log_path);
    cr_expect_eq(log_file_count(log_path, "runtime error:"), 0,
                 "UBSan found an error in the relay (log: %s)", log_path);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the relay did not exit 0 (status 0x%x; log: %s)", status, log_path);
    /* No report had arrived when it stopped: nothing was marked, and every
     * row is left for the next relay. */
    cr_expect_eq(published, 0, "rows were marked published without a delivery report");
}
