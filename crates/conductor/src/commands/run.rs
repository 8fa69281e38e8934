//! `conductor run`: the daemon. Loads the config, sets up logging, opens the database and runs
//! the gateway until SIGTERM or Ctrl-C, then finishes the AT transaction in flight, commits
//! and exits 0.

use crate::config::{self, Config};
use crate::logging;
use anyhow::{Context, Result, bail};
use conductor_gateway::{
    Delivery, GatewayConfig, InboundConfig, ModemSettings, OutboundConfig, TokioClock,
};
use conductor_modem::{FlowControl, SerialSettings, SimPin};
use tokio_util::sync::CancellationToken;

/// Resolves the config file's sections into the gateway's typed settings.
pub fn gateway_config(config: &Config) -> GatewayConfig {
    let file = &config.file;
    let modems = file
        .modems
        .iter()
        .map(|m| {
            let mut settings = ModemSettings::new(m.id.clone(), m.device.clone());
            settings.modem.serial = SerialSettings {
                baud_rate: m.baud_rate,
                flow_control: match m.flow_control {
                    config::FlowControl::None => FlowControl::None,
                    config::FlowControl::Hardware => FlowControl::Hardware,
                    config::FlowControl::Software => FlowControl::Software,
                },
            };
            settings.modem.pin = m.pin.clone().map(SimPin::new);
            settings.modem.storage = m.storage.clone();
            settings.modem.smsc = m.smsc.clone();
            settings.rate_limit_per_minute = m.rate_limit_per_minute;
            settings
        })
        .collect();
    GatewayConfig {
        modems,
        inbound: InboundConfig {
            sweep_interval: file.inbound.sweep_interval,
            multipart_timeout: file.inbound.multipart_timeout,
            delete_policy: match file.inbound.delete_policy {
                config::DeletePolicy::OnRead => conductor_gateway::DeletePolicy::OnRead,
                config::DeletePolicy::OnStore => conductor_gateway::DeletePolicy::OnStore,
            },
            capacity_threshold_percent: file.inbound.capacity_threshold_percent,
            ..InboundConfig::default()
        },
        outbound: OutboundConfig {
            duplicate_window: file.outbound.duplicate_window,
            status_reports: file.outbound.status_reports,
            max_attempts: file.outbound.max_attempts,
            retry_backoff: file.outbound.retry_backoff,
            delivery: match file.outbound.delivery {
                config::Delivery::AtMostOnce => Delivery::AtMostOnce,
                config::Delivery::AtLeastOnce => Delivery::AtLeastOnce,
            },
            validity: file.outbound.validity,
            ..OutboundConfig::default()
        },
        ..GatewayConfig::default()
    }
}

/// Runs the daemon until a signal.
pub fn run(config: Config) -> Result<()> {
    logging::init(&config.file.logging)?;
    if config.file.modems.is_empty() {
        bail!(
            "no modems configured: add them to \"modems\" in the config ({}) or give --modem DEVICE",
            match &config.source {
                config::Source::File(path) => path.display().to_string(),
                config::Source::Defaults => "none found; `conductor config init` writes one".into(),
            }
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = crate::commands::messages::open_store(&config).await?;
        tracing::info!(
            database = %config.database,
            modems = config.file.modems.len(),
            "conductor {} starting",
            env!("CARGO_PKG_VERSION")
        );
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            tracing::info!("signal received: finishing the AT command in flight, then exiting");
            trigger.cancel();
        });
        let clock = TokioClock::shared();
        let gateway = conductor_gateway::Gateway::start(
            gateway_config(&config),
            store.clone(),
            clock.clone(),
            conductor_gateway::Connectors::new(),
            shutdown.clone(),
        )
        .await
        .context("the gateway did not start")?;
        let server = match crate::commands::http::start(
            &config,
            store,
            clock,
            Some(gateway.handle()),
            shutdown.clone(),
        )
        .await
        {
            Ok(server) => server,
            Err(error) => {
                shutdown.cancel();
                let _ = gateway.join().await;
                return Err(error);
            }
        };
        let result = gateway.join().await.context("the gateway stopped");
        // The gateway also stops on a failure of its own: take the server down with it.
        shutdown.cancel();
        if let Some(server) = server {
            server.join().await.context("the HTTP server stopped")?;
        }
        result?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}
