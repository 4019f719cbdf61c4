#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "event/cancel_event.h"
#include "event/cloudevent.h"

/* ---- contracts: the schema examples through the C parsers ----------------
 * Tests run from the repo root (workdir in tests/unit/meson.build). A valid
 * example must be EVENT_OK, an invalid one must not: the C rules and the JSON
 * Schemas stay in agreement. */

#define EXAMPLES "schemas/events/examples"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "could not open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Parse bytes as the event type of schema ("cloudevent" = envelope only). */
static enum event_verdict parse_as(const char *schema, const char *bytes, size_t len, char *err,
                                   size_t errlen)
{
    struct cloudevent ev;
    enum event_verdict v = cloudevent_parse(bytes, len, &ev, err, errlen);
    if (v != EVENT_OK || strcmp(schema, "cloudevent") == 0) {
        cloudevent_clear(&ev);
        return v;
    }
    if (strcmp(schema, CANCEL_EVENT_TYPE_FAILED) == 0) {
        struct cancel_failed cf;
        v = cancel_failed_parse(&ev, &cf, err, errlen);
        cancel_failed_clear(&cf);
    } else if (strcmp(schema, CANCEL_EVENT_TYPE_RETRY_SCHEDULED) == 0) {
        struct retry_scheduled rs;
        v = retry_scheduled_parse(&ev, &rs, err, errlen);
        retry_scheduled_clear(&rs);
    } else if (strcmp(schema, CANCEL_EVENT_TYPE_OUTCOME) == 0) {
        struct cancel_outcome oc;
        v = cancel_outcome_parse(&ev, &oc, err, errlen);
        cancel_outcome_clear(&oc);
    } else {
        cr_assert_fail("no parser for %s", schema);
    }
    cloudevent_clear(&ev);
    return v;
}

/* Run every example of schema/kind; returns how many there were. */
static int run_examples(const char *schema, const char *kind)
{
    char dirpath[512], path[1024], err[512];
    int n = 0;
    snprintf(dirpath, sizeof(dirpath), "%s/%s/%s", EXAMPLES, schema, kind);
    DIR *d = opendir(dirpath);
    cr_assert_not_null(d, "could not open %s (tests must run from the repo root)", dirpath);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name);
        size_t len;
        char *bytes = read_all(path, &len);
        err[0] = '\0';
        enum event_verdict v = parse_as(schema, bytes, len, err, sizeof(err));
        if (strcmp(kind, "valid") == 0)
            cr_expect_eq(v, EVENT_OK, "%s: %s: %s", path, event_verdict_name(v), err);
        else
            cr_expect_neq(v, EVENT_OK, "%s: accepted, but the schema refuses it", path);
        free(bytes);
        n++;
    }
    closedir(d);
    return n;
}

Test(contracts, cancel_failed_examples_agree_with_schema)
{
    cr_expect_geq(run_examples(CANCEL_EVENT_TYPE_FAILED, "valid"), 5);
    cr_expect_geq(run_examples(CANCEL_EVENT_TYPE_FAILED, "invalid"), 20);
}

Test(contracts, retry_scheduled_examples_agree_with_schema)
{
    cr_expect_geq(run_examples(CANCEL_EVENT_TYPE_RETRY_SCHEDULED, "valid"), 2);
    cr_expect_geq(run_examples(CANCEL_EVENT_TYPE_RETRY_SCHEDULED, "invalid"), 5);
}

Test(contracts, outcome_examples_agree_with_schema)
{
    cr_expect_geq(run_examples(CANCEL_EVENT_TYPE_OUTCOME, "valid"), 3);
    cr_expect_geq(run_examples(CANCEL_EVENT_TYPE_OUTCOME, "invalid"), 5);
}

Test(contracts, envelope_examples_agree_with_schema)
{
    cr_expect_geq(run_examples("cloudevent", "valid"), 2);
    cr_expect_geq(run_examples("cloudevent", "invalid"), 3);
}

/* ---- CancelFailed ------------------------------------------------------- */

static enum event_verdict parse_failed(const char *json, struct cancel_failed *cf, char *err,
                                       size_t errlen)
{
    struct cloudevent ev;
    enum event_verdict v = cloudevent_parse(json, strlen(json), &ev, err, errlen);
    if (v == EVENT_OK)
        v = cancel_failed_parse(&ev, cf, err, errlen);
    else
        memset(cf, 0, sizeof(*cf));
    cloudevent_clear(&ev);
    return v;
}

Test(cancel_failed, reads_every_field)
{
    size_t len;
    char err[256] = "";
    char *bytes = read_all(EXAMPLES "/payments.cancel.failed.v1/valid/full.json", &len);
    struct cancel_failed cf;
    cr_assert_eq(parse_failed(bytes, &cf, err, sizeof(err)), EVENT_OK, "%s", err);
    cr_expect_str_eq(cf.request_id, "bk-20261120-0001:cancel");
    cr_expect_str_eq(cf.gateway, "toss");
    cr_expect_str_eq(cf.payment_key, "tgen_20261120091500abcd");
    cr_expect_eq(cf.amount, 15000);
    cr_expect_str_eq(cf.currency, "KRW");
    cr_expect_not(cf.partial);
    cr_expect_str_eq(cf.reason, "고객 요청 취소");
    cr_expect_str_eq(cf.origin_transaction_id, "ORD-2026-11-20-0001");
    cr_expect_str_eq(cf.failure_code, "PROVIDER_ERROR");
    cr_expect_str_eq(cf.failure_message, "일시적인 오류가 발생했습니다.");
    cancel_failed_clear(&cf);
    cr_expect_null(cf.request_id);
    free(bytes);
}

Test(cancel_failed, optional_fields_default)
{
    char err[256] = "";
    struct cancel_failed cf;
    const char *json = "{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\",\"type\":"
                       "\"payments.cancel.failed.v1\",\"data\":{\"requestId\":\"r1\",\"gateway\":"
                       "\"toss\",\"paymentKey\":\"pk\",\"amount\":1,\"currency\":\"KRW\","
                       "\"reason\":\"x\"}}";
    cr_assert_eq(parse_failed(json, &cf, err, sizeof(err)), EVENT_OK, "%s", err);
    cr_expect_not(cf.partial, "partial defaults to false");
    cr_expect_null(cf.origin_transaction_id);
    cr_expect_null(cf.failure_code);
    cr_expect_null(cf.failure_message);
    cancel_failed_clear(&cf);
}

/* The one rule JSON Schema cannot say: subject, when present, is the
 * requestId. */
Test(cancel_failed, subject_must_equal_request_id)
{
    char err[256] = "";
    struct cancel_failed cf;
    const char *json = "{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\",\"type\":"
                       "\"payments.cancel.failed.v1\",\"subject\":\"r2\",\"data\":{\"requestId\":"
                       "\"r1\",\"gateway\":\"toss\",\"paymentKey\":\"pk\",\"amount\":1,"
                       "\"currency\":\"KRW\",\"reason\":\"x\"}}";
    cr_expect_eq(parse_failed(json, &cf, err, sizeof(err)), EVENT_SCHEMA_VIOLATION);
    cr_expect(strstr(err, "subject") != NULL, "%s", err);
    cr_expect_null(cf.request_id);
}

Test(cancel_failed, errors_name_the_field)
{
    char err[256] = "";
    struct cancel_failed cf;
    size_t len;
    struct {
        const char *file, *mention;
    } cases[] = {
        {"amount-zero", "data.amount"},
        {"currency-lowercase", "data.currency"},
        {"reason-201-characters", "data.reason"},
        {"originTransactionId-misspelt-ID", "originTransactionID"},
        {"failure-extra-field", "data.failure"},
        {"requestId-space", "data.requestId"},
        {"envelope-type-other-event", "type"},
        {"envelope-datacontenttype-xml", "datacontenttype"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), EXAMPLES "/payments.cancel.failed.v1/invalid/%s.json",
                 cases[i].file);
        char *bytes = read_all(path, &len);
        err[0] = '\0';
        cr_expect_eq(parse_failed(bytes, &cf, err, sizeof(err)), EVENT_SCHEMA_VIOLATION, "%s",
                     cases[i].file);
        cr_expect(strstr(err, cases[i].mention) != NULL, "%s: \"%s\" does not name %s",
                  cases[i].file, err, cases[i].mention);
        free(bytes);
    }
}

Test(cancel_failed, same_money_compares_the_conflict_fields)
{
    struct cancel_failed a = {.request_id = "r",
                              .gateway = "toss",
                              .payment_key = "pk",
                              .currency = "KRW",
                              .reason = "x",
                              .amount = 100};
    struct cancel_failed b = a;
    b.reason = "another reason";
    b.origin_transaction_id = "o-2";
    cr_expect(cancel_failed_same_money(&a, &b), "reason and origin are not money fields");
    b = a;
    b.gateway = "stripe";
    cr_expect_not(cancel_failed_same_money(&a, &b));
    b = a;
    b.payment_key = "pk2";
    cr_expect_not(cancel_failed_same_money(&a, &b));
    b = a;
    b.amount = 101;
    cr_expect_not(cancel_failed_same_money(&a, &b));
    b = a;
    b.currency = "USD";
    cr_expect_not(cancel_failed_same_money(&a, &b));
    b = a;
    b.partial = true;
    cr_expect_not(cancel_failed_same_money(&a, &b));
}

/* ---- builders: what they build parses back to the same values ----------- */

static struct cloudevent wrap(const char *type, const char *subject, json_t *data)
{
    char err[256] = "";
    char *out = NULL;
    struct cloudevent ev;
    cr_assert_not_null(data);
    cr_assert(
        cloudevent_build(type, CANCEL_EVENT_SOURCE, subject, NULL, data, &out, err, sizeof(err)),
        "%s", err);
    json_decref(data);
    cr_assert_eq(cloudevent_parse(out, strlen(out), &ev, err, sizeof(err)), EVENT_OK, "%s", err);
    free(out);
    return ev;
}

Test(builders, cancel_failed_round_trips)
{
    char err[256] = "";
    struct cancel_failed in = {.request_id = "r-1",
                               .gateway = "stripe",
                               .payment_key = "pi_1",
                               .currency = "USD",
                               .reason = "item out of stock",
                               .amount = 1250,
                               .partial = true,
                               .failure_code = "api_error"};
    struct cancel_failed out;
    struct cloudevent ev =
        wrap(CANCEL_EVENT_TYPE_FAILED, "r-1", cancel_failed_data(&in, err, sizeof(err)));
    cr_assert_eq(cancel_failed_parse(&ev, &out, err, sizeof(err)), EVENT_OK, "%s", err);
    cr_expect(cancel_failed_same_money(&in, &out));
    cr_expect_str_eq(out.reason, in.reason);
    cr_expect_str_eq(out.failure_code, "api_error");
    cr_expect_str_eq(out.failure_message, "", "a failure without message gets an empty one");
    cancel_failed_clear(&out);
    cloudevent_clear(&ev);
}

Test(builders, retry_scheduled_round_trips)
{
    char err[256] = "";
    struct cancel_request_fields req = {"r-1", "toss", "pk-1", "KRW", 15000, false};
    struct retry_scheduled rs;
    struct cloudevent ev = wrap(CANCEL_EVENT_TYPE_RETRY_SCHEDULED, "r-1",
                                retry_scheduled_data(&req, 3, 1795166102123LL, err, sizeof(err)));
    cr_assert_eq(retry_scheduled_parse(&ev, &rs, err, sizeof(err)), EVENT_OK, "%s", err);
    cr_expect_str_eq(rs.request_id, "r-1");
    cr_expect_str_eq(rs.gateway, "toss");
    cr_expect_str_eq(rs.payment_key, "pk-1");
    cr_expect_str_eq(rs.currency, "KRW");
    cr_expect_eq(rs.amount, 15000);
    cr_expect_not(rs.partial);
    cr_expect_eq(rs.attempt, 3);
    cr_expect_eq(rs.due_at_ms, 1795166102123LL);
    cr_expect_str_eq(json_string_value(json_object_get(ev.data, "dueAt")),
                     "2026-11-20T09:15:02.123Z");
    retry_scheduled_clear(&rs);
    cloudevent_clear(&ev);
}

Test(builders, outcome_round_trips_with_and_without_last_error)
{
    char err[256] = "";
    struct cancel_request_fields req = {"r-1", "toss", "pk-1", "KRW", 15000, true};
    struct cancel_last_error le = {"PROVIDER_ERROR", "try later", 503};
    struct cancel_outcome oc;

    struct cloudevent ev = wrap(
        CANCEL_EVENT_TYPE_OUTCOME, "r-1",
        outcome_data(&req, CANCEL_STATUS_EXHAUSTED, 5, &le, 1795166102123LL, err, sizeof(err)));
    cr_expect_null(json_object_get(ev.data, "partial"), "the Outcome contract has no partial");
    cr_assert_eq(cancel_outcome_parse(&ev, &oc, err, sizeof(err)), EVENT_OK, "%s", err);
    cr_expect_str_eq(oc.status, "EXHAUSTED");
    cr_expect_eq(oc.attempts, 5);
    cr_expect_str_eq(oc.last_error_code, "PROVIDER_ERROR");
    cr_expect_str_eq(oc.last_error_message, "try later");
    cr_expect_eq(oc.last_error_http_status, 503);
    cr_expect_eq(oc.decided_at_ms, 1795166102123LL);
    cancel_outcome_clear(&oc);
    cloudevent_clear(&ev);

    ev = wrap(CANCEL_EVENT_TYPE_OUTCOME, "r-1",
              outcome_data(&req, CANCEL_STATUS_SUCCEEDED, 1, NULL, 0, err, sizeof(err)));
    cr_assert_eq(cancel_outcome_parse(&ev, &oc, err, sizeof(err)), EVENT_OK, "%s", err);
    cr_expect_null(oc.last_error_code);
    cr_expect_eq(oc.last_error_http_status, 0);
    cancel_outcome_clear(&oc);
    cloudevent_clear(&ev);

    le.http_status = 0; /* a timeout: no httpStatus member */
    json_t *d = outcome_data(&req, CANCEL_STATUS_FAILED, 2, &le, 0, err, sizeof(err));
    cr_assert_not_null(d, "%s", err);
    cr_expect_null(json_object_get(json_object_get(d, "lastError"), "httpStatus"));
    json_decref(d);
}

Test(builders, refuse_what_the_contract_refuses)
{
    char err[256];
    struct cancel_request_fields ok = {"r-1", "toss", "pk-1", "KRW", 15000, false};
    struct cancel_request_fields r;
    struct cancel_last_error le = {"E", "m", 700};

    err[0] = '\0';
    cr_expect_null(retry_scheduled_data(&ok, 0, 0, err, sizeof(err)), "attempt 0");
    cr_expect(strstr(err, "data.attempt") != NULL, "%s", err);
    r = ok;
    r.amount = 0;
    cr_expect_null(retry_scheduled_data(&r, 1, 0, err, sizeof(err)), "amount 0");
    r = ok;
    r.currency = "krw";
    cr_expect_null(retry_scheduled_data(&r, 1, 0, err, sizeof(err)), "lower-case currency");
    r = ok;
    r.request_id = "has space";
    cr_expect_null(retry_scheduled_data(&r, 1, 0, err, sizeof(err)), "bad requestId");
    r = ok;
    r.gateway = NULL;
    cr_expect_null(retry_scheduled_data(&r, 1, 0, err, sizeof(err)), "no gateway");
    cr_expect_null(outcome_data(&ok, "DONE", 1, NULL, 0, err, sizeof(err)), "unknown status");
    cr_expect_null(outcome_data(&ok, CANCEL_STATUS_FAILED, -1, NULL, 0, err, sizeof(err)),
                   "negative attempts");
    cr_expect_null(outcome_data(&ok, CANCEL_STATUS_FAILED, 1, &le, 0, err, sizeof(err)),
                   "HTTP status 700");
    cr_expect_null(retry_scheduled_data(&ok, 1, 253402300800000LL, err, sizeof(err)),
                   "dueAt past year 9999");

    struct cancel_failed cf = {.request_id = "r",
                               .gateway = "toss",
                               .payment_key = "pk",
                               .currency = "KRW",
                               .reason = "\xff\xfe",
                               .amount = 1};
    cr_expect_null(cancel_failed_data(&cf, err, sizeof(err)), "invalid UTF-8 reason");
    cf.reason = "";
    cr_expect_null(cancel_failed_data(&cf, err, sizeof(err)), "empty reason");
}

Test(cancel_event, helpers)
{
    cr_expect(cancel_status_is_final("MANUALLY_RESOLVED"));
    cr_expect_not(cancel_status_is_final("SCHEDULED"));
    cr_expect_not(cancel_status_is_final(NULL));
    cr_expect(cancel_request_id_valid("a.b_c:d-9"));
    cr_expect_not(cancel_request_id_valid(""));
    cr_expect_not(cancel_request_id_valid("a/b"));
    char long_id[257];
    memset(long_id, 'a', 256);
    long_id[256] = '\0';
    cr_expect_not(cancel_request_id_valid(long_id));
    long_id[255] = '\0';
    cr_expect(cancel_request_id_valid(long_id));
}
