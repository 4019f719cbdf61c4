/*
 * pipeline_db: waiting for the pipeline's database. See pipeline_db.h.
 */
#include "pipeline_db.h"

#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include <libpq-fe.h>

#include "pipeline_internal.h"

#include "base/clock.h"

const char *pipeline_wait_final(struct pipeline *p, const char *request_id, int timeout_ms)
{
    static const char *const finals[] = {"SUCCEEDED", "ALREADY_REFUNDED", "FAILED", "EXHAUSTED",
                                         "MANUALLY_RESOLVED"};
    const char *params[] = {request_id};
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        PGresult *res =
            PQexecParams(itest_pg(&p->t), "SELECT status FROM cancel_request WHERE request_id = $1",
                         1, NULL, params, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "select status: %s",
                     PQresultErrorMessage(res));
        const char *found = NULL;
        if (PQntuples(res) == 1) {
            for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
                if (strcmp(PQgetvalue(res, 0, 0), finals[i]) == 0)
                    found = finals[i];
            }
        }
        PQclear(res);
        if (found != NULL)
            return found;
        if (mono_ms() >= deadline)
            return NULL;
        itest_sleep_ms(100);
    }
}

const char *pipeline_require_final(struct pipeline *p, const char *request_id, int timeout_ms)
{
    const char *st = pipeline_wait_final(p, request_id, timeout_ms);
    cr_assert_not_null(st, "%s did not reach a final status within %d s (logs: %s)", request_id,
                       timeout_ms / 1000, p->log_dir);
    return st;
}

char *pipeline_query(struct pipeline *p, const char *sql, const char *param)
{
    const char *params[] = {param};
    char *v = itest_query_value(&p->t, sql, param != NULL ? 1 : 0, params);
    return v != NULL ? v : strdup("(null)");
}

bool pipeline_wait_query(struct pipeline *p, const char *sql, int nparams,
                         const char *const *params, const char *want, int timeout_ms)
{
    return itest_wait_query(&p->t, sql, nparams, params, want, timeout_ms);
}
