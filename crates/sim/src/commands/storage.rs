//! Message storage (TS 27.005 §3.2.2 `+CPMS`, §3.4.2 `+CMGL`, §3.4.3 `+CMGR`, §3.5.4
//! `+CMGD`, §3.5.3 `+CMGW`).
//!
//! `+CMGL` and `+CMGR` read `<mem1>` and turn REC UNREAD into REC READ, as real modems do
//! (Huawei's `^CMSR=1` exception is not simulated). `+CMGD` flags: 0 this index, 1 every read
//! message, 2 read and sent, 3 read, sent and unsent, 4 everything (§3.5.4). Freeing a slot
//! tells the network that memory is available again, so held messages come in.

use crate::codes::{Final, cms};
use crate::command_line::{Operation, Param};
use crate::commands::{number_at, text_at};
use crate::format;
use crate::personality::EmptyRead;
use crate::sim_card::MessageStatus;
use crate::virtual_modem::{ModemEvent, Prompt, Step, VirtualModem};

type Answer = Result<Step, Final>;

/// `<stat>` of `+CMGL`: one status or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    One(MessageStatus),
    All,
}

impl VirtualModem {
    pub(super) fn cpms(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sms_gate(true)?;
        match op {
            Operation::Read => {
                let fields: Vec<String> = self
                    .storage
                    .cpms
                    .iter()
                    .map(|m| format!("\"{m}\",{},{}", self.sim.used(m), self.sim.capacity(m)))
                    .collect();
                info.push(format!("+CPMS: {}", fields.join(",")));
            }
            Operation::Test => {
                let lists: Vec<String> = self
                    .personality
                    .cpms_lists
                    .iter()
                    .map(|list| {
                        let names: Vec<String> = list.iter().map(|n| format!("\"{n}\"")).collect();
                        format!("({})", names.join(","))
                    })
                    .collect();
                info.push(format!("+CPMS: {}", lists.join(",")));
            }
            Operation::Set(params) => {
                if params.is_empty() || params.len() > 3 || params[0].is_omitted() {
                    return Err(self.sms_bad_value());
                }
                let refused = self
                    .personality
                    .setting_rejected
                    .unwrap_or(Final::Cms(cms::NOT_ALLOWED));
                let mut chosen = self.storage.cpms;
                for (i, param) in params.iter().enumerate() {
                    let Some(name) = param.text() else { continue };
                    let accepted = self.personality.cpms_accepted[i];
                    let canonical = accepted
                        .iter()
                        .find(|n| n.eq_ignore_ascii_case(name))
                        .ok_or(refused)?;
                    chosen[i] = canonical;
                }
                let receive_changed = chosen[2] != self.storage.cpms[2];
                self.storage.cpms = chosen;
                if receive_changed {
                    self.push_event(ModemEvent::MemoryAvailable);
                }
                let fields: Vec<String> = chosen
                    .iter()
                    .map(|m| format!("{},{}", self.sim.used(m), self.sim.capacity(m)))
                    .collect();
                info.push(format!("+CPMS: {}", fields.join(",")));
            }
            Operation::Execute => return Err(self.sms_bad_value()),
        }
        Ok(Step::Done)
    }

    fn filter(&self, param: Option<&Param>) -> Result<Filter, Final> {
        let param = param.filter(|p| !p.is_omitted());
        if self.settings.text_mode {
            let Some(param) = param else {
                return Ok(Filter::One(MessageStatus::ReceivedUnread));
            };
            let text = match param {
                Param::Quoted(t) => format::from_te_string(self, t),
                _ => None,
            }
            .ok_or_else(|| self.sms_bad_value())?;
            if text.eq_ignore_ascii_case("ALL") {
                return Ok(Filter::All);
            }
            MessageStatus::from_text(&text)
                .map(Filter::One)
                .ok_or_else(|| self.sms_bad_value())
        } else {
            match param.map(Param::number) {
                None => Ok(Filter::One(MessageStatus::ReceivedUnread)),
                Some(Some(4)) => Ok(Filter::All),
                Some(Some(n)) => MessageStatus::from_code(n)
                    .map(Filter::One)
                    .ok_or_else(|| self.sms_bad_value()),
                Some(None) => Err(self.sms_bad_value()),
            }
        }
    }

    pub(super) fn cmgl(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sms_gate(true)?;
        let filter = match op {
            Operation::Test => {
                info.push(if self.settings.text_mode {
                    "+CMGL: (\"REC UNREAD\",\"REC READ\",\"STO UNSENT\",\"STO SENT\",\"ALL\")"
                        .to_owned()
                } else {
                    "+CMGL: (0-4)".to_owned()
                });
                return Ok(Step::Done);
            }
            Operation::Execute => self.filter(None)?,
            Operation::Set(params) => {
                if params.len() > 1 {
                    return Err(self.sms_bad_value());
                }
                self.filter(params.first())?
            }
            Operation::Read => return Err(Final::Error),
        };
        let mem1 = self.storage.cpms[0];
        let mut listed = Vec::new();
        for (index, message) in self.sim.list(mem1) {
            if filter == Filter::All || filter == Filter::One(message.status) {
                info.extend(format::cmgl(self, index, message));
                listed.push(index);
            }
        }
        for index in listed {
            self.sim.mark_read(mem1, index);
        }
        Ok(Step::Done)
    }

    pub(super) fn cmgr(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sms_gate(true)?;
        let index = match op {
            Operation::Test => return Ok(Step::Done),
            Operation::Set(params) if params.len() == 1 => number_at(params, 0)
                .ok()
                .flatten()
                .ok_or_else(|| self.sms_bad_value())?,
            _ => return Err(self.sms_bad_value()),
        };
        let mem1 = self.storage.cpms[0];
        match self.sim.get(mem1, index) {
            Err(_) => return Err(Final::Cms(cms::INVALID_INDEX)),
            Ok(None) => match self.personality.empty_read {
                EmptyRead::BareOk => {}
                EmptyRead::InvalidIndex => return Err(Final::Cms(cms::INVALID_INDEX)),
            },
            Ok(Some(message)) => {
                info.extend(format::cmgr(self, message));
                self.sim.mark_read(mem1, index);
            }
        }
        Ok(Step::Done)
    }

    pub(super) fn cmgd(&mut self, op: &Operation, info: &mut Vec<String>) -> Answer {
        self.sms_gate(true)?;
        let mem1 = self.storage.cpms[0];
        let params = match op {
            Operation::Test => {
                let used: Vec<String> = self
                    .sim
                    .list(mem1)
                    .iter()
                    .map(|(i, _)| i.to_string())
                    .collect();
                info.push(format!("+CMGD: ({}),(0-4)", used.join(",")));
                return Ok(Step::Done);
            }
            Operation::Set(params) if params.len() <= 2 => params,
            _ => return Err(self.sms_bad_value()),
        };
        let index = number_at(params, 0).map_err(|_| self.sms_bad_value())?;
        let flag = number_at(params, 1).map_err(|_| self.sms_bad_value())?;
        let deleted = match (flag.unwrap_or(0), index) {
            (0, Some(index)) => match self.sim.delete(mem1, index) {
                Ok(deleted) => usize::from(deleted),
                Err(_) => return Err(Final::Cms(cms::INVALID_INDEX)),
            },
            (0, None) => return Err(self.sms_bad_value()),
            (flag @ 1..=4, _) => self.sim.delete_where(mem1, |m| {
                use MessageStatus::*;
                match flag {
                    1 => m.status == ReceivedRead,
                    2 => matches!(m.status, ReceivedRead | StoredSent),
                    3 => m.status != ReceivedUnread,
                    _ => true,
                }
            }),
            _ => return Err(self.sms_bad_value()),
        };
        if deleted > 0 {
            self.push_event(ModemEvent::MemoryAvailable);
        }
        Ok(Step::Done)
    }

    pub(super) fn cmgw(&mut self, op: &Operation) -> Answer {
        self.sms_gate(true)?;
        if self.settings.text_mode {
            let (destination, status) = match op {
                Operation::Execute => (String::new(), MessageStatus::StoredUnsent),
                Operation::Set(params) => {
                    let destination = text_at(params, 0)
                        .and_then(|d| format::from_te_string(self, d))
                        .unwrap_or_default();
                    let status = match params.get(2) {
                        None | Some(Param::Omitted) => MessageStatus::StoredUnsent,
                        Some(p) => p
                            .text()
                            .and_then(MessageStatus::from_text)
                            .ok_or_else(|| self.sms_bad_value())?,
                    };
                    (destination, status)
                }
                Operation::Test => return Ok(Step::Done),
                Operation::Read => return Err(Final::Error),
            };
            return Ok(Step::Prompt(Prompt::WriteText {
                destination,
                status,
            }));
        }
        match op {
            Operation::Test => Ok(Step::Done),
            Operation::Set(params) if params.len() <= 2 => {
                let length = number_at(params, 0)
                    .ok()
                    .flatten()
                    .filter(|l| (1..=176).contains(l))
                    .ok_or_else(|| self.sms_bad_value())?;
                let status = match number_at(params, 1) {
                    Ok(None) => MessageStatus::StoredUnsent,
                    Ok(Some(code)) => {
                        MessageStatus::from_code(code).ok_or_else(|| self.sms_bad_value())?
                    }
                    Err(()) => return Err(self.sms_bad_value()),
                };
                Ok(Step::Prompt(Prompt::WritePdu {
                    length: length as usize,
                    status,
                }))
            }
            _ => Err(self.sms_bad_value()),
        }
    }
}
