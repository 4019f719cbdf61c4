/*
 * gateway_stripe: the Stripe refunds API.
 *
 * POST {base}/v1/refunds with Bearer auth, Idempotency-Key and a form body
 * payment_intent=...&amount=... (amount only when partial). Errors are
 * {"error": {"type", "code", "message"}}.
 *
 * The cancel reason goes as metadata[cancel_reason]: Stripe's own `reason`
 * field only takes duplicate / fraudulent / requested_by_customer, and a
 * free-text reason there would make every refund fail with a 400.
 */
#include "gateway_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

char *gateway_stripe_auth_header(const char *secret)
{
    size_t n = strlen("Authorization: Bearer ") + strlen(secret) + 1;
    char *line = malloc(n);
    if (line != NULL)
        snprintf(line, n, "Authorization: Bearer %s", secret);
    return line;
}

/* Append "&name=escaped(value)" (no "&" when buf is empty) to the growing
 * buffer *buf of *len bytes. */
static bool form_add(CURL *esc, char **buf, size_t *len, const char *name, const char *value)
{
    char *ev = curl_easy_escape(esc, value, 0);
    char *en = curl_easy_escape(esc, name, 0);
    bool ok = false;
    if (ev == NULL || en == NULL)
        goto out;
    size_t add = (*len > 0 ? 1 : 0) + strlen(en) + 1 + strlen(ev);
    char *nb = realloc(*buf, *len + add + 1);
    if (nb == NULL)
        goto out;
    snprintf(nb + *len, add + 1, "%s%s=%s", *len > 0 ? "&" : "", en, ev);
    *buf = nb;
    *len += add;
    ok = true;
out:
    curl_free(ev);
    curl_free(en);
    return ok;
}

bool gateway_stripe_build_refund(const struct gateway_build_ctx *ctx,
                                 const struct refund_request *req, struct gateway_call_spec *spec,
                                 char *err, size_t errlen)
{
    memset(spec, 0, sizeof(*spec));
    spec->method = "POST";
    size_t n = strlen(ctx->base_url) + strlen("/v1/refunds") + 1;
    spec->url = malloc(n);
    if (spec->url == NULL)
        goto oom;
    snprintf(spec->url, n, "%s/v1/refunds", ctx->base_url);

    char amount[32];
    snprintf(amount, sizeof(amount), "%lld", (long long)req->amount);
    if (!form_add(ctx->esc, &spec->body, &spec->body_len, "payment_intent", req->payment_key))
        goto oom;
    if (req->partial && !form_add(ctx->esc, &spec->body, &spec->body_len, "amount", amount))
        goto oom;
    if (req->reason != NULL && req->reason[0] != '\0' &&
        !form_add(ctx->esc, &spec->body, &spec->body_len, "metadata[cancel_reason]", req->reason))
        goto oom;

    if (!gateway_call_spec_add_header(spec, "Content-Type", "application/x-www-form-urlencoded") ||
        !gateway_call_spec_add_header(spec, "Idempotency-Key", req->request_id))
        goto oom;
    spec->headers[spec->nheaders] = strdup(ctx->auth_header);
    if (spec->headers[spec->nheaders] == NULL)
        goto oom;
    spec->nheaders++;
    return true;
oom:
    snprintf(err, errlen, "could not build stripe refund request: out of memory");
    gateway_call_spec_clear(spec);
    return false;
}

void gateway_stripe_parse_error(const char *body, char *code, size_t codelen, char *message,
                                size_t msglen)
{
    code[0] = '\0';
    message[0] = '\0';
    if (body == NULL || body[0] == '\0')
        return;
    json_t *root = json_loads(body, 0, NULL);
    if (root == NULL)
        return;
    json_t *e = json_object_get(root, "error");
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *t = json_string_value(json_object_get(e, "type"));
    const char *m = json_string_value(json_object_get(e, "message"));
    /* Some errors (a bad key, an idempotency mismatch) carry only a type. */
    if (c != NULL && c[0] != '\0')
        snprintf(code, codelen, "%s", c);
    else if (t != NULL)
        snprintf(code, codelen, "%s", t);
    if (m != NULL)
        snprintf(message, msglen, "%s", m);
    json_decref(root);
}

enum gateway_verdict gateway_stripe_classify_status(long status, const char *code)
{
    if (status == 401 || status == 403)
        return GATEWAY_CONFIG_FAULT;
    if (status == 429 || status >= 500)
        return GATEWAY_RETRYABLE;
    if (strcmp(code, "charge_already_refunded") == 0)
        return GATEWAY_ALREADY_REFUNDED;
    /* Another request with this Idempotency-Key is still running, or Stripe
     * could not lock the object in time: the outcome is not known yet. */
    if (status == 409 &&
        (strcmp(code, "idempotency_key_in_use") == 0 || strcmp(code, "lock_timeout") == 0))
        return GATEWAY_RETRYABLE;
    if (status >= 300 && status < 400)
        return GATEWAY_CONFIG_FAULT; /* a redirect: base_url points at the wrong place */
    return GATEWAY_PERMANENT;
}
