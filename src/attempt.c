/*
 * attempt: see attempt.h.
 */
#include "attempt.h"

#include "cancel_event.h"
#include "dlq.h"
#include "retry_policy.h"

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
}

void attempt_decide(const struct attempt_facts *f, struct attempt_decision *d)
{
    switch (f->verdict) {
    case GATEWAY_SUCCEEDED:
        final(d, CANCEL_STATUS_SUCCEEDED, NULL, "the gateway refunded the payment");
        return;
    case GATEWAY_ALREADY_REFUNDED:
        final(d, CANCEL_STATUS_ALREADY_REFUNDED, NULL,
              "the gateway reports the payment already refunded");
        return;
    case GATEWAY_PERMANENT:
        final(d, CANCEL_STATUS_FAILED, DLQ_REASON_FAILED,
              "the gateway refused the refund; retrying cannot change that");
        return;
    case GATEWAY_CONFIG_FAULT:
        /* Permanent for this attempt, but the fix is ours (credentials, URL):
         * dead-lettered under its own reason so that it is replayed after the
         * configuration is fixed. */
        final(d, CANCEL_STATUS_FAILED, DLQ_REASON_CONFIG_FAULT,
              "the gateway rejected our credentials or configuration");
        return;
    case GATEWAY_RETRYABLE:
        break;
    }

    int used = f->attempt - f->budget_base;
    int64_t delay = retry_policy_delay_ms(f->policy, f->attempt, f->retry_after_ms, f->random);
    int64_t last_start = attempt_last_start_ms(f->deadline_ms, f->key_expires_ms, f->lease_ms);
    int64_t next_at = 0;

    /* The request's own budget wins over the policy's: a replay may have given
     * it a different max_attempts than the config has today. */
    struct retry_policy budget = *f->policy;
    budget.max_attempts = f->max_attempts;
    if (used >= f->max_attempts) {
        final(d, CANCEL_STATUS_EXHAUSTED, DLQ_REASON_EXHAUSTED,
              "every attempt of the budget failed");
        return;
    }
    if (retry_policy_decide(&budget, used, f->now_ms, last_start, delay, &next_at) ==
        RETRY_EXHAUSTED) {
        final(d, CANCEL_STATUS_EXHAUSTED, DLQ_REASON_EXHAUSTED,
              "the next attempt would start after the deadline");
        return;
    }
    d->status = REQUEST_SCHEDULED;
    d->decision = "RETRY";
    d->final = false;
    d->next_attempt_ms = next_at;
    d->dlq_reason = NULL;
    d->why = "retryable answer; next attempt scheduled";
}
