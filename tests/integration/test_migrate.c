/*
 * cancelctl migrate and the schema it creates, against the real PostgreSQL.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "harness.h"
#include "store/request_store.h"

static struct itest t;

static void setup(void)
{
    itest_setup(&t, "migrate");
}

static void teardown(void)
{
    itest_teardown(&t);
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 120);

static void migrate_ok(const char *extra_arg, const char *extra_val, struct itest_result *r)
{
    const char *argv[] = {itest_cancelctl(), "--config", t.config_path, "migrate",
                          extra_arg,         extra_val,  NULL};
    itest_run(r, 60000, argv, NULL);
}

static int count_migration_files(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 9 && de->d_name[4] == '_' && strcmp(de->d_name + len - 4, ".sql") == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void migrations_dir(char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/schemas/db", itest_require_env("CR_SOURCE_ROOT"));
}

Test(migrate, applies_everything_once)
{
    char dir[4096];
    struct itest_result r;
    migrations_dir(dir, sizeof(dir));
    int files = count_migration_files(dir);
    cr_assert_gt(files, 0);

    migrate_ok(NULL, NULL, &r);
    cr_assert_eq(r.exit_code, 0, "first run: exit %d\nstdout: %s\nstderr: %s", r.exit_code, r.out,
                 r.err);
    cr_expect_not_null(strstr(r.out, "applied 0001_init.sql"), "stdout: %s", r.out);
    itest_result_free(&r);
    cr_expect_eq(itest_query_int(&t, "SELECT count(*) FROM schema_migrations", 0, NULL), files);

    migrate_ok("--json", NULL, &r);
    cr_assert_eq(r.exit_code, 0, "second run: exit %d\nstderr: %s", r.exit_code, r.err);
    cr_expect_not_null(strstr(r.out, "\"applied\": []"), "second run applied something: %s", r.out);
    itest_result_free(&r);
    cr_expect_eq(itest_query_int(&t, "SELECT count(*) FROM schema_migrations", 0, NULL), files);
}

Test(migrate, concurrent_runs_apply_each_file_once)
{
    const char *argv[] = {itest_cancelctl(), "--config", t.config_path, "migrate", NULL};
    struct itest_proc a, b;
    struct itest_result ra, rb;
    char dir[4096];
    migrations_dir(dir, sizeof(dir));

    itest_start(&a, argv, NULL);
    itest_start(&b, argv, NULL);
    itest_finish(&a, 60000, &ra);
    itest_finish(&b, 60000, &rb);
    cr_expect_eq(ra.exit_code, 0, "a: %s", ra.err);
    cr_expect_eq(rb.exit_code, 0, "b: %s", rb.err);
    itest_result_free(&ra);
    itest_result_free(&rb);
    cr_expect_eq(itest_query_int(&t, "SELECT count(*) FROM schema_migrations", 0, NULL),
                 count_migration_files(dir));
}

static void migrate_or_fail(void)
{
    struct itest_result r;
    migrate_ok(NULL, NULL, &r);
    cr_assert_eq(r.exit_code, 0, "migrate: exit %d: %s", r.exit_code, r.err);
    itest_result_free(&r);
}

struct table_case {
    char name[32];
};

ParameterizedTestParameters(migrate, every_table_exists)
{
    static struct table_case tables[] = {
        {"schema_migrations"}, {"cancel_request"}, {"retry_attempt_log"}, {"outbox"},
        {"dlq_replay"},        {"alert_sent"},     {"operator_action"},   {"reconcile_run"},
        {"reconcile_mismatch"}};
    return cr_make_param_array(struct table_case, tables, sizeof(tables) / sizeof(tables[0]));
}

ParameterizedTest(struct table_case *c, migrate, every_table_exists)
{
    migrate_or_fail();
    const char *params[] = {c->name};
    char *v = itest_query_value(&t, "SELECT to_regclass($1)::text", 1, params);
    cr_expect_not_null(v, "table %s missing", c->name);
    free(v);
}

static const char insert_request_sql[] =
    "INSERT INTO cancel_request (request_id, gateway, payment_key, amount, currency, reason,"
    " source_event_id, source_event, max_attempts, deadline_at, next_attempt_at, status)"
    " VALUES ($1, 'toss', 'pay_1', $2::bigint, $3, 'customer cancelled', 'evt-' || $1,"
    " '\\x7b7d'::bytea, 5, now() + interval '1 hour', now(), $4)";

static bool insert_request(const char *id, const char *amount, const char *currency,
                           const char *status, char *err, size_t errlen)
{
    const char *params[] = {id, amount, currency, status};
    return itest_exec(&t, insert_request_sql, 4, params, err, errlen);
}

Test(migrate, attempt_log_is_append_only)
{
    char err[512];
    migrate_or_fail();
    cr_assert(insert_request("req-1", "1000", "KRW", "SCHEDULED", err, sizeof(err)), "%s", err);
    cr_assert(itest_exec(&t,
                         "INSERT INTO retry_attempt_log (request_id, attempt, event, worker,"
                         " gateway) VALUES ('req-1', 1, 'STARTED', 'w1', 'toss')",
                         0, NULL, err, sizeof(err)),
              "%s", err);

    const char *const refused[][2] = {
        {"UPDATE retry_attempt_log SET worker = 'w2'", "UPDATE"},
        {"DELETE FROM retry_attempt_log", "DELETE"},
        {"TRUNCATE retry_attempt_log", "TRUNCATE"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "retry_attempt_log is append-only: %s refused", refused[i][1]);
        cr_expect_not(itest_exec(&t, refused[i][0], 0, NULL, err, sizeof(err)), "%s succeeded",
                      refused[i][0]);
        cr_expect_not_null(strstr(err, want), "%s: %s", refused[i][0], err);
    }
    cr_expect_eq(
        itest_query_int(&t, "SELECT count(*) FROM retry_attempt_log WHERE worker = 'w1'", 0, NULL),
        1);
}

struct bad_request {
    char id[16];
    char amount[16];
    char currency[8];
    char status[16];
    char sqlstate[8];
};

ParameterizedTestParameters(migrate, cancel_request_refuses_bad_rows)
{
    static struct bad_request cases[] = {
        {"r-zero", "0", "KRW", "SCHEDULED", "23514"},
        {"r-neg", "-5", "KRW", "SCHEDULED", "23514"},
        {"r-lower", "100", "usd", "SCHEDULED", "23514"},
        {"r-short", "100", "US", "SCHEDULED", "23514"},
        {"r-status", "100", "USD", "BOGUS", "23514"},
        {"r bad id", "100", "USD", "SCHEDULED", "23514"},
        {"dup", "100", "USD", "SCHEDULED", "23505"},
    };
    return cr_make_param_array(struct bad_request, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_request *c, migrate, cancel_request_refuses_bad_rows)
{
    char err[512], want[32];
    migrate_or_fail();
    cr_assert(insert_request("dup", "100", "USD", "SCHEDULED", err, sizeof(err)), "%s", err);
    cr_expect_not(insert_request(c->id, c->amount, c->currency, c->status, err, sizeof(err)),
                  "accepted id=%s amount=%s currency=%s status=%s", c->id, c->amount, c->currency,
                  c->status);
    snprintf(want, sizeof(want), "SQLSTATE %s", c->sqlstate);
    cr_expect_not_null(strstr(err, want), "want %s, got %s", want, err);
    /* And db.c classifies it the way callers rely on. */
    enum db_error_class want_class =
        strcmp(c->sqlstate, "23505") == 0 ? DB_ERR_DUPLICATE : DB_ERR_DATA;
    cr_expect_eq(db_classify_sqlstate(c->sqlstate), want_class);
}

static struct db *connect_db_prepared(bool prepared)
{
    struct config_database cfg = {0};
    char err[512];
    cfg.dsn = t.dsn;
    cfg.connect_timeout_ms = 5000;
    cfg.reconnect_min_ms = 50;
    cfg.reconnect_max_ms = 500;
    cfg.statement_timeout_ms = 10000;
    cfg.prepared_statements = prepared;
    struct db *db = db_new(&cfg, "test_migrate");
    cr_assert_not_null(db);
    cr_assert(db_connect_once(db, err, sizeof(err)), "%s", err);
    return db;
}

static struct db *connect_db(void)
{
    return connect_db_prepared(true);
}

static long long prepared_count(struct db *db, const char *like)
{
    char err[512];
    PGresult *res = NULL;
    static const char sql[] = "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE $1";
    const char *params[] = {like};
    cr_assert(db_exec(db, sql, 1, params, PGRES_TUPLES_OK, &res, err, sizeof(err)), "%s", err);
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* database.prepared_statements: a statement is prepared once per session
 * and runs again by name; a new session (after the old one was killed)
 * prepares it again instead of naming one the server forgot; off, nothing
 * is prepared. */
Test(migrate, statements_are_prepared_once_per_session)
{
    static const char sql[] = "SELECT $1::int + 1 AS prepared_probe";
    const char *params[] = {"41"};
    char err[512];
    PGresult *res = NULL;

    struct db *db = connect_db_prepared(true);
    for (int i = 0; i < 3; i++) {
        cr_assert(db_exec(db, sql, 1, params, PGRES_TUPLES_OK, &res, err, sizeof(err)), "%s", err);
        cr_expect_str_eq(PQgetvalue(res, 0, 0), "42");
        PQclear(res);
    }
    cr_expect_eq(prepared_count(db, "%prepared_probe%"), 1);

    char pid[16];
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(db_conn(db)));
    const char *kill[] = {pid};
    cr_assert(itest_exec(&t, "SELECT pg_terminate_backend($1::int)", 1, kill, err, sizeof(err)),
              "%s", err);
    cr_expect_not(db_exec(db, sql, 1, params, PGRES_TUPLES_OK, NULL, err, sizeof(err)),
                  "a killed session still answered");
    cr_assert(db_connect_once(db, err, sizeof(err)), "%s", err);
    cr_assert(db_exec(db, sql, 1, params, PGRES_TUPLES_OK, NULL, err, sizeof(err)), "%s", err);
    cr_expect_eq(prepared_count(db, "%prepared_probe%"), 1);
    db_free(db);

    db = connect_db_prepared(false);
    cr_assert(db_exec(db, sql, 1, params, PGRES_TUPLES_OK, NULL, err, sizeof(err)), "%s", err);
    cr_expect_eq(prepared_count(db, "%prepared_probe%"), 0);
    db_free(db);
}

Test(migrate, outbox_insert_notifies_listeners)
{
    char err[512];
    bool notified = true;
    migrate_or_fail();
    struct db *db = connect_db();
    cr_assert(db_listen(db, "cancel_retry_outbox", err, sizeof(err)), "%s", err);

    cr_assert(db_wait_notify(db, 200, &notified, err, sizeof(err)), "%s", err);
    cr_expect_not(notified, "a notification without any insert");

    /* NOTIFY is delivered at commit: nothing while the insert is open. */
    cr_assert(itest_exec(&t, "BEGIN", 0, NULL, err, sizeof(err)), "%s", err);
    cr_assert(itest_exec(&t, "INSERT INTO outbox (topic, msg_key, value) VALUES ('t', 'k', 'v')", 0,
                         NULL, err, sizeof(err)),
              "%s", err);
    cr_assert(db_wait_notify(db, 300, &notified, err, sizeof(err)), "%s", err);
    cr_expect_not(notified, "notified before commit");
    cr_assert(itest_exec(&t, "COMMIT", 0, NULL, err, sizeof(err)), "%s", err);
    cr_assert(db_wait_notify(db, 5000, &notified, err, sizeof(err)), "%s", err);
    cr_expect(notified, "no notification after the outbox insert committed");

    /* The session survives and keeps listening. */
    cr_assert(itest_exec(&t, "INSERT INTO outbox (topic, msg_key, value) VALUES ('t', 'k', 'v')", 0,
                         NULL, err, sizeof(err)),
              "%s", err);
    cr_assert(db_wait_notify(db, 5000, &notified, err, sizeof(err)), "%s", err);
    cr_expect(notified, "no notification for the second insert");
    db_free(db);
}

Test(migrate, listen_survives_reconnect)
{
    char err[512];
    bool notified = false;
    migrate_or_fail();
    struct db *db = connect_db();
    cr_assert(db_listen(db, "cancel_retry_outbox", err, sizeof(err)), "%s", err);

    /* Kill our session from another one: the next wait reports the broken
     * connection, db_ensure_connected() repairs it and LISTENs again. */
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(db_conn(db)));
    const char *params[] = {pid};
    cr_assert(itest_exec(&t, "SELECT pg_terminate_backend($1::int)", 1, params, err, sizeof(err)),
              "%s", err);
    bool ok = db_wait_notify(db, 5000, &notified, err, sizeof(err));
    if (ok) /* the termination notice may arrive on the next read */
        ok = db_wait_notify(db, 2000, &notified, err, sizeof(err));
    cr_expect_not(ok, "the broken connection went unnoticed");
    cr_expect_eq(db_last_error_class(db), DB_ERR_CONNECTION);
    cr_assert(db_ensure_connected(db, err, sizeof(err)), "%s", err);

    cr_assert(itest_exec(&t, "INSERT INTO outbox (topic, msg_key, value) VALUES ('t', 'k', 'v')", 0,
                         NULL, err, sizeof(err)),
              "%s", err);
    cr_assert(db_wait_notify(db, 5000, &notified, err, sizeof(err)), "%s", err);
    cr_expect(notified, "no notification after reconnecting");
    db_free(db);
}

/* Copy the real migrations into dir. */
static void copy_migrations(const char *dir)
{
    char src[4096], cmd[9000];
    migrations_dir(src, sizeof(src));
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s'/*.sql '%s'/", dir, src, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(migrate, refuses_a_changed_migration)
{
    char dir[4200], file[4300];
    struct itest_result r;
    snprintf(dir, sizeof(dir), "%s/migrations", t.dir);
    copy_migrations(dir);

    migrate_ok("--migrations-dir", dir, &r);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    itest_result_free(&r);

    snprintf(file, sizeof(file), "%s/0001_init.sql", dir);
    FILE *f = fopen(file, "a");
    cr_assert_not_null(f);
    fputs("-- edited after it shipped\n", f);
    fclose(f);

    migrate_ok("--migrations-dir", dir, &r);
    cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
    cr_expect_not_null(
        strstr(r.err, "cannot apply migrations: 0001_init.sql was changed after it was applied"),
        "stderr: %s", r.err);
    itest_result_free(&r);

    /* --status shows it too, and fails. */
    const char *argv[] = {itest_cancelctl(), "--config",         t.config_path, "migrate",
                          "--status",        "--migrations-dir", dir,           NULL};
    itest_run(&r, 60000, argv, NULL);
    cr_expect_eq(r.exit_code, 1);
    cr_expect_not_null(strstr(r.out, "changed"), "stdout: %s", r.out);
    itest_result_free(&r);
}

Test(migrate, failed_migration_leaves_no_trace)
{
    char dir[4200], file[4300];
    struct itest_result r;
    snprintf(dir, sizeof(dir), "%s/migrations", t.dir);
    copy_migrations(dir);
    snprintf(file, sizeof(file), "%s/9999_broken.sql", dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs("CREATE TABLE half_done (x int);\n\nSELEC 1;\n", f);
    fclose(f);

    migrate_ok("--migrations-dir", dir, &r);
    cr_expect_eq(r.exit_code, 1);
    cr_expect_not_null(strstr(r.err, "could not apply migration 9999_broken.sql: syntax error"),
                       "stderr: %s", r.err);
    cr_expect_not_null(strstr(r.err, "at line 3"), "stderr: %s", r.err);
    itest_result_free(&r);
    char *v = itest_query_value(&t, "SELECT to_regclass('half_done')::text", 0, NULL);
    cr_expect_null(v, "the failed migration's table was kept");
    free(v);
    cr_expect_eq(itest_query_int(&t,
                                 "SELECT count(*) FROM schema_migrations WHERE version = "
                                 "'9999_broken'",
                                 0, NULL),
                 0);
}

Test(migrate, unreachable_database_exits_1)
{
    /* A config whose DSN points at a closed port. */
    char *tpl = strdup(itest_default_config);
    cr_assert_not_null(tpl);
    char bad_dsn_cfg[8192];
    const char *mark = strstr(tpl, "@DSN@");
    cr_assert_not_null(mark);
    snprintf(bad_dsn_cfg, sizeof(bad_dsn_cfg),
             "%.*s'host=127.0.0.1 port=1 user=x password=s3cret "
             "dbname=x connect_timeout=2'%s",
             (int)(mark - tpl), tpl, mark + 5);
    free(tpl);
    itest_write_config(&t, bad_dsn_cfg);
    struct itest_result r;
    migrate_ok(NULL, NULL, &r);
    cr_expect_eq(r.exit_code, 1);
    cr_expect_not_null(strstr(r.err, "could not connect to the database"), "stderr: %s", r.err);
    cr_expect_null(strstr(r.err, "s3cret"), "the password leaked: %s", r.err);
    cr_expect_null(strstr(r.out, "s3cret"), "the password leaked: %s", r.out);
    itest_result_free(&r);
}

/* n STARTED facts 30 s ago (attempts first.. of r-fresh): the pace of the
 * consumers as request_store_due_without_trigger reads it. */
static void insert_started(int n, int first)
{
    char err[512], a[16], b[16];
    snprintf(a, sizeof(a), "%d", first);
    snprintf(b, sizeof(b), "%d", first + n - 1);
    const char *v[] = {a, b};
    cr_assert(itest_exec(&t,
                         "INSERT INTO retry_attempt_log (request_id, attempt, event, worker,"
                         " gateway, at) SELECT 'r-fresh', i, 'STARTED', 'w', 'toss',"
                         " now() - interval '30 s' FROM generate_series($1::int, $2::int) i",
                         2, v, err, sizeof(err)),
              "%s", err);
}

/* Requests due for a while whose trigger went out: a trigger counts as lost
 * (request_store_due_without_trigger) only when it is older than the grace
 * and than half of the time its request has been due, so that triggers
 * waiting in Kafka behind a backlog are not written again and again; and the
 * grace stretches to the backlog's drain time at the consumers' pace. */
Test(migrate, lost_triggers_are_spaced_by_the_time_due)
{
    char err[512];
    migrate_or_fail();
    /* Each request is due since `due` s; its trigger was published `sent` s
     * ago (or never, NULL). */
    static const char *const rows[][3] = {
        {"r-backlog", "100", "40"}, /* 40 < 100/2: still waiting in Kafka */
        {"r-lost", "100", "70"},    /* 70 > 50 and > the grace: lost */
        {"r-fresh", "3", "2"},      /* due for less than the grace */
        {"r-none", "100", NULL},    /* no trigger at all */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *req[] = {rows[i][0], rows[i][1]};
        cr_assert(itest_exec(&t,
                             "INSERT INTO cancel_request (request_id, gateway, payment_key,"
                             " amount, currency, reason, source_event_id, source_event,"
                             " max_attempts, deadline_at, next_attempt_at)"
                             " VALUES ($1, 'toss', 'pk', 100, 'KRW', 'r', 'e', 'x', 3,"
                             " now() + interval '1 day', now() - $2::int * interval '1 s')",
                             2, req, err, sizeof(err)),
                  "%s", err);
        if (rows[i][2] == NULL)
            continue;
        const char *trig[] = {rows[i][0], rows[i][2]};
        cr_assert(itest_exec(&t,
                             "INSERT INTO outbox (topic, msg_key, value, event_type, request_id,"
                             " published_at) VALUES ('t', $1, 'v',"
                             " 'payments.cancel.retry.scheduled.v1', $1,"
                             " now() - $2::int * interval '1 s')",
                             2, trig, err, sizeof(err)),
                  "%s", err);
    }
    struct db *db = connect_db();
    char **ids = NULL;
    size_t n = 0;
    cr_assert(request_store_due_without_trigger(db, 10000, 600000, 100, &ids, &n, err, sizeof(err)),
              "%s", err);
    cr_expect_eq(n, 2, "due without a trigger: r-lost and r-none only");
    for (size_t i = 0; i < n; i++)
        cr_expect(strcmp(ids[i], "r-lost") == 0 || strcmp(ids[i], "r-none") == 0, "%s", ids[i]);
    request_store_free_ids(ids, n);

    /* The consumers are working, slowly: 2 attempts started in the last
     * minute and 4 requests due (all four), so the backlog takes 120 s at
     * that pace; the grace stretches to twice that, 240 s, and neither
     * r-lost (70 s) nor r-none (100 s) counts as lost: they are queued. */
    insert_started(2, 1);
    cr_assert(request_store_due_without_trigger(db, 10000, 600000, 100, &ids, &n, err, sizeof(err)),
              "%s", err);
    cr_expect_eq(n, 0, "behind a 120 s backlog nothing is lost yet (%zu found)", n);
    request_store_free_ids(ids, n);
    /* ... unless the cap is lower than the stretch: 50 s caps it. */
    cr_assert(request_store_due_without_trigger(db, 10000, 50000, 100, &ids, &n, err, sizeof(err)),
              "%s", err);
    cr_expect_eq(n, 2, "the cap bounds the stretch: r-lost and r-none are lost again");
    request_store_free_ids(ids, n);
    /* A faster pace, 8 a minute: the backlog drains in 30 s, twice that is
     * 60 s, less than r-lost's 70 s and r-none's 100 s. */
    insert_started(6, 3);
    cr_assert(request_store_due_without_trigger(db, 10000, 600000, 100, &ids, &n, err, sizeof(err)),
              "%s", err);
    cr_expect_eq(n, 2, "a 60 s drain leaves r-lost and r-none lost");
    request_store_free_ids(ids, n);
    db_free(db);
}
