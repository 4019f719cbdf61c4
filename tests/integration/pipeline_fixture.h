/*
 * pipeline_fixture: the whole retry pipeline of one integration test, on the
 * real local stack: a fresh database and topic prefix (harness.h), a
 * gateway-sim on an ephemeral port, and the pipeline's processes
 * (intake-consumer, outbox-relay, retry-consumer) started from the built
 * binaries with one config file.
 *
 * The config is the harness's default template merged with the fixture's
 * test policy (short delays: initial_delay 300ms, max_delay 2s,
 * max_attempts 4, jitter none; lease 10s; reconcile_interval 1s; gateway
 * timeout 2s) and then with the test's own YAML (pipeline_start's
 * config_yaml_extra), by key (pipeline_config.h), so
 *     "gateways:\n  toss:\n    breaker: { min_requests: 3 }\n"
 * changes one key of one gateway and keeps the rest.
 *
 * The simulator accepts the keys of the harness template; a test that sets
 * other gateway secret_keys sets CR_IT_SIM_TOSS_SECRET and
 * CR_IT_SIM_STRIPE_SECRET in the environment before pipeline_start.
 *
 * Each process writes its stderr and stdout to its own log file in
 * pipeline_log_dir() (<build>/meson-logs/pipeline/<test name>/, emptied when
 * a test of that name starts; printed on stderr at start), next to a copy of
 * the config. The processes get PR_SET_PDEATHSIG: a test process that dies
 * without pipeline_stop() does not leave them running.
 *
 * Usage, with the stop in a Criterion .fini so that it also runs after a
 * failed assertion:
 *     static struct pipeline *P;
 *     static void stop(void) { pipeline_stop(P); P = NULL; }
 *     Test(pipeline, success, .fini = stop) {
 *         P = pipeline_start("success", NULL);
 *         pipeline_payment(P, "toss", "pk_1", 15000, "KRW", 0);
 *         pipeline_publish(P, "r-1", "toss", "pk_1", 15000, "KRW", false);
 *         cr_assert_str_eq(pipeline_wait_final(P, "r-1", 30000), "SUCCEEDED");
 *     }
 *
 * The fixture is in files by concern, each with its header, all included
 * by this one:
 *   pipeline_fixture.h    start, stop, the processes and their logs (here)
 *   pipeline_sim.h        the gateway simulator: payments, faults, ledger
 *   pipeline_db.h         waiting for the database to show a state
 *   pipeline_kafka.h      publishing to and reading the pipeline's topics
 *   pipeline_cancelctl.h  running cancelctl with the pipeline's config
 * and on their own: pipeline_config.h (the merged config file),
 * child_process.h, log_file.h, http_fixture.h, slack_sink_fixture.h,
 * tcp_proxy.h, local_stack.h.
 *
 * Every function fails the current Criterion test (with a message) when the
 * fixture itself cannot do its job; none returns an error.
 */
#ifndef CR_TEST_PIPELINE_FIXTURE_H
#define CR_TEST_PIPELINE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

/* The pipeline's processes. pipeline_start starts slot 0 of the first three;
 * an alert-consumer only runs when a test starts one (its config needs
 * alerts: set, see slack_sink_fixture.h), a webhook-receiver only through
 * pipeline_start_webhook_receiver. */
enum pipeline_proc {
    PIPELINE_INTAKE = 0,
    PIPELINE_RELAY = 1,
    PIPELINE_RETRY = 2,
    PIPELINE_ALERT = 3,
    PIPELINE_WEBHOOK = 4
};
#define PIPELINE_PROC_KINDS 5

/* How long most tests wait for a request to reach a final status, and for
 * messages on a topic: long enough for a loaded machine. A test that waits
 * longer says why. */
#define PIPELINE_FINAL_TIMEOUT_MS 60000
#define PIPELINE_READ_TIMEOUT_MS  30000

/* Slots per process kind: pipeline_start_process(p, which, 0..N-1). */
#define PIPELINE_MAX_PROCS 8

struct pipeline;

/* Set up a fresh database and topic prefix, write the config (see above;
 * config_yaml_extra may be NULL), run cancelctl migrate and topics, start
 * gateway-sim and one intake-consumer (slot 0), one outbox-relay (slot 0) and
 * one retry-consumer (slot 0). name: the test's name (any text). Returns the
 * pipeline, owned by the caller (pipeline_stop). */
struct pipeline *pipeline_start(const char *name, const char *config_yaml_extra);

/* SIGTERM every running process (alert consumers, retry consumers, intake,
 * relay, then the simulator), wait for each (SIGKILL after 15 s),
 * itest_teardown, free p. NULL is a no-op. */
void pipeline_stop(struct pipeline *p);

/* The config file every process was started with (valid until
 * pipeline_stop). */
const char *pipeline_config_path(struct pipeline *p);

/* The directory of the processes' log files and the config copy. */
const char *pipeline_log_dir(struct pipeline *p);

/* Write a variant of the config for a process a test starts itself: a copy
 * of it at <log dir>/file where every line that starts with prefix (e.g.
 * "  dsn: ") is replaced by line (with its own newline). Returns the copy's
 * path, in buf. */
const char *pipeline_config_variant(struct pipeline *p, const char *file, const char *prefix,
                                    const char *line, char *buf, size_t len);

/* Start process `which` in slot index (0..PIPELINE_MAX_PROCS-1); fails the
 * test if that slot already runs. Its log is <log dir>/<kind>-<index>.log
 * (e.g. retry-consumer-0.log), appended to across restarts. */
void pipeline_start_process(struct pipeline *p, enum pipeline_proc which, int index);

/* Start a webhook-receiver in slot index with config_path (NULL: the
 * pipeline's config, which must then set webhooks.listen, e.g.
 * "127.0.0.1:0", and a gateway's webhook_hmac_keys: pipeline_start's
 * config_yaml_extra) and wait until it listens. Its log is <log
 * dir>/webhook-receiver-<index>.log. Writes the URL deliveries are POSTed
 * to ("http://127.0.0.1:PORT/webhooks/adyen") into url and returns it;
 * pipeline_kill and pipeline_stop treat it like the other processes. */
const char *pipeline_start_webhook_receiver(struct pipeline *p, int index, const char *config_path,
                                            char *url, size_t len);

/* Send signo to the process in that slot (fails the test if the slot is not
 * running). For a signal that ends a process (anything but SIGSTOP, SIGCONT,
 * SIGTSTP, SIGHUP, SIGUSR1, SIGUSR2) wait for it to exit (SIGKILL after
 * 15 s) and free the slot, so that pipeline_start_process can start it again;
 * for the others return at once. A stopped (SIGSTOP) process is continued
 * before pipeline_stop terminates it. */
void pipeline_kill(struct pipeline *p, enum pipeline_proc which, int index, int signo);

/* True while the process in that slot runs (reaps it if it exited on its
 * own). */
bool pipeline_running(struct pipeline *p, enum pipeline_proc which, int index);

/* The log file of a process, <log dir>/file (e.g. "outbox-relay-1.log"),
 * into buf; returns buf. */
const char *pipeline_log_path(struct pipeline *p, const char *file, char *buf, size_t len);

/* Lines of <log dir>/file that contain needle (0 while it does not exist). */
int pipeline_log_count(struct pipeline *p, const char *file, const char *needle);

/* Poll until at least count lines of <log dir>/file contain needle, up to
 * timeout_ms; returns whether they did. */
bool pipeline_log_wait(struct pipeline *p, const char *file, const char *needle, int count,
                       int timeout_ms);

/* The harness state: the database (itest_query_int etc.), topic prefix. */
struct itest *pipeline_itest(struct pipeline *p);

#include "pipeline_cancelctl.h"
#include "pipeline_db.h"
#include "pipeline_kafka.h"
#include "pipeline_sim.h"

#endif
