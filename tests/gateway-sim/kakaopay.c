/*
 * kakaopay: KakaoPay cancel and order inquiry. See kakaopay.h.
 *
 * A KakaoPay payment is a ledger payment of SIM_GATEWAY_KAKAOPAY: its
 * paymentKey is the tid, its orderId the partner_order_id, and each refund
 * is one CANCEL action: the refund id is its aid, the refund reason the
 * payload the cancel sent, and the metadata "cancel_vat_amount" its VAT.
 */
#include "kakaopay.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faults.h"
#include "ledger.h"
#include "ledger_index.h"
#include "pipeline.h"

/* The error codes the simulator answers. -2 and -401 are Kakao's common
 * codes (bad parameters, bad key); KakaoPay documents no codes for the
 * other cases, so these are the simulator's own choice
 * (docs/design/issue9-gateways-research.md §2.5). */
#define KP_BAD_PARAMETERS      "-2"
#define KP_UNAUTHORIZED        "-401"
#define KP_INTERNAL            "-1"
#define KP_NO_SUCH_TID         "-721"
#define KP_ALREADY_CANCELLED   "-708"
#define KP_AMOUNT_TOO_LARGE    "-797"
#define KP_AVAILABLE_DIFFERS   "-798"
#define KP_APPROVAL_FAILURE    "-780"
#define KP_APPROVAL_FAILURE_MS "approval failure!"

/* The payload of a cancel: "해당 요청에 대해 저장하고 싶은 값, 최대 200자". */
#define KP_PAYLOAD_MAX_CHARS 200

/* KakaoPay answers its times in Korean time, without a zone:
 * "2023-07-15T21:18:22". */
#define KST_OFFSET_MS (9LL * 3600 * 1000)

/* The metadata name under which a cancel's VAT is kept in the ledger. */
#define META_VAT "cancel_vat_amount"

enum kp_guard { KP_GUARD_IGNORED = 0, KP_GUARD_ENFORCED };
enum kp_errors { KP_ERRORS_NEW = 0, KP_ERRORS_LEGACY };

static const char *const guard_names[] = {
    [KP_GUARD_IGNORED] = "ignored", [KP_GUARD_ENFORCED] = "enforced"};
static const char *const error_format_names[] = {
    [KP_ERRORS_NEW] = "new", [KP_ERRORS_LEGACY] = "legacy"};

struct kakaopay_settings {
    char *secret; /* owned; secret: never logged or shown */
    char *cid;    /* owned */
    /* Changed by the admin API while calls run, hence atomic. */
    atomic_int guard;        /* enum kp_guard */
    atomic_int error_format; /* enum kp_errors */
    int start_guard;         /* what /_sim/reset goes back to */
    int start_error_format;
};

/* ---- settings ---- */

struct kakaopay_settings *kakaopay_settings_new(void)
{
    struct kakaopay_settings *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->secret = strdup(SIM_DEFAULT_KAKAOPAY_SECRET);
    s->cid = strdup(SIM_DEFAULT_KAKAOPAY_CID);
    atomic_init(&s->guard, KP_GUARD_IGNORED);
    atomic_init(&s->error_format, KP_ERRORS_NEW);
    if (s->secret == NULL || s->cid == NULL) {
        kakaopay_settings_free(s);
        return NULL;
    }
    return s;
}

void kakaopay_settings_free(struct kakaopay_settings *settings)
{
    if (settings == NULL)
        return;
    free(settings->secret);
    free(settings->cid);
    free(settings);
}

/* The index of name in names (n of them), or -1. */
static int name_index(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; name != NULL && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

#define GUARD_INDEX(name)                                                                          \
    name_index(guard_names, sizeof(guard_names) / sizeof(guard_names[0]), name)
#define ERROR_FORMAT_INDEX(name)                                                                   \
    name_index(error_format_names, sizeof(error_format_names) / sizeof(error_format_names[0]), name)

/* Replace *field with a copy of value (when not NULL and not empty). */
static bool replace_string(char **field, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return true;
    char *copy = strdup(value);
    if (copy == NULL)
        return false;
    free(*field);
    *field = copy;
    return true;
}

bool kakaopay_configure(struct kakaopay_settings *settings, const char *secret, const char *cid,
                        const char *guard, const char *error_format, char *err, size_t errlen)
{
    int g = guard ? GUARD_INDEX(guard) : KP_GUARD_IGNORED;
    int e = error_format ? ERROR_FORMAT_INDEX(error_format) : KP_ERRORS_NEW;

    if (g < 0) {
        snprintf(err, errlen, "--kakaopay-guard: expected \"enforced\" or \"ignored\", got \"%s\"",
                 guard);
        return false;
    }
    if (e < 0) {
        snprintf(err, errlen, "--kakaopay-error-format: expected \"new\" or \"legacy\", got \"%s\"",
                 error_format);
        return false;
    }
    if (!replace_string(&settings->secret, secret) || !replace_string(&settings->cid, cid)) {
        snprintf(err, errlen, "could not configure KakaoPay: out of memory");
        return false;
    }
    settings->start_guard = g;
    settings->start_error_format = e;
    kakaopay_settings_reset(settings);
    return true;
}

void kakaopay_settings_reset(struct kakaopay_settings *settings)
{
    atomic_store(&settings->guard, settings->start_guard);
    atomic_store(&settings->error_format, settings->start_error_format);
}

json_t *kakaopay_settings_json(const struct kakaopay_settings *settings)
{
    return json_pack("{s:s, s:s, s:s}", "cid", settings->cid, "guard",
                     guard_names[atomic_load(&settings->guard)], "errorFormat",
                     error_format_names[atomic_load(&settings->error_format)]);
}

bool kakaopay_settings_update_json(struct kakaopay_settings *settings, const json_t *obj, char *err,
                                   size_t errlen)
{
    const json_t *jguard = json_object_get(obj, "guard");
    const json_t *jformat = json_object_get(obj, "errorFormat");
    int g = jguard ? GUARD_INDEX(json_string_value(jguard)) : atomic_load(&settings->guard);
    int e = jformat ? ERROR_FORMAT_INDEX(json_string_value(jformat))
                    : atomic_load(&settings->error_format);

    if (g < 0) {
        snprintf(err, errlen, "guard must be \"enforced\" or \"ignored\"");
        return false;
    }
    if (e < 0) {
        snprintf(err, errlen, "errorFormat must be \"new\" or \"legacy\"");
        return false;
    }
    atomic_store(&settings->guard, g);
    atomic_store(&settings->error_format, e);
    return true;
}

/* ---- answers ---- */

/* Set resp to a KakaoPay error: {"error_code","error_message","extras"} (the
 * new API) or {"code","msg","extras"} (legacy), as the settings say. code is
 * sent as a number when it is one ("-780"), else as given; extras (JSON text
 * of an object, may be NULL) is left out when NULL. */
static void answer_error(const struct sim *sim, struct sim_response *resp, int status,
                         const char *code, const char *message, const char *extras)
{
    bool legacy = atomic_load(&sim->kakaopay->error_format) == KP_ERRORS_LEGACY;
    char *end;
    long long number = strtoll(code, &end, 10);
    json_t *jcode = end != code && *end == '\0' ? json_integer(number) : json_string(code);
    json_t *obj = json_pack("{s:o, s:s}", legacy ? "code" : "error_code", jcode,
                            legacy ? "msg" : "error_message", message);

    if (obj != NULL && extras != NULL)
        json_object_set_new(obj, "extras", json_loads(extras, 0, NULL));
    sim_respond_json(resp, status, obj);
}

/* How each fault type answers when the fault gives no status, code or
 * message. 429, 503 and 504 are what a front end would answer (KakaoPay
 * documents no rate limit); the codes are Kakao's common ones for the case:
 * -10 quota, -9798 maintenance, -603 internal timeout, -1 internal error.
 * -780 with USER_LOCKED is KakaoPay's own sample: "a transaction is in
 * progress, retry shortly", the nearest it has to Toss's and Stripe's 409. */
struct kp_fault_answer {
    int status;
    const char *code;
    const char *message;
    const char *extras;
};

static const struct kp_fault_answer fault_answers[] = {
    [FAULT_ERROR_5XX] = {503, "-9798", "the service is temporarily unavailable", NULL},
    [FAULT_PROVIDER_ERROR] = {400, KP_INTERNAL, "internal error: retry later", NULL},
    [FAULT_RATE_LIMITED] = {429, "-10", "too many requests: retry later", NULL},
    [FAULT_HANG] = {504, "-603", "the request timed out", NULL},
    [FAULT_APPLY_THEN_HANG] = {504, "-603", "the request timed out", NULL},
    [FAULT_PERMANENT] = {400, KP_APPROVAL_FAILURE, KP_APPROVAL_FAILURE_MS, NULL},
    [FAULT_BAD_CREDENTIALS] = {401, KP_UNAUTHORIZED, "invalid secret key", NULL},
    [FAULT_IN_PROGRESS] = {400, KP_APPROVAL_FAILURE, KP_APPROVAL_FAILURE_MS,
                           "{\"method_result_code\":\"USER_LOCKED\",\"method_result_message\":"
                           "\"진행중인 거래가 있습니다. 잠시 후 다시 시도해 주세요.\"}"},
};

/* pipeline_error_fn: the answer of fault f, or the 401 when f is NULL. */
static void answer_fault(struct sim *sim, const struct fault *f, void *arg,
                         struct sim_response *resp)
{
    static const struct kp_fault_answer fallback = {500, KP_INTERNAL, "internal error", NULL};
    const struct kp_fault_answer *a = &fallback;

    (void)arg;
    if (f == NULL) {
        answer_error(sim, resp, 401, KP_UNAUTHORIZED, "invalid secret key", NULL);
        return;
    }
    if ((size_t)f->type < sizeof(fault_answers) / sizeof(fault_answers[0]) &&
        fault_answers[f->type].code != NULL)
        a = &fault_answers[f->type];
    int status = f->type == FAULT_BAD_CREDENTIALS ? 401 : f->status ? f->status : a->status;
    answer_error(sim, resp, status, f->code ? f->code : a->code,
                 f->message ? f->message : a->message, f->extras ? f->extras : a->extras);
}

/* ms since the epoch as KakaoPay writes times: Korean time, no zone. */
static void format_kst(int64_t ms, char *buf, size_t buflen)
{
    time_t secs = (time_t)((ms + KST_OFFSET_MS) / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
}

/* KakaoPay's default VAT: (amount - tax free) / 11, rounded
 * ("소숫점이하 반올림"). Simulated payments have no tax-free part. */
static int64_t default_vat(int64_t amount)
{
    return (amount + 5) / 11;
}

/* The VAT of cancel r: what the cancel sent, else the default. */
static int64_t cancel_vat(const struct ledger_refund *r)
{
    for (size_t i = 0; i < r->nmetadata; i++)
        if (strcmp(r->metadata[i].name, META_VAT) == 0)
            return strtoll(r->metadata[i].value, NULL, 10);
    return default_vat(r->amount);
}

/* An amount object: {"total","tax_free","vat","point","discount",
 * "green_deposit"}. New reference. */
static json_t *amount_object(int64_t total, int64_t vat)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)total, "tax_free",
                     (json_int_t)0, "vat", (json_int_t)vat, "point", (json_int_t)0, "discount",
                     (json_int_t)0, "green_deposit", (json_int_t)0);
}

/* The aid of payment p's approval (its PAYMENT action): stable for a tid. */
static void payment_aid(const struct ledger_payment *p, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "A000%016" PRIx64, ledger_index_hash('K', p->payment_key));
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* The members of payment p that the cancel answer and the order inquiry
 * share. New reference. */
static json_t *payment_object(const struct sim *sim, const struct ledger_payment *p)
{
    char created[32], canceled[32];
    int64_t canceled_vat = 0;
    const char *status = "SUCCESS_PAYMENT";

    /* Cancels made through the API or planted carry their VAT; a preset
     * "refunded" has none: the default VAT of what is left over. */
    int64_t preset = p->refunded;
    for (size_t i = 0; i < p->nrefunds; i++) {
        preset -= p->refunds[i].amount;
        canceled_vat += cancel_vat(&p->refunds[i]);
    }
    canceled_vat += default_vat(preset);
    if (p->refunded >= p->amount)
        status = "CANCEL_PAYMENT";
    else if (p->refunded > 0)
        status = "PART_CANCEL_PAYMENT";
    format_kst(p->created_ms, created, sizeof(created));
    if (p->nrefunds > 0)
        format_kst(p->refunds[p->nrefunds - 1].at_ms, canceled, sizeof(canceled));
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:i, s:s, s:s, s:o}", "tid",
        p->payment_key, "cid", sim->kakaopay->cid, "status", status, "partner_order_id",
        p->order_id, "partner_user_id", "gateway-sim", "payment_method_type", "MONEY", "amount",
        amount_object(p->amount, default_vat(p->amount)), "canceled_amount",
        amount_object(p->refunded, canceled_vat), "cancel_available_amount",
        amount_object(p->amount - p->refunded, default_vat(p->amount) - canceled_vat), "item_name",
        "gateway-sim item", "item_code", "", "quantity", 1, "created_at", created, "approved_at",
        created, "canceled_at", p->nrefunds > 0 ? json_string(canceled) : json_null());
}

/* ---- requests ---- */

/* A parsed request body; the strings point into body. */
struct kp_request {
    json_t *body; /* owned; NULL when not JSON */
    const char *tid;
};

/* Read member name of obj into *out: a JSON integer, or a string of
 * decimal digits (KakaoPay's own samples send "2200"). Returns 0 when
 * absent (or null), 1 when read, -1 when neither a non-negative integer nor
 * such a string. */
static int int_member(const json_t *obj, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out >= 0 ? 1 : -1;
    }
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0' || strlen(s) > 15 || strspn(s, "0123456789") != strlen(s))
        return -1;
    *out = strtoll(s, NULL, 10);
    return 1;
}

/* The number of UTF-8 characters of s. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

/* Check the members both endpoints take: a JSON object with our cid and a
 * tid. False with resp filled otherwise. */
static bool check_common(const struct sim *sim, const struct kp_request *r,
                         struct sim_response *resp)
{
    if (!json_is_object(r->body)) {
        answer_error(sim, resp, 400, KP_BAD_PARAMETERS, "the request body must be a JSON object",
                     NULL);
        return false;
    }
    const char *cid = json_string_value(json_object_get(r->body, "cid"));
    if (cid == NULL || cid[0] == '\0') {
        answer_error(sim, resp, 400, KP_BAD_PARAMETERS, "cid is required", NULL);
        return false;
    }
    if (strcmp(cid, sim->kakaopay->cid) != 0) {
        answer_error(sim, resp, 400, KP_BAD_PARAMETERS, "cid is not this merchant's", NULL);
        return false;
    }
    if (r->tid == NULL || r->tid[0] == '\0') {
        answer_error(sim, resp, 400, KP_BAD_PARAMETERS, "tid is required", NULL);
        return false;
    }
    return true;
}

/* The cancel's answer: the payment after it, and this cancel (the last
 * refund of after). New reference. */
static json_t *cancel_object(const struct sim *sim, const struct ledger_payment *after)
{
    const struct ledger_refund *r = &after->refunds[after->nrefunds - 1];
    json_t *obj = payment_object(sim, after);

    if (obj == NULL)
        return NULL;
    json_object_set_new(obj, "aid", json_string(r->id));
    json_object_set_new(obj, "approved_cancel_amount", amount_object(r->amount, cancel_vat(r)));
    json_object_set_new(obj, "payload", str_or_null(r->reason));
    return obj;
}

static void process_cancel(struct sim *sim, const struct sim_request *req, void *arg,
                           struct sim_response *resp)
{
    const struct kp_request *r = arg;
    int64_t amount = 0, tax_free = 0, vat = 0, available = 0;
    struct ledger_payment *after = NULL;
    char vat_text[32];

    (void)req;
    if (!check_common(sim, r, resp))
        return;
    int has_vat = int_member(r->body, "cancel_vat_amount", &vat);
    int has_available = int_member(r->body, "cancel_available_amount", &available);
    const json_t *jpayload = json_object_get(r->body, "payload");
    const char *payload = json_string_value(jpayload);
    const char *problem = NULL;
    if (int_member(r->body, "cancel_amount", &amount) != 1 || amount == 0)
        problem = "cancel_amount is required: a positive integer";
    else if (int_member(r->body, "cancel_tax_free_amount", &tax_free) != 1)
        problem = "cancel_tax_free_amount is required: an integer of 0 or more";
    else if (tax_free != 0)
        /* Simulated payments are all taxable: nothing tax-free to cancel. */
        problem = "cancel_tax_free_amount exceeds the payment's tax-free amount (0)";
    else if (has_vat < 0 || vat > amount)
        problem = "cancel_vat_amount must be an integer from 0 to cancel_amount";
    else if (has_available < 0)
        problem = "cancel_available_amount must be an integer of 0 or more";
    else if (jpayload != NULL && !json_is_null(jpayload) &&
             (payload == NULL || utf8_chars(payload) > KP_PAYLOAD_MAX_CHARS))
        problem = "payload must be a string of at most 200 characters";
    if (problem != NULL) {
        answer_error(sim, resp, 400, KP_BAD_PARAMETERS, problem, NULL);
        return;
    }
    snprintf(vat_text, sizeof(vat_text), "%" PRId64, has_vat == 1 ? vat : default_vat(amount));
    struct ledger_meta meta = {.name = META_VAT, .value = vat_text};
    /* "취소 가능 금액(결제 취소 요청 금액 포함)": the balance before this
     * cancel. Whether KakaoPay refuses a cancel when it differs is not
     * documented: enforced only when the setting says so. */
    struct ledger_refund_spec spec = {
        .amount = amount,
        .reason = payload,
        .metadata = &meta,
        .nmetadata = 1,
        .has_expected_balance =
            has_available == 1 && atomic_load(&sim->kakaopay->guard) == KP_GUARD_ENFORCED,
        .expected_balance = available,
    };
    switch (ledger_refund(sim->ledger, SIM_GATEWAY_KAKAOPAY, r->tid, &spec, &after)) {
    case LEDGER_REFUND_OK:
        if (after != NULL)
            sim_respond_json(resp, 200, cancel_object(sim, after));
        else
            answer_error(sim, resp, 500, KP_INTERNAL, "out of memory", NULL);
        break;
    case LEDGER_REFUND_NOT_FOUND:
        answer_error(sim, resp, 400, KP_NO_SUCH_TID, "no payment with this tid", NULL);
        break;
    case LEDGER_REFUND_NOTHING_LEFT:
        answer_error(sim, resp, 400, KP_ALREADY_CANCELLED, "the payment is already cancelled",
                     NULL);
        break;
    case LEDGER_REFUND_TOO_LARGE:
        answer_error(sim, resp, 400, KP_AMOUNT_TOO_LARGE,
                     "cancel_amount exceeds the cancel available amount", NULL);
        break;
    case LEDGER_REFUND_BALANCE_DIFFERS:
        answer_error(sim, resp, 400, KP_AVAILABLE_DIFFERS,
                     "cancel_available_amount does not match the cancel available amount", NULL);
        break;
    case LEDGER_REFUND_NO_MEMORY:
        answer_error(sim, resp, 500, KP_INTERNAL, "out of memory", NULL);
        break;
    }
    ledger_payment_free(after);
}

/* The order inquiry's answer: the payment with one payment_action_details
 * entry for its approval and one per cancel, oldest first. New reference. */
static json_t *order_object(const struct sim *sim, const struct ledger_payment *p)
{
    char aid[32], at[32];
    json_t *obj = payment_object(sim, p);
    json_t *actions = json_array();

    payment_aid(p, aid, sizeof(aid));
    format_kst(p->created_ms, at, sizeof(at));
    json_array_append_new(
        actions, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:o}", "aid", aid, "approved_at",
                           at, "amount", (json_int_t)p->amount, "point_amount", (json_int_t)0,
                           "discount_amount", (json_int_t)0, "green_deposit", (json_int_t)0,
                           "payment_action_type", "PAYMENT", "payload", json_null()));
    for (size_t i = 0; i < p->nrefunds; i++) {
        const struct ledger_refund *r = &p->refunds[i];
        format_kst(r->at_ms, at, sizeof(at));
        json_array_append_new(
            actions,
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:o}", "aid", r->id, "approved_at", at,
                      "amount", (json_int_t)r->amount, "point_amount", (json_int_t)0,
                      "discount_amount", (json_int_t)0, "green_deposit", (json_int_t)0,
                      "payment_action_type", "CANCEL", "payload", str_or_null(r->reason)));
    }
    if (obj != NULL)
        json_object_set_new(obj, "payment_action_details", actions);
    else
        json_decref(actions);
    return obj;
}

static void process_order(struct sim *sim, const struct sim_request *req, void *arg,
                          struct sim_response *resp)
{
    const struct kp_request *r = arg;

    (void)req;
    if (!check_common(sim, r, resp))
        return;
    struct ledger_payment *p = ledger_payment_get(sim->ledger, SIM_GATEWAY_KAKAOPAY, r->tid);
    if (p == NULL) {
        answer_error(sim, resp, 400, KP_NO_SUCH_TID, "no payment with this tid", NULL);
        return;
    }
    sim_respond_json(resp, 200, order_object(sim, p));
    ledger_payment_free(p);
}

/* True if authorization is "SECRET_KEY <the KakaoPay secret>". */
static bool authorized(const struct sim *sim, const char *authorization)
{
    static const char scheme[] = "SECRET_KEY ";
    size_t n = sizeof(scheme) - 1;

    return authorization != NULL && strncmp(authorization, scheme, n) == 0 &&
           strcmp(authorization + n, sim->kakaopay->secret) == 0;
}

void kakaopay_handle(struct sim *sim, const struct sim_request *req, struct sim_response *resp)
{
    const char *what = req->path + strlen(KAKAOPAY_PREFIX);
    bool cancel = strcmp(what, "cancel") == 0;

    if (!cancel && strcmp(what, "order") != 0) {
        answer_error(sim, resp, 404, KP_BAD_PARAMETERS, "no such endpoint", NULL);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        answer_error(sim, resp, 405, KP_BAD_PARAMETERS, "use POST", NULL);
        return;
    }
    struct kp_request r = {.body = json_loadb(req->body, req->body_len, 0, NULL)};
    if (json_is_object(r.body))
        r.tid = json_string_value(json_object_get(r.body, "tid"));
    /* No fingerprint: KakaoPay has no idempotency, an Idempotency-Key
     * header changes nothing. */
    struct pipeline_call call = {
        .gateway = SIM_GATEWAY_KAKAOPAY,
        .op = cancel ? FAULT_OP_REFUND : FAULT_OP_INQUIRY,
        .payment_key = r.tid,
        .authorized = authorized(sim, req->authorization),
        .process = cancel ? process_cancel : process_order,
        .answer_error = answer_fault,
        .arg = &r,
    };
    pipeline_run(sim, req, &call, resp);
    json_decref(r.body);
}
