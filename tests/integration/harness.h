/*
 * harness: what every integration test needs around the real local stack.
 *
 * The stack's addresses come from the environment, set by deploy/local/test:
 *   CR_TEST_PG_DSN          libpq conninfo of a superuser on the maintenance db
 *   CR_TEST_KAFKA_BOOTSTRAP host:port of the broker
 *   CR_TEST_GATEWAY_URL     optional, base URL of gateway-sim (default
 *                           http://127.0.0.1:$CR_GATEWAY_SIM_PORT or :28080)
 * and the built binaries' paths from meson's test() env: CR_CANCELCTL,
 * CR_BUILD_ROOT, CR_SOURCE_ROOT (tests/integration/meson.build).
 *
 * Isolation: itest_setup() creates a fresh database (cr_it_<pid>_<n>) and a
 * per-test topic prefix, and writes a config file for them, so tests never
 * see each other's rows or messages; itest_teardown() drops the database,
 * deletes the topics with that prefix and removes the temp files.
 *
 * Failures inside the harness fail the current Criterion test with a message
 * that says what to do (e.g. "run via ./deploy/local/test").
 */
#ifndef CR_TEST_HARNESS_H
#define CR_TEST_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

struct itest {
    char name[64];         /* the test's name, for messages */
    char admin_dsn[512];   /* CR_TEST_PG_DSN */
    char bootstrap[256];   /* CR_TEST_KAFKA_BOOTSTRAP */
    char gateway_url[256]; /* gateway-sim base URL */
    char dbname[64];       /* the per-test database */
    char dsn[1024];        /* conninfo of the per-test database */
    char prefix[96];       /* per-test topic prefix, e.g. "it.migrate.1234.1." */
    char dir[256];         /* per-test temp directory */
    char config_path[512]; /* dir/cancel-retry.yaml */
    PGconn *conn;          /* lazily opened connection to dsn (itest_pg) */
    bool db_created;
};

/* The value of environment variable name, failing the test with a message
 * naming it ("CR_TEST_PG_DSN is not set: run via ./deploy/local/test") if it
 * is unset or empty. */
const char *itest_require_env(const char *name);

/* Create the per-test database and topic prefix and write the default
 * config (see itest_write_config). name is the test's name (any text). */
void itest_setup(struct itest *t, const char *name);

/* Drop the database, delete the prefixed topics, remove the temp dir. Safe
 * to call on a partially set up or zeroed struct. */
void itest_teardown(struct itest *t);

/* Remove path and everything below it, not following links. Returns
 * whether all of it went (false too when path did not exist). */
bool itest_remove_tree(const char *path);

/* Write t->config_path from a YAML template in which @DSN@, @BOOTSTRAP@,
 * @PREFIX@ and @GATEWAY_URL@ are replaced (the DSN is single-quoted for
 * YAML; @DSN_CONNINFO@ is the same conninfo escaped for inside a YAML
 * double-quoted scalar, for a test that adds keywords to it). NULL uses the default template: every
 * section with local values, topics named @PREFIX@payments.cancel.{failed,retry,outcome,dlq} with
 * 3, 6, 3 and 1 partitions, gateways toss and stripe at @GATEWAY_URL@. */
void itest_write_config(struct itest *t, const char *yaml_template);

/* The default template, for tests that want to edit a copy of it. */
extern const char itest_default_config[];

/* A connection to the per-test database (opened on first use, closed by
 * itest_teardown). */
PGconn *itest_pg(struct itest *t);

/* Run sql with text params on the per-test database. Returns true on
 * success; on failure false with the server's message and SQLSTATE in err
 * ("... (SQLSTATE 23514)"). */
bool itest_exec(struct itest *t, const char *sql, int nparams, const char *const *params, char *err,
                size_t errlen);

/* The first column of the first row of sql as a new string (caller frees),
 * NULL for SQL NULL. Fails the test if the query fails or returns no row. */
char *itest_query_value(struct itest *t, const char *sql, int nparams, const char *const *params);

/* The same as a long long (fails the test if NULL or not a number). */
long long itest_query_int(struct itest *t, const char *sql, int nparams, const char *const *params);

/* Poll until sql (text params) returns a first column equal to want (NULL
 * = SQL NULL), up to timeout_ms; returns whether it did. */
bool itest_wait_query(struct itest *t, const char *sql, int nparams, const char *const *params,
                      const char *want, int timeout_ms);

/* ---- child processes ---- */

struct itest_proc {
    pid_t pid;
    int out_fd, err_fd;
};

struct itest_result {
    int exit_code;  /* -1 if killed by a signal or timed out */
    bool timed_out; /* killed after the timeout */
    char *out;      /* everything written to stdout (NUL-terminated, caller frees
                       with itest_result_free) */
    char *err;      /* everything written to stderr */
};

/* Start argv[0] (a path) with argv, in the source root as working
 * directory, with the environment plus env_extra ("K=V" entries, NULL-ended,
 * may be NULL). Fails the test if it cannot start. */
void itest_start(struct itest_proc *p, const char *const *argv, const char *const *env_extra);

/* Collect its output and exit status, killing it (SIGKILL) after
 * timeout_ms. */
void itest_finish(struct itest_proc *p, int timeout_ms, struct itest_result *r);

/* itest_start + itest_finish. */
void itest_run(struct itest_result *r, int timeout_ms, const char *const *argv,
               const char *const *env_extra);

void itest_result_free(struct itest_result *r);

/* The path of cancelctl (CR_CANCELCTL). */
const char *itest_cancelctl(void);

/* ---- Kafka ---- */

/* Partition count of topic on the broker, -1 if it does not exist. */
int itest_topic_partitions(struct itest *t, const char *topic);

/* Create topic with the given partitions (replication 1); fails the test
 * if that does not work. */
void itest_create_topic(struct itest *t, const char *topic, int partitions);

/* Sleep ms milliseconds (through EINTR). */
void itest_sleep_ms(int ms);

#endif
