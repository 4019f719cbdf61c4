/*
 * duration: see duration.h.
 */
#include "base/duration.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int64_t unit_ms(const char *u, size_t len)
{
    if (len == 2 && strncmp(u, "ms", 2) == 0)
        return 1;
    if (len == 1) {
        switch (u[0]) {
        case 's':
            return 1000;
        case 'm':
            return 60 * 1000;
        case 'h':
            return 3600 * 1000;
        case 'd':
            return 24 * 3600 * 1000;
        }
    }
    return 0;
}

bool duration_parse(const char *s, int64_t *out_ms, char *err, size_t errlen)
{
    const char *p = s;
    double total = 0;

    if (s == NULL || *s == '\0') {
        snprintf(err, errlen, "empty duration");
        return false;
    }
    while (*p != '\0') {
        const char *num_start = p;
        double value = 0, scale = 0;
        bool digits = false;
        while (isdigit((unsigned char)*p) || (*p == '.' && scale == 0)) {
            if (*p == '.') {
                scale = 1;
            } else {
                digits = true;
                if (scale == 0) {
                    value = value * 10 + (*p - '0');
                } else {
                    scale /= 10;
                    value += (*p - '0') * scale;
                }
            }
            p++;
        }
        if (!digits) {
            snprintf(err, errlen, "invalid duration \"%s\": expected a number at \"%s\"", s,
                     num_start);
            return false;
        }
        const char *unit_start = p;
        while (isalpha((unsigned char)*p))
            p++;
        int64_t mult = unit_ms(unit_start, (size_t)(p - unit_start));
        if (mult == 0) {
            snprintf(err, errlen, "invalid duration \"%s\": unit must be one of ms, s, m, h, d", s);
            return false;
        }
        total += value * (double)mult;
        if (total > 9.0e15) {
            snprintf(err, errlen, "invalid duration \"%s\": too large", s);
            return false;
        }
    }
    *out_ms = (int64_t)(total + 0.5);
    return true;
}

char *duration_format(int64_t ms, char *buf, size_t buflen)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    size_t o = 0;

    if (buflen == 0)
        return buf;
    buf[0] = '\0';
    if (ms < 0) {
        snprintf(buf, buflen, "-");
        o = 1;
        ms = -ms;
    }
    if (ms == 0 || ms < 1000 || ms % 1000 != 0) {
        if (ms >= 1000 && ms < 60000)
            snprintf(buf + o, buflen - o, "%.3gs", (double)ms / 1000.0);
        else if (ms < 1000)
            snprintf(buf + o, buflen - o, "%lldms", (long long)ms);
        else
            snprintf(buf + o, buflen - o, "%lldms", (long long)ms);
        return buf;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && o + 1 < buflen; i++) {
        if (ms >= units[i].ms) {
            int n = snprintf(buf + o, buflen - o, "%lld%s", (long long)(ms / units[i].ms),
                             units[i].unit);
            if (n < 0)
                break;
            o += (size_t)n;
            ms %= units[i].ms;
        }
    }
    return buf;
}
