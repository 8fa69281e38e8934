//! The SQLite backend: connections, pragmas and the one-transaction-per-call discipline.
//!
//! Why this shape (DESIGN.md "Database"): external writers must never see "database is
//! locked", so every write here is one short `BEGIN IMMEDIATE` transaction (taking the write
//! lock up front means a transaction never has to upgrade a read lock, the case where SQLite
//! gives up at once instead of waiting), committed before the method returns, and no method
//! can hold one across an AT command because no method returns with one open. One writer
//! connection behind a mutex; a small pool of read connections that WAL lets run beside it.
//! Everything here is synchronous; `crate::store` runs it on tokio's blocking pool.
//!
//! Durability (promise 1): `journal_mode=WAL` with `synchronous=FULL` fsyncs the WAL on every
//! commit, so a committed row survives a power cut before the gateway deletes its SIM copy.

pub(crate) mod alerts;
pub(crate) mod api;
pub(crate) mod backup;
pub(crate) mod inbound;
pub(crate) mod outbound;
pub(crate) mod policy;
pub(crate) mod query;
pub(crate) mod reports;
pub(crate) mod retention;
pub(crate) mod stats;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::StoreError;
use crate::store::StoreOptions;

/// A failure inside a transaction: SQLite's, or one of the store's own checks.
pub(crate) enum DbError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Results inside the backend.
pub(crate) type Db<T> = Result<T, DbError>;

/// An open SQLite database.
pub(crate) struct Sqlite {
    path: PathBuf,
    busy_timeout: Duration,
    /// The only connection that writes. Also the one `PRAGMA data_version` is read on: that
    /// value changes only for commits made by *other* connections, i.e. external writers.
    writer: Mutex<Connection>,
    /// Idle read connections; a reader is taken for one query and put back.
    readers: Mutex<Vec<Connection>>,
    /// See [`StoreOptions::late_part_window`].
    pub(crate) late_part_window: Duration,
    /// Breaks ties between equally loaded modems, so single-row batches rotate over them.
    pub(crate) rotation: AtomicUsize,
    /// The file's identity (device, inode) when it was opened: see [`Sqlite::check_unmoved`].
    identity: Option<(u64, u64)>,
}

/// The (device, inode) of `path`, where the platform has them.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl Sqlite {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub(crate) fn open(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let busy = options.busy_timeout;
        let mut writer = open_connection(path, busy, false)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| StoreError::sqlite(path, "switching to WAL mode", busy, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal {
                path: path.to_path_buf(),
                mode,
            });
        }
        crate::migrate::migrate(&mut writer, path, busy)?;
        let identity = file_identity(path);
        Ok(Self {
            path: path.to_path_buf(),
            busy_timeout: busy,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            late_part_window: options.late_part_window,
            rotation: AtomicUsize::new(0),
            identity,
        })
    }

    /// Fails when the file at `path` is no longer the one opened (deleted, renamed, replaced
    /// by a restore). In WAL mode SQLite does not notice (its `SQLITE_READONLY_DBMOVED` check
    /// only guards rollback journals) and would keep committing into the unlinked inode, so
    /// every write checks first: one `stat`, microseconds next to the commit's fsync.
    fn check_unmoved(&self) -> Result<(), StoreError> {
        match self.identity {
            Some(opened) if file_identity(&self.path) != Some(opened) => Err(StoreError::Moved {
                path: self.path.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, doing: &'static str, e: DbError) -> StoreError {
        match e {
            DbError::Sql(e) => StoreError::sqlite(&self.path, doing, self.busy_timeout, e),
            DbError::Store(e) => e,
        }
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its `Transaction`, which rolled back: the
        // connection is clean, so a poisoned lock is safe to take over.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer and commits it.
    pub(crate) fn write<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&Connection) -> Db<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.error(doing, e.into()))?;
        let value = f(&tx).map_err(|e| self.error(doing, e))?;
        // Checked with the write lock held, just before the commit: a file deleted or replaced
        // meanwhile gets nothing (dropping `tx` rolls back), so nothing is reported stored.
        self.check_unmoved()?;
        tx.commit().map_err(|e| self.error(doing, e.into()))?;
        Ok(value)
    }

    /// Runs `f` on a read connection, in one deferred transaction so that it sees one snapshot.
    pub(crate) fn read<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&Connection) -> Db<T>,
    ) -> Result<T, StoreError> {
        let taken = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let mut conn = match taken {
            Some(conn) => conn,
            None => open_connection(&self.path, self.busy_timeout, true)?,
        };
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        // Keep a handful of idle readers; more would only hold file descriptors.
        let mut idle = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < 4 {
            idle.push(conn);
        }
        result.map_err(|e| self.error(doing, e))
    }

    /// `PRAGMA data_version` on the writer: changes whenever another connection commits.
    pub(crate) fn data_version(&self) -> Result<i64, StoreError> {
        self.writer()
            .pragma_query_value(None, "data_version", |row| row.get(0))
            .map_err(|e| self.error("reading data_version", e.into()))
    }

    /// Takes the write lock and lets go of it at once: proves the file is writable and no
    /// other process holds the lock beyond the busy timeout, without changing anything.
    pub(crate) fn check_writable(&self) -> Result<(), StoreError> {
        self.check_unmoved()?;
        let mut writer = self.writer();
        let transaction = writer
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.error("taking the write lock", e.into()))?;
        transaction
            .rollback()
            .map_err(|e| self.error("releasing the write lock", e.into()))
    }

    /// Copies the WAL into the database file and truncates it (shutdown, backups).
    pub(crate) fn checkpoint(&self) -> Result<crate::store::Checkpoint, StoreError> {
        self.writer()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok(crate::store::Checkpoint {
                    complete: row.get::<_, i64>(0)? == 0,
                    wal_frames: row.get(1)?,
                    checkpointed_frames: row.get(2)?,
                })
            })
            .map_err(|e| self.error("checkpointing the WAL", e.into()))
    }
}

/// Opens one connection with the pragmas every connection needs.
fn open_connection(path: &Path, busy: Duration, reader: bool) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| {
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::CannotOpen) | None => StoreError::CannotOpen {
                path: path.to_path_buf(),
                source,
            },
            Some(_) => StoreError::sqlite(path, "opening the database", busy, source),
        }
    })?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(busy)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        if reader {
            // Readers never write; make a mistake here an error rather than a second writer.
            conn.pragma_update(None, "query_only", true)?;
        } else {
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        Ok(())
    };
    setup().map_err(|e| StoreError::sqlite(path, "configuring the connection", busy, e))?;
    Ok(conn)
}

/// Appends an event in the current transaction.
pub(crate) fn event(
    c: &Connection,
    at: &str,
    kind: &str,
    message_id: Option<i64>,
    modem_id: Option<&str>,
    detail: Option<serde_json::Value>,
) -> Db<()> {
    c.prepare_cached(
        "INSERT INTO events (at, kind, message_id, modem_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((
        at,
        kind,
        message_id,
        modem_id,
        detail.map(|d| d.to_string()),
    ))?;
    Ok(())
}

/// The status of a message, or [`StoreError::NotFound`].
pub(crate) fn status_of(c: &Connection, id: i64) -> Db<crate::types::Status> {
    use rusqlite::OptionalExtension;
    let text: Option<String> = c
        .prepare_cached("SELECT status FROM messages WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    let text = text.ok_or(StoreError::NotFound {
        id: crate::types::MessageId(id),
    })?;
    parse_status(id, &text)
}

pub(crate) fn parse_status(id: i64, text: &str) -> Db<crate::types::Status> {
    text.parse().map_err(|e: crate::types::UnknownSpelling| {
        DbError::Store(StoreError::BadRow {
            table: "messages",
            id,
            column: "status",
            detail: e.to_string(),
        })
    })
}
