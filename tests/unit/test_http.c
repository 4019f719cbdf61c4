/*
 * http: what a server's Retry-After may make us do. Whatever it says, the
 * wait read from it is between 0 and HTTP_RETRY_AFTER_MAX_MS, so that no
 * "now + delay" downstream can overflow.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdint.h>
#include <string.h>

#include "base/http.h"

/* Tue, 01 Dec 2026 00:00:00 GMT */
#define NOW 1796083200

struct ra_case {
    char value[64];
    long long want_ms;
    bool clamped;
};

ParameterizedTestParameters(http, retry_after_is_capped_at_one_day)
{
    static struct ra_case cases[] = {
        {"86400", 86400000, false},
        {"86401", HTTP_RETRY_AFTER_MAX_MS, true},
        /* the answer: INT64_MAX / 1000 seconds */
        {"9223372036854775", HTTP_RETRY_AFTER_MAX_MS, true},
        {"9223372036854775807", HTTP_RETRY_AFTER_MAX_MS, true},
        {"99999999999999999999999999999999999999", HTTP_RETRY_AFTER_MAX_MS, true},
        {"000000000000000000000000000000000030", 30000, false},
        {"Wed, 02 Dec 2026 00:00:00 GMT", 86400000, false},
        {"Wed, 02 Dec 2026 00:00:01 GMT", HTTP_RETRY_AFTER_MAX_MS, true},
        {"Fri, 31 Dec 9999 23:59:59 GMT", HTTP_RETRY_AFTER_MAX_MS, true},
        {"Mon, 30 Nov 2026 00:00:00 GMT", 0, false},
    };
    return cr_make_param_array(struct ra_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct ra_case *c, http, retry_after_is_capped_at_one_day)
{
    int64_t ms = -1;
    bool clamped = !c->clamped;
    cr_assert(http_parse_retry_after(c->value, NOW, &ms, &clamped), "\"%s\" refused", c->value);
    cr_expect_eq(ms, c->want_ms, "\"%s\" -> %lld ms", c->value, (long long)ms);
    cr_expect_eq(clamped, c->clamped, "\"%s\" clamped %d", c->value, clamped);
}

Test(http, retry_after_that_is_neither_number_nor_date_is_ignored)
{
    static const char *const bad[] = {"", "soon", "-5", "1e300", "+5", "5 s", "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        cr_expect_not(http_parse_retry_after(bad[i], NOW, &ms, NULL), "\"%s\" read", bad[i]);
        cr_expect_eq(ms, 42);
    }
}
