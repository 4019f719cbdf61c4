/*
 * config: the one YAML file of every cancel-retry process, parsed once into
 * typed structs.
 *
 * Scalars may use ${VAR} and ${VAR:-default}; an unset ${VAR} without default
 * is an error. Unknown keys, wrong types, out-of-range values and unsafe
 * combinations (a retry deadline longer than a gateway's idempotency-key
 * lifetime) fail the load with "FILE:LINE: KEY: reason".
 *
 * Durations are stored in milliseconds (int64_t *_ms members).
 * Ownership: config_load() returns a struct config that owns every string and
 * array below it; config_free() releases all of it.
 */
#ifndef CR_CONFIG_H
#define CR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"

/* The gateway APIs cancel-retry speaks. Adding one: a row in config_kinds.c
 * (its documented limits), a driver file in src/gateway/ (its wire format)
 * and its rows in src/gateway/gateway_table.c (what its answers mean). */
enum gateway_kind {
    GATEWAY_TOSS = 0,
    GATEWAY_STRIPE = 1,
    GATEWAY_PORTONE = 2,
    GATEWAY_KAKAOPAY = 3,
    GATEWAY_ADYEN = 4,
};
#define GATEWAY_KIND_COUNT 5

enum jitter_mode { JITTER_NONE = 0, JITTER_FULL = 1 };

/* Idempotency-key lifetimes the gateways document; a configured ttl may be
 * shorter, never longer. */
#define CONFIG_TOSS_KEY_TTL_MS   (15LL * 24 * 3600 * 1000)
#define CONFIG_STRIPE_KEY_TTL_MS (24LL * 3600 * 1000)

/* What the config knows about a gateway kind: the defaults and limits its
 * settings are checked against, from the gateway's documents (cited in
 * docs/gateways.md). */
struct config_kind {
    enum gateway_kind kind;
    const char *name;             /* the kind: value */
    const char *default_base_url; /* NULL: base_url is required */
    int64_t key_ttl_max_ms;       /* documented key lifetime; 0 = the gateway has no key */
    int64_t key_ttl_default_ms;   /* when idempotency_key_ttl is not set */
    /* Every retry must end before the key dies (a resend after it is a new
     * refund). False where the gateway's balance guard and an inquiry before
     * every send carry exactly-once without the key (PortOne), or where
     * there is no key at all (KakaoPay). */
    bool key_binds_retries;
    int64_t default_timeout_ms; /* the gateway's own recommendation */
    const char *account_key;    /* its account setting: store_id, cid, merchant_account */
    bool account_required;
};

/* The row of kind; never NULL for a valid kind. */
const struct config_kind *config_kind_of(enum gateway_kind kind);

/* One "key: value" of a pass-through map (the kafka: section). */
struct config_kv {
    char *key;
    char *value;
    int line; /* line in the config file, for error messages */
};

struct config_database {
    char *dsn;                    /* libpq conninfo or URI (may hold a password) */
    int64_t connect_timeout_ms;   /* default 5s */
    int64_t reconnect_min_ms;     /* first back-off step, default 200ms */
    int64_t reconnect_max_ms;     /* back-off cap, default 30s */
    int64_t statement_timeout_ms; /* default 30s; 0 = none */
    bool prepared_statements;     /* default true; false behind a pooler that cannot keep them */
};

struct config_kafka {
    struct config_kv *props; /* passed to rd_kafka_conf_set in order */
    size_t nprops;
};

struct config_topic {
    char *name;
    int partitions;         /* >= 1 */
    int replication_factor; /* >= 1 */
};

struct config_topics {
    struct config_topic cancel_failed; /* default payments.cancel.failed, 3 partitions */
    struct config_topic retry;         /* default payments.cancel.retry, 6 partitions */
    struct config_topic outcome;       /* default payments.cancel.outcome, 3 partitions */
    struct config_topic dlq;           /* default payments.cancel.dlq, 1 partition */
};

struct retry_policy {
    int max_attempts;           /* >= 1, default 5 */
    int64_t initial_delay_ms;   /* default 30s */
    double backoff_coefficient; /* >= 1.0, default 2.0 */
    int64_t max_delay_ms;       /* >= initial_delay, default 30m */
    enum jitter_mode jitter;    /* default full */
    int64_t deadline_ms;        /* total budget from acceptance, default 12h */
    char **non_retryable_codes; /* gateway error codes never retried */
    size_t n_non_retryable_codes;
};

struct config_rate_limit {
    double per_second; /* 0 = unlimited */
    int burst;         /* >= 1 */
};

struct config_breaker {
    bool enabled;         /* default true */
    double failure_ratio; /* (0,1], default 0.5 */
    int min_requests;     /* distinct requests in the window before the ratio counts, default 20 */
    int64_t window_ms;    /* default 30s */
    int64_t open_ms;      /* how long it stays open before a half-open probe, default 30s */
    int half_open_probes; /* successes needed to close again, default 3 */
};

struct config_gateway {
    char *name; /* the map key under gateways:, used in events */
    enum gateway_kind kind;
    char *base_url;   /* default by kind: https://api.tosspayments.com, https://api.stripe.com */
    char *secret_key; /* required; secret: never log it */
    /* The kind's account (struct config_kind.account_key), NULL when not
     * set; only the kind's own key is accepted. */
    char *store_id;                 /* PortOne: the store the credential may act for */
    char *cid;                      /* KakaoPay: the merchant (가맹점) code */
    char *merchant_account;         /* Adyen: the merchant account */
    int64_t connect_timeout_ms;     /* default 3s */
    int64_t timeout_ms;             /* whole request, default 10s */
    int64_t idempotency_key_ttl_ms; /* default and maximum: the kind's documented lifetime */
    bool tls_verify;                /* default true */
    char *ca_file;                  /* optional CA bundle */
    bool keep_alive;                /* refunds reuse connections (guarded, http.h); default true */
    int64_t keep_alive_idle_ms;     /* reuse only connections idle less than this; default 2s */
    /* Not a key: consumers.retry.max_in_flight, the most calls a process
     * makes at once, as the cap on connections per gateway host. */
    int max_connections;
    struct config_rate_limit rate_limit;
    struct config_breaker breaker;
    struct retry_policy
        retry; /* effective policy: top-level retry: with this gateway's overrides */
    /* Webhooks of this gateway (the webhook-receiver): the HMAC keys its
     * notifications are signed with, 64 hex characters each, the current one
     * and during a rotation the previous one; none: the gateway sends none.
     * Secret. */
    char **webhook_hmac_keys;
    size_t n_webhook_hmac_keys;
    char *webhook_basic_auth; /* "user:password" the sender must present, or NULL; secret */
};

struct config_slack_route {
    char *gateway;     /* NULL = any */
    char *reason;      /* NULL = any (outcome status or dlq.reason) */
    char *webhook_url; /* secret */
};

struct config_slack {
    bool enabled;
    char *webhook_url; /* secret; required when enabled */
    char **statuses;   /* outcome statuses that alert, default FAILED, EXHAUSTED */
    size_t n_statuses;
    double rate_per_second; /* default 1 */
    int burst;              /* default 3 */
    int digest_threshold; /* more alerts than this within digest_window -> one digest; default 10 */
    int64_t digest_window_ms; /* default 60s */
    int64_t timeout_ms;       /* HTTP timeout, default 10s */
    struct config_slack_route *routes;
    size_t nroutes;
};

struct config_alerts {
    struct config_slack slack;
};

struct config_metrics {
    char *listen; /* "host:port" or NULL (disabled) */
};

/* The webhook-receiver (docs/operations.md "Webhook receiver"). */
struct config_webhooks {
    char *listen; /* "host:port" the receiver serves; NULL: it cannot run */
    char *path;   /* where deliveries are POSTed, default /webhooks/adyen */
};

struct config_intake {
    char *group_id;          /* default cancel-retry-intake */
    int batch_size;          /* messages per transaction, default 500 */
    int64_t batch_window_ms; /* how long a batch waits for more messages, default 2ms */
};

struct config_retry_consumer {
    char *group_id;    /* default cancel-retry-retry */
    int max_in_flight; /* concurrent gateway calls per process, default 32 */
    int64_t lease_ms;  /* claim lease, > every gateway timeout; default 2m */
};

struct config_alert_consumer {
    char *group_id; /* default cancel-retry-alert */
};

struct config_consumers {
    struct config_intake intake;
    struct config_retry_consumer retry;
    struct config_alert_consumer alert;
};

struct config_relay {
    int batch_size;                /* rows per publish batch, default 500 */
    int64_t poll_interval_ms;      /* longest sleep without a NOTIFY, default 5s */
    int64_t retention_ms;          /* published rows kept this long, default 7d */
    int64_t reconcile_interval_ms; /* default 30s */
    int64_t flush_timeout_ms;      /* on shutdown, default 10s */
    /* How long the active relay's lease (relay_lease.h) lasts without a
     * renewal; renewed every third of it. Bounds the fail-over after the
     * active relay froze or was cut off. Default 10s, 3s..10m. */
    int64_t leader_lease_ms;
};

/* Reconciliation against the gateways (reconcile.h): the pass the active
 * outbox-relay runs on its own. cancelctl reconcile uses window and
 * rate_per_second as its defaults, whatever enabled says. */
struct config_reconcile {
    bool enabled;           /* the relay runs scheduled passes, default true */
    int64_t interval_ms;    /* from one scheduled pass's start to the next, default 1h */
    int64_t window_ms;      /* requests finished this long ago or less, default 24h */
    double rate_per_second; /* inquiries per second and gateway, default 5 */
};

struct config {
    char *path;               /* the file it was loaded from */
    enum log_level log_level; /* log.level, default info */
    struct config_database database;
    struct config_kafka kafka;
    struct config_topics topics;
    struct config_consumers consumers;
    struct config_relay relay;
    struct config_reconcile reconcile;
    struct retry_policy retry; /* the top-level default policy */
    struct config_gateway *gateways;
    size_t ngateways;
    struct config_alerts alerts;
    struct config_metrics metrics;
    struct config_webhooks webhooks;
};

/* Load and validate path. On failure returns NULL and writes
 * "path:line: key: reason" (or "path: reason" when no line applies) to err. */
struct config *config_load(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Same, from a string already in memory; name is used in messages. */
struct config *config_load_string(const char *name, const char *yaml, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void config_free(struct config *cfg);

/* The retry policy for requests of gateway name: that gateway's effective
 * policy, or the top-level one for a gateway no longer in the config. */
const struct retry_policy *config_retry_policy_for(const struct config *cfg, const char *gateway);

/* The gateway named name, or NULL. */
const struct config_gateway *config_gateway_find(const struct config *cfg, const char *name);

const char *config_gateway_kind_name(enum gateway_kind kind);

/* How long the key of gw binds its retries (attempt.h): its ttl, or 0 when
 * it binds none (struct config_kind.key_binds_retries). */
int64_t config_gateway_key_binding_ms(const struct config_gateway *gw);

/* True if code is in policy->non_retryable_codes. */
bool config_retry_code_is_non_retryable(const struct retry_policy *policy, const char *code);

#endif
