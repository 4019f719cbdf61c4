/*
 * mock-broker: librdkafka's in-memory mock cluster as a process of its own.
 *
 * The local stack starts it instead of Apache Kafka when no Java is available
 * (or CR_KAFKA_MODE=mock). Other processes reach it over a real 127.0.0.1
 * port. It is a fallback for a quick demo, never what the integration tests
 * prove the pipeline against: nothing is persisted, the mock does not
 * implement CreateTopics (so the topics are created here, from --topic and
 * --config), and its group coordinator has its own timing.
 *
 * librdkafka 2.0.2 binds each mock broker to an ephemeral port (the listener
 * is always created on 127.0.0.1:0), so the address is only known after
 * start: it is printed and written to --bootstrap-file for the scripts.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "base/log.h"
#include "base/signals.h"
#include "config/config.h"

/* Kafka's own limits for a topic name. */
#define MOCK_TOPIC_NAME_MAX 249
#define MOCK_MAX_PARTITIONS 1000
#define MOCK_MAX_TOPICS     64

struct mock_topic {
    char name[MOCK_TOPIC_NAME_MAX + 1];
    int partitions;
};

struct mock_args {
    const char *config_path;    /* NULL: no config */
    const char *bootstrap_file; /* NULL: print only */
    struct mock_topic topics[MOCK_MAX_TOPICS];
    size_t ntopics;
};

/* snprintf into an error buffer. A message cut short at errlen is still a
 * useful message, so truncation is accepted here on purpose. */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mock-broker [--config FILE] [--topic NAME:PARTITIONS ...]\n"
                 "                   [--bootstrap-file PATH]\n"
                 "\n"
                 "Runs librdkafka's in-memory mock Kafka cluster (one broker on an\n"
                 "ephemeral 127.0.0.1 port) until SIGTERM or SIGINT. Creates the topics\n"
                 "given with --topic and the four topics of the --config file, and\n"
                 "writes the bootstrap address to --bootstrap-file.\n"
                 "Nothing is persisted: this is not a Kafka broker.\n");
}

static bool topic_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > MOCK_TOPIC_NAME_MAX)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Add one topic to args. A name given twice keeps its first partition count:
 * the mock cannot change a topic once it exists, and --topic plus a config
 * naming the same topic is a normal way to call this. */
static bool add_topic(struct mock_args *args, const char *name, size_t len, int partitions,
                      char *err, size_t errlen)
{
    if (!topic_name_valid(name, len)) {
        set_err(err, errlen, "invalid topic name \"%.*s\"", (int)len, name);
        return false;
    }
    if (partitions < 1 || partitions > MOCK_MAX_PARTITIONS) {
        set_err(err, errlen, "topic %.*s: partitions must be between 1 and %d", (int)len, name,
                MOCK_MAX_PARTITIONS);
        return false;
    }
    for (size_t i = 0; i < args->ntopics; i++) {
        if (strlen(args->topics[i].name) == len && memcmp(args->topics[i].name, name, len) == 0) {
            if (args->topics[i].partitions != partitions)
                log_warn("topic %s given twice (%d and %d partitions): keeping %d",
                         args->topics[i].name, args->topics[i].partitions, partitions,
                         args->topics[i].partitions);
            return true;
        }
    }
    if (args->ntopics == MOCK_MAX_TOPICS) {
        set_err(err, errlen, "too many topics (at most %d)", MOCK_MAX_TOPICS);
        return false;
    }
    memcpy(args->topics[args->ntopics].name, name, len);
    args->topics[args->ntopics].name[len] = '\0';
    args->topics[args->ntopics].partitions = partitions;
    args->ntopics++;
    return true;
}

/* Parse "NAME:PARTITIONS". */
static bool parse_topic_arg(struct mock_args *args, const char *arg, char *err, size_t errlen)
{
    const char *colon = strrchr(arg, ':');
    char *end;
    long n;

    if (!colon) {
        set_err(err, errlen, "--topic %s: expected NAME:PARTITIONS", arg);
        return false;
    }
    errno = 0;
    n = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || n < 1 || n > MOCK_MAX_PARTITIONS) {
        set_err(err, errlen, "--topic %s: partitions must be an integer between 1 and %d", arg,
                MOCK_MAX_PARTITIONS);
        return false;
    }
    return add_topic(args, arg, (size_t)(colon - arg), (int)n, err, errlen);
}

/* Returns 0 to run, 1 on a usage error, 2 when help was printed. */
static int parse_args(int argc, char **argv, struct mock_args *args, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 2;
        if (strcmp(a, "--config") == 0 || strcmp(a, "--topic") == 0 ||
            strcmp(a, "--bootstrap-file") == 0) {
            if (!has_value) {
                set_err(err, errlen, "%s needs a value", a);
                return 1;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--config") == 0)
                args->config_path = v;
            else if (strcmp(a, "--bootstrap-file") == 0)
                args->bootstrap_file = v;
            else if (!parse_topic_arg(args, v, err, errlen))
                return 1;
            continue;
        }
        set_err(err, errlen, "unknown argument \"%s\"", a);
        return 1;
    }
    return 0;
}

/* Add the four topics the config names, with its partition counts. The mock
 * cluster has one broker, so every topic gets replication factor 1 whatever
 * the config asks for. */
static bool add_config_topics(struct mock_args *args, char *err, size_t errlen)
{
    char cerr[512];
    struct config *cfg = config_load(args->config_path, cerr, sizeof(cerr));
    bool ok = false;

    if (!cfg) {
        set_err(err, errlen, "could not load config: %s", cerr);
        return false;
    }
    const struct config_topic *list[] = {&cfg->topics.cancel_failed, &cfg->topics.retry,
                                         &cfg->topics.outcome, &cfg->topics.dlq};
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
        if (!add_topic(args, list[i]->name, strlen(list[i]->name), list[i]->partitions, err,
                       errlen))
            goto out;
    }
    ok = true;
out:
    config_free(cfg);
    return ok;
}

static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    log_syslog_level(level, fac, rk ? rd_kafka_name(rk) : NULL, buf);
}

/* Write the address to path through a temporary file and rename(2), so a
 * script polling for the file never reads half of it. */
static bool write_bootstrap_file(const char *path, const char *bootstraps, char *err, size_t errlen)
{
    char tmp[4096];
    FILE *f;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        set_err(err, errlen, "cannot write bootstrap file: path too long");
        return false;
    }
    f = fopen(tmp, "w");
    if (!f) {
        set_err(err, errlen, "could not open \"%s\": %s", tmp, strerror(errno));
        return false;
    }
    fprintf(f, "%s\n", bootstraps);
    if (fclose(f) != 0) {
        set_err(err, errlen, "could not write \"%s\": %s", tmp, strerror(errno));
        unlink(tmp);
        return false;
    }
    if (rename(tmp, path) != 0) {
        set_err(err, errlen, "could not rename \"%s\" to \"%s\": %s", tmp, path, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

static void print_banner(const char *bootstraps)
{
    fprintf(stderr,
            "\n"
            "************************************************************************\n"
            "*  MOCK KAFKA (librdkafka mock cluster) on %-27s *\n"
            "*  IN-MEMORY ONLY: not the real broker. Everything is lost on exit,    *\n"
            "*  topics cannot be created by clients, group joins are slower.        *\n"
            "*  Good for a quick demo; the integration tests need real Kafka.       *\n"
            "************************************************************************\n"
            "\n",
            bootstraps);
}

int main(int argc, char **argv)
{
    struct mock_args args;
    char err[512];
    char errstr[512];
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    int rc;
    int status = 1;
    bool wrote_file = false;

    memset(&args, 0, sizeof(args));
    log_init("mock-broker", LOG_INFO);

    rc = parse_args(argc, argv, &args, err, sizeof(err));
    if (rc == 2) {
        usage(stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "mock-broker: %s\n", err);
        usage(stderr);
        return 1;
    }
    if (args.config_path && !add_config_topics(&args, err, sizeof(err))) {
        log_error("%s", err);
        return 1;
    }

    signals_install();

    /* The mock cluster needs a client handle for its logging and thread; a
     * producer that is never used to produce serves. It has no
     * bootstrap.servers of its own and so never connects anywhere. */
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
    if (rd_kafka_conf_set(conf, "client.id", "mock-broker-host", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        log_error("could not configure the host client: %s", errstr);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        log_error("could not create the host client: %s", errstr);
        goto out;
    }
    conf = NULL; /* owned by rk now */

    mcluster = rd_kafka_mock_cluster_new(rk, 1);
    if (!mcluster) {
        log_error("could not create the mock cluster");
        goto out;
    }

    for (size_t i = 0; i < args.ntopics; i++) {
        rd_kafka_resp_err_t kerr =
            rd_kafka_mock_topic_create(mcluster, args.topics[i].name, args.topics[i].partitions, 1);
        if (kerr) {
            log_error("could not create topic %s: %s", args.topics[i].name, rd_kafka_err2str(kerr));
            goto out;
        }
        log_info("created topic %s with %d partitions", args.topics[i].name,
                 args.topics[i].partitions);
    }

    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
    if (args.bootstrap_file &&
        !write_bootstrap_file(args.bootstrap_file, bootstraps, err, sizeof(err))) {
        log_error("%s", err);
        goto out;
    }
    wrote_file = args.bootstrap_file != NULL;
    print_banner(bootstraps);
    log_warn("mock kafka listening on %s: in-memory only, not the real broker", bootstraps);
    printf("%s\n", bootstraps);
    fflush(stdout);

    while (!signals_stop_requested())
        rd_kafka_poll(rk, 200);

    log_info("stopping the mock cluster");
    status = 0;
out:
    /* A stale file would point the scripts at a port nobody listens on. */
    if (wrote_file)
        unlink(args.bootstrap_file);
    if (mcluster)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk)
        rd_kafka_destroy(rk);
    if (conf)
        rd_kafka_conf_destroy(conf);
    return status;
}
