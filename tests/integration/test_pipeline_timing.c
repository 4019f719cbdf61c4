/*
 * The retry policy's timing as the pipeline applies it (issue 3): backoff
 * growth, the max_delay cap, Retry-After as a floor, the deadline, full
 * jitter's bounds, and the circuit breaker postponing attempts without
 * spending them.
 *
 * Everything is measured from the attempt log, not from the test's own
 * clock: an ANSWERED row with decision RETRY records when it was written
 * (at) and when the next attempt is due (next_attempt_at), so the planned
 * delay is next_attempt_at - at; the next STARTED row shows the attempt did
 * not start early. How late it started depends on the machine, so that is
 * only bounded loosely.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_fixture.h"

#define FINAL_TIMEOUT_MS 90000
/* Rounding between the worker's clock and the db's timestamps. */
#define SLACK_MS 100
/* An attempt may start this much after it was due on a busy machine (relay
 * poll, Kafka, consumer); beyond that something is wrong. */
#define LATE_MAX_MS 10000

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

/* One retry decision from the attempt log. */
struct gap {
    int attempt;         /* the attempt that failed */
    long long planned;   /* next_attempt_at - at of its ANSWERED row, ms */
    long long late;      /* next STARTED at - next_attempt_at, ms; -1 if none */
    bool has_next_start; /* the next attempt started */
};

/* The retry decisions of request_id, in attempt order (up to max). */
static int gaps(const char *request_id, struct gap *out, int max)
{
    static const char sql[] =
        "SELECT a.attempt, "
        "  round(extract(epoch FROM a.next_attempt_at - a.at) * 1000)::bigint, "
        "  round(extract(epoch FROM s.at - a.next_attempt_at) * 1000)::bigint "
        "FROM retry_attempt_log a "
        "LEFT JOIN retry_attempt_log s ON s.request_id = a.request_id "
        "  AND s.attempt = a.attempt + 1 AND s.event = 'STARTED' "
        "WHERE a.request_id = $1 AND a.event = 'ANSWERED' AND a.decision = 'RETRY' "
        "ORDER BY a.attempt";
    const char *params[] = {request_id};
    PGresult *res = PQexecParams(itest_pg(pipeline_itest(P)), sql, 1, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    int n = PQntuples(res) < max ? PQntuples(res) : max;
    for (int i = 0; i < n; i++) {
        out[i].attempt = atoi(PQgetvalue(res, i, 0));
        out[i].planned = atoll(PQgetvalue(res, i, 1));
        out[i].has_next_start = !PQgetisnull(res, i, 2);
        out[i].late = out[i].has_next_start ? atoll(PQgetvalue(res, i, 2)) : -1;
    }
    PQclear(res);
    return n;
}

static long long request_int(const char *request_id, const char *sql)
{
    const char *params[] = {request_id};
    return itest_query_int(pipeline_itest(P), sql, 1, params);
}

static const char *wait_final(const char *request_id)
{
    return pipeline_require_final(P, request_id, FINAL_TIMEOUT_MS);
}

/* Each gap's planned delay is want[i] (up to a fifth less: see below) and
 * the next attempt started when due, not before. */
static void expect_delays(const char *request_id, const long long *want, int nwant)
{
    struct gap g[16];
    int n = gaps(request_id, g, 16);
    cr_assert_eq(n, nwant, "%s: %d retry decisions in the attempt log, want %d (logs: %s)",
                 request_id, n, nwant, pipeline_log_dir(P));
    for (int i = 0; i < n; i++) {
        cr_log_info("%s: after attempt %d the next was due in %lld ms (want %lld), started %lld "
                    "ms after due",
                    request_id, g[i].attempt, g[i].planned, want[i], g[i].late);
        cr_expect_eq(g[i].attempt, i + 1);
        /* planned is measured from the row's insert time, a little after
         * the worker decided: it comes out short by the db's latency, never
         * long. */
        cr_expect(g[i].planned >= want[i] - want[i] / 5 && g[i].planned <= want[i] + SLACK_MS,
                  "%s: delay after attempt %d is %lld ms, want %lld", request_id, g[i].attempt,
                  g[i].planned, want[i]);
        cr_expect(g[i].has_next_start, "%s: attempt %d never started", request_id, i + 2);
        cr_expect(g[i].late >= -SLACK_MS, "%s: attempt %d started %lld ms before it was due",
                  request_id, i + 2, -g[i].late);
        cr_expect(g[i].late <= LATE_MAX_MS, "%s: attempt %d started %lld ms after it was due",
                  request_id, i + 2, g[i].late);
    }
}

Test(timing, backoff_grows_by_the_coefficient, .fini = stop, .timeout = 180)
{
    P = pipeline_start("backoff_growth",
                       "retry: { initial_delay: 500ms, backoff_coefficient: 2.0, max_delay: 10s, "
                       "max_attempts: 5, jitter: none }\n");
    pipeline_payment(P, "toss", "pk_grow", 1000, "KRW", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_grow\",\"type\":\"error_5xx\",\"times\":3}");
    pipeline_publish(P, "r-grow", "toss", "pk_grow", 1000, "KRW", false);

    cr_assert_str_eq(wait_final("r-grow"), "SUCCEEDED");
    const long long want[] = {500, 1000, 2000};
    expect_delays("r-grow", want, 3);
}

Test(timing, max_delay_caps_the_backoff, .fini = stop, .timeout = 180)
{
    P = pipeline_start("max_delay_cap",
                       "retry: { initial_delay: 400ms, backoff_coefficient: 3.0, max_delay: 1s, "
                       "max_attempts: 5, jitter: none }\n");
    pipeline_payment(P, "toss", "pk_cap", 1000, "KRW", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_cap\",\"type\":\"error_5xx\",\"times\":3}");
    pipeline_publish(P, "r-cap", "toss", "pk_cap", 1000, "KRW", false);

    cr_assert_str_eq(wait_final("r-cap"), "SUCCEEDED");
    /* 400, 1200 -> 1000, 3600 -> 1000 */
    const long long want[] = {400, 1000, 1000};
    expect_delays("r-cap", want, 3);
}

Test(timing, retry_after_is_a_floor, .fini = stop, .timeout = 180)
{
    P = pipeline_start("retry_after_floor", "retry: { initial_delay: 300ms, jitter: none }\n");
    pipeline_payment(P, "toss", "pk_429", 1000, "KRW", 0);
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"pk_429\",\"type\":\"rate_limited\",\"times\":1,\"retryAfter\":2}");
    pipeline_publish(P, "r-429", "toss", "pk_429", 1000, "KRW", false);

    cr_assert_str_eq(wait_final("r-429"), "SUCCEEDED");
    const char *params[] = {"r-429"};
    cr_expect_eq(itest_query_int(pipeline_itest(P),
                                 "SELECT http_status FROM retry_attempt_log WHERE request_id = $1 "
                                 "AND attempt = 1 AND event = 'ANSWERED'",
                                 1, params),
                 429);
    /* max(300ms computed, 2s Retry-After) */
    const long long want[] = {2000};
    expect_delays("r-429", want, 1);
}

/* The deadline ends the retries before max_attempts: the request is
 * EXHAUSTED as soon as the next attempt would start after it. */
Test(timing, deadline_stops_retries, .fini = stop, .timeout = 180)
{
    P = pipeline_start("deadline",
                       "retry: { initial_delay: 1s, backoff_coefficient: 2.0, max_delay: 10s, "
                       "max_attempts: 10, jitter: none, deadline: 6s }\n");
    pipeline_payment(P, "toss", "pk_dl", 1000, "KRW", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_dl\",\"type\":\"error_5xx\",\"times\":0}");
    pipeline_publish(P, "r-dl", "toss", "pk_dl", 1000, "KRW", false);

    cr_assert_str_eq(wait_final("r-dl"), "EXHAUSTED");
    long long attempts =
        request_int("r-dl", "SELECT attempts FROM cancel_request WHERE request_id = $1");
    cr_expect(attempts >= 1 && attempts < 10, "attempts %lld: the deadline should stop it early",
              attempts);
    cr_expect_eq(request_int("r-dl", "SELECT count(*) FROM retry_attempt_log WHERE "
                                     "request_id = $1 AND event = 'STARTED' AND at > "
                                     "(SELECT deadline_at FROM cancel_request WHERE "
                                     "request_id = $1)"),
                 0, "no attempt may start after the deadline");
    /* The stop was due: the last attempt's answer plus the policy's next
     * delay (1s * 2^(n-1)) falls after the deadline. */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT (a.at + interval '%lld milliseconds' > r.deadline_at)::int "
             "FROM retry_attempt_log a JOIN cancel_request r USING (request_id) "
             "WHERE a.request_id = $1 AND a.event = 'ANSWERED' AND a.attempt = %lld "
             "AND a.decision = 'EXHAUSTED'",
             1000LL << (attempts - 1), attempts);
    cr_expect_eq(request_int("r-dl", sql), 1,
                 "EXHAUSTED after attempt %lld although the next one fit before the deadline",
                 attempts);
    cr_expect_eq(pipeline_refunds(P, "pk_dl"), 0);

    struct pipeline_msg *m;
    size_t n = pipeline_read_topic(P, "dlq", 1, 30000, &m);
    cr_assert_eq(n, 1, "one dead letter (logs: %s)", pipeline_log_dir(P));
    char want_attempts[16];
    snprintf(want_attempts, sizeof(want_attempts), "%lld", attempts);
    cr_expect_str_eq(json_string_value(json_object_get(m[0].headers, "dlq.reason")), "EXHAUSTED");
    cr_expect_str_eq(json_string_value(json_object_get(m[0].headers, "dlq.attempts")),
                     want_attempts);
    pipeline_msgs_free(m, n);
}

/* Full jitter: every wait is somewhere in [0, computed], and they are not
 * all the computed one. */
Test(timing, full_jitter_stays_within_bounds, .fini = stop, .timeout = 180)
{
    P = pipeline_start("full_jitter",
                       "retry: { initial_delay: 1s, backoff_coefficient: 2.0, max_delay: 2s, "
                       "max_attempts: 5, jitter: full }\n");
    const char *ids[] = {"r-j1", "r-j2", "r-j3"};
    const char *keys[] = {"pk_j1", "pk_j2", "pk_j3"};
    for (int i = 0; i < 3; i++) {
        pipeline_payment(P, "toss", keys[i], 1000, "KRW", 0);
        char f[128];
        snprintf(f, sizeof(f), "{\"paymentKey\":\"%s\",\"type\":\"error_5xx\",\"times\":0}",
                 keys[i]);
        pipeline_sim_fault(P, f);
    }
    for (int i = 0; i < 3; i++)
        pipeline_publish(P, ids[i], "toss", keys[i], 1000, "KRW", false);

    int samples = 0, below = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(wait_final(ids[i]), "EXHAUSTED");
        struct gap g[16];
        int n = gaps(ids[i], g, 16);
        cr_expect_eq(n, 4, "%s: %d retry decisions, want 4", ids[i], n);
        for (int k = 0; k < n; k++) {
            long long computed = g[k].attempt == 1 ? 1000 : 2000;
            cr_log_info("%s: after attempt %d the next was due in %lld ms of at most %lld", ids[i],
                        g[k].attempt, g[k].planned, computed);
            cr_expect(g[k].planned >= 0 && g[k].planned <= computed + SLACK_MS,
                      "%s: jittered delay after attempt %d is %lld ms, outside [0, %lld]", ids[i],
                      g[k].attempt, g[k].planned, computed);
            cr_expect(g[k].late >= -SLACK_MS, "%s: attempt %d started early", ids[i],
                      g[k].attempt + 1);
            samples++;
            if (g[k].planned < computed * 9 / 10)
                below++;
        }
    }
    /* With 12 uniform draws, all in the top tenth has probability 1e-12. */
    cr_expect_gt(below, 0, "none of %d delays was jittered", samples);
}

/* An open breaker leaves the gateway alone: other requests of that gateway
 * are postponed without spending attempts, and succeed once it recovers. */
Test(timing, open_breaker_postpones_without_spending_attempts, .fini = stop, .timeout = 180)
{
    P = pipeline_start("breaker",
                       "retry: { initial_delay: 300ms, max_attempts: 10, jitter: none }\n"
                       "gateways:\n"
                       "  toss:\n"
                       "    breaker: { min_requests: 3, failure_ratio: 0.5, window: 30s, "
                       "open_for: 4s, half_open_probes: 1 }\n");
    /* The breaker counts distinct requests (one request failing again and
     * again is one bad payment): it takes three failing ones to open it. */
    static const char *trip[] = {"r-trip1", "r-trip2", "r-trip3"};
    static const char *trip_pk[] = {"pk_trip1", "pk_trip2", "pk_trip3"};
    for (int i = 0; i < 3; i++) {
        char fault[128];
        pipeline_payment(P, "toss", trip_pk[i], 1000, "KRW", 0);
        snprintf(fault, sizeof(fault), "{\"paymentKey\":\"%s\",\"type\":\"error_5xx\",\"times\":0}",
                 trip_pk[i]);
        pipeline_sim_fault(P, fault);
    }
    pipeline_payment(P, "toss", "pk_w1", 1000, "KRW", 0);
    pipeline_payment(P, "toss", "pk_w2", 1000, "KRW", 0);
    for (int i = 0; i < 3; i++)
        pipeline_publish(P, trip[i], "toss", trip_pk[i], 1000, "KRW", false);

    /* Three requests failed in the window: the breaker opens. */
    for (int i = 0; i < 3; i++) {
        const char *params[] = {trip[i]};
        cr_assert(pipeline_wait_query(P,
                                      "SELECT (count(*) >= 1)::text FROM retry_attempt_log "
                                      "WHERE request_id = $1 AND event = 'ANSWERED'",
                                      1, params, "true", 30000),
                  "%s did not fail (logs: %s)", trip[i], pipeline_log_dir(P));
    }
    pipeline_publish(P, "r-w1", "toss", "pk_w1", 1000, "KRW", false);
    pipeline_publish(P, "r-w2", "toss", "pk_w2", 1000, "KRW", false);

    /* Each waiting request's attempt 1 came up, was refused by the open
     * breaker, and was re-scheduled: a second RetryScheduled, and still no
     * attempt spent. */
    const char *waiting[] = {"r-w1", "r-w2"};
    for (int i = 0; i < 2; i++) {
        const char *params[] = {waiting[i]};
        cr_assert(pipeline_wait_query(P,
                                      "SELECT (count(*) >= 2)::text FROM outbox WHERE "
                                      "request_id = $1 AND event_type = "
                                      "'payments.cancel.retry.scheduled.v1'",
                                      1, params, "true", 30000),
                  "%s was not postponed (logs: %s)", waiting[i], pipeline_log_dir(P));
        cr_expect_eq(
            request_int(waiting[i], "SELECT attempts FROM cancel_request WHERE request_id = $1"), 0,
            "%s spent an attempt while the breaker was open", waiting[i]);
        cr_expect_eq(request_int(waiting[i], "SELECT count(*) FROM retry_attempt_log "
                                             "WHERE request_id = $1"),
                     0, "%s has attempt log rows while the breaker was open", waiting[i]);
    }
    cr_expect_eq(pipeline_refunds(P, "pk_w1") + pipeline_refunds(P, "pk_w2"), 0);
    long long trip_attempts[3];
    for (int i = 0; i < 3; i++)
        trip_attempts[i] =
            request_int(trip[i], "SELECT attempts FROM cancel_request WHERE request_id = $1");

    /* The gateway recovers. */
    long st = pipeline_sim_call(P, "DELETE", "/_sim/faults", NULL, NULL);
    cr_assert(st >= 200 && st < 300, "DELETE /_sim/faults: HTTP %ld", st);
    for (int i = 0; i < 2; i++) {
        cr_assert_str_eq(wait_final(waiting[i]), "SUCCEEDED");
        cr_expect_eq(
            request_int(waiting[i], "SELECT attempts FROM cancel_request WHERE request_id = $1"), 1,
            "%s: one attempt, the one that was made", waiting[i]);
    }
    cr_expect_eq(pipeline_refunds(P, "pk_w1"), 1);
    cr_expect_eq(pipeline_refunds(P, "pk_w2"), 1);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(wait_final(trip[i]), "SUCCEEDED");
        cr_expect_eq(pipeline_refunds(P, trip_pk[i]), 1);
        /* Its attempts while open were postponed too: one more attempt
         * than it had made when the faults were cleared. */
        cr_expect_eq(
            request_int(trip[i], "SELECT attempts FROM cancel_request WHERE request_id = $1"),
            trip_attempts[i] + 1, "%s: %lld attempts when the faults were cleared", trip[i],
            trip_attempts[i]);
    }
}
