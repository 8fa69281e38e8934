//! Real transports, in real time: TCP (ser2net and network modems) and, on Linux, a
//! pseudo-terminal opened by path like any serial port. Open failures are classified.

use std::future::Future;
use std::time::Duration;

use conductor_modem::{ModemConfig, ModemError, OpenErrorKind, ProbeOptions, probe, spawn};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::util::*;

/// Real-time tests fail fast instead of waiting out [`PATIENCE`].
async fn soon<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A TCP server on loopback whose every connection is a scripted healthy modem.
async fn tcp_modem() -> (String, mpsc::UnboundedReceiver<Peer>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("bound");
    let (peers_tx, peers) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // Without it, Nagle and delayed ACKs add ~40 ms to every answer of several lines.
            let _ = stream.set_nodelay(true);
            if peers_tx
                .send(Peer::spawn(stream, handler(healthy)))
                .is_err()
            {
                break;
            }
        }
    });
    (format!("tcp://{address}"), peers)
}

#[tokio::test]
async fn a_modem_over_tcp_initialises_sends_and_comes_back_after_the_server_drops_it() {
    let (device, mut peers) = tcp_modem().await;
    let config = ModemConfig {
        refresh_interval: None,
        backoff_initial: Duration::from_millis(20),
        ..ModemConfig::new("tcp", device)
    };
    let shutdown = CancellationToken::new();
    let modem = spawn(config, shutdown.clone()).expect("valid device");
    let mut state = modem.state.clone();
    soon("ready", state.wait_for(|s| s.is_ready()))
        .await
        .expect("state");
    assert_eq!(modem.handle.send_pdu(SUBMIT).await.expect("sent"), 7);
    let first = soon("the first connection", peers.recv())
        .await
        .expect("peer");
    first.close().await;
    soon("the second connection", peers.recv())
        .await
        .expect("peer");
    soon(
        "ready again",
        state.wait_for(|s| s.is_ready() && s.outages == 1),
    )
    .await
    .expect("state");
    assert!(modem.handle.signal().await.is_ok());
    shutdown.cancel();
    soon("the task to end", modem.task).await.expect("no panic");
}

#[tokio::test]
async fn probe_works_over_tcp() {
    let (device, _peers) = tcp_modem().await;
    let report = soon("the probe", probe(&device, &ProbeOptions::default()))
        .await
        .expect("probe");
    assert_eq!(report.identity.model.as_deref(), Some("Scripted"));
    assert_eq!(report.device, device);
}

#[tokio::test]
async fn a_missing_serial_device_says_to_check_the_path() {
    let error = probe("/dev/conductor-no-such-modem", &ProbeOptions::default())
        .await
        .expect_err("missing");
    match &error {
        ModemError::Open(open) => assert_eq!(open.kind, OpenErrorKind::NotFound),
        other => panic!("expected an open error, got {other:?}"),
    }
    assert!(error.to_string().contains("plugged in"), "{error}");
    assert!(
        error.is_transient(),
        "USB modems come back under the same name"
    );
}

#[tokio::test]
async fn a_tcp_port_nobody_listens_on_is_refused_with_advice() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("bound");
    drop(listener);
    let error = probe(&format!("tcp://{address}"), &ProbeOptions::default())
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, ModemError::Open(open) if open.kind == OpenErrorKind::Refused),
        "{error:?}"
    );
    assert!(error.to_string().contains("ser2net"), "{error}");
}

#[tokio::test]
async fn an_invalid_device_string_is_refused_by_spawn() {
    let error = spawn(
        ModemConfig::new("bad", "tcp://nohost"),
        CancellationToken::new(),
    )
    .expect_err("invalid");
    assert_eq!(error.kind, OpenErrorKind::Invalid);
}

#[cfg(target_os = "linux")]
mod pty {
    use std::os::fd::AsRawFd;

    use tokio_serial::SerialStream;

    use super::*;

    /// A pty pair: the master, the slave's path (`/dev/pts/N`) and the slave itself.
    fn pair() -> (SerialStream, String, SerialStream) {
        let (master, slave) = SerialStream::pair().expect("a pseudo-terminal");
        let path = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))
            .expect("the slave's path")
            .to_string_lossy()
            .into_owned();
        (master, path, slave)
    }

    #[tokio::test]
    async fn a_pseudo_terminal_path_opens_like_a_serial_port_and_the_modem_initialises() {
        let (master, path, slave) = pair();
        drop(slave);
        let _peer = Peer::spawn(master, handler(healthy));
        let config = ModemConfig {
            refresh_interval: None,
            ..ModemConfig::new("pty", path)
        };
        let shutdown = CancellationToken::new();
        let modem = spawn(config, shutdown.clone()).expect("valid device");
        let mut state = modem.state.clone();
        soon("ready over the pty", state.wait_for(|s| s.is_ready()))
            .await
            .expect("state");
        assert_eq!(modem.handle.send_pdu(SUBMIT).await.expect("sent"), 7);
        shutdown.cancel();
        soon("the task to end", modem.task).await.expect("no panic");
    }

    #[tokio::test]
    async fn a_port_held_exclusively_by_another_process_is_reported_busy() {
        let (_master, path, mut slave) = pair();
        slave.set_exclusive(true).expect("TIOCEXCL");
        // CAP_SYS_ADMIN (root in CI) bypasses TIOCEXCL: nothing to observe there.
        if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .is_ok()
        {
            eprintln!("skipped: this process may open exclusive terminals (CAP_SYS_ADMIN)");
            return;
        }
        let error = probe(&path, &ProbeOptions::default())
            .await
            .expect_err("busy");
        assert!(
            matches!(&error, ModemError::Open(open) if open.kind == OpenErrorKind::Busy),
            "{error:?}"
        );
        assert!(error.to_string().contains("ModemManager"), "{error}");
    }
}
