/*
 * ops_replay: see ops_replay.h.
 */
#include "ops/ops_replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/i64.h"
#include "event/dlq.h"
#include "store/outbox.h"
#include "store/pgutil.h"
#include "store/request_store.h"

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
#define REPLAY_EVENT_TYPE "dlq-replay"

static const char sql_find[] =
    "SELECT action, operator,"
    "  to_char(replayed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    " FROM dlq_replay"
    " WHERE dlq_topic = $1 AND dlq_partition = $2::integer AND dlq_offset = $3::bigint";

/* ON CONFLICT: a concurrent replay of the same dead letter that committed
 * first wins; this one then rolls back everything it did. */
static const char sql_insert[] =
    "INSERT INTO dlq_replay (dlq_topic, dlq_partition, dlq_offset, request_id, reason, action,"
    "  operator, filter, detail)"
    " VALUES ($1, $2::integer, $3::bigint, $4, $5, $6, $7, $8::jsonb, $9)"
    " ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO NOTHING RETURNING id";
/* clang-format on */

const char *ops_replay_action_name(enum ops_replay_action a)
{
    switch (a) {
    case OPS_REPLAY_REPUBLISH:
        return "REPUBLISH";
    case OPS_REPLAY_REARM:
        return "REARM";
    case OPS_REPLAY_ALREADY:
        return "ALREADY_REPLAYED";
    case OPS_REPLAY_REFUSED:
        return "REFUSED";
    }
    return "?";
}

bool ops_replay_reason_rearms(const char *reason)
{
    return strcmp(reason, DLQ_REASON_FAILED) == 0 || strcmp(reason, DLQ_REASON_EXHAUSTED) == 0 ||
           strcmp(reason, DLQ_REASON_CONFIG_FAULT) == 0 ||
           strcmp(reason, DLQ_REASON_RECONCILE_MISMATCH) == 0;
}

bool ops_replay_target_check(const struct config *cfg, const struct ops_dlq_letter *l, char *target,
                             size_t targetlen, char *why, size_t whylen)
{
    target[0] = '\0';
    if (l->value == NULL) {
        snprintf(why, whylen, "cannot re-publish %s/%d/%" PRId64 ": the dead letter has no value",
                 l->topic, l->partition, l->offset);
        return false;
    }
    if (l->original_topic[0] == '\0') {
        snprintf(why, whylen,
                 "cannot re-publish %s/%d/%" PRId64 ": it has no dlq.original.topic header",
                 l->topic, l->partition, l->offset);
        return false;
    }
    /* Only back into the pipeline's own input topics: a forged or foreign
     * header must not make the operator publish somewhere else. */
    if (strcmp(l->original_topic, cfg->topics.cancel_failed.name) != 0 &&
        strcmp(l->original_topic, cfg->topics.retry.name) != 0) {
        snprintf(why, whylen,
                 "cannot re-publish %s/%d/%" PRId64 ": its original topic %s is neither the "
                 "cancel-failed nor the retry topic of this config",
                 l->topic, l->partition, l->offset, l->original_topic);
        return false;
    }
    snprintf(target, targetlen, "%s", l->original_topic);
    snprintf(why, whylen, "re-publish the original %zu bytes (key %s) to %s", l->value_len,
             l->key != NULL ? l->key : "none", target);
    return true;
}

/* *found: a dlq_replay row exists for l; why describes it. */
static bool find_previous(struct db *db, const struct ops_dlq_letter *l, bool *found, char *why,
                          size_t whylen, char *err, size_t errlen)
{
    char part[16], off[24];
    const char *values[3] = {l->topic, I64(part, l->partition), I64(off, l->offset)};
    PGresult *res = pgutil_query(db, sql_find, 3, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not look up earlier replays", err, errlen);
    if (res == NULL)
        return false;
    *found = PQntuples(res) > 0;
    if (*found)
        snprintf(why, whylen, "already replayed (%s) by %s at %s: nothing to do",
                 PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
    PQclear(res);
    return true;
}

/* Decide what replaying l means now, reading the request (FOR UPDATE when
 * lock). The caller has already checked for an earlier replay. */
static bool decide(struct db *db, const struct config *cfg, const struct ops_dlq_letter *l,
                   bool lock, struct request_row *row, bool *have_row,
                   struct ops_replay_result *out, char *err, size_t errlen)
{
    *have_row = false;
    if (dlq_reason_needs_human(l->reason)) {
        /* Re-publishing would only repeat what the pipeline already did. */
        out->action = OPS_REPLAY_REFUSED;
        snprintf(out->why, sizeof(out->why),
                 "cannot replay %s/%d/%" PRId64 ": a %s dead letter is for a human to act on "
                 "(docs/operations.md \"Webhook receiver\")",
                 l->topic, l->partition, l->offset, l->reason);
        return true;
    }
    if (!ops_replay_reason_rearms(l->reason)) {
        out->action = ops_replay_target_check(cfg, l, out->target_topic, sizeof(out->target_topic),
                                              out->why, sizeof(out->why))
                          ? OPS_REPLAY_REPUBLISH
                          : OPS_REPLAY_REFUSED;
        return true;
    }
    if (l->request_id[0] == '\0') {
        out->action = OPS_REPLAY_REFUSED;
        snprintf(out->why, sizeof(out->why),
                 "cannot re-arm %s/%d/%" PRId64 ": it has no dlq.request.id header", l->topic,
                 l->partition, l->offset);
        return true;
    }
    bool found = false;
    if (!request_store_get(db, l->request_id, lock, row, &found, err, errlen))
        return false;
    if (!found) {
        out->action = OPS_REPLAY_REFUSED;
        snprintf(out->why, sizeof(out->why), "cannot re-arm request %s: it is not in the database",
                 l->request_id);
        return true;
    }
    *have_row = true;
    ops_rearm_plan_for(cfg, row, OPS_REARM_REPLAY, wall_ms(), &out->plan);
    out->action = out->plan.ok ? OPS_REPLAY_REARM : OPS_REPLAY_REFUSED;
    snprintf(out->why, sizeof(out->why), "%s", out->plan.why);
    return true;
}

static bool republish(struct db *db, const struct ops_dlq_letter *l, const char *target, char *err,
                      size_t errlen)
{
    char of[400];
    snprintf(of, sizeof(of), "%s/%d/%" PRId64, l->topic, l->partition, l->offset);
    json_t *headers = json_pack("[[s,s]]", OPS_REPLAY_HEADER_OF, of);
    if (headers == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    struct outbox_msg msg = {
        .topic = target,
        .key = l->key,
        .value = l->value,
        .value_len = l->value_len,
        .headers = headers,
        .event_type = REPLAY_EVENT_TYPE,
        .event_id = NULL,
        .request_id = l->request_id[0] != '\0' ? l->request_id : NULL,
        .available_at_ms = 0,
    };
    bool ok = outbox_insert(db, &msg, err, errlen);
    json_decref(headers);
    return ok;
}

static bool record(struct db *db, const struct ops_dlq_letter *l, const char *action,
                   const char *operator_name, const json_t *filter, const char *detail,
                   bool *inserted, char *err, size_t errlen)
{
    char part[16], off[24];
    char *filter_text = filter != NULL ? json_dumps(filter, JSON_COMPACT) : NULL;
    const char *values[9] = {l->topic,
                             I64(part, l->partition),
                             I64(off, l->offset),
                             l->request_id[0] != '\0' ? l->request_id : NULL,
                             l->reason[0] != '\0' ? l->reason : "UNKNOWN",
                             action,
                             operator_name,
                             filter_text != NULL ? filter_text : "{}",
                             detail};
    PGresult *res = pgutil_query(db, sql_insert, 9, values, NULL, NULL, PGRES_TUPLES_OK,
                                 "could not record the replay", err, errlen);
    free(filter_text);
    if (res == NULL)
        return false;
    *inserted = PQntuples(res) == 1;
    PQclear(res);
    return true;
}

bool ops_replay_one(struct db *db, const struct config *cfg, const struct ops_dlq_letter *l,
                    const char *operator_name, const json_t *filter, bool dry_run,
                    struct ops_replay_result *out, char *err, size_t errlen)
{
    struct request_row row;
    bool have_row = false, previous = false, inserted = false, applied = false;
    char note[512];

    memset(out, 0, sizeof(*out));
    if (!dry_run && !db_begin(db, err, errlen))
        return false;
    if (!find_previous(db, l, &previous, out->why, sizeof(out->why), err, errlen))
        goto fail;
    if (previous) {
        out->action = OPS_REPLAY_ALREADY;
        goto finish;
    }
    if (!decide(db, cfg, l, !dry_run, &row, &have_row, out, err, errlen))
        goto fail;
    if (out->action == OPS_REPLAY_REFUSED || dry_run)
        goto finish;

    if (out->action == OPS_REPLAY_REPUBLISH) {
        if (!republish(db, l, out->target_topic, err, errlen))
            goto fail;
    } else {
        snprintf(note, sizeof(note), "dlq replay of %s/%d/%" PRId64 " (%s)", l->topic, l->partition,
                 l->offset, l->reason);
        if (!ops_rearm_apply(db, cfg, &row, &out->plan, OPS_ACTION_REPLAY, operator_name, note,
                             &applied, err, errlen))
            goto fail;
        if (!applied) {
            out->action = OPS_REPLAY_REFUSED;
            snprintf(out->why, sizeof(out->why),
                     "cannot re-arm request %s: it changed while being re-armed; look again",
                     l->request_id);
            goto finish;
        }
    }
    if (!record(db, l, out->action == OPS_REPLAY_REPUBLISH ? "REPUBLISHED" : "REARMED",
                operator_name, filter, out->why, &inserted, err, errlen))
        goto fail;
    if (!inserted) {
        /* Someone replayed the same dead letter at the same moment and
         * committed first: undo ours. */
        db_rollback(db);
        out->action = OPS_REPLAY_ALREADY;
        snprintf(out->why, sizeof(out->why), "already replayed by a concurrent run: nothing to do");
        if (have_row)
            request_row_clear(&row);
        return true;
    }
    if (!db_commit(db, err, errlen))
        goto fail;
    out->done = true;
    if (have_row)
        request_row_clear(&row);
    return true;

finish:
    if (!dry_run)
        db_rollback(db);
    if (have_row)
        request_row_clear(&row);
    return true;
fail:
    if (!dry_run)
        db_rollback(db);
    if (have_row)
        request_row_clear(&row);
    return false;
}
