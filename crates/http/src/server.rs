//! [`Server`]: binds the listen address, refuses an unsafe setup, serves until shutdown and
//! runs the webhook deliveries beside it.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

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
}

/// A running HTTP server (and its webhook deliveries).
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    serving: JoinHandle<std::io::Result<()>>,
    webhooks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Checks the setup, binds and starts serving. Stops when `state.shutdown()` is
    /// cancelled: no new connections, open requests (and event streams) end, then
    /// [`Server::join`] returns.
    pub async fn start(state: AppState, webhooks: WebhookConfig) -> Result<Self, StartError> {
        state.config().check()?;
        webhooks.check()?;
        let listen = state.config().listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind { listen, source })?;
        let local_addr = listener.local_addr().unwrap_or(listen);
        let shutdown = state.shutdown().clone();
        let deliveries = webhooks::spawn(state.clone(), webhooks);
        let app = api::router(state);
        let serving = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
        tracing::info!(address = %local_addr, "HTTP API and dashboard listening");
        Ok(Self {
            local_addr,
            serving,
            webhooks: deliveries,
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
