//! A raw AT console on a device, for `conductor modem at`: the debugging session operators
//! otherwise open with minicom, without init and without changing any setting.
//!
//! Why not a [`crate::ModemHandle`]: spawning the modem task runs init (CPMS, CNMI, CSCA),
//! which is exactly what someone debugging a modem does not want done behind their back.
//! This drives one [`Link`] directly: a command, its answer, and the URCs that arrived
//! meanwhile, nothing else.

use conductor_at::{Command, Response, Urc};
use tokio::sync::mpsc;

use crate::errors::ModemError;
use crate::link::{Hooks, Link, UrcOutbox};
use crate::probe::ProbeOptions;
use crate::state::RegistrationSummary;
use crate::transport::{BoxedIo, Device, open};

/// URCs kept between two commands; more are dropped (a console shows recent ones).
const URC_BUFFER: usize = 256;

/// An open console session.
pub struct Console {
    link: Link,
    outbox: UrcOutbox,
    urcs: mpsc::Receiver<Urc>,
    registrations: [Option<RegistrationSummary>; 3],
}

impl Console {
    /// Opens `device` (a serial path or `tcp://host:port`).
    pub async fn open(device: &str, options: &ProbeOptions) -> Result<Console, ModemError> {
        let parsed = Device::parse(device)?;
        let io = open(&parsed, options.serial, options.connect_timeout).await?;
        Ok(Console::with_io(io, device, options))
    }

    /// Wraps an already open transport (tests pass an in-memory pipe).
    pub fn with_io(io: BoxedIo, device: &str, options: &ProbeOptions) -> Console {
        let (tx, urcs) = mpsc::channel(URC_BUFFER);
        Console {
            link: Link::new(io, device, options.engine.clone(), options.write_timeout, 1),
            outbox: UrcOutbox::new(tx, URC_BUFFER),
            urcs,
            registrations: [None; 3],
        }
    }

    /// Sends one command line (`AT...`) and returns its answer plus the URCs that arrived
    /// while it ran. `AT+CMGS`/`AT+CMGW` are refused: their data phase needs a PDU.
    pub async fn command(&mut self, line: &str) -> Result<(Response, Vec<Urc>), ModemError> {
        let command = Command::new(line.trim())?;
        let upper = command.line().to_ascii_uppercase();
        if upper.starts_with("AT+CMGS") || upper.starts_with("AT+CMGW") {
            return Err(ModemError::Unsupported {
                what: "AT+CMGS and AT+CMGW need a data phase the console cannot drive; use \
                       `conductor pdu encode` and `conductor send` instead"
                    .to_owned(),
            });
        }
        let mut hooks = Hooks {
            outbox: &mut self.outbox,
            state: None,
            shutdown: None,
            abort_on_startup: false,
            registrations: &mut self.registrations,
        };
        let reply = self
            .link
            .exec(&mut hooks, command)
            .await
            .map_err(|e| e.error)?;
        let mut urcs = Vec::new();
        while let Ok(urc) = self.urcs.try_recv() {
            urcs.push(urc);
        }
        Ok((reply.response, urcs))
    }
}
