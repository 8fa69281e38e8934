//! Finding a modem by who it is (IMEI, ICCID) instead of where it was: the port is looked up
//! at start and again at every reconnect.
//!
//! Why: `/dev/ttyUSB2` becomes `/dev/ttyUSB3` after a USB reset or a replug, and a Huawei
//! stick's ports shift when another USB serial device appears first (issues 8 and 10). The
//! IMEI does not move. [`IdentityConnector`] is the driver's [`Connect`] for such a modem:
//! each call lists the machine's serial ports ([`crate::scan::list_ports`]), probes them
//! read-only in parallel with short timeouts, picks the matching port that takes SMS
//! commands ([`crate::scan::choose_sms_port`]) and opens it. A modem found nowhere fails the
//! connect with an error that says what each port answered; the task shows it in the
//! modem's state (so `status` and `health` show it `down` with that reason) and retries with
//! backoff.
//!
//! Never probes a port another modem of this process uses: ports named by other modems'
//! `device` ([`Locate::avoid`]) and ports other identity modems resolved (a process-wide
//! claim table: ports are process-wide resources, and a SIGHUP reload builds new configs while
//! running modems keep their ports). Resolutions run one at a time, so two modems never probe
//! the same port at once. Never probes a port another process holds.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::{debug, info};

use crate::config::ModemConfig;
use crate::host::{self, HostRoots};
use crate::scan::{self, Candidate, PortAnswer, PortStatus, ScanOptions, SerialPort};
use crate::transport::{BoxedIo, Connect, Device, OpenError, OpenErrorKind, SerialSettings, open};

/// Who a modem is: every field given must match what the port answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ModemIdentity {
    /// The IMEI (`AT+CGSN`): the modem hardware.
    pub imei: Option<String>,
    /// The ICCID: the SIM card, which may move between modems.
    pub iccid: Option<String>,
}

impl ModemIdentity {
    /// Whether `answer` comes from this modem. An empty identity matches nothing.
    pub fn matches(&self, answer: &PortAnswer) -> bool {
        if self.imei.is_none() && self.iccid.is_none() {
            return false;
        }
        let same = |wanted: &Option<String>, got: &Option<String>| match wanted {
            None => true,
            Some(wanted) => got
                .as_deref()
                .is_some_and(|got| digits(got) == digits(wanted)),
        };
        answer.status == PortStatus::Answers
            && same(&self.imei, &answer.identity.imei)
            && same(&self.iccid, &answer.identity.iccid)
    }

    /// `IMEI 353…` / `ICCID 8949…` / both, for logs and errors.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(imei) = &self.imei {
            parts.push(format!("IMEI {imei}"));
        }
        if let Some(iccid) = &self.iccid {
            parts.push(format!("ICCID {iccid}"));
        }
        parts.join(", ")
    }

    /// The device label of a modem that has no `device`: `imei:353…` or `iccid:8949…`.
    pub fn label(&self) -> String {
        match (&self.imei, &self.iccid) {
            (Some(imei), _) => format!("imei:{imei}"),
            (None, Some(iccid)) => format!("iccid:{iccid}"),
            (None, None) => "unidentified".to_owned(),
        }
    }
}

/// Compares identities digit for digit: some modems pad an ICCID with `F` or print spaces.
fn digits(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
}

/// How to find a modem by identity.
#[derive(Debug, Clone)]
pub struct Locate {
    /// Who it is.
    pub identity: ModemIdentity,
    /// A device to try first (the config's `device` when given beside the identity); it is
    /// used only if the modem there matches.
    pub hint: Option<String>,
    /// Devices other configured modems open by path: never probed.
    pub avoid: Vec<String>,
    /// Where sysfs, `/dev` and `/proc` are ([`HostRoots::from_env`] in the daemon).
    pub roots: HostRoots,
    /// Probe timeouts; the serial settings are the modem's own.
    pub probe: ScanOptions,
}

impl Locate {
    /// Finds `identity` among the machine's ports, with the scan's short timeouts.
    pub fn new(identity: ModemIdentity) -> Locate {
        Locate {
            identity,
            hint: None,
            avoid: Vec::new(),
            roots: HostRoots::from_env(),
            probe: ScanOptions::default(),
        }
    }
}

/// Ports resolved by identity connectors of this process, by connector.
static CLAIMS: Mutex<BTreeMap<PathBuf, u64>> = Mutex::new(BTreeMap::new());

/// One resolution at a time (see the module doc).
static RESOLVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The name two spellings of one port share: the canonical path when it exists.
fn port_key(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn claims() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, u64>> {
    // A poisoned table still holds valid claims: a panic elsewhere does not corrupt a map.
    CLAIMS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The driver's [`Connect`] for a modem found by identity (see the module doc).
#[derive(Debug)]
pub struct IdentityConnector {
    id: u64,
    name: String,
    locate: Locate,
    serial: SerialSettings,
    connect_timeout: Duration,
    /// The port found last time, to log a change once.
    current: Option<PathBuf>,
}

impl IdentityConnector {
    /// A connector for the modem of `config`, found as `locate` says.
    pub fn new(config: &ModemConfig, locate: Locate) -> IdentityConnector {
        IdentityConnector {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: config.name.clone(),
            locate,
            serial: config.serial,
            connect_timeout: config.connect_timeout,
            current: None,
        }
    }

    fn release(&self) {
        claims().retain(|_, owner| *owner != self.id);
    }

    async fn resolve_and_open(&mut self) -> Result<BoxedIo, OpenError> {
        let _one_at_a_time = RESOLVING.lock().await;
        // Reconnecting: the previous port is closed, and may now be someone else's.
        self.release();
        let port = self.resolve().await?;
        let key = port_key(&port.path);
        let device = port.path.to_string_lossy().into_owned();
        let io = open(
            &Device::Serial(device.clone()),
            self.serial,
            self.connect_timeout,
        )
        .await?;
        claims().insert(key, self.id);
        if self.current.as_deref() != Some(port.path.as_path()) {
            let stable = port.stable_path();
            info!(
                modem = %self.name,
                "{} found on {device}{}",
                self.locate.identity.describe(),
                if stable == port.path {
                    String::new()
                } else {
                    format!(" ({})", stable.display())
                }
            );
            self.current = Some(port.path.clone());
        } else {
            debug!(modem = %self.name, %device, "same port as before");
        }
        Ok(io)
    }

    /// Probes the candidate ports and returns the one to open.
    async fn resolve(&self) -> Result<SerialPort, OpenError> {
        let locate = &self.locate;
        let mut ports = scan::list_ports(&locate.roots);
        if let Some(hint) = &locate.hint
            && !hint.contains("://")
        {
            let key = port_key(Path::new(hint));
            ports.retain(|p| port_key(&p.path) != key);
            ports.insert(
                0,
                SerialPort {
                    name: hint.clone(),
                    path: PathBuf::from(hint),
                    by_id: Vec::new(),
                    driver: None,
                    usb: None,
                },
            );
        }
        let avoid: Vec<PathBuf> = locate
            .avoid
            .iter()
            .filter(|d| !d.contains("://"))
            .map(|d| port_key(Path::new(d)))
            .collect();
        let mut notes: Vec<String> = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for (index, port) in ports.iter().enumerate() {
            let key = port_key(&port.path);
            let shown = port.path.display();
            if avoid.contains(&key) {
                notes.push(format!(
                    "{shown} belongs to another configured modem (skipped)"
                ));
                continue;
            }
            if claims().get(&key).is_some_and(|owner| *owner != self.id) {
                notes.push(format!("{shown} is in use by another modem (skipped)"));
                continue;
            }
            let held = host::holders(&locate.roots, &port.path);
            if !held.processes.is_empty() {
                notes.push(format!("{shown} is held by {} (skipped)", held.describe()));
                continue;
            }
            let device = port.path.to_string_lossy().into_owned();
            let options = ScanOptions {
                serial: self.serial,
                ..locate.probe.clone()
            };
            tasks.spawn(async move { (index, scan::query_port(&device, &options).await) });
        }
        let mut answers: Vec<(usize, PortAnswer)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(answer) = joined {
                answers.push(answer);
            }
        }
        answers.sort_by_key(|(index, _)| *index);
        let matching: Vec<(&SerialPort, &PortAnswer)> = answers
            .iter()
            .filter(|(_, answer)| locate.identity.matches(answer))
            .filter_map(|(index, answer)| Some((ports.get(*index)?, answer)))
            .collect();
        let candidates: Vec<Candidate<'_>> = matching
            .iter()
            .map(|(port, answer)| Candidate {
                path: &port.path,
                sms: answer.sms,
                interface: port.usb.as_ref().and_then(|u| u.interface),
                driver: port.driver.as_deref(),
            })
            .collect();
        if let Some(chosen) = scan::choose_sms_port(&candidates)
            && let Some((port, _)) = matching.get(chosen)
        {
            return Ok((*port).clone());
        }
        for (index, answer) in &answers {
            let Some(port) = ports.get(*index) else {
                continue;
            };
            notes.push(format!("{} {}", port.path.display(), what_it_said(answer)));
        }
        Err(OpenError {
            device: locate.identity.label(),
            kind: OpenErrorKind::NotFound,
            detail: if notes.is_empty() {
                format!(
                    "no serial port to look for {} on (is the modem plugged in? `conductor \
                     modem scan` lists the ports)",
                    locate.identity.describe()
                )
            } else {
                format!(
                    "no port answers with {}: {} (`conductor modem scan` shows every port; \
                     check the number in modems[].imei/.iccid)",
                    locate.identity.describe(),
                    notes.join("; ")
                )
            },
        })
    }
}

/// "answers with IMEI 35…", "is silent", for the not-found error.
fn what_it_said(answer: &PortAnswer) -> String {
    match answer.status {
        PortStatus::Answers => {
            let mut who = Vec::new();
            if let Some(imei) = &answer.identity.imei {
                who.push(format!("IMEI {imei}"));
            }
            if let Some(iccid) = &answer.identity.iccid {
                who.push(format!("ICCID {iccid}"));
            }
            if who.is_empty() {
                "answers AT but gives no IMEI or ICCID".to_owned()
            } else {
                format!("answers with {}", who.join(", "))
            }
        }
        PortStatus::Silent => "is silent".to_owned(),
        PortStatus::Garbled => "answers unreadable bytes (wrong baud rate?)".to_owned(),
        PortStatus::Busy | PortStatus::Unavailable => answer
            .error
            .clone()
            .unwrap_or_else(|| "cannot be opened".to_owned()),
    }
}

impl Connect for IdentityConnector {
    fn connect(&mut self) -> Pin<Box<dyn Future<Output = Result<BoxedIo, OpenError>> + Send + '_>> {
        Box::pin(self.resolve_and_open())
    }
}

impl Drop for IdentityConnector {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(imei: Option<&str>, iccid: Option<&str>) -> PortAnswer {
        let mut answer = scan_answer();
        answer.identity.imei = imei.map(str::to_owned);
        answer.identity.iccid = iccid.map(str::to_owned);
        answer
    }

    fn scan_answer() -> PortAnswer {
        PortAnswer {
            status: PortStatus::Answers,
            identity: crate::state::Identity::default(),
            sms: true,
            error: None,
            holders: Vec::new(),
            elapsed_ms: 0,
        }
    }

    #[test]
    fn every_given_field_must_match_and_padding_is_ignored() {
        let by_imei = ModemIdentity {
            imei: Some("353123456789012".into()),
            iccid: None,
        };
        assert!(by_imei.matches(&answer(Some("353123456789012"), None)));
        assert!(!by_imei.matches(&answer(Some("353123456789013"), None)));
        assert!(!by_imei.matches(&answer(None, Some("8949"))));
        let both = ModemIdentity {
            imei: Some("353123456789012".into()),
            iccid: Some("89490200001234567890".into()),
        };
        assert!(both.matches(&answer(
            Some("353123456789012"),
            Some("89490200001234567890F")
        )));
        assert!(!both.matches(&answer(Some("353123456789012"), Some("8949"))));
        let mut silent = answer(Some("353123456789012"), None);
        silent.status = PortStatus::Silent;
        assert!(!by_imei.matches(&silent));
        assert!(!ModemIdentity::default().matches(&answer(Some("1"), None)));
        assert_eq!(by_imei.label(), "imei:353123456789012");
    }

    #[tokio::test]
    async fn a_modem_found_nowhere_says_what_each_port_answered() {
        let dir = std::env::temp_dir().join(format!("conductor-identity-{}", std::process::id()));
        let roots = HostRoots {
            sys: dir.join("sys"),
            dev: dir.join("dev"),
            proc: dir.join("proc"),
        };
        let locate = Locate {
            roots,
            ..Locate::new(ModemIdentity {
                imei: Some("353123456789012".into()),
                iccid: None,
            })
        };
        let connector = IdentityConnector::new(&ModemConfig::new("m1", "imei:1"), locate);
        let error = connector.resolve().await.expect_err("no ports at all");
        assert_eq!(error.kind, OpenErrorKind::NotFound);
        let text = error.to_string();
        assert!(text.contains("IMEI 353123456789012"), "{text}");
        assert!(text.contains("conductor modem scan"), "{text}");
    }
}
