//! The systemd notification protocol (`sd_notify(3)`): a few `KEY=VALUE` lines in one unix
//! datagram to the socket named by `NOTIFY_SOCKET`.
//!
//! Why written here rather than taken from a crate: the protocol is one `sendto`, and the
//! maintained crate (`sd-notify` 0.5) connects to `NOTIFY_SOCKET` as a file path only, while
//! `sd_notify(3)` says a leading `@` names a socket in Linux's abstract namespace (what
//! systemd hands out in some containers and test harnesses). The standard library does both
//! without `unsafe` (forbidden in this workspace).
//!
//! Not here: when to say what (the daemon's [`crate::lifecycle`]). Nothing here ever fails the
//! daemon: with no `NOTIFY_SOCKET` (not under systemd, or `Type=simple`) every call does
//! nothing, and a failed send is logged once and otherwise ignored, since a service manager
//! that stopped listening is no reason to stop delivering messages.
//!
//! Unix only; on Windows [`Notifier`] is a no-op (the service wrapper there has no such
//! protocol).

use std::time::Duration;

/// Where notifications go; inert when the process was not started by a service manager
/// that listens.
#[derive(Debug)]
pub struct Notifier {
    #[cfg(unix)]
    target: Option<Target>,
    /// A send failed already: later failures are not logged again.
    #[cfg(unix)]
    failed: std::sync::atomic::AtomicBool,
}

#[cfg(unix)]
#[derive(Debug)]
struct Target {
    /// What `NOTIFY_SOCKET` said, for messages.
    name: String,
    socket: std::os::unix::net::UnixDatagram,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`. An address that cannot be used is logged (with what to check)
    /// and leaves the notifier inert.
    pub fn from_env() -> Self {
        #[cfg(unix)]
        {
            let target = std::env::var_os("NOTIFY_SOCKET")
                .filter(|name| !name.is_empty())
                .and_then(|name| {
                    let name = name.to_string_lossy().into_owned();
                    match connect(&name) {
                        Ok(socket) => Some(Target { name, socket }),
                        Err(error) => {
                            tracing::warn!(
                                %error,
                                "NOTIFY_SOCKET={name:?} cannot be used, so systemd will not \
                                 hear that conductor is ready; check the unit's Type= and \
                                 NotifyAccess="
                            );
                            None
                        }
                    }
                });
            Self {
                target,
                failed: std::sync::atomic::AtomicBool::new(false),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Sends `lines` (`READY=1`, `STATUS=...`) as one datagram, so systemd applies them
    /// together. Newlines inside a value would start a new assignment and are replaced.
    pub fn send(&self, lines: &[&str]) {
        #[cfg(unix)]
        {
            let Some(target) = &self.target else {
                return;
            };
            let mut message = String::new();
            for line in lines {
                message.push_str(&line.replace('\n', " "));
                message.push('\n');
            }
            if let Err(error) = target.socket.send(message.as_bytes())
                && !self.failed.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!(
                    %error,
                    "cannot notify systemd at {:?}; if the unit has WatchdogSec=, systemd \
                     will restart conductor",
                    target.name
                );
            }
        }
        #[cfg(not(unix))]
        {
            let _ = lines;
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&["READY=1", &format!("STATUS={status}")]);
    }

    /// `STATUS=...`: what `systemctl status` shows under the unit.
    pub fn status(&self, status: &str) {
        self.send(&[&format!("STATUS={status}")]);
    }

    /// `WATCHDOG=1`: the daemon's loop is healthy.
    pub fn watchdog(&self) {
        self.send(&["WATCHDOG=1"]);
    }

    /// `RELOADING=1`, with the `MONOTONIC_USEC` that systemd 253 and newer require beside it
    /// (older ones ignore it). `READY=1` follows when the reload is done.
    pub fn reloading(&self) {
        let mut lines = vec!["RELOADING=1".to_owned()];
        if let Some(usec) = monotonic_usec() {
            lines.push(format!("MONOTONIC_USEC={usec}"));
        }
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        self.send(&lines);
    }

    /// `STOPPING=1` with a status line: the graceful shutdown has begun.
    pub fn stopping(&self, status: &str) {
        self.send(&["STOPPING=1", &format!("STATUS={status}")]);
    }
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as `sd_watchdog_enabled(3)`
/// advises, when the watchdog is on and meant for this process (`WATCHDOG_PID` absent or
/// ours). `None`: no watchdog.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.trim().parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    Some(Duration::from_micros(usec) / 2)
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
#[cfg(unix)]
fn monotonic_usec() -> Option<u64> {
    use nix::time::{ClockId, clock_gettime};
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).ok()?;
    let seconds = u64::try_from(now.tv_sec()).ok()?;
    let micros = u64::try_from(now.tv_nsec()).ok()? / 1_000;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(not(unix))]
fn monotonic_usec() -> Option<u64> {
    None
}

/// An unbound datagram socket connected to `name`: a path, or `@name` in the abstract
/// namespace.
#[cfg(unix)]
fn connect(name: &str) -> std::io::Result<std::os::unix::net::UnixDatagram> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    match name.strip_prefix('@') {
        Some(abstract_name) => connect_abstract(&socket, abstract_name)?,
        None => socket.connect(name)?,
    }
    Ok(socket)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn connect_abstract(socket: &std::os::unix::net::UnixDatagram, name: &str) -> std::io::Result<()> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    socket.connect_addr(&address)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn connect_abstract(_socket: &std::os::unix::net::UnixDatagram, name: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("@{name} is an abstract socket, which only Linux has"),
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_as_one_datagram_at_a_path_socket() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier {
            target: Some(Target {
                name: path.display().to_string(),
                socket: connect(&path.to_string_lossy()).expect("connect"),
            }),
            failed: std::sync::atomic::AtomicBool::new(false),
        };
        notifier.ready("1/1 modems\nready");
        let mut buffer = [0u8; 256];
        let n = listener.recv(&mut buffer).expect("a datagram");
        assert_eq!(
            std::str::from_utf8(&buffer[..n]),
            Ok("READY=1\nSTATUS=1/1 modems ready\n")
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_at_sign_names_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("conductor-notify-test-{}", std::process::id());
        let address =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let listener = std::os::unix::net::UnixDatagram::bind_addr(&address).expect("bind");
        let socket = connect(&format!("@{name}")).expect("connect");
        socket.send(b"WATCHDOG=1\n").expect("send");
        let mut buffer = [0u8; 64];
        let n = listener.recv(&mut buffer).expect("a datagram");
        assert_eq!(&buffer[..n], b"WATCHDOG=1\n");
    }

    #[test]
    fn the_monotonic_clock_reads_as_microseconds() {
        let first = monotonic_usec().expect("clock_gettime");
        assert!(first > 0);
        assert!(monotonic_usec().expect("again") >= first);
    }
}
