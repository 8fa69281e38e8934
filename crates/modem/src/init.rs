//! Bringing a freshly opened modem into the state the gateway relies on, and the read-only
//! variant behind `conductor modem probe`.
//!
//! Why a cascade everywhere: modems disagree (docs/real-modems.md). Init reads what the modem
//! offers (`AT+CPMS=?`, `AT+CNMI=?`), tries the best setting first and falls back on any
//! error, because advertised support is not proof (Qualcomm firmwares list `<ds>`=1 and
//! refuse it). It runs after every (re)connect and every restart notice, since some modems
//! (Balong) forget `AT+CNMI` when they reboot.
//!
//! Order: sync (`AT`, with an ESC for a modem left at a `> ` prompt), `ATE0`, `AT+CMEE=1`,
//! device identity, SIM (PIN, busy wait), SIM identity, `AT+CMGF=0` (retried: SIM800 says
//! `ERROR` until `SMS Ready`), storage, indications, service centre, status.
//!
//! Keeps DESIGN "Receiving": `AT+CNMI` is `<mt>`=1 only, never 2/3; status reports `<ds>`=2,
//! else 1 with `AT+CSMS=0`, else 0. Never logs the PIN and never sends one the SIM refused.
//! `probe_read_only` changes nothing that survives a power cycle.
//!
//! Spec: V.250 §6.2.4 (`E`); TS 27.007 §9.1 (`+CMEE`), §8.3 (`+CPIN`); TS 27.005 §3.2.1
//! (`+CSMS`), §3.2.2 (`+CPMS`), §3.2.3 (`+CMGF`), §3.3.1 (`+CSCA`), §3.4.1 (`+CNMI`).

use std::time::Duration;

use conductor_at::cmd::cnmi::{self, CnmiSettings, CnmiSupport};
use conductor_at::cmd::cpin::{self, PinStatus};
use conductor_at::cmd::cpms::{self, SupportedMemories};
use conductor_at::cmd::csca;
use conductor_at::{CmeCode, CmsCode, Command, FinalResult, params};
use serde::Serialize;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::config::ModemConfig;
use crate::errors::ModemError;
use crate::link::Direct;
use crate::ops::{self, Exec, is_fatal, optional, run};
use crate::quirks::Quirks;
use crate::state::{
    Identity, MemoryReport, RegistrationReport, RegistrationSummary, Settings, Signal, SimState,
    StatusReportRouting,
};

/// ESC: cancels a data phase a previous process left open (TS 27.005 §3.5.1).
const ESC: u8 = 0x1B;

/// How long each sync `AT` waits: a live modem answers in milliseconds.
const SYNC_TIMEOUT: Duration = Duration::from_secs(2);

/// How many `AT`s before giving up (SIM800 autobauds on the first ones).
const SYNC_ATTEMPTS: u32 = 3;

/// Pause between polls of a busy SIM or a modem not yet ready for SMS.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What init found and set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InitReport {
    pub identity: Identity,
    pub sim: SimState,
    pub settings: Settings,
    pub storage: Vec<MemoryReport>,
    pub signal: Option<Signal>,
    pub registration: Option<RegistrationReport>,
    pub operator: Option<String>,
    /// What `AT+CNMI?` answered right after init set it, in the modem's own normalisation.
    /// The periodic refresh compares against it: a difference means the modem restarted
    /// without saying so and forgot its settings (see [`settings_lost`]).
    pub cnmi_check: Option<String>,
    /// The quirks chosen from the identity (and the config's corrections).
    pub quirks: Quirks,
}

/// `AT+CNMI?` as `mode,mt,bm,ds,bfr`, or `None` if the modem cannot say.
async fn reported_cnmi<E: Exec>(exec: &mut E) -> Result<Option<String>, ModemError> {
    let Some(response) = optional(run(exec, cnmi::query()).await)? else {
        return Ok(None);
    };
    Ok(cnmi::parse_query(&response.lines).ok().map(
        |CnmiSettings {
             mode,
             mt,
             bm,
             ds,
             bfr,
         }| format!("{mode},{mt},{bm},{ds},{bfr}"),
    ))
}

/// Whether the modem lost what init set: its `AT+CNMI?` differs from the answer recorded at
/// init. Modems that reboot without a banner (or whose banner went to another port) reset
/// `AT+CNMI` and would stop announcing messages; this is how the refresh notices.
pub(crate) async fn settings_lost<E: Exec>(exec: &mut E, check: &str) -> Result<bool, ModemError> {
    Ok(reported_cnmi(exec)
        .await?
        .is_some_and(|reported| reported != check))
}

/// Makes the modem answer `AT`. A timeout on the first try may mean the modem sits at a `> `
/// prompt left by a process that died mid-send: an ESC cancels that and is ignored otherwise.
async fn sync(d: &mut Direct<'_, '_>, config: &ModemConfig) -> Result<(), ModemError> {
    for attempt in 1..=SYNC_ATTEMPTS {
        let Ok(command) = Command::new("AT") else {
            break;
        };
        match d.exec(command.with_timeout(SYNC_TIMEOUT)).await {
            // Any final result, even ERROR, proves someone answers.
            Ok(_) => return Ok(()),
            Err(failure) => match failure.error {
                ModemError::Timeout { .. } | ModemError::NotResponding { .. } => {
                    debug!(attempt, "no answer to AT");
                    if d.link.dead.is_some() {
                        break;
                    }
                    if attempt == 1 {
                        d.link.write_raw(&[ESC]).await?;
                    }
                }
                other => return Err(other),
            },
        }
    }
    Err(ModemError::NoAnswer {
        device: config.device.clone(),
        baud: config.serial.baud_rate,
        garbled: d.link.unreadable > 0,
    })
}

/// Runs a command whose failure init can live with; only a fatal error (lost link) stops.
async fn soft(d: &mut Direct<'_, '_>, line: &str) -> Result<bool, ModemError> {
    let command = Command::new(line)?;
    match run(d, command).await {
        Ok(_) => Ok(true),
        Err(error) if is_fatal(&error) => Err(error),
        Err(error) => {
            debug!(%error, "tolerated");
            Ok(false)
        }
    }
}

/// Whether a final result means "not yet, try again shortly" (a SIM or SMS stack still
/// starting up).
fn is_busy(result: &FinalResult) -> bool {
    match result {
        FinalResult::CmeError(code) => matches!(*code, CmeCode::SIM_BUSY | CmeCode(515)),
        FinalResult::CmsError(code) => *code == CmsCode(314),
        FinalResult::CmeErrorText(text) | FinalResult::CmsErrorText(text) => {
            let text = text.to_ascii_lowercase();
            text.contains("busy") || text.contains("wait")
        }
        // A bare ERROR says nothing; before `SMS Ready` it is what SIM800 answers.
        FinalResult::Error => true,
        _ => false,
    }
}

/// Waits until the SIM is ready, entering the PIN once if it asks and one is configured.
async fn wait_for_sim(
    d: &mut Direct<'_, '_>,
    config: &ModemConfig,
    pin_rejected: &mut bool,
) -> Result<SimState, ModemError> {
    let deadline = Instant::now() + config.sim_ready_timeout;
    let mut pin_sent = false;
    loop {
        let waiting_for = match ops::pin_status(d).await {
            Ok(Ok(PinStatus::Ready)) => return Ok(SimState::Ready),
            Ok(Ok(PinStatus::SimPin)) | Ok(Err(SimState::PinRequired)) if pin_sent => {
                // Some modems take a moment to move on after accepting the PIN.
                SimState::PinRequired
            }
            Ok(Ok(PinStatus::SimPin)) | Ok(Err(SimState::PinRequired)) => {
                if *pin_rejected {
                    return Err(ModemError::PinRejected);
                }
                let Some(pin) = &config.pin else {
                    let advice = match &config.pin_env {
                        Some(var) => format!(
                            "the SIM asks for its PIN and the environment variable {var} \
                             (modems[].pin_env) is not set: set it for the daemon and restart, \
                             or remove the PIN lock in a phone"
                        ),
                        None => "set the SIM's PIN in the configuration (modems[].pin, or \
                                 modems[].pin_env naming an environment variable), or remove \
                                 the PIN lock in a phone"
                            .to_owned(),
                    };
                    return Err(ModemError::Sim {
                        state: SimState::PinRequired,
                        advice,
                    });
                };
                let command = cpin::enter(pin.expose()).map_err(|_| ModemError::Sim {
                    state: SimState::PinRequired,
                    advice: "the configured PIN is not 4 to 8 digits; it was not sent".to_owned(),
                })?;
                // The command line holds the PIN: never log it (errors carry it redacted).
                match run(d, command).await {
                    Ok(_) => {
                        info!("SIM PIN accepted");
                        pin_sent = true;
                        continue;
                    }
                    Err(ModemError::Command {
                        result: FinalResult::CmeError(CmeCode::SIM_BUSY),
                        ..
                    }) => SimState::PinRequired,
                    Err(error) if is_fatal(&error) => return Err(error),
                    Err(error) => {
                        // `+CME ERROR: 16` says "incorrect password"; a bare ERROR (CMEE off)
                        // may mean the same. Either way, never try this PIN again: three wrong
                        // tries block the SIM.
                        *pin_rejected = true;
                        let source = match &config.pin_env {
                            Some(var) => format!("the environment variable {var}"),
                            None => "modems[].pin".to_owned(),
                        };
                        error!(
                            %error,
                            "the SIM rejected the configured PIN: it will not be sent again \
                             (three wrong PINs lock the SIM, and then only its PUK helps). Fix \
                             {source} and restart Conductor, or check the PIN in a phone first; \
                             this modem stays down until then"
                        );
                        return Err(ModemError::PinRejected);
                    }
                }
            }
            Ok(Ok(PinStatus::SimPuk)) | Ok(Err(SimState::PukRequired)) => {
                return Err(ModemError::Sim {
                    state: SimState::PukRequired,
                    advice: "the PIN is blocked (three wrong PINs): unblock the SIM with its \
                             PUK in a phone, then set the new PIN in the configuration"
                        .to_owned(),
                });
            }
            Ok(Ok(PinStatus::NotReady(_))) | Ok(Err(SimState::Absent)) => SimState::Absent,
            Ok(Ok(other)) => {
                let state = SimState::from_pin_status(&other);
                return Err(ModemError::Sim {
                    advice: format!("the SIM asks for `{state}`: unlock it in a phone"),
                    state,
                });
            }
            Ok(Err(state)) => state,
            Err(ModemError::Command { result, .. }) if is_busy(&result) => {
                SimState::Other("busy".to_owned())
            }
            Err(error) if is_fatal(&error) => return Err(error),
            Err(error) => {
                debug!(%error, "AT+CPIN? failed; retrying");
                SimState::Other("busy".to_owned())
            }
        };
        if Instant::now() >= deadline {
            let advice = match waiting_for {
                SimState::Absent => "insert a SIM (check that it is seated) and power-cycle \
                                     the modem"
                    .to_owned(),
                SimState::PinRequired => {
                    "the SIM still asks for its PIN after it was accepted".to_owned()
                }
                _ => format!(
                    "the SIM stayed busy for {:?}; power-cycle the modem if it persists",
                    config.sim_ready_timeout
                ),
            };
            return Err(ModemError::Sim {
                state: waiting_for,
                advice,
            });
        }
        d.pause(RETRY_PAUSE).await?;
    }
}

/// `AT+CMGF=0`, retried while the modem's SMS stack is still starting.
async fn pdu_mode(d: &mut Direct<'_, '_>, config: &ModemConfig) -> Result<(), ModemError> {
    let deadline = Instant::now() + config.sim_ready_timeout;
    loop {
        let command = Command::new("AT+CMGF=0")?;
        match run(d, command).await {
            Ok(_) => return Ok(()),
            Err(ModemError::Command { result, .. }) if is_busy(&result) => {
                if Instant::now() >= deadline {
                    return Err(ModemError::Unsupported {
                        what: format!(
                            "the modem refuses PDU mode (AT+CMGF=0 answered {result} for {:?})",
                            config.sim_ready_timeout
                        ),
                    });
                }
                debug!(%result, "AT+CMGF=0 not accepted yet; retrying");
            }
            Err(error) => return Err(error),
        }
        d.pause(RETRY_PAUSE).await?;
    }
}

/// The memory triples (read, write, receive) to try, best first. Read and receive must be the
/// same memory (messages are read where they arrive); `SM` is preferred, then `ME`, then
/// `MT`, then whatever else both lists offer. A configured memory comes first.
pub(crate) fn storage_candidates(
    supported: Option<&SupportedMemories>,
    preferred: Option<&str>,
) -> Vec<[String; 3]> {
    let mut names: Vec<String> = preferred.into_iter().map(str::to_owned).collect();
    for name in ["SM", "ME", "MT"] {
        names.push(name.to_owned());
    }
    if let Some(s) = supported {
        names.extend(s.read.iter().cloned());
    }
    let mut seen = Vec::new();
    names.retain(|n| {
        let new = !seen.contains(n);
        seen.push(n.clone());
        new
    });
    let Some(s) = supported else {
        return names
            .into_iter()
            .map(|n| [n.clone(), n.clone(), n])
            .collect();
    };
    let offers = |list: &[String], name: &str| list.is_empty() || list.iter().any(|m| m == name);
    names
        .into_iter()
        .filter(|n| offers(&s.read, n) && offers(&s.receive, n))
        .map(|n| {
            let write = if offers(&s.write, &n) {
                n.clone()
            } else {
                ["SM", "ME", "MT"]
                    .into_iter()
                    .map(str::to_owned)
                    .find(|w| s.write.contains(w))
                    .or_else(|| s.write.first().cloned())
                    .unwrap_or_else(|| n.clone())
            };
            [n.clone(), write, n]
        })
        .collect()
}

/// Selects the message memories; returns the triple chosen (if any) and the fill levels.
async fn select_storage(
    d: &mut Direct<'_, '_>,
    config: &ModemConfig,
    quirks: &Quirks,
    settings: &mut Settings,
) -> Result<Vec<MemoryReport>, ModemError> {
    let test = Command::new("AT+CPMS=?")?;
    let supported = match optional(run(d, test).await)? {
        Some(response) => cpms::parse_test(&response.lines).ok(),
        None => None,
    };
    let preferred = config.storage.as_deref();
    let mut candidates = storage_candidates(supported.as_ref(), preferred);
    // The quirks table's memories go right after a configured one: they are what the model
    // is known to accept (SIM800 lists "ME" and refuses it).
    let known = |name: &String| quirks.memories.iter().position(|m| m == name);
    candidates.sort_by_key(
        |[read, ..]| match (Some(read.as_str()) == preferred, known(read)) {
            (true, _) => 0,
            (false, Some(rank)) => 1 + rank,
            (false, None) => usize::MAX,
        },
    );
    for [read, write, receive] in candidates {
        let command = cpms::set(&read, Some(&write), Some(&receive))?;
        let response = match run(d, command).await {
            Ok(response) => response,
            Err(error) if is_fatal(&error) => return Err(error),
            Err(error) => {
                debug!(%error, memory = %read, "storage not accepted; trying the next");
                continue;
            }
        };
        if let Some(wanted) = preferred.filter(|p| *p != read) {
            settings.warnings.push(format!(
                "configured storage {wanted} is not available on this modem; using {read}"
            ));
        } else if read != "SM" {
            info!(memory = %read, "SIM storage (SM) not available; using {read}");
        }
        let names = [read.clone(), write.clone(), receive.clone()];
        settings.memories = Some(names.clone());
        let reports = match cpms::parse_set(&response.lines) {
            Ok(capacities) => {
                let mut reports: Vec<MemoryReport> = Vec::new();
                for (name, capacity) in names.iter().zip(capacities) {
                    if reports.iter().all(|r| &r.memory != name) {
                        reports.push(MemoryReport {
                            memory: name.clone(),
                            used: capacity.used,
                            total: capacity.total,
                        });
                    }
                }
                reports
            }
            Err(_) => match optional(ops::storage(d).await)? {
                Some(storage) => MemoryReport::from_storage(&storage),
                None => Vec::new(),
            },
        };
        return Ok(reports);
    }
    settings.warnings.push(
        "the modem accepted no message storage selection (AT+CPMS); its current memories are \
         used"
            .to_owned(),
    );
    Ok(match optional(ops::storage(d).await)? {
        Some(storage) => MemoryReport::from_storage(&storage),
        None => Vec::new(),
    })
}

/// The `AT+CNMI` settings to try, best first (DESIGN "Receiving"): `<mt>`=1 always, `<ds>` 2
/// then 1 then 0, `<mode>` 2 then 1, `<bfr>` 0 then 1 (Cinterion accepts only 1). Settings the
/// modem says it supports come first; the others follow, because `AT+CNMI=?` is not proof
/// either way.
pub(crate) fn cnmi_candidates(support: Option<&CnmiSupport>) -> Vec<CnmiSettings> {
    let mut all = Vec::new();
    for ds in [2, 1, 0] {
        for mode in [2, 1] {
            for bfr in [0, 1] {
                all.push(CnmiSettings {
                    mode,
                    mt: 1,
                    bm: 0,
                    ds,
                    bfr,
                });
            }
        }
    }
    match support {
        Some(support) => {
            let (yes, no): (Vec<_>, Vec<_>) = all.into_iter().partition(|s| support.supports(*s));
            yes.into_iter().chain(no).collect()
        }
        None => all,
    }
}

/// Puts the quirks table's `AT+CNMI` settings first, in its order, ahead of the cascade
/// (which stays as the fallback). A listed setting that routes messages to the terminal
/// (`<mt>` 2/3) is ignored: DESIGN "Receiving" forbids it whatever the config says.
pub(crate) fn with_known_cnmi(candidates: Vec<CnmiSettings>, quirks: &Quirks) -> Vec<CnmiSettings> {
    let parse = |text: &str| -> Option<CnmiSettings> {
        let values: Vec<u8> = text
            .split(',')
            .map(|v| v.trim().parse().ok())
            .collect::<Option<_>>()?;
        let [mode, mt, bm, ds, bfr] = values.as_slice() else {
            return None;
        };
        (*mt == 1).then_some(CnmiSettings {
            mode: *mode,
            mt: *mt,
            bm: *bm,
            ds: *ds,
            bfr: *bfr,
        })
    };
    let mut out: Vec<CnmiSettings> = quirks.cnmi.iter().filter_map(|t| parse(t)).collect();
    for candidate in candidates {
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// Makes sure the message service is phase 2 (`AT+CSMS=0`, no `AT+CNMA` acknowledgements),
/// which most modems already are: read it first and set it only if needed.
async fn message_service_zero(d: &mut Direct<'_, '_>) -> Result<bool, ModemError> {
    let query = Command::new("AT+CSMS?")?;
    if let Some(response) = optional(run(d, query).await)? {
        let service = response.lines.iter().find_map(|l| {
            let rest = params::after_prefix(&l.text, "+CSMS")?;
            params::split(rest).first().map(|s| s.trim() == "0")
        });
        if service == Some(true) {
            return Ok(true);
        }
    }
    soft(d, "AT+CSMS=0").await
}

/// Chooses how new messages and status reports are indicated. Returns what `AT+CNMI?` says
/// afterwards, for [`settings_lost`].
async fn select_indications(
    d: &mut Direct<'_, '_>,
    quirks: &Quirks,
    settings: &mut Settings,
) -> Result<Option<String>, ModemError> {
    let support = match optional(run(d, cnmi::test()).await)? {
        Some(response) => cnmi::parse_test(&response.lines).ok(),
        None => None,
    };
    // `<ds>`=1 delivers `+CDS` directly; with `AT+CSMS=1` those would need `AT+CNMA`
    // acknowledgements the driver does not send, so it is used only after `AT+CSMS=0`.
    let mut csms_zero: Option<bool> = None;
    for candidate in with_known_cnmi(cnmi_candidates(support.as_ref()), quirks) {
        if candidate.ds == 1 {
            let ok = match csms_zero {
                Some(ok) => ok,
                None => {
                    let ok = message_service_zero(d).await?;
                    csms_zero = Some(ok);
                    ok
                }
            };
            if !ok {
                continue;
            }
        }
        match run(d, cnmi::set(candidate)).await {
            Ok(_) => {
                let CnmiSettings {
                    mode,
                    mt,
                    bm,
                    ds,
                    bfr,
                } = candidate;
                settings.cnmi = Some(format!("{mode},{mt},{bm},{ds},{bfr}"));
                settings.status_reports = Some(match ds {
                    2 => StatusReportRouting::Stored,
                    1 => StatusReportRouting::Direct,
                    _ => StatusReportRouting::None,
                });
                if ds == 0 {
                    settings.warnings.push(
                        "the modem accepts no status report indication: sent messages stay \
                         `sent` and never become `delivered`"
                            .to_owned(),
                    );
                }
                return reported_cnmi(d).await;
            }
            Err(error) if is_fatal(&error) => return Err(error),
            Err(error) => debug!(%error, "AT+CNMI setting not accepted; trying the next"),
        }
    }
    settings.status_reports = Some(StatusReportRouting::None);
    settings.warnings.push(
        "the modem accepts no AT+CNMI setting that stores messages and announces them (+CMTI): \
         new messages are found by the periodic sweep only"
            .to_owned(),
    );
    Ok(None)
}

/// Checks the service centre; sets it from config when the SIM has none.
async fn check_smsc(
    d: &mut Direct<'_, '_>,
    config: &ModemConfig,
    settings: &mut Settings,
) -> Result<(), ModemError> {
    let current = match ops::smsc(d).await {
        Ok(current) => current,
        Err(error) if is_fatal(&error) => return Err(error),
        Err(error) => {
            settings.warnings.push(format!(
                "could not read the SMS service centre address: {error}"
            ));
            return Ok(());
        }
    };
    match (current, config.smsc.as_deref()) {
        (Some(current), wanted) => {
            if let Some(wanted) = wanted.filter(|w| *w != current) {
                info!(sim = %current, config = %wanted, "the SIM has its own SMSC; it is kept");
            }
            settings.smsc = Some(current);
        }
        (None, Some(wanted)) => {
            let type_of_address = if wanted.starts_with('+') { 145 } else { 129 };
            match run(d, csca::set(wanted, Some(type_of_address))?).await {
                Ok(_) => {
                    info!(smsc = %wanted, "set the SMSC from the configuration");
                    settings.smsc = Some(wanted.to_owned());
                }
                Err(error) if is_fatal(&error) => return Err(error),
                Err(error) => {
                    settings.smsc_missing = true;
                    settings.warnings.push(format!(
                        "the SIM has no SMS service centre address and setting {wanted} failed \
                         ({error}): sends will fail (+CMS ERROR 330); check the number with \
                         your operator"
                    ));
                }
            }
        }
        (None, None) => {
            settings.smsc_missing = true;
            settings.warnings.push(format!(
                "the SIM has no SMS service centre address: sends will fail (+CMS ERROR 330); \
                 set modems[].smsc for modem {} in the configuration (your operator publishes \
                 it)",
                config.name
            ));
        }
    }
    Ok(())
}

/// Signal, registration and operator; none of them is required.
pub(crate) async fn status<E: Exec>(
    exec: &mut E,
) -> Result<(Option<Signal>, Option<RegistrationReport>, Option<String>), ModemError> {
    let signal = optional(ops::signal(exec).await)?;
    let registration = optional(ops::registration(exec).await)?;
    let operator = optional(ops::operator(exec).await)?.flatten();
    Ok((signal, registration, operator))
}

/// Full init: see the module doc for the order. `pin_rejected` survives reconnects, so a PIN
/// the SIM refused once is never sent again.
pub(crate) async fn init(
    d: &mut Direct<'_, '_>,
    config: &ModemConfig,
    pin_rejected: &mut bool,
) -> Result<InitReport, ModemError> {
    sync(d, config).await?;
    // ATE0 is echoed itself; the engine drops echoes by content, so that needs no care.
    soft(d, "ATE0").await?;
    if !soft(d, "AT+CMEE=1").await? {
        debug!("AT+CMEE=1 refused; errors will be bare ERROR");
    }
    let mut identity = ops::device_identity(d).await?;
    let quirks = Quirks::select(
        identity.manufacturer.as_deref(),
        identity.model.as_deref(),
        &config.quirks,
    );
    d.link.ignore_urcs = quirks.ignore_urcs.clone();
    let sim = wait_for_sim(d, config, pin_rejected).await?;
    let (imsi, iccid) = ops::sim_identity(d).await?;
    identity.imsi = imsi;
    identity.iccid = iccid;
    pdu_mode(d, config).await?;
    let mut settings = Settings::default();
    let storage = select_storage(d, config, &quirks, &mut settings).await?;
    let cnmi_check = select_indications(d, &quirks, &mut settings).await?;
    check_smsc(d, config, &mut settings).await?;
    // Registration changes as URCs (`+CREG: <stat>`), so a lost network pauses sending at
    // once rather than at the next refresh; a modem that refuses keeps being polled.
    for line in ["AT+CREG=1", "AT+CGREG=1", "AT+CEREG=1"] {
        soft(d, line).await?;
    }
    // Caller id with every RING (`+CLIP`), so a call is logged with its number; a modem
    // without it still reports RINGs, with no number.
    if !soft(d, "AT+CLIP=1").await? {
        debug!("AT+CLIP=1 refused; incoming calls will carry no number");
    }
    let (signal, registration, operator) = status(d).await?;
    for warning in &settings.warnings {
        warn!("{warning}");
    }
    Ok(InitReport {
        identity,
        sim,
        settings,
        storage,
        signal,
        registration,
        operator,
        cnmi_check,
        quirks,
    })
}

/// What `conductor modem probe` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// The device probed.
    pub device: String,
    /// Who the modem and its SIM are (`AT+CGMI` … ICCID; IMSI and ICCID need an unlocked
    /// SIM); flattened so the JSON keeps one level.
    #[serde(flatten)]
    pub identity: Identity,
    /// `ready`, `pin_required`, `puk_required`, `absent`, or the modem's text.
    pub sim: SimState,
    /// Signal strength; `None` when unknown.
    pub signal_dbm: Option<i16>,
    /// `home`, `roaming`, `searching`, `denied`, `not_registered` or `unknown`.
    pub registration: RegistrationSummary,
    /// The operator's name.
    pub operator: Option<String>,
    /// The SMS service centre on the SIM.
    pub smsc: Option<String>,
    /// The memories in use and their fill levels.
    pub storage: Vec<MemoryReport>,
}

/// The read-only init behind `probe`: changes nothing that survives a power cycle (no PIN
/// entry, no `AT&W`, no `AT+CPMS`/`AT+CNMI`/`AT+CSCA` changes; `ATE0` and `AT+CMEE=1` are
/// volatile).
pub(crate) async fn probe_read_only(
    d: &mut Direct<'_, '_>,
    config: &ModemConfig,
) -> Result<ProbeReport, ModemError> {
    sync(d, config).await?;
    soft(d, "ATE0").await?;
    soft(d, "AT+CMEE=1").await?;
    let identity = ops::device_identity(d).await?;
    let sim = match ops::sim_state(d).await {
        Ok(sim) => sim,
        Err(error) if is_fatal(&error) => return Err(error),
        Err(ModemError::Command { result, .. }) if is_busy(&result) => {
            SimState::Other("busy".to_owned())
        }
        Err(error) => SimState::Other(error.to_string()),
    };
    let (imsi, iccid) = ops::sim_identity(d).await?;
    let (signal, registration, operator) = status(d).await?;
    let smsc = optional(ops::smsc(d).await)?.flatten();
    let storage = optional(ops::storage(d).await)?
        .map(|s| MemoryReport::from_storage(&s))
        .unwrap_or_default();
    Ok(ProbeReport {
        device: config.device.clone(),
        identity: Identity {
            imsi,
            iccid,
            ..identity
        },
        sim,
        signal_dbm: signal.and_then(|s| s.dbm),
        registration: registration.map_or(RegistrationSummary::Unknown, |r| r.summary),
        operator,
        smsc,
        storage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memories(read: &[&str], write: &[&str], receive: &[&str]) -> SupportedMemories {
        let owned = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect();
        SupportedMemories {
            read: owned(read),
            write: owned(write),
            receive: owned(receive),
        }
    }

    fn first(candidates: &[[String; 3]]) -> Option<[&str; 3]> {
        candidates
            .first()
            .map(|[a, b, c]| [a.as_str(), b.as_str(), c.as_str()])
    }

    #[test]
    fn sim_storage_is_preferred_when_every_role_offers_it() {
        let sim7600 = memories(
            &["ME", "MT", "SM", "SR"],
            &["ME", "MT", "SM"],
            &["ME", "SM"],
        );
        assert_eq!(
            first(&storage_candidates(Some(&sim7600), None)),
            Some(["SM", "SM", "SM"])
        );
    }

    #[test]
    fn without_sm_the_phone_memory_is_next() {
        let no_sm = memories(&["ME", "MT"], &["ME", "MT"], &["ME", "MT"]);
        let candidates = storage_candidates(Some(&no_sm), None);
        assert_eq!(first(&candidates), Some(["ME", "ME", "ME"]));
        assert_eq!(candidates.len(), 2);
    }

    #[test]
    fn a_configured_memory_comes_first_and_write_falls_back_separately() {
        let cinterion = memories(&["ME", "SM", "MT"], &["ME", "SM", "MT"], &["SM", "MT"]);
        assert_eq!(
            first(&storage_candidates(Some(&cinterion), Some("MT"))),
            Some(["MT", "MT", "MT"])
        );
        let odd = memories(&["ME"], &["SM"], &["ME"]);
        assert_eq!(
            first(&storage_candidates(Some(&odd), None)),
            Some(["ME", "SM", "ME"])
        );
    }

    #[test]
    fn cnmi_candidates_never_route_messages_to_the_terminal() {
        let candidates = cnmi_candidates(None);
        assert!(candidates.iter().all(|c| c.mt == 1));
        assert_eq!(
            candidates.first().map(|c| (c.mode, c.ds, c.bfr)),
            Some((2, 2, 0))
        );
    }

    #[test]
    fn supported_cnmi_settings_are_tried_before_unsupported_ones() {
        let sim800 = CnmiSupport {
            mode: vec![0, 1, 2, 3],
            mt: vec![0, 1, 2, 3],
            bm: vec![0, 2],
            ds: vec![0, 1],
            bfr: vec![0, 1],
        };
        let candidates = cnmi_candidates(Some(&sim800));
        assert_eq!(
            candidates.first().map(|c| (c.mode, c.ds, c.bfr)),
            Some((2, 1, 0))
        );
        assert_eq!(candidates.len(), 12);
    }
}
