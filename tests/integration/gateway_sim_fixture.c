/*
 * gateway_sim_fixture: a private gateway-sim process. See gateway_sim_fixture.h.
 */
#include "gateway_sim_fixture.h"

#include <criterion/criterion.h>

#include <curl/curl.h>
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

struct buf {
    char *data;
    size_t len;
};

static size_t collect(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct buf *b = userdata;
    size_t n = size * nmemb;
    char *nd = realloc(b->data, b->len + n + 1);
    if (nd == NULL)
        return 0;
    memcpy(nd + b->len, p, n);
    b->data = nd;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

char *gwsim_admin(const struct gwsim *s, const char *method, const char *path, const char *json,
                  long *status)
{
    char url[256];
    struct buf b = {calloc(1, 1), 0};
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(url, sizeof(url), "%s%s", s->base_url, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    if (json != NULL)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(e);
    long st = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    if (status != NULL)
        *status = rc == CURLE_OK ? st : 0;
    return b.data;
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
    int port = 0;
    for (int i = 0; i < 100 && port == 0; i++) {
        FILE *f = fopen(s->port_file, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port == 0)
            usleep(50 * 1000);
    }
    cr_assert(port > 0, "gateway-sim wrote no port to %s", s->port_file);
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
             gateway, key, amount, strcmp(gateway, "toss") == 0 ? "KRW" : "USD", refunded);
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
    c.name = kind == GATEWAY_STRIPE ? "stripe" : "toss";
    c.kind = kind;
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
