//! `conductor backup [--to DIR]`: a backup now, as the daemon takes one daily.
//!
//! Safe while the daemon runs: the copy is taken through SQLite's online backup API from one
//! read snapshot, which blocks no writer. The outcome is recorded as a `backup_completed` or
//! `backup_failed` event like the daemon's, so `doctor` and the alerts see it too.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use conductor_ops::backup::{self, BackupSettings};

use crate::config::{Config, Database};

/// Runs `conductor backup`.
pub async fn backup(config: &Config, to: Option<PathBuf>, json: bool) -> Result<()> {
    if let Database::Postgres(_) = config.database {
        bail!(
            "{} is not a SQLite database: back it up with the server's own tools (pg_dump)",
            config.database
        );
    }
    let plan = config.backup_plan()?;
    let settings = BackupSettings {
        dir: to.unwrap_or(plan.settings.dir),
        keep: plan.settings.keep,
    };
    let store = crate::commands::messages::open_store(config).await?;
    let now = jiff::Timestamp::now();
    let outcome = backup::backup_and_record(&store, &settings, now, "cli")
        .await
        .with_context(|| format!("the backup of {} failed", config.database))?;
    if json {
        println!("{}", serde_json::to_string(&outcome)?);
        return Ok(());
    }
    println!(
        "backup written: {} ({} bytes compressed from {}, integrity check ok, {} ms)",
        outcome.file.display(),
        outcome.bytes,
        outcome.database_bytes,
        outcome.duration.as_millis()
    );
    for old in &outcome.pruned {
        println!(
            "removed old backup {} (backup.keep = {})",
            old.display(),
            settings.keep
        );
    }
    Ok(())
}
