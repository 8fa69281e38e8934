//! Helpers to run the built `conductor` binary.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
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
}

impl VirtualModemProcess {
    /// Starts `conductor sim --tcp 127.0.0.1:0 --send-latency 0 EXTRA...` and waits (with a
    /// deadline) for the line that says where it listens.
    pub fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
            .args(["sim", "--tcp", "127.0.0.1:0", "--send-latency", "0"])
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
        let (mut address, mut pty) = (None, None);
        let wants_pty = extra.contains(&"--pty");
        while address.is_none() || (wants_pty && pty.is_none()) {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("conductor sim prints where it listens within 20 s");
            if let Some(a) = line.strip_prefix("TCP listening on ") {
                address = Some(a.trim().to_owned());
            } else if let Some(p) = line.strip_prefix("pty: ") {
                pty = Some(p.trim().to_owned());
            }
        }
        let address = address.unwrap_or_default();
        Self {
            child,
            address,
            pty,
        }
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
