/*
 * pipeline_db: waiting for a pipeline's database (pipeline_fixture.h) to
 * show a state. One-shot queries go through the harness (itest_query_int
 * and itest_query_value on pipeline_itest(p)).
 */
#ifndef CR_TEST_PIPELINE_DB_H
#define CR_TEST_PIPELINE_DB_H

#include <stdbool.h>

struct pipeline;

/* Poll cancel_request until request_id is in a final status (SUCCEEDED,
 * ALREADY_REFUNDED, FAILED, EXHAUSTED, MANUALLY_RESOLVED) and return it (a
 * static string), or NULL after timeout_ms. */
const char *pipeline_wait_final(struct pipeline *p, const char *request_id, int timeout_ms);

/* The same, failing the test (naming the log dir) when request_id is not
 * final within timeout_ms. */
const char *pipeline_require_final(struct pipeline *p, const char *request_id, int timeout_ms);

/* The first column of the first row of sql with param as $1 (none when
 * NULL), malloc'd; "(null)" for SQL NULL or no row, so that tests compare it
 * with cr_expect_str_eq. */
char *pipeline_query(struct pipeline *p, const char *sql, const char *param);

/* Poll until the SQL query (text params) returns a first column equal to
 * want (NULL = SQL NULL), up to timeout_ms; returns whether it did. */
bool pipeline_wait_query(struct pipeline *p, const char *sql, int nparams,
                         const char *const *params, const char *want, int timeout_ms);

#endif
