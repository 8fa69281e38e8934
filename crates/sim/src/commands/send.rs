//! Sending (TS 27.005 §3.5.1 `+CMGS`, §3.5.2 `+CMSS`) and what the `> ` prompt collects
//! (`+CMGS` and `+CMGW`, PDU and text mode).
//!
//! PDU mode checks what a real modem checks before the network sees anything: the body is hex
//! (no spaces, no CR: a driver that sends them gets `+CMS ERROR: 304` here as on strict
//! modems), `<length>` equals the TPDU's octets (the SMSC part not counted), and the octets
//! decode as an SMS-SUBMIT with the codec, exactly (a TP-UDL that disagrees with the octets is
//! an error too). The modem then assigns TP-MR from its own counter, which wraps at 256, and
//! answers `+CMGS: <mr>` after the send latency.

use std::time::Instant;

use conductor_sms::{
    DecodedPdu, Direction, SubmitOptions, Tpdu, build_submits, decode_hex, decode_pdu_with,
    encode_pdu,
};

use crate::codes::{Final, cms};
use crate::command_line::Operation;
use crate::commands::{number_at, text_at};
use crate::faults::RejectStage;
use crate::format;
use crate::sim_card::{MessageStatus, StoredMessage};
use crate::virtual_modem::{Prompt, SendOutcome, Step, Submission, VirtualModem};

type Answer = Result<Step, Final>;

/// What a completed prompt leads to.
enum After {
    /// An information line, then `OK`.
    Reply(String),
    /// The send machinery answers later.
    Pending,
}

/// The largest TPDU a `<length>` may announce (TS 23.040: 164 octets for a SUBMIT).
const MAX_TPDU: u32 = 176;

impl VirtualModem {
    pub(super) fn cmgs(&mut self, op: &Operation) -> Answer {
        self.sms_gate(true)?;
        let prompt = match op {
            Operation::Test => return Ok(Step::Done),
            Operation::Set(params) if self.settings.text_mode => {
                let destination = text_at(params, 0)
                    .and_then(|d| format::from_te_string(self, d))
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| self.sms_bad_value())?;
                Prompt::SendText { destination }
            }
            Operation::Set(params) if params.len() == 1 => {
                let length = number_at(params, 0)
                    .ok()
                    .flatten()
                    .filter(|l| (1..=MAX_TPDU).contains(l))
                    .ok_or_else(|| self.sms_bad_value())?;
                Prompt::SendPdu {
                    length: length as usize,
                }
            }
            _ => return Err(self.sms_bad_value()),
        };
        if let Some(code) = self.faults.take_reject(RejectStage::BeforePrompt) {
            return Err(Final::Cms(code));
        }
        Ok(Step::Prompt(prompt))
    }

    /// `AT+CMSS=<index>[,<da>[,<toda>]]`: sends a stored SMS-SUBMIT from `<mem2>` and marks it
    /// STO SENT.
    pub(super) fn cmss(&mut self, now: Instant, op: &Operation, _info: &mut Vec<String>) -> Answer {
        self.sms_gate(true)?;
        let params = match op {
            Operation::Test => return Ok(Step::Done),
            Operation::Set(params) => params,
            _ => return Err(self.sms_bad_value()),
        };
        let index = number_at(params, 0)
            .ok()
            .flatten()
            .ok_or_else(|| self.sms_bad_value())?;
        let mem2 = self.storage.cpms[1];
        let message = match self.sim.get(mem2, index) {
            Ok(Some(message)) => message.clone(),
            _ => return Err(Final::Cms(cms::INVALID_INDEX)),
        };
        let Ok(DecodedPdu {
            smsc,
            tpdu: Tpdu::Submit(mut submit),
        }) = decode_pdu_with(&message.pdu, Direction::MsToSc)
        else {
            return Err(Final::Cms(cms::NOT_ALLOWED));
        };
        if let Some(destination) = text_at(params, 1) {
            let destination = format::from_te_string(self, destination)
                .and_then(|d| conductor_sms::Address::parse_phone_number(&d).ok())
                .ok_or_else(|| self.sms_bad_value())?;
            submit.destination = destination;
        }
        if let Some(code) = self.faults.take_reject(RejectStage::BeforePrompt) {
            return Err(Final::Cms(code));
        }
        Ok(self.send_submit(
            now,
            message.pdu,
            Submission {
                pdu: Vec::new(),
                smsc,
                submit,
            },
            "+CMSS",
            Some((mem2, index)),
        ))
    }

    /// The PDU or text after `> `, ended by Ctrl-Z.
    pub(crate) fn prompt_done(&mut self, now: Instant, prompt: Prompt, body: &str) {
        match self.collect(now, prompt, body) {
            Err(end) => self.finish(now, Vec::new(), Some(end)),
            Ok(After::Pending) => self.complete_if_due(now),
            Ok(After::Reply(line)) => self.finish(now, vec![vec![line]], Some(Final::Ok)),
        }
    }

    fn collect(&mut self, now: Instant, prompt: Prompt, body: &str) -> Result<After, Final> {
        match prompt {
            Prompt::SendPdu { length } => {
                let (bytes, decoded) = parse_pdu(body, length, Direction::MsToSc)?;
                let DecodedPdu {
                    smsc,
                    tpdu: Tpdu::Submit(submit),
                } = decoded
                else {
                    return Err(Final::Cms(cms::INVALID_PDU_PARAMETER));
                };
                let submission = Submission {
                    pdu: Vec::new(),
                    smsc,
                    submit,
                };
                self.send_submit(now, bytes, submission, "+CMGS", None);
                Ok(After::Pending)
            }
            Prompt::SendText { destination } => {
                let text = format::from_te_string(self, body)
                    .ok_or(Final::Cms(cms::INVALID_TEXT_PARAMETER))?;
                let bytes = self.text_submit(&destination, &text)?;
                let Ok(DecodedPdu {
                    smsc,
                    tpdu: Tpdu::Submit(submit),
                }) = decode_pdu_with(&bytes, Direction::MsToSc)
                else {
                    return Err(Final::Cms(cms::INVALID_TEXT_PARAMETER));
                };
                let submission = Submission {
                    pdu: Vec::new(),
                    smsc,
                    submit,
                };
                self.send_submit(now, bytes, submission, "+CMGS", None);
                Ok(After::Pending)
            }
            Prompt::WritePdu { length, status } => {
                let (bytes, _) = parse_pdu(body, length, Direction::Stored)?;
                self.write_stored(bytes, status)
            }
            Prompt::WriteText {
                destination,
                status,
            } => {
                let text = format::from_te_string(self, body)
                    .ok_or(Final::Cms(cms::INVALID_TEXT_PARAMETER))?;
                let bytes = self.text_submit(&destination, &text)?;
                self.write_stored(bytes, status)
            }
        }
    }

    /// One SMS-SUBMIT for a text-mode message, with `AT+CSMP`'s status report request.
    fn text_submit(&self, destination: &str, text: &str) -> Result<Vec<u8>, Final> {
        let bad = Final::Cms(cms::INVALID_TEXT_PARAMETER);
        let options = SubmitOptions {
            status_report: self.settings.csmp[0] & 0x20 != 0,
            ..SubmitOptions::default()
        };
        let submits = build_submits(destination, text, &options).map_err(|_| bad)?;
        let [submit] = submits.as_slice() else {
            // Text mode sends one SMS; a longer text is the host's job to split.
            return Err(bad);
        };
        encode_pdu(None, &Tpdu::Submit(submit.clone()))
            .map(|pdu| pdu.bytes)
            .map_err(|_| bad)
    }

    fn write_stored(&mut self, pdu: Vec<u8>, status: MessageStatus) -> Result<After, Final> {
        let mem2 = self.storage.cpms[1];
        let placement = self
            .sim
            .store(mem2, StoredMessage { status, pdu })
            .ok_or(Final::Cms(cms::MEMORY_FULL))?;
        Ok(After::Reply(format!("+CMGW: {}", placement.memory_index)))
    }

    /// Hands a checked SMS-SUBMIT to the send machinery: faults, network, TP-MR, latency.
    fn send_submit(
        &mut self,
        now: Instant,
        pdu: Vec<u8>,
        mut submission: Submission,
        reply: &'static str,
        stored: Option<(&'static str, u32)>,
    ) -> Step {
        let outcome = if let Some(code) = self.faults.take_reject(RejectStage::AfterPdu) {
            SendOutcome::Rejected(code)
        } else if !self.has_network(now) {
            SendOutcome::Rejected(cms::NO_NETWORK)
        } else if submission.smsc.is_none() && self.smsc.0.is_empty() {
            // Neither the PDU nor the SIM names a service centre (TS 27.005 §3.2.5).
            SendOutcome::Rejected(cms::SMSC_ADDRESS_UNKNOWN)
        } else {
            let mr = self.take_message_reference();
            submission.submit.message_reference = mr;
            submission.pdu = pdu;
            let hold = self.faults.take_hold();
            SendOutcome::Sent {
                reply: if hold.is_some() { None } else { Some(reply) },
                mr,
                submission: (hold != Some(false)).then_some(submission),
                stored,
            }
        };
        self.start_pending(now, outcome)
    }
}

/// Checks a PDU-mode body: hex only, `<length>` = TPDU octets, decodes as `direction` says and
/// re-encodes to the same length.
fn parse_pdu(
    body: &str,
    length: usize,
    direction: Direction,
) -> Result<(Vec<u8>, DecodedPdu), Final> {
    let bad = Final::Cms(cms::INVALID_PDU_PARAMETER);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad);
    }
    let bytes = decode_hex(body).map_err(|_| bad)?;
    let smsc_part = bytes.first().map_or(0, |&n| usize::from(n) + 1);
    if bytes.len().checked_sub(smsc_part) != Some(length) {
        return Err(bad);
    }
    let decoded = decode_pdu_with(&bytes, direction).map_err(|_| bad)?;
    let encoded = decoded.tpdu.encode().map_err(|_| bad)?;
    if encoded.len() != length {
        return Err(bad);
    }
    Ok((bytes, decoded))
}
