-- ceiling.sql: the database work of a batch of requests, as the pipeline
-- does it, for pgbench (deploy/local/bench expands it with
-- tests/bench/ceiling_expand.py and runs it after the pipeline's run, on the
-- same server with the same settings; docs/benchmarks.md). One run of the
-- expanded script is BATCH requests going through every stage: its
-- transactions per second times BATCH are the requests per second the
-- database could sustain for the pipeline, with nothing else (Kafka, the
-- gateway, the processes' own CPU, the waits between stages) in the way.
--
-- The statements follow src/store/request_store.c, src/store/outbox.c and
-- src/store/request_events.c: same tables, rows, indexes, constraints and
-- triggers (the outbox NOTIFY), statements and transactions shaped as the
-- processes send them: the intake inserts a poll batch with one multi-row
-- statement per table; the relay reads a batch and marks it with one fenced
-- statement; the retry-consumer sends one claim statement per request and
-- commits the batch's claims together, then likewise the records. Update
-- this file when the pipeline's statements change.
--
-- Expansion (ceiling_expand.py BATCH): the lines between "-- @each" and
-- "-- @end" are repeated for i = 1..BATCH with {i} replaced by i;
-- {list:NAME} becomes ":NAME1, :NAME2, ..., :NAMEBATCH"; {batch} becomes
-- BATCH. Request ids are 'ceil-<client>-<run>-<i>'.

\set run random(1, 1000000000000)

-- intake-consumer: the poll batch's requests and their retry-scheduled
-- outbox rows (request_store_insert_many, outbox_insert_many), one
-- transaction, one statement per table.
BEGIN;
INSERT INTO cancel_request (request_id, gateway, payment_key, amount, currency, partial, reason,
    correlation_id, source_event_id, source_event, source_topic, source_partition,
    source_offset, source_timestamp, max_attempts, next_attempt_at, deadline_at,
    key_first_used_at, key_expires_at)
  SELECT 'ceil-' || :client_id || '-' || :run || '-' || i, 'toss', 'tpay_' || gen_random_uuid(),
    15000, 'KRW', false, 'customer cancelled', gen_random_uuid()::text, gen_random_uuid()::text,
    convert_to(repeat('x', 500), 'UTF8'), 'payments.cancel.failed', 0, i, now(), 4, now(),
    now() + interval '1 hour', now(), now() + interval '1 day'
    FROM generate_series(1, {batch}) i
   ORDER BY 1
  ON CONFLICT (request_id) DO NOTHING;
WITH ins AS (
  INSERT INTO outbox (topic, msg_key, value, headers, event_type, event_id, request_id,
      available_at)
    SELECT 'payments.cancel.retry', 'ceil-' || :client_id || '-' || :run || '-' || i,
      convert_to(repeat('x', 700), 'UTF8'),
      '[["ce_type","payments.cancel.retry.scheduled.v1"]]'::jsonb,
      'payments.cancel.retry.scheduled.v1', gen_random_uuid()::text,
      'ceil-' || :client_id || '-' || :run || '-' || i, now()
      FROM generate_series(1, {batch}) i
  RETURNING id)
SELECT array_agg(id)::text AS retry_ids FROM ins \gset
COMMIT;

-- outbox-relay: read a batch of due rows (outbox.c sql_fetch_due), then
-- mark the retry events published, fenced by the lease (sql_mark_published;
-- bench setup made 'ceiling' the holder). Each is its own transaction.
SELECT id, topic, msg_key, value, headers::text FROM outbox
 WHERE published_at IS NULL AND parked_at IS NULL AND available_at <= now() AND id > 0
 ORDER BY id LIMIT {batch};
WITH lease AS (SELECT 1 FROM relay_leader
                WHERE name = 'outbox-relay' AND holder = 'ceiling' AND epoch = 1 FOR SHARE),
done AS (UPDATE outbox SET published_at = now(), published_epoch = 1,
                           publish_attempts = publish_attempts + 1, last_error = NULL,
                           parked_at = NULL, park_reason = NULL
          WHERE id = ANY(:retry_ids::bigint[]) AND published_at IS NULL
            AND EXISTS (SELECT 1 FROM lease) RETURNING 1)
SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM done);

-- retry-consumer: the batch's claims (retry_steps_claim_batch: one
-- statement per request, request_store.c sql_claim with its STARTED fact
-- and same-payment counts), one transaction.
BEGIN;
-- @each
WITH c AS (
  UPDATE cancel_request
     SET status = 'IN_FLIGHT', attempts = attempts + 1, lease_owner = 'ceiling',
         lease_expires_at = now() + interval '10 s', updated_at = now()
   WHERE request_id = 'ceil-' || :client_id || '-' || :run || '-{i}'
     AND status IN ('SCHEDULED', 'PENDING') AND attempts + 1 = 1
     AND next_attempt_at <= now() + interval '1 s'
     AND (status = 'PENDING' OR final_check IS NOT NULL
          OR (now() < deadline_at
              AND (key_expires_at IS NULL OR key_expires_at > now() + interval '10 s')))
  RETURNING *),
started AS (
  INSERT INTO retry_attempt_log (request_id, attempt, event, worker, gateway)
  SELECT request_id, 1, 'STARTED', 'ceiling', gateway FROM c)
SELECT c.request_id, c.gateway, c.payment_key, c.amount, c.currency, c.partial, c.reason,
       c.correlation_id, c.status, c.attempts, c.budget_base, c.max_attempts,
       c.next_attempt_at, c.deadline_at, c.key_expires_at, c.created_at, c.lease_owner,
       c.source_event, c.key_generation, c.key_holds_error, c.inquire_first, c.final_check,
       (SELECT count(*) FROM cancel_request o
         WHERE o.status = 'SUCCEEDED' AND o.gateway = c.gateway
           AND o.payment_key = c.payment_key AND o.amount = c.amount
           AND o.request_id <> c.request_id),
       (SELECT count(*) FROM cancel_request o
         WHERE o.status IN ('SCHEDULED', 'IN_FLIGHT', 'PENDING') AND o.attempts > 0
           AND o.gateway = c.gateway AND o.payment_key = c.payment_key
           AND o.amount = c.amount AND o.request_id <> c.request_id)
  FROM c;
-- @end
COMMIT;

-- retry-consumer: the batch's answers (retry_steps_record_batch: per
-- request the result with its ANSWERED fact, request_store.c sql_finish,
-- and the Outcome outbox row, request_events_final), one transaction.
BEGIN;
-- @each
WITH u AS (
  UPDATE cancel_request
     SET status = 'SUCCEEDED', lease_owner = NULL, lease_expires_at = NULL,
         last_error_code = NULL, last_error_message = NULL, last_http_status = 200,
         finished_at = now(), budget_base = budget_base + 1, key_generation = 1,
         key_holds_error = false, inquire_first = false, final_check = NULL,
         found_by_inquiry = false, updated_at = now()
   WHERE request_id = 'ceil-' || :client_id || '-' || :run || '-{i}'
     AND status = 'IN_FLIGHT' AND attempts = 1 AND lease_owner = 'ceiling'
  RETURNING 1)
INSERT INTO retry_attempt_log (request_id, attempt, event, worker, gateway, verdict, http_status,
    latency_ms, replayed, decision, detail, idempotency_key)
  VALUES ('ceil-' || :client_id || '-' || :run || '-{i}', 1, 'ANSWERED', 'ceiling', 'toss',
    'SUCCEEDED', 200, 0, false, 'SUCCEEDED',
    CASE WHEN EXISTS (SELECT 1 FROM u) THEN 'refunded' ELSE 'lease lost' END,
    'ceil-' || :client_id || '-' || :run || '-{i}')
  RETURNING (SELECT count(*) FROM u);
INSERT INTO outbox (topic, msg_key, value, headers, event_type, event_id, request_id,
    available_at)
  VALUES ('payments.cancel.outcome', 'ceil-' || :client_id || '-' || :run || '-{i}',
    convert_to(repeat('x', 900), 'UTF8'), '[["ce_type","payments.cancel.outcome.v1"]]'::jsonb,
    'payments.cancel.outcome.v1', gen_random_uuid()::text,
    'ceil-' || :client_id || '-' || :run || '-{i}', now())
  RETURNING id AS outcome{i} \gset
-- @end
COMMIT;

-- outbox-relay: read the next batch and mark the outcomes published.
SELECT id, topic, msg_key, value, headers::text FROM outbox
 WHERE published_at IS NULL AND parked_at IS NULL AND available_at <= now() AND id > 0
 ORDER BY id LIMIT {batch};
WITH lease AS (SELECT 1 FROM relay_leader
                WHERE name = 'outbox-relay' AND holder = 'ceiling' AND epoch = 1 FOR SHARE),
done AS (UPDATE outbox SET published_at = now(), published_epoch = 1,
                           publish_attempts = publish_attempts + 1, last_error = NULL,
                           parked_at = NULL, park_reason = NULL
          WHERE id = ANY(ARRAY[{list:outcome}]::bigint[]) AND published_at IS NULL
            AND EXISTS (SELECT 1 FROM lease) RETURNING 1)
SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM done);
