/*
 * faults: injected failures and latency. See faults.h.
 */
#include "faults.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No single injected sleep longer than this: a typo must not wedge a test. */
#define FAULT_MAX_DELAY_MS (10LL * 60 * 1000)

struct faults {
    pthread_mutex_t lock;
    struct fault *list; /* owned, in insertion order */
    size_t n, cap;
    int next_id;
    int64_t latency_min_ms;
    int64_t latency_max_ms;
};

static const char *const type_names[] = {
    [FAULT_ERROR_5XX] = "error_5xx",
    [FAULT_PROVIDER_ERROR] = "provider_error",
    [FAULT_RATE_LIMITED] = "rate_limited",
    [FAULT_HANG] = "hang",
    [FAULT_APPLY_THEN_HANG] = "apply_then_hang",
    [FAULT_APPLY_THEN_DROP] = "apply_then_drop",
    [FAULT_PERMANENT] = "permanent",
    [FAULT_BAD_CREDENTIALS] = "bad_credentials",
    [FAULT_IN_PROGRESS] = "in_progress",
    [FAULT_RAW] = "raw",
    [FAULT_DUPLICATE] = "duplicate",
    [FAULT_FORGED] = "forged",
    [FAULT_DROP] = "drop",
    [FAULT_DELAY] = "delay",
};

static const char *const op_names[] = {
    [FAULT_OP_REFUND] = "refund",
    [FAULT_OP_INQUIRY] = "inquiry",
    [FAULT_OP_ANY] = "any",
    [FAULT_OP_WEBHOOK] = "webhook",
};

const char *fault_type_name(enum fault_type type)
{
    if ((size_t)type < sizeof(type_names) / sizeof(type_names[0]))
        return type_names[type];
    return "unknown";
}

void fault_clear(struct fault *f)
{
    if (f == NULL)
        return;
    free(f->payment_key);
    free(f->code);
    free(f->message);
    free(f->body);
    free(f->extras);
    free(f->retry_after_header);
    memset(f, 0, sizeof(*f));
}

struct faults *faults_new(void)
{
    struct faults *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return NULL;
    if (pthread_mutex_init(&fs->lock, NULL) != 0) {
        free(fs);
        return NULL;
    }
    fs->next_id = 1;
    return fs;
}

static void clear_locked(struct faults *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        fault_clear(&fs->list[i]);
    fs->n = 0;
}

void faults_free(struct faults *faults)
{
    if (faults == NULL)
        return;
    clear_locked(faults);
    free(faults->list);
    pthread_mutex_destroy(&faults->lock);
    free(faults);
}

void faults_clear(struct faults *faults, bool latency)
{
    pthread_mutex_lock(&faults->lock);
    clear_locked(faults);
    if (latency)
        faults->latency_min_ms = faults->latency_max_ms = 0;
    pthread_mutex_unlock(&faults->lock);
}

/* Read an optional integer member into *out within [lo, hi]. */
static bool opt_int(const json_t *obj, const char *name, int64_t lo, int64_t hi, int64_t *out,
                    char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(err, errlen, "%s must be an integer between %lld and %lld", name, (long long)lo,
                 (long long)hi);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* Read an optional boolean member into *out. */
static bool opt_bool(const json_t *obj, const char *name, bool *out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "%s must be true or false", name);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* Read an optional string member; *out is a copy or stays NULL. */
static bool opt_str(const json_t *obj, const char *name, char **out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "%s must be a string", name);
        return false;
    }
    *out = strdup(json_string_value(v));
    if (*out == NULL) {
        snprintf(err, errlen, "could not add fault: out of memory");
        return false;
    }
    return true;
}

static bool is_webhook_type(enum fault_type type)
{
    return type == FAULT_DUPLICATE || type == FAULT_FORGED || type == FAULT_DROP ||
           type == FAULT_DELAY;
}

/* A webhook fault acts on notifications only (operation "webhook", the
 * default for them; only Adyen sends any), every other fault on calls only. */
static bool webhook_op_fits(struct fault *f, bool op_given, char *err, size_t errlen)
{
    if (!is_webhook_type(f->type)) {
        if (f->op != FAULT_OP_WEBHOOK)
            return true;
        snprintf(err, errlen, "operation \"webhook\" is only for duplicate, forged, drop, delay");
        return false;
    }
    if (op_given && f->op != FAULT_OP_WEBHOOK) {
        snprintf(err, errlen, "%s is a webhook fault: operation must be \"webhook\"",
                 fault_type_name(f->type));
        return false;
    }
    if (f->gateway >= 0 && f->gateway != SIM_GATEWAY_ADYEN) {
        snprintf(err, errlen, "%s is a webhook fault: only Adyen sends webhooks",
                 fault_type_name(f->type));
        return false;
    }
    f->op = FAULT_OP_WEBHOOK;
    return true;
}

bool faults_add_json(struct faults *faults, const json_t *obj, int *id, char *err, size_t errlen)
{
    struct fault f = {0};
    int64_t times = 1, status = 0, retry_after = 1, delay_ms = 15000;
    char *gateway = NULL, *op = NULL;
    bool ok = false;

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "fault must be a JSON object");
        return false;
    }
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (type == NULL) {
        snprintf(err, errlen, "type is required");
        return false;
    }
    size_t t;
    for (t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++)
        if (strcmp(type, type_names[t]) == 0)
            break;
    if (t == sizeof(type_names) / sizeof(type_names[0])) {
        snprintf(err, errlen, "unknown fault type \"%.64s\"", type);
        return false;
    }
    f.type = (enum fault_type)t;
    f.gateway = -1;
    f.op = FAULT_OP_REFUND;
    /* A raw answer may carry any status an HTTP client accepts as final
     * (200..999, for "anything else"); the others a standard one. */
    if (!opt_int(obj, "times", 0, 1000000, &times, err, errlen) ||
        !opt_int(obj, "status", f.type == FAULT_RAW ? 200 : 100, f.type == FAULT_RAW ? 999 : 599,
                 &status, err, errlen) ||
        !opt_int(obj, "retryAfter", 0, 86400, &retry_after, err, errlen) ||
        !opt_int(obj, "delayMs", 0, FAULT_MAX_DELAY_MS, &delay_ms, err, errlen) ||
        !opt_str(obj, "paymentKey", &f.payment_key, err, errlen) ||
        !opt_str(obj, "code", &f.code, err, errlen) ||
        !opt_str(obj, "message", &f.message, err, errlen) ||
        !opt_str(obj, "body", &f.body, err, errlen) ||
        !opt_str(obj, "retryAfterHeader", &f.retry_after_header, err, errlen) ||
        !opt_str(obj, "gateway", &gateway, err, errlen) ||
        !opt_str(obj, "operation", &op, err, errlen) ||
        !opt_bool(obj, "stored", &f.stored, err, errlen))
        goto out;
    if (f.stored && f.type != FAULT_ERROR_5XX && f.type != FAULT_PROVIDER_ERROR &&
        f.type != FAULT_PERMANENT && f.type != FAULT_RAW) {
        snprintf(err, errlen, "stored is only for error_5xx, provider_error, permanent and raw");
        goto out;
    }
    if (f.body != NULL && f.type != FAULT_RAW) {
        snprintf(err, errlen, "body is only for raw");
        goto out;
    }
    const json_t *jextras = json_object_get(obj, "extras");
    if (jextras != NULL && !json_is_null(jextras)) {
        if (!json_is_object(jextras) || f.type == FAULT_RAW) {
            snprintf(err, errlen, "extras must be an object, and not for raw");
            goto out;
        }
        f.extras = json_dumps(jextras, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (f.extras == NULL) {
            snprintf(err, errlen, "could not add fault: out of memory");
            goto out;
        }
    }
    /* Any text a gateway might send (a huge number, a far date), for testing
     * a client's reading of it; but one header line. */
    if (f.retry_after_header != NULL &&
        (f.type != FAULT_RATE_LIMITED || f.retry_after_header[0] == '\0' ||
         strlen(f.retry_after_header) >= sizeof(((struct sim_response *)0)->retry_after_text) ||
         strpbrk(f.retry_after_header, "\r\n") != NULL)) {
        snprintf(err, errlen,
                 "retryAfterHeader is only for rate_limited: 1 to 47 characters, one line");
        goto out;
    }
    if (gateway != NULL) {
        enum sim_gateway g;
        if (!sim_gateway_parse(gateway, &g)) {
            snprintf(
                err, errlen,
                "gateway must be \"toss\", \"stripe\", \"kakaopay\", \"portone\" or \"adyen\"");
            goto out;
        }
        f.gateway = (int)g;
    }
    if (op != NULL) {
        size_t o;
        for (o = 0; o < sizeof(op_names) / sizeof(op_names[0]); o++)
            if (strcmp(op, op_names[o]) == 0)
                break;
        if (o == sizeof(op_names) / sizeof(op_names[0])) {
            snprintf(err, errlen,
                     "operation must be \"refund\", \"inquiry\", \"any\" or \"webhook\"");
            goto out;
        }
        f.op = (enum fault_op)o;
    }
    if (!webhook_op_fits(&f, op != NULL, err, errlen))
        goto out;
    f.times = (int)times;
    f.status = (int)status;
    f.retry_after = (int)retry_after;
    f.delay_ms = delay_ms;

    pthread_mutex_lock(&faults->lock);
    if (faults->n == faults->cap) {
        size_t ncap = faults->cap ? faults->cap * 2 : 8;
        struct fault *p = realloc(faults->list, ncap * sizeof(*p));
        if (p != NULL) {
            faults->list = p;
            faults->cap = ncap;
        }
    }
    if (faults->n < faults->cap) {
        f.id = faults->next_id++;
        *id = f.id;
        faults->list[faults->n++] = f;
        memset(&f, 0, sizeof(f)); /* ownership moved into the list */
        ok = true;
    } else {
        snprintf(err, errlen, "could not add fault: out of memory");
    }
    pthread_mutex_unlock(&faults->lock);
out:
    fault_clear(&f);
    free(gateway);
    free(op);
    return ok;
}

static bool applies(const struct fault *f, enum sim_gateway gateway, enum fault_op op,
                    const char *payment_key, bool stored)
{
    if (f->stored != stored)
        return false;
    if (f->times != 0 && f->used >= f->times)
        return false;
    if (f->gateway >= 0 && f->gateway != (int)gateway)
        return false;
    if (f->op != FAULT_OP_ANY && f->op != op)
        return false;
    if (f->op == FAULT_OP_ANY && op == FAULT_OP_WEBHOOK)
        return false;
    if (f->payment_key != NULL && (payment_key == NULL || strcmp(f->payment_key, payment_key) != 0))
        return false;
    return true;
}

bool faults_match(struct faults *faults, enum sim_gateway gateway, enum fault_op op,
                  const char *payment_key, bool stored, struct fault *out)
{
    bool found = false;

    pthread_mutex_lock(&faults->lock);
    for (size_t i = 0; i < faults->n; i++) {
        struct fault *f = &faults->list[i];
        if (!applies(f, gateway, op, payment_key, stored))
            continue;
        f->used++;
        *out = *f;
        out->payment_key = f->payment_key ? strdup(f->payment_key) : NULL;
        out->code = f->code ? strdup(f->code) : NULL;
        out->message = f->message ? strdup(f->message) : NULL;
        out->body = f->body ? strdup(f->body) : NULL;
        out->extras = f->extras ? strdup(f->extras) : NULL;
        out->retry_after_header = f->retry_after_header ? strdup(f->retry_after_header) : NULL;
        found = true;
        break;
    }
    pthread_mutex_unlock(&faults->lock);
    return found;
}

json_t *faults_json(struct faults *faults)
{
    json_t *list = json_array();

    pthread_mutex_lock(&faults->lock);
    for (size_t i = 0; i < faults->n; i++) {
        const struct fault *f = &faults->list[i];
        json_t *o =
            json_pack("{s:i, s:s, s:s, s:i, s:i}", "id", f->id, "type", fault_type_name(f->type),
                      "operation", op_names[f->op], "times", f->times, "used", f->used);
        if (o == NULL)
            continue;
        if (f->payment_key != NULL)
            json_object_set_new(o, "paymentKey", json_string(f->payment_key));
        if (f->gateway >= 0)
            json_object_set_new(o, "gateway",
                                json_string(sim_gateway_name((enum sim_gateway)f->gateway)));
        if (f->status != 0)
            json_object_set_new(o, "status", json_integer(f->status));
        if (f->type == FAULT_RATE_LIMITED)
            json_object_set_new(o, "retryAfter", json_integer(f->retry_after));
        if (f->retry_after_header != NULL)
            json_object_set_new(o, "retryAfterHeader", json_string(f->retry_after_header));
        if (f->type == FAULT_HANG || f->type == FAULT_APPLY_THEN_HANG || f->type == FAULT_DELAY)
            json_object_set_new(o, "delayMs", json_integer(f->delay_ms));
        if (f->code != NULL)
            json_object_set_new(o, "code", json_string(f->code));
        if (f->body != NULL)
            json_object_set_new(o, "body", json_string(f->body));
        if (f->extras != NULL)
            json_object_set_new(o, "extras", json_loads(f->extras, 0, NULL));
        if (f->stored)
            json_object_set_new(o, "stored", json_true());
        json_array_append_new(list, o);
    }
    json_t *latency = json_pack("{s:I, s:I}", "minMs", (json_int_t)faults->latency_min_ms, "maxMs",
                                (json_int_t)faults->latency_max_ms);
    pthread_mutex_unlock(&faults->lock);
    return json_pack("{s:o, s:o}", "faults", list, "latency", latency);
}

bool faults_set_latency_json(struct faults *faults, const json_t *obj, char *err, size_t errlen)
{
    int64_t lo = 0, hi = 0;

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "latency must be a JSON object");
        return false;
    }
    if (!opt_int(obj, "minMs", 0, FAULT_MAX_DELAY_MS, &lo, err, errlen) ||
        !opt_int(obj, "maxMs", 0, FAULT_MAX_DELAY_MS, &hi, err, errlen))
        return false;
    if (json_object_get(obj, "maxMs") == NULL)
        hi = lo;
    if (lo > hi) {
        snprintf(err, errlen, "minMs must not exceed maxMs");
        return false;
    }
    pthread_mutex_lock(&faults->lock);
    faults->latency_min_ms = lo;
    faults->latency_max_ms = hi;
    pthread_mutex_unlock(&faults->lock);
    return true;
}

int64_t faults_pick_latency(struct faults *faults)
{
    pthread_mutex_lock(&faults->lock);
    int64_t lo = faults->latency_min_ms, hi = faults->latency_max_ms;
    pthread_mutex_unlock(&faults->lock);
    if (hi <= lo)
        return lo;
    /* arc4random_uniform: no generator state to share between threads. */
    return lo + (int64_t)arc4random_uniform((uint32_t)(hi - lo + 1));
}
