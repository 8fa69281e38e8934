//! The modem driver: one tokio task per modem owns the port (serial or TCP) and the sans-IO
//! AT engine of `conductor-at`, and everyone else talks to it through a cloneable handle.
//!
//! Layer "modem" of `shared/DESIGN.md`, upper half. The engine decides what bytes mean; this
//! crate decides when to read, write and wait, what to send (init, typed operations), and
//! what to do when the modem vanishes. Not here: databases, PDU decoding (`conductor-sms`),
//! and any policy about which message to send or delete (the gateway).
//!
//! Keeps, for the layers above:
//! - promise 3 ("sent at most once"): [`ModemHandle::send_pdu`] says whether a failed send
//!   may have left ([`SendError::Ambiguous`]) and the driver never resends anything;
//! - promise 5 ("bad input gets a clear answer"): every failure is a typed [`ModemError`]
//!   with what to check, never a panic;
//! - promise 6 ("the modem may vanish"): lost ports, hung modems and restarts are detected,
//!   reported in [`ModemState`] and recovered with backoff and a fresh init;
//! - DESIGN "Receiving": `AT+CNMI` stores and announces (`<mt>`=1), never routes messages to
//!   the terminal.
//!
//! # Layout
//!
//! - [`transport`]: opening a serial port or a TCP connection, with classified errors.
//! - [`scan`]: listing the machine's serial ports and probing them (`conductor modem scan`).
//! - [`identity`]: finding a modem's port by IMEI/ICCID at every (re)connect.
//! - [`host`]: what the host does to a port (ModemManager, holders, permissions) and the fix.
//! - `link` (private): one open connection: the engine driven over the transport.
//! - [`task`]: the per-modem task ([`spawn`]), its ready loop and reconnects.
//! - [`handle`]: [`ModemHandle`], the cloneable way in.
//! - [`ops`]: the typed operations on the handle.
//! - [`ussd`]: USSD requests (`*100#`) and decoding their answers.
//! - [`calls`]: incoming calls (`RING`, `+CLIP`) as one event per call, and hanging up.
//! - `init` (private): init and the read-only probe.
//! - [`quirks`]: the per-model quirks table, overridable per modem.
//! - `escalation` (private): probe, reset, reopen for a modem that stopped answering.
//! - [`state`]: [`ModemState`], published on a `watch`.
//! - [`errors`]: [`ModemError`], [`SendError`].
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use conductor_modem::{ModemConfig, spawn};
//! use tokio_util::sync::CancellationToken;
//!
//! let shutdown = CancellationToken::new();
//! let mut modem = spawn(ModemConfig::new("m1", "/dev/ttyUSB2"), shutdown.clone())?;
//! let mut state = modem.state.clone();
//! state.wait_for(|s| s.is_ready()).await?;
//! let reference = modem.handle.send_pdu("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").await?;
//! while let Some(urc) = modem.urcs.recv().await {
//!     println!("{urc:?}");
//! }
//! # let _ = reference;
//! shutdown.cancel();
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod calls;
mod config;
pub mod console;
pub mod errors;
mod escalation;
pub mod handle;
pub mod host;
pub mod identity;
mod init;
mod link;
pub mod ops;
mod probe;
pub mod quirks;
pub mod scan;
pub mod state;
pub mod task;
pub mod transport;
pub mod ussd;

pub use calls::{CallEvent, CallTracker, HangUp};
pub use config::{ModemConfig, SimPin};
pub use console::Console;
pub use errors::{ModemError, SendError};
pub use handle::ModemHandle;
pub use host::HostRoots;
pub use identity::{Locate, ModemIdentity};
pub use init::ProbeReport;
pub use probe::{ProbeOptions, probe, probe_with};
pub use quirks::{Quirks, QuirksOverride};
pub use state::{
    Condition, Identity, MemoryReport, ModemState, Phase, Recoveries, RecoveryStep,
    RegistrationReport, RegistrationSummary, Settings, Signal, SimState, StatusReportRouting,
};
pub use task::{Modem, spawn, spawn_with};
pub use transport::{Device, FlowControl, OpenError, OpenErrorKind, SerialSettings};
pub use ussd::{UssdOptions, UssdReply, ussd_direct};

/// The AT engine's types that appear in this crate's API, re-exported so callers need not
/// depend on `conductor-at` for them.
pub use conductor_at::cmd::cmgl::ListEntry;
pub use conductor_at::cmd::cmgr::StoredMessage;
pub use conductor_at::cmd::cpms::Storage;
pub use conductor_at::{CmsCode, FinalResult, Response, Urc};
