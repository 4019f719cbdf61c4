/*
 * report: what a pipeline benchmark run measured, read from the database
 * after the run and from /proc just before the processes stop, printed as a
 * table and as one JSON object.
 *
 * The stages come from timestamps the pipeline already keeps (no column is
 * added for the benchmark), per request:
 *   published  cancel_request.source_timestamp: the CancelFailed event's
 *              Kafka timestamp (the producer's clock, same machine)
 *   recorded   cancel_request.created_at: now() of the intake's transaction
 *              (its start, not its commit)
 *   started    the first STARTED fact of retry_attempt_log (clock_timestamp()
 *              of its insert, in the claim transaction)
 *   answered   the last ANSWERED fact of retry_attempt_log (clock_timestamp()
 *              of its insert, in the finish transaction)
 *   final      cancel_request.finished_at: now() of the finish transaction
 *   outcome    outbox.published_at of the request's Outcome row: now() of
 *              the relay's mark transaction, after the broker acknowledged it
 * A request with several attempts counts from its first start to its last
 * answer, so "started -> answered" then holds the waits between attempts.
 */
#ifndef CR_BENCH_REPORT_H
#define CR_BENCH_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "harness.h"
#include "procstat.h"

#define BENCH_STAGES    6
#define BENCH_MAX_PROCS 24

struct stage_stat {
    long long n; /* requests that have both timestamps */
    double p50_ms, p99_ms, max_ms;
};

struct bench_run {
    /* what was run */
    int n;         /* requests */
    int rate;      /* offered requests/s; 0 for a burst */
    int consumers; /* retry-consumers */
    int max_in_flight;
    int lat_min_ms, lat_max_ms;

    /* from the database */
    long long recorded, final, attempts;
    json_t *statuses;       /* {"SUCCEEDED": 2000, ...} */
    double publish_span_ms; /* first -> last publish */
    double span_ms;         /* first publish -> last final status */
    double throughput;      /* final requests / span */
    struct stage_stat stages[BENCH_STAGES];
    char fsync[16], synchronous_commit[16], full_page_writes[16];

    /* from /proc: the pipeline's processes (children of this one) just
     * before they stop, and their CPU since just before the first publish */
    struct proc_sample procs[BENCH_MAX_PROCS];
    double cpu_run_s[BENCH_MAX_PROCS];
    int nprocs;
    double pg_cpu_s, kafka_cpu_s; /* the same for the servers; < 0 unknown */
};

/* Fill the database figures of r (r->n must be set). */
void bench_read_db(struct itest *t, struct bench_run *r);

/* The table, on stdout. */
void bench_print(const struct bench_run *r);

/* The figures as one JSON object (caller decrefs): throughput, p50_ms,
 * p99_ms, max_ms (publish -> final), rss_max_mib (largest peak of the
 * pipeline's own processes, the simulator excluded), stages, cpu_s_per_1000,
 * rss_mib, settings, statuses, not_final. */
json_t *bench_json(const struct bench_run *r);

/* Requests that never reached a final status. */
long long bench_not_final(const struct bench_run *r);

#endif
