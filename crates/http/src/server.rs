//! [`Server`]: binds the listen address, refuses an unsafe setup, serves (HTTP, or HTTPS with
//! `http.tls`) until shutdown, and runs beside it the webhook deliveries and the pruning of
//! expired idempotency keys.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::tls::{TlsError, TlsListener};
use crate::webhooks::{self, WebhookConfig};
use crate::{AppState, api};

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Listening beyond loopback with no token would expose the API to the network.
    #[error(
        "http.listen is {listen}, which is not a loopback address, and no http.tokens are \
         configured: anyone on the network could send SMS. Add a token (its SHA-256 in \
         http.tokens[].sha256) or listen on 127.0.0.1"
    )]
    NoTokens {
        /// The address.
        listen: SocketAddr,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {listen}: {source} (is another program using the port?)")]
    Bind {
        /// The address.
        listen: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A webhook endpoint is unusable.
    #[error(transparent)]
    Webhook(#[from] webhooks::WebhookError),
    /// The certificate or key in `http.tls` cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A running HTTP server (and its webhook deliveries).
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    serving: JoinHandle<std::io::Result<()>>,
    webhooks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Checks the setup (tokens, webhook endpoints, TLS files: everything that can fail is
    /// read before the port is bound), binds and starts serving. Stops when
    /// `state.shutdown()` is cancelled: no new connections, open requests (and event streams)
    /// end, then [`Server::join`] returns.
    pub async fn start(state: AppState, webhooks: WebhookConfig) -> Result<Self, StartError> {
        state.config().check()?;
        webhooks.check()?;
        let tls = match &state.config().tls {
            Some(files) => Some(crate::tls::server_config(files)?),
            None => None,
        };
        let clients = webhooks::clients(&webhooks)?;
        let listen = state.config().listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind { listen, source })?;
        let local_addr = listener.local_addr().unwrap_or(listen);
        let shutdown = state.shutdown().clone();
        let mut tasks = webhooks::spawn_with(state.clone(), webhooks, clients);
        tasks.push(tokio::spawn(prune_idempotency_keys(state.clone())));
        let app = api::router(state);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let serving = match tls {
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await
            }),
            Some(config) => {
                let listener = TlsListener::new(listener, config, shutdown.clone())
                    .map_err(|source| StartError::Bind { listen, source })?;
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown.cancelled_owned())
                        .await
                })
            }
        };
        tracing::info!(address = %local_addr, scheme, "HTTP API and dashboard listening");
        Ok(Self {
            local_addr,
            serving,
            webhooks: tasks,
        })
    }

    /// The address bound (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server and the webhook tasks have stopped.
    pub async fn join(self) -> std::io::Result<()> {
        let result = match self.serving.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        for task in self.webhooks {
            let _ = task.await;
        }
        result
    }
}

/// Deletes expired `Idempotency-Key`s now and then, by the state's clock (the gateway's in the
/// binary, a `ManualClock` in tests). Lookups already ignore an expired key, so this only keeps
/// the table small: every tenth of the TTL, between 1 s and 1 h.
async fn prune_idempotency_keys(state: AppState) {
    let ttl = state.config().idempotency_ttl;
    let period = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown().cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Some(cutoff) = expiry_cutoff(&state) else {
            continue;
        };
        match state.store().prune_idempotency_keys(cutoff).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "expired idempotency keys deleted"),
            Err(error) => {
                tracing::warn!(%error, "cannot delete expired idempotency keys; retrying later");
            }
        }
    }
}

/// Keys recorded before this time have expired (None: the TTL reaches before time began).
pub(crate) fn expiry_cutoff(state: &AppState) -> Option<jiff::Timestamp> {
    let ttl = jiff::SignedDuration::try_from(state.config().idempotency_ttl).ok()?;
    state.now().checked_sub(ttl).ok()
}
