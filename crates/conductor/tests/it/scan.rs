//! `conductor modem scan` and modems found by IMEI, end to end (issue 10, "Finding the modem";
//! issue 8, "stable modem identity").
//!
//! Real sysfs and `/dev/serial/by-id` cannot be staged in a test, so each test builds a
//! fixture of them in a temp folder (the symlink layout the kernel gives a Huawei E3372 stick
//! with three usb-serial interfaces, and a CDC-ACM modem) whose device nodes are links to the
//! ptys of real `conductor sim` processes, and points the binary at it with the hidden
//! `--sys-root`/`--dev-root`/`--proc-root` options or the `CONDUCTOR_*_ROOT` variables.

use crate::support::{DaemonProcess, VirtualModemProcess, conductor, poll};
use serde_json::{Value, json};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A pty whose master nobody reads: the port of a modem that is off, or a GPS/diagnostics
/// interface that ignores AT.
struct SilentPort {
    _master: nix::pty::PtyMaster,
    path: String,
}

impl SilentPort {
    fn open() -> Self {
        use nix::fcntl::OFlag;
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).expect("openpt");
        nix::pty::grantpt(&master).expect("grantpt");
        nix::pty::unlockpt(&master).expect("unlockpt");
        let path = nix::pty::ptsname_r(&master).expect("ptsname");
        Self {
            _master: master,
            path,
        }
    }
}

/// A fixture of `/sys`, `/dev` and `/proc` in a temp folder.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let host = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for sub in [
            "sys/class/tty",
            "dev/serial/by-id",
            "proc",
            "sys/bus/usb/drivers",
        ] {
            std::fs::create_dir_all(host.dir.path().join(sub)).expect("mkdir");
        }
        host
    }

    fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }

    fn dev(&self) -> PathBuf {
        self.dir.path().join("dev")
    }

    fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, format!("{text}\n")).expect("write");
    }

    fn link(target: &Path, at: &Path) {
        std::fs::create_dir_all(at.parent().expect("parent")).expect("mkdir");
        let _ = std::fs::remove_file(at);
        symlink(target, at).expect("symlink");
    }

    /// A USB device `bus_path` (`1-1`) with its ids and strings.
    fn usb_device(&self, bus_path: &str, vendor: &str, product: &str, name: &str) -> PathBuf {
        let device = self
            .sys()
            .join("devices/pci0000:00/0000:00:14.0/usb1")
            .join(bus_path);
        Self::write(&device.join("idVendor"), vendor);
        Self::write(&device.join("idProduct"), product);
        Self::write(&device.join("manufacturer"), name);
        Self::write(&device.join("product"), name);
        Self::write(&device.join("serial"), "0123456789ABCDEF");
        device
    }

    /// Interface `number` of `device`, bound to `driver`.
    fn interface(&self, device: &Path, number: u8, driver: &str) -> PathBuf {
        let name = format!(
            "{}:1.{number}",
            device.file_name().and_then(|n| n.to_str()).expect("name")
        );
        let interface = device.join(name);
        Self::write(
            &interface.join("bInterfaceNumber"),
            &format!("{number:02x}"),
        );
        let driver_dir = self.sys().join("bus/usb/drivers").join(driver);
        std::fs::create_dir_all(&driver_dir).expect("driver dir");
        Self::link(&driver_dir, &interface.join("driver"));
        interface
    }

    /// A tty `name` whose device is `device` (the interface for cdc_acm, a usb-serial port
    /// object below it otherwise), with its `/dev` node pointing at `target` and by-id `by_id`.
    fn tty(&self, name: &str, device: &Path, target: &str, by_id: Option<&str>) {
        let class_dir = device.join("tty").join(name);
        std::fs::create_dir_all(&class_dir).expect("class dir");
        Self::link(device, &class_dir.join("device"));
        Self::link(&class_dir, &self.sys().join("class/tty").join(name));
        self.node(name, target, by_id);
    }

    /// A usb-serial port `name` (ttyUSBn) under `interface`.
    fn usb_serial(&self, name: &str, interface: &Path, target: &str, by_id: Option<&str>) {
        let port = interface.join(name);
        std::fs::create_dir_all(&port).expect("port dir");
        let driver = self.sys().join("bus/usb-serial/drivers/option1");
        std::fs::create_dir_all(&driver).expect("driver");
        Self::link(&driver, &port.join("driver"));
        self.tty(name, &port, target, by_id);
    }

    fn node(&self, name: &str, target: &str, by_id: Option<&str>) {
        Self::link(Path::new(target), &self.dev().join(name));
        if let Some(by_id) = by_id {
            Self::link(
                Path::new(&format!("../../{name}")),
                &self.dev().join("serial/by-id").join(by_id),
            );
        }
    }

    /// Removes tty `name` from sysfs and `/dev` (unplugged, or renumbered).
    fn remove_tty(&self, name: &str) {
        let _ = std::fs::remove_file(self.sys().join("class/tty").join(name));
        let _ = std::fs::remove_file(self.dev().join(name));
    }

    /// A process `name` in the fixture `/proc`, holding `open` files.
    fn process(&self, pid: u32, name: &str, open: &[&Path]) {
        let base = self.proc().join(pid.to_string());
        Self::write(&base.join("comm"), name);
        std::fs::create_dir_all(base.join("fd")).expect("fd dir");
        for (fd, target) in open.iter().enumerate() {
            Self::link(target, &base.join("fd").join(fd.to_string()));
        }
    }

    fn roots(&self) -> Vec<String> {
        vec![
            "--sys-root".into(),
            self.sys().display().to_string(),
            "--dev-root".into(),
            self.dev().display().to_string(),
            "--proc-root".into(),
            self.proc().display().to_string(),
        ]
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "CONDUCTOR_SYS_ROOT".into(),
                self.sys().display().to_string(),
            ),
            (
                "CONDUCTOR_DEV_ROOT".into(),
                self.dev().display().to_string(),
            ),
            (
                "CONDUCTOR_PROC_ROOT".into(),
                self.proc().display().to_string(),
            ),
        ]
    }
}

fn pty_sim(extra: &[&str]) -> (VirtualModemProcess, String) {
    let mut args = vec!["--pty"];
    args.extend_from_slice(extra);
    let sim = VirtualModemProcess::start(&args);
    let pty = sim.pty().expect("the sim printed its pty").to_owned();
    // The node points at the pty itself, as /dev/ttyUSBn is the device, not a link to it.
    let real = std::fs::canonicalize(&pty)
        .expect("the pty link resolves")
        .display()
        .to_string();
    (sim, real)
}

fn imei_of(pty: &str) -> String {
    let output = conductor(&["modem", "probe", pty, "--json"], "");
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("probe prints JSON");
    report["imei"].as_str().expect("an IMEI").to_owned()
}

fn port<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("port {name} listed: {report:#}"))
}

#[test]
fn scan_lists_usb_ports_with_by_id_names_and_recommends_the_huawei_pcui_port() {
    // The E3372's interface 0 (PPP "Modem") and 2 (PCUI) both answer AT with the same IMEI;
    // interface 1 (diagnostics) is silent.
    let (_modem_port, modem_pty) = pty_sim(&["--personality", "huawei_e3372", "--seed", "7"]);
    let (_pcui_port, pcui_pty) = pty_sim(&["--personality", "huawei_e3372", "--seed", "7"]);
    let (_telit, acm_pty) = pty_sim(&["--personality", "generic", "--seed", "8"]);
    let diag = SilentPort::open();
    let uart = SilentPort::open();
    let host = Host::new();
    let huawei = host.usb_device("1-1", "12d1", "1506", "HUAWEI_MOBILE");
    for (number, name, target) in [
        (0, "ttyUSB0", &modem_pty),
        (1, "ttyUSB1", &diag.path),
        (2, "ttyUSB2", &pcui_pty),
    ] {
        let interface = host.interface(&huawei, number, "option");
        let by_id = format!("usb-HUAWEI_MOBILE_HUAWEI_MOBILE-if{number:02}-port0");
        host.usb_serial(name, &interface, target, Some(&by_id));
    }
    let telit = host.usb_device("1-2", "1bc7", "1201", "Telit");
    let acm = host.interface(&telit, 0, "cdc_acm");
    host.tty("ttyACM0", &acm, &acm_pty, Some("usb-Telit_LE910-if00"));
    // Interface 2 of the Telit is held by minicom: listed busy, never opened.
    let held = host.interface(&telit, 2, "cdc_acm");
    let busy_node = host.dir.path().join("busy-node");
    std::fs::write(&busy_node, "").expect("node");
    host.tty("ttyACM1", &held, &busy_node.display().to_string(), None);
    host.process(4242, "minicom", &[&host.dev().join("ttyACM1")]);
    host.process(812, "ModemManager", &[]);
    // A real UART with nothing on it, a phantom 8250 slot (type 0) and a virtual console.
    let platform = host.sys().join("devices/platform/serial8250");
    std::fs::create_dir_all(&platform).expect("platform");
    host.tty("ttyS1", &platform, &uart.path, None);
    host.tty("ttyS0", &platform, &uart.path, None);
    Host::write(&host.sys().join("class/tty/ttyS0/type"), "0");
    std::fs::create_dir_all(host.sys().join("devices/virtual/tty/tty0")).expect("tty0");
    Host::link(
        &host.sys().join("devices/virtual/tty/tty0"),
        &host.sys().join("class/tty/tty0"),
    );

    let started = Instant::now();
    let mut args = vec!["modem", "scan", "--json", "--timeout", "2s"];
    let roots = host.roots();
    args.extend(roots.iter().map(String::as_str));
    let output = conductor(&args, "");
    let took = started.elapsed();
    assert!(output.status.success(), "{output:?}");
    assert!(
        took < Duration::from_secs(12),
        "ports are probed in parallel with a 2 s timeout; the scan took {took:?}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("scan prints JSON");

    let names: Vec<&str> = report["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ttyACM0", "ttyACM1", "ttyS1", "ttyUSB0", "ttyUSB1", "ttyUSB2"
        ],
        "only ports with a device; no phantom 8250 slot, no virtual console"
    );
    let pcui = port(&report, "ttyUSB2");
    assert_eq!(pcui["status"], "answers", "{pcui:#}");
    assert_eq!(pcui["usb"]["vendor_id"], "12d1");
    assert_eq!(pcui["usb"]["product_id"], "1506");
    assert_eq!(pcui["usb"]["interface"], 2);
    assert_eq!(pcui["driver"], "option");
    let pcui_by_id = host
        .dev()
        .join("serial/by-id/usb-HUAWEI_MOBILE_HUAWEI_MOBILE-if02-port0");
    assert_eq!(pcui["by_id"][0], pcui_by_id.display().to_string());
    assert_eq!(pcui["sms"], true);
    assert_eq!(pcui["recommended"], true);
    let modem_if = port(&report, "ttyUSB0");
    assert_eq!(modem_if["status"], "answers");
    assert_eq!(modem_if["imei"], pcui["imei"], "one stick, one IMEI");
    assert_eq!(modem_if["recommended"], false);
    for silent in ["ttyUSB1", "ttyS1"] {
        let entry = port(&report, silent);
        assert_eq!(entry["status"], "silent", "{entry:#}");
        assert!(
            entry["elapsed_ms"].as_u64().is_some_and(|ms| ms < 4_000),
            "a silent port costs one timeout: {entry:#}"
        );
    }
    let acm0 = port(&report, "ttyACM0");
    assert_eq!(acm0["status"], "answers");
    assert_eq!(acm0["driver"], "cdc_acm");
    assert_eq!(acm0["recommended"], true);
    assert_ne!(acm0["imei"], pcui["imei"]);
    let busy = port(&report, "ttyACM1");
    assert_eq!(busy["status"], "busy", "{busy:#}");
    assert_eq!(busy["holders"][0]["name"], "minicom");
    assert!(
        busy["error"]
            .as_str()
            .is_some_and(|e| e.contains("pid 4242"))
    );

    let modems = report["modems"].as_array().expect("modems");
    assert_eq!(modems.len(), 2, "{modems:#?}");
    let stick = modems
        .iter()
        .find(|m| m["imei"] == pcui["imei"])
        .expect("the stick");
    assert_eq!(stick["device"], pcui_by_id.display().to_string());
    assert!(
        stick["reason"]
            .as_str()
            .is_some_and(|r| r.contains("interface 0")),
        "{stick:#}"
    );
    assert_eq!(report["modem_manager"]["pid"], 812);
    let snippet = &report["config"]["modems"];
    assert!(
        snippet.as_array().is_some_and(|m| m
            .iter()
            .any(|entry| { entry["device"] == stick["device"] && entry["imei"] == pcui["imei"] })),
        "{snippet:#}"
    );

    // The text form says the same, with the ModemManager rule for the real ids.
    let mut args = vec!["modem", "scan"];
    args.extend(roots.iter().map(String::as_str));
    let text = conductor(&args, "");
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success(), "{text:?}");
    assert!(stdout.contains("<- use for SMS"), "{stdout}");
    assert!(stdout.contains("\"imei\""), "{stdout}");
    assert!(
        stdout.contains(
            "ATTRS{idVendor}==\"12d1\", ATTRS{idProduct}==\"1506\", ENV{ID_MM_DEVICE_IGNORE}=\"1\""
        ),
        "{stdout}"
    );
}

#[test]
fn scan_of_named_ptys_reports_the_answering_ones_and_the_silent_one_within_the_timeout() {
    let (_a, a_pty) = pty_sim(&["--seed", "21"]);
    let (_b, b_pty) = pty_sim(&["--personality", "quectel_ec25", "--seed", "22"]);
    let silent = SilentPort::open();
    let empty = tempfile::tempdir().expect("temp dir");
    let root = empty.path().display().to_string();
    let started = Instant::now();
    let output = conductor(
        &[
            "modem",
            "scan",
            "--json",
            "--timeout",
            "1s",
            "--sys-root",
            &root,
            "--proc-root",
            &root,
            &a_pty,
            &silent.path,
            &b_pty,
        ],
        "",
    );
    assert!(output.status.success(), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let ports = report["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 3);
    assert_eq!(ports[0]["status"], "answers");
    assert_eq!(ports[0]["imei"].as_str().map(str::len), Some(15));
    assert_eq!(ports[1]["status"], "silent");
    assert_eq!(ports[2]["status"], "answers");
    assert_eq!(ports[2]["manufacturer"], "Quectel");
    assert_ne!(ports[0]["imei"], ports[2]["imei"]);
    assert_eq!(report["modems"].as_array().map(Vec::len), Some(2));

    // Nothing answering at all: exit 1, saying what to check.
    let output = conductor(
        &[
            "modem",
            "scan",
            "--timeout",
            "1s",
            "--sys-root",
            &root,
            "--proc-root",
            &root,
            &silent.path,
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("silent"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no port answers AT"));
}

fn health(db: &Path) -> Value {
    let output = conductor(&["--db", &db.display().to_string(), "health", "--json"], "");
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn check<'a>(health: &'a Value, name: &str) -> Option<&'a Value> {
    health["checks"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == format!("modem {name}"))
}

#[test]
fn a_modem_named_by_imei_is_found_among_two_and_again_after_renumbering() {
    let (_other, other_pty) = pty_sim(&["--seed", "31"]);
    let (wanted, wanted_pty) = pty_sim(&["--seed", "32"]);
    let imei = imei_of(&wanted_pty);
    let host = Host::new();
    let device = host.usb_device("1-3", "1e0e", "9001", "SIMCOM");
    let if2 = host.interface(&device, 2, "cdc_acm");
    let if3 = host.interface(&device, 3, "cdc_acm");
    host.tty("ttyACM0", &if2, &other_pty, None);
    host.tty("ttyACM1", &if3, &wanted_pty, None);

    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("gw.db");
    let config = dir.path().join("config.json");
    let log = dir.path().join("daemon.log");
    let file = json!({
        "database": {"path": db},
        "modems": [
            {"id": "byimei", "imei": imei},
            {"id": "ghost", "imei": "350000000000007"}
        ],
        "http": {"listen": "127.0.0.1:0"},
    });
    std::fs::write(&config, file.to_string()).expect("config");
    let env = host.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut daemon = DaemonProcess::start_with_env(&config, &log, &env);

    let found = poll(Duration::from_secs(40), Duration::from_millis(200), || {
        let health = health(&db);
        let ready = check(&health, "byimei").is_some_and(|c| c["ok"] == true);
        let ghost = check(&health, "ghost")
            .and_then(|c| c["detail"].as_str())
            .unwrap_or_default()
            .to_owned();
        if ready && ghost.contains("no port answers with IMEI 350000000000007") {
            Ok(ghost)
        } else {
            Err(format!("{health:#}\n{}", daemon.log_tail(20)))
        }
    })
    .unwrap_or_else(|seen| panic!("the IMEI modem ready and the ghost down: {seen}"));
    assert!(found.starts_with("down"), "{found}");
    assert!(found.contains("conductor modem scan"), "{found}");
    let log_text = daemon.log();
    assert!(
        log_text.contains(&format!(
            "IMEI {imei} found on {}",
            host.dev().join("ttyACM1").display()
        )),
        "{log_text}"
    );

    // Renumbering: the modem goes away and comes back as ttyACM2 on a new pty.
    drop(wanted);
    host.remove_tty("ttyACM1");
    let (_again, again_pty) = pty_sim(&["--seed", "32"]);
    host.tty("ttyACM2", &if3, &again_pty, None);
    let moved = host.dev().join("ttyACM2").display().to_string();
    poll(Duration::from_secs(60), Duration::from_millis(200), || {
        let log_text = daemon.log();
        let ready = check(&health(&db), "byimei").is_some_and(|c| c["ok"] == true);
        if ready && log_text.contains(&format!("IMEI {imei} found on {moved}")) {
            Ok(())
        } else {
            Err(daemon.log_tail(20))
        }
    })
    .unwrap_or_else(|seen| panic!("found again on {moved} after the reconnect: {seen}"));
    assert!(daemon.running());
}

#[test]
fn modem_manager_is_warned_about_at_start_up_with_the_udev_rule() {
    let (_sim, pty) = pty_sim(&["--seed", "41"]);
    let host = Host::new();
    let device = host.usb_device("1-4", "12d1", "1506", "HUAWEI_MOBILE");
    let interface = host.interface(&device, 2, "option");
    host.usb_serial("ttyUSB2", &interface, &pty, Some("usb-HUAWEI-if02-port0"));
    host.process(812, "ModemManager", &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("gw.db");
    let config = dir.path().join("config.json");
    let log = dir.path().join("daemon.log");
    let by_id = host.dev().join("serial/by-id/usb-HUAWEI-if02-port0");
    let file = json!({
        "database": {"path": db},
        "modems": [{"id": "m1", "device": by_id}],
        "http": {"listen": "127.0.0.1:0"},
    });
    std::fs::write(&config, file.to_string()).expect("config");
    let env = host.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let daemon = DaemonProcess::start_with_env(&config, &log, &env);
    poll(Duration::from_secs(20), Duration::from_millis(100), || {
        let text = daemon.log();
        if text.contains("ModemManager is running (ModemManager (pid 812))")
            && text.contains("ATTRS{idVendor}==\"12d1\", ATTRS{idProduct}==\"1506\"")
            && text.contains("77-conductor-modemmanager-ignore.rules")
        {
            Ok(())
        } else {
            Err(text)
        }
    })
    .unwrap_or_else(|log| panic!("the start-up log warns with the rule: {log}"));
}

#[test]
fn service_install_writes_the_modemmanager_ignore_rule_for_the_configured_dongle_and_uninstall_removes_it()
 {
    let host = Host::new();
    let device = host.usb_device("1-4", "12d1", "1506", "HUAWEI_MOBILE");
    let interface = host.interface(&device, 2, "option");
    // The tty node only has to exist: the rule comes from sysfs, nothing is opened.
    host.usb_serial(
        "ttyUSB2",
        &interface,
        "/dev/null",
        Some("usb-HUAWEI-if02-port0"),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (units, rules) = (dir.path().join("units"), dir.path().join("rules"));
    for d in [&units, &rules] {
        std::fs::create_dir(d).expect("dir");
    }
    let config = dir.path().join("config.json");
    let by_id = host.dev().join("serial/by-id/usb-HUAWEI-if02-port0");
    let file = json!({
        "database": {"path": dir.path().join("gw.db")},
        "modems": [{"id": "m1", "device": by_id}],
    });
    std::fs::write(&config, file.to_string()).expect("config");
    let env = host.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (config, units, rules) = (
        config.display().to_string(),
        units.display().to_string(),
        rules.display().to_string(),
    );
    let install = crate::support::conductor_env(
        &[
            "service",
            "install",
            "--user",
            "root",
            "--config",
            &config,
            "--modemmanager-ignore",
            "--unit-dir",
            &units,
            "--udev-dir",
            &rules,
            "--no-systemctl",
        ],
        &env,
    );
    assert!(install.status.success(), "{install:?}");
    let rule_path = Path::new(&rules).join("77-conductor-modemmanager-ignore.rules");
    let rule = std::fs::read_to_string(&rule_path).expect("the rule was written");
    assert!(
        rule.contains(
            "ATTRS{idVendor}==\"12d1\", ATTRS{idProduct}==\"1506\", ENV{ID_MM_DEVICE_IGNORE}=\"1\""
        ),
        "{rule}"
    );
    let uninstall = crate::support::conductor_env(
        &[
            "service",
            "uninstall",
            "--unit-dir",
            &units,
            "--udev-dir",
            &rules,
            "--no-systemctl",
        ],
        &env,
    );
    assert!(uninstall.status.success(), "{uninstall:?}");
    assert!(!rule_path.exists(), "uninstall removes the rule it wrote");
}
