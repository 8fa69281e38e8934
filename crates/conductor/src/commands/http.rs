//! Starts the HTTP API, dashboard, metrics and webhook deliveries beside the gateway, for
//! `run` and `demo` (conductor-http). It shares the gateway's shutdown token, so a signal stops
//! both: the server stops accepting and ends its event streams while the gateway finishes
//! the AT command in flight. With a gateway, `/metrics` also shows its in-memory counters
//! (CMS/CME errors by code, reconnects).

use std::sync::Arc;

use anyhow::{Context, Result};
use conductor_gateway::{Clock, GatewayHandle};
use conductor_http::{AppState, Server};
use conductor_store::Store;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Starts the server unless `http.enabled` is false; None then.
pub async fn start(
    config: &Config,
    store: Store,
    clock: Arc<dyn Clock>,
    gateway: Option<GatewayHandle>,
    shutdown: CancellationToken,
) -> Result<Option<Server>> {
    if !config.file.http.enabled {
        tracing::info!("HTTP API disabled (http.enabled is false)");
        return Ok(None);
    }
    let http = config.http_settings()?;
    let webhooks = config.webhook_settings()?;
    let counters = gateway.clone().map(|handle| {
        Arc::new(move || http_counters(handle.counters())) as conductor_http::CounterSource
    });
    let ussd = gateway.clone().map(ussd_runner);
    let waker: Option<conductor_http::Waker> =
        gateway.map(|handle| Arc::new(move || handle.wake()) as conductor_http::Waker);
    let mut state = AppState::build(store, http, Arc::new(move || clock.now()), waker, shutdown);
    if let Some(counters) = counters {
        state = state.with_counters(counters);
    }
    if let Some(ussd) = ussd {
        state = state.with_ussd(ussd);
    }
    let server = Server::start(state, webhooks)
        .await
        .context("cannot start the HTTP API (the `http` and `webhooks` sections of the config)")?;
    Ok(Some(server))
}

/// `POST /api/v1/modems/{id}/ussd` through the gateway's modem handle (conductor-http does
/// not depend on the gateway).
fn ussd_runner(handle: GatewayHandle) -> conductor_http::UssdRunner {
    Arc::new(move |modem: String, code: String| {
        let handle = handle.clone();
        Box::pin(async move {
            match handle.ussd(&modem, &code).await {
                Ok(reply) => Ok(crate::commands::ussd::answer_json(&modem, &code, &reply)),
                Err(conductor_gateway::UssdRequestError::UnknownModem(_)) => {
                    Err(conductor_http::UssdFailure::UnknownModem(format!(
                        "no modem {modem:?} is served by this daemon"
                    )))
                }
                Err(error) => Err(conductor_http::UssdFailure::Modem(error.to_string())),
            }
        })
    })
}

/// The gateway's counters in the shape `/metrics` reads (conductor-http does not depend on
/// the gateway).
fn http_counters(snapshot: conductor_gateway::CounterSnapshot) -> conductor_http::ModemCounters {
    conductor_http::ModemCounters {
        errors: snapshot
            .errors
            .into_iter()
            .map(|e| conductor_http::ModemErrorCount {
                modem: e.modem,
                kind: e.kind.as_str(),
                code: e.code,
                count: e.count,
            })
            .collect(),
        reconnects: snapshot
            .reconnects
            .into_iter()
            .map(|r| (r.modem, r.count))
            .collect(),
    }
}

/// `conductor webhooks`: the outbox, newest first, with each delivery's attempts.
pub async fn deliveries(
    config: &Config,
    endpoint: Option<String>,
    state: Option<String>,
    limit: usize,
    json: bool,
) -> Result<()> {
    let state = match state.as_deref() {
        None => None,
        Some(text) => Some(conductor_store::DeliveryState::parse(text).ok_or_else(|| {
            anyhow::anyhow!("--state {text:?}: expected pending, delivered or failed")
        })?),
    };
    let store = crate::commands::messages::open_store(config).await?;
    let rows = store
        .webhook_deliveries(conductor_store::DeliveryFilter {
            endpoint,
            state,
            before_id: None,
            limit: limit.max(1),
        })
        .await
        .context("cannot read the webhook deliveries")?;
    if json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("no webhook deliveries");
        return Ok(());
    }
    for d in rows {
        let outcome = match d.state {
            conductor_store::DeliveryState::Delivered => format!(
                "delivered {}",
                d.delivered_at.map(|t| t.to_string()).unwrap_or_default()
            ),
            conductor_store::DeliveryState::Failed => "failed for good".to_owned(),
            conductor_store::DeliveryState::Pending => {
                format!("next attempt {}", d.next_attempt_at)
            }
        };
        println!(
            "#{:<6} {:<22} event {:<6} {:<20} attempts {:<3} {outcome}",
            d.id, d.endpoint, d.event_id, d.event, d.attempts
        );
        if let Some(error) = d.last_error {
            let status = d
                .last_status
                .map(|s| format!("HTTP {s}: "))
                .unwrap_or_default();
            println!("        last error: {status}{error}");
        }
    }
    Ok(())
}
