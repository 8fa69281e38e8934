-- Conductor schema on PostgreSQL, version 7: modem leases (issue 9, several nodes on one
-- database). One row per modem some node drives or drove: which node holds it, when it last
-- proved it was alive, and until when the lease holds without another heartbeat. A node opens
-- a modem's port only while it holds the lease; another node takes a lease over only once
-- `expires_at` has passed, so two nodes never drive one modem. The times come from the
-- holder's clock (as every time the daemon writes), so nodes must keep their clocks in sync
-- (NTP). The twin of SQLite's 0007_modem_leases.sql (unused there: one node per file).

CREATE TABLE modem_leases (
    modem_id        text        PRIMARY KEY,
    node_id         text        NOT NULL,
    heartbeat_at    timestamptz NOT NULL,
    acquired_at     timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL
);

CREATE INDEX modem_leases_node ON modem_leases (node_id);
