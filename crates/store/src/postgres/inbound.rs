//! Inbound messages on PostgreSQL: single SMS, the SIM copy lifecycle and `mark-read`. A port
//! of `crate::sqlite::inbound` (see there for the design).
//!
//! Stored once (promise 2) across nodes: the `fingerprint` columns are UNIQUE, and the insert
//! is `ON CONFLICT DO NOTHING`, so two nodes storing the same copy at once (a modem handed
//! over mid-read) make one row; the second gets the first's id.
//!
//! Not ported yet: long-message reassembly (`store_part`, `flush_incomplete`) and undecodable
//! PDUs; `crate::Store` returns [`crate::StoreError::NotOnPostgres`] for them.

use serde_json::json;

use super::{Db, Tx, at, event};
use crate::error::StoreError;
use crate::fingerprint::Fingerprint;
use crate::model::{DeletePolicy, InboundSms, SimCopy, SimCopyKind, Stored};
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
