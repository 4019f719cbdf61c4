/*
 * adyen_webhook: the notification sender. See adyen_webhook.h.
 */
#include "adyen_webhook.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adyen_signature.h"
#include "faults.h"
#include "ledger.h"

#include "base/base64.h"
#include "base/clock.h"
#include "base/http.h"
#include "base/log.h"

/* Adyen's retry queue keeps a webhook "for up to 30 days". */
#define WEBHOOK_GIVE_UP_MS (30LL * 24 * 3600 * 1000)
/* The longest the sender sleeps without looking at its queue. */
#define WEBHOOK_IDLE_WAIT_MS       100
#define WEBHOOK_CONNECT_TIMEOUT_MS 2000

/* The delay after the n-th failed attempt (the last repeats), before the
 * time scale: three quick retries 9 s apart, then Adyen's retry queue. */
static const int64_t retry_delays_ms[] = {
    9000,   9000,    9000,    2 * 60000,   5 * 60000,   10 * 60000,
    900000, 1800000, 3600000, 2 * 3600000, 4 * 3600000, 8 * 3600000,
};

enum delivery_state {
    DELIVERY_QUEUED = 0, /* waiting for its turn (or its retry time) */
    DELIVERY_DELAYED,    /* delay fault: joins the queue at next_ms */
    DELIVERY_SENDING,    /* the POST is on the wire */
    DELIVERY_ACCEPTED,   /* a 2xx came in time */
    DELIVERY_DROPPED,    /* drop fault: never sent */
    DELIVERY_GAVE_UP,    /* 30 (scaled) days of failures */
    DELIVERY_UNSENT,     /* no endpoint configured */
    DELIVERY_REPLACED,   /* redelivered while still retried: its copy took its place */
};

static const char *const state_names[] = {
    [DELIVERY_QUEUED] = "queued",   [DELIVERY_DELAYED] = "delayed",
    [DELIVERY_SENDING] = "sending", [DELIVERY_ACCEPTED] = "accepted",
    [DELIVERY_DROPPED] = "dropped", [DELIVERY_GAVE_UP] = "gave_up",
    [DELIVERY_UNSENT] = "unsent",   [DELIVERY_REPLACED] = "replaced",
};

struct attempt {
    int64_t at_ms; /* wall */
    long status;   /* 0: no answer */
    char *error;   /* the transfer's error, NULL when an answer came */
    int64_t latency_ms;
};

struct delivery {
    int id;
    int copy_of;       /* the delivery it repeats (duplicate, redeliver), 0 = none */
    const char *fault; /* the webhook fault's name, NULL = none */
    bool duplicate;    /* send a copy once accepted */
    enum delivery_state state;
    json_t *items; /* owned: the NotificationRequestItems as sent */
    char *body;    /* owned: the JSON sent */
    uint64_t queue_seq;
    int64_t next_ms;  /* mono: when it may go (queued) or join the queue (delayed) */
    int64_t first_ms; /* mono: its first attempt, 0 = none yet */
    struct attempt *attempts;
    size_t nattempts, cap;
};

struct adyen_webhooks {
    struct sim *sim; /* borrowed */
    pthread_mutex_t lock;
    char *url;         /* owned; NULL = none */
    char *auth_header; /* owned "Authorization: Basic ..."; NULL = none */
    bool sign;
    unsigned char key[ADYEN_SIGNATURE_KEY_LEN];
    int64_t time_scale;
    int64_t timeout_ms;
    struct delivery *list; /* owned, in creation order */
    size_t n, cap;
    int next_id;
    uint64_t queue_seq;
    int sending_id;      /* the delivery on the wire, 0 = none */
    uint64_t generation; /* bumped by a reset: older answers are ignored */
    struct http_client *http;
    pthread_t thread;
    bool thread_started;
    bool stop;
};

/* What the answer callback needs to find its delivery again. */
struct sending {
    struct adyen_webhooks *w;
    int id;
    uint64_t generation;
};

static void delivery_clear(struct delivery *d)
{
    for (size_t i = 0; i < d->nattempts; i++)
        free(d->attempts[i].error);
    free(d->attempts);
    free(d->body);
    json_decref(d->items);
    memset(d, 0, sizeof(*d));
}

static struct delivery *find(struct adyen_webhooks *w, int id)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->list[i].id == id)
            return &w->list[i];
    return NULL;
}

/* Set item's additionalData.hmacSignature: with the configured key, or with
 * a random one when forged (also when no key is configured: a forged item
 * always carries a signature, a wrong one). Items of an unsigned sender
 * carry none. False when out of memory or libcrypto fails. */
static bool sign_item(const struct adyen_webhooks *w, json_t *item, bool forged)
{
    unsigned char other[ADYEN_SIGNATURE_KEY_LEN];
    char sig[ADYEN_SIGNATURE_SIZE];

    if (!w->sign && !forged)
        return true;
    if (forged)
        arc4random_buf(other, sizeof(other));
    if (!adyen_signature_of_item(item, forged ? other : w->key, sig))
        return false;
    json_t *extra = json_object_get(item, "additionalData");
    if (!json_is_object(extra)) {
        extra = json_object();
        if (extra == NULL || json_object_set_new(item, "additionalData", extra) != 0)
            return false;
    }
    return json_object_set_new(extra, "hmacSignature", json_string(sig)) == 0;
}

/* The delivery body of items: Adyen's standard notification. New string. */
static char *delivery_body(json_t *items)
{
    json_t *wrapped = json_array();
    size_t i;
    json_t *item;

    json_array_foreach(items, i, item)
        json_array_append_new(wrapped, json_pack("{s:O}", "NotificationRequestItem", item));
    json_t *obj = json_pack("{s:s, s:o}", "live", "false", "notificationItems", wrapped);
    char *body = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    return body;
}

/* Append a delivery of items (stolen) and body (stolen) in state. Returns
 * it (valid until the list changes), NULL when out of memory (then both are
 * released). Lock held. */
static struct delivery *append(struct adyen_webhooks *w, json_t *items, char *body,
                               enum delivery_state state, int64_t next_ms)
{
    if (items == NULL || body == NULL ||
        !ledger_grow((void **)&w->list, &w->cap, w->n, sizeof(*w->list)))
        goto fail;
    struct delivery *d = &w->list[w->n++];
    memset(d, 0, sizeof(*d));
    d->id = ++w->next_id;
    d->items = items;
    d->body = body;
    d->state = state;
    d->next_ms = next_ms;
    if (w->url == NULL && (state == DELIVERY_QUEUED || state == DELIVERY_DELAYED))
        d->state = DELIVERY_UNSENT;
    if (d->state == DELIVERY_QUEUED)
        d->queue_seq = ++w->queue_seq;
    return d;
fail:
    json_decref(items);
    free(body);
    return NULL;
}

/* A copy of the items of d, each signed again (forged or not). NULL when
 * out of memory. Lock held. */
static json_t *signed_items(const struct adyen_webhooks *w, const json_t *items, bool forged)
{
    json_t *copy = json_deep_copy(items);
    size_t i;
    json_t *item;

    if (copy == NULL)
        return NULL;
    json_array_foreach(copy, i, item)
    {
        if (!sign_item(w, item, forged)) {
            json_decref(copy);
            return NULL;
        }
    }
    return copy;
}

int adyen_webhooks_notify(struct adyen_webhooks *w, json_t *item, const char *payment_psp)
{
    struct fault f;
    int id = 0;
    enum delivery_state state = DELIVERY_QUEUED;
    int64_t now = mono_ms();

    bool have_fault =
        faults_match(w->sim->faults, SIM_GATEWAY_ADYEN, FAULT_OP_WEBHOOK, payment_psp, false, &f);
    if (have_fault && f.type == FAULT_DROP)
        state = DELIVERY_DROPPED;
    if (have_fault && f.type == FAULT_DELAY)
        state = DELIVERY_DELAYED;
    json_t *items = json_array();
    if (items == NULL || json_array_append_new(items, item) != 0) {
        json_decref(items);
        item = NULL;
        goto out;
    }
    pthread_mutex_lock(&w->lock);
    json_t *sent = signed_items(w, items, have_fault && f.type == FAULT_FORGED);
    struct delivery *d = append(w, sent, delivery_body(sent), state,
                                now + (state == DELIVERY_DELAYED ? f.delay_ms : 0));
    if (d != NULL) {
        id = d->id;
        d->fault = have_fault ? fault_type_name(f.type) : NULL;
        d->duplicate = have_fault && f.type == FAULT_DUPLICATE;
        log_info("adyen notification %d (%s) %s%s%s", id,
                 json_string_value(json_object_get(item, "eventCode")), state_names[d->state],
                 d->fault ? ", fault " : "", d->fault ? d->fault : "");
    }
    pthread_mutex_unlock(&w->lock);
    json_decref(items);
    if (id == 0)
        log_error("could not queue an adyen notification: out of memory");
    http_client_wakeup(w->http);
out:
    if (have_fault)
        fault_clear(&f);
    return id;
}

int adyen_webhooks_redeliver(struct adyen_webhooks *w, int id)
{
    int new_id = 0;

    pthread_mutex_lock(&w->lock);
    struct delivery *src = find(w, id);
    if (src != NULL) {
        json_t *items = signed_items(w, src->items, false);
        struct delivery *d = append(w, items, delivery_body(items), DELIVERY_QUEUED, mono_ms());
        src = find(w, id); /* append may have moved the list */
        if (d != NULL) {
            d->copy_of = id;
            new_id = d->id;
            /* A delivery still being retried (a forged one never stops
             * failing) is replaced by its copy, in its place in the queue:
             * one resend, not two, and nothing held up behind it. */
            bool retried = src->state == DELIVERY_QUEUED || src->state == DELIVERY_SENDING ||
                           src->state == DELIVERY_DELAYED;
            if (retried && src->state != DELIVERY_DELAYED)
                d->queue_seq = src->queue_seq;
            if (retried)
                src->state = DELIVERY_REPLACED;
        }
    }
    pthread_mutex_unlock(&w->lock);
    if (new_id != 0)
        log_info("adyen notification %d redelivered as %d", id, new_id);
    http_client_wakeup(w->http);
    return new_id;
}

/* Record an attempt on d. Lock held. */
static void add_attempt(struct delivery *d, long status, const char *error, int64_t latency_ms)
{
    if (!ledger_grow((void **)&d->attempts, &d->cap, d->nattempts, sizeof(*d->attempts)))
        return; /* the listing misses one attempt; the sending goes on */
    d->attempts[d->nattempts++] = (struct attempt){
        .at_ms = wall_ms(),
        .status = status,
        .error = error != NULL && error[0] != '\0' ? strdup(error) : NULL,
        .latency_ms = latency_ms,
    };
}

/* After a failed attempt: wait the next delay of the schedule, at the head
 * of the queue still, or give up once 30 scaled days are over. Lock held. */
static void schedule_retry(struct adyen_webhooks *w, struct delivery *d, int64_t now)
{
    size_t n = sizeof(retry_delays_ms) / sizeof(retry_delays_ms[0]);
    size_t fails = d->nattempts > 0 ? d->nattempts : 1;
    int64_t delay = retry_delays_ms[fails - 1 < n ? fails - 1 : n - 1] / w->time_scale;

    if (now - d->first_ms >= WEBHOOK_GIVE_UP_MS / w->time_scale) {
        d->state = DELIVERY_GAVE_UP;
        log_warn("adyen notification %d: gave up after %zu attempts", d->id, d->nattempts);
        return;
    }
    d->state = DELIVERY_QUEUED;
    d->next_ms = now + (delay > 0 ? delay : 1);
}

/* The end of one POST (http_client callback, on the sender thread). */
static void on_answer(const struct http_response *resp, void *arg)
{
    struct sending *s = arg;
    struct adyen_webhooks *w = s->w;
    bool accepted = resp->curl_code == CURLE_OK && resp->status >= 200 && resp->status < 300;

    pthread_mutex_lock(&w->lock);
    struct delivery *d = s->generation == w->generation ? find(w, s->id) : NULL;
    if (s->generation == w->generation)
        w->sending_id = 0;
    if (d != NULL) {
        add_attempt(d, resp->status, resp->curl_code == CURLE_OK ? NULL : resp->curl_error,
                    resp->latency_ms);
        if (d->state == DELIVERY_REPLACED) {
            /* Its copy goes in its place, whatever this answer was. */
        } else if (accepted) {
            d->state = DELIVERY_ACCEPTED;
            if (d->duplicate) {
                /* The same body again, its signature included, as a
                 * redelivery of an item whose 2xx Adyen did not see. */
                int id = d->id;
                json_t *items = json_deep_copy(d->items);
                char *body = strdup(d->body);
                struct delivery *copy = append(w, items, body, DELIVERY_QUEUED, mono_ms());
                if (copy != NULL)
                    copy->copy_of = id;
            }
        } else {
            schedule_retry(w, d, mono_ms());
        }
    }
    pthread_mutex_unlock(&w->lock);
    free(s);
}

/* Put d on the wire. Lock held. */
static void send_delivery(struct adyen_webhooks *w, struct delivery *d, int64_t now)
{
    char err[256];
    const char *headers[2] = {"Content-Type: application/json", w->auth_header};
    struct http_request req = HTTP_REQUEST_INIT;
    struct sending *s = malloc(sizeof(*s));

    if (d->first_ms == 0)
        d->first_ms = now;
    req.method = "POST";
    req.url = w->url;
    req.headers = headers;
    req.nheaders = w->auth_header != NULL ? 2 : 1;
    req.body = d->body;
    req.body_len = strlen(d->body);
    req.connect_timeout_ms = WEBHOOK_CONNECT_TIMEOUT_MS;
    req.timeout_ms = w->timeout_ms;
    if (s != NULL) {
        *s = (struct sending){.w = w, .id = d->id, .generation = w->generation};
        if (http_client_submit(w->http, &req, on_answer, s, err, sizeof(err))) {
            d->state = DELIVERY_SENDING;
            w->sending_id = d->id;
            return;
        }
        free(s);
    } else {
        snprintf(err, sizeof(err), "out of memory");
    }
    add_attempt(d, 0, err, 0);
    schedule_retry(w, d, now);
}

/* Move due delayed deliveries into the queue, send the head when its time
 * has come, and return how long the sender may sleep. Lock held. */
static int64_t sender_step(struct adyen_webhooks *w)
{
    int64_t now = mono_ms(), wait = WEBHOOK_IDLE_WAIT_MS;
    struct delivery *head = NULL;

    for (size_t i = 0; i < w->n; i++) {
        struct delivery *d = &w->list[i];
        if (d->state == DELIVERY_DELAYED && d->next_ms <= now) {
            d->state = DELIVERY_QUEUED;
            d->queue_seq = ++w->queue_seq;
        } else if (d->state == DELIVERY_DELAYED && d->next_ms - now < wait) {
            wait = d->next_ms - now;
        }
        if (d->state == DELIVERY_QUEUED && (head == NULL || d->queue_seq < head->queue_seq))
            head = d;
    }
    if (w->sending_id != 0 || head == NULL)
        return wait;
    if (head->next_ms <= now) {
        send_delivery(w, head, now);
        return 0;
    }
    return head->next_ms - now < wait ? head->next_ms - now : wait;
}

static void *sender_main(void *arg)
{
    struct adyen_webhooks *w = arg;
    char err[256];

    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        int64_t wait = sender_step(w);
        pthread_mutex_unlock(&w->lock);
        if (http_client_run(w->http, (int)wait, err, sizeof(err)) < 0) {
            log_error("adyen webhook sender: %s", err);
            struct timespec ts = {.tv_sec = 0, .tv_nsec = WEBHOOK_IDLE_WAIT_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* "Authorization: Basic base64(user:password)". New string, NULL when out
 * of memory. */
static char *basic_auth_header(const char *credentials)
{
    static const char prefix[] = "Authorization: Basic ";
    size_t len = strlen(credentials);
    char *h = malloc(sizeof(prefix) - 1 + BASE64_ENCODED_SIZE(len));

    if (h == NULL)
        return NULL;
    memcpy(h, prefix, sizeof(prefix) - 1);
    base64_encode((const unsigned char *)credentials, len, h + sizeof(prefix) - 1);
    return h;
}

bool adyen_webhooks_set_endpoint(struct adyen_webhooks *w, const char *url,
                                 const char *hmac_key_hex, const char *basic_auth, char *err,
                                 size_t errlen)
{
    unsigned char key[ADYEN_SIGNATURE_KEY_LEN];
    char *url_copy = NULL, *auth = NULL;

    if (url != NULL && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "cannot send webhooks to \"%.200s\": not http(s)", url);
        return false;
    }
    if (hmac_key_hex != NULL && !adyen_signature_key_parse(hmac_key_hex, key)) {
        snprintf(err, errlen, "the HMAC key must be 64 hex digits");
        return false;
    }
    if ((url != NULL && (url_copy = strdup(url)) == NULL) ||
        (basic_auth != NULL && (auth = basic_auth_header(basic_auth)) == NULL)) {
        free(url_copy);
        snprintf(err, errlen, "could not set the webhook endpoint: out of memory");
        return false;
    }
    pthread_mutex_lock(&w->lock);
    free(w->url);
    free(w->auth_header);
    w->url = url_copy;
    w->auth_header = auth;
    w->sign = hmac_key_hex != NULL;
    if (w->sign)
        memcpy(w->key, key, sizeof(key));
    /* What waited for an endpoint goes now, signed as it would have been
     * with this key. */
    for (size_t i = 0; w->url != NULL && i < w->n; i++) {
        struct delivery *d = &w->list[i];
        if (d->state != DELIVERY_UNSENT)
            continue;
        json_t *items =
            signed_items(w, d->items, d->fault != NULL && strcmp(d->fault, "forged") == 0);
        char *body = items != NULL ? delivery_body(items) : NULL;
        if (body == NULL) {
            json_decref(items);
            continue; /* out of memory: it stays unsent */
        }
        json_decref(d->items);
        free(d->body);
        d->items = items;
        d->body = body;
        d->state = DELIVERY_QUEUED;
        d->queue_seq = ++w->queue_seq;
        d->next_ms = mono_ms();
    }
    pthread_mutex_unlock(&w->lock);
    http_client_wakeup(w->http);
    return true;
}

struct adyen_webhooks *adyen_webhooks_new(struct sim *sim, const struct adyen_webhook_options *o,
                                          char *err, size_t errlen)
{
    struct adyen_webhooks *w = calloc(1, sizeof(*w));

    if (w == NULL || pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        snprintf(err, errlen, "could not start the adyen webhook sender: out of memory");
        return NULL;
    }
    w->sim = sim;
    w->time_scale = o->time_scale > 0 ? o->time_scale : ADYEN_WEBHOOK_DEFAULT_TIME_SCALE;
    w->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : ADYEN_WEBHOOK_DEFAULT_TIMEOUT_MS;
    w->http = http_client_new(err, errlen);
    if (w->http == NULL ||
        !adyen_webhooks_set_endpoint(w, o->url, o->hmac_key_hex, o->basic_auth, err, errlen))
        goto fail;
    if (pthread_create(&w->thread, NULL, sender_main, w) != 0) {
        snprintf(err, errlen, "could not start the adyen webhook sender thread");
        goto fail;
    }
    w->thread_started = true;
    return w;
fail:
    adyen_webhooks_free(w);
    return NULL;
}

static void clear_locked(struct adyen_webhooks *w)
{
    for (size_t i = 0; i < w->n; i++)
        delivery_clear(&w->list[i]);
    w->n = 0;
    w->sending_id = 0;
    w->generation++;
}

void adyen_webhooks_free(struct adyen_webhooks *w)
{
    if (w == NULL)
        return;
    if (w->thread_started) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_mutex_unlock(&w->lock);
        http_client_wakeup(w->http);
        pthread_join(w->thread, NULL);
    }
    /* Aborts a POST still in flight; its callback takes the lock. */
    http_client_free(w->http);
    clear_locked(w);
    free(w->list);
    free(w->url);
    free(w->auth_header);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void adyen_webhooks_reset(struct adyen_webhooks *w)
{
    pthread_mutex_lock(&w->lock);
    clear_locked(w);
    pthread_mutex_unlock(&w->lock);
}

/* True if an item of d has pspReference or originalReference psp. */
static bool concerns(const struct delivery *d, const char *psp)
{
    size_t i;
    json_t *item;

    json_array_foreach(d->items, i, item)
    {
        const char *a = json_string_value(json_object_get(item, "pspReference"));
        const char *b = json_string_value(json_object_get(item, "originalReference"));
        if ((a != NULL && strcmp(a, psp) == 0) || (b != NULL && strcmp(b, psp) == 0))
            return true;
    }
    return false;
}

static json_t *delivery_json(const struct delivery *d)
{
    char at[40];
    json_t *attempts = json_array();

    for (size_t i = 0; i < d->nattempts; i++) {
        const struct attempt *a = &d->attempts[i];
        sim_format_time(a->at_ms, at, sizeof(at));
        json_array_append_new(attempts,
                              json_pack("{s:s, s:o, s:o, s:I}", "at", at, "status",
                                        a->status ? json_integer(a->status) : json_null(), "error",
                                        a->error ? json_string(a->error) : json_null(), "ms",
                                        (json_int_t)a->latency_ms));
    }
    /* Copies of the items: the JSON answer is written after the lock is
     * released, and a reset may free the originals meanwhile. */
    return json_pack("{s:i, s:s, s:b, s:o, s:o, s:o, s:o}", "id", d->id, "state",
                     state_names[d->state], "accepted", d->state == DELIVERY_ACCEPTED, "fault",
                     d->fault ? json_string(d->fault) : json_null(), "copyOf",
                     d->copy_of ? json_integer(d->copy_of) : json_null(), "items",
                     json_deep_copy(d->items), "attempts", attempts);
}

json_t *adyen_webhooks_json(struct adyen_webhooks *w, const char *psp)
{
    json_t *list = json_array();

    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->n; i++)
        if (psp == NULL || concerns(&w->list[i], psp))
            json_array_append_new(list, delivery_json(&w->list[i]));
    json_t *endpoint = w->url ? json_string(w->url) : json_null();
    pthread_mutex_unlock(&w->lock);
    return json_pack("{s:o, s:o}", "endpoint", endpoint, "deliveries", list);
}
