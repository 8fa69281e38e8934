-- Conductor schema, version 6: the operator toolbox (issue 12): event-script cursors and the
-- import ledger.
--
-- This file runs inside one transaction together with `PRAGMA user_version = 6`. Nothing here
-- touches the SQL contract's tables.

-- How far a follower of the `events` table (the event-script runner) has read, so a restart
-- neither reruns nor skips events. Webhooks keep their own `webhook_cursors` (0002).
CREATE TABLE event_cursors (
    name            TEXT    PRIMARY KEY,
    last_event_id   INTEGER NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- One row per source item `conductor import` brought in: (kind, source, item) is unique, so a
-- second run of the same import skips what the first one took. A multipart message joined
-- from several source rows or files has one row per piece, all naming the same message.
CREATE TABLE imports (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- `original`, `gammu`, `smstools`.
    source_kind     TEXT    NOT NULL,
    -- The source's identity: the canonical path of the database file or spool folder.
    source          TEXT    NOT NULL,
    -- The row (`inbox:17`, `messages:3`) or file (`incoming/GSM1.xyz`) it came from.
    item            TEXT    NOT NULL,
    message_id      INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    imported_at     TEXT    NOT NULL,
    UNIQUE (source_kind, source, item)
);

CREATE INDEX imports_message ON imports (message_id);
