/*
 * fuzz_url: the HTTP calls the gateway clients build (src/gateway/gateway_toss.c,
 * gateway_stripe.c through gateway_internal.h): every URL, body and header
 * for an arbitrary payment key and request id.
 *
 * Input: up to five fields separated by NUL bytes:
 *
 *     BASE_URL \0 PAYMENT_KEY \0 REQUEST_ID \0 IDEMPOTENCY_KEY \0 REASON
 *
 * A BASE_URL that a config could not hold (not http(s)://, a byte outside
 * printable ASCII, a query or fragment) is replaced by Toss's; trailing
 * slashes go as gateway_client_new() drops them. Missing fields are empty;
 * an empty IDEMPOTENCY_KEY or REASON is none. Properties, for the Toss
 * cancel and inquiry and the Stripe refund, PaymentIntent and refund list:
 * - every call builds for an ordinary key (key_ordinary()); a builder may
 *   refuse an empty key, "." or "..", a control character or invalid UTF-8
 *   (and Toss a reason that is no UTF-8), saying why and keeping nothing;
 * - the URL is BASE + the call's path + the escaped key (+ its fixed
 *   suffix), the key's segment holds no byte that ends or leaves it ('/',
 *   '?', '#', a dot segment) and unescapes to the key exactly;
 * - no URL, body or header holds a raw control character (headers: for a
 *   key gateway_refund_start() lets through);
 * - the bodies carry the request: Toss's JSON cancelReason and
 *   cancelAmount, Stripe's form fields, each unescaping to what was given;
 * - no crash, leak or undefined behaviour.
 */
#include "fuzz.h"

#include <stdbool.h>

#include <curl/curl.h>
#include <jansson.h>

#include "gateway/gateway.h"
#include "gateway/gateway_internal.h"

#define DEFAULT_BASE "https://api.tosspayments.com"
#define AMOUNT       15000

static CURL *esc;
static char *toss_auth, *stripe_auth;

static void cleanup(void)
{
    curl_easy_cleanup(esc);
    free(toss_auth);
    free(stripe_auth);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (esc == NULL) {
        esc = curl_easy_init();
        toss_auth = gateway_toss_auth_header("test_sk_fuzz");
        stripe_auth = gateway_stripe_auth_header("sk_test_fuzz");
        FUZZ_CHECK(esc != NULL && toss_auth != NULL && stripe_auth != NULL, "set-up");
        atexit(cleanup);
    }
    return 0;
}

struct input {
    char *fields[5]; /* base, payment key, request id, idempotency key, reason; owned */
    const char *base;
    struct refund_request req;
};

static bool base_usable(const char *s)
{
    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '?' || *p == '#')
            return false;
    return true;
}

static void parse_input(const uint8_t *data, size_t size, struct input *in)
{
    size_t start = 0, f = 0;

    memset(in, 0, sizeof(*in));
    for (size_t i = 0; i <= size && f < 5; i++) {
        if (i == size || data[i] == '\0') {
            in->fields[f++] = fuzz_strndup(data + start, i - start);
            start = i + 1;
        }
    }
    for (; f < 5; f++)
        in->fields[f] = fuzz_strndup(NULL, 0);
    if (!base_usable(in->fields[0])) {
        free(in->fields[0]);
        in->fields[0] = fuzz_strndup((const uint8_t *)DEFAULT_BASE, strlen(DEFAULT_BASE));
    }
    size_t len = strlen(in->fields[0]);
    while (len > 0 && in->fields[0][len - 1] == '/')
        in->fields[0][--len] = '\0';
    in->base = in->fields[0];
    in->req.payment_key = in->fields[1];
    in->req.request_id = in->fields[2];
    in->req.idempotency_key = in->fields[3][0] != '\0' ? in->fields[3] : NULL;
    in->req.reason = in->fields[4][0] != '\0' ? in->fields[4] : NULL;
    in->req.amount = AMOUNT;
    in->req.currency = "KRW";
}

static bool has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

/* Do the len bytes at s unescape to exactly want? */
static bool unescapes_to(const char *s, size_t len, const char *want)
{
    int n = 0;
    if (len == 0) /* curl_easy_unescape() would take strlen(s) */
        return want[0] == '\0';
    char *raw = curl_easy_unescape(esc, s, (int)len, &n);
    FUZZ_CHECK(raw != NULL, "could not unescape");
    bool same = (size_t)n == strlen(want) && memcmp(raw, want, (size_t)n) == 0;
    curl_free(raw);
    return same;
}

/* url must be base + path + escaped key + suffix. */
static void check_url(const char *what, const char *url, const char *base, const char *path,
                      const char *key, const char *suffix)
{
    size_t blen = strlen(base), plen = strlen(path), slen = strlen(suffix), ulen = strlen(url);

    FUZZ_CHECK(!has_control(url), "%s: a control character in the URL", what);
    FUZZ_CHECK(ulen >= blen + plen + slen && strncmp(url, base, blen) == 0 &&
                   strncmp(url + blen, path, plen) == 0 && strcmp(url + ulen - slen, suffix) == 0,
               "%s: URL \"%s\" is not %s%s...%s", what, url, base, path, suffix);
    const char *seg = url + blen + plen;
    size_t seglen = ulen - blen - plen - slen;
    for (size_t i = 0; i < seglen; i++)
        FUZZ_CHECK(seg[i] != '/' && seg[i] != '?' && seg[i] != '#' && seg[i] != '&' &&
                       (unsigned char)seg[i] > ' ' && (unsigned char)seg[i] < 0x7f,
                   "%s: the key's segment of \"%s\" is not escaped", what, url);
    /* "." and ".." are removed from a path by libcurl and by servers: the
     * call would go to another resource. */
    FUZZ_CHECK(!(seglen == 1 && seg[0] == '.') && !(seglen == 2 && seg[0] == '.' && seg[1] == '.'),
               "%s: the key's segment of \"%s\" is a dot segment", what, url);
    FUZZ_CHECK(unescapes_to(seg, seglen, key), "%s: URL \"%s\" does not name the key", what, url);
}

/* The headers of a call: no control character when the keys are ones that
 * gateway_refund_start() accepts; the Idempotency-Key header, if any, is
 * the key. */
static void check_headers(const char *what, const struct gateway_call_spec *spec,
                          const struct refund_request *req, bool with_key)
{
    const char *key = req->idempotency_key != NULL ? req->idempotency_key : req->request_id;
    bool found = false;

    for (size_t i = 0; i < spec->nheaders; i++) {
        const char *h = spec->headers[i];
        if (!has_control(req->request_id) && !has_control(key))
            FUZZ_CHECK(!has_control(h), "%s: a control character in header %zu", what, i);
        if (strncmp(h, "Idempotency-Key: ", 17) == 0) {
            FUZZ_CHECK(strcmp(h + 17, key) == 0, "%s: Idempotency-Key is not the key", what);
            found = true;
        }
    }
    FUZZ_CHECK(found == with_key, "%s: Idempotency-Key %s", what, found ? "sent" : "missing");
    FUZZ_CHECK(spec->nheaders >= 1 &&
                   strncmp(spec->headers[spec->nheaders - 1], "Authorization: ", 15) == 0,
               "%s: no Authorization header", what);
}

static bool valid_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* A key any builder must take: what the contract allows (1-255 characters
 * of UTF-8) less what cannot be one URL path segment ("." and "..") and
 * control characters (C0, DEL, C1). A builder may refuse the others, or
 * build a URL that still names them. */
static bool key_ordinary(const char *s)
{
    if (s[0] == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || !valid_utf8(s))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0))
            return false;
    return true;
}

/* A refusal is allowed only when may_refuse; it says why and leaves
 * nothing behind. */
static void check_refusal(const char *what, const struct gateway_call_spec *spec, const char *err,
                          bool may_refuse)
{
    FUZZ_CHECK(may_refuse, "%s refused: %s", what, err);
    FUZZ_CHECK(err[0] != '\0' && spec->url == NULL && spec->nheaders == 0 && spec->body == NULL,
               "%s: a refusal without a reason, or with a spec left", what);
}

static void toss(const struct input *in)
{
    struct gateway_build_ctx ctx = {in->base, toss_auth, esc, NULL, NULL};
    struct gateway_call_spec spec;
    char err[256] = "";
    bool odd_key = !key_ordinary(in->req.payment_key);

    if (gateway_toss_build_refund(&ctx, &in->req, &spec, err, sizeof(err))) {
        check_url("toss cancel", spec.url, in->base, "/v1/payments/", in->req.payment_key,
                  "/cancel");
        check_headers("toss cancel", &spec, &in->req, true);
        FUZZ_CHECK(strcmp(spec.method, "POST") == 0 && spec.body != NULL &&
                       spec.body_len == strlen(spec.body),
                   "toss cancel: method or body");
        json_t *body = json_loads(spec.body, 0, NULL);
        const char *reason = json_string_value(json_object_get(body, "cancelReason"));
        FUZZ_CHECK(reason != NULL &&
                       strcmp(reason, in->req.reason != NULL ? in->req.reason : "") == 0 &&
                       json_integer_value(json_object_get(body, "cancelAmount")) == AMOUNT,
                   "toss cancel: body %s", spec.body);
        json_decref(body);
        gateway_call_spec_clear(&spec);
    } else {
        /* Also refused: a reason that is no UTF-8 cannot go into JSON. */
        check_refusal("toss cancel", &spec, err,
                      odd_key || (in->req.reason != NULL && !valid_utf8(in->req.reason)));
    }

    if (gateway_toss_build_inquiry(&ctx, in->req.payment_key, &spec, err, sizeof(err))) {
        check_url("toss inquiry", spec.url, in->base, "/v1/payments/", in->req.payment_key, "");
        check_headers("toss inquiry", &spec, &in->req, false);
        gateway_call_spec_clear(&spec);
    } else {
        check_refusal("toss inquiry", &spec, err, odd_key);
    }
}

/* Stripe's form body: name=value pairs, in this order, each unescaping to
 * what was given. */
static void check_form(const char *body, const struct refund_request *req)
{
    char amount[32];
    const char *want[4][2] = {{"payment_intent", req->payment_key},
                              {"amount", amount},
                              {"metadata[requestId]", req->request_id},
                              {"metadata[cancel_reason]", req->reason}};
    size_t nwant = req->reason != NULL ? 4 : 3, n = 0;
    const char *p = body;

    snprintf(amount, sizeof(amount), "%d", AMOUNT);
    FUZZ_CHECK(!has_control(body), "stripe refund: a control character in the body");
    while (*p != '\0') {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        FUZZ_CHECK(eq != NULL && n < nwant, "stripe refund: body \"%s\"", body);
        FUZZ_CHECK(unescapes_to(p, (size_t)(eq - p), want[n][0]) &&
                       unescapes_to(eq + 1, len - (size_t)(eq + 1 - p), want[n][1]),
                   "stripe refund: field %zu of \"%s\" is not %s", n, body, want[n][0]);
        n++;
        p += len + (p[len] == '&');
    }
    FUZZ_CHECK(n == nwant, "stripe refund: %zu fields in \"%s\"", n, body);
}

static void stripe(const struct input *in)
{
    struct gateway_build_ctx ctx = {in->base, stripe_auth, esc, NULL, NULL};
    struct gateway_call_spec spec;
    char err[256] = "";
    bool odd_key = !key_ordinary(in->req.payment_key);

    if (gateway_stripe_build_refund(&ctx, &in->req, &spec, err, sizeof(err))) {
        FUZZ_CHECK(strncmp(spec.url, in->base, strlen(in->base)) == 0 &&
                       strcmp(spec.url + strlen(in->base), "/v1/refunds") == 0,
                   "stripe refund: URL \"%s\"", spec.url);
        check_headers("stripe refund", &spec, &in->req, true);
        FUZZ_CHECK(spec.body != NULL && spec.body_len == strlen(spec.body), "stripe refund: body");
        check_form(spec.body, &in->req);
        gateway_call_spec_clear(&spec);
    } else {
        check_refusal("stripe refund", &spec, err, odd_key);
    }

    if (gateway_stripe_build_payment_intent(&ctx, in->req.payment_key, &spec, err, sizeof(err))) {
        check_url("stripe payment intent", spec.url, in->base, "/v1/payment_intents/",
                  in->req.payment_key, "");
        check_headers("stripe payment intent", &spec, &in->req, false);
        gateway_call_spec_clear(&spec);
    } else {
        check_refusal("stripe payment intent", &spec, err, odd_key);
    }

    if (gateway_stripe_build_refund_list(&ctx, in->req.payment_key, &spec, err, sizeof(err))) {
        check_url("stripe refund list", spec.url, in->base,
                  "/v1/refunds?payment_intent=", in->req.payment_key, "&limit=100");
        check_headers("stripe refund list", &spec, &in->req, false);
        gateway_call_spec_clear(&spec);
    } else {
        check_refusal("stripe refund list", &spec, err, odd_key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in;

    parse_input(data, size, &in);
    toss(&in);
    stripe(&in);
    for (size_t i = 0; i < 5; i++)
        free(in.fields[i]);
    return 0;
}
