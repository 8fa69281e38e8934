//! The simulator behind a pty, reached through its stable symlink with plain file I/O.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conductor_sim::{Fault, FaultKind, SendLatency, SimulatorConfig, spawn};

const PATIENCE: Duration = Duration::from_secs(10);

/// A client of the pty: writes directly, reads through a thread (the slave blocks).
struct Port {
    file: File,
    chunks: mpsc::Receiver<Vec<u8>>,
}

impl Port {
    fn open(path: &Path) -> Self {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open the pty");
        let mut reader = file.try_clone().expect("clone");
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self { file, chunks }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.file.write_all(bytes).expect("write");
    }

    fn read_until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => seen.extend(chunk),
                Err(_) => panic!("no {needle:?} in {:?}", String::from_utf8_lossy(&seen)),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }
}

async fn wait_until(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_opens_the_pty_path_sends_at_and_reads_ok() {
    let running = spawn(SimulatorConfig {
        pty: true,
        send_latency: SendLatency::ZERO,
        ..SimulatorConfig::default()
    })
    .await
    .expect("spawn");
    let path = running.endpoints.modems[0].pty.clone().expect("pty");
    assert!(
        running
            .endpoints
            .to_string()
            .contains(&format!("pty: {}", path.display()))
    );
    assert!(std::fs::read_link(&path).is_ok(), "a symlink to /dev/pts/N");
    let mut port = tokio::task::spawn_blocking(move || {
        let mut port = Port::open(&path);
        port.send(b"AT\r");
        assert_eq!(port.read_until("OK\r\n"), "AT\r\r\nOK\r\n");
        port
    })
    .await
    .expect("client");
    let dir = running.endpoints.modems[0]
        .pty
        .as_ref()
        .and_then(|p| p.parent().map(Path::to_owned))
        .expect("dir");
    running.shutdown().await;
    assert!(
        !dir.join("modem0").exists(),
        "the link goes away on shutdown"
    );
    assert!(!dir.exists(), "and so does the folder the simulator made");
    port.send(b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugging_removes_the_link_and_replugging_brings_a_new_pty_behind_it() {
    let running = spawn(SimulatorConfig {
        pty: true,
        send_latency: SendLatency::ZERO,
        ..SimulatorConfig::default()
    })
    .await
    .expect("spawn");
    let path = running.endpoints.modems[0].pty.clone().expect("pty");
    let before = std::fs::read_link(&path).expect("link");
    running
        .simulator
        .fault("modem0", &Fault::Unplug { seconds: None })
        .await
        .expect("fault");
    wait_until(
        || std::fs::symlink_metadata(&path).is_err(),
        "the link to go",
    )
    .await;
    running
        .simulator
        .clear_fault("modem0", Some(FaultKind::Unplug))
        .await
        .expect("clear");
    wait_until(|| path.exists(), "the link to come back").await;
    // A fresh pty; the kernel may hand out the same number again, as a re-enumerated USB
    // device may get the same ttyUSBn.
    let after = std::fs::read_link(&path).expect("link");
    assert!(after.starts_with("/dev/pts/") && before.starts_with("/dev/pts/"));
    let reopened = path.clone();
    tokio::task::spawn_blocking(move || {
        let mut port = Port::open(&reopened);
        port.send(b"AT\r");
        port.read_until("OK\r\n");
    })
    .await
    .expect("client");
    running.shutdown().await;
}
