/*
 * bounds: the range checks every value from outside goes through before it
 * reaches SQL or arithmetic.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdint.h>
#include <string.h>

#include "base/bounds.h"

/* 2026-12-01T00:00:00Z */
#define NOW_MS 1796083200000LL
#define DAY_MS (24LL * 3600 * 1000)

Test(bounds, instants_from_2000_to_a_day_ahead_are_plausible)
{
    cr_expect(bounds_check_time("t", BOUNDS_TIME_MIN_MS, NOW_MS, NULL, 0));
    cr_expect(bounds_check_time("t", NOW_MS, NOW_MS, NULL, 0));
    cr_expect(bounds_check_time("t", NOW_MS + DAY_MS, NOW_MS, NULL, 0));
    cr_expect_not(bounds_check_time("t", BOUNDS_TIME_MIN_MS - 1, NOW_MS, NULL, 0));
    cr_expect_not(bounds_check_time("t", NOW_MS + DAY_MS + 1, NOW_MS, NULL, 0));
    cr_expect_not(bounds_check_time("t", -1, NOW_MS, NULL, 0));
    cr_expect_not(bounds_check_time("t", INT64_MIN, NOW_MS, NULL, 0));
    cr_expect_not(bounds_check_time("t", INT64_MAX, NOW_MS, NULL, 0));
    /* A clock at the end of int64 does not overflow the upper bound. */
    cr_expect(bounds_check_time("t", INT64_MAX, INT64_MAX, NULL, 0));
}

Test(bounds, an_implausible_instant_is_named)
{
    char err[256];
    cr_expect_not(
        bounds_check_time("the Kafka timestamp", 9200000000000000000LL, NOW_MS, err, sizeof(err)));
    cr_expect_not_null(strstr(err, "the Kafka timestamp 9200000000000000000 ms is out of range"),
                       "%s", err);
    cr_expect_not(bounds_check_time("attribute \"time\"", 0, NOW_MS, err, sizeof(err)));
    cr_expect_not_null(strstr(err, "attribute \"time\" 1970-01-01T00:00:00.000Z is out of range"),
                       "%s", err);
}

Test(bounds, sums_saturate_instead_of_overflowing)
{
    cr_expect_eq(bounds_add_sat(INT64_MAX, 1), INT64_MAX);
    cr_expect_eq(bounds_add_sat(INT64_MAX - 5, INT64_MAX), INT64_MAX);
    cr_expect_eq(bounds_add_sat(INT64_MIN, -1), INT64_MIN);
    cr_expect_eq(bounds_add_sat(-5, 3), -2);
    cr_expect_eq(bounds_add_sat(INT64_MIN, INT64_MAX), -1);
    /* now + delay: the Retry-After of 9223372036854775 s in ms */
    cr_expect_eq(bounds_after(NOW_MS, 9223372036854775000LL), INT64_MAX);
    cr_expect_eq(bounds_after(NOW_MS, -10), NOW_MS);
    cr_expect_eq(bounds_after(NOW_MS, 10), NOW_MS + 10);
}

Test(bounds, integers_parse_whole_and_in_range_only)
{
    long long v = 42;
    cr_expect(bounds_parse_int("7", 1, 100, &v));
    cr_expect_eq(v, 7);
    cr_expect(bounds_parse_int("-3", -5, 5, &v));
    cr_expect_eq(v, -3);
    static const char *const bad[] = {
        "",    " 7", "7 ",  "+7", "7a", "0x10", "101", "-6", "99999999999999999999",
        "1e3", "-",  "--1", "٣",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 42;
        cr_expect_not(bounds_parse_int(bad[i], -5, 100, &v), "accepted \"%s\"", bad[i]);
        cr_expect_eq(v, 42, "\"%s\" changed the output", bad[i]);
    }
    cr_expect_not(bounds_parse_int(NULL, 0, 1, &v));
}

struct seg {
    char s[32];
    bool ok;
};

ParameterizedTestParameters(bounds, path_segments)
{
    static struct seg cases[] = {
        {"tgen_20261120abc", true},
        {"pi_3PqK2bLkdIwHu7ix0xYz", true},
        {"...", true},     /* not a dot-segment */
        {".hidden", true}, /* neither */
        {"a/../b", true},  /* percent-encoded as one segment: %2F */
        {"결제-키", true}, /* UTF-8 is fine, encoded */
        {"a b%20c?d#e", true},
        {"", false},
        {".", false},
        {"..", false},
        {"pk\r\nX: 1", false},
        {"pk\t1", false},
        {"pk\x7f", false},
        {"pk\xc2\x85", false},     /* U+0085 NEL, a C1 control */
        {"pk\xc2\xa0", true},      /* U+00A0, not a control */
        {"pk\xff", false},         /* not UTF-8 */
        {"pk\xc0\xae", false},     /* overlong "." */
        {"pk\xed\xa0\x80", false}, /* a surrogate */
    };
    return cr_make_param_array(struct seg, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct seg *c, bounds, path_segments)
{
    char why[96] = "";
    bool ok = bounds_path_segment_ok(c->s, why, sizeof(why));
    cr_expect_eq(ok, c->ok, "\"%s\": %s", c->s, ok ? "accepted" : why);
    if (!ok)
        cr_expect_neq(why[0], '\0');
}

Test(bounds, null_is_not_a_path_segment)
{
    cr_expect_not(bounds_path_segment_ok(NULL, NULL, 0));
}
