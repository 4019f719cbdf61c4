/*
 * pipeline_sim: the pipeline's gateway simulator. See pipeline_sim.h.
 */
#include "pipeline_sim.h"

#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "child_process.h"
#include "http_fixture.h"
#include "pipeline_internal.h"

/* Secrets of the harness's default template; the simulator is started with
 * them so that the default config authenticates. */
#define SIM_TOSS_SECRET   "test_sk_toss_it"
#define SIM_STRIPE_SECRET "sk_test_stripe_it"

void pipeline_sim_start(struct pipeline *p)
{
    char port_file[600], log_path[640];
    snprintf(port_file, sizeof(port_file), "%s/sim.port", p->t.dir);
    snprintf(log_path, sizeof(log_path), "%s/gateway-sim.log", p->log_dir);
    /* A test that configures its own gateway keys says so in the
     * environment (pipeline_fixture.h). */
    const char *toss = getenv("CR_IT_SIM_TOSS_SECRET");
    const char *stripe = getenv("CR_IT_SIM_STRIPE_SECRET");
    const char *argv[] = {itest_require_env("CR_GATEWAY_SIM"),
                          "--listen",
                          "127.0.0.1:0",
                          "--port-file",
                          port_file,
                          "--toss-secret",
                          toss != NULL && toss[0] != '\0' ? toss : SIM_TOSS_SECRET,
                          "--stripe-secret",
                          stripe != NULL && stripe[0] != '\0' ? stripe : SIM_STRIPE_SECRET,
                          NULL};
    p->sim.pid = child_spawn(argv, log_path);
    int port = child_wait_port_file(port_file, 10000, "gateway-sim", log_path);
    snprintf(p->sim_url, sizeof(p->sim_url), "http://127.0.0.1:%d", port);
}

long pipeline_sim_call(struct pipeline *p, const char *method, const char *path, const char *json,
                       char **body)
{
    char url[1024], err[256];
    snprintf(url, sizeof(url), "%s%s", p->sim_url, path);
    long status = http_fixture_call(p->curl, method, url, json, 10000, body, err, sizeof(err));
    cr_assert_neq(status, 0, "gateway-sim %s %s: %s", method, path, err);
    return status;
}

void pipeline_sim_post(struct pipeline *p, const char *path, const char *json)
{
    char *body = NULL;
    long st = pipeline_sim_call(p, "POST", path, json, &body);
    bool ok = st >= 200 && st < 300;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", body);
    free(body);
    cr_assert(ok, "gateway-sim POST %s %s: HTTP %ld %s", path, json ? json : "", st, msg);
}

void pipeline_sim_fault(struct pipeline *p, const char *json)
{
    pipeline_sim_post(p, "/_sim/faults", json);
}

char *pipeline_sim_get(struct pipeline *p, const char *path)
{
    char *body = NULL;
    long st = pipeline_sim_call(p, "GET", path, NULL, &body);
    if (st < 200 || st >= 300) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", body);
        free(body);
        cr_assert_fail("gateway-sim GET %s: HTTP %ld %s", path, st, msg);
    }
    return body;
}

const char *pipeline_sim_url(struct pipeline *p)
{
    return p->sim_url;
}

void pipeline_payment(struct pipeline *p, const char *gateway, const char *payment_key,
                      long long amount, const char *currency, long long refunded)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:I}", "gateway", gateway, "paymentKey",
                          payment_key, "amount", (json_int_t)amount, "currency", currency,
                          "refunded", (json_int_t)refunded);
    cr_assert_not_null(j);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    pipeline_sim_post(p, "/_sim/payments", s);
    free(s);
}

json_t *pipeline_ledger(struct pipeline *p, const char *payment_key)
{
    char path[512];
    char *esc = curl_easy_escape(p->curl, payment_key, 0);
    snprintf(path, sizeof(path), "/_sim/ledger/%s", esc);
    curl_free(esc);
    char *body = NULL;
    long st = pipeline_sim_call(p, "GET", path, NULL, &body);
    json_t *j = st == 200 ? json_loads(body, 0, NULL) : NULL;
    free(body);
    cr_assert(st == 200 || st == 404, "gateway-sim GET %s: HTTP %ld", path, st);
    return j;
}

long long pipeline_refunds(struct pipeline *p, const char *payment_key)
{
    json_t *j = pipeline_ledger(p, payment_key);
    long long n = j ? (long long)json_array_size(json_object_get(j, "refunds")) : 0;
    json_decref(j);
    return n;
}

long long pipeline_refunded_amount(struct pipeline *p, const char *payment_key)
{
    json_t *j = pipeline_ledger(p, payment_key);
    long long n = j ? (long long)json_integer_value(json_object_get(j, "refunded")) : 0;
    json_decref(j);
    return n;
}
