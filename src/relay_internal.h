/*
 * relay_internal: what relay.c (the loop, leadership, housekeeping) and
 * relay_batch.c (one batch: produce, delivery reports, parking) share. Not
 * for other modules.
 */
#ifndef CR_RELAY_INTERNAL_H
#define CR_RELAY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "db.h"
#include "metrics.h"
#include "outbox.h"
#include "reconcile_run.h"
#include "relay.h"
#include "relay_lease.h"

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
    /* Held (lease.epoch > 0) exactly while this relay is the active one. */
    struct relay_lease lease;
    int64_t next_reconcile_ms;
    int64_t next_purge_ms;
    int64_t failure_backoff_ms;
    struct metrics *metrics; /* borrowed, may be NULL */
    /* batch_size delivery slots; owned, freed after the producer. */
    struct delivery *dl;
    /* The scheduled reconciliation against the gateways (reconcile_run.h):
     * the pass in progress, and when the next one starts (monotonic ms; -1:
     * ask the database, after taking the lead). */
    struct reconcile_pass *pass;
    int64_t next_pass_ms;
};

/* CLOCK_MONOTONIC in ms: it keeps counting while the process is stopped,
 * which is what makes a frozen relay see its lease run out. */
int64_t relay_mono_ms(void);

/* True while this relay is the active one and its lease cannot have ended.
 * Renews the lease when that is due; steps down (and returns false) when
 * another relay took it or it ran out before a renewal got through. */
bool relay_keep_lead(struct relay *r);

/* Stop being the active relay: forget the lease (not released: it may not
 * be ours any more), drop the reconciliation pass, log why. */
void relay_step_down(struct relay *r, const char *why);

/* The fencing token of the held lease, for the outbox's writes. */
struct outbox_fence relay_fence(const struct relay *r);

/* Sleep ms in short steps, serving the producer and keeping the lease,
 * until ms passed, a stop is requested or the lease is lost. */
void relay_pause_ms(struct relay *r, int64_t ms);

/* librdkafka's delivery report callback (relay_batch.c). */
void relay_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);

/* Publish one batch (relay_batch.c). Returns the number of rows read (0:
 * nothing due), or -1 on a db error. The caller checks afterwards whether it
 * is still the active relay. */
int relay_publish_batch(struct relay *r);

#endif
