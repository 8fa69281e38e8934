//! The SIM lifecycle: deleting copies whose rows are safe (by policy, or by the capacity
//! guard), each only after re-reading its slot and finding the same fingerprint.
//!
//! Why the re-read (DESIGN.md "Receiving"): slot numbers are reused, SIMs are swapped and
//! modems change hands, so "slot 3 holds message #812" may have stopped being true since it
//! was stored. Deleting by index without checking could delete a message nobody has stored —
//! the loss promise 1 forbids. The sequence for every copy is: `AT+CMGR` → recompute the
//! fingerprint ([`crate::fingerprint::identify`]) → compare → `AT+CMGD` → record
//! `sim_copy_deleted` (which clears `modem_index`). An empty slot is recorded as gone; a slot
//! holding something else is left alone.
//!
//! Policies (DESIGN.md "Lifecycle"): `on_read` keeps a copy until its row is no longer
//! `unread` (an external `UPDATE messages SET status='read'` is noticed by the change poll),
//! `on_store` deletes right after the commit. The capacity guard reads `AT+CPMS?`; above the
//! threshold it warns and deletes the oldest copies already safe in the database, unread or
//! not, and the caller sweeps again, because a full SIM makes the network hold messages and
//! it delivers them once slots free up ("SIM full (30 of 30) → handled and drained").
//!
//! Reports stored in "SR" are read and deleted with `<mem1>` switched to "SR" for the moment
//! (`AT+CPMS="SR",<mem2>,<mem3>`), then switched back: the worker is the only one issuing
//! commands to its modem, so nobody else sees the switch.
//! Spec: TS 27.005 §3.2.2 (`+CPMS`), §3.4.3 (`+CMGR`), §3.5.4 (`+CMGD`).

use conductor_modem::MemoryReport;
use conductor_store::{SimCopy, StorageUse};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::fingerprint::identify;
use crate::inbound::REPORT_MEMORY;
use crate::worker::ModemWorker;

impl ModemWorker {
    /// Learns the memories init chose (from its report, else from `AT+CPMS?`).
    pub(crate) async fn learn_memories(&mut self) {
        self.report_memory_ok = None;
        let chosen = self.state.borrow().settings.memories.clone();
        let home = match chosen {
            Some(memories) => Some(memories),
            None => match self.counted(self.handle.storage().await) {
                Ok(storage) => {
                    let read = storage.read.memory.clone();
                    let write = storage
                        .write
                        .as_ref()
                        .map_or(read.clone(), |m| m.memory.clone());
                    let receive = storage
                        .receive
                        .as_ref()
                        .map_or(read.clone(), |m| m.memory.clone());
                    Some([read, write, receive])
                }
                Err(error) => {
                    debug!(%error, "could not read the message memories");
                    None
                }
            },
        };
        self.read_memory = home.as_ref().map(|m| m[0].clone());
        self.home_memories = home;
    }

    /// Makes `memory` the read memory (`<mem1>`) for a moment. Returns whether it is now.
    pub(crate) async fn select_read_memory(&mut self, memory: &str) -> bool {
        if self
            .read_memory
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(memory))
        {
            return true;
        }
        if self.home_memories.is_none() && memory.eq_ignore_ascii_case(&self.read_memory_name()) {
            // The memories are unknown: read wherever the modem reads.
            return true;
        }
        let is_reports = memory.eq_ignore_ascii_case(REPORT_MEMORY);
        if is_reports && self.report_memory_ok == Some(false) {
            return false;
        }
        // Switching needs the home memories to switch back to, and a plain memory name.
        let Some(home) = self.home_memories.clone() else {
            return false;
        };
        if memory.is_empty()
            || !memory
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return false;
        }
        let line = format!("AT+CPMS=\"{memory}\",\"{}\",\"{}\"", home[1], home[2]);
        match self.counted(self.handle.command(&line).await) {
            Ok(response) if response.is_ok() => {
                self.read_memory = Some(memory.to_owned());
                if is_reports {
                    self.report_memory_ok = Some(true);
                }
                true
            }
            Ok(response) => {
                debug!(%memory, result = %response.result, "the modem refused to read another memory");
                if is_reports {
                    self.report_memory_ok = Some(false);
                }
                false
            }
            Err(error) => {
                debug!(%memory, %error, "could not switch the read memory");
                false
            }
        }
    }

    /// Switches the read memory back to the one init chose.
    pub(crate) async fn restore_read_memory(&mut self) {
        let Some(home) = self.home_memories.clone() else {
            return;
        };
        if self
            .read_memory
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(&home[0]))
        {
            return;
        }
        let line = format!("AT+CPMS=\"{}\",\"{}\",\"{}\"", home[0], home[1], home[2]);
        match self.counted(self.handle.command(&line).await) {
            Ok(response) if response.is_ok() => self.read_memory = Some(home[0].clone()),
            Ok(response) => {
                warn!(result = %response.result, "could not switch back to the read memory")
            }
            Err(error) => warn!(%error, "could not switch back to the read memory"),
        }
    }

    /// Deletes every copy the store says is due under the policy.
    pub(crate) async fn delete_due(&mut self) {
        if !self.is_ready() {
            return;
        }
        let policy = self.ctx.config.inbound.delete_policy;
        match self
            .ctx
            .store
            .sim_deletions_due(self.id.clone(), policy)
            .await
        {
            Ok(copies) if copies.is_empty() => {}
            Ok(copies) => {
                let deleted = self.delete_copies(copies).await;
                if deleted > 0 {
                    debug!(deleted, "deleted SIM copies whose rows are safe");
                }
            }
            Err(error) => {
                warn!(%error, "could not list SIM copies due for deletion; retrying later")
            }
        }
    }

    /// Deletes `copies`, memory by memory, each after a fingerprint re-read. Returns how many
    /// slots were freed.
    pub(crate) async fn delete_copies(&mut self, mut copies: Vec<SimCopy>) -> usize {
        // The read memory's copies first, so the common case switches nothing.
        let home = self.read_memory_name();
        copies.sort_by_key(|c| (!c.storage.eq_ignore_ascii_case(&home), c.storage.clone()));
        let iccid = self.iccid();
        let mut freed = 0;
        let mut current: Option<String> = None;
        let mut usable = false;
        for copy in copies {
            if self.mismatched.contains(&copy.fingerprint) {
                continue;
            }
            if current.as_deref() != Some(copy.storage.as_str()) {
                current = Some(copy.storage.clone());
                usable = self.select_read_memory(&copy.storage).await;
            }
            if !usable {
                continue;
            }
            match self.delete_copy(&iccid, &copy).await {
                Ok(true) => freed += 1,
                Ok(false) => {}
                Err(()) => break,
            }
            if !self.is_ready() {
                break;
            }
        }
        self.restore_read_memory().await;
        freed
    }

    /// One copy: re-read, compare, delete, record. `Ok(true)` when a slot was freed;
    /// `Err(())` when the modem failed (stop for now).
    async fn delete_copy(&mut self, iccid: &str, copy: &SimCopy) -> Result<bool, ()> {
        let message = match self.counted(self.handle.read(copy.slot).await) {
            Ok(message) => message,
            Err(error) => {
                warn!(storage = %copy.storage, slot = copy.slot, %error, "could not re-read a SIM slot before deleting it; retrying later");
                return Err(());
            }
        };
        let Some(message) = message else {
            // Gone already (deleted by someone else, or by the modem): record it.
            debug!(storage = %copy.storage, slot = copy.slot, "the copy is no longer on the SIM");
            self.record_deleted(copy).await;
            return Ok(false);
        };
        let read = identify(
            iccid,
            &copy.storage,
            copy.slot,
            &message.pdu,
            Some(message.length),
        );
        if read.fingerprint != copy.fingerprint {
            warn!(
                storage = %copy.storage,
                slot = copy.slot,
                message = ?copy.message_id.map(|m| m.0),
                "the slot holds another message than the one stored (slot reused or SIM swapped); not deleted"
            );
            self.mismatched.insert(copy.fingerprint.clone());
            return Ok(false);
        }
        if let Err(error) = self.counted(self.handle.delete(copy.slot).await) {
            warn!(storage = %copy.storage, slot = copy.slot, %error, "could not delete a SIM copy; retrying later");
            return Err(());
        }
        self.record_deleted(copy).await;
        Ok(true)
    }

    async fn record_deleted(&mut self, copy: &SimCopy) {
        let now = self.now();
        let result = self
            .ctx
            .store
            .sim_copy_deleted(
                self.id.clone(),
                copy.storage.clone(),
                copy.slot,
                copy.fingerprint.clone(),
                now,
            )
            .await;
        if let Err(error) = result {
            // The next re-read finds the slot empty (or reused) and records it then.
            warn!(slot = copy.slot, %error, "could not record a SIM deletion; it is recorded at the next check");
        }
    }

    /// Reads `AT+CPMS?`, records the fill levels, and above the threshold deletes the oldest
    /// copies already safe in the database. Returns how many slots it freed.
    pub(crate) async fn capacity_guard(&mut self) -> usize {
        if !self.is_ready() {
            return 0;
        }
        self.restore_read_memory().await;
        let storage = match self.counted(self.handle.storage().await) {
            Ok(storage) => storage,
            Err(error) => {
                debug!(%error, "could not read the storage fill levels");
                return 0;
            }
        };
        self.storage = MemoryReport::from_storage(&storage)
            .into_iter()
            .map(|m| StorageUse {
                memory: m.memory,
                used: m.used,
                total: m.total,
            })
            .collect();
        let receive = storage.receive.as_ref().unwrap_or(&storage.read);
        let capacity = receive.capacity;
        let shown = format!("{} {capacity}", receive.memory);
        if capacity.total == 0 {
            return 0;
        }
        let threshold = u32::from(self.ctx.config.inbound.capacity_threshold_percent.min(100));
        let was_full = self.sim_full.is_some();
        if capacity.is_full() {
            if !was_full {
                warn!(storage = %shown, "SIM storage is full: the network holds new messages until slots are freed");
                self.event("sim_full", json!({ "storage": shown })).await;
            }
            self.sim_full = Some(shown.clone());
        } else {
            self.sim_full = None;
        }
        if was_full != self.sim_full.is_some() {
            self.write_status(false).await;
        }
        if capacity.used * 100 < threshold * capacity.total {
            return 0;
        }
        // Free enough to get below the threshold again.
        let keep = (threshold * capacity.total / 100).saturating_sub(1);
        let excess = capacity.used.saturating_sub(keep).max(1) as usize;
        warn!(
            storage = %shown,
            threshold,
            "SIM storage is above the threshold: deleting copies already safe in the database, oldest first"
        );
        let copies = match self
            .ctx
            .store
            .oldest_sim_copies(self.id.clone(), excess)
            .await
        {
            Ok(copies) => copies,
            Err(error) => {
                warn!(%error, "could not list SIM copies to free");
                return 0;
            }
        };
        if copies.is_empty() {
            warn!(storage = %shown, "the SIM is above the threshold but holds nothing the database has: nothing can be freed");
            return 0;
        }
        let freed = self.delete_copies(copies).await;
        if freed > 0 {
            info!(freed, storage = %shown, "freed SIM slots");
            self.event(
                "capacity_cleanup",
                json!({ "freed": freed, "storage": shown }),
            )
            .await;
        }
        freed
    }
}
