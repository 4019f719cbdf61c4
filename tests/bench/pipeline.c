/*
 * bench/pipeline: push requests through the real pipeline (intake-consumer,
 * outbox-relay, retry-consumer(s), gateway-sim, on the local stack) and
 * print, from the database after the run and from /proc just before the
 * processes stop: a table per stage (report.h), throughput end to end, CPU
 * per 1,000 requests and peak RSS per process, the PostgreSQL settings in
 * force, and the same as one JSON object.
 *
 * A benchmark, not a test: it asserts only that every request ended (a run
 * that loses one fails), never on speed. ./deploy/local/bench runs it on a
 * stack of its own (docs/benchmarks.md); `meson test -C build --benchmark
 * pipeline` runs it on the stack of the environment.
 *
 * Knobs (environment):
 *   CR_BENCH_N              requests of a burst (default 2000)
 *   CR_BENCH_RATE, CR_BENCH_SECONDS
 *                           instead of a burst, publish RATE requests/s for
 *                           SECONDS (paced one by one)
 *   CR_BENCH_CONSUMERS      the runs to make, by retry-consumers ("1,2")
 *   CR_BENCH_MAX_IN_FLIGHT  of each retry-consumer (default 32)
 *   CR_BENCH_LATENCY_MS     the simulator's latency, "min-max" or "ms"
 *                           (default 10-30)
 *   CR_BENCH_TIMEOUT_S      how long to wait for the last final status after
 *                           the last publish (default 600)
 *   CR_BENCH_PG_PID, CR_BENCH_KAFKA_PID
 *                           the postmaster and the broker, to count their CPU
 *   CR_BENCH_JSON           write the JSON object to this file instead of
 *                           printing it
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/clock.h"
#include "event/cancel_event.h"
#include "pipeline_fixture.h"
#include "procstat.h"
#include "report.h"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

struct bench_opts {
    int n, rate, max_in_flight, timeout_s;
    int lat_min, lat_max;
    pid_t pg_pid, kafka_pid;
    const char *json_path;
};

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v != NULL && atoi(v) > 0 ? atoi(v) : dflt;
}

static void payment_key_of(char *buf, size_t len, int i)
{
    snprintf(buf, len, "tpay_bench_%06d", i);
}

/* Paced publishing: request i leaves at t0 + i / rate (rate 0: at once). */
struct pace {
    int rate;
    int64_t t0_ms;
};

static void bench_event(int i, struct cancel_failed_event *ev, char *rid, char *pk, void *arg)
{
    struct pace *pace = arg;
    if (pace->rate > 0) {
        if (i == 0)
            pace->t0_ms = mono_ms();
        int64_t wait = pace->t0_ms + (int64_t)i * 1000 / pace->rate - mono_ms();
        if (wait > 0)
            itest_sleep_ms((int)wait);
    }
    snprintf(rid, PIPELINE_ID_MAX, "bench-%06d", i);
    payment_key_of(pk, PIPELINE_ID_MAX, i);
    ev->request_id = rid;
    ev->payment_key = pk;
    ev->gateway = "toss";
    ev->amount = 15000;
    ev->currency = "KRW";
}

/* CPU of the server processes (< 0: not watched or gone). */
static double server_cpu(pid_t pid)
{
    return pid > 0 ? procstat_tree_cpu(pid) : -1;
}

static double cpu_delta(double before, double after)
{
    return before >= 0 && after >= 0 ? after - before : -1;
}

/* Poll until every request is final and every final request's Outcome row
 * is published, or the deadline passes; progress on stderr. */
static void wait_final(struct itest *t, int n, int timeout_s)
{
    int64_t t0 = mono_ms(), next_note = t0 + 10000;
    long long done = 0;
    while (mono_ms() - t0 < (int64_t)timeout_s * 1000) {
        done = itest_query_int(
            t, "SELECT count(*) FROM cancel_request WHERE finished_at IS NOT NULL", 0, NULL);
        if (done >= n)
            break;
        if (mono_ms() >= next_note) {
            fprintf(stderr, "bench: %lld of %d requests final\n", done, n);
            next_note += 10000;
        }
        itest_sleep_ms(200);
    }
    /* The outcome is published just after the final status; give the relay
     * a moment so that the last requests have that stage too. */
    int64_t t1 = mono_ms();
    while (mono_ms() - t1 < 30000 &&
           itest_query_int(t,
                           "SELECT count(*) FROM cancel_request c WHERE finished_at IS NOT NULL"
                           " AND NOT EXISTS (SELECT 1 FROM outbox o"
                           "  WHERE o.request_id = c.request_id"
                           "    AND o.event_type = '" CANCEL_EVENT_TYPE_OUTCOME "'"
                           "    AND o.published_at IS NOT NULL)",
                           0, NULL) > 0)
        itest_sleep_ms(200);
}

/* The pipeline's processes (this process's children) before the first
 * publish, to subtract from the figures before the stop. */
struct cpu_mark {
    struct proc_sample procs[BENCH_MAX_PROCS];
    int nprocs;
    double pg, kafka;
};

static void mark_cpu(const struct bench_opts *o, struct cpu_mark *m)
{
    m->nprocs = procstat_children(getpid(), m->procs, BENCH_MAX_PROCS);
    m->pg = server_cpu(o->pg_pid);
    m->kafka = server_cpu(o->kafka_pid);
}

static void read_procs(const struct bench_opts *o, const struct cpu_mark *m, struct bench_run *r)
{
    r->nprocs = procstat_children(getpid(), r->procs, BENCH_MAX_PROCS);
    for (int i = 0; i < r->nprocs; i++) {
        r->cpu_run_s[i] = r->procs[i].cpu_s;
        for (int j = 0; j < m->nprocs; j++)
            if (m->procs[j].pid == r->procs[i].pid)
                r->cpu_run_s[i] = r->procs[i].cpu_s - m->procs[j].cpu_s;
    }
    r->pg_cpu_s = cpu_delta(m->pg, server_cpu(o->pg_pid));
    r->kafka_cpu_s = cpu_delta(m->kafka, server_cpu(o->kafka_pid));
}

static void emit_json(const struct bench_opts *o, const struct bench_run *r)
{
    json_t *j = bench_json(r);
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(j);
    cr_assert_not_null(s);
    if (o->json_path != NULL) {
        FILE *f = fopen(o->json_path, "w");
        cr_assert_not_null(f, "CR_BENCH_JSON %s: cannot write", o->json_path);
        fprintf(f, "%s\n", s);
        fclose(f);
    } else {
        printf("%s\n", s);
    }
    free(s);
}

static void run(const struct bench_opts *o, int consumers)
{
    char name[64], config[256], latency[96];
    snprintf(name, sizeof(name), "bench_%d_consumers", consumers);
    /* Production-like sizes (the example config's relay batch) over the
     * fixture's test policy; info logs, as in production. */
    snprintf(config, sizeof(config),
             "consumers:\n"
             "  retry: { max_in_flight: %d }\n"
             "relay: { batch_size: 500 }\n",
             o->max_in_flight);
    P = pipeline_start(name, config);
    for (int i = 1; i < consumers; i++)
        pipeline_start_process(P, PIPELINE_RETRY, i);
    snprintf(latency, sizeof(latency), "{\"minMs\":%d,\"maxMs\":%d}", o->lat_min, o->lat_max);
    cr_assert_eq(pipeline_sim_call(P, "PUT", "/_sim/latency", latency, NULL), 200);
    for (int i = 0; i < o->n; i++) {
        char pk[64];
        payment_key_of(pk, sizeof(pk), i);
        pipeline_payment(P, "toss", pk, 15000, "KRW", 0);
    }
    /* Let every consumer join the group before the clock starts. */
    itest_sleep_ms(3000);

    struct itest *t = pipeline_itest(P);
    struct cpu_mark mark;
    struct pace pace = {o->rate, 0};
    mark_cpu(o, &mark);
    pipeline_publish_many(P, o->n, bench_event, &pace);
    wait_final(t, o->n, o->timeout_s);

    struct bench_run r = {
        .n = o->n,
        .rate = o->rate,
        .consumers = consumers,
        .max_in_flight = o->max_in_flight,
        .lat_min_ms = o->lat_min,
        .lat_max_ms = o->lat_max,
    };
    read_procs(o, &mark, &r);
    bench_read_db(t, &r);
    bench_print(&r);
    printf("  logs: %s\n", pipeline_log_dir(P));
    emit_json(o, &r);
    fflush(stdout);
    long long not_final = bench_not_final(&r);
    json_decref(r.statuses);
    cr_assert_eq(not_final, 0,
                 "FAILED: %lld of %d requests did not reach a final status within %d s after "
                 "the last publish (logs: %s)",
                 not_final, o->n, o->timeout_s, pipeline_log_dir(P));
    stop();
}

static void parse_latency(struct bench_opts *o)
{
    const char *lat = getenv("CR_BENCH_LATENCY_MS");
    o->lat_min = 10;
    o->lat_max = 30;
    if (lat == NULL || lat[0] == '\0')
        return;
    int n = sscanf(lat, "%d-%d", &o->lat_min, &o->lat_max);
    if (n == 1)
        o->lat_max = o->lat_min;
    cr_assert(n >= 1 && o->lat_min >= 0 && o->lat_max >= o->lat_min,
              "CR_BENCH_LATENCY_MS: \"%s\" is not min-max milliseconds", lat);
}

Test(bench, pipeline, .fini = stop, .timeout = 7200)
{
    struct bench_opts o = {
        .n = env_int("CR_BENCH_N", 2000),
        .rate = env_int("CR_BENCH_RATE", 0),
        .max_in_flight = env_int("CR_BENCH_MAX_IN_FLIGHT", 32),
        .timeout_s = env_int("CR_BENCH_TIMEOUT_S", 600),
        .pg_pid = (pid_t)env_int("CR_BENCH_PG_PID", 0),
        .kafka_pid = (pid_t)env_int("CR_BENCH_KAFKA_PID", 0),
        .json_path = getenv("CR_BENCH_JSON"),
    };
    if (o.json_path != NULL && o.json_path[0] == '\0')
        o.json_path = NULL;
    if (o.rate > 0)
        o.n = o.rate * env_int("CR_BENCH_SECONDS", 10);
    parse_latency(&o);
    const char *runs = getenv("CR_BENCH_CONSUMERS");
    if (runs == NULL || runs[0] == '\0')
        runs = "1,2";
    char *copy = strdup(runs), *save = NULL;
    cr_assert_not_null(copy);
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        int consumers = atoi(tok);
        cr_assert(consumers >= 1 && consumers <= PIPELINE_MAX_PROCS,
                  "CR_BENCH_CONSUMERS: %s is not 1..%d", tok, PIPELINE_MAX_PROCS);
        run(&o, consumers);
    }
    free(copy);
}
