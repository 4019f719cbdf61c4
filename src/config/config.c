/*
 * config: the key tables of the config file (one row per key: type, member
 * offset, default, range, flags; PgBouncer style), the sections that need
 * code (kafka:, gateways:, alerts.slack.routes), and the public functions.
 * See config.h; the engine is config_table.c, cross-field checks are
 * config_validate.c.
 *
 * Defaults not written in config.h: topics.*.replication_factor 1,
 * gateways.*.rate_limit.per_second 0 (unlimited) and burst 10,
 * alerts.slack.enabled false, retry.non_retryable_codes empty, metrics.listen
 * unset (no metrics endpoint). A gateway's retry: overrides single keys of the
 * top-level retry:; a list given there replaces the inherited list.
 */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

/* ---- tables ---------------------------------------------------------- */

// clang-format off
#define S(k, st, m, d, fl)         {k, CK_STRING, offsetof(st, m), d, 0, 0, fl, NULL, NULL, NULL}
#define I(k, st, m, d, lo, hi)     {k, CK_INT, offsetof(st, m), d, lo, hi, 0, NULL, NULL, NULL}
#define F(k, st, m, d, lo, hi, fl) {k, CK_DOUBLE, offsetof(st, m), d, lo, hi, fl, NULL, NULL, NULL}
#define B(k, st, m, d)             {k, CK_BOOL, offsetof(st, m), d, 0, 0, 0, NULL, NULL, NULL}
#define D(k, st, m, d, lo, hi)     {k, CK_DURATION, offsetof(st, m), d, lo, hi, 0, NULL, NULL, NULL}
#define E(k, st, m, d, en, fl)     {k, CK_ENUM, offsetof(st, m), d, 0, 0, fl, NULL, en, NULL}
#define L(k, st, m, d, en)         {k, CK_STRLIST, offsetof(st, m), d, 0, 0, 0, NULL, en, NULL}
#define SEC(k, st, m, tab, fl)     {k, CK_SECTION, offsetof(st, m), NULL, 0, 0, fl, tab, NULL, NULL}
#define CUSTOM(k, fn)              {k, CK_CUSTOM, 0, NULL, 0, 0, 0, NULL, NULL, fn}
#define END                        {NULL, CK_STRING, 0, NULL, 0, 0, 0, NULL, NULL, NULL}
// clang-format on

#define SEC_MS  1000.0
#define MIN_MS  (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS  (24 * HOUR_MS)

static const struct config_enum level_enum[] = {
    {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN}, {"error", LOG_ERROR}, {NULL, 0}};
static const struct config_enum kind_enum[] = {
    {"toss", GATEWAY_TOSS},         {"stripe", GATEWAY_STRIPE}, {"portone", GATEWAY_PORTONE},
    {"kakaopay", GATEWAY_KAKAOPAY}, {"adyen", GATEWAY_ADYEN},   {NULL, 0}};
static const struct config_enum jitter_enum[] = {
    {"none", JITTER_NONE}, {"full", JITTER_FULL}, {NULL, 0}};
static const struct config_enum status_enum[] = {
    {"FAILED", 0},           {"EXHAUSTED", 0},         {"SUCCEEDED", 0},
    {"ALREADY_REFUNDED", 0}, {"MANUALLY_RESOLVED", 0}, {NULL, 0}};

static const struct config_key log_table[] = {
    E("level", struct config, log_level, "info", level_enum, 0),
    END,
};

static const struct config_key database_table[] = {
    S("dsn", struct config_database, dsn, NULL, CK_REQUIRED | CK_SECRET),
    D("connect_timeout", struct config_database, connect_timeout_ms, "5s", 1, HOUR_MS),
    D("reconnect_min", struct config_database, reconnect_min_ms, "200ms", 1, HOUR_MS),
    D("reconnect_max", struct config_database, reconnect_max_ms, "30s", 1, HOUR_MS),
    D("statement_timeout", struct config_database, statement_timeout_ms, "30s", 0, DAY_MS),
    B("prepared_statements", struct config_database, prepared_statements, "true"),
    END,
};

#define TOPIC_TABLE(var, topic, parts)                                                             \
    static const struct config_key var[] = {                                                       \
        S("name", struct config_topic, name, topic, 0),                                            \
        I("partitions", struct config_topic, partitions, parts, 1, 10000),                         \
        I("replication_factor", struct config_topic, replication_factor, "1", 1, 32),              \
        END,                                                                                       \
    }
TOPIC_TABLE(topic_failed_table, "payments.cancel.failed", "3");
TOPIC_TABLE(topic_retry_table, "payments.cancel.retry", "6");
TOPIC_TABLE(topic_outcome_table, "payments.cancel.outcome", "3");
TOPIC_TABLE(topic_dlq_table, "payments.cancel.dlq", "1");

static const struct config_key topics_table[] = {
    SEC("cancel_failed", struct config_topics, cancel_failed, topic_failed_table, 0),
    SEC("retry", struct config_topics, retry, topic_retry_table, 0),
    SEC("outcome", struct config_topics, outcome, topic_outcome_table, 0),
    SEC("dlq", struct config_topics, dlq, topic_dlq_table, 0),
    END,
};

static const struct config_key intake_table[] = {
    S("group_id", struct config_intake, group_id, "cancel-retry-intake", 0),
    I("batch_size", struct config_intake, batch_size, "500", 1, 10000),
    D("batch_window", struct config_intake, batch_window_ms, "2ms", 0, SEC_MS),
    END,
};
static const struct config_key retry_consumer_table[] = {
    S("group_id", struct config_retry_consumer, group_id, "cancel-retry-retry", 0),
    I("max_in_flight", struct config_retry_consumer, max_in_flight, "32", 1, 10000),
    D("lease", struct config_retry_consumer, lease_ms, "2m", SEC_MS, DAY_MS),
    END,
};
static const struct config_key alert_consumer_table[] = {
    S("group_id", struct config_alert_consumer, group_id, "cancel-retry-alert", 0),
    END,
};
static const struct config_key consumers_table[] = {
    SEC("intake", struct config_consumers, intake, intake_table, 0),
    SEC("retry", struct config_consumers, retry, retry_consumer_table, 0),
    SEC("alert", struct config_consumers, alert, alert_consumer_table, 0),
    END,
};

static const struct config_key relay_table[] = {
    I("batch_size", struct config_relay, batch_size, "500", 1, 100000),
    D("poll_interval", struct config_relay, poll_interval_ms, "5s", 10, HOUR_MS),
    D("retention", struct config_relay, retention_ms, "7d", 0, 3650 * DAY_MS),
    D("reconcile_interval", struct config_relay, reconcile_interval_ms, "30s", SEC_MS, DAY_MS),
    D("flush_timeout", struct config_relay, flush_timeout_ms, "10s", 0, HOUR_MS),
    D("leader_lease", struct config_relay, leader_lease_ms, "10s", 3 * SEC_MS, 10 * MIN_MS),
    END,
};

static const struct config_key reconcile_table[] = {
    B("enabled", struct config_reconcile, enabled, "true"),
    D("interval", struct config_reconcile, interval_ms, "1h", SEC_MS, 7 * DAY_MS),
    /* Stripe documents that a succeeded refund can still fail within 30 days. */
    D("window", struct config_reconcile, window_ms, "24h", MIN_MS, 90 * DAY_MS),
    F("rate_per_second", struct config_reconcile, rate_per_second, "5", 0, 1000, CK_GT_MIN),
    END,
};

static const struct config_key retry_table[] = {
    I("max_attempts", struct retry_policy, max_attempts, "5", 1, 1000),
    D("initial_delay", struct retry_policy, initial_delay_ms, "30s", 1, 30 * DAY_MS),
    F("backoff_coefficient", struct retry_policy, backoff_coefficient, "2.0", 1, 100, 0),
    D("max_delay", struct retry_policy, max_delay_ms, "30m", 1, 30 * DAY_MS),
    E("jitter", struct retry_policy, jitter, "full", jitter_enum, 0),
    D("deadline", struct retry_policy, deadline_ms, "12h", SEC_MS, 365 * DAY_MS),
    L("non_retryable_codes", struct retry_policy, non_retryable_codes, NULL, NULL),
    END,
};

static const struct config_key rate_limit_table[] = {
    F("per_second", struct config_rate_limit, per_second, "0", 0, 1e6, 0),
    I("burst", struct config_rate_limit, burst, "10", 1, 1000000),
    END,
};

static const struct config_key breaker_table[] = {
    B("enabled", struct config_breaker, enabled, "true"),
    F("failure_ratio", struct config_breaker, failure_ratio, "0.5", 0, 1, CK_GT_MIN),
    I("min_requests", struct config_breaker, min_requests, "20", 1, 1000000),
    D("window", struct config_breaker, window_ms, "30s", SEC_MS, DAY_MS),
    D("open_for", struct config_breaker, open_ms, "30s", SEC_MS, DAY_MS),
    I("half_open_probes", struct config_breaker, half_open_probes, "3", 1, 1000),
    END,
};

/* base_url, timeout and idempotency_key_ttl default by kind, after the walk
 * (config_kinds.c). */
static const struct config_key gateway_table[] = {
    E("kind", struct config_gateway, kind, NULL, kind_enum, CK_REQUIRED),
    S("base_url", struct config_gateway, base_url, NULL, 0),
    S("secret_key", struct config_gateway, secret_key, NULL, CK_REQUIRED | CK_SECRET),
    S("store_id", struct config_gateway, store_id, NULL, 0),
    S("cid", struct config_gateway, cid, NULL, 0),
    S("merchant_account", struct config_gateway, merchant_account, NULL, 0),
    D("connect_timeout", struct config_gateway, connect_timeout_ms, "3s", 1, 5 * MIN_MS),
    D("timeout", struct config_gateway, timeout_ms, NULL, 1, 10 * MIN_MS),
    D("idempotency_key_ttl", struct config_gateway, idempotency_key_ttl_ms, NULL, SEC_MS,
      365 * DAY_MS),
    B("tls_verify", struct config_gateway, tls_verify, "true"),
    S("ca_file", struct config_gateway, ca_file, NULL, 0),
    B("keep_alive", struct config_gateway, keep_alive, "true"),
    /* Whole seconds (http.h): under a second could not be honoured. */
    D("keep_alive_idle", struct config_gateway, keep_alive_idle_ms, "2s", SEC_MS, 10 * MIN_MS),
    SEC("rate_limit", struct config_gateway, rate_limit, rate_limit_table, 0),
    SEC("breaker", struct config_gateway, breaker, breaker_table, 0),
    /* Overrides only: the top-level retry: is copied in first. */
    SEC("retry", struct config_gateway, retry, retry_table, CK_NODEFAULTS),
    {"webhook_hmac_keys", CK_STRLIST, offsetof(struct config_gateway, webhook_hmac_keys), NULL, 0,
     0, CK_SECRET, NULL, NULL, NULL},
    S("webhook_basic_auth", struct config_gateway, webhook_basic_auth, NULL, CK_SECRET),
    END,
};

static const struct config_key route_table[] = {
    S("gateway", struct config_slack_route, gateway, NULL, 0),
    S("reason", struct config_slack_route, reason, NULL, 0),
    S("webhook_url", struct config_slack_route, webhook_url, NULL, CK_REQUIRED | CK_SECRET),
    END,
};

static bool parse_routes(struct config_ctx *c, const struct config_key *e, const struct cy_pair *p,
                         int line, const char *path, void *base);
static bool parse_kafka(struct config_ctx *c, const struct config_key *e, const struct cy_pair *p,
                        int line, const char *path, void *base);
static bool parse_gateways(struct config_ctx *c, const struct config_key *e,
                           const struct cy_pair *p, int line, const char *path, void *base);

/* digest: is a map in the file but flat members of struct config_slack. */
static const struct config_key digest_table[] = {
    I("threshold", struct config_slack, digest_threshold, "10", 1, 1000000),
    D("window", struct config_slack, digest_window_ms, "60s", SEC_MS, DAY_MS),
    END,
};

static const struct config_key slack_table[] = {
    B("enabled", struct config_slack, enabled, "false"),
    S("webhook_url", struct config_slack, webhook_url, NULL, CK_SECRET),
    L("statuses", struct config_slack, statuses, "FAILED,EXHAUSTED", status_enum),
    F("rate_per_second", struct config_slack, rate_per_second, "1", 0, 1000, CK_GT_MIN),
    I("burst", struct config_slack, burst, "3", 1, 1000),
    {"digest", CK_SECTION, 0, NULL, 0, 0, 0, digest_table, NULL, NULL},
    D("timeout", struct config_slack, timeout_ms, "10s", 1, 5 * MIN_MS),
    CUSTOM("routes", parse_routes),
    END,
};

static const struct config_key alerts_table[] = {
    SEC("slack", struct config_alerts, slack, slack_table, 0),
    END,
};

static const struct config_key metrics_table[] = {
    S("listen", struct config_metrics, listen, NULL, 0),
    END,
};

static const struct config_key webhooks_table[] = {
    S("listen", struct config_webhooks, listen, NULL, 0),
    S("path", struct config_webhooks, path, "/webhooks/adyen", 0),
    END,
};

static const struct config_key root_table[] = {
    {"log", CK_SECTION, 0, NULL, 0, 0, 0, log_table, NULL, NULL},
    SEC("database", struct config, database, database_table, 0),
    CUSTOM("kafka", parse_kafka),
    SEC("topics", struct config, topics, topics_table, 0),
    SEC("consumers", struct config, consumers, consumers_table, 0),
    SEC("relay", struct config, relay, relay_table, 0),
    SEC("reconcile", struct config, reconcile, reconcile_table, 0),
    SEC("retry", struct config, retry, retry_table, 0),
    CUSTOM("gateways", parse_gateways), /* after retry: gateways inherit it */
    SEC("alerts", struct config, alerts, alerts_table, 0),
    SEC("metrics", struct config, metrics, metrics_table, 0),
    SEC("webhooks", struct config, webhooks, webhooks_table, 0),
    END,
};

/* ---- custom sections --------------------------------------------------- */

static bool parse_kafka(struct config_ctx *c, const struct config_key *e, const struct cy_pair *p,
                        int line, const char *path, void *base)
{
    struct config_kafka *k = &((struct config *)base)->kafka;
    const struct cy_node *map = p ? &p->value : NULL;
    char child[300];

    if (map != NULL && map->kind != CY_MAP)
        return config_fail(c, p->line, path, "expected a map, got %s", cy_kind_name(map));
    if (map != NULL && map->n > 0) {
        k->props = calloc(map->n, sizeof(*k->props));
        if (k->props == NULL)
            return config_fail(c, map->line, path, "out of memory");
    }
    for (size_t i = 0; map != NULL && i < map->n; i++) {
        const struct cy_pair *kp = &map->pairs[i];
        config_join_path(child, sizeof(child), path, kp->key);
        /* librdkafka property values are text; YAML numbers and booleans
         * arrive here as their text already. */
        if (kp->value.kind != CY_SCALAR || kp->value.null)
            return config_fail(c, kp->line, child, "expected a string, got %s",
                               cy_kind_name(&kp->value));
        k->props[i].key = strdup(kp->key);
        k->props[i].value = strdup(kp->value.value);
        k->props[i].line = kp->line;
        k->nprops = i + 1;
        if (k->props[i].key == NULL || k->props[i].value == NULL)
            return config_fail(c, kp->line, child, "out of memory");
    }
    const struct cy_pair *bs = cy_map_find(map, "bootstrap.servers");
    config_join_path(child, sizeof(child), path, "bootstrap.servers");
    if (bs == NULL)
        return config_fail(c, line, child, "missing required key");
    if (bs->value.value[0] == '\0')
        return config_fail(c, bs->line, child, "value must not be empty");
    return true;
}

static bool parse_routes(struct config_ctx *c, const struct config_key *e, const struct cy_pair *p,
                         int line, const char *path, void *base)
{
    struct config_slack *s = base;
    const struct cy_node *seq = p ? &p->value : NULL;
    char child[300];

    if (seq == NULL)
        return true;
    if (seq->kind != CY_SEQ)
        return config_fail(c, p->line, path, "expected a list of maps, got %s", cy_kind_name(seq));
    s->routes = calloc(seq->n ? seq->n : 1, sizeof(*s->routes));
    if (s->routes == NULL)
        return config_fail(c, seq->line, path, "out of memory");
    for (size_t i = 0; i < seq->n; i++) {
        const struct cy_node *item = &seq->items[i];
        snprintf(child, sizeof(child), "%s[%zu]", path, i);
        s->nroutes = i + 1;
        if (item->kind != CY_MAP)
            return config_fail(c, item->line, child, "expected a map, got %s", cy_kind_name(item));
        if (!config_table_walk(c, route_table, item, item->line, child, &s->routes[i]))
            return false;
    }
    return true;
}

static bool gateway_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 32)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static bool copy_policy(struct retry_policy *dst, const struct retry_policy *src)
{
    *dst = *src;
    dst->non_retryable_codes = NULL;
    dst->n_non_retryable_codes = 0;
    if (src->n_non_retryable_codes == 0)
        return true;
    dst->non_retryable_codes = calloc(src->n_non_retryable_codes, sizeof(char *));
    if (dst->non_retryable_codes == NULL)
        return false;
    for (size_t i = 0; i < src->n_non_retryable_codes; i++) {
        dst->non_retryable_codes[i] = strdup(src->non_retryable_codes[i]);
        if (dst->non_retryable_codes[i] == NULL)
            return false;
        dst->n_non_retryable_codes = i + 1;
    }
    return true;
}

static bool parse_gateways(struct config_ctx *c, const struct config_key *e,
                           const struct cy_pair *p, int line, const char *path, void *base)
{
    struct config *cfg = base;
    const struct cy_node *map = p ? &p->value : NULL;
    char child[300];

    if (map != NULL && map->kind != CY_MAP)
        return config_fail(c, p->line, path, "expected a map of gateway names, got %s",
                           cy_kind_name(map));
    if (map == NULL || map->n == 0)
        return config_fail(c, p ? p->line : line, path, "at least one gateway must be configured");
    cfg->gateways = calloc(map->n, sizeof(*cfg->gateways));
    if (cfg->gateways == NULL)
        return config_fail(c, map->line, path, "out of memory");
    for (size_t i = 0; i < map->n; i++) {
        const struct cy_pair *gp = &map->pairs[i];
        struct config_gateway *gw = &cfg->gateways[i];
        config_join_path(child, sizeof(child), path, gp->key);
        cfg->ngateways = i + 1;
        if (!gateway_name_ok(gp->key))
            return config_fail(
                c, gp->line, child,
                "invalid gateway name: must be 1 to 32 characters of a-z, 0-9, _ and -");
        gw->name = strdup(gp->key);
        if (gw->name == NULL || !copy_policy(&gw->retry, &cfg->retry))
            return config_fail(c, gp->line, child, "out of memory");
        if (gp->value.kind != CY_MAP)
            return config_fail(c, gp->line, child, "expected a map, got %s",
                               cy_kind_name(&gp->value));
        if (!config_table_defaults(c, gateway_table, gw))
            return false;
        gw->idempotency_key_ttl_ms = -1; /* "not set": the kind decides below */
        gw->timeout_ms = -1;
        if (!config_table_walk(c, gateway_table, &gp->value, gp->line, child, gw))
            return false;
        /* consumers: comes before gateways: in root_table. */
        gw->max_connections = cfg->consumers.retry.max_in_flight;
        const struct config_kind *kind = config_kind_of(gw->kind);
        if (gw->idempotency_key_ttl_ms < 0)
            gw->idempotency_key_ttl_ms = kind->key_ttl_default_ms;
        if (gw->timeout_ms < 0)
            gw->timeout_ms = kind->default_timeout_ms;
        if (gw->base_url == NULL && kind->default_base_url != NULL) {
            gw->base_url = strdup(kind->default_base_url);
            if (gw->base_url == NULL)
                return config_fail(c, gp->line, child, "out of memory");
        }
    }
    return true;
}

/* ---- public ------------------------------------------------------------ */

/* Takes ownership of root (may be NULL after a parse error). */
static struct config *build(const char *name, struct cy_node *root, char *err, size_t errlen)
{
    struct config *cfg = NULL;
    struct config_ctx c = {name, root, NULL, err, errlen};
    bool ok = false;

    if (root == NULL)
        return NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || (cfg->path = strdup(name)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto out;
    }
    c.cfg = cfg;
    ok = config_table_defaults(&c, root_table, cfg) &&
         config_table_walk(&c, root_table, root, root->line, "", cfg) && config_validate(&c);
out:
    cy_free(root);
    if (!ok) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    return build(path, cy_load_file(path, err, errlen), err, errlen);
}

struct config *config_load_string(const char *name, const char *yaml, char *err, size_t errlen)
{
    return build(name, cy_load_string(name, yaml, err, errlen), err, errlen);
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    config_table_free(root_table, cfg);
    for (size_t i = 0; i < cfg->kafka.nprops; i++) {
        free(cfg->kafka.props[i].key);
        free(cfg->kafka.props[i].value);
    }
    free(cfg->kafka.props);
    for (size_t i = 0; i < cfg->ngateways; i++) {
        free(cfg->gateways[i].name);
        config_table_free(gateway_table, &cfg->gateways[i]);
    }
    free(cfg->gateways);
    for (size_t i = 0; i < cfg->alerts.slack.nroutes; i++)
        config_table_free(route_table, &cfg->alerts.slack.routes[i]);
    free(cfg->alerts.slack.routes);
    free(cfg->path);
    free(cfg);
}

const struct config_gateway *config_gateway_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && name != NULL && i < cfg->ngateways; i++)
        if (strcmp(cfg->gateways[i].name, name) == 0)
            return &cfg->gateways[i];
    return NULL;
}

const char *config_gateway_kind_name(enum gateway_kind kind)
{
    const struct config_kind *k = config_kind_of(kind);
    return k != NULL ? k->name : "unknown";
}

bool config_retry_code_is_non_retryable(const struct retry_policy *policy, const char *code)
{
    for (size_t i = 0; policy != NULL && code != NULL && i < policy->n_non_retryable_codes; i++)
        if (strcmp(policy->non_retryable_codes[i], code) == 0)
            return true;
    return false;
}

const struct retry_policy *config_retry_policy_for(const struct config *cfg, const char *gateway)
{
    const struct config_gateway *gw = config_gateway_find(cfg, gateway);
    return gw != NULL ? &gw->retry : &cfg->retry;
}
