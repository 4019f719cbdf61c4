/*
 * cancelctl outbox: list and requeue the outbox rows the relay parked.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelctl.h"
#include "ops/ops_outbox.h"
#include "ops/ops_request.h"

static const char help[] =
    "usage: cancelctl outbox list-parked [--limit N]\n"
    "       cancelctl outbox requeue (--id N | --all) [--note TEXT] [--operator NAME] [--dry-run]\n"
    "\n"
    "The outbox-relay parks a row the broker can never accept as it is, instead of\n"
    "retrying it at the head of every batch: a message larger than the broker's or the\n"
    "topic's limit (MSG_SIZE_TOO_LARGE), a topic that does not exist on the cluster\n"
    "(UNKNOWN_TOPIC, confirmed by a metadata request), headers that cannot be built\n"
    "(BAD_HEADERS), an invalid record. It logs each one at error level and counts it\n"
    "(cancel_retry_outbox_parked_total); `cancelctl status` shows how many are parked and\n"
    "the oldest. A parked row is never dropped: it waits here.\n"
    "\n"
    "list-parked: the parked rows, oldest first: id, topic, event type, requestId, size,\n"
    "when and why they were parked.\n"
    "\n"
    "requeue: put parked rows back in line, due now, once the cause is fixed (the topic\n"
    "created, the broker's or topic's max.message.bytes raised, ...). Each row gets an\n"
    "outbox_requeue audit row (who, when, the reason it had been parked for, --note) in\n"
    "the same transaction. A row whose cause is still there is parked again.\n"
    "\n"
    "Options:\n"
    "  --limit N        list-parked: at most N rows (default 100)\n"
    "  --id N           requeue: the parked row with this outbox id\n"
    "  --all            requeue: every parked row\n"
    "  --note TEXT      requeue: why, kept in the audit rows\n"
    "  --operator NAME  requeue: who (default: $CANCELCTL_OPERATOR, else $USER@hostname)\n"
    "  --dry-run        requeue: show the rows that would be requeued; change nothing\n"
    "\n"
    "Exit codes: 0 done (also: nothing parked); 1 a failure, or --id names a row that is\n"
    "not parked; 2 usage.\n"
    "\n"
    "Examples:\n"
    "  cancelctl outbox list-parked\n"
    "  cancelctl outbox requeue --id 81234 --note \"topic created, OPS-77\"\n"
    "  cancelctl outbox requeue --all --dry-run\n"
    "  cancelctl --json outbox list-parked | jq '.parked[].parkReason'";

static int run(struct cancelctl_ctx *ctx, int argc, char **argv);

const struct cancelctl_cmd cancelctl_cmd_outbox = {
    "outbox", run, "parked outbox rows (list-parked | requeue)", help};

#define DEFAULT_LIMIT 100

struct outbox_opts {
    bool requeue;
    int limit;
    int64_t id; /* 0: --all */
    bool all, dry_run;
    const char *note, *operator_flag;
};

static int parse(int argc, char **argv, struct outbox_opts *o)
{
    enum { OPT_LIMIT = 1000, OPT_ID, OPT_ALL, OPT_NOTE, OPT_OPERATOR, OPT_DRY_RUN };
    static const struct option longopts[] = {{"limit", required_argument, NULL, OPT_LIMIT},
                                             {"id", required_argument, NULL, OPT_ID},
                                             {"all", no_argument, NULL, OPT_ALL},
                                             {"note", required_argument, NULL, OPT_NOTE},
                                             {"operator", required_argument, NULL, OPT_OPERATOR},
                                             {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                             {NULL, 0, NULL, 0}};
    const struct cancelctl_cmd *cmd = &cancelctl_cmd_outbox;
    char *end;
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        bool for_requeue = c != OPT_LIMIT;
        if (c == ':' || c == '?')
            return cancelctl_bad_option(cmd, c, argc, argv);
        if (for_requeue != o->requeue)
            return cancelctl_usage_error(cmd, "%s does not apply to %s", argv[optind - 1],
                                         o->requeue ? "requeue" : "list-parked");
        switch (c) {
        case OPT_LIMIT: {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < 1 || v > 100000)
                return cancelctl_usage_error(cmd, "--limit: \"%s\" is not a number 1..100000",
                                             optarg);
            o->limit = (int)v;
            break;
        }
        case OPT_ID: {
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < 1)
                return cancelctl_usage_error(cmd, "--id: \"%s\" is not an outbox id", optarg);
            o->id = v;
            break;
        }
        case OPT_ALL:
            o->all = true;
            break;
        case OPT_NOTE:
            o->note = optarg;
            break;
        case OPT_OPERATOR:
            o->operator_flag = optarg;
            break;
        case OPT_DRY_RUN:
            o->dry_run = true;
            break;
        }
    }
    if (optind < argc)
        return cancelctl_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (o->requeue && (o->id > 0) == o->all)
        return cancelctl_usage_error(cmd, "requeue needs either --id N or --all");
    return -1;
}

static json_int_t num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "-";
}

static void print_rows(const json_t *rows)
{
    size_t i;
    json_t *r;
    printf("%-10s %-36s %-24s %10s  %-24s %s\n", "ID", "TOPIC", "REQUEST", "BYTES", "PARKED AT",
           "REASON");
    json_array_foreach(rows, i, r)
        printf("%-10" JSON_INTEGER_FORMAT " %-36s %-24s %10" JSON_INTEGER_FORMAT "  %-24s %s\n",
               num(r, "id"), str(r, "topic"), str(r, "requestId"), num(r, "bytes"),
               str(r, "parkedAt"), str(r, "parkReason"));
}

static int do_list(struct cancelctl_ctx *ctx, struct db *db, const struct outbox_opts *o)
{
    char err[1024];
    json_t *rows = NULL;

    if (!ops_outbox_list_parked(db, o->limit, &rows, err, sizeof(err)))
        return cancelctl_fail(ctx, "%s", err);
    if (ctx->json) {
        cancelctl_print_json(json_pack("{s:b, s:o}", "ok", 1, "parked", rows));
    } else if (json_array_size(rows) == 0) {
        printf("no parked outbox rows\n");
        json_decref(rows);
    } else {
        print_rows(rows);
        json_decref(rows);
    }
    return CANCELCTL_EXIT_OK;
}

static int do_requeue(struct cancelctl_ctx *ctx, struct db *db, const struct outbox_opts *o)
{
    char err[1024], op[OPS_OPERATOR_MAX + 1];
    json_t *rows = NULL;
    const char *state = NULL;

    ops_operator_current(o->operator_flag, op, sizeof(op));
    if (!ops_outbox_requeue(db, o->id, op, o->note, o->dry_run, &rows, &state, err, sizeof(err)))
        return cancelctl_fail(ctx, "%s", err);
    size_t n = json_array_size(rows);
    if (o->id > 0 && n == 0) {
        json_decref(rows);
        return cancelctl_fail(ctx, "outbox row %" PRId64 " is not parked (%s)", o->id,
                              strcmp(state, "missing") == 0 ? "no such row" : state);
    }
    if (ctx->json) {
        cancelctl_print_json(json_pack("{s:b, s:b, s:s, s:I, s:o}", "ok", 1, "dryRun", o->dry_run,
                                       "operator", op, "requeued", (json_int_t)n, "rows", rows));
        return CANCELCTL_EXIT_OK;
    }
    if (n == 0) {
        printf("no parked outbox rows\n");
    } else {
        print_rows(rows);
        printf("%s %zu parked outbox row%s%s\n", o->dry_run ? "would requeue" : "requeued", n,
               n == 1 ? "" : "s",
               o->dry_run ? " (dry run: nothing changed)" : "; the relay publishes them now");
    }
    json_decref(rows);
    return CANCELCTL_EXIT_OK;
}

static int run(struct cancelctl_ctx *ctx, int argc, char **argv)
{
    struct outbox_opts o = {.limit = DEFAULT_LIMIT};
    int rc;

    if (argc < 2 || argv[1][0] == '-')
        return cancelctl_usage_error(&cancelctl_cmd_outbox,
                                     "missing subcommand: list-parked or requeue");
    if (strcmp(argv[1], "requeue") == 0)
        o.requeue = true;
    else if (strcmp(argv[1], "list-parked") != 0)
        return cancelctl_usage_error(&cancelctl_cmd_outbox,
                                     "unknown subcommand \"%s\": list-parked or requeue", argv[1]);
    /* getopt_long sees the subcommand as argv[0]. */
    if ((rc = parse(argc - 1, argv + 1, &o)) >= 0)
        return rc;

    struct config *cfg = cancelctl_load_config(ctx);
    if (cfg == NULL)
        return CANCELCTL_EXIT_FAILURE;
    struct db *db = cancelctl_connect_db(ctx, cfg);
    if (db == NULL) {
        config_free(cfg);
        return CANCELCTL_EXIT_FAILURE;
    }
    rc = o.requeue ? do_requeue(ctx, db, &o) : do_list(ctx, db, &o);
    db_free(db);
    config_free(cfg);
    return rc;
}
