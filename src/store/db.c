/*
 * db: libpq connection with reconnect and SQLSTATE classes. See db.h.
 */
#include "store/db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/duration.h"
#include "base/duration.h"
#include "base/i64.h"
#include "base/log.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/redact.h"
#include "base/signals.h"
#include "base/signals.h"
#include "service/metrics.h"

/* How long one sleep slice of the back-off lasts: a stop request is noticed
 * within this time even in the middle of a 30 s wait. */
#define DB_SLEEP_SLICE_MS 100

struct db {
    PGconn *conn;
    char *dsn;
    char *display_dsn; /* dsn with the password masked */
    char *application_name;
    int64_t connect_timeout_ms;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    int64_t statement_timeout_ms;

    int64_t backoff_ms;  /* the next back-off step (before jitter) */
    unsigned int seed;   /* rand_r state for jitter */
    bool ever_connected; /* to log "connected again" after an outage */
    bool broken;         /* a command saw the connection break */
    int64_t retry_at_ms; /* db_tend's next attempt (monotonic) */

    struct metrics *metrics; /* borrowed; its check "database" (db_set_metrics) */
    int reported;            /* what it was last told: 0 nothing, 1 up, 2 down */

    char **channels; /* LISTEN channels, re-issued on every connect */
    size_t nchannels;

    enum db_error_class last_class;
    char last_sqlstate[6];

    bool prepare;              /* database.prepared_statements */
    struct prepared *prepared; /* this session's, see prepared_name() */
    size_t nprepared;
    unsigned int prepared_seq; /* names s1, s2, ... within the process */
};

/* A statement prepared in the current session: sql is the caller's pointer
 * (a static string in practice), text a copy to check that the pointer still
 * holds the same statement. */
struct prepared {
    const char *sql;
    char *text;
    char name[16];
};

/* Beyond this many statements a session stops preparing new ones (they run
 * unnamed, as without the cache): a bound on memory here and in the server
 * for a caller that builds statements at run time. */
#define DB_MAX_PREPARED 256

/* SQL is laid out by hand, a clause a line; clang-format would cut it mid-clause. */
/* clang-format off */
static const char set_session_sql[] =
    "SELECT set_config('statement_timeout', $1, false), set_config('application_name', $2, false)";
/* clang-format on */

struct db *db_new(const struct config_database *cfg, const char *application_name)
{
    struct db *db = calloc(1, sizeof(*db));
    if (db == NULL)
        return NULL;
    const char *dsn = cfg->dsn ? cfg->dsn : "";
    /* Masking a one-letter password makes it longer: room for that. */
    size_t redacted_len = 2 * strlen(dsn) + 16;
    db->dsn = strdup(dsn);
    db->application_name = strdup(application_name ? application_name : "cancel-retry");
    db->display_dsn = malloc(redacted_len);
    if (db->dsn == NULL || db->application_name == NULL || db->display_dsn == NULL) {
        db_free(db);
        return NULL;
    }
    redact_dsn(dsn, db->display_dsn, redacted_len);
    db->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    db->reconnect_min_ms = cfg->reconnect_min_ms > 0 ? cfg->reconnect_min_ms : 200;
    db->reconnect_max_ms = cfg->reconnect_max_ms >= db->reconnect_min_ms ? cfg->reconnect_max_ms
                                                                         : db->reconnect_min_ms;
    db->statement_timeout_ms = cfg->statement_timeout_ms > 0 ? cfg->statement_timeout_ms : 0;
    db->prepare = cfg->prepared_statements;
    db->backoff_ms = db->reconnect_min_ms;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    db->seed = (unsigned int)ts.tv_nsec ^ (unsigned int)getpid();
    return db;
}

/* The server forgets prepared statements with its session. */
static void forget_prepared(struct db *db)
{
    for (size_t i = 0; i < db->nprepared; i++)
        free(db->prepared[i].text);
    db->nprepared = 0;
}

void db_free(struct db *db)
{
    if (db == NULL)
        return;
    forget_prepared(db);
    free(db->prepared);
    if (db->conn != NULL)
        PQfinish(db->conn);
    for (size_t i = 0; i < db->nchannels; i++)
        free(db->channels[i]);
    free(db->channels);
    free(db->dsn);
    free(db->display_dsn);
    free(db->application_name);
    free(db);
}

PGconn *db_conn(struct db *db)
{
    return db->conn;
}

bool db_is_connected(const struct db *db)
{
    return db->conn != NULL && !db->broken && PQstatus(db->conn) == CONNECTION_OK;
}

const char *db_display_dsn(const struct db *db)
{
    return db->display_dsn;
}

/* libpq's messages span lines ("...failed: Connection refused\n\tIs the
 * server running..."): fold them into one line for logs and err. */
static void one_line(const char *msg, char *out, size_t outlen)
{
    size_t o = 0;
    int gap = 0; /* 0 none, 1 space, 2 line break */

    if (outlen == 0)
        return;
    for (const char *p = msg ? msg : ""; *p != '\0' && o + 1 < outlen; p++) {
        if (*p == '\n' || *p == '\r') {
            gap = (o > 0) ? 2 : 0;
            continue;
        }
        if (*p == '\t' || *p == ' ') {
            if (gap == 0 && o > 0)
                gap = 1;
            continue;
        }
        if (gap == 2 && o + 3 < outlen) {
            out[o++] = ';';
            out[o++] = ' ';
        } else if (gap == 1 && o + 2 < outlen) {
            out[o++] = ' ';
        }
        gap = 0;
        out[o++] = *p;
    }
    out[o] = '\0';
}

void db_set_metrics(struct db *db, struct metrics *m)
{
    db->metrics = m;
    db->reported = 0;
}

/* Readiness follows the connection; only changes take the metrics lock. */
static void report(struct db *db, bool up, const char *why)
{
    if (db->metrics == NULL || db->reported == (up ? 1 : 2))
        return;
    db->reported = up ? 1 : 2;
    metrics_check_set(db->metrics, "database", up, why);
}

static void set_last(struct db *db, enum db_error_class c, const char *sqlstate)
{
    db->last_class = c;
    snprintf(db->last_sqlstate, sizeof(db->last_sqlstate), "%s", sqlstate ? sqlstate : "");
    if (c == DB_ERR_CONNECTION) {
        db->broken = true;
        report(db, false, "lost the connection to the database");
    }
}

/* Describe a failed result: "<primary message> (SQLSTATE xxxxx)". */
static void describe_failure(struct db *db, const PGresult *res, ExecStatusType expected, char *err,
                             size_t errlen)
{
    char msg[512];
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (primary != NULL) {
        one_line(primary, msg, sizeof(msg));
    } else if (res != NULL && PQresultStatus(res) != PGRES_FATAL_ERROR &&
               PQresultStatus(res) != PGRES_NONFATAL_ERROR) {
        /* Not an error at all, just not what the caller asked for: a bug. */
        snprintf(msg, sizeof(msg), "unexpected result %s (wanted %s)",
                 PQresStatus(PQresultStatus(res)), PQresStatus(expected));
    } else {
        one_line(db->conn ? PQerrorMessage(db->conn) : "no connection", msg, sizeof(msg));
    }
    if (sqlstate != NULL)
        snprintf(err, errlen, "%s (SQLSTATE %s)", msg, sqlstate);
    else
        snprintf(err, errlen, "%s", msg);
}

/* The name under which sql is prepared in this session, preparing it on
 * first use: the server parses and plans a statement once per session, not
 * once per execution (most of the cost of the short statements the
 * pipeline runs thousands of times a second). *name stays NULL when sql is
 * to run unnamed (disabled, cache full, out of memory). Returns NULL, or the
 * failed result of PQprepare (a syntax error, a dead connection), which the
 * caller treats as the statement's own. */
static PGresult *prepared_name(struct db *db, const char *sql, int nparams, const char **name)
{
    if (!db->prepare)
        return NULL;
    for (size_t i = 0; i < db->nprepared; i++) {
        struct prepared *p = &db->prepared[i];
        if (p->sql == sql && strcmp(p->text, sql) == 0) {
            *name = p->name;
            return NULL;
        }
    }
    if (db->nprepared == DB_MAX_PREPARED)
        return NULL;
    if (db->prepared == NULL) {
        db->prepared = calloc(DB_MAX_PREPARED, sizeof(*db->prepared));
        if (db->prepared == NULL)
            return NULL;
    }
    struct prepared *p = &db->prepared[db->nprepared];
    p->text = strdup(sql);
    if (p->text == NULL)
        return NULL;
    p->sql = sql;
    snprintf(p->name, sizeof(p->name), "s%u", ++db->prepared_seq);
    PGresult *res = PQprepare(db->conn, p->name, sql, nparams, NULL);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        free(p->text);
        return res != NULL ? res : PQmakeEmptyPGresult(db->conn, PGRES_FATAL_ERROR);
    }
    PQclear(res);
    db->nprepared++;
    *name = p->name;
    return NULL;
}

/* Keep res when its status is expected (into *out, or cleared), otherwise
 * classify and describe the failure and clear it. */
static bool check_result(struct db *db, PGresult *res, ExecStatusType expected, PGresult **out,
                         char *err, size_t errlen)
{
    if (res != NULL && PQresultStatus(res) == expected) {
        set_last(db, DB_ERR_NONE, NULL);
        if (out != NULL)
            *out = res;
        else
            PQclear(res);
        return true;
    }
    enum db_error_class c = db_classify(db->conn, res);
    if (c == DB_ERR_NONE)
        c = DB_ERR_OTHER; /* succeeded with another status than expected */
    set_last(db, c, res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL);
    describe_failure(db, res, expected, err, errlen);
    PQclear(res);
    return false;
}

bool db_exec_params(struct db *db, const char *sql, int nparams, const char *const *params,
                    const int *lengths, const int *formats, int result_format,
                    ExecStatusType expected, PGresult **out, char *err, size_t errlen)
{
    if (out != NULL)
        *out = NULL;
    if (db->conn == NULL || db->broken || PQstatus(db->conn) != CONNECTION_OK) {
        set_last(db, DB_ERR_CONNECTION, NULL);
        snprintf(err, errlen, "no connection to the database");
        return false;
    }
    const char *name = NULL;
    PGresult *res = prepared_name(db, sql, nparams, &name);
    if (res == NULL)
        res = name != NULL
                  ? PQexecPrepared(db->conn, name, nparams, params, lengths, formats, result_format)
                  : PQexecParams(db->conn, sql, nparams, NULL, params, lengths, formats,
                                 result_format);
    return check_result(db, res, expected, out, err, errlen);
}

bool db_send_params(struct db *db, const char *sql, int nparams, const char *const *params,
                    const int *lengths, const int *formats, int result_format, char *err,
                    size_t errlen)
{
    if (db->conn == NULL || db->broken || PQstatus(db->conn) != CONNECTION_OK) {
        set_last(db, DB_ERR_CONNECTION, NULL);
        snprintf(err, errlen, "no connection to the database");
        return false;
    }
    /* Prepared (once per session, a round trip of its own) like db_exec's:
     * the connection is free here, as the caller's contract says. */
    const char *name = NULL;
    PGresult *failed = prepared_name(db, sql, nparams, &name);
    if (failed != NULL) {
        /* PQprepare's failure, never the status asked for: described and
         * classified as the statement's own. */
        check_result(db, failed, PGRES_EMPTY_QUERY, NULL, err, errlen);
        return false;
    }
    int sent = name != NULL ? PQsendQueryPrepared(db->conn, name, nparams, params, lengths, formats,
                                                  result_format)
                            : PQsendQueryParams(db->conn, sql, nparams, NULL, params, lengths,
                                                formats, result_format);
    if (sent == 1)
        return true;
    set_last(db, PQstatus(db->conn) == CONNECTION_OK ? DB_ERR_OTHER : DB_ERR_CONNECTION, NULL);
    describe_failure(db, NULL, PGRES_COMMAND_OK, err, errlen);
    return false;
}

bool db_result_ready(struct db *db)
{
    /* A broken connection is "ready": db_take_result() then says so. */
    if (db->conn == NULL || PQconsumeInput(db->conn) == 0)
        return true;
    return PQisBusy(db->conn) == 0;
}

bool db_take_result(struct db *db, ExecStatusType expected, PGresult **out, char *err,
                    size_t errlen)
{
    if (out != NULL)
        *out = NULL;
    if (db->conn == NULL) {
        set_last(db, DB_ERR_CONNECTION, NULL);
        snprintf(err, errlen, "no connection to the database");
        return false;
    }
    PGresult *res = PQgetResult(db->conn);
    /* One statement, one result; then libpq's NULL that ends it. */
    PGresult *extra;
    while ((extra = PQgetResult(db->conn)) != NULL)
        PQclear(extra);
    return check_result(db, res, expected, out, err, errlen);
}

bool db_exec(struct db *db, const char *sql, int nparams, const char *const *params,
             ExecStatusType expected, PGresult **out, char *err, size_t errlen)
{
    return db_exec_params(db, sql, nparams, params, NULL, NULL, 0, expected, out, err, errlen);
}

enum db_error_class db_last_error_class(const struct db *db)
{
    return db->last_class;
}

bool db_failure_blames_message(const struct db *db)
{
    return db->last_class == DB_ERR_NONE || db_error_blames_message(db->last_class);
}

const char *db_last_sqlstate(const struct db *db)
{
    return db->last_sqlstate;
}

bool db_begin(struct db *db, char *err, size_t errlen)
{
    static const char sql[] = "BEGIN";
    return db_exec(db, sql, 0, NULL, PGRES_COMMAND_OK, NULL, err, errlen);
}

bool db_commit(struct db *db, char *err, size_t errlen)
{
    static const char sql[] = "COMMIT";
    PGresult *res = NULL;

    if (!db_exec(db, sql, 0, NULL, PGRES_COMMAND_OK, &res, err, errlen))
        return false;
    /* COMMIT of a transaction that had failed answers "ROLLBACK" with
     * PGRES_COMMAND_OK: it did not commit, say so. */
    bool ok = strcmp(PQcmdStatus(res), "COMMIT") == 0;
    PQclear(res);
    if (!ok) {
        set_last(db, DB_ERR_OTHER, NULL);
        snprintf(err, errlen, "the transaction was rolled back");
    }
    return ok;
}

void db_rollback(struct db *db)
{
    static const char sql[] = "ROLLBACK";

    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
        return;
    if (PQtransactionStatus(db->conn) == PQTRANS_IDLE)
        return;
    PQclear(PQexecParams(db->conn, sql, 0, NULL, NULL, NULL, NULL, 0));
}

/* LISTEN takes no parameters, so this is the one statement of the module
 * built at run time: the channel is quoted with PQescapeIdentifier, which
 * makes any string a single identifier. */
static bool listen_now(struct db *db, const char *channel, char *err, size_t errlen)
{
    char *ident = PQescapeIdentifier(db->conn, channel, strlen(channel));
    if (ident == NULL) {
        snprintf(err, errlen, "could not listen on \"%s\": %s", channel, PQerrorMessage(db->conn));
        return false;
    }
    size_t len = strlen(ident) + sizeof("LISTEN ");
    char *sql = malloc(len);
    if (sql == NULL) {
        PQfreemem(ident);
        snprintf(err, errlen, "could not listen on \"%s\": out of memory", channel);
        return false;
    }
    snprintf(sql, len, "LISTEN %s", ident);
    PQfreemem(ident);
    char why[512];
    bool ok = db_exec(db, sql, 0, NULL, PGRES_COMMAND_OK, NULL, why, sizeof(why));
    free(sql);
    if (!ok)
        snprintf(err, errlen, "could not listen on \"%s\": %s", channel, why);
    return ok;
}

/* Server notices (RAISE NOTICE, "relation already exists, skipping") would
 * otherwise go to stderr as bare text, breaking the one-JSON-object-per-line
 * log: route them into the log at debug level (warnings at warn). */
static void notice_to_log(void *arg, const PGresult *res)
{
    (void)arg;
    char msg[1024];
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    enum log_level level =
        (severity != NULL && strcmp(severity, "WARNING") == 0) ? LOG_WARN : LOG_DEBUG;
    if (!log_enabled(level))
        return;
    one_line(PQresultErrorMessage(res), msg, sizeof(msg));
    struct log_ctx ctx = LOG_CTX_INIT;
    json_t *fields = json_pack("{s:s}", "component", "postgresql");
    ctx.fields = fields;
    log_emit(level, &ctx, "%s", msg);
    json_decref(fields);
}

bool db_connect_once(struct db *db, char *err, size_t errlen)
{
    char timeout_s[24], why[512];

    if (db->conn != NULL) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    forget_prepared(db);
    db->broken = false;
    /* libpq counts whole seconds (and treats 1 as 2); round up. */
    snprintf(timeout_s, sizeof(timeout_s), "%lld",
             (long long)((db->connect_timeout_ms + 999) / 1000));
    /* Defaults first, then the DSN (expand_dbname) may override them, then
     * what must be ours: later entries win. Keepalives make a silently dead
     * server show up as a broken connection instead of a hang. */
    const char *const keys[] = {
        "connect_timeout",  "keepalives", "keepalives_idle",  "keepalives_interval",
        "keepalives_count", "dbname",     "application_name", NULL};
    const char *const values[] = {timeout_s, "1", "30", "10", "3", db->dsn, db->application_name,
                                  NULL};
    db->conn = PQconnectdbParams(keys, values, 1);
    if (db->conn == NULL) {
        snprintf(err, errlen, "could not connect to the database: out of memory");
        return false;
    }
    if (PQstatus(db->conn) != CONNECTION_OK) {
        one_line(PQerrorMessage(db->conn), why, sizeof(why));
        snprintf(err, errlen, "could not connect to the database: %s", why);
        PQfinish(db->conn);
        db->conn = NULL;
        set_last(db, DB_ERR_CONNECTION, NULL);
        db->reported = 0; /* the reason is this one, not "lost" */
        report(db, false, err);
        return false;
    }
    PQsetNoticeReceiver(db->conn, notice_to_log, NULL);
    char stmt_timeout[32];
    I64(stmt_timeout, db->statement_timeout_ms);
    const char *const params[] = {stmt_timeout, db->application_name};
    if (!db_exec(db, set_session_sql, 2, params, PGRES_TUPLES_OK, NULL, why, sizeof(why))) {
        snprintf(err, errlen, "could not set up the database session: %s", why);
        goto fail;
    }
    for (size_t i = 0; i < db->nchannels; i++) {
        if (!listen_now(db, db->channels[i], err, errlen))
            goto fail;
    }
    report(db, true, NULL);
    return true;
fail:
    /* A half set-up session (no LISTEN, wrong timeout) must not pass for a
     * good one: drop it so that the next attempt starts over. */
    PQfinish(db->conn);
    db->conn = NULL;
    if (db->last_class == DB_ERR_NONE)
        set_last(db, DB_ERR_OTHER, NULL);
    db->reported = 0;
    report(db, false, err);
    return false;
}

/* Sleep ms in slices, returning early (false) if a stop was requested. */
static bool sleep_unless_stopped(int64_t ms)
{
    while (ms > 0) {
        if (signals_stop_requested())
            return false;
        int64_t slice = ms < DB_SLEEP_SLICE_MS ? ms : DB_SLEEP_SLICE_MS;
        struct timespec ts = {(time_t)(slice / 1000), (long)(slice % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
    return !signals_stop_requested();
}

/* The next wait: half the step fixed, half random ("equal jitter"), so that
 * many processes that lost the same database do not come back in lockstep;
 * then the step doubles up to the cap. */
static int64_t next_backoff(struct db *db)
{
    int64_t step = db->backoff_ms;
    int64_t half = step / 2;
    int64_t wait = half + (half > 0 ? (int64_t)(rand_r(&db->seed) % (half + 1)) : 0);
    db->backoff_ms = step > db->reconnect_max_ms / 2 ? db->reconnect_max_ms : step * 2;
    return wait > 0 ? wait : 1;
}

static bool connect_with_backoff(struct db *db, int max_attempts, char *err, size_t errlen)
{
    if (db_is_connected(db))
        return true;
    for (int attempt = 1;; attempt++) {
        if (signals_stop_requested()) {
            if (err[0] == '\0' || attempt == 1)
                snprintf(err, errlen, "could not connect to the database: stop requested");
            return false;
        }
        if (db_connect_once(db, err, errlen)) {
            if (attempt > 1 || db->ever_connected)
                log_info("connected to the database again after %d attempt%s", attempt,
                         attempt == 1 ? "" : "s");
            db->ever_connected = true;
            db->backoff_ms = db->reconnect_min_ms;
            return true;
        }
        if (max_attempts > 0 && attempt >= max_attempts)
            return false;
        char pause[32];
        int64_t wait = next_backoff(db);
        struct log_ctx ctx = LOG_CTX_INIT;
        json_t *fields = json_pack("{s:s}", "database", db->display_dsn);
        ctx.fields = fields;
        log_emit(LOG_WARN, &ctx, "%s; retrying in %s", err,
                 duration_format(wait, pause, sizeof(pause)));
        json_decref(fields);
        if (!sleep_unless_stopped(wait))
            return false;
    }
}

bool db_check(struct db *db)
{
    if (!db_is_connected(db))
        return false;
    if (PQisBusy(db->conn))
        return true; /* a statement's result will tell */
    struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN, .revents = 0};
    if (poll(&pfd, 1, 0) == 1 &&
        (PQconsumeInput(db->conn) == 0 || PQstatus(db->conn) != CONNECTION_OK)) {
        set_last(db, DB_ERR_CONNECTION, NULL);
        return false;
    }
    return true;
}

bool db_tend(struct db *db)
{
    char err[512];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

    if (db_check(db))
        return true;
    if (now < db->retry_at_ms)
        return false;
    if (connect_with_backoff(db, 1, err, sizeof(err))) {
        db->retry_at_ms = 0;
        return true;
    }
    char pause[32];
    int64_t wait = next_backoff(db);
    db->retry_at_ms = now + wait;
    log_warn("%s; trying again in %s", err, duration_format(wait, pause, sizeof(pause)));
    return false;
}

bool db_ensure_connected(struct db *db, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    return connect_with_backoff(db, 0, err, errlen);
}

bool db_connect_retry(struct db *db, int max_attempts, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    return connect_with_backoff(db, max_attempts < 1 ? 1 : max_attempts, err, errlen);
}

bool db_listen(struct db *db, const char *channel, char *err, size_t errlen)
{
    for (size_t i = 0; i < db->nchannels; i++) {
        if (strcmp(db->channels[i], channel) == 0)
            return true;
    }
    char **grown = realloc(db->channels, (db->nchannels + 1) * sizeof(*grown));
    if (grown == NULL) {
        snprintf(err, errlen, "could not listen on \"%s\": out of memory", channel);
        return false;
    }
    db->channels = grown;
    db->channels[db->nchannels] = strdup(channel);
    if (db->channels[db->nchannels] == NULL) {
        snprintf(err, errlen, "could not listen on \"%s\": out of memory", channel);
        return false;
    }
    db->nchannels++;
    if (!db_is_connected(db))
        return true; /* issued at connect time */
    return listen_now(db, channel, err, errlen);
}

/* Take every queued notification; true if there was any. */
static bool drain_notifies(PGconn *conn)
{
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

static bool lost_connection(struct db *db, const char *what, char *err, size_t errlen)
{
    char why[512];
    one_line(db->conn ? PQerrorMessage(db->conn) : "no connection", why, sizeof(why));
    set_last(db, DB_ERR_CONNECTION, NULL);
    snprintf(err, errlen, "could not %s: %s", what, why);
    return false;
}

bool db_wait_notify(struct db *db, int64_t timeout_ms, bool *notified, char *err, size_t errlen)
{
    *notified = false;
    if (!db_is_connected(db))
        return lost_connection(db, "wait for notifications", err, errlen);
    /* Notifications may already sit in libpq's buffer (read along with an
     * earlier result): look before sleeping. */
    if (PQconsumeInput(db->conn) == 0)
        return lost_connection(db, "wait for notifications", err, errlen);
    if (drain_notifies(db->conn)) {
        *notified = true;
        return true;
    }
    int sock = PQsocket(db->conn);
    if (sock < 0)
        return lost_connection(db, "wait for notifications", err, errlen);
    struct pollfd pfd = {.fd = sock, .events = POLLIN, .revents = 0};
    int timeout = timeout_ms > 0x7fffffff ? 0x7fffffff : (int)(timeout_ms < 0 ? 0 : timeout_ms);
    int rc = poll(&pfd, 1, timeout);
    if (rc < 0) {
        if (errno == EINTR)
            return true;
        snprintf(err, errlen, "could not wait for notifications: %s", strerror(errno));
        set_last(db, DB_ERR_OTHER, NULL);
        return false;
    }
    if (rc == 0)
        return true;
    if (PQconsumeInput(db->conn) == 0 || PQstatus(db->conn) != CONNECTION_OK)
        return lost_connection(db, "wait for notifications", err, errlen);
    *notified = drain_notifies(db->conn);
    return true;
}
