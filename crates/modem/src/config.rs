//! The settings of one modem task. The binary's config layer builds a [`ModemConfig`] from the
//! user's file (validated there, "parse, don't validate"); tests build it with struct update
//! syntax over [`ModemConfig::new`].

use std::fmt;
use std::time::Duration;

use crate::transport::{FlowControl, SerialSettings};

/// A SIM PIN. Its `Debug` prints a mask, it has no `Display`, and the driver never logs the
/// command that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct SimPin(String);

impl SimPin {
    /// Wraps a PIN. Whether it is 4 to 8 digits is checked when it is sent (and a bad one is
    /// reported without its value).
    pub fn new(pin: impl Into<String>) -> SimPin {
        SimPin(pin.into())
    }

    /// The PIN itself, for the one command that needs it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SimPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimPin(****)")
    }
}

/// Settings of one modem task.
#[derive(Debug, Clone)]
pub struct ModemConfig {
    /// The modem's name in logs, spans and health (`modems[].name`).
    pub name: String,
    /// Where it is: a serial path (`/dev/ttyUSB2`, `/dev/pts/5`, `COM3`) or `tcp://host:port`.
    pub device: String,
    /// Baud rate and flow control of a serial port.
    pub serial: SerialSettings,
    /// The SIM PIN, entered when `AT+CPIN?` says `SIM PIN`.
    pub pin: Option<SimPin>,
    /// The environment variable the PIN was read from (`modems[].pin_env`), so the advice
    /// for a missing or wrong PIN names what to change. Only its name, never its value.
    pub pin_env: Option<String>,
    /// Whether the modem may send while roaming (`modems[].allow_roaming`, default true:
    /// most IoT SIMs are roaming SIMs, and refusing would stop them entirely). Refusing
    /// protects a home SIM from roaming charges: sending pauses until it is home again.
    pub allow_roaming: bool,
    /// Whether a modem that stopped answering may be reset with `AT+CFUN=1,1`
    /// (`modems[].allow_reset`). Off by default: a reset drops the radio for half a minute
    /// and some deployments want a human to decide; the port is reopened either way.
    pub allow_reset: bool,
    /// Per-modem corrections of the quirks table (`modems[].quirks`); see [`crate::quirks`].
    pub quirks: crate::quirks::QuirksOverride,
    /// The message memory to use for reading and receiving (`SM`, `ME`, `MT`); `None` prefers
    /// `SM` and falls back to what the modem offers.
    pub storage: Option<String>,
    /// The service centre address to set when the SIM carries none (`+447958879879`).
    pub smsc: Option<String>,
    /// How long init waits for a SIM that answers "busy" after power-on or PIN entry.
    pub sim_ready_timeout: Duration,
    /// First wait before reconnecting after an outage; doubles per failed attempt.
    pub backoff_initial: Duration,
    /// The longest wait between reconnect attempts.
    pub backoff_max: Duration,
    /// Consecutive command timeouts after which the modem counts as hung and the driver
    /// escalates: ESC and an `AT` probe, then `AT+CFUN=1,1` (if `allow_reset`), then a
    /// reopened port (see [`crate::escalation`]).
    pub max_consecutive_timeouts: u32,
    /// How long to wait after a start-up notice (`RDY`, `SMS Ready`, …) before re-running
    /// init, so the burst of notices a booting modem sends triggers one init, not five.
    pub reinit_settle: Duration,
    /// How often an idle task refreshes signal, registration and storage. It doubles as the
    /// keep-alive that finds a hung modem. `None` turns it off (scripted tests).
    pub refresh_interval: Option<Duration>,
    /// Bound on one write and flush to the port; a stuck write counts as a lost connection.
    pub write_timeout: Duration,
    /// How long opening a TCP device may take.
    pub connect_timeout: Duration,
    /// Requests waiting for the task (handles block when it is full: back-pressure).
    pub request_queue: usize,
    /// URCs waiting for the receiver. Beyond it the task keeps a backlog of the same size;
    /// only when both are full are URCs dropped (and counted in the state).
    pub urc_queue: usize,
    /// The AT engine's limits.
    pub engine: conductor_at::Config,
    /// Find the port by the modem's IMEI/ICCID at every (re)connect instead of opening
    /// `device` as it is (`modems[].imei`/`.iccid`), so renumbering after a USB reset does not
    /// lose the modem. `None`: open `device`.
    pub locate: Option<crate::identity::Locate>,
}

impl ModemConfig {
    /// Defaults for everything but the name and device.
    pub fn new(name: impl Into<String>, device: impl Into<String>) -> ModemConfig {
        ModemConfig {
            name: name.into(),
            device: device.into(),
            serial: SerialSettings {
                baud_rate: 115_200,
                flow_control: FlowControl::None,
            },
            pin: None,
            pin_env: None,
            allow_roaming: true,
            allow_reset: false,
            quirks: crate::quirks::QuirksOverride::default(),
            storage: None,
            smsc: None,
            sim_ready_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            max_consecutive_timeouts: 3,
            reinit_settle: Duration::from_secs(2),
            refresh_interval: Some(Duration::from_secs(60)),
            write_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            request_queue: 32,
            urc_queue: 256,
            engine: conductor_at::Config::default(),
            locate: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_masked_in_debug_output() {
        let config = ModemConfig {
            pin: Some(SimPin::new("4321")),
            ..ModemConfig::new("m1", "/dev/ttyUSB2")
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("4321"), "{printed}");
        assert!(printed.contains("SimPin(****)"));
    }
}
