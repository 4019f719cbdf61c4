/*
 * The webhook-receiver on the real stack (docs/architecture.md "Webhook
 * receiver"): requests run through the whole pipeline against gateway-sim,
 * and signed (or forged) Adyen-style REFUND notifications are POSTed to the
 * receiver over HTTP. What must hold: a verified delivery is committed
 * before its 202, once however often it comes, and wakes its request; a
 * forged one (one forged item is enough) stores nothing; a database that
 * cannot take it gets no 2xx; a REFUND_FAILED after SUCCEEDED reaches the
 * dead-letter outbox for Slack.
 *
 * The notifications are signed here with the library's own signer
 * (src/webhook/adyen_hmac.c, checked against Adyen's vectors in the unit
 * tests); the simulator's sender comes with the Adyen gateway.
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "http_fixture.h"
#include "log_file.h"
#include "pipeline_fixture.h"
#include "slack_sink_fixture.h"
#include "store/db.h"
#include "store/webhook_store.h"
#include "webhook/adyen_hmac.h"

#define KEY        "7A3F00D1C0FFEE0000000000000000000000000000000000000000000000CAFE"
#define FORGED_KEY "7A3F00D1C0FFEE0000000000000000000000000000000000000000000000BEEF"

/* The fixture's policy, but a second attempt an hour after a failed first:
 * only a wake-up can bring it within the test. The webhook keys on toss
 * stand in for an Adyen gateway's (the receiver does not care which kind). */
static const char webhook_config[] = "metrics:\n"
                                     "  listen: 127.0.0.1:0\n"
                                     "retry:\n"
                                     "  initial_delay: 1h\n"
                                     "  max_delay: 2h\n"
                                     "  deadline: 12h\n"
                                     "webhooks:\n"
                                     "  listen: 127.0.0.1:0\n"
                                     "gateways:\n"
                                     "  toss:\n"
                                     "    webhook_hmac_keys: [" KEY "]\n";

/* Alerts to a slack-sink (slack_sink_fixture.h), for the test that wants
 * to see the dead letters reach Slack. */
static const char slack_config[] = "alerts:\n"
                                   "  slack:\n"
                                   "    enabled: true\n"
                                   "    webhook_url: \"${CR_IT_SLACK_URL:-http://127.0.0.1:9/x}\"\n"
                                   "    timeout: 2s\n";

static struct pipeline *P;
static struct slack_sink SINK;
static char URL[256];

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
    slack_sink_stop(&SINK);
}

static void start(const char *name, bool slack)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), "%s%s", webhook_config, slack ? slack_config : "");
    /* The sink first: the config names its URL. */
    if (slack)
        slack_sink_start(&SINK, "/services/T000/B000/webhook-it");
    P = pipeline_start(name, yaml);
    if (slack)
        pipeline_start_process(P, PIPELINE_ALERT, 0);
    pipeline_start_webhook_receiver(P, 0, NULL, URL, sizeof(URL));
}

/* One NotificationRequestItem about request rid's refund of payment pk,
 * signed with hex_key; malloc'd JSON. */
static char *item(const char *hex_key, const char *event, const char *psp, const char *rid,
                  const char *pk, long long amount, const char *success)
{
    char value[32], sig[ADYEN_HMAC_SIG_SIZE];
    unsigned char key[ADYEN_HMAC_KEY_LEN];
    snprintf(value, sizeof(value), "%lld", amount);
    struct adyen_hmac_fields f = {psp, pk, "CancelRetryIT", rid, value, "KRW", event, success};
    cr_assert(adyen_hmac_key_decode(hex_key, key));
    cr_assert(adyen_hmac_sign(key, &f, sig));
    char *out = NULL;
    cr_assert(asprintf(&out,
                       "{\"NotificationRequestItem\":{\"additionalData\":{\"hmacSignature\":"
                       "\"%s\"},\"amount\":{\"currency\":\"KRW\",\"value\":%lld},\"eventCode\":"
                       "\"%s\",\"eventDate\":\"2026-12-01T10:00:00+01:00\","
                       "\"merchantAccountCode\":\"CancelRetryIT\",\"merchantReference\":\"%s\","
                       "\"originalReference\":\"%s\",\"pspReference\":\"%s\",\"reason\":\"\","
                       "\"success\":\"%s\"}}",
                       sig, amount, event, rid, pk, psp, success) > 0);
    return out;
}

/* POST a delivery of the items (NULL-ended) to url; returns the status and
 * the body in body (caller frees). */
static long post(const char *url, char **body, const char *first, ...)
{
    char *json = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    cr_assert_not_null(f);
    fputs("{\"live\":\"false\",\"notificationItems\":[", f);
    va_list ap;
    va_start(ap, first);
    for (const char *it = first; it != NULL; it = va_arg(ap, const char *))
        fprintf(f, "%s%s", it == first ? "" : ",", it);
    va_end(ap);
    fputs("]}", f);
    fclose(f);
    char err[256] = "";
    long status = http_fixture_call(NULL, "POST", url, json, 15000, body, err, sizeof(err));
    cr_assert(status != 0 || url != URL, "no answer from the webhook-receiver: %s", err);
    free(json);
    return status;
}

static long long q_int(const char *sql, const char *param)
{
    const char *params[] = {param};
    return itest_query_int(pipeline_itest(P), sql, param != NULL ? 1 : 0, params);
}

static const char sql_rows[] = "SELECT count(*) FROM gateway_notification";
static const char sql_rows_of[] = "SELECT count(*) FROM gateway_notification WHERE request_id = $1";
static const char sql_dead_letters[] =
    "SELECT count(*) FROM outbox WHERE event_type = 'dead-letter'"
    " AND headers @> jsonb_build_array(jsonb_build_array('dlq.reason', $1::text))";

/* What the retry-consumer will read about rid's refund
 * (webhook_store_refund_result on the pipeline's database). */
static enum webhook_refund_result refund_result(const char *rid, char *detail, size_t len)
{
    struct config_database dbc = {
        .dsn = pipeline_itest(P)->dsn,
        .connect_timeout_ms = 5000,
        .reconnect_min_ms = 200,
        .reconnect_max_ms = 1000,
        .statement_timeout_ms = 30000,
        .prepared_statements = true,
    };
    char err[512];
    enum webhook_refund_result r = WEBHOOK_NONE;
    struct db *db = db_new(&dbc, "test_webhook_receiver");
    cr_assert_not_null(db);
    cr_assert(db_connect_once(db, err, sizeof(err)), "%s", err);
    cr_assert(webhook_store_refund_result(db, "toss", rid, &r, detail, len, err, sizeof(err)), "%s",
              err);
    db_free(db);
    return r;
}

/* GET path on the metrics port that the receiver in slot index logged. */
static long get_metrics_port(int index, const char *path, char **body)
{
    char log[700], url[160], file[64];
    snprintf(file, sizeof(file), "webhook-receiver-%d.log", index);
    pipeline_log_path(P, file, log, sizeof(log));
    unsigned port = 0;
    for (int64_t deadline = mono_ms() + 15000; port == 0 && mono_ms() < deadline;
         itest_sleep_ms(50))
        port = log_file_metrics_port(log);
    cr_assert_neq(port, 0, "no metrics address in %s", log);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    return http_fixture_call(NULL, "GET", url, NULL, 10000, body, NULL, 0);
}

/* /readyz of the receiver in slot index, polled until it answers want. */
static void wait_readyz(int index, long want, const char *needle)
{
    long status = 0;
    char *body = NULL;
    for (int64_t deadline = mono_ms() + 30000;; itest_sleep_ms(100)) {
        free(body);
        status = get_metrics_port(index, "/readyz", &body);
        if ((status == want && strstr(body, needle) != NULL) || mono_ms() > deadline)
            break;
    }
    cr_expect_eq(status, want, "receiver %d /readyz: %ld %s", index, status, body);
    cr_expect_not_null(strstr(body, needle), "receiver %d /readyz: %s", index, body);
    free(body);
}

/* The request's first attempt failed and its second is an hour away. */
static void wait_for_second_attempt_in_an_hour(const char *rid)
{
    const char *params[] = {rid};
    cr_assert(pipeline_wait_query(P,
                                  "SELECT status = 'SCHEDULED' AND attempts = 1"
                                  "   AND next_attempt_at > now() + interval '30 minutes'"
                                  "  FROM cancel_request WHERE request_id = $1",
                                  1, params, "t", PIPELINE_FINAL_TIMEOUT_MS),
              "request %s is not waiting an hour for attempt 2 (logs in %s)", rid,
              pipeline_log_dir(P));
}

Test(webhook_receiver, verified_stored_once_and_wakes_forged_stores_nothing, .fini = stop,
     .timeout = 240)
{
    start("webhook_wake", false);
    pipeline_payment(P, "toss", "pk_wh_1", 15000, "KRW", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_wh_1\",\"type\":\"error_5xx\",\"times\":1}");
    pipeline_publish(P, "wh-1", "toss", "pk_wh_1", 15000, "KRW", false);
    wait_for_second_attempt_in_an_hour("wh-1");

    /* A forged item (another key) stores nothing and wakes nobody. */
    char *body = NULL;
    char *forged = item(FORGED_KEY, "REFUND", "RF_WH_1", "wh-1", "pk_wh_1", 15000, "true");
    cr_expect_eq(post(URL, &body, forged, NULL), 401, "%s", body);
    free(body);
    /* Nor does a delivery whose one item of two is forged. */
    char *good = item(KEY, "REFUND", "RF_WH_1", "wh-1", "pk_wh_1", 15000, "true");
    char *other = item(KEY, "REFUND", "RF_WH_OTHER", "wh-x", "pk_other", 100, "true");
    cr_expect_eq(post(URL, &body, other, forged, NULL), 401, "%s", body);
    free(body);
    cr_expect_eq(q_int(sql_rows, NULL), 0, "a rejected delivery stored something");
    cr_expect_eq(q_int("SELECT attempts FROM cancel_request WHERE request_id = $1", "wh-1"), 1);

    /* The genuine delivery: 202 [accepted], stored, matched to its request. */
    cr_assert_eq(post(URL, &body, good, NULL), 202, "%s", body);
    cr_expect_str_eq(body, "[accepted]");
    free(body);
    cr_expect_eq(q_int(sql_rows_of, "wh-1"), 1);
    /* Woken: attempt 2 starts now, not in an hour. */
    const char *params[] = {"wh-1"};
    cr_expect(pipeline_wait_query(P,
                                  "SELECT count(*) FROM retry_attempt_log"
                                  " WHERE request_id = $1 AND attempt = 2 AND event = 'STARTED'",
                                  1, params, "1", PIPELINE_FINAL_TIMEOUT_MS),
              "attempt 2 did not start after the REFUND notification (logs in %s)",
              pipeline_log_dir(P));

    /* The same delivery again (its 2xx was lost, say): acknowledged, not
     * stored twice, and no second wake-up. */
    long long triggers = q_int("SELECT count(*) FROM outbox WHERE request_id = $1"
                               " AND event_type = 'payments.cancel.retry.scheduled.v1'",
                               "wh-1");
    cr_expect_eq(post(URL, &body, good, NULL), 202, "%s", body);
    free(body);
    cr_expect_eq(q_int(sql_rows, NULL), 1, "a redelivery was stored twice");
    cr_expect_eq(q_int("SELECT count(*) FROM outbox WHERE request_id = $1"
                       " AND event_type = 'payments.cancel.retry.scheduled.v1'",
                       "wh-1"),
                 triggers, "a redelivery woke the request again");

    cr_expect_str_eq(pipeline_require_final(P, "wh-1", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_wh_1"), 1, "exactly one refund");
    char detail[256];
    cr_expect_eq(refund_result("wh-1", detail, sizeof(detail)), WEBHOOK_REFUNDED);
    cr_expect_str_eq(detail, "webhook REFUND success=true pspReference=RF_WH_1");
    cr_expect_eq(refund_result("wh-none", detail, sizeof(detail)), WEBHOOK_NONE);
    free(forged);
    free(good);
    free(other);
}

Test(webhook_receiver, refund_failed_after_success_and_unmatched_are_dead_lettered, .fini = stop,
     .timeout = 240)
{
    start("webhook_after", true);
    pipeline_payment(P, "toss", "pk_wh_2", 20000, "KRW", 0);
    pipeline_publish(P, "wh-2", "toss", "pk_wh_2", 20000, "KRW", false);
    cr_assert_str_eq(pipeline_require_final(P, "wh-2", PIPELINE_FINAL_TIMEOUT_MS), "SUCCEEDED");

    char *body = NULL;
    char *ok = item(KEY, "REFUND", "RF_WH_2", "wh-2", "pk_wh_2", 20000, "true");
    char *failed = item(KEY, "REFUND_FAILED", "RF_WH_2", "wh-2", "pk_wh_2", 20000, "true");
    cr_assert_eq(post(URL, &body, ok, failed, NULL), 202, "%s", body);
    free(body);
    cr_expect_eq(q_int(sql_rows_of, "wh-2"), 2);
    cr_expect_eq(q_int(sql_dead_letters, "REFUND_FAILED_AFTER_SUCCESS"), 1);
    cr_expect_eq(q_int("SELECT count(*) FROM outbox WHERE event_type = 'dead-letter'"
                       " AND request_id = $1",
                       "wh-2"),
                 1);
    cr_expect_str_eq(itest_query_value(pipeline_itest(P),
                                       "SELECT status FROM cancel_request WHERE request_id = $1", 1,
                                       (const char *const[]){"wh-2"}),
                     "SUCCEEDED", "the webhook changed the request itself");
    /* Delivered again: one dead letter still. */
    cr_expect_eq(post(URL, &body, failed, NULL), 202, "%s", body);
    free(body);
    cr_expect_eq(q_int(sql_dead_letters, "REFUND_FAILED_AFTER_SUCCESS"), 1);
    char detail[256];
    cr_expect_eq(refund_result("wh-2", detail, sizeof(detail)), WEBHOOK_FAILED_AFTER);
    cr_expect_str_eq(detail, "webhook REFUND_FAILED success=true pspReference=RF_WH_2");

    /* A refund of nobody's request: stored unmatched, dead-lettered once. */
    char *stray = item(KEY, "REFUND", "RF_WH_STRAY", "nobody", "pk_nobody", 700, "true");
    cr_expect_eq(post(URL, &body, stray, NULL), 202, "%s", body);
    free(body);
    cr_expect_eq(q_int("SELECT count(*) FROM gateway_notification"
                       " WHERE psp_reference = $1 AND request_id IS NULL",
                       "RF_WH_STRAY"),
                 1);
    cr_expect_eq(q_int(sql_dead_letters, "WEBHOOK_UNMATCHED"), 1);

    /* Both reach Slack through the alert-consumer, once each. */
    json_t *posts = slack_sink_wait_accepted(&SINK, 2, PIPELINE_FINAL_TIMEOUT_MS);
    bool failed_after = false, unmatched = false;
    for (size_t i = 0; i < json_array_size(posts); i++) {
        const char *text = slack_sink_text(json_array_get(posts, i));
        failed_after |=
            strstr(text, "REFUND_FAILED_AFTER_SUCCESS") != NULL && strstr(text, "wh-2") != NULL;
        unmatched |= strstr(text, "WEBHOOK_UNMATCHED") != NULL;
    }
    cr_expect(failed_after, "no Slack alert for REFUND_FAILED_AFTER_SUCCESS of wh-2");
    cr_expect(unmatched, "no Slack alert for WEBHOOK_UNMATCHED");
    cr_expect_eq(slack_sink_count_status(posts, 200), 2, "one alert each, no more");
    json_decref(posts);

    /* A replay has nothing to do again: refused, naming why. */
    struct itest_result r;
    pipeline_cancelctl_exit(P, &r, 1,
                            (const char *const[]){"dlq", "replay", "--reason",
                                                  "REFUND_FAILED_AFTER_SUCCESS,WEBHOOK_UNMATCHED",
                                                  "--yes", NULL});
    cr_expect_not_null(strstr(r.out, "for a human to act on"), "%s%s", r.out, r.err);
    itest_result_free(&r);
    cr_expect_eq(
        q_int("SELECT count(*) FROM dlq_replay WHERE reason = $1", "REFUND_FAILED_AFTER_SUCCESS"),
        0);
    free(ok);
    free(failed);
    free(stray);
}

Test(webhook_receiver, no_database_no_acknowledgement, .fini = stop, .timeout = 240)
{
    start("webhook_nodb", false);
    /* A second receiver whose database is a closed port. */
    char config[700], url[256];
    pipeline_config_variant(P, "webhook-nodb.yaml", "  dsn: ",
                            "  dsn: 'host=127.0.0.1 port=1 dbname=none user=none "
                            "connect_timeout=2'\n",
                            config, sizeof(config));
    pipeline_start_webhook_receiver(P, 1, config, url, sizeof(url));

    char *body = NULL;
    char *good = item(KEY, "REFUND", "RF_WH_3", "wh-3", "pk_wh_3", 500, "true");
    long status = post(url, &body, good, NULL);
    cr_expect(status >= 500 && status <= 599, "answered %ld %s without a database", status, body);
    free(body);
    cr_expect_eq(q_int(sql_rows, NULL), 0);
    /* The receiver with a database takes the same delivery. */
    cr_expect_eq(post(URL, &body, good, NULL), 202, "%s", body);
    free(body);
    cr_expect_eq(q_int(sql_rows, NULL), 1);
    free(good);

    /* Each says so on its metrics port: ready or not, and what it answered. */
    wait_readyz(0, 200, "ready");
    wait_readyz(1, 503, "database: ");
    cr_expect_eq(get_metrics_port(1, "/healthz", NULL), 200, "liveness says nothing of the db");
    cr_expect_eq(get_metrics_port(0, "/metrics", &body), 200);
    cr_expect_not_null(strstr(body, "cancel_retry_webhook_deliveries_total{service=\"webhook-"
                                    "receiver\",status=\"202\"} 1\n"),
                       "%s", body);
    free(body);
    cr_expect_eq(get_metrics_port(1, "/metrics", &body), 200);
    cr_expect_not_null(strstr(body, "cancel_retry_webhook_rejected_total{service=\"webhook-"
                                    "receiver\",reason=\"database\"} 1\n"),
                       "%s", body);
    cr_expect_null(strstr(body, "check=\"kafka\""), "the receiver has no Kafka check: %s", body);
    free(body);
}
