/*
 * cancelctl: the operator's tool. main.c parses the global options and
 * dispatches to one command; each command lives in cmd_<name>.c and defines
 * a const struct cancelctl_cmd named cancelctl_cmd_<name>.
 *
 * Adding a command: write cmd_<name>.c, add X(<name>) to CANCELCTL_COMMANDS
 * below and '<name>' to the list in meson.build.
 *
 * Exit codes, the same for every command: 0 success, 1 operational failure
 * (database or broker unreachable, bad config, a check that found a
 * problem), 2 usage error (unknown command or flag, missing argument).
 */
#ifndef CR_CANCELCTL_H
#define CR_CANCELCTL_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "config/config.h"
#include "store/db.h"

/* The command table, in the order `cancelctl --help` lists them. */
#define CANCELCTL_COMMANDS(X)                                                                      \
    X(status)                                                                                      \
    X(show)                                                                                        \
    X(dlq)                                                                                         \
    X(outbox)                                                                                      \
    X(requeue)                                                                                     \
    X(resolve)                                                                                     \
    X(reconcile)                                                                                   \
    X(migrate)                                                                                     \
    X(config)                                                                                      \
    X(publish)                                                                                     \
    X(topics)

enum { CANCELCTL_EXIT_OK = 0, CANCELCTL_EXIT_FAILURE = 1, CANCELCTL_EXIT_USAGE = 2 };

/* What every command gets from the global options. */
struct cancelctl_ctx {
    const char *config_path; /* --config, $CANCEL_RETRY_CONFIG, or config/cancel-retry.yaml */
    bool json;               /* --json: one JSON document on stdout */
    int verbose;             /* -v (info logs), -vv (debug logs) */
};

struct cancelctl_cmd {
    const char *name;
    /* argv[0] is the command's name; options are parsed with getopt_long
     * (the global options were already taken out by main). Returns an exit
     * code. */
    int (*run)(struct cancelctl_ctx *ctx, int argc, char **argv);
    const char *summary; /* one line for `cancelctl --help` */
    const char *help;    /* usage, options and examples for `cancelctl NAME --help` */
};

#define CANCELCTL_DECLARE(name) extern const struct cancelctl_cmd cancelctl_cmd_##name;
CANCELCTL_COMMANDS(CANCELCTL_DECLARE)
#undef CANCELCTL_DECLARE

/* ---- helpers shared by the commands (cli.c) ---- */

/* Load ctx->config_path and install its secrets as the process's set of
 * redact.h: what cancelctl prints is masked with it (cancelctl_fail,
 * cancelctl_print_json, and the documents the commands print as text). On
 * failure prints the loader's message ("FILE:LINE: key: reason") and returns
 * NULL: the command exits 1. */
struct config *cancelctl_load_config(const struct cancelctl_ctx *ctx);

/* Connect to cfg's database, failing after a couple of attempts instead of
 * waiting forever as the daemons do. On failure prints why and returns NULL. */
struct db *cancelctl_connect_db(const struct cancelctl_ctx *ctx, const struct config *cfg);

/* Report a failure: "cancelctl: message" on stderr and, with --json,
 * {"ok": false, "error": message} on stdout, secrets masked. Returns
 * CANCELCTL_EXIT_FAILURE. */
int cancelctl_fail(const struct cancelctl_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Report a usage error for cmd (NULL: the global usage): "cancelctl: message"
 * and the command's usage on stderr. Returns CANCELCTL_EXIT_USAGE. */
int cancelctl_usage_error(const struct cancelctl_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print cmd's help to out. */
void cancelctl_print_help(const struct cancelctl_cmd *cmd, FILE *out);

/* Print doc (stolen) as indented JSON on stdout with a final newline,
 * secrets masked. */
void cancelctl_print_json(json_t *doc);

/* Report what getopt_long complained about, given its return c (':' for a
 * missing value, '?' for an unknown option; commands pass an optstring
 * starting with ':' and set opterr = 0). Returns CANCELCTL_EXIT_USAGE. */
int cancelctl_bad_option(const struct cancelctl_cmd *cmd, int c, int argc, char **argv);

/* Take the single REQUEST_ID operand left at argv[optind] after getopt. On
 * success sets *request_id and returns -1; otherwise prints a usage error
 * (missing, extra argument, not a valid requestId) and returns its exit code. */
int cancelctl_take_request_id(const struct cancelctl_cmd *cmd, int argc, char **argv,
                              const char **request_id);

/* The options of a manual action on one request (requeue, resolve). */
struct cancelctl_action {
    const char *request_id;
    const char *note;          /* --note TEXT, NULL if absent */
    const char *operator_flag; /* --operator NAME, NULL if absent */
    bool dry_run;              /* --dry-run */
};

/* Parse `--note TEXT --operator NAME --dry-run REQUEST_ID` into *out. Returns
 * -1 on success, else the exit code of the usage error it printed. */
int cancelctl_parse_action(const struct cancelctl_cmd *cmd, int argc, char **argv,
                           struct cancelctl_action *out);

#endif
