-- Conductor schema, version 5: the sending policy (issue 11): priority, expiry, opt-out, and
-- the statuses `expired` and `blocked`.
--
-- SQLite cannot alter a CHECK constraint, so `messages` is rebuilt the documented way
-- (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes"):
-- create the new table, copy every row with its id, drop the old one, rename, and recreate its
-- indexes and trigger. The migration runner turns `PRAGMA foreign_keys` off around this file
-- (a DROP TABLE with foreign keys on would delete `message_parts` by cascade) and runs
-- `PRAGMA foreign_key_check` before committing. `sqlite_sequence` keeps the AUTOINCREMENT
-- high-water mark under the table's name, so ids never come back after the rename.
--
-- The SQL contract's INSERT still works: every new column has a default.

CREATE TABLE messages_v5 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number    TEXT    NOT NULL,
    content         TEXT    NOT NULL DEFAULT '',
    timestamp       TEXT    NOT NULL DEFAULT (datetime('now')),
    status          TEXT    NOT NULL DEFAULT 'queued'
        CHECK (status IN ('unread', 'read', 'queued', 'sending', 'sent', 'delivered', 'failed',
                          'duplicate', 'unknown', 'cancelled', 'expired', 'blocked')),
    direction       TEXT    NOT NULL DEFAULT 'outbound'
        CHECK (direction IN ('inbound', 'outbound')),
    modem_index     INTEGER,
    created_at      TEXT    NOT NULL DEFAULT (datetime('now')),
    updated_at      TEXT    NOT NULL DEFAULT (datetime('now')),
    revision        INTEGER NOT NULL DEFAULT 0,
    modem_id        TEXT,
    sending_modem   TEXT,
    sim_storage     TEXT,
    smsc_timestamp  TEXT,
    encoding        TEXT,
    fingerprint     TEXT    UNIQUE,
    parts_total     INTEGER NOT NULL DEFAULT 1,
    parts_received  INTEGER NOT NULL DEFAULT 1,
    incomplete      INTEGER NOT NULL DEFAULT 0 CHECK (incomplete IN (0, 1)),
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    send_at         TEXT,
    allow_duplicate INTEGER NOT NULL DEFAULT 0 CHECK (allow_duplicate IN (0, 1)),
    source          TEXT    NOT NULL DEFAULT 'sql',
    status_report   INTEGER CHECK (status_report IS NULL OR status_report IN (0, 1)),
    raw_pdu         TEXT,
    message_class   INTEGER,
    sent_at         TEXT,
    delivered_at    TEXT,
    number_key      TEXT GENERATED ALWAYS AS (
        CASE
            WHEN substr(replace(replace(replace(replace(replace(phone_number,
                    ' ', ''), '-', ''), '.', ''), '(', ''), ')', ''), 1, 2) = '00'
            THEN '+' || substr(replace(replace(replace(replace(replace(phone_number,
                    ' ', ''), '-', ''), '.', ''), '(', ''), ')', ''), 3)
            ELSE replace(replace(replace(replace(replace(phone_number,
                    ' ', ''), '-', ''), '.', ''), '(', ''), ')', '')
        END
    ) VIRTUAL,
    -- Outbound: higher goes first; rows of equal priority go in id order. A transactional
    -- message (a login code) set to 10 overtakes a queue of bulk sends at 0.
    priority        INTEGER NOT NULL DEFAULT 0,
    -- Outbound: a row still queued at this time becomes `expired` instead of going out late
    -- (NULL: `outbound.default_ttl` after it became due, or never).
    expires_at      TEXT,
    -- Outbound: 1 sends even to a number on the block list (one-time codes, receipts) and
    -- outside quiet hours.
    transactional   INTEGER NOT NULL DEFAULT 0 CHECK (transactional IN (0, 1)),
    -- Outbound, queued: what holds it back now (`per_minute`, `recipient_per_hour`,
    -- `quiet_hours`, `modem_not_ready`, ...); `reason` says until when. NULL when nothing does.
    held_by         TEXT
);

INSERT INTO messages_v5 (id, phone_number, content, timestamp, status, direction, modem_index,
    created_at, updated_at, revision, modem_id, sending_modem, sim_storage, smsc_timestamp,
    encoding, fingerprint, parts_total, parts_received, incomplete, reason, attempts,
    next_attempt_at, send_at, allow_duplicate, source, status_report, raw_pdu, message_class,
    sent_at, delivered_at)
SELECT id, phone_number, content, timestamp, status, direction, modem_index,
    created_at, updated_at, revision, modem_id, sending_modem, sim_storage, smsc_timestamp,
    encoding, fingerprint, parts_total, parts_received, incomplete, reason, attempts,
    next_attempt_at, send_at, allow_duplicate, source, status_report, raw_pdu, message_class,
    sent_at, delivered_at
FROM messages;

DROP TABLE messages;
ALTER TABLE messages_v5 RENAME TO messages;

-- As in 0001 (see there for why).
CREATE TRIGGER messages_touch AFTER UPDATE ON messages
WHEN NEW.revision IS OLD.revision AND NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE messages SET updated_at = datetime('now'), revision = OLD.revision + 1
    WHERE id = NEW.id;
END;

CREATE INDEX messages_claim ON messages (status, direction, id);
CREATE INDEX messages_inbox ON messages (direction, status, timestamp);
CREATE INDEX messages_duplicates ON messages (number_key, created_at)
    WHERE direction = 'outbound';
CREATE INDEX messages_on_sim ON messages (modem_id, modem_index)
    WHERE modem_index IS NOT NULL;
CREATE INDEX messages_updated ON messages (updated_at);
CREATE INDEX messages_created ON messages (created_at);
-- From 0003.
CREATE INDEX messages_number ON messages (number_key, id);

-- Limits count the parts a modem sent inside a window, and per recipient.
CREATE INDEX message_parts_usage ON message_parts (modem_id, sent_at)
    WHERE direction = 'outbound';
CREATE INDEX message_parts_recipient_usage ON message_parts (recipient_key, sent_at)
    WHERE direction = 'outbound';

-- The opt-out list: numbers (normalised to international form) that answered STOP, or that an
-- operator blocked. Outbound rows to them become `blocked` unless transactional.
CREATE TABLE blocked_numbers (
    number          TEXT    PRIMARY KEY,
    -- `inbound` (a keyword), `cli`, `api`, `sql`.
    source          TEXT    NOT NULL DEFAULT 'sql',
    -- The keyword that blocked it, or the operator's note.
    reason          TEXT,
    -- The inbound message that asked for it.
    message_id      INTEGER,
    created_at      TEXT    NOT NULL DEFAULT (datetime('now'))
);
