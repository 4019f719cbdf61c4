/*
 * webhook_receiver: the HTTP side of the webhook-receiver process
 * (docs/architecture.md "Webhook receiver"). Serves POST on
 * webhooks.path at webhooks.listen, one delivery at a time, in the
 * caller's thread (webhook_receiver_run_once), so that the one database
 * connection is only ever used by that thread.
 *
 * A delivery is answered:
 * - 202 "[accepted]" once its items are committed (webhook_delivery.h),
 *   duplicates included: a redelivery is acknowledged, not stored twice;
 * - 401 when an item's HMAC verifies under no configured key, or the
 *   gateway's webhook_basic_auth was not presented: nothing is stored;
 * - 400 when the body is not a delivery, 413 past WEBHOOK_MAX_BODY;
 * - 503 when the database cannot take it now: nothing was acknowledged and
 *   the gateway delivers it again (Adyen retries for 30 days);
 * - 404 / 405 for another path or method.
 * Keys and signatures never appear in a log line or an answer.
 */
#ifndef CR_WEBHOOK_RECEIVER_H
#define CR_WEBHOOK_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "service/metrics.h"
#include "store/db.h"

/* Adyen's deliveries are a few KiB; a MiB is far past any of them. */
#define WEBHOOK_MAX_BODY (1024 * 1024)
/* Connections at once, and the seconds an idle one is kept. */
#define WEBHOOK_MAX_CONNECTIONS 64
#define WEBHOOK_IDLE_TIMEOUT_S  10

struct webhook_receiver;

/* A receiver for cfg (borrowed, must outlive it) on db (borrowed; used only
 * from the thread that calls webhook_receiver_run_once) counting into m
 * (may be NULL). NULL with err when cfg has no webhooks.listen or no
 * gateway with webhook_hmac_keys, or when out of memory. */
struct webhook_receiver *webhook_receiver_new(const struct config *cfg, struct db *db,
                                              struct metrics *m, char *err, size_t errlen);

/* Listen on webhooks.listen; logs "webhook receiver at http://HOST:PORT/PATH".
 * False with err when the address cannot be used. */
bool webhook_receiver_listen(struct webhook_receiver *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The port listened on (0 before webhook_receiver_listen). */
unsigned webhook_receiver_port(const struct webhook_receiver *r);

/* Serve whatever arrives within wait_ms (a signal ends the wait early).
 * False on an error of the HTTP server itself. */
bool webhook_receiver_run_once(struct webhook_receiver *r, int wait_ms);

/* What a complete request is answered. */
struct webhook_answer {
    unsigned status;
    const char *body;   /* static text */
    const char *reason; /* the rejected_total label when rejected, else NULL */
};

/* Handle one complete POST on the path: authorization is the request's
 * Authorization header (NULL when absent), body its len bytes. For tests
 * and the HTTP server. */
void webhook_receiver_handle(struct webhook_receiver *r, const char *authorization,
                             const char *body, size_t len, struct webhook_answer *a);

/* Stop listening and free. NULL is a no-op. */
void webhook_receiver_free(struct webhook_receiver *r);

#endif
