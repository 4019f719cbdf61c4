#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "base/duration.h"

/* Criterion re-executes the test binary for each test, so parameters must not
 * hold pointers into the parent's memory: strings are inline arrays. */
struct dcase {
    char text[16];
    int64_t ms;
};

ParameterizedTestParameters(duration, parses_units)
{
    static struct dcase cases[] = {
        {"500ms", 500},      {"5s", 5000},       {"30m", 1800000}, {"2h", 7200000},
        {"15d", 1296000000}, {"1h30m", 5400000}, {"1.5s", 1500},   {"0s", 0},
        {"24h", 86400000},   {"100ms", 100},     {"0.25s", 250},   {"1d12h", 129600000},
    };
    return cr_make_param_array(struct dcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct dcase *c, duration, parses_units)
{
    char err[128];
    int64_t ms = -1;
    cr_assert(duration_parse(c->text, &ms, err, sizeof(err)), "%s: %s", c->text, err);
    cr_expect_eq(ms, c->ms, "%s -> %lld, want %lld", c->text, (long long)ms, (long long)c->ms);
}

ParameterizedTestParameters(duration, rejects_garbage)
{
    static struct dcase bad[] = {{"", 0},    {"30", 0},   {"5x", 0},     {"s", 0}, {"-5s", 0},
                                 {"5 s", 0}, {"5sec", 0}, {"1.2.3s", 0}, {"ms", 0}};
    return cr_make_param_array(struct dcase, bad, sizeof(bad) / sizeof(bad[0]));
}

ParameterizedTest(struct dcase *c, duration, rejects_garbage)
{
    char err[128] = "";
    int64_t ms = 0;
    cr_expect_not(duration_parse(c->text, &ms, err, sizeof(err)), "accepted \"%s\"", c->text);
    cr_expect_neq(err[0], '\0', "no reason given for \"%s\"", c->text);
}

Test(duration, formats_round_trip)
{
    char buf[32], err[64];
    int64_t values[] = {500, 1500, 5000, 60000, 90000, 3600000, 86400000, 1296000000};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        int64_t back = -1;
        duration_format(values[i], buf, sizeof(buf));
        cr_assert(duration_parse(buf, &back, err, sizeof(err)), "%s: %s", buf, err);
        cr_expect_eq(back, values[i], "%lld -> %s -> %lld", (long long)values[i], buf,
                     (long long)back);
    }
}
