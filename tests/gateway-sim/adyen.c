/*
 * adyen: Adyen refunds and their settlement. See adyen.h.
 *
 * Which answers are documented and which are the simulator's choice:
 * docs/gateway-sim.md, "Adyen".
 */
#include "adyen.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adyen_signature.h"
#include "faults.h"
#include "ledger.h"
#include "pipeline.h"

#include "base/clock.h"
#include "base/log.h"

/* Adyen: the key is "a unique identifier for the message with a maximum of
 * 64 characters". */
#define ADYEN_KEY_MAX 64
/* Adyen: reference, "Maximum length: 80 characters". */
#define ADYEN_REFERENCE_MAX 80
/* The message Adyen was observed to answer a repeat of a key in progress
 * with (research §3.4); its code, 704, is the simulator's choice. */
#define ADYEN_IN_FLIGHT_MESSAGE "request already processed or in progress"
#define ADYEN_REFUSED_REASON    "Refund refused (simulated)"

/* A refund waiting for its automatic settlement. */
struct pending {
    char *psp;
    int64_t due_ms; /* mono */
};

struct adyen {
    struct sim *sim; /* borrowed */
    char *api_key;   /* owned; secret: never logged */
    char *merchant;  /* owned */
    int64_t key_ttl_ms;
    int64_t settle_ms;
    struct adyen_webhooks *webhooks; /* owned */
    /* Guards pending and stop, and makes "still received? then settle" one
     * step, so that an admin call and the timer never both settle. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct pending *pending; /* owned, unordered */
    size_t npending, cap;
    bool stop;
    pthread_t settler;
    bool settler_started;
};

/* A refund request as parsed before the pipeline runs. */
struct adyen_refund {
    struct adyen *adyen;
    char *payment_psp; /* owned */
    json_t *body;      /* owned; NULL when not JSON */
    int64_t value;
    const char *currency;   /* into body */
    const char *reference;  /* into body; NULL when absent */
    const char *reason;     /* merchantRefundReason, into body; NULL when absent */
    const char *merchant;   /* into body */
    int status;             /* a validation error to answer (nothing stored), 0 = none */
    const char *error_code; /* with status */
    const char *error_type;
    char error_message[300];
};

void adyen_options_init(struct adyen_options *o)
{
    memset(o, 0, sizeof(*o));
    o->key_ttl_ms = ADYEN_DEFAULT_KEY_TTL_S * 1000;
    o->settle_ms = ADYEN_DEFAULT_SETTLE_MS;
    o->webhook.time_scale = ADYEN_WEBHOOK_DEFAULT_TIME_SCALE;
    o->webhook.timeout_ms = ADYEN_WEBHOOK_DEFAULT_TIMEOUT_MS;
}

/* A decimal integer within [lo, hi]. */
static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;

    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool adyen_option(struct adyen_options *o, int opt, const char *arg, char *err, size_t errlen)
{
    unsigned char key[ADYEN_SIGNATURE_KEY_LEN];
    int64_t v;

    switch (opt) {
    case ADYEN_OPT_API_KEY:
        o->api_key = arg[0] ? arg : NULL;
        return true;
    case ADYEN_OPT_MERCHANT:
        o->merchant_account = arg[0] ? arg : NULL;
        return true;
    case ADYEN_OPT_KEY_TTL:
        if (!parse_int(arg, 1, 10LL * 365 * 24 * 3600, &v))
            break;
        o->key_ttl_ms = v * 1000;
        return true;
    case ADYEN_OPT_SETTLE_MS:
        if (!parse_int(arg, -1, 24LL * 3600 * 1000, &v))
            break;
        o->settle_ms = v;
        return true;
    case ADYEN_OPT_WEBHOOK_URL:
        if (arg[0] != '\0' && strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0)
            break;
        o->webhook.url = arg[0] ? arg : NULL;
        return true;
    case ADYEN_OPT_HMAC_KEY:
        if (arg[0] != '\0' && !adyen_signature_key_parse(arg, key))
            break;
        o->webhook.hmac_key_hex = arg[0] ? arg : NULL;
        return true;
    case ADYEN_OPT_WEBHOOK_BASIC_AUTH:
        if (strchr(arg, ':') == NULL)
            break;
        o->webhook.basic_auth = arg;
        return true;
    case ADYEN_OPT_WEBHOOK_TIME_SCALE:
        if (!parse_int(arg, 1, 1000000000, &v))
            break;
        o->webhook.time_scale = v;
        return true;
    case ADYEN_OPT_WEBHOOK_TIMEOUT_MS:
        if (!parse_int(arg, 1, 600000, &v))
            break;
        o->webhook.timeout_ms = v;
        return true;
    default:
        snprintf(err, errlen, "unknown Adyen option");
        return false;
    }
    snprintf(err, errlen, "bad value \"%.100s\" for an Adyen option (see --help)", arg);
    return false;
}

/* ---- the refund call ---- */

/* Adyen's errorType for an error answer. */
static const char *error_type(int status, const char *code)
{
    if (status == 401 || status == 403 || strcmp(code, "010") == 0 || strcmp(code, "901") == 0)
        return "security";
    if (strcmp(code, "905") == 0)
        return "configuration";
    /* 429: not documented for this path; not the client's input at fault. */
    return status >= 500 || status == 429 ? "internal" : "validation";
}

static void answer_error(struct sim_response *resp, int status, const char *code,
                         const char *message)
{
    sim_respond_error(resp, SIM_GATEWAY_ADYEN, status, error_type(status, code), code, message);
}

/* The pipeline's own answers in Adyen's words (pipeline_error_fn): fault
 * f's, or with f NULL the 401 for a wrong key. */
static void wording(struct sim *sim, const struct fault *f, void *arg, struct sim_response *resp)
{
    /* Per fault type: status, errorCode, message (the simulator's choice:
     * Adyen documents none of these for the refund path but 401 and 500). */
    static const struct {
        int status;
        const char *code;
        const char *message;
    } faults[] = {
        [FAULT_ERROR_5XX] = {503, "000", "the gateway is temporarily unavailable"},
        [FAULT_PROVIDER_ERROR] = {500, "000", "the acquirer could not process the request"},
        [FAULT_RATE_LIMITED] = {429, "000", "too many requests: retry later"},
        [FAULT_HANG] = {504, "000", "the gateway timed out"},
        [FAULT_APPLY_THEN_HANG] = {504, "000", "the gateway timed out"},
        [FAULT_PERMANENT] = {422, "000", "the request cannot be processed"},
        [FAULT_BAD_CREDENTIALS] = {401, "000", "HTTP Status Response - Unauthorized"},
        [FAULT_IN_PROGRESS] = {422, "704", ADYEN_IN_FLIGHT_MESSAGE},
    };
    int status = 500;
    const char *code = "000", *message = "internal error";

    (void)sim;
    (void)arg;
    if (f == NULL) {
        answer_error(resp, 401, "000", "HTTP Status Response - Unauthorized");
        return;
    }
    if ((size_t)f->type < sizeof(faults) / sizeof(faults[0]) && faults[f->type].status != 0) {
        status = faults[f->type].status;
        code = faults[f->type].code;
        message = faults[f->type].message;
    }
    if (f->status != 0 && f->type != FAULT_BAD_CREDENTIALS)
        status = f->status;
    answer_error(resp, status, f->code ? f->code : code, f->message ? f->message : message);
}

__attribute__((format(printf, 5, 6))) static void
refuse(struct adyen_refund *r, int status, const char *code, const char *type, const char *fmt, ...)
{
    va_list ap;

    if (r->status != 0)
        return; /* the first error found is the answer */
    r->status = status;
    r->error_code = code;
    r->error_type = type;
    va_start(ap, fmt);
    vsnprintf(r->error_message, sizeof(r->error_message), fmt, ap);
    va_end(ap);
}

/* A string member of obj: absent (NULL, true), a string (true), or not
 * (false). */
static bool opt_string(const json_t *obj, const char *name, const char **out)
{
    const json_t *v = json_object_get(obj, name);

    *out = json_string_value(v);
    return v == NULL || json_is_null(v) || json_is_string(v);
}

static bool known_reason(const char *reason)
{
    static const char *const reasons[] = {"FRAUD", "CUSTOMER REQUEST", "RETURN", "DUPLICATE",
                                          "OTHER"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (strcmp(reason, reasons[i]) == 0)
            return true;
    return false;
}

/* Check the request's shape (what needs no ledger), recording the first
 * error in r. */
static void parse_refund(const struct sim_request *req, struct adyen_refund *r)
{
    const json_t *amount = json_object_get(r->body, "amount");
    const json_t *value = json_object_get(amount, "value");

    if (req->idempotency_key != NULL && strlen(req->idempotency_key) > ADYEN_KEY_MAX)
        refuse(r, 400, "702", "validation",
               "Unexpected input: Idempotency-Key longer than %d characters", ADYEN_KEY_MAX);
    if (!json_is_object(r->body)) {
        refuse(r, 400, "702", "validation", "Unexpected input: the body must be a JSON object");
        return;
    }
    if (!opt_string(r->body, "merchantAccount", &r->merchant) ||
        !opt_string(r->body, "reference", &r->reference) ||
        !opt_string(r->body, "merchantRefundReason", &r->reason))
        refuse(r, 400, "702", "validation",
               "Unexpected input: merchantAccount, reference and merchantRefundReason are "
               "strings");
    if (amount == NULL || json_is_null(amount))
        refuse(r, 422, "100", "validation", "Required object 'amount' is not provided.");
    else if (!json_is_object(amount))
        refuse(r, 400, "702", "validation", "Unexpected input: amount must be an object");
    if (r->merchant == NULL || r->merchant[0] == '\0')
        refuse(r, 422, "100", "validation", "Required field 'merchantAccount' is not provided.");
    else if (strcmp(r->merchant, r->adyen->merchant) != 0)
        refuse(r, 403, "901", "security", "Invalid Merchant Account");
    r->currency = json_string_value(json_object_get(amount, "currency"));
    if (!json_is_integer(value) || json_integer_value(value) <= 0)
        refuse(r, 422, "137", "validation", "Invalid amount specified");
    else
        r->value = json_integer_value(value);
    if (r->currency == NULL || strlen(r->currency) != 3)
        refuse(r, 422, "137", "validation", "Invalid amount specified: currency");
    if (r->reference != NULL && strlen(r->reference) > ADYEN_REFERENCE_MAX)
        refuse(r, 400, "702", "validation", "Unexpected input: reference longer than %d characters",
               ADYEN_REFERENCE_MAX);
    if (r->reason != NULL && !known_reason(r->reason))
        refuse(r, 400, "702", "validation", "Unexpected input: merchantRefundReason '%.40s'",
               r->reason);
}

static bool validate_refund(struct sim *sim, const struct sim_request *req, void *arg,
                            struct sim_response *resp)
{
    const struct adyen_refund *r = arg;

    (void)sim;
    (void)req;
    if (r->status == 0)
        return true;
    sim_respond_error(resp, SIM_GATEWAY_ADYEN, r->status, r->error_type, r->error_code,
                      r->error_message);
    return false;
}

/* Queue psp for settlement settle_ms from now (nothing when settle_ms < 0). */
static void schedule_settlement(struct adyen *a, const char *psp)
{
    if (a->settle_ms < 0)
        return;
    bool queued = false;
    char *copy = strdup(psp);
    pthread_mutex_lock(&a->lock);
    if (copy != NULL &&
        ledger_grow((void **)&a->pending, &a->cap, a->npending, sizeof(*a->pending))) {
        a->pending[a->npending++] = (struct pending){copy, mono_ms() + a->settle_ms};
        queued = true;
        pthread_cond_signal(&a->wake);
    }
    pthread_mutex_unlock(&a->lock);
    if (!queued) {
        log_error("refund %s will settle only by an admin call: out of memory", psp);
        free(copy);
    }
}

static void process_refund(struct sim *sim, const struct sim_request *req, void *arg,
                           struct sim_response *resp)
{
    struct adyen_refund *r = arg;
    struct ledger_payment *after = NULL;
    struct ledger_meta meta = {"reference", (char *)r->reference};
    char msg[300];

    struct ledger_payment *p = ledger_payment_get(sim->ledger, SIM_GATEWAY_ADYEN, r->payment_psp);
    if (p == NULL) {
        /* 167 and its wording for an unknown payment: the simulator's
         * choice (research §3.5: not found). */
        answer_error(resp, 422, "167", "Original pspReference required");
        return;
    }
    bool currency_ok = strcmp(p->currency, r->currency) == 0;
    ledger_payment_free(p);
    if (!currency_ok) {
        answer_error(resp, 422, "137", "Invalid amount specified: currency");
        return;
    }
    struct ledger_refund_spec spec = {
        .amount = r->value,
        .reason = r->reason,
        .idempotency_key = req->idempotency_key,
        .metadata = r->reference ? &meta : NULL,
        .nmetadata = r->reference ? 1 : 0,
        .has_status = true,
        .status = LEDGER_STATUS_PENDING, /* "received" */
    };
    switch (ledger_refund(sim->ledger, SIM_GATEWAY_ADYEN, r->payment_psp, &spec, &after)) {
    case LEDGER_REFUND_OK:
        if (after == NULL || after->nrefunds == 0) {
            answer_error(resp, 500, "000", "out of memory");
            break;
        }
        const char *psp = after->refunds[after->nrefunds - 1].id;
        json_t *obj =
            json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:I}}", "merchantAccount", r->adyen->merchant,
                      "paymentPspReference", r->payment_psp, "pspReference", psp, "status",
                      "received", "amount", "currency", r->currency, "value", (json_int_t)r->value);
        if (obj != NULL && r->reference != NULL)
            json_object_set_new(obj, "reference", json_string(r->reference));
        if (obj != NULL && r->reason != NULL)
            json_object_set_new(obj, "merchantRefundReason", json_string(r->reason));
        sim_respond_json(resp, 201, obj);
        schedule_settlement(r->adyen, psp);
        break;
    case LEDGER_REFUND_NOT_FOUND:
        answer_error(resp, 422, "167", "Original pspReference required");
        break;
    case LEDGER_REFUND_NOTHING_LEFT:
    case LEDGER_REFUND_TOO_LARGE:
        /* Adyen: the refunds' "sum doesn't exceed the captured amount";
         * the code (137) is the simulator's choice. */
        snprintf(msg, sizeof(msg), "Invalid amount specified: more than the %lld left to refund",
                 after ? (long long)(after->amount - after->refunded) : 0LL);
        answer_error(resp, 422, "137", msg);
        break;
    case LEDGER_REFUND_NO_MEMORY:
    case LEDGER_REFUND_BALANCE_DIFFERS: /* Adyen has no balance guard: never asked */
        answer_error(resp, 500, "000", "out of memory");
        break;
    }
    ledger_payment_free(after);
}

static bool authorized(const struct adyen *a, const char *api_key)
{
    return api_key != NULL && strcmp(api_key, a->api_key) == 0;
}

void adyen_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    static const char suffix[] = "/refunds";
    const char *start = req->path + strlen(ADYEN_PREFIX);
    size_t len = strlen(start), slen = sizeof(suffix) - 1;
    struct adyen_refund refund = {.adyen = sim->adyen};

    if (sim->adyen == NULL) {
        answer_error(resp, 500, "000", "the simulator was started without Adyen");
        return;
    }
    if (len <= slen || strcmp(start + len - slen, suffix) != 0 ||
        memchr(start, '/', len - slen) != NULL) {
        answer_error(resp, 404, "000", "no such endpoint");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        answer_error(resp, 405, "000", "use POST to refund a payment");
        return;
    }
    refund.payment_psp = strndup(start, len - slen);
    refund.body = json_loadb(req->body, req->body_len, 0, NULL);
    if (refund.payment_psp == NULL) {
        answer_error(resp, 500, "000", "out of memory");
        goto out;
    }
    parse_refund(req, &refund);
    struct pipeline_call call = {
        .gateway = SIM_GATEWAY_ADYEN,
        .op = FAULT_OP_REFUND,
        .payment_key = refund.payment_psp,
        /* Keys are per company account, the body not compared (not
         * documented: the simulator replays the first answer). */
        .fingerprint = "",
        .authorized = authorized(sim->adyen, req->api_key),
        .validate = validate_refund,
        .process = process_refund,
        .arg = &refund,
        .answer_error = wording,
        .key_ttl_ms = sim->adyen->key_ttl_ms,
    };
    pipeline_run(sim, req, &call, resp);
    /* Adyen marks a replay by nothing but the echoed key (the call log
     * records it). */
    resp->replayed = false;
    resp->echo_idempotency_key = true;
out:
    json_decref(refund.body);
    free(refund.payment_psp);
}

/* ---- settlement ---- */

/* A NotificationRequestItem about refund r of payment p. New reference. */
static json_t *notification_item(const struct adyen *a, const struct ledger_payment *p,
                                 const struct ledger_refund *r, const char *event_code,
                                 bool success, const char *reason)
{
    char at[40];
    const char *reference = "";

    for (size_t i = 0; i < r->nmetadata; i++)
        if (strcmp(r->metadata[i].name, "reference") == 0)
            reference = r->metadata[i].value;
    sim_format_time(wall_ms(), at, sizeof(at));
    return json_pack("{s:{s:s, s:I}, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "amount", "currency",
                     p->currency, "value", (json_int_t)r->amount, "eventCode", event_code,
                     "eventDate", at, "merchantAccountCode", a->merchant, "merchantReference",
                     reference, "originalReference", p->payment_key, "pspReference", r->id,
                     "reason", reason ? reason : "", "success", success ? "true" : "false");
}

/* Move refund psp from status want to status to (reason kept for failed)
 * and notify event_code. Lock held: the check and the move are one step. */
static enum adyen_settle_result transition(struct adyen *a, const char *psp,
                                           enum ledger_status want, enum ledger_status to,
                                           const char *event_code, bool success, const char *reason,
                                           int *delivery)
{
    size_t index;
    struct ledger_payment *after = NULL;
    enum adyen_settle_result res = ADYEN_SETTLE_OK;

    if (delivery != NULL)
        *delivery = 0;
    struct ledger_payment *p = ledger_refund_find(a->sim->ledger, psp, &index);
    if (p == NULL || p->gateway != SIM_GATEWAY_ADYEN) {
        res = ADYEN_SETTLE_NOT_FOUND;
        goto out;
    }
    if (p->refunds[index].status != want) {
        res = ADYEN_SETTLE_WRONG_STATE;
        goto out;
    }
    switch (ledger_refund_set_status(a->sim->ledger, psp, to, reason, &after, &index)) {
    case LEDGER_REFUND_OK:
        break;
    case LEDGER_REFUND_NOT_FOUND:
        res = ADYEN_SETTLE_NOT_FOUND;
        goto out;
    default:
        res = ADYEN_SETTLE_NO_MEMORY;
        goto out;
    }
    if (after == NULL) {
        res = ADYEN_SETTLE_NO_MEMORY;
        goto out;
    }
    json_t *item = notification_item(a, after, &after->refunds[index], event_code, success, reason);
    int id = item ? adyen_webhooks_notify(a->webhooks, item, after->payment_key) : 0;
    if (delivery != NULL)
        *delivery = id;
    log_info("adyen refund %s: %s success=%s", psp, event_code, success ? "true" : "false");
out:
    ledger_payment_free(after);
    ledger_payment_free(p);
    return res;
}

enum adyen_settle_result adyen_settle(struct adyen *a, const char *psp, bool success,
                                      const char *reason, int *delivery)
{
    if (!success && reason == NULL)
        reason = ADYEN_REFUSED_REASON;
    pthread_mutex_lock(&a->lock);
    enum adyen_settle_result res = transition(
        a, psp, LEDGER_STATUS_PENDING, success ? LEDGER_STATUS_SUCCEEDED : LEDGER_STATUS_FAILED,
        "REFUND", success, success ? NULL : reason, delivery);
    pthread_mutex_unlock(&a->lock);
    return res;
}

enum adyen_settle_result adyen_refund_event(struct adyen *a, const char *psp,
                                            const char *event_code, const char *reason,
                                            int *delivery)
{
    bool failed = strcmp(event_code, "REFUND_FAILED") == 0;

    pthread_mutex_lock(&a->lock);
    enum adyen_settle_result res = transition(
        a, psp, LEDGER_STATUS_SUCCEEDED, failed ? LEDGER_STATUS_FAILED : LEDGER_STATUS_CANCELED,
        event_code, true, reason, delivery);
    pthread_mutex_unlock(&a->lock);
    return res;
}

/* The settlement thread: settle each pending refund when it is due, to
 * what its payment's refundStatus says. */
static void *settler_main(void *arg)
{
    struct adyen *a = arg;

    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        int64_t now = mono_ms(), next = now + 1000;
        for (size_t i = 0; i < a->npending;) {
            struct pending pd = a->pending[i];
            if (pd.due_ms > now) {
                next = pd.due_ms < next ? pd.due_ms : next;
                i++;
                continue;
            }
            a->pending[i] = a->pending[--a->npending];
            size_t index;
            struct ledger_payment *p = ledger_refund_find(a->sim->ledger, pd.psp, &index);
            bool success = p == NULL || p->refund_status != LEDGER_STATUS_FAILED;
            ledger_payment_free(p);
            /* Already settled by an admin call, or gone: nothing to do. */
            (void)transition(a, pd.psp, LEDGER_STATUS_PENDING,
                             success ? LEDGER_STATUS_SUCCEEDED : LEDGER_STATUS_FAILED, "REFUND",
                             success, success ? NULL : ADYEN_REFUSED_REASON, NULL);
            free(pd.psp);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t wait = next - now;
        until.tv_sec += wait / 1000;
        until.tv_nsec += (wait % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->wake, &a->lock, &until);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static void pending_clear(struct adyen *a)
{
    for (size_t i = 0; i < a->npending; i++)
        free(a->pending[i].psp);
    a->npending = 0;
}

struct adyen *adyen_new(struct sim *sim, const struct adyen_options *o, char *err, size_t errlen)
{
    pthread_condattr_t attr;
    struct adyen *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        snprintf(err, errlen, "could not start Adyen: out of memory");
        return NULL;
    }
    a->sim = sim;
    a->key_ttl_ms = o->key_ttl_ms;
    a->settle_ms = o->settle_ms;
    a->api_key = strdup(o->api_key ? o->api_key : SIM_DEFAULT_ADYEN_API_KEY);
    a->merchant = strdup(o->merchant_account ? o->merchant_account : SIM_DEFAULT_ADYEN_MERCHANT);
    pthread_mutex_init(&a->lock, NULL);
    /* The settler waits on the monotonic clock, like every timer here. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (a->api_key == NULL || a->merchant == NULL) {
        snprintf(err, errlen, "could not start Adyen: out of memory");
        goto fail;
    }
    a->webhooks = adyen_webhooks_new(sim, &o->webhook, err, errlen);
    if (a->webhooks == NULL)
        goto fail;
    if (pthread_create(&a->settler, NULL, settler_main, a) != 0) {
        snprintf(err, errlen, "could not start the Adyen settlement thread");
        goto fail;
    }
    a->settler_started = true;
    return a;
fail:
    adyen_free(a);
    return NULL;
}

void adyen_free(struct adyen *a)
{
    if (a == NULL)
        return;
    if (a->settler_started) {
        pthread_mutex_lock(&a->lock);
        a->stop = true;
        pthread_cond_signal(&a->wake);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->settler, NULL);
    }
    adyen_webhooks_free(a->webhooks);
    pending_clear(a);
    free(a->pending);
    free(a->api_key);
    free(a->merchant);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void adyen_reset(struct adyen *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    pending_clear(a);
    pthread_mutex_unlock(&a->lock);
    adyen_webhooks_reset(a->webhooks);
}

struct adyen_webhooks *adyen_webhooks_of(struct adyen *a)
{
    return a->webhooks;
}
