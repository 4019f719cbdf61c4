-- Alerts: when the event an alert is about happened (an outcome's decidedAt,
-- a dead letter's dlq.at). A digest names the time range of its alerts so
-- that `cancelctl dlq list --since .. --until ..` lists them all; first_seen_at
-- is not that time, because during a Slack outage alerts are read late.
ALTER TABLE alert_sent ADD COLUMN event_at timestamptz;

-- Digest rows still waiting to be posted (state DIGESTED, sent_at NULL) are
-- what the alert-consumer looks for after every start.
CREATE INDEX alert_sent_digest_pending_idx ON alert_sent (first_seen_at)
    WHERE state = 'DIGESTED' AND sent_at IS NULL;
