/*
 * db_error: what a libpq failure means for the caller, from its SQLSTATE
 * (PostgreSQL's appendix A) and the connection's state. Pure logic, apart
 * from db.c's connection handling. See db.h.
 */
#include <string.h>

#include "store/db.h"

/* The SQLSTATE classes (the first two characters) whose errors are about
 * the data of the statement rather than the database: PostgreSQL's appendix
 * A. 22 data exception (22008 datetime field overflow, 22003 numeric value
 * out of range, 22021 bad encoding, 22P02 invalid text representation, ...),
 * 23 integrity constraint violation, 54 program limit exceeded (54000 index
 * row size). */
static const char *const data_classes[] = {"22", "23", "54"};

/* Classes where the server, not the statement, is at fault; the session may
 * still be there. 53 insufficient resources (disk full, out of memory, too
 * many connections), 57 operator intervention (57014 a statement timeout or
 * pg_cancel_backend), 58 system error (I/O), XX internal error. */
static const char *const server_classes[] = {"53", "57", "58", "XX"};

static bool in_classes(const char *sqlstate, const char *const *classes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strncmp(sqlstate, classes[i], 2) == 0)
            return true;
    }
    return false;
}

enum db_error_class db_classify_sqlstate(const char *sqlstate)
{
    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return DB_ERR_OTHER;
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
        return DB_ERR_RETRY_TX;
    /* Class 08: connection exception. 57P01 admin_shutdown, 57P02
     * crash_shutdown, 57P03 cannot_connect_now: the server is going away or
     * not there yet, the session is gone either way. */
    if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
        strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0)
        return DB_ERR_CONNECTION;
    if (in_classes(sqlstate, server_classes, sizeof(server_classes) / sizeof(server_classes[0])))
        return DB_ERR_SERVER;
    if (strcmp(sqlstate, "23505") == 0)
        return DB_ERR_DUPLICATE;
    if (in_classes(sqlstate, data_classes, sizeof(data_classes) / sizeof(data_classes[0])))
        return DB_ERR_DATA;
    return DB_ERR_OTHER;
}

bool db_error_blames_message(enum db_error_class c)
{
    return c == DB_ERR_DATA || c == DB_ERR_DUPLICATE;
}

enum db_error_class db_classify(PGconn *conn, const PGresult *res)
{
    if (res != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY ||
            st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_SINGLE_TUPLE)
            return DB_ERR_NONE;
    }
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
        return DB_ERR_CONNECTION;
    if (res == NULL)
        return DB_ERR_OTHER;
    return db_classify_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
}

const char *db_error_class_name(enum db_error_class c)
{
    switch (c) {
    case DB_ERR_NONE:
        return "none";
    case DB_ERR_RETRY_TX:
        return "retry_tx";
    case DB_ERR_CONNECTION:
        return "connection";
    case DB_ERR_DUPLICATE:
        return "duplicate";
    case DB_ERR_SERVER:
        return "server";
    case DB_ERR_DATA:
        return "data";
    case DB_ERR_OTHER:
        break;
    }
    return "other";
}
