/*
 * cancelctl publish: send one CancelFailed event, validated against the
 * contract first, and wait for the broker's acknowledgement.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel_producer.h"
#include "cancelctl.h"
#include "base/duration.h"

static const char help[] =
    "usage: cancelctl publish --file EVENT.json [--raw --key KEY]\n"
    "       cancelctl publish --request-id ID --gateway NAME --payment-key KEY\n"
    "                         --amount N --currency CUR --reason TEXT [--partial]\n"
    "                         [--origin-transaction-id ID] [--failure-code CODE\n"
    "                         --failure-message TEXT] [--correlation-id ID]\n"
    "\n"
    "Publish a payments.cancel.failed.v1 event to the cancel-failed topic of the\n"
    "config. The event is checked against the contract (schemas/events/) and the\n"
    "configured gateways before anything is sent; an invalid one is refused with\n"
    "the reason (exit 2). The command returns after the broker acknowledged it.\n"
    "Publishing the same requestId again is safe: the intake ignores duplicates.\n"
    "\n"
    "Options:\n"
    "  --file FILE         a complete CloudEvent in JSON (\"-\" reads stdin)\n"
    "  --raw               with --file: send the bytes unchecked (to test how the\n"
    "                      pipeline dead-letters bad input)\n"
    "  --key KEY           with --raw: the Kafka key\n"
    "  --request-id ID     the refund's idempotency key (1-255 of [A-Za-z0-9._:-])\n"
    "  --gateway NAME      a gateway of the config (gateways:)\n"
    "  --payment-key KEY   the gateway's payment id\n"
    "  --amount N          minor units (won, cents), > 0\n"
    "  --currency CUR      ISO 4217, e.g. KRW, USD\n"
    "  --partial           refund only --amount, not the whole payment\n"
    "  --reason TEXT       sent to the gateway as the cancel reason\n"
    "  --timeout DURATION  wait for the acknowledgement (default 15s)\n"
    "\n"
    "Examples:\n"
    "  cancelctl publish --request-id order-123-cancel --gateway toss \\\n"
    "      --payment-key tgen_20261120abc --amount 15000 --currency KRW \\\n"
    "      --reason \"customer cancelled\"\n"
    "  cancelctl publish --file event.json --json\n"
    "  echo 'not json' | cancelctl publish --file - --raw --key bad-1";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_publish = {
    "publish", run, "publish a CancelFailed event (validated first)", help};

/* Read a whole file ("-" = stdin) into a malloc'd buffer. */
static char *read_all(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *buf = NULL;

    if (f == NULL) {
        snprintf(err, errlen, "could not open %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(cap);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            if (cap >= 1024 * 1024) {
                snprintf(err, errlen, "%s is larger than 1 MiB", path);
                free(buf);
                buf = NULL;
                break;
            }
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (buf == NULL && err[0] == '\0')
        snprintf(err, errlen, "out of memory reading %s", path);
    if (f != stdin)
        fclose(f);
    if (buf != NULL)
        *len = n;
    return buf;
}

enum {
    OPT_FILE = 1000,
    OPT_RAW,
    OPT_KEY,
    OPT_REQUEST_ID,
    OPT_GATEWAY,
    OPT_PAYMENT_KEY,
    OPT_AMOUNT,
    OPT_CURRENCY,
    OPT_PARTIAL,
    OPT_REASON,
    OPT_ORIGIN,
    OPT_FAILURE_CODE,
    OPT_FAILURE_MESSAGE,
    OPT_CORRELATION,
    OPT_TIMEOUT,
};

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, OPT_FILE},
        {"raw", no_argument, NULL, OPT_RAW},
        {"key", required_argument, NULL, OPT_KEY},
        {"request-id", required_argument, NULL, OPT_REQUEST_ID},
        {"gateway", required_argument, NULL, OPT_GATEWAY},
        {"payment-key", required_argument, NULL, OPT_PAYMENT_KEY},
        {"amount", required_argument, NULL, OPT_AMOUNT},
        {"currency", required_argument, NULL, OPT_CURRENCY},
        {"partial", no_argument, NULL, OPT_PARTIAL},
        {"reason", required_argument, NULL, OPT_REASON},
        {"origin-transaction-id", required_argument, NULL, OPT_ORIGIN},
        {"failure-code", required_argument, NULL, OPT_FAILURE_CODE},
        {"failure-message", required_argument, NULL, OPT_FAILURE_MESSAGE},
        {"correlation-id", required_argument, NULL, OPT_CORRELATION},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {NULL, 0, NULL, 0}};
    const struct cancelctl_cmd *cmd = &cancelctl_cmd_publish;
    struct cancel_failed_event ev = CANCEL_FAILED_EVENT_INIT;
    const char *file = NULL, *key = NULL;
    bool raw = false, have_amount = false;
    int64_t timeout_ms = 15000;
    char err[1024] = "", request_id[256] = "", event_id[CANCEL_PRODUCER_EVENT_ID_LEN] = "";
    int c, rc = CANCELCTL_EXIT_FAILURE;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FILE:
            file = optarg;
            break;
        case OPT_RAW:
            raw = true;
            break;
        case OPT_KEY:
            key = optarg;
            break;
        case OPT_REQUEST_ID:
            ev.request_id = optarg;
            break;
        case OPT_GATEWAY:
            ev.gateway = optarg;
            break;
        case OPT_PAYMENT_KEY:
            ev.payment_key = optarg;
            break;
        case OPT_AMOUNT: {
            char *end = NULL;
            errno = 0;
            ev.amount = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0')
                return cancelctl_usage_error(cmd, "--amount: \"%s\" is not an integer", optarg);
            have_amount = true;
            break;
        }
        case OPT_CURRENCY:
            ev.currency = optarg;
            break;
        case OPT_PARTIAL:
            ev.partial = true;
            break;
        case OPT_REASON:
            ev.reason = optarg;
            break;
        case OPT_ORIGIN:
            ev.origin_transaction_id = optarg;
            break;
        case OPT_FAILURE_CODE:
            ev.failure_code = optarg;
            break;
        case OPT_FAILURE_MESSAGE:
            ev.failure_message = optarg;
            break;
        case OPT_CORRELATION:
            ev.correlation_id = optarg;
            break;
        case OPT_TIMEOUT:
            if (!duration_parse(optarg, &timeout_ms, err, sizeof(err)) || timeout_ms <= 0)
                return cancelctl_usage_error(cmd, "--timeout: %s", err);
            break;
        default:
            return cancelctl_bad_option(cmd, c, argc, argv);
        }
    }
    if (optind < argc)
        return cancelctl_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (raw && file == NULL)
        return cancelctl_usage_error(cmd, "--raw needs --file");
    if (file == NULL && (ev.request_id == NULL || ev.gateway == NULL || ev.payment_key == NULL ||
                         !have_amount || ev.currency == NULL || ev.reason == NULL))
        return cancelctl_usage_error(cmd, "give --file, or all of --request-id, --gateway, "
                                          "--payment-key, --amount, --currency and --reason");
    if (file != NULL && ev.request_id != NULL)
        return cancelctl_usage_error(cmd, "--file and the field options are exclusive");

    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;

    char *bytes = NULL;
    size_t len = 0;
    if (file != NULL) {
        bytes = read_all(file, &len, err, sizeof(err));
        if (bytes == NULL) {
            rc = cancelctl_fail(ctx, "%s", err);
            goto out;
        }
        if (!raw &&
            !cancel_event_validate(bytes, len, request_id, sizeof(request_id), err, sizeof(err))) {
            fprintf(stderr, "cancelctl publish: the event is invalid: %s\n", err);
            rc = CANCELCTL_EXIT_USAGE;
            goto out;
        }
    } else {
        if (!cancel_event_build(&ev, &bytes, event_id, err, sizeof(err))) {
            fprintf(stderr, "cancelctl publish: the event is invalid: %s\n", err);
            rc = CANCELCTL_EXIT_USAGE;
            goto out;
        }
        len = strlen(bytes);
        snprintf(request_id, sizeof(request_id), "%s", ev.request_id);
    }
    if (!raw && request_id[0] != '\0') {
        /* The gateway must be one this deployment knows, or the intake would
         * dead-letter the event as UNKNOWN_GATEWAY. */
        char gw[64] = "";
        json_t *doc = json_loadb(bytes, len, 0, NULL);
        const char *name =
            json_string_value(json_object_get(json_object_get(doc, "data"), "gateway"));
        snprintf(gw, sizeof(gw), "%s", name != NULL ? name : "");
        json_decref(doc);
        if (config_gateway_find(cfg, gw) == NULL) {
            fprintf(stderr,
                    "cancelctl publish: the event is invalid: gateway \"%s\" is not configured "
                    "in %s\n",
                    gw, ctx->config_path);
            rc = CANCELCTL_EXIT_USAGE;
            goto out;
        }
    }

    struct cancel_producer *p = cancel_producer_new_from_config(cfg, err, sizeof(err));
    if (p == NULL) {
        rc = cancelctl_fail(ctx, "%s", err);
        goto out;
    }
    const char *msg_key = raw ? key : request_id;
    bool ok =
        cancel_producer_publish_raw(p, msg_key, bytes, len, (int)timeout_ms, err, sizeof(err));
    cancel_producer_free(p);
    if (!ok) {
        rc = cancelctl_fail(ctx, "%s", err);
        goto out;
    }
    if (ctx->json) {
        json_t *doc = json_pack(
            "{s:b, s:s, s:s?, s:s?}", "ok", 1, "topic", cfg->topics.cancel_failed.name, "requestId",
            request_id[0] ? request_id : NULL, "eventId", event_id[0] ? event_id : NULL);
        cancelctl_print_json(doc);
    } else {
        printf("published %s%s to %s\n", raw ? "raw message" : "CancelFailed for request ",
               raw ? "" : request_id, cfg->topics.cancel_failed.name);
    }
    rc = CANCELCTL_EXIT_OK;
out:
    free(bytes);
    config_free(cfg);
    return rc;
}
