/*
 * pipeline_cancelctl: cancelctl on a pipeline. See pipeline_cancelctl.h.
 */
#include "pipeline_cancelctl.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "pipeline_internal.h"

#define CANCELCTL_TIMEOUT_MS 120000
#define CANCELCTL_MAX_ARGS   24

/* "cancelctl a b c" for messages. */
static const char *words(const char *const *args, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "cancelctl");
    for (size_t i = 0; args[i] != NULL && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, " %s", args[i]);
    return buf;
}

void pipeline_cancelctl(struct pipeline *p, struct itest_result *r, const char *const *args)
{
    /* The shell only puts /dev/null on stdin, then becomes cancelctl. */
    const char *argv[CANCELCTL_MAX_ARGS + 7];
    size_t n = 0;
    argv[n++] = "/bin/sh";
    argv[n++] = "-c";
    argv[n++] = "exec \"$0\" \"$@\" </dev/null";
    argv[n++] = itest_cancelctl();
    argv[n++] = "--config";
    argv[n++] = p->t.config_path;
    for (size_t i = 0; args[i] != NULL; i++) {
        cr_assert_lt(i, CANCELCTL_MAX_ARGS, "more than %d cancelctl arguments", CANCELCTL_MAX_ARGS);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    itest_run(r, CANCELCTL_TIMEOUT_MS, argv, NULL);
}

void pipeline_cancelctl_exit(struct pipeline *p, struct itest_result *r, int code,
                             const char *const *args)
{
    char what[512];
    pipeline_cancelctl(p, r, args);
    cr_assert_eq(r->exit_code, code, "%s: exit %d, want %d\nstderr: %s\nstdout: %s",
                 words(args, what, sizeof(what)), r->exit_code, code, r->err, r->out);
}

void pipeline_cancelctl_ok(struct pipeline *p, const char *const *args)
{
    struct itest_result r;
    pipeline_cancelctl_exit(p, &r, 0, args);
    itest_result_free(&r);
}

json_t *pipeline_cancelctl_json(struct pipeline *p, int code, const char *const *args)
{
    char what[512];
    struct itest_result r;
    pipeline_cancelctl_exit(p, &r, code, args);
    json_error_t jerr;
    json_t *doc = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(doc, "%s: not JSON (%s): %s", words(args, what, sizeof(what)), jerr.text,
                       r.out);
    itest_result_free(&r);
    return doc;
}
