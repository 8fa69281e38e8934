//! The virtual modem: a sans-IO DCE. Bytes from the host and `now` in, bytes for the host,
//! events for the network and the next deadline out.
//!
//! Why sans-IO: every behaviour (echo, chained commands, the `> ` prompt, URCs between lines,
//! send latency, faults) is tested by feeding bytes at chosen instants and comparing bytes,
//! with no sockets and no clock. `serve.rs` adapts it to TCP, a pty or an in-memory duplex;
//! `network.rs` moves messages between modems. Not here: routing, wall-clock time, I/O.
//!
//! # Driving it
//! - Inputs: [`VirtualModem::handle_input`] (host bytes), [`VirtualModem::handle_timeout`]
//!   (call once `now` reaches [`VirtualModem::poll_timeout`]), [`VirtualModem::deliver`]
//!   (the network hands over an SMS-DELIVER or SMS-STATUS-REPORT), [`VirtualModem::apply_fault`].
//! - Outputs: [`VirtualModem::poll_output`] (bytes for the host), [`VirtualModem::poll_event`]
//!   (submissions and "memory available" for the network), [`VirtualModem::poll_timeout`].
//!
//! After any input, drain `poll_output` and `poll_event`, then sleep until `poll_timeout`.
//!
//! # Line discipline (ITU-T V.250 §5.2)
//! Characters are echoed as they arrive while `ATE1`. A line ends at CR (S3); backspace (S5)
//! edits it; `A/` repeats the last line. Lines without the `AT` prefix are ignored. Responses
//! are framed `\r\n<text>\r\n` and end with `\r\nOK\r\n` or an error (see [`crate::codes`]).
//! After `AT+CMGS`/`AT+CMGW` the DCE writes `\r\n> ` and collects the PDU (or text) up to
//! Ctrl-Z; ESC cancels (TS 27.005 §3.5.1).
//!
//! # Where unsolicited lines go
//! URCs and vendor noise are whole lines and are written only between lines: never inside an
//! echoed line that is still being typed, never after the `> ` prompt. Noise may also come
//! between two lines of a response, or before an echo, as Huawei and Quectel modems do.
//! SMS indications obey `AT+CNMI` `<mode>` (0 buffers them in the TA, `<bfr>` flushes or
//! clears them, TS 27.005 §3.4.1).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use conductor_sms::{
    Address, DecodedPdu, Direction, MessageClass, Submit, Tpdu, decode_pdu, decode_pdu_with,
};

use crate::codes::Final;
use crate::command_line::{self, Command as CommandLineCommand, CommandLine, MAX_LINE_LENGTH};
use crate::faults::{Fault, FaultKind, FaultState, HoldSends, RejectSends, SimRefusal};
use crate::personality::{Cnmi, Personality, ReportStore, ReportUrc};
use crate::sim_card::{MessageStatus, SimCard, StoredMessage};

/// How long a send takes, drawn uniformly from `min..=max` with the modem's seeded RNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendLatency {
    /// Shortest.
    pub min: Duration,
    /// Longest.
    pub max: Duration,
}

impl SendLatency {
    /// Always `latency`.
    pub const fn fixed(latency: Duration) -> Self {
        Self {
            min: latency,
            max: latency,
        }
    }

    /// No latency: `+CMGS` comes with the PDU's Ctrl-Z.
    pub const ZERO: Self = Self::fixed(Duration::ZERO);

    fn draw(&self, rng: &mut fastrand::Rng) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let span = (self.max - self.min).as_micros();
        let span = u64::try_from(span).unwrap_or(u64::MAX);
        self.min + Duration::from_micros(rng.u64(0..=span))
    }
}

impl Default for SendLatency {
    /// 1 to 3 seconds, what real modems take on a live network.
    fn default() -> Self {
        Self {
            min: Duration::from_secs(1),
            max: Duration::from_secs(3),
        }
    }
}

/// A latency that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid send latency {input:?}: expected seconds (\"2\", \"0.5\") or a range (\"1-3\")")]
pub struct InvalidLatency {
    /// What was given.
    pub input: String,
}

impl std::str::FromStr for SendLatency {
    type Err = InvalidLatency;

    /// Seconds (`"2"`, `"0.25"`) or a range of seconds (`"1-3"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InvalidLatency {
            input: s.to_owned(),
        };
        let secs = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .and_then(|v| Duration::try_from_secs_f64(v).ok())
                .ok_or_else(err)
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (min, max) = (secs(a)?, secs(b)?);
                if max < min {
                    return Err(err());
                }
                Ok(Self { min, max })
            }
            None => Ok(Self::fixed(secs(s)?)),
        }
    }
}

/// Everything a virtual modem is built from.
#[derive(Clone, Debug, PartialEq)]
pub struct ModemOptions {
    /// The model it behaves like.
    pub personality: Personality,
    /// Its own number (MSISDN), international with '+'.
    pub number: String,
    /// A SIM PIN to ask for after every power-up; `None` for an unlocked SIM.
    pub pin: Option<String>,
    /// Slots of the SIM ("SM").
    pub sim_capacity: usize,
    /// Slots of the phone memory ("ME"), if not the personality's.
    pub me_capacity: Option<usize>,
    /// How long a send takes.
    pub send_latency: SendLatency,
    /// Seed of the modem's RNG (latency, noise, faults).
    pub seed: u64,
    /// Which modem of the network this is, to give each its own IMEI, IMSI and ICCID.
    pub ordinal: u32,
}

impl Default for ModemOptions {
    fn default() -> Self {
        Self {
            personality: Personality::generic(),
            number: "+15550000001".to_owned(),
            pin: None,
            sim_capacity: 30,
            me_capacity: None,
            send_latency: SendLatency::default(),
            seed: 0,
            ordinal: 0,
        }
    }
}

/// The PUK that unblocks a SIM after three wrong PINs.
pub const PUK: &str = "12345678";

/// How long the TA waits for `AT+CNMA` after `+CMT`/`+CDS` with `AT+CSMS=1` (TS 27.005
/// §3.4.4 leaves it to the network timer; 15 s is the usual TR2M).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(15);

/// TE character set (`AT+CSCS`): only what changes how strings are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Charset {
    Gsm,
    Ira,
    Ucs2,
}

impl Charset {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Charset::Gsm => "GSM",
            Charset::Ira => "IRA",
            Charset::Ucs2 => "UCS2",
        }
    }
}

/// Settings that `ATZ`/`AT&F` or a reboot put back.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Settings {
    pub echo: bool,
    pub quiet: bool,
    pub cmee: u8,
    pub text_mode: bool,
    pub cnmi: Cnmi,
    pub cscs: Charset,
    /// `AT+CSMP`: first octet, validity, PID, DCS for text-mode sends.
    pub csmp: [u8; 4],
    pub csdh: bool,
    pub creg: u8,
    pub cgreg: u8,
    pub cereg: u8,
    pub cops_format: u8,
}

impl Settings {
    pub(crate) fn defaults_for(p: &Personality) -> Self {
        Self {
            echo: true,
            quiet: false,
            cmee: p.cmee_default,
            text_mode: false,
            cnmi: p.cnmi_default,
            cscs: Charset::Ira,
            csmp: [17, 167, 0, 0],
            csdh: false,
            creg: 0,
            cgreg: 0,
            cereg: 0,
            cops_format: p.operator_format,
        }
    }
}

/// Settings only a reboot puts back.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Storage {
    pub cpms: [&'static str; 3],
    pub csms: u8,
    pub cfun: u8,
}

/// What the `> ` prompt is collecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// `AT+CMGS=<length>`: a PDU to send.
    SendPdu { length: usize },
    /// `AT+CMGS="<da>"`: a text to send.
    SendText { destination: String },
    /// `AT+CMGW=<length>[,<stat>]`: a PDU to store.
    WritePdu {
        length: usize,
        status: MessageStatus,
    },
    /// `AT+CMGW="<da>"`: a text to store.
    WriteText {
        destination: String,
        status: MessageStatus,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Input {
    Command,
    Prompt(Prompt),
}

/// A send waiting for its latency to pass.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingSend {
    pub due: Instant,
    pub outcome: SendOutcome,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SendOutcome {
    /// Accepted with this reference: `+CMGS: <mr>` (or `+CMSS`), unless held.
    Sent {
        reply: Option<&'static str>,
        mr: u8,
        submission: Option<Submission>,
        /// `AT+CMSS`: the slot to mark STO SENT.
        stored: Option<(&'static str, u32)>,
    },
    /// Refused with `+CMS ERROR: <code>`.
    Rejected(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Power {
    On,
    /// Unplugged, until the instant if any (else until cleared).
    Off(Option<Instant>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PinState {
    Ready,
    Pin { attempts: u8 },
    Puk { attempts: u8 },
}

/// A message the modem handed to the network (`AT+CMGS` or `AT+CMSS` accepted).
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    /// The PDU-mode octets as the host sent them (for text mode: as the modem built them).
    pub pdu: Vec<u8>,
    /// The SMSC address the host put in front, if any.
    pub smsc: Option<Address>,
    /// The SMS-SUBMIT, with TP-MR set to the reference the modem assigned.
    pub submit: Submit,
}

/// What the modem tells the network.
#[derive(Clone, Debug, PartialEq)]
pub enum ModemEvent {
    /// A message was sent.
    Submitted(Submission),
    /// The modem can take messages again: a slot was freed, a `+CMT` acknowledged, a hang
    /// cleared (TS 24.011 "memory available", SMMA).
    MemoryAvailable,
    /// The modem was powered up (plugged in, rebooted).
    PoweredOn,
    /// The modem was unplugged.
    PoweredOff,
    /// A message routed with `+CMT`/`+CDS` was acknowledged with `AT+CNMA`: it is delivered.
    Acknowledged(Vec<u8>),
    /// A message routed with `+CMT`/`+CDS` was not acknowledged (`AT+CNMA` missing or
    /// negative): the network keeps it and tries again.
    DeliveryFailed(Vec<u8>),
}

/// Why the modem cannot take a message now; the network holds it and tries again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The receive memory is full.
    MemoryFull,
    /// The modem is unplugged.
    Unreachable,
    /// A `+CMT`/`+CDS` is still waiting for `AT+CNMA`.
    AwaitingAcknowledgement,
    /// The message is not something the modem can receive.
    Invalid,
}

/// What became of a message handed to [`VirtualModem::deliver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Stored, in this memory at this index.
    Stored {
        /// The memory the index is in.
        memory: &'static str,
        /// The index.
        index: u32,
    },
    /// Routed to the terminal (`+CMT`/`+CDS`) with nothing left to acknowledge.
    Routed,
    /// Routed to the terminal; delivered once `AT+CNMA` comes.
    AwaitingAcknowledgement,
    /// Not wanted: a status report with `<ds>`=0.
    Discarded,
    /// Refused for now.
    Refused(Refusal),
}

/// The phone's identity numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// 15 digits, Luhn-checked.
    pub imei: String,
    /// 15 digits.
    pub imsi: String,
    /// 19 digits, Luhn-checked.
    pub iccid: String,
}

impl Identity {
    fn generate(p: &Personality, ordinal: u32, seed: u64) -> Self {
        // SplitMix64 of (seed, ordinal): distinct, stable, realistic-looking serials.
        let mut z = seed
            .wrapping_add(u64::from(ordinal).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let serial = (z ^ (z >> 31)) % 1_000_000_000_000;
        let digits = |prefix: &str, total: usize| {
            let width = total.saturating_sub(prefix.len());
            let serial = format!("{serial:012}");
            let tail = serial
                .get(serial.len().saturating_sub(width)..)
                .unwrap_or("");
            format!("{prefix}{tail:0>width$}")
        };
        Self {
            imei: with_luhn(&digits(p.imei_prefix, 14)),
            imsi: digits(p.imsi_prefix, 15),
            iccid: with_luhn(&digits(p.iccid_prefix, 18)),
        }
    }
}

fn with_luhn(digits: &str) -> String {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b.saturating_sub(b'0'));
            if i % 2 == 0 {
                let d = d * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                d
            }
        })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

/// Which kind of unsolicited line: SMS indications obey `AT+CNMI` `<mode>`, the rest does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UrcClass {
    Sms,
    Other,
}

/// A line that `AT+CNMI` `<mode>`=0 keeps in the TA (at most this many; the oldest go first).
const CNMI_BUFFER: usize = 32;

/// The virtual modem. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct VirtualModem {
    pub(crate) personality: Personality,
    pub(crate) options: ModemOptions,
    pub(crate) identity: Identity,
    pub(crate) settings: Settings,
    pub(crate) storage: Storage,
    pub(crate) smsc: (String, u8),
    pub(crate) sim: SimCard,
    pub(crate) rng: fastrand::Rng,
    pub(crate) faults: FaultState,
    pub(crate) next_mr: u8,
    pub(crate) pending: Option<PendingSend>,
    pub(crate) awaiting_ack: Option<(Instant, Vec<u8>)>,
    input: Input,
    line: Vec<u8>,
    line_overflow: bool,
    deferred: Vec<u8>,
    last_line: Option<String>,
    out: Vec<u8>,
    urcs: VecDeque<Vec<String>>,
    cnmi_buffer: VecDeque<Vec<String>>,
    events: VecDeque<ModemEvent>,
    power: Power,
    pin: PinState,
    boot: Option<(Instant, usize)>,
    sms_ready_at: Option<Instant>,
    registered_at: Option<Instant>,
    announced_registration: Option<u8>,
    noise_next: Option<Instant>,
    noise_owed: bool,
    noise_turn: usize,
    reboot_after_reply: bool,
    /// `AT+CPIN=` commands received since the modem was created (wrong ones included), so
    /// tests can check that a driver never tries a rejected PIN again.
    pin_attempts: u32,
    /// Calls and USSD (`commands/ussd.rs`).
    pub(crate) telephony: crate::commands::ussd::Telephony,
}

impl VirtualModem {
    /// A modem powered up long ago: SMS stack ready, registered, settings at their defaults,
    /// SIM locked if a PIN is configured.
    pub fn new(now: Instant, options: ModemOptions) -> Self {
        let p = options.personality.clone();
        let mut rng = fastrand::Rng::with_seed(options.seed);
        let sim = SimCard::new(
            &p,
            options.sim_capacity,
            options.me_capacity.unwrap_or(p.me_capacity),
            p.sr_capacity,
        );
        let next_mr = rng.u8(..);
        let noise_next = p.noise_interval.map(|i| now + i);
        Self {
            identity: Identity::generate(&p, options.ordinal, options.seed),
            settings: Settings::defaults_for(&p),
            storage: Storage {
                cpms: p.cpms_default,
                csms: p.csms_default,
                cfun: 1,
            },
            smsc: (p.smsc.to_owned(), 145),
            sim,
            rng,
            faults: FaultState::default(),
            next_mr,
            pending: None,
            awaiting_ack: None,
            input: Input::Command,
            line: Vec::new(),
            line_overflow: false,
            deferred: Vec::new(),
            last_line: None,
            out: Vec::new(),
            urcs: VecDeque::new(),
            cnmi_buffer: VecDeque::new(),
            events: VecDeque::new(),
            power: Power::On,
            pin: match options.pin {
                Some(_) => PinState::Pin { attempts: 3 },
                None => PinState::Ready,
            },
            boot: None,
            sms_ready_at: None,
            registered_at: None,
            announced_registration: None,
            noise_next,
            noise_owed: false,
            noise_turn: 0,
            reboot_after_reply: false,
            pin_attempts: 0,
            telephony: Default::default(),
            personality: p,
            options,
        }
    }

    // ---- getters ------------------------------------------------------------------------

    /// The personality.
    pub fn personality(&self) -> &Personality {
        &self.personality
    }

    /// How many `AT+CPIN=<pin>` commands the modem received (right or wrong).
    pub fn pin_attempts(&self) -> u32 {
        self.pin_attempts
    }

    /// Its own number.
    pub fn number(&self) -> &str {
        &self.options.number
    }

    /// IMEI, IMSI, ICCID.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The message memories.
    pub fn sim_card(&self) -> &SimCard {
        &self.sim
    }

    /// The message memories, to place messages directly in tests.
    pub fn sim_card_mut(&mut self) -> &mut SimCard {
        &mut self.sim
    }

    /// The current `<mem1>`, `<mem2>`, `<mem3>`.
    pub fn memories(&self) -> [&'static str; 3] {
        self.storage.cpms
    }

    /// The current `AT+CNMI` setting.
    pub fn cnmi(&self) -> Cnmi {
        self.settings.cnmi
    }

    /// Whether the modem is plugged in.
    pub fn is_plugged(&self) -> bool {
        self.power == Power::On
    }

    /// Whether the modem is hung at `now`.
    pub fn is_hung(&self, now: Instant) -> bool {
        self.faults.is_hung(now)
    }

    /// The active faults.
    pub fn faults(&self) -> &FaultState {
        &self.faults
    }

    /// The TP-MR the next send gets.
    pub fn next_message_reference(&self) -> u8 {
        self.next_mr
    }

    /// Sets the TP-MR of the next send (tests of the wrap at 256).
    pub fn set_next_message_reference(&mut self, mr: u8) {
        self.next_mr = mr;
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Bytes from the host.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.power == Power::On && self.faults.hung_until_reset {
            self.hung_input(now, bytes);
            return;
        }
        if self.power != Power::On || self.faults.is_hung(now) {
            return;
        }
        if self.pending.is_some() {
            // A command is running: the TA reads ahead and acts on it afterwards.
            self.deferred.extend_from_slice(bytes);
            return;
        }
        for (i, &b) in bytes.iter().enumerate() {
            if self.pending.is_some() {
                self.deferred
                    .extend_from_slice(bytes.get(i..).unwrap_or_default());
                break;
            }
            match self.input.clone() {
                Input::Command => self.command_byte(now, b),
                Input::Prompt(prompt) => self.prompt_byte(now, b, prompt),
            }
        }
        self.after_step(now);
    }

    /// Input while hung until reset: no echo, no answer, but the interpreter still reads
    /// lines and acts on `AT+CFUN=1,1` (an `OK`, then a reboot), as the only way out.
    fn hung_input(&mut self, now: Instant, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\r' => {
                    let line = String::from_utf8_lossy(&std::mem::take(&mut self.line))
                        .trim()
                        .to_ascii_uppercase();
                    if line == "AT+CFUN=1,1" {
                        self.faults.hung_until_reset = false;
                        self.input = Input::Command;
                        self.run_line(now, "AT+CFUN=1,1");
                        break;
                    }
                }
                b'\n' => {}
                _ if self.line.len() < MAX_LINE_LENGTH => self.line.push(b),
                _ => {}
            }
        }
        self.after_step(now);
    }

    /// Time passed: call when `now` reaches [`VirtualModem::poll_timeout`] (calling earlier
    /// or more often is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Power::Off(Some(until)) = self.power
            && now >= until
        {
            self.power_on(now);
        }
        if self.power != Power::On {
            return;
        }
        let (hang_ended, _) = self.faults.expire(now);
        if hang_ended {
            self.events.push_back(ModemEvent::MemoryAvailable);
        }
        if let Some((start, next)) = self.boot {
            let lines = self.personality.boot;
            let mut next = next;
            while let Some((at, line)) = lines.get(next) {
                if now < start + Duration::from_millis(*at) {
                    break;
                }
                self.unsolicited(vec![(*line).to_owned()], UrcClass::Other);
                next += 1;
            }
            self.boot = (next < lines.len()).then_some((start, next));
        }
        if self.sms_ready_at.is_some_and(|t| now >= t) {
            self.sms_ready_at = None;
            self.events.push_back(ModemEvent::MemoryAvailable);
        }
        if self.registered_at.is_some_and(|t| now >= t) {
            self.registered_at = None;
        }
        if let (Some(due), Some(interval)) = (self.noise_next, self.personality.noise_interval)
            && now >= due
        {
            self.noise_owed = true;
            // Keep the rhythm but never schedule in the past.
            let mut next = due + interval;
            while next <= now {
                next += interval;
            }
            self.noise_next = Some(next);
        }
        if self.pending.as_ref().is_some_and(|p| now >= p.due) {
            self.complete_send(now);
        }
        self.ring_if_due(now);
        if let Some((deadline, _)) = &self.awaiting_ack
            && now >= *deadline
        {
            if let Some((_, pdu)) = self.awaiting_ack.take() {
                self.events.push_back(ModemEvent::DeliveryFailed(pdu));
            }
            // TS 27.005 §3.4.4: without the acknowledgement the TA turns routing off.
            self.settings.cnmi.mt = 0;
            self.settings.cnmi.ds = 0;
        }
        self.after_step(now);
    }

    /// Applies a fault at `now`.
    pub fn apply_fault(&mut self, now: Instant, fault: &Fault) {
        match fault {
            Fault::Unplug { seconds } => {
                self.power_off(seconds.map(|d| now + d));
            }
            Fault::Hang { seconds } => self.faults.hang = Some(seconds.map(|d| now + d)),
            Fault::Garbage { bytes } => {
                self.faults.garbage_pending = self.faults.garbage_pending.saturating_add(*bytes);
            }
            Fault::GarbageRate { rate } => self.faults.garbage_rate = rate.clamp(0.0, 1.0),
            Fault::DropOutput { fraction } => {
                self.faults.drop_fraction = fraction.clamp(0.0, 1.0);
            }
            Fault::RejectSends { count, code, stage } => {
                self.faults.reject = (*count > 0).then_some(RejectSends {
                    remaining: *count,
                    code: *code,
                    stage: *stage,
                });
            }
            Fault::HoldSends { count, submit } => {
                self.faults.hold = (*count > 0).then_some(HoldSends {
                    remaining: *count,
                    submit: *submit,
                });
            }
            Fault::Reboot => {
                if self.power == Power::On {
                    self.reboot(now);
                }
            }
            Fault::NoNetwork { seconds } => {
                self.faults.no_network = Some(seconds.map(|d| now + d));
            }
            Fault::SimBusy { seconds } => self.faults.sim_busy = Some(seconds.map(|d| now + d)),
            Fault::NoSim { seconds } => self.faults.no_sim = Some(seconds.map(|d| now + d)),
            Fault::NoSmsc => self.smsc = (String::new(), 129),
            Fault::HangUntilReset => {
                self.faults.hung_until_reset = true;
                self.line.clear();
            }
        }
        self.after_step(now);
    }

    /// Clears a lasting fault (unplug: plugs back in, with a boot).
    pub fn clear_fault(&mut self, now: Instant, kind: FaultKind) {
        match kind {
            FaultKind::Unplug => {
                if self.power != Power::On {
                    self.power_on(now);
                }
            }
            FaultKind::Hang => {
                if self.faults.hang.take().is_some() {
                    self.events.push_back(ModemEvent::MemoryAvailable);
                }
            }
            FaultKind::GarbageRate => {
                self.faults.garbage_rate = 0.0;
                self.faults.garbage_pending = 0;
            }
            FaultKind::DropOutput => self.faults.drop_fraction = 0.0,
            FaultKind::RejectSends => self.faults.reject = None,
            FaultKind::HoldSends => self.faults.hold = None,
            FaultKind::NoNetwork => self.faults.no_network = None,
            FaultKind::SimBusy => self.faults.sim_busy = None,
            FaultKind::NoSim => self.faults.no_sim = None,
            FaultKind::HangUntilReset => {
                if std::mem::take(&mut self.faults.hung_until_reset) {
                    self.line.clear();
                    self.events.push_back(ModemEvent::MemoryAvailable);
                }
            }
        }
        self.after_step(now);
    }

    /// Reboots: boot banner, settings back to defaults, SIM contents kept.
    pub fn reboot(&mut self, now: Instant) {
        self.reset_for_boot(now);
    }

    /// A message from the network, in PDU-mode octets (SMSC address first): an SMS-DELIVER
    /// is stored in `<mem3>` (with `+CMTI` if `<mt>`=1) or routed with `+CMT` (`<mt>`=2); an
    /// SMS-STATUS-REPORT follows `<ds>` and the personality's routing.
    pub fn deliver(&mut self, now: Instant, pdu: &[u8]) -> Delivery {
        // A phone that is off, locked, out of coverage or in flight mode is not reachable:
        // the service centre keeps the message until it registers.
        if self.power != Power::On || self.registration(now) != 1 {
            return Delivery::Refused(Refusal::Unreachable);
        }
        let Ok(decoded) = decode_pdu_with(pdu, Direction::ScToMs) else {
            return Delivery::Refused(Refusal::Invalid);
        };
        let result = match &decoded.tpdu {
            Tpdu::Deliver(deliver) => {
                let class = deliver.dcs.class();
                self.deliver_message(now, pdu, &decoded, class)
            }
            Tpdu::StatusReport(_) => self.deliver_report(now, pdu, &decoded),
            Tpdu::Submit(_) => Delivery::Refused(Refusal::Invalid),
        };
        self.after_step(now);
        result
    }

    /// Puts `pdu` (PDU-mode octets, SMSC first) into the first free slot of `<mem3>` as
    /// "REC UNREAD" exactly as given, without decoding it, and announces it with `+CMTI` when
    /// `<mt>` asks for that. For tests of what a host does with a slot it cannot decode (a
    /// corrupted SIM, a buggy network): the network never delivers such bytes itself.
    /// Returns the memory and index, or `None` when the memory is full.
    pub fn store_raw(&mut self, now: Instant, pdu: &[u8]) -> Option<(&'static str, u32)> {
        let mem3 = self.storage.cpms[2];
        let message = StoredMessage {
            status: MessageStatus::ReceivedUnread,
            pdu: pdu.to_vec(),
        };
        let placement = self.sim.store(mem3, message)?;
        if self.power == Power::On && self.settings.cnmi.mt != 0 {
            self.unsolicited(
                vec![format!("+CMTI: \"{mem3}\",{}", placement.memory_index)],
                UrcClass::Sms,
            );
        }
        self.after_step(now);
        Some((mem3, placement.memory_index))
    }

    // ---- outputs ------------------------------------------------------------------------

    /// Bytes for the host, if any.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            return None;
        }
        let mut bytes = std::mem::take(&mut self.out);
        let p = self.faults.drop_fraction;
        if p > 0.0 {
            let rng = &mut self.rng;
            bytes.retain(|_| rng.f64() >= p);
        }
        Some(bytes)
    }

    /// The next event for the network, if any.
    pub fn poll_event(&mut self) -> Option<ModemEvent> {
        self.events.pop_front()
    }

    /// When [`VirtualModem::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Power::Off(until) = self.power {
            return until;
        }
        let boot = self.boot.and_then(|(start, next)| {
            self.personality
                .boot
                .get(next)
                .map(|(at, _)| start + Duration::from_millis(*at))
        });
        [
            self.pending.as_ref().map(|p| p.due),
            self.awaiting_ack.as_ref().map(|(t, _)| *t),
            boot,
            self.sms_ready_at,
            self.registered_at,
            self.noise_next,
            self.faults.next_deadline(),
            self.telephony.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- line discipline ----------------------------------------------------------------

    fn command_byte(&mut self, now: Instant, b: u8) {
        if self.line.is_empty() && !matches!(b, b'\r' | b'\n') {
            // A URC may land just before an echo (gammu#126, #708).
            self.flush_urcs(now);
            self.boundary(now, true);
        }
        if self.settings.echo {
            self.out.push(b);
        }
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.line);
                let overflow = std::mem::replace(&mut self.line_overflow, false);
                if overflow {
                    self.finish(now, Vec::new(), Some(Final::Error));
                } else {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    self.run_line(now, &text);
                }
            }
            0x08 => {
                self.line.pop();
            }
            b'\n' if self.line.is_empty() => {}
            _ => {
                if self.line.len() >= MAX_LINE_LENGTH {
                    self.line_overflow = true;
                } else {
                    self.line.push(b);
                }
                if self.line.len() == 2 && self.line.eq_ignore_ascii_case(b"A/") {
                    self.line.clear();
                    if let Some(last) = self.last_line.clone() {
                        self.run_line(now, &last);
                    }
                }
            }
        }
    }

    fn prompt_byte(&mut self, now: Instant, b: u8, prompt: Prompt) {
        match b {
            0x1A => {
                let body = std::mem::take(&mut self.line);
                self.input = Input::Command;
                let body = String::from_utf8_lossy(&body).into_owned();
                self.prompt_done(now, prompt, &body);
            }
            0x1B => {
                self.line.clear();
                self.input = Input::Command;
                self.finish(now, Vec::new(), Some(Final::Ok));
            }
            0x08 => {
                if self.settings.echo {
                    self.out.push(b);
                }
                self.line.pop();
            }
            b'\r' if matches!(prompt, Prompt::SendText { .. } | Prompt::WriteText { .. }) => {
                // Text mode: each CR starts a new line of the message with a fresh prompt.
                if self.settings.echo {
                    self.out.push(b);
                }
                self.line.push(b'\n');
                self.out.extend_from_slice(b"\r\n> ");
            }
            _ => {
                if self.settings.echo {
                    self.out.push(b);
                }
                if self.line.len() < 4 * MAX_LINE_LENGTH {
                    self.line.push(b);
                }
            }
        }
    }

    fn run_line(&mut self, now: Instant, text: &str) {
        let Some(line) = command_line::parse(text) else {
            return;
        };
        self.last_line = Some(text.to_owned());
        self.execute_line(now, line);
    }

    fn execute_line(&mut self, now: Instant, line: CommandLine) {
        let CommandLine { commands, error } = line;
        let mut blocks: Vec<Vec<String>> = Vec::new();
        for command in &commands {
            let mut info = Vec::new();
            let step = match self.sim_fault_refusal(now, command) {
                Some(refusal) => Step::Fail(refusal),
                None => self.execute(now, command, &mut info),
            };
            if !info.is_empty() {
                blocks.push(info);
            }
            match step {
                Step::Done => {}
                Step::Fail(f) => {
                    self.finish(now, blocks, Some(f));
                    return;
                }
                Step::Prompt(prompt) => {
                    // Commands after a prompting one on the same line are not run.
                    self.write_blocks(now, &blocks);
                    self.out.extend_from_slice(b"\r\n> ");
                    self.input = Input::Prompt(prompt);
                    return;
                }
                Step::Pending => {
                    self.write_blocks(now, &blocks);
                    self.complete_if_due(now);
                    return;
                }
            }
        }
        let end = if error.is_some() {
            Final::Error
        } else {
            Final::Ok
        };
        self.finish(now, blocks, Some(end));
    }

    /// Writes information blocks and a final result; a pending reboot happens after it.
    pub(crate) fn finish(&mut self, now: Instant, blocks: Vec<Vec<String>>, end: Option<Final>) {
        self.write_blocks(now, &blocks);
        if let Some(end) = end {
            let quiet = self.settings.quiet;
            if !quiet {
                self.boundary(now, true);
                let line = end.render(self.settings.cmee);
                self.write_unit(format!("\r\n{line}\r\n").as_bytes());
            }
        }
        if std::mem::replace(&mut self.reboot_after_reply, false) {
            self.reset_for_boot(now);
        }
    }

    pub(crate) fn write_blocks(&mut self, now: Instant, blocks: &[Vec<String>]) {
        for block in blocks {
            for (i, line) in block.iter().enumerate() {
                self.boundary(now, true);
                let unit = if i == 0 {
                    format!("\r\n{line}\r\n")
                } else {
                    format!("{line}\r\n")
                };
                self.write_unit(unit.as_bytes());
            }
        }
    }

    fn write_unit(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A line boundary: garbage faults and, inside responses, vendor noise may land here.
    fn boundary(&mut self, now: Instant, in_response: bool) {
        let pending = std::mem::take(&mut self.faults.garbage_pending);
        if pending > 0 {
            self.write_garbage(pending);
        }
        let rate = self.faults.garbage_rate;
        if rate > 0.0 && self.rng.f64() < rate {
            let n = self.rng.usize(1..=16);
            self.write_garbage(n);
        }
        if in_response {
            let p = self.personality.noise_in_response;
            if p > 0.0 && !self.personality.noise.is_empty() && self.rng.f64() < p {
                self.write_noise(now);
            }
        }
    }

    fn write_garbage(&mut self, n: usize) {
        for _ in 0..n {
            let b = self.rng.u8(..);
            self.out.push(b);
        }
    }

    fn write_noise(&mut self, _now: Instant) {
        let noise = self.personality.noise;
        if let Some(line) = noise.get(self.noise_turn % noise.len().max(1)) {
            self.noise_turn = self.noise_turn.wrapping_add(1);
            self.out
                .extend_from_slice(format!("\r\n{line}\r\n").as_bytes());
        }
    }

    fn line_open(&self) -> bool {
        match self.input {
            Input::Prompt(_) => true,
            Input::Command => self.settings.echo && !self.line.is_empty(),
        }
    }

    /// Queues an unsolicited result (one or more lines written together).
    pub(crate) fn unsolicited(&mut self, lines: Vec<String>, class: UrcClass) {
        if class == UrcClass::Sms && self.settings.cnmi.mode == 0 {
            if self.cnmi_buffer.len() >= CNMI_BUFFER {
                self.cnmi_buffer.pop_front();
            }
            self.cnmi_buffer.push_back(lines);
        } else {
            self.urcs.push_back(lines);
        }
    }

    /// `AT+CNMI` left `<mode>` 0: flush (`<bfr>`=0) or clear (1) the buffered indications.
    pub(crate) fn cnmi_changed(&mut self) {
        if self.settings.cnmi.mode == 0 {
            return;
        }
        let buffered = std::mem::take(&mut self.cnmi_buffer);
        if self.settings.cnmi.bfr == 0 {
            self.urcs.extend(buffered);
        }
    }

    fn flush_urcs(&mut self, now: Instant) {
        if self.line_open() {
            return;
        }
        if std::mem::take(&mut self.noise_owed) {
            self.boundary(now, false);
            self.write_noise(now);
        }
        while let Some(lines) = self.urcs.pop_front() {
            self.boundary(now, false);
            let unit = format!("\r\n{}\r\n", lines.join("\r\n"));
            self.write_unit(unit.as_bytes());
        }
    }

    fn after_step(&mut self, now: Instant) {
        if self.power != Power::On {
            self.out.clear();
            return;
        }
        self.check_registration(now);
        self.flush_urcs(now);
        if self.faults.is_hung(now) {
            self.out.clear();
            self.urcs.clear();
            self.noise_owed = false;
        }
    }

    /// The answer a SIM fault (busy, missing) gives `command` instead of running it.
    fn sim_fault_refusal(&self, now: Instant, command: &CommandLineCommand) -> Option<Final> {
        let CommandLineCommand::Extended { name, .. } = command else {
            return None;
        };
        Some(match self.faults.sim_refusal(now, name)? {
            SimRefusal::Cme(code) => Final::Cme(code),
            SimRefusal::Cms(code) => Final::Cms(code),
        })
    }

    // ---- power --------------------------------------------------------------------------

    fn power_off(&mut self, until: Option<Instant>) {
        let was_on = self.power == Power::On;
        self.power = Power::Off(until);
        if was_on {
            self.out.clear();
            self.drop_session_state();
            self.events.push_back(ModemEvent::PoweredOff);
        }
    }

    fn power_on(&mut self, now: Instant) {
        self.power = Power::On;
        self.reset_for_boot(now);
        self.events.push_back(ModemEvent::PoweredOn);
    }

    /// Forgets the conversation in progress. Bytes already written stay (they are on the
    /// wire); a reboot after `AT+CFUN=1,1` keeps its `OK`.
    fn drop_session_state(&mut self) {
        self.line.clear();
        self.deferred.clear();
        self.input = Input::Command;
        self.pending = None;
        self.urcs.clear();
        self.cnmi_buffer.clear();
        self.noise_owed = false;
        if let Some((_, pdu)) = self.awaiting_ack.take() {
            self.events.push_back(ModemEvent::DeliveryFailed(pdu));
        }
    }

    fn reset_for_boot(&mut self, now: Instant) {
        self.drop_session_state();
        let p = &self.personality;
        self.settings = Settings::defaults_for(p);
        self.storage = Storage {
            cpms: p.cpms_default,
            csms: p.csms_default,
            cfun: 1,
        };
        self.boot = (!p.boot.is_empty()).then_some((now, 0));
        self.sms_ready_at = (!p.sms_ready_after.is_zero()).then(|| now + p.sms_ready_after);
        self.registered_at = (!p.registered_after.is_zero()).then(|| now + p.registered_after);
        self.noise_next = p.noise_interval.map(|i| now + i);
        self.announced_registration = None;
        // A restart is the one cure for a modem hung until reset.
        self.faults.hung_until_reset = false;
        if self.options.pin.is_some() {
            self.pin = PinState::Pin { attempts: 3 };
        }
        if self.sms_ready_at.is_none() {
            self.events.push_back(ModemEvent::MemoryAvailable);
        }
    }

    /// Queues an event for the network.
    pub(crate) fn push_event(&mut self, event: ModemEvent) {
        self.events.push_back(event);
    }

    /// Reboot once the current reply is written (`AT+CFUN=1,1`).
    pub(crate) fn reboot_after_reply(&mut self) {
        self.reboot_after_reply = true;
    }

    // ---- state the commands consult ----------------------------------------------------

    /// Whether the SMS stack has finished booting.
    pub(crate) fn sms_ready(&self) -> bool {
        self.sms_ready_at.is_none()
    }

    /// Whether the SIM is unlocked.
    pub(crate) fn sim_ready(&self) -> bool {
        self.pin == PinState::Ready
    }

    /// `+CPIN:` value.
    pub(crate) fn pin_code(&self) -> &'static str {
        match self.pin {
            PinState::Ready => "READY",
            PinState::Pin { .. } => "SIM PIN",
            PinState::Puk { .. } => "SIM PUK",
        }
    }

    /// `AT+CPIN=<pin>[,<newpin>]`.
    pub(crate) fn enter_pin(&mut self, code: &str, new_pin: Option<&str>) -> Result<(), Final> {
        use crate::codes::cme;
        self.pin_attempts = self.pin_attempts.saturating_add(1);
        match self.pin {
            PinState::Ready => Err(Final::Cme(cme::NOT_ALLOWED)),
            PinState::Pin { attempts } => {
                if self.options.pin.as_deref() == Some(code) {
                    self.pin = PinState::Ready;
                    self.events.push_back(ModemEvent::MemoryAvailable);
                    Ok(())
                } else {
                    self.pin = match attempts.saturating_sub(1) {
                        0 => PinState::Puk { attempts: 10 },
                        left => PinState::Pin { attempts: left },
                    };
                    Err(Final::Cme(cme::INCORRECT_PASSWORD))
                }
            }
            PinState::Puk { attempts } => match new_pin {
                Some(new_pin) if code == PUK => {
                    self.options.pin = Some(new_pin.to_owned());
                    self.pin = PinState::Ready;
                    self.events.push_back(ModemEvent::MemoryAvailable);
                    Ok(())
                }
                _ => {
                    self.pin = PinState::Puk {
                        attempts: attempts.saturating_sub(1),
                    };
                    Err(Final::Cme(cme::INCORRECT_PASSWORD))
                }
            },
        }
    }

    /// `<stat>` of `+CREG`/`+CGREG`/`+CEREG`: 1 registered, 2 searching, 0 not registered.
    pub(crate) fn registration(&self, now: Instant) -> u8 {
        if !self.sim_ready() || self.storage.cfun != 1 || self.faults.sim_is_missing(now) {
            0
        } else if self.registered_at.is_some()
            || self.faults.has_no_network(now)
            || self.faults.sim_is_busy(now)
        {
            2
        } else {
            1
        }
    }

    /// Whether sends can reach the network.
    pub(crate) fn has_network(&self, now: Instant) -> bool {
        self.registration(now) == 1
    }

    fn check_registration(&mut self, now: Instant) {
        let stat = self.registration(now);
        if self.announced_registration == Some(stat) {
            return;
        }
        let first = self.announced_registration.is_none();
        self.announced_registration = Some(stat);
        if stat == 1 && !first {
            // Registered again: the network may deliver what it held.
            self.events.push_back(ModemEvent::MemoryAvailable);
        }
        if first && self.boot.is_none() {
            return;
        }
        let settings = [
            ("+CREG", self.settings.creg),
            ("+CGREG", self.settings.cgreg),
            ("+CEREG", self.settings.cereg),
        ];
        for (name, n) in settings {
            if n == 0 || (name == "+CEREG" && !self.personality.registration.has_cereg) {
                continue;
            }
            let line = format!("{name}: {}", self.registration_fields(now, n, false));
            self.unsolicited(vec![line], UrcClass::Other);
        }
    }

    /// `<stat>[,<lac>,<ci>[,<AcT>]]` (URC) or `<n>,<stat>[...]` (read command).
    pub(crate) fn registration_fields(&self, now: Instant, n: u8, with_n: bool) -> String {
        let stat = self.registration(now);
        let mut out = if with_n {
            format!("{n},{stat}")
        } else {
            stat.to_string()
        };
        if n >= 2 && matches!(stat, 1 | 5) {
            let r = &self.personality.registration;
            if r.quoted {
                out.push_str(&format!(",\"{}\",\"{}\"", r.lac, r.ci));
            } else {
                out.push_str(&format!(",{},{}", r.lac, r.ci));
            }
            if let Some(act) = r.act {
                out.push_str(&format!(",{act}"));
            }
        }
        out
    }

    /// A TP-MR for the next send; wraps at 256.
    pub(crate) fn take_message_reference(&mut self) -> u8 {
        let mr = self.next_mr;
        self.next_mr = mr.wrapping_add(1);
        mr
    }

    /// The send latency for one send.
    pub(crate) fn draw_latency(&mut self) -> Duration {
        self.options.send_latency.draw(&mut self.rng)
    }

    // ---- sends --------------------------------------------------------------------------

    pub(crate) fn start_pending(&mut self, now: Instant, outcome: SendOutcome) -> Step {
        let latency = self.draw_latency();
        self.pending = Some(PendingSend {
            due: now + latency,
            outcome,
        });
        Step::Pending
    }

    /// Completes the pending send if its latency has passed (zero latency: at once, after the
    /// lines before it are written).
    pub(crate) fn complete_if_due(&mut self, now: Instant) {
        if self.pending.as_ref().is_some_and(|p| p.due <= now) {
            self.complete_send(now);
        }
    }

    fn complete_send(&mut self, now: Instant) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        match pending.outcome {
            SendOutcome::Sent {
                reply,
                mr,
                submission,
                stored,
            } => {
                if let Some(submission) = submission {
                    self.events.push_back(ModemEvent::Submitted(submission));
                }
                if let Some((memory, index)) = stored {
                    self.sim
                        .set_status(memory, index, MessageStatus::StoredSent);
                }
                if let Some(prefix) = reply {
                    self.finish(now, vec![vec![format!("{prefix}: {mr}")]], Some(Final::Ok));
                }
            }
            SendOutcome::Rejected(code) => {
                self.finish(now, Vec::new(), Some(Final::Cms(code)));
            }
        }
        let deferred = std::mem::take(&mut self.deferred);
        if !deferred.is_empty() {
            self.handle_input(now, &deferred);
        }
    }

    // ---- deliveries ---------------------------------------------------------------------

    fn deliver_message(
        &mut self,
        now: Instant,
        pdu: &[u8],
        decoded: &DecodedPdu,
        class: Option<MessageClass>,
    ) -> Delivery {
        let mt = self.settings.cnmi.mt;
        let direct = match (mt, class) {
            (2, Some(MessageClass::Class2)) => false,
            (2, _) => true,
            (3, Some(MessageClass::Class3)) => true,
            _ => false,
        };
        if direct {
            return self.route_direct(now, pdu, decoded, false);
        }
        let mem3 = self.storage.cpms[2];
        let message = StoredMessage {
            status: MessageStatus::ReceivedUnread,
            pdu: pdu.to_vec(),
        };
        let Some(placement) = self.sim.store(mem3, message) else {
            if let Some(urc) = self.personality.memory_full_urc {
                self.unsolicited(vec![urc.to_owned()], UrcClass::Other);
            }
            return Delivery::Refused(Refusal::MemoryFull);
        };
        let announced = if self.sim.capacity(mem3) > 0 && mem_is_combined(&self.personality, mem3) {
            placement.storage
        } else {
            mem3
        };
        if mt != 0 {
            let index = if announced == mem3 {
                placement.memory_index
            } else {
                placement.storage_index
            };
            self.unsolicited(
                vec![format!("+CMTI: \"{announced}\",{index}")],
                UrcClass::Sms,
            );
        }
        if self.sim.is_full(mem3)
            && let Some(urc) = self.personality.memory_full_urc
        {
            self.unsolicited(vec![urc.to_owned()], UrcClass::Other);
        }
        Delivery::Stored {
            memory: announced,
            index: placement.memory_index,
        }
    }

    fn deliver_report(&mut self, now: Instant, pdu: &[u8], decoded: &DecodedPdu) -> Delivery {
        match self.settings.cnmi.ds {
            1 => self.route_direct(now, pdu, decoded, true),
            2 => {
                let routing = self.personality.report_routing;
                let memory = match routing.store {
                    ReportStore::Memory(name) => name,
                    ReportStore::ReceiveMemory => self.storage.cpms[2],
                };
                let message = StoredMessage {
                    status: MessageStatus::ReceivedUnread,
                    pdu: pdu.to_vec(),
                };
                let Some(placement) = self.sim.store(memory, message) else {
                    return Delivery::Refused(Refusal::MemoryFull);
                };
                let name = routing.announce_as.unwrap_or(placement.storage);
                let urc = match routing.urc {
                    ReportUrc::Cdsi => "+CDSI",
                    ReportUrc::Cmti => "+CMTI",
                };
                self.unsolicited(
                    vec![format!("{urc}: \"{name}\",{}", placement.storage_index)],
                    UrcClass::Sms,
                );
                Delivery::Stored {
                    memory: placement.storage,
                    index: placement.storage_index,
                }
            }
            _ => Delivery::Discarded,
        }
    }

    fn route_direct(
        &mut self,
        now: Instant,
        pdu: &[u8],
        decoded: &DecodedPdu,
        report: bool,
    ) -> Delivery {
        let needs_ack = self.storage.csms == 1;
        if needs_ack && self.awaiting_ack.is_some() {
            return Delivery::Refused(Refusal::AwaitingAcknowledgement);
        }
        let lines = if report {
            crate::format::cds_lines(self, pdu, decoded)
        } else {
            crate::format::cmt_lines(self, pdu, decoded)
        };
        self.unsolicited(lines, UrcClass::Sms);
        if needs_ack {
            // `handle_timeout` enforces the acknowledgement deadline.
            self.awaiting_ack = Some((now + ACK_TIMEOUT, pdu.to_vec()));
            Delivery::AwaitingAcknowledgement
        } else {
            Delivery::Routed
        }
    }
}

/// What one command did.
pub(crate) enum Step {
    /// Finished; the line goes on.
    Done,
    /// Failed; the line stops with this result.
    Fail(Final),
    /// Waits for a PDU or text after `> `.
    Prompt(Prompt),
    /// Answers later (send latency).
    Pending,
}

fn mem_is_combined(p: &Personality, memory: &str) -> bool {
    p.memory(memory).is_some_and(|d| d.storages.len() > 1)
}

/// Decodes a PDU-mode PDU read back from storage.
pub(crate) fn decode_stored(pdu: &[u8]) -> Option<DecodedPdu> {
    decode_pdu(pdu).ok()
}
