/*
 * reconcile_store: see reconcile_store.h.
 */
#include "store/reconcile_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/i64.h"
#include "store/pgutil.h"

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
static const char sql_run_begin[] =
    "INSERT INTO reconcile_run (trigger, run_by, window_start, window_ms, gateway, request_id, fix)"
    " VALUES ($1, $2, now() - $3::bigint * interval '1 ms', $3::bigint, $4, $5, $6::boolean)"
    " RETURNING id, (extract(epoch FROM window_start) * 1000)::bigint";

static const char sql_run_finish[] =
    "UPDATE reconcile_run SET finished_at = now(), checked = $2::integer,"
    "       mismatches = $3::integer, new_mismatches = $4::integer, pending = $5::integer,"
    "       could_not_check = $6::integer, fixed = $7::integer, error = $8"
    " WHERE id = $1::bigint";

/* Computed by the database, so that the relay's clock does not matter. */
static const char sql_due_in[] =
    "SELECT greatest(0, coalesce((extract(epoch FROM max(started_at)"
    "         + $1::bigint * interval '1 ms' - now()) * 1000)::bigint, 0))"
    "  FROM reconcile_run WHERE trigger = 'scheduled'";

/* The statuses of reconcile_status_checked(). A request given by id is
 * checked whenever it finished: an operator asking about it from an alert
 * should not have to guess a window. */
static const char sql_candidates[] =
    "SELECT request_id, gateway, payment_key, amount, currency, partial, status"
    "  FROM cancel_request"
    " WHERE status IN ('SUCCEEDED', 'ALREADY_REFUNDED', 'FAILED', 'EXHAUSTED')"
    "   AND ($3::text IS NOT NULL OR finished_at >= to_timestamp($1::bigint / 1000.0))"
    "   AND ($2::text IS NULL OR gateway = $2)"
    "   AND ($3::text IS NULL OR request_id = $3)"
    "   AND request_id > $4"
    " ORDER BY request_id LIMIT $5::integer";

static const char sql_insert_mismatch[] =
    "INSERT INTO reconcile_mismatch (request_id, gateway, kind, our_status, their_finding,"
    "   amount, currency, their_payment_amount, their_refunded_amount, their_currency, detail,"
    "   run_id)"
    " VALUES ($1, $2, $3, $4, $5, $6::bigint, $7, $8::bigint, $9::bigint, $10, $11, $12::bigint)"
    " ON CONFLICT (request_id, kind) WHERE fixed_at IS NULL DO NOTHING"
    " RETURNING id";

static const char sql_touch_mismatch[] =
    "UPDATE reconcile_mismatch SET last_seen_at = now(), our_status = $3, their_finding = $4,"
    "       their_payment_amount = $5::bigint, their_refunded_amount = $6::bigint,"
    "       their_currency = $7, detail = $8"
    " WHERE request_id = $1 AND kind = $2 AND fixed_at IS NULL"
    " RETURNING id";

static const char sql_close_mismatch[] =
    "UPDATE reconcile_mismatch SET fixed_at = now(), fixed_by = $2, fix_note = $3"
    " WHERE id = $1::bigint AND fixed_at IS NULL";

static const char sql_close_agreed[] =
    "UPDATE reconcile_mismatch m SET fixed_at = now(), fixed_by = $3, fix_note = $4"
    "  FROM cancel_request r"
    " WHERE m.request_id = $1 AND m.fixed_at IS NULL"
    "   AND r.request_id = m.request_id AND r.status = $2";

static const char sql_close_resolved[] =
    "UPDATE reconcile_mismatch m SET fixed_at = now(),"
    "       fixed_by = coalesce(r.resolved_by, 'unknown'),"
    "       fix_note = 'resolved by hand' || coalesce(': ' || r.resolved_note, '')"
    "  FROM cancel_request r"
    " WHERE m.fixed_at IS NULL AND r.request_id = m.request_id"
    "   AND r.status = 'MANUALLY_RESOLVED'";

/* The status read under the row lock is the fence. Clearing inquire_first
 * and final_check keeps the row consistent with a final status. */
static const char sql_fix[] =
    "UPDATE cancel_request"
    "   SET status = $3,"
    "       last_error_code = coalesce($4, last_error_code),"
    "       last_error_message = CASE WHEN $4::text IS NULL THEN last_error_message ELSE $5 END,"
    "       last_http_status = CASE WHEN $4::text IS NULL THEN last_http_status END,"
    "       key_holds_error = $6::boolean, inquire_first = false, final_check = NULL,"
    "       found_by_inquiry = $7::boolean, finished_at = now(), updated_at = now()"
    " WHERE request_id = $1 AND status = $2";

static const char sql_action[] =
    "INSERT INTO operator_action (request_id, action, operator, note)"
    " VALUES ($1, '" RECONCILE_ACTION "', $2, $3)";
/* clang-format on */

bool reconcile_store_run_begin(struct db *db, const char *trigger, const char *run_by,
                               int64_t window_ms, const char *gateway, const char *request_id,
                               bool fix, int64_t *run_id, int64_t *window_start_ms, char *err,
                               size_t errlen)
{
    char win[24];
    const char *values[6] = {trigger, run_by,     I64(win, window_ms),
                             gateway, request_id, fix ? "true" : "false"};
    PGresult *res = pgutil_query(db, sql_run_begin, 6, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not record the reconciliation run", err, errlen);
    if (res == NULL)
        return false;
    *run_id = pgutil_get_i64(res, 0, 0);
    *window_start_ms = pgutil_get_i64(res, 0, 1);
    PQclear(res);
    return true;
}

bool reconcile_store_run_finish(struct db *db, int64_t run_id, const struct reconcile_counts *c,
                                const char *error, char *err, size_t errlen)
{
    char id[24], checked[16], mism[16], fresh[16], pend[16], unchecked[16], fixed[16];
    const char *values[8] = {I64(id, run_id),          I64(checked, c->checked),
                             I64(mism, c->mismatches), I64(fresh, c->new_mismatches),
                             I64(pend, c->settling),   I64(unchecked, c->unchecked),
                             I64(fixed, c->fixed),     error};
    return pgutil_command(db, sql_run_finish, 8, values, "could not close the reconciliation run",
                          err, errlen);
}

bool reconcile_store_scheduled_due_in(struct db *db, int64_t interval_ms, int64_t *due_in_ms,
                                      char *err, size_t errlen)
{
    char iv[24];
    const char *values[1] = {I64(iv, interval_ms)};
    PGresult *res = pgutil_query(db, sql_due_in, 1, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not read the last reconciliation run", err, errlen);
    if (res == NULL)
        return false;
    *due_in_ms = pgutil_get_i64(res, 0, 0);
    PQclear(res);
    return true;
}

/* reconcile_mismatch_open_idx holds exactly the open rows. */
static const char sql_open_count[] =
    "SELECT count(*) FROM reconcile_mismatch WHERE fixed_at IS NULL";

bool reconcile_store_open_count(struct db *db, int64_t *open, char *err, size_t errlen)
{
    PGresult *res = pgutil_query(db, sql_open_count, 0, NULL, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not count the open mismatches", err, errlen);
    if (res == NULL)
        return false;
    *open = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return true;
}

static void copy(char *dst, size_t len, const PGresult *res, int row, int col)
{
    snprintf(dst, len, "%s", PQgetvalue(res, row, col));
}

bool reconcile_store_candidates(struct db *db, int64_t window_start_ms, const char *gateway,
                                const char *request_id, const char *after, int limit,
                                struct reconcile_candidate **out, size_t *n, char *err,
                                size_t errlen)
{
    char start[24], lim[16];
    const char *values[5] = {I64(start, window_start_ms), gateway, request_id, after,
                             I64(lim, limit)};

    *out = NULL;
    *n = 0;
    PGresult *res = pgutil_query(db, sql_candidates, 5, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not read the finished requests", err, errlen);
    if (res == NULL)
        return false;
    int rows = PQntuples(res);
    if (rows > 0) {
        *out = calloc((size_t)rows, sizeof(**out));
        if (*out == NULL) {
            PQclear(res);
            snprintf(err, errlen, "could not read the finished requests: out of memory");
            return false;
        }
    }
    for (int i = 0; i < rows; i++) {
        struct reconcile_candidate *c = &(*out)[i];
        copy(c->request_id, sizeof(c->request_id), res, i, 0);
        copy(c->gateway, sizeof(c->gateway), res, i, 1);
        copy(c->payment_key, sizeof(c->payment_key), res, i, 2);
        c->amount = pgutil_get_i64(res, i, 3);
        copy(c->currency, sizeof(c->currency), res, i, 4);
        c->partial = PQgetvalue(res, i, 5)[0] == 't';
        copy(c->status, sizeof(c->status), res, i, 6);
    }
    *n = (size_t)rows;
    PQclear(res);
    return true;
}

bool reconcile_store_open_mismatch(struct db *db, const struct reconcile_mismatch_rec *m,
                                   bool *inserted, int64_t *id, char *err, size_t errlen)
{
    char amount[24], pay[24], ref[24], run[24];
    const char *their_pay = m->their_payment_amount >= 0 ? I64(pay, m->their_payment_amount) : NULL;
    const char *their_ref =
        m->their_refunded_amount >= 0 ? I64(ref, m->their_refunded_amount) : NULL;
    const char *their_cur =
        m->their_currency != NULL && m->their_currency[0] != '\0' ? m->their_currency : NULL;
    const char *values[12] = {m->request_id, m->gateway,       m->kind,
                              m->our_status, m->their_finding, I64(amount, m->amount),
                              m->currency,   their_pay,        their_ref,
                              their_cur,     m->detail,        I64(run, m->run_id)};

    PGresult *res = pgutil_query(db, sql_insert_mismatch, 12, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not record the mismatch", err, errlen);
    if (res == NULL)
        return false;
    *inserted = PQntuples(res) == 1;
    if (*inserted)
        *id = pgutil_get_i64(res, 0, 0);
    PQclear(res);
    if (*inserted)
        return true;

    const char *touch[8] = {m->request_id, m->kind,   m->our_status, m->their_finding,
                            their_pay,     their_ref, their_cur,     m->detail};
    res = pgutil_query(db, sql_touch_mismatch, 8, touch, NULL, NULL, PGRES_TUPLES_OK,
                       "could not update the open mismatch", err, errlen);
    if (res == NULL)
        return false;
    if (PQntuples(res) != 1) {
        /* The insert saw an open row that is gone now: only a concurrent
         * close can do that, under the request lock the caller holds. */
        PQclear(res);
        snprintf(err, errlen, "could not record the mismatch: its open row vanished");
        return false;
    }
    *id = pgutil_get_i64(res, 0, 0);
    PQclear(res);
    return true;
}

bool reconcile_store_close_mismatch(struct db *db, int64_t id, const char *by, const char *note,
                                    char *err, size_t errlen)
{
    char ids[24];
    const char *values[3] = {I64(ids, id), by, note};
    return pgutil_command(db, sql_close_mismatch, 3, values, "could not close the mismatch", err,
                          errlen);
}

static bool close_count(struct db *db, const char *sql, int n, const char *const *values,
                        const char *context, int *closed, char *err, size_t errlen)
{
    PGresult *res =
        pgutil_query(db, sql, n, values, NULL, NULL, PGRES_COMMAND_OK, context, err, errlen);
    if (res == NULL)
        return false;
    *closed = atoi(PQcmdTuples(res));
    PQclear(res);
    return true;
}

bool reconcile_store_close_agreed(struct db *db, const char *request_id, const char *our_status,
                                  const char *by, const char *note, int *closed, char *err,
                                  size_t errlen)
{
    const char *values[4] = {request_id, our_status, by, note};
    return close_count(db, sql_close_agreed, 4, values, "could not close agreed mismatches", closed,
                       err, errlen);
}

bool reconcile_store_close_resolved(struct db *db, int *closed, char *err, size_t errlen)
{
    return close_count(db, sql_close_resolved, 0, NULL,
                       "could not close the mismatches of resolved requests", closed, err, errlen);
}

bool reconcile_store_fix_request(struct db *db, const char *request_id, const char *seen,
                                 const char *new_status, const char *error_code,
                                 const char *error_message, bool key_holds_error,
                                 bool found_by_inquiry, bool *applied, char *err, size_t errlen)
{
    const char *values[7] = {request_id,
                             seen,
                             new_status,
                             error_code,
                             error_message,
                             key_holds_error ? "true" : "false",
                             found_by_inquiry ? "true" : "false"};
    PGresult *res = pgutil_query(db, sql_fix, 7, values, NULL, NULL, PGRES_COMMAND_OK,
                                 "could not correct the cancel request", err, errlen);
    if (res == NULL)
        return false;
    *applied = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return true;
}

bool reconcile_store_action(struct db *db, const char *request_id, const char *operator_name,
                            const char *note, char *err, size_t errlen)
{
    const char *values[3] = {request_id, operator_name, note};
    return pgutil_command(db, sql_action, 3, values, "could not record the operator action", err,
                          errlen);
}
