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
use conductor_gateway::{GatewayHandle, ModemSnapshot};
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
        let mut status = status_line(&gateway.modems());
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
                    status = status_line(&gateway.modems());
                    notifier.ready(&status);
                }
                _ = ticker.tick() => {
                    let now = status_line(&gateway.modems());
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
        let pending: Vec<&str> = modems
            .iter()
            .filter(|m| !m.first_attempt_done())
            .map(|m| m.id.as_str())
            .collect();
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
}
