/*
 * webhook_store: the SQL of gateway_notification, the notifications a
 * gateway sent later about our refunds (Adyen's REFUND webhooks;
 * docs/architecture.md "Webhook receiver"). The webhook-receiver writes
 * them; the retry-consumer asks what they say about one request.
 *
 * Like request_store, every function runs on a connection the caller owns,
 * inside the caller's transaction; none commits.
 */
#ifndef CR_WEBHOOK_STORE_H
#define CR_WEBHOOK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/db.h"

enum webhook_refund_result {
    WEBHOOK_NONE = 0,     /* no notification stored for this request */
    WEBHOOK_REFUNDED,     /* REFUND success "true" (and no later REFUND_FAILED/REVERSED) */
    WEBHOOK_REFUSED,      /* REFUND success "false": Adyen refused, no money moved */
    WEBHOOK_FAILED_AFTER, /* REFUND_FAILED after a success */
    WEBHOOK_REVERSED,     /* REFUNDED_REVERSED */
};

/* "NONE", "REFUNDED", ... for logs. */
const char *webhook_refund_result_name(enum webhook_refund_result r);

/* What the stored notifications of gateway say about request_id's refund; detail: one
 * line (eventCode, pspReference, reason) for the attempt log. False only on a db error. */
bool webhook_store_refund_result(struct db *db, const char *gateway, const char *request_id,
                                 enum webhook_refund_result *out, char *detail, size_t detaillen,
                                 char *err, size_t errlen) __attribute__((warn_unused_result));

/* One stored notification as webhook_refund_decide() reads it. */
struct webhook_fact {
    const char *event_code;
    bool success;
};

/* The pure rule behind webhook_store_refund_result, over a request's
 * notifications in any order (Adyen promises none): a REFUNDED_REVERSED
 * says the money came back, a REFUND_FAILED that the scheme rejected the
 * refund, whatever arrived around them; else a REFUND success "true" says
 * refunded, even beside a "false" for another attempt (money moved once is
 * what counts); else a REFUND "false" says refused; else nothing is known.
 * *deciding (may be NULL) gets the index of the fact that decided, n when
 * none did. */
enum webhook_refund_result webhook_refund_decide(const struct webhook_fact *facts, size_t n,
                                                 size_t *deciding);

/* A notification to store; strings borrowed, NULL when absent. */
struct webhook_notification {
    const char *gateway;
    const char *event_code;
    const char *psp_reference;
    const char *original_reference;
    const char *merchant_reference;
    const char *merchant_account;
    bool has_amount;
    int64_t amount;
    const char *currency;
    bool success;
    const char *reason;
    const char *event_date;
    const char *raw_item;   /* JSON text */
    const char *request_id; /* the matched request, or NULL */
};

/* Insert n ON CONFLICT (gateway, event_code, psp_reference, success) DO
 * NOTHING: *inserted false when the same event was stored before (a
 * redelivery). */
bool webhook_store_insert(struct db *db, const struct webhook_notification *n, bool *inserted,
                          char *err, size_t errlen) __attribute__((warn_unused_result));

/* The request a refund notification is about, into request_id (*found
 * false when none): the request whose requestId is merchant_reference (the
 * refund's reference we sent) with the same gateway, paymentKey =
 * original_reference, amount and currency; failing that, the one request of
 * that gateway, paymentKey, amount and currency still open (SCHEDULED,
 * IN_FLIGHT, PENDING), when exactly one is. Never a guess between two. */
bool webhook_store_match(struct db *db, const struct webhook_notification *n, char *request_id,
                         size_t idlen, bool *found, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
