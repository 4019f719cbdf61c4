-- ceiling.sql: the database work of one request, as the pipeline does it
-- today, for pgbench (deploy/local/bench runs it after the pipeline's run,
-- on the same server with the same settings; docs/benchmarks.md). One run
-- of this script is one request: its transactions per second are the
-- requests per second the database could sustain for the pipeline, with
-- nothing else (Kafka, the gateway, the processes' own CPU) in the way.
--
-- The statements follow src/store/request_store.c, src/store/outbox.c and
-- src/store/request_events.c: same tables, rows, indexes, constraints and
-- triggers (the outbox NOTIFY), one transaction per step as the processes
-- commit them, row contents of about the same size. The relay's fetch of
-- due rows is left out (one per batch, not per request). Update this file
-- when the pipeline's statements change (batches: several requests per
-- transaction, then one run of this script should do the same).

-- intake-consumer: the request and its retry-scheduled outbox row
-- (request_store_insert, request_events_retry), one transaction.
BEGIN;
INSERT INTO cancel_request (request_id, gateway, payment_key, amount, currency, partial, reason,
    correlation_id, source_event_id, source_event, source_topic, source_partition,
    source_offset, source_timestamp, max_attempts, next_attempt_at, deadline_at,
    key_first_used_at, key_expires_at)
  VALUES ('ceil-' || gen_random_uuid(), 'toss', 'tpay_' || gen_random_uuid(), 15000, 'KRW',
    false, 'customer cancelled', gen_random_uuid()::text, gen_random_uuid()::text,
    convert_to(repeat('x', 500), 'UTF8'), 'payments.cancel.failed', 0, 0, now(), 4, now(),
    now() + interval '1 hour', now(), now() + interval '1 day')
  ON CONFLICT (request_id) DO NOTHING
  RETURNING request_id, payment_key \gset
INSERT INTO outbox (topic, msg_key, value, headers, event_type, event_id, request_id,
    available_at)
  VALUES ('payments.cancel.retry', :request_id, convert_to(repeat('x', 700), 'UTF8'),
    '[["ce_type","payments.cancel.retry.scheduled.v1"]]'::jsonb,
    'payments.cancel.retry.scheduled.v1', gen_random_uuid()::text, :request_id, now())
  RETURNING id AS retry_row \gset
COMMIT;

-- outbox-relay: mark the retry event published, fenced by the lease
-- (outbox.c sql_mark_published; bench setup made 'ceiling' the holder).
WITH lease AS (SELECT 1 FROM relay_leader
                WHERE name = 'outbox-relay' AND holder = 'ceiling' AND epoch = 1 FOR SHARE),
done AS (UPDATE outbox SET published_at = now(), published_epoch = 1,
                           publish_attempts = publish_attempts + 1, last_error = NULL,
                           parked_at = NULL, park_reason = NULL
          WHERE id = ANY(ARRAY[:retry_row::bigint]) AND published_at IS NULL
            AND EXISTS (SELECT 1 FROM lease) RETURNING 1)
SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM done);

-- retry-consumer: claim, the STARTED fact and the same-payment count
-- (retry_steps_claim), one transaction.
BEGIN;
UPDATE cancel_request
   SET status = 'IN_FLIGHT', attempts = attempts + 1, lease_owner = 'ceiling',
       lease_expires_at = now() + interval '10 s', updated_at = now()
 WHERE request_id = :request_id AND status IN ('SCHEDULED', 'PENDING') AND attempts + 1 = 1
   AND next_attempt_at <= now() + interval '1 s'
   AND (status = 'PENDING' OR final_check IS NOT NULL
        OR (now() < deadline_at
            AND (key_expires_at IS NULL OR key_expires_at > now() + interval '10 s')))
 RETURNING request_id, gateway, payment_key, amount, currency, partial, reason, correlation_id,
       status, attempts, budget_base, max_attempts, next_attempt_at, deadline_at,
       key_expires_at, created_at, lease_owner, last_error_code, last_error_message,
       last_http_status, source_event, source_topic, source_partition, source_offset,
       source_timestamp, key_generation, key_holds_error, inquire_first, final_check;
INSERT INTO retry_attempt_log (request_id, attempt, event, worker, gateway)
  VALUES (:request_id, 1, 'STARTED', 'ceiling', 'toss');
SELECT count(*) FILTER (WHERE status = 'SUCCEEDED'),
       count(*) FILTER (WHERE status IN ('SCHEDULED', 'IN_FLIGHT', 'PENDING') AND attempts > 0)
  FROM cancel_request
 WHERE gateway = 'toss' AND payment_key = :payment_key AND amount = 15000
   AND request_id <> :request_id;
COMMIT;

-- retry-consumer: the answer, the final status and the Outcome outbox row
-- (retry_steps_record: request_store_finish, request_events_final), one
-- transaction.
BEGIN;
UPDATE cancel_request
   SET status = 'SUCCEEDED', lease_owner = NULL, lease_expires_at = NULL,
       last_error_code = NULL, last_error_message = NULL, last_http_status = 200,
       finished_at = now(), budget_base = budget_base + 1, key_generation = 1,
       key_holds_error = false, inquire_first = false, final_check = NULL,
       found_by_inquiry = false, updated_at = now()
 WHERE request_id = :request_id AND status = 'IN_FLIGHT' AND attempts = 1
   AND lease_owner = 'ceiling';
INSERT INTO retry_attempt_log (request_id, attempt, event, worker, gateway, verdict, http_status,
    latency_ms, replayed, decision, detail, idempotency_key)
  VALUES (:request_id, 1, 'ANSWERED', 'ceiling', 'toss', 'SUCCEEDED', 200, 0, false,
    'SUCCEEDED', 'refunded', :request_id);
INSERT INTO outbox (topic, msg_key, value, headers, event_type, event_id, request_id,
    available_at)
  VALUES ('payments.cancel.outcome', :request_id, convert_to(repeat('x', 900), 'UTF8'),
    '[["ce_type","payments.cancel.outcome.v1"]]'::jsonb, 'payments.cancel.outcome.v1',
    gen_random_uuid()::text, :request_id, now())
  RETURNING id AS outcome_row \gset
COMMIT;

-- outbox-relay: mark the outcome published.
WITH lease AS (SELECT 1 FROM relay_leader
                WHERE name = 'outbox-relay' AND holder = 'ceiling' AND epoch = 1 FOR SHARE),
done AS (UPDATE outbox SET published_at = now(), published_epoch = 1,
                           publish_attempts = publish_attempts + 1, last_error = NULL,
                           parked_at = NULL, park_reason = NULL
          WHERE id = ANY(ARRAY[:outcome_row::bigint]) AND published_at IS NULL
            AND EXISTS (SELECT 1 FROM lease) RETURNING 1)
SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM done);
