/*
 * chaos: the whole pipeline under faults, on a stack of its own
 * (tests/chaos/run starts it and runs this program; see
 * tests/chaos/README.md).
 *
 * Built on the integration fixture (pipeline_fixture.h): a Criterion
 * executable with one test, run only by tests/chaos/run, never by
 * `meson test`. Seeded by CHAOS_SEED: the same seed gives the same gateway
 * behaviour per request and the same list and order of faults (their exact
 * timing still depends on the machine). CHAOS_REQUESTS requests (default
 * 2000) are published in CHAOS_BATCHES batches, with faults between them;
 * then the test waits for every request to be final, settling Stripe's
 * pending refunds, and checks the gateway ledger and the Slack sink.
 *
 * What it prints (stdout) is the table of tests/chaos/README.md; the test
 * fails unless no request was lost, none refunded twice and no alert lost.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "pipeline_fixture.h"
#include "slack_sink_fixture.h"

#include "base/clock.h"

#define CHAOS_BATCHES  10
#define CHAOS_CAP_MS   (570 * 1000)
#define CHAOS_LEASE_MS 10000

/* What the simulator does with request i's refund. */
enum behaviour {
    B_OK,
    B_5XX_THEN_OK,
    B_APPLY_DROP,
    B_APPLY_HANG,
    B_STORED_ERROR,
    B_PERMANENT,
    B_PENDING,
    B_ALREADY,
    B_5XX_FOREVER,
    B_COUNT
};
static const char *const behaviour_name[B_COUNT] = {
    "succeed",       "5xx then succeed", "apply_then_drop",  "apply_then_hang", "stored 500",
    "permanent 400", "pending (Stripe)", "already refunded", "503 every time"};
/* Per mille of requests with each behaviour (sums to 1000). */
static const int behaviour_permille[B_COUNT] = {680, 90, 40, 30, 30, 30, 40, 40, 20};

enum fault {
    F_KILL_INTAKE,
    F_KILL_RETRY,
    F_KILL_RELAY,
    F_KILL_ALERT,
    F_STOP_RETRY,
    F_RESTART_PG,
    F_RESTART_KAFKA,
    F_GATEWAY_HANG,
    F_COUNT
};
static const char *const fault_name[F_COUNT] = {
    "kill -9 intake-consumer", "kill -9 retry-consumer",   "kill -9 outbox-relay",
    "kill -9 alert-consumer",  "SIGSTOP retry past lease", "restart PostgreSQL",
    "restart Kafka",           "gateway hangs (sim fault)"};

struct chaos {
    struct pipeline *p;
    uint64_t rng;
    int n;
    enum behaviour *beh;
    int faults[F_COUNT];
    char dsn[1024];
    struct slack_sink sink;
    int died;    /* processes found dead that no fault killed */
    int skipped; /* planned faults not injected: out of time */
};

static struct chaos C;

/* splitmix64: the only source of randomness, seeded by CHAOS_SEED. */
static uint64_t rnd(void)
{
    uint64_t z = (C.rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int rnd_below(int n)
{
    return (int)(rnd() % (uint64_t)n);
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtol(v, NULL, 10) : def;
}

static void request_id_of(char *buf, size_t len, int i)
{
    snprintf(buf, len, "chaos-%05d", i);
}

static void payment_key_of(char *buf, size_t len, int i)
{
    snprintf(buf, len, "%s_chaos_%05d", C.beh[i] == B_PENDING || i % 3 == 1 ? "pi" : "tpay", i);
}

static bool is_stripe(int i)
{
    return C.beh[i] == B_PENDING || i % 3 == 1;
}

static long long amount_of(int i)
{
    return 1000 + i;
}

static void stop_all(void)
{
    pipeline_stop(C.p);
    C.p = NULL;
    slack_sink_stop(&C.sink);
    free(C.beh);
    C.beh = NULL;
}

/* ---- the database, on a connection of our own per query: PostgreSQL
 * restarts under us, and the fixture's connection would not survive ---- */

/* The first column of the first row as a number; -1 when the database
 * cannot answer (restarting). */
static long long q_int(const char *sql)
{
    long long v = -1;
    PGconn *c = PQconnectdb(C.dsn);
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

static const char final_sql[] =
    "SELECT count(*) FROM cancel_request WHERE status IN ('SUCCEEDED', 'ALREADY_REFUNDED',"
    " 'FAILED', 'EXHAUSTED', 'MANUALLY_RESOLVED')";

/* The requests by status, e.g. "EXHAUSTED=6, SUCCEEDED=294" (static). */
static const char *status_summary(void)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "(database not answering)");
    PGconn *c = PQconnectdb(C.dsn);
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SELECT string_agg(status || '=' || n, ', ' ORDER BY status)"
                                " FROM (SELECT status, count(*) AS n FROM cancel_request"
                                " GROUP BY status) s");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            snprintf(buf, sizeof(buf), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(c);
    return buf;
}

/* ---- the simulator ---- */

/* Create request i's payment and its faults. */
static void prepare(int i)
{
    char pk[PIPELINE_ID_MAX], json[512];
    payment_key_of(pk, sizeof(pk), i);
    snprintf(json, sizeof(json),
             "{\"gateway\":\"%s\",\"paymentKey\":\"%s\",\"amount\":%lld,\"currency\":\"%s\","
             "\"refunded\":%lld%s}",
             is_stripe(i) ? "stripe" : "toss", pk, amount_of(i), is_stripe(i) ? "USD" : "KRW",
             C.beh[i] == B_ALREADY ? amount_of(i) : 0,
             C.beh[i] == B_PENDING ? ",\"refundStatus\":\"pending\"" : "");
    pipeline_sim_post(C.p, "/_sim/payments", json);
    switch (C.beh[i]) {
    case B_5XX_THEN_OK:
        snprintf(json, sizeof(json), "{\"paymentKey\":\"%s\",\"type\":\"error_5xx\",\"times\":%d}",
                 pk, 1 + rnd_below(2));
        pipeline_sim_fault(C.p, json);
        break;
    case B_APPLY_DROP:
        snprintf(json, sizeof(json), "{\"paymentKey\":\"%s\",\"type\":\"apply_then_drop\"}", pk);
        pipeline_sim_fault(C.p, json);
        break;
    case B_APPLY_HANG:
        snprintf(json, sizeof(json),
                 "{\"paymentKey\":\"%s\",\"type\":\"apply_then_hang\",\"delayMs\":2500}", pk);
        pipeline_sim_fault(C.p, json);
        break;
    case B_STORED_ERROR:
        snprintf(json, sizeof(json),
                 "{\"paymentKey\":\"%s\",\"type\":\"provider_error\",\"stored\":true}", pk);
        pipeline_sim_fault(C.p, json);
        break;
    case B_5XX_FOREVER:
        snprintf(json, sizeof(json), "{\"paymentKey\":\"%s\",\"type\":\"error_5xx\",\"times\":0}",
                 pk);
        pipeline_sim_fault(C.p, json);
        break;
    case B_PERMANENT:
        snprintf(json, sizeof(json), "{\"paymentKey\":\"%s\",\"type\":\"permanent\"}", pk);
        pipeline_sim_fault(C.p, json);
        break;
    default:
        break;
    }
}

/* Move every pending refund to succeeded, as Stripe does later. Returns how
 * many it settled. */
static int settle_pending(void)
{
    char *body = pipeline_sim_get(C.p, "/_sim/ledger");
    json_t *ledger = json_loads(body, 0, NULL);
    free(body);
    cr_assert_not_null(ledger, "the ledger is not JSON");
    int settled = 0;
    size_t i, j;
    json_t *pay, *ref;
    json_array_foreach(json_object_get(ledger, "payments"), i, pay)
    {
        json_array_foreach(json_object_get(pay, "refunds"), j, ref)
        {
            const char *st = json_string_value(json_object_get(ref, "status"));
            if (st == NULL || strcmp(st, "pending") != 0)
                continue;
            char path[160];
            snprintf(path, sizeof(path), "/_sim/refunds/%s",
                     json_string_value(json_object_get(ref, "id")));
            pipeline_sim_post(C.p, path, "{\"status\":\"succeeded\"}");
            settled++;
        }
    }
    json_decref(ledger);
    return settled;
}

/* Payments refunded more than their amount, or refunded more than once
 * under cancel-retry's keys (refunds planted by the set-up have none). */
static int count_doubles(void)
{
    char *body = pipeline_sim_get(C.p, "/_sim/ledger");
    json_t *ledger = json_loads(body, 0, NULL);
    free(body);
    cr_assert_not_null(ledger, "the ledger is not JSON");
    int doubles = 0;
    size_t i, j;
    json_t *pay, *ref;
    json_array_foreach(json_object_get(ledger, "payments"), i, pay)
    {
        int keyed = 0;
        json_array_foreach(json_object_get(pay, "refunds"), j, ref)
        {
            const char *st = json_string_value(json_object_get(ref, "status"));
            if (json_is_string(json_object_get(ref, "idempotencyKey")) && st != NULL &&
                strcmp(st, "failed") != 0 && strcmp(st, "canceled") != 0)
                keyed++;
        }
        json_int_t amount = json_integer_value(json_object_get(pay, "amount"));
        json_int_t refunded = json_integer_value(json_object_get(pay, "refunded"));
        if (keyed > 1 || refunded > amount) {
            doubles++;
            fprintf(stderr, "chaos: double refund of %s: %d refunds, %lld of %lld\n",
                    json_string_value(json_object_get(pay, "paymentKey")), keyed,
                    (long long)refunded, (long long)amount);
        }
    }
    json_decref(ledger);
    return doubles;
}

/* ---- the Slack sink ---- */

/* Accepted posts whose text names request_id. */
static int posts_for(const json_t *posts, const char *request_id)
{
    int n = 0;
    size_t i;
    json_t *post;
    json_array_foreach(posts, i, post)
    {
        if (json_integer_value(json_object_get(post, "status")) == 200 &&
            strstr(slack_sink_text(post), request_id) != NULL)
            n++;
    }
    return n;
}

/* Requests that must alert (FAILED, EXHAUSTED: a CONFIG_FAULT request is
 * FAILED too), from the database; NULL while it cannot answer. */
static PGresult *alerting_requests(void)
{
    PGconn *c = PQconnectdb(C.dsn);
    PGresult *r = NULL;
    if (PQstatus(c) == CONNECTION_OK) {
        r = PQexec(c, "SELECT request_id FROM cancel_request WHERE status IN ('FAILED', "
                      "'EXHAUSTED') ORDER BY request_id");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            PQclear(r);
            r = NULL;
        }
    }
    PQfinish(c);
    return r;
}

/* ---- faults ---- */

static void stack(const char *args)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "\"%s/deploy/local/stack\" %s >>'%s/stack.log' 2>&1",
             itest_require_env("CR_SOURCE_ROOT"), args, pipeline_log_dir(C.p));
    if (system(cmd) != 0)
        fprintf(stderr, "chaos: deploy/local/stack %s failed (see %s/stack.log)\n", args,
                pipeline_log_dir(C.p));
}

/* Start again any pipeline process that exited on its own (a fatal error
 * during an outage), counting it: the run goes on, the table says so. */
static void revive(void)
{
    static const struct {
        enum pipeline_proc which;
        int slots;
    } procs[] = {
        {PIPELINE_INTAKE, 1}, {PIPELINE_RELAY, 2}, {PIPELINE_RETRY, 2}, {PIPELINE_ALERT, 1}};
    for (size_t k = 0; k < sizeof(procs) / sizeof(procs[0]); k++) {
        for (int s = 0; s < procs[k].slots; s++) {
            if (!pipeline_running(C.p, procs[k].which, s)) {
                fprintf(stderr, "chaos: process kind %d slot %d had exited: started again\n",
                        (int)procs[k].which, s);
                C.died++;
                pipeline_start_process(C.p, procs[k].which, s);
            }
        }
    }
}

static void inject(enum fault f)
{
    revive();
    int slot = rnd_below(2);
    int pause_ms = rnd_below(2000);
    fprintf(stderr, "chaos: %s\n", fault_name[f]);
    C.faults[f]++;
    switch (f) {
    case F_KILL_INTAKE:
        pipeline_kill(C.p, PIPELINE_INTAKE, 0, SIGKILL);
        itest_sleep_ms(pause_ms);
        pipeline_start_process(C.p, PIPELINE_INTAKE, 0);
        break;
    case F_KILL_RETRY:
        pipeline_kill(C.p, PIPELINE_RETRY, slot, SIGKILL);
        itest_sleep_ms(pause_ms);
        pipeline_start_process(C.p, PIPELINE_RETRY, slot);
        break;
    case F_KILL_RELAY:
        pipeline_kill(C.p, PIPELINE_RELAY, slot, SIGKILL);
        itest_sleep_ms(pause_ms);
        pipeline_start_process(C.p, PIPELINE_RELAY, slot);
        break;
    case F_KILL_ALERT:
        pipeline_kill(C.p, PIPELINE_ALERT, 0, SIGKILL);
        itest_sleep_ms(pause_ms);
        pipeline_start_process(C.p, PIPELINE_ALERT, 0);
        break;
    case F_STOP_RETRY:
        pipeline_kill(C.p, PIPELINE_RETRY, slot, SIGSTOP);
        itest_sleep_ms(CHAOS_LEASE_MS + 3000);
        pipeline_kill(C.p, PIPELINE_RETRY, slot, SIGCONT);
        break;
    case F_RESTART_PG:
        stack("stop pg");
        itest_sleep_ms(2000 + pause_ms);
        stack("start pg");
        break;
    case F_RESTART_KAFKA:
        stack("stop kafka");
        itest_sleep_ms(2000 + pause_ms);
        stack("start kafka");
        break;
    case F_GATEWAY_HANG:
        pipeline_sim_fault(C.p, "{\"type\":\"hang\",\"times\":20,\"delayMs\":3000}");
        break;
    default:
        break;
    }
}

/* ---- publishing ---- */

struct batch {
    int base;
};

static void fill(int i, struct cancel_failed_event *ev, char *rid, char *pk, void *arg)
{
    const struct batch *b = arg;
    int k = b->base + i;
    request_id_of(rid, PIPELINE_ID_MAX, k);
    payment_key_of(pk, PIPELINE_ID_MAX, k);
    ev->request_id = rid;
    ev->payment_key = pk;
    ev->gateway = is_stripe(k) ? "stripe" : "toss";
    ev->amount = amount_of(k);
    ev->currency = is_stripe(k) ? "USD" : "KRW";
}

static const char config_extra[] = "consumers:\n"
                                   "  retry: { max_in_flight: 16 }\n"
                                   "alerts:\n"
                                   "  slack:\n"
                                   "    enabled: true\n"
                                   "    webhook_url: \"${CR_IT_SLACK_URL}\"\n"
                                   "    timeout: 2s\n"
                                   "    rate_per_second: 200\n"
                                   "    burst: 200\n"
                                   "    digest: { threshold: 1000000, window: 60s }\n";

Test(chaos, run, .fini = stop_all, .timeout = 600)
{
    int64_t t0 = mono_ms();
    uint64_t seed = (uint64_t)env_long("CHAOS_SEED", 1);
    C.rng = seed;
    C.n = (int)env_long("CHAOS_REQUESTS", 2000);
    cr_assert(C.n > 0 && C.n <= 100000, "CHAOS_REQUESTS must be 1..100000");
    C.beh = calloc((size_t)C.n, sizeof(*C.beh));
    cr_assert_not_null(C.beh);
    int by_beh[B_COUNT] = {0};
    for (int i = 0; i < C.n; i++) {
        int r = rnd_below(1000), b = 0;
        while (r >= behaviour_permille[b]) {
            r -= behaviour_permille[b];
            b++;
        }
        C.beh[i] = (enum behaviour)b;
        by_beh[b]++;
    }
    /* The faults: every kind once, four more at random, shuffled, spread
     * over the gaps after the batches (none after the last one). */
    enum fault plan[F_COUNT + 4];
    int nplan = 0;
    for (int f = 0; f < F_COUNT; f++)
        plan[nplan++] = (enum fault)f;
    while (nplan < (int)(sizeof(plan) / sizeof(plan[0])))
        plan[nplan++] = (enum fault)rnd_below(F_COUNT);
    for (int i = nplan - 1; i > 0; i--) {
        int j = rnd_below(i + 1);
        enum fault t = plan[i];
        plan[i] = plan[j];
        plan[j] = t;
    }

    /* The sink first: the config names its URL (slack_sink_fixture.h). */
    slack_sink_start(&C.sink, "/services/chaos");
    C.p = pipeline_start("chaos", config_extra);
    snprintf(C.dsn, sizeof(C.dsn), "%s", pipeline_itest(C.p)->dsn);
    pipeline_start_process(C.p, PIPELINE_RETRY, 1);
    pipeline_start_process(C.p, PIPELINE_RELAY, 1);
    pipeline_start_process(C.p, PIPELINE_ALERT, 0);
    fprintf(stderr, "chaos: seed %llu, %d requests, logs in %s\n", (unsigned long long)seed, C.n,
            pipeline_log_dir(C.p));
    for (int i = 0; i < C.n; i++)
        prepare(i);

    int gaps = CHAOS_BATCHES - 1, next = 0;
    int64_t last_fault = mono_ms();
    for (int b = 0; b < CHAOS_BATCHES; b++) {
        struct batch bt = {C.n * b / CHAOS_BATCHES};
        int count = C.n * (b + 1) / CHAOS_BATCHES - bt.base;
        if (count > 0)
            pipeline_publish_many(C.p, count, fill, &bt);
        int upto = nplan * (b + 1) / gaps;
        for (; b < gaps && next < upto && next < nplan; next++) {
            /* Half the cap for publishing and faults at most: the rest is
             * for converging. */
            if (mono_ms() - t0 >= CHAOS_CAP_MS / 2) {
                fprintf(stderr, "chaos: out of time for faults: %d not injected\n", nplan - next);
                C.skipped = nplan - next;
                next = nplan;
                break;
            }
            inject(plan[next]);
            last_fault = mono_ms();
            settle_pending();
        }
        itest_sleep_ms(500);
    }
    revive();

    /* Convergence: every request final; pending refunds settled meanwhile. */
    long long final = -1;
    int64_t converged_at = -1;
    while (mono_ms() - t0 < CHAOS_CAP_MS - 60000) {
        settle_pending();
        final = q_int(final_sql);
        if (final == C.n) {
            converged_at = mono_ms();
            break;
        }
        revive();
        itest_sleep_ms(1000);
    }
    long long lost = final < 0 ? C.n : C.n - final;
    int doubles = count_doubles();

    /* Alerts: wait (bounded) for each FAILED/EXHAUSTED request's post. */
    int alerts_lost = -1, alerts_repeated = 0, alerting = 0;
    int64_t alert_deadline = mono_ms() + 60000;
    for (;;) {
        PGresult *r = alerting_requests();
        json_t *posts = slack_sink_posts(&C.sink);
        if (r != NULL) {
            alerting = PQntuples(r);
            alerts_lost = 0;
            alerts_repeated = 0;
            for (int i = 0; i < alerting; i++) {
                int n = posts_for(posts, PQgetvalue(r, i, 0));
                alerts_lost += n == 0;
                alerts_repeated += n > 1;
            }
            PQclear(r);
        }
        json_decref(posts);
        if (alerts_lost == 0 || mono_ms() >= alert_deadline)
            break;
        itest_sleep_ms(1000);
    }

    printf("\nchaos run: seed %llu\n", (unsigned long long)seed);
    printf("  %-34s %8s\n", "behaviour", "requests");
    for (int b = 0; b < B_COUNT; b++)
        printf("  %-34s %8d\n", behaviour_name[b], by_beh[b]);
    printf("  %-34s %8d\n", "total published", C.n);
    printf("  %-34s %8s\n", "fault", "injected");
    for (int f = 0; f < F_COUNT; f++)
        printf("  %-34s %8d\n", fault_name[f], C.faults[f]);
    printf("  %-34s %8d\n", "faults skipped (out of time)", C.skipped);
    printf("  %-34s %8d\n", "processes that exited on their own", C.died);
    printf("  %-34s %8s\n", "check", "result");
    printf("  %-34s %8lld\n", "requests final", final < 0 ? 0 : final);
    printf("  statuses: %s\n", status_summary());
    printf("  %-34s %8lld\n", "requests lost (must be 0)", lost);
    printf("  %-34s %8d\n", "double refunds (must be 0)", doubles);
    printf("  %-34s %8d\n", "requests that must alert", alerting);
    printf("  %-34s %8d\n", "alerts lost (must be 0)", alerts_lost);
    printf("  %-34s %8d\n", "alerts posted more than once", alerts_repeated);
    if (converged_at >= 0)
        printf("  %-34s %8.1f\n", "seconds to converge after last fault",
               (double)(converged_at - last_fault) / 1000.0);
    else
        printf("  %-34s %8s\n", "seconds to converge after last fault", "never");
    printf("  %-34s %8.1f\n", "seconds in all", (double)(mono_ms() - t0) / 1000.0);
    fflush(stdout);

    cr_expect_eq(lost, 0, "%lld requests not final", lost);
    cr_expect_eq(doubles, 0, "%d payments refunded twice", doubles);
    cr_expect_eq(alerts_lost, 0, "%d alerts lost", alerts_lost);
}
