/*
 * i64: see i64.h.
 */
#include "base/i64.h"

#include <inttypes.h>
#include <stdio.h>

const char *i64_text(char *buf, size_t buflen, int64_t v)
{
    snprintf(buf, buflen, "%" PRId64, v);
    return buf;
}
