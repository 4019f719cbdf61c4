/*
 * ledger_idem: the idempotency store (first answer per key, replayed later)
 * and the log of gateway calls. See ledger.h; the struct is in ledger_int.h.
 */
#include "ledger_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

static void idem_clear(struct idem_entry *e)
{
    free(e->key);
    free(e->fingerprint);
    free(e->body);
}

static void call_clear(struct call_entry *c)
{
    free(c->method);
    free(c->path);
    free(c->payment_key);
    free(c->idempotency_key);
    free(c->fault);
}

void ledger_idem_reset_locked(struct ledger *l)
{
    for (size_t i = 0; i < l->nidem; i++)
        idem_clear(&l->idem[i]);
    for (size_t i = 0; i < l->ncalls; i++)
        call_clear(&l->calls[i]);
    l->nidem = l->ncalls = 0;
    ledger_index_clear(&l->idem_by_key);
    l->call_seq = 0;
}

static struct idem_entry *find_idem(struct ledger *l, enum sim_gateway gateway, const char *key)
{
    uint64_t h = ledger_index_hash((int)gateway + 1, key);
    size_t probe = 0, pos1;
    while ((pos1 = ledger_index_next(&l->idem_by_key, h, &probe)) != 0) {
        struct idem_entry *e = &l->idem[pos1 - 1];
        if (e->gateway == gateway && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

/* After an entry left the array (the ones behind it moved down): index it
 * again. Only a call that ended without an answer to keep does this. */
static void reindex_idem(struct ledger *l)
{
    ledger_index_clear(&l->idem_by_key);
    for (size_t i = 0; i < l->nidem; i++) {
        /* The index was that large already: no allocation can fail. */
        (void)ledger_index_add(&l->idem_by_key,
                               ledger_index_hash((int)l->idem[i].gateway + 1, l->idem[i].key), i);
    }
}

enum ledger_idem_state ledger_idem_begin(struct ledger *ledger, enum sim_gateway gateway,
                                         const char *key, const char *fingerprint, int *status,
                                         char **body)
{
    enum ledger_idem_state st;

    *status = 0;
    *body = NULL;
    pthread_mutex_lock(&ledger->lock);
    struct idem_entry *e = find_idem(ledger, gateway, key);
    if (e != NULL) {
        /* Parameters first: a different request under a used key is a client
         * bug whether or not the first one has finished. */
        if (strcmp(e->fingerprint, fingerprint) != 0) {
            st = LEDGER_IDEM_MISMATCH;
        } else if (e->in_flight) {
            st = LEDGER_IDEM_IN_FLIGHT;
        } else {
            st = LEDGER_IDEM_REPLAY;
            *status = e->status;
            *body = ledger_dup_or_null(e->body);
        }
        goto out;
    }
    /* New key. When out of memory, answer "in flight": the client retries,
     * which is safe, rather than processing without the guard. */
    st = LEDGER_IDEM_IN_FLIGHT;
    if (!ledger_grow((void **)&ledger->idem, &ledger->cap_idem, ledger->nidem,
                     sizeof(*ledger->idem)))
        goto out;
    struct idem_entry n = {0};
    n.gateway = gateway;
    n.key = strdup(key);
    n.fingerprint = strdup(fingerprint);
    n.in_flight = true;
    n.first_ms = mono_ms();
    if (n.key == NULL || n.fingerprint == NULL) {
        idem_clear(&n);
        goto out;
    }
    if (!ledger_index_add(&ledger->idem_by_key, ledger_index_hash((int)gateway + 1, key),
                          ledger->nidem)) {
        idem_clear(&n);
        goto out;
    }
    ledger->idem[ledger->nidem++] = n;
    st = LEDGER_IDEM_NEW;
out:
    pthread_mutex_unlock(&ledger->lock);
    return st;
}

void ledger_idem_store(struct ledger *ledger, enum sim_gateway gateway, const char *key, int status,
                       const char *body)
{
    pthread_mutex_lock(&ledger->lock);
    struct idem_entry *e = find_idem(ledger, gateway, key);
    if (e != NULL && e->in_flight && !e->stored) {
        char *copy = ledger_dup_or_null(body);
        if (body == NULL || copy != NULL) {
            e->body = copy;
            e->status = status;
            e->stored = true;
        }
    }
    pthread_mutex_unlock(&ledger->lock);
}

/* Take entry e out of the store. Lock held. */
static void forget_idem(struct ledger *l, struct idem_entry *e)
{
    idem_clear(e);
    size_t i = (size_t)(e - l->idem);
    memmove(e, e + 1, (l->nidem - i - 1) * sizeof(*e));
    l->nidem--;
    reindex_idem(l);
}

void ledger_idem_release(struct ledger *ledger, enum sim_gateway gateway, const char *key)
{
    pthread_mutex_lock(&ledger->lock);
    struct idem_entry *e = find_idem(ledger, gateway, key);
    if (e != NULL) {
        if (e->stored)
            e->in_flight = false;
        else
            forget_idem(ledger, e);
    }
    pthread_mutex_unlock(&ledger->lock);
}

void ledger_idem_expire(struct ledger *ledger, enum sim_gateway gateway, const char *key,
                        int64_t ttl_ms)
{
    pthread_mutex_lock(&ledger->lock);
    struct idem_entry *e = find_idem(ledger, gateway, key);
    if (e != NULL && e->stored && !e->in_flight && mono_ms() - e->first_ms >= ttl_ms)
        forget_idem(ledger, e);
    pthread_mutex_unlock(&ledger->lock);
}

void ledger_call_record(struct ledger *ledger, const struct ledger_call *call)
{
    struct call_entry c = {0};

    c.at_ms = wall_ms();
    c.method = ledger_dup_or_null(call->method);
    c.path = ledger_dup_or_null(call->path);
    c.gateway = call->gateway;
    c.payment_key = ledger_dup_or_null(call->payment_key);
    c.idempotency_key = ledger_dup_or_null(call->idempotency_key);
    c.status = call->status;
    c.fault = ledger_dup_or_null(call->fault);
    c.replayed = call->replayed;

    pthread_mutex_lock(&ledger->lock);
    if (ledger_grow((void **)&ledger->calls, &ledger->cap_calls, ledger->ncalls,
                    sizeof(*ledger->calls))) {
        c.seq = ++ledger->call_seq;
        ledger->calls[ledger->ncalls++] = c;
        c = (struct call_entry){0};
    }
    pthread_mutex_unlock(&ledger->lock);
    call_clear(&c); /* only frees when the append failed */
}

json_t *ledger_calls_json(struct ledger *ledger, const char *payment_key)
{
    char at[40];
    json_t *calls = json_array();

    pthread_mutex_lock(&ledger->lock);
    for (size_t i = 0; i < ledger->ncalls; i++) {
        const struct call_entry *c = &ledger->calls[i];
        if (payment_key != NULL && (c->payment_key == NULL || strcmp(c->payment_key, payment_key)))
            continue;
        sim_format_time(c->at_ms, at, sizeof(at));
        json_array_append_new(
            calls, json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:b}", "seq",
                             (json_int_t)c->seq, "at", at, "gateway", sim_gateway_name(c->gateway),
                             "method", c->method ? c->method : "", "path", c->path ? c->path : "",
                             "paymentKey", ledger_str_or_null(c->payment_key), "idempotencyKey",
                             ledger_str_or_null(c->idempotency_key), "status",
                             c->status ? json_integer(c->status) : json_null(), "fault",
                             ledger_str_or_null(c->fault), "replayed", c->replayed));
    }
    pthread_mutex_unlock(&ledger->lock);
    return json_pack("{s:o}", "calls", calls);
}
