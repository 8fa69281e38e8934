//! One open connection to a modem: the transport, the AT engine, and the loop that moves
//! bytes and instants between them.
//!
//! Why: the task (normal operation), init and `probe` all need "run this command and give me
//! its answer, while URCs keep flowing". That loop lives here once. It is the quinn driver
//! pattern with async/await: after every input, drain `poll_transmit` (write and flush under a
//! timeout), then `poll_event`, then re-arm the timer from `poll_timeout` (see
//! [`conductor_at::Engine`]'s call order).
//!
//! Keeps promise 3: every failure of a running command reports whether its PDU had been
//! written ([`ExecError::pdu_sent`]), also when the link dies or the modem restarts
//! mid-command. Keeps promise 6: a dead link is remembered ([`Link::dead`]) so the task
//! reconnects instead of talking into the void.

use std::collections::VecDeque;
use std::time::Duration;

use conductor_at::cmd::creg::Domain;
use conductor_at::cmd::{cops, cpms, creg, csq};
use conductor_at::{Command, Engine, Event, Response, Urc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace, warn};

use crate::errors::{ModemError, redact};
use crate::state::{MemoryReport, ModemState, RegistrationSummary, Signal, SimState};
use crate::transport::BoxedIo;

/// A command's answer, with whether its data phase had begun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The information lines and the final result.
    pub response: Response,
    /// Whether the PDU had been written (only ever true for `AT+CMGS`).
    pub pdu_sent: bool,
}

/// A command that got no answer, with whether its PDU had been written when it failed.
#[derive(Debug, Clone)]
pub(crate) struct ExecError {
    /// What went wrong.
    pub error: ModemError,
    /// Whether the PDU had been written: `true` makes a send ambiguous.
    pub pdu_sent: bool,
}

impl ExecError {
    pub(crate) fn before_send(error: ModemError) -> ExecError {
        ExecError {
            error,
            pdu_sent: false,
        }
    }
}

/// URCs on their way to the gateway: a bounded channel plus a bounded backlog.
///
/// Why not `try_send` alone: the gateway reacts to `+CMTI` by calling the modem, so a full
/// channel is normal for a moment. Blocking the task on `send` would deadlock it against a
/// receiver that waits for an answer from the task; dropping would lose the `+CMTI`. The
/// backlog absorbs bursts and a `select!` arm drains it as the receiver frees room. Only when
/// both are full is a URC dropped, counted and warned about (the gateway's sweep is the
/// safety net).
pub(crate) struct UrcOutbox {
    tx: Option<mpsc::Sender<Urc>>,
    backlog: VecDeque<Urc>,
    capacity: usize,
    /// URCs dropped since the task started.
    pub dropped: u64,
    /// Whether the current overflow episode was already logged.
    warned: bool,
    /// A USSD request waiting for its `+CUSD` URC gets it here first (crate::ussd).
    ussd: Option<std::sync::Arc<crate::ussd::Tap>>,
}

impl UrcOutbox {
    /// An outbox feeding `tx`, with a backlog of `capacity` URCs.
    pub fn new(tx: mpsc::Sender<Urc>, capacity: usize) -> UrcOutbox {
        UrcOutbox {
            tx: Some(tx),
            backlog: VecDeque::new(),
            capacity,
            dropped: 0,
            warned: false,
            ussd: None,
        }
    }

    /// An outbox that discards everything (`probe` has no receiver).
    pub fn discard() -> UrcOutbox {
        UrcOutbox {
            tx: None,
            backlog: VecDeque::new(),
            capacity: 0,
            dropped: 0,
            warned: false,
            ussd: None,
        }
    }

    /// The same outbox, handing `+CUSD` URCs to a waiting USSD request first.
    pub fn with_ussd_tap(mut self, tap: std::sync::Arc<crate::ussd::Tap>) -> UrcOutbox {
        self.ussd = Some(tap);
        self
    }

    /// Queues a URC; returns `false` if it had to be dropped.
    pub fn push(&mut self, urc: Urc) -> bool {
        let urc = match &self.ussd {
            Some(tap) => match tap.offer(urc) {
                Some(urc) => urc,
                None => return true,
            },
            None => urc,
        };
        let Some(tx) = &self.tx else {
            return true;
        };
        if self.backlog.is_empty() {
            match tx.try_send(urc) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    // Nobody listens any more: stop queueing.
                    self.tx = None;
                    return true;
                }
                Err(mpsc::error::TrySendError::Full(urc)) => {
                    self.backlog.push_back(urc);
                    return true;
                }
            }
        }
        if self.backlog.len() < self.capacity {
            self.backlog.push_back(urc);
            return true;
        }
        self.dropped += 1;
        if !self.warned {
            self.warned = true;
            warn!(
                "URC receiver is not keeping up: dropping URCs (the inbound sweep will find \
                 any message whose +CMTI was lost)"
            );
        }
        false
    }

    /// Whether URCs wait in the backlog.
    pub fn has_backlog(&self) -> bool {
        self.tx.is_some() && !self.backlog.is_empty()
    }

    /// Waits for room in the channel and moves one URC there. Cancel-safe: a permit is only
    /// taken when it is used at once.
    pub async fn flush_one(&mut self) {
        let Some(tx) = &self.tx else {
            return std::future::pending().await;
        };
        let closed = match tx.reserve().await {
            Ok(permit) => {
                if let Some(urc) = self.backlog.pop_front() {
                    permit.send(urc);
                }
                false
            }
            Err(_) => true,
        };
        if closed {
            self.tx = None;
            self.backlog.clear();
        }
        if self.backlog.is_empty() {
            self.warned = false;
        }
    }
}

/// What a command run needs from its surroundings: where URCs go, the published state,
/// shutdown.
pub(crate) struct Hooks<'a> {
    /// Where URCs go.
    pub outbox: &'a mut UrcOutbox,
    /// The state to update from answers and URCs; `None` for `probe`.
    pub state: Option<&'a watch::Sender<ModemState>>,
    /// Stops new commands (a running one always finishes, bounded by its timeout).
    pub shutdown: Option<&'a CancellationToken>,
    /// In normal operation a start-up notice aborts the running command (its answer will
    /// never come); during init it is only remembered.
    pub abort_on_startup: bool,
    /// Latest registration per domain (CS, GPRS, EPS), so the published summary is the best.
    pub registrations: &'a mut [Option<RegistrationSummary>; 3],
}

impl Hooks<'_> {
    fn urc(&mut self, urc: Urc) {
        match &urc {
            Urc::Registration(registration) => {
                self.set_registration(registration.domain, registration.status);
            }
            Urc::SimStatus(status) => {
                let sim = SimState::from_pin_status(status);
                self.update(|s| replace(&mut s.sim, Some(sim)));
            }
            _ => {}
        }
        trace!(?urc, "URC");
        if !self.outbox.push(urc) {
            let dropped = self.outbox.dropped;
            self.update(|s| replace(&mut s.urcs_dropped, dropped));
        }
    }

    fn set_registration(&mut self, domain: Domain, status: creg::RegistrationStatus) {
        let slot = match domain {
            Domain::CircuitSwitched => 0,
            Domain::Gprs => 1,
            Domain::Eps => 2,
        };
        self.registrations[slot] = Some(RegistrationSummary::from_status(status));
        let best = self.registrations.iter().flatten().max().copied();
        self.update(|s| replace(&mut s.registration, best));
    }

    /// Updates the published state, waking watchers only on a change.
    pub fn update(&self, change: impl FnOnce(&mut ModemState) -> bool) {
        if let Some(state) = self.state {
            state.send_if_modified(change);
        }
    }

    /// Learns from a successful answer: signal, storage, registration and operator are
    /// published whoever asked (an operator's console query included).
    fn observe(&mut self, line: &str, response: &Response) {
        if self.state.is_none() || !response.is_ok() {
            return;
        }
        let upper = line.to_ascii_uppercase();
        match upper.as_str() {
            "AT+CSQ" => {
                if let Ok(quality) = csq::parse(&response.lines) {
                    let signal = Signal {
                        dbm: quality.dbm(),
                        rssi: quality.rssi,
                        ber: quality.ber_class(),
                    };
                    self.update(|s| replace(&mut s.signal, Some(signal)));
                }
            }
            "AT+CPMS?" => {
                if let Ok(storage) = cpms::parse_query(&response.lines) {
                    let reports = MemoryReport::from_storage(&storage);
                    self.update(|s| replace(&mut s.storage, reports));
                }
            }
            "AT+COPS?" => {
                if let Ok(selection) = cops::parse_query(&response.lines) {
                    self.update(|s| replace(&mut s.operator, selection.name));
                }
            }
            _ => {
                let queried = [Domain::CircuitSwitched, Domain::Gprs, Domain::Eps]
                    .into_iter()
                    .find(|d| upper == format!("AT{}?", d.prefix()));
                let parsed = queried.and_then(|d| creg::parse_query(d, &response.lines).ok());
                if let Some(registration) = parsed {
                    self.set_registration(registration.domain, registration.status);
                }
            }
        }
    }
}

/// Sets `*slot` to `value`; reports whether it changed (for `send_if_modified`).
pub(crate) fn replace<T: PartialEq>(slot: &mut T, value: T) -> bool {
    if *slot == value {
        false
    } else {
        *slot = value;
        true
    }
}

/// The task's clock as the engine wants it. Under `tokio::time::pause` this is virtual time.
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Sleeps until `deadline`, or forever when there is none (a `select!` arm that never fires).
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// An open connection to a modem.
pub(crate) struct Link {
    io: BoxedIo,
    /// The engine. The task reads `is_idle`/`poll_timeout` for its `select!` guards.
    pub engine: Engine,
    engine_config: conductor_at::Config,
    buf: Vec<u8>,
    write_timeout: Duration,
    consecutive_timeouts: u32,
    max_consecutive_timeouts: u32,
    /// Why the link is unusable, once it is: every later command fails with it, and the task
    /// reconnects.
    pub dead: Option<ModemError>,
    /// The latest start-up notice (`RDY`, `SMS Ready`, …) or SIM change, for the task to
    /// schedule a re-init.
    notice: Option<String>,
    /// What the device is called, for error messages.
    device: String,
    /// URC line prefixes that are noise on this model (the quirks table): dropped here,
    /// logged at trace, never passed to the gateway.
    pub ignore_urcs: Vec<String>,
    /// In the ready loop: reaching `max_consecutive_timeouts` marks the link [`hung`]
    /// (the task escalates) instead of dead (init and probe give up on the link).
    ///
    /// [`hung`]: Link::hung
    pub escalate: bool,
    /// The modem stopped answering (N timeouts in a row) while the port stays open. Further
    /// commands fail at once with [`ModemError::NotResponding`] (so a refresh's string of
    /// queries does not wait out every timeout) until the escalation deals with it.
    pub hung: bool,
    /// The escalation runs: its own commands (ESC, `AT`, `AT+CFUN=1,1`) go out even though
    /// the link is hung.
    pub escalating: bool,
    /// Bytes read that no modem sends in text mode (control characters other than CR, LF,
    /// TAB, ESC and Ctrl-Z; bytes above 0x7F). Many with no answer means the baud rate is
    /// wrong: init's and the scan's "no answer" errors say so.
    pub unreadable: usize,
}

impl Link {
    /// Wraps an open transport.
    pub fn new(
        io: BoxedIo,
        device: impl Into<String>,
        engine_config: conductor_at::Config,
        write_timeout: Duration,
        max_consecutive_timeouts: u32,
    ) -> Link {
        Link {
            io,
            engine: Engine::with_config(engine_config.clone()),
            engine_config,
            buf: vec![0; 4096],
            write_timeout,
            consecutive_timeouts: 0,
            max_consecutive_timeouts: max_consecutive_timeouts.max(1),
            dead: None,
            notice: None,
            device: device.into(),
            unreadable: 0,
            ignore_urcs: Vec::new(),
            escalate: false,
            hung: false,
            escalating: false,
        }
    }

    /// Consecutive timeouts so far.
    pub fn consecutive_timeouts(&self) -> u32 {
        self.consecutive_timeouts
    }

    /// Forgets the timeouts after the modem answered again (escalation).
    pub fn reset_timeouts(&mut self) {
        self.consecutive_timeouts = 0;
        self.hung = false;
    }

    /// Takes the start-up notice seen since the last call, if any.
    pub fn take_notice(&mut self) -> Option<String> {
        self.notice.take()
    }

    /// Reads from the port into the link's buffer; pass the result to
    /// [`handle_read`](Link::handle_read). Cancel-safe.
    pub async fn read(&mut self) -> std::io::Result<usize> {
        self.io.read(&mut self.buf).await
    }

    /// Writes bytes outside the engine (the ESC that frees a modem left at a `> ` prompt).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ModemError> {
        self.write(bytes).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ModemError> {
        if let Some(dead) = &self.dead {
            return Err(dead.clone());
        }
        trace!(bytes = %redact(&String::from_utf8_lossy(bytes)).escape_debug(), "write");
        let io = &mut self.io;
        let result = tokio::time::timeout(self.write_timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await;
        let error = match result {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => ModemError::io(format!("writing to {}", self.device), e),
            Err(_) => ModemError::Disconnected {
                reason: format!(
                    "a write to {} did not complete within {:?} (flow control stuck, or the \
                     device is gone)",
                    self.device, self.write_timeout
                ),
            },
        };
        self.dead = Some(error.clone());
        Err(error)
    }

    /// Writes everything the engine wants written.
    pub async fn flush(&mut self) -> Result<(), ModemError> {
        while let Some(bytes) = self.engine.poll_transmit() {
            self.write(&bytes).await?;
        }
        Ok(())
    }

    /// Feeds the result of a port read to the engine; a closed or failed port kills the link.
    pub fn handle_read(&mut self, result: std::io::Result<usize>) {
        match result {
            Ok(0) => {
                self.dead = Some(ModemError::Disconnected {
                    reason: format!(
                        "{} closed the connection (unplugged, or the peer went away)",
                        self.device
                    ),
                });
            }
            Ok(n) => {
                let bytes = self.buf.get(..n).unwrap_or_default();
                trace!(bytes = %String::from_utf8_lossy(bytes).escape_debug(), "read");
                self.unreadable += bytes
                    .iter()
                    .filter(|&&b| {
                        (b < 0x20 && !matches!(b, b'\r' | b'\n' | b'\t' | 0x1A | 0x1B)) || b > 0x7E
                    })
                    .count();
                self.engine.handle_input(now(), bytes);
            }
            Err(e) => {
                self.dead = Some(ModemError::io(format!("reading from {}", self.device), e));
            }
        }
    }

    /// One turn of the loop: waits for bytes, the engine's deadline or room for a backlogged
    /// URC, and handles it.
    async fn step(&mut self, hooks: &mut Hooks<'_>, until: Option<Instant>) {
        let deadline = self.engine.poll_timeout().map(Instant::from_std);
        let backlog = hooks.outbox.has_backlog();
        tokio::select! {
            result = self.io.read(&mut self.buf) => self.handle_read(result),
            _ = sleep_until(deadline) => self.engine.handle_timeout(now()),
            _ = sleep_until(until) => {}
            _ = hooks.outbox.flush_one(), if backlog => {}
        }
    }

    /// Hands out the events that belong to no running command: URCs and diagnostics.
    pub fn dispatch_idle(&mut self, hooks: &mut Hooks<'_>) {
        while let Some(event) = self.engine.poll_event() {
            self.dispatch(hooks, event);
        }
    }

    fn dispatch(&mut self, hooks: &mut Hooks<'_>, event: Event) {
        match event {
            Event::Urc(urc) => {
                if let Urc::Vendor { name, params } = &urc
                    && is_noise(&self.ignore_urcs, name, params)
                {
                    trace!(%name, %params, "vendor noise (quirks table); ignored");
                    return;
                }
                match &urc {
                    Urc::Startup(startup) => self.notice = Some(format!("{startup:?}")),
                    Urc::SimStatus(status) if hooks.abort_on_startup => {
                        self.notice = Some(format!("+CPIN: {status:?}"));
                    }
                    _ => {}
                }
                hooks.urc(urc);
            }
            Event::Discarded { line, reason } => {
                debug!(line = %line.escape_debug(), ?reason, "discarded input");
            }
            Event::Completed { id, response, .. } => {
                debug!(%id, result = %response.result, "answer for a command nobody waits for");
            }
            Event::TimedOut { id, .. } => debug!(%id, "a command nobody waits for timed out"),
        }
    }

    /// Keeps the link serviced (URCs, drains) until `deadline`. Returns early if the link dies.
    pub async fn idle_until(&mut self, hooks: &mut Hooks<'_>, deadline: Instant) {
        while Instant::now() < deadline && self.dead.is_none() {
            self.step(hooks, Some(deadline)).await;
            if self.flush().await.is_err() {
                return;
            }
            self.dispatch_idle(hooks);
        }
    }

    /// Runs one command to its end: its answer, its timeout, or the loss of the link.
    pub async fn exec(
        &mut self,
        hooks: &mut Hooks<'_>,
        command: Command,
    ) -> Result<Reply, ExecError> {
        let line = redact(command.line());
        let timeout = command.timeout();
        let has_pdu = command.pdu().is_some();
        let lost = |link: &Link, error: ModemError| ExecError {
            error,
            pdu_sent: has_pdu && link.engine.pdu_sent(),
        };
        if hooks.shutdown.is_some_and(CancellationToken::is_cancelled) {
            return Err(ExecError::before_send(ModemError::Stopped));
        }
        // A timed-out command may still be draining: let it finish first.
        while !self.engine.is_idle() {
            if let Some(dead) = &self.dead {
                return Err(ExecError::before_send(dead.clone()));
            }
            self.step(hooks, None).await;
            if let Err(error) = self.flush().await {
                return Err(ExecError::before_send(error));
            }
            self.dispatch_idle(hooks);
        }
        if let Some(dead) = &self.dead {
            return Err(ExecError::before_send(dead.clone()));
        }
        if self.hung && !self.escalating {
            return Err(ExecError::before_send(ModemError::NotResponding {
                count: self.consecutive_timeouts,
            }));
        }
        debug!(command = %line, "command");
        let id = match self.engine.submit(now(), command) {
            Ok(id) => id,
            // Unreachable: the loop above waited for `is_idle`.
            Err(busy) => {
                return Err(ExecError::before_send(ModemError::Unsupported {
                    what: busy.to_string(),
                }));
            }
        };
        let mut notice = None;
        loop {
            if let Err(error) = self.flush().await {
                return Err(lost(self, error));
            }
            while let Some(event) = self.engine.poll_event() {
                match event {
                    Event::Completed {
                        id: done,
                        response,
                        pdu_sent,
                    } if done == id => {
                        self.consecutive_timeouts = 0;
                        debug!(command = %line, result = %response.result, "answer");
                        hooks.observe(&line, &response);
                        // Late start-up notices in the same read still count.
                        self.dispatch_idle(hooks);
                        return Ok(Reply { response, pdu_sent });
                    }
                    Event::TimedOut { id: done, pdu_sent } if done == id => {
                        self.consecutive_timeouts += 1;
                        // The engine may have queued an ESC for a stuck prompt: send it now.
                        let _ = self.flush().await;
                        if self.consecutive_timeouts >= self.max_consecutive_timeouts {
                            if self.escalate {
                                self.hung = true;
                            } else {
                                self.dead = Some(ModemError::NotResponding {
                                    count: self.consecutive_timeouts,
                                });
                            }
                        }
                        return Err(ExecError {
                            error: ModemError::Timeout {
                                command: line,
                                timeout,
                            },
                            pdu_sent,
                        });
                    }
                    Event::Urc(Urc::Startup(startup)) => {
                        notice = Some(format!("{startup:?}"));
                        self.dispatch(hooks, Event::Urc(Urc::Startup(startup)));
                    }
                    other => self.dispatch(hooks, other),
                }
            }
            if let (Some(notice), true) = (&notice, hooks.abort_on_startup) {
                // The modem restarted under the command: its answer will never come. Start
                // over with a fresh engine (the old one's state belongs to the old modem).
                let pdu_sent = has_pdu && self.engine.pdu_sent();
                self.engine = Engine::with_config(self.engine_config.clone());
                return Err(ExecError {
                    error: ModemError::Rebooted {
                        command: line,
                        notice: notice.clone(),
                    },
                    pdu_sent,
                });
            }
            if let Some(dead) = self.dead.clone() {
                return Err(lost(self, dead));
            }
            self.step(hooks, None).await;
        }
    }
}

/// Whether a vendor line (`name: params`) starts with one of the quirks table's noise
/// prefixes (`^RSSI`, `+QIND: "csq"`).
fn is_noise(prefixes: &[String], name: &str, params: &str) -> bool {
    let line = format!("{name}: {}", params.trim_start());
    prefixes
        .iter()
        .any(|p| !p.is_empty() && (line.starts_with(p.as_str()) || p == name))
}

/// A link with its hooks: runs commands directly, for init, the periodic refresh and `probe`.
pub(crate) struct Direct<'l, 'h> {
    /// The connection.
    pub link: &'l mut Link,
    /// Its surroundings.
    pub hooks: Hooks<'h>,
}

impl Direct<'_, '_> {
    /// Waits `duration` while keeping the link serviced; fails if the link died or shutdown
    /// was requested meanwhile.
    pub async fn pause(&mut self, duration: Duration) -> Result<(), ModemError> {
        self.link
            .idle_until(&mut self.hooks, Instant::now() + duration)
            .await;
        if let Some(dead) = &self.link.dead {
            return Err(dead.clone());
        }
        if self
            .hooks
            .shutdown
            .is_some_and(CancellationToken::is_cancelled)
        {
            return Err(ModemError::Stopped);
        }
        Ok(())
    }
}

impl crate::ops::Exec for Direct<'_, '_> {
    async fn exec(&mut self, command: Command) -> Result<Reply, ExecError> {
        self.link.exec(&mut self.hooks, command).await
    }
}
