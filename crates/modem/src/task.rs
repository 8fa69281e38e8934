//! The per-modem task: it owns the port and the AT engine, runs init, serves requests, hands
//! URCs to the gateway, and reconnects when the modem vanishes.
//!
//! Why one task per modem: a serial port has exactly one owner (STYLE "The per-modem task
//! owns the port"); everyone else holds a [`ModemHandle`]. The task's life is a loop:
//!
//! ```text
//!   Connecting --open ok--> Initialising --init ok--> Ready --request/URC/refresh--> Ready
//!       ^                        |    ^                 |
//!       |                        |    +--restart notice-+   (same port: re-run init)
//!       |     open/init failed   v                      |   lost port, N timeouts in a row
//!       +---- backoff <---- Disconnected <--------------+
//! ```
//!
//! In `Ready` one `select!` waits for bytes from the port, the next request (only while the
//! engine is idle), the engine's deadline, a due re-init or refresh, room for backlogged URCs,
//! and shutdown. A request's command runs to its end inside its arm, so shutdown never
//! abandons a command between the `> ` prompt and the final result (STYLE "Graceful
//! shutdown"): it is bounded by the command's own timeout.
//!
//! Keeps promise 6: on an I/O error, end of stream, a hung modem (N consecutive timeouts) or
//! a restart notice, the running request fails ([`ModemError::Disconnected`] and friends; a
//! send whose PDU was written becomes ambiguous, promise 3) and nothing is ever replayed: a
//! `CMGS` is never resent by the driver (STYLE: "do not copy rumqttc's `clean()` replay").
//! Reconnects back off from `backoff_initial`, doubling to `backoff_max`, on tokio's clock
//! (tests pause it). Each outage is logged once at error level with what to check; later
//! attempts log at debug unless the error changes.

use std::time::Duration;

use conductor_at::Urc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::config::ModemConfig;
use crate::errors::ModemError;
use crate::handle::{ModemHandle, Request};
use crate::init::{self, InitReport};
use crate::link::{Direct, Hooks, Link, UrcOutbox, replace, sleep_until};
use crate::state::{ModemState, Phase, RegistrationSummary};
use crate::transport::{Connect, Device, DeviceConnector, OpenError};

/// A running modem task and the ends of its channels.
#[derive(Debug)]
pub struct Modem {
    /// Send commands through this (clone it freely).
    pub handle: ModemHandle,
    /// URCs in arrival order (`+CMTI`, `+CDS`, `+CDSI`, registration, restart notices, vendor
    /// noise). Bounded: read it promptly (see [`ModemConfig::urc_queue`]).
    pub urcs: mpsc::Receiver<Urc>,
    /// The published state.
    pub state: watch::Receiver<ModemState>,
    /// The task; it ends on shutdown, or when every handle is dropped.
    pub task: JoinHandle<()>,
}

/// Starts the task for the device named in `config`. Fails only if the device string is not
/// valid; everything else (the port missing, the modem silent) is retried by the task and
/// shown in its state.
pub fn spawn(config: ModemConfig, shutdown: CancellationToken) -> Result<Modem, OpenError> {
    if let Some(locate) = config.locate.clone() {
        let connector = crate::identity::IdentityConnector::new(&config, locate);
        return Ok(spawn_with(config, connector, shutdown));
    }
    let device = Device::parse(&config.device)?;
    let connector = DeviceConnector {
        device,
        serial: config.serial,
        connect_timeout: config.connect_timeout,
    };
    Ok(spawn_with(config, connector, shutdown))
}

/// Starts the task with a custom way of opening the transport (tests hand out in-memory
/// pipes; the daemon uses [`spawn`]).
pub fn spawn_with(
    config: ModemConfig,
    connector: impl Connect,
    shutdown: CancellationToken,
) -> Modem {
    let (request_tx, request_rx) = mpsc::channel(config.request_queue.max(1));
    let (urc_tx, urc_rx) = mpsc::channel(config.urc_queue.max(1));
    let mut initial = ModemState::new(&config.name, &config.device);
    initial.allow_roaming = config.allow_roaming;
    let (state_tx, state_rx) = watch::channel(initial);
    let ussd = std::sync::Arc::new(crate::ussd::Tap::default());
    let handle = ModemHandle::new(
        &config.name,
        request_tx,
        state_rx.clone(),
        std::sync::Arc::clone(&ussd),
    );
    let span = info_span!("modem", name = %config.name);
    let task = ModemTask {
        outbox: UrcOutbox::new(urc_tx, config.urc_queue.max(1)).with_ussd_tap(ussd),
        config,
        connector: Box::new(connector),
        requests: request_rx,
        state: state_tx,
        shutdown,
        pin_rejected: false,
        registrations: [None; 3],
        outage: None,
        cnmi_check: None,
        quirks_logged: None,
    };
    let task = tokio::spawn(task.run().instrument(span));
    Modem {
        handle,
        urcs: urc_rx,
        state: state_rx,
        task,
    }
}

/// One outage, for logging it once.
struct Outage {
    started: Instant,
    attempts: u32,
    last_message: String,
}

/// Why the ready loop ended.
enum Exit {
    /// Shutdown was requested, or every handle is gone.
    Stop,
    /// A restart notice or SIM change: run init again on the same port.
    Reinit,
    /// The port is lost or the modem hung.
    Lost(ModemError),
}

/// The task itself. Fields are separate so a [`Hooks`] can borrow some while the loop uses
/// others.
struct ModemTask {
    config: ModemConfig,
    connector: Box<dyn Connect>,
    requests: mpsc::Receiver<Request>,
    outbox: UrcOutbox,
    state: watch::Sender<ModemState>,
    shutdown: CancellationToken,
    /// The SIM refused the configured PIN once: never send it again (three wrong tries block
    /// the SIM).
    pin_rejected: bool,
    /// Latest registration per domain.
    registrations: [Option<RegistrationSummary>; 3],
    /// The outage in progress, if any.
    outage: Option<Outage>,
    /// `AT+CNMI?` as answered after init, for the refresh's check for lost settings.
    cnmi_check: Option<String>,
    /// The quirks summary last logged, so "using quirks for …" appears once, not at every
    /// re-init.
    quirks_logged: Option<String>,
}

impl ModemTask {
    async fn run(mut self) {
        let mut delay = self.config.backoff_initial;
        'connect: loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            self.set_phase(Phase::Connecting);
            let opened = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                opened = self.connector.connect() => opened,
            };
            let io = match opened {
                Ok(io) => io,
                Err(error) => {
                    if !self
                        .fail_and_wait(ModemError::Open(error), &mut delay)
                        .await
                    {
                        break;
                    }
                    continue;
                }
            };
            let mut link = Link::new(
                io,
                self.config.device.clone(),
                self.config.engine.clone(),
                self.config.write_timeout,
                self.config.max_consecutive_timeouts,
            );
            loop {
                self.set_phase(Phase::Initialising);
                let report = match self.init(&mut link).await {
                    Ok(report) => report,
                    Err(ModemError::Stopped) => break 'connect,
                    Err(ModemError::PinRejected) => {
                        // Never again with this PIN (promise: three wrong PINs lock the SIM):
                        // no reconnects, no init, until the config changes (the supervisor
                        // starts a new task) or the daemon restarts.
                        drop(link);
                        self.park(ModemError::PinRejected).await;
                        break 'connect;
                    }
                    Err(error) => {
                        drop(link);
                        if !self.fail_and_wait(error, &mut delay).await {
                            break 'connect;
                        }
                        continue 'connect;
                    }
                };
                let ready_at = Instant::now();
                self.ready(report);
                match self.serve(&mut link).await {
                    Exit::Stop => break 'connect,
                    Exit::Reinit => {
                        info!("the modem restarted or its SIM changed; re-running init");
                        self.state.send_modify(|s| s.outages += 1);
                    }
                    Exit::Lost(error) => {
                        drop(link);
                        // A modem that stayed up longer than the next wait starts a fresh
                        // backoff: this is a new outage. One that dies sooner than that after
                        // init (a crash loop) keeps doubling. (It was "up for backoff_max":
                        // the soak showed a modem dropping for 3 s every 30 s then waited out
                        // 4, 8, 16, 30 s per drop and was offline nearly all the time.)
                        if ready_at.elapsed() >= delay {
                            delay = self.config.backoff_initial;
                        }
                        self.state.send_modify(|s| s.outages += 1);
                        if !self.fail_and_wait(error, &mut delay).await {
                            break 'connect;
                        }
                        continue 'connect;
                    }
                }
            }
        }
        self.requests.close();
        while let Ok(request) = self.requests.try_recv() {
            let _ = request.reply.send(Err(crate::link::ExecError::before_send(
                ModemError::Stopped,
            )));
        }
        self.state.send_modify(|s| {
            s.phase = Phase::Stopped;
            s.since = Instant::now();
        });
        info!("modem task stopped");
    }

    fn set_phase(&self, phase: Phase) {
        self.state.send_if_modified(|s| {
            if s.phase == phase {
                return false;
            }
            s.phase = phase;
            s.since = Instant::now();
            true
        });
    }

    /// Runs init on the link. Requests wait in the channel meanwhile: they run once the modem
    /// is ready, or are turned away if init fails.
    async fn init(&mut self, link: &mut Link) -> Result<InitReport, ModemError> {
        let mut direct = Direct {
            link,
            hooks: Hooks {
                outbox: &mut self.outbox,
                state: Some(&self.state),
                shutdown: Some(&self.shutdown),
                abort_on_startup: false,
                registrations: &mut self.registrations,
            },
        };
        // A restart notice during init (a booting SIM800's `SMS Ready`) stays on the link:
        // the ready loop then runs init once more after the settle time, in case some
        // settings did not stick.
        init::init(&mut direct, &self.config, &mut self.pin_rejected).await
    }

    /// Stays down for good after an error no retry can fix (a wrong PIN): the state says why,
    /// requests are turned away with it, and only shutdown ends the wait.
    async fn park(&mut self, error: ModemError) {
        let message = error.to_string();
        self.outage = None;
        self.state.send_modify(|s| {
            s.phase = Phase::Disconnected;
            s.since = Instant::now();
            s.last_error = Some(message.clone());
            s.condition = crate::state::Condition::of(&error);
            s.sim = Some(crate::state::SimState::PinRequired);
        });
        loop {
            let backlog = self.outbox.has_backlog();
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return,
                request = self.requests.recv() => match request {
                    Some(request) => {
                        let error = ModemError::NotReady {
                            phase: Phase::Disconnected,
                            last_error: Some(message.clone()),
                        };
                        let _ = request.reply.send(Err(crate::link::ExecError::before_send(error)));
                    }
                    None => return,
                },
                _ = self.outbox.flush_one(), if backlog => {}
            }
        }
    }

    /// Publishes a successful init and closes the outage, if one was open.
    fn ready(&mut self, report: InitReport) {
        let summary = format!("{}: {}", report.quirks.profile, report.quirks);
        if self.quirks_logged.as_deref() != Some(summary.as_str()) {
            info!(
                "using quirks for {}: {}",
                report.identity.model.as_deref().map_or(
                    report.quirks.profile.clone(),
                    |model| format!("{} ({model})", report.quirks.profile)
                ),
                report.quirks
            );
            self.quirks_logged = Some(summary);
        }
        match self.outage.take() {
            Some(outage) => info!(
                after = ?outage.started.elapsed(),
                attempts = outage.attempts,
                "modem is back and ready"
            ),
            None => info!(
                manufacturer = report.identity.manufacturer.as_deref().unwrap_or("?"),
                model = report.identity.model.as_deref().unwrap_or("?"),
                "modem ready"
            ),
        }
        let registration = report.registration.as_ref().map(|r| r.summary);
        self.cnmi_check = report.cnmi_check;
        self.state.send_modify(|s| {
            s.phase = Phase::Ready;
            s.since = Instant::now();
            s.last_error = None;
            s.identity = report.identity;
            s.sim = Some(report.sim);
            if !report.storage.is_empty() {
                s.storage = report.storage;
            }
            if report.signal.is_some() {
                s.signal = report.signal;
            }
            if registration.is_some() {
                s.registration = registration;
            }
            s.operator = report.operator;
            s.settings = report.settings;
            s.condition = None;
            s.quirks = Some(report.quirks);
        });
    }

    /// Records a failure (logged once per outage), then waits out the backoff while turning
    /// requests away. Returns `false` on shutdown.
    async fn fail_and_wait(&mut self, error: ModemError, delay: &mut Duration) -> bool {
        let message = error.to_string();
        // At the cap the wait would be the same every time: jittered there (see `jitter`).
        let wait = if *delay >= self.config.backoff_max {
            jitter(*delay)
        } else {
            *delay
        };
        match &mut self.outage {
            None => {
                error!(error = %message, retry_in = ?wait, "modem unavailable; retrying with backoff");
                self.outage = Some(Outage {
                    started: Instant::now(),
                    attempts: 1,
                    last_message: message.clone(),
                });
            }
            Some(outage) => {
                outage.attempts += 1;
                if outage.last_message != message {
                    warn!(error = %message, attempt = outage.attempts, "modem still unavailable");
                    outage.last_message = message.clone();
                } else {
                    debug!(error = %message, attempt = outage.attempts, "modem still unavailable");
                }
            }
        }
        let condition = crate::state::Condition::of(&error);
        self.state.send_modify(|s| {
            s.phase = Phase::Disconnected;
            s.since = Instant::now();
            s.last_error = Some(message.clone());
            s.condition = condition;
        });
        let until = Instant::now() + wait;
        *delay = (*delay * 2).min(self.config.backoff_max);
        loop {
            let backlog = self.outbox.has_backlog();
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return false,
                _ = tokio::time::sleep_until(until) => return true,
                request = self.requests.recv() => match request {
                    Some(request) => {
                        let error = ModemError::NotReady {
                            phase: Phase::Disconnected,
                            last_error: Some(message.clone()),
                        };
                        let _ = request.reply.send(Err(crate::link::ExecError::before_send(error)));
                    }
                    None => return false,
                },
                _ = self.outbox.flush_one(), if backlog => {}
            }
        }
    }

    /// The ready loop (see the module doc).
    async fn serve(&mut self, link: &mut Link) -> Exit {
        let mut reinit_at: Option<Instant> = None;
        let mut next_refresh = self.config.refresh_interval.map(|d| Instant::now() + d);
        // N timeouts in a row now mean "escalate" (probe, reset, reopen), not "reopen".
        link.escalate = true;
        loop {
            if let Some(dead) = link.dead.take() {
                return Exit::Lost(dead);
            }
            if link.hung {
                let count = link.consecutive_timeouts();
                let mut direct = Direct {
                    link: &mut *link,
                    hooks: Hooks {
                        outbox: &mut self.outbox,
                        state: Some(&self.state),
                        shutdown: Some(&self.shutdown),
                        abort_on_startup: false,
                        registrations: &mut self.registrations,
                    },
                };
                match crate::escalation::escalate(&mut direct, &self.config).await {
                    crate::escalation::Outcome::Answered => continue,
                    crate::escalation::Outcome::WasReset => return Exit::Reinit,
                    crate::escalation::Outcome::Reopen => {
                        return Exit::Lost(
                            link.dead
                                .take()
                                .unwrap_or(ModemError::NotResponding { count }),
                        );
                    }
                }
            }
            if let Some(notice) = link.take_notice() {
                debug!(%notice, "restart notice; re-init scheduled");
                reinit_at = Some(Instant::now() + self.config.reinit_settle);
            }
            let idle = link.engine.is_idle();
            let deadline = link.engine.poll_timeout().map(Instant::from_std);
            let backlog = self.outbox.has_backlog();
            let mut hooks = Hooks {
                outbox: &mut self.outbox,
                state: Some(&self.state),
                shutdown: Some(&self.shutdown),
                abort_on_startup: true,
                registrations: &mut self.registrations,
            };
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Exit::Stop,
                result = link.read() => link.handle_read(result),
                _ = sleep_until(deadline) => link.engine.handle_timeout(crate::link::now()),
                _ = sleep_until(reinit_at), if idle => return Exit::Reinit,
                request = self.requests.recv(), if idle && reinit_at.is_none() => {
                    let Some(request) = request else {
                        info!("every handle was dropped; stopping");
                        return Exit::Stop;
                    };
                    if request.reply.is_closed() {
                        // The caller gave up before the command started: skip it.
                        continue;
                    }
                    request.start();
                    let outcome = link.exec(&mut hooks, request.command).await;
                    let _ = request.reply.send(outcome);
                }
                _ = sleep_until(next_refresh), if idle && reinit_at.is_none() => {
                    let mut direct = Direct { link: &mut *link, hooks };
                    if let Err(error) = init::status(&mut direct).await {
                        debug!(%error, "status refresh failed");
                    }
                    if let Err(error) = crate::ops::storage(&mut direct).await {
                        debug!(%error, "storage refresh failed");
                    }
                    let lost = match &self.cnmi_check {
                        Some(check) => init::settings_lost(&mut direct, check)
                            .await
                            .unwrap_or(false),
                        None => false,
                    };
                    if lost {
                        info!("AT+CNMI changed behind the task's back (a silent restart?); re-running init");
                        reinit_at = Some(Instant::now());
                    }
                    next_refresh = self.config.refresh_interval.map(|d| Instant::now() + d);
                    continue;
                }
                _ = hooks.outbox.flush_one(), if backlog => {}
            }
            let mut hooks = Hooks {
                outbox: &mut self.outbox,
                state: Some(&self.state),
                shutdown: Some(&self.shutdown),
                abort_on_startup: true,
                registrations: &mut self.registrations,
            };
            if link.flush().await.is_ok() {
                link.dispatch_idle(&mut hooks);
            }
            let dropped = self.outbox.dropped;
            self.state
                .send_if_modified(|s| replace(&mut s.urcs_dropped, dropped));
        }
    }
}

/// Between three quarters and all of `delay`, at random. Without it, retries at the backoff's
/// cap fall in step with whatever fails on a schedule: the soak found a modem that dropped off
/// for 3 s every 30 s (the cap) being retried at the start of each drop, so it stayed
/// "unavailable" for minutes while it was up 90 % of the time. Jitter also spreads modems
/// that fail together (a USB hub reset) so they do not all reconnect at once.
fn jitter(delay: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // A fresh `RandomState` is keyed differently each time: randomness without a dependency.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    delay.mul_f64(0.75 + (random % 1024) as f64 / 4096.0)
}

#[cfg(test)]
mod jitter_tests {
    use super::jitter;
    use std::time::Duration;

    #[test]
    fn jitter_waits_between_three_quarters_and_all_of_the_delay_and_varies() {
        let delay = Duration::from_secs(30);
        let waits: Vec<Duration> = (0..50).map(|_| jitter(delay)).collect();
        assert!(
            waits.iter().all(|w| *w >= delay * 3 / 4 && *w <= delay),
            "{waits:?}"
        );
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");
    }
}
