//! Retention: old messages are exported to compressed JSON lines, then removed, so the
//! database does not grow without bound.
//!
//! Why this order: the export is written, fsynced and renamed into place before the first row
//! is deleted. A crash at any point leaves every row either still in the database or in a
//! complete export file, and usually both.
//!
//! What is removed is only what the configured rules name (direction, statuses, age). With no
//! rules nothing is ever removed. `unread`, `queued` and `sending` rows cannot be named, and
//! rows with a copy still on a SIM are skipped (see [`conductor_store::RetentionRule`]).
//! Deleting goes in batches of [`BATCH`] rows, one short transaction each, so the daemon and
//! external writers wait milliseconds at most. A row someone changed between the export and
//! its batch is kept (it is in the export too) and counted as `changed`. The next run looks at
//! it again.
//!
//! Export format: `conductor-export-YYYYMMDDTHHMMSSZ.jsonl.gz`, one JSON object per message,
//! as `conductor show ID --json` prints it: the row, its parts, delivery reports and history.
//! `zcat FILE | jq` reads it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use conductor_gateway::Clock;
use conductor_store::{
    Direction, MessageId, RetentionCandidate, RetentionDeleted, RetentionRule, Status, Store,
    StoreError,
};
use jiff::Timestamp;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::backup::stamp;
use crate::gz_file::{self, FinishError};
use crate::schedule::{DailyAt, record_outcome, run_daily};

/// Rows deleted per transaction.
pub const BATCH: usize = 200;

/// Rows read per query while exporting.
const EXPORT_CHUNK: usize = 200;

/// One rule as configured: `direction` messages in `statuses` older than `older_than`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    /// The direction.
    pub direction: Direction,
    /// The statuses (never `unread`, `queued`, `sending`).
    pub statuses: Vec<Status>,
    /// How old a row must be, counted back from the run's time.
    pub older_than: Duration,
}

impl RuleSpec {
    /// The store's rule for a run at `now`; refuses protected or impossible statuses.
    pub fn at(&self, now: Timestamp) -> Result<RetentionRule, StoreError> {
        let cutoff = jiff::SignedDuration::try_from(self.older_than)
            .ok()
            .and_then(|age| now.checked_sub(age).ok())
            .unwrap_or(Timestamp::MIN);
        RetentionRule::new(self.direction, self.statuses.clone(), cutoff)
    }
}

/// Where exports go and what is removed.
#[derive(Clone, Debug)]
pub struct RetentionSettings {
    /// The export folder; created when missing.
    pub export_dir: PathBuf,
    /// The rules; empty means nothing is ever removed.
    pub rules: Vec<RuleSpec>,
}

/// How many rows of one direction and status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    /// The direction.
    pub direction: Direction,
    /// The status.
    pub status: Status,
    /// How many.
    pub count: u64,
}

/// What a run would remove (`prune --dry-run`).
#[derive(Clone, Debug, Serialize)]
pub struct RetentionPlan {
    /// The rows, by id.
    pub candidates: Vec<RetentionCandidate>,
    /// Their counts by direction and status.
    pub counts: Vec<Count>,
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RetentionOutcome {
    /// The export file; None when there was nothing to remove.
    pub export: Option<PathBuf>,
    /// Messages written to the export.
    pub exported: u64,
    /// Messages deleted, by direction and status.
    pub counts: Vec<Count>,
    /// Messages deleted.
    pub deleted: u64,
    /// Messages kept because someone changed them after the export (in the export too).
    pub changed: u64,
    /// Message parts deleted with them.
    pub parts: u64,
    /// Delivery reports deleted with them.
    pub reports: u64,
    /// History events deleted with them.
    pub events: u64,
}

/// A retention run failed. Rows are deleted only after a complete export, so a failure before
/// that leaves the database as it was; one during deletion leaves the rest for the next run.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the export failed.
    #[error(
        "cannot {doing} {path}: {source}; check that the export folder (retention.export_dir) \
         is writable and has free space; nothing was deleted"
    )]
    Export {
        /// What was being done.
        doing: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The export could not be encoded (a bug: please report it).
    #[error("cannot encode message {id} for the export: {detail} (this is a bug in conductor)")]
    Encode {
        /// The message.
        id: MessageId,
        /// What serde said.
        detail: String,
    },
    /// A blocking task panicked or was cancelled (a bug: please report it).
    #[error("the export task failed: {0} (this is a bug in conductor)")]
    Internal(String),
}

fn export_error(doing: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RetentionError {
    let path = path.to_path_buf();
    move |source| RetentionError::Export {
        doing,
        path,
        source,
    }
}

/// Counts by direction and status, in lifecycle order.
fn count(candidates: &[RetentionCandidate]) -> Vec<Count> {
    let mut counts: BTreeMap<(u8, usize), Count> = BTreeMap::new();
    for candidate in candidates {
        let key = (
            u8::from(candidate.direction == Direction::Outbound),
            Status::ALL
                .iter()
                .position(|s| *s == candidate.status)
                .unwrap_or(usize::MAX),
        );
        counts
            .entry(key)
            .or_insert(Count {
                direction: candidate.direction,
                status: candidate.status,
                count: 0,
            })
            .count += 1;
    }
    counts.into_values().collect()
}

/// What a run at `now` would remove, without changing anything.
pub async fn plan(
    store: &Store,
    rules: &[RuleSpec],
    now: Timestamp,
) -> Result<RetentionPlan, RetentionError> {
    let rules = rules
        .iter()
        .map(|rule| rule.at(now))
        .collect::<Result<Vec<_>, _>>()?;
    let candidates = if rules.is_empty() {
        Vec::new()
    } else {
        store.retention_candidates(rules).await?
    };
    let counts = count(&candidates);
    Ok(RetentionPlan { candidates, counts })
}

/// Runs retention at `now`: export, fsync, then delete in batches. Records nothing: see
/// [`apply_and_record`].
pub async fn apply(
    store: &Store,
    settings: &RetentionSettings,
    now: Timestamp,
) -> Result<RetentionOutcome, RetentionError> {
    let plan = plan(store, &settings.rules, now).await?;
    if plan.candidates.is_empty() {
        return Ok(RetentionOutcome::default());
    }
    let (export, exported) = export(store, &settings.export_dir, &plan.candidates, now).await?;
    let mut done = RetentionDeleted::default();
    for batch in plan.candidates.chunks(BATCH) {
        done.absorb(store.delete_retained(batch.to_vec()).await?);
    }
    let deleted_ids: std::collections::HashSet<MessageId> = done.deleted.iter().copied().collect();
    let deleted: Vec<RetentionCandidate> = plan
        .candidates
        .into_iter()
        .filter(|c| deleted_ids.contains(&c.id))
        .collect();
    Ok(RetentionOutcome {
        export: Some(export),
        exported,
        counts: count(&deleted),
        deleted: deleted.len() as u64,
        changed: done.changed,
        parts: done.parts,
        reports: done.reports,
        events: done.events,
    })
}

/// Writes the candidates, whole, to a new export file in `dir`; returns it and how many rows
/// it holds. The file is complete and on disk when this returns.
async fn export(
    store: &Store,
    dir: &Path,
    candidates: &[RetentionCandidate],
    now: Timestamp,
) -> Result<(PathBuf, u64), RetentionError> {
    fs::create_dir_all(dir).map_err(export_error("create the export folder", dir))?;
    let (published, work) = free_export_names(dir, now);
    let mut writer = Some(gz_file::create(&work).map_err(export_error("create", &work))?);
    let mut exported = 0u64;
    let fill = async {
        for chunk in candidates.chunks(EXPORT_CHUNK) {
            let details = store
                .message_details(chunk.iter().map(|c| c.id).collect())
                .await?;
            let mut lines = Vec::new();
            for detail in &details {
                serde_json::to_writer(&mut lines, detail).map_err(|e| RetentionError::Encode {
                    id: detail.message.id,
                    detail: e.to_string(),
                })?;
                lines.push(b'\n');
            }
            exported += details.len() as u64;
            let mut w = writer
                .take()
                .ok_or_else(|| RetentionError::Internal("no writer".into()))?;
            let work_path = work.clone();
            writer = Some(
                tokio::task::spawn_blocking(move || {
                    w.write_all(&lines)
                        .map(|()| w)
                        .map_err(export_error("write", &work_path))
                })
                .await
                .map_err(|e| RetentionError::Internal(e.to_string()))??,
            );
        }
        let w = writer
            .take()
            .ok_or_else(|| RetentionError::Internal("no writer".into()))?;
        let work_path = work.clone();
        tokio::task::spawn_blocking(move || {
            gz_file::finish(w).map(drop).map_err(|error| match error {
                FinishError::Finish(source) => export_error("finish", &work_path)(source),
                FinishError::Sync(source) => export_error("flush to disk", &work_path)(source),
            })
        })
        .await
        .map_err(|e| RetentionError::Internal(e.to_string()))?
    };
    gz_file::publish(
        dir,
        &work,
        &published,
        fill,
        export_error("publish the export as", &published),
    )
    .await?;
    Ok((published, exported))
}

/// The export's published name and its work file; a counter is added when an export of the
/// same second exists.
fn free_export_names(dir: &Path, now: Timestamp) -> (PathBuf, PathBuf) {
    let stamp = stamp(now);
    let mut counter = 0u32;
    loop {
        let base = if counter == 0 {
            format!("conductor-export-{stamp}")
        } else {
            format!("conductor-export-{stamp}-{counter}")
        };
        let published = dir.join(format!("{base}.jsonl.gz"));
        if !published.exists() {
            return (published, dir.join(format!(".{base}.jsonl.gz.partial")));
        }
        counter += 1;
    }
}

/// [`apply`], then records `retention_completed` (export file and counts) or
/// `retention_failed` (reason) as an event, and logs it.
pub async fn apply_and_record(
    store: &Store,
    settings: &RetentionSettings,
    now: Timestamp,
    trigger: &str,
) -> Result<RetentionOutcome, RetentionError> {
    let result = apply(store, settings, now).await;
    let (kind, detail) = match &result {
        Ok(outcome) => {
            if outcome.deleted > 0 || outcome.changed > 0 {
                tracing::info!(
                    deleted = outcome.deleted,
                    changed = outcome.changed,
                    export = ?outcome.export,
                    "retention: old messages exported and removed"
                );
            }
            let mut detail = serde_json::to_value(outcome).unwrap_or_default();
            if let Some(object) = detail.as_object_mut() {
                object.insert("trigger".into(), trigger.into());
            }
            ("retention_completed", detail)
        }
        Err(error) => {
            tracing::error!("retention failed: {error}");
            (
                "retention_failed",
                serde_json::json!({"reason": error.to_string(), "trigger": trigger}),
            )
        }
    };
    record_outcome(store, now, kind, detail).await;
    result
}

/// Spawns daily retention at `at` until `shutdown` (nothing is spawned for no rules: the
/// caller checks).
pub fn spawn_daily(
    store: Store,
    clock: Arc<dyn Clock>,
    settings: RetentionSettings,
    at: DailyAt,
    tick: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tracing::info!(
        rules = settings.rules.len(),
        export_dir = %settings.export_dir.display(),
        "daily retention at {at} (local time)"
    );
    tokio::spawn(run_daily(clock, at, tick, shutdown, move |now| {
        let (store, settings) = (store.clone(), settings.clone());
        async move {
            // Failures are recorded as `retention_failed` and logged; the schedule goes on.
            let _ = apply_and_record(&store, &settings, now, "schedule").await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_counts_back_from_the_run_and_refuses_protected_statuses() {
        let now: Timestamp = "2026-11-26T04:00:00Z".parse().expect("time");
        let rule = RuleSpec {
            direction: Direction::Outbound,
            statuses: vec![Status::Delivered],
            older_than: Duration::from_secs(90 * 86_400),
        };
        let cutoff: Timestamp = "2026-08-28T04:00:00Z".parse().expect("time");
        assert_eq!(rule.at(now).expect("valid").cutoff(), cutoff);
        let queued = RuleSpec {
            statuses: vec![Status::Queued],
            ..rule
        };
        assert!(queued.at(now).is_err());
    }
}
