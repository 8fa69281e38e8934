//! Telephony beside SMS: USSD (`AT+CUSD`, TS 27.007 §7.15) and incoming calls (`RING`,
//! `+CLIP` §7.6, `AT+CHUP` §6.5, `ATH`).
//!
//! USSD answers come from a table per modem (`*100#` → "Your balance is 12.34 EUR" unless a
//! test sets another through control) and are sent as a `+CUSD` URC after the `OK`, as most
//! modems do. How `<str>` is written follows the personality: Huawei firmware prints the
//! packed GSM 7-bit septets as hex whatever `AT+CSCS` says; Quectel answers UCS-2 hex (DCS
//! 72); the others print the decoded text. A text outside the GSM alphabet is always UCS-2.
//!
//! A call rings `rings` times, every `interval`, with `+CLIP` after each RING while
//! `AT+CLIP=1`; the caller gives up after the last one (`NO CARRIER`). `AT+CHUP` or `ATH`
//! rejects it; every call is recorded with its outcome for control's `calls`. Which
//! personality refuses `AT+CHUP` is a simulator choice (SIM800), made so the driver's `ATH`
//! fallback has a modem to run against; it is not a captured behaviour.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use conductor_sms::alphabet::{gsm7, packing, ucs2};
use serde::Serialize;

use super::{cme_bad_value, number_at, text_at};
use crate::codes::Final;
use crate::command_line::Operation;
use crate::virtual_modem::{Charset, Step, UrcClass, VirtualModem};

type Answer = Result<Step, Final>;

/// The balance answer every modem gives by default.
pub const DEFAULT_BALANCE_TEXT: &str = "Your balance is 12.34 EUR";

/// A call ringing now.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RingingCall {
    from: String,
    rings_left: u32,
    rings: u32,
    interval: Duration,
    next: Instant,
}

/// What became of one incoming call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The caller.
    pub from: String,
    /// RINGs sent.
    pub rings: u32,
    /// `ringing`, `rejected` (by `AT+CHUP`/`ATH`) or `missed` (the caller gave up).
    pub outcome: &'static str,
    /// The command that rejected it, if one did.
    pub rejected_with: Option<&'static str>,
}

/// The modem's telephony state (kept across reboots: it belongs to the network side).
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Telephony {
    /// `AT+CLIP=1`.
    clip: bool,
    call: Option<RingingCall>,
    /// Every call, oldest first.
    log: Vec<CallRecord>,
    /// Answers set through control, by code.
    answers: BTreeMap<String, String>,
    /// USSD requests received, oldest first.
    pub requests: Vec<String>,
}

impl Telephony {
    /// When the next RING is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.call.as_ref().map(|c| c.next)
    }
}

impl VirtualModem {
    /// Starts an incoming call from `from`: `rings` RINGs, every `interval`, the first now.
    pub fn incoming_call(&mut self, now: Instant, from: &str, rings: u32, interval: Duration) {
        self.telephony.log.push(CallRecord {
            from: from.to_owned(),
            rings: 0,
            outcome: "ringing",
            rejected_with: None,
        });
        self.telephony.call = Some(RingingCall {
            from: from.to_owned(),
            rings_left: rings.max(1),
            rings: 0,
            interval: interval.max(Duration::from_millis(10)),
            next: now,
        });
        self.ring_if_due(now);
    }

    /// The calls so far, oldest first.
    pub fn calls(&self) -> &[CallRecord] {
        &self.telephony.log
    }

    /// The USSD codes received so far, oldest first.
    pub fn ussd_requests(&self) -> &[String] {
        &self.telephony.requests
    }

    /// Answers `code` with `text` from now on (`None`: back to the default).
    pub fn set_ussd_answer(&mut self, code: &str, text: Option<&str>) {
        match text {
            Some(text) => {
                self.telephony
                    .answers
                    .insert(code.to_owned(), text.to_owned());
            }
            None => {
                self.telephony.answers.remove(code);
            }
        }
    }

    /// Sends the RINGs that are due (call from `handle_timeout`).
    pub(crate) fn ring_if_due(&mut self, now: Instant) {
        let Some(call) = self.telephony.call.as_mut() else {
            return;
        };
        if now < call.next {
            return;
        }
        if call.rings_left == 0 {
            // The caller gave up.
            self.telephony.call = None;
            self.record_outcome("missed", None);
            self.unsolicited(vec!["NO CARRIER".to_owned()], UrcClass::Other);
            return;
        }
        call.rings_left -= 1;
        call.rings += 1;
        call.next = now + call.interval;
        let mut lines = vec!["RING".to_owned()];
        if self.telephony.clip {
            let (number, kind) = if call.from.is_empty() {
                (String::new(), 128)
            } else if call.from.starts_with('+') {
                (call.from.clone(), 145)
            } else {
                (call.from.clone(), 129)
            };
            lines.push(format!("+CLIP: \"{number}\",{kind},\"\",,\"\",0"));
        }
        let rings = call.rings;
        if let Some(last) = self.telephony.log.last_mut() {
            last.rings = rings;
        }
        // RING and +CLIP are separate URCs on the wire.
        for line in lines {
            self.unsolicited(vec![line], UrcClass::Other);
        }
    }

    fn record_outcome(&mut self, outcome: &'static str, with: Option<&'static str>) {
        if let Some(last) = self.telephony.log.last_mut() {
            last.outcome = outcome;
            last.rejected_with = with;
        }
    }

    /// `AT+CLIP`.
    pub(super) fn clip(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        match op {
            Operation::Read => info.push(format!("+CLIP: {},1", u8::from(self.telephony.clip))),
            Operation::Test => info.push("+CLIP: (0,1)".to_owned()),
            Operation::Set(params) => match number_at(params, 0) {
                Ok(Some(v @ (0 | 1))) => self.telephony.clip = v == 1,
                _ => return Err(cme_bad_value()),
            },
            Operation::Execute => return Err(cme_bad_value()),
        }
        Ok(Step::Done)
    }

    /// Whether this modem refuses `AT+CHUP` (see the module doc).
    fn refuses_chup(&self) -> bool {
        self.personality.name == "simcom_sim800"
    }

    /// `AT+CHUP`.
    pub(super) fn chup(&mut self, op: &Operation) -> Answer {
        if self.refuses_chup() {
            return Err(self.unknown());
        }
        match op {
            Operation::Execute => {
                self.hang_up("AT+CHUP");
                Ok(Step::Done)
            }
            Operation::Test => Ok(Step::Done),
            _ => Err(cme_bad_value()),
        }
    }

    /// `ATH` (and `AT+CHUP`): ends a ringing call.
    pub(crate) fn hang_up(&mut self, with: &'static str) {
        if self.telephony.call.take().is_some() {
            self.record_outcome("rejected", Some(with));
        }
    }

    /// `AT+CUSD`.
    pub(super) fn cusd(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        match op {
            Operation::Read => info.push("+CUSD: 1".to_owned()),
            Operation::Test => info.push("+CUSD: (0-2)".to_owned()),
            Operation::Execute => {}
            Operation::Set(params) => {
                let n = number_at(params, 0).map_err(|()| cme_bad_value())?;
                match (n, text_at(params, 1)) {
                    (Some(2), _) => {}
                    (_, None) => {}
                    (_, Some(code)) => {
                        if !self.has_network_now() {
                            return Err(Final::Cme(30));
                        }
                        self.telephony.requests.push(code.to_owned());
                        let line = self.ussd_answer(code);
                        self.unsolicited(vec![line], UrcClass::Other);
                    }
                }
            }
        }
        Ok(Step::Done)
    }

    fn has_network_now(&self) -> bool {
        self.sim_ready()
    }

    /// The `+CUSD` line answering `code`.
    fn ussd_answer(&self, code: &str) -> String {
        let text = match self.telephony.answers.get(code) {
            Some(text) => text.clone(),
            None if code == "*100#" => DEFAULT_BALANCE_TEXT.to_owned(),
            None => return "+CUSD: 4".to_owned(),
        };
        let septets = gsm7::encode(&text).ok();
        match (septets, self.personality.name) {
            (Some(septets), "huawei_e173" | "huawei_e3372") => {
                format!("+CUSD: 0,\"{}\",15", hex(&packing::pack(&septets, 0)))
            }
            (_, "quectel_ec25") | (None, _) => {
                format!("+CUSD: 0,\"{}\",72", hex(&ucs2::encode(&text)))
            }
            (Some(_), _) if self.settings.cscs == Charset::Ucs2 => {
                format!("+CUSD: 0,\"{}\",15", hex(&ucs2::encode(&text)))
            }
            (Some(_), _) => format!("+CUSD: 0,\"{text}\",15"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
