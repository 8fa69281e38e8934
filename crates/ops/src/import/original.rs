//! The original Python system's SQLite database: its `messages` table has the same contract
//! columns as ours (`id`, `phone_number`, `content`, `timestamp`, `status`, `direction`,
//! `modem_index`, `created_at`, `updated_at`).
//!
//! Status mapping: inbound `unread`/`read` as they were (an external system that had not
//! processed a message yet still finds it `unread`); outbound `sent`, `delivered`, `failed`,
//! `cancelled`, `duplicate`, `unknown` as they were; `queued`/`pending` become `cancelled`
//! (never sent by surprise, see the module above); `sending` becomes `unknown` (it may have
//! gone out); `error` becomes `failed`. Times are kept (UTC unless `--source-tz`).

use std::path::Path;

use conductor_store::{Direction, Status};
use jiff::tz::TimeZone;

use super::{Found, ImportError, NOT_SENT, Problem, SourceKind, message, sql_time, text};

/// Reads every row of `messages` at `path`.
pub fn read(path: &Path, source: &str, zone: &TimeZone) -> Result<Found, ImportError> {
    let c = super::open_read_only(path)?;
    let sql_err = |source| ImportError::Sqlite {
        path: path.to_owned(),
        source,
    };
    if !super::has_table(&c, "messages") {
        return Err(ImportError::WrongFormat {
            path: path.to_owned(),
            kind: "original",
            why: "it has no `messages` table".into(),
        });
    }
    let mut statement = c
        .prepare(
            "SELECT id, phone_number, content, timestamp, status, direction, created_at,
                    updated_at
             FROM messages ORDER BY id",
        )
        .map_err(sql_err)?;
    let mut rows = statement.query([]).map_err(sql_err)?;
    let mut found = Found::default();
    while let Some(row) = rows.next().map_err(sql_err)? {
        let get = |i: usize| row.get_ref(i).ok().and_then(text);
        let id = get(0).unwrap_or_default();
        let item = format!("messages:{id}");
        match one(&get, zone) {
            Ok(mut m) => {
                m.source_kind = SourceKind::Original.as_str().to_owned();
                m.source = source.to_owned();
                m.items = vec![item];
                found.messages.push(m);
            }
            Err(why) => found.problems.push(Problem { item, why }),
        }
    }
    Ok(found)
}

fn one(
    get: &dyn Fn(usize) -> Option<String>,
    zone: &TimeZone,
) -> Result<conductor_store::ImportedMessage, String> {
    let number = get(1)
        .filter(|n| !n.trim().is_empty())
        .ok_or("phone_number is empty")?;
    let content = get(2).unwrap_or_default();
    let raw_time = get(3).unwrap_or_default();
    let timestamp =
        sql_time(&raw_time, zone).ok_or_else(|| format!("timestamp {raw_time:?} is not a time"))?;
    let direction = match get(5)
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "inbound" | "in" | "received" => Direction::Inbound,
        "outbound" | "out" | "sent" => Direction::Outbound,
        other => {
            return Err(format!(
                "direction {other:?} is neither inbound nor outbound"
            ));
        }
    };
    let raw_status = get(4).unwrap_or_default().trim().to_ascii_lowercase();
    let (status, reason) = match (direction, raw_status.as_str()) {
        (Direction::Inbound, "unread" | "new") => (Status::Unread, None),
        (Direction::Inbound, "read" | "processed") => (Status::Read, None),
        (Direction::Outbound, "queued" | "pending") => (Status::Cancelled, Some(NOT_SENT.into())),
        (Direction::Outbound, "sending") => (
            Status::Unknown,
            Some("imported: it was being sent when the old system stopped".into()),
        ),
        (Direction::Outbound, "error") => (Status::Failed, None),
        (
            Direction::Outbound,
            s @ ("sent" | "delivered" | "failed" | "cancelled" | "duplicate" | "unknown"),
        ) => (s.parse().map_err(|_| format!("status {s:?}"))?, None),
        (_, other) => {
            return Err(format!(
                "status {other:?} is not one the original system used for {} messages",
                direction.as_str()
            ));
        }
    };
    let mut m = message(
        SourceKind::Original,
        "",
        Vec::new(),
        direction,
        number,
        content,
        status,
        timestamp.clone(),
    );
    m.created_at = get(6).and_then(|t| sql_time(&t, zone));
    m.updated_at = get(7).and_then(|t| sql_time(&t, zone));
    m.reason = reason;
    if matches!(status, Status::Sent | Status::Delivered) {
        m.sent_at = Some(timestamp.clone());
    }
    if status == Status::Delivered {
        m.delivered_at = m.updated_at.clone().or(Some(timestamp));
    }
    Ok(m)
}
