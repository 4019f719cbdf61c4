/*
 * cancelctl: global options, then one command from the table in cancelctl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancelctl.h"
#include "base/log.h"

#define CANCELCTL_TABLE_ENTRY(name) &cancelctl_cmd_##name,
static const struct cancelctl_cmd *const commands[] = {CANCELCTL_COMMANDS(CANCELCTL_TABLE_ENTRY)
                                                           NULL};
#undef CANCELCTL_TABLE_ENTRY

static void print_usage(FILE *out)
{
    fprintf(out, "usage: cancelctl [--config FILE] [--json] [-v] COMMAND [ARGS]\n"
                 "\n"
                 "The operator's tool of cancel-retry.\n"
                 "\n"
                 "Commands:\n");
    for (size_t i = 0; commands[i] != NULL; i++)
        fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\n"
                 "Global options (also accepted after COMMAND):\n"
                 "  --config FILE  the config file (default: $CANCEL_RETRY_CONFIG, else\n"
                 "                 config/cancel-retry.yaml)\n"
                 "  --json         one JSON document on stdout instead of text\n"
                 "  -v, --verbose  log at info level on stderr (-vv: debug); default: warnings\n"
                 "  -h, --help     this help; \"cancelctl COMMAND --help\" for one command\n"
                 "  --version      print the version\n"
                 "\n"
                 "Exit codes: 0 success, 1 operational failure, 2 usage error.\n");
}

static const struct cancelctl_cmd *find_command(const char *name)
{
    for (size_t i = 0; commands[i] != NULL; i++) {
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct cancelctl_ctx ctx = {0};
    bool want_help = false, want_version = false, end_of_options = false;
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    int nrest = 0, rc = CANCELCTL_EXIT_USAGE;

    if (rest == NULL) {
        fprintf(stderr, "cancelctl: out of memory\n");
        return CANCELCTL_EXIT_FAILURE;
    }
    ctx.config_path = getenv("CANCEL_RETRY_CONFIG");
    if (ctx.config_path == NULL || ctx.config_path[0] == '\0')
        ctx.config_path = "config/cancel-retry.yaml";

    /* Take the global options out wherever they stand, so that both
     * "cancelctl --json topics" and "cancelctl topics --json" work; the
     * command parses what is left. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (end_of_options) {
            rest[nrest++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            end_of_options = true;
            rest[nrest++] = argv[i];
        } else if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                rc = cancelctl_usage_error(NULL, "option --config needs a value");
                goto out;
            }
            ctx.config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            ctx.config_path = a + 9;
        } else if (strcmp(a, "--json") == 0) {
            ctx.json = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            ctx.verbose++;
        } else if (strcmp(a, "-vv") == 0) {
            ctx.verbose += 2;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            want_help = true;
        } else if (strcmp(a, "--version") == 0 && nrest == 0) {
            want_version = true;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    /* Logs are for the operator's eyes only when something is wrong. */
    log_init("cancelctl", ctx.verbose >= 2 ? LOG_DEBUG : ctx.verbose == 1 ? LOG_INFO : LOG_WARN);

    if (want_version) {
        printf("cancelctl %s\n", CR_VERSION);
        rc = CANCELCTL_EXIT_OK;
        goto out;
    }
    if (nrest > 0 && strcmp(rest[0], "help") == 0) {
        want_help = true;
        nrest--;
        memmove(rest, rest + 1, (size_t)nrest * sizeof(*rest));
        rest[nrest] = NULL;
    }
    if (nrest == 0) {
        if (want_help) {
            print_usage(stdout);
            rc = CANCELCTL_EXIT_OK;
        } else {
            fprintf(stderr, "cancelctl: missing command\n");
            print_usage(stderr);
            rc = CANCELCTL_EXIT_USAGE;
        }
        goto out;
    }
    const struct cancelctl_cmd *cmd = find_command(rest[0]);
    if (cmd == NULL) {
        rc = cancelctl_usage_error(NULL, "unknown command \"%s\"", rest[0]);
        goto out;
    }
    if (want_help) {
        cancelctl_print_help(cmd, stdout);
        rc = CANCELCTL_EXIT_OK;
        goto out;
    }
    rc = cmd->run(&ctx, nrest, rest);
out:
    free(rest);
    fflush(stdout);
    return rc;
}
