//! Logging: `tracing` to the console and, when configured, to a file rotated by size.
//!
//! `RUST_LOG` wins over the config's `logging.level`, so an operator can turn on modem
//! traffic (`RUST_LOG=conductor_modem=debug`) for one run without editing the file. The
//! rotated files are capped in number, so the total stays under `max_file_mib` × `max_files`.

use crate::config::LoggingSection;
use anyhow::{Context, Result};
use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use std::io::IsTerminal;
use std::sync::Mutex;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

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
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("cannot create the log folder {}", parent.display())
                })?;
            }
            // FileRotate panics on an unopenable path, so check that it opens first.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            let bytes = usize::try_from(section.max_file_mib.saturating_mul(1024 * 1024))
                .unwrap_or(usize::MAX);
            let writer = FileRotate::new(
                path,
                AppendCount::new(section.max_files.max(1)),
                ContentLimit::BytesSurpassed(bytes.max(1)),
                Compression::None,
                None,
            );
            Some(
                fmt::layer()
                    .with_ansi(false)
                    .with_writer(Mutex::new(writer)),
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
