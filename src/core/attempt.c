/*
 * attempt: see attempt.h.
 */
#include "core/attempt.h"

#include <stdio.h>
#include <string.h>

#include "core/retry_policy.h"
#include "event/cancel_event.h"
#include "event/dlq.h"

int64_t attempt_last_start_ms(int64_t deadline_ms, int64_t key_expires_ms, int64_t lease_ms)
{
    int64_t last = deadline_ms;
    /* A retry after the key expired at the gateway is a new refund there: for a
     * partial cancel that is a second refund. Stop a whole lease before. */
    if (key_expires_ms > 0 && key_expires_ms - lease_ms < last)
        last = key_expires_ms - lease_ms;
    return last;
}

static void final(struct attempt_decision *d, const char *status, const char *dlq_reason,
                  const char *why)
{
    d->status = status;
    d->decision = status;
    d->final = true;
    d->next_attempt_ms = 0;
    d->dlq_reason = dlq_reason;
    d->why = why;
    d->inquire_first = false;
    d->final_check = NULL;
}

static void failed(struct attempt_decision *d, const char *why)
{
    final(d, CANCEL_STATUS_FAILED, DLQ_REASON_FAILED, why);
}

static void exhausted(struct attempt_decision *d, const char *why)
{
    final(d, CANCEL_STATUS_EXHAUSTED, DLQ_REASON_EXHAUSTED, why);
}

/* End in final_check's status (EXHAUSTED or FAILED). */
static void end_as(struct attempt_decision *d, const char *status, const char *why)
{
    if (status != NULL && strcmp(status, CANCEL_STATUS_FAILED) == 0)
        failed(d, why);
    else
        exhausted(d, why);
}

/* The next attempt, or NULL-free EXHAUSTED when none may start: returns
 * false when no attempt is left (d untouched). spend: whether this attempt
 * counts against the budget. */
static bool schedule(const struct attempt_facts *f, struct attempt_decision *d, bool spend,
                     const char *status)
{
    int used = f->attempt - f->budget_base - (spend ? 0 : 1);
    int64_t delay = retry_policy_delay_ms(f->policy, f->attempt, f->retry_after_ms, f->random);
    int64_t last_start = attempt_last_start_ms(f->deadline_ms, f->key_expires_ms, f->lease_ms);
    int64_t next_at = 0;

    /* The request's own budget wins over the policy's: a replay may have given
     * it a different max_attempts than the config has today. */
    struct retry_policy budget = *f->policy;
    budget.max_attempts = f->max_attempts;
    if (used >= f->max_attempts)
        return false;
    if (retry_policy_decide(&budget, used, f->now_ms, last_start, delay, &next_at) ==
        RETRY_EXHAUSTED)
        return false;
    d->status = status;
    d->decision = strcmp(status, REQUEST_PENDING) == 0 ? REQUEST_PENDING : "RETRY";
    d->final = false;
    d->next_attempt_ms = next_at;
    d->dlq_reason = NULL;
    d->spend = spend;
    return true;
}

/* No attempt is left after an answer that does not settle whether money
 * moved: an inquiry decides (now, or in a final check while the deadline
 * allows one). final_status is what a proven "no refund" ends in. */
static void settle(const struct attempt_facts *f, struct attempt_decision *d,
                   const char *final_status, const char *why)
{
    end_as(d, final_status, why);
    switch (f->finding) {
    case FINDING_NONE:
        d->inquire_now = true; /* the end above stands only if the inquiry allows */
        return;
    case FINDING_NOT_REFUNDED:
        return;
    default: /* UNKNOWN: try the inquiry again later, without the budget */
        break;
    }
    struct attempt_facts g = *f;
    g.max_attempts = f->attempt - f->budget_base; /* budget-free check: 1 more */
    g.key_expires_ms = 0;                         /* an inquiry sends no key */
    if (schedule(&g, d, false, REQUEST_SCHEDULED)) {
        d->inquire_first = true;
        d->final_check = final_status;
        d->why = "the refund's state at the gateway is unknown; an inquiry will decide";
        return;
    }
    end_as(d, final_status, "the refund's state at the gateway is still unknown");
    d->code = "REFUND_STATE_UNKNOWN";
}

/* What an inquiry found decides, if it is conclusive. */
static bool decide_by_finding(const struct attempt_facts *f, struct attempt_decision *d)
{
    switch (f->finding) {
    case FINDING_REFUNDED:
        final(d, CANCEL_STATUS_SUCCEEDED, NULL, "an inquiry shows the refund made");
        d->found_by_inquiry = true;
        return true;
    case FINDING_ALREADY_REFUNDED:
        final(d, CANCEL_STATUS_ALREADY_REFUNDED, NULL,
              "an inquiry shows the payment already refunded");
        d->found_by_inquiry = true;
        return true;
    case FINDING_PENDING:
        if (!schedule(f, d, false, REQUEST_PENDING)) {
            /* No budget is spent while waiting; only a policy without any
             * delay left could end here. Never give up on money in flight. */
            d->status = REQUEST_PENDING;
            d->decision = REQUEST_PENDING;
            d->final = false;
            d->spend = false;
            d->next_attempt_ms = f->now_ms + f->policy->max_delay_ms;
        }
        d->inquire_first = true;
        d->final_check = f->final_check;
        d->why = "the refund is pending at the gateway; an inquiry will confirm it";
        return true;
    case FINDING_REFUND_FAILED:
        failed(d, "the gateway reports our refund failed or canceled");
        d->code = "REFUND_FAILED";
        return true;
    case FINDING_MISMATCH:
        failed(d, "the gateway's payment or refund does not match the request");
        d->code = "AMOUNT_OR_CURRENCY_MISMATCH";
        return true;
    default:
        return false;
    }
}

/* An attempt that made no refund call: its inquiry is all there is. */
static void decide_without_call(const struct attempt_facts *f, struct attempt_decision *d)
{
    if (f->finding == FINDING_NOT_REFUNDED) {
        /* Only a final check (or an attempt past its last start) ends here. */
        end_as(d, f->final_check, "an inquiry shows no refund, and no attempt is left");
        return;
    }
    /* UNKNOWN: the same inquiry again later. A final check spends nothing. */
    if (f->final_check != NULL) {
        settle(f, d, f->final_check, "");
        return;
    }
    if (schedule(f, d, true, REQUEST_SCHEDULED)) {
        d->inquire_first = true;
        d->why = "the inquiry got no answer; it is tried again before any refund";
        return;
    }
    settle(f, d, CANCEL_STATUS_EXHAUSTED, "every attempt of the budget failed");
}

void attempt_decide(const struct attempt_facts *f, struct attempt_decision *d)
{
    memset(d, 0, sizeof(*d));
    d->spend = true;
    d->key_holds_error = false;

    if (decide_by_finding(f, d))
        return;
    if (f->no_call) {
        decide_without_call(f, d);
        return;
    }

    switch (f->verdict) {
    case GATEWAY_SUCCEEDED:
        final(d, CANCEL_STATUS_SUCCEEDED, NULL, "the gateway refunded the payment");
        return;
    case GATEWAY_ALREADY_REFUNDED:
        final(d, CANCEL_STATUS_ALREADY_REFUNDED, NULL,
              "the gateway reports the payment already refunded");
        return;
    case GATEWAY_CONFIG_FAULT:
        /* Permanent for this attempt, but the fix is ours (credentials, URL):
         * dead-lettered under its own reason so that it is replayed after the
         * configuration is fixed. */
        final(d, CANCEL_STATUS_FAILED, DLQ_REASON_CONFIG_FAULT,
              "the gateway rejected our credentials or configuration");
        return;
    case GATEWAY_PENDING:
        if (!schedule(f, d, false, REQUEST_PENDING)) {
            d->status = REQUEST_PENDING;
            d->decision = REQUEST_PENDING;
            d->next_attempt_ms = f->now_ms + f->policy->max_delay_ms;
        }
        d->spend = false;
        d->inquire_first = true;
        d->why = "the gateway accepted the refund; its result comes later";
        return;
    case GATEWAY_PERMANENT:
        if (f->no_refund || f->finding == FINDING_NOT_REFUNDED) {
            failed(d, "the gateway refused the refund; retrying cannot change that");
            return;
        }
        /* A refusal that does not prove nothing moved (a reused key, a code
         * the documents do not list): ask before calling it FAILED. */
        settle(f, d, CANCEL_STATUS_FAILED,
               "the gateway refused the refund; retrying cannot change that");
        return;
    case GATEWAY_IN_PROGRESS:
        /* The gateway is still working on this key: asking again later is
         * right, and it is not a failed attempt. */
        if (schedule(f, d, false, REQUEST_SCHEDULED)) {
            d->why = "the gateway is still processing this key; asked again later";
            return;
        }
        settle(f, d, CANCEL_STATUS_EXHAUSTED, "the deadline came while the gateway was busy");
        return;
    case GATEWAY_RETRYABLE:
    case GATEWAY_UNVERIFIED:
        break;
    }

    bool held = f->stored || f->repeated || f->verdict == GATEWAY_UNVERIFIED;
    if (held && f->finding == FINDING_NONE) {
        /* The same key would get the same answer forever: only an inquiry
         * can open a new key. Decided again with its finding. */
        d->inquire_now = true;
    }
    bool scheduled = schedule(f, d, true, REQUEST_SCHEDULED);
    if (scheduled) {
        d->why = "retryable answer; next attempt scheduled";
        if (held && f->finding == FINDING_NOT_REFUNDED) {
            d->new_key = true;
            d->why = "the key holds the gateway's answer and no refund exists: next attempt "
                     "under a new key";
        } else if (held) {
            d->key_holds_error = true;
            d->inquire_first = true;
        }
        return;
    }
    settle(f, d, CANCEL_STATUS_EXHAUSTED,
           f->attempt - f->budget_base >= f->max_attempts
               ? "every attempt of the budget failed"
               : "the next attempt would start after the deadline");
}

enum attempt_start attempt_after_inquiry(enum refund_finding finding, bool key_holds_error,
                                         const char *final_check, bool may_call)
{
    if (finding != FINDING_NOT_REFUNDED || final_check != NULL || !may_call)
        return ATTEMPT_NO_CALL;
    return key_holds_error ? ATTEMPT_CALL_NEW_KEY : ATTEMPT_CALL;
}
