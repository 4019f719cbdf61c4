/*
 * db: one libpq connection with reconnect-with-back-off, session settings,
 * SQLSTATE classification, and LISTEN/NOTIFY waiting.
 *
 * Rules every caller follows (they are why this module looks the way it does):
 * - SQL lives in static const char[] literals and runs through PQexecParams
 *   (db_exec / db_exec_params) with $n parameters; it is never built from
 *   strings. The one exception is migrate.c, which runs whole migration files.
 * - Transactions are short and explicit (db_begin ... db_commit). A
 *   transaction is NEVER held open across a gateway call or any other network
 *   wait: claim in one transaction, call the gateway with no transaction open,
 *   record the answer in a second one. A held transaction would keep row locks
 *   for as long as the gateway takes and pin the lease row against the
 *   reconciler.
 * - A db outage pauses work, it never loses it: on DB_ERR_CONNECTION the
 *   caller drops what it was doing (nothing was committed, no Kafka offset was
 *   committed either), calls db_ensure_connected(), which waits with back-off
 *   until the database is back (or a stop is requested), and starts over.
 *
 * A struct db is used by one thread at a time.
 */
#ifndef CR_DB_H
#define CR_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "config/config.h"

/* What went wrong, decided once here so that every caller reacts alike.
 * Whose fault it is decides what a consumer does with the message it was
 * working on (db_error_blames_message): the message's (DUPLICATE, DATA) means
 * dead-letter it, it will fail the same way every time; the server's or the
 * connection's (everything else) means pause and try the same message again. */
enum db_error_class {
    DB_ERR_NONE = 0,
    DB_ERR_RETRY_TX,   /* 40001 serialization failure, 40P01 deadlock: run the tx again */
    DB_ERR_CONNECTION, /* connection broken (class 08, 57P01..57P03, or libpq lost it) */
    DB_ERR_SERVER,     /* the server cannot work now: class 53 (resources), 57 (operator
                        * intervention, statement timeout), 58 (system), XX (internal) */
    DB_ERR_DUPLICATE,  /* 23505 unique violation: usually "already done" */
    DB_ERR_DATA,       /* a value the database refuses: class 22 (data exception: out of
                        * range, bad encoding, bad text), the rest of 23 (constraint), 54
                        * (program limit, e.g. an index row too big) */
    DB_ERR_OTHER,      /* anything else: a bug in our SQL, a permission problem */
};

struct db;

/* Create a handle for cfg (copied: cfg may be freed afterwards) that will
 * identify itself to the server as application_name (copied). Does not
 * connect. Returns NULL only when out of memory. */
struct db *db_new(const struct config_database *cfg, const char *application_name);

/* Close the connection and free everything. db_free(NULL) is a no-op. */
void db_free(struct db *db);

/* Report the state of the connection to m's readiness check "database"
 * (metrics_check_set): passing after a connect, failing with the reason
 * when a connect fails or a statement finds the connection gone. m is
 * borrowed and may be NULL (no reports). */
struct metrics;
void db_set_metrics(struct db *db, struct metrics *m);

/* Try to connect once (closing any previous connection). On success the
 * session has statement_timeout and application_name set and LISTENs on every
 * channel registered with db_listen(). On failure writes "could not connect
 * to the database: <libpq's reason>" to err; the DSN is never included. */
bool db_connect_once(struct db *db, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Return at once if the connection is good; otherwise reconnect, waiting
 * with exponential back-off (reconnect_min_ms doubling up to
 * reconnect_max_ms, with jitter) between attempts and logging each failure
 * as a warning ("could not connect to the database: ...; retrying in 2s").
 * Returns false only when a stop was requested (signals_stop_requested())
 * before a connection was made, with the last reason in err. */
bool db_ensure_connected(struct db *db, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* For a loop with nothing to run: notice now, without a round trip, a
 * connection the server closed while idle (a shutdown, a terminated
 * session), which libpq would only see at the next statement. Never blocks.
 * True while the connection is good; false (and the connection marked
 * broken) otherwise. Not while a db_send_params result is pending. */
bool db_check(struct db *db);

/* db_check, and when the connection is gone one connect attempt if the
 * back-off since the last failed one has passed (the back-off of
 * db_ensure_connected; each failure logged with the next wait). Waits at
 * most one connect attempt. True when connected. For idle loops that must
 * keep serving something else (a Kafka consumer) meanwhile. */
bool db_tend(struct db *db);

/* The same with a bound: gives up (returns false) after max_attempts failed
 * attempts (>= 1). For tools like cancelctl that should fail, not wait
 * forever, when the database is down. */
bool db_connect_retry(struct db *db, int max_attempts, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The live connection (borrowed; NULL before the first connect). Valid until
 * the next db_connect_once / db_ensure_connected / db_free. */
PGconn *db_conn(struct db *db);

/* True if there is a connection and libpq still believes in it. */
bool db_is_connected(const struct db *db);

/* The DSN with its password masked, for messages (owned by db). */
const char *db_display_dsn(const struct db *db);

/* Classify an SQLSTATE (five characters) alone: the pure part of
 * db_classify(). NULL or "" gives DB_ERR_OTHER. */
enum db_error_class db_classify_sqlstate(const char *sqlstate);

/* Classify a result of a command sent on conn. res may be NULL (libpq could
 * not even build a result). A successful result is DB_ERR_NONE; a failure on
 * a connection libpq reports as bad is DB_ERR_CONNECTION whatever the
 * SQLSTATE. */
enum db_error_class db_classify(PGconn *conn, const PGresult *res);

const char *db_error_class_name(enum db_error_class c);

/* True when an error of class c is about the data a statement carried (the
 * message being processed), not about the database: DB_ERR_DATA and
 * DB_ERR_DUPLICATE. The same statement with the same message fails the same
 * way forever, so the message must be dead-lettered (with the SQLSTATE in
 * dlq.error), never retried; every other class pauses the consumer until the
 * database works again. Callers that expect a duplicate ("already done")
 * look for DB_ERR_DUPLICATE first. */
bool db_error_blames_message(enum db_error_class c);

/* Run sql with text parameters params[0..nparams) (NULL entries are SQL
 * NULL) and check that the result status is exactly expected
 * (PGRES_COMMAND_OK or PGRES_TUPLES_OK). On success, if out is not NULL,
 * *out receives the result and the caller PQclear()s it; otherwise the result
 * is cleared here. On failure *out is set to NULL, err receives the server's
 * message with its SQLSTATE ("duplicate key value violates unique constraint
 * \"x\" (SQLSTATE 23505)"), for the caller to prefix with what it was doing,
 * and the class is kept for db_last_error_class(). A broken connection is
 * noticed here and repaired by the next db_ensure_connected(). */
bool db_exec(struct db *db, const char *sql, int nparams, const char *const *params,
             ExecStatusType expected, PGresult **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* db_exec with PQexecParams' full control: lengths/formats per parameter
 * (either may be NULL: all text) and the result format (0 text, 1 binary). */
bool db_exec_params(struct db *db, const char *sql, int nparams, const char *const *params,
                    const int *lengths, const int *formats, int result_format,
                    ExecStatusType expected, PGresult **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The same in two steps, for a caller with other work to do meanwhile (the
 * relay produces to Kafka while its next batch is read): db_send_params
 * sends the statement (PQsendQueryParams) and returns at once;
 * db_result_ready reads what has arrived without blocking and says whether
 * the result is complete; db_take_result waits for it if need be and checks
 * it like db_exec_params. Between a send and its take the connection runs
 * nothing else (libpq refuses a db_exec* in between): take first. */
bool db_send_params(struct db *db, const char *sql, int nparams, const char *const *params,
                    const int *lengths, const int *formats, int result_format, char *err,
                    size_t errlen) __attribute__((warn_unused_result));
bool db_result_ready(struct db *db);
bool db_take_result(struct db *db, ExecStatusType expected, PGresult **out, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/* The class of the last failure of db_exec, db_exec_params, db_begin or
 * db_commit, and its SQLSTATE ("" if none). DB_ERR_NONE after a success. */
enum db_error_class db_last_error_class(const struct db *db);
const char *db_last_sqlstate(const struct db *db);

/* After a step that used db failed: is the message it was working on at
 * fault? True when the last statement's error blames the message
 * (db_error_blames_message), and when the last statement succeeded (the step
 * failed on its own, building SQL parameters or an event from the message's
 * values, which will fail the same way next time). False for everything
 * that waiting can fix. The one rule of every consumer: true dead-letters
 * the message, false pauses and retries it. */
bool db_failure_blames_message(const struct db *db);

/* BEGIN / COMMIT. A failed COMMIT means the transaction did not commit (or,
 * on DB_ERR_CONNECTION, that nobody knows: callers must be idempotent). */
bool db_begin(struct db *db, char *err, size_t errlen) __attribute__((warn_unused_result));
bool db_commit(struct db *db, char *err, size_t errlen) __attribute__((warn_unused_result));

/* ROLLBACK if a transaction is open; best effort, for cleanup paths. */
void db_rollback(struct db *db);

/* LISTEN on channel (an SQL identifier, copied) now if connected, and again
 * after every reconnect. Notifications sent while the connection was down are
 * lost, so a listener must also poll on a timer. */
bool db_listen(struct db *db, const char *channel, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Wait up to timeout_ms (0 = just check) for a notification on any LISTENed
 * channel; *notified tells whether one (or more: they are drained and
 * coalesced) arrived. A signal interrupting the wait returns true with
 * *notified false, so the caller can look at its stop flag. Returns false
 * when the connection broke (db_last_error_class() is DB_ERR_CONNECTION). */
bool db_wait_notify(struct db *db, int64_t timeout_ms, bool *notified, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
