/*
 * pgutil: see pgutil.h.
 */
#include "pgutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGresult *pgutil_query(struct db *db, const char *sql, int nparams, const char *const *values,
                       const int *lengths, const int *formats, ExecStatusType expected,
                       const char *context, char *err, size_t errlen)
{
    char reason[512];
    PGresult *res = NULL;

    if (db_exec_params(db, sql, nparams, values, lengths, formats, 0, expected, &res, reason,
                       sizeof(reason)))
        return res;
    snprintf(err, errlen, "%s: %s", context, reason);
    return NULL;
}

bool pgutil_command(struct db *db, const char *sql, int nparams, const char *const *values,
                    const char *context, char *err, size_t errlen)
{
    PGresult *res =
        pgutil_query(db, sql, nparams, values, NULL, NULL, PGRES_COMMAND_OK, context, err, errlen);
    PQclear(res);
    return res != NULL;
}

char *pgutil_int64_array(const int64_t *ids, size_t n)
{
    size_t cap = 2 + n * 21 + 1;
    char *buf = malloc(cap);
    size_t o = 0;

    if (buf == NULL)
        return NULL;
    buf[o++] = '{';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + o, cap - o, "%s%" PRId64, i > 0 ? "," : "", ids[i]);
        o += (size_t)w;
    }
    buf[o++] = '}';
    buf[o] = '\0';
    return buf;
}

int64_t pgutil_get_ms(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return (int64_t)strtod(PQgetvalue(res, row, col), NULL);
}

char *pgutil_get_str(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return strdup(PQgetvalue(res, row, col));
}
