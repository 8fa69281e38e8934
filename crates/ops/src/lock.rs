//! The daemon's lock on its database: an exclusive advisory lock on `<database>.lock`, held by
//! `conductor run` for as long as it runs.
//!
//! Why: `conductor restore` must never replace a database under a running daemon. The daemon
//! would go on writing into the replaced file (the store notices a moved file and stops
//! writing, but the daemon is then useless until restarted). Restore takes the same lock and
//! refuses when it is held. It also stops a second daemon on the same database.
//!
//! How: `File::try_lock` (flock on Unix, LockFileEx on Windows). The OS drops the lock when the
//! process exits, however it exits (SIGKILL, a crash, a power cut), so a stale lock file can
//! never block anyone. The file holds the holder's process id, for messages only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it: a daemon runs on this database (or a restore is under way).
    #[error(
        "{database} is in use by a running conductor daemon or restore{}: stop it first \
         (`systemctl stop conductor`, or Ctrl-C in its terminal) and try again",
        holder.map(|pid| format!(" (process {pid}, lock {})", lock.display()))
            .unwrap_or_else(|| format!(" (lock {})", lock.display()))
    )]
    Held {
        /// The database.
        database: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The process id written in the lock file, when it could be read.
        holder: Option<u32>,
    },
    /// The lock file cannot be created or locked.
    #[error(
        "cannot create or lock {lock}: {source}; check that the database folder exists and \
         that this user may create files in it"
    )]
    Io {
        /// The lock file.
        lock: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive lock on a database, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DatabaseLock {
    file: File,
    path: PathBuf,
}

impl DatabaseLock {
    /// `<database>.lock`, beside the database.
    pub fn path_for(database: &Path) -> PathBuf {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock on `database` without waiting, or says who holds it.
    pub fn acquire(database: &Path) -> Result<Self, LockError> {
        let path = Self::path_for(database);
        let io = |source| LockError::Io {
            lock: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(LockError::Held {
                    database: database.to_path_buf(),
                    lock: path,
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        // Ours now: say who holds it, for the message another process prints.
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(io)?;
        Ok(Self { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DatabaseLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes it immediate even
        // if a duplicated descriptor were still open somewhere. The file stays: removing it
        // would race with a process that has just opened it.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_and_gets_it_after_release() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("gw.db");
        let first = DatabaseLock::acquire(&db).expect("first lock");
        assert_eq!(first.path(), dir.path().join("gw.db.lock"));
        let error = DatabaseLock::acquire(&db).expect_err("held");
        match &error {
            LockError::Held { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(error.to_string().contains("stop it first"), "{error}");
        drop(first);
        DatabaseLock::acquire(&db).expect("free again after the first is dropped");
    }

    #[test]
    fn a_missing_folder_is_an_io_error_that_says_what_to_check() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = DatabaseLock::acquire(&dir.path().join("nope").join("gw.db"))
            .expect_err("no folder")
            .to_string();
        assert!(error.contains("database folder exists"), "{error}");
    }
}
