//! Inbound messages on PostgreSQL: single SMS, the SIM copy lifecycle and `mark-read`. A port
//! of `crate::sqlite::inbound` (see there for the design).
//!
//! Stored once (promise 2) across nodes: the `fingerprint` columns are UNIQUE, and the insert
//! is `ON CONFLICT DO NOTHING`, so two nodes storing the same copy at once (a modem handed
//! over mid-read) make one row; the second gets the first's id.
//!
//! Long messages are reassembled in the database as on SQLite (parts wait in `message_parts`
//! with no message until the group is complete or flushed). What SQLite's single writer gives
//! for free is made explicit here: every step on a group (store a part, flush it) first takes a
//! transaction-scoped advisory lock on the group key, so two nodes (a modem handed over
//! mid-message) or the flush timer and a late part never assemble one group twice.

use std::time::{Duration, SystemTime};

use serde_json::json;

use super::{Db, Tx, at, event};
use crate::error::StoreError;
use crate::fingerprint::Fingerprint;
use crate::model::{
    DeletePolicy, InboundPart, InboundSms, PartOutcome, SimCopy, SimCopyKind, Stored, StoredPart,
    UndecodablePdu,
};
use crate::reassembly::{self, Arrival};
use crate::types::{MessageId, ModemId, parse_sql_time};

/// A stored message part's fingerprint: `Some(message)` when stored (`None` inside: a part
/// still waiting for its group).
async fn known_fingerprint(tx: &Tx<'_>, fingerprint: &Fingerprint) -> Db<Option<Option<i64>>> {
    Ok(tx
        .query_opt(
            "SELECT message_id FROM message_parts WHERE fingerprint = $1",
            &[&fingerprint.as_str()],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Stores a single-part SMS; a fingerprint seen before returns the existing row.
pub(crate) async fn store_single(tx: &Tx<'_>, sms: &InboundSms) -> Db<Stored> {
    let existing = |id: Option<i64>| match id {
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
    if let Some(id) = known_fingerprint(tx, &sms.fingerprint).await? {
        return existing(id);
    }
    let now = at(sms.received_at);
    let timestamp = sms
        .smsc_timestamp
        .as_deref()
        .and_then(parse_sql_time)
        .map(at)
        .unwrap_or(now);
    let inserted = tx
        .query_opt(
            "INSERT INTO messages (phone_number, content, timestamp, status, direction,
                 modem_index, created_at, updated_at, modem_id, sim_storage, smsc_timestamp,
                 encoding, fingerprint, raw_pdu, message_class, source)
             VALUES ($1, $2, $3, 'unread', 'inbound', $4, $5, $5, $6, $7, $8, $9, $10, $11, $12,
                 'modem')
             ON CONFLICT (fingerprint) DO NOTHING
             RETURNING id",
            &[
                &sms.sender,
                &sms.text,
                &timestamp,
                &i64::from(sms.sim_slot),
                &now,
                &sms.modem_id.as_str(),
                &sms.sim_storage,
                &sms.smsc_timestamp,
                &sms.encoding,
                &sms.fingerprint.as_str(),
                &sms.raw_pdu,
                &sms.message_class.map(i64::from),
            ],
        )
        .await?;
    let Some(row) = inserted else {
        // Another node committed the same copy between our check and our insert.
        let id: Option<i64> = tx
            .query_opt(
                "SELECT id FROM messages WHERE fingerprint = $1",
                &[&sms.fingerprint.as_str()],
            )
            .await?
            .map(|row| row.get(0));
        return existing(id);
    };
    let id: i64 = row.get(0);
    tx.execute(
        "INSERT INTO message_parts (message_id, direction, seq, total, fingerprint, modem_id,
             sim_storage, sim_slot, sender, smsc_timestamp, encoding, message_class, text, pdu,
             received_at, created_at, updated_at)
         VALUES ($1, 'inbound', 1, 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12)",
        &[
            &id,
            &sms.fingerprint.as_str(),
            &sms.modem_id.as_str(),
            &sms.sim_storage,
            &i64::from(sms.sim_slot),
            &sms.sender,
            &sms.smsc_timestamp,
            &sms.encoding,
            &sms.message_class.map(i64::from),
            &sms.text,
            &sms.raw_pdu,
            &now,
        ],
    )
    .await?;
    event(
        tx,
        now,
        "received",
        Some(id),
        Some(sms.modem_id.as_str()),
        Some(json!({ "storage": sms.sim_storage, "slot": sms.sim_slot })),
    )
    .await?;
    Ok(Stored {
        id: MessageId(id),
        newly_created: true,
    })
}

/// Inserts one `message_parts` row for an inbound copy.
async fn insert_part(
    tx: &Tx<'_>,
    sms: &InboundSms,
    message_id: Option<i64>,
    seq: u8,
    total: u8,
    concat: Option<(u16, u8)>,
    group_key: Option<&str>,
) -> Db<i64> {
    let now = at(sms.received_at);
    let row = tx
        .query_one(
            "INSERT INTO message_parts (message_id, direction, seq, total, concat_ref, ref_bits,
                 group_key, fingerprint, modem_id, sim_storage, sim_slot, sender, smsc_timestamp,
                 encoding, message_class, text, pdu, received_at, created_at, updated_at)
             VALUES ($1, 'inbound', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                 $16, $17, $17, $17)
             RETURNING id",
            &[
                &message_id,
                &i64::from(seq),
                &i64::from(total),
                &concat.map(|(r, _)| i64::from(r)),
                &concat.map(|(_, bits)| i64::from(bits)),
                &group_key,
                &sms.fingerprint.as_str(),
                &sms.modem_id.as_str(),
                &sms.sim_storage,
                &i64::from(sms.sim_slot),
                &sms.sender,
                &sms.smsc_timestamp,
                &sms.encoding,
                &sms.message_class.map(i64::from),
                &sms.text,
                &sms.raw_pdu,
                &now,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Stores a PDU that could not be decoded: an `unread` inbound row with empty content, the raw
/// PDU and the reason, so a person sees it and it is never lost or re-read forever.
pub(crate) async fn store_undecodable(tx: &Tx<'_>, pdu: &UndecodablePdu) -> Db<Stored> {
    if let Some(Some(id)) = known_fingerprint(tx, &pdu.fingerprint).await? {
        return Ok(Stored {
            id: MessageId(id),
            newly_created: false,
        });
    }
    let now = at(pdu.received_at);
    let reason = format!("undecodable PDU: {}", pdu.reason);
    let inserted = tx
        .query_opt(
            "INSERT INTO messages (phone_number, content, timestamp, status, direction,
                 modem_index, created_at, updated_at, modem_id, sim_storage, fingerprint, raw_pdu,
                 reason, source)
             VALUES ($1, '', $2, 'unread', 'inbound', $3, $2, $2, $4, $5, $6, $7, $8, 'modem')
             ON CONFLICT (fingerprint) DO NOTHING
             RETURNING id",
            &[
                &pdu.sender.as_deref().unwrap_or(""),
                &now,
                &i64::from(pdu.sim_slot),
                &pdu.modem_id.as_str(),
                &pdu.sim_storage,
                &pdu.fingerprint.as_str(),
                &pdu.raw_pdu,
                &reason,
            ],
        )
        .await?;
    let Some(row) = inserted else {
        // Another node stored the same copy between our check and our insert.
        let id: i64 = tx
            .query_one(
                "SELECT id FROM messages WHERE fingerprint = $1",
                &[&pdu.fingerprint.as_str()],
            )
            .await?
            .get(0);
        return Ok(Stored {
            id: MessageId(id),
            newly_created: false,
        });
    };
    let id: i64 = row.get(0);
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
    insert_part(tx, &as_sms, Some(id), 1, 1, None, None).await?;
    event(
        tx,
        now,
        "undecodable",
        Some(id),
        Some(pdu.modem_id.as_str()),
        Some(json!({ "reason": pdu.reason, "storage": pdu.sim_storage, "slot": pdu.sim_slot })),
    )
    .await?;
    Ok(Stored {
        id: MessageId(id),
        newly_created: true,
    })
}

/// Waits until no other transaction works on group `key`, and keeps others out until this
/// one ends (see the module docs).
async fn lock_group(tx: &Tx<'_>, key: &str) -> Db<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('conductor-group:' || $1, 0))",
        &[&key],
    )
    .await?;
    Ok(())
}

/// Stores one part of a long message and reassembles it when it is complete.
pub(crate) async fn store_part(
    tx: &Tx<'_>,
    part: &InboundPart,
    late_part_window: Duration,
) -> Db<StoredPart> {
    let concat = part.concat;
    reassembly::check_part_number(concat)?;
    let sms = &part.sms;
    let key = reassembly::group_key(part);
    lock_group(tx, &key).await?;
    if let Some(message_id) = known_fingerprint(tx, &sms.fingerprint).await? {
        return Ok(StoredPart {
            outcome: PartOutcome::Duplicate {
                message_id: message_id.map(MessageId),
            },
            flushed: None,
        });
    }
    let concat_info = Some((concat.reference, concat.ref_bits));
    let now = at(sms.received_at);

    // Parts of this group still waiting, and the text of this part number among them.
    let row = tx
        .query_one(
            "SELECT count(*),
                    (SELECT text FROM message_parts
                     WHERE group_key = $1 AND message_id IS NULL AND direction = 'inbound'
                       AND seq = $2 ORDER BY id LIMIT 1)
             FROM message_parts
             WHERE group_key = $1 AND message_id IS NULL AND direction = 'inbound'",
            &[&key, &i64::from(concat.seq)],
        )
        .await?;
    let waiting: i64 = row.get(0);
    let same_seq: Option<String> = row.get(1);

    let mut flushed = None;
    match reassembly::arrival(waiting, same_seq.as_deref(), &sms.text) {
        Arrival::FlushWaiting => {
            flushed = Some(MessageId(assemble(tx, &key, now).await?));
        }
        Arrival::Join => {}
        Arrival::Late => {
            if let Some(stored) = add_late_part(tx, part, &key, late_part_window).await? {
                return Ok(stored);
            }
        }
    }

    insert_part(
        tx,
        sms,
        None,
        concat.seq,
        concat.total,
        concat_info,
        Some(&key),
    )
    .await?;
    let have: i64 = tx
        .query_one(
            "SELECT count(DISTINCT seq) FROM message_parts
             WHERE group_key = $1 AND message_id IS NULL AND direction = 'inbound'",
            &[&key],
        )
        .await?
        .get(0);
    let have = u8::try_from(have).unwrap_or(u8::MAX);
    let outcome = if have >= concat.total {
        PartOutcome::Completed {
            id: MessageId(assemble(tx, &key, now).await?),
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
async fn add_late_part(
    tx: &Tx<'_>,
    part: &InboundPart,
    key: &str,
    late_part_window: Duration,
) -> Db<Option<StoredPart>> {
    let (sms, concat) = (&part.sms, part.concat);
    let cutoff =
        at(reassembly::late_cutoff(sms.received_at, late_part_window)
            .unwrap_or(jiff::Timestamp::MIN));
    let message_id: Option<i64> = tx
        .query_opt(
            "SELECT DISTINCT p.message_id FROM message_parts p
             JOIN messages m ON m.id = p.message_id
             WHERE p.group_key = $1 AND p.direction = 'inbound' AND m.incomplete
               AND m.created_at >= $2
               AND NOT EXISTS (SELECT 1 FROM message_parts q
                               WHERE q.message_id = p.message_id AND q.seq = $3)
             ORDER BY p.message_id DESC LIMIT 1",
            &[&key, &cutoff, &i64::from(concat.seq)],
        )
        .await?
        .map(|row| row.get(0));
    let Some(message_id) = message_id else {
        return Ok(None);
    };
    let now = at(sms.received_at);
    let concat_info = Some((concat.reference, concat.ref_bits));
    insert_part(
        tx,
        sms,
        Some(message_id),
        concat.seq,
        concat.total,
        concat_info,
        Some(key),
    )
    .await?;
    let (have, complete) = refresh_multipart(tx, message_id, now).await?;
    let (stored, what) = reassembly::late_outcome(message_id, have, complete, concat);
    event(
        tx,
        now,
        what,
        Some(message_id),
        Some(sms.modem_id.as_str()),
        Some(json!({ "seq": concat.seq, "total": concat.total })),
    )
    .await?;
    Ok(Some(stored))
}

/// Turns the waiting parts of group `key` into one `messages` row (complete or not). The
/// caller holds the group's lock and has seen at least one waiting part.
async fn assemble(tx: &Tx<'_>, key: &str, now: SystemTime) -> Db<i64> {
    // The row is created from the lowest-numbered part, then filled in by the refresh.
    let first = tx
        .query_one(
            "SELECT sender, smsc_timestamp, encoding, message_class, modem_id, sim_storage,
                    fingerprint, received_at, total
             FROM message_parts
             WHERE group_key = $1 AND message_id IS NULL AND direction = 'inbound'
             ORDER BY seq, id LIMIT 1",
            &[&key],
        )
        .await?;
    let sender: Option<String> = first.get(0);
    let smsc: Option<String> = first.get(1);
    let encoding: Option<String> = first.get(2);
    let class: Option<i64> = first.get(3);
    let modem: Option<String> = first.get(4);
    let storage: Option<String> = first.get(5);
    let fingerprint: Option<String> = first.get(6);
    let received_at: Option<SystemTime> = first.get(7);
    let total: i64 = first.get(8);
    let timestamp = smsc
        .as_deref()
        .and_then(parse_sql_time)
        .map(at)
        .or(received_at)
        .unwrap_or(now);
    let id: i64 = tx
        .query_one(
            "INSERT INTO messages (phone_number, content, timestamp, status, direction,
                 created_at, updated_at, modem_id, sim_storage, smsc_timestamp, encoding,
                 fingerprint, message_class, parts_total, parts_received, source)
             VALUES ($1, '', $2, 'unread', 'inbound', $3, $3, $4, $5, $6, $7, $8, $9, $10, 0,
                 'modem')
             RETURNING id",
            &[
                &sender.unwrap_or_default(),
                &timestamp,
                &now,
                &modem,
                &storage,
                &smsc,
                &encoding,
                &fingerprint,
                &class,
                &total,
            ],
        )
        .await?
        .get(0);
    tx.execute(
        "UPDATE message_parts SET message_id = $1, updated_at = $3
         WHERE group_key = $2 AND message_id IS NULL AND direction = 'inbound'",
        &[&id, &key, &now],
    )
    .await?;
    let (have, complete) = refresh_multipart(tx, id, now).await?;
    event(
        tx,
        now,
        reassembly::assembled_event(complete),
        Some(id),
        modem.as_deref(),
        Some(json!({ "parts": have, "total": total })),
    )
    .await?;
    Ok(id)
}

/// Recomputes a long inbound message's text, part counts, flag and `modem_index` from its
/// parts. Returns (distinct parts, complete).
async fn refresh_multipart(tx: &Tx<'_>, message_id: i64, now: SystemTime) -> Db<(u8, bool)> {
    // A number that does not fit a part number (none does over 255) matches no part: 0.
    let parts: Vec<(u8, u8, String, Option<i64>)> = tx
        .query(
            "SELECT seq, total, text, sim_slot FROM message_parts
             WHERE message_id = $1 AND direction = 'inbound' ORDER BY seq, id",
            &[&message_id],
        )
        .await?
        .iter()
        .map(|row| {
            (
                u8::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                u8::try_from(row.get::<_, i64>(1)).unwrap_or(u8::MAX),
                row.get(2),
                row.get(3),
            )
        })
        .collect();
    let joined = reassembly::join(&parts);
    tx.execute(
        "UPDATE messages SET content = $2, parts_total = $3, parts_received = $4,
             incomplete = $5, reason = $6, modem_index = $7, updated_at = $8,
             revision = revision + 1
         WHERE id = $1",
        &[
            &message_id,
            &joined.content,
            &i64::from(joined.total),
            &i64::from(joined.have),
            &!joined.complete,
            &joined.reason,
            &joined.modem_index,
            &now,
        ],
    )
    .await?;
    Ok((joined.have, joined.complete))
}

/// Stores every group whose first part arrived at or before `older_than` as an incomplete
/// message. A group another node (or a part) assembled meanwhile is skipped.
pub(crate) async fn flush_incomplete(
    tx: &Tx<'_>,
    older_than: jiff::Timestamp,
    now: jiff::Timestamp,
) -> Db<Vec<MessageId>> {
    let keys: Vec<String> = tx
        .query(
            "SELECT group_key FROM message_parts
             WHERE message_id IS NULL AND direction = 'inbound' AND group_key IS NOT NULL
             GROUP BY group_key HAVING min(received_at) <= $1
             ORDER BY min(id)",
            &[&at(older_than)],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let now = at(now);
    let mut flushed = Vec::with_capacity(keys.len());
    for key in keys {
        lock_group(tx, &key).await?;
        let still_waiting = tx
            .query_opt(
                "SELECT 1 FROM message_parts
                 WHERE group_key = $1 AND message_id IS NULL AND direction = 'inbound' LIMIT 1",
                &[&key],
            )
            .await?
            .is_some();
        if still_waiting {
            flushed.push(MessageId(assemble(tx, &key, now).await?));
        }
    }
    Ok(flushed)
}

fn sim_copy(row: &tokio_postgres::Row, kind: SimCopyKind) -> SimCopy {
    SimCopy {
        storage: row.get(0),
        slot: u32::try_from(row.get::<_, i64>(1)).unwrap_or(u32::MAX),
        fingerprint: Fingerprint(row.get(2)),
        message_id: row.get::<_, Option<i64>>(3).map(MessageId),
        kind,
    }
}

async fn reports_on_sim(tx: &Tx<'_>, modem: &ModemId, limit: Option<usize>) -> Db<Vec<SimCopy>> {
    let limit = limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    Ok(tx
        .query(
            "SELECT sim_storage, sim_slot, fingerprint, message_id FROM delivery_reports
             WHERE modem_id = $1 AND sim_slot IS NOT NULL AND fingerprint IS NOT NULL
             ORDER BY id LIMIT $2",
            &[&modem.as_str(), &limit],
        )
        .await?
        .iter()
        .map(|row| sim_copy(row, SimCopyKind::StatusReport))
        .collect())
}

/// SIM copies on `modem` whose rows are committed and that `policy` says may go.
pub(crate) async fn sim_deletions_due(
    tx: &Tx<'_>,
    modem: &ModemId,
    policy: DeletePolicy,
) -> Db<Vec<SimCopy>> {
    let on_store = policy == DeletePolicy::OnStore;
    let mut copies: Vec<SimCopy> = tx
        .query(
            "SELECT p.sim_storage, p.sim_slot, p.fingerprint, p.message_id
             FROM message_parts p LEFT JOIN messages m ON m.id = p.message_id
             WHERE p.modem_id = $1 AND p.sim_slot IS NOT NULL AND p.direction = 'inbound'
               AND p.fingerprint IS NOT NULL
               AND ($2 OR (p.message_id IS NOT NULL AND (m.id IS NULL OR m.status <> 'unread')))
             ORDER BY p.sim_storage, p.sim_slot",
            &[&modem.as_str(), &on_store],
        )
        .await?
        .iter()
        .map(|row| sim_copy(row, SimCopyKind::MessagePart))
        .collect();
    copies.extend(reports_on_sim(tx, modem, None).await?);
    Ok(copies)
}

/// Up to `n` committed copies on `modem` to free first when the SIM fills up.
pub(crate) async fn oldest_sim_copies(tx: &Tx<'_>, modem: &ModemId, n: usize) -> Db<Vec<SimCopy>> {
    let mut copies = reports_on_sim(tx, modem, Some(n)).await?;
    let rest = i64::try_from(n.saturating_sub(copies.len())).unwrap_or(i64::MAX);
    let parts: Vec<SimCopy> = tx
        .query(
            "SELECT sim_storage, sim_slot, fingerprint, message_id FROM message_parts
             WHERE modem_id = $1 AND sim_slot IS NOT NULL AND direction = 'inbound'
               AND fingerprint IS NOT NULL
             ORDER BY received_at, id LIMIT $2",
            &[&modem.as_str(), &rest],
        )
        .await?
        .iter()
        .map(|row| sim_copy(row, SimCopyKind::MessagePart))
        .collect();
    copies.extend(parts);
    Ok(copies)
}

/// Records that the copy in (`storage`, `slot`) with `fingerprint` is gone from the SIM.
pub(crate) async fn sim_copy_deleted(
    tx: &Tx<'_>,
    modem: &ModemId,
    storage: &str,
    slot: u32,
    fingerprint: &Fingerprint,
    now: jiff::Timestamp,
) -> Db<bool> {
    let now = at(now);
    let slot = i64::from(slot);
    let message: Option<Option<i64>> = tx
        .query_opt(
            "UPDATE message_parts SET sim_slot = NULL, updated_at = $5
             WHERE modem_id = $1 AND sim_storage = $2 AND sim_slot = $3 AND fingerprint = $4
             RETURNING message_id",
            &[
                &modem.as_str(),
                &storage,
                &slot,
                &fingerprint.as_str(),
                &now,
            ],
        )
        .await?
        .map(|row| row.get(0));
    match message {
        Some(Some(message_id)) => {
            tx.execute(
                "UPDATE messages SET
                     modem_index = (SELECT sim_slot FROM message_parts
                                    WHERE message_id = $1 AND direction = 'inbound'
                                      AND sim_slot IS NOT NULL
                                    ORDER BY seq, id LIMIT 1),
                     updated_at = $2, revision = revision + 1
                 WHERE id = $1",
                &[&message_id, &now],
            )
            .await?;
            event(
                tx,
                now,
                "sim_deleted",
                Some(message_id),
                Some(modem.as_str()),
                Some(json!({ "storage": storage, "slot": slot })),
            )
            .await?;
            Ok(true)
        }
        Some(None) => Ok(true),
        None => {
            let changed = tx
                .execute(
                    "UPDATE delivery_reports SET sim_slot = NULL
                     WHERE modem_id = $1 AND sim_storage = $2 AND sim_slot = $3
                       AND fingerprint = $4",
                    &[&modem.as_str(), &storage, &slot, &fingerprint.as_str()],
                )
                .await?;
            Ok(changed > 0)
        }
    }
}

/// Marks `unread` inbound rows `read`; returns the ids that changed.
pub(crate) async fn mark_read(
    tx: &Tx<'_>,
    ids: &[MessageId],
    now: jiff::Timestamp,
) -> Db<Vec<MessageId>> {
    let now = at(now);
    let mut changed = Vec::new();
    for id in ids {
        let n = tx
            .execute(
                "UPDATE messages SET status = 'read', updated_at = $2, revision = revision + 1
                 WHERE id = $1 AND direction = 'inbound' AND status = 'unread'",
                &[&id.0, &now],
            )
            .await?;
        if n > 0 {
            event(tx, now, "read", Some(id.0), None, None).await?;
            changed.push(*id);
        }
    }
    Ok(changed)
}
