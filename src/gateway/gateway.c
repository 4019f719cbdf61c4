/*
 * gateway: refund calls, inquiries and the classification of their answers.
 * See gateway.h; each kind's wire format is its driver (gateway_driver.h,
 * gateway_<kind>.c), the call specs' helpers are in gateway_spec.c.
 */
#include "gateway/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bounds.h"
#include "base/log.h"
#include "base/redact.h"
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

/* The most HTTP calls one inquiry makes (Stripe: 2). */
#define GATEWAY_MAX_INQUIRY_CALLS 3

struct gateway_client {
    const struct config_gateway *cfg; /* borrowed */
    const struct gateway_driver *drv; /* the kind's, static */
    struct http_client *http;         /* borrowed */
    char *base_url;                   /* cfg->base_url without trailing slashes */
    char *auth_header;                /* "Authorization: ..." (secret: never logged) */
    CURL *esc;                        /* only for curl_easy_escape */
    struct redact *secrets;           /* the key and its Authorization forms */
};

/* One refund or inquiry on its way; owned by the HTTP callbacks. */
struct gateway_call {
    struct gateway_client *gc;
    gateway_done_cb done_cb;           /* refund */
    gateway_inquiry_cb inq_cb;         /* Toss payment inquiry */
    gateway_refund_inquiry_cb find_cb; /* refund inquiry */
    void *arg;
    /* The request, with copies of its strings (the caller's live only
     * during the start call): the builders and judges of later steps and
     * the inquiry's rules (Toss's same-amount counts) need all of it. */
    struct refund_request req;
    char *strings[5];
    struct gateway_answer answer;   /* the refund answer while an inquiry confirms it */
    struct gateway_inquiry inquiry; /* the refund inquiry while its calls run */
    size_t step;                    /* inquiry calls answered */
    char *bodies[GATEWAY_MAX_INQUIRY_CALLS];
};

const char *gateway_finding_name(enum refund_finding f)
{
    switch (f) {
    case FINDING_NONE:
        return "NONE";
    case FINDING_REFUNDED:
        return "REFUNDED";
    case FINDING_ALREADY_REFUNDED:
        return "ALREADY_REFUNDED";
    case FINDING_PENDING:
        return "PENDING";
    case FINDING_NOT_REFUNDED:
        return "NOT_REFUNDED";
    case FINDING_REFUND_FAILED:
        return "REFUND_FAILED";
    case FINDING_MISMATCH:
        return "MISMATCH";
    case FINDING_UNKNOWN:
        return "UNKNOWN";
    }
    return "UNKNOWN";
}

bool gateway_answer_counts_as_failure(const struct gateway_answer *a)
{
    return a->gateway_wide && a->verdict != GATEWAY_SUCCEEDED;
}

/* A transfer that got no HTTP answer: its pseudo-code for the table. */
static void classify_transport(int curl_code, const char *curl_error, struct gateway_answer *out)
{
    const char *code = GATEWAY_CODE_CONNECTION_ERROR;

    switch ((CURLcode)curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
        code = GATEWAY_CODE_TIMEOUT;
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        /* http.c refused libcurl's re-send after a reused connection died
         * with the refund sent and unanswered (http_response.resend_blocked;
         * curl_error says so), or the client closed mid-call: no answer, and
         * the gateway may have applied the send. Like a timeout after
         * sending: a connection error, same key next time, never a new one. */
        code = GATEWAY_CODE_CONNECTION_ERROR;
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        code = GATEWAY_CODE_INVALID_URL;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        code = GATEWAY_CODE_TLS_ERROR;
        break;
    default:
        break;
    }
    snprintf(out->code, sizeof(out->code), "%s", code);
    snprintf(out->message, sizeof(out->message), "%s",
             curl_error != NULL && curl_error[0] != '\0' ? curl_error
                                                         : curl_easy_strerror((CURLcode)curl_code));
}

bool gateway_payment_key_usable(const char *payment_key, char *why, size_t whylen)
{
    char rule[96];
    if (bounds_path_segment_ok(payment_key, rule, sizeof(rule)))
        return true;
    snprintf(why, whylen, "the payment key %s: no gateway URL can be built for it", rule);
    return false;
}

static bool code_is_non_retryable(const struct retry_policy *policy, const char *code)
{
    /* Same rule as config_retry_code_is_non_retryable(), kept here so the
     * classification stays a leaf that tests link without the config code. */
    if (policy == NULL || code[0] == '\0')
        return false;
    for (size_t i = 0; i < policy->n_non_retryable_codes; i++) {
        if (policy->non_retryable_codes[i] != NULL &&
            strcmp(policy->non_retryable_codes[i], code) == 0)
            return true;
    }
    return false;
}

static void apply_rule(const struct gateway_rule *r, struct gateway_answer *out)
{
    out->rule = r->id;
    out->verdict = r->verdict;
    out->stored = r->stored != GATEWAY_STORED_NO;
    out->no_refund = r->no_refund;
    out->gateway_wide = r->gateway_wide;
}

void gateway_classify(enum gateway_kind kind, long status, const char *body, int curl_code,
                      const char *curl_error, const struct retry_policy *policy,
                      const struct refund_request *req, struct gateway_answer *out)
{
    memset(out, 0, sizeof(*out));
    out->retry_after_ms = -1;
    out->http_status = status;

    const struct gateway_driver *drv = gateway_driver_of(kind);
    if (drv == NULL) {
        out->verdict = GATEWAY_CONFIG_FAULT;
        out->rule = "client_unknown_kind";
        snprintf(out->code, sizeof(out->code), "UNKNOWN_GATEWAY_KIND");
        snprintf(out->message, sizeof(out->message), "no driver for gateway kind %d", (int)kind);
        return;
    }
    if (status == 0) {
        out->answered = false;
        classify_transport(curl_code, curl_error, out);
        apply_rule(gateway_table_lookup(kind, 0, out->code), out);
    } else if (status >= 200 && status < 300) {
        out->answered = true;
        if (req == NULL) { /* an inquiry: the caller reads the body */
            out->verdict = GATEWAY_SUCCEEDED;
            out->rule = drv->inquiry_rule;
            return;
        }
        /* The body must show the refund: a 200 from a proxy, a refund still
         * pending or one that failed is not money returned. */
        const char *shape = drv->refund_shape(body, req, out->message, sizeof(out->message));
        apply_rule(gateway_table_lookup(kind, status, shape), out);
        if (out->verdict == GATEWAY_SUCCEEDED)
            out->message[0] = '\0';
        else if (out->verdict == GATEWAY_UNVERIFIED)
            snprintf(out->code, sizeof(out->code), "UNVERIFIED_SUCCESS");
        else
            snprintf(out->code, sizeof(out->code), "%s", shape);
        return;
    } else {
        out->answered = true;
        drv->parse_error(body, out->code, sizeof(out->code), out->message, sizeof(out->message));
        apply_rule(gateway_table_lookup(kind, status, out->code), out);
        if (out->message[0] == '\0')
            snprintf(out->message, sizeof(out->message), "http status %ld", status);
    }
    /* The operator's list wins over our defaults, but only to stop retries:
     * it never turns a failure into a success or hides a config fault. */
    if (out->verdict == GATEWAY_RETRYABLE && code_is_non_retryable(policy, out->code))
        out->verdict = GATEWAY_PERMANENT;
}

/* A gateway might echo the key back in a message ("invalid key sk_..."), or
 * the Basic credential made from it: make sure neither leaves this module.
 * The client's own set, so this holds even in a process that installed
 * none. */
static void scrub(const struct gateway_client *gc, char *text, size_t size)
{
    redact_buf(gc->secrets, text, size);
}

struct gateway_client *gateway_client_new(const struct config_gateway *cfg,
                                          struct http_client *http, char *err, size_t errlen)
{
    struct gateway_client *gc = NULL;

    if (cfg->base_url == NULL || cfg->base_url[0] == '\0' || cfg->secret_key == NULL ||
        cfg->secret_key[0] == '\0') {
        snprintf(err, errlen,
                 "cannot create gateway client %s: base_url and secret_key are required",
                 cfg->name != NULL ? cfg->name : "?");
        return NULL;
    }
    gc = calloc(1, sizeof(*gc));
    if (gc == NULL)
        goto oom;
    gc->cfg = cfg;
    gc->http = http;
    gc->drv = gateway_driver_of(cfg->kind);
    if (gc->drv == NULL) {
        snprintf(err, errlen, "cannot create gateway client %s: kind %s has no driver",
                 cfg->name != NULL ? cfg->name : "?", config_gateway_kind_name(cfg->kind));
        free(gc);
        return NULL;
    }
    gc->base_url = strdup(cfg->base_url);
    if (gc->base_url == NULL)
        goto oom;
    size_t len = strlen(gc->base_url);
    while (len > 0 && gc->base_url[len - 1] == '/')
        gc->base_url[--len] = '\0';
    gc->auth_header = gc->drv->auth_header(cfg);
    if (gc->auth_header == NULL)
        goto oom;
    gc->secrets = redact_new();
    if (gc->secrets == NULL || !redact_add_gateway_key(gc->secrets, cfg->secret_key))
        goto oom;
    gc->esc = curl_easy_init();
    if (gc->esc == NULL)
        goto oom;
    if (!http_client_limit_host_connections(http, cfg->max_connections, err, errlen)) {
        gateway_client_free(gc);
        return NULL;
    }
    return gc;
oom:
    snprintf(err, errlen, "could not create gateway client %s: out of memory",
             cfg->name != NULL ? cfg->name : "?");
    gateway_client_free(gc);
    return NULL;
}

void gateway_client_free(struct gateway_client *gc)
{
    if (gc == NULL)
        return;
    if (gc->auth_header != NULL) {
        memset(gc->auth_header, 0, strlen(gc->auth_header));
        free(gc->auth_header);
    }
    redact_free(gc->secrets);
    free(gc->base_url);
    if (gc->esc != NULL)
        curl_easy_cleanup(gc->esc);
    free(gc);
}

const char *gateway_client_name(const struct gateway_client *gc)
{
    if (gc->cfg->name != NULL)
        return gc->cfg->name;
    return config_gateway_kind_name(gc->cfg->kind);
}

bool gateway_client_inquires_first(const struct gateway_client *gc)
{
    return (gc->drv->safety & GATEWAY_SAFETY_INQUIRE_FIRST) != 0;
}

bool gateway_kind_inquires_first(enum gateway_kind kind)
{
    const struct gateway_driver *drv = gateway_driver_of(kind);
    return drv != NULL && (drv->safety & GATEWAY_SAFETY_INQUIRE_FIRST) != 0;
}

bool gateway_client_completes_by_webhook(const struct gateway_client *gc)
{
    return gc->drv->completion == GATEWAY_COMPLETION_WEBHOOK;
}

bool gateway_client_inquiry_replays_refund(const struct gateway_client *gc)
{
    return gc->drv->inquiry_replays_refund;
}

bool gateway_client_has_key(const struct gateway_client *gc)
{
    return (gc->drv->safety & GATEWAY_SAFETY_IDEMPOTENCY_KEY) != 0;
}

const char *gateway_client_key(const struct gateway_client *gc, const char *request_id, int gen,
                               char *buf, size_t buflen)
{
    return gateway_key_format(request_id, gen, gc->drv->key_min_len, gc->drv->key_max_len, buf,
                              buflen);
}

static struct gateway_build_ctx build_ctx(const struct gateway_client *gc)
{
    struct gateway_build_ctx ctx = {gc->base_url, gc->auth_header, gc->esc, gc->cfg, gc->drv};
    return ctx;
}

static void call_free(struct gateway_call *call)
{
    if (call == NULL)
        return;
    for (size_t i = 0; i < sizeof(call->strings) / sizeof(call->strings[0]); i++)
        free(call->strings[i]);
    for (size_t i = 0; i < GATEWAY_MAX_INQUIRY_CALLS; i++)
        free(call->bodies[i]);
    free(call);
}

/* A copy of *s owned by call in slot (NULL stays NULL); false when out of
 * memory. */
static bool call_own(struct gateway_call *call, size_t slot, const char **s)
{
    if (*s == NULL)
        return true;
    call->strings[slot] = strdup(*s);
    *s = call->strings[slot];
    return *s != NULL;
}

static struct gateway_call *call_new(struct gateway_client *gc, const struct refund_request *req)
{
    struct gateway_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return NULL;
    call->gc = gc;
    call->req = *req;
    if (call->req.request_id == NULL)
        call->req.request_id = "";
    if (!call_own(call, 0, &call->req.request_id) || !call_own(call, 1, &call->req.payment_key) ||
        !call_own(call, 2, &call->req.currency) || !call_own(call, 3, &call->req.reason) ||
        !call_own(call, 4, &call->req.idempotency_key)) {
        call_free(call);
        return NULL;
    }
    call->inquiry.payment_amount = -1;
    call->inquiry.refunded_amount = -1;
    call->inquiry.cancellable_amount = -1;
    return call;
}

/* Hand a built call to the HTTP engine with the gateway's timeouts and TLS
 * settings. The spec is cleared either way. */
static bool submit_spec(struct gateway_client *gc, struct gateway_call_spec *spec, http_done_cb cb,
                        struct gateway_call *call, char *err, size_t errlen)
{
    /* The last guard before our credentials leave: the URL, as libcurl
     * will send it, is under the base URL and the call's own path. */
    if (spec->path_prefix == NULL ||
        !gateway_url_check(spec->url, gc->base_url, spec->path_prefix, err, errlen)) {
        if (spec->path_prefix == NULL)
            snprintf(err, errlen, "cannot send: the gateway call has no expected path");
        gateway_call_spec_clear(spec);
        return false;
    }
    struct http_request req = HTTP_REQUEST_INIT;
    req.method = spec->method;
    req.url = spec->url;
    req.headers = (const char *const *)spec->headers;
    req.nheaders = spec->nheaders;
    req.body = spec->body;
    req.body_len = spec->body_len;
    req.connect_timeout_ms = gc->cfg->connect_timeout_ms;
    req.timeout_ms = gc->cfg->timeout_ms;
    req.tls_verify = gc->cfg->tls_verify;
    req.ca_file = gc->cfg->ca_file;
    req.keep_alive = gc->cfg->keep_alive;
    req.max_idle_ms = gc->cfg->keep_alive_idle_ms;
    bool ok = http_client_submit(gc->http, &req, cb, call, err, errlen);
    gateway_call_spec_clear(spec);
    return ok;
}

static void log_answer(const struct gateway_call *call, const char *what,
                       const struct gateway_answer *a)
{
    json_t *f = json_object();
    json_object_set_new(f, "gateway", json_string(gateway_client_name(call->gc)));
    json_object_set_new(f, "paymentKey", json_string(call->req.payment_key));
    json_object_set_new(f, "verdict", json_string(gateway_verdict_name(a->verdict)));
    json_object_set_new(f, "httpStatus", json_integer(a->http_status));
    if (a->code[0] != '\0')
        json_object_set_new(f, "code", json_string(a->code));
    if (a->message[0] != '\0')
        json_object_set_new(f, "error", json_string(a->message));
    if (a->retry_after_ms >= 0)
        json_object_set_new(f, "retryAfterMs", json_integer(a->retry_after_ms));
    json_object_set_new(f, "latencyMs", json_integer(a->latency_ms));
    json_object_set_new(f, "replayed", json_boolean(a->replayed));
    struct log_ctx ctx = LOG_CTX_INIT;
    ctx.request_id = call->req.request_id[0] != '\0' ? call->req.request_id : NULL;
    ctx.fields = f;
    enum log_level level = a->verdict == GATEWAY_SUCCEEDED || a->verdict == GATEWAY_ALREADY_REFUNDED
                               ? LOG_INFO
                               : LOG_WARN;
    log_emit(level, &ctx, "gateway %s answered: %s", what, gateway_verdict_name(a->verdict));
    json_decref(f);
}

/* The inquiry's view of the payment, from its HTTP response. */
static void payment_from_response(const struct gateway_client *gc, const struct http_response *resp,
                                  struct gateway_payment *p)
{
    memset(p, 0, sizeof(*p));
    gateway_classify(gc->cfg->kind, resp->status, resp->body, (int)resp->curl_code,
                     resp->curl_error, NULL, NULL, &p->answer);
    p->answer.latency_ms = resp->latency_ms;
    p->answer.connects = resp->connects;
    p->answer.retry_after_ms = resp->retry_after_ms;
    if (p->answer.verdict == GATEWAY_SUCCEEDED && !gateway_toss_parse_payment(resp->body, p)) {
        p->answer.verdict = GATEWAY_PERMANENT;
        snprintf(p->answer.code, sizeof(p->answer.code), "INVALID_RESPONSE");
        snprintf(p->answer.message, sizeof(p->answer.message),
                 "payment inquiry answer is not a payment object");
    }
    scrub(gc, p->answer.message, sizeof(p->answer.message));
}

static void finish_refund(struct gateway_call *call)
{
    log_answer(call, "refund", &call->answer);
    call->done_cb(&call->answer, call->arg);
    call_free(call);
}

static void on_confirm_http(const struct http_response *resp, void *arg)
{
    struct gateway_call *call = arg;
    struct gateway_payment p;
    payment_from_response(call->gc, resp, &p);
    gateway_toss_resolve_already_refunded(&p, call->req.partial, call->req.amount, &call->answer);
    call->answer.latency_ms += resp->latency_ms;
    call->answer.connects += resp->connects;
    finish_refund(call);
}

/* The answer said when to come back, but beyond any plan (http.h,
 * HTTP_RETRY_AFTER_MAX_MS): it was capped; say so where the attempt log and
 * the alert show the answer. */
static void note_retry_after_capped(struct gateway_answer *a)
{
    size_t len = strlen(a->message);
    snprintf(a->message + len, sizeof(a->message) - len, "%sRetry-After beyond 1d, capped at 1d",
             len > 0 ? "; " : "");
}

static void on_refund_http(const struct http_response *resp, void *arg)
{
    struct gateway_call *call = arg;
    struct gateway_client *gc = call->gc;
    struct gateway_answer *a = &call->answer;

    gateway_classify(gc->cfg->kind, resp->status, resp->body, (int)resp->curl_code,
                     resp->curl_error, &gc->cfg->retry, &call->req, a);
    a->retry_after_ms = resp->retry_after_ms;
    a->latency_ms = resp->latency_ms;
    a->connects = resp->connects;
    a->replayed = resp->idempotent_replayed;
    scrub(gc, a->message, sizeof(a->message));
    if (resp->retry_after_clamped)
        note_retry_after_capped(a);

    if (a->verdict == GATEWAY_ALREADY_REFUNDED && gc->drv->confirm_already_refunded) {
        /* Toss says "already canceled" both when our earlier attempt did it
         * and when someone else cancelled a different amount: only the
         * payment itself tells which. */
        char err[256];
        struct gateway_call_spec spec;
        struct gateway_build_ctx ctx = build_ctx(gc);
        if (gc->drv->build_inquiry(&ctx, &call->req, 0, &spec, err, sizeof(err)) &&
            submit_spec(gc, &spec, on_confirm_http, call, err, sizeof(err)))
            return;
        a->verdict = GATEWAY_RETRYABLE;
        snprintf(a->code, sizeof(a->code), "INQUIRY_FAILED");
        snprintf(a->message, sizeof(a->message),
                 "could not confirm already-canceled payment: %.200s", err);
    }
    finish_refund(call);
}

bool gateway_refund_start(struct gateway_client *gc, const struct refund_request *req,
                          gateway_done_cb cb, void *arg, char *err, size_t errlen)
{
    struct gateway_call_spec spec;
    struct gateway_build_ctx ctx = build_ctx(gc);

    if (req->request_id == NULL || req->request_id[0] == '\0' || req->payment_key == NULL ||
        req->payment_key[0] == '\0') {
        snprintf(err, errlen, "cannot start refund: request id and payment key are required");
        return false;
    }
    for (const char *c = req->request_id; *c != '\0'; c++) {
        /* It becomes a header line: a CR or LF would inject headers. */
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            snprintf(err, errlen, "cannot start refund: request id contains control characters");
            return false;
        }
    }
    if (req->amount <= 0) {
        snprintf(err, errlen, "cannot start refund of %lld: amount must be positive",
                 (long long)req->amount);
        return false;
    }
    const char *key = req->idempotency_key != NULL ? req->idempotency_key : req->request_id;
    for (const char *c = key; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            snprintf(err, errlen,
                     "cannot start refund: idempotency key contains control "
                     "characters");
            return false;
        }
    }
    struct gateway_call *call = call_new(gc, req);
    if (call == NULL) {
        snprintf(err, errlen, "could not start refund: out of memory");
        return false;
    }
    call->done_cb = cb;
    call->arg = arg;
    if (!gc->drv->build_refund(&ctx, &call->req, &spec, err, errlen) ||
        !submit_spec(gc, &spec, on_refund_http, call, err, errlen)) {
        call_free(call);
        return false;
    }
    return true;
}

static void on_inquiry_http(const struct http_response *resp, void *arg)
{
    struct gateway_call *call = arg;
    struct gateway_payment p;
    payment_from_response(call->gc, resp, &p);
    log_answer(call, "inquiry", &p.answer);
    call->inq_cb(&p, call->arg);
    call_free(call);
}

bool gateway_inquire_start(struct gateway_client *gc, const char *payment_key,
                           gateway_inquiry_cb cb, void *arg, char *err, size_t errlen)
{
    struct gateway_call_spec spec;
    struct gateway_build_ctx ctx = build_ctx(gc);
    struct refund_request req = {.request_id = "", .payment_key = payment_key};

    if (gc->cfg->kind != GATEWAY_TOSS) {
        snprintf(err, errlen, "cannot inquire payments on gateway %s: its kind has no inquiry",
                 gateway_client_name(gc));
        return false;
    }
    if (payment_key == NULL || payment_key[0] == '\0') {
        snprintf(err, errlen, "cannot start inquiry: payment key is required");
        return false;
    }
    struct gateway_call *call = call_new(gc, &req);
    if (call == NULL) {
        snprintf(err, errlen, "could not start inquiry: out of memory");
        return false;
    }
    call->inq_cb = cb;
    call->arg = arg;
    if (!gateway_toss_build_inquiry(&ctx, payment_key, &spec, err, errlen) ||
        !submit_spec(gc, &spec, on_inquiry_http, call, err, errlen)) {
        call_free(call);
        return false;
    }
    return true;
}

/* --- refund inquiries --- */

static void log_inquiry(const struct gateway_call *call, const struct gateway_inquiry *q)
{
    struct log_ctx ctx = LOG_CTX_INIT;
    json_t *f =
        json_pack("{s:s, s:s, s:s, s:I}", "gateway", gateway_client_name(call->gc), "paymentKey",
                  call->req.payment_key, "finding", gateway_finding_name(q->finding), "latencyMs",
                  (json_int_t)q->answer.latency_ms);
    if (f != NULL && q->answer.code[0] != '\0')
        json_object_set_new(f, "code", json_string(q->answer.code));
    ctx.request_id = call->req.request_id[0] != '\0' ? call->req.request_id : NULL;
    ctx.fields = f;
    log_emit(q->finding == FINDING_UNKNOWN ? LOG_WARN : LOG_INFO, &ctx,
             "gateway inquiry found %s: %s", gateway_finding_name(q->finding), q->detail);
    json_decref(f);
}

static void finish_inquiry(struct gateway_call *call)
{
    scrub(call->gc, call->inquiry.detail, sizeof(call->inquiry.detail));
    scrub(call->gc, call->inquiry.answer.message, sizeof(call->inquiry.answer.message));
    log_inquiry(call, &call->inquiry);
    call->find_cb(&call->inquiry, call->arg);
    call_free(call);
}

/* Classify one inquiry HTTP response into call->inquiry.answer (latency
 * added up). False when it is not a readable 2xx: the finding is UNKNOWN. */
static bool inquiry_answered(struct gateway_call *call, const struct http_response *resp)
{
    struct gateway_inquiry *q = &call->inquiry;
    const char *missing = call->gc->drv->missing_payment_code;
    int64_t latency = q->answer.latency_ms + resp->latency_ms;
    long connects = q->answer.connects + resp->connects;

    gateway_classify(call->gc->cfg->kind, resp->status, resp->body, (int)resp->curl_code,
                     resp->curl_error, NULL, NULL, &q->answer);
    q->answer.latency_ms = latency;
    q->answer.connects = connects;
    q->answer.retry_after_ms = resp->retry_after_ms;
    if (q->answer.verdict == GATEWAY_SUCCEEDED && resp->body != NULL)
        return true;
    if (q->answer.http_status == 404 && missing != NULL && strcmp(q->answer.code, missing) == 0) {
        /* The gateway itself says it has no such payment (its own code, not
         * a proxy's 404): no refund of it can exist. */
        q->finding = FINDING_NOT_REFUNDED;
        snprintf(q->detail, sizeof(q->detail), "the gateway knows no such payment (%s)",
                 q->answer.code);
        return false;
    }
    q->finding = FINDING_UNKNOWN;
    snprintf(q->detail, sizeof(q->detail), "inquiry answered %s %.60s: %.120s",
             gateway_verdict_name(q->answer.verdict), q->answer.code, q->answer.message);
    return false;
}

static bool inquiry_submit(struct gateway_call *call, char *err, size_t errlen);

/* One call of the inquiry answered: the next one, or the driver's judgement
 * of all their bodies. */
static void on_inquiry_step_http(const struct http_response *resp, void *arg)
{
    struct gateway_call *call = arg;
    const struct gateway_driver *drv = call->gc->drv;
    char err[256];

    if (!inquiry_answered(call, resp)) {
        finish_inquiry(call);
        return;
    }
    call->bodies[call->step] = strdup(resp->body);
    if (call->bodies[call->step] == NULL) {
        call->inquiry.finding = FINDING_UNKNOWN;
        snprintf(call->inquiry.detail, sizeof(call->inquiry.detail),
                 "could not keep the inquiry's answer: out of memory");
        finish_inquiry(call);
        return;
    }
    call->step++;
    if (call->step < drv->inquiry_calls) {
        if (inquiry_submit(call, err, sizeof(err)))
            return;
        call->inquiry.finding = FINDING_UNKNOWN;
        snprintf(call->inquiry.detail, sizeof(call->inquiry.detail),
                 "could not make the inquiry's call %zu: %.200s", call->step + 1, err);
        finish_inquiry(call);
        return;
    }
    drv->judge((const char *const *)call->bodies, call->step, &call->req, &call->inquiry);
    finish_inquiry(call);
}

static bool inquiry_submit(struct gateway_call *call, char *err, size_t errlen)
{
    struct gateway_call_spec spec;
    struct gateway_build_ctx ctx = build_ctx(call->gc);
    return call->gc->drv->build_inquiry(&ctx, &call->req, call->step, &spec, err, errlen) &&
           submit_spec(call->gc, &spec, on_inquiry_step_http, call, err, errlen);
}

bool gateway_inquire_refund_start(struct gateway_client *gc, const struct refund_request *req,
                                  gateway_refund_inquiry_cb cb, void *arg, char *err, size_t errlen)
{
    if (req->request_id == NULL || req->request_id[0] == '\0' || req->payment_key == NULL ||
        req->payment_key[0] == '\0') {
        snprintf(err, errlen, "cannot start inquiry: request id and payment key are required");
        return false;
    }
    if (gc->drv->inquiry_calls == 0 || gc->drv->inquiry_calls > GATEWAY_MAX_INQUIRY_CALLS) {
        snprintf(err, errlen, "cannot inquire on gateway %s: its API has no inquiry",
                 gateway_client_name(gc));
        return false;
    }
    if (gc->drv->inquiry_replays_refund && req->idempotency_key == NULL) {
        /* Under a guessed key the replay could be a second refund. */
        snprintf(err, errlen,
                 "cannot inquire on gateway %s without the request's current key: its inquiry "
                 "sends the refund again under that key",
                 gateway_client_name(gc));
        return false;
    }
    struct gateway_call *call = call_new(gc, req);
    if (call == NULL) {
        snprintf(err, errlen, "could not start inquiry: out of memory");
        return false;
    }
    call->find_cb = cb;
    call->arg = arg;
    if (!inquiry_submit(call, err, errlen)) {
        call_free(call);
        return false;
    }
    return true;
}
