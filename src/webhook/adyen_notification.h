/*
 * adyen_notification: the items of an Adyen standard webhook delivery
 * (docs/design/issue9-gateways-research.md §3.6):
 *
 *   {"live": "false",
 *    "notificationItems": [{"NotificationRequestItem": {"pspReference": ...,
 *        "originalReference": ..., "merchantAccountCode": ...,
 *        "merchantReference": ..., "amount": {"value": 1130, "currency": "EUR"},
 *        "eventCode": "REFUND", "success": "true", "reason": ...,
 *        "eventDate": ..., "additionalData": {"hmacSignature": ...}}}, ...]}
 *
 * Pure: the body in, the items out, nothing checked against any key or
 * database. Whatever a sender can put in the body is refused with a reason
 * rather than trusted: non-JSON, a wrong type where a field is known, a
 * field longer than ADYEN_FIELD_MAX, more than ADYEN_MAX_ITEMS items, an
 * item without the three fields that identify it (eventCode, pspReference,
 * success). Fields Adyen adds later are kept in the raw item and otherwise
 * ignored.
 */
#ifndef CR_ADYEN_NOTIFICATION_H
#define CR_ADYEN_NOTIFICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "webhook/adyen_hmac.h"

/* Adyen batches a few items per delivery; a hundred is far beyond what it
 * sends and keeps one delivery's transaction short. */
#define ADYEN_MAX_ITEMS 100
/* Bytes of one string field (references are at most 80, a reason a short
 * message); anything longer is not Adyen's. */
#define ADYEN_FIELD_MAX 1024

/* One NotificationRequestItem. Strings owned (NULL when absent). */
struct adyen_item {
    char *psp_reference;      /* required */
    char *original_reference; /* the payment's pspReference, for a modification */
    char *merchant_account_code;
    char *merchant_reference; /* cancel-retry sends the requestId as the refund's reference */
    bool has_amount;
    int64_t value;       /* amount.value, minor units */
    char value_text[24]; /* the same as decimal text, for the signature; "" without amount */
    char *currency;      /* amount.currency */
    char *event_code;    /* required: REFUND, REFUND_FAILED, REFUNDED_REVERSED, ... */
    bool success;        /* required: "true" / "false" */
    char *reason;
    char *event_date;
    char *hmac_signature; /* additionalData.hmacSignature */
    char *raw;            /* the item object as compact JSON, for the record */
};

struct adyen_delivery {
    struct adyen_item *items;
    size_t nitems;
};

/* Parse body (len bytes, need not be NUL-terminated) into d (cleared first).
 * False with a one-line reason in err (never quoting a signature) when the
 * body is not a delivery as described above; d is then empty. */
bool adyen_delivery_parse(const char *body, size_t len, struct adyen_delivery *d, char *err,
                          size_t errlen) __attribute__((warn_unused_result));

void adyen_delivery_clear(struct adyen_delivery *d);

/* The signed fields of item (pointers into it). */
void adyen_item_hmac_fields(const struct adyen_item *item, struct adyen_hmac_fields *f);

/* True for the events that report on a refund: REFUND, REFUND_FAILED,
 * REFUNDED_REVERSED. The receiver matches only these to requests. */
bool adyen_event_is_refund(const char *event_code);

#endif
