/*
 * gateway_url: a payment key from an event never moves a gateway call out
 * of its path. The issue: "." and ".." were escaped as themselves and
 * libcurl collapsed them, so the refund POST, with our credentials, went to
 * {base}/v1/cancel or {base}/v1/payments/cancel.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gateway/gateway_internal.h"

#define BASE "http://127.0.0.1:1"

static struct gateway_build_ctx ctx = {BASE, "Authorization: Basic eDo=", NULL, NULL, NULL};

static void refund_of(const char *payment_key, struct refund_request *req)
{
    memset(req, 0, sizeof(*req));
    req->request_id = "req-1";
    req->payment_key = payment_key;
    req->amount = 1000;
    req->currency = "KRW";
    req->reason = "r";
}

Test(gateway_url, dot_segments_are_never_built)
{
    static const char *const keys[] = {".", "..", "", "pk\r\nHost: evil", "pk\x01"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        struct refund_request req;
        struct gateway_call_spec spec;
        char err[256] = "";
        refund_of(keys[i], &req);
        cr_expect_not(gateway_toss_build_refund(&ctx, &req, &spec, err, sizeof(err)),
                      "toss refund built for key %zu: %s", i, spec.url);
        cr_expect_null(spec.url);
        cr_expect_not_null(strstr(err, "payment key"), "%s", err);
        cr_expect_not(gateway_toss_build_inquiry(&ctx, keys[i], &spec, err, sizeof(err)));
        cr_expect_not(gateway_stripe_build_payment_intent(&ctx, keys[i], &spec, err, sizeof(err)));
        cr_expect_not(gateway_stripe_build_refund_list(&ctx, keys[i], &spec, err, sizeof(err)));
        cr_expect_not(gateway_payment_key_usable(keys[i], err, sizeof(err)));
    }
}

Test(gateway_url, a_key_is_one_encoded_segment)
{
    struct refund_request req;
    struct gateway_call_spec spec;
    char err[256];

    refund_of("../a/b?c#d%e", &req);
    cr_assert(gateway_toss_build_refund(&ctx, &req, &spec, err, sizeof(err)), "%s", err);
    cr_expect_str_eq(spec.url, BASE "/v1/payments/..%2Fa%2Fb%3Fc%23d%25e/cancel");
    cr_expect_str_eq(spec.path_prefix, "/v1/payments/");
    cr_expect(gateway_url_check(spec.url, BASE, spec.path_prefix, err, sizeof(err)), "%s", err);
    gateway_call_spec_clear(&spec);

    cr_assert(gateway_stripe_build_refund_list(&ctx, "pi_1&limit=1", &spec, err, sizeof(err)));
    cr_expect_str_eq(spec.url, BASE "/v1/refunds?payment_intent=pi_1%26limit%3D1&limit=100");
    cr_expect(gateway_url_check(spec.url, BASE, spec.path_prefix, err, sizeof(err)), "%s", err);
    gateway_call_spec_clear(&spec);

    char *seg = gateway_path_segment("결제 key~._-", err, sizeof(err));
    cr_assert_not_null(seg, "%s", err);
    cr_expect_str_eq(seg, "%EA%B2%B0%EC%A0%9C%20key~._-");
    free(seg);
    cr_expect(gateway_payment_key_usable("...", err, sizeof(err)), "three dots are a name");
}

/* The last guard before sending, whatever a builder did: the URL as libcurl
 * will send it must stay under base + prefix. */
Test(gateway_url, the_url_as_sent_must_stay_under_its_prefix)
{
    char err[256];
    cr_expect(gateway_url_check(BASE "/v1/payments/pk_1/cancel", BASE, "/v1/payments/", err,
                                sizeof(err)));
    cr_expect(gateway_url_check(BASE "/v1/refunds", BASE, "/v1/refunds", err, sizeof(err)));
    /* what "." and ".." did before the fix */
    cr_expect_not(
        gateway_url_check(BASE "/v1/payments/../cancel", BASE, "/v1/payments/", err, sizeof(err)));
    cr_expect_not_null(strstr(err, "cannot send"), "%s", err);
    cr_expect_not(
        gateway_url_check(BASE "/v1/payments/./cancel", BASE, "/v1/payments/", err, sizeof(err)));
    cr_expect_not(gateway_url_check(BASE "/v1/payments/%2e%2e/cancel", BASE, "/v1/payments/", err,
                                    sizeof(err)),
                  "encoded dot-segments are dot-segments too (RFC 3986 6.2.2.2)");
    cr_expect_not(gateway_url_check("http://evil.example/v1/payments/x", BASE, "/v1/payments/", err,
                                    sizeof(err)));
    cr_expect_not(
        gateway_url_check(BASE "/v2/payments/x", BASE, "/v1/payments/", err, sizeof(err)));
    /* A scheme libcurl does not speak passes here: the transfer then fails
     * as INVALID_URL (a configuration fault), with nothing sent. */
    cr_expect(gateway_url_check("htp://127.0.0.1:1/v1/payments/x", "htp://127.0.0.1:1",
                                "/v1/payments/", err, sizeof(err)),
              "%s", err);
    /* a base with a path of its own keeps it */
    cr_expect(gateway_url_check(BASE "/toss/v1/payments/pk", BASE "/toss", "/v1/payments/", err,
                                sizeof(err)));
    cr_expect_not(gateway_url_check(BASE "/toss/v1/payments/../../x", BASE "/toss", "/v1/payments/",
                                    err, sizeof(err)));
}
