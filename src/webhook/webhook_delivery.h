/*
 * webhook_delivery: what the webhook-receiver does with one delivery once
 * its body is in (docs/architecture.md "Webhook receiver"):
 *
 * 1. verify: every item's HMAC (adyen_hmac.h) under the keys of one
 *    configured gateway, current or previous; the gateway whose keys verify
 *    all items is the delivery's (a key serves one gateway, config
 *    validation sees to it). One item that verifies under no key rejects
 *    the whole delivery: nothing of it is stored.
 * 2. store, in one transaction: each item into gateway_notification (a
 *    redelivered item is a no-op); each new refund item matched to its
 *    request (webhook_store_match) and its effect applied
 *    (webhook_effect_of): the request made due now, or a dead letter for a
 *    human. The caller acknowledges the delivery only after this commits.
 *
 * The decisions (webhook_keys_verify, webhook_effect_of) are pure; the
 * store step is the only one with I/O.
 */
#ifndef CR_WEBHOOK_DELIVERY_H
#define CR_WEBHOOK_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/db.h"
#include "webhook/adyen_hmac.h"
#include "webhook/adyen_notification.h"

/* The decoded keys of one gateway that receives webhooks. */
struct webhook_keys {
    const char *gateway;    /* borrowed from the config */
    const char *basic_auth; /* "user:password" or NULL, borrowed */
    unsigned char keys[2][ADYEN_HMAC_KEY_LEN];
    size_t nkeys;
};

/* The gateways of cfg with webhook_hmac_keys, decoded into out (at most
 * max); returns how many. Keys were validated when the config loaded. */
size_t webhook_keys_from_config(const struct config *cfg, struct webhook_keys *out, size_t max);

/* Wipe the decoded keys. */
void webhook_keys_wipe(struct webhook_keys *keys, size_t n);

/* The index in gws of the gateway whose keys verify every item of d, or -1
 * when none does; then *bad_item is, for the gateway whose keys verified
 * the longest run of items from the first, the item that ended the run: the
 * one to name in the rejection. */
int webhook_keys_verify(const struct webhook_keys *gws, size_t ngws, const struct adyen_delivery *d,
                        size_t *bad_item);

/* What a new refund notification does to its request. */
enum webhook_effect {
    WEBHOOK_EFFECT_NONE = 0,     /* nothing to do now (final, in flight, already due) */
    WEBHOOK_EFFECT_WAKE,         /* due now: the retry-consumer reads the notification */
    WEBHOOK_EFFECT_FAILED_AFTER, /* dead letter REFUND_FAILED_AFTER_SUCCESS */
    WEBHOOK_EFFECT_REVERSED,     /* dead letter REFUND_REVERSED */
    WEBHOOK_EFFECT_AFTER_FINAL,  /* dead letter REFUND_AFTER_FINAL */
};

/* The effect of a refund event (REFUND, REFUND_FAILED, REFUNDED_REVERSED;
 * success its success) on a request in status whose next attempt is due at
 * next_attempt_ms, now. A request waiting (SCHEDULED or PENDING, due later)
 * is woken by any of them; one we record as SUCCEEDED gets a dead letter
 * for a REFUND_FAILED or a REFUNDED_REVERSED, one that ended EXHAUSTED or
 * FAILED for a successful REFUND. */
enum webhook_effect webhook_effect_of(const char *event_code, bool success, const char *status,
                                      int64_t next_attempt_ms, int64_t now_ms);

/* What one stored delivery did, for metrics and the log. */
struct webhook_store_stats {
    int items;      /* new items stored */
    int duplicates; /* items stored before (redeliveries) */
    int matched;    /* new refund items matched to a request */
    int unmatched;  /* new refund items matched to none (dead-lettered) */
    int woken;      /* requests made due now */
    int dead_letters;
};

/* Step 2 above for d, whose items verified for gateway, in one transaction
 * on db. False with err on a database error (nothing committed; the caller
 * answers non-2xx and the gateway delivers again); the class of the error
 * is db_last_error_class(db). consumer names the process in dead letters. */
bool webhook_delivery_store(struct db *db, const struct config *cfg, const char *gateway,
                            const struct adyen_delivery *d, const char *consumer,
                            struct webhook_store_stats *stats, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
