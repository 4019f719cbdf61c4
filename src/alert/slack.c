/*
 * slack: Slack message building and answer classification. See slack.h.
 */
#include "alert/slack.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/redact.h"
#include "event/dlq.h"

/* Longest piece of event text copied into a message. Slack allows 3000
 * characters per section and 150 per header; an alert is read by a person. */
#define SLACK_VALUE_MAX  300
#define SLACK_HEADER_MAX 150

/* A growable string; oom is sticky so callers check once at the end. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_addn(struct sbuf *sb, const char *s, size_t n)
{
    if (sb->oom)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t ncap = sb->cap ? sb->cap : 256;
        while (ncap < sb->len + n + 1)
            ncap *= 2;
        char *np = realloc(sb->p, ncap);
        if (np == NULL) {
            sb->oom = true;
            return;
        }
        sb->p = np;
        sb->cap = ncap;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

static void sb_add(struct sbuf *sb, const char *s)
{
    sb_addn(sb, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_addf(struct sbuf *sb, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_addn(sb, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Append event text s: valid UTF-8, cut to SLACK_VALUE_MAX bytes, with
 * mrkdwn's control characters escaped. In a code span (code) a backtick would
 * end the span early, and Slack has no escape for it: it becomes a quote. */
static void sb_add_value(struct sbuf *sb, const char *s, bool code)
{
    char clean[SLACK_VALUE_MAX + 4];

    dlq_sanitize_text(s, strlen(s), clean, sizeof(clean));
    for (const char *c = clean; *c != '\0'; c++) {
        switch (*c) {
        case '&':
            sb_add(sb, "&amp;");
            break;
        case '<':
            sb_add(sb, "&lt;");
            break;
        case '>':
            sb_add(sb, "&gt;");
            break;
        case '`':
            sb_add(sb, code ? "'" : "`");
            break;
        default:
            sb_addn(sb, c, 1);
        }
    }
}

static void sb_add_code(struct sbuf *sb, const char *s)
{
    sb_add(sb, "`");
    sb_add_value(sb, s, true);
    sb_add(sb, "`");
}

static char *sb_take(struct sbuf *sb)
{
    if (sb->oom) {
        free(sb->p);
        return NULL;
    }
    if (sb->p == NULL)
        return strdup("");
    return sb->p;
}

/* ---- currency, amount, key ---- */

int slack_currency_exponent(const char *currency)
{
    /* ISO 4217 minor units that differ from the usual 2. */
    static const char zero[][4] = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                                   "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"};
    static const char three[][4] = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"};

    if (currency == NULL)
        return 2;
    for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
        if (strcmp(currency, zero[i]) == 0)
            return 0;
    for (size_t i = 0; i < sizeof(three) / sizeof(three[0]); i++)
        if (strcmp(currency, three[i]) == 0)
            return 3;
    return 2;
}

void slack_format_amount(int64_t amount, const char *currency, char *out, size_t outlen)
{
    int exp = slack_currency_exponent(currency);
    int64_t scale = exp == 0 ? 1 : exp == 3 ? 1000 : 100;
    uint64_t v = amount < 0 ? 0 : (uint64_t)amount;
    uint64_t whole = v / (uint64_t)scale, frac = v % (uint64_t)scale;
    char digits[32], grouped[48];

    snprintf(digits, sizeof(digits), "%" PRIu64, whole);
    size_t n = strlen(digits), j = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            grouped[j++] = ',';
        grouped[j++] = digits[i];
    }
    grouped[j] = '\0';
    char number[64];
    if (exp == 0)
        snprintf(number, sizeof(number), "%s", grouped);
    else
        snprintf(number, sizeof(number), "%s.%0*" PRIu64, grouped, exp, frac);
    if (currency != NULL)
        snprintf(out, outlen, "%s %s", number, currency);
    else
        snprintf(out, outlen, "%s", number);
}

void slack_mask_key(const char *key, char *out, size_t outlen)
{
    size_t len = key != NULL ? strlen(key) : 0;
    size_t shown = len / 3 < 4 ? len / 3 : 4;

    snprintf(out, outlen, "****%s", key != NULL ? key + (len - shown) : "");
}

/* ---- alerts ---- */

static bool is_reconcile_mismatch(const struct slack_alert *a)
{
    return a->kind == SLACK_ALERT_DEAD_LETTER && strcmp(a->reason, "RECONCILE_MISMATCH") == 0;
}

static const char *headline(const struct slack_alert *a)
{
    if (is_reconcile_mismatch(a))
        return "Reconciliation mismatch";
    if (a->kind == SLACK_ALERT_DEAD_LETTER) {
        /* What a gateway's webhook reported after the fact. */
        if (strcmp(a->reason, DLQ_REASON_REFUND_FAILED_AFTER_SUCCESS) == 0)
            return "Refund failed after it succeeded";
        if (strcmp(a->reason, DLQ_REASON_REFUND_REVERSED) == 0)
            return "Refund reversed";
        if (strcmp(a->reason, DLQ_REASON_REFUND_AFTER_FINAL) == 0)
            return "Refund made after the request ended";
        if (strcmp(a->reason, DLQ_REASON_WEBHOOK_UNMATCHED) == 0)
            return "Refund notification for no request";
    }
    if (a->kind == SLACK_ALERT_DEAD_LETTER)
        return "Message dead-lettered";
    if (strcmp(a->reason, "EXHAUSTED") == 0)
        return "Refund retries exhausted";
    if (strcmp(a->reason, "FAILED") == 0)
        return "Refund failed permanently";
    if (strcmp(a->reason, "SUCCEEDED") == 0)
        return "Refund succeeded";
    if (strcmp(a->reason, "ALREADY_REFUNDED") == 0)
        return "Refund was already done";
    if (strcmp(a->reason, "MANUALLY_RESOLVED") == 0)
        return "Request resolved by hand";
    return "Unreadable outcome event";
}

static const char *emoji(const struct slack_alert *a)
{
    if (a->kind == SLACK_ALERT_DEAD_LETTER)
        return ":warning:";
    if (strcmp(a->reason, "SUCCEEDED") == 0 || strcmp(a->reason, "ALREADY_REFUNDED") == 0 ||
        strcmp(a->reason, "MANUALLY_RESOLVED") == 0)
        return ":white_check_mark:";
    return ":rotating_light:";
}

/* The last error as one line: "`CODE` (HTTP 503): message". */
static void add_error(struct sbuf *sb, const struct slack_alert *a)
{
    if (a->error_code != NULL)
        sb_add_code(sb, a->error_code);
    if (a->error_http_status > 0)
        sb_addf(sb, "%sHTTP %d%s", a->error_code != NULL ? " (" : "", a->error_http_status,
                a->error_code != NULL ? ")" : "");
    if (a->error_message != NULL) {
        if (a->error_code != NULL || a->error_http_status > 0)
            sb_add(sb, ": ");
        sb_add_value(sb, a->error_message, false);
    }
}

static bool has_error(const struct slack_alert *a)
{
    return a->error_code != NULL || a->error_message != NULL || a->error_http_status > 0;
}

/* The commands to inspect and replay: by requestId when there is one,
 * otherwise the listing of dead letters with the same reason. */
static void add_commands(struct sbuf *sb, const struct slack_alert *a, const char *sep)
{
    if (a->request_id != NULL) {
        sb_add(sb, "Inspect: `cancelctl show ");
        sb_add_value(sb, a->request_id, true);
        sb_add(sb, "`");
        sb_add(sb, sep);
        if (is_reconcile_mismatch(a)) {
            /* A replay would be refused while we still record a refund the
             * gateway does not have: our record is corrected first. */
            sb_add(sb, "Correct our record: `cancelctl reconcile --request-id ");
            sb_add_value(sb, a->request_id, true);
            sb_add(sb, " --fix`");
            return;
        }
        if (a->kind == SLACK_ALERT_DEAD_LETTER && dlq_reason_needs_human(a->reason)) {
            /* A replay is refused: nothing the pipeline could do again. */
            sb_add(sb, "A person decides: docs/operations.md \"Webhook receiver\"");
            return;
        }
        sb_add(sb, "Replay: `cancelctl dlq replay --request-id ");
        sb_add_value(sb, a->request_id, true);
        sb_add(sb, "`");
        return;
    }
    sb_add(sb, "Inspect: `cancelctl dlq list --reason ");
    sb_add_value(sb, a->reason, true);
    if (a->at != NULL) {
        sb_add(sb, " --since ");
        sb_add_value(sb, a->at, true);
    }
    sb_add(sb, "`");
}

static char *alert_text(const struct slack_alert *a, const char *amount, const char *masked)
{
    struct sbuf sb = {0};

    sb_addf(&sb, "%s %s: ", emoji(a), headline(a));
    if (a->request_id != NULL) {
        sb_add(&sb, "request ");
        sb_add_value(&sb, a->request_id, false);
    } else {
        sb_add(&sb, "unknown request");
    }
    sb_add(&sb, " (");
    sb_add_value(&sb, a->reason, false);
    sb_add(&sb, ")");
    const char *sep = "\n";
    if (a->gateway != NULL) {
        sb_add(&sb, sep);
        sb_add(&sb, "Gateway: ");
        sb_add_value(&sb, a->gateway, false);
        sep = " · ";
    }
    if (masked != NULL) {
        sb_add(&sb, sep);
        sb_add(&sb, "Payment key: ");
        sb_add_value(&sb, masked, false);
        sep = " · ";
    }
    if (amount != NULL) {
        sb_add(&sb, sep);
        sb_add(&sb, "Amount: ");
        sb_add_value(&sb, amount, false);
        sep = " · ";
    }
    if (a->attempts >= 0) {
        sb_add(&sb, sep);
        sb_addf(&sb, "Attempts: %d", a->attempts);
    }
    if (has_error(a)) {
        sb_add(&sb, a->kind == SLACK_ALERT_OUTCOME ? "\nLast error: " : "\nError: ");
        add_error(&sb, a);
    }
    if (a->origin != NULL) {
        sb_add(&sb, "\nFrom: ");
        sb_add_value(&sb, a->origin, false);
        if (a->by != NULL) {
            sb_add(&sb, " by ");
            sb_add_value(&sb, a->by, false);
        }
    }
    if (a->correlation_id != NULL) {
        sb_add(&sb, "\nCorrelation id: ");
        sb_add_value(&sb, a->correlation_id, false);
    }
    sb_add(&sb, "\n");
    add_commands(&sb, a, "\n");
    return sb_take(&sb);
}

/* Append {"type":"mrkdwn","text":text} to fields, taking text (owned). */
static void add_field(json_t *fields, const char *label, char *value)
{
    if (value == NULL)
        return;
    size_t n = strlen(label) + strlen(value) + 8;
    char *s = malloc(n);
    if (s != NULL) {
        snprintf(s, n, "*%s*\n%s", label, value);
        json_array_append_new(fields, json_pack("{s:s, s:s}", "type", "mrkdwn", "text", s));
        free(s);
    }
    free(value);
}

static char *value_of(const char *s, bool code)
{
    struct sbuf sb = {0};
    if (code)
        sb_add_code(&sb, s);
    else
        sb_add_value(&sb, s, false);
    return sb_take(&sb);
}

static json_t *mrkdwn_section(char *text)
{
    json_t *s = NULL;
    if (text != NULL)
        s = json_pack("{s:s, s:{s:s, s:s}}", "type", "section", "text", "type", "mrkdwn", "text",
                      text);
    free(text);
    return s;
}

static json_t *alert_blocks(const struct slack_alert *a, const char *amount, const char *masked)
{
    json_t *blocks = json_array();
    char header[SLACK_HEADER_MAX + 8];
    char clean[SLACK_HEADER_MAX];

    if (blocks == NULL)
        return NULL;
    dlq_sanitize_text(a->request_id != NULL ? a->request_id : "unknown request",
                      a->request_id != NULL ? strlen(a->request_id) : 15, clean, 100);
    /* clean holds at most 99 bytes; saying so lets the compiler see it fits. */
    snprintf(header, sizeof(header), "%s %s: %.99s", emoji(a), headline(a), clean);
    json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s, s:b}}", "type", "header", "text",
                                            "type", "plain_text", "text", header, "emoji", 1));

    json_t *fields = json_array();
    if (a->request_id != NULL)
        add_field(fields, "Request", value_of(a->request_id, true));
    add_field(fields, a->kind == SLACK_ALERT_OUTCOME ? "Status" : "Reason",
              value_of(a->reason, false));
    if (a->gateway != NULL)
        add_field(fields, "Gateway", value_of(a->gateway, false));
    if (masked != NULL)
        add_field(fields, "Payment key", value_of(masked, true));
    if (amount != NULL)
        add_field(fields, "Amount", value_of(amount, false));
    if (a->attempts >= 0) {
        char n[16];
        snprintf(n, sizeof(n), "%d", a->attempts);
        add_field(fields, "Attempts", value_of(n, false));
    }
    if (a->correlation_id != NULL)
        add_field(fields, "Correlation id", value_of(a->correlation_id, true));
    json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));

    if (has_error(a)) {
        struct sbuf sb = {0};
        sb_add(&sb, a->kind == SLACK_ALERT_OUTCOME ? "*Last error*\n" : "*Error*\n");
        add_error(&sb, a);
        json_array_append_new(blocks, mrkdwn_section(sb_take(&sb)));
    }
    struct sbuf cmd = {0};
    sb_add(&cmd, "*What to do*\n");
    add_commands(&cmd, a, "\n");
    json_array_append_new(blocks, mrkdwn_section(sb_take(&cmd)));

    struct sbuf ctx = {0};
    if (a->kind == SLACK_ALERT_OUTCOME && a->event_id != NULL) {
        sb_add(&ctx, "event ");
        sb_add_value(&ctx, a->event_id, false);
        sb_add(&ctx, " · ");
    }
    if (a->origin != NULL) {
        sb_add(&ctx, "from ");
        sb_add_value(&ctx, a->origin, false);
        if (a->by != NULL) {
            sb_add(&ctx, " by ");
            sb_add_value(&ctx, a->by, false);
        }
        sb_add(&ctx, " · ");
    }
    if (a->topic != NULL) {
        sb_add_value(&ctx, a->topic, false);
        sb_addf(&ctx, " [%" PRId32 "] offset %" PRId64, a->partition, a->offset);
    }
    if (a->at != NULL) {
        sb_add(&ctx, a->kind == SLACK_ALERT_OUTCOME ? " · decided " : " · dead-lettered ");
        sb_add_value(&ctx, a->at, false);
    }
    char *c = sb_take(&ctx);
    if (c != NULL)
        json_array_append_new(blocks, json_pack("{s:s, s:[{s:s, s:s}]}", "type", "context",
                                                "elements", "type", "mrkdwn", "text", c));
    free(c);
    return blocks;
}

json_t *slack_alert_message(const struct slack_alert *in)
{
    char amount[64], masked[16];
    const char *amount_p = NULL, *masked_p = NULL;
    /* The error is what a gateway or a parser said: mask the config's
     * secrets before it is escaped for mrkdwn (after, "&" would be "&amp;"
     * and a secret holding it would no longer be found). */
    struct slack_alert copy = *in;
    const struct slack_alert *a = &copy;
    char *error = NULL;
    if (in->error_message != NULL) {
        error = redact_process_text(in->error_message);
        copy.error_message = error != NULL ? error : REDACT_MASK;
    }

    if (a->amount >= 0) {
        slack_format_amount(a->amount, a->currency, amount, sizeof(amount));
        amount_p = amount;
    }
    if (a->payment_key != NULL) {
        slack_mask_key(a->payment_key, masked, sizeof(masked));
        masked_p = masked;
    }
    char *text = alert_text(a, amount_p, masked_p);
    json_t *blocks = alert_blocks(a, amount_p, masked_p);
    json_t *msg = NULL;
    if (text != NULL && blocks != NULL)
        msg = json_pack("{s:s, s:O}", "text", text, "blocks", blocks);
    free(text);
    json_decref(blocks);
    free(error);
    /* And the whole message once more: any other field may quote one too. */
    redact_process_json(msg);
    return msg;
}

/* ---- digests ---- */

static void add_counts(struct sbuf *sb, const struct slack_count *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sb_add(sb, ", ");
        sb_add_value(sb, c[i].name, false);
        sb_addf(sb, " %d", c[i].count);
    }
}

static void add_first(struct sbuf *sb, const struct slack_digest *d, bool code)
{
    for (size_t i = 0; i < d->nfirst; i++) {
        if (i > 0)
            sb_add(sb, ", ");
        if (code)
            sb_add_code(sb, d->first_ids[i]);
        else
            sb_add_value(sb, d->first_ids[i], false);
    }
    if ((size_t)d->total > d->nfirst)
        sb_addf(sb, "%s(and %zu more)", d->nfirst > 0 ? " " : "", (size_t)d->total - d->nfirst);
}

static void add_list_command(struct sbuf *sb, const struct slack_digest *d)
{
    sb_add(sb, "`cancelctl dlq list");
    if (d->since != NULL) {
        sb_add(sb, " --since ");
        sb_add_value(sb, d->since, true);
    }
    if (d->until != NULL) {
        sb_add(sb, " --until ");
        sb_add_value(sb, d->until, true);
    }
    sb_add(sb, "`");
}

json_t *slack_digest_message(const struct slack_digest *d)
{
    struct sbuf text = {0}, head = {0}, counts = {0}, first = {0}, cmd = {0};
    char window[32];

    if (d->window_ms % 1000 == 0)
        snprintf(window, sizeof(window), "%" PRId64 "s", d->window_ms / 1000);
    else
        snprintf(window, sizeof(window), "%" PRId64 "ms", d->window_ms);

    sb_addf(&text, ":bell: Alert digest: %d alerts (more than %d within %s)", d->total,
            d->threshold, window);
    sb_add(&text, "\nBy reason: ");
    add_counts(&text, d->reasons, d->nreasons);
    sb_add(&text, "\nBy gateway: ");
    add_counts(&text, d->gateways, d->ngateways);
    sb_add(&text, "\nFirst requests: ");
    add_first(&text, d, false);
    sb_add(&text, "\nList them all: ");
    add_list_command(&text, d);

    sb_addf(&head, ":bell: Alert digest: %d alerts", d->total);
    sb_addf(&counts, "More than %d alerts within %s, so they are summed up here.\n*By reason*: ",
            d->threshold, window);
    add_counts(&counts, d->reasons, d->nreasons);
    sb_add(&counts, "\n*By gateway*: ");
    add_counts(&counts, d->gateways, d->ngateways);
    sb_add(&first, "*First requests*\n");
    add_first(&first, d, true);
    sb_add(&cmd, "*List them all*\n");
    add_list_command(&cmd, d);

    char *t = sb_take(&text), *h = sb_take(&head);
    json_t *msg = NULL;
    if (t != NULL && h != NULL)
        msg = json_pack("{s:s, s:[{s:s, s:{s:s, s:s, s:b}}, o, o, o]}", "text", t, "blocks", "type",
                        "header", "text", "type", "plain_text", "text", h, "emoji", 1,
                        mrkdwn_section(sb_take(&counts)), mrkdwn_section(sb_take(&first)),
                        mrkdwn_section(sb_take(&cmd)));
    else {
        free(counts.p);
        free(first.p);
        free(cmd.p);
    }
    free(t);
    free(h);
    redact_process_json(msg);
    return msg;
}

/* ---- answers ---- */

enum slack_result slack_classify(long status, const char *body, const char *curl_error, char *why,
                                 size_t whylen)
{
    char clean[120];

    if (status >= 200 && status < 300)
        return SLACK_SENT;
    if (status == 0) {
        snprintf(why, whylen, "no answer: %s",
                 curl_error != NULL && curl_error[0] != '\0' ? curl_error : "connection failed");
        redact_process_buf(why, whylen);
        return SLACK_TRANSIENT;
    }
    dlq_sanitize_text(body != NULL ? body : "", body != NULL ? strlen(body) : 0, clean,
                      sizeof(clean));
    snprintf(why, whylen, "HTTP %ld%s%s", status, clean[0] != '\0' ? ": " : "", clean);
    /* An answer may quote the webhook URL it was posted to. */
    redact_process_buf(why, whylen);
    if (status == 429)
        return SLACK_RATE_LIMITED;
    if (status == 408 || status >= 500)
        return SLACK_TRANSIENT;
    return SLACK_PERMANENT;
}

const char *slack_result_name(enum slack_result r)
{
    switch (r) {
    case SLACK_SENT:
        return "SENT";
    case SLACK_RATE_LIMITED:
        return "RATE_LIMITED";
    case SLACK_TRANSIENT:
        return "TRANSIENT";
    case SLACK_PERMANENT:
        return "PERMANENT";
    }
    return "?";
}
