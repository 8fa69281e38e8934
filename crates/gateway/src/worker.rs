//! The per-modem worker: one task per modem that owns everything the gateway does with that
//! modem — its URCs, reads, sweeps, SIM deletions, capacity guard, sends and status row.
//!
//! Why one task per modem: AT commands to one modem are then serialised in one place (the
//! order "store, then re-read, then delete" cannot interleave with a sweep or a send), a slow
//! modem never blocks another, and switching the read memory for a moment (`+CDSI` slots in
//! "SR") cannot surprise a concurrent reader. The modem task serialises commands anyway; this
//! task serialises *operations*.
//!
//! The loop waits on, in this order of priority:
//!
//! ```text
//!   shutdown (the gateway's, or this modem's removal) ─► modem state changed ─► URC (+CMTI, +CDSI, +CDS) ─► rows changed (deletions due)
//!     ─► sweep timer ─► capacity timer ─► status timer ─► next outbound job
//! ```
//!
//! Jobs come last so a long batch cannot starve inbound work: between two sends every URC
//! and every due timer gets its turn. Each arm runs one operation to its end; none is
//! cancelled half way, so shutdown never abandons a send between the `> ` prompt and its
//! verdict (STYLE "Graceful shutdown").
//!
//! The operations themselves live beside their topic: [`crate::inbound`] (reading and
//! storing), [`crate::sim_lifecycle`] (deletions, capacity, memory switching),
//! [`crate::reports`] (status reports), [`crate::outbound`] (sending a job) and
//! [`crate::health`] (the status row and modem events).

use std::collections::HashSet;
use std::sync::Arc;

use conductor_modem::{ModemHandle, ModemState, Phase, Urc};
use conductor_store::{Fingerprint, ModemId, OutboundJob, StorageUse};
use jiff::Timestamp;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::MissedTickBehavior;
use tracing::debug;

use crate::supervisor::{Context, Lane};

/// The worker of one modem (see the module doc).
pub(crate) struct ModemWorker {
    pub ctx: Arc<Context>,
    pub lane: Arc<Lane>,
    pub id: ModemId,
    pub handle: ModemHandle,
    pub urcs: mpsc::Receiver<Urc>,
    pub state: watch::Receiver<ModemState>,
    pub jobs: mpsc::UnboundedReceiver<OutboundJob>,
    /// Rung when rows changed (external `UPDATE … SET status='read'`, a flush): deletions may
    /// be due.
    pub lifecycle: Arc<Notify>,
    /// The memory `AT+CMGR`/`AT+CMGL`/`AT+CMGD` act on now (`<mem1>`), when known.
    pub read_memory: Option<String>,
    /// The three memories init chose, restored after reading another memory for a moment.
    pub home_memories: Option<[String; 3]>,
    /// Whether the modem lets `<mem1>` be "SR" (status reports stored with `+CDSI`);
    /// `None` until tried.
    pub report_memory_ok: Option<bool>,
    /// Copies whose slot held something else at the last re-read: not re-read before the
    /// next sweep (the slot was reused or the SIM swapped; deleting it would lose a message).
    pub mismatched: HashSet<Fingerprint>,
    /// Fill levels from the last `AT+CPMS?`.
    pub storage: Vec<StorageUse>,
    /// The receive memory is full (a `sim_full` event was recorded for this episode).
    pub sim_full: Option<String>,
    /// The last sweep that completed without error.
    pub last_cycle_at: Option<Timestamp>,
    /// The status row last written, to write again only on change (or the interval).
    pub last_status: Option<conductor_store::ModemStatus>,
    /// Up (`Some(true)`), down (`Some(false)`), or not known yet: for modem_up/modem_down.
    pub up: Option<bool>,
    /// The modem task ended (its channels closed): stop polling them.
    pub modem_gone: bool,
    /// The modem has not been swept since it (re)became ready.
    pub fresh: bool,
    /// The escalation counts last recorded as `modem_recovery` events.
    pub recoveries_seen: conductor_modem::Recoveries,
    /// What to do with incoming calls, and the call in progress (module `calls`).
    pub calls_settings: crate::calls::CallSettings,
    pub calls: crate::calls::Calls,
    /// The balance check and when it last ran, on the gateway's clock (module `balance`).
    pub balance_settings: Option<crate::balance::BalanceCheck>,
    pub last_balance_check: Option<Timestamp>,
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl ModemWorker {
    pub fn new(
        ctx: Arc<Context>,
        lane: Arc<Lane>,
        handle: ModemHandle,
        urcs: mpsc::Receiver<Urc>,
        state: watch::Receiver<ModemState>,
        jobs: mpsc::UnboundedReceiver<OutboundJob>,
        lifecycle: Arc<Notify>,
    ) -> Self {
        Self {
            id: lane.id.clone(),
            ctx,
            lane,
            handle,
            urcs,
            state,
            jobs,
            lifecycle,
            read_memory: None,
            home_memories: None,
            report_memory_ok: None,
            mismatched: HashSet::new(),
            storage: Vec::new(),
            sim_full: None,
            last_cycle_at: None,
            last_status: None,
            up: None,
            modem_gone: false,
            fresh: true,
            recoveries_seen: conductor_modem::Recoveries::default(),
            calls_settings: crate::calls::CallSettings::default(),
            calls: crate::calls::Calls::default(),
            balance_settings: None,
            last_balance_check: None,
        }
    }

    /// Whether operations can run now.
    pub fn is_ready(&self) -> bool {
        self.state.borrow().is_ready()
    }

    /// The SIM's ICCID for fingerprints; the modem id when the modem does not report one.
    pub fn iccid(&self) -> String {
        self.state
            .borrow()
            .identity
            .iccid
            .clone()
            .unwrap_or_else(|| self.id.0.clone())
    }

    /// Now, on the gateway's clock.
    pub fn now(&self) -> Timestamp {
        self.ctx.clock.now()
    }

    pub async fn run(mut self) {
        let config = &self.ctx.config;
        let mut sweep = tokio::time::interval(config.inbound.sweep_interval);
        let mut capacity = tokio::time::interval(config.inbound.capacity_check_interval);
        let mut status = tokio::time::interval(config.status_interval);
        // The balance check compares the gateway's clock with its schedule once a second
        // (a replaced clock that jumps is noticed within a second).
        let mut balance = tokio::time::interval(std::time::Duration::from_secs(1));
        for ticker in [&mut sweep, &mut capacity, &mut status, &mut balance] {
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        }
        // The gateway's token or this modem's alone (it was removed): a child of the first.
        let shutdown = self.lane.stop.clone();
        // The state as the task started: a modem that is ready already gets its first cycle.
        self.on_state_changed().await;
        loop {
            let ready = self.is_ready();
            let alive = !self.modem_gone;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                changed = self.state.changed(), if alive => {
                    if changed.is_err() {
                        self.modem_gone = true;
                    }
                    self.on_state_changed().await;
                }
                urc = self.urcs.recv(), if alive => match urc {
                    Some(urc) => {
                        if !self.on_call_urc(&urc).await {
                            self.on_urc(urc).await;
                        }
                    }
                    None => self.modem_gone = true,
                },
                _ = sleep_until(self.calls.deadline()) => self.call_timeout().await,
                _ = self.lifecycle.notified(), if ready => self.delete_due().await,
                _ = sweep.tick() => {
                    if ready {
                        self.sweep_cycle().await;
                    }
                }
                _ = capacity.tick() => {
                    if ready && self.capacity_guard().await > 0 {
                        self.sweep_cycle().await;
                    }
                }
                _ = status.tick() => self.write_status(true).await,
                _ = balance.tick(), if self.balance_settings.is_some() && ready => {
                    self.balance_if_due().await;
                }
                job = self.jobs.recv() => match job {
                    Some(job) => self.send_job(job).await,
                    None => {
                        debug!("the dispatcher is gone; waiting for shutdown");
                        shutdown.cancelled().await;
                        break;
                    }
                },
            }
        }
        // Jobs claimed for this modem but not started: give them back to the queue.
        while let Ok(job) = self.jobs.try_recv() {
            self.release_unstarted(&job, "the gateway stopped before sending it")
                .await;
        }
        let reason = if self.ctx.shutdown.is_cancelled() {
            "the gateway stopped"
        } else {
            "the modem was removed from the gateway"
        };
        self.write_final_status(reason).await;
    }

    /// Reacts to the modem task's published state: modem_up/modem_down, a first cycle when
    /// the modem (re)appears, the status row, and the dispatcher's ready set.
    async fn on_state_changed(&mut self) {
        let (phase, ready, outages) = {
            let state = self.state.borrow_and_update();
            (state.phase, state.is_ready(), state.outages)
        };
        self.ctx.counters.record_state(&self.id, ready, outages);
        let up = match phase {
            Phase::Ready => Some(true),
            Phase::Disconnected | Phase::Stopped => Some(false),
            Phase::Connecting | Phase::Initialising => None,
        };
        if let Some(up) = up
            && self.up != Some(up)
        {
            self.up = Some(up);
            if up {
                self.modem_up().await;
            } else {
                self.modem_down().await;
            }
            // Readiness changed: the dispatcher re-plans (rows go to the modems that are up).
            self.ctx.dispatch.notify_one();
        }
        self.record_recovery().await;
        self.write_status(false).await;
        if !ready {
            // Init sets the memories again; learn them afresh once it has.
            self.fresh = true;
        } else if self.fresh {
            // Freshly (re)initialised: learn the memories, then catch up on anything stored
            // while the gateway was not listening.
            self.fresh = false;
            self.learn_memories().await;
            self.sweep_cycle().await;
        }
    }
}
