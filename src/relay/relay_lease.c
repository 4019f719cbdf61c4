/*
 * relay_lease: see relay_lease.h.
 */
#include "relay/relay_lease.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/i64.h"
#include "store/pgutil.h"

/* After a renewal that could not reach the database: try again this soon. */
#define RELAY_LEASE_RETRY_MS 500

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
/* Take the row when it is free, lapsed, or its holder's session is gone.
 * The FOR UPDATE in prev serializes standbys that try at the same moment:
 * the second one re-reads the row the first one wrote and finds it held.
 * A backend whose backend_start we may not see (another role without
 * pg_read_all_stats) counts as alive: then only the lease's end frees the
 * row, never a guess. */
static const char sql_acquire[] =
    "WITH prev AS ("
    "  SELECT l.name, l.holder, l.expires_at <= now() AS expired,"
    "         l.expires_at = '-infinity' AS released,"
    "         NOT EXISTS (SELECT 1 FROM pg_stat_activity a"
    "                      WHERE a.pid = l.holder_pid"
    "                        AND (a.backend_start IS NULL"
    "                             OR a.backend_start = l.holder_backend_start)) AS gone"
    "    FROM relay_leader l WHERE l.name = $1 FOR UPDATE)"
    " UPDATE relay_leader l"
    "    SET holder = $2, epoch = l.epoch + 1, holder_pid = pg_backend_pid(),"
    "        holder_backend_start = (SELECT backend_start FROM pg_stat_activity"
    "                                 WHERE pid = pg_backend_pid()),"
    "        acquired_at = now(), renewed_at = now(),"
    "        expires_at = now() + $3::bigint * interval '1 ms'"
    "   FROM prev"
    "  WHERE l.name = prev.name AND (prev.holder IS NULL OR prev.expired OR prev.gone)"
    " RETURNING l.epoch, coalesce(prev.holder, ''), prev.expired, prev.gone, prev.released";

/* Renew only the epoch we hold: a relay that lost the row cannot extend the
 * new holder's lease. A lapsed lease that nobody took yet is still ours. */
static const char sql_renew[] =
    "UPDATE relay_leader SET renewed_at = now(), expires_at = now() + $4::bigint * interval '1 ms'"
    " WHERE name = $1 AND holder = $2 AND epoch = $3::bigint";

/* '-infinity' rather than now(): lapsed either way, and the next holder can
 * tell a hand-over from a failure. */
static const char sql_release[] =
    "UPDATE relay_leader SET expires_at = '-infinity'"
    " WHERE name = $1 AND holder = $2 AND epoch = $3::bigint";
/* clang-format on */

void relay_lease_init(struct relay_lease *l, const char *holder, int64_t lease_ms)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->holder, sizeof(l->holder), "%s", holder != NULL ? holder : "");
    l->lease_ms = lease_ms;
}

bool relay_lease_valid(const struct relay_lease *l, int64_t now_ms)
{
    return l->epoch > 0 && now_ms < l->valid_until_ms;
}

bool relay_lease_renew_due(const struct relay_lease *l, int64_t now_ms)
{
    return l->epoch > 0 && now_ms >= l->renew_at_ms;
}

void relay_lease_renewed(struct relay_lease *l, int64_t sent_ms)
{
    l->valid_until_ms = sent_ms + l->lease_ms - l->lease_ms / 5;
    l->renew_at_ms = sent_ms + l->lease_ms / 3;
}

void relay_lease_drop(struct relay_lease *l)
{
    l->epoch = 0;
    l->valid_until_ms = 0;
    l->renew_at_ms = 0;
}

enum relay_lease_result relay_lease_acquire(struct relay_lease *l, struct db *db,
                                            struct relay_lease_takeover *why, char *err,
                                            size_t errlen)
{
    char lease[24];
    I64(lease, l->lease_ms);
    const char *values[3] = {RELAY_LEASE_NAME, l->holder, lease};
    int64_t sent = mono_ms();
    PGresult *res = pgutil_query(db, sql_acquire, 3, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not try the relay lease", err, errlen);
    if (res == NULL)
        return RELAY_LEASE_DB_ERROR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return RELAY_LEASE_OTHER;
    }
    l->epoch = pgutil_get_i64(res, 0, 0);
    relay_lease_renewed(l, sent);
    if (why != NULL) {
        snprintf(why->previous, sizeof(why->previous), "%s", PQgetvalue(res, 0, 1));
        why->expired = PQgetvalue(res, 0, 2)[0] == 't';
        why->session_gone = PQgetvalue(res, 0, 3)[0] == 't';
        why->released = PQgetvalue(res, 0, 4)[0] == 't';
    }
    PQclear(res);
    return RELAY_LEASE_HELD;
}

enum relay_lease_result relay_lease_renew(struct relay_lease *l, struct db *db, char *err,
                                          size_t errlen)
{
    char epoch[24], lease[24];

    if (l->epoch <= 0) {
        snprintf(err, errlen, "the relay lease is not held");
        return RELAY_LEASE_OTHER;
    }
    I64(epoch, l->epoch);
    I64(lease, l->lease_ms);
    const char *values[4] = {RELAY_LEASE_NAME, l->holder, epoch, lease};
    int64_t sent = mono_ms();
    PGresult *res = pgutil_query(db, sql_renew, 4, values, NULL, NULL, PGRES_COMMAND_OK,
                                 "could not renew the relay lease", err, errlen);
    if (res == NULL) {
        l->renew_at_ms = mono_ms() + RELAY_LEASE_RETRY_MS;
        return RELAY_LEASE_DB_ERROR;
    }
    bool renewed = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!renewed) {
        snprintf(err, errlen, "another relay took the lease (epoch %" PRId64 " is no longer ours)",
                 l->epoch);
        relay_lease_drop(l);
        return RELAY_LEASE_OTHER;
    }
    relay_lease_renewed(l, sent);
    return RELAY_LEASE_HELD;
}

void relay_lease_release(struct relay_lease *l, struct db *db)
{
    char epoch[24], err[256];

    if (l->epoch <= 0)
        return;
    I64(epoch, l->epoch);
    const char *values[3] = {RELAY_LEASE_NAME, l->holder, epoch};
    /* Failing here only delays the next relay until the lease lapses. */
    bool released = db_is_connected(db) &&
                    pgutil_command(db, sql_release, 3, values, "could not release the relay lease",
                                   err, sizeof(err));
    (void)released;
    relay_lease_drop(l);
}
