/*
 * retry_worker: the retry-consumer's engine. Consumes RetryScheduled events
 * and runs up to consumers.retry.max_in_flight attempts at once on one
 * thread: Kafka polling, libcurl multi transfers and short db transactions
 * interleave in one loop.
 *
 * Per event: parse (poison -> dead letter) -> breaker (open -> postpone,
 * no attempt spent) -> rate limit token (wait) -> claim -> gateway call ->
 * record -> offset done. A partition's offset is committed only up to the
 * first event not yet done (offset_tracker.h). When the db goes away,
 * answers already received are kept and recorded when it is back; new events
 * wait (partitions paused). SIGTERM: stop taking events, finish the calls in
 * flight (bounded by the gateway timeouts), record them, commit, leave.
 */
#ifndef CR_RETRY_WORKER_H
#define CR_RETRY_WORKER_H

#include "config/config.h"
#include "service/metrics.h"

struct retry_worker;

/* cfg and worker are borrowed and must outlive the worker. NULL with err on
 * failure (e.g. a gateway client could not be set up). */
struct retry_worker *retry_worker_new(const struct config *cfg, const char *worker, char *err,
                                      size_t errlen);
void retry_worker_free(struct retry_worker *w);

/* Count into m (borrowed; may be NULL). */
void retry_worker_set_metrics(struct retry_worker *w, struct metrics *m);

/* Run until a stop is requested and the work in flight is finished. Returns
 * the process exit code. */
int retry_worker_run(struct retry_worker *w);

#endif
