/*
 * gateway_sim_fixture: a private gateway-sim process. See gateway_sim_fixture.h.
 */
#include "gateway_sim_fixture.h"

#include <criterion/criterion.h>

#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_process.h"
#include "harness.h"
#include "http_fixture.h"

#include "base/clock.h"

static void sim_binary(char *out, size_t len)
{
    const char *env = getenv("GATEWAY_SIM");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, len, "%s", env);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    cr_assert(n > 0, "readlink /proc/self/exe failed");
    self[n] = '\0';
    snprintf(out, len, "%s/../gateway-sim/gateway-sim", dirname(self));
}

char *gwsim_admin(const struct gwsim *s, const char *method, const char *path, const char *json,
                  long *status)
{
    char url[256], *body = NULL;
    snprintf(url, sizeof(url), "%s%s", s->base_url, path);
    long st = http_fixture_call(NULL, method, url, json, 5000, &body, NULL, 0);
    if (status != NULL)
        *status = st;
    return body;
}

void gwsim_admin_ok(const struct gwsim *s, const char *method, const char *path, const char *json)
{
    long st = 0;
    char *body = gwsim_admin(s, method, path, json, &st);
    cr_assert(st >= 200 && st < 300, "%s %s %s -> %ld %s", method, path, json ? json : "", st,
              body);
    free(body);
}

void gwsim_start(struct gwsim *s)
{
    char bin[PATH_MAX];
    sim_binary(bin, sizeof(bin));
    cr_assert(access(bin, X_OK) == 0, "gateway-sim not found at %s (set GATEWAY_SIM)", bin);
    snprintf(s->port_file, sizeof(s->port_file), "/tmp/gw-sim-port.%d", (int)getpid());
    unlink(s->port_file);

    s->pid = fork();
    cr_assert(s->pid >= 0);
    if (s->pid == 0) {
        /* Die with the test process even if an assertion ends it early. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(bin, "gateway-sim", "--listen", "127.0.0.1:0", "--port-file", s->port_file,
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    int port = child_wait_port_file(s->port_file, 5000, "gateway-sim", "the test's output");
    snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d", port);
    long st = 0;
    for (int i = 0; i < 50 && st != 200; i++) {
        free(gwsim_admin(s, "GET", "/_sim/health", NULL, &st));
        if (st != 200)
            usleep(50 * 1000);
    }
    cr_assert_eq(st, 200, "gateway-sim not healthy");
}

void gwsim_stop(struct gwsim *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    unlink(s->port_file);
}

void gwsim_payment(const struct gwsim *s, const char *gateway, const char *key, long amount,
                   long refunded)
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"gateway\":\"%.16s\",\"paymentKey\":\"%.128s\",\"amount\":%ld,\"currency\":\"%s\","
             "\"refunded\":%ld}",
             gateway, key, amount, strcmp(gateway, "stripe") == 0 ? "USD" : "KRW", refunded);
    gwsim_admin_ok(s, "POST", "/_sim/payments", json);
}

void gwsim_fault(const struct gwsim *s, const char *json)
{
    gwsim_admin_ok(s, "POST", "/_sim/faults", json);
}

/* The ledger entry of one payment: refunded total and number of refunds. */
void gwsim_ledger(const struct gwsim *s, const char *key, long *refunded, size_t *nrefunds)
{
    char path[128];
    long st = 0;
    snprintf(path, sizeof(path), "/_sim/ledger/%s", key);
    char *body = gwsim_admin(s, "GET", path, NULL, &st);
    cr_assert_eq(st, 200, "ledger %s: %ld %s", key, st, body);
    json_t *root = json_loads(body, 0, NULL);
    cr_assert_not_null(root, "ledger body: %s", body);
    *refunded = (long)json_integer_value(json_object_get(root, "refunded"));
    *nrefunds = json_array_size(json_object_get(root, "refunds"));
    json_decref(root);
    free(body);
}

/* The "replayed" flags of the calls the simulator logged for key, in order,
 * as "false,true,..." (caller frees). Toss answers carry no replay marker
 * (it documents none), so this is where a Toss replay shows. */
static char *replays(const struct gwsim *s, const char *key)
{
    char path[128], out[256] = "";
    size_t used = 0, i;
    long st = 0;
    json_t *c;
    snprintf(path, sizeof(path), "/_sim/calls?paymentKey=%s", key);
    char *body = gwsim_admin(s, "GET", path, NULL, &st);
    cr_assert_eq(st, 200, "calls %s: %ld %s", key, st, body);
    json_t *root = json_loads(body, 0, NULL);
    cr_assert_not_null(root, "calls body: %s", body);
    json_array_foreach(json_object_get(root, "calls"), i, c)
    {
        int n = snprintf(out + used, sizeof(out) - used, "%s%s", i ? "," : "",
                         json_is_true(json_object_get(c, "replayed")) ? "true" : "false");
        if (n < 0 || (size_t)n >= sizeof(out) - used)
            break;
        used += (size_t)n;
    }
    json_decref(root);
    free(body);
    return strdup(out);
}

void gwsim_expect_replays(const struct gwsim *s, const char *key, const char *want)
{
    char *got = replays(s, key);
    cr_expect_str_eq(got, want, "replayed flags of the calls for %s", key);
    free(got);
}

struct config_gateway gwsim_gateway_cfg(const struct gwsim *s, enum gateway_kind kind,
                                        const char *secret)
{
    struct config_gateway c;
    memset(&c, 0, sizeof(c));
    c.name = (char *)config_gateway_kind_name(kind);
    c.kind = kind;
    if (kind == GATEWAY_KAKAOPAY)
        c.cid = (char *)GWSIM_KAKAOPAY_CID;
    c.base_url = (char *)s->base_url;
    c.secret_key = (char *)secret;
    c.connect_timeout_ms = 2000;
    c.timeout_ms = 5000;
    c.tls_verify = true;
    /* The production defaults (config.c): refunds reuse connections. */
    c.keep_alive = true;
    c.keep_alive_idle_ms = 2000;
    c.max_connections = 32;
    return c;
}

static void on_answer(const struct gateway_answer *a, void *arg)
{
    struct gwsim_refund *r = arg;
    cr_assert_not(r->done, "callback called twice");
    r->done = true;
    r->answer = *a;
}

void gwsim_refund_start(struct gateway_client *gc, const struct refund_request *req,
                        struct gwsim_refund *r)
{
    char err[256];
    memset(r, 0, sizeof(*r));
    cr_assert(gateway_refund_start(gc, req, on_answer, r, err, sizeof(err)), "%s", err);
}

void gwsim_refunds_wait(struct http_client *http, struct gwsim_refund *refunds, size_t n)
{
    char err[256];
    int64_t deadline = mono_ms() + 30000;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += refunds[i].done;
        if (done == n)
            break;
        cr_assert_lt(mono_ms(), deadline, "%zu of %zu refunds still running after 30 s", n - done,
                     n);
        cr_assert_geq(http_client_run(http, 100, err, sizeof(err)), 0, "%s", err);
    }
}

struct gateway_answer gwsim_refund(struct http_client *http, struct gateway_client *gc,
                                   const struct refund_request *req)
{
    struct gwsim_refund r;
    gwsim_refund_start(gc, req, &r);
    gwsim_refunds_wait(http, &r, 1);
    return r.answer;
}
