/*
 * adyen_admin: the simulator's Adyen admin API, under /_sim/adyen/:
 *
 *   POST /_sim/adyen/refunds/{psp}/settle  {"success": true|false, "reason": R}
 *        settle a received refund now (refused gives the amount back)
 *   POST /_sim/adyen/refunds/{psp}/events  {"eventCode": "REFUND_FAILED" |
 *        "REFUNDED_REVERSED", "reason": R}: a later event for a succeeded refund
 *   GET  /_sim/adyen/webhooks[?pspReference=P]  the deliveries
 *   POST /_sim/adyen/webhooks/redeliver    {"id": N}: send delivery N again
 *   PUT  /_sim/adyen/webhooks/endpoint     {"url", "hmacKey", "basicAuth"}: where
 *        and how notifications go from now on (each may be null)
 *
 * Documented in docs/gateway-sim.md, "Adyen".
 */
#include <stdio.h>
#include <string.h>

#include "adyen.h"
#include "ledger.h"

static void answer(struct sim_response *resp, int status, const char *error)
{
    sim_respond_json(resp, status, json_pack("{s:s}", "error", error));
}

/* The answer to a settle or event call that ended in res. */
static void settle_answer(struct sim *sim, const char *psp, enum adyen_settle_result res,
                          int delivery, const char *wrong_state, struct sim_response *resp)
{
    size_t index;
    struct ledger_payment *p;

    switch (res) {
    case ADYEN_SETTLE_OK:
        p = ledger_refund_find(sim->ledger, psp, &index);
        if (p == NULL) {
            answer(resp, 404, "no such refund");
            return;
        }
        sim_respond_json(resp, 200,
                         json_pack("{s:o, s:o}", "refund",
                                   ledger_refund_json(p, &p->refunds[index]), "delivery",
                                   delivery ? json_integer(delivery) : json_null()));
        ledger_payment_free(p);
        return;
    case ADYEN_SETTLE_NOT_FOUND:
        answer(resp, 404, "no such Adyen refund");
        return;
    case ADYEN_SETTLE_WRONG_STATE:
        answer(resp, 409, wrong_state);
        return;
    case ADYEN_SETTLE_NO_MEMORY:
        answer(resp, 500, "out of memory");
        return;
    }
}

/* POST /_sim/adyen/refunds/{psp}/{settle|events}. */
static void refund_action(struct sim *sim, const struct sim_request *req, const char *psp,
                          const char *action, struct sim_response *resp)
{
    json_error_t jerr;
    int delivery = 0;
    json_t *obj = json_loadb(req->body, req->body_len, 0, &jerr);

    if (req->body_len == 0 && obj == NULL)
        obj = json_object(); /* no body: the defaults */
    if (!json_is_object(obj)) {
        answer(resp, 400, "request body must be a JSON object");
        goto out;
    }
    const json_t *jsuccess = json_object_get(obj, "success");
    const json_t *jreason = json_object_get(obj, "reason");
    const char *event = json_string_value(json_object_get(obj, "eventCode"));
    if (jreason != NULL && !json_is_string(jreason)) {
        answer(resp, 400, "reason must be a string");
    } else if (strcmp(action, "settle") == 0) {
        if (jsuccess != NULL && !json_is_boolean(jsuccess)) {
            answer(resp, 400, "success must be true or false");
            goto out;
        }
        enum adyen_settle_result res =
            adyen_settle(sim->adyen, psp, jsuccess == NULL || json_is_true(jsuccess),
                         json_string_value(jreason), &delivery);
        settle_answer(sim, psp, res, delivery, "the refund is not \"received\" any more", resp);
    } else if (event == NULL ||
               (strcmp(event, "REFUND_FAILED") != 0 && strcmp(event, "REFUNDED_REVERSED") != 0)) {
        answer(resp, 400, "eventCode must be \"REFUND_FAILED\" or \"REFUNDED_REVERSED\"");
    } else {
        enum adyen_settle_result res =
            adyen_refund_event(sim->adyen, psp, event, json_string_value(jreason), &delivery);
        settle_answer(sim, psp, res, delivery, "only a succeeded refund can fail or be reversed",
                      resp);
    }
out:
    json_decref(obj);
}

/* refunds/{psp}/{action}: psp (up to 127 characters) and action into the
 * buffers (false if what is not that path). */
static bool refund_path(const char *what, char psp[128], char action[16])
{
    int end = 0;

    if (sscanf(what, "refunds/%127[^/]/%15[a-z]%n", psp, action, &end) != 2 || what[end] != '\0')
        return false;
    return strcmp(action, "settle") == 0 || strcmp(action, "events") == 0;
}

static void redeliver(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    json_t *obj = json_loadb(req->body, req->body_len, 0, NULL);
    const json_t *jid = json_object_get(obj, "id");

    if (!json_is_integer(jid) || json_integer_value(jid) <= 0 ||
        json_integer_value(jid) > 0x7fffffff) {
        answer(resp, 400, "id must be a delivery id");
    } else {
        int id =
            adyen_webhooks_redeliver(adyen_webhooks_of(sim->adyen), (int)json_integer_value(jid));
        if (id == 0)
            answer(resp, 404, "no such delivery");
        else
            sim_respond_json(resp, 201, json_pack("{s:i}", "id", id));
    }
    json_decref(obj);
}

/* A member that is absent or null (NULL, true) or a string (true). */
static bool string_or_null(const json_t *obj, const char *name, const char **out)
{
    const json_t *v = json_object_get(obj, name);
    *out = json_string_value(v);
    return v == NULL || json_is_null(v) || json_is_string(v);
}

static void set_endpoint(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    char err[256];
    const char *url, *key, *auth;
    json_t *obj = json_loadb(req->body, req->body_len, 0, NULL);

    if (!json_is_object(obj) || !string_or_null(obj, "url", &url) ||
        !string_or_null(obj, "hmacKey", &key) || !string_or_null(obj, "basicAuth", &auth)) {
        answer(resp, 400, "expected {\"url\", \"hmacKey\", \"basicAuth\"}: strings or null");
    } else if (!adyen_webhooks_set_endpoint(adyen_webhooks_of(sim->adyen), url, key, auth, err,
                                            sizeof(err))) {
        answer(resp, 400, err);
    } else {
        sim_respond_json(resp, 200,
                         json_pack("{s:o, s:b}", "endpoint", url ? json_string(url) : json_null(),
                                   "signed", key != NULL));
    }
    json_decref(obj);
}

void adyen_admin_handle(struct sim *sim, const struct sim_request *req, const char *what,
                        struct sim_response *resp)
{
    char psp[128], action[16];
    bool post = strcmp(req->method, "POST") == 0;

    if (sim->adyen == NULL) {
        answer(resp, 404, "the simulator was started without Adyen");
    } else if (refund_path(what, psp, action)) {
        if (post)
            refund_action(sim, req, psp, action, resp);
        else
            answer(resp, 405, "method not allowed");
    } else if (strcmp(what, "webhooks") == 0) {
        if (strcmp(req->method, "GET") == 0)
            sim_respond_json(resp, 200,
                             adyen_webhooks_json(adyen_webhooks_of(sim->adyen),
                                                 sim_request_query(req, "pspReference")));
        else
            answer(resp, 405, "method not allowed");
    } else if (strcmp(what, "webhooks/endpoint") == 0) {
        if (strcmp(req->method, "PUT") == 0)
            set_endpoint(sim, req, resp);
        else
            answer(resp, 405, "method not allowed");
    } else if (strcmp(what, "webhooks/redeliver") == 0) {
        if (post)
            redeliver(sim, req, resp);
        else
            answer(resp, 405, "method not allowed");
    } else {
        answer(resp, 404, "no such admin endpoint");
    }
}
