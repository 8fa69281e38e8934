//! `conductor service install | uninstall`: Conductor as a systemd service.
//!
//! Why the binary writes its own unit: the sandbox depends on the config (the database, log
//! and backup folders must stay writable under `ProtectSystem=strict`, the modems' device
//! classes must be allowed), and a unit written by hand drifts from it. `--print` shows the
//! unit without touching anything, for review or for configuration management.
//!
//! The unit is `Type=notify` with a watchdog: the daemon says `READY=1` once the database is
//! open and every modem's first initialisation attempt has finished, and feeds the watchdog
//! only while the gateway's loop turns (see [`crate::lifecycle`]). `systemctl reload` sends
//! SIGHUP: the config is read again and modems added or removed without a restart.
//!
//! Not here: Windows services (README, "Running as a Windows service": a wrapper such as
//! WinSW runs `conductor run`), other init systems.

use crate::cli::{ServiceCommand, ServiceInstallArgs, ServiceUninstallArgs};
use crate::config::{self, Config, Database, Overrides};
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The unit's file name.
pub const UNIT: &str = "conductor.service";

/// Where units written by an administrator live.
const UNIT_DIR: &str = "/etc/systemd/system";

/// How often the daemon must feed the watchdog. It sends `WATCHDOG=1` every half of this
/// while the gateway's loop turns (the loop turns at least every 5 s when idle).
const WATCHDOG: &str = "30s";

/// Runs `service install` or `service uninstall`.
pub fn run(command: ServiceCommand, overrides: &Overrides) -> Result<()> {
    match command {
        ServiceCommand::Install(args) => install(args, overrides),
        ServiceCommand::Uninstall(args) => uninstall(args),
    }
}

/// Everything the unit is made of, resolved from the config and the command line.
#[derive(Debug)]
pub struct UnitSpec {
    /// The running binary, absolute.
    pub binary: PathBuf,
    /// The config file, absolute.
    pub config: PathBuf,
    /// `User=`.
    pub user: String,
    /// Folders the daemon writes: the database's (SQLite puts `-wal` and `-shm` beside the
    /// file), the log file's, backups and archives.
    pub writable: BTreeSet<PathBuf>,
    /// Device classes (`/proc/devices` names) to allow besides the usual serial ones.
    pub device_classes: BTreeSet<String>,
    /// USB vendor/product ids of the configured modems, for `--modemmanager-ignore`.
    pub usb_ids: Vec<(String, String)>,
}

/// Serial device classes most modems use: USB serial (`ttyUSB`, Huawei/ZTE/Sierra sticks
/// with option/qcserial), CDC-ACM (`ttyACM`, Quectel/SIMCom in some modes, u-blox), on-board
/// UARTs (`ttyS`, HATs on `/dev/ttyAMA`, `ttyAMA`), and pseudo-terminals (`pts`: ser2net,
/// socat, `conductor sim --pty`).
const SERIAL_CLASSES: [&str; 5] = ["ttyUSB", "ttyACM", "ttyS", "ttyAMA", "pts"];

impl UnitSpec {
    /// The unit file's text.
    pub fn render(&self) -> String {
        let exec = format!(
            "{} run --config {}",
            quote(&self.binary.to_string_lossy()),
            quote(&self.config.to_string_lossy())
        );
        let mut state_dirs = Vec::new();
        let mut logs_dirs = Vec::new();
        let mut read_write = Vec::new();
        for dir in &self.writable {
            if let Some(rest) = relative_to(dir, "/var/lib") {
                state_dirs.push(rest);
            } else if let Some(rest) = relative_to(dir, "/var/log") {
                logs_dirs.push(rest);
            } else {
                read_write.push(format!("-{}", quote(&dir.to_string_lossy())));
            }
        }
        let needs_home = self
            .writable
            .iter()
            .chain([&self.binary, &self.config])
            .any(|p| is_under_home(p));
        let mut classes: BTreeSet<String> = SERIAL_CLASSES.iter().map(|c| c.to_string()).collect();
        classes.extend(self.device_classes.iter().cloned());

        let mut unit = String::new();
        let mut line = |text: &str| {
            unit.push_str(text);
            unit.push('\n');
        };
        line(&format!(
            "# Written by `conductor service install` (conductor {}). Reinstalling overwrites it:",
            env!("CARGO_PKG_VERSION")
        ));
        line("# put local changes in a drop-in (`systemctl edit conductor`).");
        line("[Unit]");
        line("Description=Conductor SMS gateway");
        line("After=network-online.target");
        line("Wants=network-online.target");
        line("");
        line("[Service]");
        line("# READY=1 once the database is open and every modem's first init attempt has");
        line("# finished (an unplugged modem does not hold the service back; it is retried).");
        line("Type=notify");
        line("NotifyAccess=main");
        line(&format!("ExecStart={exec}"));
        line("# SIGHUP: the config is read again; modems added or removed start or stop without");
        line("# a restart, the log file is reopened. Other changes are logged as restart needed.");
        line("ExecReload=/bin/kill -HUP $MAINPID");
        line("Restart=on-failure");
        line("RestartSec=5s");
        line("# Fed while the gateway's loop turns; a wedged daemon is restarted.");
        line(&format!("WatchdogSec={WATCHDOG}"));
        line("# A send in flight runs to the modem's verdict before the daemon exits.");
        line("TimeoutStopSec=90s");
        line(&format!("User={}", self.user));
        line("# Serial ports belong to the dialout group.");
        line("SupplementaryGroups=dialout");
        line("");
        line("# Sandbox: the whole file system is read-only but for the folders below.");
        line("ProtectSystem=strict");
        for dir in &state_dirs {
            line(&format!("StateDirectory={dir}"));
        }
        for dir in &logs_dirs {
            line(&format!("LogsDirectory={dir}"));
        }
        if !read_write.is_empty() {
            line(&format!("ReadWritePaths={}", read_write.join(" ")));
        }
        if needs_home {
            line("# The binary, the config or a data folder is under /home: readable, not hidden.");
            line("ProtectHome=read-only");
        } else {
            line("ProtectHome=yes");
        }
        line("PrivateTmp=yes");
        line("NoNewPrivileges=yes");
        line("CapabilityBoundingSet=");
        line("ProtectKernelTunables=yes");
        line("ProtectKernelModules=yes");
        line("ProtectKernelLogs=yes");
        line("ProtectControlGroups=yes");
        line("ProtectClock=yes");
        line("ProtectHostname=yes");
        line("# TCP modems, the HTTP API and webhooks; AF_UNIX for the journal and systemd.");
        line("# No AF_NETLINK: glibc's resolver only uses it to sort addresses and does");
        line("# without it.");
        line("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6");
        line("RestrictNamespaces=yes");
        line("RestrictRealtime=yes");
        line("RestrictSUIDSGID=yes");
        line("LockPersonality=yes");
        line("MemoryDenyWriteExecute=yes");
        line("SystemCallArchitectures=native");
        line("SystemCallFilter=@system-service");
        line(
            "# Devices: only the serial classes modems use (names from /proc/devices; the classes",
        );
        line("# of the configured devices found at install time are added). The cgroup filter");
        line("# turns a port the daemon should not touch into EPERM; PrivateDevices= is not set");
        line("# because it would hide /dev/ttyUSB* altogether. A modem on another class (e.g.");
        line("# /dev/wwan0at0) needs `DeviceAllow=char-wwan_port rw` in a drop-in.");
        line("DevicePolicy=closed");
        for class in &classes {
            line(&format!("DeviceAllow=char-{class} rw"));
        }
        line("");
        line("[Install]");
        line("WantedBy=multi-user.target");
        unit
    }
}

/// `dir` below `base`, as the relative name `StateDirectory=` and `LogsDirectory=` take.
fn relative_to(dir: &Path, base: &str) -> Option<String> {
    let rest = dir.strip_prefix(base).ok()?;
    let text = rest.to_str()?;
    (!text.is_empty()).then(|| text.to_owned())
}

fn is_under_home(path: &Path) -> bool {
    ["/home", "/root", "/run/user"]
        .iter()
        .any(|home| path.starts_with(home))
}

/// Quotes a word for a unit file's command line and path lists when it needs it.
fn quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@,=".contains(c))
    {
        text.to_owned()
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn install(args: ServiceInstallArgs, overrides: &Overrides) -> Result<()> {
    if cfg!(windows) && !args.print {
        bail!(
            "systemd services are for Linux: on Windows, run `conductor run` under a service \
             wrapper such as WinSW or NSSM (README, \"Running as a Windows service\")"
        );
    }
    if overrides.db.is_some() || !overrides.modems.is_empty() {
        bail!(
            "the service runs `conductor run --config FILE` only: put the database and the \
             modems in the config file instead of --db/--modem, then run this again"
        );
    }
    let spec = spec(&args, overrides)?;
    let unit = spec.render();
    if args.print {
        print!("{unit}");
        return Ok(());
    }
    check_user(&spec.user)?;
    let unit_dir = args
        .unit_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(UNIT_DIR));
    let path = unit_dir.join(UNIT);
    if let Err(error) = std::fs::write(&path, &unit) {
        if error.kind() == std::io::ErrorKind::PermissionDenied {
            bail!(
                "cannot write {}: permission denied. Run it as root: `sudo {} service install \
                 --config {} --user {}`, or write the unit yourself from `conductor service \
                 install --print`",
                path.display(),
                spec.binary.display(),
                spec.config.display(),
                spec.user
            );
        }
        return Err(error).with_context(|| {
            format!(
                "cannot write {} (does {} exist?)",
                path.display(),
                unit_dir.display()
            )
        });
    }
    println!("wrote {}", path.display());
    if args.modemmanager_ignore {
        write_udev_rule(&spec, &args)?;
    }
    for dir in &spec.writable {
        if relative_to(dir, "/var/lib").is_some() || relative_to(dir, "/var/log").is_some() {
            continue; // systemd creates StateDirectory= and LogsDirectory= for the user.
        }
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            run_tool("chown", &[&spec.user, &dir.to_string_lossy()])
                .with_context(|| format!("cannot give {} to {}", dir.display(), spec.user))?;
            println!("created {} for {}", dir.display(), spec.user);
        }
    }
    if args.no_systemctl {
        println!("not calling systemctl (--no-systemctl)");
        return Ok(());
    }
    if !has_systemctl() {
        bail!(
            "systemctl was not found, so the unit is written but not started: on a machine \
             running systemd, run `systemctl daemon-reload && systemctl enable --now conductor`; \
             without systemd, start `{} run --config {}` from your init system",
            spec.binary.display(),
            spec.config.display()
        );
    }
    run_tool("systemctl", &["daemon-reload"])?;
    println!("systemctl daemon-reload: done");
    run_tool("systemctl", &["enable", "--now", "conductor"])
        .context("the unit is installed but did not start: see `journalctl -u conductor -e`")?;
    println!("systemctl enable --now conductor: enabled and started");
    println!(
        "status: systemctl status conductor; logs: journalctl -u conductor -f; \
         reload the config: systemctl reload conductor"
    );
    Ok(())
}

fn uninstall(args: ServiceUninstallArgs) -> Result<()> {
    // Only a rule this command wrote (its header says so) is ours to remove.
    let rule = udev_rule_path(args.udev_dir.as_deref());
    if std::fs::read_to_string(&rule).is_ok_and(|text| text.contains("conductor service install")) {
        std::fs::remove_file(&rule).with_context(|| {
            format!("cannot remove {}: run this as root (sudo)", rule.display())
        })?;
        println!(
            "removed {} (ModemManager may open the modems again)",
            rule.display()
        );
    }
    let unit_dir = args.unit_dir.unwrap_or_else(|| PathBuf::from(UNIT_DIR));
    let path = unit_dir.join(UNIT);
    let systemctl = !args.no_systemctl && has_systemctl();
    if systemctl && path.exists() {
        run_tool("systemctl", &["disable", "--now", "conductor"])
            .context("could not stop and disable conductor; check `systemctl status conductor`")?;
        println!("systemctl disable --now conductor: stopped and disabled");
    }
    match std::fs::remove_file(&path) {
        Ok(()) => println!("removed {}", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            println!("{} is not there: nothing to remove", path.display());
            return Ok(());
        }
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot remove {}: permission denied; run it as root: `sudo conductor service \
             uninstall`",
            path.display()
        ),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot remove {}", path.display()));
        }
    }
    if systemctl {
        run_tool("systemctl", &["daemon-reload"])?;
        println!("systemctl daemon-reload: done");
    } else if !args.no_systemctl {
        println!("systemctl was not found: nothing to stop or disable");
    }
    println!("the database, logs and backups are left where they are");
    Ok(())
}

/// Resolves the unit's parts from the config in force.
fn spec(args: &ServiceInstallArgs, overrides: &Overrides) -> Result<UnitSpec> {
    let binary = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find the path of the running conductor binary")?;
    let config_path = overrides
        .config
        .clone()
        .or_else(|| std::env::var_os("CONDUCTOR_CONFIG").map(PathBuf::from))
        .or_else(|| config::default_config_path().filter(|p| p.exists()))
        .context(
            "no config file: the service needs one. Write it with `conductor config init \
             --path /etc/conductor/config.json`, set the database and modems in it, then run \
             `conductor service install --config /etc/conductor/config.json`",
        )?;
    let config_path = config_path.canonicalize().with_context(|| {
        format!(
            "config file {} not found: give an existing file with --config",
            config_path.display()
        )
    })?;
    let config = Config::load(&Overrides {
        config: Some(config_path.clone()),
        ..Overrides::default()
    })
    .context("the config must be valid before it is installed as a service")?;
    if config.file.database.path.is_none() && config.file.database.url.is_none() {
        bail!(
            "{} names no database, so the service would use its user's default folder: add \
             \"database\": {{\"path\": \"/var/lib/conductor/conductor.db\"}} (or another \
             file) to it, then run this again",
            config_path.display()
        );
    }
    let user = match &args.user {
        Some(user) => user.clone(),
        None => std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .context("cannot tell who you are: name the account the service runs as with --user")?,
    };
    Ok(UnitSpec {
        binary,
        config: config_path,
        user,
        writable: writable_folders(&config),
        device_classes: device_classes(&config),
        usb_ids: usb_ids(&config),
    })
}

/// USB vendor/product ids of the configured serial modems that are plugged in now.
fn usb_ids(config: &Config) -> Vec<(String, String)> {
    let roots = conductor_modem::HostRoots::from_env();
    let mut ids: Vec<(String, String)> = config
        .file
        .modems
        .iter()
        .filter(|m| !m.device.is_empty() && !m.device.contains("://"))
        .filter_map(|m| conductor_modem::scan::usb_ids_of(&roots, Path::new(&m.device)))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The udev rules file that makes ModemManager ignore `ids` (issue 10, "Living with the host").
fn udev_rules_file(ids: &[(String, String)]) -> String {
    let mut text = String::from(
        "# Written by `conductor service install --modemmanager-ignore`: ModemManager must not\n\
         # open the modems Conductor drives. Removed by `conductor service uninstall`.\n",
    );
    for (vendor, product) in ids {
        text.push_str(&conductor_modem::host::udev_rule(vendor, product));
        text.push('\n');
    }
    text
}

/// Where the rule goes: `--udev-dir` (tests) or the directory of
/// [`conductor_modem::host::UDEV_RULE_PATH`].
fn udev_rule_path(dir: Option<&Path>) -> PathBuf {
    let standard = Path::new(conductor_modem::host::UDEV_RULE_PATH);
    match (dir, standard.file_name()) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => standard.to_path_buf(),
    }
}

fn write_udev_rule(spec: &UnitSpec, args: &ServiceInstallArgs) -> Result<()> {
    if spec.usb_ids.is_empty() {
        bail!(
            "--modemmanager-ignore: none of the configured modems is a USB device plugged in \
             now, so there are no ids for the rule. Plug the modem in (`conductor modem scan` \
             lists it with its ids) and run this again, or write the rule from `conductor modem \
             scan`'s advice yourself"
        );
    }
    let path = udev_rule_path(args.udev_dir.as_deref());
    std::fs::write(&path, udev_rules_file(&spec.usb_ids)).with_context(|| {
        format!(
            "cannot write the udev rule {}: run this as root (sudo)",
            path.display()
        )
    })?;
    println!("wrote {} (ModemManager ignores the modems)", path.display());
    if !args.no_systemctl {
        for step in [&["control", "--reload-rules"][..], &["trigger"][..]] {
            if let Err(error) = run_tool("udevadm", step) {
                println!(
                    "udevadm {} failed ({error:#}): run `{}` yourself, then replug the modem",
                    step.join(" "),
                    conductor_modem::host::UDEV_RELOAD
                );
                break;
            }
        }
    }
    Ok(())
}

/// The folders the daemon writes, from the config: the database's, the log file's, and any
/// folder a section names (`dir`, `folder`, `directory` or a `*_dir` field: backups,
/// archives, exports).
fn writable_folders(config: &Config) -> BTreeSet<PathBuf> {
    let base = match &config.source {
        config::Source::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        config::Source::Defaults => PathBuf::new(),
    };
    let mut folders = BTreeSet::new();
    if let Database::Sqlite(path) = &config.database
        && let Some(parent) = absolute(path).parent()
    {
        folders.insert(parent.to_path_buf());
    }
    if let Some(file) = &config.file.logging.file
        && let Some(parent) = absolute(file).parent()
    {
        folders.insert(parent.to_path_buf());
    }
    if let Ok(value) = serde_json::to_value(&config.file) {
        collect_folders(&value, "", &base, &mut folders);
    }
    folders
}

fn collect_folders(value: &serde_json::Value, key: &str, base: &Path, out: &mut BTreeSet<PathBuf>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                collect_folders(v, k, base, out);
            }
        }
        serde_json::Value::String(text)
            if !text.is_empty()
                && !text.contains("://")
                && (matches!(key, "dir" | "folder" | "directory") || key.ends_with("_dir")) =>
        {
            out.insert(absolute(&base.join(text)));
        }
        _ => {}
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The `/proc/devices` class of every configured serial device that exists now, so a modem
/// on an unusual class is allowed too.
fn device_classes(config: &Config) -> BTreeSet<String> {
    let mut classes = BTreeSet::new();
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let table = std::fs::read_to_string("/proc/devices").unwrap_or_default();
        for modem in &config.file.modems {
            if modem.device.contains("://") {
                continue;
            }
            let Ok(metadata) = std::fs::metadata(&modem.device) else {
                continue;
            };
            let rdev = metadata.rdev();
            // glibc's gnu_dev_major: the major number's low 12 bits, then its high bits.
            let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
            // By its real name: /dev/serial/by-id/... links to /dev/ttyUSB2.
            let name = std::fs::canonicalize(&modem.device)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            if let Some(class) = character_class(&table, major, &name) {
                classes.insert(class);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = config;
    classes
}

/// The character device class of `major` in a `/proc/devices` listing. One major can carry
/// several classes (4: `/dev/vc/0`, `tty`, `ttyS`): the one the device's name starts with
/// wins, so `ttyS0` allows `ttyS`, not every console.
fn character_class(table: &str, major: u64, device_name: &str) -> Option<String> {
    let classes: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("Character devices:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let (number, name) = l.trim().split_once(' ')?;
            let name = name.trim();
            // `DeviceAllow=char-NAME` takes a plain name, not a path.
            (number.parse::<u64>().ok()? == major && !name.contains('/')).then_some(name)
        })
        .collect();
    classes
        .iter()
        .filter(|class| device_name.starts_with(*class))
        .max_by_key(|class| class.len())
        .or(classes.first())
        .map(|class| (*class).to_owned())
}

/// Fails with what to do when the account does not exist (checked with `id`, which also
/// sees LDAP and other NSS accounts).
fn check_user(user: &str) -> Result<()> {
    match Command::new("id").arg("-u").arg(user).output() {
        Ok(output) if !output.status.success() => bail!(
            "user {user:?} does not exist: create a service account with `useradd --system \
             --no-create-home --groups dialout {user}`, or name another with --user"
        ),
        _ => Ok(()),
    }
}

fn has_systemctl() -> bool {
    Command::new("systemctl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a tool, failing with its command line and what it printed.
fn run_tool(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> UnitSpec {
        UnitSpec {
            binary: PathBuf::from("/usr/local/bin/conductor"),
            config: PathBuf::from("/etc/conductor/config.json"),
            user: "conductor".into(),
            writable: [
                PathBuf::from("/var/lib/conductor"),
                PathBuf::from("/var/log/conductor"),
                PathBuf::from("/srv/sms backups"),
            ]
            .into_iter()
            .collect(),
            device_classes: BTreeSet::new(),
            usb_ids: Vec::new(),
        }
    }

    #[test]
    fn the_udev_rules_file_says_who_wrote_it_and_has_one_rule_per_dongle() {
        let text = udev_rules_file(&[
            ("12d1".into(), "1506".into()),
            ("2c7c".into(), "0125".into()),
        ]);
        assert!(text.contains("conductor service install"), "{text}");
        assert_eq!(
            text.matches("ENV{ID_MM_DEVICE_IGNORE}=\"1\"").count(),
            2,
            "{text}"
        );
        assert!(text.contains("ATTRS{idVendor}==\"2c7c\""), "{text}");
    }

    #[test]
    fn the_unit_runs_the_binary_with_its_config_under_a_watchdog() {
        let unit = spec().render();
        for expected in [
            "Type=notify",
            "NotifyAccess=main",
            "ExecStart=/usr/local/bin/conductor run --config /etc/conductor/config.json",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "Restart=on-failure",
            "WatchdogSec=30s",
            "User=conductor",
            "SupplementaryGroups=dialout",
            "ProtectSystem=strict",
            "StateDirectory=conductor",
            "LogsDirectory=conductor",
            "ReadWritePaths=-\"/srv/sms backups\"",
            "ProtectHome=yes",
            "DeviceAllow=char-ttyUSB rw",
            "DeviceAllow=char-ttyACM rw",
        ] {
            assert!(
                unit.lines().any(|l| l == expected),
                "no line {expected:?} in:\n{unit}"
            );
        }
    }

    #[test]
    fn a_folder_under_home_keeps_home_readable() {
        let mut spec = spec();
        spec.writable.insert(PathBuf::from("/home/ops/sms"));
        let unit = spec.render();
        assert!(unit.contains("ProtectHome=read-only"), "{unit}");
        assert!(unit.contains("ReadWritePaths=-/home/ops/sms"), "{unit}");
    }

    #[test]
    fn a_major_number_names_its_character_class() {
        let table = "Character devices:\n  1 mem\n  4 /dev/vc/0\n  4 tty\n  4 ttyS\n188 ttyUSB\n\n\
                     Block devices:\n  8 sd\n";
        assert_eq!(
            character_class(table, 188, "ttyUSB2").as_deref(),
            Some("ttyUSB")
        );
        assert_eq!(character_class(table, 4, "ttyS0").as_deref(), Some("ttyS"));
        assert_eq!(character_class(table, 8, "sda"), None);
    }

    #[test]
    fn folders_named_by_sections_are_writable() {
        let value = serde_json::json!({"backup": {"dir": "backups", "keep": 7}, "x": {"archive_dir": "/a"}});
        let mut out = BTreeSet::new();
        collect_folders(&value, "", Path::new("/etc/conductor"), &mut out);
        assert!(out.contains(Path::new("/etc/conductor/backups")), "{out:?}");
        assert!(out.contains(Path::new("/a")), "{out:?}");
    }
}
