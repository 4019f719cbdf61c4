/*
 * log: JSON-lines logger. See log.h.
 */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/redact.h"
#include "base/timeutil.h"

/* Written once at start-up (before threads exist) and read afterwards; not
 * mutable shared state in the sense of the house rules. */
static const char *log_service = "cancel-retry";
static volatile int log_min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* syslog(3) severities as librdkafka passes them. <syslog.h> is deliberately
 * not included: it #defines LOG_DEBUG and LOG_INFO, which would silently
 * replace our enum log_level constants of the same names in this file. */
enum { SYSLOG_ERR = 3, SYSLOG_WARNING = 4, SYSLOG_INFO = 6 };

void log_init(const char *service, enum log_level min_level)
{
    if (service != NULL)
        log_service = service;
    log_min_level = min_level;
}

void log_set_level(enum log_level min_level)
{
    log_min_level = min_level;
}

bool log_enabled(enum log_level level)
{
    return (int)level >= log_min_level;
}

bool log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (s != NULL && strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    if (s != NULL && strcasecmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return true;
    }
    return false;
}

const char *log_level_name(enum log_level level)
{
    if ((int)level < 0 || (size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "info";
    return level_names[level];
}

static void write_line(json_t *obj)
{
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (line == NULL)
        return;
    size_t len = strlen(line);
    /* One write(2) of line + '\n' keeps lines from different threads whole. */
    char *buf = malloc(len + 2);
    if (buf != NULL) {
        memcpy(buf, line, len);
        buf[len] = '\n';
        size_t off = 0, total = len + 1;
        while (off < total) {
            ssize_t n = write(STDERR_FILENO, buf + off, total - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        free(buf);
    }
    free(line);
}

static void emit(enum log_level level, const struct log_ctx *ctx, const char *component,
                 const char *message)
{
    char now[RFC3339_MS_LEN];
    json_t *obj = json_object();

    if (obj == NULL)
        return;
    /* RFC 3339 UTC with milliseconds: 2026-11-20T09:15:02.123Z */
    (void)rfc3339_format(wall_ms(), now, sizeof(now));
    json_object_set_new(obj, "time", json_string(now));
    json_object_set_new(obj, "level", json_string(log_level_name(level)));
    json_object_set_new(obj, "service", json_string(log_service));
    /* json_string() refuses invalid UTF-8; never lose a line because of it. */
    json_t *msg = json_string(message);
    if (msg == NULL)
        msg = json_string("(message was not valid UTF-8)");
    json_object_set_new(obj, "message", msg);
    if (component != NULL)
        json_object_set_new(obj, "component", json_string(component));
    if (ctx != NULL) {
        if (ctx->request_id != NULL)
            json_object_set_new(obj, "requestId", json_string(ctx->request_id));
        if (ctx->correlation_id != NULL)
            json_object_set_new(obj, "correlationId", json_string(ctx->correlation_id));
        if (ctx->topic != NULL)
            json_object_set_new(obj, "topic", json_string(ctx->topic));
        if (ctx->partition >= 0)
            json_object_set_new(obj, "partition", json_integer(ctx->partition));
        if (ctx->offset >= 0)
            json_object_set_new(obj, "offset", json_integer(ctx->offset));
        if (ctx->fields != NULL && json_is_object(ctx->fields)) {
            json_t *fields = json_deep_copy(ctx->fields);
            if (fields != NULL)
                json_object_update_missing(obj, fields);
            json_decref(fields);
        }
    }
    /* The last moment before the line leaves the process: whatever a caller
     * put in the message or the fields, the config's secrets and anything
     * that looks like a credential are masked here. The fields are copied
     * first; they are the caller's. */
    redact_process_json(obj);
    write_line(obj);
    json_decref(obj);
}

void log_emit(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
    char message[2048];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    emit(level, ctx, NULL, message);
}

void log_syslog_level(int syslog_level, const char *facility, const char *client,
                      const char *message)
{
    enum log_level level;
    char text[2048];

    if (syslog_level <= SYSLOG_ERR)
        level = LOG_ERROR;
    else if (syslog_level == SYSLOG_WARNING)
        level = LOG_WARN;
    else if (syslog_level <= SYSLOG_INFO)
        level = LOG_INFO;
    else
        level = LOG_DEBUG;
    if (!log_enabled(level))
        return;
    snprintf(text, sizeof(text), "%s: %s", facility ? facility : "-", message ? message : "");
    struct log_ctx ctx = LOG_CTX_INIT;
    json_t *fields = json_object();
    if (fields != NULL && client != NULL)
        json_object_set_new(fields, "client", json_string(client));
    ctx.fields = fields;
    emit(level, &ctx, "librdkafka", text);
    json_decref(fields);
}
