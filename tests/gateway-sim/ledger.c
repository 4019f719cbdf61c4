/*
 * ledger: payments and refunds of the gateway simulator, and the ledger's
 * life cycle. See ledger.h; the idempotency store and the call log are in
 * ledger_idem.c.
 *
 * Plain arrays searched linearly: a simulator holds a few hundred payments at
 * most, and simple code is easier to trust as a test oracle.
 */
#include "ledger.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_int.h"

/* Grow *arr (of elements of size elsize) so that one more fits. */
bool ledger_grow(void **arr, size_t *cap, size_t n, size_t elsize)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * elsize);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

char *ledger_dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void refund_clear(struct ledger_refund *r)
{
    free(r->id);
    free(r->idempotency_key);
    free(r->reason);
}

static void payment_clear(struct ledger_payment *p)
{
    for (size_t i = 0; i < p->nrefunds; i++)
        refund_clear(&p->refunds[i]);
    free(p->refunds);
    free(p->payment_key);
    free(p->order_id);
    free(p->currency);
    memset(p, 0, sizeof(*p));
}

/* Deep copy of src into *dst; false when out of memory (dst then cleared). */
static bool payment_copy(struct ledger_payment *dst, const struct ledger_payment *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->gateway = src->gateway;
    dst->amount = src->amount;
    dst->refunded = src->refunded;
    dst->payment_key = strdup(src->payment_key);
    dst->order_id = strdup(src->order_id);
    dst->currency = strdup(src->currency);
    if (dst->payment_key == NULL || dst->order_id == NULL || dst->currency == NULL)
        goto fail;
    if (src->nrefunds > 0) {
        dst->refunds = calloc(src->nrefunds, sizeof(*dst->refunds));
        if (dst->refunds == NULL)
            goto fail;
        dst->cap = src->nrefunds;
        for (size_t i = 0; i < src->nrefunds; i++) {
            const struct ledger_refund *r = &src->refunds[i];
            struct ledger_refund *d = &dst->refunds[i];
            dst->nrefunds++;
            d->amount = r->amount;
            d->at_ms = r->at_ms;
            d->id = strdup(r->id);
            d->idempotency_key = ledger_dup_or_null(r->idempotency_key);
            d->reason = ledger_dup_or_null(r->reason);
            if (d->id == NULL || (r->idempotency_key && d->idempotency_key == NULL) ||
                (r->reason && d->reason == NULL))
                goto fail;
        }
    }
    return true;
fail:
    payment_clear(dst);
    return false;
}

static void reset_locked(struct ledger *l)
{
    for (size_t i = 0; i < l->npayments; i++)
        payment_clear(&l->payments[i]);
    l->npayments = 0;
    ledger_idem_reset_locked(l);
}

struct ledger *ledger_new(void)
{
    struct ledger *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l);
        return NULL;
    }
    return l;
}

void ledger_free(struct ledger *ledger)
{
    if (ledger == NULL)
        return;
    reset_locked(ledger);
    free(ledger->payments);
    free(ledger->idem);
    free(ledger->calls);
    pthread_mutex_destroy(&ledger->lock);
    free(ledger);
}

void ledger_reset(struct ledger *ledger)
{
    pthread_mutex_lock(&ledger->lock);
    reset_locked(ledger);
    pthread_mutex_unlock(&ledger->lock);
}

static struct ledger_payment *find_payment(struct ledger *l, const char *key)
{
    for (size_t i = 0; i < l->npayments; i++)
        if (strcmp(l->payments[i].payment_key, key) == 0)
            return &l->payments[i];
    return NULL;
}

bool ledger_put_payment(struct ledger *ledger, enum sim_gateway gateway, const char *payment_key,
                        const char *order_id, int64_t amount, const char *currency,
                        int64_t refunded, char *err, size_t errlen)
{
    struct ledger_payment p = {0};
    char order[512];
    bool ok = false;

    if (payment_key == NULL || payment_key[0] == '\0') {
        snprintf(err, errlen, "paymentKey must be a non-empty string");
        return false;
    }
    if (amount <= 0) {
        snprintf(err, errlen, "amount must be a positive integer");
        return false;
    }
    if (refunded < 0 || refunded > amount) {
        snprintf(err, errlen, "refunded must be between 0 and amount");
        return false;
    }
    if (order_id == NULL) {
        snprintf(order, sizeof(order), "order-%s", payment_key);
        order_id = order;
    }
    p.gateway = gateway;
    p.amount = amount;
    p.refunded = refunded;
    p.payment_key = strdup(payment_key);
    p.order_id = strdup(order_id);
    p.currency = strdup(currency ? currency : "KRW");
    if (p.payment_key == NULL || p.order_id == NULL || p.currency == NULL) {
        snprintf(err, errlen, "could not store payment: out of memory");
        payment_clear(&p);
        return false;
    }

    pthread_mutex_lock(&ledger->lock);
    struct ledger_payment *old = find_payment(ledger, payment_key);
    if (old != NULL) {
        payment_clear(old);
        *old = p;
        ok = true;
    } else if (ledger_grow((void **)&ledger->payments, &ledger->cap_payments, ledger->npayments,
                           sizeof(*ledger->payments))) {
        ledger->payments[ledger->npayments++] = p;
        ok = true;
    }
    pthread_mutex_unlock(&ledger->lock);
    if (!ok) {
        snprintf(err, errlen, "could not store payment: out of memory");
        payment_clear(&p);
    }
    return ok;
}

void ledger_payment_free(struct ledger_payment *payment)
{
    if (payment == NULL)
        return;
    payment_clear(payment);
    free(payment);
}

/* Copy of p in a new allocation, NULL when out of memory. Lock held. */
static struct ledger_payment *payment_dup(const struct ledger_payment *p)
{
    struct ledger_payment *copy = malloc(sizeof(*copy));
    if (copy == NULL)
        return NULL;
    if (!payment_copy(copy, p)) {
        free(copy);
        return NULL;
    }
    return copy;
}

struct ledger_payment *ledger_payment_get(struct ledger *ledger, enum sim_gateway gateway,
                                          const char *payment_key)
{
    struct ledger_payment *copy = NULL;

    pthread_mutex_lock(&ledger->lock);
    struct ledger_payment *p = find_payment(ledger, payment_key);
    if (p != NULL && p->gateway == gateway)
        copy = payment_dup(p);
    pthread_mutex_unlock(&ledger->lock);
    return copy;
}

/* A refund id in the style of the gateway. Lock held (uses l->seq). */
static char *new_refund_id(struct ledger *l, enum sim_gateway gateway)
{
    char buf[64];

    l->seq++;
    if (gateway == SIM_GATEWAY_STRIPE) {
        /* Stripe ids: "re_" + 24 characters. */
        snprintf(buf, sizeof(buf), "re_sim%018" PRIu64, l->seq);
    } else {
        /* Toss transaction keys are 32 hex digits; random so that two
         * simulator runs never hand out the same one. */
        unsigned char raw[12];
        arc4random_buf(raw, sizeof(raw));
        int n = snprintf(buf, sizeof(buf), "%08" PRIx64, l->seq & 0xffffffffu);
        for (size_t i = 0; i < sizeof(raw) && n > 0; i++)
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%02x", raw[i]);
    }
    return strdup(buf);
}

enum ledger_refund_result ledger_refund(struct ledger *ledger, enum sim_gateway gateway,
                                        const char *payment_key, int64_t amount, const char *reason,
                                        const char *idempotency_key, struct ledger_payment **after)
{
    enum ledger_refund_result res;

    *after = NULL;
    pthread_mutex_lock(&ledger->lock);
    struct ledger_payment *p = find_payment(ledger, payment_key);
    if (p == NULL || p->gateway != gateway) {
        res = LEDGER_REFUND_NOT_FOUND;
        goto out;
    }
    int64_t balance = p->amount - p->refunded;
    if (balance <= 0) {
        res = LEDGER_REFUND_NOTHING_LEFT;
        goto out;
    }
    if (amount < 0)
        amount = balance;
    if (amount > balance) {
        res = LEDGER_REFUND_TOO_LARGE;
        goto out;
    }
    if (!ledger_grow((void **)&p->refunds, &p->cap, p->nrefunds, sizeof(*p->refunds))) {
        res = LEDGER_REFUND_NO_MEMORY;
        goto out;
    }
    struct ledger_refund r = {0};
    r.amount = amount;
    r.at_ms = sim_now_ms();
    r.id = new_refund_id(ledger, gateway);
    r.idempotency_key = ledger_dup_or_null(idempotency_key);
    r.reason = ledger_dup_or_null(reason);
    if (r.id == NULL || (idempotency_key && r.idempotency_key == NULL) ||
        (reason && r.reason == NULL)) {
        refund_clear(&r);
        res = LEDGER_REFUND_NO_MEMORY;
        goto out;
    }
    p->refunds[p->nrefunds++] = r;
    p->refunded += amount;
    res = LEDGER_REFUND_OK;
out:
    if (p != NULL && p->gateway == gateway)
        *after = payment_dup(p);
    pthread_mutex_unlock(&ledger->lock);
    return res;
}

json_t *ledger_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The ledger format of a payment. Lock held. */
static json_t *payment_to_json(const struct ledger_payment *p)
{
    char at[40];
    json_t *refunds = json_array();

    for (size_t i = 0; i < p->nrefunds; i++) {
        const struct ledger_refund *r = &p->refunds[i];
        sim_format_time(r->at_ms, at, sizeof(at));
        json_array_append_new(refunds,
                              json_pack("{s:s, s:o, s:I, s:s}", "id", r->id, "idempotencyKey",
                                        ledger_str_or_null(r->idempotency_key), "amount",
                                        (json_int_t)r->amount, "at", at));
    }
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:o}", "gateway", sim_gateway_name(p->gateway),
                     "paymentKey", p->payment_key, "orderId", p->order_id, "amount",
                     (json_int_t)p->amount, "currency", p->currency, "refunded",
                     (json_int_t)p->refunded, "refunds", refunds);
}

json_t *ledger_json(struct ledger *ledger)
{
    json_t *payments = json_array();

    pthread_mutex_lock(&ledger->lock);
    for (size_t i = 0; i < ledger->npayments; i++)
        json_array_append_new(payments, payment_to_json(&ledger->payments[i]));
    size_t ncalls = ledger->ncalls;
    pthread_mutex_unlock(&ledger->lock);
    return json_pack("{s:I, s:o}", "calls", (json_int_t)ncalls, "payments", payments);
}

json_t *ledger_payment_json(struct ledger *ledger, const char *payment_key)
{
    json_t *obj = NULL;

    pthread_mutex_lock(&ledger->lock);
    struct ledger_payment *p = find_payment(ledger, payment_key);
    if (p != NULL)
        obj = payment_to_json(p);
    pthread_mutex_unlock(&ledger->lock);
    return obj;
}
