/*
 * config_validate: checks that span keys, run on the complete config. Each
 * error names the key whose value decided it, at its line; where that value is
 * a default, the line of the nearest key the user did write.
 */
#include "config/config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/duration.h"
#include "webhook/adyen_hmac.h"

/* ---- cross-field validation -------------------------------------------- */

/* The pair at keys[0].keys[1]... (NULL-terminated), or NULL. */
static const struct cy_pair *find(const struct config_ctx *c, const char *const *keys)
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
static int retry_key_where(const struct config_ctx *c, const struct config_gateway *gw,
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

static bool validate_policy(struct config_ctx *c, const struct retry_policy *rp,
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
    return config_fail(c, line, path, "max_delay %s is shorter than initial_delay %s",
                       duration_format(rp->max_delay_ms, a, sizeof(a)),
                       duration_format(rp->initial_delay_ms, b, sizeof(b)));
}

/* The account keys (store_id, cid, merchant_account): only the kind's own,
 * and it when the kind requires it. */
static bool validate_account(struct config_ctx *c, const struct config_gateway *gw,
                             const struct config_kind *kind)
{
    const char *names[] = {"store_id", "cid", "merchant_account"};
    const char *values[] = {gw->store_id, gw->cid, gw->merchant_account};
    const char *gw_keys[] = {"gateways", gw->name, NULL};
    const struct cy_pair *p;
    char path[300];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *keys[] = {"gateways", gw->name, names[i], NULL};
        bool own = kind->account_key != NULL && strcmp(kind->account_key, names[i]) == 0;
        snprintf(path, sizeof(path), "gateways.%s.%s", gw->name, names[i]);
        if (values[i] != NULL && !own) {
            p = find(c, keys);
            return config_fail(c, p ? p->line : 0, path, "not a setting of kind %s", kind->name);
        }
        if (own && kind->account_required && (values[i] == NULL || values[i][0] == '\0')) {
            p = find(c, gw_keys);
            return config_fail(c, p ? p->line : 0, path, "required for kind %s", kind->name);
        }
    }
    return true;
}

/* The key lifetime against what the kind documents: never longer; absent
 * for a gateway without keys. */
static bool validate_key_ttl(struct config_ctx *c, const struct config_gateway *gw,
                             const struct config_kind *kind)
{
    const char *ttl_keys[] = {"gateways", gw->name, "idempotency_key_ttl", NULL};
    const struct cy_pair *p = find(c, ttl_keys);
    char path[300], a[32], b[32];

    snprintf(path, sizeof(path), "gateways.%s.idempotency_key_ttl", gw->name);
    if (kind->key_ttl_max_ms == 0 && p != NULL)
        return config_fail(c, p->line, path,
                           "%s has no idempotency key: its exactly-once is an inquiry before "
                           "every retry, and no key lifetime applies",
                           kind->name);
    if (gw->idempotency_key_ttl_ms > kind->key_ttl_max_ms)
        return config_fail(c, p ? p->line : 0, path,
                           "%s is longer than the %s idempotency-key lifetime that %s documents",
                           duration_format(gw->idempotency_key_ttl_ms, a, sizeof(a)),
                           duration_format(kind->key_ttl_max_ms, b, sizeof(b)), kind->name);
    return true;
}

static bool validate_gateway(struct config_ctx *c, const struct config_gateway *gw)
{
    const struct config_kind *kind = config_kind_of(gw->kind);
    const char *url_keys[] = {"gateways", gw->name, "base_url", NULL};
    const char *gw_keys[] = {"gateways", gw->name, NULL};
    const struct cy_pair *p;
    char path[300], a[32], b[32];

    if (!validate_policy(c, &gw->retry, gw))
        return false;
    if (gw->base_url == NULL) {
        p = find(c, gw_keys);
        snprintf(path, sizeof(path), "gateways.%s.base_url", gw->name);
        return config_fail(c, p ? p->line : 0, path,
                           "required for kind %s: its API host is per account", kind->name);
    }
    if (!validate_account(c, gw, kind) || !validate_key_ttl(c, gw, kind))
        return false;
    if (strncmp(gw->base_url, "http://", 7) != 0 && strncmp(gw->base_url, "https://", 8) != 0) {
        p = find(c, url_keys);
        snprintf(path, sizeof(path), "gateways.%s.base_url", gw->name);
        return config_fail(c, p ? p->line : 0, path,
                           "invalid URL \"%s\": must start with http:// or https://", gw->base_url);
    }
    if (kind->key_binds_retries && gw->retry.deadline_ms >= gw->idempotency_key_ttl_ms) {
        int line = retry_key_where(c, gw, "deadline", path, sizeof(path));
        return config_fail(
            c, line, path,
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
        return config_fail(
            c, line, path,
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
    /* Port 0: any free port, so several processes on one host never collide. */
    return *end == '\0' && errno == 0 && port >= 0 && port <= 65535;
}

/* Fail at item i of gateways.<gw>.<key> (a list), or at the key itself
 * when i < 0. Never quotes the value: these keys are secrets. */
static bool webhook_fail(struct config_ctx *c, const struct config_gateway *gw, const char *key,
                         long i, const char *reason)
{
    const char *keys[] = {"gateways", gw->name, key, NULL};
    const struct cy_pair *p = find(c, keys);
    char path[300];
    int line = p != NULL ? p->line : 0;

    if (i >= 0) {
        snprintf(path, sizeof(path), "gateways.%s.%s[%ld]", gw->name, key, i);
        if (p != NULL && p->value.kind == CY_SEQ && (size_t)i < p->value.n)
            line = p->value.items[i].line;
    } else {
        snprintf(path, sizeof(path), "gateways.%s.%s", gw->name, key);
    }
    return config_fail(c, line, path, "%s", reason);
}

/* webhooks: and each gateway's webhook keys (the webhook-receiver). A key
 * identifies its gateway: the receiver takes a delivery for the gateway
 * whose key verifies it, so no key may serve two gateways. */
static bool validate_webhooks(struct config_ctx *c)
{
    const struct config *cfg = c->cfg;
    const struct config_webhooks *w = &cfg->webhooks;
    size_t signed_gateways = 0;

    for (size_t g = 0; g < cfg->ngateways; g++) {
        const struct config_gateway *gw = &cfg->gateways[g];
        if (gw->n_webhook_hmac_keys > 2)
            return webhook_fail(c, gw, "webhook_hmac_keys", -1,
                                "at most 2 keys: the current one and, during a rotation, the "
                                "previous one");
        signed_gateways += gw->n_webhook_hmac_keys > 0;
        for (size_t i = 0; i < gw->n_webhook_hmac_keys; i++) {
            const char *key = gw->webhook_hmac_keys[i];
            if (!adyen_hmac_key_valid(key))
                return webhook_fail(c, gw, "webhook_hmac_keys", (long)i,
                                    "must be 64 hexadecimal characters (the HMAC key as the "
                                    "gateway shows it)");
            for (size_t o = 0; o < cfg->ngateways; o++)
                for (size_t k = 0; k < cfg->gateways[o].n_webhook_hmac_keys; k++)
                    if ((o != g || k != i) &&
                        strcasecmp(cfg->gateways[o].webhook_hmac_keys[k], key) == 0)
                        return webhook_fail(c, gw, "webhook_hmac_keys", (long)i,
                                            "the same key is configured twice: a key must "
                                            "identify one gateway");
        }
        const char *auth = gw->webhook_basic_auth;
        if (auth != NULL && (auth[0] == ':' || strchr(auth, ':') == NULL))
            return webhook_fail(c, gw, "webhook_basic_auth", -1,
                                "must be user:password with a non-empty user");
    }
    if (w->listen != NULL && !listen_ok(w->listen)) {
        const char *keys[] = {"webhooks", "listen", NULL};
        const struct cy_pair *p = find(c, keys);
        return config_fail(c, p ? p->line : 0, "webhooks.listen",
                           "invalid listen address \"%s\": expected host:port", w->listen);
    }
    if (w->path[0] != '/' || strpbrk(w->path, "?# \t") != NULL) {
        const char *keys[] = {"webhooks", "path", NULL};
        const struct cy_pair *p = find(c, keys);
        return config_fail(c, p ? p->line : 0, "webhooks.path",
                           "invalid path \"%s\": must start with / and hold no ?, # or space",
                           w->path);
    }
    if (w->listen != NULL && signed_gateways == 0) {
        const char *keys[] = {"webhooks", "listen", NULL};
        const struct cy_pair *p = find(c, keys);
        return config_fail(c, p ? p->line : 0, "webhooks.listen",
                           "no gateway has webhook_hmac_keys: the receiver could verify nothing");
    }
    return true;
}

bool config_validate(struct config_ctx *c)
{
    struct config *cfg = c->cfg;
    const struct config_slack *s = &cfg->alerts.slack;
    const struct cy_pair *p;
    char a[32], b[32];

    if (cfg->database.reconnect_max_ms < cfg->database.reconnect_min_ms) {
        const char *keys[] = {"database", "reconnect_max", NULL};
        p = find(c, keys);
        return config_fail(c, p ? p->line : 0, "database.reconnect_max",
                           "reconnect_max %s is shorter than reconnect_min %s",
                           duration_format(cfg->database.reconnect_max_ms, a, sizeof(a)),
                           duration_format(cfg->database.reconnect_min_ms, b, sizeof(b)));
    }
    if (cfg->reconcile.window_ms < cfg->reconcile.interval_ms) {
        const char *keys[] = {"reconcile", "window", NULL};
        const char *alt[] = {"reconcile", "interval", NULL};
        p = find(c, keys);
        if (p == NULL)
            p = find(c, alt);
        return config_fail(c, p ? p->line : 0, "reconcile.window",
                           "window %s is shorter than the interval %s: requests that finish "
                           "between two passes would never be checked",
                           duration_format(cfg->reconcile.window_ms, a, sizeof(a)),
                           duration_format(cfg->reconcile.interval_ms, b, sizeof(b)));
    }
    if (!validate_policy(c, &cfg->retry, NULL))
        return false;
    for (size_t i = 0; i < cfg->ngateways; i++)
        if (!validate_gateway(c, &cfg->gateways[i]))
            return false;
    if (s->enabled && s->webhook_url == NULL) {
        const char *keys[] = {"alerts", "slack", "enabled", NULL};
        p = find(c, keys);
        return config_fail(c, p ? p->line : 0, "alerts.slack.webhook_url",
                           "required when alerts.slack.enabled is true");
    }
    for (size_t i = 0; i < s->nroutes; i++) {
        const char *g = s->routes[i].gateway;
        if (g != NULL && config_gateway_find(cfg, g) == NULL) {
            const char *keys[] = {"alerts", "slack", "routes", NULL};
            char path[64];
            p = find(c, keys);
            snprintf(path, sizeof(path), "alerts.slack.routes[%zu].gateway", i);
            return config_fail(c, p ? p->value.items[i].line : 0, path, "unknown gateway \"%s\"",
                               g);
        }
    }
    if (cfg->metrics.listen != NULL && !listen_ok(cfg->metrics.listen)) {
        const char *keys[] = {"metrics", "listen", NULL};
        p = find(c, keys);
        return config_fail(c, p ? p->line : 0, "metrics.listen",
                           "invalid listen address \"%s\": expected host:port",
                           cfg->metrics.listen);
    }
    return validate_webhooks(c);
}
