//! Idempotent queueing and the webhook outbox (migration 0002), for `conductor-http`.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};

use super::{Db, DbError};
use crate::api::{
    AttemptResult, DeliveryCount, DeliveryFilter, DeliveryState, IdempotencyKey, NewDelivery,
    QueueOutcome, WebhookDelivery,
};
use crate::error::StoreError;
use crate::model::NewOutbound;
use crate::types::{MessageId, SqlTime, sql_time};

/// Queues `messages` in one transaction (all or none), recording `key` with their ids.
pub(crate) fn queue_batch(
    c: &Connection,
    messages: &[NewOutbound],
    key: Option<&IdempotencyKey>,
    now: Timestamp,
) -> Db<QueueOutcome> {
    if let Some(key) = key {
        // An expired key is as good as absent (its row is replaced below).
        let cutoff = key.expired_before.map(sql_time);
        let found: Option<(String, String)> = c
            .prepare_cached(
                "SELECT request_hash, message_ids FROM api_idempotency
                 WHERE key = ?1 AND (?2 IS NULL OR created_at >= ?2)",
            )?
            .query_row((&key.key, &cutoff), |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((hash, ids)) = found {
            if hash != key.request_hash {
                return Ok(QueueOutcome::KeyConflict);
            }
            let ids: Vec<i64> = serde_json::from_str(&ids).map_err(|e| {
                DbError::Store(StoreError::BadRow {
                    table: "api_idempotency",
                    id: 0,
                    column: "message_ids",
                    detail: e.to_string(),
                })
            })?;
            return Ok(QueueOutcome::Replayed(
                ids.into_iter().map(MessageId).collect(),
            ));
        }
    }
    let mut ids = Vec::with_capacity(messages.len());
    for message in messages {
        ids.push(super::outbound::queue(c, message, now)?);
    }
    if let Some(key) = key {
        let list: Vec<i64> = ids.iter().map(|id| id.0).collect();
        c.prepare_cached(
            "INSERT OR REPLACE INTO api_idempotency (key, request_hash, message_ids, created_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute((
            &key.key,
            &key.request_hash,
            serde_json::Value::from(list).to_string(),
            sql_time(now),
        ))?;
    }
    Ok(QueueOutcome::Queued(ids))
}

/// Deletes the idempotency keys recorded before `older_than`; returns how many.
pub(crate) fn prune_idempotency(c: &Connection, older_than: Timestamp) -> Db<usize> {
    Ok(
        c.prepare_cached("DELETE FROM api_idempotency WHERE created_at < ?1")?
            .execute([sql_time(older_than)])?,
    )
}

/// The newest event id (0 when there is none).
pub(crate) fn last_event_id(c: &Connection) -> Db<i64> {
    Ok(c.prepare_cached("SELECT coalesce(max(id), 0) FROM events")?
        .query_row([], |row| row.get(0))?)
}

/// How far `endpoint` has read the events table, if it ever started.
pub(crate) fn webhook_cursor(c: &Connection, endpoint: &str) -> Db<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT last_event_id FROM webhook_cursors WHERE endpoint = ?1")?
            .query_row([endpoint], |row| row.get(0))
            .optional()?,
    )
}

/// Enqueues `deliveries` for `endpoint` (ignoring any already there) and moves its cursor
/// forward to `cursor`; returns how many rows were new.
pub(crate) fn enqueue(
    c: &Connection,
    endpoint: &str,
    cursor: i64,
    deliveries: &[NewDelivery],
    now: Timestamp,
) -> Db<usize> {
    let now = sql_time(now);
    let mut insert = c.prepare_cached(
        "INSERT OR IGNORE INTO webhook_deliveries
             (endpoint, event_id, event, payload, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?;
    let mut new = 0;
    for d in deliveries {
        new += insert.execute((endpoint, d.event_id, &d.event, &d.payload, &now))?;
    }
    c.prepare_cached(
        "INSERT INTO webhook_cursors (endpoint, last_event_id) VALUES (?1, ?2)
         ON CONFLICT (endpoint) DO UPDATE SET last_event_id = max(last_event_id, excluded.last_event_id)",
    )?
    .execute((endpoint, cursor))?;
    Ok(new)
}

const DELIVERY_COLUMNS: &str = "id, endpoint, event_id, event, payload, state, attempts,
    next_attempt_at, last_attempt_at, last_status, last_error, created_at, delivered_at";

fn delivery_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(WebhookDelivery, String)> {
    Ok((
        WebhookDelivery {
            id: row.get(0)?,
            endpoint: row.get(1)?,
            event_id: row.get(2)?,
            event: row.get(3)?,
            payload: row.get(4)?,
            state: DeliveryState::Pending,
            attempts: row.get(6)?,
            next_attempt_at: SqlTime(row.get(7)?),
            last_attempt_at: row.get::<_, Option<String>>(8)?.map(SqlTime),
            last_status: row.get(9)?,
            last_error: row.get(10)?,
            created_at: SqlTime(row.get(11)?),
            delivered_at: row.get::<_, Option<String>>(12)?.map(SqlTime),
        },
        row.get(5)?,
    ))
}

fn finish(rows: Vec<(WebhookDelivery, String)>) -> Db<Vec<WebhookDelivery>> {
    rows.into_iter()
        .map(|(mut d, state)| {
            d.state = DeliveryState::parse(&state).ok_or_else(|| {
                DbError::Store(StoreError::BadRow {
                    table: "webhook_deliveries",
                    id: d.id,
                    column: "state",
                    detail: state.clone(),
                })
            })?;
            Ok(d)
        })
        .collect()
}

/// `endpoint`'s pending deliveries due at `now`, in event order.
pub(crate) fn due(
    c: &Connection,
    endpoint: &str,
    now: Timestamp,
    limit: usize,
) -> Db<Vec<WebhookDelivery>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE state = 'pending' AND endpoint = ?1 AND next_attempt_at <= ?2
             ORDER BY event_id, id LIMIT ?3"
        ))?
        .query_map(
            (
                endpoint,
                sql_time(now),
                i64::try_from(limit).unwrap_or(i64::MAX),
            ),
            delivery_from_row,
        )?
        .collect::<Result<_, _>>()?;
    finish(rows)
}

/// Records one attempt's result.
pub(crate) fn attempted(c: &Connection, id: i64, result: &AttemptResult, now: Timestamp) -> Db<()> {
    let now = sql_time(now);
    match result {
        AttemptResult::Delivered { status } => c
            .prepare_cached(
                "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,
                     last_attempt_at = ?2, last_status = ?3, last_error = NULL, delivered_at = ?2
                 WHERE id = ?1",
            )?
            .execute((id, &now, status))?,
        AttemptResult::Retry {
            status,
            error,
            next_attempt_at,
        } => c
            .prepare_cached(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?2,
                     last_status = ?3, last_error = ?4, next_attempt_at = ?5
                 WHERE id = ?1",
            )?
            .execute((id, &now, status, error, sql_time(*next_attempt_at)))?,
        AttemptResult::GiveUp { status, error } => c
            .prepare_cached(
                "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1,
                     last_attempt_at = ?2, last_status = ?3, last_error = ?4
                 WHERE id = ?1",
            )?
            .execute((id, &now, status, error))?,
    };
    Ok(())
}

/// Outbox rows matching `filter`, newest first.
pub(crate) fn deliveries(c: &Connection, filter: &DeliveryFilter) -> Db<Vec<WebhookDelivery>> {
    use rusqlite::types::Value;
    let mut clauses = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if let Some(endpoint) = &filter.endpoint {
        clauses.push("endpoint = ?");
        params.push(endpoint.clone().into());
    }
    if let Some(state) = filter.state {
        clauses.push("state = ?");
        params.push(state.as_str().to_owned().into());
    }
    if let Some(before) = filter.before_id {
        clauses.push("id < ?");
        params.push(before.into());
    }
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let rows = c
        .prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries {where_clause}
             ORDER BY id DESC LIMIT ?"
        ))?
        .query_map(rusqlite::params_from_iter(params), delivery_from_row)?
        .collect::<Result<_, _>>()?;
    finish(rows)
}

/// Rows and attempts per endpoint and state.
pub(crate) fn delivery_counts(c: &Connection) -> Db<Vec<DeliveryCount>> {
    let rows: Vec<(String, String, i64, i64)> = c
        .prepare_cached(
            "SELECT endpoint, state, count(*), coalesce(sum(attempts), 0)
             FROM webhook_deliveries GROUP BY endpoint, state ORDER BY endpoint, state",
        )?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(endpoint, state, n, attempts)| {
            Some(DeliveryCount {
                endpoint,
                state: DeliveryState::parse(&state)?,
                deliveries: u64::try_from(n).unwrap_or(0),
                attempts: u64::try_from(attempts).unwrap_or(0),
            })
        })
        .collect())
}

/// Messages whose `timestamp` is at or after `since`, counted per hour (or day), direction
/// and status. Rows whose time SQLite cannot read are left out.
pub(crate) fn volume(
    c: &Connection,
    since: Timestamp,
    by_day: bool,
) -> Db<Vec<crate::api::VolumeBucket>> {
    let format = if by_day {
        "%Y-%m-%d"
    } else {
        "%Y-%m-%dT%H:00:00Z"
    };
    let rows: Vec<(String, String, String, i64)> = c
        .prepare_cached(
            "SELECT strftime(?1, timestamp) AS bucket, direction, status, count(*)
             FROM messages WHERE timestamp >= ?2 AND bucket IS NOT NULL
             GROUP BY bucket, direction, status ORDER BY bucket",
        )?
        .query_map((format, sql_time(since)), |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(bucket, direction, status, count)| {
            Some(crate::api::VolumeBucket {
                bucket,
                direction: direction.parse().ok()?,
                status: status.parse().ok()?,
                count: u64::try_from(count).unwrap_or(0),
            })
        })
        .collect())
}

/// A histogram of send or inbound latency over every row that has both times.
pub(crate) fn latency_histogram(
    c: &Connection,
    which: crate::api::Latency,
    bounds: &[f64],
) -> Db<crate::api::LatencyHistogram> {
    let latency = match which {
        crate::api::Latency::Send => {
            "SELECT max(0.0, (julianday(sent_at)
                    - julianday(max(created_at, coalesce(send_at, created_at)))) * 86400.0) AS lat
             FROM messages WHERE direction = 'outbound' AND julianday(sent_at) IS NOT NULL
               AND julianday(created_at) IS NOT NULL"
        }
        crate::api::Latency::Inbound => {
            "SELECT max(0.0, (julianday(created_at) - julianday(timestamp)) * 86400.0) AS lat
             FROM messages WHERE direction = 'inbound' AND julianday(created_at) IS NOT NULL
               AND julianday(timestamp) IS NOT NULL"
        }
    };
    let columns: String = bounds
        .iter()
        .map(|b| format!(", coalesce(sum(lat <= {b:?} + 0.001), 0)"))
        .collect();
    let sql = format!("SELECT count(*), coalesce(sum(lat), 0.0){columns} FROM ({latency})");
    Ok(c.prepare_cached(&sql)?.query_row([], |row| {
        let mut buckets = Vec::with_capacity(bounds.len());
        for (i, b) in bounds.iter().enumerate() {
            let n: i64 = row.get(i + 2)?;
            buckets.push((*b, u64::try_from(n).unwrap_or(0)));
        }
        let count: i64 = row.get(0)?;
        Ok(crate::api::LatencyHistogram {
            count: u64::try_from(count).unwrap_or(0),
            sum: row.get(1)?,
            buckets,
        })
    })?)
}

/// Makes every pending delivery of `endpoint` due at `now` (its receiver answered again);
/// returns how many moved.
pub(crate) fn due_now(c: &Connection, endpoint: &str, now: Timestamp) -> Db<usize> {
    Ok(c.prepare_cached(
        "UPDATE webhook_deliveries SET next_attempt_at = ?2
             WHERE endpoint = ?1 AND state = 'pending' AND next_attempt_at > ?2",
    )?
    .execute((endpoint, sql_time(now)))?)
}
