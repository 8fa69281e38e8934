//! The SQL behind [`crate::alerts`]: alert episodes (migration 0004) and the evaluator's
//! figures, each on an index (`alerts_active`, `messages_claim`, `messages_updated`,
//! `events_kind`), so evaluating every few seconds costs little on a large database.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::json;

use super::{Db, event};
use crate::alerts::{Alert, NewAlert, QueueBacklog, SendOutcomes};
use crate::model::Event;
use crate::types::{ModemId, SqlTime, sql_time};

const ALERT_COLUMNS: &str = "id, key, kind, modem_id, message, detail, raised_at, cleared_at";

fn alert_from_row(row: &Row<'_>) -> rusqlite::Result<Alert> {
    let detail: Option<String> = row.get(5)?;
    Ok(Alert {
        id: row.get(0)?,
        key: row.get(1)?,
        kind: row.get(2)?,
        modem_id: row.get::<_, Option<String>>(3)?.map(ModemId),
        message: row.get(4)?,
        detail: detail
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))),
        raised_at: SqlTime(row.get(6)?),
        cleared_at: row.get::<_, Option<String>>(7)?.map(SqlTime),
    })
}

fn active_with_key(c: &Connection, key: &str) -> Db<Option<Alert>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE key = ?1 AND cleared_at IS NULL"
    ))?
    .query_row([key], alert_from_row)
    .optional()?)
}

/// Records a new episode and its event, unless one with the key is active.
pub(crate) fn raise(c: &Connection, alert: &NewAlert) -> Db<Option<Alert>> {
    if active_with_key(c, &alert.key)?.is_some() {
        return Ok(None);
    }
    let at = sql_time(alert.at);
    c.prepare_cached(
        "INSERT INTO alerts (key, kind, modem_id, message, detail, raised_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        &alert.key,
        &alert.kind,
        alert.modem_id.as_ref().map(ModemId::as_str),
        &alert.message,
        alert.detail.as_ref().map(ToString::to_string),
        &at,
    ))?;
    let id = c.last_insert_rowid();
    event(
        c,
        &at,
        "alert_raised",
        None,
        alert.modem_id.as_ref().map(ModemId::as_str),
        Some(json!({
            "alert_id": id,
            "key": alert.key,
            "kind": alert.kind,
            "message": alert.message,
            "figures": alert.detail,
        })),
    )?;
    active_with_key(c, &alert.key)
}

/// Ends the active episode with `key` and records its event.
pub(crate) fn clear(c: &Connection, key: &str, why: &str, at: Timestamp) -> Db<Option<Alert>> {
    let Some(mut alert) = active_with_key(c, key)? else {
        return Ok(None);
    };
    let at = sql_time(at);
    c.prepare_cached("UPDATE alerts SET cleared_at = ?2 WHERE id = ?1")?
        .execute((alert.id, &at))?;
    event(
        c,
        &at,
        "alert_cleared",
        None,
        alert.modem_id.as_ref().map(ModemId::as_str),
        Some(json!({
            "alert_id": alert.id,
            "key": alert.key,
            "kind": alert.kind,
            "message": alert.message,
            "raised_at": alert.raised_at,
            "why": why,
        })),
    )?;
    alert.cleared_at = Some(SqlTime(at));
    Ok(Some(alert))
}

/// Active alerts, oldest first.
pub(crate) fn active(c: &Connection) -> Db<Vec<Alert>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE cleared_at IS NULL ORDER BY id"
    ))?
    .query_map([], alert_from_row)?
    .collect::<Result<_, _>>()?)
}

/// Due queued rows and the newest outcome since `since`.
pub(crate) fn backlog(c: &Connection, now: Timestamp, since: Timestamp) -> Db<QueueBacklog> {
    let now = sql_time(now);
    let (due, oldest): (i64, Option<String>) = c
        .prepare_cached(
            "SELECT count(*),
                    min(max(created_at, coalesce(send_at, ''), coalesce(next_attempt_at, '')))
             FROM messages
             WHERE status = 'queued' AND direction = 'outbound'
               AND (send_at IS NULL OR send_at <= ?1)
               AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)",
        )?
        .query_row([&now], |row| Ok((row.get(0)?, row.get(1)?)))?;
    // A row's `updated_at` is at or after its outcome, so the index on it bounds the search.
    let progress: Option<String> = c
        .prepare_cached(
            "SELECT max(CASE WHEN status IN ('sent', 'delivered') THEN sent_at ELSE updated_at END)
             FROM messages
             WHERE updated_at >= ?1 AND direction = 'outbound'
               AND ((status IN ('sent', 'delivered') AND sent_at >= ?1)
                    OR status IN ('failed', 'unknown', 'duplicate'))",
        )?
        .query_row([sql_time(since)], |row| row.get(0))?;
    Ok(QueueBacklog {
        due: u64::try_from(due).unwrap_or(0),
        oldest_due_since: oldest.map(SqlTime),
        last_progress: progress.map(SqlTime),
    })
}

/// Outcomes since `since`.
pub(crate) fn outcomes(c: &Connection, since: Timestamp) -> Db<SendOutcomes> {
    let (total, failed): (i64, i64) = c
        .prepare_cached(
            "SELECT count(*), count(*) FILTER (WHERE status IN ('failed', 'unknown'))
             FROM messages
             WHERE updated_at >= ?1 AND direction = 'outbound'
               AND ((status IN ('sent', 'delivered') AND sent_at >= ?1)
                    OR status IN ('failed', 'unknown'))",
        )?
        .query_row([sql_time(since)], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(SendOutcomes {
        total: u64::try_from(total).unwrap_or(0),
        failed: u64::try_from(failed).unwrap_or(0),
    })
}

/// The newest event of one of `kinds`.
pub(crate) fn latest_event(c: &Connection, kinds: &[String]) -> Db<Option<Event>> {
    let mut newest: Option<i64> = None;
    let mut statement = c.prepare_cached("SELECT max(id) FROM events WHERE kind = ?1")?;
    for kind in kinds {
        // One probe of the `events_kind` index per kind.
        let id: Option<i64> = statement.query_row([kind], |row| row.get(0))?;
        newest = newest.max(id);
    }
    let Some(id) = newest else {
        return Ok(None);
    };
    Ok(super::query::events_since(c, id - 1, 1)?.into_iter().next())
}

/// `PRAGMA journal_mode`.
pub(crate) fn journal_mode(c: &Connection) -> Db<String> {
    Ok(c.pragma_query_value(None, "journal_mode", |row| row.get(0))?)
}
