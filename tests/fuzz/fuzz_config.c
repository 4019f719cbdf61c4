/*
 * fuzz_config: the config file (src/config/config.c, config_table.c,
 * config_validate.c, config_yaml.c).
 *
 * Input: the YAML text. It is loaded twice, with config_load_string() and,
 * written to a temp file, with config_load() (what every process does at
 * start and on SIGHUP). Properties:
 * - both loads agree: both succeed, or both fail with the same message (a
 *   text with a NUL byte is only loaded from the file: a C string ends there);
 * - a failure says why and starts with the file's name ("FILE:LINE: ...");
 * - a loaded config keeps the promises of config.h: at least one gateway,
 *   each with a name, a secret, an http(s) base URL, a key lifetime no
 *   longer than its kind documents and a retry deadline shorter than it;
 *   max_delay >= initial_delay; a lease longer than every gateway timeout;
 * - no crash, leak or undefined behaviour.
 *
 * The environment holds the variables the shipped configs reference, so
 * that the config/ seeds load and mutations start from a valid file.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <unistd.h>

#include "config/config.h"

static char config_path[] = "/tmp/cr-fuzz-config-XXXXXX";
static bool have_path;

static void remove_config_file(void)
{
    if (have_path)
        unlink(config_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *const env[][2] = {
        {"CANCEL_RETRY_DB_DSN", "host=db dbname=cancel_retry password=pw"},
        {"KAFKA_BOOTSTRAP_SERVERS", "k1:9093,k2:9093"},
        {"KAFKA_SASL_USERNAME", "cancel-retry"},
        {"KAFKA_SASL_PASSWORD", "kafka-pw"},
        {"TOSS_SECRET_KEY", "test_sk_toss"},
        {"STRIPE_SECRET_KEY", "sk_test_stripe"},
        {"SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/main"},
        {"SLACK_WEBHOOK_URL_STRIPE", "https://hooks.slack.com/services/T0/B0/stripe"},
        {"CR_PG_PORT", "55432"},
        {"CR_KAFKA_BOOTSTRAP", "127.0.0.1:59092"},
        {"CR_GATEWAY_SIM_PORT", "28080"},
        {"CR_METRICS_PORT", "0"},
        {"METRICS_PORT", "9102"},
        {"EMPTY", ""},
    };
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
        setenv(env[i][0], env[i][1], 1);
    unsetenv("TOSS_CA_FILE");
    unsetenv("STRIPE_CA_FILE");

    if (!have_path) {
        int fd = mkstemp(config_path);
        FUZZ_CHECK(fd >= 0, "could not create %s", config_path);
        close(fd);
        have_path = true;
        atexit(remove_config_file);
    }
    return 0;
}

static void write_config_file(const uint8_t *data, size_t size)
{
    FILE *f = fopen(config_path, "wb");
    FUZZ_CHECK(f != NULL, "could not open %s", config_path);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size && fclose(f) == 0, "could not write %s",
               config_path);
}

static bool http_url(const char *s)
{
    return s != NULL && (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0);
}

/* The promises of config.h about a config that loaded. */
static void check_config(const struct config *cfg)
{
    FUZZ_CHECK(cfg->ngateways >= 1 && cfg->gateways != NULL, "no gateway");
    FUZZ_CHECK(cfg->database.dsn != NULL && cfg->database.dsn[0] != '\0', "no database.dsn");
    FUZZ_CHECK(cfg->database.reconnect_max_ms >= cfg->database.reconnect_min_ms,
               "reconnect_max < reconnect_min");
    FUZZ_CHECK(cfg->retry.max_attempts >= 1 &&
                   cfg->retry.max_delay_ms >= cfg->retry.initial_delay_ms,
               "retry policy");
    bool bootstrap = false;
    for (size_t i = 0; i < cfg->kafka.nprops; i++) {
        FUZZ_CHECK(cfg->kafka.props[i].key != NULL && cfg->kafka.props[i].value != NULL,
                   "kafka property without a key or value");
        if (strcmp(cfg->kafka.props[i].key, "bootstrap.servers") == 0)
            bootstrap = cfg->kafka.props[i].value[0] != '\0';
    }
    FUZZ_CHECK(bootstrap, "no kafka bootstrap.servers");
    for (size_t i = 0; i < cfg->ngateways; i++) {
        const struct config_gateway *gw = &cfg->gateways[i];
        int64_t kind_max =
            gw->kind == GATEWAY_STRIPE ? CONFIG_STRIPE_KEY_TTL_MS : CONFIG_TOSS_KEY_TTL_MS;
        FUZZ_CHECK(gw->name != NULL && config_gateway_find(cfg, gw->name) == gw,
                   "gateway %zu cannot be found by its name", i);
        FUZZ_CHECK(gw->secret_key != NULL && gw->secret_key[0] != '\0', "gateway %s: no secret",
                   gw->name);
        FUZZ_CHECK(http_url(gw->base_url), "gateway %s: base_url %s", gw->name, gw->base_url);
        FUZZ_CHECK(gw->idempotency_key_ttl_ms > 0 && gw->idempotency_key_ttl_ms <= kind_max,
                   "gateway %s: key lifetime %lld", gw->name,
                   (long long)gw->idempotency_key_ttl_ms);
        FUZZ_CHECK(gw->retry.deadline_ms < gw->idempotency_key_ttl_ms,
                   "gateway %s: a deadline past the key's lifetime", gw->name);
        FUZZ_CHECK(gw->retry.max_delay_ms >= gw->retry.initial_delay_ms,
                   "gateway %s: max_delay < initial_delay", gw->name);
        FUZZ_CHECK(cfg->consumers.retry.lease_ms > gw->timeout_ms,
                   "gateway %s: a lease shorter than the timeout", gw->name);
        FUZZ_CHECK(config_retry_policy_for(cfg, gw->name) == &gw->retry,
                   "gateway %s: not its own retry policy", gw->name);
        for (size_t j = 0; j < gw->retry.n_non_retryable_codes; j++)
            FUZZ_CHECK(
                config_retry_code_is_non_retryable(&gw->retry, gw->retry.non_retryable_codes[j]),
                "gateway %s: a listed code is not non-retryable", gw->name);
    }
    FUZZ_CHECK(config_retry_policy_for(cfg, "no such gateway!") == &cfg->retry,
               "an unknown gateway does not get the top-level policy");
    FUZZ_CHECK(!cfg->alerts.slack.enabled || cfg->alerts.slack.webhook_url != NULL,
               "slack enabled without a webhook");
    for (size_t i = 0; i < cfg->alerts.slack.nroutes; i++) {
        const struct config_slack_route *r = &cfg->alerts.slack.routes[i];
        FUZZ_CHECK(r->webhook_url != NULL, "route %zu without a webhook", i);
        FUZZ_CHECK(r->gateway == NULL || config_gateway_find(cfg, r->gateway) != NULL,
                   "route %zu names an unknown gateway", i);
    }
}

/* A failed load: a reason that names the file. */
static void check_refusal(const char *err)
{
    FUZZ_CHECK(strncmp(err, config_path, strlen(config_path)) == 0 &&
                   strlen(err) > strlen(config_path) + 2,
               "a refusal that does not name the file: \"%s\"", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err_file[1024] = "", err_string[1024] = "";

    write_config_file(data, size);
    struct config *from_file = config_load(config_path, err_file, sizeof(err_file));
    if (from_file != NULL)
        check_config(from_file);
    else
        check_refusal(err_file);

    if (memchr(data, '\0', size) == NULL) {
        char *text = fuzz_strndup(data, size);
        struct config *from_string =
            config_load_string(config_path, text, err_string, sizeof(err_string));
        FUZZ_CHECK((from_file == NULL) == (from_string == NULL),
                   "the file %s, the same text %s (%s%s)", from_file ? "loads" : "fails",
                   from_string ? "loads" : "fails", err_file, err_string);
        if (from_string == NULL)
            FUZZ_CHECK(strcmp(err_file, err_string) == 0,
                       "the file and the text fail differently: \"%s\" and \"%s\"", err_file,
                       err_string);
        config_free(from_string);
        free(text);
    }
    config_free(from_file);
    return 0;
}
