/*
 * Unit tests of config_load: the shipped files, every key of the example,
 * ${VAR} expansion, the exact "file:line: key: reason" of each error kind and
 * per-gateway retry overrides. Runs from the repo root (meson workdir).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config_base.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

static struct config *load(const char *yaml, char *err, size_t errlen)
{
    err[0] = '\0';
    return config_load_string("t.yaml", yaml, err, errlen);
}

static void set_example_env(void)
{
    setenv("CANCEL_RETRY_DB_DSN", "host=db.internal dbname=cancel_retry password=pw", 1);
    setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9093,k2:9093", 1);
    setenv("KAFKA_SASL_USERNAME", "cancel-retry", 1);
    setenv("KAFKA_SASL_PASSWORD", "kafka-pw", 1);
    setenv("TOSS_SECRET_KEY", "live_sk_toss", 1);
    setenv("STRIPE_SECRET_KEY", "sk_live_stripe", 1);
    setenv("PORTONE_API_SECRET", "portone_live", 1);
    setenv("KAKAOPAY_SECRET_KEY", "kakaopay_live", 1);
    setenv("KAKAOPAY_CID", "CID0000001", 1);
    setenv("ADYEN_CHECKOUT_URL", "https://checkout-test.adyen.com/v71", 1);
    setenv("ADYEN_API_KEY", "adyen_live", 1);
    setenv("ADYEN_MERCHANT_ACCOUNT", "Merchant", 1);
    setenv("ADYEN_WEBHOOK_HMAC_KEY",
           "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056", 1);
    setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/main", 1);
    setenv("SLACK_WEBHOOK_URL_STRIPE", "https://hooks.slack.com/services/T0/B0/stripe", 1);
    unsetenv("TOSS_CA_FILE");
    unsetenv("STRIPE_CA_FILE");
    unsetenv("PORTONE_STORE_ID");
    unsetenv("WEBHOOK_LISTEN");
}

Test(config, local_file_loads_with_local_stack_defaults)
{
    char err[512];
    unsetenv("CR_PG_PORT");
    unsetenv("CR_KAFKA_BOOTSTRAP");
    unsetenv("CR_GATEWAY_SIM_PORT");
    unsetenv("TOSS_SECRET_KEY");
    unsetenv("STRIPE_SECRET_KEY");
    unsetenv("SLACK_WEBHOOK_URL");
    struct config *cfg = config_load("config/cancel-retry.yaml", err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->database.dsn,
                     "host=127.0.0.1 port=55432 dbname=cancel_retry user=postgres");
    cr_assert_eq(cfg->kafka.nprops >= 1, true);
    cr_expect_str_eq(cfg->kafka.props[0].key, "bootstrap.servers");
    cr_expect_str_eq(cfg->kafka.props[0].value, "127.0.0.1:59092");
    cr_assert_eq(cfg->ngateways, 5);
    const struct config_gateway *toss = config_gateway_find(cfg, "toss");
    const struct config_gateway *stripe = config_gateway_find(cfg, "stripe");
    cr_assert_not_null(toss);
    cr_assert_not_null(stripe);
    cr_expect_eq(toss->kind, GATEWAY_TOSS);
    cr_expect_eq(stripe->kind, GATEWAY_STRIPE);
    cr_expect_str_eq(toss->base_url, "http://127.0.0.1:28080");
    cr_expect_str_eq(stripe->base_url, "http://127.0.0.1:28080");
    cr_expect_str_eq(toss->secret_key, "test_sk_toss_local");
    cr_expect_str_eq(stripe->secret_key, "sk_test_stripe_local");
    cr_expect_eq(toss->retry.initial_delay_ms, 2 * SEC);
    cr_expect(cfg->alerts.slack.enabled);
    cr_expect_str_eq(cfg->alerts.slack.webhook_url, "http://127.0.0.1:58081/services/local");
    cr_expect_str_eq(cfg->metrics.listen, "127.0.0.1:0");
    cr_expect_str_eq(cfg->path, "config/cancel-retry.yaml");
    config_free(cfg);
}

Test(config, local_file_follows_port_variables)
{
    char err[512];
    setenv("CR_PG_PORT", "6543", 1);
    setenv("CR_KAFKA_BOOTSTRAP", "127.0.0.1:9092", 1);
    setenv("CR_GATEWAY_SIM_PORT", "18080", 1);
    setenv("TOSS_SECRET_KEY", "from_env", 1);
    struct config *cfg = config_load("config/cancel-retry.yaml", err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->database.dsn,
                     "host=127.0.0.1 port=6543 dbname=cancel_retry user=postgres");
    cr_expect_str_eq(cfg->kafka.props[0].value, "127.0.0.1:9092");
    cr_expect_str_eq(config_gateway_find(cfg, "stripe")->base_url, "http://127.0.0.1:18080");
    cr_expect_str_eq(config_gateway_find(cfg, "toss")->secret_key, "from_env");
    config_free(cfg);
}

Test(config, example_file_needs_its_secrets)
{
    char err[512];
    set_example_env();
    unsetenv("STRIPE_SECRET_KEY");
    struct config *cfg = config_load("config/cancel-retry.example.yaml", err, sizeof(err));
    cr_assert_null(cfg);
    cr_expect(strstr(err, "gateways.stripe.secret_key: environment variable STRIPE_SECRET_KEY "
                          "is not set") != NULL,
              "%s", err);
}

static void expect_codes(const struct retry_policy *rp, const char *const *codes, size_t n)
{
    cr_assert_eq(rp->n_non_retryable_codes, n);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(rp->non_retryable_codes[i], codes[i]);
}

/* The breaker's defaults, which the example file also states. */
static void expect_default_breaker(const struct config_breaker *b)
{
    cr_expect(b->enabled);
    cr_expect_float_eq(b->failure_ratio, 0.5, 1e-9);
    cr_expect_eq(b->min_requests, 20);
    cr_expect_eq(b->window_ms, 30 * SEC);
    cr_expect_eq(b->open_ms, 30 * SEC);
    cr_expect_eq(b->half_open_probes, 3);
}

/* The defaults of the consumers, relay and reconcile sections, which the
 * example file also states as they are. */
static void expect_default_services(const struct config *cfg)
{
    cr_expect_str_eq(cfg->consumers.intake.group_id, "cancel-retry-intake");
    cr_expect_eq(cfg->consumers.intake.batch_size, 500);
    cr_expect_eq(cfg->consumers.intake.batch_window_ms, 2);
    cr_expect_str_eq(cfg->consumers.retry.group_id, "cancel-retry-retry");
    cr_expect_eq(cfg->consumers.retry.max_in_flight, 32);
    cr_expect_eq(cfg->consumers.retry.lease_ms, 2 * MIN);
    cr_expect_str_eq(cfg->consumers.alert.group_id, "cancel-retry-alert");

    cr_expect_eq(cfg->relay.batch_size, 500);
    cr_expect_eq(cfg->relay.poll_interval_ms, 5 * SEC);
    cr_expect_eq(cfg->relay.retention_ms, 7 * DAY);
    cr_expect_eq(cfg->relay.reconcile_interval_ms, 30 * SEC);
    cr_expect_eq(cfg->relay.flush_timeout_ms, 10 * SEC);
    cr_expect_eq(cfg->relay.leader_lease_ms, 10 * SEC);

    cr_expect(cfg->reconcile.enabled);
    cr_expect_eq(cfg->reconcile.interval_ms, HOUR);
    cr_expect_eq(cfg->reconcile.window_ms, 24 * HOUR);
    cr_expect_float_eq(cfg->reconcile.rate_per_second, 5.0, 1e-9);
}

Test(config, example_file_every_key)
{
    char err[512];
    set_example_env();
    struct config *cfg = config_load("config/cancel-retry.example.yaml", err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);

    cr_expect_eq(cfg->log_level, LOG_INFO);

    cr_expect_str_eq(cfg->database.dsn, "host=db.internal dbname=cancel_retry password=pw");
    cr_expect_eq(cfg->database.connect_timeout_ms, 5 * SEC);
    cr_expect_eq(cfg->database.reconnect_min_ms, 200);
    cr_expect_eq(cfg->database.reconnect_max_ms, 30 * SEC);
    cr_expect_eq(cfg->database.statement_timeout_ms, 30 * SEC);

    static const char *const kafka[][2] = {
        {"bootstrap.servers", "k1:9093,k2:9093"}, {"client.id", "cancel-retry"},
        {"security.protocol", "SASL_SSL"},        {"sasl.mechanisms", "SCRAM-SHA-512"},
        {"sasl.username", "cancel-retry"},        {"sasl.password", "kafka-pw"},
        {"socket.keepalive.enable", "true"},      {"session.timeout.ms", "30000"},
    };
    cr_assert_eq(cfg->kafka.nprops, sizeof(kafka) / sizeof(kafka[0]));
    for (size_t i = 0; i < cfg->kafka.nprops; i++) {
        cr_expect_str_eq(cfg->kafka.props[i].key, kafka[i][0]);
        cr_expect_str_eq(cfg->kafka.props[i].value, kafka[i][1]);
        cr_expect_gt(cfg->kafka.props[i].line, 0);
    }
    cr_expect_lt(cfg->kafka.props[0].line, cfg->kafka.props[1].line);

    const struct config_topics *t = &cfg->topics;
    cr_expect_str_eq(t->cancel_failed.name, "payments.cancel.failed");
    cr_expect_eq(t->cancel_failed.partitions, 12);
    cr_expect_eq(t->cancel_failed.replication_factor, 3);
    cr_expect_str_eq(t->retry.name, "payments.cancel.retry");
    cr_expect_eq(t->retry.partitions, 24);
    cr_expect_eq(t->retry.replication_factor, 3);
    cr_expect_str_eq(t->outcome.name, "payments.cancel.outcome");
    cr_expect_eq(t->outcome.partitions, 12);
    cr_expect_eq(t->outcome.replication_factor, 3);
    cr_expect_str_eq(t->dlq.name, "payments.cancel.dlq");
    cr_expect_eq(t->dlq.partitions, 3);
    cr_expect_eq(t->dlq.replication_factor, 3);

    expect_default_services(cfg);

    const char *const top_codes[] = {"INVALID_API_KEY", "UNAUTHORIZED_KEY", "FORBIDDEN_REQUEST"};
    cr_expect_eq(cfg->retry.max_attempts, 8);
    cr_expect_eq(cfg->retry.initial_delay_ms, 30 * SEC);
    cr_expect_float_eq(cfg->retry.backoff_coefficient, 2.0, 1e-9);
    cr_expect_eq(cfg->retry.max_delay_ms, 30 * MIN);
    cr_expect_eq(cfg->retry.jitter, JITTER_FULL);
    cr_expect_eq(cfg->retry.deadline_ms, 12 * HOUR);
    expect_codes(&cfg->retry, top_codes, 3);

    cr_assert_eq(cfg->ngateways, 5);
    const struct config_gateway *g = &cfg->gateways[0];
    cr_expect_str_eq(g->name, "toss");
    cr_expect_eq(g->kind, GATEWAY_TOSS);
    cr_expect_str_eq(g->base_url, "https://api.tosspayments.com");
    cr_expect_str_eq(g->secret_key, "live_sk_toss");
    cr_expect_eq(g->connect_timeout_ms, 3 * SEC);
    cr_expect_eq(g->timeout_ms, 10 * SEC);
    cr_expect_eq(g->idempotency_key_ttl_ms, 15 * DAY);
    cr_expect(g->tls_verify);
    cr_expect_null(g->ca_file);
    cr_expect(g->keep_alive);
    cr_expect_eq(g->keep_alive_idle_ms, 2 * SEC);
    cr_expect_eq(g->max_connections, 32, "consumers.retry.max_in_flight");
    cr_expect_float_eq(g->rate_limit.per_second, 20.0, 1e-9);
    cr_expect_eq(g->rate_limit.burst, 10);
    expect_default_breaker(&g->breaker);
    cr_expect_eq(g->retry.max_attempts, 12);
    cr_expect_eq(g->retry.initial_delay_ms, 30 * SEC);
    cr_expect_float_eq(g->retry.backoff_coefficient, 2.0, 1e-9);
    cr_expect_eq(g->retry.max_delay_ms, 2 * HOUR);
    cr_expect_eq(g->retry.jitter, JITTER_FULL);
    cr_expect_eq(g->retry.deadline_ms, 3 * DAY);
    expect_codes(&g->retry, top_codes, 3);

    g = &cfg->gateways[1];
    const char *const stripe_codes[] = {"charge_disputed", "expired_or_canceled_card"};
    cr_expect_str_eq(g->name, "stripe");
    cr_expect_eq(g->kind, GATEWAY_STRIPE);
    cr_expect_str_eq(g->base_url, "https://api.stripe.com");
    cr_expect_str_eq(g->secret_key, "sk_live_stripe");
    cr_expect_eq(g->connect_timeout_ms, 3 * SEC);
    cr_expect_eq(g->timeout_ms, 30 * SEC);
    cr_expect_eq(g->idempotency_key_ttl_ms, 24 * HOUR);
    cr_expect(g->tls_verify);
    cr_expect_null(g->ca_file);
    cr_expect_float_eq(g->rate_limit.per_second, 25.0, 1e-9);
    cr_expect_eq(g->rate_limit.burst, 10);
    expect_default_breaker(&g->breaker);
    cr_expect_eq(g->retry.max_attempts, 8);
    cr_expect_eq(g->retry.max_delay_ms, 30 * MIN);
    cr_expect_eq(g->retry.deadline_ms, 20 * HOUR);
    expect_codes(&g->retry, stripe_codes, 2);

    g = &cfg->gateways[2];
    cr_expect_str_eq(g->name, "portone");
    cr_expect_eq(g->kind, GATEWAY_PORTONE);
    cr_expect_str_eq(g->base_url, "https://api.portone.io");
    cr_expect_null(g->store_id, "an empty ${PORTONE_STORE_ID:-} leaves it unset");
    cr_expect_eq(g->timeout_ms, 65 * SEC);
    cr_expect_eq(g->idempotency_key_ttl_ms, 150 * MIN);
    cr_expect_eq(g->retry.deadline_ms, 12 * HOUR, "past the key: its balance guard carries it");
    g = &cfg->gateways[3];
    cr_expect_str_eq(g->name, "kakaopay");
    cr_expect_eq(g->kind, GATEWAY_KAKAOPAY);
    cr_expect_str_eq(g->cid, "CID0000001");
    cr_expect_eq(g->idempotency_key_ttl_ms, 0);
    g = &cfg->gateways[4];
    cr_expect_str_eq(g->name, "adyen");
    cr_expect_eq(g->kind, GATEWAY_ADYEN);
    cr_expect_str_eq(g->base_url, "https://checkout-test.adyen.com/v71");
    cr_expect_str_eq(g->merchant_account, "Merchant");
    cr_expect_eq(g->idempotency_key_ttl_ms, 7 * DAY);
    cr_expect_eq(g->retry.deadline_ms, 3 * DAY);

    const struct config_slack *s = &cfg->alerts.slack;
    cr_expect(s->enabled);
    cr_expect_str_eq(s->webhook_url, "https://hooks.slack.com/services/T0/B0/main");
    cr_assert_eq(s->n_statuses, 2);
    cr_expect_str_eq(s->statuses[0], "FAILED");
    cr_expect_str_eq(s->statuses[1], "EXHAUSTED");
    cr_expect_float_eq(s->rate_per_second, 1.0, 1e-9);
    cr_expect_eq(s->burst, 3);
    cr_expect_eq(s->digest_threshold, 10);
    cr_expect_eq(s->digest_window_ms, 60 * SEC);
    cr_expect_eq(s->timeout_ms, 10 * SEC);
    cr_assert_eq(s->nroutes, 1);
    cr_expect_str_eq(s->routes[0].gateway, "stripe");
    cr_expect_str_eq(s->routes[0].reason, "EXHAUSTED");
    cr_expect_str_eq(s->routes[0].webhook_url, "https://hooks.slack.com/services/T0/B0/stripe");

    cr_expect_str_eq(cfg->metrics.listen, "127.0.0.1:9100");
    config_free(cfg);
}

Test(config, example_ca_file_from_environment)
{
    char err[512];
    set_example_env();
    setenv("TOSS_CA_FILE", "/etc/ssl/toss-ca.pem", 1);
    struct config *cfg = config_load("config/cancel-retry.example.yaml", err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(config_gateway_find(cfg, "toss")->ca_file, "/etc/ssl/toss-ca.pem");
    cr_expect_null(config_gateway_find(cfg, "stripe")->ca_file);
    config_free(cfg);
}

Test(config, defaults_of_a_minimal_file)
{
    char err[512];
    struct config *cfg = load(BASE, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->log_level, LOG_INFO);
    cr_expect_eq(cfg->database.connect_timeout_ms, 5 * SEC);
    cr_expect_eq(cfg->database.reconnect_min_ms, 200);
    cr_expect_eq(cfg->database.reconnect_max_ms, 30 * SEC);
    cr_expect_eq(cfg->database.statement_timeout_ms, 30 * SEC);
    cr_expect_str_eq(cfg->topics.cancel_failed.name, "payments.cancel.failed");
    cr_expect_eq(cfg->topics.cancel_failed.partitions, 3);
    cr_expect_str_eq(cfg->topics.retry.name, "payments.cancel.retry");
    cr_expect_eq(cfg->topics.retry.partitions, 6);
    cr_expect_str_eq(cfg->topics.outcome.name, "payments.cancel.outcome");
    cr_expect_eq(cfg->topics.outcome.partitions, 3);
    cr_expect_str_eq(cfg->topics.dlq.name, "payments.cancel.dlq");
    cr_expect_eq(cfg->topics.dlq.partitions, 1);
    cr_expect_eq(cfg->topics.dlq.replication_factor, 1);
    expect_default_services(cfg);
    cr_expect_eq(cfg->retry.max_attempts, 5);
    cr_expect_eq(cfg->retry.initial_delay_ms, 30 * SEC);
    cr_expect_float_eq(cfg->retry.backoff_coefficient, 2.0, 1e-9);
    cr_expect_eq(cfg->retry.max_delay_ms, 30 * MIN);
    cr_expect_eq(cfg->retry.jitter, JITTER_FULL);
    cr_expect_eq(cfg->retry.deadline_ms, 12 * HOUR);
    cr_expect_eq(cfg->retry.n_non_retryable_codes, 0);
    const struct config_gateway *g = &cfg->gateways[0];
    cr_expect_str_eq(g->base_url, "https://api.tosspayments.com");
    cr_expect_eq(g->connect_timeout_ms, 3 * SEC);
    cr_expect_eq(g->timeout_ms, 10 * SEC);
    cr_expect_eq(g->idempotency_key_ttl_ms, CONFIG_TOSS_KEY_TTL_MS);
    cr_expect(g->tls_verify);
    cr_expect_null(g->ca_file);
    cr_expect(g->keep_alive);
    cr_expect_eq(g->keep_alive_idle_ms, 2 * SEC);
    cr_expect_eq(g->max_connections, 32);
    cr_expect_float_eq(g->rate_limit.per_second, 0.0, 1e-9);
    expect_default_breaker(&g->breaker);
    cr_expect_eq(g->retry.max_attempts, 5);
    cr_expect_not(cfg->alerts.slack.enabled);
    cr_expect_null(cfg->alerts.slack.webhook_url);
    cr_assert_eq(cfg->alerts.slack.n_statuses, 2);
    cr_expect_str_eq(cfg->alerts.slack.statuses[0], "FAILED");
    cr_expect_str_eq(cfg->alerts.slack.statuses[1], "EXHAUSTED");
    cr_expect_float_eq(cfg->alerts.slack.rate_per_second, 1.0, 1e-9);
    cr_expect_eq(cfg->alerts.slack.burst, 3);
    cr_expect_eq(cfg->alerts.slack.digest_threshold, 10);
    cr_expect_eq(cfg->alerts.slack.digest_window_ms, 60 * SEC);
    cr_expect_eq(cfg->alerts.slack.timeout_ms, 10 * SEC);
    cr_expect_eq(cfg->alerts.slack.nroutes, 0);
    cr_expect_null(cfg->metrics.listen);
    config_free(cfg);
}

Test(config, stripe_defaults_by_kind)
{
    char err[512];
    struct config *cfg =
        load(BASE "  stripe:\n    kind: stripe\n    secret_key: sk2\n", err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    const struct config_gateway *g = config_gateway_find(cfg, "stripe");
    cr_assert_not_null(g);
    cr_expect_str_eq(g->base_url, "https://api.stripe.com");
    cr_expect_eq(g->idempotency_key_ttl_ms, CONFIG_STRIPE_KEY_TTL_MS);
    cr_expect_str_eq(config_gateway_kind_name(g->kind), "stripe");
    cr_expect_str_eq(config_gateway_kind_name(GATEWAY_TOSS), "toss");
    cr_expect_null(config_gateway_find(cfg, "paypal"));
    cr_expect_null(config_gateway_find(cfg, NULL));
    config_free(cfg);
}

/* ---- ${VAR} expansion ---------------------------------------------------- */

/* The three kinds of issue 9: their documented defaults, and PortOne's
 * deadline beyond its 3 h key (its balance guard and inquiry carry it). */
Test(config, kind_defaults_of_the_other_gateways)
{
    char err[512];
    struct config *cfg = load("database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\n"
                              "retry:\n  deadline: 12h\ngateways:\n"
                              "  po:\n    kind: portone\n    secret_key: s\n"
                              "  kp:\n    kind: kakaopay\n    secret_key: s\n    cid: C\n"
                              "  ad:\n    kind: adyen\n    secret_key: s\n"
                              "    base_url: https://checkout-test.adyen.com/v71\n"
                              "    merchant_account: M\n",
                              err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    const struct config_gateway *po = config_gateway_find(cfg, "po");
    const struct config_gateway *kp = config_gateway_find(cfg, "kp");
    const struct config_gateway *ad = config_gateway_find(cfg, "ad");
    cr_expect_str_eq(po->base_url, "https://api.portone.io");
    cr_expect_eq(po->timeout_ms, 65 * 1000);
    cr_expect_eq(po->idempotency_key_ttl_ms, 150LL * 60 * 1000);
    cr_expect_eq(config_gateway_key_binding_ms(po), 0);
    cr_expect_null(po->store_id);
    cr_expect_str_eq(kp->base_url, "https://open-api.kakaopay.com");
    cr_expect_str_eq(kp->cid, "C");
    cr_expect_eq(kp->idempotency_key_ttl_ms, 0);
    cr_expect_eq(config_gateway_key_binding_ms(kp), 0);
    cr_expect_eq(ad->idempotency_key_ttl_ms, 7LL * 24 * 3600 * 1000);
    cr_expect_eq(config_gateway_key_binding_ms(ad), ad->idempotency_key_ttl_ms);
    cr_expect_eq(ad->timeout_ms, 30 * 1000);
    cr_expect_str_eq(ad->merchant_account, "M");
    cr_expect_str_eq(config_gateway_kind_name(GATEWAY_KAKAOPAY), "kakaopay");
    config_free(cfg);
}

Test(config, env_expansion_forms)
{
    char err[512];
    setenv("CR_T_HOST", "db.example", 1);
    setenv("CR_T_EMPTY", "", 1);
    unsetenv("CR_T_UNSET");
    struct config *cfg = load("database:\n"
                              "  dsn: host=${CR_T_HOST} port=${CR_T_UNSET:-5432} "
                              "x=${CR_T_EMPTY:-fallback} y=[${CR_T_UNSET:-}] cost=$$5 pa$word\n"
                              "kafka:\n"
                              "  bootstrap.servers: k:9092\n"
                              "  client.id: ${CR_T_EMPTY}-id\n"
                              "gateways:\n"
                              "  toss:\n"
                              "    kind: toss\n"
                              "    secret_key: sk\n",
                              err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->database.dsn,
                     "host=db.example port=5432 x=fallback y=[] cost=$5 pa$word");
    cr_expect_str_eq(cfg->kafka.props[1].value, "-id");
    config_free(cfg);
}

Test(config, env_unset_without_default_names_the_variable)
{
    char err[512];
    unsetenv("CR_T_MISSING");
    struct config *cfg =
        load(BASE "metrics:\n  listen: \"127.0.0.1:${CR_T_MISSING}\"\n", err, sizeof(err));
    cr_assert_null(cfg);
    cr_expect_str_eq(err,
                     "t.yaml:10: metrics.listen: environment variable CR_T_MISSING is not set");
}

Test(config, env_errors_never_echo_secrets)
{
    char err[512];
    setenv("CR_T_SECRET", "s3cr3t-value", 1);
    unsetenv("CR_T_MISSING");
    /* The default and the other variable's value may be secrets: neither is echoed. */
    struct config *cfg = load("database:\n"
                              "  dsn: \"password=${CR_T_SECRET} ${CR_T_NOPE:-default-pw} "
                              "${CR_T_MISSING}\"\n",
                              err, sizeof(err));
    cr_assert_null(cfg);
    cr_expect_str_eq(err, "t.yaml:2: database.dsn: environment variable CR_T_MISSING is not set");
    cr_expect_null(strstr(err, "s3cr3t"));
    cr_expect_null(strstr(err, "default-pw"));

    /* A later error in another key does not show the expanded secret either. */
    setenv("CR_T_TOSS_KEY", "live_sk_very_secret", 1);
    cfg = load("database:\n  dsn: host=db\nkafka:\n  bootstrap.servers: k:9092\n"
               "gateways:\n  toss:\n    kind: toss\n    secret_key: ${CR_T_TOSS_KEY}\n"
               "    timeout: soon\n",
               err, sizeof(err));
    cr_assert_null(cfg);
    cr_expect_null(strstr(err, "live_sk_very_secret"), "%s", err);

    /* An empty secret is refused without showing anything of it. */
    setenv("CR_T_EMPTY_KEY", "", 1);
    cfg = load("database:\n  dsn: host=db\nkafka:\n  bootstrap.servers: k:9092\n"
               "gateways:\n  toss:\n    kind: toss\n    secret_key: ${CR_T_EMPTY_KEY}\n",
               err, sizeof(err));
    cr_assert_null(cfg);
    cr_expect_str_eq(err, "t.yaml:8: gateways.toss.secret_key: secret must not be empty");
}

Test(config, env_bad_references)
{
    char err[512];
    struct config *cfg = load("database:\n  dsn: \"${CR_T_X:-no end\"\n", err, sizeof(err));
    cr_assert_null(cfg);
    cr_expect_str_eq(err,
                     "t.yaml:2: database.dsn: unterminated reference to CR_T_X: missing \"}\"");
    cfg = load("database:\n  dsn: \"${1X}\"\n", err, sizeof(err));
    cr_assert_null(cfg);
    cr_expect_str_eq(
        err,
        "t.yaml:2: database.dsn: invalid variable reference: \"${\" must be followed by a name");
    cfg = load("database:\n  dsn: \"${CR_T_X-y}\"\n", err, sizeof(err));
    cr_assert_null(cfg);
    cr_expect_str_eq(err, "t.yaml:2: database.dsn: invalid reference to CR_T_X: expected \"}\" or "
                          "\":-default}\" after the name");
}

/* Connections per gateway host follow the process's concurrency: a cap
 * below it would make refunds wait for a connection and spend their
 * timeout unsent. */
Test(config, gateway_connection_cap_is_the_retry_concurrency)
{
    char err[512];
    struct config *cfg = load("consumers:\n  retry:\n    max_in_flight: 200\n" BASE
                              "    keep_alive: false\n    keep_alive_idle: 30s\n",
                              err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->gateways[0].max_connections, 200);
    cr_expect_not(cfg->gateways[0].keep_alive);
    cr_expect_eq(cfg->gateways[0].keep_alive_idle_ms, 30 * SEC);
    config_free(cfg);
}

/* ---- error messages ------------------------------------------------------ */

struct ecase {
    char name[40];
    char yaml[640];
    char msg[400];
};

ParameterizedTestParameters(config, errors)
{
    static struct ecase cases[] = {
        {"unknown top-level key", BASE "bogus: 1\n", "t.yaml:9: bogus: unknown key"},
        {"unknown nested key", "database:\n  dsn: x\n  dsnn: y\n",
         "t.yaml:3: database.dsnn: unknown key"},
        {"duplicate key", BASE "relay:\n  batch_size: 1\n  batch_size: 2\n",
         "t.yaml:11: relay.batch_size: duplicate key (first at line 10)"},
        {"map where an integer belongs", BASE "relay:\n  batch_size:\n    a: 1\n",
         "t.yaml:10: relay.batch_size: expected an integer, got a map"},
        {"list where a string belongs", BASE "metrics:\n  listen: [a]\n",
         "t.yaml:10: metrics.listen: expected a string, got a sequence"},
        {"scalar where a section belongs", BASE "relay: fast\n",
         "t.yaml:9: relay: expected a map, got a string"},
        {"word for an integer", BASE "relay:\n  batch_size: abc\n",
         "t.yaml:10: relay.batch_size: invalid integer \"abc\""},
        {"bad number", BASE "retry:\n  backoff_coefficient: twice\n",
         "t.yaml:10: retry.backoff_coefficient: invalid number \"twice\""},
        {"bad boolean", BASE "    tls_verify: maybe\n",
         "t.yaml:9: gateways.toss.tls_verify: invalid boolean \"maybe\": must be true or false"},
        {"bad keep_alive", BASE "    keep_alive: sometimes\n",
         "t.yaml:9: gateways.toss.keep_alive: invalid boolean \"sometimes\": must be true or "
         "false"},
        {"keep_alive_idle under a second", BASE "    keep_alive_idle: 500ms\n",
         "t.yaml:9: gateways.toss.keep_alive_idle: 500ms is out of range: must be at least 1s "
         "and at most 10m"},
        {"bad duration", BASE "    timeout: 10x\n",
         "t.yaml:9: gateways.toss.timeout: invalid duration \"10x\": unit must be one of ms, s, "
         "m, h, d"},
        {"duration without unit", BASE "relay:\n  poll_interval: 30\n",
         "t.yaml:10: relay.poll_interval: invalid duration \"30\": unit must be one of ms, s, m, "
         "h, d"},
        {"integer below range", BASE "relay:\n  batch_size: 0\n",
         "t.yaml:10: relay.batch_size: 0 is out of range: must be at least 1 and at most 100000"},
        {"integer above range", BASE "topics:\n  retry:\n    partitions: 20000\n",
         "t.yaml:11: topics.retry.partitions: 20000 is out of range: must be at least 1 and at "
         "most 10000"},
        {"ratio of zero", BASE "    breaker:\n      failure_ratio: 0\n",
         "t.yaml:10: gateways.toss.breaker.failure_ratio: 0 is out of range: must be greater "
         "than 0 and at most 1"},
        {"coefficient below one", BASE "retry:\n  backoff_coefficient: 0.5\n",
         "t.yaml:10: retry.backoff_coefficient: 0.5 is out of range: must be at least 1 and at "
         "most 100"},
        {"max_attempts zero", BASE "retry:\n  max_attempts: 0\n",
         "t.yaml:10: retry.max_attempts: 0 is out of range: must be at least 1 and at most 1000"},
        {"duration below range", BASE "consumers:\n  retry:\n    lease: 500ms\n",
         "t.yaml:11: consumers.retry.lease: 500ms is out of range: must be at least 1s and at "
         "most 1d"},
        {"intake batch of zero", BASE "consumers:\n  intake:\n    batch_size: 0\n",
         "t.yaml:11: consumers.intake.batch_size: 0 is out of range: must be at least 1 and at "
         "most 10000"},
        {"intake batch window above range", BASE "consumers:\n  intake:\n    batch_window: 2s\n",
         "t.yaml:11: consumers.intake.batch_window: 2s is out of range: must be at least 0ms and "
         "at most 1s"},
        {"bad gateway kind",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  toss:\n"
         "    kind: tos\n    secret_key: sk\n",
         "t.yaml:7: gateways.toss.kind: invalid value \"tos\": must be one of toss, stripe, "
         "portone, kakaopay, adyen"},
        {"kakaopay without cid",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  kp:\n"
         "    kind: kakaopay\n    secret_key: sk\n",
         "t.yaml:6: gateways.kp.cid: required for kind kakaopay"},
        {"kakaopay has no key lifetime",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  kp:\n"
         "    kind: kakaopay\n    secret_key: sk\n    cid: TC0ONETIME\n"
         "    idempotency_key_ttl: 1h\n",
         "t.yaml:10: gateways.kp.idempotency_key_ttl: kakaopay has no idempotency key: its "
         "exactly-once is an inquiry before every retry, and no key lifetime applies"},
        {"adyen without base_url",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  ad:\n"
         "    kind: adyen\n    secret_key: sk\n    merchant_account: M\n",
         "t.yaml:6: gateways.ad.base_url: required for kind adyen: its API host is per account"},
        {"adyen without merchant_account",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  ad:\n"
         "    kind: adyen\n    secret_key: sk\n    base_url: http://a\n",
         "t.yaml:6: gateways.ad.merchant_account: required for kind adyen"},
        {"adyen key lifetime above the documented",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  ad:\n"
         "    kind: adyen\n    secret_key: sk\n    base_url: http://a\n"
         "    merchant_account: M\n    idempotency_key_ttl: 32d\n",
         "t.yaml:11: gateways.ad.idempotency_key_ttl: 32d is longer than the 31d "
         "idempotency-key lifetime that adyen documents"},
        {"account key of another kind",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  toss:\n"
         "    kind: toss\n    secret_key: sk\n    store_id: s\n",
         "t.yaml:9: gateways.toss.store_id: not a setting of kind toss"},
        {"reconcile window below interval", BASE "reconcile:\n  interval: 2h\n  window: 1h\n",
         "t.yaml:11: reconcile.window: window 1h is shorter than the interval 2h: requests that "
         "finish between two passes would never be checked"},
        {"reconcile default window below", BASE "reconcile:\n  interval: 2d\n",
         "t.yaml:10: reconcile.window: window 1d is shorter than the interval 2d: requests that "
         "finish between two passes would never be checked"},
        {"reconcile rate of zero", BASE "reconcile:\n  rate_per_second: 0\n",
         "t.yaml:10: reconcile.rate_per_second: 0 is out of range: must be greater than 0 and at "
         "most 1000"},
        {"bad jitter", BASE "retry:\n  jitter: half\n",
         "t.yaml:10: retry.jitter: invalid value \"half\": must be one of none, full"},
        {"bad log level", "log:\n  level: loud\n" BASE,
         "t.yaml:2: log.level: invalid value \"loud\": must be one of debug, info, warn, error"},
        {"bad slack status", BASE "alerts:\n  slack:\n    statuses: [FAILED, LOST]\n",
         "t.yaml:11: alerts.slack.statuses[1]: invalid value \"LOST\": must be one of FAILED, "
         "EXHAUSTED, SUCCEEDED, ALREADY_REFUNDED, MANUALLY_RESOLVED"},
        {"missing dsn", "database:\n  connect_timeout: 5s\nkafka:\n  bootstrap.servers: k\n",
         "t.yaml:1: database.dsn: missing required key"},
        {"missing database section", "kafka:\n  bootstrap.servers: k\n",
         "t.yaml:1: database.dsn: missing required key"},
        {"null dsn", "database:\n  dsn:\n", "t.yaml:2: database.dsn: missing required key"},
        {"missing bootstrap.servers", "database:\n  dsn: x\nkafka:\n  client.id: me\n",
         "t.yaml:3: kafka.bootstrap.servers: missing required key"},
        {"kafka map value", "database:\n  dsn: x\nkafka:\n  bootstrap:\n    servers: k\n",
         "t.yaml:4: kafka.bootstrap: expected a string, got a map"},
        {"missing gateway kind",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  toss:\n"
         "    secret_key: sk\n",
         "t.yaml:6: gateways.toss.kind: missing required key"},
        {"missing secret",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  toss:\n"
         "    kind: toss\n",
         "t.yaml:6: gateways.toss.secret_key: missing required key"},
        {"empty secret",
         "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways:\n  toss:\n"
         "    kind: toss\n    secret_key: \"\"\n",
         "t.yaml:8: gateways.toss.secret_key: secret must not be empty"},
        {"no gateways", "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\n",
         "t.yaml:1: gateways: at least one gateway must be configured"},
        {"empty gateways", "database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\ngateways: {}\n",
         "t.yaml:5: gateways: at least one gateway must be configured"},
        {"bad gateway name", BASE "  Toss:\n    kind: toss\n    secret_key: sk\n",
         "t.yaml:9: gateways.Toss: invalid gateway name: must be 1 to 32 characters of a-z, "
         "0-9, _ and -"},
        {"bad base_url", BASE "    base_url: api.tosspayments.com\n",
         "t.yaml:9: gateways.toss.base_url: invalid URL \"api.tosspayments.com\": must start "
         "with http:// or https://"},
        {"stripe deadline at key ttl",
         BASE "  stripe:\n    kind: stripe\n    secret_key: sk2\n    retry:\n"
              "      deadline: 24h\n",
         "t.yaml:13: gateways.stripe.retry.deadline: retry deadline 1d of gateway \"stripe\" "
         "must be shorter than its idempotency-key lifetime 1d: a retry after the key expired "
         "could refund twice"},
        {"deadline above a shortened ttl", BASE "    idempotency_key_ttl: 6h\n",
         "t.yaml:6: gateways.toss.retry.deadline: retry deadline 12h of gateway \"toss\" must be "
         "shorter than its idempotency-key lifetime 6h: a retry after the key expired could "
         "refund twice"},
        {"toss ttl above 15d", BASE "    idempotency_key_ttl: 16d\n",
         "t.yaml:9: gateways.toss.idempotency_key_ttl: 16d is longer than the 15d "
         "idempotency-key lifetime that toss documents"},
        {"lease equal to timeout", BASE "consumers:\n  retry:\n    lease: 10s\n",
         "t.yaml:11: consumers.retry.lease: lease 10s must be longer than the timeout 10s of "
         "gateway \"toss\": a lease that expires during a call would let a second worker call "
         "the gateway concurrently"},
        {"timeout above default lease", BASE "    timeout: 3m\n",
         "t.yaml:9: gateways.toss.timeout: lease 2m must be longer than the timeout 3m of "
         "gateway \"toss\": a lease that expires during a call would let a second worker call "
         "the gateway concurrently"},
        {"max_delay below initial_delay", BASE "retry:\n  initial_delay: 1m\n  max_delay: 30s\n",
         "t.yaml:11: retry.max_delay: max_delay 30s is shorter than initial_delay 1m"},
        {"gateway max_delay below initial", BASE "    retry:\n      initial_delay: 1h\n",
         "t.yaml:6: gateways.toss.retry.max_delay: max_delay 30m is shorter than initial_delay "
         "1h"},
        {"reconnect_max below min",
         "database:\n  dsn: x\n  reconnect_min: 10s\n"
         "  reconnect_max: 1s\nkafka:\n  bootstrap.servers: k\n"
         "gateways:\n  toss:\n    kind: toss\n    secret_key: sk\n",
         "t.yaml:4: database.reconnect_max: reconnect_max 1s is shorter than reconnect_min 10s"},
        {"slack enabled without webhook", BASE "alerts:\n  slack:\n    enabled: true\n",
         "t.yaml:11: alerts.slack.webhook_url: required when alerts.slack.enabled is true"},
        {"route to unknown gateway",
         BASE "alerts:\n  slack:\n    routes:\n      - gateway: paypal\n"
              "        webhook_url: http://hook\n",
         "t.yaml:12: alerts.slack.routes[0].gateway: unknown gateway \"paypal\""},
        {"route without webhook", BASE "alerts:\n  slack:\n    routes:\n      - reason: FAILED\n",
         "t.yaml:12: alerts.slack.routes[0].webhook_url: missing required key"},
        {"bad listen address", BASE "metrics:\n  listen: localhost\n",
         "t.yaml:10: metrics.listen: invalid listen address \"localhost\": expected host:port"},
        {"bad YAML syntax",
         "database:\n  dsn: x\nretry:\n  non_retryable_codes: [A, B\n"
         "  max_attempts: 3\n",
         "t.yaml:5: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
         "sequence at line 4)"},
        {"bad YAML indentation", "database:\n  dsn: x\n   bad: indent\n",
         "t.yaml:3: invalid YAML: mapping values are not allowed in this context"},
        {"top level not a map", "- database\n",
         "t.yaml:1: the top level must be a map of sections"},
        {"alias", BASE "relay: &r\n  batch_size: 5\nmetrics: *r\n",
         "t.yaml:11: metrics: YAML aliases are not supported"},
    };
    return cr_make_param_array(struct ecase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct ecase *c, config, errors)
{
    char err[512];
    struct config *cfg = load(c->yaml, err, sizeof(err));
    cr_assert_null(cfg, "%s: loaded", c->name);
    cr_expect_str_eq(err, c->msg, "%s", c->name);
}

/* ---- real files: file:line as an editor would show it ------------------- */

struct fcase {
    char path[80];
    char msg[300];
};

ParameterizedTestParameters(config, file_errors)
{
    static struct fcase cases[] = {
        {"tests/unit/data/config/bad-duration.yaml",
         "tests/unit/data/config/bad-duration.yaml:13: gateways.toss.timeout: invalid duration "
         "\"10x\": unit must be one of ms, s, m, h, d"},
        {"tests/unit/data/config/bad-syntax.yaml",
         "tests/unit/data/config/bad-syntax.yaml:6: invalid YAML: did not find expected ',' or "
         "']' (while parsing a flow sequence at line 5)"},
        {"tests/unit/data/config/unknown-nested.yaml",
         "tests/unit/data/config/unknown-nested.yaml:12: gateways.stripe.breaker.falure_ratio: "
         "unknown key"},
        {"tests/unit/data/config/stripe-deadline.yaml",
         "tests/unit/data/config/stripe-deadline.yaml:8: retry.deadline: retry deadline 2d of "
         "gateway \"stripe\" must be shorter than its idempotency-key lifetime 1d: a retry after "
         "the key expired could refund twice"},
        {"tests/unit/data/config/no-such-file.yaml",
         "tests/unit/data/config/no-such-file.yaml: could not open file: No such file or "
         "directory"},
    };
    return cr_make_param_array(struct fcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct fcase *c, config, file_errors)
{
    char err[512] = "";
    struct config *cfg = config_load(c->path, err, sizeof(err));
    cr_assert_null(cfg, "%s: loaded", c->path);
    cr_expect_str_eq(err, c->msg);
}

/* ---- per-gateway retry overrides ---------------------------------------- */

Test(config, gateway_retry_overrides_merge_over_top_level)
{
    char err[512];
    /* retry: comes after gateways: on purpose: file order must not matter. */
    struct config *cfg = load("database:\n  dsn: x\nkafka:\n  bootstrap.servers: k\n"
                              "gateways:\n"
                              "  toss:\n    kind: toss\n    secret_key: sk\n"
                              "    retry:\n      max_attempts: 3\n"
                              "      non_retryable_codes: [C]\n      jitter: none\n"
                              "  stripe:\n    kind: stripe\n    secret_key: sk2\n"
                              "retry:\n  max_attempts: 7\n  initial_delay: 1s\n"
                              "  backoff_coefficient: 1.5\n  max_delay: 1m\n  deadline: 6h\n"
                              "  non_retryable_codes: [A, B]\n",
                              err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    const struct config_gateway *toss = config_gateway_find(cfg, "toss");
    const struct config_gateway *stripe = config_gateway_find(cfg, "stripe");
    const char *const top[] = {"A", "B"}, *const own[] = {"C"};

    cr_expect_eq(toss->retry.max_attempts, 3);
    cr_expect_eq(toss->retry.jitter, JITTER_NONE);
    cr_expect_eq(toss->retry.initial_delay_ms, 1 * SEC);
    cr_expect_float_eq(toss->retry.backoff_coefficient, 1.5, 1e-9);
    cr_expect_eq(toss->retry.max_delay_ms, 1 * MIN);
    cr_expect_eq(toss->retry.deadline_ms, 6 * HOUR);
    expect_codes(&toss->retry, own, 1);

    cr_expect_eq(stripe->retry.max_attempts, 7);
    cr_expect_eq(stripe->retry.jitter, JITTER_FULL);
    cr_expect_eq(stripe->retry.deadline_ms, 6 * HOUR);
    expect_codes(&stripe->retry, top, 2);
    expect_codes(&cfg->retry, top, 2);

    cr_expect(config_retry_code_is_non_retryable(&toss->retry, "C"));
    cr_expect_not(config_retry_code_is_non_retryable(&toss->retry, "A"));
    cr_expect(config_retry_code_is_non_retryable(&stripe->retry, "B"));
    cr_expect_not(config_retry_code_is_non_retryable(&stripe->retry, NULL));
    cr_expect_not(config_retry_code_is_non_retryable(NULL, "B"));
    config_free(cfg);
}

Test(config, gateway_override_can_fix_an_unsafe_top_level_deadline)
{
    char err[512];
    struct config *cfg = load(BASE "  stripe:\n    kind: stripe\n    secret_key: sk2\n"
                                   "    retry:\n      deadline: 20h\n"
                                   "retry:\n  deadline: 5d\n",
                              err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(config_gateway_find(cfg, "toss")->retry.deadline_ms, 5 * DAY);
    cr_expect_eq(config_gateway_find(cfg, "stripe")->retry.deadline_ms, 20 * HOUR);
    config_free(cfg);
}

Test(config, null_values_keep_defaults_and_empty_optional_strings_are_unset)
{
    char err[512];
    setenv("CR_T_EMPTY", "", 1);
    struct config *cfg = load(BASE "    ca_file: \"${CR_T_EMPTY}\"\n    timeout: ~\n"
                                   "relay:\nmetrics:\n  listen: null\n",
                              err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_null(cfg->gateways[0].ca_file);
    cr_expect_eq(cfg->gateways[0].timeout_ms, 10 * SEC);
    cr_expect_eq(cfg->relay.batch_size, 500);
    cr_expect_null(cfg->metrics.listen);
    config_free(cfg);
}

Test(config, free_null_is_a_no_op)
{
    config_free(NULL);
}

Test(config, empty_file_reports_the_first_missing_key)
{
    char err[512];
    struct config *cfg = load("", err, sizeof(err));
    cr_assert_null(cfg);
    cr_expect_str_eq(err, "t.yaml:1: database.dsn: missing required key");
}
