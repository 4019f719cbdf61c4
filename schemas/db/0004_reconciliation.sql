-- Reconciliation against the gateway (docs/operations.md "Reconciliation").
--
-- A pass inquires, for every request that finished in a window, what the
-- gateway did about it (an inquiry, never a refund) and compares that with
-- our final status. A disagreement is a mismatch: recorded here once, alerted
-- once (a RECONCILE_MISMATCH dead letter written in the same transaction),
-- and corrected in our records only by an operator (cancelctl reconcile --fix).

-- One row per pass: by an operator (cancelctl reconcile) or scheduled (the
-- active outbox-relay, every reconcile.interval). finished_at NULL: running,
-- or stopped without finishing (error says why when it could be written).
CREATE TABLE reconcile_run (
    id              bigserial PRIMARY KEY,
    trigger         text NOT NULL CHECK (trigger IN ('cli', 'scheduled')),
    run_by          text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    -- The window: requests whose finished_at >= window_start.
    window_start    timestamptz NOT NULL,
    window_ms       bigint NOT NULL CHECK (window_ms > 0),
    gateway         text,          -- NULL: every configured gateway
    request_id      text,          -- NULL: every request in the window
    fix             boolean NOT NULL DEFAULT false,
    checked         integer NOT NULL DEFAULT 0 CHECK (checked >= 0),
    mismatches      integer NOT NULL DEFAULT 0 CHECK (mismatches >= 0),
    new_mismatches  integer NOT NULL DEFAULT 0 CHECK (new_mismatches >= 0),
    pending         integer NOT NULL DEFAULT 0 CHECK (pending >= 0),
    could_not_check integer NOT NULL DEFAULT 0 CHECK (could_not_check >= 0),
    fixed           integer NOT NULL DEFAULT 0 CHECK (fixed >= 0),
    error           text
);

-- The relay schedules its next pass from its last scheduled one (so a
-- restart or a fail-over neither skips nor repeats a pass); status shows the
-- last one.
CREATE INDEX reconcile_run_started_idx ON reconcile_run (trigger, started_at);

-- A disagreement between our final status and the gateway's record.
CREATE TABLE reconcile_mismatch (
    id             bigserial PRIMARY KEY,
    request_id     text NOT NULL REFERENCES cancel_request (request_id),
    gateway        text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('OURS_REFUNDED_THEIRS_NOT',
                                                 'OURS_FAILED_THEIRS_REFUNDED',
                                                 'AMOUNT_DIFFERS')),
    our_status     text NOT NULL,
    their_finding  text NOT NULL CHECK (their_finding IN ('REFUNDED', 'ALREADY_REFUNDED',
                                                          'NOT_REFUNDED', 'REFUND_FAILED',
                                                          'MISMATCH')),
    amount         bigint NOT NULL,   -- ours, minor units
    currency       text NOT NULL,     -- ours
    -- What the gateway reports: the payment's amount and what is refunded on
    -- it in total, and its currency (NULL when the inquiry did not say).
    their_payment_amount  bigint,
    their_refunded_amount bigint,
    their_currency text,
    detail         text NOT NULL,
    run_id         bigint REFERENCES reconcile_run (id),   -- the pass that found it
    found_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    -- Closed: by an operator's --fix (fixed_by = the operator), by a later
    -- pass that found both sides agree again, or because the request was
    -- resolved by hand. fix_note says which.
    fixed_at       timestamptz,
    fixed_by       text,
    fix_note       text,
    CHECK ((fixed_at IS NULL) = (fixed_by IS NULL))
);

-- One open row per request and kind: a second pass that finds the same
-- mismatch updates last_seen_at and alerts nobody.
CREATE UNIQUE INDEX reconcile_mismatch_open_idx ON reconcile_mismatch (request_id, kind)
    WHERE fixed_at IS NULL;
CREATE INDEX reconcile_mismatch_found_idx ON reconcile_mismatch (found_at);

-- A pass reads the requests that finished in its window.
CREATE INDEX cancel_request_finished_idx ON cancel_request (finished_at)
    WHERE finished_at IS NOT NULL;

-- reconcile --fix is audited like the other manual actions.
ALTER TABLE operator_action DROP CONSTRAINT operator_action_action_check;
ALTER TABLE operator_action ADD CONSTRAINT operator_action_action_check
    CHECK (action IN ('REQUEUE', 'RESOLVE', 'REPLAY', 'RECONCILE'));
