//! Conductor's message store: the schema, its migrations and every query the daemon and the CLI
//! run, behind one async handle, [`Store`].
//!
//! Why: the gateway needs durable, crash-safe bookkeeping for every SMS that passes through it,
//! and external systems (n8n, scripts) talk to Conductor through the `messages` table with plain
//! SQL while the daemon runs (DESIGN.md "The SQL contract"). This crate is the only code that
//! knows the schema. It sits below the gateway and beside the CLI (DESIGN.md "Layers").
//! Not here: AT commands, PDU decoding, retry policy, clocks. Every method that records a time
//! takes `now` from the caller, so the gateway's one replaceable clock governs every schedule
//! (DESIGN.md "Times"), and the store itself never reads the system clock. (Column defaults
//! still use `datetime('now')`: they serve external writers, whose rows carry no daemon time.)
//!
//! # Promises kept here
//! 1. *No inbound loss*: every write is one `BEGIN IMMEDIATE` transaction committed with
//!    `synchronous=FULL` in WAL mode before the method returns, so a row is on disk before the
//!    gateway deletes its SIM copy. [`Store::sim_deletions_due`] lists only copies whose rows
//!    are committed.
//! 2. *Stored once*: inbound messages and parts carry a unique fingerprint ([`Fingerprint`]);
//!    storing the same copy again returns the existing row.
//! 3. *Sent at most once*: [`Store::claim_due`] commits `sending`, and
//!    [`Store::part_sending`] commits each part, before the gateway writes the PDU;
//!    [`Store::recover_interrupted`] turns what a crash left in flight into `unknown`.
//! 4. *External writers are first-class*: WAL mode, a busy timeout, short immediate
//!    transactions that never span an `.await`, a trigger that keeps `updated_at` moving for
//!    every writer, defaults for every non-contract column, and [`ChangeWatcher`] to notice
//!    their commits within a poll interval (`PRAGMA data_version`).
//! 5. *Clear answers*: [`StoreError`]'s messages say what to do; CHECK constraints give an
//!    external writer's typo in `status` or `direction` a clear error instead of a stuck row.
//!
//! # Backend abstraction: one concrete handle over a backend enum
//! [`Store`] is a cheap-to-clone concrete type whose methods are `async fn`s; inside it holds
//! a private `Backend` enum with one variant today (`Sqlite`). A PostgreSQL backend
//! (tokio-postgres) becomes a second variant and a second module; [`Store::open_url`] already
//! routes on the URL scheme. We chose this over a `trait Store`:
//! - the gateway names one type and no generics, so adding a backend touches neither its
//!   signatures nor its tests;
//! - `async fn` in a trait is not object safe, so a trait would force either a generic
//!   parameter threaded through the whole gateway or boxed futures (`async-trait`) on every call;
//! - the operations are the domain's (claim, store a part, match a report), not SQL, so each
//!   backend implements them natively (SQLite on blocking threads, PostgreSQL with
//!   `SELECT … FOR UPDATE SKIP LOCKED`) and the shared types stay in [`model`].
//!
//! # PostgreSQL (issue 9)
//! `Store::open_url("postgres://user:password@host:port/database")` opens the second backend,
//! `postgres` (tokio-postgres on a small deadpool pool; TLS with rustls following libpq's
//! `sslmode`: `require` encrypts, `verify-ca`/`verify-full` check the certificate against
//! `sslrootcert=/path/ca.pem` or the system's CAs). The schema is the same tables and columns
//! as SQLite (`migrations/postgres/`, times as `timestamptz`, 0/1 flags as `boolean`),
//! migrated at start under an advisory lock. Every operation is ported natively (async, one
//! transaction per call), with the SQLite backend's semantics, errors and events: inbound
//! (single messages, long-message reassembly with flushes and late parts, undecodable PDUs, the
//! SIM copy lifecycle), outbound (queueing, `claim_due` with `FOR UPDATE SKIP LOCKED` and the
//! whole sending policy including limits, per-part progress, recovery, requeue, cancel), status
//! reports, the block list, limit usage and held counts, idempotency keys, the webhook outbox,
//! volume and latency figures, stats (medians with `percentile_cont`), alert episodes (one
//! active per key by the partial unique index), retention, the toolbox's cursors and import
//! ledger, and `watch_external_changes` (`LISTEN`/`NOTIFY`, a periodic wake as safety net).
//! What SQLite's single writer gave for free is explicit here: a transaction-scoped advisory
//! lock per multipart group and per `Idempotency-Key`, `ON CONFLICT` on the unique
//! fingerprints and alert keys, so several nodes never store, assemble or raise twice.
//! Backend-specific answers: [`Store::backup_to`] returns
//! [`MaintenanceError::PostgresBackup`] (use `pg_dump`; the error says how),
//! [`Store::data_version`] counts other writers' notifications on a `LISTEN` session,
//! [`Store::journal_mode`] is always `wal`, and [`Store::checkpoint`] is a no-op.
//! [`StoreError::NotOnPostgres`] remains for an operation added to SQLite and not yet ported.
//!
//! Several nodes on one database hold a lease per modem ([`lease`]: `acquire_lease`,
//! `renew_lease`, `release_lease`, `leases`); a node fenced with [`Store::fence_node`] claims
//! only for modems it holds, skips rows naming another live node's modem, and `part_sending`
//! refuses once its lease is gone ([`StoreError::LeaseLost`]).
//! [`Store::recover_interrupted_on`] recovers the sends through the modems a node has just
//! acquired (a dead node's, on takeover). On SQLite the lease operations write nothing.

//! # How SQLite is driven
//! rusqlite is synchronous, so every call runs on tokio's blocking pool
//! (`spawn_blocking`): one writer connection behind a mutex (SQLite allows one writer anyway,
//! and one connection makes `PRAGMA data_version` see only *other* processes' commits) and a
//! small pool of reader connections, which WAL lets run beside the writer. Each method is
//! exactly one transaction, so no transaction can be held across an AT command by
//! construction.
//!
//! # Layout
//! - [`error`] holds [`StoreError`].
//! - [`types`] holds ids, [`Status`], [`Direction`], [`SqlTime`] and number normalisation.
//! - [`fingerprint`] computes the inbound fingerprint (DESIGN.md "Receiving").
//! - [`model`] holds what goes in and comes out of the operations.
//! - [`policy`] holds the sending policy's rules (numbers, keywords, sizes, limits, routing).
//! - `migrate` applies the forward-only migrations under `migrations/sqlite/`.
//! - [`maintenance`] holds online backups, database file checks and retention.
//! - `sqlite` is the SQLite backend, one module per operation family.
//! - `postgres` is the PostgreSQL backend, same layout; its migrations are under
//!   `migrations/postgres/`.
//! - [`Store`] and [`ChangeWatcher`] are the handles the gateway and the CLI use.
//! - [`stats`] and [`alerts`] hold `conductor stats`' aggregates and the alert episodes
//!   (conductor-ops).
#![warn(missing_docs)]

pub mod alerts;
pub mod api;
mod claim;
pub mod error;
pub mod fingerprint;
pub mod lease;
pub mod maintenance;
mod migrate;
pub mod model;
pub mod policy;
mod postgres;
mod reassembly;
mod reports;
mod sqlite;
pub mod stats;
mod store;
pub mod toolbox;
pub mod types;

pub use alerts::{Alert, NewAlert, QueueBacklog, SendOutcomes};
pub use api::{
    AttemptResult, DeliveryCount, DeliveryFilter, DeliveryState, IdempotencyKey, Latency,
    LatencyHistogram, NewDelivery, QueueOutcome, VolumeBucket, WebhookDelivery,
};
pub use error::StoreError;
pub use fingerprint::Fingerprint;
pub use lease::{
    Acquisition, DEFAULT_LEASE_EXPIRY, DEFAULT_LEASE_HEARTBEAT, Lease, NodeLeases, NodeLock,
    by_node,
};
pub use maintenance::{
    BackupOptions, BackupStats, MaintenanceError, RetentionCandidate, RetentionDeleted,
    RetentionRule, VerifiedDatabase, verify_database_file,
};
pub use migrate::SCHEMA_VERSION;
pub use model::*;
pub use stats::{FailureCount, LatencySummary, PeriodFigures, StatsQuery, TimeRange};
pub use store::{ChangeWatcher, Checkpoint, Store, StoreOptions};
pub use toolbox::{ImportOutcome, ImportedMessage};
pub use types::{Direction, MessageId, ModemId, SqlTime, Status, normalize_number};

/// Results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
