/*
 * ledger: payments and refunds of the gateway simulator, and the ledger's
 * life cycle. See ledger.h; the idempotency store and the call log are in
 * ledger_idem.c.
 *
 * Plain arrays, simple to trust as a test oracle, with a hash index beside
 * them (ledger_index.h): a benchmark leaves tens of thousands of payments.
 */
#include "ledger.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_int.h"

#include "base/clock.h"

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

static const char *const status_names[] = {
    [LEDGER_STATUS_SUCCEEDED] = "succeeded",
    [LEDGER_STATUS_PENDING] = "pending",
    [LEDGER_STATUS_REQUIRES_ACTION] = "requires_action",
    [LEDGER_STATUS_FAILED] = "failed",
    [LEDGER_STATUS_CANCELED] = "canceled",
};

const char *ledger_status_name(enum ledger_status status)
{
    if ((size_t)status < sizeof(status_names) / sizeof(status_names[0]))
        return status_names[status];
    return "unknown";
}

bool ledger_status_parse(const char *s, enum ledger_status *out)
{
    if (s == NULL)
        return false;
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *out = (enum ledger_status)i;
            return true;
        }
    }
    return false;
}

bool ledger_status_counts(enum ledger_status status)
{
    return status != LEDGER_STATUS_FAILED && status != LEDGER_STATUS_CANCELED;
}

static void metadata_free(struct ledger_meta *metadata, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(metadata[i].name);
        free(metadata[i].value);
    }
    free(metadata);
}

/* Deep copy of n pairs of src into *dst (NULL when n is 0); false when out
 * of memory, with nothing allocated. */
static bool metadata_copy(struct ledger_meta **dst, const struct ledger_meta *src, size_t n)
{
    *dst = NULL;
    if (n == 0)
        return true;
    struct ledger_meta *m = calloc(n, sizeof(*m));
    if (m == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        m[i].name = strdup(src[i].name);
        m[i].value = strdup(src[i].value);
        if (m[i].name == NULL || m[i].value == NULL) {
            metadata_free(m, n);
            return false;
        }
    }
    *dst = m;
    return true;
}

static void refund_clear(struct ledger_refund *r)
{
    free(r->id);
    free(r->idempotency_key);
    free(r->reason);
    free(r->failure_reason);
    metadata_free(r->metadata, r->nmetadata);
    memset(r, 0, sizeof(*r));
}

/* Deep copy of src into *dst; false when out of memory (dst then cleared). */
static bool refund_copy(struct ledger_refund *dst, const struct ledger_refund *src)
{
    *dst = *src;
    dst->id = strdup(src->id);
    dst->idempotency_key = ledger_dup_or_null(src->idempotency_key);
    dst->reason = ledger_dup_or_null(src->reason);
    dst->failure_reason = ledger_dup_or_null(src->failure_reason);
    bool meta_ok = metadata_copy(&dst->metadata, src->metadata, src->nmetadata);
    if (!meta_ok)
        dst->nmetadata = 0;
    if (dst->id == NULL || (src->idempotency_key && dst->idempotency_key == NULL) ||
        (src->reason && dst->reason == NULL) ||
        (src->failure_reason && dst->failure_reason == NULL) || !meta_ok) {
        refund_clear(dst);
        return false;
    }
    return true;
}

static void payment_clear(struct ledger_payment *p)
{
    for (size_t i = 0; i < p->nrefunds; i++)
        refund_clear(&p->refunds[i]);
    free(p->refunds);
    free(p->payment_key);
    free(p->order_id);
    free(p->currency);
    free(p->unpaid_status);
    memset(p, 0, sizeof(*p));
}

/* Deep copy of src into *dst; false when out of memory (dst then cleared). */
static bool payment_copy(struct ledger_payment *dst, const struct ledger_payment *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->gateway = src->gateway;
    dst->refund_status = src->refund_status;
    dst->amount = src->amount;
    dst->refunded = src->refunded;
    dst->created_ms = src->created_ms;
    dst->payment_key = strdup(src->payment_key);
    dst->order_id = strdup(src->order_id);
    dst->currency = strdup(src->currency);
    dst->unpaid_status = ledger_dup_or_null(src->unpaid_status);
    if (dst->payment_key == NULL || dst->order_id == NULL || dst->currency == NULL ||
        (src->unpaid_status != NULL && dst->unpaid_status == NULL))
        goto fail;
    if (src->nrefunds > 0) {
        dst->refunds = calloc(src->nrefunds, sizeof(*dst->refunds));
        if (dst->refunds == NULL)
            goto fail;
        dst->cap = src->nrefunds;
        for (size_t i = 0; i < src->nrefunds; i++) {
            if (!refund_copy(&dst->refunds[i], &src->refunds[i]))
                goto fail;
            dst->nrefunds++;
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
    ledger_index_clear(&l->payments_by_key);
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
    ledger_index_free(&ledger->payments_by_key);
    free(ledger->idem);
    ledger_index_free(&ledger->idem_by_key);
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
    uint64_t h = ledger_index_hash(0, key);
    size_t probe = 0, pos1;
    while ((pos1 = ledger_index_next(&l->payments_by_key, h, &probe)) != 0) {
        if (strcmp(l->payments[pos1 - 1].payment_key, key) == 0)
            return &l->payments[pos1 - 1];
    }
    return NULL;
}

bool ledger_put_payment(struct ledger *ledger, enum sim_gateway gateway, const char *payment_key,
                        const char *order_id, int64_t amount, const char *currency,
                        int64_t refunded, enum ledger_status refund_status, char *err,
                        size_t errlen)
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
    if ((gateway == SIM_GATEWAY_TOSS || gateway == SIM_GATEWAY_KAKAOPAY) &&
        refund_status != LEDGER_STATUS_SUCCEEDED) {
        snprintf(err, errlen,
                 "refundStatus is for Stripe payments: Toss and KakaoPay cancels are done when "
                 "answered");
        return false;
    }
    if (gateway == SIM_GATEWAY_PORTONE && refund_status != LEDGER_STATUS_SUCCEEDED &&
        refund_status != LEDGER_STATUS_PENDING) {
        snprintf(err, errlen, "a PortOne cancel is SUCCEEDED or, asynchronous, REQUESTED");
        return false;
    }
    if (gateway == SIM_GATEWAY_ADYEN && refund_status != LEDGER_STATUS_SUCCEEDED &&
        refund_status != LEDGER_STATUS_FAILED) {
        snprintf(err, errlen,
                 "refundStatus of an Adyen payment is what its refunds settle to: \"succeeded\" "
                 "or \"failed\" (refused)");
        return false;
    }
    if (order_id == NULL) {
        snprintf(order, sizeof(order), "order-%s", payment_key);
        order_id = order;
    }
    p.gateway = gateway;
    p.refund_status = refund_status;
    p.amount = amount;
    p.refunded = refunded;
    p.created_ms = wall_ms();
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
                           sizeof(*ledger->payments)) &&
               ledger_index_add(&ledger->payments_by_key, ledger_index_hash(0, payment_key),
                                ledger->npayments)) {
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

bool ledger_set_unpaid_status(struct ledger *ledger, const char *payment_key, const char *status)
{
    char *copy = ledger_dup_or_null(status);
    bool ok = false;

    if (status != NULL && copy == NULL)
        return false;
    pthread_mutex_lock(&ledger->lock);
    struct ledger_payment *p = find_payment(ledger, payment_key);
    if (p != NULL) {
        free(p->unpaid_status);
        p->unpaid_status = copy;
        copy = NULL;
        ok = true;
    }
    pthread_mutex_unlock(&ledger->lock);
    free(copy);
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

struct ledger_payment *ledger_payment_lookup(struct ledger *ledger, const char *payment_key)
{
    struct ledger_payment *copy = NULL;

    pthread_mutex_lock(&ledger->lock);
    struct ledger_payment *p = find_payment(ledger, payment_key);
    if (p != NULL)
        copy = payment_dup(p);
    pthread_mutex_unlock(&ledger->lock);
    return copy;
}

void ledger_payments_free(struct ledger_payment *payments, size_t n)
{
    for (size_t i = 0; i < n; i++)
        payment_clear(&payments[i]);
    free(payments);
}

bool ledger_payments_list(struct ledger *ledger, enum sim_gateway gateway,
                          struct ledger_payment **payments, size_t *n)
{
    struct ledger_payment *list = NULL;
    size_t count = 0;
    bool ok = true;

    *payments = NULL;
    *n = 0;
    pthread_mutex_lock(&ledger->lock);
    if (ledger->npayments > 0) {
        list = calloc(ledger->npayments, sizeof(*list));
        ok = list != NULL;
    }
    for (size_t i = 0; ok && i < ledger->npayments; i++) {
        if (ledger->payments[i].gateway != gateway)
            continue;
        ok = payment_copy(&list[count], &ledger->payments[i]);
        if (ok)
            count++;
    }
    pthread_mutex_unlock(&ledger->lock);
    if (!ok) {
        ledger_payments_free(list, count);
        return false;
    }
    *payments = list;
    *n = count;
    return true;
}

/* A refund id in the style of the gateway. Lock held (uses l->seq). */
static char *new_refund_id(struct ledger *l, enum sim_gateway gateway)
{
    char buf[64];

    l->seq++;
    if (gateway == SIM_GATEWAY_STRIPE) {
        /* Stripe ids: "re_" + 24 characters. */
        snprintf(buf, sizeof(buf), "re_sim%018" PRIu64, l->seq);
    } else if (gateway == SIM_GATEWAY_KAKAOPAY) {
        /* KakaoPay aids: 20 characters ("20자리"), as "A73033087f575eb02c28". */
        unsigned char raw[6];
        arc4random_buf(raw, sizeof(raw));
        snprintf(buf, sizeof(buf), "A%08" PRIx64 "%02x%02x%02x%02x%02x%01x", l->seq & 0xffffffffu,
                 raw[0], raw[1], raw[2], raw[3], raw[4], raw[5] & 0xfu);
    } else if (gateway == SIM_GATEWAY_ADYEN) {
        /* Adyen's "16-character reference": 16 upper-case letters and
         * digits, the sequence number first so that none repeats within a
         * run, random after it so that runs differ. */
        static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        int n = snprintf(buf, sizeof(buf), "%08" PRIu64, l->seq % 100000000u);
        for (; n < 16; n++)
            buf[n] = alnum[arc4random_uniform(sizeof(alnum) - 1)];
        buf[16] = '\0';
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
                                        const char *payment_key,
                                        const struct ledger_refund_spec *spec,
                                        struct ledger_payment **after)
{
    enum ledger_refund_result res;
    int64_t amount = spec->amount;

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
    if (spec->has_expected_balance && spec->expected_balance != balance) {
        res = LEDGER_REFUND_BALANCE_DIFFERS;
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
    r.at_ms = wall_ms();
    r.status = spec->has_status ? spec->status : p->refund_status;
    r.id = new_refund_id(ledger, gateway);
    r.seq = ledger->seq;
    r.idempotency_key = ledger_dup_or_null(spec->idempotency_key);
    r.reason = ledger_dup_or_null(spec->reason);
    bool meta_ok = metadata_copy(&r.metadata, spec->metadata, spec->nmetadata);
    if (meta_ok)
        r.nmetadata = spec->nmetadata;
    if (r.id == NULL || (spec->idempotency_key && r.idempotency_key == NULL) ||
        (spec->reason && r.reason == NULL) || !meta_ok) {
        refund_clear(&r);
        res = LEDGER_REFUND_NO_MEMORY;
        goto out;
    }
    p->refunds[p->nrefunds++] = r;
    if (ledger_status_counts(r.status))
        p->refunded += amount;
    res = LEDGER_REFUND_OK;
out:
    if (p != NULL && p->gateway == gateway)
        *after = payment_dup(p);
    pthread_mutex_unlock(&ledger->lock);
    return res;
}

/* The payment holding refund refund_id and the refund's index, or NULL.
 * Lock held. */
static struct ledger_payment *find_refund(struct ledger *l, const char *refund_id, size_t *index)
{
    for (size_t i = 0; i < l->npayments; i++) {
        struct ledger_payment *p = &l->payments[i];
        for (size_t j = 0; j < p->nrefunds; j++) {
            if (strcmp(p->refunds[j].id, refund_id) == 0) {
                *index = j;
                return p;
            }
        }
    }
    return NULL;
}

struct ledger_payment *ledger_refund_find(struct ledger *ledger, const char *refund_id,
                                          size_t *index)
{
    struct ledger_payment *copy = NULL;

    pthread_mutex_lock(&ledger->lock);
    struct ledger_payment *p = find_refund(ledger, refund_id, index);
    if (p != NULL)
        copy = payment_dup(p);
    pthread_mutex_unlock(&ledger->lock);
    return copy;
}

enum ledger_refund_result ledger_refund_set_status(struct ledger *ledger, const char *refund_id,
                                                   enum ledger_status status,
                                                   const char *failure_reason,
                                                   struct ledger_payment **after, size_t *index)
{
    enum ledger_refund_result res = LEDGER_REFUND_OK;
    char *reason_copy = NULL;

    *after = NULL;
    if (status != LEDGER_STATUS_FAILED)
        failure_reason = NULL;
    if (failure_reason != NULL && (reason_copy = strdup(failure_reason)) == NULL)
        return LEDGER_REFUND_NO_MEMORY;
    pthread_mutex_lock(&ledger->lock);
    struct ledger_payment *p = find_refund(ledger, refund_id, index);
    if (p == NULL) {
        res = LEDGER_REFUND_NOT_FOUND;
        goto out;
    }
    struct ledger_refund *r = &p->refunds[*index];
    bool counted = ledger_status_counts(r->status), counts = ledger_status_counts(status);
    if (counts && !counted && r->amount > p->amount - p->refunded) {
        res = LEDGER_REFUND_TOO_LARGE;
        goto out;
    }
    if (counts && !counted)
        p->refunded += r->amount;
    else if (!counts && counted)
        p->refunded -= r->amount;
    r->status = status;
    r->status_ms = wall_ms();
    free(r->failure_reason);
    r->failure_reason = reason_copy;
    reason_copy = NULL;
    *after = payment_dup(p);
out:
    pthread_mutex_unlock(&ledger->lock);
    free(reason_copy);
    return res;
}

bool ledger_refund_delete(struct ledger *ledger, const char *refund_id)
{
    size_t i;

    pthread_mutex_lock(&ledger->lock);
    struct ledger_payment *p = find_refund(ledger, refund_id, &i);
    if (p != NULL) {
        if (ledger_status_counts(p->refunds[i].status))
            p->refunded -= p->refunds[i].amount;
        refund_clear(&p->refunds[i]);
        memmove(&p->refunds[i], &p->refunds[i + 1], (p->nrefunds - i - 1) * sizeof(*p->refunds));
        p->nrefunds--;
    }
    pthread_mutex_unlock(&ledger->lock);
    return p != NULL;
}

json_t *ledger_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The ledger format of a refund. */
static json_t *refund_to_json(const struct ledger_refund *r)
{
    char at[40];
    json_t *metadata = json_object();

    for (size_t i = 0; i < r->nmetadata; i++)
        json_object_set_new(metadata, r->metadata[i].name, json_string(r->metadata[i].value));
    sim_format_time(r->at_ms, at, sizeof(at));
    return json_pack("{s:s, s:o, s:I, s:s, s:s, s:o, s:o, s:o}", "id", r->id, "idempotencyKey",
                     ledger_str_or_null(r->idempotency_key), "amount", (json_int_t)r->amount, "at",
                     at, "status", ledger_status_name(r->status), "failureReason",
                     ledger_str_or_null(r->failure_reason), "reason", ledger_str_or_null(r->reason),
                     "metadata", metadata);
}

json_t *ledger_refund_json(const struct ledger_payment *p, const struct ledger_refund *r)
{
    json_t *obj = refund_to_json(r);
    if (obj != NULL)
        json_object_set_new(obj, "paymentKey", json_string(p->payment_key));
    return obj;
}

/* The ledger format of a payment. Lock held. */
static json_t *payment_to_json(const struct ledger_payment *p)
{
    json_t *refunds = json_array();

    for (size_t i = 0; i < p->nrefunds; i++)
        json_array_append_new(refunds, refund_to_json(&p->refunds[i]));
    json_t *obj = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:o}", "gateway",
                            sim_gateway_name(p->gateway), "paymentKey", p->payment_key, "orderId",
                            p->order_id, "amount", (json_int_t)p->amount, "currency", p->currency,
                            "refunded", (json_int_t)p->refunded, "refunds", refunds);
    if (obj != NULL && (p->gateway == SIM_GATEWAY_STRIPE || p->gateway == SIM_GATEWAY_PORTONE ||
                        p->gateway == SIM_GATEWAY_ADYEN))
        json_object_set_new(obj, "refundStatus", json_string(ledger_status_name(p->refund_status)));
    if (obj != NULL && p->unpaid_status != NULL)
        json_object_set_new(obj, "paymentStatus", json_string(p->unpaid_status));
    return obj;
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
