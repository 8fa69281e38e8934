//! Retention: finding old messages by direction and status, reading them whole for the export,
//! and deleting them with their parts, delivery reports and history.
//!
//! What is never touched, whatever the rules say:
//! - `unread`, `queued` and `sending` rows ([`crate::maintenance::RetentionRule::new`] refuses
//!   rules that name them).
//! - Rows with a copy still on a SIM: a message part or a status report with a slot, or
//!   `modem_index` set. Deleting such a row would break promise 2. The gateway re-reads the
//!   SIM copy, finds no fingerprint and stores it again as a new message.
//!
//! "Older than" means created *and* last changed before the cutoff, so a row requeued or read
//! last week is not removed because it was first written long ago. Times are compared as
//! text, which is exact for the SQL contract's `YYYY-MM-DD HH:MM:SS` form. A row an external
//! writer stamped in another form is compared by its characters.
//!
//! Deleting is done in batches the caller chooses, one short `BEGIN IMMEDIATE` transaction
//! each (DESIGN.md "Database"). A row whose `revision` or `updated_at` moved since it was
//! listed was changed by someone meanwhile. It is kept, counted as changed, and looked at
//! again on the next run.

use std::collections::BTreeSet;

use rusqlite::{Connection, params_from_iter};

use super::{Db, parse_status};
use crate::maintenance::{RetentionCandidate, RetentionDeleted, RetentionRule};
use crate::model::MessageDetail;
use crate::types::{MessageId, sql_time};

/// The conditions every candidate meets besides its rule's direction, statuses and cutoff:
/// nothing of it is left on a SIM.
const OFF_THE_SIM: &str = "m.modem_index IS NULL
    AND NOT EXISTS (SELECT 1 FROM message_parts p WHERE p.message_id = m.id
                    AND p.sim_slot IS NOT NULL)
    AND NOT EXISTS (SELECT 1 FROM delivery_reports r WHERE r.message_id = m.id
                    AND r.sim_slot IS NOT NULL)";

/// Every row some rule names, by id (a row two rules name appears once).
pub(crate) fn candidates(c: &Connection, rules: &[RetentionRule]) -> Db<Vec<RetentionCandidate>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for rule in rules {
        let statuses = rule.statuses();
        let placeholders = (0..statuses.len())
            .map(|i| format!("?{}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT m.id, m.status, m.revision, m.updated_at FROM messages m
             WHERE m.direction = ?1 AND m.status IN ({placeholders})
               AND m.created_at < ?2 AND m.updated_at < ?2
               AND {OFF_THE_SIM}
             ORDER BY m.id"
        );
        let cutoff = sql_time(rule.cutoff());
        let mut params: Vec<String> = vec![rule.direction().as_str().to_owned(), cutoff];
        params.extend(statuses.iter().map(|s| s.as_str().to_owned()));
        let rows: Vec<(i64, String, i64, String)> = c
            .prepare(&sql)?
            .query_map(params_from_iter(params), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, status, revision, updated_at) in rows {
            if !seen.insert(id) {
                continue;
            }
            out.push(RetentionCandidate {
                id: MessageId(id),
                direction: rule.direction(),
                status: parse_status(id, &status)?,
                revision,
                updated_at,
            });
        }
    }
    out.sort_by_key(|c| c.id);
    Ok(out)
}

/// The rows `ids` whole (parts, reports, history), for the export; ids that no longer exist
/// are left out.
pub(crate) fn details(c: &Connection, ids: &[MessageId]) -> Db<Vec<MessageDetail>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(detail) = super::query::message(c, *id)? {
            out.push(detail);
        }
    }
    Ok(out)
}

/// Deletes the candidates that are unchanged since they were listed, with their parts,
/// delivery reports and events. Runs inside the caller's one transaction.
pub(crate) fn delete(c: &Connection, batch: &[RetentionCandidate]) -> Db<RetentionDeleted> {
    let mut outcome = RetentionDeleted::default();
    let unchanged_sql = format!(
        "SELECT count(*) FROM messages m
         WHERE m.id = ?1 AND m.revision = ?2 AND m.updated_at = ?3 AND m.status = ?4
           AND m.direction = ?5 AND {OFF_THE_SIM}"
    );
    let mut unchanged = c.prepare(&unchanged_sql)?;
    let mut reports = c.prepare_cached("DELETE FROM delivery_reports WHERE message_id = ?1")?;
    let mut events = c.prepare_cached("DELETE FROM events WHERE message_id = ?1")?;
    let mut parts = c.prepare_cached("DELETE FROM message_parts WHERE message_id = ?1")?;
    let mut message = c.prepare_cached("DELETE FROM messages WHERE id = ?1")?;
    for candidate in batch {
        let still: i64 = unchanged.query_row(
            rusqlite::params![
                candidate.id.0,
                candidate.revision,
                candidate.updated_at,
                candidate.status.as_str(),
                candidate.direction.as_str(),
            ],
            |row| row.get(0),
        )?;
        if still == 0 {
            outcome.changed += 1;
            continue;
        }
        outcome.reports += reports.execute([candidate.id.0])? as u64;
        outcome.events += events.execute([candidate.id.0])? as u64;
        outcome.parts += parts.execute([candidate.id.0])? as u64;
        message.execute([candidate.id.0])?;
        outcome.deleted.push(candidate.id);
    }
    Ok(outcome)
}
