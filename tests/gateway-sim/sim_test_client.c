/*
 * sim_test_client: the fixture and HTTP helpers shared by the integration
 * tests of gateway-sim (test_gateway_sim.c, test_gateway_sim_truth.c). See
 * sim_test_client.h.
 *
 * The fixture state below is a test's own process-wide state (Criterion runs
 * each test in its own process), not program state.
 */
#include "sim_test_client.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static pid_t sim_pid = -1;
static int sim_port;
static char sim_dir[64];

void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void sim_start(void)
{
    sim_start_args(NULL);
}

void sim_start_args(const char *const *extra)
{
    char port_file[128], listen[] = "127.0.0.1:0";
    const char *bin = getenv("GATEWAY_SIM");
    posix_spawn_file_actions_t fa;
    char *argv[32] = {(char *)bin, "--listen", listen, "--port-file", port_file};
    size_t argc = 5;

    cr_assert(bin != NULL, "GATEWAY_SIM is not set (run through meson test)");
    snprintf(sim_dir, sizeof(sim_dir), "/tmp/gwsim-test-XXXXXX");
    cr_assert(mkdtemp(sim_dir) != NULL);
    snprintf(port_file, sizeof(port_file), "%s/port", sim_dir);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        cr_assert_lt(argc, sizeof(argv) / sizeof(argv[0]) - 1, "too many arguments");
        argv[argc++] = (char *)extra[i];
    }
    posix_spawn_file_actions_init(&fa);
    if (getenv("GATEWAY_SIM_TEST_VERBOSE") == NULL)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(&sim_pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot spawn %s: %s", bin, strerror(rc));
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(port_file, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", &sim_port);
            fclose(f);
            if (ok == 1 && sim_port > 0)
                break;
        }
        sleep_ms(50);
    }
    cr_assert_gt(sim_port, 0, "gateway-sim wrote no port file within 5 s");
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void sim_stop(void)
{
    char path[128];
    int status = 0;

    if (sim_pid > 0) {
        kill(sim_pid, SIGTERM);
        /* A clean stop is prompt even with an injected hang in progress. */
        int waited = 0;
        pid_t r;
        while ((r = waitpid(sim_pid, &status, WNOHANG)) == 0 && waited < 3000) {
            sleep_ms(20);
            waited += 20;
        }
        if (r == 0) {
            kill(sim_pid, SIGKILL);
            waitpid(sim_pid, &status, 0);
        }
        sim_pid = -1;
        cr_expect(r > 0, "gateway-sim did not stop within 3 s of SIGTERM");
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "gateway-sim did not exit cleanly (status %d)", status);
    }
    snprintf(path, sizeof(path), "%s/port", sim_dir);
    unlink(path);
    rmdir(sim_dir);
    curl_global_cleanup();
}

/* ---- HTTP helpers ---- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    char *p = realloc(r->body, r->len + len + 1);
    if (p == NULL)
        return 0;
    memcpy(p + r->len, data, len);
    r->body = p;
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    if (r->hlen + len < sizeof(r->headers)) {
        memcpy(r->headers + r->hlen, data, len);
        r->hlen += len;
        r->headers[r->hlen] = '\0';
    }
    return len;
}

/* The value of header name in r (case-insensitive name), or "" if absent;
 * copied into buf. */
const char *header(const struct reply *r, const char *name, char *buf, size_t buflen)
{
    size_t nlen = strlen(name);
    buf[0] = '\0';
    for (const char *line = r->headers; *line;) {
        const char *end = strstr(line, "\r\n");
        size_t llen = end ? (size_t)(end - line) : strlen(line);
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            snprintf(buf, buflen, "%.*s", (int)(llen - (size_t)(v - line)), v);
            break;
        }
        if (end == NULL)
            break;
        line = end + 2;
    }
    return buf;
}

/* Send method path with the given extra headers (NULL-terminated list, may
 * be NULL) and body (may be NULL). timeout_ms 0 = 10 s. */
struct reply http(const char *method, const char *path, const char *const *headers,
                  const char *body, long timeout_ms)
{
    struct reply r = {0};
    char url[512];
    struct curl_slist *hl = NULL;
    CURL *c = curl_easy_init();

    cr_assert(c != NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sim_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    r.rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return r;
}

void reply_free(struct reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* Parse r's body as JSON; fails the test if it is not. */
json_t *reply_json(const struct reply *r)
{
    json_error_t jerr;
    json_t *j = json_loads(r->body ? r->body : "", 0, &jerr);
    cr_assert(j != NULL, "not JSON (%s): %s", jerr.text, r->body ? r->body : "(empty)");
    return j;
}

/* Admin call that must answer want_status. */
void admin(const char *method, const char *path, const char *body, long want_status)
{
    static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
    struct reply r = http(method, path, json_hdr, body, 0);
    cr_assert_eq(r.rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(r.rc));
    cr_assert_eq(r.status, want_status, "%s %s -> %ld: %s", method, path, r.status,
                 r.body ? r.body : "");
    reply_free(&r);
}

void add_payment(const char *gateway, const char *key, long amount, long refunded)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"gateway\":\"%s\",\"paymentKey\":\"%s\",\"amount\":%ld,\"currency\":\"KRW\","
             "\"refunded\":%ld}",
             gateway, key, amount, refunded);
    admin("POST", "/_sim/payments", body, 201);
}

void add_fault(const char *json)
{
    admin("POST", "/_sim/faults", json, 201);
}

/* Toss cancel of payment key with Idempotency-Key idem (NULL = none);
 * amount < 0 = full cancel. */
struct reply toss_cancel_as(const char *auth, const char *key, const char *idem, long amount,
                            long timeout_ms)
{
    char path[256], body[256], idem_hdr[512];
    const char *headers[4] = {auth, "Content-Type: application/json", NULL, NULL};

    snprintf(path, sizeof(path), "/v1/payments/%s/cancel", key);
    if (amount >= 0)
        snprintf(body, sizeof(body),
                 "{\"cancelReason\":\"booking cancelled\",\"cancelAmount\":%ld}", amount);
    else
        snprintf(body, sizeof(body), "{\"cancelReason\":\"booking cancelled\"}");
    if (idem != NULL) {
        snprintf(idem_hdr, sizeof(idem_hdr), "Idempotency-Key: %s", idem);
        headers[2] = idem_hdr;
    }
    return http("POST", path, headers, body, timeout_ms);
}

struct reply toss_cancel(const char *key, const char *idem, long amount)
{
    return toss_cancel_as(TOSS_AUTH, key, idem, amount, 0);
}

/* Stripe refund of payment_intent pi; amount < 0 = full refund. */
struct reply stripe_refund_as(const char *auth, const char *pi, const char *idem, long amount,
                              long timeout_ms)
{
    char body[256], idem_hdr[300];
    const char *headers[4] = {auth, "Content-Type: application/x-www-form-urlencoded", NULL, NULL};

    if (amount >= 0)
        snprintf(body, sizeof(body), "payment_intent=%s&amount=%ld", pi, amount);
    else
        snprintf(body, sizeof(body), "payment_intent=%s", pi);
    if (idem != NULL) {
        snprintf(idem_hdr, sizeof(idem_hdr), "Idempotency-Key: %s", idem);
        headers[2] = idem_hdr;
    }
    return http("POST", "/v1/refunds", headers, body, timeout_ms);
}

struct reply stripe_refund(const char *pi, const char *idem, long amount)
{
    return stripe_refund_as(STRIPE_AUTH, pi, idem, amount, 0);
}

/* The ledger entry of key (new reference). */
json_t *ledger_of(const char *key)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/ledger/%s", key);
    struct reply r = http("GET", path, NULL, NULL, 0);
    cr_assert_eq(r.status, 200, "GET %s -> %ld", path, r.status);
    json_t *j = reply_json(&r);
    reply_free(&r);
    return j;
}

long json_int(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    cr_assert(json_is_integer(v), "member %s is not an integer", name);
    return (long)json_integer_value(v);
}

const char *json_str(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    cr_assert(s != NULL, "member %s is not a string", name);
    return s;
}

/* Assert the ledger of key has nrefunds refunds totalling refunded. */
void expect_ledger(const char *key, size_t nrefunds, long refunded)
{
    json_t *l = ledger_of(key);
    cr_expect_eq(json_array_size(json_object_get(l, "refunds")), nrefunds,
                 "%s: %zu refunds, want %zu", key, json_array_size(json_object_get(l, "refunds")),
                 nrefunds);
    cr_expect_eq(json_int(l, "refunded"), refunded);
    json_decref(l);
}

void expect_error_member(struct reply *r, long status, const char *name, const char *value)
{
    cr_assert_eq(r->rc, CURLE_OK, "%s", curl_easy_strerror(r->rc));
    cr_expect_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    json_t *j = reply_json(r);
    cr_expect_str_eq(json_str(j, name), value);
    cr_expect(json_is_string(json_object_get(j, "message")), "no message: %s", r->body);
    json_decref(j);
    reply_free(r);
}

/* Toss error code of a reply. */
void expect_toss_error(struct reply *r, long status, const char *code)
{
    expect_error_member(r, status, "code", code);
}

/* Stripe error type/code of a reply (code NULL = must have none). */
void expect_stripe_error(struct reply *r, long status, const char *type, const char *code)
{
    cr_assert_eq(r->rc, CURLE_OK, "%s", curl_easy_strerror(r->rc));
    cr_expect_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    json_t *j = reply_json(r);
    json_t *e = json_object_get(j, "error");
    cr_assert(json_is_object(e), "no error object: %s", r->body);
    cr_expect_str_eq(json_str(e, "type"), type);
    if (code != NULL)
        cr_expect_str_eq(json_str(e, "code"), code);
    else
        cr_expect_null(json_object_get(e, "code"), "unexpected code in %s", r->body);
    json_decref(j);
    reply_free(r);
}

/* Number of calls the simulator logged for key. */
size_t calls_for(const char *key)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/calls?paymentKey=%s", key);
    struct reply r = http("GET", path, NULL, NULL, 0);
    json_t *j = reply_json(&r);
    size_t n = json_array_size(json_object_get(j, "calls"));
    json_decref(j);
    reply_free(&r);
    return n;
}

const char *call_replays(const char *key, char *buf, size_t buflen)
{
    char path[256];
    size_t used = 0, i;
    json_t *c;

    snprintf(path, sizeof(path), "/_sim/calls?paymentKey=%s", key);
    struct reply r = http("GET", path, NULL, NULL, 0);
    json_t *j = reply_json(&r);
    buf[0] = '\0';
    json_array_foreach(json_object_get(j, "calls"), i, c)
    {
        int n = snprintf(buf + used, buflen - used, "%s%s", i ? "," : "",
                         json_is_true(json_object_get(c, "replayed")) ? "true" : "false");
        if (n < 0 || (size_t)n >= buflen - used)
            break;
        used += (size_t)n;
    }
    json_decref(j);
    reply_free(&r);
    return buf;
}
