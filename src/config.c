/*
 * config: the YAML tree of config_yaml.c walked with declarative tables (one
 * row per key: type, member offset, default, range, flags), PgBouncer style,
 * then cross-field validation. See config.h.
 *
 * Rules the tables encode:
 * - A key written as null ("key:", "~", "null") counts as not set: the
 *   default applies, and a required key is missing.
 * - An optional string without default that expands to "" is NULL, so
 *   "${CA_FILE:-}" means "none"; a required string or one with a default must
 *   not be empty.
 * - Values of secret keys never appear in messages; other values do, quoted.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_yaml.h"
#include "duration.h"

enum ck_type {
    CK_STRING,
    CK_INT,
    CK_DOUBLE,
    CK_BOOL,
    CK_DURATION, /* int64_t milliseconds */
    CK_ENUM,     /* an enum member, value from ->enums */
    CK_STRLIST,  /* char ** at offset, size_t count right after it */
    CK_SECTION,  /* a nested map described by ->section, same base + offset */
    CK_CUSTOM,   /* parsed by ->custom */
};

#define CK_REQUIRED   0x1u
#define CK_SECRET     0x2u
#define CK_GT_MIN     0x4u /* min itself is out of range */
#define CK_NODEFAULTS 0x8u /* section whose defaults come from elsewhere */

/* No upper bound worth naming. */
#define CK_NOMAX 9.0e15

struct ck_enum {
    const char *name;
    int value;
};

struct cfg_ctx;
struct ck;

typedef bool (*ck_custom_fn)(struct cfg_ctx *c, const struct ck *e, const struct cy_pair *p,
                             int line, const char *path, void *base);

struct ck {
    const char *key;
    enum ck_type type;
    size_t offset;
    const char *def; /* default as written in YAML; NULL: none (NULL, 0, empty) */
    double min, max;
    unsigned flags;
    const struct ck *section;    /* CK_SECTION */
    const struct ck_enum *enums; /* CK_ENUM; CK_STRLIST: allowed items, or NULL */
    ck_custom_fn custom;         /* CK_CUSTOM; called with p NULL when absent */
};

struct cfg_ctx {
    const char *file;
    const struct cy_node *root;
    struct config *cfg;
    char *err;
    size_t errlen;
};

/* CK_STRLIST stores the count right after the array pointer. */
_Static_assert(offsetof(struct retry_policy, n_non_retryable_codes) ==
                   offsetof(struct retry_policy, non_retryable_codes) + sizeof(char **),
               "list layout");
_Static_assert(offsetof(struct config_slack, n_statuses) ==
                   offsetof(struct config_slack, statuses) + sizeof(char **),
               "list layout");

/* Always returns false, so that "return fail(...)" reads naturally. */
static bool fail(struct cfg_ctx *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail(struct cfg_ctx *c, int line, const char *path, const char *fmt, ...)
{
    char reason[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->file, line, path, reason);
    else
        snprintf(c->err, c->errlen, "%s: %s: %s", c->file, path, reason);
    return false;
}

static void join_path(char *out, size_t outlen, const char *prefix, const char *key)
{
    if (prefix[0] != '\0')
        snprintf(out, outlen, "%s.%s", prefix, key);
    else
        snprintf(out, outlen, "%s", key);
}

static void strlist_free(char **list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++)
        free(list[i]);
    free(list);
}

static const char *type_name(const struct ck *e)
{
    switch (e->type) {
    case CK_INT:
        return "an integer";
    case CK_DOUBLE:
        return "a number";
    case CK_BOOL:
        return "a boolean";
    case CK_DURATION:
        return "a duration";
    case CK_STRLIST:
        return "a list of strings";
    case CK_SECTION:
    case CK_CUSTOM:
        return "a map";
    default:
        return "a string";
    }
}

static void format_value(const struct ck *e, double v, char *buf, size_t len)
{
    if (e->type == CK_DURATION)
        duration_format((int64_t)v, buf, len);
    else if (e->type == CK_INT)
        snprintf(buf, len, "%lld", (long long)v);
    else
        snprintf(buf, len, "%g", v);
}

static bool check_range(struct cfg_ctx *c, const struct ck *e, double v, int line, const char *path)
{
    char vs[32], lo[32], hi[32];
    bool below = (e->flags & CK_GT_MIN) ? v <= e->min : v < e->min;

    if (!below && v <= e->max)
        return true;
    format_value(e, v, vs, sizeof(vs));
    format_value(e, e->min, lo, sizeof(lo));
    format_value(e, e->max, hi, sizeof(hi));
    if (e->max >= CK_NOMAX)
        return fail(c, line, path, "%s is out of range: must be %s %s", vs,
                    (e->flags & CK_GT_MIN) ? "greater than" : "at least", lo);
    return fail(c, line, path, "%s is out of range: must be %s %s and at most %s", vs,
                (e->flags & CK_GT_MIN) ? "greater than" : "at least", lo, hi);
}

static bool enum_lookup(const struct ck_enum *en, const char *text, int *out)
{
    for (; en->name != NULL; en++) {
        if (strcmp(en->name, text) == 0) {
            *out = en->value;
            return true;
        }
    }
    return false;
}

static bool enum_fail(struct cfg_ctx *c, const struct ck_enum *en, const char *text, int line,
                      const char *path)
{
    char names[256] = "";
    size_t o = 0;

    for (; en->name != NULL && o < sizeof(names); en++) {
        int n = snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "", en->name);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    return fail(c, line, path, "invalid value \"%s\": must be one of %s", text, names);
}

/* Store one scalar text into the member e describes. Used for file values
 * and for defaults alike, so that a default is parsed exactly like a value. */
static bool set_text(struct cfg_ctx *c, const struct ck *e, const char *text, int line,
                     const char *path, void *base)
{
    char *field = (char *)base + e->offset;
    char *end = NULL;
    char why[160];

    switch (e->type) {
    case CK_STRING: {
        char **dst = (char **)(void *)field;
        if (text[0] == '\0') {
            if ((e->flags & CK_REQUIRED) || e->def != NULL)
                return fail(c, line, path, "%s must not be empty",
                            (e->flags & CK_SECRET) ? "secret" : "value");
            free(*dst);
            *dst = NULL;
            return true;
        }
        char *copy = strdup(text);
        if (copy == NULL)
            return fail(c, line, path, "out of memory");
        free(*dst);
        *dst = copy;
        return true;
    }
    case CK_INT: {
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (text[0] == '\0' || *end != '\0' || errno == ERANGE)
            return fail(c, line, path, "invalid integer \"%s\"", text);
        if (!check_range(c, e, (double)v, line, path))
            return false;
        *(int *)(void *)field = (int)v;
        return true;
    }
    case CK_DOUBLE: {
        errno = 0;
        double v = strtod(text, &end);
        if (text[0] == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v))
            return fail(c, line, path, "invalid number \"%s\"", text);
        if (!check_range(c, e, v, line, path))
            return false;
        *(double *)(void *)field = v;
        return true;
    }
    case CK_BOOL: {
        bool v;
        if (strcasecmp(text, "true") == 0 || strcasecmp(text, "yes") == 0 ||
            strcasecmp(text, "on") == 0)
            v = true;
        else if (strcasecmp(text, "false") == 0 || strcasecmp(text, "no") == 0 ||
                 strcasecmp(text, "off") == 0)
            v = false;
        else
            return fail(c, line, path, "invalid boolean \"%s\": must be true or false", text);
        *(bool *)(void *)field = v;
        return true;
    }
    case CK_DURATION: {
        int64_t ms;
        if (!duration_parse(text, &ms, why, sizeof(why)))
            return fail(c, line, path, "%s", why);
        if (!check_range(c, e, (double)ms, line, path))
            return false;
        *(int64_t *)(void *)field = ms;
        return true;
    }
    case CK_ENUM: {
        int v;
        if (!enum_lookup(e->enums, text, &v))
            return enum_fail(c, e->enums, text, line, path);
        /* Every enum of config.h is int-sized; memcpy keeps the store typed. */
        _Static_assert(sizeof(enum gateway_kind) == sizeof(int), "enum size");
        _Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
        memcpy(field, &v, sizeof(v));
        return true;
    }
    default:
        return fail(c, line, path, "internal error: key type has no scalar form");
    }
}

/* Replace the list at e with the items of a sequence node, or (node NULL)
 * with the comma-separated default text. */
static bool set_list(struct cfg_ctx *c, const struct ck *e, const struct cy_node *node,
                     const char *text, const char *path, void *base)
{
    char ***dst = (char ***)(void *)((char *)base + e->offset);
    size_t *count = (size_t *)(void *)((char *)base + e->offset + sizeof(char **));
    size_t n = 0, cap = node ? node->n : 1;
    char **list;

    if (node == NULL)
        for (const char *p = text; *p; p++)
            cap += (*p == ',');
    list = calloc(cap ? cap : 1, sizeof(*list));
    if (list == NULL)
        return fail(c, node ? node->line : 0, path, "out of memory");
    for (size_t i = 0; i < cap; i++) {
        char item_path[300];
        const char *item;
        size_t len;
        int line = 0;
        if (node != NULL) {
            const struct cy_node *it = &node->items[i];
            snprintf(item_path, sizeof(item_path), "%s[%zu]", path, i);
            line = it->line;
            if (it->kind != CY_SCALAR || it->null) {
                fail(c, line, item_path, "expected a string, got %s", cy_kind_name(it));
                goto bad;
            }
            if (it->value[0] == '\0') {
                fail(c, line, item_path, "value must not be empty");
                goto bad;
            }
            item = it->value;
            len = strlen(item);
        } else {
            snprintf(item_path, sizeof(item_path), "%s", path);
            item = text;
            len = strcspn(text, ",");
            text += len + (text[len] == ',');
        }
        list[n] = strndup(item, len);
        if (list[n] == NULL) {
            fail(c, line, item_path, "out of memory");
            goto bad;
        }
        n++;
        int ignored;
        if (e->enums != NULL && !enum_lookup(e->enums, list[n - 1], &ignored)) {
            enum_fail(c, e->enums, list[n - 1], line, item_path);
            goto bad;
        }
    }
    strlist_free(*dst, *count);
    *dst = list;
    *count = n;
    return true;
bad:
    strlist_free(list, n);
    return false;
}

static bool apply_defaults(struct cfg_ctx *c, const struct ck *table, void *base)
{
    for (const struct ck *e = table; e->key != NULL; e++) {
        if (e->type == CK_SECTION) {
            if (!(e->flags & CK_NODEFAULTS) &&
                !apply_defaults(c, e->section, (char *)base + e->offset))
                return false;
        } else if (e->type == CK_STRLIST) {
            if (e->def != NULL && !set_list(c, e, NULL, e->def, e->key, base))
                return false;
        } else if (e->def != NULL && e->type != CK_CUSTOM) {
            if (!set_text(c, e, e->def, 0, e->key, base))
                return false;
        }
    }
    return true;
}

static bool walk(struct cfg_ctx *c, const struct ck *table, const struct cy_node *map, int line,
                 const char *path, void *base);

static bool walk_entry(struct cfg_ctx *c, const struct ck *e, const struct cy_pair *p, int line,
                       const char *path, void *base)
{
    const struct cy_node *v = p ? &p->value : NULL;
    bool absent = (v == NULL || (v->kind == CY_SCALAR && v->null));

    if (e->type == CK_CUSTOM)
        return e->custom(c, e, absent ? NULL : p, absent && p ? p->line : line, path, base);
    if (e->type == CK_SECTION) {
        if (!absent && v->kind != CY_MAP)
            return fail(c, v->line, path, "expected a map, got %s", cy_kind_name(v));
        return walk(c, e->section, absent ? NULL : v, p ? p->line : line, path,
                    (char *)base + e->offset);
    }
    if (absent) {
        if (e->flags & CK_REQUIRED)
            return fail(c, p ? p->line : line, path, "missing required key");
        return true;
    }
    if (e->type == CK_STRLIST) {
        if (v->kind != CY_SEQ)
            return fail(c, v->line, path, "expected a list of strings, got %s", cy_kind_name(v));
        return set_list(c, e, v, NULL, path, base);
    }
    if (v->kind != CY_SCALAR)
        return fail(c, v->line, path, "expected %s, got %s", type_name(e), cy_kind_name(v));
    return set_text(c, e, v->value, v->line, path, base);
}

/*
 * Apply map (NULL: the section is absent) to base as table describes. line is
 * where a missing key is reported: the line of the key that opens this map,
 * or of the nearest present ancestor. Keys are checked in file order for
 * duplicates and unknown names, then applied in table order, so that a
 * section another depends on (retry before gateways) is complete first.
 */
static bool walk(struct cfg_ctx *c, const struct ck *table, const struct cy_node *map, int line,
                 const char *path, void *base)
{
    char child[300];

    for (size_t i = 0; map != NULL && i < map->n; i++) {
        const struct cy_pair *p = &map->pairs[i];
        const struct ck *e = table;
        join_path(child, sizeof(child), path, p->key);
        for (size_t j = 0; j < i; j++)
            if (strcmp(map->pairs[j].key, p->key) == 0)
                return fail(c, p->line, child, "duplicate key (first at line %d)",
                            map->pairs[j].line);
        while (e->key != NULL && strcmp(e->key, p->key) != 0)
            e++;
        if (e->key == NULL)
            return fail(c, p->line, child, "unknown key");
    }
    for (const struct ck *e = table; e->key != NULL; e++) {
        join_path(child, sizeof(child), path, e->key);
        if (!walk_entry(c, e, cy_map_find(map, e->key), line, child, base))
            return false;
    }
    return true;
}

/* Free every string and list a table describes (sections recursively). */
static void free_table(const struct ck *table, void *base)
{
    for (const struct ck *e = table; e->key != NULL; e++) {
        char *field = (char *)base + e->offset;
        if (e->type == CK_STRING) {
            free(*(char **)(void *)field);
            *(char **)(void *)field = NULL;
        } else if (e->type == CK_STRLIST) {
            strlist_free(*(char ***)(void *)field, *(size_t *)(void *)(field + sizeof(char **)));
            *(char ***)(void *)field = NULL;
        } else if (e->type == CK_SECTION) {
            free_table(e->section, field);
        }
    }
}

/* ---- tables ---------------------------------------------------------- */

#define S(k, st, m, d, fl)                                                                         \
    {                                                                                              \
        k, CK_STRING, offsetof(st, m), d, 0, 0, fl, NULL, NULL, NULL                               \
    }
#define I(k, st, m, d, lo, hi)                                                                     \
    {                                                                                              \
        k, CK_INT, offsetof(st, m), d, lo, hi, 0, NULL, NULL, NULL                                 \
    }
#define F(k, st, m, d, lo, hi, fl)                                                                 \
    {                                                                                              \
        k, CK_DOUBLE, offsetof(st, m), d, lo, hi, fl, NULL, NULL, NULL                             \
    }
#define B(k, st, m, d)                                                                             \
    {                                                                                              \
        k, CK_BOOL, offsetof(st, m), d, 0, 0, 0, NULL, NULL, NULL                                  \
    }
#define D(k, st, m, d, lo, hi)                                                                     \
    {                                                                                              \
        k, CK_DURATION, offsetof(st, m), d, lo, hi, 0, NULL, NULL, NULL                            \
    }
#define E(k, st, m, d, en, fl)                                                                     \
    {                                                                                              \
        k, CK_ENUM, offsetof(st, m), d, 0, 0, fl, NULL, en, NULL                                   \
    }
#define L(k, st, m, d, en)                                                                         \
    {                                                                                              \
        k, CK_STRLIST, offsetof(st, m), d, 0, 0, 0, NULL, en, NULL                                 \
    }
#define SEC(k, st, m, tab, fl)                                                                     \
    {                                                                                              \
        k, CK_SECTION, offsetof(st, m), NULL, 0, 0, fl, tab, NULL, NULL                            \
    }
#define CUSTOM(k, fn)                                                                              \
    {                                                                                              \
        k, CK_CUSTOM, 0, NULL, 0, 0, 0, NULL, NULL, fn                                             \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, CK_STRING, 0, NULL, 0, 0, 0, NULL, NULL, NULL                                        \
    }

#define SEC_MS  1000.0
#define MIN_MS  (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS  (24 * HOUR_MS)

static const struct ck_enum level_enum[] = {
    {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN}, {"error", LOG_ERROR}, {NULL, 0}};
static const struct ck_enum kind_enum[] = {
    {"toss", GATEWAY_TOSS}, {"stripe", GATEWAY_STRIPE}, {NULL, 0}};
static const struct ck_enum jitter_enum[] = {
    {"none", JITTER_NONE}, {"full", JITTER_FULL}, {NULL, 0}};
static const struct ck_enum status_enum[] = {
    {"FAILED", 0},           {"EXHAUSTED", 0},         {"SUCCEEDED", 0},
    {"ALREADY_REFUNDED", 0}, {"MANUALLY_RESOLVED", 0}, {NULL, 0}};

static const struct ck log_table[] = {
    E("level", struct config, log_level, "info", level_enum, 0),
    END,
};

static const struct ck database_table[] = {
    S("dsn", struct config_database, dsn, NULL, CK_REQUIRED | CK_SECRET),
    D("connect_timeout", struct config_database, connect_timeout_ms, "5s", 1, HOUR_MS),
    D("reconnect_min", struct config_database, reconnect_min_ms, "200ms", 1, HOUR_MS),
    D("reconnect_max", struct config_database, reconnect_max_ms, "30s", 1, HOUR_MS),
    D("statement_timeout", struct config_database, statement_timeout_ms, "30s", 0, DAY_MS),
    END,
};

#define TOPIC_TABLE(var, topic, parts)                                                             \
    static const struct ck var[] = {                                                               \
        S("name", struct config_topic, name, topic, 0),                                            \
        I("partitions", struct config_topic, partitions, parts, 1, 10000),                         \
        I("replication_factor", struct config_topic, replication_factor, "1", 1, 32),              \
        END,                                                                                       \
    }
TOPIC_TABLE(topic_failed_table, "payments.cancel.failed", "3");
TOPIC_TABLE(topic_retry_table, "payments.cancel.retry", "6");
TOPIC_TABLE(topic_outcome_table, "payments.cancel.outcome", "3");
TOPIC_TABLE(topic_dlq_table, "payments.cancel.dlq", "1");

static const struct ck topics_table[] = {
    SEC("cancel_failed", struct config_topics, cancel_failed, topic_failed_table, 0),
    SEC("retry", struct config_topics, retry, topic_retry_table, 0),
    SEC("outcome", struct config_topics, outcome, topic_outcome_table, 0),
    SEC("dlq", struct config_topics, dlq, topic_dlq_table, 0),
    END,
};

static const struct ck intake_table[] = {
    S("group_id", struct config_intake, group_id, "cancel-retry-intake", 0),
    END,
};
static const struct ck retry_consumer_table[] = {
    S("group_id", struct config_retry_consumer, group_id, "cancel-retry-retry", 0),
    I("max_in_flight", struct config_retry_consumer, max_in_flight, "32", 1, 10000),
    D("lease", struct config_retry_consumer, lease_ms, "2m", SEC_MS, DAY_MS),
    END,
};
static const struct ck alert_consumer_table[] = {
    S("group_id", struct config_alert_consumer, group_id, "cancel-retry-alert", 0),
    END,
};
static const struct ck consumers_table[] = {
    SEC("intake", struct config_consumers, intake, intake_table, 0),
    SEC("retry", struct config_consumers, retry, retry_consumer_table, 0),
    SEC("alert", struct config_consumers, alert, alert_consumer_table, 0),
    END,
};

static const struct ck relay_table[] = {
    I("batch_size", struct config_relay, batch_size, "500", 1, 100000),
    D("poll_interval", struct config_relay, poll_interval_ms, "5s", 10, HOUR_MS),
    D("retention", struct config_relay, retention_ms, "7d", 0, 3650 * DAY_MS),
    D("reconcile_interval", struct config_relay, reconcile_interval_ms, "30s", SEC_MS, DAY_MS),
    D("flush_timeout", struct config_relay, flush_timeout_ms, "10s", 0, HOUR_MS),
    END,
};

static const struct ck retry_table[] = {
    I("max_attempts", struct retry_policy, max_attempts, "5", 1, 1000),
    D("initial_delay", struct retry_policy, initial_delay_ms, "30s", 1, 30 * DAY_MS),
    F("backoff_coefficient", struct retry_policy, backoff_coefficient, "2.0", 1, 100, 0),
    D("max_delay", struct retry_policy, max_delay_ms, "30m", 1, 30 * DAY_MS),
    E("jitter", struct retry_policy, jitter, "full", jitter_enum, 0),
    D("deadline", struct retry_policy, deadline_ms, "12h", SEC_MS, 365 * DAY_MS),
    L("non_retryable_codes", struct retry_policy, non_retryable_codes, NULL, NULL),
    END,
};

static const struct ck rate_limit_table[] = {
    F("per_second", struct config_rate_limit, per_second, "0", 0, 1e6, 0),
    I("burst", struct config_rate_limit, burst, "10", 1, 1000000),
    END,
};

static const struct ck breaker_table[] = {
    B("enabled", struct config_breaker, enabled, "true"),
    F("failure_ratio", struct config_breaker, failure_ratio, "0.5", 0, 1, CK_GT_MIN),
    I("min_requests", struct config_breaker, min_requests, "20", 1, 1000000),
    D("window", struct config_breaker, window_ms, "30s", SEC_MS, DAY_MS),
    D("open_for", struct config_breaker, open_ms, "30s", SEC_MS, DAY_MS),
    I("half_open_probes", struct config_breaker, half_open_probes, "3", 1, 1000),
    END,
};

/* base_url and idempotency_key_ttl default by kind, after the walk. */
static const struct ck gateway_table[] = {
    E("kind", struct config_gateway, kind, NULL, kind_enum, CK_REQUIRED),
    S("base_url", struct config_gateway, base_url, NULL, 0),
    S("secret_key", struct config_gateway, secret_key, NULL, CK_REQUIRED | CK_SECRET),
    D("connect_timeout", struct config_gateway, connect_timeout_ms, "3s", 1, 5 * MIN_MS),
    D("timeout", struct config_gateway, timeout_ms, "10s", 1, 10 * MIN_MS),
    D("idempotency_key_ttl", struct config_gateway, idempotency_key_ttl_ms, NULL, SEC_MS,
      365 * DAY_MS),
    B("tls_verify", struct config_gateway, tls_verify, "true"),
    S("ca_file", struct config_gateway, ca_file, NULL, 0),
    SEC("rate_limit", struct config_gateway, rate_limit, rate_limit_table, 0),
    SEC("breaker", struct config_gateway, breaker, breaker_table, 0),
    /* Overrides only: the top-level retry: is copied in first. */
    SEC("retry", struct config_gateway, retry, retry_table, CK_NODEFAULTS),
    END,
};

static const struct ck route_table[] = {
    S("gateway", struct config_slack_route, gateway, NULL, 0),
    S("reason", struct config_slack_route, reason, NULL, 0),
    S("webhook_url", struct config_slack_route, webhook_url, NULL, CK_REQUIRED | CK_SECRET),
    END,
};

static bool parse_routes(struct cfg_ctx *c, const struct ck *e, const struct cy_pair *p, int line,
                         const char *path, void *base);
static bool parse_kafka(struct cfg_ctx *c, const struct ck *e, const struct cy_pair *p, int line,
                        const char *path, void *base);
static bool parse_gateways(struct cfg_ctx *c, const struct ck *e, const struct cy_pair *p, int line,
                           const char *path, void *base);

/* digest: is a map in the file but flat members of struct config_slack. */
static const struct ck digest_table[] = {
    I("threshold", struct config_slack, digest_threshold, "10", 1, 1000000),
    D("window", struct config_slack, digest_window_ms, "60s", SEC_MS, DAY_MS),
    END,
};

static const struct ck slack_table[] = {
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

static const struct ck alerts_table[] = {
    SEC("slack", struct config_alerts, slack, slack_table, 0),
    END,
};

static const struct ck metrics_table[] = {
    S("listen", struct config_metrics, listen, NULL, 0),
    END,
};

static const struct ck root_table[] = {
    {"log", CK_SECTION, 0, NULL, 0, 0, 0, log_table, NULL, NULL},
    SEC("database", struct config, database, database_table, 0),
    CUSTOM("kafka", parse_kafka),
    SEC("topics", struct config, topics, topics_table, 0),
    SEC("consumers", struct config, consumers, consumers_table, 0),
    SEC("relay", struct config, relay, relay_table, 0),
    SEC("retry", struct config, retry, retry_table, 0),
    CUSTOM("gateways", parse_gateways), /* after retry: gateways inherit it */
    SEC("alerts", struct config, alerts, alerts_table, 0),
    SEC("metrics", struct config, metrics, metrics_table, 0),
    END,
};

/* ---- custom sections --------------------------------------------------- */

static bool parse_kafka(struct cfg_ctx *c, const struct ck *e, const struct cy_pair *p, int line,
                        const char *path, void *base)
{
    struct config_kafka *k = &((struct config *)base)->kafka;
    const struct cy_node *map = p ? &p->value : NULL;
    char child[300];

    if (map != NULL && map->kind != CY_MAP)
        return fail(c, map->line, path, "expected a map, got %s", cy_kind_name(map));
    if (map != NULL && map->n > 0) {
        k->props = calloc(map->n, sizeof(*k->props));
        if (k->props == NULL)
            return fail(c, map->line, path, "out of memory");
    }
    for (size_t i = 0; map != NULL && i < map->n; i++) {
        const struct cy_pair *kp = &map->pairs[i];
        join_path(child, sizeof(child), path, kp->key);
        for (size_t j = 0; j < i; j++)
            if (strcmp(map->pairs[j].key, kp->key) == 0)
                return fail(c, kp->line, child, "duplicate key (first at line %d)",
                            map->pairs[j].line);
        /* librdkafka property values are text; YAML numbers and booleans
         * arrive here as their text already. */
        if (kp->value.kind != CY_SCALAR || kp->value.null)
            return fail(c, kp->value.line, child, "expected a string, got %s",
                        cy_kind_name(&kp->value));
        k->props[i].key = strdup(kp->key);
        k->props[i].value = strdup(kp->value.value);
        k->props[i].line = kp->line;
        k->nprops = i + 1;
        if (k->props[i].key == NULL || k->props[i].value == NULL)
            return fail(c, kp->line, child, "out of memory");
    }
    const struct cy_pair *bs = cy_map_find(map, "bootstrap.servers");
    join_path(child, sizeof(child), path, "bootstrap.servers");
    if (bs == NULL)
        return fail(c, line, child, "missing required key");
    if (bs->value.value[0] == '\0')
        return fail(c, bs->line, child, "value must not be empty");
    return true;
}

static bool parse_routes(struct cfg_ctx *c, const struct ck *e, const struct cy_pair *p, int line,
                         const char *path, void *base)
{
    struct config_slack *s = base;
    const struct cy_node *seq = p ? &p->value : NULL;
    char child[300];

    if (seq == NULL)
        return true;
    if (seq->kind != CY_SEQ)
        return fail(c, seq->line, path, "expected a list of maps, got %s", cy_kind_name(seq));
    s->routes = calloc(seq->n ? seq->n : 1, sizeof(*s->routes));
    if (s->routes == NULL)
        return fail(c, seq->line, path, "out of memory");
    for (size_t i = 0; i < seq->n; i++) {
        const struct cy_node *item = &seq->items[i];
        snprintf(child, sizeof(child), "%s[%zu]", path, i);
        s->nroutes = i + 1;
        if (item->kind != CY_MAP)
            return fail(c, item->line, child, "expected a map, got %s", cy_kind_name(item));
        if (!walk(c, route_table, item, item->line, child, &s->routes[i]))
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

static bool parse_gateways(struct cfg_ctx *c, const struct ck *e, const struct cy_pair *p, int line,
                           const char *path, void *base)
{
    struct config *cfg = base;
    const struct cy_node *map = p ? &p->value : NULL;
    char child[300];

    if (map != NULL && map->kind != CY_MAP)
        return fail(c, map->line, path, "expected a map of gateway names, got %s",
                    cy_kind_name(map));
    if (map == NULL || map->n == 0)
        return fail(c, p ? p->line : line, path, "at least one gateway must be configured");
    cfg->gateways = calloc(map->n, sizeof(*cfg->gateways));
    if (cfg->gateways == NULL)
        return fail(c, map->line, path, "out of memory");
    for (size_t i = 0; i < map->n; i++) {
        const struct cy_pair *gp = &map->pairs[i];
        struct config_gateway *gw = &cfg->gateways[i];
        join_path(child, sizeof(child), path, gp->key);
        cfg->ngateways = i + 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(map->pairs[j].key, gp->key) == 0)
                return fail(c, gp->line, child, "duplicate key (first at line %d)",
                            map->pairs[j].line);
        if (!gateway_name_ok(gp->key))
            return fail(c, gp->line, child,
                        "invalid gateway name: must be 1 to 32 characters of a-z, 0-9, _ and -");
        gw->name = strdup(gp->key);
        if (gw->name == NULL || !copy_policy(&gw->retry, &cfg->retry))
            return fail(c, gp->line, child, "out of memory");
        if (gp->value.kind != CY_MAP)
            return fail(c, gp->value.line, child, "expected a map, got %s",
                        cy_kind_name(&gp->value));
        if (!apply_defaults(c, gateway_table, gw))
            return false;
        gw->idempotency_key_ttl_ms = -1; /* "not set": the kind decides below */
        if (!walk(c, gateway_table, &gp->value, gp->line, child, gw))
            return false;
        if (gw->idempotency_key_ttl_ms < 0)
            gw->idempotency_key_ttl_ms =
                gw->kind == GATEWAY_STRIPE ? CONFIG_STRIPE_KEY_TTL_MS : CONFIG_TOSS_KEY_TTL_MS;
        if (gw->base_url == NULL) {
            gw->base_url = strdup(gw->kind == GATEWAY_STRIPE ? "https://api.stripe.com"
                                                             : "https://api.tosspayments.com");
            if (gw->base_url == NULL)
                return fail(c, gp->line, child, "out of memory");
        }
    }
    return true;
}

/* ---- cross-field validation -------------------------------------------- */

/* The pair at keys[0].keys[1]... (NULL-terminated), or NULL. */
static const struct cy_pair *find(const struct cfg_ctx *c, const char *const *keys)
{
    const struct cy_node *node = c->root;
    const struct cy_pair *p = NULL;

    for (; *keys != NULL; keys++) {
        p = cy_map_find(node, *keys);
        if (p == NULL)
            return NULL;
        node = &p->value;
    }
    return p;
}

/* Where the effective retry key of gateway gw was set: its own retry:
 * override, else the top-level retry:, else (a default) the gateway's key.
 * Writes the key path and returns the line. */
static int retry_key_where(const struct cfg_ctx *c, const struct config_gateway *gw,
                           const char *key, char *path, size_t pathlen)
{
    const char *own[] = {"gateways", gw->name, "retry", key, NULL};
    const char *top[] = {"retry", key, NULL};
    const char *gwkey[] = {"gateways", gw->name, NULL};
    const struct cy_pair *p;

    if ((p = find(c, own)) != NULL) {
        snprintf(path, pathlen, "gateways.%s.retry.%s", gw->name, key);
        return p->line;
    }
    if ((p = find(c, top)) != NULL) {
        snprintf(path, pathlen, "retry.%s", key);
        return p->line;
    }
    snprintf(path, pathlen, "gateways.%s.retry.%s", gw->name, key);
    p = find(c, gwkey);
    return p ? p->line : 0;
}

static bool validate_policy(struct cfg_ctx *c, const struct retry_policy *rp,
                            const struct config_gateway *gw)
{
    char path[300], a[32], b[32];
    int line;

    if (rp->max_delay_ms >= rp->initial_delay_ms)
        return true;
    if (gw != NULL) {
        line = retry_key_where(c, gw, "max_delay", path, sizeof(path));
    } else {
        const char *keys[] = {"retry", "max_delay", NULL};
        const struct cy_pair *p = find(c, keys);
        snprintf(path, sizeof(path), "retry.max_delay");
        line = p ? p->line : 0;
    }
    return fail(c, line, path, "max_delay %s is shorter than initial_delay %s",
                duration_format(rp->max_delay_ms, a, sizeof(a)),
                duration_format(rp->initial_delay_ms, b, sizeof(b)));
}

static bool validate_gateway(struct cfg_ctx *c, const struct config_gateway *gw)
{
    const int64_t kind_max =
        gw->kind == GATEWAY_STRIPE ? CONFIG_STRIPE_KEY_TTL_MS : CONFIG_TOSS_KEY_TTL_MS;
    const char *ttl_keys[] = {"gateways", gw->name, "idempotency_key_ttl", NULL};
    const char *url_keys[] = {"gateways", gw->name, "base_url", NULL};
    const struct cy_pair *p;
    char path[300], a[32], b[32];

    if (!validate_policy(c, &gw->retry, gw))
        return false;
    if (strncmp(gw->base_url, "http://", 7) != 0 && strncmp(gw->base_url, "https://", 8) != 0) {
        p = find(c, url_keys);
        snprintf(path, sizeof(path), "gateways.%s.base_url", gw->name);
        return fail(c, p ? p->line : 0, path,
                    "invalid URL \"%s\": must start with http:// or https://", gw->base_url);
    }
    if (gw->idempotency_key_ttl_ms > kind_max) {
        p = find(c, ttl_keys);
        snprintf(path, sizeof(path), "gateways.%s.idempotency_key_ttl", gw->name);
        return fail(c, p ? p->line : 0, path,
                    "%s is longer than the %s idempotency-key lifetime that %s documents",
                    duration_format(gw->idempotency_key_ttl_ms, a, sizeof(a)),
                    duration_format(kind_max, b, sizeof(b)), config_gateway_kind_name(gw->kind));
    }
    if (gw->retry.deadline_ms >= gw->idempotency_key_ttl_ms) {
        int line = retry_key_where(c, gw, "deadline", path, sizeof(path));
        return fail(c, line, path,
                    "retry deadline %s of gateway \"%s\" must be shorter than its "
                    "idempotency-key lifetime %s: a retry after the key expired could refund "
                    "twice",
                    duration_format(gw->retry.deadline_ms, a, sizeof(a)), gw->name,
                    duration_format(gw->idempotency_key_ttl_ms, b, sizeof(b)));
    }
    if (c->cfg->consumers.retry.lease_ms <= gw->timeout_ms) {
        const char *lease_keys[] = {"consumers", "retry", "lease", NULL};
        const char *timeout_keys[] = {"gateways", gw->name, "timeout", NULL};
        int line;
        if ((p = find(c, lease_keys)) != NULL) {
            snprintf(path, sizeof(path), "consumers.retry.lease");
        } else {
            p = find(c, timeout_keys);
            snprintf(path, sizeof(path), "gateways.%s.timeout", gw->name);
        }
        line = p ? p->line : 0;
        return fail(c, line, path,
                    "lease %s must be longer than the timeout %s of gateway \"%s\": a lease that "
                    "expires during a call would let a second worker call the gateway "
                    "concurrently",
                    duration_format(c->cfg->consumers.retry.lease_ms, a, sizeof(a)),
                    duration_format(gw->timeout_ms, b, sizeof(b)), gw->name);
    }
    return true;
}

static bool listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    char *end;
    long port;

    if (colon == NULL || colon == s || colon[1] == '\0')
        return false;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    return *end == '\0' && errno == 0 && port >= 1 && port <= 65535;
}

static bool validate(struct cfg_ctx *c)
{
    struct config *cfg = c->cfg;
    const struct config_slack *s = &cfg->alerts.slack;
    const struct cy_pair *p;
    char a[32], b[32];

    if (cfg->database.reconnect_max_ms < cfg->database.reconnect_min_ms) {
        const char *keys[] = {"database", "reconnect_max", NULL};
        p = find(c, keys);
        return fail(c, p ? p->line : 0, "database.reconnect_max",
                    "reconnect_max %s is shorter than reconnect_min %s",
                    duration_format(cfg->database.reconnect_max_ms, a, sizeof(a)),
                    duration_format(cfg->database.reconnect_min_ms, b, sizeof(b)));
    }
    if (!validate_policy(c, &cfg->retry, NULL))
        return false;
    for (size_t i = 0; i < cfg->ngateways; i++)
        if (!validate_gateway(c, &cfg->gateways[i]))
            return false;
    if (s->enabled && s->webhook_url == NULL) {
        const char *keys[] = {"alerts", "slack", "enabled", NULL};
        p = find(c, keys);
        return fail(c, p ? p->line : 0, "alerts.slack.webhook_url",
                    "required when alerts.slack.enabled is true");
    }
    for (size_t i = 0; i < s->nroutes; i++) {
        const char *g = s->routes[i].gateway;
        if (g != NULL && config_gateway_find(cfg, g) == NULL) {
            const char *keys[] = {"alerts", "slack", "routes", NULL};
            char path[64];
            p = find(c, keys);
            snprintf(path, sizeof(path), "alerts.slack.routes[%zu].gateway", i);
            return fail(c, p ? p->value.items[i].line : 0, path, "unknown gateway \"%s\"", g);
        }
    }
    if (cfg->metrics.listen != NULL && !listen_ok(cfg->metrics.listen)) {
        const char *keys[] = {"metrics", "listen", NULL};
        p = find(c, keys);
        return fail(c, p ? p->line : 0, "metrics.listen",
                    "invalid listen address \"%s\": expected host:port", cfg->metrics.listen);
    }
    return true;
}

/* ---- public ------------------------------------------------------------ */

/* Takes ownership of root (may be NULL after a parse error). */
static struct config *build(const char *name, struct cy_node *root, char *err, size_t errlen)
{
    struct config *cfg = NULL;
    struct cfg_ctx c = {name, root, NULL, err, errlen};
    bool ok = false;

    if (root == NULL)
        return NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || (cfg->path = strdup(name)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto out;
    }
    c.cfg = cfg;
    ok = apply_defaults(&c, root_table, cfg) && walk(&c, root_table, root, root->line, "", cfg) &&
         validate(&c);
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
    free_table(root_table, cfg);
    for (size_t i = 0; i < cfg->kafka.nprops; i++) {
        free(cfg->kafka.props[i].key);
        free(cfg->kafka.props[i].value);
    }
    free(cfg->kafka.props);
    for (size_t i = 0; i < cfg->ngateways; i++) {
        free(cfg->gateways[i].name);
        free_table(gateway_table, &cfg->gateways[i]);
    }
    free(cfg->gateways);
    for (size_t i = 0; i < cfg->alerts.slack.nroutes; i++)
        free_table(route_table, &cfg->alerts.slack.routes[i]);
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
    switch (kind) {
    case GATEWAY_TOSS:
        return "toss";
    case GATEWAY_STRIPE:
        return "stripe";
    }
    return "unknown";
}

bool config_retry_code_is_non_retryable(const struct retry_policy *policy, const char *code)
{
    for (size_t i = 0; policy != NULL && code != NULL && i < policy->n_non_retryable_codes; i++)
        if (strcmp(policy->non_retryable_codes[i], code) == 0)
            return true;
    return false;
}
