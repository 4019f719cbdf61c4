/*
 * bench/relay: the outbox-relay alone. Fill the outbox of a fresh database
 * with N due rows (CR_BENCH_RELAY_ROWS, default 200000) behind M rows that
 * were already published and are still retained (CR_BENCH_RELAY_RETAINED,
 * default 0), start the real outbox-relay process, and print rows per second
 * from its start to the last row marked published, its peak RSS (VmHWM) and
 * CPU seconds; then, the relay idle, how long single rows take from their
 * insert to their mark (the NOTIFY wake-up). The last line of stdout is one
 * JSON object with the figures.
 *
 * The rows are what the retry-consumer writes: a RetryScheduled CloudEvent
 * (about 480 bytes, every row its own ids) keyed by its requestId, for the
 * retry topic, with the content-type header. Both sets are filled with one
 * INSERT ... SELECT generate_series each, then VACUUM ANALYZE, as a table
 * that has been live for a while would be; the retained rows have the lower
 * ids and were published an hour ago (inside retention: purge keeps them)
 * by epoch 0, which no relay holds, so that the figures count the relay's
 * own marks alone.
 *
 * The relay runs with the example config's relay settings (batch_size 500,
 * poll_interval 5s, retention 7d, reconcile_interval 30s), or batch_size
 * CR_BENCH_RELAY_BATCH. The other pipeline processes are stopped before the
 * fill: nothing else writes.
 *
 * A benchmark, not a test: it asserts only that every row was published.
 * Run: `meson test -C build --benchmark relay --verbose` (docs/benchmarks.md).
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline_fixture.h"

#include "base/clock.h"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && atol(v) >= 0 ? atol(v) : dflt;
}

/* $1 topic, $2 first n, $3 last n, $4 'published' or 'due'. One statement,
 * so that millions of rows take seconds. */
static const char sql_fill[] =
    "INSERT INTO outbox (topic, msg_key, value, headers, event_type, event_id, request_id,"
    "                    available_at, created_at, published_at, published_epoch,"
    "                    publish_attempts)"
    " SELECT $1, rid, convert_to(json_build_object("
    "          'specversion', '1.0', 'id', eid, 'source', '/payments/cancel-retry',"
    "          'type', 'payments.cancel.retry.scheduled.v1',"
    "          'time', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    "          'subject', rid, 'datacontenttype', 'application/json',"
    "          'correlationid', md5(rid),"
    "          'data', json_build_object('requestId', rid, 'attempt', 2,"
    "            'dueAt', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    "            'gateway', 'toss', 'paymentKey', 'tpay_bench_' || lpad(g::text, 10, '0'),"
    "            'amount', 15000, 'currency', 'KRW', 'partial', false))::text, 'UTF8'),"
    "        '[[\"content-type\", \"application/cloudevents+json\"]]'::jsonb,"
    "        'payments.cancel.retry.scheduled.v1', eid, rid,"
    "        now() - interval '1 hour', now() - interval '1 hour',"
    "        CASE WHEN $4 = 'published' THEN now() - interval '1 hour' END,"
    "        CASE WHEN $4 = 'published' THEN 0 END,"
    "        CASE WHEN $4 = 'published' THEN 1 ELSE 0 END"
    "   FROM generate_series($2::bigint, $3::bigint) AS g,"
    "        LATERAL (SELECT 'bench-relay-' || g AS rid, md5(g::text || $4) AS eid) AS x";

/* One row as the app writes it, created now: the single-row latency. */
static const char sql_single[] =
    "INSERT INTO outbox (topic, msg_key, value, headers, event_type, request_id)"
    " VALUES ($1, 'bench-relay-single', convert_to('{\"specversion\":\"1.0\"}', 'UTF8'),"
    "         '[[\"content-type\", \"application/cloudevents+json\"]]'::jsonb,"
    "         'payments.cancel.retry.scheduled.v1', 'bench-relay-single')"
    " RETURNING id::text";
#define RELAY_BENCH_SINGLES 5

static void fill(struct itest *t, const char *topic, long first, long n, const char *kind)
{
    char err[512], a[24], b[24];
    if (n <= 0)
        return;
    snprintf(a, sizeof(a), "%ld", first);
    snprintf(b, sizeof(b), "%ld", first + n - 1);
    const char *params[4] = {topic, a, b, kind};
    cr_assert(itest_exec(t, sql_fill, 4, params, err, sizeof(err)), "fill: %s", err);
}

/* The pid of this process's child named comm, 0 if none. */
static pid_t child_named(const char *comm)
{
    DIR *d = opendir("/proc");
    pid_t found = 0;
    cr_assert_not_null(d);
    struct dirent *e;
    while (found == 0 && (e = readdir(d)) != NULL) {
        char path[300], line[512], name[64] = "";
        long ppid = -1;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof(line), f) != NULL) {
            if (sscanf(line, "Name: %63s", name) == 1 || sscanf(line, "PPid: %ld", &ppid) == 1)
                continue;
        }
        fclose(f);
        if (ppid == (long)getpid() && strcmp(name, comm) == 0)
            found = (pid_t)atol(e->d_name);
    }
    closedir(d);
    return found;
}

/* VmHWM in MiB and user+system CPU seconds of pid. */
static void proc_usage(pid_t pid, double *rss_mib, double *cpu_s)
{
    char path[64], line[512];
    long hwm_kb = -1;
    unsigned long utime = 0, stime = 0;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &hwm_kb) == 1)
            break;
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    char stat[1024] = "";
    cr_assert_not_null(fgets(stat, sizeof(stat), f));
    fclose(f);
    /* Fields after "(comm)": state is field 3, utime 14, stime 15. */
    const char *p = strrchr(stat, ')');
    cr_assert_not_null(p);
    cr_assert_eq(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime), 2);
    *rss_mib = hwm_kb / 1024.0;
    *cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

Test(bench, relay, .fini = stop, .timeout = 3600)
{
    long rows = env_long("CR_BENCH_RELAY_ROWS", 200000);
    long retained = env_long("CR_BENCH_RELAY_RETAINED", 0);
    long batch = env_long("CR_BENCH_RELAY_BATCH", 500);
    char extra[256], topic[256], err[512];

    snprintf(extra, sizeof(extra),
             "relay: { batch_size: %ld, poll_interval: 5s, retention: 7d,"
             " reconcile_interval: 30s }\n",
             batch);
    P = pipeline_start("bench_relay", extra);
    struct itest *t = pipeline_itest(P);
    /* Only the relay under test runs, and only once the outbox is full. */
    pipeline_kill(P, PIPELINE_RETRY, 0, SIGTERM);
    pipeline_kill(P, PIPELINE_INTAKE, 0, SIGTERM);
    pipeline_kill(P, PIPELINE_RELAY, 0, SIGTERM);
    snprintf(topic, sizeof(topic), "%spayments.cancel.retry", t->prefix);

    int64_t f0 = mono_ms();
    fill(t, topic, 1, retained, "published");
    fill(t, topic, retained + 1, rows, "due");
    cr_assert(itest_exec(t, "VACUUM ANALYZE outbox", 0, NULL, err, sizeof(err)), "%s", err);
    printf("relay benchmark: filled %ld due rows behind %ld retained published rows in %.1f s\n",
           rows, retained, (double)(mono_ms() - f0) / 1000.0);
    char *settings =
        itest_query_value(t,
                          "SELECT format('fsync=%s synchronous_commit=%s shared_buffers=%s',"
                          " current_setting('fsync'), current_setting('synchronous_commit'),"
                          " current_setting('shared_buffers'))",
                          0, NULL);
    printf("  postgresql: %s\n", settings);
    free(settings);
    fflush(stdout);

    char *last = itest_query_value(t, "SELECT max(id)::text FROM outbox", 0, NULL);
    char *start = itest_query_value(t, "SELECT clock_timestamp()::text", 0, NULL);
    int64_t t0 = mono_ms();
    pipeline_start_process(P, PIPELINE_RELAY, 0);
    /* The relay publishes in id order, so the last row's mark ends the run:
     * a primary-key lookup per poll, where counting the unpublished rows
     * would walk an index full of rows the relay just marked and take
     * database time from it. Then every row is checked once. */
    const char *lp[1] = {last};
    bool done = false;
    while (!done && mono_ms() - t0 < 1800000) {
        char *v = itest_query_value(t, "SELECT published_at IS NOT NULL FROM outbox WHERE id = $1",
                                    1, lp);
        done = v != NULL && strcmp(v, "t") == 0;
        free(v);
        if (!done)
            itest_sleep_ms(100);
    }
    free(last);
    long long left =
        itest_query_int(t, "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0, NULL);
    cr_assert_eq(left, 0, "%lld of %ld rows still unpublished after %.0f s (logs: %s)", left, rows,
                 (double)(mono_ms() - t0) / 1000.0, pipeline_log_dir(P));

    pid_t relay = child_named("outbox-relay");
    cr_assert(relay > 0, "the outbox-relay process is gone (logs: %s)", pipeline_log_dir(P));
    double rss_mib = 0, cpu_s = 0;
    proc_usage(relay, &rss_mib, &cpu_s);

    const char *params[1] = {start};
    char *figures = itest_query_value(t,
                                      "SELECT format('%s %s',"
                                      "  extract(epoch FROM max(published_at) - $1::timestamptz),"
                                      "  extract(epoch FROM max(published_at) - min(published_at)))"
                                      " FROM outbox WHERE published_epoch > 0",
                                      1, params);
    double span_s = 0, publishing_s = 0;
    cr_assert_eq(sscanf(figures, "%lf %lf", &span_s, &publishing_s), 2, "figures: %s", figures);
    free(figures);
    free(start);

    /* Then single rows into the idle relay: the NOTIFY must wake it, not
     * its 5 s poll interval. From the inserting transaction's now() to the
     * mark, on the database's clock. */
    double single_max_ms = 0;
    for (int i = 0; i < RELAY_BENCH_SINGLES; i++) {
        const char *p1[1] = {topic};
        char *id = itest_query_value(t, sql_single, 1, p1);
        const char *p2[1] = {id};
        cr_assert(pipeline_wait_query(P,
                                      "SELECT published_at IS NOT NULL FROM outbox WHERE id = $1",
                                      1, p2, "t", 10000),
                  "a single row was not published within 10 s (logs: %s)", pipeline_log_dir(P));
        char *ms = itest_query_value(
            t,
            "SELECT extract(epoch FROM published_at - created_at) * 1000 FROM outbox WHERE id = $1",
            1, p2);
        double v = atof(ms);
        printf("  single row %d: %.1f ms\n", i + 1, v);
        single_max_ms = v > single_max_ms ? v : single_max_ms;
        free(ms);
        free(id);
        itest_sleep_ms(200);
    }

    double per_s = span_s > 0 ? (double)rows / span_s : 0.0;
    printf("  published %ld rows in %.2f s from the relay's start (%.2f s from its first to its "
           "last mark)\n",
           rows, span_s, publishing_s);
    printf("  throughput: %.0f rows/s\n", per_s);
    printf("  a single row into the idle relay, insert to mark: at most %.1f ms (%d rows)\n",
           single_max_ms, RELAY_BENCH_SINGLES);
    printf("  outbox-relay: peak RSS %.1f MiB, %.2f CPU s (%.2f per 10,000 rows)\n", rss_mib, cpu_s,
           rows > 0 ? cpu_s * 10000.0 / (double)rows : 0.0);
    printf("  logs: %s\n", pipeline_log_dir(P));
    printf("{\"relay_rows_per_s\":%.0f,\"rows\":%ld,\"retained\":%ld,\"batch_size\":%ld,"
           "\"seconds\":%.3f,\"single_row_max_ms\":%.1f,\"cpu_s\":%.2f,\"rss_max_mib\":%.1f}\n",
           per_s, rows, retained, batch, span_s, single_max_ms, cpu_s, rss_mib);
    fflush(stdout);
}
