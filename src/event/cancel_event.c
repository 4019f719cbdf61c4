/*
 * cancel_event: see cancel_event.h.
 *
 * Each data type is a table of field rules; one checker walks data against
 * its table (and refuses fields the table does not list), so the parsers and
 * the builders cannot disagree on a rule, and the tables read like the JSON
 * Schemas they mirror (schemas/events/).
 */
#include "event/cancel_event.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bounds.h"
#include "base/timeutil.h"

enum field_kind {
    F_REQUEST_ID,  /* ^[A-Za-z0-9._:-]{1,255}$ */
    F_NONEMPTY,    /* string, at least one character */
    F_PAYMENT_KEY, /* string, 1-255 characters, one URL path segment (bounds.h) */
    F_AMOUNT,      /* integer 1..CANCEL_AMOUNT_MAX */
    F_CURRENCY,    /* ^[A-Z]{3}$ */
    F_BOOL,
    F_REASON,      /* string, 1-200 characters */
    F_STRING,      /* any string */
    F_ATTEMPT,     /* integer >= 1 */
    F_COUNT,       /* integer >= 0 */
    F_TIME,        /* RFC 3339 date-time */
    F_STATUS,      /* one of CANCEL_STATUS_* */
    F_HTTP_STATUS, /* integer 100-599 */
    F_FAILURE,     /* object, failure_rules */
    F_LAST_ERROR,  /* object, last_error_rules */
};

struct field_rule {
    const char *name;
    enum field_kind kind;
    bool required;
};

#define NRULES(a) (sizeof(a) / sizeof((a)[0]))

static const struct field_rule failure_rules[] = {
    {"code", F_NONEMPTY, true},
    {"message", F_STRING, true},
};

static const struct field_rule last_error_rules[] = {
    {"code", F_NONEMPTY, true},
    {"message", F_STRING, true},
    {"httpStatus", F_HTTP_STATUS, false},
};

static const struct field_rule failed_rules[] = {
    {"requestId", F_REQUEST_ID, true},   {"gateway", F_NONEMPTY, true},
    {"paymentKey", F_PAYMENT_KEY, true}, {"amount", F_AMOUNT, true},
    {"currency", F_CURRENCY, true},      {"partial", F_BOOL, false},
    {"reason", F_REASON, true},          {"originTransactionId", F_NONEMPTY, false},
    {"failure", F_FAILURE, false},
};

static const struct field_rule retry_rules[] = {
    {"requestId", F_REQUEST_ID, true},
    {"attempt", F_ATTEMPT, true},
    {"dueAt", F_TIME, true},
    {"gateway", F_NONEMPTY, true},
    {"paymentKey", F_PAYMENT_KEY, true},
    {"amount", F_AMOUNT, true},
    {"currency", F_CURRENCY, true},
    {"partial", F_BOOL, true},
};

static const struct field_rule outcome_rules[] = {
    {"requestId", F_REQUEST_ID, true},   {"status", F_STATUS, true},
    {"attempts", F_COUNT, true},         {"gateway", F_NONEMPTY, true},
    {"paymentKey", F_PAYMENT_KEY, true}, {"amount", F_AMOUNT, true},
    {"currency", F_CURRENCY, true},      {"lastError", F_LAST_ERROR, false},
    {"decidedAt", F_TIME, true},
};

static const char *const final_statuses[] = {
    CANCEL_STATUS_SUCCEEDED, CANCEL_STATUS_ALREADY_REFUNDED,  CANCEL_STATUS_FAILED,
    CANCEL_STATUS_EXHAUSTED, CANCEL_STATUS_MANUALLY_RESOLVED,
};

/* Out of memory while copying an already valid event: there is no verdict
 * for that (dead-lettering a good message would be wrong), and a restarted
 * process gets the message again. Redis's zmalloc makes the same call. */
static char *xstrdup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

bool cancel_status_is_final(const char *status)
{
    for (size_t i = 0; status != NULL && i < NRULES(final_statuses); i++) {
        if (strcmp(status, final_statuses[i]) == 0)
            return true;
    }
    return false;
}

bool cancel_request_id_valid(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return n >= 1 && n <= CANCEL_REQUEST_ID_MAX;
}

/* Characters (code points) of a valid UTF-8 string, as JSON Schema's
 * minLength/maxLength count them. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    }
    return n;
}

/* JSON Schema counts 5.0 as an integer; so do we, as far as a double holds
 * integers exactly (2^53), to agree with the schemas. */
static bool json_integral(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(int64_t)d) {
            *out = (int64_t)d;
            return true;
        }
    }
    return false;
}

static bool check_object(const json_t *obj, const char *path, const struct field_rule *rules,
                         size_t nrules, char *err, size_t errlen);

/* Check one value against its rule; path is "data.amount" and the like. */
static bool check_value(const json_t *v, const char *path, enum field_kind kind, char *err,
                        size_t errlen)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    int64_t n = 0;

    switch (kind) {
    case F_REQUEST_ID:
        if (!cancel_request_id_valid(s)) {
            snprintf(err, errlen, "%s must be 1-255 characters of [A-Za-z0-9._:-]", path);
            return false;
        }
        return true;
    case F_NONEMPTY:
        if (s == NULL || *s == '\0') {
            snprintf(err, errlen, "%s must be a non-empty string", path);
            return false;
        }
        return true;
    case F_PAYMENT_KEY: {
        char why[96];
        if (s == NULL || *s == '\0' || utf8_chars(s) > CANCEL_PAYMENT_KEY_MAX) {
            snprintf(err, errlen, "%s must be a string of 1-255 characters", path);
            return false;
        }
        /* It becomes a segment of the refund URL's path (gateway.c). */
        if (!bounds_path_segment_ok(s, why, sizeof(why))) {
            snprintf(err, errlen, "%s %s: it must be usable as one URL path segment", path, why);
            return false;
        }
        return true;
    }
    case F_REASON:
        if (s == NULL || *s == '\0' || utf8_chars(s) > CANCEL_REASON_MAX) {
            snprintf(err, errlen, "%s must be a string of 1-200 characters", path);
            return false;
        }
        return true;
    case F_STRING:
        if (s == NULL) {
            snprintf(err, errlen, "%s must be a string", path);
            return false;
        }
        return true;
    case F_CURRENCY:
        if (s == NULL || strlen(s) != 3 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' ||
            s[2] < 'A' || s[2] > 'Z') {
            snprintf(err, errlen, "%s must be an ISO 4217 code of 3 upper-case letters", path);
            return false;
        }
        return true;
    case F_BOOL:
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "%s must be a boolean", path);
            return false;
        }
        return true;
    case F_AMOUNT:
        if (!json_integral(v, &n) || n <= 0 || n > CANCEL_AMOUNT_MAX) {
            snprintf(err, errlen, "%s must be an integer from 1 to 2^53-1 (minor units)", path);
            return false;
        }
        return true;
    case F_ATTEMPT:
    case F_COUNT: {
        int64_t min = kind == F_ATTEMPT ? 1 : 0;
        if (!json_integral(v, &n) || n < min || n > INT_MAX) {
            snprintf(err, errlen, "%s must be an integer >= %lld", path, (long long)min);
            return false;
        }
        return true;
    }
    case F_HTTP_STATUS:
        if (!json_integral(v, &n) || n < 100 || n > 599) {
            snprintf(err, errlen, "%s must be an integer from 100 to 599", path);
            return false;
        }
        return true;
    case F_TIME:
        if (s == NULL || !rfc3339_parse(s, &n)) {
            snprintf(err, errlen, "%s must be an RFC 3339 date-time", path);
            return false;
        }
        return true;
    case F_STATUS:
        if (!cancel_status_is_final(s)) {
            snprintf(err, errlen,
                     "%s must be one of SUCCEEDED, ALREADY_REFUNDED, FAILED, EXHAUSTED, "
                     "MANUALLY_RESOLVED",
                     path);
            return false;
        }
        return true;
    case F_FAILURE:
        return check_object(v, path, failure_rules, NRULES(failure_rules), err, errlen);
    case F_LAST_ERROR:
        return check_object(v, path, last_error_rules, NRULES(last_error_rules), err, errlen);
    }
    snprintf(err, errlen, "%s: unknown rule", path);
    return false;
}

/* Check obj against rules: required members present, every member valid, no
 * member the rules do not list. */
static bool check_object(const json_t *obj, const char *path, const struct field_rule *rules,
                         size_t nrules, char *err, size_t errlen)
{
    char sub[128];
    const char *key;
    json_t *v;

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "%s must be a JSON object", path);
        return false;
    }
    /* Unknown members first: a misspelt optional field explains a "missing"
     * one better than the other way round. */
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t i = 0;
        while (i < nrules && strcmp(rules[i].name, key) != 0)
            i++;
        if (i == nrules) {
            snprintf(err, errlen, "%s has an unknown field \"%.64s\"", path, key);
            return false;
        }
    }
    for (size_t i = 0; i < nrules; i++) {
        snprintf(sub, sizeof(sub), "%s.%s", path, rules[i].name);
        v = json_object_get(obj, rules[i].name);
        if (v == NULL) {
            if (rules[i].required) {
                snprintf(err, errlen, "%s is required", sub);
                return false;
            }
            continue;
        }
        if (!check_value(v, sub, rules[i].kind, err, errlen))
            return false;
    }
    return true;
}

/* Envelope checks shared by the three parsers, then the data table, then
 * subject == requestId (JSON Schema cannot compare two fields, so this one
 * rule lives only here). */
static enum event_verdict check_event(const struct cloudevent *ev, const char *type,
                                      bool need_subject_and_time, const struct field_rule *rules,
                                      size_t nrules, char *err, size_t errlen)
{
    if (ev->type == NULL || strcmp(ev->type, type) != 0) {
        snprintf(err, errlen, "attribute \"type\" must be \"%s\", got \"%.100s\"", type,
                 ev->type != NULL ? ev->type : "");
        return EVENT_SCHEMA_VIOLATION;
    }
    if (ev->datacontenttype != NULL && strcmp(ev->datacontenttype, CLOUDEVENT_DATA_JSON) != 0) {
        snprintf(err, errlen, "attribute \"datacontenttype\" must be \"application/json\"");
        return EVENT_SCHEMA_VIOLATION;
    }
    if (need_subject_and_time && (ev->subject == NULL || ev->time == NULL)) {
        snprintf(err, errlen, "missing required attribute \"%s\"",
                 ev->subject == NULL ? "subject" : "time");
        return EVENT_SCHEMA_VIOLATION;
    }
    if (ev->data == NULL) {
        snprintf(err, errlen, "missing required attribute \"data\"");
        return EVENT_SCHEMA_VIOLATION;
    }
    if (!check_object(ev->data, "data", rules, nrules, err, errlen))
        return EVENT_SCHEMA_VIOLATION;
    const char *rid = json_string_value(json_object_get(ev->data, "requestId"));
    if (ev->subject != NULL && strcmp(ev->subject, rid) != 0) {
        snprintf(err, errlen, "attribute \"subject\" must equal data.requestId");
        return EVENT_SCHEMA_VIOLATION;
    }
    return EVENT_OK;
}

static char *dup_member(const json_t *obj, const char *name)
{
    return xstrdup(json_string_value(json_object_get(obj, name)));
}

static int64_t int_member(const json_t *obj, const char *name)
{
    int64_t n = 0;
    const json_t *v = json_object_get(obj, name);
    if (v != NULL && !json_integral(v, &n))
        n = 0;
    return n;
}

static int64_t time_member(const json_t *obj, const char *name)
{
    int64_t ms = 0;
    if (!rfc3339_parse(json_string_value(json_object_get(obj, name)), &ms))
        ms = 0; /* not reached: checked before */
    return ms;
}

enum event_verdict cancel_failed_parse(const struct cloudevent *ev, struct cancel_failed *out,
                                       char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    enum event_verdict v = check_event(ev, CANCEL_EVENT_TYPE_FAILED, false, failed_rules,
                                       NRULES(failed_rules), err, errlen);
    if (v != EVENT_OK)
        return v;
    const json_t *d = ev->data, *failure = json_object_get(d, "failure");
    out->request_id = dup_member(d, "requestId");
    out->gateway = dup_member(d, "gateway");
    out->payment_key = dup_member(d, "paymentKey");
    out->currency = dup_member(d, "currency");
    out->reason = dup_member(d, "reason");
    out->origin_transaction_id = dup_member(d, "originTransactionId");
    out->amount = int_member(d, "amount");
    out->partial = json_is_true(json_object_get(d, "partial"));
    if (failure != NULL) {
        out->failure_code = dup_member(failure, "code");
        out->failure_message = dup_member(failure, "message");
    }
    return EVENT_OK;
}

void cancel_failed_clear(struct cancel_failed *cf)
{
    if (cf == NULL)
        return;
    free(cf->request_id);
    free(cf->gateway);
    free(cf->payment_key);
    free(cf->currency);
    free(cf->reason);
    free(cf->origin_transaction_id);
    free(cf->failure_code);
    free(cf->failure_message);
    memset(cf, 0, sizeof(*cf));
}

static bool str_eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

bool cancel_failed_same_money(const struct cancel_failed *a, const struct cancel_failed *b)
{
    return str_eq(a->gateway, b->gateway) && str_eq(a->payment_key, b->payment_key) &&
           a->amount == b->amount && str_eq(a->currency, b->currency) && a->partial == b->partial;
}

void cancel_failed_fields(const struct cancel_failed *cf, struct cancel_request_fields *out)
{
    out->request_id = cf->request_id;
    out->gateway = cf->gateway;
    out->payment_key = cf->payment_key;
    out->currency = cf->currency;
    out->amount = cf->amount;
    out->partial = cf->partial;
}

/* Set obj[key] = s unless s is NULL. False if s is not valid UTF-8 or memory
 * ran out (json_string returns NULL for both). */
static bool set_str(json_t *obj, const char *key, const char *s)
{
    return s == NULL || json_object_set_new(obj, key, json_string(s)) == 0;
}

static bool set_int(json_t *obj, const char *key, int64_t n)
{
    return json_object_set_new(obj, key, json_integer(n)) == 0;
}

static bool set_time(json_t *obj, const char *key, int64_t ms)
{
    char buf[RFC3339_MS_LEN];
    return rfc3339_format(ms, buf, sizeof(buf)) && set_str(obj, key, buf);
}

/* The last step of every builder: check what was built by the parse rules.
 * Takes obj; returns it, or NULL with err set. */
static json_t *finish(json_t *obj, bool built, const char *what, const struct field_rule *rules,
                      size_t nrules, char *err, size_t errlen)
{
    char why[256];
    if (!built) {
        snprintf(err, errlen,
                 "cannot build %s data: a string is not valid UTF-8, a time is out of range, "
                 "or out of memory",
                 what);
        json_decref(obj);
        return NULL;
    }
    if (!check_object(obj, "data", rules, nrules, why, sizeof(why))) {
        snprintf(err, errlen, "cannot build %s data: %s", what, why);
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* The request fields in contract order; partial only where the contract has it. */
static bool set_request(json_t *d, const struct cancel_request_fields *req)
{
    return set_str(d, "gateway", req->gateway) && set_str(d, "paymentKey", req->payment_key) &&
           set_int(d, "amount", req->amount) && set_str(d, "currency", req->currency);
}

json_t *cancel_failed_data(const struct cancel_failed *cf, char *err, size_t errlen)
{
    json_t *d = json_object();
    bool ok = d != NULL && set_str(d, "requestId", cf->request_id) &&
              set_str(d, "gateway", cf->gateway) && set_str(d, "paymentKey", cf->payment_key) &&
              set_int(d, "amount", cf->amount) && set_str(d, "currency", cf->currency) &&
              (!cf->partial || json_object_set_new(d, "partial", json_true()) == 0) &&
              set_str(d, "reason", cf->reason) &&
              set_str(d, "originTransactionId", cf->origin_transaction_id);
    if (ok && (cf->failure_code != NULL || cf->failure_message != NULL)) {
        json_t *f = json_object();
        ok = f != NULL && json_object_set_new(d, "failure", f) == 0 &&
             set_str(f, "code", cf->failure_code) &&
             set_str(f, "message", cf->failure_message != NULL ? cf->failure_message : "");
    }
    return finish(d, ok, "CancelFailed", failed_rules, NRULES(failed_rules), err, errlen);
}

json_t *retry_scheduled_data(const struct cancel_request_fields *req, int attempt,
                             int64_t due_at_ms, char *err, size_t errlen)
{
    json_t *d = json_object();
    bool ok = d != NULL && set_str(d, "requestId", req->request_id) &&
              set_int(d, "attempt", attempt) && set_time(d, "dueAt", due_at_ms) &&
              set_request(d, req) &&
              json_object_set_new(d, "partial", json_boolean(req->partial)) == 0;
    return finish(d, ok, "RetryScheduled", retry_rules, NRULES(retry_rules), err, errlen);
}

json_t *outcome_data(const struct cancel_request_fields *req, const char *status, int attempts,
                     const struct cancel_last_error *last_error, int64_t decided_at_ms, char *err,
                     size_t errlen)
{
    json_t *d = json_object();
    bool ok = d != NULL && set_str(d, "requestId", req->request_id) &&
              set_str(d, "status", status) && set_int(d, "attempts", attempts) &&
              set_request(d, req);
    if (ok && last_error != NULL) {
        json_t *e = json_object();
        ok = e != NULL && json_object_set_new(d, "lastError", e) == 0 &&
             set_str(e, "code", last_error->code) &&
             set_str(e, "message", last_error->message != NULL ? last_error->message : "") &&
             (last_error->http_status == 0 || set_int(e, "httpStatus", last_error->http_status));
    }
    ok = ok && set_time(d, "decidedAt", decided_at_ms);
    return finish(d, ok, "Outcome", outcome_rules, NRULES(outcome_rules), err, errlen);
}

enum event_verdict retry_scheduled_parse(const struct cloudevent *ev, struct retry_scheduled *out,
                                         char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    enum event_verdict v = check_event(ev, CANCEL_EVENT_TYPE_RETRY_SCHEDULED, true, retry_rules,
                                       NRULES(retry_rules), err, errlen);
    if (v != EVENT_OK)
        return v;
    const json_t *d = ev->data;
    out->request_id = dup_member(d, "requestId");
    out->gateway = dup_member(d, "gateway");
    out->payment_key = dup_member(d, "paymentKey");
    out->currency = dup_member(d, "currency");
    out->amount = int_member(d, "amount");
    out->partial = json_is_true(json_object_get(d, "partial"));
    out->attempt = (int)int_member(d, "attempt");
    out->due_at_ms = time_member(d, "dueAt");
    return EVENT_OK;
}

void retry_scheduled_clear(struct retry_scheduled *rs)
{
    if (rs == NULL)
        return;
    free(rs->request_id);
    free(rs->gateway);
    free(rs->payment_key);
    free(rs->currency);
    memset(rs, 0, sizeof(*rs));
}

enum event_verdict cancel_outcome_parse(const struct cloudevent *ev, struct cancel_outcome *out,
                                        char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    enum event_verdict v = check_event(ev, CANCEL_EVENT_TYPE_OUTCOME, true, outcome_rules,
                                       NRULES(outcome_rules), err, errlen);
    if (v != EVENT_OK)
        return v;
    const json_t *d = ev->data, *le = json_object_get(d, "lastError");
    out->request_id = dup_member(d, "requestId");
    out->gateway = dup_member(d, "gateway");
    out->payment_key = dup_member(d, "paymentKey");
    out->currency = dup_member(d, "currency");
    out->amount = int_member(d, "amount");
    out->status = dup_member(d, "status");
    out->attempts = (int)int_member(d, "attempts");
    if (le != NULL) {
        out->last_error_code = dup_member(le, "code");
        out->last_error_message = dup_member(le, "message");
        out->last_error_http_status = (int)int_member(le, "httpStatus");
    }
    out->decided_at_ms = time_member(d, "decidedAt");
    return EVENT_OK;
}

void cancel_outcome_clear(struct cancel_outcome *oc)
{
    if (oc == NULL)
        return;
    free(oc->request_id);
    free(oc->gateway);
    free(oc->payment_key);
    free(oc->currency);
    free(oc->status);
    free(oc->last_error_code);
    free(oc->last_error_message);
    memset(oc, 0, sizeof(*oc));
}
