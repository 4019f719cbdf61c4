/*
 * portone_admin: the PortOne part of the admin API and of the simulator's
 * settings. See portone.h and docs/gateway-sim.md.
 *
 *   POST /_sim/portone/cancellations/{id}/settle  {"status":"SUCCEEDED"|"FAILED"}
 *   GET  /_sim/portone/config
 *   PUT  /_sim/portone/config  {"keyTtlSeconds": N, "storeErrors": B}
 */
#include "portone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "base/log.h"

#define SETTLE_SUFFIX "/settle"

/* The statuses of a PortOne payment that is not paid ([P-oas] Payment). */
static const char *const unpaid_statuses[] = {"READY", "PAY_PENDING", "VIRTUAL_ACCOUNT_ISSUED",
                                              "FAILED"};

bool portone_payment_options(const json_t *obj, enum ledger_status *refund_status,
                             const char **unpaid, char *err, size_t errlen)
{
    const json_t *jasync = json_object_get(obj, "asyncCancel");
    const json_t *jstatus = json_object_get(obj, "paymentStatus");

    *unpaid = NULL;
    if (jasync != NULL && !json_is_boolean(jasync)) {
        snprintf(err, errlen, "asyncCancel must be true or false");
        return false;
    }
    if (json_is_true(jasync))
        *refund_status = LEDGER_STATUS_PENDING;
    if (jstatus == NULL || json_is_null(jstatus))
        return true;
    for (size_t i = 0; i < sizeof(unpaid_statuses) / sizeof(unpaid_statuses[0]); i++) {
        if (json_is_string(jstatus) &&
            strcmp(json_string_value(jstatus), unpaid_statuses[i]) == 0) {
            *unpaid = unpaid_statuses[i];
            return true;
        }
    }
    snprintf(err, errlen,
             "paymentStatus must be \"READY\", \"PAY_PENDING\", \"VIRTUAL_ACCOUNT_ISSUED\" or "
             "\"FAILED\" (leave it out for a paid payment)");
    return false;
}

bool portone_configure(struct sim *sim, const char *secret, int64_t key_ttl_s, bool store_errors)
{
    if (secret != NULL) {
        char *copy = strdup(secret);
        if (copy == NULL)
            return false;
        free(sim->portone_secret);
        sim->portone_secret = copy;
    }
    sim->portone_initial_key_ttl_ms = key_ttl_s * 1000;
    sim->portone_initial_store_errors = store_errors;
    portone_settings_reset(sim);
    return true;
}

void portone_settings_reset(struct sim *sim)
{
    atomic_store(&sim->portone_key_ttl_ms, (long long)sim->portone_initial_key_ttl_ms);
    atomic_store(&sim->portone_store_errors, sim->portone_initial_store_errors);
}

/* POST /_sim/portone/cancellations/{id}/settle: a REQUESTED cancellation
 * ends SUCCEEDED (its amount stays cancelled) or FAILED (the amount is
 * cancellable again), as PortOne does asynchronously. */
static void settle(struct sim *sim, const struct sim_request *req, const char *id,
                   struct sim_response *resp)
{
    size_t index;
    struct ledger_payment *after = NULL;
    enum ledger_status to;
    json_t *obj = admin_body_object(req, resp);

    if (obj == NULL)
        return;
    const char *status = json_string_value(json_object_get(obj, "status"));
    struct ledger_payment *p = ledger_refund_find(sim->ledger, id, &index);
    if (p == NULL || p->gateway != SIM_GATEWAY_PORTONE) {
        admin_error(resp, 404, "no such PortOne cancellation");
    } else if (status == NULL ||
               (strcmp(status, "SUCCEEDED") != 0 && strcmp(status, "FAILED") != 0)) {
        admin_error(resp, 400, "status must be \"SUCCEEDED\" or \"FAILED\"");
    } else if (strcmp(portone_cancellation_status(p->refunds[index].status), "REQUESTED") != 0) {
        admin_error(resp, 409, "the cancellation is not REQUESTED");
    } else {
        to = strcmp(status, "SUCCEEDED") == 0 ? LEDGER_STATUS_SUCCEEDED : LEDGER_STATUS_FAILED;
        /* From a status that counts to SUCCEEDED or FAILED: no balance is
         * needed, only memory can fail. */
        if (ledger_refund_set_status(sim->ledger, id, to, NULL, &after, &index) ==
                LEDGER_REFUND_OK &&
            after != NULL) {
            log_info("PortOne cancellation %s settled %s", id, status);
            sim_respond_json(resp, 200, ledger_refund_json(after, &after->refunds[index]));
        } else {
            admin_error(resp, 500, "could not settle the cancellation");
        }
    }
    ledger_payment_free(after);
    ledger_payment_free(p);
    json_decref(obj);
}

static json_t *config_json(struct sim *sim)
{
    return json_pack("{s:I, s:b}", "keyTtlSeconds",
                     (json_int_t)(atomic_load(&sim->portone_key_ttl_ms) / 1000), "storeErrors",
                     atomic_load(&sim->portone_store_errors));
}

/* PUT /_sim/portone/config: change what --portone-key-ttl and
 * --portone-store-errors set; members left out keep their value. */
static void put_config(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    json_t *obj = admin_body_object(req, resp);

    if (obj == NULL)
        return;
    const json_t *jttl = json_object_get(obj, "keyTtlSeconds");
    const json_t *jstore = json_object_get(obj, "storeErrors");
    if (jttl != NULL && (!json_is_integer(jttl) || json_integer_value(jttl) < 1 ||
                         json_integer_value(jttl) > 31LL * 24 * 3600)) {
        admin_error(resp, 400, "keyTtlSeconds must be an integer from 1 to 2678400 (31 days)");
    } else if (jstore != NULL && !json_is_boolean(jstore)) {
        admin_error(resp, 400, "storeErrors must be true or false");
    } else {
        if (jttl != NULL)
            atomic_store(&sim->portone_key_ttl_ms, (long long)json_integer_value(jttl) * 1000);
        if (jstore != NULL)
            atomic_store(&sim->portone_store_errors, json_is_true(jstore));
        log_info("PortOne idempotency settings changed");
        sim_respond_json(resp, 200, config_json(sim));
    }
    json_decref(obj);
}

void portone_admin_handle(struct sim *sim, const struct sim_request *req, const char *what,
                          struct sim_response *resp)
{
    static const char cancellations[] = "cancellations/";
    size_t len = strlen(what), clen = sizeof(cancellations) - 1, slen = strlen(SETTLE_SUFFIX);

    if (strcmp(what, "config") == 0) {
        if (strcmp(req->method, "GET") == 0)
            sim_respond_json(resp, 200, config_json(sim));
        else if (strcmp(req->method, "PUT") == 0)
            put_config(sim, req, resp);
        else
            admin_error(resp, 405, "method not allowed");
    } else if (strncmp(what, cancellations, clen) == 0 && len > clen + slen &&
               strcmp(what + len - slen, SETTLE_SUFFIX) == 0 &&
               memchr(what + clen, '/', len - clen - slen) == NULL) {
        char *id = strndup(what + clen, len - clen - slen);
        if (id == NULL)
            admin_error(resp, 500, "out of memory");
        else if (strcmp(req->method, "POST") != 0)
            admin_error(resp, 405, "method not allowed");
        else
            settle(sim, req, id, resp);
        free(id);
    } else {
        admin_error(resp, 404, "no such admin endpoint");
    }
}
