//! Operational alerts (migration 0004) and the few figures the alert evaluator and
//! `conductor doctor` read: the queue's backlog, recent send outcomes, the newest event of a
//! kind, the journal mode.
//!
//! Why in the database: an alert is an *episode* (raised once, cleared once) that must be
//! visible to other processes (`conductor health`, `doctor`, the API) and survive a restart
//! of the daemon without being raised a second time. A partial unique index allows one active
//! row per key, and raising or clearing appends its event (`alert_raised`, `alert_cleared`)
//! in the same transaction, so the webhook outbox and the alerts table never disagree.
//! The policy (which conditions, thresholds, when) is `conductor-ops`'s; the store records.

use jiff::Timestamp;
use serde::Serialize;

use crate::error::StoreError;
use crate::model::Event;
use crate::postgres;
use crate::sqlite;
use crate::store::Store;
use crate::types::{ModemId, SqlTime};

/// An alert to raise.
#[derive(Clone, Debug)]
pub struct NewAlert {
    /// What it is about, unique among active alerts (`modem_down:sim1`, `disk_space`).
    pub key: String,
    /// The condition (`modem_down`, `sim_storage`, `queue_stuck`, `failure_rate`,
    /// `disk_space`, `backup_failed`).
    pub kind: String,
    /// The modem concerned.
    pub modem_id: Option<ModemId>,
    /// What is wrong and what to do, for people.
    pub message: String,
    /// The figures behind it.
    pub detail: Option<serde_json::Value>,
    /// When (the caller's clock).
    pub at: Timestamp,
}

/// One alert episode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// Row id.
    pub id: i64,
    /// See [`NewAlert::key`].
    pub key: String,
    /// See [`NewAlert::kind`].
    pub kind: String,
    /// The modem concerned.
    pub modem_id: Option<ModemId>,
    /// What is wrong and what to do.
    pub message: String,
    /// The figures behind it.
    pub detail: Option<serde_json::Value>,
    /// When it was raised.
    pub raised_at: SqlTime,
    /// When it was cleared; None while active.
    pub cleared_at: Option<SqlTime>,
}

/// Queued outbound messages that are due (their `send_at` and retry time have passed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueBacklog {
    /// How many.
    pub due: u64,
    /// Since when the longest-waiting one has been due: the latest of its `created_at`,
    /// `send_at` and `next_attempt_at`.
    pub oldest_due_since: Option<SqlTime>,
    /// The newest send outcome at or after the `since` asked for: a `sent_at` of a row now
    /// `sent` or `delivered`, or the `updated_at` of a row that ended `failed`, `unknown` or
    /// `duplicate`. None when the queue made no progress since then.
    pub last_progress: Option<SqlTime>,
}

/// Outbound messages that reached an outcome since a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SendOutcomes {
    /// Sent or delivered (by `sent_at`) or failed or unknown (by `updated_at`) since then.
    pub total: u64,
    /// Of which failed or unknown.
    pub failed: u64,
}

impl Store {
    /// Raises an alert: records the episode and appends an `alert_raised` event, in one
    /// transaction. Returns None (and changes nothing) when an alert with the same key is
    /// already active, whoever raised it.
    pub async fn raise_alert(&self, alert: NewAlert) -> Result<Option<Alert>, StoreError> {
        const DOING: &str = "raising an alert";
        if let Some(pg) = self.postgres() {
            return postgres::in_tx!(pg, DOING, |tx| postgres::alerts::raise(&tx, &alert));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::alerts::raise(c, &alert))
        })
        .await
    }

    /// Clears the active alert with `key`: sets `cleared_at` and appends an `alert_cleared`
    /// event (with `why` in its detail), in one transaction. None when none was active.
    pub async fn clear_alert(
        &self,
        key: String,
        why: String,
        at: Timestamp,
    ) -> Result<Option<Alert>, StoreError> {
        const DOING: &str = "clearing an alert";
        if let Some(pg) = self.postgres() {
            return postgres::in_tx!(pg, DOING, |tx| postgres::alerts::clear(&tx, &key, &why, at));
        }
        self.run(DOING, move |db| {
            db.write(DOING, |c| sqlite::alerts::clear(c, &key, &why, at))
        })
        .await
    }

    /// The active alerts, oldest first.
    pub async fn active_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        const DOING: &str = "reading active alerts";
        if let Some(pg) = self.postgres() {
            return postgres::in_tx!(pg, DOING, |tx| postgres::alerts::active(&tx));
        }
        self.run(DOING, move |db| db.read(DOING, sqlite::alerts::active))
            .await
    }

    /// The queue's backlog at `now`, with the newest send outcome at or after `since`.
    pub async fn queue_backlog(
        &self,
        now: Timestamp,
        since: Timestamp,
    ) -> Result<QueueBacklog, StoreError> {
        const DOING: &str = "measuring the queue";
        if let Some(pg) = self.postgres() {
            return postgres::in_tx!(pg, DOING, |tx| postgres::alerts::backlog(&tx, now, since));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::alerts::backlog(c, now, since))
        })
        .await
    }

    /// Outbound outcomes since `since` (the failure-rate alert).
    pub async fn send_outcomes(&self, since: Timestamp) -> Result<SendOutcomes, StoreError> {
        const DOING: &str = "counting send outcomes";
        if let Some(pg) = self.postgres() {
            return postgres::in_tx!(pg, DOING, |tx| postgres::alerts::outcomes(&tx, since));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::alerts::outcomes(c, since))
        })
        .await
    }

    /// The newest event whose kind is one of `kinds` (the newest backup, for instance).
    pub async fn latest_event(&self, kinds: Vec<String>) -> Result<Option<Event>, StoreError> {
        const DOING: &str = "reading the newest event";
        if let Some(pg) = self.postgres() {
            return postgres::in_tx!(pg, DOING, |tx| postgres::alerts::latest_event(&tx, &kinds));
        }
        self.run(DOING, move |db| {
            db.read(DOING, |c| sqlite::alerts::latest_event(c, &kinds))
        })
        .await
    }

    /// The database's journal mode (`wal` when all is well), for `doctor`. PostgreSQL always
    /// writes ahead (and its MVCC never locks readers or external writers out), so it answers
    /// `wal` without asking the server.
    pub async fn journal_mode(&self) -> Result<String, StoreError> {
        const DOING: &str = "reading the journal mode";
        if self.postgres().is_some() {
            return Ok("wal".to_owned());
        }
        self.run(DOING, move |db| {
            db.read(DOING, sqlite::alerts::journal_mode)
        })
        .await
    }
}
