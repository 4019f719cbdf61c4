/*
 * config: webhooks: and the gateways' webhook keys (the webhook-receiver).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "base/redact.h"
#include "config/config.h"
#include "config_base.h"

#define KEY_A "AA00000000000000000000000000000000000000000000000000000000000001"
#define KEY_B "bb00000000000000000000000000000000000000000000000000000000000001"

Test(config_webhooks, defaults_none)
{
    char err[512];
    struct config *cfg = config_load_string("t.yaml", BASE, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_null(cfg->webhooks.listen);
    cr_expect_str_eq(cfg->webhooks.path, "/webhooks/adyen");
    cr_expect_eq(cfg->gateways[0].n_webhook_hmac_keys, 0);
    cr_expect_null(cfg->gateways[0].webhook_basic_auth);
    config_free(cfg);
}

Test(config_webhooks, every_key)
{
    char err[512];
    struct config *cfg =
        config_load_string("t.yaml",
                           BASE "    webhook_hmac_keys: [" KEY_A ", " KEY_B "]\n"
                                "    webhook_basic_auth: adyen:pa:ss\n"
                                "webhooks:\n  listen: 0.0.0.0:8443\n  path: /hooks/adyen-eu\n",
                           err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    const struct config_gateway *gw = config_gateway_find(cfg, "toss");
    cr_assert_eq(gw->n_webhook_hmac_keys, 2);
    cr_expect_str_eq(gw->webhook_hmac_keys[0], KEY_A);
    cr_expect_str_eq(gw->webhook_hmac_keys[1], KEY_B);
    cr_expect_str_eq(gw->webhook_basic_auth, "adyen:pa:ss");
    cr_expect_str_eq(cfg->webhooks.listen, "0.0.0.0:8443");
    cr_expect_str_eq(cfg->webhooks.path, "/hooks/adyen-eu");
    config_free(cfg);
}

/* Arrays, not pointers: Criterion runs each parameter in a new process. */
struct bad {
    char name[40];
    char yaml[512];
    char err[200];
};

/* BASE ends at line 8 (gateways.toss.secret_key). */
static struct bad bad_configs[] = {
    {"three keys", BASE "    webhook_hmac_keys: [" KEY_A ", " KEY_B ", " KEY_A "]\n",
     "t.yaml:9: gateways.toss.webhook_hmac_keys: at most 2 keys: the current one and, during a "
     "rotation, the previous one"},
    {"short key", BASE "    webhook_hmac_keys:\n      - " KEY_A "\n      - abc123\n",
     "t.yaml:11: gateways.toss.webhook_hmac_keys[1]: must be 64 hexadecimal characters (the HMAC "
     "key as the gateway shows it)"},
    {"not hex",
     BASE "    webhook_hmac_keys: [ZZ000000000000000000000000000000000000000000000000"
          "00000000000001]\n",
     "t.yaml:9: gateways.toss.webhook_hmac_keys[0]: must be 64 hexadecimal characters"},
    {"a key twice",
     BASE "    webhook_hmac_keys: [" KEY_A "]\n"
          "  stripe:\n    kind: stripe\n    secret_key: sk2\n"
          "    webhook_hmac_keys: [aa00000000000000000000000000000000000000000000"
          "000000000000000001]\n",
     "gateways.toss.webhook_hmac_keys[0]: the same key is configured twice: a key must identify "
     "one gateway"},
    {"empty key", BASE "    webhook_hmac_keys: [\"\"]\n",
     "t.yaml:9: gateways.toss.webhook_hmac_keys[0]: value must not be empty"},
    {"keys a string", BASE "    webhook_hmac_keys: " KEY_A "\n",
     "t.yaml:9: gateways.toss.webhook_hmac_keys: expected a list of strings, got a string"},
    {"basic auth without colon", BASE "    webhook_basic_auth: adyen\n",
     "t.yaml:9: gateways.toss.webhook_basic_auth: must be user:password with a non-empty user"},
    {"basic auth without user", BASE "    webhook_basic_auth: \":pw\"\n",
     "t.yaml:9: gateways.toss.webhook_basic_auth: must be user:password with a non-empty user"},
    {"listen without keys", BASE "webhooks:\n  listen: 127.0.0.1:8080\n",
     "t.yaml:10: webhooks.listen: no gateway has webhook_hmac_keys: the receiver could verify "
     "nothing"},
    {"bad listen", BASE "    webhook_hmac_keys: [" KEY_A "]\nwebhooks:\n  listen: 8080\n",
     "t.yaml:11: webhooks.listen: invalid listen address \"8080\": expected host:port"},
    {"relative path", BASE "webhooks:\n  path: webhooks\n",
     "t.yaml:10: webhooks.path: invalid path \"webhooks\": must start with / and hold no ?, # or "
     "space"},
    {"path with query", BASE "webhooks:\n  path: /w?x=1\n",
     "t.yaml:10: webhooks.path: invalid path"},
    {"unknown key", BASE "webhooks:\n  port: 8080\n", "t.yaml:10: webhooks.port: unknown key"},
};

ParameterizedTestParameters(config_webhooks, refused)
{
    return cr_make_param_array(struct bad, bad_configs,
                               sizeof(bad_configs) / sizeof(bad_configs[0]));
}

ParameterizedTest(struct bad *b, config_webhooks, refused)
{
    char err[768] = "";
    struct config *cfg = config_load_string("t.yaml", b->yaml, err, sizeof(err));
    cr_expect_null(cfg, "%s loaded", b->name);
    config_free(cfg);
    cr_expect_not_null(strstr(err, b->err), "%s:\n  got  %s\n  want %s", b->name, err, b->err);
    /* The keys are secrets: no error quotes one. */
    cr_expect_null(strstr(err, KEY_A), "%s: %s", b->name, err);
    cr_expect_null(strstr(err, "abc123"), "%s: %s", b->name, err);
    cr_expect_null(strstr(err, ":pw"), "%s: %s", b->name, err);
}

/* The keys and the Basic credentials are masked in whatever leaves the
 * process (logs, dead letters, /readyz): as written, and as the
 * Authorization header a proxy might log. */
Test(config_webhooks, secrets_are_masked)
{
    char err[512];
    struct config *cfg = config_load_string("t.yaml",
                                            BASE "    webhook_hmac_keys: [" KEY_A "]\n"
                                                 "    webhook_basic_auth: adyen:s3cret-pass\n",
                                            err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    struct redact *r = redact_new();
    cr_assert(redact_add_config(r, cfg));
    /* base64("adyen:s3cret-pass") */
    char *out = redact_text(r, "key " KEY_A " auth Basic YWR5ZW46czNjcmV0LXBhc3M= pw s3cret-pass");
    cr_assert_not_null(out);
    cr_expect_null(strstr(out, KEY_A), "%s", out);
    cr_expect_null(strstr(out, "YWR5ZW46czNjcmV0LXBhc3M"), "%s", out);
    cr_expect_null(strstr(out, "s3cret-pass"), "%s", out);
    free(out);
    redact_free(r);
    config_free(cfg);
}
