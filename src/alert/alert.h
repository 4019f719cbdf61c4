/*
 * alert: the decisions of the alert-consumer, without I/O.
 *
 * - Which consumed message becomes an alert, and what it says
 *   (alert_from_record): an Outcome whose status is in alerts.slack.statuses,
 *   or a dead letter. A request that ends FAILED or EXHAUSTED gets one post,
 *   not two, though the pipeline writes an Outcome and a dead letter for it
 *   (same outbox transaction): a dead letter with reason FAILED or EXHAUSTED
 *   is not alerted (the Outcome says everything), and a FAILED Outcome whose
 *   last error is a configuration fault (gateway_table.h) is not alerted
 *   (its CONFIG_FAULT dead letter is, routable by that reason). A message on the outcome topic that
 *   does not parse is alerted too (someone publishes garbage there).
 * - The dedup key: "outcome:<CloudEvents id>" for outcomes (the relay may
 *   publish the same row twice; the id stays), "dlq:<topic>/<partition>/<offset>"
 *   for dead letters and unreadable outcomes.
 * - Which webhook (alert_route): the first alerts.slack.routes entry whose
 *   gateway and reason match, else the default.
 * - Digest or not (alert_window): a sliding window over the times of recent
 *   alerts; once more than digest.threshold fall within digest.window, the
 *   next ones go into a digest instead of a post of their own.
 */
#ifndef CR_ALERT_H
#define CR_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "alert/slack.h"
#include "config/config.h"
#include "core/intake.h"
#include "event/cancel_event.h"
#include "event/cloudevent.h"
#include "event/dlq.h"

#define ALERT_KEY_MAX 400

/* alert_sent.kind values. */
#define ALERT_KIND_OUTCOME     "OUTCOME"
#define ALERT_KIND_DEAD_LETTER "DEAD_LETTER"

/* One alert. view's strings point into the members below it, so a struct
 * alert is never copied; alert_clear releases everything. */
struct alert {
    char dedup_key[ALERT_KEY_MAX];
    const char *kind;    /* ALERT_KIND_* */
    int64_t event_at_ms; /* decidedAt, dlq.at, else the Kafka timestamp; -1 unknown */
    struct slack_alert view;
    /* owned storage behind view */
    struct cloudevent ev;
    struct cancel_outcome oc;
    json_t *headers; /* dead letters: a copy of the dlq.* headers object */
    char request_id[CANCEL_REQUEST_ID_MAX + 1];
    char reason[64];
    char error[DLQ_ERROR_MAX + 64];
    char origin[300];
    char at[40];
    char topic[256];
};

enum alert_verdict {
    ALERT_POST, /* out holds an alert */
    ALERT_SKIP, /* nothing to say (a status not alerted, a FAILED/EXHAUSTED dead letter) */
};

/* Decide what rec says. rec->topic is compared with outcome_topic and
 * dlq_topic (a record of any other topic is skipped); headers is the object
 * of dlq_headers_from_kafka() (may be NULL). On ALERT_POST, *out is filled
 * (the caller clears it with alert_clear); on ALERT_SKIP, *out is empty and
 * why says why (for a debug log). Never fails: a message that cannot be read
 * is an alert about that. */
enum alert_verdict alert_from_record(const struct config *cfg, const struct kafka_record *rec,
                                     const json_t *headers, struct alert *out, char *why,
                                     size_t whylen);

/* Release what a owns and zero it. Safe on a zeroed struct. */
void alert_clear(struct alert *a);

/* The index in slack->routes of the first route matching gateway and reason
 * (a route's NULL member matches anything; a NULL argument matches only a
 * route without that filter), or -1 for the default webhook. */
int alert_route(const struct config_slack *slack, const char *gateway, const char *reason);

/* The sliding digest window. */
struct alert_window {
    int64_t *times; /* ring of the last `threshold` admission times */
    size_t cap, head, n;
    int64_t window_ms;
};

/* Set up a window for alerts.slack.digest (threshold >= 1). False only when
 * out of memory. */
bool alert_window_init(struct alert_window *w, int threshold, int64_t window_ms)
    __attribute__((warn_unused_result));

void alert_window_free(struct alert_window *w);

/* True if the window at now_ms already holds threshold alerts: the next one
 * belongs in a digest. Forgets the alerts that left the window. */
bool alert_window_full(struct alert_window *w, int64_t now_ms);

/* Count one alert (posted or digested: a flood keeps the window hot) at
 * now_ms, a wall-clock time. */
void alert_window_add(struct alert_window *w, int64_t now_ms);

#endif
