-- Relay leadership by lease, and parked outbox rows (docs/operations.md
-- "Relay fail-over" and "Parked outbox rows").

-- Which outbox-relay is the active one. A session-level advisory lock (the
-- old way) belongs to a database session: a relay host that dies or is cut
-- off without a FIN keeps its session, and the lock, until TCP keepalive
-- gives up (two hours with PostgreSQL's defaults). A lease lapses on the
-- database's own clock instead: the active relay renews expires_at every
-- third of the lease; a standby takes the row when expires_at has passed, or
-- at once when the holder's session no longer exists (holder_pid and
-- holder_backend_start name it in pg_stat_activity). Every take bumps epoch,
-- the fencing token: the statements that mark outbox rows published, failed
-- or parked carry it and change nothing once another relay holds a newer one.
CREATE TABLE relay_leader (
    name                 text PRIMARY KEY,
    holder               text,                  -- the relay's worker id
    epoch                bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    holder_pid           integer,               -- its backend, pg_backend_pid()
    holder_backend_start timestamptz,           -- so that a reused pid is not mistaken for it
    acquired_at          timestamptz,
    renewed_at           timestamptz,
    expires_at           timestamptz NOT NULL DEFAULT '-infinity'
);

INSERT INTO relay_leader (name) VALUES ('outbox-relay');

-- A row the broker can never accept (larger than its message limit, a topic
-- that does not exist, headers that cannot be built) is parked instead of
-- retried at the head of every batch: the relay moves on, operators list and
-- requeue parked rows with cancelctl outbox. published_epoch records which
-- leader marked a row published (the fencing token of that relay).
ALTER TABLE outbox
    ADD COLUMN parked_at       timestamptz,
    ADD COLUMN park_reason     text,
    ADD COLUMN published_epoch bigint,
    ADD CONSTRAINT outbox_park_reason_check CHECK ((parked_at IS NULL) = (park_reason IS NULL)),
    ADD CONSTRAINT outbox_parked_unpublished_check
        CHECK (parked_at IS NULL OR published_at IS NULL);

CREATE INDEX outbox_parked_idx ON outbox (parked_at, id) WHERE parked_at IS NOT NULL;

-- Audit of cancelctl outbox requeue: one row per parked row put back. No
-- foreign key: the outbox row is purged after it was published.
CREATE TABLE outbox_requeue (
    id          bigserial PRIMARY KEY,
    outbox_id   bigint NOT NULL,
    topic       text NOT NULL,
    request_id  text,
    event_type  text,
    parked_at   timestamptz NOT NULL,
    park_reason text NOT NULL,
    operator    text NOT NULL,
    note        text,
    requeued_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_requeue_outbox_idx ON outbox_requeue (outbox_id);
