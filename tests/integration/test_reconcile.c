/*
 * Reconciliation against the gateway (issue "Gateway truth", item 9), on the
 * real stack: requests run through the whole pipeline (pipeline_fixture.h),
 * then the simulator's ledger is changed behind cancel-retry's back (a
 * refund forgotten, a refund planted, a refund of another amount), and
 * `cancelctl reconcile` or the outbox-relay's scheduled pass must find each
 * mismatch, record and alert it once, never send a refund, and, with --fix,
 * correct our record once.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pipeline_fixture.h"

#include "base/clock.h"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

static long long jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

/* The entry of requestId rid in the array arr, or NULL. */
static json_t *entry(const json_t *arr, const char *rid)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (strcmp(jstr(e, "requestId"), rid) == 0)
            return e;
    }
    return NULL;
}

/* ---- the database ---- */

static long long q_int(const char *sql, const char *param)
{
    const char *params[] = {param};
    return itest_query_int(pipeline_itest(P), sql, param ? 1 : 0, params);
}

static char *q_str(const char *sql, const char *param)
{
    return pipeline_query(P, sql, param);
}

static void expect_q(const char *sql, const char *param, const char *want)
{
    char *got = q_str(sql, param);
    cr_expect_str_eq(got, want, "%s [%s] (logs: %s)", sql, param ? param : "", pipeline_log_dir(P));
    free(got);
}

static void wait_status(const char *rid, const char *want)
{
    const char *st = pipeline_wait_final(P, rid, PIPELINE_FINAL_TIMEOUT_MS);
    cr_assert_not_null(st, "%s did not end within %d s (logs: %s)", rid,
                       PIPELINE_FINAL_TIMEOUT_MS / 1000, pipeline_log_dir(P));
    cr_assert_str_eq(st, want, "%s ended %s (logs: %s)", rid, st, pipeline_log_dir(P));
}

static void wait_outbox_drained(void)
{
    cr_assert(pipeline_wait_query(P, "SELECT count(*)::text FROM outbox WHERE published_at IS NULL",
                                  0, NULL, "0", 30000),
              "the relay did not publish the outbox (logs: %s)", pipeline_log_dir(P));
}

/* Dead letters of reason RECONCILE_MISMATCH written to the outbox (for rid,
 * or for every request with NULL). */
#define MISMATCH_LETTERS                                                                           \
    "SELECT count(*) FROM outbox WHERE event_type = 'dead-letter'"                                 \
    " AND headers @> '[[\"dlq.reason\", \"RECONCILE_MISMATCH\"]]'"

static long long mismatch_letters(const char *rid)
{
    if (rid == NULL)
        return q_int(MISMATCH_LETTERS, NULL);
    return q_int(MISMATCH_LETTERS " AND request_id = $1", rid);
}

static long long outcomes(const char *rid)
{
    return q_int("SELECT count(*) FROM outbox WHERE request_id = $1"
                 " AND event_type = 'payments.cancel.outcome.v1'",
                 rid);
}

/* ---- the simulator ---- */

/* The id of the only refund of payment_key in the ledger. */
static char *refund_id(const char *payment_key)
{
    json_t *p = pipeline_ledger(P, payment_key);
    cr_assert_not_null(p, "no payment %s in the ledger", payment_key);
    json_t *refunds = json_object_get(p, "refunds");
    cr_assert_eq(json_array_size(refunds), 1, "refunds of %s", payment_key);
    char *id = strdup(jstr(json_array_get(refunds, 0), "id"));
    json_decref(p);
    return id;
}

/* The gateway forgets the refund of payment_key: "we think it was refunded,
 * the gateway says no". */
static void forget_refund(const char *payment_key)
{
    char *id = refund_id(payment_key);
    char path[256];
    snprintf(path, sizeof(path), "/_sim/refunds/%s", id);
    cr_assert_eq(pipeline_sim_call(P, "DELETE", path, NULL, NULL), 204);
    free(id);
}

/* A refund made outside cancel-retry (the gateway's console). */
static void plant_refund(const char *payment_key, const char *json)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/payments/%s/refunds", payment_key);
    pipeline_sim_post(P, path, json);
}

/* Refund calls (POST) the gateway received so far, of every payment. */
static size_t refund_calls(void)
{
    char *body = pipeline_sim_get(P, "/_sim/calls");
    json_t *doc = json_loads(body, 0, NULL);
    json_t *calls = json_object_get(doc, "calls");
    cr_assert(json_is_array(calls), "/_sim/calls: %s", body);
    free(body);
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(calls, i, c) n += strcmp(jstr(c, "method"), "POST") == 0;
    json_decref(doc);
    return n;
}

/* Inquiries the simulator made hang (counted as soon as they start to). */
static size_t hung_inquiries(void)
{
    char *body = pipeline_sim_get(P, "/_sim/calls");
    json_t *doc = json_loads(body, 0, NULL);
    free(body);
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "calls"), i, c) n +=
        strcmp(jstr(c, "method"), "GET") == 0 && strcmp(jstr(c, "fault"), "hang") == 0;
    json_decref(doc);
    return n;
}

/* ---- the operator's pass ---- */

/* Each kind of mismatch, a request that agrees, one still settling and one
 * that cannot be checked; recorded and alerted once, corrected once, never a
 * refund sent by reconciliation. */
Test(reconcile, cli_records_alerts_once_and_fixes_once, .fini = stop, .timeout = 280)
{
    /* The relay's own passes stay out of the way: this test is the
     * operator's. */
    P = pipeline_start("reconcile-cli", "reconcile: { enabled: false }\n");
    pipeline_payment(P, "stripe", "pi_gone", 5000, "USD", 0);
    pipeline_payment(P, "stripe", "pi_ex", 4000, "USD", 0);
    pipeline_payment(P, "toss", "tp_ex", 15000, "KRW", 0);
    pipeline_payment(P, "stripe", "pi_amt", 3000, "USD", 0);
    pipeline_payment(P, "toss", "tp_fine", 8000, "KRW", 0);
    pipeline_payment(P, "stripe", "pi_settle", 2500, "USD", 0);
    pipeline_payment(P, "stripe", "pi_unk", 1000, "USD", 0);
    /* The gateway is down for two of them until they are EXHAUSTED. */
    pipeline_sim_fault(P, "{\"paymentKey\":\"pi_ex\",\"type\":\"error_5xx\",\"times\":0}");
    pipeline_sim_fault(P, "{\"paymentKey\":\"tp_ex\",\"type\":\"error_5xx\",\"times\":0}");
    pipeline_publish(P, "r-gone", "stripe", "pi_gone", 5000, "USD", false);
    pipeline_publish(P, "r-stripe-ex", "stripe", "pi_ex", 4000, "USD", false);
    pipeline_publish(P, "r-toss-ex", "toss", "tp_ex", 15000, "KRW", false);
    pipeline_publish(P, "r-amt", "stripe", "pi_amt", 3000, "USD", false);
    pipeline_publish(P, "r-fine", "toss", "tp_fine", 8000, "KRW", false);
    pipeline_publish(P, "r-settle", "stripe", "pi_settle", 2500, "USD", false);
    pipeline_publish(P, "r-unk", "stripe", "pi_unk", 1000, "USD", false);
    wait_status("r-gone", "SUCCEEDED");
    wait_status("r-stripe-ex", "EXHAUSTED");
    wait_status("r-toss-ex", "EXHAUSTED");
    wait_status("r-amt", "SUCCEEDED");
    wait_status("r-fine", "SUCCEEDED");
    wait_status("r-settle", "SUCCEEDED");
    wait_status("r-unk", "SUCCEEDED");
    cr_assert_eq(pipeline_sim_call(P, "DELETE", "/_sim/faults", NULL, NULL), 200);

    /* Behind our back: */
    forget_refund("pi_gone");
    plant_refund("pi_ex", "{\"amount\":4000,\"metadata\":{\"requestId\":\"r-stripe-ex\"}}");
    plant_refund("tp_ex", "{\"amount\":15000,\"reason\":\"refunded in the console\"}");
    forget_refund("pi_amt");
    plant_refund("pi_amt", "{\"amount\":2000,\"metadata\":{\"requestId\":\"r-amt\"}}");
    char *settle = refund_id("pi_settle"), path[256];
    snprintf(path, sizeof(path), "/_sim/refunds/%s", settle);
    pipeline_sim_post(P, path, "{\"status\":\"pending\"}");
    free(settle);
    pipeline_sim_fault(
        P, "{\"paymentKey\":\"pi_unk\",\"type\":\"error_5xx\",\"operation\":\"inquiry\","
           "\"times\":0}");
    wait_outbox_drained();
    size_t posts = refund_calls();
    long long letters_before =
        q_int("SELECT count(*) FROM outbox WHERE event_type = 'dead-letter'", NULL);

    /* First pass: every mismatch recorded and alerted once. */
    json_t *doc = pipeline_cancelctl_json(
        P, 0,
        (const char *const[]){"--json", "reconcile", "--since", "1h", "--operator", "alice", NULL});
    json_t *c = json_object_get(doc, "counts");
    cr_expect_eq(jint(c, "checked"), 7, "%s", json_dumps(doc, 0));
    cr_expect_eq(jint(c, "agree"), 1);
    cr_expect_eq(jint(c, "settling"), 1);
    cr_expect_eq(jint(c, "couldNotCheck"), 1);
    cr_expect_eq(jint(c, "mismatches"), 4);
    cr_expect_eq(jint(c, "newMismatches"), 4);
    cr_expect_eq(jint(c, "fixed"), 0);
    json_t *m = json_object_get(doc, "mismatches");
    const struct {
        const char *rid, *kind, *ours, *theirs, *would;
    } want[] = {
        {"r-gone", "OURS_REFUNDED_THEIRS_NOT", "SUCCEEDED", "NOT_REFUNDED", "FAILED"},
        {"r-stripe-ex", "OURS_FAILED_THEIRS_REFUNDED", "EXHAUSTED", "REFUNDED", "SUCCEEDED"},
        {"r-toss-ex", "OURS_FAILED_THEIRS_REFUNDED", "EXHAUSTED", "REFUNDED", "SUCCEEDED"},
        {"r-amt", "AMOUNT_DIFFERS", "SUCCEEDED", "MISMATCH", NULL},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        json_t *e = entry(m, want[i].rid);
        cr_assert_not_null(e, "%s not among the mismatches: %s", want[i].rid, json_dumps(doc, 0));
        cr_expect_str_eq(jstr(e, "kind"), want[i].kind, "%s", want[i].rid);
        cr_expect_str_eq(jstr(e, "ourStatus"), want[i].ours, "%s", want[i].rid);
        cr_expect_str_eq(jstr(e, "theirFinding"), want[i].theirs, "%s", want[i].rid);
        cr_expect(json_is_true(json_object_get(e, "new")), "%s", want[i].rid);
        if (want[i].would != NULL)
            cr_expect_str_eq(jstr(e, "fixWould"), want[i].would, "%s", want[i].rid);
        else
            cr_expect(json_is_null(json_object_get(e, "fixWould")), "%s", want[i].rid);
    }
    cr_expect_not_null(entry(json_object_get(doc, "settling"), "r-settle"));
    cr_expect_not_null(entry(json_object_get(doc, "couldNotCheck"), "r-unk"));
    json_decref(doc);

    expect_q("SELECT string_agg(request_id || ':' || kind, ',' ORDER BY request_id)"
             " FROM reconcile_mismatch WHERE fixed_at IS NULL",
             NULL,
             "r-amt:AMOUNT_DIFFERS,r-gone:OURS_REFUNDED_THEIRS_NOT,"
             "r-stripe-ex:OURS_FAILED_THEIRS_REFUNDED,r-toss-ex:OURS_FAILED_THEIRS_REFUNDED");
    expect_q("SELECT amount || ' ' || currency || ' ' || their_finding || ' ' ||"
             " their_refunded_amount FROM reconcile_mismatch WHERE request_id = $1",
             "r-amt", "3000 USD MISMATCH 2000");
    /* One dead letter per mismatch, carrying the original CancelFailed. */
    cr_expect_eq(mismatch_letters(NULL), 4);
    cr_expect_eq(q_int("SELECT count(*) FROM outbox o JOIN cancel_request r USING (request_id)"
                       " WHERE o.event_type = 'dead-letter' AND o.value = r.source_event"
                       " AND o.headers @> '[[\"dlq.reason\", \"RECONCILE_MISMATCH\"],"
                       " [\"dlq.consumer\", \"cancelctl\"]]'",
                       NULL),
                 4);
    wait_outbox_drained();
    struct pipeline_msg *msgs = NULL;
    size_t n =
        pipeline_read_topic(P, "dlq", (size_t)letters_before + 4, PIPELINE_READ_TIMEOUT_MS, &msgs);
    size_t on_kafka = 0;
    for (size_t i = 0; i < n; i++)
        on_kafka += strcmp(jstr(msgs[i].headers, "dlq.reason"), "RECONCILE_MISMATCH") == 0;
    pipeline_msgs_free(msgs, n);
    cr_expect_eq(on_kafka, 4, "RECONCILE_MISMATCH dead letters on the DLQ topic");
    /* Reconciliation asks; it never refunds. */
    cr_expect_eq(refund_calls(), posts, "reconcile sent a refund");
    expect_q("SELECT status FROM cancel_request WHERE request_id = $1", "r-gone", "SUCCEEDED");

    /* Second pass: the same open mismatches, nobody alerted again. */
    doc = pipeline_cancelctl_json(
        P, 0, (const char *const[]){"--json", "reconcile", "--since", "1h", NULL});
    c = json_object_get(doc, "counts");
    cr_expect_eq(jint(c, "mismatches"), 4, "%s", json_dumps(doc, 0));
    cr_expect_eq(jint(c, "newMismatches"), 0);
    cr_expect(
        json_is_false(json_object_get(entry(json_object_get(doc, "mismatches"), "r-gone"), "new")));
    json_decref(doc);
    cr_expect_eq(mismatch_letters(NULL), 4);
    cr_expect_eq(q_int("SELECT count(*) FROM reconcile_mismatch", NULL), 4);

    /* The same for a person at a terminal. */
    struct itest_result r;
    pipeline_cancelctl_exit(P, &r, 0, (const char *const[]){"reconcile", "--since", "1h", NULL});
    fprintf(stderr, "%s", r.out);
    const char *words[] = {"OURS_REFUNDED_THEIRS_NOT",
                           "OURS_FAILED_THEIRS_REFUNDED",
                           "AMOUNT_DIFFERS",
                           "still open, alerted before; --fix would make it FAILED",
                           "--fix leaves it to a person",
                           "Still settling",
                           "r-settle (stripe, SUCCEEDED)",
                           "Could not check",
                           "r-unk (stripe, SUCCEEDED)",
                           "Checked 7: 1 agree, 1 still settling, 1 could not be checked, 4 "
                           "mismatch(es) (0 new, alerted once each)"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        cr_expect_not_null(strstr(r.out, words[i]), "\"%s\" missing from:\n%s", words[i], r.out);
    itest_result_free(&r);
    pipeline_cancelctl_exit(P, &r, 0, (const char *const[]){"status", "--timeout", "5s", NULL});
    cr_expect_not_null(strstr(r.out, "open mismatches: 4 (AMOUNT_DIFFERS 1, "
                                     "OURS_FAILED_THEIRS_REFUNDED 2, OURS_REFUNDED_THEIRS_NOT 1)"),
                       "%s", r.out);
    itest_result_free(&r);
    cr_expect_eq(mismatch_letters(NULL), 4);
    /* show tells the one request's mismatch. */
    pipeline_cancelctl_exit(P, &r, 0, (const char *const[]){"show", "r-gone", NULL});
    cr_expect_not_null(strstr(r.out, "Reconciliation against the gateway"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "OURS_REFUNDED_THEIRS_NOT: ours SUCCEEDED"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "(open)"), "%s", r.out);
    itest_result_free(&r);

    /* status shows them. */
    doc = pipeline_cancelctl_json(P, 0, (const char *const[]){"--json", "status", NULL});
    json_t *rec = json_object_get(doc, "reconciliation");
    json_t *open = json_object_get(rec, "openMismatches");
    cr_expect_eq(jint(open, "total"), 4, "%s", json_dumps(rec, 0));
    cr_expect_eq(jint(json_object_get(open, "byKind"), "OURS_FAILED_THEIRS_REFUNDED"), 2);
    cr_expect_eq(jint(json_object_get(rec, "lastRun"), "checked"), 7);
    cr_expect_eq(jint(json_object_get(rec, "lastRun"), "mismatches"), 4);
    cr_expect_str_eq(jstr(json_object_get(rec, "lastRun"), "trigger"), "cli");
    json_decref(doc);

    /* --fix corrects our records, each once. */
    long long out_gone = outcomes("r-gone"), out_ex = outcomes("r-stripe-ex"),
              out_toss = outcomes("r-toss-ex"), out_amt = outcomes("r-amt");
    doc = pipeline_cancelctl_json(P, 0,
                                  (const char *const[]){"--json", "reconcile", "--since", "1h",
                                                        "--fix", "--operator", "alice", "--note",
                                                        "OPS-1", NULL});
    c = json_object_get(doc, "counts");
    cr_expect_eq(jint(c, "fixed"), 3, "%s", json_dumps(doc, 0));
    cr_expect_eq(jint(c, "newMismatches"), 0);
    cr_expect_str_eq(jstr(entry(json_object_get(doc, "mismatches"), "r-amt"), "fix"), "NOT_FIXED");
    cr_expect_str_eq(jstr(entry(json_object_get(doc, "mismatches"), "r-gone"), "statusNow"),
                     "FAILED");
    json_decref(doc);
    expect_q("SELECT status || ' ' || last_error_code || ' ' || key_holds_error"
             " FROM cancel_request WHERE request_id = $1",
             "r-gone", "FAILED RECONCILE_NOT_REFUNDED true");
    expect_q("SELECT status || ' ' || found_by_inquiry FROM cancel_request WHERE request_id = $1",
             "r-stripe-ex", "SUCCEEDED true");
    expect_q("SELECT status FROM cancel_request WHERE request_id = $1", "r-toss-ex", "SUCCEEDED");
    expect_q("SELECT status FROM cancel_request WHERE request_id = $1", "r-amt", "SUCCEEDED");
    expect_q("SELECT string_agg(request_id || ' ' || operator, ',' ORDER BY request_id)"
             " FROM operator_action WHERE action = 'RECONCILE' AND note LIKE '%OPS-1'",
             NULL, "r-gone alice,r-stripe-ex alice,r-toss-ex alice");
    cr_expect_eq(outcomes("r-gone"), out_gone + 1);
    cr_expect_eq(outcomes("r-stripe-ex"), out_ex + 1);
    cr_expect_eq(outcomes("r-toss-ex"), out_toss + 1);
    cr_expect_eq(outcomes("r-amt"), out_amt);
    expect_q("SELECT convert_from(value, 'UTF8')::jsonb -> 'data' ->> 'status' FROM outbox"
             " WHERE request_id = $1 AND event_type = 'payments.cancel.outcome.v1'"
             " ORDER BY id DESC LIMIT 1",
             "r-gone", "FAILED");
    expect_q("SELECT convert_from(value, 'UTF8')::jsonb -> 'data' ->> 'status' FROM outbox"
             " WHERE request_id = $1 AND event_type = 'payments.cancel.outcome.v1'"
             " ORDER BY id DESC LIMIT 1",
             "r-stripe-ex", "SUCCEEDED");
    expect_q("SELECT string_agg(request_id || ' ' || fixed_by, ',' ORDER BY request_id)"
             " FROM reconcile_mismatch WHERE fixed_at IS NOT NULL",
             NULL, "r-gone alice,r-stripe-ex alice,r-toss-ex alice");
    expect_q("SELECT string_agg(request_id, ',') FROM reconcile_mismatch WHERE fixed_at IS NULL",
             NULL, "r-amt");
    cr_expect_eq(mismatch_letters(NULL), 4);

    /* A second --fix changes nothing. */
    long long actions = q_int("SELECT count(*) FROM operator_action", NULL);
    doc = pipeline_cancelctl_json(P, 0,
                                  (const char *const[]){"--json", "reconcile", "--since", "1h",
                                                        "--fix", "--operator", "bob", NULL});
    c = json_object_get(doc, "counts");
    cr_expect_eq(jint(c, "fixed"), 0, "%s", json_dumps(doc, 0));
    cr_expect_eq(jint(c, "mismatches"), 1);
    cr_expect_eq(jint(c, "agree"), 4);
    json_decref(doc);
    cr_expect_eq(q_int("SELECT count(*) FROM operator_action", NULL), actions);
    cr_expect_eq(outcomes("r-gone"), out_gone + 1);
    cr_expect_eq(outcomes("r-stripe-ex"), out_ex + 1);
    cr_expect_eq(mismatch_letters(NULL), 4);
    cr_expect_eq(refund_calls(), posts, "reconcile sent a refund");

    /* The operator replays the corrected request: it inquires first, finds
     * no refund, and refunds once under a new key generation. */
    wait_outbox_drained();
    doc = pipeline_cancelctl_json(P, 0,
                                  (const char *const[]){"--json", "dlq", "replay", "--request-id",
                                                        "r-gone", "--yes", "--operator", "alice",
                                                        NULL});
    cr_expect_str_eq(jstr(json_array_get(json_object_get(doc, "results"), 0), "action"), "REARM",
                     "%s", json_dumps(doc, 0));
    json_decref(doc);
    wait_status("r-gone", "SUCCEEDED");
    json_t *ledger = pipeline_ledger(P, "pi_gone");
    json_t *refunds = json_object_get(ledger, "refunds");
    cr_expect_eq(json_array_size(refunds), 1, "refunds of pi_gone after the replay");
    cr_expect_str_eq(jstr(json_array_get(refunds, 0), "idempotencyKey"), "r-gone.2");
    json_decref(ledger);
}

/* ---- the relay's scheduled pass ---- */

Test(reconcile, scheduled_pass_in_the_relay_alerts_a_planted_mismatch_once, .fini = stop,
     .timeout = 200)
{
    P = pipeline_start("reconcile-scheduled", "reconcile: { interval: 2s, window: 1h }\n");
    pipeline_payment(P, "stripe", "pi_s1", 6000, "USD", 0);
    pipeline_publish(P, "r-s1", "stripe", "pi_s1", 6000, "USD", false);
    wait_status("r-s1", "SUCCEEDED");
    size_t posts = refund_calls();

    forget_refund("pi_s1");
    cr_assert(pipeline_wait_query(P,
                                  "SELECT kind FROM reconcile_mismatch WHERE request_id = $1"
                                  " AND fixed_at IS NULL",
                                  1, (const char *const[]){"r-s1"}, "OURS_REFUNDED_THEIRS_NOT",
                                  30000),
              "the relay's pass did not find the mismatch (logs: %s)", pipeline_log_dir(P));
    /* Two more passes that start after it was found: still one alert. */
    cr_assert(pipeline_wait_query(P,
                                  "SELECT (count(*) >= 2)::text FROM reconcile_run"
                                  " WHERE trigger = 'scheduled' AND finished_at IS NOT NULL"
                                  "   AND started_at > (SELECT found_at FROM reconcile_mismatch"
                                  "                      WHERE request_id = $1)",
                                  1, (const char *const[]){"r-s1"}, "true", 30000),
              "no further scheduled passes (logs: %s)", pipeline_log_dir(P));
    cr_expect_eq(mismatch_letters("r-s1"), 1);
    cr_expect_eq(q_int("SELECT count(*) FROM outbox WHERE request_id = $1"
                       " AND headers @> '[[\"dlq.consumer\", \"outbox-relay\"]]'",
                       "r-s1"),
                 1);
    cr_expect_eq(q_int("SELECT count(*) FROM reconcile_mismatch WHERE request_id = $1", "r-s1"), 1);
    expect_q("SELECT (last_seen_at > found_at)::text FROM reconcile_mismatch WHERE request_id = $1",
             "r-s1", "true");
    /* The relay only reports: our record and the gateway are untouched. */
    expect_q("SELECT status FROM cancel_request WHERE request_id = $1", "r-s1", "SUCCEEDED");
    cr_expect_eq(q_int("SELECT count(*) FROM operator_action", NULL), 0);
    cr_expect_eq(refund_calls(), posts, "the scheduled pass sent a refund");

    /* Someone refunds it in the console: the next pass finds both sides
     * agree and closes the mismatch, alerting nobody. */
    plant_refund("pi_s1", "{\"amount\":6000,\"metadata\":{\"requestId\":\"r-s1\"}}");
    cr_assert(pipeline_wait_query(P,
                                  "SELECT fix_note FROM reconcile_mismatch WHERE request_id = $1"
                                  " AND fixed_at IS NOT NULL",
                                  1, (const char *const[]){"r-s1"},
                                  "the gateway and our record agree again: REFUNDED (our refund "
                                  "of 6000 is succeeded)",
                                  30000),
              "the mismatch was not closed (logs: %s)", pipeline_log_dir(P));
    cr_expect_eq(mismatch_letters("r-s1"), 1);
    cr_expect_eq(refund_calls(), posts, "the scheduled pass sent a refund");
    wait_outbox_drained();
}

/* While a pass waits on a gateway whose inquiries hang, the relay keeps
 * publishing at its usual pace: the inquiries run a few per loop turn
 * without blocking (http_client_run(..., 0, ...)). A relay that waited for
 * them would hold rows for up to a hanging inquiry's 1.8 s. */
Test(reconcile, scheduled_pass_does_not_hold_up_publishing, .fini = stop, .timeout = 250)
{
    P = pipeline_start("reconcile-latency",
                       "reconcile: { interval: 1s, window: 1h, rate_per_second: 2 }\n");
    char rid[32], pk[32];
    for (int i = 0; i < 6; i++) {
        snprintf(pk, sizeof(pk), "pi_done_%d", i);
        snprintf(rid, sizeof(rid), "r-done-%d", i);
        pipeline_payment(P, "stripe", pk, 1000 + i, "USD", 0);
        pipeline_publish(P, rid, "stripe", pk, 1000 + i, "USD", false);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(rid, sizeof(rid), "r-done-%d", i);
        wait_status(rid, "SUCCEEDED");
    }
    /* Every inquiry now hangs 1.8 s (under the 2 s gateway timeout). */
    pipeline_sim_fault(
        P, "{\"type\":\"hang\",\"operation\":\"inquiry\",\"delayMs\":1800,\"times\":0}");
    int64_t deadline = mono_ms() + 20000;
    while (hung_inquiries() == 0 && mono_ms() < deadline)
        itest_sleep_ms(50);
    cr_assert_gt(hung_inquiries(), 0, "no scheduled inquiry is hanging (logs: %s)",
                 pipeline_log_dir(P));
    char *t0 = q_str("SELECT now()::text", NULL);

    /* New requests over a few seconds, while the passes go on hanging. */
    for (int i = 0; i < 10; i++) {
        snprintf(pk, sizeof(pk), "tp_new_%d", i);
        snprintf(rid, sizeof(rid), "r-new-%d", i);
        pipeline_payment(P, "toss", pk, 5000 + i, "KRW", 0);
        pipeline_publish(P, rid, "toss", pk, 5000 + i, "KRW", false);
        itest_sleep_ms(400);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(rid, sizeof(rid), "r-new-%d", i);
        wait_status(rid, "SUCCEEDED");
    }
    wait_outbox_drained();
    /* Inquiries were hanging while the new requests went through. */
    cr_expect_gt(q_int("SELECT count(*) FROM reconcile_run WHERE trigger = 'scheduled'"
                       " AND started_at < now() AND coalesce(finished_at, now()) > $1::timestamptz",
                       t0),
                 0, "no pass overlapped the new requests");
    cr_expect_gt(hung_inquiries(), 4, "the scheduled passes' inquiries did not hang");

    long long rows = q_int("SELECT count(*) FROM outbox WHERE created_at >= $1::timestamptz"
                           " AND event_type LIKE 'payments.cancel.%'",
                           t0);
    cr_expect_geq(rows, 20, "RetryScheduled and Outcome of 10 requests");
    long long worst = q_int("SELECT coalesce(max((extract(epoch FROM published_at"
                            "   - greatest(created_at, available_at)) * 1000)::bigint), 0)"
                            " FROM outbox WHERE created_at >= $1::timestamptz"
                            " AND event_type LIKE 'payments.cancel.%'",
                            t0);
    char *spread = q_str("SELECT percentile_disc(array[0.5, 0.99]) WITHIN GROUP (ORDER BY"
                         " (extract(epoch FROM published_at - greatest(created_at, available_at))"
                         " * 1000)::bigint)::text FROM outbox WHERE created_at >= $1::timestamptz"
                         " AND event_type LIKE 'payments.cancel.%'",
                         t0);
    char *slowest = q_str("SELECT string_agg(s, ', ') FROM (SELECT event_type || ' ' || request_id"
                          "  || ' ' || (extract(epoch FROM published_at - greatest(created_at,"
                          "  available_at)) * 1000)::bigint || 'ms' AS s FROM outbox"
                          "  WHERE created_at >= $1::timestamptz"
                          "  AND event_type LIKE 'payments.cancel.%'"
                          "  ORDER BY published_at - greatest(created_at, available_at) DESC"
                          "  LIMIT 3) x",
                          t0);
    fprintf(stderr,
            "reconcile-latency: %lld rows published during hanging passes; p50/p99 %s ms, "
            "worst %lld ms (%s)\n",
            rows, spread, worst, slowest);
    free(slowest);
    long long median = q_int("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY"
                             " (extract(epoch FROM published_at - greatest(created_at,"
                             " available_at)) * 1000)::bigint) FROM outbox"
                             " WHERE created_at >= $1::timestamptz"
                             " AND event_type LIKE 'payments.cancel.%'",
                             t0);
    /* Unhindered, rows go out within a few ms (the broker's round trip); a
     * relay that waited on the inquiries, even only until the next one
     * answers, shows hundreds of ms (measured: p50 348 ms, worst 806 ms). */
    cr_expect_lt(median, 100, "half the rows waited %lld ms or more for the relay (logs: %s)",
                 median, pipeline_log_dir(P));
    cr_expect_lt(worst, 600, "a row waited %lld ms for the relay (p50/p99 %s ms; logs: %s)", worst,
                 spread, pipeline_log_dir(P));
    free(spread);
    free(t0);
}
