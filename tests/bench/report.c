/*
 * report: see report.h.
 */
#include "report.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/cancel_event.h"

/* The simulator stands in for a gateway: its memory is not the pipeline's. */
#define SIMULATOR_NAME "gateway-sim"

static const struct {
    const char *id, *label, *from, *to;
} stage_defs[BENCH_STAGES] = {
    {"publish_to_recorded", "publish -> recorded by the intake", "published", "recorded"},
    {"recorded_to_started", "recorded -> attempt started", "recorded", "started"},
    {"started_to_answered", "attempt started -> answered", "started", "answered"},
    {"answered_to_outcome", "answered -> outcome published", "answered", "outcome"},
    {"publish_to_final", "publish -> final status", "published", "final"},
    {"publish_to_outcome", "publish -> outcome published", "published", "outcome"},
};

/* One row per request with the timestamps of report.h. */
static const char sql_view[] =
    "CREATE OR REPLACE TEMP VIEW bench_request AS"
    " SELECT c.request_id, c.source_timestamp AS published, c.created_at AS recorded,"
    "   (SELECT min(l.at) FROM retry_attempt_log l"
    "     WHERE l.request_id = c.request_id AND l.event = 'STARTED') AS started,"
    "   (SELECT max(l.at) FROM retry_attempt_log l"
    "     WHERE l.request_id = c.request_id AND l.event = 'ANSWERED') AS answered,"
    "   c.finished_at AS final,"
    "   (SELECT max(o.published_at) FROM outbox o"
    "     WHERE o.request_id = c.request_id"
    "       AND o.event_type = '" CANCEL_EVENT_TYPE_OUTCOME "') AS outcome"
    " FROM cancel_request c";

/* Milliseconds, rounded to 0.1; -1 for none. */
#define MS(expr) "coalesce(round((" expr ")::numeric, 1), -1)"

/* The percentiles of one stage; %s - %s: its two timestamps. */
#define SQL_STAGE                                                                                                                                                                       \
    "SELECT format('%%s %%s %%s %%s', count(x),"                                                                                                                                        \
    "  " MS(                                                                                                                                                                            \
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY x)") ","                                                                                                                           \
                                                          "  " MS(                                                                                                                      \
                                                              "percentile_cont(0.99) WITHIN "                                                                                           \
                                                              "GROUP (ORDER BY x)") ","                                                                                                 \
                                                                                    "  " MS(                                                                                            \
                                                                                        "max(x)") ")"                                                                                   \
                                                                                                  " FROM (SELECT extract(epoch FROM %s - %s)::float8 * 1000 AS x FROM bench_request) s" \
                                                                                                  " WHERE x IS NOT NULL"

static void read_stage(struct itest *t, int i, struct stage_stat *s)
{
    char sql[1024];
    snprintf(sql, sizeof(sql), SQL_STAGE, stage_defs[i].to, stage_defs[i].from);
    char *v = itest_query_value(t, sql, 0, NULL);
    cr_assert(v != NULL &&
                  sscanf(v, "%lld %lf %lf %lf", &s->n, &s->p50_ms, &s->p99_ms, &s->max_ms) == 4,
              "stage %s: %s", stage_defs[i].id, v != NULL ? v : "NULL");
    free(v);
}

static void read_setting(struct itest *t, const char *name, char *out, size_t len)
{
    const char *params[] = {name};
    char *v = itest_query_value(t, "SELECT current_setting($1)", 1, params);
    snprintf(out, len, "%s", v != NULL ? v : "?");
    free(v);
}

void bench_read_db(struct itest *t, struct bench_run *r)
{
    char err[512];
    /* One snapshot for every figure, even if a run that timed out left
     * the pipeline still working. */
    cr_assert(itest_exec(t, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, err, sizeof(err)),
              "%s", err);
    cr_assert(itest_exec(t, sql_view, 0, NULL, err, sizeof(err)), "bench view: %s", err);

    char *v = itest_query_value(
        t,
        "SELECT format('%s %s %s %s', count(*), count(final),"
        "  " MS("extract(epoch FROM max(final) - min(published)) * 1000") ","
                                                                          "  " MS(
                                                                              "extract(epoch FROM "
                                                                              "max(published) - "
                                                                              "min(published)) * "
                                                                              "1000") ")"
                                                                                      " FROM "
                                                                                      "bench_"
                                                                                      "request",
        0, NULL);
    cr_assert(v != NULL && sscanf(v, "%lld %lld %lf %lf", &r->recorded, &r->final, &r->span_ms,
                                  &r->publish_span_ms) == 4,
              "totals: %s", v != NULL ? v : "NULL");
    free(v);
    r->throughput = r->span_ms > 0 ? (double)r->final * 1000.0 / r->span_ms : 0;
    r->attempts = itest_query_int(
        t, "SELECT count(*) FROM retry_attempt_log WHERE event = 'STARTED'", 0, NULL);

    v = itest_query_value(t,
                          "SELECT coalesce(json_object_agg(status, n ORDER BY status), '{}')::text"
                          " FROM (SELECT status, count(*) AS n FROM cancel_request"
                          "        GROUP BY status) s",
                          0, NULL);
    r->statuses = json_loads(v != NULL ? v : "{}", 0, NULL);
    cr_assert_not_null(r->statuses, "statuses: %s", v);
    free(v);

    for (int i = 0; i < BENCH_STAGES; i++)
        read_stage(t, i, &r->stages[i]);
    read_setting(t, "fsync", r->fsync, sizeof(r->fsync));
    read_setting(t, "synchronous_commit", r->synchronous_commit, sizeof(r->synchronous_commit));
    read_setting(t, "full_page_writes", r->full_page_writes, sizeof(r->full_page_writes));
    cr_assert(itest_exec(t, "COMMIT", 0, NULL, err, sizeof(err)), "%s", err);
}

long long bench_not_final(const struct bench_run *r)
{
    return (long long)r->n - r->final;
}

static double per_1000(const struct bench_run *r, double cpu_s)
{
    return r->n > 0 && cpu_s >= 0 ? cpu_s * 1000.0 / r->n : -1;
}

/* "retry-consumer", then "retry-consumer#2" for the second of that name. */
static void proc_key(const struct bench_run *r, int i, char *buf, size_t len)
{
    int same = 1;
    for (int j = 0; j < i; j++)
        same += strcmp(r->procs[j].name, r->procs[i].name) == 0;
    if (same == 1)
        snprintf(buf, len, "%s", r->procs[i].name);
    else
        snprintf(buf, len, "%s#%d", r->procs[i].name, same);
}

static void print_ms(double ms)
{
    if (ms < 0)
        printf(" %10s", "-");
    else
        printf(" %10.1f", ms);
}

static void print_cpu_row(const struct bench_run *r, const char *name, const char *pid,
                          double cpu_s, double hwm_mib)
{
    printf("  %-20s %8s", name, pid);
    if (cpu_s < 0)
        printf(" %10s %14s", "-", "-");
    else
        printf(" %10.2f %14.3f", cpu_s, per_1000(r, cpu_s));
    if (hwm_mib < 0)
        printf(" %13s\n", "-");
    else
        printf(" %13.1f\n", hwm_mib);
}

void bench_print(const struct bench_run *r)
{
    if (r->rate > 0)
        printf("pipeline benchmark: %d requests offered at %d/s", r->n, r->rate);
    else
        printf("pipeline benchmark: burst of %d request%s", r->n, r->n == 1 ? "" : "s");
    printf("; %d retry-consumer%s, max_in_flight %d; gateway latency %d-%d ms\n", r->consumers,
           r->consumers == 1 ? "" : "s", r->max_in_flight, r->lat_min_ms, r->lat_max_ms);
    printf("  PostgreSQL settings in force: fsync=%s synchronous_commit=%s full_page_writes=%s\n",
           r->fsync, r->synchronous_commit, r->full_page_writes);
    char *st = json_dumps(r->statuses, JSON_COMPACT);
    printf(
        "  requests: %d published, %lld recorded, %lld final %s, %lld attempts, %lld not final\n",
        r->n, r->recorded, r->final, st != NULL ? st : "{}", r->attempts, bench_not_final(r));
    free(st);
    printf("  first -> last publish %.0f ms", r->publish_span_ms);
    if (r->publish_span_ms > 0 && r->n > 1)
        printf(" (%.0f requests/s offered)", (r->n - 1) * 1000.0 / r->publish_span_ms);
    printf("; first publish -> last final status %.0f ms\n", r->span_ms);
    printf("  throughput end to end: %.1f requests/s\n\n", r->throughput);

    printf("  %-36s %7s %10s %10s %10s\n", "stage (ms)", "n", "p50", "p99", "max");
    for (int i = 0; i < BENCH_STAGES; i++) {
        if (i == 4)
            printf("  end to end:\n");
        printf("  %-36s %7lld", stage_defs[i].label, r->stages[i].n);
        print_ms(r->stages[i].p50_ms);
        print_ms(r->stages[i].p99_ms);
        print_ms(r->stages[i].max_ms);
        printf("\n");
    }

    printf("\n  %-20s %8s %10s %14s %13s\n", "process", "pid", "CPU s", "CPU s/1000 req",
           "peak RSS MiB");
    for (int i = 0; i < r->nprocs; i++) {
        char pid[16];
        snprintf(pid, sizeof(pid), "%ld", (long)r->procs[i].pid);
        print_cpu_row(r, r->procs[i].name, pid, r->cpu_run_s[i], r->procs[i].hwm_mib);
    }
    print_cpu_row(r, "postgres (server)", "-", r->pg_cpu_s, -1);
    print_cpu_row(r, "kafka (broker)", "-", r->kafka_cpu_s, -1);
    printf("  (CPU: utime+stime from just before the first publish to just before the stop)\n");
    fflush(stdout);
}

/* A figure rounded to step, or null when it is unknown (< 0). */
static json_t *figure(double v, double step)
{
    return v >= 0 ? json_real(round(v / step) * step) : json_null();
}

static json_t *stage_json(const struct stage_stat *s)
{
    return json_pack("{s:I, s:f, s:f, s:f}", "n", (json_int_t)s->n, "p50_ms", s->p50_ms, "p99_ms",
                     s->p99_ms, "max_ms", s->max_ms);
}

json_t *bench_json(const struct bench_run *r)
{
    const struct stage_stat *e2e = &r->stages[4];
    json_t *stages = json_object(), *cpu = json_object(), *rss = json_object();
    double rss_max = 0;

    for (int i = 0; i < BENCH_STAGES; i++)
        json_object_set_new(stages, stage_defs[i].id, stage_json(&r->stages[i]));
    for (int i = 0; i < r->nprocs; i++) {
        char key[48];
        proc_key(r, i, key, sizeof(key));
        json_object_set_new(cpu, key, figure(per_1000(r, r->cpu_run_s[i]), 0.001));
        json_object_set_new(rss, key, figure(r->procs[i].hwm_mib, 0.1));
        if (strcmp(r->procs[i].name, SIMULATOR_NAME) != 0 && r->procs[i].hwm_mib > rss_max)
            rss_max = r->procs[i].hwm_mib;
    }
    json_object_set_new(cpu, "postgres", figure(per_1000(r, r->pg_cpu_s), 0.001));
    json_object_set_new(cpu, "kafka", figure(per_1000(r, r->kafka_cpu_s), 0.001));

    json_t *j = json_pack(
        "{s:s, s:i, s:i, s:i, s:i, s:[i,i], s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:O}", "mode",
        r->rate > 0 ? "rate" : "burst", "requests", r->n, "rate", r->rate, "consumers",
        r->consumers, "max_in_flight", r->max_in_flight, "gateway_ms", r->lat_min_ms, r->lat_max_ms,
        "throughput", round(r->throughput * 10) / 10, "p50_ms", e2e->p50_ms, "p99_ms", e2e->p99_ms,
        "max_ms", e2e->max_ms, "rss_max_mib", round(rss_max * 10) / 10, "final",
        (json_int_t)r->final, "not_final", (json_int_t)bench_not_final(r), "attempts",
        (json_int_t)r->attempts, "statuses", r->statuses);
    cr_assert_not_null(j);
    json_object_set_new(j, "span_ms", json_real(r->span_ms));
    json_object_set_new(j, "stages", stages);
    json_object_set_new(j, "cpu_s_per_1000", cpu);
    json_object_set_new(j, "rss_mib", rss);
    json_object_set_new(j, "settings",
                        json_pack("{s:s, s:s, s:s}", "fsync", r->fsync, "synchronous_commit",
                                  r->synchronous_commit, "full_page_writes", r->full_page_writes));
    return j;
}
