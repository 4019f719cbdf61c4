/*
 * ops_request: see ops_request.h.
 */
#include "ops/ops_request.h"

#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/i64.h"
#include "base/timeutil.h"
#include "core/attempt.h"
#include "event/cancel_event.h"
#include "store/pgutil.h"
#include "store/request_events.h"

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
/* The fence is the status and attempt count read under the row lock: an
 * UPDATE that matches nothing means someone else moved the request. */
static const char sql_rearm[] =
    "UPDATE cancel_request"
    "   SET status = 'SCHEDULED', budget_base = $2::integer, max_attempts = $3::integer,"
    "       next_attempt_at = to_timestamp($4::bigint / 1000.0),"
    "       deadline_at = to_timestamp($5::bigint / 1000.0),"
    "       lease_owner = NULL, lease_expires_at = NULL, finished_at = NULL,"
    /* What the gateway did comes first: the earlier attempts may have
     * refunded (or the key may hold an error), so the first new attempt
     * inquires before it sends anything. */
    "       inquire_first = true, final_check = NULL,"
    "       updated_at = now()"
    " WHERE request_id = $1 AND status = $6 AND attempts = $7::integer";

static const char sql_resolve[] =
    "UPDATE cancel_request"
    "   SET status = 'MANUALLY_RESOLVED', resolved_by = $2, resolved_note = $3,"
    "       finished_at = now(), updated_at = now()"
    " WHERE request_id = $1 AND status = $4 AND attempts = $5::integer";

static const char sql_action[] =
    "INSERT INTO operator_action (request_id, action, operator, note) VALUES ($1, $2, $3, $4)";
/* clang-format on */

void ops_format_span(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = -ms;
    int64_t s = ms / 1000, m = s / 60, h = m / 60, d = h / 24;
    if (d > 0)
        snprintf(buf, len, "%" PRId64 "d %" PRId64 "h", d, h % 24);
    else if (h > 0)
        snprintf(buf, len, "%" PRId64 "h %" PRId64 "m", h, m % 60);
    else if (m > 0)
        snprintf(buf, len, "%" PRId64 "m %" PRId64 "s", m, s % 60);
    else if (s > 0)
        snprintf(buf, len, "%" PRId64 "s", s);
    else
        snprintf(buf, len, "%" PRId64 "ms", ms);
}

static void fmt_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0 || !rfc3339_format(ms, buf, len))
        snprintf(buf, len, "unknown");
}

static bool is_success(const char *status)
{
    return strcmp(status, CANCEL_STATUS_SUCCEEDED) == 0 ||
           strcmp(status, CANCEL_STATUS_ALREADY_REFUNDED) == 0;
}

static bool is_failed(const char *status)
{
    return strcmp(status, CANCEL_STATUS_FAILED) == 0 ||
           strcmp(status, CANCEL_STATUS_EXHAUSTED) == 0;
}

/* Why a request in this status cannot be touched; NULL if it can be. Shared
 * by re-arm and resolve so the operator hears the same words. */
static const char *status_refusal(const char *status, bool scheduled_ok)
{
    if (strcmp(status, REQUEST_IN_FLIGHT) == 0)
        return "an attempt is in flight";
    if (is_success(status))
        return "the refund already succeeded";
    if (strcmp(status, CANCEL_STATUS_MANUALLY_RESOLVED) == 0)
        return "it was resolved by hand";
    bool open = strcmp(status, REQUEST_SCHEDULED) == 0 || strcmp(status, REQUEST_PENDING) == 0;
    if (open && !scheduled_ok)
        return "it is already scheduled (re-armed since this dead letter, or still retrying)";
    if (!open && !is_failed(status))
        return "its status is unknown to this version";
    return NULL;
}

void ops_rearm_decide(const struct ops_rearm_input *in, struct ops_rearm_plan *out)
{
    char when[RFC3339_MS_LEN], last[RFC3339_MS_LEN];

    memset(out, 0, sizeof(*out));
    const char *refusal = status_refusal(in->status, in->mode == OPS_REARM_REQUEUE);
    if (refusal != NULL) {
        if (strcmp(in->status, REQUEST_IN_FLIGHT) == 0)
            snprintf(out->why, sizeof(out->why),
                     "cannot re-arm request %s: it is IN_FLIGHT (attempt %d held by %s); wait for "
                     "its answer or for its lease to expire, then look again",
                     in->request_id, in->attempts,
                     in->lease_owner != NULL ? in->lease_owner : "a worker");
        else
            snprintf(out->why, sizeof(out->why), "cannot re-arm request %s: it is %s: %s",
                     in->request_id, in->status, refusal);
        return;
    }

    /* A new attempt must be able to start and finish (one lease) while the
     * gateway still remembers the key. */
    if (in->key_expires_ms > 0) {
        int64_t last_start = in->key_expires_ms - in->lease_ms;
        if (last_start - in->now_ms < OPS_REARM_MIN_WINDOW_MS) {
            fmt_time(in->key_expires_ms, when, sizeof(when));
            snprintf(out->why, sizeof(out->why),
                     "cannot re-arm request %s: its idempotency key %s at the gateway at %s; a "
                     "retry after that could refund twice. Check the payment at the gateway and "
                     "close the request with \"cancelctl resolve %s --note ...\"",
                     in->request_id, in->key_expires_ms <= in->now_ms ? "expired" : "expires", when,
                     in->request_id);
            return;
        }
    }

    out->ok = true;
    out->budget_base = in->attempts;
    out->max_attempts = in->policy_max_attempts;
    out->attempt = in->attempts + 1;
    out->next_attempt_ms = in->now_ms;
    out->deadline_ms = in->now_ms + in->policy_deadline_ms;
    if (in->key_expires_ms > 0) {
        int64_t last_start =
            attempt_last_start_ms(out->deadline_ms, in->key_expires_ms, in->lease_ms);
        if (last_start < out->deadline_ms) {
            out->deadline_ms = last_start;
            out->deadline_capped = true;
        }
    }
    fmt_time(out->deadline_ms, last, sizeof(last));
    snprintf(out->why, sizeof(out->why),
             "re-arm request %s (%s): attempt %d now, up to %d new attempts until %s%s",
             in->request_id, in->status, out->attempt, out->max_attempts, last,
             out->deadline_capped ? " (cut short by the idempotency key's lifetime)" : "");
}

bool ops_resolve_check(const char *request_id, const char *status, const char *lease_owner,
                       char *why, size_t whylen)
{
    const char *refusal = status_refusal(status, true);
    if (refusal == NULL) {
        snprintf(why, whylen, "resolve request %s (%s) by hand", request_id, status);
        return true;
    }
    if (strcmp(status, REQUEST_IN_FLIGHT) == 0)
        snprintf(why, whylen,
                 "cannot resolve request %s: it is IN_FLIGHT (held by %s); the gateway may be "
                 "refunding it right now. Wait for the attempt's answer, then look again",
                 request_id, lease_owner != NULL ? lease_owner : "a worker");
    else
        snprintf(why, whylen, "cannot resolve request %s: it is %s: %s", request_id, status,
                 refusal);
    return false;
}

void ops_next_step_words(const struct request_row *row, int64_t now_ms, int64_t lease_ms, char *buf,
                         size_t len)
{
    char when[RFC3339_MS_LEN], span[32], last[RFC3339_MS_LEN];
    const char *s = row->status;

    if (strcmp(s, REQUEST_SCHEDULED) == 0) {
        int64_t last_start =
            attempt_last_start_ms(row->deadline_at_ms, row->key_expires_at_ms, lease_ms);
        fmt_time(row->next_attempt_at_ms, when, sizeof(when));
        fmt_time(last_start, last, sizeof(last));
        ops_format_span(row->next_attempt_at_ms - now_ms, span, sizeof(span));
        int used = row->attempts - row->budget_base;
        if (row->next_attempt_at_ms > now_ms)
            snprintf(buf, len,
                     "attempt %d (%d of %d in this budget) starts at %s, in %s; no attempt "
                     "starts after %s",
                     row->attempts + 1, used + 1, row->max_attempts, when, span, last);
        else
            snprintf(buf, len,
                     "attempt %d (%d of %d in this budget) has been due since %s (%s ago); a "
                     "retry-consumer should take it at once. If it stays overdue, check "
                     "\"cancelctl status\" (outbox backlog, consumer lag)",
                     row->attempts + 1, used + 1, row->max_attempts, when, span);
    } else if (strcmp(s, REQUEST_PENDING) == 0) {
        fmt_time(row->next_attempt_at_ms, when, sizeof(when));
        snprintf(buf, len,
                 "the gateway accepted the refund and reports its result later; an inquiry at %s "
                 "confirms it (no attempt is spent while it is pending)",
                 when);
    } else if (strcmp(s, REQUEST_IN_FLIGHT) == 0) {
        snprintf(buf, len,
                 "attempt %d is running on %s; if that worker died, the reconciler takes the "
                 "request over when the lease ends and schedules the next attempt",
                 row->attempts, row->lease_owner != NULL ? row->lease_owner : "a worker");
    } else if (is_success(s)) {
        snprintf(buf, len, "nothing: the refund is done (%s)", s);
    } else if (strcmp(s, CANCEL_STATUS_MANUALLY_RESOLVED) == 0) {
        snprintf(buf, len, "nothing: an operator resolved it by hand");
    } else if (is_failed(s)) {
        snprintf(buf, len,
                 "nothing by itself: it is %s%s%s. Fix the cause, then \"cancelctl requeue %s\" "
                 "(or \"cancelctl dlq replay --request-id %s\"); if it was refunded another "
                 "way, \"cancelctl resolve %s --note ...\"",
                 s, row->last_error_code != NULL ? " after " : "",
                 row->last_error_code != NULL ? row->last_error_code : "", row->request_id,
                 row->request_id, row->request_id);
    } else {
        snprintf(buf, len, "unknown status %s", s);
    }
}

void ops_operator_identity(const char *flag, const char *env_operator, const char *env_user,
                           const char *host, char *buf, size_t len)
{
    char tmp[OPS_OPERATOR_MAX * 2 + 2];

    if (flag != NULL && flag[0] != '\0')
        snprintf(tmp, sizeof(tmp), "%s", flag);
    else if (env_operator != NULL && env_operator[0] != '\0')
        snprintf(tmp, sizeof(tmp), "%s", env_operator);
    else if (env_user != NULL && env_user[0] != '\0')
        snprintf(tmp, sizeof(tmp), "%s@%s", env_user,
                 host != NULL && host[0] != '\0' ? host : "unknown-host");
    else
        snprintf(tmp, sizeof(tmp), "unknown");
    for (char *p = tmp; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    }
    size_t n = strlen(tmp);
    if (n > OPS_OPERATOR_MAX)
        n = OPS_OPERATOR_MAX;
    /* Do not cut a UTF-8 sequence in half. */
    while (n > 0 && n < strlen(tmp) && ((unsigned char)tmp[n] & 0xc0) == 0x80)
        n--;
    snprintf(buf, len, "%.*s", (int)n, tmp);
}

void ops_operator_current(const char *flag, char *buf, size_t len)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    const char *user = getenv("USER");
    if (user == NULL || user[0] == '\0') {
        /* Cron jobs and containers often have no $USER; the uid still
         * names someone. */
        struct passwd *pw = getpwuid(getuid());
        user = pw != NULL ? pw->pw_name : NULL;
    }
    ops_operator_identity(flag, getenv("CANCELCTL_OPERATOR"), user, host, buf, len);
}

const char *ops_result_name(enum ops_result r)
{
    switch (r) {
    case OPS_APPLIED:
        return "APPLIED";
    case OPS_REFUSED:
        return "REFUSED";
    case OPS_NOT_FOUND:
        return "NOT_FOUND";
    }
    return "?";
}

void ops_rearm_plan_for(const struct config *cfg, const struct request_row *row,
                        enum ops_rearm_mode mode, int64_t now_ms, struct ops_rearm_plan *out)
{
    const struct retry_policy *policy = config_retry_policy_for(cfg, row->gateway);
    struct ops_rearm_input in = {
        .mode = mode,
        .request_id = row->request_id,
        .status = row->status,
        .attempts = row->attempts,
        .lease_owner = row->lease_owner,
        .now_ms = now_ms,
        .key_expires_ms = row->key_expires_at_ms,
        .lease_ms = cfg->consumers.retry.lease_ms,
        .policy_max_attempts = policy->max_attempts,
        .policy_deadline_ms = policy->deadline_ms,
    };
    ops_rearm_decide(&in, out);
}

static bool insert_action(struct db *db, const char *request_id, const char *action,
                          const char *operator_name, const char *note, char *err, size_t errlen)
{
    const char *values[4] = {request_id, action, operator_name, note};
    return pgutil_command(db, sql_action, 4, values, "could not record the operator action", err,
                          errlen);
}

bool ops_rearm_apply(struct db *db, const struct config *cfg, const struct request_row *row,
                     const struct ops_rearm_plan *plan, const char *action,
                     const char *operator_name, const char *note, bool *applied, char *err,
                     size_t errlen)
{
    char base[16], maxa[16], next[24], deadline[24], att[16];
    const char *values[7] = {row->request_id,
                             I64(base, plan->budget_base),
                             I64(maxa, plan->max_attempts),
                             I64(next, plan->next_attempt_ms),
                             I64(deadline, plan->deadline_ms),
                             row->status,
                             I64(att, row->attempts)};

    *applied = false;
    PGresult *res = pgutil_query(db, sql_rearm, 7, values, NULL, NULL, PGRES_COMMAND_OK,
                                 "could not re-arm the cancel request", err, errlen);
    if (res == NULL)
        return false;
    *applied = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!*applied)
        return true;

    struct cancel_request_fields req;
    request_events_fields(row, &req);
    if (!request_events_retry(db, cfg, &req, row->correlation_id, plan->attempt,
                              plan->next_attempt_ms, err, errlen))
        return false;
    return insert_action(db, row->request_id, action, operator_name, note, err, errlen);
}

static void report_init(struct ops_report *out, const struct request_row *row)
{
    snprintf(out->status_before, sizeof(out->status_before), "%s", row->status);
    snprintf(out->status_after, sizeof(out->status_after), "%s", row->status);
}

/* Start an operator action on request_id: clear out, open the transaction
 * (none for a dry run) and read the request, locked unless dry_run. *found
 * false fills out as NOT_FOUND; found, out's statuses are the row's. On
 * false (err set) nothing is left open. */
static bool begin_action(struct db *db, const char *request_id, bool dry_run,
                         struct request_row *row, bool *found, struct ops_report *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    *found = false;
    if (!dry_run && !db_begin(db, err, errlen))
        return false;
    if (!request_store_get(db, request_id, !dry_run, row, found, err, errlen)) {
        if (!dry_run)
            db_rollback(db);
        return false;
    }
    if (!*found) {
        out->result = OPS_NOT_FOUND;
        snprintf(out->message, sizeof(out->message), "no request with requestId %s", request_id);
        return true;
    }
    report_init(out, row);
    return true;
}

/* End the transaction begin_action() opened (none for a dry run): commit when the
 * action applied and ok, roll back otherwise; release row (may be NULL).
 * Returns false when !ok or the commit failed (err set). */
static bool end_action(struct db *db, bool dry_run, bool ok, const struct ops_report *out,
                       struct request_row *row, char *err, size_t errlen)
{
    if (!dry_run) {
        bool committed = ok && out->result == OPS_APPLIED && db_commit(db, err, errlen);
        if (!committed)
            db_rollback(db);
        if (ok && out->result == OPS_APPLIED)
            ok = committed;
    }
    if (row != NULL)
        request_row_clear(row);
    return ok;
}

bool ops_requeue(struct db *db, const struct config *cfg, const char *request_id,
                 const char *operator_name, const char *note, bool dry_run, struct ops_report *out,
                 char *err, size_t errlen)
{
    struct request_row row;
    bool found = false, applied = false;

    if (!begin_action(db, request_id, dry_run, &row, &found, out, err, errlen))
        return false;
    if (!found)
        goto done;
    ops_rearm_plan_for(cfg, &row, OPS_REARM_REQUEUE, wall_ms(), &out->plan);
    if (!out->plan.ok) {
        out->result = OPS_REFUSED;
        snprintf(out->message, sizeof(out->message), "%s", out->plan.why);
        goto done;
    }
    out->result = OPS_APPLIED;
    snprintf(out->message, sizeof(out->message), "%s%s", dry_run ? "would " : "", out->plan.why);
    snprintf(out->status_after, sizeof(out->status_after), "%s", REQUEST_SCHEDULED);
    if (!dry_run) {
        if (!ops_rearm_apply(db, cfg, &row, &out->plan, OPS_ACTION_REQUEUE, operator_name, note,
                             &applied, err, errlen))
            goto fail;
        if (!applied) {
            /* The lock makes this unreachable unless the row was changed
             * under it by hand; say so rather than pretend. */
            out->result = OPS_REFUSED;
            snprintf(out->message, sizeof(out->message),
                     "cannot re-arm request %s: it changed while being re-armed; look again",
                     request_id);
            snprintf(out->status_after, sizeof(out->status_after), "%s", row.status);
        }
    }
done:
    return end_action(db, dry_run, true, out, found ? &row : NULL, err, errlen);
fail:
    return end_action(db, dry_run, false, out, found ? &row : NULL, err, errlen);
}

bool ops_resolve(struct db *db, const struct config *cfg, const char *request_id,
                 const char *operator_name, const char *note, bool dry_run, struct ops_report *out,
                 char *err, size_t errlen)
{
    struct request_row row;
    bool found = false;
    char why[512], att[16];

    if (!begin_action(db, request_id, dry_run, &row, &found, out, err, errlen))
        return false;
    if (!found)
        goto done;
    if (!ops_resolve_check(request_id, row.status, row.lease_owner, why, sizeof(why))) {
        out->result = OPS_REFUSED;
        snprintf(out->message, sizeof(out->message), "%s", why);
        goto done;
    }
    out->result = OPS_APPLIED;
    snprintf(out->message, sizeof(out->message), "%s%s; an Outcome MANUALLY_RESOLVED is published",
             dry_run ? "would " : "", why);
    snprintf(out->status_after, sizeof(out->status_after), "%s", CANCEL_STATUS_MANUALLY_RESOLVED);
    if (!dry_run) {
        const char *values[5] = {request_id, operator_name, note, row.status,
                                 I64(att, row.attempts)};
        PGresult *res = pgutil_query(db, sql_resolve, 5, values, NULL, NULL, PGRES_COMMAND_OK,
                                     "could not resolve the cancel request", err, errlen);
        if (res == NULL)
            goto fail;
        bool applied = strcmp(PQcmdTuples(res), "1") == 0;
        PQclear(res);
        if (!applied) {
            out->result = OPS_REFUSED;
            snprintf(out->message, sizeof(out->message),
                     "cannot resolve request %s: it changed while being resolved; look again",
                     request_id);
            snprintf(out->status_after, sizeof(out->status_after), "%s", row.status);
            goto done;
        }
        if (!request_events_final(db, cfg, &row, CANCEL_STATUS_MANUALLY_RESOLVED, row.attempts,
                                  NULL, NULL, NULL, "cancelctl", err, errlen) ||
            !insert_action(db, request_id, OPS_ACTION_RESOLVE, operator_name, note, err, errlen))
            goto fail;
    }
done:
    return end_action(db, dry_run, true, out, found ? &row : NULL, err, errlen);
fail:
    return end_action(db, dry_run, false, out, found ? &row : NULL, err, errlen);
}
