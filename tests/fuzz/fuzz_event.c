/*
 * fuzz_event: the bytes of one Kafka message as the consumers read them
 * (src/event/cloudevent.c, src/event/cancel_event.c).
 *
 * Input: the message value, any bytes. Properties:
 * - cloudevent_parse() gives one of the three verdicts; a refusal says why
 *   and leaves nothing behind, an accepted envelope has id, source and type;
 * - the same envelope goes through the CancelFailed, RetryScheduled and
 *   Outcome parsers (the intake, retry and alert consumers);
 * - whatever a parser accepts, its builder accepts again (the pipeline
 *   re-publishes the fields it took in: a CancelFailed becomes a
 *   RetryScheduled and an Outcome), and the rebuilt event parses back to the
 *   same fields;
 * - no crash, leak or undefined behaviour (ASan/UBSan).
 */
#include "fuzz.h"

#include <stdbool.h>

#include "event/cancel_event.h"
#include "event/cloudevent.h"

/* A fixed instant for the builders (2026-01-01T00:00:00Z): the time of a
 * rebuilt event is ours, not the input's. */
#define FUZZ_NOW_MS 1767225600000LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static bool str_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Serialize data as an event of type with ev's envelope and parse it back
 * into *out; the envelope must be accepted. Takes data. */
static void rebuild(const struct cloudevent *ev, const char *type, json_t *data,
                    struct cloudevent *out)
{
    char err[512] = "", *json = NULL;
    bool built = cloudevent_build_at(type, ev->source, ev->subject, ev->correlationid, data, ev->id,
                                     FUZZ_NOW_MS, &json, err, sizeof(err));
    json_decref(data);
    FUZZ_CHECK(built, "a parsed envelope does not build again: %s", err);
    enum event_verdict v = cloudevent_parse(json, strlen(json), out, err, sizeof(err));
    FUZZ_CHECK(v == EVENT_OK, "a built envelope does not parse: %s: %s", err, json);
    free(json);
}

static void check_cancel_failed(const struct cloudevent *ev)
{
    struct cancel_failed cf, again;
    struct cancel_request_fields req;
    struct cloudevent ev2;
    char err[512] = "";

    if (cancel_failed_parse(ev, &cf, err, sizeof(err)) != EVENT_OK) {
        FUZZ_CHECK(err[0] != '\0' && cf.request_id == NULL, "a refusal without a reason");
        return;
    }
    FUZZ_CHECK(cancel_request_id_valid(cf.request_id), "requestId \"%s\"", cf.request_id);
    FUZZ_CHECK(cf.amount > 0 && strlen(cf.currency) == 3, "amount %lld currency %s",
               (long long)cf.amount, cf.currency);

    json_t *data = cancel_failed_data(&cf, err, sizeof(err));
    FUZZ_CHECK(data != NULL, "a parsed CancelFailed does not build: %s", err);
    rebuild(ev, CANCEL_EVENT_TYPE_FAILED, data, &ev2);
    FUZZ_CHECK(cancel_failed_parse(&ev2, &again, err, sizeof(err)) == EVENT_OK,
               "a rebuilt CancelFailed is refused: %s", err);
    FUZZ_CHECK(cancel_failed_same_money(&cf, &again) &&
                   strcmp(cf.request_id, again.request_id) == 0 &&
                   strcmp(cf.reason, again.reason) == 0 &&
                   str_same(cf.origin_transaction_id, again.origin_transaction_id) &&
                   str_same(cf.failure_code, again.failure_code) &&
                   str_same(cf.failure_message, again.failure_message),
               "a CancelFailed changed on its way round");
    cancel_failed_clear(&again);
    cloudevent_clear(&ev2);

    /* What the intake publishes for an accepted CancelFailed. */
    cancel_failed_fields(&cf, &req);
    data = retry_scheduled_data(&req, 1, FUZZ_NOW_MS, err, sizeof(err));
    FUZZ_CHECK(data != NULL, "an accepted CancelFailed gives no RetryScheduled: %s", err);
    json_decref(data);
    struct cancel_last_error le = {cf.failure_code != NULL ? cf.failure_code : "X",
                                   cf.failure_message, 0};
    data = outcome_data(&req, CANCEL_STATUS_FAILED, 1, &le, FUZZ_NOW_MS, err, sizeof(err));
    FUZZ_CHECK(data != NULL, "an accepted CancelFailed gives no Outcome: %s", err);
    json_decref(data);
    cancel_failed_clear(&cf);
}

static void check_retry_scheduled(const struct cloudevent *ev)
{
    struct retry_scheduled rs, again;
    struct cloudevent ev2;
    char err[512] = "";

    if (retry_scheduled_parse(ev, &rs, err, sizeof(err)) != EVENT_OK) {
        FUZZ_CHECK(err[0] != '\0' && rs.request_id == NULL, "a refusal without a reason");
        return;
    }
    FUZZ_CHECK(rs.attempt >= 1 && rs.amount > 0, "attempt %d amount %lld", rs.attempt,
               (long long)rs.amount);
    struct cancel_request_fields req = {rs.request_id, rs.gateway, rs.payment_key,
                                        rs.currency,   rs.amount,  rs.partial};
    json_t *data = retry_scheduled_data(&req, rs.attempt, FUZZ_NOW_MS, err, sizeof(err));
    FUZZ_CHECK(data != NULL, "a parsed RetryScheduled does not build: %s", err);
    rebuild(ev, CANCEL_EVENT_TYPE_RETRY_SCHEDULED, data, &ev2);
    FUZZ_CHECK(retry_scheduled_parse(&ev2, &again, err, sizeof(err)) == EVENT_OK,
               "a rebuilt RetryScheduled is refused: %s", err);
    FUZZ_CHECK(strcmp(rs.request_id, again.request_id) == 0 &&
                   strcmp(rs.payment_key, again.payment_key) == 0 &&
                   strcmp(rs.gateway, again.gateway) == 0 && rs.amount == again.amount &&
                   rs.partial == again.partial && rs.attempt == again.attempt &&
                   again.due_at_ms == FUZZ_NOW_MS,
               "a RetryScheduled changed on its way round");
    retry_scheduled_clear(&again);
    cloudevent_clear(&ev2);
    retry_scheduled_clear(&rs);
}

static void check_outcome(const struct cloudevent *ev)
{
    struct cancel_outcome oc, again;
    struct cloudevent ev2;
    char err[512] = "";

    if (cancel_outcome_parse(ev, &oc, err, sizeof(err)) != EVENT_OK) {
        FUZZ_CHECK(err[0] != '\0' && oc.request_id == NULL, "a refusal without a reason");
        return;
    }
    FUZZ_CHECK(cancel_status_is_final(oc.status), "status %s", oc.status);
    struct cancel_request_fields req = {oc.request_id, oc.gateway, oc.payment_key,
                                        oc.currency,   oc.amount,  false};
    struct cancel_last_error le = {oc.last_error_code, oc.last_error_message,
                                   oc.last_error_http_status};
    json_t *data =
        outcome_data(&req, oc.status, oc.attempts, oc.last_error_code != NULL ? &le : NULL,
                     FUZZ_NOW_MS, err, sizeof(err));
    FUZZ_CHECK(data != NULL, "a parsed Outcome does not build: %s", err);
    rebuild(ev, CANCEL_EVENT_TYPE_OUTCOME, data, &ev2);
    FUZZ_CHECK(cancel_outcome_parse(&ev2, &again, err, sizeof(err)) == EVENT_OK,
               "a rebuilt Outcome is refused: %s", err);
    FUZZ_CHECK(strcmp(oc.request_id, again.request_id) == 0 &&
                   strcmp(oc.status, again.status) == 0 && oc.attempts == again.attempts &&
                   oc.amount == again.amount &&
                   str_same(oc.last_error_code, again.last_error_code) &&
                   str_same(oc.last_error_message, again.last_error_message) &&
                   oc.last_error_http_status == again.last_error_http_status,
               "an Outcome changed on its way round");
    cancel_outcome_clear(&again);
    cloudevent_clear(&ev2);
    cancel_outcome_clear(&oc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cloudevent ev;
    char err[512] = "";

    enum event_verdict v = cloudevent_parse(data, size, &ev, err, sizeof(err));
    FUZZ_CHECK(v == EVENT_OK || v == EVENT_PARSE_ERROR || v == EVENT_SCHEMA_VIOLATION, "verdict %d",
               (int)v);
    if (v != EVENT_OK) {
        FUZZ_CHECK(err[0] != '\0', "a refusal without a reason");
        FUZZ_CHECK(ev.id == NULL && ev.type == NULL && ev.data == NULL,
                   "a refused envelope left a parsed attribute behind");
        return 0;
    }
    FUZZ_CHECK(ev.id != NULL && ev.id[0] != '\0' && ev.source != NULL && ev.source[0] != '\0' &&
                   ev.type != NULL && ev.type[0] != '\0',
               "an accepted envelope without id, source or type");
    FUZZ_CHECK(ev.time != NULL || ev.time_ms == 0, "time_ms without a time");
    check_cancel_failed(&ev);
    check_retry_scheduled(&ev);
    check_outcome(&ev);
    cloudevent_clear(&ev);
    return 0;
}
