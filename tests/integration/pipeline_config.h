/*
 * pipeline_config: the config file of a pipeline test, written as layers of
 * YAML merged by key: maps merge recursively, anything else (a scalar, a
 * sequence) replaces the value, so
 *     "gateways:\n  toss:\n    breaker: { min_requests: 3 }\n"
 * changes one key of one gateway and keeps the rest. Each layer gets the
 * harness's @PLACEHOLDER@ substitution (itest_write_config) first.
 */
#ifndef CR_TEST_PIPELINE_CONFIG_H
#define CR_TEST_PIPELINE_CONFIG_H

#include "harness.h"

/* Write t->config_path: the harness's default template <- overrides <-
 * extra (either may be NULL). Fails the test if a layer is not YAML. */
void pipeline_config_write(struct itest *t, const char *overrides, const char *extra);

#endif
