#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "base/clock.h"
#include "base/timeutil.h"
#include "event/cloudevent.h"

/* ---- RFC 3339 ---------------------------------------------------------- */

/* Criterion re-executes the binary per test: parameters hold no pointers. */
struct tcase {
    char text[48];
    long long ms;
};

ParameterizedTestParameters(rfc3339, parses_valid)
{
    static struct tcase cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01T00:00:00.001Z", 1},
        {"2026-11-20T09:15:02.123Z", 1795166102123LL},
        {"2026-11-20T18:15:02.123+09:00", 1795166102123LL},
        {"2026-11-20T04:15:02.123-05:00", 1795166102123LL},
        {"2026-11-20t09:15:02.123456789z", 1795166102123LL},
        {"2026-11-20T09:15:02.1Z", 1795166102100LL},
        {"2024-02-29T00:00:00Z", 1709164800000LL},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2016-12-31T23:59:60Z", 1483228800000LL}, /* leap second: next minute */
        {"9999-12-31T23:59:59.999Z", 253402300799999LL},
    };
    return cr_make_param_array(struct tcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct tcase *c, rfc3339, parses_valid)
{
    int64_t ms = 42;
    cr_assert(rfc3339_parse(c->text, &ms), "refused %s", c->text);
    cr_expect_eq(ms, c->ms, "%s -> %lld, want %lld", c->text, (long long)ms, c->ms);
}

ParameterizedTestParameters(rfc3339, refuses_invalid)
{
    static struct tcase cases[] = {
        {"", 0},
        {"2026-11-20", 0},
        {"2026-11-20T09:15:02", 0}, /* no offset */
        {"2026-11-20 09:15:02Z", 0},
        {"2026-13-20T09:15:02Z", 0},
        {"2026-02-29T09:15:02Z", 0}, /* not a leap year */
        {"2026-11-31T09:15:02Z", 0},
        {"2026-11-20T24:00:00Z", 0},
        {"2026-11-20T09:60:00Z", 0},
        {"2026-11-20T09:15:61Z", 0},
        {"2026-11-20T09:15:02.Z", 0},
        {"2026-11-20T09:15:02+0900", 0},
        {"2026-11-20T09:15:02+24:00", 0},
        {"2026-11-20T09:15:02Z ", 0},
        {"1795166102123", 0},
        {"+2026-11-20T09:15:02Z", 0},
    };
    return cr_make_param_array(struct tcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct tcase *c, rfc3339, refuses_invalid)
{
    int64_t ms = 42;
    cr_expect_not(rfc3339_parse(c->text, &ms), "accepted \"%s\"", c->text);
    cr_expect_eq(ms, 42, "changed the output on failure");
}

Test(rfc3339, formats_utc_milliseconds)
{
    char buf[RFC3339_MS_LEN];
    cr_assert(rfc3339_format(1795166102123LL, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "2026-11-20T09:15:02.123Z");
    cr_assert(rfc3339_format(0, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "1970-01-01T00:00:00.000Z");
    cr_assert(rfc3339_format(-1, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "1969-12-31T23:59:59.999Z");
    cr_expect_not(rfc3339_format(0, buf, RFC3339_MS_LEN - 1), "wrote into a short buffer");
    cr_expect_not(rfc3339_format(253402300800000LL, buf, sizeof(buf)), "formatted year 10000");
}

Test(rfc3339, round_trips)
{
    char buf[RFC3339_MS_LEN];
    int64_t values[] = {0, 1, 999, 86399999, 951782400000LL, 1795166102123LL, -86400001};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        int64_t back = 0;
        cr_assert(rfc3339_format(values[i], buf, sizeof(buf)));
        cr_assert(rfc3339_parse(buf, &back), "%s", buf);
        cr_expect_eq(back, values[i], "%lld -> %s -> %lld", (long long)values[i], buf,
                     (long long)back);
    }
}

/* ---- parse --------------------------------------------------------------- */

static enum event_verdict parse_str(const char *s, struct cloudevent *ev, char *err, size_t errlen)
{
    return cloudevent_parse(s, strlen(s), ev, err, errlen);
}

Test(cloudevent, parses_every_attribute)
{
    const char *json =
        "{\"specversion\":\"1.0\",\"id\":\"e-1\",\"source\":\"/booking\",\"type\":\"t.v1\","
        "\"time\":\"2026-11-20T09:15:02.123Z\",\"subject\":\"r-1\",\"datacontenttype\":"
        "\"application/json\",\"correlationid\":\"trace-1\",\"traceparent\":\"00-ab\","
        "\"data\":{\"requestId\":\"r-1\"}}";
    struct cloudevent ev;
    char err[256] = "";
    cr_assert_eq(parse_str(json, &ev, err, sizeof(err)), EVENT_OK, "%s", err);
    cr_expect_str_eq(ev.id, "e-1");
    cr_expect_str_eq(ev.source, "/booking");
    cr_expect_str_eq(ev.type, "t.v1");
    cr_expect_str_eq(ev.time, "2026-11-20T09:15:02.123Z");
    cr_expect_eq(ev.time_ms, 1795166102123LL);
    cr_expect_str_eq(ev.subject, "r-1");
    cr_expect_str_eq(ev.datacontenttype, "application/json");
    cr_expect_str_eq(ev.correlationid, "trace-1");
    cr_assert(json_is_object(ev.data));
    cr_expect_str_eq(json_string_value(json_object_get(ev.data, "requestId")), "r-1");
    cloudevent_clear(&ev);
    cr_expect_null(ev.id);
    cloudevent_clear(&ev); /* twice is harmless */
}

Test(cloudevent, optional_attributes_may_be_absent)
{
    struct cloudevent ev;
    char err[256] = "";
    cr_assert_eq(parse_str("{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\",\"type\":\"t\"}",
                           &ev, err, sizeof(err)),
                 EVENT_OK, "%s", err);
    cr_expect_null(ev.time);
    cr_expect_null(ev.subject);
    cr_expect_null(ev.correlationid);
    cr_expect_null(ev.data);
    cloudevent_clear(&ev);
}

struct bad_case {
    char json[200];
    int verdict;
    char mention[32]; /* the error message must contain this */
};

ParameterizedTestParameters(cloudevent, refuses_bad_events)
{
    static struct bad_case cases[] = {
        {"", EVENT_PARSE_ERROR, "not valid JSON"},
        {"{\"specversion\":\"1.0\"", EVENT_PARSE_ERROR, "not valid JSON"},
        {"hello", EVENT_PARSE_ERROR, "not valid JSON"},
        {"[1,2]", EVENT_PARSE_ERROR, "not a JSON object"},
        {"\"1.0\"", EVENT_PARSE_ERROR, "not"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"id\":\"b\",\"source\":\"s\",\"type\":\"t\"}",
         EVENT_PARSE_ERROR, "duplicate"},
        {"{\"specversion\":\"1.0\",\"id\":\"\\u0000\",\"source\":\"s\",\"type\":\"t\"}",
         EVENT_PARSE_ERROR, "not valid JSON"},
        {"{\"id\":\"e\",\"source\":\"s\",\"type\":\"t\"}", EVENT_SCHEMA_VIOLATION, "specversion"},
        {"{\"specversion\":1.0,\"id\":\"e\",\"source\":\"s\",\"type\":\"t\"}",
         EVENT_SCHEMA_VIOLATION, "specversion"},
        {"{\"specversion\":\"0.3\",\"id\":\"e\",\"source\":\"s\",\"type\":\"t\"}",
         EVENT_SCHEMA_VIOLATION, "specversion"},
        {"{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\"}", EVENT_SCHEMA_VIOLATION,
         "\"id\""},
        {"{\"specversion\":\"1.0\",\"id\":7,\"source\":\"s\",\"type\":\"t\"}",
         EVENT_SCHEMA_VIOLATION, "\"id\""},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"type\":\"t\"}", EVENT_SCHEMA_VIOLATION,
         "\"source\""},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"\",\"type\":\"t\"}",
         EVENT_SCHEMA_VIOLATION, "\"source\""},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\"}", EVENT_SCHEMA_VIOLATION,
         "\"type\""},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\",\"type\":\"t\",\"time\":\"now\"}",
         EVENT_SCHEMA_VIOLATION, "\"time\""},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\",\"type\":\"t\",\"subject\":null}",
         EVENT_SCHEMA_VIOLATION, "\"subject\""},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\",\"type\":\"t\",\"Subject\":\"x\"}",
         EVENT_SCHEMA_VIOLATION, "Subject"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\",\"type\":\"t\",\"data_base64\":"
         "\"aGk=\"}",
         EVENT_SCHEMA_VIOLATION, "data_base64"},
        {"{\"specversion\":\"1.0\",\"id\":\"e\",\"source\":\"s\",\"type\":\"t\",\"ext\":[1]}",
         EVENT_SCHEMA_VIOLATION, "ext"},
    };
    return cr_make_param_array(struct bad_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *c, cloudevent, refuses_bad_events)
{
    struct cloudevent ev;
    char err[256] = "";
    enum event_verdict v = parse_str(c->json, &ev, err, sizeof(err));
    cr_expect_eq((int)v, c->verdict, "%s: got %s (%s), want %s", c->json, event_verdict_name(v),
                 err, event_verdict_name(c->verdict));
    cr_expect(strstr(err, c->mention) != NULL, "%s: error \"%s\" does not mention %s", c->json, err,
              c->mention);
    cr_expect_null(ev.id, "left a parsed attribute behind");
}

Test(cloudevent, refuses_invalid_utf8_and_embedded_nul)
{
    struct cloudevent ev;
    char err[256] = "";
    const char bad_utf8[] = "{\"specversion\":\"1.0\",\"id\":\"\xC3\x28\",\"source\":\"s\","
                            "\"type\":\"t\"}";
    cr_expect_eq(cloudevent_parse(bad_utf8, sizeof(bad_utf8) - 1, &ev, err, sizeof(err)),
                 EVENT_PARSE_ERROR, "%s", err);
    const char nul[] = "{\"specversion\":\"1.0\"}\0{}";
    cr_expect_eq(cloudevent_parse(nul, sizeof(nul) - 1, &ev, err, sizeof(err)), EVENT_PARSE_ERROR);
}

/* ---- build --------------------------------------------------------------- */

Test(cloudevent, builds_exact_json_with_explicit_id_and_time)
{
    char err[256] = "";
    char *out = NULL;
    json_t *data = json_pack("{s:s,s:i}", "requestId", "r-1", "amount", 100);
    cr_assert(cloudevent_build_at("t.v1", "/payments/cancel-retry", "r-1", "trace-1", data,
                                  "00000000-0000-4000-8000-000000000001", 1795166102123LL, &out,
                                  err, sizeof(err)),
              "%s", err);
    cr_expect_str_eq(out,
                     "{\"specversion\":\"1.0\",\"id\":\"00000000-0000-4000-8000-000000000001\","
                     "\"source\":\"/payments/cancel-retry\",\"type\":\"t.v1\",\"time\":"
                     "\"2026-11-20T09:15:02.123Z\",\"subject\":\"r-1\",\"datacontenttype\":"
                     "\"application/json\",\"correlationid\":\"trace-1\",\"data\":{"
                     "\"requestId\":\"r-1\",\"amount\":100}}");
    cr_expect_eq(data->refcount, 1, "data is borrowed: its reference count must be unchanged");
    free(out);
    json_decref(data);
}

Test(cloudevent, build_makes_uuid_v4_and_now_and_parses_back)
{
    char err[256] = "";
    char *out1 = NULL, *out2 = NULL;
    json_t *data = json_object();
    int64_t before = wall_ms();
    cr_assert(cloudevent_build("t.v1", "/s", NULL, NULL, data, &out1, err, sizeof(err)), "%s", err);
    cr_assert(cloudevent_build("t.v1", "/s", NULL, NULL, data, &out2, err, sizeof(err)), "%s", err);
    int64_t after = wall_ms();

    struct cloudevent a, b;
    cr_assert_eq(cloudevent_parse(out1, strlen(out1), &a, err, sizeof(err)), EVENT_OK, "%s", err);
    cr_assert_eq(cloudevent_parse(out2, strlen(out2), &b, err, sizeof(err)), EVENT_OK, "%s", err);
    cr_expect_eq(strlen(a.id), 36);
    cr_expect_eq(a.id[14], '4', "not a version 4 UUID: %s", a.id);
    cr_expect(strchr("89ab", a.id[19]) != NULL, "not an RFC 4122 variant: %s", a.id);
    cr_expect_str_neq(a.id, b.id);
    cr_expect(a.time_ms >= before && a.time_ms <= after, "time %s not now", a.time);
    cr_expect_eq(strlen(a.time), RFC3339_MS_LEN - 1, "time %s not with milliseconds", a.time);
    cr_expect_null(a.subject);
    cr_expect_null(a.correlationid);
    cloudevent_clear(&a);
    cloudevent_clear(&b);
    free(out1);
    free(out2);
    json_decref(data);
}

Test(cloudevent, build_refuses_bad_input)
{
    char err[256];
    char *out = NULL;
    json_t *obj = json_object(), *arr = json_array();
    cr_expect_not(cloudevent_build("t", "s", NULL, NULL, arr, &out, err, sizeof(err)));
    cr_expect_not(cloudevent_build("t", "s", NULL, NULL, NULL, &out, err, sizeof(err)));
    cr_expect_not(cloudevent_build("", "s", NULL, NULL, obj, &out, err, sizeof(err)));
    cr_expect_not(cloudevent_build("t", NULL, NULL, NULL, obj, &out, err, sizeof(err)));
    cr_expect_not(cloudevent_build("t", "s", "", NULL, obj, &out, err, sizeof(err)));
    cr_expect_not(cloudevent_build("t", "s", "\xff", NULL, obj, &out, err, sizeof(err)));
    cr_expect_null(out);
    json_decref(obj);
    json_decref(arr);
}
