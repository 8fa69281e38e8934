//! The health model: each modem's status row, and the modem events (`modem_up`,
//! `modem_down`, `sim_full`, `capacity_cleanup`).
//!
//! Why rows and not a port: `status`, `health`, `watch` and the API never open a modem port
//! (a serial port has one owner, DESIGN.md "Database"); they read what the daemon records and
//! judge staleness by `updated_at`. So the row is written whenever what it shows changes, and
//! at least every `status_interval` even when nothing changes, and once more at shutdown
//! (state `down`, "the gateway stopped").
//!
//! Message events (received, sent, delivered, failed, duplicate, unknown) are appended by the
//! store in the same transaction as the change they describe, so they can never disagree with
//! the row; this module adds only what the store cannot see.

use conductor_modem::{ModemState, Phase, RecoveryStep};
use conductor_store::{ModemState as RowState, ModemStatus, NewEvent, SqlTime, StorageUse};
use serde_json::json;
use tracing::{info, warn};

use crate::worker::ModemWorker;

/// The row's state and `last_error` for a modem task's state.
fn classify(state: &ModemState, sim_full: Option<&str>) -> (RowState, Option<String>) {
    // The condition's word first (`pin_wrong: …`), so rows, `health` and alert rules can
    // match on it; the sentence after it says what to do.
    let with_condition = |text: Option<String>| match (state.condition, text) {
        (Some(condition), Some(text)) => Some(format!("{condition}: {text}")),
        (Some(condition), None) => Some(condition.to_string()),
        (None, text) => text,
    };
    match state.phase {
        Phase::Ready if !state.can_send() => {
            (RowState::Degraded, with_condition(state.send_blocker()))
        }
        Phase::Ready => match sim_full {
            Some(storage) => (
                RowState::Degraded,
                Some(format!(
                    "SIM storage full ({storage}): the network holds new messages until slots are \
                     freed"
                )),
            ),
            None => (RowState::Ready, None),
        },
        Phase::Connecting | Phase::Initialising
            if state.outages == 0 && state.last_error.is_none() =>
        {
            (RowState::Starting, None)
        }
        Phase::Connecting | Phase::Initialising | Phase::Disconnected => {
            (RowState::Down, with_condition(state.last_error.clone()))
        }
        Phase::Stopped => (
            RowState::Down,
            Some("the modem task has stopped".to_owned()),
        ),
    }
}

/// Whether two rows show the same thing (ignoring when they were written).
fn same(a: &ModemStatus, b: &ModemStatus) -> bool {
    let mut b = b.clone();
    b.updated_at = a.updated_at.clone();
    *a == b
}

impl ModemWorker {
    /// The status row as of now.
    fn status_row(&self) -> ModemStatus {
        let now = self.now();
        let state = self.state.borrow();
        let (row_state, last_error) = classify(&state, self.sim_full.as_deref());
        let storage = if self.storage.is_empty() {
            state
                .storage
                .iter()
                .map(|m| StorageUse {
                    memory: m.memory.clone(),
                    used: m.used,
                    total: m.total,
                })
                .collect()
        } else {
            self.storage.clone()
        };
        ModemStatus {
            modem_id: self.id.clone(),
            state: row_state,
            last_error,
            manufacturer: state.identity.manufacturer.clone(),
            model: state.identity.model.clone(),
            firmware: state.identity.revision.clone(),
            imei: state.identity.imei.clone(),
            imsi: state.identity.imsi.clone(),
            iccid: state.identity.iccid.clone(),
            operator: state.operator.clone(),
            signal_dbm: state.signal.and_then(|s| s.dbm).map(i32::from),
            registration: state.registration.map(|r| r.as_str().to_owned()),
            storage,
            last_cycle_at: self.last_cycle_at.map(SqlTime::from_timestamp),
            updated_at: SqlTime::from_timestamp(now),
        }
    }

    /// Writes the status row if it changed, or always with `force` (the interval).
    pub(crate) async fn write_status(&mut self, force: bool) {
        let row = self.status_row();
        if !force
            && self
                .last_status
                .as_ref()
                .is_some_and(|last| same(last, &row))
        {
            return;
        }
        self.upsert(row).await;
    }

    async fn upsert(&mut self, row: ModemStatus) {
        match self.ctx.store.upsert_modem_status(row.clone()).await {
            Ok(()) => self.last_status = Some(row),
            Err(error) => warn!(%error, "could not record the modem's status; retrying"),
        }
    }

    /// At shutdown or removal: the row says the modem is no longer served (`reason`), so
    /// `health` does not report a stopped daemon as healthy.
    pub(crate) async fn write_final_status(&mut self, reason: &str) {
        let mut row = self.status_row();
        row.state = RowState::Down;
        row.last_error = Some(reason.to_owned());
        self.upsert(row).await;
    }

    pub(crate) async fn modem_up(&mut self) {
        let (manufacturer, model, operator) = {
            let state = self.state.borrow();
            (
                state.identity.manufacturer.clone(),
                state.identity.model.clone(),
                state.operator.clone(),
            )
        };
        info!("modem {} is up", self.id);
        self.event(
            "modem_up",
            json!({ "manufacturer": manufacturer, "model": model, "operator": operator }),
        )
        .await;
    }

    pub(crate) async fn modem_down(&mut self) {
        let error = self.state.borrow().last_error.clone();
        // The driver logs the outage itself (once, at error level); this says what it means
        // for messages.
        warn!(
            "modem {} is down: messages naming it wait, others go to the modems that are up",
            self.id
        );
        let condition = self.state.borrow().condition.map(|c| c.as_str());
        self.event(
            "modem_down",
            json!({ "error": error, "condition": condition }),
        )
        .await;
    }

    /// Records each escalation step for a modem that stopped answering (probe, reset,
    /// reopen) as a `modem_recovery` event, once per step taken, with the running counts.
    /// Steps are found from the counts, not from the latest step alone: the worker may have
    /// been waiting on the modem through the whole escalation and see only its end.
    pub(crate) async fn record_recovery(&mut self) {
        let now = self.state.borrow().recoveries;
        let seen = std::mem::replace(&mut self.recoveries_seen, now);
        let taken = [
            (RecoveryStep::Probe, seen.probes, now.probes),
            (RecoveryStep::Reset, seen.resets, now.resets),
            (RecoveryStep::Reopen, seen.reopens, now.reopens),
        ];
        for (step, before, after) in taken {
            if after <= before {
                continue;
            }
            let recovered = now.last == Some((step, true));
            self.event(
                "modem_recovery",
                json!({
                    "step": step.as_str(),
                    "recovered": recovered,
                    "probes": now.probes,
                    "resets": now.resets,
                    "reopens": now.reopens,
                }),
            )
            .await;
        }
    }

    /// Appends a modem event; a failure is logged, never fatal.
    pub(crate) async fn event(&self, kind: &str, detail: serde_json::Value) {
        let event = NewEvent {
            at: self.now(),
            kind: kind.to_owned(),
            message_id: None,
            modem_id: Some(self.id.clone()),
            detail: Some(detail),
        };
        if let Err(error) = self.ctx.store.append_event(event).await {
            warn!(kind, %error, "could not record an event");
        }
    }
}

#[cfg(test)]
mod tests {
    use conductor_modem::RegistrationSummary;

    use super::*;

    fn state(phase: Phase) -> ModemState {
        ModemState {
            phase,
            ..ModemState::new("m1", "/dev/null")
        }
    }

    #[test]
    fn a_ready_modem_without_network_is_degraded_with_a_reason() {
        let mut s = state(Phase::Ready);
        assert_eq!(classify(&s, None).0, RowState::Ready);
        s.registration = Some(RegistrationSummary::Searching);
        let (row, reason) = classify(&s, None);
        assert_eq!(row, RowState::Degraded);
        assert!(reason.is_some_and(|r| r.contains("searching")));
        s.registration = Some(RegistrationSummary::Roaming);
        assert_eq!(classify(&s, None).0, RowState::Ready);
        s.allow_roaming = false;
        let (row, reason) = classify(&s, None);
        assert_eq!(row, RowState::Degraded);
        assert!(reason.is_some_and(|r| r.contains("allow_roaming")));
    }

    #[test]
    fn a_wrong_pin_shows_as_pin_wrong_in_the_row() {
        let mut s = state(Phase::Disconnected);
        s.condition = Some(conductor_modem::Condition::PinWrong);
        s.last_error = Some("the SIM rejected the configured PIN".into());
        let (row, reason) = classify(&s, None);
        assert_eq!(row, RowState::Down);
        assert_eq!(
            reason.as_deref(),
            Some("pin_wrong: the SIM rejected the configured PIN")
        );
    }

    #[test]
    fn a_full_sim_degrades_and_an_outage_is_down() {
        let s = state(Phase::Ready);
        assert_eq!(
            classify(&s, Some("SM 30/30 (100.0 % full)")).0,
            RowState::Degraded
        );
        assert_eq!(
            classify(&state(Phase::Connecting), None).0,
            RowState::Starting
        );
        let mut lost = state(Phase::Connecting);
        lost.outages = 1;
        assert_eq!(classify(&lost, None).0, RowState::Down);
        assert_eq!(
            classify(&state(Phase::Disconnected), None).0,
            RowState::Down
        );
    }
}
