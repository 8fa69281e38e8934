//! Idempotent queueing, the webhook outbox and the dashboard's figures on PostgreSQL. A port of
//! `crate::sqlite::api` (see there and `crate::api` for the design).
//!
//! Across nodes: a retried `POST` may reach another node's API while the first is still
//! committing. The key is taken under a transaction-scoped advisory lock on its hash, so the
//! second request waits for the first to commit and then replays its ids instead of queueing
//! the messages again. Outbox rows are unique per (endpoint, event), so two nodes enqueueing
//! the same events make one delivery each.

use std::time::SystemTime;

use jiff::Timestamp;

use super::{Db, DbError, Tx, at, sql_time};
use crate::api::{
    AttemptResult, DeliveryCount, DeliveryFilter, DeliveryState, IdempotencyKey, Latency,
    LatencyHistogram, NewDelivery, QueueOutcome, VolumeBucket, WebhookDelivery,
};
use crate::error::StoreError;
use crate::model::NewOutbound;
use crate::types::MessageId;

/// Queues `messages` in one transaction (all or none), recording `key` with their ids; a key
/// seen before (and not expired) replays its ids, or is a conflict for another request.
pub(crate) async fn queue_batch(
    tx: &Tx<'_>,
    messages: &[NewOutbound],
    key: Option<&IdempotencyKey>,
    now: Timestamp,
) -> Db<QueueOutcome> {
    if let Some(key) = key {
        // Serialises requests with the same key on every node until this one commits.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('conductor-idempotency:' || $1, 0))",
            &[&key.key],
        )
        .await?;
        // An expired key is as good as absent (its row is replaced below).
        let cutoff = key.expired_before.map(at);
        let found = tx
            .query_opt(
                "SELECT request_hash, message_ids FROM api_idempotency
                 WHERE key = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)",
                &[&key.key, &cutoff],
            )
            .await?;
        if let Some(row) = found {
            let (hash, ids): (String, String) = (row.get(0), row.get(1));
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
        ids.push(super::outbound::queue(tx, message, now).await?);
    }
    if let Some(key) = key {
        let list: Vec<i64> = ids.iter().map(|id| id.0).collect();
        tx.execute(
            "INSERT INTO api_idempotency (key, request_hash, message_ids, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash,
                 message_ids = excluded.message_ids, created_at = excluded.created_at",
            &[
                &key.key,
                &key.request_hash,
                &serde_json::Value::from(list).to_string(),
                &at(now),
            ],
        )
        .await?;
    }
    Ok(QueueOutcome::Queued(ids))
}

/// Deletes the idempotency keys recorded before `older_than`; returns how many.
pub(crate) async fn prune_idempotency(tx: &Tx<'_>, older_than: Timestamp) -> Db<usize> {
    let n = tx
        .execute(
            "DELETE FROM api_idempotency WHERE created_at < $1",
            &[&at(older_than)],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// The newest event id (0 when there is none).
pub(crate) async fn last_event_id(tx: &Tx<'_>) -> Db<i64> {
    Ok(tx
        .query_one("SELECT coalesce(max(id), 0)::bigint FROM events", &[])
        .await?
        .get(0))
}

/// How far `endpoint` has read the events table, if it ever started.
pub(crate) async fn webhook_cursor(tx: &Tx<'_>, endpoint: &str) -> Db<Option<i64>> {
    Ok(tx
        .query_opt(
            "SELECT last_event_id FROM webhook_cursors WHERE endpoint = $1",
            &[&endpoint],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Enqueues `deliveries` for `endpoint` (ignoring any already there) and moves its cursor
/// forward to `cursor`; returns how many rows were new.
pub(crate) async fn enqueue(
    tx: &Tx<'_>,
    endpoint: &str,
    cursor: i64,
    deliveries: &[NewDelivery],
    now: Timestamp,
) -> Db<usize> {
    let now = at(now);
    let insert = tx
        .prepare(
            "INSERT INTO webhook_deliveries
                 (endpoint, event_id, event, payload, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (endpoint, event_id) DO NOTHING",
        )
        .await?;
    let mut new = 0;
    for d in deliveries {
        new += tx
            .execute(
                &insert,
                &[&endpoint, &d.event_id, &d.event, &d.payload, &now],
            )
            .await?;
    }
    tx.execute(
        "INSERT INTO webhook_cursors (endpoint, last_event_id) VALUES ($1, $2)
         ON CONFLICT (endpoint) DO UPDATE
             SET last_event_id = greatest(webhook_cursors.last_event_id, excluded.last_event_id)",
        &[&endpoint, &cursor],
    )
    .await?;
    Ok(usize::try_from(new).unwrap_or(usize::MAX))
}

const DELIVERY_COLUMNS: &str = "id, endpoint, event_id, event, payload, state, attempts,
    next_attempt_at, last_attempt_at, last_status, last_error, created_at, delivered_at";

fn delivery(row: &tokio_postgres::Row) -> Db<WebhookDelivery> {
    let id: i64 = row.get(0);
    let state: String = row.get(5);
    let state = DeliveryState::parse(&state).ok_or_else(|| {
        DbError::Store(StoreError::BadRow {
            table: "webhook_deliveries",
            id,
            column: "state",
            detail: state.clone(),
        })
    })?;
    Ok(WebhookDelivery {
        id,
        endpoint: row.get(1),
        event_id: row.get(2),
        event: row.get(3),
        payload: row.get(4),
        state,
        attempts: row.get(6),
        next_attempt_at: sql_time(row.get(7)),
        last_attempt_at: row.get::<_, Option<SystemTime>>(8).map(sql_time),
        last_status: row.get(9),
        last_error: row.get(10),
        created_at: sql_time(row.get(11)),
        delivered_at: row.get::<_, Option<SystemTime>>(12).map(sql_time),
    })
}

/// `endpoint`'s pending deliveries due at `now`, in event order.
pub(crate) async fn due(
    tx: &Tx<'_>,
    endpoint: &str,
    now: Timestamp,
    limit: usize,
) -> Db<Vec<WebhookDelivery>> {
    tx.query(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE state = 'pending' AND endpoint = $1 AND next_attempt_at <= $2
             ORDER BY event_id, id LIMIT $3"
        ),
        &[
            &endpoint,
            &at(now),
            &i64::try_from(limit).unwrap_or(i64::MAX),
        ],
    )
    .await?
    .iter()
    .map(delivery)
    .collect()
}

/// Records one attempt's result.
pub(crate) async fn attempted(
    tx: &Tx<'_>,
    id: i64,
    result: &AttemptResult,
    now: Timestamp,
) -> Db<()> {
    let now = at(now);
    match result {
        AttemptResult::Delivered { status } => {
            tx.execute(
                "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,
                     last_attempt_at = $2, last_status = $3, last_error = NULL, delivered_at = $2
                 WHERE id = $1",
                &[&id, &now, &i64::from(*status)],
            )
            .await?
        }
        AttemptResult::Retry {
            status,
            error,
            next_attempt_at,
        } => {
            tx.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $2,
                     last_status = $3, last_error = $4, next_attempt_at = $5
                 WHERE id = $1",
                &[
                    &id,
                    &now,
                    &status.map(i64::from),
                    error,
                    &at(*next_attempt_at),
                ],
            )
            .await?
        }
        AttemptResult::GiveUp { status, error } => {
            tx.execute(
                "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1,
                     last_attempt_at = $2, last_status = $3, last_error = $4
                 WHERE id = $1",
                &[&id, &now, &status.map(i64::from), error],
            )
            .await?
        }
    };
    Ok(())
}

/// Outbox rows matching `filter`, newest first.
pub(crate) async fn deliveries(tx: &Tx<'_>, filter: &DeliveryFilter) -> Db<Vec<WebhookDelivery>> {
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    // Every filter is a parameter; an absent one is NULL and matches everything.
    tx.query(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE ($1::text IS NULL OR endpoint = $1)
               AND ($2::text IS NULL OR state = $2)
               AND ($3::bigint IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        ),
        &[
            &filter.endpoint,
            &filter.state.map(DeliveryState::as_str),
            &filter.before_id,
            &i64::try_from(limit).unwrap_or(i64::MAX),
        ],
    )
    .await?
    .iter()
    .map(delivery)
    .collect()
}

/// Rows and attempts per endpoint and state.
pub(crate) async fn delivery_counts(tx: &Tx<'_>) -> Db<Vec<DeliveryCount>> {
    Ok(tx
        .query(
            "SELECT endpoint, state, count(*), coalesce(sum(attempts), 0)::bigint
             FROM webhook_deliveries GROUP BY endpoint, state ORDER BY endpoint, state",
            &[],
        )
        .await?
        .iter()
        .filter_map(|row| {
            let state: String = row.get(1);
            Some(DeliveryCount {
                endpoint: row.get(0),
                state: DeliveryState::parse(&state)?,
                deliveries: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
                attempts: u64::try_from(row.get::<_, i64>(3)).unwrap_or(0),
            })
        })
        .collect())
}

/// Makes every pending delivery of `endpoint` due at `now`; returns how many moved.
pub(crate) async fn due_now(tx: &Tx<'_>, endpoint: &str, now: Timestamp) -> Db<usize> {
    let n = tx
        .execute(
            "UPDATE webhook_deliveries SET next_attempt_at = $2
             WHERE endpoint = $1 AND state = 'pending' AND next_attempt_at > $2",
            &[&endpoint, &at(now)],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Messages whose `timestamp` is at or after `since`, counted per UTC hour (or day), direction
/// and status, with the same bucket spelling as the SQLite backend.
pub(crate) async fn volume(tx: &Tx<'_>, since: Timestamp, by_day: bool) -> Db<Vec<VolumeBucket>> {
    let format = if by_day {
        "YYYY-MM-DD"
    } else {
        "YYYY-MM-DD\"T\"HH24\":00:00Z\""
    };
    Ok(tx
        .query(
            "SELECT to_char(timestamp AT TIME ZONE 'UTC', $1) AS bucket, direction, status,
                    count(*)
             FROM messages WHERE timestamp >= $2
             GROUP BY bucket, direction, status ORDER BY bucket, direction, status",
            &[&format, &at(since)],
        )
        .await?
        .iter()
        .filter_map(|row| {
            Some(VolumeBucket {
                bucket: row.get(0),
                direction: row.get::<_, String>(1).parse().ok()?,
                status: row.get::<_, String>(2).parse().ok()?,
                count: u64::try_from(row.get::<_, i64>(3)).unwrap_or(0),
            })
        })
        .collect())
}

/// A histogram of send or inbound latency over every row that has both times, in whole
/// seconds as on SQLite (the contract stores times to the second).
pub(crate) async fn latency_histogram(
    tx: &Tx<'_>,
    which: Latency,
    bounds: &[f64],
) -> Db<LatencyHistogram> {
    let latency = match which {
        Latency::Send => {
            "SELECT greatest(0, extract(epoch FROM date_trunc('second', sent_at)
                        - date_trunc('second', greatest(created_at,
                                                        coalesce(send_at, created_at)))))::float8
                        AS lat
             FROM messages WHERE direction = 'outbound' AND sent_at IS NOT NULL"
        }
        Latency::Inbound => {
            "SELECT greatest(0, extract(epoch FROM date_trunc('second', created_at)
                        - date_trunc('second', timestamp)))::float8 AS lat
             FROM messages WHERE direction = 'inbound'"
        }
    };
    let row = tx
        .query_one(
            &format!(
                "WITH l AS ({latency})
                 SELECT (SELECT count(*) FROM l),
                        (SELECT coalesce(sum(lat), 0)::float8 FROM l),
                        ARRAY(SELECT (SELECT count(*) FROM l WHERE l.lat <= b.bound + 0.001)
                              FROM unnest($1::float8[]) WITH ORDINALITY AS b(bound, i)
                              ORDER BY b.i)"
            ),
            &[&bounds],
        )
        .await?;
    let counts: Vec<i64> = row.get(2);
    Ok(LatencyHistogram {
        count: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        sum: row.get(1),
        buckets: bounds
            .iter()
            .zip(counts)
            .map(|(b, n)| (*b, u64::try_from(n).unwrap_or(0)))
            .collect(),
    })
}
