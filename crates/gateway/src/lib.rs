//! Conductor's daemon core: the inbound pipeline, the outbound dispatcher, the SIM lifecycle,
//! the health model and the events, between the modem driver and the store.
//!
//! Layer "gateway" of `shared/DESIGN.md`. It talks to modems only through
//! `conductor-modem`'s handles (one driver task owns each port) and to the database only
//! through `conductor-store`'s operations (each one short transaction, never held across an AT
//! command). Not here: config files, signals, logging setup, the CLI and the HTTP API (the
//! binary, which calls [`Gateway::run`] and cancels the token on SIGTERM/SIGINT); PDU
//! encoding and decoding (`conductor-sms`); SQL (`conductor-store`).
//!
//! # Promises kept here
//! 1. *No inbound loss*: a SIM copy is deleted only when the store lists it as committed, and
//!    only after its slot was read again and held the same fingerprint (module
//!    `sim_lifecycle`). A full SIM is drained, not dropped.
//! 2. *Stored once*: every read of a copy goes through one fingerprint function, so `+CMTI`,
//!    sweeps and restarts agree.
//! 3. *Sent at most once*: rows are claimed (`sending`) and each part recorded before
//!    `AT+CMGS`; only refusals before the prompt are retried; an ambiguous send is `unknown`;
//!    start-up recovers what a crash left in flight. Shutdown never abandons a send between
//!    the prompt and its verdict.
//! 4. *External writers*: a change poll (`PRAGMA data_version`, every 250 ms) picks up rows
//!    others insert and mark read.
//! 5. *Clear answers*: undecodable PDUs are stored raw with a reason; refusals keep the CMS
//!    code and its meaning on the row; nothing a modem or the network does stops the daemon.
//! 6. *The modem may vanish*: a modem that is down is left out of claiming (its named rows
//!    wait, others go to the modems that are up), shown `down` in its status row, and swept
//!    when it returns.
//!
//! # Tasks
//! ```text
//!             shutdown token (the binary: SIGTERM/SIGINT)
//!                   │
//!   ┌───────────────┴── supervisor (JoinSet; the order of a graceful stop) ─────────────┐
//!   │                                                                                     │
//!   │  dispatcher ── claim_due (per ready modem, ≤4 in flight, rate limit) ──► jobs ─┐   │
//!   │     ▲  wakes: queue(), change poll, job done, modem ready, retry due, timer     │   │
//!   │     │                                                                           ▼   │
//!   │  change poll ──(data_version)──► dispatcher, workers       modem worker (one per modem)
//!   │                                                            URCs: +CMTI +CDSI +CDS │
//!   │  multipart flush ──(flush_incomplete on a timer)           sweep, deletions, CPMS │
//!   │                                                            sends, status row      │
//!   │                                                                 │ ModemHandle      │
//!   └─────────────────────────────────────────────────────────────────┼────────────────┘
//!                                                                     ▼
//!                                              conductor-modem task (owns the port)
//! ```
//!
//! # Use
//! ```no_run
//! # async fn demo(store: conductor_store::Store) -> Result<(), conductor_gateway::GatewayError> {
//! use conductor_gateway::{Gateway, GatewayConfig, ModemSettings, TokioClock};
//! use tokio_util::sync::CancellationToken;
//!
//! let config = GatewayConfig {
//!     modems: vec![ModemSettings::new("sim1", "/dev/ttyUSB2")],
//!     ..GatewayConfig::default()
//! };
//! let shutdown = CancellationToken::new();
//! Gateway::run(config, store, TokioClock::shared(), shutdown).await
//! # }
//! ```
#![warn(missing_docs)]

mod balance;
mod calls;
mod clock;
mod config;
mod counters;
mod error;
mod fingerprint;
mod health;
mod inbound;
mod lease;
mod outbound;
mod policy;
mod reports;
mod sim_lifecycle;
mod supervisor;
mod worker;

pub use balance::{BalanceCheck, UssdRequestError, parse_amount};
pub use calls::CallSettings;
pub use clock::{Clock, ManualClock, TokioClock};
pub use conductor_store::policy::{Limits, NumberPolicy, PrefixRule, Routing, Strategy};
pub use config::{
    DeletePolicy, Delivery, GatewayConfig, InboundConfig, ModemSettings, OutboundConfig, QuietHours,
};
pub use counters::{CounterSnapshot, ErrorCount, ErrorKind, ReconnectCount};
pub use error::GatewayError;
pub use lease::{ClusterConfig, LeaseStanding, default_node_id};
pub use supervisor::{Connectors, Gateway, GatewayHandle, ModemSnapshot};
