//! Online backups of the live database (SQLite's backup API) and checks of a copy's integrity.
//!
//! Why the backup API and not a file copy: a copy of `conductor.db` taken while the daemon
//! commits can miss what still sits in the `-wal` file or catch a page half written. The backup
//! API copies pages through SQLite itself, from one read snapshot.
//!
//! How it stays out of the daemon's way (DESIGN.md "Database"): the copy runs on a *read*
//! connection, and in WAL mode a reader never blocks a writer, so the daemon and external
//! writers keep committing throughout. That connection holds one read transaction for the
//! whole copy. The copy is therefore one snapshot: every row committed before the backup
//! began, nothing committed after it, nothing half committed. It also never restarts when
//! someone commits meanwhile, which a backup with no read transaction of its own does. The
//! pages go over in steps with a pause between them, so a large database does not take the
//! disk in one burst. The cost is that checkpoints cannot move the WAL past the snapshot until
//! the copy ends, so the WAL may grow for that long.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{Db, Sqlite};
use crate::error::StoreError;
use crate::maintenance::{BackupOptions, BackupStats, MaintenanceError, VerifiedDatabase};

/// Copies the database behind `db` into a new SQLite file at `dest` (which must not exist),
/// switches the copy to a rollback journal so it is one self-contained file, and checks it
/// with `PRAGMA integrity_check`.
pub(crate) fn backup(
    db: &Sqlite,
    dest: &Path,
    options: &BackupOptions,
) -> Result<BackupStats, MaintenanceError> {
    if dest.exists() {
        return Err(MaintenanceError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    let started = Instant::now();
    let mut target = Connection::open(dest).map_err(|source| MaintenanceError::Sqlite {
        path: dest.to_path_buf(),
        doing: "creating the backup file",
        source,
    })?;
    let pages_per_step = options.pages_per_step.max(1);
    let (pages, steps, busy) = db.read("copying the database for a backup", |source| {
        // Opens the read transaction the whole copy then uses: one snapshot, no restarts.
        source.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        copy_pages(source, &mut target, pages_per_step, options)
    })?;
    let checked = |doing: &'static str| {
        let dest = dest.to_path_buf();
        move |source| MaintenanceError::Sqlite {
            path: dest,
            doing,
            source,
        }
    };
    // The copied header says WAL; a rollback journal makes the backup one file that opens
    // anywhere (the daemon switches a restored database back to WAL when it opens it).
    target
        .pragma_update_and_check(None, "journal_mode", "DELETE", |row| {
            row.get::<_, String>(0)
        })
        .map_err(checked("switching the backup to a rollback journal"))?;
    let problems = integrity_problems(&target).map_err(checked("checking the backup"))?;
    target
        .close()
        .map_err(|(_, source)| checked("closing the backup")(source))?;
    if !problems.is_empty() {
        return Err(MaintenanceError::Integrity {
            path: dest.to_path_buf(),
            problems: problems.join("; "),
        });
    }
    Ok(BackupStats {
        pages,
        steps,
        busy_retries: busy,
        elapsed: started.elapsed(),
    })
}

/// Runs the backup's steps; returns (pages copied, steps, busy retries).
fn copy_pages(
    source: &Connection,
    target: &mut Connection,
    pages_per_step: i32,
    options: &BackupOptions,
) -> Db<(u64, u32, u32)> {
    let backup = Backup::new(source, target)?;
    let (mut steps, mut busy) = (0u32, 0u32);
    loop {
        steps = steps.saturating_add(1);
        match backup.step(pages_per_step)? {
            StepResult::Done => break,
            StepResult::More => std::thread::sleep(options.pause),
            // The destination is our own new file and the source is only read, so these are
            // rare; a bounded number of retries keeps a stuck lock from hanging the backup.
            StepResult::Busy | StepResult::Locked => {
                busy = busy.saturating_add(1);
                if busy > options.max_busy_retries {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the backup stayed locked out; try again later".into()),
                    )
                    .into());
                }
                std::thread::sleep(options.pause.max(Duration::from_millis(10)));
            }
            _ => std::thread::sleep(options.pause),
        }
    }
    let pages = u64::try_from(backup.progress().pagecount).unwrap_or_default();
    Ok((pages, steps, busy))
}

/// What `PRAGMA integrity_check` found; empty when the database is sound.
pub(crate) fn integrity_problems(c: &Connection) -> rusqlite::Result<Vec<String>> {
    let rows: Vec<String> = c
        .prepare("PRAGMA integrity_check")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

/// Opens the SQLite file at `path` read-only and checks that it is a sound Conductor database
/// this build can open: `PRAGMA integrity_check` passes, the schema version is one this build
/// knows, and it has the `messages` table.
pub(crate) fn verify(path: &Path) -> Result<VerifiedDatabase, MaintenanceError> {
    let fail = |doing: &'static str| {
        move |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                MaintenanceError::Integrity {
                    path: path.to_path_buf(),
                    problems: source.to_string(),
                }
            }
            _ => MaintenanceError::Sqlite {
                path: path.to_path_buf(),
                doing,
                source,
            },
        }
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let c = Connection::open_with_flags(path, flags).map_err(fail("opening the file"))?;
    let problems = integrity_problems(&c).map_err(fail("checking integrity"))?;
    if !problems.is_empty() {
        return Err(MaintenanceError::Integrity {
            path: path.to_path_buf(),
            problems: problems.join("; "),
        });
    }
    let version: i64 = c
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(fail("reading the schema version"))?;
    if version > crate::migrate::SCHEMA_VERSION {
        return Err(MaintenanceError::Store(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: version,
            supported: crate::migrate::SCHEMA_VERSION,
        }));
    }
    let has_messages: bool = c
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'messages'",
            [],
            |row| row.get(0),
        )
        .map_err(fail("reading the schema"))?;
    if version < 1 || !has_messages {
        return Err(MaintenanceError::NotConductor {
            path: path.to_path_buf(),
        });
    }
    let messages: i64 = c
        .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
        .map_err(fail("counting messages"))?;
    Ok(VerifiedDatabase {
        schema_version: version,
        messages: u64::try_from(messages).unwrap_or_default(),
    })
}
