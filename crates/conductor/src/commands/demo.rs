//! `conductor demo`: the real daemon against two built-in virtual modems and a local SQLite
//! file, with a simulated phone that answers every message it gets.
//!
//! Why: a newcomer sees the whole loop (queue → `sending` → `sent` → `delivered`, a reply
//! arriving as `unread`, SIM storage filling and draining) without hardware, and every CLI
//! verb and SQL statement they try against the demo database works as it will in production.
//! Nothing is mocked: the gateway, driver and store are the production ones; only the modems
//! are virtual (`conductor-sim`).

use crate::commands::messages::open_store;
use crate::commands::run::gateway_config;
use crate::config::{Config, Database, ModemSection};
use crate::logging;
use anyhow::{Context, Result};
use conductor_gateway::{Connectors, Gateway, TokioClock};
use conductor_modem::transport::BoxedIo;
use conductor_modem::{OpenError, OpenErrorKind};
use conductor_sim::{Personality, SendLatency, Simulator, SimulatorConfig};
use std::collections::HashSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The simulated phone's number.
const PHONE: &str = "+15557654321";
/// The two virtual modems' numbers.
const NUMBERS: [&str; 2] = ["+15550000001", "+15550000002"];

/// Runs the demo until Ctrl-C.
pub fn run(mut config: Config, db_given: bool) -> Result<()> {
    if !db_given {
        config.database = Database::Sqlite("conductor-demo.db".into());
    }
    config.file.modems = NUMBERS
        .iter()
        .enumerate()
        .map(|(i, _)| ModemSection::new(format!("modem{i}"), format!("sim:modem{i}")))
        .collect();
    logging::init(&config.file.logging)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(demo(config))
}

async fn demo(mut config: Config) -> Result<()> {
    let mut second = conductor_sim::ModemConfig {
        number: NUMBERS[1].into(),
        personality: Personality::generic(),
        sim_capacity: 30,
        pin: None,
        tcp: None,
        pty: false,
    };
    if let Ok(personality) = "quectel_ec25".parse() {
        second.personality = personality;
    }
    let running = conductor_sim::spawn(SimulatorConfig {
        control: "127.0.0.1:0".parse().ok(),
        send_latency: SendLatency {
            min: Duration::from_millis(500),
            max: Duration::from_millis(1500),
        },
        own_number: NUMBERS[0].into(),
        extra_modems: vec![second],
        ..SimulatorConfig::default()
    })
    .await
    .context("cannot start the virtual modems")?;
    let simulator = running.simulator.clone();

    let mut connectors = Connectors::new();
    for (i, _) in NUMBERS.iter().enumerate() {
        let simulator = simulator.clone();
        let name = format!("modem{i}");
        connectors.insert(name.clone(), move || {
            let simulator = simulator.clone();
            let name = name.clone();
            async move {
                simulator
                    .connect(&name)
                    .await
                    .map(|stream| Box::new(stream) as BoxedIo)
                    .map_err(|e| OpenError {
                        device: format!("sim:{name}"),
                        kind: OpenErrorKind::Unplugged,
                        detail: e.to_string(),
                    })
            }
        });
    }

    let store = open_store(&config).await?;
    let shutdown = CancellationToken::new();
    let clock = TokioClock::shared();
    let gateway = Gateway::start(
        gateway_config(&config),
        store.clone(),
        clock.clone(),
        connectors,
        shutdown.clone(),
    )
    .await
    .context("the gateway did not start")?;
    let mut started = crate::commands::http::start(
        &config,
        store.clone(),
        clock.clone(),
        Some(gateway.handle()),
        shutdown.clone(),
    )
    .await;
    if let Err(error) = &started {
        // The demo must start on a busy machine too: another free port will do.
        tracing::warn!(error = %format!("{error:#}"), "the dashboard's port is taken; using a free one");
        config.file.http.listen = "127.0.0.1:0".into();
        started = crate::commands::http::start(
            &config,
            store,
            clock,
            Some(gateway.handle()),
            shutdown.clone(),
        )
        .await;
    }
    let server = match started {
        Ok(server) => server,
        Err(error) => {
            shutdown.cancel();
            let _ = gateway.join().await;
            running.shutdown().await;
            return Err(error);
        }
    };

    print_instructions(&config, running.endpoints.control);
    if let Some(server) = &server {
        println!("Dashboard: http://{}/", server.local_addr());
        println!(
            "API:       curl -s http://{}/api/v1/messages -H 'Content-Type: application/json' -d '{{\"to\":\"{PHONE}\",\"text\":\"Hi from the API\"}}'",
            server.local_addr()
        );
        println!();
    }
    let phone = tokio::spawn(answering_phone(simulator.clone(), shutdown.clone()));

    crate::shutdown_signal().await;
    tracing::info!("stopping the demo");
    shutdown.cancel();
    let result = gateway.join().await;
    if let Some(server) = server {
        let _ = server.join().await;
    }
    let _ = phone.await;
    running.shutdown().await;
    result.context("the gateway stopped")
}

fn print_instructions(config: &Config, control: Option<std::net::SocketAddr>) {
    let db = config.database.to_string();
    let me = std::env::args()
        .next()
        .unwrap_or_else(|| "conductor".into());
    println!();
    println!(
        "Conductor demo: two virtual modems ({} and {}), database {db}",
        NUMBERS[0], NUMBERS[1]
    );
    println!("A simulated phone, {PHONE}, answers every message it receives.");
    println!();
    println!("Send a message (the phone will answer within a few seconds):");
    println!("  {me} --db {db} send {PHONE} \"Hello from Conductor\"");
    println!("See what came and went, and the modems:");
    println!("  {me} --db {db} list");
    println!("  {me} --db {db} status");
    println!("Plain SQL works too, while the demo runs:");
    println!(
        "  sqlite3 {db} \"SELECT id, phone_number, content, status FROM messages WHERE direction='inbound' ORDER BY timestamp DESC LIMIT 10\""
    );
    println!(
        "  sqlite3 {db} \"INSERT INTO messages (phone_number, content, timestamp, status, direction) VALUES ('{PHONE}', 'Auto-reply', datetime('now'), 'queued', 'outbound')\""
    );
    if let Some(control) = control {
        println!(
            "Make any phone write to the modems (JSON lines on the simulator's control port):"
        );
        println!(
            "  echo '{{\"op\":\"inject\",\"modem\":\"modem0\",\"from\":\"+4917612345678\",\"text\":\"Hi there\"}}' | nc -q1 {} {}",
            control.ip(),
            control.port()
        );
    }
    println!();
    println!("Ctrl-C stops the demo; the database stays.");
    println!();
}

/// The simulated phone: greets once, then answers every message sent to it, through the
/// modem that sent it.
async fn answering_phone(simulator: Simulator, shutdown: CancellationToken) {
    let greeting = "Welcome to the Conductor demo! Reply to this number and I will answer.";
    if let Err(error) = simulator
        .inject_text("modem0", PHONE, greeting, false)
        .await
    {
        tracing::warn!(%error, "the demo phone could not send its greeting");
    }
    let mut answered: HashSet<(String, String)> = HashSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for message in simulator.outside().await {
            // A long message is answered once, on its first part.
            let later_part = message.concat.is_some_and(|(_, _, seq)| seq != 1);
            if message.to != PHONE || later_part {
                continue;
            }
            let key = (message.modem.clone(), message.pdu.clone());
            if !answered.insert(key) {
                continue;
            }
            let text = message.text.unwrap_or_default();
            let reply = format!("Got your message: \"{text}\"");
            if let Err(error) = simulator
                .inject_text(&message.modem, PHONE, &reply, false)
                .await
            {
                tracing::warn!(%error, "the demo phone could not answer");
            }
        }
    }
}
