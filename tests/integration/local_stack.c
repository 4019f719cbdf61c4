/*
 * local_stack: see local_stack.h.
 */
#include "local_stack.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *stack_script(void)
{
    static char path[600];
    snprintf(path, sizeof(path), "%s/deploy/local/stack", itest_require_env("CR_SOURCE_ROOT"));
    return path;
}

bool itest_stack(const char *verb, const char *service)
{
    const char *argv[] = {stack_script(), verb, service, NULL};
    struct itest_result r;
    itest_run(&r, 120000, argv, NULL);
    bool ok = r.exit_code == 0;
    if (!ok)
        fprintf(stderr, "deploy/local/stack %s %s exited %d:\n%s%s\n", verb, service, r.exit_code,
                r.out, r.err);
    itest_result_free(&r);
    return ok;
}

char *itest_stack_env(const char *name)
{
    const char *argv[] = {stack_script(), "env", NULL};
    struct itest_result r;
    itest_run(&r, 30000, argv, NULL);
    char *value = NULL, prefix[128];
    snprintf(prefix, sizeof(prefix), "export %s=", name);
    for (char *line = r.exit_code == 0 ? strtok(r.out, "\n") : NULL; line != NULL && !value;
         line = strtok(NULL, "\n")) {
        if (strncmp(line, prefix, strlen(prefix)) != 0)
            continue;
        char *v = line + strlen(prefix);
        size_t len = strlen(v);
        if (len >= 2 && v[0] == '\'' && v[len - 1] == '\'') {
            v[len - 1] = '\0';
            v++;
        }
        value = strdup(v);
    }
    itest_result_free(&r);
    return value;
}

void itest_require_stack_service(const char *service)
{
    const char *want_name =
        strcmp(service, "pg") == 0 ? "CR_TEST_PG_DSN" : "CR_TEST_KAFKA_BOOTSTRAP";
    const char *want = itest_require_env(want_name);
    char *have = itest_stack_env(want_name);
    bool same = have != NULL && strcmp(have, want) == 0;
    free(have);
    if (!same)
        cr_skip_test("%s is not the one deploy/local/stack runs: cannot stop and start it",
                     want_name);
    if (strcmp(service, "kafka") == 0) {
        char *mode = itest_stack_env("CR_KAFKA_MODE");
        bool mock = mode == NULL || strcmp(mode, "kafka") != 0;
        free(mode);
        if (mock)
            cr_skip_test("the broker is not Apache Kafka (mock mode): a restart loses all topics");
    }
}
