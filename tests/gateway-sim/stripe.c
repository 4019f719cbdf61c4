/*
 * stripe: Stripe refunds. See stripe.h.
 */
#include "stripe.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "pipeline.h"

/* Stripe's documented limits on metadata. */
#define STRIPE_METADATA_KEYS_MAX  50
#define STRIPE_METADATA_KEY_MAX   40
#define STRIPE_METADATA_VALUE_MAX 500

/* A refund request as parsed before the pipeline runs. The strings point
 * into the decoded parameters and live as long as them. */
struct stripe_refund {
    const char *payment_intent;   /* NULL when missing */
    int64_t amount;               /* < 0: the whole remaining amount */
    const char *reason;           /* NULL when absent */
    struct ledger_meta *metadata; /* owned (stripe_refund_clear()), in body order */
    size_t nmetadata;
    /* The validation error to answer (nothing stored), invalid = false when
     * the parameters are fine. */
    bool invalid;
    const char *error_code; /* NULL: none */
    char error_message[512];
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode len bytes of s ('+' is a space, %XX a byte) into a new string. NULL
 * on a malformed escape, an escaped NUL or out of memory. */
static char *form_unescape(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

void stripe_params_free(struct stripe_param *params, size_t nparams)
{
    for (size_t i = 0; i < nparams; i++) {
        free(params[i].name);
        free(params[i].value);
    }
    free(params);
}

bool stripe_form_decode(const char *body, size_t len, struct stripe_param **params, size_t *nparams)
{
    struct stripe_param *list = NULL;
    size_t n = 0, cap = 0;

    *params = NULL;
    *nparams = 0;
    for (size_t pos = 0; pos < len;) {
        const char *field = body + pos;
        const char *amp = memchr(field, '&', len - pos);
        size_t flen = amp ? (size_t)(amp - field) : len - pos;
        pos += flen + 1;
        if (flen == 0)
            continue; /* "a=1&&b=2" */
        const char *eq = memchr(field, '=', flen);
        size_t nlen = eq ? (size_t)(eq - field) : flen;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct stripe_param *p = realloc(list, ncap * sizeof(*p));
            if (p == NULL)
                goto fail;
            list = p;
            cap = ncap;
        }
        list[n].name = form_unescape(field, nlen);
        list[n].value = eq ? form_unescape(eq + 1, flen - nlen - 1) : strdup("");
        n++;
        if (list[n - 1].name == NULL || list[n - 1].value == NULL)
            goto fail;
    }
    *params = list;
    *nparams = n;
    return true;
fail:
    stripe_params_free(list, n);
    return false;
}

static const char *param(const struct stripe_param *params, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(params[i].name, name) == 0)
            return params[i].value;
    return NULL;
}

static int cmp_param(const void *a, const void *b)
{
    const struct stripe_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* The parameters an Idempotency-Key is bound to: method, path and the
 * decoded parameters in sorted order (so their order in the body does not
 * matter), or the raw body when it does not decode. Sorts params. */
static char *fingerprint(const struct sim_request *req, struct stripe_param *params, size_t n,
                         bool form_ok)
{
    size_t len = strlen(req->method) + strlen(req->path) + 3;
    if (form_ok) {
        qsort(params, n, sizeof(*params), cmp_param);
        for (size_t i = 0; i < n; i++)
            len += strlen(params[i].name) + strlen(params[i].value) + 2;
    } else {
        len += req->body_len;
    }
    char *fp = malloc(len);
    if (fp == NULL)
        return NULL;
    size_t o = (size_t)snprintf(fp, len, "%s %s\n", req->method, req->path);
    if (form_ok) {
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(fp + o, len - o, "%s=%s\n", params[i].name, params[i].value);
    } else {
        for (size_t i = 0; i < req->body_len; i++)
            fp[o++] = req->body[i] ? req->body[i] : '\x01';
        fp[o] = '\0';
    }
    return fp;
}

static void answer_error(struct sim_response *resp, int status, const char *code,
                         const char *message)
{
    sim_respond_error(resp, SIM_GATEWAY_STRIPE, status, "invalid_request_error", code, message);
}

/* Parse a Stripe integer parameter: decimal digits only, > 0. */
static bool parse_amount(const char *s, int64_t *out)
{
    int64_t v = 0;

    if (s == NULL || *s == '\0' || strlen(s) > 15)
        return false;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v <= 0)
        return false;
    *out = v;
    return true;
}

bool stripe_authorized(const struct sim *sim, const char *authorization)
{
    size_t slen = strlen(sim->stripe_secret);

    return authorization != NULL && strncmp(authorization, "Bearer ", 7) == 0 &&
           strncmp(authorization + 7, sim->stripe_secret, slen) == 0 &&
           authorization[7 + slen] == '\0';
}

void stripe_lower_currency(const char *currency, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s", currency);
    for (char *c = buf; *c; c++)
        *c = (char)tolower((unsigned char)*c);
}

void stripe_charge_id(const char *payment_intent, char *buf, size_t buflen)
{
    if (strncmp(payment_intent, "pi_", 3) == 0)
        payment_intent += 3;
    snprintf(buf, buflen, "ch_%s", payment_intent);
}

json_t *stripe_refund_object(const struct ledger_payment *p, const struct ledger_refund *r)
{
    char currency[16], charge[300];
    json_t *metadata = json_object();

    stripe_lower_currency(p->currency, currency, sizeof(currency));
    stripe_charge_id(p->payment_key, charge, sizeof(charge));
    for (size_t i = 0; i < r->nmetadata; i++)
        json_object_set_new(metadata, r->metadata[i].name, json_string(r->metadata[i].value));
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:o}", "id", r->id,
                     "object", "refund", "amount", (json_int_t)r->amount, "currency", currency,
                     "payment_intent", p->payment_key, "charge", charge, "status",
                     ledger_status_name(r->status), "failure_reason",
                     r->failure_reason ? json_string(r->failure_reason) : json_null(), "metadata",
                     metadata, "created", (json_int_t)(r->at_ms / 1000), "reason",
                     r->reason ? json_string(r->reason) : json_null());
}

/* Record a validation error in r. */
__attribute__((format(printf, 3, 4))) static void refuse(struct stripe_refund *r, const char *code,
                                                         const char *fmt, ...)
{
    va_list ap;

    r->invalid = true;
    r->error_code = code;
    va_start(ap, fmt);
    vsnprintf(r->error_message, sizeof(r->error_message), fmt, ap);
    va_end(ap);
}

static void stripe_refund_clear(struct stripe_refund *r)
{
    for (size_t i = 0; i < r->nmetadata; i++) {
        free(r->metadata[i].name);
        free(r->metadata[i].value);
    }
    free(r->metadata);
    r->metadata = NULL;
    r->nmetadata = 0;
}

/* Set metadata name to value in r (a later value replaces an earlier one;
 * an empty value unsets the name, as Stripe does). False when out of memory. */
static bool metadata_set(struct stripe_refund *r, const char *name, size_t namelen,
                         const char *value)
{
    size_t i;

    for (i = 0; i < r->nmetadata; i++)
        if (strlen(r->metadata[i].name) == namelen && !memcmp(r->metadata[i].name, name, namelen))
            break;
    if (value[0] == '\0') {
        if (i < r->nmetadata) {
            free(r->metadata[i].name);
            free(r->metadata[i].value);
            memmove(&r->metadata[i], &r->metadata[i + 1],
                    (r->nmetadata - i - 1) * sizeof(*r->metadata));
            r->nmetadata--;
        }
        return true;
    }
    char *v = strdup(value);
    if (v == NULL)
        return false;
    if (i < r->nmetadata) {
        free(r->metadata[i].value);
        r->metadata[i].value = v;
        return true;
    }
    struct ledger_meta *m = realloc(r->metadata, (r->nmetadata + 1) * sizeof(*m));
    char *n = strndup(name, namelen);
    if (m != NULL)
        r->metadata = m;
    if (m == NULL || n == NULL) {
        free(v);
        free(n);
        return false;
    }
    r->metadata[r->nmetadata].name = n;
    r->metadata[r->nmetadata].value = v;
    r->nmetadata++;
    return true;
}

/* Pick out the metadata[NAME]=VALUE parameters into r, with Stripe's limits
 * (50 keys, names up to 40 characters without brackets, values up to 500).
 * False with the validation error recorded in r. */
static bool parse_metadata(const struct stripe_param *params, size_t n, struct stripe_refund *r)
{
    for (size_t i = 0; i < n; i++) {
        const char *pname = params[i].name, *value = params[i].value;
        if (strcmp(pname, "metadata") == 0) {
            /* "metadata=" unsets everything: there is nothing yet. */
            if (value[0] != '\0') {
                refuse(r, NULL, "Invalid object: metadata must be set as metadata[NAME]=VALUE");
                return false;
            }
            continue;
        }
        if (strncmp(pname, "metadata[", 9) != 0)
            continue;
        const char *name = pname + 9;
        size_t namelen = strlen(name);
        if (namelen < 2 || name[namelen - 1] != ']' || memchr(name, '[', namelen - 1) != NULL ||
            memchr(name, ']', namelen - 1) != NULL) {
            refuse(r, NULL, "Invalid metadata key: %.64s", pname);
            return false;
        }
        namelen--;
        if (namelen > STRIPE_METADATA_KEY_MAX) {
            refuse(r, NULL,
                   "Metadata keys can have up to %d characters, but you passed in a key that is "
                   "%zu characters long.",
                   STRIPE_METADATA_KEY_MAX, namelen);
            return false;
        }
        if (strlen(value) > STRIPE_METADATA_VALUE_MAX) {
            refuse(r, NULL,
                   "Metadata values can have up to %d characters, but you passed in a value "
                   "that is %zu characters long.",
                   STRIPE_METADATA_VALUE_MAX, strlen(value));
            return false;
        }
        if (!metadata_set(r, name, namelen, value)) {
            refuse(r, NULL, "out of memory");
            return false;
        }
        if (r->nmetadata > STRIPE_METADATA_KEYS_MAX) {
            refuse(r, NULL, "You can only specify up to %d metadata keys.",
                   STRIPE_METADATA_KEYS_MAX);
            return false;
        }
    }
    return true;
}

/* Check and pick out the parameters of a refund from the decoded form
 * (form_ok false: the body did not decode). */
static void parse_refund(const struct stripe_param *params, size_t n, bool form_ok,
                         struct stripe_refund *r)
{
    memset(r, 0, sizeof(*r));
    r->amount = -1;
    if (!form_ok) {
        refuse(r, NULL, "Invalid request body: expected form encoding");
        return;
    }
    r->payment_intent = param(params, n, "payment_intent");
    r->reason = param(params, n, "reason");
    const char *amount = param(params, n, "amount");
    if (r->payment_intent == NULL || r->payment_intent[0] == '\0') {
        refuse(r, "parameter_missing", "Missing required param: payment_intent.");
        return;
    }
    if (amount != NULL && !parse_amount(amount, &r->amount)) {
        refuse(r, "parameter_invalid_integer", "Invalid integer: %.64s", amount);
        return;
    }
    parse_metadata(params, n, r);
}

static bool validate_refund(struct sim *sim, const struct sim_request *req, void *arg,
                            struct sim_response *resp)
{
    const struct stripe_refund *r = arg;

    (void)sim;
    (void)req;
    if (!r->invalid)
        return true;
    answer_error(resp, 400, r->error_code, r->error_message);
    return false;
}

static void process_refund(struct sim *sim, const struct sim_request *req, void *arg,
                           struct sim_response *resp)
{
    const struct stripe_refund *r = arg;
    char msg[512];
    int64_t amount = r->amount;
    struct ledger_payment *after = NULL;

    struct ledger_refund_spec spec = {
        .amount = amount,
        .reason = r->reason,
        .idempotency_key = req->idempotency_key,
        .metadata = r->metadata,
        .nmetadata = r->nmetadata,
    };
    enum ledger_refund_result res =
        ledger_refund(sim->ledger, SIM_GATEWAY_STRIPE, r->payment_intent, &spec, &after);
    switch (res) {
    case LEDGER_REFUND_OK:
        if (after == NULL || after->nrefunds == 0) {
            sim_respond_error(resp, SIM_GATEWAY_STRIPE, 500, "api_error", NULL, "out of memory");
            break;
        }
        sim_respond_json(resp, 200,
                         stripe_refund_object(after, &after->refunds[after->nrefunds - 1]));
        break;
    case LEDGER_REFUND_NOT_FOUND:
        snprintf(msg, sizeof(msg), "No such payment_intent: '%.200s'", r->payment_intent);
        answer_error(resp, 404, "resource_missing", msg);
        break;
    case LEDGER_REFUND_NOTHING_LEFT:
        snprintf(msg, sizeof(msg),
                 "The charge of payment_intent '%.200s' has already been refunded.",
                 r->payment_intent);
        answer_error(resp, 400, "charge_already_refunded", msg);
        break;
    case LEDGER_REFUND_TOO_LARGE:
        snprintf(msg, sizeof(msg),
                 "Refund amount (%lld) is greater than unrefunded amount on charge (%lld)",
                 (long long)amount, after ? (long long)(after->amount - after->refunded) : 0LL);
        answer_error(resp, 400, "amount_too_large", msg);
        break;
    case LEDGER_REFUND_NO_MEMORY:
    case LEDGER_REFUND_BALANCE_DIFFERS: /* Stripe has no balance guard: never asked */
        sim_respond_error(resp, SIM_GATEWAY_STRIPE, 500, "api_error", NULL, "out of memory");
        break;
    }
    ledger_payment_free(after);
}

void stripe_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    struct stripe_param *params = NULL;
    size_t n = 0;
    char msg[300];

    if (strcmp(req->method, "GET") == 0) {
        stripe_inquiry_handle(sim, req, resp);
        return;
    }
    if (strcmp(req->path, "/v1/refunds") != 0 || strcmp(req->method, "POST") != 0) {
        snprintf(msg, sizeof(msg), "Unrecognized request URL (%.16s: %.200s)", req->method,
                 req->path);
        answer_error(resp, 404, NULL, msg);
        return;
    }
    bool form_ok = stripe_form_decode(req->body, req->body_len, &params, &n);
    /* Pointers into params: valid until the end of this function. */
    struct stripe_refund refund;
    parse_refund(params, n, form_ok, &refund);
    char *fp = fingerprint(req, params, n, form_ok);
    if (fp == NULL) {
        sim_respond_error(resp, SIM_GATEWAY_STRIPE, 500, "api_error", NULL, "out of memory");
        goto out;
    }

    struct pipeline_call call = {
        .gateway = SIM_GATEWAY_STRIPE,
        .op = FAULT_OP_REFUND,
        .payment_key = refund.payment_intent,
        .fingerprint = fp,
        .authorized = stripe_authorized(sim, req->authorization),
        .validate = validate_refund,
        .process = process_refund,
        .arg = &refund,
    };
    pipeline_run(sim, req, &call, resp);
out:
    free(fp);
    stripe_refund_clear(&refund);
    stripe_params_free(params, n);
}
