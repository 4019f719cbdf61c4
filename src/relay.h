/*
 * relay: the outbox relay, the pipeline's only Kafka producer.
 *
 * One relay is active at a time: it holds a session-level PostgreSQL advisory
 * lock; the others stand by and try the lock every second, so when the active
 * one dies (its session ends, the lock is released) another takes over within
 * seconds. The active relay:
 * - publishes due outbox rows in id order, in batches, with an idempotent
 *   producer, and marks a row published only after its delivery report
 *   succeeded (a crash in between publishes it again: consumers dedup);
 * - sleeps on LISTEN/NOTIFY and the next row's due time, never a busy poll;
 * - runs the reconciler every relay.reconcile_interval and deletes published
 *   rows older than relay.retention;
 * - runs a reconciliation pass against the gateways every reconcile.interval
 *   (reconcile_run.h), a few inquiries per turn of its loop with
 *   non-blocking HTTP, so that publishing never waits for a gateway; it only
 *   records and alerts mismatches, never corrects them;
 * - recreates its producer after a fatal producer error (librdkafka 2.0.2 can
 *   raise one after a broker restart);
 * - while the broker or the db is down, waits and loses nothing.
 */
#ifndef CR_RELAY_H
#define CR_RELAY_H

#include "config.h"
#include "metrics.h"

struct relay;

/* worker: an identity for logs and the audit (service_worker_id()). Both
 * borrowed; cfg must outlive the relay. */
struct relay *relay_new(const struct config *cfg, const char *worker);
void relay_free(struct relay *r);

/* Count into m (borrowed; may be NULL). */
void relay_set_metrics(struct relay *r, struct metrics *m);

/* Run until signals_stop_requested(). Returns the process exit code. */
int relay_run(struct relay *r);

#endif
