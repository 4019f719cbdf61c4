/*
 * Resilience of the retry pipeline against the real stack
 * (pipeline_fixture.h): a retry-consumer killed mid-attempt, the outbox-relay
 * killed mid-batch, PostgreSQL stopped, Kafka stopped. In every case every
 * request must end, none twice refunded, and no process may exit by itself.
 *
 * The outage tests stop and start the local stack's services with
 * deploy/local/stack (stop pg|kafka, start pg|kafka); they skip themselves
 * when the stack under test is not that script's (CR_TEST_PG_DSN or
 * CR_TEST_KAFKA_BOOTSTRAP point elsewhere) or when the broker is the
 * in-memory mock (a restart would lose every topic).
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "child_process.h"
#include "local_stack.h"
#include "base/clock.h"
#include "event/cloudevent.h"
#include "pipeline_fixture.h"

#define FINAL_STATUSES                                                                             \
    "('SUCCEEDED', 'ALREADY_REFUNDED', 'FAILED', 'EXHAUSTED', 'MANUALLY_RESOLVED')"

/* The breaker is not under test here: a burst of injected failures would
 * open it and postpone every request by open_for (30 s). */
#define NO_BREAKER                                                                                 \
    "gateways:\n"                                                                                  \
    "  toss: { breaker: { enabled: false } }\n"                                                    \
    "  stripe: { breaker: { enabled: false } }\n"

static struct pipeline *P;
/* A service this test stopped and has not started again. */
static const char *stopped_service;

static void stop(void)
{
    if (stopped_service != NULL) {
        const char *s = stopped_service;
        stopped_service = NULL;
        if (!local_stack("start", s))
            fprintf(stderr,
                    "resilience: could not start %s again: the stack needs "
                    "deploy/local/stack start\n",
                    s);
    }
    pipeline_stop(P);
    P = NULL;
}

/* ---- requests ---- */

static void request_id_of(char *buf, size_t len, const char *tag, int i)
{
    snprintf(buf, len, "%s-%04d", tag, i);
}

static void payment_key_of(char *buf, size_t len, const char *tag, int i)
{
    snprintf(buf, len, "tpay_%s_%04d", tag, i);
}

static void resilience_event(int i, struct cancel_failed_event *ev, char *rid, char *pk, void *arg)
{
    const char *tag = arg;
    request_id_of(rid, PIPELINE_ID_MAX, tag, i);
    payment_key_of(pk, PIPELINE_ID_MAX, tag, i);
    ev->request_id = rid;
    ev->payment_key = pk;
    ev->gateway = "toss";
    ev->amount = 1000 + i;
    ev->currency = "KRW";
}

/* Register payments and publish CancelFailed events for requests 0..n-1 of
 * tag (Toss, KRW, amount 1000 + i) through one producer. */
static void publish_many(struct pipeline *p, const char *tag, int n)
{
    for (int i = 0; i < n; i++) {
        char pk[PIPELINE_ID_MAX];
        payment_key_of(pk, sizeof(pk), tag, i);
        pipeline_payment(p, "toss", pk, 1000 + i, "KRW", 0);
    }
    pipeline_publish_many(p, n, resilience_event, (void *)tag);
}

static void add_fault(struct pipeline *p, const char *tag, int i, const char *type, int delay_ms)
{
    char pk[64], json[256];
    payment_key_of(pk, sizeof(pk), tag, i);
    snprintf(json, sizeof(json),
             "{\"paymentKey\":\"%s\",\"type\":\"%s\",\"times\":1,\"delayMs\":%d}", pk, type,
             delay_ms);
    pipeline_sim_fault(p, json);
}

static long long query_int(struct pipeline *p, const char *sql)
{
    return itest_query_int(pipeline_itest(p), sql, 0, NULL);
}

static long long count_final(struct pipeline *p)
{
    return query_int(p, "SELECT count(*) FROM cancel_request WHERE status IN " FINAL_STATUSES);
}

/* Wait until n requests are final; fail with the status counts if not. */
static void wait_all_final(struct pipeline *p, int n, int timeout_ms, const char *what)
{
    int64_t t0 = mono_ms(), deadline = t0 + timeout_ms;
    long long done;
    while ((done = count_final(p)) < n && mono_ms() < deadline)
        itest_sleep_ms(200);
    char *summary = itest_query_value(pipeline_itest(p),
                                      "SELECT coalesce(string_agg(status || '=' || n, ', '),"
                                      " 'no rows') FROM (SELECT status, count(*) AS n FROM"
                                      " cancel_request GROUP BY status ORDER BY status) s",
                                      0, NULL);
    fprintf(stderr, "resilience: %s: %lld of %d final %lld ms later (%s)\n", what, done, n,
            (long long)(mono_ms() - t0), summary);
    cr_assert_eq(done, n, "%s: only %lld of %d requests final within %d s: %s (logs: %s)", what,
                 done, n, timeout_ms / 1000, summary, pipeline_log_dir(p));
    free(summary);
}

/* Every request succeeded and every payment was refunded exactly once. */
static void assert_refunded_once(struct pipeline *p, const char *tag, int n)
{
    cr_expect_eq(query_int(p, "SELECT count(*) FROM cancel_request WHERE status <> 'SUCCEEDED'"), 0,
                 "every request should have succeeded (logs: %s)", pipeline_log_dir(p));
    for (int i = 0; i < n; i++) {
        char pk[64];
        payment_key_of(pk, sizeof(pk), tag, i);
        long long refunds = pipeline_refunds(p, pk);
        cr_expect_eq(refunds, 1, "payment %s was refunded %lld times (logs: %s)", pk, refunds,
                     pipeline_log_dir(p));
    }
}

/* ---- processes ---- */

static void assert_all_running(struct pipeline *p, const char *when)
{
    static const char *const names[] = {"intake-consumer", "outbox-relay", "retry-consumer"};
    for (int k = PIPELINE_INTAKE; k <= PIPELINE_RETRY; k++)
        cr_assert(pipeline_running(p, (enum pipeline_proc)k, 0), "%s-0 exited %s (log: %s)",
                  names[k], when, pipeline_log_dir(p));
}

/* ---- tests ---- */

/* kill -9 of a retry-consumer while its gateway calls hang: the reconciler
 * marks those attempts ABANDONED when the lease expires, the restarted
 * process retries them with the same Idempotency-Key, and a refund the
 * gateway had already made comes back as a replay, not a second refund. */
Test(resilience, retry_consumer_killed_mid_attempt, .fini = stop, .timeout = 120)
{
    enum { N = 16 };
    /* session.timeout.ms: the killed process stays a member of the group
     * until its session expires (librdkafka's default: 45 s), and the group
     * does not settle before that, so the restarted process would wait that
     * long for its partitions. 6 s is the broker's minimum. */
    P = pipeline_start("retry_consumer_killed_mid_attempt",
                       /* One gateways: map (the loader refuses a duplicate key; before
                        * it did, the second map silently replaced NO_BREAKER's). */
                       "kafka: { session.timeout.ms: 6000 }\n"
                       "consumers:\n"
                       "  retry: { lease: 5s, max_in_flight: 32 }\n"
                       "retry:\n"
                       "  max_attempts: 10\n"
                       "gateways:\n"
                       "  toss: { timeout: 4s, breaker: { enabled: false } }\n"
                       "  stripe: { timeout: 4s, breaker: { enabled: false } }\n");
    /* Even requests: the refund is made, then the answer hangs 8 s; odd
     * ones: the call hangs 8 s and nothing is made. */
    for (int i = 0; i < N; i++)
        add_fault(P, "kill", i, i % 2 == 0 ? "apply_then_hang" : "hang", 8000);
    publish_many(P, "kill", N);

    /* Every call has reached the gateway and hangs there. */
    int64_t deadline = mono_ms() + 30000;
    long long calls = 0;
    while (mono_ms() < deadline) {
        char *body = pipeline_sim_get(P, "/_sim/ledger");
        json_t *j = json_loads(body, 0, NULL);
        free(body);
        calls = json_integer_value(json_object_get(j, "calls"));
        json_decref(j);
        if (calls >= N)
            break;
        itest_sleep_ms(50);
    }
    cr_assert_eq(calls, N, "only %lld of %d gateway calls started (logs: %s)", calls, N,
                 pipeline_log_dir(P));
    cr_assert_eq(query_int(P, "SELECT count(*) FROM cancel_request WHERE status = 'IN_FLIGHT'"
                              " AND attempts = 1"),
                 N);
    char *victim = itest_query_value(pipeline_itest(P),
                                     "SELECT min(lease_owner) FROM cancel_request", 0, NULL);

    pipeline_kill(P, PIPELINE_RETRY, 0, SIGKILL);
    pipeline_start_process(P, PIPELINE_RETRY, 0);
    wait_all_final(P, N, 60000, "after kill -9 of the retry-consumer");
    assert_refunded_once(P, "kill", N);

    /* The attempts in flight at the kill were abandoned by the reconciler,
     * in the name of the killed worker, and none of them has an answer. */
    const char *params[] = {victim};
    struct itest *t = pipeline_itest(P);
    cr_expect_eq(itest_query_int(t,
                                 "SELECT count(*) FROM retry_attempt_log WHERE event = 'ABANDONED'"
                                 " AND attempt = 1 AND worker = $1",
                                 1, params),
                 N, "ABANDONED facts of the killed worker %s (logs: %s)", victim,
                 pipeline_log_dir(P));
    cr_expect_eq(itest_query_int(t,
                                 "SELECT count(*) FROM retry_attempt_log WHERE event = 'ANSWERED'"
                                 " AND attempt = 1",
                                 0, NULL),
                 0, "an attempt of the killed worker has an answer");
    cr_expect_eq(itest_query_int(t,
                                 "SELECT count(*) FROM retry_attempt_log WHERE event = 'STARTED'"
                                 " AND attempt > 1 AND worker = $1",
                                 1, params),
                 0, "the killed worker started later attempts");
    char said[300];
    snprintf(said, sizeof(said), "abandoned: lease of %s expired", victim);
    cr_expect_eq(pipeline_log_count(P, "outbox-relay-0.log", said), N,
                 "the reconciler should name the killed worker: \"%s\" (logs: %s)", said,
                 pipeline_log_dir(P));
    free(victim);

    /* Each later attempt used the request's own key; where the first call
     * had refunded, the success came back as a replay. */
    for (int i = 0; i < N; i++) {
        char pk[64], rid[64], path[128];
        payment_key_of(pk, sizeof(pk), "kill", i);
        request_id_of(rid, sizeof(rid), "kill", i);
        snprintf(path, sizeof(path), "/_sim/calls?paymentKey=%s", pk);
        char *body = pipeline_sim_get(P, path);
        json_t *j = json_loads(body, 0, NULL);
        json_t *list = json_is_array(j) ? j : json_object_get(j, "calls");
        cr_assert(json_is_array(list), "/_sim/calls: not a list: %s", body);
        free(body);
        size_t k, ncalls = json_array_size(list), replays = 0;
        json_t *c;
        cr_expect_geq(ncalls, 2, "%s: %zu gateway calls", rid, ncalls);
        json_array_foreach(list, k, c)
        {
            cr_expect_str_eq(json_string_value(json_object_get(c, "idempotencyKey")), rid,
                             "%s: call %zu used another key", rid, k);
            replays += json_is_true(json_object_get(c, "replayed")) &&
                       json_integer_value(json_object_get(c, "status")) == 200;
        }
        const char *first_fault =
            json_string_value(json_object_get(json_array_get(list, 0), "fault"));
        cr_expect_str_eq(first_fault != NULL ? first_fault : "(none)",
                         i % 2 == 0 ? "apply_then_hang" : "hang");
        if (i % 2 == 0)
            cr_expect_eq(replays, 1, "%s: the refund made before the kill was not replayed", rid);
        else
            cr_expect_eq(replays, 0, "%s: nothing was refunded before the kill", rid);
        json_decref(j);
    }
}

/* kill -9 of the active outbox-relay while rows are pending: its database
 * session ends with it, so the standby relay takes over within seconds
 * (not after the lease), every row ends published (some twice on the
 * topic), and no effect is doubled. */
Test(resilience, relay_killed_mid_batch, .fini = stop, .timeout = 120)
{
    enum { N = 300 };
    /* Small batches: the kill lands between or inside batches, not after
     * the last one. A lease longer than the hold below: the standby must not
     * take over a relay that is only stopped for a while (test_relay_failover
     * covers a freeze that outlasts the lease). */
    P = pipeline_start("relay_killed_mid_batch",
                       NO_BREAKER "relay: { batch_size: 10, leader_lease: 2m }\n");
    pipeline_start_process(P, PIPELINE_RELAY, 1);
    /* Whichever of the two got the lease first is the active one. */
    int active = -1;
    for (int64_t until = mono_ms() + 20000; active < 0 && mono_ms() < until; itest_sleep_ms(50)) {
        if (pipeline_log_count(P, "outbox-relay-0.log", "this relay is now active") > 0)
            active = 0;
        else if (pipeline_log_count(P, "outbox-relay-1.log", "this relay is now active") > 0)
            active = 1;
    }
    cr_assert(active >= 0, "no relay became active (logs: %s)", pipeline_log_dir(P));
    int standby = 1 - active;
    char standby_log[64];
    snprintf(standby_log, sizeof(standby_log), "outbox-relay-%d.log", standby);

    /* Hold the active relay (it keeps its lease) while the rows pile up. */
    pipeline_kill(P, PIPELINE_RELAY, active, SIGSTOP);
    publish_many(P, "relay", N);
    cr_assert(pipeline_wait_query(P,
                                  "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                                  " AND event_type = 'payments.cancel.retry.scheduled.v1'",
                                  0, NULL, "300", 60000),
              "the intake did not schedule %d requests (logs: %s)", N, pipeline_log_dir(P));
    cr_expect_eq(pipeline_log_count(P, standby_log, "this relay is now active"), 0,
                 "the standby took over from a live relay");

    pipeline_kill(P, PIPELINE_RELAY, active, SIGCONT);
    int64_t deadline = mono_ms() + 20000;
    while (query_int(P, "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == 0 &&
           mono_ms() < deadline)
        itest_sleep_ms(5);
    pipeline_kill(P, PIPELINE_RELAY, active, SIGKILL);
    int64_t killed_at = mono_ms();
    long long published =
        query_int(P, "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL");
    long long pending = query_int(P, "SELECT count(*) FROM outbox WHERE published_at IS NULL");
    fprintf(stderr, "resilience: relay killed with %lld rows published, %lld pending\n", published,
            pending);
    cr_assert(published > 0 && pending > 0,
              "the kill should land mid-way: %lld published, %lld pending", published, pending);

    cr_assert(pipeline_log_wait(P, standby_log, "this relay is now active", 1, 15000),
              "the standby relay did not take over within 15 s (logs: %s)", pipeline_log_dir(P));
    fprintf(stderr, "resilience: the standby relay took over %lld ms after the kill\n",
            (long long)(mono_ms() - killed_at));
    pipeline_start_process(P, PIPELINE_RELAY, active);

    wait_all_final(P, N, 90000, "after kill -9 of the relay");
    assert_refunded_once(P, "relay", N);
    cr_assert(pipeline_wait_query(P, "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0,
                                  NULL, "0", 30000),
              "outbox rows left unpublished (logs: %s)", pipeline_log_dir(P));
    cr_expect_eq(query_int(P, "SELECT count(*) FROM retry_attempt_log WHERE event = 'STARTED'"), N,
                 "one attempt per request: a duplicated trigger must not start another");

    struct pipeline_msg *msgs = NULL;
    size_t n = pipeline_read_topic(P, "retry", 0, 20000, &msgs);
    fprintf(stderr, "resilience: %zu RetryScheduled messages on the topic for %d rows\n", n, N);
    cr_expect_geq(n, (size_t)N);
    pipeline_msgs_free(msgs, n);
}

/* PostgreSQL stopped for ~10 s while requests are in flight: every process
 * pauses and resumes by itself, and every request ends once. */
Test(resilience, database_outage, .fini = stop, .timeout = 150)
{
    enum { N = 80 };
    local_stack_require("pg");
    P = pipeline_start("database_outage", NO_BREAKER "retry: { max_attempts: 8 }\n");
    cr_assert_eq(
        pipeline_sim_call(P, "PUT", "/_sim/latency", "{\"minMs\":100,\"maxMs\":300}", NULL), 200);
    for (int i = 0; i < N; i += 4)
        add_fault(P, "pgdown", i, "error_5xx", 0);
    publish_many(P, "pgdown", N);
    int64_t deadline = mono_ms() + 30000;
    while (count_final(P) < 10 && mono_ms() < deadline)
        itest_sleep_ms(20);

    stopped_service = "pg";
    cr_assert(local_stack("stop", "pg"), "could not stop PostgreSQL");
    int64_t down_at = mono_ms();
    fprintf(stderr, "resilience: PostgreSQL stopped\n");
    while (mono_ms() - down_at < 10000) {
        assert_all_running(P, "while PostgreSQL was down");
        itest_sleep_ms(500);
    }
    cr_assert(local_stack("start", "pg"), "could not start PostgreSQL again");
    stopped_service = NULL;
    fprintf(stderr, "resilience: PostgreSQL started again after %lld ms\n",
            (long long)(mono_ms() - down_at));
    PQreset(itest_pg(pipeline_itest(P)));

    wait_all_final(P, N, 90000, "after the database outage");
    assert_all_running(P, "after the database outage");
    assert_refunded_once(P, "pgdown", N);
    cr_assert(pipeline_wait_query(P, "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0,
                                  NULL, "0", 30000),
              "outbox rows left unpublished (logs: %s)", pipeline_log_dir(P));

    /* They paused, said so, and came back, without restarting. */
    cr_expect_gt(
        pipeline_log_count(P, "retry-consumer-0.log", "pausing until the database is back"), 0,
        "the retry-consumer did not log its pause (logs: %s)", pipeline_log_dir(P));
    cr_expect_gt(pipeline_log_count(P, "retry-consumer-0.log", "database available again"), 0);
    cr_expect_gt(pipeline_log_count(P, "outbox-relay-0.log", "connected to the database again"), 0,
                 "the relay did not log its reconnect (logs: %s)", pipeline_log_dir(P));
    static const char *const files[] = {"intake-consumer-0.log", "outbox-relay-0.log",
                                        "retry-consumer-0.log"};
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(pipeline_log_count(P, files[i], "started"), 1, "%s: started more than once",
                     files[i]);
}

/* Kafka stopped while retries are due: the relay cannot publish and the
 * consumers cannot read; after the restart everything resumes by itself. A
 * fatal idempotent-producer error (librdkafka 2.0.2 after a broker restart)
 * must make the relay recreate its producer. */
Test(resilience, broker_outage, .fini = stop, .timeout = 180)
{
    enum { N = 60 };
    local_stack_require("kafka");
    /* Attempt 1 of every request fails; attempt 2 is due 5 s later, while
     * the broker is down. The wait counts attempts that ended, whatever came
     * next: on a busy machine the first requests may be past attempt 2
     * before the last one's attempt 1 ends. */
    P = pipeline_start("broker_outage", NO_BREAKER
                       "retry: { max_attempts: 8, initial_delay: 5s, max_delay: 10s }\n");
    for (int i = 0; i < N; i++)
        add_fault(P, "kafkadown", i, "error_5xx", 0);
    publish_many(P, "kafkadown", N);
    cr_assert(pipeline_wait_query(P,
                                  "SELECT count(*) FROM cancel_request WHERE attempts >= 1"
                                  " AND status <> 'IN_FLIGHT'",
                                  0, NULL, "60", 60000),
              "attempt 1 of every request did not end (logs: %s)", pipeline_log_dir(P));

    stopped_service = "kafka";
    int64_t down_at = mono_ms();
    cr_assert(local_stack("stop", "kafka"), "could not stop Kafka");
    fprintf(stderr, "resilience: Kafka stopped in %lld ms\n", (long long)(mono_ms() - down_at));
    while (mono_ms() - down_at < 6000) {
        assert_all_running(P, "while Kafka was down");
        itest_sleep_ms(500);
    }
    long long due = query_int(P, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                                 " AND available_at <= now()");
    fprintf(stderr, "resilience: %lld outbox rows due while Kafka is down\n", due);
    cr_expect_gt(due, 0, "no event was pending during the outage");
    cr_assert(local_stack("start", "kafka"), "could not start Kafka again");
    stopped_service = NULL;
    fprintf(stderr, "resilience: Kafka started again after %lld ms\n",
            (long long)(mono_ms() - down_at));

    wait_all_final(P, N, 120000, "after the broker outage");
    assert_all_running(P, "after the broker outage");
    assert_refunded_once(P, "kafkadown", N);
    cr_assert(pipeline_wait_query(P, "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0,
                                  NULL, "0", 30000),
              "outbox rows left unpublished (logs: %s)", pipeline_log_dir(P));
    int recreated = pipeline_log_count(P, "outbox-relay-0.log", "recreating it");
    fprintf(stderr, "resilience: the relay recreated its producer %d time%s\n", recreated,
            recreated == 1 ? "" : "s");
}

/* ---- the relay's fatal-error path, on librdkafka's mock cluster ---- */

/* The Kafka protocol's ApiKey of Produce (rdkafka_protocol.h, not a public
 * header). */
#define KAFKA_API_PRODUCE 0

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock_cluster;
static struct child mock_relay;

static void stop_mock(void)
{
    child_stop(&mock_relay, "outbox-relay on the mock cluster");
    stop();
    if (mock_cluster != NULL) {
        rd_kafka_mock_cluster_destroy(mock_cluster);
        mock_cluster = NULL;
    }
    if (mock_rk != NULL) {
        rd_kafka_destroy(mock_rk);
        mock_rk = NULL;
    }
}

/* The relay's producer hits a fatal error (librdkafka raises one for an
 * idempotent producer whose head-of-line ProduceRequest fails with
 * OUT_OF_ORDER_SEQUENCE_NUMBER, the "sequence desynchronization" that 2.0.2
 * can hit after a broker restart): the relay must recreate its producer and
 * publish every row. The broker restart does not raise it on demand, so the
 * relay here talks to librdkafka's mock cluster, which injects the error;
 * the rest of the pipeline stays on the real stack. */
Test(resilience, relay_recreates_producer_after_fatal_error, .fini = stop_mock, .timeout = 120)
{
    enum { N = 50 };
    char errstr[512];
    P = pipeline_start("relay_fatal_producer", NO_BREAKER);
    pipeline_kill(P, PIPELINE_RELAY, 0, SIGTERM);
    struct itest *t = pipeline_itest(P);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(mock_rk, "%s", errstr);
    rd_kafka_mock_cluster_t *mc = mock_cluster = rd_kafka_mock_cluster_new(mock_rk, 1);
    cr_assert_not_null(mc, "could not create a mock cluster");
    static const char *const topics[] = {"payments.cancel.failed", "payments.cancel.retry",
                                         "payments.cancel.outcome", "payments.cancel.dlq"};
    for (size_t i = 0; i < 4; i++) {
        char name[256];
        snprintf(name, sizeof(name), "%s%s", t->prefix, topics[i]);
        cr_assert_eq(rd_kafka_mock_topic_create(mc, name, 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    rd_kafka_mock_push_request_errors(mc, KAFKA_API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);

    /* The pipeline's config with the mock cluster as the broker. */
    char bootstrap[300], mock_config[700], log_path[700];
    snprintf(bootstrap, sizeof(bootstrap), "  bootstrap.servers: \"%s\"\n",
             rd_kafka_mock_cluster_bootstraps(mc));
    pipeline_config_variant(P, "relay-mock.yaml", "  bootstrap.servers:", bootstrap, mock_config,
                            sizeof(mock_config));
    pipeline_log_path(P, "outbox-relay-mock.log", log_path, sizeof(log_path));
    /* The intake (real Kafka) writes the rows first, so that the relay's
     * first batch holds them all when the error hits; then the relay
     * publishes them to the mock cluster. */
    publish_many(P, "fatal", N);
    cr_assert(pipeline_wait_query(P, "SELECT count(*) FROM outbox WHERE available_at <= now()", 0,
                                  NULL, "50", 30000),
              "the intake did not write %d rows (logs: %s)", N, pipeline_log_dir(P));
    const char *relay_argv[] = {itest_require_env("CR_OUTBOX_RELAY"), "--config", mock_config,
                                NULL};
    mock_relay.pid = child_spawn(relay_argv, log_path);
    bool published = pipeline_wait_query(
        P, "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0, NULL, "0", 60000);
    int fatal = pipeline_log_count(P, "outbox-relay-mock.log", "fatal error, recreating it");
    fprintf(stderr, "resilience: relay on the mock cluster: %d fatal error%s, rows %s\n", fatal,
            fatal == 1 ? "" : "s", published ? "all published" : "NOT all published");
    cr_expect_eq(fatal, 1, "the relay did not report recreating its producer (log: %s)", log_path);
    cr_assert(published, "outbox rows left unpublished after the fatal error (log: %s)", log_path);
    cr_expect(child_running(&mock_relay), "the relay exited (log: %s)", log_path);
}
