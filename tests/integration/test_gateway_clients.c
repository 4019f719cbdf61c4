/*
 * The gateway clients against a real gateway-sim process: the HTTP engine,
 * the Toss and Stripe wire formats, the answer classification and the
 * idempotency behaviour end to end.
 *
 * Each test spawns its own simulator on an ephemeral port
 * (gateway_sim_fixture.h), so tests are independent and need no local stack.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "gateway_sim_fixture.h"
#include "harness.h"
#include "base/clock.h"
#include "base/http.h"
#include "base/log.h"

#define TOSS_SECRET   GWSIM_TOSS_SECRET
#define STRIPE_SECRET GWSIM_STRIPE_SECRET

/* One refund, synchronously; nothing left in flight after it. */
static struct gateway_answer refund(struct http_client *http, struct gateway_client *gc,
                                    const char *request_id, const char *payment_key, long amount,
                                    bool partial)
{
    /* gwsim_payment() makes Toss payments in KRW and Stripe ones in USD; the
     * answer must show the request's currency to count. */
    const char *currency = strcmp(gateway_client_name(gc), "toss") == 0 ? "KRW" : "USD";
    struct refund_request req = {
        request_id, payment_key, amount, currency, partial, "customer asked", NULL, 0, 0, false, 0};
    struct gateway_answer a = gwsim_refund(http, gc, &req);
    cr_expect_eq(http_client_in_flight(http), 0);
    return a;
}

struct fixture {
    struct gwsim sim;
    struct http_client *http;
    struct config_gateway toss_cfg, stripe_cfg;
    struct gateway_client *toss, *stripe;
};

static void setup(struct fixture *f)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    gwsim_start(&f->sim);
    f->http = http_client_new(err, sizeof(err));
    cr_assert_not_null(f->http, "%s", err);
    f->toss_cfg = gwsim_gateway_cfg(&f->sim, GATEWAY_TOSS, TOSS_SECRET);
    f->stripe_cfg = gwsim_gateway_cfg(&f->sim, GATEWAY_STRIPE, STRIPE_SECRET);
    f->toss = gateway_client_new(&f->toss_cfg, f->http, err, sizeof(err));
    cr_assert_not_null(f->toss, "%s", err);
    f->stripe = gateway_client_new(&f->stripe_cfg, f->http, err, sizeof(err));
    cr_assert_not_null(f->stripe, "%s", err);
}

static void teardown(struct fixture *f)
{
    http_client_free(f->http);
    gateway_client_free(f->toss);
    gateway_client_free(f->stripe);
    gwsim_stop(&f->sim);
}

#define expect_verdict(a, v)                                                                       \
    cr_expect_eq((a).verdict, (v), "verdict %s (http %ld, code %s: %s), want %s",                  \
                 gateway_verdict_name((a).verdict), (a).http_status, (a).code, (a).message,        \
                 gateway_verdict_name(v))

Test(gateway_clients, toss_full_cancel_succeeds_and_a_retry_is_a_replay)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_ok", 10000, 0);

    struct gateway_answer a = refund(f.http, f.toss, "req-ok", "pk_ok", 10000, false);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    cr_expect_eq(a.http_status, 200);
    cr_expect(a.answered);
    cr_expect_not(a.replayed);
    cr_expect_gt(a.latency_ms, -1);

    /* Same key, same request: the stored answer comes back. Toss marks no
     * replay in the answer; the simulator's call log shows it. */
    a = refund(f.http, f.toss, "req-ok", "pk_ok", 10000, false);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    cr_expect_not(a.replayed, "Toss documents no Idempotent-Replayed header");
    gwsim_expect_replays(&f.sim, "pk_ok", "false,true");

    long refunded;
    size_t n;
    gwsim_ledger(&f.sim, "pk_ok", &refunded, &n);
    cr_expect_eq(refunded, 10000);
    cr_expect_eq(n, 1, "one refund for two calls with one key");
    teardown(&f);
}

Test(gateway_clients, stripe_partial_refund_succeeds_and_replays)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "stripe", "pi_ok", 5000, 0);

    struct gateway_answer a = refund(f.http, f.stripe, "req-s1", "pi_ok", 1200, true);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    cr_expect_not(a.replayed);
    a = refund(f.http, f.stripe, "req-s1", "pi_ok", 1200, true);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    cr_expect(a.replayed);

    long refunded;
    size_t n;
    gwsim_ledger(&f.sim, "pi_ok", &refunded, &n);
    cr_expect_eq(refunded, 1200, "partial: only the amount");
    cr_expect_eq(n, 1);
    teardown(&f);
}

Test(gateway_clients, server_error_is_retryable_then_the_retry_succeeds)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_5xx", 10000, 0);
    gwsim_fault(&f.sim, "{\"paymentKey\":\"pk_5xx\",\"type\":\"error_5xx\",\"status\":503}");

    struct gateway_answer a = refund(f.http, f.toss, "req-5xx", "pk_5xx", 10000, false);
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_eq(a.http_status, 503);
    cr_expect(gateway_answer_counts_as_failure(&a));

    a = refund(f.http, f.toss, "req-5xx", "pk_5xx", 10000, false);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    cr_expect_not(a.replayed, "the 503 was not stored: this is the first real processing");
    teardown(&f);
}

Test(gateway_clients, provider_error_is_retryable)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_pe", 10000, 0);
    gwsim_fault(&f.sim, "{\"paymentKey\":\"pk_pe\",\"type\":\"provider_error\"}");
    struct gateway_answer a = refund(f.http, f.toss, "req-pe", "pk_pe", 10000, false);
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_str_eq(a.code, "PROVIDER_ERROR");
    teardown(&f);
}

Test(gateway_clients, rate_limited_carries_retry_after)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_429", 10000, 0);
    gwsim_payment(&f.sim, "stripe", "pi_429", 10000, 0);
    gwsim_fault(&f.sim, "{\"type\":\"rate_limited\",\"retryAfter\":2,\"times\":2}");

    struct gateway_answer a = refund(f.http, f.toss, "req-429", "pk_429", 10000, false);
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_eq(a.http_status, 429);
    cr_expect_eq(a.retry_after_ms, 2000);
    a = refund(f.http, f.stripe, "req-429s", "pi_429", 10000, false);
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_eq(a.http_status, 429);
    cr_expect_eq(a.retry_after_ms, 2000);
    teardown(&f);
}

Test(gateway_clients, hang_times_out_as_retryable_without_an_answer)
{
    struct fixture f;
    setup(&f);
    f.toss_cfg.timeout_ms = 500;
    gwsim_payment(&f.sim, "toss", "pk_hang", 10000, 0);
    gwsim_fault(&f.sim, "{\"paymentKey\":\"pk_hang\",\"type\":\"hang\",\"delayMs\":3000}");

    int64_t t0 = mono_ms();
    struct gateway_answer a = refund(f.http, f.toss, "req-hang", "pk_hang", 10000, false);
    int64_t took = mono_ms() - t0;
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_str_eq(a.code, "TIMEOUT");
    cr_expect_not(a.answered);
    cr_expect_eq(a.http_status, 0);
    cr_expect(gateway_answer_counts_as_failure(&a));
    cr_expect(took >= 450 && took < 2000, "timed out after %lld ms, want ~500", (long long)took);
    teardown(&f);
}

/* apply_then_drop on the first call of a fresh client (a fresh connection):
 * the refund is applied, the answer lost; the retry with the same key gets
 * the stored success and the ledger shows one refund. */
static void drop_then_retry(struct fixture *f, bool stripe)
{
    const char *key = stripe ? "pi_drop" : "pk_drop";
    char fault[128];
    gwsim_payment(&f->sim, stripe ? "stripe" : "toss", key, 10000, 0);
    snprintf(fault, sizeof(fault), "{\"paymentKey\":\"%s\",\"type\":\"apply_then_drop\"}", key);
    gwsim_fault(&f->sim, fault);

    struct gateway_client *gc = stripe ? f->stripe : f->toss;
    struct gateway_answer a = refund(f->http, gc, "req-drop", key, 4000, true);
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_not(a.answered, "connection dropped: no answer");
    cr_expect(gateway_answer_counts_as_failure(&a));
    a = refund(f->http, gc, "req-drop", key, 4000, true);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    /* The retry gets the stored success: Stripe says so in the answer, the
     * call log says so for both. */
    cr_expect_eq(a.replayed, stripe, "replayed flag of the answer");
    gwsim_expect_replays(&f->sim, key, "false,true");

    long refunded;
    size_t n;
    gwsim_ledger(&f->sim, key, &refunded, &n);
    cr_expect_eq(n, 1, "one refund in the ledger");
    cr_expect_eq(refunded, 4000);
}

Test(gateway_clients, toss_apply_then_drop_then_retry_refunds_once)
{
    struct fixture f;
    setup(&f);
    drop_then_retry(&f, false);
    teardown(&f);
}

Test(gateway_clients, stripe_apply_then_drop_then_retry_refunds_once)
{
    struct fixture f;
    setup(&f);
    drop_then_retry(&f, true);
    teardown(&f);
}

/* After a successful call, a refund whose connection drops must come back as
 * a RETRYABLE attempt without an answer: libcurl must not quietly re-send it
 * on a fresh connection when the kept-alive one it reused dies (http.h), or
 * the attempt log would miss a gateway call. The refund went over the warm
 * call's connection (the guard's message proves it) and reached the
 * simulator once; the answer is indeterminate exactly like a timeout after
 * sending (not stored, no proof of no refund: same key, never a new one).
 * The next attempt, same key, gets the stored success. */
Test(gateway_clients, dropped_refund_after_a_warm_call_is_one_call_and_retryable)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_warm", 10000, 0);
    gwsim_payment(&f.sim, "toss", "pk_drop2", 10000, 0);
    struct gateway_answer a = refund(f.http, f.toss, "req-warm", "pk_warm", 10000, false);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    gwsim_fault(&f.sim, "{\"paymentKey\":\"pk_drop2\",\"type\":\"apply_then_drop\"}");
    a = refund(f.http, f.toss, "req-drop2", "pk_drop2", 10000, false);
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_not(a.answered, "the dropped call must not be answered by a silent re-send");
    cr_expect_str_eq(a.code, "CONNECTION_ERROR");
    cr_expect_neq(
        strstr(a.message, "after the request was sent, before any answer; not sent again"), NULL,
        "%s", a.message);
    cr_expect_not(a.stored);
    cr_expect_not(a.no_refund);
    gwsim_expect_replays(&f.sim, "pk_drop2", "false"); /* one call, not two */
    a = refund(f.http, f.toss, "req-drop2", "pk_drop2", 10000, false);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    gwsim_expect_replays(&f.sim, "pk_drop2", "false,true"); /* the retry gets the stored success */
    long refunded;
    size_t n;
    gwsim_ledger(&f.sim, "pk_drop2", &refunded, &n);
    cr_expect_eq(n, 1);
    cr_expect_eq(refunded, 10000);
    teardown(&f);
}

/* n successful Toss refunds of new payments, one after another: the
 * connections they opened. */
static long sequential_refunds(struct fixture *f, const char *prefix, int n)
{
    long connects = 0;
    for (int i = 0; i < n; i++) {
        char pk[32], rid[32];
        snprintf(pk, sizeof(pk), "pk_%s_%d", prefix, i);
        snprintf(rid, sizeof(rid), "req-%s-%d", prefix, i);
        gwsim_payment(&f->sim, "toss", pk, 1000, 0);
        struct gateway_answer a = refund(f->http, f->toss, rid, pk, 1000, false);
        expect_verdict(a, GATEWAY_SUCCEEDED);
        connects += a.connects;
    }
    return connects;
}

/* Refunds answered on time, one after another, share one connection to
 * the simulator: it keeps connections alive and the client reuses them. */
Test(gateway_clients, sequential_refunds_reuse_one_connection_to_gateway_sim)
{
    struct fixture f;
    setup(&f);
    long connects = sequential_refunds(&f, "ka", 10);
    cr_expect_eq(connects, 1, "10 refunds opened %ld connections", connects);
    /* keep_alive: false is a fresh connection per refund. */
    f.toss_cfg.keep_alive = false;
    cr_expect_eq(sequential_refunds(&f, "fresh", 3), 3);
    teardown(&f);
}

Test(gateway_clients, toss_already_canceled_is_confirmed_by_inquiry)
{
    struct fixture f;
    setup(&f);
    /* Full: cancelled before (by someone else's call): balance 0 confirms. */
    gwsim_payment(&f.sim, "toss", "pk_done", 10000, 10000);
    struct gateway_answer a = refund(f.http, f.toss, "req-done", "pk_done", 10000, false);
    expect_verdict(a, GATEWAY_ALREADY_REFUNDED);
    cr_expect_str_eq(a.code, "ALREADY_CANCELED_PAYMENT");

    /* Partial: an earlier cancel of 5000 under another key covers a request
     * for 5000. */
    gwsim_payment(&f.sim, "toss", "pk_part", 5000, 0);
    a = refund(f.http, f.toss, "req-first", "pk_part", 5000, true);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    a = refund(f.http, f.toss, "req-second", "pk_part", 5000, true);
    expect_verdict(a, GATEWAY_ALREADY_REFUNDED);

    /* Partial, but the payment shows no cancel covering it: not confirmed. */
    gwsim_payment(&f.sim, "toss", "pk_odd", 10000, 10000);
    a = refund(f.http, f.toss, "req-odd", "pk_odd", 3000, true);
    expect_verdict(a, GATEWAY_PERMANENT);
    cr_expect_str_eq(a.code, "ALREADY_REFUNDED_UNCONFIRMED");
    teardown(&f);
}

Test(gateway_clients, toss_inquiry_failing_is_retryable)
{
    struct fixture f;
    setup(&f);
    f.toss_cfg.timeout_ms = 500;
    gwsim_payment(&f.sim, "toss", "pk_inq", 10000, 10000);
    /* The cancel answers ALREADY_CANCELED_PAYMENT; the confirming inquiry
     * (the simulator's "operation" selector) first gets a 503, then hangs
     * past the client's timeout. */
    gwsim_fault(&f.sim,
                "{\"paymentKey\":\"pk_inq\",\"operation\":\"inquiry\",\"type\":\"error_5xx\"}");
    gwsim_fault(&f.sim, "{\"paymentKey\":\"pk_inq\",\"operation\":\"inquiry\",\"type\":\"hang\","
                        "\"delayMs\":3000}");
    struct gateway_answer a = refund(f.http, f.toss, "req-inq", "pk_inq", 10000, false);
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_str_eq(a.code, "INQUIRY_FAILED");
    a = refund(f.http, f.toss, "req-inq", "pk_inq", 10000, false);
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_str_eq(a.code, "INQUIRY_FAILED");
    /* Faults used up: confirmed. */
    a = refund(f.http, f.toss, "req-inq", "pk_inq", 10000, false);
    expect_verdict(a, GATEWAY_ALREADY_REFUNDED);
    teardown(&f);
}

Test(gateway_clients, stripe_charge_already_refunded)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "stripe", "pi_done", 3000, 3000);
    struct gateway_answer a = refund(f.http, f.stripe, "req-sdone", "pi_done", 3000, false);
    expect_verdict(a, GATEWAY_ALREADY_REFUNDED);
    cr_expect_str_eq(a.code, "charge_already_refunded");
    teardown(&f);
}

Test(gateway_clients, business_errors_are_permanent)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_small", 1000, 0);
    gwsim_payment(&f.sim, "stripe", "pi_small", 1000, 0);

    struct gateway_answer a = refund(f.http, f.toss, "req-big", "pk_small", 5000, true);
    expect_verdict(a, GATEWAY_PERMANENT);
    cr_expect_str_eq(a.code, "NOT_CANCELABLE_AMOUNT");
    cr_expect_not(gateway_answer_counts_as_failure(&a));
    a = refund(f.http, f.toss, "req-missing", "pk_nowhere", 1000, false);
    expect_verdict(a, GATEWAY_PERMANENT);
    cr_expect_str_eq(a.code, "NOT_FOUND_PAYMENT");
    a = refund(f.http, f.stripe, "req-sbig", "pi_small", 5000, true);
    expect_verdict(a, GATEWAY_PERMANENT);
    cr_expect_str_eq(a.code, "amount_too_large");
    a = refund(f.http, f.stripe, "req-smissing", "pi_nowhere", 1000, false);
    expect_verdict(a, GATEWAY_PERMANENT);
    cr_expect_str_eq(a.code, "resource_missing");

    /* An injected permanent code. */
    gwsim_fault(&f.sim, "{\"paymentKey\":\"pk_small\",\"type\":\"permanent\",\"status\":400,"
                        "\"code\":\"INVALID_REFUND_ACCOUNT_INFO\",\"message\":\"bad account\"}");
    a = refund(f.http, f.toss, "req-perm", "pk_small", 100, true);
    expect_verdict(a, GATEWAY_PERMANENT);
    cr_expect_str_eq(a.code, "INVALID_REFUND_ACCOUNT_INFO");
    cr_expect_str_eq(a.message, "bad account");

    /* The same key with other parameters. Toss compares no bodies: the first
     * answer (a cancel of 100) comes back, which does not show a cancel of
     * 200, so it proves nothing; nothing more is cancelled. */
    a = refund(f.http, f.toss, "req-reuse", "pk_small", 100, true);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    a = refund(f.http, f.toss, "req-reuse", "pk_small", 200, true);
    expect_verdict(a, GATEWAY_UNVERIFIED);
    cr_expect_str_eq(a.rule, "toss.200.unverified");
    long refunded;
    size_t n;
    gwsim_ledger(&f.sim, "pk_small", &refunded, &n);
    cr_expect_eq(n, 1, "one cancel for two calls with one key");
    cr_expect_eq(refunded, 100);
    /* Stripe compares them and refuses. */
    a = refund(f.http, f.stripe, "req-sreuse", "pi_small", 100, true);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    a = refund(f.http, f.stripe, "req-sreuse", "pi_small", 200, true);
    expect_verdict(a, GATEWAY_PERMANENT);
    cr_expect_str_eq(a.rule, "stripe.400.idempotency_error");
    gwsim_ledger(&f.sim, "pi_small", &refunded, &n);
    cr_expect_eq(n, 1);
    cr_expect_eq(refunded, 100);
    teardown(&f);
}

Test(gateway_clients, non_retryable_codes_from_config)
{
    struct fixture f;
    setup(&f);
    char *codes[] = {"PROVIDER_ERROR"};
    f.toss_cfg.retry.non_retryable_codes = codes;
    f.toss_cfg.retry.n_non_retryable_codes = 1;
    gwsim_payment(&f.sim, "toss", "pk_nr", 10000, 0);
    gwsim_fault(&f.sim, "{\"paymentKey\":\"pk_nr\",\"type\":\"provider_error\"}");
    struct gateway_answer a = refund(f.http, f.toss, "req-nr", "pk_nr", 10000, false);
    expect_verdict(a, GATEWAY_PERMANENT);
    cr_expect_str_eq(a.code, "PROVIDER_ERROR");
    teardown(&f);
}

Test(gateway_clients, bad_credentials_are_a_config_fault_without_the_secret)
{
    struct fixture f;
    char err[256];
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_auth", 10000, 0);
    gwsim_payment(&f.sim, "stripe", "pi_auth", 10000, 0);

    struct config_gateway bad_toss = gwsim_gateway_cfg(&f.sim, GATEWAY_TOSS, "test_sk_WRONG_toss");
    struct config_gateway bad_stripe =
        gwsim_gateway_cfg(&f.sim, GATEWAY_STRIPE, "sk_test_WRONG_stripe");
    struct gateway_client *t = gateway_client_new(&bad_toss, f.http, err, sizeof(err));
    struct gateway_client *s = gateway_client_new(&bad_stripe, f.http, err, sizeof(err));
    cr_assert(t != NULL && s != NULL, "%s", err);

    struct gateway_answer a = refund(f.http, t, "req-auth", "pk_auth", 10000, false);
    expect_verdict(a, GATEWAY_CONFIG_FAULT);
    cr_expect_eq(a.http_status, 401);
    cr_expect_null(strstr(a.message, "WRONG"), "secret in message: %s", a.message);
    a = refund(f.http, s, "req-auths", "pi_auth", 10000, false);
    expect_verdict(a, GATEWAY_CONFIG_FAULT);
    cr_expect_eq(a.http_status, 401);
    cr_expect_null(strstr(a.message, "WRONG"), "secret in message: %s", a.message);

    /* The injected variant, with the right key. */
    gwsim_fault(&f.sim, "{\"type\":\"bad_credentials\"}");
    a = refund(f.http, f.toss, "req-auth2", "pk_auth", 10000, false);
    expect_verdict(a, GATEWAY_CONFIG_FAULT);

    long refunded;
    size_t n;
    gwsim_ledger(&f.sim, "pk_auth", &refunded, &n);
    cr_expect_eq(n, 0, "nothing refunded with bad credentials");
    gateway_client_free(t);
    gateway_client_free(s);
    teardown(&f);
}

Test(gateway_clients, connection_refused_is_retryable)
{
    char err[256];
    struct http_client *http = http_client_new(err, sizeof(err));
    cr_assert_not_null(http, "%s", err);
    /* Port 1 on loopback: nothing listens there. */
    struct gwsim nowhere = {0};
    snprintf(nowhere.base_url, sizeof(nowhere.base_url), "http://127.0.0.1:1");
    struct config_gateway c = gwsim_gateway_cfg(&nowhere, GATEWAY_STRIPE, STRIPE_SECRET);
    struct gateway_client *gc = gateway_client_new(&c, http, err, sizeof(err));
    cr_assert_not_null(gc, "%s", err);
    struct gateway_answer a = refund(http, gc, "req-refused", "pi_x", 100, false);
    expect_verdict(a, GATEWAY_RETRYABLE);
    cr_expect_str_eq(a.code, "CONNECTION_ERROR");
    cr_expect_not(a.answered);
    http_client_free(http);
    gateway_client_free(gc);
}

struct inquiry_result {
    bool done;
    struct gateway_payment payment;
};

static void on_inquiry(const struct gateway_payment *p, void *arg)
{
    struct inquiry_result *r = arg;
    r->done = true;
    r->payment = *p;
}

Test(gateway_clients, toss_inquiry_reports_the_payment)
{
    struct fixture f;
    char err[256];
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_look", 10000, 0);
    struct gateway_answer a = refund(f.http, f.toss, "req-look", "pk_look", 2500, true);
    expect_verdict(a, GATEWAY_SUCCEEDED);

    struct inquiry_result r = {0};
    cr_assert(gateway_inquire_start(f.toss, "pk_look", on_inquiry, &r, err, sizeof(err)), "%s",
              err);
    while (!r.done)
        cr_assert_geq(http_client_run(f.http, 100, err, sizeof(err)), 0, "%s", err);
    expect_verdict(r.payment.answer, GATEWAY_SUCCEEDED);
    cr_expect_eq(r.payment.total_amount, 10000);
    cr_expect_eq(r.payment.balance_amount, 7500);
    cr_expect_eq(r.payment.canceled_amount, 2500);
    cr_expect_str_eq(r.payment.status, "PARTIAL_CANCELED");

    cr_expect_not(gateway_inquire_start(f.stripe, "pi_x", on_inquiry, &r, err, sizeof(err)));
    cr_expect_neq(err[0], '\0');
    teardown(&f);
}

struct finding_result {
    bool done;
    struct gateway_inquiry inquiry;
};

static void on_finding(const struct gateway_inquiry *q, void *arg)
{
    struct finding_result *r = arg;
    r->done = true;
    r->inquiry = *q;
}

/* The refund inquiry of req, synchronously. */
static struct gateway_inquiry inquire(struct fixture *f, struct gateway_client *gc,
                                      const struct refund_request *req)
{
    char err[256];
    struct finding_result r = {0};
    cr_assert(gateway_inquire_refund_start(gc, req, on_finding, &r, err, sizeof(err)), "%s", err);
    while (!r.done)
        cr_assert_geq(http_client_run(f->http, 100, err, sizeof(err)), 0, "%s", err);
    return r.inquiry;
}

/* Toss names no request on a cancel: a cancel of our amount counts as ours
 * only beyond those other requests of the payment with the same amount made
 * (refund_request.same_amount_done). The inquiry must see those counts: a
 * refund inquiry that lost them took another request's cancel for ours. */
Test(gateway_clients, toss_inquiry_counts_other_requests_of_the_same_amount)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_same", 10000, 0);
    expect_verdict(refund(f.http, f.toss, "req-first", "pk_same", 3000, true), GATEWAY_SUCCEEDED);

    struct refund_request second = {"req-second", "pk_same", 3000, "KRW", true, "again",
                                    NULL,         1,         0,    false, 0};
    struct gateway_inquiry q = inquire(&f, f.toss, &second);
    cr_expect_eq(q.finding, FINDING_NOT_REFUNDED, "the one cancel of 3000 is req-first's: %s",
                 q.detail);
    cr_expect_eq(q.cancellable_amount, 7000);

    second.same_amount_done = 0;
    q = inquire(&f, f.toss, &second);
    cr_expect_eq(q.finding, FINDING_REFUNDED, "no other request made it: ours (%s)", q.detail);
    teardown(&f);
}

#define CONCURRENT 50

Test(gateway_clients, fifty_refunds_in_flight_at_once, .timeout = 60)
{
    struct fixture f;
    setup(&f);
    gwsim_admin_ok(&f.sim, "PUT", "/_sim/latency", "{\"minMs\":100,\"maxMs\":100}");

    char keys[CONCURRENT][32], ids[CONCURRENT][32];
    struct gwsim_refund results[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++) {
        snprintf(keys[i], sizeof(keys[i]), "pk_many_%d", i);
        snprintf(ids[i], sizeof(ids[i]), "req-many-%d", i);
        gwsim_payment(&f.sim, i % 2 ? "stripe" : "toss", keys[i], 1000, 0);
    }

    int64_t t0 = mono_ms();
    for (int i = 0; i < CONCURRENT; i++) {
        struct refund_request req = {
            ids[i], keys[i], 1000, i % 2 ? "USD" : "KRW", false, "bulk", NULL, 0, 0, false, 0};
        gwsim_refund_start(i % 2 ? f.stripe : f.toss, &req, &results[i]);
    }
    cr_expect_eq(http_client_in_flight(f.http), CONCURRENT);
    gwsim_refunds_wait(f.http, results, CONCURRENT);
    cr_expect_eq(http_client_in_flight(f.http), 0);
    int64_t took = mono_ms() - t0;

    for (int i = 0; i < CONCURRENT; i++)
        expect_verdict(results[i].answer, GATEWAY_SUCCEEDED);
    cr_log_info("%d refunds with 100 ms gateway latency each took %lld ms", CONCURRENT,
                (long long)took);
    /* Sequentially this is >= 5 s; concurrently about one latency plus
     * overhead. Generous bound: a functional proof, not a benchmark. */
    cr_expect_lt(took, 2500, "%d refunds took %lld ms: not concurrent", CONCURRENT,
                 (long long)took);
    teardown(&f);
}

/* Debug logs trace every request's headers: the secret never shows. */
Test(gateway_clients, debug_logs_never_show_the_secret)
{
    struct fixture f;
    setup(&f);
    gwsim_payment(&f.sim, "toss", "pk_log", 10000, 0);
    gwsim_payment(&f.sim, "stripe", "pi_log", 10000, 0);

    char path[64];
    snprintf(path, sizeof(path), "/tmp/gw-log.%d", (int)getpid());
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    cr_assert_geq(fd, 0);
    int saved = dup(2);
    dup2(fd, 2);
    log_init("test", LOG_DEBUG);
    struct gateway_answer a = refund(f.http, f.toss, "req-log", "pk_log", 10000, false);
    struct gateway_answer b = refund(f.http, f.stripe, "req-logs", "pi_log", 10000, false);
    log_init("test", LOG_INFO);
    dup2(saved, 2);
    close(saved);
    expect_verdict(a, GATEWAY_SUCCEEDED);
    expect_verdict(b, GATEWAY_SUCCEEDED);

    char logs[16384];
    ssize_t n = pread(fd, logs, sizeof(logs) - 1, 0);
    close(fd);
    unlink(path);
    cr_assert_gt(n, 0);
    logs[n] = '\0';
    cr_expect_not_null(strstr(logs, "Idempotency-Key: req-log"), "no request trace: %s", logs);
    cr_expect_not_null(strstr(logs, "Authorization: ***"), "no redacted header: %s", logs);
    cr_expect_null(strstr(logs, TOSS_SECRET), "toss secret logged");
    cr_expect_null(strstr(logs, STRIPE_SECRET), "stripe secret logged");
    cr_expect_null(strstr(logs, "dGVzdF9za190b3NzX2xvY2FsOg"), "toss basic credentials logged");
    teardown(&f);
}
