//! The AT engine: a sans-IO state machine for one modem conversation.
//!
//! Why: the modem task (`conductor-modem`) owns the port and the clock; this owns the
//! protocol. Keeping them apart means every conversation, however odd, is a unit test: bytes
//! and instants in, bytes and events out, nothing else (quinn-proto's split).
//!
//! Keeps promise 5 (garbage never wedges the conversation) and carries promise 3: every
//! end of a data-phase command says whether its PDU had been written (`pdu_sent`), because
//! DESIGN "Decisions / Sending" makes a send ambiguous from that moment on.
//!
//! See [`Engine`] for the call order and the state diagram.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::lexer::{Lexer, Token};
use crate::urc::{self, UrcKind};
use crate::{Command, FinalResult, InfoLine, Response, Urc, params};

/// Ctrl-Z (SUB): ends the PDU of the data phase (TS 27.005 §4.3).
const CTRL_Z: u8 = 0x1A;
/// ESC: cancels the data phase (TS 27.005 §3.5.1, §4.3: "sending can be cancelled by
/// giving `<ESC>` character").
const ESC: u8 = 0x1B;

/// Answers whose header line is followed by a PDU line (TS 27.005 §4.1, §4.2).
const TWO_LINE_RESPONSES: &[&str] = &["+CMGL", "+CMGR"];

/// The engine's limits and waits. The defaults suit every modem we know; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The longest line kept, in bytes. Longer lines are dropped with
    /// [`DiscardReason::Overlong`] and the stream resynchronises at the next line end. The
    /// longest legitimate lines (`+COPS=?` scans, `+CMGL` PDUs of ~350 hex digits) fit in
    /// the default 4 KiB.
    pub max_line_len: usize,
    /// After a timeout: how long the line must stay quiet (no line attributable to the
    /// timed-out command) before the engine takes a new command.
    pub drain_quiet: Duration,
    /// After a timeout: the longest the engine drains, however chatty the modem.
    pub drain_limit: Duration,
    /// How long a two-line URC (`+CMT`, `+CDS`, `+CBM`) waits for its PDU line before it is
    /// emitted without one.
    pub pdu_line_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_line_len: 4096,
            drain_quiet: Duration::from_secs(2),
            drain_limit: Duration::from_secs(10),
            pdu_line_timeout: Duration::from_secs(2),
        }
    }
}

/// Identifies a submitted command in the events that end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(u64);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// [`Engine::submit`] was called while a command was in flight or the engine was draining
/// a timed-out one. The command is handed back untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the AT engine is busy; `{}` was not sent", .command.line())]
pub struct Busy {
    /// The rejected command.
    pub command: Command,
}

/// What the engine reports. Events are data: a modem's `ERROR` is a `Completed` event with
/// that final result, not a Rust error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The command ended with a final result code.
    Completed {
        /// The command.
        id: CommandId,
        /// Its information lines and final result.
        response: Response,
        /// Whether the PDU of the data phase had been written. For `AT+CMGS` a `+CMS ERROR`
        /// with `pdu_sent: false` came before the prompt and the message surely did not
        /// leave; with `true` the modem had the message.
        pdu_sent: bool,
    },
    /// No final result code came in time; the engine now drains late answers.
    TimedOut {
        /// The command.
        id: CommandId,
        /// Whether the PDU had been written: `true` makes a send ambiguous (the row becomes
        /// `unknown`, DESIGN "Decisions / Sending"); `false` means it was never handed over.
        pdu_sent: bool,
    },
    /// An unsolicited result code, delivered the moment it was complete, also when it came
    /// in the middle of a command's answer.
    Urc(Urc),
    /// A diagnostic: input the engine dropped, and why.
    Discarded {
        /// The line (escaped if it was not printable; truncated if overlong).
        line: String,
        /// Why it was dropped.
        reason: DiscardReason,
    },
}

/// Why a line was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscardReason {
    /// Longer than [`Config::max_line_len`]; the rest of the line is skipped too.
    Overlong,
    /// Binary noise: control characters, or mostly bytes that are neither ASCII nor UTF-8.
    Garbage,
    /// A line that belongs to no command: a final result code while idle, or a late answer
    /// of a timed-out command while draining.
    Stray,
    /// A `> ` prompt while draining a timed-out send; the engine answered it with ESC.
    UnexpectedPrompt,
}

/// The command in flight and what it collected so far.
#[derive(Debug)]
struct InFlight {
    id: CommandId,
    command: Command,
    /// When the current phase times out.
    deadline: Instant,
    /// Information lines so far.
    lines: Vec<InfoLine>,
    /// The last line is a two-line header whose PDU line should come next.
    awaiting_pdu: bool,
}

/// What is left of a timed-out command while its late answers are drained.
#[derive(Debug)]
struct Drain {
    /// The timed-out command's response prefix: lines with it are its late answer.
    prefix: Option<String>,
    /// The timed-out command was a dial, so call results are its final result codes.
    dial: bool,
    /// It had a data phase: a late `> ` prompt is possible and is cancelled with ESC.
    data_phase: bool,
    /// Drain ends when the line was quiet until this instant …
    quiet_until: Instant,
    /// … or at this instant at the latest.
    limit: Instant,
}

impl Drain {
    fn deadline(&self) -> Instant {
        self.quiet_until.min(self.limit)
    }
}

/// The engine's states; see the diagram on [`Engine`].
#[derive(Debug)]
enum State {
    Idle,
    AwaitingFinal(InFlight),
    AwaitingPrompt(InFlight),
    PduSent(InFlight),
    Draining(Drain),
}

/// A two-line URC header (`+CMT`, `+CDS`, `+CBM`) waiting for its PDU line.
#[derive(Debug)]
struct PendingUrc {
    kind: UrcKind,
    name: &'static str,
    line: String,
    deadline: Instant,
}

/// A sans-IO AT command engine for one modem.
///
/// It performs no I/O and never reads a clock: the caller passes `now` to every input and
/// moves bytes between the engine and the port. One command runs at a time.
///
/// # Method families and call order
///
/// - Getters: [`is_idle`](Engine::is_idle), [`in_flight`](Engine::in_flight),
///   [`pdu_sent`](Engine::pdu_sent).
/// - Inputs: [`handle_input`](Engine::handle_input) with bytes read from the port,
///   [`handle_timeout`](Engine::handle_timeout) when the instant from `poll_timeout` passed.
/// - Commands: [`submit`](Engine::submit), only while `is_idle()`.
/// - Outputs: [`poll_transmit`](Engine::poll_transmit),
///   [`poll_event`](Engine::poll_event), [`poll_timeout`](Engine::poll_timeout).
///
/// After every input or command, drain the outputs in this order: `poll_transmit` until
/// `None` (write and flush each buffer in order), then `poll_event` until `None`, then
/// re-arm the timer from `poll_timeout`. This is the modem task's `select!` loop:
///
/// ```text
/// loop {
///     select! {
///         bytes = port.read()                     => engine.handle_input(now, &bytes),
///         req = requests.recv(), if engine.is_idle() => engine.submit(now, req.command)?,
///         _ = sleep_until(engine.poll_timeout())  => engine.handle_timeout(now),
///     }
///     while let Some(b) = engine.poll_transmit() { port.write_all(&b) }
///     while let Some(e) = engine.poll_event() { dispatch(e) }
/// }
/// ```
///
/// # States
///
/// ```text
///      submit                          +---------------+  final result code
///        +---------------------------> | AwaitingFinal | ------------------> Idle, Completed
///        |                             +---------------+
///        |                                     |
///        |                                     | deadline: TimedOut { pdu_sent: false }
///        |                                     v
///    +------+  old command's final result, +---------------------------+
///    | Idle | <--------------------------- |          Draining         | <-- late "> ":
///    +------+  quiet period or drain limit +---------------------------+     write ESC
///        |                                     ^                   ^
///        |               deadline: write ESC,  |                   | deadline: write ESC,
///        |       TimedOut { pdu_sent: false }  |                   | TimedOut {
///        |                                     |                   |   pdu_sent: true }
///        |  submit (with PDU)         +----------------+           |
///        +--------------------------> | AwaitingPrompt |           |
///                                     +----------------+           |
///                                       |         |                |
///       final result code (+CMS ERROR): |         | "> ": write    |
///       Idle, Completed {               |         | PDU + Ctrl-Z   |
///         pdu_sent: false }  <----------+         v                |
///                                            +---------+           |
///                                            | PduSent | ----------+
///                                            +---------+
///                                                 |  final result code:
///                                                 +-> Idle, Completed { pdu_sent: true }
/// ```
///
/// - `Idle` → `AwaitingFinal`: V.250 §5.2.1, the command line ends with S3 (CR).
/// - `AwaitingFinal` → `Idle`: V.250 §5.7.2, a final result code ends every command;
///   TS 27.005 §3.2.5 and TS 27.007 §9.2 add `+CMS ERROR`/`+CME ERROR` as final results.
/// - `Idle` → `AwaitingPrompt` → `PduSent`: TS 27.005 §4.3, "the TA shall send a four
///   character sequence `<CR><LF><greater_than><space>` … after that the PDU can be
///   given from TE to ME/TA"; "the PDU shall be ended with `<ctrl-Z>`".
/// - `AwaitingPrompt` → `Idle` on a final result: TS 27.005 §4.3 allows `+CMS ERROR`
///   instead of the prompt; nothing was sent (`pdu_sent: false`).
/// - `AwaitingPrompt`/`PduSent` → `Draining` on the deadline, writing ESC: TS 27.005
///   §3.5.1/§4.3, "sending can be cancelled by giving `<ESC>` character". A modem left at
///   the prompt would otherwise swallow the next command as message text.
///
/// # Framing and echo
///
/// Lines end at any run of CR and LF (V.250 §5.7.1 frames them `<CR><LF>…<CR><LF>`; bare CR
/// or LF also work). Lines are trimmed of control bytes, so an echoed PDU's Ctrl-Z or a
/// modem's NUL padding does not matter; a line that still holds control characters or is
/// mostly binary is [`DiscardReason::Garbage`]. A line longer than
/// [`Config::max_line_len`] is [`DiscardReason::Overlong`].
///
/// Echo (V.250 §6.2.4, `ATE1`) is dropped by content, not by position: while a command is
/// in flight a line equal to its command line (case and spaces ignored) is the echo, and in
/// `PduSent` a line equal to the PDU is the echo of the data phase. So echo on, echo off,
/// and echo switched by the command itself (`ATE0` is still echoed) need no configuration,
/// and an echo split across reads is reassembled by the lexer like any line.
///
/// # Prompt detection
///
/// The prompt has no line end, so the lexer recognises it by position: a `>` at the start of
/// a line (after CR/LF, or after nothing but padding), with the one following space
/// swallowed whether it comes or not (`> `, `>`, `\r\n> ` all work). It only does so while a
/// prompt may come (`AwaitingPrompt`, or draining a send), so a `>` inside ordinary text is
/// never mistaken for it.
///
/// # URCs and the answer
///
/// In a command, a line is, in this order: its echo; a final result code; an information
/// line if it carries the command's prefix (`+CREG: 0,1` answering `AT+CREG?`); a URC if the
/// URC table knows it (it leaves as [`Event::Urc`] at once, never mixed into the answer); an
/// information line otherwise (bare answers like `AT+CGSN`'s digits). While idle, unknown
/// lines are [`Urc::Unknown`]. Two-line constructs (`+CMGL`/`+CMGR` headers, `+CMT`/`+CDS`
/// URCs) take the next line as their PDU if it is hex; if it is not, the header is kept
/// without a PDU and the line is processed normally, which resynchronises.
///
/// # Timeouts and late answers
///
/// Each command has its own timeout ([`Command::timeout`]; `AT+CMGS` also a prompt timeout).
/// On expiry the engine reports [`Event::TimedOut`] and enters `Draining`, in which it
/// refuses new commands: a slow modem's late `OK` must not be taken for the next command's
/// answer. It discards, as [`DiscardReason::Stray`], every line that is not a URC (lines with
/// the timed-out command's prefix count as its answer, not as URCs) and returns to `Idle` as
/// soon as a final result code arrives (the old command's end), or when no stray line came
/// for [`Config::drain_quiet`], or after [`Config::drain_limit`] at most. URCs keep flowing.
/// A line already half-received when a command is written began before it, so it cannot
/// be its answer either: it is handled as if the engine were still idle. An answer later
/// than the drain cannot be told from the next command's; choose timeouts above the
/// modem's worst case. The alternative, taking the next command at once and matching
/// answers by echo, fails with echo off and was rejected.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    lexer: Lexer,
    state: State,
    /// The id of the next submitted command.
    next_id: u64,
    /// Bytes to write, in order.
    transmits: VecDeque<Vec<u8>>,
    /// Events to report, in order.
    events: VecDeque<Event>,
    /// A two-line URC header waiting for its PDU line.
    pending_urc: Option<PendingUrc>,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new()
    }
}

impl Engine {
    /// An idle engine with the default [`Config`].
    pub fn new() -> Engine {
        Engine::with_config(Config::default())
    }

    /// An idle engine with the given limits.
    pub fn with_config(config: Config) -> Engine {
        Engine {
            lexer: Lexer::new(config.max_line_len),
            config,
            state: State::Idle,
            next_id: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            pending_urc: None,
        }
    }

    // ---- Getters ----------------------------------------------------------------------

    /// Whether a command can be submitted: none is in flight and none is draining.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// The command in flight, if any (not a draining one: that one has timed out).
    pub fn in_flight(&self) -> Option<CommandId> {
        self.flight().map(|f| f.id)
    }

    /// Whether the command in flight has written its PDU: if the port is lost now, the send
    /// is ambiguous.
    pub fn pdu_sent(&self) -> bool {
        matches!(self.state, State::PduSent(_))
    }

    // ---- Inputs -----------------------------------------------------------------------

    /// Feeds bytes read from the modem. Any bytes are accepted; incomplete lines wait for
    /// more.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        for &byte in bytes {
            let expect_prompt = matches!(
                self.state,
                State::AwaitingPrompt(_)
                    | State::Draining(Drain {
                        data_phase: true,
                        ..
                    })
            );
            if let Some(token) = self.lexer.push(byte, expect_prompt) {
                self.handle_token(now, token);
            }
        }
    }

    /// Acts on every deadline that has passed at `now`. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.pending_urc.as_ref().is_some_and(|p| now >= p.deadline) {
            self.flush_pending_urc();
        }
        let expired = match &self.state {
            State::Idle => false,
            State::AwaitingFinal(f) | State::AwaitingPrompt(f) | State::PduSent(f) => {
                now >= f.deadline
            }
            State::Draining(drain) => now >= drain.deadline(),
        };
        if !expired {
            return;
        }
        let (flight, pdu_sent) = match std::mem::replace(&mut self.state, State::Idle) {
            // A drain that reached its quiet period or limit ends here: the state is Idle.
            State::Idle | State::Draining(_) => return,
            State::AwaitingFinal(f) => (f, false),
            State::AwaitingPrompt(f) => (f, false),
            State::PduSent(f) => (f, true),
        };
        let data_phase = flight.command.pdu().is_some();
        if data_phase {
            // Whether the modem sits at the prompt (lost or garbled `> `), or already has
            // the PDU, ESC is the one byte that is safe: it cancels a pending data phase and
            // is ignored in command state (V.250 §5.2.1: a command line starts at "AT" and
            // what precedes it is not a command).
            self.transmits.push_back(vec![ESC]);
        }
        self.events.push_back(Event::TimedOut {
            id: flight.id,
            pdu_sent,
        });
        self.state = State::Draining(Drain {
            prefix: flight.command.response_prefix().map(str::to_owned),
            dial: flight.command.is_dial(),
            data_phase,
            quiet_until: after(now, self.config.drain_quiet),
            limit: after(now, self.config.drain_limit),
        });
    }

    // ---- Commands ---------------------------------------------------------------------

    /// Starts a command: queues its line for transmission and arms its timeout.
    ///
    /// Fails with [`Busy`], handing the command back, unless [`is_idle`](Engine::is_idle).
    pub fn submit(&mut self, now: Instant, command: Command) -> Result<CommandId, Busy> {
        if !self.is_idle() {
            return Err(Busy { command });
        }
        let id = CommandId(self.next_id);
        self.next_id += 1;
        // Whatever is half-received now was sent before this command: not its answer.
        self.lexer.mark();
        let mut line = Vec::with_capacity(command.line().len() + 1);
        line.extend_from_slice(command.line().as_bytes());
        line.push(b'\r');
        self.transmits.push_back(line);
        let has_pdu = command.pdu().is_some();
        let wait = if has_pdu {
            command.prompt_timeout()
        } else {
            command.timeout()
        };
        let flight = InFlight {
            id,
            deadline: after(now, wait),
            command,
            lines: Vec::new(),
            awaiting_pdu: false,
        };
        self.state = if has_pdu {
            State::AwaitingPrompt(flight)
        } else {
            State::AwaitingFinal(flight)
        };
        Ok(id)
    }

    // ---- Outputs ----------------------------------------------------------------------

    /// The next bytes to write to the modem, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Engine::handle_timeout) should next be called; `None` when
    /// nothing waits on time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match &self.state {
            State::Idle => None,
            State::AwaitingFinal(f) | State::AwaitingPrompt(f) | State::PduSent(f) => {
                Some(f.deadline)
            }
            State::Draining(drain) => Some(drain.deadline()),
        };
        let pending = self.pending_urc.as_ref().map(|p| p.deadline);
        match (state, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- Internals --------------------------------------------------------------------

    fn flight(&self) -> Option<&InFlight> {
        match &self.state {
            State::AwaitingFinal(f) | State::AwaitingPrompt(f) | State::PduSent(f) => Some(f),
            State::Idle | State::Draining(_) => None,
        }
    }

    fn flight_mut(&mut self) -> Option<&mut InFlight> {
        match &mut self.state {
            State::AwaitingFinal(f) | State::AwaitingPrompt(f) | State::PduSent(f) => Some(f),
            State::Idle | State::Draining(_) => None,
        }
    }

    fn handle_token(&mut self, now: Instant, token: Token) {
        match token {
            Token::Line(raw) => self.handle_line(now, &raw, false),
            Token::EarlierLine(raw) => self.handle_line(now, &raw, true),
            Token::Prompt => {
                self.end_two_line_constructs();
                self.handle_prompt(now);
            }
            Token::Overlong(head) => {
                self.end_two_line_constructs();
                self.events.push_back(Event::Discarded {
                    line: format!("{}…", head.escape_ascii()),
                    reason: DiscardReason::Overlong,
                });
            }
        }
    }

    fn handle_prompt(&mut self, now: Instant) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::AwaitingPrompt(mut flight) => {
                // TS 27.005 §4.3: the PDU, as hex, ended with Ctrl-Z. From here the send is
                // ambiguous until the final result code.
                let pdu = flight.command.pdu().unwrap_or_default();
                let mut data = Vec::with_capacity(pdu.len() + 1);
                data.extend_from_slice(pdu.as_bytes());
                data.push(CTRL_Z);
                self.transmits.push_back(data);
                flight.deadline = after(now, flight.command.timeout());
                self.state = State::PduSent(flight);
            }
            other => {
                // Only reachable while draining a send (the lexer reports prompts only when
                // one may come): the modem still waits for a PDU we will not send.
                self.state = other;
                self.transmits.push_back(vec![ESC]);
                self.events.push_back(Event::Discarded {
                    line: ">".to_owned(),
                    reason: DiscardReason::UnexpectedPrompt,
                });
            }
        }
    }

    /// Handles one line. `earlier` lines had begun before the command in flight was
    /// written, so they cannot be its answer (a stale `OK` or `+CMS ERROR` half-received
    /// while idle); they are treated as if the engine were still idle.
    fn handle_line(&mut self, now: Instant, raw: &[u8], earlier: bool) {
        let text = decode(raw);
        if let Ok(text) = &text {
            if !earlier && self.is_echo(text) {
                return;
            }
            if params::is_hex(text) && self.attach_pdu(text) {
                return;
            }
        }
        // Not a PDU line: a header still waiting for one keeps none (resynchronisation).
        self.end_two_line_constructs();
        let text = match text {
            Ok(text) => text,
            Err(()) => {
                self.events.push_back(Event::Discarded {
                    line: raw.escape_ascii().to_string(),
                    reason: DiscardReason::Garbage,
                });
                return;
            }
        };
        match &self.state {
            _ if earlier => self.idle_line(now, text),
            State::Idle => self.idle_line(now, text),
            State::Draining(_) => self.draining_line(now, text),
            State::AwaitingFinal(_) | State::AwaitingPrompt(_) | State::PduSent(_) => {
                self.command_line(now, text);
            }
        }
    }

    /// Whether the line is the echo of the command line or of the data phase's PDU.
    fn is_echo(&self, text: &str) -> bool {
        let Some(flight) = self.flight() else {
            return false;
        };
        let same = |a: &str, b: &str| {
            let squash = |s: &str| -> String {
                s.chars()
                    .filter(|c| !c.is_whitespace())
                    .map(|c| c.to_ascii_uppercase())
                    .collect()
            };
            squash(a) == squash(b)
        };
        same(text, flight.command.line())
            || (matches!(self.state, State::PduSent(_))
                && flight.command.pdu().is_some_and(|pdu| same(text, pdu)))
    }

    /// Gives a hex line to the header waiting for it, if any.
    fn attach_pdu(&mut self, text: &str) -> bool {
        if let Some(pending) = self.pending_urc.take() {
            let urc = urc::build(
                pending.kind,
                pending.name,
                &pending.line,
                Some(text.to_owned()),
            );
            self.events.push_back(Event::Urc(urc));
            return true;
        }
        if let Some(flight) = self.flight_mut().filter(|f| f.awaiting_pdu) {
            flight.awaiting_pdu = false;
            if let Some(header) = flight.lines.last_mut() {
                header.pdu = Some(text.to_owned());
                return true;
            }
        }
        false
    }

    fn end_two_line_constructs(&mut self) {
        self.flush_pending_urc();
        if let Some(flight) = self.flight_mut() {
            flight.awaiting_pdu = false;
        }
    }

    fn flush_pending_urc(&mut self) {
        if let Some(pending) = self.pending_urc.take() {
            let urc = urc::build(pending.kind, pending.name, &pending.line, None);
            self.events.push_back(Event::Urc(urc));
        }
    }

    fn command_line(&mut self, now: Instant, text: String) {
        let Some(flight) = self.flight_mut() else {
            return;
        };
        if let Some(result) = FinalResult::parse(&text, flight.command.is_dial()) {
            self.complete(result);
            return;
        }
        if let Some(prefix) = flight
            .command
            .response_prefix()
            .filter(|p| has_prefix(&text, p))
        {
            flight.awaiting_pdu = TWO_LINE_RESPONSES
                .iter()
                .any(|two| two.eq_ignore_ascii_case(prefix));
            flight.lines.push(InfoLine::new(text));
            return;
        }
        if let Some((kind, name)) = urc::classify(&text) {
            self.urc_line(now, kind, name, text);
            return;
        }
        flight.lines.push(InfoLine::new(text));
    }

    fn complete(&mut self, result: FinalResult) {
        let (flight, pdu_sent) = match std::mem::replace(&mut self.state, State::Idle) {
            State::AwaitingFinal(f) | State::AwaitingPrompt(f) => (f, false),
            State::PduSent(f) => (f, true),
            other @ (State::Idle | State::Draining(_)) => {
                self.state = other;
                return;
            }
        };
        self.events.push_back(Event::Completed {
            id: flight.id,
            response: Response {
                lines: flight.lines,
                result,
            },
            pdu_sent,
        });
    }

    fn idle_line(&mut self, now: Instant, text: String) {
        if FinalResult::parse(&text, false).is_some() {
            self.events.push_back(Event::Discarded {
                line: text,
                reason: DiscardReason::Stray,
            });
        } else if let Some((kind, name)) = urc::classify(&text) {
            self.urc_line(now, kind, name, text);
        } else {
            self.events.push_back(Event::Urc(Urc::Unknown(text)));
        }
    }

    fn draining_line(&mut self, now: Instant, text: String) {
        let State::Draining(drain) = &mut self.state else {
            return;
        };
        let old_answer = drain
            .prefix
            .as_deref()
            .is_some_and(|p| has_prefix(&text, p));
        if !old_answer {
            if FinalResult::parse(&text, drain.dial).is_some() {
                // The timed-out command's final result code: nothing more will come for it.
                self.state = State::Idle;
                self.events.push_back(Event::Discarded {
                    line: text,
                    reason: DiscardReason::Stray,
                });
                return;
            }
            if let Some((kind, name)) = urc::classify(&text) {
                self.urc_line(now, kind, name, text);
                return;
            }
        }
        drain.quiet_until = after(now, self.config.drain_quiet);
        self.events.push_back(Event::Discarded {
            line: text,
            reason: DiscardReason::Stray,
        });
    }

    fn urc_line(&mut self, now: Instant, kind: UrcKind, name: &'static str, text: String) {
        if kind.takes_pdu() {
            self.pending_urc = Some(PendingUrc {
                kind,
                name,
                line: text,
                deadline: after(now, self.config.pdu_line_timeout),
            });
        } else {
            let urc = urc::build(kind, name, &text, None);
            self.events.push_back(Event::Urc(urc));
        }
    }
}

/// Whether an information line carries `prefix` (`+CREG: …` for `+CREG`, not `+CREGX`).
fn has_prefix(text: &str, prefix: &str) -> bool {
    params::after_prefix(text, prefix).is_some()
}

/// Text of a line, or `Err` if it is binary noise: it holds control characters (the lexer
/// trimmed them from both ends already), or it is not UTF-8 and fewer than half its bytes
/// are printable ASCII. Non-UTF-8 text that is mostly ASCII (a Latin-1 operator name) is
/// kept, lossily decoded, so an answer is not lost over one odd byte.
fn decode(raw: &[u8]) -> Result<String, ()> {
    let control = raw
        .iter()
        .any(|&b| (b.is_ascii_control() && b != b'\t') || b == 0x7F);
    if control {
        return Err(());
    }
    match std::str::from_utf8(raw) {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => {
            let printable = raw
                .iter()
                .filter(|b| b.is_ascii_graphic() || **b == b' ')
                .count();
            if printable * 2 < raw.len() {
                Err(())
            } else {
                Ok(String::from_utf8_lossy(raw).into_owned())
            }
        }
    }
}

/// `now + wait`, saturating instead of panicking on absurd durations.
fn after(now: Instant, wait: Duration) -> Instant {
    let mut wait = wait;
    loop {
        if let Some(deadline) = now.checked_add(wait) {
            return deadline;
        }
        wait /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(line: &str) -> Command {
        Command::new(line).expect("valid test command")
    }

    fn events(engine: &mut Engine) -> Vec<Event> {
        std::iter::from_fn(|| engine.poll_event()).collect()
    }

    #[test]
    fn a_new_engine_is_idle_with_nothing_to_do() {
        let mut engine = Engine::new();
        assert!(engine.is_idle());
        assert_eq!(engine.in_flight(), None);
        assert_eq!(engine.poll_transmit(), None);
        assert_eq!(engine.poll_event(), None);
        assert_eq!(engine.poll_timeout(), None);
    }

    #[test]
    fn submit_writes_the_line_with_cr_and_arms_the_timeout() {
        let now = Instant::now();
        let mut engine = Engine::new();
        let id = engine.submit(now, command("AT+CSQ"));
        assert_eq!(engine.in_flight(), id.ok());
        assert_eq!(engine.poll_transmit(), Some(b"AT+CSQ\r".to_vec()));
        assert_eq!(
            engine.poll_timeout(),
            Some(now + crate::command::DEFAULT_TIMEOUT)
        );
    }

    #[test]
    fn a_second_submit_while_busy_hands_the_command_back() {
        let now = Instant::now();
        let mut engine = Engine::new();
        assert!(engine.submit(now, command("AT")).is_ok());
        assert_eq!(
            engine.submit(now, command("AT+CSQ")),
            Err(Busy {
                command: command("AT+CSQ")
            })
        );
    }

    #[test]
    fn ids_increase_per_command() {
        let now = Instant::now();
        let mut engine = Engine::new();
        let first = engine.submit(now, command("AT"));
        engine.handle_input(now, b"OK\r");
        let second = engine.submit(now, command("AT"));
        assert!(matches!((first, second), (Ok(a), Ok(b)) if a < b));
    }

    #[test]
    fn an_absurd_timeout_saturates_instead_of_panicking() {
        let now = Instant::now();
        let mut engine = Engine::new();
        let long = command("AT").with_timeout(Duration::MAX);
        assert!(engine.submit(now, long).is_ok());
        assert!(engine.poll_timeout().is_some_and(|t| t > now));
    }

    #[test]
    fn decode_keeps_text_and_rejects_binary() {
        assert_eq!(decode(b"+CSQ: 1,2"), Ok("+CSQ: 1,2".to_owned()));
        assert_eq!(decode(b"caf\xe9 net"), Ok("caf\u{fffd} net".to_owned()));
        assert_eq!(decode(b"\xfe\xfa\xfb1"), Err(()));
        assert_eq!(decode(b"O\x00K"), Err(()));
    }

    #[test]
    fn a_pending_cmt_header_is_emitted_without_pdu_after_its_wait() {
        let now = Instant::now();
        let mut engine = Engine::new();
        engine.handle_input(now, b"\r\n+CMT: ,24\r\n");
        assert_eq!(events(&mut engine), vec![]);
        let deadline = engine.poll_timeout().expect("waits for the PDU");
        engine.handle_timeout(deadline);
        assert_eq!(
            events(&mut engine),
            vec![Event::Urc(Urc::Message {
                alpha: None,
                length: 24,
                pdu: None
            })]
        );
        assert_eq!(engine.poll_timeout(), None);
    }
}
