//! Modem status rows, the event log, and the CLI's read queries.

use rusqlite::{Connection, OptionalExtension, Row};

use super::{Db, DbError, event, parse_status};
use crate::error::StoreError;
use crate::fingerprint::Fingerprint;
use crate::model::{
    DeliveryReport, Event, ListFilter, Message, MessageDetail, ModemState, ModemStatus, NewEvent,
    Part, StorageUse, Total,
};
use crate::types::{Direction, MessageId, ModemId, SqlTime, normalize_number, sql_time};

/// Replaces a modem's status row and its storage figures.
pub(crate) fn upsert_modem_status(c: &Connection, status: &ModemStatus) -> Db<()> {
    c.prepare_cached(
        "INSERT INTO modem_status (modem_id, state, last_error, manufacturer, model, firmware,
             imei, imsi, iccid, operator, signal_dbm, registration, last_cycle_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (modem_id) DO UPDATE SET
             state = excluded.state, last_error = excluded.last_error,
             manufacturer = excluded.manufacturer, model = excluded.model,
             firmware = excluded.firmware, imei = excluded.imei, imsi = excluded.imsi,
             iccid = excluded.iccid, operator = excluded.operator,
             signal_dbm = excluded.signal_dbm, registration = excluded.registration,
             last_cycle_at = excluded.last_cycle_at, updated_at = excluded.updated_at",
    )?
    .execute(rusqlite::params![
        status.modem_id.as_str(),
        status.state.as_str(),
        status.last_error,
        status.manufacturer,
        status.model,
        status.firmware,
        status.imei,
        status.imsi,
        status.iccid,
        status.operator,
        status.signal_dbm,
        status.registration,
        status.last_cycle_at.as_ref().map(SqlTime::as_str),
        status.updated_at.as_str(),
    ])?;
    c.prepare_cached("DELETE FROM modem_storage WHERE modem_id = ?1")?
        .execute([status.modem_id.as_str()])?;
    let mut insert = c.prepare_cached(
        "INSERT INTO modem_storage (modem_id, memory, used, total) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for storage in &status.storage {
        insert.execute(rusqlite::params![
            status.modem_id.as_str(),
            storage.memory,
            storage.used,
            storage.total
        ])?;
    }
    Ok(())
}

/// Every modem's status row, by id.
pub(crate) fn modem_statuses(c: &Connection) -> Db<Vec<ModemStatus>> {
    let rows: Vec<(ModemStatus, String)> = c
        .prepare_cached(
            "SELECT modem_id, state, last_error, manufacturer, model, firmware, imei, imsi,
                    iccid, operator, signal_dbm, registration, last_cycle_at, updated_at
             FROM modem_status ORDER BY modem_id",
        )?
        .query_map([], |row| {
            Ok((
                ModemStatus {
                    modem_id: ModemId(row.get(0)?),
                    state: ModemState::Down,
                    last_error: row.get(2)?,
                    manufacturer: row.get(3)?,
                    model: row.get(4)?,
                    firmware: row.get(5)?,
                    imei: row.get(6)?,
                    imsi: row.get(7)?,
                    iccid: row.get(8)?,
                    operator: row.get(9)?,
                    signal_dbm: row.get(10)?,
                    registration: row.get(11)?,
                    storage: Vec::new(),
                    last_cycle_at: row.get::<_, Option<String>>(12)?.map(SqlTime),
                    updated_at: SqlTime(row.get(13)?),
                },
                row.get(1)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut storage_stmt = c.prepare_cached(
        "SELECT memory, used, total FROM modem_storage WHERE modem_id = ?1 ORDER BY memory",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (mut status, state) in rows {
        status.state = ModemState::parse(&state).ok_or_else(|| {
            DbError::Store(StoreError::BadRow {
                table: "modem_status",
                id: 0,
                column: "state",
                detail: format!("{state:?} (modem {})", status.modem_id),
            })
        })?;
        status.storage = storage_stmt
            .query_map([status.modem_id.as_str()], |row| {
                Ok(StorageUse {
                    memory: row.get(0)?,
                    used: row.get(1)?,
                    total: row.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        out.push(status);
    }
    Ok(out)
}

/// Appends an event.
pub(crate) fn append_event(c: &Connection, e: &NewEvent) -> Db<i64> {
    event(
        c,
        &sql_time(e.at),
        &e.kind,
        e.message_id.map(|id| id.0),
        e.modem_id.as_ref().map(ModemId::as_str),
        e.detail.clone(),
    )?;
    Ok(c.last_insert_rowid())
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let detail: Option<String> = row.get(5)?;
    Ok(Event {
        id: row.get(0)?,
        at: SqlTime(row.get(1)?),
        kind: row.get(2)?,
        message_id: row.get::<_, Option<i64>>(3)?.map(MessageId),
        modem_id: row.get::<_, Option<String>>(4)?.map(ModemId),
        detail: detail
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))),
    })
}

/// A message's events, oldest first.
pub(crate) fn history(c: &Connection, id: MessageId) -> Db<Vec<Event>> {
    Ok(c.prepare_cached(
        "SELECT id, at, kind, message_id, modem_id, detail FROM events
             WHERE message_id = ?1 ORDER BY id",
    )?
    .query_map([id.0], event_from_row)?
    .collect::<Result<_, _>>()?)
}

/// Events after `after_id`, oldest first (for `watch` and webhooks).
pub(crate) fn events_since(c: &Connection, after_id: i64, limit: usize) -> Db<Vec<Event>> {
    Ok(c.prepare_cached(
        "SELECT id, at, kind, message_id, modem_id, detail FROM events
             WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?
    .query_map(
        rusqlite::params![after_id, i64::try_from(limit).unwrap_or(i64::MAX)],
        event_from_row,
    )?
    .collect::<Result<_, _>>()?)
}

/// Counts by direction and status.
pub(crate) fn totals(c: &Connection) -> Db<Vec<Total>> {
    let rows: Vec<(String, String, i64)> = c
        .prepare_cached(
            "SELECT direction, status, count(*) FROM messages
             GROUP BY direction, status ORDER BY direction, status",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(direction, status, count)| {
            Ok(Total {
                direction: parse_direction(0, &direction)?,
                status: parse_status(0, &status)?,
                count: u64::try_from(count).unwrap_or(0),
            })
        })
        .collect()
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

/// The `messages` columns [`message_from_row`] reads, in order.
const MESSAGE_COLUMNS: &str = "id, phone_number, content, timestamp, status, direction,
    modem_index, created_at, updated_at, modem_id, sending_modem, sim_storage, smsc_timestamp,
    encoding, fingerprint, parts_total, parts_received, incomplete, reason, attempts,
    next_attempt_at, send_at, allow_duplicate, source, status_report, raw_pdu, message_class,
    sent_at, delivered_at, priority, expires_at, transactional, held_by";

/// A row with its status and direction still as text (parsed by [`finish_message`]).
type RawMessage = (Message, String, String);

/// Reads any stored value as text: external writers may store numbers or blobs where
/// Conductor writes text, and a listing must not fail over one odd row.
fn lenient_text(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

/// Reads an integer column leniently (text that is not a number reads as NULL).
fn lenient_int(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<i64>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => Some(n),
        // Truncation is intended: a real in an integer column is a hand-written oddity.
        ValueRef::Real(x) => Some(x as i64),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|t| t.trim().parse().ok()),
        ValueRef::Null | ValueRef::Blob(_) => None,
    })
}

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<RawMessage> {
    let text = |i: usize| lenient_text(row, i);
    let time = |i: usize| -> rusqlite::Result<Option<SqlTime>> { Ok(text(i)?.map(SqlTime)) };
    let int = |i: usize| lenient_int(row, i);
    let flag = |i: usize| -> rusqlite::Result<bool> { Ok(int(i)?.unwrap_or(0) != 0) };
    Ok((
        Message {
            id: MessageId(row.get(0)?),
            phone_number: text(1)?.unwrap_or_default(),
            content: text(2)?.unwrap_or_default(),
            timestamp: time(3)?.unwrap_or(SqlTime(String::new())),
            status: crate::types::Status::Queued,
            direction: Direction::Outbound,
            modem_index: int(6)?,
            created_at: time(7)?.unwrap_or(SqlTime(String::new())),
            updated_at: time(8)?.unwrap_or(SqlTime(String::new())),
            modem_id: text(9)?.map(ModemId),
            sending_modem: text(10)?.map(ModemId),
            sim_storage: text(11)?,
            smsc_timestamp: text(12)?,
            encoding: text(13)?,
            fingerprint: text(14)?.map(Fingerprint),
            parts_total: int(15)?.unwrap_or(1),
            parts_received: int(16)?.unwrap_or(0),
            incomplete: flag(17)?,
            reason: text(18)?,
            attempts: int(19)?.unwrap_or(0),
            next_attempt_at: time(20)?,
            send_at: time(21)?,
            allow_duplicate: flag(22)?,
            source: text(23)?.unwrap_or_default(),
            status_report: int(24)?.map(|v| v != 0),
            raw_pdu: text(25)?,
            message_class: int(26)?,
            sent_at: time(27)?,
            delivered_at: time(28)?,
            priority: int(29)?.unwrap_or(0),
            expires_at: time(30)?,
            transactional: flag(31)?,
            held_by: text(32)?,
        },
        text(4)?.unwrap_or_default(),
        text(5)?.unwrap_or_default(),
    ))
}

fn finish_message((mut message, status, direction): RawMessage) -> Db<Message> {
    message.status = parse_status(message.id.0, &status)?;
    message.direction = parse_direction(message.id.0, &direction)?;
    Ok(message)
}

/// Messages matching `filter`, newest id first.
pub(crate) fn list(c: &Connection, filter: &ListFilter) -> Db<Vec<Message>> {
    use rusqlite::types::Value;
    let mut clauses: Vec<&str> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if let Some(status) = filter.status {
        clauses.push("status = ?");
        params.push(status.as_str().to_owned().into());
    }
    if let Some(direction) = filter.direction {
        clauses.push("direction = ?");
        params.push(direction.as_str().to_owned().into());
    }
    if let Some(number) = &filter.number {
        clauses.push("number_key = ?");
        params.push(normalize_number(number).into());
    }
    if let Some(modem) = &filter.modem_id {
        clauses.push("(modem_id = ? OR sending_modem = ?)");
        params.push(modem.0.clone().into());
        params.push(modem.0.clone().into());
    }
    if let Some(since) = filter.since {
        clauses.push("timestamp >= ?");
        params.push(sql_time(since).into());
    }
    if let Some(until) = filter.until {
        clauses.push("timestamp < ?");
        params.push(sql_time(until).into());
    }
    if let Some(text) = &filter.text_contains {
        clauses.push("instr(lower(content), lower(?)) > 0");
        params.push(text.clone().into());
    }
    if let Some(before) = filter.before_id {
        clauses.push("id < ?");
        params.push(before.0.into());
    }
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql =
        format!("SELECT {MESSAGE_COLUMNS} FROM messages {where_clause} ORDER BY id DESC LIMIT ?");
    let raw: Vec<RawMessage> = c
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(params), message_from_row)?
        .collect::<Result<_, _>>()?;
    raw.into_iter().map(finish_message).collect()
}

/// One message with its parts, reports and history.
pub(crate) fn message(c: &Connection, id: MessageId) -> Db<Option<MessageDetail>> {
    let raw = c
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
        ))?
        .query_row([id.0], message_from_row)
        .optional()?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    let message = finish_message(raw)?;
    let parts: Vec<(Part, String)> = c
        .prepare_cached(
            "SELECT id, message_id, direction, seq, total, concat_ref, sim_storage, sim_slot,
                    modem_id, text, pdu, state, message_ref, sent_at, report_status, reason
             FROM message_parts WHERE message_id = ?1 ORDER BY seq, id",
        )?
        .query_map([id.0], |row| {
            Ok((
                Part {
                    id: row.get(0)?,
                    message_id: row.get::<_, Option<i64>>(1)?.map(MessageId),
                    direction: Direction::Inbound,
                    seq: row.get(3)?,
                    total: row.get(4)?,
                    concat_ref: row.get(5)?,
                    sim_storage: row.get(6)?,
                    sim_slot: row.get(7)?,
                    modem_id: row.get::<_, Option<String>>(8)?.map(ModemId),
                    text: row.get(9)?,
                    pdu: row.get(10)?,
                    state: row.get(11)?,
                    message_ref: row.get(12)?,
                    sent_at: row.get::<_, Option<String>>(13)?.map(SqlTime),
                    report_status: row.get(14)?,
                    reason: row.get(15)?,
                },
                row.get(2)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let parts = parts
        .into_iter()
        .map(|(mut part, direction)| {
            part.direction = parse_direction(part.id, &direction)?;
            Ok(part)
        })
        .collect::<Db<Vec<Part>>>()?;
    let reports: Vec<DeliveryReport> = c
        .prepare_cached(
            "SELECT r.id, r.received_at, r.modem_id, r.message_ref, r.recipient, r.status_code,
                    r.category, r.discharge_time, p.seq
             FROM delivery_reports r LEFT JOIN message_parts p ON p.id = r.part_id
             WHERE r.message_id = ?1 ORDER BY r.id",
        )?
        .query_map([id.0], |row| {
            Ok(DeliveryReport {
                id: row.get(0)?,
                received_at: SqlTime(row.get(1)?),
                modem_id: ModemId(row.get(2)?),
                message_ref: row.get(3)?,
                recipient: row.get(4)?,
                status_code: row.get(5)?,
                category: row.get(6)?,
                discharge_time: row.get(7)?,
                part_seq: row.get(8)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let history = history(c, id)?;
    Ok(Some(MessageDetail {
        message,
        parts,
        reports,
        history,
    }))
}
