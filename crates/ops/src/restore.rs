//! Restore: puts a backup (ours, `.db.gz`, or a plain SQLite file) in place of the database,
//! after checking it and checking that nobody is using the database.
//!
//! Why so careful: a restore replaces the one file every message lives in. Before anything is
//! touched:
//! 1. The daemon's lock ([`crate::lock`]) is taken: a running `conductor run` on this
//!    database makes the restore refuse, and no daemon can start during it.
//! 2. The backup is unpacked beside the database (the same filesystem, so the final rename is
//!    atomic) and must pass `PRAGMA integrity_check`. It must also be a Conductor database
//!    this build can open (not a newer schema).
//! 3. The current database must not be open in any other process (the `sqlite3` shell, n8n,
//!    a script): switching it out of WAL mode needs every other connection gone, so a refusal
//!    there means someone still has it open. The switch also folds the WAL into the file, so
//!    the file is complete on its own.
//!
//! Only then is the current database renamed to `<database>.pre-restore-STAMP` (kept, never
//! deleted; remove it once the restored data looks right) and the backup renamed into place.
//! The daemon switches it back to WAL when it next opens it.

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use conductor_store::{MaintenanceError, VerifiedDatabase, verify_database_file};
use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::backup::stamp;
use crate::gz_file::sync_dir;
use crate::lock::{DatabaseLock, LockError};

/// What a restore did.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreOutcome {
    /// The database now holding the backup's data.
    pub database: PathBuf,
    /// Where the database that was there before went, if there was one.
    pub previous: Option<PathBuf>,
    /// The backup's schema version and message count.
    pub verified: VerifiedDatabase,
}

/// Why a restore refused or failed; in every case the database was left as it was.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The backup file is not there.
    #[error(
        "backup {file} does not exist: give the path of a backup file (`ls` the backup folder)"
    )]
    NoBackup {
        /// The file given.
        file: PathBuf,
    },
    /// A daemon (or another restore) holds the database.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// The backup is damaged or not a Conductor database.
    #[error("backup {file} cannot be restored: {source}")]
    BadBackup {
        /// The backup file.
        file: PathBuf,
        /// What the check found (boxed: it is large and this path is rare).
        #[source]
        source: Box<MaintenanceError>,
    },
    /// Another process has the database open.
    #[error(
        "{database} is open in another process ({detail}): close every program using it \
         (the sqlite3 shell, n8n, scripts, `conductor watch`) and try again; `fuser {database}` \
         shows who has it open"
    )]
    InUse {
        /// The database.
        database: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// A file operation failed.
    #[error("cannot {doing} {path}: {source}; check permissions and free space in that folder")]
    Io {
        /// What was being done.
        doing: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn io(doing: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError + use<> {
    let path = path.to_path_buf();
    move |source| RestoreError::Io {
        doing,
        path,
        source,
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Restores `backup` over `database` (see the module docs for the checks). Blocking: call it
/// from a blocking context. `now` names the kept previous database.
pub fn restore(
    backup: &Path,
    database: &Path,
    now: Timestamp,
) -> Result<RestoreOutcome, RestoreError> {
    if !backup.is_file() {
        return Err(RestoreError::NoBackup {
            file: backup.to_path_buf(),
        });
    }
    if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io("create the database folder", parent))?;
    }
    let _lock = DatabaseLock::acquire(database)?;
    let work = with_suffix(database, ".restore.partial");
    remove_with_companions(&work);
    let checked = unpack(backup, &work).and_then(|()| prepare(backup, &work));
    let verified = match checked {
        Ok(verified) => verified,
        Err(error) => {
            remove_with_companions(&work);
            return Err(error);
        }
    };
    let previous = match make_standalone_if_present(database) {
        Ok(present) => {
            present.then(|| with_suffix(database, &format!(".pre-restore-{}", stamp(now))))
        }
        Err(error) => {
            remove_with_companions(&work);
            return Err(error);
        }
    };
    if let Some(previous) = &previous {
        fs::rename(database, previous)
            .map_err(io("move the current database aside to", previous))?;
        // After the switch to a rollback journal there should be none; a damaged database
        // may still have them, and they belong with it.
        for companion in ["-wal", "-shm"] {
            let from = with_suffix(database, companion);
            if from.exists() {
                let to = with_suffix(previous, companion);
                fs::rename(&from, &to).map_err(io("move aside", &from))?;
            }
        }
    }
    fs::rename(&work, database).map_err(io("move the restored database to", database))?;
    if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent);
    } else {
        sync_dir(Path::new("."));
    }
    Ok(RestoreOutcome {
        database: database.to_path_buf(),
        previous,
        verified,
    })
}

/// Writes `backup` (gzip or plain SQLite, told apart by the first bytes) to `work`, fsynced.
fn unpack(backup: &Path, work: &Path) -> Result<(), RestoreError> {
    let file = File::open(backup).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => RestoreError::NoBackup {
            file: backup.to_path_buf(),
        },
        _ => RestoreError::Io {
            doing: "read the backup",
            path: backup.to_path_buf(),
            source,
        },
    })?;
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut reader, &mut magic).map_err(io("read the backup", backup))?;
    let head = std::io::Cursor::new(magic[..got].to_vec());
    let mut input: Box<dyn Read> = if magic[..got] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(head.chain(reader)))
    } else {
        Box::new(head.chain(reader))
    };
    let mut output = File::create(work).map_err(io("create", work))?;
    std::io::copy(&mut input, &mut output).map_err(|source| RestoreError::Io {
        doing: "unpack the backup (is it a complete .db.gz or .db file?) into",
        path: work.to_path_buf(),
        source,
    })?;
    output.flush().map_err(io("write", work))?;
    output.sync_all().map_err(io("flush to disk", work))?;
    Ok(())
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Makes the unpacked copy one self-contained file (a copy taken in WAL mode otherwise needs
/// its `-wal`) and verifies it.
fn prepare(backup: &Path, work: &Path) -> Result<VerifiedDatabase, RestoreError> {
    let bad = |source| RestoreError::BadBackup {
        file: backup.to_path_buf(),
        source: Box::new(source),
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let standalone = Connection::open_with_flags(work, flags).and_then(|c| {
        c.pragma_update_and_check(None, "journal_mode", "DELETE", |row| {
            row.get::<_, String>(0)
        })?;
        c.close().map_err(|(_, e)| e)
    });
    if let Err(source) = standalone {
        return Err(bad(MaintenanceError::Integrity {
            path: backup.to_path_buf(),
            problems: source.to_string(),
        }));
    }
    verify_database_file(work).map_err(|error| match error {
        // Name the backup the user gave, not our work file.
        MaintenanceError::Integrity { problems, .. } => bad(MaintenanceError::Integrity {
            path: backup.to_path_buf(),
            problems,
        }),
        MaintenanceError::NotConductor { .. } => bad(MaintenanceError::NotConductor {
            path: backup.to_path_buf(),
        }),
        other => bad(other),
    })
}

/// When `database` exists: refuses if another process has it open, else folds its WAL into
/// it so it can be moved aside whole. Returns whether it exists.
fn make_standalone_if_present(database: &Path) -> Result<bool, RestoreError> {
    if !database.exists() {
        return Ok(false);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let switched = Connection::open_with_flags(database, flags).and_then(|c| {
        // No busy wait: any other connection makes this fail at once, which is the answer.
        c.busy_timeout(std::time::Duration::ZERO)?;
        c.pragma_update_and_check(None, "journal_mode", "DELETE", |row| {
            row.get::<_, String>(0)
        })?;
        c.close().map_err(|(_, e)| e)
    });
    match switched {
        Ok(()) => Ok(true),
        Err(e) => match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Err(RestoreError::InUse {
                    database: database.to_path_buf(),
                    detail: e.to_string(),
                })
            }
            // A damaged database (often the reason for the restore) cannot say who has it
            // open; the daemon's lock was taken, so it is moved aside with its companions.
            _ => Ok(true),
        },
    }
}

/// Removes `path` and what SQLite may have put beside it.
fn remove_with_companions(path: &Path) {
    let _ = fs::remove_file(path);
    for companion in ["-journal", "-wal", "-shm"] {
        let _ = fs::remove_file(with_suffix(path, companion));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with(path: &Path, rows: &[&str]) {
        let c = Connection::open(path).expect("open");
        c.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA user_version=1;
             CREATE TABLE messages (id INTEGER PRIMARY KEY, content TEXT);",
        )
        .expect("schema");
        for row in rows {
            c.execute("INSERT INTO messages (content) VALUES (?1)", [row])
                .expect("insert");
        }
    }

    fn contents(path: &Path) -> Vec<String> {
        let c = Connection::open(path).expect("open");
        c.prepare("SELECT content FROM messages ORDER BY id")
            .and_then(|mut s| {
                s.query_map([], |r| r.get(0))
                    .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            })
            .expect("read")
    }

    #[test]
    fn a_plain_backup_replaces_the_database_and_the_old_one_is_kept_aside() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (backup, db) = (dir.path().join("backup.db"), dir.path().join("gw.db"));
        db_with(&backup, &["from the backup"]);
        db_with(&db, &["current"]);
        let now: Timestamp = "2026-11-26T03:00:00Z".parse().expect("time");
        let outcome = restore(&backup, &db, now).expect("restore");
        assert_eq!(outcome.verified.messages, 1);
        assert_eq!(contents(&db), ["from the backup"]);
        let previous = outcome.previous.expect("the old database was kept");
        assert_eq!(
            previous,
            dir.path().join("gw.db.pre-restore-20261126T030000Z")
        );
        assert_eq!(contents(&previous), ["current"]);
    }

    #[test]
    fn a_damaged_backup_or_a_database_open_elsewhere_leaves_everything_as_it_was() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("gw.db");
        db_with(&db, &["current"]);
        let garbage = dir.path().join("garbage.db.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&[7u8; 9000]).expect("write");
        fs::write(&garbage, encoder.finish().expect("gzip")).expect("write garbage");
        let now = Timestamp::UNIX_EPOCH;
        let error = restore(&garbage, &db, now)
            .expect_err("garbage")
            .to_string();
        assert!(error.contains("cannot be restored"), "{error}");
        assert_eq!(contents(&db), ["current"]);

        let backup = dir.path().join("backup.db");
        db_with(&backup, &["from the backup"]);
        let holder = Connection::open(&db).expect("another user of the database");
        holder
            .query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))
            .expect("read");
        let error = restore(&backup, &db, now).expect_err("in use").to_string();
        assert!(error.contains("open in another process"), "{error}");
        drop(holder);
        assert_eq!(contents(&db), ["current"]);
        // Nothing was left behind by the refusals.
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains("partial"))
            .collect();
        names.sort();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_locked_database_is_refused_before_anything_is_unpacked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (backup, db) = (dir.path().join("backup.db"), dir.path().join("gw.db"));
        db_with(&backup, &["from the backup"]);
        db_with(&db, &["current"]);
        let daemon = DatabaseLock::acquire(&db).expect("the daemon's lock");
        let error = restore(&backup, &db, Timestamp::UNIX_EPOCH).expect_err("locked");
        assert!(matches!(error, RestoreError::Locked(_)), "{error}");
        drop(daemon);
        restore(&backup, &db, Timestamp::UNIX_EPOCH).expect("free after the daemon stops");
    }
}
