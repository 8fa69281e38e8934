//! Conductor's HTTP side: the JSON API under `/api/v1`, a live event stream (Server-Sent
//! Events), Prometheus metrics, signed webhooks and the dashboard, served from `run` and `demo`.
//!
//! Why a crate of its own: n8n, Home Assistant and scripts should not need SQL, and the
//! operator should see every modem at a glance (issue 7). Everything here reads and writes
//! the database through [`conductor_store::Store`], never a modem (DESIGN.md "Database": the
//! API reads what the daemon records). The only link to the running gateway is an optional
//! [`Waker`] that tells its dispatcher a row was queued, so a `POST` goes out at once instead
//! of at the next change poll.
//!
//! The gateway's in-memory counters (CMS/CME errors by code, reconnects) reach `/metrics`
//! through an optional [`CounterSource`] set with [`AppState::with_counters`]; without one (no
//! gateway in the process) those two families are left out.
//!
//! TLS, when configured, is rustls on both sides ([`tls`]): the listener (`http.tls`) and
//! https webhook receivers. Not here: the gateway's internals, the config file (the binary
//! resolves it into [`HttpConfig`] and [`webhooks::WebhookConfig`]).
//!
//! # Promises
//! - 4 (external writers are first-class): every handler is one short store call; nothing
//!   holds a transaction across a request.
//! - 5 (clear answers): every failure is an [`ApiError`] naming the field at fault.
//! - A webhook receiver that is down never blocks message handling: deliveries run in their
//!   own tasks, one per endpoint, from a persistent outbox ([`webhooks`]).
//!
//! # How to drive it
//! Build an [`AppState`], then either [`api::router`] (tests call it with `oneshot`) or
//! [`Server::start`], which binds, refuses an unsafe setup, serves (over TLS when
//! [`HttpConfig::tls`] is set) until the shutdown token is cancelled (SSE streams end then too),
//! runs the webhook deliveries and prunes expired idempotency keys.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
mod dashboard;
pub mod error;
mod events;
mod json;
mod metrics;
mod server;
pub mod tls;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use conductor_store::Store;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

pub use auth::{Scope, Token};
pub use error::ApiError;
pub use server::{Server, StartError};
pub use tls::{TlsError, TlsFiles};

/// The clock every time written by the API comes from (the gateway's, in the binary).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Called after the API queued or requeued rows: wakes the gateway's dispatcher.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Reads the running gateway's counters for `/metrics` (the binary adapts
/// `GatewayHandle::counters`; this crate does not depend on the gateway).
pub type CounterSource = Arc<dyn Fn() -> ModemCounters + Send + Sync>;

/// Runs a USSD code on a modem of the gateway in this process (the binary adapts
/// `GatewayHandle::ussd`): (modem, code) to the decoded answer as JSON, or why not.
pub type UssdRunner = Arc<
    dyn Fn(
            String,
            String,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<serde_json::Value, UssdFailure>> + Send>,
        > + Send
        + Sync,
>;

/// Why a USSD request through the API failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UssdFailure {
    /// No such modem is served (404).
    UnknownModem(String),
    /// The modem or the network failed (502), with what to do.
    Modem(String),
}

/// What the gateway counts in memory since it started, per modem.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModemCounters {
    /// `+CMS ERROR` / `+CME ERROR` answers.
    pub errors: Vec<ModemErrorCount>,
    /// Times each modem came back after losing its link or restarting: (modem, count).
    pub reconnects: Vec<(String, u64)>,
}

/// How often a modem answered with one error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModemErrorCount {
    /// The modem's id.
    pub modem: String,
    /// `cms` or `cme`.
    pub kind: &'static str,
    /// The code, or `text` for a verbose answer that maps to no code.
    pub code: String,
    /// How many times.
    pub count: u64,
}

/// The server's settings, resolved from the config's `http` section.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Where to listen. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Bearer tokens (hashed). With none, the API is open, which is allowed only on a
    /// loopback address.
    pub tokens: Vec<Token>,
    /// Largest request body accepted, in bytes. Default 1 MiB.
    pub body_limit: usize,
    /// A request that has not produced its response headers after this long gets 503.
    /// Default 30 s. (An SSE stream answers at once, so this does not cut it.)
    pub request_timeout: Duration,
    /// A modem status row older than this counts as stale: the modem is not ready, whatever
    /// the row says (the daemon rewrites rows at least every 15 s). Default 60 s.
    pub modem_stale_after: Duration,
    /// The configured modems' ids: a `modem` field must name one, and a configured modem
    /// with no status row yet is shown as `unknown`. Empty: anything goes.
    pub modems: Vec<String>,
    /// How often the event stream looks for new events. Default 200 ms.
    pub events_poll: Duration,
    /// Serve HTTPS with this certificate and key (read at [`Server::start`]). Default: plain
    /// HTTP.
    pub tls: Option<TlsFiles>,
    /// How long an `Idempotency-Key` is remembered: a retry within it gets the first answer,
    /// a reuse after it queues anew. Default 24 h.
    pub idempotency_ttl: Duration,
    /// Number normalisation and the part limit: `POST /messages` refuses with 422 what the
    /// gateway would fail, and `/messages/estimate` counts parts as it will.
    pub sending: conductor_store::policy::SendRules,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tokens: Vec::new(),
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            modem_stale_after: Duration::from_secs(60),
            modems: Vec::new(),
            events_poll: Duration::from_millis(200),
            tls: None,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            sending: conductor_store::policy::SendRules::default(),
        }
    }
}

impl HttpConfig {
    /// Refuses a setup that would expose the API without authentication: a listen address
    /// that is not loopback needs at least one token, with TLS or without (TLS hides the
    /// traffic; it does not say who may send).
    pub fn check(&self) -> Result<(), StartError> {
        if !self.listen.ip().is_loopback() && self.tokens.is_empty() {
            return Err(StartError::NoTokens {
                listen: self.listen,
            });
        }
        Ok(())
    }
}

/// What every handler shares: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: HttpConfig,
    clock: Clock,
    waker: Option<Waker>,
    shutdown: CancellationToken,
    counters: Option<CounterSource>,
    ussd: Option<UssdRunner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.inner.store)
            .field("listen", &self.inner.config.listen)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `store` with the system clock, no waker and a shutdown token of its own.
    pub fn new(store: Store, config: HttpConfig) -> Self {
        Self::build(
            store,
            config,
            Arc::new(Timestamp::now),
            None,
            CancellationToken::new(),
        )
    }

    /// Everything spelled out.
    pub fn build(
        store: Store,
        config: HttpConfig,
        clock: Clock,
        waker: Option<Waker>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                clock,
                waker,
                shutdown,
                counters: None,
                ussd: None,
            }),
        }
    }

    /// The same state, with the gateway's counters for `/metrics`.
    pub fn with_counters(self, counters: CounterSource) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                store: inner.store.clone(),
                config: inner.config.clone(),
                clock: Arc::clone(&inner.clock),
                waker: inner.waker.clone(),
                shutdown: inner.shutdown.clone(),
                counters: Some(counters),
                ussd: inner.ussd.clone(),
            }),
        }
    }

    /// The same state, running USSD codes through the gateway in this process.
    pub fn with_ussd(self, ussd: UssdRunner) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                store: inner.store.clone(),
                config: inner.config.clone(),
                clock: Arc::clone(&inner.clock),
                waker: inner.waker.clone(),
                shutdown: inner.shutdown.clone(),
                counters: inner.counters.clone(),
                ussd: Some(ussd),
            }),
        }
    }

    /// The USSD runner, if a gateway runs in this process.
    pub(crate) fn ussd(&self) -> Option<&UssdRunner> {
        self.inner.ussd.as_ref()
    }

    /// The gateway's counters now, if a gateway runs in this process.
    pub fn counters(&self) -> Option<ModemCounters> {
        self.inner.counters.as_ref().map(|source| source())
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// Now, by the clock in force.
    pub fn now(&self) -> Timestamp {
        (self.inner.clock)()
    }

    /// The clock.
    pub fn clock(&self) -> Clock {
        Arc::clone(&self.inner.clock)
    }

    /// Cancelled when the server shuts down: long-lived responses (SSE) end on it.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Tells the gateway that rows were queued.
    pub(crate) fn wake(&self) {
        if let Some(waker) = &self.inner.waker {
            waker();
        }
    }
}
