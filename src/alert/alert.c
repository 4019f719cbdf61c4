/*
 * alert: which messages become alerts, their dedup key, route and digest
 * window. See alert.h.
 */
#include "alert/alert.h"

#include "gateway/gateway_table.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bounds.h"
#include "base/timeutil.h"

static void copy_text(char *dst, size_t dstsize, const char *src)
{
    dlq_sanitize_text(src, strlen(src), dst, dstsize);
}

static const char *header(const json_t *headers, const char *name)
{
    const json_t *v = headers != NULL ? json_object_get(headers, name) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void set_at(struct alert *a, int64_t ms)
{
    if (ms < 0 || !rfc3339_format(ms, a->at, sizeof(a->at))) {
        a->at[0] = '\0';
        return;
    }
    a->event_at_ms = ms;
    a->view.at = a->at;
}

static void set_request_id(struct alert *a, const char *id)
{
    if (id == NULL || !cancel_request_id_valid(id))
        return;
    snprintf(a->request_id, sizeof(a->request_id), "%s", id);
    a->view.request_id = a->request_id;
}

static void base(struct alert *a, const struct kafka_record *rec, enum slack_alert_kind kind)
{
    memset(a, 0, sizeof(*a));
    a->event_at_ms = -1;
    a->kind = kind == SLACK_ALERT_OUTCOME ? ALERT_KIND_OUTCOME : ALERT_KIND_DEAD_LETTER;
    a->view.kind = kind;
    a->view.amount = -1;
    a->view.attempts = -1;
    copy_text(a->topic, sizeof(a->topic), rec->topic);
    a->view.topic = a->topic;
    a->view.partition = rec->partition;
    a->view.offset = rec->offset;
}

static void key_by_offset(struct alert *a, const struct kafka_record *rec)
{
    snprintf(a->dedup_key, sizeof(a->dedup_key), "dlq:%s/%" PRId32 "/%" PRId64, a->topic,
             rec->partition, rec->offset);
}

/* An unreadable message on the outcome topic: alert it by its offset. */
static void unreadable_outcome(struct alert *a, const struct kafka_record *rec,
                               enum event_verdict v, const char *err)
{
    char guess[CANCEL_REQUEST_ID_MAX + 1];

    cloudevent_clear(&a->ev);
    cancel_outcome_clear(&a->oc);
    base(a, rec, SLACK_ALERT_OUTCOME);
    key_by_offset(a, rec);
    snprintf(a->reason, sizeof(a->reason), "%s", event_verdict_name(v));
    a->view.reason = a->reason;
    copy_text(a->error, sizeof(a->error), err);
    a->view.error_message = a->error;
    set_request_id(a, dlq_guess_request_id(rec->value, rec->len, guess, sizeof(guess)));
    set_at(a, rec->timestamp_ms);
}

static bool status_alerts(const struct config_slack *s, const char *status)
{
    for (size_t i = 0; i < s->n_statuses; i++)
        if (strcmp(s->statuses[i], status) == 0)
            return true;
    return false;
}

/* Did oc end FAILED on a configuration fault (the behaviour table's verdict
 * for its last error)? The retry-consumer dead-letters such a request under
 * CONFIG_FAULT in the same transaction, and that dead letter (routable by
 * the reason CONFIG_FAULT, with the replay command) is the request's one
 * alert. */
static bool config_fault_outcome(const struct config *cfg, const struct cancel_outcome *oc)
{
    if (strcmp(oc->status, CANCEL_STATUS_FAILED) != 0 || oc->last_error_code == NULL)
        return false;
    for (size_t i = 0; i < cfg->ngateways; i++) {
        if (strcmp(cfg->gateways[i].name, oc->gateway) != 0)
            continue;
        const struct gateway_rule *r = gateway_table_lookup(
            cfg->gateways[i].kind, oc->last_error_http_status, oc->last_error_code);
        return r->verdict == GATEWAY_CONFIG_FAULT;
    }
    return false;
}

static enum alert_verdict from_outcome(const struct config *cfg, const struct kafka_record *rec,
                                       struct alert *a, char *why, size_t whylen)
{
    char err[512];

    base(a, rec, SLACK_ALERT_OUTCOME);
    enum event_verdict v = cloudevent_parse(rec->value, rec->len, &a->ev, err, sizeof(err));
    if (v == EVENT_OK)
        v = cancel_outcome_parse(&a->ev, &a->oc, err, sizeof(err));
    if (v != EVENT_OK) {
        unreadable_outcome(a, rec, v, err);
        return ALERT_POST;
    }
    if (!status_alerts(&cfg->alerts.slack, a->oc.status)) {
        snprintf(why, whylen, "status %s is not in alerts.slack.statuses", a->oc.status);
        alert_clear(a);
        return ALERT_SKIP;
    }
    if (config_fault_outcome(cfg, &a->oc)) {
        snprintf(why, whylen,
                 "a FAILED outcome after a configuration fault: its CONFIG_FAULT "
                 "dead letter is the alert");
        alert_clear(a);
        return ALERT_SKIP;
    }
    snprintf(a->dedup_key, sizeof(a->dedup_key), "outcome:%s", a->ev.id);
    const struct cancel_outcome *oc = &a->oc;
    a->view.reason = oc->status;
    a->view.request_id = oc->request_id;
    a->view.gateway = oc->gateway;
    a->view.payment_key = oc->payment_key;
    a->view.amount = oc->amount;
    a->view.currency = oc->currency;
    a->view.attempts = oc->attempts;
    a->view.error_code = oc->last_error_code;
    a->view.error_message = oc->last_error_message;
    a->view.error_http_status = oc->last_error_http_status;
    a->view.correlation_id = a->ev.correlationid;
    a->view.event_id = a->ev.id;
    set_at(a, oc->decided_at_ms > 0 ? oc->decided_at_ms : rec->timestamp_ms);
    return ALERT_POST;
}

/* What the dead letter's value (usually a CancelFailed) still tells, best
 * effort: the value may be anything, and only well-typed fields are used. */
static void from_value(struct alert *a, const struct kafka_record *rec)
{
    char err[256];

    if (cloudevent_parse(rec->value, rec->len, &a->ev, err, sizeof(err)) != EVENT_OK) {
        cloudevent_clear(&a->ev);
        return;
    }
    a->view.correlation_id = a->ev.correlationid;
    const json_t *d = a->ev.data;
    if (!json_is_object(d))
        return;
    const json_t *gw = json_object_get(d, "gateway"), *pk = json_object_get(d, "paymentKey");
    const json_t *amt = json_object_get(d, "amount"), *cur = json_object_get(d, "currency");
    if (json_is_string(gw))
        a->view.gateway = json_string_value(gw);
    if (json_is_string(pk))
        a->view.payment_key = json_string_value(pk);
    if (json_is_integer(amt) && json_integer_value(amt) >= 0 && json_is_string(cur)) {
        a->view.amount = json_integer_value(amt);
        a->view.currency = json_string_value(cur);
    }
    if (a->view.request_id == NULL) {
        const json_t *id = json_object_get(d, "requestId");
        set_request_id(a, json_is_string(id) ? json_string_value(id) : NULL);
    }
}

static enum alert_verdict from_dead_letter(const struct kafka_record *rec, const json_t *headers,
                                           struct alert *a, char *why, size_t whylen)
{
    base(a, rec, SLACK_ALERT_DEAD_LETTER);
    const char *reason = header(headers, DLQ_HEADER_REASON);
    if (reason != NULL &&
        (strcmp(reason, DLQ_REASON_FAILED) == 0 || strcmp(reason, DLQ_REASON_EXHAUSTED) == 0)) {
        snprintf(why, whylen, "a %s dead letter: its request's Outcome is the alert", reason);
        return ALERT_SKIP;
    }
    key_by_offset(a, rec);
    copy_text(a->reason, sizeof(a->reason), reason != NULL ? reason : "UNKNOWN");
    a->view.reason = a->reason;
    a->headers = headers != NULL ? json_deep_copy(headers) : NULL;
    set_request_id(a, header(a->headers, DLQ_HEADER_REQUEST_ID));
    const char *e = header(a->headers, DLQ_HEADER_ERROR);
    if (e != NULL) {
        copy_text(a->error, sizeof(a->error), e);
        a->view.error_message = a->error;
    }
    const char *ot = header(a->headers, DLQ_HEADER_ORIGINAL_TOPIC);
    if (ot != NULL) {
        const char *op = header(a->headers, DLQ_HEADER_ORIGINAL_PARTITION);
        const char *oo = header(a->headers, DLQ_HEADER_ORIGINAL_OFFSET);
        snprintf(a->origin, sizeof(a->origin), "%.200s [%.12s] offset %.24s", ot,
                 op != NULL ? op : "?", oo != NULL ? oo : "?");
        a->view.origin = a->origin;
    }
    a->view.by = header(a->headers, DLQ_HEADER_CONSUMER);
    const char *attempts = header(a->headers, DLQ_HEADER_ATTEMPTS);
    long long n;
    /* A header of the DLQ topic, which anyone may write to: atoi's overflow
     * is undefined behaviour. */
    if (attempts != NULL && bounds_parse_int(attempts, 0, 1000000, &n))
        a->view.attempts = (int)n;
    from_value(a, rec);
    int64_t at = -1;
    const char *dat = header(a->headers, DLQ_HEADER_AT);
    if (dat == NULL || !rfc3339_parse(dat, &at))
        at = rec->timestamp_ms;
    set_at(a, at);
    return ALERT_POST;
}

enum alert_verdict alert_from_record(const struct config *cfg, const struct kafka_record *rec,
                                     const json_t *headers, struct alert *out, char *why,
                                     size_t whylen)
{
    if (strcmp(rec->topic, cfg->topics.outcome.name) == 0)
        return from_outcome(cfg, rec, out, why, whylen);
    if (strcmp(rec->topic, cfg->topics.dlq.name) == 0)
        return from_dead_letter(rec, headers, out, why, whylen);
    memset(out, 0, sizeof(*out));
    snprintf(why, whylen, "not an alert topic");
    return ALERT_SKIP;
}

void alert_clear(struct alert *a)
{
    cloudevent_clear(&a->ev);
    cancel_outcome_clear(&a->oc);
    json_decref(a->headers);
    memset(a, 0, sizeof(*a));
}

static bool matches(const char *filter, const char *value)
{
    return filter == NULL || (value != NULL && strcmp(filter, value) == 0);
}

int alert_route(const struct config_slack *slack, const char *gateway, const char *reason)
{
    for (size_t i = 0; i < slack->nroutes; i++) {
        const struct config_slack_route *r = &slack->routes[i];
        if (matches(r->gateway, gateway) && matches(r->reason, reason))
            return (int)i;
    }
    return -1;
}

bool alert_window_init(struct alert_window *w, int threshold, int64_t window_ms)
{
    memset(w, 0, sizeof(*w));
    w->cap = threshold < 1 ? 1 : (size_t)threshold;
    w->window_ms = window_ms;
    w->times = calloc(w->cap, sizeof(*w->times));
    return w->times != NULL;
}

void alert_window_free(struct alert_window *w)
{
    free(w->times);
    memset(w, 0, sizeof(*w));
}

bool alert_window_full(struct alert_window *w, int64_t now_ms)
{
    /* Forget admissions that left the window, oldest first. */
    while (w->n > 0) {
        size_t oldest = (w->head + w->cap - w->n) % w->cap;
        if (now_ms - w->times[oldest] < w->window_ms)
            break;
        w->n--;
    }
    return w->n >= w->cap;
}

void alert_window_add(struct alert_window *w, int64_t now_ms)
{
    /* Only the last cap times matter: the oldest is overwritten. */
    w->times[w->head] = now_ms;
    w->head = (w->head + 1) % w->cap;
    if (w->n < w->cap)
        w->n++;
}
