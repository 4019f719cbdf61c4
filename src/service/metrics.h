/*
 * metrics: a process's counters and gauges, served in the Prometheus text
 * format at GET /metrics on metrics.listen, with two probes beside them:
 * - GET /healthz -> 200 "ok" while the process runs (liveness: it says
 *   nothing about the database or the broker, so that an outage of either
 *   never gets a process restarted that would only wait for it again);
 * - GET /readyz -> 200 "ready" while every readiness check (metrics_check_set)
 *   passes, else 503 with one line per failing check and its reason
 *   ("not ready\ndatabase: could not connect to the database: ...").
 *
 * Every function accepts m == NULL and then does nothing, so code can count
 * unconditionally and a process without a metrics endpoint pays nothing.
 * Thread-safe: the HTTP server renders from its own thread.
 */
#ifndef CR_METRICS_H
#define CR_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;

/*
 * Limits of the HTTP endpoint, so that idle or slow clients cannot keep
 * /healthz from answering (1,100 half-open sockets once did):
 * - one client address holds at most METRICS_MAX_CONNECTIONS_PER_IP
 *   connections; more are closed as soon as they are accepted, so one bad
 *   client cannot take the slots a health check or a scraper needs;
 * - at most METRICS_MAX_CONNECTIONS in all; past that, new connections wait
 *   in the kernel's listen queue until a slot frees;
 * - a connection idle for METRICS_IDLE_TIMEOUT_S seconds (no request, or a
 *   request that stopped arriving) is closed. A scrape or probe takes
 *   milliseconds; a keep-alive scraper simply reconnects.
 * Served by one internal thread with epoll (poll elsewhere): the handlers
 * only format a few dozen lines, so one thread suffices on a 2-core box and
 * no client can make the process start more threads.
 */
#define METRICS_MAX_CONNECTIONS        64
#define METRICS_MAX_CONNECTIONS_PER_IP 8
#define METRICS_IDLE_TIMEOUT_S         5

/* service goes into every series as label service="...". */
struct metrics *metrics_new(const char *service);
void metrics_free(struct metrics *m);

/* Listen on "host:port" (port 0: any free port; the address is logged).
 * False with err when the address cannot be used. */
bool metrics_serve(struct metrics *m, const char *listen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The port actually listened on, 0 when not serving. */
unsigned metrics_port(const struct metrics *m);

/* Declare a metric's TYPE ("counter" or "gauge") and HELP text (static
 * strings; the first declaration of a name stands). A declared metric is
 * served (its HELP and TYPE lines) even before it has a series, so that a
 * scrape names everything the process can count. Undeclared metrics are
 * served as untyped. */
void metrics_describe(struct metrics *m, const char *name, const char *type, const char *help);

/* Add delta to the counter name{labels}; labels is Prometheus label text
 * without braces, e.g. "verdict=\"RETRYABLE\"", or NULL. */
void metrics_add(struct metrics *m, const char *name, const char *labels, int64_t delta);

/* Set the gauge name{labels}. */
void metrics_set(struct metrics *m, const char *name, const char *labels, int64_t value);

/* Readiness checks: at most METRICS_MAX_CHECKS, named by static strings
 * ("database", "kafka"). A check is created by its first metrics_check_set
 * and /readyz is 503 until every check created has passed; reason (copied,
 * may be NULL) says why a failing check fails, on one line. Each check is
 * also the gauge cancel_retry_ready{check="..."} (1 passing, 0 failing).
 * Thread-safe like the rest: the process's loops and librdkafka's callbacks
 * set checks, the HTTP thread reads them, nobody waits on I/O. */
#define METRICS_MAX_CHECKS 4
void metrics_check_set(struct metrics *m, const char *check, bool ok, const char *reason);

/* The body /readyz answers with into buf ("ready\n", or "not ready\n" and a
 * line per failing check); true when ready. For the server and tests. */
bool metrics_readiness(struct metrics *m, char *buf, size_t len);

/* Render the text exposition into a malloc'd string (for tests and the
 * server). */
char *metrics_render(struct metrics *m);

#endif
