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
            // `pin_env`: read now, never logged; unset leaves no PIN, and a SIM that asks for
            // one is reported `pin_required` naming the variable.
            settings.modem.pin = m
                .pin
                .clone()
                .or_else(|| m.pin_env.as_ref().and_then(|var| std::env::var(var).ok()))
                .map(SimPin::new);
            settings.modem.pin_env = m.pin_env.clone();
            settings.modem.allow_roaming = m.allow_roaming;
            settings.modem.allow_reset = m.allow_reset;
            settings.modem.max_consecutive_timeouts = m.max_consecutive_timeouts;
            settings.modem.sim_ready_timeout = m.sim_ready_timeout;
            settings.modem.quirks = conductor_modem::QuirksOverride {
                index_base: m.quirks.index_base,
                cnmi: m.quirks.cnmi.clone(),
                memories: m.quirks.memories.clone(),
                cmgl_may_hang: m.quirks.cmgl_may_hang,
                ignore_urcs: m.quirks.ignore_urcs.clone(),
            };
            settings.modem.storage = m.storage.clone();
            settings.modem.smsc = m.smsc.clone();
            settings.rate_limit_per_minute = m.rate_limit_per_minute;
            settings.limits = m.limits.limits();
            settings.calls = conductor_gateway::CallSettings {
                reject: m.calls.reject,
                auto_reply: m.calls.auto_reply.clone(),
                auto_reply_interval: m
                    .calls
                    .auto_reply_interval
                    .unwrap_or(conductor_gateway::CallSettings::default().auto_reply_interval),
            };
            settings.balance = m.balance.as_ref().map(|b| conductor_gateway::BalanceCheck {
                code: b.code.clone(),
                every: b.every,
                low_below: b.low_below,
            });
            // A modem named by IMEI/ICCID: its port is looked up at every (re)connect.
            crate::commands::modem::locate_by_identity(&mut settings, m, &file.modems);
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
            numbers: file.numbers.policy(),
            routing: file.outbound.routing.routing(),
            recipient_per_hour: file.outbound.recipient_per_hour,
            quiet_hours: file
                .outbound
                .quiet_hours
                .as_ref()
                .and_then(|q| q.quiet_hours()),
            default_ttl: file.outbound.default_ttl,
            max_parts: file.outbound.max_parts,
            transliterate: file.outbound.transliterate,
            stop_keywords: file.outbound.stop_keywords.clone(),
            start_keywords: file.outbound.start_keywords.clone(),
            ..OutboundConfig::default()
        },
        cluster: cluster_config(&file.database),
        ..GatewayConfig::default()
    }
}

/// `database.node` and the lease timings (used on PostgreSQL only).
fn cluster_config(database: &config::DatabaseSection) -> conductor_gateway::ClusterConfig {
    let defaults = conductor_gateway::ClusterConfig::default();
    conductor_gateway::ClusterConfig {
        node: database
            .node
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(defaults.node),
        heartbeat: database.lease_heartbeat.unwrap_or(defaults.heartbeat),
        expiry: database.lease_expiry.unwrap_or(defaults.expiry),
    }
}

/// Runs the daemon until a signal. `overrides` are kept for config reloads (SIGHUP).
pub fn run(config: Config, overrides: &config::Overrides) -> Result<()> {
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
    // Held until the process ends: `conductor restore` (and a second daemon) refuse meanwhile.
    let _database_lock = crate::housekeeping::lock_database(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let reloader = crate::reload::Reloader::new(&config, overrides);
    runtime.block_on(async move {
        // First: SIGHUP's default action would end a daemon that is still starting.
        let lifecycle = crate::lifecycle::Lifecycle::new();
        let store = open_store_waiting(&config).await?;
        tracing::info!(
            database = %config.database,
            modems = config.file.modems.len(),
            "conductor {} starting",
            env!("CARGO_PKG_VERSION")
        );
        crate::commands::modem::warn_about_host(&config);
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            tracing::info!("signal received: finishing the AT command in flight, then exiting");
            trigger.cancel();
        });
        let clock = TokioClock::shared();
        // Daily backup and retention (conductor-ops); they stop with `shutdown`.
        let _daily_jobs =
            crate::housekeeping::spawn_daily_jobs(&config, &store, clock.clone(), &shutdown)?;
        // Alert episodes (conductor-ops); the evaluator stops with `shutdown`.
        let _alerts =
            crate::alerts_config::spawn_alerts(&config, &store, clock.clone(), &shutdown)?;
        // Event scripts and alert SMS follow the events table; they stop with `shutdown`.
        let _toolbox =
            crate::toolbox_config::spawn_toolbox(&config, &store, clock.clone(), &shutdown)?;
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
        // Readiness, status lines, the watchdog, reloads and STOPPING=1 (systemd).
        let lifecycle = lifecycle.start(gateway.handle(), reloader, shutdown.clone());
        let result = gateway.join().await.context("the gateway stopped");
        // The gateway also stops on a failure of its own: take the server down with it.
        shutdown.cancel();
        let _ = lifecycle.await;
        if let Some(server) = server {
            server.join().await.context("the HTTP server stopped")?;
        }
        result?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}

/// How long the daemon waits for a database another process keeps locked at start-up.
const OPEN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// The daemon's open: like [`crate::commands::messages::open_store`], but a database that
/// another process keeps locked (a CLI command creating and migrating a new file at the same
/// moment, an external writer's long transaction) is waited out for up to [`OPEN_PATIENCE`]
/// instead of failing after one busy timeout: a daemon that exits then leaves every modem
/// unserved until something restarts it, for a lock that is gone a second later.
async fn open_store_waiting(config: &Config) -> Result<conductor_store::Store> {
    let deadline = tokio::time::Instant::now() + OPEN_PATIENCE;
    loop {
        match crate::commands::messages::open_store(config).await {
            Ok(store) => return Ok(store),
            Err(error)
                if tokio::time::Instant::now() < deadline
                    && error
                        .downcast_ref::<conductor_store::StoreError>()
                        .is_some_and(|e| matches!(e, conductor_store::StoreError::Busy { .. })) =>
            {
                tracing::warn!(
                    error = %format!("{error:#}"),
                    "the database is locked by another process; trying again in a second"
                );
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error),
        }
    }
}
