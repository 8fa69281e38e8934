//! Radio and registration (TS 27.007 §7.2, §7.3, §8.2, §8.5, §10.1.19, §10.1.22): `+CSQ`,
//! `+CREG`, `+CGREG`, `+CEREG` (LTE personalities only), `+COPS`, `+CFUN`.
//!
//! Registration follows the modem's state: searching (2) while booting or while the
//! `no_network` fault holds, not registered (0) while the SIM is locked or the radio is off,
//! registered (1) otherwise. With `<n>` 1 or 2 a change is announced unsolicited.

use std::time::Instant;

use crate::codes::Final;
use crate::command_line::Operation;
use crate::commands::{cme_bad_value, number_at};
use crate::virtual_modem::{Step, VirtualModem};

type Answer = Result<Step, Final>;

impl VirtualModem {
    pub(super) fn csq(&self, now: Instant, op: &Operation, info: &mut Vec<String>) -> Answer {
        match op {
            Operation::Execute => {
                let (rssi, ber) = if self.has_network(now) {
                    self.personality.signal
                } else {
                    (99, 99)
                };
                info.push(format!("+CSQ: {rssi},{ber}"));
            }
            Operation::Test => info.push("+CSQ: (0-31,99),(0-7,99)".to_owned()),
            _ => return Err(self.unknown()),
        }
        Ok(Step::Done)
    }

    pub(super) fn creg(
        &mut self,
        now: Instant,
        name: &str,
        op: &Operation,
        info: &mut Vec<String>,
    ) -> Answer {
        if name == "+CEREG" && !self.personality.registration.has_cereg {
            return Err(self.unknown());
        }
        let current = match name {
            "+CREG" => self.settings.creg,
            "+CGREG" => self.settings.cgreg,
            _ => self.settings.cereg,
        };
        match op {
            Operation::Read => {
                info.push(format!(
                    "{name}: {}",
                    self.registration_fields(now, current, true)
                ));
            }
            Operation::Test => info.push(format!("{name}: (0-2)")),
            Operation::Set(params) => {
                let n = number_at(params, 0)
                    .map_err(|_| cme_bad_value())?
                    .unwrap_or(0);
                let n = u8::try_from(n)
                    .ok()
                    .filter(|n| *n <= 2)
                    .ok_or_else(cme_bad_value)?;
                match name {
                    "+CREG" => self.settings.creg = n,
                    "+CGREG" => self.settings.cgreg = n,
                    _ => self.settings.cereg = n,
                }
            }
            Operation::Execute => return Err(cme_bad_value()),
        }
        Ok(Step::Done)
    }

    pub(super) fn cops(&mut self, now: Instant, op: &Operation, info: &mut Vec<String>) -> Answer {
        let (name, act) = self.personality.operator;
        match op {
            Operation::Read => {
                if self.has_network(now) {
                    let act = act.map(|a| format!(",{a}")).unwrap_or_default();
                    let format = self.settings.cops_format;
                    let oper = if format == 2 {
                        self.personality.imsi_prefix
                    } else {
                        name
                    };
                    info.push(format!("+COPS: 0,{format},\"{oper}\"{act}"));
                } else {
                    info.push("+COPS: 0".to_owned());
                }
            }
            Operation::Test => {
                let act = act.map(|a| format!(",{a}")).unwrap_or_default();
                let plmn = self.personality.imsi_prefix;
                info.push(format!(
                    "+COPS: (2,\"{name}\",\"{name}\",\"{plmn}\"{act}),,(0-4),(0-2)"
                ));
            }
            Operation::Set(params) => {
                let mode = number_at(params, 0).map_err(|_| cme_bad_value())?;
                let format = number_at(params, 1).map_err(|_| cme_bad_value())?;
                if mode.is_some_and(|m| m > 4) || format.is_some_and(|f| f > 2) {
                    return Err(cme_bad_value());
                }
                if let Some(format) = format {
                    self.settings.cops_format = format as u8;
                }
            }
            Operation::Execute => return Err(cme_bad_value()),
        }
        Ok(Step::Done)
    }

    /// `AT+CFUN=<fun>[,<rst>]`: 1 full, 0/4 radio off; `<rst>`=1 reboots after the `OK`, the
    /// usual way to reset a stuck modem.
    pub(super) fn cfun(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        match op {
            Operation::Read => info.push(format!("+CFUN: {}", self.storage.cfun)),
            Operation::Test => info.push("+CFUN: (0,1,4),(0,1)".to_owned()),
            Operation::Set(params) => {
                let fun = number_at(params, 0).map_err(|_| cme_bad_value())?;
                let rst = number_at(params, 1).map_err(|_| cme_bad_value())?;
                let fun = match fun {
                    Some(f @ (0 | 1 | 4)) => f as u8,
                    _ => return Err(cme_bad_value()),
                };
                match rst {
                    None | Some(0) => self.storage.cfun = fun,
                    Some(1) => self.reboot_after_reply(),
                    Some(_) => return Err(cme_bad_value()),
                }
            }
            Operation::Execute => return Err(cme_bad_value()),
        }
        Ok(Step::Done)
    }
}
