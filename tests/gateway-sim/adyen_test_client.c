/*
 * adyen_test_client: see adyen_test_client.h.
 */
#include "adyen_test_client.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "adyen_signature.h"
#include "webhook_listener.h"

void adyen_test_stop(void)
{
    sim_stop();
    listener_stop();
}

/* Start the listener, then the simulator sending to it, with refunds
 * settling after settle_ms ("-1": only by admin call) and extra arguments
 * (NULL-terminated, may be NULL). */
void start_with(const char *settle_ms, const char *const *extra)
{
    const char *args[24] = {"--adyen-webhook-url", NULL,     "--adyen-hmac-key", HMAC_KEY,
                            "--adyen-settle-ms",   settle_ms};
    size_t n = 6;

    listener_start();
    args[1] = listener_url();
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    sim_start_args(args);
}

void start(const char *settle_ms)
{
    start_with(settle_ms, NULL);
}

/* An Adyen payment of amount (EUR); its refunds settle to refund_status. */
void add_adyen_payment(const char *psp, long amount, const char *refund_status)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"gateway\":\"adyen\",\"paymentKey\":\"%s\",\"amount\":%ld,\"currency\":\"EUR\","
             "\"refundStatus\":\"%s\"}",
             psp, amount, refund_status);
    admin("POST", "/_sim/payments", body, 201);
}

/* POST the refund of payment psp with body, key idem (NULL = none) and the
 * auth header auth (NULL = none). */
struct reply refund_raw(const char *auth, const char *psp, const char *idem, const char *body,
                        long timeout_ms)
{
    char path[256], idem_hdr[512];
    const char *headers[4] = {"Content-Type: application/json", NULL, NULL, NULL};
    size_t n = 1;

    snprintf(path, sizeof(path), "/v71/payments/%s/refunds", psp);
    if (auth != NULL)
        headers[n++] = auth;
    if (idem != NULL) {
        snprintf(idem_hdr, sizeof(idem_hdr), "Idempotency-Key: %s", idem);
        headers[n++] = idem_hdr;
    }
    return http("POST", path, headers, body, timeout_ms);
}

/* A well-formed refund of value EUR with reference ref. */
struct reply refund(const char *psp, const char *idem, long value, const char *ref)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"amount\":{\"value\":%ld,\"currency\":\"EUR\"},\"merchantAccount\":\"" MERCHANT
             "\",\"reference\":\"%s\",\"merchantRefundReason\":\"CUSTOMER REQUEST\"}",
             value, ref);
    return refund_raw(API_KEY, psp, idem, body, 0);
}

/* The 201 answer of r (new reference); frees r. */
json_t *received(struct reply *r)
{
    cr_assert_eq(r->rc, CURLE_OK, "%s", curl_easy_strerror(r->rc));
    cr_assert_eq(r->status, 201, "status %ld: %s", r->status, r->body);
    json_t *j = reply_json(r);
    reply_free(r);
    cr_assert_str_eq(json_str(j, "status"), "received");
    return j;
}

/* Refund value of psp with key idem and return the refund's pspReference
 * into buf. */
const char *refund_ok(const char *psp, const char *idem, long value, char *buf, size_t buflen)
{
    struct reply r = refund(psp, idem, value, idem);
    json_t *j = received(&r);
    snprintf(buf, buflen, "%s", json_str(j, "pspReference"));
    json_decref(j);
    return buf;
}

/* Expect a ServiceError status/errorCode/errorType; frees r. */
void expect_adyen_error(struct reply *r, long status, const char *code, const char *type)
{
    cr_assert_eq(r->rc, CURLE_OK, "%s", curl_easy_strerror(r->rc));
    cr_expect_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    json_t *j = reply_json(r);
    cr_expect_eq(json_int(j, "status"), status);
    cr_expect_str_eq(json_str(j, "errorCode"), code, "%s", r->body);
    cr_expect_str_eq(json_str(j, "errorType"), type, "%s", r->body);
    cr_expect(json_is_string(json_object_get(j, "message")));
    json_decref(j);
    reply_free(r);
}

/* The status of refund i in the ledger of psp. */
const char *refund_status(const char *psp, size_t i, char *buf, size_t buflen)
{
    json_t *l = ledger_of(psp);
    json_t *r = json_array_get(json_object_get(l, "refunds"), i);
    cr_assert(r != NULL, "%s has no refund %zu", psp, i);
    snprintf(buf, buflen, "%s", json_str(r, "status"));
    json_decref(l);
    return buf;
}

/* POST /_sim/adyen/refunds/{psp}/{action} with body; answers the status. */
long refund_admin(const char *psp, const char *action, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/adyen/refunds/%s/%s", psp, action);
    struct reply r = http("POST", path, NULL, body, 0);
    long status = r.status;
    reply_free(&r);
    return status;
}

/* The deliveries listed for psp (NULL: all), new reference. */
json_t *deliveries(const char *psp)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/adyen/webhooks%s%s", psp ? "?pspReference=" : "",
             psp ? psp : "");
    struct reply r = http("GET", path, NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    json_t *j = reply_json(&r);
    reply_free(&r);
    json_t *list = json_incref(json_object_get(j, "deliveries"));
    json_decref(j);
    return list;
}

/* The NotificationRequestItem of webhook post i (borrowed from *body, a new
 * reference the caller releases). Checks the envelope. */
json_t *item_of_post(size_t i, json_t **body)
{
    *body = listener_body(i);
    cr_assert_str_eq(json_str(*body, "live"), "false");
    json_t *items = json_object_get(*body, "notificationItems");
    cr_assert_eq(json_array_size(items), 1);
    json_t *item = json_object_get(json_array_get(items, 0), "NotificationRequestItem");
    cr_assert(json_is_object(item));
    return item;
}

/* True if item carries the signature the test key gives it. */
bool signed_right(const json_t *item)
{
    unsigned char key[ADYEN_SIGNATURE_KEY_LEN];
    char sig[ADYEN_SIGNATURE_SIZE];
    const char *given = json_string_value(
        json_object_get(json_object_get(item, "additionalData"), "hmacSignature"));

    cr_assert(adyen_signature_key_parse(HMAC_KEY, key));
    cr_assert(adyen_signature_of_item(item, key, sig));
    return given != NULL && strcmp(given, sig) == 0;
}

/* pspReference of webhook post i into buf (the envelope checked). */
const char *post_psp(size_t i, char *buf, size_t buflen)
{
    json_t *body;
    json_t *item = item_of_post(i, &body);
    snprintf(buf, buflen, "%s", json_str(item, "pspReference"));
    json_decref(body);
    return buf;
}

/* Refund 1000 of PAYMENT twice (keys "a" and "b", pspReferences into a and
 * b, 32 bytes each) and settle a, then b: two notifications, in that order
 * unless a fault says otherwise. */
void settle_two(char *a, char *b)
{
    refund_ok(PAYMENT, "a", 1000, a, 32);
    refund_ok(PAYMENT, "b", 1000, b, 32);
    cr_assert_eq(refund_admin(a, "settle", NULL), 200);
    cr_assert_eq(refund_admin(b, "settle", NULL), 200);
}

/* The deliveries about psp once the first is accepted (new reference). */
json_t *once_accepted(const char *psp)
{
    json_t *list = deliveries(psp);
    for (int i = 0;
         i < WAIT_MS / 10 && !json_is_true(json_object_get(json_array_get(list, 0), "accepted"));
         i++) {
        json_decref(list);
        sleep_ms(10);
        list = deliveries(psp);
    }
    return list;
}

/* Expect webhook post i to carry one item of event_code, success, about
 * refund psp of PAYMENT, signed with the test key. */
void expect_item(size_t i, const char *event_code, const char *success, const char *psp)
{
    json_t *body;
    json_t *item = item_of_post(i, &body);
    cr_expect_str_eq(json_str(item, "eventCode"), event_code, "post %zu", i);
    cr_expect_str_eq(json_str(item, "success"), success, "post %zu", i);
    cr_expect_str_eq(json_str(item, "pspReference"), psp, "post %zu", i);
    cr_expect_str_eq(json_str(item, "originalReference"), PAYMENT, "post %zu", i);
    cr_expect(signed_right(item), "post %zu: hmacSignature does not match the key", i);
    json_decref(body);
}
