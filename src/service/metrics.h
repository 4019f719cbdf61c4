/*
 * metrics: a process's counters and gauges, served in the Prometheus text
 * format at GET /metrics (and GET /healthz -> "ok") on metrics.listen.
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
 * strings). Undeclared metrics are served as untyped. */
void metrics_describe(struct metrics *m, const char *name, const char *type, const char *help);

/* Add delta to the counter name{labels}; labels is Prometheus label text
 * without braces, e.g. "verdict=\"RETRYABLE\"", or NULL. */
void metrics_add(struct metrics *m, const char *name, const char *labels, int64_t delta);

/* Set the gauge name{labels}. */
void metrics_set(struct metrics *m, const char *name, const char *labels, int64_t value);

/* Render the text exposition into a malloc'd string (for tests and the
 * server). */
char *metrics_render(struct metrics *m);

#endif
