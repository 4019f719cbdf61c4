/*
 * retry_notify: the retry-consumer's side of gateways that send a refund's
 * result as a notification (Adyen; docs/gateways.md "Safety mechanisms and
 * drivers"). The webhook-receiver stores the notifications and makes a
 * waiting request due; the attempt that then runs reads them here before it
 * asks the gateway anything.
 */
#ifndef CR_RETRY_NOTIFY_H
#define CR_RETRY_NOTIFY_H

#include "config/config.h"
#include "core/retry_job.h"
#include "store/db.h"

/* Ask what the gateway did about j's claimed request: for a notification
 * gateway its stored notifications first (a refund, or its refusal, failure
 * or reversal, decides), then the gateway's own inquiry (retry_job_inquire).
 * A database that cannot be read is no answer: FINDING_UNKNOWN, nothing is
 * sent on it. An inquiry that replays the refund (Adyen) is made only while
 * a refund may still be sent (retry_steps_may_send): past the deadline the
 * key may die at the gateway, and a replay then would be a second refund;
 * the finding is UNKNOWN, and the request ends REFUND_STATE_UNKNOWN for a
 * person unless a notification decides first. */
void retry_notify_inquire(struct db *db, const struct config *cfg, struct job *j);

/* j's request was just recorded PENDING at a notification gateway: a
 * notification that came while its attempt ran found it IN_FLIGHT and could
 * not make it due. Read after the record committed, so that a notification
 * committed before this read is seen here and one after it found the
 * request PENDING and woke it: make it due now when one is stored. Failures
 * are left to the PENDING check already due. */
void retry_notify_wake(struct db *db, const struct config *cfg, struct job *j);

#endif
