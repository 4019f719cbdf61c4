/*
 * cloudevent: see cloudevent.h.
 */
#include "event/cloudevent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "base/clock.h"
#include "base/timeutil.h"

const char *event_verdict_name(enum event_verdict v)
{
    switch (v) {
    case EVENT_OK:
        return "OK";
    case EVENT_PARSE_ERROR:
        return "PARSE_ERROR";
    case EVENT_SCHEMA_VIOLATION:
        return "SCHEMA_VIOLATION";
    }
    return "UNKNOWN";
}

void cloudevent_clear(struct cloudevent *ev)
{
    if (ev == NULL)
        return;
    free(ev->id);
    free(ev->source);
    free(ev->type);
    free(ev->time);
    free(ev->subject);
    free(ev->datacontenttype);
    free(ev->correlationid);
    json_decref(ev->data);
    memset(ev, 0, sizeof(*ev));
}

/* CloudEvents 1.0: attribute names consist of lower-case ASCII letters and
 * digits. This also keeps out "data_base64": the pipeline only speaks JSON. */
static bool attribute_name_ok(const char *name)
{
    if (*name == '\0')
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    }
    return true;
}

/* JSON Schema counts 5.0 as an integer; agree with it (as far as a double
 * holds integers exactly). */
static bool real_is_integral(const json_t *v)
{
    double d = json_is_real(v) ? json_real_value(v) : 0.5;
    return d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(int64_t)d;
}

/* The string attributes the envelope knows, where they go in struct
 * cloudevent, and whether CloudEvents requires them. */
struct string_attr {
    const char *name;
    size_t offset;
    bool required;
};

static const struct string_attr string_attrs[] = {
    {"id", offsetof(struct cloudevent, id), true},
    {"source", offsetof(struct cloudevent, source), true},
    {"type", offsetof(struct cloudevent, type), true},
    {"time", offsetof(struct cloudevent, time), false},
    {"subject", offsetof(struct cloudevent, subject), false},
    {"datacontenttype", offsetof(struct cloudevent, datacontenttype), false},
    {"correlationid", offsetof(struct cloudevent, correlationid), false},
    /* checked like the others, not kept: nothing downstream reads it */
    {"dataschema", (size_t)-1, false},
};

static const struct string_attr *string_attr_find(const char *name)
{
    for (size_t i = 0; i < sizeof(string_attrs) / sizeof(string_attrs[0]); i++) {
        if (strcmp(string_attrs[i].name, name) == 0)
            return &string_attrs[i];
    }
    return NULL;
}

/* Check every attribute of root except data; fill ev's strings. */
static enum event_verdict check_attributes(json_t *root, struct cloudevent *ev, char *err,
                                           size_t errlen)
{
    const char *name;
    json_t *value;

    json_t *sv = json_object_get(root, "specversion");
    if (sv == NULL) {
        snprintf(err, errlen, "missing required attribute \"specversion\"");
        return EVENT_SCHEMA_VIOLATION;
    }
    if (!json_is_string(sv) || strcmp(json_string_value(sv), CLOUDEVENT_SPECVERSION) != 0) {
        snprintf(err, errlen, "attribute \"specversion\" must be the string \"1.0\"");
        return EVENT_SCHEMA_VIOLATION;
    }
    for (size_t i = 0; i < sizeof(string_attrs) / sizeof(string_attrs[0]); i++) {
        if (string_attrs[i].required && json_object_get(root, string_attrs[i].name) == NULL) {
            snprintf(err, errlen, "missing required attribute \"%s\"", string_attrs[i].name);
            return EVENT_SCHEMA_VIOLATION;
        }
    }

    json_object_foreach(root, name, value)
    {
        if (strcmp(name, "specversion") == 0 || strcmp(name, "data") == 0)
            continue;
        if (!attribute_name_ok(name)) {
            snprintf(err, errlen,
                     "attribute \"%.64s\": names must be lower-case letters and digits", name);
            return EVENT_SCHEMA_VIOLATION;
        }
        const struct string_attr *sa = string_attr_find(name);
        if (sa == NULL) {
            /* An extension attribute: CloudEvents types map to JSON strings,
             * integers and booleans; anything else is not an attribute. */
            if (!json_is_string(value) && !json_is_integer(value) && !json_is_boolean(value) &&
                !real_is_integral(value)) {
                snprintf(err, errlen,
                         "extension attribute \"%.64s\" must be a string, integer or boolean",
                         name);
                return EVENT_SCHEMA_VIOLATION;
            }
            continue;
        }
        if (!json_is_string(value) || json_string_length(value) == 0) {
            snprintf(err, errlen, "attribute \"%s\" must be a non-empty string", name);
            return EVENT_SCHEMA_VIOLATION;
        }
        if (strcmp(name, "time") == 0 && !rfc3339_parse(json_string_value(value), &ev->time_ms)) {
            snprintf(err, errlen, "attribute \"time\" must be an RFC 3339 date-time");
            return EVENT_SCHEMA_VIOLATION;
        }
        if (sa->offset == (size_t)-1)
            continue;
        char **slot = (char **)((char *)ev + sa->offset);
        *slot = strdup(json_string_value(value));
        /* No verdict fits running out of memory on a good event (dead-lettering
         * it would be wrong); a restarted process gets the message again. */
        if (*slot == NULL)
            abort();
    }
    return EVENT_OK;
}

enum event_verdict cloudevent_parse(const void *bytes, size_t len, struct cloudevent *ev, char *err,
                                    size_t errlen)
{
    json_error_t jerr;
    enum event_verdict verdict;

    memset(ev, 0, sizeof(*ev));
    /* jansson rejects invalid UTF-8 and \u0000; duplicate keys are refused
     * because two readers could otherwise see two different events. */
    json_t *root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "event is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return EVENT_PARSE_ERROR;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "event is not a JSON object");
        verdict = EVENT_PARSE_ERROR;
        goto out;
    }
    verdict = check_attributes(root, ev, err, errlen);
    if (verdict != EVENT_OK)
        goto out;
    ev->data = json_incref(json_object_get(root, "data"));

out:
    json_decref(root);
    if (verdict != EVENT_OK)
        cloudevent_clear(ev);
    return verdict;
}

void cloudevent_new_id(char buf[CLOUDEVENT_ID_LEN])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, buf);
}

bool cloudevent_build(const char *type, const char *source, const char *subject,
                      const char *correlationid, json_t *data, char **out_json, char *err,
                      size_t errlen)
{
    char id[CLOUDEVENT_ID_LEN];
    cloudevent_new_id(id);
    return cloudevent_build_at(type, source, subject, correlationid, data, id, wall_ms(), out_json,
                               err, errlen);
}

static bool nonempty(const char *s)
{
    return s != NULL && *s != '\0';
}

bool cloudevent_build_at(const char *type, const char *source, const char *subject,
                         const char *correlationid, json_t *data, const char *id, int64_t time_ms,
                         char **out_json, char *err, size_t errlen)
{
    char when[RFC3339_MS_LEN];
    bool ok = false;
    json_t *ev = NULL;

    *out_json = NULL;
    if (!nonempty(type) || !nonempty(source) || !nonempty(id)) {
        snprintf(err, errlen, "cannot build event: type, source and id must be non-empty");
        return false;
    }
    if ((subject != NULL && *subject == '\0') ||
        (correlationid != NULL && *correlationid == '\0')) {
        snprintf(err, errlen,
                 "cannot build event: subject and correlationid must be NULL or "
                 "non-empty");
        return false;
    }
    if (!json_is_object(data)) {
        snprintf(err, errlen, "cannot build event: data must be a JSON object");
        return false;
    }
    if (!rfc3339_format(time_ms, when, sizeof(when))) {
        snprintf(err, errlen, "cannot build event: time %lld is out of range", (long long)time_ms);
        return false;
    }

    /* jansson keeps insertion order, so the output reads like docs/contracts.md
     * "Envelope". */
    ev = json_object();
    if (ev == NULL || json_object_set_new(ev, "specversion", json_string(CLOUDEVENT_SPECVERSION)) ||
        json_object_set_new(ev, "id", json_string(id)) ||
        json_object_set_new(ev, "source", json_string(source)) ||
        json_object_set_new(ev, "type", json_string(type)) ||
        json_object_set_new(ev, "time", json_string(when)) ||
        (subject != NULL && json_object_set_new(ev, "subject", json_string(subject))) ||
        json_object_set_new(ev, "datacontenttype", json_string(CLOUDEVENT_DATA_JSON)) ||
        (correlationid != NULL &&
         json_object_set_new(ev, "correlationid", json_string(correlationid))) ||
        json_object_set(ev, "data", data)) {
        /* json_string() returns NULL for invalid UTF-8 too, not only when out of memory */
        snprintf(err, errlen, "cannot build event: attribute is not valid UTF-8, or out of memory");
        goto out;
    }
    *out_json = json_dumps(ev, JSON_COMPACT);
    if (*out_json == NULL) {
        snprintf(err, errlen, "could not serialize event: out of memory");
        goto out;
    }
    ok = true;
out:
    json_decref(ev);
    return ok;
}
