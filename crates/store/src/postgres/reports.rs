//! Status reports on PostgreSQL: recorded always, matched to the part they report on when
//! possible. A port of `crate::sqlite::reports` (the matching rules are in `crate::reports`).

use serde_json::json;

use super::outbound::settle;
use super::{Db, Tx, at, event, status_of};
use crate::model::{ReportOutcome, StatusReportIn};
use crate::types::MessageId;

/// Records a status report and applies it to the matching part and message.
pub(crate) async fn record(tx: &Tx<'_>, report: &StatusReportIn) -> Db<ReportOutcome> {
    let now = at(report.received_at);
    if let Some(sim) = &report.sim
        && let Some(row) = tx
            .query_opt(
                "SELECT r.id, r.message_id, p.seq FROM delivery_reports r
                 LEFT JOIN message_parts p ON p.id = r.part_id
                 WHERE r.fingerprint = $1",
                &[&sim.fingerprint.as_str()],
            )
            .await?
    {
        let message_id: Option<i64> = row.get(1);
        let message_status = match message_id {
            Some(id) => Some(status_of(tx, id).await?),
            None => None,
        };
        return Ok(ReportOutcome {
            report_id: row.get(0),
            newly_recorded: false,
            message_id: message_id.map(MessageId),
            part_seq: row
                .get::<_, Option<i64>>(2)
                .and_then(|s| u8::try_from(s).ok()),
            message_status,
        });
    }

    // Locked, so a report and a retry of the same part on another node apply in turn.
    let candidates: Vec<(i64, i64, i64, Option<String>)> = tx
        .query(
            "SELECT id, message_id, seq, recipient_key FROM message_parts
             WHERE direction = 'outbound' AND modem_id = $1 AND message_ref = $2
               AND state = 'sent' AND report_requested AND message_id IS NOT NULL
             ORDER BY sent_at DESC, id DESC LIMIT 64 FOR UPDATE",
            &[&report.modem_id.as_str(), &i64::from(report.message_ref)],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    let matched = crate::reports::matching(&candidates, &report.recipient);
    let report_id: i64 = tx
        .query_one(
            "INSERT INTO delivery_reports (received_at, modem_id, message_ref, recipient,
                 status_code, category, discharge_time, raw_pdu, part_id, message_id, fingerprint,
                 sim_storage, sim_slot)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             RETURNING id",
            &[
                &now,
                &report.modem_id.as_str(),
                &i64::from(report.message_ref),
                &report.recipient,
                &i64::from(report.status_code),
                &report.category.as_str(),
                &report.discharge_time,
                &report.raw_pdu,
                &matched.map(|m| m.0),
                &matched.map(|m| m.1),
                &report.sim.as_ref().map(|s| s.fingerprint.as_str()),
                &report.sim.as_ref().map(|s| s.storage.as_str()),
                &report.sim.as_ref().map(|s| i64::from(s.slot)),
            ],
        )
        .await?
        .get(0);
    let Some(&(part_id, message_id, seq, _)) = matched else {
        event(
            tx,
            now,
            "report_unmatched",
            None,
            Some(report.modem_id.as_str()),
            Some(json!({
                "message_ref": report.message_ref,
                "recipient": report.recipient,
                "status": report.status_code,
            })),
        )
        .await?;
        return Ok(ReportOutcome {
            report_id,
            newly_recorded: true,
            message_id: None,
            part_seq: None,
            message_status: None,
        });
    };
    let (state, reason, description) = crate::reports::applied(report, seq);
    tx.execute(
        "UPDATE message_parts SET state = $2, report_status = $3, reported_at = $4,
             reason = coalesce($5, reason), updated_at = $4
         WHERE id = $1",
        &[
            &part_id,
            &state,
            &i64::from(report.status_code),
            &now,
            &reason,
        ],
    )
    .await?;
    event(
        tx,
        now,
        "status_report",
        Some(message_id),
        Some(report.modem_id.as_str()),
        Some(json!({
            "seq": seq,
            "status": report.status_code,
            "category": report.category.as_str(),
            "description": description,
        })),
    )
    .await?;
    let message_status = settle(tx, message_id, now).await?;
    Ok(ReportOutcome {
        report_id,
        newly_recorded: true,
        message_id: Some(MessageId(message_id)),
        part_seq: u8::try_from(seq).ok(),
        message_status: Some(message_status),
    })
}
