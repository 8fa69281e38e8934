//! Status reports: `+CDS` (routed with the PDU, `<ds>`=1), `+CDSI` (stored, `<ds>`=2) and
//! reports found in a listing, all recorded with the store's
//! [`conductor_store::Store::record_status_report`], which matches them on (modem, TP-MR,
//! recipient) and moves the message to `delivered`/`failed`.
//!
//! Why the care with `+CDSI`: real modems lie about where they stored a report (docs/
//! real-modems.md: the Quectel EC25 announces `"SM"` and stores in `"SR"`; reading the
//! announced slot gives an empty answer or an unrelated message). So the announced memory is
//! read first, then "SR"; a slot counts only if it really holds an SMS-STATUS-REPORT, and
//! nothing is deleted here: deletion goes through [`crate::sim_lifecycle`], which re-reads the
//! slot and compares the report's fingerprint, so a slot holding something else is never
//! deleted.
//! Spec: TS 23.040 §9.2.2.3 (SMS-STATUS-REPORT), §9.2.3.15 (TP-ST); TS 27.005 §3.4.1.

use conductor_modem::StatusReportRouting;
use conductor_sms::StatusCategory;
use conductor_store::{ReportCategory, Status, StatusReportIn};
use tracing::{debug, info, warn};

use crate::fingerprint::{Content, decode_direct_report, identify};
use crate::inbound::{REPORT_MEMORY, Stored};
use crate::worker::ModemWorker;

/// The store's spelling of a TP-ST category.
pub(crate) fn category(status: conductor_sms::Status) -> ReportCategory {
    match status.category() {
        StatusCategory::Delivered => ReportCategory::Delivered,
        StatusCategory::Pending => ReportCategory::Pending,
        StatusCategory::Failed => ReportCategory::Failed,
    }
}

impl ModemWorker {
    /// Records a report and logs what it did to its message.
    pub(crate) async fn record_report(&mut self, report: StatusReportIn) -> Stored {
        let message_ref = report.message_ref;
        let outcome = match self.ctx.store.record_status_report(report).await {
            Ok(outcome) => outcome,
            Err(error) => {
                warn!(%error, message_ref, "could not record a status report; retried at the next read");
                return Stored::Skipped;
            }
        };
        if !outcome.newly_recorded {
            return Stored::Known;
        }
        match (outcome.message_id, outcome.message_status) {
            (Some(id), Some(Status::Delivered)) => {
                info!(id = id.0, "message #{id} delivered");
            }
            (Some(id), Some(Status::Failed)) => {
                warn!(id = id.0, "message #{id} was not delivered (status report)");
            }
            (Some(id), status) => {
                debug!(id = id.0, ?status, part = ?outcome.part_seq, "status report recorded");
            }
            (None, _) => {
                debug!(
                    message_ref,
                    "a status report matched no message waiting for one"
                );
            }
        }
        Stored::New
    }

    /// `+CDS`: the report came with its PDU and is on no slot.
    pub(crate) async fn record_direct_report(&mut self, pdu: &str, length: u32) {
        match decode_direct_report(pdu, length) {
            Ok(report) => {
                let report_in = StatusReportIn {
                    modem_id: self.id.clone(),
                    message_ref: report.message_ref,
                    recipient: report.recipient,
                    status_code: report.status.0,
                    category: category(report.status),
                    description: Some(report.status.meaning().to_owned()),
                    discharge_time: Some(report.discharge_time),
                    raw_pdu: Some(pdu.trim().to_owned()),
                    received_at: self.now(),
                    sim: None,
                };
                self.record_report(report_in).await;
            }
            Err(reason) => warn!(%reason, pdu, "could not decode a +CDS status report; ignored"),
        }
    }

    /// `+CDSI` (or Huawei's `+CMTI: "SR",n`): finds the report in the announced memory or in
    /// "SR", records it, then deletes what is due (the report, after a fingerprint re-read).
    pub(crate) async fn read_stored_report(&mut self, announced: &str, index: u32) {
        let mut memories = vec![announced.to_owned()];
        if !announced.eq_ignore_ascii_case(REPORT_MEMORY) {
            memories.push(REPORT_MEMORY.to_owned());
        }
        let iccid = self.iccid();
        let mut found = false;
        for memory in memories {
            if memory.is_empty() || !self.select_read_memory(&memory).await {
                continue;
            }
            let message = match self.counted(self.handle.read(index).await) {
                Ok(Some(message)) => message,
                Ok(None) => continue,
                Err(error) => {
                    debug!(%memory, index, %error, "could not read a status report slot");
                    continue;
                }
            };
            let read = identify(&iccid, &memory, index, &message.pdu, Some(message.length));
            if matches!(read.content, Content::Report(_)) {
                self.store_copy(read).await;
                found = true;
                break;
            }
            debug!(%memory, index, "the announced slot holds no status report; not touched");
        }
        self.restore_read_memory().await;
        if found {
            self.delete_due().await;
        } else {
            warn!(%announced, index, "a stored status report was announced but not found; the sweep looks again");
        }
    }

    /// Lists the status report memory during a sweep, where the modem stores reports there
    /// (`<ds>`=2), so a report whose `+CDSI` was lost is still recorded and deleted.
    pub(crate) async fn sweep_reports(&mut self) {
        let stored =
            self.state.borrow().settings.status_reports == Some(StatusReportRouting::Stored);
        let home_is_reports = self
            .home_memories
            .as_ref()
            .is_some_and(|m| m[0].eq_ignore_ascii_case(REPORT_MEMORY));
        if !stored || home_is_reports || self.report_memory_ok == Some(false) {
            return;
        }
        if !self.select_read_memory(REPORT_MEMORY).await {
            return;
        }
        let listed = self.counted(self.handle.list_messages().await);
        let iccid = self.iccid();
        match listed {
            Ok(entries) => {
                for entry in entries {
                    let read = identify(
                        &iccid,
                        REPORT_MEMORY,
                        entry.index,
                        &entry.pdu,
                        Some(entry.length),
                    );
                    if matches!(read.content, Content::Report(_)) {
                        self.store_copy(read).await;
                    }
                }
            }
            Err(error) => debug!(%error, "could not list the status report memory"),
        }
        self.restore_read_memory().await;
    }
}
