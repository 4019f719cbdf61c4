/*
 * cli: helpers shared by the cancelctl commands. See cancelctl.h.
 */
#include "cancelctl.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/redact.h"
#include "event/cancel_event.h"

/* A tool fails fast: a database that is down for the operator is news, not
 * something to wait out. Two attempts ride over a momentary blip. */
#define CANCELCTL_DB_ATTEMPTS 2

struct config *cancelctl_load_config(const struct cancelctl_ctx *ctx)
{
    char err[1024];
    struct config *cfg = config_load(ctx->config_path, err, sizeof(err));
    if (cfg == NULL)
        cancelctl_fail(ctx, "%s", err);
    else if (!redact_process_install(cfg))
        fprintf(stderr, "cancelctl: could not build the set of secrets to mask (out of memory): "
                        "only the pattern rules apply\n");
    return cfg;
}

struct db *cancelctl_connect_db(const struct cancelctl_ctx *ctx, const struct config *cfg)
{
    char err[1024];
    struct db *db = db_new(&cfg->database, "cancelctl");
    if (db == NULL) {
        cancelctl_fail(ctx, "could not connect to the database: out of memory");
        return NULL;
    }
    if (!db_connect_retry(db, CANCELCTL_DB_ATTEMPTS, err, sizeof(err))) {
        cancelctl_fail(ctx, "%s (%s)", err, db_display_dsn(db));
        db_free(db);
        return NULL;
    }
    return db;
}

int cancelctl_fail(const struct cancelctl_ctx *ctx, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Errors quote what the database, the broker or a gateway said. */
    redact_process_buf(msg, sizeof(msg));
    fprintf(stderr, "cancelctl: %s\n", msg);
    if (ctx != NULL && ctx->json)
        cancelctl_print_json(json_pack("{s:b, s:s}", "ok", 0, "error", msg));
    return CANCELCTL_EXIT_FAILURE;
}

void cancelctl_print_help(const struct cancelctl_cmd *cmd, FILE *out)
{
    fprintf(out, "%s\n", cmd->help);
    fprintf(out, "\nGlobal options: --config FILE, --json, -v/--verbose, -h/--help\n");
}

int cancelctl_usage_error(const struct cancelctl_cmd *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "cancelctl: %s\n", msg);
    if (cmd != NULL) {
        /* Only the usage lines (up to the first blank line) of the help. */
        const char *end = strstr(cmd->help, "\n\n");
        int len = end ? (int)(end - cmd->help) : (int)strlen(cmd->help);
        fprintf(stderr, "%.*s\nTry \"cancelctl %s --help\".\n", len, cmd->help, cmd->name);
    } else {
        fprintf(stderr, "Try \"cancelctl --help\".\n");
    }
    return CANCELCTL_EXIT_USAGE;
}

void cancelctl_print_json(json_t *doc)
{
    if (doc == NULL)
        return;
    redact_process_json(doc);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text != NULL) {
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    }
    json_decref(doc);
}

int cancelctl_bad_option(const struct cancelctl_cmd *cmd, int c, int argc, char **argv)
{
    /* getopt_long leaves the offending word at optind - 1. */
    const char *word = (optind > 0 && optind - 1 < argc) ? argv[optind - 1] : "?";
    if (c == ':')
        return cancelctl_usage_error(cmd, "option %s needs a value", word);
    return cancelctl_usage_error(cmd, "unknown option %s", word);
}

int cancelctl_take_request_id(const struct cancelctl_cmd *cmd, int argc, char **argv,
                              const char **request_id)
{
    if (optind >= argc)
        return cancelctl_usage_error(cmd, "missing REQUEST_ID");
    const char *id = argv[optind++];
    if (optind < argc)
        return cancelctl_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!cancel_request_id_valid(id))
        return cancelctl_usage_error(cmd, "\"%s\" is not a requestId (1-255 of [A-Za-z0-9._:-])",
                                     id);
    *request_id = id;
    return -1;
}

int cancelctl_parse_action(const struct cancelctl_cmd *cmd, int argc, char **argv,
                           struct cancelctl_action *out)
{
    enum { OPT_NOTE = 1000, OPT_OPERATOR, OPT_DRY_RUN };
    static const struct option longopts[] = {{"note", required_argument, NULL, OPT_NOTE},
                                             {"operator", required_argument, NULL, OPT_OPERATOR},
                                             {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                             {NULL, 0, NULL, 0}};
    int c;

    memset(out, 0, sizeof(*out));
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_NOTE:
            out->note = optarg;
            break;
        case OPT_OPERATOR:
            out->operator_flag = optarg;
            break;
        case OPT_DRY_RUN:
            out->dry_run = true;
            break;
        default:
            return cancelctl_bad_option(cmd, c, argc, argv);
        }
    }
    return cancelctl_take_request_id(cmd, argc, argv, &out->request_id);
}
