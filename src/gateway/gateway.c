/*
 * gateway: refund calls and the classification of their answers. See
 * gateway.h; the per-kind wire formats live in gateway_toss.c and
 * gateway_stripe.c.
 */
#include "gateway/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bounds.h"
#include "base/log.h"
#include "base/redact.h"
#include "gateway/gateway_internal.h"

struct gateway_client {
    const struct config_gateway *cfg; /* borrowed */
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
    char *request_id;
    char *payment_key;
    char *currency;
    int64_t amount;
    bool partial;
    struct gateway_answer answer;   /* the refund answer while an inquiry confirms it */
    struct gateway_inquiry inquiry; /* the refund inquiry while its second call runs */
    char *first_body;               /* Stripe: the PaymentIntent, while the list is read */
};

void gateway_call_spec_clear(struct gateway_call_spec *spec)
{
    free(spec->url);
    for (size_t i = 0; i < spec->nheaders; i++) {
        /* The Authorization line holds the secret: wipe before freeing. */
        memset(spec->headers[i], 0, strlen(spec->headers[i]));
        free(spec->headers[i]);
    }
    free(spec->body);
    memset(spec, 0, sizeof(*spec));
}

bool gateway_call_spec_add_header(struct gateway_call_spec *spec, const char *name,
                                  const char *value)
{
    if (spec->nheaders >= GATEWAY_MAX_HEADERS)
        return false;
    size_t n = strlen(name) + 2 + strlen(value) + 1;
    char *line = malloc(n);
    if (line == NULL)
        return false;
    snprintf(line, n, "%s: %s", name, value);
    spec->headers[spec->nheaders++] = line;
    return true;
}

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

    if (status == 0) {
        out->answered = false;
        classify_transport(curl_code, curl_error, out);
        apply_rule(gateway_table_lookup(kind, 0, out->code), out);
    } else if (status >= 200 && status < 300) {
        out->answered = true;
        if (req == NULL) { /* an inquiry: the caller reads the body */
            out->verdict = GATEWAY_SUCCEEDED;
            out->rule = kind == GATEWAY_STRIPE ? "stripe.inquiry" : "toss.inquiry";
            return;
        }
        /* The body must show the refund: a 200 from a proxy, a refund still
         * pending or one that failed is not money returned. */
        const char *shape =
            kind == GATEWAY_STRIPE
                ? gateway_stripe_refund_shape(body, req, out->message, sizeof(out->message))
                : gateway_toss_refund_shape(body, req, out->message, sizeof(out->message));
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
        if (kind == GATEWAY_STRIPE)
            gateway_stripe_parse_error(body, out->code, sizeof(out->code), out->message,
                                       sizeof(out->message));
        else
            gateway_toss_parse_error(body, out->code, sizeof(out->code), out->message,
                                     sizeof(out->message));
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
    gc->base_url = strdup(cfg->base_url);
    if (gc->base_url == NULL)
        goto oom;
    size_t len = strlen(gc->base_url);
    while (len > 0 && gc->base_url[len - 1] == '/')
        gc->base_url[--len] = '\0';
    gc->auth_header = cfg->kind == GATEWAY_STRIPE ? gateway_stripe_auth_header(cfg->secret_key)
                                                  : gateway_toss_auth_header(cfg->secret_key);
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
    return gc->cfg->kind == GATEWAY_STRIPE ? "stripe" : "toss";
}

static void call_free(struct gateway_call *call)
{
    if (call == NULL)
        return;
    free(call->request_id);
    free(call->payment_key);
    free(call->currency);
    free(call->first_body);
    free(call);
}

static struct gateway_call *call_new(struct gateway_client *gc, const char *request_id,
                                     const char *payment_key)
{
    struct gateway_call *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return NULL;
    call->gc = gc;
    call->request_id = strdup(request_id != NULL ? request_id : "");
    call->payment_key = strdup(payment_key);
    call->currency = strdup("");
    if (call->request_id == NULL || call->payment_key == NULL || call->currency == NULL) {
        call_free(call);
        return NULL;
    }
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
    json_object_set_new(f, "paymentKey", json_string(call->payment_key));
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
    ctx.request_id = call->request_id[0] != '\0' ? call->request_id : NULL;
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

static bool call_set_currency(struct gateway_call *call, const char *currency)
{
    char *c = strdup(currency != NULL ? currency : "");
    if (c == NULL)
        return false;
    free(call->currency);
    call->currency = c;
    return true;
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
    gateway_toss_resolve_already_refunded(&p, call->partial, call->amount, &call->answer);
    call->answer.latency_ms += resp->latency_ms;
    call->answer.connects += resp->connects;
    finish_refund(call);
}

/* The refund a call is about, borrowing the call's copies. */
static void call_request(const struct gateway_call *call, struct refund_request *req)
{
    memset(req, 0, sizeof(*req));
    req->request_id = call->request_id;
    req->payment_key = call->payment_key;
    req->amount = call->amount;
    req->currency = call->currency[0] != '\0' ? call->currency : NULL;
    req->partial = call->partial;
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
    struct refund_request req;

    call_request(call, &req);
    gateway_classify(gc->cfg->kind, resp->status, resp->body, (int)resp->curl_code,
                     resp->curl_error, &gc->cfg->retry, &req, a);
    a->retry_after_ms = resp->retry_after_ms;
    a->latency_ms = resp->latency_ms;
    a->connects = resp->connects;
    a->replayed = resp->idempotent_replayed;
    scrub(gc, a->message, sizeof(a->message));
    if (resp->retry_after_clamped)
        note_retry_after_capped(a);

    if (a->verdict == GATEWAY_ALREADY_REFUNDED && gc->cfg->kind == GATEWAY_TOSS) {
        /* Toss says "already canceled" both when our earlier attempt did it
         * and when someone else cancelled a different amount: only the
         * payment itself tells which. */
        char err[256];
        struct gateway_call_spec spec;
        struct gateway_build_ctx ctx = {gc->base_url, gc->auth_header, gc->esc};
        if (gateway_toss_build_inquiry(&ctx, call->payment_key, &spec, err, sizeof(err)) &&
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
    struct gateway_build_ctx ctx = {gc->base_url, gc->auth_header, gc->esc};
    bool built;

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
    struct gateway_call *call = call_new(gc, req->request_id, req->payment_key);
    if (call == NULL) {
        snprintf(err, errlen, "could not start refund: out of memory");
        return false;
    }
    call->done_cb = cb;
    call->arg = arg;
    call->amount = req->amount;
    call->partial = req->partial;
    if (!call_set_currency(call, req->currency)) {
        call_free(call);
        snprintf(err, errlen, "could not start refund: out of memory");
        return false;
    }

    if (gc->cfg->kind == GATEWAY_STRIPE)
        built = gateway_stripe_build_refund(&ctx, req, &spec, err, errlen);
    else
        built = gateway_toss_build_refund(&ctx, req, &spec, err, errlen);
    if (!built || !submit_spec(gc, &spec, on_refund_http, call, err, errlen)) {
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
    struct gateway_build_ctx ctx = {gc->base_url, gc->auth_header, gc->esc};

    if (gc->cfg->kind != GATEWAY_TOSS) {
        snprintf(err, errlen, "cannot inquire payments on gateway %s: its kind has no inquiry",
                 gateway_client_name(gc));
        return false;
    }
    if (payment_key == NULL || payment_key[0] == '\0') {
        snprintf(err, errlen, "cannot start inquiry: payment key is required");
        return false;
    }
    struct gateway_call *call = call_new(gc, "", payment_key);
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
                  call->payment_key, "finding", gateway_finding_name(q->finding), "latencyMs",
                  (json_int_t)q->answer.latency_ms);
    if (f != NULL && q->answer.code[0] != '\0')
        json_object_set_new(f, "code", json_string(q->answer.code));
    ctx.request_id = call->request_id[0] != '\0' ? call->request_id : NULL;
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
    int64_t latency = q->answer.latency_ms + resp->latency_ms;
    long connects = q->answer.connects + resp->connects;

    gateway_classify(call->gc->cfg->kind, resp->status, resp->body, (int)resp->curl_code,
                     resp->curl_error, NULL, NULL, &q->answer);
    q->answer.latency_ms = latency;
    q->answer.connects = connects;
    q->answer.retry_after_ms = resp->retry_after_ms;
    if (q->answer.verdict == GATEWAY_SUCCEEDED && resp->body != NULL)
        return true;
    if (q->answer.http_status == 404 && (strcmp(q->answer.code, "NOT_FOUND_PAYMENT") == 0 ||
                                         strcmp(q->answer.code, "resource_missing") == 0)) {
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

static void on_toss_inquiry_http(const struct http_response *resp, void *arg)
{
    struct gateway_call *call = arg;
    struct gateway_inquiry *q = &call->inquiry;
    struct gateway_payment p;
    struct refund_request req;

    if (inquiry_answered(call, resp)) {
        memset(&p, 0, sizeof(p));
        call_request(call, &req);
        if (!gateway_toss_parse_payment(resp->body, &p)) {
            q->finding = FINDING_UNKNOWN;
            snprintf(q->detail, sizeof(q->detail), "the inquiry answer is not a payment object");
        } else {
            q->finding = gateway_toss_judge(&p, &req, q->detail, sizeof(q->detail));
            q->payment_amount = p.total_amount;
            q->refunded_amount = p.canceled_amount;
            snprintf(q->currency, sizeof(q->currency), "%s", p.currency);
        }
    }
    finish_inquiry(call);
}

static void on_stripe_refunds_http(const struct http_response *resp, void *arg)
{
    struct gateway_call *call = arg;
    struct refund_request req;

    if (inquiry_answered(call, resp)) {
        call_request(call, &req);
        gateway_stripe_judge(call->first_body, resp->body, &req, &call->inquiry);
    }
    finish_inquiry(call);
}

static void on_stripe_intent_http(const struct http_response *resp, void *arg)
{
    struct gateway_call *call = arg;
    struct gateway_client *gc = call->gc;
    struct gateway_build_ctx ctx = {gc->base_url, gc->auth_header, gc->esc};
    struct gateway_call_spec spec;
    char err[256];

    if (!inquiry_answered(call, resp)) {
        finish_inquiry(call);
        return;
    }
    call->first_body = strdup(resp->body);
    if (call->first_body != NULL &&
        gateway_stripe_build_refund_list(&ctx, call->payment_key, &spec, err, sizeof(err)) &&
        submit_spec(gc, &spec, on_stripe_refunds_http, call, err, sizeof(err)))
        return;
    call->inquiry.finding = FINDING_UNKNOWN;
    snprintf(call->inquiry.detail, sizeof(call->inquiry.detail),
             "could not list the payment's refunds: %.200s",
             call->first_body != NULL ? err : "out of memory");
    finish_inquiry(call);
}

bool gateway_inquire_refund_start(struct gateway_client *gc, const struct refund_request *req,
                                  gateway_refund_inquiry_cb cb, void *arg, char *err, size_t errlen)
{
    struct gateway_call_spec spec;
    struct gateway_build_ctx ctx = {gc->base_url, gc->auth_header, gc->esc};
    bool ok;

    if (req->request_id == NULL || req->request_id[0] == '\0' || req->payment_key == NULL ||
        req->payment_key[0] == '\0') {
        snprintf(err, errlen, "cannot start inquiry: request id and payment key are required");
        return false;
    }
    struct gateway_call *call = call_new(gc, req->request_id, req->payment_key);
    if (call == NULL || !call_set_currency(call, req->currency)) {
        call_free(call);
        snprintf(err, errlen, "could not start inquiry: out of memory");
        return false;
    }
    call->find_cb = cb;
    call->arg = arg;
    call->amount = req->amount;
    call->partial = req->partial;
    call->inquiry.payment_amount = -1;
    call->inquiry.refunded_amount = -1;
    if (gc->cfg->kind == GATEWAY_STRIPE)
        ok = gateway_stripe_build_payment_intent(&ctx, req->payment_key, &spec, err, errlen) &&
             submit_spec(gc, &spec, on_stripe_intent_http, call, err, errlen);
    else
        ok = gateway_toss_build_inquiry(&ctx, req->payment_key, &spec, err, errlen) &&
             submit_spec(gc, &spec, on_toss_inquiry_http, call, err, errlen);
    if (!ok) {
        call_free(call);
        return false;
    }
    return true;
}

void gateway_error_fields(const char *body, const char *object, const char *fallback, char *code,
                          size_t codelen, char *message, size_t msglen)
{
    code[0] = '\0';
    message[0] = '\0';
    if (body == NULL || body[0] == '\0')
        return;
    json_t *root = json_loads(body, 0, NULL);
    if (root == NULL)
        return;
    json_t *e = object != NULL ? json_object_get(root, object) : root;
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *m = json_string_value(json_object_get(e, "message"));
    if ((c == NULL || c[0] == '\0') && fallback != NULL)
        c = json_string_value(json_object_get(e, fallback));
    if (c != NULL)
        snprintf(code, codelen, "%s", c);
    if (m != NULL)
        snprintf(message, msglen, "%s", m);
    json_decref(root);
}

bool gateway_call_spec_finish_get(struct gateway_call_spec *spec,
                                  const struct gateway_build_ctx *ctx, const char *what, char *err,
                                  size_t errlen)
{
    if (spec->url != NULL) {
        spec->headers[0] = strdup(ctx->auth_header);
        if (spec->headers[0] != NULL) {
            spec->nheaders = 1;
            return true;
        }
    }
    snprintf(err, errlen, "could not build %s: out of memory", what);
    gateway_call_spec_clear(spec);
    return false;
}

bool gateway_call_spec_refund_headers(struct gateway_call_spec *spec,
                                      const struct gateway_build_ctx *ctx, const char *content_type,
                                      const struct refund_request *req)
{
    if (!gateway_call_spec_add_header(spec, "Content-Type", content_type) ||
        !gateway_call_spec_add_header(
            spec, "Idempotency-Key", req->idempotency_key ? req->idempotency_key : req->request_id))
        return false;
    spec->headers[spec->nheaders] = strdup(ctx->auth_header);
    if (spec->headers[spec->nheaders] == NULL)
        return false;
    spec->nheaders++;
    return true;
}
