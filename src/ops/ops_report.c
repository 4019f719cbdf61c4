/*
 * ops_report: see ops_report.h.
 */
#include "ops/ops_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "ops/ops_request.h"
#include "store/pgutil.h"
#include "store/request_store.h"

/* PostgreSQL type oids (pg_type.h is a server header). */
#define OID_BOOL  16
#define OID_INT8  20
#define OID_INT2  21
#define OID_INT4  23
#define OID_JSON  114
#define OID_JSONB 3802

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
/* Times are printed in UTC with milliseconds, like every timestamp the
 * pipeline writes. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const char sql_by_status[] =
    "SELECT status, count(*) FROM cancel_request GROUP BY status ORDER BY status";

static const char sql_oldest_due[] =
    "SELECT request_id, gateway, attempts + 1 AS \"nextAttempt\","
    "  " TS("next_attempt_at") " AS \"dueAt\","
    "  (extract(epoch FROM now() - next_attempt_at) * 1000)::bigint AS \"overdueMs\""
    " FROM cancel_request WHERE status = 'SCHEDULED' AND next_attempt_at <= now()"
    " ORDER BY next_attempt_at LIMIT 1";

static const char sql_due_count[] =
    "SELECT count(*) FROM cancel_request WHERE status = 'SCHEDULED' AND next_attempt_at <= now()";

static const char sql_in_flight[] =
    "SELECT count(*) AS count,"
    "  count(*) FILTER (WHERE lease_expires_at < now())::bigint AS \"expiredLeases\","
    "  " TS("min(lease_expires_at)") " AS \"nextLeaseEnd\""
    " FROM cancel_request WHERE status = 'IN_FLIGHT'";

/* Parked rows are not backlog: the relay skips them until an operator
 * requeues them (cancelctl outbox); they are counted on their own. */
static const char sql_outbox[] =
    "SELECT count(*) FILTER (WHERE parked_at IS NULL)::bigint AS pending,"
    "  count(*) FILTER (WHERE parked_at IS NULL AND available_at <= now())::bigint AS due,"
    "  count(*) FILTER (WHERE parked_at IS NULL AND available_at > now())::bigint AS delayed,"
    "  count(*) FILTER (WHERE parked_at IS NULL AND publish_attempts > 0)::bigint AS failing,"
    "  count(*) FILTER (WHERE parked_at IS NOT NULL)::bigint AS parked,"
    "  (extract(epoch FROM now() - min(available_at)"
    "     FILTER (WHERE parked_at IS NULL AND available_at <= now())) * 1000)::bigint"
    "    AS \"oldestDueAgeMs\","
    "  (extract(epoch FROM now() - min(created_at) FILTER (WHERE parked_at IS NULL)) * 1000)"
    "    ::bigint AS \"oldestAgeMs\""
    " FROM outbox WHERE published_at IS NULL";

static const char sql_oldest_parked[] =
    "SELECT id, topic, request_id AS \"requestId\", park_reason AS \"parkReason\","
    "  " TS("parked_at") " AS \"parkedAt\","
    "  (extract(epoch FROM now() - parked_at) * 1000)::bigint AS \"parkedForMs\""
    " FROM outbox WHERE parked_at IS NOT NULL ORDER BY parked_at, id LIMIT 1";

/* Which relay holds the lease (relay_lease.h). */
static const char sql_relay[] =
    "SELECT holder, epoch, expires_at > now() AS active,"
    "  " TS("acquired_at") " AS \"since\", " TS("renewed_at") " AS \"renewedAt\","
    "  (extract(epoch FROM expires_at - now()) * 1000)::bigint AS \"expiresInMs\""
    " FROM relay_leader WHERE name = 'outbox-relay'";

static const char sql_replays[] =
    "SELECT reason, action, count(*) FROM dlq_replay WHERE dlq_topic = $1"
    " GROUP BY reason, action ORDER BY reason, action";

static const char sql_slack[] =
    "SELECT count(*) FILTER (WHERE state = 'FAILED_PERMANENT')::bigint AS \"failedPermanent\","
    "  count(*) FILTER (WHERE state = 'PENDING')::bigint AS pending"
    " FROM alert_sent";

static const char sql_slack_recent[] =
    "SELECT dedup_key AS \"dedupKey\", kind, request_id AS \"requestId\", gateway, reason,"
    "  attempts, last_error AS \"lastError\", " TS("first_seen_at") " AS \"firstSeenAt\""
    " FROM alert_sent WHERE state = 'FAILED_PERMANENT'"
    " ORDER BY first_seen_at DESC LIMIT 5";

static const char sql_mismatch_kinds[] =
    "SELECT kind, count(*) FROM reconcile_mismatch WHERE fixed_at IS NULL"
    " GROUP BY kind ORDER BY kind";

static const char sql_mismatch_recent[] =
    "SELECT request_id AS \"requestId\", gateway, kind, our_status AS \"ourStatus\","
    "  their_finding AS \"theirFinding\", detail,"
    "  " TS("found_at") " AS \"foundAt\", " TS("last_seen_at") " AS \"lastSeenAt\""
    " FROM reconcile_mismatch WHERE fixed_at IS NULL"
    " ORDER BY found_at DESC, id DESC LIMIT 10";

static const char sql_last_run[] =
    "SELECT id, trigger, run_by AS \"runBy\","
    "  " TS("started_at") " AS \"startedAt\", " TS("finished_at") " AS \"finishedAt\","
    "  " TS("window_start") " AS \"windowStart\", gateway, checked, mismatches,"
    "  new_mismatches AS \"newMismatches\", pending AS settling,"
    "  could_not_check AS \"couldNotCheck\", fixed, error"
    " FROM reconcile_run ORDER BY started_at DESC, id DESC LIMIT 1";

static const char sql_request[] =
    "SELECT request_id AS \"requestId\", status, gateway, payment_key AS \"paymentKey\","
    "  amount, currency, partial, reason,"
    "  origin_transaction_id AS \"originTransactionId\","
    "  first_failure_code AS \"firstFailureCode\", correlation_id AS \"correlationId\","
    "  attempts, budget_base AS \"budgetBase\", max_attempts AS \"maxAttempts\","
    "  " TS("next_attempt_at") " AS \"nextAttemptAt\","
    "  " TS("deadline_at") " AS \"deadlineAt\","
    "  " TS("key_first_used_at") " AS \"keyFirstUsedAt\","
    "  " TS("key_expires_at") " AS \"keyExpiresAt\","
    "  key_generation AS \"keyGeneration\", key_holds_error AS \"keyHoldsError\","
    "  inquire_first AS \"inquireFirst\", final_check AS \"finalCheck\","
    "  found_by_inquiry AS \"foundByInquiry\","
    "  lease_owner AS \"leaseOwner\", " TS("lease_expires_at") " AS \"leaseExpiresAt\","
    "  last_error_code AS \"lastErrorCode\", last_error_message AS \"lastErrorMessage\","
    "  last_http_status AS \"lastHttpStatus\","
    "  resolved_by AS \"resolvedBy\", resolved_note AS \"resolvedNote\","
    "  source_topic AS \"sourceTopic\", source_partition AS \"sourcePartition\","
    "  source_offset AS \"sourceOffset\","
    "  " TS("created_at") " AS \"createdAt\", " TS("updated_at") " AS \"updatedAt\","
    "  " TS("finished_at") " AS \"finishedAt\""
    " FROM cancel_request WHERE request_id = $1";

static const char sql_attempts[] =
    "SELECT attempt, event, worker, " TS("at") " AS at, verdict,"
    "  http_status AS \"httpStatus\", error_code AS \"errorCode\","
    "  error_message AS \"errorMessage\", latency_ms AS \"latencyMs\", replayed, decision,"
    "  " TS("next_attempt_at") " AS \"nextAttemptAt\", detail,"
    "  idempotency_key AS \"idempotencyKey\", inquiry, inquiry_detail AS \"inquiryDetail\""
    " FROM retry_attempt_log WHERE request_id = $1 ORDER BY id";

/* Our own events are JSON we built; only they are decoded. */
static const char sql_events[] =
    "SELECT id, topic, event_type AS type, " TS("available_at") " AS \"availableAt\","
    "  " TS("published_at") " AS \"publishedAt\", publish_attempts AS \"publishAttempts\","
    "  last_error AS \"lastError\", " TS("parked_at") " AS \"parkedAt\","
    "  park_reason AS \"parkReason\","
    "  CASE WHEN event_type LIKE 'payments.cancel.%' THEN"
    "    convert_from(value, 'UTF8')::jsonb -> 'data' END AS data"
    " FROM outbox WHERE request_id = $1 AND event_type <> 'dead-letter' ORDER BY id";

static const char sql_dead_letters[] =
    "SELECT id, topic, " TS("created_at") " AS \"createdAt\","
    "  " TS("published_at") " AS \"publishedAt\", headers"
    " FROM outbox WHERE request_id = $1 AND event_type = 'dead-letter' ORDER BY id";

static const char sql_request_replays[] =
    "SELECT dlq_topic AS \"dlqTopic\", dlq_partition AS \"dlqPartition\","
    "  dlq_offset AS \"dlqOffset\", reason, action, operator, filter, detail,"
    "  " TS("replayed_at") " AS \"replayedAt\""
    " FROM dlq_replay WHERE request_id = $1 ORDER BY id";

static const char sql_actions[] =
    "SELECT action, operator, note, " TS("at") " AS at"
    " FROM operator_action WHERE request_id = $1 ORDER BY id";

static const char sql_mismatches[] =
    "SELECT kind, our_status AS \"ourStatus\", their_finding AS \"theirFinding\", detail,"
    "  " TS("found_at") " AS \"foundAt\", " TS("fixed_at") " AS \"fixedAt\","
    "  fixed_by AS \"fixedBy\""
    " FROM reconcile_mismatch WHERE request_id = $1 ORDER BY id";
/* clang-format on */

json_t *ops_report_rows(const PGresult *res)
{
    json_t *arr = json_array();
    int nrows = PQntuples(res), ncols = PQnfields(res);

    for (int r = 0; arr != NULL && r < nrows; r++) {
        json_t *o = json_object();
        for (int c = 0; o != NULL && c < ncols; c++) {
            const char *v = PQgetvalue(res, r, c);
            json_t *j;
            if (PQgetisnull(res, r, c)) {
                j = json_null();
            } else {
                switch (PQftype(res, c)) {
                case OID_INT2:
                case OID_INT4:
                case OID_INT8:
                    j = json_integer(pgutil_get_i64(res, r, c));
                    break;
                case OID_BOOL:
                    j = json_boolean(v[0] == 't');
                    break;
                case OID_JSON:
                case OID_JSONB:
                    j = json_loads(v, JSON_DECODE_ANY, NULL);
                    if (j == NULL)
                        j = json_string(v);
                    break;
                default:
                    j = json_string(v);
                }
            }
            json_object_set_new(o, PQfname(res, c), j);
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

json_t *ops_report_query(struct db *db, const char *sql, int n, const char *const *values,
                         const char *context, char *err, size_t errlen)
{
    PGresult *res =
        pgutil_query(db, sql, n, values, NULL, NULL, PGRES_TUPLES_OK, context, err, errlen);
    if (res == NULL)
        return NULL;
    json_t *arr = ops_report_rows(res);
    PQclear(res);
    if (arr == NULL)
        snprintf(err, errlen, "out of memory");
    return arr;
}

/* Rows of (key, count) as an object {key: count}, and their sum in *total;
 * takes rows (freed). */
static json_t *counts_by(json_t *rows, const char *key, json_int_t *total)
{
    json_t *by = json_object();
    size_t i;
    json_t *row;

    *total = 0;
    json_array_foreach(rows, i, row)
    {
        json_int_t n = json_integer_value(json_object_get(row, "count"));
        json_object_set_new(by, json_string_value(json_object_get(row, key)), json_integer(n));
        *total += n;
    }
    json_decref(rows);
    return by;
}

/* The first row of sql as an object (json null if none), or NULL with err. */
static json_t *one(struct db *db, const char *sql, int n, const char *const *values,
                   const char *context, char *err, size_t errlen)
{
    json_t *arr = ops_report_query(db, sql, n, values, context, err, errlen);
    if (arr == NULL)
        return NULL;
    json_t *first = json_array_size(arr) > 0 ? json_incref(json_array_get(arr, 0)) : json_null();
    json_decref(arr);
    return first;
}

/* {"openMismatches": {"total", "byKind"}, "recentOpen": [...], "lastRun"}
 * into doc's "reconciliation". */
static bool reconciliation(struct db *db, json_t *doc, char *err, size_t errlen)
{
    json_t *kinds = ops_report_query(db, sql_mismatch_kinds, 0, NULL,
                                     "could not count open mismatches", err, errlen);
    if (kinds == NULL)
        return false;
    json_int_t total;
    json_t *by_kind = counts_by(kinds, "kind", &total);
    json_t *recent = ops_report_query(db, sql_mismatch_recent, 0, NULL,
                                      "could not read open mismatches", err, errlen);
    json_t *last = recent != NULL ? one(db, sql_last_run, 0, NULL,
                                        "could not read the last reconciliation run", err, errlen)
                                  : NULL;
    if (recent == NULL || last == NULL) {
        json_decref(by_kind);
        json_decref(recent);
        return false;
    }
    json_object_set_new(doc, "reconciliation",
                        json_pack("{s:{s:I, s:o}, s:o, s:o}", "openMismatches", "total", total,
                                  "byKind", by_kind, "recentOpen", recent, "lastRun", last));
    return true;
}

bool ops_report_status(struct db *db, const struct config *cfg, json_t **out, char *err,
                       size_t errlen)
{
    json_t *doc = json_object(), *part = NULL;
    const char *dlq_topic[1] = {cfg->topics.dlq.name};

    *out = NULL;
    /* One snapshot for every figure (REPEATABLE READ, read only). */
    if (doc == NULL || !db_begin(db, err, errlen))
        goto fail;
    if (!pgutil_command(db, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
                        "could not start a snapshot", err, errlen))
        goto fail;

    part = ops_report_query(db, sql_by_status, 0, NULL, "could not count requests", err, errlen);
    if (part == NULL)
        goto fail;
    json_int_t total;
    json_t *by_status = counts_by(part, "status", &total);
    json_object_set_new(doc, "requests",
                        json_pack("{s:o, s:I}", "byStatus", by_status, "total", total));

    if ((part = one(db, sql_oldest_due, 0, NULL, "could not find the oldest due request", err,
                    errlen)) == NULL)
        goto fail;
    json_object_set_new(doc, "oldestDue", part);
    if ((part = one(db, sql_due_count, 0, NULL, "could not count due requests", err, errlen)) ==
        NULL)
        goto fail;
    json_object_set_new(doc, "dueNow", json_incref(json_object_get(part, "count")));
    json_decref(part);

    const struct {
        const char *key, *sql, *context;
    } parts[] = {
        {"inFlight", sql_in_flight, "could not count attempts in flight"},
        {"outbox", sql_outbox, "could not measure the outbox backlog"},
        {"slack", sql_slack, "could not count Slack delivery faults"},
    };
    for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        if ((part = one(db, parts[k].sql, 0, NULL, parts[k].context, err, errlen)) == NULL)
            goto fail;
        json_object_set_new(doc, parts[k].key, part);
    }
    if ((part = one(db, sql_oldest_parked, 0, NULL, "could not read parked outbox rows", err,
                    errlen)) == NULL)
        goto fail;
    json_object_set_new(json_object_get(doc, "outbox"), "oldestParked", part);
    if ((part = one(db, sql_relay, 0, NULL, "could not read the relay lease", err, errlen)) == NULL)
        goto fail;
    json_object_set_new(doc, "relay", part);
    if ((part = ops_report_query(db, sql_slack_recent, 0, NULL,
                                 "could not read Slack delivery faults", err, errlen)) == NULL)
        goto fail;
    json_object_set_new(json_object_get(doc, "slack"), "recentFaults", part);
    if ((part = ops_report_query(db, sql_replays, 1, dlq_topic, "could not count replays", err,
                                 errlen)) == NULL)
        goto fail;
    json_object_set_new(doc, "replays", part);
    if (!reconciliation(db, doc, err, errlen))
        goto fail;
    db_rollback(db);
    *out = doc;
    return true;
fail:
    db_rollback(db);
    json_decref(doc);
    if (doc == NULL)
        snprintf(err, errlen, "out of memory");
    return false;
}

bool ops_report_show(struct db *db, const struct config *cfg, const char *request_id, json_t **out,
                     char *err, size_t errlen)
{
    const char *values[1] = {request_id};
    json_t *doc = json_object(), *part;
    struct request_row row;
    bool found = false;
    char next[1024];

    *out = NULL;
    if (doc == NULL || !db_begin(db, err, errlen))
        goto fail;
    if (!pgutil_command(db, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
                        "could not start a snapshot", err, errlen))
        goto fail;
    if ((part = one(db, sql_request, 1, values, "could not read the request", err, errlen)) == NULL)
        goto fail;
    if (json_is_null(part)) {
        json_decref(part);
        json_decref(doc);
        db_rollback(db);
        return true;
    }
    json_object_set_new(doc, "request", part);

    const struct {
        const char *key, *sql, *context;
    } parts[] = {
        {"attempts", sql_attempts, "could not read the attempt log"},
        {"events", sql_events, "could not read the request's events"},
        {"deadLetters", sql_dead_letters, "could not read the request's dead letters"},
        {"replays", sql_request_replays, "could not read the request's replays"},
        {"operatorActions", sql_actions, "could not read the operator actions"},
        {"mismatches", sql_mismatches, "could not read the request's reconciliation mismatches"},
    };
    for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        if ((part = ops_report_query(db, parts[k].sql, 1, values, parts[k].context, err, errlen)) ==
            NULL)
            goto fail;
        json_object_set_new(doc, parts[k].key, part);
    }
    if (!request_store_get(db, request_id, false, &row, &found, err, errlen))
        goto fail;
    if (found) {
        ops_next_step_words(&row, wall_ms(), cfg->consumers.retry.lease_ms, next, sizeof(next));
        json_object_set_new(doc, "next", json_string(next));
        request_row_clear(&row);
    }
    db_rollback(db);
    *out = doc;
    return true;
fail:
    db_rollback(db);
    json_decref(doc);
    return false;
}
