/*
 * adyen_webhook: the simulator's Adyen notification SENDER (the receiver is
 * cancel-retry's; this is the gateway's side).
 *
 * Each notification is one delivery: a POST of
 *     {"live":"false","notificationItems":[{"NotificationRequestItem":{...}}]}
 * to --adyen-webhook-url, its item signed in additionalData.hmacSignature
 * (adyen_signature.h) when --adyen-hmac-key is given, with HTTP Basic auth when
 * --adyen-webhook-basic-auth is. As Adyen documents
 * (docs/design/issue9-gateways-research.md §3.8): any 2xx within 10 s
 * (--adyen-webhook-timeout-ms) accepts it; otherwise it is retried three
 * times quickly (9 s apart), then after 2, 5, 10, 15, 30 min, 1, 2, 4, 8 h
 * and every 8 h after that, for up to 30 days, every delay divided by
 * --adyen-webhook-time-scale (default 1000: the quick retries 9 ms apart, 30
 * days in 43 min). Deliveries go out one at a time, in order: a failing one
 * holds back the ones queued after it, as Adyen's per-endpoint queue does.
 *
 * Webhook faults (faults.h, operation "webhook"), matched by the payment's
 * pspReference when a notification is made: duplicate, forged, drop, delay.
 * Without --adyen-webhook-url notifications are recorded, never sent.
 *
 * One thread sends (over base/http.h); the others only queue and read,
 * under the sender's mutex.
 */
#ifndef GATEWAY_SIM_ADYEN_WEBHOOK_H
#define GATEWAY_SIM_ADYEN_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim.h"

#define ADYEN_WEBHOOK_DEFAULT_TIME_SCALE 1000
#define ADYEN_WEBHOOK_DEFAULT_TIMEOUT_MS 10000

struct adyen_webhook_options {
    const char *url;          /* borrowed; NULL: record, never send */
    const char *hmac_key_hex; /* borrowed, 64 hex digits; NULL: items are not signed */
    const char *basic_auth;   /* borrowed "user:password"; NULL: no Authorization */
    int64_t time_scale;       /* the retry schedule is divided by it (>= 1) */
    int64_t timeout_ms;       /* an answer must come within it to count */
};

struct adyen_webhooks;

/* Start the sender. NULL with the reason in err (a bad key, a URL that is
 * not http(s), no thread). sim must outlive it. */
struct adyen_webhooks *adyen_webhooks_new(struct sim *sim, const struct adyen_webhook_options *o,
                                          char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stop the sender (a delivery in flight is abandoned) and free everything.
 * adyen_webhooks_free(NULL) is a no-op. */
void adyen_webhooks_free(struct adyen_webhooks *w);

/* Send to url from now on (NULL: record, never send), signing with
 * hmac_key_hex (NULL: unsigned) and with HTTP Basic basic_auth (NULL:
 * none); the deliveries that waited for an endpoint are signed so and
 * queued. False with the reason in err for a URL that is not http(s), a key
 * that is not 64 hex digits, or no memory (nothing changed). For a test
 * that starts its receiver after the simulator. */
bool adyen_webhooks_set_endpoint(struct adyen_webhooks *w, const char *url,
                                 const char *hmac_key_hex, const char *basic_auth, char *err,
                                 size_t errlen) __attribute__((warn_unused_result));

/* Forget every delivery. */
void adyen_webhooks_reset(struct adyen_webhooks *w);

/* Queue a notification of item (a NotificationRequestItem without
 * additionalData.hmacSignature; the reference is stolen) about the payment
 * payment_psp, with the first webhook fault that matches it. Returns the
 * delivery's id (> 0), or 0 when out of memory. */
int adyen_webhooks_notify(struct adyen_webhooks *w, json_t *item, const char *payment_psp);

/* Queue a new delivery of the items of delivery id, signed afresh with the
 * right key and without its fault (Adyen's "resend" of an event): at the end
 * of the queue, or, when id is still being retried, in its place (id is
 * then "replaced" and retried no more). Returns the new id, 0 when there is
 * no delivery id (or out of memory). */
int adyen_webhooks_redeliver(struct adyen_webhooks *w, int id);

/* {"endpoint": URL|null, "deliveries": [{"id", "state", "accepted",
 * "fault", "copyOf", "items", "attempts": [{"at", "status", "error",
 * "ms"}]}]}; with psp (may be NULL) only the deliveries with an item whose
 * pspReference or originalReference is psp. New reference. */
json_t *adyen_webhooks_json(struct adyen_webhooks *w, const char *psp);

#endif
