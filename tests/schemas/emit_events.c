/*
 * emit_events: write events and dead-letter headers made by the C builders
 * (cloudevent.h, cancel_event.h, dlq.h) into a directory, one file each,
 * named "<schema-name>--<case>.json", for check_emitted.py to validate
 * against schemas/events. If the builders and the schemas drift apart, that
 * test fails.
 *
 * Usage: emit_events DIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/clock.h"
#include "event/cancel_event.h"
#include "event/cloudevent.h"
#include "event/dlq.h"

static bool write_file(const char *dir, const char *schema, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s--%s.json", dir, schema, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "emit_events: could not open %s: %s\n", path, strerror(errno));
        return false;
    }
    bool ok = fputs(text, f) >= 0;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "emit_events: could not write %s\n", path);
    return ok;
}

/* Wrap data (taken) in an envelope and write it; NULL data means the
 * builder already failed and err says why. */
static bool emit_event(const char *dir, const char *schema, const char *name, const char *type,
                       const char *subject, const char *correlationid, json_t *data,
                       const char *err)
{
    char err2[256];
    char *text = NULL;
    if (data == NULL) {
        fprintf(stderr, "emit_events: %s: %s\n", name, err);
        return false;
    }
    bool ok = cloudevent_build(type, CANCEL_EVENT_SOURCE, subject, correlationid, data, &text, err2,
                               sizeof(err2));
    json_decref(data);
    if (!ok) {
        fprintf(stderr, "emit_events: %s: %s\n", name, err2);
        return false;
    }
    ok = write_file(dir, schema, name, text);
    free(text);
    return ok;
}

/* Build dead-letter headers, send them through librdkafka's header list and
 * back (the path the relay and cancelctl take), and write the object. */
static bool emit_dlq(const char *dir, const char *name, const struct dlq_meta *m)
{
    char err[256];
    bool ok = false;
    rd_kafka_headers_t *hdrs = NULL;
    json_t *obj = NULL;
    char *text = NULL;

    json_t *pairs = dlq_headers_build(m, err, sizeof(err));
    if (pairs == NULL)
        goto out;
    hdrs = dlq_headers_to_kafka(pairs, err, sizeof(err));
    if (hdrs == NULL)
        goto out;
    obj = dlq_headers_from_kafka(hdrs);
    text = obj != NULL ? json_dumps(obj, JSON_INDENT(2)) : NULL;
    if (text == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    ok = write_file(dir, "dead-letter.headers", name, text);
out:
    if (!ok && text == NULL)
        fprintf(stderr, "emit_events: %s: %s\n", name, err);
    free(text);
    json_decref(obj);
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    json_decref(pairs);
    return ok;
}

int main(int argc, char **argv)
{
    char err[256];
    int failures = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: emit_events DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int64_t now = wall_ms();

    struct cancel_failed cf = {
        .request_id = "bk-20261120-0001:cancel",
        .gateway = "toss",
        .payment_key = "tgen_20261120091500abcd",
        .currency = "KRW",
        .reason = "고객 요청 취소",
        .origin_transaction_id = "ORD-2026-11-20-0001",
        .amount = 15000,
        .partial = false,
        .failure_code = "PROVIDER_ERROR",
        .failure_message = "일시적인 오류가 발생했습니다.",
    };
    struct cancel_failed cf_min = {
        .request_id = "order_8842.refund-1",
        .gateway = "stripe",
        .payment_key = "pi_3PqK2bLkdIwHu7ix0xYz",
        .currency = "USD",
        .reason = "Partial refund",
        .amount = 1250,
        .partial = true,
    };
    struct cancel_request_fields req;
    cancel_failed_fields(&cf, &req);
    struct cancel_last_error http_error = {"PROVIDER_ERROR", "일시적인 오류가 발생했습니다.", 500};
    struct cancel_last_error timeout = {"TIMEOUT", "no answer within 10s", 0};

    const char *failed = "payments.cancel.failed.v1";
    const char *retry = "payments.cancel.retry.scheduled.v1";
    const char *outcome = "payments.cancel.outcome.v1";

    failures += !emit_event(dir, failed, "full", CANCEL_EVENT_TYPE_FAILED, cf.request_id,
                            "4bf92f3577b34da6a3ce929d0e0e4736",
                            cancel_failed_data(&cf, err, sizeof(err)), err);
    failures += !emit_event(dir, failed, "minimal-partial", CANCEL_EVENT_TYPE_FAILED, NULL, NULL,
                            cancel_failed_data(&cf_min, err, sizeof(err)), err);
    failures += !emit_event(dir, retry, "attempt-1", CANCEL_EVENT_TYPE_RETRY_SCHEDULED,
                            req.request_id, "4bf92f3577b34da6a3ce929d0e0e4736",
                            retry_scheduled_data(&req, 1, now + 30000, err, sizeof(err)), err);
    failures += !emit_event(
        dir, outcome, "succeeded", CANCEL_EVENT_TYPE_OUTCOME, req.request_id, NULL,
        outcome_data(&req, CANCEL_STATUS_SUCCEEDED, 1, NULL, now, err, sizeof(err)), err);
    failures += !emit_event(
        dir, outcome, "exhausted-http-error", CANCEL_EVENT_TYPE_OUTCOME, req.request_id,
        "4bf92f3577b34da6a3ce929d0e0e4736",
        outcome_data(&req, CANCEL_STATUS_EXHAUSTED, 5, &http_error, now, err, sizeof(err)), err);
    failures += !emit_event(
        dir, outcome, "failed-timeout", CANCEL_EVENT_TYPE_OUTCOME, req.request_id, NULL,
        outcome_data(&req, CANCEL_STATUS_FAILED, 2, &timeout, now, err, sizeof(err)), err);

    /* A long multi-byte error (cut to 500 bytes), an origin, no request id. */
    char long_error[2048] = "";
    while (strlen(long_error) + strlen("일시적인 오류 ") < sizeof(long_error))
        strcat(long_error, "일시적인 오류 ");
    struct dlq_meta parse_error = {
        .reason = DLQ_REASON_PARSE_ERROR,
        .error = long_error,
        .origin = {"payments.cancel.failed", 2, 10452, now - 500},
        .consumer = "intake-consumer",
        .request_id = "not a request id", /* must be left out */
        .at_ms = now,
    };
    struct dlq_meta exhausted = {
        .reason = DLQ_REASON_EXHAUSTED,
        .error = "5 attempts: PROVIDER_ERROR (HTTP 500)\nline two",
        .origin = {"payments.cancel.failed", 0, 0, -1},
        .consumer = "retry-consumer",
        .request_id = req.request_id,
        .attempts = 5,
        .at_ms = now,
    };
    struct dlq_meta no_origin = {
        .reason = DLQ_REASON_FAILED,
        .error = NULL,
        .origin = {NULL, -1, -1, -1},
        .consumer = "retry-consumer",
        .request_id = req.request_id,
        .attempts = 1,
        .at_ms = now,
    };
    failures += !emit_dlq(dir, "parse-error-long-error", &parse_error);
    failures += !emit_dlq(dir, "exhausted", &exhausted);
    failures += !emit_dlq(dir, "failed-no-origin", &no_origin);

    if (failures > 0) {
        fprintf(stderr, "emit_events: %d cases failed\n", failures);
        return 1;
    }
    return 0;
}
