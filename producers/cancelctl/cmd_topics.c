/*
 * cancelctl topics: create the configured Kafka topics, or check them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelctl.h"
#include "base/duration.h"
#include "kafka/topics.h"

static const char help[] =
    "usage: cancelctl topics [--check] [--timeout DURATION]\n"
    "\n"
    "Create the topics of the config's topics: section that do not exist yet, with the\n"
    "configured partitions and replication factor, and show each topic's state. A topic\n"
    "that already exists is left alone; one with fewer partitions than configured is an\n"
    "error (exit 1), one with more is a warning.\n"
    "\n"
    "Options:\n"
    "  --check             create nothing; exit 1 if a topic is missing or has fewer\n"
    "                      partitions than configured\n"
    "  --timeout DURATION  longest wait for the broker (default 15s)\n"
    "\n"
    "Examples:\n"
    "  cancelctl topics\n"
    "  cancelctl topics --check --json\n"
    "  cancelctl --config /etc/cancel-retry/cancel-retry.yaml topics --timeout 30s";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_topics = {
    "topics", run, "create the Kafka topics (--check: only verify them)", help};

static void print_report(const struct cancelctl_ctx *ctx, const struct topics_report *r, bool ok,
                         const char *error)
{
    if (ctx->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < r->n; i++) {
            const struct topic_report *t = &r->topics[i];
            json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s}", "role", t->role, "name", t->name,
                                  "partitions", t->partitions, "replicationFactor", t->replication,
                                  "state", topic_state_name(t->state));
            if (t->actual_partitions >= 0)
                json_object_set_new(o, "brokerPartitions", json_integer(t->actual_partitions));
            else
                json_object_set_new(o, "brokerPartitions", json_null());
            json_array_append_new(arr, o);
        }
        json_t *doc = json_pack("{s:b, s:o}", "ok", ok, "topics", arr);
        if (error != NULL)
            json_object_set_new(doc, "error", json_string(error));
        cancelctl_print_json(doc);
        return;
    }
    printf("%-14s %-40s %-10s %-8s %s\n", "ROLE", "TOPIC", "PARTITIONS", "BROKER", "STATE");
    for (size_t i = 0; i < r->n; i++) {
        const struct topic_report *t = &r->topics[i];
        char actual[16];
        if (t->actual_partitions >= 0)
            snprintf(actual, sizeof(actual), "%d", t->actual_partitions);
        else
            snprintf(actual, sizeof(actual), "-");
        printf("%-14s %-40s %-10d %-8s %s\n", t->role, t->name, t->partitions, actual,
               topic_state_name(t->state));
    }
}

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {{"check", no_argument, NULL, 'c'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {NULL, 0, NULL, 0}};
    bool check = false;
    int64_t timeout_ms = TOPICS_DEFAULT_TIMEOUT_MS;
    char err[1024];
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            check = true;
            break;
        case 't':
            if (!duration_parse(optarg, &timeout_ms, err, sizeof(err)) || timeout_ms <= 0 ||
                timeout_ms > 3600 * 1000)
                return cancelctl_usage_error(&cancelctl_cmd_topics,
                                             "--timeout: \"%s\" is not a duration between 1ms "
                                             "and 1h",
                                             optarg);
            break;
        default:
            return cancelctl_bad_option(&cancelctl_cmd_topics, c, argc, argv);
        }
    }
    if (optind < argc)
        return cancelctl_usage_error(&cancelctl_cmd_topics, "unexpected argument \"%s\"",
                                     argv[optind]);

    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;
    struct topics_report report;
    int rc;
    bool ok = check ? topics_describe(cfg, (int)timeout_ms, &report, err, sizeof(err))
                    : topics_ensure(cfg, (int)timeout_ms, &report, err, sizeof(err));
    if (ok && check && (report.n_missing > 0 || report.n_fewer > 0)) {
        for (size_t i = 0; i < report.n; i++) {
            const struct topic_report *t = &report.topics[i];
            if (t->state == TOPIC_MISSING || t->state == TOPIC_FEWER) {
                snprintf(err, sizeof(err), "%s%s", t->detail,
                         t->state == TOPIC_MISSING ? " (run \"cancelctl topics\" to create it)"
                                                   : "");
                break;
            }
        }
        ok = false;
    }
    if (!ok && report.answered) {
        /* The broker answered: show what it said, then why we fail. */
        print_report(ctx, &report, false, err);
        fprintf(stderr, "cancelctl: %s\n", err);
        rc = CANCELCTL_EXIT_FAILURE;
    } else if (!ok) {
        rc = cancelctl_fail(ctx, "%s", err);
    } else {
        for (size_t i = 0; i < report.n; i++) {
            if (report.topics[i].state == TOPIC_MORE)
                fprintf(stderr, "cancelctl: warning: %s\n", report.topics[i].detail);
        }
        print_report(ctx, &report, true, NULL);
        rc = CANCELCTL_EXIT_OK;
    }
    config_free(cfg);
    return rc;
}
