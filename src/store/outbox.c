/*
 * outbox: see outbox.h.
 */
#include "store/outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/i64.h"
#include "event/cancel_event.h"
#include "event/cloudevent.h"
#include "store/pgutil.h"

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
/* One row or a batch alike: each parameter is a column (outbox_insert_many),
 * the rows keep their order. */
static const char sql_insert[] =
    "INSERT INTO outbox (topic, msg_key, value, headers, event_type, event_id, request_id,"
    "                    available_at)"
    " SELECT u.topic, u.msg_key, u.value, u.headers::jsonb, u.event_type, u.event_id,"
    "        u.request_id, CASE WHEN u.available_ms::bigint = 0 THEN now()"
    "                           ELSE to_timestamp(u.available_ms::bigint / 1000.0) END"
    "   FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[],"
    "               $7::text[], $8::text[])"
    "        WITH ORDINALITY AS u(topic, msg_key, value, headers, event_type, event_id,"
    "                             request_id, available_ms, ord)"
    "  ORDER BY u.ord";

/* Parked rows wait for an operator (cancelctl outbox requeue), not for
 * the relay. The WHERE clause is outbox_unpublished_idx's (0006), in its
 * order: the scan starts at the first unpublished id ($2: after that one),
 * never among published rows. */
static const char sql_fetch_due[] =
    "SELECT id, topic, msg_key, value, headers::text FROM outbox"
    " WHERE published_at IS NULL AND parked_at IS NULL AND available_at <= now()"
    "   AND id > $2::bigint"
    " ORDER BY id LIMIT $1";

/* The relay's writes carry its fencing token ($1..$3, relay_lease.h): the
 * lease row is share-locked for the statement, so a standby's take waits
 * for it to commit and then sees its effect, and a relay whose epoch is no
 * longer current changes nothing. The first column says whether the lease
 * was still ours. */
#define LEASE_CTE                                                                                  \
    "WITH lease AS (SELECT 1 FROM relay_leader"                                                    \
    "                WHERE name = $1 AND holder = $2 AND epoch = $3::bigint FOR SHARE), "

static const char sql_mark_published[] =
    LEASE_CTE
    "done AS (UPDATE outbox SET published_at = now(), published_epoch = $3::bigint,"
    "                          publish_attempts = publish_attempts + 1, last_error = NULL,"
    "                          parked_at = NULL, park_reason = NULL"
    "          WHERE id = ANY($4::bigint[]) AND published_at IS NULL"
    "            AND EXISTS (SELECT 1 FROM lease) RETURNING 1)"
    " SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM done)";

static const char sql_mark_failed[] =
    LEASE_CTE
    "done AS (UPDATE outbox SET publish_attempts = publish_attempts + 1, last_error = $5"
    "          WHERE id = $4::bigint AND published_at IS NULL"
    "            AND EXISTS (SELECT 1 FROM lease) RETURNING 1)"
    " SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM done)";

static const char sql_park[] =
    LEASE_CTE
    "done AS (UPDATE outbox SET parked_at = now(), park_reason = $5, last_error = $5,"
    "                          publish_attempts = publish_attempts + 1"
    "          WHERE id = $4::bigint AND published_at IS NULL AND parked_at IS NULL"
    "            AND EXISTS (SELECT 1 FROM lease) RETURNING 1)"
    " SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM done)";

static const char sql_next_due[] =
    "SELECT GREATEST(0, floor(extract(epoch FROM (min(available_at) - now())) * 1000))::bigint"
    " FROM outbox WHERE published_at IS NULL AND parked_at IS NULL";

/* The due backlog for monitoring: rows due and not yet published, and how
 * long the oldest of them has been due. The count walks the due rows of
 * outbox_pending_idx; the relay asks every reconcile_interval, not per
 * batch. */
static const char sql_backlog[] =
    "SELECT count(*), coalesce(floor(extract(epoch FROM (now() - min(available_at))) * 1000),"
    " 0)::bigint FROM outbox"
    " WHERE published_at IS NULL AND parked_at IS NULL AND available_at <= now()";

/* Deleting in bounded chunks keeps each transaction short on a big backlog. */
static const char sql_purge[] =
    "DELETE FROM outbox WHERE id IN ("
    "  SELECT id FROM outbox WHERE published_at < now() - $1::bigint * interval '1 ms'"
    "  ORDER BY published_at LIMIT $2)";
/* clang-format on */

#define OUTBOX_INSERT_COLUMNS 8

bool outbox_insert(struct db *db, const struct outbox_msg *msg, char *err, size_t errlen)
{
    return outbox_insert_many(db, msg, 1, err, errlen);
}

bool outbox_insert_many(struct db *db, const struct outbox_msg *msgs, size_t n, char *err,
                        size_t errlen)
{
    struct pgutil_array cols[OUTBOX_INSERT_COLUMNS];
    const char *values[OUTBOX_INSERT_COLUMNS];
    int lengths[OUTBOX_INSERT_COLUMNS], formats[OUTBOX_INSERT_COLUMNS];
    bool ok = false;

    if (n == 0)
        return true;
    for (int c = 0; c < OUTBOX_INSERT_COLUMNS; c++) {
        pgutil_array_init(&cols[c], c == 2 ? PGUTIL_OID_BYTEA : PGUTIL_OID_TEXT);
        formats[c] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct outbox_msg *msg = &msgs[i];
        char available[32];
        char *headers =
            msg->headers != NULL ? json_dumps(msg->headers, JSON_COMPACT) : strdup("[]");
        if (headers == NULL) {
            snprintf(err, errlen, "could not encode outbox headers");
            goto out;
        }
        I64(available, msg->available_at_ms);
        const char *row[OUTBOX_INSERT_COLUMNS] = {
            msg->topic,      msg->key,      (const char *)msg->value, headers,
            msg->event_type, msg->event_id, msg->request_id,          available};
        for (int c = 0; c < OUTBOX_INSERT_COLUMNS; c++)
            pgutil_array_add(&cols[c], row[c],
                             c == 2           ? msg->value_len
                             : row[c] != NULL ? strlen(row[c])
                                              : 0);
        free(headers);
    }
    for (int c = 0; c < OUTBOX_INSERT_COLUMNS; c++) {
        values[c] = pgutil_array_data(&cols[c], &lengths[c]);
        if (values[c] == NULL) {
            snprintf(err, errlen, "could not insert into the outbox: out of memory");
            goto out;
        }
    }
    PGresult *res = pgutil_query(db, sql_insert, OUTBOX_INSERT_COLUMNS, values, lengths, formats,
                                 PGRES_COMMAND_OK, "could not insert into the outbox", err, errlen);
    ok = res != NULL;
    PQclear(res);
out:
    for (int c = 0; c < OUTBOX_INSERT_COLUMNS; c++)
        pgutil_array_free(&cols[c]);
    return ok;
}

void outbox_rows_free(struct outbox_row *rows, size_t n)
{
    if (rows == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rows[i].topic);
        free(rows[i].key);
        PQfreemem(rows[i].value);
        json_decref(rows[i].headers);
    }
    free(rows);
}

bool outbox_fetch_due(struct db *db, int limit, struct outbox_row **rows_out, size_t *n_out,
                      char *err, size_t errlen)
{
    return outbox_fetch_due_after(db, 0, limit, rows_out, n_out, err, errlen);
}

bool outbox_fetch_due_after(struct db *db, int64_t after_id, int limit,
                            struct outbox_row **rows_out, size_t *n_out, char *err, size_t errlen)
{
    *rows_out = NULL;
    *n_out = 0;
    return outbox_fetch_due_send(db, after_id, limit, err, errlen) &&
           outbox_fetch_due_take(db, rows_out, n_out, err, errlen);
}

bool outbox_fetch_due_send(struct db *db, int64_t after_id, int limit, char *err, size_t errlen)
{
    char limit_text[16], after_text[24];

    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    I64(after_text, after_id);
    const char *values[2] = {limit_text, after_text};
    return pgutil_send(db, sql_fetch_due, 2, values, "could not read due outbox rows", err, errlen);
}

bool outbox_fetch_due_take(struct db *db, struct outbox_row **rows_out, size_t *n_out, char *err,
                           size_t errlen)
{
    struct outbox_row *rows = NULL;
    size_t n = 0;
    bool ok = false;

    *rows_out = NULL;
    *n_out = 0;
    PGresult *res = pgutil_take(db, PGRES_TUPLES_OK, "could not read due outbox rows", err, errlen);
    if (res == NULL)
        goto out;
    n = (size_t)PQntuples(res);
    if (n == 0) {
        ok = true;
        goto out;
    }
    rows = calloc(n, sizeof(*rows));
    if (rows == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        json_error_t jerr;
        rows[i].id = pgutil_get_i64(res, r, 0);
        rows[i].topic = strdup(PQgetvalue(res, r, 1));
        rows[i].key = PQgetisnull(res, r, 2) ? NULL : strdup(PQgetvalue(res, r, 2));
        rows[i].value =
            PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, 3), &rows[i].value_len);
        rows[i].headers = json_loads(PQgetvalue(res, r, 4), 0, &jerr);
        /* Headers jansson cannot read (a \u0000 in a string) are this row's
         * problem: the relay parks it. Failing the whole fetch would stop
         * every row behind it. */
        if (rows[i].headers == NULL)
            snprintf(rows[i].headers_error, sizeof(rows[i].headers_error), "%s", jerr.text);
        if (rows[i].topic == NULL || rows[i].value == NULL) {
            snprintf(err, errlen, "could not decode outbox row %" PRId64, rows[i].id);
            outbox_rows_free(rows, n);
            rows = NULL;
            goto out;
        }
    }
    *rows_out = rows;
    *n_out = n;
    ok = true;
out:
    PQclear(res);
    return ok;
}

/* Run one of the fenced statements: params $1..$3 the fence, then extra.
 * *held_out: the lease was still ours; *done_out: rows changed. */
static bool fenced_send(struct db *db, const char *sql, const struct outbox_fence *fence,
                        int nextra, const char *const *extra, const char *context, char *err,
                        size_t errlen)
{
    char epoch[24];
    const char *values[5];

    I64(epoch, fence->epoch);
    values[0] = fence->lease_name;
    values[1] = fence->holder;
    values[2] = epoch;
    for (int i = 0; i < nextra; i++)
        values[3 + i] = extra[i];
    return pgutil_send(db, sql, 3 + nextra, values, context, err, errlen);
}

/* The result of the fenced statement sent last. */
static bool fenced_take(struct db *db, const char *context, bool *held_out, int64_t *done_out,
                        char *err, size_t errlen)
{
    PGresult *res = pgutil_take(db, PGRES_TUPLES_OK, context, err, errlen);
    if (res == NULL)
        return false;
    *held_out = pgutil_get_i64(res, 0, 0) > 0;
    if (done_out != NULL)
        *done_out = pgutil_get_i64(res, 0, 1);
    PQclear(res);
    return true;
}

static bool fenced(struct db *db, const char *sql, const struct outbox_fence *fence, int nextra,
                   const char *const *extra, const char *context, bool *held_out, int64_t *done_out,
                   char *err, size_t errlen)
{
    return fenced_send(db, sql, fence, nextra, extra, context, err, errlen) &&
           fenced_take(db, context, held_out, done_out, err, errlen);
}

bool outbox_mark_published(struct db *db, const struct outbox_fence *fence, const int64_t *ids,
                           size_t n, bool *held_out, char *err, size_t errlen)
{
    *held_out = true;
    if (n == 0)
        return true;
    return outbox_mark_published_send(db, fence, ids, n, err, errlen) &&
           outbox_mark_published_take(db, held_out, err, errlen);
}

bool outbox_mark_published_send(struct db *db, const struct outbox_fence *fence, const int64_t *ids,
                                size_t n, char *err, size_t errlen)
{
    char *array = pgutil_int64_array(ids, n);
    if (array == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    const char *extra[1] = {array};
    bool ok = fenced_send(db, sql_mark_published, fence, 1, extra,
                          "could not mark outbox rows published", err, errlen);
    free(array);
    return ok;
}

bool outbox_mark_published_take(struct db *db, bool *held_out, char *err, size_t errlen)
{
    *held_out = true;
    return fenced_take(db, "could not mark outbox rows published", held_out, NULL, err, errlen);
}

bool outbox_mark_failed(struct db *db, const struct outbox_fence *fence, int64_t id,
                        const char *error, bool *held_out, char *err, size_t errlen)
{
    char id_text[24];
    I64(id_text, id);
    const char *extra[2] = {id_text, error};
    return fenced(db, sql_mark_failed, fence, 2, extra, "could not record an outbox failure",
                  held_out, NULL, err, errlen);
}

bool outbox_park(struct db *db, const struct outbox_fence *fence, int64_t id, const char *reason,
                 bool *held_out, char *err, size_t errlen)
{
    char id_text[24];
    I64(id_text, id);
    const char *extra[2] = {id_text, reason};
    return fenced(db, sql_park, fence, 2, extra, "could not park an outbox row", held_out, NULL,
                  err, errlen);
}

bool outbox_next_due_in_ms(struct db *db, int64_t *ms_out, char *err, size_t errlen)
{
    PGresult *res = pgutil_query(db, sql_next_due, 0, NULL, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not read the next due time", err, errlen);
    bool ok = res != NULL;
    if (ok)
        *ms_out = PQgetisnull(res, 0, 0) ? -1 : pgutil_get_i64(res, 0, 0);
    PQclear(res);
    return ok;
}

bool outbox_backlog(struct db *db, int64_t *due_rows, int64_t *oldest_due_ms, char *err,
                    size_t errlen)
{
    PGresult *res = pgutil_query(db, sql_backlog, 0, NULL, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not read the outbox backlog", err, errlen);
    bool ok = res != NULL;
    if (ok) {
        *due_rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        *oldest_due_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return ok;
}

bool outbox_purge_published(struct db *db, int64_t retention_ms, int limit, int *deleted_out,
                            char *err, size_t errlen)
{
    char retention[24], limit_text[16];
    I64(retention, retention_ms);
    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    const char *values[2] = {retention, limit_text};
    PGresult *res = pgutil_query(db, sql_purge, 2, values, NULL, NULL, PGRES_COMMAND_OK,
                                 "could not purge published outbox rows", err, errlen);
    bool ok = res != NULL;
    if (ok)
        *deleted_out = atoi(PQcmdTuples(res));
    PQclear(res);
    return ok;
}

bool outbox_event_build(struct outbox_event *ev, const char *topic, const char *type,
                        const char *request_id, const char *correlation_id, const json_t *data,
                        int64_t available_at_ms, char *err, size_t errlen)
{
    memset(ev, 0, sizeof(*ev));
    /* The id is made here, not by cloudevent_build(), because the outbox
     * stores it: consumers dedup on it and operators look it up. */
    cloudevent_new_id(ev->id);
    if (!cloudevent_build_at(type, CANCEL_EVENT_SOURCE, request_id, correlation_id, (json_t *)data,
                             ev->id, wall_ms(), &ev->json, err, errlen))
        return false;
    ev->headers = json_pack("[[ss]]", "content-type", CLOUDEVENT_CONTENT_TYPE);
    if (ev->headers == NULL) {
        snprintf(err, errlen, "out of memory");
        outbox_event_clear(ev);
        return false;
    }
    ev->msg = (struct outbox_msg){
        .topic = topic,
        .key = request_id,
        .value = ev->json,
        .value_len = strlen(ev->json),
        .headers = ev->headers,
        .event_type = type,
        .event_id = ev->id,
        .request_id = request_id,
        .available_at_ms = available_at_ms,
    };
    return true;
}

void outbox_event_clear(struct outbox_event *ev)
{
    free(ev->json);
    json_decref(ev->headers);
    memset(ev, 0, sizeof(*ev));
}

bool outbox_insert_event(struct db *db, const char *topic, const char *type, const char *request_id,
                         const char *correlation_id, const json_t *data, int64_t available_at_ms,
                         char *err, size_t errlen)
{
    struct outbox_event ev;
    if (!outbox_event_build(&ev, topic, type, request_id, correlation_id, data, available_at_ms,
                            err, errlen))
        return false;
    bool ok = outbox_insert(db, &ev.msg, err, errlen);
    outbox_event_clear(&ev);
    return ok;
}
