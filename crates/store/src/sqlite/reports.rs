//! Status reports: recorded always, matched to the part they report on when possible.
//!
//! The matching rules and what a report does to a part are in `crate::reports`.

use rusqlite::{Connection, OptionalExtension};
use serde_json::json;

use super::outbound::settle;
use super::{Db, event, status_of};
use crate::model::{ReportOutcome, StatusReportIn};
use crate::types::{MessageId, sql_time};

/// Records a status report and applies it to the matching part and message.
pub(crate) fn record(c: &Connection, report: &StatusReportIn) -> Db<ReportOutcome> {
    let now = sql_time(report.received_at);
    if let Some(sim) = &report.sim {
        let known: Option<(i64, Option<i64>, Option<u8>)> = c
            .prepare_cached(
                "SELECT r.id, r.message_id, p.seq FROM delivery_reports r
                 LEFT JOIN message_parts p ON p.id = r.part_id
                 WHERE r.fingerprint = ?1",
            )?
            .query_row([sim.fingerprint.as_str()], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        if let Some((report_id, message_id, part_seq)) = known {
            let message_status = match message_id {
                Some(id) => Some(status_of(c, id)?),
                None => None,
            };
            return Ok(ReportOutcome {
                report_id,
                newly_recorded: false,
                message_id: message_id.map(MessageId),
                part_seq,
                message_status,
            });
        }
    }

    let candidates: Vec<(i64, i64, u8, Option<String>)> = c
        .prepare_cached(
            "SELECT id, message_id, seq, recipient_key FROM message_parts
             WHERE direction = 'outbound' AND modem_id = ?1 AND message_ref = ?2
               AND state = 'sent' AND report_requested = 1 AND message_id IS NOT NULL
             ORDER BY sent_at DESC, id DESC LIMIT 64",
        )?
        .query_map(
            rusqlite::params![report.modem_id.as_str(), report.message_ref],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    let matched = crate::reports::matching(&candidates, &report.recipient);

    c.prepare_cached(
        "INSERT INTO delivery_reports (received_at, modem_id, message_ref, recipient, status_code,
             category, discharge_time, raw_pdu, part_id, message_id, fingerprint, sim_storage,
             sim_slot)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(rusqlite::params![
        now,
        report.modem_id.as_str(),
        report.message_ref,
        report.recipient,
        report.status_code,
        report.category.as_str(),
        report.discharge_time,
        report.raw_pdu,
        matched.map(|m| m.0),
        matched.map(|m| m.1),
        report.sim.as_ref().map(|s| s.fingerprint.as_str()),
        report.sim.as_ref().map(|s| s.storage.as_str()),
        report.sim.as_ref().map(|s| s.slot),
    ])?;
    let report_id = c.last_insert_rowid();

    let Some(&(part_id, message_id, seq, _)) = matched else {
        event(
            c,
            &now,
            "report_unmatched",
            None,
            Some(report.modem_id.as_str()),
            Some(json!({
                "message_ref": report.message_ref,
                "recipient": report.recipient,
                "status": report.status_code,
            })),
        )?;
        return Ok(ReportOutcome {
            report_id,
            newly_recorded: true,
            message_id: None,
            part_seq: None,
            message_status: None,
        });
    };

    let (state, reason, description) = crate::reports::applied(report, seq);
    c.prepare_cached(
        "UPDATE message_parts SET state = ?2, report_status = ?3, reported_at = ?4,
             reason = coalesce(?5, reason), updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        part_id,
        state,
        report.status_code,
        now,
        reason
    ])?;
    event(
        c,
        &now,
        "status_report",
        Some(message_id),
        Some(report.modem_id.as_str()),
        Some(json!({
            "seq": seq,
            "status": report.status_code,
            "category": report.category.as_str(),
            "description": description,
        })),
    )?;
    let message_status = settle(c, message_id, &now)?;
    Ok(ReportOutcome {
        report_id,
        newly_recorded: true,
        message_id: Some(MessageId(message_id)),
        part_seq: Some(seq),
        message_status: Some(message_status),
    })
}
