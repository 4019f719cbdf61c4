/*
 * gateway_spec: building the HTTP calls of every driver: the call spec's
 * headers, the common headers of a refund (content type, Idempotency-Key by
 * the driver's rules, credentials) and of an inquiry, and the code and
 * message of a JSON error body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

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

bool gateway_call_spec_json_refund(struct gateway_call_spec *spec,
                                   const struct gateway_build_ctx *ctx, const json_t *body,
                                   const struct refund_request *req)
{
    spec->body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (spec->body == NULL)
        return false;
    spec->body_len = strlen(spec->body);
    return gateway_call_spec_refund_headers(spec, ctx, "application/json", req);
}

bool gateway_call_spec_refund_headers(struct gateway_call_spec *spec,
                                      const struct gateway_build_ctx *ctx, const char *content_type,
                                      const struct refund_request *req)
{
    const struct gateway_driver *drv = ctx->driver;
    const char *key = req->idempotency_key ? req->idempotency_key : req->request_id;
    char quoted[320];

    if (!gateway_call_spec_add_header(spec, "Content-Type", content_type))
        return false;
    if (drv == NULL || (drv->safety & GATEWAY_SAFETY_IDEMPOTENCY_KEY)) {
        if (drv != NULL && drv->key_quoted) {
            /* An RFC 8941 sf-string (PortOne). Our keys are requestIds
             * ([A-Za-z0-9._:-], cancel_event.h) and what gateway_key_format()
             * adds to them: no '"' or '\\' to escape. */
            snprintf(quoted, sizeof(quoted), "\"%s\"", key);
            key = quoted;
        }
        if (!gateway_call_spec_add_header(spec, "Idempotency-Key", key))
            return false;
    }
    spec->headers[spec->nheaders] = strdup(ctx->auth_header);
    if (spec->headers[spec->nheaders] == NULL)
        return false;
    spec->nheaders++;
    return true;
}

char *gateway_secret_header(const char *prefix, const char *secret)
{
    size_t n = strlen(prefix) + strlen(secret) + 1;
    char *line = malloc(n);
    if (line != NULL)
        snprintf(line, n, "%s%s", prefix, secret);
    return line;
}
