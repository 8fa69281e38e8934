-- Version 7: modem leases, the twin of migrations/postgres/0007_modem_leases.sql, so both
-- backends keep the same tables. SQLite serves one node (the database lock file keeps a second
-- daemon away), so nothing writes here on SQLite; the table exists for schema parity and tools
-- that read both.

CREATE TABLE modem_leases (
    modem_id        TEXT    PRIMARY KEY,
    node_id         TEXT    NOT NULL,
    heartbeat_at    TEXT    NOT NULL,
    acquired_at     TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL
);

CREATE INDEX modem_leases_node ON modem_leases (node_id);
