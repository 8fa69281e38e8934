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
//! Not here: TLS (see [`HttpConfig::check`]), the gateway's internals, the config file (the
//! binary resolves it into [`HttpConfig`] and [`webhooks::WebhookConfig`]).
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
//! [`Server::start`], which binds, refuses an unsafe setup, serves until the shutdown token is
//! cancelled (SSE streams end then too) and runs the webhook deliveries.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
mod dashboard;
pub mod error;
mod events;
mod json;
mod metrics;
mod server;
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

/// The clock every time written by the API comes from (the gateway's, in the binary).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Called after the API queued or requeued rows: wakes the gateway's dispatcher.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

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
        }
    }
}

impl HttpConfig {
    /// Refuses a setup that would expose the API without authentication: a listen address
    /// that is not loopback needs at least one token.
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
            }),
        }
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
