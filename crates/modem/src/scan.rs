//! `conductor modem scan`: which serial ports the machine has, which of them answer AT, who
//! the modem behind each is, and which port to use for SMS.
//!
//! Why: most first-day trouble with a USB modem is choosing the port. A Huawei stick exposes
//! three `ttyUSB`s, two of which answer `AT`; `ttyUSBn` numbers move after a USB reset; a
//! port held by ModemManager or minicom looks like a dead modem. The scan lists every port
//! with its stable `/dev/serial/by-id` name, USB ids, interface and driver (read from sysfs,
//! so no libudev: the workspace builds tokio-serial without it on purpose), probes each one
//! briefly, and recommends one port per modem ([`choose_sms_port`] has the rule).
//!
//! Safety: a port another process holds is not opened at all (its conversation would break);
//! the probe sends read-only queries only (`AT`, `AT+CGMI`, `AT+CGMM`, `AT+CGMR`, `AT+CGSN`,
//! `AT+CIMI`, the ICCID queries, `AT+CPMS?`, `AT+CMGF?`): no echo, error-format, storage,
//! indication or PIN command, nothing that survives the port being closed. Each command has a
//! short timeout, and ports are probed in parallel, so a silent port costs one timeout.
//!
//! Also used by the daemon to find a modem named by IMEI or ICCID (`identity`).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use conductor_at::Command;
use serde::Serialize;

use crate::host::{self, HostRoots, Process};
use crate::link::{Direct, ExecError, Hooks, Link, Reply, UrcOutbox};
use crate::ops::{self, Exec};
use crate::state::Identity;
use crate::transport::{BoxedIo, Device, OpenError, SerialSettings, open};

/// The USB side of a serial port, from sysfs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsbInfo {
    /// `idVendor`, four hex digits (`12d1`: Huawei).
    pub vendor_id: String,
    /// `idProduct`, four hex digits.
    pub product_id: String,
    /// The device's manufacturer string, when it has one.
    pub manufacturer: Option<String>,
    /// The device's product string.
    pub product: Option<String>,
    /// The device's serial number string.
    pub serial: Option<String>,
    /// `bInterfaceNumber` of the USB interface behind this port: which of a dongle's ports
    /// it is.
    pub interface: Option<u8>,
}

/// A serial port of this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SerialPort {
    /// The kernel's name (`ttyUSB2`, `ttyACM0`, `COM3`).
    pub name: String,
    /// The path to open (`/dev/ttyUSB2`, `COM3`).
    pub path: PathBuf,
    /// Its `/dev/serial/by-id` links: stable across reboots and USB resets, unlike `ttyUSBn`.
    pub by_id: Vec<PathBuf>,
    /// The kernel driver (`option`, `cdc_acm`, `qcserial`, `serial8250`).
    pub driver: Option<String>,
    /// Vendor, product and interface when it sits on USB.
    pub usb: Option<UsbInfo>,
}

impl SerialPort {
    /// The name to put in a config: the first by-id link, else the path.
    pub fn stable_path(&self) -> &Path {
        self.by_id.first().map_or(&self.path, PathBuf::as_path)
    }
}

/// Lists the serial ports of the machine. On Linux from sysfs: every `class/tty` entry backed
/// by a device (`ttyUSB*`, `ttyACM*`, `ttyAMA*`, …; virtual consoles and ptys have none),
/// except 8250 UART slots the kernel found no chip behind (`type` 0). Sorted by name.
#[cfg(target_os = "linux")]
pub fn list_ports(roots: &HostRoots) -> Vec<SerialPort> {
    let by_id = by_id_links(roots);
    let Ok(entries) = std::fs::read_dir(roots.sys.join("class/tty")) else {
        return Vec::new();
    };
    let mut ports: Vec<SerialPort> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let tty = entry.path();
            let device = std::fs::canonicalize(tty.join("device")).ok()?;
            let uart_type = std::fs::read_to_string(tty.join("type")).ok();
            if uart_type.is_some_and(|t| t.trim() == "0") {
                return None;
            }
            let usb = usb_info(roots, &device);
            let driver = interface_dir(roots, &device)
                .and_then(|d| link_name(&d.join("driver")))
                .or_else(|| link_name(&device.join("driver")));
            Some(SerialPort {
                path: roots.dev.join(&name),
                by_id: by_id.get(&name).cloned().unwrap_or_default(),
                name,
                driver,
                usb,
            })
        })
        .collect();
    ports.sort_by_key(|p| natural_key(&p.name));
    ports
}

/// Lists the serial ports of the machine, as the OS's port enumeration reports them (the
/// COM ports on Windows; serialport's SetupAPI and IOKit code needs no libudev). The USB
/// interface number and by-id names are Linux notions and stay empty here.
#[cfg(not(target_os = "linux"))]
pub fn list_ports(_roots: &HostRoots) -> Vec<SerialPort> {
    let Ok(found) = tokio_serial::available_ports() else {
        return Vec::new();
    };
    let mut ports: Vec<SerialPort> = found
        .into_iter()
        .map(|info| {
            let usb = match info.port_type {
                tokio_serial::SerialPortType::UsbPort(usb) => Some(UsbInfo {
                    vendor_id: format!("{:04x}", usb.vid),
                    product_id: format!("{:04x}", usb.pid),
                    manufacturer: usb.manufacturer,
                    product: usb.product,
                    serial: usb.serial_number,
                    interface: None,
                }),
                _ => None,
            };
            SerialPort {
                name: info.port_name.clone(),
                path: PathBuf::from(&info.port_name),
                by_id: Vec::new(),
                driver: None,
                usb,
            }
        })
        .collect();
    ports.sort_by_key(|p| natural_key(&p.name));
    ports
}

/// `ttyUSB10` after `ttyUSB9`.
fn natural_key(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (stem.to_owned(), number.parse().unwrap_or(0))
}

/// The by-id links of `DEV/serial/by-id`, by the tty name they point at.
fn by_id_links(roots: &HostRoots) -> BTreeMap<String, Vec<PathBuf>> {
    let mut links: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let dir = roots.dev.join("serial/by-id");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return links;
    };
    for entry in entries.filter_map(Result::ok) {
        if let Some(name) = tty_name(roots, &entry.path()) {
            links.entry(name).or_default().push(entry.path());
        }
    }
    for list in links.values_mut() {
        list.sort();
    }
    links
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The kernel name of the tty a device path means: `DEV/ttyUSB2` → `ttyUSB2`; a by-id link is
/// followed one step at a time while it stays inside `DEV` (so a fixture `DEV` whose nodes are
/// links to ptys still names the fixture's tty, not the pty).
pub fn tty_name(roots: &HostRoots, path: &Path) -> Option<String> {
    let mut current = normalize(path);
    for _ in 0..8 {
        if current.parent() == Some(roots.dev.as_path()) && !current.is_dir() {
            return host::file_name(&current).map(str::to_owned);
        }
        let Ok(target) = std::fs::read_link(&current) else {
            break;
        };
        current = normalize(&current.parent().unwrap_or(Path::new("/")).join(target));
    }
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| host::file_name(&p).map(str::to_owned))
}

/// The last component of a symlink's target (`driver` → `option`).
fn link_name(link: &Path) -> Option<String> {
    let target = std::fs::read_link(link).ok()?;
    host::file_name(&target).map(str::to_owned)
}

fn read_attribute(dir: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The first ancestor of `device` (itself included) inside sysfs that has `attribute`.
fn ancestor_with(roots: &HostRoots, device: &Path, attribute: &str) -> Option<PathBuf> {
    let sys = std::fs::canonicalize(&roots.sys).unwrap_or_else(|_| roots.sys.clone());
    device
        .ancestors()
        .take_while(|dir| dir.starts_with(&sys) && *dir != sys)
        .find(|dir| dir.join(attribute).is_file())
        .map(Path::to_path_buf)
}

/// The USB interface a tty sits on: the tty's device for CDC-ACM, its parent for usb-serial
/// drivers (whose tty device is the `ttyUSBn` port object).
fn interface_dir(roots: &HostRoots, device: &Path) -> Option<PathBuf> {
    ancestor_with(roots, device, "bInterfaceNumber")
}

fn usb_info(roots: &HostRoots, device: &Path) -> Option<UsbInfo> {
    let usb_device = ancestor_with(roots, device, "idVendor")?;
    let interface = interface_dir(roots, device)
        .and_then(|d| read_attribute(&d, "bInterfaceNumber"))
        .and_then(|n| u8::from_str_radix(&n, 16).ok());
    Some(UsbInfo {
        vendor_id: read_attribute(&usb_device, "idVendor")?,
        product_id: read_attribute(&usb_device, "idProduct").unwrap_or_default(),
        manufacturer: read_attribute(&usb_device, "manufacturer"),
        product: read_attribute(&usb_device, "product"),
        serial: read_attribute(&usb_device, "serial"),
        interface,
    })
}

/// USB vendor and product ids of the device behind a serial path (`/dev/ttyUSB2`, a by-id
/// link), for the ModemManager udev rule.
pub fn usb_ids_of(roots: &HostRoots, device: &Path) -> Option<(String, String)> {
    let name = tty_name(roots, device)?;
    let port = std::fs::canonicalize(roots.sys.join("class/tty").join(name).join("device")).ok()?;
    let usb = usb_info(roots, &port)?;
    Some((usb.vendor_id, usb.product_id))
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Baud rate and flow control (USB modems ignore the rate).
    pub serial: SerialSettings,
    /// How long a port has to answer the first `AT`: after that it counts as silent.
    pub answer_timeout: Duration,
    /// Bound on each later query.
    pub command_timeout: Duration,
    /// Bound on the whole conversation with one port.
    pub port_timeout: Duration,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            serial: SerialSettings::default(),
            answer_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            port_timeout: Duration::from_secs(10),
        }
    }
}

/// How a port answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortStatus {
    /// It answers AT.
    Answers,
    /// Nothing came back in time: not an AT port (diagnostics, GPS), or a modem that is off.
    Silent,
    /// Bytes came back but no readable answer: the baud rate is wrong for this port.
    Garbled,
    /// Another process has it open; it was not opened, so nobody's conversation broke.
    Busy,
    /// It could not be opened (see the error).
    Unavailable,
}

/// What one port said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortAnswer {
    /// The verdict.
    pub status: PortStatus,
    /// Who the modem and its SIM are (`AT+CGMI` … ICCID), as far as the port answered;
    /// flattened so the JSON keeps one level.
    #[serde(flatten)]
    pub identity: Identity,
    /// Whether `AT+CPMS?` and `AT+CMGF?` both ended in `OK`: the port takes SMS commands.
    pub sms: bool,
    /// Why it could not be used, with what to do.
    pub error: Option<String>,
    /// Processes holding it (for [`PortStatus::Busy`]).
    pub holders: Vec<Process>,
    /// How long the probe took, in milliseconds.
    pub elapsed_ms: u64,
}

impl PortAnswer {
    fn new(status: PortStatus) -> PortAnswer {
        PortAnswer {
            status,
            identity: Identity::default(),
            sms: false,
            error: None,
            holders: Vec::new(),
            elapsed_ms: 0,
        }
    }
}

/// Runs every command with the scan's short timeout.
struct Short<'d, 'l, 'h> {
    direct: &'d mut Direct<'l, 'h>,
    timeout: Duration,
}

impl Exec for Short<'_, '_, '_> {
    async fn exec(&mut self, command: Command) -> Result<Reply, ExecError> {
        self.direct.exec(command.with_timeout(self.timeout)).await
    }
}

/// The engine limits for a scan: a timed-out query is drained briefly, not for seconds.
fn scan_engine() -> conductor_at::Config {
    conductor_at::Config {
        drain_quiet: Duration::from_millis(300),
        drain_limit: Duration::from_secs(1),
        ..conductor_at::Config::default()
    }
}

/// Opens `device` (a serial path or `tcp://`) and asks it who it is, read-only.
pub async fn query_port(device: &str, options: &ScanOptions) -> PortAnswer {
    let started = Instant::now();
    let opened = match Device::parse(device) {
        Ok(parsed) => open(&parsed, options.serial, options.command_timeout).await,
        Err(error) => Err(error),
    };
    let mut answer = match opened {
        Ok(io) => query_io(io, device, options).await,
        Err(error) => unavailable(&error),
    };
    answer.elapsed_ms = elapsed_ms(started);
    answer
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn unavailable(error: &OpenError) -> PortAnswer {
    PortAnswer {
        error: Some(error.to_string()),
        ..PortAnswer::new(PortStatus::Unavailable)
    }
}

/// Asks an open transport who it is (tests pass an in-memory pipe).
pub async fn query_io(io: BoxedIo, device: &str, options: &ScanOptions) -> PortAnswer {
    let started = Instant::now();
    let mut link = Link::new(io, device, scan_engine(), options.command_timeout, u32::MAX);
    let mut answer =
        match tokio::time::timeout(options.port_timeout, conversation(&mut link, options)).await {
            Ok(answer) => answer,
            Err(_) => PortAnswer {
                error: Some(format!(
                    "the port answered AT but the queries took longer than {:?}",
                    options.port_timeout
                )),
                ..PortAnswer::new(PortStatus::Answers)
            },
        };
    if answer.status == PortStatus::Silent && link.unreadable > 0 {
        answer.status = PortStatus::Garbled;
        answer.error = Some(format!(
            "{} unreadable bytes and no answer at {} baud: wrong baud rate? (try 9600 or \
             115200 with --baud-rate; USB modems ignore it, UART modules do not)",
            link.unreadable, options.serial.baud_rate
        ));
    }
    answer.elapsed_ms = elapsed_ms(started);
    answer
}

async fn conversation(link: &mut Link, options: &ScanOptions) -> PortAnswer {
    let mut outbox = UrcOutbox::discard();
    let mut registrations = [None; 3];
    let mut direct = Direct {
        link,
        hooks: Hooks {
            outbox: &mut outbox,
            state: None,
            shutdown: None,
            abort_on_startup: false,
            registrations: &mut registrations,
        },
    };
    let Ok(at) = Command::new("AT") else {
        return PortAnswer::new(PortStatus::Silent);
    };
    match direct.exec(at.with_timeout(options.answer_timeout)).await {
        // Any final result, ERROR included, proves an AT interpreter listens.
        Ok(_) => {}
        Err(failure) if failure.error.is_disconnect() => {
            return PortAnswer {
                error: Some(failure.error.to_string()),
                ..PortAnswer::new(PortStatus::Unavailable)
            };
        }
        Err(_) => return PortAnswer::new(PortStatus::Silent),
    }
    let mut short = Short {
        direct: &mut direct,
        timeout: options.command_timeout,
    };
    let mut answer = PortAnswer::new(PortStatus::Answers);
    if let Ok(identity) = ops::device_identity(&mut short).await {
        answer.identity.manufacturer = identity.manufacturer;
        answer.identity.model = identity.model;
        answer.identity.revision = identity.revision;
        answer.identity.imei = identity.imei;
    }
    if let Ok((imsi, iccid)) = ops::sim_identity(&mut short).await {
        answer.identity.imsi = imsi;
        answer.identity.iccid = iccid;
    }
    let storage = ops::storage(&mut short).await.is_ok();
    let format = match Command::new("AT+CMGF?") {
        Ok(command) => ops::run(&mut short, command).await.is_ok(),
        Err(_) => false,
    };
    answer.sms = storage && format;
    answer
}

/// A port as the scan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScannedPort {
    /// The port.
    #[serde(flatten)]
    pub port: SerialPort,
    /// What it said.
    #[serde(flatten)]
    pub answer: PortAnswer,
    /// Whether this is the port recommended for its modem.
    pub recommended: bool,
}

/// A modem the scan found, with the port to use for SMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundModem {
    /// The port to configure: its by-id link when it has one.
    pub device: PathBuf,
    /// The kernel path behind it today (`/dev/ttyUSB2`).
    pub path: PathBuf,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// IMEI.
    pub imei: Option<String>,
    /// The SIM's ICCID.
    pub iccid: Option<String>,
    /// Whether the chosen port takes SMS commands.
    pub sms: bool,
    /// The other ports of the same modem that answer AT.
    pub other_ports: Vec<PathBuf>,
    /// Why this port, in a sentence.
    pub reason: String,
    /// USB vendor and product ids, for the ModemManager rule.
    pub usb_ids: Option<(String, String)>,
}

/// What `conductor modem scan` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// Every port, in name order.
    pub ports: Vec<ScannedPort>,
    /// One entry per modem (ports grouped by IMEI, else ICCID).
    pub modems: Vec<FoundModem>,
    /// ModemManager, when it runs.
    pub modem_manager: Option<Process>,
}

/// Probes `ports` in parallel (ports another process holds are reported, not opened) and
/// groups the answers into modems.
pub async fn scan(roots: &HostRoots, ports: Vec<SerialPort>, options: &ScanOptions) -> ScanReport {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, port) in ports.iter().enumerate() {
        let held = host::holders(roots, &port.path);
        if !held.processes.is_empty() {
            let mut answer = PortAnswer::new(PortStatus::Busy);
            answer.error = Some(format!(
                "held by {}: not opened (stop it, or use another port)",
                held.describe()
            ));
            answer.holders = held.processes;
            tasks.spawn(async move { (index, answer) });
            continue;
        }
        let device = port.path.to_string_lossy().into_owned();
        let options = options.clone();
        tasks.spawn(async move { (index, query_port(&device, &options).await) });
    }
    let mut answers: Vec<Option<PortAnswer>> = vec![None; ports.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, answer)) = joined
            && let Some(slot) = answers.get_mut(index)
        {
            *slot = Some(answer);
        }
    }
    let mut scanned: Vec<ScannedPort> = ports
        .into_iter()
        .zip(answers)
        .map(|(port, answer)| ScannedPort {
            port,
            answer: answer.unwrap_or_else(|| PortAnswer {
                error: Some("the probe task failed".to_owned()),
                ..PortAnswer::new(PortStatus::Unavailable)
            }),
            recommended: false,
        })
        .collect();
    let modems = group_modems(&mut scanned);
    ScanReport {
        ports: scanned,
        modems,
        modem_manager: host::modem_manager(roots),
    }
}

/// What [`choose_sms_port`] weighs for one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The port's path.
    pub path: &'a Path,
    /// Whether SMS queries succeeded on it.
    pub sms: bool,
    /// Its USB interface number.
    pub interface: Option<u8>,
    /// Its kernel driver.
    pub driver: Option<&'a str>,
}

/// Picks the port to use for SMS among the ports of one modem that answer AT. The rule, in
/// order:
///
/// 1. A port where `AT+CPMS?` and `AT+CMGF?` succeed beats one where they fail: some
///    secondary ports answer `AT` but refuse or hang on SMS commands.
/// 2. On usb-serial dongles (drivers `option`, `qcserial`, `sierra`, …) interface 0 comes
///    last: on Huawei sticks it is the PPP "Modem" port, which does not carry `+CMTI`
///    (that goes to the PCUI port), and on Quectel and SIMCom modules the AT port is
///    interface 2 while 0 is diagnostics. On CDC-ACM modems (`cdc_acm`), interface 0 is the
///    primary AT port and keeps its place.
/// 3. Then the lowest interface number: the AT port comes before PPP/audio ports on every
///    layout documented in docs/real-modems.md (Huawei if02 PCUI, Quectel/SIMCom if02 AT,
///    if03 PPP).
/// 4. Then the path, so the answer is stable.
///
/// Returns the index into `candidates`.
pub fn choose_sms_port(candidates: &[Candidate<'_>]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .min_by_key(|(_, c)| {
            let usb_serial_zero =
                c.interface == Some(0) && c.driver.is_some_and(|d| d != "cdc_acm");
            (
                !c.sms,
                usb_serial_zero,
                c.interface.map_or(u16::MAX, u16::from),
                c.path,
            )
        })
        .map(|(index, _)| index)
}

/// Why [`choose_sms_port`] chose `chosen`, for the output.
fn reason(candidates: &[Candidate<'_>], chosen: usize) -> String {
    let Some(pick) = candidates.get(chosen) else {
        return String::new();
    };
    if candidates.len() == 1 {
        return if pick.sms {
            "the only port of this modem that answers AT; it takes SMS commands".to_owned()
        } else {
            "the only port of this modem that answers AT, but AT+CPMS?/AT+CMGF? failed on it: \
             check the SIM (PIN, inserted)"
                .to_owned()
        };
    }
    let mut why = vec![format!(
        "{} of this modem's ports answer AT",
        candidates.len()
    )];
    if pick.sms && candidates.iter().any(|c| !c.sms) {
        why.push("only some take SMS commands (AT+CPMS?, AT+CMGF?); this one does".to_owned());
    }
    match (pick.interface, pick.driver) {
        (Some(0), Some("cdc_acm")) => {
            why.push("interface 0 is the primary AT port on CDC-ACM modems".to_owned());
        }
        (Some(n), Some(_)) if candidates.iter().any(|c| c.interface == Some(0)) => {
            why.push(format!(
                "interface {n} is preferred over interface 0, which is the PPP data port on \
                 usb-serial dongles (Huawei: +CMTI arrives on the PCUI port)"
            ))
        }
        (Some(n), _) => why.push(format!("lowest interface number ({n})")),
        _ => why.push("first by path".to_owned()),
    }
    why.join("; ")
}

/// Groups the answering ports into modems (by IMEI, else ICCID), marks each modem's
/// recommended port, and returns the modems in port order.
fn group_modems(ports: &mut [ScannedPort]) -> Vec<FoundModem> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, scanned) in ports.iter().enumerate() {
        if scanned.answer.status != PortStatus::Answers {
            continue;
        }
        let key = match (
            &scanned.answer.identity.imei,
            &scanned.answer.identity.iccid,
        ) {
            (Some(imei), _) => format!("imei:{imei}"),
            (None, Some(iccid)) => format!("iccid:{iccid}"),
            (None, None) => format!("path:{}", scanned.port.path.display()),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(index),
            None => groups.push((key, vec![index])),
        }
    }
    let mut modems = Vec::new();
    for (_, members) in groups {
        let candidates: Vec<Candidate<'_>> = members
            .iter()
            .filter_map(|&i| ports.get(i))
            .map(|p| Candidate {
                path: &p.port.path,
                sms: p.answer.sms,
                interface: p.port.usb.as_ref().and_then(|u| u.interface),
                driver: p.port.driver.as_deref(),
            })
            .collect();
        let Some(chosen) = choose_sms_port(&candidates) else {
            continue;
        };
        let why = reason(&candidates, chosen);
        let Some(&port_index) = members.get(chosen) else {
            continue;
        };
        let others: Vec<PathBuf> = members
            .iter()
            .filter(|&&i| i != port_index)
            .filter_map(|&i| ports.get(i).map(|p| p.port.path.clone()))
            .collect();
        let Some(pick) = ports.get_mut(port_index) else {
            continue;
        };
        pick.recommended = true;
        modems.push(FoundModem {
            device: pick.port.stable_path().to_owned(),
            path: pick.port.path.clone(),
            manufacturer: pick.answer.identity.manufacturer.clone(),
            model: pick.answer.identity.model.clone(),
            imei: pick.answer.identity.imei.clone(),
            iccid: pick.answer.identity.iccid.clone(),
            sms: pick.answer.sms,
            other_ports: others,
            reason: why,
            usb_ids: pick
                .port
                .usb
                .as_ref()
                .map(|u| (u.vendor_id.clone(), u.product_id.clone())),
        });
    }
    modems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate<'a>(path: &'a Path, sms: bool, interface: u8, driver: &'a str) -> Candidate<'a> {
        Candidate {
            path,
            sms,
            interface: Some(interface),
            driver: Some(driver),
        }
    }

    #[test]
    fn a_port_that_takes_sms_commands_beats_one_that_only_answers_at() {
        let (a, b) = (Path::new("/dev/ttyUSB2"), Path::new("/dev/ttyUSB0"));
        let ports = [
            candidate(a, false, 2, "option"),
            candidate(b, true, 0, "option"),
        ];
        assert_eq!(choose_sms_port(&ports), Some(1));
        assert!(reason(&ports, 1).contains("this one does"));
    }

    #[test]
    fn on_usb_serial_dongles_interface_0_comes_last_but_on_cdc_acm_first() {
        let (a, b, c) = (
            Path::new("/dev/ttyUSB0"),
            Path::new("/dev/ttyUSB2"),
            Path::new("/dev/ttyUSB3"),
        );
        let huawei = [
            candidate(a, true, 0, "option"),
            candidate(b, true, 2, "option"),
        ];
        assert_eq!(choose_sms_port(&huawei), Some(1));
        assert!(reason(&huawei, 1).contains("PPP"), "{}", reason(&huawei, 1));
        let quectel = [
            candidate(c, true, 3, "option"),
            candidate(b, true, 2, "option"),
        ];
        assert_eq!(choose_sms_port(&quectel), Some(1));
        let (acm0, acm2) = (Path::new("/dev/ttyACM0"), Path::new("/dev/ttyACM2"));
        let acm = [
            candidate(acm2, true, 2, "cdc_acm"),
            candidate(acm0, true, 0, "cdc_acm"),
        ];
        assert_eq!(choose_sms_port(&acm), Some(1));
        assert_eq!(choose_sms_port(&[]), None);
    }

    #[test]
    fn names_sort_naturally_and_paths_normalise() {
        let mut names = vec!["ttyUSB10", "ttyACM0", "ttyUSB9", "ttyS0"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(names, ["ttyACM0", "ttyS0", "ttyUSB9", "ttyUSB10"]);
        assert_eq!(
            normalize(Path::new("/dev/serial/by-id/../../ttyUSB0")),
            PathBuf::from("/dev/ttyUSB0")
        );
    }

    /// A modem at the wrong baud rate: every command gets noise back, never a line.
    fn noisy_modem() -> BoxedIo {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut theirs) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok(n) = theirs.read(&mut buf).await {
                let noise = [0xF8, 0x80, 0x00, 0xFE, 0x86];
                if n == 0 || theirs.write_all(&noise).await.is_err() {
                    break;
                }
            }
        });
        Box::new(ours)
    }

    /// The daemon's init meets the same modem: its "no answer" error carries the hint.
    #[tokio::test(start_paused = true)]
    async fn init_says_wrong_baud_rate_when_only_noise_comes_back() {
        let options = crate::ProbeOptions::default();
        let error = crate::probe_with(noisy_modem(), "/dev/ttyS0", &options)
            .await
            .expect_err("noise is no answer");
        assert!(
            matches!(error, crate::ModemError::NoAnswer { garbled: true, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("wrong baud rate?"), "{error}");
    }

    #[tokio::test]
    async fn a_port_that_answers_noise_is_reported_as_a_wrong_baud_rate() {
        let options = ScanOptions {
            answer_timeout: Duration::from_millis(300),
            ..ScanOptions::default()
        };
        let answer = query_io(noisy_modem(), "/dev/ttyS0", &options).await;
        assert_eq!(answer.status, PortStatus::Garbled, "{answer:?}");
        assert!(
            answer
                .error
                .as_deref()
                .is_some_and(|e| e.contains("wrong baud rate")),
            "{answer:?}"
        );
    }
}
