/*
 * bounds: range and shape checks of values that come from outside the
 * process (Kafka metadata, event fields, gateway answers, headers), made
 * where they enter, so that no hostile number reaches SQL or arithmetic.
 *
 * Why each bound exists:
 * - Instants: PostgreSQL's timestamptz ends in 294276 AD and our RFC 3339
 *   writer in 9999; a Kafka CreateTime is any int64 the producer chose
 *   (9200000000000000000 ms is accepted by the broker). An instant before
 *   2000 or more than a day ahead of our clock is a broken producer clock,
 *   and trusting it would either fail the insert (SQLSTATE 22008) or make a
 *   request's idempotency key look decades old.
 * - Sums of amounts read from a gateway saturate instead of overflowing.
 * - A URL path segment built from an event field must stay one segment.
 */
#ifndef CR_BOUNDS_H
#define CR_BOUNDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2000-01-01T00:00:00Z in ms since the epoch: no refund we handle is older. */
#define BOUNDS_TIME_MIN_MS 946684800000LL

/* How far ahead of our clock an instant from outside may be: clock skew
 * between hosts, generously. */
#define BOUNDS_TIME_MAX_AHEAD_MS (24LL * 3600 * 1000)

/* Is ms (an instant from outside: a Kafka timestamp, an event's time) within
 * [BOUNDS_TIME_MIN_MS, now_ms + BOUNDS_TIME_MAX_AHEAD_MS]? If not, writes
 * "<what> <value> is out of range: ..." to err (err may be NULL). */
bool bounds_check_time(const char *what, int64_t ms, int64_t now_ms, char *err, size_t errlen);

/* a + b, saturated at INT64_MIN / INT64_MAX instead of overflowing. */
int64_t bounds_add_sat(int64_t a, int64_t b);

/* a + b for a >= 0 offsets from a clock (now + delay): saturated at
 * INT64_MAX, and b < 0 counts as 0. */
int64_t bounds_after(int64_t now_ms, int64_t delay_ms);

/* Parse s, all of it, as a decimal integer within [lo, hi] (an optional
 * leading '-', no spaces, no '+'). False, *out untouched, on anything else,
 * overflow included. For text from outside (headers, answers) instead of
 * atoi(), whose overflow is undefined. */
bool bounds_parse_int(const char *s, long long lo, long long hi, long long *out);

/* Length of the valid UTF-8 sequence at s (avail bytes left, SIZE_MAX for a
 * NUL-terminated string), or 0 if it is not one: overlong forms, surrogates
 * and code points past U+10FFFF are invalid (RFC 3629). */
size_t bounds_utf8_len(const unsigned char *s, size_t avail);

/* Can s be one segment of a URL path, after percent-encoding? Refused: NULL
 * or "", "." and ".." (a client or server would collapse them and the request
 * would go to the parent path), control characters (C0, DEL, C1: they end up
 * in logs and, unencoded, in request lines) and invalid UTF-8. On false, why
 * (may be NULL) says which rule failed, without quoting s. */
bool bounds_path_segment_ok(const char *s, char *why, size_t whylen);

#endif
