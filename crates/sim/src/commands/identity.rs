//! Identity and SIM commands (TS 27.007 §5, §8.3, §8.18): `+CGMI`, `+CGMM`, `+CGMR`,
//! `+CGSN` (and their V.250 `+GMx` twins), `+CIMI`, `+CPIN`, `+CNUM`, `+CRSM`, and the
//! vendors' ICCID commands, each answered the way its vendor does (`docs/real-modems.md`
//! rule 13): `+CCID` (bare digits on SIM800), `^ICCID?`, `+QCCID`, `+CICCID` → `+ICCID:`.

use crate::codes::Final;
use crate::command_line::Operation;
use crate::commands::{cme_bad_value, number_at, text_at};
use crate::personality::IccidStyle;
use crate::virtual_modem::{Step, VirtualModem};

type Answer = Result<Step, Final>;

impl VirtualModem {
    fn plain(&self, op: &Operation, info: &mut Vec<String>, line: String) -> Answer {
        match op {
            Operation::Execute => info.push(line),
            Operation::Test => {}
            _ => return Err(self.unknown()),
        }
        Ok(Step::Done)
    }

    pub(super) fn cgmi(&self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.plain(op, info, self.personality.manufacturer.to_owned())
    }

    pub(super) fn cgmm(&self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.plain(op, info, self.personality.model.to_owned())
    }

    pub(super) fn cgmr(&self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.plain(op, info, self.personality.revision.to_owned())
    }

    pub(super) fn cgsn(&self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.plain(op, info, self.identity.imei.clone())
    }

    pub(super) fn cimi(&self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sim_gate()?;
        self.plain(op, info, self.identity.imsi.clone())
    }

    pub(super) fn cnum(&self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sim_gate()?;
        let number = &self.options.number;
        let kind = if number.starts_with('+') { 145 } else { 129 };
        self.plain(op, info, format!("+CNUM: \"\",\"{number}\",{kind}"))
    }

    pub(super) fn cpin(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        match op {
            Operation::Read => info.push(format!("+CPIN: {}", self.pin_code())),
            Operation::Test => {}
            Operation::Set(params) => {
                let code = text_at(params, 0).ok_or_else(cme_bad_value)?;
                let new_pin = text_at(params, 1);
                self.enter_pin(code, new_pin)?;
            }
            Operation::Execute => return Err(cme_bad_value()),
        }
        Ok(Step::Done)
    }

    /// The ICCID padded with F to 20 characters, as Balong and Quectel print it.
    fn iccid_padded(&self) -> String {
        format!("{:F<20}", self.identity.iccid)
    }

    pub(super) fn iccid(&self, name: &str, op: &Operation, info: &mut Vec<String>) -> Answer {
        let style = self.personality.iccid;
        let line = match (name, style, op) {
            ("+CCID", IccidStyle::Ccid, Operation::Execute | Operation::Read) => {
                format!("+CCID: {}", self.identity.iccid)
            }
            ("+CCID", IccidStyle::CcidBare, Operation::Execute | Operation::Read) => {
                self.iccid_padded()
            }
            ("^ICCID", IccidStyle::CaretIccid, Operation::Read) => {
                format!("^ICCID: {}", self.iccid_padded())
            }
            ("+QCCID", IccidStyle::Qccid, Operation::Execute) => {
                format!("+QCCID: {}", self.iccid_padded())
            }
            ("+CICCID", IccidStyle::Ciccid, Operation::Execute) => {
                format!("+ICCID: {}", self.identity.iccid)
            }
            (_, _, Operation::Test) if self.iccid_command_is(name) => return Ok(Step::Done),
            _ => return Err(self.unknown()),
        };
        info.push(line);
        Ok(Step::Done)
    }

    fn iccid_command_is(&self, name: &str) -> bool {
        matches!(
            (name, self.personality.iccid),
            ("+CCID", IccidStyle::Ccid | IccidStyle::CcidBare)
                | ("^ICCID", IccidStyle::CaretIccid)
                | ("+QCCID", IccidStyle::Qccid)
                | ("+CICCID", IccidStyle::Ciccid)
        )
    }

    /// `AT+CRSM=176,12258,0,0,10`: READ BINARY of EF_ICCID, answered in the SIM's
    /// nibble-swapped BCD (`+CRSM: 144,0,"98…"`). Other files are "not found" (SW 6A 82).
    pub(super) fn crsm(&self, op: &Operation, info: &mut Vec<String>) -> Answer {
        if !matches!(
            self.personality.iccid,
            IccidStyle::CrsmOnly | IccidStyle::Ccid
        ) {
            return Err(self.unknown());
        }
        let Operation::Set(params) = op else {
            return match op {
                Operation::Test => Ok(Step::Done),
                _ => Err(cme_bad_value()),
            };
        };
        let command = number_at(params, 0).map_err(|_| cme_bad_value())?;
        let file = number_at(params, 1).map_err(|_| cme_bad_value())?;
        match (command, file) {
            (Some(176), Some(12258)) => {
                let padded = self.iccid_padded();
                let swapped: String = padded
                    .as_bytes()
                    .chunks(2)
                    .flat_map(|pair| pair.iter().rev().map(|&b| char::from(b)))
                    .collect();
                info.push(format!("+CRSM: 144,0,\"{swapped}\""));
            }
            (Some(_), Some(_)) => info.push("+CRSM: 106,130,\"\"".to_owned()),
            _ => return Err(cme_bad_value()),
        }
        Ok(Step::Done)
    }
}
