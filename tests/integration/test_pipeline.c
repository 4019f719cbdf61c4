/*
 * The retry pipeline end to end (issue 3): every demo scenario ends in the
 * state a user expects, with the audit trail (attempt log), the outcome event
 * and the dead letter to show for it; and duplicates change nothing.
 *
 * Each test starts its own pipeline (pipeline_fixture.h: fresh database and
 * topics, gateway-sim, intake-consumer, outbox-relay, retry-consumer) with
 * the fixture's short test policy: max_attempts 4, initial_delay 300ms,
 * doubling, max_delay 2s, no jitter, gateway timeout 2s.
 *
 * intake_batch: the intake records what one poll brings in one transaction,
 * with every message's outcome what it would be one by one.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "pipeline_fixture.h"
#include "base/i64.h"
#include "base/timeutil.h"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

/* ---- what the pipeline recorded ---- */

/* The attempt log of request_id in one line: "attempt EVENT [verdict
 * decision]" per row, in order, e.g. "1 STARTED, 1 ANSWERED SUCCEEDED
 * SUCCEEDED". Caller frees. */
static char *attempt_log(const char *request_id)
{
    const char *params[] = {request_id};
    char *v = itest_query_value(
        pipeline_itest(P),
        "SELECT coalesce(string_agg(attempt || ' ' || event || coalesce(' ' || verdict, '') || "
        "coalesce(' ' || decision, ''), ', ' ORDER BY attempt, id), '') "
        "FROM retry_attempt_log WHERE request_id = $1",
        1, params);
    cr_assert_not_null(v);
    return v;
}

static void expect_attempt_log(const char *request_id, const char *want)
{
    char *log = attempt_log(request_id);
    cr_expect_str_eq(log, want, "attempt log of %s:\n  got  %s\n  want %s (logs: %s)", request_id,
                     log, want, pipeline_log_dir(P));
    free(log);
}

/* An integer of cancel_request for request_id, e.g. "attempts". */
static long long request_int(const char *request_id, const char *sql)
{
    const char *params[] = {request_id};
    return itest_query_int(pipeline_itest(P), sql, 1, params);
}

static const char *wait_final(const char *request_id)
{
    return pipeline_require_final(P, request_id, PIPELINE_FINAL_TIMEOUT_MS);
}

/* The messages of topic_role whose key is key, once at least want of them
 * are there (reads the topic again until then). Returns the count; *out
 * holds all messages read (caller frees with pipeline_msgs_free), the
 * matching ones' indexes in idx (up to 16). */
static size_t keyed(const char *topic_role, const char *key, size_t want, struct pipeline_msg **out,
                    size_t *nout, size_t idx[16])
{
    for (int round = 0;; round++) {
        struct pipeline_msg *m = NULL;
        size_t n = pipeline_read_topic(P, topic_role, 0, 10000, &m);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (m[i].key != NULL && strcmp(m[i].key, key) == 0 && k < 16)
                idx[k++] = i;
        }
        if (k >= want || round >= PIPELINE_READ_TIMEOUT_MS / 500) {
            *out = m;
            *nout = n;
            return k;
        }
        pipeline_msgs_free(m, n);
        usleep(500 * 1000);
    }
}

/* The data of the one outcome event of request_id (new reference). */
static json_t *outcome_of(const char *request_id)
{
    struct pipeline_msg *m;
    size_t n, idx[16];
    size_t k = keyed("outcome", request_id, 1, &m, &n, idx);
    cr_assert_eq(k, 1, "%zu outcome events for %s, want 1 (logs: %s)", k, request_id,
                 pipeline_log_dir(P));
    json_error_t jerr;
    json_t *ev = json_loadb(m[idx[0]].value, m[idx[0]].len, 0, &jerr);
    cr_assert_not_null(ev, "outcome of %s is not JSON: %s", request_id, jerr.text);
    cr_expect_str_eq(json_string_value(json_object_get(ev, "type")), "payments.cancel.outcome.v1");
    cr_expect_str_eq(json_string_value(json_object_get(ev, "subject")), request_id);
    json_t *data = json_incref(json_object_get(ev, "data"));
    json_decref(ev);
    pipeline_msgs_free(m, n);
    cr_assert(json_is_object(data), "outcome of %s has no data object", request_id);
    return data;
}

static void expect_outcome(const char *request_id, const char *status, int attempts,
                           const char *last_error_code)
{
    json_t *d = outcome_of(request_id);
    cr_expect_str_eq(json_string_value(json_object_get(d, "requestId")), request_id);
    cr_expect_str_eq(json_string_value(json_object_get(d, "status")), status,
                     "outcome status of %s", request_id);
    cr_expect_eq(json_integer_value(json_object_get(d, "attempts")), attempts,
                 "outcome attempts of %s: %lld, want %d", request_id,
                 (long long)json_integer_value(json_object_get(d, "attempts")), attempts);
    json_t *le = json_object_get(d, "lastError");
    /* NULL: not checked (the contract makes lastError optional; a success
     * after failures may or may not carry the last failure). */
    if (last_error_code != NULL) {
        cr_expect_str_eq(json_string_value(json_object_get(le, "code")), last_error_code,
                         "outcome lastError.code of %s", request_id);
        cr_expect(json_is_string(json_object_get(le, "message")));
    }
    char when[64];
    snprintf(when, sizeof(when), "%s", json_string_value(json_object_get(d, "decidedAt")));
    int64_t ms;
    cr_expect(rfc3339_parse(when, &ms), "decidedAt \"%s\"", when);
    json_decref(d);
}

static const char *hdr(const struct pipeline_msg *m, const char *name)
{
    return json_string_value(json_object_get(m->headers, name));
}

/* The dead letters whose dlq.request.id (or key) is request_id: asserts
 * exactly one and checks the headers every dead letter carries. Returns its
 * copy (caller frees with pipeline_msgs_free(x, 1)). */
static struct pipeline_msg *dead_letter(const char *request_id, const char *reason,
                                        const char *consumer)
{
    struct pipeline_msg *m;
    size_t n, idx[16];
    size_t k = keyed("dlq", request_id, 1, &m, &n, idx);
    cr_assert_eq(k, 1, "%zu dead letters keyed %s, want 1 (logs: %s)", k, request_id,
                 pipeline_log_dir(P));
    struct pipeline_msg *x = calloc(1, sizeof(*x));
    *x = m[idx[0]];
    memset(&m[idx[0]], 0, sizeof(m[idx[0]]));
    pipeline_msgs_free(m, n);

    char failed_topic[256];
    snprintf(failed_topic, sizeof(failed_topic), "%spayments.cancel.failed",
             pipeline_itest(P)->prefix);
    cr_expect_str_eq(hdr(x, "dlq.reason"), reason, "dlq.reason of %s", request_id);
    cr_expect(hdr(x, "dlq.error") != NULL && hdr(x, "dlq.error")[0] != '\0',
              "dlq.error of %s is empty", request_id);
    cr_expect_str_eq(hdr(x, "dlq.original.topic"), failed_topic);
    cr_expect_not_null(hdr(x, "dlq.original.partition"));
    cr_expect_not_null(hdr(x, "dlq.original.offset"));
    cr_expect_str_eq(hdr(x, "dlq.consumer"), consumer);
    int64_t at;
    cr_expect(hdr(x, "dlq.at") != NULL && rfc3339_parse(hdr(x, "dlq.at"), &at), "dlq.at \"%s\"",
              hdr(x, "dlq.at"));
    return x;
}

/* The dead letter's value is the CancelFailed message it came from, byte
 * for byte, and its dlq.original.* say where that message is. */
static void expect_original_bytes(const struct pipeline_msg *dl, const char *key)
{
    struct pipeline_msg *m;
    size_t n, idx[16];
    size_t k = keyed("cancel_failed", key, 1, &m, &n, idx);
    cr_assert_geq(k, 1, "no CancelFailed keyed %s", key);
    bool found = false;
    for (size_t i = 0; i < k; i++) {
        const struct pipeline_msg *o = &m[idx[i]];
        char part[16], off[32];
        snprintf(part, sizeof(part), "%d", (int)o->partition);
        I64(off, o->offset);
        if (strcmp(part, hdr(dl, "dlq.original.partition")) != 0 ||
            strcmp(off, hdr(dl, "dlq.original.offset")) != 0)
            continue;
        found = true;
        cr_expect_eq(dl->len, o->len, "dead letter is %zu bytes, the original %zu", dl->len,
                     o->len);
        cr_expect(dl->len == o->len && memcmp(dl->value, o->value, o->len) == 0,
                  "dead letter value differs from the original:\n%s\n%s", dl->value, o->value);
    }
    cr_expect(found, "no CancelFailed at dlq.original.partition %s offset %s",
              hdr(dl, "dlq.original.partition"), hdr(dl, "dlq.original.offset"));
    pipeline_msgs_free(m, n);
}

static long long dlq_count(void)
{
    struct pipeline_msg *m;
    size_t n = pipeline_read_topic(P, "dlq", 0, 10000, &m);
    pipeline_msgs_free(m, n);
    return (long long)n;
}

/* A CancelFailed CloudEvent as an upstream service would write it. */
static char *cancel_failed_json(const char *request_id, const char *gateway,
                                const char *payment_key, json_int_t amount)
{
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:I, s:s, s:s}}",
                           "specversion", "1.0", "id", request_id, "source", "/it/pipeline", "type",
                           "payments.cancel.failed.v1", "time", "2026-11-20T09:15:02.123Z",
                           "subject", request_id, "datacontenttype", "application/json", "data",
                           "requestId", request_id, "gateway", gateway, "paymentKey", payment_key,
                           "amount", amount, "currency", "KRW", "reason", "customer cancelled");
    cr_assert_not_null(ev);
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return s;
}

/* ---- scenarios ---- */

Test(pipeline, success_at_once, .fini = stop, .timeout = 180)
{
    P = pipeline_start("success_at_once", NULL);
    pipeline_payment(P, "toss", "pk_ok", 15000, "KRW", 0);
    pipeline_publish(P, "r-ok", "toss", "pk_ok", 15000, "KRW", false);

    cr_assert_str_eq(wait_final("r-ok"), "SUCCEEDED");
    expect_attempt_log("r-ok", "1 STARTED, 1 ANSWERED SUCCEEDED SUCCEEDED");
    cr_expect_eq(request_int("r-ok", "SELECT attempts FROM cancel_request WHERE request_id = $1"),
                 1);
    cr_expect_eq(pipeline_refunds(P, "pk_ok"), 1);
    cr_expect_eq(pipeline_refunded_amount(P, "pk_ok"), 15000);
    expect_outcome("r-ok", "SUCCEEDED", 1, NULL);
    cr_expect_eq(dlq_count(), 0);
}

Test(pipeline, success_after_transient_failures, .fini = stop, .timeout = 180)
{
    P = pipeline_start("success_after_transient", NULL);
    pipeline_payment(P, "toss", "pk_5xx", 20000, "KRW", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_5xx\",\"type\":\"error_5xx\",\"times\":2}");
    pipeline_publish(P, "r-5xx", "toss", "pk_5xx", 20000, "KRW", false);

    cr_assert_str_eq(wait_final("r-5xx"), "SUCCEEDED");
    expect_attempt_log("r-5xx", "1 STARTED, 1 ANSWERED RETRYABLE RETRY, "
                                "2 STARTED, 2 ANSWERED RETRYABLE RETRY, "
                                "3 STARTED, 3 ANSWERED SUCCEEDED SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_5xx"), 1);
    expect_outcome("r-5xx", "SUCCEEDED", 3, NULL);
    cr_expect_eq(dlq_count(), 0);
}

/* The case the system exists for: the gateway made the refund but the
 * answer never came. The retry with the same Idempotency-Key gets the
 * replayed success, and the customer is refunded once. */
Test(pipeline, applied_then_timed_out_refunds_once, .fini = stop, .timeout = 180)
{
    /* Attempt 2 starts 2 s after attempt 1 timed out (2 s), so after the
     * simulator's 3 s hang ended and the key's answer is stored. */
    P = pipeline_start("applied_then_timed_out", "retry: { initial_delay: 2s, max_delay: 4s }\n");
    pipeline_payment(P, "toss", "pk_hang", 30000, "KRW", 0);
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"pk_hang\",\"type\":\"apply_then_hang\",\"delayMs\":3000}");
    pipeline_publish(P, "r-hang", "toss", "pk_hang", 30000, "KRW", false);

    cr_assert_str_eq(wait_final("r-hang"), "SUCCEEDED");
    expect_attempt_log("r-hang", "1 STARTED, 1 ANSWERED RETRYABLE RETRY, "
                                 "2 STARTED, 2 ANSWERED SUCCEEDED SUCCEEDED");
    /* Toss marks no replay in its answer (it documents no such header), so
     * the gateway's side says it: two calls under the request's key, the
     * first applied and lost, the second given the stored success. */
    char *body = pipeline_sim_get(P, "/_sim/calls?paymentKey=pk_hang");
    json_t *j = json_loads(body, 0, NULL);
    json_t *calls = json_object_get(j, "calls");
    cr_assert_eq(json_array_size(calls), 2, "gateway calls for pk_hang: %s", body);
    json_t *c1 = json_array_get(calls, 0), *c2 = json_array_get(calls, 1);
    cr_expect_str_eq(json_string_value(json_object_get(c1, "fault")), "apply_then_hang");
    cr_expect(json_is_false(json_object_get(c1, "replayed")), "first call: %s", body);
    cr_expect(json_is_true(json_object_get(c2, "replayed")), "second call not replayed: %s", body);
    cr_expect_eq(json_integer_value(json_object_get(c2, "status")), 200);
    cr_expect_str_eq(json_string_value(json_object_get(c1, "idempotencyKey")), "r-hang");
    cr_expect_str_eq(json_string_value(json_object_get(c2, "idempotencyKey")), "r-hang");
    json_decref(j);
    free(body);
    cr_expect_eq(pipeline_refunds(P, "pk_hang"), 1, "the ledger must show exactly one refund");
    cr_expect_eq(pipeline_refunded_amount(P, "pk_hang"), 30000);
    expect_outcome("r-hang", "SUCCEEDED", 2, NULL);
}

Test(pipeline, already_refunded, .fini = stop, .timeout = 180)
{
    P = pipeline_start("already_refunded", NULL);
    pipeline_payment(P, "toss", "pk_done", 12000, "KRW", 12000);
    pipeline_publish(P, "r-done", "toss", "pk_done", 12000, "KRW", false);

    cr_assert_str_eq(wait_final("r-done"), "ALREADY_REFUNDED");
    expect_attempt_log("r-done", "1 STARTED, 1 ANSWERED ALREADY_REFUNDED ALREADY_REFUNDED");
    cr_expect_eq(pipeline_refunds(P, "pk_done"), 0, "no refund may be made");
    cr_expect_eq(pipeline_refunded_amount(P, "pk_done"), 12000);
    json_t *d = outcome_of("r-done");
    cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "ALREADY_REFUNDED");
    cr_expect_eq(json_integer_value(json_object_get(d, "attempts")), 1);
    json_decref(d);
    cr_expect_eq(dlq_count(), 0);
}

/* A business error: the request fails at once and is dead-lettered with
 * its original CancelFailed. */
Test(pipeline, permanent_failure, .fini = stop, .timeout = 180)
{
    P = pipeline_start("permanent_failure", NULL);
    pipeline_payment(P, "toss", "pk_small", 10000, "KRW", 0);
    pipeline_publish(P, "r-big", "toss", "pk_small", 20000, "KRW", true);

    cr_assert_str_eq(wait_final("r-big"), "FAILED");
    expect_attempt_log("r-big", "1 STARTED, 1 ANSWERED PERMANENT FAILED");
    cr_expect_eq(pipeline_refunds(P, "pk_small"), 0);
    expect_outcome("r-big", "FAILED", 1, "NOT_CANCELABLE_AMOUNT");
    struct pipeline_msg *dl = dead_letter("r-big", "FAILED", "retry-consumer");
    cr_expect_str_eq(hdr(dl, "dlq.request.id"), "r-big");
    cr_expect_str_eq(hdr(dl, "dlq.attempts"), "1");
    expect_original_bytes(dl, "r-big");
    pipeline_msgs_free(dl, 1);
}

Test(pipeline, exhaustion, .fini = stop, .timeout = 180)
{
    P = pipeline_start("exhaustion", NULL);
    pipeline_payment(P, "toss", "pk_down", 9000, "KRW", 0);
    pipeline_sim_fault(P, "{\"paymentKey\":\"pk_down\",\"type\":\"error_5xx\",\"times\":0}");
    pipeline_publish(P, "r-down", "toss", "pk_down", 9000, "KRW", false);

    cr_assert_str_eq(wait_final("r-down"), "EXHAUSTED");
    expect_attempt_log("r-down", "1 STARTED, 1 ANSWERED RETRYABLE RETRY, "
                                 "2 STARTED, 2 ANSWERED RETRYABLE RETRY, "
                                 "3 STARTED, 3 ANSWERED RETRYABLE RETRY, "
                                 "4 STARTED, 4 ANSWERED RETRYABLE EXHAUSTED");
    cr_expect_eq(pipeline_refunds(P, "pk_down"), 0);
    expect_outcome("r-down", "EXHAUSTED", 4, "SERVICE_UNAVAILABLE");
    struct pipeline_msg *dl = dead_letter("r-down", "EXHAUSTED", "retry-consumer");
    cr_expect_str_eq(hdr(dl, "dlq.request.id"), "r-down");
    cr_expect_str_eq(hdr(dl, "dlq.attempts"), "4");
    expect_original_bytes(dl, "r-down");
    pipeline_msgs_free(dl, 1);
}

/* A wrong secret key is the operator's problem, not the request's: it
 * fails without retries and is dead-lettered as a configuration fault. */
Test(pipeline, bad_credentials, .fini = stop, .timeout = 180)
{
    P = pipeline_start("bad_credentials", "gateways: { toss: { secret_key: test_sk_wrong } }\n");
    pipeline_payment(P, "toss", "pk_auth", 5000, "KRW", 0);
    pipeline_publish(P, "r-auth", "toss", "pk_auth", 5000, "KRW", false);

    cr_assert_str_eq(wait_final("r-auth"), "FAILED");
    expect_attempt_log("r-auth", "1 STARTED, 1 ANSWERED CONFIG_FAULT FAILED");
    cr_expect_eq(pipeline_refunds(P, "pk_auth"), 0);
    expect_outcome("r-auth", "FAILED", 1, "UNAUTHORIZED_KEY");
    struct pipeline_msg *dl = dead_letter("r-auth", "CONFIG_FAULT", "retry-consumer");
    cr_expect_str_eq(hdr(dl, "dlq.attempts"), "1");
    const char *err = hdr(dl, "dlq.error");
    cr_expect(err == NULL || strstr(err, "test_sk_wrong") == NULL, "dlq.error shows the secret: %s",
              err);
    expect_original_bytes(dl, "r-auth");
    pipeline_msgs_free(dl, 1);
}

Test(pipeline, duplicate_cancel_failed_changes_nothing, .fini = stop, .timeout = 180)
{
    P = pipeline_start("duplicate", NULL);
    pipeline_payment(P, "toss", "pk_dup", 8000, "KRW", 0);
    pipeline_publish(P, "r-dup", "toss", "pk_dup", 8000, "KRW", false);
    cr_assert_str_eq(wait_final("r-dup"), "SUCCEEDED");

    /* The same request again, after it succeeded (cancelctl makes a new
     * event id: only the requestId and the fields are the same). */
    pipeline_publish(P, "r-dup", "toss", "pk_dup", 8000, "KRW", false);
    cr_assert(pipeline_wait_consumed(P, "cancel_failed", "intake", 30000),
              "the intake did not consume the duplicate (logs: %s)", pipeline_log_dir(P));
    cr_assert(pipeline_wait_consumed(P, "retry", "retry", 30000));

    expect_attempt_log("r-dup", "1 STARTED, 1 ANSWERED SUCCEEDED SUCCEEDED");
    cr_expect_str_eq(pipeline_wait_final(P, "r-dup", 0), "SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_dup"), 1);
    cr_expect_eq(dlq_count(), 0, "a duplicate is not a dead letter");
    struct pipeline_msg *m;
    size_t n, idx[16];
    cr_expect_eq(keyed("outcome", "r-dup", 1, &m, &n, idx), 1, "one outcome event");
    pipeline_msgs_free(m, n);
}

Test(pipeline, idempotency_conflict_is_dead_lettered, .fini = stop, .timeout = 180)
{
    P = pipeline_start("idempotency_conflict", NULL);
    pipeline_payment(P, "toss", "pk_conf", 10000, "KRW", 0);
    pipeline_publish(P, "r-conf", "toss", "pk_conf", 10000, "KRW", false);
    /* Same requestId, different amount: which refund was meant? Neither
     * guess is safe for the second one. */
    pipeline_publish(P, "r-conf", "toss", "pk_conf", 4000, "KRW", true);

    cr_assert_str_eq(wait_final("r-conf"), "SUCCEEDED");
    struct pipeline_msg *dl = dead_letter("r-conf", "IDEMPOTENCY_CONFLICT", "intake-consumer");
    cr_expect_str_eq(hdr(dl, "dlq.request.id"), "r-conf");
    json_t *ev = json_loadb(dl->value, dl->len, 0, NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(ev, "data"), "amount")), 4000,
                 "the dead letter is the conflicting event");
    json_decref(ev);
    expect_original_bytes(dl, "r-conf");
    pipeline_msgs_free(dl, 1);

    expect_attempt_log("r-conf", "1 STARTED, 1 ANSWERED SUCCEEDED SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_conf"), 1, "the conflicting request is never refunded");
    cr_expect_eq(pipeline_refunded_amount(P, "pk_conf"), 10000);
    cr_expect_eq(request_int("r-conf", "SELECT amount FROM cancel_request WHERE request_id = $1"),
                 10000);
}

/* Poison on a partition: dead-lettered with its bytes, and the partition
 * moves on (the valid event behind it, same key so same partition,
 * succeeds). */
Test(pipeline, poison_is_dead_lettered_and_partition_moves_on, .fini = stop, .timeout = 180)
{
    P = pipeline_start("poison", NULL);
    pipeline_payment(P, "toss", "pk_after", 7000, "KRW", 0);
    const char *garbage = "this is {not json";
    pipeline_publish_raw(P, "cancel_failed", "r-after", garbage);
    char *bad = cancel_failed_json("r-after", "toss", "pk_after", -5);
    pipeline_publish_raw(P, "cancel_failed", "r-after", bad);
    pipeline_publish(P, "r-after", "toss", "pk_after", 7000, "KRW", false);

    cr_assert_str_eq(wait_final("r-after"), "SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_after"), 1);

    struct pipeline_msg *m;
    size_t n, idx[16];
    size_t k = keyed("dlq", "r-after", 2, &m, &n, idx);
    cr_assert_eq(k, 2, "%zu dead letters, want 2 (logs: %s)", k, pipeline_log_dir(P));
    const struct pipeline_msg *parse = &m[idx[0]], *schema = &m[idx[1]];
    cr_expect_str_eq(hdr(parse, "dlq.reason"), "PARSE_ERROR");
    cr_expect_eq(parse->len, strlen(garbage));
    cr_expect(parse->len == strlen(garbage) && memcmp(parse->value, garbage, parse->len) == 0,
              "PARSE_ERROR value is not the original bytes: %s", parse->value);
    cr_expect_str_eq(hdr(parse, "dlq.consumer"), "intake-consumer");
    cr_expect_not_null(hdr(parse, "dlq.error"));
    cr_expect_not_null(hdr(parse, "dlq.at"));
    cr_expect_not_null(hdr(parse, "dlq.original.offset"));
    cr_expect_str_eq(hdr(schema, "dlq.reason"), "SCHEMA_VIOLATION");
    cr_expect(schema->len == strlen(bad) && memcmp(schema->value, bad, schema->len) == 0,
              "SCHEMA_VIOLATION value is not the original bytes: %s", schema->value);
    cr_expect_str_eq(hdr(schema, "dlq.request.id"), "r-after");
    cr_expect_str_eq(hdr(schema, "dlq.consumer"), "intake-consumer");
    cr_expect(hdr(schema, "dlq.error") != NULL && strstr(hdr(schema, "dlq.error"), "amount"),
              "dlq.error should name the field: %s", hdr(schema, "dlq.error"));
    /* Both were read from the partition the valid event followed them on. */
    cr_expect_str_eq(hdr(parse, "dlq.original.partition"), hdr(schema, "dlq.original.partition"));
    pipeline_msgs_free(m, n);
    free(bad);
}

Test(pipeline, unknown_gateway, .fini = stop, .timeout = 180)
{
    P = pipeline_start("unknown_gateway", NULL);
    char *ev = cancel_failed_json("r-paypal", "paypal", "pp_1", 1000);
    pipeline_publish_raw(P, "cancel_failed", "r-paypal", ev);

    struct pipeline_msg *dl = dead_letter("r-paypal", "UNKNOWN_GATEWAY", "intake-consumer");
    cr_expect_str_eq(hdr(dl, "dlq.request.id"), "r-paypal");
    cr_expect(dl->len == strlen(ev) && memcmp(dl->value, ev, dl->len) == 0);
    pipeline_msgs_free(dl, 1);
    free(ev);
    cr_expect_eq(itest_query_int(pipeline_itest(P), "SELECT count(*) FROM cancel_request", 0, NULL),
                 0, "an unknown gateway's request is not recorded");
}

Test(pipeline, stripe_partial_refund, .fini = stop, .timeout = 180)
{
    P = pipeline_start("stripe_partial", NULL);
    pipeline_payment(P, "stripe", "pi_part", 5000, "USD", 0);
    pipeline_publish(P, "r-part", "stripe", "pi_part", 2000, "USD", true);

    cr_assert_str_eq(wait_final("r-part"), "SUCCEEDED");
    expect_attempt_log("r-part", "1 STARTED, 1 ANSWERED SUCCEEDED SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pi_part"), 1);
    cr_expect_eq(pipeline_refunded_amount(P, "pi_part"), 2000, "only the partial amount");
    json_t *d = outcome_of("r-part");
    cr_expect_str_eq(json_string_value(json_object_get(d, "status")), "SUCCEEDED");
    cr_expect_str_eq(json_string_value(json_object_get(d, "gateway")), "stripe");
    cr_expect_eq(json_integer_value(json_object_get(d, "amount")), 2000);
    json_decref(d);
}

/* ---- exactly once ---- */

/* A RetryScheduled delivered again (the relay may publish twice after a
 * crash) finds the request final and does nothing. */
Test(exactly_once, replayed_retry_event_changes_nothing, .fini = stop, .timeout = 180)
{
    P = pipeline_start("replayed_retry_event", NULL);
    pipeline_payment(P, "toss", "pk_rr", 6000, "KRW", 0);
    pipeline_publish(P, "r-rr", "toss", "pk_rr", 6000, "KRW", false);
    cr_assert_str_eq(wait_final("r-rr"), "SUCCEEDED");

    struct pipeline_msg *m;
    size_t n, idx[16];
    cr_assert_eq(keyed("retry", "r-rr", 1, &m, &n, idx), 1);
    for (int i = 0; i < 3; i++)
        pipeline_publish_raw_len(P, "retry", "r-rr", m[idx[0]].value, m[idx[0]].len,
                                 m[idx[0]].headers);
    pipeline_msgs_free(m, n);
    cr_assert(pipeline_wait_consumed(P, "retry", "retry", 30000),
              "the retry consumer did not consume the replays (logs: %s)", pipeline_log_dir(P));

    expect_attempt_log("r-rr", "1 STARTED, 1 ANSWERED SUCCEEDED SUCCEEDED");
    cr_expect_eq(request_int("r-rr", "SELECT attempts FROM cancel_request WHERE request_id = $1"),
                 1);
    cr_expect_eq(pipeline_refunds(P, "pk_rr"), 1, "no second refund");
    cr_expect_eq(dlq_count(), 0);
}

Test(exactly_once, same_cancel_failed_five_times, .fini = stop, .timeout = 180)
{
    P = pipeline_start("same_cancel_failed_5x", NULL);
    pipeline_payment(P, "toss", "pk_5x", 11000, "KRW", 0);
    pipeline_publish(P, "r-5x", "toss", "pk_5x", 11000, "KRW", false);
    /* The very same bytes (same event id) four more times, right away. */
    struct pipeline_msg *m;
    size_t n, idx[16];
    cr_assert_eq(keyed("cancel_failed", "r-5x", 1, &m, &n, idx), 1);
    for (int i = 0; i < 4; i++)
        pipeline_publish_raw_len(P, "cancel_failed", "r-5x", m[idx[0]].value, m[idx[0]].len,
                                 m[idx[0]].headers);
    pipeline_msgs_free(m, n);

    cr_assert_str_eq(wait_final("r-5x"), "SUCCEEDED");
    cr_assert(pipeline_wait_consumed(P, "cancel_failed", "intake", 30000));
    cr_assert(pipeline_wait_consumed(P, "retry", "retry", 30000));
    cr_expect_eq(itest_query_int(pipeline_itest(P), "SELECT count(*) FROM cancel_request", 0, NULL),
                 1, "one request");
    expect_attempt_log("r-5x", "1 STARTED, 1 ANSWERED SUCCEEDED SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_5x"), 1, "one refund");
    cr_expect_eq(dlq_count(), 0);
}

/* ---- batches: the intake records a whole poll in one transaction ---- */

/* One partition, so that what is published while the intake is stopped is
 * one poll when it starts; and an initial_delay of an hour, which only
 * attempt 2 waits: attempt 1 is due as soon as the request is recorded. */
#define BATCH_CONFIG                                                                               \
    "topics:\n  cancel_failed: { partitions: 1 }\n"                                                \
    "retry: { initial_delay: 1h, max_delay: 1h }\n"

/* All of ids[0..n) were recorded by one transaction: cancel_request's
 * created_at is the transaction's start, the same for every row it wrote. */
static void expect_one_transaction(const char *const *ids, int n)
{
    char list[512] = "{";
    for (int i = 0; i < n; i++) {
        size_t o = strlen(list);
        snprintf(list + o, sizeof(list) - o, "%s%s", ids[i], i + 1 < n ? "," : "}");
    }
    const char *params[] = {list};
    cr_expect_eq(itest_query_int(pipeline_itest(P),
                                 "SELECT count(DISTINCT created_at) FROM cancel_request"
                                 " WHERE request_id = ANY($1::text[])",
                                 1, params),
                 1, "%s were not recorded in one transaction (logs: %s)", list,
                 pipeline_log_dir(P));
}

/* Two messages the database refuses, one at the request's insert and one at
 * its RetryScheduled's, and one the contract refuses, among ten valid ones,
 * all in one poll: exactly those three are dead-lettered, each with its
 * reason; the ten are recorded in the same transaction and refunded once,
 * attempt 1 at once although initial_delay is an hour. */
Test(intake_batch, poison_in_the_middle_is_dead_lettered_alone, .fini = stop, .timeout = 240)
{
    P = pipeline_start("batch_poison", BATCH_CONFIG);
    /* Values our checks let through but this database refuses. */
    static const char *const refuse[] = {
        "ALTER TABLE cancel_request ADD CONSTRAINT it_poison CHECK (payment_key <> 'pk_poison')",
        "CREATE FUNCTION it_refuse_retry() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.request_id = 'b-outbox'"
        "    AND NEW.event_type = 'payments.cancel.retry.scheduled.v1' THEN"
        "  RAISE EXCEPTION 'value out of range' USING ERRCODE = '22003'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER it_refuse_retry BEFORE INSERT ON outbox"
        " FOR EACH ROW EXECUTE FUNCTION it_refuse_retry()",
    };
    for (size_t i = 0; i < sizeof(refuse) / sizeof(refuse[0]); i++) {
        char err[512];
        cr_assert(itest_exec(pipeline_itest(P), refuse[i], 0, NULL, err, sizeof(err)), "%s", err);
    }
    pipeline_payment(P, "toss", "pk_poison", 1000, "KRW", 0);
    pipeline_payment(P, "toss", "pk_outbox", 1000, "KRW", 0);

    pipeline_kill(P, PIPELINE_INTAKE, 0, SIGTERM);
    char rids[10][16];
    const char *ids[10];
    for (int i = 0; i < 10; i++) {
        char pk[16];
        snprintf(rids[i], sizeof(rids[i]), "b-%d", i);
        snprintf(pk, sizeof(pk), "pk_b_%d", i);
        ids[i] = rids[i];
        pipeline_payment(P, "toss", pk, 1000 + i, "KRW", 0);
        pipeline_publish(P, rids[i], "toss", pk, 1000 + i, "KRW", false);
        if (i == 2)
            pipeline_publish(P, "b-refused", "toss", "pk_poison", 1000, "KRW", false);
        if (i == 4) {
            char *bad = cancel_failed_json("b-invalid", "toss", "pk_invalid", -5);
            pipeline_publish_raw(P, "cancel_failed", "b-invalid", bad);
            free(bad);
        }
        if (i == 6)
            pipeline_publish(P, "b-outbox", "toss", "pk_outbox", 1000, "KRW", false);
    }
    pipeline_start_process(P, PIPELINE_INTAKE, 0);

    for (int i = 0; i < 10; i++) {
        char pk[16];
        snprintf(pk, sizeof(pk), "pk_b_%d", i);
        cr_expect_str_eq(wait_final(rids[i]), "SUCCEEDED", "%s", rids[i]);
        cr_expect_eq(pipeline_refunds(P, pk), 1, "refunds of %s", pk);
    }
    expect_one_transaction(ids, 10);
    cr_expect_eq(itest_query_int(pipeline_itest(P), "SELECT count(*) FROM cancel_request", 0, NULL),
                 10, "only the valid messages became requests");

    static const struct {
        const char *rid, *error;
    } poison[] = {
        {"b-refused", "SQLSTATE 23514"},
        {"b-invalid", "amount"},
        {"b-outbox", "SQLSTATE 22003"},
    };
    for (size_t i = 0; i < sizeof(poison) / sizeof(poison[0]); i++) {
        struct pipeline_msg *dl = dead_letter(poison[i].rid, "SCHEMA_VIOLATION", "intake-consumer");
        const char *err = hdr(dl, "dlq.error");
        cr_expect(err != NULL && strstr(err, poison[i].error) != NULL,
                  "dlq.error of %s does not mention %s: %s", poison[i].rid, poison[i].error, err);
        expect_original_bytes(dl, poison[i].rid);
        pipeline_msgs_free(dl, 1);
    }
    cr_expect_eq(dlq_count(), 3, "only the three poison messages are dead-lettered");
    cr_expect_eq(pipeline_refunds(P, "pk_poison") + pipeline_refunds(P, "pk_outbox"), 0);
}

/* The same requestId several times in one poll, as if the messages were
 * processed one by one: the first one makes the request, later ones with the
 * same money change nothing, later ones with other money are idempotency
 * conflicts, compared with the request as it stands (which existed before
 * the batch for d-3). */
Test(intake_batch, duplicates_in_one_batch_as_if_one_by_one, .fini = stop, .timeout = 240)
{
    P = pipeline_start("batch_duplicates", BATCH_CONFIG);
    pipeline_payment(P, "toss", "pk_d1", 5000, "KRW", 0);
    pipeline_payment(P, "toss", "pk_d2", 3000, "KRW", 0);
    pipeline_payment(P, "toss", "pk_d3", 7000, "KRW", 0);
    pipeline_publish(P, "d-3", "toss", "pk_d3", 7000, "KRW", false);
    cr_assert(pipeline_wait_consumed(P, "cancel_failed", "intake", 30000),
              "the intake did not record d-3 (logs: %s)", pipeline_log_dir(P));

    pipeline_kill(P, PIPELINE_INTAKE, 0, SIGTERM);
    pipeline_publish(P, "d-1", "toss", "pk_d1", 5000, "KRW", false);
    pipeline_publish(P, "d-1", "toss", "pk_d1", 5000, "KRW", false);
    pipeline_publish(P, "d-3", "toss", "pk_d3", 6000, "KRW", false);
    pipeline_publish(P, "d-1", "toss", "pk_d1", 4000, "KRW", true);
    pipeline_publish(P, "d-2", "toss", "pk_d2", 3000, "KRW", false);
    pipeline_publish(P, "d-3", "toss", "pk_d3", 7000, "KRW", false);
    pipeline_publish(P, "d-1", "toss", "pk_d1", 5000, "KRW", false);
    pipeline_start_process(P, PIPELINE_INTAKE, 0);

    static const char *const ids[] = {"d-1", "d-2", "d-3"};
    static const long long amounts[] = {5000, 3000, 7000};
    for (int i = 0; i < 3; i++) {
        char pk[16];
        snprintf(pk, sizeof(pk), "pk_d%d", i + 1);
        cr_expect_str_eq(wait_final(ids[i]), "SUCCEEDED", "%s", ids[i]);
        cr_expect_eq(pipeline_refunds(P, pk), 1, "refunds of %s", pk);
        cr_expect_eq(pipeline_refunded_amount(P, pk), amounts[i], "refunded from %s", pk);
        cr_expect_eq(request_int(ids[i], "SELECT amount FROM cancel_request WHERE request_id = $1"),
                     amounts[i], "amount of %s", ids[i]);
        cr_expect_eq(request_int(ids[i], "SELECT count(*) FROM outbox WHERE request_id = $1"
                                         " AND event_type = 'payments.cancel.retry.scheduled.v1'"),
                     1, "RetryScheduled events of %s", ids[i]);
    }
    expect_one_transaction(ids, 2);
    cr_assert(pipeline_wait_consumed(P, "cancel_failed", "intake", 30000));

    static const json_int_t conflicting[] = {4000, 6000};
    for (int i = 0; i < 2; i++) {
        const char *rid = i == 0 ? "d-1" : "d-3";
        struct pipeline_msg *dl = dead_letter(rid, "IDEMPOTENCY_CONFLICT", "intake-consumer");
        cr_expect_str_eq(hdr(dl, "dlq.request.id"), rid);
        cr_expect(strstr(hdr(dl, "dlq.error"), "amount") != NULL, "%s", hdr(dl, "dlq.error"));
        json_t *ev = json_loadb(dl->value, dl->len, 0, NULL);
        cr_expect_eq(json_integer_value(json_object_get(json_object_get(ev, "data"), "amount")),
                     conflicting[i], "the dead letter of %s is the conflicting event", rid);
        json_decref(ev);
        expect_original_bytes(dl, rid);
        pipeline_msgs_free(dl, 1);
    }
    cr_expect_eq(dlq_count(), 2, "the same-money duplicates are not dead letters");
}
