//! `conductor`: the binary. Parses the command line, runs the verb, and turns errors into a
//! one-line message on stderr and a documented exit code.
//!
//! Exit codes: 0 success; 1 the command failed (bad input, unhealthy, unreachable modem);
//! 2 the command line itself was wrong (clap's usage errors).

mod alerts_config;
mod cli;
mod commands;
mod config;
mod housekeeping;
mod lifecycle;
mod logging;
mod notify;
mod ops_config;
mod pdu_json;
mod policy_config;
mod reload;
mod toolbox_config;

use clap::Parser;
use std::process::ExitCode;

/// Loads the config and runs `work` on a small runtime: the verbs that only touch the
/// database need no more than one thread plus SQLite's blocking pool.
fn with_config<F, Fut>(overrides: &config::Overrides, work: F) -> anyhow::Result<()>
where
    F: FnOnce(config::Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = config::Config::load(overrides)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(work(config))
}

async fn database_command(config: config::Config, command: cli::Command) -> anyhow::Result<()> {
    use commands::messages::{self, Verb};
    match command {
        cli::Command::Send(args) => messages::send(&config, args).await,
        cli::Command::MarkRead { ids } => messages::change(&config, Verb::MarkRead, ids).await,
        cli::Command::Requeue { ids } => messages::change(&config, Verb::Requeue, ids).await,
        cli::Command::Cancel { ids } => messages::change(&config, Verb::Cancel, ids).await,
        cli::Command::List(args) => messages::list(&config, args).await,
        cli::Command::Show { id, json } => messages::show(&config, id, json).await,
        cli::Command::Status { json } => messages::status(&config, json).await,
        cli::Command::Block(command) => commands::block::run(&config, command).await,
        cli::Command::Health { json } => commands::health::health(&config, json).await,
        cli::Command::Watch { once, rows } => commands::watch::watch(&config, once, rows).await,
        cli::Command::Webhooks {
            endpoint,
            state,
            limit,
            json,
        } => commands::http::deliveries(&config, endpoint, state, limit, json).await,
        cli::Command::Backup { to, json } => commands::backup::backup(&config, to, json).await,
        cli::Command::Restore { file } => commands::restore::restore(&config, file).await,
        cli::Command::Prune { dry_run, json } => {
            commands::prune::prune(&config, dry_run, json).await
        }
        cli::Command::Stats(args) => commands::stats::stats(&config, args).await,
        cli::Command::Import(args) => commands::import::import(&config, args).await,
        cli::Command::Selftest(args) => commands::selftest::selftest(&config, args).await,
        cli::Command::Ussd {
            modem,
            code,
            token,
            json,
        } => commands::ussd::ussd(&config, &modem, &code, token, json).await,
        cli::Command::Pdu(_)
        | cli::Command::Config(_)
        | cli::Command::Sim(_)
        | cli::Command::Modem(_)
        | cli::Command::Service(_)
        | cli::Command::Doctor { .. }
        | cli::Command::Run { .. }
        | cli::Command::Demo => {
            unreachable!("handled before the config is loaded")
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: the graceful-shutdown trigger for long-running verbs.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let overrides = config::Overrides {
        config: cli.config.clone(),
        db: cli.db.clone(),
        modems: match &cli.command {
            cli::Command::Run { modems } => modems.clone(),
            _ => Vec::new(),
        },
    };
    let result = match cli.command {
        cli::Command::Pdu(command) => commands::pdu::run(command),
        cli::Command::Config(command) => commands::config::run(command, &overrides),
        cli::Command::Sim(args) => commands::sim::run(args),
        cli::Command::Modem(command) => commands::modem::run(command),
        cli::Command::Service(command) => commands::service::run(command, &overrides),
        // Before the config is loaded: a broken config is one of the things it reports.
        cli::Command::Doctor { json } => commands::doctor::run(&overrides, json),
        cli::Command::Run { .. } => config::Config::load(&overrides)
            .map_err(anyhow::Error::from)
            .and_then(|config| commands::run::run(config, &overrides)),
        cli::Command::Demo => config::Config::load(&config::Overrides {
            modems: Vec::new(),
            ..overrides.clone()
        })
        .map_err(anyhow::Error::from)
        .and_then(|config| commands::demo::run(config, overrides.db.is_some())),
        command => with_config(&overrides, |config| database_command(config, command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
