/*
 * cancelctl dlq: list and replay dead letters.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cancelctl.h"
#include "base/clock.h"
#include "base/duration.h"
#include "base/ratelimit.h"
#include "base/redact.h"
#include "base/timeutil.h"
#include "ops/ops_dlq.h"
#include "ops/ops_replay.h"

static const char help[] =
    "usage: cancelctl dlq list   [FILTERS] [--timeout DURATION]\n"
    "       cancelctl dlq replay [FILTERS] [--dry-run] [--rate N] [--yes] [--operator NAME]\n"
    "\n"
    "list: read the dead-letter topic and show the dead letters that match. The topic is\n"
    "read with an assigned consumer under a throwaway group id that commits nothing, so\n"
    "listing changes nothing the pipeline (or the alert-consumer) sees.\n"
    "\n"
    "replay: act on every matching dead letter, by its dlq.reason:\n"
    "  FAILED, EXHAUSTED, CONFIG_FAULT, RECONCILE_MISMATCH  re-arm the request in the\n"
    "      database: a fresh attempt budget from the gateway's current policy, the same\n"
    "      requestId and so the same idempotency key, attempt scheduled now. Refused when\n"
    "      the request is not FAILED or EXHAUSTED (requeued, resolved or succeeded since;\n"
    "      a RECONCILE_MISMATCH whose request we still record as refunded: run \"cancelctl\n"
    "      reconcile --fix\" first), or when its key's lifetime at the gateway has passed\n"
    "      or would pass: a retry after that could refund twice.\n"
    "  REFUND_FAILED_AFTER_SUCCESS, REFUND_REVERSED, REFUND_AFTER_FINAL, WEBHOOK_UNMATCHED\n"
    "      refused: what a gateway's webhook reported after the fact is for a person to\n"
    "      act on.\n"
    "  anything else (PARSE_ERROR, SCHEMA_VIOLATION, UNKNOWN_GATEWAY, ...)  re-publish the\n"
    "      original bytes unchanged, with their key, to dlq.original.topic (only the\n"
    "      config's cancel-failed or retry topic). Fix the cause first (the config, the\n"
    "      upstream producer's bug is NOT fixed by a replay of the same bytes).\n"
    "Each replay and its dlq_replay audit row (who, when, filter, what) are one database\n"
    "transaction; events go through the outbox. A dead letter is replayed at most once:\n"
    "running the same replay twice does nothing the second time.\n"
    "\n"
    "Filters (all optional; all given must match):\n"
    "  --request-id ID     dlq.request.id\n"
    "  --reason R[,R...]   dlq.reason, e.g. EXHAUSTED or PARSE_ERROR,SCHEMA_VIOLATION\n"
    "  --gateway NAME      data.gateway of the original event (when it still parses)\n"
    "  --since TIME        dlq.at >= TIME: RFC 3339, or a duration ago (\"2h\", \"3d\")\n"
    "  --until TIME        dlq.at < TIME\n"
    "  --limit N           at most N dead letters, oldest first\n"
    "\n"
    "Options:\n"
    "  --dry-run           replay: print exactly what would happen to each; change nothing\n"
    "  --rate N            replay: at most N replays a second (default 10; 0 = no limit)\n"
    "  --yes               replay: do not ask for confirmation (required when stdin is not\n"
    "                      a terminal)\n"
    "  --operator NAME     replay: who, for the audit rows (default: $CANCELCTL_OPERATOR,\n"
    "                      else $USER@hostname)\n"
    "  --timeout DURATION  longest wait for the broker (default 15s)\n"
    "\n"
    "Exit codes: 0 done; 1 a failure, or (replay) a dead letter was refused; 2 usage.\n"
    "\n"
    "Examples:\n"
    "  cancelctl dlq list --since 24h\n"
    "  cancelctl dlq list --reason EXHAUSTED --gateway toss --json\n"
    "  cancelctl dlq replay --reason EXHAUSTED --gateway toss --since 2h --dry-run\n"
    "  cancelctl dlq replay --reason EXHAUSTED --gateway toss --since 2h --rate 5 --yes\n"
    "  cancelctl dlq replay --request-id order-123-cancel --yes\n"
    "  cancelctl dlq replay --reason UNKNOWN_GATEWAY --dry-run";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_dlq = {
    "dlq", run, "list or replay dead letters (list | replay)", help};

#define DEFAULT_RATE 10.0
/* --json shows this much of each dead letter's value. */
#define VALUE_MAX 4096

struct dlq_opts {
    struct ops_dlq_filter filter;
    bool dry_run, yes;
    double rate;
    const char *operator_flag;
    int64_t timeout_ms;
};

static int parse(int argc, char **argv, bool replay, struct dlq_opts *o)
{
    enum {
        OPT_REQUEST_ID = 1000,
        OPT_REASON,
        OPT_GATEWAY,
        OPT_SINCE,
        OPT_UNTIL,
        OPT_LIMIT,
        OPT_TIMEOUT,
        OPT_DRY_RUN,
        OPT_RATE,
        OPT_YES,
        OPT_OPERATOR,
    };
    static const struct option longopts[] = {
        {"request-id", required_argument, NULL, OPT_REQUEST_ID},
        {"reason", required_argument, NULL, OPT_REASON},
        {"gateway", required_argument, NULL, OPT_GATEWAY},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"rate", required_argument, NULL, OPT_RATE},
        {"yes", no_argument, NULL, OPT_YES},
        {"operator", required_argument, NULL, OPT_OPERATOR},
        {NULL, 0, NULL, 0}};
    const struct cancelctl_cmd *cmd = &cancelctl_cmd_dlq;
    int64_t now = wall_ms();
    char err[512];
    char *end;
    int c;

    memset(o, 0, sizeof(*o));
    o->rate = DEFAULT_RATE;
    o->timeout_ms = 15000;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (!replay && c >= OPT_DRY_RUN && c <= OPT_OPERATOR)
            return cancelctl_usage_error(cmd, "%s is an option of \"dlq replay\"",
                                         argv[optind - 1]);
        switch (c) {
        case OPT_REQUEST_ID:
            snprintf(o->filter.request_id, sizeof(o->filter.request_id), "%s", optarg);
            break;
        case OPT_REASON:
            snprintf(o->filter.reasons, sizeof(o->filter.reasons), "%s", optarg);
            break;
        case OPT_GATEWAY:
            snprintf(o->filter.gateway, sizeof(o->filter.gateway), "%s", optarg);
            break;
        case OPT_SINCE:
        case OPT_UNTIL:
            if (!ops_parse_time(optarg, now,
                                c == OPT_SINCE ? &o->filter.since_ms : &o->filter.until_ms))
                return cancelctl_usage_error(cmd,
                                             "--%s: \"%s\" is neither an RFC 3339 time nor a "
                                             "duration like 2h",
                                             c == OPT_SINCE ? "since" : "until", optarg);
            break;
        case OPT_LIMIT:
            errno = 0;
            o->filter.limit = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || o->filter.limit <= 0)
                return cancelctl_usage_error(cmd, "--limit: \"%s\" is not a positive number",
                                             optarg);
            break;
        case OPT_TIMEOUT:
            if (!duration_parse(optarg, &o->timeout_ms, err, sizeof(err)) || o->timeout_ms <= 0 ||
                o->timeout_ms > 3600 * 1000)
                return cancelctl_usage_error(cmd,
                                             "--timeout: \"%s\" is not a duration between 1ms "
                                             "and 1h",
                                             optarg);
            break;
        case OPT_DRY_RUN:
            o->dry_run = true;
            break;
        case OPT_RATE:
            errno = 0;
            o->rate = strtod(optarg, &end);
            if (errno != 0 || *end != '\0' || o->rate < 0 || o->rate > 100000)
                return cancelctl_usage_error(cmd,
                                             "--rate: \"%s\" is not a number of replays a "
                                             "second (0 = no limit)",
                                             optarg);
            break;
        case OPT_YES:
            o->yes = true;
            break;
        case OPT_OPERATOR:
            o->operator_flag = optarg;
            break;
        default:
            return cancelctl_bad_option(cmd, c, argc, argv);
        }
    }
    if (optind < argc)
        return cancelctl_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!ops_dlq_filter_check(&o->filter, err, sizeof(err)))
        return cancelctl_usage_error(cmd, "%s", err);
    return -1;
}

static void fmt_at(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0 || !rfc3339_format(ms, buf, len))
        snprintf(buf, len, "-");
}

static const char *dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static int do_list(struct cancelctl_ctx *ctx, const struct config *cfg, const struct dlq_opts *o)
{
    struct ops_dlq_list list = {0};
    char err[1024];

    if (!ops_dlq_collect(cfg, &o->filter, (int)o->timeout_ms, &list, err, sizeof(err)))
        return cancelctl_fail(ctx, "%s", err);
    if (ctx->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < list.n; i++)
            json_array_append_new(arr, ops_dlq_letter_json(&list.v[i], VALUE_MAX));
        cancelctl_print_json(
            json_pack("{s:b, s:s, s:o, s:I, s:I, s:o}", "ok", 1, "topic", cfg->topics.dlq.name,
                      "filter", ops_dlq_filter_json(&o->filter), "read", (json_int_t)list.scanned,
                      "matched", (json_int_t)list.n, "deadLetters", arr));
    } else {
        printf("%-12s %-24s %-20s %-28s %-8s %s\n", "PART/OFFSET", "AT", "REASON", "REQUEST",
               "GATEWAY", "ERROR");
        for (size_t i = 0; i < list.n; i++) {
            const struct ops_dlq_letter *l = &list.v[i];
            char where[32], at[RFC3339_MS_LEN];
            snprintf(where, sizeof(where), "%d/%" PRId64, l->partition, l->offset);
            fmt_at(l->at_ms, at, sizeof(at));
            printf("%-12s %-24s %-20s %-28s %-8s %.70s\n", where, at, dash(l->reason),
                   dash(l->request_id), dash(l->gateway), dash(l->error));
        }
        printf("%zu dead letter(s) match, of %" PRId64 " read from %s\n", list.n, list.scanned,
               cfg->topics.dlq.name);
    }
    ops_dlq_list_free(&list);
    return CANCELCTL_EXIT_OK;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Ask on the terminal; true only for y/yes. */
static bool confirm(size_t n, const char *filter_text)
{
    char line[32];
    fprintf(stderr,
            "Replay %zu dead letter(s) matching %s?\n"
            "Failed requests are re-armed and poison messages re-published, as --dry-run "
            "shows. [y/N] ",
            n, filter_text);
    fflush(stderr);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return false;
    return strcmp(line, "y\n") == 0 || strcmp(line, "yes\n") == 0 || strcmp(line, "Y\n") == 0;
}

static int do_replay(struct cancelctl_ctx *ctx, const struct config *cfg, const struct dlq_opts *o)
{
    struct ops_dlq_list list = {0};
    char err[1024], op[OPS_OPERATOR_MAX + 1];
    struct db *db = NULL;
    struct ratelimit *rl = NULL;
    json_t *filter = ops_dlq_filter_json(&o->filter), *results = json_array();
    size_t counts[4] = {0};
    int rc = CANCELCTL_EXIT_FAILURE;
    bool progress = !ctx->json && isatty(STDERR_FILENO) && !o->dry_run;

    ops_operator_current(o->operator_flag, op, sizeof(op));
    char *filter_text = json_dumps(filter, JSON_COMPACT);
    if (!o->dry_run && !o->yes && !isatty(STDIN_FILENO)) {
        rc = cancelctl_usage_error(&cancelctl_cmd_dlq,
                                   "refusing to replay without --yes: stdin is not a terminal "
                                   "(try --dry-run first)");
        goto out;
    }
    db = cancelctl_connect_db(ctx, cfg);
    if (db == NULL)
        goto out;
    if (!ops_dlq_collect(cfg, &o->filter, (int)o->timeout_ms, &list, err, sizeof(err))) {
        rc = cancelctl_fail(ctx, "%s", err);
        goto out;
    }
    if (list.n == 0) {
        if (ctx->json)
            cancelctl_print_json(json_pack("{s:b, s:b, s:O, s:I, s:i, s:[]}", "ok", 1, "dryRun",
                                           o->dry_run, "filter", filter, "read",
                                           (json_int_t)list.scanned, "matched", 0, "results"));
        else
            printf("no dead letter matches %s (%" PRId64 " read from %s): nothing to replay\n",
                   filter_text, list.scanned, cfg->topics.dlq.name);
        rc = CANCELCTL_EXIT_OK;
        goto out;
    }
    if (!o->dry_run && !o->yes && !confirm(list.n, filter_text)) {
        fprintf(stderr, "cancelctl: nothing replayed\n");
        goto out;
    }
    rl = ratelimit_new(o->rate, 1);
    if (rl == NULL) {
        rc = cancelctl_fail(ctx, "out of memory");
        goto out;
    }
    if (!ctx->json)
        printf("%-17s %-14s %-20s %-28s %s\n", o->dry_run ? "WOULD" : "RESULT", "PART/OFFSET",
               "REASON", "REQUEST", "WHAT");
    for (size_t i = 0; i < list.n; i++) {
        const struct ops_dlq_letter *l = &list.v[i];
        struct ops_replay_result res;
        if (!o->dry_run) {
            int64_t wait;
            while ((wait = ratelimit_take(rl, wall_ms())) > 0)
                sleep_ms(wait);
        }
        if (!ops_replay_one(db, cfg, l, op, filter, o->dry_run, &res, err, sizeof(err))) {
            if (progress)
                fputc('\n', stderr);
            rc = cancelctl_fail(ctx,
                                "dead letter %d/%" PRId64 ": %s (%zu of %zu done; run the "
                                "same replay again to continue: finished ones are skipped)",
                                l->partition, l->offset, err, i, list.n);
            goto out;
        }
        counts[res.action]++;
        /* why may quote the dead letter's error. */
        redact_process_buf(res.why, sizeof(res.why));
        char where[32];
        snprintf(where, sizeof(where), "%d/%" PRId64, l->partition, l->offset);
        if (ctx->json) {
            json_t *r =
                json_pack("{s:i, s:I, s:s, s:o, s:s, s:b, s:s}", "partition", l->partition,
                          "offset", (json_int_t)l->offset, "reason", l->reason, "requestId",
                          l->request_id[0] ? json_string(l->request_id) : json_null(), "action",
                          ops_replay_action_name(res.action), "done", res.done, "why", res.why);
            if (res.action == OPS_REPLAY_REPUBLISH)
                json_object_set_new(r, "targetTopic", json_string(res.target_topic));
            if (res.action == OPS_REPLAY_REARM)
                json_object_set_new(r, "attempt", json_integer(res.plan.attempt));
            json_array_append_new(results, r);
        } else {
            if (progress)
                fprintf(stderr, "\r\033[K");
            printf("%-17s %-14s %-20s %-28s %s\n", ops_replay_action_name(res.action), where,
                   dash(l->reason), dash(l->request_id), res.why);
            fflush(stdout);
            if (progress)
                fprintf(stderr,
                        "[%zu/%zu] re-armed %zu, re-published %zu, already %zu, refused %zu", i + 1,
                        list.n, counts[OPS_REPLAY_REARM], counts[OPS_REPLAY_REPUBLISH],
                        counts[OPS_REPLAY_ALREADY], counts[OPS_REPLAY_REFUSED]);
        }
    }
    if (progress)
        fputc('\n', stderr);
    bool refused = counts[OPS_REPLAY_REFUSED] > 0;
    if (ctx->json) {
        cancelctl_print_json(
            json_pack("{s:b, s:b, s:s, s:O, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:O}", "ok",
                      o->dry_run || !refused, "dryRun", o->dry_run, "operator", op, "filter",
                      filter, "read", (json_int_t)list.scanned, "matched", (json_int_t)list.n,
                      "counts", "REARM", (json_int_t)counts[OPS_REPLAY_REARM], "REPUBLISH",
                      (json_int_t)counts[OPS_REPLAY_REPUBLISH], "ALREADY_REPLAYED",
                      (json_int_t)counts[OPS_REPLAY_ALREADY], "REFUSED",
                      (json_int_t)counts[OPS_REPLAY_REFUSED], "results", results));
    } else {
        printf("%s%zu matched: %zu re-armed, %zu re-published, %zu already replayed, %zu "
               "refused%s\n",
               o->dry_run ? "dry run, nothing changed: " : "", list.n, counts[OPS_REPLAY_REARM],
               counts[OPS_REPLAY_REPUBLISH], counts[OPS_REPLAY_ALREADY], counts[OPS_REPLAY_REFUSED],
               o->dry_run ? " (would be)" : "");
    }
    if (refused && !o->dry_run)
        fprintf(stderr, "cancelctl: %zu dead letter(s) refused; see the reasons above\n",
                counts[OPS_REPLAY_REFUSED]);
    rc = refused && !o->dry_run ? CANCELCTL_EXIT_FAILURE : CANCELCTL_EXIT_OK;
out:
    free(filter_text);
    json_decref(filter);
    json_decref(results);
    ratelimit_free(rl);
    ops_dlq_list_free(&list);
    db_free(db);
    return rc;
}

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    struct dlq_opts o;
    int rc;

    if (argc < 2 || argv[1][0] == '-')
        return cancelctl_usage_error(&cancelctl_cmd_dlq, "missing subcommand: list or replay");
    bool replay;
    if (strcmp(argv[1], "list") == 0)
        replay = false;
    else if (strcmp(argv[1], "replay") == 0)
        replay = true;
    else
        return cancelctl_usage_error(&cancelctl_cmd_dlq,
                                     "unknown subcommand \"%s\": list or replay", argv[1]);
    /* getopt_long sees "replay" as argv[0]. */
    if ((rc = parse(argc - 1, argv + 1, replay, &o)) >= 0)
        return rc;

    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;
    rc = replay ? do_replay(ctx, cfg, &o) : do_list(ctx, cfg, &o);
    config_free(cfg);
    return rc;
}
