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
