/*
 * gateway_toss: the Toss Payments cancel and inquiry APIs.
 *
 * POST {base}/v1/payments/{paymentKey}/cancel with Basic auth (secret key and
 * an empty password), Idempotency-Key, JSON {"cancelReason", "cancelAmount"
 * (partial only)}; errors are {"code", "message"}.
 */
#include "base64.h"
#include "gateway_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

char *gateway_toss_auth_header(const char *secret)
{
    size_t slen = strlen(secret);
    char *userpass = malloc(slen + 2);
    char *line = NULL;
    char *b64 = NULL;
    if (userpass == NULL)
        goto out;
    memcpy(userpass, secret, slen);
    userpass[slen] = ':';
    userpass[slen + 1] = '\0';
    b64 = malloc(BASE64_ENCODED_SIZE(slen + 1));
    if (b64 != NULL)
        base64_encode((const unsigned char *)userpass, slen + 1, b64);
    if (b64 == NULL)
        goto out;
    size_t n = strlen("Authorization: Basic ") + strlen(b64) + 1;
    line = malloc(n);
    if (line != NULL)
        snprintf(line, n, "Authorization: Basic %s", b64);
out:
    /* Wipe the copies of the secret before freeing them. */
    if (userpass != NULL)
        memset(userpass, 0, slen + 1);
    free(userpass);
    if (b64 != NULL)
        memset(b64, 0, strlen(b64));
    free(b64);
    return line;
}

/* {base}/v1/payments/{escaped key}{suffix}, malloc'd. */
static char *payment_url(const struct gateway_build_ctx *ctx, const char *payment_key,
                         const char *suffix)
{
    char *esc = curl_easy_escape(ctx->esc, payment_key, 0);
    if (esc == NULL)
        return NULL;
    size_t n = strlen(ctx->base_url) + strlen("/v1/payments/") + strlen(esc) + strlen(suffix) + 1;
    char *url = malloc(n);
    if (url != NULL)
        snprintf(url, n, "%s/v1/payments/%s%s", ctx->base_url, esc, suffix);
    curl_free(esc);
    return url;
}

bool gateway_toss_build_refund(const struct gateway_build_ctx *ctx,
                               const struct refund_request *req, struct gateway_call_spec *spec,
                               char *err, size_t errlen)
{
    json_t *body = NULL;
    bool ok = false;

    memset(spec, 0, sizeof(*spec));
    spec->method = "POST";
    spec->url = payment_url(ctx, req->payment_key, "/cancel");
    if (spec->url == NULL)
        goto oom;

    body = json_object();
    if (body == NULL ||
        json_object_set_new(body, "cancelReason", json_string(req->reason ? req->reason : "")))
        goto oom;
    if (req->partial && json_object_set_new(body, "cancelAmount", json_integer(req->amount)))
        goto oom;
    spec->body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (spec->body == NULL)
        goto oom;
    spec->body_len = strlen(spec->body);

    if (!gateway_call_spec_add_header(spec, "Content-Type", "application/json") ||
        !gateway_call_spec_add_header(spec, "Idempotency-Key", req->request_id))
        goto oom;
    spec->headers[spec->nheaders] = strdup(ctx->auth_header);
    if (spec->headers[spec->nheaders] == NULL)
        goto oom;
    spec->nheaders++;
    ok = true;
    goto out;
oom:
    snprintf(err, errlen, "could not build toss cancel request: out of memory");
    gateway_call_spec_clear(spec);
out:
    json_decref(body);
    return ok;
}

bool gateway_toss_build_inquiry(const struct gateway_build_ctx *ctx, const char *payment_key,
                                struct gateway_call_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof(*spec));
    spec->method = "GET";
    spec->url = payment_url(ctx, payment_key, "");
    if (spec->url != NULL) {
        spec->headers[0] = strdup(ctx->auth_header);
        if (spec->headers[0] != NULL) {
            spec->nheaders = 1;
            return true;
        }
    }
    snprintf(err, errlen, "could not build toss inquiry request: out of memory");
    gateway_call_spec_clear(spec);
    return false;
}

void gateway_toss_parse_error(const char *body, char *code, size_t codelen, char *message,
                              size_t msglen)
{
    code[0] = '\0';
    message[0] = '\0';
    if (body == NULL || body[0] == '\0')
        return;
    json_t *root = json_loads(body, 0, NULL);
    if (root == NULL)
        return;
    const char *c = json_string_value(json_object_get(root, "code"));
    const char *m = json_string_value(json_object_get(root, "message"));
    if (c != NULL)
        snprintf(code, codelen, "%s", c);
    if (m != NULL)
        snprintf(message, msglen, "%s", m);
    json_decref(root);
}

enum gateway_verdict gateway_toss_classify_status(long status, const char *code)
{
    if (status == 401 || status == 403)
        return GATEWAY_CONFIG_FAULT;
    if (status == 429 || status >= 500)
        return GATEWAY_RETRYABLE;
    if (strcmp(code, "ALREADY_CANCELED_PAYMENT") == 0)
        return GATEWAY_ALREADY_REFUNDED;
    /* Toss answers PROVIDER_ERROR for a temporary fault of the card company
     * or bank behind it, with a 4xx or a 5xx status. */
    if (strcmp(code, "PROVIDER_ERROR") == 0 ||
        strcmp(code, "FAILED_INTERNAL_SYSTEM_PROCESSING") == 0)
        return GATEWAY_RETRYABLE;
    /* The same Idempotency-Key is still being processed: its outcome is not
     * known yet, asking again later is exactly right. */
    if (status == 409 && strcmp(code, "IDEMPOTENT_REQUEST_PROCESSING") == 0)
        return GATEWAY_RETRYABLE;
    if (status >= 300 && status < 400)
        return GATEWAY_CONFIG_FAULT; /* a redirect: base_url points at the wrong place */
    return GATEWAY_PERMANENT;
}

bool gateway_toss_parse_payment(const char *body, struct gateway_payment *out)
{
    json_t *root = body != NULL ? json_loads(body, 0, NULL) : NULL;
    if (root == NULL)
        return false;
    bool ok = false;
    json_t *balance = json_object_get(root, "balanceAmount");
    json_t *cancels = json_object_get(root, "cancels");
    if (!json_is_integer(balance) && !json_is_real(balance))
        goto out;
    out->balance_amount = (int64_t)json_number_value(balance);
    out->total_amount = (int64_t)json_number_value(json_object_get(root, "totalAmount"));
    const char *st = json_string_value(json_object_get(root, "status"));
    const char *cur = json_string_value(json_object_get(root, "currency"));
    snprintf(out->status, sizeof(out->status), "%s", st != NULL ? st : "");
    snprintf(out->currency, sizeof(out->currency), "%s", cur != NULL ? cur : "");
    out->canceled_amount = 0;
    if (json_is_array(cancels)) {
        size_t i;
        json_t *c;
        json_array_foreach(cancels, i, c)
        {
            out->canceled_amount += (int64_t)json_number_value(json_object_get(c, "cancelAmount"));
        }
    }
    ok = true;
out:
    json_decref(root);
    return ok;
}

void gateway_toss_resolve_already_refunded(const struct gateway_payment *inquiry, bool partial,
                                           int64_t amount, struct gateway_answer *answer)
{
    const struct gateway_answer *ia = &inquiry->answer;

    if (ia->verdict == GATEWAY_SUCCEEDED) {
        bool confirmed =
            partial ? inquiry->canceled_amount >= amount : inquiry->balance_amount == 0;
        if (confirmed) {
            answer->verdict = GATEWAY_ALREADY_REFUNDED;
            return;
        }
        answer->verdict = GATEWAY_PERMANENT;
        snprintf(answer->code, sizeof(answer->code), "ALREADY_REFUNDED_UNCONFIRMED");
        snprintf(answer->message, sizeof(answer->message),
                 "gateway says already canceled, but the payment shows balance %lld and "
                 "%lld canceled (this request: %s %lld)",
                 (long long)inquiry->balance_amount, (long long)inquiry->canceled_amount,
                 partial ? "partial" : "full", (long long)amount);
        return;
    }
    if (ia->verdict == GATEWAY_CONFIG_FAULT) {
        answer->verdict = GATEWAY_CONFIG_FAULT;
        answer->http_status = ia->http_status;
        snprintf(answer->code, sizeof(answer->code), "%s", ia->code);
        snprintf(answer->message, sizeof(answer->message), "payment inquiry: %.200s", ia->message);
        return;
    }
    if (ia->verdict == GATEWAY_RETRYABLE) {
        answer->verdict = GATEWAY_RETRYABLE;
        snprintf(answer->code, sizeof(answer->code), "INQUIRY_FAILED");
        snprintf(answer->message, sizeof(answer->message),
                 "could not confirm already-canceled payment: inquiry: %.180s", ia->message);
        return;
    }
    answer->verdict = GATEWAY_PERMANENT;
    snprintf(answer->code, sizeof(answer->code), "ALREADY_REFUNDED_UNCONFIRMED");
    snprintf(answer->message, sizeof(answer->message),
             "cannot confirm already-canceled payment: inquiry: %.60s%s%.120s", ia->code,
             ia->code[0] != '\0' ? " " : "", ia->message);
}
