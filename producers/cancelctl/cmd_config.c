/*
 * cancelctl config check: load and validate the config as every process
 * does at start-up, without a database, a broker or a gateway.
 */
#include <stdio.h>
#include <string.h>

#include "cancelctl.h"
#include "kafka/kafka.h"

static const char help[] =
    "usage: cancelctl config check\n"
    "\n"
    "Load the config file the way every process does at start-up (${VAR} expansion, types,\n"
    "ranges, cross-checks) and hand its kafka: map to librdkafka, then stop: nothing is\n"
    "connected to. Exit 0 when a process would start with it, 1 with the loader's message\n"
    "(\"FILE:LINE: key: reason\") when it would not. Secrets are never printed.\n"
    "\n"
    "Use it before shipping a changed config (a ConfigMap, /etc/cancel-retry): a bad file\n"
    "found here does not stop a running service at its next restart.\n"
    "\n"
    "Examples:\n"
    "  cancelctl --config /etc/cancel-retry/cancel-retry.yaml config check\n"
    "  cancelctl config check --json";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_config = {
    "config", run, "check the config file without connecting (config check)", help};

static int check(struct cancelctl_ctx *ctx)
{
    char err[1024];
    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;
    /* The loader keeps the kafka: map as text; librdkafka judges the names
     * and values only when a client is made, so make its configuration. */
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, err, sizeof(err));
    if (conf == NULL) {
        int rc = cancelctl_fail(ctx, "%s", err);
        config_free(cfg);
        return rc;
    }
    rd_kafka_conf_destroy(conf);

    if (ctx->json) {
        json_t *gateways = json_array();
        for (size_t i = 0; i < cfg->ngateways; i++)
            json_array_append_new(gateways, json_string(cfg->gateways[i].name));
        cancelctl_print_json(json_pack("{s:b, s:s, s:s?, s:o}", "ok", 1, "file", cfg->path,
                                       "metricsListen", cfg->metrics.listen, "gateways", gateways));
    } else {
        printf("%s: ok (%zu gateway%s, metrics %s)\n", cfg->path, cfg->ngateways,
               cfg->ngateways == 1 ? "" : "s", cfg->metrics.listen ? cfg->metrics.listen : "off");
    }
    config_free(cfg);
    return CANCELCTL_EXIT_OK;
}

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    if (argc < 2)
        return cancelctl_usage_error(&cancelctl_cmd_config, "missing subcommand (check)");
    if (strcmp(argv[1], "check") != 0)
        return cancelctl_usage_error(&cancelctl_cmd_config, "unknown subcommand \"%s\"", argv[1]);
    if (argc > 2)
        return cancelctl_usage_error(&cancelctl_cmd_config, "unexpected argument \"%s\"", argv[2]);
    return check(ctx);
}
