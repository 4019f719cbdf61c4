/*
 * alert_store: alert_sent SQL. See alert_store.h.
 */
#include "store/alert_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/i64.h"
#include "store/pgutil.h"

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
/* One round trip: the CTE's INSERT is invisible to the outer SELECT of the
 * same statement, so the UNION returns the new row or the existing one. */
static const char record_sql[] =
    "WITH ins AS ("
    " INSERT INTO alert_sent (dedup_key, kind, request_id, gateway, reason, state, event_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7::bigint / 1000.0))"
    " ON CONFLICT (dedup_key) DO NOTHING RETURNING state)"
    " SELECT state, true FROM ins"
    " UNION ALL SELECT state, false FROM alert_sent WHERE dedup_key = $1"
    " AND NOT EXISTS (SELECT 1 FROM ins)";

static const char sent_sql[] =
    "UPDATE alert_sent SET state = 'SENT', sent_at = now(),"
    " attempts = attempts + 1 WHERE dedup_key = $1";

static const char failed_sql[] =
    "UPDATE alert_sent SET attempts = attempts + 1, last_error = $2,"
    " state = CASE WHEN $3::boolean THEN 'FAILED_PERMANENT' ELSE state END WHERE dedup_key = $1";

static const char recent_sql[] =
    "SELECT extract(epoch FROM first_seen_at) * 1000 FROM alert_sent"
    " WHERE first_seen_at > now() - $1::bigint * interval '1 millisecond'"
    " ORDER BY first_seen_at";

static const char pending_sql[] =
    "SELECT dedup_key, request_id, gateway, reason, extract(epoch FROM event_at) * 1000"
    " FROM alert_sent WHERE state = 'DIGESTED' AND sent_at IS NULL"
    " ORDER BY first_seen_at, dedup_key LIMIT $1";

/* Keys travel as one JSON array parameter: no SQL is built from strings and
 * no array-literal quoting of keys that came from events. */
static const char digest_done_sql[] =
    "UPDATE alert_sent SET attempts = attempts + 1,"
    " sent_at = CASE WHEN $2::boolean THEN now() ELSE sent_at END,"
    " last_error = CASE WHEN $2::boolean THEN last_error ELSE $4 END,"
    " state = CASE WHEN $3::boolean THEN 'FAILED_PERMANENT' ELSE state END"
    " WHERE dedup_key IN (SELECT jsonb_array_elements_text($1::jsonb))";

static const char lock_sql[] = "SELECT pg_try_advisory_lock(hashtext('cancel-retry:alert-digest'))";
static const char unlock_sql[] = "SELECT pg_advisory_unlock(hashtext('cancel-retry:alert-digest'))";
/* clang-format on */

bool alert_store_record(struct db *db, const struct alert *a, bool digest, enum alert_row *row,
                        char *err, size_t errlen)
{
    char at[24];
    I64(at, a->event_at_ms);
    const char *params[] = {
        a->dedup_key,
        a->kind,
        a->view.request_id,
        a->view.gateway,
        a->view.reason,
        digest ? "DIGESTED" : "PENDING",
        a->event_at_ms >= 0 ? at : NULL,
    };
    PGresult *res = pgutil_query(db, record_sql, 7, params, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not record the alert", err, errlen);
    if (res == NULL)
        return false;
    bool ok = PQntuples(res) == 1;
    if (!ok) {
        snprintf(err, errlen, "could not record the alert: %d rows", PQntuples(res));
    } else if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        *row = ALERT_ROW_NEW;
    } else {
        *row = strcmp(PQgetvalue(res, 0, 0), "PENDING") == 0 ? ALERT_ROW_PENDING : ALERT_ROW_DONE;
    }
    PQclear(res);
    return ok;
}

bool alert_store_sent(struct db *db, const char *key, char *err, size_t errlen)
{
    const char *params[] = {key};
    return pgutil_command(db, sent_sql, 1, params, "could not mark the alert sent", err, errlen);
}

bool alert_store_failed(struct db *db, const char *key, bool permanent, const char *why, char *err,
                        size_t errlen)
{
    const char *params[] = {key, why, permanent ? "true" : "false"};
    return pgutil_command(db, failed_sql, 3, params, "could not record the alert's failure", err,
                          errlen);
}

bool alert_store_recent(struct db *db, int64_t window_ms, int64_t **times, size_t *n, char *err,
                        size_t errlen)
{
    char w[24];
    I64(w, window_ms);
    const char *params[] = {w};
    *times = NULL;
    *n = 0;
    PGresult *res = pgutil_query(db, recent_sql, 1, params, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not read recent alerts", err, errlen);
    if (res == NULL)
        return false;
    int rows = PQntuples(res);
    if (rows > 0) {
        *times = calloc((size_t)rows, sizeof(**times));
        if (*times == NULL) {
            PQclear(res);
            snprintf(err, errlen, "could not read recent alerts: out of memory");
            return false;
        }
    }
    for (int i = 0; i < rows; i++)
        (*times)[i] = pgutil_get_ms(res, i, 0);
    *n = (size_t)rows;
    PQclear(res);
    return true;
}

bool alert_store_digest_pending(struct db *db, size_t limit, struct alert_digest_row **rows,
                                size_t *n, char *err, size_t errlen)
{
    char l[24];
    snprintf(l, sizeof(l), "%zu", limit);
    const char *params[] = {l};
    *rows = NULL;
    *n = 0;
    PGresult *res = pgutil_query(db, pending_sql, 1, params, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not read the alerts waiting for a digest", err, errlen);
    if (res == NULL)
        return false;
    int count = PQntuples(res);
    if (count > 0) {
        *rows = calloc((size_t)count, sizeof(**rows));
        if (*rows == NULL) {
            PQclear(res);
            snprintf(err, errlen, "could not read the digest alerts: out of memory");
            return false;
        }
    }
    for (int i = 0; i < count; i++) {
        struct alert_digest_row *r = &(*rows)[i];
        r->key = pgutil_get_str(res, i, 0);
        r->request_id = pgutil_get_str(res, i, 1);
        r->gateway = pgutil_get_str(res, i, 2);
        r->reason = pgutil_get_str(res, i, 3);
        r->event_at_ms = pgutil_get_ms(res, i, 4);
    }
    *n = (size_t)count;
    PQclear(res);
    return true;
}

void alert_store_rows_free(struct alert_digest_row *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++) {
        free(rows[i].key);
        free(rows[i].request_id);
        free(rows[i].gateway);
        free(rows[i].reason);
    }
    free(rows);
}

bool alert_store_digest_done(struct db *db, char *const *keys, size_t n, bool sent, bool permanent,
                             const char *why, char *err, size_t errlen)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, json_string(keys[i]));
    char *text = arr != NULL ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (text == NULL) {
        snprintf(err, errlen, "could not record the digest: out of memory");
        return false;
    }
    const char *params[] = {text, sent ? "true" : "false", permanent ? "true" : "false", why};
    bool ok =
        pgutil_command(db, digest_done_sql, 4, params, "could not record the digest", err, errlen);
    free(text);
    return ok;
}

bool alert_store_digest_try_lock(struct db *db, bool *got, char *err, size_t errlen)
{
    PGresult *res = pgutil_query(db, lock_sql, 0, NULL, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not take the digest lock", err, errlen);
    if (res == NULL)
        return false;
    *got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return true;
}

void alert_store_digest_unlock(struct db *db)
{
    char err[256];
    PGresult *res = pgutil_query(db, unlock_sql, 0, NULL, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not release the digest lock", err, sizeof(err));
    PQclear(res);
}
