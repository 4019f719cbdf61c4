/*
 * cancel_producer: see cancel_producer.h.
 */
#include "cancel_producer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "base/clock.h"
#include "config/config.h"
#include "event/cancel_event.h"
#include "event/cloudevent.h"
#include "kafka/kafka.h"

#define DEFAULT_SOURCE "/payments/upstream"

struct cancel_producer {
    rd_kafka_t *rk;
    char *topic;
};

/* Delivery outcome of the one message publish waits for. */
struct delivery {
    bool done;
    rd_kafka_resp_err_t err;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct delivery *d = msg->_private;
    (void)rk;
    (void)opaque;
    if (d != NULL) {
        d->done = true;
        d->err = msg->err;
    }
}

static struct cancel_producer *wrap(rd_kafka_t *rk, const char *topic, char *err, size_t errlen)
{
    struct cancel_producer *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->topic = strdup(topic)) == NULL) {
        free(p);
        kafka_destroy(rk);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->rk = rk;
    return p;
}

struct cancel_producer *cancel_producer_new(const char *bootstrap_servers, const char *topic,
                                            const char *const *props, char *err, size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_servers, why, sizeof(why)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", why, sizeof(why)) != RD_KAFKA_CONF_OK)
        goto fail;
    for (size_t i = 0; props != NULL && props[i] != NULL && props[i + 1] != NULL; i += 2) {
        if (rd_kafka_conf_set(conf, props[i], props[i + 1], why, sizeof(why)) != RD_KAFKA_CONF_OK)
            goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (rk == NULL)
        goto fail;
    return wrap(rk, topic, err, errlen);
fail:
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "could not create the Kafka producer: %s", why);
    return NULL;
}

struct cancel_producer *cancel_producer_new_from_config(const struct config *cfg, char *err,
                                                        size_t errlen)
{
    rd_kafka_t *rk = kafka_producer_new(cfg, on_delivery, NULL, NULL, err, errlen);
    if (rk == NULL)
        return NULL;
    return wrap(rk, cfg->topics.cancel_failed.name, err, errlen);
}

void cancel_producer_free(struct cancel_producer *p)
{
    if (p == NULL)
        return;
    rd_kafka_flush(p->rk, 10000);
    kafka_destroy(p->rk);
    free(p->topic);
    free(p);
}

bool cancel_event_validate(const void *bytes, size_t len, char *request_id, size_t idlen, char *err,
                           size_t errlen)
{
    struct cloudevent ev;
    struct cancel_failed cf;

    if (cloudevent_parse(bytes, len, &ev, err, errlen) != EVENT_OK)
        return false;
    enum event_verdict v = cancel_failed_parse(&ev, &cf, err, errlen);
    cloudevent_clear(&ev);
    if (v != EVENT_OK)
        return false;
    if (request_id != NULL)
        snprintf(request_id, idlen, "%s", cf.request_id);
    cancel_failed_clear(&cf);
    return true;
}

bool cancel_event_build(const struct cancel_failed_event *e, char **json_out,
                        char event_id[CANCEL_PRODUCER_EVENT_ID_LEN], char *err, size_t errlen)
{
    struct cancel_failed cf = {
        .request_id = (char *)e->request_id,
        .gateway = (char *)e->gateway,
        .payment_key = (char *)e->payment_key,
        .currency = (char *)e->currency,
        .reason = (char *)e->reason,
        .origin_transaction_id = (char *)e->origin_transaction_id,
        .amount = e->amount,
        .partial = e->partial,
        .failure_code = (char *)e->failure_code,
        .failure_message = (char *)e->failure_message,
    };
    char id[CLOUDEVENT_ID_LEN];

    *json_out = NULL;
    if (e->request_id == NULL || e->gateway == NULL || e->payment_key == NULL ||
        e->currency == NULL || e->reason == NULL) {
        snprintf(err, errlen,
                 "requestId, gateway, paymentKey, currency and reason are all required");
        return false;
    }
    /* cancel_failed_data() applies the contract's rules to what it builds:
     * an invalid event is refused here, before Kafka. */
    json_t *data = cancel_failed_data(&cf, err, errlen);
    if (data == NULL)
        return false;
    cloudevent_new_id(id);
    bool ok = cloudevent_build_at(CANCEL_EVENT_TYPE_FAILED,
                                  e->source != NULL ? e->source : DEFAULT_SOURCE, e->request_id,
                                  e->correlation_id, data, id, wall_ms(), json_out, err, errlen);
    json_decref(data);
    if (ok && !cancel_event_validate(*json_out, strlen(*json_out), NULL, 0, err, errlen)) {
        free(*json_out);
        *json_out = NULL;
        ok = false;
    }
    if (ok && event_id != NULL)
        memcpy(event_id, id, CLOUDEVENT_ID_LEN);
    return ok;
}

bool cancel_producer_publish_raw(struct cancel_producer *p, const char *key, const void *bytes,
                                 size_t len, int timeout_ms, char *err, size_t errlen)
{
    struct delivery d = {false, RD_KAFKA_RESP_ERR_NO_ERROR};
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
    rd_kafka_header_add(hdrs, "content-type", -1, CLOUDEVENT_CONTENT_TYPE, -1);
    size_t key_len = key != NULL ? strlen(key) : 0;

    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)bytes, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(hdrs);
        snprintf(err, errlen, "could not publish to %s: %s", p->topic, rd_kafka_err2str(e));
        return false;
    }
    int64_t start = mono_ms();
    while (!d.done) {
        rd_kafka_poll(p->rk, 50);
        if (!d.done && mono_ms() - start > timeout_ms) {
            /* The message may still be delivered later; the intake
             * deduplicates if the caller publishes it again. */
            rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(p->rk, 0);
            snprintf(err, errlen, "no acknowledgement from the broker within %d ms", timeout_ms);
            return false;
        }
    }
    if (d.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "could not publish to %s: %s", p->topic, rd_kafka_err2str(d.err));
        return false;
    }
    return true;
}

bool cancel_producer_publish(struct cancel_producer *p, const struct cancel_failed_event *ev,
                             int timeout_ms, char event_id[CANCEL_PRODUCER_EVENT_ID_LEN], char *err,
                             size_t errlen)
{
    char *json = NULL;

    if (!cancel_event_build(ev, &json, event_id, err, errlen))
        return false;
    bool ok =
        cancel_producer_publish_raw(p, ev->request_id, json, strlen(json), timeout_ms, err, errlen);
    free(json);
    return ok;
}
