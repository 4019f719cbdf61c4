/*
 * Monitoring against the real stack, with the five long-running processes
 * (intake-consumer, outbox-relay, retry-consumer and webhook-receiver from
 * the pipeline fixture, alert-consumer beside them):
 * - /readyz is 200 once each has its database and a broker, 503 naming the
 *   database while PostgreSQL is stopped (deploy/local/stack stop pg), 200
 *   again once it is back; /healthz stays 200 throughout (liveness only);
 * - every /metrics passes `promtool check metrics` (lint included);
 * - every metric deploy/prometheus and deploy/grafana name is served by one
 *   of them (tests/deploy/monitoring/check_refs.py on these expositions):
 *   the names come from the running binaries, so a renamed or dropped
 *   metric fails here rather than in a list someone must remember to edit.
 *
 * And the database side of the relay's backlog gauges, on rows planted
 * with no process running.
 *
 * The readiness test skips itself when PostgreSQL is not the one
 * deploy/local/stack runs.
 * Every wait polls with a deadline.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "harness.h"
#include "http_fixture.h"
#include "log_file.h"
#include "local_stack.h"
#include "store/outbox.h"
#include "pipeline_fixture.h"
#include "base/clock.h"
#include "store/reconcile_store.h"

#define NPROC   5
#define ALERTS  3 /* started by this test: its log has no slot number */
#define WEBHOOK 4

static const char *const names[NPROC] = {"intake-consumer", "outbox-relay", "retry-consumer",
                                         "alert-consumer", "webhook-receiver"};
static struct pipeline *P;
static struct itest_proc alerts;
static bool alerts_running, pg_stopped;

static void stop(void)
{
    if (pg_stopped && !local_stack("start", "pg"))
        fprintf(stderr, "monitoring: could not start PostgreSQL again: deploy/local/stack start\n");
    pg_stopped = false;
    if (alerts_running) {
        struct itest_result r;
        kill(alerts.pid, SIGTERM);
        itest_finish(&alerts, 20000, &r);
        itest_result_free(&r);
        alerts_running = false;
    }
    pipeline_stop(P);
    P = NULL;
}

static void log_path(int i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s%s.log", pipeline_log_dir(P), names[i], i == ALERTS ? "" : "-0");
}

/* The metrics port each process logged, waiting for it up to 60 s. */
static void find_ports(unsigned ports[NPROC])
{
    char path[700];
    for (int i = 0; i < NPROC; i++) {
        log_path(i, path, sizeof(path));
        int64_t deadline = mono_ms() + 60000;
        while ((ports[i] = log_file_metrics_port(path)) == 0 && mono_ms() < deadline)
            itest_sleep_ms(100);
        cr_assert_neq(ports[i], 0, "%s logged no metrics address (log: %s)", names[i], path);
    }
}

/* GET path of process i: the status, and the body into *body if wanted. */
static long get(unsigned port, const char *path, char **body)
{
    char url[128];
    char *text = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    long status = http_fixture_call(NULL, "GET", url, NULL, 10000, &text, NULL, 0);
    if (body != NULL)
        *body = text;
    else
        free(text);
    return status;
}

/* Poll /readyz of every process until each answers want (and, for 503, a
 * body that names the database), up to timeout_ms. */
static void wait_readyz(const unsigned ports[NPROC], long want, int timeout_ms)
{
    for (int i = 0; i < NPROC; i++) {
        int64_t deadline = mono_ms() + timeout_ms;
        long status = 0;
        char *body = NULL;
        for (;;) {
            free(body);
            status = get(ports[i], "/readyz", &body);
            bool match = status == want &&
                         (want == 200 ? body != NULL && strcmp(body, "ready\n") == 0
                                      : body != NULL && strstr(body, "database: ") != NULL);
            if (match || mono_ms() > deadline)
                break;
            itest_sleep_ms(200);
        }
        cr_assert_eq(status, want, "%s: /readyz answered %ld, not %ld: %s", names[i], status, want,
                     body != NULL ? body : "(nothing)");
        if (want != 200)
            cr_assert_not_null(strstr(body, "database: "), "%s: /readyz body: %s", names[i], body);
        free(body);
        cr_expect_eq(get(ports[i], "/healthz", NULL), 200, "%s: /healthz is liveness only",
                     names[i]);
    }
}

static const char *promtool(void)
{
    static char path[600];
    const char *state = getenv("CR_STATE_DIR");
    if (state != NULL && state[0] != '\0')
        snprintf(path, sizeof(path), "%s/bin/promtool", state);
    else
        snprintf(path, sizeof(path), "%s/.local/bin/promtool", itest_require_env("CR_SOURCE_ROOT"));
    return path;
}

/* Scrape every /metrics into <test dir>/<name>.prom, check each with
 * promtool, then check the rules' and dashboard's names against them. */
static void check_expositions(const unsigned ports[NPROC])
{
    char files[NPROC][600];
    const char *src = itest_require_env("CR_SOURCE_ROOT");
    for (int i = 0; i < NPROC; i++) {
        char *body = NULL;
        cr_assert_eq(get(ports[i], "/metrics", &body), 200, "%s: GET /metrics", names[i]);
        snprintf(files[i], sizeof(files[i]), "%s/%s.prom", pipeline_itest(P)->dir, names[i]);
        FILE *f = fopen(files[i], "w");
        cr_assert_not_null(f, "cannot write %s", files[i]);
        fputs(body, f);
        fclose(f);
        free(body);

        char cmd[4096];
        snprintf(cmd, sizeof(cmd), "exec '%s' check metrics < '%s'", promtool(), files[i]);
        const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        struct itest_result r;
        itest_run(&r, 60000, argv, NULL);
        cr_expect_eq(r.exit_code, 0,
                     "promtool check metrics on %s's /metrics (%s) exited %d:\n%s%s\n(is promtool "
                     "at %s? deploy/local/install unpacks it)",
                     names[i], files[i], r.exit_code, r.out, r.err, promtool());
        itest_result_free(&r);
    }

    char script[700], rules[700], dashboard[700];
    snprintf(script, sizeof(script), "%s/tests/deploy/monitoring/check_refs.py", src);
    snprintf(rules, sizeof(rules), "%s/deploy/prometheus/cancel-retry.rules.yml", src);
    snprintf(dashboard, sizeof(dashboard), "%s/deploy/grafana/cancel-retry.json", src);
    const char *argv[] = {"/usr/bin/python3", script,   "--root",      src,
                          "--rules",          rules,    "--dashboard", dashboard,
                          "--exposition",     files[0], files[1],      files[2],
                          files[3],           files[4], NULL};
    struct itest_result r;
    itest_run(&r, 60000, argv, NULL);
    cr_expect_eq(r.exit_code, 0,
                 "metrics named by the rules or the dashboard but not served:\n%s%s", r.out, r.err);
    itest_result_free(&r);
}

Test(monitoring, readiness_follows_the_database_and_every_exposition_passes, .fini = stop,
     .timeout = 240)
{
    local_stack_require("pg");
    P = pipeline_start("monitoring", "metrics: { listen: \"127.0.0.1:0\" }\n"
                                     "alerts:\n"
                                     "  slack:\n"
                                     "    enabled: true\n"
                                     /* Never called: no alert is due in this test. */
                                     "    webhook_url: \"http://127.0.0.1:9/unused\"\n"
                                     "webhooks: { listen: \"127.0.0.1:0\" }\n"
                                     "gateways:\n"
                                     "  adyen:\n"
                                     "    webhook_hmac_keys: [\"44782DEF547AAA06C910C43932B1EB0C"
                                     "71FC68D9D0C057550C48EC2ACF6BA056\"]\n");
    char path[700], cmd[2048], url[256];
    pipeline_start_webhook_receiver(P, 0, NULL, url, sizeof(url));
    log_path(ALERTS, path, sizeof(path));
    snprintf(cmd, sizeof(cmd), "exec \"$CR_ALERT_CONSUMER\" --config '%s' >>'%s' 2>&1",
             pipeline_config_path(P), path);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    itest_start(&alerts, argv, NULL);
    alerts_running = true;

    unsigned ports[NPROC];
    find_ports(ports);
    wait_readyz(ports, 200, 90000);
    check_expositions(ports);

    /* A request that ends is counted by its gateway and final status. */
    pipeline_payment(P, "toss", "tpay_mon_1", 1000, "KRW", 0);
    pipeline_publish(P, "r-mon-1", "toss", "tpay_mon_1", 1000, "KRW", false);
    cr_assert_str_eq(pipeline_wait_final(P, "r-mon-1", 60000), "SUCCEEDED");
    char *text = NULL;
    cr_assert_eq(get(ports[PIPELINE_RETRY], "/metrics", &text), 200);
    cr_expect_not_null(strstr(text,
                              "cancel_retry_requests_finished_total{service=\"retry-consumer\","
                              "gateway=\"toss\",status=\"SUCCEEDED\"} 1\n"),
                       "%s", text);
    free(text);

    cr_assert(local_stack("stop", "pg"), "could not stop PostgreSQL");
    pg_stopped = true;
    wait_readyz(ports, 503, 60000);
    cr_assert(local_stack("start", "pg"), "could not start PostgreSQL again");
    pg_stopped = false;
    wait_readyz(ports, 200, 90000);
    for (int k = PIPELINE_INTAKE; k <= PIPELINE_RETRY; k++)
        cr_expect(pipeline_running(P, (enum pipeline_proc)k, 0), "%s exited", names[k]);
}

/* ---- the gauges the relay reads from the database ---- */

static void exec_or_fail(struct itest *t, const char *sql)
{
    char err[512];
    cr_assert(itest_exec(t, sql, 0, NULL, err, sizeof(err)), "%s: %s", sql, err);
}

/* outbox_backlog and reconcile_store_open_count, which the active relay
 * serves as cancel_retry_outbox_due_rows, _oldest_due_seconds and
 * cancel_retry_reconcile_open_mismatches: due unpublished rows only, and
 * open mismatches only. */
Test(monitoring, backlog_gauges_count_what_is_due_and_open, .timeout = 60)
{
    struct itest t;
    char err[512];
    itest_setup(&t, "monitoring-backlog");
    const char *argv[] = {itest_cancelctl(), "--config", t.config_path, "migrate", NULL};
    struct itest_result r;
    itest_run(&r, 60000, argv, NULL);
    cr_assert_eq(r.exit_code, 0, "cancelctl migrate: %s", r.err);
    itest_result_free(&r);

    struct config_database cfg = {.dsn = t.dsn};
    struct db *db = db_new(&cfg, "test-monitoring");
    cr_assert(db_connect_once(db, err, sizeof(err)), "%s", err);
    int64_t due = -1, age_ms = -1, open = -1;
    cr_assert(outbox_backlog(db, &due, &age_ms, err, sizeof(err)), "%s", err);
    cr_expect_eq(due, 0);
    cr_expect_eq(age_ms, 0, "no due row: no age");

    /* Due 90 s and 10 s ago; not due yet; published; parked. */
    exec_or_fail(&t, "INSERT INTO outbox (topic, value, available_at) VALUES"
                     " ('t', 'a', now() - interval '90 seconds'),"
                     " ('t', 'b', now() - interval '10 seconds'),"
                     " ('t', 'c', now() + interval '1 hour')");
    exec_or_fail(&t, "INSERT INTO outbox (topic, value, available_at, published_at) VALUES"
                     " ('t', 'd', now() - interval '1 day', now())");
    exec_or_fail(&t, "INSERT INTO outbox (topic, value, available_at, parked_at, park_reason)"
                     " VALUES ('t', 'e', now() - interval '1 day', now(), 'test')");
    cr_assert(outbox_backlog(db, &due, &age_ms, err, sizeof(err)), "%s", err);
    cr_expect_eq(due, 2);
    cr_expect(age_ms >= 90000 && age_ms < 150000, "oldest due row waited %lld ms, not ~90 s",
              (long long)age_ms);

    cr_assert(reconcile_store_open_count(db, &open, err, sizeof(err)), "%s", err);
    cr_expect_eq(open, 0);
    exec_or_fail(
        &t, "INSERT INTO cancel_request (request_id, gateway, payment_key, amount,"
            " currency, reason, source_event_id, source_event, max_attempts,"
            " deadline_at, next_attempt_at, status, finished_at) VALUES ('r-1', 'toss', 'p-1', 100,"
            " 'KRW', 'test', 'e-1', '\\x7b7d'::bytea, 3, now(), now(), 'SUCCEEDED', now())");
    exec_or_fail(&t, "INSERT INTO reconcile_mismatch (request_id, gateway, kind, our_status,"
                     " their_finding, amount, currency, detail, fixed_at, fixed_by) VALUES"
                     " ('r-1', 'toss', 'OURS_REFUNDED_THEIRS_NOT', 'SUCCEEDED', 'NOT_REFUNDED',"
                     "  100, 'KRW', 'open', NULL, NULL),"
                     " ('r-1', 'toss', 'AMOUNT_DIFFERS', 'SUCCEEDED', 'MISMATCH',"
                     "  100, 'KRW', 'fixed', now(), 'someone')");
    cr_assert(reconcile_store_open_count(db, &open, err, sizeof(err)), "%s", err);
    cr_expect_eq(open, 1, "only the open mismatch counts");
    db_free(db);
    itest_teardown(&t);
}
