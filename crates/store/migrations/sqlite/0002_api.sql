-- Conductor schema, version 2: what the HTTP API persists (conductor-http).
--
-- This file runs inside one transaction together with `PRAGMA user_version = 2`. Nothing here
-- touches the SQL contract's tables.

-- `Idempotency-Key` of POST /api/v1/messages and /messages/batch: a retried request returns
-- the first result instead of queuing twice. Written in the same transaction as the rows it
-- queued, so a key never exists without its messages, nor messages without their key.
CREATE TABLE api_idempotency (
    key             TEXT    PRIMARY KEY,
    -- SHA-256 of the request (route and body): the same key with another body is a conflict.
    request_hash    TEXT    NOT NULL,
    -- The ids queued, as a JSON array, in request order.
    message_ids     TEXT    NOT NULL,
    created_at      TEXT    NOT NULL
);

-- The webhook outbox: one row per (endpoint, event) to deliver. The delivery task tails the
-- `events` table and inserts matching rows with INSERT OR IGNORE, so a crash between reading
-- events and recording the cursor enqueues nothing twice, and pending rows survive restarts.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The endpoint's name in the config (`webhooks[].name`, else its URL).
    endpoint        TEXT    NOT NULL,
    -- The `events` row this delivery announces (the receiver's deduplication key).
    event_id        INTEGER NOT NULL,
    -- The public event name: message.received, message.sent, modem.down, ...
    event           TEXT    NOT NULL,
    -- The JSON body, fixed when enqueued so every attempt sends (and signs) the same bytes.
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    last_attempt_at TEXT,
    -- The HTTP status of the last attempt, NULL when no answer came.
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    delivered_at    TEXT,
    UNIQUE (endpoint, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);

-- How far each endpoint has read the `events` table.
CREATE TABLE webhook_cursors (
    endpoint        TEXT    PRIMARY KEY,
    last_event_id   INTEGER NOT NULL
);
