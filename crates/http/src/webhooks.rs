//! Signed webhooks from a persistent outbox.
//!
//! One task per endpoint, so a slow or dead receiver holds up only its own deliveries, and
//! never message handling (which does not wait for webhooks at all). Each task:
//! 1. tails the `events` table from the endpoint's cursor, and puts a delivery for each
//!    matching event in the outbox (`webhook_deliveries`), keyed by (endpoint, event id), in
//!    the same transaction that moves the cursor: a crash re-reads and enqueues nothing twice,
//!    and pending deliveries survive restarts;
//! 2. sends the due ones, oldest event first: `POST` of the JSON payload with
//!    `X-Conductor-Event`, `X-Conductor-Event-Id` (deduplicate on it), `X-Conductor-Timestamp`
//!    (Unix seconds) and `X-Conductor-Signature: sha256=<hex HMAC-SHA256(secret,
//!    timestamp + "." + body)>`;
//! 3. records each attempt; a failure is retried with exponential backoff (`initial_backoff`
//!    doubling up to `max_backoff`) until `max_attempts`; the defaults (10 s doubling to 1 h,
//!    40 attempts) keep trying for about 31 hours. When a receiver that was failing accepts a
//!    delivery again, its other pending deliveries are made due at once.
//!
//! Receivers see each event at least once; the event id makes a repeat harmless.
//!
//! `https://` receivers are reached over rustls and must present a certificate the system's CA
//! store trusts, or one that the endpoint's `ca` file (a private CA, or the receiver's own
//! self-signed certificate) vouches for. A certificate that fails is an attempt error like any
//! other (retried, shown in the deliveries list), worded to say what to change.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Bytes;
use conductor_store::{AttemptResult, Event, NewDelivery, WebhookDelivery, normalize_number};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::Full;
use hyper::Uri;
use hyper_util::rt::TokioIo;
use serde_json::json;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::AppState;

/// The events a webhook can subscribe to.
pub const EVENTS: [&str; 10] = [
    "message.received",
    "message.sent",
    "message.delivered",
    "message.failed",
    "modem.down",
    "modem.up",
    "sim.capacity_warning",
    "alert.raised",
    "alert.cleared",
    "call.received",
];

/// The public name of a store event kind, if webhooks carry it.
pub fn public_event(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "received" | "received_incomplete" | "completed_late" => "message.received",
        "sent" => "message.sent",
        "delivered" => "message.delivered",
        "failed" => "message.failed",
        "modem_down" => "modem.down",
        "modem_up" => "modem.up",
        // conductor-ops' alert episodes: `detail` carries the key, kind and message.
        "alert_raised" => "alert.raised",
        "alert_cleared" => "alert.cleared",
        "sim_full" | "capacity_warning" | "capacity_cleanup" => "sim.capacity_warning",
        // An incoming call: `detail` carries the number, whether it was rejected, the reply.
        "call" => "call.received",
        _ => return None,
    })
}

/// One configured receiver.
#[derive(Clone)]
pub struct WebhookEndpoint {
    /// Its name in logs, the outbox and the API (default: the URL).
    pub name: String,
    /// `http://host:port/path` or `https://…`.
    pub url: String,
    /// The events it wants ([`EVENTS`]); empty means all.
    pub events: Vec<String>,
    /// Only events of this modem.
    pub modem: Option<String>,
    /// Only messages with this number (compared after normalisation).
    pub number: Option<String>,
    /// The HMAC key. Never logged.
    pub secret: String,
    /// For `https` URLs: PEM certificates trusted besides the system's CAs (the receiver's
    /// private CA, or its own self-signed certificate).
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

/// Every endpoint and the retry policy.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// The receivers.
    pub endpoints: Vec<WebhookEndpoint>,
    /// Attempts per delivery before it is marked failed. Default 40.
    pub max_attempts: u32,
    /// Wait after the first failure; doubles each time. Default 10 s.
    pub initial_backoff: Duration,
    /// The longest wait between attempts. Default 1 h.
    pub max_backoff: Duration,
    /// One attempt's limit (connect, send, answer). Default 10 s.
    pub timeout: Duration,
    /// How often the events table and the outbox are looked at. Default 1 s.
    pub poll: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            max_attempts: 40,
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
        }
    }
}

/// A webhook endpoint that cannot be used as configured. Shown with the config field's path
/// (`webhooks.endpoints[1].url`, `webhooks.max_attempts`).
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", self.path())]
pub struct WebhookError {
    /// The endpoint's position in the config.
    pub index: usize,
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl WebhookError {
    /// The config field's path.
    pub fn path(&self) -> String {
        if self.field == "max_attempts" {
            "webhooks.max_attempts".to_owned()
        } else {
            format!("webhooks.endpoints[{}].{}", self.index, self.field)
        }
    }
}

impl WebhookConfig {
    /// Checks every endpoint: an `http://` or `https://` URL (`ca` only with https), known
    /// events, a secret, unique names. Files are not read here: see [`clients`].
    pub fn check(&self) -> Result<(), WebhookError> {
        for (index, ep) in self.endpoints.iter().enumerate() {
            let fail = |field, message: String| WebhookError {
                index,
                field,
                message,
            };
            let target = target(&ep.url).map_err(|m| fail("url", m))?;
            if ep.ca.is_some() && !target.tls {
                return Err(fail(
                    "ca",
                    format!(
                        "a CA file is only used for https:// receivers, and {:?} is plain \
                         http: remove `ca` or use https://",
                        ep.url
                    ),
                ));
            }
            if let Some(unknown) = ep.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
                return Err(fail(
                    "events",
                    format!("unknown event {unknown:?}; known: {}", EVENTS.join(", ")),
                ));
            }
            if ep.secret.is_empty() {
                return Err(fail(
                    "secret",
                    "a secret is needed to sign deliveries".into(),
                ));
            }
            if self.endpoints[..index]
                .iter()
                .any(|other| other.name == ep.name)
            {
                return Err(fail("name", format!("{:?} is used twice", ep.name)));
            }
        }
        if self.max_attempts == 0 {
            return Err(WebhookError {
                index: 0,
                field: "max_attempts",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The wait after `attempts` failed attempts.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Where a URL points.
struct Target {
    /// `https`.
    tls: bool,
    host: String,
    port: u16,
    /// The `Host` header.
    authority: String,
    /// Path and query.
    path: String,
}

fn target(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("{url:?} must start with http:// or https://")),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("{url:?} names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| host.clone());
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    Ok(Target {
        tls,
        host,
        port,
        authority,
        path,
    })
}

/// `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", crate::auth::hex(&mac.finalize().into_bytes()))
}

/// The TLS side of every endpoint, in config order: built once at start, so a missing or
/// broken `ca` file stops the start with its field named instead of failing each attempt.
pub struct Clients(Vec<Option<TlsConnector>>);

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(Option::is_some))
            .finish()
    }
}

/// Reads the `ca` files and the system's CAs for the `https` endpoints (plain `http` ones need
/// nothing).
pub fn clients(config: &WebhookConfig) -> Result<Clients, WebhookError> {
    let mut clients = Vec::with_capacity(config.endpoints.len());
    for (index, ep) in config.endpoints.iter().enumerate() {
        let fail = |field, message: String| WebhookError {
            index,
            field,
            message,
        };
        let tls = target(&ep.url).map_err(|m| fail("url", m))?.tls;
        if !tls {
            clients.push(None);
            continue;
        }
        let field = format!("webhooks.endpoints[{index}].ca");
        let client = crate::tls::client_config(&field, ep.ca.as_deref()).map_err(|e| {
            // The TLS error names the field already; keep only its explanation.
            let text = e.to_string();
            let message = text
                .strip_prefix(&format!("{field} = "))
                .unwrap_or(&text)
                .to_owned();
            fail("ca", message)
        })?;
        clients.push(Some(TlsConnector::from(client)));
    }
    Ok(Clients(clients))
}

/// Starts one delivery task per endpoint (see [`spawn_with`]), reading the TLS files first.
pub fn spawn(state: AppState, config: WebhookConfig) -> Result<Vec<JoinHandle<()>>, WebhookError> {
    let clients = clients(&config)?;
    Ok(spawn_with(state, config, clients))
}

/// Starts one delivery task per endpoint; they stop with `state.shutdown()`.
pub fn spawn_with(state: AppState, config: WebhookConfig, clients: Clients) -> Vec<JoinHandle<()>> {
    config
        .endpoints
        .iter()
        .cloned()
        .zip(clients.0)
        .map(|(endpoint, tls)| {
            let state = state.clone();
            let config = config.clone();
            tokio::spawn(async move { run(state, config, endpoint, tls).await })
        })
        .collect()
}

async fn run(
    state: AppState,
    config: WebhookConfig,
    endpoint: WebhookEndpoint,
    tls: Option<TlsConnector>,
) {
    tracing::info!(endpoint = %endpoint.name, url = %endpoint.url, "webhook deliveries started");
    loop {
        if let Err(error) = enqueue_new(&state, &endpoint).await {
            tracing::warn!(endpoint = %endpoint.name, %error, "webhooks: cannot read new events; retrying");
        }
        if let Err(error) = deliver_due(&state, &config, &endpoint, tls.as_ref()).await {
            tracing::warn!(endpoint = %endpoint.name, %error, "webhooks: cannot read the outbox; retrying");
        }
        tokio::select! {
            () = state.shutdown().cancelled() => return,
            () = tokio::time::sleep(config.poll) => {}
        }
    }
}

/// Puts a delivery for every new matching event in the outbox.
async fn enqueue_new(
    state: &AppState,
    endpoint: &WebhookEndpoint,
) -> Result<(), conductor_store::StoreError> {
    const BATCH: usize = 200;
    let store = state.store();
    let mut cursor = match store.webhook_cursor(endpoint.name.clone()).await? {
        Some(cursor) => cursor,
        None => {
            // A new endpoint hears what happens from now on, not the whole history.
            let last = store.last_event_id().await?;
            store
                .enqueue_webhooks(endpoint.name.clone(), last, Vec::new(), state.now())
                .await?;
            last
        }
    };
    loop {
        let events = store.events_since(cursor, BATCH).await?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok(());
        };
        let mut deliveries = Vec::new();
        for event in &events {
            if let Some(delivery) = payload(state, endpoint, event).await? {
                deliveries.push(delivery);
            }
        }
        store
            .enqueue_webhooks(endpoint.name.clone(), last, deliveries, state.now())
            .await?;
        cursor = last;
        if events.len() < BATCH {
            return Ok(());
        }
    }
}

/// The delivery for `event`, if `endpoint` wants it.
async fn payload(
    state: &AppState,
    endpoint: &WebhookEndpoint,
    event: &Event,
) -> Result<Option<NewDelivery>, conductor_store::StoreError> {
    let Some(name) = public_event(&event.kind) else {
        return Ok(None);
    };
    if !endpoint.events.is_empty() && !endpoint.events.iter().any(|e| e == name) {
        return Ok(None);
    }
    let message = match event.message_id {
        Some(id) => state.store().message(id).await?.map(|d| d.message),
        None => None,
    };
    if let Some(modem) = &endpoint.modem {
        let matches = event.modem_id.as_ref().is_some_and(|m| &m.0 == modem)
            || message.as_ref().is_some_and(|m| {
                m.modem_id.as_ref().is_some_and(|id| &id.0 == modem)
                    || m.sending_modem.as_ref().is_some_and(|id| &id.0 == modem)
            });
        if !matches {
            return Ok(None);
        }
    }
    if let Some(number) = &endpoint.number {
        let wanted = normalize_number(number);
        if message
            .as_ref()
            .is_none_or(|m| normalize_number(&m.phone_number) != wanted)
        {
            return Ok(None);
        }
    }
    let body = json!({
        "id": event.id,
        "event": name,
        "created_at": event.at,
        "modem_id": event.modem_id,
        "message": message,
        "detail": event.detail,
    });
    Ok(Some(NewDelivery {
        event_id: event.id,
        event: name.to_owned(),
        payload: body.to_string(),
    }))
}

async fn deliver_due(
    state: &AppState,
    config: &WebhookConfig,
    endpoint: &WebhookEndpoint,
    tls: Option<&TlsConnector>,
) -> Result<(), conductor_store::StoreError> {
    let due = state
        .store()
        .webhooks_due(endpoint.name.clone(), state.now(), 20)
        .await?;
    for delivery in due {
        if state.shutdown().is_cancelled() {
            return Ok(());
        }
        let outcome = attempt(state, config, endpoint, tls, &delivery).await;
        let made = u32::try_from(delivery.attempts)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let result = match outcome {
            Ok(status) => {
                tracing::debug!(endpoint = %endpoint.name, id = delivery.id, status, "webhook delivered");
                AttemptResult::Delivered { status }
            }
            Err((status, error)) if made >= config.max_attempts => {
                tracing::warn!(endpoint = %endpoint.name, id = delivery.id, attempts = made, %error, "webhook delivery failed for good");
                AttemptResult::GiveUp { status, error }
            }
            Err((status, error)) => {
                let wait = config.backoff(made);
                tracing::info!(endpoint = %endpoint.name, id = delivery.id, attempts = made, %error, retry_in = ?wait, "webhook delivery failed; will retry");
                let next_attempt_at = state
                    .now()
                    .checked_add(wait)
                    .unwrap_or_else(|_| state.now());
                AttemptResult::Retry {
                    status,
                    error,
                    next_attempt_at,
                }
            }
        };
        let unreachable = match &result {
            AttemptResult::Delivered { .. } => false,
            AttemptResult::Retry { status, .. } | AttemptResult::GiveUp { status, .. } => {
                status.is_none()
            }
        };
        let recovered = matches!(result, AttemptResult::Delivered { .. }) && delivery.attempts > 0;
        state
            .store()
            .webhook_attempted(delivery.id, result, state.now())
            .await?;
        if recovered {
            // The receiver is back: what waited for it goes now, not after its backoff.
            let moved = state
                .store()
                .webhooks_due_now(endpoint.name.clone(), state.now())
                .await?;
            if moved > 0 {
                tracing::info!(endpoint = %endpoint.name, moved, "webhook receiver is back; sending what waited");
            }
        }
        if unreachable {
            // No answer at all: the receiver is down; try the rest at their own times
            // instead of knocking on a closed door once per delivery. A receiver that answers
            // with an error for one delivery does not hold up the others.
            return Ok(());
        }
    }
    Ok(())
}

/// One attempt: the status on 2xx, else the status (if any) and what went wrong.
async fn attempt(
    state: &AppState,
    config: &WebhookConfig,
    endpoint: &WebhookEndpoint,
    tls: Option<&TlsConnector>,
    delivery: &WebhookDelivery,
) -> Result<u16, (Option<u16>, String)> {
    let Target {
        tls: https,
        host,
        port,
        authority,
        path,
    } = target(&endpoint.url).map_err(|e| (None, e))?;
    let timestamp = state.now().as_second();
    let body = Bytes::from(delivery.payload.clone());
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("conductor/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-conductor-event", &delivery.event)
        .header("x-conductor-event-id", delivery.event_id.to_string())
        .header("x-conductor-delivery", delivery.id.to_string())
        .header("x-conductor-timestamp", timestamp.to_string())
        .header(
            "x-conductor-signature",
            signature(&endpoint.secret, timestamp, &body),
        )
        .body(Full::new(body))
        .map_err(|e| (None, format!("cannot build the request: {e}")))?;
    let exchange = async {
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| (None, format!("cannot connect to {host}:{port}: {e}")))?;
        if !https {
            return exchange(stream, request).await;
        }
        let Some(connector) = tls else {
            // `clients` builds a connector for every https endpoint; only a caller that
            // bypassed it gets here.
            return Err((None, "no TLS settings for this https endpoint".to_owned()));
        };
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
            (
                None,
                format!("{host:?} cannot be checked against a certificate: {e}"),
            )
        })?;
        let stream = connector
            .connect(name, stream)
            .await
            .map_err(|e| (None, crate::tls::describe_handshake_error(&host, port, &e)))?;
        exchange(stream, request).await
    };
    match tokio::time::timeout(config.timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err((None, format!("no answer within {:?}", config.timeout))),
    }
}

/// Sends `request` over `io` (plain or TLS) and reads the answer's status.
async fn exchange<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<u16, (Option<u16>, String)>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| (None, format!("HTTP handshake failed: {e}")))?;
    let driver = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| (None, format!("request failed: {e}")));
    driver.abort();
    let status = response?.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err((
            Some(status.as_u16()),
            format!("the receiver answered {status}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_the_defaults_retry_for_more_than_a_day() {
        let config = WebhookConfig::default();
        assert_eq!(config.backoff(1), Duration::from_secs(10));
        assert_eq!(config.backoff(2), Duration::from_secs(20));
        assert_eq!(config.backoff(30), Duration::from_secs(3600));
        let total: Duration = (1..config.max_attempts).map(|n| config.backoff(n)).sum();
        assert!(total > Duration::from_secs(24 * 3600), "{total:?}");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: python3 -c "import hmac,hashlib; print(hmac.new(b'secret', b'1700000000.{}', hashlib.sha256).hexdigest())"
        assert_eq!(
            signature("secret", 1_700_000_000, b"{}"),
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn other_schemes_a_ca_on_plain_http_and_unknown_events_are_refused_with_the_field() {
        let mut config = WebhookConfig::default();
        config.endpoints.push(WebhookEndpoint {
            name: "a".into(),
            url: "ftp://example.invalid/hook".into(),
            events: vec![],
            modem: None,
            number: None,
            secret: "s".into(),
            ca: None,
        });
        let error = config
            .check()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("webhooks.endpoints[0].url"), "{error}");
        config.endpoints[0].url = "https://example.invalid/hook".into();
        assert!(config.check().is_ok(), "https is fine");
        config.endpoints[0].url = "http://example.invalid/hook".into();
        config.endpoints[0].ca = Some("ca.pem".into());
        let error = config
            .check()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with("webhooks.endpoints[0].ca") && error.contains("https://"),
            "{error}"
        );
        config.endpoints[0].ca = None;
        config.endpoints[0].url = "http://127.0.0.1:9/hook".into();
        config.endpoints[0].events = vec!["message.nope".into()];
        let error = config
            .check()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("webhooks.endpoints[0].events"), "{error}");
    }
}
