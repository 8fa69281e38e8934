//! Helpers to run the built `conductor` binary.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `conductor ARGS` with `stdin` fed in, and waits for it.
pub fn conductor(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the conductor binary starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin takes the input");
    child.wait_with_output().expect("conductor finishes")
}

/// Standard output as one JSON value per line.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each stdout line is JSON"))
        .collect()
}

/// A `conductor sim` process on a free TCP port, killed when dropped.
pub struct VirtualModemProcess {
    child: Child,
    address: String,
    pty: Option<String>,
    control: Option<String>,
}

impl VirtualModemProcess {
    /// Starts `conductor sim --tcp 127.0.0.1:0 --send-latency 0 EXTRA...` (`EXTRA` may choose
    /// another `--send-latency`) and waits (with a
    /// deadline) for the line that says where it listens.
    pub fn start(extra: &[&str]) -> Self {
        // Zero send latency unless the caller chooses one.
        let latency: &[&str] = if extra.contains(&"--send-latency") {
            &[]
        } else {
            &["--send-latency", "0"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
            .args(["sim", "--tcp", "127.0.0.1:0"])
            .args(latency)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("conductor sim starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The control line comes last: everything about the modem is printed by then.
                let done = line.starts_with("control: ");
                let _ = tx.send(line);
                if done {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut address, mut pty, mut control) = (None, None, None);
        let wants_pty = extra.contains(&"--pty");
        let wants_control = extra.contains(&"--control");
        while address.is_none()
            || (wants_pty && pty.is_none())
            || (wants_control && control.is_none())
        {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("conductor sim prints where it listens within 20 s");
            if let Some(a) = line.strip_prefix("TCP listening on ") {
                address = Some(a.trim().to_owned());
            } else if let Some(p) = line.strip_prefix("pty: ") {
                pty = Some(p.trim().to_owned());
            } else if let Some(c) = line.strip_prefix("control: ") {
                control = Some(c.trim().to_owned());
            }
        }
        let address = address.unwrap_or_default();
        Self {
            child,
            address,
            pty,
            control,
        }
    }

    /// Starts one with its control port on loopback (`--control 127.0.0.1:0`).
    pub fn start_with_control(extra: &[&str]) -> Self {
        let mut args = vec!["--control", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// A new connection to the control port (started with `--control`).
    pub fn control(&self) -> Control {
        Control::connect(
            self.control
                .as_deref()
                .expect("the sim was started with --control"),
        )
    }

    /// The pty path, when started with `--pty`.
    pub fn pty(&self) -> Option<&str> {
        self.pty.as_deref()
    }

    /// The device string for `conductor` (`tcp://127.0.0.1:PORT`).
    pub fn device(&self) -> String {
        format!("tcp://{}", self.address)
    }
}

impl Drop for VirtualModemProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection to `conductor sim --control`: one JSON request per line, one reply per line
/// (the protocol is documented in `crates/sim/src/control.rs`).
pub struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Control {
    /// Connects to the control port at `address` (`127.0.0.1:PORT`).
    pub fn connect(address: &str) -> Self {
        let writer = TcpStream::connect(address).expect("the sim's control port accepts");
        writer
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        writer.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(writer.try_clone().expect("clone the control stream"));
        Self { reader, writer }
    }

    /// Sends one request and returns the reply, which must say `"ok": true`.
    pub fn call(&mut self, request: Value) -> Value {
        let mut line = request.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .expect("the control port takes the request");
        let mut reply = String::new();
        self.reader
            .read_line(&mut reply)
            .expect("the control port answers within 20 s");
        let reply: Value = serde_json::from_str(&reply)
            .unwrap_or_else(|e| panic!("control reply {reply:?} is not JSON: {e}"));
        assert_eq!(
            reply["ok"], true,
            "control request {request} failed: {reply}"
        );
        reply
    }

    /// A text message from `from` into the first modem.
    pub fn inject(&mut self, from: &str, text: &str) -> Value {
        self.call(json!({"op": "inject", "from": from, "text": text}))
    }

    /// Every distinct SUBMIT the modem sent (each with its `count`).
    pub fn submitted(&mut self) -> Vec<Value> {
        let reply = self.call(json!({"op": "submitted"}));
        reply["submitted"].as_array().cloned().unwrap_or_default()
    }

    /// How many times the modem submitted `text` in all (summed over distinct PDUs).
    pub fn submissions_of(&mut self, text: &str) -> u64 {
        self.submitted()
            .iter()
            .filter(|s| s["text"] == text)
            .map(|s| s["count"].as_u64().unwrap_or(0))
            .sum()
    }

    /// What the network holds for the modem (not delivered: SIM full, unplugged...).
    pub fn held(&mut self) -> Vec<Value> {
        let reply = self.call(json!({"op": "held"}));
        reply["held"].as_array().cloned().unwrap_or_default()
    }

    /// The first modem's memories: `storages` (name, used, capacity) and `slots`.
    pub fn sim(&mut self) -> Value {
        self.call(json!({"op": "sim"}))["sim"].clone()
    }

    /// Used slots of memory `name` ("SM", "ME", "SR").
    pub fn used(&mut self, name: &str) -> u64 {
        let sim = self.sim();
        sim["storages"]
            .as_array()
            .and_then(|s| s.iter().find(|m| m["name"] == name))
            .and_then(|m| m["used"].as_u64())
            .unwrap_or_else(|| panic!("no storage {name} in {sim}"))
    }

    /// Injects a fault: `fault` holds `"fault"` and its fields (`{"fault": "unplug"}`).
    pub fn fault(&mut self, fault: Value) {
        let mut request = json!({"op": "fault"});
        if let (Some(request), Some(fields)) = (request.as_object_mut(), fault.as_object()) {
            request.extend(fields.clone());
        }
        self.call(request);
    }

    /// Clears one lasting fault (`"unplug"`, `"hold_sends"`...).
    pub fn clear_fault(&mut self, kind: &str) {
        self.call(json!({"op": "clear_fault", "fault": kind}));
    }
}

/// A `conductor run` process with its console log in a file, killed (SIGKILL) when dropped.
pub struct DaemonProcess {
    child: Child,
    log: PathBuf,
}

impl DaemonProcess {
    /// Starts `conductor run --config CONFIG`, appending its output to `log`.
    pub fn start(config: &Path, log: &Path) -> Self {
        Self::start_with_env(config, log, &[])
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `within` for the exit; `None` if it is still running.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        self.signal("TERM");
        self.wait_exit(within)
    }

    /// Whether it is still running (it has not exited, whatever the reason).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the `sqlite3` shell (a separate process, as n8n or a script would be) on `db` with a
/// 5 s busy timeout; `params` bind `?1`, `?2`... (SQL literals: `'text'`, `42`), so statements
/// keep their `?` unchanged. `mode` is an output mode flag such as `-json` or `-list`. Panics
/// when it fails (an error such as "database is locked" included).
pub fn sqlite3(db: &Path, mode: &str, params: &[&str], sql: &str) -> String {
    let mut command = Command::new("sqlite3");
    command
        .arg("-bail")
        .arg(mode)
        .arg("-cmd")
        .arg(".timeout 5000");
    for (i, value) in params.iter().enumerate() {
        // The dot-command tokenizer strips one level of double quotes: the value reaches SQL
        // as written (`'text'` stays a string literal).
        command
            .arg("-cmd")
            .arg(format!(".parameter set ?{} \"{value}\"", i + 1));
    }
    let output = command
        .arg(db)
        .arg(sql)
        .stdin(Stdio::null())
        .output()
        .expect("the sqlite3 shell runs (install it: apt-get install sqlite3)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "sqlite3 {sql:?} failed: {stderr}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Calls `probe` every `every` until it returns `Ok`, or until `timeout` has passed; then the
/// last `Err` (what the probe saw) is returned.
pub fn poll<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return Ok(value),
            Err(seen) if Instant::now() >= deadline => return Err(seen),
            Err(_) => std::thread::sleep(every),
        }
    }
}

// ---- Added for the torture, concurrent-SQL, bad-input and soak tests -----------------------

/// A small seeded generator (SplitMix64): the same seed gives the same kill times, so a
/// failing torture run can be replayed with its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo)
        }
    }
}

/// `NAME` from the environment parsed as `T`, or `default` (unset or unreadable).
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A connection to `db` of our own, as any external program opens one: read-write, 5 s busy
/// timeout.
pub fn open_db(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).expect("the database opens");
    c.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    c
}

/// One row of `messages` as the tests look at it: `(id, direction, status, content, reason)`.
pub type Row = (i64, String, String, String, Option<String>);

/// `(id, direction, status, content, reason)` of every row, by id.
pub fn all_rows(c: &rusqlite::Connection) -> Vec<Row> {
    try_all_rows(c).expect("read the rows")
}

/// [`all_rows`] for polling loops that may run before the daemon has created the schema (the
/// file exists as soon as SQLite opens it, the tables only once the migrations commit).
pub fn try_all_rows(c: &rusqlite::Connection) -> rusqlite::Result<Vec<Row>> {
    let mut statement =
        c.prepare("SELECT id, direction, status, content, reason FROM messages ORDER BY id")?;
    statement
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
}

/// What `/proc` says about a running process.
#[derive(Clone, Copy, Debug)]
pub struct ProcFigures {
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Open file descriptors (entries of `/proc/PID/fd`).
    pub fds: usize,
}

/// RSS and open descriptors of process `pid`; `None` when it is gone (or not Linux).
pub fn proc_figures(pid: u32) -> Option<ProcFigures> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(ProcFigures { rss_kib, fds })
}

/// Writes `value` as a JSON config file.
pub fn write_config(path: &Path, value: &Value) {
    std::fs::write(path, value.to_string()).expect("write the config file");
}

/// Where `text` was submitted, summed over distinct PDUs: `{text: count}`.
pub fn submissions_by_text(control: &mut Control) -> std::collections::HashMap<String, u64> {
    let mut counts = std::collections::HashMap::new();
    for s in control.submitted() {
        let text = s["text"].as_str().unwrap_or_default().to_owned();
        *counts.entry(text).or_insert(0) += s["count"].as_u64().unwrap_or(0);
    }
    counts
}

// ---- Added for the service tests (systemd notifications, SIGHUP) ---------------------------

impl DaemonProcess {
    /// Starts `conductor run --config CONFIG` like [`DaemonProcess::start`], with `env` added
    /// to its environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, ...).
    pub fn start_with_env(config: &Path, log: &Path, env: &[(&str, &str)]) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("the daemon log file opens");
        let err = out.try_clone().expect("clone the log file");
        let child = Command::new(env!("CARGO_BIN_EXE_conductor"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("conductor run starts");
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// Sends signal `name` (`HUP`, `TERM`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("the kill command runs");
        assert!(sent.success(), "kill -{name} {} failed", self.pid());
    }

    /// Waits up to `within` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `lines` lines of its output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

// ---- Added for the ops_alerts tests (statistics, alerts, doctor) ----------------------------

/// Runs `conductor ARGS` with extra environment variables (`TZ` for `stats`), and waits.
pub fn conductor_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the conductor binary runs")
}

/// `GET path` on `address` over plain HTTP/1.1: (status, body).
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut stream = TcpStream::connect(address).expect("the API accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

// ---- Shared setup of the daemon tests ------------------------------------------------------

/// A daemon test's scratch folder and the database and config file paths in it.
pub struct Scratch {
    /// The folder, removed when dropped.
    pub dir: tempfile::TempDir,
    /// The database file (`db_name` in `dir`).
    pub db: PathBuf,
    /// `dir/config.json`.
    pub config: PathBuf,
}

/// A fresh [`Scratch`] whose database file is named `db_name`.
pub fn scratch(db_name: &str) -> Scratch {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join(db_name);
    let config = dir.path().join("config.json");
    Scratch { dir, db, config }
}

/// Writes to `path` a config with its database at `db` and one modem, `m1` on `device`, plus
/// the top-level `sections` (a section given there replaces the one here): what most daemon
/// tests run.
pub fn write_one_modem_config(path: &Path, db: &Path, device: &str, sections: Value) {
    let mut file = json!({
        "database": {"path": db},
        "modems": [{"id": "m1", "device": device}],
    });
    if let (Some(file), Value::Object(sections)) = (file.as_object_mut(), sections) {
        file.extend(sections);
    }
    write_config(path, &file);
}
