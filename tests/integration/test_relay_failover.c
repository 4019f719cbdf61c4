/*
 * Relay fail-over on the real stack (pipeline_fixture.h): two outbox-relays,
 * one active (it holds the lease in relay_leader), one on standby.
 *
 * - frozen: the active relay is stopped with SIGSTOP in the middle of a
 *   backlog; the standby takes over once the lease (relay.leader_lease,
 *   10 s by default) lapses, within the documented bound, and the pipeline
 *   goes on; the frozen one, continued, finds it lost the lease, marks
 *   nothing and stands by.
 * - dead session: the active relay's database session ends
 *   (pg_terminate_backend) while it is frozen, so it cannot reconnect: the
 *   standby takes over at once, not after the lease.
 * - live relay's session terminated: a relay is active again within seconds.
 * - stopped (SIGTERM): it releases its lease, the standby takes over at once.
 * - cut off: the active relay's connection goes through a TCP proxy that
 *   stops forwarding without closing anything (a host cut off without a
 *   FIN): its next renewal hangs, the standby takes over after the lease,
 *   and when the connection flows again the old relay learns it lost the
 *   lease.
 *
 * Whichever relay is the old one, no outbox row may be marked published with
 * its fencing token (outbox.published_epoch) after the new relay took over.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child_process.h"
#include "pipeline_fixture.h"
#include "tcp_proxy.h"

#include "base/clock.h"

#define FINAL_STATUSES                                                                             \
    "('SUCCEEDED', 'ALREADY_REFUNDED', 'FAILED', 'EXHAUSTED', 'MANUALLY_RESOLVED')"

/* relay.leader_lease's default, which the tests keep, and the documented
 * bound on a fail-over after a freeze: the lease plus the standby's retry
 * every second, with room for a loaded machine. */
#define LEASE_MS        10000
#define TAKEOVER_MAX_MS (LEASE_MS + 5000)

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

/* ---- requests ---- */

static void event_of(int i, struct cancel_failed_event *ev, char *rid, char *pk, void *arg)
{
    const char *tag = arg;
    snprintf(rid, PIPELINE_ID_MAX, "%s-%04d", tag, i);
    snprintf(pk, PIPELINE_ID_MAX, "tpay_%s_%04d", tag, i);
    ev->request_id = rid;
    ev->payment_key = pk;
    ev->gateway = "toss";
    ev->amount = 1000 + i;
    ev->currency = "KRW";
}

/* Register payments and publish n CancelFailed events tagged tag. */
static void publish_many(const char *tag, int n)
{
    for (int i = 0; i < n; i++) {
        char pk[PIPELINE_ID_MAX];
        snprintf(pk, sizeof(pk), "tpay_%s_%04d", tag, i);
        pipeline_payment(P, "toss", pk, 1000 + i, "KRW", 0);
    }
    pipeline_publish_many(P, n, event_of, (void *)tag);
}

static long long query_int(const char *sql)
{
    return itest_query_int(pipeline_itest(P), sql, 0, NULL);
}

static void wait_all_final(long long n, int timeout_ms, const char *what)
{
    int64_t deadline = mono_ms() + timeout_ms;
    long long done;
    while ((done = query_int(
                "SELECT count(*) FROM cancel_request WHERE status IN " FINAL_STATUSES)) < n &&
           mono_ms() < deadline)
        itest_sleep_ms(200);
    cr_assert_eq(done, n, "%s: only %lld of %lld requests final (logs: %s)", what, done, n,
                 pipeline_log_dir(P));
    cr_expect_eq(query_int("SELECT count(*) FROM cancel_request WHERE status <> 'SUCCEEDED'"), 0,
                 "%s: every request should have succeeded (logs: %s)", what, pipeline_log_dir(P));
}

/* ---- relays ---- */

static const char *relay_log(int slot)
{
    static char names[2][32];
    snprintf(names[slot], sizeof(names[slot]), "outbox-relay-%d.log", slot);
    return names[slot];
}

/* Start the second relay and return the slot of the active one. */
static int start_standby(void)
{
    cr_assert(pipeline_log_wait(P, relay_log(0), "this relay is now active", 1, 20000),
              "relay 0 did not become active (logs: %s)", pipeline_log_dir(P));
    pipeline_start_process(P, PIPELINE_RELAY, 1);
    itest_sleep_ms(1500);
    cr_assert_eq(pipeline_log_count(P, relay_log(1), "this relay is now active"), 0,
                 "the standby took the lease of a live relay (logs: %s)", pipeline_log_dir(P));
    return 0;
}

static long long lease_epoch(void)
{
    return query_int("SELECT epoch FROM relay_leader WHERE name = 'outbox-relay'");
}

/* Wait until the lease's epoch is past old; returns the ms waited, or -1.
 * The new holder logs its takeover just after: read its log with pipeline_log_wait. */
static int64_t wait_takeover(long long old_epoch, int timeout_ms)
{
    int64_t t0 = mono_ms();
    while (mono_ms() - t0 < timeout_ms) {
        if (lease_epoch() > old_epoch)
            return mono_ms() - t0;
        itest_sleep_ms(20);
    }
    return -1;
}

/* No row was marked published with epoch after the lease passed to a newer
 * one (the fencing token at work). */
static void assert_no_marks_after_takeover(long long epoch)
{
    char sql[300];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE published_epoch = %lld"
             " AND published_at >= (SELECT acquired_at FROM relay_leader"
             " WHERE name = 'outbox-relay')",
             epoch);
    cr_expect_eq(query_int(sql), 0,
                 "rows were marked published with the old relay's epoch %lld after the takeover"
                 " (logs: %s)",
                 epoch, pipeline_log_dir(P));
}

/* ---- tests ---- */

/* SIGSTOP of the active relay in the middle of a backlog: the standby takes
 * over when the lease lapses, within the documented bound, and publishes
 * the rest; the frozen relay, continued, marks nothing and stands by. */
Test(relay_failover, frozen_relay_is_replaced_after_its_lease, .fini = stop, .timeout = 240)
{
    enum { N1 = 10, N2 = 150, N3 = 10 };
    P = pipeline_start("relay_frozen", "relay: { batch_size: 5 }\n");
    int active = start_standby(), standby = 1 - active;
    publish_many("warm", N1);
    wait_all_final(N1, 60000, "before the freeze");

    long long old_epoch = lease_epoch();
    long long before = query_int("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL");
    publish_many("frozen", N2);
    /* Freeze it while it works through the backlog, batch by batch. */
    int64_t deadline = mono_ms() + 30000;
    while (query_int("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") < before + 20 &&
           mono_ms() < deadline)
        itest_sleep_ms(5);
    pipeline_kill(P, PIPELINE_RELAY, active, SIGSTOP);
    long long pending =
        query_int("SELECT count(*) FROM outbox WHERE published_at IS NULL AND parked_at IS NULL");
    int64_t took = wait_takeover(old_epoch, TAKEOVER_MAX_MS + 5000);
    fprintf(stderr,
            "relay_failover: frozen relay (%lld rows pending) replaced after %lld ms (lease %d ms,"
            " bound %d ms)\n",
            pending, (long long)took, LEASE_MS, TAKEOVER_MAX_MS);
    cr_assert(took >= 0, "the standby did not take over (logs: %s)", pipeline_log_dir(P));
    cr_expect_leq(took, TAKEOVER_MAX_MS, "the takeover took %lld ms", (long long)took);
    /* The frozen relay renewed at most a third of a lease before it froze. */
    cr_expect_geq(took, LEASE_MS - LEASE_MS / 3 - 1000,
                  "the standby took a lease that cannot have lapsed (%lld ms)", (long long)took);
    cr_expect(pipeline_log_wait(P, relay_log(standby), "its lease ran out", 1, 3000),
              "the standby should say why it took over (logs: %s)", pipeline_log_dir(P));
    wait_all_final(N1 + N2, 90000, "after the takeover");

    pipeline_kill(P, PIPELINE_RELAY, active, SIGCONT);
    cr_expect(pipeline_log_wait(P, relay_log(active), "this relay is no longer active", 1, 10000),
              "the continued relay did not notice it lost the lease (logs: %s)",
              pipeline_log_dir(P));
    publish_many("after", N3);
    wait_all_final(N1 + N2 + N3, 60000, "after the old relay woke");
    itest_sleep_ms(2000);
    cr_expect_eq(lease_epoch(), old_epoch + 1, "the lease changed hands again (logs: %s)",
                 pipeline_log_dir(P));
    cr_expect_eq(pipeline_log_count(P, relay_log(active), "this relay is now active"), 1,
                 "the old relay took the lease back (logs: %s)", pipeline_log_dir(P));
    assert_no_marks_after_takeover(old_epoch);
    cr_expect_eq(query_int("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0,
                 "rows left unpublished (logs: %s)", pipeline_log_dir(P));
    cr_expect(pipeline_running(P, PIPELINE_RELAY, active), "the old relay exited");
}

/* The active relay's database session is terminated while the relay is
 * frozen (so it cannot reconnect): its session is gone from
 * pg_stat_activity, and the standby takes over at its next try, long
 * before the lease would lapse. */
Test(relay_failover, dead_session_is_replaced_at_once, .fini = stop, .timeout = 180)
{
    enum { N = 20 };
    P = pipeline_start("relay_dead_session", NULL);
    int active = start_standby(), standby = 1 - active;
    long long old_epoch = lease_epoch();

    pipeline_kill(P, PIPELINE_RELAY, active, SIGSTOP);
    cr_assert_eq(query_int("SELECT count(*) FROM relay_leader l"
                           " WHERE pg_terminate_backend(l.holder_pid)"),
                 1, "could not terminate the active relay's session");
    int64_t took = wait_takeover(old_epoch, LEASE_MS);
    fprintf(stderr, "relay_failover: dead session replaced after %lld ms\n", (long long)took);
    cr_assert(took >= 0, "the standby did not take over (logs: %s)", pipeline_log_dir(P));
    cr_expect_leq(took, 3000, "a dead session should be replaced at once, took %lld ms",
                  (long long)took);
    cr_expect(pipeline_log_wait(P, relay_log(standby), "its database session is gone", 1, 3000),
              "the standby should say why it took over (logs: %s)", pipeline_log_dir(P));
    publish_many("deadsession", N);
    wait_all_final(N, 60000, "after the takeover");

    pipeline_kill(P, PIPELINE_RELAY, active, SIGCONT);
    cr_expect(pipeline_log_wait(P, relay_log(active), "this relay is no longer active", 1, 10000),
              "the continued relay did not notice it lost the lease (logs: %s)",
              pipeline_log_dir(P));
    itest_sleep_ms(2500);
    cr_expect_eq(lease_epoch(), old_epoch + 1, "the lease changed hands again (logs: %s)",
                 pipeline_log_dir(P));
    assert_no_marks_after_takeover(old_epoch);
}

/* The live active relay's session is terminated: a relay (either one: the
 * old one reconnects and may win the race) is active again within seconds,
 * and the pipeline goes on. */
Test(relay_failover, terminated_session_of_a_live_relay, .fini = stop, .timeout = 180)
{
    enum { N = 20 };
    P = pipeline_start("relay_terminated", NULL);
    start_standby();
    long long old_epoch = lease_epoch();
    cr_assert_eq(query_int("SELECT count(*) FROM relay_leader l"
                           " WHERE pg_terminate_backend(l.holder_pid)"),
                 1, "could not terminate the active relay's session");
    int64_t took = wait_takeover(old_epoch, LEASE_MS);
    fprintf(stderr, "relay_failover: a relay was active again %lld ms after the termination\n",
            (long long)took);
    cr_assert(took >= 0 && took <= 3000, "no relay active again within 3 s (%lld ms; logs: %s)",
              (long long)took, pipeline_log_dir(P));
    publish_many("terminated", N);
    wait_all_final(N, 60000, "after the termination");
    assert_no_marks_after_takeover(old_epoch);
}

/* A relay stopped with SIGTERM releases its lease: the standby takes over
 * at its next try, not when the lease would lapse. */
Test(relay_failover, stopped_relay_hands_over, .fini = stop, .timeout = 180)
{
    enum { N = 10 };
    P = pipeline_start("relay_stopped", NULL);
    int active = start_standby(), standby = 1 - active;
    long long old_epoch = lease_epoch();
    pipeline_kill(P, PIPELINE_RELAY, active, SIGTERM);
    int64_t took = wait_takeover(old_epoch, LEASE_MS);
    fprintf(stderr, "relay_failover: stopped relay replaced after %lld ms\n", (long long)took);
    cr_assert(took >= 0 && took <= 3000, "no takeover within 3 s of SIGTERM (%lld ms; logs: %s)",
              (long long)took, pipeline_log_dir(P));
    cr_expect(pipeline_log_wait(P, relay_log(standby), "it released the lease", 1, 3000),
              "the standby should say why it took over (logs: %s)", pipeline_log_dir(P));
    publish_many("stopped", N);
    wait_all_final(N, 60000, "after the hand-over");
}

/* ---- a relay cut off from the database without a FIN ---- */

/* PostgreSQL behind a proxy that can stop forwarding (tcp_proxy.h). */
static struct tcp_proxy PX;

static struct child cut_relay;

static void stop_cut(void)
{
    if (cut_relay.pid > 0) {
        kill(cut_relay.pid, SIGKILL);
        child_reap(&cut_relay, CHILD_STOP_WAIT_MS);
    }
    tcp_proxy_stop(&PX);
    stop();
}

/* Start a relay whose database connection goes through the proxy, logging
 * to <log dir>/outbox-relay-cut.log. */
static pid_t spawn_cut_relay(void)
{
    /* Later keywords win in a conninfo string. YAML double quotes: the DSN
     * has single quotes of its own. */
    char dsn[1400], config[700], log_path[700];
    size_t n = (size_t)snprintf(dsn, sizeof(dsn), "  dsn: \"");
    for (const char *c = pipeline_itest(P)->dsn; *c != '\0' && n + 3 < sizeof(dsn); c++) {
        if (*c == '"' || *c == '\\')
            dsn[n++] = '\\';
        dsn[n++] = *c;
    }
    snprintf(dsn + n, sizeof(dsn) - n, " host=127.0.0.1 port=%d\"\n", PX.port);
    pipeline_config_variant(P, "relay-cut.yaml", "  dsn: ", dsn, config, sizeof(config));
    pipeline_log_path(P, "outbox-relay-cut.log", log_path, sizeof(log_path));
    const char *argv[] = {itest_require_env("CR_OUTBOX_RELAY"), "--config", config, NULL};
    return child_spawn(argv, log_path);
}

/* The active relay's connection stops carrying anything, both ways, without
 * being closed: its renewal hangs, the standby takes over after the lease;
 * when the connection flows again, the old relay's renewal finds another
 * epoch and it stands by. */
Test(relay_failover, relay_cut_off_without_fin, .fini = stop_cut, .timeout = 240)
{
    enum { N = 20 };
    P = pipeline_start("relay_cut_off", NULL);
    /* The fixture's relay stands by; the one behind the proxy leads. */
    pipeline_kill(P, PIPELINE_RELAY, 0, SIGTERM);
    tcp_proxy_start(&PX, pipeline_itest(P)->dsn);
    cut_relay.pid = spawn_cut_relay();
    cr_assert(pipeline_log_wait(P, "outbox-relay-cut.log", "this relay is now active", 1, 20000),
              "the relay behind the proxy did not become active (logs: %s)", pipeline_log_dir(P));
    pipeline_start_process(P, PIPELINE_RELAY, 1);
    publish_many("beforecut", N);
    wait_all_final(N, 60000, "before the cut");

    long long old_epoch = lease_epoch();
    tcp_proxy_blackhole(&PX, true);
    int64_t took = wait_takeover(old_epoch, TAKEOVER_MAX_MS + 5000);
    fprintf(stderr, "relay_failover: relay cut off without FIN replaced after %lld ms\n",
            (long long)took);
    cr_assert(took >= 0, "the standby did not take over (logs: %s)", pipeline_log_dir(P));
    cr_expect_leq(took, TAKEOVER_MAX_MS, "the takeover took %lld ms", (long long)took);
    publish_many("duringcut", N);
    wait_all_final(2 * N, 60000, "while the old relay is cut off");

    tcp_proxy_blackhole(&PX, false);
    cr_expect(
        pipeline_log_wait(P, "outbox-relay-cut.log", "this relay is no longer active", 1, 15000),
        "the relay did not notice it lost the lease once its connection flowed again"
        " (logs: %s)",
        pipeline_log_dir(P));
    itest_sleep_ms(2000);
    cr_expect_eq(lease_epoch(), old_epoch + 1, "the lease changed hands again (logs: %s)",
                 pipeline_log_dir(P));
    assert_no_marks_after_takeover(old_epoch);
    cr_expect(child_running(&cut_relay), "the cut-off relay exited");
}
