/*
 * webhook_delivery: see webhook_delivery.h.
 */
#include "webhook/webhook_delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "event/dlq.h"
#include "store/request_events.h"
#include "store/request_store.h"
#include "store/webhook_store.h"

size_t webhook_keys_from_config(const struct config *cfg, struct webhook_keys *out, size_t max)
{
    size_t n = 0;

    for (size_t g = 0; g < cfg->ngateways && n < max; g++) {
        const struct config_gateway *gw = &cfg->gateways[g];
        if (gw->n_webhook_hmac_keys == 0)
            continue;
        struct webhook_keys *k = &out[n];
        memset(k, 0, sizeof(*k));
        k->gateway = gw->name;
        k->basic_auth = gw->webhook_basic_auth;
        for (size_t i = 0; i < gw->n_webhook_hmac_keys && k->nkeys < 2; i++)
            if (adyen_hmac_key_decode(gw->webhook_hmac_keys[i], k->keys[k->nkeys]))
                k->nkeys++;
        n += k->nkeys > 0;
    }
    return n;
}

void webhook_keys_wipe(struct webhook_keys *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        volatile unsigned char *p = (volatile unsigned char *)keys[i].keys;
        for (size_t b = 0; b < sizeof(keys[i].keys); b++)
            p[b] = 0;
    }
}

/* Does item verify under one of k's keys? Every key is tried, so that the
 * time taken does not say which one matched. */
static bool item_verifies(const struct webhook_keys *k, const struct adyen_item *item)
{
    struct adyen_hmac_fields f;
    bool ok = false;

    adyen_item_hmac_fields(item, &f);
    for (size_t i = 0; i < k->nkeys; i++)
        ok |= adyen_hmac_verify(k->keys[i], &f, item->hmac_signature);
    return ok;
}

int webhook_keys_verify(const struct webhook_keys *gws, size_t ngws, const struct adyen_delivery *d,
                        size_t *bad_item)
{
    size_t furthest = 0;

    for (size_t g = 0; g < ngws; g++) {
        size_t i = 0;
        while (i < d->nitems && item_verifies(&gws[g], &d->items[i]))
            i++;
        if (i == d->nitems && d->nitems > 0)
            return (int)g;
        furthest = i > furthest ? i : furthest;
    }
    *bad_item = furthest;
    return -1;
}

enum webhook_effect webhook_effect_of(const char *event_code, bool success, const char *status,
                                      int64_t next_attempt_ms, int64_t now_ms)
{
    if (!adyen_event_is_refund(event_code) || status == NULL)
        return WEBHOOK_EFFECT_NONE;
    if (strcmp(status, "SCHEDULED") == 0 || strcmp(status, "PENDING") == 0)
        return next_attempt_ms > now_ms ? WEBHOOK_EFFECT_WAKE : WEBHOOK_EFFECT_NONE;
    if (strcmp(status, "SUCCEEDED") == 0) {
        if (strcmp(event_code, "REFUND_FAILED") == 0)
            return WEBHOOK_EFFECT_FAILED_AFTER;
        if (strcmp(event_code, "REFUNDED_REVERSED") == 0)
            return WEBHOOK_EFFECT_REVERSED;
    }
    /* A refund made after the request ended without one (EXHAUSTED with
     * REFUND_STATE_UNKNOWN once its checks ran out, FAILED): our record is
     * wrong, and a person must set it right (cancelctl resolve). */
    if ((strcmp(status, "EXHAUSTED") == 0 || strcmp(status, "FAILED") == 0) &&
        strcmp(event_code, "REFUND") == 0 && success)
        return WEBHOOK_EFFECT_AFTER_FINAL;
    /* IN_FLIGHT: the attempt running now reads the notifications when it
     * records its answer or at its next attempt; a final status other than
     * SUCCEEDED has nothing a refund event could change by itself. */
    return WEBHOOK_EFFECT_NONE;
}

static void notification_of(const char *gateway, const struct adyen_item *it,
                            struct webhook_notification *n)
{
    memset(n, 0, sizeof(*n));
    n->gateway = gateway;
    n->event_code = it->event_code;
    n->psp_reference = it->psp_reference;
    n->original_reference = it->original_reference;
    n->merchant_reference = it->merchant_reference;
    n->merchant_account = it->merchant_account_code;
    n->has_amount = it->has_amount;
    n->amount = it->value;
    n->currency = it->currency;
    n->success = it->success;
    n->reason = it->reason;
    n->event_date = it->event_date;
    n->raw_item = it->raw;
}

/* A verified refund item that matches no request: kept in
 * gateway_notification, and a dead letter of the item itself so that a
 * human hears of it (the alert-consumer posts it). */
static bool dead_letter_unmatched(struct db *db, const struct config *cfg, const char *gateway,
                                  const struct adyen_item *it, const char *consumer, char *err,
                                  size_t errlen)
{
    char detail[400];
    snprintf(detail, sizeof(detail),
             "%s notification of gateway %s matches no request: pspReference %s, "
             "originalReference %s, merchantReference %s, amount %s %s, success %s",
             it->event_code, gateway, it->psp_reference,
             it->original_reference ? it->original_reference : "none",
             it->merchant_reference ? it->merchant_reference : "none",
             it->has_amount ? it->value_text : "none", it->currency ? it->currency : "",
             it->success ? "true" : "false");
    struct dlq_meta meta = {
        .reason = DLQ_REASON_WEBHOOK_UNMATCHED,
        .error = detail,
        .origin = {NULL, -1, -1, -1},
        .consumer = consumer,
        .request_id = NULL,
        .attempts = 0,
        .at_ms = wall_ms(),
    };
    log_warn("webhook: %s", detail);
    return request_events_dead_letter(db, cfg, it->raw, strlen(it->raw), NULL, &meta, err, errlen);
}

/* Apply a new refund item's effect on request_id (locked for the rest of
 * the transaction). */
static bool apply(struct db *db, const struct config *cfg, const struct adyen_item *it,
                  const char *request_id, const char *consumer, struct webhook_store_stats *stats,
                  char *err, size_t errlen)
{
    struct request_row row;
    bool found = false, ok = true;
    int64_t now = wall_ms();

    if (!request_store_get(db, request_id, true, &row, &found, err, errlen))
        return false;
    if (!found)
        return true;
    enum webhook_effect effect =
        webhook_effect_of(it->event_code, it->success, row.status, row.next_attempt_at_ms, now);
    if (effect == WEBHOOK_EFFECT_WAKE) {
        bool moved = false;
        ok = request_events_due_now(db, cfg, &row, now, &moved, err, errlen);
        stats->woken += ok && moved;
        if (ok && moved)
            log_info("webhook: %s %s success=%s for request %s: attempt %d due now", it->event_code,
                     it->psp_reference, it->success ? "true" : "false", request_id,
                     row.attempts + 1);
    } else if (effect == WEBHOOK_EFFECT_FAILED_AFTER || effect == WEBHOOK_EFFECT_REVERSED ||
               effect == WEBHOOK_EFFECT_AFTER_FINAL) {
        char detail[400];
        const char *reason = effect == WEBHOOK_EFFECT_FAILED_AFTER
                                 ? DLQ_REASON_REFUND_FAILED_AFTER_SUCCESS
                             : effect == WEBHOOK_EFFECT_REVERSED ? DLQ_REASON_REFUND_REVERSED
                                                                 : DLQ_REASON_REFUND_AFTER_FINAL;
        if (effect == WEBHOOK_EFFECT_AFTER_FINAL)
            snprintf(detail, sizeof(detail),
                     "REFUND success after the request ended %s: the shopper has the money back "
                     "(pspReference %s); set the record right with cancelctl resolve",
                     row.status, it->psp_reference);
        else
            snprintf(detail, sizeof(detail),
                     "%s after the request SUCCEEDED: the shopper has not been refunded "
                     "(pspReference %s%s%s)",
                     it->event_code, it->psp_reference,
                     it->reason != NULL && it->reason[0] != '\0' ? ", reason: " : "",
                     it->reason != NULL ? it->reason : "");
        ok = request_events_request_dead_letter(db, cfg, &row, reason, detail, consumer,
                                                row.attempts, err, errlen);
        stats->dead_letters += ok;
        if (ok)
            log_warn("webhook: request %s: %s", request_id, detail);
    }
    request_row_clear(&row);
    return ok;
}

static bool store_item(struct db *db, const struct config *cfg, const char *gateway,
                       const struct adyen_item *it, const char *consumer,
                       struct webhook_store_stats *stats, char *err, size_t errlen)
{
    struct webhook_notification n;
    char request_id[256] = "";
    bool found = false, inserted = false;
    bool refund = adyen_event_is_refund(it->event_code);

    notification_of(gateway, it, &n);
    if (refund && !webhook_store_match(db, &n, request_id, sizeof(request_id), &found, err, errlen))
        return false;
    n.request_id = found ? request_id : NULL;
    if (!webhook_store_insert(db, &n, &inserted, err, errlen))
        return false;
    if (!inserted) {
        stats->duplicates++;
        return true;
    }
    stats->items++;
    if (!refund)
        return true;
    if (!found) {
        stats->unmatched++;
        stats->dead_letters++;
        return dead_letter_unmatched(db, cfg, gateway, it, consumer, err, errlen);
    }
    stats->matched++;
    return apply(db, cfg, it, request_id, consumer, stats, err, errlen);
}

bool webhook_delivery_store(struct db *db, const struct config *cfg, const char *gateway,
                            const struct adyen_delivery *d, const char *consumer,
                            struct webhook_store_stats *stats, char *err, size_t errlen)
{
    memset(stats, 0, sizeof(*stats));
    if (!db_begin(db, err, errlen))
        return false;
    for (size_t i = 0; i < d->nitems; i++) {
        if (!store_item(db, cfg, gateway, &d->items[i], consumer, stats, err, errlen)) {
            db_rollback(db);
            memset(stats, 0, sizeof(*stats));
            return false;
        }
    }
    if (!db_commit(db, err, errlen)) {
        db_rollback(db);
        memset(stats, 0, sizeof(*stats));
        return false;
    }
    return true;
}
