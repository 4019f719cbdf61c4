/*
 * relay_internal: what relay.c (the loop, leadership), relay_batch.c (one
 * batch: produce, delivery reports, parking, the statements overlapped with
 * it) and relay_housekeeping.c (its thread) share. Not for other modules.
 */
#ifndef CR_RELAY_INTERNAL_H
#define CR_RELAY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "reconcile/reconcile_run.h"
#include "relay/relay.h"
#include "relay/relay_lease.h"
#include "service/metrics.h"
#include "store/db.h"
#include "store/outbox.h"

/* Delivery state of one row of the batch in flight. The slots live in the
 * relay (r->dl), not in the batch: librdkafka keeps a pointer to its slot in
 * every message it holds and writes the report there whenever it is served,
 * which can be after the batch stopped waiting (a stop, a lost lease) and as
 * late as the final flush in relay_free(). A batch also never ends with a
 * message of its own still in the producer (it purges and drains them), so a
 * late report cannot land in a slot the next batch reuses. */
enum delivery_state {
    DELIVERY_IDLE = 0,  /* not handed to librdkafka */
    DELIVERY_IN_FLIGHT, /* librdkafka holds it; the report will come */
    DELIVERY_DONE,      /* the report (or producev's refusal) is in err */
};

struct delivery {
    int64_t id;
    enum delivery_state state;
    rd_kafka_resp_err_t err;
    bool at_produce;  /* err came from producev: the message never left */
    bool unbuildable; /* its headers could not be turned into Kafka headers */
};

struct relay {
    const struct config *cfg;
    const char *worker; /* borrowed */
    struct db *db;
    rd_kafka_t *producer;
    /* The pipeline's topics, held open with their metadata for as long as
     * the producer lives (relay_open_producer()). */
    rd_kafka_topic_t *topics[4];
    /* Held (lease.epoch > 0) exactly while this relay is the active one. */
    struct relay_lease lease;
    int64_t failure_backoff_ms;
    /* The next batch is read after this id (0: from the first due row):
     * the last id of a batch that ended without a failure, for at most
     * RELAY_AFTER_MAX_MS from after_since_ms, so that rows below it that
     * became due or visible since are not left waiting. */
    int64_t after_id;
    int64_t after_since_ms;
    bool from_first; /* the batch in progress must not set after_id */
    /* The statement in flight on db while a batch's messages travel
     * (db_send_params): the previous batch's mark, or the read of the next
     * batch. The connection runs nothing else until relay_db_idle(). */
    enum relay_query { RELAY_QUERY_NONE = 0, RELAY_QUERY_MARK, RELAY_QUERY_FETCH } query;
    size_t query_marked; /* rows the mark in flight marks */
    /* The next batch, read ahead after ahead_after (owned, NULL if none);
     * used only if the current batch ends with after_id == ahead_after.
     * ahead_wanted: the id to read after once db is free, 0 if none. */
    struct outbox_row *ahead;
    size_t n_ahead;
    int64_t ahead_after;
    int64_t ahead_wanted;
    struct metrics *metrics; /* borrowed, may be NULL */
    /* batch_size delivery slots; owned, freed after the producer. */
    struct delivery *dl;
    /* The reconciler, the purge and the scheduled reconciliation, on their
     * own thread and connection while relay_run runs; owned. */
    struct relay_housekeeping *hk;
};

/* True while this relay is the active one and its lease cannot have ended.
 * Renews the lease when that is due; steps down (and returns false) when
 * another relay took it or it ran out before a renewal got through. */
bool relay_keep_lead(struct relay *r);

/* Stop being the active relay: forget the lease (not released: it may not
 * be ours any more), tell the housekeeping, log why. */
void relay_step_down(struct relay *r, const char *why);

/* The fencing token of the held lease, for the outbox's writes. */
struct outbox_fence relay_fence(const struct relay *r);

/* Sleep ms in short steps, serving the producer and keeping the lease,
 * until ms passed, a stop is requested or the lease is lost. */
void relay_pause_ms(struct relay *r, int64_t ms);

/* ---- relay_housekeeping.c ---- */

/* Start the housekeeping thread with a connection of its own (not yet
 * opened). cfg and worker borrowed, metrics may be NULL. NULL with err on
 * failure. */
struct relay_housekeeping *relay_housekeeping_start(const struct config *cfg, const char *worker,
                                                    struct metrics *metrics, char *err,
                                                    size_t errlen);

/* Tell it the lease as it is now (epoch 0: not held); it works only while
 * one is held and valid. NULL hk is a no-op. */
void relay_housekeeping_lead(struct relay_housekeeping *hk, const struct relay_lease *lease);

/* Stop it (a pass in progress is closed as stopped early), wait for it, free
 * it. NULL is a no-op. */
void relay_housekeeping_stop(struct relay_housekeeping *hk);

/* ---- relay_batch.c ---- */

/* librdkafka's delivery report callback. */
void relay_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);

/* Finish the statement in flight on r->db, if any, and act on its result
 * (a lost lease steps down): the connection is free afterwards. */
void relay_db_idle(struct relay *r);

/* Drop the batch read ahead, if any. */
void relay_drop_ahead(struct relay *r);

/* Publish one batch (relay_batch.c). Returns the number of rows read (0:
 * nothing due), or -1 on a db error. The caller checks afterwards whether it
 * is still the active relay. */
int relay_publish_batch(struct relay *r);

/* Close the producer (flushing up to flush_ms) and the topics it holds. */
void relay_close_producer(struct relay *r, int flush_ms);

#endif
