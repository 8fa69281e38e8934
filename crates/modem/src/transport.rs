//! Opening the byte stream to a modem: a serial port (any path the OS opens: `/dev/ttyUSB2`,
//! a pseudo-terminal `/dev/pts/5`, `COM3`) or TCP (`tcp://host:port`, for ser2net and
//! network-attached modems).
//!
//! Why a module of its own: the task only needs "something to read and write", so everything
//! about devices lives here, and tests hand the task an in-memory duplex instead. Opening
//! is also where most operator mistakes show up (wrong path, missing `dialout` group,
//! ModemManager holding the port), so errors are classified into an [`OpenErrorKind`] whose
//! message says what to do, the way serialport-rs's `ErrorKind::NoDevice` says "unplugged".
//!
//! Not here: what is said over the stream (the engine and the task), and reconnecting (the
//! task calls [`Connect::connect`] again).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to a modem. Anything that reads and writes asynchronously qualifies, so
/// serial ports, TCP streams and `tokio::io::duplex` halves are all transports.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// An open transport, boxed so the task does not care which kind it is (rumqttc `framed.rs`).
pub type BoxedIo = Box<dyn Io>;

/// Where a modem is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Device {
    /// A serial device path, as the OS names it.
    Serial(String),
    /// A TCP endpoint (ser2net, a network-attached modem, the simulator's TCP server).
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

impl Device {
    /// Reads a device string: `tcp://host:port` (IPv6 as `tcp://[::1]:7000`), anything else
    /// is a serial path.
    pub fn parse(text: &str) -> Result<Device, OpenError> {
        let text = text.trim();
        let invalid = |why: &str| OpenError {
            device: text.to_owned(),
            kind: OpenErrorKind::Invalid,
            detail: why.to_owned(),
        };
        if text.is_empty() {
            return Err(invalid("the device string is empty"));
        }
        let Some(rest) = strip_prefix_ignore_case(text, "tcp://") else {
            return Ok(Device::Serial(text.to_owned()));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => return Err(invalid("a TCP device needs a port: tcp://host:port")),
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(invalid("a TCP device needs a host: tcp://host:port"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("the TCP port must be a number from 1 to 65535"))?;
        Ok(Device::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Serial(path) => f.write_str(path),
            Device::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Device::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// Serial flow control.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowControl {
    /// None: what USB modems (whose "serial" port is virtual) want.
    #[default]
    None,
    /// XON/XOFF.
    Software,
    /// RTS/CTS: what UART modules wired with flow-control lines want.
    Hardware,
}

/// How to open a serial port. Ignored for TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SerialSettings {
    /// Baud rate. USB modems ignore it; UART modules (SIM800) need the one they autobaud to
    /// or were set to.
    pub baud_rate: u32,
    /// Flow control.
    pub flow_control: FlowControl,
}

impl Default for SerialSettings {
    fn default() -> SerialSettings {
        SerialSettings {
            baud_rate: 115_200,
            flow_control: FlowControl::None,
        }
    }
}

/// Why a device could not be opened, classified so the message can say what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenErrorKind {
    /// The path does not exist (wrong name, modem not plugged in, not yet enumerated).
    NotFound,
    /// The OS refused access (the user is not in the `dialout` group).
    PermissionDenied,
    /// Another process holds the port exclusively (ModemManager, a second conductor,
    /// minicom).
    Busy,
    /// The device exists as a name but not as hardware: unplugged, or the modem is resetting
    /// (USB modems drop their ports while they reboot).
    Unplugged,
    /// Nothing accepts TCP connections at that address (ser2net not running, wrong port).
    Refused,
    /// The TCP connection did not complete in time.
    TimedOut,
    /// The device string itself is not valid.
    Invalid,
    /// Anything else; the detail has the OS's words.
    Other,
}

impl OpenErrorKind {
    /// Whether trying again later can succeed without anyone changing anything. A missing
    /// path counts: USB modems come back under the same name after a reset.
    pub fn is_transient(self) -> bool {
        !matches!(
            self,
            OpenErrorKind::PermissionDenied | OpenErrorKind::Invalid
        )
    }
}

/// A device that could not be opened, with what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot open {device}: {detail}; {}", self.advice())]
pub struct OpenError {
    /// The device string.
    pub device: String,
    /// The classified cause.
    pub kind: OpenErrorKind,
    /// The operating system's or library's own words.
    pub detail: String,
}

impl OpenError {
    /// What the operator should check, in a sentence.
    pub fn advice(&self) -> String {
        let device = &self.device;
        match self.kind {
            OpenErrorKind::NotFound => {
                "check the path and that the modem is plugged in (USB modems' AT port is often \
                 /dev/ttyUSB2; list them with `ls /dev/ttyUSB* /dev/ttyACM*`)"
                    .to_owned()
            }
            OpenErrorKind::PermissionDenied => {
                "add the user to the `dialout` group (`sudo usermod -aG dialout $USER`, then log \
                 in again)"
                    .to_owned()
            }
            OpenErrorKind::Busy => format!(
                "another process holds the port (ModemManager often does: `systemctl stop \
                 ModemManager`; `fuser {device}` shows who)"
            ),
            OpenErrorKind::Unplugged => {
                "the modem is unplugged or resetting; it is retried with backoff".to_owned()
            }
            OpenErrorKind::Refused => {
                "nothing accepts connections there (is ser2net or the modem's server running, \
                 and is the port right?)"
                    .to_owned()
            }
            OpenErrorKind::TimedOut => {
                "check the host address, the network and any firewall".to_owned()
            }
            OpenErrorKind::Invalid => {
                "use a serial path such as /dev/ttyUSB2 or COM3, or tcp://host:port".to_owned()
            }
            OpenErrorKind::Other => format!("check the device {device}"),
        }
    }
}

/// Something that can (re)open the modem's transport. The task calls it at start and after
/// every outage. [`DeviceConnector`] opens real devices; tests pass closures that hand out
/// in-memory pipes.
pub trait Connect: Send + 'static {
    /// Opens a fresh transport.
    fn connect(&mut self) -> Pin<Box<dyn Future<Output = Result<BoxedIo, OpenError>> + Send + '_>>;
}

impl<F, Fut> Connect for F
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<BoxedIo, OpenError>> + Send + 'static,
{
    fn connect(&mut self) -> Pin<Box<dyn Future<Output = Result<BoxedIo, OpenError>> + Send + '_>> {
        Box::pin(self())
    }
}

/// Opens a [`Device`] with [`open`].
#[derive(Debug, Clone)]
pub struct DeviceConnector {
    /// The device.
    pub device: Device,
    /// Serial settings (ignored for TCP).
    pub serial: SerialSettings,
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
}

impl Connect for DeviceConnector {
    fn connect(&mut self) -> Pin<Box<dyn Future<Output = Result<BoxedIo, OpenError>> + Send + '_>> {
        Box::pin(open(&self.device, self.serial, self.connect_timeout))
    }
}

/// Opens a device: a serial port with the given settings, or a TCP connection (Nagle off, so
/// a command line leaves at once).
pub async fn open(
    device: &Device,
    serial: SerialSettings,
    connect_timeout: Duration,
) -> Result<BoxedIo, OpenError> {
    match device {
        Device::Serial(path) => open_serial(path, serial),
        Device::Tcp { host, port } => {
            let name = device.to_string();
            let stream = tokio::time::timeout(
                connect_timeout,
                tokio::net::TcpStream::connect((host.as_str(), *port)),
            )
            .await
            .map_err(|_| OpenError {
                device: name.clone(),
                kind: OpenErrorKind::TimedOut,
                detail: format!("no connection within {connect_timeout:?}"),
            })?
            .map_err(|e| classify_io(&name, &e))?;
            // Best effort: a failure only costs latency.
            let _ = stream.set_nodelay(true);
            Ok(Box::new(stream))
        }
    }
}

fn open_serial(path: &str, settings: SerialSettings) -> Result<BoxedIo, OpenError> {
    use tokio_serial::SerialPortBuilderExt;
    let flow = match settings.flow_control {
        FlowControl::None => tokio_serial::FlowControl::None,
        FlowControl::Software => tokio_serial::FlowControl::Software,
        FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
    };
    let stream = tokio_serial::new(path, settings.baud_rate)
        .flow_control(flow)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .timeout(Duration::from_secs(1))
        .open_native_async()
        .map_err(|e| explain(classify_serial(path, &e)))?;
    Ok(Box::new(stream))
}

/// Adds what the host says (who holds a busy port, the group to join for a refused one) to an
/// open error's detail, so the daemon's log and status row carry the exact fix.
fn explain(mut error: OpenError) -> OpenError {
    let roots = crate::host::HostRoots::from_env();
    let path = std::path::Path::new(&error.device);
    if let Some(more) = crate::host::explain_open_failure(&roots, path, error.kind) {
        error.detail = format!("{}; {more}", error.detail);
    }
    error
}

/// Classifies a serial library error (serialport-rs maps `EBUSY` from its exclusive lock to
/// `NoDevice`, `ENOENT` to `NotFound`, `EACCES` to `PermissionDenied`).
pub fn classify_serial(device: &str, error: &tokio_serial::Error) -> OpenError {
    use tokio_serial::ErrorKind as K;
    let text = error.description.to_ascii_lowercase();
    let kind = match error.kind {
        K::Io(io::ErrorKind::NotFound) => OpenErrorKind::NotFound,
        K::Io(io::ErrorKind::PermissionDenied) => OpenErrorKind::PermissionDenied,
        K::NoDevice if text.contains("busy") => OpenErrorKind::Busy,
        K::NoDevice => OpenErrorKind::Unplugged,
        K::InvalidInput => OpenErrorKind::Invalid,
        _ => classify_text(&text),
    };
    OpenError {
        device: device.to_owned(),
        kind,
        detail: error.description.clone(),
    }
}

/// Classifies an I/O error from opening or using a device.
pub fn classify_io(device: &str, error: &io::Error) -> OpenError {
    let kind = match error.kind() {
        io::ErrorKind::NotFound => OpenErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => OpenErrorKind::PermissionDenied,
        io::ErrorKind::ConnectionRefused => OpenErrorKind::Refused,
        io::ErrorKind::TimedOut => OpenErrorKind::TimedOut,
        io::ErrorKind::InvalidInput => OpenErrorKind::Invalid,
        _ => classify_text(&error.to_string().to_ascii_lowercase()),
    };
    OpenError {
        device: device.to_owned(),
        kind,
        detail: error.to_string(),
    }
}

/// Last resort: the OS's words. `ENODEV`/`ENXIO` ("No such device") is what a serial port
/// gives once its USB device is gone; Windows says "access is denied" when another program
/// has the COM port open.
fn classify_text(text: &str) -> OpenErrorKind {
    if text.contains("busy") || text.contains("access is denied") {
        OpenErrorKind::Busy
    } else if text.contains("no such device") || text.contains("device not configured") {
        OpenErrorKind::Unplugged
    } else if text.contains("no such file") || text.contains("cannot find") {
        OpenErrorKind::NotFound
    } else if text.contains("permission denied") {
        OpenErrorKind::PermissionDenied
    } else {
        OpenErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_are_serial_paths_unless_they_say_tcp() {
        assert_eq!(
            Device::parse("/dev/ttyUSB2"),
            Ok(Device::Serial("/dev/ttyUSB2".into()))
        );
        assert_eq!(Device::parse("COM3"), Ok(Device::Serial("COM3".into())));
        assert_eq!(
            Device::parse("tcp://127.0.0.1:7000"),
            Ok(Device::Tcp {
                host: "127.0.0.1".into(),
                port: 7000
            })
        );
        assert_eq!(
            Device::parse("TCP://[::1]:7000").map(|d| d.to_string()),
            Ok("tcp://[::1]:7000".into())
        );
    }

    #[test]
    fn bad_tcp_device_strings_say_what_is_missing() {
        for bad in [
            "tcp://host",
            "tcp://:7000",
            "tcp://host:0",
            "tcp://host:http",
            "",
        ] {
            let error = Device::parse(bad).expect_err(bad);
            assert_eq!(error.kind, OpenErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn open_errors_say_what_to_do() {
        let busy = classify_serial(
            "/dev/ttyUSB2",
            &tokio_serial::Error::new(tokio_serial::ErrorKind::NoDevice, "Device or resource busy"),
        );
        assert_eq!(busy.kind, OpenErrorKind::Busy);
        assert!(busy.to_string().contains("ModemManager"), "{busy}");
        let denied = classify_io(
            "/dev/ttyUSB2",
            &io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(denied.to_string().contains("dialout"), "{denied}");
        let gone = classify_serial(
            "/dev/ttyUSB2",
            &tokio_serial::Error::new(tokio_serial::ErrorKind::Unknown, "No such device"),
        );
        assert_eq!(gone.kind, OpenErrorKind::Unplugged);
        assert!(!OpenErrorKind::PermissionDenied.is_transient());
        assert!(OpenErrorKind::NotFound.is_transient());
    }
}
