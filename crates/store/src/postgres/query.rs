//! Reads and small writes on PostgreSQL: modem status rows, the event history, totals, `list`
//! and `show`. A port of `crate::sqlite::query`; times come back in the contract's UTC text
//! form through [`super::sql_time`].

use std::time::SystemTime;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Db, DbError, Tx, at, parse_status, sql_time};
use crate::error::StoreError;
use crate::fingerprint::Fingerprint;
use crate::model::{
    DeliveryReport, Event, ListFilter, Message, MessageDetail, ModemState, ModemStatus, NewEvent,
    Part, StorageUse, Total,
};
use crate::types::{Direction, MessageId, ModemId, SqlTime, normalize_number};

/// A stored time the caller gave as text (a `ModemStatus` read back and written again).
fn time_of(field: &'static str, t: &SqlTime) -> Db<SystemTime> {
    t.timestamp().map(at).ok_or_else(|| {
        DbError::Store(StoreError::InvalidInput {
            field,
            reason: format!("{:?} is not a time", t.as_str()),
        })
    })
}

fn count(n: u32) -> i64 {
    i64::from(n)
}

/// Writes a modem's status row (replacing the previous one and its storage figures).
pub(crate) async fn upsert_modem_status(tx: &Tx<'_>, status: &ModemStatus) -> Db<()> {
    let last_cycle = match &status.last_cycle_at {
        Some(t) => Some(time_of("last_cycle_at", t)?),
        None => None,
    };
    let updated = time_of("updated_at", &status.updated_at)?;
    tx.execute(
        "INSERT INTO modem_status (modem_id, state, last_error, manufacturer, model, firmware,
             imei, imsi, iccid, operator, signal_dbm, registration, last_cycle_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (modem_id) DO UPDATE SET
             state = excluded.state, last_error = excluded.last_error,
             manufacturer = excluded.manufacturer, model = excluded.model,
             firmware = excluded.firmware, imei = excluded.imei, imsi = excluded.imsi,
             iccid = excluded.iccid, operator = excluded.operator,
             signal_dbm = excluded.signal_dbm, registration = excluded.registration,
             last_cycle_at = excluded.last_cycle_at, updated_at = excluded.updated_at",
        &[
            &status.modem_id.as_str(),
            &status.state.as_str(),
            &status.last_error,
            &status.manufacturer,
            &status.model,
            &status.firmware,
            &status.imei,
            &status.imsi,
            &status.iccid,
            &status.operator,
            &status.signal_dbm.map(i64::from),
            &status.registration,
            &last_cycle,
            &updated,
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM modem_storage WHERE modem_id = $1",
        &[&status.modem_id.as_str()],
    )
    .await?;
    for storage in &status.storage {
        tx.execute(
            "INSERT INTO modem_storage (modem_id, memory, used, total) VALUES ($1, $2, $3, $4)",
            &[
                &status.modem_id.as_str(),
                &storage.memory,
                &count(storage.used),
                &count(storage.total),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Every modem's status row, by id.
pub(crate) async fn modem_statuses(tx: &Tx<'_>) -> Db<Vec<ModemStatus>> {
    let rows = tx
        .query(
            "SELECT modem_id, state, last_error, manufacturer, model, firmware, imei, imsi,
                    iccid, operator, signal_dbm, registration, last_cycle_at, updated_at
             FROM modem_status ORDER BY modem_id",
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let modem_id: String = row.get(0);
        let state: String = row.get(1);
        let state = ModemState::parse(&state).ok_or_else(|| {
            DbError::Store(StoreError::BadRow {
                table: "modem_status",
                id: 0,
                column: "state",
                detail: format!("{state:?} (modem {modem_id})"),
            })
        })?;
        let storage = tx
            .query(
                "SELECT memory, used, total FROM modem_storage WHERE modem_id = $1
                 ORDER BY memory",
                &[&modem_id],
            )
            .await?
            .iter()
            .map(|s| StorageUse {
                memory: s.get(0),
                used: u32::try_from(s.get::<_, i64>(1)).unwrap_or(0),
                total: u32::try_from(s.get::<_, i64>(2)).unwrap_or(0),
            })
            .collect();
        out.push(ModemStatus {
            modem_id: ModemId(modem_id),
            state,
            last_error: row.get(2),
            manufacturer: row.get(3),
            model: row.get(4),
            firmware: row.get(5),
            imei: row.get(6),
            imsi: row.get(7),
            iccid: row.get(8),
            operator: row.get(9),
            signal_dbm: row
                .get::<_, Option<i64>>(10)
                .and_then(|v| i32::try_from(v).ok()),
            registration: row.get(11),
            storage,
            last_cycle_at: row.get::<_, Option<SystemTime>>(12).map(sql_time),
            updated_at: sql_time(row.get(13)),
        });
    }
    Ok(out)
}

/// Appends an event; returns its id.
pub(crate) async fn append_event(tx: &Tx<'_>, e: &NewEvent) -> Db<i64> {
    Ok(tx
        .query_one(
            "INSERT INTO events (at, kind, message_id, modem_id, detail)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &at(e.at),
                &e.kind,
                &e.message_id.map(|id| id.0),
                &e.modem_id.as_ref().map(ModemId::as_str),
                &e.detail.as_ref().map(|d| d.to_string()),
            ],
        )
        .await?
        .get(0))
}

fn event_from_row(row: &Row) -> Event {
    let detail: Option<String> = row.get(5);
    Event {
        id: row.get(0),
        at: sql_time(row.get(1)),
        kind: row.get(2),
        message_id: row.get::<_, Option<i64>>(3).map(MessageId),
        modem_id: row.get::<_, Option<String>>(4).map(ModemId),
        detail: detail
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))),
    }
}

/// A message's events, oldest first.
pub(crate) async fn history(tx: &Tx<'_>, id: MessageId) -> Db<Vec<Event>> {
    Ok(tx
        .query(
            "SELECT id, at, kind, message_id, modem_id, detail FROM events
             WHERE message_id = $1 ORDER BY id",
            &[&id.0],
        )
        .await?
        .iter()
        .map(event_from_row)
        .collect())
}

/// Events after `after_id`, oldest first.
pub(crate) async fn events_since(tx: &Tx<'_>, after_id: i64, limit: usize) -> Db<Vec<Event>> {
    Ok(tx
        .query(
            "SELECT id, at, kind, message_id, modem_id, detail FROM events
             WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after_id, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )
        .await?
        .iter()
        .map(event_from_row)
        .collect())
}

fn parse_direction(id: i64, text: &str) -> Db<Direction> {
    text.parse().map_err(|e: crate::types::UnknownSpelling| {
        DbError::Store(StoreError::BadRow {
            table: "messages",
            id,
            column: "direction",
            detail: e.to_string(),
        })
    })
}

/// Counts by direction and status.
pub(crate) async fn totals(tx: &Tx<'_>) -> Db<Vec<Total>> {
    tx.query(
        "SELECT direction, status, count(*) FROM messages
         GROUP BY direction, status ORDER BY direction, status",
        &[],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(Total {
            direction: parse_direction(0, row.get(0))?,
            status: parse_status(0, row.get(1))?,
            count: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
        })
    })
    .collect()
}

/// The `messages` columns [`message_from_row`] reads, in order.
const MESSAGE_COLUMNS: &str = "id, phone_number, content, timestamp, status, direction,
    modem_index, created_at, updated_at, modem_id, sending_modem, sim_storage, smsc_timestamp,
    encoding, fingerprint, parts_total, parts_received, incomplete, reason, attempts,
    next_attempt_at, send_at, allow_duplicate, source, status_report, raw_pdu, message_class,
    sent_at, delivered_at, priority, expires_at, transactional, held_by";

fn message_from_row(row: &Row) -> Db<Message> {
    let id: i64 = row.get(0);
    let time = |i: usize| row.get::<_, Option<SystemTime>>(i).map(sql_time);
    Ok(Message {
        id: MessageId(id),
        phone_number: row.get(1),
        content: row.get(2),
        timestamp: sql_time(row.get(3)),
        status: parse_status(id, row.get(4))?,
        direction: parse_direction(id, row.get(5))?,
        modem_index: row.get(6),
        created_at: sql_time(row.get(7)),
        updated_at: sql_time(row.get(8)),
        modem_id: row.get::<_, Option<String>>(9).map(ModemId),
        sending_modem: row.get::<_, Option<String>>(10).map(ModemId),
        sim_storage: row.get(11),
        smsc_timestamp: row.get(12),
        encoding: row.get(13),
        fingerprint: row.get::<_, Option<String>>(14).map(Fingerprint),
        parts_total: row.get(15),
        parts_received: row.get(16),
        incomplete: row.get(17),
        reason: row.get(18),
        attempts: row.get(19),
        next_attempt_at: time(20),
        send_at: time(21),
        allow_duplicate: row.get(22),
        source: row.get(23),
        status_report: row.get(24),
        raw_pdu: row.get(25),
        message_class: row.get(26),
        sent_at: time(27),
        delivered_at: time(28),
        priority: row.get(29),
        expires_at: time(30),
        transactional: row.get(31),
        held_by: row.get(32),
    })
}

/// Messages matching `filter`, newest first.
pub(crate) async fn list(tx: &Tx<'_>, filter: &ListFilter) -> Db<Vec<Message>> {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut push = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        clauses.push(clause.replace('?', &format!("${}", params.len())));
    };
    if let Some(status) = filter.status {
        push("status = ?", Box::new(status.as_str().to_owned()));
    }
    if let Some(direction) = filter.direction {
        push("direction = ?", Box::new(direction.as_str().to_owned()));
    }
    if let Some(number) = &filter.number {
        push("number_key = ?", Box::new(normalize_number(number)));
    }
    if let Some(modem) = &filter.modem_id {
        push(
            "(modem_id = ? OR sending_modem = ?)",
            Box::new(modem.0.clone()),
        );
    }
    if let Some(since) = filter.since {
        push("timestamp >= ?", Box::new(at(since)));
    }
    if let Some(until) = filter.until {
        push("timestamp < ?", Box::new(at(until)));
    }
    if let Some(text) = &filter.text_contains {
        push(
            "strpos(lower(content), lower(?)) > 0",
            Box::new(text.clone()),
        );
    }
    if let Some(before) = filter.before_id {
        push("id < ?", Box::new(before.0));
    }
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    params.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages {where_clause} ORDER BY id DESC LIMIT ${}",
        params.len()
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    tx.query(&sql, &refs)
        .await?
        .iter()
        .map(message_from_row)
        .collect()
}

/// One message with its parts, reports and history.
pub(crate) async fn message(tx: &Tx<'_>, id: MessageId) -> Db<Option<MessageDetail>> {
    let Some(row) = tx
        .query_opt(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"),
            &[&id.0],
        )
        .await?
    else {
        return Ok(None);
    };
    let message = message_from_row(&row)?;
    let parts = tx
        .query(
            "SELECT id, message_id, direction, seq, total, concat_ref, sim_storage, sim_slot,
                    modem_id, text, pdu, state, message_ref, sent_at, report_status, reason
             FROM message_parts WHERE message_id = $1 ORDER BY seq, id",
            &[&id.0],
        )
        .await?
        .iter()
        .map(|row| {
            let part_id: i64 = row.get(0);
            Ok(Part {
                id: part_id,
                message_id: row.get::<_, Option<i64>>(1).map(MessageId),
                direction: parse_direction(part_id, row.get(2))?,
                seq: row.get(3),
                total: row.get(4),
                concat_ref: row.get(5),
                sim_storage: row.get(6),
                sim_slot: row.get(7),
                modem_id: row.get::<_, Option<String>>(8).map(ModemId),
                text: row.get(9),
                pdu: row.get(10),
                state: row.get(11),
                message_ref: row.get(12),
                sent_at: row.get::<_, Option<SystemTime>>(13).map(sql_time),
                report_status: row.get(14),
                reason: row.get(15),
            })
        })
        .collect::<Db<Vec<Part>>>()?;
    let reports = tx
        .query(
            "SELECT r.id, r.received_at, r.modem_id, r.message_ref, r.recipient, r.status_code,
                    r.category, r.discharge_time, p.seq
             FROM delivery_reports r LEFT JOIN message_parts p ON p.id = r.part_id
             WHERE r.message_id = $1 ORDER BY r.id",
            &[&id.0],
        )
        .await?
        .iter()
        .map(|row| DeliveryReport {
            id: row.get(0),
            received_at: sql_time(row.get(1)),
            modem_id: ModemId(row.get(2)),
            message_ref: row.get(3),
            recipient: row.get(4),
            status_code: row.get(5),
            category: row.get(6),
            discharge_time: row.get(7),
            part_seq: row.get(8),
        })
        .collect();
    let history = history(tx, id).await?;
    Ok(Some(MessageDetail {
        message,
        parts,
        reports,
        history,
    }))
}
