/*
 * request_store: see request_store.h.
 */
#include "store/request_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/i64.h"
#include "store/pgutil.h"

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
/* The columns every read returns, in the order row_from_result() expects. */
#define REQUEST_COLUMNS                                                                            \
    "request_id, gateway, payment_key, amount, currency, partial, reason, correlation_id,"         \
    " status, attempts, budget_base, max_attempts,"                                                \
    " extract(epoch FROM next_attempt_at) * 1000, extract(epoch FROM deadline_at) * 1000,"         \
    " extract(epoch FROM key_expires_at) * 1000, extract(epoch FROM created_at) * 1000,"           \
    " lease_owner, last_error_code, last_error_message, last_http_status, source_event,"           \
    " source_topic, source_partition, source_offset,"                                              \
    " extract(epoch FROM source_timestamp) * 1000,"                                                \
    " key_generation, key_holds_error, inquire_first, final_check"

/* The upstream service may have used the key (the requestId) before the
 * event was written, so its lifetime at the gateway is counted from the
 * earliest time we know of: the event's time, the Kafka timestamp and now.
 * 0 means unknown. */
#define KEY_FIRST_USED                                                                             \
    "LEAST(now(), CASE WHEN u.event_time_ms::bigint = 0 THEN now()"                                \
    "             ELSE to_timestamp(u.event_time_ms::bigint / 1000.0) END,"                        \
    " CASE WHEN u.kafka_ts_ms::bigint = 0 THEN now()"                                              \
    "      ELSE to_timestamp(u.kafka_ts_ms::bigint / 1000.0) END)"

/* One request or a batch alike: each parameter is a column of text (bytea for
 * the event), in the order of insert_params(). Sorted by requestId: see
 * request_store_insert_many(); the ordinality keeps the first of a repeated
 * requestId first. */
static const char sql_insert[] =
    "INSERT INTO cancel_request (request_id, gateway, payment_key, amount, currency, partial,"
    "  reason, origin_transaction_id, first_failure_code, first_failure_message, correlation_id,"
    "  source_event_id, source_event, source_topic, source_partition, source_offset,"
    "  source_timestamp, max_attempts, next_attempt_at, deadline_at, key_first_used_at,"
    "  key_expires_at)"
    " SELECT u.request_id, u.gateway, u.payment_key, u.amount::bigint, u.currency,"
    "  u.partial::boolean, u.reason, u.origin_transaction_id, u.failure_code, u.failure_message,"
    "  u.correlation_id, u.event_id, u.event, u.topic, u.kafka_partition::integer,"
    "  u.kafka_offset::bigint,"
    "  CASE WHEN u.kafka_ts_ms::bigint = 0 THEN NULL"
    "       ELSE to_timestamp(u.kafka_ts_ms::bigint / 1000.0) END,"
    "  u.max_attempts::integer, to_timestamp(u.first_attempt_ms::bigint / 1000.0),"
    "  to_timestamp(u.deadline_ms::bigint / 1000.0),"
    /* A gateway whose key binds no retry (config.h) has no key expiry. */
    "  " KEY_FIRST_USED ", " KEY_FIRST_USED " + NULLIF(u.key_ttl_ms::bigint, 0) * interval '1 ms'"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    "             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],"
    "             $13::bytea[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],"
    "             $19::text[], $20::text[], $21::text[], $22::text[])"
    "      WITH ORDINALITY AS u(request_id, gateway, payment_key, amount, currency, partial,"
    "        reason, origin_transaction_id, failure_code, failure_message, correlation_id,"
    "        event_id, event, topic, kafka_partition, kafka_offset, kafka_ts_ms, max_attempts,"
    "        first_attempt_ms, deadline_ms, event_time_ms, key_ttl_ms, ord)"
    " ORDER BY u.request_id, u.ord"
    " ON CONFLICT (request_id) DO NOTHING"
    " RETURNING request_id";

static const char sql_get[] =
    "SELECT " REQUEST_COLUMNS " FROM cancel_request WHERE request_id = $1";

static const char sql_get_many[] =
    "SELECT " REQUEST_COLUMNS " FROM cancel_request WHERE request_id = ANY($1::text[])";

static const char sql_get_lock[] =
    "SELECT " REQUEST_COLUMNS " FROM cancel_request WHERE request_id = $1 FOR UPDATE";

/* Other requests of the same payment and amount as the request (gw, pk, amt,
 * rid name its columns or parameters): ended SUCCEEDED, and still able to
 * make a cancel of that amount (claimed at least once, not final). */
#define SAME_PAYMENT(gw, pk, amt, rid)                                                             \
    " o.gateway = " gw " AND o.payment_key = " pk " AND o.amount = " amt                           \
    " AND o.request_id <> " rid
#define SAME_AMOUNT_COUNTS(gw, pk, amt, rid)                                                       \
    "(SELECT count(*) FROM cancel_request o"                                                       \
    "   WHERE o.status = 'SUCCEEDED' AND" SAME_PAYMENT(gw, pk, amt, rid) "),"                      \
    " (SELECT count(*) FROM cancel_request o"                                                      \
    "   WHERE o.status IN ('SCHEDULED', 'IN_FLIGHT', 'PENDING') AND o.attempts > 0"                \
    "     AND" SAME_PAYMENT(gw, pk, amt, rid) ")"

/* The claim, its STARTED fact and the counts of request_store_same_amount()
 * in one statement: one round trip per claim. The counts read the snapshot
 * before the UPDATE, which leaves out only the claimed row itself, as the
 * count does anyway. An attempt that only inquires (a pending refund, a
 * final check) sends no key: neither the deadline nor the key's lifetime
 * stops it. One that may refund must be able to finish before both. */
static const char sql_claim[] =
    "WITH c AS ("
    "  UPDATE cancel_request"
    "     SET status = 'IN_FLIGHT', attempts = attempts + 1, lease_owner = $2,"
    "         lease_expires_at = now() + $3::bigint * interval '1 ms', updated_at = now()"
    "   WHERE request_id = $1 AND status IN ('SCHEDULED', 'PENDING') AND attempts + 1 = $4"
    "     AND next_attempt_at <= now() + $5::bigint * interval '1 ms'"
    "     AND (status = 'PENDING' OR final_check IS NOT NULL"
    "          OR (now() < deadline_at"
    "              AND (key_expires_at IS NULL"
    "                   OR key_expires_at > now() + $3::bigint * interval '1 ms')))"
    "  RETURNING *),"
    " started AS ("
    "  INSERT INTO retry_attempt_log (request_id, attempt, event, worker, gateway)"
    "  SELECT request_id, $4::integer, 'STARTED', $2, gateway FROM c)"
    " SELECT " REQUEST_COLUMNS ", "
    SAME_AMOUNT_COUNTS("c.gateway", "c.payment_key", "c.amount", "c.request_id")
    " FROM c";

/* The attempt's result and its ANSWERED fact in one statement (one round
 * trip). The fact is written whether or not the lease was still ours: the
 * answer happened either way; only the decision is not applied (row count
 * 0 in the result). */
static const char sql_finish[] =
    "WITH u AS ("
    "  UPDATE cancel_request"
    "     SET status = $4, lease_owner = NULL, lease_expires_at = NULL,"
    "         next_attempt_at = CASE WHEN $4 IN ('SCHEDULED', 'PENDING')"
    "                                THEN to_timestamp($5::bigint / 1000.0)"
    "                                ELSE next_attempt_at END,"
    "         last_error_code = $6, last_error_message = $7, last_http_status = $8::integer,"
    "         finished_at = CASE WHEN $4 IN ('SCHEDULED', 'PENDING') THEN NULL ELSE now() END,"
    /* An attempt that spends no budget moves the budget's base with it. */
    "         budget_base = budget_base + CASE WHEN $9::boolean THEN 0 ELSE 1 END,"
    /* A new generation's key is first used by the next attempt: its
     * lifetime starts now. */
    "         key_expires_at = CASE WHEN $10::integer > key_generation"
    "                               THEN now() + NULLIF($14::bigint, 0) * interval '1 ms'"
    "                               ELSE key_expires_at END,"
    "         key_generation = $10::integer, key_holds_error = $11::boolean,"
    "         inquire_first = $12::boolean, final_check = $13, found_by_inquiry = $15::boolean,"
    "         updated_at = now()"
    "   WHERE request_id = $1 AND status = 'IN_FLIGHT' AND attempts = $2 AND lease_owner = $3"
    "  RETURNING 1)"
    " INSERT INTO retry_attempt_log (request_id, attempt, event, worker, gateway, verdict,"
    "  http_status, error_code, error_message, latency_ms, replayed, decision, next_attempt_at,"
    "  detail, idempotency_key, inquiry, inquiry_detail)"
    " VALUES ($1, $2::integer, 'ANSWERED', $3, $16, $17, $8::integer, $6, $7, $18, $19, $20,"
    "  CASE WHEN $4 IN ('SCHEDULED', 'PENDING') AND $5::bigint <> 0"
    "       THEN to_timestamp($5::bigint / 1000.0) END,"
    "  CASE WHEN EXISTS (SELECT 1 FROM u) THEN $21"
    "       ELSE 'the lease was lost before the answer was recorded; the decision was not"
    " applied' END,"
    "  $22, $23, $24)"
    " RETURNING (SELECT count(*) FROM u)";

static const char sql_postpone[] =
    "UPDATE cancel_request SET next_attempt_at = to_timestamp($3::bigint / 1000.0),"
    "       updated_at = now()"
    " WHERE request_id = $1 AND status IN ('SCHEDULED', 'PENDING') AND attempts + 1 = $2";

/* The reconciler after an abandoned last attempt: no budget is left, but the
 * abandoned call may have refunded; an inquiry decides (final check). */
static const char sql_final_check[] =
    "UPDATE cancel_request SET next_attempt_at = to_timestamp($3::bigint / 1000.0),"
    "       inquire_first = true, final_check = $4, budget_base = budget_base + 1,"
    "       updated_at = now()"
    " WHERE request_id = $1 AND status = 'SCHEDULED' AND attempts = $2";

static const char sql_finalize_scheduled[] =
    "UPDATE cancel_request SET status = $3, last_error_code = $4, last_error_message = $5,"
    "       finished_at = now(), updated_at = now()"
    " WHERE request_id = $1 AND status = 'SCHEDULED' AND attempts + 1 = $2";

/* SKIP LOCKED: several relays (or a relay and an operator) never wait on each
 * other's rows; a locked row is simply someone else's to handle. */
static const char sql_take_expired[] =
    "UPDATE cancel_request r"
    "   SET status = 'SCHEDULED', next_attempt_at = now(), lease_owner = NULL,"
    "       lease_expires_at = NULL, updated_at = now()"
    "  FROM (SELECT request_id AS rid, lease_owner AS old_owner FROM cancel_request"
    "         WHERE status = 'IN_FLIGHT' AND lease_expires_at < now()"
    "         ORDER BY lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED) e"
    " WHERE r.request_id = e.rid"
    " RETURNING e.old_owner, " REQUEST_COLUMNS;

static const char sql_log_abandoned[] =
    "INSERT INTO retry_attempt_log (request_id, attempt, event, worker, gateway, detail)"
    " VALUES ($1, $2, 'ABANDONED', $3, $4, $5)";

static const char sql_same_amount[] = "SELECT " SAME_AMOUNT_COUNTS("$1", "$2", "$3::bigint", "$4");

/* A published trigger is taken for lost only when it is older than the
 * grace and than half of the time its request has been due: a trigger that
 * waits in Kafka behind a backlog is not lost. With the grace alone, every
 * request of a backlog older than the grace got a new trigger each grace
 * (72,861 re-triggers for 30,000 requests in a benchmark at 500/s), each one
 * more event for the same backlog. Spaced so, a request due for a time T
 * gets about log2(T / grace) of them, and a trigger really lost is still
 * written again after the grace. */
/* The grace a trigger gets ($1 ms) stretches, while the retry-consumers are
 * working, to twice the time the due backlog takes at their pace of the last
 * minute (attempts started), capped at $3 ms: a trigger behind a backlog of
 * 20,000 is not lost, it is queued, and writing it again only lengthens the
 * queue (docs/benchmarks.md). With no attempt started for a minute the
 * plain grace applies: the consumers may be stuck or every trigger gone. */
static const char sql_due_without_trigger[] =
    "WITH pace AS ("
    "  SELECT (SELECT count(*) FROM retry_attempt_log"
    "           WHERE at > now() - interval '60 s' AND event = 'STARTED') AS started,"
    "         (SELECT count(*) FROM cancel_request"
    "           WHERE status IN ('SCHEDULED', 'PENDING') AND next_attempt_at < now()) AS due),"
    " g AS ("
    "  SELECT CASE WHEN started > 0"
    "              THEN LEAST(GREATEST($1::bigint, 2 * due * 60000 / started), $3::bigint)"
    "              ELSE $1::bigint END * interval '1 ms' AS grace"
    "    FROM pace)"
    " SELECT r.request_id FROM cancel_request r, g"
    " WHERE r.status IN ('SCHEDULED', 'PENDING')"
    "   AND r.next_attempt_at < now() - g.grace"
    "   AND NOT EXISTS (SELECT 1 FROM outbox o"
    "                    WHERE o.request_id = r.request_id"
    "                      AND o.event_type = 'payments.cancel.retry.scheduled.v1'"
    "                      AND (o.published_at IS NULL"
    "                           OR o.published_at > now() - GREATEST("
    "                                g.grace, (now() - r.next_attempt_at) / 2)))"
    " ORDER BY r.next_attempt_at LIMIT $2";
/* clang-format on */

void request_row_clear(struct request_row *row)
{
    if (row == NULL)
        return;
    free(row->request_id);
    free(row->gateway);
    free(row->payment_key);
    free(row->currency);
    free(row->reason);
    free(row->correlation_id);
    free(row->status);
    free(row->lease_owner);
    free(row->last_error_code);
    free(row->last_error_message);
    PQfreemem(row->source_event);
    free(row->source_topic);
    free(row->final_check);
    memset(row, 0, sizeof(*row));
}

/* Fill row from columns first.. of REQUEST_COLUMNS in res. */
/* Returns the index of the column after the row's. */
static int row_from_result(const PGresult *res, int r, int first, struct request_row *row)
{
    int c = first;

    memset(row, 0, sizeof(*row));
    row->request_id = pgutil_get_str(res, r, c++);
    row->gateway = pgutil_get_str(res, r, c++);
    row->payment_key = pgutil_get_str(res, r, c++);
    row->amount = pgutil_get_i64(res, r, c++);
    row->currency = pgutil_get_str(res, r, c++);
    row->partial = PQgetvalue(res, r, c++)[0] == 't';
    row->reason = pgutil_get_str(res, r, c++);
    row->correlation_id = pgutil_get_str(res, r, c++);
    row->status = pgutil_get_str(res, r, c++);
    row->attempts = atoi(PQgetvalue(res, r, c++));
    row->budget_base = atoi(PQgetvalue(res, r, c++));
    row->max_attempts = atoi(PQgetvalue(res, r, c++));
    row->next_attempt_at_ms = pgutil_get_ms(res, r, c++);
    row->deadline_at_ms = pgutil_get_ms(res, r, c++);
    row->key_expires_at_ms = pgutil_get_ms(res, r, c++);
    row->created_at_ms = pgutil_get_ms(res, r, c++);
    row->lease_owner = pgutil_get_str(res, r, c++);
    row->last_error_code = pgutil_get_str(res, r, c++);
    row->last_error_message = pgutil_get_str(res, r, c++);
    row->last_http_status = PQgetisnull(res, r, c) ? 0 : atoi(PQgetvalue(res, r, c));
    c++;
    row->source_event =
        PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, c++), &row->source_event_len);
    row->source_topic = pgutil_get_str(res, r, c++);
    row->source_partition = PQgetisnull(res, r, c) ? -1 : atoi(PQgetvalue(res, r, c));
    c++;
    row->source_offset = PQgetisnull(res, r, c) ? -1 : pgutil_get_i64(res, r, c);
    c++;
    row->source_timestamp_ms = pgutil_get_ms(res, r, c++);
    row->key_generation = atoi(PQgetvalue(res, r, c++));
    row->key_holds_error = PQgetvalue(res, r, c++)[0] == 't';
    row->inquire_first = PQgetvalue(res, r, c++)[0] == 't';
    row->final_check = pgutil_get_str(res, r, c++);
    return c;
}

/* Positions of requestIds sorted by (requestId, position), to find the
 * entries of a returned requestId without a scan per row. */
struct id_pos {
    const char *id;
    size_t pos;
};

static int id_pos_cmp(const void *a, const void *b)
{
    const struct id_pos *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The index of the first entry of id in sorted[0..n), n if there is none. */
static size_t id_pos_first(const struct id_pos *sorted, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(sorted[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(sorted[lo].id, id) == 0 ? lo : n;
}

/* ids[0..n) sorted with their positions, malloc'd (NULL when out of
 * memory). */
static struct id_pos *id_pos_sort(const char *const *ids, size_t n)
{
    struct id_pos *sorted = malloc(n * sizeof(*sorted));
    if (sorted == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        sorted[i].id = ids[i];
        sorted[i].pos = i;
    }
    qsort(sorted, n, sizeof(*sorted), id_pos_cmp);
    return sorted;
}

#define INSERT_COLUMNS 22
#define INSERT_EVENT   12 /* the one bytea column */

/* The columns of sql_insert for one request, as text; numbers in bufs. */
struct insert_params {
    char amount[24], partition[16], offset[24], ts[24], maxa[16], first[24], deadline[24],
        evtime[24], ttl[24];
    const char *values[INSERT_COLUMNS];
    size_t lengths[INSERT_COLUMNS];
};

static void insert_params(const struct request_new *r, struct insert_params *p)
{
    const struct cancel_failed *cf = r->cf;
    const struct request_source *src = r->src;
    const char *values[INSERT_COLUMNS] = {
        cf->request_id,
        cf->gateway,
        cf->payment_key,
        I64(p->amount, cf->amount),
        cf->currency,
        cf->partial ? "true" : "false",
        cf->reason,
        cf->origin_transaction_id,
        cf->failure_code,
        cf->failure_message,
        src->correlation_id,
        src->event_id,
        (const char *)src->bytes,
        src->topic,
        src->partition >= 0 ? I64(p->partition, src->partition) : NULL,
        src->offset >= 0 ? I64(p->offset, src->offset) : NULL,
        I64(p->ts, src->timestamp_ms),
        I64(p->maxa, r->max_attempts),
        I64(p->first, r->first_attempt_ms),
        I64(p->deadline, r->deadline_ms),
        I64(p->evtime, src->event_time_ms),
        I64(p->ttl, r->key_ttl_ms),
    };
    for (int c = 0; c < INSERT_COLUMNS; c++) {
        p->values[c] = values[c];
        p->lengths[c] = c == INSERT_EVENT ? src->len : values[c] != NULL ? strlen(values[c]) : 0;
    }
}

bool request_store_insert_many(struct db *db, struct request_new *reqs, size_t n, char *err,
                               size_t errlen)
{
    struct pgutil_array cols[INSERT_COLUMNS];
    const char *values[INSERT_COLUMNS];
    int lengths[INSERT_COLUMNS], formats[INSERT_COLUMNS];
    struct id_pos *sorted = NULL;
    PGresult *res = NULL;
    bool ok = false;

    for (size_t i = 0; i < n; i++)
        reqs[i].inserted = false;
    if (n == 0)
        return true;
    for (int c = 0; c < INSERT_COLUMNS; c++) {
        pgutil_array_init(&cols[c], c == INSERT_EVENT ? PGUTIL_OID_BYTEA : PGUTIL_OID_TEXT);
        formats[c] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        struct insert_params p;
        insert_params(&reqs[i], &p);
        for (int c = 0; c < INSERT_COLUMNS; c++)
            pgutil_array_add(&cols[c], p.values[c], p.lengths[c]);
    }
    for (int c = 0; c < INSERT_COLUMNS; c++) {
        values[c] = pgutil_array_data(&cols[c], &lengths[c]);
        if (values[c] == NULL)
            goto oom;
    }
    const char **ids = malloc(n * sizeof(*ids));
    if (ids == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++)
        ids[i] = reqs[i].cf->request_id;
    sorted = id_pos_sort(ids, n);
    free(ids);
    if (sorted == NULL)
        goto oom;
    res = pgutil_query(db, sql_insert, INSERT_COLUMNS, values, lengths, formats, PGRES_TUPLES_OK,
                       "could not insert the cancel request", err, errlen);
    if (res == NULL)
        goto out;
    /* The first entry of a requestId was tried first: if it was inserted,
     * it is the one. */
    for (int r = 0; r < PQntuples(res); r++) {
        size_t k = id_pos_first(sorted, n, PQgetvalue(res, r, 0));
        if (k < n)
            reqs[sorted[k].pos].inserted = true;
    }
    ok = true;
    goto out;
oom:
    snprintf(err, errlen, "could not insert the cancel request: out of memory");
out:
    PQclear(res);
    free(sorted);
    for (int c = 0; c < INSERT_COLUMNS; c++)
        pgutil_array_free(&cols[c]);
    return ok;
}

bool request_store_get(struct db *db, const char *request_id, bool lock, struct request_row *row,
                       bool *found, char *err, size_t errlen)
{
    const char *values[1] = {request_id};
    PGresult *res = pgutil_query(db, lock ? sql_get_lock : sql_get, 1, values, NULL, NULL,
                                 PGRES_TUPLES_OK, "could not read the cancel request", err, errlen);
    if (res == NULL)
        return false;
    *found = PQntuples(res) == 1;
    if (*found)
        row_from_result(res, 0, 0, row);
    PQclear(res);
    return true;
}

bool request_store_get_many(struct db *db, const char *const *ids, size_t n,
                            struct request_row *rows, bool *found, char *err, size_t errlen)
{
    struct pgutil_array arr;
    struct id_pos *sorted = NULL;
    PGresult *res = NULL;
    bool ok = false;
    int len = 0;

    for (size_t i = 0; i < n; i++)
        found[i] = false;
    if (n == 0)
        return true;
    pgutil_array_init(&arr, PGUTIL_OID_TEXT);
    for (size_t i = 0; i < n; i++)
        pgutil_array_add(&arr, ids[i], strlen(ids[i]));
    const char *values[1] = {pgutil_array_data(&arr, &len)};
    int lengths[1] = {len}, formats[1] = {1};
    sorted = values[0] != NULL ? id_pos_sort(ids, n) : NULL;
    if (sorted == NULL) {
        snprintf(err, errlen, "could not read the cancel requests: out of memory");
        goto out;
    }
    res = pgutil_query(db, sql_get_many, 1, values, lengths, formats, PGRES_TUPLES_OK,
                       "could not read the cancel requests", err, errlen);
    if (res == NULL)
        goto out;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *id = PQgetvalue(res, r, 0);
        for (size_t k = id_pos_first(sorted, n, id); k < n && strcmp(sorted[k].id, id) == 0; k++) {
            row_from_result(res, r, 0, &rows[sorted[k].pos]);
            found[sorted[k].pos] = true;
        }
    }
    ok = true;
out:
    PQclear(res);
    free(sorted);
    pgutil_array_free(&arr);
    return ok;
}

bool request_store_claim(struct db *db, const char *request_id, int attempt, const char *worker,
                         int64_t lease_ms, int64_t skew_ms, struct request_row *row, bool *claimed,
                         char *err, size_t errlen)
{
    char lease[24], att[16], skew[24];
    const char *values[5] = {request_id, worker, I64(lease, lease_ms), I64(att, attempt),
                             I64(skew, skew_ms)};
    PGresult *res = pgutil_query(db, sql_claim, 5, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not claim the cancel request", err, errlen);
    if (res == NULL)
        return false;
    *claimed = PQntuples(res) == 1;
    if (*claimed) {
        int c = row_from_result(res, 0, 0, row);
        row->same_amount_done = atoi(PQgetvalue(res, 0, c));
        row->same_amount_open = atoi(PQgetvalue(res, 0, c + 1));
    }
    PQclear(res);
    return true;
}

bool request_store_finish(struct db *db, const struct request_row *row, const char *worker,
                          const struct attempt_answer *answer, const struct attempt_next *next,
                          bool *applied, char *err, size_t errlen)
{
    char att[16], nextms[24], status_text[16], latency[24], gen[16], ttl[24];
    const char *http = answer->http_status > 0 ? I64(status_text, answer->http_status) : NULL;
    const char *values[24] = {
        row->request_id,
        I64(att, row->attempts),
        worker,
        next->status,
        I64(nextms, next->next_attempt_ms),
        answer->error_code,
        answer->error_message,
        http,
        next->spend ? "true" : "false",
        I64(gen, next->key_generation),
        next->key_holds_error ? "true" : "false",
        next->inquire_first ? "true" : "false",
        next->final_check,
        I64(ttl, next->key_ttl_ms),
        next->found_by_inquiry ? "true" : "false",
        row->gateway,
        answer->verdict,
        I64(latency, answer->latency_ms),
        answer->replayed ? "true" : "false",
        next->decision,
        next->detail,
        answer->idempotency_key,
        answer->inquiry,
        answer->inquiry_detail,
    };
    PGresult *res = pgutil_query(db, sql_finish, 24, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not record the attempt's result", err, errlen);
    if (res == NULL)
        return false;
    *applied = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "1") == 0;
    PQclear(res);
    return true;
}

bool request_store_final_check(struct db *db, const char *request_id, int attempts,
                               int64_t next_attempt_ms, const char *final_status, bool *moved,
                               char *err, size_t errlen)
{
    char att[16], next[24];
    const char *values[4] = {request_id, I64(att, attempts), I64(next, next_attempt_ms),
                             final_status};
    PGresult *res = pgutil_query(db, sql_final_check, 4, values, NULL, NULL, PGRES_COMMAND_OK,
                                 "could not schedule the final check", err, errlen);
    if (res == NULL)
        return false;
    *moved = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return true;
}

bool request_store_postpone(struct db *db, const char *request_id, int attempt,
                            int64_t next_attempt_ms, bool *moved, char *err, size_t errlen)
{
    char att[16], next[24];
    const char *values[3] = {request_id, I64(att, attempt), I64(next, next_attempt_ms)};
    PGresult *res = pgutil_query(db, sql_postpone, 3, values, NULL, NULL, PGRES_COMMAND_OK,
                                 "could not postpone the cancel request", err, errlen);
    if (res == NULL)
        return false;
    *moved = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return true;
}

bool request_store_finalize_scheduled(struct db *db, const char *request_id, int attempt,
                                      const char *new_status, const char *error_code,
                                      const char *error_message, bool *done, char *err,
                                      size_t errlen)
{
    char att[16];
    const char *values[5] = {request_id, I64(att, attempt), new_status, error_code, error_message};
    PGresult *res =
        pgutil_query(db, sql_finalize_scheduled, 5, values, NULL, NULL, PGRES_COMMAND_OK,
                     "could not finish the cancel request", err, errlen);
    if (res == NULL)
        return false;
    *done = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return true;
}

bool request_store_take_expired_lease(struct db *db, struct request_row *row, bool *found,
                                      char *err, size_t errlen)
{
    char att[16];
    PGresult *res = pgutil_query(db, sql_take_expired, 0, NULL, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not take over an expired lease", err, errlen);
    if (res == NULL)
        return false;
    *found = PQntuples(res) == 1;
    if (!*found) {
        PQclear(res);
        return true;
    }
    char *old_owner = pgutil_get_str(res, 0, 0);
    row_from_result(res, 0, 1, row);
    PQclear(res);

    const char *values[5] = {row->request_id, I64(att, row->attempts),
                             old_owner != NULL ? old_owner : "unknown", row->gateway,
                             "the worker's lease expired before it recorded an answer"};
    res = pgutil_query(db, sql_log_abandoned, 5, values, NULL, NULL, PGRES_COMMAND_OK,
                       "could not append the ABANDONED attempt fact", err, errlen);
    if (res == NULL) {
        free(old_owner);
        request_row_clear(row);
        *found = false;
        return false;
    }
    PQclear(res);
    /* RETURNING gives the row after the takeover (no owner): hand the
     * caller the owner whose lease expired, for its log line. */
    free(row->lease_owner);
    row->lease_owner = old_owner;
    return true;
}

bool request_store_due_without_trigger(struct db *db, int64_t grace_ms, int64_t grace_cap_ms,
                                       int limit, char ***ids_out, size_t *n_out, char *err,
                                       size_t errlen)
{
    char grace[24], lim[16], cap[24];
    const char *values[3] = {I64(grace, grace_ms), I64(lim, limit),
                             I64(cap, grace_cap_ms > grace_ms ? grace_cap_ms : grace_ms)};

    *ids_out = NULL;
    *n_out = 0;
    PGresult *res = pgutil_query(db, sql_due_without_trigger, 3, values, NULL, NULL,
                                 PGRES_TUPLES_OK, "could not look for due requests", err, errlen);
    if (res == NULL)
        return false;
    size_t n = (size_t)PQntuples(res);
    char **ids = n > 0 ? calloc(n, sizeof(*ids)) : NULL;
    if (n > 0 && ids == NULL) {
        PQclear(res);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = strdup(PQgetvalue(res, (int)i, 0));
    PQclear(res);
    *ids_out = ids;
    *n_out = n;
    return true;
}

void request_store_free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n && ids != NULL; i++)
        free(ids[i]);
    free(ids);
}

bool request_store_same_amount(struct db *db, struct request_row *row, char *err, size_t errlen)
{
    char amount[24];
    const char *values[4] = {row->gateway, row->payment_key, I64(amount, row->amount),
                             row->request_id};
    PGresult *res = pgutil_query(db, sql_same_amount, 4, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not count the payment's other requests", err, errlen);
    if (res == NULL)
        return false;
    row->same_amount_done = atoi(PQgetvalue(res, 0, 0));
    row->same_amount_open = atoi(PQgetvalue(res, 0, 1));
    PQclear(res);
    return true;
}
