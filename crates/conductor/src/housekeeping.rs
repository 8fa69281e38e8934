//! What `conductor run` adds for operations: the database lock, and the daily backup and
//! retention schedules (conductor-ops), from the config's `backup` and `retention` sections.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use conductor_gateway::Clock;
use conductor_ops::lock::DatabaseLock;
use conductor_store::Store;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Database};

/// How often the daily schedules read the clock again. The production clock's sleeps end on
/// time, so this only bounds the lag behind a clock that jumps (see conductor-ops `schedule`).
const SCHEDULE_TICK: Duration = Duration::from_secs(60);

/// Takes the exclusive lock on the SQLite database for the daemon's lifetime (dropped when it
/// exits, or by the OS when it dies): `conductor restore` refuses while it is held, and so
/// does a second daemon. None for other databases.
pub fn lock_database(config: &Config) -> Result<Option<DatabaseLock>> {
    let Database::Sqlite(path) = &config.database else {
        return Ok(None);
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the database folder {}", parent.display()))?;
    }
    let lock = DatabaseLock::acquire(path).context("the daemon cannot start")?;
    Ok(Some(lock))
}

/// Spawns the daily backup (unless `backup.enabled` is false or the database is not SQLite)
/// and daily retention (when there are rules); they stop on `shutdown`.
pub fn spawn_daily_jobs(
    config: &Config,
    store: &Store,
    clock: Arc<dyn Clock>,
    shutdown: &CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let tick = SCHEDULE_TICK;
    let mut jobs = Vec::new();
    let backup = config.backup_plan()?;
    if backup.enabled {
        jobs.push(conductor_ops::backup::spawn_daily(
            store.clone(),
            Arc::clone(&clock),
            backup.settings,
            backup.at,
            tick,
            shutdown.clone(),
        ));
    } else {
        tracing::info!("daily backups are off (backup.enabled is false, or not SQLite)");
    }
    let retention = config.retention_plan()?;
    if retention.settings.rules.is_empty() {
        tracing::debug!("no retention rules: old messages are kept");
    } else {
        jobs.push(conductor_ops::retention::spawn_daily(
            store.clone(),
            clock,
            retention.settings,
            retention.at,
            tick,
            shutdown.clone(),
        ));
    }
    Ok(jobs)
}
