//! gammu-smsd's SQL tables, SQLite flavour (gammu's documented schema): `inbox`,
//! `sentitems`, `outbox` and `outbox_multipart`.
//!
//! Multipart: gammu stores each received part as its own `inbox` row with its `UDH`; parts
//! with the same sender and concatenation reference are joined in sequence order (a group
//! with parts missing comes in as an incomplete message). Sent parts share their `ID` in
//! `sentitems`, numbered by `SequencePosition`. An outbox message is its `outbox` row plus
//! its `outbox_multipart` rows (SequencePosition 2, 3, ...).
//!
//! Mapping: `inbox` → inbound, `read` when `Processed` is true, else `unread`; `sentitems`
//! `SendingOK`/`SendingOKNoReport`/`DeliveryPending`/`DeliveryUnknown` → `sent`,
//! `DeliveryOK` → `delivered`, `SendingError`/`DeliveryFailed`/`Error` → `failed` (a message
//! with any part failed is failed; delivered when every part is); `outbox` → `cancelled`
//! (never sent by surprise; `conductor requeue ID`). Times are gammu's local times unless
//! `--source-tz` says otherwise. `SenderID`/`RecipientID` (the gammu phone) become the modem.

use std::collections::BTreeMap;
use std::path::Path;

use conductor_store::{Direction, ImportedMessage, ModemId, Status};
use jiff::tz::TimeZone;

use super::{
    Found, ImportError, NOT_SENT, Problem, SourceKind, concat_of_udh, message, sql_time, text,
};

type Row = BTreeMap<String, String>;

/// Reads the gammu database at `path`.
pub fn read(path: &Path, source: &str, zone: &TimeZone) -> Result<Found, ImportError> {
    let c = super::open_read_only(path)?;
    for table in ["inbox", "sentitems"] {
        if !super::has_table(&c, table) {
            return Err(ImportError::WrongFormat {
                path: path.to_owned(),
                kind: "gammu",
                why: format!("it has no `{table}` table"),
            });
        }
    }
    let mut found = Found::default();
    let rows = |table: &str| rows(&c, path, table);
    inbox(&rows("inbox")?, source, zone, &mut found);
    sentitems(&rows("sentitems")?, source, zone, &mut found);
    if super::has_table(&c, "outbox") {
        let parts = if super::has_table(&c, "outbox_multipart") {
            rows("outbox_multipart")?
        } else {
            Vec::new()
        };
        outbox(&rows("outbox")?, &parts, source, zone, &mut found);
    }
    Ok(found)
}

/// Every row of `table` as column name → text (column names lower-cased: gammu's schema
/// writes them in CamelCase, some converters do not).
fn rows(c: &rusqlite::Connection, path: &Path, table: &str) -> Result<Vec<Row>, ImportError> {
    let sql_err = |source| ImportError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let mut statement = c
        .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
        .map_err(sql_err)?;
    let names: Vec<String> = statement
        .column_names()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let mut result = Vec::new();
    let mut query = statement.query([]).map_err(sql_err)?;
    while let Some(row) = query.next().map_err(sql_err)? {
        let mut map = Row::new();
        for (i, name) in names.iter().enumerate() {
            if let Some(value) = row.get_ref(i).ok().and_then(text) {
                map.insert(name.clone(), value);
            }
        }
        result.push(map);
    }
    Ok(result)
}

fn field<'a>(row: &'a Row, name: &str) -> &'a str {
    row.get(name).map(String::as_str).unwrap_or_default()
}

fn encoding(coding: &str) -> Option<String> {
    Some(
        match coding {
            "Default_No_Compression" | "Default_Compression" => "gsm7",
            "Unicode_No_Compression" | "Unicode_Compression" => "ucs2",
            "8bit" => "8bit",
            _ => return None,
        }
        .to_owned(),
    )
}

fn time(row: &Row, name: &str, zone: &TimeZone) -> Option<String> {
    sql_time(field(row, name), zone)
}

fn modem(row: &Row, name: &str) -> Option<ModemId> {
    Some(field(row, name).trim())
        .filter(|m| !m.is_empty())
        .map(ModemId::from)
}

fn inbox(rows: &[Row], source: &str, zone: &TimeZone, found: &mut Found) {
    // (sender, reference, total) → (seq → row)
    let mut groups: BTreeMap<(String, u16, u8), BTreeMap<u8, &Row>> = BTreeMap::new();
    for row in rows {
        let item = format!("inbox:{}", field(row, "id"));
        let sender = field(row, "sendernumber").trim().to_owned();
        if sender.is_empty() {
            found.problems.push(Problem {
                item,
                why: "SenderNumber is empty".into(),
            });
            continue;
        }
        if time(row, "receivingdatetime", zone).is_none() {
            found.problems.push(Problem {
                item,
                why: format!(
                    "ReceivingDateTime {:?} is not a time",
                    field(row, "receivingdatetime")
                ),
            });
            continue;
        }
        let key = match concat_of_udh(field(row, "udh")) {
            Some((reference, total, seq)) if total > 1 => (sender, reference, total, seq),
            // A single-part message is a group of its own (keyed by its id).
            _ => {
                let single = BTreeMap::from([(1, row)]);
                push_inbox(&single, 1, source, zone, found);
                continue;
            }
        };
        groups
            .entry((key.0, key.1, key.2))
            .or_default()
            .insert(key.3, row);
    }
    for ((_, _, total), parts) in groups {
        push_inbox(&parts, total, source, zone, found);
    }
}

fn push_inbox(
    parts: &BTreeMap<u8, &Row>,
    total: u8,
    source: &str,
    zone: &TimeZone,
    found: &mut Found,
) {
    let Some(first) = parts.values().next() else {
        return;
    };
    let content: String = parts.values().map(|r| field(r, "textdecoded")).collect();
    let processed = parts
        .values()
        .all(|r| field(r, "processed").eq_ignore_ascii_case("true"));
    let mut m = message(
        SourceKind::Gammu,
        source,
        parts
            .values()
            .map(|r| format!("inbox:{}", field(r, "id")))
            .collect(),
        Direction::Inbound,
        field(first, "sendernumber").trim().to_owned(),
        content,
        if processed {
            Status::Read
        } else {
            Status::Unread
        },
        time(first, "receivingdatetime", zone).unwrap_or_default(),
    );
    m.updated_at = time(first, "updatedindb", zone);
    m.modem_id = modem(first, "recipientid");
    m.encoding = encoding(field(first, "coding"));
    m.parts_total = i64::from(total);
    m.parts_received = parts.len() as i64;
    found.messages.push(m);
}

fn part_state(status: &str) -> Option<Status> {
    Some(match status {
        "SendingOK" | "SendingOKNoReport" | "DeliveryPending" | "DeliveryUnknown" => Status::Sent,
        "DeliveryOK" => Status::Delivered,
        "SendingError" | "DeliveryFailed" | "Error" => Status::Failed,
        _ => return None,
    })
}

fn sentitems(rows: &[Row], source: &str, zone: &TimeZone, found: &mut Found) {
    let mut groups: BTreeMap<String, BTreeMap<i64, &Row>> = BTreeMap::new();
    for row in rows {
        let seq = field(row, "sequenceposition").parse().unwrap_or(1);
        groups
            .entry(field(row, "id").to_owned())
            .or_default()
            .insert(seq, row);
    }
    for (id, parts) in groups {
        let items: Vec<String> = parts
            .keys()
            .map(|seq| format!("sentitems:{id}:{seq}"))
            .collect();
        match sent_message(&parts, zone) {
            Ok(mut m) => {
                m.source = source.to_owned();
                m.items = items;
                found.messages.push(m);
            }
            Err(why) => found.problems.push(Problem {
                item: items.join(","),
                why,
            }),
        }
    }
}

fn sent_message(parts: &BTreeMap<i64, &Row>, zone: &TimeZone) -> Result<ImportedMessage, String> {
    let first = parts.values().next().ok_or("no parts")?;
    let number = field(first, "destinationnumber").trim().to_owned();
    if number.is_empty() {
        return Err("DestinationNumber is empty".into());
    }
    let mut states = Vec::new();
    for row in parts.values() {
        let status = field(row, "status");
        states.push(part_state(status).ok_or_else(|| format!("unknown Status {status:?}"))?);
    }
    let status = if states.contains(&Status::Failed) {
        Status::Failed
    } else if states.iter().all(|s| *s == Status::Delivered) {
        Status::Delivered
    } else {
        Status::Sent
    };
    let sent = time(first, "sendingdatetime", zone);
    let queued = time(first, "insertintodb", zone).or_else(|| sent.clone());
    let timestamp = queued.ok_or_else(|| {
        format!(
            "neither InsertIntoDB nor SendingDateTime is a time ({:?})",
            field(first, "sendingdatetime")
        )
    })?;
    let mut m = message(
        SourceKind::Gammu,
        "",
        Vec::new(),
        Direction::Outbound,
        number,
        parts.values().map(|r| field(r, "textdecoded")).collect(),
        status,
        timestamp,
    );
    m.sent_at = sent;
    if status == Status::Delivered {
        m.delivered_at = parts
            .values()
            .filter_map(|r| time(r, "deliverydatetime", zone))
            .max();
    }
    if status == Status::Failed {
        let failed = parts
            .values()
            .find(|r| part_state(field(r, "status")) == Some(Status::Failed))
            .copied()
            .unwrap_or(first);
        m.reason = Some(format!(
            "gammu: {} (StatusError {})",
            field(failed, "status"),
            field(failed, "statuserror")
        ));
    }
    m.updated_at = time(first, "updatedindb", zone);
    m.modem_id = modem(first, "senderid");
    m.encoding = encoding(field(first, "coding"));
    m.parts_total = parts.len() as i64;
    m.parts_received = m.parts_total;
    Ok(m)
}

fn outbox(rows: &[Row], multipart: &[Row], source: &str, zone: &TimeZone, found: &mut Found) {
    for row in rows {
        let id = field(row, "id").to_owned();
        let item = format!("outbox:{id}");
        let number = field(row, "destinationnumber").trim().to_owned();
        if number.is_empty() {
            found.problems.push(Problem {
                item,
                why: "DestinationNumber is empty".into(),
            });
            continue;
        }
        let Some(timestamp) = time(row, "insertintodb", zone) else {
            found.problems.push(Problem {
                item,
                why: format!(
                    "InsertIntoDB {:?} is not a time",
                    field(row, "insertintodb")
                ),
            });
            continue;
        };
        let mut rest: Vec<(i64, &Row)> = multipart
            .iter()
            .filter(|p| field(p, "id") == id)
            .map(|p| (field(p, "sequenceposition").parse().unwrap_or(2), p))
            .collect();
        rest.sort_by_key(|(seq, _)| *seq);
        let mut content = field(row, "textdecoded").to_owned();
        let mut items = vec![item];
        for (seq, part) in &rest {
            content.push_str(field(part, "textdecoded"));
            items.push(format!("outbox_multipart:{id}:{seq}"));
        }
        let mut m = message(
            SourceKind::Gammu,
            source,
            items,
            Direction::Outbound,
            number,
            content,
            Status::Cancelled,
            timestamp,
        );
        m.reason = Some(NOT_SENT.into());
        m.modem_id = modem(row, "senderid");
        m.encoding = encoding(field(row, "coding"));
        m.parts_total = 1 + rest.len() as i64;
        m.parts_received = m.parts_total;
        found.messages.push(m);
    }
}
