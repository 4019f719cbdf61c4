/*
 * ops_dlq: see ops_dlq.h.
 */
#include "ops/ops_dlq.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bounds.h"
#include "base/clock.h"
#include "base/duration.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/timeutil.h"
#include "event/dlq.h"
#include "kafka/kafka.h"

/* offsetsForTimes looks at Kafka timestamps (when the relay produced the
 * dead letter), the filter at dlq.at (when it was decided, earlier). Seek
 * this much before --since so a slow relay cannot hide a letter. */
#define OPS_DLQ_SEEK_MARGIN_MS (15LL * 60 * 1000)

static const char *header(const json_t *headers, const char *name)
{
    const char *s = json_string_value(json_object_get(headers, name));
    return s != NULL ? s : "";
}

static int64_t header_int(const json_t *headers, const char *name, int64_t fallback)
{
    long long v;
    return bounds_parse_int(header(headers, name), INT64_MIN, INT64_MAX, &v) ? (int64_t)v
                                                                             : fallback;
}

static bool gateway_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void ops_dlq_gateway_of(const void *value, size_t len, char *buf, size_t buflen)
{
    buf[0] = '\0';
    if (value == NULL || len == 0)
        return;
    json_t *doc = json_loadb(value, len, 0, NULL);
    const char *gw = json_string_value(json_object_get(json_object_get(doc, "data"), "gateway"));
    if (gw != NULL && gateway_name_ok(gw))
        snprintf(buf, buflen, "%s", gw);
    json_decref(doc);
}

bool ops_dlq_letter_init(struct ops_dlq_letter *l, const char *topic, int32_t partition,
                         int64_t offset, int64_t timestamp_ms, const void *key, size_t key_len,
                         const void *value, size_t value_len, json_t *headers)
{
    memset(l, 0, sizeof(*l));
    l->partition = partition;
    l->offset = offset;
    l->timestamp_ms = timestamp_ms > 0 ? timestamp_ms : 0;
    l->headers = headers != NULL ? headers : json_object();
    l->topic = strdup(topic != NULL ? topic : "");
    if (l->headers == NULL || l->topic == NULL)
        goto oom;
    if (key != NULL) {
        l->key = malloc(key_len + 1);
        if (l->key == NULL)
            goto oom;
        memcpy(l->key, key, key_len);
        l->key[key_len] = '\0';
        l->key_len = key_len;
    }
    if (value != NULL) {
        l->value = malloc(value_len > 0 ? value_len : 1);
        if (l->value == NULL)
            goto oom;
        memcpy(l->value, value, value_len);
        l->value_len = value_len;
    }
    /* dlq.error quotes gateways and parsers; a dead letter written before
     * the redaction existed may still hold a secret: mask on the way out. */
    redact_process_json(l->headers);
    l->reason = header(l->headers, DLQ_HEADER_REASON);
    l->request_id = header(l->headers, DLQ_HEADER_REQUEST_ID);
    l->error = header(l->headers, DLQ_HEADER_ERROR);
    l->original_topic = header(l->headers, DLQ_HEADER_ORIGINAL_TOPIC);
    l->consumer = header(l->headers, DLQ_HEADER_CONSUMER);
    l->original_partition = (int32_t)header_int(l->headers, DLQ_HEADER_ORIGINAL_PARTITION, -1);
    l->original_offset = header_int(l->headers, DLQ_HEADER_ORIGINAL_OFFSET, -1);
    l->attempts = (int)header_int(l->headers, DLQ_HEADER_ATTEMPTS, 0);
    int64_t at = 0;
    if (!rfc3339_parse(header(l->headers, DLQ_HEADER_AT), &at))
        at = l->timestamp_ms;
    l->at_ms = at;
    ops_dlq_gateway_of(l->value, l->value_len, l->gateway, sizeof(l->gateway));
    return true;
oom:
    ops_dlq_letter_clear(l);
    return false;
}

void ops_dlq_letter_clear(struct ops_dlq_letter *l)
{
    if (l == NULL)
        return;
    free(l->topic);
    free(l->key);
    free(l->value);
    json_decref(l->headers);
    memset(l, 0, sizeof(*l));
}

/* True if word is one of the comma-separated items of list. */
static bool in_list(const char *list, const char *word)
{
    size_t wn = strlen(word);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end != '\0' && *end != ',')
            end++;
        const char *e = end;
        while (e > p && e[-1] == ' ')
            e--;
        if ((size_t)(e - p) == wn && wn > 0 && strncmp(p, word, wn) == 0)
            return true;
        p = end;
    }
    return false;
}

bool ops_dlq_filter_match(const struct ops_dlq_filter *f, const struct ops_dlq_letter *l)
{
    if (f->request_id[0] != '\0' && strcmp(f->request_id, l->request_id) != 0)
        return false;
    if (f->reasons[0] != '\0' && !in_list(f->reasons, l->reason))
        return false;
    if (f->gateway[0] != '\0' && strcmp(f->gateway, l->gateway) != 0)
        return false;
    if (f->since_ms > 0 && (l->at_ms == 0 || l->at_ms < f->since_ms))
        return false;
    if (f->until_ms > 0 && (l->at_ms == 0 || l->at_ms >= f->until_ms))
        return false;
    return true;
}

bool ops_dlq_filter_check(const struct ops_dlq_filter *f, char *err, size_t errlen)
{
    char item[64];
    const char *p = f->reasons;

    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = 0;
        while (p[n] != '\0' && p[n] != ',')
            n++;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n == 0)
            break;
        snprintf(item, sizeof(item), "%.*s", (int)n, p);
        if (!dlq_reason_valid(item)) {
            snprintf(err, errlen,
                     "--reason: %s is not a dead-letter reason (PARSE_ERROR, SCHEMA_VIOLATION, "
                     "UNKNOWN_GATEWAY, IDEMPOTENCY_CONFLICT, FAILED, EXHAUSTED, CONFIG_FAULT, "
                     "RECONCILE_MISMATCH, REFUND_FAILED_AFTER_SUCCESS, REFUND_REVERSED, "
                     "REFUND_AFTER_FINAL, WEBHOOK_UNMATCHED)",
                     item);
            return false;
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    if (f->since_ms > 0 && f->until_ms > 0 && f->until_ms <= f->since_ms) {
        snprintf(err, errlen, "--until must be later than --since");
        return false;
    }
    if (f->limit < 0) {
        snprintf(err, errlen, "--limit must be a positive number");
        return false;
    }
    return true;
}

json_t *ops_dlq_filter_json(const struct ops_dlq_filter *f)
{
    json_t *o = json_object();
    char buf[RFC3339_MS_LEN];

    if (o == NULL)
        return NULL;
    if (f->request_id[0] != '\0')
        json_object_set_new(o, "requestId", json_string(f->request_id));
    if (f->reasons[0] != '\0')
        json_object_set_new(o, "reason", json_string(f->reasons));
    if (f->gateway[0] != '\0')
        json_object_set_new(o, "gateway", json_string(f->gateway));
    if (f->since_ms > 0 && rfc3339_format(f->since_ms, buf, sizeof(buf)))
        json_object_set_new(o, "since", json_string(buf));
    if (f->until_ms > 0 && rfc3339_format(f->until_ms, buf, sizeof(buf)))
        json_object_set_new(o, "until", json_string(buf));
    if (f->limit > 0)
        json_object_set_new(o, "limit", json_integer(f->limit));
    return o;
}

static json_t *str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

json_t *ops_dlq_letter_json(const struct ops_dlq_letter *l, size_t value_max)
{
    char at[RFC3339_MS_LEN];
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "topic", json_string(l->topic));
    json_object_set_new(o, "partition", json_integer(l->partition));
    json_object_set_new(o, "offset", json_integer(l->offset));
    json_object_set_new(o, "reason", str_or_null(l->reason));
    json_object_set_new(o, "requestId", str_or_null(l->request_id));
    json_object_set_new(o, "gateway", str_or_null(l->gateway));
    json_object_set_new(o, "at",
                        l->at_ms > 0 && rfc3339_format(l->at_ms, at, sizeof(at)) ? json_string(at)
                                                                                 : json_null());
    json_object_set_new(o, "error", str_or_null(l->error));
    json_object_set_new(o, "originalTopic", str_or_null(l->original_topic));
    json_object_set_new(o, "originalPartition",
                        l->original_partition >= 0 ? json_integer(l->original_partition)
                                                   : json_null());
    json_object_set_new(o, "originalOffset",
                        l->original_offset >= 0 ? json_integer(l->original_offset) : json_null());
    json_object_set_new(o, "consumer", str_or_null(l->consumer));
    json_object_set_new(o, "attempts", l->attempts > 0 ? json_integer(l->attempts) : json_null());
    if (l->key != NULL) {
        char key[512];
        dlq_sanitize_text(l->key, l->key_len, key, sizeof(key));
        json_object_set_new(o, "key", json_string(key));
    } else {
        json_object_set_new(o, "key", json_null());
    }
    json_object_set_new(o, "headers", json_deep_copy(l->headers));
    if (value_max > 0) {
        char *text = malloc(value_max + 4);
        if (text != NULL && l->value != NULL) {
            dlq_sanitize_text((const char *)l->value, l->value_len, text, value_max + 4);
            json_object_set_new(o, "value", json_string(text));
        } else {
            json_object_set_new(o, "value", json_null());
        }
        free(text);
        json_object_set_new(o, "valueBytes", json_integer((json_int_t)l->value_len));
    }
    return o;
}

bool ops_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    char err[128];
    int64_t ms = 0;

    if (s == NULL || s[0] == '\0')
        return false;
    if (rfc3339_parse(s, &ms)) {
        *out_ms = ms;
        return true;
    }
    if (isdigit((unsigned char)s[0]) && duration_parse(s, &ms, err, sizeof(err)) && ms > 0 &&
        ms < now_ms) {
        *out_ms = now_ms - ms;
        return true;
    }
    return false;
}

/* ---- reading ---- */

static bool set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err, size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "cannot set Kafka property %s: %s", key, why);
        return false;
    }
    return true;
}

rd_kafka_t *ops_dlq_reader_new(const struct config *cfg, char *err, size_t errlen)
{
    char group[96], why[512];
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, err, errlen);

    if (conf == NULL)
        return NULL;
    /* Set after the kafka: map so that nothing in it can point this reader
     * at a real group or make it commit. The group id is never joined
     * (assign() only), but must be unique so that it can never be one. */
    snprintf(group, sizeof(group), "cancelctl-dlq-%ld-%" PRId64, (long)getpid(), wall_ms());
    if (!set(conf, "group.id", group, err, errlen) ||
        !set(conf, "enable.auto.commit", "false", err, errlen) ||
        !set(conf, "enable.auto.offset.store", "false", err, errlen) ||
        !set(conf, "enable.partition.eof", "true", err, errlen) ||
        !set(conf, "auto.offset.reset", "earliest", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "could not create the Kafka reader: %s", why);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

void ops_dlq_reader_free(rd_kafka_t *rk)
{
    if (rk == NULL)
        return;
    /* No subscription and no commits: dropping the assignment and closing
     * leaves no trace at the broker. */
    rd_kafka_assign(rk, NULL);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

struct part_state {
    int64_t end; /* high watermark at start: read up to end - 1 */
    bool done;
};

bool ops_dlq_scan(const struct config *cfg, int64_t since_ms, int timeout_ms,
                  ops_dlq_visit_fn visit, void *opaque, struct ops_dlq_scan_stats *stats, char *err,
                  size_t errlen)
{
    const char *topic = cfg->topics.dlq.name;
    struct ops_dlq_scan_stats local = {0};
    struct part_state *parts = NULL;
    rd_kafka_topic_partition_list_t *assign = NULL;
    bool ok = false;
    int remaining = 0;

    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    rd_kafka_t *rk = ops_dlq_reader_new(cfg, err, errlen);
    if (rk == NULL)
        return false;
    int n = kafka_partition_count(rk, topic, timeout_ms, err, errlen);
    if (n < 0)
        goto out;
    stats->partitions = n;
    parts = calloc((size_t)n + 1, sizeof(*parts));
    assign = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    if (parts == NULL || assign == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int p = 0; p < n; p++) {
        int64_t low = 0, high = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, timeout_ms);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "could not read the end offsets of %s [%d]: %s", topic, p,
                     rd_kafka_err2str(e));
            goto out;
        }
        parts[p].end = high;
        stats->end_offsets += high;
        parts[p].done = high <= low;
        if (!parts[p].done) {
            rd_kafka_topic_partition_list_add(assign, topic, p)->offset =
                since_ms > 0
                    ? (since_ms > OPS_DLQ_SEEK_MARGIN_MS ? since_ms - OPS_DLQ_SEEK_MARGIN_MS : 0)
                    : RD_KAFKA_OFFSET_BEGINNING;
            remaining++;
        }
    }
    if (remaining > 0 && since_ms > 0) {
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, assign, timeout_ms);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "could not find the offsets of %s for --since: %s", topic,
                     rd_kafka_err2str(e));
            goto out;
        }
        for (int i = 0; i < assign->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &assign->elems[i];
            /* -1 (END): no message at or after that time in this partition. */
            if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR || tp->offset < 0) {
                if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR || tp->offset == RD_KAFKA_OFFSET_END) {
                    parts[tp->partition].done = true;
                    remaining--;
                    tp->offset = RD_KAFKA_OFFSET_END;
                } else {
                    snprintf(err, errlen, "could not find the offset of %s [%d] for --since: %s",
                             topic, tp->partition, rd_kafka_err2str(tp->err));
                    goto out;
                }
            }
        }
    }
    if (remaining == 0) {
        ok = true;
        goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, assign);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "could not assign %s: %s", topic, rd_kafka_err2str(e));
        goto out;
    }

    int64_t last_progress = wall_ms();
    bool stop = false;
    while (remaining > 0 && !stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            if (wall_ms() - last_progress > timeout_ms) {
                snprintf(err, errlen,
                         "timed out reading %s: no message for %d ms with %d partition(s) "
                         "not read to the end",
                         topic, timeout_ms, remaining);
                goto out;
            }
            continue;
        }
        last_progress = wall_ms();
        int32_t p = m->partition;
        bool ours =
            m->rkt != NULL && strcmp(rd_kafka_topic_name(m->rkt), topic) == 0 && p >= 0 && p < n;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (ours && !parts[p].done) {
                parts[p].done = true;
                remaining--;
            }
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (kafka_classify(m->err) != KAFKA_ERR_TRANSIENT) {
                snprintf(err, errlen, "could not read %s: %s", topic, rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                goto out;
            }
            log_warn("reading %s: %s (retrying)", topic, rd_kafka_message_errstr(m));
        } else if (ours && !parts[p].done) {
            if (m->offset < parts[p].end) {
                rd_kafka_headers_t *hdrs = NULL;
                rd_kafka_timestamp_type_t tstype;
                int64_t ts = rd_kafka_message_timestamp(m, &tstype);
                if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
                    hdrs = NULL;
                struct ops_dlq_letter l;
                if (!ops_dlq_letter_init(&l, topic, p, m->offset, ts, m->key, m->key_len,
                                         m->payload, m->len, dlq_headers_from_kafka(hdrs))) {
                    snprintf(err, errlen, "out of memory");
                    rd_kafka_message_destroy(m);
                    goto out;
                }
                stats->read++;
                if (!visit(&l, opaque))
                    stop = true;
                ops_dlq_letter_clear(&l);
            }
            if (m->offset >= parts[p].end - 1) {
                parts[p].done = true;
                remaining--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    ok = true;
out:
    if (assign != NULL)
        rd_kafka_topic_partition_list_destroy(assign);
    free(parts);
    ops_dlq_reader_free(rk);
    return ok;
}

struct collect_ctx {
    const struct ops_dlq_filter *f;
    struct ops_dlq_list *out;
    bool oom;
};

static bool collect_visit(struct ops_dlq_letter *l, void *opaque)
{
    struct collect_ctx *c = opaque;
    c->out->scanned++;
    if (!ops_dlq_filter_match(c->f, l))
        return true;
    if (c->out->n == c->out->cap) {
        size_t cap = c->out->cap ? c->out->cap * 2 : 16;
        struct ops_dlq_letter *v = realloc(c->out->v, cap * sizeof(*v));
        if (v == NULL) {
            c->oom = true;
            return false;
        }
        c->out->v = v;
        c->out->cap = cap;
    }
    c->out->v[c->out->n++] = *l;
    memset(l, 0, sizeof(*l));
    return c->f->limit <= 0 || (long)c->out->n < c->f->limit;
}

bool ops_dlq_collect(const struct config *cfg, const struct ops_dlq_filter *f, int timeout_ms,
                     struct ops_dlq_list *out, char *err, size_t errlen)
{
    struct collect_ctx c = {f, out, false};
    if (!ops_dlq_scan(cfg, f->since_ms, timeout_ms, collect_visit, &c, NULL, err, errlen))
        return false;
    if (c.oom) {
        snprintf(err, errlen, "out of memory collecting dead letters");
        return false;
    }
    return true;
}

void ops_dlq_list_free(struct ops_dlq_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        ops_dlq_letter_clear(&list->v[i]);
    free(list->v);
    memset(list, 0, sizeof(*list));
}
