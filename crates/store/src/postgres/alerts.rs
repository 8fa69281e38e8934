//! The SQL behind [`crate::alerts`] on PostgreSQL: alert episodes and the evaluator's figures.
//! A port of `crate::sqlite::alerts`.
//!
//! One active episode per key, across nodes: the partial unique index `alerts_active`
//! (`UNIQUE (key) WHERE cleared_at IS NULL`, migration 0005) is the rule, and the insert is
//! `ON CONFLICT DO NOTHING` on it, so two nodes raising the same alert at once make one episode
//! and one `alert_raised` event; the second gets None, as when the alert was already active.

use std::time::SystemTime;

use jiff::Timestamp;
use serde_json::json;

use super::{Db, Tx, at, event, sql_time};
use crate::alerts::{Alert, NewAlert, QueueBacklog, SendOutcomes};
use crate::model::Event;
use crate::types::ModemId;

const ALERT_COLUMNS: &str = "id, key, kind, modem_id, message, detail, raised_at, cleared_at";

fn alert(row: &tokio_postgres::Row) -> Alert {
    let detail: Option<String> = row.get(5);
    Alert {
        id: row.get(0),
        key: row.get(1),
        kind: row.get(2),
        modem_id: row.get::<_, Option<String>>(3).map(ModemId),
        message: row.get(4),
        detail: detail
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))),
        raised_at: sql_time(row.get(6)),
        cleared_at: row.get::<_, Option<SystemTime>>(7).map(sql_time),
    }
}

/// Records a new episode and its event, unless one with the key is active.
pub(crate) async fn raise(tx: &Tx<'_>, new: &NewAlert) -> Db<Option<Alert>> {
    let now = at(new.at);
    let row = tx
        .query_opt(
            &format!(
                "INSERT INTO alerts (key, kind, modem_id, message, detail, raised_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (key) WHERE cleared_at IS NULL DO NOTHING
                 RETURNING {ALERT_COLUMNS}"
            ),
            &[
                &new.key,
                &new.kind,
                &new.modem_id.as_ref().map(ModemId::as_str),
                &new.message,
                &new.detail.as_ref().map(ToString::to_string),
                &now,
            ],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let raised = alert(&row);
    event(
        tx,
        now,
        "alert_raised",
        None,
        new.modem_id.as_ref().map(ModemId::as_str),
        Some(json!({
            "alert_id": raised.id,
            "key": new.key,
            "kind": new.kind,
            "message": new.message,
            "figures": new.detail,
        })),
    )
    .await?;
    Ok(Some(raised))
}

/// Ends the active episode with `key` and records its event.
pub(crate) async fn clear(tx: &Tx<'_>, key: &str, why: &str, when: Timestamp) -> Db<Option<Alert>> {
    let now = at(when);
    let row = tx
        .query_opt(
            &format!(
                "UPDATE alerts SET cleared_at = $2 WHERE key = $1 AND cleared_at IS NULL
                 RETURNING {ALERT_COLUMNS}"
            ),
            &[&key, &now],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let cleared = alert(&row);
    event(
        tx,
        now,
        "alert_cleared",
        None,
        cleared.modem_id.as_ref().map(ModemId::as_str),
        Some(json!({
            "alert_id": cleared.id,
            "key": cleared.key,
            "kind": cleared.kind,
            "message": cleared.message,
            "raised_at": cleared.raised_at,
            "why": why,
        })),
    )
    .await?;
    Ok(Some(cleared))
}

/// Active alerts, oldest first.
pub(crate) async fn active(tx: &Tx<'_>) -> Db<Vec<Alert>> {
    Ok(tx
        .query(
            &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE cleared_at IS NULL ORDER BY id"),
            &[],
        )
        .await?
        .iter()
        .map(alert)
        .collect())
}

/// Due queued rows and the newest outcome since `since`.
pub(crate) async fn backlog(tx: &Tx<'_>, now: Timestamp, since: Timestamp) -> Db<QueueBacklog> {
    let row = tx
        .query_one(
            "SELECT count(*),
                    min(greatest(created_at, send_at, next_attempt_at))
             FROM messages
             WHERE status = 'queued' AND direction = 'outbound'
               AND (send_at IS NULL OR send_at <= $1)
               AND (next_attempt_at IS NULL OR next_attempt_at <= $1)",
            &[&at(now)],
        )
        .await?;
    let due: i64 = row.get(0);
    let oldest: Option<SystemTime> = row.get(1);
    // A row's `updated_at` is at or after its outcome, so the index on it bounds the search.
    let progress: Option<SystemTime> = tx
        .query_one(
            "SELECT max(CASE WHEN status IN ('sent', 'delivered') THEN sent_at ELSE updated_at END)
             FROM messages
             WHERE updated_at >= $1 AND direction = 'outbound'
               AND ((status IN ('sent', 'delivered') AND sent_at >= $1)
                    OR status IN ('failed', 'unknown', 'duplicate'))",
            &[&at(since)],
        )
        .await?
        .get(0);
    Ok(QueueBacklog {
        due: u64::try_from(due).unwrap_or(0),
        oldest_due_since: oldest.map(sql_time),
        last_progress: progress.map(sql_time),
    })
}

/// Outcomes since `since`.
pub(crate) async fn outcomes(tx: &Tx<'_>, since: Timestamp) -> Db<SendOutcomes> {
    let row = tx
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE status IN ('failed', 'unknown'))
             FROM messages
             WHERE updated_at >= $1 AND direction = 'outbound'
               AND ((status IN ('sent', 'delivered') AND sent_at >= $1)
                    OR status IN ('failed', 'unknown'))",
            &[&at(since)],
        )
        .await?;
    Ok(SendOutcomes {
        total: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        failed: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
    })
}

/// The newest event of one of `kinds`.
pub(crate) async fn latest_event(tx: &Tx<'_>, kinds: &[String]) -> Db<Option<Event>> {
    let newest: Option<i64> = tx
        .query_one("SELECT max(id) FROM events WHERE kind = ANY($1)", &[&kinds])
        .await?
        .get(0);
    let Some(id) = newest else {
        return Ok(None);
    };
    Ok(super::query::events_since(tx, id - 1, 1)
        .await?
        .into_iter()
        .next())
}
