//! What the modem task publishes about its modem: the [`ModemState`] on a `watch` channel.
//!
//! Why a `watch`: the gateway's health model, `status` and the dashboard want the latest
//! picture, never a history, and a slow reader must not hold the task up. URCs, which must not
//! be lost, travel on a bounded `mpsc` instead (see [`crate::task`]).
//!
//! Keeps promise 6 ("the modem may vanish"): every outage shows here as
//! [`Phase::Disconnected`] with the error and what to check, and the values below are what
//! `health` reports per modem.

use std::fmt;

use conductor_at::cmd::cpin::PinStatus;
use conductor_at::cmd::cpms::{Capacity, Storage};
use conductor_at::cmd::creg::{Registration, RegistrationStatus};
use serde::{Serialize, Serializer};
use tokio::time::Instant;

/// Where the task is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Opening the port (the first time, or again after an outage).
    Connecting,
    /// The port is open; init runs (echo off, PIN, storage, indications, SMSC).
    Initialising,
    /// Init finished: operations run.
    Ready,
    /// The port is closed after an error; the task waits for its next attempt.
    Disconnected,
    /// The task has stopped (shutdown).
    Stopped,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connecting => "connecting",
            Phase::Initialising => "initialising",
            Phase::Ready => "ready",
            Phase::Disconnected => "disconnected",
            Phase::Stopped => "stopped",
        })
    }
}

/// The SIM as the modem reports it (`AT+CPIN?`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SimState {
    /// No password pending: the SIM works.
    Ready,
    /// The SIM waits for its PIN.
    PinRequired,
    /// The PIN is blocked; the PUK is needed (put the SIM in a phone).
    PukRequired,
    /// No SIM, or the modem cannot talk to it.
    Absent,
    /// Anything else, as the modem spelled it (`PH-SIM PIN`, `SIM PIN2`, …).
    Other(String),
}

impl SimState {
    /// Maps the engine's parsed `+CPIN:` code.
    pub fn from_pin_status(status: &PinStatus) -> SimState {
        match status {
            PinStatus::Ready => SimState::Ready,
            PinStatus::SimPin => SimState::PinRequired,
            PinStatus::SimPuk => SimState::PukRequired,
            PinStatus::NotReady(_) => SimState::Absent,
            PinStatus::SimPin2 => SimState::Other("SIM PIN2".to_owned()),
            PinStatus::SimPuk2 => SimState::Other("SIM PUK2".to_owned()),
            PinStatus::PhoneSimPin => SimState::Other("PH-SIM PIN".to_owned()),
            PinStatus::Other(text) => SimState::Other(text.clone()),
        }
    }

    /// The form `probe --json` prints: `ready`, `pin_required`, `puk_required`, `absent`, or
    /// the modem's own text.
    pub fn as_str(&self) -> &str {
        match self {
            SimState::Ready => "ready",
            SimState::PinRequired => "pin_required",
            SimState::PukRequired => "puk_required",
            SimState::Absent => "absent",
            SimState::Other(text) => text,
        }
    }
}

impl fmt::Display for SimState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SimState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Why a modem is not doing its job, as a stable word for status rows, `health` and alerts
/// (`pin_wrong`), beside the sentence with the fix in `last_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The SIM refused the configured PIN; the driver stopped trying (three wrong PINs lock
    /// the SIM).
    PinWrong,
    /// The SIM wants a PIN and none is configured.
    PinRequired,
    /// The SIM wants its PUK (the PIN is blocked).
    PukRequired,
    /// The SIM stayed busy (`+CME ERROR: 14`) past `sim_ready_timeout`.
    SimBusy,
    /// No SIM (`+CME ERROR: 10`), or the modem cannot talk to it.
    SimAbsent,
    /// The modem stopped answering while the port stayed open; the driver escalates.
    NotResponding,
}

impl Condition {
    /// The word (`pin_wrong`, `sim_busy`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::PinWrong => "pin_wrong",
            Condition::PinRequired => "pin_required",
            Condition::PukRequired => "puk_required",
            Condition::SimBusy => "sim_busy",
            Condition::SimAbsent => "sim_absent",
            Condition::NotResponding => "not_responding",
        }
    }

    /// The condition an init or link failure stands for, if it is one of these.
    pub fn of(error: &crate::errors::ModemError) -> Option<Condition> {
        use crate::errors::ModemError;
        match error {
            ModemError::PinRejected => Some(Condition::PinWrong),
            ModemError::Sim { state, .. } => Some(match state {
                SimState::PinRequired => Condition::PinRequired,
                SimState::PukRequired => Condition::PukRequired,
                SimState::Absent => Condition::SimAbsent,
                SimState::Ready | SimState::Other(_) => Condition::SimBusy,
            }),
            ModemError::NotResponding { .. } => Some(Condition::NotResponding),
            _ => None,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of the escalation for a modem that stopped answering (see [`crate::escalation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryStep {
    /// ESC (ends a stuck data phase) and an `AT` probe.
    Probe,
    /// `AT+CFUN=1,1`: the modem restarts.
    Reset,
    /// The port was closed and is reopened.
    Reopen,
}

impl RecoveryStep {
    /// The word (`probe`, `reset`, `reopen`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryStep::Probe => "probe",
            RecoveryStep::Reset => "reset",
            RecoveryStep::Reopen => "reopen",
        }
    }
}

/// How often each escalation step ran since the task started, and the latest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Recoveries {
    /// ESC + `AT` probes.
    pub probes: u64,
    /// `AT+CFUN=1,1` resets.
    pub resets: u64,
    /// Ports closed and reopened because the modem did not answer.
    pub reopens: u64,
    /// The latest step taken, and whether it brought the modem back.
    pub last: Option<(RecoveryStep, bool)>,
}

/// Registration reduced to what an operator needs to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationSummary {
    /// Nothing known (no answer, or `<stat>` 4 / a vendor value).
    Unknown,
    /// Not registered and not searching.
    NotRegistered,
    /// The network refused the SIM.
    Denied,
    /// Searching for a network.
    Searching,
    /// Registered abroad or on a partner network.
    Roaming,
    /// Registered on the home network.
    Home,
}

impl RegistrationSummary {
    /// Maps a 3GPP `<stat>`. SMS-only and CSFB-not-preferred registrations count as
    /// registered; emergency-only does not.
    pub fn from_status(status: RegistrationStatus) -> RegistrationSummary {
        match status {
            RegistrationStatus::Home
            | RegistrationStatus::HomeSmsOnly
            | RegistrationStatus::HomeCsfbNotPreferred => RegistrationSummary::Home,
            RegistrationStatus::Roaming
            | RegistrationStatus::RoamingSmsOnly
            | RegistrationStatus::RoamingCsfbNotPreferred => RegistrationSummary::Roaming,
            RegistrationStatus::Searching => RegistrationSummary::Searching,
            RegistrationStatus::Denied => RegistrationSummary::Denied,
            RegistrationStatus::NotRegistered | RegistrationStatus::EmergencyOnly => {
                RegistrationSummary::NotRegistered
            }
            RegistrationStatus::Unknown | RegistrationStatus::Other(_) => {
                RegistrationSummary::Unknown
            }
        }
    }

    /// Whether messages can flow.
    pub fn is_registered(self) -> bool {
        matches!(
            self,
            RegistrationSummary::Home | RegistrationSummary::Roaming
        )
    }

    /// `home`, `roaming`, …, as `probe` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationSummary::Unknown => "unknown",
            RegistrationSummary::NotRegistered => "not_registered",
            RegistrationSummary::Denied => "denied",
            RegistrationSummary::Searching => "searching",
            RegistrationSummary::Roaming => "roaming",
            RegistrationSummary::Home => "home",
        }
    }
}

impl fmt::Display for RegistrationSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The registrations of the three domains (CS, GPRS, EPS) and the best of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationReport {
    /// The best state over the domains that answered: SMS travels over whichever is
    /// registered (CS on 2G/3G, SGs/IMS on LTE-only modems).
    pub summary: RegistrationSummary,
    /// Each domain that answered its query.
    pub domains: Vec<Registration>,
}

impl RegistrationReport {
    /// Builds the report; the summary is the best domain's.
    pub fn from_domains(domains: Vec<Registration>) -> RegistrationReport {
        let summary = domains
            .iter()
            .map(|r| RegistrationSummary::from_status(r.status))
            .max()
            .unwrap_or(RegistrationSummary::Unknown);
        RegistrationReport { summary, domains }
    }
}

/// Signal strength from `AT+CSQ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Signal {
    /// Received signal strength in dBm; `None` when the modem does not know (rssi 99).
    pub dbm: Option<i16>,
    /// `<rssi>` as reported (0…31, 99, or the 100…191 TD-SCDMA range).
    pub rssi: u8,
    /// Bit error rate class 0…7; `None` when unknown.
    pub ber: Option<u8>,
}

/// Who the modem and its SIM are. Every field is optional: modems answer what they support.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// `AT+CGMI`.
    pub manufacturer: Option<String>,
    /// `AT+CGMM`.
    pub model: Option<String>,
    /// `AT+CGMR`.
    pub revision: Option<String>,
    /// `AT+CGSN`.
    pub imei: Option<String>,
    /// `AT+CIMI` (needs a ready SIM).
    pub imsi: Option<String>,
    /// From the first vendor ICCID command the modem understands. Part of the inbound
    /// fingerprint (DESIGN "Receiving"), so the gateway can tell SIMs apart.
    pub iccid: Option<String>,
}

/// One message memory's fill level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryReport {
    /// The memory as the modem names it (`SM`, `ME`, `MT`, `SR`, …).
    pub memory: String,
    /// Messages stored.
    pub used: u32,
    /// Slots in total.
    pub total: u32,
}

impl MemoryReport {
    /// The memories of an `AT+CPMS?` answer, each once, in role order (read, write, receive).
    pub fn from_storage(storage: &Storage) -> Vec<MemoryReport> {
        let mut out: Vec<MemoryReport> = Vec::new();
        for usage in std::iter::once(&storage.read)
            .chain(storage.write.as_ref())
            .chain(storage.receive.as_ref())
        {
            if out.iter().all(|m| m.memory != usage.memory) {
                out.push(MemoryReport {
                    memory: usage.memory.clone(),
                    used: usage.capacity.used,
                    total: usage.capacity.total,
                });
            }
        }
        out
    }

    /// The fill level as a [`Capacity`], whose `Display` is DESIGN's `used/total (x.x % full)`.
    pub fn capacity(&self) -> Capacity {
        Capacity {
            used: self.used,
            total: self.total,
        }
    }
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.memory, self.capacity())
    }
}

/// How the modem reports status reports, as init could configure it (DESIGN "Receiving").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReportRouting {
    /// `<ds>`=2: stored, announced with `+CDSI` (or `+CMTI: "SR",n` on some Huawei).
    Stored,
    /// `<ds>`=1 with `AT+CSMS=0`: delivered as `+CDS` plus PDU, no acknowledgement needed.
    Direct,
    /// `<ds>`=0: no status reports are indicated.
    None,
}

/// What init settled on. The gateway reads it to know what to expect (a `+CDS` or a
/// `+CDSI`, whether `+CMTI` comes at all) and `health` shows the warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// The memories chosen for reading, writing and receiving (`AT+CPMS`), in that order;
    /// `None` when the modem accepted no selection and its own is used.
    pub memories: Option<[String; 3]>,
    /// The `AT+CNMI` parameters the modem accepted, e.g. `2,1,0,2,0`; `None` when it accepted
    /// none with `<mt>`=1: new messages are then found by the gateway's sweep only.
    pub cnmi: Option<String>,
    /// How status reports arrive; `None` until init has chosen.
    pub status_reports: Option<StatusReportRouting>,
    /// The service centre address the SIM carries (after init set it from config, if it had to).
    pub smsc: Option<String>,
    /// The SIM has no service centre address and the config gives none (or setting it
    /// failed): sends that rely on the SIM's (`00` in front of the PDU) are refused with that
    /// reason instead of an opaque `+CMS ERROR: 330`.
    pub smsc_missing: bool,
    /// Things an operator should fix or know (no SMSC, no `+CMTI`, storage fallback, …).
    pub warnings: Vec<String>,
}

/// Everything the task knows about its modem, published on a `watch` channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModemState {
    /// The configured name of the modem (logs, health).
    pub name: String,
    /// The device string (`/dev/ttyUSB2`, `tcp://host:port`).
    pub device: String,
    /// Where the task is.
    pub phase: Phase,
    /// When `phase` last changed (the task's clock, which tests can pause).
    #[serde(skip)]
    pub since: Instant,
    /// The last error, with what to check; cleared when the modem is ready again.
    pub last_error: Option<String>,
    /// Identity, read at init.
    pub identity: Identity,
    /// The SIM, from init and from `+CPIN` URCs.
    pub sim: Option<SimState>,
    /// Fill levels of the memories, from init and every later `AT+CPMS` answer.
    pub storage: Vec<MemoryReport>,
    /// Signal, from init, the periodic refresh and every later `AT+CSQ` answer.
    pub signal: Option<Signal>,
    /// Registration, from init, the periodic refresh, queries and `+CREG`-family URCs.
    pub registration: Option<RegistrationSummary>,
    /// The operator's name (`AT+COPS?`).
    pub operator: Option<String>,
    /// What init configured.
    pub settings: Settings,
    /// How many times the port was lost or the modem restarted since the task started.
    pub outages: u64,
    /// URCs dropped because the receiver was not reading and the backlog was full. Non-zero
    /// means a `+CMTI` may have been missed: the gateway's sweep catches those.
    pub urcs_dropped: u64,
    /// Why the modem is not working, as a word (`pin_wrong`, `sim_busy`, …); `None` when
    /// nothing is wrong that has a word. `last_error` has the sentence with the fix.
    pub condition: Option<Condition>,
    /// Whether this modem may send while roaming (from `allow_roaming`).
    pub allow_roaming: bool,
    /// The escalations for a modem that stopped answering.
    pub recoveries: Recoveries,
    /// The quirks in force, once init has read the modem's identity.
    pub quirks: Option<crate::quirks::Quirks>,
}

impl ModemState {
    /// The state of a task that has just started.
    pub fn new(name: impl Into<String>, device: impl Into<String>) -> ModemState {
        ModemState {
            name: name.into(),
            device: device.into(),
            phase: Phase::Connecting,
            since: Instant::now(),
            last_error: None,
            identity: Identity::default(),
            sim: None,
            storage: Vec::new(),
            signal: None,
            registration: None,
            operator: None,
            settings: Settings::default(),
            outages: 0,
            urcs_dropped: 0,
            condition: None,
            allow_roaming: true,
            recoveries: Recoveries::default(),
            quirks: None,
        }
    }

    /// Whether operations run now.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the modem can be expected to send: ready, registered (or registration not
    /// known, which some modems never report), not roaming against `allow_roaming`, and not
    /// escalating a hang. The gateway's dispatcher and workers ask this before every job, so
    /// losing registration pauses sending on this modem (rows stay queued or go to another
    /// modem) and regaining it resumes. [`ModemState::send_blocker`] says why not.
    pub fn can_send(&self) -> bool {
        self.send_blocker().is_none()
    }

    /// Why this modem cannot send now, in words with what to do; `None` when it can.
    pub fn send_blocker(&self) -> Option<String> {
        if !self.is_ready() {
            return Some(match &self.last_error {
                Some(error) => format!("the modem is {}: {error}", self.phase),
                None => format!("the modem is {}", self.phase),
            });
        }
        if self.condition == Some(Condition::NotResponding) {
            return Some(
                "the modem stopped answering; the driver is recovering it (ESC and AT probe, \
                 reset if allowed, reopening the port)"
                    .to_owned(),
            );
        }
        match self.registration {
            Some(RegistrationSummary::Roaming) if !self.allow_roaming => Some(
                "roaming, and this modem may not send while roaming (allow_roaming is false): \
                 sending resumes on the home network, or set modems[].allow_roaming to true"
                    .to_owned(),
            ),
            Some(r) if !r.is_registered() && r != RegistrationSummary::Unknown => Some(format!(
                "not registered on a network (registration: {r}): sending is paused until the \
                 modem registers again; check the antenna, coverage and the SIM's validity"
            )),
            _ => None,
        }
    }
}
