/*
 * sim_test_portone: helpers for the PortOne tests of gateway-sim. See
 * sim_test_portone.h.
 */
#include "sim_test_portone.h"

#include <criterion/criterion.h>
#include <stdio.h>

/* POST /payments/{id}/cancel with body, Idempotency-Key idem (the header's
 * value as sent, NULL = none) and Authorization auth. */
struct reply portone_cancel_as(const char *auth, const char *id, const char *idem, const char *body,
                               long timeout_ms)
{
    char path[256], idem_hdr[512];
    const char *headers[4] = {auth, "Content-Type: application/json", NULL, NULL};

    snprintf(path, sizeof(path), "/payments/%s/cancel", id);
    if (idem != NULL) {
        snprintf(idem_hdr, sizeof(idem_hdr), "Idempotency-Key: %s", idem);
        headers[2] = idem_hdr;
    }
    return http("POST", path, headers, body, timeout_ms);
}

struct reply portone_cancel(const char *id, const char *idem, const char *body)
{
    return portone_cancel_as(PORTONE_AUTH, id, idem, body, 0);
}

/* A cancel of amount with reason "r" and no guard. */
struct reply portone_cancel_amount(const char *id, const char *idem, long amount)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"reason\":\"r\",\"amount\":%ld}", amount);
    return portone_cancel(id, idem, body);
}

struct reply portone_inquire_as(const char *auth, const char *id)
{
    char path[256];
    const char *headers[2] = {auth, NULL};
    snprintf(path, sizeof(path), "/payments/%s", id);
    return http("GET", path, auth ? headers : NULL, NULL, 0);
}

/* The Payment object of id (new reference); the inquiry must answer 200. */
json_t *portone_payment(const char *id)
{
    struct reply r = portone_inquire_as(PORTONE_AUTH, id);
    cr_assert_eq(r.status, 200, "GET /payments/%s -> %ld: %s", id, r.status, r.body);
    json_t *j = reply_json(&r);
    reply_free(&r);
    return j;
}

/* A PortOne payment; extra is more JSON members (",\"asyncCancel\":true") or "". */
void add_portone(const char *id, long amount, const char *extra)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"gateway\":\"portone\",\"paymentKey\":\"%s\",\"amount\":%ld%s}",
             id, amount, extra);
    admin("POST", "/_sim/payments", body, 201);
}

/* The cancellation of a 200 answer (new reference); frees r. */
json_t *portone_cancellation(struct reply *r)
{
    cr_assert_eq(r->rc, CURLE_OK, "%s", curl_easy_strerror(r->rc));
    cr_assert_eq(r->status, 200, "status %ld: %s", r->status, r->body);
    json_t *j = reply_json(r);
    json_t *c = json_incref(json_object_get(j, "cancellation"));
    json_decref(j);
    reply_free(r);
    cr_assert(json_is_object(c), "no cancellation object");
    return c;
}

/* The id of the cancellation of a 200 answer whose status is want, into
 * id; frees r. */
void portone_cancellation_id(struct reply *r, const char *want, char *id, size_t idlen)
{
    json_t *c = portone_cancellation(r);
    cr_expect_str_eq(json_str(c, "status"), want);
    snprintf(id, idlen, "%s", json_str(c, "id"));
    json_decref(c);
}

void expect_portone_error(struct reply *r, long status, const char *type)
{
    expect_error_member(r, status, "type", type);
}

/* amount.NAME of payment p. */
long portone_amount(const json_t *p, const char *name)
{
    return json_int(json_object_get(p, "amount"), name);
}

/* POST /_sim/portone/cancellations/{id}/settle {"status": status}: the
 * answer's status. */
long portone_settle(const char *id, const char *status)
{
    char path[256], body[64];
    snprintf(path, sizeof(path), "/_sim/portone/cancellations/%s/settle", id);
    snprintf(body, sizeof(body), "{\"status\":\"%s\"}", status);
    struct reply r = http("POST", path, NULL, body, 0);
    long st = r.status;
    reply_free(&r);
    return st;
}