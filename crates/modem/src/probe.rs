//! `conductor modem probe DEVICE`: open a device, ask it who it is, change nothing, close it.
//!
//! Why separate from the task: probing is a one-shot conversation for a person at a terminal,
//! often before any config exists. It must not leave settings behind (no `AT&W`, no storage,
//! indication or SMSC changes, no PIN attempts), and it must say what to check when nothing
//! answers. DESIGN "Decisions / Database": `status` and `health` never open a port; `probe` is
//! the one command that does, on purpose, and only while the daemon does not hold the port.

use std::time::Duration;

use crate::config::ModemConfig;
use crate::errors::ModemError;
use crate::init::{ProbeReport, probe_read_only};
use crate::link::{Direct, Hooks, Link, UrcOutbox};
use crate::transport::{BoxedIo, Device, SerialSettings, open};

/// How to open and talk to the probed device.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Baud rate and flow control of a serial port.
    pub serial: SerialSettings,
    /// How long opening a TCP device may take.
    pub connect_timeout: Duration,
    /// Bound on one write to the port.
    pub write_timeout: Duration,
    /// The AT engine's limits.
    pub engine: conductor_at::Config,
}

impl Default for ProbeOptions {
    fn default() -> ProbeOptions {
        ProbeOptions {
            serial: SerialSettings::default(),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            engine: conductor_at::Config::default(),
        }
    }
}

/// Opens `device` (a serial path or `tcp://host:port`) and probes it.
pub async fn probe(device: &str, options: &ProbeOptions) -> Result<ProbeReport, ModemError> {
    let parsed = Device::parse(device)?;
    let io = open(&parsed, options.serial, options.connect_timeout).await?;
    probe_with(io, device, options).await
}

/// Probes an already open transport (tests pass an in-memory pipe).
pub async fn probe_with(
    io: BoxedIo,
    device: &str,
    options: &ProbeOptions,
) -> Result<ProbeReport, ModemError> {
    let config = ModemConfig {
        serial: options.serial,
        engine: options.engine.clone(),
        write_timeout: options.write_timeout,
        ..ModemConfig::new("probe", device)
    };
    let mut link = Link::new(
        io,
        device,
        config.engine.clone(),
        config.write_timeout,
        config.max_consecutive_timeouts,
    );
    let mut outbox = UrcOutbox::discard();
    let mut registrations = [None; 3];
    let mut direct = Direct {
        link: &mut link,
        hooks: Hooks {
            outbox: &mut outbox,
            state: None,
            shutdown: None,
            abort_on_startup: false,
            registrations: &mut registrations,
        },
    };
    probe_read_only(&mut direct, &config).await
}
