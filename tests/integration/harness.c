/*
 * harness: per-test database, topics, config and child processes for the
 * integration tests. See harness.h.
 */
#include "harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "base/clock.h"

const char itest_default_config[] =
    "log:\n"
    "  level: info\n"
    "database:\n"
    "  dsn: @DSN@\n"
    "  connect_timeout: 5s\n"
    "  reconnect_min: 100ms\n"
    "  reconnect_max: 2s\n"
    "  statement_timeout: 30s\n"
    "kafka:\n"
    "  bootstrap.servers: \"@BOOTSTRAP@\"\n"
    "  client.id: cancel-retry-it\n"
    "topics:\n"
    "  cancel_failed: { name: \"@PREFIX@payments.cancel.failed\", partitions: 3 }\n"
    "  retry:         { name: \"@PREFIX@payments.cancel.retry\", partitions: 6 }\n"
    "  outcome:       { name: \"@PREFIX@payments.cancel.outcome\", partitions: 3 }\n"
    "  dlq:           { name: \"@PREFIX@payments.cancel.dlq\", partitions: 1 }\n"
    "consumers:\n"
    "  intake: { group_id: \"@PREFIX@intake\" }\n"
    "  retry: { group_id: \"@PREFIX@retry\", max_in_flight: 8, lease: 30s }\n"
    "  alert: { group_id: \"@PREFIX@alert\" }\n"
    "relay:\n"
    "  batch_size: 100\n"
    "  poll_interval: 200ms\n"
    "  retention: 1d\n"
    "  reconcile_interval: 1s\n"
    "  flush_timeout: 5s\n"
    "retry:\n"
    "  max_attempts: 3\n"
    "  initial_delay: 200ms\n"
    "  backoff_coefficient: 2.0\n"
    "  max_delay: 2s\n"
    "  jitter: none\n"
    "  deadline: 1h\n"
    "gateways:\n"
    "  toss:\n"
    "    kind: toss\n"
    "    base_url: \"@GATEWAY_URL@\"\n"
    "    secret_key: test_sk_toss_it\n"
    "    connect_timeout: 1s\n"
    "    timeout: 5s\n"
    "    tls_verify: false\n"
    "  stripe:\n"
    "    kind: stripe\n"
    "    base_url: \"@GATEWAY_URL@\"\n"
    "    secret_key: sk_test_stripe_it\n"
    "    connect_timeout: 1s\n"
    "    timeout: 5s\n"
    "    tls_verify: false\n"
    "  kakaopay:\n"
    "    kind: kakaopay\n"
    "    base_url: \"@GATEWAY_URL@\"\n"
    "    secret_key: kakaopay_secret_local\n"
    "    cid: TC0ONETIME\n"
    "    connect_timeout: 1s\n"
    "    timeout: 5s\n"
    "    tls_verify: false\n"
    "  portone:\n"
    "    kind: portone\n"
    "    base_url: \"@GATEWAY_URL@\"\n"
    "    secret_key: portone_secret_local\n"
    "    connect_timeout: 1s\n"
    "    timeout: 5s\n"
    "    tls_verify: false\n"
    "  adyen:\n"
    "    kind: adyen\n"
    "    base_url: \"@GATEWAY_URL@/v71\"\n"
    "    secret_key: adyen_api_key_local\n"
    "    merchant_account: CancelRetryTest\n"
    "    connect_timeout: 1s\n"
    "    timeout: 5s\n"
    "    tls_verify: false\n"
    "alerts:\n"
    "  slack:\n"
    "    enabled: false\n";

const char *itest_require_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        cr_assert_fail("%s is not set: run the integration tests via ./deploy/local/test "
                       "(it starts the local stack and sets CR_TEST_*)",
                       name);
    return v;
}

const char *itest_cancelctl(void)
{
    return itest_require_env("CR_CANCELCTL");
}

/* Lower-case letters, digits and '-' only: safe in database and topic
 * names alike. */
static void slug(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = in; *p != '\0' && o + 1 < outlen; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[o++] = ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '-';
    }
    out[o] = '\0';
}

/* Single-quote a conninfo value: backslash and quote escaped. */
static void quote_conn_value(const char *v, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen < 3)
        return;
    out[o++] = '\'';
    for (const char *p = v; *p != '\0' && o + 3 < outlen; p++) {
        if (*p == '\'' || *p == '\\')
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '\'';
    out[o] = '\0';
}

/* admin_dsn with dbname replaced, rebuilt as keyword=value (works for
 * both conninfo and URI inputs). */
static void dsn_for_db(const char *admin_dsn, const char *dbname, char *out, size_t outlen)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(admin_dsn, &errmsg);
    if (opts == NULL) {
        cr_assert_fail("CR_TEST_PG_DSN is not a valid conninfo: %s", errmsg ? errmsg : "?");
    }
    size_t o = 0;
    out[0] = '\0';
    for (PQconninfoOption *opt = opts; opt->keyword != NULL; opt++) {
        const char *val = strcmp(opt->keyword, "dbname") == 0 ? dbname : opt->val;
        if (val == NULL || val[0] == '\0')
            continue;
        char q[512];
        quote_conn_value(val, q, sizeof(q));
        int n = snprintf(out + o, outlen - o, "%s%s=%s", o ? " " : "", opt->keyword, q);
        if (n < 0 || (size_t)n >= outlen - o)
            cr_assert_fail("test DSN too long");
        o += (size_t)n;
    }
    PQconninfoFree(opts);
}

static PGconn *connect_or_fail(const char *dsn, const char *what)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        PQfinish(c);
        cr_assert_fail("could not connect to %s: %s(is the local stack running? "
                       "./deploy/local/test starts it)",
                       what, msg);
    }
    return c;
}

/* CREATE/DROP DATABASE take no parameters: the name is generated here
 * from [a-z0-9_] and quoted anyway. */
static void admin_command(const char *admin_dsn, const char *verb, const char *dbname,
                          const char *suffix, bool must_succeed)
{
    PGconn *c = connect_or_fail(admin_dsn, "the maintenance database (CR_TEST_PG_DSN)");
    char *ident = PQescapeIdentifier(c, dbname, strlen(dbname));
    char sql[256];
    snprintf(sql, sizeof(sql), "%s %s%s", verb, ident, suffix);
    PQfreemem(ident);
    PGresult *res = PQexec(c, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(c);
    if (!ok && must_succeed)
        cr_assert_fail("%s failed: %s", sql, msg);
}

void itest_setup(struct itest *t, const char *name)
{
    static int counter; /* per process; Criterion runs each test in its own */
    char s[40];

    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    snprintf(t->admin_dsn, sizeof(t->admin_dsn), "%s", itest_require_env("CR_TEST_PG_DSN"));
    snprintf(t->bootstrap, sizeof(t->bootstrap), "%s",
             itest_require_env("CR_TEST_KAFKA_BOOTSTRAP"));
    const char *gw = getenv("CR_TEST_GATEWAY_URL");
    const char *gw_port = getenv("CR_GATEWAY_SIM_PORT");
    if (gw != NULL && gw[0] != '\0')
        snprintf(t->gateway_url, sizeof(t->gateway_url), "%s", gw);
    else
        snprintf(t->gateway_url, sizeof(t->gateway_url), "http://127.0.0.1:%s",
                 gw_port && gw_port[0] ? gw_port : "28080");

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned int nonce = (unsigned int)(ts.tv_nsec / 1000) % 100000;
    slug(name, s, sizeof(s));
    counter++;
    snprintf(t->dbname, sizeof(t->dbname), "cr_it_%d_%u_%d", (int)getpid(), nonce, counter);
    snprintf(t->prefix, sizeof(t->prefix), "it.%s.%d.%u.%d.", s, (int)getpid(), nonce, counter);
    dsn_for_db(t->admin_dsn, t->dbname, t->dsn, sizeof(t->dsn));

    snprintf(t->dir, sizeof(t->dir), "/tmp/cr-it-%s-XXXXXX", s);
    if (mkdtemp(t->dir) == NULL)
        cr_assert_fail("could not create a temp dir: %s", strerror(errno));
    snprintf(t->config_path, sizeof(t->config_path), "%s/cancel-retry.yaml", t->dir);

    admin_command(t->admin_dsn, "CREATE DATABASE", t->dbname, "", true);
    t->db_created = true;
    itest_write_config(t, NULL);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

bool itest_remove_tree(const char *path)
{
    return nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS) == 0;
}

/* Delete every topic whose name starts with t->prefix (best effort). */
static void delete_topics(struct itest *t)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", t->bootstrap, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return;
    }
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return;
    }
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_DeleteTopic_t *del[64];
        size_t n = 0;
        for (int i = 0; i < md->topic_cnt && n < 64; i++) {
            if (strncmp(md->topics[i].topic, t->prefix, strlen(t->prefix)) == 0)
                del[n++] = rd_kafka_DeleteTopic_new(md->topics[i].topic);
        }
        rd_kafka_metadata_destroy(md);
        if (n > 0) {
            rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
            rd_kafka_DeleteTopics(rk, del, n, NULL, q);
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
            if (ev != NULL)
                rd_kafka_event_destroy(ev);
            rd_kafka_queue_destroy(q);
            rd_kafka_DeleteTopic_destroy_array(del, n);
        }
    }
    rd_kafka_destroy(rk);
}

void itest_teardown(struct itest *t)
{
    if (t->conn != NULL) {
        PQfinish(t->conn);
        t->conn = NULL;
    }
    if (t->db_created) {
        /* FORCE: a child process the test started may still be connected. */
        admin_command(t->admin_dsn, "DROP DATABASE IF EXISTS", t->dbname, " WITH (FORCE)", false);
        t->db_created = false;
    }
    if (t->prefix[0] != '\0' && t->bootstrap[0] != '\0')
        delete_topics(t);
    if (t->dir[0] != '\0') {
        itest_remove_tree(t->dir);
        t->dir[0] = '\0';
    }
}

/* Append s to the growing buffer *buf. */
static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        cr_assert_not_null(*buf);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

void itest_write_config(struct itest *t, const char *yaml_template)
{
    const char *tpl = yaml_template ? yaml_template : itest_default_config;
    char dsn_yaml[2200];
    size_t o = 0;

    /* YAML single quotes: '' stands for one quote. */
    dsn_yaml[o++] = '\'';
    for (const char *p = t->dsn; *p != '\0' && o + 3 < sizeof(dsn_yaml); p++) {
        if (*p == '\'')
            dsn_yaml[o++] = '\'';
        dsn_yaml[o++] = *p;
    }
    dsn_yaml[o++] = '\'';
    dsn_yaml[o] = '\0';
    /* The same conninfo for inside a YAML double-quoted scalar, so that a
     * test can add to it: dsn: "@DSN_CONNINFO@ password=...". */
    char dsn_dq[2200];
    o = 0;
    for (const char *p = t->dsn; *p != '\0' && o + 3 < sizeof(dsn_dq); p++) {
        if (*p == '"' || *p == '\\')
            dsn_dq[o++] = '\\';
        dsn_dq[o++] = *p;
    }
    dsn_dq[o] = '\0';

    const struct {
        const char *mark;
        const char *value;
    } subs[] = {{"@DSN@", dsn_yaml},
                {"@DSN_CONNINFO@", dsn_dq},
                {"@BOOTSTRAP@", t->bootstrap},
                {"@PREFIX@", t->prefix},
                {"@GATEWAY_URL@", t->gateway_url}};
    char *out = NULL;
    size_t len = 0, cap = 0;
    for (const char *p = tpl; *p != '\0';) {
        bool replaced = false;
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
            size_t ml = strlen(subs[i].mark);
            if (strncmp(p, subs[i].mark, ml) == 0) {
                append(&out, &len, &cap, subs[i].value, strlen(subs[i].value));
                p += ml;
                replaced = true;
                break;
            }
        }
        if (!replaced)
            append(&out, &len, &cap, p++, 1);
    }
    FILE *f = fopen(t->config_path, "w");
    cr_assert_not_null(f, "could not write %s: %s", t->config_path, strerror(errno));
    /* An empty template leaves out NULL, which fwrite may not take (UBSan,
     * in the first integration run under the sanitizers). */
    if (len > 0)
        fwrite(out, 1, len, f);
    fclose(f);
    free(out);
}

PGconn *itest_pg(struct itest *t)
{
    if (t->conn == NULL)
        t->conn = connect_or_fail(t->dsn, "the test database");
    return t->conn;
}

bool itest_exec(struct itest *t, const char *sql, int nparams, const char *const *params, char *err,
                size_t errlen)
{
    PGresult *res = PQexecParams(itest_pg(t), sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok && err != NULL) {
        const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(err, errlen, "%s (SQLSTATE %s)", primary ? primary : PQerrorMessage(itest_pg(t)),
                 state ? state : "none");
    } else if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    PQclear(res);
    return ok;
}

char *itest_query_value(struct itest *t, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(itest_pg(t), sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        cr_assert_fail("query \"%s\" failed or returned no row: %s", sql, msg);
    }
    char *v = PQgetisnull(res, 0, 0) ? NULL : strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

long long itest_query_int(struct itest *t, const char *sql, int nparams, const char *const *params)
{
    char *v = itest_query_value(t, sql, nparams, params);
    cr_assert_not_null(v, "query \"%s\" returned NULL", sql);
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    bool ok = end != v && *end == '\0';
    free(v);
    cr_assert(ok, "query \"%s\" did not return a number", sql);
    return n;
}

bool itest_wait_query(struct itest *t, const char *sql, int nparams, const char *const *params,
                      const char *want, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        PGresult *res = PQexecParams(itest_pg(t), sql, nparams, NULL, params, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql,
                     PQresultErrorMessage(res));
        bool match = false;
        if (PQntuples(res) >= 1) {
            if (PQgetisnull(res, 0, 0))
                match = want == NULL;
            else
                match = want != NULL && strcmp(PQgetvalue(res, 0, 0), want) == 0;
        }
        PQclear(res);
        if (match)
            return true;
        if (mono_ms() >= deadline)
            return false;
        itest_sleep_ms(100);
    }
}

/* ---- child processes ---- */

void itest_start(struct itest_proc *p, const char *const *argv, const char *const *env_extra)
{
    int out[2], err[2];
    cr_assert(pipe(out) == 0 && pipe(err) == 0, "pipe: %s", strerror(errno));
    const char *cwd = getenv("CR_SOURCE_ROOT");
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        if (cwd != NULL && chdir(cwd) != 0)
            _exit(126);
        for (size_t i = 0; env_extra != NULL && env_extra[i] != NULL; i++)
            putenv((char *)env_extra[i]);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "could not run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    p->pid = pid;
    p->out_fd = out[0];
    p->err_fd = err[0];
}

void itest_finish(struct itest_proc *p, int timeout_ms, struct itest_result *r)
{
    size_t olen = 0, ocap = 0, elen = 0, ecap = 0;
    int64_t deadline = mono_ms() + timeout_ms;
    struct pollfd fds[2] = {{p->out_fd, POLLIN, 0}, {p->err_fd, POLLIN, 0}};
    int open_fds = 2;

    memset(r, 0, sizeof(*r));
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    ocap = ecap = 1;
    while (open_fds > 0) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            kill(p->pid, SIGKILL);
            r->timed_out = true;
            break;
        }
        int rc = poll(fds, 2, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof(buf));
            if (n > 0) {
                if (i == 0)
                    append(&r->out, &olen, &ocap, buf, (size_t)n);
                else
                    append(&r->err, &elen, &ecap, buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    }
    int status = 0;
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->exit_code = (!r->timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
}

void itest_run(struct itest_result *r, int timeout_ms, const char *const *argv,
               const char *const *env_extra)
{
    struct itest_proc p;
    itest_start(&p, argv, env_extra);
    itest_finish(&p, timeout_ms, r);
}

void itest_result_free(struct itest_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* ---- Kafka ---- */

static rd_kafka_t *admin(struct itest *t)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", t->bootstrap, errstr, sizeof(errstr)),
                 RD_KAFKA_CONF_OK, "%s", errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "%s", errstr);
    return rk;
}

int itest_topic_partitions(struct itest *t, const char *topic)
{
    rd_kafka_t *rk = admin(t);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_destroy(rk);
        cr_assert_fail("metadata from %s: %s", t->bootstrap, rd_kafka_err2str(e));
    }
    int n = -1;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
            n = md->topics[i].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return n;
}

void itest_create_topic(struct itest *t, const char *topic, int partitions)
{
    char errstr[256];
    rd_kafka_t *rk = admin(t);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    cr_assert_not_null(nt, "%s", errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    cr_assert_not_null(ev, "CreateTopics %s: no answer", topic);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    rd_kafka_resp_err_t e =
        cnt == 1 ? rd_kafka_topic_result_error(res[0]) : rd_kafka_event_error(ev);
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "CreateTopics %s: %s", topic, rd_kafka_err2str(e));
    /* Wait until the metadata shows it, as a producer would need. */
    for (int i = 0; i < 50 && itest_topic_partitions(t, topic) != partitions; i++)
        usleep(100 * 1000);
}

void itest_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
