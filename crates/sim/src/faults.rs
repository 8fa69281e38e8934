//! Faults that can be injected into a virtual modem, through the control interface, the
//! config or the Rust API.
//!
//! Why: promise 6 ("the modem may vanish") and promise 3 ("sent at most once") can only be
//! tested against a modem that misbehaves on demand: unplugged, hung, rebooted, spewing
//! garbage, losing bytes, refusing sends, or going silent after a PDU.
//!
//! Each fault is data ([`Fault`]); the virtual modem keeps the active ones in
//! [`FaultState`]. Durations are virtual-time durations measured from the `now` the fault was
//! applied at; `None` means "until cleared".

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// When a `reject_sends` fault answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectStage {
    /// To `AT+CMGS=<length>` itself, before the `> ` prompt: nothing was sent, and the
    /// gateway may retry (DESIGN "Sending").
    BeforePrompt,
    /// After the PDU and Ctrl-Z, in place of `+CMGS: <mr>`: the network refused it.
    #[default]
    AfterPdu,
}

/// A fault to inject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// The modem disappears: TCP connections are dropped and refused, the pty is closed and
    /// its symlink removed; messages for it are held by the network. Plugging it back in
    /// powers it up (boot banner, settings reset).
    Unplug {
        /// How long, `None` until cleared.
        #[serde(default, with = "seconds")]
        seconds: Option<Duration>,
    },
    /// The modem stops answering and emits nothing, but the line stays open. Messages are
    /// still stored on the SIM (their URCs are lost).
    Hang {
        /// How long, `None` until cleared.
        #[serde(default, with = "seconds")]
        seconds: Option<Duration>,
    },
    /// Random bytes written once, at the next line boundary.
    Garbage {
        /// How many bytes.
        #[serde(default = "default_garbage_bytes")]
        bytes: usize,
    },
    /// Random bytes between output lines, with this chance at each line boundary.
    GarbageRate {
        /// Chance per line boundary, 0 to 1.
        rate: f64,
    },
    /// Each output byte is lost with this chance.
    DropOutput {
        /// Chance per byte, 0 to 1.
        fraction: f64,
    },
    /// The next `count` sends fail with `+CMS ERROR: <code>`.
    RejectSends {
        /// How many sends.
        #[serde(default = "one")]
        count: u32,
        /// The `+CMS ERROR` code (e.g. 38 network out of order, 42 congestion, 500).
        #[serde(default = "default_reject_code")]
        code: u16,
        /// Before the prompt or after the PDU.
        #[serde(default)]
        stage: RejectStage,
    },
    /// The next `count` sends never get an answer after the PDU: no `+CMGS`, no `OK`; the modem
    /// silently returns to command mode. With `submit`, the network got the message anyway
    /// (the worst case for "sent at most once").
    HoldSends {
        /// How many sends.
        #[serde(default = "one")]
        count: u32,
        /// Whether the message reaches the network.
        #[serde(default = "yes")]
        submit: bool,
    },
    /// A reboot: the boot banner, settings back to their defaults (echo, CMEE, CMGF, CNMI,
    /// CPMS), the SIM contents kept, a send in flight lost.
    Reboot,
    /// No network service: not registered, `+CSQ: 99,99`, sends fail with `+CMS ERROR: 331`.
    NoNetwork {
        /// How long, `None` until cleared.
        #[serde(default, with = "seconds")]
        seconds: Option<Duration>,
    },
    /// The SIM is still initialising, as for several seconds after power-on or PIN entry:
    /// commands that need it answer `+CME ERROR: 14` (TS 27.007 commands, `AT+CPIN?`
    /// included) or `+CMS ERROR: 314` (TS 27.005 commands), and the modem is searching
    /// (`+CREG: 2`).
    SimBusy {
        /// How long, `None` until cleared.
        #[serde(default, with = "seconds")]
        seconds: Option<Duration>,
    },
    /// No SIM (not inserted, or not seated): `+CME ERROR: 10` / `+CMS ERROR: 310` to every
    /// command that needs it, not registered (`+CREG: 0`).
    NoSim {
        /// How long, `None` until cleared.
        #[serde(default, with = "seconds")]
        seconds: Option<Duration>,
    },
    /// The SIM carries no SMS service centre address (`+CSCA: "",129`): sends that rely on
    /// it fail with `+CMS ERROR: 330` until `AT+CSCA=` sets one. One-shot: it erases the
    /// address, as a fresh or blank SIM has none.
    NoSmsc,
    /// The modem stops answering and emits nothing while the line stays open (the Huawei
    /// `AT+CMGL` hang), and only `AT+CFUN=1,1` brings it back: it still acts on that one
    /// command (its `OK`, then a reboot). ESC, `AT` and reopening the port do not help.
    HangUntilReset,
}

/// A kind of lasting fault, to clear one without clearing the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// [`Fault::Unplug`] (plugs the modem back in).
    Unplug,
    /// [`Fault::Hang`].
    Hang,
    /// [`Fault::GarbageRate`].
    GarbageRate,
    /// [`Fault::DropOutput`].
    DropOutput,
    /// [`Fault::RejectSends`].
    RejectSends,
    /// [`Fault::HoldSends`].
    HoldSends,
    /// [`Fault::NoNetwork`].
    NoNetwork,
    /// [`Fault::SimBusy`].
    SimBusy,
    /// [`Fault::NoSim`].
    NoSim,
    /// [`Fault::HangUntilReset`].
    HangUntilReset,
}

impl FaultKind {
    /// Every kind, for "clear all".
    pub const ALL: [FaultKind; 10] = [
        FaultKind::Unplug,
        FaultKind::Hang,
        FaultKind::GarbageRate,
        FaultKind::DropOutput,
        FaultKind::RejectSends,
        FaultKind::HoldSends,
        FaultKind::NoNetwork,
        FaultKind::SimBusy,
        FaultKind::NoSim,
        FaultKind::HangUntilReset,
    ];
}

fn default_garbage_bytes() -> usize {
    16
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn default_reject_code() -> u16 {
    500
}

/// A pending `reject_sends`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RejectSends {
    /// Sends left to reject.
    pub remaining: u32,
    /// The code.
    pub code: u16,
    /// When.
    pub stage: RejectStage,
}

/// A pending `hold_sends`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct HoldSends {
    /// Sends left to hold.
    pub remaining: u32,
    /// Whether the network gets them.
    pub submit: bool,
}

/// The faults active on one modem (unplugging lives in the modem's power state).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultState {
    /// Hung: `Some(None)` until cleared, `Some(Some(t))` until `t`.
    pub hang: Option<Option<Instant>>,
    /// No network, same encoding.
    pub no_network: Option<Option<Instant>>,
    /// Garbage chance per line boundary.
    pub garbage_rate: f64,
    /// Garbage bytes to write at the next boundary.
    pub garbage_pending: usize,
    /// Output byte loss chance.
    pub drop_fraction: f64,
    /// Sends to reject.
    pub reject: Option<RejectSends>,
    /// Sends to hold.
    pub hold: Option<HoldSends>,
    /// SIM busy, same encoding as `hang`.
    pub sim_busy: Option<Option<Instant>>,
    /// No SIM, same encoding.
    pub no_sim: Option<Option<Instant>>,
    /// Hung until `AT+CFUN=1,1`.
    pub hung_until_reset: bool,
}

/// How a command that needs the SIM is refused while a SIM fault holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimRefusal {
    /// `+CME ERROR: <code>` (TS 27.007 commands).
    Cme(u16),
    /// `+CMS ERROR: <code>` (TS 27.005 commands).
    Cms(u16),
}

/// TS 27.007 commands that need the SIM (identity, PIN state, raw SIM access).
const SIM_COMMANDS_27007: &[&str] = &[
    "+CPIN", "+CIMI", "+CNUM", "+CCID", "^ICCID", "+QCCID", "+CICCID", "+CRSM",
];

/// TS 27.005 commands that need the SIM (message storage, sending, the service centre).
const SIM_COMMANDS_27005: &[&str] = &[
    "+CPMS", "+CMGL", "+CMGR", "+CMGD", "+CMGW", "+CMGS", "+CMSS", "+CSCA",
];

impl FaultState {
    /// Whether the modem is hung at `now` (for a while, or until `AT+CFUN=1,1`).
    pub fn is_hung(&self, now: Instant) -> bool {
        self.hung_until_reset || active(self.hang, now)
    }

    /// Whether the network is gone at `now`.
    pub fn has_no_network(&self, now: Instant) -> bool {
        active(self.no_network, now)
    }

    /// Takes one rejection, if any is pending and it applies at `stage`.
    pub fn take_reject(&mut self, stage: RejectStage) -> Option<u16> {
        let reject = self.reject.as_mut().filter(|r| r.stage == stage)?;
        reject.remaining = reject.remaining.saturating_sub(1);
        let code = reject.code;
        if reject.remaining == 0 {
            self.reject = None;
        }
        Some(code)
    }

    /// Takes one hold, if any is pending; returns whether the message is submitted anyway.
    pub fn take_hold(&mut self) -> Option<bool> {
        let hold = self.hold.as_mut()?;
        hold.remaining = hold.remaining.saturating_sub(1);
        let submit = hold.submit;
        if hold.remaining == 0 {
            self.hold = None;
        }
        Some(submit)
    }

    /// Drops timed faults whose time is up; returns whether the hang or the network fault
    /// ended (the modem has something to announce then).
    pub fn expire(&mut self, now: Instant) -> (bool, bool) {
        let hang_ended = expire(&mut self.hang, now);
        let network_back = expire(&mut self.no_network, now);
        let sim_back = expire(&mut self.sim_busy, now) | expire(&mut self.no_sim, now);
        (hang_ended, network_back || sim_back)
    }

    /// Whether the SIM answers busy at `now`.
    pub fn sim_is_busy(&self, now: Instant) -> bool {
        active(self.sim_busy, now)
    }

    /// Whether the SIM is missing at `now`.
    pub fn sim_is_missing(&self, now: Instant) -> bool {
        active(self.no_sim, now)
    }

    /// How `command` (an extended command name such as `+CPIN`) is refused at `now` while a
    /// SIM fault holds; `None` when it runs normally. A missing SIM wins over a busy one.
    pub fn sim_refusal(&self, now: Instant, command: &str) -> Option<SimRefusal> {
        let (cme, cms) = if self.sim_is_missing(now) {
            (10, 310)
        } else if self.sim_is_busy(now) {
            (14, 314)
        } else {
            return None;
        };
        if SIM_COMMANDS_27007.contains(&command) {
            Some(SimRefusal::Cme(cme))
        } else if SIM_COMMANDS_27005.contains(&command) {
            Some(SimRefusal::Cms(cms))
        } else {
            None
        }
    }

    /// The next instant a timed fault ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.hang, self.no_network, self.sim_busy, self.no_sim]
            .into_iter()
            .filter_map(|f| f.flatten())
            .min()
    }
}

fn active(fault: Option<Option<Instant>>, now: Instant) -> bool {
    match fault {
        None => false,
        Some(None) => true,
        Some(Some(until)) => now < until,
    }
}

fn expire(fault: &mut Option<Option<Instant>>, now: Instant) -> bool {
    if let Some(Some(until)) = *fault
        && now >= until
    {
        *fault = None;
        return true;
    }
    false
}

/// `Option<Duration>` as fractional seconds in JSON (`"seconds": 2.5`).
pub(crate) mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let value: Option<f64> = Option::deserialize(d)?;
        match value {
            None => Ok(None),
            Some(v) => Duration::try_from_secs_f64(v)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_from_json_with_defaults() {
        let f: Fault = serde_json::from_str(r#"{"fault":"unplug","seconds":2.5}"#).expect("json");
        assert_eq!(
            f,
            Fault::Unplug {
                seconds: Some(Duration::from_millis(2500))
            }
        );
        let f: Fault = serde_json::from_str(r#"{"fault":"reject_sends","code":38}"#).expect("json");
        assert_eq!(
            f,
            Fault::RejectSends {
                count: 1,
                code: 38,
                stage: RejectStage::AfterPdu
            }
        );
        let f: Fault = serde_json::from_str(r#"{"fault":"hang"}"#).expect("json");
        assert_eq!(f, Fault::Hang { seconds: None });
        let f: Fault = serde_json::from_str(r#"{"fault":"sim_busy","seconds":10}"#).expect("json");
        assert_eq!(
            f,
            Fault::SimBusy {
                seconds: Some(Duration::from_secs(10))
            }
        );
        let f: Fault = serde_json::from_str(r#"{"fault":"hang_until_reset"}"#).expect("json");
        assert_eq!(f, Fault::HangUntilReset);
        let f: Fault = serde_json::from_str(r#"{"fault":"no_smsc"}"#).expect("json");
        assert_eq!(f, Fault::NoSmsc);
    }

    #[test]
    fn a_busy_sim_refuses_sim_commands_with_the_family_code_and_a_missing_sim_wins() {
        let t0 = Instant::now();
        let mut state = FaultState {
            sim_busy: Some(Some(t0 + Duration::from_secs(10))),
            ..FaultState::default()
        };
        assert_eq!(state.sim_refusal(t0, "+CPIN"), Some(SimRefusal::Cme(14)));
        assert_eq!(state.sim_refusal(t0, "+CPMS"), Some(SimRefusal::Cms(314)));
        assert_eq!(state.sim_refusal(t0, "+CSQ"), None);
        state.no_sim = Some(None);
        assert_eq!(state.sim_refusal(t0, "+CIMI"), Some(SimRefusal::Cme(10)));
        state.no_sim = None;
        assert_eq!(state.expire(t0 + Duration::from_secs(10)), (false, true));
        assert_eq!(
            state.sim_refusal(t0 + Duration::from_secs(10), "+CPIN"),
            None
        );
    }

    #[test]
    fn a_rejection_is_used_up_only_at_its_stage() {
        let mut state = FaultState {
            reject: Some(RejectSends {
                remaining: 1,
                code: 42,
                stage: RejectStage::BeforePrompt,
            }),
            ..FaultState::default()
        };
        assert_eq!(state.take_reject(RejectStage::AfterPdu), None);
        assert_eq!(state.take_reject(RejectStage::BeforePrompt), Some(42));
        assert_eq!(state.take_reject(RejectStage::BeforePrompt), None);
    }

    #[test]
    fn a_timed_hang_ends_on_time() {
        let t0 = Instant::now();
        let mut state = FaultState {
            hang: Some(Some(t0 + Duration::from_secs(2))),
            ..FaultState::default()
        };
        assert!(state.is_hung(t0 + Duration::from_secs(1)));
        assert_eq!(state.expire(t0 + Duration::from_secs(2)), (true, false));
        assert!(!state.is_hung(t0 + Duration::from_secs(2)));
    }
}
