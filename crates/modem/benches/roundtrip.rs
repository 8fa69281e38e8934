//! Round trip per AT command and sends per second through the whole driver (handle → task →
//! engine → in-memory pipe → virtual modem and back) at zero modem latency, plus the sans-IO
//! engine's own cost per command with no I/O at all.
//!
//! Run with `cargo bench -p conductor-modem`. Figures go to BENCHMARKS.md; the target is the
//! engine's own overhead well under a millisecond per command.

use std::time::{Duration, Instant};

use conductor_at::{Command, Engine, Event};
use conductor_modem::{ModemConfig, spawn_with};
use conductor_sim::{SendLatency, SimulatorConfig};
use conductor_sms::{SubmitOptions, encode_submit};
use tokio_util::sync::CancellationToken;

/// The integration tests' helpers, for the same in-process connection to the simulator.
#[path = "../tests/it/util.rs"]
mod util;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<40} n={:<6} p50={:>8.1} µs  p99={:>8.1} µs  max={:>8.1} µs  {:>8.0}/s",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        percentile(&samples, 1.0).as_secs_f64() * 1e6,
        samples.len() as f64 / total.as_secs_f64(),
    );
}

/// The engine alone: submit `AT+CSQ`, take the bytes, feed the answer, take the event.
fn engine_only(iterations: usize) -> Vec<Duration> {
    let mut engine = Engine::new();
    let answer = b"\r\n+CSQ: 17,99\r\n\r\nOK\r\n";
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let now = std::time::Instant::now();
        let command = Command::new("AT+CSQ").expect("valid command");
        engine.submit(now, command).expect("engine is idle");
        while engine.poll_transmit().is_some() {}
        engine.handle_input(now, answer);
        let mut completed = false;
        while let Some(event) = engine.poll_event() {
            completed |= matches!(event, Event::Completed { .. });
        }
        assert!(completed, "the engine completes the command");
        samples.push(start.elapsed());
    }
    samples
}

fn main() {
    report("engine only: AT+CSQ (no I/O)", engine_only(100_000));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let running = conductor_sim::spawn(SimulatorConfig {
            send_latency: SendLatency::ZERO,
            sim_capacity: 30,
            ..SimulatorConfig::default()
        })
        .await
        .expect("simulator starts");
        let connector = util::sim_connector(running.simulator.clone());
        let shutdown = CancellationToken::new();
        let modem = spawn_with(
            ModemConfig::new("bench", "sim:modem0"),
            connector,
            shutdown.clone(),
        );
        let mut state = modem.state.clone();
        tokio::time::timeout(Duration::from_secs(30), state.wait_for(|s| s.is_ready()))
            .await
            .expect("the modem initialises within 30 s")
            .expect("state channel open");

        let mut samples = Vec::new();
        for _ in 0..5_000 {
            let start = Instant::now();
            modem
                .handle
                .command("AT+CSQ")
                .await
                .expect("AT+CSQ answers");
            samples.push(start.elapsed());
        }
        report("driver round trip: AT+CSQ", samples);

        let pdu = encode_submit("+15550000099", "benchmark", &SubmitOptions::default())
            .expect("encodes")
            .parts[0]
            .pdu
            .to_hex();
        let mut samples = Vec::new();
        for _ in 0..2_000 {
            let start = Instant::now();
            modem.handle.send_pdu(&pdu).await.expect("send accepted");
            samples.push(start.elapsed());
        }
        report("driver send: AT+CMGS + PDU (0 latency)", samples);

        shutdown.cancel();
        let _ = modem.task.await;
        running.shutdown().await;
    });
}
