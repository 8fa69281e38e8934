//! Conductor as a service: the systemd unit `service install` writes, the notifications the
//! daemon sends to a `NOTIFY_SOCKET` (readiness, status, watchdog, stopping), and config
//! reloads on SIGHUP (modems added and removed without a restart, an invalid config refused,
//! the log file reopened).
//!
//! `systemd-analyze verify` checks the unit when it is installed; with
//! `CONDUCTOR_SYSTEMD_TESTS` set (CI sets it) its absence is a failure, not a skip.

use crate::support::{DaemonProcess, VirtualModemProcess, conductor, open_db, poll, write_config};
use rusqlite::OptionalExtension;
use serde_json::{Value, json};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);
const PATIENCE: Duration = Duration::from_secs(20);

/// A config for `modems` (id, device) with its database in `dir`.
fn config(dir: &Path, modems: &[(&str, &str)], extra: Value) -> Value {
    let mut file = json!({
        "database": {"path": dir.join("conductor.db")},
        "modems": modems
            .iter()
            .map(|(id, device)| json!({"id": id, "device": device}))
            .collect::<Vec<_>>(),
        "inbound": {"sweep_interval": "1s"},
        "http": {"listen": "127.0.0.1:0"},
    });
    if let (Some(file), Value::Object(extra)) = (file.as_object_mut(), extra) {
        file.extend(extra);
    }
    file
}

/// `conductor service install --print --user root --config CONFIG`: the unit, not written.
fn install_print(config: &Path) -> std::process::Output {
    conductor(
        &[
            "service",
            "install",
            "--print",
            "--user",
            "root",
            "--config",
            &config.to_string_lossy(),
        ],
        "",
    )
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---- the unit ---------------------------------------------------------------------------

#[test]
fn the_generated_unit_passes_systemd_analyze_verify() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        if std::env::var_os("CONDUCTOR_SYSTEMD_TESTS").is_some() {
            panic!(
                "CONDUCTOR_SYSTEMD_TESTS is set but systemd-analyze is missing: apt-get install \
                 -y systemd"
            );
        }
        eprintln!(
            "NOT RUN: checking the unit needs systemd-analyze (apt-get install -y systemd); set \
             CONDUCTOR_SYSTEMD_TESTS=1 to make its absence a failure"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("config.json");
    write_config(
        &config_path,
        &config(
            dir.path(),
            &[("m1", "/dev/ttyUSB2")],
            json!({"logging": {"file": dir.path().join("logs/conductor.log")}}),
        ),
    );
    let output = install_print(&config_path);
    assert!(
        output.status.success(),
        "install --print failed: {}",
        stderr(&output)
    );
    let unit = stdout(&output);
    let binary = Path::new(env!("CARGO_BIN_EXE_conductor"))
        .canonicalize()
        .expect("the binary's path");
    let config_abs = config_path.canonicalize().expect("the config's path");
    let exec = format!(
        "ExecStart={} run --config {}",
        binary.display(),
        config_abs.display()
    );
    for expected in [
        exec.as_str(),
        "Type=notify",
        "WatchdogSec=30s",
        "NotifyAccess=main",
        "Restart=on-failure",
        "User=root",
        "SupplementaryGroups=dialout",
        "ProtectSystem=strict",
    ] {
        assert!(
            unit.lines().any(|l| l == expected),
            "no line {expected:?} in the unit:\n{unit}"
        );
    }
    // The database's and the log's folders stay writable under ProtectSystem=strict.
    let writable = unit
        .lines()
        .find(|l| l.starts_with("ReadWritePaths="))
        .unwrap_or_else(|| panic!("no ReadWritePaths= in:\n{unit}"));
    for needed in [dir.path().to_path_buf(), dir.path().join("logs")] {
        assert!(
            writable
                .trim_start_matches("ReadWritePaths=")
                .split(' ')
                .any(|p| p == format!("-{}", needed.display())),
            "{} is not writable: {writable}",
            needed.display()
        );
    }

    let unit_path = dir.path().join("conductor.service");
    std::fs::write(&unit_path, &unit).expect("write the unit");
    let verify = Command::new(analyze)
        .arg("verify")
        .arg(&unit_path)
        .output()
        .expect("systemd-analyze runs");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    // Complaints about other units on this machine are not ours; any line naming ours is.
    let ours: Vec<&str> = complaints
        .lines()
        .filter(|l| l.contains("conductor.service"))
        .collect();
    assert!(
        verify.status.success() && ours.is_empty(),
        "systemd-analyze verify refused the unit ({}):\n{complaints}\n--- unit ---\n{unit}",
        verify.status
    );
}

#[test]
fn install_writes_the_unit_and_uninstall_removes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let units = dir.path().join("units");
    std::fs::create_dir(&units).expect("unit dir");
    let config_path = dir.path().join("config.json");
    write_config(
        &config_path,
        &config(dir.path(), &[("m1", "tcp://127.0.0.1:9")], json!({})),
    );
    let (config_arg, units_arg) = (
        config_path.to_string_lossy().into_owned(),
        units.to_string_lossy().into_owned(),
    );
    let install = conductor(
        &[
            "service",
            "install",
            "--user",
            "root",
            "--config",
            &config_arg,
            "--unit-dir",
            &units_arg,
            "--no-systemctl",
        ],
        "",
    );
    assert!(
        install.status.success(),
        "install failed: {}",
        stderr(&install)
    );
    let unit_path = units.join("conductor.service");
    let unit = std::fs::read_to_string(&unit_path).expect("the unit was written");
    assert!(unit.contains("Type=notify"), "{unit}");
    assert!(
        stdout(&install).contains(&format!("wrote {}", unit_path.display())),
        "install does not say what it did: {}",
        stdout(&install)
    );

    let uninstall = conductor(
        &[
            "service",
            "uninstall",
            "--unit-dir",
            &units_arg,
            "--no-systemctl",
        ],
        "",
    );
    assert!(
        uninstall.status.success(),
        "uninstall failed: {}",
        stderr(&uninstall)
    );
    assert!(!unit_path.exists(), "the unit is still there");
    assert!(
        stdout(&uninstall).contains("removed"),
        "{}",
        stdout(&uninstall)
    );
    // Again: nothing to do, and it says so.
    let again = conductor(
        &[
            "service",
            "uninstall",
            "--unit-dir",
            &units_arg,
            "--no-systemctl",
        ],
        "",
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("nothing to remove"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn install_refuses_a_config_that_names_no_database_and_says_what_to_add() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("config.json");
    write_config(
        &config_path,
        &json!({"modems": [{"id": "m1", "device": "/dev/ttyUSB2"}]}),
    );
    let output = install_print(&config_path);
    assert!(
        !output.status.success(),
        "it installed: {}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("\"database\""),
        "the error does not say what to add: {}",
        stderr(&output)
    );
}

// ---- notifications ------------------------------------------------------------------------

/// A fake service manager: the datagram socket `NOTIFY_SOCKET` names, and every message it
/// received so far.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        Self {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Reads datagrams until one satisfies `wanted` (searching those seen already first), or
    /// fails after `timeout` with everything seen and the daemon's log.
    fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        daemon: &DaemonProcess,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        if let Some(found) = self.seen.iter().find(|m| wanted(m)) {
            return found.clone();
        }
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buffer) {
                let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
                self.seen.push(message.clone());
                if wanted(&message) {
                    return message;
                }
            }
        }
        panic!(
            "no {what} within {timeout:?}; received: {:?}\n--- daemon log (end) ---\n{}",
            self.seen,
            daemon.log_tail(40)
        );
    }

    /// Reads datagrams until `n` of those seen hold the line `line`.
    fn wait_for_count(&mut self, line: &str, n: usize, timeout: Duration, daemon: &DaemonProcess) {
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; 4096];
        while self.seen.iter().filter(|m| has_line(m, line)).count() < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} {line} within {timeout:?}; received: {:?}\n--- daemon log (end) ---\n{}",
                self.seen,
                daemon.log_tail(40)
            );
            if let Ok(count) = self.socket.recv(&mut buffer) {
                self.seen
                    .push(String::from_utf8_lossy(&buffer[..count]).into_owned());
            }
        }
    }
}

fn has_line(message: &str, line: &str) -> bool {
    message.lines().any(|l| l == line)
}

#[test]
fn run_notifies_ready_after_the_modem_then_feeds_the_watchdog_and_says_stopping_on_sigterm() {
    let sim = VirtualModemProcess::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("config.json");
    write_config(
        &config_path,
        &config(dir.path(), &[("m1", &sim.device())], json!({})),
    );
    let mut notify = NotifySocket::bind(dir.path());
    let socket = notify.path.to_string_lossy().into_owned();
    let mut daemon = DaemonProcess::start_with_env(
        &config_path,
        &dir.path().join("daemon.log"),
        // Every 100 ms: half of WATCHDOG_USEC.
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "200000")],
    );
    let ready = notify.wait_for("READY=1", PATIENCE, &daemon, |m| has_line(m, "READY=1"));
    assert!(
        has_line(&ready, "STATUS=1/1 modems ready"),
        "READY=1 came before the modem was ready: {ready:?}"
    );
    // The status row agrees: the modem was initialised when readiness was declared.
    let state: Option<String> = open_db(&dir.path().join("conductor.db"))
        .query_row(
            "SELECT state FROM modem_status WHERE modem_id = 'm1'",
            [],
            |r| r.get(0),
        )
        .optional()
        .expect("read the status row");
    assert_eq!(state.as_deref(), Some("ready"));
    // The watchdog is fed, repeatedly (every 100 ms: five within a few seconds).
    notify.seen.clear();
    notify.wait_for_count("WATCHDOG=1", 5, Duration::from_secs(5), &daemon);

    daemon.signal("TERM");
    notify.wait_for("STOPPING=1", PATIENCE, &daemon, |m| {
        has_line(m, "STOPPING=1")
    });
    let status = daemon
        .wait_exit(PATIENCE)
        .expect("the daemon exits after SIGTERM");
    assert!(status.success(), "exit {status}: {}", daemon.log_tail(20));
}

#[test]
fn an_unreachable_modem_does_not_hold_readiness_back() {
    // A port nobody listens on: the first attempt fails at once, and is retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = closed.local_addr().expect("address");
    drop(closed);
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("config.json");
    write_config(
        &config_path,
        &config(
            dir.path(),
            &[("m1", &format!("tcp://{address}"))],
            json!({}),
        ),
    );
    let mut notify = NotifySocket::bind(dir.path());
    let socket = notify.path.to_string_lossy().into_owned();
    let mut daemon = DaemonProcess::start_with_env(
        &config_path,
        &dir.path().join("daemon.log"),
        &[("NOTIFY_SOCKET", &socket)],
    );
    let ready = notify.wait_for("READY=1", PATIENCE, &daemon, |m| has_line(m, "READY=1"));
    assert!(
        has_line(&ready, "STATUS=0/1 modems ready; modem m1 down"),
        "{ready:?}"
    );
    assert!(daemon.running(), "{}", daemon.log_tail(20));
    daemon.signal("TERM");
    assert!(daemon.wait_exit(PATIENCE).is_some_and(|s| s.success()));
}

// ---- SIGHUP -------------------------------------------------------------------------------

/// The state in `m`'s status row, and its last error.
fn modem_row(db: &Path, modem: &str) -> Result<(String, Option<String>), String> {
    open_db(db)
        .query_row(
            "SELECT state, last_error FROM modem_status WHERE modem_id = ?1",
            [modem],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no status row for {modem}"))
}

/// Waits until `check` holds, failing with what it saw and the daemon's log.
fn wait<T>(daemon: &DaemonProcess, what: &str, probe: impl FnMut() -> Result<T, String>) -> T {
    poll(PATIENCE, POLL, probe).unwrap_or_else(|seen| {
        panic!(
            "timed out waiting for {what}; last seen: {seen}\n--- daemon log (end) ---\n{}",
            daemon.log_tail(60)
        )
    })
}

#[test]
fn sighup_adds_and_removes_modems_without_a_restart_and_refuses_an_invalid_config() {
    let sims = [
        VirtualModemProcess::start(&[]),
        VirtualModemProcess::start(&[]),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("conductor.db");
    let log_file = dir.path().join("logs/conductor.log");
    let config_path = dir.path().join("config.json");
    let (d1, d2) = (sims[0].device(), sims[1].device());
    let logging = json!({"logging": {"file": log_file}});
    write_config(
        &config_path,
        &config(dir.path(), &[("m1", &d1)], logging.clone()),
    );
    let mut notify = NotifySocket::bind(dir.path());
    let socket = notify.path.to_string_lossy().into_owned();
    let mut daemon = DaemonProcess::start_with_env(
        &config_path,
        &dir.path().join("daemon.log"),
        &[("NOTIFY_SOCKET", &socket)],
    );
    notify.wait_for("READY=1", PATIENCE, &daemon, |m| has_line(m, "READY=1"));
    let pid = daemon.pid();

    // Added: m2 starts and becomes ready, and the process is the same one.
    let mut with_m2 = config(dir.path(), &[("m1", &d1), ("m2", &d2)], logging.clone());
    with_m2["outbound"] = json!({"max_attempts": 7});
    write_config(&config_path, &with_m2);
    // logrotate moves the file away before the reload: a new one must appear.
    let rotated = dir.path().join("logs/conductor.log.1");
    std::fs::rename(&log_file, &rotated).expect("move the log file");
    notify.seen.clear();
    daemon.signal("HUP");
    notify.wait_for("RELOADING=1", PATIENCE, &daemon, |m| {
        has_line(m, "RELOADING=1")
    });
    wait(&daemon, "m2 ready", || match modem_row(&db, "m2")? {
        (state, _) if state == "ready" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let ready = notify.wait_for("READY=1 after the reload", PATIENCE, &daemon, |m| {
        has_line(m, "READY=1")
    });
    assert!(ready.contains("STATUS="), "{ready:?}");
    notify.wait_for("status 2/2", PATIENCE, &daemon, |m| {
        has_line(m, "STATUS=2/2 modems ready")
    });
    assert_eq!(daemon.pid(), pid);
    wait(&daemon, "a new log file with the reload in it", || {
        let text = std::fs::read_to_string(&log_file).map_err(|e| e.to_string())?;
        text.contains("config reloaded")
            .then_some(())
            .ok_or_else(|| "no \"config reloaded\" in the new log file".to_owned())
    });
    assert!(
        daemon
            .log()
            .contains("restart needed for outbound.max_attempts"),
        "{}",
        daemon.log_tail(30)
    );

    // Removed: m2's worker stops and says so in its status row; m1 carries on.
    write_config(
        &config_path,
        &config(dir.path(), &[("m1", &d1)], logging.clone()),
    );
    daemon.signal("HUP");
    wait(&daemon, "m2 stopped", || match modem_row(&db, "m2")? {
        (state, Some(error)) if state == "down" && error.contains("removed") => Ok(()),
        other => Err(format!("{other:?}")),
    });
    wait(&daemon, "the log says m2's port is closed", || {
        daemon
            .log()
            .contains("modem m2 stopped")
            .then_some(())
            .ok_or_else(|| "not yet".to_owned())
    });
    assert_eq!(modem_row(&db, "m1").map(|r| r.0), Ok("ready".to_owned()));

    // Invalid: refused with its reason, the daemon keeps running on the old config.
    std::fs::write(&config_path, r#"{"modems": [{"id": "m1", "devize": "x"}]}"#)
        .expect("write a broken config");
    daemon.signal("HUP");
    wait(&daemon, "the refusal in the log", || {
        let log = daemon.log();
        log.lines()
            .find(|l| l.contains("config reload refused") && l.contains("devize"))
            .map(|_| ())
            .ok_or_else(|| "no refusal naming the field yet".to_owned())
    });
    assert!(daemon.running(), "{}", daemon.log_tail(30));
    assert_eq!(modem_row(&db, "m1").map(|r| r.0), Ok("ready".to_owned()));
    daemon.signal("TERM");
    assert!(daemon.wait_exit(PATIENCE).is_some_and(|s| s.success()));
}
