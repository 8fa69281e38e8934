//! Retention on PostgreSQL (finding, exporting and deleting old messages), and the toolbox's
//! records (event-follower cursors, the import ledger). Ports of `crate::sqlite::retention`
//! and of the SQLite queries in `crate::toolbox`; see there for the rules.
//!
//! Online backups are not here: the server has its own tools (`pg_dump`), which copy a
//! consistent snapshot while every node keeps writing, and
//! [`crate::MaintenanceError::PostgresBackup`] says how to use them.
//!
//! A retention candidate remembers its `updated_at` as the server's exact text (with zone and
//! microseconds), so "unchanged since listed" compares the very instant, not a rounded one.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::json;

use super::{Db, Tx, at, event, parse_status};
use crate::maintenance::{RetentionCandidate, RetentionDeleted, RetentionRule};
use crate::model::MessageDetail;
use crate::toolbox::{ImportOutcome, ImportedMessage};
use crate::types::{MessageId, ModemId, parse_sql_time};

/// Nothing of the row is left on a SIM.
const OFF_THE_SIM: &str = "m.modem_index IS NULL
    AND NOT EXISTS (SELECT 1 FROM message_parts p WHERE p.message_id = m.id
                    AND p.sim_slot IS NOT NULL)
    AND NOT EXISTS (SELECT 1 FROM delivery_reports r WHERE r.message_id = m.id
                    AND r.sim_slot IS NOT NULL)";

/// Every row some rule names, by id (a row two rules name appears once).
pub(crate) async fn candidates(
    tx: &Tx<'_>,
    rules: &[RetentionRule],
) -> Db<Vec<RetentionCandidate>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for rule in rules {
        let statuses: Vec<&str> = rule.statuses().iter().map(|s| s.as_str()).collect();
        let rows = tx
            .query(
                &format!(
                    "SELECT m.id, m.status, m.revision, m.updated_at::text FROM messages m
                     WHERE m.direction = $1 AND m.status = ANY($3)
                       AND m.created_at < $2 AND m.updated_at < $2
                       AND {OFF_THE_SIM}
                     ORDER BY m.id"
                ),
                &[&rule.direction().as_str(), &at(rule.cutoff()), &statuses],
            )
            .await?;
        for row in rows {
            let id: i64 = row.get(0);
            if !seen.insert(id) {
                continue;
            }
            out.push(RetentionCandidate {
                id: MessageId(id),
                direction: rule.direction(),
                status: parse_status(id, row.get(1))?,
                revision: row.get(2),
                updated_at: row.get(3),
            });
        }
    }
    out.sort_by_key(|c| c.id);
    Ok(out)
}

/// The rows `ids` whole (parts, reports, history), for the export.
pub(crate) async fn details(tx: &Tx<'_>, ids: &[MessageId]) -> Db<Vec<MessageDetail>> {
    tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(detail) = super::query::message(tx, *id).await? {
            out.push(detail);
        }
    }
    Ok(out)
}

/// Deletes the candidates unchanged since they were listed, with their parts, delivery
/// reports and events. Each row is locked first, so a writer changing it meanwhile either
/// committed before (and the row is kept as changed) or waits for this transaction.
pub(crate) async fn delete(tx: &Tx<'_>, batch: &[RetentionCandidate]) -> Db<RetentionDeleted> {
    let mut outcome = RetentionDeleted::default();
    let unchanged = tx
        .prepare(&format!(
            "SELECT 1 FROM messages m
             WHERE m.id = $1 AND m.revision = $2 AND m.updated_at = $3::text::timestamptz
               AND m.status = $4 AND m.direction = $5 AND {OFF_THE_SIM}
             FOR UPDATE OF m"
        ))
        .await?;
    for candidate in batch {
        let still = tx
            .query_opt(
                &unchanged,
                &[
                    &candidate.id.0,
                    &candidate.revision,
                    &candidate.updated_at,
                    &candidate.status.as_str(),
                    &candidate.direction.as_str(),
                ],
            )
            .await?
            .is_some();
        if !still {
            outcome.changed += 1;
            continue;
        }
        let id = candidate.id.0;
        outcome.reports += tx
            .execute("DELETE FROM delivery_reports WHERE message_id = $1", &[&id])
            .await?;
        outcome.events += tx
            .execute("DELETE FROM events WHERE message_id = $1", &[&id])
            .await?;
        outcome.parts += tx
            .execute("DELETE FROM message_parts WHERE message_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM messages WHERE id = $1", &[&id])
            .await?;
        outcome.deleted.push(candidate.id);
    }
    Ok(outcome)
}

/// How far the events follower `name` has read.
pub(crate) async fn event_cursor(tx: &Tx<'_>, name: &str) -> Db<Option<i64>> {
    Ok(tx
        .query_opt(
            "SELECT last_event_id FROM event_cursors WHERE name = $1",
            &[&name],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Moves the events follower `name` to `last_event_id`.
pub(crate) async fn set_event_cursor(
    tx: &Tx<'_>,
    name: &str,
    last_event_id: i64,
    now: Timestamp,
) -> Db<()> {
    tx.execute(
        "INSERT INTO event_cursors (name, last_event_id, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET last_event_id = excluded.last_event_id,
             updated_at = excluded.updated_at",
        &[&name, &last_event_id, &at(now)],
    )
    .await?;
    Ok(())
}

async fn known(tx: &Tx<'_>, kind: &str, source: &str, item: &str) -> Db<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM imports WHERE source_kind = $1 AND source = $2 AND item = $3",
            &[&kind, &source, &item],
        )
        .await?
        .is_some())
}

/// Which of `items` of a source are in the import ledger.
pub(crate) async fn imported_items(
    tx: &Tx<'_>,
    kind: &str,
    source: &str,
    items: &[String],
) -> Db<Vec<bool>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(known(tx, kind, source, item).await?);
    }
    Ok(out)
}

/// A time an importer wrote in the contract's text form, as the server stores it (UTC). The
/// importers write times they parsed themselves, so an unreadable one is a bug there: it is
/// refused with the value named rather than stored as something else.
fn import_time(value: &str, field: &'static str) -> Db<std::time::SystemTime> {
    parse_sql_time(value).map(at).ok_or_else(|| {
        crate::StoreError::InvalidInput {
            field,
            reason: format!("{value:?} is not a time (write YYYY-MM-DD HH:MM:SS, UTC)"),
        }
        .into()
    })
}

/// Inserts the messages whose items are all new, with their ledger rows.
pub(crate) async fn import_messages(
    tx: &Tx<'_>,
    messages: &[ImportedMessage],
    now: Timestamp,
) -> Db<ImportOutcome> {
    let now = at(now);
    let mut outcome = ImportOutcome::default();
    for m in messages {
        let mut seen = false;
        for item in &m.items {
            seen |= known(tx, &m.source_kind, &m.source, item).await?;
        }
        if seen {
            outcome.already += 1;
            outcome.ids.push(None);
            continue;
        }
        let timestamp = import_time(&m.timestamp, "timestamp")?;
        let created = match &m.created_at {
            Some(t) => import_time(t, "created_at")?,
            None => timestamp,
        };
        let updated = match &m.updated_at {
            Some(t) => import_time(t, "updated_at")?,
            None => created,
        };
        let sent = m
            .sent_at
            .as_deref()
            .map(|t| import_time(t, "sent_at"))
            .transpose()?;
        let delivered = m
            .delivered_at
            .as_deref()
            .map(|t| import_time(t, "delivered_at"))
            .transpose()?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO messages (phone_number, content, timestamp, status, direction,
                     created_at, updated_at, revision, modem_id, reason, encoding, parts_total,
                     parts_received, incomplete, sent_at, delivered_at, source, allow_duplicate)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11, $12, $13, $14, $15,
                     $16, true)
                 RETURNING id",
                &[
                    &m.phone_number,
                    &m.content,
                    &timestamp,
                    &m.status.as_str(),
                    &m.direction.as_str(),
                    &created,
                    &updated,
                    &m.modem_id.as_ref().map(ModemId::as_str),
                    &m.reason,
                    &m.encoding,
                    &m.parts_total,
                    &m.parts_received,
                    &(m.parts_received < m.parts_total),
                    &sent,
                    &delivered,
                    &format!("import:{}", m.source_kind),
                ],
            )
            .await?
            .get(0);
        for item in &m.items {
            tx.execute(
                "INSERT INTO imports (source_kind, source, item, message_id, imported_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&m.source_kind, &m.source, item, &id, &now],
            )
            .await?;
        }
        event(
            tx,
            now,
            "imported",
            Some(id),
            m.modem_id.as_ref().map(ModemId::as_str),
            Some(json!({
                "source_kind": m.source_kind,
                "source": m.source,
                "items": m.items,
            })),
        )
        .await?;
        outcome.ids.push(Some(id));
    }
    Ok(outcome)
}
