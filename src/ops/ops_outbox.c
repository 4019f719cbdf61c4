/*
 * ops_outbox: see ops_outbox.h.
 */
#include "ops/ops_outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/i64.h"
#include "ops/ops_report.h"
#include "store/pgutil.h"

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define PARKED_COLUMNS(t)                                                                          \
    t "id, " t "topic, " t "event_type AS \"eventType\", " t "request_id AS \"requestId\","        \
    " " t "msg_key AS key, octet_length(" t "value) AS bytes,"                                     \
    " " t "publish_attempts AS \"publishAttempts\", " TS(t "parked_at") " AS \"parkedAt\","        \
    " " t "park_reason AS \"parkReason\", " TS(t "created_at") " AS \"createdAt\""

static const char sql_list[] =
    "SELECT " PARKED_COLUMNS("") " FROM outbox WHERE parked_at IS NOT NULL"
    " ORDER BY parked_at, id LIMIT $1";

static const char sql_candidates[] =
    "SELECT " PARKED_COLUMNS("") " FROM outbox"
    " WHERE parked_at IS NOT NULL AND ($1::bigint = 0 OR id = $1::bigint) ORDER BY id";

/* The old parked_at and reason go into the audit; the rows are due at once.
 * FOR UPDATE: a second operator running the same requeue waits and then
 * finds nothing left to do. */
static const char sql_requeue[] =
    "WITH old AS (SELECT * FROM outbox"
    "              WHERE parked_at IS NOT NULL AND ($1::bigint = 0 OR id = $1::bigint)"
    "              ORDER BY id FOR UPDATE),"
    " upd AS (UPDATE outbox o SET parked_at = NULL, park_reason = NULL, available_at = now()"
    "           FROM old WHERE o.id = old.id RETURNING o.id),"
    " audit AS (INSERT INTO outbox_requeue (outbox_id, topic, request_id, event_type,"
    "                                       parked_at, park_reason, operator, note)"
    "           SELECT id, topic, request_id, event_type, parked_at, park_reason, $2, $3"
    "             FROM old)"
    " SELECT " PARKED_COLUMNS("old.") " FROM old ORDER BY old.id";

/* Wake the active relay now rather than at its next poll. */
static const char sql_notify[] = "SELECT pg_notify('cancel_retry_outbox', '')";

static const char sql_state[] =
    "SELECT CASE WHEN published_at IS NOT NULL THEN 'published'"
    "            WHEN parked_at IS NOT NULL THEN 'parked' ELSE 'pending' END"
    " FROM outbox WHERE id = $1::bigint";
/* clang-format on */

bool ops_outbox_list_parked(struct db *db, int limit, json_t **out, char *err, size_t errlen)
{
    char limit_text[16];
    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    const char *values[1] = {limit_text};
    *out =
        ops_report_query(db, sql_list, 1, values, "could not list parked outbox rows", err, errlen);
    return *out != NULL;
}

bool ops_outbox_requeue(struct db *db, int64_t id, const char *operator_name, const char *note,
                        bool dry_run, json_t **out, const char **state_out, char *err,
                        size_t errlen)
{
    char id_text[24];
    json_t *rows = NULL;

    *out = NULL;
    *state_out = "parked";
    I64(id_text, id);
    if (!db_begin(db, err, errlen))
        return false;
    if (dry_run) {
        const char *values[1] = {id_text};
        rows = ops_report_query(db, sql_candidates, 1, values, "could not read parked outbox rows",
                                err, errlen);
    } else {
        const char *values[3] = {id_text, operator_name, note};
        rows = ops_report_query(db, sql_requeue, 3, values, "could not requeue parked outbox rows",
                                err, errlen);
        if (rows != NULL && json_array_size(rows) > 0) {
            PGresult *res = pgutil_query(db, sql_notify, 0, NULL, NULL, NULL, PGRES_TUPLES_OK,
                                         "could not wake the relay", err, errlen);
            if (res == NULL) {
                json_decref(rows);
                rows = NULL;
            }
            PQclear(res);
        }
    }
    if (rows != NULL && json_array_size(rows) == 0 && id > 0) {
        const char *values[1] = {id_text};
        PGresult *res = pgutil_query(db, sql_state, 1, values, NULL, NULL, PGRES_TUPLES_OK,
                                     "could not look up the outbox row", err, errlen);
        if (res == NULL) {
            json_decref(rows);
            rows = NULL;
        } else {
            /* Static strings: the result is cleared below. */
            const char *st = PQntuples(res) == 0 ? "missing" : PQgetvalue(res, 0, 0);
            *state_out = strcmp(st, "published") == 0 ? "published"
                         : strcmp(st, "pending") == 0 ? "pending"
                         : strcmp(st, "parked") == 0  ? "parked"
                                                      : "missing";
            PQclear(res);
        }
    }
    if (rows == NULL) {
        db_rollback(db);
        return false;
    }
    if (dry_run) {
        db_rollback(db);
    } else if (!db_commit(db, err, errlen)) {
        json_decref(rows);
        return false;
    }
    *out = rows;
    return true;
}
