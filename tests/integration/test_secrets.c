/*
 * Secrets end to end: the whole pipeline (pipeline_fixture.h) plus an
 * alert-consumer posting to a slack-sink, at log level debug, with
 * recognisable fake secrets in the config (gateway keys, a Slack webhook
 * URL with a secret path token, a database password, a Kafka SASL
 * password) and a gateway-sim that echoes the key and the Basic credential
 * made from it in its error messages. None of those secrets, raw, base64 or
 * percent-encoded, may appear in any log line of any of our processes, any
 * dead letter, any Outcome event, any Slack message, any cancelctl output
 * or any /metrics.
 *
 * The simulator and the sink are left out: they are the counterparties
 * that hold the secrets by design (the sink records the path it was posted
 * to, which is the webhook's token).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/base64.h"
#include "harness.h"
#include "http_fixture.h"
#include "log_file.h"
#include "pipeline_fixture.h"
#include "slack_sink_fixture.h"

/* Every fake secret holds LEAKME, so that a raw leak is one strstr away;
 * the Toss key has no well-known prefix, so only the config's set can find
 * it, the Stripe key has one. */
#define TOSS_KEY       "tossLEAKME_key_5678"
#define STRIPE_KEY     "sk_test_LEAKME_1234"
#define DB_PASSWORD    "pgLEAKME_pw_4321"
#define KAFKA_PASSWORD "kafkaLEAKME_pw_8765"
#define HOOK_PATH      "/services/T000SEC/B000SEC/LEAKMEhook9876"

static struct pipeline *P;
static struct slack_sink SINK;
static char alert_log[512];

/* The base64 forms (unpadded: the padded ones contain them) of both keys,
 * as "key:" (Basic) and as the bare key. */
static char b64_forms[4][64];

static void make_b64_forms(void)
{
    const char *src[4] = {TOSS_KEY ":", TOSS_KEY, STRIPE_KEY ":", STRIPE_KEY};
    for (int i = 0; i < 4; i++) {
        base64_encode((const unsigned char *)src[i], strlen(src[i]), b64_forms[i]);
        b64_forms[i][strcspn(b64_forms[i], "=")] = '\0';
    }
}

/* text percent-decoded and with JSON/libpq backslash escapes undone (a
 * rough decoder: enough to show an escaped secret). Caller frees. */
static char *decoded(const char *text)
{
    size_t n = strlen(text);
    char *out = malloc(n + 1);
    size_t o = 0;
    cr_assert_not_null(out);
    for (size_t i = 0; i < n; i++) {
        unsigned hex;
        if (text[i] == '%' && i + 2 < n && sscanf(text + i + 1, "%2x", &hex) == 1) {
            out[o++] = (char)hex;
            i += 2;
        } else if (text[i] == '\\' && i + 1 < n) {
            out[o++] = text[++i];
        } else {
            out[o++] = text[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* The first fake secret in text (raw, decoded or base64), or NULL. */
static const char *leak_in(const char *text)
{
    static char found[80];
    if (strstr(text, "LEAKME") != NULL)
        return "LEAKME";
    char *d = decoded(text);
    bool raw = strstr(d, "LEAKME") != NULL;
    free(d);
    if (raw)
        return "LEAKME (escaped)";
    for (int i = 0; i < 4; i++) {
        if (strstr(text, b64_forms[i]) != NULL) {
            snprintf(found, sizeof(found), "base64 %.60s", b64_forms[i]);
            return found;
        }
    }
    return NULL;
}

/* Fail (expect) with the line around the leak. */
static void expect_clean(const char *what, const char *text)
{
    const char *leak = leak_in(text);
    if (leak == NULL)
        return;
    const char *at = strstr(text, "LEAK");
    if (at == NULL)
        at = text;
    const char *from = at - text > 200 ? at - 200 : text;
    cr_expect_fail("%s leaks a secret (%s): ...%.400s...", what, leak, from);
}

/* ---- processes ---- */

static void stop_all(void)
{
    pipeline_stop(P);
    P = NULL;
    slack_sink_stop(&SINK);
}

/* ---- the checks ---- */

static const char *const logs[] = {"intake-consumer-0.log", "outbox-relay-0.log",
                                   "retry-consumer-0.log", "alert-consumer-0.log"};

static void check_logs(void)
{
    for (size_t i = 0; i < sizeof(logs) / sizeof(*logs); i++) {
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", pipeline_log_dir(P), logs[i]);
        char *text = log_file_read(path);
        cr_expect_neq(strlen(text), 0, "%s is empty", path);
        expect_clean(path, text);
        free(text);
    }
    /* Not vacuous: debug tracing ran, and the echoes were there and masked. */
    char path[700];
    snprintf(path, sizeof(path), "%s/retry-consumer-0.log", pipeline_log_dir(P));
    char *retry = log_file_read(path);
    cr_expect_not_null(strstr(retry, "\"http request\""), "no debug trace in %s", path);
    cr_expect_not_null(strstr(retry, "Authorization: ***"), "no masked header in %s", path);
    cr_expect_not_null(strstr(retry, "invalid key ***"), "no masked echo in %s", path);
    free(retry);
    char *alerts = log_file_read(alert_log);
    cr_expect_not_null(strstr(alerts, "\"url\":\"***\""), "the Slack post's URL is not masked");
    free(alerts);
}

/* Every message of a topic: value and headers. */
static void check_topic(const char *role, size_t expect, const char *must_contain)
{
    struct pipeline_msg *m = NULL;
    size_t n = pipeline_read_topic(P, role, expect, 30000, &m);
    cr_expect_geq(n, expect, "want %zu messages on %s, got %zu", expect, role, n);
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof(what), "%s message %zu", role, i);
        char *headers = json_dumps(m[i].headers, JSON_COMPACT);
        expect_clean(what, m[i].value != NULL ? m[i].value : "");
        expect_clean(what, headers);
        if ((m[i].value != NULL && strstr(m[i].value, must_contain) != NULL) ||
            strstr(headers, must_contain) != NULL)
            seen = true;
        free(headers);
    }
    cr_expect(seen, "no %s message says \"%s\": the echo did not get that far", role, must_contain);
    pipeline_msgs_free(m, n);
}

/* cancelctl -vv args...: it runs and prints, and none of it leaks. */
static void check_cancelctl(const char *const *args)
{
    const char *argv[12] = {"-vv"};
    size_t n = 1;
    char what[128] = "cancelctl -vv";
    for (size_t i = 0; args[i] != NULL && n + 1 < sizeof(argv) / sizeof(*argv); i++) {
        argv[n++] = args[i];
        strncat(what, " ", sizeof(what) - strlen(what) - 1);
        strncat(what, args[i], sizeof(what) - strlen(what) - 1);
    }
    argv[n] = NULL;
    struct itest_result r;
    pipeline_cancelctl(P, &r, argv);
    cr_expect_eq(r.exit_code, 0, "%s exited %d: %s", what, r.exit_code, r.err);
    cr_expect_neq(strlen(r.out), 0, "%s printed nothing", what);
    expect_clean(what, r.out);
    expect_clean(what, r.err);
    itest_result_free(&r);
}

/* /metrics of every process that logged its address. */
static void check_metrics(void)
{
    size_t scraped = 0;
    for (size_t i = 0; i < sizeof(logs) / sizeof(*logs); i++) {
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", pipeline_log_dir(P), logs[i]);
        unsigned port = log_file_metrics_port(path);
        if (port != 0) {
            char url[64];
            snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", port);
            char *body = http_fixture_get(url);
            cr_expect_not_null(body, "%s: could not GET %s", logs[i], url);
            if (body != NULL) {
                expect_clean(url, body);
                scraped++;
            }
            free(body);
        }
    }
    cr_expect_eq(scraped, sizeof(logs) / sizeof(*logs), "scraped /metrics of %zu processes",
                 scraped);
}

Test(secrets, never_leave_the_process, .fini = stop_all, .timeout = 240)
{
    char basic[64], extra[2048], fault[1024];

    make_b64_forms();
    base64_encode((const unsigned char *)TOSS_KEY ":", strlen(TOSS_KEY ":"), basic);
    slack_sink_start(&SINK, HOOK_PATH);
    setenv("CR_IT_SIM_TOSS_SECRET", TOSS_KEY, 1);
    setenv("CR_IT_SIM_STRIPE_SECRET", STRIPE_KEY, 1);
    snprintf(extra, sizeof(extra),
             "log: { level: debug }\n"
             "database:\n"
             "  dsn: \"@DSN_CONNINFO@ password=" DB_PASSWORD "\"\n"
             "kafka:\n"
             "  sasl.password: " KAFKA_PASSWORD "\n"
             "gateways:\n"
             "  toss: { secret_key: " TOSS_KEY " }\n"
             "  stripe: { secret_key: " STRIPE_KEY " }\n"
             "metrics: { listen: \"127.0.0.1:0\" }\n"
             "alerts:\n"
             "  slack:\n"
             "    enabled: true\n"
             "    webhook_url: \"${CR_IT_SLACK_URL}\"\n"
             "    timeout: 2s\n"
             "    statuses: [FAILED, EXHAUSTED]\n");
    P = pipeline_start("secrets", extra);
    pipeline_start_process(P, PIPELINE_ALERT, 0);
    pipeline_log_path(P, "alert-consumer-0.log", alert_log, sizeof(alert_log));

    /* Toss refuses for good and echoes the key, its Basic credential and a
     * percent-encoded copy; another Toss payment fails until the attempts
     * run out, echoing the key each time; Stripe refuses for good and
     * echoes the key as a Bearer credential. */
    pipeline_payment(P, "toss", "tpay_sec_fail_01", 15000, "KRW", 0);
    pipeline_payment(P, "toss", "tpay_sec_exh_02", 5000, "KRW", 0);
    pipeline_payment(P, "stripe", "pi_sec_fail_03", 1234, "USD", 0);
    snprintf(fault, sizeof(fault),
             "{\"paymentKey\":\"tpay_sec_fail_01\",\"type\":\"permanent\",\"times\":0,"
             "\"message\":\"invalid key " TOSS_KEY ", credential %s (Basic %s), "
             "key=tossLEAKME%%5Fkey%%5F5678\"}",
             basic, basic);
    pipeline_sim_fault(P, fault);
    pipeline_sim_fault(P, "{\"paymentKey\":\"tpay_sec_exh_02\",\"type\":\"error_5xx\",\"times\":0,"
                          "\"message\":\"upstream rejected invalid key " TOSS_KEY "\"}");
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"pi_sec_fail_03\",\"type\":\"permanent\",\"status\":402,"
           "\"times\":0,\"message\":\"invalid key " STRIPE_KEY " (sent Bearer " STRIPE_KEY ")\"}");
    pipeline_publish(P, "r-sec-fail", "toss", "tpay_sec_fail_01", 15000, "KRW", false);
    pipeline_publish(P, "r-sec-exh", "toss", "tpay_sec_exh_02", 5000, "KRW", false);
    pipeline_publish(P, "r-sec-stripe", "stripe", "pi_sec_fail_03", 1234, "USD", false);
    cr_assert_str_eq(pipeline_wait_final(P, "r-sec-fail", 60000), "FAILED");
    cr_assert_str_eq(pipeline_wait_final(P, "r-sec-exh", 60000), "EXHAUSTED");
    cr_assert_str_eq(pipeline_wait_final(P, "r-sec-stripe", 60000), "FAILED");

    /* Slack: one alert per request. */
    json_t *posts = slack_sink_wait_accepted(&SINK, 3, 30000);
    size_t accepted = slack_sink_count_status(posts, 200);
    cr_expect_geq(accepted, 3, "want 3 Slack alerts, got %zu", accepted);
    size_t i;
    json_t *post;
    bool masked_echo = false;
    json_array_foreach(posts, i, post)
    {
        char *payload = json_dumps(json_object_get(post, "payload"), JSON_COMPACT);
        expect_clean("a Slack message", payload);
        masked_echo = masked_echo || strstr(payload, "invalid key ***") != NULL;
        free(payload);
    }
    cr_expect(masked_echo, "no Slack message shows the masked echo");
    json_decref(posts);

    check_topic("outcome", 3, "invalid key ***");
    check_topic("dlq", 3, "invalid key ***");
    check_cancelctl((const char *const[]){"status", NULL});
    check_cancelctl((const char *const[]){"--json", "status", NULL});
    check_cancelctl((const char *const[]){"show", "r-sec-fail", NULL});
    check_cancelctl((const char *const[]){"--json", "show", "r-sec-stripe", NULL});
    check_cancelctl((const char *const[]){"show", "r-sec-exh", NULL});
    check_cancelctl((const char *const[]){"dlq", "list", NULL});
    check_cancelctl((const char *const[]){"--json", "dlq", "list", NULL});
    check_metrics();
    check_logs();
}
