/*
 * webhook_delivery and webhook_store's pure rules: which gateway's keys
 * verify a delivery, what a refund notification does to its request, and
 * what a request's notifications say; and the receiver's answers that need
 * no database (every refusal).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_base.h"
#include "store/webhook_store.h"
#include "webhook/webhook_delivery.h"
#include "webhook/webhook_receiver.h"

#define KEY_A  "AA00000000000000000000000000000000000000000000000000000000000001"
#define KEY_A2 "AA00000000000000000000000000000000000000000000000000000000000002"
#define KEY_B  "BB00000000000000000000000000000000000000000000000000000000000001"
#define KEY_X  "FF00000000000000000000000000000000000000000000000000000000000001"

/* Two gateways: toss with the keys A (current) and A2 (previous) and Basic
 * credentials, stripe with B. */
static struct config *two_gateways(void)
{
    char err[512];
    struct config *cfg =
        config_load_string("t.yaml",
                           BASE "    webhook_hmac_keys: [" KEY_A ", " KEY_A2 "]\n"
                                "    webhook_basic_auth: adyen:s3cret-pass\n"
                                "  stripe:\n    kind: stripe\n    secret_key: sk2\n"
                                "    webhook_hmac_keys: [" KEY_B "]\n"
                                "webhooks:\n  listen: 127.0.0.1:0\n",
                           err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    return cfg;
}

/* One REFUND item signed with hex_key (NULL: no signature), as JSON. */
static char *signed_item(const char *hex_key, const char *psp, const char *success)
{
    struct adyen_hmac_fields f = {psp, "PAY1", "Shop", "r-1", "2500", "EUR", "REFUND", success};
    char sig[ADYEN_HMAC_SIG_SIZE] = "";
    unsigned char key[ADYEN_HMAC_KEY_LEN];
    if (hex_key != NULL) {
        cr_assert(adyen_hmac_key_decode(hex_key, key));
        cr_assert(adyen_hmac_sign(key, &f, sig));
    }
    char *out = NULL;
    cr_assert(asprintf(&out,
                       "{\"NotificationRequestItem\":{\"pspReference\":\"%s\","
                       "\"originalReference\":\"PAY1\",\"merchantAccountCode\":\"Shop\","
                       "\"merchantReference\":\"r-1\",\"amount\":{\"value\":2500,\"currency\":"
                       "\"EUR\"},\"eventCode\":\"REFUND\",\"success\":\"%s\"%s%s%s}}",
                       psp, success, hex_key ? ",\"additionalData\":{\"hmacSignature\":\"" : "",
                       sig, hex_key ? "\"}" : "") > 0);
    return out;
}

static char *delivery(const char *a, const char *b)
{
    char *out = NULL;
    cr_assert(asprintf(&out, "{\"live\":\"false\",\"notificationItems\":[%s%s%s]}", a, b ? "," : "",
                       b ? b : "") > 0);
    return out;
}

/* The gateway index whose keys verify items signed with k1 (and k2). */
static int verify(struct config *cfg, const char *k1, const char *k2, size_t *bad)
{
    struct webhook_keys gws[4];
    size_t n = webhook_keys_from_config(cfg, gws, 4);
    cr_assert_eq(n, 2);
    char *i1 = signed_item(k1, "RF1", "true"), *i2 = k2 ? signed_item(k2, "RF2", "false") : NULL;
    char *body = delivery(i1, i2), err[256];
    struct adyen_delivery d;
    cr_assert(adyen_delivery_parse(body, strlen(body), &d, err, sizeof(err)), "%s", err);
    int g = webhook_keys_verify(gws, n, &d, bad);
    adyen_delivery_clear(&d);
    webhook_keys_wipe(gws, n);
    free(i1);
    free(i2);
    free(body);
    return g;
}

Test(webhook_delivery, the_gateway_is_the_one_whose_keys_verify_every_item)
{
    struct config *cfg = two_gateways();
    size_t bad = 99;
    cr_expect_eq(verify(cfg, KEY_A, NULL, &bad), 0);
    cr_expect_eq(verify(cfg, KEY_B, NULL, &bad), 1);
    /* The previous key still verifies during a rotation, beside the current. */
    cr_expect_eq(verify(cfg, KEY_A2, NULL, &bad), 0);
    cr_expect_eq(verify(cfg, KEY_A, KEY_A2, &bad), 0);
    config_free(cfg);
}

Test(webhook_delivery, one_forged_item_rejects_the_delivery)
{
    struct config *cfg = two_gateways();
    size_t bad = 99;
    cr_expect_eq(verify(cfg, KEY_X, NULL, &bad), -1);
    cr_expect_eq(bad, 0);
    cr_expect_eq(verify(cfg, KEY_A, KEY_X, &bad), -1);
    cr_expect_eq(bad, 1, "the second item is the forged one");
    cr_expect_eq(verify(cfg, NULL, NULL, &bad), -1, "an item without a signature");
    /* Each item genuine, but for two gateways: not one delivery of either. */
    cr_expect_eq(verify(cfg, KEY_A, KEY_B, &bad), -1);
    config_free(cfg);
}

/* Arrays, not pointers: Criterion runs each parameter in a new process. */
struct effect_case {
    char event[24];
    bool success;
    char status[24];
    int64_t next_ms;
    enum webhook_effect want;
};

#define NOW 1000000
static struct effect_case effect_cases[] = {
    {"REFUND", true, "PENDING", NOW + 60000, WEBHOOK_EFFECT_WAKE},
    {"REFUND", true, "SCHEDULED", NOW + 1, WEBHOOK_EFFECT_WAKE},
    {"REFUND_FAILED", true, "PENDING", NOW + 60000, WEBHOOK_EFFECT_WAKE},
    {"REFUNDED_REVERSED", true, "SCHEDULED", NOW + 60000, WEBHOOK_EFFECT_WAKE},
    /* Already due: its trigger is on its way, another would be a duplicate. */
    {"REFUND", true, "PENDING", NOW, WEBHOOK_EFFECT_NONE},
    {"REFUND", true, "SCHEDULED", NOW - 5000, WEBHOOK_EFFECT_NONE},
    {"REFUND", true, "IN_FLIGHT", NOW + 60000, WEBHOOK_EFFECT_NONE},
    {"REFUND", true, "SUCCEEDED", 0, WEBHOOK_EFFECT_NONE},
    {"REFUND_FAILED", true, "SUCCEEDED", 0, WEBHOOK_EFFECT_FAILED_AFTER},
    {"REFUNDED_REVERSED", true, "SUCCEEDED", 0, WEBHOOK_EFFECT_REVERSED},
    {"REFUND_FAILED", true, "FAILED", 0, WEBHOOK_EFFECT_NONE},
    {"REFUND_FAILED", true, "MANUALLY_RESOLVED", 0, WEBHOOK_EFFECT_NONE},
    {"AUTHORISATION", true, "PENDING", NOW + 60000, WEBHOOK_EFFECT_NONE},
    {"CAPTURE", true, "SUCCEEDED", 0, WEBHOOK_EFFECT_NONE},
    /* A refund after the request ended without one: a person sets it right. */
    {"REFUND", true, "EXHAUSTED", 0, WEBHOOK_EFFECT_AFTER_FINAL},
    {"REFUND", true, "FAILED", 0, WEBHOOK_EFFECT_AFTER_FINAL},
    {"REFUND", false, "EXHAUSTED", 0, WEBHOOK_EFFECT_NONE},
    {"REFUND", true, "MANUALLY_RESOLVED", 0, WEBHOOK_EFFECT_NONE},
};

ParameterizedTestParameters(webhook_delivery, effect_on_the_request)
{
    return cr_make_param_array(struct effect_case, effect_cases,
                               sizeof(effect_cases) / sizeof(effect_cases[0]));
}

ParameterizedTest(struct effect_case *c, webhook_delivery, effect_on_the_request)
{
    cr_expect_eq(webhook_effect_of(c->event, c->success, c->status, c->next_ms, NOW), c->want,
                 "%s on %s due at %lld", c->event, c->status, (long long)c->next_ms);
}

Test(webhook_delivery, what_the_notifications_of_a_request_say)
{
    const struct webhook_fact ok = {"REFUND", true}, refused = {"REFUND", false},
                              failed = {"REFUND_FAILED", true},
                              reversed = {"REFUNDED_REVERSED", true},
                              other = {"AUTHORISATION", true};
    size_t at = 99;

    cr_expect_eq(webhook_refund_decide(NULL, 0, &at), WEBHOOK_NONE);
    cr_expect_eq(at, 0);
    cr_expect_eq(webhook_refund_decide((struct webhook_fact[]){other}, 1, NULL), WEBHOOK_NONE);
    cr_expect_eq(webhook_refund_decide((struct webhook_fact[]){ok}, 1, NULL), WEBHOOK_REFUNDED);
    cr_expect_eq(webhook_refund_decide((struct webhook_fact[]){refused}, 1, NULL), WEBHOOK_REFUSED);
    /* Money that moved once counts, whatever else was refused. */
    cr_expect_eq(webhook_refund_decide((struct webhook_fact[]){refused, ok}, 2, &at),
                 WEBHOOK_REFUNDED);
    cr_expect_eq(at, 1);
    /* A failure after the success wins, in either order of arrival. */
    cr_expect_eq(webhook_refund_decide((struct webhook_fact[]){ok, failed}, 2, NULL),
                 WEBHOOK_FAILED_AFTER);
    cr_expect_eq(webhook_refund_decide((struct webhook_fact[]){failed, ok}, 2, &at),
                 WEBHOOK_FAILED_AFTER);
    cr_expect_eq(at, 0);
    cr_expect_eq(webhook_refund_decide((struct webhook_fact[]){ok, failed, reversed}, 3, NULL),
                 WEBHOOK_REVERSED);
    cr_expect_str_eq(webhook_refund_result_name(WEBHOOK_FAILED_AFTER), "FAILED_AFTER");
}

/* ---- the receiver's refusals (none reaches the database) ---- */

static void handle(struct webhook_receiver *r, const char *auth, const char *body,
                   struct webhook_answer *a)
{
    memset(a, 0, sizeof(*a));
    webhook_receiver_handle(r, auth, body, strlen(body), a);
}

Test(webhook_delivery, receiver_refusals)
{
    struct config *cfg = two_gateways();
    char err[256];
    /* db NULL: a refusal must be decided before the database is touched. */
    struct webhook_receiver *r = webhook_receiver_new(cfg, NULL, NULL, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    struct webhook_answer a;

    handle(r, NULL, "not json", &a);
    cr_expect_eq(a.status, 400);
    cr_expect_str_eq(a.reason, "malformed");

    char *forged = signed_item(KEY_X, "RF1", "true"), *body = delivery(forged, NULL);
    handle(r, NULL, body, &a);
    cr_expect_eq(a.status, 401);
    cr_expect_str_eq(a.reason, "hmac");
    free(forged);
    free(body);

    /* toss's delivery without, then with wrong, Basic credentials. */
    char *good = signed_item(KEY_A, "RF1", "true");
    body = delivery(good, NULL);
    handle(r, NULL, body, &a);
    cr_expect_eq(a.status, 401);
    cr_expect_str_eq(a.reason, "basic_auth");
    handle(r, "Basic YWR5ZW46d3Jvbmc=", body, &a); /* adyen:wrong */
    cr_expect_eq(a.status, 401);
    cr_expect_str_eq(a.reason, "basic_auth");
    free(good);
    free(body);
    webhook_receiver_free(r);
    config_free(cfg);
}

Test(webhook_delivery, receiver_needs_a_listen_address)
{
    char err[256];
    struct config *cfg = config_load_string("t.yaml", BASE, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_null(webhook_receiver_new(cfg, NULL, NULL, err, sizeof(err)));
    cr_expect_not_null(strstr(err, "webhooks.listen is not set"), "%s", err);
    config_free(cfg);
}
