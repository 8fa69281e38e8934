-- Conductor schema, version 1.
--
-- `messages` is the SQL contract (DESIGN.md "The SQL contract"): external systems read, update
-- and insert rows here with plain SQL while the daemon runs. Every column beyond the contract's
-- has a default, so the contract's INSERT works unchanged. Times are UTC text in SQLite's
-- `YYYY-MM-DD HH:MM:SS` form (what datetime('now') gives), so `ORDER BY timestamp` sorts rows
-- from every writer together. The daemon writes its own clock's times; the defaults below are
-- for external writers only.
--
-- This file runs inside one transaction together with `PRAGMA user_version = 1`.

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number    TEXT    NOT NULL,
    content         TEXT    NOT NULL DEFAULT '',
    -- Inbound: the SMSC time stamp converted to UTC (else the time it was read);
    -- outbound: the time it was queued.
    timestamp       TEXT    NOT NULL DEFAULT (datetime('now')),
    status          TEXT    NOT NULL DEFAULT 'queued'
        CHECK (status IN ('unread', 'read', 'queued', 'sending', 'sent', 'delivered', 'failed',
                          'duplicate', 'unknown', 'cancelled')),
    direction       TEXT    NOT NULL DEFAULT 'outbound'
        CHECK (direction IN ('inbound', 'outbound')),
    -- Inbound: the SIM slot of the lowest part still on the SIM; NULL once deleted there.
    modem_index     INTEGER,
    created_at      TEXT    NOT NULL DEFAULT (datetime('now')),
    updated_at      TEXT    NOT NULL DEFAULT (datetime('now')),
    -- Bumped by every daemon write; the trigger below bumps it for everyone else's.
    revision        INTEGER NOT NULL DEFAULT 0,
    -- Inbound: the modem that received it. Outbound: the modem that must send it (NULL = any).
    modem_id        TEXT,
    -- Outbound: the modem the dispatcher gave the current attempt to.
    sending_modem   TEXT,
    -- Inbound: the SIM memory (SM, ME, MT, ...) the message was read from.
    sim_storage     TEXT,
    -- Inbound: the SMSC time stamp in RFC 3339, with the zone as the network sent it.
    smsc_timestamp  TEXT,
    -- gsm7, ucs2, 8bit, or NULL when unknown / not decoded.
    encoding        TEXT,
    -- Inbound: makes a re-read of the same SIM copy a no-op (promise 2).
    fingerprint     TEXT    UNIQUE,
    parts_total     INTEGER NOT NULL DEFAULT 1,
    parts_received  INTEGER NOT NULL DEFAULT 1,
    -- Inbound: 1 when parts were still missing after the multipart timeout.
    incomplete      INTEGER NOT NULL DEFAULT 0 CHECK (incomplete IN (0, 1)),
    -- Why it failed, why it is unknown or duplicate, why it could not be decoded.
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    -- Outbound: do not send before this time (NULL = now).
    send_at         TEXT,
    -- Outbound: 1 skips duplicate detection for this row.
    allow_duplicate INTEGER NOT NULL DEFAULT 0 CHECK (allow_duplicate IN (0, 1)),
    -- Who queued it: cli, api, sql (the default: any other writer), ...
    source          TEXT    NOT NULL DEFAULT 'sql',
    -- Outbound: request a status report (1/0); NULL = the gateway's configured default.
    status_report   INTEGER CHECK (status_report IS NULL OR status_report IN (0, 1)),
    -- Inbound: the PDU as read, hex; kept when it could not be decoded.
    raw_pdu         TEXT,
    -- Inbound: TP-DCS message class 0-3, NULL when none.
    message_class   INTEGER,
    sent_at         TEXT,
    delivered_at    TEXT,
    -- The recipient/sender in the one form that can be derived without configuration: spaces,
    -- dashes, dots and parentheses removed, a leading 00 read as +. Duplicate detection and
    -- status-report matching compare this. Generated, so every writer gets it for free.
    number_key      TEXT GENERATED ALWAYS AS (
        CASE
            WHEN substr(replace(replace(replace(replace(replace(phone_number,
                    ' ', ''), '-', ''), '.', ''), '(', ''), ')', ''), 1, 2) = '00'
            THEN '+' || substr(replace(replace(replace(replace(replace(phone_number,
                    ' ', ''), '-', ''), '.', ''), '(', ''), ')', ''), 3)
            ELSE replace(replace(replace(replace(replace(phone_number,
                    ' ', ''), '-', ''), '.', ''), '(', ''), ')', '')
        END
    ) VIRTUAL
);

-- `updated_at` moves on every change, also on changes made by others. Daemon writes bump
-- `revision` and set `updated_at` from the daemon's clock, so the trigger leaves them alone;
-- a writer that sets `updated_at` itself keeps its value. The inner UPDATE changes `revision`,
-- so even with recursive_triggers on the WHEN clause stops a second round.
CREATE TRIGGER messages_touch AFTER UPDATE ON messages
WHEN NEW.revision IS OLD.revision AND NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE messages SET updated_at = datetime('now'), revision = OLD.revision + 1
    WHERE id = NEW.id;
END;

-- The dispatcher's claim: queued outbound rows in id order.
CREATE INDEX messages_claim ON messages (status, direction, id);
-- The contract's unread query (and the CLI's inbox).
CREATE INDEX messages_inbox ON messages (direction, status, timestamp);
-- Duplicate detection: same recipient, created inside the window.
CREATE INDEX messages_duplicates ON messages (number_key, created_at)
    WHERE direction = 'outbound';
-- Inbound rows still on a SIM, per modem.
CREATE INDEX messages_on_sim ON messages (modem_id, modem_index)
    WHERE modem_index IS NOT NULL;
-- "What changed since", the CLI's time filters.
CREATE INDEX messages_updated ON messages (updated_at);
CREATE INDEX messages_created ON messages (created_at);

-- One row per SMS part: inbound parts (also single-part messages, which are their own only
-- part) carry the SIM copy's location until it is deleted there; outbound parts carry the
-- TP-MR that status reports are matched on.
CREATE TABLE message_parts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL while an inbound part waits for the rest of its message.
    message_id      INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    direction       TEXT    NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    seq             INTEGER NOT NULL,
    total           INTEGER NOT NULL,
    -- Concatenation reference and its width (8 or 16 bits), NULL for single-part messages.
    concat_ref      INTEGER,
    ref_bits        INTEGER,
    -- Inbound: modem, sender, reference, width and total; parts with the same key and no
    -- message yet are one message being reassembled.
    group_key       TEXT,
    fingerprint     TEXT    UNIQUE,
    modem_id        TEXT,
    sim_storage     TEXT,
    -- NULL once the SIM copy is deleted (or for outbound parts).
    sim_slot        INTEGER,
    sender          TEXT,
    smsc_timestamp  TEXT,
    encoding        TEXT,
    message_class   INTEGER,
    text            TEXT    NOT NULL DEFAULT '',
    pdu             TEXT,
    received_at     TEXT,
    -- Outbound.
    recipient       TEXT,
    recipient_key   TEXT,
    state           TEXT    CHECK (state IS NULL OR state IN ('pending', 'sending', 'sent',
                                   'delivered', 'failed', 'unknown')),
    report_requested INTEGER NOT NULL DEFAULT 0,
    message_ref     INTEGER,
    attempt         INTEGER NOT NULL DEFAULT 0,
    sent_at         TEXT,
    report_status   INTEGER,
    reported_at     TEXT,
    reason          TEXT,
    created_at      TEXT    NOT NULL DEFAULT (datetime('now')),
    updated_at      TEXT    NOT NULL DEFAULT (datetime('now'))
);

CREATE INDEX message_parts_message ON message_parts (message_id, seq);
-- Reassembly: the waiting parts of one group.
CREATE INDEX message_parts_group ON message_parts (group_key, message_id)
    WHERE direction = 'inbound';
-- Status-report matching: (modem, TP-MR), newest waiting part first.
CREATE INDEX message_parts_report ON message_parts (modem_id, message_ref, state, sent_at)
    WHERE direction = 'outbound';
-- SIM copies per modem (deletion due, capacity guard).
CREATE INDEX message_parts_on_sim ON message_parts (modem_id, received_at)
    WHERE sim_slot IS NOT NULL;
CREATE UNIQUE INDEX message_parts_outbound_seq ON message_parts (message_id, seq)
    WHERE direction = 'outbound';

-- Every status report received, matched or not.
CREATE TABLE delivery_reports (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at     TEXT    NOT NULL,
    modem_id        TEXT    NOT NULL,
    message_ref     INTEGER NOT NULL,
    recipient       TEXT    NOT NULL,
    -- TP-ST as received, and what it means.
    status_code     INTEGER NOT NULL,
    category        TEXT    NOT NULL CHECK (category IN ('delivered', 'pending', 'failed')),
    -- TP-DT (discharge time), RFC 3339 with the zone as sent.
    discharge_time  TEXT,
    raw_pdu         TEXT,
    part_id         INTEGER REFERENCES message_parts (id) ON DELETE SET NULL,
    message_id      INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    -- When the report was stored on the SIM (+CDSI): where, until it is deleted there.
    fingerprint     TEXT    UNIQUE,
    sim_storage     TEXT,
    sim_slot        INTEGER
);

CREATE INDEX delivery_reports_message ON delivery_reports (message_id);
CREATE INDEX delivery_reports_on_sim ON delivery_reports (modem_id)
    WHERE sim_slot IS NOT NULL;

-- What the daemon last knew about each modem; `status`, `health` and the API read this and
-- never open a port.
CREATE TABLE modem_status (
    modem_id        TEXT    PRIMARY KEY,
    state           TEXT    NOT NULL,
    last_error      TEXT,
    manufacturer    TEXT,
    model           TEXT,
    firmware        TEXT,
    imei            TEXT,
    imsi            TEXT,
    iccid           TEXT,
    operator        TEXT,
    signal_dbm      INTEGER,
    registration    TEXT,
    last_cycle_at   TEXT,
    -- The time the daemon wrote this row.
    updated_at      TEXT    NOT NULL
);

CREATE TABLE modem_storage (
    modem_id        TEXT    NOT NULL REFERENCES modem_status (modem_id) ON DELETE CASCADE,
    memory          TEXT    NOT NULL,
    used            INTEGER NOT NULL,
    total           INTEGER NOT NULL,
    PRIMARY KEY (modem_id, memory)
);

-- Append-only history: what happened to which message on which modem.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    message_id      INTEGER,
    modem_id        TEXT,
    detail          TEXT
);

CREATE INDEX events_message ON events (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX events_at ON events (at);
