//! `conductor doctor`: checks the whole installation and says what to fix.
//!
//! Each check prints `ok`, `warn`, `FAIL` or `skip` with what it saw and, when not ok, what to
//! do. Exit 0 when nothing fails (warnings included), 1 otherwise. What it checks: the config,
//! the database (opens, takes writes, WAL mode), each configured modem's status row (ready,
//! registered, written recently), SIM storage, free disk space, the systemd service, the
//! newest backup, ModemManager (which grabs modem ports), and active alerts.
//!
//! Like `health`, it never opens a modem port (DESIGN.md "Decisions: Database"): the daemon
//! owns the ports, so the modems are judged by the status rows it writes. Without a running
//! daemon those rows are stale, which is itself what to fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use conductor_ops::alerts::{database_dir, disk_usage};
use conductor_store::{ModemState, ModemStatus, Store, StoreOptions};
use jiff::Timestamp;
use serde::Serialize;

use crate::commands::health::STALE_AFTER;
use crate::config::{Config, Database, Overrides, Source};

/// A backup older than this is worth a warning (the daemon takes one daily).
const BACKUP_STALE_AFTER: Duration = Duration::from_secs(48 * 3600);

/// Less free space than this always fails, whatever the alert threshold.
const DISK_FAIL_BYTES: u64 = 100 * 1024 * 1024;

/// How long doctor waits for the write lock: long enough for the daemon's short
/// transactions, short enough to answer quickly when something holds it.
const DOCTOR_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Ok,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    level: Level,
    detail: String,
    /// What to do about it (not ok only).
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, name: impl Into<String>, level: Level, detail: impl Into<String>) {
        self.0.push(Check {
            name: name.into(),
            level,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fix(
        &mut self,
        name: impl Into<String>,
        level: Level,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Check {
            name: name.into(),
            level,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }
}

/// Runs every check, prints them, and fails (exit 1) when any check fails.
pub fn run(overrides: &Overrides, as_json: bool) -> Result<()> {
    let mut checks = Checks::default();
    match Config::load(overrides) {
        Err(error) => checks.fix(
            "config",
            Level::Fail,
            error.to_string(),
            "correct the field named above; `conductor config check` shows what is in force",
        ),
        Ok(config) => {
            let source = match &config.source {
                Source::File(path) => path.display().to_string(),
                Source::Defaults => "no config file, defaults".to_owned(),
            };
            checks.push(
                "config",
                Level::Ok,
                format!(
                    "{source}: {} modem(s), database {}",
                    config.file.modems.len(),
                    config.database
                ),
            );
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(with_config(&config, &mut checks));
        }
    }
    report(&checks.0, as_json)
}

fn report(checks: &[Check], as_json: bool) -> Result<()> {
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| c.level == Level::Fail)
        .map(|c| c.name.as_str())
        .collect();
    if as_json {
        println!(
            "{}",
            serde_json::json!({ "ok": failing.is_empty(), "checks": checks })
        );
    } else {
        for check in checks {
            let level = match check.level {
                Level::Ok => "ok",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
                Level::Skip => "skip",
            };
            println!("{level:<5} {:<18} {}", check.name, check.detail);
            if let Some(fix) = &check.fix {
                for (i, line) in fix.lines().enumerate() {
                    let lead = if i == 0 { "fix:" } else { "" };
                    println!("{:<24} {lead:<4} {line}", "");
                }
            }
        }
    }
    if !failing.is_empty() {
        bail!(
            "doctor: {} check(s) failed: {}",
            failing.len(),
            failing.join(", ")
        );
    }
    Ok(())
}

async fn with_config(config: &Config, checks: &mut Checks) {
    let store = database(config, checks).await;
    let now = Timestamp::now();
    if let Some(store) = &store {
        modems(config, store, now, checks).await;
    }
    disk(config, checks);
    service(checks);
    if let Some(store) = &store {
        backups(store, now, checks).await;
    }
    modem_manager(config, checks);
    if let Some(store) = &store {
        alerts(store, checks).await;
    }
}

async fn database(config: &Config, checks: &mut Checks) -> Option<Store> {
    let Database::Sqlite(path) = &config.database else {
        checks.push(
            "database",
            Level::Skip,
            format!("{} is not SQLite; not checked", config.database),
        );
        return None;
    };
    let options = StoreOptions {
        busy_timeout: DOCTOR_BUSY_TIMEOUT,
        ..StoreOptions::default()
    };
    let store = match Store::open_sqlite(path.clone(), options).await {
        Ok(store) => store,
        Err(error) => {
            checks.fix(
                "database",
                Level::Fail,
                format!("cannot open {}: {error}", path.display()),
                format!(
                    "check that {} exists, its folder is writable by this user and the disk is \
                     not full",
                    path.display()
                ),
            );
            return None;
        }
    };
    if let Err(error) = store.check_writable().await {
        checks.fix(
            "database",
            Level::Fail,
            format!("{} does not take writes: {error}", path.display()),
            "another process holds the write lock for seconds (a long sqlite3 session or \
             script: end it), or the file or its folder is read-only or on a full disk",
        );
        return Some(store);
    }
    match store.journal_mode().await {
        Ok(mode) if mode.eq_ignore_ascii_case("wal") => checks.push(
            "database",
            Level::Ok,
            format!(
                "{} takes writes, WAL mode, schema {}",
                path.display(),
                conductor_store::SCHEMA_VERSION
            ),
        ),
        Ok(mode) => checks.fix(
            "database",
            Level::Fail,
            format!("{} is in journal mode {mode:?}, not WAL", path.display()),
            format!(
                "external writers need WAL: sqlite3 {} 'PRAGMA journal_mode=WAL'",
                path.display()
            ),
        ),
        Err(error) => checks.fix(
            "database",
            Level::Fail,
            format!("cannot read the journal mode: {error}"),
            "check the file with sqlite3 'PRAGMA integrity_check'",
        ),
    }
    Some(store)
}

fn age_text(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

async fn modems(config: &Config, store: &Store, now: Timestamp, checks: &mut Checks) {
    let rows = match store.modem_statuses().await {
        Ok(rows) => rows,
        Err(error) => {
            checks.push(
                "modems",
                Level::Fail,
                format!("cannot read modem status: {error}"),
            );
            return;
        }
    };
    let mut ids: Vec<String> = config.file.modems.iter().map(|m| m.id.clone()).collect();
    if ids.is_empty() {
        ids = rows.iter().map(|r| r.modem_id.0.clone()).collect();
    }
    if ids.is_empty() {
        checks.fix(
            "modems",
            Level::Fail,
            "no modem configured or recorded",
            "add modems to the config (`conductor config init` writes a starting file) or give \
             `conductor run --modem DEVICE`",
        );
        return;
    }
    let threshold = u64::from(config.file.inbound.capacity_threshold_percent);
    for id in ids {
        let name = format!("modem {id}");
        let device = config
            .file
            .modems
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.device.clone())
            .unwrap_or_default();
        let Some(row) = rows.iter().find(|r| r.modem_id.0 == id) else {
            checks.fix(
                name,
                Level::Fail,
                "no status recorded: the daemon has never run this modem",
                "start the daemon (`systemctl start conductor` or `conductor run`)",
            );
            continue;
        };
        let age = row.age(now);
        if age > STALE_AFTER {
            checks.fix(
                name,
                Level::Fail,
                format!(
                    "status last written {} UTC, {} ago ({})",
                    row.updated_at,
                    age_text(age),
                    row.state.as_str()
                ),
                "the daemon is not running or is stuck: `systemctl status conductor`, or start \
                 `conductor run`",
            );
            continue;
        }
        modem_row(&name, &device, row, age, checks);
        sim(&id, row, threshold, checks);
    }
}

fn modem_row(name: &str, device: &str, row: &ModemStatus, age: Duration, checks: &mut Checks) {
    let error = row.last_error.clone().unwrap_or_default();
    match row.state {
        ModemState::Ready => {
            let mut detail = format!(
                "ready, registered ({})",
                row.registration.as_deref().unwrap_or("yes")
            );
            if let Some(dbm) = row.signal_dbm {
                detail.push_str(&format!(", signal {dbm} dBm"));
            }
            if let Some(operator) = &row.operator {
                detail.push_str(&format!(", {operator}"));
            }
            detail.push_str(&format!(", status written {} ago", age_text(age)));
            checks.push(name, Level::Ok, detail);
        }
        ModemState::Down | ModemState::Starting => checks.fix(
            name,
            Level::Fail,
            format!("{}: {error}", row.state.as_str()),
            format!(
                "the daemon cannot reach it on {device}: check the cable and power, that the \
                 device path is right (`ls -l /dev/serial/by-id/`) and that no other program \
                 (ModemManager, minicom) holds the port; the daemon reconnects by itself"
            ),
        ),
        ModemState::Degraded => checks.fix(
            name,
            Level::Fail,
            format!("degraded: {error}"),
            "not registered: check the antenna, the SIM's credit and coverage; SIM full: \
             mark messages read or use `delete_policy: on_store`",
        ),
    }
}

fn sim(id: &str, row: &ModemStatus, threshold: u64, checks: &mut Checks) {
    let name = format!("sim {id}");
    if row.storage.is_empty() {
        checks.push(name, Level::Skip, "no storage figures recorded yet");
        return;
    }
    let shown: Vec<String> = row
        .storage
        .iter()
        .map(|m| format!("{} {}", m.memory, m.display()))
        .collect();
    let shown = shown.join(", ");
    let full = row.storage.iter().any(|m| m.total > 0 && m.used >= m.total);
    let over = row
        .storage
        .iter()
        .any(|m| m.total > 0 && u64::from(m.used) * 100 >= threshold * u64::from(m.total));
    if full {
        checks.fix(
            name,
            Level::Fail,
            format!("full: {shown}"),
            "the network holds new messages until slots are freed: mark stored messages read \
             (`conductor mark-read`) or set `inbound.delete_policy` to `on_store`",
        );
    } else if over {
        checks.fix(
            name,
            Level::Warn,
            format!("over the {threshold} % threshold: {shown}"),
            "the daemon frees copies already stored; if it stays high, see the daemon's log",
        );
    } else {
        checks.push(name, Level::Ok, shown);
    }
}

fn disk(config: &Config, checks: &mut Checks) {
    let Database::Sqlite(path) = &config.database else {
        return;
    };
    let dir = database_dir(path);
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let minimum = f64::from(config.file.alerts.disk_min_free_percent);
    match disk_usage(&dir) {
        Ok(usage) => {
            let detail = format!(
                "{}: {} MiB free of {} MiB ({:.1} %)",
                dir.display(),
                usage.free_bytes / (1024 * 1024),
                usage.total_bytes / (1024 * 1024),
                usage.free_percent()
            );
            let fix = "free space on that filesystem or move the database (and backups) to a \
                       larger one; SQLite cannot commit on a full disk";
            if usage.free_bytes < DISK_FAIL_BYTES || usage.free_percent() < 1.0 {
                checks.fix("disk", Level::Fail, detail, fix);
            } else if usage.free_percent() < minimum {
                checks.fix("disk", Level::Warn, detail, fix);
            } else {
                checks.push("disk", Level::Ok, detail);
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::Unsupported => {
            checks.push("disk", Level::Skip, error.to_string());
        }
        Err(error) => checks.push(
            "disk",
            Level::Warn,
            format!("cannot measure {}: {error}", dir.display()),
        ),
    }
}

/// The first `name` found on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn service(checks: &mut Checks) {
    let Some(systemctl) = on_path("systemctl") else {
        checks.push(
            "service",
            Level::Skip,
            "systemctl not found: not a systemd host (run `conductor run` under your service \
             manager)",
        );
        return;
    };
    let output = match std::process::Command::new(systemctl)
        .args(["is-active", "conductor"])
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            checks.push(
                "service",
                Level::Skip,
                format!("cannot run systemctl: {error}"),
            );
            return;
        }
    };
    let state = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    match state.as_str() {
        "active" | "activating" | "reloading" => {
            checks.push(
                "service",
                Level::Ok,
                format!("conductor.service is {state}"),
            );
        }
        "failed" => checks.fix(
            "service",
            Level::Warn,
            "conductor.service failed",
            "see why with `journalctl -u conductor -n 50`, then `systemctl restart conductor`",
        ),
        "inactive" | "unknown" => checks.fix(
            "service",
            Level::Warn,
            format!("conductor.service is {state} (not installed, or stopped)"),
            "`sudo conductor service install` runs it as a service, restarted on failure",
        ),
        _ => checks.push(
            "service",
            Level::Skip,
            format!(
                "systemd does not answer ({}); not checked",
                if stderr.is_empty() { &state } else { &stderr }
            ),
        ),
    }
}

async fn backups(store: &Store, now: Timestamp, checks: &mut Checks) {
    let newest = match store
        .latest_event(vec!["backup_completed".into(), "backup_failed".into()])
        .await
    {
        Ok(newest) => newest,
        Err(error) => {
            checks.push(
                "backups",
                Level::Warn,
                format!("cannot read events: {error}"),
            );
            return;
        }
    };
    let Some(event) = newest else {
        checks.fix(
            "backups",
            Level::Warn,
            "no backup recorded yet",
            "`conductor backup` takes one now; the daemon takes one daily (config `backup`)",
        );
        return;
    };
    let detail = |key: &str| {
        event
            .detail
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    if event.kind == "backup_failed" {
        checks.fix(
            "backups",
            Level::Fail,
            format!(
                "the last backup failed at {} UTC: {}",
                event.at,
                detail("reason")
            ),
            "check the backup folder's free space and permissions, then `conductor backup`",
        );
        return;
    }
    let age = event
        .at
        .timestamp()
        .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
        .unwrap_or(Duration::MAX);
    let shown = format!("last backup {} UTC ({})", event.at, detail("file"));
    if age > BACKUP_STALE_AFTER {
        checks.fix(
            "backups",
            Level::Warn,
            format!("{shown}, {} ago", age_text(age)),
            "is the daemon running with `backup.enabled`? `conductor backup` takes one now",
        );
    } else {
        checks.push("backups", Level::Ok, shown);
    }
}

/// ModemManager grabs modem ports; the advice and the udev rule come from the same code as
/// `modem scan` and the daemon's start-up warning (`conductor_modem::host`).
fn modem_manager(config: &Config, checks: &mut Checks) {
    use conductor_modem::host::{HostRoots, modem_manager, modem_manager_advice};
    use conductor_modem::scan::usb_ids_of;
    let roots = HostRoots::from_env();
    if !roots.proc.is_dir() {
        checks.push("modemmanager", Level::Skip, "no /proc here; not checked");
        return;
    }
    match modem_manager(&roots) {
        None => checks.push("modemmanager", Level::Ok, "not running"),
        Some(manager) => {
            let ids: Vec<(String, String)> = config
                .file
                .modems
                .iter()
                .filter(|m| !m.device.contains("://"))
                .filter_map(|m| usb_ids_of(&roots, Path::new(&m.device)))
                .collect();
            let fix = modem_manager_advice(&manager, &ids);
            checks.fix("modemmanager", Level::Warn, "ModemManager is running", fix);
        }
    }
}

async fn alerts(store: &Store, checks: &mut Checks) {
    match store.active_alerts().await {
        Ok(alerts) if alerts.is_empty() => checks.push("alerts", Level::Ok, "none active"),
        Ok(alerts) => {
            for alert in alerts {
                checks.push(
                    format!("alert {}", alert.key),
                    Level::Warn,
                    format!("{} (since {} UTC)", alert.message, alert.raised_at),
                );
            }
        }
        Err(error) => checks.push(
            "alerts",
            Level::Warn,
            format!("cannot read alerts: {error}"),
        ),
    }
}
