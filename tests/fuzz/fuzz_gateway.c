/*
 * fuzz_gateway: what a gateway answers, read by src/gateway/gateway.c,
 * gateway_toss.c, gateway_stripe.c, gateway_portone.c, gateway_adyen.c and
 * gateway_table.c, without HTTP.
 *
 * Input: a header line, then one or two bodies:
 *
 *     STATUS AMOUNT CURRENCY PARTIAL SAME_DONE SAME_OPEN REQUEST_ID\n
 *     BODY
 *     \n--\n
 *     SECOND_BODY
 *
 * Missing header fields keep their defaults (200 10000 KRW 0 0 0 req-1; a
 * CURRENCY of "-" is none). BODY is the answer to a refund, a Toss payment
 * inquiry, a Stripe PaymentIntent, a KakaoPay order or a PortOne Payment;
 * SECOND_BODY (optional) Stripe's refund list. Each input runs:
 * - gateway_classify() for Toss, Stripe, KakaoPay, PortOne and Adyen, as a
 *   refund answer (with the request) and as an inquiry answer (without); with
 *   STATUS 0 the body is
 *   libcurl's error text and AMOUNT % 100 its error code;
 * - gateway_toss_parse_payment() of BODY, then gateway_toss_judge() and
 *   gateway_toss_resolve_already_refunded() of what it read;
 * - gateway_stripe_judge() of BODY and SECOND_BODY;
 * - the KakaoPay driver's judge of BODY as its order inquiry;
 * - the PortOne driver's judge of BODY: a balance guard's value only with a
 *   proven NOT_REFUNDED, never negative, never above the payment;
 * - the Adyen driver's judge of BODY (a replayed refund's answer).
 * Properties: every answer has a rule, a known verdict, NUL-terminated code
 * and message, its status and "answered" as given; only a 2xx is SUCCEEDED;
 * a Toss refund answer that shows our cancel done is also what an inquiry
 * of the same payment judges REFUNDED; findings are known values; no crash,
 * leak or undefined behaviour.
 */
#include "fuzz.h"

#include <stdbool.h>

#include <curl/curl.h>

#include "gateway/gateway.h"
#include "gateway/gateway_driver.h"
#include "gateway/gateway_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

struct input {
    long status;
    struct refund_request req;
    char currency[8];
    char request_id[64];
    char *body;   /* owned */
    char *second; /* owned, NULL when absent */
};

/* Next space-separated token of *p (advanced) into tok; false at the end of
 * the line. */
static bool token(const char **p, char *tok, size_t toklen)
{
    size_t n = 0;
    while (**p == ' ')
        (*p)++;
    if (**p == '\0')
        return false;
    while (**p != '\0' && **p != ' ') {
        if (n + 1 < toklen)
            tok[n++] = **p;
        (*p)++;
    }
    tok[n] = '\0';
    return true;
}

static void parse_input(const uint8_t *data, size_t size, struct input *in)
{
    char *all = fuzz_strndup(data, size), tok[64];
    char *nl = strchr(all, '\n');
    const char *p = all;

    memset(in, 0, sizeof(*in));
    in->status = 200;
    in->req.amount = 10000;
    snprintf(in->currency, sizeof(in->currency), "KRW");
    snprintf(in->request_id, sizeof(in->request_id), "req-1");
    in->req.payment_key = "pay-1";
    in->req.reason = "fuzz";
    if (nl != NULL)
        *nl = '\0';
    if (token(&p, tok, sizeof(tok)))
        in->status = strtol(tok, NULL, 10);
    if (token(&p, tok, sizeof(tok)))
        in->req.amount = strtoll(tok, NULL, 10);
    if (token(&p, tok, sizeof(tok)))
        snprintf(in->currency, sizeof(in->currency), "%.7s", tok);
    if (token(&p, tok, sizeof(tok)))
        in->req.partial = strcmp(tok, "0") != 0;
    /* Counts of other requests from the db: small and never negative. */
    if (token(&p, tok, sizeof(tok)))
        in->req.same_amount_done = (int)(strtoul(tok, NULL, 10) % 1000);
    if (token(&p, tok, sizeof(tok)))
        in->req.same_amount_open = (int)(strtoul(tok, NULL, 10) % 1000);
    if (token(&p, tok, sizeof(tok)))
        snprintf(in->request_id, sizeof(in->request_id), "%s", tok);
    in->req.currency = strcmp(in->currency, "-") == 0 ? NULL : in->currency;
    in->req.request_id = in->request_id;

    const char *body = nl != NULL ? nl + 1 : "";
    const char *sep = strstr(body, "\n--\n");
    if (sep != NULL) {
        in->body = fuzz_strndup((const uint8_t *)body, (size_t)(sep - body));
        in->second = fuzz_strndup((const uint8_t *)sep + 4, strlen(sep + 4));
    } else {
        in->body = fuzz_strndup((const uint8_t *)body, strlen(body));
    }
    free(all);
}

static void check_answer(const struct gateway_answer *a, long status, const char *what)
{
    FUZZ_CHECK(a->rule != NULL && a->rule[0] != '\0', "%s: no rule", what);
    FUZZ_CHECK(a->verdict >= GATEWAY_SUCCEEDED && a->verdict <= GATEWAY_UNVERIFIED,
               "%s: verdict %d", what, (int)a->verdict);
    FUZZ_CHECK(strcmp(gateway_verdict_name(a->verdict), "UNKNOWN") != 0, "%s: unnamed verdict",
               what);
    FUZZ_CHECK(fuzz_terminated(a->code, sizeof(a->code)) &&
                   fuzz_terminated(a->message, sizeof(a->message)),
               "%s: code or message not terminated", what);
    FUZZ_CHECK(a->http_status == status && a->answered == (status != 0),
               "%s: status %ld answered %d", what, a->http_status, (int)a->answered);
    FUZZ_CHECK(a->verdict != GATEWAY_SUCCEEDED || (status >= 200 && status < 300),
               "%s: status %ld is SUCCEEDED (rule %s)", what, status, a->rule);
    FUZZ_CHECK(a->retry_after_ms == -1 && a->latency_ms == 0 && !a->replayed,
               "%s: fields a classification does not know", what);
}

static bool finding_known(enum refund_finding f)
{
    return f >= FINDING_NONE && f <= FINDING_UNKNOWN;
}

static void classify_all(const struct input *in)
{
    static char *codes[] = {"NOT_CANCELABLE_PAYMENT", "PROVIDER_ERROR", "rate_limit", ""};
    const struct retry_policy policy = {.non_retryable_codes = codes, .n_non_retryable_codes = 4};
    const enum gateway_kind kinds[] = {GATEWAY_TOSS, GATEWAY_STRIPE, GATEWAY_KAKAOPAY,
                                       GATEWAY_PORTONE, GATEWAY_ADYEN};
    int curl_code = in->status == 0 ? (int)(in->req.amount % 100) : CURLE_OK;
    const char *curl_error = in->status == 0 ? in->body : NULL;
    struct gateway_answer a;

    if (curl_code < 0)
        curl_code = -curl_code;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        const char *name = config_gateway_kind_name(kinds[k]);
        gateway_classify(kinds[k], in->status, in->body, curl_code, curl_error, &policy, &in->req,
                         &a);
        check_answer(&a, in->status, name);
        FUZZ_CHECK(!(a.verdict == GATEWAY_RETRYABLE && a.code[0] != '\0' &&
                     config_retry_code_is_non_retryable(&policy, a.code)),
                   "%s: non-retryable code %s is RETRYABLE", name, a.code);
        if (kinds[k] == GATEWAY_TOSS && a.verdict == GATEWAY_SUCCEEDED) {
            /* The refund answer shows our cancel done: an inquiry that read
             * the same payment must find it too. */
            struct gateway_payment p;
            char detail[256];
            memset(&p, 0, sizeof(p));
            FUZZ_CHECK(gateway_toss_parse_payment(in->body, &p),
                       "toss: SUCCEEDED on a body that is no payment");
            enum refund_finding f = gateway_toss_judge(&p, &in->req, detail, sizeof(detail));
            FUZZ_CHECK(f == FINDING_REFUNDED, "toss: the answer is SUCCEEDED, the inquiry %s (%s)",
                       gateway_finding_name(f), detail);
        }
        gateway_classify(kinds[k], in->status, in->body, curl_code, curl_error, NULL, NULL, &a);
        check_answer(&a, in->status, name);
        FUZZ_CHECK(!(in->status >= 200 && in->status < 300) || a.verdict == GATEWAY_SUCCEEDED,
                   "%s: a 2xx inquiry answer is %s", name, gateway_verdict_name(a.verdict));
    }
}

static void toss_inquiry(const struct input *in)
{
    struct gateway_payment p;
    struct gateway_answer a;
    char detail[256];

    memset(&p, 0, sizeof(p));
    if (!gateway_toss_parse_payment(in->body, &p))
        return;
    FUZZ_CHECK(p.ncancels <= sizeof(p.cancels) / sizeof(p.cancels[0]), "%zu cancels", p.ncancels);
    FUZZ_CHECK(p.canceled_amount >= -1, "canceled amount %lld", (long long)p.canceled_amount);
    FUZZ_CHECK(fuzz_terminated(p.status, sizeof(p.status)) &&
                   fuzz_terminated(p.currency, sizeof(p.currency)) &&
                   fuzz_terminated(p.refund_status, sizeof(p.refund_status)),
               "payment strings not terminated");
    enum refund_finding f = gateway_toss_judge(&p, &in->req, detail, sizeof(detail));
    FUZZ_CHECK(finding_known(f) && f != FINDING_NONE && detail[0] != '\0', "finding %d", (int)f);

    /* An ALREADY_CANCELED_PAYMENT confirmed (or not) by this inquiry. */
    memset(&a, 0, sizeof(a));
    a.verdict = GATEWAY_ALREADY_REFUNDED;
    p.answer.verdict = GATEWAY_SUCCEEDED;
    gateway_toss_resolve_already_refunded(&p, in->req.partial, in->req.amount, &a);
    FUZZ_CHECK(a.verdict == GATEWAY_ALREADY_REFUNDED || a.verdict == GATEWAY_PERMANENT,
               "already refunded: %s", gateway_verdict_name(a.verdict));
    FUZZ_CHECK(fuzz_terminated(a.message, sizeof(a.message)), "message not terminated");
}

static void stripe_inquiry(const struct input *in)
{
    struct gateway_inquiry q;

    memset(&q, 0, sizeof(q));
    gateway_stripe_judge(in->body, in->second, &in->req, &q);
    FUZZ_CHECK(finding_known(q.finding) && q.finding != FINDING_NONE && q.detail[0] != '\0',
               "finding %d", (int)q.finding);
    FUZZ_CHECK(fuzz_terminated(q.currency, sizeof(q.currency)) &&
                   fuzz_terminated(q.detail, sizeof(q.detail)),
               "inquiry strings not terminated");
    FUZZ_CHECK(q.finding != FINDING_REFUNDED || in->second != NULL,
               "REFUNDED without a refund list");
}

static void kakaopay_inquiry(const struct input *in)
{
    struct gateway_inquiry q;
    const char *bodies[] = {in->body};

    memset(&q, 0, sizeof(q));
    gateway_kakaopay_driver.judge(bodies, 1, &in->req, &q);
    FUZZ_CHECK(finding_known(q.finding) && q.finding != FINDING_NONE && q.detail[0] != '\0',
               "kakaopay finding %d", (int)q.finding);
    FUZZ_CHECK(fuzz_terminated(q.currency, sizeof(q.currency)) &&
                   fuzz_terminated(q.detail, sizeof(q.detail)),
               "kakaopay inquiry strings not terminated");
    /* A balance the next cancel would carry is one the answer gave. */
    FUZZ_CHECK(q.finding != FINDING_NOT_REFUNDED || q.cancellable_amount >= 0,
               "NOT_REFUNDED with cancellable %lld", (long long)q.cancellable_amount);
}

static void portone_inquiry(const struct input *in)
{
    struct gateway_inquiry q;
    const char *bodies[] = {in->body};

    memset(&q, 0, sizeof(q));
    q.payment_amount = q.refunded_amount = q.cancellable_amount = -1;
    gateway_portone_driver.judge(bodies, 1, &in->req, &q);
    FUZZ_CHECK(finding_known(q.finding) && q.finding != FINDING_NONE && q.detail[0] != '\0',
               "portone: finding %d", (int)q.finding);
    FUZZ_CHECK(fuzz_terminated(q.currency, sizeof(q.currency)) &&
                   fuzz_terminated(q.detail, sizeof(q.detail)),
               "portone: inquiry strings not terminated");
    /* A guard value is what a cancel will carry: only from a proven "none
     * of ours", and a balance the payment can have. */
    FUZZ_CHECK(q.cancellable_amount == -1 ||
                   (q.finding == FINDING_NOT_REFUNDED && q.cancellable_amount >= 0 &&
                    q.cancellable_amount <= q.payment_amount),
               "portone: guard %lld with %s of %lld", (long long)q.cancellable_amount,
               gateway_finding_name(q.finding), (long long)q.payment_amount);
}

/* Adyen's inquiry is the refund replayed: its judge must agree with the
 * classification of the same body as the refund's answer. */
static void adyen_inquiry(const struct input *in)
{
    const struct gateway_driver *drv = gateway_driver_of(GATEWAY_ADYEN);
    const char *bodies[1] = {in->body};
    struct gateway_inquiry q;
    struct gateway_answer a;

    memset(&q, 0, sizeof(q));
    drv->judge(bodies, 1, &in->req, &q);
    FUZZ_CHECK(q.finding == FINDING_PENDING || q.finding == FINDING_MISMATCH ||
                   q.finding == FINDING_UNKNOWN,
               "adyen: a replay can only be pending, a mismatch or unknown, not %s",
               gateway_finding_name(q.finding));
    FUZZ_CHECK(fuzz_terminated(q.currency, sizeof(q.currency)) &&
                   fuzz_terminated(q.detail, sizeof(q.detail)) && q.detail[0] != '\0',
               "adyen: inquiry strings");
    gateway_classify(GATEWAY_ADYEN, 201, in->body, CURLE_OK, NULL, NULL, &in->req, &a);
    FUZZ_CHECK((a.verdict == GATEWAY_PENDING) == (q.finding == FINDING_PENDING),
               "adyen: the answer is %s, the replay's judge %s", gateway_verdict_name(a.verdict),
               gateway_finding_name(q.finding));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in;

    parse_input(data, size, &in);
    classify_all(&in);
    toss_inquiry(&in);
    stripe_inquiry(&in);
    kakaopay_inquiry(&in);
    portone_inquiry(&in);
    adyen_inquiry(&in);
    free(in.body);
    free(in.second);
    return 0;
}
