//! The daemon's conversation with its service manager: readiness, status lines, the
//! watchdog, reloads (SIGHUP) and stopping. Protocol in [`crate::notify`].
//!
//! # What systemd is told, and when
//! - `READY=1` once the database is open, the HTTP API listens, and every configured modem's
//!   *first* initialisation attempt has finished, whichever way it went. Why not "every modem
//!   ready": `systemctl start` waits for readiness, and units ordered after Conductor wait
//!   with it; a modem that is unplugged, or a SIM that waits for its network, would hold
//!   the whole gateway (and its other modems' traffic) in "activating" until systemd's
//!   start timeout killed it, then restarted it in a loop. A modem that failed is retried
//!   with backoff and shows in `STATUS=`, `health` and `/readyz`. As a last guard, readiness
//!   is also declared after [`READY_AT_THE_LATEST`] whatever the modems do.
//!   On PostgreSQL (several nodes) a modem whose lease another live node holds counts as
//!   finished too: a pure standby is a healthy process doing its job (waiting to take over),
//!   so it declares `READY=1` as soon as each keeper has heard from the database, with a
//!   status such as "0/2 modems ready; modems m1, m2 standing by (held by node-a)". A modem
//!   whose keeper has not heard back yet (the database does not answer) holds readiness like a
//!   modem still starting, up to [`READY_AT_THE_LATEST`].
//! - `STATUS=` whenever the summary changes: "2/2 modems ready", "1/2 modems ready; modem m1
//!   down", shown by `systemctl status`.
//! - `WATCHDOG=1` every `WATCHDOG_USEC / 2`, only while the gateway's loop turns
//!   ([`GatewayHandle::is_live`]): a daemon wedged on a stuck database call stops feeding the
//!   watchdog and is restarted by systemd (`Restart=on-failure`). The feeding runs in a task of
//!   its own, so a long reload (a removed modem finishing its send) does not starve it.
//! - `RELOADING=1` on SIGHUP (with `MONOTONIC_USEC`), then `READY=1` with the new status once
//!   the new config is applied or refused ([`crate::reload`]).
//! - `STOPPING=1` as soon as the shutdown begins (SIGTERM, Ctrl-C, or the gateway failing).
//!
//! Windows has no SIGHUP: there the reload arm never fires and the notifier is inert; a
//! service wrapper restarts the process to apply a new config.

use crate::notify::{self, Notifier};
use crate::reload::Reloader;
use conductor_gateway::{GatewayHandle, LeaseStanding, ModemSnapshot};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Readiness is declared after this long even if a modem's first attempt has not finished
/// (a connect that hangs): well inside systemd's default 90 s start timeout.
pub const READY_AT_THE_LATEST: Duration = Duration::from_secs(60);

/// How often the status line is recomputed.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// The service-manager side of `conductor run`.
pub struct Lifecycle {
    notifier: Arc<Notifier>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Lifecycle {
    /// Reads `NOTIFY_SOCKET` and takes over SIGHUP. Call it first thing inside the runtime:
    /// SIGHUP's default action ends the process, so a reload sent during start-up would
    /// otherwise kill the daemon.
    pub fn new() -> Self {
        #[cfg(unix)]
        let hangup = {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::hangup()) {
                Ok(signal) => Some(signal),
                Err(e) => {
                    warn!(error = %e, "cannot listen for SIGHUP: config reloads need a restart");
                    None
                }
            }
        };
        Self {
            notifier: Arc::new(Notifier::from_env()),
            #[cfg(unix)]
            hangup,
        }
    }

    /// Runs until `shutdown`: readiness, status, watchdog, reloads; then `STOPPING=1`. The
    /// returned task ends right after that, so `run` can await it before exiting.
    pub fn start(
        self,
        gateway: GatewayHandle,
        reloader: Reloader,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(self.run(gateway, reloader, shutdown))
    }

    async fn run(
        mut self,
        gateway: GatewayHandle,
        mut reloader: Reloader,
        shutdown: CancellationToken,
    ) {
        let notifier = Arc::clone(&self.notifier);
        if !wait_for_first_attempts(&gateway, &shutdown).await {
            notifier.stopping("stopping before start-up finished");
            return;
        }
        let line = |gateway: &GatewayHandle| {
            status_line(&gateway.modems()) + &standby_note(&gateway.lease_standings())
        };
        let mut status = line(&gateway);
        notifier.ready(&status);
        info!(status = %status, "conductor is ready");
        let feeding = tokio::spawn(feed_watchdog(
            Arc::clone(&notifier),
            gateway.clone(),
            shutdown.clone(),
        ));
        let mut ticker = tokio::time::interval(STATUS_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                () = self.hangup() => {
                    notifier.reloading();
                    notifier.status("reloading the config");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = reloader.reload(&gateway) => {}
                    }
                    status = line(&gateway);
                    notifier.ready(&status);
                }
                _ = ticker.tick() => {
                    let now = line(&gateway);
                    if now != status {
                        info!(status = %now, "modems changed");
                        notifier.status(&now);
                        status = now;
                    }
                }
            }
        }
        notifier.stopping("stopping: finishing the AT commands in flight");
        let _ = feeding.await;
    }

    /// Resolves on SIGHUP; never where there is none (Windows, or the handler failed).
    async fn hangup(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.hangup {
            if signal.recv().await.is_some() {
                return;
            }
            self.hangup = None;
        }
        std::future::pending::<()>().await;
    }
}

/// Waits until every modem's first init attempt has finished, or [`READY_AT_THE_LATEST`].
/// `false` when the shutdown came first.
async fn wait_for_first_attempts(gateway: &GatewayHandle, shutdown: &CancellationToken) -> bool {
    let deadline = tokio::time::Instant::now() + READY_AT_THE_LATEST;
    loop {
        let modems = gateway.modems();
        let standings = gateway.lease_standings();
        let mut pending: Vec<&str> = modems
            .iter()
            .filter(|m| !m.first_attempt_done())
            .map(|m| m.id.as_str())
            .collect();
        // On PostgreSQL: a keeper not answered yet, or a lease held whose modem has no lane
        // yet, is still starting; a standby's modems are not.
        for (id, standing) in &standings {
            let starting = match standing {
                LeaseStanding::Pending => true,
                LeaseStanding::Held => !modems.iter().any(|m| &m.id == id),
                _ => false,
            };
            if starting {
                pending.push(id.as_str());
            }
        }
        if pending.is_empty() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            warn!(
                "modems {} have not finished their first initialisation after {:?}: declaring \
                 the service ready anyway (they keep being retried)",
                pending.join(", "),
                READY_AT_THE_LATEST
            );
            return true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// Sends `WATCHDOG=1` every half `WATCHDOG_USEC` while the gateway is live.
async fn feed_watchdog(
    notifier: Arc<Notifier>,
    gateway: GatewayHandle,
    shutdown: CancellationToken,
) {
    let Some(every) = notify::watchdog_interval() else {
        return;
    };
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut starving = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if gateway.is_live() {
            if starving {
                info!("the gateway's loop turns again: feeding the watchdog again");
                starving = false;
            }
            notifier.watchdog();
        } else if !starving && !shutdown.is_cancelled() {
            error!(
                "the gateway's loop has not turned for {:?} (limit {:?}): no longer feeding \
                 systemd's watchdog, which will restart conductor",
                gateway.heartbeat_age(),
                gateway.stall_limit()
            );
            starving = true;
        }
    }
}

/// "2/2 modems ready", "1/2 modems ready; modem m1 down", "0/1 modems ready; modem m1
/// starting".
pub fn status_line(modems: &[ModemSnapshot]) -> String {
    let ready = modems.iter().filter(|m| m.state.is_ready()).count();
    let mut line = format!("{ready}/{} modems ready", modems.len());
    let down: Vec<&str> = modems
        .iter()
        .filter(|m| !m.state.is_ready() && m.first_attempt_done())
        .map(|m| m.id.as_str())
        .collect();
    let starting: Vec<&str> = modems
        .iter()
        .filter(|m| !m.first_attempt_done())
        .map(|m| m.id.as_str())
        .collect();
    for (ids, what) in [(down, "down"), (starting, "starting")] {
        match ids.as_slice() {
            [] => {}
            [one] => line.push_str(&format!("; modem {one} {what}")),
            many => line.push_str(&format!("; modems {} {what}", many.join(", "))),
        }
    }
    line
}

/// What the status line adds on PostgreSQL for modems this node does not drive: "; modems m1,
/// m2 standing by (held by node-a)", "; modem m3 waiting for the database". Empty on SQLite.
pub fn standby_note(standings: &[(String, LeaseStanding)]) -> String {
    let mut note = String::new();
    let mut holders: Vec<&str> = Vec::new();
    let mut standby: Vec<&str> = Vec::new();
    let mut waiting: Vec<&str> = Vec::new();
    for (id, standing) in standings {
        match standing {
            LeaseStanding::Standby { holder } => {
                standby.push(id);
                if !holders.contains(&holder.as_str()) {
                    holders.push(holder);
                }
            }
            LeaseStanding::Unreachable => waiting.push(id),
            _ => {}
        }
    }
    let list = |ids: &[&str]| match ids {
        [one] => format!("modem {one}"),
        many => format!("modems {}", many.join(", ")),
    };
    if !standby.is_empty() {
        note.push_str(&format!(
            "; {} standing by (held by {})",
            list(&standby),
            holders.join(", ")
        ));
    }
    if !waiting.is_empty() {
        note.push_str(&format!("; {} waiting for the database", list(&waiting)));
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_modem::{ModemState, Phase};

    fn modem(id: &str, phase: Phase, error: Option<&str>) -> ModemSnapshot {
        let mut state = ModemState::new(id, "tcp://x:1");
        state.phase = phase;
        state.last_error = error.map(str::to_owned);
        ModemSnapshot {
            id: id.to_owned(),
            state,
        }
    }

    #[test]
    fn the_status_line_counts_ready_modems_and_names_the_others() {
        assert_eq!(
            status_line(&[
                modem("m1", Phase::Ready, None),
                modem("m2", Phase::Ready, None)
            ]),
            "2/2 modems ready"
        );
        assert_eq!(
            status_line(&[
                modem("m1", Phase::Connecting, Some("unplugged")),
                modem("m2", Phase::Ready, None),
                modem("m3", Phase::Initialising, None),
            ]),
            "1/3 modems ready; modem m1 down; modem m3 starting"
        );
    }

    #[test]
    fn a_modem_retrying_after_a_failure_has_had_its_first_attempt() {
        assert!(!modem("m1", Phase::Connecting, None).first_attempt_done());
        assert!(modem("m1", Phase::Connecting, Some("refused")).first_attempt_done());
        assert!(modem("m1", Phase::Disconnected, None).first_attempt_done());
    }

    #[test]
    fn a_standbys_status_names_the_modems_it_waits_for_and_their_holder() {
        let standby = |holder: &str| LeaseStanding::Standby {
            holder: holder.into(),
        };
        let standings = vec![
            ("m1".to_owned(), standby("node-a")),
            ("m2".to_owned(), standby("node-a")),
            ("m3".to_owned(), LeaseStanding::Held),
            ("m4".to_owned(), LeaseStanding::Unreachable),
        ];
        assert_eq!(
            standby_note(&standings),
            "; modems m1, m2 standing by (held by node-a); modem m4 waiting for the database"
        );
        assert_eq!(standby_note(&[]), "");
    }
}
