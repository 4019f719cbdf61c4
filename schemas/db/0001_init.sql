-- cancel-retry schema, version 1.
--
-- Applied once by `cancelctl migrate` inside a transaction, recorded in
-- schema_migrations. Never edit this file after it shipped: add 0002_*.sql.
--
-- Money rules live here as constraints too, so that no code path (a bug, an
-- operator with psql) can store an amount the gateway would misread or a
-- status the pipeline does not know.

-- One row per cancel request (requestId). The source of truth of the pipeline:
-- Kafka events are triggers and readable copies, this row decides.
CREATE TABLE cancel_request (
    request_id            text PRIMARY KEY
                          CHECK (request_id ~ '^[A-Za-z0-9._:-]{1,255}$'),
    gateway               text NOT NULL CHECK (gateway ~ '^[a-z0-9_-]{1,32}$'),
    payment_key           text NOT NULL CHECK (length(payment_key) BETWEEN 1 AND 255),
    amount                bigint NOT NULL CHECK (amount > 0),
    currency              text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    partial               boolean NOT NULL DEFAULT false,
    reason                text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    origin_transaction_id text,
    first_failure_code    text,
    first_failure_message text,
    correlation_id        text,

    -- The CancelFailed event that created the row, kept byte for byte: a
    -- FAILED or EXHAUSTED request is dead-lettered with these bytes.
    source_event_id       text NOT NULL,
    source_event          bytea NOT NULL,
    source_topic          text,
    source_partition      integer,
    source_offset         bigint,
    source_timestamp      timestamptz,

    status                text NOT NULL DEFAULT 'SCHEDULED'
                          CHECK (status IN ('SCHEDULED', 'IN_FLIGHT', 'SUCCEEDED',
                                            'ALREADY_REFUNDED', 'FAILED', 'EXHAUSTED',
                                            'MANUALLY_RESOLVED')),
    -- attempts: attempts started so far, over the request's whole life. The
    -- attempt number is never reused: it fences stale workers and events.
    attempts              integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- budget: a replay re-arms the request with a fresh budget; attempts made
    -- before budget_base do not count against max_attempts.
    budget_base           integer NOT NULL DEFAULT 0 CHECK (budget_base >= 0),
    max_attempts          integer NOT NULL CHECK (max_attempts >= 1),
    next_attempt_at       timestamptz,
    deadline_at           timestamptz NOT NULL,
    -- The idempotency key (= request_id) lives at the gateway for a limited
    -- time from its first use; past key_expires_at a retry could refund twice,
    -- so nothing may call the gateway for this request after it.
    key_first_used_at     timestamptz,
    key_expires_at        timestamptz,

    lease_owner           text,
    lease_expires_at      timestamptz,

    last_error_code       text,
    last_error_message    text,
    last_http_status      integer,

    resolved_by           text,
    resolved_note         text,

    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    finished_at           timestamptz,

    CHECK (attempts >= budget_base),
    -- A lease exists exactly while an attempt is in flight.
    CHECK ((status = 'IN_FLIGHT') = (lease_owner IS NOT NULL)),
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL)),
    -- Final states carry their time; open ones do not.
    CHECK ((status IN ('SUCCEEDED', 'ALREADY_REFUNDED', 'FAILED', 'EXHAUSTED',
                       'MANUALLY_RESOLVED')) = (finished_at IS NOT NULL)),
    CHECK (status <> 'SCHEDULED' OR next_attempt_at IS NOT NULL)
);

-- The reconciler's two questions: which leases expired, which scheduled
-- requests are due.
CREATE INDEX cancel_request_lease_idx ON cancel_request (lease_expires_at)
    WHERE status = 'IN_FLIGHT';
CREATE INDEX cancel_request_due_idx ON cancel_request (next_attempt_at)
    WHERE status = 'SCHEDULED';
CREATE INDEX cancel_request_status_idx ON cancel_request (status, updated_at);

-- Append-only facts about attempts. STARTED is written when a worker claims the
-- request, ANSWERED when the gateway's answer (or its absence: a timeout) has
-- been classified, ABANDONED when the reconciler finds the worker's lease
-- expired. The database refuses UPDATE, DELETE and TRUNCATE (triggers below).
CREATE TABLE retry_attempt_log (
    id              bigserial PRIMARY KEY,
    request_id      text NOT NULL REFERENCES cancel_request (request_id),
    attempt         integer NOT NULL CHECK (attempt >= 1),
    event           text NOT NULL CHECK (event IN ('STARTED', 'ANSWERED', 'ABANDONED')),
    worker          text NOT NULL,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    gateway         text NOT NULL,
    -- ANSWERED: the classification of the answer
    verdict         text CHECK (verdict IN ('SUCCEEDED', 'ALREADY_REFUNDED', 'RETRYABLE',
                                            'PERMANENT', 'CONFIG_FAULT')),
    http_status     integer,
    error_code      text,
    error_message   text,
    latency_ms      integer CHECK (latency_ms >= 0),
    replayed        boolean,
    -- what the worker decided: RETRY (next_attempt_at set) or a final status
    decision        text CHECK (decision IN ('RETRY', 'SUCCEEDED', 'ALREADY_REFUNDED',
                                             'FAILED', 'EXHAUSTED')),
    next_attempt_at timestamptz,
    detail          text,
    -- One fact of each kind per attempt: a duplicate worker cannot write a
    -- second answer for the same attempt.
    UNIQUE (request_id, attempt, event),
    CHECK (event <> 'ANSWERED' OR (verdict IS NOT NULL AND decision IS NOT NULL))
);

CREATE INDEX retry_attempt_log_at_idx ON retry_attempt_log (at);

CREATE FUNCTION retry_attempt_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'retry_attempt_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'attempts are audit facts; record a new row instead';
END;
$$;

CREATE TRIGGER retry_attempt_log_no_update_delete
    BEFORE UPDATE OR DELETE ON retry_attempt_log
    FOR EACH ROW EXECUTE FUNCTION retry_attempt_log_refuse_change();

CREATE TRIGGER retry_attempt_log_no_truncate
    BEFORE TRUNCATE ON retry_attempt_log
    FOR EACH STATEMENT EXECUTE FUNCTION retry_attempt_log_refuse_change();

-- Transactional outbox: every event that must reach Kafka is written here in
-- the same transaction as the state change it announces; outbox-relay
-- publishes rows whose available_at has come, in id order.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    topic            text NOT NULL,
    msg_key          text,
    value            bytea NOT NULL,
    -- [[name, value], ...]: Kafka headers, order kept, names may repeat
    headers          jsonb NOT NULL DEFAULT '[]'::jsonb
                     CHECK (jsonb_typeof(headers) = 'array'),
    event_type       text,
    event_id         text,
    request_id       text,
    available_at     timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz,
    publish_attempts integer NOT NULL DEFAULT 0,
    last_error       text
);

CREATE INDEX outbox_pending_idx ON outbox (available_at, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX outbox_request_idx ON outbox (request_id, event_type);

-- Wake the relay as soon as a row commits (NOTIFY is delivered at commit).
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cancel_retry_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify_insert
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Audit of operator replays of dead letters. One row per dead letter: the
-- unique key makes a second replay of the same dead letter a no-op.
CREATE TABLE dlq_replay (
    id            bigserial PRIMARY KEY,
    dlq_topic     text NOT NULL,
    dlq_partition integer NOT NULL,
    dlq_offset    bigint NOT NULL,
    request_id    text,
    reason        text NOT NULL,
    action        text NOT NULL CHECK (action IN ('REPUBLISHED', 'REARMED')),
    operator      text NOT NULL,
    filter        jsonb NOT NULL DEFAULT '{}'::jsonb,
    detail        text,
    replayed_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dlq_topic, dlq_partition, dlq_offset)
);

-- Alerts sent (or being sent) to Slack, deduplicated by event: an outcome by
-- its CloudEvents id, a dead letter by topic/partition/offset.
CREATE TABLE alert_sent (
    dedup_key     text PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('OUTCOME', 'DEAD_LETTER')),
    request_id    text,
    gateway       text,
    reason        text,
    state         text NOT NULL DEFAULT 'PENDING'
                  CHECK (state IN ('PENDING', 'SENT', 'DIGESTED', 'FAILED_PERMANENT')),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz
);

CREATE INDEX alert_sent_state_idx ON alert_sent (state, first_seen_at);

-- Audit of manual actions on single requests (requeue, resolve).
CREATE TABLE operator_action (
    id          bigserial PRIMARY KEY,
    request_id  text NOT NULL REFERENCES cancel_request (request_id),
    action      text NOT NULL CHECK (action IN ('REQUEUE', 'RESOLVE', 'REPLAY')),
    operator    text NOT NULL,
    note        text,
    at          timestamptz NOT NULL DEFAULT now()
);
