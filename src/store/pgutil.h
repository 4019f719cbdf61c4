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

#include "store/db.h"

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

/* pgutil_query in two steps (db_send_params, db_take_result): send sql
 * with text parameters and return; later take its result, expected status
 * checked, or NULL with err = "context: reason". */
bool pgutil_send(struct db *db, const char *sql, int nparams, const char *const *values,
                 const char *context, char *err, size_t errlen) __attribute__((warn_unused_result));
PGresult *pgutil_take(struct db *db, ExecStatusType expected, const char *context, char *err,
                      size_t errlen);

/* A PostgreSQL array literal "{1,2,3}" for ids; malloc'd, NULL when out of
 * memory. */
char *pgutil_int64_array(const int64_t *ids, size_t n);

/* A one-dimensional array parameter in PostgreSQL's binary format (the
 * format array_recv reads), built element by element, for statements that
 * take a whole batch as columns: INSERT ... SELECT FROM unnest($1::text[],
 * ...). Binary, so that no element needs quoting or escaping and bytea goes
 * as it is. Pass it with format 1 and its length; the SQL must cast the
 * parameter to an array of elem_oid's type (PGUTIL_OID_TEXT: text[]). */
#define PGUTIL_OID_BYTEA 17
#define PGUTIL_OID_TEXT  25

struct pgutil_array {
    unsigned char *buf; /* owned */
    size_t len, cap;
    int n;
    bool failed; /* out of memory or too big: pgutil_array_data() returns NULL */
};

/* Start an empty array of elem_oid elements. */
void pgutil_array_init(struct pgutil_array *a, uint32_t elem_oid);

/* Append an element of len bytes; bytes NULL is SQL NULL. */
void pgutil_array_add(struct pgutil_array *a, const void *bytes, size_t len);

/* The finished parameter and its length, valid until the next add or
 * free; NULL when an add failed. */
const char *pgutil_array_data(struct pgutil_array *a, int *len);

void pgutil_array_free(struct pgutil_array *a);

/* Epoch milliseconds of a timestamptz column read as
 * "extract(epoch from col) * 1000" text; 0 when NULL. */
int64_t pgutil_get_ms(const PGresult *res, int row, int col);

/* A bigint column (its text); 0 when NULL. */
int64_t pgutil_get_i64(const PGresult *res, int row, int col);

/* strdup of a column, NULL when SQL NULL. */
char *pgutil_get_str(const PGresult *res, int row, int col);

#endif
