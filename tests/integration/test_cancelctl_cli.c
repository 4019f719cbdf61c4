/*
 * cancelctl's command line: exit codes, usage and help. Needs no database or
 * broker (only CR_CANCELCTL).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Up to 5 arguments, inline (Criterion re-executes the binary per test). */
struct usage_case {
    char args[5][32];
    char message[48];
};

ParameterizedTestParameters(cli, usage_errors_exit_2)
{
    static struct usage_case cases[] = {
        {{""}, "missing command"},
        {{"frobnicate"}, "unknown command"},
        {{"migrate", "--frobnicate"}, "unknown option --frobnicate"},
        {{"migrate", "--migrations-dir"}, "needs a value"},
        {{"migrate", "extra"}, "unexpected argument"},
        {{"topics", "--timeout", "soon"}, "--timeout"},
        {{"topics", "--check", "now"}, "unexpected argument"},
        {{"--config"}, "needs a value"},
        /* the operator's commands (test_cancelctl_ops.c) */
        {{"dlq"}, "missing subcommand"},
        {{"dlq", "purge"}, "unknown subcommand"},
        {{"dlq", "list", "--limit", "0"}, "--limit"},
        {{"dlq", "list", "--reason", "NOPE"}, "not a dead-letter reason"},
        {{"dlq", "list", "--since", "yesterday"}, "--since"},
        {{"dlq", "list", "--yes"}, "option of \"dlq replay\""},
        {{"dlq", "replay", "--rate", "fast"}, "--rate"},
        {{"requeue"}, "missing REQUEST_ID"},
        {{"requeue", "bad id!"}, "not a requestId"},
        {{"resolve", "r-1"}, "--note is required"},
        {{"show", "a", "b"}, "unexpected argument"},
        {{"status", "--frob"}, "unknown option"},
    };
    return cr_make_param_array(struct usage_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct usage_case *c, cli, usage_errors_exit_2)
{
    const char *argv[7] = {itest_cancelctl()};
    int n = 1;
    for (int i = 0; i < 5 && c->args[i][0] != '\0'; i++)
        argv[n++] = c->args[i];
    argv[n] = NULL;
    struct itest_result r;
    itest_run(&r, 30000, argv, NULL);
    cr_expect_eq(r.exit_code, 2, "%s %s: exit %d", c->args[0], c->args[1], r.exit_code);
    cr_expect_not_null(strstr(r.err, c->message), "want \"%s\" in stderr: %s", c->message, r.err);
    cr_expect_not_null(strstr(r.err, "cancelctl"), "no usage hint: %s", r.err);
    cr_expect_str_eq(r.out, "", "usage errors go to stderr: %s", r.out);
    itest_result_free(&r);
}

Test(cli, unknown_config_key_exits_1_with_file_and_line)
{
    char dir[] = "/tmp/cr-it-cli-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/bad.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("log:\n  level: info\ndatabase:\n  dsn: \"host=127.0.0.1\"\n  colour: blue\n", f);
    fclose(f);

    const char *argv[] = {itest_cancelctl(), "--config", path, "migrate", NULL};
    struct itest_result r;
    itest_run(&r, 30000, argv, NULL);
    char want[128];
    snprintf(want, sizeof(want), "%s:5: database.colour", path);
    cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
    cr_expect_not_null(strstr(r.err, want), "want \"%s\" in: %s", want, r.err);
    itest_result_free(&r);

    /* --json: the same failure as a JSON document on stdout. */
    const char *argv_json[] = {itest_cancelctl(), "--config", path, "--json", "topics", NULL};
    itest_run(&r, 30000, argv_json, NULL);
    cr_expect_eq(r.exit_code, 1);
    cr_expect_not_null(strstr(r.out, "\"ok\": false"), "stdout: %s", r.out);
    cr_expect_not_null(strstr(r.out, "database.colour"), "stdout: %s", r.out);
    itest_result_free(&r);

    unlink(path);
    rmdir(dir);
}

Test(cli, missing_config_file_exits_1)
{
    const char *argv[] = {itest_cancelctl(), "--config", "/nonexistent/cancel-retry.yaml",
                          "migrate", NULL};
    struct itest_result r;
    itest_run(&r, 30000, argv, NULL);
    cr_expect_eq(r.exit_code, 1);
    cr_expect_not_null(strstr(r.err, "/nonexistent/cancel-retry.yaml"), "stderr: %s", r.err);
    itest_result_free(&r);
}

/* Every command listed by "cancelctl --help" has a working --help of its
 * own: new commands are covered without touching this test. */
Test(cli, help_works_for_every_command)
{
    const char *argv[] = {itest_cancelctl(), "--help", NULL};
    struct itest_result r;
    itest_run(&r, 30000, argv, NULL);
    cr_assert_eq(r.exit_code, 0);
    cr_expect_not_null(strstr(r.out, "usage: cancelctl"));
    const char *list = strstr(r.out, "Commands:\n");
    cr_assert_not_null(list, "no command list: %s", r.out);
    list += strlen("Commands:\n");
    int commands = 0;
    char name[64];
    for (const char *line = list; strncmp(line, "  ", 2) == 0;) {
        int n = 0;
        cr_assert_eq(sscanf(line, " %63s%n", name, &n), 1);
        commands++;
        const char *cmd_help[] = {itest_cancelctl(), name, "--help", NULL};
        const char *help_cmd[] = {itest_cancelctl(), "help", name, NULL};
        char want[128];
        snprintf(want, sizeof(want), "usage: cancelctl %s", name);
        for (int k = 0; k < 2; k++) {
            struct itest_result h;
            itest_run(&h, 30000, k == 0 ? cmd_help : help_cmd, NULL);
            cr_expect_eq(h.exit_code, 0, "%s --help: exit %d", name, h.exit_code);
            cr_expect(strncmp(h.out, want, strlen(want)) == 0, "%s --help: %s", name, h.out);
            cr_expect_not_null(strstr(h.out, "Examples:"), "%s --help has no examples", name);
            itest_result_free(&h);
        }
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    cr_expect_geq(commands, 2, "commands listed: %d", commands);
    itest_result_free(&r);
}

Test(cli, version)
{
    const char *argv[] = {itest_cancelctl(), "--version", NULL};
    struct itest_result r;
    itest_run(&r, 30000, argv, NULL);
    cr_expect_eq(r.exit_code, 0);
    cr_expect(strncmp(r.out, "cancelctl ", 10) == 0, "%s", r.out);
    itest_result_free(&r);
}
