//! Housekeeping operations on the store: online backups, checks of a database file, and
//! retention (finding, exporting and deleting old messages).
//!
//! Why here and not in `conductor-ops`: these are SQL and SQLite APIs, which stay inside the
//! store (crate docs). conductor-ops decides when they run, names files, compresses them and
//! records the outcome as events.
//! Like every other store method, each one runs on the blocking pool. Each write is a short
//! `BEGIN IMMEDIATE` transaction, so the daemon and external writers are never held up for
//! long (DESIGN.md "Database").

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::error::StoreError;
use crate::model::MessageDetail;
use crate::postgres;
use crate::sqlite;
use crate::store::Store;
use crate::types::{Direction, MessageId, Status};

/// A backup or a check of a database file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaintenanceError {
    /// The store failed (the live database).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The file failed `PRAGMA integrity_check`, or is not a database at all.
    #[error(
        "{path} failed the integrity check ({problems}): do not use it; take a new backup, or \
         restore an older one"
    )]
    Integrity {
        /// The file checked.
        path: PathBuf,
        /// What SQLite reported.
        problems: String,
    },

    /// The file is a SQLite database, but not one Conductor made.
    #[error(
        "{path} is a SQLite database but not a Conductor one (no `messages` table or schema \
         version): check that you picked the right file"
    )]
    NotConductor {
        /// The file checked.
        path: PathBuf,
    },

    /// A backup would overwrite an existing file.
    #[error(
        "{path} already exists: a backup never overwrites a file; move it away or pick another name"
    )]
    DestinationExists {
        /// The file.
        path: PathBuf,
    },

    /// SQLite failed on a file other than the live database (a backup, a file to restore).
    #[error("SQLite error on {path} while {doing}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The operation.
        doing: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// Backups need SQLite; other backends have their own tools.
    #[error("online backups need a SQLite database; use the database server's own backup tools")]
    NotSqlite,

    /// `conductor backup` on PostgreSQL: the server's own `pg_dump` takes a consistent copy
    /// while every node keeps writing, and is what its operators already restore from.
    #[error(
        "conductor backup copies SQLite databases; this one is PostgreSQL at {target}. Back it \
         up with pg_dump, which reads one consistent snapshot while the nodes keep running: \
         `pg_dump --format=custom --file=conductor-$(date +%F).dump \"<database.url>\"` \
         (restore into an empty database with `pg_restore --dbname=\"<database.url>\" FILE`); \
         turn the daily backup off with backup.enabled = false"
    )]
    PostgresBackup {
        /// `host:port/database`, without the password.
        target: String,
    },
}

/// How an online backup paces itself.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// Pages copied per step (one page is usually 4 KiB). Default 1024, about 4 MiB.
    pub pages_per_step: i32,
    /// Pause between steps, so a large copy does not take the disk in one burst. Default 2 ms.
    pub pause: Duration,
    /// Steps that may find the source locked before the backup gives up. Default 500.
    pub max_busy_retries: u32,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            pages_per_step: 1024,
            pause: Duration::from_millis(2),
            max_busy_retries: 500,
        }
    }
}

/// What an online backup did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackupStats {
    /// Pages in the copy.
    pub pages: u64,
    /// Steps taken.
    pub steps: u32,
    /// Steps retried because a lock was busy.
    pub busy_retries: u32,
    /// How long the copy and its check took.
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A database file that passed [`verify_database_file`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedDatabase {
    /// Its `PRAGMA user_version` (at most [`crate::SCHEMA_VERSION`]).
    pub schema_version: i64,
    /// Rows in `messages`.
    pub messages: u64,
}

/// Checks, read-only, that the SQLite file at `path` is a sound Conductor database this build
/// can open: it passes `PRAGMA integrity_check`, has the `messages` table, and its schema is
/// not newer than [`crate::SCHEMA_VERSION`]. Used before a restore touches anything.
/// Synchronous: call it from a blocking context.
pub fn verify_database_file(path: &Path) -> Result<VerifiedDatabase, MaintenanceError> {
    sqlite::backup::verify(path)
}

/// Which messages a retention rule removes: one direction, some statuses, older than a cutoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionRule {
    direction: Direction,
    statuses: Vec<Status>,
    cutoff: Timestamp,
}

impl RetentionRule {
    /// Statuses no rule may name: a message someone has still to read, or one still to be
    /// sent or being sent.
    pub const PROTECTED: [Status; 3] = [Status::Unread, Status::Queued, Status::Sending];

    /// A rule removing `direction` messages in `statuses` that were created and last changed
    /// before `cutoff`. Refuses protected statuses ([`Self::PROTECTED`]), statuses the
    /// direction never has (`read` is inbound only, `sent` outbound only...), and an empty
    /// list, naming what to change.
    pub fn new(
        direction: Direction,
        statuses: Vec<Status>,
        cutoff: Timestamp,
    ) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidInput {
            field: "statuses",
            reason,
        };
        if statuses.is_empty() {
            return Err(invalid(format!(
                "name at least one status; {direction} messages may use {}",
                Self::allowed(direction)
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for status in &statuses {
            if Self::PROTECTED.contains(status) {
                return Err(invalid(format!(
                    "{status} messages are never removed by retention (unread, queued and \
                     sending are protected); remove {status} from the rule"
                )));
            }
            if !Self::allowed(direction).contains(status) {
                return Err(invalid(format!(
                    "{direction} messages are never {status}; use one of: {}",
                    Self::allowed(direction)
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let mut statuses = statuses;
        statuses.sort_by_key(|s| Status::ALL.iter().position(|a| a == s));
        statuses.dedup();
        Ok(Self {
            direction,
            statuses,
            cutoff,
        })
    }

    /// The statuses a rule for `direction` may name: inbound `read`; outbound every status but
    /// the protected ones (`sent`, `delivered`, `failed`, `duplicate`, `unknown`,
    /// `cancelled`, and any terminal status added since).
    pub fn allowed(direction: Direction) -> Vec<Status> {
        match direction {
            Direction::Inbound => vec![Status::Read],
            Direction::Outbound => Status::ALL
                .into_iter()
                .filter(|s| !matches!(s, Status::Unread | Status::Read))
                .filter(|s| !Self::PROTECTED.contains(s))
                .collect(),
        }
    }

    /// The direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The statuses, in lifecycle order.
    pub fn statuses(&self) -> &[Status] {
        &self.statuses
    }

    /// Rows created and last changed before this instant are removed.
    pub fn cutoff(&self) -> Timestamp {
        self.cutoff
    }
}

/// A row retention would remove, as it was when listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetentionCandidate {
    /// The message.
    pub id: MessageId,
    /// Its direction.
    pub direction: Direction,
    /// Its status.
    pub status: Status,
    /// Its `revision` then: a different one at delete time means someone changed it.
    #[serde(skip)]
    pub revision: i64,
    /// Its `updated_at` then, for the same reason.
    #[serde(skip)]
    pub updated_at: String,
}

/// What one retention batch deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionDeleted {
    /// Messages deleted.
    pub deleted: Vec<MessageId>,
    /// Candidates kept because they changed since they were listed.
    pub changed: u64,
    /// Message parts deleted with them.
    pub parts: u64,
    /// Delivery reports deleted with them.
    pub reports: u64,
    /// History events deleted with them.
    pub events: u64,
}

impl RetentionDeleted {
    /// Adds another batch's figures.
    pub fn absorb(&mut self, other: RetentionDeleted) {
        self.deleted.extend(other.deleted);
        self.changed += other.changed;
        self.parts += other.parts;
        self.reports += other.reports;
        self.events += other.events;
    }
}

impl Store {
    /// Copies the live database into a new SQLite file at `dest` with SQLite's online backup
    /// API, in steps and from one read snapshot, while the daemon and external writers go on
    /// committing (WAL readers block no writer). Then it checks the copy with
    /// `PRAGMA integrity_check`. The copy holds every row committed before the call began.
    /// `dest` must not exist; on failure a partly written `dest` may be left for the caller
    /// to remove.
    pub async fn backup_to(
        &self,
        dest: PathBuf,
        options: BackupOptions,
    ) -> Result<BackupStats, MaintenanceError> {
        const DOING: &str = "backing up the database";
        if let Some(pg) = self.postgres() {
            return Err(MaintenanceError::PostgresBackup {
                target: pg.target().to_owned(),
            });
        }
        self.run(DOING, move |db| {
            Ok(sqlite::backup::backup(db, &dest, &options))
        })
        .await?
    }

    /// The rows the rules name (each once, by id). Rows with a copy still on a SIM are left
    /// out whatever the rules say (see [`RetentionRule`]).
    pub async fn retention_candidates(
        &self,
        rules: Vec<RetentionRule>,
    ) -> Result<Vec<RetentionCandidate>, StoreError> {
        const DOING: &str = "listing messages due for retention";
        if let Some(pg) = self.postgres() {
            return postgres::in_tx!(pg, DOING, |tx| postgres::maintenance::candidates(
                &tx, &rules
            ));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::retention::candidates(c, &rules))
        })
        .await
    }

    /// The messages `ids` with their parts, delivery reports and history, in one snapshot
    /// (what the retention export writes). Ids that no longer exist are left out.
    pub async fn message_details(
        &self,
        ids: Vec<MessageId>,
    ) -> Result<Vec<MessageDetail>, StoreError> {
        const DOING: &str = "reading messages for the export";
        if let Some(pg) = self.postgres() {
            return postgres::in_tx!(pg, DOING, |tx| postgres::maintenance::details(&tx, &ids));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::retention::details(c, &ids))
        })
        .await
    }

    /// Deletes `batch` in one short `BEGIN IMMEDIATE` transaction, with each message's parts,
    /// delivery reports and history. A row that changed since it was listed (its `revision`
    /// or `updated_at` moved, or it went back onto a SIM) is kept and counted as changed.
    /// Keep batches small (a few hundred rows) so other writers wait milliseconds, not seconds.
    pub async fn delete_retained(
        &self,
        batch: Vec<RetentionCandidate>,
    ) -> Result<RetentionDeleted, StoreError> {
        const DOING: &str = "deleting old messages";
        if let Some(pg) = self.postgres() {
            return postgres::in_tx!(pg, DOING, |tx| postgres::maintenance::delete(&tx, &batch));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::retention::delete(c, &batch))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_refuse_protected_and_impossible_statuses_and_name_what_to_do() {
        let now = Timestamp::UNIX_EPOCH;
        for status in RetentionRule::PROTECTED {
            let direction = if status == Status::Unread {
                Direction::Inbound
            } else {
                Direction::Outbound
            };
            let error = RetentionRule::new(direction, vec![status], now)
                .expect_err("protected")
                .to_string();
            assert!(error.contains("never removed"), "{error}");
        }
        let error = RetentionRule::new(Direction::Inbound, vec![Status::Sent], now)
            .expect_err("wrong direction")
            .to_string();
        assert!(error.contains("use one of: read"), "{error}");
        assert!(RetentionRule::new(Direction::Outbound, vec![], now).is_err());
        let rule = RetentionRule::new(
            Direction::Outbound,
            vec![Status::Failed, Status::Delivered, Status::Failed],
            now,
        )
        .expect("valid");
        assert_eq!(rule.statuses(), &[Status::Delivered, Status::Failed]);
    }
}
