/*
 * cloudevent: the CloudEvents 1.0 envelope of every event of the pipeline
 * (structured JSON mode, UTF-8; see docs/contracts.md "Envelope" and
 * schemas/events/cloudevent.schema.json).
 *
 * Parsing checks the envelope only; what is inside "data" is the business of
 * cancel_event.h. The verdict tells a consumer what to do with a bad message:
 * both PARSE_ERROR and SCHEMA_VIOLATION are permanent for that message and
 * name the dlq.reason it is dead-lettered with.
 */
#ifndef CR_CLOUDEVENT_H
#define CR_CLOUDEVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Kafka content-type header value of a structured-mode event. */
#define CLOUDEVENT_CONTENT_TYPE "application/cloudevents+json"
#define CLOUDEVENT_SPECVERSION  "1.0"
#define CLOUDEVENT_DATA_JSON    "application/json"
/* A lower-case UUID string and its NUL. */
#define CLOUDEVENT_ID_LEN 37

enum event_verdict {
    EVENT_OK = 0,
    EVENT_PARSE_ERROR,      /* not JSON, not UTF-8, not an object, duplicate keys */
    EVENT_SCHEMA_VIOLATION, /* well-formed JSON that breaks the contract */
};

/* A parsed envelope. Every member is owned by the struct and released by
 * cloudevent_clear(); optional attributes that were absent are NULL. */
struct cloudevent {
    char *id;
    char *source;
    char *type;
    char *time;      /* as sent; NULL when absent */
    int64_t time_ms; /* time in ms since the epoch; 0 when time is NULL */
    char *subject;
    char *datacontenttype;
    char *correlationid; /* extension attribute, propagated everywhere */
    json_t *data;        /* one reference owned; NULL when absent */
};

/* "OK", "PARSE_ERROR" or "SCHEMA_VIOLATION": the last two are also the
 * dlq.reason values of dlq.h. Static strings. */
const char *event_verdict_name(enum event_verdict v);

/* Parse len bytes (need not be NUL-terminated) as a structured-mode event and
 * check the envelope: specversion "1.0"; id, source and type non-empty
 * strings; time, when present, RFC 3339; subject, datacontenttype,
 * correlationid, dataschema, when present, non-empty strings; other
 * (extension) attribute names lower-case letters and digits with string,
 * integer or boolean values. On EVENT_OK fills *ev (the caller clears it);
 * otherwise *ev is left empty and err names the attribute at fault. */
enum event_verdict cloudevent_parse(const void *bytes, size_t len, struct cloudevent *ev, char *err,
                                    size_t errlen);

/* Release what ev owns and zero it. Safe on a zeroed or already cleared ev. */
void cloudevent_clear(struct cloudevent *ev);

/* Write a new random (v4) UUID, lower case, into buf. */
void cloudevent_new_id(char buf[CLOUDEVENT_ID_LEN]);

/* Serialize an event: a new UUID v4 id, time now (UTC, milliseconds),
 * datacontenttype application/json. type and source are required; subject and
 * correlationid may be NULL (then omitted). data is borrowed (a reference is
 * taken for the duration of the call) and must be a JSON object. On success
 * *out_json is a malloc'ed compact JSON string the caller frees. */
bool cloudevent_build(const char *type, const char *source, const char *subject,
                      const char *correlationid, json_t *data, char **out_json, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

/* The same with an explicit id and time: for tests, and for callers that must
 * know the id before the event exists (the outbox stores it). */
bool cloudevent_build_at(const char *type, const char *source, const char *subject,
                         const char *correlationid, json_t *data, const char *id, int64_t time_ms,
                         char **out_json, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
