/*
 * timeutil: RFC 3339 timestamps (the clock itself is clock.h).
 *
 * Every timestamp the pipeline writes (event time, dueAt, decidedAt, dlq.at)
 * is UTC with milliseconds, "2026-11-20T09:15:02.123Z", so that strings sort
 * like the instants they name. Parsing accepts any RFC 3339 date-time (an
 * offset, any number of fraction digits, lower-case t/z) because upstream
 * services write what their own libraries write.
 */
#ifndef CR_TIMEUTIL_H
#define CR_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest string rfc3339_format() writes, NUL included
 * ("YYYY-MM-DDTHH:MM:SS.mmmZ"). */
#define RFC3339_MS_LEN 25

/* Parse an RFC 3339 date-time (section 5.6: full-date "T" full-time) into
 * milliseconds since the epoch, UTC. Fraction digits past the third are
 * truncated; a leap second (:60) counts as the first second of the next
 * minute. Years 0000-9999 only. Returns false on anything else, and then
 * leaves *ms_since_epoch untouched. */
bool rfc3339_parse(const char *s, int64_t *ms_since_epoch) __attribute__((warn_unused_result));

/* Write ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (at least RFC3339_MS_LEN
 * bytes). Returns false, with buf set to "" when it has room, if buflen is too
 * small or the instant is outside years 0000-9999. */
bool rfc3339_format(int64_t ms, char *buf, size_t buflen);

#endif
