/*
 * service: see service.h.
 */
#include "service/service.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/redact.h"
#include "base/signals.h"

#define DEFAULT_CONFIG "config/cancel-retry.yaml"

static void usage(const struct service_info *info, FILE *out)
{
    fprintf(out,
            "usage: %s [--config FILE] [--help] [--version]\n\n%s\n\n"
            "  -c, --config FILE  configuration file (default: $CANCEL_RETRY_CONFIG, else %s)\n"
            "  -h, --help         show this help\n"
            "  -V, --version      show the version\n\n"
            "Logs are JSON lines on stderr. SIGTERM or SIGINT stops cleanly; a second one\n"
            "stops at once.\n",
            info->name, info->about, DEFAULT_CONFIG);
}

struct config *service_start(const struct service_info *info, int argc, char **argv, int *exit_code)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = getenv("CANCEL_RETRY_CONFIG");
    char err[1024];
    int c;

    log_init(info->name, LOG_INFO);
    while ((c = getopt_long(argc, argv, "c:hV", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            usage(info, stdout);
            *exit_code = 0;
            return NULL;
        case 'V':
            printf("%s %s\n", info->name, CR_VERSION);
            *exit_code = 0;
            return NULL;
        default:
            usage(info, stderr);
            *exit_code = 2;
            return NULL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", info->name, argv[optind]);
        usage(info, stderr);
        *exit_code = 2;
        return NULL;
    }
    if (path == NULL || path[0] == '\0')
        path = DEFAULT_CONFIG;

    struct config *cfg = config_load(path, err, sizeof(err));
    if (cfg == NULL) {
        /* Plain text and a log line: an operator at a terminal and a log
         * pipeline both see why start-up stopped. The loader names secrets
         * without quoting them; the patterns are a second net for a DSN in a
         * YAML error. */
        redact_buf(NULL, err, sizeof(err));
        fprintf(stderr, "%s: %s\n", info->name, err);
        log_error("cannot start: invalid configuration: %s", err);
        *exit_code = 1;
        return NULL;
    }
    /* Before the level allows debug lines and before any thread exists: from
     * here on every log line is masked with this config's secrets. */
    if (!redact_process_install(cfg))
        log_warn("could not build the set of secrets to mask (out of memory): only the "
                 "pattern rules apply");
    log_set_level(cfg->log_level);
    signals_install();
    *exit_code = 0;
    return cfg;
}

const char *service_worker_id(const char *service, char *buf, size_t len)
{
    char host[128];

    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, len, "%s@%s:%ld", service, host, (long)getpid());
    return buf;
}

static struct metrics *metrics_with_checks(const struct config *cfg, const char *service,
                                           bool kafka)
{
    char err[256];
    struct metrics *m = metrics_new(service);

    /* Unready until the process has reached both: /readyz is 503 from the
     * first moment the endpoint answers. */
    metrics_describe(m, "cancel_retry_ready", "gauge",
                     "1 while the readiness check passes (database connected, a Kafka broker up)");
    metrics_check_set(m, "database", false, "not connected yet");
    if (kafka)
        metrics_check_set(m, "kafka", false, "no broker connection yet");
    if (m != NULL && cfg->metrics.listen != NULL &&
        !metrics_serve(m, cfg->metrics.listen, err, sizeof(err)))
        log_warn("no metrics endpoint: %s", err);
    return m;
}

struct metrics *service_metrics(const struct config *cfg, const char *service)
{
    return metrics_with_checks(cfg, service, true);
}

struct metrics *service_metrics_db_only(const struct config *cfg, const char *service)
{
    return metrics_with_checks(cfg, service, false);
}
