/*
 * The alert-consumer's decisions (src/alert/alert.c): which messages alert, their
 * dedup keys and content, the route, the digest window.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alert/alert.h"
#include "config/config.h"
#include "event/cancel_event.h"
#include "event/cloudevent.h"

static struct config *cfg;

static void load(void)
{
    char err[512];
    setenv("CR_PG_PORT", "55432", 0);
    setenv("CR_KAFKA_BOOTSTRAP", "127.0.0.1:59092", 0);
    setenv("CR_GATEWAY_SIM_PORT", "28080", 0);
    cfg = config_load("config/cancel-retry.yaml", err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
}

static void unload(void)
{
    config_free(cfg);
    cfg = NULL;
}

TestSuite(alert, .init = load, .fini = unload);

static char *outcome_json(const char *id, const char *status)
{
    char err[256], *json = NULL;
    struct cancel_request_fields f = {"r-7", "toss", "tpay_0000000777", "KRW", 15000, false};
    struct cancel_last_error last = {"PROVIDER_ERROR", "down", 503};
    json_t *data = outcome_data(&f, status, 3, &last, 1763630102123, err, sizeof(err));
    cr_assert_not_null(data, "%s", err);
    cr_assert(cloudevent_build_at(CANCEL_EVENT_TYPE_OUTCOME, CANCEL_EVENT_SOURCE, "r-7", "corr-7",
                                  data, id, 1763630102123, &json, err, sizeof(err)),
              "%s", err);
    json_decref(data);
    return json;
}

static struct kafka_record record(const char *topic, const char *value, int64_t offset)
{
    struct kafka_record r = {topic, 1, offset, 1763630000000, "r-7", 3, value, strlen(value), NULL};
    return r;
}

Test(alert, exhausted_outcome_alerts_with_its_fields)
{
    char *json = outcome_json("ev-123", "EXHAUSTED");
    struct kafka_record rec = record(cfg->topics.outcome.name, json, 5);
    struct alert a;
    char why[128];
    cr_assert_eq(alert_from_record(cfg, &rec, NULL, &a, why, sizeof(why)), ALERT_POST);
    cr_expect_str_eq(a.dedup_key, "outcome:ev-123");
    cr_expect_str_eq(a.kind, ALERT_KIND_OUTCOME);
    cr_expect_str_eq(a.view.reason, "EXHAUSTED");
    cr_expect_str_eq(a.view.request_id, "r-7");
    cr_expect_str_eq(a.view.gateway, "toss");
    cr_expect_str_eq(a.view.payment_key, "tpay_0000000777");
    cr_expect_eq(a.view.amount, 15000);
    cr_expect_eq(a.view.attempts, 3);
    cr_expect_str_eq(a.view.error_code, "PROVIDER_ERROR");
    cr_expect_eq(a.view.error_http_status, 503);
    cr_expect_str_eq(a.view.correlation_id, "corr-7");
    cr_expect_eq(a.event_at_ms, 1763630102123);
    cr_expect_str_eq(a.view.at, "2025-11-20T09:15:02.123Z");
    alert_clear(&a);
    free(json);
}

Test(alert, succeeded_outcome_is_not_alerted_by_default)
{
    char *json = outcome_json("ev-124", "SUCCEEDED");
    struct kafka_record rec = record(cfg->topics.outcome.name, json, 6);
    struct alert a;
    char why[128];
    cr_expect_eq(alert_from_record(cfg, &rec, NULL, &a, why, sizeof(why)), ALERT_SKIP);
    cr_expect_not_null(strstr(why, "SUCCEEDED"), "%s", why);
    alert_clear(&a);
    free(json);
}

Test(alert, the_same_event_read_twice_has_the_same_key)
{
    char *json = outcome_json("ev-125", "FAILED");
    struct kafka_record r1 = record(cfg->topics.outcome.name, json, 7);
    struct kafka_record r2 = record(cfg->topics.outcome.name, json, 70);
    struct alert a, b;
    char why[128];
    cr_assert_eq(alert_from_record(cfg, &r1, NULL, &a, why, sizeof(why)), ALERT_POST);
    cr_assert_eq(alert_from_record(cfg, &r2, NULL, &b, why, sizeof(why)), ALERT_POST);
    cr_expect_str_eq(a.dedup_key, b.dedup_key);
    alert_clear(&a);
    alert_clear(&b);
    free(json);
}

Test(alert, garbage_on_the_outcome_topic_is_alerted_by_offset)
{
    struct kafka_record rec =
        record(cfg->topics.outcome.name, "{\"data\":{\"requestId\":\"r-9\"}", 8);
    struct alert a;
    char why[128], key[300];
    cr_assert_eq(alert_from_record(cfg, &rec, NULL, &a, why, sizeof(why)), ALERT_POST);
    snprintf(key, sizeof(key), "dlq:%s/1/8", cfg->topics.outcome.name);
    cr_expect_str_eq(a.dedup_key, key);
    cr_expect_str_eq(a.view.reason, "PARSE_ERROR");
    cr_expect_not_null(a.view.error_message);
    alert_clear(&a);
}

static json_t *dlq_headers(const char *reason)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "dlq.reason", reason, "dlq.error",
                     "requestId r-7 was recorded with another amount", "dlq.original.topic",
                     "payments.cancel.failed", "dlq.original.partition", "2", "dlq.original.offset",
                     "31", "dlq.consumer", "intake-consumer", "dlq.request.id", "r-7", "dlq.at",
                     "2026-11-20T10:00:00.000Z");
}

Test(alert, dead_letter_alerts_with_its_headers_and_value)
{
    char *json = NULL, err[256];
    json_t *data = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "requestId", "r-7", "gateway",
                             "stripe", "paymentKey", "pi_abcdefgh", "amount", (json_int_t)1234,
                             "currency", "USD", "reason", "customer");
    cr_assert(cloudevent_build(CANCEL_EVENT_TYPE_FAILED, "/shop", "r-7", "corr-d", data, &json, err,
                               sizeof(err)),
              "%s", err);
    json_decref(data);
    json_t *h = dlq_headers("IDEMPOTENCY_CONFLICT");
    struct kafka_record rec = record(cfg->topics.dlq.name, json, 12);
    struct alert a;
    char why[128], key[300];
    cr_assert_eq(alert_from_record(cfg, &rec, h, &a, why, sizeof(why)), ALERT_POST);
    snprintf(key, sizeof(key), "dlq:%s/1/12", cfg->topics.dlq.name);
    cr_expect_str_eq(a.dedup_key, key);
    cr_expect_str_eq(a.kind, ALERT_KIND_DEAD_LETTER);
    cr_expect_str_eq(a.view.reason, "IDEMPOTENCY_CONFLICT");
    cr_expect_str_eq(a.view.request_id, "r-7");
    cr_expect_str_eq(a.view.gateway, "stripe");
    cr_expect_str_eq(a.view.payment_key, "pi_abcdefgh");
    cr_expect_eq(a.view.amount, 1234);
    cr_expect_str_eq(a.view.currency, "USD");
    cr_expect_str_eq(a.view.correlation_id, "corr-d");
    cr_expect_str_eq(a.view.origin, "payments.cancel.failed [2] offset 31");
    cr_expect_str_eq(a.view.by, "intake-consumer");
    cr_expect_str_eq(a.view.at, "2026-11-20T10:00:00.000Z");
    alert_clear(&a);
    json_decref(h);
    free(json);
}

Test(alert, exhausted_dead_letter_is_left_to_its_outcome)
{
    json_t *h = dlq_headers("EXHAUSTED");
    struct kafka_record rec = record(cfg->topics.dlq.name, "{}", 13);
    struct alert a;
    char why[128];
    cr_expect_eq(alert_from_record(cfg, &rec, h, &a, why, sizeof(why)), ALERT_SKIP);
    alert_clear(&a);
    json_decref(h);
}

Test(alert, poison_dead_letter_has_no_request_id)
{
    json_t *h = json_pack("{s:s, s:s}", "dlq.reason", "PARSE_ERROR", "dlq.error", "bad");
    struct kafka_record rec = record(cfg->topics.dlq.name, "{not json", 14);
    struct alert a;
    char why[128];
    cr_assert_eq(alert_from_record(cfg, &rec, h, &a, why, sizeof(why)), ALERT_POST);
    cr_expect_null(a.view.request_id);
    cr_expect_eq(a.view.amount, -1);
    cr_expect_str_eq(a.view.at, "2025-11-20T09:13:20.000Z"); /* the Kafka timestamp */
    alert_clear(&a);
    json_decref(h);
}

Test(alert, routes_first_match_wins)
{
    struct config_slack_route routes[] = {
        {"stripe", "EXHAUSTED", "u1"},
        {NULL, "PARSE_ERROR", "u2"},
        {"toss", NULL, "u3"},
    };
    struct config_slack s = {.routes = routes, .nroutes = 3};
    cr_expect_eq(alert_route(&s, "stripe", "EXHAUSTED"), 0);
    cr_expect_eq(alert_route(&s, "stripe", "FAILED"), -1);
    cr_expect_eq(alert_route(&s, NULL, "PARSE_ERROR"), 1);
    cr_expect_eq(alert_route(&s, "toss", "PARSE_ERROR"), 1);
    cr_expect_eq(alert_route(&s, "toss", "FAILED"), 2);
    cr_expect_eq(alert_route(&s, NULL, "FAILED"), -1);
}

Test(alert, window_digests_past_the_threshold_and_forgets_old_alerts)
{
    struct alert_window w;
    cr_assert(alert_window_init(&w, 3, 1000));
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++) {
        cr_expect_not(alert_window_full(&w, t + i), "alert %d should be posted alone", i);
        alert_window_add(&w, t + i);
    }
    cr_expect(alert_window_full(&w, t + 10), "the 4th within the window goes to a digest");
    alert_window_add(&w, t + 10);
    cr_expect(alert_window_full(&w, t + 500));
    /* Digested alerts count too: a flood keeps the window hot. */
    alert_window_add(&w, t + 600);
    alert_window_add(&w, t + 700);
    cr_expect(alert_window_full(&w, t + 1005));
    /* 1 s after the last three the window is empty again. */
    cr_expect_not(alert_window_full(&w, t + 1700));
    alert_window_free(&w);
}

/* One alert per request: a Toss 401 ends the request FAILED with a
 * CONFIG_FAULT dead letter; the dead letter is the alert, the Outcome not. */
Test(alert, config_fault_request_is_announced_once)
{
    char err[256], *json = NULL;
    struct cancel_request_fields f = {"r-8", "toss", "tpay_0000000888", "KRW", 15000, false};
    struct cancel_last_error last = {"UNAUTHORIZED_KEY", "bad key", 401};
    json_t *data = outcome_data(&f, "FAILED", 1, &last, 1763630102123, err, sizeof(err));
    cr_assert_not_null(data, "%s", err);
    cr_assert(cloudevent_build_at(CANCEL_EVENT_TYPE_OUTCOME, CANCEL_EVENT_SOURCE, "r-8", NULL, data,
                                  "ev-8", 1763630102123, &json, err, sizeof(err)),
              "%s", err);
    json_decref(data);
    struct kafka_record rec = record(cfg->topics.outcome.name, json, 8);
    struct alert a;
    char why[160];
    cr_expect_eq(alert_from_record(cfg, &rec, NULL, &a, why, sizeof(why)), ALERT_SKIP);
    cr_expect_not_null(strstr(why, "CONFIG_FAULT"), "%s", why);
    alert_clear(&a);
    free(json);

    json_t *h = dlq_headers("CONFIG_FAULT");
    struct kafka_record dl = record(cfg->topics.dlq.name, "{}", 9);
    cr_expect_eq(alert_from_record(cfg, &dl, h, &a, why, sizeof(why)), ALERT_POST);
    cr_expect_str_eq(a.view.reason, "CONFIG_FAULT");
    alert_clear(&a);
    json_decref(h);

    /* A business refusal is not a config fault: its Outcome is the alert. */
    struct cancel_last_error nf = {"NOT_CANCELABLE_PAYMENT", "no", 403};
    data = outcome_data(&f, "FAILED", 1, &nf, 1763630102123, err, sizeof(err));
    cr_assert(cloudevent_build_at(CANCEL_EVENT_TYPE_OUTCOME, CANCEL_EVENT_SOURCE, "r-8", NULL, data,
                                  "ev-9", 1763630102123, &json, err, sizeof(err)),
              "%s", err);
    json_decref(data);
    rec = record(cfg->topics.outcome.name, json, 10);
    cr_expect_eq(alert_from_record(cfg, &rec, NULL, &a, why, sizeof(why)), ALERT_POST);
    alert_clear(&a);
    free(json);
}
