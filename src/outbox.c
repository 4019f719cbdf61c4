/*
 * outbox: see outbox.h.
 */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel_event.h"
#include "cloudevent.h"
#include "pgutil.h"
#include "timeutil.h"

static const char sql_insert[] =
    "INSERT INTO outbox (topic, msg_key, value, headers, event_type, event_id, request_id,"
    "                    available_at)"
    " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7,"
    "         CASE WHEN $8::bigint = 0 THEN now()"
    "              ELSE to_timestamp($8::bigint / 1000.0) END)";

static const char sql_fetch_due[] = "SELECT id, topic, msg_key, value, headers::text FROM outbox"
                                    " WHERE published_at IS NULL AND available_at <= now()"
                                    " ORDER BY id LIMIT $1";

static const char sql_mark_published[] =
    "UPDATE outbox SET published_at = now(), publish_attempts = publish_attempts + 1,"
    "                  last_error = NULL"
    " WHERE id = ANY($1::bigint[]) AND published_at IS NULL";

static const char sql_mark_failed[] =
    "UPDATE outbox SET publish_attempts = publish_attempts + 1, last_error = $2 WHERE id = $1";

static const char sql_next_due[] =
    "SELECT GREATEST(0, floor(extract(epoch FROM (min(available_at) - now())) * 1000))::bigint"
    " FROM outbox WHERE published_at IS NULL";

/* Deleting in bounded chunks keeps each transaction short on a big backlog. */
static const char sql_purge[] =
    "DELETE FROM outbox WHERE id IN ("
    "  SELECT id FROM outbox WHERE published_at < now() - $1::bigint * interval '1 ms'"
    "  ORDER BY published_at LIMIT $2)";

bool outbox_insert(struct db *db, const struct outbox_msg *msg, char *err, size_t errlen)
{
    char available[32];
    char *headers = NULL;
    bool ok;

    headers = msg->headers != NULL ? json_dumps(msg->headers, JSON_COMPACT) : strdup("[]");
    if (headers == NULL) {
        snprintf(err, errlen, "could not encode outbox headers");
        return false;
    }
    snprintf(available, sizeof(available), "%" PRId64, msg->available_at_ms);
    const char *values[8] = {msg->topic,      msg->key,      (const char *)msg->value, headers,
                             msg->event_type, msg->event_id, msg->request_id,          available};
    int lengths[8] = {0, 0, (int)msg->value_len, 0, 0, 0, 0, 0};
    int formats[8] = {0, 0, 1, 0, 0, 0, 0, 0};
    PGresult *res = pgutil_query(db, sql_insert, 8, values, lengths, formats, PGRES_COMMAND_OK,
                                 "could not insert into the outbox", err, errlen);
    ok = res != NULL;
    PQclear(res);
    free(headers);
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
    char limit_text[16];
    struct outbox_row *rows = NULL;
    size_t n = 0;
    bool ok = false;

    *rows_out = NULL;
    *n_out = 0;
    snprintf(limit_text, sizeof(limit_text), "%d", limit);
    const char *values[1] = {limit_text};
    PGresult *res = pgutil_query(db, sql_fetch_due, 1, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not read due outbox rows", err, errlen);
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
        rows[i].id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        rows[i].topic = strdup(PQgetvalue(res, r, 1));
        rows[i].key = PQgetisnull(res, r, 2) ? NULL : strdup(PQgetvalue(res, r, 2));
        rows[i].value =
            PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, 3), &rows[i].value_len);
        rows[i].headers = json_loads(PQgetvalue(res, r, 4), 0, &jerr);
        if (rows[i].topic == NULL || rows[i].value == NULL || rows[i].headers == NULL) {
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

bool outbox_mark_published(struct db *db, const int64_t *ids, size_t n, char *err, size_t errlen)
{
    bool ok;

    if (n == 0)
        return true;
    char *array = pgutil_int64_array(ids, n);
    if (array == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    const char *values[1] = {array};
    PGresult *res = pgutil_query(db, sql_mark_published, 1, values, NULL, NULL, PGRES_COMMAND_OK,
                                 "could not mark outbox rows published", err, errlen);
    ok = res != NULL;
    PQclear(res);
    free(array);
    return ok;
}

bool outbox_mark_failed(struct db *db, int64_t id, const char *error, char *err, size_t errlen)
{
    char id_text[24];
    snprintf(id_text, sizeof(id_text), "%" PRId64, id);
    const char *values[2] = {id_text, error};
    PGresult *res = pgutil_query(db, sql_mark_failed, 2, values, NULL, NULL, PGRES_COMMAND_OK,
                                 "could not record an outbox failure", err, errlen);
    bool ok = res != NULL;
    PQclear(res);
    return ok;
}

bool outbox_next_due_in_ms(struct db *db, int64_t *ms_out, char *err, size_t errlen)
{
    PGresult *res = pgutil_query(db, sql_next_due, 0, NULL, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not read the next due time", err, errlen);
    bool ok = res != NULL;
    if (ok)
        *ms_out = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return ok;
}

bool outbox_purge_published(struct db *db, int64_t retention_ms, int limit, int *deleted_out,
                            char *err, size_t errlen)
{
    char retention[24], limit_text[16];
    snprintf(retention, sizeof(retention), "%" PRId64, retention_ms);
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

bool outbox_insert_event(struct db *db, const char *topic, const char *type, const char *request_id,
                         const char *correlation_id, const json_t *data, int64_t available_at_ms,
                         char *err, size_t errlen)
{
    char id[CLOUDEVENT_ID_LEN];
    char *json = NULL;

    /* The id is made here, not by cloudevent_build(), because the outbox
     * stores it: consumers dedup on it and operators look it up. */
    cloudevent_new_id(id);
    if (!cloudevent_build_at(type, CANCEL_EVENT_SOURCE, request_id, correlation_id, (json_t *)data,
                             id, timeutil_now_ms(), &json, err, errlen))
        return false;
    struct outbox_msg msg = {
        .topic = topic,
        .key = request_id,
        .value = json,
        .value_len = strlen(json),
        .headers = NULL,
        .event_type = type,
        .event_id = id,
        .request_id = request_id,
        .available_at_ms = available_at_ms,
    };
    json_t *headers = json_pack("[[ss]]", "content-type", CLOUDEVENT_CONTENT_TYPE);
    msg.headers = headers;
    bool ok = outbox_insert(db, &msg, err, errlen);
    json_decref(headers);
    free(json);
    return ok;
}
