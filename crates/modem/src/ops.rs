//! Typed operations: the AT commands the gateway, `status` and the console need, as plain
//! verbs on [`ModemHandle`] (`list_messages`, `read`, `delete`, `send_pdu`, `storage`, …).
//!
//! Why generic underneath: init and `probe` run the same queries directly on the link, before
//! any handle exists. Each query is written once over the private [`Exec`] trait, which the
//! handle (through the task) and the link (directly) both implement.
//!
//! Keeps promise 3 in [`ModemHandle::send_pdu`]: the error says whether the PDU may have left
//! ([`SendError`]). Keeps promise 1 by offering only deletes the caller asks for by index, or
//! the explicit bulk forms for the capacity drain.
//!
//! Spec: TS 27.005 §3.5.4 (`+CMGD`), §4.1 (`+CMGL`), §4.2 (`+CMGR`), §4.3 (`+CMGS`), §3.2.2
//! (`+CPMS`), §3.3.1 (`+CSCA`); TS 27.007 §5 (identity), §7.2 (`+CREG`), §7.3 (`+COPS`),
//! §8.3 (`+CPIN`), §8.5 (`+CSQ`).

use std::future::Future;

use conductor_at::cmd::cmgd::{self, DeleteFlag};
use conductor_at::cmd::cmgl::{self, ListEntry};
use conductor_at::cmd::cmgr::{self, StoredMessage};
use conductor_at::cmd::cpin::{self, PinStatus};
use conductor_at::cmd::cpms::{self, Storage};
use conductor_at::cmd::creg::{self, Domain};
use conductor_at::cmd::identity::{self, IccidCommand};
use conductor_at::cmd::{MessageStatus, cmgs, cops, csca, csq};
use conductor_at::{
    CmeCode, Command, ErrorClass, FinalResult, InfoLine, ParseError, Response, params,
};

use crate::errors::{ModemError, SendError, redact};
use crate::handle::ModemHandle;
use crate::link::{ExecError, Reply};
use crate::state::{Identity, RegistrationReport, Signal, SimState};

/// Runs one command and returns its answer. The task's handle and the link implement it.
pub(crate) trait Exec: Send {
    /// Runs `command` to its end.
    fn exec(&mut self, command: Command) -> impl Future<Output = Result<Reply, ExecError>> + Send;
}

/// Runs a command and insists on `OK`.
pub(crate) async fn run<E: Exec>(exec: &mut E, command: Command) -> Result<Response, ModemError> {
    let line = redact(command.line());
    let reply = exec.exec(command).await.map_err(|e| e.error)?;
    if reply.response.is_ok() {
        Ok(reply.response)
    } else {
        Err(ModemError::Command {
            command: line,
            result: reply.response.result,
        })
    }
}

/// Names the command in a parse error.
fn parsed<T>(command: &str, result: Result<T, ParseError>) -> Result<T, ModemError> {
    result.map_err(|source| ModemError::Parse {
        command: command.to_owned(),
        source,
    })
}

/// Whether an error ends a sequence of optional queries: the link or the task is gone, so
/// asking the next question is pointless.
pub(crate) fn is_fatal(error: &ModemError) -> bool {
    error.is_disconnect()
        || matches!(
            error,
            ModemError::Stopped | ModemError::NotReady { .. } | ModemError::Rebooted { .. }
        )
}

/// `Ok(None)` for an answer the modem may legitimately not have, `Err` only for fatal errors.
pub(crate) fn optional<T>(result: Result<T, ModemError>) -> Result<Option<T>, ModemError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if is_fatal(&error) => Err(error),
        Err(_) => Ok(None),
    }
}

pub(crate) async fn list<E: Exec>(exec: &mut E) -> Result<Vec<ListEntry>, ModemError> {
    let command = cmgl::list(MessageStatus::All);
    let line = command.line().to_owned();
    let response = run(exec, command).await?;
    parsed(&line, cmgl::parse(&response.lines))
}

/// A listing made of one `AT+CMGR` per slot, `base` to `base + total - 1`: what a full store
/// gets on models whose `AT+CMGL` hangs then (the quirks table). Slower, but each command is
/// short and answers.
pub(crate) async fn list_by_reading<E: Exec>(
    exec: &mut E,
    base: u32,
    total: u32,
) -> Result<Vec<ListEntry>, ModemError> {
    let mut entries = Vec::new();
    for index in base..base.saturating_add(total) {
        if let Some(message) = read(exec, index).await? {
            entries.push(ListEntry {
                index,
                stat: message.stat,
                alpha: message.alpha,
                length: message.length,
                pdu: message.pdu,
            });
        }
    }
    Ok(entries)
}

pub(crate) async fn read<E: Exec>(
    exec: &mut E,
    index: u32,
) -> Result<Option<StoredMessage>, ModemError> {
    let command = cmgr::read(index);
    let line = command.line().to_owned();
    match run(exec, command).await {
        Ok(response) => parsed(&line, cmgr::parse(&response.lines)),
        // TS 27.005 §3.2.5: 321 "invalid memory index" is what some modems say for an empty
        // slot; others answer a bare OK. Both mean "nothing there".
        Err(ModemError::Command {
            result: FinalResult::CmsError(code),
            ..
        }) if code.0 == 321 => Ok(None),
        Err(error) => Err(error),
    }
}

pub(crate) async fn signal<E: Exec>(exec: &mut E) -> Result<Signal, ModemError> {
    let command = csq::query();
    let line = command.line().to_owned();
    let response = run(exec, command).await?;
    let quality = parsed(&line, csq::parse(&response.lines))?;
    Ok(Signal {
        dbm: quality.dbm(),
        rssi: quality.rssi,
        ber: quality.ber_class(),
    })
}

pub(crate) async fn registration<E: Exec>(exec: &mut E) -> Result<RegistrationReport, ModemError> {
    let mut domains = Vec::new();
    let mut first_error = None;
    for domain in [Domain::CircuitSwitched, Domain::Gprs, Domain::Eps] {
        let command = creg::query(domain);
        let line = command.line().to_owned();
        let result = match run(exec, command).await {
            Ok(response) => parsed(&line, creg::parse_query(domain, &response.lines)),
            Err(error) => Err(error),
        };
        match result {
            Ok(registration) => domains.push(registration),
            Err(error) if is_fatal(&error) => return Err(error),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match (domains.is_empty(), first_error) {
        (true, Some(error)) => Err(error),
        _ => Ok(RegistrationReport::from_domains(domains)),
    }
}

pub(crate) async fn operator<E: Exec>(exec: &mut E) -> Result<Option<String>, ModemError> {
    let command = cops::query();
    let line = command.line().to_owned();
    let response = run(exec, command).await?;
    Ok(parsed(&line, cops::parse_query(&response.lines))?.name)
}

pub(crate) async fn smsc<E: Exec>(exec: &mut E) -> Result<Option<String>, ModemError> {
    let command = csca::query();
    let line = command.line().to_owned();
    let response = run(exec, command).await?;
    let centre = parsed(&line, csca::parse_query(&response.lines))?;
    Ok(Some(centre.address).filter(|a| !a.is_empty()))
}

pub(crate) async fn storage<E: Exec>(exec: &mut E) -> Result<Storage, ModemError> {
    let command = cpms::query();
    let line = command.line().to_owned();
    let response = run(exec, command).await?;
    parsed(&line, cpms::parse_query(&response.lines))
}

/// `AT+CPIN?`, with the `+CME ERROR`s that some modems give instead of a code mapped to the
/// state they mean (10 "SIM not inserted", 11 "SIM PIN required", 12 "SIM PUK required",
/// 13 "SIM failure"). Others, 14 "SIM busy" above all, stay errors: they are transient.
pub(crate) async fn sim_state<E: Exec>(exec: &mut E) -> Result<SimState, ModemError> {
    Ok(match pin_status(exec).await? {
        Ok(status) => SimState::from_pin_status(&status),
        Err(state) => state,
    })
}

/// The raw `+CPIN` status, or the state a `+CME ERROR` stands for.
pub(crate) async fn pin_status<E: Exec>(
    exec: &mut E,
) -> Result<Result<PinStatus, SimState>, ModemError> {
    let command = cpin::query();
    let line = command.line().to_owned();
    match run(exec, command).await {
        Ok(response) => Ok(Ok(parsed(&line, cpin::parse_query(&response.lines))?)),
        Err(ModemError::Command {
            result: FinalResult::CmeError(CmeCode::SIM_NOT_INSERTED | CmeCode(13)),
            ..
        }) => Ok(Err(SimState::Absent)),
        Err(ModemError::Command {
            result: FinalResult::CmeError(CmeCode::SIM_PIN_REQUIRED),
            ..
        }) => Ok(Err(SimState::PinRequired)),
        Err(ModemError::Command {
            result: FinalResult::CmeError(CmeCode::SIM_PUK_REQUIRED),
            ..
        }) => Ok(Err(SimState::PukRequired)),
        Err(error) => Err(error),
    }
}

/// Manufacturer, model, revision and IMEI: what the modem knows without a SIM.
pub(crate) async fn device_identity<E: Exec>(exec: &mut E) -> Result<Identity, ModemError> {
    let manufacturer = identity_text(exec, identity::manufacturer()).await?;
    let model = identity_text(exec, identity::model()).await?;
    let revision = identity_text(exec, identity::revision()).await?;
    let command = identity::serial_number();
    let line = command.line().to_owned();
    let imei = optional(match run(exec, command).await {
        Ok(response) => parsed(&line, identity::parse_imei(&response.lines)),
        Err(error) => Err(error),
    })?;
    Ok(Identity {
        manufacturer,
        model,
        revision,
        imei,
        imsi: None,
        iccid: None,
    })
}

async fn identity_text<E: Exec>(
    exec: &mut E,
    command: Command,
) -> Result<Option<String>, ModemError> {
    let line = command.line().to_owned();
    optional(match run(exec, command).await {
        Ok(response) => parsed(&line, identity::parse_text(&response.lines)),
        Err(error) => Err(error),
    })
}

/// IMSI and ICCID: what needs the SIM.
pub(crate) async fn sim_identity<E: Exec>(
    exec: &mut E,
) -> Result<(Option<String>, Option<String>), ModemError> {
    let command = identity::imsi();
    let line = command.line().to_owned();
    let imsi = optional(match run(exec, command).await {
        Ok(response) => parsed(&line, identity::parse_imsi(&response.lines)),
        Err(error) => Err(error),
    })?;
    let iccid = iccid(exec).await?;
    Ok((imsi, iccid))
}

/// The ICCID, from the first vendor command that gives one: `AT+CCID` (SIMCom 2G, u-blox),
/// `AT+ICCID` (Sierra), `AT^ICCID?` (Huawei), `AT+QCCID` (Quectel), `AT+CICCID` (SIMCom
/// LTE), then EF_ICCID read raw with `AT+CRSM=176,12258,0,0,10` (old Huawei firmware).
pub(crate) async fn iccid<E: Exec>(exec: &mut E) -> Result<Option<String>, ModemError> {
    let mut commands: Vec<Command> = [
        IccidCommand::Ccid,
        IccidCommand::Iccid,
        IccidCommand::HuaweiIccid,
        IccidCommand::Qccid,
    ]
    .into_iter()
    .map(identity::iccid)
    .collect();
    commands.extend(Command::new("AT+CICCID"));
    for command in commands {
        let line = command.line().to_owned();
        let found = optional(match run(exec, command).await {
            Ok(response) => parsed(&line, identity::parse_iccid(&response.lines)),
            Err(error) => Err(error),
        })?;
        if found.is_some() {
            return Ok(found);
        }
    }
    let Ok(command) = Command::new("AT+CRSM=176,12258,0,0,10") else {
        return Ok(None);
    };
    let response = match optional(run(exec, command).await)? {
        Some(response) => response,
        None => return Ok(None),
    };
    // `+CRSM: <sw1>,<sw2>,"<response>"`: 144,0 is success; the data is EF_ICCID's raw,
    // nibble-swapped BCD, which the ICCID parser un-swaps.
    let data = response.lines.iter().find_map(|l| {
        let rest = params::after_prefix(&l.text, "+CRSM")?;
        let items = params::split(rest);
        (items.first() == Some(&"144"))
            .then(|| items.get(2).map(|d| params::unquote(d).to_owned()))?
    });
    Ok(data.and_then(|d| identity::parse_iccid(&[InfoLine::new(d)]).ok()))
}

/// Every identity field, tolerating modems that lack some.
pub(crate) async fn full_identity<E: Exec>(exec: &mut E) -> Result<Identity, ModemError> {
    let mut identity = device_identity(exec).await?;
    let (imsi, iccid) = sim_identity(exec).await?;
    identity.imsi = imsi;
    identity.iccid = iccid;
    Ok(identity)
}

/// Maps a send's answer or failure to the caller's verdict (DESIGN "Decisions / Sending").
pub(crate) fn send_verdict(outcome: Result<Reply, ExecError>) -> Result<u8, SendError> {
    match outcome {
        Ok(Reply {
            response,
            pdu_sent: true,
        }) if response.is_ok() => cmgs::parse(&response.lines).map_err(|e| SendError::Ambiguous {
            reason: format!("the modem answered OK without a readable +CMGS reference ({e})"),
        }),
        Ok(Reply { response, pdu_sent }) if response.is_ok() => {
            // OK without a prompt: the modem did not run a send at all.
            debug_assert!(!pdu_sent);
            Err(SendError::NotSent(ModemError::Command {
                command: "AT+CMGS".to_owned(),
                result: response.result,
            }))
        }
        Ok(Reply {
            response,
            pdu_sent: false,
        }) => {
            let result = response.result;
            Err(SendError::Rejected {
                code: result.cms_code(),
                retryable: result.class() != Some(ErrorClass::Permanent),
                result,
            })
        }
        Ok(Reply {
            response,
            pdu_sent: true,
        }) => Err(SendError::Failed {
            code: response.result.cms_code(),
            result: response.result,
        }),
        Err(ExecError {
            error,
            pdu_sent: true,
        }) => Err(SendError::Ambiguous {
            reason: error.to_string(),
        }),
        Err(ExecError {
            error,
            pdu_sent: false,
        }) => Err(SendError::NotSent(error)),
    }
}

impl ModemHandle {
    /// Lists every message in the read memory (`AT+CMGL=4`), in the modem's order. Indexes
    /// are the modem's own (0-based on most modems, 1-based on SIM800): never assume a base.
    /// Listing marks unread messages read on most modems.
    pub async fn list_messages(&self) -> Result<Vec<ListEntry>, ModemError> {
        if let Some((base, total)) = self.full_store_that_may_hang() {
            return list_by_reading(&mut self.clone(), base, total).await;
        }
        list(&mut self.clone()).await
    }

    /// The read memory's index base and size when it is full on a model whose `AT+CMGL` may
    /// hang then (the quirks table): such a store is read slot by slot instead.
    fn full_store_that_may_hang(&self) -> Option<(u32, u32)> {
        let state = self.current_state();
        let quirks = state.quirks.as_ref().filter(|q| q.cmgl_may_hang)?;
        let base = quirks.index_base?;
        let read = state
            .settings
            .memories
            .as_ref()
            .map(|[read, ..]| read.as_str())?;
        let memory = state.storage.iter().find(|m| m.memory == read)?;
        (memory.total > 0 && memory.used >= memory.total).then_some((base, memory.total))
    }

    /// Reads one slot (`AT+CMGR`); `None` when it is empty.
    pub async fn read(&self, index: u32) -> Result<Option<StoredMessage>, ModemError> {
        read(&mut self.clone(), index).await
    }

    /// Deletes one slot (`AT+CMGD=<index>`). DESIGN "Receiving": call it only after reading
    /// the slot again and finding the fingerprint of the committed row.
    pub async fn delete(&self, index: u32) -> Result<(), ModemError> {
        run(&mut self.clone(), cmgd::delete(index)).await.map(drop)
    }

    /// Deletes the given slots one by one, stopping at the first failure (whose error names
    /// the slot in its command line).
    pub async fn delete_many(&self, indices: &[u32]) -> Result<(), ModemError> {
        let mut exec = self.clone();
        for &index in indices {
            run(&mut exec, cmgd::delete(index)).await?;
        }
        Ok(())
    }

    /// Deletes every message in the read memory: `AT+CMGD=<i>,4` where the modem has the
    /// `<delflag>` form, else slot by slot from a listing. For the capacity drain of messages
    /// already safe in the database (promise 1 is the caller's to keep).
    pub async fn delete_all(&self) -> Result<(), ModemError> {
        let mut exec = self.clone();
        let entries = list(&mut exec).await?;
        let Some(first) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        // The index is ignored with a flag, but some firmwares insist it is a valid slot.
        match run(&mut exec, cmgd::delete_with_flag(first, DeleteFlag::All)).await {
            Ok(_) => Ok(()),
            Err(error) if is_fatal(&error) => Err(error),
            Err(_) => {
                for entry in entries {
                    run(&mut exec, cmgd::delete(entry.index)).await?;
                }
                Ok(())
            }
        }
    }

    /// Sends one PDU (`AT+CMGS`, hex, SMSC address first: `00` for "the SIM's SMSC") and
    /// returns the TP-Message-Reference that status reports will carry.
    ///
    /// The error says which side of the prompt it failed on: [`SendError::Rejected`] and
    /// [`SendError::NotSent`] mean nothing left; [`SendError::Failed`] means the modem took the
    /// PDU and refused it; [`SendError::Ambiguous`] means it may have left (promise 3: the row
    /// becomes `unknown`, never resent automatically). The driver itself never resends.
    pub async fn send_pdu(&self, pdu_hex: &str) -> Result<u8, SendError> {
        let command =
            cmgs::send(pdu_hex).map_err(|e| SendError::NotSent(ModemError::InvalidCommand(e)))?;
        // `00` in front: "use the SIM's service centre". Init found none and the config set
        // none: say so instead of letting the modem answer an opaque +CMS ERROR 330.
        if pdu_hex.starts_with("00") && self.current_state().settings.smsc_missing {
            return Err(SendError::NotSent(self.no_smsc()));
        }
        send_verdict(self.request(command).await)
    }

    /// The error for a send with no service centre to go to (it names the fix).
    fn no_smsc(&self) -> ModemError {
        ModemError::Unsupported {
            what: format!(
                "no SMS service centre number: set `smsc` for modem {} in the config (your \
                 operator publishes it)",
                self.name()
            ),
        }
    }

    /// The three memories and their fill levels (`AT+CPMS?`).
    pub async fn storage(&self) -> Result<Storage, ModemError> {
        storage(&mut self.clone()).await
    }

    /// Signal strength (`AT+CSQ`), with dBm.
    pub async fn signal(&self) -> Result<Signal, ModemError> {
        signal(&mut self.clone()).await
    }

    /// Registration in the CS, GPRS and EPS domains (`AT+CREG?`, `AT+CGREG?`, `AT+CEREG?`),
    /// summarised as the best of them. Domains the modem does not know are left out.
    pub async fn registration(&self) -> Result<RegistrationReport, ModemError> {
        registration(&mut self.clone()).await
    }

    /// The operator's name (`AT+COPS?`); `None` when not registered.
    pub async fn operator(&self) -> Result<Option<String>, ModemError> {
        operator(&mut self.clone()).await
    }

    /// The SIM's state (`AT+CPIN?`).
    pub async fn sim_state(&self) -> Result<SimState, ModemError> {
        sim_state(&mut self.clone()).await
    }

    /// Manufacturer, model, revision, IMEI, IMSI and ICCID; fields the modem cannot give are
    /// `None`.
    pub async fn identity(&self) -> Result<Identity, ModemError> {
        full_identity(&mut self.clone()).await
    }

    /// The service centre address on the SIM (`AT+CSCA?`); `None` when it has none.
    pub async fn smsc(&self) -> Result<Option<String>, ModemError> {
        smsc(&mut self.clone()).await
    }

    /// Runs a raw command line for the operator console and returns the modem's answer,
    /// whatever its final result (an `ERROR` is an answer here, not a Rust error). Refuses
    /// `AT+CMGS`/`AT+CMGW`, whose data phase the console cannot drive: use `send_pdu`.
    pub async fn command(&self, line: &str) -> Result<Response, ModemError> {
        let command = Command::new(line.trim())?;
        let upper = command.line().to_ascii_uppercase();
        if upper.starts_with("AT+CMGS") || upper.starts_with("AT+CMGW") {
            return Err(ModemError::Unsupported {
                what: "AT+CMGS and AT+CMGW need a data phase the console cannot drive; use \
                       `send` instead"
                    .to_owned(),
            });
        }
        self.request(command)
            .await
            .map(|reply| reply.response)
            .map_err(|e| e.error)
    }
}

#[cfg(test)]
mod tests {
    use conductor_at::CmsCode;

    use super::*;

    fn reply(lines: &[&str], result: FinalResult, pdu_sent: bool) -> Result<Reply, ExecError> {
        Ok(Reply {
            response: Response {
                lines: lines.iter().map(|l| InfoLine::new(*l)).collect(),
                result,
            },
            pdu_sent,
        })
    }

    #[test]
    fn a_send_verdict_follows_the_side_of_the_prompt() {
        assert_eq!(
            send_verdict(reply(&["+CMGS: 17"], FinalResult::Ok, true)).ok(),
            Some(17)
        );
        let rejected = send_verdict(reply(&[], FinalResult::CmsError(CmsCode(42)), false));
        assert!(matches!(
            rejected,
            Err(SendError::Rejected {
                retryable: true,
                ..
            })
        ));
        let permanent = send_verdict(reply(&[], FinalResult::CmsError(CmsCode(330)), false));
        assert!(matches!(
            permanent,
            Err(SendError::Rejected {
                retryable: false,
                ..
            })
        ));
        let failed = send_verdict(reply(&[], FinalResult::CmsError(CmsCode(304)), true));
        assert!(matches!(failed, Err(SendError::Failed { .. })));
        let no_reference = send_verdict(reply(&[], FinalResult::Ok, true));
        assert!(no_reference.is_err_and(|e| e.is_ambiguous()));
        let lost = send_verdict(Err(ExecError {
            error: ModemError::Disconnected {
                reason: "eof".into(),
            },
            pdu_sent: true,
        }));
        assert!(lost.is_err_and(|e| e.is_ambiguous()));
        let early = send_verdict(Err(ExecError::before_send(ModemError::Stopped)));
        assert!(early.is_err_and(|e| !e.is_ambiguous() && !e.is_retryable()));
    }
}
