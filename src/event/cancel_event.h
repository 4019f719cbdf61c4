/*
 * cancel_event: the "data" of the three event types of the pipeline, checked
 * and built by the same rules as the JSON Schemas in schemas/events
 * (docs/contracts.md "Versioning"):
 *
 *   payments.cancel.failed.v1           CancelFailed, written upstream
 *   payments.cancel.retry.scheduled.v1  RetryScheduled, the trigger of attempt n
 *   payments.cancel.outcome.v1          Outcome, the final word on a request
 *
 * A data object may hold only the fields its contract lists: a typo in an
 * optional field ("originTransactionID") is a SCHEMA_VIOLATION, never a
 * silently dropped value. The builders check what they build with the same
 * rules, so the pipeline cannot publish an event its own consumers refuse.
 */
#ifndef CR_CANCEL_EVENT_H
#define CR_CANCEL_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "event/cloudevent.h"

#define CANCEL_EVENT_SOURCE               "/payments/cancel-retry"
#define CANCEL_EVENT_TYPE_FAILED          "payments.cancel.failed.v1"
#define CANCEL_EVENT_TYPE_RETRY_SCHEDULED "payments.cancel.retry.scheduled.v1"
#define CANCEL_EVENT_TYPE_OUTCOME         "payments.cancel.outcome.v1"

/* Outcome statuses (the final states of a request). */
#define CANCEL_STATUS_SUCCEEDED         "SUCCEEDED"
#define CANCEL_STATUS_ALREADY_REFUNDED  "ALREADY_REFUNDED"
#define CANCEL_STATUS_FAILED            "FAILED"
#define CANCEL_STATUS_EXHAUSTED         "EXHAUSTED"
#define CANCEL_STATUS_MANUALLY_RESOLVED "MANUALLY_RESOLVED"

/* Limits of docs/contracts.md "Input rules" (and of the db's CHECK constraints). */
#define CANCEL_REQUEST_ID_MAX  255
#define CANCEL_PAYMENT_KEY_MAX 255
/* The largest amount: 2^53 - 1, the largest integer every JSON reader
 * (I-JSON, RFC 7493; JavaScript) holds exactly, and far beyond any payment;
 * sums of amounts stay far from int64 overflow. */
#define CANCEL_AMOUNT_MAX 9007199254740991LL
#define CANCEL_REASON_MAX 200

/* A parsed CancelFailed. Every string is owned (cancel_failed_clear frees
 * them); origin_transaction_id, failure_code and failure_message are NULL
 * when absent. */
struct cancel_failed {
    char *request_id;
    char *gateway;
    char *payment_key;
    char *currency;
    char *reason;
    char *origin_transaction_id;
    int64_t amount;
    bool partial;
    char *failure_code;
    char *failure_message;
};

/* The request fields every event of a request repeats. All strings are
 * borrowed; they must outlive the call that takes the struct. */
struct cancel_request_fields {
    const char *request_id;
    const char *gateway;
    const char *payment_key;
    const char *currency;
    int64_t amount;
    bool partial;
};

/* The last gateway error an Outcome reports. Strings borrowed;
 * http_status 0 means "no HTTP answer" (a timeout, a connection error). */
struct cancel_last_error {
    const char *code;
    const char *message;
    int http_status;
};

/* A parsed RetryScheduled; strings owned. */
struct retry_scheduled {
    char *request_id;
    char *gateway;
    char *payment_key;
    char *currency;
    int64_t amount;
    bool partial;
    int attempt;
    int64_t due_at_ms;
};

/* A parsed Outcome; strings owned, last_error_* NULL/0 when absent. */
struct cancel_outcome {
    char *request_id;
    char *gateway;
    char *payment_key;
    char *currency;
    int64_t amount;
    char *status;
    int attempts;
    char *last_error_code;
    char *last_error_message;
    int last_error_http_status;
    int64_t decided_at_ms;
};

/* True for one of the five CANCEL_STATUS_* strings. */
bool cancel_status_is_final(const char *status);

/* True if s is a valid requestId (1-255 of [A-Za-z0-9._:-]). */
bool cancel_request_id_valid(const char *s);

/* Check a parsed envelope ev as a CancelFailed: type
 * payments.cancel.failed.v1, datacontenttype absent or application/json,
 * data an object with exactly the fields of docs/contracts.md
 * "CancelFailed (payments.cancel.failed.v1)" and their rules,
 * subject absent or equal to data.requestId. On EVENT_OK fills *out (owned
 * copies; the caller clears it); otherwise *out is empty and err says which
 * field broke which rule. */
enum event_verdict cancel_failed_parse(const struct cloudevent *ev, struct cancel_failed *out,
                                       char *err, size_t errlen);

/* Free what cf owns and zero it; safe on a zeroed struct. */
void cancel_failed_clear(struct cancel_failed *cf);

/* True if a and b agree on the fields that decide which money moves
 * (gateway, paymentKey, amount, currency, partial). Two CancelFailed with the
 * same requestId that differ here are an idempotency conflict. */
bool cancel_failed_same_money(const struct cancel_failed *a, const struct cancel_failed *b);

/* Point out's borrowed strings at cf's request fields. */
void cancel_failed_fields(const struct cancel_failed *cf, struct cancel_request_fields *out);

/* Build the data object of a CancelFailed from cf (optional members NULL are
 * omitted; partial is written only when true). Returns a new reference, or
 * NULL with err set if cf breaks a rule. */
json_t *cancel_failed_data(const struct cancel_failed *cf, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Build the data object of a RetryScheduled for attempt (>= 1) due at
 * due_at_ms. Returns a new reference, or NULL with err set if a field breaks
 * a rule. */
json_t *retry_scheduled_data(const struct cancel_request_fields *req, int attempt,
                             int64_t due_at_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Build the data object of an Outcome: status one of CANCEL_STATUS_*,
 * attempts made (>= 0), last_error NULL when there is none, decided_at_ms the
 * instant the final state was written. Returns a new reference, or NULL with
 * err set. */
json_t *outcome_data(const struct cancel_request_fields *req, const char *status, int attempts,
                     const struct cancel_last_error *last_error, int64_t decided_at_ms, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/* Check ev as a RetryScheduled (subject and time required: the pipeline
 * always writes them). Same contract as cancel_failed_parse. */
enum event_verdict retry_scheduled_parse(const struct cloudevent *ev, struct retry_scheduled *out,
                                         char *err, size_t errlen);
void retry_scheduled_clear(struct retry_scheduled *rs);

/* Check ev as an Outcome. Same contract as cancel_failed_parse. */
enum event_verdict cancel_outcome_parse(const struct cloudevent *ev, struct cancel_outcome *out,
                                        char *err, size_t errlen);
void cancel_outcome_clear(struct cancel_outcome *oc);

#endif
