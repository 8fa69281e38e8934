//! Alerts: conditions an operator must hear about, each raised once per episode and cleared
//! once, evaluated periodically by the daemon on the gateway's clock.
//!
//! Why: the original system's checklist says "monitor"; operators of other gateways grep logs
//! from cron. Here the daemon watches six conditions itself:
//! - **modem down**: a configured modem not usable (status row `down` or `starting`, not
//!   registered, no row, or a row the daemon stopped rewriting) for longer than
//!   `modem_down_after`;
//! - **SIM storage**: a modem's message memory at or above the capacity threshold (the same
//!   line at which the gateway starts freeing copies, so an alert means it could not);
//! - **queue stuck**: due queued messages waiting longer than `queue_stuck_after` while no
//!   send reached an outcome in that time;
//! - **failure rate**: of the outbound messages that reached an outcome in `failure_window`,
//!   at least `failure_rate_percent` failed (or became unknown), over at least
//!   `failure_min_messages` messages;
//! - **disk space**: the database's filesystem has less than `disk_min_free_percent` free
//!   (statvfs; on platforms without it, Windows included, the check is skipped and never
//!   raises);
//! - **backup failed**: the newest backup event is `backup_failed` (until a
//!   `backup_completed` follows);
//! - **credit low**: a modem's newest `balance_checked` event (the gateway's scheduled USSD
//!   balance check) has an `amount` below its `low_below`; cleared by a check above it.
//!
//! An episode lives in the `alerts` table (one active row per key, whichever process raises
//! it), so `conductor health`, `doctor` and `GET /api/v1/health` in other processes see it,
//! and a restarted daemon neither raises it again nor forgets it. Raising and clearing append
//! `alert_raised` / `alert_cleared` events in the same transaction; the webhook outbox turns
//! them into `alert.raised` / `alert.cleared` deliveries. Each transition is logged once: a
//! warning when raised, info when cleared.
//!
//! Hysteresis: a condition that needs time to fire (a modem down for two minutes) keeps an
//! active alert for as long as it is bad at all, and a check that cannot be made (a stale
//! status row for the SIM check, a failed statvfs) keeps the alert as it is rather than
//! clearing it.
//!
//! Drive it with [`AlertEvaluator::evaluate`] (tests, with a `ManualClock`) or
//! [`AlertEvaluator::spawn`] (the daemon, every `interval`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use conductor_gateway::Clock;
use conductor_store::{
    Alert, ModemId, ModemState, ModemStatus, NewAlert, SqlTime, Store, StoreError,
};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Thresholds and durations of the alert conditions (config section `alerts`).
#[derive(Clone, Debug)]
pub struct AlertSettings {
    /// How often the conditions are evaluated. Default 30 s.
    pub interval: Duration,
    /// The modems to watch (the config's); empty means every modem with a status row.
    pub modems: Vec<ModemId>,
    /// A status row older than this means its worker stopped reporting. Default 60 s (what
    /// `conductor health` uses).
    pub status_stale_after: Duration,
    /// A modem unusable for longer than this raises `modem_down`. Default 2 min.
    pub modem_down_after: Duration,
    /// SIM storage at or above this percentage raises `sim_storage`. Default 80 (the config's
    /// `inbound.capacity_threshold_percent`).
    pub sim_threshold_percent: u8,
    /// Due queued messages older than this with no send outcome in as long raise
    /// `queue_stuck`. Default 10 min.
    pub queue_stuck_after: Duration,
    /// Failures (failed + unknown) at or above this share of outcomes raise `failure_rate`;
    /// 0 turns the check off. Default 20.
    pub failure_rate_percent: u8,
    /// The window outcomes are counted over. Default 1 h.
    pub failure_window: Duration,
    /// Fewer outcomes than this in the window say nothing (and clear the alert). Default 10.
    pub failure_min_messages: u64,
    /// Less free space than this percentage on the database's filesystem raises
    /// `disk_space` (when `disk_min_free_mib` agrees); 0 turns the check off. Default 10.
    pub disk_min_free_percent: u8,
    /// ... and less than this many MiB free: a 10 % share of a large disk is still tens of
    /// gigabytes, which no SMS database fills, so both must be low. 0 judges by the
    /// percentage alone. Default 2048.
    pub disk_min_free_mib: u64,
    /// The SQLite file, whose filesystem the disk check measures (None: not checked).
    pub database_path: Option<PathBuf>,
    /// Raise `backup_failed` when the newest backup event is a failure. Default true.
    pub backup_failed: bool,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            modems: Vec::new(),
            status_stale_after: Duration::from_secs(60),
            modem_down_after: Duration::from_secs(120),
            sim_threshold_percent: 80,
            queue_stuck_after: Duration::from_secs(600),
            failure_rate_percent: 20,
            failure_window: Duration::from_secs(3600),
            failure_min_messages: 10,
            disk_min_free_percent: 10,
            disk_min_free_mib: 2048,
            database_path: None,
            backup_failed: true,
        }
    }
}

/// The conditions, spelled as in the `alerts.kind` column and the webhook payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A modem unusable for too long.
    ModemDown,
    /// A SIM's message memory over the threshold.
    SimStorage,
    /// The queue is not draining.
    QueueStuck,
    /// Too many sends fail.
    FailureRate,
    /// The database's disk is nearly full.
    DiskSpace,
    /// The last backup failed.
    BackupFailed,
    /// A prepaid SIM's balance is below its threshold.
    CreditLow,
}

impl AlertKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModemDown => "modem_down",
            Self::SimStorage => "sim_storage",
            Self::QueueStuck => "queue_stuck",
            Self::FailureRate => "failure_rate",
            Self::DiskSpace => "disk_space",
            Self::BackupFailed => "backup_failed",
            Self::CreditLow => "credit_low",
        }
    }

    /// The key of this condition's episode for `modem` (or the whole gateway).
    pub fn key(self, modem: Option<&ModemId>) -> String {
        match modem {
            Some(modem) => format!("{}:{modem}", self.as_str()),
            None => self.as_str().to_owned(),
        }
    }
}

/// A condition that holds now and should be (or stay) raised.
#[derive(Clone, Debug)]
struct Finding {
    kind: AlertKind,
    modem: Option<ModemId>,
    message: String,
    figures: serde_json::Value,
}

/// Free and total bytes of a filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// Bytes an unprivileged writer can still use.
    pub free_bytes: u64,
    /// The filesystem's size.
    pub total_bytes: u64,
}

impl DiskUsage {
    /// Free space in percent of the total (100 for an empty or sizeless filesystem).
    pub fn free_percent(&self) -> f64 {
        if self.total_bytes == 0 {
            100.0
        } else {
            self.free_bytes as f64 * 100.0 / self.total_bytes as f64
        }
    }
}

/// The folder whose filesystem holds `database` (the file may not exist yet).
pub fn database_dir(database: &Path) -> PathBuf {
    match database.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Free space of the filesystem holding `path` (statvfs).
#[cfg(unix)]
pub fn disk_usage(path: &Path) -> std::io::Result<DiskUsage> {
    let stats = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    // The field types differ between platforms (u32 or u64); all fit in u64.
    let fragment = stats.fragment_size() as u64;
    Ok(DiskUsage {
        free_bytes: (stats.blocks_available() as u64).saturating_mul(fragment),
        total_bytes: (stats.blocks() as u64).saturating_mul(fragment),
    })
}

/// Free space of the filesystem holding `path`: not measured on this platform (no statvfs;
/// Windows would need `GetDiskFreeSpaceExW`, which this build does not call).
#[cfg(not(unix))]
pub fn disk_usage(path: &Path) -> std::io::Result<DiskUsage> {
    let _ = path;
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "free disk space is not measured on this platform",
    ))
}

/// How the disk check measures; replaced in tests to trip and clear it at will.
pub type DiskProbe = Arc<dyn Fn(&Path) -> std::io::Result<DiskUsage> + Send + Sync>;

/// What one evaluation changed.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Alerts raised now.
    pub raised: Vec<Alert>,
    /// Alerts cleared now.
    pub cleared: Vec<Alert>,
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The database could not be read or written; nothing was raised or cleared.
    #[error("alerts: {0}")]
    Store(#[from] StoreError),
}

/// Evaluates the conditions and raises or clears their episodes.
pub struct AlertEvaluator {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: AlertSettings,
    disk: DiskProbe,
    /// Since when each modem has been seen unusable (by this process: a restart starts the
    /// count again, while an alert already active stays active).
    unusable_since: HashMap<ModemId, Timestamp>,
    /// The newest `balance_checked` event per modem, and the last event id read for it
    /// (events are append-only, so each evaluation reads only what is new).
    balances: HashMap<ModemId, conductor_store::Event>,
    balance_cursor: i64,
}

impl std::fmt::Debug for AlertEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertEvaluator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn secs(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// `2m 5s`: whole seconds in jiff's friendly format.
fn human(d: Duration) -> String {
    format!(
        "{:#}",
        SignedDuration::from_secs(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    )
}

impl AlertEvaluator {
    /// An evaluator over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: AlertSettings) -> Self {
        Self {
            store,
            clock,
            settings,
            disk: Arc::new(disk_usage),
            unusable_since: HashMap::new(),
            balances: HashMap::new(),
            balance_cursor: 0,
        }
    }

    /// Replaces how free disk space is measured (tests).
    pub fn with_disk_probe(mut self, probe: DiskProbe) -> Self {
        self.disk = probe;
        self
    }

    /// Runs [`Self::evaluate`] every `interval` until `shutdown`; a failed evaluation is
    /// logged and tried again at the next tick.
    pub fn spawn(mut self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            info!(interval = ?self.settings.interval, "alert evaluator started");
            loop {
                if let Err(error) = self.evaluate().await {
                    warn!(%error, "could not evaluate alerts; trying again at the next tick");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.settings.interval) => {}
                }
            }
        })
    }

    /// Evaluates every condition once: raises what holds and is not active, clears what is
    /// active and no longer holds.
    pub async fn evaluate(&mut self) -> Result<Evaluation, AlertError> {
        let now = self.clock.now();
        let active = self.store.active_alerts().await?;
        let mut firing: Vec<Finding> = Vec::new();
        // Keys to leave active: their condition holds (or cannot be judged right now).
        let mut keep: HashSet<String> = HashSet::new();
        self.modems(now, &mut firing, &mut keep).await?;
        self.queue(now, &mut firing).await?;
        self.failure_rate(now, &mut firing).await?;
        self.disk(&mut firing, &mut keep);
        self.backup(&mut firing).await?;
        self.credit(&mut firing).await?;

        let mut evaluation = Evaluation::default();
        for finding in firing {
            let key = finding.kind.key(finding.modem.as_ref());
            keep.insert(key.clone());
            if active.iter().any(|a| a.key == key) {
                continue;
            }
            let raised = self
                .store
                .raise_alert(NewAlert {
                    key: key.clone(),
                    kind: finding.kind.as_str().to_owned(),
                    modem_id: finding.modem.clone(),
                    message: finding.message.clone(),
                    detail: Some(finding.figures),
                    at: now,
                })
                .await?;
            if let Some(alert) = raised {
                warn!(alert = %key, "alert raised: {}", finding.message);
                evaluation.raised.push(alert);
            }
        }
        for alert in active {
            if keep.contains(&alert.key) {
                continue;
            }
            let why = self.cleared_because(&alert);
            if let Some(cleared) = self
                .store
                .clear_alert(alert.key.clone(), why.clone(), now)
                .await?
            {
                info!(alert = %alert.key, raised_at = %alert.raised_at, "alert cleared: {why}");
                evaluation.cleared.push(cleared);
            }
        }
        Ok(evaluation)
    }

    fn cleared_because(&self, alert: &Alert) -> String {
        let modem = alert.modem_id.as_ref().map(ModemId::as_str).unwrap_or("?");
        match alert.kind.as_str() {
            "modem_down" => format!("modem {modem} is usable again"),
            "sim_storage" => format!(
                "SIM storage of modem {modem} is below {} % again",
                self.settings.sim_threshold_percent
            ),
            "queue_stuck" => "the queue is draining again".to_owned(),
            "failure_rate" => format!(
                "the failure rate is below {} % again (or too few sends to judge)",
                self.settings.failure_rate_percent
            ),
            "disk_space" => format!(
                "free space is above {} % again",
                self.settings.disk_min_free_percent
            ),
            "backup_failed" => "a backup completed since".to_owned(),
            "credit_low" => format!("the balance of modem {modem} is above its threshold again"),
            _ => "its condition no longer holds".to_owned(),
        }
    }

    /// Modem down and SIM storage, from the status rows the daemon writes.
    async fn modems(
        &mut self,
        now: Timestamp,
        firing: &mut Vec<Finding>,
        keep: &mut HashSet<String>,
    ) -> Result<(), AlertError> {
        let rows = self.store.modem_statuses().await?;
        let ids: Vec<ModemId> = if self.settings.modems.is_empty() {
            rows.iter().map(|r| r.modem_id.clone()).collect()
        } else {
            self.settings.modems.clone()
        };
        self.unusable_since.retain(|id, _| ids.contains(id));
        for id in ids {
            let row = rows.iter().find(|r| r.modem_id == id);
            let stale = row.is_none_or(|r| r.age(now) > self.settings.status_stale_after);
            match unusable(row, stale, now) {
                Some(why) => {
                    let since = *self.unusable_since.entry(id.clone()).or_insert(now);
                    let down_for = now.duration_since(since);
                    if down_for >= secs(self.settings.modem_down_after) {
                        firing.push(Finding {
                            kind: AlertKind::ModemDown,
                            modem: Some(id.clone()),
                            message: format!(
                                "modem {id} has been unusable for {}: {why}; check its cable, \
                                 power and SIM, then `conductor health` and the daemon's log",
                                human(Duration::try_from(down_for).unwrap_or_default())
                            ),
                            figures: json!({
                                "down_since": SqlTime::from_timestamp(since),
                                "why": why,
                            }),
                        });
                    } else {
                        keep.insert(AlertKind::ModemDown.key(Some(&id)));
                    }
                }
                None => {
                    self.unusable_since.remove(&id);
                }
            }
            let sim_key = AlertKind::SimStorage.key(Some(&id));
            let Some(row) = row.filter(|_| !stale) else {
                // No fresh figures: leave the SIM alert as it is.
                keep.insert(sim_key);
                continue;
            };
            let threshold = u64::from(self.settings.sim_threshold_percent.min(100));
            let over = row
                .storage
                .iter()
                .find(|m| m.total > 0 && u64::from(m.used) * 100 >= threshold * u64::from(m.total));
            if let Some(memory) = over {
                firing.push(Finding {
                    kind: AlertKind::SimStorage,
                    modem: Some(id.clone()),
                    message: format!(
                        "SIM storage of modem {id} ({}) is {}, at or over the {threshold} % \
                         threshold, and the daemon could not free it: check `conductor status` \
                         and the log for messages that cannot be stored",
                        memory.memory,
                        memory.display()
                    ),
                    figures: json!({
                        "memory": memory.memory,
                        "used": memory.used,
                        "total": memory.total,
                        "threshold_percent": threshold,
                    }),
                });
            }
        }
        Ok(())
    }

    /// Queue not draining.
    async fn queue(&self, now: Timestamp, firing: &mut Vec<Finding>) -> Result<(), AlertError> {
        let limit = self.settings.queue_stuck_after;
        let since = now.checked_sub(secs(limit)).unwrap_or(Timestamp::MIN);
        let backlog = self.store.queue_backlog(now, since).await?;
        let oldest = backlog
            .oldest_due_since
            .as_ref()
            .and_then(SqlTime::timestamp);
        if let Some(oldest) = oldest
            && oldest <= since
            && backlog.last_progress.is_none()
        {
            let waiting = Duration::try_from(now.duration_since(oldest)).unwrap_or_default();
            firing.push(Finding {
                kind: AlertKind::QueueStuck,
                modem: None,
                message: format!(
                    "{} queued message(s) are due, the oldest for {}, and no send reached an \
                     outcome in the last {}: check the modems (`conductor health`) and the log",
                    backlog.due,
                    human(waiting),
                    human(limit)
                ),
                figures: json!({
                    "due": backlog.due,
                    "oldest_due_since": backlog.oldest_due_since,
                }),
            });
        }
        Ok(())
    }

    /// Failure rate over the window.
    async fn failure_rate(
        &self,
        now: Timestamp,
        firing: &mut Vec<Finding>,
    ) -> Result<(), AlertError> {
        let percent = u64::from(self.settings.failure_rate_percent.min(100));
        if percent == 0 {
            return Ok(());
        }
        let window = self.settings.failure_window;
        let since = now.checked_sub(secs(window)).unwrap_or(Timestamp::MIN);
        let outcomes = self.store.send_outcomes(since).await?;
        if outcomes.total >= self.settings.failure_min_messages.max(1)
            && outcomes.failed * 100 >= percent * outcomes.total
        {
            firing.push(Finding {
                kind: AlertKind::FailureRate,
                modem: None,
                message: format!(
                    "{} of the last {} sends failed within {} ({:.0} %, threshold {percent} %): \
                     `conductor stats --by day` and `conductor list --status failed` show why",
                    outcomes.failed,
                    outcomes.total,
                    human(window),
                    outcomes.failed as f64 * 100.0 / outcomes.total as f64
                ),
                figures: json!({
                    "failed": outcomes.failed,
                    "total": outcomes.total,
                    "window_secs": window.as_secs(),
                    "threshold_percent": percent,
                }),
            });
        }
        Ok(())
    }

    /// Disk nearly full.
    fn disk(&self, firing: &mut Vec<Finding>, keep: &mut HashSet<String>) {
        let minimum = self.settings.disk_min_free_percent.min(100);
        let Some(database) = &self.settings.database_path else {
            return;
        };
        if minimum == 0 {
            return;
        }
        let dir = database_dir(database);
        match (self.disk)(&dir) {
            Ok(usage)
                if usage.free_percent() < f64::from(minimum)
                    && (self.settings.disk_min_free_mib == 0
                        || usage.free_bytes < self.settings.disk_min_free_mib * 1024 * 1024) =>
            {
                firing.push(Finding {
                    kind: AlertKind::DiskSpace,
                    modem: None,
                    message: format!(
                        "the database's filesystem ({}) has {} MiB free of {} MiB ({:.1} %), under \
                     the {minimum} % and {} MiB thresholds: free space or move the database; \
                     when it is full nothing more can be stored",
                        dir.display(),
                        usage.free_bytes / (1024 * 1024),
                        usage.total_bytes / (1024 * 1024),
                        usage.free_percent(),
                        self.settings.disk_min_free_mib
                    ),
                    figures: json!({
                        "dir": dir,
                        "free_bytes": usage.free_bytes,
                        "total_bytes": usage.total_bytes,
                        "threshold_percent": minimum,
                        "threshold_mib": self.settings.disk_min_free_mib,
                    }),
                })
            }
            Ok(_) => {}
            Err(_) => {
                // Cannot measure (or not on this platform): leave the alert as it is.
                keep.insert(AlertKind::DiskSpace.key(None));
            }
        }
    }

    /// Credit low: each modem's newest balance check, read incrementally from the events.
    async fn credit(&mut self, firing: &mut Vec<Finding>) -> Result<(), AlertError> {
        const PAGE: usize = 1000;
        loop {
            let events = self.store.events_since(self.balance_cursor, PAGE).await?;
            let full = events.len() == PAGE;
            for event in events {
                self.balance_cursor = self.balance_cursor.max(event.id);
                if event.kind == "balance_checked"
                    && let Some(modem) = event.modem_id.clone()
                {
                    self.balances.insert(modem, event);
                }
            }
            if !full {
                break;
            }
        }
        for (modem, event) in &self.balances {
            let detail = event.detail.as_ref();
            let number = |field: &str| detail.and_then(|d| d.get(field)).and_then(|v| v.as_f64());
            let (Some(amount), Some(low_below)) = (number("amount"), number("low_below")) else {
                continue;
            };
            if amount < low_below {
                let text = detail
                    .and_then(|d| d.get("text"))
                    .and_then(|t| t.as_str())
                    .unwrap_or_default();
                firing.push(Finding {
                    kind: AlertKind::CreditLow,
                    modem: Some(modem.clone()),
                    message: format!(
                        "modem {modem}'s balance is {amount} (below {low_below}) at {} UTC: \"{text}\"; \
                         top up the SIM before sends start failing",
                        event.at
                    ),
                    figures: json!({ "amount": amount, "low_below": low_below, "event_id": event.id }),
                });
            }
        }
        Ok(())
    }

    /// Backup failed.
    async fn backup(&self, firing: &mut Vec<Finding>) -> Result<(), AlertError> {
        if !self.settings.backup_failed {
            return Ok(());
        }
        let newest = self
            .store
            .latest_event(vec!["backup_completed".into(), "backup_failed".into()])
            .await?;
        if let Some(event) = newest.filter(|e| e.kind == "backup_failed") {
            let reason = event
                .detail
                .as_ref()
                .and_then(|d| d.get("reason"))
                .and_then(|r| r.as_str())
                .unwrap_or("no reason recorded")
                .to_owned();
            firing.push(Finding {
                kind: AlertKind::BackupFailed,
                modem: None,
                message: format!(
                    "the last backup failed at {} UTC: {reason}; check the backup folder's \
                     space and permissions, then run `conductor backup`",
                    event.at
                ),
                figures: json!({ "event_id": event.id, "at": event.at, "reason": reason }),
            });
        }
        Ok(())
    }
}

/// Why a modem cannot be used now, or None when it can.
fn unusable(row: Option<&ModemStatus>, stale: bool, now: Timestamp) -> Option<String> {
    let Some(row) = row else {
        return Some("no status recorded: the daemon has not started it".to_owned());
    };
    if stale {
        let age = row.age(now);
        return Some(if age == Duration::MAX {
            format!(
                "its status row's time {:?} cannot be read",
                row.updated_at.as_str()
            )
        } else {
            format!(
                "its status was last written {} ago: the daemon is not running or is stuck",
                human(age)
            )
        });
    }
    let detail = || {
        row.last_error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    };
    match row.state {
        ModemState::Ready => None,
        ModemState::Down | ModemState::Starting => {
            Some(format!("{}{}", row.state.as_str(), detail()))
        }
        ModemState::Degraded => {
            let registered = matches!(row.registration.as_deref(), Some("home" | "roaming"));
            (!registered).then(|| format!("degraded{}", detail()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_gateway::ManualClock;
    use conductor_store::{NewEvent, StorageUse, StoreOptions};
    use std::sync::Mutex;

    struct Rig {
        _dir: tempfile::TempDir,
        store: Store,
        clock: ManualClock,
        evaluator: AlertEvaluator,
        /// Free percent the fake disk reports.
        free: Arc<Mutex<u64>>,
    }

    async fn rig(tweak: impl FnOnce(&mut AlertSettings)) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("conductor.db");
        let store = Store::open_sqlite(&path, StoreOptions::default())
            .await
            .expect("store");
        let clock = ManualClock::new();
        let mut settings = AlertSettings {
            interval: Duration::from_secs(1),
            modems: vec![ModemId::from("m1")],
            status_stale_after: Duration::from_secs(60),
            modem_down_after: Duration::from_secs(5),
            sim_threshold_percent: 80,
            queue_stuck_after: Duration::from_secs(30),
            failure_rate_percent: 50,
            failure_window: Duration::from_secs(60),
            failure_min_messages: 4,
            disk_min_free_percent: 10,
            disk_min_free_mib: 2048,
            database_path: Some(path),
            backup_failed: true,
        };
        tweak(&mut settings);
        let free = Arc::new(Mutex::new(50u64));
        let probe_free = Arc::clone(&free);
        let probe: DiskProbe = Arc::new(move |_: &Path| {
            let free = *probe_free.lock().unwrap_or_else(|p| p.into_inner());
            Ok(DiskUsage {
                free_bytes: free * 1024 * 1024,
                total_bytes: 100 * 1024 * 1024,
            })
        });
        let evaluator = AlertEvaluator::new(store.clone(), Arc::new(clock.clone()), settings)
            .with_disk_probe(probe);
        let rig = Rig {
            _dir: dir,
            store,
            clock,
            evaluator,
            free,
        };
        rig.modem(ModemState::Ready, 3, 30).await;
        rig
    }

    impl Rig {
        fn now(&self) -> Timestamp {
            self.clock.now()
        }

        async fn modem(&self, state: ModemState, used: u32, total: u32) {
            self.store
                .upsert_modem_status(ModemStatus {
                    modem_id: ModemId::from("m1"),
                    state,
                    last_error: (state != ModemState::Ready)
                        .then(|| "connection refused".to_owned()),
                    manufacturer: None,
                    model: None,
                    firmware: None,
                    imei: None,
                    imsi: None,
                    iccid: None,
                    operator: None,
                    signal_dbm: Some(-71),
                    registration: Some("home".into()),
                    storage: vec![StorageUse {
                        memory: "SM".into(),
                        used,
                        total,
                    }],
                    last_cycle_at: None,
                    updated_at: SqlTime::from_timestamp(self.now()),
                })
                .await
                .expect("status row");
        }

        /// Evaluates and returns (raised keys, cleared keys).
        async fn step(&mut self) -> (Vec<String>, Vec<String>) {
            let e = self.evaluator.evaluate().await.expect("evaluate");
            (
                e.raised.into_iter().map(|a| a.key).collect(),
                e.cleared.into_iter().map(|a| a.key).collect(),
            )
        }

        fn advance(&self, secs: u64) {
            self.clock.advance(Duration::from_secs(secs));
        }

        async fn events(&self, kind: &str) -> Vec<conductor_store::Event> {
            self.store
                .events_since(0, 1000)
                .await
                .expect("events")
                .into_iter()
                .filter(|e| e.kind == kind)
                .collect()
        }

        async fn outbound(&self, status: &str, sent_secs_ago: i64, n: usize) {
            let now = self.now();
            let at = SqlTime::from_timestamp(now - SignedDuration::from_secs(sent_secs_ago));
            let path = self.store.sqlite_path().expect("sqlite").to_path_buf();
            let c = rusqlite::Connection::open(path).expect("open");
            for _ in 0..n {
                c.execute(
                    "INSERT INTO messages (phone_number, status, direction, created_at,
                         updated_at, sent_at)
                     VALUES ('+1', ?1, 'outbound', ?2, ?2,
                             CASE WHEN ?1 IN ('sent', 'delivered') THEN ?2 END)",
                    (status, at.as_str()),
                )
                .expect("insert");
            }
        }

        /// Raised once, then nothing while it holds; returns after checking the one event.
        async fn expect_one_episode_raised(&mut self, key: &str) {
            assert_eq!(self.step().await, (vec![key.to_owned()], vec![]));
            assert_eq!(self.step().await, (vec![], vec![]), "raised once");
            let active = self.store.active_alerts().await.expect("active");
            assert_eq!(
                active.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(),
                [key]
            );
            assert_eq!(self.events("alert_raised").await.len(), 1);
        }

        async fn expect_cleared(&mut self, key: &str) {
            assert_eq!(self.step().await, (vec![], vec![key.to_owned()]));
            assert_eq!(self.step().await, (vec![], vec![]), "cleared once");
            assert!(self.store.active_alerts().await.expect("active").is_empty());
            assert_eq!(self.events("alert_cleared").await.len(), 1);
        }
    }

    #[tokio::test]
    async fn a_modem_down_past_the_limit_raises_once_and_clears_once_when_it_is_back() {
        let mut rig = rig(|_| {}).await;
        assert_eq!(rig.step().await, (vec![], vec![]), "healthy");
        rig.modem(ModemState::Down, 3, 30).await;
        assert_eq!(rig.step().await, (vec![], vec![]), "not down long enough");
        rig.advance(4);
        rig.modem(ModemState::Down, 3, 30).await;
        assert_eq!(rig.step().await, (vec![], vec![]), "4 s < 5 s");
        rig.advance(2);
        rig.modem(ModemState::Down, 3, 30).await;
        rig.expect_one_episode_raised("modem_down:m1").await;
        let event = &rig.events("alert_raised").await[0];
        assert_eq!(event.modem_id, Some(ModemId::from("m1")));
        let message = event
            .detail
            .as_ref()
            .and_then(|d| d["message"].as_str())
            .unwrap_or("");
        assert!(message.contains("connection refused"), "{message}");
        rig.modem(ModemState::Ready, 3, 30).await;
        rig.expect_cleared("modem_down:m1").await;
    }

    #[tokio::test]
    async fn a_modem_whose_status_row_goes_stale_counts_as_down() {
        let mut rig = rig(|_| {}).await;
        rig.step().await;
        // Nobody rewrites the row: after 60 s it is stale, 5 s later the alert fires.
        rig.advance(61);
        assert_eq!(rig.step().await, (vec![], vec![]));
        rig.advance(5);
        rig.expect_one_episode_raised("modem_down:m1").await;
    }

    #[tokio::test]
    async fn sim_storage_over_the_threshold_raises_once_and_clears_below_it() {
        let mut rig = rig(|_| {}).await;
        rig.modem(ModemState::Ready, 23, 30).await;
        assert_eq!(rig.step().await, (vec![], vec![]), "76.7 % < 80 %");
        rig.modem(ModemState::Ready, 24, 30).await;
        rig.expect_one_episode_raised("sim_storage:m1").await;
        rig.modem(ModemState::Ready, 28, 30).await;
        assert_eq!(rig.step().await, (vec![], vec![]), "still the same episode");
        rig.modem(ModemState::Ready, 10, 30).await;
        rig.expect_cleared("sim_storage:m1").await;
    }

    #[tokio::test]
    async fn a_queue_that_does_not_drain_raises_once_and_clears_when_sends_progress() {
        let mut rig = rig(|_| {}).await;
        rig.outbound("queued", 0, 2).await;
        assert_eq!(rig.step().await, (vec![], vec![]), "just queued");
        rig.advance(31);
        rig.expect_one_episode_raised("queue_stuck").await;
        // One send goes out: the queue drains again.
        rig.outbound("sent", 0, 1).await;
        rig.expect_cleared("queue_stuck").await;
    }

    #[tokio::test]
    async fn a_failure_rate_over_the_threshold_with_enough_sends_raises_once_and_clears() {
        let mut rig = rig(|_| {}).await;
        rig.outbound("failed", 0, 2).await;
        rig.outbound("sent", 0, 1).await;
        assert_eq!(rig.step().await, (vec![], vec![]), "3 sends < minimum of 4");
        rig.outbound("unknown", 0, 1).await;
        rig.expect_one_episode_raised("failure_rate").await;
        // The window moves past them; fresh sends succeed.
        rig.advance(61);
        rig.outbound("delivered", 0, 5).await;
        rig.expect_cleared("failure_rate").await;
    }

    #[tokio::test]
    async fn a_low_balance_raises_credit_low_once_and_a_higher_one_clears_it() {
        let mut rig = rig(|_| {}).await;
        let balance = |amount: f64, at: Timestamp| NewEvent {
            at,
            kind: "balance_checked".into(),
            message_id: None,
            modem_id: Some(ModemId::from("m1")),
            detail: Some(
                json!({"text": format!("Balance {amount} EUR"), "amount": amount, "low_below": 5.0}),
            ),
        };
        rig.store
            .append_event(balance(12.34, rig.now()))
            .await
            .expect("event");
        assert_eq!(rig.step().await, (vec![], vec![]), "12.34 is above 5");
        rig.store
            .append_event(balance(3.1, rig.now()))
            .await
            .expect("event");
        rig.expect_one_episode_raised("credit_low:m1").await;
        rig.store
            .append_event(balance(2.0, rig.now()))
            .await
            .expect("event");
        assert_eq!(rig.step().await, (vec![], vec![]), "the same episode");
        rig.store
            .append_event(balance(20.0, rig.now()))
            .await
            .expect("event");
        rig.expect_cleared("credit_low:m1").await;
    }

    #[tokio::test]
    async fn a_failed_backup_raises_once_and_a_completed_one_clears_it() {
        let mut rig = rig(|_| {}).await;
        let event = |kind: &str, at: Timestamp| NewEvent {
            at,
            kind: kind.into(),
            message_id: None,
            modem_id: None,
            detail: Some(json!({"reason": "No space left on device"})),
        };
        rig.store
            .append_event(event("backup_completed", rig.now()))
            .await
            .expect("event");
        assert_eq!(rig.step().await, (vec![], vec![]));
        rig.store
            .append_event(event("backup_failed", rig.now()))
            .await
            .expect("event");
        rig.expect_one_episode_raised("backup_failed").await;
        let alert = &rig.store.active_alerts().await.expect("active")[0];
        assert!(
            alert.message.contains("No space left on device"),
            "{}",
            alert.message
        );
        rig.store
            .append_event(event("backup_completed", rig.now()))
            .await
            .expect("event");
        rig.expect_cleared("backup_failed").await;
    }

    #[tokio::test]
    async fn a_nearly_full_disk_raises_once_and_clears_when_space_is_freed() {
        let mut rig = rig(|_| {}).await;
        assert_eq!(rig.step().await, (vec![], vec![]), "50 % free");
        *rig.free.lock().expect("lock") = 9;
        rig.expect_one_episode_raised("disk_space").await;
        *rig.free.lock().expect("lock") = 30;
        rig.expect_cleared("disk_space").await;
    }

    #[tokio::test]
    async fn a_restarted_evaluator_keeps_the_active_episode_instead_of_raising_it_again() {
        let mut rig = rig(|_| {}).await;
        *rig.free.lock().expect("lock") = 5;
        rig.expect_one_episode_raised("disk_space").await;
        let free = Arc::clone(&rig.free);
        let mut second = AlertEvaluator::new(
            rig.store.clone(),
            Arc::new(rig.clock.clone()),
            rig.evaluator.settings.clone(),
        )
        .with_disk_probe(Arc::new(move |_: &Path| {
            let free = *free.lock().unwrap_or_else(|p| p.into_inner());
            Ok(DiskUsage {
                free_bytes: free,
                total_bytes: 100,
            })
        }));
        let e = second.evaluate().await.expect("evaluate");
        assert!(e.raised.is_empty() && e.cleared.is_empty());
        assert_eq!(rig.events("alert_raised").await.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn statvfs_measures_the_temp_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let usage = disk_usage(dir.path()).expect("statvfs");
        assert!(usage.total_bytes > 0 && usage.free_bytes <= usage.total_bytes);
        assert_eq!(database_dir(Path::new("gw.db")), PathBuf::from("."));
    }
}
