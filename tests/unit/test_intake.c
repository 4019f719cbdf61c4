/*
 * intake_check_message: what the contract says about a message before any
 * database work. Config comes from the shipped local file.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"

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
