/*
 * The Slack messages of src/alert/slack.c: exact payloads for an outcome alert, a
 * dead letter and a digest, plus amounts, masking, escaping and the meaning
 * of webhook answers.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alert/slack.h"
#include "base/redact.h"
#include "config/config.h"

static void expect_json(json_t *got, const char *want_text)
{
    json_error_t je;
    json_t *want = json_loads(want_text, 0, &je);
    cr_assert_not_null(want, "bad expected JSON: %s", je.text);
    cr_assert_not_null(got);
    char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
    char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS);
    cr_expect(json_equal(got, want), "got:\n%s\nwant:\n%s", g, w);
    free(g);
    free(w);
    json_decref(want);
    json_decref(got);
}

static struct slack_alert exhausted(void)
{
    struct slack_alert a = {
        .kind = SLACK_ALERT_OUTCOME,
        .reason = "EXHAUSTED",
        .request_id = "r-1",
        .gateway = "toss",
        .payment_key = "tpay_abcdef123456",
        .amount = 15000,
        .currency = "KRW",
        .attempts = 5,
        .error_code = "PROVIDER_ERROR",
        .error_message = "card company <down> & out",
        .error_http_status = 503,
        .correlation_id = "corr-9",
        .event_id = "ev-1",
        .topic = "payments.cancel.outcome",
        .partition = 2,
        .offset = 41,
        .at = "2026-11-20T09:15:02.123Z",
    };
    return a;
}

Test(alert_message, outcome_exhausted_exact_payload)
{
    struct slack_alert a = exhausted();
    expect_json(
        slack_alert_message(&a),
        "{\"text\": \":rotating_light: Refund retries exhausted: request r-1 (EXHAUSTED)\\n"
        "Gateway: toss \xc2\xb7 Payment key: ****3456 \xc2\xb7 Amount: 15,000 KRW \xc2\xb7 "
        "Attempts: 5\\n"
        "Last error: `PROVIDER_ERROR` (HTTP 503): card company &lt;down&gt; &amp; out\\n"
        "Correlation id: corr-9\\n"
        "Inspect: `cancelctl show r-1`\\n"
        "Replay: `cancelctl dlq replay --request-id r-1`\","
        " \"blocks\": ["
        "  {\"type\": \"header\", \"text\": {\"type\": \"plain_text\", \"emoji\": true,"
        "   \"text\": \":rotating_light: Refund retries exhausted: r-1\"}},"
        "  {\"type\": \"section\", \"fields\": ["
        "   {\"type\": \"mrkdwn\", \"text\": \"*Request*\\n`r-1`\"},"
        "   {\"type\": \"mrkdwn\", \"text\": \"*Status*\\nEXHAUSTED\"},"
        "   {\"type\": \"mrkdwn\", \"text\": \"*Gateway*\\ntoss\"},"
        "   {\"type\": \"mrkdwn\", \"text\": \"*Payment key*\\n`****3456`\"},"
        "   {\"type\": \"mrkdwn\", \"text\": \"*Amount*\\n15,000 KRW\"},"
        "   {\"type\": \"mrkdwn\", \"text\": \"*Attempts*\\n5\"},"
        "   {\"type\": \"mrkdwn\", \"text\": \"*Correlation id*\\n`corr-9`\"}]},"
        "  {\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\":"
        "   \"*Last error*\\n`PROVIDER_ERROR` (HTTP 503): card company &lt;down&gt; &amp; out\"}},"
        "  {\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\":"
        "   \"*What to do*\\nInspect: `cancelctl show r-1`\\n"
        "Replay: `cancelctl dlq replay --request-id r-1`\"}},"
        "  {\"type\": \"context\", \"elements\": [{\"type\": \"mrkdwn\", \"text\":"
        "   \"event ev-1 \xc2\xb7 payments.cancel.outcome [2] offset 41 \xc2\xb7 decided "
        "2026-11-20T09:15:02.123Z\"}]}"
        "]}");
}

Test(alert_message, poison_dead_letter_without_request_id)
{
    struct slack_alert a = {
        .kind = SLACK_ALERT_DEAD_LETTER,
        .reason = "PARSE_ERROR",
        .amount = -1,
        .attempts = -1,
        .error_message = "invalid JSON at line 1",
        .topic = "payments.cancel.dlq",
        .partition = 0,
        .offset = 7,
        .origin = "payments.cancel.failed [1] offset 99",
        .by = "intake-consumer",
        .at = "2026-11-20T10:00:00.000Z",
    };
    expect_json(slack_alert_message(&a),
                "{\"text\": \":warning: Message dead-lettered: unknown request (PARSE_ERROR)\\n"
                "Error: invalid JSON at line 1\\n"
                "From: payments.cancel.failed [1] offset 99 by intake-consumer\\n"
                "Inspect: `cancelctl dlq list --reason PARSE_ERROR --since "
                "2026-11-20T10:00:00.000Z`\","
                " \"blocks\": ["
                "  {\"type\": \"header\", \"text\": {\"type\": \"plain_text\", \"emoji\": true,"
                "   \"text\": \":warning: Message dead-lettered: unknown request\"}},"
                "  {\"type\": \"section\", \"fields\": ["
                "   {\"type\": \"mrkdwn\", \"text\": \"*Reason*\\nPARSE_ERROR\"}]},"
                "  {\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\":"
                "   \"*Error*\\ninvalid JSON at line 1\"}},"
                "  {\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\":"
                "   \"*What to do*\\nInspect: `cancelctl dlq list --reason PARSE_ERROR --since "
                "2026-11-20T10:00:00.000Z`\"}},"
                "  {\"type\": \"context\", \"elements\": [{\"type\": \"mrkdwn\", \"text\":"
                "   \"from payments.cancel.failed [1] offset 99 by intake-consumer \xc2\xb7 "
                "payments.cancel.dlq [0] offset 7 \xc2\xb7 dead-lettered "
                "2026-11-20T10:00:00.000Z\"}]}"
                "]}");
}

/* What a gateway's webhook reported after the fact: a headline that says
 * it, and no replay command (a replay is refused: a person decides). */
Test(alert_message, webhook_dead_letters_ask_a_person)
{
    static const char *const reasons[][2] = {
        {"REFUND_FAILED_AFTER_SUCCESS", "Refund failed after it succeeded"},
        {"REFUND_REVERSED", "Refund reversed"},
        {"REFUND_AFTER_FINAL", "Refund made after the request ended"},
        {"WEBHOOK_UNMATCHED", "Refund notification for no request"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        struct slack_alert a = {
            .kind = SLACK_ALERT_DEAD_LETTER,
            .reason = reasons[i][0],
            .request_id = i < 2 ? "r-1" : NULL,
            .amount = -1,
            .attempts = -1,
            .error_message = "REFUND_FAILED after the request SUCCEEDED",
            .by = "webhook-receiver",
        };
        json_t *m = slack_alert_message(&a);
        cr_assert_not_null(m);
        const char *text = json_string_value(json_object_get(m, "text"));
        cr_expect_not_null(strstr(text, reasons[i][1]), "%s", text);
        cr_expect_null(strstr(text, "dlq replay"), "%s", text);
        if (i < 2)
            cr_expect_not_null(strstr(text, "A person decides"), "%s", text);
        json_decref(m);
    }
}

/* A reconciliation mismatch asks to correct our record, not to replay: a
 * replay is refused while we still record the refund as done. */
Test(alert_message, reconcile_mismatch_says_how_to_correct_our_record)
{
    struct slack_alert a = {
        .kind = SLACK_ALERT_DEAD_LETTER,
        .reason = "RECONCILE_MISMATCH",
        .request_id = "r-9",
        .gateway = "stripe",
        .amount = -1,
        .attempts = 1,
        .error_message = "OURS_REFUNDED_THEIRS_NOT: we recorded SUCCEEDED",
        .topic = "payments.cancel.dlq",
        .by = "outbox-relay",
    };
    json_t *doc = slack_alert_message(&a);
    cr_assert_not_null(doc);
    char *msg = json_dumps(doc, 0);
    cr_assert_not_null(msg);
    cr_expect_not_null(strstr(msg, "Reconciliation mismatch: request r-9"), "%s", msg);
    cr_expect_not_null(strstr(msg, "`cancelctl reconcile --request-id r-9 --fix`"), "%s", msg);
    cr_expect_null(strstr(msg, "dlq replay"), "%s", msg);
    free(msg);
    json_decref(doc);
}

Test(alert_message, digest_exact_payload)
{
    struct slack_count reasons[] = {{"EXHAUSTED", 30}, {"PARSE_ERROR", 2}};
    struct slack_count gateways[] = {{"toss", 20}, {"stripe", 10}, {"unknown", 2}};
    const char *first[] = {"r-1", "r-2", "r-3"};
    struct slack_digest d = {
        .total = 32,
        .threshold = 10,
        .window_ms = 60000,
        .reasons = reasons,
        .nreasons = 2,
        .gateways = gateways,
        .ngateways = 3,
        .first_ids = first,
        .nfirst = 3,
        .since = "2026-11-20T10:00:00.000Z",
        .until = "2026-11-20T10:01:00.000Z",
    };
    expect_json(slack_digest_message(&d),
                "{\"text\": \":bell: Alert digest: 32 alerts (more than 10 within 60s)\\n"
                "By reason: EXHAUSTED 30, PARSE_ERROR 2\\n"
                "By gateway: toss 20, stripe 10, unknown 2\\n"
                "First requests: r-1, r-2, r-3 (and 29 more)\\n"
                "List them all: `cancelctl dlq list --since 2026-11-20T10:00:00.000Z --until "
                "2026-11-20T10:01:00.000Z`\","
                " \"blocks\": ["
                "  {\"type\": \"header\", \"text\": {\"type\": \"plain_text\", \"emoji\": true,"
                "   \"text\": \":bell: Alert digest: 32 alerts\"}},"
                "  {\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\":"
                "   \"More than 10 alerts within 60s, so they are summed up here.\\n"
                "*By reason*: EXHAUSTED 30, PARSE_ERROR 2\\n*By gateway*: toss 20, stripe 10, "
                "unknown 2\"}},"
                "  {\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\":"
                "   \"*First requests*\\n`r-1`, `r-2`, `r-3` (and 29 more)\"}},"
                "  {\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\":"
                "   \"*List them all*\\n`cancelctl dlq list --since 2026-11-20T10:00:00.000Z "
                "--until 2026-11-20T10:01:00.000Z`\"}}"
                "]}");
}

Test(alert_message, hostile_text_cannot_ping_or_break_code_spans)
{
    struct slack_alert a = exhausted();
    a.error_message = "<!channel> see <https://evil|here>";
    a.payment_key = "abc`def`ghijkl";
    json_t *m = slack_alert_message(&a);
    char *s = json_dumps(m, 0);
    cr_expect_null(strstr(s, "<!channel>"), "%s", s);
    cr_expect_null(strstr(s, "<https://"), "%s", s);
    cr_expect_not_null(strstr(s, "&lt;!channel&gt;"), "%s", s);
    cr_expect_null(strstr(s, "abc`def"), "the payment key leaked: %s", s);
    free(s);
    json_decref(m);
}

Test(alert_message, long_values_are_cut_and_the_payload_stays_valid)
{
    static char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    struct slack_alert a = exhausted();
    a.error_message = big;
    json_t *m = slack_alert_message(&a);
    cr_assert_not_null(m);
    const char *text = json_string_value(json_object_get(m, "text"));
    cr_expect_lt(strlen(text), 1000, "text of %zu bytes", strlen(text));
    json_decref(m);
}

struct amount_case {
    long long amount;
    char currency[4];
    char want[32];
};

ParameterizedTestParameters(alert_message, amounts)
{
    static struct amount_case cases[] = {
        {15000, "KRW", "15,000 KRW"},
        {1234, "USD", "12.34 USD"},
        {123456789, "USD", "1,234,567.89 USD"},
        {5, "USD", "0.05 USD"},
        {100, "JPY", "100 JPY"},
        {1234567, "KWD", "1,234.567 KWD"},
        {999, "KRW", "999 KRW"},
        {1000, "EUR", "10.00 EUR"},
    };
    return cr_make_param_array(struct amount_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct amount_case *c, alert_message, amounts)
{
    char out[64];
    slack_format_amount(c->amount, c->currency, out, sizeof(out));
    cr_expect_str_eq(out, c->want);
}

struct mask_case {
    char key[40];
    char want[16];
};

ParameterizedTestParameters(alert_message, masks)
{
    static struct mask_case cases[] = {
        {"tpay_abcdef123456", "****3456"},
        {"pi_3Nabcdefgh", "****efgh"},
        {"pk_1", "****1"},
        {"ab", "****"},
        {"", "****"},
    };
    return cr_make_param_array(struct mask_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct mask_case *c, alert_message, masks)
{
    char out[16];
    slack_mask_key(c->key, out, sizeof(out));
    cr_expect_str_eq(out, c->want);
}

struct answer_case {
    long status;
    char body[32];
    enum slack_result want;
    char why[48];
};

ParameterizedTestParameters(alert_message, answers)
{
    static struct answer_case cases[] = {
        {200, "ok", SLACK_SENT, ""},
        {429, "rate_limited", SLACK_RATE_LIMITED, "HTTP 429: rate_limited"},
        {500, "rollup_error", SLACK_TRANSIENT, "HTTP 500: rollup_error"},
        {503, "", SLACK_TRANSIENT, "HTTP 503"},
        {408, "", SLACK_TRANSIENT, "HTTP 408"},
        {0, "", SLACK_TRANSIENT, "no answer: timed out"},
        {400, "invalid_payload", SLACK_PERMANENT, "HTTP 400: invalid_payload"},
        {403, "invalid_token", SLACK_PERMANENT, "HTTP 403: invalid_token"},
        {404, "channel_not_found", SLACK_PERMANENT, "HTTP 404: channel_not_found"},
        {404, "no_service", SLACK_PERMANENT, "HTTP 404: no_service"},
        {410, "channel_is_archived", SLACK_PERMANENT, "HTTP 410: channel_is_archived"},
        {302, "", SLACK_PERMANENT, "HTTP 302"},
    };
    return cr_make_param_array(struct answer_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct answer_case *c, alert_message, answers)
{
    char why[128] = "";
    enum slack_result r = slack_classify(c->status, c->body, "timed out", why, sizeof(why));
    cr_expect_eq(r, c->want, "HTTP %ld %s: %s", c->status, c->body, slack_result_name(r));
    if (c->want != SLACK_SENT)
        cr_expect_str_eq(why, c->why);
}

/* What a gateway echoed (the key, its Basic credential) and a webhook answer
 * quoting the URL never reach Slack or the alert_sent row. */
Test(alert_message, secrets_are_masked)
{
    char err[512];
    struct config *cfg = config_load_string(
        "t.yaml",
        "database:\n  dsn: host=db\nkafka:\n  bootstrap.servers: k:9092\n"
        "gateways:\n  toss:\n    kind: toss\n    secret_key: gwLEAKME_key_123456\n"
        "alerts:\n  slack:\n    enabled: true\n"
        "    webhook_url: https://chat.example/services/T1/B1/hookLEAKME99\n",
        err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_assert(redact_process_install(cfg));
    struct slack_alert a = exhausted();
    /* base64("gwLEAKME_key_123456:") */
    a.error_message = "invalid key gwLEAKME_key_123456 (Basic Z3dMRUFLTUVfa2V5XzEyMzQ1Njo=) & more";
    json_t *msg = slack_alert_message(&a);
    char *text = json_dumps(msg, JSON_COMPACT);
    cr_expect_null(strstr(text, "LEAKME"), "%s", text);
    cr_expect_null(strstr(text, "Z3dMRUFLTUVfa2V5XzEyMzQ1Njo"), "%s", text);
    cr_expect_not_null(strstr(text, "invalid key ***"), "%s", text);
    free(text);
    json_decref(msg);

    char why[256];
    slack_classify(404, "no_service: https://chat.example/services/T1/B1/hookLEAKME99", NULL, why,
                   sizeof(why));
    cr_expect_str_eq(why, "HTTP 404: no_service: ***");
    redact_process_clear();
    config_free(cfg);
}
