/*
 * The operator decisions that need no database or broker: re-arm and
 * resolve rules (the key-lifetime refusal above all), what `show` says will
 * happen next, the operator identity, dead-letter parsing and filters, lag
 * arithmetic and the replay routing by reason.
 */
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "config/config.h"
#include "event/dlq.h"
#include "ops/ops_dlq.h"
#include "ops/ops_lag.h"
#include "ops/ops_replay.h"
#include "ops/ops_request.h"

#define NOW    1795166100000LL /* 2026-11-20T09:15:00Z */
#define MINUTE (60LL * 1000)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)
#define LEASE  (2 * MINUTE)

static struct ops_rearm_input input(const char *status, enum ops_rearm_mode mode)
{
    struct ops_rearm_input in = {
        .mode = mode,
        .request_id = "r-1",
        .status = status,
        .attempts = 5,
        .lease_owner = NULL,
        .now_ms = NOW,
        .key_expires_ms = NOW + 10 * DAY,
        .lease_ms = LEASE,
        .policy_max_attempts = 4,
        .policy_deadline_ms = 12 * HOUR,
    };
    return in;
}

Test(rearm, exhausted_request_gets_a_fresh_budget_from_the_current_policy)
{
    struct ops_rearm_input in = input("EXHAUSTED", OPS_REARM_REPLAY);
    struct ops_rearm_plan p;
    ops_rearm_decide(&in, &p);
    cr_assert(p.ok, "%s", p.why);
    cr_expect_eq(p.budget_base, 5, "earlier attempts no longer count");
    cr_expect_eq(p.max_attempts, 4);
    cr_expect_eq(p.attempt, 6, "the attempt number is never reused");
    cr_expect_eq(p.next_attempt_ms, NOW);
    cr_expect_eq(p.deadline_ms, NOW + 12 * HOUR);
    cr_expect_not(p.deadline_capped);
}

Test(rearm, deadline_is_cut_so_the_last_attempt_ends_before_the_key_expires)
{
    struct ops_rearm_input in = input("FAILED", OPS_REARM_REPLAY);
    in.key_expires_ms = NOW + 3 * HOUR;
    struct ops_rearm_plan p;
    ops_rearm_decide(&in, &p);
    cr_assert(p.ok, "%s", p.why);
    cr_expect_eq(p.deadline_ms, NOW + 3 * HOUR - LEASE);
    cr_expect(p.deadline_capped);
    cr_expect_not_null(strstr(p.why, "idempotency key"), "%s", p.why);
}

Test(rearm, refused_once_the_key_expired_at_the_gateway)
{
    struct ops_rearm_input in = input("EXHAUSTED", OPS_REARM_REPLAY);
    in.key_expires_ms = NOW - HOUR;
    struct ops_rearm_plan p;
    ops_rearm_decide(&in, &p);
    cr_expect_not(p.ok);
    cr_expect_not_null(strstr(p.why, "expired"), "%s", p.why);
    cr_expect_not_null(strstr(p.why, "refund twice"), "%s", p.why);
    cr_expect_not_null(strstr(p.why, "cancelctl resolve r-1"), "says what to do: %s", p.why);
}

Test(rearm, refused_when_the_key_would_expire_during_the_next_attempt)
{
    struct ops_rearm_input in = input("EXHAUSTED", OPS_REARM_REQUEUE);
    /* The key outlives now, but not now + lease + the pick-up window. */
    in.key_expires_ms = NOW + LEASE + OPS_REARM_MIN_WINDOW_MS - 1;
    struct ops_rearm_plan p;
    ops_rearm_decide(&in, &p);
    cr_expect_not(p.ok);
    cr_expect_not_null(strstr(p.why, "expires"), "%s", p.why);

    in.key_expires_ms = NOW + LEASE + OPS_REARM_MIN_WINDOW_MS;
    ops_rearm_decide(&in, &p);
    cr_expect(p.ok, "exactly the window is enough: %s", p.why);
}

Test(rearm, unknown_key_lifetime_keeps_the_policy_deadline)
{
    struct ops_rearm_input in = input("EXHAUSTED", OPS_REARM_REPLAY);
    in.key_expires_ms = 0;
    struct ops_rearm_plan p;
    ops_rearm_decide(&in, &p);
    cr_assert(p.ok);
    cr_expect_eq(p.deadline_ms, NOW + 12 * HOUR);
}

struct status_case {
    char status[24];
    int mode; /* enum ops_rearm_mode */
    bool ok;
    char words[64];
};

ParameterizedTestParameters(rearm, by_status_and_mode)
{
    static struct status_case cases[] = {
        {"FAILED", OPS_REARM_REPLAY, true, "re-arm"},
        {"EXHAUSTED", OPS_REARM_REPLAY, true, "re-arm"},
        {"SCHEDULED", OPS_REARM_REPLAY, false, "already scheduled"},
        {"IN_FLIGHT", OPS_REARM_REPLAY, false, "IN_FLIGHT"},
        {"SUCCEEDED", OPS_REARM_REPLAY, false, "already succeeded"},
        {"ALREADY_REFUNDED", OPS_REARM_REPLAY, false, "already succeeded"},
        {"MANUALLY_RESOLVED", OPS_REARM_REPLAY, false, "resolved by hand"},
        {"FAILED", OPS_REARM_REQUEUE, true, "re-arm"},
        {"EXHAUSTED", OPS_REARM_REQUEUE, true, "re-arm"},
        {"SCHEDULED", OPS_REARM_REQUEUE, true, "re-arm"},
        {"IN_FLIGHT", OPS_REARM_REQUEUE, false, "wait for its answer"},
        {"SUCCEEDED", OPS_REARM_REQUEUE, false, "already succeeded"},
        {"MANUALLY_RESOLVED", OPS_REARM_REQUEUE, false, "resolved by hand"},
        {"BOGUS", OPS_REARM_REQUEUE, false, "unknown"},
    };
    return cr_make_param_array(struct status_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct status_case *c, rearm, by_status_and_mode)
{
    struct ops_rearm_input in = input(c->status, (enum ops_rearm_mode)c->mode);
    in.lease_owner = "retry-consumer@host:1";
    struct ops_rearm_plan p;
    ops_rearm_decide(&in, &p);
    cr_expect_eq(p.ok, c->ok, "%s mode %d: %s", c->status, c->mode, p.why);
    cr_expect_not_null(strstr(p.why, c->words), "%s: want \"%s\" in: %s", c->status, c->words,
                       p.why);
}

ParameterizedTestParameters(resolve, by_status)
{
    static struct status_case cases[] = {
        {"SCHEDULED", 0, true, "resolve"},
        {"FAILED", 0, true, "resolve"},
        {"EXHAUSTED", 0, true, "resolve"},
        {"IN_FLIGHT", 0, false, "may be refunding it right now"},
        {"SUCCEEDED", 0, false, "already succeeded"},
        {"ALREADY_REFUNDED", 0, false, "already succeeded"},
        {"MANUALLY_RESOLVED", 0, false, "resolved by hand"},
    };
    return cr_make_param_array(struct status_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct status_case *c, resolve, by_status)
{
    char why[512];
    bool ok = ops_resolve_check("r-1", c->status, "w-1", why, sizeof(why));
    cr_expect_eq(ok, c->ok, "%s: %s", c->status, why);
    cr_expect_not_null(strstr(why, c->words), "%s: want \"%s\" in: %s", c->status, c->words, why);
}

Test(next_step, says_when_and_what_for_each_state)
{
    char buf[1024];
    struct request_row row = {0};
    row.request_id = "r-1";
    row.status = "SCHEDULED";
    row.attempts = 2;
    row.budget_base = 0;
    row.max_attempts = 5;
    row.next_attempt_at_ms = NOW + 90 * 1000;
    row.deadline_at_ms = NOW + HOUR;
    row.key_expires_at_ms = NOW + DAY;

    ops_next_step_words(&row, NOW, LEASE, buf, sizeof(buf));
    cr_expect_not_null(strstr(buf, "attempt 3 (3 of 5"), "%s", buf);
    cr_expect_not_null(strstr(buf, "in 1m 30s"), "%s", buf);

    ops_next_step_words(&row, NOW + 10 * MINUTE, LEASE, buf, sizeof(buf));
    cr_expect_not_null(strstr(buf, "due since"), "%s", buf);
    cr_expect_not_null(strstr(buf, "cancelctl status"), "overdue points at status: %s", buf);

    row.status = "IN_FLIGHT";
    row.lease_owner = "retry-consumer@h:7";
    ops_next_step_words(&row, NOW, LEASE, buf, sizeof(buf));
    cr_expect_not_null(strstr(buf, "retry-consumer@h:7"), "%s", buf);
    cr_expect_not_null(strstr(buf, "reconciler"), "%s", buf);

    row.status = "EXHAUSTED";
    row.last_error_code = "PROVIDER_ERROR";
    ops_next_step_words(&row, NOW, LEASE, buf, sizeof(buf));
    cr_expect_not_null(strstr(buf, "PROVIDER_ERROR"), "%s", buf);
    cr_expect_not_null(strstr(buf, "cancelctl requeue r-1"), "%s", buf);
    cr_expect_not_null(strstr(buf, "cancelctl resolve r-1"), "%s", buf);

    row.status = "SUCCEEDED";
    ops_next_step_words(&row, NOW, LEASE, buf, sizeof(buf));
    cr_expect_not_null(strstr(buf, "nothing"), "%s", buf);
}

Test(operator, flag_then_env_then_user_at_host)
{
    char buf[OPS_OPERATOR_MAX + 1];
    ops_operator_identity("alice", "bob", "carol", "h1", buf, sizeof(buf));
    cr_expect_str_eq(buf, "alice");
    ops_operator_identity(NULL, "bob", "carol", "h1", buf, sizeof(buf));
    cr_expect_str_eq(buf, "bob");
    ops_operator_identity("", "", "carol", "h1", buf, sizeof(buf));
    cr_expect_str_eq(buf, "carol@h1");
    ops_operator_identity(NULL, NULL, "carol", NULL, buf, sizeof(buf));
    cr_expect_str_eq(buf, "carol@unknown-host");
    ops_operator_identity(NULL, NULL, NULL, "h1", buf, sizeof(buf));
    cr_expect_str_eq(buf, "unknown");
}

Test(operator, control_characters_and_length_are_tamed)
{
    char buf[OPS_OPERATOR_MAX + 1], long_name[400];
    ops_operator_identity("eve\nadmin\t", NULL, NULL, NULL, buf, sizeof(buf));
    cr_expect_str_eq(buf, "eve admin ");
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    ops_operator_identity(long_name, NULL, NULL, NULL, buf, sizeof(buf));
    cr_expect_eq(strlen(buf), OPS_OPERATOR_MAX);
}

Test(span, human_units)
{
    char b[32];
    ops_format_span(850, b, sizeof(b));
    cr_expect_str_eq(b, "850ms");
    ops_format_span(12 * 1000, b, sizeof(b));
    cr_expect_str_eq(b, "12s");
    ops_format_span(4 * MINUTE + 10000, b, sizeof(b));
    cr_expect_str_eq(b, "4m 10s");
    ops_format_span(-(2 * HOUR + 5 * MINUTE), b, sizeof(b));
    cr_expect_str_eq(b, "2h 5m");
    ops_format_span(3 * DAY + 4 * HOUR, b, sizeof(b));
    cr_expect_str_eq(b, "3d 4h");
}

/* ---- dead letters ---- */

static const char exhausted_value[] =
    "{\"specversion\":\"1.0\",\"id\":\"e-1\",\"source\":\"/x\",\"type\":"
    "\"payments.cancel.failed.v1\",\"data\":{\"requestId\":\"r-1\",\"gateway\":\"toss\"}}";

static void letter(struct ops_dlq_letter *l, const char *reason, const char *request_id,
                   const char *at, const char *value)
{
    json_t *h = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", DLQ_HEADER_REASON, reason,
                          DLQ_HEADER_ERROR, "boom", DLQ_HEADER_ORIGINAL_TOPIC,
                          "payments.cancel.failed", DLQ_HEADER_ORIGINAL_PARTITION, "2",
                          DLQ_HEADER_ORIGINAL_OFFSET, "41", DLQ_HEADER_AT, at);
    if (request_id != NULL)
        json_object_set_new(h, DLQ_HEADER_REQUEST_ID, json_string(request_id));
    cr_assert(ops_dlq_letter_init(l, "payments.cancel.dlq", 0, 7, NOW, request_id,
                                  request_id ? strlen(request_id) : 0, value,
                                  value ? strlen(value) : 0, h));
}

Test(dlq_letter, reads_headers_and_the_gateway_of_the_original_event)
{
    struct ops_dlq_letter l;
    letter(&l, "EXHAUSTED", "r-1", "2026-11-20T09:00:00.000Z", exhausted_value);
    cr_expect_str_eq(l.reason, "EXHAUSTED");
    cr_expect_str_eq(l.request_id, "r-1");
    cr_expect_str_eq(l.original_topic, "payments.cancel.failed");
    cr_expect_eq(l.original_partition, 2);
    cr_expect_eq(l.original_offset, 41);
    cr_expect_str_eq(l.gateway, "toss");
    cr_expect_eq(l.at_ms, NOW - 15 * MINUTE);
    cr_expect_str_eq(l.key, "r-1");
    ops_dlq_letter_clear(&l);
}

Test(dlq_letter, unparseable_value_and_missing_headers_are_empty_not_crashes)
{
    struct ops_dlq_letter l;
    cr_assert(ops_dlq_letter_init(&l, "dlq", 0, 1, 0, NULL, 0, "\xff{not json", 10, NULL));
    cr_expect_str_eq(l.reason, "");
    cr_expect_str_eq(l.request_id, "");
    cr_expect_str_eq(l.gateway, "");
    cr_expect_eq(l.at_ms, 0);
    cr_expect_null(l.key);
    json_t *j = ops_dlq_letter_json(&l, 100);
    cr_assert_not_null(j);
    cr_expect(json_is_string(json_object_get(j, "value")), "always valid JSON text");
    json_decref(j);
    ops_dlq_letter_clear(&l);
    ops_dlq_letter_clear(&l); /* twice is harmless */
}

Test(dlq_letter, gateway_name_must_look_like_one)
{
    char gw[40];
    ops_dlq_gateway_of("{\"data\":{\"gateway\":\"Toss Payments!\"}}", 37, gw, sizeof(gw));
    cr_expect_str_eq(gw, "");
    ops_dlq_gateway_of("{\"data\":{\"gateway\":\"stripe\"}}", 29, gw, sizeof(gw));
    cr_expect_str_eq(gw, "stripe");
}

struct filter_case {
    char request_id[32];
    char reasons[64];
    char gateway[16];
    long long since, until;
    bool match;
};

ParameterizedTestParameters(dlq_filter, selects_exactly)
{
    /* The letter: EXHAUSTED, r-1, toss, at NOW - 15 min. */
    static struct filter_case cases[] = {
        {"", "", "", 0, 0, true},
        {"r-1", "", "", 0, 0, true},
        {"r-10", "", "", 0, 0, false},
        {"r-", "", "", 0, 0, false},
        {"", "EXHAUSTED", "", 0, 0, true},
        {"", "FAILED,EXHAUSTED", "", 0, 0, true},
        {"", "FAILED, EXHAUSTED ", "", 0, 0, true},
        {"", "FAILED", "", 0, 0, false},
        {"", "EXHAUSTE", "", 0, 0, false},
        {"", "", "toss", 0, 0, true},
        {"", "", "stripe", 0, 0, false},
        {"", "", "", NOW - HOUR, 0, true},
        {"", "", "", NOW - 15 * MINUTE, 0, true},
        {"", "", "", NOW - 15 * MINUTE + 1, 0, false},
        {"", "", "", 0, NOW - 15 * MINUTE, false},
        {"", "", "", 0, NOW - 15 * MINUTE + 1, true},
        {"r-1", "EXHAUSTED", "toss", NOW - HOUR, NOW, true},
        {"r-1", "EXHAUSTED", "stripe", NOW - HOUR, NOW, false},
    };
    return cr_make_param_array(struct filter_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct filter_case *c, dlq_filter, selects_exactly)
{
    struct ops_dlq_letter l;
    struct ops_dlq_filter f = {0};
    letter(&l, "EXHAUSTED", "r-1", "2026-11-20T09:00:00.000Z", exhausted_value);
    snprintf(f.request_id, sizeof(f.request_id), "%s", c->request_id);
    snprintf(f.reasons, sizeof(f.reasons), "%s", c->reasons);
    snprintf(f.gateway, sizeof(f.gateway), "%s", c->gateway);
    f.since_ms = c->since;
    f.until_ms = c->until;
    cr_expect_eq(ops_dlq_filter_match(&f, &l), c->match,
                 "id=%s reasons=%s gw=%s since=%lld "
                 "until=%lld",
                 c->request_id, c->reasons, c->gateway, c->since, c->until);
    ops_dlq_letter_clear(&l);
}

Test(dlq_filter, check_refuses_unknown_reasons_and_empty_ranges)
{
    char err[256];
    struct ops_dlq_filter f = {0};
    snprintf(f.reasons, sizeof(f.reasons), "EXHAUSTED,NOPE");
    cr_expect_not(ops_dlq_filter_check(&f, err, sizeof(err)));
    cr_expect_not_null(strstr(err, "NOPE"), "%s", err);
    snprintf(f.reasons, sizeof(f.reasons), "EXHAUSTED, PARSE_ERROR");
    cr_expect(ops_dlq_filter_check(&f, err, sizeof(err)), "%s", err);
    f.since_ms = NOW;
    f.until_ms = NOW;
    cr_expect_not(ops_dlq_filter_check(&f, err, sizeof(err)));
}

Test(dlq_filter, json_names_only_what_is_set)
{
    struct ops_dlq_filter f = {0};
    snprintf(f.reasons, sizeof(f.reasons), "EXHAUSTED");
    f.since_ms = NOW;
    json_t *j = ops_dlq_filter_json(&f);
    cr_expect_eq(json_object_size(j), 2);
    cr_expect_str_eq(json_string_value(json_object_get(j, "since")), "2026-11-20T09:15:00.000Z");
    json_decref(j);
}

Test(parse_time, rfc3339_or_a_duration_ago)
{
    int64_t t = 0;
    cr_expect(ops_parse_time("2026-11-20T09:00:00Z", NOW, &t));
    cr_expect_eq(t, NOW - 15 * MINUTE);
    cr_expect(ops_parse_time("2h", NOW, &t));
    cr_expect_eq(t, NOW - 2 * HOUR);
    cr_expect(ops_parse_time("1h30m", NOW, &t));
    cr_expect_eq(t, NOW - 90 * MINUTE);
    cr_expect_not(ops_parse_time("yesterday", NOW, &t));
    cr_expect_not(ops_parse_time("", NOW, &t));
    cr_expect_not(ops_parse_time("-2h", NOW, &t));
}

/* ---- replay routing ---- */

Test(replay, reasons_that_rearm_and_reasons_that_republish)
{
    cr_expect(ops_replay_reason_rearms("FAILED"));
    cr_expect(ops_replay_reason_rearms("EXHAUSTED"));
    cr_expect(ops_replay_reason_rearms("CONFIG_FAULT"));
    /* A mismatch names a request, never bytes to re-publish: re-publishing a
     * CancelFailed whose requestId exists would be deduplicated into nothing. */
    cr_expect(ops_replay_reason_rearms("RECONCILE_MISMATCH"));
    cr_expect_not(ops_replay_reason_rearms("PARSE_ERROR"));
    cr_expect_not(ops_replay_reason_rearms("SCHEMA_VIOLATION"));
    cr_expect_not(ops_replay_reason_rearms("UNKNOWN_GATEWAY"));
    cr_expect_not(ops_replay_reason_rearms("IDEMPOTENCY_CONFLICT"));
}

static const char config_yaml[] = "database: { dsn: \"host=127.0.0.1\" }\n"
                                  "kafka: { bootstrap.servers: \"127.0.0.1:9092\" }\n"
                                  "gateways:\n"
                                  "  toss: { kind: toss, secret_key: x }\n";

Test(replay, poison_goes_back_only_to_the_pipelines_own_input_topics)
{
    char err[512], target[256], why[512];
    struct config *cfg = config_load_string("test.yaml", config_yaml, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    struct ops_dlq_letter l;

    letter(&l, "UNKNOWN_GATEWAY", "r-9", "2026-11-20T09:00:00.000Z", exhausted_value);
    cr_expect(ops_replay_target_check(cfg, &l, target, sizeof(target), why, sizeof(why)), "%s",
              why);
    cr_expect_str_eq(target, cfg->topics.cancel_failed.name);
    cr_expect_not_null(strstr(why, "key r-9"), "%s", why);
    ops_dlq_letter_clear(&l);

    json_t *h = json_pack("{s:s, s:s}", DLQ_HEADER_REASON, "PARSE_ERROR", DLQ_HEADER_ORIGINAL_TOPIC,
                          "billing.invoices");
    cr_assert(ops_dlq_letter_init(&l, "dlq", 0, 3, 0, NULL, 0, "x", 1, h));
    cr_expect_not(ops_replay_target_check(cfg, &l, target, sizeof(target), why, sizeof(why)));
    cr_expect_not_null(strstr(why, "billing.invoices"), "%s", why);
    ops_dlq_letter_clear(&l);

    h = json_pack("{s:s}", DLQ_HEADER_REASON, "PARSE_ERROR");
    cr_assert(ops_dlq_letter_init(&l, "dlq", 0, 4, 0, NULL, 0, "x", 1, h));
    cr_expect_not(ops_replay_target_check(cfg, &l, target, sizeof(target), why, sizeof(why)));
    cr_expect_not_null(strstr(why, "dlq.original.topic"), "%s", why);
    ops_dlq_letter_clear(&l);
    config_free(cfg);
}

Test(lag, per_partition)
{
    cr_expect_eq(ops_lag_partition(10, 0, 15), 5);
    cr_expect_eq(ops_lag_partition(-1, 3, 15), 12, "no commit: from the beginning");
    cr_expect_eq(ops_lag_partition(2, 5, 15), 10, "committed before retention: from low");
    cr_expect_eq(ops_lag_partition(15, 0, 15), 0);
    cr_expect_eq(ops_lag_partition(20, 0, 15), 0, "never negative");
}
