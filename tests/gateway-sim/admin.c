/*
 * admin: the /_sim/ API. See admin.h and docs/gateway-sim.md.
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adyen.h"
#include "faults.h"
#include "kakaopay.h"
#include "ledger.h"
#include "portone.h"
#include "base/log.h"

#define ADMIN_PREFIX "/_sim/"

#define STATUS_CHOICES                                                                             \
    "status must be \"succeeded\", \"pending\", \"requires_action\", \"failed\" or "               \
    "\"canceled\""

static void bad_request(struct sim_response *resp, const char *message)
{
    sim_respond_json(resp, 400, json_pack("{s:s}", "error", message));
}

static void not_found(struct sim_response *resp, const char *message)
{
    sim_respond_json(resp, 404, json_pack("{s:s}", "error", message));
}

static void method_not_allowed(struct sim_response *resp)
{
    sim_respond_json(resp, 405, json_pack("{s:s}", "error", "method not allowed"));
}

/* Parse the request body as a JSON object; on failure answer 400 and
 * return NULL. New reference. */
static json_t *body_object(const struct sim_request *req, struct sim_response *resp)
{
    json_error_t jerr;
    char msg[300];

    json_t *obj = json_loadb(req->body, req->body_len, 0, &jerr);
    if (obj == NULL) {
        snprintf(msg, sizeof(msg), "cannot parse request body: %s", jerr.text);
        bad_request(resp, msg);
        return NULL;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        bad_request(resp, "request body must be a JSON object");
        return NULL;
    }
    return obj;
}

static void post_payment(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    char err[256];
    enum sim_gateway gateway;
    json_t *obj = body_object(req, resp);

    if (obj == NULL)
        return;
    const json_t *jamount = json_object_get(obj, "amount");
    const json_t *jrefunded = json_object_get(obj, "refunded");
    const json_t *jcurrency = json_object_get(obj, "currency");
    const json_t *jorder = json_object_get(obj, "orderId");
    const json_t *jstatus = json_object_get(obj, "refundStatus");
    const char *key = json_string_value(json_object_get(obj, "paymentKey"));
    const char *unpaid = NULL;
    enum ledger_status refund_status = LEDGER_STATUS_SUCCEEDED;
    if (!sim_gateway_parse(json_string_value(json_object_get(obj, "gateway")), &gateway)) {
        bad_request(resp,
                    "gateway must be \"toss\", \"stripe\", \"kakaopay\", \"portone\" or \"adyen\"");
    } else if (key == NULL) {
        bad_request(resp, "paymentKey must be a non-empty string");
    } else if (!json_is_integer(jamount)) {
        bad_request(resp, "amount must be a positive integer");
    } else if (jrefunded != NULL && !json_is_integer(jrefunded)) {
        bad_request(resp, "refunded must be an integer");
    } else if (jcurrency != NULL &&
               (!json_is_string(jcurrency) || strlen(json_string_value(jcurrency)) != 3)) {
        bad_request(resp, "currency must be a 3-letter code");
    } else if (jorder != NULL && !json_is_string(jorder)) {
        bad_request(resp, "orderId must be a string");
    } else if (jstatus != NULL &&
               !ledger_status_parse(json_string_value(jstatus), &refund_status)) {
        bad_request(resp, STATUS_CHOICES);
    } else if (gateway == SIM_GATEWAY_PORTONE &&
               !portone_payment_options(obj, &refund_status, &unpaid, err, sizeof(err))) {
        bad_request(resp, err);
    } else if (!ledger_put_payment(sim->ledger, gateway, key, json_string_value(jorder),
                                   json_integer_value(jamount),
                                   jcurrency ? json_string_value(jcurrency) : "KRW",
                                   jrefunded ? json_integer_value(jrefunded) : 0, refund_status,
                                   err, sizeof(err))) {
        bad_request(resp, err);
    } else if (unpaid != NULL && !ledger_set_unpaid_status(sim->ledger, key, unpaid)) {
        sim_respond_json(resp, 500, json_pack("{s:s}", "error", "out of memory"));
    } else {
        log_info("payment %s added (%s)", key, sim_gateway_name(gateway));
        sim_respond_json(resp, 201, ledger_payment_json(sim->ledger, key));
    }
    json_decref(obj);
}

/* POST /_sim/refunds/{refundId} {"status": S, "failureReason": R}: move a
 * Stripe refund to another status, as Stripe does asynchronously. */
static void post_refund_status(struct sim *sim, const struct sim_request *req,
                               const char *refund_id, struct sim_response *resp)
{
    enum ledger_status status;
    struct ledger_payment *after = NULL;
    size_t index;
    json_t *obj = body_object(req, resp);

    if (obj == NULL)
        return;
    const json_t *jreason = json_object_get(obj, "failureReason");
    struct ledger_payment *p = ledger_refund_find(sim->ledger, refund_id, &index);
    if (p == NULL) {
        not_found(resp, "no such refund");
    } else if (p->gateway != SIM_GATEWAY_STRIPE) {
        bad_request(resp, "only Stripe refunds change status: a Toss cancel is DONE when answered");
    } else if (!ledger_status_parse(json_string_value(json_object_get(obj, "status")), &status)) {
        bad_request(resp, STATUS_CHOICES);
    } else if (jreason != NULL && !json_is_null(jreason) &&
               (!json_is_string(jreason) || status != LEDGER_STATUS_FAILED)) {
        bad_request(resp, "failureReason must be a string, and only with status \"failed\"");
    } else {
        switch (ledger_refund_set_status(sim->ledger, refund_id, status, json_string_value(jreason),
                                         &after, &index)) {
        case LEDGER_REFUND_OK:
            log_info("refund %s is now %s", refund_id, ledger_status_name(status));
            if (after != NULL)
                sim_respond_json(resp, 200, ledger_refund_json(after, &after->refunds[index]));
            else
                sim_respond_json(resp, 500, json_pack("{s:s}", "error", "out of memory"));
            break;
        case LEDGER_REFUND_NOT_FOUND:
            not_found(resp, "no such refund");
            break;
        case LEDGER_REFUND_TOO_LARGE:
        case LEDGER_REFUND_NOTHING_LEFT:
            bad_request(resp, "the payment's refundable balance is smaller than the refund");
            break;
        case LEDGER_REFUND_NO_MEMORY:
        case LEDGER_REFUND_BALANCE_DIFFERS: /* a status change checks no guard */
            sim_respond_json(resp, 500, json_pack("{s:s}", "error", "out of memory"));
            break;
        }
    }
    ledger_payment_free(after);
    ledger_payment_free(p);
    json_decref(obj);
}

static void free_metadata(struct ledger_meta *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].value);
    }
    free(m);
}

/* Copy the JSON object jmeta ({"NAME": "VALUE", ...}) into *out. False with
 * a message in err on bad input or when out of memory. */
static bool metadata_from_json(const json_t *jmeta, struct ledger_meta **out, size_t *n, char *err,
                               size_t errlen)
{
    const char *name;
    const json_t *v;
    size_t count = 0;

    *out = NULL;
    *n = 0;
    if (!json_is_object(jmeta)) {
        snprintf(err, errlen, "metadata must be an object of strings");
        return false;
    }
    if (json_object_size(jmeta) == 0)
        return true;
    struct ledger_meta *m = calloc(json_object_size(jmeta), sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    json_object_foreach((json_t *)jmeta, name, v)
    {
        if (!json_is_string(v) || name[0] == '\0') {
            snprintf(err, errlen, "metadata must be an object of strings");
            goto fail;
        }
        m[count].name = strdup(name);
        m[count].value = strdup(json_string_value(v));
        count++;
        if (m[count - 1].name == NULL || m[count - 1].value == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    *out = m;
    *n = count;
    return true;
fail:
    free_metadata(m, count);
    return false;
}

/* POST /_sim/payments/{paymentKey}/refunds: plant a refund made outside
 * cancel-retry (by hand in the gateway's dashboard, say). */
static void plant_refund(struct sim *sim, const struct sim_request *req, const char *payment_key,
                         struct sim_response *resp)
{
    char err[256];
    struct ledger_meta *metadata = NULL;
    size_t nmetadata = 0;
    struct ledger_payment *after = NULL;
    struct ledger_refund_spec spec = {.has_status = true, .status = LEDGER_STATUS_SUCCEEDED};
    json_t *obj = body_object(req, resp);

    if (obj == NULL)
        return;
    const json_t *jamount = json_object_get(obj, "amount");
    const json_t *jstatus = json_object_get(obj, "status");
    const json_t *jkey = json_object_get(obj, "idempotencyKey");
    const json_t *jreason = json_object_get(obj, "reason");
    const json_t *jmeta = json_object_get(obj, "metadata");
    struct ledger_payment *p = ledger_payment_lookup(sim->ledger, payment_key);
    if (p == NULL) {
        not_found(resp, "no such payment");
        goto out;
    }
    if (!json_is_integer(jamount) || json_integer_value(jamount) <= 0) {
        bad_request(resp, "amount must be a positive integer");
        goto out;
    }
    if (jstatus != NULL && !ledger_status_parse(json_string_value(jstatus), &spec.status)) {
        bad_request(resp, STATUS_CHOICES);
        goto out;
    }
    if ((jkey != NULL && !json_is_string(jkey)) || (jreason != NULL && !json_is_string(jreason))) {
        bad_request(resp, "idempotencyKey and reason must be strings");
        goto out;
    }
    if ((p->gateway == SIM_GATEWAY_TOSS || p->gateway == SIM_GATEWAY_KAKAOPAY) &&
        (spec.status != LEDGER_STATUS_SUCCEEDED || (jmeta != NULL && !json_is_null(jmeta)))) {
        bad_request(resp, "a Toss or KakaoPay cancel is always succeeded and has no metadata");
        goto out;
    }
    if (jmeta != NULL && !json_is_null(jmeta) &&
        !metadata_from_json(jmeta, &metadata, &nmetadata, err, sizeof(err))) {
        bad_request(resp, err);
        goto out;
    }
    spec.amount = json_integer_value(jamount);
    spec.idempotency_key = json_string_value(jkey);
    spec.reason = json_string_value(jreason);
    spec.metadata = metadata;
    spec.nmetadata = nmetadata;
    switch (ledger_refund(sim->ledger, p->gateway, payment_key, &spec, &after)) {
    case LEDGER_REFUND_OK:
        if (after != NULL && after->nrefunds > 0) {
            const struct ledger_refund *r = &after->refunds[after->nrefunds - 1];
            log_info("refund %s planted on %s", r->id, payment_key);
            sim_respond_json(resp, 201, ledger_refund_json(after, r));
        } else {
            sim_respond_json(resp, 500, json_pack("{s:s}", "error", "out of memory"));
        }
        break;
    case LEDGER_REFUND_NOT_FOUND:
        not_found(resp, "no such payment");
        break;
    case LEDGER_REFUND_NOTHING_LEFT:
    case LEDGER_REFUND_TOO_LARGE:
        bad_request(resp, "amount exceeds the payment's refundable balance");
        break;
    case LEDGER_REFUND_NO_MEMORY:
    case LEDGER_REFUND_BALANCE_DIFFERS: /* a planted refund checks no guard */
        sim_respond_json(resp, 500, json_pack("{s:s}", "error", "out of memory"));
        break;
    }
out:
    free_metadata(metadata, nmetadata);
    ledger_payment_free(after);
    ledger_payment_free(p);
    json_decref(obj);
}

/* /_sim/payments/{paymentKey}/refunds: the key into key (false if what is
 * not that path). */
static bool payment_refunds_path(const char *what, char *key, size_t keylen)
{
    static const char suffix[] = "/refunds";
    size_t len = strlen(what), slen = sizeof(suffix) - 1;

    if (strncmp(what, "payments/", 9) != 0 || len <= 9 + slen ||
        strcmp(what + len - slen, suffix) != 0)
        return false;
    size_t klen = len - 9 - slen;
    if (klen >= keylen || memchr(what + 9, '/', klen) != NULL)
        return false;
    memcpy(key, what + 9, klen);
    key[klen] = '\0';
    return true;
}

static void faults_endpoint(struct sim *sim, const struct sim_request *req,
                            struct sim_response *resp)
{
    char err[256];
    int id;

    if (strcmp(req->method, "GET") == 0) {
        sim_respond_json(resp, 200, faults_json(sim->faults));
    } else if (strcmp(req->method, "DELETE") == 0) {
        faults_clear(sim->faults, false);
        log_info("faults cleared");
        sim_respond_json(resp, 200, json_pack("{s:b}", "cleared", 1));
    } else if (strcmp(req->method, "POST") == 0) {
        json_t *obj = body_object(req, resp);
        if (obj == NULL)
            return;
        if (faults_add_json(sim->faults, obj, &id, err, sizeof(err))) {
            log_info("fault %d added: %s", id, json_string_value(json_object_get(obj, "type")));
            sim_respond_json(resp, 201, json_pack("{s:i}", "id", id));
        } else {
            bad_request(resp, err);
        }
        json_decref(obj);
    } else {
        method_not_allowed(resp);
    }
}

/* Apply a settings object; false with the reason in err on bad input. */
typedef bool (*settings_update_fn)(struct sim *sim, const json_t *obj, char *err, size_t errlen);
/* The settings now in force (new reference). */
typedef json_t *(*settings_json_fn)(struct sim *sim);

/* PUT (or POST) of a settings object: apply the body with update, and
 * answer the settings now in force, or 400 with update's reason. */
static void put_settings(struct sim *sim, const struct sim_request *req, struct sim_response *resp,
                         settings_update_fn update, settings_json_fn current)
{
    char err[256];

    if (strcmp(req->method, "PUT") != 0 && strcmp(req->method, "POST") != 0) {
        method_not_allowed(resp);
        return;
    }
    json_t *obj = body_object(req, resp);
    if (obj == NULL)
        return;
    if (update(sim, obj, err, sizeof(err)))
        sim_respond_json(resp, 200, current(sim));
    else
        bad_request(resp, err);
    json_decref(obj);
}

static bool latency_update(struct sim *sim, const json_t *obj, char *err, size_t errlen)
{
    return faults_set_latency_json(sim->faults, obj, err, errlen);
}

static json_t *latency_current(struct sim *sim)
{
    json_t *all = faults_json(sim->faults);
    json_t *latency = json_incref(json_object_get(all, "latency"));
    json_decref(all);
    return latency;
}

static bool kakaopay_update(struct sim *sim, const json_t *obj, char *err, size_t errlen)
{
    if (!kakaopay_settings_update_json(sim->kakaopay, obj, err, errlen))
        return false;
    log_info("kakaopay settings changed");
    return true;
}

static json_t *kakaopay_current(struct sim *sim)
{
    return kakaopay_settings_json(sim->kakaopay);
}

void admin_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    const char *what = req->path + strlen(ADMIN_PREFIX);
    bool get = strcmp(req->method, "GET") == 0;
    bool post = strcmp(req->method, "POST") == 0;
    char key[512];

    if (strcmp(what, "health") == 0) {
        sim_respond_json(resp, 200, json_pack("{s:s}", "status", "ok"));
    } else if (strcmp(what, "payments") == 0) {
        if (post)
            post_payment(sim, req, resp);
        else
            method_not_allowed(resp);
    } else if (payment_refunds_path(what, key, sizeof(key))) {
        if (post)
            plant_refund(sim, req, key, resp);
        else
            method_not_allowed(resp);
    } else if (strncmp(what, "refunds/", 8) == 0 && what[8] != '\0') {
        if (post) {
            post_refund_status(sim, req, what + 8, resp);
        } else if (strcmp(req->method, "DELETE") == 0) {
            if (ledger_refund_delete(sim->ledger, what + 8)) {
                log_info("refund %s deleted", what + 8);
                sim_response_clear(resp);
                resp->status = 204; /* no body */
            } else {
                not_found(resp, "no such refund");
            }
        } else {
            method_not_allowed(resp);
        }
    } else if (strncmp(what, "portone/", 8) == 0) {
        portone_admin_handle(sim, req, what + 8, resp);
    } else if (strncmp(what, "adyen/", 6) == 0) {
        adyen_admin_handle(sim, req, what + 6, resp);
    } else if (strcmp(what, "faults") == 0) {
        faults_endpoint(sim, req, resp);
    } else if (strcmp(what, "latency") == 0) {
        put_settings(sim, req, resp, latency_update, latency_current);
    } else if (strcmp(what, "kakaopay") == 0) {
        /* GET: the KakaoPay settings; PUT: change the guard and the error
         * format while the simulator runs. */
        if (get)
            sim_respond_json(resp, 200, kakaopay_current(sim));
        else
            put_settings(sim, req, resp, kakaopay_update, kakaopay_current);
    } else if (strcmp(what, "ledger") == 0) {
        if (get)
            sim_respond_json(resp, 200, ledger_json(sim->ledger));
        else
            method_not_allowed(resp);
    } else if (strncmp(what, "ledger/", 7) == 0 && what[7] != '\0') {
        json_t *p = get ? ledger_payment_json(sim->ledger, what + 7) : NULL;
        if (!get)
            method_not_allowed(resp);
        else if (p == NULL)
            not_found(resp, "no such payment");
        else
            sim_respond_json(resp, 200, p);
    } else if (strcmp(what, "calls") == 0) {
        if (get)
            sim_respond_json(resp, 200,
                             ledger_calls_json(sim->ledger, sim_request_query(req, "paymentKey")));
        else
            method_not_allowed(resp);
    } else if (strcmp(what, "reset") == 0) {
        if (post) {
            adyen_reset(sim->adyen); /* first: its pending work names refunds */
            ledger_reset(sim->ledger);
            faults_clear(sim->faults, true);
            kakaopay_settings_reset(sim->kakaopay);
            portone_settings_reset(sim);
            log_info("simulator reset");
            sim_respond_json(resp, 200, json_pack("{s:b}", "reset", 1));
        } else {
            method_not_allowed(resp);
        }
    } else {
        not_found(resp, "no such admin endpoint");
    }
}

json_t *admin_body_object(const struct sim_request *req, struct sim_response *resp)
{
    return body_object(req, resp);
}

void admin_error(struct sim_response *resp, int status, const char *message)
{
    sim_respond_json(resp, status, json_pack("{s:s}", "error", message));
}
