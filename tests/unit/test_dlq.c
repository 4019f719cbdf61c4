#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "base/redact.h"
#include "config/config.h"
#include "event/dlq.h"

/* Value of header name in a [name, value] pair array, or NULL. */
static const char *pair_value(const json_t *pairs, const char *name)
{
    size_t i;
    json_t *pair;
    json_array_foreach(pairs, i, pair)
    {
        if (strcmp(json_string_value(json_array_get(pair, 0)), name) == 0)
            return json_string_value(json_array_get(pair, 1));
    }
    return NULL;
}

static bool valid_utf8(const char *s)
{
    json_t *j = json_string(s); /* jansson validates UTF-8 */
    json_decref(j);
    return j != NULL;
}

Test(dlq, builds_every_header_in_contract_order)
{
    char err[256] = "";
    struct dlq_meta m = {
        .reason = DLQ_REASON_EXHAUSTED,
        .error = "5 attempts: PROVIDER_ERROR",
        .origin = {"payments.cancel.failed", 2, 10452, 1795166102123LL},
        .consumer = "retry-consumer",
        .request_id = "bk-1:cancel",
        .attempts = 5,
        .at_ms = 1795166103000LL,
    };
    json_t *pairs = dlq_headers_build(&m, err, sizeof(err));
    cr_assert_not_null(pairs, "%s", err);
    char *text = json_dumps(pairs, JSON_COMPACT);
    cr_expect_str_eq(text, "[[\"dlq.reason\",\"EXHAUSTED\"],[\"dlq.error\",\"5 attempts: "
                           "PROVIDER_ERROR\"],[\"dlq.original.topic\",\"payments.cancel.failed\"],"
                           "[\"dlq.original.partition\",\"2\"],[\"dlq.original.offset\","
                           "\"10452\"],[\"dlq.original.timestamp\",\"2026-11-20T09:15:02.123Z\"],"
                           "[\"dlq.consumer\",\"retry-consumer\"],[\"dlq.request.id\","
                           "\"bk-1:cancel\"],[\"dlq.attempts\",\"5\"],[\"dlq.at\","
                           "\"2026-11-20T09:15:03.000Z\"]]");
    free(text);
    json_decref(pairs);
}

Test(dlq, leaves_out_what_is_unknown)
{
    char err[256] = "";
    struct dlq_meta m = {
        .reason = DLQ_REASON_PARSE_ERROR,
        .error = NULL,
        .origin = {NULL, -1, -1, -1},
        .consumer = "intake-consumer",
        .request_id = "not a\nrequest id",
        .attempts = 0,
        .at_ms = 0,
    };
    json_t *pairs = dlq_headers_build(&m, err, sizeof(err));
    cr_assert_not_null(pairs, "%s", err);
    cr_expect_null(pair_value(pairs, DLQ_HEADER_ORIGINAL_TOPIC));
    cr_expect_null(pair_value(pairs, DLQ_HEADER_ORIGINAL_PARTITION));
    cr_expect_null(pair_value(pairs, DLQ_HEADER_REQUEST_ID), "an invalid requestId was copied");
    cr_expect_null(pair_value(pairs, DLQ_HEADER_ATTEMPTS));
    cr_expect_str_eq(pair_value(pairs, DLQ_HEADER_ERROR), "no detail");
    cr_expect_str_eq(pair_value(pairs, DLQ_HEADER_AT), "1970-01-01T00:00:00.000Z");
    json_decref(pairs);

    m.origin = (struct dlq_origin){"payments.cancel.failed", 0, 0, -1};
    pairs = dlq_headers_build(&m, err, sizeof(err));
    cr_assert_not_null(pairs, "%s", err);
    cr_expect_str_eq(pair_value(pairs, DLQ_HEADER_ORIGINAL_PARTITION), "0");
    cr_expect_str_eq(pair_value(pairs, DLQ_HEADER_ORIGINAL_OFFSET), "0");
    cr_expect_null(pair_value(pairs, DLQ_HEADER_ORIGINAL_TIMESTAMP));
    json_decref(pairs);
}

Test(dlq, refuses_unknown_reason_and_missing_consumer)
{
    char err[256] = "";
    struct dlq_meta m = {.reason = "POISON", .consumer = "c", .origin = {NULL, -1, -1, -1}};
    cr_expect_null(dlq_headers_build(&m, err, sizeof(err)));
    cr_expect(strstr(err, "POISON") != NULL, "%s", err);
    m.reason = DLQ_REASON_CONFIG_FAULT;
    m.consumer = "";
    cr_expect_null(dlq_headers_build(&m, err, sizeof(err)));
    m.reason = NULL;
    cr_expect_null(dlq_headers_build(&m, err, sizeof(err)));
    cr_expect(dlq_reason_valid(DLQ_REASON_IDEMPOTENCY_CONFLICT));
    cr_expect(dlq_reason_valid(DLQ_REASON_UNKNOWN_GATEWAY));
    cr_expect(dlq_reason_valid(DLQ_REASON_RECONCILE_MISMATCH));
    cr_expect(dlq_reason_valid(DLQ_REASON_REFUND_FAILED_AFTER_SUCCESS));
    cr_expect(dlq_reason_valid(DLQ_REASON_REFUND_REVERSED));
    cr_expect(dlq_reason_valid(DLQ_REASON_REFUND_AFTER_FINAL));
    cr_expect(dlq_reason_valid(DLQ_REASON_WEBHOOK_UNMATCHED));
    /* Only a person can act on what a webhook reported after the fact. */
    cr_expect(dlq_reason_needs_human(DLQ_REASON_REFUND_FAILED_AFTER_SUCCESS));
    cr_expect(dlq_reason_needs_human(DLQ_REASON_REFUND_REVERSED));
    cr_expect(dlq_reason_needs_human(DLQ_REASON_REFUND_AFTER_FINAL));
    cr_expect(dlq_reason_needs_human(DLQ_REASON_WEBHOOK_UNMATCHED));
    cr_expect_not(dlq_reason_needs_human(DLQ_REASON_FAILED));
    cr_expect_not(dlq_reason_needs_human(NULL));
    cr_expect_not(dlq_reason_valid("parse_error"));
}

Test(dlq, long_error_is_cut_to_500_bytes_of_utf8)
{
    char err[256] = "", big[3000] = "";
    while (strlen(big) + strlen("오류 ") < sizeof(big))
        strcat(big, "오류 ");
    struct dlq_meta m = {.reason = DLQ_REASON_SCHEMA_VIOLATION,
                         .error = big,
                         .origin = {"t", 0, 1, -1},
                         .consumer = "intake-consumer"};
    json_t *pairs = dlq_headers_build(&m, err, sizeof(err));
    cr_assert_not_null(pairs, "%s", err);
    const char *e = pair_value(pairs, DLQ_HEADER_ERROR);
    cr_expect_leq(strlen(e), DLQ_ERROR_MAX);
    cr_expect_geq(strlen(e), DLQ_ERROR_MAX - 6, "cut far too short: %zu", strlen(e));
    cr_expect(valid_utf8(e));
    cr_expect_str_eq(e + strlen(e) - 3, "...");
    json_decref(pairs);
}

struct scase {
    char in[32];
    int inlen;
    char out[32];
};

ParameterizedTestParameters(dlq, sanitizes_text)
{
    static struct scase cases[] = {
        {"plain", 5, "plain"},
        {"a\nb\tc", 5, "a b c"},
        {"\xC3\xA9t\xC3\xA9", 5, "\xC3\xA9t\xC3\xA9"}, /* été */
        {"a\xC3(b", 4, "a?(b"},                        /* truncated sequence */
        {"\xC0\xAF", 2, "??"},                         /* overlong '/' */
        {"\xED\xA0\x80", 3, "???"},                    /* surrogate */
        {"\xF4\x90\x80\x80", 4, "????"},               /* past U+10FFFF */
        {"a\0b", 3, "a?b"},
        {"\xF0\x9F\x98\x80!", 5, "\xF0\x9F\x98\x80!"}, /* emoji */
        {"\xFF", 1, "?"},
    };
    return cr_make_param_array(struct scase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct scase *c, dlq, sanitizes_text)
{
    char out[64];
    size_t n = dlq_sanitize_text(c->in, (size_t)c->inlen, out, sizeof(out));
    cr_expect_str_eq(out, c->out);
    cr_expect_eq(n, strlen(c->out));
}

Test(dlq, error_header_masks_secrets_before_it_is_cut)
{
    char err[512], error[700];
    struct config *cfg = config_load_string("t.yaml",
                                            "database:\n  dsn: host=db\n"
                                            "kafka:\n  bootstrap.servers: k:9092\n"
                                            "gateways:\n  toss:\n    kind: toss\n"
                                            "    secret_key: gwLEAKME_key_123456\n",
                                            err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_assert(redact_process_install(cfg));
    /* The key straddles the 500-byte cut: masked first, it cannot be cut
     * into a piece nobody recognises. */
    memset(error, 'a', 490);
    snprintf(error + 490, sizeof(error) - 490, " gwLEAKME_key_123456 and then some more text");
    struct dlq_meta m = {
        .reason = DLQ_REASON_FAILED,
        .error = error,
        .origin = {"payments.cancel.failed", 0, 1, -1},
        .consumer = "retry-consumer",
        .at_ms = 1795166103000LL,
    };
    json_t *pairs = dlq_headers_build(&m, err, sizeof(err));
    cr_assert_not_null(pairs, "%s", err);
    const char *e = pair_value(pairs, DLQ_HEADER_ERROR);
    cr_expect_null(strstr(e, "gwLEAK"), "%s", e);
    cr_expect_not_null(strstr(e, " ***"), "%s", e);
    json_decref(pairs);
    redact_process_clear();
    config_free(cfg);
}

Test(dlq, sanitize_cuts_on_character_boundary)
{
    char out[8];
    /* 4 three-byte characters do not fit into 7 bytes: 1 of them + "..." */
    dlq_sanitize_text("가나다라", strlen("가나다라"), out, sizeof(out));
    cr_expect_str_eq(out, "가...");
    dlq_sanitize_text("abcdefg", 7, out, sizeof(out));
    cr_expect_str_eq(out, "abcdefg", "a string that fits is not cut");
    dlq_sanitize_text("abcdefgh", 8, out, sizeof(out));
    cr_expect_str_eq(out, "abcd...");
    char tiny[3];
    dlq_sanitize_text("abcdef", 6, tiny, sizeof(tiny));
    cr_expect_str_eq(tiny, "ab");
}

Test(dlq, kafka_headers_round_trip)
{
    char err[256] = "";
    json_t *pairs = json_pack("[[ss][ss][sn][ss]]", "content-type", "application/cloudevents+json",
                              "dlq.reason", "FAILED", "empty", "dlq.reason", "EXHAUSTED");
    rd_kafka_headers_t *hdrs = dlq_headers_to_kafka(pairs, err, sizeof(err));
    cr_assert_not_null(hdrs, "%s", err);
    cr_expect_eq(rd_kafka_header_cnt(hdrs), 4, "order and repeats are kept");
    const void *v;
    size_t size;
    cr_assert_eq(rd_kafka_header_get_last(hdrs, "dlq.reason", &v, &size),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_expect_eq(size, strlen("EXHAUSTED"));
    cr_expect_eq(memcmp(v, "EXHAUSTED", size), 0);

    json_t *obj = dlq_headers_from_kafka(hdrs);
    cr_assert_not_null(obj);
    cr_expect_str_eq(json_string_value(json_object_get(obj, "content-type")),
                     "application/cloudevents+json");
    cr_expect_str_eq(json_string_value(json_object_get(obj, "dlq.reason")), "EXHAUSTED",
                     "the last value of a repeated header wins");
    cr_expect(json_is_null(json_object_get(obj, "empty")));
    json_decref(obj);
    rd_kafka_headers_destroy(hdrs);
    json_decref(pairs);
}

Test(dlq, headers_from_kafka_are_always_valid_json)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
    rd_kafka_header_add(hdrs, "bin", -1, "\xff\x00\xfe", 3);
    json_t *obj = dlq_headers_from_kafka(hdrs);
    cr_assert_not_null(obj);
    cr_expect_str_eq(json_string_value(json_object_get(obj, "bin")), "???");
    json_decref(obj);
    rd_kafka_headers_destroy(hdrs);

    obj = dlq_headers_from_kafka(NULL);
    cr_assert_not_null(obj);
    cr_expect_eq(json_object_size(obj), 0);
    json_decref(obj);
}

Test(dlq, refuses_malformed_pair_arrays)
{
    char err[256];
    const char *bad[] = {"{}",          "[[\"a\"]]",      "[[\"a\",\"b\",\"c\"]]",
                         "[[1,\"b\"]]", "[[\"\",\"b\"]]", "[[\"a\",2]]",
                         "[\"a\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *pairs = json_loads(bad[i], 0, NULL);
        cr_assert_not_null(pairs, "%s", bad[i]);
        err[0] = '\0';
        rd_kafka_headers_t *h = dlq_headers_to_kafka(pairs, err, sizeof(err));
        cr_expect_null(h, "accepted %s", bad[i]);
        if (h != NULL)
            rd_kafka_headers_destroy(h);
        cr_expect_neq(err[0], '\0', "no reason for %s", bad[i]);
        json_decref(pairs);
    }
}

struct gcase {
    char json[160];
    char want[32]; /* "" = NULL */
};

ParameterizedTestParameters(dlq, guesses_request_id)
{
    static struct gcase cases[] = {
        {"{\"subject\":\"s-1\",\"data\":{\"requestId\":\"r-1\"}}", "r-1"},
        {"{\"subject\":\"s-1\",\"data\":{\"requestId\":\"bad id\"}}", "s-1"},
        {"{\"subject\":\"s-1\",\"data\":\"x\"}", "s-1"},
        {"{\"data\":{\"requestId\":\"r-1\",\"requestId\":\"r-2\"}}", "r-2"},
        {"{\"data\":{\"requestId\":42}}", ""},
        {"{\"data\":{\"requestId\":\"r-1\"", ""},
        {"[\"r-1\"]", ""},
        {"not json", ""},
    };
    return cr_make_param_array(struct gcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct gcase *c, dlq, guesses_request_id)
{
    char buf[256];
    const char *got = dlq_guess_request_id(c->json, strlen(c->json), buf, sizeof(buf));
    if (c->want[0] == '\0') {
        cr_expect_null(got, "%s -> %s", c->json, got);
    } else {
        cr_assert_not_null(got, "%s", c->json);
        cr_expect_str_eq(got, c->want);
    }
}

Test(dlq, guess_does_not_truncate)
{
    char small[4];
    const char *json = "{\"data\":{\"requestId\":\"r-123\"}}";
    cr_expect_null(dlq_guess_request_id(json, strlen(json), small, sizeof(small)));
}
