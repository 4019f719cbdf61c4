/*
 * gateway-sim: a local payment gateway for the demo and the tests.
 *
 * THIS PROGRAM IS NEVER DEPLOYED. It speaks just enough of the Toss Payments
 * cancel API, the Stripe refunds API, the KakaoPay cancel API and the PortOne
 * V2 cancel API, with their idempotency rules, for cancel-retry to be
 * exercised end to end on one machine, and lets a test inject the failures
 * real gateways produce (5xx, 429, hangs, answers lost after the refund was
 * applied). It listens on loopback only, has no TLS and its secrets are
 * well-known test values.
 *
 * Usage: gateway-sim [--listen 127.0.0.1:PORT] [--toss-secret S]
 *                    [--stripe-secret S] [--kakaopay-secret S] [--kakaopay-cid C]
 *                    [--kakaopay-guard enforced|ignored]
 *                    [--kakaopay-error-format new|legacy]
 *                    [--portone-secret S] [--portone-key-ttl SECONDS]
 *                    [--portone-store-errors on|off] [--port-file F]
 *                    [--log-level L] [--adyen-... options: adyen.h]
 *
 * PORT 0 picks an ephemeral port, written to the port file once the server
 * listens. The API is described in docs/gateway-sim.md.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adyen.h"
#include "base/log.h"
#include "server.h"
#include "base/signals.h"
#include "kakaopay.h"
#include "portone.h"
#include "sim.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 28080

struct options {
    char host[64];
    uint16_t port;
    const char *toss_secret;   /* borrowed from argv/environ */
    const char *stripe_secret; /* borrowed from argv/environ */
    const char *port_file;
    enum log_level log_level;
    /* KakaoPay (kakaopay.h): borrowed from argv, the secret also from
     * environ; NULL = the default. */
    const char *kakaopay_secret;
    const char *kakaopay_cid;
    const char *kakaopay_guard;
    const char *kakaopay_error_format;
    /* PortOne (portone.h): the secret borrowed from argv or environ (NULL =
     * the default), the key lifetime and whether errors are stored. */
    const char *portone_secret;
    int64_t portone_key_ttl_s;
    bool portone_store_errors;
    struct adyen_options adyen;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gateway-sim [--listen 127.0.0.1:PORT] [--toss-secret S] [--stripe-secret S]\n"
            "                   [--kakaopay-secret S] [--kakaopay-cid CID]\n"
            "                   [--kakaopay-guard enforced|ignored]\n"
            "                   [--kakaopay-error-format new|legacy]\n"
            "                   [--portone-secret S] [--portone-key-ttl SECONDS]\n"
            "                   [--portone-store-errors on|off]\n"
            "                   [--port-file FILE] [--log-level debug|info|warn|error]\n"
            "\n"
            "A local Toss/Stripe/KakaoPay/PortOne/Adyen refund gateway for tests and the demo;\n"
            "never deployed.\n"
            "PORT 0 = ephemeral (written to --port-file). Default listen address:\n"
            "127.0.0.1:$CR_GATEWAY_SIM_PORT or 127.0.0.1:%d. Secrets default to\n"
            "$CR_GATEWAY_SIM_TOSS_SECRET / $CR_GATEWAY_SIM_STRIPE_SECRET /\n"
            "$CR_GATEWAY_SIM_KAKAOPAY_SECRET / $CR_GATEWAY_SIM_PORTONE_SECRET, then\n"
            "%s / %s / %s / %s.\n"
            "KakaoPay: cid %s, guard ignored, error format new unless given.\n"
            "PortOne keeps an Idempotency-Key %d s (--portone-key-ttl) and stores error\n"
            "answers under it (--portone-store-errors on).\n"
            "\n" ADYEN_USAGE
            "Adyen's API key defaults to $CR_GATEWAY_SIM_ADYEN_API_KEY, then %s.\n",
            DEFAULT_PORT, SIM_DEFAULT_TOSS_SECRET, SIM_DEFAULT_STRIPE_SECRET,
            SIM_DEFAULT_KAKAOPAY_SECRET, SIM_DEFAULT_PORTONE_SECRET, SIM_DEFAULT_KAKAOPAY_CID,
            SIM_DEFAULT_PORTONE_KEY_TTL_S, SIM_DEFAULT_ADYEN_API_KEY);
}

/* Parse a port number 0..65535. */
static bool parse_port(const char *s, uint16_t *out)
{
    char *end;

    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* "HOST:PORT" -> host, port. Only loopback IPv4 addresses are accepted:
 * the simulator must never be reachable from another machine. */
static bool parse_listen(const char *s, struct options *o, char *err, size_t errlen)
{
    const char *colon = strrchr(s, ':');

    if (colon == NULL || (size_t)(colon - s) >= sizeof(o->host)) {
        snprintf(err, errlen, "--listen: expected 127.0.0.1:PORT, got \"%s\"", s);
        return false;
    }
    snprintf(o->host, sizeof(o->host), "%.*s", (int)(colon - s), s);
    if (strcmp(o->host, "localhost") == 0)
        snprintf(o->host, sizeof(o->host), "%s", DEFAULT_HOST);
    if (strncmp(o->host, "127.", 4) != 0) {
        snprintf(err, errlen, "--listen: cannot listen on \"%s\": loopback addresses only",
                 o->host);
        return false;
    }
    if (!parse_port(colon + 1, &o->port)) {
        snprintf(err, errlen, "--listen: bad port \"%s\"", colon + 1);
        return false;
    }
    return true;
}

/* Returns 0 to run, 1 on a usage error (message printed), 2 for --help. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"toss-secret", required_argument, NULL, 't'},
        {"stripe-secret", required_argument, NULL, 's'},
        {"kakaopay-secret", required_argument, NULL, 'k'},
        {"kakaopay-cid", required_argument, NULL, 'c'},
        {"kakaopay-guard", required_argument, NULL, 'g'},
        {"kakaopay-error-format", required_argument, NULL, 'e'},
        {"portone-secret", required_argument, NULL, 'O'},
        {"portone-key-ttl", required_argument, NULL, 'T'},
        {"portone-store-errors", required_argument, NULL, 'E'},
        {"port-file", required_argument, NULL, 'p'},
        {"log-level", required_argument, NULL, 'L'},
        ADYEN_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[256];
    int c;

    snprintf(o->host, sizeof(o->host), "%s", DEFAULT_HOST);
    o->port = DEFAULT_PORT;
    const char *env_port = getenv("CR_GATEWAY_SIM_PORT");
    if (env_port != NULL && env_port[0] != '\0' && !parse_port(env_port, &o->port)) {
        fprintf(stderr, "gateway-sim: CR_GATEWAY_SIM_PORT: bad port \"%s\"\n", env_port);
        return 1;
    }
    o->toss_secret = getenv("CR_GATEWAY_SIM_TOSS_SECRET");
    o->stripe_secret = getenv("CR_GATEWAY_SIM_STRIPE_SECRET");
    o->kakaopay_secret = getenv("CR_GATEWAY_SIM_KAKAOPAY_SECRET");
    o->portone_secret = getenv("CR_GATEWAY_SIM_PORTONE_SECRET");
    o->portone_key_ttl_s = SIM_DEFAULT_PORTONE_KEY_TTL_S;
    o->portone_store_errors = true;
    o->log_level = LOG_INFO;
    adyen_options_init(&o->adyen);
    o->adyen.api_key = getenv("CR_GATEWAY_SIM_ADYEN_API_KEY");

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c >= ADYEN_OPT_API_KEY && c < ADYEN_OPT_END) {
            if (!adyen_option(&o->adyen, c, optarg, err, sizeof(err))) {
                fprintf(stderr, "gateway-sim: %s\n", err);
                return 1;
            }
            continue;
        }
        switch (c) {
        case 'l':
            if (!parse_listen(optarg, o, err, sizeof(err))) {
                fprintf(stderr, "gateway-sim: %s\n", err);
                return 1;
            }
            break;
        case 't':
            o->toss_secret = optarg;
            break;
        case 's':
            o->stripe_secret = optarg;
            break;
        case 'k':
            o->kakaopay_secret = optarg;
            break;
        case 'c':
            o->kakaopay_cid = optarg;
            break;
        case 'g':
            o->kakaopay_guard = optarg;
            break;
        case 'e':
            o->kakaopay_error_format = optarg;
            break;
        case 'O':
            o->portone_secret = optarg;
            break;
        case 'T': {
            char *end;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || v < 1 || v > 31LL * 24 * 3600) {
                fprintf(stderr,
                        "gateway-sim: --portone-key-ttl: expected 1 to 2678400 seconds, "
                        "got \"%s\"\n",
                        optarg);
                return 1;
            }
            o->portone_key_ttl_s = v;
            break;
        }
        case 'E':
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) {
                fprintf(stderr, "gateway-sim: --portone-store-errors: expected on or off\n");
                return 1;
            }
            o->portone_store_errors = strcmp(optarg, "on") == 0;
            break;
        case 'p':
            o->port_file = optarg;
            break;
        case 'L':
            if (!log_level_parse(optarg, &o->log_level)) {
                fprintf(stderr, "gateway-sim: --log-level: unknown level \"%s\"\n", optarg);
                return 1;
            }
            break;
        case 'h':
            usage(stdout);
            return 2;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gateway-sim: unexpected argument \"%s\"\n", argv[optind]);
        return 1;
    }
    if (o->toss_secret != NULL && o->toss_secret[0] == '\0')
        o->toss_secret = NULL;
    if (o->stripe_secret != NULL && o->stripe_secret[0] == '\0')
        o->stripe_secret = NULL;
    if (o->kakaopay_secret != NULL && o->kakaopay_secret[0] == '\0')
        o->kakaopay_secret = NULL;
    if (o->portone_secret != NULL && o->portone_secret[0] == '\0')
        o->portone_secret = NULL;
    if (o->adyen.api_key != NULL && o->adyen.api_key[0] == '\0')
        o->adyen.api_key = NULL;
    return 0;
}

/* Write "PORT\n" to path through a temporary file and rename(2), so a reader
 * polling for the file never sees it half-written. */
static bool write_port_file(const char *path, uint16_t port, char *err, size_t errlen)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());

    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, errlen, "cannot write port file: path too long");
        return false;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        snprintf(err, errlen, "could not create \"%.300s\": %s", tmp, strerror(errno));
        return false;
    }
    bool ok = fprintf(f, "%u\n", (unsigned)port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "could not write \"%s\": %s", path, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    struct options opts = {0};
    char err[512];
    int status = 1;
    struct sim *sim = NULL;
    struct server *server = NULL;

    int rc = parse_args(argc, argv, &opts);
    if (rc != 0)
        return rc == 2 ? 0 : 2;
    log_init("gateway-sim", opts.log_level);
    signals_install();

    sim = sim_new(opts.toss_secret, opts.stripe_secret);
    if (sim == NULL || !portone_configure(sim, opts.portone_secret, opts.portone_key_ttl_s,
                                          opts.portone_store_errors)) {
        log_error("could not start: out of memory");
        goto out;
    }
    if (!kakaopay_configure(sim->kakaopay, opts.kakaopay_secret, opts.kakaopay_cid,
                            opts.kakaopay_guard, opts.kakaopay_error_format, err, sizeof(err))) {
        fprintf(stderr, "gateway-sim: %s\n", err);
        status = 2; /* a usage error */
        goto out;
    }
    sim->adyen = adyen_new(sim, &opts.adyen, err, sizeof(err));
    if (sim->adyen == NULL) {
        log_error("%s", err);
        goto out;
    }
    server = server_start(sim, opts.host, opts.port, err, sizeof(err));
    if (server == NULL) {
        log_error("%s", err);
        goto out;
    }
    uint16_t port = server_port(server);
    if (opts.port_file != NULL && !write_port_file(opts.port_file, port, err, sizeof(err))) {
        log_error("%s", err);
        goto out;
    }
    /* Which secrets are in use is worth a line; their values never are. */
    log_info("listening on %s:%u (toss secret %s, stripe secret %s, kakaopay secret %s, portone "
             "secret %s)",
             opts.host, (unsigned)port, opts.toss_secret ? "custom" : "default",
             opts.stripe_secret ? "custom" : "default", opts.kakaopay_secret ? "custom" : "default",
             opts.portone_secret ? "custom" : "default");
    json_t *kakaopay = kakaopay_settings_json(sim->kakaopay);
    log_info("kakaopay cid %s, guard %s, error format %s",
             json_string_value(json_object_get(kakaopay, "cid")),
             json_string_value(json_object_get(kakaopay, "guard")),
             json_string_value(json_object_get(kakaopay, "errorFormat")));
    json_decref(kakaopay);

    while (!signals_stop_requested()) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    log_info("stopping");
    status = 0;
out:
    if (sim != NULL)
        atomic_store(&sim->stopping, true);
    server_stop(server);
    sim_free(sim);
    if (status == 0)
        log_info("stopped");
    return status;
}
