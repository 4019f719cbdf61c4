/*
 * duration: "500ms", "5s", "30m", "2h", "15d" <-> milliseconds.
 */
#ifndef CR_DURATION_H
#define CR_DURATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a duration: a non-negative integer or decimal number followed by one
 * of the units ms, s, m, h, d (no unit is an error: "30" is ambiguous).
 * Several terms may be concatenated ("1h30m"). On success stores milliseconds
 * in *out_ms and returns true; on failure writes a reason into err. */
bool duration_parse(const char *s, int64_t *out_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Format ms compactly ("1500ms" -> "1.5s", 90000 -> "1m30s") into buf.
 * Returns buf. */
char *duration_format(int64_t ms, char *buf, size_t buflen);

#endif
