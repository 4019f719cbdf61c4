/*
 * gateway_internal: what gateway.c shares with the per-kind files
 * (gateway_toss.c, gateway_stripe.c). Not for use outside src/gateway*.c.
 */
#ifndef CR_GATEWAY_INTERNAL_H
#define CR_GATEWAY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "gateway/gateway.h"

#define GATEWAY_MAX_HEADERS 4

/* One HTTP call to make, fully built; every pointer owned by the spec. */
struct gateway_call_spec {
    const char *method; /* static string */
    char *url;
    /* What url must start with after the base URL, checked (as libcurl will
     * send it) before the call is made: "/v1/payments/", "/v1/refunds"... */
    const char *path_prefix;            /* static string */
    char *headers[GATEWAY_MAX_HEADERS]; /* "Name: value" */
    size_t nheaders;
    char *body; /* NULL for GET */
    size_t body_len;
};

struct gateway_driver;

/* What a builder needs from the client; all borrowed. */
struct gateway_build_ctx {
    const char *base_url;                /* without a trailing slash */
    const char *auth_header;             /* "Authorization: ..." (secret inside) */
    CURL *esc;                           /* handle for curl_easy_escape */
    const struct config_gateway *cfg;    /* accounts (store_id, cid, merchant_account) */
    const struct gateway_driver *driver; /* key rules */
};

void gateway_call_spec_clear(struct gateway_call_spec *spec);

/* s (a payment key from an event) percent-encoded as one URL path segment:
 * every byte but RFC 3986's unreserved characters as %XX. Refuses what
 * bounds_path_segment_ok() refuses ("", ".", "..", control characters):
 * NULL with err. malloc'd. */
char *gateway_path_segment(const char *s, char *err, size_t errlen);

/* Is url, the way libcurl will send it (dot-segments removed), still under
 * base_url + prefix? False with err ("cannot send: ...") if not: the call
 * must not be made, whatever the builders did. */
bool gateway_url_check(const char *url, const char *base_url, const char *prefix, char *err,
                       size_t errlen);

/* Append a copy of "name: value" to spec's headers; false when out of memory
 * or full. */
bool gateway_call_spec_add_header(struct gateway_call_spec *spec, const char *name,
                                  const char *value);

/* The header line prefix followed by secret ("Authorization: Bearer sk_..."),
 * malloc'd, or NULL when out of memory. Holds the secret. */
char *gateway_secret_header(const char *prefix, const char *secret);

/* The Authorization header line for a secret key, malloc'd, or NULL. */
char *gateway_toss_auth_header(const char *secret);
char *gateway_stripe_auth_header(const char *secret);

/* Build a refund call (Toss cancel / Stripe refund) into spec (cleared on
 * failure). */
bool gateway_toss_build_refund(const struct gateway_build_ctx *ctx,
                               const struct refund_request *req, struct gateway_call_spec *spec,
                               char *err, size_t errlen);
bool gateway_stripe_build_refund(const struct gateway_build_ctx *ctx,
                                 const struct refund_request *req, struct gateway_call_spec *spec,
                                 char *err, size_t errlen);

/* Toss payment inquiry: GET {base}/v1/payments/{paymentKey}. */
bool gateway_toss_build_inquiry(const struct gateway_build_ctx *ctx, const char *payment_key,
                                struct gateway_call_spec *spec, char *err, size_t errlen);

/* The headers of a refund call: Content-Type content_type, the request's
 * Idempotency-Key (its requestId when it has none; quoted when the driver
 * says so; none for a driver without keys) and ctx's Authorization. False
 * when out of memory (the caller clears spec). */
bool gateway_call_spec_refund_headers(struct gateway_call_spec *spec,
                                      const struct gateway_build_ctx *ctx, const char *content_type,
                                      const struct refund_request *req)
    __attribute__((warn_unused_result));

/* Finish a JSON refund call whose spec->url was built: body (borrowed) as
 * spec's body, then the refund headers (gateway_call_spec_refund_headers).
 * False when out of memory (the caller clears spec). */
bool gateway_call_spec_json_refund(struct gateway_call_spec *spec,
                                   const struct gateway_build_ctx *ctx, const json_t *body,
                                   const struct refund_request *req)
    __attribute__((warn_unused_result));

/* Finish a GET whose spec->url was built (NULL when that ran out of memory):
 * ctx's Authorization header as its one header. On false (out of memory),
 * err = "could not build <what>: out of memory" and spec is cleared. */
bool gateway_call_spec_finish_get(struct gateway_call_spec *spec,
                                  const struct gateway_build_ctx *ctx, const char *what, char *err,
                                  size_t errlen) __attribute__((warn_unused_result));

/* The code and message of a JSON error body: body's "code" and "message", or
 * those of its member `object` when not NULL; when the code is missing or
 * empty, the member `fallback` (when not NULL) stands for it. Both "" when
 * body is not such JSON. */
void gateway_error_fields(const char *body, const char *object, const char *fallback, char *code,
                          size_t codelen, char *message, size_t msglen);

/* Read the error code and message of a non-2xx answer body into code and
 * message ("" when absent). */
void gateway_toss_parse_error(const char *body, char *code, size_t codelen, char *message,
                              size_t msglen);
void gateway_stripe_parse_error(const char *body, char *code, size_t codelen, char *message,
                                size_t msglen);

/* An amount from a gateway's JSON: an integer, or a real that is a whole
 * number within +-2^53; anything else (absent, text, 1e300) is -1, so a
 * hostile number never reaches a cast's undefined behaviour. */
static inline int64_t json_number_i64(const json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(int64_t)d)
            return (int64_t)d;
    }
    return -1;
}

/* s escaped as one URL path segment, malloc'd (free() it), or NULL when out
 * of memory. curl_easy_escape() keeps '.', so a key of "." or ".." would be
 * a dot segment, which libcurl and servers remove from the path: the call
 * would go to another resource (POST /v1/payments/./cancel is
 * /v1/payments/cancel). Those two are written with %2E instead. */
static inline char *gateway_escape_segment(CURL *esc, const char *s)
{
    if (strcmp(s, ".") == 0)
        return strdup("%2E");
    if (strcmp(s, "..") == 0)
        return strdup("%2E%2E");
    char *e = curl_easy_escape(esc, s, 0);
    char *copy = e != NULL ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

/* The body shape of a 2xx refund answer, as a gateway_table code: Toss
 * "payment" (a cancel of our amount, done), "payment.cancel_pending";
 * Stripe "refund.<status>" for a refund object of our amount and currency;
 * "" when the body does not show our refund (why says what is wrong). */
const char *gateway_toss_refund_shape(const char *body, const struct refund_request *req, char *why,
                                      size_t whylen);
const char *gateway_stripe_refund_shape(const char *body, const struct refund_request *req,
                                        char *why, size_t whylen);

/* Stripe inquiry calls: GET {base}/v1/payment_intents/{id} and
 * GET {base}/v1/refunds?payment_intent={id}&limit=100. */
bool gateway_stripe_build_payment_intent(const struct gateway_build_ctx *ctx,
                                         const char *payment_intent, struct gateway_call_spec *spec,
                                         char *err, size_t errlen);
bool gateway_stripe_build_refund_list(const struct gateway_build_ctx *ctx,
                                      const char *payment_intent, struct gateway_call_spec *spec,
                                      char *err, size_t errlen);

#endif
