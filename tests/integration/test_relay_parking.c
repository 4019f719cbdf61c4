/*
 * Poison outbox rows on the real stack (pipeline_fixture.h): rows the broker
 * can never accept are parked within seconds, while the rows around them and
 * the pipeline's own events are published; cancelctl status and
 * cancelctl outbox show them; a requeue after the fix publishes them, and a
 * requeue without one parks them again. Every requeue is audited.
 *
 * The poison, inserted into the outbox next to ordinary rows:
 * - a 40 KB row for a topic whose max.message.bytes is 16 KB: the broker
 *   refuses it (MSG_SIZE_TOO_LARGE in the delivery report);
 * - a 1.5 MB row: larger than the producer's message.max.bytes, refused
 *   before it leaves;
 * - a row for a topic that does not exist (the broker does not create
 *   topics by itself: deploy/local/stack);
 * - a row whose headers are not [name, value] pairs of strings.
 * librdkafka waits topic.metadata.propagation.max.ms (30 s by default)
 * before it calls a topic unknown; the test sets 2 s.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "pipeline_fixture.h"

#include "base/clock.h"

#define FINAL_STATUSES                                                                             \
    "('SUCCEEDED', 'ALREADY_REFUNDED', 'FAILED', 'EXHAUSTED', 'MANUALLY_RESOLVED')"

static struct pipeline *P;

static void stop(void)
{
    pipeline_stop(P);
    P = NULL;
}

static long long query_int(const char *sql)
{
    return itest_query_int(pipeline_itest(P), sql, 0, NULL);
}

/* ---- topics with settings of their own ---- */

static rd_kafka_t *admin(void)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", pipeline_itest(P)->bootstrap, errstr,
                      sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(rk, "%s", errstr);
    return rk;
}

/* Wait for the answer of an admin request on q; its error (the first
 * resource's / topic's). */
static rd_kafka_resp_err_t admin_result(rd_kafka_queue_t *q, bool create)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    cr_assert_not_null(ev, "the admin request got no answer");
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    size_t cnt = 0;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && create) {
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        e = cnt == 1 ? rd_kafka_topic_result_error(res[0]) : e;
    } else if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const rd_kafka_ConfigResource_t **res =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &cnt);
        e = cnt == 1 ? rd_kafka_ConfigResource_error(res[0]) : e;
    }
    rd_kafka_event_destroy(ev);
    return e;
}

/* Create topic (1 partition) with max.message.bytes, or the broker's
 * default when max_bytes is NULL. */
static void create_topic(const char *topic, const char *max_bytes)
{
    char errstr[256];
    rd_kafka_t *rk = admin();
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, 1, errstr, sizeof(errstr));
    cr_assert_not_null(nt, "%s", errstr);
    if (max_bytes != NULL)
        rd_kafka_NewTopic_set_config(nt, "max.message.bytes", max_bytes);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_resp_err_t e = admin_result(q, true);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "CreateTopics %s: %s", topic, rd_kafka_err2str(e));
    for (int i = 0; i < 50 && itest_topic_partitions(pipeline_itest(P), topic) != 1; i++)
        itest_sleep_ms(100);
}

static void set_max_message_bytes(const char *topic, const char *max_bytes)
{
    rd_kafka_t *rk = admin();
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_ConfigResource_set_config(cr, "max.message.bytes", max_bytes);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AlterConfigs(rk, &cr, 1, NULL, q);
    rd_kafka_resp_err_t e = admin_result(q, false);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
    rd_kafka_destroy(rk);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "AlterConfigs %s: %s", topic, rd_kafka_err2str(e));
}

/* ---- outbox rows ---- */

/* Insert a row of `bytes` bytes of 'x' for topic with headers (JSON text);
 * returns its id. */
static long long insert_row(const char *topic, const char *key, int bytes, const char *headers)
{
    char size[16];
    snprintf(size, sizeof(size), "%d", bytes);
    const char *params[] = {topic, key, size, headers};
    char *id = itest_query_value(pipeline_itest(P),
                                 "INSERT INTO outbox (topic, msg_key, value, headers, event_type)"
                                 " VALUES ($1, $2, convert_to(repeat('x', $3::int), 'UTF8'),"
                                 " $4::jsonb, 'test') RETURNING id",
                                 4, params);
    long long v = atoll(id);
    free(id);
    return v;
}

static char *row_text(long long id, const char *column)
{
    char sql[200], idt[24];
    snprintf(sql, sizeof(sql), "SELECT %s FROM outbox WHERE id = $1::bigint", column);
    snprintf(idt, sizeof(idt), "%lld", id);
    const char *params[] = {idt};
    return itest_query_value(pipeline_itest(P), sql, 1, params);
}

static bool is_published(long long id)
{
    char *v = row_text(id, "published_at IS NOT NULL");
    bool yes = v != NULL && strcmp(v, "t") == 0;
    free(v);
    return yes;
}

static bool is_parked(long long id)
{
    char *v = row_text(id, "parked_at IS NOT NULL");
    bool yes = v != NULL && strcmp(v, "t") == 0;
    free(v);
    return yes;
}

static void expect_reason(long long id, const char *prefix)
{
    char *reason = row_text(id, "park_reason");
    cr_expect(reason != NULL && strncmp(reason, prefix, strlen(prefix)) == 0,
              "row %lld: park_reason \"%s\", want %s...", id, reason ? reason : "(null)", prefix);
    free(reason);
}

/* ---- cancelctl ---- */

/* cancelctl --json args... as operator it-operator, expecting want_exit. */
static json_t *cancelctl_json(int want_exit, const char *const *args)
{
    const char *argv[16] = {"--json"};
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL && n + 1 < 16; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    setenv("CANCELCTL_OPERATOR", "it-operator", 1);
    return pipeline_cancelctl_json(P, want_exit, argv);
}

/* ---- the test ---- */

static void event_of(int i, struct cancel_failed_event *ev, char *rid, char *pk, void *arg)
{
    (void)arg;
    snprintf(rid, PIPELINE_ID_MAX, "park-%04d", i);
    snprintf(pk, PIPELINE_ID_MAX, "tpay_park_%04d", i);
    ev->request_id = rid;
    ev->payment_key = pk;
    ev->gateway = "toss";
    ev->amount = 1000 + i;
    ev->currency = "KRW";
}

Test(relay_parking, poison_rows_are_parked_and_requeued, .fini = stop, .timeout = 240)
{
    enum { N = 10 };
    char side[200], small[200], missing[200];
    const char *pairs = "[[\"content-type\", \"text/plain\"]]";

    P = pipeline_start("relay_parking", "kafka: { topic.metadata.propagation.max.ms: 2000 }\n");
    struct itest *t = pipeline_itest(P);
    snprintf(side, sizeof(side), "%srelay.side", t->prefix);
    snprintf(small, sizeof(small), "%srelay.small", t->prefix);
    snprintf(missing, sizeof(missing), "%srelay.no-such-topic", t->prefix);
    create_topic(side, NULL);
    create_topic(small, "16384");

    for (int i = 0; i < N; i++) {
        char pk[PIPELINE_ID_MAX];
        snprintf(pk, sizeof(pk), "tpay_park_%04d", i);
        pipeline_payment(P, "toss", pk, 1000 + i, "KRW", 0);
    }
    int64_t t0 = mono_ms();
    long long ok1 = insert_row(side, "ok-1", 100, pairs);
    long long too_big_for_topic = insert_row(small, "big-topic", 40000, pairs);
    long long ok2 = insert_row(small, "ok-2", 1000, pairs);
    long long no_topic = insert_row(missing, "no-topic", 100, pairs);
    pipeline_publish_many(P, N, event_of, NULL);
    long long ok3 = insert_row(side, "ok-3", 100, pairs);
    long long too_big = insert_row(side, "big-client", 1500000, pairs);
    long long bad_headers = insert_row(side, "bad-headers", 100, "[[\"x\", 5]]");
    long long ok4 = insert_row(side, "ok-4", 100, pairs);
    const long long poison[] = {too_big_for_topic, no_topic, too_big, bad_headers};
    const long long fine[] = {ok1, ok2, ok3, ok4};

    int64_t deadline = t0 + 30000;
    bool all = false;
    while (!all && mono_ms() < deadline) {
        all = true;
        for (size_t i = 0; i < 4; i++)
            all = all && is_parked(poison[i]) && is_published(fine[i]);
        if (!all)
            itest_sleep_ms(100);
    }
    int64_t took = mono_ms() - t0;
    fprintf(stderr,
            "relay_parking: 4 poison rows parked and 4 rows around them published in %lld"
            " ms\n",
            (long long)took);
    for (size_t i = 0; i < 4; i++) {
        cr_expect(is_parked(poison[i]), "row %lld was not parked (logs: %s)", poison[i],
                  pipeline_log_dir(P));
        cr_expect(is_published(fine[i]), "row %lld was not published (logs: %s)", fine[i],
                  pipeline_log_dir(P));
    }
    cr_assert(all, "not within 30 s (logs: %s)", pipeline_log_dir(P));
    cr_expect_leq(took, 15000, "parking took %lld ms", (long long)took);
    expect_reason(too_big_for_topic, "MSG_SIZE_TOO_LARGE");
    expect_reason(too_big, "MSG_SIZE_TOO_LARGE");
    expect_reason(no_topic, "UNKNOWN_TOPIC");
    expect_reason(bad_headers, "BAD_HEADERS");

    /* The pipeline went on around them. */
    cr_assert(pipeline_wait_query(
                  P, "SELECT count(*) FROM cancel_request WHERE status IN " FINAL_STATUSES, 0, NULL,
                  "10", 60000),
              "the requests did not finish (logs: %s)", pipeline_log_dir(P));
    cr_expect_eq(query_int("SELECT count(*) FROM cancel_request WHERE status <> 'SUCCEEDED'"), 0);

    /* Operators see them, apart from the backlog (once the pipeline's own
     * events are out). */
    cr_assert(pipeline_wait_query(P,
                                  "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                                  " AND parked_at IS NULL",
                                  0, NULL, "0", 30000),
              "rows left in the backlog (logs: %s)", pipeline_log_dir(P));
    json_t *st = cancelctl_json(0, (const char *const[]){"status", "--timeout", "5s", NULL});
    json_t *ob = json_object_get(st, "outbox");
    cr_expect_eq(json_integer_value(json_object_get(ob, "parked")), 4, "status: %s",
                 json_dumps(ob, 0));
    cr_expect(json_is_object(json_object_get(ob, "oldestParked")), "status: no oldest parked row");
    cr_expect_eq(json_integer_value(json_object_get(ob, "pending")), 0,
                 "parked rows are not backlog: %s", json_dumps(ob, 0));
    cr_expect(json_is_true(json_object_get(json_object_get(st, "relay"), "active")),
              "status: no active relay");
    json_decref(st);
    json_t *list = cancelctl_json(0, (const char *const[]){"outbox", "list-parked", NULL});
    cr_expect_eq(json_array_size(json_object_get(list, "parked")), 4);
    json_decref(list);
    cr_expect_eq(query_int("SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL"), 4);

    /* Fix two causes, requeue those rows: they are published. */
    create_topic(missing, NULL);
    set_max_message_bytes(small, "100000");
    char id1[24], id2[24];
    snprintf(id1, sizeof(id1), "%lld", too_big_for_topic);
    snprintf(id2, sizeof(id2), "%lld", no_topic);
    json_t *rq = cancelctl_json(
        0, (const char *const[]){"outbox", "requeue", "--id", id1, "--note", "topic limit", NULL});
    cr_expect_eq(json_integer_value(json_object_get(rq, "requeued")), 1);
    json_decref(rq);
    rq = cancelctl_json(0, (const char *const[]){"outbox", "requeue", "--id", id2, NULL});
    json_decref(rq);
    deadline = mono_ms() + 30000;
    while (!(is_published(too_big_for_topic) && is_published(no_topic)) && mono_ms() < deadline)
        itest_sleep_ms(100);
    cr_expect(is_published(too_big_for_topic), "the requeued large row was not published (%s)",
              pipeline_log_dir(P));
    cr_expect(is_published(no_topic), "the requeued row for the new topic was not published (%s)",
              pipeline_log_dir(P));

    /* A row that is not parked cannot be requeued. */
    char idok[24];
    snprintf(idok, sizeof(idok), "%lld", ok1);
    json_decref(cancelctl_json(1, (const char *const[]){"outbox", "requeue", "--id", idok, NULL}));

    /* The other two are unfixed: a dry run names them, a requeue parks them
     * again. */
    rq = cancelctl_json(0, (const char *const[]){"outbox", "requeue", "--all", "--dry-run", NULL});
    cr_expect_eq(json_integer_value(json_object_get(rq, "requeued")), 2);
    json_decref(rq);
    cr_expect_eq(query_int("SELECT count(*) FROM outbox_requeue"), 2, "a dry run was audited");
    rq = cancelctl_json(0, (const char *const[]){"outbox", "requeue", "--all", NULL});
    cr_expect_eq(json_integer_value(json_object_get(rq, "requeued")), 2);
    json_decref(rq);
    cr_expect(pipeline_wait_query(P,
                                  "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL"
                                  " AND publish_attempts >= 2",
                                  0, NULL, "2", 30000),
              "the unfixed rows were not parked again (logs: %s)", pipeline_log_dir(P));
    cr_expect_eq(query_int("SELECT count(*) FROM outbox_requeue WHERE operator = 'it-operator'"),
                 4);
    cr_expect_eq(query_int("SELECT count(*) FROM outbox_requeue WHERE note = 'topic limit'"), 1);
    cr_expect_eq(query_int("SELECT count(*) FROM outbox WHERE published_at IS NULL"
                           " AND parked_at IS NULL"),
                 0, "rows left in the backlog (logs: %s)", pipeline_log_dir(P));
}
