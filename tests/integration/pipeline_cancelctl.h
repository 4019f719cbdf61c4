/*
 * pipeline_cancelctl: cancelctl run as an operator would, on a pipeline
 * (pipeline_fixture.h): --config <the pipeline's config>, stdin from
 * /dev/null (never a terminal), killed after 120 s. The child inherits the
 * test's environment (e.g. CANCELCTL_OPERATOR).
 */
#ifndef CR_TEST_PIPELINE_CANCELCTL_H
#define CR_TEST_PIPELINE_CANCELCTL_H

#include <jansson.h>

#include "harness.h"

struct pipeline;

/* Run cancelctl with args (NULL-ended, at most 24). *r: its exit code and
 * output (caller frees with itest_result_free). */
void pipeline_cancelctl(struct pipeline *p, struct itest_result *r, const char *const *args);

/* The same, failing the test unless cancelctl exits with code. */
void pipeline_cancelctl_exit(struct pipeline *p, struct itest_result *r, int code,
                             const char *const *args);

/* The same for exit code 0, the output dropped. */
void pipeline_cancelctl_ok(struct pipeline *p, const char *const *args);

/* The same, failing the test unless cancelctl exits with code and prints
 * JSON on stdout (args asks for it: "--json"). Returns the JSON (caller
 * decrefs). */
json_t *pipeline_cancelctl_json(struct pipeline *p, int code, const char *const *args);

#endif
