-- Gateway truth: key generations, pending refunds, inquiries (docs/gateways.md).
--
-- A gateway stores its first answer under an Idempotency-Key, errors
-- included, so a request whose key holds an error can only succeed under a
-- new key: requestId, then requestId.2, requestId.3, ... (key_generation).
-- A new generation is opened only after an inquiry proved that no refund of
-- ours exists, and never while the previous one may still be in flight.

ALTER TABLE cancel_request
    ADD COLUMN key_generation  integer NOT NULL DEFAULT 1 CHECK (key_generation >= 1),
    -- The current key holds a stored non-success answer: the next attempt
    -- inquires first, and opens a new generation if no refund exists.
    ADD COLUMN key_holds_error boolean NOT NULL DEFAULT false,
    -- The next attempt starts with an inquiry (a pending refund to confirm,
    -- an inquiry that got no answer, a final check).
    ADD COLUMN inquire_first   boolean NOT NULL DEFAULT false,
    -- The budget is spent but the last answer left open whether money moved:
    -- only an inquiry is left, and this is the status a proven "no refund"
    -- ends in.
    ADD COLUMN final_check     text CHECK (final_check IN ('EXHAUSTED', 'FAILED')),
    -- SUCCEEDED or ALREADY_REFUNDED proven by an inquiry rather than by the
    -- refund call's own answer (shown by cancelctl show and in the log).
    ADD COLUMN found_by_inquiry boolean NOT NULL DEFAULT false;

-- PENDING: the gateway accepted the refund and reports its result later
-- (Stripe pending / requires_action, a Toss cancel not done yet). Not final:
-- an inquiry confirms it; waiting spends no attempt.
ALTER TABLE cancel_request DROP CONSTRAINT cancel_request_status_check;
ALTER TABLE cancel_request ADD CONSTRAINT cancel_request_status_check
    CHECK (status IN ('SCHEDULED', 'IN_FLIGHT', 'PENDING', 'SUCCEEDED', 'ALREADY_REFUNDED',
                      'FAILED', 'EXHAUSTED', 'MANUALLY_RESOLVED'));
ALTER TABLE cancel_request ADD CONSTRAINT cancel_request_pending_next_check
    CHECK (status <> 'PENDING' OR next_attempt_at IS NOT NULL);

DROP INDEX cancel_request_due_idx;
CREATE INDEX cancel_request_due_idx ON cancel_request (next_attempt_at)
    WHERE status IN ('SCHEDULED', 'PENDING');

-- The attempt log says which key each attempt used and what an inquiry found.
ALTER TABLE retry_attempt_log
    ADD COLUMN idempotency_key text,
    ADD COLUMN inquiry         text CHECK (inquiry IN ('REFUNDED', 'ALREADY_REFUNDED', 'PENDING',
                                                       'NOT_REFUNDED', 'REFUND_FAILED',
                                                       'MISMATCH', 'UNKNOWN')),
    ADD COLUMN inquiry_detail  text;

-- New verdicts: PENDING, IN_PROGRESS, UNVERIFIED; INQUIRY for an attempt
-- that made no refund call because its inquiry decided.
ALTER TABLE retry_attempt_log DROP CONSTRAINT retry_attempt_log_verdict_check;
ALTER TABLE retry_attempt_log ADD CONSTRAINT retry_attempt_log_verdict_check
    CHECK (verdict IN ('SUCCEEDED', 'ALREADY_REFUNDED', 'RETRYABLE', 'PERMANENT',
                       'CONFIG_FAULT', 'PENDING', 'IN_PROGRESS', 'UNVERIFIED', 'INQUIRY'));
ALTER TABLE retry_attempt_log DROP CONSTRAINT retry_attempt_log_decision_check;
ALTER TABLE retry_attempt_log ADD CONSTRAINT retry_attempt_log_decision_check
    CHECK (decision IN ('RETRY', 'PENDING', 'SUCCEEDED', 'ALREADY_REFUNDED', 'FAILED',
                        'EXHAUSTED'));
