/*
 * log: structured logs, one JSON object per line on stderr.
 *
 * Stable keys: time, level, service, message, and where known requestId,
 * correlationId, topic, partition, offset, plus free-form fields. Safe to call
 * from any thread (librdkafka logs from its own threads): each line is written
 * with a single write(2).
 *
 * Every line is passed through redact.h (the process's set of secrets and
 * the pattern rules) before it is written; still, do not hand secrets to
 * these functions: the redaction is the net, not the plan.
 */
#ifndef CR_LOG_H
#define CR_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Optional context of a log line; every member may be left zero/NULL.
 * partition < 0 or offset < 0 means "not set" (use LOG_CTX_INIT). */
struct log_ctx {
    const char *request_id;
    const char *correlation_id;
    const char *topic;
    int32_t partition;
    int64_t offset;
    json_t *fields; /* borrowed object: extra keys merged into the line */
};

#define LOG_CTX_INIT                                                                               \
    {                                                                                              \
        NULL, NULL, NULL, -1, -1, NULL                                                             \
    }

/* Set the service name printed on every line (borrowed, must outlive logging)
 * and the minimum level. May be called again, e.g. after a config reload. */
void log_init(const char *service, enum log_level min_level);
void log_set_level(enum log_level min_level);
bool log_enabled(enum log_level level);

/* Parse "debug", "info", "warn" or "error". Returns false on anything else. */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Emit one line. ctx may be NULL. */
void log_emit(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Map a syslog level (librdkafka's log callback) to ours and emit it with a
 * "component":"librdkafka" field. */
void log_syslog_level(int syslog_level, const char *facility, const char *client,
                      const char *message);

#define log_debug(...) log_emit(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)  log_emit(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...)  log_emit(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_emit(LOG_ERROR, NULL, __VA_ARGS__)

#endif
