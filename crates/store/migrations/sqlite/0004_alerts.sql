-- Conductor schema, version 4: operational alerts (conductor-ops).
--
-- This file runs inside one transaction together with `PRAGMA user_version = 4`. Nothing here
-- touches the SQL contract's tables.

-- One row per alert episode: raised once, cleared once. The daemon's evaluator writes them;
-- `conductor health`, `doctor` and `GET /api/v1/health` in other processes read the active
-- ones (cleared_at IS NULL). Rows are kept after clearing as a history.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- What the alert is about, unique among active alerts: `modem_down:sim1`, `disk_space`.
    key             TEXT    NOT NULL,
    -- The condition: modem_down, sim_storage, queue_stuck, failure_rate, disk_space,
    -- backup_failed.
    kind            TEXT    NOT NULL,
    modem_id        TEXT,
    -- For people: what is wrong and what to do.
    message         TEXT    NOT NULL,
    -- The figures behind it, as JSON.
    detail          TEXT,
    raised_at       TEXT    NOT NULL,
    cleared_at      TEXT
);

-- At most one active episode per key, whichever process raises it.
CREATE UNIQUE INDEX alerts_active ON alerts (key) WHERE cleared_at IS NULL;

-- "The newest event of these kinds" (the newest backup, for alerts and `doctor`) without
-- scanning the whole history.
CREATE INDEX events_kind ON events (kind, id);
