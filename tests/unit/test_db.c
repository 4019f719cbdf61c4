#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>

#include <stdio.h>
#include <string.h>

#include "store/db.h"

/* Inline arrays, not pointers: Criterion re-executes the binary per test. */
struct scase {
    char sqlstate[8];
    enum db_error_class want;
};

ParameterizedTestParameters(db, classifies_sqlstates)
{
    static struct scase cases[] = {
        {"40001", DB_ERR_RETRY_TX},
        {"40P01", DB_ERR_RETRY_TX},
        {"08000", DB_ERR_CONNECTION},
        {"08006", DB_ERR_CONNECTION},
        {"08P01", DB_ERR_CONNECTION},
        {"57P01", DB_ERR_CONNECTION},
        {"57P02", DB_ERR_CONNECTION},
        {"57P03", DB_ERR_CONNECTION},
        {"23505", DB_ERR_DUPLICATE},
        {"23514", DB_ERR_DATA},
        {"23503", DB_ERR_DATA},
        {"23502", DB_ERR_DATA},
        /* class 22: the 22008 (a Kafka timestamp beyond timestamptz),
         * 22003 numeric out of range, 22021 bad UTF-8, 22P02 bad text */
        {"22008", DB_ERR_DATA},
        {"22003", DB_ERR_DATA},
        {"22021", DB_ERR_DATA},
        {"22P02", DB_ERR_DATA},
        {"22001", DB_ERR_DATA},
        {"54000", DB_ERR_DATA},
        {"54001", DB_ERR_DATA},
        /* the server, not the message: wait for it */
        {"53100", DB_ERR_SERVER},
        {"53200", DB_ERR_SERVER},
        {"53300", DB_ERR_SERVER},
        {"57014", DB_ERR_SERVER},
        {"58030", DB_ERR_SERVER},
        {"XX000", DB_ERR_SERVER},
        {"XX001", DB_ERR_SERVER},
        /* our bugs: wait too, a dead letter would not fix them */
        {"42P01", DB_ERR_OTHER},
        {"40002", DB_ERR_OTHER},
        {"42501", DB_ERR_OTHER},
        {"25P02", DB_ERR_OTHER},
        {"", DB_ERR_OTHER},
        {"2350", DB_ERR_OTHER},
    };
    return cr_make_param_array(struct scase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct scase *c, db, classifies_sqlstates)
{
    enum db_error_class got = db_classify_sqlstate(c->sqlstate);
    cr_expect_eq(got, c->want, "%s -> %s, want %s", c->sqlstate, db_error_class_name(got),
                 db_error_class_name(c->want));
}

/* The one rule every consumer applies (intake, retry-consumer): what is
 * about the message is dead-lettered, everything else pauses. */
Test(db, only_errors_about_the_message_dead_letter_it)
{
    static const struct {
        enum db_error_class c;
        bool blames;
    } rule[] = {
        {DB_ERR_NONE, false},   {DB_ERR_RETRY_TX, false}, {DB_ERR_CONNECTION, false},
        {DB_ERR_SERVER, false}, {DB_ERR_OTHER, false},    {DB_ERR_DUPLICATE, true},
        {DB_ERR_DATA, true},
    };
    for (size_t i = 0; i < sizeof(rule) / sizeof(rule[0]); i++)
        cr_expect_eq(db_error_blames_message(rule[i].c), rule[i].blames, "%s",
                     db_error_class_name(rule[i].c));
    cr_expect(db_error_blames_message(db_classify_sqlstate("22008")));
    cr_expect_not(db_error_blames_message(db_classify_sqlstate("08006")));
    cr_expect_not(db_error_blames_message(db_classify_sqlstate("53100")));
    cr_expect_str_eq(db_error_class_name(DB_ERR_DATA), "data");
    cr_expect_str_eq(db_error_class_name(DB_ERR_SERVER), "server");
}

/* A step that failed without a database error failed on the message's
 * values (an event that cannot be built from them): that is the message's
 * fault too; a lost connection never is. */
Test(db, a_failed_step_blames_the_message_only_without_a_database_fault)
{
    struct config_database cfg = {0};
    char err[256];
    cfg.dsn = "host=127.0.0.1 port=1 dbname=x";
    struct db *db = db_new(&cfg, "test");
    cr_assert_not_null(db);
    cr_expect(db_failure_blames_message(db));
    cr_expect_not(db_exec(db, "SELECT 1", 0, NULL, PGRES_TUPLES_OK, NULL, err, sizeof(err)));
    cr_expect_not(db_failure_blames_message(db), "no connection is never the message's fault");
    db_free(db);
}

Test(db, classify_null_inputs)
{
    cr_expect_eq(db_classify_sqlstate(NULL), DB_ERR_OTHER);
    /* No connection at all: whatever happened, the session is gone. */
    cr_expect_eq(db_classify(NULL, NULL), DB_ERR_CONNECTION);
    cr_expect_str_eq(db_error_class_name(DB_ERR_DUPLICATE), "duplicate");
}

Test(db, free_null_is_noop)
{
    db_free(NULL);
}

static struct config_database test_cfg(char *dsn)
{
    struct config_database cfg = {0};
    cfg.dsn = dsn;
    cfg.connect_timeout_ms = 2000;
    cfg.reconnect_min_ms = 10;
    cfg.reconnect_max_ms = 40;
    cfg.statement_timeout_ms = 1000;
    return cfg;
}

Test(db, display_dsn_hides_password)
{
    char dsn[] = "host=127.0.0.1 port=1 user=app password=hunter2 dbname=x";
    struct config_database cfg = test_cfg(dsn);
    struct db *db = db_new(&cfg, "test");
    cr_assert_not_null(db);
    cr_expect_str_eq(db_display_dsn(db), "host=127.0.0.1 port=1 user=app password=*** dbname=x");
    cr_expect_null(db_conn(db));
    cr_expect_not(db_is_connected(db));
    db_free(db);
}

Test(db, exec_without_connection_is_a_connection_error)
{
    char dsn[] = "host=127.0.0.1 port=1";
    struct config_database cfg = test_cfg(dsn);
    struct db *db = db_new(&cfg, "test");
    char err[256];
    PGresult *res = (PGresult *)1;
    cr_assert_not(db_exec(db, "SELECT 1", 0, NULL, PGRES_TUPLES_OK, &res, err, sizeof(err)));
    cr_expect_null(res);
    cr_expect_eq(db_last_error_class(db), DB_ERR_CONNECTION);
    db_free(db);
}

/* Port 1 on loopback refuses at once: no server needed to see the failure
 * path, its message, and the bounded retry. */
Test(db, unreachable_server_fails_without_leaking_the_password, .init = cr_redirect_stderr)
{
    char dsn[] = "host=127.0.0.1 port=1 user=app password=hunter2 dbname=x";
    struct config_database cfg = test_cfg(dsn);
    struct db *db = db_new(&cfg, "test");
    char err[512];

    cr_assert_not(db_connect_once(db, err, sizeof(err)));
    cr_expect(strncmp(err, "could not connect to the database: ", 35) == 0, "%s", err);
    cr_expect_null(strstr(err, "hunter2"));
    cr_expect_null(strchr(err, '\n'), "multi-line message: %s", err);

    cr_assert_not(db_connect_retry(db, 3, err, sizeof(err)));
    cr_expect_null(strstr(err, "hunter2"));
    fflush(stderr);
    fclose(stderr);
    /* Two failed attempts were followed by a wait, each logged once. */
    char line[2048];
    int warnings = 0;
    FILE *f = cr_get_redirected_stderr();
    while (fgets(line, sizeof(line), f) != NULL) {
        cr_expect_null(strstr(line, "hunter2"), "password logged: %s", line);
        if (strstr(line, "retrying in") != NULL && strstr(line, "\"level\":\"warn\"") != NULL)
            warnings++;
    }
    cr_expect_eq(warnings, 2, "%d retry warnings", warnings);
    db_free(db);
}
