//! [`StoreError`]: everything the store can fail with, worded for the operator.
//!
//! Why: the daemon logs these and the CLI prints them; each message names the database and says
//! what to do (promise 5). Low-level SQLite errors are classified once, here, into the cases an
//! operator can act on (permissions, a full disk, a lock held too long, a file that is not a
//! database); the rest keep SQLite's own text plus what the store was doing.

use std::path::PathBuf;
use std::time::Duration;

use crate::types::{MessageId, Status};

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file or its directory cannot be opened or created.
    #[error(
        "cannot open database {path}: {source}; check that the directory exists and that this \
         user may create files in it"
    )]
    CannotOpen {
        /// The database file.
        path: PathBuf,
        /// SQLite's answer.
        #[source]
        source: rusqlite::Error,
    },

    /// SQLite opened the file but cannot write to it (or to its `-wal`/`-shm` companions).
    #[error(
        "database file {path} is not writable: check permissions on the file and its directory \
         (SQLite also writes {path}-wal and {path}-shm beside it)"
    )]
    NotWritable {
        /// The database file.
        path: PathBuf,
    },

    /// The file exists but is not a SQLite database, or it is damaged.
    #[error(
        "{path} is not a usable SQLite database (not a database, encrypted or damaged): point \
         database.path at another file or restore a backup"
    )]
    NotADatabase {
        /// The database file.
        path: PathBuf,
    },

    /// SQLite could not put the database in WAL mode (a network filesystem without shared
    /// memory, or a read-only medium); external writers would then lock the daemon out.
    #[error(
        "database {path} cannot use WAL mode (journal mode stayed {mode:?}): put the database on a \
         local filesystem the daemon can write to"
    )]
    NoWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },

    /// The database file was deleted, renamed or replaced while the store had it open. SQLite
    /// in WAL mode would go on committing into the unlinked file, which nobody can ever read
    /// again: the gateway would then delete SIM copies of messages "stored" there (promise 1).
    #[error(
        "database file {path} was deleted, moved or replaced while conductor had it open: \
         nothing more is written (messages stay on the SIM, queued ones wait); put the file \
         back, or restart the daemon to use whatever is at {path} now"
    )]
    Moved {
        /// The database file.
        path: PathBuf,
    },

    /// The disk (or the quota) is full.
    #[error("the disk holding database {path} is full: free space, then restart the daemon")]
    DiskFull {
        /// The database file.
        path: PathBuf,
    },

    /// Another connection held the write lock for longer than the busy timeout.
    #[error(
        "database {path} stayed locked by another writer for more than {waited:?}: some process \
         keeps a write transaction open; keep external transactions short (find the holder with \
         `fuser {path}`)"
    )]
    Busy {
        /// The database file.
        path: PathBuf,
        /// The busy timeout that ran out.
        waited: Duration,
    },

    /// The database was migrated by a newer Conductor than this one.
    #[error(
        "database {path} has schema version {found}, newer than the {supported} this conductor \
         knows: upgrade conductor (migrations only go forward)"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },

    /// The database already has a `messages` table that no Conductor migration created
    /// (the v2 prototype's, or another program's).
    #[error(
        "database {path} already has a `messages` table that Conductor did not create: move the \
         file aside (or copy its rows into a new database) and point database.path at a new file"
    )]
    ForeignSchema {
        /// The database file.
        path: PathBuf,
    },

    /// A migration failed; the database stays at the previous version.
    #[error("migration {version} ({name}) failed on {path}: {source}; the database was left at version {}", version - 1)]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The migration's number.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// No message has this id.
    #[error("message #{id} does not exist")]
    NotFound {
        /// The id asked for.
        id: MessageId,
    },

    /// The message is not in a state the operation applies to.
    #[error("message #{id} is {status}; only {allowed} messages can be {action}")]
    WrongStatus {
        /// The message.
        id: MessageId,
        /// Its status now.
        status: Status,
        /// What was attempted, as a past participle ("requeued", "cancelled").
        action: &'static str,
        /// The statuses the operation accepts, for the message.
        allowed: &'static str,
    },

    /// An argument the caller built is out of range.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Which argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// `database.url` names a scheme this build cannot serve.
    #[error(
        "database.url {url:?} is not supported: use sqlite:///path/to/file.db or a plain path \
         ({detail})"
    )]
    UnsupportedUrl {
        /// The URL as given.
        url: String,
        /// Why.
        detail: &'static str,
    },

    /// A row holds a value the store cannot read (written by hand with a typo, or by a newer
    /// version).
    #[error("{table} row {id} has an unreadable {column}: {detail}")]
    BadRow {
        /// The table.
        table: &'static str,
        /// The row id.
        id: i64,
        /// The column.
        column: &'static str,
        /// What was found.
        detail: String,
    },

    /// Any other SQLite failure, with what the store was doing.
    #[error("database error on {path} while {doing}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The operation.
        doing: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// A PostgreSQL statement failed (or the server went away), with what the store was doing.
    #[error(
        "PostgreSQL error on {target} while {doing}: {source}; check that the server is up and \
         reachable and that the user may write the database"
    )]
    Postgres {
        /// `host:port/database`, without the password.
        target: String,
        /// The operation.
        doing: &'static str,
        /// What the client or server said.
        #[source]
        source: tokio_postgres::Error,
    },

    /// No PostgreSQL connection could be had (server down, refused, pool timed out).
    #[error(
        "cannot connect to PostgreSQL at {target} while {doing}: {detail}; check database.url \
         (host, port, user, password, database name) and that the server is running"
    )]
    PostgresUnavailable {
        /// `host:port/database`, without the password.
        target: String,
        /// The operation.
        doing: &'static str,
        /// What went wrong.
        detail: String,
    },

    /// A PostgreSQL migration failed; the database stays at the previous version.
    #[error(
        "migration {version} ({name}) failed on PostgreSQL {target}: {source}; the database was \
         left at version {}", version - 1
    )]
    PostgresMigration {
        /// `host:port/database`.
        target: String,
        /// The migration's number.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// What the server said.
        #[source]
        source: tokio_postgres::Error,
    },

    /// TLS to the PostgreSQL server cannot be set up as `sslmode`/`sslrootcert` ask.
    #[error(
        "cannot set up TLS to PostgreSQL at {target}: {detail} (database.url: sslmode=require \
         encrypts without checking the certificate; verify-ca and verify-full check it against \
         sslrootcert=/path/ca.pem or the system's trusted CAs)"
    )]
    PostgresTls {
        /// `host:port/database`.
        target: String,
        /// What is wrong.
        detail: String,
    },

    /// The PostgreSQL database already has a `messages` table that no Conductor migration
    /// created.
    #[error(
        "PostgreSQL database {target} already has a `messages` table that Conductor did not \
         create: point database.url at a new, empty database (CREATE DATABASE conductor)"
    )]
    PostgresForeignSchema {
        /// `host:port/database`.
        target: String,
    },

    /// The operation has no PostgreSQL implementation yet (issue 9 is being done in steps; the
    /// crate docs list what works).
    #[error(
        "{operation} is not available on PostgreSQL yet: use a SQLite database (database.path) \
         for it, or a newer conductor"
    )]
    NotOnPostgres {
        /// What was attempted, for people.
        operation: &'static str,
    },

    /// Another running process already uses this `database.node` on the database (it holds
    /// the node's session lock): two processes with one id would both renew the same leases
    /// and drive the same modems.
    #[error(
        "another running conductor is already node {node} on this database (it holds the \
         node's lock): give this process its own `database.node` (or leave it unset for \
         `<hostname>-<pid>`), or stop the other process first; a process that was killed frees \
         the id as soon as the server notices its connection closed"
    )]
    NodeInUse {
        /// The node id.
        node: String,
    },

    /// This node no longer holds the lease of the modem a row was claimed for (several nodes
    /// on PostgreSQL): another node took the modem over after the lease expired, so this node
    /// must not write a PDU to it.
    #[error(
        "modem {modem} is no longer leased to node {node}: the lease expired (the database was \
         unreachable, or this node stalled) and another node may drive it now; nothing was sent \
         here, and the node holding the lease recovers the message"
    )]
    LeaseLost {
        /// The modem.
        modem: String,
        /// This node.
        node: String,
    },

    /// A blocking database task panicked or was cancelled (a bug: please report it).
    #[error("internal store error while {doing}: {detail} (this is a bug in conductor)")]
    Internal {
        /// The operation.
        doing: &'static str,
        /// The panic or cancellation.
        detail: String,
    },
}

impl StoreError {
    /// Classifies a SQLite error from `doing` on `path` into the case an operator acts on.
    pub(crate) fn sqlite(
        path: &std::path::Path,
        doing: &'static str,
        busy_timeout: Duration,
        source: rusqlite::Error,
    ) -> Self {
        use rusqlite::ErrorCode;
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::ReadOnly) => Self::NotWritable { path },
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                Self::NotADatabase { path }
            }
            Some(ErrorCode::DiskFull) => Self::DiskFull { path },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy {
                path,
                waited: busy_timeout,
            },
            Some(ErrorCode::CannotOpen) => Self::CannotOpen { path, source },
            _ => Self::Sqlite {
                path,
                doing,
                source,
            },
        }
    }

    /// Whether trying again later may succeed (a lock held too long, a full disk), as opposed
    /// to a bug, bad input or a broken database.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Busy { .. } | Self::DiskFull { .. } | Self::PostgresUnavailable { .. }
        ) || matches!(self, Self::Postgres { source, .. } if source.is_closed())
    }
}
