/*
 * ops_lag: see ops_lag.h.
 */
#include "ops/ops_lag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kafka/kafka.h"
#include "ops/ops_dlq.h"

int64_t ops_lag_partition(int64_t committed, int64_t low, int64_t high)
{
    int64_t from = committed >= 0 ? committed : low;
    if (from < low)
        from = low; /* committed before retention removed the messages */
    return high > from ? high - from : 0;
}

/* Committed offsets of group for every partition of parts (in place:
 * offset < 0 when none). */
static bool committed_offsets(rd_kafka_t *rk, const char *group,
                              rd_kafka_topic_partition_list_t *parts, int timeout_ms, char *err,
                              size_t errlen)
{
    char why[256];
    bool ok = false;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, parts);
    rd_kafka_event_t *ev = NULL;

    if (q == NULL || opts == NULL || req == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, why, sizeof(why)) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "%s", why);
        goto out;
    }
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (ev == NULL) {
        snprintf(err, errlen, "timed out asking for the committed offsets");
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "%s", rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_ListConsumerGroupOffsets_result_t *res =
        rd_kafka_event_ListConsumerGroupOffsets_result(ev);
    size_t ngroups = 0;
    const rd_kafka_group_result_t **groups =
        res != NULL ? rd_kafka_ListConsumerGroupOffsets_result_groups(res, &ngroups) : NULL;
    if (ngroups != 1) {
        snprintf(err, errlen, "the broker answered for %zu groups", ngroups);
        goto out;
    }
    const rd_kafka_error_t *gerr = rd_kafka_group_result_error(groups[0]);
    if (gerr != NULL) {
        snprintf(err, errlen, "%s", rd_kafka_error_string(gerr));
        goto out;
    }
    const rd_kafka_topic_partition_list_t *got = rd_kafka_group_result_partitions(groups[0]);
    for (int i = 0; i < parts->cnt; i++) {
        parts->elems[i].offset = -1;
        for (int j = 0; got != NULL && j < got->cnt; j++) {
            if (got->elems[j].partition == parts->elems[i].partition &&
                strcmp(got->elems[j].topic, parts->elems[i].topic) == 0 &&
                got->elems[j].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                parts->elems[i].offset = got->elems[j].offset;
        }
    }
    ok = true;
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (req != NULL)
        rd_kafka_ListConsumerGroupOffsets_destroy(req);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    return ok;
}

static void one_pair(rd_kafka_t *rk, int timeout_ms, struct ops_group_lag *g)
{
    int n = kafka_partition_count(rk, g->topic, timeout_ms, g->error, sizeof(g->error));
    if (n < 0)
        return;
    g->partitions = n;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    int64_t *low = calloc((size_t)n + 1, sizeof(*low));
    int64_t *high = calloc((size_t)n + 1, sizeof(*high));
    if (parts == NULL || low == NULL || high == NULL) {
        snprintf(g->error, sizeof(g->error), "out of memory");
        goto out;
    }
    for (int p = 0; p < n; p++) {
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, g->topic, p, &low[p], &high[p], timeout_ms);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(g->error, sizeof(g->error), "could not read end offsets of [%d]: %s", p,
                     rd_kafka_err2str(e));
            goto out;
        }
        g->end_offsets += high[p];
        rd_kafka_topic_partition_list_add(parts, g->topic, p);
    }
    if (!committed_offsets(rk, g->group, parts, timeout_ms, g->error, sizeof(g->error)))
        goto out;
    for (int i = 0; i < parts->cnt; i++) {
        int p = parts->elems[i].partition;
        if (parts->elems[i].offset >= 0)
            g->committed_partitions++;
        g->lag += ops_lag_partition(parts->elems[i].offset, low[p], high[p]);
    }
out:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    free(low);
    free(high);
}

bool ops_lag_read(const struct config *cfg, int timeout_ms, struct ops_group_lag *out, char *err,
                  size_t errlen)
{
    const struct {
        const char *role, *group, *topic;
    } pairs[OPS_LAG_PAIRS] = {
        {"intake", cfg->consumers.intake.group_id, cfg->topics.cancel_failed.name},
        {"retry", cfg->consumers.retry.group_id, cfg->topics.retry.name},
        {"alert", cfg->consumers.alert.group_id, cfg->topics.outcome.name},
        {"alert", cfg->consumers.alert.group_id, cfg->topics.dlq.name},
    };

    memset(out, 0, OPS_LAG_PAIRS * sizeof(*out));
    rd_kafka_t *rk = ops_dlq_reader_new(cfg, err, errlen);
    if (rk == NULL)
        return false;
    for (int i = 0; i < OPS_LAG_PAIRS; i++) {
        snprintf(out[i].role, sizeof(out[i].role), "%s", pairs[i].role);
        snprintf(out[i].group, sizeof(out[i].group), "%s", pairs[i].group);
        snprintf(out[i].topic, sizeof(out[i].topic), "%s", pairs[i].topic);
        one_pair(rk, timeout_ms, &out[i]);
        if (i == 0 && strstr(out[i].error, "could not reach") != NULL) {
            snprintf(err, errlen, "%s", out[i].error);
            ops_dlq_reader_free(rk);
            return false;
        }
    }
    ops_dlq_reader_free(rk);
    return true;
}
