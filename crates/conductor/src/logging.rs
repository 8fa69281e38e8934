//! Logging: `tracing` to the console and, when configured, to a file rotated by size.
//!
//! `RUST_LOG` wins over the config's `logging.level`, so an operator can turn on modem
//! traffic (`RUST_LOG=conductor_modem=debug`) for one run without editing the file. The
//! rotated files are capped in number and gzip-compressed when they rotate, so the total stays
//! under `max_file_mib` × (`max_files` + 1), and in practice far below it.
//!
//! SIGHUP calls [`reopen`]: the file is opened again at its path, so an external `logrotate`
//! (or an operator) can move it away and the daemon writes a new one instead of the moved.

use crate::config::LoggingSection;
use anyhow::{Context, Result};
use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// What [`reopen`] does, set by [`init`] when there is a log file.
type Reopen = Box<dyn Fn() -> Result<()> + Send + Sync>;

/// Set once, by [`init`]; a global because the subscriber it serves is one too.
static REOPEN: OnceLock<Reopen> = OnceLock::new();

/// Opens the log file again at its configured path (SIGHUP), so one moved away by logrotate is
/// replaced by a new file. `Ok(None)` without a log file; `Ok(Some(path))` once reopened.
pub fn reopen() -> Result<Option<PathBuf>> {
    let Some(reopen) = REOPEN.get() else {
        return Ok(None);
    };
    reopen()?;
    Ok(LOG_PATH.get().cloned())
}

/// The log file's path, for messages.
static LOG_PATH: OnceLock<PathBuf> = OnceLock::new();

/// A writer shared between the subscriber and [`reopen`], which swaps what is inside.
struct SharedWriter<W>(Arc<Mutex<W>>);

impl<'a, W: std::io::Write + 'a> MakeWriter<'a> for SharedWriter<W> {
    type Writer = SharedGuard<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        // A panic while writing a line leaves a whole writer behind: keep logging.
        SharedGuard(self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

struct SharedGuard<'a, W>(MutexGuard<'a, W>);

impl<W: std::io::Write> std::io::Write for SharedGuard<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Checks that `path` opens for appending (creating its folder), which FileRotate assumes:
/// it panics on a path it cannot open.
fn check_openable(path: &std::path::Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the log folder {}", parent.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    Ok(())
}

/// Installs the global subscriber. Call once, early in `run`/`demo`.
pub fn init(section: &LoggingSection) -> Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => EnvFilter::try_new(&value)
            .with_context(|| format!("RUST_LOG={value:?} is not a valid filter"))?,
        _ => EnvFilter::try_new(&section.level).with_context(|| {
            format!(
                "logging.level {:?} is not a level (error, warn, info, debug, trace) or a filter",
                section.level
            )
        })?,
    };
    let console = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let file = match &section.file {
        Some(path) => {
            check_openable(path)?;
            let bytes = usize::try_from(section.max_file_mib.saturating_mul(1024 * 1024))
                .unwrap_or(usize::MAX);
            let max_files = section.max_files.max(1);
            let file_path = path.clone();
            let open = move || {
                FileRotate::new(
                    &file_path,
                    AppendCount::new(max_files),
                    ContentLimit::BytesSurpassed(bytes.max(1)),
                    // Rotated files are gzipped (`FILE.1.gz`...): text logs compress well.
                    Compression::OnRotate(0),
                    None,
                )
            };
            let shared = Arc::new(Mutex::new(open()));
            let swap = Arc::clone(&shared);
            let reopen_path = path.clone();
            let _ = LOG_PATH.set(path.clone());
            let _ = REOPEN.set(Box::new(move || {
                check_openable(&reopen_path)?;
                let fresh = open();
                // The old writer is dropped (flushed and closed) under the lock.
                *swap.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
                Ok(())
            }));
            Some(
                fmt::layer()
                    .with_ansi(false)
                    .with_writer(SharedWriter(shared)),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(console)
        .with(file)
        .try_init()
        .context("logging was already set up")?;
    Ok(())
}
