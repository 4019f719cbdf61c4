/*
 * Unit tests of redact: the pattern rules (DSNs in both libpq forms, URIs,
 * headers, key formats, webhooks), the secrets of a config found raw,
 * base64 and escaped, the in-place and JSON forms, and the process's set as
 * the logger uses it. Fake secrets all contain "LEAKME" so that a leak is
 * one strstr away.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base64.h"
#include "base/log.h"
#include "base/redact.h"
#include "config/config.h"

/* Inline arrays, not pointers: Criterion re-executes the binary per test. */
struct rcase {
    char in[160];
    char want[160];
};

ParameterizedTestParameters(redact, pattern_rules)
{
    static struct rcase cases[] = {
        /* libpq keyword=value */
        {"host=db user=app password=LEAKME1 dbname=x", "host=db user=app password=*** dbname=x"},
        {"password=LEAKME1 host=db", "password=*** host=db"},
        {"host=db\tpassword=LEAKME1", "host=db\tpassword=***"},
        {"host=db sslpassword=LEAKME1 sslkey=/k", "host=db sslpassword=*** sslkey=/k"},
        {"host=db password = 'LEAK ME\\'1' dbname=x", "host=db password = *** dbname=x"},
        {"dbname='x'password=LEAKME1", "dbname='x'password=***"},
        {"dbname='x'sslpassword='LEAK ME1' host=db", "dbname='x'sslpassword=*** host=db"},
        {"password=LEAK\\ ME1 host=db", "password=*** host=db"},
        {"host=db passfile=/p dbname=x", "host=db passfile=/p dbname=x"},
        {"a.very.long.dotted.configuration.path.that.goes.on.password=LEAKME1 x",
         "a.very.long.dotted.configuration.path.that.goes.on.password=*** x"},
        {"host=db dbname='a://b' password=LEAKME1", "host=db dbname='a://b' password=***"},
        /* URIs: userinfo, query parameters, percent-encoded keys */
        {"postgresql://app:LEAKME1@db:5432/x", "postgresql://app:***@db:5432/x"},
        {"postgresql://u:p%40ssLEAKME@h/db", "postgresql://u:***@h/db"},
        {"postgres://app:LEAKME1@db/x?sslmode=disable", "postgres://app:***@db/x?sslmode=disable"},
        {"postgresql://db/x?user=app&password=LEAKME1&sslmode=require",
         "postgresql://db/x?user=app&password=***&sslmode=require"},
        {"postgresql://db/x?pass%77ord=LEAKME1", "postgresql://db/x?pass%77ord=***"},
        {"postgresql://db/x?PASS%57ORD=LEAKME1&a=b", "postgresql://db/x?PASS%57ORD=***&a=b"},
        {"postgresql://db/x?sslpassword=LEAKME1", "postgresql://db/x?sslpassword=***"},
        {"postgresql://app@db/x", "postgresql://app@db/x"},
        {"postgresql://db/x@y", "postgresql://db/x@y"},
        {"see https://bob:LEAKME1@example.com/x now", "see https://bob:***@example.com/x now"},
        {"GET /cb?access_token=LEAKME1&x=1", "GET /cb?access_token=***&x=1"},
        /* headers and credentials */
        {"Authorization: Basic TEVBS01FOg==", "Authorization: ***"},
        {"authorization: Basic abc", "authorization: ***"},
        {"Idempotency-Key: req-1", "Idempotency-Key: req-1"},
        {"proxy-authorization:Bearer LEAKME1\nnext", "proxy-authorization:***\nnext"},
        {"{\"authorization\":\"Bearer LEAKME1\",\"a\":1}", "{\"authorization\":\"***\",\"a\":1}"},
        {"{\"password\": \"LEAK ME1\"}", "{\"password\": \"***\"}"},
        {"sent Bearer LEAKMEabcdefghij123 twice", "sent Bearer *** twice"},
        {"Basic TEVBS01FX2FiY2RlZmdoOg== was refused", "Basic *** was refused"},
        {"Basic authentication failed", "Basic authentication failed"},
        /* key formats and webhooks */
        {"invalid key sk_test_LEAKME_1234 given", "invalid key *** given"},
        {"key=live_sk_LEAKME9,", "key=***,"},
        {"(test_gsk_LEAKME9)", "(***)"},
        {"post to https://hooks.slack.com/services/T0/B0/LEAKMEtok failed",
         "post to https://hooks.slack.com/*** failed"},
        /* what must stay readable */
        {"t.yaml:8: gateways.toss.secret_key: secret must not be empty",
         "t.yaml:8: gateways.toss.secret_key: secret must not be empty"},
        {"password authentication failed for user \"app\"",
         "password authentication failed for user \"app\""},
        {"token bucket: 3 tokens left", "token bucket: 3 tokens left"},
        {"http://127.0.0.1:8080/v1/payments", "http://127.0.0.1:8080/v1/payments"},
        {"", ""},
    };
    return cr_make_param_array(struct rcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct rcase *c, redact, pattern_rules)
{
    char *out = redact_text(NULL, c->in);
    cr_assert_not_null(out);
    cr_expect_str_eq(out, c->want, "redact(\"%s\") = \"%s\"", c->in, out);
    cr_expect_null(strstr(out, "LEAK"), "secret left in \"%s\"", out);
    free(out);
}

/* text must come out of r without any of the forbidden strings. */
static void expect_clean(const struct redact *r, const char *text, const char *const *forbidden)
{
    char *out = redact_text(r, text);
    cr_assert_not_null(out);
    for (size_t i = 0; forbidden[i] != NULL; i++)
        cr_expect_null(strstr(out, forbidden[i]), "\"%s\" left in \"%s\" (from \"%s\")",
                       forbidden[i], out, text);
    free(out);
}

static char *b64(const char *s)
{
    static char buf[96];
    base64_encode((const unsigned char *)s, strlen(s), buf);
    return buf;
}

/* Every byte as %XX. */
static void percent_all(const char *s, char *out)
{
    for (; *s != '\0'; s++, out += 3)
        sprintf(out, "%%%02X", (unsigned char)*s);
}

Test(redact, gateway_key_raw_basic_bearer_and_escaped)
{
    /* No well-known prefix: only the set can find it. */
    const char *key = "gw_LEAKME_secret_77";
    struct redact *r = redact_new();
    cr_assert(redact_add_gateway_key(r, key));

    char basic[128], basic_bare[128], bare[128], pct[256], text[512];
    snprintf(basic, sizeof(basic), "%s", b64("gw_LEAKME_secret_77:"));
    snprintf(basic_bare, sizeof(basic_bare), "%.*s", (int)strcspn(basic, "="), basic);
    snprintf(bare, sizeof(bare), "%s", b64(key));
    percent_all(key, pct);
    const char *forbidden[] = {"LEAKME", basic_bare, bare, pct, NULL};

    snprintf(text, sizeof(text), "invalid key %s", key);
    expect_clean(r, text, forbidden);
    snprintf(text, sizeof(text), "credential %s is not valid", basic);
    expect_clean(r, text, forbidden);
    snprintf(text, sizeof(text), "credential %s=", basic_bare);
    expect_clean(r, text, forbidden);
    snprintf(text, sizeof(text), "user %s", bare);
    expect_clean(r, text, forbidden);
    snprintf(text, sizeof(text), "k=%s&x", pct);
    expect_clean(r, text, forbidden);
    expect_clean(r, "gw_LEAKME%5Fsecret%5f77 and gw\\u005fLEAKME_secret_77", forbidden);

    char *out = redact_text(r, "invalid key gw_LEAKME_secret_77.");
    cr_expect_str_eq(out, "invalid key ***.");
    free(out);
    redact_free(r);
}

Test(redact, webhook_url_path_and_token)
{
    const char *url = "http://127.0.0.1:9/services/T000/B000/LEAKMEtok3n";
    struct redact *r = redact_new();
    cr_assert(redact_add_webhook_url(r, url));
    const char *forbidden[] = {"LEAKME", "/services/T000", NULL};
    char *out = redact_text(r, "post to http://127.0.0.1:9/services/T000/B000/LEAKMEtok3n: 404");
    cr_expect_str_eq(out, "post to ***: 404");
    free(out);
    expect_clean(r, "path /services/T000/B000/LEAKMEtok3n", forbidden);
    expect_clean(r, "token LEAKMEtok3n", forbidden);
    expect_clean(r, "http%3A%2F%2F127.0.0.1%3A9%2Fservices%2FT000%2FB000%2FLEAKMEtok3n", forbidden);
    /* The host and the word "services" alone are no secret. */
    out = redact_text(r, "127.0.0.1:9 services");
    cr_expect_str_eq(out, "127.0.0.1:9 services");
    free(out);
    redact_free(r);
}

struct dcase {
    char dsn[128];
    char secret[32];
    char text[96];
};

ParameterizedTestParameters(redact, dsn_password_by_value)
{
    static struct dcase cases[] = {
        {"host=db password='p@ss LEAKME'", "p@ss LEAKME", "auth for p%40ss%20LEAKME failed"},
        {"host=db password=pa\\ ssLEAKME", "pa ssLEAKME", "echo: pa ssLEAKME"},
        {"dbname='x'password=LEAKME_q", "LEAKME_q", "said LEAKME_q"},
        {"host=db sslpassword=LEAKME_ssl", "LEAKME_ssl", "key pass LEAKME_ssl"},
        {"postgresql://u:p%40ssLEAKME@h/db", "p@ssLEAKME", "saw p@ssLEAKME"},
        {"postgresql://h/db?pass%77ord=LEAKME%21", "LEAKME!", "saw 'LEAKME!'"},
        {"postgres://h/db?x=1&sslpassword=LEAKME_u", "LEAKME_u", "saw LEAKME_u"},
        {"dbname='host=h password=LEAKME_n'", "LEAKME_n", "saw LEAKME_n"},
    };
    return cr_make_param_array(struct dcase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct dcase *c, redact, dsn_password_by_value)
{
    struct redact *r = redact_new();
    cr_assert(redact_add_dsn(r, c->dsn));
    char *out = redact_text(r, c->text);
    cr_expect_null(strstr(out, "LEAKME"), "\"%s\" -> \"%s\" (dsn %s)", c->text, out, c->dsn);
    free(out);
    out = redact_text(r, c->dsn);
    cr_expect_null(strstr(out, "LEAKME"), "the DSN itself -> \"%s\"", out);
    free(out);
    redact_free(r);
}

Test(redact, short_and_special_secrets)
{
    struct redact *r = redact_new();
    cr_assert(redact_add_secret(r, "ab"));
    cr_assert(redact_add_secret(r, "50%off!LEAKME"));
    cr_assert(redact_add_secret(r, NULL));
    char *out = redact_text(r, "ab cab 50%off!LEAKME 50%25off%21LEAKME");
    cr_expect_str_eq(out, "ab cab *** ***");
    free(out);
    redact_free(r);
    redact_free(NULL);
}

Test(redact, secret_cut_at_the_end_of_a_text)
{
    struct redact *r = redact_new();
    cr_assert(redact_add_gateway_key(r, "gw_LEAKME_secret_77"));
    char *out = redact_text(r, "message cut at 256 bytes: gw_LEAKME_se");
    cr_expect_str_eq(out, "message cut at 256 bytes: ***");
    free(out);
    /* Too little of it to say, or not at the end: left alone. */
    out = redact_text(r, "gw_LEAK gw_LEAKME_se!");
    cr_expect_str_eq(out, "gw_LEAK gw_LEAKME_se!");
    free(out);
    redact_free(r);
}

Test(redact, buf_cuts_on_a_character_boundary)
{
    struct redact *r = redact_new();
    cr_assert(redact_add_secret(r, "LEAKME_x"));
    char buf[15];
    snprintf(buf, sizeof(buf), "%s", "LEAKME_x \xc3\xa9");
    size_t n = redact_buf(r, buf, sizeof(buf));
    cr_expect_str_eq(buf, "*** \xc3\xa9");
    cr_expect_eq(n, strlen(buf));
    /* "password=***" is longer than "password=x": the e-acute no longer
     * fits whole and is left out rather than cut in two. */
    snprintf(buf, sizeof(buf), "%s", "password=x \xc3\xa9");
    n = redact_buf(r, buf, sizeof(buf));
    cr_expect_str_eq(buf, "password=*** ");
    cr_expect_eq(n, 13);
    redact_free(r);
}

Test(redact, json_strings_everywhere)
{
    struct redact *r = redact_new();
    cr_assert(redact_add_gateway_key(r, "gw_LEAKME_secret_77"));
    json_t *doc =
        json_pack("{s:s, s:[s, {s:s}], s:i}", "message", "key gw_LEAKME_secret_77", "list",
                  "password=LEAKME2", "gw_LEAKME_secret_77", "nested gw_LEAKME_secret_77", "n", 3);
    redact_json(r, doc);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    cr_expect_str_eq(text,
                     "{\"list\":[\"password=***\","
                     "{\"gw_LEAKME_secret_77\":\"nested ***\"}],\"message\":\"key ***\",\"n\":3}");
    free(text);
    json_decref(doc);
    redact_free(r);
}

Test(redact, dsn_for_display)
{
    char out[128];
    redact_dsn("host=db user=app password=LEAKME1 dbname=x", out, sizeof(out));
    cr_expect_str_eq(out, "host=db user=app password=*** dbname=x");
    redact_dsn("postgresql://u:p%40ss@h/db", out, sizeof(out));
    cr_expect_str_eq(out, "postgresql://u:***@h/db");
    redact_dsn(NULL, out, sizeof(out));
    cr_expect_str_eq(out, "");
    char tiny[12];
    redact_dsn("password=LEAKMEvalue host=db", tiny, sizeof(tiny));
    cr_expect_eq(strlen(tiny), sizeof(tiny) - 1);
    cr_expect_null(strstr(tiny, "LEAK"));
}

#define SECRETS_YAML                                                                               \
    "database:\n"                                                                                  \
    "  dsn: \"host=db user=app password=pgLEAKME_pw dbname=x\"\n"                                  \
    "kafka:\n"                                                                                     \
    "  bootstrap.servers: k:9092\n"                                                                \
    "  sasl.username: cancel-retry\n"                                                              \
    "  sasl.password: kafkaLEAKME_pw\n"                                                            \
    "  ssl.key.password: sslkeyLEAKME_pw\n"                                                        \
    "gateways:\n"                                                                                  \
    "  toss:\n"                                                                                    \
    "    kind: toss\n"                                                                             \
    "    secret_key: tossLEAKME_key_1\n"                                                           \
    "  stripe:\n"                                                                                  \
    "    kind: stripe\n"                                                                           \
    "    secret_key: stripeLEAKME_key_2\n"                                                         \
    "alerts:\n"                                                                                    \
    "  slack:\n"                                                                                   \
    "    enabled: true\n"                                                                          \
    "    webhook_url: https://chat.example/services/T1/B1/slackLEAKMEmain\n"                       \
    "    routes:\n"                                                                                \
    "      - { gateway: stripe, webhook_url: \"https://chat.example/hook/routeLEAKME9\" }\n"

Test(redact, every_secret_of_a_config)
{
    char err[512];
    struct config *cfg = config_load_string("t.yaml", SECRETS_YAML, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    struct redact *r = redact_new();
    cr_assert(redact_add_config(r, cfg));
    const char *texts[] = {
        "db said pgLEAKME_pw",
        "sasl kafkaLEAKME_pw and sslkeyLEAKME_pw",
        "toss tossLEAKME_key_1 stripe stripeLEAKME_key_2",
        "slack /services/T1/B1/slackLEAKMEmain and slackLEAKMEmain",
        "route https://chat.example/hook/routeLEAKME9 and routeLEAKME9",
    };
    const char *forbidden[] = {"LEAKME", NULL};
    for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++)
        expect_clean(r, texts[i], forbidden);
    /* The Basic credential of a key, as a gateway might echo it. */
    char text[256];
    snprintf(text, sizeof(text), "bad credential %s", b64("tossLEAKME_key_1:"));
    const char *forbidden_b64[] = {b64("tossLEAKME_key_1:"), NULL};
    expect_clean(r, text, forbidden_b64);
    redact_free(r);
    config_free(cfg);
}

Test(redact, log_lines_use_the_process_set, .init = cr_redirect_stderr)
{
    char err[512];
    struct config *cfg = config_load_string("t.yaml", SECRETS_YAML, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_assert(redact_process_install(cfg));
    log_init("test-svc", LOG_DEBUG);
    json_t *fields = json_pack("{s:s, s:[s]}", "url", "https://chat.example/hook/routeLEAKME9",
                               "headers", "Authorization: Basic dG9zc0xFQUtNRV9rZXlfMTo=");
    struct log_ctx ctx = LOG_CTX_INIT;
    ctx.fields = fields;
    log_emit(LOG_WARN, &ctx, "gateway said: invalid key %s", "tossLEAKME_key_1");
    log_syslog_level(3, "SASL", "rdkafka#producer-1", "auth with kafkaLEAKME_pw failed");
    /* The caller's fields are not rewritten: only the line is. */
    cr_expect_str_eq(json_string_value(json_object_get(fields, "url")),
                     "https://chat.example/hook/routeLEAKME9");
    json_decref(fields);
    fflush(stderr);
    char line[4096], all[8192] = "";
    FILE *f = cr_get_redirected_stderr();
    while (fgets(line, sizeof(line), f) != NULL)
        strncat(all, line, sizeof(all) - strlen(all) - 1);
    cr_expect_not_null(strstr(all, "invalid key ***"), "%s", all);
    cr_expect_not_null(strstr(all, "Authorization: ***"), "%s", all);
    cr_expect_null(strstr(all, "LEAKME"), "%s", all);
    cr_expect_null(strstr(all, "dG9zc0xFQUtNRV9rZXlfMTo"), "%s", all);
    redact_process_clear();
    config_free(cfg);
}
