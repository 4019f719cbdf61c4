/*
 * The operator's commands on the real stack (issue 5): status, show, dlq
 * list, dlq replay, requeue, resolve. Each test starts its own pipeline
 * (pipeline_fixture.h: fresh database and topics, gateway-sim,
 * intake-consumer, outbox-relay, retry-consumer; max_attempts 4, delays
 * 300ms..2s) and drives cancelctl as an operator would.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "event/dlq.h"
#include "pipeline_fixture.h"
#include "base/timeutil.h"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

static long long q_int(const char *sql, const char *param)
{
    const char *params[] = {param};
    return itest_query_int(pipeline_itest(P), sql, param ? 1 : 0, params);
}

static char *q_str(const char *sql, const char *param)
{
    const char *params[] = {param};
    return itest_query_value(pipeline_itest(P), sql, param ? 1 : 0, params);
}

static void wait_status(const char *request_id, const char *want)
{
    const char *st = pipeline_wait_final(P, request_id, PIPELINE_FINAL_TIMEOUT_MS);
    cr_assert_not_null(st, "%s did not end within %d s (logs: %s)", request_id,
                       PIPELINE_FINAL_TIMEOUT_MS / 1000, pipeline_log_dir(P));
    cr_assert_str_eq(st, want, "%s ended %s (logs: %s)", request_id, st, pipeline_log_dir(P));
}

/* Messages in the topic of role now (read to the end of every partition). */
static size_t topic_count(const char *role)
{
    struct pipeline_msg *m = NULL;
    size_t n = pipeline_read_topic(P, role, 0, PIPELINE_READ_TIMEOUT_MS, &m);
    pipeline_msgs_free(m, n);
    return n;
}

static void wait_dlq(size_t want)
{
    struct pipeline_msg *m = NULL;
    size_t n = pipeline_read_topic(P, "dlq", want, PIPELINE_READ_TIMEOUT_MS, &m);
    pipeline_msgs_free(m, n);
    cr_assert_geq(n, want, "want %zu dead letters, the DLQ has %zu (logs: %s)", want, n,
                  pipeline_log_dir(P));
}

static void wait_outbox_drained(void)
{
    cr_assert(pipeline_wait_query(P, "SELECT count(*)::text FROM outbox WHERE published_at IS NULL",
                                  0, NULL, "0", 30000),
              "the relay did not publish the outbox (logs: %s)", pipeline_log_dir(P));
}

/* Everything a dry run must not change: every table's rows and every
 * topic's message count. Caller frees. */
static char *snapshot(void)
{
    char *db = q_str("SELECT md5(concat_ws('|',"
                     " (SELECT string_agg(t::text, ',' ORDER BY request_id) FROM cancel_request t),"
                     " (SELECT string_agg(t::text, ',' ORDER BY id) FROM retry_attempt_log t),"
                     " (SELECT string_agg(t::text, ',' ORDER BY id) FROM outbox t),"
                     " (SELECT string_agg(t::text, ',' ORDER BY id) FROM dlq_replay t),"
                     " (SELECT string_agg(t::text, ',' ORDER BY id) FROM operator_action t)))",
                     NULL);
    char *s = NULL;
    cr_assert(asprintf(&s, "db %s, failed %zu, retry %zu, outcome %zu, dlq %zu", db,
                       topic_count("cancel_failed"), topic_count("retry"), topic_count("outcome"),
                       topic_count("dlq")) > 0);
    free(db);
    return s;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

static long long jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* The gateway refuses every refund of payment_key until the faults are
 * cleared. */
static void gateway_down(const char *payment_key)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"paymentKey\":\"%s\",\"type\":\"error_5xx\",\"times\":0}",
             payment_key);
    pipeline_sim_fault(P, body);
}

static void gateway_up(void)
{
    cr_assert_eq(pipeline_sim_call(P, "DELETE", "/_sim/faults", NULL, NULL), 200);
}

Test(ops, exhausted_request_replayed_after_recovery_refunds_once, .fini = stop, .timeout = 280)
{
    P = pipeline_start("ops-replay-exhausted", NULL);
    pipeline_payment(P, "toss", "pk_ex", 15000, "KRW", 0);
    gateway_down("pk_ex");
    pipeline_publish(P, "r-ex", "toss", "pk_ex", 15000, "KRW", false);
    wait_status("r-ex", "EXHAUSTED");
    wait_dlq(1);
    wait_outbox_drained();
    cr_expect_eq(pipeline_refunds(P, "pk_ex"), 0);

    /* dlq list shows it, with the gateway read from the original event. */
    json_t *doc =
        pipeline_cancelctl_json(P, 0, (const char *const[]){"--json", "dlq", "list", NULL});
    cr_assert_eq(jint(doc, "matched"), 1, "list: %s", json_dumps(doc, 0));
    json_t *dl = json_array_get(json_object_get(doc, "deadLetters"), 0);
    cr_expect_str_eq(jstr(dl, "reason"), "EXHAUSTED");
    cr_expect_str_eq(jstr(dl, "requestId"), "r-ex");
    cr_expect_str_eq(jstr(dl, "gateway"), "toss");
    cr_expect_eq(jint(dl, "attempts"), 4);
    json_decref(doc);

    /* A dry run says what would happen and changes nothing at all. */
    char *before = snapshot();
    doc = pipeline_cancelctl_json(
        P, 0, (const char *const[]){"--json", "dlq", "replay", "--dry-run", NULL});
    json_t *res = json_array_get(json_object_get(doc, "results"), 0);
    cr_expect_str_eq(jstr(res, "action"), "REARM", "%s", json_dumps(doc, 0));
    cr_expect_eq(jint(res, "attempt"), 5);
    cr_expect(json_is_false(json_object_get(res, "done")));
    cr_expect_not_null(strstr(jstr(res, "why"), "up to 4 new attempts"), "%s", jstr(res, "why"));
    json_decref(doc);
    char *after = snapshot();
    cr_expect_str_eq(after, before, "the dry run changed something");
    free(after);

    /* Without --yes and without a terminal: refused, nothing done. */
    struct itest_result r;
    pipeline_cancelctl(P, &r,
                       (const char *const[]){"dlq", "replay", "--reason", "EXHAUSTED", NULL});
    cr_expect_eq(r.exit_code, 2, "exit %d: %s", r.exit_code, r.err);
    cr_expect_not_null(strstr(r.err, "--yes"), "%s", r.err);
    itest_result_free(&r);
    after = snapshot();
    cr_expect_str_eq(after, before, "a refused replay changed something");
    free(after);
    free(before);

    /* The gateway recovers; the replay re-arms the request: one refund. */
    gateway_up();
    doc = pipeline_cancelctl_json(P, 0,
                                  (const char *const[]){"--json", "dlq", "replay", "--reason",
                                                        "EXHAUSTED", "--gateway", "toss", "--yes",
                                                        "--operator", "alice", NULL});
    res = json_array_get(json_object_get(doc, "results"), 0);
    cr_expect_str_eq(jstr(res, "action"), "REARM", "%s", json_dumps(doc, 0));
    cr_expect(json_is_true(json_object_get(res, "done")));
    json_decref(doc);
    wait_status("r-ex", "SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_ex"), 1);
    cr_expect_eq(q_int("SELECT attempts FROM cancel_request WHERE request_id = $1", "r-ex"), 5);
    cr_expect_eq(q_int("SELECT budget_base FROM cancel_request WHERE request_id = $1", "r-ex"), 4);
    char *who = q_str("SELECT operator || ' ' || action FROM dlq_replay", NULL);
    cr_expect_str_eq(who, "alice REARMED");
    free(who);
    who = q_str("SELECT operator || ' ' || action FROM operator_action", NULL);
    cr_expect_str_eq(who, "alice REPLAY");
    free(who);

    /* Replaying the same dead letter again schedules nothing. */
    wait_outbox_drained();
    long long retries = q_int("SELECT count(*) FROM outbox WHERE request_id = $1"
                              " AND event_type = 'payments.cancel.retry.scheduled.v1'",
                              "r-ex");
    doc = pipeline_cancelctl_json(P, 0,
                                  (const char *const[]){"--json", "dlq", "replay", "--yes", NULL});
    res = json_array_get(json_object_get(doc, "results"), 0);
    cr_expect_str_eq(jstr(res, "action"), "ALREADY_REPLAYED", "%s", json_dumps(doc, 0));
    cr_expect_not_null(strstr(jstr(res, "why"), "alice"), "%s", jstr(res, "why"));
    json_decref(doc);
    cr_expect_eq(q_int("SELECT count(*) FROM outbox WHERE request_id = $1"
                       " AND event_type = 'payments.cancel.retry.scheduled.v1'",
                       "r-ex"),
                 retries);
    cr_expect_eq(q_int("SELECT count(*) FROM dlq_replay", NULL), 1);
    sleep(2);
    cr_expect_eq(pipeline_refunds(P, "pk_ex"), 1);

    /* show: the whole story; status: the figures. */
    doc = pipeline_cancelctl_json(P, 0, (const char *const[]){"--json", "show", "r-ex", NULL});
    cr_expect_str_eq(jstr(json_object_get(doc, "request"), "status"), "SUCCEEDED");
    json_t *attempts = json_object_get(doc, "attempts");
    cr_expect_eq(json_array_size(attempts), 10, "5 attempts, STARTED + ANSWERED each");
    json_t *last = json_array_get(attempts, 9);
    cr_expect_str_eq(jstr(last, "verdict"), "SUCCEEDED");
    cr_expect_eq(jint(last, "httpStatus"), 200);
    cr_expect(json_is_integer(json_object_get(last, "latencyMs")));
    cr_expect_eq(json_array_size(json_object_get(doc, "deadLetters")), 1);
    cr_expect_eq(json_array_size(json_object_get(doc, "replays")), 1);
    cr_expect_not_null(strstr(jstr(doc, "next"), "nothing"), "%s", jstr(doc, "next"));
    json_decref(doc);

    pipeline_cancelctl(P, &r, (const char *const[]){"show", "r-ex", NULL});
    cr_expect_eq(r.exit_code, 0);
    cr_expect_not_null(strstr(r.out, "Attempt timeline"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "REARMED by alice"), "%s", r.out);
    itest_result_free(&r);

    doc = pipeline_cancelctl_json(P, 0, (const char *const[]){"--json", "status", NULL});
    cr_expect_eq(jint(json_object_get(json_object_get(doc, "requests"), "byStatus"), "SUCCEEDED"),
                 1);
    json_t *dead = json_object_get(doc, "deadLetters");
    cr_expect_eq(jint(dead, "total"), 1, "%s", json_dumps(doc, 0));
    cr_expect_eq(jint(json_object_get(dead, "byReason"), "EXHAUSTED"), 1);
    cr_expect_eq(jint(json_object_get(doc, "outbox"), "pending"), 0);
    json_t *lag = json_object_get(doc, "consumerLag");
    cr_expect_eq(json_array_size(lag), 4);
    cr_expect_str_eq(jstr(json_array_get(lag, 1), "role"), "retry");
    cr_expect(json_is_null(json_object_get(json_array_get(lag, 1), "error")), "%s",
              json_dumps(lag, 0));
    json_decref(doc);

    pipeline_cancelctl(P, &r, (const char *const[]){"show", "nobody", NULL});
    cr_expect_eq(r.exit_code, 1);
    cr_expect_not_null(strstr(r.err, "no request"), "%s", r.err);
    itest_result_free(&r);
}

/* A dead letter written straight to the DLQ topic, as the pipeline writes
 * them. */
static void put_dead_letter(const char *reason, const char *request_id, const char *gateway,
                            const char *at)
{
    char value[512];
    snprintf(value, sizeof(value),
             "{\"specversion\":\"1.0\",\"id\":\"ev-%s\",\"source\":\"/t\",\"type\":"
             "\"payments.cancel.failed.v1\",\"data\":{\"requestId\":\"%s\",\"gateway\":\"%s\"}}",
             request_id, request_id, gateway);
    json_t *h = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", DLQ_HEADER_REASON, reason,
                          DLQ_HEADER_ERROR, "test", DLQ_HEADER_ORIGINAL_TOPIC, "elsewhere",
                          DLQ_HEADER_ORIGINAL_PARTITION, "0", DLQ_HEADER_ORIGINAL_OFFSET, "1",
                          DLQ_HEADER_REQUEST_ID, request_id, DLQ_HEADER_AT, at);
    pipeline_publish_raw_len(P, "dlq", request_id, value, strlen(value), h);
    json_decref(h);
}

/* The requestIds that `dlq list --json ARGS` selects, in order,
 * comma-separated. Caller frees. */
static char *listed(const char *const *args)
{
    const char *argv[16] = {"--json", "dlq", "list"};
    size_t n = 3;
    for (size_t i = 0; args[i] != NULL && n + 1 < 16; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    json_t *doc = pipeline_cancelctl_json(P, 0, argv);
    char buf[512] = "";
    size_t i;
    json_t *dl;
    json_array_foreach(json_object_get(doc, "deadLetters"), i, dl)
    {
        if (i > 0)
            strncat(buf, ",", sizeof(buf) - strlen(buf) - 1);
        strncat(buf, jstr(dl, "requestId"), sizeof(buf) - strlen(buf) - 1);
    }
    json_decref(doc);
    return strdup(buf);
}

#define EXPECT_LISTED(want, ...)                                                                   \
    do {                                                                                           \
        char *got_ = listed((const char *const[]){__VA_ARGS__, NULL});                             \
        cr_expect_str_eq(got_, want, "filter %s", #__VA_ARGS__);                                   \
        free(got_);                                                                                \
    } while (0)

Test(ops, filters_select_exactly_the_matching_dead_letters, .fini = stop, .timeout = 200)
{
    P = pipeline_start("ops-dlq-filters", NULL);
    put_dead_letter("EXHAUSTED", "a-1", "toss", "2026-01-01T10:00:00.000Z");
    put_dead_letter("FAILED", "a-2", "stripe", "2026-01-01T11:00:00.000Z");
    put_dead_letter("PARSE_ERROR", "a-3", "toss", "2026-01-01T12:00:00.000Z");
    put_dead_letter("EXHAUSTED", "a-4", "stripe", "2026-01-01T13:00:00.000Z");
    put_dead_letter("CONFIG_FAULT", "a-5", "toss", "2026-01-01T14:00:00.000Z");
    wait_dlq(5);

    EXPECT_LISTED("a-1,a-2,a-3,a-4,a-5", "--timeout", "20s");
    EXPECT_LISTED("a-1,a-4", "--reason", "EXHAUSTED");
    EXPECT_LISTED("a-1,a-2,a-4", "--reason", "EXHAUSTED,FAILED");
    EXPECT_LISTED("a-2,a-4", "--gateway", "stripe");
    EXPECT_LISTED("a-4", "--gateway", "stripe", "--reason", "EXHAUSTED");
    EXPECT_LISTED("a-3", "--request-id", "a-3");
    EXPECT_LISTED("", "--request-id", "a-");
    EXPECT_LISTED("a-3,a-4,a-5", "--since", "2026-01-01T12:00:00Z");
    EXPECT_LISTED("a-1,a-2", "--until", "2026-01-01T12:00:00Z");
    EXPECT_LISTED("a-2,a-3", "--since", "2026-01-01T11:00:00Z", "--until", "2026-01-01T13:00:00Z");
    EXPECT_LISTED("a-1,a-2", "--limit", "2");
    EXPECT_LISTED("a-4,a-5", "--since", "2026-01-01T12:30:00+00:00", "--limit", "5");
    EXPECT_LISTED("", "--since", "1h"); /* they are all from January */

    /* The human table, and listing commits nothing: the alert group (which
     * reads the DLQ) still has no committed offset. */
    struct itest_result r;
    pipeline_cancelctl(P, &r, (const char *const[]){"dlq", "list", "--reason", "FAILED", NULL});
    cr_expect_eq(r.exit_code, 0);
    cr_expect_not_null(strstr(r.out, "a-2"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "1 dead letter(s) match, of 5 read"), "%s", r.out);
    itest_result_free(&r);
    json_t *doc = pipeline_cancelctl_json(P, 0, (const char *const[]){"--json", "status", NULL});
    json_t *alert_dlq = json_array_get(json_object_get(doc, "consumerLag"), 3);
    cr_expect_eq(jint(alert_dlq, "committedPartitions"), 0, "%s", json_dumps(alert_dlq, 0));
    cr_expect_eq(jint(alert_dlq, "lag"), 5);
    json_decref(doc);

    /* A poison letter whose original topic is not ours is refused by the
     * dry run, with the reason. */
    doc = pipeline_cancelctl_json(
        P, 0,
        (const char *const[]){"--json", "dlq", "replay", "--request-id", "a-3", "--dry-run", NULL});
    json_t *res = json_array_get(json_object_get(doc, "results"), 0);
    cr_expect_str_eq(jstr(res, "action"), "REFUSED");
    cr_expect_not_null(strstr(jstr(res, "why"), "elsewhere"), "%s", jstr(res, "why"));
    json_decref(doc);
}

/* Add a gateway named `name`, a copy of the toss one, to the config file:
 * the "fix upstream" of an UNKNOWN_GATEWAY poison message. */
static void add_gateway_like_toss(const char *name)
{
    const char *path = pipeline_config_path(P);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[1024], out[32768] = "", block[4096] = "";
    bool in_gateways = false, in_toss = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strcmp(line, "gateways:\n") == 0)
            in_gateways = true;
        else if (line[0] != ' ')
            in_gateways = in_toss = false;
        if (in_gateways && strncmp(line, "  ", 2) == 0 && line[2] != ' ')
            in_toss = strcmp(line, "  toss:\n") == 0;
        if (in_toss) {
            char renamed[128];
            snprintf(renamed, sizeof(renamed), "  %s:\n", name);
            strncat(block, strcmp(line, "  toss:\n") == 0 ? renamed : line,
                    sizeof(block) - strlen(block) - 1);
        }
        strncat(out, line, sizeof(out) - strlen(out) - 1);
        if (strcmp(line, "gateways:\n") == 0)
            strncat(out, "@BLOCK@", sizeof(out) - strlen(out) - 1);
    }
    fclose(f);
    cr_assert_neq(block[0], '\0', "no toss gateway in %s", path);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    char *at = strstr(out, "@BLOCK@");
    fwrite(out, 1, (size_t)(at - out), f);
    fputs(block, f);
    fputs(at + 7, f);
    fclose(f);
}

Test(ops, poison_fixed_upstream_and_replayed_is_processed_normally, .fini = stop, .timeout = 240)
{
    P = pipeline_start("ops-replay-poison", NULL);
    pipeline_payment(P, "toss", "pk_pp", 7000, "KRW", 0);
    char value[512];
    snprintf(value, sizeof(value),
             "{\"specversion\":\"1.0\",\"id\":\"ev-pp-1\",\"source\":\"/upstream\",\"type\":"
             "\"payments.cancel.failed.v1\",\"time\":\"2026-11-20T09:00:00Z\",\"data\":{"
             "\"requestId\":\"r-pp\",\"gateway\":\"tosspay\",\"paymentKey\":\"pk_pp\","
             "\"amount\":7000,\"currency\":\"KRW\",\"reason\":\"customer cancelled\"}}");
    pipeline_publish_raw(P, "cancel_failed", "r-pp", value);
    wait_dlq(1);
    wait_outbox_drained();
    cr_expect_eq(q_int("SELECT count(*) FROM cancel_request", NULL), 0);

    json_t *doc = pipeline_cancelctl_json(
        P, 0, (const char *const[]){"--json", "dlq", "list", "--reason", "UNKNOWN_GATEWAY", NULL});
    cr_assert_eq(jint(doc, "matched"), 1, "%s", json_dumps(doc, 0));
    cr_expect_str_eq(jstr(json_array_get(json_object_get(doc, "deadLetters"), 0), "gateway"),
                     "tosspay");
    json_decref(doc);

    /* The fix: the gateway is configured (a new gateway name upstream
     * started to use); intake and retry-consumer restart with it. */
    pipeline_kill(P, PIPELINE_INTAKE, 0, SIGTERM);
    pipeline_kill(P, PIPELINE_RETRY, 0, SIGTERM);
    add_gateway_like_toss("tosspay");
    pipeline_start_process(P, PIPELINE_INTAKE, 0);
    pipeline_start_process(P, PIPELINE_RETRY, 0);

    doc = pipeline_cancelctl_json(P, 0,
                                  (const char *const[]){"--json", "dlq", "replay", "--reason",
                                                        "UNKNOWN_GATEWAY", "--yes", NULL});
    json_t *res = json_array_get(json_object_get(doc, "results"), 0);
    cr_expect_str_eq(jstr(res, "action"), "REPUBLISH", "%s", json_dumps(doc, 0));
    json_decref(doc);
    wait_status("r-pp", "SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_pp"), 1);

    /* The same bytes went back, with the same key. */
    struct pipeline_msg *m = NULL;
    size_t n = pipeline_read_topic(P, "cancel_failed", 2, PIPELINE_READ_TIMEOUT_MS, &m);
    cr_assert_eq(n, 2);
    cr_expect_eq(m[0].len, m[1].len);
    cr_expect_eq(memcmp(m[0].value, m[1].value, m[0].len), 0, "re-published bytes differ");
    cr_expect_str_eq(m[1].key, "r-pp");
    pipeline_msgs_free(m, n);
    cr_expect_eq(topic_count("dlq"), 1, "not dead-lettered again");
    char *how = q_str("SELECT action || ' ' || reason FROM dlq_replay", NULL);
    cr_expect_str_eq(how, "REPUBLISHED UNKNOWN_GATEWAY");
    free(how);

    /* Replaying it again publishes nothing. */
    doc = pipeline_cancelctl_json(P, 0,
                                  (const char *const[]){"--json", "dlq", "replay", "--yes", NULL});
    cr_expect_eq(jint(json_object_get(doc, "counts"), "ALREADY_REPLAYED"), 1);
    json_decref(doc);
    cr_expect_eq(q_int("SELECT count(*) FROM outbox WHERE event_type = 'dlq-replay'", NULL), 1);
}

Test(ops, resolve_and_requeue_refuse_in_flight_and_expired_keys, .fini = stop, .timeout = 280)
{
    /* A gateway call that hangs 6 s keeps the request IN_FLIGHT that long. */
    P = pipeline_start("ops-requeue-resolve", "consumers:\n  retry: { lease: 30s }\n"
                                              "gateways:\n  toss: { timeout: 10s }\n");
    pipeline_payment(P, "toss", "pk_hang", 5000, "KRW", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_hang\",\"type\":\"hang\",\"delayMs\":6000}");
    pipeline_publish(P, "r-hang", "toss", "pk_hang", 5000, "KRW", false);
    cr_assert(pipeline_wait_query(P,
                                  "SELECT status FROM cancel_request WHERE request_id = 'r-hang'",
                                  0, NULL, "IN_FLIGHT", 20000),
              "never in flight (logs: %s)", pipeline_log_dir(P));

    struct itest_result r;
    pipeline_cancelctl(
        P, &r, (const char *const[]){"resolve", "r-hang", "--note", "refunded by hand", NULL});
    cr_expect_eq(r.exit_code, 1, "resolve in flight: exit %d %s%s", r.exit_code, r.out, r.err);
    cr_expect_not_null(strstr(r.err, "IN_FLIGHT"), "%s", r.err);
    itest_result_free(&r);
    pipeline_cancelctl(P, &r, (const char *const[]){"requeue", "r-hang", NULL});
    cr_expect_eq(r.exit_code, 1, "requeue in flight: exit %d %s%s", r.exit_code, r.out, r.err);
    cr_expect_not_null(strstr(r.err, "IN_FLIGHT"), "%s", r.err);
    itest_result_free(&r);
    cr_expect_eq(q_int("SELECT count(*) FROM operator_action", NULL), 0);
    /* The hung attempt times out, the next one refunds. */
    wait_status("r-hang", "SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_hang"), 1);
    pipeline_cancelctl(P, &r, (const char *const[]){"resolve", "r-hang", "--note", "x", NULL});
    cr_expect_eq(r.exit_code, 1);
    cr_expect_not_null(strstr(r.err, "already succeeded"), "%s", r.err);
    itest_result_free(&r);

    /* resolve: a request that cannot be refunded is closed by hand. */
    pipeline_payment(P, "toss", "pk_res", 3000, "KRW", 0);
    gateway_down("pk_res");
    pipeline_publish(P, "r-res", "toss", "pk_res", 3000, "KRW", false);
    wait_status("r-res", "EXHAUSTED");
    json_t *doc = pipeline_cancelctl_json(
        P, 0,
        (const char *const[]){"--json", "resolve", "r-res", "--note",
                              "refunded in the console, OPS-1", "--operator", "bob", NULL});
    cr_expect_str_eq(jstr(doc, "statusAfter"), "MANUALLY_RESOLVED");
    json_decref(doc);
    char *v = q_str("SELECT status || ' ' || resolved_by || ' ' || resolved_note"
                    " FROM cancel_request WHERE request_id = $1",
                    "r-res");
    cr_expect_str_eq(v, "MANUALLY_RESOLVED bob refunded in the console, OPS-1");
    free(v);
    v = q_str("SELECT action || ' ' || operator FROM operator_action WHERE request_id = $1",
              "r-res");
    cr_expect_str_eq(v, "RESOLVE bob");
    free(v);
    /* Its Outcome reaches the outcome topic. */
    cr_expect(pipeline_wait_query(P,
                                  "SELECT count(*)::text FROM outbox WHERE request_id = 'r-res'"
                                  " AND event_type = 'payments.cancel.outcome.v1'"
                                  " AND published_at IS NOT NULL"
                                  " AND convert_from(value, 'UTF8')::jsonb #>> '{data,status}'"
                                  " = 'MANUALLY_RESOLVED'",
                                  0, NULL, "1", 20000),
              "no MANUALLY_RESOLVED outcome published");

    /* requeue: an exhausted request, re-armed after the gateway is back. */
    pipeline_payment(P, "toss", "pk_rq", 4000, "KRW", 0);
    gateway_down("pk_rq");
    pipeline_publish(P, "r-rq", "toss", "pk_rq", 4000, "KRW", false);
    wait_status("r-rq", "EXHAUSTED");
    gateway_up();
    pipeline_cancelctl(P, &r, (const char *const[]){"requeue", "r-rq", "--dry-run", NULL});
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_not_null(strstr(r.out, "would re-arm request r-rq"), "%s", r.out);
    itest_result_free(&r);
    cr_expect_eq(q_int("SELECT count(*) FROM operator_action WHERE request_id = $1", "r-rq"), 0);
    pipeline_cancelctl(P, &r,
                       (const char *const[]){"requeue", "r-rq", "--note", "gateway back", NULL});
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    itest_result_free(&r);
    wait_status("r-rq", "SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_rq"), 1);

    /* A request whose key lifetime at the gateway has passed is refused,
     * by requeue and by replay alike, and nothing changes. */
    pipeline_payment(P, "toss", "pk_old", 2000, "KRW", 0);
    gateway_down("pk_old");
    pipeline_publish(P, "r-old", "toss", "pk_old", 2000, "KRW", false);
    wait_status("r-old", "EXHAUSTED");
    wait_outbox_drained();
    char err[512];
    cr_assert(itest_exec(pipeline_itest(P),
                         "UPDATE cancel_request SET key_expires_at = now() - interval '1 hour'"
                         " WHERE request_id = 'r-old'",
                         0, NULL, err, sizeof(err)),
              "%s", err);
    gateway_up();
    pipeline_cancelctl(P, &r, (const char *const[]){"requeue", "r-old", NULL});
    cr_expect_eq(r.exit_code, 1);
    cr_expect_not_null(strstr(r.err, "expired"), "%s", r.err);
    cr_expect_not_null(strstr(r.err, "refund twice"), "%s", r.err);
    itest_result_free(&r);
    doc = pipeline_cancelctl_json(
        P, 1,
        (const char *const[]){"--json", "dlq", "replay", "--request-id", "r-old", "--yes", NULL});
    json_t *res = json_array_get(json_object_get(doc, "results"), 0);
    cr_expect_str_eq(jstr(res, "action"), "REFUSED", "%s", json_dumps(doc, 0));
    cr_expect_not_null(strstr(jstr(res, "why"), "expired"), "%s", jstr(res, "why"));
    json_decref(doc);
    v = q_str("SELECT status FROM cancel_request WHERE request_id = $1", "r-old");
    cr_expect_str_eq(v, "EXHAUSTED");
    free(v);
    cr_expect_eq(q_int("SELECT count(*) FROM dlq_replay", NULL), 0);
    cr_expect_eq(q_int("SELECT count(*) FROM operator_action WHERE request_id = $1", "r-old"), 0);
    cr_expect_eq(pipeline_refunds(P, "pk_old"), 0);
}

/* ---- command line only (no stack needed) ---- */

Test(ops_cli, every_command_has_help_with_examples)
{
    static const char *const cmds[] = {"status", "show", "dlq", "requeue", "resolve"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        const char *argv[] = {itest_cancelctl(), cmds[i], "--help", NULL};
        struct itest_result r;
        itest_run(&r, 30000, argv, NULL);
        cr_expect_eq(r.exit_code, 0, "%s --help", cmds[i]);
        cr_expect_not_null(strstr(r.out, "Examples:"), "%s --help: %s", cmds[i], r.out);
        itest_result_free(&r);
    }
}
