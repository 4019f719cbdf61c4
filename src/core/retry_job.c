/*
 * retry_job: see retry_job.h.
 */
#include "core/retry_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void retry_job_free(struct job *j)
{
    if (j == NULL)
        return;
    free(j->topic);
    free(j->value);
    free(j->key);
    cloudevent_clear(&j->ev);
    retry_scheduled_clear(&j->rs);
    if (j->have_row)
        request_row_clear(&j->row);
    free(j);
}

static struct gw *gw_find(struct gw *gws, size_t ngws, const char *name)
{
    for (size_t i = 0; i < ngws; i++) {
        if (strcmp(gws[i].cfg->name, name) == 0)
            return &gws[i];
    }
    return NULL;
}

struct job *retry_job_new(const struct kafka_record *rec, struct gw *gws, size_t ngws)
{
    struct job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    j->topic = strdup(rec->topic);
    j->partition = rec->partition;
    j->offset = rec->offset;
    j->timestamp_ms = rec->timestamp_ms;
    j->value = malloc(rec->len + 1);
    if (rec->key != NULL && rec->key_len > 0)
        j->key = strndup(rec->key, rec->key_len);
    if (j->topic == NULL || j->value == NULL) {
        retry_job_free(j);
        return NULL;
    }
    memcpy(j->value, rec->value, rec->len);
    j->value[rec->len] = '\0';
    j->len = rec->len;

    enum event_verdict v =
        cloudevent_parse(j->value, j->len, &j->ev, j->poison_error, sizeof(j->poison_error));
    if (v == EVENT_OK)
        v = retry_scheduled_parse(&j->ev, &j->rs, j->poison_error, sizeof(j->poison_error));
    if (v != EVENT_OK) {
        j->poison_reason = event_verdict_name(v);
    } else {
        j->gw = gw_find(gws, ngws, j->rs.gateway);
        if (j->gw == NULL) {
            j->poison_reason = DLQ_REASON_UNKNOWN_GATEWAY;
            snprintf(j->poison_error, sizeof(j->poison_error), "gateway \"%s\" is not configured",
                     j->rs.gateway);
        }
    }
    j->state = JOB_START;
    return j;
}

static void on_answer(const struct gateway_answer *answer, void *arg)
{
    struct job *j = arg;
    j->result.answer = *answer;
    j->result.called = true;
    j->state = JOB_CALLED;
}

/* An inquiry that asked first lands in JOB_ASKED, one after the answer in
 * JOB_ANSWERED. */
static void on_inquiry(const struct gateway_inquiry *inquiry, void *arg)
{
    struct job *j = arg;
    j->result.inquiry = *inquiry;
    j->result.inquired = true;
    j->state = j->result.called ? JOB_ANSWERED : JOB_ASKED;
}

static void job_request(const struct job *j, struct refund_request *req)
{
    memset(req, 0, sizeof(*req));
    req->request_id = j->row.request_id;
    req->idempotency_key = j->idem_key;
    req->payment_key = j->row.payment_key;
    req->amount = j->row.amount;
    req->currency = j->row.currency;
    req->partial = j->row.partial;
    req->reason = j->row.reason;
    req->same_amount_done = j->row.same_amount_done;
    req->same_amount_open = j->row.same_amount_open;
    /* A balance guard's value: what the inquiry just before this call read
     * (gateway.h); the driver of a guard-less gateway ignores it. */
    if (j->result.before == FINDING_NOT_REFUNDED && j->result.inquiry.cancellable_amount >= 0) {
        req->has_guard = true;
        req->guard_amount = j->result.inquiry.cancellable_amount;
    }
}

/* Ask the gateway what it did about the claimed request. */
void retry_job_inquire(struct job *j)
{
    char err[512];
    struct refund_request req;

    /* An inquiry that replays the refund (Adyen has no other) goes under
     * the key of the current generation. */
    if (!j->result.called)
        gateway_client_key(j->gw->client, j->row.request_id, j->row.key_generation, j->idem_key,
                           sizeof(j->idem_key));
    job_request(j, &req);
    j->state = JOB_ASKING;
    if (!gateway_inquire_refund_start(j->gw->client, &req, on_inquiry, j, err, sizeof(err)))
        retry_job_found(j, FINDING_UNKNOWN, err);
}

void retry_job_found(struct job *j, enum refund_finding finding, const char *detail)
{
    struct gateway_inquiry q;
    memset(&q, 0, sizeof(q));
    q.finding = finding;
    q.payment_amount = q.refunded_amount = q.cancellable_amount = -1;
    snprintf(q.detail, sizeof(q.detail), "%.*s", (int)sizeof(q.detail) - 1, detail);
    j->state = JOB_ASKING;
    on_inquiry(&q, j);
}

/* Answer the job's refund call ourselves: nothing was sent (rule and code
 * say why, err is the message). */
static void answer_unsent(struct job *j, enum gateway_verdict verdict, bool no_refund,
                          const char *rule, const char *code, const char *err)
{
    struct gateway_answer a;
    memset(&a, 0, sizeof(a));
    a.verdict = verdict;
    a.no_refund = no_refund;
    a.retry_after_ms = -1;
    a.rule = rule;
    snprintf(a.code, sizeof(a.code), "%s", code);
    snprintf(a.message, sizeof(a.message), "%.*s", (int)sizeof(a.message) - 1, err);
    on_answer(&a, j);
}

/* Send the refund under generation gen. */
void retry_job_call(struct job *j, int gen)
{
    char err[1024];
    struct refund_request req;

    j->result.key_generation = gen;
    gateway_client_key(j->gw->client, j->row.request_id, gen, j->idem_key, sizeof(j->idem_key));
    snprintf(j->result.key, sizeof(j->result.key), "%s",
             gateway_client_has_key(j->gw->client) ? j->idem_key : "");
    job_request(j, &req);
    j->state = JOB_IN_CALL;
    if (!gateway_payment_key_usable(req.payment_key, err, sizeof(err))) {
        /* A row from before the intake refused such keys: nothing was sent
         * and nothing ever can be, so the answer proves no refund (FAILED,
         * not an endless retry). */
        answer_unsent(j, GATEWAY_PERMANENT, true, "client_invalid_payment_key",
                      "INVALID_PAYMENT_KEY", err);
        return;
    }
    if (!gateway_refund_start(j->gw->client, &req, on_answer, j, err, sizeof(err))) {
        /* Could not even send: a retryable answer, recorded like any other. */
        answer_unsent(j, GATEWAY_RETRYABLE, false, "client_error", "CLIENT_ERROR", err);
    }
}

void retry_job_log(const struct job *j, enum log_level level, const char *what, const char *why)
{
    struct log_ctx ctx = LOG_CTX_INIT;
    ctx.topic = j->topic;
    ctx.partition = j->partition;
    ctx.offset = j->offset;
    ctx.request_id = j->rs.request_id;
    ctx.correlation_id = j->ev.correlationid;
    log_emit(level, &ctx, "%s%s%s", what, why != NULL ? ": " : "", why != NULL ? why : "");
}
