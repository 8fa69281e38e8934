//! Message service settings: `+CMEE` (TS 27.007 §9.1), and from TS 27.005 `+CSMS` (§3.2.1),
//! `+CMGF` (§3.2.3), `+CSCA` (§3.3.1), `+CSMP` (§3.3.2), `+CSDH` (§3.3.3), `+CNMI` (§3.4.1),
//! `+CNMA` (§3.4.4); `+CSCS` (TS 27.007 §5.5).
//!
//! `+CNMI` is validated against the personality's table, including combinations a model
//! advertises but refuses (see [`crate::personality::CnmiQuirk`]). Leaving `<mode>` 0 flushes
//! or clears the indications the TA buffered, as `<bfr>` says. With `+CSMS` service 1, every
//! `+CMT`/`+CDS` must be acknowledged with `+CNMA`.

use crate::codes::{Final, cms};
use crate::command_line::{Operation, Param};
use crate::commands::{cme_bad_value, number_at, text_at};
use crate::format::{from_te_string, te_string};
use crate::personality::Cnmi;
use crate::virtual_modem::{Charset, ModemEvent, Step, VirtualModem};

type Answer = Result<Step, Final>;

impl VirtualModem {
    pub(super) fn cmee(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        match op {
            Operation::Read => info.push(format!("+CMEE: {}", self.settings.cmee)),
            Operation::Test => info.push("+CMEE: (0-2)".to_owned()),
            Operation::Execute => self.settings.cmee = 0,
            Operation::Set(params) => match number_at(params, 0) {
                Ok(None) => self.settings.cmee = 0,
                Ok(Some(n @ 0..=2)) => self.settings.cmee = n as u8,
                _ => return Err(cme_bad_value()),
            },
        }
        Ok(Step::Done)
    }

    pub(super) fn cmgf(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sms_gate(false)?;
        match op {
            Operation::Read => info.push(format!("+CMGF: {}", u8::from(self.settings.text_mode))),
            Operation::Test => info.push("+CMGF: (0,1)".to_owned()),
            Operation::Execute => self.settings.text_mode = false,
            Operation::Set(params) => match number_at(params, 0) {
                Ok(None | Some(0)) => self.settings.text_mode = false,
                Ok(Some(1)) => self.settings.text_mode = true,
                _ => return Err(Final::Cms(cms::NOT_SUPPORTED)),
            },
        }
        Ok(Step::Done)
    }

    pub(super) fn cscs(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        match op {
            Operation::Read => info.push(format!("+CSCS: \"{}\"", self.settings.cscs.name())),
            Operation::Test => info.push("+CSCS: (\"GSM\",\"IRA\",\"UCS2\")".to_owned()),
            Operation::Set(params) => {
                let name = text_at(params, 0).ok_or_else(cme_bad_value)?;
                self.settings.cscs = [Charset::Gsm, Charset::Ira, Charset::Ucs2]
                    .into_iter()
                    .find(|c| c.name().eq_ignore_ascii_case(name))
                    .ok_or_else(cme_bad_value)?;
            }
            Operation::Execute => return Err(cme_bad_value()),
        }
        Ok(Step::Done)
    }

    pub(super) fn csca(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sms_gate(true)?;
        match op {
            Operation::Read => {
                let (number, kind) = &self.smsc;
                info.push(format!("+CSCA: \"{}\",{kind}", te_string(self, number)));
            }
            Operation::Test => {}
            Operation::Set(params) => {
                let number = text_at(params, 0)
                    .and_then(|n| from_te_string(self, n))
                    .ok_or_else(|| self.sms_bad_value())?;
                let kind = match number_at(params, 1) {
                    Ok(Some(k)) if k <= 255 => k as u8,
                    Ok(None) if number.starts_with('+') => 145,
                    Ok(None) => 129,
                    _ => return Err(self.sms_bad_value()),
                };
                self.smsc = (number, kind);
            }
            Operation::Execute => return Err(self.sms_bad_value()),
        }
        Ok(Step::Done)
    }

    pub(super) fn csms(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sms_gate(false)?;
        match op {
            Operation::Read => info.push(format!("+CSMS: {},1,1,1", self.storage.csms)),
            Operation::Test => info.push("+CSMS: (0,1)".to_owned()),
            Operation::Set(params) => {
                match number_at(params, 0) {
                    Ok(Some(s @ (0 | 1))) => self.storage.csms = s as u8,
                    _ => return Err(Final::Cms(cms::NOT_SUPPORTED)),
                }
                info.push("+CSMS: 1,1,1".to_owned());
            }
            Operation::Execute => return Err(self.sms_bad_value()),
        }
        Ok(Step::Done)
    }

    pub(super) fn cnmi_command(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sms_gate(false)?;
        match op {
            Operation::Read => {
                let c = self.settings.cnmi;
                info.push(format!(
                    "+CNMI: {},{},{},{},{}",
                    c.mode, c.mt, c.bm, c.ds, c.bfr
                ));
            }
            Operation::Test => info.push(format!("+CNMI: {}", self.personality.cnmi_test)),
            Operation::Set(params) => {
                if params.len() > 5 {
                    return Err(Final::Error);
                }
                let mut values = [0u8; 5];
                for (i, value) in values.iter_mut().enumerate() {
                    match number_at(params, i) {
                        Ok(None) => {}
                        Ok(Some(v)) => *value = u8::try_from(v).unwrap_or(u8::MAX),
                        Err(()) => return Err(Final::Error),
                    }
                }
                let [mode, mt, bm, ds, bfr] = values;
                let setting = Cnmi::new(mode, mt, bm, ds, bfr);
                if let Some(refusal) = self.personality.cnmi_refusal(&setting) {
                    return Err(refusal);
                }
                self.settings.cnmi = setting;
                self.cnmi_changed();
            }
            Operation::Execute => return Err(Final::Error),
        }
        Ok(Step::Done)
    }

    pub(super) fn csmp(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        match op {
            Operation::Read => {
                let [fo, vp, pid, dcs] = self.settings.csmp;
                info.push(format!("+CSMP: {fo},{vp},{pid},{dcs}"));
            }
            Operation::Test => {}
            Operation::Set(params) => {
                let mut csmp = self.settings.csmp;
                for (i, value) in csmp.iter_mut().enumerate() {
                    match number_at(params, i) {
                        Ok(None) => {}
                        Ok(Some(v)) if v <= 255 => *value = v as u8,
                        _ => return Err(Final::Cms(cms::INVALID_TEXT_PARAMETER)),
                    }
                }
                self.settings.csmp = csmp;
            }
            Operation::Execute => {}
        }
        Ok(Step::Done)
    }

    pub(super) fn csdh(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        match op {
            Operation::Read => info.push(format!("+CSDH: {}", u8::from(self.settings.csdh))),
            Operation::Test => info.push("+CSDH: (0,1)".to_owned()),
            Operation::Execute => self.settings.csdh = false,
            Operation::Set(params) => match number_at(params, 0) {
                Ok(None | Some(0)) => self.settings.csdh = false,
                Ok(Some(1)) => self.settings.csdh = true,
                _ => return Err(Final::Cms(cms::NOT_SUPPORTED)),
            },
        }
        Ok(Step::Done)
    }

    /// `AT+CNMA[=<n>]`: acknowledges the last `+CMT`/`+CDS` (service 1). `<n>`=2 is a
    /// negative acknowledgement: the network keeps the message and tries again later.
    pub(super) fn cnma(&mut self, op: &Operation) -> Answer {
        let n = match op {
            Operation::Execute => 0,
            Operation::Test => return Ok(Step::Done),
            Operation::Set(params) => {
                if params
                    .get(1)
                    .is_some_and(|p| !p.is_omitted() && p != &Param::Bare("0".into()))
                {
                    // An RP-ACK/RP-ERROR PDU after a prompt is not simulated.
                    return Err(Final::Cms(cms::NOT_SUPPORTED));
                }
                match number_at(params, 0) {
                    Ok(None) => 0,
                    Ok(Some(n @ 0..=2)) => n,
                    _ => return Err(self.sms_bad_value()),
                }
            }
            Operation::Read => return Err(Final::Error),
        };
        if self.storage.csms != 1 {
            return Err(Final::Cms(cms::NO_ACK_EXPECTED));
        }
        let Some((_, pdu)) = self.awaiting_ack.take() else {
            return Err(Final::Cms(cms::NO_ACK_EXPECTED));
        };
        if n == 2 {
            self.push_event(ModemEvent::DeliveryFailed(pdu));
        } else {
            self.push_event(ModemEvent::Acknowledged(pdu));
        }
        Ok(Step::Done)
    }
}
