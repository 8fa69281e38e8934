//! Inbound messages: storing single SMS and parts, reassembly, and the SIM copy lifecycle.
//!
//! Every SIM copy gets a `message_parts` row (a single SMS is its own only part), which is
//! where its slot lives until it is deleted on the SIM; `messages.modem_index` mirrors the slot
//! of the lowest-numbered part still on the SIM (DESIGN.md "Receiving"). Parts of a long
//! message wait in `message_parts` with no message until all are there, so reassembly survives
//! restarts and an external reader never sees half a message as `unread`. After the multipart
//! timeout the gateway calls [`flush_incomplete`], which stores what is there as one row
//! flagged `incomplete`; a late part then completes that same row.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use serde_json::json;

use super::{Db, event};
use crate::error::StoreError;
use crate::fingerprint::Fingerprint;
use crate::model::{
    DeletePolicy, InboundPart, InboundSms, PartOutcome, SimCopy, SimCopyKind, Stored, StoredPart,
    UndecodablePdu,
};
use crate::reassembly::{self, Arrival};
use crate::types::{MessageId, ModemId, parse_sql_time, sql_time};

/// The `messages.timestamp` of an inbound message: the SMSC time stamp in UTC when it parses,
/// else the time it was read.
fn inbound_timestamp(sms: &InboundSms) -> String {
    sms.smsc_timestamp
        .as_deref()
        .and_then(parse_sql_time)
        .map(sql_time)
        .unwrap_or_else(|| sql_time(sms.received_at))
}

/// The message a stored fingerprint belongs to: `Some(message)` when stored, with `None`
/// inside when it is a part still waiting for its group.
fn known_fingerprint(c: &Connection, fingerprint: &Fingerprint) -> Db<Option<Option<i64>>> {
    Ok(
        c.prepare_cached("SELECT message_id FROM message_parts WHERE fingerprint = ?1")?
            .query_row([fingerprint.as_str()], |row| row.get(0))
            .optional()?,
    )
}

fn insert_part(
    c: &Connection,
    sms: &InboundSms,
    message_id: Option<i64>,
    seq: u8,
    total: u8,
    concat: Option<(u16, u8)>,
    group_key: Option<&str>,
) -> Db<i64> {
    let now = sql_time(sms.received_at);
    c.prepare_cached(
        "INSERT INTO message_parts (message_id, direction, seq, total, concat_ref, ref_bits,
             group_key, fingerprint, modem_id, sim_storage, sim_slot, sender, smsc_timestamp,
             encoding, message_class, text, pdu, received_at, created_at, updated_at)
         VALUES (?1, 'inbound', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
             ?16, ?17, ?17, ?17)",
    )?
    .execute(rusqlite::params![
        message_id,
        seq,
        total,
        concat.map(|(r, _)| r),
        concat.map(|(_, bits)| bits),
        group_key,
        sms.fingerprint.as_str(),
        sms.modem_id.as_str(),
        sms.sim_storage,
        sms.sim_slot,
        sms.sender,
        sms.smsc_timestamp,
        sms.encoding,
        sms.message_class,
        sms.text,
        sms.raw_pdu,
        now,
    ])?;
    Ok(c.last_insert_rowid())
}

/// Stores a single-part SMS; a fingerprint seen before returns the existing row.
pub(crate) fn store_single(c: &Connection, sms: &InboundSms) -> Db<Stored> {
    if let Some(existing) = known_fingerprint(c, &sms.fingerprint)? {
        return match existing {
            Some(id) => Ok(Stored {
                id: MessageId(id),
                newly_created: false,
            }),
            None => Err(StoreError::InvalidInput {
                field: "fingerprint",
                reason: format!(
                    "{} is already stored as a part of a long message that is still being \
                     reassembled",
                    sms.fingerprint
                ),
            }
            .into()),
        };
    }
    let now = sql_time(sms.received_at);
    c.prepare_cached(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction, modem_index,
             created_at, updated_at, modem_id, sim_storage, smsc_timestamp, encoding, fingerprint,
             raw_pdu, message_class, source)
         VALUES (?1, ?2, ?3, 'unread', 'inbound', ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
             'modem')",
    )?
    .execute(rusqlite::params![
        sms.sender,
        sms.text,
        inbound_timestamp(sms),
        sms.sim_slot,
        now,
        sms.modem_id.as_str(),
        sms.sim_storage,
        sms.smsc_timestamp,
        sms.encoding,
        sms.fingerprint.as_str(),
        sms.raw_pdu,
        sms.message_class,
    ])?;
    let id = c.last_insert_rowid();
    insert_part(c, sms, Some(id), 1, 1, None, None)?;
    event(
        c,
        &now,
        "received",
        Some(id),
        Some(sms.modem_id.as_str()),
        Some(json!({ "storage": sms.sim_storage, "slot": sms.sim_slot })),
    )?;
    Ok(Stored {
        id: MessageId(id),
        newly_created: true,
    })
}

/// Stores a PDU that could not be decoded: an `unread` inbound row with empty content, the raw
/// PDU and the reason, so a person sees it and it is never lost or re-read forever.
pub(crate) fn store_undecodable(c: &Connection, pdu: &UndecodablePdu) -> Db<Stored> {
    if let Some(Some(id)) = known_fingerprint(c, &pdu.fingerprint)? {
        return Ok(Stored {
            id: MessageId(id),
            newly_created: false,
        });
    }
    let now = sql_time(pdu.received_at);
    let reason = format!("undecodable PDU: {}", pdu.reason);
    c.prepare_cached(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction, modem_index,
             created_at, updated_at, modem_id, sim_storage, fingerprint, raw_pdu, reason, source)
         VALUES (?1, '', ?2, 'unread', 'inbound', ?3, ?2, ?2, ?4, ?5, ?6, ?7, ?8, 'modem')",
    )?
    .execute(rusqlite::params![
        pdu.sender.as_deref().unwrap_or(""),
        now,
        pdu.sim_slot,
        pdu.modem_id.as_str(),
        pdu.sim_storage,
        pdu.fingerprint.as_str(),
        pdu.raw_pdu,
        reason,
    ])?;
    let id = c.last_insert_rowid();
    let as_sms = InboundSms {
        modem_id: pdu.modem_id.clone(),
        fingerprint: pdu.fingerprint.clone(),
        sim_storage: pdu.sim_storage.clone(),
        sim_slot: pdu.sim_slot,
        sender: pdu.sender.clone().unwrap_or_default(),
        text: String::new(),
        encoding: None,
        smsc_timestamp: None,
        message_class: None,
        raw_pdu: Some(pdu.raw_pdu.clone()),
        received_at: pdu.received_at,
    };
    insert_part(c, &as_sms, Some(id), 1, 1, None, None)?;
    event(
        c,
        &now,
        "undecodable",
        Some(id),
        Some(pdu.modem_id.as_str()),
        Some(json!({ "reason": pdu.reason, "storage": pdu.sim_storage, "slot": pdu.sim_slot })),
    )?;
    Ok(Stored {
        id: MessageId(id),
        newly_created: true,
    })
}

/// Stores one part of a long message and reassembles it when it is complete.
pub(crate) fn store_part(
    c: &Connection,
    part: &InboundPart,
    late_part_window: Duration,
) -> Db<StoredPart> {
    let concat = part.concat;
    reassembly::check_part_number(concat)?;
    if let Some(message_id) = known_fingerprint(c, &part.sms.fingerprint)? {
        return Ok(StoredPart {
            outcome: PartOutcome::Duplicate {
                message_id: message_id.map(MessageId),
            },
            flushed: None,
        });
    }
    let sms = &part.sms;
    let key = reassembly::group_key(part);
    let concat_info = Some((concat.reference, concat.ref_bits));

    // Parts of this group still waiting, and the text of this part number among them.
    let (waiting, same_seq): (i64, Option<String>) = c
        .prepare_cached(
            "SELECT count(*),
                    (SELECT text FROM message_parts
                     WHERE group_key = ?1 AND message_id IS NULL AND direction = 'inbound'
                       AND seq = ?2 ORDER BY id LIMIT 1)
             FROM message_parts
             WHERE group_key = ?1 AND message_id IS NULL AND direction = 'inbound'",
        )?
        .query_row(rusqlite::params![key, concat.seq], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;

    let mut flushed = None;
    match reassembly::arrival(waiting, same_seq.as_deref(), &sms.text) {
        Arrival::FlushWaiting => {
            flushed = Some(MessageId(assemble(c, &key, &sql_time(sms.received_at))?));
        }
        Arrival::Join => {}
        Arrival::Late => {
            if let Some(stored) = add_late_part(c, part, &key, late_part_window)? {
                return Ok(stored);
            }
        }
    }

    insert_part(
        c,
        sms,
        None,
        concat.seq,
        concat.total,
        concat_info,
        Some(&key),
    )?;
    let have: u8 = c
        .prepare_cached(
            "SELECT count(DISTINCT seq) FROM message_parts
             WHERE group_key = ?1 AND message_id IS NULL AND direction = 'inbound'",
        )?
        .query_row([&key], |row| row.get(0))?;
    let outcome = if have >= concat.total {
        PartOutcome::Completed {
            id: MessageId(assemble(c, &key, &sql_time(sms.received_at))?),
        }
    } else {
        PartOutcome::Waiting {
            have,
            total: concat.total,
        }
    };
    Ok(StoredPart { outcome, flushed })
}

/// Adds `part` to the newest recent incomplete message of its group that lacks its number.
fn add_late_part(
    c: &Connection,
    part: &InboundPart,
    key: &str,
    late_part_window: Duration,
) -> Db<Option<StoredPart>> {
    let (sms, concat) = (&part.sms, part.concat);
    let cutoff = reassembly::late_cutoff(sms.received_at, late_part_window)
        .map(sql_time)
        .unwrap_or_default();
    let message_id: Option<i64> = c
        .prepare_cached(
            "SELECT DISTINCT p.message_id FROM message_parts p
             JOIN messages m ON m.id = p.message_id
             WHERE p.group_key = ?1 AND p.direction = 'inbound' AND m.incomplete = 1
               AND m.created_at >= ?2
               AND NOT EXISTS (SELECT 1 FROM message_parts q
                               WHERE q.message_id = p.message_id AND q.seq = ?3)
             ORDER BY p.message_id DESC LIMIT 1",
        )?
        .query_row(rusqlite::params![key, cutoff, concat.seq], |row| row.get(0))
        .optional()?;
    let Some(message_id) = message_id else {
        return Ok(None);
    };
    let now = sql_time(sms.received_at);
    let concat_info = Some((concat.reference, concat.ref_bits));
    insert_part(
        c,
        sms,
        Some(message_id),
        concat.seq,
        concat.total,
        concat_info,
        Some(key),
    )?;
    let (have, complete) = refresh_multipart(c, message_id, &now)?;
    let (stored, what) = reassembly::late_outcome(message_id, have, complete, concat);
    event(
        c,
        &now,
        what,
        Some(message_id),
        Some(sms.modem_id.as_str()),
        Some(json!({ "seq": concat.seq, "total": concat.total })),
    )?;
    Ok(Some(stored))
}

/// Turns the waiting parts of group `key` into one `messages` row (complete or not).
fn assemble(c: &Connection, key: &str, now: &str) -> Db<i64> {
    // The row is created from the lowest-numbered part, then filled in by the refresh.
    let first = c
        .prepare_cached(
            "SELECT sender, smsc_timestamp, encoding, message_class, modem_id, sim_storage,
                    fingerprint, received_at, total
             FROM message_parts
             WHERE group_key = ?1 AND message_id IS NULL AND direction = 'inbound'
             ORDER BY seq, id LIMIT 1",
        )?
        .query_row([key], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<String>>(7)?,
                row.get::<_, i64>(8)?,
            ))
        })?;
    let (sender, smsc, encoding, class, modem, storage, fingerprint, received_at, total) = first;
    let timestamp = smsc
        .as_deref()
        .and_then(parse_sql_time)
        .map(sql_time)
        .or(received_at)
        .unwrap_or_else(|| now.to_owned());
    c.prepare_cached(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction, created_at,
             updated_at, modem_id, sim_storage, smsc_timestamp, encoding, fingerprint,
             message_class, parts_total, parts_received, source)
         VALUES (?1, '', ?2, 'unread', 'inbound', ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0,
             'modem')",
    )?
    .execute(rusqlite::params![
        sender,
        timestamp,
        now,
        modem,
        storage,
        smsc,
        encoding,
        fingerprint,
        class,
        total
    ])?;
    let id = c.last_insert_rowid();
    c.prepare_cached(
        "UPDATE message_parts SET message_id = ?1, updated_at = ?3
         WHERE group_key = ?2 AND message_id IS NULL AND direction = 'inbound'",
    )?
    .execute(rusqlite::params![id, key, now])?;
    let (have, complete) = refresh_multipart(c, id, now)?;
    event(
        c,
        now,
        reassembly::assembled_event(complete),
        Some(id),
        modem.as_deref(),
        Some(json!({ "parts": have, "total": total })),
    )?;
    Ok(id)
}

/// Recomputes a long inbound message's text, part counts, flag and `modem_index` from its
/// parts. Returns (distinct parts, complete).
fn refresh_multipart(c: &Connection, message_id: i64, now: &str) -> Db<(u8, bool)> {
    let parts: Vec<(u8, u8, String, Option<i64>)> = c
        .prepare_cached(
            "SELECT seq, total, text, sim_slot FROM message_parts
             WHERE message_id = ?1 AND direction = 'inbound' ORDER BY seq, id",
        )?
        .query_map([message_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let joined = reassembly::join(&parts);
    c.prepare_cached(
        "UPDATE messages SET content = ?2, parts_total = ?3, parts_received = ?4,
             incomplete = ?5, reason = ?6, modem_index = ?7, updated_at = ?8,
             revision = revision + 1
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        message_id,
        joined.content,
        joined.total,
        joined.have,
        !joined.complete,
        joined.reason,
        joined.modem_index,
        now
    ])?;
    Ok((joined.have, joined.complete))
}

/// Stores every group whose first part arrived at or before `older_than` as an incomplete
/// message.
pub(crate) fn flush_incomplete(
    c: &Connection,
    older_than: jiff::Timestamp,
    now: jiff::Timestamp,
) -> Db<Vec<MessageId>> {
    let keys: Vec<String> = c
        .prepare_cached(
            "SELECT group_key FROM message_parts
             WHERE message_id IS NULL AND direction = 'inbound' AND group_key IS NOT NULL
             GROUP BY group_key HAVING min(received_at) <= ?1
             ORDER BY min(id)",
        )?
        .query_map([sql_time(older_than)], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let now = sql_time(now);
    keys.iter()
        .map(|key| assemble(c, key, &now).map(MessageId))
        .collect()
}

fn sim_copy_from_row(row: &rusqlite::Row<'_>, kind: SimCopyKind) -> rusqlite::Result<SimCopy> {
    Ok(SimCopy {
        storage: row.get(0)?,
        slot: row.get(1)?,
        fingerprint: Fingerprint(row.get(2)?),
        message_id: row.get::<_, Option<i64>>(3)?.map(MessageId),
        kind,
    })
}

/// SIM copies on `modem` whose rows are committed and that `policy` says may go.
pub(crate) fn sim_deletions_due(
    c: &Connection,
    modem: &ModemId,
    policy: DeletePolicy,
) -> Db<Vec<SimCopy>> {
    let on_store = policy == DeletePolicy::OnStore;
    // Under on_read a copy goes once its message is no longer unread (or was deleted by
    // someone); parts still waiting for their group stay until the group is a message.
    let mut copies: Vec<SimCopy> = c
        .prepare_cached(
            "SELECT p.sim_storage, p.sim_slot, p.fingerprint, p.message_id
             FROM message_parts p LEFT JOIN messages m ON m.id = p.message_id
             WHERE p.modem_id = ?1 AND p.sim_slot IS NOT NULL AND p.direction = 'inbound'
               AND p.fingerprint IS NOT NULL
               AND (?2 OR (p.message_id IS NOT NULL AND (m.id IS NULL OR m.status != 'unread')))
             ORDER BY p.sim_storage, p.sim_slot",
        )?
        .query_map(rusqlite::params![modem.as_str(), on_store], |row| {
            sim_copy_from_row(row, SimCopyKind::MessagePart)
        })?
        .collect::<Result<_, _>>()?;
    copies.extend(reports_on_sim(c, modem, None)?);
    Ok(copies)
}

fn reports_on_sim(c: &Connection, modem: &ModemId, limit: Option<usize>) -> Db<Vec<SimCopy>> {
    let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    Ok(c.prepare_cached(
        "SELECT sim_storage, sim_slot, fingerprint, message_id FROM delivery_reports
             WHERE modem_id = ?1 AND sim_slot IS NOT NULL AND fingerprint IS NOT NULL
             ORDER BY id LIMIT ?2",
    )?
    .query_map(rusqlite::params![modem.as_str(), limit], |row| {
        sim_copy_from_row(row, SimCopyKind::StatusReport)
    })?
    .collect::<Result<_, _>>()?)
}

/// Up to `n` committed copies on `modem`, the ones to free first when the SIM fills up: status
/// reports (useless once stored), then messages oldest first, read or not.
pub(crate) fn oldest_sim_copies(c: &Connection, modem: &ModemId, n: usize) -> Db<Vec<SimCopy>> {
    let mut copies = reports_on_sim(c, modem, Some(n))?;
    let rest = i64::try_from(n.saturating_sub(copies.len())).unwrap_or(i64::MAX);
    let parts: Vec<SimCopy> = c
        .prepare_cached(
            "SELECT sim_storage, sim_slot, fingerprint, message_id FROM message_parts
             WHERE modem_id = ?1 AND sim_slot IS NOT NULL AND direction = 'inbound'
               AND fingerprint IS NOT NULL
             ORDER BY received_at, id LIMIT ?2",
        )?
        .query_map(rusqlite::params![modem.as_str(), rest], |row| {
            sim_copy_from_row(row, SimCopyKind::MessagePart)
        })?
        .collect::<Result<_, _>>()?;
    copies.extend(parts);
    Ok(copies)
}

/// Records that the copy in (`storage`, `slot`) with `fingerprint` is gone from the SIM.
/// Returns false when no stored copy matched (already recorded, or never stored).
pub(crate) fn sim_copy_deleted(
    c: &Connection,
    modem: &ModemId,
    storage: &str,
    slot: u32,
    fingerprint: &Fingerprint,
    now: jiff::Timestamp,
) -> Db<bool> {
    let now = sql_time(now);
    let message: Option<Option<i64>> = c
        .prepare_cached(
            "UPDATE message_parts SET sim_slot = NULL, updated_at = ?5
             WHERE modem_id = ?1 AND sim_storage = ?2 AND sim_slot = ?3 AND fingerprint = ?4
             RETURNING message_id",
        )?
        .query_row(
            rusqlite::params![modem.as_str(), storage, slot, fingerprint.as_str(), now],
            |row| row.get(0),
        )
        .optional()?;
    match message {
        Some(Some(message_id)) => {
            c.prepare_cached(
                "UPDATE messages SET
                     modem_index = (SELECT sim_slot FROM message_parts
                                    WHERE message_id = ?1 AND direction = 'inbound'
                                      AND sim_slot IS NOT NULL
                                    ORDER BY seq, id LIMIT 1),
                     updated_at = ?2, revision = revision + 1
                 WHERE id = ?1",
            )?
            .execute(rusqlite::params![message_id, now])?;
            event(
                c,
                &now,
                "sim_deleted",
                Some(message_id),
                Some(modem.as_str()),
                Some(json!({ "storage": storage, "slot": slot })),
            )?;
            Ok(true)
        }
        Some(None) => Ok(true),
        None => {
            let changed = c
                .prepare_cached(
                    "UPDATE delivery_reports SET sim_slot = NULL
                     WHERE modem_id = ?1 AND sim_storage = ?2 AND sim_slot = ?3
                       AND fingerprint = ?4",
                )?
                .execute(rusqlite::params![
                    modem.as_str(),
                    storage,
                    slot,
                    fingerprint.as_str()
                ])?;
            Ok(changed > 0)
        }
    }
}

/// Marks `unread` inbound rows `read`; returns the ids that changed.
pub(crate) fn mark_read(
    c: &Connection,
    ids: &[MessageId],
    now: jiff::Timestamp,
) -> Db<Vec<MessageId>> {
    let now = sql_time(now);
    let mut changed = Vec::new();
    for id in ids {
        let n = c
            .prepare_cached(
                "UPDATE messages SET status = 'read', updated_at = ?2, revision = revision + 1
                 WHERE id = ?1 AND direction = 'inbound' AND status = 'unread'",
            )?
            .execute(rusqlite::params![id.0, now])?;
        if n > 0 {
            event(c, &now, "read", Some(id.0), None, None)?;
            changed.push(*id);
        }
    }
    Ok(changed)
}
