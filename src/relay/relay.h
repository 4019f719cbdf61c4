/*
 * relay: the outbox relay, the pipeline's only Kafka producer.
 *
 * One relay is active at a time: it holds the lease in relay_leader
 * (relay_lease.h), renewed every third of relay.leader_lease; the others
 * stand by and try to take it every second. A standby takes over at once
 * when the active relay's database session is gone (it crashed, was killed,
 * its connection was reset) and when its lease lapsed (it froze, or lost its
 * database without a FIN). The active relay:
 * - publishes due outbox rows in id order, in batches, with an idempotent
 *   producer, and marks a row published only after its delivery report
 *   succeeded (a crash in between publishes it again: consumers dedup); the
 *   marking carries the lease's fencing token, and the relay produces
 *   nothing once its lease may have ended;
 * - keeps one batch at a time in Kafka, as the order of a key needs: the
 *   next batch is produced only once every report of the previous one is
 *   in, and a batch with a failed row is followed by a read from the first
 *   due row, the failed one first. The database work overlaps instead: the
 *   previous batch's mark and the read of the next batch (after the last
 *   id of this one) run on the connection while this batch travels;
 * - parks a row the broker can never accept (relay_verdict_of) instead of
 *   retrying it at the head of every batch, and moves on;
 * - sleeps on LISTEN/NOTIFY and the next row's due time, never a busy poll;
 * - on a thread and a connection of its own (relay_housekeeping.c), so that
 *   none of it holds up publishing: runs the reconciler every
 *   relay.reconcile_interval, deletes published rows older than
 *   relay.retention, and runs a reconciliation pass against the gateways
 *   every reconcile.interval (reconcile_run.h), which only records and
 *   alerts mismatches, never corrects them;
 * - recreates its producer after a fatal producer error (librdkafka 2.0.2 can
 *   raise one after a broker restart);
 * - while the broker or the db is down, waits and loses nothing.
 */
#ifndef CR_RELAY_H
#define CR_RELAY_H

#include <stdbool.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "service/metrics.h"

struct relay;

/* worker: an identity for logs, the audit and the lease (service_worker_id()).
 * Both borrowed; cfg must outlive the relay. */
struct relay *relay_new(const struct config *cfg, const char *worker);
void relay_free(struct relay *r);

/* Count into m (borrowed; may be NULL). */
void relay_set_metrics(struct relay *r, struct metrics *m);

/* Run until signals_stop_requested(). Returns the process exit code. */
int relay_run(struct relay *r);

/* What becomes of an outbox row whose produce or delivery ended with err. */
enum relay_verdict {
    RELAY_PUBLISHED = 0, /* delivered: mark it published */
    RELAY_RETRY,         /* transient (broker down, timeout, ...): retry later, as it is */
    RELAY_SEND_ALONE,    /* refused for good, but other messages travelled with it (a
                            broker refuses a whole batch): send it again by itself to
                            learn whether it is the culprit */
    RELAY_CHECK_TOPIC,   /* the topic looks unknown: ask the cluster's metadata; park
                            only if it confirms the topic does not exist */
    RELAY_PARK,          /* this message can never be accepted as it is: park the row */
};

/* The decision, pure: err is the producev error or the delivery report's,
 * alone says that nothing else of ours was in flight with it (producev
 * refused it, or it was sent by itself). Permanent errors are kafka.h's
 * KAFKA_ERR_PERMANENT class (message too large, invalid record, invalid
 * argument, ...); fatal ones are retried (the producer is recreated). */
enum relay_verdict relay_verdict_of(rd_kafka_resp_err_t err, bool alone);

const char *relay_verdict_name(enum relay_verdict v);

#endif
