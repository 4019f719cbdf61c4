/*
 * slack: the pure half of the Slack alerts: what an alert or a digest says
 * (an incoming-webhook payload with a plain "text" fallback and Block Kit
 * "blocks"), how a payment key is masked and an amount written, and what a
 * webhook's answer means. No I/O here: src/alert/alert_engine.c posts what these
 * functions build, and tests/unit/test_slack.c pins the JSON.
 *
 * Every value that came from an event is treated as hostile text: cut to a
 * sane length, made valid UTF-8 and escaped for Slack's mrkdwn (&, <, >), so
 * a message cannot ping @channel, forge a link or break the payload.
 * Every message and every answer's reason is also masked with the
 * process's set of secrets (redact.h): an error may quote a gateway key.
 */
#ifndef CR_SLACK_H
#define CR_SLACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* What an alert is about. */
enum slack_alert_kind {
    SLACK_ALERT_OUTCOME,     /* an Outcome event (payments.cancel.outcome) */
    SLACK_ALERT_DEAD_LETTER, /* a dead letter (payments.cancel.dlq) */
};

/* Everything one alert says. Strings are borrowed and may be NULL (then the
 * line or field is left out); numbers use -1 (amount, attempts) or 0
 * (error_http_status) for "unknown". */
struct slack_alert {
    enum slack_alert_kind kind;
    const char *reason;         /* outcome status or dlq.reason; required */
    const char *request_id;     /* a valid requestId, or NULL */
    const char *gateway;        /* gateway name */
    const char *payment_key;    /* shown masked, never whole */
    int64_t amount;             /* minor units */
    const char *currency;       /* ISO 4217 */
    int attempts;               /* attempts made */
    const char *error_code;     /* last gateway error code (outcomes) */
    const char *error_message;  /* last gateway error message, or dlq.error */
    int error_http_status;      /* of the last gateway error */
    const char *correlation_id; /* the event's correlationid */
    const char *event_id;       /* CloudEvents id of the outcome */
    const char *topic;          /* where the alert was read */
    int32_t partition;
    int64_t offset;
    const char *origin; /* dead letters: "topic [partition] offset N" of the original */
    const char *by;     /* dead letters: dlq.consumer */
    const char *at;     /* RFC 3339: decidedAt or dlq.at */
};

/* A name and how many alerts had it, for digests. */
struct slack_count {
    const char *name;
    int count;
};

/* Everything a digest says. Strings borrowed. */
struct slack_digest {
    int total;                         /* alerts in this digest */
    int threshold;                     /* alerts.slack.digest.threshold */
    int64_t window_ms;                 /* alerts.slack.digest.window */
    const struct slack_count *reasons; /* by reason, most first */
    size_t nreasons;
    const struct slack_count *gateways; /* by gateway ("unknown" when none), most first */
    size_t ngateways;
    const char *const *first_ids; /* the first few requestIds, oldest first */
    size_t nfirst;
    const char *since; /* RFC 3339 of the earliest and the latest event */
    const char *until;
};

/* What a webhook answer means. */
enum slack_result {
    SLACK_SENT,         /* 2xx: posted */
    SLACK_RATE_LIMITED, /* 429: wait Retry-After, then post it again */
    SLACK_TRANSIENT,    /* no answer, 408 or 5xx: post it again after a back-off */
    SLACK_PERMANENT,    /* any other answer (invalid_payload, channel_not_found,
                           403/404/410, ...): a configuration fault; posting again
                           will not help */
};

/* Digits after the decimal point of currency (ISO 4217 minor unit): 0 for
 * KRW, JPY and the other zero-decimal currencies, 3 for BHD, KWD, ...,
 * 2 for everything else (USD, EUR, unknown codes). */
int slack_currency_exponent(const char *currency);

/* Write amount (minor units, >= 0) of currency as a person reads it, with
 * thousands separators and the currency code: 15000 KRW -> "15,000 KRW",
 * 123456 USD -> "1,234.56 USD". currency NULL writes the bare number.
 * Always NUL-terminates out. */
void slack_format_amount(int64_t amount, const char *currency, char *out, size_t outlen);

/* Write a masked copy of a payment key into out: "****" followed by at most
 * its last 4 characters, fewer for a short key (a third of its length), so
 * that the key can be recognised but never rebuilt. Always NUL-terminates. */
void slack_mask_key(const char *key, char *out, size_t outlen);

/* The incoming-webhook payload of one alert: {"text": ..., "blocks": [...]}.
 * Returns a new reference, or NULL when out of memory. */
json_t *slack_alert_message(const struct slack_alert *a);

/* The payload of a digest. Returns a new reference, or NULL when out of
 * memory. */
json_t *slack_digest_message(const struct slack_digest *d);

/* Decide what a webhook answer means from its HTTP status (0: no answer) and
 * body. For anything but SLACK_SENT writes a short reason for logs and the
 * alert_sent row into why ("HTTP 404: channel_not_found", "no answer:
 * <curl_error>"): the status and Slack's error string only, never the URL. */
enum slack_result slack_classify(long status, const char *body, const char *curl_error, char *why,
                                 size_t whylen);

const char *slack_result_name(enum slack_result r);

#endif
