//! The inbound pipeline: `+CMTI` triggers an immediate read, a periodic sweep (`AT+CMGL=4`)
//! catches whatever no URC announced, and every copy read is committed with its fingerprint.
//!
//! Why both: URCs get lost (a modem that restarted, a line with noise, a gateway that was
//! down), so the sweep is the safety net DESIGN.md "Behaviour" asks for; the URC path gives
//! sub-second latency. Both go through [`ModemWorker::store_copy`], and the store's unique
//! fingerprint makes the second read of a copy a no-op (promise 2).
//!
//! Keeps promise 1: nothing here deletes. Deletions are listed by the store from committed
//! rows only and carried out by [`crate::sim_lifecycle`] after each store and each change.
//! Keeps promise 5: an undecodable PDU is stored raw with its reason.
//! Spec: TS 27.005 §3.4.1 (`+CMTI`, `+CDSI`, `+CMT`, `+CDS`), §3.4.2 (`+CMGL`), §3.4.3
//! (`+CMGR`).

use conductor_modem::Urc;
use conductor_store::{
    Concat, InboundPart, InboundSms, PartOutcome, StatusReportIn, StoreError, UndecodablePdu,
};
use tracing::{debug, info, warn};

use crate::fingerprint::{Content, SimRead, identify};
use crate::worker::ModemWorker;

/// How many sweep rounds one cycle runs at most while the capacity guard keeps freeing
/// slots (each round lists again what the network delivered into the freed slots).
const MAX_ROUNDS: usize = 20;

/// The memory where status reports are stored with `<ds>`=2.
pub(crate) const REPORT_MEMORY: &str = "SR";

/// What storing a copy did, for the caller's follow-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// A new row (or part, or report) was committed.
    New,
    /// The copy was stored before (a re-read).
    Known,
    /// Not stored: not ours (an SMS-SUBMIT), or the database refused it (retried later).
    Skipped,
}

impl ModemWorker {
    /// Handles one URC from the modem task.
    pub(crate) async fn on_urc(&mut self, urc: Urc) {
        match urc {
            Urc::MessageStored { storage, index } => {
                if storage.eq_ignore_ascii_case(REPORT_MEMORY) {
                    // Huawei 3G announces stored status reports as `+CMTI: "SR",n`.
                    self.read_stored_report(&storage, index).await;
                } else if self.is_read_memory(&storage) {
                    let memory = self.read_memory_name();
                    self.read_slot(&memory, index).await;
                } else if self.is_receive_memory(&storage) {
                    self.read_slot(&storage.to_ascii_uppercase(), index).await;
                } else {
                    // A memory the sweep does not list under this name (a combined memory's
                    // part, say): the sweep reads it, so a copy never gets two fingerprints
                    // (promise 2).
                    debug!(%storage, index, "message stored in another memory; sweeping");
                    self.sweep_cycle().await;
                }
            }
            Urc::StatusReportStored { storage, index } => {
                self.read_stored_report(&storage, index).await;
            }
            Urc::StatusReport {
                length,
                pdu: Some(pdu),
            } => self.record_direct_report(&pdu, length).await,
            Urc::StatusReport { pdu: None, .. } => {
                warn!("a +CDS status report came without its PDU line; it cannot be matched");
            }
            Urc::Message {
                length,
                pdu: Some(pdu),
                ..
            } => self.store_routed(&pdu, length).await,
            Urc::Message { pdu: None, .. } => {
                warn!("a +CMT message came without its PDU line; sweeping in case it was stored");
                self.sweep_cycle().await;
            }
            Urc::Malformed { line, .. } => {
                let upper = line.to_ascii_uppercase();
                if upper.starts_with("+CMTI") || upper.starts_with("+CDSI") {
                    // `+CMTI: ,-1` and friends: something arrived but the slot is unknown.
                    debug!(%line, "unreadable storage URC; sweeping");
                    self.sweep_cycle().await;
                } else {
                    debug!(%line, "unreadable URC ignored");
                }
            }
            other => debug!(urc = ?other, "URC not for the gateway"),
        }
    }

    /// Whether `storage` (from a URC) names the memory init chose for reading. An empty name
    /// or unknown memories count as yes.
    pub(crate) fn is_read_memory(&self, storage: &str) -> bool {
        storage.is_empty()
            || self
                .home_memories
                .as_ref()
                .is_none_or(|m| m[0].eq_ignore_ascii_case(storage))
    }

    /// Whether `storage` (from a URC) is the receive memory (`<mem3>`), when that is not the
    /// read memory: its copies are read with `<mem1>` switched to it for a moment.
    pub(crate) fn is_receive_memory(&self, storage: &str) -> bool {
        self.receive_memory()
            .is_some_and(|m| m.eq_ignore_ascii_case(storage))
    }

    /// The receive memory, when it is not the read memory.
    pub(crate) fn receive_memory(&self) -> Option<String> {
        let home = self.home_memories.as_ref()?;
        (!home[2].eq_ignore_ascii_case(&home[0])).then(|| home[2].to_ascii_uppercase())
    }

    /// `+CMTI`: reads the slot at once, stores it, then deletes what is due.
    async fn read_slot(&mut self, memory: &str, index: u32) {
        if !self.select_read_memory(memory).await {
            self.sweep_cycle().await;
            return;
        }
        let result = self.counted(self.handle.read(index).await);
        self.restore_read_memory().await;
        match result {
            Ok(Some(message)) => {
                let read = identify(
                    &self.iccid(),
                    memory,
                    index,
                    &message.pdu,
                    Some(message.length),
                );
                if self.store_copy(read).await == Stored::New {
                    self.delete_due().await;
                }
            }
            Ok(None) => debug!(index, "announced slot is empty (already read and deleted)"),
            Err(error) => {
                warn!(index, %error, "could not read an announced message; the sweep retries");
            }
        }
    }

    /// The name fingerprints use for the read memory (init's choice, upper case).
    pub(crate) fn read_memory_name(&self) -> String {
        self.home_memories
            .as_ref()
            .map_or_else(|| "SM".to_owned(), |m| m[0].to_ascii_uppercase())
    }

    /// Sweep, delete what is due, guard capacity; again while the guard frees slots (the
    /// network delivers what it held into them). Records the cycle time when all went well.
    pub(crate) async fn sweep_cycle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let listed = self.sweep().await;
            self.delete_due().await;
            let freed = self.capacity_guard().await;
            if listed {
                self.last_cycle_at = Some(self.now());
            }
            if freed == 0 || !self.is_ready() || self.lane.stop.is_cancelled() {
                break;
            }
        }
        self.write_status(false).await;
    }

    /// Lists the read memory, the receive memory when it differs, and the status report
    /// memory where reports are stored, and stores every copy. Returns whether the read
    /// memory's listing succeeded.
    async fn sweep(&mut self) -> bool {
        self.mismatched.clear();
        self.restore_read_memory().await;
        let read_memory = self.read_memory_name();
        let listed = self.sweep_memory(&read_memory).await;
        if let Some(receive) = self.receive_memory()
            && self.select_read_memory(&receive).await
        {
            self.sweep_memory(&receive).await;
            self.restore_read_memory().await;
        }
        self.sweep_reports().await;
        listed
    }

    /// Lists the memory selected as `<mem1>` (named `memory`) and stores what it holds.
    async fn sweep_memory(&mut self, memory: &str) -> bool {
        let entries = match self.counted(self.handle.list_messages().await) {
            Ok(entries) => entries,
            Err(error) => {
                warn!(%memory, %error, "could not list the SIM; retrying at the next sweep");
                return false;
            }
        };
        let iccid = self.iccid();
        let mut new = 0usize;
        for entry in entries {
            let read = identify(&iccid, memory, entry.index, &entry.pdu, Some(entry.length));
            if self.store_copy(read).await == Stored::New {
                new += 1;
            }
        }
        if new > 0 {
            debug!(new, %memory, "the sweep stored copies no URC had announced");
        }
        true
    }

    /// Stores one SIM copy by what it holds.
    pub(crate) async fn store_copy(&mut self, read: SimRead) -> Stored {
        let received_at = self.now();
        let SimRead {
            storage,
            slot,
            pdu_hex,
            fingerprint,
            content,
        } = read;
        match content {
            Content::Message(text) => {
                let sms = InboundSms {
                    modem_id: self.id.clone(),
                    fingerprint,
                    sim_storage: storage,
                    sim_slot: slot,
                    sender: text.sender.clone(),
                    text: text.text,
                    encoding: Some(text.encoding.to_owned()),
                    smsc_timestamp: Some(text.smsc_timestamp),
                    message_class: text.message_class,
                    raw_pdu: Some(pdu_hex),
                    received_at,
                };
                match text.concat {
                    Some(concat) => {
                        let part = InboundPart {
                            sms,
                            concat: Concat {
                                reference: concat.reference,
                                ref_bits: concat.width.bits(),
                                total: concat.total,
                                seq: concat.seq,
                            },
                        };
                        self.store_part(part, &text.sender).await
                    }
                    None => match self.ctx.store.store_inbound_single(sms).await {
                        Ok(stored) if stored.newly_created => {
                            info!(id = stored.id.0, from = %text.sender, slot, "received message #{}", stored.id);
                            self.opt_out(stored.id).await;
                            Stored::New
                        }
                        Ok(_) => Stored::Known,
                        Err(error) => self.store_failed(&error, slot),
                    },
                }
            }
            Content::Report(report) => {
                let report_in = StatusReportIn {
                    modem_id: self.id.clone(),
                    message_ref: report.message_ref,
                    recipient: report.recipient.clone(),
                    status_code: report.status.0,
                    category: crate::reports::category(report.status),
                    description: Some(report.status.meaning().to_owned()),
                    discharge_time: Some(report.discharge_time.clone()),
                    raw_pdu: Some(pdu_hex),
                    received_at,
                    sim: Some(conductor_store::SimLocation {
                        storage,
                        slot,
                        fingerprint,
                    }),
                };
                self.record_report(report_in).await
            }
            Content::Submit => {
                debug!(%storage, slot, "the slot holds an SMS-SUBMIT, not a received message; left alone");
                Stored::Skipped
            }
            Content::Undecodable { sender, reason } => {
                let pdu = UndecodablePdu {
                    modem_id: self.id.clone(),
                    fingerprint,
                    sim_storage: storage,
                    sim_slot: slot,
                    sender,
                    raw_pdu: pdu_hex,
                    reason: reason.clone(),
                    received_at,
                };
                match self.ctx.store.store_undecodable(pdu).await {
                    Ok(stored) if stored.newly_created => {
                        warn!(id = stored.id.0, slot, %reason, "stored an undecodable PDU raw as message #{}", stored.id);
                        Stored::New
                    }
                    Ok(_) => Stored::Known,
                    Err(error) => self.store_failed(&error, slot),
                }
            }
        }
    }

    async fn store_part(&mut self, part: InboundPart, sender: &str) -> Stored {
        let slot = part.sms.sim_slot;
        let (seq, total) = (part.concat.seq, part.concat.total);
        let stored = match self.ctx.store.store_inbound_part(part).await {
            Ok(stored) => stored,
            Err(error) => return self.store_failed(&error, slot),
        };
        if let Some(id) = stored.flushed {
            warn!(
                id = id.0,
                "message #{id} is stored incomplete: its reference was reused by a new message"
            );
        }
        match stored.outcome {
            PartOutcome::Duplicate { .. } => Stored::Known,
            PartOutcome::Waiting { have, total } => {
                debug!(seq, have, total, from = %sender, "stored a part; waiting for the rest");
                Stored::New
            }
            PartOutcome::Completed { id } => {
                info!(id = id.0, from = %sender, parts = total, "received message #{id}");
                self.opt_out(id).await;
                Stored::New
            }
            PartOutcome::CompletedLate { id } => {
                info!(id = id.0, seq, "a late part completed message #{id}");
                self.opt_out(id).await;
                Stored::New
            }
            PartOutcome::AddedLate { id, have, total } => {
                info!(
                    id = id.0,
                    seq, have, total, "a late part was added to incomplete message #{id}"
                );
                Stored::New
            }
        }
    }

    fn store_failed(&self, error: &StoreError, slot: u32) -> Stored {
        warn!(slot, %error, "could not store a received message; it stays on the SIM and is retried at the next sweep");
        Stored::Skipped
    }

    /// `+CMT`: a message routed to the terminal (the driver never asks for it, but a modem may
    /// do it anyway). It is on no SIM slot, so it is stored under the pseudo-memory "TE" and
    /// its copy recorded as gone at once; the fingerprint still makes a repeat a no-op.
    async fn store_routed(&mut self, pdu: &str, length: u32) {
        const ROUTED: &str = "TE";
        let read = identify(&self.iccid(), ROUTED, 0, pdu, Some(length));
        let fingerprint = read.fingerprint.clone();
        if self.store_copy(read).await != Stored::Skipped {
            let now = self.now();
            if let Err(error) = self
                .ctx
                .store
                .sim_copy_deleted(self.id.clone(), ROUTED.to_owned(), 0, fingerprint, now)
                .await
            {
                debug!(%error, "could not mark a routed message as off the SIM");
            }
        }
    }
}
