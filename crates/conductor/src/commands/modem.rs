//! `conductor modem probe|at|scan`: the first things an operator does with a new modem.
//!
//! All three open ports themselves, so they refuse politely when a port is busy (a running
//! daemon or ModemManager holds it): the error names what to stop. `scan` does not even open a
//! port another process holds. Also here: how the config's `imei`/`iccid` become the driver's
//! [`Locate`], and the start-up warning about ModemManager, since both speak the scan's words.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{ModemCommand, ScanArgs};
use crate::config::{Config, ModemSection};
use anyhow::{Context, Result, bail};
use conductor_gateway::ModemSettings;
use conductor_modem::host::{self, HostRoots};
use conductor_modem::scan::{self, PortStatus, ScanOptions, ScanReport, SerialPort};
use conductor_modem::{Console, Locate, ModemIdentity, ProbeOptions, SerialSettings};

/// Runs `conductor modem ...`.
pub fn run(command: ModemCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            ModemCommand::Probe {
                device,
                baud_rate,
                json,
            } => probe(&device, baud_rate, json).await,
            ModemCommand::At {
                device,
                commands,
                baud_rate,
            } => at(&device, &commands, baud_rate).await,
            ModemCommand::Scan(args) => run_scan(args).await,
        }
    })
}

fn options(baud_rate: u32) -> ProbeOptions {
    ProbeOptions {
        serial: SerialSettings {
            baud_rate,
            ..SerialSettings::default()
        },
        ..ProbeOptions::default()
    }
}

async fn probe(device: &str, baud_rate: u32, json: bool) -> Result<()> {
    let report = conductor_modem::probe(device, &options(baud_rate))
        .await
        .with_context(|| format!("no usable answer from {device}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("device        {device}");
    println!("manufacturer  {}", text(&report.identity.manufacturer));
    println!("model         {}", text(&report.identity.model));
    println!("revision      {}", text(&report.identity.revision));
    println!("IMEI          {}", text(&report.identity.imei));
    println!("IMSI          {}", text(&report.identity.imsi));
    println!("ICCID         {}", text(&report.identity.iccid));
    println!("SIM           {}", report.sim);
    println!(
        "signal        {}",
        report
            .signal_dbm
            .map_or("unknown".into(), |dbm| format!("{dbm} dBm"))
    );
    println!("registration  {}", report.registration);
    println!("operator      {}", text(&report.operator));
    println!(
        "SMSC          {}",
        report
            .smsc
            .clone()
            .unwrap_or_else(|| "none: sends will fail with CMS 330 until one is set".into())
    );
    for memory in &report.storage {
        println!("storage {:<5} {}", memory.memory, memory.capacity());
    }
    Ok(())
}

async fn at(device: &str, commands: &[String], baud_rate: u32) -> Result<()> {
    let mut console = Console::open(device, &options(baud_rate))
        .await
        .with_context(|| format!("cannot open {device}"))?;
    let mut refused = 0;
    for line in commands {
        println!("> {line}");
        let (response, urcs) = match console.command(line).await {
            Ok(answer) => answer,
            Err(error) => {
                refused += 1;
                println!("! {error}");
                continue;
            }
        };
        for urc in urcs {
            println!("(unsolicited) {urc:?}");
        }
        for info in &response.lines {
            println!("{}", info.text);
            if let Some(pdu) = &info.pdu {
                println!("{pdu}");
            }
        }
        println!("{}", response.result);
        if !response.result.is_ok() {
            refused += 1;
        }
    }
    if refused > 0 {
        bail!(
            "{refused} of {} command(s) did not end in OK",
            commands.len()
        );
    }
    Ok(())
}

/// Makes a modem named by `imei`/`iccid` in the config one whose port is looked up at every
/// (re)connect: its device becomes a label (`imei:353…`) unless a `device` is given too, which
/// is then only the first port tried. Ports of modems named by path are never probed for it.
pub fn locate_by_identity(
    settings: &mut ModemSettings,
    modem: &ModemSection,
    all: &[ModemSection],
) {
    if modem.imei.is_none() && modem.iccid.is_none() {
        return;
    }
    let identity = ModemIdentity {
        imei: modem.imei.clone(),
        iccid: modem.iccid.clone(),
    };
    let device = modem.device.trim();
    settings.modem.device = if device.is_empty() {
        identity.label()
    } else {
        device.to_owned()
    };
    let mut locate = Locate::new(identity);
    locate.hint = Some(device.to_owned()).filter(|d| !d.is_empty());
    locate.avoid = all
        .iter()
        .filter(|other| other.id != modem.id && other.imei.is_none() && other.iccid.is_none())
        .map(|other| other.device.clone())
        .filter(|d| !d.trim().is_empty())
        .collect();
    settings.modem.locate = Some(locate);
}

/// The start-up log's word on the host: a running ModemManager, with the udev rule for each
/// configured USB modem it can identify.
pub fn warn_about_host(config: &Config) {
    let roots = HostRoots::from_env();
    let Some(manager) = host::modem_manager(&roots) else {
        return;
    };
    let ids: Vec<(String, String)> = config
        .file
        .modems
        .iter()
        .filter(|m| !m.device.trim().is_empty() && !m.device.contains("://"))
        .filter_map(|m| scan::usb_ids_of(&roots, Path::new(&m.device)))
        .collect();
    tracing::warn!("{}", host::modem_manager_advice(&manager, &ids));
}

/// The roots to read: a hidden option, else the `CONDUCTOR_*_ROOT` variable, else the real one.
fn scan_roots(args: &ScanArgs) -> HostRoots {
    let from_env = HostRoots::from_env();
    HostRoots {
        sys: args.sys_root.clone().unwrap_or(from_env.sys),
        dev: args.dev_root.clone().unwrap_or(from_env.dev),
        proc: args.proc_root.clone().unwrap_or(from_env.proc),
    }
}

/// The ports to probe: those named on the command line (with what sysfs knows about them),
/// else every port of the machine.
fn ports_to_scan(roots: &HostRoots, devices: &[String]) -> Vec<SerialPort> {
    let all = scan::list_ports(roots);
    if devices.is_empty() {
        return all;
    }
    devices
        .iter()
        .map(|device| {
            let name = scan::tty_name(roots, Path::new(device));
            all.iter()
                .find(|p| Some(&p.name) == name.as_ref() || p.path == Path::new(device))
                .cloned()
                .unwrap_or_else(|| SerialPort {
                    name: device.clone(),
                    path: PathBuf::from(device),
                    by_id: Vec::new(),
                    driver: None,
                    usb: None,
                })
        })
        .collect()
}

async fn run_scan(args: ScanArgs) -> Result<()> {
    let roots = scan_roots(&args);
    let timeout: Duration = humantime::parse_duration(&args.timeout)
        .with_context(|| format!("--timeout {}: expected a duration such as 2s", args.timeout))?;
    let options = ScanOptions {
        serial: SerialSettings {
            baud_rate: args.baud_rate,
            ..SerialSettings::default()
        },
        answer_timeout: timeout,
        command_timeout: timeout,
        ..ScanOptions::default()
    };
    let ports = ports_to_scan(&roots, &args.devices);
    if ports.is_empty() {
        bail!(
            "no serial ports found{}: is the modem plugged in? A USB stick in storage mode needs \
             usb_modeswitch first (`lsusb` shows it); a HiLink stick has no AT port at all",
            if cfg!(target_os = "linux") {
                format!(" in {}", roots.sys.join("class/tty").display())
            } else {
                String::new()
            }
        );
    }
    let report = scan::scan(&roots, ports, &options).await;
    let snippet = config_snippet(&report);
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("config".into(), snippet);
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_report(&report, &snippet, timeout)?;
    }
    if report.modems.is_empty() {
        bail!(
            "no port answers AT: check the modem is powered and switched to modem mode, that the \
             baud rate ({}) is right for a UART module, and the notes above",
            args.baud_rate
        );
    }
    Ok(())
}

/// `{"modems": [...]}` naming each modem found by its stable port and its IMEI, in the config
/// file's format.
fn config_snippet(report: &ScanReport) -> serde_json::Value {
    let modems: Vec<serde_json::Value> = report
        .modems
        .iter()
        .enumerate()
        .map(|(i, modem)| {
            let mut entry = serde_json::Map::new();
            entry.insert("id".into(), format!("modem{}", i + 1).into());
            entry.insert("device".into(), modem.device.display().to_string().into());
            match (&modem.imei, &modem.iccid) {
                (Some(imei), _) => {
                    entry.insert("imei".into(), imei.clone().into());
                }
                (None, Some(iccid)) => {
                    entry.insert("iccid".into(), iccid.clone().into());
                }
                (None, None) => {}
            }
            serde_json::Value::Object(entry)
        })
        .collect();
    serde_json::json!({ "modems": modems })
}

fn print_report(report: &ScanReport, snippet: &serde_json::Value, timeout: Duration) -> Result<()> {
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    for scanned in &report.ports {
        let port = &scanned.port;
        let answer = &scanned.answer;
        let verdict = match answer.status {
            PortStatus::Answers => format!(
                "answers AT: {} {}, IMEI {}, ICCID {}, SMS commands {}",
                text(&answer.identity.manufacturer),
                text(&answer.identity.model),
                text(&answer.identity.imei),
                text(&answer.identity.iccid),
                if answer.sms { "OK" } else { "refused" }
            ),
            PortStatus::Silent => format!(
                "silent: no answer to AT within {} (not an AT port, or the modem is off)",
                humantime::format_duration(timeout)
            ),
            PortStatus::Garbled | PortStatus::Busy | PortStatus::Unavailable => format!(
                "{}: {}",
                match answer.status {
                    PortStatus::Garbled => "garbled",
                    PortStatus::Busy => "busy",
                    _ => "cannot open",
                },
                text(&answer.error)
            ),
        };
        let mark = if scanned.recommended {
            "  <- use for SMS"
        } else {
            ""
        };
        println!("{}  {verdict}{mark}", port.path.display());
        for link in &port.by_id {
            println!("    by-id   {}", link.display());
        }
        if let Some(usb) = &port.usb {
            let mut line = format!("    usb     {}:{}", usb.vendor_id, usb.product_id);
            for name in [&usb.manufacturer, &usb.product].into_iter().flatten() {
                line.push(' ');
                line.push_str(name);
            }
            if let Some(interface) = usb.interface {
                line.push_str(&format!(", interface {interface}"));
            }
            if let Some(driver) = &port.driver {
                line.push_str(&format!(", driver {driver}"));
            }
            println!("{line}");
        } else if let Some(driver) = &port.driver {
            println!("    driver  {driver}");
        }
    }
    println!();
    if report.modems.is_empty() {
        println!("No modem found.");
    }
    for modem in &report.modems {
        println!(
            "Modem {} {} (IMEI {}, ICCID {})",
            text(&modem.manufacturer),
            text(&modem.model),
            text(&modem.imei),
            text(&modem.iccid)
        );
        println!(
            "    use {}{}",
            modem.device.display(),
            if modem.device == modem.path {
                String::new()
            } else {
                format!(" (now {})", modem.path.display())
            }
        );
        println!("    why: {}", modem.reason);
        if !modem.other_ports.is_empty() {
            let others: Vec<String> = modem
                .other_ports
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            println!(
                "    also answers AT (leave these alone): {}",
                others.join(", ")
            );
        }
    }
    if !report.modems.is_empty() {
        println!();
        println!(
            "Config snippet: put these into \"modems\" of the config file (the daemon finds each \
             modem by its IMEI, on this port or any other, also after renumbering):"
        );
        println!("{}", serde_json::to_string_pretty(snippet)?);
    }
    if let Some(manager) = &report.modem_manager {
        let ids: Vec<(String, String)> = report
            .modems
            .iter()
            .filter_map(|m| m.usb_ids.clone())
            .collect();
        println!();
        println!("Warning: {}", host::modem_manager_advice(manager, &ids));
    }
    Ok(())
}
