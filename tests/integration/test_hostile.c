/*
 * Hostile input through the real pipeline (the hardening issue): no single
 * message and no single gateway answer may stop the intake, the refunds of
 * other requests, or send a refund anywhere but its own URL.
 *
 * - corpus: more than 80 hostile CancelFailed messages (absurd Kafka
 *   timestamps and event times, huge and fractional amounts, "." and ".."
 *   payment keys, truncated, oversized, deeply nested and non-UTF-8 JSON,
 *   wrong types for every field, SQL and shell text where a pattern rules,
 *   CRLF, a Kafka key that is not the requestId, empty and null values),
 *   interleaved with valid messages (unicode, SQL and shell text where free
 *   text is allowed). Each hostile one is dead-lettered with its reason and
 *   a useful dlq.error; each valid one ends SUCCEEDED with one refund.
 * - database: a value the database refuses (SQLSTATE 22008, 23514) is
 *   dead-lettered with its SQLSTATE; the partition moves on.
 * - gateway: Retry-After 9223372036854775 and a date in the year 9999 are
 *   capped at one day; a message cut inside a UTF-8 character is stored;
 *   an answer the database refuses once is dead-lettered and the request
 *   still ends SUCCEEDED with one refund. Other requests never wait.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "pipeline_fixture.h"
#include "base/clock.h"
#include "base/i64.h"
#include "base/timeutil.h"

#define FINAL_TIMEOUT_MS 90000
#define MAX_MSGS         160
#define DAY_MS           (24LL * 3600 * 1000)

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

/* One message of the corpus. A valid one has no reason and names its
 * request; a hostile one the dlq.reason and a piece of dlq.error it must
 * get. */
struct hmsg {
    char *key; /* NULL: no key */
    size_t key_len;
    char *value;
    size_t len;
    int64_t timestamp_ms; /* 0: now */
    const char *reason;
    const char *error;
    char rid[40];
    char pk[64];
    /* delivery */
    bool delivered;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
};

static struct hmsg msgs[MAX_MSGS];
static size_t nmsgs;

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    cr_assert_not_null(d);
    return d;
}

/* A CancelFailed event for request rid whose data is base data with field
 * set to the JSON text value (NULL: field removed). The envelope has no
 * subject, so that a bad requestId fails on its own rule. */
static char *event_with(const char *rid, const char *field, const char *value)
{
    char when[RFC3339_MS_LEN];
    cr_assert(rfc3339_format(wall_ms(), when, sizeof(when)));
    json_t *d = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "requestId", rid, "gateway", "toss",
                          "paymentKey", "pk_hostile", "amount", (json_int_t)1000, "currency", "KRW",
                          "reason", "customer cancelled");
    if (field != NULL && value == NULL) {
        json_object_del(d, field);
    } else if (field != NULL) {
        json_error_t jerr;
        json_t *v = json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        cr_assert_not_null(v, "test value %s: %s", value, jerr.text);
        json_object_set_new(d, field, v);
    }
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", rid,
                           "source", "/it/hostile", "type", "payments.cancel.failed.v1", "time",
                           when, "datacontenttype", "application/json", "data", d);
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return s;
}

static struct hmsg *add_raw(const char *key, size_t key_len, char *value, size_t len, int64_t ts,
                            const char *reason, const char *error)
{
    cr_assert_lt(nmsgs, MAX_MSGS);
    struct hmsg *m = &msgs[nmsgs++];
    memset(m, 0, sizeof(*m));
    if (key != NULL) {
        m->key = malloc(key_len + 1);
        memcpy(m->key, key, key_len);
        m->key[key_len] = '\0';
        m->key_len = key_len;
    }
    m->value = value;
    m->len = len;
    m->timestamp_ms = ts;
    m->reason = reason;
    m->error = error;
    return m;
}

/* A hostile message of text (owned), keyed h-<n>. */
static void hostile_text(char *text, int64_t ts, const char *reason, const char *error)
{
    char key[16];
    snprintf(key, sizeof(key), "h-%zu", nmsgs);
    add_raw(key, strlen(key), text, strlen(text), ts, reason, error);
}

/* A hostile message: the base event with one field changed. */
static void hostile_field(const char *field, const char *value, const char *reason,
                          const char *error)
{
    char rid[16];
    snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
    hostile_text(event_with(rid, field, value), 0, reason, error);
}

/* A valid request v-<n> on gateway with one free-text field set: it must
 * end SUCCEEDED with one refund. */
static void valid(const char *gateway, const char *field, const char *value)
{
    char rid[16], pk[64];
    snprintf(rid, sizeof(rid), "v-%zu", nmsgs);
    snprintf(pk, sizeof(pk), "%s_v_%zu", strcmp(gateway, "toss") == 0 ? "pk" : "pi", nmsgs);
    bool toss = strcmp(gateway, "toss") == 0;
    pipeline_payment(P, gateway, pk, 5000, toss ? "KRW" : "USD", 0);
    char *text = event_with(rid, field, value);
    json_t *ev = json_loads(text, 0, NULL);
    json_t *d = json_object_get(ev, "data");
    json_object_set_new(d, "gateway", json_string(gateway));
    json_object_set_new(d, "paymentKey", json_string(pk));
    json_object_set_new(d, "currency", json_string(toss ? "KRW" : "USD"));
    json_object_set_new(ev, "subject", json_string(rid));
    free(text);
    text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    struct hmsg *m = add_raw(rid, strlen(rid), text, strlen(text), 0, NULL, NULL);
    snprintf(m->rid, sizeof(m->rid), "%s", rid);
    snprintf(m->pk, sizeof(m->pk), "%s", pk);
}

/* n times c, as a JSON string literal ("ccc..."), malloc'd. */
static char *json_run(char c, size_t n)
{
    char *s = malloc(n + 3);
    s[0] = '"';
    memset(s + 1, c, n);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    return s;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rm, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct hmsg *m = rm->_private;
    m->delivered = true;
    m->err = rm->err;
    m->partition = rm->partition;
    m->offset = rm->offset;
}

/* Publish every message in order through one producer, as a busy upstream
 * would; records where each landed (or the broker's refusal). */
static void publish_all(void)
{
    char errstr[256], topic[256];
    struct itest *t = pipeline_itest(P);
    snprintf(topic, sizeof(topic), "%spayments.cancel.failed", t->prefix);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", t->bootstrap, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "%s", errstr);
    for (size_t i = 0; i < nmsgs; i++) {
        struct hmsg *m = &msgs[i];
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->value, m->len),
            RD_KAFKA_V_TIMESTAMP(m->timestamp_ms), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            m->delivered = true;
            m->err = e;
        }
    }
    rd_kafka_flush(rk, 30000);
    cr_assert_eq(rd_kafka_outq_len(rk), 0, "messages not acknowledged within 30 s");
    rd_kafka_destroy(rk);
}

static const char *hdr(const struct pipeline_msg *m, const char *name)
{
    return json_string_value(json_object_get(m->headers, name));
}

static void build_corpus(void)
{
    static const char *const P_ = "PARSE_ERROR";
    static const char *const S = "SCHEMA_VIOLATION";
    static const char *const U = "UNKNOWN_GATEWAY";
    int64_t now = wall_ms();
    char rid[16];

    valid("toss", "reason", "\"고객 요청 취소 🙏\"");
    /* Kafka timestamps (CreateTime) and event times out of range */
    static const long long bad_ts[] = {9200000000000000000LL, 9223372036854775807LL, 1,
                                       946684799999LL};
    for (size_t i = 0; i < sizeof(bad_ts) / sizeof(bad_ts[0]); i++) {
        snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
        hostile_text(event_with(rid, NULL, NULL), bad_ts[i], S, "Kafka timestamp");
    }
    snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
    hostile_text(event_with(rid, NULL, NULL), now + 3 * DAY_MS, S, "Kafka timestamp");
    valid("stripe", "originTransactionId", "\"'; DROP TABLE cancel_request; --\"");
    static const char *const bad_times[] = {"0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z",
                                            "9999-12-31T23:59:59.999Z", "2199-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
        snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
        char *ev = event_with(rid, NULL, NULL);
        json_t *j = json_loads(ev, 0, NULL);
        json_object_set_new(j, "time", json_string(bad_times[i]));
        free(ev);
        hostile_text(json_dumps(j, JSON_COMPACT), 0, S, "attribute \"time\"");
        json_decref(j);
    }
    static const char *const bad_time_text[] = {"2026-13-01T00:00:00Z", "yesterday", "",
                                                "2026-12-01T00:00:00+24:00"};
    for (size_t i = 0; i < sizeof(bad_time_text) / sizeof(bad_time_text[0]); i++) {
        snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
        char *ev = event_with(rid, NULL, NULL);
        json_t *j = json_loads(ev, 0, NULL);
        json_object_set_new(j, "time", json_string(bad_time_text[i]));
        free(ev);
        hostile_text(json_dumps(j, JSON_COMPACT), 0, S, "\"time\"");
        json_decref(j);
    }
    valid("toss", "reason", "\"$(rm -rf /); `reboot` && echo pwned | sh\"");
    /* amounts */
    static const char *const bad_amounts[] = {
        "9007199254740992",
        "9223372036854775807",
        "1e300",
        "-1e300",
        "0",
        "-1",
        "1.5",
        "9007199254740993.0",
        "\"100\"",
        "null",
        "true",
        "[]",
        "{}",
        "1e-300",
    };
    for (size_t i = 0; i < sizeof(bad_amounts) / sizeof(bad_amounts[0]); i++)
        hostile_field("amount", bad_amounts[i], S, "data.amount");
    snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
    char *over = event_with(rid, NULL, NULL);
    char *at = strstr(over, "\"amount\":1000") + strlen("\"amount\":");
    char *big = malloc(strlen(over) + 32);
    snprintf(big, strlen(over) + 32, "%.*s99999999999999999999999%s", (int)(at - over), over,
             at + 4);
    free(over);
    hostile_text(big, 0, P_, "not valid JSON"); /* beyond int64: jansson refuses it */
    valid("stripe", "reason", "\"Robert'); DROP TABLE outbox;-- \\\\ %s %n\"");
    /* payment keys: the path-collapsing ones first */
    static const char *const bad_keys[] = {
        "\".\"", "\"..\"", "\"\"",    "\"pk\\r\\nX-Injected: 1\"", "\"pk\\u0085\"", "\"pk\\u007f\"",
        "123",   "null",   "[\".\"]",
    };
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++)
        hostile_field("paymentKey", bad_keys[i], S, "data.paymentKey");
    hostile_field("paymentKey", NULL, S, "data.paymentKey");
    char *longkey = json_run('k', 256);
    hostile_field("paymentKey", longkey, S, "data.paymentKey");
    free(longkey);
    valid("toss", "paymentKey", NULL); /* keys of valid requests are set by valid() */
    /* requestIds: SQL, shell, CRLF, unicode, types */
    static const char *const bad_rids[] = {
        "\"\"",
        "\"r 1\"",
        "\"r-1\\r\\n\"",
        "\"'; DROP TABLE cancel_request; --\"",
        "\"$(reboot)\"",
        "\"요청-1\"",
        "5",
        "null",
        "{}",
    };
    for (size_t i = 0; i < sizeof(bad_rids) / sizeof(bad_rids[0]); i++)
        hostile_field("requestId", bad_rids[i], S, "data.requestId");
    hostile_field("requestId", NULL, S, "data.requestId");
    char *longrid = json_run('r', 256);
    hostile_field("requestId", longrid, S, "data.requestId");
    free(longrid);
    valid("stripe", "reason", "\"\\u202e reversed \\u202e and zero\\u200bwidth\"");
    /* gateway, currency, partial, reason, originTransactionId, failure */
    hostile_field("gateway", "\"\"", S, "data.gateway");
    hostile_field("gateway", "null", S, "data.gateway");
    hostile_field("gateway", "\"paypal\"", U, "paypal");
    hostile_field("gateway", "\"TOSS\"", U, "TOSS");
    hostile_field("gateway", "\"toss; rm -rf /\"", U, "toss; rm -rf /");
    static const char *const bad_currencies[] = {"\"krw\"", "\"KRWX\"", "\"\"",
                                                 "410",     "\"₩₩₩\"",  "null"};
    for (size_t i = 0; i < sizeof(bad_currencies) / sizeof(bad_currencies[0]); i++)
        hostile_field("currency", bad_currencies[i], S, "data.currency");
    valid("toss", "originTransactionId", "\"ORD-\\r\\n-한글-\\t-\\\"quoted\\\"\"");
    static const char *const bad_partial[] = {"\"true\"", "1", "null"};
    for (size_t i = 0; i < sizeof(bad_partial) / sizeof(bad_partial[0]); i++)
        hostile_field("partial", bad_partial[i], S, "data.partial");
    char *long_reason = json_run('x', 201);
    hostile_field("reason", long_reason, S, "data.reason");
    free(long_reason);
    hostile_field("reason", "\"\"", S, "data.reason");
    hostile_field("reason", "null", S, "data.reason");
    hostile_field("originTransactionId", "\"\"", S, "data.originTransactionId");
    hostile_field("originTransactionId", "5", S, "data.originTransactionId");
    hostile_field("failure", "\"oops\"", S, "data.failure");
    hostile_field("failure", "{}", S, "data.failure.code");
    hostile_field("failure", "{\"code\":\"X\",\"message\":\"m\",\"x\":1}", S, "data.failure");
    hostile_field("refundAll", "true", S, "unknown field");
    valid("stripe", "failure", "{\"code\":\"PROVIDER_ERROR\",\"message\":\"일시적인 오류\"}");
    /* huge values: close to the broker's 1 MB message limit */
    char *huge = json_run('A', 990000);
    hostile_field("originTransactionId", huge, S, "bytes");
    free(huge);
    huge = json_run('B', 990000);
    hostile_field("reason", huge, S, "bytes");
    free(huge);
    /* the envelope */
    static const struct {
        const char *attr, *value, *error;
    } bad_env[] = {
        {"specversion", "\"0.3\"", "specversion"},
        {"id", "\"\"", "\"id\""},
        {"id", NULL, "\"id\""},
        {"type", "\"payments.cancel.outcome.v1\"", "type"},
        {"subject", "\"someone-else\"", "subject"},
        {"datacontenttype", "\"text/xml\"", "datacontenttype"},
        {"data", NULL, "data"},
        {"data", "[]", "data"},
        {"data", "\"{}\"", "data"},
        {"ext", "{\"x\":1}", "ext"},
        {"Bad_Name", "\"x\"", "Bad_Name"},
        {"correlationid", "\"\"", "correlationid"},
        {"source", "12", "source"},
    };
    for (size_t i = 0; i < sizeof(bad_env) / sizeof(bad_env[0]); i++) {
        snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
        char *ev = event_with(rid, NULL, NULL);
        json_t *j = json_loads(ev, 0, NULL);
        free(ev);
        if (bad_env[i].value == NULL)
            json_object_del(j, bad_env[i].attr);
        else
            json_object_set_new(j, bad_env[i].attr,
                                json_loads(bad_env[i].value, JSON_DECODE_ANY, NULL));
        hostile_text(json_dumps(j, JSON_COMPACT), 0, S, bad_env[i].error);
        json_decref(j);
    }
    valid("toss", NULL, NULL);
    /* not JSON, or not one event */
    snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
    char *cut = event_with(rid, NULL, NULL);
    cut[strlen(cut) / 2] = '\0';
    hostile_text(cut, 0, P_, "not valid JSON");
    hostile_text(xstrdup(""), 0, P_, "not valid JSON");
    hostile_text(xstrdup("null"), 0, P_, "not valid JSON");
    hostile_text(xstrdup("[]"), 0, P_, "not a JSON object");
    hostile_text(xstrdup("1e300"), 0, P_, "not valid JSON");
    hostile_text(xstrdup("{\"specversion\":\"1.0\"} trailing"), 0, P_, "not valid JSON");
    hostile_text(xstrdup("{\"a\":1,\"a\":2}"), 0, P_, "not valid JSON");
    size_t depth = 30000; /* under the 64 KiB bound: the parser refuses it */
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    hostile_text(deep, 0, P_, "not valid JSON");
    snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
    char *nested = event_with(rid, "failure", "{\"code\":\"X\",\"message\":\"m\"}");
    char *code = strstr(nested, "\"X\"");
    size_t nd = 3000, nlen = strlen(nested) + 2 * nd + 8;
    char *deep2 = malloc(nlen);
    int off = snprintf(deep2, nlen, "%.*s", (int)(code - nested), nested);
    memset(deep2 + off, '[', nd);
    memset(deep2 + off + nd, ']', nd);
    snprintf(deep2 + off + 2 * nd, nlen - off - 2 * nd, "%s", code + 3);
    free(nested);
    hostile_text(deep2, 0, P_, "not valid JSON");
    valid("stripe", NULL, NULL);
    /* bytes that are not UTF-8 where text goes */
    static const char *const bad_bytes[] = {"\xff", "\xc0\xae", "\xed\xa0\x80", "\x00",
                                            "\\ud800 lone surrogate"};
    static const size_t bad_lens[] = {1, 2, 3, 1, 20};
    for (size_t i = 0; i < sizeof(bad_bytes) / sizeof(bad_bytes[0]); i++) {
        snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
        char *ev = event_with(rid, "reason", "\"@@\"");
        char *mark = strstr(ev, "@@");
        size_t len = strlen(ev) - 2 + bad_lens[i];
        char *b = malloc(len + 1);
        memcpy(b, ev, (size_t)(mark - ev));
        memcpy(b + (mark - ev), bad_bytes[i], bad_lens[i]);
        memcpy(b + (mark - ev) + bad_lens[i], mark + 2, strlen(mark + 2) + 1);
        free(ev);
        add_raw(rid, strlen(rid), b, len, 0, P_, "not valid JSON");
    }
    hostile_text(xstrdup("\xef\xbb\xbf{\"specversion\":\"1.0\"}"), 0, P_, "not valid JSON");
    /* Kafka keys that are not the requestId */
    static const char *const bad_keys2[] = {"someone-else", "h-\r\nX: 1", "\xff\xfe", ""};
    for (size_t i = 0; i < sizeof(bad_keys2) / sizeof(bad_keys2[0]); i++) {
        snprintf(rid, sizeof(rid), "h-%zu", nmsgs);
        char *ev = event_with(rid, NULL, NULL);
        struct hmsg *m = add_raw(bad_keys2[i], strlen(bad_keys2[i]) + (i == 3 ? 1 : 0), ev,
                                 strlen(ev), 0, S, "Kafka key");
        (void)m;
    }
    valid("toss", "reason", "\"null\"");
}

/* Every hostile message is dead-lettered with its reason, every valid one
 * refunded once, and nothing waits behind anything. Before the fix the first
 * message (CreateTime 9200000000000000000) stopped the whole intake. */
Test(hostile, corpus_is_dead_lettered_and_valid_messages_around_it_succeed, .fini = stop,
     .timeout = 280)
{
    P = pipeline_start("hostile_corpus", NULL);
    build_corpus();
    publish_all();

    size_t hostile = 0, valid_n = 0;
    for (size_t i = 0; i < nmsgs; i++) {
        struct hmsg *m = &msgs[i];
        cr_assert(m->delivered && m->err == RD_KAFKA_RESP_ERR_NO_ERROR,
                  "message %zu (%.60s) refused by the broker: %s", i, m->value,
                  rd_kafka_err2str(m->err));
        if (m->reason != NULL)
            hostile++;
        else
            valid_n++;
    }
    cr_log_info("published %zu hostile and %zu valid messages", hostile, valid_n);
    cr_assert_geq(hostile, 80);

    for (size_t i = 0; i < nmsgs; i++) {
        if (msgs[i].reason != NULL)
            continue;
        const char *st = pipeline_wait_final(P, msgs[i].rid, FINAL_TIMEOUT_MS);
        cr_expect_str_eq(st != NULL ? st : "(not final)", "SUCCEEDED", "%s (logs: %s)", msgs[i].rid,
                         pipeline_log_dir(P));
        cr_expect_eq(pipeline_refunds(P, msgs[i].pk), 1, "refunds of %s", msgs[i].pk);
    }
    cr_assert(pipeline_wait_consumed(P, "cancel_failed", "intake", 60000),
              "the intake did not get through the corpus (logs: %s)", pipeline_log_dir(P));

    struct pipeline_msg *dl;
    size_t n = pipeline_read_topic(P, "dlq", hostile, 60000, &dl);
    cr_expect_eq(n, hostile, "%zu dead letters for %zu hostile messages", n, hostile);
    for (size_t i = 0; i < nmsgs; i++) {
        struct hmsg *m = &msgs[i];
        if (m->reason == NULL)
            continue;
        char part[16], offs[32];
        snprintf(part, sizeof(part), "%d", (int)m->partition);
        I64(offs, m->offset);
        const struct pipeline_msg *x = NULL;
        for (size_t k = 0; k < n && x == NULL; k++)
            if (hdr(&dl[k], "dlq.original.partition") != NULL &&
                strcmp(hdr(&dl[k], "dlq.original.partition"), part) == 0 &&
                strcmp(hdr(&dl[k], "dlq.original.offset"), offs) == 0)
                x = &dl[k];
        if (x == NULL) {
            cr_expect_fail("message %zu (%.80s) at %s/%s has no dead letter", i, m->value, part,
                           offs);
            continue;
        }
        const char *err = hdr(x, "dlq.error");
        cr_expect_str_eq(hdr(x, "dlq.reason"), m->reason, "message %zu (%.80s): %s", i, m->value,
                         err);
        cr_expect(err != NULL && strstr(err, m->error) != NULL,
                  "message %zu (%.80s): dlq.error \"%s\" does not mention %s", i, m->value, err,
                  m->error);
        cr_expect_str_eq(hdr(x, "dlq.consumer"), "intake-consumer");
        cr_expect(x->len == m->len && memcmp(x->value, m->value, m->len) == 0,
                  "message %zu: the dead letter does not carry the original bytes", i);
    }
    pipeline_msgs_free(dl, n);
    char count[16];
    snprintf(count, sizeof(count), "%zu", valid_n);
    cr_expect(
        pipeline_wait_query(P, "SELECT count(*)::text FROM cancel_request", 0, NULL, count, 1000),
        "only the valid messages became requests");
    cr_expect_eq(pipeline_log_count(P, "intake-consumer-0.log", "will retry"), 0,
                 "the intake retried a message (logs: %s)", pipeline_log_dir(P));
    for (size_t i = 0; i < nmsgs; i++) {
        free(msgs[i].key);
        free(msgs[i].value);
    }
    nmsgs = 0;
}

/* ---- values the database refuses ---- */

static void sql(const char *text)
{
    char err[512];
    cr_assert(itest_exec(pipeline_itest(P), text, 0, NULL, err, sizeof(err)), "%s", err);
}

/* A value our checks let through but the database refuses (here made so by
 * a trigger and a constraint the code does not know) is about the message:
 * dead-lettered with its SQLSTATE, and the partition moves on. Before the
 * fix only class 23 was: 22008 stopped the intake for good. */
Test(hostile, a_value_the_database_refuses_is_dead_lettered_with_its_sqlstate, .fini = stop,
     .timeout = 200)
{
    P = pipeline_start("hostile_db", NULL);
    sql("CREATE FUNCTION h_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.payment_key = 'pk_22008' THEN"
        "  RAISE EXCEPTION 'timestamp out of range' USING ERRCODE = '22008'; END IF;"
        " RETURN NEW; END $$");
    sql("CREATE TRIGGER h_refuse BEFORE INSERT ON cancel_request"
        " FOR EACH ROW EXECUTE FUNCTION h_refuse()");
    sql("ALTER TABLE cancel_request ADD CONSTRAINT h_no_23514 CHECK (payment_key <> 'pk_23514')");
    static const char *const keys[] = {"pk_22008", "pk_ok_1", "pk_23514", "pk_ok_2"};
    for (size_t i = 0; i < 4; i++) {
        char rid[16];
        snprintf(rid, sizeof(rid), "db-%zu", i);
        pipeline_payment(P, "toss", keys[i], 3000, "KRW", 0);
        pipeline_publish(P, rid, "toss", keys[i], 3000, "KRW", false);
    }
    cr_expect_str_eq(pipeline_wait_final(P, "db-1", FINAL_TIMEOUT_MS), "SUCCEEDED");
    cr_expect_str_eq(pipeline_wait_final(P, "db-3", FINAL_TIMEOUT_MS), "SUCCEEDED");
    struct pipeline_msg *dl;
    size_t n = pipeline_read_topic(P, "dlq", 2, 60000, &dl);
    cr_assert_eq(n, 2, "dead letters: %zu (logs: %s)", n, pipeline_log_dir(P));
    for (size_t k = 0; k < n; k++) {
        const char *rid = hdr(&dl[k], "dlq.request.id");
        const char *err = hdr(&dl[k], "dlq.error");
        cr_expect_str_eq(hdr(&dl[k], "dlq.reason"), "SCHEMA_VIOLATION");
        cr_expect_not_null(strstr(err, "the database refused the message"), "%s", err);
        cr_expect_not_null(
            strstr(err, strcmp(rid, "db-0") == 0 ? "SQLSTATE 22008" : "SQLSTATE 23514"), "%s: %s",
            rid, err);
    }
    pipeline_msgs_free(dl, n);
    cr_expect_eq(pipeline_refunds(P, "pk_22008") + pipeline_refunds(P, "pk_23514"), 0);
}

/* ---- gateway answers ---- */

static long long query_int(const char *text, const char *rid)
{
    const char *params[] = {rid};
    return itest_query_int(pipeline_itest(P), text, 1, params);
}

/* Retry-After 9223372036854775 (the issue) and a date in the year 9999 are
 * capped at one day: the request waits a day, says why, and nothing else
 * waits. A gateway message cut inside a UTF-8 character is stored. An
 * answer the database refuses once is dead-lettered and its request still
 * ends SUCCEEDED, with one refund, under the same key. Before the fix each
 * of the first three paused every refund "until the database is back". */
Test(hostile, gateway_answers_stop_nothing, .fini = stop, .timeout = 280)
{
    P = pipeline_start("hostile_gateway", "gateways:\n  toss:\n    retry: { deadline: 2d }\n");
    pipeline_payment(P, "toss", "pk_ra", 3000, "KRW", 0);
    pipeline_payment(P, "toss", "pk_date", 3000, "KRW", 0);
    pipeline_payment(P, "toss", "pk_utf8", 3000, "KRW", 0);
    pipeline_payment(P, "toss", "pk_rec", 3000, "KRW", 0);
    pipeline_sim_fault(P, "{\"type\":\"rate_limited\",\"paymentKey\":\"pk_ra\","
                          "\"retryAfterHeader\":\"9223372036854775\"}");
    pipeline_sim_fault(P, "{\"type\":\"rate_limited\",\"paymentKey\":\"pk_date\","
                          "\"retryAfterHeader\":\"Fri, 31 Dec 9999 23:59:59 GMT\"}");
    /* 1 + 85 three-byte characters: Toss's message is kept in 255 bytes,
     * which ends inside the 85th character. */
    char body[600] = "{\"code\":\"PROVIDER_ERROR\",\"message\":\"a";
    for (int i = 0; i < 85; i++)
        strcat(body, "가");
    strcat(body, "\"}");
    json_t *f = json_pack("{s:s, s:s, s:i, s:s}", "type", "raw", "paymentKey", "pk_utf8", "status",
                          500, "body", body);
    char *fj = json_dumps(f, JSON_COMPACT);
    pipeline_sim_fault(P, fj);
    free(fj);
    json_decref(f);
    /* The ANSWERED row of r-rec's attempt 1 is refused every time it is
     * tried (the record of a group commit is tried again alone before the
     * event is dead-lettered, so "once" would depend on the batching). */
    sql("CREATE FUNCTION h_refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.request_id = 'r-rec' AND NEW.event = 'ANSWERED' AND NEW.attempt = 1 THEN"
        "  RAISE EXCEPTION 'value out of range' USING ERRCODE = '22003'; END IF;"
        " RETURN NEW; END $$");
    sql("CREATE TRIGGER h_refuse_once BEFORE INSERT ON retry_attempt_log"
        " FOR EACH ROW EXECUTE FUNCTION h_refuse_once()");

    int64_t t0 = wall_ms();
    pipeline_publish(P, "r-ra", "toss", "pk_ra", 3000, "KRW", false);
    pipeline_publish(P, "r-date", "toss", "pk_date", 3000, "KRW", false);
    pipeline_publish(P, "r-utf8", "toss", "pk_utf8", 3000, "KRW", false);
    pipeline_publish(P, "r-rec", "toss", "pk_rec", 3000, "KRW", false);
    for (int i = 0; i < 4; i++) {
        char rid[16], pk[16];
        snprintf(rid, sizeof(rid), "r-ok-%d", i);
        snprintf(pk, sizeof(pk), "pi_ok_%d", i);
        pipeline_payment(P, "stripe", pk, 900, "USD", 0);
        pipeline_publish(P, rid, "stripe", pk, 900, "USD", false);
    }
    for (int i = 0; i < 4; i++) {
        char rid[16];
        snprintf(rid, sizeof(rid), "r-ok-%d", i);
        cr_expect_str_eq(pipeline_wait_final(P, rid, FINAL_TIMEOUT_MS), "SUCCEEDED", "%s", rid);
    }
    cr_expect_str_eq(pipeline_wait_final(P, "r-utf8", FINAL_TIMEOUT_MS), "SUCCEEDED");
    cr_expect_eq(pipeline_refunds(P, "pk_utf8"), 1);
    cr_expect_eq(query_int("SELECT count(*) FROM retry_attempt_log WHERE request_id = $1"
                           " AND error_message LIKE 'a가가%'",
                           "r-utf8"),
                 1, "the cut message is in the attempt log");
    /* Left IN_FLIGHT, taken over by the reconciler after the 10 s lease,
     * replayed under the same key: one refund. */
    cr_expect_str_eq(pipeline_wait_final(P, "r-rec", FINAL_TIMEOUT_MS), "SUCCEEDED", "(logs: %s)",
                     pipeline_log_dir(P));
    cr_expect_eq(pipeline_refunds(P, "pk_rec"), 1);
    cr_expect_eq(query_int("SELECT count(*) FROM retry_attempt_log WHERE request_id = $1"
                           " AND event = 'ABANDONED'",
                           "r-rec"),
                 1);
    struct pipeline_msg *dl;
    size_t n = pipeline_read_topic(P, "dlq", 1, 30000, &dl);
    cr_expect_eq(n, 1, "one dead letter: the retry event of r-rec");
    if (n >= 1) {
        cr_expect_str_eq(hdr(&dl[0], "dlq.request.id"), "r-rec");
        cr_expect_str_eq(hdr(&dl[0], "dlq.consumer"), "retry-consumer");
        cr_expect_not_null(strstr(hdr(&dl[0], "dlq.error"), "SQLSTATE 22003"), "%s",
                           hdr(&dl[0], "dlq.error"));
        cr_expect_not_null(strstr(hdr(&dl[0], "dlq.error"), "same idempotency key"), "%s",
                           hdr(&dl[0], "dlq.error"));
    }
    pipeline_msgs_free(dl, n);

    static const char *const capped[] = {"r-ra", "r-date"};
    for (int i = 0; i < 2; i++) {
        const char *rid = capped[i];
        cr_expect(pipeline_wait_query(P,
                                      "SELECT status || ' ' || attempts FROM cancel_request"
                                      " WHERE request_id = $1",
                                      1, &rid, "SCHEDULED 1", 30000),
                  "%s waits for its second attempt", rid);
        long long wait_s = query_int("SELECT extract(epoch FROM next_attempt_at)::bigint"
                                     " FROM cancel_request WHERE request_id = $1",
                                     rid) -
                           t0 / 1000;
        cr_expect(wait_s >= DAY_MS / 1000 - 120 && wait_s <= DAY_MS / 1000 + 120,
                  "%s: next attempt in %lld s, want one day", rid, wait_s);
        cr_expect_eq(query_int("SELECT count(*) FROM cancel_request WHERE request_id = $1"
                               " AND last_error_code = 'TOO_MANY_REQUESTS'"
                               " AND last_error_message LIKE '%capped at 1d%'",
                               rid),
                     1, "%s says its Retry-After was capped", rid);
    }
    cr_expect_eq(pipeline_refunds(P, "pk_ra") + pipeline_refunds(P, "pk_date"), 0);
    cr_expect_eq(pipeline_log_count(P, "retry-consumer-0.log", "until the database is back"), 0,
                 "the retry-consumer paused (logs: %s)", pipeline_log_dir(P));
}
