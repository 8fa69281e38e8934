//! `conductor restore FILE`: puts a backup in place of the database.
//!
//! Checks come first (conductor-ops `restore`): the daemon's lock, the backup's integrity and
//! schema, and that no other process has the database open. Only then is the current database
//! moved aside (kept as `<database>.pre-restore-STAMP`) and the backup moved in.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use conductor_ops::restore;

use crate::config::{Config, Database};

/// Runs `conductor restore`.
pub async fn restore(config: &Config, file: PathBuf) -> Result<()> {
    let Database::Sqlite(database) = config.database.clone() else {
        bail!(
            "{} is not a SQLite database: restore it with the server's own tools (pg_restore)",
            config.database
        );
    };
    let now = jiff::Timestamp::now();
    let target = database.clone();
    let outcome = tokio::task::spawn_blocking(move || restore::restore(&file, &target, now))
        .await
        .context("the restore task failed (this is a bug in conductor)")?
        .with_context(|| format!("nothing was changed in {}", database.display()))?;
    println!(
        "restored {} (schema version {}, {} messages; integrity check ok)",
        outcome.database.display(),
        outcome.verified.schema_version,
        outcome.verified.messages
    );
    if let Some(previous) = &outcome.previous {
        println!(
            "the database that was there is kept as {}: delete it once the restored data looks right",
            previous.display()
        );
    }
    println!("start the daemon again (`systemctl start conductor` or `conductor run`)");
    Ok(())
}
