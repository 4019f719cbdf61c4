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
 * config_yaml_extra). Merging is by key: maps merge recursively, anything
 * else (a scalar, a sequence) replaces the value, so
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
 * Every function fails the current Criterion test (with a message) when the
 * fixture itself cannot do its job; none returns an error.
 */
#ifndef CR_TEST_PIPELINE_FIXTURE_H
#define CR_TEST_PIPELINE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cancel_producer.h"
#include "harness.h"

enum pipeline_proc { PIPELINE_INTAKE = 0, PIPELINE_RELAY = 1, PIPELINE_RETRY = 2 };

/* Slots per process kind: pipeline_start_process(p, which, 0..N-1). */
#define PIPELINE_MAX_PROCS 8

struct pipeline;

/* Set up a fresh database and topic prefix, write the config (see above;
 * config_yaml_extra may be NULL), run cancelctl migrate and topics, start
 * gateway-sim and one intake-consumer (slot 0), one outbox-relay (slot 0) and
 * one retry-consumer (slot 0). name: the test's name (any text). Returns the
 * pipeline, owned by the caller (pipeline_stop). */
struct pipeline *pipeline_start(const char *name, const char *config_yaml_extra);

/* SIGTERM every running process (retry consumers, intake, relay, then the
 * simulator), wait for each (SIGKILL after 15 s), itest_teardown, free p.
 * NULL is a no-op. */
void pipeline_stop(struct pipeline *p);

/* The config file every process was started with (valid until
 * pipeline_stop). */
const char *pipeline_config_path(struct pipeline *p);

/* The directory of the processes' log files and the config copy. */
const char *pipeline_log_dir(struct pipeline *p);

/* Start process `which` in slot index (0..PIPELINE_MAX_PROCS-1); fails the
 * test if that slot already runs. Its log is <log dir>/<kind>-<index>.log,
 * appended to across restarts. */
void pipeline_start_process(struct pipeline *p, enum pipeline_proc which, int index);

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

/* The simulator's base URL, e.g. "http://127.0.0.1:40123". */
const char *pipeline_sim_url(struct pipeline *p);

/* POST json (may be NULL: empty body) to the simulator's path (e.g.
 * "/_sim/faults"); fails the test unless the answer is 2xx. */
void pipeline_sim_post(struct pipeline *p, const char *path, const char *json);

/* Any method (GET, POST, PUT, DELETE) with an optional JSON body; returns the
 * HTTP status and, if body is not NULL, the answer (malloc'd, caller frees).
 * Fails the test only if the simulator cannot be reached. */
long pipeline_sim_call(struct pipeline *p, const char *method, const char *path, const char *json,
                       char **body);

/* GET path; fails the test unless 2xx. Returns the body (malloc'd, caller
 * frees). */
char *pipeline_sim_get(struct pipeline *p, const char *path);

/* Create (or replace) a payment in the simulator's ledger. */
void pipeline_payment(struct pipeline *p, const char *gateway, const char *payment_key,
                      long long amount, const char *currency, long long refunded);

/* Publish a CancelFailed event with cancelctl publish (reason "customer
 * cancelled"); fails the test unless cancelctl exits 0. */
void pipeline_publish(struct pipeline *p, const char *request_id, const char *gateway,
                      const char *payment_key, long long amount, const char *currency,
                      bool partial);

/* Publish bytes (a NUL-terminated string, sent without the NUL) as they are to
 * the topic of topic_role ("cancel_failed", "retry", "outcome" or "dlq"),
 * key may be NULL; waits for the broker's acknowledgement. */
void pipeline_publish_raw(struct pipeline *p, const char *topic_role, const char *key,
                          const char *bytes);

/* The same with a length and optional headers (a JSON object name -> string
 * value, may be NULL). */
void pipeline_publish_raw_len(struct pipeline *p, const char *topic_role, const char *key,
                              const void *bytes, size_t len, const json_t *headers);

/* The same with the message's CreateTime (epoch ms; 0 = now). */
void pipeline_publish_raw_at(struct pipeline *p, const char *topic_role, const char *key,
                             const void *bytes, size_t len, const json_t *headers,
                             int64_t timestamp_ms);

/* Fill request i's CancelFailed event: rid and pk are PIPELINE_ID_MAX-byte
 * buffers the callback may write and point ev at; arg is the caller's. */
#define PIPELINE_ID_MAX 64
typedef void (*pipeline_event_fn)(int i, struct cancel_failed_event *ev, char *rid, char *pk,
                                  void *arg);

/* Publish the CancelFailed events of requests 0..n-1 through one idempotent
 * producer, as a busy upstream service would (cancelctl publish per event
 * would start a process each). Events are built and validated by the
 * producer API (cancel_event_build); asserts every one was acknowledged. */
void pipeline_publish_many(struct pipeline *p, int n, pipeline_event_fn fill, void *arg);

/* Poll cancel_request until request_id is in a final status (SUCCEEDED,
 * ALREADY_REFUNDED, FAILED, EXHAUSTED, MANUALLY_RESOLVED) and return it (a
 * static string), or NULL after timeout_ms. */
const char *pipeline_wait_final(struct pipeline *p, const char *request_id, int timeout_ms);

/* Poll until the SQL query (text params) returns a first column equal to
 * want (NULL = SQL NULL), up to timeout_ms; returns whether it did. */
bool pipeline_wait_query(struct pipeline *p, const char *sql, int nparams,
                         const char *const *params, const char *want, int timeout_ms);

/* Refunds recorded by the simulator for payment_key (0 for an unknown
 * payment), and the amount refunded in total. */
long long pipeline_refunds(struct pipeline *p, const char *payment_key);
long long pipeline_refunded_amount(struct pipeline *p, const char *payment_key);

/* One message read back from a topic. */
struct pipeline_msg {
    char *key;       /* NULL when the message had none */
    char *value;     /* the bytes, plus a NUL after them; NULL for a null value */
    size_t len;      /* of value, without the NUL */
    json_t *headers; /* name -> value (dlq_headers_from_kafka); an empty object if none */
    int32_t partition;
    int64_t offset;
};

/* Read the topic of topic_role ("cancel_failed", "retry", "outcome", "dlq")
 * from the beginning of every partition (assigned, no group, no commits)
 * until `expect` messages arrived or timeout_ms passed; expect 0 reads until
 * the end of every partition. Returns the count and *out (caller frees with
 * pipeline_msgs_free), in the order they arrived (per partition by offset). */
size_t pipeline_read_topic(struct pipeline *p, const char *topic_role, size_t expect,
                           int timeout_ms, struct pipeline_msg **out);

void pipeline_msgs_free(struct pipeline_msg *m, size_t n);

/* Wait until the consumer group of consumer_role ("intake" or "retry") has
 * committed, on every partition of the topic of topic_role, an offset at the
 * partition's end as it was when called: everything published before the
 * call has been processed. Returns false after timeout_ms. */
bool pipeline_wait_consumed(struct pipeline *p, const char *topic_role, const char *consumer_role,
                            int timeout_ms);

/* The harness state: the database (itest_query_int etc.), topic prefix. */
struct itest *pipeline_itest(struct pipeline *p);

#endif
