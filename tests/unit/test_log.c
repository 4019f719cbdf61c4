#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "base/log.h"

Test(log, parses_level_names)
{
    enum log_level l = LOG_ERROR;
    cr_expect(log_level_parse("debug", &l) && l == LOG_DEBUG);
    cr_expect(log_level_parse("INFO", &l) && l == LOG_INFO);
    cr_expect(log_level_parse("warning", &l) && l == LOG_WARN);
    cr_expect(log_level_parse("error", &l) && l == LOG_ERROR);
    cr_expect_not(log_level_parse("verbose", &l));
    cr_expect_not(log_level_parse(NULL, &l));
    cr_expect_str_eq(log_level_name(LOG_WARN), "warn");
}

/* Read what the code under test wrote to stderr (redirected by Criterion). */
static json_t *read_line(FILE *f)
{
    char buf[4096];
    if (fgets(buf, sizeof(buf), f) == NULL)
        return NULL;
    json_error_t jerr;
    json_t *obj = json_loads(buf, 0, &jerr);
    cr_assert_not_null(obj, "not JSON: %s (%s)", buf, jerr.text);
    return obj;
}

Test(log, default_level_is_info, .init = cr_redirect_stderr)
{
    /* Without log_init: info and above are written, debug is not. */
    cr_expect(log_enabled(LOG_INFO));
    cr_expect(log_enabled(LOG_ERROR));
    cr_expect_not(log_enabled(LOG_DEBUG));
    log_debug("hidden");
    log_error("shown %d", 1);
    fflush(stderr);
    json_t *obj = read_line(cr_get_redirected_stderr());
    cr_assert_not_null(obj);
    cr_expect_str_eq(json_string_value(json_object_get(obj, "message")), "shown 1");
    cr_expect_str_eq(json_string_value(json_object_get(obj, "level")), "error");
    json_decref(obj);
}

Test(log, writes_one_json_object_per_line, .init = cr_redirect_stderr)
{
    log_init("test-svc", LOG_DEBUG);
    json_t *fields = json_pack("{s:s}", "extra", "x");
    struct log_ctx ctx = LOG_CTX_INIT;
    ctx.request_id = "req-1";
    ctx.topic = "t";
    ctx.partition = 2;
    ctx.offset = 0;
    ctx.fields = fields;
    log_emit(LOG_WARN, &ctx, "hello \"%s\"", "world");
    log_debug("second");
    json_decref(fields);
    fflush(stderr);

    FILE *f = cr_get_redirected_stderr();
    json_t *a = read_line(f);
    cr_assert_not_null(a);
    cr_expect_str_eq(json_string_value(json_object_get(a, "service")), "test-svc");
    cr_expect_str_eq(json_string_value(json_object_get(a, "level")), "warn");
    cr_expect_str_eq(json_string_value(json_object_get(a, "message")), "hello \"world\"");
    cr_expect_str_eq(json_string_value(json_object_get(a, "requestId")), "req-1");
    cr_expect_str_eq(json_string_value(json_object_get(a, "topic")), "t");
    cr_expect_eq(json_integer_value(json_object_get(a, "partition")), 2);
    cr_expect_eq(json_integer_value(json_object_get(a, "offset")), 0);
    cr_expect_str_eq(json_string_value(json_object_get(a, "extra")), "x");
    cr_expect_null(json_object_get(a, "correlationId"));
    const char *t = json_string_value(json_object_get(a, "time"));
    cr_assert_not_null(t);
    cr_expect_eq(strlen(t), strlen("2026-11-20T09:15:02.123Z"), "time %s", t);
    json_decref(a);

    json_t *b = read_line(f);
    cr_assert_not_null(b);
    cr_expect_str_eq(json_string_value(json_object_get(b, "level")), "debug");
    json_decref(b);
}

Test(log, maps_librdkafka_syslog_levels, .init = cr_redirect_stderr)
{
    log_init("test-svc", LOG_INFO);
    log_syslog_level(7, "FETCH", "rdkafka#consumer-1", "debug noise");
    log_syslog_level(4, "REQTMOUT", "rdkafka#producer-1", "timed out");
    log_syslog_level(3, "FAIL", "rdkafka#producer-1", "broker down");
    fflush(stderr);

    FILE *f = cr_get_redirected_stderr();
    json_t *a = read_line(f);
    cr_assert_not_null(a);
    cr_expect_str_eq(json_string_value(json_object_get(a, "level")), "warn");
    cr_expect_str_eq(json_string_value(json_object_get(a, "component")), "librdkafka");
    cr_expect_str_eq(json_string_value(json_object_get(a, "client")), "rdkafka#producer-1");
    cr_expect_str_eq(json_string_value(json_object_get(a, "message")), "REQTMOUT: timed out");
    json_decref(a);
    json_t *b = read_line(f);
    cr_assert_not_null(b);
    cr_expect_str_eq(json_string_value(json_object_get(b, "level")), "error");
    json_decref(b);
    cr_expect_null(read_line(f), "the debug line should have been filtered");
}
