/*
 * sim: context, routing and small helpers of the gateway simulator. See sim.h.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adyen.h"
#include "admin.h"
#include "faults.h"
#include "kakaopay.h"
#include "ledger.h"
#include "portone.h"
#include "stripe.h"
#include "toss.h"

/* Sleep slice: how quickly an injected sleep notices a shutdown. */
#define SIM_SLEEP_SLICE_MS 50

struct sim *sim_new(const char *toss_secret, const char *stripe_secret)
{
    struct sim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return NULL;
    atomic_init(&sim->stopping, false);
    sim->ledger = ledger_new();
    sim->faults = faults_new();
    sim->toss_secret = strdup(toss_secret ? toss_secret : SIM_DEFAULT_TOSS_SECRET);
    sim->stripe_secret = strdup(stripe_secret ? stripe_secret : SIM_DEFAULT_STRIPE_SECRET);
    sim->kakaopay = kakaopay_settings_new();
    sim->portone_secret = strdup(SIM_DEFAULT_PORTONE_SECRET);
    atomic_init(&sim->portone_key_ttl_ms, SIM_DEFAULT_PORTONE_KEY_TTL_S * 1000LL);
    atomic_init(&sim->portone_store_errors, true);
    sim->portone_initial_key_ttl_ms = SIM_DEFAULT_PORTONE_KEY_TTL_S * 1000LL;
    sim->portone_initial_store_errors = true;
    if (sim->ledger == NULL || sim->faults == NULL || sim->toss_secret == NULL ||
        sim->stripe_secret == NULL || sim->kakaopay == NULL || sim->portone_secret == NULL) {
        sim_free(sim);
        return NULL;
    }
    return sim;
}

void sim_free(struct sim *sim)
{
    if (sim == NULL)
        return;
    adyen_free(sim->adyen); /* first: its threads use the ledger */
    ledger_free(sim->ledger);
    faults_free(sim->faults);
    free(sim->toss_secret);
    free(sim->stripe_secret);
    kakaopay_settings_free(sim->kakaopay);
    free(sim->portone_secret);
    free(sim);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

void sim_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    if (has_prefix(req->path, "/_sim/"))
        admin_handle(sim, req, resp);
    else if (strcmp(req->path, "/v1/refunds") == 0 || has_prefix(req->path, "/v1/refunds/") ||
             has_prefix(req->path, "/v1/payment_intents/"))
        stripe_handle(sim, req, resp);
    else if (has_prefix(req->path, "/v1/payments/"))
        toss_handle(sim, req, resp);
    else if (has_prefix(req->path, KAKAOPAY_PREFIX))
        kakaopay_handle(sim, req, resp);
    else if (has_prefix(req->path, PORTONE_PREFIX))
        portone_handle(sim, req, resp);
    else if (has_prefix(req->path, ADYEN_PREFIX))
        adyen_handle(sim, req, resp);
    else
        sim_respond_json(resp, 404,
                         json_pack("{s:s, s:s}", "code", "NOT_FOUND", "message",
                                   "no such endpoint on the gateway simulator"));
}

enum sim_payment_route sim_payment_route(const struct sim_request *req, const char *prefix,
                                         enum sim_gateway gateway, char **id,
                                         struct sim_response *resp)
{
    const char *start = req->path + strlen(prefix);
    const char *slash = strchr(start, '/');
    size_t idlen = slash ? (size_t)(slash - start) : strlen(start);
    const char *rest = start + idlen;
    bool inquiry = rest[0] == '\0';

    *id = NULL;
    if (idlen == 0 || (!inquiry && strcmp(rest, "/cancel") != 0)) {
        sim_respond_error(resp, gateway, 404, NULL, "NOT_FOUND", "no such endpoint");
        return SIM_ROUTE_ANSWERED;
    }
    if (strcmp(req->method, inquiry ? "GET" : "POST") != 0) {
        sim_respond_error(resp, gateway, 405, NULL, "METHOD_NOT_ALLOWED",
                          inquiry ? "use GET for a payment inquiry"
                                  : "use POST to cancel a payment");
        return SIM_ROUTE_ANSWERED;
    }
    *id = strndup(start, idlen);
    if (*id == NULL) {
        sim_respond_error(resp, gateway, 500, NULL,
                          gateway == SIM_GATEWAY_TOSS ? "FAILED_INTERNAL_SYSTEM_PROCESSING"
                                                      : "INTERNAL_SERVER_ERROR",
                          "out of memory");
        return SIM_ROUTE_ANSWERED;
    }
    return inquiry ? SIM_ROUTE_INQUIRY : SIM_ROUTE_CANCEL;
}

const char *sim_request_query(const struct sim_request *req, const char *name)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    return NULL;
}

void sim_respond_json(struct sim_response *resp, int status, json_t *obj)
{
    sim_response_clear(resp);
    resp->status = status;
    if (obj == NULL)
        obj = json_object();
    resp->body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
}

void sim_respond_error(struct sim_response *resp, enum sim_gateway gateway, int status,
                       const char *stripe_type, const char *code, const char *message)
{
    json_t *obj;

    if (gateway == SIM_GATEWAY_TOSS) {
        obj = json_pack("{s:s, s:s}", "code", code ? code : "UNKNOWN", "message",
                        message ? message : "");
    } else if (gateway == SIM_GATEWAY_PORTONE) {
        obj = json_pack("{s:s, s:s}", "type", code ? code : "UNKNOWN", "message",
                        message ? message : "");
    } else if (gateway == SIM_GATEWAY_ADYEN) {
        obj = json_pack("{s:i, s:s, s:s, s:s}", "status", status, "errorCode", code ? code : "000",
                        "message", message ? message : "", "errorType",
                        stripe_type ? stripe_type : "validation");
    } else {
        json_t *err = json_pack("{s:s}", "type", stripe_type ? stripe_type : "api_error");
        if (err != NULL) {
            if (code != NULL)
                json_object_set_new(err, "code", json_string(code));
            json_object_set_new(err, "message", json_string(message ? message : ""));
        }
        obj = json_pack("{s:o}", "error", err);
    }
    sim_respond_json(resp, status, obj);
}

void sim_response_clear(struct sim_response *resp)
{
    free(resp->body);
    *resp = (struct sim_response)SIM_RESPONSE_INIT;
}

bool sim_sleep_ms(struct sim *sim, int64_t ms)
{
    while (ms > 0) {
        if (atomic_load(&sim->stopping))
            return false;
        int64_t step = ms < SIM_SLEEP_SLICE_MS ? ms : SIM_SLEEP_SLICE_MS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(step * 1000000L)};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !atomic_load(&sim->stopping);
}

void sim_format_time(int64_t ms, char *buf, size_t buflen)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, buflen - n, ".%03dZ", (int)(ms % 1000));
}

const char *sim_gateway_name(enum sim_gateway gateway)
{
    if (gateway == SIM_GATEWAY_KAKAOPAY)
        return "kakaopay";
    if (gateway == SIM_GATEWAY_PORTONE)
        return "portone";
    if (gateway == SIM_GATEWAY_ADYEN)
        return "adyen";
    return gateway == SIM_GATEWAY_STRIPE ? "stripe" : "toss";
}

bool sim_gateway_parse(const char *s, enum sim_gateway *out)
{
    if (s == NULL)
        return false;
    if (strcmp(s, "toss") == 0) {
        *out = SIM_GATEWAY_TOSS;
        return true;
    }
    if (strcmp(s, "stripe") == 0) {
        *out = SIM_GATEWAY_STRIPE;
        return true;
    }
    if (strcmp(s, "kakaopay") == 0) {
        *out = SIM_GATEWAY_KAKAOPAY;
        return true;
    }
    if (strcmp(s, "portone") == 0) {
        *out = SIM_GATEWAY_PORTONE;
        return true;
    }
    if (strcmp(s, "adyen") == 0) {
        *out = SIM_GATEWAY_ADYEN;
        return true;
    }
    return false;
}
