#include <criterion/criterion.h>
#include <stdio.h>

#include "core/breaker.h"

/* window 10 s, at least 4 calls, 50 % failures, open 5 s, 2 probes. */
static struct config_breaker cfg(void)
{
    struct config_breaker c = {0};
    c.enabled = true;
    c.failure_ratio = 0.5;
    c.min_requests = 4;
    c.window_ms = 10000;
    c.open_ms = 5000;
    c.half_open_probes = 2;
    return c;
}

/* The values of config/cancel-retry.example.yaml (also the defaults):
 * window 30 s, at least 20 requests, 50 % failures, open 30 s, 3 probes. */
static struct config_breaker example_cfg(void)
{
    struct config_breaker c = {0};
    c.enabled = true;
    c.failure_ratio = 0.5;
    c.min_requests = 20;
    c.window_ms = 30000;
    c.open_ms = 30000;
    c.half_open_probes = 3;
    return c;
}

/* Every call has a request: tests number theirs, the worker hashes the
 * requestId with breaker_request_hash(). */

/* Let one call of request req through at now and record its result. */
static void call(struct breaker *br, int64_t now, uint64_t req, bool success)
{
    int64_t retry_at = -1;
    cr_assert(breaker_allow(br, now, &retry_at), "call of %llu at %lld refused",
              (unsigned long long)req, (long long)now);
    breaker_record(br, now, success, req);
}

static struct breaker *tripped_at(int64_t t)
{
    struct config_breaker c = cfg();
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    call(br, t, 1, false);
    call(br, t, 2, false);
    call(br, t, 3, true);
    call(br, t, 4, false);
    cr_assert_eq(breaker_state(br, t), BREAKER_OPEN);
    return br;
}

Test(breaker, stays_closed_below_min_requests)
{
    struct config_breaker c = cfg();
    struct breaker *br = breaker_new(&c);
    int64_t t = 1000;
    call(br, t, 5, false);
    call(br, t, 6, false);
    call(br, t, 7, false);
    cr_expect_eq(breaker_state(br, t), BREAKER_CLOSED, "3 failures < min_requests 4");
    breaker_free(br);
}

Test(breaker, stays_closed_below_failure_ratio)
{
    struct config_breaker c = cfg();
    struct breaker *br = breaker_new(&c);
    int64_t t = 1000;
    for (int i = 0; i < 20; i++)
        call(br, t + i, 100 + (uint64_t)i, i % 4 != 0); /* 5 failures of 20 = 25 % */
    cr_expect_eq(breaker_state(br, t + 20), BREAKER_CLOSED);
    breaker_free(br);
}

Test(breaker, opens_at_ratio_and_refuses_until_open_ms)
{
    struct breaker *br = tripped_at(1000);
    int64_t retry_at = -1;
    cr_expect_not(breaker_allow(br, 1000, &retry_at));
    cr_expect_eq(retry_at, 6000);
    cr_expect_not(breaker_allow(br, 5999, &retry_at));
    cr_expect_eq(retry_at, 6000);
    cr_expect_eq(breaker_state(br, 5999), BREAKER_OPEN);
    cr_expect_eq(breaker_state(br, 6000), BREAKER_HALF_OPEN);
    breaker_free(br);
}

Test(breaker, half_open_limits_concurrent_probes)
{
    struct breaker *br = tripped_at(1000);
    int64_t retry_at = -1;
    cr_expect(breaker_allow(br, 6000, &retry_at));
    cr_expect(breaker_allow(br, 6001, &retry_at));
    cr_expect_not(breaker_allow(br, 6002, &retry_at), "third concurrent probe must wait");
    cr_expect_gt(retry_at, 6002);
    cr_expect_leq(retry_at, 6002 + 1000,
                  "come back when the probes have decided, not a whole open period later");
    /* One probe answers: a slot frees up. */
    breaker_record(br, 6100, true, 901);
    cr_expect_eq(breaker_state(br, 6100), BREAKER_HALF_OPEN);
    cr_expect(breaker_allow(br, 6101, &retry_at));
    breaker_free(br);
}

Test(breaker, probe_successes_close_it)
{
    struct breaker *br = tripped_at(1000);
    cr_assert(breaker_allow(br, 6000, NULL));
    cr_assert(breaker_allow(br, 6000, NULL));
    breaker_record(br, 6050, true, 902);
    cr_expect_eq(breaker_state(br, 6050), BREAKER_HALF_OPEN);
    breaker_record(br, 6060, true, 903);
    cr_expect_eq(breaker_state(br, 6060), BREAKER_CLOSED);
    /* Closed with a clean window: the failures that opened it are gone, a
     * single new failure does not re-open it. */
    call(br, 6100, 9, false);
    cr_expect_eq(breaker_state(br, 6100), BREAKER_CLOSED);
    breaker_free(br);
}

Test(breaker, one_probe_failure_reopens_it)
{
    struct breaker *br = tripped_at(1000);
    cr_assert(breaker_allow(br, 6000, NULL));
    cr_assert(breaker_allow(br, 6000, NULL));
    breaker_record(br, 6010, true, 904);
    breaker_record(br, 6020, false, 905);
    cr_expect_eq(breaker_state(br, 6020), BREAKER_OPEN);
    int64_t retry_at = -1;
    cr_expect_not(breaker_allow(br, 6030, &retry_at));
    cr_expect_eq(retry_at, 11020, "a new open period from the failed probe");
    cr_expect_eq(breaker_state(br, 11020), BREAKER_HALF_OPEN);
    breaker_free(br);
}

/* Three probes judged by the 50 % ratio: one unlucky failure among them does
 * not re-open a gateway that mostly works again; two do. */
static struct breaker *tripped_with_three_probes(void)
{
    struct config_breaker c = cfg();
    c.half_open_probes = 3;
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    for (int i = 0; i < 4; i++)
        call(br, 1000, 200 + (uint64_t)i, false);
    cr_assert_eq(breaker_state(br, 1000), BREAKER_OPEN);
    for (int i = 0; i < 3; i++)
        cr_assert(breaker_allow(br, 6000, NULL));
    return br;
}

Test(breaker, one_failure_of_three_probes_still_closes_it)
{
    struct breaker *br = tripped_with_three_probes();
    breaker_record(br, 6010, false, 906);
    cr_expect_eq(breaker_state(br, 6010), BREAKER_HALF_OPEN);
    breaker_record(br, 6020, true, 907);
    cr_expect_eq(breaker_state(br, 6020), BREAKER_HALF_OPEN);
    breaker_record(br, 6030, true, 908);
    cr_expect_eq(breaker_state(br, 6030), BREAKER_CLOSED);
    breaker_free(br);
}

Test(breaker, two_failures_of_three_probes_reopen_it)
{
    struct breaker *br = tripped_with_three_probes();
    breaker_record(br, 6010, true, 909);
    breaker_record(br, 6020, false, 910);
    cr_expect_eq(breaker_state(br, 6020), BREAKER_HALF_OPEN);
    breaker_record(br, 6030, false, 911);
    cr_expect_eq(breaker_state(br, 6030), BREAKER_OPEN);
    breaker_free(br);
}

Test(breaker, old_failures_slide_out_of_the_window)
{
    struct config_breaker c = cfg();
    struct breaker *br = breaker_new(&c);
    call(br, 1000, 11, false);
    call(br, 1000, 12, false);
    call(br, 1000, 13, false);
    /* 20 s later the window (10 s) has forgotten them. */
    call(br, 21000, 14, false);
    cr_expect_eq(breaker_state(br, 21000), BREAKER_CLOSED);
    call(br, 21000, 15, true);
    call(br, 21000, 16, true);
    call(br, 21000, 17, true);
    cr_expect_eq(breaker_state(br, 21000), BREAKER_CLOSED, "1 failure of 4");
    /* Within the window they add up. */
    call(br, 25000, 18, false);
    call(br, 25000, 19, true);
    call(br, 29000, 20, false);
    cr_expect_eq(breaker_state(br, 29000), BREAKER_CLOSED, "3 failures of 7");
    call(br, 30000, 21, false);
    cr_expect_eq(breaker_state(br, 30000), BREAKER_OPEN, "4 failures of 8 within 10 s");
    breaker_free(br);
}

Test(breaker, late_answers_while_open_are_ignored)
{
    struct breaker *br = tripped_at(1000);
    breaker_record(br, 2000, true, 912);
    breaker_record(br, 2000, true, 913);
    cr_expect_eq(breaker_state(br, 2000), BREAKER_OPEN);
    breaker_free(br);
}

Test(breaker, disabled_always_allows)
{
    struct config_breaker c = cfg();
    c.enabled = false;
    struct breaker *br = breaker_new(&c);
    for (int i = 0; i < 100; i++)
        call(br, 1000 + i, 300 + (uint64_t)i, false);
    cr_expect_eq(breaker_state(br, 2000), BREAKER_CLOSED);
    cr_expect(breaker_allow(br, 2000, NULL));
    breaker_free(br);
}

Test(breaker, names)
{
    cr_expect_str_eq(breaker_state_name(BREAKER_CLOSED), "closed");
    cr_expect_str_eq(breaker_state_name(BREAKER_OPEN), "open");
    cr_expect_str_eq(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
    breaker_free(NULL);
}

/* The incident: a quarter of the payments fail persistently, each answering
 * 5xx on every one of its 6 attempts, among a steady stream of healthy ones
 * (10 a second). The bad ones are retried after the example policy's waits,
 * 30, 60, 120, 240 and 480 s (initial_delay 30s, doubling; full jitter only
 * shortens them), so their attempts land in different 30 s windows. Counting
 * each request once per window, about 62 % of a window's requests were
 * failing and the breaker kept opening. Now only a bad payment's first
 * failure counts, its retries are known-bad repeats: 25 % failing, up to
 * about 43 % once the table is full and forgets marks before the last
 * attempts (it fills up within these 40 minutes; see breaker.h). */
Test(breaker, quarter_of_payments_failing_persistently_never_opens_it)
{
    struct config_breaker c = example_cfg();
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    static const int64_t retry_at_s[] = {30, 90, 210, 450, 930}; /* after the first attempt */
    const int64_t tick_ms = 75; /* a new payment every 75 ms, 3 of 4 healthy */
    const int64_t ticks = 40 * 60 * 1000 / tick_ms;
    for (int64_t k = 0; k < ticks; k++) {
        int64_t now = 1000 + k * tick_ms;
        /* Attempts due now of the bad payments (every 4th) that came
         * earlier, then the payment arriving now. */
        for (size_t a = 0; a < sizeof(retry_at_s) / sizeof(retry_at_s[0]); a++) {
            int64_t started = k - retry_at_s[a] * 1000 / tick_ms;
            if (started >= 0 && started % 4 == 0)
                call(br, now, (uint64_t)started, false);
        }
        call(br, now, (uint64_t)k, k % 4 != 0);
        cr_assert_eq(breaker_state(br, now), BREAKER_CLOSED, "opened at %lld ms", (long long)now);
    }
    breaker_free(br);
}

/* A gateway-wide outage: most distinct requests fail, each also retried.
 * It opens on the min_requests-th distinct request, not before however many
 * retries the first ones made. */
Test(breaker, outage_across_requests_opens_it_after_min_requests)
{
    struct config_breaker c = example_cfg();
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    int64_t now = 1000;
    for (uint64_t req = 1; req <= 20; req++) {
        bool ok = req % 5 == 0; /* 4 of 5 fail */
        call(br, now, req, ok);
        for (int retry = 0; !ok && retry < 2; retry++) {
            now += 100;
            cr_assert_eq(breaker_state(br, now), BREAKER_CLOSED,
                         "opened after only %llu distinct requests", (unsigned long long)req);
            call(br, now, req, false);
        }
        now += 100;
        if (req < 20)
            cr_assert_eq(breaker_state(br, now), BREAKER_CLOSED,
                         "opened after only %llu distinct requests", (unsigned long long)req);
    }
    cr_expect_eq(breaker_state(br, now), BREAKER_OPEN, "16 of 20 distinct requests failed");
    int64_t retry_at = -1;
    cr_expect_not(breaker_allow(br, now, &retry_at), "a healthy request must wait now");
    breaker_free(br);
}

/* One bad payment is not a gateway outage, however often it is retried:
 * its first failure counts, its retries are known-bad repeats. */
Test(breaker, one_request_failing_100_times_alone_never_opens_it)
{
    struct config_breaker c = cfg(); /* min_requests 4 */
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    uint64_t req = breaker_request_hash("r-bad-payment");
    for (int i = 0; i < 100; i++) {
        int64_t now = 1000 + i * 300; /* 30 s: it slides through the window */
        call(br, now, req, false);
        cr_assert_eq(breaker_state(br, now), BREAKER_CLOSED, "opened at failure %d", i + 1);
    }
    breaker_free(br);
}

/* A request's latest result in the window is the one that counts. */
Test(breaker, request_that_failed_then_succeeded_counts_as_success)
{
    struct config_breaker c = cfg(); /* min_requests 4, 50 % */
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    uint64_t a = breaker_request_hash("r-a"), b = breaker_request_hash("r-b");
    call(br, 1000, a, false);
    call(br, 1100, b, false);
    call(br, 1200, breaker_request_hash("r-c"), true);
    call(br, 1300, a, true); /* a's retry went through */
    call(br, 1400, breaker_request_hash("r-d"), true);
    call(br, 1500, breaker_request_hash("r-e"), false);
    /* Failing: b and e of 5 distinct requests. Were a still a failure
     * (3 of 5), or every call counted (3 of 6), it would be open. */
    cr_expect_eq(breaker_state(br, 1500), BREAKER_CLOSED, "2 failing requests of 5");
    /* And the other way round: a fails again, which replaces its success. */
    call(br, 1600, a, false);
    cr_expect_eq(breaker_state(br, 1600), BREAKER_OPEN, "a, b, e failing: 3 of 5");
    breaker_free(br);
}

/* A failure of a request the table remembers as failed is left out of
 * the window, even long after its first failure has left it. */
Test(breaker, known_bad_repeat_neither_fails_nor_succeeds)
{
    struct config_breaker c = cfg(); /* window 10 s, min_requests 4, 50 % */
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    uint64_t bad = breaker_request_hash("r-bad");
    call(br, 1000, bad, false); /* its first failure */
    /* 480 s later, another window: its retry fails again. */
    int64_t t = 481000;
    call(br, t, bad, false);
    call(br, t + 100, breaker_request_hash("r-s1"), true);
    call(br, t + 200, breaker_request_hash("r-s2"), true);
    call(br, t + 300, breaker_request_hash("r-f1"), false);
    cr_expect_eq(breaker_state(br, t + 300), BREAKER_CLOSED,
                 "1 failing of 3; the repeat counted as a failure would make it 2 of 4");
    call(br, t + 400, breaker_request_hash("r-f2"), false);
    cr_expect_eq(breaker_state(br, t + 400), BREAKER_OPEN,
                 "2 failing of 4; the repeat counted as a success would make it 2 of 5");
    breaker_free(br);
}

/* A success counts, and the request's next failure counts again. */
Test(breaker, success_clears_the_failed_mark)
{
    struct config_breaker c = cfg(); /* window 10 s, min_requests 4, 50 % */
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    uint64_t a = breaker_request_hash("r-a");
    call(br, 1000, a, false); /* its first failure */
    int64_t t = 31000;        /* that window is gone; the mark stays */
    call(br, t, a, true);
    call(br, t + 100, breaker_request_hash("r-s1"), true);
    call(br, t + 200, breaker_request_hash("r-s2"), true);
    call(br, t + 300, breaker_request_hash("r-f1"), false);
    call(br, t + 400, breaker_request_hash("r-f2"), false);
    cr_expect_eq(breaker_state(br, t + 400), BREAKER_CLOSED,
                 "2 failing of 5; without a's success 2 of 4 would open it");
    call(br, t + 500, a, false);
    cr_expect_eq(breaker_state(br, t + 500), BREAKER_OPEN,
                 "a failed again after its success: a first failure again, 3 of 5");
    breaker_free(br);
}

/* Failures during an outage say nothing about a request itself: once the
 * probes close it, the requests that opened it count again when they fail. */
Test(breaker, closing_forgets_the_failed_marks)
{
    struct breaker *br = tripped_at(1000); /* requests 1, 2 and 4 failed */
    cr_assert(breaker_allow(br, 6000, NULL));
    cr_assert(breaker_allow(br, 6000, NULL));
    breaker_record(br, 6050, true, 914);
    breaker_record(br, 6060, true, 915);
    cr_assert_eq(breaker_state(br, 6060), BREAKER_CLOSED);
    call(br, 6100, 10, true);
    call(br, 6100, 1, false);
    call(br, 6100, 2, false);
    cr_expect_eq(breaker_state(br, 6100), BREAKER_CLOSED, "3 requests < min_requests 4");
    call(br, 6100, 4, false);
    cr_expect_eq(breaker_state(br, 6100), BREAKER_OPEN, "1, 2 and 4 failing again: 3 of 4");
    breaker_free(br);
}

/* Far more distinct requests than the breaker tracks: memory is fixed at
 * breaker_new() (no allocation here; ASan checks the bounds), the ratio of
 * the window stays right while entries are evicted, and after the window
 * has moved on it counts exactly again. */
Test(breaker, many_distinct_requests_keep_the_window_exact)
{
    struct config_breaker c = cfg(); /* window 10 s, min_requests 4, 50 % */
    struct breaker *br = breaker_new(&c);
    cr_assert_not_null(br);
    char id[32];
    /* 100,000 requests within one 10 s window: 1 in 10 of the first half
     * failing, 3 in 5 of the second: 35 % of the window, never open. The
     * evicted requests still count: judged by the last few thousand alone
     * (60 % failing) it would open. */
    for (int i = 0; i < 100000; i++) {
        int64_t now = 1000 + i / 10;
        bool ok = i < 50000 ? i % 10 != 9 : i % 5 < 2;
        snprintf(id, sizeof(id), "r-%d", i);
        call(br, now, breaker_request_hash(id), ok);
        cr_assert_eq(breaker_state(br, now), BREAKER_CLOSED, "opened at request %d", i);
    }
    /* The window forgot them all (the table still holds the failed marks of
     * the churn; new requests push them out). 19 requests, 8 failing, then one more
     * failing 5 times: 9 of 20. Anything left over from the churn, or the
     * retries counted as 5, would tip it over 50 %. */
    int64_t now = 30000;
    for (int i = 0; i < 19; i++) {
        snprintf(id, sizeof(id), "s-%d", i);
        call(br, now, breaker_request_hash(id), i < 11);
    }
    for (int i = 0; i < 5; i++)
        call(br, now + i, breaker_request_hash("s-retried"), false);
    cr_expect_eq(breaker_state(br, now + 5), BREAKER_CLOSED, "9 failing of 20");
    call(br, now + 10, breaker_request_hash("s-x"), false);
    cr_expect_eq(breaker_state(br, now + 10), BREAKER_CLOSED, "10 failing of 21");
    call(br, now + 20, breaker_request_hash("s-y"), false);
    cr_expect_eq(breaker_state(br, now + 20), BREAKER_OPEN, "11 failing of 22");
    breaker_free(br);
}

/* Callers and tests agree on the hash: 64-bit FNV-1a. */
Test(breaker, request_hash_is_fnv1a_64)
{
    cr_expect_eq(breaker_request_hash(""), UINT64_C(0xcbf29ce484222325));
    cr_expect_eq(breaker_request_hash(NULL), UINT64_C(0xcbf29ce484222325));
    cr_expect_eq(breaker_request_hash("a"), UINT64_C(0xaf63dc4c8601ec8c));
    cr_expect_eq(breaker_request_hash("foobar"), UINT64_C(0x85944171f73967e8));
}
