#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <string.h>

#include "kafka/kafka.h"

struct ccase {
    rd_kafka_resp_err_t err;
    enum kafka_error_class want;
};

ParameterizedTestParameters(kafka, classifies_errors)
{
    static struct ccase cases[] = {
        {RD_KAFKA_RESP_ERR__FATAL, KAFKA_ERR_FATAL},
        {RD_KAFKA_RESP_ERR__AUTHENTICATION, KAFKA_ERR_FATAL},
        {RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, KAFKA_ERR_FATAL},
        {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, KAFKA_ERR_FATAL},
        {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, KAFKA_ERR_PERMANENT},
        {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, KAFKA_ERR_PERMANENT},
        {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, KAFKA_ERR_PERMANENT},
        {RD_KAFKA_RESP_ERR__TRANSPORT, KAFKA_ERR_TRANSIENT},
        {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, KAFKA_ERR_TRANSIENT},
        {RD_KAFKA_RESP_ERR__TIMED_OUT, KAFKA_ERR_TRANSIENT},
        {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, KAFKA_ERR_TRANSIENT},
        {RD_KAFKA_RESP_ERR__QUEUE_FULL, KAFKA_ERR_TRANSIENT},
        {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, KAFKA_ERR_TRANSIENT},
        {RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, KAFKA_ERR_TRANSIENT},
    };
    return cr_make_param_array(struct ccase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct ccase *c, kafka, classifies_errors)
{
    enum kafka_error_class got = kafka_classify(c->err);
    cr_expect_eq(got, c->want, "%s -> %s, want %s", rd_kafka_err2name(c->err),
                 kafka_error_class_name(got), kafka_error_class_name(c->want));
}

/* A config with just a kafka: section, built by hand (no YAML needed). */
static void make_cfg(struct config *cfg, struct config_kv *kv, size_t n)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->path = "test.yaml";
    cfg->kafka.props = kv;
    cfg->kafka.nprops = n;
}

Test(kafka, bad_property_names_file_line_and_key)
{
    struct config_kv kv[] = {{"bootstrap.servers", "127.0.0.1:1", 10},
                             {"no.such.property", "1", 11}};
    struct config cfg;
    char err[512];
    make_cfg(&cfg, kv, 2);
    rd_kafka_conf_t *conf = kafka_conf_new(&cfg, err, sizeof(err));
    cr_assert_null(conf);
    cr_expect(strncmp(err, "test.yaml:11: kafka.no.such.property: ", 38) == 0, "%s", err);
}

Test(kafka, bad_value_names_file_line_and_key)
{
    struct config_kv kv[] = {{"socket.timeout.ms", "soon", 4}};
    struct config cfg;
    char err[512];
    make_cfg(&cfg, kv, 1);
    cr_assert_null(kafka_conf_new(&cfg, err, sizeof(err)));
    cr_expect(strncmp(err, "test.yaml:4: kafka.socket.timeout.ms: ", 38) == 0, "%s", err);
}

static void expect_prop(rd_kafka_t *rk, const char *key, const char *want)
{
    char buf[256];
    size_t size = sizeof(buf);
    cr_assert_eq(rd_kafka_conf_get(rd_kafka_conf(rk), key, buf, &size), RD_KAFKA_CONF_OK, "%s",
                 key);
    cr_expect_str_eq(buf, want, "%s=%s, want %s", key, buf, want);
}

Test(kafka, consumer_commits_only_when_told)
{
    /* The map tries to turn auto-commit on; the consumer must not obey. */
    struct config_kv kv[] = {{"bootstrap.servers", "127.0.0.1:1", 1},
                             {"enable.auto.commit", "true", 2},
                             {"auto.offset.reset", "latest", 3}};
    struct config cfg;
    char err[512];
    make_cfg(&cfg, kv, 3);
    rd_kafka_t *rk = kafka_consumer_new(&cfg, "g1", NULL, NULL, NULL, err, sizeof(err));
    cr_assert_not_null(rk, "%s", err);
    expect_prop(rk, "group.id", "g1");
    expect_prop(rk, "enable.auto.commit", "false");
    expect_prop(rk, "enable.auto.offset.store", "false");
    /* auto.offset.reset is a default only: the map's choice stands. */
    expect_prop(rk, "auto.offset.reset", "largest"); /* librdkafka's name for latest */
    kafka_destroy(rk);
}

Test(kafka, producer_is_idempotent)
{
    struct config_kv kv[] = {{"bootstrap.servers", "127.0.0.1:1", 1}, {"acks", "1", 2}};
    struct config cfg;
    char err[512];
    make_cfg(&cfg, kv, 2);
    rd_kafka_t *rk = kafka_producer_new(&cfg, NULL, NULL, NULL, err, sizeof(err));
    cr_assert_not_null(rk, "%s", err);
    expect_prop(rk, "enable.idempotence", "true");
    expect_prop(rk, "acks", "-1"); /* librdkafka shows "all" as -1 */
    char text[128];
    cr_expect_eq(kafka_fatal_error_text(rk, text, sizeof(text)), RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_expect_str_eq(text, "");
    cr_expect_eq(kafka_producer_close(rk, 100), 0);
}
