/*
 * dlq: see dlq.h.
 */
#include "event/dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bounds.h"
#include "base/i64.h"
#include "base/redact.h"
#include "base/timeutil.h"
#include "event/cancel_event.h"

static const char *const dlq_reasons[] = {
    DLQ_REASON_PARSE_ERROR,
    DLQ_REASON_SCHEMA_VIOLATION,
    DLQ_REASON_UNKNOWN_GATEWAY,
    DLQ_REASON_IDEMPOTENCY_CONFLICT,
    DLQ_REASON_FAILED,
    DLQ_REASON_EXHAUSTED,
    DLQ_REASON_CONFIG_FAULT,
    DLQ_REASON_RECONCILE_MISMATCH,
    DLQ_REASON_REFUND_FAILED_AFTER_SUCCESS,
    DLQ_REASON_REFUND_REVERSED,
    DLQ_REASON_REFUND_AFTER_FINAL,
    DLQ_REASON_WEBHOOK_UNMATCHED,
};

bool dlq_reason_valid(const char *reason)
{
    for (size_t i = 0; reason != NULL && i < sizeof(dlq_reasons) / sizeof(dlq_reasons[0]); i++) {
        if (strcmp(reason, dlq_reasons[i]) == 0)
            return true;
    }
    return false;
}

bool dlq_reason_needs_human(const char *reason)
{
    return reason != NULL && (strcmp(reason, DLQ_REASON_REFUND_FAILED_AFTER_SUCCESS) == 0 ||
                              strcmp(reason, DLQ_REASON_REFUND_REVERSED) == 0 ||
                              strcmp(reason, DLQ_REASON_REFUND_AFTER_FINAL) == 0 ||
                              strcmp(reason, DLQ_REASON_WEBHOOK_UNMATCHED) == 0);
}

size_t dlq_sanitize_text(const char *src, size_t srclen, char *dst, size_t dstsize)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, o = 0;

    if (dstsize == 0)
        return 0;
    size_t limit = dstsize - 1;
    while (i < srclen) {
        size_t n = bounds_utf8_len(s + i, srclen - i);
        char repl = 0;
        if (n == 0 || s[i] == 0) {
            repl = '?';
            n = 1;
        } else if (s[i] < 0x20 || s[i] == 0x7F) {
            repl = ' ';
        }
        size_t outn = repl != 0 ? 1 : n;
        if (o + outn > limit) {
            /* Does not fit: back off whole characters until "..." does. */
            if (limit >= 3) {
                while (o > limit - 3) {
                    o--;
                    while (o > 0 && ((unsigned char)dst[o] & 0xC0) == 0x80)
                        o--;
                }
                memcpy(dst + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (repl != 0)
            dst[o] = repl;
        else
            memcpy(dst + o, s + i, n);
        o += outn;
        i += n;
    }
    dst[o] = '\0';
    return o;
}

bool dlq_key_storable(const void *key, size_t len)
{
    char copy[256];
    if (key == NULL || len == 0 || len >= sizeof(copy))
        return false;
    return dlq_sanitize_text(key, len, copy, sizeof(copy)) == len && memcmp(copy, key, len) == 0;
}

static bool add_pair(json_t *pairs, const char *name, const char *value)
{
    json_t *pair = json_pack("[ss]", name, value);
    return pair != NULL && json_array_append_new(pairs, pair) == 0;
}

json_t *dlq_headers_build(const struct dlq_meta *m, char *err, size_t errlen)
{
    char error[DLQ_ERROR_MAX + 1], num[32], when[RFC3339_MS_LEN], origin_when[RFC3339_MS_LEN];
    json_t *pairs = NULL;

    if (!dlq_reason_valid(m->reason)) {
        snprintf(err, errlen, "cannot build dead-letter headers: unknown reason \"%.40s\"",
                 m->reason != NULL ? m->reason : "");
        return NULL;
    }
    if (m->consumer == NULL || *m->consumer == '\0') {
        snprintf(err, errlen, "cannot build dead-letter headers: consumer is required");
        return NULL;
    }
    if (!rfc3339_format(m->at_ms, when, sizeof(when))) {
        snprintf(err, errlen, "cannot build dead-letter headers: time %lld is out of range",
                 (long long)m->at_ms);
        return NULL;
    }
    if (m->error != NULL) {
        /* Masked before it is cut: a secret cut in two would no longer be
         * recognised. dlq.error reaches Slack and cancelctl. */
        char *clean = redact_process_text(m->error);
        const char *e = clean != NULL ? clean : REDACT_MASK;
        dlq_sanitize_text(e, strlen(e), error, sizeof(error));
        free(clean);
    } else {
        error[0] = '\0';
    }

    pairs = json_array();
    bool ok = pairs != NULL && add_pair(pairs, DLQ_HEADER_REASON, m->reason) &&
              add_pair(pairs, DLQ_HEADER_ERROR, error[0] != '\0' ? error : "no detail");
    /* The origin is unknown for a request that did not come from Kafka. */
    if (ok && m->origin.topic != NULL && *m->origin.topic != '\0') {
        ok = add_pair(pairs, DLQ_HEADER_ORIGINAL_TOPIC, m->origin.topic);
        if (ok && m->origin.partition >= 0) {
            snprintf(num, sizeof(num), "%d", (int)m->origin.partition);
            ok = add_pair(pairs, DLQ_HEADER_ORIGINAL_PARTITION, num);
        }
        if (ok && m->origin.offset >= 0) {
            I64(num, m->origin.offset);
            ok = add_pair(pairs, DLQ_HEADER_ORIGINAL_OFFSET, num);
        }
        if (ok && m->origin.timestamp_ms >= 0 &&
            rfc3339_format(m->origin.timestamp_ms, origin_when, sizeof(origin_when)))
            ok = add_pair(pairs, DLQ_HEADER_ORIGINAL_TIMESTAMP, origin_when);
    }
    ok = ok && add_pair(pairs, DLQ_HEADER_CONSUMER, m->consumer);
    if (ok && cancel_request_id_valid(m->request_id))
        ok = add_pair(pairs, DLQ_HEADER_REQUEST_ID, m->request_id);
    if (ok && m->attempts > 0) {
        snprintf(num, sizeof(num), "%d", m->attempts);
        ok = add_pair(pairs, DLQ_HEADER_ATTEMPTS, num);
    }
    ok = ok && add_pair(pairs, DLQ_HEADER_AT, when);
    if (!ok) {
        /* json_pack fails on invalid UTF-8 too: only topic and consumer can
         * bring that, everything else is ours or sanitized. */
        snprintf(err, errlen,
                 "cannot build dead-letter headers: topic or consumer is not valid "
                 "UTF-8, or out of memory");
        json_decref(pairs);
        return NULL;
    }
    return pairs;
}

rd_kafka_headers_t *dlq_headers_to_kafka(const json_t *pairs, char *err, size_t errlen)
{
    size_t i;
    json_t *pair;

    if (!json_is_array(pairs)) {
        snprintf(err, errlen, "headers must be a JSON array of [name, value] pairs");
        return NULL;
    }
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(json_array_size(pairs));
    json_array_foreach(pairs, i, pair)
    {
        json_t *name = json_array_get(pair, 0), *value = json_array_get(pair, 1);
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(name) ||
            json_string_length(name) == 0 || !(json_is_string(value) || json_is_null(value))) {
            snprintf(err, errlen,
                     "headers[%zu] must be a [name, value] pair of a non-empty string and a "
                     "string or null",
                     i);
            rd_kafka_headers_destroy(hdrs);
            return NULL;
        }
        const char *v = json_string_value(value);
        rd_kafka_resp_err_t e =
            rd_kafka_header_add(hdrs, json_string_value(name), (ssize_t)json_string_length(name), v,
                                v != NULL ? (ssize_t)json_string_length(value) : 0);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "could not add header \"%.64s\": %s", json_string_value(name),
                     rd_kafka_err2str(e));
            rd_kafka_headers_destroy(hdrs);
            return NULL;
        }
    }
    return hdrs;
}

json_t *dlq_headers_from_kafka(const rd_kafka_headers_t *hdrs)
{
    const char *name;
    const void *value;
    size_t size;
    json_t *obj = json_object();

    if (obj == NULL || hdrs == NULL)
        return obj;
    for (size_t idx = 0;
         rd_kafka_header_get_all(hdrs, idx, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         idx++) {
        /* Sanitizing never grows a string, so len + 1 bytes never cut. */
        size_t nlen = strlen(name);
        char *n = malloc(nlen + 1), *v = value != NULL ? malloc(size + 1) : NULL;
        bool ok = n != NULL && (value == NULL || v != NULL);
        if (ok) {
            dlq_sanitize_text(name, nlen, n, nlen + 1);
            if (v != NULL)
                dlq_sanitize_text(value, size, v, size + 1);
            ok = json_object_set_new(obj, n, v != NULL ? json_string(v) : json_null()) == 0;
        }
        free(n);
        free(v);
        if (!ok) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

const char *dlq_guess_request_id(const char *json_bytes, size_t len, char *buf, size_t buflen)
{
    json_error_t jerr;
    const char *found = NULL;

    if (json_bytes == NULL || buflen == 0)
        return NULL;
    /* Lenient on purpose (duplicate keys allowed): the message is already
     * known to be broken, any readable requestId helps the operator. */
    json_t *root = json_loadb(json_bytes, len, 0, &jerr);
    if (json_is_object(root)) {
        const char *rid =
            json_string_value(json_object_get(json_object_get(root, "data"), "requestId"));
        const char *subject = json_string_value(json_object_get(root, "subject"));
        if (cancel_request_id_valid(rid))
            found = rid;
        else if (cancel_request_id_valid(subject))
            found = subject;
    }
    if (found != NULL && strlen(found) < buflen) {
        memcpy(buf, found, strlen(found) + 1);
        found = buf;
    } else {
        found = NULL;
    }
    json_decref(root);
    return found;
}
