-- Gateway notifications (webhooks): what a gateway reported later about a
-- refund, stored by the webhook-receiver before it acknowledges the delivery
-- (docs/architecture.md "Webhook receiver"). Adyen's REFUND, REFUND_FAILED
-- and REFUNDED_REVERSED are the ones the pipeline reads; every item whose
-- signature verified is kept, whatever its event.

CREATE TABLE gateway_notification (
    id                 bigserial PRIMARY KEY,
    gateway            text NOT NULL,        -- the config's gateway name
    event_code         text NOT NULL,
    psp_reference      text NOT NULL,        -- the gateway's reference of the event (a refund's)
    original_reference text,                 -- the payment's reference
    merchant_reference text,                 -- ours: the requestId for a refund we sent
    merchant_account   text,
    amount             bigint,               -- minor units
    currency           text,
    success            boolean NOT NULL,
    reason             text,
    event_date         text,                 -- as the gateway wrote it
    raw_item           jsonb NOT NULL,       -- the item as received, signature included
    -- The request the item was matched to when it arrived; NULL: none (an
    -- event that is not about a refund, or a refund nobody here asked for,
    -- which was dead-lettered for a human).
    request_id         text,
    received_at        timestamptz NOT NULL DEFAULT now(),
    -- A redelivery (Adyen retries until it gets a 2xx) is the same event:
    -- stored once. An item that contradicts a stored one (other success) is
    -- a row of its own, for a human to see.
    UNIQUE (gateway, event_code, psp_reference, success)
);

-- The retry-consumer asks what the notifications of one request say.
CREATE INDEX gateway_notification_request_idx ON gateway_notification (request_id, gateway)
    WHERE request_id IS NOT NULL;
