//! The commands the virtual modem answers, one file per family, dispatched by name.
//!
//! - [`basic`]: V.250 basic commands (`E`, `V`, `Q`, `Z`, `I`, `&F`, S-parameters).
//! - [`identity`]: TS 27.007 identity and SIM (`+CGMI`…`+CGSN`, `+CIMI`, `+CPIN`, `+CNUM`,
//!   the ICCID commands of each vendor, `+CRSM`).
//! - [`network`]: `+CSQ`, `+CREG`/`+CGREG`/`+CEREG`, `+COPS`, `+CFUN`.
//! - [`settings`]: TS 27.005 settings (`+CMEE`, `+CMGF`, `+CSCS`, `+CSCA`, `+CSMS`, `+CNMI`,
//!   `+CSMP`, `+CSDH`, `+CNMA`).
//! - [`storage`]: `+CPMS`, `+CMGL`, `+CMGR`, `+CMGD`, `+CMGW`.
//! - [`send`]: `+CMGS`, `+CMSS` and what follows the `> ` prompt.
//! - [`ussd`]: `+CUSD`, and calls: `+CLIP`, `+CHUP`, RING.
//!
//! Error conventions (what real modems do, see `docs/real-modems.md`): an unknown command
//! gets the personality's answer (`ERROR`, or `COMMAND NOT SUPPORT` on old Huawei firmware);
//! a known TS 27.007 command with bad values `+CME ERROR: 50`; a TS 27.005 command
//! `+CMS ERROR: 304`/`305` (PDU/text mode) or the specific code (321 bad index, 302 refused
//! memory, 303 unsupported `+CNMI` setting). With `AT+CMEE=0` all of them read `ERROR`.

mod basic;
mod identity;
mod network;
mod send;
mod settings;
mod storage;
pub(crate) mod ussd;

use std::time::Instant;

use crate::codes::{Final, cme, cms};
use crate::command_line::{Command, Operation, Param};
use crate::virtual_modem::{Step, VirtualModem};

impl VirtualModem {
    /// Runs one command of a line, appending its information lines to `info`.
    pub(crate) fn execute(
        &mut self,
        now: Instant,
        command: &Command,
        info: &mut Vec<String>,
    ) -> Step {
        match command {
            Command::Basic { letter, value } => self.basic(*letter, *value, info),
            Command::Ampersand { letter, value } => self.ampersand(*letter, *value),
            Command::Register { number, value } => self.register(*number, *value, info),
            Command::Dial(_) => Step::Fail(Final::Vendor("NO CARRIER")),
            Command::Extended { name, operation } => self.extended(now, name, operation, info),
        }
    }

    fn extended(
        &mut self,
        now: Instant,
        name: &str,
        op: &Operation,
        info: &mut Vec<String>,
    ) -> Step {
        let result = match name {
            "+CGMI" | "+GMI" => self.cgmi(op, info),
            "+CGMM" | "+GMM" => self.cgmm(op, info),
            "+CGMR" | "+GMR" => self.cgmr(op, info),
            "+CGSN" | "+GSN" => self.cgsn(op, info),
            "+CIMI" => self.cimi(op, info),
            "+CPIN" => self.cpin(op, info),
            "+CNUM" => self.cnum(op, info),
            "+CCID" | "^ICCID" | "+QCCID" | "+CICCID" => self.iccid(name, op, info),
            "+CRSM" => self.crsm(op, info),
            "+CSQ" => self.csq(now, op, info),
            "+CREG" | "+CGREG" | "+CEREG" => self.creg(now, name, op, info),
            "+COPS" => self.cops(now, op, info),
            "+CFUN" => self.cfun(op, info),
            "+CMEE" => self.cmee(op, info),
            "+CMGF" => self.cmgf(op, info),
            "+CSCS" => self.cscs(op, info),
            "+CSCA" => self.csca(op, info),
            "+CSMS" => self.csms(op, info),
            "+CNMI" => self.cnmi_command(op, info),
            "+CSMP" => self.csmp(op, info),
            "+CSDH" => self.csdh(op, info),
            "+CNMA" => self.cnma(op),
            "+CPMS" => self.cpms(op, info),
            "+CMGL" => self.cmgl(op, info),
            "+CMGR" => self.cmgr(op, info),
            "+CMGD" => self.cmgd(op, info),
            "+CMGW" => self.cmgw(op),
            "+CMGS" => self.cmgs(op),
            "+CMSS" => self.cmss(now, op, info),
            "+CLIP" => self.clip(op, info),
            "+CHUP" => self.chup(op),
            "+CUSD" => self.cusd(op, info),
            _ if self.personality.vendor_noops.contains(&name) => Ok(Step::Done),
            _ => Err(self.personality.unknown_command),
        };
        result.unwrap_or_else(Step::Fail)
    }

    /// The answer to a command this personality does not have.
    pub(crate) fn unknown(&self) -> Final {
        self.personality.unknown_command
    }

    /// SMS commands need the SMS stack booted and the SIM unlocked.
    pub(crate) fn sms_gate(&self, needs_sim: bool) -> Result<(), Final> {
        if !self.sms_ready() {
            return Err(self.personality.not_ready);
        }
        if needs_sim && !self.sim_ready() {
            return Err(Final::Cms(if self.pin_code() == "SIM PUK" {
                cms::SIM_PUK_REQUIRED
            } else {
                cms::SIM_PIN_REQUIRED
            }));
        }
        Ok(())
    }

    /// Commands that read the SIM need it unlocked (TS 27.007 errors).
    pub(crate) fn sim_gate(&self) -> Result<(), Final> {
        if self.sim_ready() {
            Ok(())
        } else if self.pin_code() == "SIM PUK" {
            Err(Final::Cme(cme::SIM_PUK_REQUIRED))
        } else {
            Err(Final::Cme(cme::SIM_PIN_REQUIRED))
        }
    }

    /// A bad value in a TS 27.005 command: 304 in PDU mode, 305 in text mode.
    pub(crate) fn sms_bad_value(&self) -> Final {
        Final::Cms(if self.settings.text_mode {
            cms::INVALID_TEXT_PARAMETER
        } else {
            cms::INVALID_PDU_PARAMETER
        })
    }
}

/// A bad value in a TS 27.007 command.
pub(crate) fn cme_bad_value() -> Final {
    Final::Cme(cme::INCORRECT_PARAMETERS)
}

/// The `i`th value as a number; `Ok(None)` when omitted or missing.
pub(crate) fn number_at(params: &[Param], i: usize) -> Result<Option<u32>, ()> {
    match params.get(i) {
        None | Some(Param::Omitted) => Ok(None),
        Some(p) => p.number().map(Some).ok_or(()),
    }
}

/// The `i`th value as a string; `None` when omitted or missing.
pub(crate) fn text_at(params: &[Param], i: usize) -> Option<&str> {
    params.get(i).and_then(Param::text)
}
