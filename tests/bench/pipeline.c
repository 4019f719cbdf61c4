/*
 * bench/pipeline: push N requests (CR_BENCH_N, default 2000) through the
 * real pipeline (intake-consumer, outbox-relay, retry-consumer, gateway-sim,
 * on the local stack) with 1 and then 2 retry-consumers, and print:
 * requests per second end to end, p50/p99/max from publish (the Kafka
 * timestamp of the CancelFailed event) to the final status (finished_at in
 * the db), and the peak RSS (VmHWM) of every process.
 *
 * A benchmark, not a test: it asserts only that every request ended, never
 * on speed. Run it with `meson test -C build --benchmark pipeline` (or the
 * binary itself, with the environment of tests/integration/meson.build);
 * docs/benchmarks.md has the figures and the exact command.
 *
 * Knobs (environment): CR_BENCH_N (requests), CR_BENCH_LATENCY_MS
 * ("min-max" gateway latency of the simulator, default 10-30),
 * CR_BENCH_CONSUMERS ("1,2" by default: the runs to make).
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "cloudevent.h"
#include "pipeline_fixture.h"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v != NULL && atoi(v) > 0 ? atoi(v) : dflt;
}

static void payment_key_of(char *buf, size_t len, int i)
{
    snprintf(buf, len, "tpay_bench_%06d", i);
}

static void bench_event(int i, struct cancel_failed_event *ev, char *rid, char *pk, void *arg)
{
    (void)arg;
    snprintf(rid, PIPELINE_ID_MAX, "bench-%06d", i);
    payment_key_of(pk, PIPELINE_ID_MAX, i);
    ev->request_id = rid;
    ev->payment_key = pk;
    ev->gateway = "toss";
    ev->amount = 15000;
    ev->currency = "KRW";
}

/* Print "name pid VmHWM" for every child process of this one (the
 * pipeline's processes and the simulator). */
static void print_peak_rss(void)
{
    DIR *d = opendir("/proc");
    cr_assert_not_null(d);
    struct dirent *e;
    pid_t self = getpid();
    while ((e = readdir(d)) != NULL) {
        char path[300], line[512], comm[64] = "?";
        long ppid = -1, hwm_kb = -1;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof(line), f) != NULL) {
            if (sscanf(line, "Name: %63s", comm) == 1)
                continue;
            if (sscanf(line, "PPid: %ld", &ppid) == 1)
                continue;
            if (sscanf(line, "VmHWM: %ld kB", &hwm_kb) == 1)
                continue;
        }
        fclose(f);
        if (ppid == (long)self && hwm_kb >= 0)
            printf("  peak RSS  %-16s pid %-7s %8.1f MiB\n", comm, e->d_name, hwm_kb / 1024.0);
    }
    closedir(d);
}

static void run(int consumers, int n, int lat_min, int lat_max)
{
    char name[64], latency[96];
    snprintf(name, sizeof(name), "bench_%d_consumers", consumers);
    /* Production-like sizes (the example config's defaults) over the test
     * policy; info logs, as in production. */
    P = pipeline_start(name, "consumers:\n"
                             "  retry: { max_in_flight: 32 }\n"
                             "relay: { batch_size: 500 }\n");
    for (int i = 1; i < consumers; i++)
        pipeline_start_process(P, PIPELINE_RETRY, i);
    snprintf(latency, sizeof(latency), "{\"minMs\":%d,\"maxMs\":%d}", lat_min, lat_max);
    cr_assert_eq(pipeline_sim_call(P, "PUT", "/_sim/latency", latency, NULL), 200);
    for (int i = 0; i < n; i++) {
        char pk[64];
        payment_key_of(pk, sizeof(pk), i);
        pipeline_payment(P, "toss", pk, 15000, "KRW", 0);
    }
    /* Let every consumer join the group before the clock starts. */
    itest_sleep_ms(3000);

    struct itest *t = pipeline_itest(P);
    int64_t t0 = itest_mono_ms();
    pipeline_publish_many(P, n, bench_event, NULL);
    int64_t published_ms = itest_mono_ms() - t0;
    long long done = 0;
    while (itest_mono_ms() - t0 < 600000) {
        done = itest_query_int(
            t, "SELECT count(*) FROM cancel_request WHERE finished_at IS NOT NULL", 0, NULL);
        if (done >= n)
            break;
        itest_sleep_ms(100);
    }
    int64_t wall_ms = itest_mono_ms() - t0;
    cr_assert_eq(done, n, "only %lld of %d requests ended within 600 s (logs: %s)", done, n,
                 pipeline_log_dir(P));

    char *figures = itest_query_value(
        t,
        "SELECT format('%s %s %s %s %s %s %s %s',"
        "  count(*) FILTER (WHERE status = 'SUCCEEDED'),"
        "  round(extract(epoch FROM max(finished_at) - min(source_timestamp)) * 1000),"
        "  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM"
        "    finished_at - source_timestamp)) * 1000),"
        "  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM"
        "    finished_at - source_timestamp)) * 1000),"
        "  round(extract(epoch FROM max(finished_at - source_timestamp)) * 1000),"
        "  (SELECT count(*) FROM retry_attempt_log WHERE event = 'STARTED'),"
        "  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM"
        "    created_at - source_timestamp)) * 1000),"
        "  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM"
        "    created_at - source_timestamp)) * 1000))"
        " FROM cancel_request",
        0, NULL);
    long long ok = 0, span = 0, p50 = 0, p99 = 0, worst = 0, attempts = 0, in50 = 0, in99 = 0;
    cr_assert_eq(sscanf(figures, "%lld %lld %lld %lld %lld %lld %lld %lld", &ok, &span, &p50, &p99,
                        &worst, &attempts, &in50, &in99),
                 8, "figures: %s", figures);
    free(figures);

    printf("pipeline benchmark: %d request%s, %d retry-consumer%s, gateway latency %d-%d ms\n", n,
           n == 1 ? "" : "s", consumers, consumers == 1 ? "" : "s", lat_min, lat_max);
    printf("  succeeded %lld of %d, %lld attempts\n", ok, n, attempts);
    printf("  published all in %lld ms; all final %lld ms after the first publish\n",
           (long long)published_ms, span);
    printf("  throughput end to end: %.0f requests/s (wall clock of this program: %.0f/s)\n",
           span > 0 ? n * 1000.0 / (double)span : 0.0,
           wall_ms > 0 ? n * 1000.0 / (double)wall_ms : 0.0);
    printf("  publish -> final status: p50 %lld ms, p99 %lld ms, max %lld ms\n", p50, p99, worst);
    printf("  publish -> recorded by the intake: p50 %lld ms, p99 %lld ms\n", in50, in99);
    print_peak_rss();
    printf("  logs: %s\n\n", pipeline_log_dir(P));
    fflush(stdout);
    stop();
}

Test(bench, pipeline, .fini = stop, .timeout = 1800)
{
    int n = env_int("CR_BENCH_N", 2000);
    int lat_min = 10, lat_max = 30;
    const char *lat = getenv("CR_BENCH_LATENCY_MS");
    if (lat != NULL && sscanf(lat, "%d-%d", &lat_min, &lat_max) != 2) {
        lat_min = 10;
        lat_max = 30;
    }
    const char *runs = getenv("CR_BENCH_CONSUMERS");
    if (runs == NULL || runs[0] == '\0')
        runs = "1,2";
    char *copy = strdup(runs), *save = NULL;
    cr_assert_not_null(copy);
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        int consumers = atoi(tok);
        cr_assert(consumers >= 1 && consumers <= PIPELINE_MAX_PROCS,
                  "CR_BENCH_CONSUMERS: %s is not 1..%d", tok, PIPELINE_MAX_PROCS);
        run(consumers, n, lat_min, lat_max);
    }
    free(copy);
}
