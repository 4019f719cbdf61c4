/*
 * pgutil: small libpq result helpers shared by the SQL modules (outbox,
 * request_store, reconciler). Connection management lives in db.h.
 */
#ifndef CR_PGUTIL_H
#define CR_PGUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "db.h"

/* Run sql through db_exec_params (text parameters unless formats says
 * otherwise) expecting status `expected`. Returns the result (the caller
 * PQclear()s it) or NULL with err = "context: reason"; the error class is in
 * db_last_error_class(db). */
PGresult *pgutil_query(struct db *db, const char *sql, int nparams, const char *const *values,
                       const int *lengths, const int *formats, ExecStatusType expected,
                       const char *context, char *err, size_t errlen);

/* The same for statements whose result is not needed. */
bool pgutil_command(struct db *db, const char *sql, int nparams, const char *const *values,
                    const char *context, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A PostgreSQL array literal "{1,2,3}" for ids; malloc'd, NULL when out of
 * memory. */
char *pgutil_int64_array(const int64_t *ids, size_t n);

/* Epoch milliseconds of a timestamptz column read as
 * "extract(epoch from col) * 1000" text; 0 when NULL. */
int64_t pgutil_get_ms(const PGresult *res, int row, int col);

/* strdup of a column, NULL when SQL NULL. */
char *pgutil_get_str(const PGresult *res, int row, int col);

#endif
