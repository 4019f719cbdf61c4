/*
 * intake_check_message: what the contract says about a message before any
 * database work. Config comes from the shipped local file.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/intake.h"

static struct config *cfg;

static void setup(void)
{
    char err[512];
    cfg = config_load("config/cancel-retry.yaml", err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
}

static void teardown(void)
{
    config_free(cfg);
}

TestSuite(intake, .init = setup, .fini = teardown);

#define EVENT(data)                                                                                \
    "{\"specversion\":\"1.0\",\"id\":\"e-1\",\"source\":\"/shop\","                                \
    "\"type\":\"payments.cancel.failed.v1\",\"time\":\"2026-11-20T09:15:02.123Z\","                \
    "\"subject\":\"r-1\",\"datacontenttype\":\"application/json\",\"data\":" data "}"

static const char valid[] =
    EVENT("{\"requestId\":\"r-1\",\"gateway\":\"toss\",\"paymentKey\":\"pk_1\",\"amount\":15000,"
          "\"currency\":\"KRW\",\"reason\":\"customer cancelled\"}");

static void check(const char *msg, struct intake_check *c)
{
    intake_check_message(cfg, msg, strlen(msg), c);
}

Test(intake, valid_event_is_accepted_with_its_gateway)
{
    struct intake_check c;
    check(valid, &c);
    cr_expect_null(c.dlq_reason, "refused: %s", c.error);
    cr_expect_str_eq(c.cf.request_id, "r-1");
    cr_expect_eq(c.cf.amount, 15000);
    cr_assert_not_null(c.gateway);
    cr_expect_str_eq(c.gateway->name, "toss");
    intake_check_clear(&c);
}

Test(intake, bytes_that_are_not_json_are_a_parse_error)
{
    struct intake_check c;
    check("{not json", &c);
    cr_expect_str_eq(c.dlq_reason, "PARSE_ERROR");
    cr_expect_neq(c.error[0], '\0');
    intake_check_clear(&c);
}

Test(intake, contract_violation_is_a_schema_violation_naming_the_field)
{
    struct intake_check c;
    check(EVENT("{\"requestId\":\"r-1\",\"gateway\":\"toss\",\"paymentKey\":\"pk_1\","
                "\"amount\":-5,\"currency\":\"KRW\",\"reason\":\"x\"}"),
          &c);
    cr_expect_str_eq(c.dlq_reason, "SCHEMA_VIOLATION");
    cr_expect_not_null(strstr(c.error, "amount"), "error does not name the field: %s", c.error);
    intake_check_clear(&c);
}

Test(intake, gateway_missing_from_the_config_is_unknown_gateway)
{
    struct intake_check c;
    check(EVENT("{\"requestId\":\"r-1\",\"gateway\":\"paypal\",\"paymentKey\":\"pk_1\","
                "\"amount\":5,\"currency\":\"USD\",\"reason\":\"x\"}"),
          &c);
    cr_expect_str_eq(c.dlq_reason, "UNKNOWN_GATEWAY");
    cr_expect_not_null(strstr(c.error, "paypal"));
    intake_check_clear(&c);
}

Test(intake, wrong_event_type_is_refused)
{
    struct intake_check c;
    const char *msg = "{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"/x\","
                      "\"type\":\"payments.cancel.outcome.v1\",\"data\":{}}";
    check(msg, &c);
    cr_expect_str_eq(c.dlq_reason, "SCHEMA_VIOLATION");
    intake_check_clear(&c);
}

/* ---- what surrounds a valid event: Kafka metadata, the event's time ---- */

/* 2026-12-01T00:00:00Z, the clock of these tests. */
#define NOW_MS 1796083200000LL

static void check_record(const char *msg, const char *key, int64_t timestamp_ms,
                         struct intake_check *c)
{
    struct kafka_record rec = {
        .topic = "payments.cancel.failed",
        .partition = 0,
        .offset = 7,
        .timestamp_ms = timestamp_ms,
        .key = key,
        .key_len = key != NULL ? strlen(key) : 0,
        .value = msg,
        .len = strlen(msg),
    };
    intake_check_record(cfg, &rec, NOW_MS, c);
}

Test(intake, record_with_plausible_metadata_is_accepted)
{
    struct intake_check c;
    check_record(valid, "r-1", NOW_MS - 3600 * 1000LL, &c);
    cr_expect_null(c.dlq_reason, "refused: %s", c.error);
    intake_check_clear(&c);
    /* No key and no timestamp (-1) are allowed: older producers. */
    check_record(valid, NULL, -1, &c);
    cr_expect_null(c.dlq_reason, "refused: %s", c.error);
    intake_check_clear(&c);
}

struct ts_case {
    long long timestamp_ms;
    char names[40]; /* what dlq.error must say */
};

ParameterizedTestParameters(intake, implausible_kafka_timestamp_is_a_schema_violation)
{
    static struct ts_case cases[] = {
        /* the CreateTime: beyond PostgreSQL's timestamptz (22008) */
        {9200000000000000000LL, "9200000000000000000"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
        {-2, "1969-12-31T23:59:59.998Z"},
        {0, "1970-01-01T00:00:00.000Z"},
        {946684799999LL, "1999-12-31T23:59:59.999Z"},
        /* more than a day ahead of the clock */
        {NOW_MS + 24 * 3600 * 1000LL + 1, "2026-12-02T00:00:00.001Z"},
        {253402300800000LL, "253402300800000"}, /* year 10000 */
    };
    return cr_make_param_array(struct ts_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct ts_case *tc, intake, implausible_kafka_timestamp_is_a_schema_violation)
{
    struct intake_check c;
    check_record(valid, "r-1", tc->timestamp_ms, &c);
    cr_expect_str_eq(c.dlq_reason, "SCHEMA_VIOLATION", "timestamp %lld accepted", tc->timestamp_ms);
    cr_expect_not_null(strstr(c.error, "Kafka timestamp"), "%s", c.error);
    cr_expect_not_null(strstr(c.error, tc->names), "%s does not name %s", c.error, tc->names);
    cr_expect_null(c.gateway);
    intake_check_clear(&c);
}

Test(intake, timestamp_at_the_edges_of_the_range_is_accepted)
{
    struct intake_check c;
    check_record(valid, "r-1", 946684800000LL, &c);
    cr_expect_null(c.dlq_reason, "%s", c.error);
    intake_check_clear(&c);
    check_record(valid, "r-1", NOW_MS + 24 * 3600 * 1000LL, &c);
    cr_expect_null(c.dlq_reason, "%s", c.error);
    intake_check_clear(&c);
}

#define EVENT_AT(time)                                                                             \
    "{\"specversion\":\"1.0\",\"id\":\"e-1\",\"source\":\"/shop\","                                \
    "\"type\":\"payments.cancel.failed.v1\",\"time\":\"" time "\","                                \
    "\"subject\":\"r-1\",\"datacontenttype\":\"application/json\",\"data\":"                       \
    "{\"requestId\":\"r-1\",\"gateway\":\"toss\",\"paymentKey\":\"pk_1\",\"amount\":15000,"        \
    "\"currency\":\"KRW\",\"reason\":\"customer cancelled\"}}"

Test(intake, event_time_out_of_range_is_a_schema_violation)
{
    static const char *const msgs[] = {
        EVENT_AT("0001-01-01T00:00:00Z"),
        EVENT_AT("1999-12-31T23:59:59Z"),
        EVENT_AT("9999-12-31T23:59:59.999Z"),
        EVENT_AT("2026-12-03T00:00:00Z"),
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        struct intake_check c;
        check_record(msgs[i], "r-1", NOW_MS, &c);
        cr_expect_str_eq(c.dlq_reason, "SCHEMA_VIOLATION", "accepted %s", msgs[i]);
        cr_expect_not_null(strstr(c.error, "attribute \"time\""), "%s", c.error);
        intake_check_clear(&c);
    }
}

Test(intake, kafka_key_other_than_the_request_id_is_a_schema_violation)
{
    struct intake_check c;
    check_record(valid, "r-2", NOW_MS, &c);
    cr_expect_str_eq(c.dlq_reason, "SCHEMA_VIOLATION");
    cr_expect_not_null(strstr(c.error, "Kafka key \"r-2\""), "%s", c.error);
    intake_check_clear(&c);
    /* A prefix is not the key either; bytes that are not text are shown as '?'. */
    check_record(valid, "r-", NOW_MS, &c);
    cr_expect_str_eq(c.dlq_reason, "SCHEMA_VIOLATION");
    intake_check_clear(&c);
    check_record(valid, "r-1\xff\r\n", NOW_MS, &c);
    cr_expect_str_eq(c.dlq_reason, "SCHEMA_VIOLATION");
    cr_expect_not_null(strstr(c.error, "r-1?  "), "%s", c.error);
    intake_check_clear(&c);
}

Test(intake, metadata_rule_wins_over_unknown_gateway)
{
    struct intake_check c;
    check_record(EVENT("{\"requestId\":\"r-1\",\"gateway\":\"paypal\",\"paymentKey\":\"pk_1\","
                       "\"amount\":5,\"currency\":\"USD\",\"reason\":\"x\"}"),
                 "r-1", 9200000000000000000LL, &c);
    cr_expect_str_eq(c.dlq_reason, "SCHEMA_VIOLATION");
    intake_check_clear(&c);
}

Test(intake, oversized_event_is_refused_before_parsing)
{
    size_t n = INTAKE_MAX_EVENT_BYTES + 1;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, ' ', n);
    big[n] = '\0';
    memcpy(big, valid, strlen(valid)); /* valid JSON followed by blanks */
    struct intake_check c;
    check_record(big, "r-1", NOW_MS, &c);
    cr_expect_str_eq(c.dlq_reason, "SCHEMA_VIOLATION");
    cr_expect_not_null(strstr(c.error, "65537 bytes"), "%s", c.error);
    intake_check_clear(&c);
    big[n - 1] = '\0'; /* exactly the limit: parsed as usual */
    check_record(big, "r-1", NOW_MS, &c);
    cr_expect_null(c.dlq_reason, "%s", c.error);
    intake_check_clear(&c);
    free(big);
}
