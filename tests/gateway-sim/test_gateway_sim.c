/*
 * Integration test of gateway-sim: each test spawns the simulator on an
 * ephemeral port (--listen 127.0.0.1:0 --port-file) and talks HTTP to it with
 * libcurl, as the gateway clients of cancel-retry do. The binary comes from
 * $GATEWAY_SIM (set by meson). Set GATEWAY_SIM_TEST_VERBOSE=1 to see the
 * simulator's logs.
 *
 * The fixture state below is a test's own process-wide state (Criterion runs
 * each test in its own process), not program state.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TOSS_AUTH   "Authorization: Basic dGVzdF9za190b3NzX2xvY2FsOg==" /* test_sk_toss_local: */
#define STRIPE_AUTH "Authorization: Bearer sk_test_stripe_local"

static pid_t sim_pid = -1;
static int sim_port;
static char sim_dir[64];

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void sim_start(void)
{
    char port_file[128], listen[] = "127.0.0.1:0";
    const char *bin = getenv("GATEWAY_SIM");
    posix_spawn_file_actions_t fa;

    cr_assert(bin != NULL, "GATEWAY_SIM is not set (run through meson test)");
    snprintf(sim_dir, sizeof(sim_dir), "/tmp/gwsim-test-XXXXXX");
    cr_assert(mkdtemp(sim_dir) != NULL);
    snprintf(port_file, sizeof(port_file), "%s/port", sim_dir);
    char *argv[] = {(char *)bin, "--listen", listen, "--port-file", port_file, NULL};
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

static void sim_stop(void)
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

TestSuite(gateway_sim, .init = sim_start, .fini = sim_stop, .timeout = 30);

/* ---- HTTP helpers ---- */

struct reply {
    CURLcode rc;
    long status;
    char *body;
    size_t len;
    char headers[4096];
    size_t hlen;
};

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
static const char *header(const struct reply *r, const char *name, char *buf, size_t buflen)
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
static struct reply http(const char *method, const char *path, const char *const *headers,
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

static void reply_free(struct reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* Parse r's body as JSON; fails the test if it is not. */
static json_t *reply_json(const struct reply *r)
{
    json_error_t jerr;
    json_t *j = json_loads(r->body ? r->body : "", 0, &jerr);
    cr_assert(j != NULL, "not JSON (%s): %s", jerr.text, r->body ? r->body : "(empty)");
    return j;
}

/* Admin call that must answer want_status. */
static void admin(const char *method, const char *path, const char *body, long want_status)
{
    static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
    struct reply r = http(method, path, json_hdr, body, 0);
    cr_assert_eq(r.rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(r.rc));
    cr_assert_eq(r.status, want_status, "%s %s -> %ld: %s", method, path, r.status,
                 r.body ? r.body : "");
    reply_free(&r);
}

static void add_payment(const char *gateway, const char *key, long amount, long refunded)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"gateway\":\"%s\",\"paymentKey\":\"%s\",\"amount\":%ld,\"currency\":\"KRW\","
             "\"refunded\":%ld}",
             gateway, key, amount, refunded);
    admin("POST", "/_sim/payments", body, 201);
}

static void add_fault(const char *json)
{
    admin("POST", "/_sim/faults", json, 201);
}

/* Toss cancel of payment key with Idempotency-Key idem (NULL = none);
 * amount < 0 = full cancel. */
static struct reply toss_cancel_as(const char *auth, const char *key, const char *idem, long amount,
                                   long timeout_ms)
{
    char path[256], body[256], idem_hdr[300];
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

static struct reply toss_cancel(const char *key, const char *idem, long amount)
{
    return toss_cancel_as(TOSS_AUTH, key, idem, amount, 0);
}

/* Stripe refund of payment_intent pi; amount < 0 = full refund. */
static struct reply stripe_refund_as(const char *auth, const char *pi, const char *idem,
                                     long amount, long timeout_ms)
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

static struct reply stripe_refund(const char *pi, const char *idem, long amount)
{
    return stripe_refund_as(STRIPE_AUTH, pi, idem, amount, 0);
}

/* The ledger entry of key (new reference). */
static json_t *ledger_of(const char *key)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/ledger/%s", key);
    struct reply r = http("GET", path, NULL, NULL, 0);
    cr_assert_eq(r.status, 200, "GET %s -> %ld", path, r.status);
    json_t *j = reply_json(&r);
    reply_free(&r);
    return j;
}

static long json_int(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    cr_assert(json_is_integer(v), "member %s is not an integer", name);
    return (long)json_integer_value(v);
}

static const char *json_str(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    cr_assert(s != NULL, "member %s is not a string", name);
    return s;
}

/* Assert the ledger of key has nrefunds refunds totalling refunded. */
static void expect_ledger(const char *key, size_t nrefunds, long refunded)
{
    json_t *l = ledger_of(key);
    cr_expect_eq(json_array_size(json_object_get(l, "refunds")), nrefunds,
                 "%s: %zu refunds, want %zu", key, json_array_size(json_object_get(l, "refunds")),
                 nrefunds);
    cr_expect_eq(json_int(l, "refunded"), refunded);
    json_decref(l);
}

/* Toss error code of a reply. */
static void expect_toss_error(struct reply *r, long status, const char *code)
{
    cr_assert_eq(r->rc, CURLE_OK, "%s", curl_easy_strerror(r->rc));
    cr_expect_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    json_t *j = reply_json(r);
    cr_expect_str_eq(json_str(j, "code"), code);
    json_decref(j);
    reply_free(r);
}

/* Stripe error type/code of a reply (code NULL = must have none). */
static void expect_stripe_error(struct reply *r, long status, const char *type, const char *code)
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

/* ---- tests ---- */

Test(gateway_sim, toss_full_cancel_succeeds_and_is_in_the_ledger)
{
    char buf[64];
    add_payment("toss", "tpay_full", 10000, 0);
    struct reply r = toss_cancel("tpay_full", "req-full-1", -1);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "");
    json_t *j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "status"), "CANCELED");
    cr_expect_str_eq(json_str(j, "paymentKey"), "tpay_full");
    cr_expect_eq(json_int(j, "totalAmount"), 10000);
    cr_expect_eq(json_int(j, "balanceAmount"), 0);
    json_t *cancels = json_object_get(j, "cancels");
    cr_assert_eq(json_array_size(cancels), 1);
    cr_expect_eq(json_int(json_array_get(cancels, 0), "cancelAmount"), 10000);
    cr_expect_str_eq(json_str(json_array_get(cancels, 0), "cancelReason"), "booking cancelled");
    json_decref(j);
    reply_free(&r);

    json_t *l = ledger_of("tpay_full");
    cr_expect_eq(json_int(l, "refunded"), 10000);
    json_t *refund = json_array_get(json_object_get(l, "refunds"), 0);
    cr_assert(refund != NULL);
    cr_expect_str_eq(json_str(refund, "idempotencyKey"), "req-full-1");
    cr_expect_eq(json_int(refund, "amount"), 10000);
    json_decref(l);
}

Test(gateway_sim, stripe_partial_refund_succeeds_and_is_in_the_ledger)
{
    add_payment("stripe", "pi_partial", 5000, 0);
    struct reply r = stripe_refund("pi_partial", "req-partial-1", 2000);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "object"), "refund");
    cr_expect_str_eq(json_str(j, "status"), "succeeded");
    cr_expect_str_eq(json_str(j, "payment_intent"), "pi_partial");
    cr_expect_eq(json_int(j, "amount"), 2000);
    cr_expect_eq(strncmp(json_str(j, "id"), "re_", 3), 0);
    json_decref(j);
    reply_free(&r);
    expect_ledger("pi_partial", 1, 2000);
}

Test(gateway_sim, replay_with_the_same_key_returns_the_same_body_and_refunds_once)
{
    char buf[64];
    add_payment("toss", "tpay_replay", 10000, 0);
    struct reply first = toss_cancel("tpay_replay", "req-replay", 3000);
    cr_assert_eq(first.status, 200, "%s", first.body);
    struct reply again = toss_cancel("tpay_replay", "req-replay", 3000);
    cr_assert_eq(again.status, 200, "%s", again.body);
    cr_expect_str_eq(again.body, first.body);
    cr_expect_str_eq(header(&again, "Idempotent-Replayed", buf, sizeof(buf)), "true");
    reply_free(&first);
    reply_free(&again);
    expect_ledger("tpay_replay", 1, 3000);

    add_payment("stripe", "pi_replay", 5000, 0);
    first = stripe_refund("pi_replay", "req-replay-s", 1000);
    again = stripe_refund("pi_replay", "req-replay-s", 1000);
    cr_assert_eq(again.status, 200, "%s", again.body);
    cr_expect_str_eq(again.body, first.body);
    cr_expect_str_eq(header(&again, "Idempotent-Replayed", buf, sizeof(buf)), "true");
    reply_free(&first);
    reply_free(&again);
    expect_ledger("pi_replay", 1, 1000);
}

Test(gateway_sim, same_key_with_a_different_amount_is_a_mismatch)
{
    add_payment("toss", "tpay_mm", 10000, 0);
    struct reply r = toss_cancel("tpay_mm", "req-mm", 3000);
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    r = toss_cancel("tpay_mm", "req-mm", 4000);
    expect_toss_error(&r, 422, "INVALID_IDEMPOTENCY_KEY_REUSE");

    add_payment("stripe", "pi_mm", 5000, 0);
    r = stripe_refund("pi_mm", "req-mm-s", 1000);
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    r = stripe_refund("pi_mm", "req-mm-s", 1001);
    expect_stripe_error(&r, 400, "idempotency_error", NULL);
    expect_ledger("tpay_mm", 1, 3000);
    expect_ledger("pi_mm", 1, 1000);
}

struct bg_call {
    bool stripe;
    struct reply reply;
};

static void *bg_refund(void *arg)
{
    struct bg_call *c = arg;
    if (c->stripe)
        c->reply = stripe_refund_as(STRIPE_AUTH, "pi_busy", "req-busy", 1000, 5000);
    else
        c->reply = toss_cancel_as(TOSS_AUTH, "tpay_busy", "req-busy", 1000, 5000);
    return NULL;
}

/* Number of calls the simulator logged for key. */
static size_t calls_for(const char *key)
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

/* A request arriving while the first one with its key is still in flight
 * (applied, answer not yet delivered) gets the 409; once the first is done,
 * the key replays the success. */
static void in_flight_conflict(bool stripe)
{
    char buf[64];
    const char *key = stripe ? "pi_busy" : "tpay_busy";
    struct bg_call bg = {.stripe = stripe};
    pthread_t t;

    add_payment(stripe ? "stripe" : "toss", key, 10000, 0);
    add_fault("{\"type\":\"apply_then_hang\",\"delayMs\":1500}");
    cr_assert_eq(pthread_create(&t, NULL, bg_refund, &bg), 0);
    for (int i = 0; i < 100 && calls_for(key) == 0; i++)
        sleep_ms(10);
    cr_assert_eq(calls_for(key), 1, "the first call did not arrive");

    struct reply r =
        stripe ? stripe_refund(key, "req-busy", 1000) : toss_cancel(key, "req-busy", 1000);
    if (stripe)
        expect_stripe_error(&r, 409, "idempotency_error", "idempotency_key_in_use");
    else
        expect_toss_error(&r, 409, "IDEMPOTENT_REQUEST_PROCESSING");

    pthread_join(t, NULL);
    cr_expect_eq(bg.reply.rc, CURLE_OK);
    cr_expect_eq(bg.reply.status, 504, "the hung call answered %ld", bg.reply.status);
    reply_free(&bg.reply);

    r = stripe ? stripe_refund(key, "req-busy", 1000) : toss_cancel(key, "req-busy", 1000);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "true");
    reply_free(&r);
    expect_ledger(key, 1, 1000);
}

Test(gateway_sim, toss_key_in_flight_gets_409)
{
    in_flight_conflict(false);
}

Test(gateway_sim, stripe_key_in_flight_gets_409)
{
    in_flight_conflict(true);
}

Test(gateway_sim, error_5xx_twice_then_success_with_the_same_key)
{
    add_payment("toss", "tpay_5xx", 10000, 0);
    add_fault("{\"type\":\"error_5xx\",\"times\":2,\"paymentKey\":\"tpay_5xx\"}");
    struct reply r = toss_cancel("tpay_5xx", "req-5xx", -1);
    cr_expect_eq(r.status, 503, "%s", r.body);
    reply_free(&r);
    r = toss_cancel("tpay_5xx", "req-5xx", -1);
    cr_expect_eq(r.status, 503, "%s", r.body);
    reply_free(&r);
    expect_ledger("tpay_5xx", 0, 0);
    /* 5xx happened before the idempotency layer: nothing was stored, so the
     * same key now does the refund. */
    r = toss_cancel("tpay_5xx", "req-5xx", -1);
    cr_expect_eq(r.status, 200, "%s", r.body);
    char buf[64];
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "");
    reply_free(&r);
    expect_ledger("tpay_5xx", 1, 10000);
}

Test(gateway_sim, rate_limited_carries_retry_after)
{
    char buf[64];
    add_payment("toss", "tpay_429", 10000, 0);
    add_payment("stripe", "pi_429", 10000, 0);
    add_fault("{\"type\":\"rate_limited\",\"retryAfter\":2,\"times\":2}");
    struct reply r = toss_cancel("tpay_429", "req-429", -1);
    cr_expect_str_eq(header(&r, "Retry-After", buf, sizeof(buf)), "2");
    expect_toss_error(&r, 429, "TOO_MANY_REQUESTS");
    r = stripe_refund("pi_429", "req-429-s", -1);
    cr_expect_str_eq(header(&r, "Retry-After", buf, sizeof(buf)), "2");
    expect_stripe_error(&r, 429, "invalid_request_error", "rate_limit");
    expect_ledger("tpay_429", 0, 0);
    expect_ledger("pi_429", 0, 0);
}

Test(gateway_sim, hang_outlasts_a_one_second_client_timeout)
{
    add_payment("toss", "tpay_hang", 10000, 0);
    add_fault("{\"type\":\"hang\",\"delayMs\":2000}");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct reply r = toss_cancel_as(TOSS_AUTH, "tpay_hang", "req-hang", -1, 1000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_expect_eq(r.rc, CURLE_OPERATION_TIMEDOUT, "got %s", curl_easy_strerror(r.rc));
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_expect(ms >= 900 && ms < 1900, "timed out after %ld ms", ms);
    reply_free(&r);
    /* Other connections are served while one hangs. */
    r = http("GET", "/_sim/health", NULL, NULL, 500);
    cr_expect_eq(r.status, 200);
    reply_free(&r);
    expect_ledger("tpay_hang", 0, 0);
}

Test(gateway_sim, apply_then_drop_refunds_once_and_replays_the_success)
{
    char buf[64];
    add_payment("stripe", "pi_drop", 5000, 0);
    add_fault("{\"type\":\"apply_then_drop\",\"paymentKey\":\"pi_drop\"}");
    struct reply r = stripe_refund("pi_drop", "req-drop", 1500);
    cr_expect_neq(r.rc, CURLE_OK, "the client got an answer: %ld %s", r.status, r.body);
    cr_expect(r.rc == CURLE_GOT_NOTHING || r.rc == CURLE_RECV_ERROR, "got %s",
              curl_easy_strerror(r.rc));
    reply_free(&r);
    expect_ledger("pi_drop", 1, 1500);

    r = stripe_refund("pi_drop", "req-drop", 1500);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(header(&r, "Idempotent-Replayed", buf, sizeof(buf)), "true");
    json_t *j = reply_json(&r);
    cr_expect_eq(json_int(j, "amount"), 1500);
    json_decref(j);
    reply_free(&r);
    expect_ledger("pi_drop", 1, 1500);
}

Test(gateway_sim, provider_permanent_and_credential_faults)
{
    add_payment("toss", "tpay_f", 10000, 0);
    add_payment("stripe", "pi_f", 10000, 0);
    add_fault("{\"type\":\"provider_error\",\"gateway\":\"toss\"}");
    struct reply r = toss_cancel("tpay_f", "req-f1", -1);
    expect_toss_error(&r, 500, "PROVIDER_ERROR");
    add_fault("{\"type\":\"provider_error\",\"gateway\":\"stripe\"}");
    r = stripe_refund("pi_f", "req-f2", -1);
    expect_stripe_error(&r, 500, "api_error", NULL);
    add_fault("{\"type\":\"permanent\",\"code\":\"INVALID_CARD_COMPANY\",\"status\":403}");
    r = toss_cancel("tpay_f", "req-f3", -1);
    expect_toss_error(&r, 403, "INVALID_CARD_COMPANY");
    add_fault("{\"type\":\"bad_credentials\"}");
    r = stripe_refund("pi_f", "req-f4", -1);
    expect_stripe_error(&r, 401, "invalid_request_error", NULL);
    expect_ledger("tpay_f", 0, 0);
    expect_ledger("pi_f", 0, 0);
}

Test(gateway_sim, bad_credentials_get_401)
{
    add_payment("toss", "tpay_auth", 10000, 0);
    add_payment("stripe", "pi_auth", 10000, 0);
    struct reply r = toss_cancel_as("Authorization: Basic d3Jvbmc6", "tpay_auth", "req-a", -1, 0);
    expect_toss_error(&r, 401, "UNAUTHORIZED_KEY");
    r = toss_cancel_as("X-No-Auth: 1", "tpay_auth", "req-a", -1, 0);
    expect_toss_error(&r, 401, "UNAUTHORIZED_KEY");
    r = stripe_refund_as("Authorization: Bearer sk_test_wrong", "pi_auth", "req-b", -1, 0);
    expect_stripe_error(&r, 401, "invalid_request_error", NULL);
    expect_ledger("tpay_auth", 0, 0);
    expect_ledger("pi_auth", 0, 0);
    /* Nothing was stored for the key: the right credentials now succeed. */
    r = toss_cancel("tpay_auth", "req-a", -1);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
}

Test(gateway_sim, refund_beyond_the_balance_is_refused)
{
    add_payment("toss", "tpay_big", 10000, 6000);
    struct reply r = toss_cancel("tpay_big", "req-big", 4001);
    expect_toss_error(&r, 400, "NOT_CANCELABLE_AMOUNT");
    add_payment("stripe", "pi_big", 5000, 0);
    r = stripe_refund("pi_big", "req-big-s", 5001);
    expect_stripe_error(&r, 400, "invalid_request_error", "amount_too_large");
    expect_ledger("tpay_big", 0, 6000);
    expect_ledger("pi_big", 0, 0);
    r = toss_cancel("tpay_unknown", "req-unknown", -1);
    expect_toss_error(&r, 404, "NOT_FOUND_PAYMENT");
    r = stripe_refund("pi_unknown", "req-unknown-s", -1);
    expect_stripe_error(&r, 404, "invalid_request_error", "resource_missing");
}

Test(gateway_sim, already_refunded_payment_is_reported_as_such)
{
    add_payment("toss", "tpay_done", 10000, 10000);
    struct reply r = toss_cancel("tpay_done", "req-done", -1);
    expect_toss_error(&r, 400, "ALREADY_CANCELED_PAYMENT");
    add_payment("stripe", "pi_done", 5000, 5000);
    r = stripe_refund("pi_done", "req-done-s", -1);
    expect_stripe_error(&r, 400, "invalid_request_error", "charge_already_refunded");
    /* Also after a full refund through the API. */
    add_payment("stripe", "pi_twice", 5000, 0);
    r = stripe_refund("pi_twice", "req-twice-1", -1);
    cr_expect_eq(r.status, 200);
    reply_free(&r);
    r = stripe_refund("pi_twice", "req-twice-2", -1);
    expect_stripe_error(&r, 400, "invalid_request_error", "charge_already_refunded");
}

Test(gateway_sim, inquiry_returns_balance_and_cancels)
{
    static const char *const auth[] = {TOSS_AUTH, NULL};
    add_payment("toss", "tpay_inq", 10000, 0);
    struct reply r = toss_cancel("tpay_inq", "req-inq-1", 2500);
    reply_free(&r);
    r = toss_cancel("tpay_inq", "req-inq-2", 500);
    reply_free(&r);
    r = http("GET", "/v1/payments/tpay_inq", auth, NULL, 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = reply_json(&r);
    cr_expect_str_eq(json_str(j, "status"), "PARTIAL_CANCELED");
    cr_expect_eq(json_int(j, "balanceAmount"), 7000);
    json_t *cancels = json_object_get(j, "cancels");
    cr_assert_eq(json_array_size(cancels), 2);
    cr_expect_eq(json_int(json_array_get(cancels, 0), "cancelAmount"), 2500);
    cr_expect_eq(json_int(json_array_get(cancels, 1), "cancelAmount"), 500);
    json_decref(j);
    reply_free(&r);
    r = http("GET", "/v1/payments/tpay_nope", auth, NULL, 0);
    expect_toss_error(&r, 404, "NOT_FOUND_PAYMENT");
}

Test(gateway_sim, reset_clears_payments_faults_and_calls)
{
    add_payment("toss", "tpay_reset", 10000, 0);
    add_fault("{\"type\":\"error_5xx\",\"times\":0}");
    struct reply r = toss_cancel("tpay_reset", "req-reset", -1);
    cr_expect_eq(r.status, 503);
    reply_free(&r);
    admin("POST", "/_sim/reset", NULL, 200);
    r = http("GET", "/_sim/ledger", NULL, NULL, 0);
    json_t *j = reply_json(&r);
    cr_expect_eq(json_int(j, "calls"), 0);
    cr_expect_eq(json_array_size(json_object_get(j, "payments")), 0);
    json_decref(j);
    reply_free(&r);
    r = http("GET", "/_sim/ledger/tpay_reset", NULL, NULL, 0);
    cr_expect_eq(r.status, 404);
    reply_free(&r);
    /* The forever-fault is gone and the key is forgotten. */
    add_payment("toss", "tpay_reset", 10000, 0);
    r = toss_cancel("tpay_reset", "req-reset", -1);
    cr_expect_eq(r.status, 200, "%s", r.body);
    reply_free(&r);
}

Test(gateway_sim, oversized_body_gets_413)
{
    static const char *const hdr[] = {STRIPE_AUTH, NULL};
    size_t n = 70 * 1024;
    char *body = malloc(n + 1);
    cr_assert(body != NULL);
    memset(body, 'a', n);
    memcpy(body, "payment_intent=", 15);
    body[n] = '\0';
    struct reply r = http("POST", "/v1/refunds", hdr, body, 0);
    cr_expect_eq(r.status, 413, "status %ld", r.status);
    reply_free(&r);
    free(body);
}
