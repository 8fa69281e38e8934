//! Status reports: recorded always, matched to the part they report on when possible.
//!
//! Matching (DESIGN.md "Sending"): same modem, same TP-MR, same recipient, and the most recent
//! part that still waits for a report. TP-MR is one octet and wraps at 256, so an old part that
//! never got its report may share the reference with a new one; preferring the newest waiting
//! part makes the wrap harmless. The recipient is compared in normalised form
//! ([`normalize_number`]); when no waiting part has exactly that form (a network reporting
//! `+49171…` for a message queued as `0171…`), the last nine digits decide.

use rusqlite::{Connection, OptionalExtension};
use serde_json::json;

use super::outbound::settle;
use super::{Db, event, status_of};
use crate::model::{ReportCategory, ReportOutcome, StatusReportIn};
use crate::types::{MessageId, normalize_number, sql_time};

/// Digits compared when the recipient's two forms differ (national vs international).
const SUFFIX_DIGITS: usize = 9;

fn digits_suffix(number: &str) -> Option<String> {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= SUFFIX_DIGITS).then(|| digits[digits.len() - SUFFIX_DIGITS..].iter().collect())
}

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

    let key = normalize_number(&report.recipient);
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
    let exact = candidates
        .iter()
        .find(|c| c.3.as_deref() == Some(key.as_str()));
    let matched = exact.or_else(|| {
        let suffix = digits_suffix(&key)?;
        candidates
            .iter()
            .find(|c| c.3.as_deref().and_then(digits_suffix).as_deref() == Some(suffix.as_str()))
    });

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

    let description = report
        .description
        .clone()
        .unwrap_or_else(|| report.category.as_str().to_owned());
    let (state, reason) = match report.category {
        // Still waiting: the SC keeps trying and will report again.
        ReportCategory::Pending => ("sent", None),
        ReportCategory::Delivered => ("delivered", None),
        ReportCategory::Failed => (
            "failed",
            Some(format!(
                "not delivered: {description} (status report TP-ST 0x{:02X}, part {seq})",
                report.status_code
            )),
        ),
    };
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
