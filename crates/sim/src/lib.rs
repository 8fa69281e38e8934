//! Conductor's virtual modem and virtual network: what every later test, benchmark and the
//! demo run against.
//!
//! Layer "sim" of `shared/DESIGN.md`. A virtual modem answers the AT command set real modems
//! answer (ITU-T V.250, 3GPP TS 27.005 and TS 27.007: echo, chained commands, PDU and text
//! mode, `+CMS`/`+CME` errors, URCs, a SIM of N slots), deviates from the book the way the
//! models in `docs/real-modems.md` do (personalities), and misbehaves on demand (faults). A
//! virtual network routes messages between modems, to and from outside phones, with status
//! reports and with messages held while a modem cannot take them.
//!
//! Why its own AT parser: it depends on `conductor-sms` only, never on the driver's AT engine,
//! so a parsing bug in the driver cannot hide behind the same bug here. Its fidelity to the
//! specs and to real devices is what makes every other test meaningful.
//!
//! # Layout
//! - [`virtual_modem`]: the sans-IO DCE ([`VirtualModem`]), bytes and `now` in, bytes out.
//! - [`command_line`]: DCE-side parsing of `AT…` lines; `commands` (private): one file per
//!   command family; [`codes`]: final result codes and their texts.
//! - [`sim_card`]: the message memories; [`personality`]: per-model deviations;
//!   [`faults`]: what can go wrong on demand.
//! - [`network`]: the sans-IO virtual network ([`VirtualNetwork`]).
//! - [`serve`]: adapters to TCP (one client at a time), a pty (behind a stable symlink) and an
//!   in-memory duplex, around a [`Simulator`] handle; [`control`]: JSON lines over TCP.
//!
//! # Use
//! In-process, sans-IO: build a [`VirtualModem`] or a [`VirtualNetwork`] and feed it bytes at
//! instants you choose. With I/O: [`spawn`] a [`SimulatorConfig`], then connect over TCP, the
//! pty path, or [`Simulator::connect`]; drive it with [`Simulator`]'s methods or the control
//! port. The `conductor sim` command calls [`serve`].
//!
//! ```
//! use std::time::Instant;
//! use conductor_sim::{ModemOptions, SendLatency, VirtualModem};
//!
//! let now = Instant::now();
//! let mut modem = VirtualModem::new(now, ModemOptions {
//!     send_latency: SendLatency::ZERO,
//!     ..ModemOptions::default()
//! });
//! modem.handle_input(now, b"AT+CMGF=0;+CPMS?\r");
//! let out = modem.poll_output().unwrap_or_default();
//! assert_eq!(
//!     String::from_utf8_lossy(&out),
//!     "AT+CMGF=0;+CPMS?\r\r\n+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30\r\n\r\nOK\r\n"
//! );
//! ```
#![warn(missing_docs)]

pub mod codes;
pub mod command_line;
mod commands;
pub mod control;
pub mod faults;
mod format;
pub mod network;
pub mod personality;
#[cfg(unix)]
mod pty;
pub mod serve;
pub mod sim_card;
pub mod virtual_modem;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use commands::ussd::{CallRecord, DEFAULT_BALANCE_TEXT};
pub use faults::{Fault, FaultKind, RejectStage};
pub use network::{
    HeldMessage, ModemId, NetworkConfig, SimSnapshot, Stats, StatusReportSettings,
    SubmittedMessage, VirtualNetwork,
};
pub use personality::Personality;
pub use serve::{Endpoints, ModemEndpoint, RunningSimulator, SimError, Simulator, serve, spawn};
pub use virtual_modem::{ModemOptions, SendLatency, VirtualModem};

/// One more modem on the network, besides the first one that [`SimulatorConfig`]'s own fields
/// describe.
#[derive(Clone, Debug, PartialEq)]
pub struct ModemConfig {
    /// Its number (MSISDN).
    pub number: String,
    /// Its model.
    pub personality: Personality,
    /// SIM slots.
    pub sim_capacity: usize,
    /// SIM PIN, if locked.
    pub pin: Option<String>,
    /// TCP address to serve it on.
    pub tcp: Option<SocketAddr>,
    /// Serve it on a pty as well.
    pub pty: bool,
}

/// Everything `conductor sim` and the tests configure.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorConfig {
    /// Serve the first modem over TCP at this address (port 0: any free port).
    pub tcp: Option<SocketAddr>,
    /// Serve the first modem on a pty, through a symlink `<pty_dir>/modem0`.
    pub pty: bool,
    /// Where the pty symlinks go; `None`: a fresh folder in the temp dir.
    pub pty_dir: Option<PathBuf>,
    /// SIM slots of the first modem.
    pub sim_capacity: usize,
    /// How long a send takes (every modem).
    pub send_latency: SendLatency,
    /// The control interface's address (loopback).
    pub control: Option<SocketAddr>,
    /// Seed of every random choice: the same seed and the same inputs give the same bytes.
    pub seed: u64,
    /// The first modem's model.
    pub personality: Personality,
    /// The first modem's number.
    pub own_number: String,
    /// The first modem's SIM PIN, if locked.
    pub pin: Option<String>,
    /// Status reports.
    pub status_reports: StatusReportSettings,
    /// Unix seconds the start stands for; `None`: the system clock at start.
    pub epoch_unix: Option<i64>,
    /// Faults applied to the first modem at start.
    pub faults: Vec<Fault>,
    /// More modems.
    pub extra_modems: Vec<ModemConfig>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            tcp: None,
            pty: false,
            pty_dir: None,
            sim_capacity: 30,
            send_latency: SendLatency::default(),
            control: None,
            seed: 0,
            personality: Personality::generic(),
            own_number: "+15550000001".to_owned(),
            pin: None,
            status_reports: StatusReportSettings::default(),
            epoch_unix: None,
            faults: Vec::new(),
            extra_modems: Vec::new(),
        }
    }
}
