/*
 * bounds: see bounds.h.
 */
#include "base/bounds.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"

bool bounds_check_time(const char *what, int64_t ms, int64_t now_ms, char *err, size_t errlen)
{
    int64_t max = bounds_after(now_ms, BOUNDS_TIME_MAX_AHEAD_MS);
    if (ms >= BOUNDS_TIME_MIN_MS && ms <= max)
        return true;
    if (err != NULL && errlen > 0) {
        char when[RFC3339_MS_LEN];
        /* Name the instant when it can be written, else the raw number. */
        if (rfc3339_format(ms, when, sizeof(when)))
            snprintf(err, errlen,
                     "%s %s is out of range: accepted are 2000-01-01T00:00:00Z to one day "
                     "after now (a producer's clock is wrong)",
                     what, when);
        else
            snprintf(err, errlen,
                     "%s %lld ms is out of range: accepted are 2000-01-01T00:00:00Z to one day "
                     "after now (a producer's clock is wrong)",
                     what, (long long)ms);
    }
    return false;
}

int64_t bounds_add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

int64_t bounds_after(int64_t now_ms, int64_t delay_ms)
{
    return bounds_add_sat(now_ms, delay_ms > 0 ? delay_ms : 0);
}

bool bounds_parse_int(const char *s, long long lo, long long hi, long long *out)
{
    if (s == NULL)
        return false;
    const char *p = s[0] == '-' ? s + 1 : s;
    if (*p < '0' || *p > '9')
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || end == NULL || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

size_t bounds_utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned long cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at a NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

static bool fail(char *why, size_t whylen, const char *text)
{
    if (why != NULL && whylen > 0)
        snprintf(why, whylen, "%s", text);
    return false;
}

bool bounds_path_segment_ok(const char *s, char *why, size_t whylen)
{
    if (s == NULL || s[0] == '\0')
        return fail(why, whylen, "is empty");
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return fail(why, whylen, "is \".\" or \"..\", which a URL path collapses");
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t n = bounds_utf8_len(p, SIZE_MAX); /* NUL-terminated */
        if (n == 0)
            return fail(why, whylen, "is not valid UTF-8");
        /* C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8. */
        if ((n == 1 && (*p < 0x20 || *p == 0x7F)) || (n == 2 && p[0] == 0xC2 && p[1] < 0xA0))
            return fail(why, whylen, "contains control characters");
        p += n;
    }
    return true;
}
