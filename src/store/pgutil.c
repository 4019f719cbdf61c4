/*
 * pgutil: see pgutil.h.
 */
#include "store/pgutil.h"

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

bool pgutil_send(struct db *db, const char *sql, int nparams, const char *const *values,
                 const char *context, char *err, size_t errlen)
{
    char reason[512];

    if (db_send_params(db, sql, nparams, values, NULL, NULL, 0, reason, sizeof(reason)))
        return true;
    snprintf(err, errlen, "%s: %s", context, reason);
    return false;
}

PGresult *pgutil_take(struct db *db, ExecStatusType expected, const char *context, char *err,
                      size_t errlen)
{
    char reason[512];
    PGresult *res = NULL;

    if (db_take_result(db, expected, &res, reason, sizeof(reason)))
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

/* array_recv's layout: ndim, has-nulls flag, element type, then per
 * dimension its size and lower bound, then each element as a length (-1 for
 * NULL) and its bytes; every integer 4 bytes in network order. */
#define ARRAY_HEADER_LEN 20
#define ARRAY_DIM_OFFSET 12

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static bool array_reserve(struct pgutil_array *a, size_t more)
{
    if (a->failed)
        return false;
    /* A parameter's length is an int. */
    if (more > (size_t)INT32_MAX - a->len) {
        a->failed = true;
        return false;
    }
    if (a->len + more <= a->cap)
        return true;
    size_t cap = a->cap > 0 ? a->cap : 256;
    while (cap < a->len + more)
        cap *= 2;
    unsigned char *buf = realloc(a->buf, cap);
    if (buf == NULL) {
        a->failed = true;
        return false;
    }
    a->buf = buf;
    a->cap = cap;
    return true;
}

void pgutil_array_init(struct pgutil_array *a, uint32_t elem_oid)
{
    memset(a, 0, sizeof(*a));
    if (!array_reserve(a, ARRAY_HEADER_LEN))
        return;
    put_u32(a->buf, 1);     /* one dimension */
    put_u32(a->buf + 4, 0); /* array_recv works the nulls out itself */
    put_u32(a->buf + 8, elem_oid);
    put_u32(a->buf + ARRAY_DIM_OFFSET, 0);
    put_u32(a->buf + 16, 1); /* lower bound */
    a->len = ARRAY_HEADER_LEN;
}

void pgutil_array_add(struct pgutil_array *a, const void *bytes, size_t len)
{
    if (bytes == NULL)
        len = 0;
    if (!array_reserve(a, 4 + len))
        return;
    put_u32(a->buf + a->len, bytes != NULL ? (uint32_t)len : UINT32_MAX);
    if (len > 0)
        memcpy(a->buf + a->len + 4, bytes, len);
    a->len += 4 + len;
    a->n++;
}

const char *pgutil_array_data(struct pgutil_array *a, int *len)
{
    if (a->failed)
        return NULL;
    put_u32(a->buf + ARRAY_DIM_OFFSET, (uint32_t)a->n);
    *len = (int)a->len;
    return (const char *)a->buf;
}

void pgutil_array_free(struct pgutil_array *a)
{
    free(a->buf);
    memset(a, 0, sizeof(*a));
}

int64_t pgutil_get_ms(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return (int64_t)strtod(PQgetvalue(res, row, col), NULL);
}

int64_t pgutil_get_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

char *pgutil_get_str(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return strdup(PQgetvalue(res, row, col));
}
